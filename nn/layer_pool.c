/* layer_pool.c - 2x2 max pooling (stride 2, odd edges dropped) and global
 * average pooling, NHWC. */
#include <math.h>
#include <string.h>

#include "internal.h"

void maxpool_forward(const nn_layer *L, const float *in, float *out, uint8_t *argmax, int B)
{
    const int W = L->in_w, C = L->in_c, OH = L->out_h, OW = L->out_w;
    for (int r = 0; r < B * OH; r++) {
        const float *row = in + maxpool_row_at(L, r);
        for (int ow = 0; ow < OW; ow++) {
            const float *p00 = row + (size_t)(2 * ow) * C;
            const float *p01 = p00 + C, *p10 = p00 + (size_t)W * C, *p11 = p10 + C;
            size_t o = ((size_t)r * OW + ow) * C;
            for (int c = 0; c < C; c++) {
                float m = p00[c];
                uint8_t a = 0;
                if (p01[c] > m) { m = p01[c]; a = 1; }
                if (p10[c] > m) { m = p10[c]; a = 2; }
                if (p11[c] > m) { m = p11[c]; a = 3; }
                out[o + c] = m;
                if (argmax) argmax[o + c] = a;
            }
        }
    }
}

void maxpool_bias_act(const nn_layer *L, const float *in, float *out, const float *bias,
                      int relu, int B)
{
    const int W = L->in_w, C = L->in_c, OH = L->out_h, OW = L->out_w;
    static const float zero[4096]; /* immutable: bias == NULL */
    const float *bs = bias ? bias : zero;
    const float lo = relu ? 0.0f : -INFINITY;
    for (int r = 0; r < B * OH; r++) {
        const float *row = in + maxpool_row_at(L, r);
        for (int ow = 0; ow < OW; ow++) {
            const float *p00 = row + (size_t)(2 * ow) * C;
            const float *p01 = p00 + C, *p10 = p00 + (size_t)W * C, *p11 = p10 + C;
            float *o = out + ((size_t)r * OW + ow) * C;
            for (int c = 0; c < C; c++) {
                float a = p00[c] > p01[c] ? p00[c] : p01[c];
                float d = p10[c] > p11[c] ? p10[c] : p11[c];
                float v = (a > d ? a : d) + bs[c];
                o[c] = v > lo ? v : lo;
            }
        }
    }
}

void maxpool_backward(const nn_layer *L, const float *dout, const uint8_t *argmax,
                      float *din, int B)
{
    const int W = L->in_w, C = L->in_c, OH = L->out_h, OW = L->out_w;
    memset(din, 0, sizeof(float) * L->in_size * B);
    for (int r = 0; r < B * OH; r++) {
        float *row = din + maxpool_row_at(L, r);
        for (int ow = 0; ow < OW; ow++) {
            size_t o = ((size_t)r * OW + ow) * C;
            float *p00 = row + (size_t)(2 * ow) * C;
            for (int c = 0; c < C; c++) {
                uint8_t a = argmax[o + c];
                float *p = p00 + (a & 1) * C + (a >> 1) * (size_t)W * C;
                p[c] = dout[o + c];
            }
        }
    }
}

void gap_forward(const nn_layer *L, const float *in, float *out, int B)
{
    const int C = L->in_c;
    const size_t HW = (size_t)L->in_h * L->in_w;
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * C;
        const float *img = in + (size_t)b * L->in_size;
        memset(o, 0, sizeof(float) * C);
        for (size_t p = 0; p < HW; p++)
            for (int c = 0; c < C; c++) o[c] += img[p * C + c];
        for (int c = 0; c < C; c++) o[c] /= (float)HW;
    }
}

void gap_backward(const nn_layer *L, const float *dout, float *din, int B)
{
    const int C = L->in_c;
    const size_t HW = (size_t)L->in_h * L->in_w;
    for (int b = 0; b < B; b++) {
        const float *d = dout + (size_t)b * C;
        float *img = din + (size_t)b * L->in_size;
        for (size_t p = 0; p < HW; p++)
            for (int c = 0; c < C; c++) img[p * C + c] = d[c] / (float)HW;
    }
}
