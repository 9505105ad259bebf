/* test_preprocess.c - what the service feeds the model: any size and color
 * type of PNG/JPEG becomes a 48x48 grayscale face by area averaging. */
#include <check.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "common_svc.h"
#include "image.h"

static void decode48(const uint8_t *img, size_t len, uint8_t *out, int *w, int *h)
{
    char err[256] = "";
    int rc = img_decode_gray_resized(img, len, NULL, 48, 48, out, w, h, err, sizeof err);
    ck_assert_msg(rc == IMG_OK, "decode: %d %s", rc, err);
}

static void assert_uniform(const uint8_t *px, int v, int tol)
{
    for (int i = 0; i < 48 * 48; i++)
        ck_assert_msg(abs(px[i] - v) <= tol, "pixel %d is %d, expected %d", i, px[i], v);
}

/* Odd sizes, up and down: a flat image stays flat, a left-to-right ramp stays
 * a ramp, and the reported size is the source's. */
START_TEST(test_odd_sizes)
{
    static const int sizes[][2] = {{1, 1}, {3, 7}, {47, 49}, {48, 48}, {97, 31}, {333, 211}, {2000, 3}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        uint8_t *flat = malloc((size_t)w * h);
        memset(flat, 77, (size_t)w * h);
        size_t len;
        uint8_t *png = tsv_png(w, h, PNG_COLOR_TYPE_GRAY, 8, flat, &len);
        uint8_t out[48 * 48];
        int ow, oh;
        decode48(png, len, out, &ow, &oh);
        ck_assert_int_eq(ow, w);
        ck_assert_int_eq(oh, h);
        assert_uniform(out, 77, 0);
        free(png);

        if (w >= 2) {
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) flat[(size_t)y * w + x] = (uint8_t)(x * 255 / (w - 1));
            png = tsv_png(w, h, PNG_COLOR_TYPE_GRAY, 8, flat, &len);
            decode48(png, len, out, NULL, NULL);
            for (int y = 0; y < 48; y++)
                for (int x = 1; x < 48; x++)
                    ck_assert_msg(out[y * 48 + x] >= out[y * 48 + x - 1], "%dx%d not monotonic", w, h);
            ck_assert_int_lt(out[0], out[47]);
            free(png);
        }
        free(flat);
    }
}
END_TEST

/* Every color type and bit depth of one flat grey gives that grey. */
START_TEST(test_color_types)
{
    int w = 50, h = 40;
    uint8_t *buf = malloc((size_t)w * h * 8);
    uint8_t out[48 * 48];
    size_t len;
    uint8_t *png;

    memset(buf, 200, (size_t)w * h * 3); /* RGB, grey 200 */
    png = tsv_png(w, h, PNG_COLOR_TYPE_RGB, 8, buf, &len);
    decode48(png, len, out, NULL, NULL);
    assert_uniform(out, 200, 1);
    free(png);

    for (int i = 0; i < w * h; i++) { /* RGBA, opaque */
        buf[i * 4] = buf[i * 4 + 1] = buf[i * 4 + 2] = 90;
        buf[i * 4 + 3] = 255;
    }
    png = tsv_png(w, h, PNG_COLOR_TYPE_RGBA, 8, buf, &len);
    decode48(png, len, out, NULL, NULL);
    assert_uniform(out, 90, 1);
    free(png);

    for (int i = 0; i < w * h; i++) { /* grey + alpha, opaque */
        buf[i * 2] = 33;
        buf[i * 2 + 1] = 255;
    }
    png = tsv_png(w, h, PNG_COLOR_TYPE_GRAY_ALPHA, 8, buf, &len);
    decode48(png, len, out, NULL, NULL);
    assert_uniform(out, 33, 1);
    free(png);

    for (int i = 0; i < w * h; i++) { /* 16-bit grey 0xA0A0 */
        buf[i * 2] = 0xA0;
        buf[i * 2 + 1] = 0xA0;
    }
    png = tsv_png(w, h, PNG_COLOR_TYPE_GRAY, 16, buf, &len);
    decode48(png, len, out, NULL, NULL);
    assert_uniform(out, 0xA0, 1);
    free(png);

    for (int i = 0; i < w * h * 3; i++) buf[i * 2] = buf[i * 2 + 1] = 0x40; /* 16-bit RGB */
    png = tsv_png(w, h, PNG_COLOR_TYPE_RGB, 16, buf, &len);
    decode48(png, len, out, NULL, NULL);
    assert_uniform(out, 0x40, 1);
    free(png);

    /* Palette (8-bit and 2-bit) with a grey ramp: index i is grey i*255/(n-1). */
    memset(buf, 51, (size_t)w * h);
    png = tsv_png(w, h, PNG_COLOR_TYPE_PALETTE, 8, buf, &len);
    decode48(png, len, out, NULL, NULL);
    assert_uniform(out, 51, 1);
    free(png);
    memset(buf, 2, (size_t)w * h);
    png = tsv_png(w, h, PNG_COLOR_TYPE_PALETTE, 2, buf, &len);
    decode48(png, len, out, NULL, NULL);
    assert_uniform(out, 170, 1);
    free(png);

    /* 1-bit grey: all ones is white. */
    memset(buf, 1, (size_t)w * h);
    png = tsv_png(w, h, PNG_COLOR_TYPE_GRAY, 1, buf, &len);
    decode48(png, len, out, NULL, NULL);
    assert_uniform(out, 255, 0);
    free(png);

    /* JPEG, grey and color. */
    memset(buf, 128, (size_t)w * h * 3);
    uint8_t *jpg = tsv_jpeg(w, h, 3, buf, &len);
    decode48(jpg, len, out, NULL, NULL);
    assert_uniform(out, 128, 2);
    free(jpg);
    jpg = tsv_jpeg(w, h, 1, buf, &len);
    decode48(jpg, len, out, NULL, NULL);
    assert_uniform(out, 128, 2);
    free(jpg);
    free(buf);
}
END_TEST

/* Limits are enforced from the header, and the error codes are the API's. */
START_TEST(test_limits_and_codes)
{
    uint8_t row[5000] = {0};
    size_t len;
    uint8_t *png = tsv_png(5000, 1, PNG_COLOR_TYPE_GRAY, 8, row, &len);
    img_limits lim;
    img_limits_default(&lim);
    uint8_t out[48 * 48];
    char err[256];
    ck_assert_int_eq(img_decode_gray_resized(png, len, &lim, 48, 48, out, NULL, NULL, err, sizeof err),
                     IMG_E_TOO_LARGE);
    lim.max_width = 5000;
    ck_assert_int_eq(img_decode_gray_resized(png, len, &lim, 48, 48, out, NULL, NULL, err, sizeof err),
                     IMG_OK);
    lim.max_pixels = 4999;
    ck_assert_int_eq(img_decode_gray_resized(png, len, &lim, 48, 48, out, NULL, NULL, err, sizeof err),
                     IMG_E_TOO_LARGE);
    free(png);
    ck_assert_str_eq(img_strerror_code(IMG_E_TOO_LARGE), "image_too_large");
    ck_assert_str_eq(img_strerror_code(IMG_E_CORRUPT_PNG), "corrupt_png");
    ck_assert_str_eq(img_strerror_code(IMG_E_TRUNCATED_JPEG), "truncated_jpeg");
    ck_assert_str_eq(img_strerror_code(IMG_E_FORMAT), "unsupported_format");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("preprocess");
    TCase *tc = tcase_create("preprocess");
    tcase_add_test(tc, test_odd_sizes);
    tcase_add_test(tc, test_color_types);
    tcase_add_test(tc, test_limits_and_codes);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
