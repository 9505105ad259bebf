/* slow_fer2013.c - dataset-heavy checks (make test-data): the full FER2013
 * archive loads with the published counts, and the shipped default model
 * beats the seed notebook on the PublicTest half. Skips, saying why, when
 * ../shared/data is absent. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "dataset.h"
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

int main(void)
{
    Suite *s = suite_create("fer2013");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_counts);
    tcase_add_test(tc, test_default_model_accuracy);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
