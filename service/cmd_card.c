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

#include "cli_help.h"
#include "commands.h"
#include "config.h"
#include "dataset.h"
#include "svg_plot.h"
#include "train.h"
#include "util.h"

void cmd_card_usage(FILE *f)
{
    fprintf(f, "usage: emotiond card --model FILE --data DIR --run RUNDIR --out OUT\n\n");
    help_paragraph(f, "Regenerates a model card: evaluates FILE on DIR/test (with and without "
                      "flip TTA, timing both) and writes OUT/README.md, OUT/confusion.svg and "
                      "OUT/curves.svg (copied from RUNDIR), so that no figure in the card is "
                      "typed by hand.");
    fputs("\nOptions (all required):\n", f);
    help_option(f, "--model FILE", "the model (.emod)");
    help_option(f, "--data DIR", "the dataset; DIR/test/<class>/ is the validation set");
    help_option(f, "--run RUNDIR", "the trainer's output directory (history.csv, curves.svg)");
    help_option(f, "--out OUT", "where the card is written (models/)");
    help_option(f, "-h, --help", "print this help and exit");
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
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { cmd_card_usage(stdout); return 0; }
        const char **dst = !strcmp(argv[i], "--model") ? &model_path
                           : !strcmp(argv[i], "--data") ? &data
                           : !strcmp(argv[i], "--run")  ? &run
                           : !strcmp(argv[i], "--out")  ? &out
                                                        : NULL;
        if (!dst) {
            fprintf(stderr, "emotiond card: unknown option '%s' (see emotiond card --help)\n",
                    argv[i]);
            return 2;
        }
        if (i + 1 >= argc) { fprintf(stderr, "emotiond card: %s needs a value\n", argv[i]); return 2; }
        *dst = argv[++i];
    }
    if (!model_path || !data || !run || !out) {
        fprintf(stderr, "emotiond card: --model, --data, --run and --out are required\n");
        cmd_card_usage(stderr);
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
    /* every test-time augmentation mode, indexed by its NN_TTA_* flags */
    enum { N_TTA = 4 };
    int confs[N_TTA][DS_NUM_CLASSES * DS_NUM_CLASSES];
    double accs[N_TTA], lats[N_TTA];
    for (int t = 0; t < N_TTA; t++) {
        if (nn_evaluate(m, va.pixels, va.labels, va.n, t, threads, confs[t], NULL, err, sizeof err))
            goto fail;
        accs[t] = nn_confusion_accuracy(confs[t], K);
        lats[t] = latency_ms(m, va.pixels, t);
    }
    const int *conf = confs[NN_TTA_NONE], *conf_tta = confs[NN_TTA_FLIP];
    double acc = accs[NN_TTA_NONE], acc_tta = accs[NN_TTA_FLIP];
    /* what `emotiond serve` does unless configured otherwise */
    svc_config defaults;
    cfg_defaults(&defaults);
    const int served = (defaults.tta ? NN_TTA_FLIP : 0) | (defaults.tta_crops ? NN_TTA_CROPS : 0);
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
    fprintf(f, "| latency, 1 image, 1 thread | %.2f ms |\n", lats[NN_TTA_NONE]);
    fprintf(f, "| served test-time augmentation | `%s` (settings `tta`, `tta_crops`) |\n\n",
            nn_tta_name(served));
    fprintf(f, "## Test-time augmentation\n\n"
               "Each mode averages the probabilities of its views (`emotiond eval --tta MODE`; "
               "in the service, the settings `tta` = flip and `tta_crops` = crops). Latency: one "
               "image through the served path, one thread, median of 51.\n\n"
               "| mode | views | PublicTest accuracy | gain | latency |\n|---|---:|---:|---:|---:|\n");
    for (int t = 0; t < N_TTA; t++)
        fprintf(f, "| `%s` | %d | %.2f%% | %+.2f | %.2f ms |\n", nn_tta_name(t),
                (t & NN_TTA_FLIP ? 2 : 1) * (t & NN_TTA_CROPS ? 5 : 1), 100 * accs[t],
                100 * (accs[t] - accs[NN_TTA_NONE]), lats[t]);
    fprintf(f, "\n");
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
