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

void bn_partial_sum(const float *x, size_t N, int C, double *sum)
{
    memset(sum, 0, sizeof(double) * C);
    for (size_t n = 0; n < N; n++) {
        const float *r = x + n * C;
        for (int c = 0; c < C; c++) sum[c] += r[c];
    }
}

void bn_partial_sqdev(const float *x, size_t N, int C, const float *mean, double *sq)
{
    memset(sq, 0, sizeof(double) * C);
    for (size_t n = 0; n < N; n++) {
        const float *r = x + n * C;
        for (int c = 0; c < C; c++) {
            float d = r[c] - mean[c];
            sq[c] += (double)(d * d);
        }
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

void bn_backward_partial(const float *x, const float *dy, const float *mean, size_t N, int C,
                         double *sdy, double *sdyx)
{
    memset(sdy, 0, sizeof(double) * C);
    memset(sdyx, 0, sizeof(double) * C);
    for (size_t n = 0; n < N; n++) {
        const float *r = x + n * C, *d = dy + n * C;
        for (int c = 0; c < C; c++) {
            sdy[c] += d[c];
            sdyx[c] += (double)(d[c] * (r[c] - mean[c]));
        }
    }
}

/* dx = k1*dy + k2*x + k3 per channel */
void bn_backward_apply(const float *x, const float *dy, const float *k1, const float *k2,
                       const float *k3, float *dx, size_t N, int C)
{
    for (size_t n = 0; n < N; n++) {
        const float *r = x + n * C, *d = dy + n * C;
        float *o = dx + n * C;
        for (int c = 0; c < C; c++) o[c] = k1[c] * d[c] + k2[c] * r[c] + k3[c];
    }
}
