/* winograd_f43.c - the per-tile transforms of Winograd's F(4x4, 3x3), which
 * winograd.c uses for layers of 8x8 pixels and more.
 *
 * Each 4x4 block of outputs comes from a 6x6 input patch:
 * Y = A^T [ (G g G^T) . (B^T d B) ] A, 36 products per tile and channel
 * pair instead of 144 (4x fewer; F(2x2, 3x3): 2.25x), so the 36 GEMMs do
 * 56% of F(2x2)'s work. Lavin & Gray's matrices (points 0, 1, -1, 2, -2):
 *
 *   B^T = | 4  0 -5  0  1  0 |   G = | 1/4    0     0   |   A^T = | 1  1  1  1  1  0 |
 *         | 0 -4 -4  1  1  0 |       | -1/6  -1/6  -1/6 |         | 0  1 -1  2 -2  0 |
 *         | 0  4 -4 -1  1  0 |       | -1/6   1/6  -1/6 |         | 0  1  1  4  4  0 |
 *         | 0 -2 -1  2  1  0 |       | 1/24  1/12  1/6  |         | 0  1 -1  8 -8  1 |
 *         | 0  2 -1 -2  1  0 |       | 1/24 -1/12  1/6  |
 *         | 0  4  0 -5  0  1 |       | 0      0     1   |
 *
 * Each 2-D transform X = M d M^T is two passes of a 1-D one: M on every
 * column of d into a small buffer (tmp, L1-resident), then M on every row of
 * that. A 1-D pass is a loop over channels with 6 to 12 named pointers,
 * which the compiler vectorises (36 pointers at once would spill). The
 * weight gradient is dg = G^T [ (A dY A^T) . (B^T d B) ] G, the same two
 * passes with A and G^T. Its rounding error is larger than F(2x2)'s (the
 * points 2 and -2 scale terms by up to 8): about 1e-5 of the largest output,
 * well below what training notices. */
#include <stddef.h>

#include "internal.h"
#include "winograd_tile.h"

/* o = B^T a, channel by channel */
INLINE void bt_1d(const float *a0, const float *a1, const float *a2, const float *a3,
                  const float *a4, const float *a5, float *restrict o0, float *restrict o1,
                  float *restrict o2, float *restrict o3, float *restrict o4,
                  float *restrict o5, int n)
{
    IVDEP
    for (int c = 0; c < n; c++) {
        const float s1 = a4[c] - 4.0f * a2[c], s2 = a3[c] - 4.0f * a1[c];
        const float s3 = a4[c] - a2[c], s4 = 2.0f * (a3[c] - a1[c]);
        o0[c] = 4.0f * a0[c] - 5.0f * a2[c] + a4[c];
        o1[c] = s1 + s2, o2[c] = s1 - s2;
        o3[c] = s3 + s4, o4[c] = s3 - s4;
        o5[c] = 4.0f * a1[c] - 5.0f * a3[c] + a5[c];
    }
}

/* o = G a (6 from 3) */
INLINE void g_1d(const float *a0, const float *a1, const float *a2, float *restrict o0,
                 float *restrict o1, float *restrict o2, float *restrict o3,
                 float *restrict o4, float *restrict o5, int n)
{
    IVDEP
    for (int c = 0; c < n; c++) {
        const float e = a0[c] + a2[c];
        const float s = -(1.0f / 6.0f) * (e + a1[c]), d = -(1.0f / 6.0f) * (e - a1[c]);
        const float f = (1.0f / 24.0f) * a0[c] + (1.0f / 6.0f) * a2[c];
        o0[c] = 0.25f * a0[c], o1[c] = s, o2[c] = d;
        o3[c] = f + (1.0f / 12.0f) * a1[c], o4[c] = f - (1.0f / 12.0f) * a1[c];
        o5[c] = a2[c];
    }
}

/* o = A^T a (4 from 6) */
INLINE void at_1d(const float *a0, const float *a1, const float *a2, const float *a3,
                  const float *a4, const float *a5, float *restrict o0, float *restrict o1,
                  float *restrict o2, float *restrict o3, int n)
{
    IVDEP
    for (int c = 0; c < n; c++) {
        const float p12 = a1[c] + a2[c], m12 = a1[c] - a2[c];
        const float p34 = a3[c] + a4[c], m34 = a3[c] - a4[c];
        o0[c] = a0[c] + p12 + p34;
        o1[c] = m12 + 2.0f * m34;
        o2[c] = p12 + 4.0f * p34;
        o3[c] = m12 + 8.0f * m34 + a5[c];
    }
}

/* o = A a (6 from 4) */
INLINE void a_1d(const float *a0, const float *a1, const float *a2, const float *a3,
                 float *restrict o0, float *restrict o1, float *restrict o2, float *restrict o3,
                 float *restrict o4, float *restrict o5, int n)
{
    IVDEP
    for (int c = 0; c < n; c++) {
        const float e = a0[c] + a2[c], f = a1[c] + a3[c];
        const float e4 = a0[c] + 4.0f * a2[c], f8 = 2.0f * a1[c] + 8.0f * a3[c];
        o0[c] = a0[c], o1[c] = e + f, o2[c] = e - f;
        o3[c] = e4 + f8, o4[c] = e4 - f8, o5[c] = a3[c];
    }
}

/* o += G^T a (3 from 6) when acc, else o = G^T a */
INLINE void gt_1d(const float *a0, const float *a1, const float *a2, const float *a3,
                  const float *a4, const float *a5, float *restrict o0, float *restrict o1,
                  float *restrict o2, int acc, int n)
{
    IVDEP
    for (int c = 0; c < n; c++) {
        const float p12 = a1[c] + a2[c], m12 = a2[c] - a1[c];
        const float p34 = a3[c] + a4[c], m34 = a3[c] - a4[c];
        const float r0 = 0.25f * a0[c] - (1.0f / 6.0f) * p12 + (1.0f / 24.0f) * p34;
        const float r1 = (1.0f / 6.0f) * m12 + (1.0f / 12.0f) * m34;
        const float r2 = (1.0f / 6.0f) * (p34 - p12) + a5[c];
        if (acc) { /* constant per call: the compiler takes the test out */
            o0[c] += r0, o1[c] += r1, o2[c] += r2;
        } else {
            o0[c] = r0, o1[c] = r1, o2[c] = r2;
        }
    }
}

NN_WINO_CLONES void nn_wino43_filter_tile(const float *const g[9], int C, size_t plane,
                                          float *u, float *tmp)
{
    /* columns: t[k][kx] = (G g)[k][kx] at tmp + (3k + kx) C */
    for (int kx = 0; kx < 3; kx++) {
        float *t = tmp + (size_t)kx * C;
        g_1d(g[kx], g[3 + kx], g[6 + kx], t, t + 3 * (size_t)C, t + 6 * (size_t)C,
             t + 9 * (size_t)C, t + 12 * (size_t)C, t + 15 * (size_t)C, C);
    }
    /* rows: u[6k + l] = (t G^T)[k][l] */
    for (int k = 0; k < 6; k++) {
        const float *t = tmp + (size_t)3 * k * C;
        float *o = u + (size_t)6 * k * plane;
        g_1d(t, t + C, t + 2 * (size_t)C, o, o + plane, o + 2 * plane, o + 3 * plane,
             o + 4 * plane, o + 5 * plane, C);
    }
}

NN_WINO_CLONES void nn_wino43_input_tile(const float *const p[36], int C, size_t plane,
                                         float *v, float *tmp)
{
    /* columns: r[k][j] = (B^T d)[k][j] at tmp + (6k + j) C */
    for (int j = 0; j < 6; j++) {
        float *r = tmp + (size_t)j * C;
        const size_t s = 6 * (size_t)C;
        bt_1d(p[j], p[6 + j], p[12 + j], p[18 + j], p[24 + j], p[30 + j], r, r + s, r + 2 * s,
              r + 3 * s, r + 4 * s, r + 5 * s, C);
    }
    /* rows: v[6k + l] = (r B)[k][l] */
    for (int k = 0; k < 6; k++) {
        const float *r = tmp + (size_t)6 * k * C;
        float *o = v + (size_t)6 * k * plane;
        bt_1d(r, r + C, r + 2 * (size_t)C, r + 3 * (size_t)C, r + 4 * (size_t)C,
              r + 5 * (size_t)C, o, o + plane, o + 2 * plane, o + 3 * plane, o + 4 * plane,
              o + 5 * plane, C);
    }
}

NN_WINO_CLONES void nn_wino43_output_tile(const float *m, size_t plane, int O,
                                          const float *bias, int relu, float *const y[16],
                                          float *tmp)
{
    /* columns: s[i][j] = (A^T m)[i][j] at tmp + (6i + j) O */
    for (int j = 0; j < 6; j++) {
        const float *a = m + (size_t)j * plane;
        float *s = tmp + (size_t)j * O;
        const size_t q = 6 * plane, r = 6 * (size_t)O;
        at_1d(a, a + q, a + 2 * q, a + 3 * q, a + 4 * q, a + 5 * q, s, s + r, s + 2 * r,
              s + 3 * r, O);
    }
    /* rows: y[4i + l] = (s A)[i][l] + bias, then ReLU */
    for (int i = 0; i < 4; i++) {
        const float *s = tmp + (size_t)6 * i * O;
        float *y0 = y[4 * i], *y1 = y[4 * i + 1], *y2 = y[4 * i + 2], *y3 = y[4 * i + 3];
        at_1d(s, s + O, s + 2 * (size_t)O, s + 3 * (size_t)O, s + 4 * (size_t)O,
              s + 5 * (size_t)O, y0, y1, y2, y3, O);
        IVDEP
        for (int o = 0; o < O; o++) {
            float a = y0[o] + bias[o], b = y1[o] + bias[o];
            float c = y2[o] + bias[o], d = y3[o] + bias[o];
            if (relu) { /* the compiler takes the test out of the loop */
                a = a > 0 ? a : 0.0f, b = b > 0 ? b : 0.0f;
                c = c > 0 ? c : 0.0f, d = d > 0 ? d : 0.0f;
            }
            y0[o] = a, y1[o] = b, y2[o] = c, y3[o] = d;
        }
    }
}

NN_WINO_CLONES void nn_wino43_grad_output_tile(const float *const y[16], int O, size_t plane,
                                               float *p, float *tmp)
{
    /* columns: r[k][j] = (A dY)[k][j] at tmp + (4k + j) O */
    for (int j = 0; j < 4; j++) {
        float *r = tmp + (size_t)j * O;
        const size_t s = 4 * (size_t)O;
        a_1d(y[j], y[4 + j], y[8 + j], y[12 + j], r, r + s, r + 2 * s, r + 3 * s, r + 4 * s,
             r + 5 * s, O);
    }
    /* rows: p[6k + l] = (r A^T)[k][l] */
    for (int k = 0; k < 6; k++) {
        const float *r = tmp + (size_t)4 * k * O;
        float *o = p + (size_t)6 * k * plane;
        a_1d(r, r + O, r + 2 * (size_t)O, r + 3 * (size_t)O, o, o + plane, o + 2 * plane,
             o + 3 * plane, o + 4 * plane, o + 5 * plane, O);
    }
}

NN_WINO_CLONES void nn_wino43_grad_filter_tile(const float *z, int C, size_t plane, float *w,
                                               float *tmp)
{
    /* columns: h[r][j] = (G^T z)[r][j] at tmp + (6r + j) C */
    for (int j = 0; j < 6; j++) {
        const float *a = z + (size_t)j * plane;
        float *h = tmp + (size_t)j * C;
        const size_t q = 6 * plane, s = 6 * (size_t)C;
        gt_1d(a, a + q, a + 2 * q, a + 3 * q, a + 4 * q, a + 5 * q, h, h + s, h + 2 * s, 0, C);
    }
    /* rows: w[3r + l] += (h G)[r][l] */
    for (int r = 0; r < 3; r++) {
        const float *h = tmp + (size_t)6 * r * C;
        float *o = w + (size_t)3 * r * C;
        gt_1d(h, h + C, h + 2 * (size_t)C, h + 3 * (size_t)C, h + 4 * (size_t)C,
              h + 5 * (size_t)C, o, o + C, o + 2 * (size_t)C, 1, C);
    }
}
