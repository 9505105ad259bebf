/* model_ref.c - validated, reference-counted models (see model_ref.h). */
#include "model_ref.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static unsigned long long fnv1a64(const void *data, size_t n)
{
    const unsigned char *p = data;
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* Forward pass on a mid-grey image: catches a model that loads but cannot
 * run (or produces NaN) before it replaces a working one. */
static int smoke_test(const nn_model *m, int side, int classes, char *err, size_t errlen)
{
    int rc = -1;
    nn_ws *ws = nn_ws_create(m, 1);
    uint8_t *px = malloc((size_t)side * (size_t)side);
    float *probs = malloc((size_t)classes * sizeof *probs);
    if (!ws || !px || !probs) {
        set_err(err, errlen, "out of memory while checking the model");
        goto err;
    }
    memset(px, 128, (size_t)side * (size_t)side);
    if (nn_predict_u8(m, ws, px, 1, NN_TTA_NONE, probs)) {
        set_err(err, errlen, "the model does not run a forward pass");
        goto err;
    }
    double sum = 0;
    for (int i = 0; i < classes; i++) {
        if (!isfinite(probs[i]) || probs[i] < 0) {
            set_err(err, errlen, "the model gives invalid probabilities");
            goto err;
        }
        sum += probs[i];
    }
    if (fabs(sum - 1.0) > 1e-3) {
        set_err(err, errlen, "the model's probabilities sum to %g", sum);
        goto err;
    }
    rc = 0;
err:
    nn_ws_free(ws);
    free(px);
    free(probs);
    return rc;
}

/* A training accuracy figure, if the metadata has one under a usual name. */
static json_t *find_accuracy(json_t *meta)
{
    static const char *keys[] = {"accuracy", "test_accuracy", "val_accuracy", "best_val_accuracy",
                                 "best_val_acc", "val_acc", "test_acc"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(meta, keys[i]);
        if (json_is_number(v)) return json_real(json_number_value(v));
    }
    return json_null();
}

static int build_info(svc_model *s, const char *path, char *err, size_t errlen)
{
    json_t *root = NULL, *classes = NULL, *meta = NULL;
    json_error_t je;
    meta = json_loads(nn_model_meta_json(s->nn), 0, &je);
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    /* id and version may be set by whoever trained the model; else derived. */
    json_t *v = json_object_get(meta, "id");
    snprintf(s->id, sizeof s->id, "%s", json_is_string(v) ? json_string_value(v)
                                        : nn_model_arch_name(s->nn) ? nn_model_arch_name(s->nn)
                                                                    : "model");
    v = json_object_get(meta, "version");
    if (json_is_string(v)) snprintf(s->version, sizeof s->version, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(s->version, sizeof s->version, "%lld", (long long)json_integer_value(v));
    else snprintf(s->version, sizeof s->version, "%s", s->digest);

    classes = json_array();
    for (int i = 0; classes && i < s->num_classes; i++)
        json_array_append_new(classes, json_string(s->class_names[i]));
    char loaded[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(loaded, sizeof loaded, "%Y-%m-%dT%H:%M:%SZ", &tm);

    json_t *acc = find_accuracy(meta);
    root = json_pack("{s:s,s:s,s:s,s:s,s:I,s:f,s:o,s:{s:i,s:i},s:o,s:o,s:s?,s:s}", "id", s->id,
                     "version", s->version, "digest", s->digest, "architecture",
                     nn_model_arch_name(s->nn) ? nn_model_arch_name(s->nn) : "", "parameters",
                     (json_int_t)nn_model_num_params(s->nn), "flops", nn_model_flops(s->nn),
                     "classes", classes, "input", "size", s->input_size, "channels", 1,
                     "accuracy", acc, "training", meta, "file", path, "loaded_at", loaded);
    classes = meta = NULL; /* stolen by json_pack, even on failure */
    if (!root) goto err;
    s->info_json = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (!s->info_json) goto err;
    return 0;
err:
    json_decref(classes);
    json_decref(meta);
    set_err(err, errlen, "out of memory while describing the model");
    return -1;
}

svc_model *sm_wrap(nn_model *m, const char *path, char *err, size_t errlen)
{
    svc_model *s = calloc(1, sizeof *s);
    if (!s) {
        set_err(err, errlen, "out of memory");
        nn_model_free(m);
        return NULL;
    }
    s->nn = m;
    atomic_init(&s->refs, 1);
    s->input_size = nn_model_input_size(m);
    s->num_classes = nn_model_num_classes(m);
    if (s->input_size < 1 || s->input_size > 1024) {
        set_err(err, errlen, "unsupported input size %d", s->input_size);
        goto err;
    }
    if (s->num_classes < 2 || s->num_classes > 256) {
        set_err(err, errlen, "unsupported number of classes %d", s->num_classes);
        goto err;
    }
    s->class_names = calloc((size_t)s->num_classes, sizeof *s->class_names);
    if (!s->class_names) {
        set_err(err, errlen, "out of memory");
        goto err;
    }
    for (int i = 0; i < s->num_classes; i++) {
        s->class_names[i] = nn_model_class_name(m, i);
        if (!s->class_names[i] || !*s->class_names[i]) {
            set_err(err, errlen, "class %d has no name", i);
            goto err;
        }
        for (int k = 0; k < i; k++)
            if (!strcmp(s->class_names[k], s->class_names[i])) {
                set_err(err, errlen, "class name '%s' appears twice", s->class_names[i]);
                goto err;
            }
    }
    size_t n = 0;
    float *params = nn_model_params(m, &n);
    snprintf(s->digest, sizeof s->digest, "%016llx",
             params ? fnv1a64(params, n * sizeof *params) : 0ULL);
    if (smoke_test(m, s->input_size, s->num_classes, err, errlen)) goto err;
    if (build_info(s, path, err, errlen)) goto err;
    return s;
err:
    free(s->class_names);
    free(s->info_json);
    nn_model_free(s->nn);
    free(s);
    return NULL;
}

svc_model *sm_load(const char *path, char *err, size_t errlen)
{
    nn_model *m = NULL;
    char e[512] = "";
    if (nn_model_load(path, &m, e, sizeof e)) {
        if (strstr(e, path)) set_err(err, errlen, "%s", e); /* already names the file */
        else set_err(err, errlen, "%s: %s", path, e[0] ? e : "cannot load the model");
        return NULL;
    }
    svc_model *s = sm_wrap(m, path, e, sizeof e);
    if (!s) set_err(err, errlen, "%s: %s", path, e);
    return s;
}

svc_model *sm_ref(svc_model *s)
{
    if (s) atomic_fetch_add(&s->refs, 1);
    return s;
}

void sm_unref(svc_model *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
    free(s->class_names);
    free(s->info_json);
    nn_model_free(s->nn);
    free(s);
}
