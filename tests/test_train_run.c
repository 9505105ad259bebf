/* test_train_run.c - whole training runs on a tiny generated dataset:
 * the model learns, outputs are written, and a run interrupted mid-epoch and
 * resumed from its checkpoint ends bit-identical to an uninterrupted one. */
#include <check.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common_imgtest.h"
#include "dataset.h"
#include "internal.h"
#include "model_file.h"
#include "train.h"

static char root[64];
static char arch_path[128];

/* class k: a bright bar at a class-specific position, plus noise */
static void make_image(int k, int i, uint8_t *px)
{
    uint64_t r = (uint64_t)(k * 1000 + i + 1);
    for (int p = 0; p < 48 * 48; p++) px[p] = (uint8_t)(40 + (nn_rng_next(&r) & 31));
    int y0 = 3 + 6 * k;
    for (int y = y0; y < y0 + 4; y++)
        for (int x = 4; x < 44; x++) px[y * 48 + x] = 220;
}

static void make_split(const char *split, int per_class)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, split);
    mkdir(path, 0755);
    for (int k = 0; k < DS_NUM_CLASSES; k++) {
        snprintf(path, sizeof path, "%s/%s/%s", root, split, ds_class_names[k]);
        mkdir(path, 0755);
        for (int i = 0; i < per_class; i++) {
            uint8_t px[48 * 48];
            size_t len;
            make_image(k, i + (split[1] == 'e' ? 500 : 0), px);
            uint8_t *png = imgt_png_gray8(48, 48, px, &len);
            snprintf(path, sizeof path, "%s/%s/%s/%03d.png", root, split, ds_class_names[k], i);
            imgt_write_file(path, png, len);
            free(png);
        }
    }
}

static void setup(void)
{
    imgt_mkdtemp(root);
    make_split("train", 12);
    make_split("test", 4);
    snprintf(arch_path, sizeof arch_path, "%s/tiny.json", root);
    const char *arch =
        "{\"name\":\"tiny\",\"layers\":["
        "{\"type\":\"conv\",\"filters\":4,\"kernel\":3},{\"type\":\"batchnorm\"},{\"type\":\"relu\"},"
        "{\"type\":\"maxpool\"},{\"type\":\"maxpool\"},{\"type\":\"maxpool\"},"
        "{\"type\":\"dropout\",\"rate\":0.1},{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":7}],"
        "\"training\":{\"optimizer\":\"adam\",\"lr\":0.01,\"batch\":16,\"schedule\":\"cosine\","
        "\"flip\":true,\"shift\":2,\"rotate\":5}}";
    imgt_write_file(arch_path, arch, strlen(arch));
}

static void teardown(void)
{
    imgt_rm_rf(root);
}

typedef struct {
    int stop_epoch, stop_step;
    atomic_int flag;
    double last_val;
    double lr[64]; /* the rate of every step, in order */
    int n_lr;
} stopper;

static void on_progress(void *ctx, const nn_train_progress *p)
{
    stopper *s = ctx;
    if (p->end_of_epoch) s->last_val = p->val_acc;
    else if (s->n_lr < 64) s->lr[s->n_lr++] = p->lr;
    if (!p->end_of_epoch && p->epoch == s->stop_epoch && p->step == s->stop_step) s->flag = 1;
}

static const char *g_optimizer; /* NULL: the architecture's (Adam) */

static int g_snapshots; /* ask for epoch-NNN.emod files */

static int run(const char *out, const char *resume, int epochs, stopper *st, char *err)
{
    nn_train_opts o;
    nn_train_opts_init(&o);
    o.snapshots = g_snapshots;
    if (!resume) o.optimizer = g_optimizer;
    o.arch_path = resume ? NULL : arch_path;
    o.resume = resume;
    o.data_dir = root;
    o.out_dir = out;
    o.epochs = epochs;
    o.seed = 7;
    o.on_progress = on_progress;
    o.ctx = st;
    o.cancel = &st->flag;
    return nn_train_run(&o, err, 512);
}

static float *load_params(const char *path, size_t *n)
{
    char err[512];
    nn_model *m = NULL;
    ck_assert_msg(nn_model_load(path, &m, err, sizeof err) == 0, "%s", err);
    size_t k;
    float *p = nn_model_params(m, &k);
    float *copy = malloc(sizeof(float) * k);
    memcpy(copy, p, sizeof(float) * k);
    *n = k;
    nn_model_free(m);
    return copy;
}

START_TEST(test_learns_and_writes_outputs)
{
    char out[128], err[512], path[256];
    snprintf(out, sizeof out, "%s/run", root);
    stopper st = {0};
    ck_assert_msg(run(out, NULL, 6, &st, err) == 0, "%s", err);
    ck_assert_msg(st.last_val > 0.6, "validation accuracy only %f", st.last_val);
    const char *files[] = {"best.emod", "checkpoint.emod", "history.csv", "curves.svg"};
    for (int i = 0; i < 4; i++) {
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", out, files[i]);
        ck_assert_msg(stat(path, &sb) == 0 && sb.st_size > 0, "%s missing", files[i]);
    }
    snprintf(path, sizeof path, "%s/history.csv", out);
    FILE *f = fopen(path, "r");
    int lines = 0;
    char line[256];
    while (fgets(line, sizeof line, f)) lines++;
    fclose(f);
    ck_assert_int_eq(lines, 7); /* header + 6 epochs */
    nn_model *m = NULL;
    snprintf(path, sizeof path, "%s/best.emod", out);
    ck_assert(nn_model_load(path, &m, err, sizeof err) == 0);
    ck_assert_ptr_nonnull(strstr(nn_model_meta_json(m), "\"val_accuracy\""));
    ck_assert_ptr_nonnull(strstr(nn_model_meta_json(m), "\"train_images\":84"));
    nn_model_free(m);
}
END_TEST

START_TEST(test_resume_mid_epoch_is_exact)
{
    g_optimizer = _i ? "sgd" : NULL; /* Adam keeps two moments, SGD one */
    char a[128], b[128], ck[160], err[512];
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(b, sizeof b, "%s/b", root);
    stopper sa = {0}, sb = {.stop_epoch = 2, .stop_step = 3}; /* b stops after step 3 of epoch 2 */
    ck_assert_msg(run(a, NULL, 3, &sa, err) == 0, "%s", err);
    ck_assert_msg(run(b, NULL, 3, &sb, err) == 1, "the interrupted run did not report cancellation: %s", err);
    snprintf(ck, sizeof ck, "%s/checkpoint.emod", b);
    stopper sc = {0};
    ck_assert_msg(run(b, ck, 3, &sc, err) == 0, "%s", err);
    size_t na, nb;
    char pa[160], pb[160];
    snprintf(pa, sizeof pa, "%s/checkpoint.emod", a);
    snprintf(pb, sizeof pb, "%s/checkpoint.emod", b);
    float *wa = load_params(pa, &na), *wb = load_params(pb, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(wa, wb, sizeof(float) * na) == 0, "resumed weights differ from an uninterrupted run");
    free(wa);
    free(wb);
}
END_TEST

/* --snapshots: one model per epoch, the last equal to the final weights; their
 * average, with its batch norm recalibrated, is a working model. */
START_TEST(test_snapshots_and_average)
{
    char out[128], err[512], path[256];
    snprintf(out, sizeof out, "%s/snap", root);
    stopper st = {0};
    g_snapshots = 1;
    int rc = run(out, NULL, 4, &st, err);
    g_snapshots = 0;
    ck_assert_msg(rc == 0, "%s", err);
    nn_model *snaps[4] = {0}, *avg = NULL;
    for (int e = 0; e < 4; e++) {
        snprintf(path, sizeof path, "%s/epoch-%03d.emod", out, e + 1);
        ck_assert_msg(nn_model_load(path, &snaps[e], err, sizeof err) == 0, "%s: %s", path, err);
    }
    size_t n_last, n_final;
    snprintf(path, sizeof path, "%s/checkpoint.emod", out);
    float *final = load_params(path, &n_final);
    float *last = nn_model_params(snaps[3], &n_last);
    ck_assert_uint_eq(n_last, n_final);
    ck_assert_msg(memcmp(last, final, sizeof(float) * n_last) == 0,
                  "the last snapshot is not the final weights");
    free(final);
    /* the last two epochs, batch norm measured again on the training images */
    ck_assert_msg(nn_model_average(snaps + 2, 2, &avg, err, sizeof err) == 0, "%s", err);
    ds_dataset tr = {0}, va = {0};
    snprintf(path, sizeof path, "%s/train", root);
    ck_assert_msg(ds_load_folder(&tr, path, NULL, NULL, err, sizeof err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/test", root);
    ck_assert_msg(ds_load_folder(&va, path, NULL, NULL, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(nn_bn_recalibrate(avg, tr.pixels, tr.n, 16, err, sizeof err) == 0, "%s", err);
    int conf[DS_NUM_CLASSES * DS_NUM_CLASSES];
    ck_assert(nn_evaluate(avg, va.pixels, va.labels, va.n, NN_TTA_NONE, 1, conf, NULL, err,
                          sizeof err) == 0);
    double acc = nn_confusion_accuracy(conf, DS_NUM_CLASSES);
    ck_assert_msg(acc > 0.6, "the averaged model's accuracy is only %f (last snapshot %f)", acc,
                  st.last_val);
    ds_free(&tr);
    ds_free(&va);
    nn_model_free(avg);
    for (int e = 0; e < 4; e++) nn_model_free(snaps[e]);
}
END_TEST

/* The cyclic schedule: every epoch runs from lr down towards min_lr, linearly
 * by step, and starts again at lr. */
START_TEST(test_cyclic_schedule)
{
    char out[128], err[512];
    snprintf(out, sizeof out, "%s/cyclic", root);
    stopper st = {0};
    nn_train_opts o;
    nn_train_opts_init(&o);
    o.arch_path = arch_path;
    o.data_dir = root;
    o.out_dir = out;
    o.epochs = 2;
    o.seed = 7;
    o.schedule = "cyclic";
    o.lr = 0.01;
    o.min_lr = 0.001;
    o.on_progress = on_progress;
    o.ctx = &st;
    ck_assert_msg(nn_train_run(&o, err, sizeof err) == 0, "%s", err);
    const int steps = (7 * 12 + 15) / 16; /* 84 images, batch 16 */
    ck_assert_int_eq(st.n_lr, 2 * steps);
    for (int e = 0; e < 2; e++)
        for (int k = 0; k < steps; k++) {
            double want = 0.01 - 0.009 * k / steps;
            ck_assert_msg(fabs(st.lr[e * steps + k] - want) < 1e-9, "epoch %d step %d: lr %g, not %g",
                          e + 1, k + 1, st.lr[e * steps + k], want);
        }
    /* min_lr at or above lr makes no cycle: refused with a reason */
    o.min_lr = 0.01;
    ck_assert(nn_train_run(&o, err, sizeof err) != 0);
    ck_assert_msg(strstr(err, "min_lr below lr") != NULL, "%s", err);
}
END_TEST

START_TEST(test_bad_inputs)
{
    char out[128], err[512];
    snprintf(out, sizeof out, "%s/bad", root);
    nn_train_opts o;
    nn_train_opts_init(&o);
    o.arch_path = arch_path;
    o.data_dir = "/nonexistent";
    o.out_dir = out;
    ck_assert_int_eq(nn_train_run(&o, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "/nonexistent") != NULL, "%s", err);
    o.data_dir = root;
    o.lr = -1;
    ck_assert_int_eq(nn_train_run(&o, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "lr") != NULL, "%s", err);
    o.lr = NN_UNSET;
    o.optimizer = "rmsprop";
    ck_assert_int_eq(nn_train_run(&o, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "optimizer") != NULL, "%s", err);
    o.optimizer = NULL;
    o.resume = arch_path; /* not a checkpoint */
    ck_assert_int_eq(nn_train_run(&o, err, sizeof err), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("train_run");
    TCase *tc = tcase_create("run");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_learns_and_writes_outputs);
    tcase_add_loop_test(tc, test_resume_mid_epoch_is_exact, 0, 2);
    tcase_add_test(tc, test_snapshots_and_average);
    tcase_add_test(tc, test_cyclic_schedule);
    tcase_add_test(tc, test_bad_inputs);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
