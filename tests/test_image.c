/* test_image.c - nn/image.c: PNG/JPEG decoding to gray, error codes, limits,
 * the area-averaging resize, PngSuite and libjpeg-turbo's test images.
 * Images are generated in memory; the shared data sets are optional. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <turbojpeg.h>

#include "common_imgtest.h"
#include "image.h"

#define PNGSUITE_DIR "../shared/data/pngsuite"
#define LJT_DIR "../shared/data/jpeg/libjpeg-turbo"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Decodes full size; fails the test with the decoder's message on error. */
static uint8_t *decode_ok(const uint8_t *d, size_t len, int *w, int *h)
{
    char err[256] = "";
    uint8_t *px = NULL;
    int rc = img_decode_gray(d, len, NULL, &px, w, h, err, sizeof err);
    ck_assert_msg(rc == IMG_OK, "decode failed: %s: %s", img_strerror_code(rc), err);
    ck_assert_ptr_nonnull(px);
    return px;
}

/* Expects failure code `want` from both entry points; returns the message. */
static void expect_fail(const uint8_t *d, size_t len, const img_limits *lim, int want,
                        char *err, size_t errlen)
{
    uint8_t *px = NULL, out[16 * 16];
    int w = -1, h = -1;
    err[0] = '\0';
    int rc = img_decode_gray(d, len, lim, &px, &w, &h, err, errlen);
    ck_assert_msg(rc == want, "len %zu: got %s (%s), want %s", len, img_strerror_code(rc), err,
                  img_strerror_code(want));
    ck_assert_ptr_null(px);
    ck_assert_msg(err[0] != '\0', "no error message");
    rc = img_decode_gray_resized(d, len, lim, 16, 16, out, NULL, NULL, err, errlen);
    ck_assert_msg(rc == want, "resized, len %zu: got %s (%s), want %s", len,
                  img_strerror_code(rc), err, img_strerror_code(want));
}

/* Deterministic pseudo-random values for test patterns. */
static uint32_t hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

/* What libpng's png_set_scale_16 gives: 16-bit to 8-bit, rounded. */
static int scale16(unsigned v)
{
    return (int)((v * 255u + 32767u) / 65535u);
}

/* ---- error codes --------------------------------------------------------------- */

START_TEST(test_strerror_codes)
{
    ck_assert_str_eq(img_strerror_code(IMG_OK), "ok");
    ck_assert_str_eq(img_strerror_code(IMG_E_EMPTY), "empty_body");
    ck_assert_str_eq(img_strerror_code(IMG_E_FORMAT), "unsupported_format");
    ck_assert_str_eq(img_strerror_code(IMG_E_CORRUPT_PNG), "corrupt_png");
    ck_assert_str_eq(img_strerror_code(IMG_E_CORRUPT_JPEG), "corrupt_jpeg");
    ck_assert_str_eq(img_strerror_code(IMG_E_TRUNCATED_PNG), "truncated_png");
    ck_assert_str_eq(img_strerror_code(IMG_E_TRUNCATED_JPEG), "truncated_jpeg");
    ck_assert_str_eq(img_strerror_code(IMG_E_TOO_LARGE), "image_too_large");
    ck_assert_str_eq(img_strerror_code(IMG_E_NOMEM), "out_of_memory");
    ck_assert_str_eq(img_strerror_code(IMG_E_IO), "io_error");
    ck_assert_str_eq(img_strerror_code(-1234), "unknown_error");
    img_limits lim;
    img_limits_default(&lim);
    ck_assert_int_eq(lim.max_width, 4096);
    ck_assert_int_eq(lim.max_height, 4096);
    ck_assert(lim.max_pixels == 4096LL * 4096LL);
}
END_TEST

START_TEST(test_empty_and_unknown_format)
{
    char err[256];
    static const uint8_t one = 0;
    expect_fail(&one, 0, NULL, IMG_E_EMPTY, err, sizeof err);
    expect_fail(NULL, 0, NULL, IMG_E_EMPTY, err, sizeof err);

    static const uint8_t gif[] = "GIF89a\x01\x00\x01\x00\x00\x00\x00;";
    expect_fail(gif, sizeof gif - 1, NULL, IMG_E_FORMAT, err, sizeof err);
    ck_assert_msg(strstr(err, "GIF") != NULL, "message should name GIF: %s", err);

    static const uint8_t text[] = "hello, this is not an image";
    expect_fail(text, sizeof text - 1, NULL, IMG_E_FORMAT, err, sizeof err);
    ck_assert_msg(strstr(err, "PNG or JPEG") != NULL, "%s", err);

    /* A lone byte that starts a signature is a truncated file, not garbage. */
    static const uint8_t p1[] = {0x89, 'P', 'N'};
    expect_fail(p1, sizeof p1, NULL, IMG_E_TRUNCATED_PNG, err, sizeof err);
    static const uint8_t j1[] = {0xFF, 0xD8};
    expect_fail(j1, sizeof j1, NULL, IMG_E_TRUNCATED_JPEG, err, sizeof err);
}
END_TEST

/* ---- PNG: every colour type and bit depth ------------------------------------------ */

/* Builds samples and the expected gray for one PNG variant, encodes and
 * decodes it, and compares every pixel exactly. */
static void check_png_variant(int ct, int depth, int interlace, int w, int h, int with_trns)
{
    int ch = ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_PALETTE ? 1
             : ct == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : ct == PNG_COLOR_TYPE_RGB ? 3 : 4;
    size_t n = (size_t)w * (size_t)h;
    uint16_t *s = malloc(sizeof *s * n * (size_t)ch);
    uint8_t *want = malloc(n);
    png_color pal[256];
    uint8_t pal_alpha[256];
    int npal = depth < 8 ? 1 << depth : 256;
    unsigned maxv = depth == 16 ? 65535u : (1u << depth) - 1u;
    ck_assert(s && want);
    for (int i = 0; i < npal; i++) {
        pal[i].red = (png_byte)hash32(3u * (unsigned)i);
        pal[i].green = (png_byte)hash32(3u * (unsigned)i + 1);
        pal[i].blue = (png_byte)hash32(3u * (unsigned)i + 2);
        pal_alpha[i] = (uint8_t)(i * 37);
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t *p = s + i * (size_t)ch;
        for (int c = 0; c < ch; c++)
            p[c] = (uint16_t)(hash32((uint32_t)(i * 4 + (size_t)c) ^ 0x5bd1e995u) % (maxv + 1));
        if (ct == PNG_COLOR_TYPE_PALETTE) {
            p[0] = (uint16_t)(p[0] % npal);
            want[i] = (uint8_t)imgt_luma(pal[p[0]].red, pal[p[0]].green, pal[p[0]].blue);
        } else if (ch <= 2) { /* gray (alpha dropped) */
            want[i] = (uint8_t)(depth == 16 ? scale16(p[0]) : (int)(p[0] * 255u / maxv));
        } else {
            int r = depth == 16 ? scale16(p[0]) : p[0];
            int g = depth == 16 ? scale16(p[1]) : p[1];
            int b = depth == 16 ? scale16(p[2]) : p[2];
            want[i] = (uint8_t)imgt_luma(r, g, b);
        }
    }
    png_color_16 trns_color = {.index = 0, .red = 1, .green = 2, .blue = 3, .gray = 1};
    imgt_png_spec spec = {.w = w, .h = h, .color_type = ct, .bit_depth = depth,
                          .interlace = interlace, .samples = s};
    if (ct == PNG_COLOR_TYPE_PALETTE) {
        spec.palette = pal;
        spec.npalette = npal;
        if (with_trns) {
            spec.trns = pal_alpha;
            spec.ntrns = npal;
        }
    } else if (with_trns && ch % 2 == 1) {
        spec.trns_color = &trns_color;
    }
    uint8_t *png = NULL;
    size_t len = 0;
    ck_assert_int_eq(imgt_png_encode(&spec, &png, &len), 0);

    int dw = 0, dh = 0;
    uint8_t *got = decode_ok(png, len, &dw, &dh);
    ck_assert_int_eq(dw, w);
    ck_assert_int_eq(dh, h);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "type %d depth %d interlace %d %dx%d trns %d: pixel %zu "
                      "is %d, want %d", ct, depth, interlace, w, h, with_trns, i, got[i], want[i]);

    /* Same size through the resizing entry point: identical, sizes reported. */
    uint8_t *same = malloc(n);
    int ow = 0, oh = 0;
    char err[256];
    ck_assert_int_eq(img_decode_gray_resized(png, len, NULL, w, h, same, &ow, &oh, err, sizeof err),
                     IMG_OK);
    ck_assert_int_eq(ow, w);
    ck_assert_int_eq(oh, h);
    ck_assert_mem_eq(same, want, n);
    free(same);
    free(got);
    free(png);
    free(want);
    free(s);
}

START_TEST(test_png_all_types)
{
    static const int combos[][2] = {
        {PNG_COLOR_TYPE_GRAY, 1},    {PNG_COLOR_TYPE_GRAY, 2},       {PNG_COLOR_TYPE_GRAY, 4},
        {PNG_COLOR_TYPE_GRAY, 8},    {PNG_COLOR_TYPE_GRAY, 16},      {PNG_COLOR_TYPE_RGB, 8},
        {PNG_COLOR_TYPE_RGB, 16},    {PNG_COLOR_TYPE_PALETTE, 1},    {PNG_COLOR_TYPE_PALETTE, 2},
        {PNG_COLOR_TYPE_PALETTE, 4}, {PNG_COLOR_TYPE_PALETTE, 8},    {PNG_COLOR_TYPE_GRAY_ALPHA, 8},
        {PNG_COLOR_TYPE_GRAY_ALPHA, 16}, {PNG_COLOR_TYPE_RGB_ALPHA, 8}, {PNG_COLOR_TYPE_RGB_ALPHA, 16},
    };
    static const int sizes[][2] = {{7, 5}, {1, 1}, {33, 3}, {2, 17}};
    for (size_t c = 0; c < sizeof combos / sizeof combos[0]; c++)
        for (int il = 0; il < 2; il++)
            for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
                for (int trns = 0; trns < 2; trns++)
                    check_png_variant(combos[c][0], combos[c][1],
                                      il ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                                      sizes[z][0], sizes[z][1], trns);
}
END_TEST

/* Reference points of the gray conversion (BT.601), and alpha is dropped:
 * a fully transparent red pixel is still red's gray. */
START_TEST(test_png_luma_and_alpha)
{
    static const uint16_t rgba[] = {255, 0, 0, 255,  0, 255, 0, 255,  0, 0, 255, 255,
                                    255, 255, 255, 255,  255, 0, 0, 0,  10, 20, 30, 128};
    imgt_png_spec spec = {.w = 6, .h = 1, .color_type = PNG_COLOR_TYPE_RGB_ALPHA, .bit_depth = 8,
                          .samples = rgba};
    uint8_t *png = NULL;
    size_t len;
    ck_assert_int_eq(imgt_png_encode(&spec, &png, &len), 0);
    int w, h;
    uint8_t *px = decode_ok(png, len, &w, &h);
    static const uint8_t want[] = {76, 150, 29, 255, 76, 18};
    ck_assert_mem_eq(px, want, sizeof want);
    free(px);
    free(png);
}
END_TEST

/* ---- JPEG ----------------------------------------------------------------------------- */

static void assert_close(const uint8_t *got, const uint8_t *want, size_t n, int tol, const char *what)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(abs(got[i] - want[i]) <= tol, "%s: pixel %zu is %d, want %d (+-%d)", what, i,
                      got[i], want[i], tol);
}

START_TEST(test_jpeg_gray_and_color)
{
    int w = 13, h = 7; /* odd size: partial MCUs */
    size_t n = (size_t)w * h, len;
    uint8_t gray[13 * 7], rgb[13 * 7 * 3], want[13 * 7];
    for (size_t i = 0; i < n; i++) {
        gray[i] = 77;
        rgb[3 * i] = 200;
        rgb[3 * i + 1] = 40;
        rgb[3 * i + 2] = 90;
        want[i] = (uint8_t)imgt_luma(200, 40, 90);
    }
    uint8_t *jpg = imgt_jpeg_encode(gray, w, h, TJPF_GRAY, TJSAMP_GRAY, 100, &len);
    int dw, dh;
    uint8_t *px = decode_ok(jpg, len, &dw, &dh);
    ck_assert_int_eq(dw, w);
    ck_assert_int_eq(dh, h);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(px[i], 77);
    free(px);
    free(jpg);

    static const int subsamps[] = {TJSAMP_444, TJSAMP_422, TJSAMP_420};
    for (size_t k = 0; k < 3; k++) {
        jpg = imgt_jpeg_encode(rgb, w, h, TJPF_RGB, subsamps[k], 95, &len);
        px = decode_ok(jpg, len, &dw, &dh);
        assert_close(px, want, n, 2, "RGB JPEG");
        free(px);
        free(jpg);
    }

    /* A smooth gradient survives quality 100 within 2 levels. */
    uint8_t grad[64 * 48];
    for (int y = 0; y < 48; y++)
        for (int x = 0; x < 64; x++)
            grad[y * 64 + x] = (uint8_t)(x * 3 + y);
    jpg = imgt_jpeg_encode(grad, 64, 48, TJPF_GRAY, TJSAMP_GRAY, 100, &len);
    px = decode_ok(jpg, len, &dw, &dh);
    assert_close(px, grad, sizeof grad, 2, "gradient");
    free(px);
    free(jpg);
}
END_TEST

/* CMYK (Adobe YCCK) JPEGs cannot be decoded to gray by TurboJPEG directly;
 * they are converted as libjpeg-turbo's cmyk.h does (inverted CMYK). */
START_TEST(test_jpeg_cmyk)
{
    enum { W = 16, H = 16 };
    uint8_t cmyk[W * H * 4];
    for (int i = 0; i < W * H; i++) {
        cmyk[4 * i] = 200;
        cmyk[4 * i + 1] = 100;
        cmyk[4 * i + 2] = 50;
        cmyk[4 * i + 3] = 180;
    }
    size_t len;
    uint8_t *jpg = imgt_jpeg_encode(cmyk, W, H, TJPF_CMYK, TJSAMP_444, 100, &len);
    int w, h;
    uint8_t *px = decode_ok(jpg, len, &w, &h);
    int want = imgt_luma(200 * 180 / 255, 100 * 180 / 255, 50 * 180 / 255);
    for (int i = 0; i < W * H; i++)
        ck_assert_msg(abs(px[i] - want) <= 2, "pixel %d is %d, want %d", i, px[i], want);
    free(px);
    free(jpg);
}
END_TEST

/* A 1920x1080 JPEG to 48x48: decoded at a reduced scale, and the result
 * matches a full decode followed by area averaging. */
START_TEST(test_jpeg_scaled_decode)
{
    int w = 1920, h = 1080;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    ck_assert_ptr_nonnull(rgb);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 255 / (w - 1));
            p[1] = (uint8_t)(y * 255 / (h - 1));
            p[2] = (uint8_t)((x + y) / 16 % 2 ? 200 : 40); /* stripes */
        }
    size_t len;
    uint8_t *jpg = imgt_jpeg_encode(rgb, w, h, TJPF_RGB, TJSAMP_420, 90, &len);
    free(rgb);

    uint8_t fast[48 * 48], ref[48 * 48];
    int ow = 0, oh = 0;
    char err[256];
    double t0 = now_s();
    ck_assert_int_eq(img_decode_gray_resized(jpg, len, NULL, 48, 48, fast, &ow, &oh, err, sizeof err),
                     IMG_OK);
    double t1 = now_s();
    ck_assert_int_eq(ow, w);
    ck_assert_int_eq(oh, h);
    int fw, fh;
    uint8_t *full = decode_ok(jpg, len, &fw, &fh);
    double t2 = now_s();
    ck_assert_int_eq(fw, w);
    img_resize_area(full, fw, fh, ref, 48, 48);
    assert_close(fast, ref, sizeof fast, 3, "scaled vs full decode");
    printf("1920x1080 JPEG -> 48x48: %.1f ms scaled, %.1f ms full decode\n", (t1 - t0) * 1e3,
           (t2 - t1) * 1e3);

    /* Non-square targets and targets larger than the image work too. */
    uint8_t *big = malloc(2000 * 1100);
    ck_assert_int_eq(img_decode_gray_resized(jpg, len, NULL, 2000, 1100, big, NULL, NULL, err,
                                             sizeof err), IMG_OK);
    ck_assert_int_eq(img_decode_gray_resized(jpg, len, NULL, 97, 13, big, NULL, NULL, err,
                                             sizeof err), IMG_OK);
    free(big);
    free(full);
    free(jpg);
}
END_TEST

/* ---- resize ------------------------------------------------------------------------------ */

/* Floating-point reference of the exact area average. */
static double area_ref(const uint8_t *src, int sw, int sh, int dw, int dh, int ox, int oy)
{
    double x0 = (double)ox * sw / dw, x1 = (double)(ox + 1) * sw / dw;
    double y0 = (double)oy * sh / dh, y1 = (double)(oy + 1) * sh / dh;
    double acc = 0;
    for (int y = (int)floor(y0); y < sh && y < (int)ceil(y1); y++)
        for (int x = (int)floor(x0); x < sw && x < (int)ceil(x1); x++) {
            double wx = fmin(x + 1, x1) - fmax(x, x0), wy = fmin(y + 1, y1) - fmax(y, y0);
            acc += src[y * sw + x] * wx * wy;
        }
    return acc / ((x1 - x0) * (y1 - y0));
}

START_TEST(test_resize_exact_values)
{
    uint8_t d[16];
    /* 4x4 -> 2x2: means of 2x2 blocks. */
    static const uint8_t s44[] = {0, 10, 100, 110, 20, 30, 120, 130, 200, 200, 1, 3, 200, 200, 5, 7};
    img_resize_area(s44, 4, 4, d, 2, 2);
    static const uint8_t w22[] = {15, 115, 200, 4};
    ck_assert_mem_eq(d, w22, 4);
    /* 3 -> 2: fractional coverage (1 + 1/2 source pixels each). */
    static const uint8_t s3[] = {0, 90, 180};
    img_resize_area(s3, 3, 1, d, 2, 1);
    ck_assert_int_eq(d[0], 30);
    ck_assert_int_eq(d[1], 150);
    img_resize_area(s3, 1, 3, d, 1, 2); /* same vertically */
    ck_assert_int_eq(d[0], 30);
    ck_assert_int_eq(d[1], 150);
    /* 2 -> 3 (upscaling): the middle output straddles both sources. */
    static const uint8_t s2[] = {0, 90};
    img_resize_area(s2, 2, 1, d, 3, 1);
    ck_assert_int_eq(d[0], 0);
    ck_assert_int_eq(d[1], 45);
    ck_assert_int_eq(d[2], 90);
    /* 1 -> 4: nearest/box. */
    static const uint8_t s1[] = {42};
    img_resize_area(s1, 1, 1, d, 4, 4);
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(d[i], 42);
    /* Rounding to nearest (halves up). */
    static const uint8_t h01[] = {0, 1}, h12[] = {1, 2}, h003[] = {0, 0, 1};
    img_resize_area(h01, 2, 1, d, 1, 1);
    ck_assert_int_eq(d[0], 1);
    img_resize_area(h12, 2, 1, d, 1, 1);
    ck_assert_int_eq(d[0], 2);
    img_resize_area(h003, 3, 1, d, 1, 1); /* 1/3 rounds down */
    ck_assert_int_eq(d[0], 0);
    /* 255s stay 255 (no overflow, exact weights). */
    uint8_t white[97 * 53];
    memset(white, 255, sizeof white);
    uint8_t out[48 * 48];
    img_resize_area(white, 97, 53, out, 48, 48);
    for (int i = 0; i < 48 * 48; i++)
        ck_assert_int_eq(out[i], 255);
}
END_TEST

START_TEST(test_resize_matches_reference)
{
    static const int sizes[][4] = {{5, 5, 2, 2}, {97, 53, 48, 48}, {48, 48, 48, 48}, {7, 3, 11, 5},
                                   {1, 9, 3, 2},  {200, 1, 48, 1},  {13, 17, 5, 7},  {3, 3, 48, 48}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int sw = sizes[k][0], sh = sizes[k][1], dw = sizes[k][2], dh = sizes[k][3];
        uint8_t *src = malloc((size_t)sw * sh), *dst = malloc((size_t)dw * dh);
        for (int i = 0; i < sw * sh; i++)
            src[i] = (uint8_t)hash32((uint32_t)i + 77u * (uint32_t)k);
        img_resize_area(src, sw, sh, dst, dw, dh);
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++) {
                double r = area_ref(src, sw, sh, dw, dh, x, y);
                ck_assert_msg(fabs(dst[y * dw + x] - r) <= 0.5 + 1e-9,
                              "%dx%d->%dx%d at (%d,%d): %d vs exact %.4f", sw, sh, dw, dh, x, y,
                              dst[y * dw + x], r);
            }
        free(src);
        free(dst);
    }
}
END_TEST

/* ---- truncated and corrupt input ------------------------------------------------------ */

START_TEST(test_png_truncated_every_length)
{
    uint16_t s[20 * 10 * 3];
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        s[i] = (uint16_t)(hash32((uint32_t)i) & 255);
    imgt_png_spec spec = {.w = 20, .h = 10, .color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8,
                          .samples = s};
    uint8_t *png;
    size_t len;
    ck_assert_int_eq(imgt_png_encode(&spec, &png, &len), 0);
    char err[256] = "";
    for (size_t cut = 1; cut < len; cut++)
        expect_fail(png, cut, NULL, IMG_E_TRUNCATED_PNG, err, sizeof err);
    ck_assert_msg(strstr(err, "truncated") != NULL, "%s", err);
    free(png);
}
END_TEST

START_TEST(test_jpeg_truncated_every_length)
{
    uint8_t rgb[32 * 24 * 3];
    for (size_t i = 0; i < sizeof rgb; i++)
        rgb[i] = (uint8_t)hash32((uint32_t)i);
    size_t len;
    uint8_t *jpg = imgt_jpeg_encode(rgb, 32, 24, TJPF_RGB, TJSAMP_420, 85, &len);
    char err[256];
    for (size_t cut = 1; cut < len; cut++)
        expect_fail(jpg, cut, NULL, IMG_E_TRUNCATED_JPEG, err, sizeof err);
    free(jpg);
}
END_TEST

START_TEST(test_png_corrupt)
{
    uint8_t px[16 * 16];
    for (int i = 0; i < 256; i++)
        px[i] = (uint8_t)i;
    size_t len;
    uint8_t *png = imgt_png_gray8(16, 16, px, &len);
    uint8_t *bad = malloc(len);
    char err[256];

    /* A flipped bit inside the IDAT data: zlib/filter errors come first. */
    memcpy(bad, png, len);
    uint8_t *idat = memmem(bad, len, "IDAT", 4);
    ck_assert_ptr_nonnull(idat);
    idat[8] ^= 0x10;
    expect_fail(bad, len, NULL, IMG_E_CORRUPT_PNG, err, sizeof err);

    /* Intact data but a wrong IDAT CRC (like PngSuite's xcsn0g01.png). */
    memcpy(bad, png, len);
    idat = memmem(bad, len, "IDAT", 4);
    uint32_t ilen = (uint32_t)idat[-4] << 24 | (uint32_t)idat[-3] << 16 | (uint32_t)idat[-2] << 8 | idat[-1];
    idat[4 + ilen + 3] ^= 1;
    expect_fail(bad, len, NULL, IMG_E_CORRUPT_PNG, err, sizeof err);
    ck_assert_msg(strstr(err, "IDAT: CRC error") != NULL, "%s", err);

    /* A bad CRC on an ancillary chunk is an error too (strict). */
    uint8_t *with_text = malloc(len + 64);
    size_t off = 33; /* after signature + IHDR */
    memcpy(with_text, png, off);
    size_t tl = imgt_png_chunk(with_text + off, "tEXt", (const uint8_t *)"Comment\0hi", 10);
    memcpy(with_text + off + tl, png + off, len - off);
    with_text[off + tl - 1] ^= 1;
    expect_fail(with_text, len + tl, NULL, IMG_E_CORRUPT_PNG, err, sizeof err);
    with_text[off + tl - 1] ^= 1; /* intact again: accepted */
    int w, h;
    free(decode_ok(with_text, len + tl, &w, &h));
    free(with_text);

    /* An invalid IHDR (bit depth 3) with a correct CRC. */
    memcpy(bad, png, len);
    uint8_t ihdr[13];
    memcpy(ihdr, bad + 16, 13);
    ihdr[8] = 3;
    imgt_png_chunk(bad + 8, "IHDR", ihdr, 13);
    expect_fail(bad, len, NULL, IMG_E_CORRUPT_PNG, err, sizeof err);

    /* Signature mangled by a text-mode transfer (CRLF -> LF). */
    memcpy(bad, png, len);
    memmove(bad + 4, bad + 5, len - 5);
    expect_fail(bad, len - 1, NULL, IMG_E_CORRUPT_PNG, err, sizeof err);
    ck_assert_msg(strstr(err, "signature") != NULL, "%s", err);

    /* Zlib data replaced by garbage (CRC fixed up so zlib itself complains). */
    memcpy(bad, png, len);
    idat = memmem(bad, len, "IDAT", 4);
    uint8_t *garbage = malloc(ilen);
    for (uint32_t i = 0; i < ilen; i++)
        garbage[i] = (uint8_t)hash32(i);
    imgt_png_chunk(idat - 4, "IDAT", garbage, ilen);
    expect_fail(bad, len, NULL, IMG_E_CORRUPT_PNG, err, sizeof err);
    free(garbage);
    free(bad);
    free(png);
}
END_TEST

/* Offset of the first marker m (FF m) after SOI, or 0. */
static size_t find_marker(const uint8_t *d, size_t len, uint8_t m)
{
    for (size_t i = 2; i + 1 < len; i++)
        if (d[i] == 0xFF && d[i + 1] == m)
            return i;
    return 0;
}

START_TEST(test_jpeg_corrupt)
{
    uint8_t gray[16 * 16];
    for (int i = 0; i < 256; i++)
        gray[i] = (uint8_t)(i * 7);
    size_t len;
    uint8_t *jpg = imgt_jpeg_encode(gray, 16, 16, TJPF_GRAY, TJSAMP_GRAY, 90, &len);
    uint8_t *bad = malloc(len);
    char err[256];

    /* SOS naming a component that does not exist. */
    memcpy(bad, jpg, len);
    size_t sos = find_marker(bad, len, 0xDA);
    ck_assert(sos > 0);
    bad[sos + 5] = 0x77;
    expect_fail(bad, len, NULL, IMG_E_CORRUPT_JPEG, err, sizeof err);

    /* Damaged entropy-coded data: only a libjpeg warning ("extraneous bytes"),
     * which is treated as an error. */
    memcpy(bad, jpg, len);
    for (size_t i = len - 40; i < len - 20; i++)
        bad[i] = (uint8_t)(0xFF ^ i);
    expect_fail(bad, len, NULL, IMG_E_CORRUPT_JPEG, err, sizeof err);
    ck_assert_msg(strstr(err, "warning treated as error") != NULL, "%s", err);

    /* Garbage right after SOI. */
    memcpy(bad, jpg, len);
    for (size_t i = 3; i < len; i++)
        bad[i] = (uint8_t)hash32((uint32_t)i);
    bad[2] = 0xFF;
    bad[3] = 0xC0; /* SOF0 with a random length and body */
    int rc = img_decode_gray_resized(bad, len, NULL, 8, 8, gray, NULL, NULL, err, sizeof err);
    ck_assert_msg(rc == IMG_E_CORRUPT_JPEG || rc == IMG_E_TRUNCATED_JPEG, "%s", err);

    /* 12-bit precision in SOF: a clear "unsupported" message, not "corrupt". */
    memcpy(bad, jpg, len);
    size_t sof = find_marker(bad, len, 0xC0);
    ck_assert(sof > 0);
    bad[sof + 4] = 12;
    rc = img_decode_gray_resized(bad, len, NULL, 8, 8, gray, NULL, NULL, err, sizeof err);
    ck_assert_msg(rc == IMG_E_FORMAT && strstr(err, "precision"), "%d %s", rc, err);
    free(bad);
    free(jpg);
}
END_TEST

/* ---- limits ------------------------------------------------------------------------------ */

/* A tiny PNG whose IHDR claims w x h (8-bit gray), with a small IDAT. */
static size_t png_claiming(uint8_t *buf, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                        (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
                        8, 0, 0, 0, 0};
    static const uint8_t idat[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
    size_t n = 0;
    memcpy(buf, sig, 8);
    n += 8;
    n += imgt_png_chunk(buf + n, "IHDR", ihdr, 13);
    n += imgt_png_chunk(buf + n, "IDAT", idat, sizeof idat);
    n += imgt_png_chunk(buf + n, "IEND", NULL, 0);
    return n;
}

START_TEST(test_png_too_large)
{
    uint8_t buf[128];
    char err[256];
    size_t len = png_claiming(buf, 100000, 100000);
    double t0 = now_s();
    expect_fail(buf, len, NULL, IMG_E_TOO_LARGE, err, sizeof err);
    double dt = now_s() - t0;
    ck_assert_msg(strstr(err, "100000x100000") && strstr(err, "4096x4096"), "%s", err);
    ck_assert_msg(dt < 1.0, "took %.3f s", dt);

    /* Within the width/height limits but above the pixel limit. */
    img_limits lim = {.max_width = 200000, .max_height = 200000, .max_pixels = 1000000};
    expect_fail(buf, len, &lim, IMG_E_TOO_LARGE, err, sizeof err);
    ck_assert_msg(strstr(err, "pixels"), "%s", err);

    /* A real image and tight limits. */
    uint8_t px[11 * 5] = {0};
    uint8_t *png = imgt_png_gray8(11, 5, px, &len);
    lim = (img_limits){.max_width = 10, .max_height = 10, .max_pixels = 100};
    expect_fail(png, len, &lim, IMG_E_TOO_LARGE, err, sizeof err);
    ck_assert_msg(strstr(err, "PNG is 11x5, above the 10x10 limit"), "%s", err);
    lim = (img_limits){.max_width = 11, .max_height = 5, .max_pixels = 55};
    int w, h;
    uint8_t *out = NULL;
    ck_assert_int_eq(img_decode_gray(png, len, &lim, &out, &w, &h, err, sizeof err), IMG_OK);
    free(out);
    lim.max_pixels = 54;
    expect_fail(png, len, &lim, IMG_E_TOO_LARGE, err, sizeof err);
    free(png);
}
END_TEST

START_TEST(test_jpeg_too_large)
{
    uint8_t gray[16 * 16] = {0};
    size_t len;
    uint8_t *jpg = imgt_jpeg_encode(gray, 16, 16, TJPF_GRAY, TJSAMP_GRAY, 90, &len);
    size_t sof = find_marker(jpg, len, 0xC0);
    ck_assert(sof > 0);
    memset(jpg + sof + 5, 0xFF, 4); /* height, width = 65535 */
    char err[256];
    double t0 = now_s();
    expect_fail(jpg, len, NULL, IMG_E_TOO_LARGE, err, sizeof err);
    double dt = now_s() - t0;
    ck_assert_msg(strstr(err, "JPEG is 65535x65535, above the 4096x4096 limit"), "%s", err);
    ck_assert_msg(dt < 1.0, "took %.3f s", dt);
    free(jpg);
}
END_TEST

/* ---- files ----------------------------------------------------------------------------- */

START_TEST(test_read_file)
{
    char dir[64], path[128], err[256];
    imgt_mkdtemp(dir);
    snprintf(path, sizeof path, "%s/a.bin", dir);
    imgt_write_file(path, "hello", 5);
    uint8_t *d = NULL;
    size_t len = 0;
    ck_assert_int_eq(img_read_file(path, 100, &d, &len, err, sizeof err), IMG_OK);
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(d, "hello", 5);
    free(d);
    ck_assert_int_eq(img_read_file(path, 4, &d, &len, err, sizeof err), IMG_E_TOO_LARGE);
    ck_assert_ptr_null(d);
    snprintf(path, sizeof path, "%s/missing.png", dir);
    ck_assert_int_eq(img_read_file(path, 100, &d, &len, err, sizeof err), IMG_E_IO);
    ck_assert_msg(strstr(err, "missing.png") && strstr(err, "No such file"), "%s", err);
    ck_assert_int_eq(img_read_file(dir, 100, &d, &len, err, sizeof err), IMG_E_IO);
    snprintf(path, sizeof path, "%s/empty", dir);
    imgt_write_file(path, "", 0);
    ck_assert_int_eq(img_read_file(path, 100, &d, &len, err, sizeof err), IMG_OK);
    ck_assert_uint_eq(len, 0);
    free(d);
    imgt_rm_rf(dir);
}
END_TEST

/* ---- thread safety --------------------------------------------------------------------- */

START_TEST(test_parallel_decode)
{
    uint8_t px[40 * 30 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)hash32((uint32_t)i);
    size_t plen, jlen;
    uint16_t s[40 * 30 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        s[i] = px[i];
    imgt_png_spec spec = {.w = 40, .h = 30, .color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8,
                          .interlace = PNG_INTERLACE_ADAM7, .samples = s};
    uint8_t *png;
    ck_assert_int_eq(imgt_png_encode(&spec, &png, &plen), 0);
    uint8_t *jpg = imgt_jpeg_encode(px, 40, 30, TJPF_RGB, TJSAMP_420, 80, &jlen);
    uint8_t ref_png[48 * 48], ref_jpg[48 * 48];
    char err[256];
    ck_assert_int_eq(img_decode_gray_resized(png, plen, NULL, 48, 48, ref_png, NULL, NULL, err, sizeof err), IMG_OK);
    ck_assert_int_eq(img_decode_gray_resized(jpg, jlen, NULL, 48, 48, ref_jpg, NULL, NULL, err, sizeof err), IMG_OK);
    int bad = 0;
#pragma omp parallel for num_threads(4) reduction(+ : bad)
    for (int i = 0; i < 400; i++) {
        uint8_t out[48 * 48];
        char e[256];
        int jpeg = i % 2;
        int rc = img_decode_gray_resized(jpeg ? jpg : png, jpeg ? jlen : plen, NULL, 48, 48, out,
                                         NULL, NULL, e, sizeof e);
        if (rc != IMG_OK || memcmp(out, jpeg ? ref_jpg : ref_png, sizeof out) != 0)
            bad++;
        /* Failures in parallel too: messages must not leak between threads. */
        rc = img_decode_gray_resized(jpeg ? jpg : png, (jpeg ? jlen : plen) / 2, NULL, 48, 48,
                                     out, NULL, NULL, e, sizeof e);
        if (rc != (jpeg ? IMG_E_TRUNCATED_JPEG : IMG_E_TRUNCATED_PNG) ||
            !strstr(e, jpeg ? "JPEG" : "PNG"))
            bad++;
    }
    ck_assert_int_eq(bad, 0);
    free(png);
    free(jpg);
}
END_TEST

/* ---- shared test images (optional) ------------------------------------------------------ */

static int read_whole(const char *path, uint8_t **d, size_t *len)
{
    char err[256];
    return img_read_file(path, 1u << 26, d, len, err, sizeof err);
}

START_TEST(test_pngsuite)
{
    DIR *dir = opendir(PNGSUITE_DIR);
    if (!dir) {
        printf("test_pngsuite: SKIPPED, %s not found (run from the project root with "
               "../shared/data present)\n", PNGSUITE_DIR);
        return;
    }
    int ok = 0, rejected = 0, corrupt_files = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".png") != 0)
            continue;
        char path[512], err[256];
        snprintf(path, sizeof path, "%s/%s", PNGSUITE_DIR, e->d_name);
        uint8_t *d;
        size_t len;
        ck_assert_int_eq(read_whole(path, &d, &len), IMG_OK);
        int corrupt = e->d_name[0] == 'x';
        corrupt_files += corrupt;
        uint8_t out[48 * 48];
        int rc = img_decode_gray_resized(d, len, NULL, 48, 48, out, NULL, NULL, err, sizeof err);
        if (corrupt) {
            ck_assert_msg(rc == IMG_E_CORRUPT_PNG || rc == IMG_E_TRUNCATED_PNG,
                          "%s should be rejected as corrupt, got %s (%s)", e->d_name,
                          img_strerror_code(rc), err);
            rejected++;
        } else {
            ck_assert_msg(rc == IMG_OK, "%s: %s: %s", e->d_name, img_strerror_code(rc), err);
            ok++;
        }
        free(d);
    }
    closedir(dir);
    printf("test_pngsuite: %d decoded, %d corrupt files rejected\n", ok, rejected);
    ck_assert_int_eq(rejected, corrupt_files);
    ck_assert_int_ge(ok, 150);
    ck_assert_int_ge(rejected, 14);
}
END_TEST

START_TEST(test_libjpeg_turbo_images)
{
    struct stat st;
    if (stat(LJT_DIR, &st) != 0) {
        printf("test_libjpeg_turbo_images: SKIPPED, %s not found\n", LJT_DIR);
        return;
    }
    static const char *const names[] = {"testorig.jpg", "testimgint.jpg", "testimgari.jpg"};
    uint8_t *px[3];
    for (int i = 0; i < 3; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", LJT_DIR, names[i]);
        uint8_t *d;
        size_t len;
        ck_assert_int_eq(read_whole(path, &d, &len), IMG_OK);
        int w, h;
        px[i] = decode_ok(d, len, &w, &h);
        ck_assert_int_eq(w, 227);
        ck_assert_int_eq(h, 149);
        free(d);
    }
    /* The arithmetic-coded file holds the same picture. */
    assert_close(px[2], px[1], 227 * 149, 0, "testimgari vs testimgint");
    assert_close(px[0], px[1], 227 * 149, 8, "testorig vs testimgint");
    for (int i = 0; i < 3; i++)
        free(px[i]);

    /* 12-bit JPEG: TurboJPEG 2.x cannot decode it; it must say so clearly. */
    uint8_t *d;
    size_t len;
    char err[256];
    if (read_whole(LJT_DIR "/monkey12.jpg", &d, &len) == IMG_OK) {
        uint8_t out[48 * 48];
        int rc = img_decode_gray_resized(d, len, NULL, 48, 48, out, NULL, NULL, err, sizeof err);
        ck_assert_msg(rc == IMG_OK || (rc == IMG_E_FORMAT && strstr(err, "12")), "%d %s", rc, err);
        free(d);
    }
}
END_TEST

static Suite *image_suite(void)
{
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("decode");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_strerror_codes);
    tcase_add_test(tc, test_empty_and_unknown_format);
    tcase_add_test(tc, test_png_all_types);
    tcase_add_test(tc, test_png_luma_and_alpha);
    tcase_add_test(tc, test_jpeg_gray_and_color);
    tcase_add_test(tc, test_jpeg_cmyk);
    tcase_add_test(tc, test_jpeg_scaled_decode);
    tcase_add_test(tc, test_resize_exact_values);
    tcase_add_test(tc, test_resize_matches_reference);
    tcase_add_test(tc, test_png_truncated_every_length);
    tcase_add_test(tc, test_jpeg_truncated_every_length);
    tcase_add_test(tc, test_png_corrupt);
    tcase_add_test(tc, test_jpeg_corrupt);
    tcase_add_test(tc, test_png_too_large);
    tcase_add_test(tc, test_jpeg_too_large);
    tcase_add_test(tc, test_read_file);
    tcase_add_test(tc, test_parallel_decode);
    tcase_add_test(tc, test_pngsuite);
    tcase_add_test(tc, test_libjpeg_turbo_images);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(image_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
