/* test_model_file.c - model file round trip, and rejection of truncated,
 * bit-flipped, wrong-version and mismatched files. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "model_file.h"

static const char *tiny =
    "{\"name\":\"tiny\",\"input\":{\"size\":12},\"layers\":["
    "{\"type\":\"conv\",\"filters\":4,\"kernel\":3},{\"type\":\"batchnorm\"},{\"type\":\"relu\"},"
    "{\"type\":\"maxpool\"},{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":7}]}";

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/emod_test_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static nn_model *make_model(void)
{
    char err[256];
    nn_model *m;
    ck_assert_msg(nn_model_from_arch_json(tiny, 42, &m, err, sizeof err) == 0, "%s", err);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += 0.001f * (float)(i % 17);
    ck_assert_int_eq(nn_model_set_meta_json(m, "{\"val_accuracy\":0.5,\"epochs\":3}", err, sizeof err), 0);
    return m;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len);
    ck_assert_uint_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void resign(uint8_t *b, size_t len)
{
    uint32_t crc = nn_crc32(0, b, len - 4);
    memcpy(b + len - 4, &crc, 4);
}

START_TEST(test_round_trip)
{
    char path[128], err[256];
    nn_model *m = make_model(), *l = NULL;
    snprintf(path, sizeof path, "%s/m.emod", dir);
    ck_assert_msg(nn_model_save(m, path, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(nn_model_load(path, &l, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(nn_model_arch_name(l), "tiny");
    ck_assert_uint_eq(nn_model_num_params(l), nn_model_num_params(m));
    ck_assert_int_eq(memcmp(l->params, m->params, sizeof(float) * m->n_params), 0);
    ck_assert_int_eq(nn_model_num_classes(l), 7);
    ck_assert_str_eq(nn_model_class_name(l, 3), "happy");
    ck_assert_int_eq(nn_model_input_size(l), 12);
    ck_assert_ptr_nonnull(strstr(nn_model_meta_json(l), "\"val_accuracy\":0.5"));
    /* the same predictions */
    uint8_t px[144];
    for (int i = 0; i < 144; i++) px[i] = (uint8_t)(i * 7);
    float p1[7], p2[7];
    nn_ws *w1 = nn_ws_create(m, 1), *w2 = nn_ws_create(l, 1);
    nn_predict_u8(m, w1, px, 1, NN_TTA_NONE, p1);
    nn_predict_u8(l, w2, px, 1, NN_TTA_NONE, p2);
    ck_assert_int_eq(memcmp(p1, p2, sizeof p1), 0);
    nn_ws_free(w1);
    nn_ws_free(w2);
    /* no temporary file left behind */
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d))) if (e->d_name[0] != '.') files++;
    closedir(d);
    ck_assert_int_eq(files, 1);
    nn_model_free(l);
    nn_model_free(m);
}
END_TEST

START_TEST(test_checkpoint_extras)
{
    char path[128], err[256];
    nn_model *m = make_model(), *l = NULL;
    float a[5] = {1, 2, 3, 4, 5}, b[3] = {-1, -2, -3}, ra[5] = {0}, rb[3] = {0};
    nn_extra ex[2] = {{"a", a, 5}, {"b", b, 3}}, rx[2] = {{"b", rb, 3}, {"a", ra, 5}};
    char *ck = NULL;
    snprintf(path, sizeof path, "%s/c.emod", dir);
    ck_assert(nn_file_save(m, ex, 2, "{\"epoch\":4}", path, err, sizeof err) == 0);
    ck_assert_msg(nn_file_load(path, &l, rx, 2, &ck, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(memcmp(a, ra, sizeof a), 0);
    ck_assert_int_eq(memcmp(b, rb, sizeof b), 0);
    ck_assert_ptr_nonnull(ck);
    ck_assert_ptr_nonnull(strstr(ck, "\"epoch\":4"));
    free(ck);
    nn_model_free(l);
    /* a checkpoint still loads as a plain model */
    ck_assert(nn_model_load(path, &l, err, sizeof err) == 0);
    nn_model_free(l);
    nn_model_free(m);
}
END_TEST

START_TEST(test_truncated_rejected)
{
    char path[128], err[256];
    nn_model *m = make_model(), *l = NULL;
    snprintf(path, sizeof path, "%s/m.emod", dir);
    ck_assert(nn_model_save(m, path, err, sizeof err) == 0);
    size_t len;
    uint8_t *b = read_all(path, &len);
    size_t cuts[] = {0, 3, 4, 15, 16, 40, len / 2, len - 5, len - 4, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        err[0] = 0;
        ck_assert_msg(nn_model_load_mem(b, cuts[i], &l, err, sizeof err) != 0, "cut at %zu loaded", cuts[i]);
        ck_assert_ptr_null(l);
        ck_assert_msg(err[0] != 0, "no message for a cut at %zu", cuts[i]);
    }
    /* and through a file */
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, len / 3, f);
    fclose(f);
    ck_assert(nn_model_load(path, &l, err, sizeof err) != 0);
    ck_assert_ptr_nonnull(strstr(err, "truncated"));
    free(b);
    nn_model_free(m);
}
END_TEST

START_TEST(test_bitflip_rejected)
{
    char path[128], err[256];
    nn_model *m = make_model(), *l = NULL;
    snprintf(path, sizeof path, "%s/m.emod", dir);
    ck_assert(nn_model_save(m, path, err, sizeof err) == 0);
    size_t len;
    uint8_t *b = read_all(path, &len);
    for (size_t pos = 5; pos < len; pos += len / 23) {
        b[pos] ^= 0x10;
        ck_assert_msg(nn_model_load_mem(b, len, &l, err, sizeof err) != 0, "flip at %zu loaded", pos);
        b[pos] ^= 0x10;
    }
    ck_assert(nn_model_load_mem(b, len, &l, err, sizeof err) == 0);
    nn_model_free(l);
    free(b);
    nn_model_free(m);
}
END_TEST

START_TEST(test_wrong_version_and_magic)
{
    char path[128], err[256];
    nn_model *m = make_model(), *l = NULL;
    snprintf(path, sizeof path, "%s/m.emod", dir);
    ck_assert(nn_model_save(m, path, err, sizeof err) == 0);
    size_t len;
    uint8_t *b = read_all(path, &len);
    uint32_t v = 99;
    memcpy(b + 4, &v, 4);
    resign(b, len); /* a well-formed file of a future version */
    ck_assert(nn_model_load_mem(b, len, &l, err, sizeof err) != 0);
    ck_assert_msg(strstr(err, "version 99") != NULL, "%s", err);
    v = NN_FILE_VERSION;
    memcpy(b + 4, &v, 4);
    b[0] = 'X';
    resign(b, len);
    ck_assert(nn_model_load_mem(b, len, &l, err, sizeof err) != 0);
    ck_assert_msg(strstr(err, "magic") != NULL, "%s", err);
    free(b);
    nn_model_free(m);
}
END_TEST

START_TEST(test_mismatch_rejected)
{
    char path[128], err[256];
    nn_model *m = make_model(), *l = NULL;
    snprintf(path, sizeof path, "%s/m.emod", dir);
    ck_assert(nn_model_save(m, path, err, sizeof err) == 0);
    size_t len;
    uint8_t *b = read_all(path, &len);
    /* drop one class name from the header (same length: spaces), re-sign */
    char *hdr = (char *)b + 16;
    char *cls = memmem(hdr, len - 16, "\"disgust\",", 10);
    ck_assert_ptr_nonnull(cls);
    memset(cls, ' ', 10);
    resign(b, len);
    ck_assert(nn_model_load_mem(b, len, &l, err, sizeof err) != 0);
    ck_assert_msg(strstr(err, "class") != NULL, "%s", err);
    free(b);
    /* a header whose architecture needs more parameters than the file holds */
    b = read_all(path, &len);
    hdr = (char *)b + 16;
    char *units = memmem(hdr, len - 16, "\"filters\":4", 11);
    ck_assert_ptr_nonnull(units);
    units[10] = '5';
    resign(b, len);
    ck_assert(nn_model_load_mem(b, len, &l, err, sizeof err) != 0);
    ck_assert_msg(strstr(err, "parameter") != NULL || strstr(err, "size") != NULL, "%s", err);
    free(b);
    nn_model_free(m);
}
END_TEST

START_TEST(test_save_failure_is_clean)
{
    char err[256];
    nn_model *m = make_model();
    ck_assert(nn_model_save(m, "/nonexistent-dir/x.emod", err, sizeof err) != 0);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir"));
    nn_model *l = NULL;
    ck_assert(nn_model_load("/nonexistent-dir/x.emod", &l, err, sizeof err) != 0);
    ck_assert_ptr_nonnull(strstr(err, "cannot open"));
    nn_model_free(m);
}
END_TEST

START_TEST(test_bad_architectures)
{
    char err[256];
    nn_model *m = NULL;
    const char *bad[] = {
        "not json",
        "{\"layers\":[]}",
        "{\"name\":\"x\",\"layers\":[{\"type\":\"warp\"}]}",
        "{\"name\":\"x\",\"layers\":[{\"type\":\"dense\",\"units\":7}]}",         /* not flat */
        "{\"name\":\"x\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":5}]}", /* 5 != 7 */
        "{\"name\":\"x\",\"layers\":[{\"type\":\"conv\",\"filters\":0}]}",
        "{\"name\":\"x\",\"layers\":[{\"type\":\"conv\",\"filters\":4,\"padding\":\"full\"}]}",
        "{\"name\":\"x\",\"layers\":[{\"type\":\"dropout\",\"rate\":1.5}]}",
        /* 4.3e9 parameters: refused before anything is allocated */
        "{\"name\":\"x\",\"layers\":[{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":65536},"
        "{\"type\":\"dense\",\"units\":65536},{\"type\":\"dense\",\"units\":7}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        ck_assert_msg(nn_model_from_arch_json(bad[i], 1, &m, err, sizeof err) != 0, "accepted: %s", bad[i]);
        ck_assert_ptr_null(m);
        ck_assert_msg(strstr(err, "architecture") != NULL, "message for %s: %s", bad[i], err);
    }
    /* the shipped seed architecture has the notebook's parameter count */
    ck_assert(nn_model_from_arch_file("config/arch/seed.json", 1, &m, err, sizeof err) == 0);
    ck_assert_uint_eq(nn_model_num_params(m), 1315335);
    nn_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model_file");
    TCase *tc = tcase_create("file");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_checkpoint_extras);
    tcase_add_test(tc, test_truncated_rejected);
    tcase_add_test(tc, test_bitflip_rejected);
    tcase_add_test(tc, test_wrong_version_and_magic);
    tcase_add_test(tc, test_mismatch_rejected);
    tcase_add_test(tc, test_save_failure_is_clean);
    tcase_add_test(tc, test_bad_architectures);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
