/* test_worker_pool.c - the inference queue: micro-batching (a worker takes
 * the queued jobs together, up to max_batch, never waiting for more unless a
 * batch delay is set), order, counts, and predict_run_batch giving every job
 * the answer predict_run gives it alone. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common_svc.h"
#include "model_ref.h"
#include "predict.h"
#include "worker_pool.h"

/* ---- the pool, with jobs that only record how they ran ------------------- */

#define MAX_RUNS 64

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int released;             /* the blocker job may return */
    int blocker_running;
    int order[MAX_RUNS];      /* job ids in the order they ran */
    int batch_of[MAX_RUNS];   /* per job id: the batch it ran in */
    int batch_size[MAX_RUNS]; /* per batch: its size */
    int worker_of[MAX_RUNS];  /* per batch: the worker that ran it */
    int nrun, nbatch;
} recorder;

typedef struct {
    recorder *rec;
    int id;
    int runs; /* times this job ran */
} rec_job;

static void rec_init(recorder *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

static void rec_destroy(recorder *r)
{
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

static void record(void **args, int n)
{
    recorder *r = ((rec_job *)args[0])->rec;
    pthread_mutex_lock(&r->mu);
    int b = r->nbatch++;
    r->batch_size[b] = n;
    for (int i = 0; i < n; i++) {
        rec_job *j = args[i];
        j->runs++;
        r->batch_of[j->id] = b;
        r->order[r->nrun++] = j->id;
    }
    pthread_mutex_unlock(&r->mu);
}

static void run_a(void **args, int n, const wp_ctx *ctx)
{
    ck_assert_ptr_nonnull(ctx->ws);
    record(args, n);
}

/* Records which worker ran the batch too. */
static void run_w(void **args, int n, const wp_ctx *ctx)
{
    recorder *r = ((rec_job *)args[0])->rec;
    pthread_mutex_lock(&r->mu);
    r->worker_of[r->nbatch] = ctx->worker;
    pthread_mutex_unlock(&r->mu);
    record(args, n);
}

static void run_b(void **args, int n, const wp_ctx *ctx)
{
    (void)ctx;
    record(args, n);
}

/* Holds its worker until released, so that jobs pile up behind it. */
static void run_blocker(void **args, int n, const wp_ctx *ctx)
{
    (void)ctx;
    ck_assert_int_eq(n, 1);
    recorder *r = ((rec_job *)args[0])->rec;
    pthread_mutex_lock(&r->mu);
    r->blocker_running = 1;
    pthread_cond_broadcast(&r->cv);
    while (!r->released) pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

static void no_cancel(void *arg) { (void)arg; }

static svc_model *tiny_model(void)
{
    char path[256], err[256];
    nn_model *m = tsv_make_model_file(7, path, sizeof path);
    remove(path);
    svc_model *sm = sm_wrap(m, NULL, err, sizeof err);
    ck_assert_msg(sm != NULL, "%s", err);
    return sm;
}

static wp_pool *pool_new_workers(svc_model *sm, int workers, int max_batch, int delay_us)
{
    char err[256];
    wp_config pc = {.workers = workers, .capacity = 32, .max_batch = max_batch,
                    .batch_delay_us = delay_us};
    wp_pool *p = wp_create(sm, &pc, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    return p;
}

static wp_pool *pool_new(svc_model *sm, int max_batch, int delay_us)
{
    return pool_new_workers(sm, 1, max_batch, delay_us);
}

/* Submits the blocker and waits until the worker runs it. */
static void block_worker(wp_pool *p, recorder *r, rec_job *blocker)
{
    *blocker = (rec_job){r, MAX_RUNS - 1, 0};
    ck_assert_int_eq(wp_submit(p, run_blocker, no_cancel, blocker), WP_OK);
    pthread_mutex_lock(&r->mu);
    while (!r->blocker_running) pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

static void release_worker(recorder *r)
{
    pthread_mutex_lock(&r->mu);
    r->released = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

START_TEST(test_queued_jobs_run_in_batches)
{
    svc_model *sm = tiny_model();
    wp_pool *p = pool_new(sm, 4, 0);
    recorder r;
    rec_init(&r);
    rec_job blocker, jobs[10];
    block_worker(p, &r, &blocker);
    for (int i = 0; i < 10; i++) {
        jobs[i] = (rec_job){&r, i, 0};
        ck_assert_int_eq(wp_submit(p, run_a, no_cancel, &jobs[i]), WP_OK);
    }
    release_worker(&r);
    ck_assert_int_eq(wp_wait_idle(p, 30), 0);
    /* ten queued jobs, batches of at most four: 4, 4, 2, in queue order */
    ck_assert_int_eq(r.nrun, 10);
    ck_assert_int_eq(r.nbatch, 3);
    ck_assert_int_eq(r.batch_size[0], 4);
    ck_assert_int_eq(r.batch_size[1], 4);
    ck_assert_int_eq(r.batch_size[2], 2);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(jobs[i].runs, 1);
        ck_assert_int_eq(r.order[i], i);
        ck_assert_int_eq(r.batch_of[i], i / 4);
    }
    wp_stats st;
    wp_get_stats(p, &st);
    ck_assert_uint_eq(st.jobs_done, 11); /* with the blocker */
    ck_assert_uint_eq(st.batches, 4);
    wp_destroy(p);
    sm_unref(sm);
    rec_destroy(&r);
}
END_TEST

/* A job of another kind ends the batch: order is kept, kinds never mix. */
START_TEST(test_batch_ends_at_another_kind)
{
    svc_model *sm = tiny_model();
    wp_pool *p = pool_new(sm, 8, 0);
    recorder r;
    rec_init(&r);
    rec_job blocker, jobs[5];
    block_worker(p, &r, &blocker);
    wp_run_fn kinds[5] = {run_a, run_a, run_b, run_a, run_a};
    for (int i = 0; i < 5; i++) {
        jobs[i] = (rec_job){&r, i, 0};
        ck_assert_int_eq(wp_submit(p, kinds[i], no_cancel, &jobs[i]), WP_OK);
    }
    release_worker(&r);
    ck_assert_int_eq(wp_wait_idle(p, 30), 0);
    ck_assert_int_eq(r.nbatch, 3);
    ck_assert_int_eq(r.batch_size[0], 2);
    ck_assert_int_eq(r.batch_size[1], 1);
    ck_assert_int_eq(r.batch_size[2], 2);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(r.order[i], i);
    wp_destroy(p);
    sm_unref(sm);
    rec_destroy(&r);
}
END_TEST

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Without a batch delay a lone job starts at once, even with max_batch 64;
 * a second job submitted later runs as a batch of its own. */
START_TEST(test_lone_job_never_waits)
{
    svc_model *sm = tiny_model();
    wp_pool *p = pool_new(sm, 64, 0);
    recorder r;
    rec_init(&r);
    rec_job a = {&r, 0, 0}, b = {&r, 1, 0};
    double t0 = now_s();
    ck_assert_int_eq(wp_submit(p, run_a, no_cancel, &a), WP_OK);
    ck_assert_int_eq(wp_wait_idle(p, 30), 0);
    const double waited = now_s() - t0;
    ck_assert_msg(waited < 0.5, "a lone job took %.3f s", waited);
    ck_assert_int_eq(wp_submit(p, run_a, no_cancel, &b), WP_OK);
    ck_assert_int_eq(wp_wait_idle(p, 30), 0);
    ck_assert_int_eq(r.nbatch, 2);
    ck_assert_int_eq(r.batch_size[0], 1);
    ck_assert_int_eq(r.batch_size[1], 1);
    wp_destroy(p);
    sm_unref(sm);
    rec_destroy(&r);
}
END_TEST

/* Waits until n workers sleep on the idle stack (the last one to finish has
 * gone back to it). */
static void wait_asleep(wp_pool *p, int n)
{
    wp_stats st;
    for (int i = 0; i < 3000; i++) {
        wp_get_stats(p, &st);
        if (st.idle == n) return;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    ck_abort_msg("only %d of %d workers went idle within 3 s", st.idle, n);
}

/* One job at a time on two workers: each goes to the worker that finished
 * last (its model copy is warm in the caches), not to the workers in turn. */
START_TEST(test_idle_worker_reused_first)
{
    svc_model *sm = tiny_model();
    wp_pool *p = pool_new_workers(sm, 2, 8, 0);
    recorder r;
    rec_init(&r);
    rec_job jobs[10];
    wait_asleep(p, 2);
    for (int i = 0; i < 10; i++) {
        jobs[i] = (rec_job){&r, i, 0};
        ck_assert_int_eq(wp_submit(p, run_w, no_cancel, &jobs[i]), WP_OK);
        ck_assert_int_eq(wp_wait_idle(p, 30), 0);
        wait_asleep(p, 2);
    }
    ck_assert_int_eq(r.nbatch, 10);
    for (int i = 1; i < 10; i++)
        ck_assert_msg(r.worker_of[i] == r.worker_of[0], "job %d ran on worker %d, job 0 on %d", i,
                      r.worker_of[i], r.worker_of[0]);
    /* and with both busy, the second worker does take work */
    rec_job blocker;
    block_worker(p, &r, &blocker);
    rec_job extra = {&r, 20, 0};
    ck_assert_int_eq(wp_submit(p, run_w, no_cancel, &extra), WP_OK);
    int ran = 0;
    for (int i = 0; i < 3000 && !ran; i++) {
        pthread_mutex_lock(&r.mu);
        ran = extra.runs;
        pthread_mutex_unlock(&r.mu);
        if (!ran) nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    ck_assert_int_eq(ran, 1); /* ran while the blocker holds the other worker */
    release_worker(&r);
    ck_assert_int_eq(wp_wait_idle(p, 30), 0);
    wp_destroy(p);
    sm_unref(sm);
    rec_destroy(&r);
}
END_TEST

/* With a batch delay, a worker that found one job waits for the next one
 * submitted within the delay and runs both together. */
START_TEST(test_batch_delay_gathers_later_jobs)
{
    svc_model *sm = tiny_model();
    wp_pool *p = pool_new(sm, 4, 2000000); /* 2 s: far more than the 20 ms gap */
    recorder r;
    rec_init(&r);
    rec_job a = {&r, 0, 0}, b = {&r, 1, 0};
    ck_assert_int_eq(wp_submit(p, run_a, no_cancel, &a), WP_OK);
    const struct timespec gap = {0, 20 * 1000 * 1000};
    nanosleep(&gap, NULL);
    ck_assert_int_eq(wp_submit(p, run_a, no_cancel, &b), WP_OK);
    /* Once the gathering worker has taken b off the queue nothing is queued,
     * yet both jobs are still to run: the pool is not idle. */
    wp_stats st;
    for (int i = 0; i < 3000; i++) {
        wp_get_stats(p, &st);
        if (!st.queue_depth) break;
        nanosleep(&(struct timespec){0, 100000}, NULL);
    }
    ck_assert_int_eq(st.queue_depth, 0);
    ck_assert_int_eq(st.busy, 1);
    ck_assert_int_eq(wp_wait_idle(p, 30), 0);
    ck_assert_int_eq(r.nbatch, 1);
    ck_assert_int_eq(r.batch_size[0], 2);
    ck_assert_int_eq(a.runs + b.runs, 2);
    wp_destroy(p);
    sm_unref(sm);
    rec_destroy(&r);
}
END_TEST

/* ---- predict_run_batch ------------------------------------------------------ */

static void job_init(predict_job *j, const uint8_t *body, size_t len, int tta)
{
    memset(j, 0, sizeof *j);
    j->form = BODY_RAW;
    j->body = body;
    j->len = len;
    img_limits_default(&j->limits);
    j->tta = tta;
    j->top = 0;
    j->faces = FACES_NONE;
    j->t_start = predict_now();
}

/* max |difference| between the "probabilities" of two answers (the part
 * that must not depend on the batch; elapsed_ms does). */
static double probs_diff(const char *a, const char *b)
{
    json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);
    ck_assert_msg(ja && jb, "not JSON: %s / %s", a, b);
    json_t *pa = json_object_get(ja, "probabilities"), *pb = json_object_get(jb, "probabilities");
    ck_assert(json_is_object(pa) && json_is_object(pb));
    ck_assert_uint_eq(json_object_size(pa), 7);
    ck_assert_uint_eq(json_object_size(pb), 7);
    double d = 0;
    const char *k;
    json_t *v;
    json_object_foreach(pa, k, v) {
        json_t *w = json_object_get(pb, k);
        ck_assert_ptr_nonnull(w);
        double e = json_number_value(v) - json_number_value(w);
        if (e < 0) e = -e;
        if (e > d) d = e;
    }
    json_decref(ja);
    json_decref(jb);
    return d;
}

/* Every job of a mixed batch (valid images of several sizes and formats, a
 * corrupt one, an empty one) gets what predict_run gives it alone; in
 * fp32 and int8, with and without TTA. */
START_TEST(test_batch_answers_equal_single)
{
    char path[256], err[256];
    nn_model *m = tsv_make_model_file(11, path, sizeof path);
    remove(path);
    svc_model *sm = sm_wrap(m, NULL, err, sizeof err);
    ck_assert_msg(sm != NULL, "%s", err);
    enum { N = 6 };
    uint8_t *bodies[N];
    size_t lens[N];
    uint8_t *g1 = tsv_gradient(48, 48, 1), *g2 = tsv_gradient(100, 60, 3);
    uint8_t *g3 = tsv_gradient(31, 47, 1);
    bodies[0] = tsv_png(48, 48, 0 /* PNG_COLOR_TYPE_GRAY */, 8, g1, &lens[0]);
    bodies[1] = tsv_jpeg(100, 60, 3, g2, &lens[1]);
    bodies[2] = malloc(16);
    memcpy(bodies[2], "\x89PNG\r\n\x1a\n-corrupt", 16);
    lens[2] = 16;
    bodies[3] = tsv_png(31, 47, 0, 8, g3, &lens[3]);
    bodies[4] = malloc(1);
    lens[4] = 0;
    /* the first face again: a duplicate in the batch */
    bodies[5] = tsv_png(48, 48, 0, 8, g1, &lens[5]);
    const int precisions[2] = {NN_PRECISION_FP32, NN_PRECISION_INT8};
    const int ttas[2] = {NN_TTA_NONE, NN_TTA_FLIP | NN_TTA_CROPS};
    for (int pi = 0; pi < 2; pi++) {
        nn_model *mine = nn_model_clone(m);
        nn_model_set_precision(mine, (nn_precision)precisions[pi]);
        nn_ws *ws = nn_ws_create(mine, N);
        ck_assert_ptr_nonnull(ws);
        wp_ctx ctx = {mine, ws, sm, 0, NULL};
        for (int ti = 0; ti < 2; ti++) {
            predict_job single[N], batch[N];
            predict_job *ptrs[N];
            for (int i = 0; i < N; i++) {
                job_init(&single[i], bodies[i], lens[i], ttas[ti]);
                predict_run(&single[i], &ctx);
                job_init(&batch[i], bodies[i], lens[i], ttas[ti]);
                ptrs[i] = &batch[i];
            }
            predict_run_batch(ptrs, N, &ctx);
            for (int i = 0; i < N; i++) {
                ck_assert_int_eq(batch[i].status, single[i].status);
                ck_assert_ptr_nonnull(batch[i].response);
                if (single[i].status == 200) {
                    /* a batched fp32 GEMM may sum in another order (OpenBLAS's
                     * SkylakeX kernels do for this model's thin GEMMs). The
                     * tiny model's int8 plan is fp32 too: its first conv sees
                     * signed inputs and its dense layer is the last, so no
                     * step qualifies for int8 and it runs batched. */
                    const double d = probs_diff(batch[i].response, single[i].response);
                    const double tol = 1e-5;
                    ck_assert_msg(d <= tol, "job %d, precision %d, tta %d: differs by %g", i,
                                  precisions[pi], ttas[ti], d);
                } else {
                    ck_assert_str_eq(batch[i].error_code, single[i].error_code);
                    ck_assert_str_eq(batch[i].response, single[i].response);
                }
                free(batch[i].response);
                free(single[i].response);
            }
            ck_assert_int_eq(single[0].status, 200);
            ck_assert_int_eq(single[1].status, 200);
            ck_assert_int_eq(single[2].status, 400);
            ck_assert_int_eq(single[4].status, 400);
        }
        nn_ws_free(ws);
        nn_model_free(mine);
    }
    for (int i = 0; i < N; i++) free(bodies[i]);
    free(g1);
    free(g2);
    free(g3);
    sm_unref(sm);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("worker_pool");
    TCase *t = tcase_create("pool");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_queued_jobs_run_in_batches);
    tcase_add_test(t, test_batch_ends_at_another_kind);
    tcase_add_test(t, test_lone_job_never_waits);
    tcase_add_test(t, test_idle_worker_reused_first);
    tcase_add_test(t, test_batch_delay_gathers_later_jobs);
    tcase_add_test(t, test_batch_answers_equal_single);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
