/* test_service_faces.c - POST /predict on photos (?faces=, ?max_faces=), the
 * face-crop answer kept for small images, start-up with and without a
 * cascade, and `emotiond predict` on a photo. The checks on real faces need
 * ../shared/data/photos-dlib and are skipped with a message without it. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common_svc.h"

#define PHOTO "../shared/data/photos-dlib/2008_001322.jpg"

static char model_path[64];
static nn_model *model;
static app *server;
static int port;

static const char *const H_PNG[] = {"Content-Type: image/png", "Expect:", NULL};
static const char *const H_JPEG[] = {"Content-Type: image/jpeg", "Expect:", NULL};

static void setup(void)
{
    model = tsv_make_model_file(11, model_path, sizeof model_path);
    svc_config c;
    tsv_test_config(&c, model_path);
    server = tsv_start(&c);
    port = app_port(server);
}

static void teardown(void)
{
    app_free(server);
    nn_model_free(model);
    unlink(model_path);
}

static uint8_t *gray_png(int w, int h, size_t *len)
{
    uint8_t *px = tsv_gradient(w, h, 1);
    uint8_t *png = tsv_png(w, h, PNG_COLOR_TYPE_GRAY, 8, px, len);
    free(px);
    return png;
}

/* POSTs and parses a 200 answer. */
static json_t *post_ok(const char *path, const char *const *h, const void *body, size_t len)
{
    tsv_resp r;
    ck_assert_int_eq(tsv_http("POST", port, path, h, body, len, &r), 0);
    ck_assert_msg(r.status == 200, "%s: %ld %s", path, r.status, r.body);
    json_t *o = json_loads(r.body, 0, NULL);
    ck_assert_msg(o != NULL, "not JSON: %s", r.body);
    tsv_resp_free(&r);
    return o;
}

static void expect_error(const char *path, const void *body, size_t len, long status,
                         const char *code)
{
    tsv_resp r;
    ck_assert_int_eq(tsv_http("POST", port, path, H_PNG, body, len, &r), 0);
    ck_assert_msg(r.status == status, "%s: %ld %s", path, r.status, r.body);
    ck_assert_msg(strstr(r.body, code) != NULL, "%s: %s", path, r.body);
    tsv_resp_free(&r);
}

/* Checks one face object and returns its box area. */
static long check_face(json_t *f, int iw, int ih)
{
    json_t *b = json_object_get(f, "box");
    ck_assert_ptr_nonnull(b);
    long x = (long)json_integer_value(json_object_get(b, "x"));
    long y = (long)json_integer_value(json_object_get(b, "y"));
    long w = (long)json_integer_value(json_object_get(b, "w"));
    long h = (long)json_integer_value(json_object_get(b, "h"));
    ck_assert(w > 0 && h > 0 && x >= 0 && y >= 0 && x + w <= iw && y + h <= ih);
    json_t *p = json_object_get(f, "probabilities");
    ck_assert_int_eq(json_object_size(p), 7);
    const char *emo = json_string_value(json_object_get(f, "emotion"));
    ck_assert_ptr_nonnull(emo);
    double conf = json_real_value(json_object_get(f, "confidence")), sum = 0, best = 0;
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v) {
        sum += json_real_value(v);
        if (json_real_value(v) > best) best = json_real_value(v);
    }
    ck_assert(fabs(sum - 1.0) < 1e-4);
    ck_assert(conf == best);
    ck_assert(json_real_value(json_object_get(p, emo)) == conf);
    return w * h;
}

START_TEST(test_small_image_is_a_crop)
{
    size_t len;
    uint8_t *png = gray_png(48, 48, &len);
    /* auto and none: the face-crop answer, unchanged */
    const char *paths[] = {"/predict", "/predict?faces=auto", "/predict?faces=none"};
    for (int i = 0; i < 3; i++) {
        json_t *o = post_ok(paths[i], H_PNG, png, len);
        ck_assert_ptr_null(json_object_get(o, "faces"));
        ck_assert_ptr_nonnull(json_object_get(o, "emotion"));
        json_decref(o);
    }
    /* detect: searched for faces even though small; a gradient has none */
    json_t *o = post_ok("/predict?faces=detect", H_PNG, png, len);
    ck_assert_int_eq(json_array_size(json_object_get(o, "faces")), 0);
    json_decref(o);
    free(png);
}
END_TEST

START_TEST(test_photo_without_face)
{
    size_t len;
    uint8_t *png = gray_png(320, 200, &len);
    json_t *o = post_ok("/predict", H_PNG, png, len);
    json_t *faces = json_object_get(o, "faces");
    ck_assert(json_is_array(faces));
    ck_assert_int_eq(json_array_size(faces), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(o, "image"), "width")), 320);
    ck_assert_ptr_nonnull(json_object_get(o, "model"));
    ck_assert_ptr_null(json_object_get(o, "emotion"));
    json_decref(o);
    /* faces=none on a photo: the old whole-image answer */
    o = post_ok("/predict?faces=none", H_PNG, png, len);
    ck_assert_ptr_null(json_object_get(o, "faces"));
    ck_assert_ptr_nonnull(json_object_get(o, "emotion"));
    json_decref(o);
    free(png);
}
END_TEST

START_TEST(test_bad_parameters)
{
    size_t len;
    uint8_t *png = gray_png(48, 48, &len);
    expect_error("/predict?faces=yes", png, len, 400, "invalid_parameter");
    expect_error("/predict?faces=", png, len, 400, "invalid_parameter");
    expect_error("/predict?max_faces=0", png, len, 400, "invalid_parameter");
    expect_error("/predict?max_faces=2x", png, len, 400, "invalid_parameter");
    expect_error("/predict?max_faces=257", png, len, 400, "invalid_parameter");
    free(png);
}
END_TEST

START_TEST(test_photo_faces)
{
    size_t len;
    uint8_t *jpg = tsv_read_file(PHOTO, &len);
    if (!jpg) {
        printf("SKIP test_photo_faces: %s not found\n", PHOTO);
        return;
    }
    json_t *o = post_ok("/predict?top=2", H_JPEG, jpg, len);
    json_t *faces = json_object_get(o, "faces");
    size_t n = json_array_size(faces);
    ck_assert_msg(n >= 2 && n <= 4, "%zu faces (3 labelled)", n);
    long prev = -1;
    for (size_t i = 0; i < n; i++) {
        json_t *f = json_array_get(faces, i);
        long area = check_face(f, 500, 375);
        if (prev >= 0) ck_assert_int_ge(prev, area); /* largest first */
        prev = area;
        ck_assert_int_eq(json_array_size(json_object_get(f, "top")), 2);
    }
    /* max_faces keeps the largest */
    json_t *one = post_ok("/predict?max_faces=1", H_JPEG, jpg, len);
    json_t *f1 = json_object_get(one, "faces");
    ck_assert_int_eq(json_array_size(f1), 1);
    ck_assert(json_equal(json_object_get(json_array_get(f1, 0), "box"),
                         json_object_get(json_array_get(faces, 0), "box")));
    ck_assert(json_equal(json_object_get(json_array_get(f1, 0), "probabilities"),
                         json_object_get(json_array_get(faces, 0), "probabilities")));
    json_decref(one);
    json_decref(o);
    free(jpg);
}
END_TEST

/* Without a cascade: auto classifies the whole image as before, detect is
 * refused; a cascade that cannot load stops start-up. */
START_TEST(test_no_cascade)
{
    svc_config c;
    tsv_test_config(&c, model_path);
    c.face_cascade[0] = '\0';
    app *a = tsv_start(&c);
    int p = app_port(a);
    size_t len;
    uint8_t *png = gray_png(320, 200, &len);
    tsv_resp r;
    ck_assert_int_eq(tsv_http("POST", p, "/predict", H_PNG, png, len, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(strstr(r.body, "\"faces\""));
    tsv_resp_free(&r);
    ck_assert_int_eq(tsv_http("POST", p, "/predict?faces=detect", H_PNG, png, len, &r), 0);
    ck_assert_int_eq(r.status, 501);
    ck_assert_ptr_nonnull(strstr(r.body, "face_detection_disabled"));
    tsv_resp_free(&r);
    app_free(a);
    free(png);

    snprintf(c.face_cascade, sizeof c.face_cascade, "/nonexistent/cascade.fdc");
    char err[1024] = "";
    a = NULL;
    ck_assert_int_eq(app_start(&c, NULL, &a, err, sizeof err), -1);
    ck_assert_ptr_null(a);
    ck_assert_msg(strstr(err, "/nonexistent/cascade.fdc") != NULL, "%s", err);
}
END_TEST

/* `emotiond predict` prints one line per face for a photo, one line for a crop. */
START_TEST(test_cli_photo)
{
    if (access(PHOTO, R_OK)) {
        printf("SKIP test_cli_photo: %s not found\n", PHOTO);
        return;
    }
    const char *build = getenv("BUILD");
    char cmd[1024], line[1024];
    snprintf(cmd, sizeof cmd, "%s/emotiond predict --model %s %s", build && *build ? build : "build",
             model_path, PHOTO);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    int faces = 0, lines = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        if (strstr(line, ": face ") && strstr(line, " at x=")) faces++;
    }
    ck_assert_int_eq(pclose(f), 0);
    ck_assert_int_ge(faces, 2);
    ck_assert_int_eq(lines, faces);
    snprintf(cmd, sizeof cmd, "%s/emotiond predict --faces none --model %s %s",
             build && *build ? build : "build", model_path, PHOTO);
    f = popen(cmd, "r");
    lines = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        ck_assert_ptr_null(strstr(line, ": face "));
    }
    ck_assert_int_eq(pclose(f), 0);
    ck_assert_int_eq(lines, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service_faces");
    TCase *tc = tcase_create("faces");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120); /* detection under the sanitizers */
    tcase_add_test(tc, test_small_image_is_a_crop);
    tcase_add_test(tc, test_photo_without_face);
    tcase_add_test(tc, test_bad_parameters);
    tcase_add_test(tc, test_photo_faces);
    tcase_add_test(tc, test_no_cascade);
    tcase_add_test(tc, test_cli_photo);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
