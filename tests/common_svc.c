/* common_svc.c - see common_svc.h. */
#include "common_svc.h"

#include <check.h>
#include <curl/curl.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "model_ref.h"

const char tsv_tiny_arch[] =
    "{\"name\": \"tiny\","
    " \"input\": {\"size\": 48, \"channels\": 1, \"scale\": 0.00392156862745098, \"mean\": 0.5,"
    "           \"std\": 0.25},"
    " \"layers\": ["
    "  {\"type\": \"conv\", \"filters\": 4, \"kernel\": 3, \"padding\": \"same\"},"
    "  {\"type\": \"batchnorm\"},"
    "  {\"type\": \"relu\"},"
    "  {\"type\": \"maxpool\"},"
    "  {\"type\": \"maxpool\"},"
    "  {\"type\": \"flatten\"},"
    "  {\"type\": \"dense\", \"units\": 7}"
    " ]}";

nn_model *tsv_make_model_file(uint64_t seed, char *path, size_t pathlen)
{
    nn_model *m = NULL;
    char err[512] = "";
    if (nn_model_from_arch_json(tsv_tiny_arch, seed, &m, err, sizeof err))
        ck_abort_msg("tiny architecture: %s", err);
    snprintf(path, pathlen, "/tmp/emotiond-test-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    if (nn_model_save(m, path, err, sizeof err)) ck_abort_msg("save: %s", err);
    return m;
}

void tsv_test_config(svc_config *c, const char *model_path)
{
    cfg_defaults(c);
    /* one fp32 forward pass per image, so that answers can be compared with
     * nn_predict_u8(..., NN_TTA_NONE) of an fp32 model; the served defaults
     * (flip+crops, int8) have their own tests */
    c->tta = 0;
    c->tta_crops = 0;
    c->precision = NN_PRECISION_FP32;
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = 0;
    snprintf(c->model, sizeof c->model, "%s", model_path);
    c->workers = 2;
    c->http_threads = 2;
    c->shutdown_grace = 5;
    c->log_requests = getenv("TSV_VERBOSE") != NULL;
}

static FILE *log_stream(void)
{
    static FILE *devnull;
    if (getenv("TSV_VERBOSE")) return stderr;
    if (!devnull) devnull = fopen("/dev/null", "w");
    return devnull;
}

app *tsv_start(const svc_config *c)
{
    app *a = NULL;
    char err[1024] = "";
    if (app_start(c, log_stream(), &a, err, sizeof err)) ck_abort_msg("app_start: %s", err);
    return a;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    tsv_resp *r = ud;
    size_t n = size * nmemb;
    char *b = realloc(r->body, r->len + n + 1);
    if (!b) return 0;
    memcpy(b + r->len, ptr, n);
    r->body = b;
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    tsv_resp *r = ud;
    size_t n = size * nmemb;
    /* Keep only the last response's headers (after a 100 Continue). */
    if (n >= 5 && !strncmp(ptr, "HTTP/", 5)) r->headers[0] = '\0';
    size_t have = strlen(r->headers);
    if (have + n < sizeof r->headers) {
        memcpy(r->headers + have, ptr, n);
        r->headers[have + n] = '\0';
    }
    return n;
}

int tsv_http(const char *method, int port, const char *path, const char *const *headers,
             const void *body, size_t len, tsv_resp *r)
{
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    if (!c) return -1;
    char url[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *hl = NULL;
    for (const char *const *h = headers; h && *h; h++) hl = curl_slist_append(hl, *h);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    if (!strcmp(method, "HEAD")) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET")) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (hl) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    CURLcode rc = curl_easy_perform(c);
    r->curl_rc = (int)rc;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (!r->body) {
        r->body = calloc(1, 1);
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

void tsv_resp_free(tsv_resp *r)
{
    free(r->body);
    r->body = NULL;
}

int tsv_header(const tsv_resp *r, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    const char *p = r->headers;
    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        size_t linelen = eol ? (size_t)(eol - p) : strlen(p);
        if (linelen > n && !strncasecmp(p, name, n) && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ') v++;
            size_t vl = linelen - (size_t)(v - p);
            if (vl >= outlen) vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 0;
        }
        p = eol ? eol + 2 : NULL;
    }
    return -1;
}

int tsv_wait_predicts(int port, int n, double timeout)
{
    for (double waited = 0; waited < timeout; waited += 0.01) {
        tsv_resp r;
        if (tsv_http("GET", port, "/metrics", NULL, NULL, 0, &r) == 0) {
            long long seen = 0;
            const char *p = strstr(r.body, "\nemotiond_in_flight_requests ");
            if (p) seen += atoll(p + strlen("\nemotiond_in_flight_requests ")) - 1; /* not this one */
            const char *key = "emotiond_http_requests_total{route=\"predict\",";
            for (p = strstr(r.body, key); p; p = strstr(p + 1, key)) {
                const char *sp = strchr(p, ' ');
                if (sp) seen += atoll(sp + 1);
            }
            tsv_resp_free(&r);
            if (seen >= n) return 0;
        } else {
            tsv_resp_free(&r);
        }
        usleep(10000);
    }
    return -1;
}

typedef struct {
    uint8_t *buf;
    size_t len, cap;
} membuf;

static void png_write_mem(png_structp png, png_bytep data, png_size_t n)
{
    membuf *m = png_get_io_ptr(png);
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 4096;
        while (cap < m->len + n) cap *= 2;
        m->buf = realloc(m->buf, cap);
        m->cap = cap;
    }
    memcpy(m->buf + m->len, data, n);
    m->len += n;
}

static void png_flush_mem(png_structp png)
{
    (void)png;
}

uint8_t *tsv_png(int w, int h, int color_type, int bit_depth, const uint8_t *pixels,
                 size_t *len)
{
    int ch = color_type == PNG_COLOR_TYPE_GRAY         ? 1
             : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
             : color_type == PNG_COLOR_TYPE_RGB        ? 3
             : color_type == PNG_COLOR_TYPE_RGBA       ? 4
                                                       : 1;
    int bpc = bit_depth == 16 ? 2 : 1;
    membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert_ptr_nonnull(info);
    if (setjmp(png_jmpbuf(png))) ck_abort_msg("libpng write failed");
    png_set_write_fn(png, &m, png_write_mem, png_flush_mem);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bit_depth, color_type,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[256];
        int n = 1 << bit_depth;
        for (int i = 0; i < n; i++) {
            int v = n > 1 ? i * 255 / (n - 1) : 0;
            pal[i].red = pal[i].green = pal[i].blue = (png_byte)v;
        }
        png_set_PLTE(png, info, pal, n);
    }
    png_write_info(png, info);
    size_t stride = (size_t)w * (size_t)ch * (size_t)bpc;
    if (bit_depth < 8) {
        /* pixels holds one index per byte: let libpng pack them. */
        png_set_packing(png);
        stride = (size_t)w;
    }
    for (int y = 0; y < h; y++) png_write_row(png, pixels + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *len = m.len;
    return m.buf;
}

uint8_t *tsv_jpeg(int w, int h, int channels, const uint8_t *pixels, size_t *len)
{
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg = NULL;
    unsigned long jl = 0;
    int rc = tjCompress2(tj, pixels, w, 0, h, channels == 1 ? TJPF_GRAY : TJPF_RGB, &jpeg, &jl,
                         channels == 1 ? TJSAMP_GRAY : TJSAMP_420, 90, 0);
    ck_assert_msg(rc == 0, "tjCompress2: %s", tjGetErrorStr2(tj));
    tjDestroy(tj);
    uint8_t *out = malloc(jl);
    memcpy(out, jpeg, jl);
    tjFree(jpeg);
    *len = jl;
    return out;
}

uint8_t *tsv_gradient(int w, int h, int channels)
{
    uint8_t *p = malloc((size_t)w * (size_t)h * (size_t)channels);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++)
                p[((size_t)y * (size_t)w + (size_t)x) * (size_t)channels + (size_t)c] =
                    (uint8_t)((x * 255 / (w > 1 ? w - 1 : 1) + y * 97 / (h > 1 ? h : 1) + c * 40) & 0xff);
    return p;
}

uint8_t *tsv_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

const char *tsv_shared_data(void)
{
    return access("../shared/data/pngsuite", R_OK) == 0 ? "../shared/data" : NULL;
}
