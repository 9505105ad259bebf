/* int8.c - int8 inference: weight quantization and packing, the plain-C
 * reference kernels, and the per-image driver (the AVX-512 VNNI kernels are
 * in int8_vnni.c).
 *
 * A conv or dense step whose input is never negative (the network input,
 * a ReLU's output) runs as u8 activations times s8 weights summed in int32:
 * vpdpbusd multiplies 4 unsigned bytes by 4 signed bytes and adds the four
 * products to a 32-bit lane without saturating, so a 3x3x384 kernel row
 * (at most 3456 * 255 * 127 = 1.1e8) cannot overflow.
 *
 * Scales. Weights: symmetric per output channel, max |W[o]| / 127, computed
 * once from the batch-norm-folded weights when the plan is built. Inputs: one
 * scale per image, its max / 255, computed when the image is quantized
 * (dynamic: no calibration data and nothing in the model file). The zero
 * point is 0, so the zero padding of a 'same' convolution is the byte 0 and
 * the kernels read a padded copy of the image without bounds checks.
 *
 * The result is dequantized in the epilogue, (float)sum * (s_in * s_w[o]),
 * then the bias and the ReLU: the step writes fp32 like the fp32 plan, so
 * pooling, batch norm and the tail run unchanged, and the next int8 step
 * quantizes again with the max of what it gets. Both kernels do exactly
 * these float operations in this order, hence the same bits
 * (tests/test_int8.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void nn_q8_geom_of(const nn_layer *L, nn_q8_geom *g)
{
    memset(g, 0, sizeof *g);
    if (L->type == L_DENSE) {
        g->H = g->W = g->OH = g->OW = 1;
        g->C = L->in_c;
        g->k = 1;
    } else {
        g->H = L->in_h;
        g->W = L->in_w;
        g->C = L->in_c;
        g->k = L->k;
        g->pad = L->pad;
        g->OH = L->out_h;
        g->OW = L->out_w;
    }
    g->O = L->out_c;
    g->Hp = g->OH + g->k - 1;
    g->Wp = g->OW + g->k - 1;
    g->kq = (g->k * g->C + 3) / 4;
}

size_t nn_q8_packed_bytes(const nn_q8_geom *g)
{
    return (size_t)((g->O + 15) / 16) * g->k * g->kq * 64;
}

/* A kernel row's last group reads up to 3 bytes past the row's k*C taps
 * (times zero weights); at the image's last pixel that is past its end. */
size_t nn_q8_input_bytes(const nn_q8_geom *g)
{
    return (size_t)g->Hp * g->Wp * g->C + 64;
}

void nn_q8_pack(const nn_q8_geom *g, const float *W, int8_t *qw, float *scale)
{
    const int O = g->O, k = g->k, kq = g->kq, row = k * g->C;
    const size_t K = (size_t)k * row; /* floats per output channel */
    memset(qw, 0, nn_q8_packed_bytes(g));
    for (int o = 0; o < O; o++) {
        const float *w = W + (size_t)o * K;
        float mx = 0;
        for (size_t i = 0; i < K; i++) mx = fmaxf(mx, fabsf(w[i]));
        scale[o] = mx / 127.0f;
        const float inv = mx > 0 ? 127.0f / mx : 0;
        int8_t *blk = qw + (size_t)(o / 16) * k * kq * 64 + (o % 16) * 4;
        for (int ky = 0; ky < k; ky++)
            for (int t = 0; t < row; t++) {
                long q = lrintf(w[(size_t)ky * row + t] * inv);
                q = q > 127 ? 127 : q < -127 ? -127 : q;
                blk[((size_t)ky * kq + t / 4) * 64 + t % 4] = (int8_t)q;
            }
    }
}

/* Rounds to nearest, ties to even (the AVX-512 conversion's mode), for
 * 0 <= v < 2^22, in plain float arithmetic the compiler can vectorise. */
static inline float round_even(float v)
{
    return (v + 12582912.0f) - 12582912.0f; /* 1.5 * 2^23 */
}

float nn_q8_quantize_ref(const nn_q8_geom *g, const float *x, uint8_t *q)
{
    const int W = g->W, C = g->C, Wp = g->Wp, pad = g->pad;
    const size_t n = (size_t)g->H * W * C;
    float mx = 0;
    for (size_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    /* the border (and the slack) stays zero: the image fills the inside */
    memset(q, 0, nn_q8_input_bytes(g));
    const float inv = mx > 0 ? 255.0f / mx : 0;
    for (int y = 0; y < g->H; y++) {
        const float *src = x + (size_t)y * W * C;
        uint8_t *dst = q + ((size_t)(y + pad) * Wp + pad) * C;
        for (int i = 0; i < W * C; i++) {
            float v = round_even(src[i] * inv);
            v = v > 255.0f ? 255.0f : v;
            dst[i] = v > 0 ? (uint8_t)v : 0;
        }
    }
    return mx / 255.0f;
}

/* Slow and plain: the weights unpacked to [O][k][4*kq] first, then one dot
 * product per output and kernel row. Tests only (and the VNNI kernel's
 * definition); the sums are exact, so their order does not matter. */
void nn_q8_conv_ref(const nn_q8_geom *g, const uint8_t *q, const int8_t *qw, const float *sc,
                    const float *bias, int relu, float *out)
{
    const int C = g->C, k = g->k, kq = g->kq, O = g->O, taps = 4 * kq;
    const size_t row_bytes = (size_t)g->Wp * C, per_o = (size_t)k * taps;
    int8_t *w = malloc((size_t)O * per_o);
    if (!w) return; /* tests only: they see the output untouched */
    for (int o = 0; o < O; o++)
        for (int ky = 0; ky < k; ky++)
            for (int t = 0; t < taps; t++)
                w[o * per_o + (size_t)ky * taps + t] =
                    qw[((size_t)(o / 16) * k * kq + (size_t)ky * kq + t / 4) * 64 + (o % 16) * 4 +
                       t % 4];
    for (int oh = 0; oh < g->OH; oh++)
        for (int ow = 0; ow < g->OW; ow++) {
            const uint8_t *a = q + (size_t)oh * row_bytes + (size_t)ow * C;
            float *y = out + ((size_t)oh * g->OW + ow) * O;
            for (int o = 0; o < O; o++) {
                int32_t acc = 0;
                for (int ky = 0; ky < k; ky++) {
                    const uint8_t *ar = a + (size_t)ky * row_bytes;
                    const int8_t *wr = w + o * per_o + (size_t)ky * taps;
                    for (int t = 0; t < taps; t++) acc += (int32_t)ar[t] * wr[t];
                }
                float v = (float)acc * sc[o];
                if (bias) v = v + bias[o];
                if (relu) v = v > 0 ? v : 0;
                y[o] = v;
            }
        }
    free(w);
}

void nn_q8_forward(const nn_step *st, const float *in, float *out, int B, nn_ws *ws)
{
    const nn_q8_geom *g = &st->qg;
    const nn_layer *L = st->L;
    /* the pool after a deferring conv adds its bias and ReLU (infer_plan.c) */
    const float *bias = st->defer ? NULL : st->b;
    const int relu = !st->defer && st->relu;
    for (int b = 0; b < B; b++) {
        const float *x = in + (size_t)b * L->in_size;
        float *y = out + (size_t)b * L->out_size;
        const float s = ws->q8_ref ? nn_q8_quantize_ref(g, x, ws->q8in)
                                   : nn_q8_quantize_vnni(g, x, ws->q8in);
        for (int o = 0; o < g->O; o++) ws->q8sc[o] = s * st->qscale[o];
        if (ws->q8_ref)
            nn_q8_conv_ref(g, ws->q8in, st->qw, ws->q8sc, bias, relu, y);
        else
            nn_q8_conv_vnni(g, ws->q8in, st->qw, ws->q8sc, bias, relu, y);
    }
}

/* ---- the public switch ---------------------------------------------------- */

static const char *const precision_names[] = {"fp32", "int8", "fp16"};

int nn_precision_parse(const char *name)
{
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, precision_names[i])) return i;
    return -1;
}

const char *nn_precision_name(int precision)
{
    return precision_names[precision >= 0 && precision < 3 ? precision : 0];
}

int nn_int8_supported(void)
{
    return nn_q8_vnni_available();
}

int nn_precision_supported(nn_precision p)
{
    switch (p) {
    case NN_PRECISION_FP32: return 1;
    case NN_PRECISION_INT8: return nn_q8_vnni_available();
    case NN_PRECISION_FP16: return nn_gemm_f16_supported();
    }
    return 0;
}

const char *nn_precision_needs(nn_precision p)
{
    return p == NN_PRECISION_INT8 ? "AVX-512 VNNI" : p == NN_PRECISION_FP16 ? "AVX2, FMA and F16C" : "";
}

nn_precision nn_precision_served(nn_precision p)
{
    /* Who asks for int8 asks for speed at a small cost in accuracy. Without
     * VNNI, fp16 filters are that speed at no cost where their kernel is as
     * wide as fp32's: AVX2 + F16C, vgg_wide batch 1 1.05-1.2x fp32 on a Zen
     * 3 VM, half the filter bytes per worker. With AVX-512 (Intel's
     * Skylake-SP and -X have it without VNNI) fp32 runs on 512-bit vectors
     * and fp16 on the 256-bit kernel: fp16 0.57x fp32 at batch 1 and 0.62x
     * at batch 64 on a Zen 5 VM (bench/README.md, eleventh session), so
     * fp32 is the faster there. */
    if (nn_precision_supported(p)) return p;
    if (p == NN_PRECISION_INT8 && nn_precision_supported(NN_PRECISION_FP16) &&
        nn_gemm_isa() != NN_GEMM_AVX512)
        return NN_PRECISION_FP16;
    return NN_PRECISION_FP32;
}

nn_precision nn_model_set_precision(nn_model *m, nn_precision p)
{
    m->precision = nn_precision_served(p);
    return (nn_precision)m->precision;
}

nn_precision nn_model_precision(const nn_model *m)
{
    return (nn_precision)m->precision;
}
