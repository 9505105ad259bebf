/* winograd_f63.c - the per-tile transforms of Winograd's F(6x6, 3x3), which
 * winograd.c uses in inference for layers of 24x24 pixels and more.
 *
 * Each 6x6 block of outputs comes from an 8x8 input patch:
 * Y = A^T [ (G g G^T) . (B^T d B) ] A, 64 products per tile and channel
 * pair instead of 324 (5.06x fewer; F(4x4, 3x3): 4x), so its GEMMs do 79%
 * of F(4x4)'s work on the same pixels. The points are 0, 1, -1, 2, -2,
 * 1/2, -1/2 (and infinity), the matrices NNPACK's:
 *
 *   B^T = | 1  0    -21/4  0     21/4  0    -1  0 |
 *         | 0  1     1    -17/4 -17/4  1     1  0 |
 *         | 0 -1     1     17/4 -17/4 -1     1  0 |
 *         | 0  1/2   1/4  -5/2  -5/4   2     1  0 |
 *         | 0 -1/2   1/4   5/2  -5/4  -2     1  0 |
 *         | 0  2     4    -5/2  -5     1/2   1  0 |
 *         | 0 -2     4     5/2  -5    -1/2   1  0 |
 *         | 0 -1     0     21/4  0    -21/4  0  1 |
 *
 *   G = | 1      0      0    |   A^T = | 1  1  1  1   1   1     1     0 |
 *       | -2/9  -2/9   -2/9  |         | 0  1 -1  2  -2   1/2  -1/2   0 |
 *       | -2/9   2/9   -2/9  |         | 0  1  1  4   4   1/4   1/4   0 |
 *       | 1/90   1/45   2/45 |         | 0  1 -1  8  -8   1/8  -1/8   0 |
 *       | 1/90  -1/45   2/45 |         | 0  1  1  16  16  1/16  1/16  0 |
 *       | 32/45  16/45  8/45 |         | 0  1 -1  32 -32  1/32 -1/32  1 |
 *       | 32/45 -16/45  8/45 |
 *       | 0      0      1    |
 *
 * The same two 1-D passes per 2-D transform as winograd_f43.c, through an
 * L1-resident tmp of 64 rows. Only the forward pass: training keeps F(4x4),
 * whose gradients winograd_f43.c has. The rounding error is larger than
 * F(4x4)'s (A^T scales terms by up to 32, B^T's 21/4 and 17/4 add more):
 * tests/test_winograd.c bounds it against direct convolution. */
#include <stddef.h>

#include "internal.h"
#include "winograd_tile.h"

/* o[k] = (B^T a)[k], channel by channel; a[k] is n floats, o[k] too */
INLINE void bt8_1d(const float *const a[8], float *const o[8], int n)
{
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
    const float *a4 = a[4], *a5 = a[5], *a6 = a[6], *a7 = a[7];
    float *restrict o0 = o[0], *restrict o1 = o[1], *restrict o2 = o[2], *restrict o3 = o[3];
    float *restrict o4 = o[4], *restrict o5 = o[5], *restrict o6 = o[6], *restrict o7 = o[7];
    IVDEP
    for (int c = 0; c < n; c++) {
        const float t1 = a2[c] + a6[c] - 4.25f * a4[c];
        const float t2 = a1[c] + a5[c] - 4.25f * a3[c];
        const float t3 = a6[c] + 0.25f * a2[c] - 1.25f * a4[c];
        const float t4 = 0.5f * a1[c] - 2.5f * a3[c] + 2.0f * a5[c];
        const float t5 = a6[c] + 4.0f * (a2[c] - 1.25f * a4[c]);
        const float t6 = 2.0f * a1[c] - 2.5f * a3[c] + 0.5f * a5[c];
        o0[c] = a0[c] - a6[c] + 5.25f * (a4[c] - a2[c]);
        o1[c] = t1 + t2, o2[c] = t1 - t2;
        o3[c] = t3 + t4, o4[c] = t3 - t4;
        o5[c] = t5 + t6, o6[c] = t5 - t6;
        o7[c] = a7[c] - a1[c] + 5.25f * (a3[c] - a5[c]);
    }
}

/* o[k] = (G a)[k] (8 from 3) */
INLINE void g8_1d(const float *a0, const float *a1, const float *a2, float *const o[8], int n)
{
    float *restrict o0 = o[0], *restrict o1 = o[1], *restrict o2 = o[2], *restrict o3 = o[3];
    float *restrict o4 = o[4], *restrict o5 = o[5], *restrict o6 = o[6], *restrict o7 = o[7];
    IVDEP
    for (int c = 0; c < n; c++) {
        const float e = a0[c] + a2[c];
        const float f = (1.0f / 90.0f) * a0[c] + (2.0f / 45.0f) * a2[c];
        const float h = (32.0f / 45.0f) * a0[c] + (8.0f / 45.0f) * a2[c];
        o0[c] = a0[c];
        o1[c] = (-2.0f / 9.0f) * (e + a1[c]), o2[c] = (-2.0f / 9.0f) * (e - a1[c]);
        o3[c] = f + (1.0f / 45.0f) * a1[c], o4[c] = f - (1.0f / 45.0f) * a1[c];
        o5[c] = h + (16.0f / 45.0f) * a1[c], o6[c] = h - (16.0f / 45.0f) * a1[c];
        o7[c] = a2[c];
    }
}

/* o[k] = (A^T a)[k] (6 from 8) */
INLINE void at8_1d(const float *const a[8], float *const o[6], int n)
{
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
    const float *a4 = a[4], *a5 = a[5], *a6 = a[6], *a7 = a[7];
    float *restrict o0 = o[0], *restrict o1 = o[1], *restrict o2 = o[2];
    float *restrict o3 = o[3], *restrict o4 = o[4], *restrict o5 = o[5];
    IVDEP
    for (int c = 0; c < n; c++) {
        const float p12 = a1[c] + a2[c], m12 = a1[c] - a2[c];
        const float p34 = a3[c] + a4[c], m34 = a3[c] - a4[c];
        const float p56 = a5[c] + a6[c], m56 = a5[c] - a6[c];
        o0[c] = a0[c] + p12 + p34 + p56;
        o1[c] = m12 + 2.0f * m34 + 0.5f * m56;
        o2[c] = p12 + 4.0f * p34 + 0.25f * p56;
        o3[c] = m12 + 8.0f * m34 + 0.125f * m56;
        o4[c] = p12 + 16.0f * p34 + 0.0625f * p56;
        o5[c] = m12 + 32.0f * m34 + 0.03125f * m56 + a7[c];
    }
}

NN_WINO_CLONES void nn_wino63_filter_tile(const float *const g[9], int C, size_t plane,
                                          float *u, float *tmp)
{
    /* columns: t[k][kx] = (G g)[k][kx] at tmp + (3k + kx) C */
    for (int kx = 0; kx < 3; kx++) {
        float *o[8];
        for (int k = 0; k < 8; k++) o[k] = tmp + (size_t)(3 * k + kx) * C;
        g8_1d(g[kx], g[3 + kx], g[6 + kx], o, C);
    }
    /* rows: u[8k + l] = (t G^T)[k][l] */
    for (int k = 0; k < 8; k++) {
        const float *t = tmp + (size_t)3 * k * C;
        float *o[8];
        for (int l = 0; l < 8; l++) o[l] = u + (size_t)(8 * k + l) * plane;
        g8_1d(t, t + C, t + 2 * (size_t)C, o, C);
    }
}

NN_WINO_CLONES void nn_wino63_input_tile(const float *const p[64], int C, size_t plane,
                                         float *v, float *tmp)
{
    /* columns: r[k][j] = (B^T d)[k][j] at tmp + (8k + j) C */
    for (int j = 0; j < 8; j++) {
        const float *a[8];
        float *o[8];
        for (int k = 0; k < 8; k++) a[k] = p[8 * k + j], o[k] = tmp + (size_t)(8 * k + j) * C;
        bt8_1d(a, o, C);
    }
    /* rows: v[8k + l] = (r B)[k][l] */
    for (int k = 0; k < 8; k++) {
        const float *a[8];
        float *o[8];
        for (int l = 0; l < 8; l++)
            a[l] = tmp + (size_t)(8 * k + l) * C, o[l] = v + (size_t)(8 * k + l) * plane;
        bt8_1d(a, o, C);
    }
}

NN_WINO_CLONES void nn_wino63_output_tile(const float *m, size_t plane, int O,
                                          const float *bias, int relu, float *const y[36],
                                          float *tmp)
{
    /* columns: s[i][j] = (A^T m)[i][j] at tmp + (8i + j) O */
    for (int j = 0; j < 8; j++) {
        const float *a[8];
        float *o[6];
        for (int k = 0; k < 8; k++) a[k] = m + (size_t)(8 * k + j) * plane;
        for (int i = 0; i < 6; i++) o[i] = tmp + (size_t)(8 * i + j) * O;
        at8_1d(a, o, O);
    }
    /* rows: y[6i + l] = (s A)[i][l] + bias, then ReLU */
    for (int i = 0; i < 6; i++) {
        const float *a[8];
        for (int l = 0; l < 8; l++) a[l] = tmp + (size_t)(8 * i + l) * O;
        float *const *o = y + 6 * i;
        at8_1d(a, o, O);
        for (int l = 0; l < 6; l++) {
            float *restrict r = o[l];
            IVDEP
            for (int c = 0; c < O; c++) {
                const float x = r[c] + bias[c];
                r[c] = relu && x < 0 ? 0.0f : x; /* relu: the test leaves the loop */
            }
        }
    }
}
