/* cmd_eval.c - `emotiond eval`: accuracy, per-class precision/recall/F1 and
 * the confusion matrix of a model on a labelled dataset. */
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_help.h"
#include "commands.h"
#include "config.h"
#include "dataset.h"
#include "train.h"
#include "util.h"

/* By default eval scores what `emotiond serve` answers with its default
 * settings (tta, tta_crops, precision), so that a figure from eval is the
 * service's own. */
static void served_defaults(int *tta, int *precision)
{
    svc_config d;
    cfg_defaults(&d);
    *tta = (d.tta ? NN_TTA_FLIP : 0) | (d.tta_crops ? NN_TTA_CROPS : 0);
    *precision = d.precision;
}

void cmd_eval_usage(FILE *f)
{
    int tta, precision;
    char help[256];
    served_defaults(&tta, &precision);
    fprintf(f, "usage: emotiond eval --model FILE --data DIR|FILE.csv [options]\n\n");
    help_paragraph(f, "Prints the accuracy, per-class precision, recall and F1, and the confusion "
                      "matrix of a model on a labelled dataset.");
    fputs("\nOptions:\n", f);
    help_option(f, "--model FILE", "the model (.emod) to evaluate (required)");
    help_option(f, "--data DIR|FILE.csv",
                "DIR holds one folder per class (DIR/<class>/*.jpg|png); a DIR with a test/ "
                "folder and no class folders is read from DIR/test. A .csv is the original "
                "fer2013.csv (required)");
    help_option(f, "--usage PublicTest|PrivateTest",
                "with a .csv, only the rows of this Usage [every row]");
    snprintf(help, sizeof help, "test-time augmentation: none, flip (mirrored image), crops "
             "(shifted by 3 px four ways) or flip+crops (10 views) [%s, as the service serves]",
             nn_tta_name(tta));
    help_option(f, "--tta MODE", help);
    snprintf(help, sizeof help, "int8: 8-bit integer arithmetic with AVX-512 VNNI, faster, "
             "within a few tenths of a point of fp32; fp16: the 3x3 filters in half floats "
             "(AVX2 + F16C); on a CPU without what they need it runs fp32 and says so "
             "[%s, as the service serves]", nn_precision_name(precision));
    help_option(f, "--precision fp32|int8|fp16", help);
    help_option(f, "--json", "print the results as JSON");
    help_option(f, "--threads N", "threads, 1 to 64 [number of cores]");
    help_option(f, "-h, --help", "print this help and exit");
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int cmd_eval(int argc, char **argv)
{
    const char *model_path = NULL, *data = NULL, *usage_f = NULL, *tta = NULL, *threads_s = NULL,
               *precision_s = NULL;
    int json = 0, threads = omp_get_num_procs() > 64 ? 64 : omp_get_num_procs();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { cmd_eval_usage(stdout); return 0; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        const char **dst = !strcmp(a, "--model") ? &model_path
                           : !strcmp(a, "--data")  ? &data
                           : !strcmp(a, "--usage") ? &usage_f
                           : !strcmp(a, "--tta")   ? &tta
                           : !strcmp(a, "--threads") ? &threads_s
                           : !strcmp(a, "--precision") ? &precision_s
                                                     : NULL;
        if (!dst) {
            fprintf(stderr, "emotiond eval: unknown option '%s' (see emotiond eval --help)\n", a);
            return 2;
        }
        if (i + 1 >= argc) { fprintf(stderr, "emotiond eval: %s needs a value\n", a); return 2; }
        *dst = argv[++i];
    }
    if (!model_path || !data) {
        fprintf(stderr, "emotiond eval: --model and --data are required\n");
        cmd_eval_usage(stderr);
        return 2;
    }
    int tta_default, precision_default;
    served_defaults(&tta_default, &precision_default);
    const int tta_flags = tta ? nn_tta_parse(tta) : tta_default;
    if (tta_flags < 0) {
        fprintf(stderr, "emotiond eval: --tta must be none, flip, crops or flip+crops\n");
        return 2;
    }
    const int precision = precision_s ? nn_precision_parse(precision_s) : precision_default;
    if (precision < 0) {
        fprintf(stderr, "emotiond eval: --precision must be fp32, int8 or fp16\n");
        return 2;
    }
    if (threads_s) {
        char *end = NULL;
        long t = strtol(threads_s, &end, 10);
        threads = *threads_s && !*end && t >= 1 && t <= 64 ? (int)t : 0;
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
    if (nn_model_set_precision(m, (nn_precision)precision) != (nn_precision)precision)
        fprintf(stderr, "emotiond eval: warning: %s needs a CPU with %s; evaluating in %s\n",
                nn_precision_name(precision), nn_precision_needs((nn_precision)precision),
                nn_precision_name(nn_model_precision(m)));
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
    if (nn_evaluate(m, ds.pixels, ds.labels, ds.n, tta_flags,
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
        json_t *root = json_pack("{s:s,s:s,s:i,s:i,s:f,s:s,s:s}", "model", model_path, "data",
                                 data, "images", ds.n, "skipped", ds.skipped, "accuracy", acc,
                                 "tta", tta ? tta : "none", "precision",
                                 nn_precision_name(nn_model_precision(m)));
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
        printf("model %s\ndata %s: %d images (%d skipped), TTA %s, %s\n\n", model_path, data,
               ds.n, ds.skipped, nn_tta_name(tta_flags), nn_precision_name(nn_model_precision(m)));
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
