/* worker_pool.c - bounded job queue and inference threads (see worker_pool.h). */
#include "worker_pool.h"
#include "util.h"

#include <errno.h>
#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    wp_run_fn run;
    wp_cancel_fn cancel;
    void *arg;
} job;

typedef struct {
    wp_pool *pool;
    int index;
    pthread_t thread;
    int started;
    nn_model *model;  /* private copy */
    nn_ws *ws;
    jpeg_dc_cache *jpeg; /* Huffman tables of the large JPEGs it decoded */
    svc_model *info;  /* what model was copied from (referenced) */
    unsigned gen;     /* generation of info */
    int precision;    /* NN_PRECISION_* asked of model */
    pthread_cond_t wake; /* signalled when a job is handed to this idle worker */
    int asleep;          /* on the pool's idle stack (guarded by the pool's mu) */
} worker;

struct wp_pool {
    pthread_mutex_t mu;
    pthread_cond_t has_job;  /* a job arrived: for a worker gathering a batch */
    pthread_cond_t idle;     /* a job finished */
    /* Idle workers, the most recently idle on top. A new job wakes the top
     * one: with one condition variable for all, glibc wakes the longest
     * waiter, so at low load the workers take turns and each request runs on
     * a model copy whose weights another worker's run has pushed out of the
     * caches; waking the worker that just finished keeps one copy warm
     * (measured: 2 workers at 1 connection answered ~20% fewer requests
     * than 1 worker before this). */
    worker **idle_stack;
    int n_idle;
    int gathering; /* workers waiting for more jobs to fill a batch */
    int wake_ready; /* the workers' wake conditions are initialised */
    job *ring;
    int cap, head, count;
    int closed, stopping;
    int busy;
    double busy_seconds;
    unsigned long long done, batches;
    int max_batch, batch_delay_us;
    svc_model *model; /* current master */
    unsigned gen;
    int precision;    /* NN_PRECISION_* every worker's copy runs in */
    int nworkers;
    worker *workers;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Makes w's private copy of src, with scratch memory for a whole batch. On
 * failure w keeps what it had. */
static int worker_adopt(worker *w, svc_model *src)
{
    nn_model *m = nn_model_clone(src->nn);
    if (m) nn_model_set_precision(m, (nn_precision)w->precision);
    nn_ws *ws = m ? nn_ws_create(m, w->pool->max_batch) : NULL;
    if (!m || !ws) {
        if (m) nn_model_free(m);
        return -1;
    }
    if (w->ws) nn_ws_free(w->ws);
    if (w->model) nn_model_free(w->model);
    sm_unref(w->info);
    w->model = m;
    w->ws = ws;
    w->info = sm_ref(src);
    return 0;
}

/* Hands the queue to the most recently idle worker, if any. Called with
 * p->mu held. */
static void wake_one(wp_pool *p)
{
    if (!p->n_idle) return;
    worker *w = p->idle_stack[--p->n_idle];
    w->asleep = 0;
    pthread_cond_signal(&w->wake);
}

/* Sleeps until wake_one picks w or the pool stops. Called with p->mu held. */
static void sleep_idle(wp_pool *p, worker *w)
{
    w->asleep = 1;
    p->idle_stack[p->n_idle++] = w;
    while (w->asleep && !p->stopping) pthread_cond_wait(&w->wake, &p->mu);
    if (w->asleep) { /* stopping: leave the stack */
        for (int i = 0; i < p->n_idle; i++)
            if (p->idle_stack[i] == w) {
                p->idle_stack[i] = p->idle_stack[--p->n_idle];
                break;
            }
        w->asleep = 0;
    }
}

/* Moves the job at the head of the queue to out. Called with p->mu held. */
static job pop_job(wp_pool *p)
{
    job j = p->ring[p->head];
    p->head = (p->head + 1) % p->cap;
    p->count--;
    return j;
}

/* Takes the first job and, behind it, up to max_batch - 1 more with the same
 * run function (a different one ends the batch, so order is kept). With a
 * batch delay, a batch that is not full waits that long for more jobs;
 * without one it starts at once. Called with p->mu held and p->count > 0;
 * returns the number taken into batch[]. */
static int take_batch(wp_pool *p, job *batch)
{
    int n = 0;
    batch[n++] = pop_job(p);
    while (n < p->max_batch && p->count && p->ring[p->head].run == batch[0].run)
        batch[n++] = pop_job(p);
    if (n < p->max_batch && p->batch_delay_us > 0 && !p->count) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        long long ns = dl.tv_nsec + (long long)p->batch_delay_us * 1000;
        dl.tv_sec += (time_t)(ns / 1000000000LL);
        dl.tv_nsec = (long)(ns % 1000000000LL);
        p->gathering++;
        while (n < p->max_batch && !p->stopping && !p->closed) {
            if (p->count) {
                if (p->ring[p->head].run != batch[0].run) break;
                batch[n++] = pop_job(p);
                continue;
            }
            if (pthread_cond_timedwait(&p->has_job, &p->mu, &dl) == ETIMEDOUT) break;
        }
        p->gathering--;
    }
    /* Jobs left behind (a full batch, another kind, or jobs that arrived
     * while this worker gathered): another worker starts on them. */
    if (p->count) wake_one(p);
    return n;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    wp_pool *p = w->pool;
    job batch[WP_MAX_BATCH];
    void *args[WP_MAX_BATCH];
    /* Parallelism comes from the workers, one per core: the engine's OpenMP
     * regions run single-threaded inside a worker. */
    omp_set_num_threads(1);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->count && !p->stopping) sleep_idle(p, w);
        if (!p->count) { /* stopping and nothing left */
            pthread_mutex_unlock(&p->mu);
            break;
        }
        /* Busy from the first job taken: a worker gathering a batch holds
         * jobs that are no longer queued, and wp_wait_idle must wait for
         * them (before this it could return while they sat in batch[]). */
        p->busy++;
        const int n = take_batch(p, batch);
        svc_model *latest = NULL;
        if (w->gen != p->gen) {
            latest = sm_ref(p->model);
            w->gen = p->gen;
        }
        const int precision = p->precision;
        pthread_mutex_unlock(&p->mu);

        /* the copy is the worker's own: no lock (the plan follows it) */
        if (precision != w->precision) {
            w->precision = precision;
            nn_model_set_precision(w->model, (nn_precision)precision);
        }
        /* Swap between jobs: if the copy fails (out of memory) the worker
         * keeps serving the model it has. */
        if (latest) {
            worker_adopt(w, latest);
            sm_unref(latest);
        }
        double t0 = nn_now_s();
        wp_ctx ctx = {w->model, w->ws, w->info, w->index, w->jpeg};
        for (int i = 0; i < n; i++) args[i] = batch[i].arg;
        batch[0].run(args, n, &ctx);
        double dt = nn_now_s() - t0;

        pthread_mutex_lock(&p->mu);
        p->busy--;
        p->busy_seconds += dt;
        p->done += (unsigned long long)n;
        p->batches++;
        pthread_cond_broadcast(&p->idle);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

wp_pool *wp_create(svc_model *model, const wp_config *cfg, char *err, size_t errlen)
{
    const int workers = cfg->workers;
    wp_pool *p = calloc(1, sizeof *p);
    if (!p) goto oom;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->has_job, NULL);
    pthread_cond_init(&p->idle, NULL);
    p->cap = cfg->capacity > 0 ? cfg->capacity : 1;
    p->max_batch = cfg->max_batch < 1 ? 1 : cfg->max_batch > WP_MAX_BATCH ? WP_MAX_BATCH
                                                                          : cfg->max_batch;
    p->batch_delay_us = cfg->batch_delay_us > 0 ? cfg->batch_delay_us : 0;
    p->ring = calloc((size_t)p->cap, sizeof *p->ring);
    p->nworkers = workers > 0 ? workers : 1;
    p->workers = calloc((size_t)p->nworkers, sizeof *p->workers);
    p->idle_stack = calloc((size_t)p->nworkers, sizeof *p->idle_stack);
    if (!p->ring || !p->workers || !p->idle_stack) goto oom;
    for (int i = 0; i < p->nworkers; i++) pthread_cond_init(&p->workers[i].wake, NULL);
    p->wake_ready = 1;
    p->model = sm_ref(model);
    p->gen = 1;
    p->precision = cfg->precision;
    for (int i = 0; i < p->nworkers; i++) {
        worker *w = &p->workers[i];
        w->pool = p;
        w->index = i;
        w->gen = p->gen;
        w->precision = cfg->precision;
        /* Copies are made here rather than lazily so that running out of
         * memory shows at start-up, not on the first request. */
        if (worker_adopt(w, model)) goto oom;
        w->jpeg = jpeg_dc_cache_new(); /* NULL: the tables are built per image */
    }
    for (int i = 0; i < p->nworkers; i++) {
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i])) {
            set_err(err, errlen, "cannot start worker thread %d", i);
            wp_destroy(p);
            return NULL;
        }
        p->workers[i].started = 1;
    }
    return p;
oom:
    set_err(err, errlen, "out of memory creating %d workers", workers);
    wp_destroy(p);
    return NULL;
}

int wp_submit(wp_pool *p, wp_run_fn run, wp_cancel_fn cancel, void *arg)
{
    pthread_mutex_lock(&p->mu);
    int rc = WP_OK;
    if (p->closed) rc = WP_E_CLOSED;
    else if (p->count == p->cap) rc = WP_E_FULL;
    else {
        p->ring[(p->head + p->count) % p->cap] = (job){run, cancel, arg};
        p->count++;
        /* A worker gathering a batch takes the job (and wakes another if it
         * cannot); else the most recently idle worker does. */
        if (p->gathering) pthread_cond_signal(&p->has_job);
        else wake_one(p);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void wp_set_model(wp_pool *p, svc_model *model)
{
    sm_ref(model);
    pthread_mutex_lock(&p->mu);
    svc_model *old = p->model;
    p->model = model;
    p->gen++;
    pthread_mutex_unlock(&p->mu);
    sm_unref(old); /* workers hold their own references to what they copied */
}

int wp_set_precision(wp_pool *p, int precision)
{
    pthread_mutex_lock(&p->mu);
    p->precision = precision;
    pthread_mutex_unlock(&p->mu);
    return nn_precision_served((nn_precision)precision);
}

svc_model *wp_get_model(wp_pool *p)
{
    pthread_mutex_lock(&p->mu);
    svc_model *m = sm_ref(p->model);
    pthread_mutex_unlock(&p->mu);
    return m;
}

void wp_get_stats(wp_pool *p, wp_stats *s)
{
    pthread_mutex_lock(&p->mu);
    s->queue_depth = p->count;
    s->queue_capacity = p->cap;
    s->workers = p->nworkers;
    s->busy = p->busy;
    s->busy_seconds = p->busy_seconds;
    s->jobs_done = p->done;
    s->batches = p->batches;
    s->idle = p->n_idle;
    pthread_mutex_unlock(&p->mu);
}

int wp_wait_idle(wp_pool *p, double timeout_s)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    double t = dl.tv_sec + dl.tv_nsec * 1e-9 + (timeout_s > 0 ? timeout_s : 0);
    dl.tv_sec = (time_t)t;
    dl.tv_nsec = (long)((t - (double)dl.tv_sec) * 1e9);
    if (dl.tv_nsec >= 1000000000L) dl.tv_nsec = 999999999L;
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    while (p->count || p->busy) {
        if (pthread_cond_timedwait(&p->idle, &p->mu, &dl)) {
            rc = (p->count || p->busy) ? -1 : 0;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void wp_close(wp_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->closed = 1;
    int n = p->count;
    job *dropped = n ? malloc((size_t)n * sizeof *dropped) : NULL;
    for (int i = 0; dropped && i < n; i++) dropped[i] = p->ring[(p->head + i) % p->cap];
    if (dropped) {
        p->head = (p->head + n) % p->cap;
        p->count = 0;
    }
    pthread_cond_broadcast(&p->idle);
    pthread_mutex_unlock(&p->mu);
    /* Cancel callbacks run without the lock: they resume connections. When
     * the copy could not be allocated the workers simply run the jobs. */
    for (int i = 0; dropped && i < n; i++)
        if (dropped[i].cancel) dropped[i].cancel(dropped[i].arg);
    free(dropped);
}

void wp_destroy(wp_pool *p)
{
    if (!p) return;
    if (p->ring) wp_close(p);
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->has_job);
    for (int i = 0; p->wake_ready && i < p->nworkers; i++) pthread_cond_signal(&p->workers[i].wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; p->workers && i < p->nworkers; i++) {
        worker *w = &p->workers[i];
        if (w->started) pthread_join(w->thread, NULL);
        if (w->ws) nn_ws_free(w->ws);
        if (w->model) nn_model_free(w->model);
        jpeg_dc_cache_free(w->jpeg);
        sm_unref(w->info);
        if (p->wake_ready) pthread_cond_destroy(&w->wake);
    }
    sm_unref(p->model);
    free(p->idle_stack);
    free(p->workers);
    free(p->ring);
    pthread_cond_destroy(&p->idle);
    pthread_cond_destroy(&p->has_job);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
