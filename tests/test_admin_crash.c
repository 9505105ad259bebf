/* test_admin_crash.c - kill -9 of an `emotiond serve` process at awkward
 * moments: during model swaps (manifest writes), during a training job
 * (checkpoint writes) and while feedback samples are being stored. After a
 * restart the store must be valid, the last recorded active version must
 * serve, the job must be reported interrupted and be resumable, and every
 * acknowledged sample must be on disk. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common_admin.h"
#include "common_imgtest.h"
#include "fsutil.h"
#include "model_store.h"

static char model_path[64], root[64], store[128], data[128];

static void setup(void)
{
    nn_model_free(tsv_make_model_file(9, model_path, sizeof model_path));
    imgt_mkdtemp(root);
    snprintf(store, sizeof store, "%s/models", root);
    snprintf(data, sizeof data, "%s/data", root);
    fs_mkdir_p(data);
    tadm_make_dataset(data, 12, 4);
}

static void teardown(void)
{
    unlink(model_path);
    imgt_rm_rf(root);
}

static void start(tadm_proc *p)
{
    const char *args[] = {"--model", model_path, "--model-dir", store, "--data-dir", data,
                          "--host", "127.0.0.1", "--port", "0", "--workers", "1",
                          "--log-requests", "false", NULL};
    tadm_spawn(p, args);
    if (tadm_wait_ready(p, 15)) {
        char *s = tadm_slurp(p->log);
        ck_abort_msg("server did not start:\n%s", s);
    }
}

static void stop(tadm_proc *p)
{
    tadm_kill9(p);
    unlink(p->log);
}

/* The store as a restart sees it: valid, with an active version. */
static void check_store(char *active, size_t len)
{
    char err[256];
    ms_store *s = ms_open(store, 5, err, sizeof err);
    ck_assert_msg(s != NULL, "store invalid after kill -9: %s", err);
    ck_assert_int_eq(ms_active(s, active, len), 0);
    ms_close(s);
}

typedef struct {
    int port;
    atomic_int stop, swaps;
} swapper;

static void *swap_loop(void *arg)
{
    swapper *w = arg;
    for (int i = 0; !atomic_load(&w->stop); i++) {
        tsv_resp r;
        tadm_http("POST", w->port, i % 2 ? "/models/v0001/activate" : "/models/v0002/activate",
                  TADM_TOKEN, NULL, NULL, 0, &r);
        if (r.status == 200) atomic_fetch_add(&w->swaps, 1);
        tsv_resp_free(&r);
    }
    return NULL;
}

START_TEST(test_kill_during_swap)
{
    char err[256], id[MS_ID_MAX], active[MS_ID_MAX], served[64];
    ms_store *ms = ms_open(store, 5, err, sizeof err);
    for (uint64_t seed = 1; seed <= 2; seed++) {
        nn_model *m = NULL;
        ck_assert_int_eq(nn_model_from_arch_json(tsv_tiny_arch, seed, &m, err, sizeof err), 0);
        ms_add_info info = {"import", NULL, "ready", NULL, NAN, NAN};
        ck_assert_int_eq(ms_add(ms, m, &info, id, sizeof id, err, sizeof err), 0);
        nn_model_free(m);
    }
    ck_assert_int_eq(ms_set_active(ms, "v0001", err, sizeof err), 0);
    ms_close(ms);
    srand(1234);
    for (int round = 0; round < 4; round++) {
        tadm_proc p;
        start(&p);
        swapper w = {p.port, 0, 0};
        pthread_t th;
        pthread_create(&th, NULL, swap_loop, &w);
        /* a few swaps done, the next ones in flight when the kill lands */
        double t0 = tadm_now();
        while (atomic_load(&w.swaps) < 2 + round && tadm_now() - t0 < 30) usleep(2000);
        usleep((useconds_t)(rand() % 50000));
        tadm_kill9(&p);
        atomic_store(&w.stop, 1);
        pthread_join(th, NULL);
        unlink(p.log);
        int done = atomic_load(&w.swaps);
        ck_assert_int_gt(done, 0);
        check_store(active, sizeof active);
        start(&p);
        ck_assert_int_eq(tadm_predict_version(p.port, served, sizeof served), 0);
        ck_assert_str_eq(served, active); /* the last recorded active version serves */
        stop(&p);
    }
}
END_TEST

static json_t *get_job(int port, const char *id)
{
    char path[64];
    snprintf(path, sizeof path, "/train/%s", id);
    tsv_resp r;
    tadm_http("GET", port, path, TADM_TOKEN, NULL, NULL, 0, &r);
    json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    tsv_resp_free(&r);
    return j;
}

START_TEST(test_kill_during_training)
{
    tadm_proc p;
    char active[MS_ID_MAX], served[64], state[32];
    start(&p);
    const char *body = "{\"epochs\": 1000, \"batch\": 16}";
    tsv_resp r;
    ck_assert_int_eq(tadm_http("POST", p.port, "/train", TADM_TOKEN, "application/json", body,
                               strlen(body), &r), 0);
    ck_assert_int_eq(r.status, 202);
    tsv_resp_free(&r);
    /* every epoch ends with a checkpoint and a job record write: after a few
     * epochs a kill lands in or near one of them */
    double t0 = tadm_now();
    int epochs = 0;
    while (epochs < 3 && tadm_now() - t0 < 20) {
        json_t *j = get_job(p.port, "j0001");
        epochs = (int)json_array_size(json_object_get(j, "history"));
        json_decref(j);
        usleep(2000);
    }
    ck_assert_int_ge(epochs, 3);
    usleep((useconds_t)(rand() % 30000));
    stop(&p);

    check_store(active, sizeof active);
    ck_assert_str_eq(active, "v0001");
    start(&p);
    ck_assert_int_eq(tadm_predict_version(p.port, served, sizeof served), 0);
    ck_assert_str_eq(served, "v0001");
    json_t *j = get_job(p.port, "j0001");
    ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "interrupted");
    int done = (int)json_array_size(json_object_get(j, "history"));
    json_decref(j);
    char path[256];
    snprintf(path, sizeof path, "%s/jobs/j0001/run/checkpoint.emod", store);
    ck_assert(fs_exists(path));
    /* resume to a couple more epochs */
    char resume[128];
    snprintf(resume, sizeof resume, "{\"resume\": \"j0001\", \"epochs\": %d}", done + 2);
    ck_assert_int_eq(tadm_http("POST", p.port, "/train", TADM_TOKEN, "application/json", resume,
                               strlen(resume), &r), 0);
    ck_assert_msg(r.status == 202, "%s", r.body);
    tsv_resp_free(&r);
    char *b = tadm_wait_job(p.port, "j0001", 60, state, sizeof state);
    ck_assert_msg(!strcmp(state, "succeeded"), "%s", b ? b : state);
    free(b);
    ck_assert_int_eq(tadm_predict_version(p.port, served, sizeof served), 0);
    ck_assert_str_eq(served, "v0002");
    stop(&p);
    start(&p); /* and the new version survives a restart */
    ck_assert_int_eq(tadm_predict_version(p.port, served, sizeof served), 0);
    ck_assert_str_eq(served, "v0002");
    stop(&p);
}
END_TEST

typedef struct {
    int port;
    atomic_int stop;
    atomic_int acked;
    char ids[4096][24];
    char labels[4096][16];
} poster;

static void *post_loop(void *arg)
{
    poster *w = arg;
    static const char *labels[] = {"angry", "happy", "sad"};
    for (int i = 0; !atomic_load(&w->stop) && atomic_load(&w->acked) < 4096; i++) {
        uint8_t px[48 * 48];
        size_t n;
        tadm_face(i % 7, 2000 + i, px);
        uint8_t *png = imgt_png_gray8(48, 48, px, &n);
        char path[64];
        snprintf(path, sizeof path, "/samples?label=%s", labels[i % 3]);
        tsv_resp r;
        int rc = tadm_http("POST", w->port, path, TADM_TOKEN, "image/png", png, n, &r);
        free(png);
        if (rc == 0 && r.status == 201) {
            int k = atomic_load(&w->acked);
            tadm_json_str(r.body, "id", w->ids[k], sizeof w->ids[0]);
            snprintf(w->labels[k], sizeof w->labels[0], "%s", labels[i % 3]);
            atomic_store(&w->acked, k + 1);
        }
        tsv_resp_free(&r);
    }
    return NULL;
}

START_TEST(test_samples_survive_kill)
{
    tadm_proc p;
    start(&p);
    poster *w = calloc(1, sizeof *w);
    w->port = p.port;
    pthread_t th;
    pthread_create(&th, NULL, post_loop, w);
    /* some acknowledged, and more on the way when the kill lands */
    double t0 = tadm_now();
    while (atomic_load(&w->acked) < 10 && tadm_now() - t0 < 30) usleep(5000);
    usleep((useconds_t)(rand() % 20000));
    tadm_kill9(&p);
    atomic_store(&w->stop, 1);
    pthread_join(th, NULL);
    unlink(p.log);
    ck_assert_int_ge(atomic_load(&w->acked), 10);
    for (int i = 0; i < atomic_load(&w->acked); i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/feedback/%s/%s.png", data, w->labels[i], w->ids[i]);
        ck_assert_msg(fs_exists(path), "acknowledged sample %s lost", w->ids[i]);
    }
    start(&p);
    tsv_resp r;
    tadm_http("GET", p.port, "/samples/stats", TADM_TOKEN, NULL, NULL, 0, &r);
    ck_assert_int_ge((int)tadm_json_num(r.body, "total"), atomic_load(&w->acked));
    tsv_resp_free(&r);
    stop(&p);
    fprintf(stderr, "samples: %d acknowledged before kill -9, all present\n", atomic_load(&w->acked));
    free(w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("admin_crash");
    TCase *tc = tcase_create("crash");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_kill_during_swap);
    tcase_add_test(tc, test_kill_during_training);
    tcase_add_test(tc, test_samples_survive_kill);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
