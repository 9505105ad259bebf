/* infer_plan.c - the inference pass as a plan of fused steps.
 *
 * In inference a batch norm is an affine map per channel with fixed numbers,
 * so after a conv or dense layer it folds into that layer's weights:
 * W'[o] = W[o] * a[o], b'[o] = b[o] * a[o] + s[o] with a = gamma/sqrt(var+eps)
 * and s = beta - mean * a. A ReLU after it becomes the epilogue of the same
 * pass that adds the bias, and when a 2x2 max pool follows, bias and ReLU move
 * behind the max (max(x + b) = max(x) + b and ReLU is monotonic), so they run
 * on a quarter of the values and the conv output is written once, by the GEMM.
 * Dropout and flatten do nothing in inference and vanish from the plan.
 *
 * The folded weights live in the workspace, built from the model they were
 * computed for; nn_model.gen changes whenever the parameters may have, and the
 * plan is rebuilt when either differs (a training step between two
 * evaluations, a workspace handed another model). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* floats of folded weights the plan for m needs */
static size_t fold_size(const nn_model *m)
{
    size_t n = 0;
    for (int i = 0; i + 1 < m->n_layers; i++) {
        const nn_layer *L = &m->layers[i];
        if ((L->type == L_CONV || L->type == L_DENSE) && m->layers[i + 1].type == L_BN)
            n += L->p_count;
    }
    return n;
}

/* W'[o][k] = W[o][k] * a[o], b'[o] = b[o] * a[o] + s[o] */
static void fold_bn(const nn_layer *L, const float *W, const float *b, const nn_layer *bn,
                    const float *bnp, float *Wf, float *bf)
{
    const int O = L->out_c, C = bn->in_c;
    const size_t K = (L->p_count - O) / O;
    const float *gamma = bnp, *beta = bnp + C, *mean = bnp + 2 * C, *var = bnp + 3 * C;
    for (int o = 0; o < O; o++) {
        const float a = gamma[o] / sqrtf(var[o] + bn->eps), s = beta[o] - mean[o] * a;
        for (size_t k = 0; k < K; k++) Wf[o * K + k] = W[o * K + k] * a;
        bf[o] = b[o] * a + s;
    }
}

int nn_plan_refresh(const nn_model *m, nn_ws *ws)
{
    if (ws->plan_model == m && ws->plan_gen == m->gen) return 0;
    const size_t need = fold_size(m);
    if (need > ws->fold_cap) {
        float *f = realloc(ws->fold, sizeof(float) * need);
        if (!f) return -1;
        ws->fold = f;
        ws->fold_cap = need;
    }
    float *fold = ws->fold;
    int n = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer *L = &m->layers[i];
        if (L->type == L_DROPOUT || L->type == L_FLATTEN) continue;
        nn_step *st = &ws->steps[n++];
        memset(st, 0, sizeof *st);
        st->L = L;
        if (L->type != L_CONV && L->type != L_DENSE) continue;
        const float *p = m->params + L->p_off;
        st->W = p;
        st->b = p + L->p_count - L->out_c;
        if (i + 1 < m->n_layers && m->layers[i + 1].type == L_BN) {
            const nn_layer *bn = &m->layers[i + 1];
            float *Wf = fold, *bf = fold + (L->p_count - L->out_c);
            fold_bn(L, st->W, st->b, bn, m->params + bn->p_off, Wf, bf);
            st->W = Wf;
            st->b = bf;
            fold += L->p_count;
            i++;
        }
        if (i + 1 < m->n_layers && m->layers[i + 1].type == L_RELU) {
            st->relu = 1;
            i++;
        }
        if (L->type == L_CONV && i + 1 < m->n_layers && m->layers[i + 1].type == L_MAXPOOL) {
            /* the pool step takes the bias and the ReLU */
            st->defer = 1;
            nn_step *pool = &ws->steps[n++];
            memset(pool, 0, sizeof *pool);
            pool->L = &m->layers[++i];
            pool->pool_bias = st->b;
            pool->relu = st->relu;
        }
    }
    ws->n_steps = n;
    ws->plan_model = m;
    ws->plan_gen = m->gen;
    return 0;
}
