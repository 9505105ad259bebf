/* test_face_detect.c - the Viola-Jones face detector (nn/face_detect.h):
 * compact cascade file and its checks, the OpenCV XML reader, grouping,
 * cropping, and detection accuracy on dlib's labelled photos.
 *
 * Accuracy bar (../shared/data/photos-dlib, 43 labelled faces in 9 photos,
 * IoU >= 0.5, default parameters): recall >= 0.80, precision >= 0.75, at
 * most 2 detections on dogs.jpg. Measured when written: recall 0.860 (37/43),
 * precision 0.822 (37/45), 1 detection on dogs.jpg. Skipped with a message
 * when ../shared/data is absent; the XML comparison likewise when Debian's
 * opencv-data is not installed. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "face_detect.h"
#include "face_eval.h"
#include "face_internal.h"
#include "image.h"

#define CASCADE "models/haarcascade_frontalface_default.fdc"
#define OPENCV_XML "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"
#define DLIB_DIR "../shared/data/photos-dlib"

static uint8_t *slurp(const char *path, size_t *len)
{
    uint8_t *d = NULL;
    char err[256];
    if (img_read_file(path, 64u << 20, &d, len, err, sizeof err)) return NULL;
    return d;
}

static fd_cascade *load_default(void)
{
    fd_cascade *c = NULL;
    char err[512] = "";
    ck_assert_msg(fd_cascade_load(CASCADE, &c, err, sizeof err) == 0, "%s", err);
    return c;
}

START_TEST(test_load_compact)
{
    fd_cascade *c = load_default();
    ck_assert_int_eq(fd_cascade_window(c), 24);
    ck_assert_int_eq(fd_cascade_num_stages(c), 25);
    ck_assert_int_eq(fd_cascade_num_weak(c), 2913);
    fd_cascade_free(c);
}
END_TEST

/* Every damaged variant of the file is refused with a message, none crashes. */
START_TEST(test_corrupt_compact)
{
    size_t len = 0;
    uint8_t *good = slurp(CASCADE, &len);
    ck_assert_ptr_nonnull(good);
    uint8_t *bad = malloc(len + 16);
    fd_cascade *c = NULL;
    char err[512];
    /* truncations */
    for (size_t n = 0; n < len; n += n < 64 ? 1 : 997) {
        err[0] = '\0';
        ck_assert_int_eq(fd_cascade_load_mem(good, n, &c, err, sizeof err), -1);
        ck_assert_ptr_null(c);
        ck_assert(err[0]);
    }
    /* trailing bytes */
    memcpy(bad, good, len);
    memset(bad + len, 0, 16);
    ck_assert_int_eq(fd_cascade_load_mem(bad, len + 4, &c, err, sizeof err), -1);
    /* single bit flips: the CRC (or a range check) catches every one */
    for (size_t at = 4; at < len; at += 1009) {
        memcpy(bad, good, len);
        bad[at] ^= 0x10;
        ck_assert_msg(fd_cascade_load_mem(bad, len, &c, err, sizeof err) == -1, "flip at %zu", at);
    }
    /* a future version */
    memcpy(bad, good, len);
    bad[4] = 2;
    ck_assert_int_eq(fd_cascade_load_mem(bad, len, &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "version") != NULL, "%s", err);
    /* not a cascade at all */
    ck_assert_int_eq(fd_cascade_load_mem("hello", 5, &c, err, sizeof err), -1);
    ck_assert_int_eq(fd_cascade_load("/nonexistent/x.fdc", &c, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "/nonexistent/x.fdc") != NULL, "%s", err);
    free(bad);
    free(good);
}
END_TEST

/* A one-stage cascade in OpenCV's XML layout. */
static const char tiny_xml[] =
    "<?xml version=\"1.0\"?>\n<!-- comment -->\n<opencv_storage>\n"
    "<cascade type_id=\"opencv-cascade-classifier\"><stageType>BOOST</stageType>\n"
    "  <featureType>HAAR</featureType>\n  <height>24</height>\n  <width>24</width>\n"
    "  <stageNum>1</stageNum>\n  <stages>\n    <_>\n      <maxWeakCount>1</maxWeakCount>\n"
    "      <stageThreshold>-1.5e+00</stageThreshold>\n      <weakClassifiers>\n        <_>\n"
    "          <internalNodes>\n            0 -1 0 -3.1511999666690826e-02</internalNodes>\n"
    "          <leafValues>\n            2.0 -2.25</leafValues></_></weakClassifiers></_></stages>\n"
    "  <features>\n    <_>\n      <rects>\n        <_>\n          6 4 12 9 -1.</_>\n"
    "        <_>\n          6 7 12 3 3.</_></rects></_></features></cascade>\n</opencv_storage>\n";

START_TEST(test_xml_reader)
{
    fd_cascade *c = NULL, *d = NULL;
    char err[512] = "";
    ck_assert_msg(fd_cascade_from_xml(tiny_xml, strlen(tiny_xml), &c, err, sizeof err) == 0, "%s",
                  err);
    ck_assert_int_eq(c->n_stages, 1);
    ck_assert_int_eq(c->n_weak, 1);
    ck_assert_int_eq(c->n_features, 1);
    ck_assert(c->stages[0].threshold == -1.5f);
    ck_assert(c->weak[0].threshold == (float)-3.1511999666690826e-02);
    ck_assert(c->weak[0].left == 2.0f && c->weak[0].right == -2.25f);
    ck_assert_int_eq(c->features[0].nrects, 2);
    ck_assert_int_eq(c->features[0].r[1].y, 7);
    ck_assert(c->features[0].r[1].weight == 3.0f);
    /* save and load back: the same cascade */
    char path[] = "/tmp/test_face_cascade_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_msg(fd_cascade_save(c, path, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(fd_cascade_load(path, &d, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(d->n_weak, 1);
    ck_assert(d->weak[0].threshold == c->weak[0].threshold);
    ck_assert(memcmp(&d->features[0].r[0], &c->features[0].r[0], sizeof(fd_rect)) == 0);
    unlink(path);
    fd_cascade_free(c);
    fd_cascade_free(d);
}
END_TEST

/* Replaces the first occurrence of from by to in tiny_xml. */
static char *variant(const char *from, const char *to)
{
    const char *at = strstr(tiny_xml, from);
    ck_assert_ptr_nonnull(at);
    size_t n = strlen(tiny_xml) + strlen(to) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s%s", (int)(at - tiny_xml), tiny_xml, to, at + strlen(from));
    return s;
}

START_TEST(test_xml_refused)
{
    static const struct {
        const char *from, *to, *needle;
    } cases[] = {
        {"0 -1 0 -3.15", "1 2 0 -3.15", "stump"},          /* a tree node */
        {"<featureType>HAAR", "<featureType>LBP", "HAAR"},
        {"<stageType>BOOST", "<stageType>GAB", "BOOST"},
        {"6 7 12 3 3.", "6 7 19 3 3.", "outside"},         /* rectangle beyond the window */
        {"6 7 12 3 3.</_></rects>", "6 7 12 3 3.</_></rects><tilted>1</tilted>", "tilted"},
        {"0 -1 0 -3.15", "0 -1 5 -3.15", "malformed"},     /* feature index out of range */
        {"<stageThreshold>-1.5e+00</stageThreshold>", "", "threshold"},
        {"</cascade>", "</cascadx>", "mismatched"},
        {"<stageNum>1", "<stageNum>2", "stageNum"},
        {"2.0 -2.25", "2.0 nope", "leaf"},
        {"<cascade type_id", "<haarcascade type_id", "not supported"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *x = variant(cases[i].from, cases[i].to);
        fd_cascade *c = NULL;
        char err[512] = "";
        ck_assert_msg(fd_cascade_from_xml(x, strlen(x), &c, err, sizeof err) == -1, "case %zu", i);
        ck_assert_ptr_null(c);
        ck_assert_msg(strstr(err, cases[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i, err,
                      cases[i].needle);
        free(x);
    }
    /* every truncation of the text fails cleanly */
    for (size_t n = 0; n < strlen(tiny_xml); n += 7) {
        fd_cascade *c = NULL;
        char err[256];
        ck_assert_int_eq(fd_cascade_from_xml(tiny_xml, n, &c, err, sizeof err), -1);
    }
}
END_TEST

/* The committed compact file is exactly what the converter makes from
 * opencv-data's XML: the conversion is reproducible and nothing was lost. */
START_TEST(test_xml_matches_committed)
{
    if (access(OPENCV_XML, R_OK)) {
        printf("SKIP test_xml_matches_committed: %s not found (apt-get install opencv-data)\n",
               OPENCV_XML);
        return;
    }
    fd_cascade *c = NULL;
    char err[512] = "";
    ck_assert_msg(fd_cascade_load(OPENCV_XML, &c, err, sizeof err) == 0, "%s", err);
    char path[] = "/tmp/test_face_conv_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    ck_assert_msg(fd_cascade_save(c, path, err, sizeof err) == 0, "%s", err);
    size_t a = 0, b = 0;
    uint8_t *x = slurp(path, &a), *y = slurp(CASCADE, &b);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(a, b);
    ck_assert_int_eq(memcmp(x, y, a), 0);
    free(x);
    free(y);
    unlink(path);
    fd_cascade_free(c);
}
END_TEST

START_TEST(test_grouping)
{
    fd_box b[16];
    int n = 0;
    /* five near-identical hits: one face, their mean */
    for (int i = 0; i < 5; i++) b[n++] = (fd_box){100 + i, 50, 40, 40, 1};
    /* three hits elsewhere: not more than min_neighbors 3, dropped */
    for (int i = 0; i < 3; i++) b[n++] = (fd_box){300, 300 + i, 30, 30, 1};
    /* a small strong-enough cluster inside a much stronger big one: dropped */
    for (int i = 0; i < 4; i++) b[n++] = (fd_box){505, 505, 20, 20, 1};
    for (int i = 0; i < 4; i++) b[n++] = (fd_box){500, 500 + (i & 1), 100, 100, 1};
    /* that big cluster has only 4 hits, not more than max(3, 4): the small
     * one stays too */
    ck_assert_int_eq(fd_group_boxes(b, &n, 3, 0.2), 0);
    ck_assert_int_eq(n, 3);
    fd_sort_boxes(b, n);
    ck_assert_int_eq(b[0].w, 100);
    ck_assert_int_eq(b[1].x, 102); /* mean of 100..104 */
    ck_assert_int_eq(b[1].neighbors, 5);
    ck_assert_int_eq(b[2].w, 20);
    /* with a stronger big box the small one inside it goes */
    n = 0;
    for (int i = 0; i < 4; i++) b[n++] = (fd_box){505, 505, 20, 20, 1};
    for (int i = 0; i < 6; i++) b[n++] = (fd_box){500, 500, 100, 100, 1};
    ck_assert_int_eq(fd_group_boxes(b, &n, 3, 0.2), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(b[0].w, 100);
    ck_assert_int_eq(b[0].neighbors, 6);
}
END_TEST

START_TEST(test_iou)
{
    fd_box a = {0, 0, 10, 10, 0}, b = {5, 0, 10, 10, 0}, c = {20, 20, 5, 5, 0}, z = {0, 0, 0, 5, 0};
    ck_assert(fd_iou(&a, &a) == 1.0);
    ck_assert(fabs(fd_iou(&a, &b) - 50.0 / 150.0) < 1e-12);
    ck_assert(fd_iou(&a, &c) == 0.0);
    ck_assert(fd_iou(&a, &z) == 0.0);
    fd_box truth[2] = {{0, 0, 10, 10, 0}, {100, 100, 10, 10, 0}};
    fd_box det[3] = {{1, 1, 10, 10, 0}, {0, 0, 10, 10, 0}, {50, 50, 10, 10, 0}};
    ck_assert_int_eq(fd_match(det, 3, truth, 2, 0.5), 1); /* one label, matched once */
}
END_TEST

/* No faces in flat, noisy or tiny images, and no failure either. */
START_TEST(test_no_faces)
{
    fd_cascade *c = load_default();
    fd_box *b = NULL;
    int n = -1;
    char err[256];
    uint8_t *img = malloc(320 * 240);
    memset(img, 128, 320 * 240);
    ck_assert_int_eq(fd_detect(c, NULL, img, 320, 240, &b, &n, err, sizeof err), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_ptr_null(b);
    unsigned s = 1;
    for (int i = 0; i < 320 * 240; i++) img[i] = (uint8_t)((s = s * 1103515245u + 12345u) >> 24);
    ck_assert_int_eq(fd_detect(c, NULL, img, 320, 240, &b, &n, err, sizeof err), 0);
    ck_assert_int_eq(n, 0);
    for (int side = 1; side < 30; side += 7) {
        ck_assert_int_eq(fd_detect(c, NULL, img, side, side, &b, &n, err, sizeof err), 0);
        ck_assert_int_eq(n, 0);
    }
    /* bad arguments are errors, not crashes */
    fd_params p;
    fd_params_default(&p);
    p.scale_step = 1.0;
    ck_assert_int_eq(fd_detect(c, &p, img, 320, 240, &b, &n, err, sizeof err), -1);
    ck_assert_int_eq(fd_detect(c, NULL, img, 0, 240, &b, &n, err, sizeof err), -1);
    ck_assert_int_eq(fd_detect(c, NULL, NULL, 10, 10, &b, &n, err, sizeof err), -1);
    free(img);
    fd_cascade_free(c);
}
END_TEST

START_TEST(test_crop)
{
    enum { W = 60, H = 40 };
    uint8_t img[W * H], out[48 * 48];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) img[y * W + x] = (uint8_t)(x * 4);
    /* a box in the corner: the crop leaves the image and repeats the edge */
    fd_box b = {0, 0, 20, 20, 0};
    ck_assert_int_eq(fd_crop_face(img, W, H, &b, 0.5, out, 48), 0);
    ck_assert_int_eq(out[0], 0);  /* left of the image: column 0 repeated */
    ck_assert_int_eq(out[47], img[29]); /* right edge of a 40-wide square from x=-10 */
    /* no margin, box = whole height: a plain resize of the square */
    fd_box all = {10, 0, 40, 40, 0};
    ck_assert_int_eq(fd_crop_face(img, W, H, &all, 0.0, out, 48), 0);
    uint8_t sq[40 * 40], ref[48 * 48];
    for (int y = 0; y < 40; y++) memcpy(sq + y * 40, img + y * W + 10, 40);
    img_resize_area(sq, 40, 40, ref, 48, 48);
    ck_assert_int_eq(memcmp(out, ref, sizeof ref), 0);
    /* bad boxes and margins */
    fd_box empty = {0, 0, 0, 10, 0}, huge = {0, 0, 100000, 100000, 0};
    ck_assert_int_eq(fd_crop_face(img, W, H, &empty, 0.1, out, 48), -1);
    ck_assert_int_eq(fd_crop_face(img, W, H, &huge, 0.1, out, 48), -1);
    ck_assert_int_eq(fd_crop_face(img, W, H, &b, -1.0, out, 48), -1);
}
END_TEST

START_TEST(test_dlib_accuracy)
{
    if (access(DLIB_DIR "/testing.xml", R_OK)) {
        printf("SKIP test_dlib_accuracy: %s not found\n", DLIB_DIR);
        return;
    }
    fd_cascade *c = load_default();
    fd_params p;
    fd_params_default(&p);
    fd_eval ev;
    char err[512] = "";
    ck_assert_msg(fd_eval_dlib(c, &p, DLIB_DIR, 0.5, &ev, err, sizeof err) == 0, "%s", err);
    printf("face detection on photos-dlib: %d/%d faces found (recall %.3f), %d/%d detections "
           "right (precision %.3f), %d on dogs.jpg, %.2f s\n",
           ev.true_positives, ev.truths, ev.recall, ev.true_positives, ev.detections,
           ev.precision, ev.dogs_detections, ev.seconds);
    ck_assert_int_eq(ev.truths, 43);
    ck_assert_msg(ev.recall >= 0.80, "recall %.3f < 0.80", ev.recall);
    ck_assert_msg(ev.precision >= 0.75, "precision %.3f < 0.75", ev.precision);
    ck_assert_msg(ev.dogs_detections <= 2, "%d detections on dogs.jpg", ev.dogs_detections);
    fd_cascade_free(c);
}
END_TEST

/* Larger photos: downscaling before the scan still finds the faces, and
 * boxes come back in the caller's pixels, largest first. */
START_TEST(test_photo_downscaled)
{
    size_t len = 0;
    uint8_t *data = slurp(DLIB_DIR "/2008_001322.jpg", &len);
    if (!data) {
        printf("SKIP test_photo_downscaled: %s not found\n", DLIB_DIR);
        return;
    }
    fd_cascade *c = load_default();
    img_limits lim;
    img_limits_default(&lim);
    uint8_t *px = NULL;
    int w, h;
    char err[256];
    ck_assert_int_eq(img_decode_gray(data, len, &lim, &px, &w, &h, err, sizeof err), 0);
    /* the photo at twice its size, scanned at 500 px: same faces, twice as big */
    uint8_t *big = malloc((size_t)w * h * 4);
    img_resize_area(px, w, h, big, 2 * w, 2 * h);
    fd_params p;
    fd_params_default(&p);
    p.max_scan_side = w;
    fd_box *b1 = NULL, *b2 = NULL;
    int n1 = 0, n2 = 0;
    ck_assert_int_eq(fd_detect(c, &p, px, w, h, &b1, &n1, err, sizeof err), 0);
    ck_assert_int_eq(fd_detect(c, &p, big, 2 * w, 2 * h, &b2, &n2, err, sizeof err), 0);
    ck_assert_int_ge(n1, 2);
    ck_assert_int_ge(n2, 2);
    for (int i = 1; i < n2; i++) ck_assert_int_ge(b2[i - 1].w * b2[i - 1].h, b2[i].w * b2[i].h);
    fd_box half = {b2[0].x / 2, b2[0].y / 2, b2[0].w / 2, b2[0].h / 2, 0};
    ck_assert_msg(fd_iou(&half, &b1[0]) > 0.7, "largest face moved: %d,%d,%d vs %d,%d,%d",
                  half.x, half.y, half.w, b1[0].x, b1[0].y, b1[0].w);
    free(b1);
    free(b2);
    free(big);
    free(px);
    free(data);
    fd_cascade_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("face_detect");
    TCase *tc = tcase_create("face_detect");
    tcase_add_test(tc, test_load_compact);
    tcase_add_test(tc, test_corrupt_compact);
    tcase_add_test(tc, test_xml_reader);
    tcase_add_test(tc, test_xml_refused);
    tcase_add_test(tc, test_xml_matches_committed);
    tcase_add_test(tc, test_grouping);
    tcase_add_test(tc, test_iou);
    tcase_add_test(tc, test_no_faces);
    tcase_add_test(tc, test_crop);
    suite_add_tcase(s, tc);
    /* Real photos: a few seconds at -O3, longer under the sanitizers. */
    TCase *data = tcase_create("photos");
    tcase_set_timeout(data, 300);
    tcase_add_test(data, test_dlib_accuracy);
    tcase_add_test(data, test_photo_downscaled);
    suite_add_tcase(s, data);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
