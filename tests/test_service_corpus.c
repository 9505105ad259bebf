/* test_service_corpus.c - every PngSuite image and the libjpeg-turbo test
 * images through POST /predict: valid ones answered 200, the 14 corrupt
 * x*.png 400 with a reason, and the server still answering afterwards.
 * Needs ../shared/data; skipped with a message when it is absent. */
#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common_svc.h"

static char model_path[64];
static nn_model *model;
static app *server;
static int port;

static void setup(void)
{
    model = tsv_make_model_file(5, model_path, sizeof model_path);
    svc_config c;
    tsv_test_config(&c, model_path);
    server = tsv_start(&c);
    port = app_port(server);
}

static void teardown(void)
{
    app_free(server);
    nn_model_free(model);
    unlink(model_path);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *error_code(const char *body, char *buf, size_t n)
{
    json_t *o = json_loads(body, 0, NULL);
    const char *c = json_string_value(json_object_get(json_object_get(o, "error"), "code"));
    snprintf(buf, n, "%s", c ? c : "(no error code)");
    json_decref(o);
    return buf;
}

START_TEST(test_pngsuite)
{
    const char *data = tsv_shared_data();
    if (!data) {
        printf("SKIP test_pngsuite: ../shared/data/pngsuite not found\n");
        return;
    }
    char dir[256];
    snprintf(dir, sizeof dir, "%s/pngsuite", data);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    char *names[512];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 512) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".png")) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    ck_assert_int_ge(n, 170);
    const char *const h[] = {"Content-Type: image/png", "Expect:", NULL};
    int ok = 0, rejected = 0;
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len;
        uint8_t *img = tsv_read_file(path, &len);
        ck_assert_ptr_nonnull(img);
        tsv_resp r;
        ck_assert_msg(tsv_http("POST", port, "/predict", h, img, len, &r) == 0, "%s: no answer",
                      names[i]);
        char code[64];
        if (names[i][0] == 'x') {
            ck_assert_msg(r.status == 400, "%s: %ld %s", names[i], r.status, r.body);
            error_code(r.body, code, sizeof code);
            ck_assert_msg(strstr(code, "png") || !strcmp(code, "unsupported_format"),
                          "%s: reason %s", names[i], code);
            rejected++;
        } else {
            ck_assert_msg(r.status == 200, "%s: %ld %s", names[i], r.status, r.body);
            ok++;
        }
        tsv_resp_free(&r);
        free(img);
        free(names[i]);
    }
    ck_assert_int_eq(rejected, 14);
    printf("pngsuite: %d answered 200, %d corrupt answered 400\n", ok, rejected);
    tsv_resp r;
    ck_assert_int_eq(tsv_http("GET", port, "/healthz", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    tsv_resp_free(&r);
}
END_TEST

START_TEST(test_libjpeg_turbo_images)
{
    const char *data = tsv_shared_data();
    if (!data) {
        printf("SKIP test_libjpeg_turbo_images: ../shared/data not found\n");
        return;
    }
    /* Baseline, progressive-free integer DCT and arithmetic coding decode;
     * the 12-bit image is beyond 8-bit TurboJPEG and must be refused cleanly. */
    static const struct {
        const char *name;
        long status;
    } files[] = {{"testorig.jpg", 200}, {"testimgint.jpg", 200}, {"testimgari.jpg", 200},
                 {"monkey12.jpg", 400}};
    const char *const h[] = {"Content-Type: image/jpeg", "Expect:", NULL};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/jpeg/libjpeg-turbo/%s", data, files[i].name);
        size_t len;
        uint8_t *img = tsv_read_file(path, &len);
        ck_assert_msg(img != NULL, "%s missing", path);
        tsv_resp r;
        ck_assert_int_eq(tsv_http("POST", port, "/predict", h, img, len, &r), 0);
        char code[64] = "";
        if (r.status != 200) error_code(r.body, code, sizeof code);
        printf("%s: %ld %s\n", files[i].name, r.status, code);
        ck_assert_msg(r.status == files[i].status, "%s: %ld %s", files[i].name, r.status, r.body);
        tsv_resp_free(&r);
        free(img);
    }
    tsv_resp r;
    ck_assert_int_eq(tsv_http("GET", port, "/healthz", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    tsv_resp_free(&r);
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("service_corpus");
    TCase *tc = tcase_create("corpus");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pngsuite);
    tcase_add_test(tc, test_libjpeg_turbo_images);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
