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
