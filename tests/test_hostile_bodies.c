/* test_hostile_bodies.c - request bodies the fuzzers found that a server
 * answered with 503 "out_of_memory" instead of their 400: an error message
 * that quotes the client's bytes (Jansson's parse errors show the text near
 * the error) or a field name cut inside a UTF-8 character could not be put in
 * a JSON body. Over HTTP, on the public and on the admin API. */
#include <check.h>
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
    nn_model_free(tsv_make_model_file(5, model_path, sizeof model_path));
    imgt_mkdtemp(root);
    snprintf(store, sizeof store, "%s/models", root);
    snprintf(data, sizeof data, "%s/data", root);
    fs_mkdir_p(data);
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

static void expect(const char *path, const char *token, const char *body, long status,
                   const char *code)
{
    tsv_resp r;
    ck_assert_int_eq(tadm_http("POST", port, path, token, "application/json", body, strlen(body),
                               &r), 0);
    char got[64] = "";
    tadm_json_str(r.body, "error.code", got, sizeof got);
    ck_assert_msg(r.status == status && !strcmp(got, code), "POST %s: %ld %s, expected %ld %s",
                  path, r.status, r.body, status, code);
    tsv_resp_free(&r);
}

/* tests/corpus/fuzz_json/crash-invalid-utf8-in-parse-error.json */
START_TEST(test_parse_error_quoting_invalid_utf8)
{
    static const char body[] = "{\"image\":\"_-8\\\xc6\xbb-A\"}";
    expect("/predict", NULL, body, 400, "invalid_json");
    expect("/train", TADM_TOKEN, body, 400, "invalid_json");
    expect("/samples", TADM_TOKEN, body, 400, "invalid_json");
}
END_TEST

/* A training option name of 'a' and 60 'é' (121 bytes): the message keeps
 * 100 bytes of it, which ends inside the 50th 'é'. */
START_TEST(test_option_name_cut_inside_a_character)
{
    char body[256] = "{\"a";
    for (int i = 0; i < 60; i++) strcat(body, "\xc3\xa9");
    strcat(body, "\": 1}");
    expect("/train", TADM_TOKEN, body, 400, "invalid_option");
    /* the same inside "augmentation" */
    char aug[300] = "{\"augmentation\": {\"a";
    for (int i = 0; i < 60; i++) strcat(aug, "\xc3\xa9");
    strcat(aug, "\": 1}}");
    expect("/train", TADM_TOKEN, aug, 400, "invalid_option");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hostile_bodies");
    TCase *tc = tcase_create("bodies");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_parse_error_quoting_invalid_utf8);
    tcase_add_test(tc, test_option_name_cut_inside_a_character);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
