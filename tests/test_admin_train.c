/* test_admin_train.c - real training jobs through the admin HTTP API on a
 * small generated dataset: 202 + Location, 409 while one runs, progress,
 * cancel and resume, success and activation (/predict names the new
 * version), bad options (400 naming the field), a rejected model that stays
 * inactive, rollback and force, feedback samples used by the next job. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common_admin.h"
#include "common_imgtest.h"
#include "fsutil.h"

static char model_path[64], root[64], store[128], data[128];
static app *srv;
static int port;

static void setup(void)
{
    nn_model_free(tsv_make_model_file(21, model_path, sizeof model_path));
    imgt_mkdtemp(root);
    snprintf(store, sizeof store, "%s/models", root);
    snprintf(data, sizeof data, "%s/data", root);
    fs_mkdir_p(data);
    tadm_make_dataset(data, 12, 4);
    svc_config c;
    tadm_config(&c, model_path, store, data);
    srv = tsv_start(&c);
    port = app_port(srv);
}

static void teardown(void)
{
    app_free(srv);
    unlink(model_path);
    imgt_rm_rf(root);
}

static char *post_train(const char *json, long want, char *id, size_t idlen)
{
    tsv_resp r;
    ck_assert_int_eq(tadm_http("POST", port, "/train", TADM_TOKEN, "application/json", json,
                               strlen(json), &r), 0);
    ck_assert_msg(r.status == want, "POST /train %s: %ld %s", json, r.status, r.body);
    if (id) {
        if (want == 202) {
            char loc[128], expect[160];
            ck_assert_int_eq(tadm_json_str(r.body, "id", id, idlen), 0);
            ck_assert_int_eq(tsv_header(&r, "Location", loc, sizeof loc), 0);
            snprintf(expect, sizeof expect, "/train/%s", id);
            ck_assert_str_eq(loc, expect);
        } else {
            tadm_json_str(r.body, "error.field", id, idlen);
        }
    }
    return r.body;
}

static void expect_bad(const char *json, const char *field)
{
    char f[128];
    free(post_train(json, 400, f, sizeof f));
    ck_assert_msg(!strcmp(f, field), "%s: field '%s', expected '%s'", json, f, field);
}

static void expect_version(const char *v)
{
    char got[64];
    ck_assert_int_eq(tadm_predict_version(port, got, sizeof got), 0);
    ck_assert_str_eq(got, v);
}

START_TEST(test_train_cancel_resume_activate)
{
    char id[32], state[32], other[64];
    free(post_train("{\"epochs\": 400, \"batch\": 16, \"lr\": 0.01, \"optimizer\": \"adam\"}", 202,
                    id, sizeof id));
    ck_assert_str_eq(id, "j0001");
    /* one job at a time */
    char *b = post_train("{\"epochs\": 1}", 409, NULL, 0);
    tadm_json_str(b, "error.job", other, sizeof other);
    ck_assert_str_eq(other, "j0001");
    free(b);
    /* progress becomes visible on GET /train (the latest job) */
    double t0 = tadm_now();
    int seen = 0;
    while (!seen && tadm_now() - t0 < 20) {
        tsv_resp r;
        tadm_http("GET", port, "/train", TADM_TOKEN, NULL, NULL, 0, &r);
        ck_assert_int_eq(r.status, 200);
        seen = tadm_json_num(r.body, "progress.epoch") >= 2 &&
               tadm_json_num(r.body, "progress.images_per_s") > 0 &&
               !isnan(tadm_json_num(r.body, "progress.eta_s"));
        tsv_resp_free(&r);
        usleep(10000);
    }
    ck_assert_msg(seen, "no progress seen");
    tsv_resp r;
    ck_assert_int_eq(tadm_http("DELETE", port, "/train/j0001", TADM_TOKEN, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 202);
    tsv_resp_free(&r);
    b = tadm_wait_job(port, id, 30, state, sizeof state);
    ck_assert_str_eq(state, "cancelled");
    json_t *j = json_loads(b, 0, NULL);
    int done = (int)json_array_size(json_object_get(j, "history"));
    json_decref(j);
    free(b);
    ck_assert_int_ge(done, 1);
    expect_version("v0001"); /* nothing activated by a cancelled job */
    ck_assert_int_eq(tadm_http("DELETE", port, "/train/j0001", TADM_TOKEN, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 409);
    tsv_resp_free(&r);
    ck_assert_int_eq(tadm_http("GET", port, "/train/j0999", TADM_TOKEN, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 404);
    tsv_resp_free(&r);

    /* resume: continues from the checkpoint, keeps its history */
    char body[128];
    snprintf(body, sizeof body, "{\"resume\": \"j0001\", \"epochs\": %d}", done + 2);
    free(post_train(body, 202, id, sizeof id));
    ck_assert_str_eq(id, "j0001");
    b = tadm_wait_job(port, id, 60, state, sizeof state);
    ck_assert_msg(!strcmp(state, "succeeded"), "state %s: %s", state, b);
    j = json_loads(b, 0, NULL);
    ck_assert_int_eq((int)json_array_size(json_object_get(j, "history")), done + 2);
    ck_assert(json_is_true(json_object_get(j, "activated")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "v0002");
    ck_assert_double_ge(json_number_value(json_object_get(j, "val_accuracy")),
                        json_number_value(json_object_get(j, "baseline_accuracy")));
    json_decref(j);
    free(b);
    expect_version("v0002");
    ck_assert_int_eq(tadm_http("GET", port, "/model", NULL, NULL, NULL, 0, &r), 0);
    ck_assert_ptr_nonnull(strstr(r.body, "\"version\":\"v0002\""));
    tsv_resp_free(&r);
    free(post_train("{\"resume\": \"j0001\"}", 409, NULL, 0)); /* finished: not resumable */
}
END_TEST

START_TEST(test_bad_options)
{
    expect_bad("{\"epochs\": \"x\"}", "epochs");
    expect_bad("{\"epochs\": 0}", "epochs");
    expect_bad("{\"bogus\": 1}", "bogus");
    expect_bad("{\"lr\": -1}", "lr");
    expect_bad("{\"optimizer\": \"rmsprop\"}", "optimizer");
    expect_bad("{\"dataset\": \"../../etc\"}", "dataset");
    expect_bad("{\"dataset\": \"/etc\"}", "dataset");
    expect_bad("{\"architecture\": \"../../etc/passwd\"}", "architecture");
    expect_bad("{\"architecture\": \"nonexistent\"}", "architecture");
    expect_bad("{\"augmentation\": {\"flip\": 3}}", "augmentation.flip");
    expect_bad("{\"validation_split\": 2}", "validation_split");
    expect_bad("{\"resume\": \"j0001\", \"lr\": 0.1}", "lr");
    expect_bad("{\"fine_tune\": true, \"architecture\": \"vgg\"}", "fine_tune");
    char code[64];
    char *b = post_train("{\"epochs\": ", 400, NULL, 0);
    tadm_json_str(b, "error.code", code, sizeof code);
    ck_assert_str_eq(code, "invalid_json");
    free(b);
    b = post_train("[1]", 400, NULL, 0);
    free(b);
    b = post_train("{\"resume\": \"j0042\"}", 404, NULL, 0);
    free(b);
    tsv_resp r;
    ck_assert_int_eq(tadm_http("GET", port, "/train", TADM_TOKEN, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 404); /* no job ran */
    tsv_resp_free(&r);
    ck_assert_int_eq(tadm_http("PUT", port, "/models", TADM_TOKEN, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 405);
    tsv_resp_free(&r);
    ck_assert_int_eq(tadm_http("POST", port, "/models/v0042/activate", TADM_TOKEN, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 404);
    tsv_resp_free(&r);
}
END_TEST

START_TEST(test_rejected_rollback_force)
{
    char id[32], state[32], v[64];
    /* a model that cannot reach the gate: kept, inactive, with a reason */
    free(post_train("{\"epochs\": 1, \"lr\": 1e-9, \"min_accuracy\": 0.99}", 202, id, sizeof id));
    char *b = tadm_wait_job(port, id, 30, state, sizeof state);
    ck_assert_msg(!strcmp(state, "rejected"), "%s", b);
    ck_assert_ptr_nonnull(strstr(b, "min_accuracy"));
    tadm_json_str(b, "model", v, sizeof v);
    ck_assert_str_eq(v, "v0002");
    free(b);
    expect_version("v0001");
    tsv_resp r;
    ck_assert_int_eq(tadm_http("GET", port, "/models", TADM_TOKEN, NULL, NULL, 0, &r), 0);
    tadm_json_str(r.body, "active", v, sizeof v);
    ck_assert_str_eq(v, "v0001");
    ck_assert_ptr_nonnull(strstr(r.body, "\"state\":\"rejected\""));
    tsv_resp_free(&r);

    /* the operator may still switch to it, and roll back */
    ck_assert_int_eq(tadm_http("POST", port, "/models/v0002/activate", TADM_TOKEN, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    tsv_resp_free(&r);
    expect_version("v0002");
    ck_assert_int_eq(tadm_http("POST", port, "/models/v0001/activate", TADM_TOKEN, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    tadm_json_str(r.body, "previous", v, sizeof v);
    ck_assert_str_eq(v, "v0002");
    tsv_resp_free(&r);
    expect_version("v0001");

    /* force: activated past the gate */
    free(post_train("{\"epochs\": 1, \"lr\": 1e-9, \"min_accuracy\": 0.99, \"force\": true}", 202,
                    id, sizeof id));
    b = tadm_wait_job(port, id, 30, state, sizeof state);
    ck_assert_msg(!strcmp(state, "succeeded"), "%s", b);
    free(b);
    expect_version("v0003");
}
END_TEST

static void post_sample(const char *path, const char *ctype, const void *body, size_t len,
                        long want)
{
    tsv_resp r;
    ck_assert_int_eq(tadm_http("POST", port, path, TADM_TOKEN, ctype, body, len, &r), 0);
    ck_assert_msg(r.status == want, "%s: %ld %s", path, r.status, r.body);
    tsv_resp_free(&r);
}

START_TEST(test_samples_then_training)
{
    uint8_t px[48 * 48];
    size_t n;
    tadm_face(2, 900, px);
    uint8_t *png = imgt_png_gray8(48, 48, px, &n);
    post_sample("/samples?label=fear", "image/png", png, n, 201);
    post_sample("/samples?label=fear", "image/png", png, n, 200); /* same bytes: deduplicated */
    post_sample("/samples?label=happy", "image/png", png, n, 200); /* the first label stands */
    free(png);
    tadm_face(5, 901, px);
    png = imgt_png_gray8(48, 48, px, &n);
    post_sample("/samples?label=nope", "image/png", png, n, 400);
    post_sample("/samples", "image/png", png, n, 400); /* no label */
    post_sample("/samples?label=sad", "text/plain", png, n, 415);
    post_sample("/samples?label=sad", "image/png", "garbage", 7, 400);
    /* multipart, as /predict takes it */
    char head[] = "--XyZ\r\nContent-Disposition: form-data; name=\"label\"\r\n\r\nsad\r\n"
                  "--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
                  "Content-Type: image/png\r\n\r\n";
    size_t hl = strlen(head), tl = strlen("\r\n--XyZ--\r\n");
    char *mp = malloc(hl + n + tl);
    memcpy(mp, head, hl);
    memcpy(mp + hl, png, n);
    memcpy(mp + hl + n, "\r\n--XyZ--\r\n", tl);
    post_sample("/samples", "multipart/form-data; boundary=XyZ", mp, hl + n + tl, 201);
    free(mp);
    free(png);
    /* JSON with base64 */
    tadm_face(6, 902, px);
    png = imgt_png_gray8(48, 48, px, &n);
    char *b64 = NULL;
    {
        static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        b64 = malloc(4 * ((n + 2) / 3) + 1);
        size_t o = 0;
        for (size_t i = 0; i < n; i += 3) {
            unsigned v = (unsigned)png[i] << 16 | (i + 1 < n ? (unsigned)png[i + 1] << 8 : 0) |
                         (i + 2 < n ? png[i + 2] : 0);
            b64[o++] = tbl[v >> 18 & 63];
            b64[o++] = tbl[v >> 12 & 63];
            b64[o++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
            b64[o++] = i + 2 < n ? tbl[v & 63] : '=';
        }
        b64[o] = '\0';
    }
    char *js = malloc(strlen(b64) + 64);
    sprintf(js, "{\"image\": \"%s\", \"label\": \"surprise\"}", b64);
    post_sample("/samples", "application/json", js, strlen(js), 201);
    free(js);
    free(b64);
    free(png);

    tsv_resp r;
    ck_assert_int_eq(tadm_http("GET", port, "/samples/stats", TADM_TOKEN, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)tadm_json_num(r.body, "total"), 3);
    ck_assert_int_eq((int)tadm_json_num(r.body, "classes.fear"), 1);
    ck_assert_int_eq((int)tadm_json_num(r.body, "classes.sad"), 1);
    tsv_resp_free(&r);

    /* the next job trains on the dataset plus the samples, with an inline
     * architecture and a validation split */
    char body[2048], id[32], state[32];
    snprintf(body, sizeof body,
             "{\"architecture\": %s, \"epochs\": 2, \"validation_split\": 0.25, \"max_train\": 60}",
             tsv_tiny_arch);
    free(post_train(body, 202, id, sizeof id));
    char *b = tadm_wait_job(port, id, 60, state, sizeof state);
    ck_assert_msg(!strcmp(state, "succeeded") || !strcmp(state, "rejected"), "%s", b);
    free(b);
    char link[512];
    snprintf(link, sizeof link, "%s/jobs/%s/data/train/fear/feedback-", store, id);
    snprintf(body, sizeof body, "%s/jobs/%s/data/test/angry", store, id);
    ck_assert(fs_exists(body)); /* the validation share */
    /* a fine-tune job starts from the served weights */
    free(post_train("{\"fine_tune\": true, \"epochs\": 1, \"include_feedback\": false}", 202, id,
                    sizeof id));
    b = tadm_wait_job(port, id, 60, state, sizeof state);
    ck_assert_msg(!strcmp(state, "succeeded") || !strcmp(state, "rejected"), "%s", b);
    free(b);
    (void)link;
}
END_TEST

int main(void)
{
    Suite *s = suite_create("admin_train");
    TCase *tc = tcase_create("train");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_train_cancel_resume_activate);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_rejected_rollback_force);
    tcase_add_test(tc, test_samples_then_training);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
