/* test_web.c - the web page at GET / and its files, embedded in the binary:
 * types, bytes equal to service/web/, the page's Content-Security-Policy,
 * ETag revalidation, HEAD, 404 JSON for unknown files; nosniff and a CSP on
 * every kind of response; no inline script or style in the page (the CSP
 * would block it) and no token storage in its script. */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common_svc.h"

static char model_path[64];
static app *srv;
static int port;

static void setup(void)
{
    nn_model_free(tsv_make_model_file(7, model_path, sizeof model_path));
    svc_config c;
    tsv_test_config(&c, model_path);
    srv = tsv_start(&c);
    port = app_port(srv);
}

static void teardown(void)
{
    app_free(srv);
    unlink(model_path);
}

static void header(const tsv_resp *r, const char *name, char *out, size_t outlen)
{
    ck_assert_msg(tsv_header(r, name, out, outlen) == 0, "no %s header in\n%s", name, r->headers);
}

/* The page's own policy: same origin only, nothing inline, not framed. */
static void assert_page_headers(const tsv_resp *r)
{
    char v[1024];
    header(r, "X-Content-Type-Options", v, sizeof v);
    ck_assert_str_eq(v, "nosniff");
    header(r, "Content-Security-Policy", v, sizeof v);
    ck_assert_ptr_nonnull(strstr(v, "default-src 'self'"));
    ck_assert_ptr_nonnull(strstr(v, "script-src 'self'"));
    ck_assert_ptr_nonnull(strstr(v, "style-src 'self'"));
    ck_assert_ptr_nonnull(strstr(v, "img-src 'self' blob: data:"));
    ck_assert_ptr_nonnull(strstr(v, "frame-ancestors 'none'"));
    ck_assert_ptr_null(strstr(v, "unsafe-inline"));
    ck_assert_ptr_null(strstr(v, "unsafe-eval"));
    ck_assert_ptr_null(strstr(v, "*"));
    header(r, "Cache-Control", v, sizeof v);
    ck_assert_str_eq(v, "no-cache");
    header(r, "ETag", v, sizeof v);
    ck_assert_int_eq(v[0], '"');
}

/* Any other response: nosniff and a policy that allows nothing. */
static void assert_api_headers(const tsv_resp *r)
{
    char v[1024];
    header(r, "X-Content-Type-Options", v, sizeof v);
    ck_assert_str_eq(v, "nosniff");
    header(r, "Content-Security-Policy", v, sizeof v);
    ck_assert_str_eq(v, "default-src 'none'; frame-ancestors 'none'");
    ck_assert_int_ne(tsv_header(r, "ETag", v, sizeof v), 0);
}

/* GET path: 200, the Content-Type starts with type, the body is the file. */
static void expect_file(const char *path, const char *type, const char *file)
{
    tsv_resp r;
    char ct[256];
    ck_assert_int_eq(tsv_http("GET", port, path, NULL, NULL, 0, &r), 0);
    ck_assert_msg(r.status == 200, "GET %s: %ld", path, r.status);
    header(&r, "Content-Type", ct, sizeof ct);
    ck_assert_msg(!strncmp(ct, type, strlen(type)), "GET %s: Content-Type %s", path, ct);
    ck_assert_ptr_nonnull(strstr(ct, "charset=utf-8"));
    assert_page_headers(&r);
    size_t flen = 0;
    uint8_t *want = tsv_read_file(file, &flen);
    ck_assert_ptr_nonnull(want);
    ck_assert_uint_eq(r.len, flen);
    ck_assert_int_eq(memcmp(r.body, want, flen), 0);
    free(want);
    tsv_resp_free(&r);
}

START_TEST(test_page_files)
{
    expect_file("/", "text/html", "service/web/index.html");
    expect_file("/index.html", "text/html", "service/web/index.html");
    expect_file("/app.js", "text/javascript", "service/web/app.js");
    expect_file("/style.css", "text/css", "service/web/style.css");
}
END_TEST

START_TEST(test_page_html)
{
    tsv_resp r;
    ck_assert_int_eq(tsv_http("GET", port, "/", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(!strncmp(r.body, "<!doctype html>", 15), "starts with %.20s", r.body);
    ck_assert_ptr_nonnull(strstr(r.body, "<meta name=\"viewport\""));
    ck_assert_ptr_nonnull(strstr(r.body, "<script src=\"/app.js\""));
    ck_assert_ptr_nonnull(strstr(r.body, "<link rel=\"stylesheet\" href=\"/style.css\">"));
    ck_assert_ptr_nonnull(strstr(r.body, "/openapi.yaml"));
    /* Nothing the CSP would block: no inline script, style or handler, and
     * nothing from another origin. */
    ck_assert_ptr_null(strstr(r.body, "<script>"));
    ck_assert_ptr_null(strstr(r.body, "<style"));
    ck_assert_ptr_null(strstr(r.body, " style="));
    ck_assert_ptr_null(strstr(r.body, " onclick="));
    ck_assert_ptr_null(strstr(r.body, " onload="));
    ck_assert_ptr_null(strstr(r.body, "src=\"http"));
    ck_assert_ptr_null(strstr(r.body, "href=\"http"));
    ck_assert_ptr_null(strstr(r.body, "//cdn"));
    tsv_resp_free(&r);

    /* The admin token lives in a variable: never in storage or a cookie. */
    ck_assert_int_eq(tsv_http("GET", port, "/app.js", NULL, NULL, 0, &r), 0);
    static const char *banned[] = {"localStorage", "sessionStorage", "indexedDB", "document.cookie",
                                   "innerHTML", "eval(", "new Function", "https://", "//cdn"};
    for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
        ck_assert_msg(!strstr(r.body, banned[i]), "app.js uses %s", banned[i]);
    ck_assert_ptr_nonnull(strstr(r.body, "getUserMedia"));
    ck_assert_ptr_nonnull(strstr(r.body, "Authorization"));
    tsv_resp_free(&r);
}
END_TEST

START_TEST(test_head_and_etag)
{
    tsv_resp r;
    char etag[128], v[128], inm[256];
    ck_assert_int_eq(tsv_http("GET", port, "/app.js", NULL, NULL, 0, &r), 0);
    header(&r, "ETag", etag, sizeof etag);
    size_t len = r.len;
    tsv_resp_free(&r);

    ck_assert_int_eq(tsv_http("HEAD", port, "/app.js", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.len, 0);
    header(&r, "Content-Length", v, sizeof v);
    ck_assert_uint_eq(strtoul(v, NULL, 10), len);
    header(&r, "ETag", v, sizeof v);
    ck_assert_str_eq(v, etag);
    assert_page_headers(&r);
    tsv_resp_free(&r);

    /* the client's copy is current: 304, no body */
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    const char *h1[] = {inm, NULL};
    ck_assert_int_eq(tsv_http("GET", port, "/app.js", h1, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 304);
    ck_assert_uint_eq(r.len, 0);
    header(&r, "ETag", v, sizeof v);
    ck_assert_str_eq(v, etag);
    tsv_resp_free(&r);
    snprintf(inm, sizeof inm, "If-None-Match: \"other\", W/%s", etag);
    ck_assert_int_eq(tsv_http("GET", port, "/app.js", h1, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 304);
    tsv_resp_free(&r);
    const char *h2[] = {"If-None-Match: *", NULL};
    ck_assert_int_eq(tsv_http("GET", port, "/style.css", h2, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 304);
    tsv_resp_free(&r);
    /* another file's tag, or a stale one: the whole file */
    ck_assert_int_eq(tsv_http("GET", port, "/style.css", h1, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_gt(r.len, 0);
    tsv_resp_free(&r);
    const char *h3[] = {"If-None-Match: \"0000000000000000\"", NULL};
    ck_assert_int_eq(tsv_http("GET", port, "/app.js", h3, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.len, len);
    tsv_resp_free(&r);
}
END_TEST

START_TEST(test_unknown_and_methods)
{
    static const char *paths[] = {"/nothing.js", "/app.css", "/web/app.js", "/app.js/",
                                  "/embed.c", "/APP.JS"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        tsv_resp r;
        char ct[128];
        ck_assert_int_eq(tsv_http("GET", port, paths[i], NULL, NULL, 0, &r), 0);
        ck_assert_msg(r.status == 404, "GET %s: %ld", paths[i], r.status);
        header(&r, "Content-Type", ct, sizeof ct);
        ck_assert_str_eq(ct, "application/json");
        json_t *o = json_loads(r.body, 0, NULL);
        ck_assert_ptr_nonnull(o);
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "error"), "code")),
                         "not_found");
        json_decref(o);
        assert_api_headers(&r);
        tsv_resp_free(&r);
    }
    tsv_resp r;
    char allow[128];
    ck_assert_int_eq(tsv_http("POST", port, "/app.js", NULL, "x", 1, &r), 0);
    ck_assert_int_eq(r.status, 405);
    header(&r, "Allow", allow, sizeof allow);
    ck_assert_str_eq(allow, "GET, HEAD, OPTIONS");
    assert_api_headers(&r);
    tsv_resp_free(&r);
    ck_assert_int_eq(tsv_http("DELETE", port, "/", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 405);
    tsv_resp_free(&r);
    /* the files are counted under their own route label (once the
     * completion callback, which may run after the client has its answer,
     * has counted the request) */
    int counted = 0;
    for (int i = 0; i < 500 && !counted; i++) {
        ck_assert_int_eq(tsv_http("GET", port, "/metrics", NULL, NULL, 0, &r), 0);
        counted = strstr(r.body, "emotiond_http_requests_total{route=\"static\",status=\"405\"} 1\n") != NULL;
        tsv_resp_free(&r);
        if (!counted) usleep(10000);
    }
    ck_assert_msg(counted, "no route=\"static\" count in /metrics");
}
END_TEST

/* nosniff and the API's policy on every other kind of answer: JSON, text,
 * YAML, errors, preflight, admin refusals, predictions. */
START_TEST(test_headers_everywhere)
{
    static const struct {
        const char *method, *path;
        long status;
    } reqs[] = {
        {"GET", "/healthz", 200},   {"HEAD", "/livez", 200},    {"GET", "/readyz", 200},
        {"GET", "/metrics", 200},   {"GET", "/model", 200},     {"GET", "/openapi.yaml", 200},
        {"GET", "/predict", 405},   {"OPTIONS", "/predict", 204}, {"GET", "/models", 403},
        {"POST", "/train", 403},    {"GET", "/nowhere", 404},
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        tsv_resp r;
        ck_assert_int_eq(tsv_http(reqs[i].method, port, reqs[i].path, NULL, NULL, 0, &r), 0);
        ck_assert_msg(r.status == reqs[i].status, "%s %s: %ld", reqs[i].method, reqs[i].path,
                      r.status);
        assert_api_headers(&r);
        tsv_resp_free(&r);
    }
    /* a prediction (answered by a worker) and a refused upload */
    size_t n = 0;
    uint8_t *px = tsv_gradient(48, 48, 1);
    uint8_t *png = tsv_png(48, 48, 0 /* PNG_COLOR_TYPE_GRAY */, 8, px, &n);
    const char *ct[] = {"Content-Type: image/png", NULL};
    tsv_resp r;
    ck_assert_int_eq(tsv_http("POST", port, "/predict", ct, png, n, &r), 0);
    ck_assert_int_eq(r.status, 200);
    assert_api_headers(&r);
    tsv_resp_free(&r);
    ck_assert_int_eq(tsv_http("POST", port, "/predict", ct, "not a png", 9, &r), 0);
    ck_assert_int_eq(r.status, 400);
    assert_api_headers(&r);
    tsv_resp_free(&r);
    free(png);
    free(px);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("web");
    TCase *tc = tcase_create("web");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_page_files);
    tcase_add_test(tc, test_page_html);
    tcase_add_test(tc, test_head_and_etag);
    tcase_add_test(tc, test_unknown_and_methods);
    tcase_add_test(tc, test_headers_everywhere);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
