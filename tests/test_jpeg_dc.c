/* test_jpeg_dc.c - nn/jpeg_dc.c, the 1/8-scale JPEG decoder that reads only
 * DC coefficients: for every file it takes, its pixels are TurboJPEG's
 * (tjDecompress2 at scale 1/8, TJPF_GRAY, TJFLAG_STOPONWARNING), byte for
 * byte; it takes the common layouts (so the fast path is really used) and
 * leaves the rest, and every damaged file TurboJPEG refuses, to TurboJPEG.
 *
 * Test images are encoded here with libjpeg-turbo's libjpeg API, which (unlike
 * TurboJPEG 2.1's) can write restart markers, optimized Huffman tables (long
 * codes), arithmetic coding and custom scan layouts. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <turbojpeg.h>

#include "image.h"
#include "jpeg_dc.h"
#include "jpeg_dc_internal.h"

#define LJT_DIR "../shared/data/jpeg/libjpeg-turbo"
#define PHOTOS_DIR "../shared/data/photos-dlib"

typedef struct {
    int w, h;
    int ncomp;        /* 1 gray, 3 colour (stored YCbCr) */
    int yh, yv;       /* luma sampling factors; chroma are 1x1 */
    int ch, cv;       /* chroma sampling factors (normally 1) */
    int quality;
    int restart;      /* restart interval in MCUs, 0 for none */
    int optimize;     /* optimized Huffman tables */
    int arith;        /* arithmetic coding */
    int progressive;
    int separate;     /* one scan per component (sequential, non-interleaved) */
    unsigned seed;
} enc_spec;

static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* A picture with smooth areas, edges and noise, so that the Huffman codes
 * cover short and long lengths and DC values run the whole range. */
static uint8_t *make_pixels(const enc_spec *s)
{
    uint8_t *px = malloc((size_t)s->w * (size_t)s->h * (size_t)s->ncomp);
    ck_assert_ptr_nonnull(px);
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++)
            for (int c = 0; c < s->ncomp; c++) {
                uint32_t r = mix(s->seed * 7919u + (uint32_t)(y * s->w + x) * 3u + (uint32_t)c);
                int v = (x * 255 / (s->w > 1 ? s->w - 1 : 1) + c * 60) % 256;
                if (((x / 13) + (y / 11)) % 5 == 0)
                    v = 255 - v;            /* hard edges */
                if (y < s->h / 6)
                    v = x % 2 ? 255 : 0;    /* a band of full-range stripes */
                v += (int)(r % 41) - 20;    /* noise */
                px[((size_t)y * s->w + x) * s->ncomp + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    return px;
}

/* s encoded by libjpeg; with dc and ac (NULL for libjpeg's choice) component c
 * uses DC table dc[c] and AC table ac[c], 0..3: libjpeg's standard tables,
 * 2 and 3 copies of 0 and 1. */
static uint8_t *encode_tables(const enc_spec *s, const int *dc, const int *ac, size_t *len)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    unsigned char *out = NULL;
    unsigned long outlen = 0;
    uint8_t *px = make_pixels(s);
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &out, &outlen);
    ci.image_width = (JDIMENSION)s->w;
    ci.image_height = (JDIMENSION)s->h;
    ci.input_components = s->ncomp;
    ci.in_color_space = s->ncomp == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, s->quality, TRUE);
    if (dc && ac) {
        for (int t = 2; t < 4; t++) {
            ci.dc_huff_tbl_ptrs[t] = jpeg_alloc_huff_table((j_common_ptr)&ci);
            ci.ac_huff_tbl_ptrs[t] = jpeg_alloc_huff_table((j_common_ptr)&ci);
            *ci.dc_huff_tbl_ptrs[t] = *ci.dc_huff_tbl_ptrs[t - 2];
            *ci.ac_huff_tbl_ptrs[t] = *ci.ac_huff_tbl_ptrs[t - 2];
        }
        for (int c = 0; c < s->ncomp; c++) {
            ci.comp_info[c].dc_tbl_no = dc[c];
            ci.comp_info[c].ac_tbl_no = ac[c];
        }
    }
    if (s->ncomp == 3) {
        ci.comp_info[0].h_samp_factor = s->yh;
        ci.comp_info[0].v_samp_factor = s->yv;
        for (int c = 1; c < 3; c++) {
            ci.comp_info[c].h_samp_factor = s->ch ? s->ch : 1;
            ci.comp_info[c].v_samp_factor = s->cv ? s->cv : 1;
        }
    }
    ci.restart_interval = (unsigned)s->restart;
    ci.optimize_coding = s->optimize ? TRUE : FALSE;
    ci.arith_code = s->arith ? TRUE : FALSE;
    static jpeg_scan_info scans[3];
    if (s->progressive) {
        jpeg_simple_progression(&ci);
    } else if (s->separate && s->ncomp == 3) {
        for (int c = 0; c < 3; c++)
            scans[c] = (jpeg_scan_info){1, {c, 0, 0, 0}, 0, 63, 0, 0};
        ci.scan_info = scans;
        ci.num_scans = 3;
    }
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = px + (size_t)ci.next_scanline * s->w * s->ncomp;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(px);
    *len = outlen;
    return out;
}

static uint8_t *encode(const enc_spec *s, size_t *len)
{
    return encode_tables(s, NULL, NULL, len);
}

/* TurboJPEG's 1/8-scale gray decode into ref (sw*sh bytes); returns its rc. */
static int tj_eighth(const uint8_t *d, size_t len, uint8_t *ref, int sw, int sh)
{
    tjhandle tj = tjInitDecompress();
    ck_assert_ptr_nonnull(tj);
    int rc = tjDecompress2(tj, d, (unsigned long)len, ref, sw, 0, sh, TJPF_GRAY,
                           TJFLAG_STOPONWARNING);
    tjDestroy(tj);
    return rc;
}

/* Files the lanes (nn/jpeg_dc_lanes.c) decoded, in check_file's forced
 * runs and in its default ones. */
static int lanes_forced, lanes_default;
/* One table cache for every file the tests decode, as a service worker
 * keeps one for every upload: files with other tables (plain, optimized,
 * gray, damaged) come in turn, and each must decode as without it. */
static jpeg_dc_cache *cache;

/* Returns 1 when the fast path took the file (and then checks that TurboJPEG
 * decodes it too, to the same pixels), 0 when it left it, -1 when TurboJPEG
 * cannot read its header (the service never calls the fast path then). The
 * same for the sequential walk alone and for the lanes forced on (any scan
 * without restart markers, however small): all three agree. */
static int check_file(const uint8_t *d, size_t len, const char *what)
{
    int w = 0, h = 0, ss = 0, cs = 0; /* TurboJPEG leaves them unset on some damaged headers */
    tjhandle tj = tjInitDecompress();
    ck_assert_ptr_nonnull(tj);
    int hrc = tjDecompressHeader3(tj, d, (unsigned long)len, &w, &h, &ss, &cs);
    tjDestroy(tj);
    if (hrc != 0 || w <= 0 || h <= 0)
        return -1;
    if (cs != TJCS_GRAY && cs != TJCS_YCbCr)
        return 0; /* image.c does not offer these to the fast path */
    int sw = (w + 7) / 8, sh = (h + 7) / 8;
    uint8_t *ref = malloc((size_t)sw * sh), *got = malloc((size_t)sw * sh);
    ck_assert(ref && got);
    int took = jpeg_dc_decode(d, len, got, sw, sh);
    int rc = took ? tj_eighth(d, len, ref, sw, sh) : 0;
    ck_assert_msg(rc == 0, "%s: the fast path took a file TurboJPEG refuses", what);
    static const char *mode[] = {"sequential", "default", "lanes forced", "cached tables"};
    if (!cache)
        ck_assert_ptr_nonnull(cache = jpeg_dc_cache_new());
    for (int lanes = JPEG_DC_LANES_NEVER; lanes <= JPEG_DC_LANES_ALWAYS + 1; lanes++) {
        memset(got, 0, (size_t)sw * sh);
        int how = lanes <= JPEG_DC_LANES_ALWAYS ? jpeg_dc_decode_how(d, len, got, sw, sh, lanes)
                                                : jpeg_dc_decode_cached(cache, d, len, got, sw, sh,
                                                                        JPEG_DC_LANES_AUTO);
        ck_assert_msg((how != 0) == took, "%s: %s %s it, jpeg_dc_decode %s", what, mode[lanes],
                      how ? "took" : "left", took ? "took" : "left");
        lanes_forced += lanes == JPEG_DC_LANES_ALWAYS && how == 2;
        lanes_default += lanes == JPEG_DC_LANES_AUTO && how == 2;
        for (int i = 0; took && i < sw * sh; i++)
            ck_assert_msg(got[i] == ref[i], "%s, %s: pixel (%d, %d) is %d, TurboJPEG says %d",
                          what, mode[lanes], i % sw, i / sw, got[i], ref[i]);
    }
    free(ref);
    free(got);
    return took;
}

static void expect(const enc_spec *s, int want_taken, const char *what)
{
    size_t len;
    uint8_t *d = encode(s, &len);
    char name[160];
    snprintf(name, sizeof name, "%s (%dx%d, %d comp, Y %dx%d, q%d, restart %d%s%s)", what, s->w,
             s->h, s->ncomp, s->yh, s->yv, s->quality, s->restart, s->optimize ? ", optimized" : "",
             s->arith ? ", arithmetic" : "");
    int took = check_file(d, len, name);
    ck_assert_msg(took == want_taken, "%s: fast path %s", name,
                  took == 1 ? "took it" : took == 0 ? "left it" : "not reached (TurboJPEG refuses the header)");
    free(d);
}

/* The layouts the fast path is for, at sizes that do and do not fill their
 * MCUs: gray, 4:4:4, 4:2:2, 4:2:0, 4:4:0 and 4:1:1, plain and optimized
 * tables, with and without restart markers. */
START_TEST(test_matches_turbojpeg)
{
    static const int sizes[][2] = {{1, 1}, {7, 9}, {8, 8}, {17, 33}, {64, 48}, {385, 217}};
    static const int samp[][2] = {{1, 1}, {2, 1}, {2, 2}, {1, 2}, {4, 1}};
    static const int restarts[] = {0, 1, 3, 7};
    int n = 0;
    const int before = lanes_forced;
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
        for (int ncomp = 1; ncomp <= 3; ncomp += 2)
            for (size_t m = 0; m < (ncomp == 1 ? 1 : sizeof samp / sizeof samp[0]); m++)
                for (size_t r = 0; r < sizeof restarts / sizeof restarts[0]; r++)
                    for (int opt = 0; opt <= 1; opt++) {
                        enc_spec s = {sizes[z][0], sizes[z][1], ncomp, samp[m][0], samp[m][1],
                                      1, 1, (int)(50 + 25 * ((z + r) % 3)) /* 50, 75, 100 */,
                                      restarts[r], opt, 0, 0, 0, (unsigned)n};
                        expect(&s, 1, "common layout");
                        n++;
                    }
    ck_assert_int_gt(n, 200);
    /* the lanes, forced on, took every 385x217 file without restart
     * markers (gray and the five samplings, plain and optimized tables:
     * 12) and some smaller ones (25 in all); the smallest scans are too
     * short to cut into 64 parts */
    if (jpeg_lanes_supported())
        ck_assert_int_ge(lanes_forced - before, 20);
}
END_TEST

/* What it leaves to TurboJPEG: arithmetic coding, progressive, one scan per
 * component, and luma that is not at full resolution (it would need
 * upsampling). */
START_TEST(test_leaves_the_rest)
{
    enc_spec base = {200, 120, 3, 2, 2, 1, 1, 90, 0, 0, 0, 0, 0, 1};
    enc_spec s = base;
    s.arith = 1;
    expect(&s, 0, "arithmetic");
    s = base;
    s.progressive = 1;
    expect(&s, 0, "progressive");
    s = base;
    s.separate = 1;
    expect(&s, 0, "one scan per component");
    /* TurboJPEG cannot name this subsampling and refuses the header, so the
     * service never gets this far; the fast path must refuse it too. */
    s = base;
    s.yh = s.yv = 1;
    s.ch = s.cv = 2;
    size_t len;
    uint8_t *d = encode(&s, &len), px[25 * 15];
    ck_assert_int_eq(check_file(d, len, "chroma sampled finer than luma"), -1);
    ck_assert_int_eq(jpeg_dc_decode(d, len, px, 25, 15), 0);
    free(d);
}
END_TEST

/* Damaged files: thousands of mutants of two small photos (one with restart
 * markers). Whatever the fast path takes, TurboJPEG must take too and decode
 * to the same pixels; and through img_decode_gray_resized each mutant must
 * succeed or fail exactly as TurboJPEG alone does. Both outcomes have to
 * occur, or the test proves nothing. */
START_TEST(test_damaged_files)
{
    int taken = 0, left = 0;
    const int before = lanes_forced;
    for (int variant = 0; variant < 2; variant++) {
        enc_spec s = {400, 264, 3, 2, 2, 1, 1, 85, variant ? 2 : 0, variant, 0, 0, 0, 77};
        size_t len;
        uint8_t *orig = encode(&s, &len);
        uint8_t *d = malloc(len + 8);
        ck_assert_ptr_nonnull(d);
        for (uint32_t i = 0; i < 1500; i++) {
            uint32_t r = mix(i * 2654435761u + (uint32_t)variant);
            size_t n = len, at = 2 + mix(r) % (len - 2);
            memcpy(d, orig, len);
            switch (r % 7) {
            case 0: /* a random byte, mostly in the entropy-coded data */
            case 1:
                d[at] = (uint8_t)mix(r + 1);
                break;
            case 2: /* a byte that starts a marker */
                d[at] = 0xFF;
                break;
            case 3: { /* a marker inserted: RSTn, EOI, a stuffed zero, fill */
                static const uint8_t m[] = {0xD0, 0xD1, 0xD7, 0xD9, 0x00, 0xFF, 0xDA};
                memmove(d + at + 2, d + at, len - at);
                d[at] = 0xFF;
                d[at + 1] = m[mix(r + 2) % sizeof m];
                n = len + 2;
                break;
            }
            case 4: /* cut short */
                n = at;
                break;
            case 5: /* a byte removed */
                memmove(d + at, d + at + 1, len - at - 1);
                n = len - 1;
                break;
            default: /* a bit flipped in the headers */
                at = 2 + mix(r) % 620;
                d[at] ^= (uint8_t)(1u << (r >> 8) % 8);
                break;
            }
            char what[64];
            snprintf(what, sizeof what, "mutant %u of variant %d", i, variant);
            int took = check_file(d, n, what);
            taken += took == 1;
            left += took == 0;

            /* end to end: the service's decode agrees with TurboJPEG alone */
            int w = 0, h = 0, ss = 0, cs = 0; /* TurboJPEG leaves them unset on some damaged headers */
            tjhandle tj = tjInitDecompress();
            ck_assert_ptr_nonnull(tj);
            int hrc = tjDecompressHeader3(tj, d, (unsigned long)n, &w, &h, &ss, &cs);
            tjDestroy(tj);
            if (hrc != 0 || w != s.w || h != s.h || cs != TJCS_YCbCr)
                continue;
            uint8_t ref[50 * 33], out[48 * 32];
            char err[256];
            int tj_ok = tj_eighth(d, n, ref, 50, 33) == 0;
            int rc = img_decode_gray_resized(d, n, NULL, 48, 32, out, NULL, NULL, err, sizeof err);
            ck_assert_msg((rc == IMG_OK) == tj_ok, "%s: img_decode_gray_resized %s (%s), TurboJPEG %s",
                          what, rc == IMG_OK ? "succeeded" : "failed", err,
                          tj_ok ? "succeeds" : "fails");
            if (tj_ok) {
                uint8_t want[48 * 32];
                img_resize_area(ref, 50, 33, want, 48, 32);
                ck_assert_msg(memcmp(out, want, sizeof want) == 0, "%s: pixels differ", what);
            }
        }
        free(d);
        free(orig);
    }
    printf("damaged files: %d taken by the fast path, %d left to TurboJPEG, %d by the lanes "
           "when forced\n", taken, left, lanes_forced - before);
    ck_assert_int_gt(taken, 300);
    ck_assert_int_gt(left, 300);
    if (jpeg_lanes_supported())
        ck_assert_int_gt(lanes_forced - before, 300); /* variant 0 has no restart markers */
}
END_TEST

/* Large uploads take the fast path through the public API: a 1920x1080
 * photo-like JPEG resized to 48x48 equals TurboJPEG's 1/8 decode resized. */
/* The cache's slots for the lanes' DC tables, one per pair of DC and AC
 * table: once every table is built, a YCbCr file with pairs (0,0), (1,1),
 * (2,2) and a gray one with (3,3) fill the four slots, (0,0) first; the next
 * YCbCr file uses (0,0), which is there, and (1,2), which is not. Every
 * file, lanes forced on, decodes to TurboJPEG's pixels. (Found in review:
 * the new pair once went into the slot the file's first block had just
 * found, slot 0.) */
START_TEST(test_cache_slots)
{
    jpeg_dc_cache *c = jpeg_dc_cache_new();
    ck_assert_ptr_nonnull(c);
    static const struct {
        int ncomp, dc[3], ac[3];
    } seq[] = {{1, {3}, {3}}, {3, {0, 1, 2}, {0, 1, 2}}, {1, {3}, {3}}, {3, {0, 1, 1}, {0, 2, 2}},
               {1, {0}, {0}}, {3, {3, 2, 1}, {3, 0, 1}}, {1, {1}, {2}}};
    const int n = (int)(sizeof seq / sizeof seq[0]);
    for (int f = 0; f < 2 * n; f++) {
        const int i = f % n, ncomp = seq[i].ncomp;
        size_t len;
        const int y = ncomp == 3 ? 2 : 1; /* 4:2:0, libjpeg's own choice */
        const enc_spec sp = {256, 192, ncomp, y, y, 1, 1, 80, 0, 0, 0, 0, 0, (unsigned)i};
        uint8_t *d = encode_tables(&sp, seq[i].dc, seq[i].ac, &len);
        uint8_t ref[32 * 24], got[32 * 24];
        ck_assert_int_eq(tj_eighth(d, len, ref, 32, 24), 0);
        memset(got, 0, sizeof got);
        const int how = jpeg_dc_decode_cached(c, d, len, got, 32, 24, JPEG_DC_LANES_ALWAYS);
        ck_assert_msg(how == (jpeg_lanes_supported() ? 2 : 1), "file %d: decoded by %d", f, how);
        ck_assert_msg(!memcmp(got, ref, sizeof ref), "file %d (%d components): pixels differ from TurboJPEG's",
                      f, ncomp);
        free(d);
    }
    jpeg_dc_cache_free(c);
}
END_TEST

START_TEST(test_large_upload_path)
{
    enc_spec s = {1920, 1080, 3, 2, 2, 1, 1, 90, 0, 0, 0, 0, 0, 5};
    size_t len;
    uint8_t *d = encode(&s, &len);
    const int before = lanes_default;
    ck_assert_int_eq(check_file(d, len, "1920x1080"), 1);
    if (jpeg_lanes_supported())
        ck_assert_int_eq(lanes_default - before, 1); /* a large scan: the lanes by default */
    uint8_t *ref = malloc(240 * 135), out[48 * 48], want[48 * 48];
    ck_assert_ptr_nonnull(ref);
    ck_assert_int_eq(tj_eighth(d, len, ref, 240, 135), 0);
    img_resize_area(ref, 240, 135, want, 48, 48);
    char err[256];
    int ow = 0, oh = 0;
    ck_assert_int_eq(img_decode_gray_resized(d, len, NULL, 48, 48, out, &ow, &oh, err, sizeof err),
                     IMG_OK);
    ck_assert_int_eq(ow, 1920);
    ck_assert_int_eq(oh, 1080);
    ck_assert_mem_eq(out, want, sizeof want);
    free(ref);
    free(d);
}
END_TEST

/* Real files, when ../shared/data is here: libjpeg-turbo's test images and
 * the face-detection photos (camera JPEGs, some progressive). */
START_TEST(test_shared_files)
{
    const char *dirs[] = {LJT_DIR, PHOTOS_DIR};
    static const char *names[][16] = {
        {"testorig.jpg", "testimgint.jpg", "testimgari.jpg", NULL},
        {"2007_007763.jpg", "2008_001009.jpg", "2008_001322.jpg", "2008_002079.jpg",
         "2008_002470.jpg", "2008_002506.jpg", "2008_004176.jpg", "2008_007676.jpg",
         "2009_004587.jpg", "Tom_Cruise_avp_2014_4.jpg", "dogs.jpg", NULL}};
    int seen = 0, taken = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; names[k][i]; i++) {
            char path[256];
            snprintf(path, sizeof path, "%s/%s", dirs[k], names[k][i]);
            uint8_t *d = NULL;
            size_t len = 0;
            char err[256];
            if (img_read_file(path, 64u << 20, &d, &len, err, sizeof err) != IMG_OK)
                continue;
            seen++;
            taken += check_file(d, len, path) == 1;
            free(d);
        }
    if (!seen) {
        printf("SKIP: %s and %s absent (../shared/data)\n", LJT_DIR, PHOTOS_DIR);
        return;
    }
    ck_assert_int_gt(taken, 0);
}
END_TEST

static Suite *jpeg_dc_suite(void)
{
    Suite *s = suite_create("jpeg_dc");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_matches_turbojpeg);
    tcase_add_test(tc, test_leaves_the_rest);
    tcase_add_test(tc, test_damaged_files);
    tcase_add_test(tc, test_large_upload_path);
    tcase_add_test(tc, test_cache_slots);
    tcase_add_test(tc, test_shared_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(jpeg_dc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
