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
    fprintf(f, "usage: emotiond card --model FILE --data DIR --run RUNDIR [--run ...] "
               "--out OUT\n\n");
    help_paragraph(f, "Regenerates a model card: evaluates FILE on DIR/test (in every "
                      "test-time augmentation mode, timing each) and writes OUT/README.md, "
                      "OUT/confusion.svg and OUT/curves.svg (drawn from the runs' "
                      "history.csv), so that no figure in the card is typed by hand. A model "
                      "fine-tuned from another (train --init) names every run, oldest first: "
                      "the curves and the training time cover them all.");
    fputs("\nRequired:\n", f);
    help_option(f, "--model FILE", "the model (.emod)");
    help_option(f, "--data DIR", "the dataset; DIR/test/<class>/ is the validation set");
    help_option(f, "--run RUNDIR", "the trainer's output directory (history.csv); repeat it "
                                   "for each stage of a fine-tuned model, oldest first");
    help_option(f, "--out OUT", "where the card is written (models/)");
    fputs("\nOptional:\n", f);
    help_option(f, "--earlier EPOCHS,MINUTES", "epochs and minutes of earlier stages whose "
                                                "history.csv is no longer kept, as their own card "
                                                "recorded them: added to the training time, not "
                                                "to the curves");
    help_option(f, "-h, --help", "print this help and exit");
}

#define CARD_MAX_RUNS 8
#define CARD_MAX_EPOCHS 2048

/* The epochs of every run, in order: what the curves and the training time
 * are drawn from. */
typedef struct {
    double loss[CARD_MAX_EPOCHS], acc[CARD_MAX_EPOCHS], val[CARD_MAX_EPOCHS];
    int n;
    int run_epochs[CARD_MAX_RUNS];
    double run_seconds[CARD_MAX_RUNS];
} card_history;

/* Appends RUNDIR/history.csv (epoch,loss,accuracy,val_accuracy,lr,seconds). */
static int read_history(card_history *h, int run, const char *dir, char *err, size_t errlen)
{
    char path[4096], line[512];
    snprintf(path, sizeof path, "%s/history.csv", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: the --run directory must hold the trainer's "
                              "history.csv", path);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        int ep;
        double loss, acc, val, lr, secs;
        if (sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf", &ep, &loss, &acc, &val, &lr, &secs) != 6)
            continue; /* the header */
        if (h->n == CARD_MAX_EPOCHS) break;
        h->loss[h->n] = loss;
        h->acc[h->n] = acc;
        h->val[h->n] = val;
        h->n++;
        h->run_epochs[run]++;
        h->run_seconds[run] += secs;
    }
    fclose(f);
    if (!h->run_epochs[run]) {
        snprintf(err, errlen, "%s has no epochs", path);
        return -1;
    }
    return 0;
}

/* The same chart as the trainer's curves.svg, over every run. */
static int write_curves(const char *path, card_history *h, int nruns)
{
    static double loss[CARD_MAX_EPOCHS];
    double lmax = 0.1;
    for (int i = 0; i < h->n; i++)
        if (h->loss[i] > lmax) lmax = h->loss[i];
    for (int i = 0; i < h->n; i++) loss[i] = h->loss[i] / lmax;
    svg_series ser[3] = {{"train accuracy", "#1f77b4", h->acc, h->n},
                         {"validation accuracy", "#d62728", h->val, h->n},
                         {"train loss (scaled to its max)", "#7f7f7f", loss, h->n}};
    return svg_line_chart(path, nruns > 1 ? "Training curves (all stages, in order)"
                                          : "Training curves",
                          "epoch", "accuracy", ser, 3, 0, 1);
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

/* Class imbalance, measured on the served path: argmax of p_k / prior_k^tau
 * (post-hoc logit adjustment, Menon et al. 2021; tau 0 = as trained, tau 1 =
 * as if the classes were balanced), prior_k from the training labels. */
static void write_prior_table(FILE *f, const float *probs, const uint8_t *labels, int n,
                              const uint8_t *train_labels, int n_train, int K)
{
    static const double taus[] = {0, 0.25, 0.5, 0.75, 1};
    double prior[DS_NUM_CLASSES] = {0};
    for (int i = 0; i < n_train; i++) prior[train_labels[i]] += 1.0 / n_train;
    fprintf(f, "\n## Class imbalance\n\n"
               "Training images per class:");
    for (int k = 0; k < K; k++)
        fprintf(f, "%s %s %.0f", k ? "," : "", ds_class_names[k], prior[k] * n_train);
    fprintf(f, ". The served probabilities divided by each class's training share to the "
               "power tau before the argmax (tau 0: as trained and served; 1: as if every class "
               "were equally common), on PublicTest:\n\n"
               "| tau | accuracy | mean recall |");
    for (int k = 0; k < K; k++) fprintf(f, " %s recall |", ds_class_names[k]);
    fprintf(f, "\n|---:|---:|---:|");
    for (int k = 0; k < K; k++) fprintf(f, "---:|");
    fprintf(f, "\n");
    for (size_t t = 0; t < sizeof taus / sizeof taus[0]; t++) {
        int hit[DS_NUM_CLASSES] = {0}, tot[DS_NUM_CLASSES] = {0}, correct = 0;
        for (int i = 0; i < n; i++) {
            int best = 0;
            double bv = -1;
            for (int k = 0; k < K; k++) {
                double v = probs[(size_t)i * K + k] / pow(prior[k] > 0 ? prior[k] : 1, taus[t]);
                if (v > bv) { bv = v; best = k; }
            }
            tot[labels[i]]++;
            if (best == labels[i]) { hit[labels[i]]++; correct++; }
        }
        double mean = 0;
        for (int k = 0; k < K; k++) mean += tot[k] ? (double)hit[k] / tot[k] / K : 0;
        fprintf(f, "| %.2f | %.2f%% | %.2f%% |", taus[t], 100.0 * correct / (n ? n : 1), 100 * mean);
        for (int k = 0; k < K; k++) fprintf(f, " %.1f%% |", tot[k] ? 100.0 * hit[k] / tot[k] : 0);
        fprintf(f, "\n");
    }
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
    const char *runs[CARD_MAX_RUNS];
    int nruns = 0, earlier_epochs = 0;
    double earlier_minutes = 0;
    const char *earlier = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { cmd_card_usage(stdout); return 0; }
        if (!strcmp(argv[i], "--earlier") && i + 1 < argc) {
            char tail = 0;
            earlier = argv[++i];
            if (sscanf(earlier, "%d,%lf%c", &earlier_epochs, &earlier_minutes, &tail) != 2 ||
                earlier_epochs < 1 || earlier_epochs > 100000 || !(earlier_minutes > 0) ||
                earlier_minutes > 1e7) {
                fprintf(stderr, "emotiond card: --earlier takes EPOCHS,MINUTES (e.g. 50,224.9), "
                                "not '%s'\n", earlier);
                return 2;
            }
            continue;
        }
        if (!strcmp(argv[i], "--run") && i + 1 < argc) {
            if (nruns == CARD_MAX_RUNS) {
                fprintf(stderr, "emotiond card: at most %d --run directories\n", CARD_MAX_RUNS);
                return 2;
            }
            run = runs[nruns++] = argv[++i];
            continue;
        }
        const char **dst = !strcmp(argv[i], "--model") ? &model_path
                           : !strcmp(argv[i], "--data") ? &data
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
    float *probs = NULL;
    ds_dataset tr = {0};
    int rc = 1;
    FILE *f = NULL;
    card_history *hist = calloc(1, sizeof *hist);
    if (!hist) { snprintf(err, sizeof err, "out of memory"); goto fail; }
    for (int r = 0; r < nruns; r++)
        if (read_history(hist, r, runs[r], err, sizeof err)) goto fail;
    if (nn_model_load(model_path, &m, err, sizeof err)) goto fail;
    snprintf(path, sizeof path, "%s/test", data);
    if (ds_load_folder(&va, path, NULL, NULL, err, sizeof err)) goto fail;
    const int K = DS_NUM_CLASSES, threads = omp_get_num_procs();
    /* every test-time augmentation mode, indexed by its NN_TTA_* flags, in
     * fp32 and int8 where this CPU runs it (AVX-512 VNNI); fp16 only in the
     * served mode, where it is what int8 falls back to (nn_precision_served) */
    enum { N_TTA = 4, N_PREC = 3 };
    static int confs[N_PREC][N_TTA][DS_NUM_CLASSES * DS_NUM_CLASSES];
    double accs[N_PREC][N_TTA], lats[N_PREC][N_TTA];
    int have_int8 = 0;
    svc_config defaults; /* what `emotiond serve` does unless configured otherwise */
    cfg_defaults(&defaults);
    const int served = (defaults.tta ? NN_TTA_FLIP : 0) | (defaults.tta_crops ? NN_TTA_CROPS : 0);
    const int served_prec = nn_precision_served((nn_precision)defaults.precision);
    if (!(probs = malloc(sizeof *probs * (size_t)va.n * DS_NUM_CLASSES))) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    for (int p = 0; p < N_PREC; p++) {
        const int served_only = p == NN_PRECISION_FP16; /* see above */
        if (served_only && p != served_prec) continue;
        if ((int)nn_model_set_precision(m, (nn_precision)p) != p) continue;
        if (p == NN_PRECISION_INT8) have_int8 = 1;
        for (int t = 0; t < N_TTA; t++) {
            if (served_only && t != served) continue;
            /* the served mode's probabilities */
            if (nn_evaluate(m, va.pixels, va.labels, va.n, t, threads, confs[p][t],
                            t == served && p == served_prec ? probs : NULL, err, sizeof err))
                goto fail;
            accs[p][t] = nn_confusion_accuracy(confs[p][t], K);
            lats[p][t] = latency_ms(m, va.pixels, t);
        }
    }
    nn_model_set_precision(m, NN_PRECISION_FP32);
    /* a CPU without VNNI serves int8 as fp16 (or fp32), and so does this card */
    const int *conf = confs[NN_PRECISION_FP32][NN_TTA_NONE];
    const int *conf_served = confs[served_prec][served];
    double acc = accs[NN_PRECISION_FP32][NN_TTA_NONE];
    double acc_tta = accs[NN_PRECISION_FP32][NN_TTA_FLIP];
    double acc_served = accs[served_prec][served];
    meta = json_loads(nn_model_meta_json(m), 0, NULL);

    snprintf(path, sizeof path, "%s/confusion.svg", out);
    char title[128];
    snprintf(title, sizeof title, "PublicTest confusion, as served (%s TTA, %s)",
             nn_tta_name(served), nn_precision_name(served_prec));
    svg_confusion(path, title, conf_served, K, ds_class_names);
    snprintf(path, sizeof path, "%s/curves.svg", out);
    if (write_curves(path, hist, nruns)) { snprintf(err, sizeof err, "cannot write %s", path); goto fail; }
    snprintf(path, sizeof path, "%s/README.md", out);
    if (!(f = fopen(path, "w"))) { snprintf(err, sizeof err, "cannot write %s", path); goto fail; }

    const char *cmd = json_string_value(json_object_get(meta, "command"));
    double secs = earlier ? earlier_minutes * 60 : 0;
    char stages[512] = "", runargs[2048] = "";
    size_t so = 0, ro = 0;
    if (earlier) {
        so += (size_t)snprintf(stages, sizeof stages, "%d epochs, %.1f min in earlier stages "
                               "(their card; history.csv not kept); then ", earlier_epochs,
                               earlier_minutes);
        ro += (size_t)snprintf(runargs, sizeof runargs, " --earlier %s", earlier);
    }
    for (int r = 0; r < nruns; r++) {
        secs += hist->run_seconds[r];
        so += (size_t)snprintf(stages + so, so < sizeof stages ? sizeof stages - so : 0,
                               "%s%d epochs, %.1f min", r ? "; then " : "",
                               hist->run_epochs[r], hist->run_seconds[r] / 60);
        ro += (size_t)snprintf(runargs + ro, ro < sizeof runargs ? sizeof runargs - ro : 0,
                               " --run %s", runs[r]);
    }
    fprintf(f, "# Default model: `%s`\n\n", nn_model_arch_name(m));
    fprintf(f, "Generated by `emotiond card --model %s --data %s%s --out %s`; do not edit by hand.\n\n",
            model_path, data, runargs, out);
    fprintf(f, "| | |\n|---|---|\n");
    fprintf(f, "| architecture | `%s` (see `config/arch/%s.json`; stored inside the model file) |\n",
            nn_model_arch_name(m), nn_model_arch_name(m));
    fprintf(f, "| parameters | %zu (including batch-norm running statistics) |\n", nn_model_num_params(m));
    fprintf(f, "| forward FLOPs per image | %.1f M |\n", nn_model_flops(m) / 1e6);
    fprintf(f, "| input | %dx%d grayscale, scaled to [0,1] |\n", nn_model_input_size(m), nn_model_input_size(m));
    fprintf(f, "| training data | FER2013 train, %lld images |\n",
            (long long)json_integer_value(json_object_get(meta, "train_images")));
    /* emotiond swa writes {"models": M, "bn_images": N}: the model is the mean
     * of M snapshots, not one epoch's weights */
    json_t *swa = json_object_get(meta, "swa");
    if (json_is_object(swa))
        fprintf(f, "| epochs | %d in %d stage%s (%s); this model is the mean of the weights of "
                   "%lld epoch snapshots of the last stage (`emotiond swa`), with batch-norm "
                   "statistics measured again on %lld training images |\n",
                hist->n + earlier_epochs, nruns + (earlier != NULL),
                nruns + (earlier != NULL) > 1 ? "s" : "", stages,
                (long long)json_integer_value(json_object_get(swa, "models")),
                (long long)json_integer_value(json_object_get(swa, "bn_images")));
    else if (nruns + (earlier != NULL) > 1)
        fprintf(f, "| epochs | %d in %d stages (%s); the last stage started from the previous "
                   "stage's best model (`--init`) and its best epoch, %lld, is this model |\n",
                hist->n + earlier_epochs, nruns + (earlier != NULL), stages,
                (long long)json_integer_value(json_object_get(meta, "best_epoch")));
    else
        fprintf(f, "| epochs | %lld (best at epoch %lld) |\n",
                (long long)json_integer_value(json_object_get(meta, "epochs")),
                (long long)json_integer_value(json_object_get(meta, "best_epoch")));
    fprintf(f, "| training wall time | %.1f min on 2 cores, every epoch of every stage (the "
               "runs' history.csv%s) |\n", secs / 60, earlier ? ", and --earlier" : "");
    fprintf(f, "| trained on | %s |\n", json_string_value(json_object_get(meta, "date")) ?: "?");
    fprintf(f, "| **PublicTest accuracy, as served** | **%.2f%%** (%d images; `%s` TTA, %s; "
               "`emotiond eval --tta %s --precision %s`) |\n", 100 * acc_served, va.n,
            nn_tta_name(served), nn_precision_name(served_prec), nn_tta_name(served),
            nn_precision_name(served_prec));
    fprintf(f, "| PublicTest accuracy, one view, fp32 | %.2f%% |\n", 100 * acc);
    fprintf(f, "| PublicTest accuracy, flip TTA, fp32 | %.2f%% |\n", 100 * acc_tta);
    fprintf(f, "| latency, 1 image, 1 thread, as served | %.2f ms (one view fp32: %.2f ms) |\n",
            lats[served_prec][served], lats[NN_PRECISION_FP32][NN_TTA_NONE]);
    fprintf(f, "| served defaults | `tta` %s, `tta_crops` %s, `precision` %s |\n\n",
            defaults.tta ? "true" : "false", defaults.tta_crops ? "true" : "false",
            nn_precision_name(defaults.precision));
    fprintf(f, "## Test-time augmentation and precision\n\n"
               "Each mode averages the probabilities of its views (`emotiond eval --tta MODE "
               "--precision P`; in the service, the settings `tta` = flip, `tta_crops` = crops "
               "and `precision`). Latency: one image through the served path, one thread, "
               "median of 51. int8 needs AVX-512 VNNI%s.\n\n",
            have_int8 ? "" : " (this CPU has none: its columns are empty)");
    fprintf(f, "| mode | views | fp32 accuracy | gain | fp32 latency | int8 accuracy | int8 latency |\n"
               "|---|---:|---:|---:|---:|---:|---:|\n");
    for (int t = 0; t < N_TTA; t++) {
        char a8[32] = "n/a", l8[32] = "n/a";
        if (have_int8) {
            snprintf(a8, sizeof a8, "%.2f%%", 100 * accs[NN_PRECISION_INT8][t]);
            snprintf(l8, sizeof l8, "%.2f ms", lats[NN_PRECISION_INT8][t]);
        }
        fprintf(f, "| `%s`%s | %d | %.2f%% | %+.2f | %.2f ms | %s | %s |\n", nn_tta_name(t),
                t == served ? " (served)" : "",
                (t & NN_TTA_FLIP ? 2 : 1) * (t & NN_TTA_CROPS ? 5 : 1),
                100 * accs[NN_PRECISION_FP32][t],
                100 * (accs[NN_PRECISION_FP32][t] - acc), lats[NN_PRECISION_FP32][t], a8, l8);
    }
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
    fprintf(f, "\n## Per class, PublicTest, as served (`%s` TTA, %s)\n\n"
               "![confusion matrix](confusion.svg)\n\n", nn_tta_name(served),
            nn_precision_name(served_prec));
    write_table(f, conf_served, K);
    snprintf(path, sizeof path, "%s/train", data);
    if (ds_load_folder(&tr, path, NULL, NULL, err, sizeof err)) goto fail;
    write_prior_table(f, probs, va.labels, va.n, tr.labels, tr.n, K);
    fprintf(f, "\nThe PrivateTest half of FER2013 is held back and scored independently with\n"
               "`emotiond eval --model models/default.emod --data DIR`.\n");
    if (fclose(f)) { f = NULL; snprintf(err, sizeof err, "cannot write %s", path); goto fail; }
    f = NULL;
    printf("wrote %s/README.md: PublicTest %.2f%% (flip TTA %.2f%%; as served, %s TTA %s, "
           "%.2f%%)\n", out, 100 * acc, 100 * acc_tta, nn_tta_name(served),
           nn_precision_name(served_prec), 100 * acc_served);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "emotiond card: %s\n", err);
out:
    if (f) fclose(f);
    json_decref(meta);
    free(hist);
    ds_free(&va);
    nn_model_free(m);
    free(probs);
    ds_free(&tr);
    return rc;
}
