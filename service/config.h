/* config.h - the settings of `emotiond serve`.
 *
 * Precedence, lowest first: built-in defaults < JSON config file (--config
 * FILE or EMOTIOND_CONFIG) < EMOTIOND_* environment variables < command-line
 * flags. Every setting has one name: "max_body_bytes" is the JSON key,
 * EMOTIOND_MAX_BODY_BYTES the variable and --max-body-bytes the flag.
 * An unknown key, variable or flag, or a bad value, is an error whose message
 * names it: start-up stops rather than running with a half-applied config.
 */
#ifndef SERVICE_CONFIG_H
#define SERVICE_CONFIG_H

#include <stddef.h>

#define CFG_MAX_ORIGINS 16

typedef enum { CFG_LOG_PLAIN = 0, CFG_LOG_JSON = 1 } cfg_log_format;

typedef struct {
    char host[64];            /* bind address, "0.0.0.0" */
    int port;                 /* 0 = ephemeral (tests) */
    char model[1024];         /* model file served and reloaded on SIGHUP */
    int workers;              /* inference threads; 0 = number of cores */
    int http_threads;         /* libmicrohttpd thread pool size */
    int queue_size;           /* bounded job queue; full -> 503 */
    int max_batch;            /* queued jobs a worker takes at once (micro-batching) */
    int max_batch_delay_us;   /* wait for a fuller batch; 0 = never */
    long long max_body_bytes; /* request body limit -> 413 */
    int max_image_width;      /* decoder limits, checked from the header */
    int max_image_height;
    long long max_image_pixels;
    int connection_timeout;   /* seconds of inactivity before a connection is closed */
    int connection_limit;     /* concurrent connections */
    long long connection_memory_limit; /* bytes per connection inside libmicrohttpd */
    int shutdown_grace;       /* seconds to drain in-flight requests on SIGTERM */
    int retry_after;          /* seconds, sent with 503 */
    cfg_log_format log_format;
    int log_requests;         /* one line per request */
    int tta;                  /* average with the mirrored face */
    int tta_crops;            /* average with four shifted crops */
    int precision;            /* NN_PRECISION_* of the workers' models (int8: AVX-512 VNNI) */
    int cors_count;
    char cors_origins[CFG_MAX_ORIGINS][256]; /* "*" allows any origin */
    /* admin API (see service/admin_routes.h) */
    char model_dir[1024];     /* model store; "" = no store (GET /models, /train refused) */
    char data_dir[1024];      /* training data, Kaggle layout, plus feedback/ samples */
    char arch_dir[1024];      /* architectures POST /train may name */
    char admin_token[256];    /* secret: never printed by --print-config, never logged */
    char admin_token_file[1024]; /* file holding the token (Kubernetes secret) */
    char admin_host[64];      /* bind address of the separate admin port */
    int admin_port;           /* -1 = admin API on the main port; 0 = ephemeral */
    int keep_models;          /* model versions kept in the store (the active one always) */
    int train_threads;        /* threads of a training job */
    int train_nice;           /* nice value of the training thread */
    /* face detection in photos (see nn/face_detect.h) */
    char face_cascade[1024];  /* compact cascade file; "" (null in JSON) = no detection */
    int face_scale_step_percent; /* each scanned face size this much larger (10 = x1.1) */
    int face_min_size;        /* smallest face side in image pixels; 0 = cascade window */
    int face_max_scan_side;   /* downscale photos to this longer side before scanning; 0 = never */
    int face_min_neighbors;   /* raw hits a face needs (3, as OpenCV) */
    int max_faces;            /* faces classified per image (largest first); ?max_faces lowers it */
    int face_crop_max_side;   /* faces=auto: images up to this side are taken as face crops */
} svc_config;

/* What cfg_load saw besides settings. */
typedef struct {
    int print_config; /* --print-config */
    int print_table;  /* --print-config-table */
    int help;         /* --help / -h */
    char config_file[1024]; /* the file read, "" if none */
} cfg_extra;

void cfg_defaults(svc_config *c);

/* Applies one setting by name from its text form (env/flag syntax; lists are
 * comma-separated). source names where it came from, for the error message. */
int cfg_set(svc_config *c, const char *key, const char *value, const char *source,
            char *err, size_t errlen);

/* Applies a JSON object text (the config file format). */
int cfg_apply_json(svc_config *c, const char *json, const char *source,
                   char *err, size_t errlen);
int cfg_apply_file(svc_config *c, const char *path, char *err, size_t errlen);

/* Applies EMOTIOND_* entries of envp (NULL-terminated "K=V" strings). */
int cfg_apply_env(svc_config *c, char *const *envp, char *err, size_t errlen);

/* Applies flags argv[1..argc-1] ("--port 80" or "--port=80"). */
int cfg_apply_args(svc_config *c, int argc, char *const *argv, cfg_extra *extra,
                   char *err, size_t errlen);

/* Everything in order: defaults, file, env, flags. argv[0] is the command name. */
int cfg_load(svc_config *c, int argc, char *const *argv, char *const *envp,
             cfg_extra *extra, char *err, size_t errlen);

/* The effective settings as a JSON object text (malloc'ed), in the config file
 * format, so that --print-config output can be used as a config file. */
char *cfg_to_json(const svc_config *c);
/* The first string setting that is not valid UTF-8 (which JSON, and so
 * cfg_to_json, cannot hold), or NULL. */
const char *cfg_non_utf8_key(const svc_config *c);

/* The usage of `emotiond serve`: one option per setting, with its default. */
void cfg_print_help(void *file);

/* The settings as a markdown table (name, variable, flag, default,
 * description): `emotiond serve --print-config-table`, README.md's table. */
void cfg_print_table(void *file);

/* Effective worker count (resolves 0 to the number of online CPUs). */
int cfg_effective_workers(const svc_config *c);

#endif
