/* test_dataset.c - nn/dataset.c: the Kaggle folder layout and fer2013.csv,
 * generated in a temporary directory (no shared data needed). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include "common_imgtest.h"
#include "dataset.h"
#include "image.h"

/* Collects warnings as "path|reason" lines. */
typedef struct {
    int n;
    char log[16384];
} warnings;

static void collect(void *ctx, const char *path, const char *reason)
{
    warnings *w = ctx;
    size_t used = strlen(w->log);
    snprintf(w->log + used, sizeof w->log - used, "%s|%s\n", path, reason);
    w->n++;
}

static void mkdir_p(const char *root, const char *sub)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", root, sub);
    ck_assert_msg(mkdir(p, 0755) == 0, "mkdir %s", p);
}

static void write_at(const char *root, const char *rel, const void *d, size_t len)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    imgt_write_file(p, d, len);
}

/* A flat 48x48 gray image as PNG or JPEG (quality 100: flat blocks are exact). */
static void write_flat(const char *root, const char *rel, int value, int jpeg)
{
    uint8_t px[DS_PIXELS];
    memset(px, value, sizeof px);
    size_t len;
    uint8_t *d = jpeg ? imgt_jpeg_encode(px, DS_SIDE, DS_SIDE, TJPF_GRAY, TJSAMP_GRAY, 100, &len)
                      : imgt_png_gray8(DS_SIDE, DS_SIDE, px, &len);
    write_at(root, rel, d, len);
    free(d);
}

static void assert_flat(const ds_dataset *ds, int i, int value, int tol)
{
    const uint8_t *p = ds->pixels + (size_t)i * DS_PIXELS;
    for (int k = 0; k < DS_PIXELS; k++)
        ck_assert_msg(abs(p[k] - value) <= tol, "image %d pixel %d is %d, want %d", i, k, p[k],
                      value);
}

START_TEST(test_class_names)
{
    static const char *const want[] = {"angry", "disgust", "fear", "happy", "neutral", "sad",
                                       "surprise"};
    for (int i = 0; i < DS_NUM_CLASSES; i++) {
        ck_assert_str_eq(ds_class_names[i], want[i]);
        ck_assert_int_eq(ds_class_index(want[i]), i);
    }
    ck_assert_int_eq(ds_class_index("Happy"), 3);
    ck_assert_int_eq(ds_class_index("SURPRISE"), 6);
    ck_assert_int_eq(ds_class_index("contempt"), -1);
    ck_assert_int_eq(ds_class_index(""), -1);
    ck_assert_int_eq(ds_class_index(NULL), -1);
}
END_TEST

START_TEST(test_append_and_counts)
{
    ds_dataset ds = {0};
    uint8_t px[DS_PIXELS];
    for (int i = 0; i < 3000; i++) { /* past the first growth */
        memset(px, i & 255, sizeof px);
        ck_assert_int_eq(ds_append(&ds, px, i % DS_NUM_CLASSES), 0);
    }
    ck_assert_int_eq(ds_append(&ds, px, 7), -1);
    ck_assert_int_eq(ds_append(&ds, px, -1), -1);
    ck_assert_int_eq(ds.n, 3000);
    ck_assert_int_ge(ds.cap, 3000);
    ck_assert_int_eq(ds.pixels[(size_t)2999 * DS_PIXELS + 5], 2999 & 255);
    int counts[DS_NUM_CLASSES];
    ds_class_counts(&ds, counts);
    for (int c = 0; c < DS_NUM_CLASSES; c++)
        ck_assert_int_eq(counts[c], 3000 / 7 + (c < 3000 % 7));
    ds_free(&ds);
    ck_assert_int_eq(ds.n, 0);
    ck_assert_ptr_null(ds.pixels);
    ds_free(&ds); /* twice is fine */
}
END_TEST

/* The folder layout: sorting, labels, pixels, conversion of other sizes and
 * colours, a corrupt file, a missing class, stray files and folders. */
START_TEST(test_load_folder)
{
    char root[64], split[128];
    imgt_mkdtemp(root);
    snprintf(split, sizeof split, "%s/train", root);
    mkdir_p(root, "train");
    for (int k = 0; k < DS_NUM_CLASSES; k++) {
        if (k == 1)
            continue; /* no disgust folder at all */
        char rel[128];
        snprintf(rel, sizeof rel, "train/%s", ds_class_names[k]);
        mkdir_p(root, rel);
        snprintf(rel, sizeof rel, "train/%s/b_%d.png", ds_class_names[k], k);
        write_flat(root, rel, 10 + 30 * k, 0);
        snprintf(rel, sizeof rel, "train/%s/a_%d.jpg", ds_class_names[k], k);
        write_flat(root, rel, 5 + 30 * k, 1);
    }
    /* happy: a 96x64 colour PNG with an upper-case extension (sorts first),
     * a .jpeg, a corrupt file, and a file that is not an image. */
    uint16_t rgb[96 * 64 * 3];
    for (int i = 0; i < 96 * 64; i++) {
        rgb[3 * i] = 250;
        rgb[3 * i + 1] = 120;
        rgb[3 * i + 2] = 30;
    }
    imgt_png_spec spec = {.w = 96, .h = 64, .color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8,
                          .samples = rgb};
    uint8_t *png;
    size_t len;
    ck_assert_int_eq(imgt_png_encode(&spec, &png, &len), 0);
    write_at(root, "train/happy/C.PNG", png, len);
    free(png);
    write_flat(root, "train/happy/d.jpeg", 222, 1);
    static const char not_jpeg[] = "\xFF\xD8\xFF\xE0 this is not a JPEG";
    write_at(root, "train/happy/corrupt.jpg", not_jpeg, sizeof not_jpeg - 1);
    write_at(root, "train/happy/notes.txt", "hello", 5);
    write_at(root, "train/happy/._C.PNG", "resource fork", 13); /* hidden: not listed */
    mkdir_p(root, "train/.ipynb_checkpoints");
    write_at(root, "train/README.md", "hello", 5);
    mkdir_p(root, "train/contempt");

    ds_dataset ds;
    warnings w = {0};
    char err[512] = "";
    ck_assert_msg(ds_load_folder(&ds, split, collect, &w, err, sizeof err) == 0, "%s", err);
    /* 6 classes x 2 + C.PNG + d.jpeg */
    ck_assert_int_eq(ds.n, 14);
    ck_assert_int_eq(ds.skipped, 1);
    ck_assert_msg(strstr(w.log, "train/happy/corrupt.jpg|") != NULL, "%s", w.log);
    ck_assert_msg(strstr(w.log, "corrupt_jpeg") || strstr(w.log, "truncated_jpeg"), "%s", w.log);
    ck_assert_msg(strstr(w.log, "train/disgust|class folder missing") != NULL, "%s", w.log);
    ck_assert_msg(strstr(w.log, "train/contempt|not a class folder") != NULL, "%s", w.log);
    ck_assert_msg(strstr(w.log, "notes.txt") == NULL && strstr(w.log, "README") == NULL &&
                  strstr(w.log, "._C.PNG") == NULL && strstr(w.log, "ipynb") == NULL, "%s", w.log);
    ck_assert_int_eq(w.n, 3); /* corrupt.jpg, disgust, contempt */

    int i = 0;
    for (int k = 0; k < DS_NUM_CLASSES; k++) {
        if (k == 1)
            continue;
        if (k == 3) { /* happy: C.PNG, a_3.jpg, b_3.png, d.jpeg (strcmp order) */
            ck_assert_int_eq(ds.labels[i], 3);
            assert_flat(&ds, i++, imgt_luma(250, 120, 30), 0);
        }
        ck_assert_int_eq(ds.labels[i], k);
        assert_flat(&ds, i++, 5 + 30 * k, 1); /* a_k.jpg */
        ck_assert_int_eq(ds.labels[i], k);
        assert_flat(&ds, i++, 10 + 30 * k, 0); /* b_k.png */
        if (k == 3) {
            ck_assert_int_eq(ds.labels[i], 3);
            assert_flat(&ds, i++, 222, 1);
        }
    }
    ck_assert_int_eq(i, ds.n);
    int counts[DS_NUM_CLASSES];
    ds_class_counts(&ds, counts);
    static const int want_counts[DS_NUM_CLASSES] = {2, 0, 2, 4, 2, 2, 2};
    ck_assert_mem_eq(counts, want_counts, sizeof counts);
    ds_free(&ds);

    /* Loading again gives the same bytes (deterministic despite threads). */
    ds_dataset again;
    ck_assert_int_eq(ds_load_folder(&again, split, NULL, NULL, err, sizeof err), 0);
    ck_assert_int_eq(again.n, 14);
    ck_assert_int_eq(again.skipped, 1);
    ds_free(&again);
    imgt_rm_rf(root);
}
END_TEST

/* Many files: the parallel decode keeps list order. */
START_TEST(test_load_folder_order)
{
    char root[64], rel[128];
    imgt_mkdtemp(root);
    mkdir_p(root, "angry");
    mkdir_p(root, "sad");
    for (int i = 0; i < 300; i++) {
        snprintf(rel, sizeof rel, "%s/img%03d.png", i % 2 ? "sad" : "angry", i);
        write_flat(root, rel, i % 256, 0);
        if (i % 50 == 7) { /* a few bad files in between */
            snprintf(rel, sizeof rel, "%s/img%03d_bad.png", i % 2 ? "sad" : "angry", i);
            write_at(root, rel, "\x89PNG\r\n\x1a\nxx", 10);
        }
    }
    ds_dataset ds;
    warnings w = {0};
    char err[512];
    ck_assert_msg(ds_load_folder(&ds, root, collect, &w, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(ds.n, 300);
    ck_assert_int_eq(ds.skipped, 6);
    ck_assert_int_eq(w.n, 6 + 5); /* + 5 missing class folders */
    for (int j = 0; j < 300; j++) {
        int src = j < 150 ? 2 * j : 2 * (j - 150) + 1; /* angry: even, then sad: odd */
        ck_assert_int_eq(ds.labels[j], j < 150 ? 0 : 5);
        ck_assert_int_eq(ds.pixels[(size_t)j * DS_PIXELS + 100], src % 256);
    }
    /* Warnings come in list order too. */
    const char *a = strstr(w.log, "img007_bad.png"), *b = strstr(w.log, "img057_bad.png");
    ck_assert(a && b && strstr(w.log, "truncated_png"));
    ds_free(&ds);
    imgt_rm_rf(root);
}
END_TEST

START_TEST(test_load_folder_errors)
{
    char root[64], path[128], err[512];
    ds_dataset ds;
    imgt_mkdtemp(root);

    snprintf(path, sizeof path, "%s/nope", root);
    ck_assert_int_eq(ds_load_folder(&ds, path, NULL, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, path) && strstr(err, "No such file"), "%s", err);
    ck_assert_int_eq(ds.n, 0);
    ck_assert_ptr_null(ds.pixels);

    /* Exists but holds no class folders / no images. */
    ck_assert_int_eq(ds_load_folder(&ds, root, NULL, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no images"), "%s", err);
    mkdir_p(root, "happy");
    write_at(root, "happy/x.txt", "x", 1);
    ck_assert_int_eq(ds_load_folder(&ds, root, NULL, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no images"), "%s", err);

    /* Only unreadable images: an error too, after warning about each. */
    write_at(root, "happy/x.png", "not a png", 9);
    warnings w = {0};
    ck_assert_int_eq(ds_load_folder(&ds, root, collect, &w, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "could be decoded"), "%s", err);
    ck_assert_msg(strstr(w.log, "happy/x.png|unsupported_format"), "%s", w.log);

    /* A file where the folder should be. */
    snprintf(path, sizeof path, "%s/happy/x.txt", root);
    ck_assert_int_eq(ds_load_folder(&ds, path, NULL, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "Not a directory"), "%s", err);

    /* Class folders named in another case work; two spellings of one class do not. */
    mkdir_p(root, "Sad");
    write_flat(root, "Sad/1.png", 9, 0);
    ck_assert_msg(ds_load_folder(&ds, root, NULL, NULL, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(ds.n, 1);
    ck_assert_int_eq(ds.labels[0], 5);
    ds_free(&ds);
    mkdir_p(root, "sad");
    ck_assert_int_eq(ds_load_folder(&ds, root, NULL, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "two folders for class sad"), "%s", err);
    imgt_rm_rf(root);
}
END_TEST

/* ---- CSV -------------------------------------------------------------------------------- */

/* Appends a row "label,<pixels>,usage" where every pixel is value (or the
 * pixel list is given verbatim). */
static void csv_row(FILE *f, const char *label, int value, const char *usage, int npix,
                    const char *eol)
{
    fprintf(f, "%s,", label);
    for (int i = 0; i < npix; i++)
        fprintf(f, i ? " %d" : "%d", i == 17 && value < 0 ? 256 : (value < 0 ? 1 : value));
    fprintf(f, ",%s%s", usage, eol);
}

static void write_csv(const char *path, const char *eol)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "emotion,pixels,Usage%s", eol);
    /* fer2013 labels 0..6 (Angry Disgust Fear Happy Sad Surprise Neutral). */
    for (int fer = 0; fer < 7; fer++) {
        char l[16];
        snprintf(l, sizeof l, "%d", fer);
        csv_row(f, l, 100 + fer, "Training", DS_PIXELS, eol);   /* lines 2..8 */
    }
    csv_row(f, "3", 7, "PublicTest", DS_PIXELS, eol);           /* line 9 */
    csv_row(f, "2", 8, "Training", DS_PIXELS - 1, eol);         /* 10: one pixel short */
    csv_row(f, "2", -1, "Training", DS_PIXELS, eol);            /* 11: a 256 */
    csv_row(f, "7", 9, "Training", DS_PIXELS, eol);             /* 12: label out of range */
    csv_row(f, "x", 9, "Training", DS_PIXELS, eol);             /* 13: label not a number */
    fprintf(f, "4,1 2 3%s", eol);                               /* 14: missing Usage field */
    fprintf(f, "%s", eol);                                      /* 15: blank, ignored */
    csv_row(f, "6", 66, "PrivateTest", DS_PIXELS, eol);         /* 16 */
    csv_row(f, "4", 44, "PrivateTest", DS_PIXELS + 1, eol);     /* 17: one pixel too many */
    fclose(f);
}

static void check_csv(const char *eol)
{
    char root[64], path[128], err[512];
    imgt_mkdtemp(root);
    snprintf(path, sizeof path, "%s/fer2013.csv", root);
    write_csv(path, eol);

    ds_dataset ds;
    warnings w = {0};
    ck_assert_msg(ds_load_csv(&ds, path, "Training", collect, &w, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(ds.n, 7);
    ck_assert_int_eq(ds.skipped, 5); /* lines 10-14 */
    static const uint8_t want_labels[7] = {0, 1, 2, 3, 5, 6, 4}; /* Sad->5 Surprise->6 Neutral->4 */
    ck_assert_mem_eq(ds.labels, want_labels, 7);
    for (int i = 0; i < 7; i++)
        assert_flat(&ds, i, 100 + i, 0);
    static const char *const lines[] = {"line 10: expected 2304 pixel values, got 2303",
                                        "line 11: pixel value #18 is out of range",
                                        "line 12: emotion '7'", "line 13: emotion 'x'",
                                        "line 14: expected 3 comma-separated fields"};
    for (size_t k = 0; k < sizeof lines / sizeof lines[0]; k++)
        ck_assert_msg(strstr(w.log, lines[k]) != NULL, "missing '%s' in:\n%s", lines[k], w.log);
    ck_assert_msg(strncmp(w.log, path, strlen(path)) == 0, "%s", w.log);
    ds_free(&ds);

    /* PublicTest: one row; PrivateTest: one good, one bad; all: 9 good.
     * A row without a Usage field is reported whatever usage is asked for. */
    ck_assert_int_eq(ds_load_csv(&ds, path, "PublicTest", NULL, NULL, err, sizeof err), 0);
    ck_assert_int_eq(ds.n, 1);
    ck_assert_int_eq(ds.labels[0], 3);
    assert_flat(&ds, 0, 7, 0);
    ds_free(&ds);
    ck_assert_int_eq(ds_load_csv(&ds, path, "PrivateTest", NULL, NULL, err, sizeof err), 0);
    ck_assert_int_eq(ds.n, 1);
    ck_assert_int_eq(ds.skipped, 2); /* line 17, and line 14 whose Usage is unknown */
    ck_assert_int_eq(ds.labels[0], 4); /* fer 6 Neutral */
    ds_free(&ds);
    ck_assert_int_eq(ds_load_csv(&ds, path, NULL, NULL, NULL, err, sizeof err), 0);
    ck_assert_int_eq(ds.n, 9);
    ck_assert_int_eq(ds.skipped, 6);
    ds_free(&ds);

    /* A usage value that does not exist names the ones that do. */
    ck_assert_int_eq(ds_load_csv(&ds, path, "Train", NULL, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "Train'") && strstr(err, "Training, PublicTest"), "%s", err);
    ck_assert_int_eq(ds.n, 0);
    imgt_rm_rf(root);
}

START_TEST(test_load_csv)
{
    check_csv("\n");
}
END_TEST

START_TEST(test_load_csv_crlf)
{
    check_csv("\r\n");
}
END_TEST

START_TEST(test_load_csv_errors)
{
    char root[64], path[128], err[512];
    ds_dataset ds;
    imgt_mkdtemp(root);
    snprintf(path, sizeof path, "%s/missing.csv", root);
    ck_assert_int_eq(ds_load_csv(&ds, path, NULL, NULL, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "missing.csv") && strstr(err, "No such file"), "%s", err);

    snprintf(path, sizeof path, "%s/noheader.csv", root);
    imgt_write_file(path, "0,1 2 3,Training\n", 17);
    ck_assert_int_eq(ds_load_csv(&ds, path, NULL, NULL, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "header"), "%s", err);

    snprintf(path, sizeof path, "%s/empty.csv", root);
    imgt_write_file(path, "", 0);
    ck_assert_int_eq(ds_load_csv(&ds, path, NULL, NULL, NULL, err, sizeof err), -1);

    /* Header only: no rows. */
    snprintf(path, sizeof path, "%s/hdr.csv", root);
    imgt_write_file(path, "emotion,pixels,Usage\n", 21);
    ck_assert_int_eq(ds_load_csv(&ds, path, NULL, NULL, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no valid rows"), "%s", err);

    /* Kaggle's train.csv variant without Usage: fine unless a usage is asked for. */
    snprintf(path, sizeof path, "%s/train.csv", root);
    FILE *f = fopen(path, "w");
    fprintf(f, "emotion,pixels\n");
    fprintf(f, "5,");
    for (int i = 0; i < DS_PIXELS; i++)
        fprintf(f, i ? " %d" : "%d", i % 256);
    fprintf(f, "\n");
    fclose(f);
    ck_assert_msg(ds_load_csv(&ds, path, NULL, NULL, NULL, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(ds.n, 1);
    ck_assert_int_eq(ds.labels[0], 6); /* fer 5 Surprise */
    ck_assert_int_eq(ds.pixels[300], 300 % 256);
    ds_free(&ds);
    ck_assert_int_eq(ds_load_csv(&ds, path, "Training", NULL, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no Usage column"), "%s", err);
    imgt_rm_rf(root);
}
END_TEST

static Suite *dataset_suite(void)
{
    Suite *s = suite_create("dataset");
    TCase *tc = tcase_create("dataset");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_class_names);
    tcase_add_test(tc, test_append_and_counts);
    tcase_add_test(tc, test_load_folder);
    tcase_add_test(tc, test_load_folder_order);
    tcase_add_test(tc, test_load_folder_errors);
    tcase_add_test(tc, test_load_csv);
    tcase_add_test(tc, test_load_csv_crlf);
    tcase_add_test(tc, test_load_csv_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dataset_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
