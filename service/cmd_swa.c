/* cmd_swa.c - `emotiond swa`: average the weights of training snapshots
 * (stochastic weight averaging), measure the batch-norm statistics of the
 * average again, report its PublicTest accuracy and save it. */
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_help.h"
#include "commands.h"
#include "dataset.h"
#include "train.h"
#include "util.h"

#define SWA_MAX_MODELS 256

void cmd_swa_usage(FILE *f)
{
    fprintf(f, "usage: emotiond swa --data DIR --out FILE [options] MODEL.emod...\n\n");
    help_paragraph(f, "Averages the weights of two or more snapshots of one architecture "
                      "(`emotiond train --snapshots` saves one per epoch), recomputes the "
                      "batch-norm statistics of the average on training images, prints its "
                      "accuracy on DIR/test with and without flip TTA and saves it. The "
                      "snapshots should come from one run at a constant or cyclic learning "
                      "rate: the average of unrelated networks is not a network.");
    fputs("\nOptions:\n", f);
    help_option(f, "--data DIR", "dataset: DIR/train/<class>/ for the statistics, DIR/test/<class>/ "
                                 "for the accuracy (required)");
    help_option(f, "--out FILE", "where to save the averaged model (required)");
    help_option(f, "--bn-images N", "training images for the batch-norm statistics, spread over "
                                    "the whole set [12800]");
    help_option(f, "--batch N", "batch size of those statistics, as in training [64]");
    help_option(f, "-h, --help", "print this help and exit");
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

/* The first snapshot's metadata with this command appended to its commands
 * and the averaged model's own accuracy. */
static char *swa_meta(const nn_model *first, const char *command, int n_models, int bn_images,
                      double acc)
{
    json_t *meta = json_loads(nn_model_meta_json(first), 0, NULL);
    if (!json_is_object(meta)) { json_decref(meta); meta = json_object(); }
    json_t *cmds = json_object_get(meta, "commands");
    if (!json_is_array(cmds)) {
        cmds = json_array();
        json_object_set_new(meta, "commands", cmds);
    }
    json_array_append_new(cmds, json_string(command));
    json_object_set_new(meta, "swa", json_pack("{s:i,s:i}", "models", n_models,
                                               "bn_images", bn_images));
    json_object_set_new(meta, "val_accuracy", json_real(acc));
    char *txt = nn_json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    return txt;
}

int cmd_swa(int argc, char **argv)
{
    const char *data = NULL, *out = NULL, *paths[SWA_MAX_MODELS];
    int n = 0, bn_images = 12800, batch = 64;
    char command[8192];
    size_t co = (size_t)snprintf(command, sizeof command, "emotiond swa");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { cmd_swa_usage(stdout); return 0; }
        if (co < sizeof command)
            co += (size_t)snprintf(command + co, sizeof command - co, " %s", a);
        if (a[0] != '-') {
            if (n == SWA_MAX_MODELS) {
                fprintf(stderr, "emotiond swa: at most %d models\n", SWA_MAX_MODELS);
                return 2;
            }
            paths[n++] = a;
            continue;
        }
        if (strcmp(a, "--data") && strcmp(a, "--out") && strcmp(a, "--bn-images") &&
            strcmp(a, "--batch")) {
            fprintf(stderr, "emotiond swa: unknown option '%s' (see emotiond swa --help)\n", a);
            return 2;
        }
        if (i + 1 >= argc) { fprintf(stderr, "emotiond swa: %s needs a value\n", a); return 2; }
        const char *v = argv[++i];
        if (co < sizeof command)
            co += (size_t)snprintf(command + co, sizeof command - co, " %s", v);
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--bn-images") ? parse_int(v, 1, 1 << 24, &bn_images)
                                            : parse_int(v, 1, 4096, &batch)) {
            fprintf(stderr, "emotiond swa: %s must be a positive whole number\n", a);
            return 2;
        }
    }
    if (!data || !out || n < 2) {
        fprintf(stderr, "emotiond swa: --data, --out and at least two models are required\n");
        cmd_swa_usage(stderr);
        return 2;
    }
    char err[1024], path[4096];
    nn_model *models[SWA_MAX_MODELS] = {0}, *avg = NULL;
    ds_dataset tr = {0}, va = {0};
    uint8_t *sub = NULL;
    char *meta = NULL;
    int rc = 1;
    for (int i = 0; i < n; i++)
        if (nn_model_load(paths[i], &models[i], err, sizeof err)) goto fail;
    if (nn_model_num_classes(models[0]) != DS_NUM_CLASSES || nn_model_input_size(models[0]) != DS_SIDE) {
        snprintf(err, sizeof err, "%s is not a 7-class 48x48 FER model", paths[0]);
        goto fail;
    }
    if (nn_model_average(models, n, &avg, err, sizeof err)) goto fail;
    snprintf(path, sizeof path, "%s/train", data);
    if (ds_load_folder(&tr, path, nn_warn_skip_stderr, NULL, err, sizeof err)) goto fail;
    /* an even spread over the class folders (the files are sorted by class) */
    if (bn_images > tr.n) bn_images = tr.n;
    if (!(sub = malloc((size_t)bn_images * DS_PIXELS))) {
        snprintf(err, sizeof err, "out of memory for %d images", bn_images);
        goto fail;
    }
    for (int i = 0; i < bn_images; i++)
        memcpy(sub + (size_t)i * DS_PIXELS,
               tr.pixels + (size_t)((long long)i * tr.n / bn_images) * DS_PIXELS, DS_PIXELS);
    if (nn_bn_recalibrate(avg, sub, bn_images, batch, err, sizeof err)) goto fail;
    snprintf(path, sizeof path, "%s/test", data);
    if (ds_load_folder(&va, path, nn_warn_skip_stderr, NULL, err, sizeof err)) goto fail;
    const int K = DS_NUM_CLASSES, threads = omp_get_num_procs();
    int conf[DS_NUM_CLASSES * DS_NUM_CLASSES];
    double acc[2];
    for (int t = 0; t < 2; t++) {
        if (nn_evaluate(avg, va.pixels, va.labels, va.n, t ? NN_TTA_FLIP : NN_TTA_NONE, threads,
                        conf, NULL, err, sizeof err))
            goto fail;
        acc[t] = nn_confusion_accuracy(conf, K);
    }
    if (!(meta = swa_meta(models[0], command, n, bn_images, acc[0])) ||
        nn_model_set_meta_json(avg, meta, err, sizeof err)) {
        if (!meta) snprintf(err, sizeof err, "out of memory for the metadata");
        goto fail;
    }
    if (nn_model_save(avg, out, err, sizeof err)) goto fail;
    printf("averaged %d models, batch norm from %d training images: %s accuracy %.2f%% "
           "(flip TTA %.2f%%) on %d images\n", n, batch < bn_images ? bn_images / batch * batch : bn_images,
           out, 100 * acc[0], 100 * acc[1], va.n);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "emotiond swa: %s\n", err);
out:
    free(meta);
    free(sub);
    ds_free(&tr);
    ds_free(&va);
    nn_model_free(avg);
    for (int i = 0; i < n; i++) nn_model_free(models[i]);
    return rc;
}
