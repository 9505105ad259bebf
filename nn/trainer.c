/* trainer.c - one training step: forward in training mode, softmax
 * cross-entropy, backward through every layer, optimizer update.
 *
 * Like llm.c, the gradients and the optimizer state mirror the parameter
 * array (one allocation each), and every layer keeps its own output so the
 * backward pass can read it. The batch is split across threads
 * (trainer_internal.h); on two cores this beats threading each GEMM, whose
 * per-call synchronisation costs more than the small convolutions here gain. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trainer_internal.h"

void nn_optim_cfg_default(nn_optim_cfg *c, nn_optimizer opt)
{
    memset(c, 0, sizeof *c);
    c->optimizer = opt;
    c->momentum = 0.9f;
    c->nesterov = 1;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = opt == NN_OPT_ADAM ? 1e-7f : 1e-8f; /* 1e-7: Keras' Adam default */
}

/* A batch norm followed by a ReLU runs as one layer in training: the forward
 * pass writes ReLU(BN(x)) straight into the ReLU's activation, and the backward
 * pass masks the gradient inside the batch norm's own passes. This saves two
 * full passes over the activation each way; the arithmetic is unchanged. */
static int bn_feeds_relu(const nn_model *m, int i)
{
    return i >= 0 && i + 1 < m->n_layers && m->layers[i].type == L_BN &&
           m->layers[i + 1].type == L_RELU;
}

/* A 2x2 max pooling right after a fused batch norm + ReLU (layer i) runs
 * inside the batch norm's last pass (bn_apply_relu_maxpool): the ReLU's
 * full-size output, which nothing else reads (the batch norm's backward
 * pass takes its mask from x, the pooling's from argmax), is never written.
 * i is the batch norm's index. */
static int bn_relu_feeds_pool(const nn_model *m, int i)
{
    return bn_feeds_relu(m, i) && i + 2 < m->n_layers && m->layers[i + 2].type == L_MAXPOOL;
}

/* A convolution followed by batch norm in training gets no bias gradient:
 * batch norm subtracts the batch mean of every channel, so its input
 * gradient sums to zero over the batch in every channel (sum of
 * gamma/sigma (dy - mean(dy) - xhat mean(dy xhat)) with sum(xhat) = 0), and
 * that sum is the bias gradient. It stays at the zero the step starts with,
 * and the pass over the layer's output gradient that would sum it is saved. */
static int conv_feeds_bn(const nn_model *m, int i)
{
    return i + 1 < m->n_layers && m->layers[i].type == L_CONV && m->layers[i + 1].type == L_BN;
}

/* Layers whose output buffer training never writes: flatten (a no-op in
 * NHWC), a batch norm fused with its ReLU (it writes the ReLU's buffer), and
 * that ReLU when a max pooling follows too (bn_relu_feeds_pool) */
static int output_unwritten(const nn_model *m, int i)
{
    return m->layers[i].type == L_FLATTEN || bn_feeds_relu(m, i) ||
           (i >= 1 && bn_relu_feeds_pool(m, i - 1));
}

static int replica_alloc(nn_replica *r, const nn_model *m, int nb, int own_grads)
{
    if (own_grads && !(r->grads = calloc(m->n_params ? m->n_params : 1, sizeof(float))))
        return -1;
    /* every layer output that is written gets its own buffer */
    size_t total = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (!output_unwritten(m, i)) total += m->layers[i].out_size;
    r->act_mem = malloc(sizeof(float) * total * nb);
    r->gbuf[0] = malloc(sizeof(float) * m->max_act * nb);
    r->gbuf[1] = malloc(sizeof(float) * m->max_act * nb);
    r->dlogits = malloc(sizeof(float) * (size_t)m->num_classes * nb);
    if (!r->act_mem || !r->gbuf[0] || !r->gbuf[1] || !r->dlogits) return -1;
    size_t off = 0, rows = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer *L = &m->layers[i];
        if (!output_unwritten(m, i)) {
            r->act[i] = r->act_mem + off;
            off += L->out_size * nb;
        }
        if (L->type == L_BN && !(r->bn_save[i] = malloc(sizeof(float) * 2 * L->in_c)))
            return -1;
        if (L->type == L_MAXPOOL && !(r->argmax[i] = malloc(L->out_size * nb))) return -1;
        if (L->type == L_DROPOUT && !(r->mask[i] = malloc(sizeof(float) * L->out_size * nb)))
            return -1;
        if (L->type == L_CONV) {
            size_t rr = nn_conv_chunk_images(L, nb) * L->out_h * L->out_w;
            if (rr > rows) rows = rr;
        }
    }
    r->col_rows = rows;
    r->col = malloc(sizeof(float) * (rows * (m->max_col_k ? m->max_col_k : 1) + 1));
    if (!r->col) return -1;
    size_t wino = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer *L = &m->layers[i];
        if (!nn_wino_eligible(L)) continue;
        const size_t need[2] = {nn_wino_scratch_floats(L, nn_wino_tile(L, 0), nb),
                                nn_wino_grad_scratch_floats(L, nb)};
        for (int k = 0; k < 2; k++)
            if (need[k] > wino) wino = need[k];
    }
    if (wino && !(r->wino_scratch = malloc(sizeof(float) * wino))) return -1;
    return 0;
}

/* The transformed weights of every Winograd layer, each thread of the step's
 * parallel region doing every n-th layer. */
static void wino_refresh(nn_trainer *t, int tid, int n)
{
    if (t->wino_off) return;
    const nn_model *m = t->m;
    int k = 0;
    for (int i = 0; i < m->n_layers; i++) {
        if (!t->wino_u[i]) continue;
        const nn_layer *L = &m->layers[i];
        const float *W = m->params + L->p_off;
        if (k++ % n == tid) nn_wino_pack(L, nn_wino_tile(L, 0), W, t->wino_u[i]);
        if (k++ % n == tid) nn_wino_pack_turned(L, W, t->wino_ut[i]);
    }
}

/* floats of one set of a layer's transformed filters, padded to 64 bytes;
 * a layer holds two: the forward pass's, then the input gradient's */
static size_t wino_floats(const nn_layer *L)
{
    return (nn_wino_weight_floats(L, nn_wino_tile(L, 0)) + 15) / 16 * 16;
}

static int wino_alloc(nn_trainer *t)
{
    const nn_model *m = t->m;
    size_t total = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (nn_wino_eligible(&m->layers[i])) total += 2 * wino_floats(&m->layers[i]);
    if (!total) return 0;
    if (!(t->wino_mem = malloc(sizeof(float) * total))) return -1;
    float *w = t->wino_mem;
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer *L = &m->layers[i];
        if (!nn_wino_eligible(L)) continue;
        t->wino_u[i] = w;
        t->wino_ut[i] = w + wino_floats(L);
        w += 2 * wino_floats(L);
    }
    return 0;
}

static void replica_free(nn_replica *r)
{
    for (int i = 0; i < NN_MAX_LAYERS; i++) {
        free(r->argmax[i]);
        free(r->mask[i]);
        free(r->bn_save[i]);
    }
    free(r->grads); free(r->act_mem); free(r->gbuf[0]); free(r->gbuf[1]);
    free(r->dlogits); free(r->col); free(r->wino_scratch);
}

/* The ranges the optimizer updates: weights with their L2 factor, biases and
 * batch-norm gamma/beta without; the running statistics are not parameters. */
static void build_ranges(nn_trainer *t)
{
    const nn_model *m = t->m;
    t->n_ranges = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer *L = &m->layers[i];
        if (L->type == L_CONV || L->type == L_DENSE) {
            size_t nw = L->p_count - L->out_c;
            /* Keras' l2(f) adds f*sum(w^2) to the loss: gradient 2*f*w */
            t->ranges[t->n_ranges++] = (nn_prange){L->p_off, nw, 2.0f * L->l2 + t->cfg.weight_decay};
            t->ranges[t->n_ranges++] = (nn_prange){L->p_off + nw, (size_t)L->out_c, 0.0f};
        } else if (L->type == L_BN) {
            t->ranges[t->n_ranges++] = (nn_prange){L->p_off, 2 * (size_t)L->in_c, 0.0f};
        }
    }
}

nn_trainer *nn_trainer_create(nn_model *m, int max_batch, const nn_optim_cfg *cfg,
                              uint64_t seed)
{
    if (max_batch < 1) return NULL;
    nn_trainer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->m = m;
    t->max_batch = max_batch;
    t->cfg = *cfg;
    t->rng = seed ^ 0xD1B54A32D192ED03ull;
    int n = omp_get_max_threads();
    if (n > NN_MAX_THREADS) n = NN_MAX_THREADS;
    if (n > max_batch) n = max_batch;
    t->n_rep = n < 1 ? 1 : n;
    const size_t np = m->n_params ? m->n_params : 1;
    t->opt_m = calloc(np, sizeof(float));
    t->opt_v = calloc(np, sizeof(float));
    if (!t->opt_m || !t->opt_v) goto err;
    int per = (max_batch + t->n_rep - 1) / t->n_rep;
    for (int r = 0; r < t->n_rep; r++)
        if (replica_alloc(&t->rep[r], m, per, 1)) goto err;
    t->grads = t->rep[0].grads;
    if (wino_alloc(t)) goto err;
    t->max_c = 1;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].type == L_BN && m->layers[i].in_c > t->max_c) t->max_c = m->layers[i].in_c;
    t->bn_part = malloc(sizeof(double) * 2 * t->n_rep * 2 * t->max_c);
    if (!t->bn_part) goto err;
    build_ranges(t);
    return t;
err:
    nn_trainer_free(t);
    return NULL;
}

void nn_trainer_free(nn_trainer *t)
{
    if (!t) return;
    for (int r = 0; r < NN_MAX_THREADS; r++) replica_free(&t->rep[r]);
    free(t->opt_m); free(t->opt_v); free(t->bn_part); free(t->wino_mem);
    free(t);
}

/* ---- batch norm across replicas --------------------------------------------
 * Called by every replica inside the parallel region. Partial sums go to one
 * of two alternating sets, so a fast thread starting the next batch-norm layer
 * never overwrites sums a slow thread is still reading. */
typedef struct {
    int tid, n_rep;
    int batch;        /* images in the whole batch, all replicas together */
    int set;          /* alternates 0/1 per batch-norm call */
} bn_sync;

static double *part(nn_trainer *t, bn_sync *s, int rep, int which)
{
    return t->bn_part + (((size_t)s->set * t->n_rep + rep) * 2 + which) * t->max_c;
}

static void sum_parts(nn_trainer *t, bn_sync *s, int which, int C, double *out)
{
    memset(out, 0, sizeof(double) * C);
    for (int r = 0; r < s->n_rep; r++) { /* fixed order: reproducible */
        const double *p = part(t, s, r, which);
        for (int c = 0; c < C; c++) out[c] += p[c];
    }
}

/* out = BN(in), or ReLU(BN(in)) when relu is set (the following ReLU layer is
 * then skipped: see bn_feeds_relu); with argmax (then relu too) out is the
 * 2x2 max pooling of that and argmax the pooling's, B the images
 * (bn_relu_feeds_pool). */
static void bn_train_forward(nn_trainer *t, bn_sync *s, int li, const float *in, float *out,
                             size_t N, int relu, uint8_t *argmax, int B)
{
    const nn_layer *L = &t->m->layers[li];
    const int C = L->in_c;
    const size_t n_total = (size_t)s->batch * L->in_h * L->in_w;
    float *gamma = t->m->params + L->p_off, *beta = gamma + C;
    float *run_mean = beta + C, *run_var = run_mean + C;
    double tot[4096];
    float mean[4096], a[4096], sh[4096];

    bn_partial_sum(in, N, C, part(t, s, s->tid, 0));
    #pragma omp barrier
    sum_parts(t, s, 0, C, tot);
    for (int c = 0; c < C; c++) mean[c] = (float)(tot[c] / (double)n_total);
    bn_partial_sqdev(in, N, C, mean, part(t, s, s->tid, 1));
    #pragma omp barrier
    sum_parts(t, s, 1, C, tot);
    for (int c = 0; c < C; c++) {
        double var = tot[c] / (double)n_total;
        float invstd = (float)(1.0 / sqrt(var + L->eps));
        a[c] = invstd * gamma[c];
        sh[c] = beta[c] - mean[c] * a[c];
        t->rep[s->tid].bn_save[li][c] = mean[c];
        t->rep[s->tid].bn_save[li][C + c] = invstd;
        if (s->tid == 0) {
            double unbiased = n_total > 1 ? tot[c] / (double)(n_total - 1) : var;
            run_mean[c] = (1 - L->momentum) * run_mean[c] + L->momentum * mean[c];
            run_var[c] = (float)((1 - L->momentum) * run_var[c] + L->momentum * unbiased);
        }
    }
    s->set ^= 1;
    if (argmax)
        bn_apply_relu_maxpool(&t->m->layers[li + 2], in, out, argmax, a, sh, B);
    else if (relu)
        bn_apply_relu(in, out, a, sh, N, C);
    else
        bn_apply(in, out, a, sh, N, C);
}

/* relu: a ReLU follows, fused (bn_feeds_relu) */
static void bn_train_backward(nn_trainer *t, bn_sync *s, int li, const float *in,
                              const float *dy, int relu, float *dx, float *grads, size_t N)
{
    const nn_layer *L = &t->m->layers[li];
    const int C = L->in_c;
    const size_t n_total = (size_t)s->batch * L->in_h * L->in_w;
    const float *gamma = t->m->params + L->p_off;
    double sdy[4096], sdyx[4096];
    const float *beta = gamma + C;
    float mean[4096], k1[4096], k2[4096], k3[4096], a[4096], sh[4096];

    /* each replica saved the same statistics in its own copy: no sharing */
    const float *save = t->rep[s->tid].bn_save[li];
    memcpy(mean, save, sizeof(float) * C);
    /* the forward pass's scale and shift, computed as it did (the parameters
     * change only after the backward pass): the fused ReLU's mask */
    for (int c = 0; c < C; c++) {
        a[c] = save[C + c] * gamma[c];
        sh[c] = beta[c] - mean[c] * a[c];
    }
    const float *ra = relu ? a : NULL, *rs = relu ? sh : NULL;
    bn_backward_partial(in, dy, ra, rs, mean, N, C, part(t, s, s->tid, 0), part(t, s, s->tid, 1));
    #pragma omp barrier
    sum_parts(t, s, 0, C, sdy);
    sum_parts(t, s, 1, C, sdyx);
    const float Nf = (float)n_total;
    for (int c = 0; c < C; c++) {
        const float invstd = save[C + c];
        const float db = (float)sdy[c], dg = (float)(sdyx[c] * invstd);
        if (s->tid == 0) {
            grads[L->p_off + C + c] += db;  /* dbeta */
            grads[L->p_off + c] += dg;      /* dgamma */
        }
        /* dx = gamma*invstd/N * (N*dy - dbeta - xhat*dgamma) */
        const float g = gamma[c] * invstd;
        k1[c] = g;
        k2[c] = -g * dg * invstd / Nf;
        k3[c] = -g * db / Nf - k2[c] * mean[c];
    }
    s->set ^= 1;
    if (dx) bn_backward_apply(in, dy, ra, rs, k1, k2, k3, dx, N, C);
}

/* ---- one replica ---------------------------------------------------------- */

static const float *forward_train(nn_trainer *t, nn_replica *r, bn_sync *s, const float *x, int B)
{
    nn_model *m = t->m;
    const float *in = x;
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer *L = &m->layers[i];
        float *p = m->params + L->p_off;
        float *out = r->act[i];
        const size_t n = L->out_size * B;
        switch (L->type) {
        case L_CONV:
            if (!t->wino_off && t->wino_u[i] && nn_wino_use(L, nn_wino_tile(L, 0), B)) {
                nn_wino_forward(L, nn_wino_tile(L, 0), in, t->wino_u[i],
                                p + L->p_count - L->out_c, 0, out, B, r->wino_scratch);
            } else {
                conv_forward(L, in, p, p + L->p_count - L->out_c, out, B, r->col);
            }
            break;
        case L_BN:
            if (bn_relu_feeds_pool(m, i))
                bn_train_forward(t, s, i, in, r->act[i + 2], n / L->in_c, 1, r->argmax[i + 2], B);
            else if (bn_feeds_relu(m, i))
                bn_train_forward(t, s, i, in, r->act[i + 1], n / L->in_c, 1, NULL, B);
            else
                bn_train_forward(t, s, i, in, out, n / L->in_c, 0, NULL, B);
            break;
        case L_RELU: if (!bn_feeds_relu(m, i - 1)) relu_forward(in, out, n); break;
        case L_ELU: elu_forward(in, out, n); break;
        case L_MAXPOOL: /* unless the batch norm two layers back did it */
            if (!(i >= 2 && bn_relu_feeds_pool(m, i - 2)))
                maxpool_forward(L, in, out, r->argmax[i], B);
            break;
        case L_GAP: gap_forward(L, in, out, B); break;
        case L_DENSE:
            dense_forward(in, p, p + L->p_count - L->out_c, out, B, L->in_c, L->out_c);
            break;
        case L_DROPOUT: dropout_forward(in, out, r->mask[i], n, L->rate, &r->rng); break;
        case L_FLATTEN: out = (float *)in; r->act[i] = out; break;
        }
        in = out;
    }
    return in;
}

static void backward(nn_trainer *t, nn_replica *r, bn_sync *s, const float *x, int B)
{
    nn_model *m = t->m;
    const float *dcur = r->dlogits;
    for (int i = m->n_layers - 1; i >= 0; i--) {
        const nn_layer *L = &m->layers[i];
        const float *in = i ? r->act[i - 1] : x;
        const float *out = r->act[i];
        const float *p = m->params + L->p_off;
        float *g = r->grads + L->p_off;
        const size_t n_in = L->in_size * B;
        const int need_din = i > 0;
        float *din = r->gbuf[dcur == r->gbuf[0] ? 1 : 0];
        switch (L->type) {
        case L_CONV: {
            float *db = conv_feeds_bn(m, i) ? NULL : g + L->p_count - L->out_c;
            if (t->wino_off || !t->wino_u[i] || !nn_wino_use(L, nn_wino_tile(L, 0), B)) {
                conv_backward(L, in, p, dcur, need_din ? din : NULL, g, db, B, r->col);
                break;
            }
            /* Winograd where the forward pass used it: the weight gradient
             * by the same tiles, and the input gradient as the 3x3
             * convolution of dcur with the turned filters */
            if (db) conv_bias_backward(dcur, L->out_size / L->out_c * B, L->out_c, db);
            nn_wino_weight_grad(L, in, dcur, B, g, r->wino_scratch);
            if (need_din) nn_wino_input_grad(L, dcur, t->wino_ut[i], din, B, r->wino_scratch);
            break;
        }
        case L_BN:
            /* every replica must take part in the reduction, even the first layer */
            bn_train_backward(t, s, i, in, dcur, bn_feeds_relu(m, i), need_din ? din : NULL,
                              t->grads, n_in / L->in_c);
            break;
        case L_RELU:
            if (bn_feeds_relu(m, i - 1)) din = (float *)dcur; /* done by the batch norm */
            else if (need_din) relu_backward(out, dcur, din, n_in);
            break;
        case L_ELU: if (need_din) elu_backward(out, dcur, din, n_in); break;
        case L_MAXPOOL: if (need_din) maxpool_backward(L, dcur, r->argmax[i], din, B); break;
        case L_GAP: if (need_din) gap_backward(L, dcur, din, B); break;
        case L_DENSE:
            dense_backward(in, p, dcur, need_din ? din : NULL, g, g + L->p_count - L->out_c,
                           B, L->in_c, L->out_c);
            break;
        case L_DROPOUT: if (need_din) dropout_backward(dcur, r->mask[i], din, n_in); break;
        case L_FLATTEN: din = (float *)dcur; break;
        }
        dcur = din;
    }
}

/* ---- optimizer ------------------------------------------------------------- */

static void update(nn_trainer *t, float *w, const float *g, float *mom, float *vel,
                   size_t n, float decay, float lr)
{
    const nn_optim_cfg *c = &t->cfg;
    if (c->optimizer == NN_OPT_SGD) {
        const float mu = c->momentum;
        for (size_t j = 0; j < n; j++) {
            float gj = g[j] + decay * w[j];
            mom[j] = mu * mom[j] + gj;
            w[j] -= lr * (c->nesterov ? gj + mu * mom[j] : mom[j]);
        }
    } else {
        const float b1 = c->beta1, b2 = c->beta2;
        const float c1 = 1.0f / (1.0f - powf(b1, (float)t->step));
        const float c2 = 1.0f / (1.0f - powf(b2, (float)t->step));
        for (size_t j = 0; j < n; j++) {
            float gj = g[j] + decay * w[j];
            mom[j] = b1 * mom[j] + (1 - b1) * gj;
            vel[j] = b2 * vel[j] + (1 - b2) * gj * gj;
            w[j] -= lr * (mom[j] * c1) / (sqrtf(vel[j] * c2) + c->eps);
        }
    }
}

/* Sums the replicas' gradients and updates the parameters in [lo, hi). */
static void reduce_and_update(nn_trainer *t, size_t lo, size_t hi, float lr)
{
    float *g = t->grads;
    for (int r = 1; r < t->n_rep; r++) {
        const float *gr = t->rep[r].grads;
        for (size_t j = lo; j < hi; j++) g[j] += gr[j];
    }
    float *w = t->m->params;
    for (int i = 0; i < t->n_ranges; i++) {
        const nn_prange *pr = &t->ranges[i];
        size_t a = pr->off > lo ? pr->off : lo;
        size_t b = pr->off + pr->count < hi ? pr->off + pr->count : hi;
        if (a < b)
            update(t, w + a, g + a, t->opt_m + a, t->opt_v + a, b - a, pr->decay, lr);
    }
}

void nn_train_forward_stats(nn_trainer *t, const float *x, int batch)
{
    nn_model *m = t->m;
    if (batch < 1 || batch > t->max_batch) return;
    const int n_rep = batch < t->n_rep ? batch : t->n_rep;
    const size_t in_size = (size_t)m->in_side * m->in_side * m->in_c;
    openblas_set_num_threads(1);
    #pragma omp parallel num_threads(n_rep)
    {
        const int tid = omp_get_thread_num();
        const unsigned fpu = nn_fpu_enter();
        nn_replica *r = &t->rep[tid];
        const int b0 = (int)((long long)batch * tid / n_rep);
        const int nb = (int)((long long)batch * (tid + 1) / n_rep) - b0;
        bn_sync s = {tid, n_rep, batch, 0};
        r->rng = t->rng + 0x9E3779B97F4A7C15ull * (uint64_t)(tid + 1);
        wino_refresh(t, tid, n_rep);
        #pragma omp barrier
        forward_train(t, r, &s, x + (size_t)b0 * in_size, nb);
        nn_fpu_leave(fpu);
    }
    t->rng = nn_rng_next(&t->rng);
    m->gen++; /* new running statistics: inference workspaces refold */
}

float nn_train_step(nn_trainer *t, const float *x, const uint8_t *labels, int batch,
                    float lr, int *correct)
{
    nn_model *m = t->m;
    if (batch < 1 || batch > t->max_batch) return NAN;
    const int n_rep = batch < t->n_rep ? batch : t->n_rep;
    const size_t in_size = (size_t)m->in_side * m->in_side * m->in_c;
    t->step++;
    /* each replica runs its GEMMs on its own core */
    openblas_set_num_threads(1);
    #pragma omp parallel num_threads(n_rep)
    {
        const int tid = omp_get_thread_num();
        const unsigned fpu = nn_fpu_enter(); /* denormals cost 100x: see fpu.c */
        nn_replica *r = &t->rep[tid];
        const int b0 = (int)((long long)batch * tid / n_rep);
        const int nb = (int)((long long)batch * (tid + 1) / n_rep) - b0;
        const float *xs = x + (size_t)b0 * in_size;
        bn_sync s = {tid, n_rep, batch, 0};
        r->rng = t->rng + 0x9E3779B97F4A7C15ull * (uint64_t)(tid + 1);
        memset(r->grads, 0, sizeof(float) * m->n_params);
        wino_refresh(t, tid, n_rep);
        #pragma omp barrier
        const float *logits = forward_train(t, r, &s, xs, nb);
        /* gradients are scaled for the mean over the whole batch */
        r->loss = softmax_xent(logits, labels + b0, r->dlogits, nb, m->num_classes,
                               t->cfg.label_smoothing, batch, &r->correct);
        backward(t, r, &s, xs, nb);
        #pragma omp barrier
        const size_t lo = m->n_params * tid / n_rep, hi = m->n_params * (tid + 1) / n_rep;
        reduce_and_update(t, lo, hi, lr);
        nn_fpu_leave(fpu);
    }
    t->rng = nn_rng_next(&t->rng);
    m->gen++; /* new weights: inference workspaces refold */
    double loss = 0;
    int ok = 0;
    for (int r = 0; r < n_rep; r++) { loss += t->rep[r].loss; ok += t->rep[r].correct; }
    if (correct) *correct = ok;
    return (float)(loss / batch);
}
