/* layer_loss.c - dropout, softmax and softmax cross-entropy. */
#include <math.h>

#include "internal.h"

void dropout_forward(const float *x, float *y, float *mask, size_t n, float rate,
                     uint64_t *rng)
{
    const float keep = 1.0f / (1.0f - rate); /* inverted dropout: inference is identity */
    for (size_t i = 0; i < n; i++) {
        mask[i] = nn_rng_uniform(rng) >= rate ? keep : 0.0f;
        y[i] = x[i] * mask[i];
    }
}

void dropout_backward(const float *dy, const float *mask, float *dx, size_t n)
{
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * mask[i];
}

void softmax_rows(const float *logits, float *probs, int B, int K)
{
    for (int b = 0; b < B; b++) {
        const float *l = logits + (size_t)b * K;
        float *p = probs + (size_t)b * K;
        float mx = l[0];
        for (int k = 1; k < K; k++) if (l[k] > mx) mx = l[k];
        double s = 0;
        for (int k = 0; k < K; k++) { p[k] = expf(l[k] - mx); s += p[k]; }
        for (int k = 0; k < K; k++) p[k] = (float)(p[k] / s);
    }
}

double softmax_xent(const float *logits, const uint8_t *labels, float *dlogits, int B, int K,
                    float smoothing, int scale_b, int *correct)
{
    double loss = 0;
    int ok = 0;
    const float off = smoothing / K, on = 1.0f - smoothing + off;
    softmax_rows(logits, dlogits, B, K); /* probabilities, turned into gradients below */
    for (int b = 0; b < B; b++) {
        float *p = dlogits + (size_t)b * K;
        const float *l = logits + (size_t)b * K;
        int best = 0;
        for (int k = 1; k < K; k++) if (l[k] > l[best]) best = k;
        ok += best == labels[b];
        for (int k = 0; k < K; k++) {
            float q = k == labels[b] ? on : off;
            if (q > 0) loss -= q * log(p[k] > 1e-30f ? p[k] : 1e-30f);
            p[k] = (p[k] - q) / (float)scale_b;
        }
    }
    if (correct) *correct = ok;
    return loss;
}
