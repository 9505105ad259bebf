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
 * evaluations, a workspace handed another model).
 *
 * With NN_PRECISION_INT8 (and a CPU that has AVX-512 VNNI) the plan is the
 * same list of steps, and the conv and dense steps whose input is never
 * negative also get their folded weights quantized to int8 (int8.c); they
 * are rebuilt with the rest when the model, its gen or its precision
 * changes. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

#define HUGE_PAGE ((size_t)2 << 20)

/* p, or a 64-byte aligned replacement of need bytes when p holds fewer
 * (contents lost, p freed); NULL when out of memory (p kept). huge: from
 * 2 MB on, aligned to 2 MB and advised into transparent huge pages (where
 * the system lets a program ask: "madvise", Debian's default). That is for
 * Winograd's transformed filters, which a batch-1 pass streams whole: 24 MB
 * for vgg_wide, 6,000 4-KB pages, more than the TLB holds, and the hardware
 * prefetcher stops at each page's end. The 9-row GEMMs of vgg_wide's shapes
 * (a microbenchmark, 4 runs alternated, Zen 3 VM): 1.21-1.70 ms on 4-KB
 * pages, 1.13-1.17 ms on 2-MB ones; vgg_wide batch-1 latency 2.24-2.37 ->
 * 2.18-2.22 ms (best and median of 10 alternated runs), and steadier. */
static void *grow(void *p, size_t *cap, size_t need, int huge)
{
    if (need <= *cap) return p;
    const size_t align = huge && need >= HUGE_PAGE ? HUGE_PAGE : 64;
    const size_t bytes = (need + align - 1) / align * align;
    void *n = NULL;
    if (posix_memalign(&n, align, bytes)) return NULL;
#ifdef MADV_HUGEPAGE
    if (align == HUGE_PAGE) (void)madvise(n, bytes, MADV_HUGEPAGE); /* advice: may be refused */
#endif
    free(p);
    *cap = need;
    return n;
}

/* Marks the conv and dense steps that can run on 8-bit integers and
 * quantizes their weights (int8.c). A step qualifies when its input is never
 * negative: u8 activations have no sign. That holds for the network input
 * when the normalisation keeps 0..255 non-negative, after a ReLU, and after
 * pooling something that held. The last conv or dense step gives the logits
 * and stays fp32: it is small, and the softmax sees its errors undamped. */
static int plan_int8(const nn_model *m, nn_ws *ws)
{
    int last = -1;
    for (int i = 0; i < ws->n_steps; i++)
        if (ws->steps[i].L->type == L_CONV || ws->steps[i].L->type == L_DENSE) last = i;
    int nonneg = m->in_mean <= 0 && m->in_scale >= 0 && m->in_std > 0;
    size_t wbytes = 0, scales = 0, in_bytes = 0, max_o = 0;
    double macs = 0, q8_macs = 0;
    for (int i = 0; i < ws->n_steps; i++) {
        nn_step *st = &ws->steps[i];
        const nn_layer *L = st->L;
        switch (L->type) {
        case L_CONV:
        case L_DENSE: {
            const double mac = L->type == L_DENSE ? (double)L->in_c * L->out_c
                               : (double)L->out_h * L->out_w * L->out_c * L->k * L->k * L->in_c;
            macs += mac;
            if (nonneg && i != last) {
                q8_macs += mac;
                st->q8 = 1;
                nn_q8_geom_of(st->L, &st->qg);
                wbytes += (nn_q8_packed_bytes(&st->qg) + 63) / 64 * 64;
                scales += (size_t)st->qg.O;
                size_t ib = nn_q8_input_bytes(&st->qg);
                if (ib > in_bytes) in_bytes = ib;
                if ((size_t)st->qg.O > max_o) max_o = (size_t)st->qg.O;
            }
            nonneg = st->relu && !st->defer;
            break;
        }
        case L_MAXPOOL: nonneg = st->relu || (nonneg && !st->pool_bias); break;
        case L_RELU: nonneg = 1; break;
        case L_GAP: case L_DROPOUT: case L_FLATTEN: break;
        case L_BN: case L_ELU: nonneg = 0; break;
        }
    }
    if (!wbytes) return 0;
    /* image by image when int8 does most of the work (infer.c); not when
     * fp32 GEMMs do, e.g. behind ELUs, as they gain from a batch */
    ws->plan_q8 = q8_macs >= 0.5 * macs;
    void *qw = grow(ws->q8w, &ws->q8w_cap, wbytes + sizeof(float) * scales, 0);
    if (!qw) return -1;
    ws->q8w = qw;
    uint8_t *qin = grow(ws->q8in, &ws->q8in_cap, in_bytes, 0);
    if (!qin) return -1;
    ws->q8in = qin;
    float *qsc = grow(ws->q8sc, &ws->q8sc_cap, sizeof(float) * max_o, 0);
    if (!qsc) return -1;
    ws->q8sc = qsc;
    int8_t *w = ws->q8w;
    float *sc = (float *)((char *)ws->q8w + wbytes);
    for (int i = 0; i < ws->n_steps; i++) {
        nn_step *st = &ws->steps[i];
        if (!st->q8) continue;
        nn_q8_pack(&st->qg, st->W, w, sc);
        st->qw = w;
        st->qscale = sc;
        w += (nn_q8_packed_bytes(&st->qg) + 63) / 64 * 64;
        sc += st->qg.O;
    }
    return 0;
}

/* Transforms the weights of the fp32 3x3 steps for Winograd (winograd.c),
 * and sizes the scratch for the largest chunk. half (NN_PRECISION_FP16):
 * keeps them in IEEE half floats instead (nn_wino_pack_f16, through a
 * temporary buffer of the largest layer's floats). */
static int plan_wino(nn_ws *ws, int half)
{
    size_t wfloats = 0, scratch = 0, largest = 0;
    for (int i = 0; i < ws->n_steps && !ws->wino_off; i++) {
        const nn_step *st = &ws->steps[i];
        if (st->q8 || !nn_wino_eligible(st->L)) continue;
        const int m = nn_wino_tile(st->L, 1);
        const size_t n = nn_wino_weight_floats(st->L, m);
        wfloats += (n + 31) / 32 * 32; /* every layer's 64-byte aligned as halves too */
        if (n > largest) largest = n;
        const size_t s = nn_wino_scratch_floats(st->L, m, ws->max_batch);
        if (s > scratch) scratch = s;
    }
    /* give back what the other kind of plan held (all of it for an int8 one) */
    if (!wfloats || half) {
        free(ws->wino_w);
        ws->wino_w = NULL;
        ws->wino_w_cap = 0;
    }
    if (!wfloats || !half) {
        free(ws->wino_h);
        ws->wino_h = NULL;
        ws->wino_h_cap = 0;
    }
    if (!wfloats) {
        free(ws->wino_scratch);
        ws->wino_scratch = NULL;
        ws->wino_scratch_cap = 0;
        return 0;
    }
    float *sc = grow(ws->wino_scratch, &ws->wino_scratch_cap, sizeof(float) * scratch, 0);
    if (!sc) return -1;
    ws->wino_scratch = sc;
    float *w = NULL, *tmp = NULL;
    uint16_t *h = NULL;
    if (half) {
        h = grow(ws->wino_h, &ws->wino_h_cap, sizeof(uint16_t) * wfloats, 1);
        if (!h) return -1;
        ws->wino_h = h;
        if (!(tmp = malloc(sizeof(float) * largest))) return -1;
    } else {
        w = grow(ws->wino_w, &ws->wino_w_cap, sizeof(float) * wfloats, 1);
        if (!w) return -1;
        ws->wino_w = w;
    }
    for (int i = 0; i < ws->n_steps; i++) {
        nn_step *st = &ws->steps[i];
        if (st->q8 || !nn_wino_eligible(st->L)) continue;
        const int m = nn_wino_tile(st->L, 1);
        const size_t n = nn_wino_weight_floats(st->L, m);
        st->wino_m = m;
        if (half) {
            nn_wino_pack_f16(st->L, m, st->W, tmp, h);
            st->wino_h = h;
            h += (n + 31) / 32 * 32;
        } else {
            nn_wino_pack(st->L, m, st->W, w);
            st->wino = w;
            w += (n + 31) / 32 * 32;
        }
    }
    free(tmp);
    return 0;
}

int nn_plan_refresh(const nn_model *m, nn_ws *ws)
{
    if (ws->plan_model == m && ws->plan_gen == m->gen && ws->plan_precision == m->precision)
        return 0;
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
    ws->plan_model = NULL; /* until the plan is complete */
    ws->plan_q8 = 0;
    if (m->precision == NN_PRECISION_INT8 && (ws->q8_ref || nn_q8_vnni_available()) &&
        plan_int8(m, ws))
        return -1;
    if (plan_wino(ws, m->precision == NN_PRECISION_FP16)) return -1;
    ws->plan_model = m;
    ws->plan_gen = m->gen;
    ws->plan_precision = m->precision;
    return 0;
}
