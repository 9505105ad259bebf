/* test_slow_clients.c - load, slow clients and abandoned requests against an
 * in-process server (issue 7, tests/README.md "Load held"):
 *  - a short run of the soak's load generator (tests/soak/loadgen): mixed
 *    valid, corrupt and oversize requests on 16 connections, every answer
 *    what its request deserves, and the server's /metrics counting exactly
 *    what the generator sent;
 *  - 300 connections that send their headers one byte at a time (slowloris)
 *    while a normal client is served promptly beside them, and that are
 *    closed after connection_timeout once they fall silent;
 *  - clients that send half a body and disconnect, at the connection limit:
 *    each frees its slot, so the next normal client is served.
 * Figures are printed as "slow: ..." lines. */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common_svc.h"

static char model_path[64];
static nn_model *model;
static uint8_t *png;
static size_t png_len;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void setup(void)
{
    model = tsv_make_model_file(7, model_path, sizeof model_path);
    uint8_t *g = tsv_gradient(48, 48, 1);
    png = tsv_png(48, 48, 0 /* PNG_COLOR_TYPE_GRAY */, 8, g, &png_len);
    free(g);
}

static void teardown(void)
{
    free(png);
    nn_model_free(model);
    unlink(model_path);
}

static int open_conn(int port, int nonblocking)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    if (nonblocking) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* One POST /predict of the test PNG; returns its status and the time taken. */
static long predict_once(int port, double *secs)
{
    const char *hdr[] = {"Content-Type: image/png", NULL};
    tsv_resp r;
    double t0 = now_s();
    long status = tsv_http("POST", port, "/predict", hdr, png, png_len, &r) ? 0 : r.status;
    *secs = now_s() - t0;
    tsv_resp_free(&r);
    return status;
}

/* The number of requests /metrics counted for route "predict" (all statuses). */
static long metrics_predicts(int port)
{
    tsv_resp r;
    long total = 0;
    if (tsv_http("GET", port, "/metrics", NULL, NULL, 0, &r)) return -1;
    for (char *p = r.body; (p = strstr(p, "emotiond_http_requests_total{route=\"predict\"")); ) {
        char *sp = strchr(p, ' ');
        if (!sp) break;
        total += atol(sp + 1);
        p = sp;
    }
    tsv_resp_free(&r);
    return total;
}

START_TEST(test_mixed_load_short)
{
    const char *build = getenv("BUILD");
    char gen[512];
    snprintf(gen, sizeof gen, "%s/tests/soak/loadgen", build ? build : "build");
    if (access(gen, X_OK)) {
        ck_abort_msg("%s is missing: `make test` builds it", gen);
    }
    svc_config c;
    tsv_test_config(&c, model_path);
    c.max_body_bytes = 256 * 1024;
    app *a = tsv_start(&c);
    char cmd[1024], out[8192] = "";
    snprintf(cmd, sizeof cmd, "%s --port %d --conns 16 --seconds 3 --max-body %lld 2>&1", gen,
             app_port(a), c.max_body_bytes);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int rc = pclose(p);
    printf("%s", out);
    ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "loadgen found unexpected answers:\n%s",
                  out);
    /* every POST the generator sent to /predict (all but /healthz) counted
     * once by the server: nothing answered twice, nothing dropped */
    long sent = 0;
    const char *kinds_predict[] = {"png 48x48", "jpeg 640x480", "multipart png",
                                   "json base64 png", "truncated png", "garbage as jpeg",
                                   "text/plain body", "bad json", "bad base64",
                                   "oversize body", "oversize, 100-continue"};
    for (size_t i = 0; i < sizeof kinds_predict / sizeof *kinds_predict; i++) {
        const char *line = strstr(out, kinds_predict[i]);
        ck_assert_msg(line != NULL, "no line for %s", kinds_predict[i]);
        sent += atol(line + strlen(kinds_predict[i]));
    }
    ck_assert_int_gt(sent, 50);
    /* A request is counted in libmicrohttpd's completion callback, which an
     * HTTP thread may run just after the client has read the answer: a
     * /metrics read right after loadgen exits missed 2 of 2,976 once
     * (2026-12-07). So the count gets up to 2 s to settle; one counted
     * twice would still show, as more than sent. */
    long counted = metrics_predicts(app_port(a));
    for (int i = 0; i < 100 && counted >= 0 && counted < sent; i++) {
        usleep(20000);
        counted = metrics_predicts(app_port(a));
    }
    ck_assert_msg(counted == sent, "/metrics counted %ld predict requests, loadgen sent %ld",
                  counted, sent);
    app_free(a);
}
END_TEST

#define SLOW_CLIENTS 300

START_TEST(test_slowloris_does_not_block)
{
    /* two sockets per slow client in this one process (client and server
     * side), plus the rest */
    struct rlimit rl;
    int slow = SLOW_CLIENTS;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2 * SLOW_CLIENTS + 200) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < 2 * SLOW_CLIENTS + 200) slow = (int)(rl.rlim_cur - 200) / 2;
        printf("slow: open-file limit %ld, using %d slow clients\n", (long)rl.rlim_cur, slow);
    }
    ck_assert_int_gt(slow, 50);

    svc_config c;
    tsv_test_config(&c, model_path);
    c.connection_timeout = 2;
    app *a = tsv_start(&c);
    int port = app_port(a);
    int *fd = calloc((size_t)slow, sizeof *fd);
    ck_assert_ptr_nonnull(fd);
    for (int i = 0; i < slow; i++) {
        fd[i] = open_conn(port, 1);
        ck_assert_msg(fd[i] >= 0, "slow client %d could not connect: %s", i, strerror(errno));
    }

    /* For 4 s, every slow client sends one more byte of its headers every
     * 0.5 s (never idle long enough for the 2 s timeout), while a normal
     * client posts images one after the other. */
    const char *req = "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                      "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    size_t pos = 0;
    double t_end = now_s() + 4, next_byte = 0, worst = 0, sum = 0;
    int served = 0, failed = 0;
    while (now_s() < t_end) {
        if (now_s() >= next_byte && pos < strlen(req)) {
            for (int i = 0; i < slow; i++)
                ck_assert_msg(send(fd[i], req + pos, 1, MSG_NOSIGNAL) == 1,
                              "slow client %d was cut off while still sending (%s)", i,
                              strerror(errno));
            pos++;
            next_byte = now_s() + 0.5;
        }
        double dt;
        long st = predict_once(port, &dt);
        if (st == 200) served++;
        else failed++;
        sum += dt;
        if (dt > worst) worst = dt;
    }
    printf("slow: %d slow clients trickling headers; a normal client beside them: %d served, "
           "%d failed, mean %.1f ms, worst %.1f ms\n",
           slow, served, failed, served ? sum / (served + failed) * 1e3 : 0, worst * 1e3);
    ck_assert_int_eq(failed, 0);
    ck_assert_int_gt(served, 10);
    ck_assert_msg(worst < 1.0, "a normal request took %.2f s beside the slow clients", worst);

    /* Now silent: each must be closed after connection_timeout (2 s), not
     * left holding its slot. */
    double t0 = now_s();
    int closed = 0;
    double last_close = 0;
    while (closed < slow && now_s() - t0 < 10) {
        struct pollfd *pf = calloc((size_t)slow, sizeof *pf);
        ck_assert_ptr_nonnull(pf);
        for (int i = 0; i < slow; i++) {
            pf[i].fd = fd[i];
            pf[i].events = POLLIN;
        }
        poll(pf, (nfds_t)slow, 200);
        for (int i = 0; i < slow; i++) {
            if (fd[i] < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char b[256];
            ssize_t n = recv(fd[i], b, sizeof b, 0);
            ck_assert_msg(n <= 0, "a half-sent request got an answer");
            close(fd[i]);
            fd[i] = -1;
            pf[i].fd = -1;
            closed++;
            last_close = now_s() - t0;
        }
        free(pf);
    }
    printf("slow: after they fell silent, %d of %d closed by the server, the last after %.2f s "
           "(connection_timeout 2 s)\n", closed, slow, last_close);
    ck_assert_int_eq(closed, slow);
    ck_assert_msg(last_close > 1.0 && last_close < 6.0, "closed after %.2f s", last_close);
    double dt;
    ck_assert_int_eq(predict_once(port, &dt), 200);
    free(fd);
    app_free(a);
}
END_TEST

START_TEST(test_disconnect_frees_slot)
{
    svc_config c;
    tsv_test_config(&c, model_path);
    c.connection_limit = 8;
    c.connection_timeout = 30; /* long: only the disconnect can free a slot */
    app *a = tsv_start(&c);
    int port = app_port(a);
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                      "Content-Length: %zu\r\n\r\n", png_len);
    double worst = 0;
    for (int round = 0; round < 5; round++) {
        /* the whole limit taken by clients that stop halfway through their
         * body, then go away */
        int fd[8];
        for (int i = 0; i < 8; i++) {
            fd[i] = open_conn(port, 0);
            ck_assert_int_ge(fd[i], 0);
            ck_assert_int_eq(send(fd[i], head, (size_t)hl, MSG_NOSIGNAL), hl);
            ck_assert_int_eq(send(fd[i], png, png_len / 2, MSG_NOSIGNAL), (ssize_t)(png_len / 2));
        }
        usleep(100000); /* let the server read what they sent */
        for (int i = 0; i < 8; i++) {
            if (round % 2) { /* reset rather than close, every other round */
                struct linger lg = {1, 0};
                setsockopt(fd[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            }
            close(fd[i]);
        }
        /* the next client must get in and be served at once */
        double t0 = now_s(), dt = 0;
        long st = 0;
        while (now_s() - t0 < 5 && (st = predict_once(port, &dt)) != 200) usleep(20000);
        double waited = now_s() - t0;
        ck_assert_msg(st == 200, "round %d: no slot came free after the disconnects (status %ld)",
                      round, st);
        if (waited > worst) worst = waited;
    }
    printf("slow: 5 rounds of 8 half-sent requests disconnected at connection_limit 8 "
           "(closed or reset): the next client served within %.1f ms at worst\n", worst * 1e3);
    ck_assert_msg(worst < 2.0, "a slot took %.2f s to come free", worst);
    app_free(a);
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("slow_clients");
    TCase *tc = tcase_create("slow");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_mixed_load_short);
    tcase_add_test(tc, test_slowloris_does_not_block);
    tcase_add_test(tc, test_disconnect_frees_slot);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
