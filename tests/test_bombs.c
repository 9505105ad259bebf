/* test_bombs.c - decompression bombs and hostile images against the decoder
 * the service uses (nn/image.c), with the service's default limits
 * (4096 x 4096 pixels). Every input is made here:
 *  - a 70-byte PNG whose header claims 100000 x 100000;
 *  - a small JPEG whose frame header claims 65535 x 65535;
 *  - PNGs with huge text chunks: one zTXt of 50 MB of text (about 50 KB
 *    compressed) and 150 zTXt chunks of 8 MB each (1.2 GB of text in a
 *    1.2 MB file), plus a 50 MB iTXt;
 *  - a progressive JPEG of 4096 x 4096 with 5000 scans (each scan a few bytes
 *    of end-of-band runs, each costing the decoder a pass over 262144 blocks);
 *  - a model file whose 300-byte header names 3.77e9 parameters;
 *  - the largest images the limits let through, for the figures.
 * Each must be answered in under a second (rejected, or, for the text
 * chunks, decoded with the text skipped) with the extra peak memory bounded.
 *
 * Peak memory: the kernel's high-water mark is reset (/proc/self/clear_refs,
 * "5") before each decode, so getrusage's ru_maxrss afterwards minus the
 * resident size before is the decode's own peak. Where the reset is not
 * allowed the figure is the plain ru_maxrss delta, a lower bound, and the
 * test says so. Figures are printed as "bomb: ..." lines. */
#include <check.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

#include "image.h"
#include "nn.h"

/* ---- measuring ------------------------------------------------------------- */

static long rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static int reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU time of this thread: the figure that does not depend on the load of
 * the machine (the tests assert on wall time, which is what a client sees). */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    int rc, rc_full;       /* img_decode_gray_resized (48x48), img_decode_gray */
    int w, h;              /* source size when decoded */
    double seconds;        /* the slower of the two decodes (wall) */
    double cpu;            /* its CPU time */
    long peak_kb;          /* extra peak memory of the worse of the two */
    int exact;             /* peak_kb from a reset high-water mark */
    char err[256];
} outcome;

/* Decodes data both ways the service does and measures each. */
static outcome decode(const char *name, const uint8_t *data, size_t len)
{
    outcome o;
    memset(&o, 0, sizeof o);
    img_limits lim;
    img_limits_default(&lim);
    for (int pass = 0; pass < 2; pass++) {
        uint8_t out[48 * 48], *px = NULL;
        char err[256] = "";
        int w = 0, h = 0;
        long before = rss_kb();
        int exact = reset_peak();
        long base = exact ? before : maxrss_kb();
        double t0 = now_s(), c0 = cpu_s();
        int rc = pass == 0 ? img_decode_gray_resized(data, len, &lim, 48, 48, out, &w, &h, err,
                                                     sizeof err)
                           : img_decode_gray(data, len, &lim, &px, &w, &h, err, sizeof err);
        double dt = now_s() - t0, dc = cpu_s() - c0;
        long peak = maxrss_kb() - base;
        free(px);
        if (pass == 0) {
            o.rc = rc;
            o.w = rc == IMG_OK ? w : 0;
            o.h = rc == IMG_OK ? h : 0;
            snprintf(o.err, sizeof o.err, "%s", err);
            o.exact = exact;
        } else {
            o.rc_full = rc;
        }
        if (dt > o.seconds) {
            o.seconds = dt;
            o.cpu = dc;
        }
        if (peak > o.peak_kb) o.peak_kb = peak;
    }
    printf("bomb: %-34s %7zu bytes: %-15s in %.3f s (cpu %.3f s), peak +%.1f MB%s (%s)\n", name,
           len, img_strerror_code(o.rc), o.seconds, o.cpu, o.peak_kb / 1024.0,
           o.exact ? "" : " (lower bound: high-water mark not resettable)",
           o.rc == IMG_OK ? "decoded" : o.err);
    fflush(stdout);
    return o;
}

/* ---- PNG construction -------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 4096;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put32(buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 4);
}

static void png_chunk(buf *b, const char *type, const void *data, size_t n)
{
    put32(b, (uint32_t)n);
    size_t at = b->n;
    put(b, type, 4);
    if (n) put(b, data, n);
    put32(b, (uint32_t)crc32(0, b->p + at, (uInt)(n + 4)));
}

static void png_start(buf *b, uint32_t w, uint32_t h, int depth, int ct)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    put(b, sig, 8);
    uint8_t ihdr[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                        (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
                        (uint8_t)depth, (uint8_t)ct, 0, 0, 0};
    png_chunk(b, "IHDR", ihdr, sizeof ihdr);
}

/* zlib-compresses n bytes of c (streamed, so the text never exists whole). */
static uint8_t *deflate_fill(int c, size_t n, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(deflateInit(&z, 9), Z_OK);
    size_t cap = n / 500 + 4096, len = 0;
    uint8_t *out = malloc(cap);
    static uint8_t in[1 << 16];
    memset(in, c, sizeof in);
    size_t left = n;
    int flush;
    do {
        size_t take = left < sizeof in ? left : sizeof in;
        left -= take;
        flush = left ? Z_NO_FLUSH : Z_FINISH;
        z.next_in = in;
        z.avail_in = (uInt)take;
        do {
            if (cap - len < 4096) {
                cap *= 2;
                out = realloc(out, cap);
            }
            z.next_out = out + len;
            z.avail_out = (uInt)(cap - len);
            deflate(&z, flush);
            len = cap - z.avail_out;
        } while (z.avail_out == 0 || (flush == Z_FINISH && z.avail_in));
    } while (flush != Z_FINISH);
    deflateEnd(&z);
    *outlen = len;
    return out;
}

/* A valid w x h 8-bit gray image (value v) as IDAT + IEND. */
static void png_gray_body(buf *b, int w, int h, int v)
{
    size_t raw = (size_t)(w + 1) * (size_t)h;
    uint8_t *rows = malloc(raw);
    for (int y = 0; y < h; y++) {
        rows[(size_t)y * (size_t)(w + 1)] = 0; /* filter: none */
        memset(rows + (size_t)y * (size_t)(w + 1) + 1, v, (size_t)w);
    }
    uLongf zl = compressBound(raw);
    uint8_t *z = malloc(zl);
    ck_assert_int_eq(compress2(z, &zl, rows, raw, 9), Z_OK);
    png_chunk(b, "IDAT", z, zl);
    png_chunk(b, "IEND", NULL, 0);
    free(z);
    free(rows);
}

/* A 48x48 gray PNG (value 77) preceded by n_chunks text chunks of type type
 * ("zTXt" or "iTXt"), each holding text_bytes of text compressed. */
static buf png_with_text(const char *type, int n_chunks, size_t text_bytes)
{
    buf b = {0};
    png_start(&b, 48, 48, 8, 0);
    size_t zl;
    uint8_t *z = deflate_fill('a', text_bytes, &zl);
    /* zTXt: keyword, NUL, method 0, data. iTXt: keyword, NUL, flag 1 (compressed),
     * method 0, language tag, NUL, translated keyword, NUL, data. */
    static const uint8_t ztxt_head[] = {'C', 'o', 'm', 'm', 'e', 'n', 't', 0, 0};
    static const uint8_t itxt_head[] = {'C', 'o', 'm', 'm', 'e', 'n', 't', 0, 1, 0, 0, 0};
    int itxt = !strcmp(type, "iTXt");
    size_t hl = itxt ? sizeof itxt_head : sizeof ztxt_head;
    uint8_t *chunk = malloc(hl + zl);
    memcpy(chunk, itxt ? itxt_head : ztxt_head, hl);
    memcpy(chunk + hl, z, zl);
    for (int i = 0; i < n_chunks; i++) png_chunk(&b, type, chunk, hl + zl);
    free(chunk);
    free(z);
    png_gray_body(&b, 48, 48, 77);
    return b;
}

/* ---- JPEG construction ------------------------------------------------------- */

static uint8_t *small_jpeg(int w, int h, int progressive, size_t *len)
{
    tjhandle tj = tjInitCompress();
    uint8_t *px = malloc((size_t)w * (size_t)h);
    for (int i = 0; i < w * h; i++) px[i] = (uint8_t)(i * 7);
    unsigned char *jpeg = NULL;
    unsigned long jl = 0;
    ck_assert_int_eq(tjCompress2(tj, px, w, 0, h, TJPF_GRAY, &jpeg, &jl, TJSAMP_GRAY, 90,
                                 progressive ? TJFLAG_PROGRESSIVE : 0), 0);
    uint8_t *out = malloc(jl);
    memcpy(out, jpeg, jl);
    tjFree(jpeg);
    tjDestroy(tj);
    free(px);
    *len = jl;
    return out;
}

/* Sets the frame size in the first SOF0/SOF2 segment. */
static void jpeg_patch_size(uint8_t *d, size_t len, int w, int h)
{
    for (size_t i = 2; i + 9 < len; i++)
        if (d[i] == 0xFF && (d[i + 1] == 0xC0 || d[i + 1] == 0xC2)) {
            d[i + 5] = (uint8_t)(h >> 8);
            d[i + 6] = (uint8_t)h;
            d[i + 7] = (uint8_t)(w >> 8);
            d[i + 8] = (uint8_t)w;
            return;
        }
    ck_abort_msg("no SOF marker");
}

/* Entropy-coded bits with 0xFF byte stuffing. */
typedef struct {
    buf *b;
    uint32_t acc;
    int nbits;
} bits;

static void bits_put(bits *w, uint32_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        w->acc = w->acc << 1 | ((v >> i) & 1);
        if (++w->nbits == 8) {
            uint8_t c = (uint8_t)w->acc;
            put(w->b, &c, 1);
            if (c == 0xFF) put(w->b, "\0", 1);
            w->acc = 0;
            w->nbits = 0;
        }
    }
}

static void bits_flush(bits *w)
{
    while (w->nbits) bits_put(w, 1, 1); /* pad with 1 bits */
}

static void marker(buf *b, uint8_t m, const uint8_t *seg, size_t n)
{
    uint8_t h[4] = {0xFF, m, (uint8_t)((n + 2) >> 8), (uint8_t)(n + 2)};
    put(b, h, m == 0xD8 || m == 0xD9 ? 2 : 4);
    if (n) put(b, seg, n);
}

/* A w x h gray progressive JPEG, all blocks zero, with one DC scan and then
 * n_ac identical AC scans (Ss=1, Se=63, Ah=Al=0): after the first, each
 * repeats a legal progression step, so libjpeg decodes all of them without a
 * warning. Each AC scan is a handful of EOBRUN codes (up to 32767 blocks per
 * code), a few dozen bytes that make the decoder visit every block again. */
static buf progressive_bomb(int w, int h, int n_ac)
{
    buf b = {0};
    marker(&b, 0xD8, NULL, 0);
    uint8_t dqt[65] = {0};
    for (int i = 1; i < 65; i++) dqt[i] = 1;
    marker(&b, 0xDB, dqt, sizeof dqt);
    uint8_t sof[9] = {8, (uint8_t)(h >> 8), (uint8_t)h, (uint8_t)(w >> 8), (uint8_t)w, 1, 1, 0x11, 0};
    marker(&b, 0xC2, sof, sizeof sof);
    /* DC table 0: one symbol (category 0) with the 1-bit code 0.
     * AC table 0: EOB0..EOB14 (symbols 0x00..0xE0) with 4-bit codes r. */
    uint8_t dht[1 + 16 + 1 + 1 + 16 + 15] = {0};
    size_t k = 0;
    dht[k++] = 0x00;
    dht[k] = 1;
    k += 16;
    dht[k++] = 0x00;
    dht[k++] = 0x10;
    dht[k + 3] = 15;
    k += 16;
    for (int r = 0; r < 15; r++) dht[k++] = (uint8_t)(r << 4);
    marker(&b, 0xC4, dht, k);

    long blocks = (long)((w + 7) / 8) * ((h + 7) / 8);
    uint8_t sos_dc[6] = {1, 1, 0x00, 0, 0, 0x00};
    marker(&b, 0xDA, sos_dc, sizeof sos_dc);
    bits bw = {&b, 0, 0};
    for (long i = 0; i < blocks; i++) bits_put(&bw, 0, 1); /* DC difference 0 */
    bits_flush(&bw);
    uint8_t sos_ac[6] = {1, 1, 0x00, 1, 63, 0x00};
    for (int s = 0; s < n_ac; s++) {
        marker(&b, 0xDA, sos_ac, sizeof sos_ac);
        for (long left = blocks; left > 0;) {
            long run = left < 32767 ? left : 32767;
            int r = 0;
            while ((2L << r) <= run) r++;
            bits_put(&bw, (uint32_t)r, 4);
            bits_put(&bw, (uint32_t)(run - (1L << r)), r);
            left -= run;
        }
        bits_flush(&bw);
    }
    marker(&b, 0xD9, NULL, 0);
    return b;
}

/* ---- tests ---------------------------------------------------------------------- */

#define FAST 1.0             /* seconds */
#define MB (1024L)           /* in KB */

START_TEST(test_png_claims_100000x100000)
{
    buf b = {0};
    png_start(&b, 100000, 100000, 8, 0);
    static const uint8_t idat[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
    png_chunk(&b, "IDAT", idat, sizeof idat);
    png_chunk(&b, "IEND", NULL, 0);
    outcome o = decode("PNG header 100000x100000", b.p, b.n);
    ck_assert_int_eq(o.rc, IMG_E_TOO_LARGE);
    ck_assert_int_eq(o.rc_full, IMG_E_TOO_LARGE);
    ck_assert_msg(strstr(o.err, "100000x100000") != NULL, "message: %s", o.err);
    ck_assert_double_lt(o.seconds, FAST);
    ck_assert_int_lt(o.peak_kb, 8 * MB);
    free(b.p);
}
END_TEST

START_TEST(test_jpeg_claims_65535x65535)
{
    size_t len;
    uint8_t *j = small_jpeg(16, 16, 0, &len);
    jpeg_patch_size(j, len, 65535, 65535);
    outcome o = decode("JPEG header 65535x65535", j, len);
    ck_assert_int_eq(o.rc, IMG_E_TOO_LARGE);
    ck_assert_int_eq(o.rc_full, IMG_E_TOO_LARGE);
    ck_assert_msg(strstr(o.err, "65535x65535") != NULL, "message: %s", o.err);
    ck_assert_double_lt(o.seconds, FAST);
    ck_assert_int_lt(o.peak_kb, 8 * MB);
    free(j);
}
END_TEST

/* Within the limits but with the data of a 16x16 image: the decoder must stop
 * at the end of the data, not fill 4096x4096 pixels of nothing. */
START_TEST(test_jpeg_claims_4096x4096_with_16x16_data)
{
    for (int prog = 0; prog < 2; prog++) {
        size_t len;
        uint8_t *j = small_jpeg(16, 16, prog, &len);
        jpeg_patch_size(j, len, 4096, 4096);
        outcome o = decode(prog ? "progressive JPEG 4096^2, 16^2 data" : "JPEG 4096^2, 16^2 data", j,
                           len);
        ck_assert_int_ne(o.rc, IMG_OK);
        ck_assert_int_ne(o.rc_full, IMG_OK);
        ck_assert_double_lt(o.seconds, FAST);
        ck_assert_int_lt(o.peak_kb, 64 * MB);
        free(j);
    }
}
END_TEST

static void check_text_png(const char *name, buf b, long max_peak_kb)
{
    outcome o = decode(name, b.p, b.n);
    /* The text is metadata the decoder has no use for: the image decodes. */
    ck_assert_msg(o.rc == IMG_OK && o.rc_full == IMG_OK, "%s: %s", name, o.err);
    ck_assert_int_eq(o.w, 48);
    ck_assert_double_lt(o.seconds, FAST);
    ck_assert_int_lt(o.peak_kb, max_peak_kb);
    free(b.p);
}

START_TEST(test_png_ztxt_50mb)
{
    check_text_png("PNG + zTXt of 50 MB", png_with_text("zTXt", 1, 50u << 20), 16 * MB);
}
END_TEST

START_TEST(test_png_itxt_50mb)
{
    check_text_png("PNG + iTXt of 50 MB", png_with_text("iTXt", 1, 50u << 20), 16 * MB);
}
END_TEST

START_TEST(test_png_150_ztxt_of_8mb)
{
    /* 1.2 MB of file, under the service's 8 MB body limit; 1.2 GB of text */
    check_text_png("PNG + 150 zTXt of 8 MB each", png_with_text("zTXt", 150, (8u << 20) - 4096),
                   16 * MB);
}
END_TEST

START_TEST(test_progressive_jpeg_5000_scans)
{
    buf b = progressive_bomb(4096, 4096, 5000);
    outcome o = decode("progressive JPEG 4096^2, 5001 scans", b.p, b.n);
    ck_assert_int_ne(o.rc, IMG_OK);
    ck_assert_int_ne(o.rc_full, IMG_OK);
    ck_assert_double_lt(o.seconds, FAST);
    ck_assert_int_lt(o.peak_kb, 64 * MB);
    free(b.p);
}
END_TEST

/* The crafted stream itself is valid: with a few scans it decodes (flat gray),
 * so the test above is rejected for its scan count, not as corrupt data. */
START_TEST(test_progressive_crafted_stream_is_valid)
{
    buf b = progressive_bomb(64, 48, 3);
    outcome o = decode("progressive JPEG 64x48, 4 scans", b.p, b.n);
    ck_assert_msg(o.rc == IMG_OK, "%s", o.err);
    ck_assert_int_eq(o.w, 64);
    ck_assert_int_eq(o.h, 48);
    free(b.p);
}
END_TEST

/* Not an image, but the same kind of bomb: a 320-byte model file whose
 * architecture has 3.77 billion parameters (two 4096-filter 15x15 convs). The
 * loader must refuse it from the header, before reserving 15 GB for them
 * (found with tests/fuzz/fuzz_model.c; libFuzzer's malloc limit flags it). */
START_TEST(test_model_file_claims_15gb_of_parameters)
{
    static const char hdr[] =
        "{\"arch\":{\"name\":\"bomb\",\"input\":{\"size\":32},\"layers\":["
        "{\"type\":\"conv\",\"filters\":4096,\"kernel\":15},"
        "{\"type\":\"conv\",\"filters\":4096,\"kernel\":15},"
        "{\"type\":\"gap\"},{\"type\":\"dense\",\"units\":7}]},"
        "\"classes\":[\"angry\",\"disgust\",\"fear\",\"happy\",\"neutral\",\"sad\",\"surprise\"],"
        "\"input\":{\"size\":32},\"params\":0,\"extras\":[]}";
    buf b = {0};
    put(&b, "EMOD", 4);
    uint32_t version = 1;
    uint64_t hlen = sizeof hdr - 1;
    put(&b, &version, 4); /* little-endian, as the format and every target we build on */
    put(&b, &hlen, 8);
    put(&b, hdr, hlen);
    uint32_t crc = (uint32_t)crc32(0, b.p, (uInt)b.n);
    put(&b, &crc, 4);
    nn_model *m = NULL;
    char err[512] = "";
    long before = rss_kb();
    int exact = reset_peak();
    long base = exact ? before : maxrss_kb();
    double t0 = now_s();
    int rc = nn_model_load_mem(b.p, b.n, &m, err, sizeof err);
    double dt = now_s() - t0;
    long peak = maxrss_kb() - base;
    printf("bomb: %-34s %7zu bytes: %-15s in %.3f s, peak +%.1f MB (%s)\n",
           "model file, 3.77e9 parameters", b.n, rc ? "refused" : "loaded", dt, peak / 1024.0, err);
    ck_assert_int_ne(rc, 0);
    ck_assert_ptr_null(m);
    /* refused for its size, not because a 15 GB allocation happened to fail:
     * by the architecture's parameter cap (NN_MAX_PARAMS), or else by the
     * file's size against its header */
    ck_assert_msg(strstr(err, "the most the engine accepts") != NULL ||
                  strstr(err, "does not match its header") != NULL, "%s", err);
    ck_assert_double_lt(dt, FAST);
    ck_assert_int_lt(peak, 8 * MB);
    free(b.p);
}
END_TEST

/* Not bombs: the largest inputs the default limits accept, for the figures
 * in tests/README.md (loose bounds: this is legitimate work). */
START_TEST(test_largest_accepted)
{
    buf b = {0};
    png_start(&b, 4096, 4096, 8, 0);
    png_gray_body(&b, 4096, 4096, 200);
    outcome o = decode("PNG 4096x4096 gray (accepted)", b.p, b.n);
    ck_assert_int_eq(o.rc, IMG_OK);
    ck_assert_double_lt(o.seconds, 10.0);
    ck_assert_int_lt(o.peak_kb, 128 * MB);
    free(b.p);

    buf p = progressive_bomb(4096, 4096, 9);
    o = decode("progressive JPEG 4096^2, 10 scans", p.p, p.n);
    ck_assert_msg(o.rc == IMG_OK, "%s", o.err);
    ck_assert_double_lt(o.seconds, 10.0);
    ck_assert_int_lt(o.peak_kb, 128 * MB);
    free(p.p);

    /* the worst a single request can cost: the most scans allowed (64) */
    p = progressive_bomb(4096, 4096, 63);
    o = decode("progressive JPEG 4096^2, 64 scans", p.p, p.n);
    ck_assert_msg(o.rc == IMG_OK, "%s", o.err);
    ck_assert_double_lt(o.seconds, 20.0);
    ck_assert_int_lt(o.peak_kb, 128 * MB);
    free(p.p);
    p = progressive_bomb(4096, 4096, 64);
    o = decode("progressive JPEG 4096^2, 65 scans", p.p, p.n);
    ck_assert_int_eq(o.rc, IMG_E_TOO_LARGE);
    free(p.p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bombs");
    TCase *tc = tcase_create("hostile_images");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_png_claims_100000x100000);
    tcase_add_test(tc, test_jpeg_claims_65535x65535);
    tcase_add_test(tc, test_jpeg_claims_4096x4096_with_16x16_data);
    tcase_add_test(tc, test_png_ztxt_50mb);
    tcase_add_test(tc, test_png_itxt_50mb);
    tcase_add_test(tc, test_png_150_ztxt_of_8mb);
    tcase_add_test(tc, test_progressive_jpeg_5000_scans);
    tcase_add_test(tc, test_progressive_crafted_stream_is_valid);
    tcase_add_test(tc, test_model_file_claims_15gb_of_parameters);
    tcase_add_test(tc, test_largest_accepted);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
