/* layer_dense.c - fully connected layer through SGEMM. */
#include <cblas.h>
#include <string.h>

#include "internal.h"

void dense_forward(const float *in, const float *W, const float *b, float *out,
                   int B, int IN, int OUT)
{
    for (int i = 0; i < B; i++) memcpy(out + (size_t)i * OUT, b, sizeof(float) * OUT);
    /* out [B, OUT] += in [B, IN] * W^T [IN, OUT] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OUT, IN,
                1.0f, in, IN, W, IN, 1.0f, out, OUT);
}

void dense_backward(const float *in, const float *W, const float *dout, float *din,
                    float *dW, float *db, int B, int IN, int OUT)
{
    for (int i = 0; i < B; i++)
        for (int o = 0; o < OUT; o++) db[o] += dout[(size_t)i * OUT + o];
    /* dW [OUT, IN] += dout^T [OUT, B] * in [B, IN] */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, IN, B,
                1.0f, dout, OUT, in, IN, 1.0f, dW, IN);
    if (din) /* din [B, IN] = dout [B, OUT] * W [OUT, IN] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, IN, OUT,
                    1.0f, dout, OUT, W, IN, 0.0f, din, IN);
}
