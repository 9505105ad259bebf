/* train.h - whole training runs: data, augmentation, schedule, evaluation,
 * checkpoints. Used by `emotiond train` and by the service's /train job. */
#ifndef NN_TRAIN_H
#define NN_TRAIN_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "augment.h"
#include "nn.h"

typedef struct nn_train_progress {
    int epoch, epochs;          /* 1-based current epoch */
    int step, steps;            /* within the epoch */
    int end_of_epoch;
    double images_per_s, eta_s, elapsed_s;
    double loss, acc;           /* running means over the epoch so far */
    double val_acc, best_val_acc, lr, epoch_s;
    int best_epoch;
} nn_train_progress;

/* Options. Numeric fields left at NN_UNSET (or NULL strings) take the value of
 * the architecture's "training" block, then the built-in default. */
#define NN_UNSET (-1e30)

typedef struct {
    const char *arch_path;      /* architecture JSON (new run) */
    const char *init_model;     /* start from these weights (fine-tune); optional */
    const char *resume;         /* checkpoint to continue from; optional. The run keeps
                                 * its settings except those set here explicitly */
    const char *data_dir;       /* <data>/train/<class>/..., <data>/test/<class>/... */
    const char *out_dir;        /* checkpoint.emod, best.emod, history.csv, curves.svg */
    double epochs, batch, lr, momentum, nesterov, weight_decay, label_smoothing;
    const char *optimizer;      /* "sgd" | "adam" */
    const char *schedule;       /* "none" | "step" | "cosine" | "plateau" | "cyclic" */
    double step_every, step_gamma;          /* step: lr *= gamma every N epochs */
    double plateau_patience, plateau_factor; /* plateau: on validation accuracy */
    double warmup_epochs, min_lr;
    double flip, shift, rotate, scale, erase; /* augmentation */
    double patience;            /* early stopping: epochs without a better val acc; 0 off */
    double seed, threads;
    double max_train;           /* use only the first N training images (tests) */
    int tta_flip_val;           /* validate with flip averaging */
    int snapshots;              /* also save every epoch's weights as epoch-NNN.emod
                                   (for weight averaging: emotiond swa) */
    const char *command;        /* the command line, recorded in the metadata */
    /* progress: called after every step (end_of_epoch 0) and epoch (1) */
    void (*on_progress)(void *ctx, const struct nn_train_progress *p);
    void *ctx;
    /* set to stop at the next step boundary; atomic because another thread
     * (DELETE /train) or a signal handler sets it while training reads it */
    atomic_int *cancel;
} nn_train_opts;

void nn_train_opts_init(nn_train_opts *o);

/* Runs training; returns 0 when it ran to its end (or early stop), 1 when
 * cancelled (a checkpoint was saved), -1 on error with a message. When a
 * file could not be written (checkpoint, best model), errno is the cause
 * (ENOSPC, EROFS...) on return, so that a service can tell a full disk. */
int nn_train_run(const nn_train_opts *o, char *err, size_t errlen);

/* Accuracy and confusion[K][K] (rows: true class, columns: predicted) of m on
 * n images; probs_out (n*K, may be NULL) receives the probabilities. */
int nn_evaluate(const nn_model *m, const uint8_t *pixels, const uint8_t *labels, int n,
                int tta, int threads, int *confusion, float *probs_out,
                char *err, size_t errlen);
double nn_confusion_accuracy(const int *confusion, int K);

/* Weight averaging (nn/average.c). *out = a new model whose every parameter
 * is the mean of the n models' (which must share one architecture), with the
 * first model's metadata. */
int nn_model_average(nn_model *const *models, int n, nn_model **out, char *err, size_t errlen);
/* Recomputes every batch-norm layer's running mean and variance as the mean of
 * the training-mode statistics of floor(n / batch) batches of the n images
 * (8-bit, side x side); the weights do not change. Needed after averaging. */
int nn_bn_recalibrate(nn_model *m, const uint8_t *pixels, int n, int batch, char *err,
                      size_t errlen);

#endif
