/* config.c - settings for `emotiond serve`: one table drives the defaults,
 * the JSON file, the environment, the flags, --print-config and --help, so
 * the four sources cannot drift apart. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* T_SECRET: a string that --print-config never shows (printed as null). */
typedef enum { T_INT, T_LL, T_STR, T_BOOL, T_LOGFMT, T_ORIGINS, T_SECRET } opt_type;

typedef struct {
    const char *key;
    opt_type type;
    size_t off;
    size_t size;          /* T_STR buffer size */
    long long min, max;   /* T_INT, T_LL */
    const char *help;
} opt_desc;

#define F(field) offsetof(svc_config, field)
static const opt_desc opts[] = {
    {"host", T_STR, F(host), sizeof(((svc_config *)0)->host), 0, 0,
     "address to listen on"},
    {"port", T_INT, F(port), 0, 0, 65535, "TCP port (0 picks a free one)"},
    {"model", T_STR, F(model), sizeof(((svc_config *)0)->model), 0, 0,
     "model file to serve (reloaded on SIGHUP)"},
    {"workers", T_INT, F(workers), 0, 0, 1024, "inference threads (0 = number of cores)"},
    {"http_threads", T_INT, F(http_threads), 0, 1, 256, "libmicrohttpd thread pool size"},
    {"queue_size", T_INT, F(queue_size), 0, 1, 1000000,
     "queued inference jobs before answering 503"},
    {"max_body_bytes", T_LL, F(max_body_bytes), 0, 1, 1LL << 32, "request body limit (413)"},
    {"max_image_width", T_INT, F(max_image_width), 0, 1, 1 << 20, "image width limit"},
    {"max_image_height", T_INT, F(max_image_height), 0, 1, 1 << 20, "image height limit"},
    {"max_image_pixels", T_LL, F(max_image_pixels), 0, 1, 1LL << 40, "image pixel count limit"},
    {"connection_timeout", T_INT, F(connection_timeout), 0, 1, 86400,
     "seconds before an idle connection is closed"},
    {"connection_limit", T_INT, F(connection_limit), 0, 1, 1000000, "concurrent connections"},
    {"connection_memory_limit", T_LL, F(connection_memory_limit), 0, 8192, 1LL << 30,
     "libmicrohttpd memory per connection (bytes)"},
    {"shutdown_grace", T_INT, F(shutdown_grace), 0, 0, 3600,
     "seconds to finish in-flight requests on SIGTERM"},
    {"retry_after", T_INT, F(retry_after), 0, 0, 3600, "Retry-After seconds sent with 503"},
    {"log_format", T_LOGFMT, F(log_format), 0, 0, 0, "plain or json"},
    {"log_requests", T_BOOL, F(log_requests), 0, 0, 0, "log one line per request"},
    {"tta", T_BOOL, F(tta), 0, 0, 0, "also classify the mirrored face and average"},
    {"cors_origins", T_ORIGINS, F(cors_origins), 0, 0, 0,
     "allowed CORS origins, comma-separated (\"*\" = any)"},
    {"model_dir", T_STR, F(model_dir), sizeof(((svc_config *)0)->model_dir), 0, 0,
     "model store directory (enables GET /models and POST /train)"},
    {"data_dir", T_STR, F(data_dir), sizeof(((svc_config *)0)->data_dir), 0, 0,
     "training data directory (train/, test/; feedback/ for POST /samples)"},
    {"arch_dir", T_STR, F(arch_dir), sizeof(((svc_config *)0)->arch_dir), 0, 0,
     "architectures a training job may name"},
    {"admin_token", T_SECRET, F(admin_token), sizeof(((svc_config *)0)->admin_token), 0, 0,
     "Bearer token of the admin API (never printed)"},
    {"admin_token_file", T_STR, F(admin_token_file), sizeof(((svc_config *)0)->admin_token_file),
     0, 0, "file holding the admin token"},
    {"admin_host", T_STR, F(admin_host), sizeof(((svc_config *)0)->admin_host), 0, 0,
     "address of the separate admin port"},
    {"admin_port", T_INT, F(admin_port), 0, -1, 65535,
     "separate admin port (-1 = admin API on the main port)"},
    {"keep_models", T_INT, F(keep_models), 0, 1, 10000, "model versions kept in the store"},
    {"train_threads", T_INT, F(train_threads), 0, 1, 8, "threads of a training job"},
    {"train_nice", T_INT, F(train_nice), 0, 0, 19, "nice value of the training thread"},
    {"face_cascade", T_STR, F(face_cascade), sizeof(((svc_config *)0)->face_cascade), 0, 0,
     "face detector cascade (null in JSON: no face detection)"},
    {"face_scale_step_percent", T_INT, F(face_scale_step_percent), 0, 1, 100,
     "face detection: each scanned face size is this % larger"},
    {"face_min_size", T_INT, F(face_min_size), 0, 0, 1 << 20,
     "face detection: smallest face side in pixels (0 = 24)"},
    {"face_max_scan_side", T_INT, F(face_max_scan_side), 0, 0, 1 << 20,
     "face detection: downscale to this longer side first (0 = never)"},
    {"face_min_neighbors", T_INT, F(face_min_neighbors), 0, 0, 100,
     "face detection: overlapping hits a face needs"},
    {"max_faces", T_INT, F(max_faces), 0, 1, 256, "faces classified per image, largest first"},
    {"face_crop_max_side", T_INT, F(face_crop_max_side), 0, 0, 1 << 20,
     "faces=auto: images up to this side are face crops, not photos"},
};
#undef F
#define NOPTS (sizeof opts / sizeof opts[0])

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void cfg_defaults(svc_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "0.0.0.0");
    c->port = 8080;
    snprintf(c->model, sizeof c->model, "models/default.emod");
    c->workers = 0;
    c->http_threads = 2;
    c->queue_size = 64;
    c->max_body_bytes = 8LL << 20;
    c->max_image_width = 4096;
    c->max_image_height = 4096;
    c->max_image_pixels = 4096LL * 4096;
    c->connection_timeout = 30;
    c->connection_limit = 1024;
    c->connection_memory_limit = 64 * 1024;
    c->shutdown_grace = 10;
    c->retry_after = 1;
    c->log_format = CFG_LOG_PLAIN;
    c->log_requests = 1;
    c->tta = 0;
    c->cors_count = 0;
    snprintf(c->arch_dir, sizeof c->arch_dir, "config/arch");
    snprintf(c->admin_host, sizeof c->admin_host, "127.0.0.1");
    c->admin_port = -1;
    c->keep_models = 5;
    c->train_threads = 1;
    c->train_nice = 10;
    snprintf(c->face_cascade, sizeof c->face_cascade, "models/haarcascade_frontalface_default.fdc");
    c->face_scale_step_percent = 10;
    c->face_min_size = 0;
    c->face_max_scan_side = 640;
    c->face_min_neighbors = 3;
    c->max_faces = 16;
    c->face_crop_max_side = 128;
}

static const opt_desc *find_opt(const char *key)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (!strcmp(opts[i].key, key)) return &opts[i];
    return NULL;
}

/* Strict integer parse: the whole string, no trailing junk, range checked. */
static int parse_ll(const char *s, long long *out)
{
    if (!s || !*s) return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s) return -1;
    while (isspace((unsigned char)*end)) end++;
    if (*end) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) { *out = 1; return 0; }
        if (!strcasecmp(s, no[i])) { *out = 0; return 0; }
    }
    return -1;
}

static int add_origin(svc_config *c, const char *o, size_t n, const char *source,
                      char *err, size_t errlen)
{
    while (n && isspace((unsigned char)*o)) { o++; n--; }
    while (n && isspace((unsigned char)o[n - 1])) n--;
    if (!n) return 0;
    if (c->cors_count >= CFG_MAX_ORIGINS) {
        set_err(err, errlen, "%s: cors_origins: more than %d origins", source, CFG_MAX_ORIGINS);
        return -1;
    }
    if (n >= sizeof c->cors_origins[0]) {
        set_err(err, errlen, "%s: cors_origins: origin too long", source);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        /* Origins are echoed into a response header: no control characters. */
        if ((unsigned char)o[i] < 0x21 || o[i] == 0x7f || o[i] == ',') {
            set_err(err, errlen, "%s: cors_origins: bad character in origin", source);
            return -1;
        }
    }
    memcpy(c->cors_origins[c->cors_count], o, n);
    c->cors_origins[c->cors_count][n] = '\0';
    c->cors_count++;
    return 0;
}

static int set_value(svc_config *c, const opt_desc *d, const char *value, const char *source,
                     char *err, size_t errlen)
{
    char *field = (char *)c + d->off;
    switch (d->type) {
    case T_INT:
    case T_LL: {
        long long v;
        if (parse_ll(value, &v) || v < d->min || v > d->max) {
            set_err(err, errlen, "%s: %s: bad value '%s' (an integer from %lld to %lld)", source,
                    d->key, value, d->min, d->max);
            return -1;
        }
        if (d->type == T_INT) *(int *)field = (int)v;
        else *(long long *)field = v;
        return 0;
    }
    case T_SECRET:
        /* the value is never echoed back, not even in an error message */
        if (!*value || strlen(value) >= d->size) {
            set_err(err, errlen, "%s: %s: bad value (%s)", source, d->key,
                    *value ? "too long" : "empty");
            return -1;
        }
        snprintf(field, d->size, "%s", value);
        return 0;
    case T_STR:
        if (!*value || strlen(value) >= d->size) {
            set_err(err, errlen, "%s: %s: bad value '%s' (%s)", source, d->key, value,
                    *value ? "too long" : "empty");
            return -1;
        }
        snprintf(field, d->size, "%s", value);
        return 0;
    case T_BOOL:
        if (parse_bool(value, (int *)field)) {
            set_err(err, errlen, "%s: %s: bad value '%s' (true or false)", source, d->key, value);
            return -1;
        }
        return 0;
    case T_LOGFMT:
        if (!strcmp(value, "plain")) c->log_format = CFG_LOG_PLAIN;
        else if (!strcmp(value, "json")) c->log_format = CFG_LOG_JSON;
        else {
            set_err(err, errlen, "%s: %s: bad value '%s' (plain or json)", source, d->key, value);
            return -1;
        }
        return 0;
    case T_ORIGINS: {
        c->cors_count = 0; /* a later source replaces the list, it does not extend it */
        const char *p = value;
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            if (add_origin(c, p, n, source, err, errlen)) return -1;
            if (!comma) break;
            p = comma + 1;
        }
        return 0;
    }
    }
    return -1;
}

int cfg_set(svc_config *c, const char *key, const char *value, const char *source,
            char *err, size_t errlen)
{
    const opt_desc *d = find_opt(key);
    if (!d) {
        set_err(err, errlen, "%s: unknown setting '%s'", source, key);
        return -1;
    }
    return set_value(c, d, value, source, err, errlen);
}

static int apply_json_value(svc_config *c, const opt_desc *d, json_t *v, const char *source,
                            char *err, size_t errlen)
{
    char buf[64];
    switch (d->type) {
    case T_INT:
    case T_LL:
        if (!json_is_integer(v)) goto type_err;
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        return set_value(c, d, buf, source, err, errlen);
    case T_STR:
        if (json_is_null(v)) { /* an optional path left unset (--print-config writes null) */
            *((char *)c + d->off) = '\0';
            return 0;
        }
        /* fall through */
    case T_LOGFMT:
        if (!json_is_string(v)) goto type_err;
        return set_value(c, d, json_string_value(v), source, err, errlen);
    case T_BOOL:
        if (!json_is_boolean(v)) goto type_err;
        *(int *)((char *)c + d->off) = json_is_true(v);
        return 0;
    case T_SECRET:
        if (json_is_null(v)) return 0; /* what --print-config writes: leaves it unset */
        if (!json_is_string(v)) goto type_err;
        return set_value(c, d, json_string_value(v), source, err, errlen);
    case T_ORIGINS: {
        if (!json_is_array(v)) goto type_err;
        c->cors_count = 0;
        size_t i;
        json_t *o;
        json_array_foreach(v, i, o) {
            if (!json_is_string(o)) goto type_err;
            const char *s = json_string_value(o);
            if (!*s || strchr(s, ',')) {
                set_err(err, errlen, "%s: cors_origins: bad origin '%s'", source, s);
                return -1;
            }
            if (add_origin(c, s, strlen(s), source, err, errlen)) return -1;
        }
        return 0;
    }
    }
type_err:
    set_err(err, errlen, "%s: %s: bad value (expected %s)", source, d->key,
            d->type == T_INT || d->type == T_LL ? "an integer"
            : d->type == T_BOOL                 ? "true or false"
            : d->type == T_ORIGINS              ? "an array of strings"
                                                : "a string");
    return -1;
}

static int apply_json_obj(svc_config *c, json_t *root, const char *source, char *err,
                          size_t errlen)
{
    if (!json_is_object(root)) {
        set_err(err, errlen, "%s: the configuration must be a JSON object", source);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        const opt_desc *d = find_opt(key);
        if (!d) {
            set_err(err, errlen, "%s: unknown key '%s'", source, key);
            return -1;
        }
        if (apply_json_value(c, d, v, source, err, errlen)) return -1;
    }
    return 0;
}

int cfg_apply_json(svc_config *c, const char *json, const char *source, char *err,
                   size_t errlen)
{
    json_error_t je;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        set_err(err, errlen, "%s:%d:%d: invalid JSON: %s", source, je.line, je.column, je.text);
        return -1;
    }
    int rc = apply_json_obj(c, root, source, err, errlen);
    json_decref(root);
    return rc;
}

int cfg_apply_file(svc_config *c, const char *path, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        set_err(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        return -1;
    }
    int rc = apply_json_obj(c, root, path, err, errlen);
    json_decref(root);
    return rc;
}

#define ENV_PREFIX "EMOTIOND_"

int cfg_apply_env(svc_config *c, char *const *envp, char *err, size_t errlen)
{
    if (!envp) return 0;
    for (char *const *e = envp; *e; e++) {
        if (strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX))) continue;
        const char *name = *e;
        const char *eq = strchr(name, '=');
        if (!eq) continue;
        size_t klen = (size_t)(eq - name) - strlen(ENV_PREFIX);
        char key[64], var[80];
        if (klen >= sizeof key) {
            set_err(err, errlen, "environment: unknown variable '%.*s'", (int)(eq - name), name);
            return -1;
        }
        for (size_t i = 0; i < klen; i++)
            key[i] = (char)tolower((unsigned char)name[strlen(ENV_PREFIX) + i]);
        key[klen] = '\0';
        snprintf(var, sizeof var, "%.*s", (int)(eq - name), name);
        if (!strcmp(key, "config")) continue; /* the file itself, read by cfg_load */
        const opt_desc *d = find_opt(key);
        if (!d) {
            set_err(err, errlen, "environment: unknown variable '%s'", var);
            return -1;
        }
        if (set_value(c, d, eq + 1, var, err, errlen)) return -1;
    }
    return 0;
}

/* "--max-body-bytes" -> "max_body_bytes" */
static int flag_to_key(const char *flag, size_t n, char *key, size_t keylen)
{
    if (n >= keylen) return -1;
    for (size_t i = 0; i < n; i++) key[i] = flag[i] == '-' ? '_' : flag[i];
    key[n] = '\0';
    return 0;
}

int cfg_apply_args(svc_config *c, int argc, char *const *argv, cfg_extra *extra,
                   char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--print-config")) {
            if (extra) extra->print_config = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (extra) extra->help = 1;
            continue;
        }
        if (strncmp(a, "--", 2) || !a[2]) {
            set_err(err, errlen, "unexpected argument '%s'", a);
            return -1;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        const char *value = NULL;
        if (eq) value = eq + 1;
        else if (i + 1 < argc) value = argv[++i];
        char key[64];
        if (flag_to_key(name, n, key, sizeof key)) {
            set_err(err, errlen, "unknown option '%s'", a);
            return -1;
        }
        if (!strcmp(key, "config")) {
            if (!value) goto missing; /* already read by cfg_load */
            continue;
        }
        const opt_desc *d = find_opt(key);
        if (!d) {
            set_err(err, errlen, "unknown option '--%.*s'", (int)n, name);
            return -1;
        }
        if (!value) goto missing;
        char src[80];
        snprintf(src, sizeof src, "--%.*s", (int)n, name);
        if (set_value(c, d, value, src, err, errlen)) return -1;
        continue;
    missing:
        set_err(err, errlen, "option '--%.*s' needs a value", (int)n, name);
        return -1;
    }
    return 0;
}

/* The config file named by the last --config flag, else EMOTIOND_CONFIG. */
static const char *find_config_file(int argc, char *const *argv, char *const *envp)
{
    const char *file = NULL;
    for (char *const *e = envp; e && *e; e++)
        if (!strncmp(*e, "EMOTIOND_CONFIG=", 16)) file = *e + 16;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) file = argv[++i];
        else if (!strncmp(argv[i], "--config=", 9)) file = argv[i] + 9;
    }
    return file && *file ? file : NULL;
}

int cfg_load(svc_config *c, int argc, char *const *argv, char *const *envp,
             cfg_extra *extra, char *err, size_t errlen)
{
    if (extra) memset(extra, 0, sizeof *extra);
    cfg_defaults(c);
    const char *file = find_config_file(argc, argv, envp);
    if (file) {
        if (cfg_apply_file(c, file, err, errlen)) return -1;
        if (extra) snprintf(extra->config_file, sizeof extra->config_file, "%s", file);
    }
    if (cfg_apply_env(c, envp, err, errlen)) return -1;
    if (cfg_apply_args(c, argc, argv, extra, err, errlen)) return -1;
    return 0;
}

char *cfg_to_json(const svc_config *c)
{
    json_t *o = json_object();
    if (!o) return NULL;
    for (size_t i = 0; i < NOPTS; i++) {
        const opt_desc *d = &opts[i];
        const char *field = (const char *)c + d->off;
        json_t *v = NULL;
        switch (d->type) {
        case T_INT: v = json_integer(*(const int *)field); break;
        case T_LL: v = json_integer(*(const long long *)field); break;
        case T_STR: v = *field ? json_string(field) : json_null(); break; /* unset path */
        case T_BOOL: v = json_boolean(*(const int *)field); break;
        case T_LOGFMT: v = json_string(c->log_format == CFG_LOG_JSON ? "json" : "plain"); break;
        case T_SECRET: v = json_null(); break;
        case T_ORIGINS:
            v = json_array();
            for (int k = 0; v && k < c->cors_count; k++)
                json_array_append_new(v, json_string(c->cors_origins[k]));
            break;
        }
        if (!v || json_object_set_new(o, d->key, v)) {
            json_decref(o);
            return NULL;
        }
    }
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

void cfg_print_help(void *file)
{
    FILE *f = file;
    fprintf(f, "usage: emotiond serve [--config FILE] [--print-config] [--OPTION VALUE ...]\n\n"
               "Settings (JSON key / EMOTIOND_KEY variable / --key flag), later sources win:\n"
               "defaults < config file < environment < flags.\n\n");
    svc_config d;
    cfg_defaults(&d);
    for (size_t i = 0; i < NOPTS; i++) {
        char flag[64];
        size_t n = strlen(opts[i].key);
        for (size_t k = 0; k <= n; k++) flag[k] = opts[i].key[k] == '_' ? '-' : opts[i].key[k];
        const char *field = (const char *)&d + opts[i].off;
        char def[64];
        switch (opts[i].type) {
        case T_INT: snprintf(def, sizeof def, "%d", *(const int *)field); break;
        case T_LL: snprintf(def, sizeof def, "%lld", *(const long long *)field); break;
        case T_STR: snprintf(def, sizeof def, "%s", field); break;
        case T_BOOL: snprintf(def, sizeof def, "%s", *(const int *)field ? "true" : "false"); break;
        case T_LOGFMT: snprintf(def, sizeof def, "plain"); break;
        case T_ORIGINS:
        case T_SECRET: snprintf(def, sizeof def, "none"); break;
        }
        fprintf(f, "  --%-24s %s [%s]\n", flag, opts[i].help, def);
    }
    fprintf(f, "\nSignals: SIGTERM/SIGINT drain and exit, SIGHUP reloads the model file.\n");
}

int cfg_effective_workers(const svc_config *c)
{
    if (c->workers > 0) return c->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n > 256 ? 256 : n) : 1;
}
