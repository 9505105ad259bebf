/* slow_fer2013.c - dataset-heavy checks (make test-data): the full FER2013
 * archive loads with the published counts, the shipped default model beats
 * the seed notebook on the PublicTest half (and loses at most half a point in
 * FP16 where the CPU runs it), and the 1/8-scale DC decoder (nn/jpeg_dc.c)
 * takes every one of the 32,298 JPEGs and gives TurboJPEG's pixels. Skips,
 * saying why, when ../shared/data is absent. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include "dataset.h"
#include "image.h"
#include "jpeg_dc.h"
#include "nn.h"
#include "train.h"

#define ARCHIVE "../shared/data/fer2013-train-publictest.tar.gz"
#define ROOT ".cache/fer2013"

static int have_data(void)
{
    struct stat st;
    if (stat(ROOT "/train", &st) == 0) return 1;
    if (stat(ARCHIVE, &st) != 0) return 0;
    /* unpack once into the git-ignored cache */
    return system("mkdir -p .cache && tar xzf " ARCHIVE " -C .cache") == 0;
}

START_TEST(test_counts)
{
    if (!have_data()) { printf("SKIP: %s absent\n", ARCHIVE); return; }
    static const int train[7] = {3995, 436, 4097, 7215, 4965, 4830, 3171};
    static const int test[7] = {467, 56, 496, 895, 607, 653, 415};
    ds_dataset ds = {0};
    char err[512];
    int counts[7];
    ck_assert_msg(ds_load_folder(&ds, ROOT "/train", NULL, NULL, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(ds.n, 28709);
    ds_class_counts(&ds, counts);
    for (int k = 0; k < 7; k++) ck_assert_int_eq(counts[k], train[k]);
    ds_free(&ds);
    ck_assert_msg(ds_load_folder(&ds, ROOT "/test", NULL, NULL, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(ds.n, 3589);
    ds_class_counts(&ds, counts);
    for (int k = 0; k < 7; k++) ck_assert_int_eq(counts[k], test[k]);
    ds_free(&ds);
}
END_TEST

START_TEST(test_default_model_accuracy)
{
    if (!have_data()) { printf("SKIP: %s absent\n", ARCHIVE); return; }
    ds_dataset ds = {0};
    char err[512];
    nn_model *m = NULL;
    int conf[49];
    ck_assert_msg(nn_model_load("models/default.emod", &m, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(ds_load_folder(&ds, ROOT "/test", NULL, NULL, err, sizeof err) == 0, "%s", err);
    ck_assert(nn_evaluate(m, ds.pixels, ds.labels, ds.n, NN_TTA_NONE, 2, conf, NULL, err, sizeof err) == 0);
    double acc = nn_confusion_accuracy(conf, 7);
    printf("default model, PublicTest: %.2f%%\n", 100 * acc);
    ck_assert_msg(acc >= 0.65, "PublicTest accuracy %.4f is below 0.65", acc);
    ds_free(&ds);
    nn_model_free(m);
}
END_TEST

START_TEST(test_fp16_accuracy)
{
    if (!have_data()) { printf("SKIP: %s absent\n", ARCHIVE); return; }
    if (!nn_precision_supported(NN_PRECISION_FP16)) {
        printf("SKIP: this CPU lacks AVX2, FMA or F16C\n");
        return;
    }
    ds_dataset ds = {0};
    char err[512];
    nn_model *m = NULL;
    int conf[49];
    double acc[2];
    ck_assert_msg(nn_model_load("models/default.emod", &m, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(ds_load_folder(&ds, ROOT "/test", NULL, NULL, err, sizeof err) == 0, "%s", err);
    for (int p = 0; p < 2; p++) {
        nn_model_set_precision(m, p ? NN_PRECISION_FP16 : NN_PRECISION_FP32);
        ck_assert(nn_evaluate(m, ds.pixels, ds.labels, ds.n, NN_TTA_NONE, 2, conf, NULL, err,
                              sizeof err) == 0);
        acc[p] = nn_confusion_accuracy(conf, 7);
    }
    printf("default model, PublicTest: fp32 %.2f%%, fp16 %.2f%%\n", 100 * acc[0], 100 * acc[1]);
    ck_assert_msg(acc[1] >= acc[0] - 0.005, "fp16 loses %.2f points", 100 * (acc[0] - acc[1]));
    ds_free(&ds);
    nn_model_free(m);
}
END_TEST

/* Every JPEG of one split: jpeg_dc_decode at 1/8 against tjDecompress2 at 1/8
 * (FER2013's files are 48x48 baseline gray: 6x6 pixels each), by default and
 * with the lanes forced on. */
static void dc_check_dir(const char *split, int *files, int *taken, int *lanes)
{
    tjhandle tj = tjInitDecompress();
    ck_assert_ptr_nonnull(tj);
    for (int c = 0; c < DS_NUM_CLASSES; c++) {
        char dir[256];
        snprintf(dir, sizeof dir, "%s/%s/%s", ROOT, split, ds_class_names[c]);
        DIR *d = opendir(dir);
        ck_assert_msg(d != NULL, "cannot open %s", dir);
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strstr(e->d_name, ".jpg")) continue;
            char path[512], err[256];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            uint8_t *data = NULL;
            size_t len = 0;
            ck_assert_msg(img_read_file(path, 1u << 20, &data, &len, err, sizeof err) == IMG_OK,
                          "%s", err);
            int w, h, ss, cs;
            ck_assert(tjDecompressHeader3(tj, data, (unsigned long)len, &w, &h, &ss, &cs) == 0);
            const int sw = (w + 7) / 8, sh = (h + 7) / 8;
            uint8_t got[64 * 64], want[64 * 64];
            ck_assert(sw * sh <= 64 * 64);
            (*files)++;
            if (jpeg_dc_decode(data, len, got, sw, sh)) {
                (*taken)++;
                ck_assert(tjDecompress2(tj, data, (unsigned long)len, want, sw, 0, sh, TJPF_GRAY,
                                        TJFLAG_STOPONWARNING) == 0);
                ck_assert_msg(!memcmp(got, want, (size_t)sw * sh), "%s: pixels differ", path);
                /* and with the lanes (nn/jpeg_dc_lanes.c) forced on, which
                 * take nearly all of these small scans in parts of 32 bits */
                memset(got, 0, sizeof got);
                int how = jpeg_dc_decode_how(data, len, got, sw, sh, JPEG_DC_LANES_ALWAYS);
                ck_assert_msg(how != 0, "%s: the lanes refused it", path);
                *lanes += how == 2;
                ck_assert_msg(!memcmp(got, want, (size_t)sw * sh), "%s: pixels differ (lanes)", path);
            }
            free(data);
        }
        closedir(d);
    }
    tjDestroy(tj);
}

START_TEST(test_jpeg_dc_every_image)
{
    if (!have_data()) { printf("SKIP: %s absent\n", ARCHIVE); return; }
    int files = 0, taken = 0, lanes = 0;
    dc_check_dir("train", &files, &taken, &lanes);
    dc_check_dir("test", &files, &taken, &lanes);
    printf("jpeg_dc: %d of %d FER2013 JPEGs taken, all identical to TurboJPEG; %d by the lanes "
           "when forced\n", taken, files, lanes);
    ck_assert_int_eq(files, 28709 + 3589);
    ck_assert_int_eq(taken, files);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fer2013");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_counts);
    tcase_add_test(tc, test_default_model_accuracy);
    tcase_add_test(tc, test_fp16_accuracy);
    tcase_add_test(tc, test_jpeg_dc_every_image);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
