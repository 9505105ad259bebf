/* cmd_card.c - `emotiond card`: regenerates a model card (markdown + SVGs)
 * from a model file, the validation data and the run's training outputs, so
 * that no figure in it is typed by hand. */
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "dataset.h"
#include "svg_plot.h"
#include "train.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: emotiond card --model FILE --data DIR --run RUNDIR --out DIR\n"
        "\n"
        "Evaluates FILE on DIR/test (with and without flip TTA, timing both), and\n"
        "writes DIR/README.md, DIR/confusion.svg and DIR/curves.svg (copied from\n"
        "RUNDIR, the trainer's output directory, with RUNDIR/history.csv).\n");
}

static int copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = a ? fopen(to, "wb") : NULL;
    char buf[8192];
    size_t n;
    int rc = a && b ? 0 : -1;
    while (!rc && (n = fread(buf, 1, sizeof buf, a)) > 0)
        if (fwrite(buf, 1, n, b) != n) rc = -1;
    if (a) fclose(a);
    if (b && fclose(b)) rc = -1;
    return rc;
}

/* Single-image latency of the served path (one thread), median of n runs. */
static double latency_ms(const nn_model *m, const uint8_t *px, int tta)
{
    nn_set_threads(1);
    nn_ws *ws = nn_ws_create(m, 1);
    float probs[64];
    double t[51];
    for (int i = 0; i < 51; i++) {
        double t0 = nn_now_s();
        nn_predict_u8(m, ws, px + (size_t)(i % 8) * DS_PIXELS, 1, tta, probs);
        t[i] = (nn_now_s() - t0) * 1e3;
    }
    nn_ws_free(ws);
    for (int i = 1; i < 51; i++) /* insertion sort: tiny */
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) { double x = t[j]; t[j] = t[j - 1]; t[j - 1] = x; }
    return t[25];
}

static void write_table(FILE *f, const int *conf, int K)
{
    fprintf(f, "| class | precision | recall | F1 | support |\n|---|---|---|---|---|\n");
    for (int k = 0; k < K; k++) {
        long tp = conf[k * K + k], row = 0, col = 0;
        for (int j = 0; j < K; j++) { row += conf[k * K + j]; col += conf[j * K + k]; }
        double p = col ? (double)tp / col : 0, r = row ? (double)tp / row : 0;
        fprintf(f, "| %s | %.3f | %.3f | %.3f | %ld |\n", ds_class_names[k], p, r,
                p + r > 0 ? 2 * p * r / (p + r) : 0, row);
    }
    fprintf(f, "\nConfusion matrix (rows: true class, columns: predicted):\n\n|  |");
    for (int j = 0; j < K; j++) fprintf(f, " %s |", ds_class_names[j]);
    fprintf(f, "\n|---|");
    for (int j = 0; j < K; j++) fprintf(f, "---|");
    fprintf(f, "\n");
    for (int k = 0; k < K; k++) {
        fprintf(f, "| **%s** |", ds_class_names[k]);
        for (int j = 0; j < K; j++) fprintf(f, " %d |", conf[k * K + j]);
        fprintf(f, "\n");
    }
}

int cmd_card(int argc, char **argv)
{
    const char *model_path = NULL, *data = NULL, *run = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        if (i + 1 >= argc) { fprintf(stderr, "emotiond card: %s needs a value\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--model")) model_path = argv[++i];
        else if (!strcmp(argv[i], "--data")) data = argv[++i];
        else if (!strcmp(argv[i], "--run")) run = argv[++i];
        else if (!strcmp(argv[i], "--out")) out = argv[++i];
        else { fprintf(stderr, "emotiond card: unknown option '%s'\n", argv[i]); return 2; }
    }
    if (!model_path || !data || !run || !out) {
        usage(stderr);
        return 2;
    }
    char err[10000], path[4096];
    nn_model *m = NULL;
    ds_dataset va = {0};
    json_t *meta = NULL;
    int rc = 1;
    FILE *f = NULL;
    if (nn_model_load(model_path, &m, err, sizeof err)) goto fail;
    snprintf(path, sizeof path, "%s/test", data);
    if (ds_load_folder(&va, path, NULL, NULL, err, sizeof err)) goto fail;
    const int K = DS_NUM_CLASSES, threads = omp_get_num_procs();
    int conf[DS_NUM_CLASSES * DS_NUM_CLASSES], conf_tta[DS_NUM_CLASSES * DS_NUM_CLASSES];
    if (nn_evaluate(m, va.pixels, va.labels, va.n, NN_TTA_NONE, threads, conf, NULL, err, sizeof err) ||
        nn_evaluate(m, va.pixels, va.labels, va.n, NN_TTA_FLIP, threads, conf_tta, NULL, err, sizeof err))
        goto fail;
    double acc = nn_confusion_accuracy(conf, K), acc_tta = nn_confusion_accuracy(conf_tta, K);
    double lat = latency_ms(m, va.pixels, NN_TTA_NONE), lat_tta = latency_ms(m, va.pixels, NN_TTA_FLIP);
    meta = json_loads(nn_model_meta_json(m), 0, NULL);

    snprintf(path, sizeof path, "%s/confusion.svg", out);
    svg_confusion(path, "PublicTest confusion (flip TTA)", conf_tta, K, ds_class_names);
    char from[4096];
    snprintf(from, sizeof from, "%s/curves.svg", run);
    snprintf(path, sizeof path, "%s/curves.svg", out);
    if (copy_file(from, path)) { snprintf(err, sizeof err, "cannot copy %s to %s", from, path); goto fail; }
    snprintf(path, sizeof path, "%s/README.md", out);
    if (!(f = fopen(path, "w"))) { snprintf(err, sizeof err, "cannot write %s", path); goto fail; }

    const char *cmd = json_string_value(json_object_get(meta, "command"));
    double secs = json_number_value(json_object_get(meta, "train_seconds"));
    fprintf(f, "# Default model: `%s`\n\n", nn_model_arch_name(m));
    fprintf(f, "Generated by `emotiond card --model %s --data %s --run %s --out %s`; do not edit by hand.\n\n",
            model_path, data, run, out);
    fprintf(f, "| | |\n|---|---|\n");
    fprintf(f, "| architecture | `%s` (see `config/arch/%s.json`; stored inside the model file) |\n",
            nn_model_arch_name(m), nn_model_arch_name(m));
    fprintf(f, "| parameters | %zu (including batch-norm running statistics) |\n", nn_model_num_params(m));
    fprintf(f, "| forward FLOPs per image | %.1f M |\n", nn_model_flops(m) / 1e6);
    fprintf(f, "| input | %dx%d grayscale, scaled to [0,1] |\n", nn_model_input_size(m), nn_model_input_size(m));
    fprintf(f, "| training data | FER2013 train, %lld images |\n",
            (long long)json_integer_value(json_object_get(meta, "train_images")));
    fprintf(f, "| epochs | %lld (best at epoch %lld) |\n",
            (long long)json_integer_value(json_object_get(meta, "epochs")),
            (long long)json_integer_value(json_object_get(meta, "best_epoch")));
    fprintf(f, "| training wall time | %.1f min on 2 cores |\n", secs / 60);
    fprintf(f, "| trained on | %s |\n", json_string_value(json_object_get(meta, "date")) ?: "?");
    fprintf(f, "| **PublicTest accuracy** | **%.2f%%** (%d images) |\n", 100 * acc, va.n);
    fprintf(f, "| PublicTest accuracy, flip TTA | %.2f%% |\n", 100 * acc_tta);
    fprintf(f, "| latency, 1 image, 1 thread | %.2f ms (flip TTA: %.2f ms) |\n\n", lat, lat_tta);
    /* a run resumed from checkpoints lists every command, oldest first */
    json_t *cmds = json_object_get(meta, "commands");
    fprintf(f, "Training command%s (run from the repository root, dataset unpacked into `.cache/`, "
               "`OPENBLAS_CORETYPE` unset):\n\n```sh\n", json_array_size(cmds) > 1 ? "s, in order" : "");
    if (json_array_size(cmds) > 0)
        for (size_t i = 0; i < json_array_size(cmds); i++)
            fprintf(f, "%s\n", json_string_value(json_array_get(cmds, i)));
    else
        fprintf(f, "%s\n", cmd ? cmd : "?");
    fprintf(f, "```\n\n");
    char *cfg = json_dumps(json_object_get(meta, "config"), JSON_INDENT(0) | JSON_COMPACT);
    fprintf(f, "Resolved training settings: `%s`\n\n", cfg ? cfg : "{}");
    free(cfg);
    fprintf(f, "The seed Keras notebook reached 63.19%% on the FER2013 test set: this model is %.2f points %s it.\n\n",
            fabs(100 * acc - 63.19), 100 * acc >= 63.19 ? "above" : "below");
    fprintf(f, "## Training curves\n\n![training curves](curves.svg)\n\n");
    fprintf(f, "## Per class, PublicTest, no TTA\n\n");
    write_table(f, conf, K);
    fprintf(f, "\n## Per class, PublicTest, flip TTA\n\n![confusion matrix](confusion.svg)\n\n");
    write_table(f, conf_tta, K);
    fprintf(f, "\nThe PrivateTest half of FER2013 is held back and scored independently with\n"
               "`emotiond eval --model models/default.emod --data DIR`.\n");
    if (fclose(f)) { f = NULL; snprintf(err, sizeof err, "cannot write %s", path); goto fail; }
    f = NULL;
    printf("wrote %s/README.md: PublicTest %.2f%% (flip TTA %.2f%%)\n", out, 100 * acc, 100 * acc_tta);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "emotiond card: %s\n", err);
out:
    if (f) fclose(f);
    json_decref(meta);
    ds_free(&va);
    nn_model_free(m);
    return rc;
}
