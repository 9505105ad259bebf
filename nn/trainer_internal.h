/* trainer_internal.h - the trainer's state, shared with checkpointing and tests.
 *
 * Training is data-parallel: the batch is split into one slice per thread
 * ("replica"), each running forward and backward on its slice with
 * single-threaded GEMMs and its own buffers. Batch norm reduces its statistics
 * across replicas (so the result equals one thread on the whole batch), and
 * the replicas' gradients are summed before the optimizer step. */
#ifndef NN_TRAINER_INTERNAL_H
#define NN_TRAINER_INTERNAL_H

#include "internal.h"

#define NN_MAX_THREADS 8

typedef struct {
    float *grads;            /* n_params; replica 0's are the trainer's */
    float *act_mem;          /* all layer outputs of this slice */
    float *act[NN_MAX_LAYERS];
    float *bn_save[NN_MAX_LAYERS];  /* batch mean, invstd of each BN layer */
    uint8_t *argmax[NN_MAX_LAYERS]; /* max pooling */
    float *mask[NN_MAX_LAYERS];     /* dropout */
    float *gbuf[2];          /* ping-pong gradients of activations */
    float *dlogits;
    float *col;
    size_t col_rows;
    float *wino_scratch;     /* Winograd convolutions (winograd.c), or NULL */
    uint64_t rng;            /* dropout stream of this slice */
    double loss;
    int correct;
} nn_replica;

/* one parameter range the optimizer updates, with its L2 factor */
typedef struct {
    size_t off, count;
    float decay;
} nn_prange;

struct nn_trainer {
    nn_model *m;
    int max_batch;
    nn_optim_cfg cfg;
    uint64_t rng;            /* seeds the replicas' dropout streams each step */
    long long step;          /* optimizer steps taken (Adam bias correction) */
    int n_rep;
    nn_replica rep[NN_MAX_THREADS];
    float *grads;            /* == rep[0].grads: the summed gradient */
    float *opt_m, *opt_v;    /* SGD velocity / Adam moments, n_params each */
    double *bn_part;         /* [2 sets][n_rep][2][max_c] partial sums */
    int max_c;
    int n_ranges;
    nn_prange ranges[2 * NN_MAX_LAYERS];
    /* 3x3 convs by Winograd: per layer its transformed weights, which serve
     * the forward pass and the input gradient, redone at every step (the
     * weights change); NULL where the layer does not qualify */
    int wino_off;            /* tests and benchmarks: im2col + GEMM only */
    float *wino_mem;
    float *wino_u[NN_MAX_LAYERS];  /* per layer: forward filters, or NULL */
    float *wino_ut[NN_MAX_LAYERS]; /* the input gradient's */
};

/* The forward pass of nn_train_step alone (nn/trainer.c): batch-norm layers
 * use and fold in the batch's statistics with their momentum; no loss, no
 * gradient, no weight changes. For batch-norm recalibration (average.c). */
void nn_train_forward_stats(nn_trainer *t, const float *x, int batch);

#endif
