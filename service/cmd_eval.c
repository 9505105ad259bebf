/* cmd_eval.c - `emotiond eval`: accuracy, per-class precision/recall/F1 and
 * the confusion matrix of a model on a labelled dataset. */
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "dataset.h"
#include "train.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: emotiond eval --model FILE --data DIR|FILE.csv [--usage PublicTest|PrivateTest]\n"
        "                     [--tta flip] [--json] [--threads N]\n"
        "\n"
        "DIR holds one folder per class (DIR/<class>/*.jpg|png); a DIR with a test/\n"
        "folder and no class folders is read from DIR/test. A .csv is the original\n"
        "fer2013.csv: every row, or only those whose Usage is --usage.\n");
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int cmd_eval(int argc, char **argv)
{
    const char *model_path = NULL, *data = NULL, *usage_f = NULL, *tta = NULL;
    int json = 0, threads = omp_get_num_procs();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "emotiond eval: unknown option or missing value: %s\n", a); return 2; }
        if (!strcmp(a, "--model")) model_path = argv[++i];
        else if (!strcmp(a, "--data")) data = argv[++i];
        else if (!strcmp(a, "--usage")) usage_f = argv[++i];
        else if (!strcmp(a, "--tta")) tta = argv[++i];
        else if (!strcmp(a, "--threads")) threads = atoi(argv[++i]);
        else { fprintf(stderr, "emotiond eval: unknown option '%s' (see --help)\n", a); return 2; }
    }
    if (!model_path || !data) {
        fprintf(stderr, "emotiond eval: --model and --data are required\n");
        usage(stderr);
        return 2;
    }
    if (tta && strcmp(tta, "flip") && strcmp(tta, "none")) {
        fprintf(stderr, "emotiond eval: --tta must be flip or none\n");
        return 2;
    }
    if (threads < 1 || threads > 64) { fprintf(stderr, "emotiond eval: --threads must be 1..64\n"); return 2; }
    char err[1024], path[4096];
    nn_model *m = NULL;
    ds_dataset ds = {0};
    int rc = 1;
    if (nn_model_load(model_path, &m, err, sizeof err)) {
        fprintf(stderr, "emotiond eval: %s\n", err);
        return 1;
    }
    if (nn_model_num_classes(m) != DS_NUM_CLASSES || nn_model_input_size(m) != DS_SIDE) {
        fprintf(stderr, "emotiond eval: the model is not a 7-class 48x48 FER model\n");
        goto out;
    }
    size_t dl = strlen(data);
    if (dl > 4 && !strcmp(data + dl - 4, ".csv")) {
        if (ds_load_csv(&ds, data, usage_f, nn_warn_skip_stderr, NULL, err, sizeof err)) goto load_err;
    } else {
        const char *dir = data;
        snprintf(path, sizeof path, "%s/angry", data);
        if (!is_dir(path)) {
            snprintf(path, sizeof path, "%s/test", data);
            dir = path;
        }
        if (ds_load_folder(&ds, dir, nn_warn_skip_stderr, NULL, err, sizeof err)) goto load_err;
    }
    const int K = DS_NUM_CLASSES;
    int conf[DS_NUM_CLASSES * DS_NUM_CLASSES];
    if (nn_evaluate(m, ds.pixels, ds.labels, ds.n, tta && !strcmp(tta, "flip") ? NN_TTA_FLIP : NN_TTA_NONE,
                    threads, conf, NULL, err, sizeof err)) {
        fprintf(stderr, "emotiond eval: %s\n", err);
        goto out;
    }
    double acc = nn_confusion_accuracy(conf, K);
    double prec[DS_NUM_CLASSES], rec[DS_NUM_CLASSES], f1[DS_NUM_CLASSES];
    int support[DS_NUM_CLASSES];
    for (int k = 0; k < K; k++) {
        long tp = conf[k * K + k], row = 0, col = 0;
        for (int j = 0; j < K; j++) { row += conf[k * K + j]; col += conf[j * K + k]; }
        support[k] = (int)row;
        prec[k] = col ? (double)tp / col : 0;
        rec[k] = row ? (double)tp / row : 0;
        f1[k] = prec[k] + rec[k] > 0 ? 2 * prec[k] * rec[k] / (prec[k] + rec[k]) : 0;
    }
    if (json) {
        json_t *root = json_pack("{s:s,s:s,s:i,s:i,s:f,s:s}", "model", model_path, "data", data,
                                 "images", ds.n, "skipped", ds.skipped, "accuracy", acc,
                                 "tta", tta ? tta : "none");
        json_t *cls = json_object(), *cm = json_array();
        for (int k = 0; k < K; k++) {
            json_object_set_new(cls, ds_class_names[k], json_pack("{s:f,s:f,s:f,s:i}",
                "precision", prec[k], "recall", rec[k], "f1", f1[k], "support", support[k]));
            json_t *row = json_array();
            for (int j = 0; j < K; j++) json_array_append_new(row, json_integer(conf[k * K + j]));
            json_array_append_new(cm, row);
        }
        json_object_set_new(root, "per_class", cls);
        json_object_set_new(root, "confusion", cm);
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
        json_decref(root);
    } else {
        printf("model %s\ndata %s: %d images (%d skipped)%s\n\n", model_path, data, ds.n, ds.skipped,
               tta && !strcmp(tta, "flip") ? ", flip TTA" : "");
        printf("accuracy %.2f%%\n\n%-10s %9s %9s %9s %8s\n", 100 * acc, "class", "precision", "recall", "f1", "support");
        for (int k = 0; k < K; k++)
            printf("%-10s %9.4f %9.4f %9.4f %8d\n", ds_class_names[k], prec[k], rec[k], f1[k], support[k]);
        printf("\nconfusion matrix (rows: true, columns: predicted)\n%-10s", "");
        for (int j = 0; j < K; j++) printf(" %8.8s", ds_class_names[j]);
        printf("\n");
        for (int k = 0; k < K; k++) {
            printf("%-10s", ds_class_names[k]);
            for (int j = 0; j < K; j++) printf(" %8d", conf[k * K + j]);
            printf("\n");
        }
    }
    rc = 0;
    goto out;
load_err:
    fprintf(stderr, "emotiond eval: %s\n", err);
out:
    ds_free(&ds);
    nn_model_free(m);
    return rc;
}
