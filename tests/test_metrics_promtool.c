/* test_metrics_promtool.c - GET /metrics of a running server, after a few
 * requests of every kind, passes `promtool check metrics` (Debian package
 * prometheus; the test says so and checks only the rules below when promtool
 * is not installed) and follows Prometheus naming: every family has HELP and
 * TYPE, counters end in _total, histograms are in _seconds or _bytes, and no
 * name other than a counter's ends in _total. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common_svc.h"

static const char *const H_PNG[] = {"Content-Type: image/png", "Expect:", NULL};
static const char *const H_TEXT[] = {"Content-Type: text/plain", "Expect:", NULL};

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && !strncmp(s + n - k, suffix, k);
}

/* The naming rules, checked here whether or not promtool is installed. */
static void check_names(const char *text)
{
    char help[64][96], type[64][96], kind[64][16];
    int nh = 0, nt = 0, samples = 0;
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        p += n + (p[n] == '\n');
        if (!strncmp(line, "# HELP ", 7)) {
            ck_assert_int_lt(nh, 64);
            sscanf(line + 7, "%95s", help[nh++]);
        } else if (!strncmp(line, "# TYPE ", 7)) {
            ck_assert_int_lt(nt, 64);
            ck_assert_int_eq(sscanf(line + 7, "%95s %15s", type[nt], kind[nt]), 2);
            const char *name = type[nt];
            size_t len = strlen(name);
            if (!strcmp(kind[nt], "counter"))
                ck_assert_msg(ends_with(name, len, "_total"), "counter %s lacks _total", name);
            else
                ck_assert_msg(!ends_with(name, len, "_total"), "%s %s ends in _total", kind[nt],
                              name);
            if (!strcmp(kind[nt], "histogram"))
                ck_assert_msg(ends_with(name, len, "_seconds") || ends_with(name, len, "_bytes"),
                              "histogram %s is not in a base unit", name);
            ck_assert_msg(!strncmp(name, "emotiond_", 9), "%s lacks the emotiond_ prefix", name);
            ck_assert_msg(nh > 0 && !strcmp(help[nh - 1], name), "%s: TYPE without HELP", name);
            nt++;
        } else if (line[0]) {
            ck_assert_msg(nt > 0, "sample before any TYPE: %s", line);
            const char *fam = type[nt - 1];
            size_t fl = strlen(fam);
            ck_assert_msg(!strncmp(line, fam, fl), "sample '%s' outside its family %s", line, fam);
            samples++;
        }
    }
    ck_assert_int_eq(nh, nt);
    ck_assert_int_ge(nt, 15);
    ck_assert_int_gt(samples, nt);
}

START_TEST(test_metrics_promtool)
{
    char model_path[64];
    nn_model *m = tsv_make_model_file(3, model_path, sizeof model_path);
    svc_config c;
    tsv_test_config(&c, model_path);
    c.max_body_bytes = 4096;
    app *a = tsv_start(&c);
    int port = app_port(a);

    size_t len;
    uint8_t *px = tsv_gradient(48, 48, 1);
    uint8_t *png = tsv_png(48, 48, 0 /* PNG_COLOR_TYPE_GRAY */, 8, px, &len);
    static char big[8192];
    memset(big, 'x', sizeof big);
    tsv_resp r;
    struct {
        const char *method, *path;
        const char *const *headers;
        const void *body;
        size_t len;
        long status;
    } reqs[] = {
        {"POST", "/predict", H_PNG, png, len, 200},
        {"POST", "/predict", H_PNG, png, 20, 400},
        {"POST", "/predict", H_TEXT, "hello", 5, 415},
        {"POST", "/predict", H_PNG, big, sizeof big, 413},
        {"GET", "/predict", NULL, NULL, 0, 405},
        {"GET", "/nowhere", NULL, NULL, 0, 404},
        {"GET", "/healthz", NULL, NULL, 0, 200},
        {"GET", "/readyz", NULL, NULL, 0, 200},
        {"GET", "/model", NULL, NULL, 0, 200},
        {"GET", "/train", NULL, NULL, 0, 403},
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        ck_assert_int_eq(tsv_http(reqs[i].method, port, reqs[i].path, reqs[i].headers,
                                  reqs[i].body, reqs[i].len, &r), 0);
        ck_assert_msg(r.status == reqs[i].status, "%s %s: %ld, not %ld", reqs[i].method,
                      reqs[i].path, r.status, reqs[i].status);
        tsv_resp_free(&r);
    }
    /* A request is counted when libmicrohttpd reports it completed, which can
     * be just after its client has the answer: poll until the last is in. */
    for (int tries = 0;; tries++) {
        ck_assert_int_eq(tsv_http("GET", port, "/metrics", NULL, NULL, 0, &r), 0);
        if (strstr(r.body, "emotiond_http_requests_total{route=\"admin\",status=\"403\"} 1\n") ||
            tries == 100)
            break;
        tsv_resp_free(&r);
        usleep(50 * 1000);
    }
    ck_assert_int_eq(r.status, 200);
    char *text = strdup(r.body);
    tsv_resp_free(&r);
    app_free(a);

    /* every status is counted under its own code */
    ck_assert_ptr_nonnull(strstr(text, "emotiond_http_requests_total{route=\"admin\",status=\"403\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "emotiond_http_requests_total{route=\"predict\",status=\"413\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "emotiond_build_info{version=\""));
    ck_assert_ptr_nonnull(strstr(text, "\nemotiond_start_time_seconds "));
    check_names(text);

    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        printf("SKIP promtool check metrics: promtool not installed (apt-get install "
               "prometheus); naming rules checked without it\n");
    } else {
        char path[64] = "/tmp/emotiond-metrics-XXXXXX", cmd[256];
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
        close(fd);
        snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
        FILE *p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        char out[4096] = "";
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = '\0';
        int rc = pclose(p);
        unlink(path);
        ck_assert_msg(rc == 0 && n == 0, "promtool check metrics (exit %d):\n%s\n--- metrics:\n%s",
                      rc, out, text);
        printf("promtool check metrics: clean\n");
    }
    free(text);
    free(png);
    free(px);
    nn_model_free(m);
    unlink(model_path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics_promtool");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_metrics_promtool);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
