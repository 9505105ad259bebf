/* test_admin_swap.c - hot swap under load: concurrent /predict clients while
 * two model versions are activated back and forth. No request may fail, and
 * every answer must be exactly what the version it names computes (so no
 * answer comes from a half-swapped model). */
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
#include "image.h"
#include "model_store.h"
#include "nn.h"

#define CLIENTS 8

static char model_path[64], root[64];

typedef struct {
    int port;
    const uint8_t *png;
    size_t len;
    float expect[2][7]; /* v0001, v0002 */
    const char *names[7];
    atomic_int stop;
    atomic_int ok, failed, wrong, seen[2];
    char first_error[512];
    pthread_mutex_t mu;
} load;

static void *client(void *arg)
{
    load *l = arg;
    while (!atomic_load(&l->stop)) {
        tsv_resp r;
        int rc = tadm_http("POST", l->port, "/predict", NULL, "image/png", l->png, l->len, &r);
        char v[32] = "";
        if (rc || r.status != 200 || tadm_json_str(r.body, "model.version", v, sizeof v)) {
            atomic_fetch_add(&l->failed, 1);
            pthread_mutex_lock(&l->mu);
            if (!l->first_error[0])
                snprintf(l->first_error, sizeof l->first_error, "rc %d status %ld %s", rc, r.status,
                         r.body ? r.body : "");
            pthread_mutex_unlock(&l->mu);
            tsv_resp_free(&r);
            continue;
        }
        int k = !strcmp(v, "v0001") ? 0 : !strcmp(v, "v0002") ? 1 : -1;
        int good = k >= 0;
        json_t *j = json_loads(r.body, 0, NULL);
        json_t *probs = json_object_get(j, "probabilities");
        for (int c = 0; good && c < 7; c++) {
            double p = json_number_value(json_object_get(probs, l->names[c]));
            if (fabs(p - l->expect[k][c]) > 1e-6) good = 0;
        }
        json_decref(j);
        tsv_resp_free(&r);
        if (!good) atomic_fetch_add(&l->wrong, 1);
        else {
            atomic_fetch_add(&l->ok, 1);
            atomic_fetch_add(&l->seen[k], 1);
        }
    }
    return NULL;
}

/* What version id computes for the test image, straight from the engine. */
static void expected(const char *store, const char *id, const uint8_t *png, size_t len, float *probs,
                     const char **names, nn_model **keep)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/%s.emod", store, id);
    nn_model *m = NULL;
    ck_assert_msg(nn_model_load(path, &m, err, sizeof err) == 0, "%s", err);
    img_limits lim;
    img_limits_default(&lim);
    uint8_t px[48 * 48];
    ck_assert_int_eq(img_decode_gray_resized(png, len, &lim, 48, 48, px, NULL, NULL, err, sizeof err), 0);
    nn_ws *ws = nn_ws_create(m, 1);
    ck_assert_int_eq(nn_predict_u8(m, ws, px, 1, NN_TTA_NONE, probs), 0);
    nn_ws_free(ws);
    for (int c = 0; c < 7; c++) names[c] = nn_model_class_name(m, c);
    *keep = m; /* names point into it */
}

START_TEST(test_swap_under_load)
{
    char store[128], err[256], id[MS_ID_MAX];
    snprintf(store, sizeof store, "%s/models", root);
    /* a store with two versions of different weights */
    ms_store *ms = ms_open(store, 5, err, sizeof err);
    ck_assert_ptr_nonnull(ms);
    for (uint64_t seed = 1; seed <= 2; seed++) {
        nn_model *m = NULL;
        ck_assert_int_eq(nn_model_from_arch_json(tsv_tiny_arch, seed * 77, &m, err, sizeof err), 0);
        ms_add_info info = {"import", NULL, "ready", NULL, NAN, NAN};
        ck_assert_int_eq(ms_add(ms, m, &info, id, sizeof id, err, sizeof err), 0);
        nn_model_free(m);
    }
    ck_assert_int_eq(ms_set_active(ms, "v0001", err, sizeof err), 0);
    ms_close(ms);

    load *l = calloc(1, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    uint8_t px[48 * 48];
    tadm_face(4, 3, px);
    uint8_t *png = imgt_png_gray8(48, 48, px, &l->len);
    l->png = png;
    nn_model *k1, *k2;
    expected(store, "v0001", png, l->len, l->expect[0], l->names, &k1);
    expected(store, "v0002", png, l->len, l->expect[1], l->names, &k2);
    int differ = 0;
    for (int c = 0; c < 7; c++) differ |= fabsf(l->expect[0][c] - l->expect[1][c]) > 1e-4f;
    ck_assert(differ);

    svc_config c;
    tadm_config(&c, model_path, store, NULL);
    c.workers = 2;
    c.http_threads = 4;
    c.queue_size = 256;
    app *a = tsv_start(&c);
    l->port = app_port(a);
    pthread_t th[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) pthread_create(&th[i], NULL, client, l);
    int swaps = 0;
    double t0 = tadm_now();
    /* a fixed number of swaps (bounded in time, for a loaded machine) */
    while (swaps < 30 && tadm_now() - t0 < 20.0) {
        tsv_resp r;
        const char *path = swaps % 2 ? "/models/v0001/activate" : "/models/v0002/activate";
        ck_assert_int_eq(tadm_http("POST", l->port, path, TADM_TOKEN, NULL, NULL, 0, &r), 0);
        ck_assert_int_eq(r.status, 200);
        tsv_resp_free(&r);
        swaps++;
        usleep(20000);
    }
    atomic_store(&l->stop, 1);
    for (int i = 0; i < CLIENTS; i++) pthread_join(th[i], NULL);
    app_free(a);
    fprintf(stderr, "hot swap: %d swaps, %d answers (%d from v0001, %d from v0002), %d failed, %d wrong\n",
            swaps, atomic_load(&l->ok), atomic_load(&l->seen[0]), atomic_load(&l->seen[1]),
            atomic_load(&l->failed), atomic_load(&l->wrong));
    ck_assert_msg(atomic_load(&l->failed) == 0, "failed requests: %s", l->first_error);
    ck_assert_int_eq(atomic_load(&l->wrong), 0);
    ck_assert_int_gt(atomic_load(&l->seen[0]), 0);
    ck_assert_int_gt(atomic_load(&l->seen[1]), 0);
    ck_assert_int_ge(swaps, 6);
    nn_model_free(k1);
    nn_model_free(k2);
    free(png);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
END_TEST

static void setup(void)
{
    nn_model_free(tsv_make_model_file(3, model_path, sizeof model_path));
    imgt_mkdtemp(root);
}

static void teardown(void)
{
    unlink(model_path);
    imgt_rm_rf(root);
}

int main(void)
{
    Suite *s = suite_create("admin_swap");
    TCase *tc = tcase_create("swap");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_swap_under_load);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
