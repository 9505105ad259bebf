/* test_service_process.c - `emotiond serve` as a process ($BUILD/emotiond):
 * start-up configuration and its errors, SIGTERM drain with requests in
 * flight, SIGHUP model reload (good and bad file), JSON logs. */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <png.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common_svc.h"

extern char **environ;

static char exe[512];
static char model_path[64];

typedef struct {
    pid_t pid;
    char log[64];  /* the child's stderr */
    char out[64];  /* the child's stdout */
    int port;
} child;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs exe with args and extra environment entries, output to temp files. */
static void spawn(child *c, const char *const *args, const char *const *env)
{
    snprintf(c->log, sizeof c->log, "/tmp/emotiond-log-XXXXXX");
    snprintf(c->out, sizeof c->out, "/tmp/emotiond-out-XXXXXX");
    int lfd = mkstemp(c->log), ofd = mkstemp(c->out);
    ck_assert(lfd >= 0 && ofd >= 0);
    char *argv[64];
    int n = 0;
    argv[n++] = exe;
    for (const char *const *a = args; *a; a++) argv[n++] = (char *)*a;
    argv[n] = NULL;
    char *envp[512];
    int m = 0;
    for (char **e = environ; *e && m < 480; e++)
        if (strncmp(*e, "EMOTIOND_", 9)) envp[m++] = *e;
    for (const char *const *e = env; e && *e; e++) envp[m++] = (char *)*e;
    envp[m] = NULL;
    c->pid = fork();
    ck_assert_int_ge(c->pid, 0);
    if (c->pid == 0) {
        dup2(lfd, 2);
        dup2(ofd, 1);
        execve(exe, argv, envp);
        _exit(127);
    }
    close(lfd);
    close(ofd);
    c->port = 0;
}

static char *slurp(const char *path)
{
    size_t len = 0;
    uint8_t *b = tsv_read_file(path, &len);
    char *s = malloc(len + 1);
    if (b) memcpy(s, b, len);
    s[len] = '\0';
    free(b);
    return s;
}

/* Waits until the log contains needle; returns 0 when it does. */
static int wait_log(child *c, const char *needle, double timeout)
{
    double t0 = now();
    while (now() - t0 < timeout) {
        char *s = slurp(c->log);
        int found = strstr(s, needle) != NULL;
        free(s);
        if (found) return 0;
        usleep(20000);
    }
    return -1;
}

static void wait_ready(child *c)
{
    if (wait_log(c, "ready on port ", 15)) {
        char *s = slurp(c->log);
        ck_abort_msg("server did not start:\n%s", s);
    }
    char *s = slurp(c->log);
    const char *p = strstr(s, "ready on port ");
    c->port = atoi(p + strlen("ready on port "));
    free(s);
    ck_assert_int_gt(c->port, 0);
}

/* Exit status after waiting at most timeout seconds (-1 on timeout). */
static int wait_exit(child *c, double timeout)
{
    double t0 = now();
    int st;
    while (now() - t0 < timeout) {
        pid_t r = waitpid(c->pid, &st, WNOHANG);
        if (r == c->pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(c->pid, SIGKILL);
    waitpid(c->pid, &st, 0);
    return -1;
}

static void cleanup(child *c)
{
    unlink(c->log);
    unlink(c->out);
}

static void setup(void)
{
    const char *build = getenv("BUILD");
    snprintf(exe, sizeof exe, "%s/emotiond", build && *build ? build : "build");
    nn_model *m = tsv_make_model_file(11, model_path, sizeof model_path);
    nn_model_free(m);
}

static void teardown(void)
{
    unlink(model_path);
}

START_TEST(test_print_config)
{
    child c;
    const char *args[] = {"serve", "--print-config", "--port", "9999", "--log-format=json", NULL};
    const char *env[] = {"EMOTIOND_WORKERS=3", "EMOTIOND_PORT=1111", NULL};
    spawn(&c, args, env);
    ck_assert_int_eq(wait_exit(&c, 10), 0);
    char *out = slurp(c.out);
    json_t *o = json_loads(out, 0, NULL);
    ck_assert_msg(o != NULL, "not JSON: %s", out);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "port")), 9999);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "workers")), 3);
    ck_assert_str_eq(json_string_value(json_object_get(o, "log_format")), "json");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "max_body_bytes")), 8 << 20);
    json_decref(o);
    free(out);
    cleanup(&c);
}
END_TEST

static void expect_startup_error(const char *const *args, const char *const *env, int code,
                                 const char *needle)
{
    child c;
    spawn(&c, args, env);
    ck_assert_int_eq(wait_exit(&c, 10), code);
    char *log = slurp(c.log);
    ck_assert_msg(strstr(log, needle) != NULL, "stderr lacks '%s':\n%s", needle, log);
    free(log);
    cleanup(&c);
}

START_TEST(test_startup_errors)
{
    const char *a1[] = {"serve", "--wrokers", "2", NULL};
    expect_startup_error(a1, NULL, 2, "--wrokers");
    const char *a2[] = {"serve", NULL};
    const char *e2[] = {"EMOTIOND_PORT=eighty", NULL};
    expect_startup_error(a2, e2, 2, "EMOTIOND_PORT");
    char cfg[64] = "/tmp/emotiond-cfg-XXXXXX";
    int fd = mkstemp(cfg);
    const char *text = "{\"port\": 8080, \"max_body\": 5}";
    ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    const char *a3[] = {"serve", "--config", cfg, NULL};
    expect_startup_error(a3, NULL, 2, "max_body");
    unlink(cfg);
    const char *a4[] = {"serve", "--model", "/nonexistent/model.emod", "--port", "0", NULL};
    expect_startup_error(a4, NULL, 1, "/nonexistent/model.emod");
}
END_TEST

typedef struct {
    int port;
    const uint8_t *img;
    size_t len;
    long status;
} req_arg;

static void *post_image(void *p)
{
    req_arg *a = p;
    const char *const h[] = {"Content-Type: image/png", "Expect:", NULL};
    tsv_resp r;
    /* faces=none: this file tests draining, not detection, and keeps each job
     * short so that the drain fits the grace period even under sanitizers */
    if (tsv_http("POST", a->port, "/predict?faces=none", h, a->img, a->len, &r) == 0) a->status = r.status;
    tsv_resp_free(&r);
    return NULL;
}

static uint8_t *noise_png(int side, unsigned seed, size_t *len)
{
    uint8_t *px = malloc((size_t)side * side);
    for (int i = 0; i < side * side; i++) px[i] = (uint8_t)((seed = seed * 1103515245u + 12345u) >> 24);
    uint8_t *png = tsv_png(side, side, PNG_COLOR_TYPE_GRAY, 8, px, len);
    free(px);
    return png;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

/* A client that uploads its body in two halves, on a raw socket. */
static int slow_start(int port, const uint8_t *img, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST /predict?faces=none HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\n"
                     "Content-Length: %zu\r\nX-Request-Id: slow-upload\r\n\r\n", len);
    ck_assert_int_eq(write(fd, head, (size_t)n), n);
    ck_assert_int_eq(write(fd, img, len / 2), (ssize_t)(len / 2));
    return fd;
}

static void slow_finish(int fd, const uint8_t *img, size_t len, char *resp, size_t resplen)
{
    size_t rest = len - len / 2;
    ck_assert_int_eq(write(fd, img + len / 2, rest), (ssize_t)rest);
    size_t got = 0;
    ssize_t k;
    while (got + 1 < resplen && (k = read(fd, resp + got, resplen - 1 - got)) > 0) {
        got += (size_t)k;
        resp[got] = '\0';
        if (strstr(resp, "\r\n\r\n") && strstr(resp, "}")) break;
    }
    resp[got] = '\0';
    close(fd);
}

/* SIGTERM with requests in flight (one still uploading, others queued behind
 * the one worker): readiness turns 503 on a connection that was already
 * open, every request is answered 200, and the process exits 0. */
START_TEST(test_sigterm_drains)
{
    child c;
    const char *args[] = {"serve", "--model", model_path, "--port", "0", "--host", "127.0.0.1",
                          "--workers", "1", "--http-threads", "4", "--shutdown-grace", "20", NULL};
    spawn(&c, args, NULL);
    wait_ready(&c);

    /* A kept-alive connection opened before the signal. */
    CURL *keep = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", c.port);
    curl_easy_setopt(keep, CURLOPT_URL, url);
    curl_easy_setopt(keep, CURLOPT_WRITEFUNCTION, discard);
    ck_assert_int_eq(curl_easy_perform(keep), CURLE_OK);
    long code = 0;
    curl_easy_getinfo(keep, CURLINFO_RESPONSE_CODE, &code);
    ck_assert_int_eq(code, 200);

    size_t len;
    uint8_t *png = noise_png(1000, 9, &len);
    int slow = slow_start(c.port, png, len);
    enum { N = 6 };
    pthread_t th[N];
    req_arg args2[N];
    for (int i = 0; i < N; i++) {
        args2[i] = (req_arg){c.port, png, len, 0};
        pthread_create(&th[i], NULL, post_image, &args2[i]);
    }
    /* Every request, the half-uploaded one included, has reached the server. */
    ck_assert_int_eq(tsv_wait_predicts(c.port, N + 1, 20), 0);
    double t0 = now();
    kill(c.pid, SIGTERM);
    ck_assert_int_eq(wait_log(&c, "shutting down", 5), 0);
    /* The upload is unfinished, so the server is still draining. */
    ck_assert_int_eq(curl_easy_perform(keep), CURLE_OK);
    curl_easy_getinfo(keep, CURLINFO_RESPONSE_CODE, &code);
    ck_assert_int_eq(code, 503);
    curl_easy_cleanup(keep);
    char resp[4096];
    slow_finish(slow, png, len, resp, sizeof resp);
    ck_assert_msg(!strncmp(resp, "HTTP/1.1 200", 12), "slow upload answered: %s", resp);
    ck_assert_ptr_nonnull(strstr(resp, "\"emotion\""));
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(args2[i].status == 200, "request %d answered %ld", i, args2[i].status);
    }
    ck_assert_int_eq(wait_exit(&c, 20), 0);
    ck_assert(now() - t0 < 20);
    char *log = slurp(c.log);
    ck_assert_msg(strstr(log, "drained") != NULL, "%s", log);
    ck_assert_msg(strstr(log, "id=slow-upload") != NULL, "%s", log);
    free(log);
    free(png);
    cleanup(&c);
}
END_TEST

static char *get_version(int port)
{
    tsv_resp r;
    ck_assert_int_eq(tsv_http("GET", port, "/model", NULL, NULL, 0, &r), 0);
    json_t *o = json_loads(r.body, 0, NULL);
    char *v = strdup(json_string_value(json_object_get(o, "version")));
    json_decref(o);
    tsv_resp_free(&r);
    return v;
}

/* SIGHUP: a new model file is served, a broken one refused; JSON logs. */
START_TEST(test_sighup_reload)
{
    child c;
    const char *args[] = {"serve", "--model", model_path, "--port", "0", "--host", "127.0.0.1",
                          "--workers", "2", NULL};
    const char *env[] = {"EMOTIOND_LOG_FORMAT=json", NULL};
    spawn(&c, args, env);
    wait_ready(&c);
    char *v1 = get_version(c.port);

    char other[64];
    nn_model *m2 = tsv_make_model_file(12, other, sizeof other);
    nn_model_free(m2);
    ck_assert_int_eq(rename(other, model_path), 0);
    kill(c.pid, SIGHUP);
    ck_assert_int_eq(wait_log(&c, "model reloaded", 10), 0);
    char *v2 = get_version(c.port);
    ck_assert_str_ne(v1, v2);

    FILE *f = fopen(model_path, "wb");
    fputs("EMOD garbage", f);
    fclose(f);
    kill(c.pid, SIGHUP);
    ck_assert_int_eq(wait_log(&c, "reload refused", 10), 0);
    char *v3 = get_version(c.port);
    ck_assert_str_eq(v2, v3);
    size_t len;
    uint8_t *png = noise_png(60, 1, &len);
    req_arg a = {c.port, png, len, 0};
    post_image(&a);
    ck_assert_int_eq(a.status, 200);

    kill(c.pid, SIGINT);
    ck_assert_int_eq(wait_exit(&c, 15), 0);
    /* Every stderr line is a JSON object; request lines carry the fields. */
    char *log = slurp(c.log);
    int requests = 0;
    char *save = NULL;
    for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);
        ck_assert_msg(o != NULL, "log line is not JSON: %s", line);
        if (!strcmp(json_string_value(json_object_get(o, "msg")), "request")) {
            requests++;
            ck_assert(json_is_string(json_object_get(o, "id")));
            ck_assert(json_is_integer(json_object_get(o, "status")));
            ck_assert(json_is_number(json_object_get(o, "latency_ms")));
        }
        json_decref(o);
    }
    ck_assert_int_ge(requests, 4);
    free(log);
    free(png);
    free(v1);
    free(v2);
    free(v3);
    cleanup(&c);
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("service_process");
    TCase *tc = tcase_create("process");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_print_config);
    tcase_add_test(tc, test_startup_errors);
    tcase_add_test(tc, test_sigterm_drains);
    tcase_add_test(tc, test_sighup_reload);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
