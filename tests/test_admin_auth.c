/* test_admin_auth.c - the admin API's Bearer token: constant-time check,
 * sources (config, environment, file), 401/403 answers over HTTP, the token
 * never in logs or --print-config, and the separate admin port. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin_auth.h"
#include "common_admin.h"
#include "common_imgtest.h"

static char model_path[64], store[64];

static void setup(void)
{
    nn_model_free(tsv_make_model_file(5, model_path, sizeof model_path));
    imgt_mkdtemp(store);
}

static void teardown(void)
{
    unlink(model_path);
    imgt_rm_rf(store);
}

START_TEST(test_check)
{
    ck_assert_int_eq(admin_auth_check("", "Bearer x"), ADMIN_AUTH_DISABLED);
    ck_assert_int_eq(admin_auth_check(NULL, "Bearer x"), ADMIN_AUTH_DISABLED);
    ck_assert_int_eq(admin_auth_check("abc", NULL), ADMIN_AUTH_MISSING);
    ck_assert_int_eq(admin_auth_check("abc", "Basic YWJj"), ADMIN_AUTH_MISSING);
    ck_assert_int_eq(admin_auth_check("abc", "Bearer"), ADMIN_AUTH_MISSING);
    ck_assert_int_eq(admin_auth_check("abc", "Bearer   "), ADMIN_AUTH_MISSING);
    ck_assert_int_eq(admin_auth_check("abc", "Bearerabc"), ADMIN_AUTH_MISSING);
    ck_assert_int_eq(admin_auth_check("abc", "Bearer abd"), ADMIN_AUTH_WRONG);
    ck_assert_int_eq(admin_auth_check("abc", "Bearer ab"), ADMIN_AUTH_WRONG);
    ck_assert_int_eq(admin_auth_check("abc", "Bearer abcd"), ADMIN_AUTH_WRONG);
    ck_assert_int_eq(admin_auth_check("abc", "Bearer abcabc"), ADMIN_AUTH_WRONG);
    ck_assert_int_eq(admin_auth_check("abc", "Bearer abc"), ADMIN_AUTH_OK);
    ck_assert_int_eq(admin_auth_check("abc", "bearer  abc "), ADMIN_AUTH_OK);
    ck_assert_int_eq(admin_const_eq("abc", 3, "abc", 3), 1);
    ck_assert_int_eq(admin_const_eq("abc", 3, "", 0), 0);
    ck_assert_int_eq(admin_const_eq("", 0, "", 0), 1);
}
END_TEST

START_TEST(test_sources)
{
    svc_config c;
    char tok[ADMIN_TOKEN_MAX], err[512] = "", file[128];
    char *env[] = {"EMOTIOND_ADMIN_TOKEN=from-env", NULL};
    char *argv[] = {"serve", NULL};
    ck_assert_int_eq(cfg_load(&c, 1, argv, env, NULL, err, sizeof err), 0);
    ck_assert_int_eq(admin_token_resolve(&c, tok, sizeof tok, err, sizeof err), 0);
    ck_assert_str_eq(tok, "from-env");
    /* --print-config never shows it, and its output still loads */
    char *json = cfg_to_json(&c);
    ck_assert_ptr_null(strstr(json, "from-env"));
    svc_config d;
    cfg_defaults(&d);
    ck_assert_msg(cfg_apply_json(&d, json, "print", err, sizeof err) == 0, "%s", err);
    free(json);
    /* a bad value is reported without echoing it */
    char long_tok[400];
    memset(long_tok, 'x', sizeof long_tok - 1);
    long_tok[sizeof long_tok - 1] = '\0';
    ck_assert_int_ne(cfg_set(&c, "admin_token", long_tok, "test", err, sizeof err), 0);
    ck_assert_ptr_null(strstr(err, "xxxx"));

    /* a token file (Kubernetes secret), trailing newline trimmed */
    snprintf(file, sizeof file, "%s/token", store);
    imgt_write_file(file, "file-token\n", 11);
    cfg_defaults(&c);
    snprintf(c.admin_token_file, sizeof c.admin_token_file, "%s", file);
    ck_assert_int_eq(admin_token_resolve(&c, tok, sizeof tok, err, sizeof err), 0);
    ck_assert_str_eq(tok, "file-token");
    imgt_write_file(file, "\n", 1);
    ck_assert_int_ne(admin_token_resolve(&c, tok, sizeof tok, err, sizeof err), 0);
    snprintf(c.admin_token_file, sizeof c.admin_token_file, "%s/missing", store);
    ck_assert_int_ne(admin_token_resolve(&c, tok, sizeof tok, err, sizeof err), 0);
    cfg_defaults(&c);
    ck_assert_int_eq(admin_token_resolve(&c, tok, sizeof tok, err, sizeof err), 0);
    ck_assert_str_eq(tok, "");
}
END_TEST

START_TEST(test_http_auth_and_logs)
{
    svc_config c;
    char logpath[128];
    snprintf(logpath, sizeof logpath, "%s/log", store);
    FILE *log = fopen(logpath, "w");
    ck_assert_ptr_nonnull(log);
    tadm_config(&c, model_path, store, NULL);
    c.log_requests = 1;
    app *a = NULL;
    char err[512];
    ck_assert_msg(app_start(&c, log, &a, err, sizeof err) == 0, "%s", err);
    int port = app_port(a);
    tsv_resp r;
    char code[64], hv[128];

    ck_assert_int_eq(tadm_http("GET", port, "/models", NULL, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 401);
    tadm_json_str(r.body, "error.code", code, sizeof code);
    ck_assert_str_eq(code, "unauthorized");
    ck_assert_int_eq(tsv_header(&r, "WWW-Authenticate", hv, sizeof hv), 0);
    tsv_resp_free(&r);

    ck_assert_int_eq(tadm_http("GET", port, "/models", "wrong-guess-token", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 401);
    tadm_json_str(r.body, "error.code", code, sizeof code);
    ck_assert_str_eq(code, "invalid_token");
    ck_assert_ptr_null(strstr(r.body, "wrong-guess-token"));
    tsv_resp_free(&r);

    /* a refused POST with a body is answered too (the body is dropped) */
    ck_assert_int_eq(tadm_http("POST", port, "/train", "nope", "application/json", "{}", 2, &r), 0);
    ck_assert_int_eq(r.status, 401);
    tsv_resp_free(&r);

    ck_assert_int_eq(tadm_http("GET", port, "/models", TADM_TOKEN, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    tadm_json_str(r.body, "active", code, sizeof code);
    ck_assert_str_eq(code, "v0001");
    tsv_resp_free(&r);

    /* public endpoints need no token */
    ck_assert_int_eq(tadm_http("GET", port, "/healthz", NULL, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    tsv_resp_free(&r);

    app_free(a);
    fclose(log);
    char *text = tadm_slurp(logpath);
    ck_assert_ptr_nonnull(strstr(text, "path=\"/models\""));
    ck_assert_ptr_null(strstr(text, TADM_TOKEN));
    ck_assert_ptr_null(strstr(text, "wrong-guess-token"));
    free(text);
}
END_TEST

START_TEST(test_disabled_is_403)
{
    svc_config c;
    tadm_config(&c, model_path, store, NULL);
    c.admin_token[0] = '\0';
    app *a = tsv_start(&c);
    tsv_resp r;
    char code[64];
    ck_assert_int_eq(tadm_http("GET", app_port(a), "/train", "anything", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 403);
    tadm_json_str(r.body, "error.code", code, sizeof code);
    ck_assert_str_eq(code, "admin_disabled");
    ck_assert_ptr_nonnull(strstr(r.body, "EMOTIOND_ADMIN_TOKEN"));
    tsv_resp_free(&r);
    app_free(a);
}
END_TEST

START_TEST(test_separate_admin_port)
{
    svc_config c;
    tadm_config(&c, model_path, store, NULL);
    c.admin_port = 0; /* its own, ephemeral port on 127.0.0.1 */
    app *a = tsv_start(&c);
    int port = app_port(a), admin = app_admin_port(a);
    ck_assert_int_ne(port, admin);
    tsv_resp r;
    ck_assert_int_eq(tadm_http("GET", port, "/models", TADM_TOKEN, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 404); /* not on the public port */
    tsv_resp_free(&r);
    ck_assert_int_eq(tadm_http("GET", admin, "/models", TADM_TOKEN, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    tsv_resp_free(&r);
    ck_assert_int_eq(tadm_http("GET", admin, "/metrics", NULL, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 404); /* and nothing else on the admin port */
    tsv_resp_free(&r);
    app_free(a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("admin_auth");
    TCase *tc = tcase_create("auth");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_check);
    tcase_add_test(tc, test_sources);
    tcase_add_test(tc, test_http_auth_and_logs);
    tcase_add_test(tc, test_disabled_is_403);
    tcase_add_test(tc, test_separate_admin_port);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
