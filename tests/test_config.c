/* test_config.c - configuration: defaults, file < env < flags, and errors
 * that name the offending key. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char tmpfile_path[64];

static const char *write_tmp(const char *text)
{
    snprintf(tmpfile_path, sizeof tmpfile_path, "/tmp/emotiond-cfg-XXXXXX");
    int fd = mkstemp(tmpfile_path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    return tmpfile_path;
}

START_TEST(test_defaults)
{
    svc_config c;
    cfg_defaults(&c);
    ck_assert_int_eq(c.port, 8080);
    ck_assert_str_eq(c.model, "models/default.emod");
    ck_assert_int_eq(c.max_body_bytes, 8LL << 20);
    ck_assert_int_eq(c.max_image_width, 4096);
    ck_assert_int_eq(c.connection_timeout, 30);
    ck_assert_int_gt(cfg_effective_workers(&c), 0);
    ck_assert_int_eq(c.log_format, CFG_LOG_PLAIN);
}
END_TEST

START_TEST(test_precedence)
{
    const char *file = write_tmp("{\"port\": 9000, \"workers\": 3, \"queue_size\": 5,"
                                 " \"log_format\": \"json\", \"cors_origins\": [\"https://a.example\"]}");
    char cfgflag[128];
    snprintf(cfgflag, sizeof cfgflag, "--config=%s", file);
    char *argv[] = {"serve", cfgflag, "--workers", "7", NULL};
    char *envp[] = {"EMOTIOND_PORT=9100", "EMOTIOND_WORKERS=5", "PATH=/bin", NULL};
    svc_config c;
    cfg_extra x;
    char err[256] = "";
    ck_assert_msg(cfg_load(&c, 4, argv, envp, &x, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.port, 9100);      /* env beats file */
    ck_assert_int_eq(c.workers, 7);      /* flag beats env */
    ck_assert_int_eq(c.queue_size, 5);   /* file beats default */
    ck_assert_int_eq(c.log_format, CFG_LOG_JSON);
    ck_assert_int_eq(c.cors_count, 1);
    ck_assert_str_eq(c.cors_origins[0], "https://a.example");
    ck_assert_int_eq(c.http_threads, 2); /* default */
    ck_assert_str_eq(x.config_file, file);
    unlink(file);
}
END_TEST

START_TEST(test_env_config_file)
{
    const char *file = write_tmp("{\"port\": 1234}");
    char var[128];
    snprintf(var, sizeof var, "EMOTIOND_CONFIG=%s", file);
    char *argv[] = {"serve", NULL};
    char *envp[] = {var, NULL};
    svc_config c;
    char err[256] = "";
    ck_assert_msg(cfg_load(&c, 1, argv, envp, NULL, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.port, 1234);
    unlink(file);
}
END_TEST

START_TEST(test_flag_forms)
{
    char *argv[] = {"serve", "--port=81", "--max-body-bytes", "1000", "--tta", "true",
                    "--cors-origins", "https://x.example, *", "--print-config", NULL};
    svc_config c;
    cfg_extra x;
    char err[256] = "";
    ck_assert_msg(cfg_load(&c, 9, argv, NULL, &x, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(c.port, 81);
    ck_assert_int_eq(c.max_body_bytes, 1000);
    ck_assert_int_eq(c.tta, 1);
    ck_assert_int_eq(c.cors_count, 2);
    ck_assert_str_eq(c.cors_origins[1], "*");
    ck_assert_int_eq(x.print_config, 1);
}
END_TEST

/* Each bad input must fail and the message must name what is wrong. */
static void expect_error(int argc, char **argv, char **envp, const char *needle)
{
    svc_config c;
    char err[512] = "";
    ck_assert_int_eq(cfg_load(&c, argc, argv, envp, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, needle) != NULL, "error '%s' does not mention '%s'", err, needle);
}

START_TEST(test_errors)
{
    char *a1[] = {"serve", "--prot", "80", NULL};
    expect_error(3, a1, NULL, "--prot");
    char *a2[] = {"serve", "--port", "80x", NULL};
    expect_error(3, a2, NULL, "port");
    char *a3[] = {"serve", "--port", "70000", NULL};
    expect_error(3, a3, NULL, "port");
    char *a4[] = {"serve", "--workers", NULL};
    expect_error(2, a4, NULL, "workers");
    char *a5[] = {"serve", "stray", NULL};
    expect_error(2, a5, NULL, "stray");
    char *a6[] = {"serve", "--log-format", "xml", NULL};
    expect_error(3, a6, NULL, "log_format");
    char *a7[] = {"serve", "--tta", "maybe", NULL};
    expect_error(3, a7, NULL, "tta");
    char *a8[] = {"serve", "--queue-size", "0", NULL};
    expect_error(3, a8, NULL, "queue_size");

    char *argv[] = {"serve", NULL};
    char *e1[] = {"EMOTIOND_PORTT=1", NULL};
    expect_error(1, argv, e1, "EMOTIOND_PORTT");
    char *e2[] = {"EMOTIOND_WORKERS=-1", NULL};
    expect_error(1, argv, e2, "EMOTIOND_WORKERS");

    const char *f1 = write_tmp("{\"port\": 80, \"wokers\": 2}");
    char flag[128];
    snprintf(flag, sizeof flag, "--config=%s", f1);
    char *a9[] = {"serve", flag, NULL};
    expect_error(2, a9, NULL, "wokers");
    unlink(f1);

    const char *f2 = write_tmp("{\"port\": \"80\"}");
    snprintf(flag, sizeof flag, "--config=%s", f2);
    expect_error(2, a9, NULL, "port");
    unlink(f2);

    const char *f3 = write_tmp("{\"port\": 80,");
    snprintf(flag, sizeof flag, "--config=%s", f3);
    expect_error(2, a9, NULL, f3);
    unlink(f3);

    const char *f4 = write_tmp("[1, 2]");
    snprintf(flag, sizeof flag, "--config=%s", f4);
    expect_error(2, a9, NULL, "object");
    unlink(f4);

    const char *f5 = write_tmp("{\"port\": 80, \"port\": 81}");
    snprintf(flag, sizeof flag, "--config=%s", f5);
    expect_error(2, a9, NULL, "port");
    unlink(f5);

    char *a10[] = {"serve", "--config=/nonexistent/emotiond.json", NULL};
    expect_error(2, a10, NULL, "/nonexistent/emotiond.json");
}
END_TEST

/* A string setting that is not UTF-8 cannot be printed as JSON: the key is named. */
START_TEST(test_non_utf8_setting_named)
{
    char *argv[] = {"serve", "--model", "models/caf\xe9.emod", NULL};
    svc_config c;
    char err[256] = "";
    ck_assert_int_eq(cfg_load(&c, 3, argv, NULL, NULL, err, sizeof err), 0);
    ck_assert_ptr_null(cfg_to_json(&c));
    ck_assert_str_eq(cfg_non_utf8_key(&c), "model");
    cfg_defaults(&c);
    ck_assert_ptr_null(cfg_non_utf8_key(&c));
}
END_TEST

/* --print-config output is itself a valid config file giving the same settings. */
START_TEST(test_print_config_roundtrip)
{
    char *argv[] = {"serve", "--port", "4321", "--cors-origins", "https://b.example",
                    "--log-format", "json", NULL};
    svc_config c, d;
    char err[256] = "";
    ck_assert_int_eq(cfg_load(&c, 7, argv, NULL, NULL, err, sizeof err), 0);
    char *json = cfg_to_json(&c);
    ck_assert_ptr_nonnull(json);
    cfg_defaults(&d);
    ck_assert_msg(cfg_apply_json(&d, json, "print-config", err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(memcmp(&c, &d, sizeof c), 0);
    free(json);
}
END_TEST

/* The shipped config/emotiond.json is valid and equals the built-in defaults. */
START_TEST(test_shipped_config)
{
    svc_config c, d;
    char err[512] = "";
    cfg_defaults(&c);
    ck_assert_msg(cfg_apply_file(&c, "config/emotiond.json", err, sizeof err) == 0, "%s", err);
    cfg_defaults(&d);
    ck_assert_int_eq(memcmp(&c, &d, sizeof c), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_env_config_file);
    tcase_add_test(tc, test_flag_forms);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_print_config_roundtrip);
    tcase_add_test(tc, test_non_utf8_setting_named);
    tcase_add_test(tc, test_shipped_config);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
