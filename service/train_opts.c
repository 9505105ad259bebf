/* train_opts.c - see train_opts.h. */
#include "train_opts.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef enum { K_INT, K_NUM, K_BOOL, K_STR, K_ARCH, K_AUG } kind;

typedef struct {
    const char *name;
    kind k;
    double min, max;
    int with_resume; /* allowed together with "resume" */
} field_desc;

static const field_desc fields[] = {
    {"resume", K_STR, 0, 0, 1},
    {"architecture", K_ARCH, 0, 0, 0},
    {"fine_tune", K_BOOL, 0, 0, 0},
    {"dataset", K_STR, 0, 0, 0},
    {"include_feedback", K_BOOL, 0, 0, 0},
    {"epochs", K_INT, 1, 1000, 1},
    {"batch", K_INT, 1, 4096, 0},
    {"lr", K_NUM, 1e-9, 9.999, 0},
    {"optimizer", K_STR, 0, 0, 0},
    {"schedule", K_STR, 0, 0, 0},
    {"weight_decay", K_NUM, 0, 1, 0},
    {"label_smoothing", K_NUM, 0, 0.999, 0},
    {"patience", K_INT, 0, 1000, 0},
    {"seed", K_INT, 0, 4294967295.0, 0},
    {"max_train", K_INT, 1, 1e9, 0},
    {"threads", K_INT, 1, 8, 1},
    {"augmentation", K_AUG, 0, 0, 0},
    {"validation_split", K_NUM, 0, 0.9, 0},
    {"min_accuracy", K_NUM, 0, 1, 1},
    {"force", K_BOOL, 0, 0, 1},
};

static const field_desc aug_fields[] = {
    {"flip", K_BOOL, 0, 0, 0},   {"shift", K_INT, 0, 24, 0}, {"rotate", K_NUM, 0, 180, 0},
    {"scale", K_NUM, 0, 0.5, 0}, {"erase", K_NUM, 0, 1, 0},
};

int topt_valid_arch_name(const char *name)
{
    if (!name || !*name || name[0] == '.' || strlen(name) > 100) return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.') return 0;
    return !strstr(name, "..");
}

static int bad(char *field, size_t fl, const char *name, char *msg, size_t ml, const char *fmt,
               const char *arg)
{
    snprintf(field, fl, "%s", name);
    snprintf(msg, ml, fmt, name, arg);
    return -1;
}

static int check_value(const field_desc *d, json_t *v, const char *path, char *field, size_t fl,
                       char *msg, size_t ml)
{
    char range[96];
    switch (d->k) {
    case K_INT:
        snprintf(range, sizeof range, "%.0f to %.0f", d->min, d->max);
        if (!json_is_integer(v) || (double)json_integer_value(v) < d->min ||
            (double)json_integer_value(v) > d->max)
            return bad(field, fl, path, msg, ml, "%s must be an integer from %s", range);
        return 0;
    case K_NUM:
        snprintf(range, sizeof range, "[%g, %g]", d->min, d->max);
        if (!json_is_number(v) || !isfinite(json_number_value(v)) ||
            json_number_value(v) < d->min || json_number_value(v) > d->max)
            return bad(field, fl, path, msg, ml, "%s must be a number in %s", range);
        return 0;
    case K_BOOL:
        if (!json_is_boolean(v)) return bad(field, fl, path, msg, ml, "%s must be true or false%s", "");
        return 0;
    case K_STR:
        if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > 1000)
            return bad(field, fl, path, msg, ml, "%s must be a non-empty string%s", "");
        return 0;
    case K_ARCH:
        if (json_is_object(v)) return 0; /* checked when the network is built */
        if (!json_is_string(v) || !topt_valid_arch_name(json_string_value(v)))
            return bad(field, fl, path, msg, ml,
                       "%s must be the name of a file in the architecture folder (e.g. \"vgg\") "
                       "or an architecture object%s", "");
        return 0;
    case K_AUG: {
        if (!json_is_object(v)) return bad(field, fl, path, msg, ml, "%s must be an object%s", "");
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            char sub[128];
            snprintf(sub, sizeof sub, "augmentation.%.100s", k);
            const field_desc *a = NULL;
            for (size_t i = 0; i < sizeof aug_fields / sizeof aug_fields[0]; i++)
                if (!strcmp(aug_fields[i].name, k)) a = &aug_fields[i];
            if (!a)
                return bad(field, fl, sub, msg, ml,
                           "%s is not an augmentation option (flip, shift, rotate, scale, erase)%s", "");
            if (check_value(a, x, sub, field, fl, msg, ml)) return -1;
        }
        return 0;
    }
    }
    return -1;
}

static int one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(s, *set)) return 1;
    return 0;
}

int topt_parse(const char *body, size_t len, json_t **out, char *field, size_t fl, char *msg,
               size_t ml)
{
    *out = NULL;
    field[0] = '\0';
    json_error_t je;
    json_t *root = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : json_object();
    if (!root) {
        snprintf(msg, ml, "the body is not valid JSON: %s (line %d, column %d)", je.text, je.line,
                 je.column);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(msg, ml, "the body must be a JSON object of training options");
        goto err;
    }
    int resume = json_object_get(root, "resume") != NULL;
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        const field_desc *d = NULL;
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
            if (!strcmp(fields[i].name, k)) d = &fields[i];
        if (!d) {
            bad(field, fl, k, msg, ml, "%.100s is not a training option%s", "");
            goto err;
        }
        if (resume && !d->with_resume) {
            bad(field, fl, k, msg, ml,
                "%.100s cannot be changed when resuming (only epochs, threads, force, "
                "min_accuracy)%s", "");
            goto err;
        }
        if (check_value(d, v, k, field, fl, msg, ml)) goto err;
    }
    static const char *const optimizers[] = {"sgd", "adam", NULL};
    static const char *const schedules[] = {"none", "step", "cosine", "plateau", "cyclic", NULL};
    const char *s = json_string_value(json_object_get(root, "optimizer"));
    if (s && !one_of(s, optimizers)) {
        bad(field, fl, "optimizer", msg, ml, "%s must be sgd or adam%s", "");
        goto err;
    }
    s = json_string_value(json_object_get(root, "schedule"));
    if (s && !one_of(s, schedules)) {
        bad(field, fl, "schedule", msg, ml, "%s must be none, step, cosine, plateau or cyclic%s", "");
        goto err;
    }
    if (json_is_true(json_object_get(root, "fine_tune")) && json_object_get(root, "architecture")) {
        bad(field, fl, "fine_tune", msg, ml,
            "%s starts from the active model's weights and architecture: drop \"architecture\"%s", "");
        goto err;
    }
    *out = root;
    return 0;
err:
    json_decref(root);
    return -1;
}
