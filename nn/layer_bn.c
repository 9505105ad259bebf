/* layer_bn.c - batch normalisation over the channel (innermost) axis.
 *
 * x is [N, C] with N = batch*H*W. In training the batch may be split across
 * threads, so the kernels are split too: each thread reduces its rows into
 * partial sums (double: N reaches 150k), the trainer adds the partials of all
 * threads in a fixed order, and each thread applies the result to its rows.
 * Running statistics follow PyTorch: the variance is the unbiased one. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* The reductions run over N rows of C channels. Summing straight into double
 * keeps them scalar (one float-to-double conversion and one dependent add per
 * element); instead each block of BN_BLOCK rows is summed in float, which
 * vectorises across channels, and only the block sums are added in double. */
#define BN_BLOCK 64

void bn_partial_sum(const float *x, size_t N, int C, double *sum)
{
    float acc[4096];
    memset(sum, 0, sizeof(double) * C);
    for (size_t n0 = 0; n0 < N; n0 += BN_BLOCK) {
        const size_t n1 = n0 + BN_BLOCK < N ? n0 + BN_BLOCK : N;
        memset(acc, 0, sizeof(float) * C);
        for (size_t n = n0; n < n1; n++) {
            const float *r = x + n * C;
            for (int c = 0; c < C; c++) acc[c] += r[c];
        }
        for (int c = 0; c < C; c++) sum[c] += acc[c];
    }
}

void bn_partial_sqdev(const float *x, size_t N, int C, const float *mean, double *sq)
{
    float acc[4096];
    memset(sq, 0, sizeof(double) * C);
    for (size_t n0 = 0; n0 < N; n0 += BN_BLOCK) {
        const size_t n1 = n0 + BN_BLOCK < N ? n0 + BN_BLOCK : N;
        memset(acc, 0, sizeof(float) * C);
        for (size_t n = n0; n < n1; n++) {
            const float *r = x + n * C;
            for (int c = 0; c < C; c++) {
                const float d = r[c] - mean[c];
                acc[c] += d * d;
            }
        }
        for (int c = 0; c < C; c++) sq[c] += acc[c];
    }
}

/* y = x * a + s per channel */
void bn_apply(const float *x, float *y, const float *a, const float *s, size_t N, int C)
{
    for (size_t n = 0; n < N; n++) {
        const float *r = x + n * C;
        float *o = y + n * C;
        for (int c = 0; c < C; c++) o[c] = r[c] * a[c] + s[c];
    }
}

void bn_forward_infer(const float *x, float *y, const float *gamma, const float *beta,
                      const float *run_mean, const float *run_var, size_t N, int C, float eps)
{
    float a[4096], s[4096];
    for (int c = 0; c < C; c++) {
        a[c] = gamma[c] / sqrtf(run_var[c] + eps);
        s[c] = beta[c] - run_mean[c] * a[c];
    }
    bn_apply(x, y, a, s, N, C);
}

/* y = max(0, x * a + s) per channel: batch norm and the ReLU after it in
 * one pass, so the normalised tensor is never written out. */
void bn_apply_relu(const float *x, float *y, const float *a, const float *s, size_t N, int C)
{
    for (size_t n = 0; n < N; n++) {
        const float *r = x + n * C;
        float *o = y + n * C;
        for (int c = 0; c < C; c++) {
            const float v = r[c] * a[c] + s[c];
            o[c] = v > 0 ? v : 0.0f;
        }
    }
}

/* bn_apply_relu followed by 2x2 max pooling (maxpool_forward), in one pass:
 * the full-size ReLU output is neither written nor read back. Per window
 * the same values and the same choice on ties as maxpool_forward, so out
 * and argmax are those of the two passes, bit for bit. P is the pooling
 * layer; x is its input's shape. */
void bn_apply_relu_maxpool(const nn_layer *P, const float *x, float *restrict out,
                           uint8_t *restrict argmax, const float *restrict a,
                           const float *restrict s, int B)
{
    /* restrict: argmax is uint8_t, which may alias anything; without it the
     * channel loop reloads a and s after every store and stays scalar */
    const int W = P->in_w, C = P->in_c, OH = P->out_h, OW = P->out_w;
    for (int r = 0; r < B * OH; r++) {
        const float *row = x + maxpool_row_at(P, r);
        for (int ow = 0; ow < OW; ow++) {
            const float *p00 = row + (size_t)(2 * ow) * C;
            const float *p01 = p00 + C, *p10 = p00 + (size_t)W * C, *p11 = p10 + C;
            const size_t o = ((size_t)r * OW + ow) * C;
            for (int c = 0; c < C; c++) {
                const float v00 = p00[c] * a[c] + s[c], v01 = p01[c] * a[c] + s[c];
                const float v10 = p10[c] * a[c] + s[c], v11 = p11[c] * a[c] + s[c];
                float m = v00 > 0 ? v00 : 0.0f;
                uint8_t k = 0;
                const float r01 = v01 > 0 ? v01 : 0.0f, r10 = v10 > 0 ? v10 : 0.0f;
                const float r11 = v11 > 0 ? v11 : 0.0f;
                if (r01 > m) { m = r01; k = 1; }
                if (r10 > m) { m = r10; k = 2; }
                if (r11 > m) { m = r11; k = 3; }
                out[o + c] = m;
                argmax[o + c] = k;
            }
        }
    }
}

/* The gradient that reaches batch norm through a following ReLU is dy where
 * the ReLU's output max(0, x * ra + rs) is positive and 0 elsewhere.
 * Applying that mask here instead of in a separate ReLU pass saves writing
 * and re-reading a whole activation-sized tensor, and recomputing it from x
 * (the same expression as bn_apply_relu's, so the same mask) saves reading
 * the ReLU's output: these passes are bound by memory traffic. ra == NULL
 * means no ReLU follows. The loops load dy unconditionally so that the
 * mask compiles to a blend. */
void bn_backward_partial(const float *x, const float *dy, const float *ra, const float *rs,
                         const float *mean, size_t N, int C, double *sdy, double *sdyx)
{
    float a_dy[4096], a_dyx[4096];
    memset(sdy, 0, sizeof(double) * C);
    memset(sdyx, 0, sizeof(double) * C);
    for (size_t n0 = 0; n0 < N; n0 += BN_BLOCK) {
        const size_t n1 = n0 + BN_BLOCK < N ? n0 + BN_BLOCK : N;
        memset(a_dy, 0, sizeof(float) * C);
        memset(a_dyx, 0, sizeof(float) * C);
        for (size_t n = n0; n < n1; n++) {
            const float *r = x + n * C, *d = dy + n * C;
            if (ra) {
                for (int c = 0; c < C; c++) {
                    const float v = d[c], dc = r[c] * ra[c] + rs[c] > 0 ? v : 0.0f;
                    a_dy[c] += dc;
                    a_dyx[c] += dc * (r[c] - mean[c]);
                }
            } else {
                for (int c = 0; c < C; c++) {
                    a_dy[c] += d[c];
                    a_dyx[c] += d[c] * (r[c] - mean[c]);
                }
            }
        }
        for (int c = 0; c < C; c++) {
            sdy[c] += a_dy[c];
            sdyx[c] += a_dyx[c];
        }
    }
}

/* dx = k1*dy + k2*x + k3 per channel (dy masked as above) */
void bn_backward_apply(const float *x, const float *dy, const float *ra, const float *rs,
                       const float *k1, const float *k2, const float *k3, float *dx, size_t N,
                       int C)
{
    for (size_t n = 0; n < N; n++) {
        const float *r = x + n * C, *d = dy + n * C;
        float *o = dx + n * C;
        if (ra) {
            for (int c = 0; c < C; c++) {
                const float v = d[c], dc = r[c] * ra[c] + rs[c] > 0 ? v : 0.0f;
                o[c] = k1[c] * dc + k2[c] * r[c] + k3[c];
            }
        } else {
            for (int c = 0; c < C; c++) o[c] = k1[c] * d[c] + k2[c] * r[c] + k3[c];
        }
    }
}
