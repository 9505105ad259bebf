/* worker_pool.h - N inference threads taking jobs from one bounded queue.
 *
 * Each worker owns a private clone of the current model and its own scratch
 * memory (nn_ws), so inference needs no lock. A full queue refuses the job at
 * once (the caller answers 503) instead of letting latency grow. A new model
 * (SIGHUP) is published with wp_set_model; each worker swaps to it before its
 * next job, never in the middle of one.
 */
#ifndef SERVICE_WORKER_POOL_H
#define SERVICE_WORKER_POOL_H

#include <stddef.h>

#include "jpeg_dc.h"
#include "model_ref.h"

typedef struct wp_pool wp_pool;

/* What a job sees while it runs on a worker. */
typedef struct {
    const nn_model *model;   /* the worker's private copy */
    nn_ws *ws;               /* the worker's scratch memory */
    const svc_model *info;   /* the model the copy was made from */
    int worker;              /* index, 0..workers-1 */
    jpeg_dc_cache *jpeg;     /* the worker's JPEG tables (NULL: none kept) */
} wp_ctx;

/* Runs n jobs (1 <= n <= the pool's max_batch) that were queued with the
 * same run function, in queue order: args[0..n-1]. Micro-batching: when
 * several jobs wait, a worker takes them together so that the function can
 * run one batched forward pass and answer them at once (one wake-up of the
 * HTTP threads instead of n). n is 1 whenever the queue holds one job, so a
 * lightly loaded server never waits for a batch to fill (unless the pool's
 * batch delay says otherwise). */
typedef void (*wp_run_fn)(void **args, int n, const wp_ctx *ctx);
/* Called instead of run for a job dropped by wp_cancel_pending/wp_destroy. */
typedef void (*wp_cancel_fn)(void *arg);

enum { WP_OK = 0, WP_E_FULL = -1, WP_E_CLOSED = -2 };

typedef struct {
    int queue_depth, queue_capacity;
    int workers, busy;
    double busy_seconds; /* summed over workers */
    unsigned long long jobs_done;
    unsigned long long batches; /* calls of a run function: jobs_done / batches = mean batch */
    int idle;                   /* workers asleep, waiting for a job */
} wp_stats;

/* Largest max_batch wp_create takes. */
#define WP_MAX_BATCH 64

typedef struct {
    int workers;        /* threads (>= 1) */
    int capacity;       /* queued jobs before wp_submit answers WP_E_FULL */
    int max_batch;      /* jobs one worker takes at once, 1..WP_MAX_BATCH */
    int batch_delay_us; /* 0: never wait for a batch to fill; else how long a
                         * worker that found fewer than max_batch jobs waits
                         * for more before it starts */
    int precision;      /* NN_PRECISION_* the workers start in (the copies
                         * are planned for it: an fp32 plan holds Winograd
                         * weights an int8 one does not need) */
} wp_config;

/* Takes a reference to model. Each worker's scratch memory holds max_batch
 * images. */
wp_pool *wp_create(svc_model *model, const wp_config *cfg, char *err, size_t errlen);

/* WP_OK, WP_E_FULL (queue at capacity) or WP_E_CLOSED (wp_close was called). */
int wp_submit(wp_pool *p, wp_run_fn run, wp_cancel_fn cancel, void *arg);

/* Publishes a new model (takes a reference); the old one is released once no
 * worker uses it. */
void wp_set_model(wp_pool *p, svc_model *model);

/* The arithmetic of the workers' model copies (NN_PRECISION_*, nn.h), from
 * each worker's next job on, for every model published later too. Returns
 * the precision in effect, nn_precision_served (INT8 on a CPU without
 * AVX-512 VNNI: FP16, or FP32 without F16C). The pool starts in FP32. */
int wp_set_precision(wp_pool *p, int precision);

/* The current model, with a reference the caller drops with sm_unref. */
svc_model *wp_get_model(wp_pool *p);

void wp_get_stats(wp_pool *p, wp_stats *s);

/* Waits until no job is queued or running, or timeout_s passed; returns 0 when idle. */
int wp_wait_idle(wp_pool *p, double timeout_s);

/* Refuses further jobs and cancels the queued ones (their cancel callbacks
 * run in the calling thread); running jobs finish. */
void wp_close(wp_pool *p);

/* wp_close, then joins the workers and frees everything. */
void wp_destroy(wp_pool *p);

#endif
