/* test_routes.c - the URL table: known paths, methods, Allow values. */
#include <check.h>
#include <string.h>

#include "routes.h"

START_TEST(test_match)
{
    route_id id;
    const char *allow;
    ck_assert_int_eq(route_lookup("POST", "/predict", &id, &allow), ROUTE_MATCH);
    ck_assert_int_eq(id, ROUTE_PREDICT);
    ck_assert_int_eq(route_lookup("GET", "/healthz", &id, &allow), ROUTE_MATCH);
    ck_assert_int_eq(id, ROUTE_HEALTHZ);
    ck_assert_int_eq(route_lookup("HEAD", "/livez", &id, &allow), ROUTE_MATCH);
    ck_assert_int_eq(id, ROUTE_LIVEZ);
    ck_assert_int_eq(route_lookup("GET", "/readyz", &id, &allow), ROUTE_MATCH);
    ck_assert_int_eq(route_lookup("GET", "/metrics", &id, &allow), ROUTE_MATCH);
    ck_assert_int_eq(id, ROUTE_METRICS);
    ck_assert_int_eq(route_lookup("GET", "/model", &id, &allow), ROUTE_MATCH);
    ck_assert_int_eq(route_lookup("GET", "/", &id, &allow), ROUTE_MATCH);
    ck_assert_int_eq(id, ROUTE_ROOT);
    ck_assert_int_eq(route_lookup("GET", "/openapi.yaml", &id, &allow), ROUTE_MATCH);
    ck_assert_int_eq(id, ROUTE_OPENAPI);
    /* the web page's files (embedded, web_assets.h) */
    ck_assert_int_eq(route_lookup("GET", "/app.js", &id, &allow), ROUTE_MATCH);
    ck_assert_int_eq(id, ROUTE_STATIC);
    ck_assert_int_eq(route_lookup("HEAD", "/style.css", &id, &allow), ROUTE_MATCH);
    ck_assert_int_eq(id, ROUTE_STATIC);
    ck_assert_int_eq(route_lookup("OPTIONS", "/app.js", &id, &allow), ROUTE_PREFLIGHT);
    ck_assert_str_eq(allow, "GET, HEAD, OPTIONS");
}
END_TEST

START_TEST(test_not_found)
{
    route_id id;
    const char *allow;
    ck_assert_int_eq(route_lookup("GET", "/predict/", &id, &allow), ROUTE_NOT_FOUND);
    ck_assert_int_eq(id, ROUTE_OTHER);
    ck_assert_ptr_null(allow);
    ck_assert_int_eq(route_lookup("GET", "/PREDICT", &id, &allow), ROUTE_NOT_FOUND);
    ck_assert_int_eq(route_lookup("GET", "", &id, &allow), ROUTE_NOT_FOUND);
    ck_assert_int_eq(route_lookup("POST", "/nothing", &id, &allow), ROUTE_NOT_FOUND);
    ck_assert_int_eq(route_lookup("GET", "/nothing.js", &id, &allow), ROUTE_NOT_FOUND);
    ck_assert_int_eq(route_lookup("GET", "/web/app.js", &id, &allow), ROUTE_NOT_FOUND);
    ck_assert_int_eq(route_lookup("GET", "/embed.c", &id, &allow), ROUTE_NOT_FOUND);
}
END_TEST

START_TEST(test_method_not_allowed)
{
    route_id id;
    const char *allow;
    ck_assert_int_eq(route_lookup("GET", "/predict", &id, &allow), ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(allow, "POST, OPTIONS");
    ck_assert_int_eq(route_lookup("PUT", "/predict", &id, &allow), ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_int_eq(route_lookup("POST", "/healthz", &id, &allow), ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(allow, "GET, HEAD, OPTIONS");
    ck_assert_int_eq(route_lookup("DELETE", "/model", &id, &allow), ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_int_eq(route_lookup("get", "/model", &id, &allow), ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_int_eq(route_lookup("POST", "/app.js", &id, &allow), ROUTE_METHOD_NOT_ALLOWED);
    ck_assert_int_eq(id, ROUTE_STATIC);
    ck_assert_str_eq(allow, "GET, HEAD, OPTIONS");
}
END_TEST

START_TEST(test_preflight_and_names)
{
    route_id id;
    const char *allow;
    ck_assert_int_eq(route_lookup("OPTIONS", "/predict", &id, &allow), ROUTE_PREFLIGHT);
    ck_assert_str_eq(allow, "POST, OPTIONS");
    ck_assert_str_eq(route_name(ROUTE_PREDICT), "predict");
    ck_assert_str_eq(route_name(ROUTE_OTHER), "other");
    ck_assert_str_eq(route_name(ROUTE_STATIC), "static");
    ck_assert_str_eq(route_name(ROUTE_ADMIN), "admin");
    ck_assert_str_eq(route_name((route_id)99), "other");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("routes");
    TCase *tc = tcase_create("routes");
    tcase_add_test(tc, test_match);
    tcase_add_test(tc, test_not_found);
    tcase_add_test(tc, test_method_not_allowed);
    tcase_add_test(tc, test_preflight_and_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
