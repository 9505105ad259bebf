/* app.c - assembling and tearing down one service instance (see app.h). */
#include "app.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin_routes.h"
#include "app_store.h"
#include "http_server.h"
#include "metrics.h"
#include "predict.h"
#include "request_log.h"
#include "worker_pool.h"

struct app {
    svc_config cfg;
    FILE *log;
    metrics met;
    wp_pool *pool;
    srv_server *srv;
    svc_config admin_cfg;  /* the separate admin listener's settings */
    srv_server *admin_srv; /* NULL when the admin API shares the main port */
    ms_store *store;       /* NULL without model_dir */
    admin_api *admin;
    char *openapi;
    size_t openapi_len;
    int stopped;
};

static char *read_small_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END)) goto err;
    long n = ftell(f);
    if (n < 0 || n > (1L << 22) || fseek(f, 0, SEEK_SET)) goto err;
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) goto err;
    buf[n] = '\0';
    *len = (size_t)n;
    fclose(f);
    return buf;
err:
    free(buf);
    fclose(f);
    return NULL;
}

/* The spec is served from the working directory (make run, tests) or from
 * next to the build directory holding the executable (build/emotiond ->
 * ./openapi.yaml), so the running binary serves the spec of its checkout. */
static char *load_openapi(size_t *len)
{
    char *s = read_small_file("openapi.yaml", len);
    if (s) return s;
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 64);
    if (n <= 0) return NULL;
    exe[n] = '\0';
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash) return NULL;
        *slash = '\0';
        char path[1100];
        snprintf(path, sizeof path, "%s/openapi.yaml", exe);
        if ((s = read_small_file(path, len))) return s;
    }
    return NULL;
}

/* Takes ownership of store (closed on failure). */
static int start(const svc_config *cfg, FILE *log, svc_model *model, ms_store *store, app **out,
                 char *err, size_t errlen)
{
    *out = NULL;
    app *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        ms_close(store);
        return -1;
    }
    a->store = store;
    a->cfg = *cfg;
    a->log = log ? log : stderr;
    metrics_init(&a->met);
    /* One worker per core does the parallelism; a multi-threaded BLAS inside
     * every worker would only oversubscribe the cores. */
    openblas_set_num_threads(1);
    int workers = cfg_effective_workers(&a->cfg);
    wp_config pc = {.workers = workers,
                    .capacity = a->cfg.queue_size,
                    .max_batch = a->cfg.max_batch,
                    .batch_delay_us = a->cfg.max_batch_delay_us,
                    .precision = a->cfg.precision};
    a->pool = wp_create(model, &pc, err, errlen);
    if (!a->pool) goto err;
    const int precision = wp_set_precision(a->pool, a->cfg.precision);
    if (precision != a->cfg.precision)
        rlog_event(a->log, a->cfg.log_format, "warn", "precision %s needs a CPU with %s: serving %s",
                   nn_precision_name(a->cfg.precision),
                   nn_precision_needs((nn_precision)a->cfg.precision), nn_precision_name(precision));
    a->openapi = load_openapi(&a->openapi_len);
    if (!a->openapi)
        rlog_event(a->log, a->cfg.log_format, "warn",
                   "openapi.yaml not found: GET /openapi.yaml will answer 404");
    admin_deps ad = {&a->cfg, a->pool, a->store, a->log};
    a->admin = admin_create(&ad, err, errlen);
    if (!a->admin) goto err;
    int split = a->cfg.admin_port >= 0; /* the admin API on its own port */
    srv_deps d = {&a->cfg, a->pool, &a->met, a->log, a->openapi, a->openapi_len, a->admin,
                  split ? SRV_SERVE_PUBLIC : SRV_SERVE_ALL};
    a->srv = srv_start(&d, err, errlen);
    if (!a->srv) goto err;
    if (split) {
        a->admin_cfg = a->cfg;
        snprintf(a->admin_cfg.host, sizeof a->admin_cfg.host, "%s", a->cfg.admin_host);
        a->admin_cfg.port = a->cfg.admin_port;
        srv_deps ds = {&a->admin_cfg, a->pool, &a->met, a->log, NULL, 0, a->admin, SRV_SERVE_ADMIN};
        a->admin_srv = srv_start(&ds, err, errlen);
        if (!a->admin_srv) goto err;
    }
    rlog_event(a->log, a->cfg.log_format, "info",
               "serving model %s version %s (%s) with %d workers, queue %d, batches up to %d, %s",
               model->id, model->version, a->cfg.model, workers, a->cfg.queue_size,
               a->cfg.max_batch, nn_precision_name(precision));
    *out = a;
    return 0;
err:
    srv_stop(a->srv);
    admin_destroy(a->admin);
    wp_destroy(a->pool);
    ms_close(a->store);
    free(a->openapi);
    free(a);
    return -1;
}

int app_start_with_model(const svc_config *cfg, FILE *log, svc_model *model, app **out,
                         char *err, size_t errlen)
{
    ms_store *store = NULL;
    svc_model *m = sm_ref(model);
    if (cfg->model_dir[0]) { /* the store decides; model only seeds an empty one */
        sm_unref(m);
        m = app_store_open(cfg, model->nn, &store, err, errlen);
        if (!m) return -1;
    }
    int rc = start(cfg, log, m, store, out, err, errlen);
    sm_unref(m);
    return rc;
}

int app_start(const svc_config *cfg, FILE *log, app **out, char *err, size_t errlen)
{
    *out = NULL;
    ms_store *store = NULL;
    svc_model *m = cfg->model_dir[0] ? app_store_open(cfg, NULL, &store, err, errlen)
                                     : sm_load(cfg->model, err, errlen);
    if (!m) return -1;
    int rc = start(cfg, log, m, store, out, err, errlen);
    sm_unref(m);
    return rc;
}

int app_admin_port(const app *a)
{
    return a->admin_srv ? srv_port(a->admin_srv) : srv_port(a->srv);
}

int app_port(const app *a)
{
    return srv_port(a->srv);
}

int app_reload(app *a, char *err, size_t errlen)
{
    char e[1024];
    /* with a store, the active version is what a reload re-reads */
    svc_model *m = a->store ? app_store_load_active(a->store, e, sizeof e)
                            : sm_load(a->cfg.model, e, sizeof e);
    if (!m) {
        atomic_fetch_add(&a->met.model_reloads_failed, 1);
        rlog_event(a->log, a->cfg.log_format, "error",
                   "model reload refused, the current model keeps serving: %s", e);
        if (err) snprintf(err, errlen, "%s", e);
        return -1;
    }
    wp_set_model(a->pool, m);
    atomic_fetch_add(&a->met.model_reloads_ok, 1);
    rlog_event(a->log, a->cfg.log_format, "info", "model reloaded: %s version %s from %s", m->id,
               m->version, a->cfg.model);
    sm_unref(m);
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until no request is in flight or the deadline (monotonic seconds). */
static int wait_in_flight(app *a, double deadline)
{
    while (srv_in_flight(a->srv) > 0) {
        if (predict_now() >= deadline) return -1;
        sleep_ms(5);
    }
    return 0;
}

int app_shutdown(app *a)
{
    if (a->stopped) return 0;
    a->stopped = 1;
    double t0 = predict_now();
    long long n = srv_in_flight(a->srv);
    rlog_event(a->log, a->cfg.log_format, "info",
               "shutting down: %lld request(s) in flight, grace period %d s", n,
               a->cfg.shutdown_grace);
    admin_stop(a->admin); /* a training job checkpoints and stops meanwhile */
    srv_begin_shutdown(a->srv);
    if (a->admin_srv) srv_begin_shutdown(a->admin_srv);
    int clean = wait_in_flight(a, t0 + a->cfg.shutdown_grace) == 0;
    if (!clean) {
        /* Out of time: queued jobs are answered 503 and their connections
         * resumed; running jobs take milliseconds, so they are waited for. */
        wp_close(a->pool);
        if (wp_wait_idle(a->pool, 5.0)) {
            /* A worker is stuck: stopping libmicrohttpd with a suspended
             * connection would abort, so leave it to process exit. */
            rlog_event(a->log, a->cfg.log_format, "error",
                       "shutdown: a worker did not finish; exiting without closing connections");
            return -1;
        }
        wait_in_flight(a, predict_now() + 1.0);
    }
    long long left = srv_in_flight(a->srv);
    srv_stop(a->srv);
    a->srv = NULL;
    srv_stop(a->admin_srv);
    a->admin_srv = NULL;
    /* the job thread may activate a model through the pool: joined first */
    admin_destroy(a->admin);
    a->admin = NULL;
    wp_destroy(a->pool);
    a->pool = NULL;
    rlog_event(a->log, a->cfg.log_format, "info",
               "stopped after %.3f s (%s, %lld request(s) cut off)", predict_now() - t0,
               clean ? "drained" : "grace period exceeded", left);
    return clean ? 0 : -1;
}

void app_free(app *a)
{
    if (!a) return;
    app_shutdown(a);
    admin_destroy(a->admin);
    ms_close(a->store);
    free(a->openapi);
    free(a);
}
