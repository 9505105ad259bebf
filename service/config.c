/* config.c - settings for `emotiond serve`: one table drives the defaults,
 * the JSON file, the environment, the flags, --print-config and --help, so
 * the four sources cannot drift apart. */
#include "config.h"

#include "cli_help.h"
#include "nn.h"

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
/* T_PRECISION: nn.h's NN_PRECISION_*, written fp32|int8|fp16. */
typedef enum { T_INT, T_LL, T_STR, T_BOOL, T_LOGFMT, T_ORIGINS, T_SECRET, T_PRECISION } opt_type;

/* One setting. This table is the only list of settings: the defaults, the
 * JSON keys, the EMOTIOND_* variables, the --flags, --help, --print-config
 * and --print-config-table (the table in README.md) all come from it. */
typedef struct {
    const char *key;
    opt_type type;
    size_t off;
    size_t size;          /* T_STR, T_SECRET buffer size */
    long long min, max;   /* T_INT, T_LL */
    const char *def;      /* the default in flag syntax; NULL = unset */
    const char *metavar;  /* the flag's value in --help; NULL = from the type */
    const char *help;
} opt_desc;

#define F(field) offsetof(svc_config, field)
#define S(field) offsetof(svc_config, field), sizeof(((svc_config *)0)->field)
static const opt_desc opts[] = {
    {"host", T_STR, S(host), 0, 0, "0.0.0.0", "ADDR", "address to listen on (IPv4 or IPv6)"},
    {"port", T_INT, F(port), 0, 0, 65535, "8080", NULL, "TCP port (0 picks a free one)"},
    {"model", T_STR, S(model), 0, 0, "models/default.emod", "FILE",
     "model file to serve (reloaded on SIGHUP); with `model_dir`, only seeds an empty store"},
    {"workers", T_INT, F(workers), 0, 0, 1024, "0", NULL,
     "inference threads (0 = one per CPU core)"},
    {"http_threads", T_INT, F(http_threads), 0, 1, 256, "2", NULL,
     "libmicrohttpd thread pool size"},
    {"queue_size", T_INT, F(queue_size), 0, 1, 1000000, "64", NULL,
     "inference jobs waiting for a worker before requests are answered 503"},
    {"max_batch", T_INT, F(max_batch), 0, 1, 64, "2", NULL,
     "queued images one worker classifies together, in one forward pass and one answer "
     "round (1 = one at a time); a lone request never waits for a batch to fill"},
    {"max_batch_delay_us", T_INT, F(max_batch_delay_us), 0, 0, 1000000, "0", NULL,
     "microseconds a worker with fewer than `max_batch` images waits for more (0 = starts at "
     "once)"},
    {"max_body_bytes", T_LL, F(max_body_bytes), 0, 1, 1LL << 32, "8388608", NULL,
     "request body limit in bytes (413 above it)"},
    {"max_image_width", T_INT, F(max_image_width), 0, 1, 1 << 20, "4096", NULL,
     "image width limit in pixels (422 above it)"},
    {"max_image_height", T_INT, F(max_image_height), 0, 1, 1 << 20, "4096", NULL,
     "image height limit in pixels (422 above it)"},
    {"max_image_pixels", T_LL, F(max_image_pixels), 0, 1, 1LL << 40, "16777216", NULL,
     "image pixel count limit (422 above it)"},
    {"connection_timeout", T_INT, F(connection_timeout), 0, 1, 86400, "30", NULL,
     "seconds before an idle connection is closed"},
    {"connection_limit", T_INT, F(connection_limit), 0, 1, 1000000, "1024", NULL,
     "concurrent connections"},
    {"connection_memory_limit", T_LL, F(connection_memory_limit), 0, 8192, 1LL << 30, "65536",
     NULL, "libmicrohttpd memory per connection in bytes"},
    {"shutdown_grace", T_INT, F(shutdown_grace), 0, 0, 3600, "10", NULL,
     "seconds to finish in-flight requests on SIGTERM"},
    {"retry_after", T_INT, F(retry_after), 0, 0, 3600, "1", NULL,
     "`Retry-After` seconds sent with 503"},
    {"log_format", T_LOGFMT, F(log_format), 0, 0, 0, "plain", "plain|json",
     "log lines as plain text or JSON"},
    {"log_requests", T_BOOL, F(log_requests), 0, 0, 0, "true", NULL, "log one line per request"},
    {"tta", T_BOOL, F(tta), 0, 0, 0, "true", NULL,
     "also classify the mirrored face and average (twice the inference time; gains per "
     "mode in models/README.md)"},
    {"tta_crops", T_BOOL, F(tta_crops), 0, 0, 0, "true", NULL,
     "also classify the face shifted by 3 px four ways and average (5x the time; with `tta`, "
     "10x: the default, the served accuracy of models/README.md)"},
    {"precision", T_PRECISION, F(precision), 0, 0, 0, "int8", "fp32|int8|fp16",
     "inference arithmetic: `int8` runs 8-bit integers with AVX-512 VNNI (about 3x faster "
     "per image at batch 1 than fp32 with its Winograd convolutions: bench/README.md; "
     "within a few tenths of a point on PublicTest: models/README.md); `fp16` keeps the "
     "3x3 convolutions' Winograd filters in half floats and computes in fp32 (AVX2 + F16C: "
     "half the bytes a batch-1 pass reads; accuracy and speed in bench/README.md); "
     "on a CPU without what it needs, `int8` serves `fp16` (or `fp32` without F16C, and "
     "with AVX-512, where fp32 runs on wider vectors and is the faster) and "
     "`fp16` serves `fp32`, with a warning in the log"},
    {"cors_origins", T_ORIGINS, F(cors_origins), 0, 0, 0, NULL, "LIST",
     "allowed CORS origins, comma-separated (`*` = any; JSON: an array)"},
    {"model_dir", T_STR, S(model_dir), 0, 0, NULL, "DIR",
     "model store directory (enables `/models` and `/train`)"},
    {"data_dir", T_STR, S(data_dir), 0, 0, NULL, "DIR",
     "training data directory (`train/`, `test/`; `feedback/` for `POST /samples`)"},
    {"arch_dir", T_STR, S(arch_dir), 0, 0, "config/arch", "DIR",
     "architectures a training job may name"},
    {"admin_token", T_SECRET, S(admin_token), 0, 0, NULL, "TOKEN",
     "Bearer token of the admin API (never printed; admin API answers 403 without one)"},
    {"admin_token_file", T_STR, S(admin_token_file), 0, 0, NULL, "FILE",
     "file holding the admin token (a mounted secret)"},
    {"admin_host", T_STR, S(admin_host), 0, 0, "127.0.0.1", "ADDR",
     "address of the separate admin port"},
    {"admin_port", T_INT, F(admin_port), 0, -1, 65535, "-1", NULL,
     "separate admin port (-1 = admin API on the main port)"},
    {"keep_models", T_INT, F(keep_models), 0, 1, 10000, "5", NULL,
     "model versions kept in the store (the active one always)"},
    {"train_threads", T_INT, F(train_threads), 0, 1, 8, "1", NULL,
     "threads of a training job"},
    {"train_nice", T_INT, F(train_nice), 0, 0, 19, "10", NULL,
     "nice value of the training thread"},
    {"face_cascade", T_STR, S(face_cascade), 0, 0, "models/haarcascade_frontalface_default.fdc",
     "FILE", "face detector cascade (`null` in the JSON file: no face detection)"},
    {"face_scale_step_percent", T_INT, F(face_scale_step_percent), 0, 1, 100, "10", NULL,
     "face detection: each scanned face size is this % larger"},
    {"face_min_size", T_INT, F(face_min_size), 0, 0, 1 << 20, "0", NULL,
     "face detection: smallest face side in pixels (0 = 24)"},
    {"face_max_scan_side", T_INT, F(face_max_scan_side), 0, 0, 1 << 20, "640", NULL,
     "face detection: downscale to this longer side first (0 = never)"},
    {"face_min_neighbors", T_INT, F(face_min_neighbors), 0, 0, 100, "3", NULL,
     "face detection: overlapping hits a face needs"},
    {"max_faces", T_INT, F(max_faces), 0, 1, 256, "16", NULL,
     "faces classified per image, largest first"},
    {"face_crop_max_side", T_INT, F(face_crop_max_side), 0, 0, 1 << 20, "128", NULL,
     "`faces=auto`: images up to this side are face crops, not photos"},
};
#undef S
#undef F
#define NOPTS (sizeof opts / sizeof opts[0])

static int set_value(svc_config *c, const opt_desc *d, const char *value, const char *source,
                     char *err, size_t errlen);

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
    memset(c, 0, sizeof *c); /* unset strings, no CORS origins */
    char err[256];
    for (size_t i = 0; i < NOPTS; i++) {
        if (opts[i].def && set_value(c, &opts[i], opts[i].def, "default", err, sizeof err)) {
            fprintf(stderr, "emotiond: bad built-in default: %s\n", err); /* a bug */
            abort();
        }
    }
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
    case T_PRECISION: {
        const int p = nn_precision_parse(value);
        if (p < 0) {
            set_err(err, errlen, "%s: %s: bad value '%s' (fp32, int8 or fp16)", source, d->key, value);
            return -1;
        }
        *(int *)field = p;
        return 0;
    }
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
    case T_PRECISION:
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
        if (!strcmp(a, "--print-config-table")) {
            if (extra) extra->print_table = 1;
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

const char *cfg_non_utf8_key(const svc_config *c)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const opt_desc *d = &opts[i];
        const char *field = (const char *)c + d->off;
        if (d->type == T_STR && *field) {
            json_t *v = json_string(field); /* NULL when not UTF-8 */
            if (!v) return d->key;
            json_decref(v);
        }
        if (d->type == T_ORIGINS)
            for (int k = 0; k < c->cors_count; k++) {
                json_t *v = json_string(c->cors_origins[k]);
                if (!v) return d->key;
                json_decref(v);
            }
    }
    return NULL;
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
        case T_PRECISION: v = json_string(nn_precision_name(*(const int *)field)); break;
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

/* "max_body_bytes" -> "--max-body-bytes" / "EMOTIOND_MAX_BODY_BYTES" */
static void key_to_flag(const char *key, char *out, size_t outlen)
{
    size_t n = snprintf(out, outlen, "--%s", key);
    for (size_t i = 2; i < n && i < outlen; i++)
        if (out[i] == '_') out[i] = '-';
}

static void key_to_env(const char *key, char *out, size_t outlen)
{
    size_t n = snprintf(out, outlen, ENV_PREFIX "%s", key);
    for (size_t i = 0; i < n && i < outlen; i++) out[i] = (char)toupper((unsigned char)out[i]);
}

static const char *metavar(const opt_desc *d)
{
    if (d->metavar) return d->metavar;
    switch (d->type) {
    case T_INT:
    case T_LL: return "N";
    case T_BOOL: return "true|false";
    default: return "VALUE";
    }
}

/* Help text without markdown's backquotes. */
static void plain(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *s && o + 1 < outlen; s++)
        if (*s != '`') out[o++] = *s;
    out[o] = '\0';
}

void cfg_print_help(void *file)
{
    FILE *f = file;
    fprintf(f, "usage: emotiond serve [--config FILE] [--SETTING VALUE ...]\n"
               "       emotiond serve --print-config | --print-config-table | --help\n\n");
    help_paragraph(f, "Serves the HTTP API (openapi.yaml): POST /predict, GET /healthz, /livez, "
                      "/readyz, /metrics, /model, /openapi.yaml, the web page at /, and the "
                      "admin API (/train, /models, /samples) when a token is set.");
    fputc('\n', f);
    help_paragraph(f, "Every setting has one name: the JSON key max_body_bytes is the variable "
                      "EMOTIOND_MAX_BODY_BYTES and the flag --max-body-bytes (--flag=VALUE "
                      "works too). Later sources win: defaults < config file < environment < "
                      "flags. An unknown or bad setting stops start-up with a message naming "
                      "it.");
    fputs("\nOptions:\n", f);
    help_option(f, "--config FILE", "JSON file of settings (also EMOTIOND_CONFIG)");
    help_option(f, "--print-config", "print the effective settings as a config file and exit");
    help_option(f, "--print-config-table", "print the settings as a markdown table (README.md) "
                                           "and exit");
    help_option(f, "-h, --help", "print this help and exit");
    fputs("\nSettings [default]:\n", f);
    for (size_t i = 0; i < NOPTS; i++) {
        const opt_desc *d = &opts[i];
        char flag[96], text[512], desc[400];
        key_to_flag(d->key, flag, sizeof flag);
        size_t n = strlen(flag);
        snprintf(flag + n, sizeof flag - n, " %s", metavar(d));
        plain(d->help, desc, sizeof desc);
        snprintf(text, sizeof text, "%s [%s]", desc, d->def ? d->def : "unset");
        help_option(f, flag, text);
    }
    fputs("\nSignals:\n", f);
    help_option(f, "SIGTERM, SIGINT", "stop accepting, finish in-flight requests "
                                      "(shutdown_grace), exit 0");
    help_option(f, "SIGHUP", "reload the model file; a file that does not load is refused and "
                             "the current model keeps serving");
}

/* A table cell: '|' would end it, even inside backquotes (GitHub markdown). */
static void md_cell(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else fputc(*s, f);
    }
}

void cfg_print_table(void *file)
{
    FILE *f = file;
    fprintf(f, "| Setting | Environment variable | Flag | Default | Description |\n"
               "|---|---|---|---|---|\n");
    for (size_t i = 0; i < NOPTS; i++) {
        const opt_desc *d = &opts[i];
        char flag[96], env[96];
        key_to_flag(d->key, flag, sizeof flag);
        key_to_env(d->key, env, sizeof env);
        fprintf(f, "| `%s` | `%s` | `%s ", d->key, env, flag);
        md_cell(f, metavar(d));
        fputs("` | ", f);
        if (d->def) fprintf(f, "`%s`", d->def);
        else fputs("unset", f);
        fputs(" | ", f);
        md_cell(f, d->help);
        fputs(" |\n", f);
    }
}

int cfg_effective_workers(const svc_config *c)
{
    if (c->workers > 0) return c->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n > 256 ? 256 : n) : 1;
}
