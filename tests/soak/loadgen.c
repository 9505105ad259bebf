/* loadgen.c - load generator of the soak test (issue 7, tests/soak/soak.sh).
 *
 *   loadgen --port P [--conns 64] [--seconds 300] [--max-body 262144] [--seed 1]
 *
 * Opens N keep-alive connections to 127.0.0.1:P, one thread each, and for S
 * seconds sends a mix of requests: valid images in every accepted form (raw
 * PNG, a 640x480 JPEG, multipart, JSON base64), and bad ones (a truncated PNG,
 * garbage bytes, a wrong Content-Type, bad JSON, bad base64, bodies past the
 * server's limit with and without "Expect: 100-continue"), plus health
 * checks. Each answer is checked against what its request deserves: the
 * status and, for errors, the JSON "code". A missing answer (timeout, reset
 * before the status line) counts as unexpected too.
 *
 * It prints one line per kind (sent, expected, unexpected, statuses seen,
 * latency p50/p99) and a total, and exits 1 when anything was unexpected.
 * wrk was not enough here: it cannot tell which request an answer belongs
 * to, and loses the status of a 413 sent while it is still writing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <png.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "base64.h"

#define MAX_STATUS 600
#define IO_TIMEOUT_S 60

/* ---- the request kinds ----------------------------------------------------- */

typedef enum { K_PNG, K_JPEG, K_MULTIPART, K_JSON, K_HEALTH, K_TRUNCATED, K_GARBAGE,
               K_WRONG_TYPE, K_BAD_JSON, K_BAD_BASE64, K_OVERSIZE, K_OVERSIZE_EXPECT,
               K_COUNT } kind_id;

typedef struct {
    const char *name;
    int weight;          /* share of the mix, in percent */
    int want_status;
    const char *want_code; /* the error "code" expected in the body, or NULL */
    char *req;           /* the whole request (headers + body), built once */
    size_t req_len;
} kind;

static kind kinds[K_COUNT] = {
    [K_PNG]             = {"png 48x48", 30, 200, NULL, NULL, 0},
    [K_JPEG]            = {"jpeg 640x480", 8, 200, NULL, NULL, 0},
    [K_MULTIPART]       = {"multipart png", 8, 200, NULL, NULL, 0},
    [K_JSON]            = {"json base64 png", 8, 200, NULL, NULL, 0},
    [K_HEALTH]          = {"GET /healthz", 6, 200, NULL, NULL, 0},
    [K_TRUNCATED]       = {"truncated png", 8, 400, "truncated_png", NULL, 0},
    [K_GARBAGE]         = {"garbage as jpeg", 6, 400, NULL, NULL, 0},
    [K_WRONG_TYPE]      = {"text/plain body", 6, 415, "unsupported_media_type", NULL, 0},
    [K_BAD_JSON]        = {"bad json", 5, 400, "invalid_json", NULL, 0},
    [K_BAD_BASE64]      = {"bad base64", 5, 400, "invalid_base64", NULL, 0},
    [K_OVERSIZE]        = {"oversize body", 5, 413, "payload_too_large", NULL, 0},
    [K_OVERSIZE_EXPECT] = {"oversize, 100-continue", 5, 413, "payload_too_large", NULL, 0},
};

/* ---- test images ----------------------------------------------------------- */

/* A grey face-sized gradient with a little noise, so that no two kinds of
 * image compress the same way. */
static unsigned char *gradient(int w, int h, uint32_t seed)
{
    unsigned char *p = malloc((size_t)w * h);
    if (!p) return NULL;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            seed = seed * 1664525u + 1013904223u;
            p[(size_t)y * w + x] = (unsigned char)((x * 200 / w + y * 55 / h) + (seed >> 29));
        }
    return p;
}

static unsigned char *encode_png(int w, int h, size_t *len)
{
    unsigned char *pix = gradient(w, h, 7), *out = NULL;
    png_image img;
    png_alloc_size_t n = 0;
    if (!pix) return NULL;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = PNG_FORMAT_GRAY;
    if (!png_image_write_to_memory(&img, NULL, &n, 0, pix, w, NULL)) goto out;
    out = malloc(n);
    if (out && !png_image_write_to_memory(&img, out, &n, 0, pix, w, NULL)) {
        free(out);
        out = NULL;
    }
    *len = n;
out:
    free(pix);
    return out;
}

static unsigned char *encode_jpeg(int w, int h, size_t *len)
{
    unsigned char *pix = gradient(w, h, 11), *jpg = NULL, *out = NULL;
    unsigned long n = 0;
    tjhandle tj = tjInitCompress();
    if (!pix || !tj) goto out;
    if (tjCompress2(tj, pix, w, 0, h, TJPF_GRAY, &jpg, &n, TJSAMP_GRAY, 85, 0) == 0) {
        out = malloc(n);
        if (out) memcpy(out, jpg, n);
        *len = n;
    }
out:
    if (jpg) tjFree(jpg);
    if (tj) tjDestroy(tj);
    free(pix);
    return out;
}

/* ---- building the requests ------------------------------------------------- */

static int set_request(kind *k, const char *path, const char *method, const char *ctype,
                       const char *extra_headers, const void *body, size_t body_len,
                       size_t announced_len)
{
    char head[1024];
    int h = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: emotiond-loadgen\r\n"
                     "%s%s%s%s",
                     method, path, ctype ? "Content-Type: " : "", ctype ? ctype : "",
                     ctype ? "\r\n" : "", extra_headers ? extra_headers : "");
    if (h < 0 || (size_t)h >= sizeof head) return -1;
    if (body || announced_len)
        h += snprintf(head + h, sizeof head - (size_t)h, "Content-Length: %zu\r\n",
                      announced_len ? announced_len : body_len);
    h += snprintf(head + h, sizeof head - (size_t)h, "\r\n");
    k->req = malloc((size_t)h + body_len);
    if (!k->req) return -1;
    memcpy(k->req, head, (size_t)h);
    if (body_len) memcpy(k->req + h, body, body_len);
    k->req_len = (size_t)h + body_len;
    return 0;
}

static int build_requests(size_t max_body)
{
    size_t png_len = 0, jpg_len = 0;
    unsigned char *png = encode_png(48, 48, &png_len);
    unsigned char *jpg = encode_jpeg(640, 480, &jpg_len);
    char *b64 = png ? b64_encode(png, png_len) : NULL, *buf = NULL;
    int rc = -1;
    if (!png || !jpg || !b64) goto out;
    if (jpg_len >= max_body) {
        fprintf(stderr, "loadgen: --max-body %zu is smaller than the test JPEG (%zu bytes)\n",
                max_body, jpg_len);
        goto out;
    }
    size_t cap = png_len * 2 + strlen(b64) + max_body + 8192;
    if (!(buf = malloc(cap))) goto out;

    if (set_request(&kinds[K_PNG], "/predict", "POST", "image/png", NULL, png, png_len, 0) ||
        set_request(&kinds[K_JPEG], "/predict", "POST", "image/jpeg", NULL, jpg, jpg_len, 0) ||
        set_request(&kinds[K_HEALTH], "/healthz", "GET", NULL, NULL, NULL, 0, 0) ||
        set_request(&kinds[K_TRUNCATED], "/predict", "POST", "image/png", NULL, png,
                    png_len / 2, 0))
        goto out;

    const char *bnd = "loadgenBoundary7MA4YWxk";
    int n = snprintf(buf, cap,
                     "--%s\r\nContent-Disposition: form-data; name=\"image\"; filename=\"f.png\"\r\n"
                     "Content-Type: image/png\r\n\r\n", bnd);
    memcpy(buf + n, png, png_len);
    n += (int)png_len;
    n += snprintf(buf + n, cap - (size_t)n, "\r\n--%s--\r\n", bnd);
    char ct[128];
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%s", bnd);
    if (set_request(&kinds[K_MULTIPART], "/predict", "POST", ct, NULL, buf, (size_t)n, 0))
        goto out;

    n = snprintf(buf, cap, "{\"image\": \"%s\"}", b64);
    if (set_request(&kinds[K_JSON], "/predict", "POST", "application/json", NULL, buf,
                    (size_t)n, 0))
        goto out;

    uint32_t s = 12345;
    for (int i = 0; i < 3000; i++) {
        s = s * 1103515245u + 12345u;
        buf[i] = (char)(s >> 24);
    }
    buf[0] = (char)0xff; /* a JPEG marker start, then nonsense */
    buf[1] = (char)0xd8;
    if (set_request(&kinds[K_GARBAGE], "/predict", "POST", "image/jpeg", NULL, buf, 3000, 0) ||
        set_request(&kinds[K_WRONG_TYPE], "/predict", "POST", "text/plain", NULL,
                    "hello, this is not an image", 27, 0) ||
        set_request(&kinds[K_BAD_JSON], "/predict", "POST", "application/json", NULL,
                    "{\"image\": \"iVBOR", 16, 0) ||
        set_request(&kinds[K_BAD_BASE64], "/predict", "POST", "application/json", NULL,
                    "{\"image\": \"!!not*base64!!\"}", 27, 0))
        goto out;

    /* Past the limit by 4 KB: the server reads and drops the excess, then
     * answers 413 (a client that sends without asking first must get its
     * answer, not a reset). */
    memset(buf, 'x', max_body + 4096);
    if (set_request(&kinds[K_OVERSIZE], "/predict", "POST", "image/png", NULL, buf,
                    max_body + 4096, 0))
        goto out;
    /* Announces 10x the limit and waits for "100 Continue", which must not
     * come: the 413 is the answer and no body is sent. */
    if (set_request(&kinds[K_OVERSIZE_EXPECT], "/predict", "POST", "image/png",
                    "Expect: 100-continue\r\n", NULL, 0, max_body * 10))
        goto out;
    rc = 0;
out:
    free(png);
    free(jpg);
    free(b64);
    free(buf);
    return rc;
}

/* ---- one connection -------------------------------------------------------- */

typedef struct {
    long sent, expected, unexpected;
    long status[MAX_STATUS + 1]; /* [0] = no answer */
    double *lat_ms;
    size_t nlat, cap;
} kind_stats;

typedef struct {
    int port, index;
    double deadline;
    uint64_t rng;
    kind_stats st[K_COUNT];
    char first_bad[K_COUNT][256]; /* the first unexpected answer of each kind */
} conn_thread;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {IO_TIMEOUT_S, 0};
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends what it can; a server that answers early and closes (413) makes the
 * rest fail, which is fine: the answer is read next. */
static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

/* Reads one response. Returns its status (0 if none came), sets *close_after
 * when the connection cannot be reused, and copies the start of the body. */
static int read_response(int fd, int *close_after, char *body, size_t bodycap)
{
    static const size_t cap = 65536;
    char *buf = malloc(cap);
    size_t have = 0;
    int status = 0;
    *close_after = 1;
    if (!buf) return 0;
    for (;;) {
        char *end = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
        if (end) {
            size_t head_len = (size_t)(end - buf) + 4;
            if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) { status = 0; break; }
            if (status == 100) { /* an interim answer: drop it and read on */
                memmove(buf, buf + head_len, have - head_len);
                have -= head_len;
                status = 0;
                continue;
            }
            long long clen = -1;
            *close_after = 0;
            for (char *l = buf; l < end; ) {
                char *nl = memmem(l, (size_t)(end + 2 - l), "\r\n", 2);
                if (!nl) break;
                if (!strncasecmp(l, "Content-Length:", 15)) clen = atoll(l + 15);
                if (!strncasecmp(l, "Connection:", 11) && strcasestr(l, "close") &&
                    strcasestr(l, "close") < nl)
                    *close_after = 1;
                l = nl + 2;
            }
            if (clen < 0) *close_after = 1; /* read to the end of the stream */
            size_t got = have - head_len;
            size_t want = clen < 0 ? (size_t)-1 : (size_t)clen;
            size_t copied = got < bodycap - 1 ? got : bodycap - 1;
            memcpy(body, buf + head_len, copied);
            body[copied] = 0;
            while (got < want) {
                char tmp[16384];
                ssize_t r = recv(fd, tmp, sizeof tmp, 0);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) {
                    if (clen >= 0) status = 0; /* cut short */
                    break;
                }
                if (copied < bodycap - 1) {
                    size_t c = (size_t)r < bodycap - 1 - copied ? (size_t)r : bodycap - 1 - copied;
                    memcpy(body + copied, tmp, c);
                    copied += c;
                    body[copied] = 0;
                }
                got += (size_t)r;
            }
            break;
        }
        if (have == cap) break; /* headers too long: not ours */
        ssize_t r = recv(fd, buf + have, cap - have, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        have += (size_t)r;
    }
    free(buf);
    return status;
}

static kind_id pick(uint64_t *rng)
{
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    int r = (int)(*rng % 100), acc = 0;
    for (int k = 0; k < K_COUNT; k++) {
        acc += kinds[k].weight;
        if (r < acc) return (kind_id)k;
    }
    return K_PNG;
}

static void *conn_main(void *arg)
{
    conn_thread *t = arg;
    int fd = -1;
    char body[512];
    while (now_s() < t->deadline) {
        kind_id k = pick(&t->rng);
        kind_stats *st = &t->st[k];
        if (fd < 0 && (fd = connect_to(t->port)) < 0) {
            st->sent++;
            st->unexpected++;
            st->status[0]++;
            if (!t->first_bad[k][0])
                snprintf(t->first_bad[k], sizeof t->first_bad[k], "connect: %s", strerror(errno));
            usleep(100000);
            continue;
        }
        double t0 = now_s();
        int close_after;
        send_all(fd, kinds[k].req, kinds[k].req_len);
        int status = read_response(fd, &close_after, body, sizeof body);
        double ms = (now_s() - t0) * 1e3;
        st->sent++;
        st->status[status >= 0 && status <= MAX_STATUS ? status : 0]++;
        int ok = status == kinds[k].want_status;
        if (ok && kinds[k].want_code) {
            char want[96];
            snprintf(want, sizeof want, "\"%s\"", kinds[k].want_code);
            ok = strstr(body, want) != NULL;
        }
        if (ok) {
            st->expected++;
        } else {
            st->unexpected++;
            if (!t->first_bad[k][0])
                snprintf(t->first_bad[k], sizeof t->first_bad[k], "status %d, body %.160s",
                         status, body);
        }
        if (st->nlat == st->cap) {
            size_t nc = st->cap ? st->cap * 2 : 1024;
            double *nl = realloc(st->lat_ms, nc * sizeof *nl);
            if (nl) { st->lat_ms = nl; st->cap = nc; }
        }
        if (st->nlat < st->cap) st->lat_ms[st->nlat++] = ms;
        if (close_after || !status) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0) close(fd);
    return NULL;
}

/* ---- report ---------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double p)
{
    if (!n) return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

int main(int argc, char **argv)
{
    int port = 0, conns = 64;
    double seconds = 300;
    size_t max_body = 262144;
    unsigned long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: loadgen --port P [--conns 64] [--seconds 300] [--max-body 262144] "
                   "[--seed 1]\n"
                   "--max-body must equal the server's max_body_bytes.\n");
            return 0;
        }
        if (!v) { fprintf(stderr, "loadgen: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--conns")) conns = atoi(v);
        else if (!strcmp(a, "--seconds")) seconds = atof(v);
        else if (!strcmp(a, "--max-body")) max_body = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--seed")) seed = strtoul(v, NULL, 10);
        else { fprintf(stderr, "loadgen: unknown option %s (see --help)\n", a); return 2; }
        i++;
    }
    if (port <= 0 || port > 65535 || conns < 1 || conns > 4096 || seconds <= 0 ||
        max_body < 1024) {
        fprintf(stderr, "loadgen: need --port 1..65535, --conns 1..4096, --seconds > 0, "
                        "--max-body >= 1024\n");
        return 2;
    }
    if (build_requests(max_body)) {
        fprintf(stderr, "loadgen: cannot build the test requests\n");
        return 2;
    }
    conn_thread *ts = calloc((size_t)conns, sizeof *ts);
    pthread_t *tid = calloc((size_t)conns, sizeof *tid);
    if (!ts || !tid) { fprintf(stderr, "loadgen: out of memory\n"); return 2; }
    double t0 = now_s();
    for (int i = 0; i < conns; i++) {
        ts[i].port = port;
        ts[i].index = i;
        ts[i].deadline = t0 + seconds;
        ts[i].rng = (seed * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)(i + 1) * 0xBF58476D1CE4E5B9ull);
        if (!ts[i].rng) ts[i].rng = 1;
        if (pthread_create(&tid[i], NULL, conn_main, &ts[i])) {
            fprintf(stderr, "loadgen: cannot start thread %d\n", i);
            return 2;
        }
    }
    for (int i = 0; i < conns; i++) pthread_join(tid[i], NULL);
    double elapsed = now_s() - t0;

    long total = 0, bad = 0, fivexx = 0;
    printf("%-24s %8s %8s %10s  %-28s %8s %8s\n", "kind", "sent", "expected", "unexpected",
           "statuses", "p50 ms", "p99 ms");
    for (int k = 0; k < K_COUNT; k++) {
        kind_stats sum = {0};
        size_t nlat = 0;
        for (int i = 0; i < conns; i++) nlat += ts[i].st[k].nlat;
        double *lat = malloc((nlat ? nlat : 1) * sizeof *lat);
        nlat = 0;
        for (int i = 0; i < conns; i++) {
            kind_stats *s = &ts[i].st[k];
            sum.sent += s->sent;
            sum.expected += s->expected;
            sum.unexpected += s->unexpected;
            for (int c = 0; c <= MAX_STATUS; c++) sum.status[c] += s->status[c];
            if (lat && s->nlat) memcpy(lat + nlat, s->lat_ms, s->nlat * sizeof *lat);
            nlat += s->nlat;
        }
        if (lat) qsort(lat, nlat, sizeof *lat, cmp_double);
        char sts[128] = "";
        size_t off = 0;
        for (int c = 0; c <= MAX_STATUS && off < sizeof sts - 16; c++) {
            if (!sum.status[c]) continue;
            if (c)
                off += (size_t)snprintf(sts + off, sizeof sts - off, "%s%d:%ld", off ? " " : "",
                                        c, sum.status[c]);
            else
                off += (size_t)snprintf(sts + off, sizeof sts - off, "%snone:%ld", off ? " " : "",
                                        sum.status[c]);
        }
        printf("%-24s %8ld %8ld %10ld  %-28s %8.2f %8.2f\n", kinds[k].name, sum.sent,
               sum.expected, sum.unexpected, sts, lat ? pct(lat, nlat, 50) : 0,
               lat ? pct(lat, nlat, 99) : 0);
        total += sum.sent;
        bad += sum.unexpected;
        for (int c = 500; c < 600; c++) fivexx += sum.status[c];
        free(lat);
    }
    printf("total: %ld requests in %.1f s (%.1f req/s) on %d connections; "
           "unexpected %ld; 5xx %ld\n", total, elapsed, total / elapsed, conns, bad, fivexx);
    for (int k = 0; k < K_COUNT; k++)
        for (int i = 0; i < conns; i++)
            if (ts[i].first_bad[k][0]) {
                printf("first unexpected %s (connection %d): %s\n", kinds[k].name, i,
                       ts[i].first_bad[k]);
                break;
            }
    for (int i = 0; i < conns; i++)
        for (int k = 0; k < K_COUNT; k++) free(ts[i].st[k].lat_ms);
    for (int k = 0; k < K_COUNT; k++) free(kinds[k].req);
    free(ts);
    free(tid);
    return bad ? 1 : 0;
}
