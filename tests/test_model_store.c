/* test_model_store.c - the model store alone: versions, activation,
 * retention (never the active one), the sweep of what a crash leaves, a
 * damaged manifest refused, and training-data paths kept inside data_dir. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common_imgtest.h"
#include "common_svc.h"
#include "fsutil.h"
#include "model_store.h"
#include "train_data.h"

static char dir[64];

static void setup(void)
{
    imgt_mkdtemp(dir);
}

static void teardown(void)
{
    imgt_rm_rf(dir);
}

static nn_model *tiny(uint64_t seed)
{
    nn_model *m = NULL;
    char err[256];
    ck_assert_int_eq(nn_model_from_arch_json(tsv_tiny_arch, seed, &m, err, sizeof err), 0);
    return m;
}

static void add(ms_store *s, uint64_t seed, const char *state, char *id)
{
    nn_model *m = tiny(seed);
    char err[256];
    ms_add_info info = {"training", "j0001", state, NULL, 0.5, NAN};
    ck_assert_msg(ms_add(s, m, &info, id, MS_ID_MAX, err, sizeof err) == 0, "%s", err);
    nn_model_free(m);
}

START_TEST(test_versions_and_retention)
{
    char err[256], id[MS_ID_MAX], path[256], active[MS_ID_MAX];
    ms_store *s = ms_open(dir, 2, err, sizeof err);
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_int_eq(ms_active(s, active, sizeof active), -1);
    add(s, 1, "ready", id);
    ck_assert_str_eq(id, "v0001");
    ck_assert_int_eq(ms_set_active(s, "v0001", err, sizeof err), 0);
    ck_assert_int_ne(ms_set_active(s, "v0099", err, sizeof err), 0);
    ck_assert_int_ne(ms_set_active(s, "../x", err, sizeof err), 0);
    add(s, 2, "rejected", id);
    add(s, 3, "ready", id);
    ck_assert_str_eq(id, "v0003");
    /* keep 2: v0002 went, the active v0001 stayed */
    ck_assert_int_eq(ms_file_path(s, "v0002", path, sizeof path), -1);
    ck_assert_int_eq(ms_file_path(s, "v0001", path, sizeof path), 0);
    ck_assert(fs_exists(path));
    snprintf(path, sizeof path, "%s/v0002.emod", dir);
    ck_assert(!fs_exists(path));
    /* the file carries its version */
    ck_assert_int_eq(ms_file_path(s, "v0003", path, sizeof path), 0);
    nn_model *m = NULL;
    ck_assert_int_eq(nn_model_load(path, &m, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(nn_model_meta_json(m), "\"version\":\"v0003\""));
    nn_model_free(m);
    char *list = ms_list_json(s);
    ck_assert_ptr_nonnull(strstr(list, "\"active\":\"v0001\""));
    free(list);
    ms_close(s);

    /* what a crash leaves: a temporary and a file the manifest does not name */
    snprintf(path, sizeof path, "%s/v0007.emod", dir);
    imgt_write_file(path, "x", 1);
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s/manifest.json.tmp.123.4", dir);
    imgt_write_file(tmp, "{", 1);
    s = ms_open(dir, 2, err, sizeof err);
    ck_assert_ptr_nonnull(s);
    ck_assert(!fs_exists(path));
    ck_assert(!fs_exists(tmp));
    ck_assert_int_eq(ms_active(s, active, sizeof active), 0);
    ck_assert_str_eq(active, "v0001");
    add(s, 4, "ready", id);
    ck_assert_str_eq(id, "v0004"); /* ids are never reused */
    ms_close(s);
}
END_TEST

START_TEST(test_damaged_manifest_refused)
{
    char err[256], path[256];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    imgt_write_file(path, "{\"versions\": 3}", 15);
    ck_assert_ptr_null(ms_open(dir, 2, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "manifest"));
    ck_assert_int_eq(ms_valid_id("v12"), 1);
    ck_assert_int_eq(ms_valid_id("v"), 0);
    ck_assert_int_eq(ms_valid_id("v1/../x"), 0);
}
END_TEST

START_TEST(test_dataset_paths)
{
    char out[4096], err[256], sub[256], link[300];
    snprintf(sub, sizeof sub, "%s/data/extra", dir);
    ck_assert_int_eq(fs_mkdir_p(sub), 0);
    snprintf(sub, sizeof sub, "%s/data", dir);
    ck_assert_int_eq(td_resolve(sub, NULL, out, sizeof out, err, sizeof err), 0);
    ck_assert_int_eq(td_resolve(sub, "extra", out, sizeof out, err, sizeof err), 0);
    ck_assert_int_ne(td_resolve(sub, "../data/extra", out, sizeof out, err, sizeof err), 0);
    ck_assert_int_ne(td_resolve(sub, "/etc", out, sizeof out, err, sizeof err), 0);
    ck_assert_int_ne(td_resolve(sub, "missing", out, sizeof out, err, sizeof err), 0);
    /* a link inside data_dir that leads out of it */
    snprintf(link, sizeof link, "%s/escape", sub);
    ck_assert_int_eq(symlink("/tmp", link), 0);
    ck_assert_int_ne(td_resolve(sub, "escape", out, sizeof out, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "outside"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model_store");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_versions_and_retention);
    tcase_add_test(tc, test_damaged_manifest_refused);
    tcase_add_test(tc, test_dataset_paths);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
