/* winograd.c - 3x3 "same" convolutions in inference by Winograd's F(2x2, 3x3).
 *
 * Each 2x2 block of output pixels (a tile) comes from a 4x4 input patch d:
 * Y = A^T [ (G g G^T) . (B^T d B) ] A, an elementwise product in a 4x4
 * transformed space, so per tile and channel pair it takes 16 multiplications
 * instead of 36 (2.25x fewer). Summed over input channels the 16 products are
 * 16 independent GEMMs, M[x] (T x O) = V[x] (T x C) * U[x]^T (O x C), over
 * the T tiles of a chunk of images; the transforms before and after are cheap
 * adds, vectorised over channels (NHWC keeps them contiguous).
 *
 *   B^T = | 1  0 -1  0 |   G = | 1    0    0   |   A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |       | 1/2  1/2  1/2 |         | 0  1 -1 -1 |
 *         | 0 -1  1  0 |       | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |       | 0    0    1   |
 *
 * The weight transform U runs once per plan (infer_plan.c). Where a chunk has
 * few tiles the 16 GEMMs are too thin to pay (measured on vgg_wide's 6x6
 * layers at batch 1: 0.75x of im2col + one GEMM; 1.5x at batch 8), so
 * nn_wino_forward is used only from NN_WINO_MIN_TILES tiles on. The error
 * against direct convolution is a few float roundings (tests: relative 1e-5). */
#include <cblas.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"

int nn_wino_eligible(const nn_layer *L)
{
    /* the first layer of a grayscale network (C = 1) gains nothing: its
     * im2col GEMM is tiny and the transforms would dominate */
    return L->type == L_CONV && L->k == 3 && L->pad == 1 && L->out_h == L->in_h &&
           L->out_w == L->in_w && L->in_c >= 4;
}

static int tiles_of(const nn_layer *L)
{
    return ((L->out_h + 1) / 2) * ((L->out_w + 1) / 2);
}

/* images per chunk: up to NN_WINO_CHUNK_TILES tiles, at least one image */
static int chunk_images(const nn_layer *L, int batch)
{
    int n = NN_WINO_CHUNK_TILES / tiles_of(L);
    if (n < 1) n = 1;
    return n < batch ? n : batch;
}

int nn_wino_use(const nn_layer *L, int batch)
{
    return (long)batch * tiles_of(L) >= NN_WINO_MIN_TILES;
}

/* Floats from one of the 16 matrices of a chunk to the next: T x W plus a
 * cache line, because the transforms read or write all 16 at once and with
 * T x W x 4 bytes a multiple of 4096 (1152 tiles of 48 channels) the 16
 * streams would fall on the same L1 cache sets. */
static size_t plane_of(size_t T, int W)
{
    return T * (size_t)W + 16;
}

size_t nn_wino_weight_floats(const nn_layer *L)
{
    return (size_t)16 * L->out_c * L->in_c;
}

/* After the 16 V and 16 M (or P) matrices of a chunk: what the pixels of a
 * tile outside the image read (zeros, as many as the wider side has
 * channels) and where their outputs go (3 separate sinks of O floats: a
 * 1x1 image's tile has 3 missing outputs, and they must not alias), so that
 * the transforms need no test per channel. */
static size_t edge_floats(const nn_layer *L)
{
    return (size_t)(L->in_c > L->out_c ? L->in_c : L->out_c) + 3 * (size_t)L->out_c;
}

size_t nn_wino_scratch_floats(const nn_layer *L, int max_batch)
{
    const size_t t = (size_t)chunk_images(L, max_batch) * tiles_of(L);
    return 16 * (plane_of(t, L->in_c) + plane_of(t, L->out_c)) + edge_floats(L);
}

/* Offsets of the output pixels of tile (ty, tx) in an OH x OW x O image, in
 * the order (0,0), (0,1), (1,0), (1,1); -1 for a pixel past the right or
 * bottom edge. */
static void tile_pixels(int ty, int tx, int OH, int OW, int O, ptrdiff_t off[4])
{
    const int right = 2 * tx + 1 < OW, down = 2 * ty + 1 < OH;
    off[0] = ((ptrdiff_t)(2 * ty) * OW + 2 * tx) * O;
    off[1] = right ? off[0] + O : -1;
    off[2] = down ? off[0] + (ptrdiff_t)OW * O : -1;
    off[3] = right && down ? off[2] + O : -1;
}

/* U[x][o][c] = (G g G^T)[x] for the 3x3 filter g = W[o][ky][kx][c]. With
 * for_input_grad, the filters of the convolution that gives the gradient of
 * L's input from the gradient of its output: U[x][c][o] from
 * g = W[o][2-ky][2-kx][c] (every filter turned by 180 degrees, input and
 * output channels swapped). */
void nn_wino_pack(const nn_layer *L, const float *W, int for_input_grad, float *U)
{
    const int O = L->out_c, C = L->in_c;
    const size_t plane = (size_t)O * C;
    for (int o = 0; o < O; o++)
        for (int c = 0; c < C; c++) {
            float g[3][3], t[4][3];
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++) {
                    const int sy = for_input_grad ? 2 - ky : ky, sx = for_input_grad ? 2 - kx : kx;
                    g[ky][kx] = W[((size_t)o * 9 + sy * 3 + sx) * C + c];
                }
            for (int j = 0; j < 3; j++) { /* t = G g */
                t[0][j] = g[0][j];
                t[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
                t[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
                t[3][j] = g[2][j];
            }
            const size_t at = for_input_grad ? (size_t)c * O + o : (size_t)o * C + c;
            for (int i = 0; i < 4; i++) { /* u = t G^T */
                float *u = U + (size_t)i * 4 * plane + at;
                u[0] = t[i][0];
                u[plane] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
                u[2 * plane] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
                u[3 * plane] = t[i][2];
            }
        }
}

nn_layer nn_wino_input_grad_layer(const nn_layer *L)
{
    nn_layer T = *L;
    T.in_c = L->out_c, T.out_c = L->in_c;
    T.in_size = L->out_size, T.out_size = L->in_size;
    return T;
}

/* The transforms run over the channels of one tile with every operand in a
 * named variable (no small arrays), so that the compiler vectorises the
 * channel loop; target_clones builds it for AVX-512, AVX2 and plain x86-64
 * and picks one at load time, so the binary still runs on any x86-64. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define WINO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WINO_CLONES
#endif

/* v[x * plane + c] = (B^T d B)[x] for one tile, d[i][j] = p[4i + j][c] */
WINO_CLONES static void input_tile(const float *const *p, int C, size_t plane,
                                   float *restrict v)
{
    const float *d00 = p[0], *d01 = p[1], *d02 = p[2], *d03 = p[3];
    const float *d10 = p[4], *d11 = p[5], *d12 = p[6], *d13 = p[7];
    const float *d20 = p[8], *d21 = p[9], *d22 = p[10], *d23 = p[11];
    const float *d30 = p[12], *d31 = p[13], *d32 = p[14], *d33 = p[15];
    float *restrict v0 = v, *restrict v1 = v + plane, *restrict v2 = v + 2 * plane;
    float *restrict v3 = v + 3 * plane, *restrict v4 = v + 4 * plane;
    float *restrict v5 = v + 5 * plane, *restrict v6 = v + 6 * plane;
    float *restrict v7 = v + 7 * plane, *restrict v8 = v + 8 * plane;
    float *restrict v9 = v + 9 * plane, *restrict v10 = v + 10 * plane;
    float *restrict v11 = v + 11 * plane, *restrict v12 = v + 12 * plane;
    float *restrict v13 = v + 13 * plane, *restrict v14 = v + 14 * plane;
    float *restrict v15 = v + 15 * plane;
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC ivdep /* the 16 outputs never alias the 16 inputs */
#endif
    for (int c = 0; c < C; c++) {
        /* rows: r = B^T d */
        const float r00 = d00[c] - d20[c], r01 = d01[c] - d21[c];
        const float r02 = d02[c] - d22[c], r03 = d03[c] - d23[c];
        const float r10 = d10[c] + d20[c], r11 = d11[c] + d21[c];
        const float r12 = d12[c] + d22[c], r13 = d13[c] + d23[c];
        const float r20 = d20[c] - d10[c], r21 = d21[c] - d11[c];
        const float r22 = d22[c] - d12[c], r23 = d23[c] - d13[c];
        const float r30 = d10[c] - d30[c], r31 = d11[c] - d31[c];
        const float r32 = d12[c] - d32[c], r33 = d13[c] - d33[c];
        /* columns: r B */
        v0[c] = r00 - r02, v1[c] = r01 + r02, v2[c] = r02 - r01, v3[c] = r01 - r03;
        v4[c] = r10 - r12, v5[c] = r11 + r12, v6[c] = r12 - r11, v7[c] = r11 - r13;
        v8[c] = r20 - r22, v9[c] = r21 + r22, v10[c] = r22 - r21, v11[c] = r21 - r23;
        v12[c] = r30 - r32, v13[c] = r31 + r32, v14[c] = r32 - r31, v15[c] = r31 - r33;
    }
}

/* V[x][t][c] for every tile t of n images: d is the 4x4 patch at
 * (2*ty - 1, 2*tx - 1); pixels outside the image read zero (C zeros) */
static void input_transform(const nn_layer *L, const float *in, int n, float *V,
                            const float *zero)
{
    const int H = L->in_h, W = L->in_w, C = L->in_c;
    const int TH = (L->out_h + 1) / 2, TW = (L->out_w + 1) / 2;
    const size_t plane = plane_of((size_t)n * TH * TW, C);
    size_t t = 0;
    for (int b = 0; b < n; b++) {
        const float *img = in + (size_t)b * H * W * C;
        for (int ty = 0; ty < TH; ty++)
            for (int tx = 0; tx < TW; tx++, t++) {
                const float *p[16];
                for (int i = 0; i < 4; i++) {
                    const int y = 2 * ty - 1 + i;
                    for (int j = 0; j < 4; j++) {
                        const int x = 2 * tx - 1 + j;
                        p[4 * i + j] = y < 0 || y >= H || x < 0 || x >= W
                                           ? zero
                                           : img + ((size_t)y * W + x) * C;
                    }
                }
                input_tile(p, C, plane, V + t * C);
            }
    }
}

/* y00, y01, y10, y11 (each O floats) = A^T m A, m[x] = M[x * plane + o] */
WINO_CLONES static void output_tile(const float *m, size_t plane, int O, float *restrict y00,
                                    float *restrict y01, float *restrict y10,
                                    float *restrict y11)
{
    const float *m0 = m, *m1 = m + plane, *m2 = m + 2 * plane, *m3 = m + 3 * plane;
    const float *m4 = m + 4 * plane, *m5 = m + 5 * plane, *m6 = m + 6 * plane;
    const float *m7 = m + 7 * plane, *m8 = m + 8 * plane, *m9 = m + 9 * plane;
    const float *m10 = m + 10 * plane, *m11 = m + 11 * plane, *m12 = m + 12 * plane;
    const float *m13 = m + 13 * plane, *m14 = m + 14 * plane, *m15 = m + 15 * plane;
    for (int o = 0; o < O; o++) {
        /* s = A^T m: two rows of four */
        const float s00 = m0[o] + m4[o] + m8[o], s01 = m1[o] + m5[o] + m9[o];
        const float s02 = m2[o] + m6[o] + m10[o], s03 = m3[o] + m7[o] + m11[o];
        const float s10 = m4[o] - m8[o] - m12[o], s11 = m5[o] - m9[o] - m13[o];
        const float s12 = m6[o] - m10[o] - m14[o], s13 = m7[o] - m11[o] - m15[o];
        y00[o] = s00 + s01 + s02;
        y01[o] = s01 - s02 - s03;
        y10[o] = s10 + s11 + s12;
        y11[o] = s11 - s12 - s13;
    }
}

/* out[b][2ty + i][2tx + j][o] = (A^T M A)[i][j] for the pixels inside; the
 * others go to the 3 sinks of O floats */
static void output_transform(const nn_layer *L, const float *M, int n, float *out, float *sink)
{
    const int OH = L->out_h, OW = L->out_w, O = L->out_c;
    const int TH = (OH + 1) / 2, TW = (OW + 1) / 2;
    const size_t plane = plane_of((size_t)n * TH * TW, O);
    size_t t = 0;
    for (int b = 0; b < n; b++) {
        float *img = out + (size_t)b * OH * OW * O;
        for (int ty = 0; ty < TH; ty++)
            for (int tx = 0; tx < TW; tx++, t++) {
                ptrdiff_t off[4];
                float *y[4];
                tile_pixels(ty, tx, OH, OW, O, off);
                for (int k = 0; k < 4; k++) y[k] = off[k] >= 0 ? img + off[k] : sink + (k - 1) * O;
                output_tile(M + t * O, plane, O, y[0], y[1], y[2], y[3]);
            }
    }
}

void nn_wino_forward(const nn_layer *L, const float *in, const float *U, float *out, int B,
                     float *scratch)
{
    const int C = L->in_c, O = L->out_c;
    const int chunk = chunk_images(L, B), tiles = tiles_of(L);
    for (int b0 = 0; b0 < B; b0 += chunk) {
        const int n = B - b0 < chunk ? B - b0 : chunk;
        const int T = n * tiles;
        const size_t pv = plane_of((size_t)T, C), pm = plane_of((size_t)T, O);
        float *V = scratch, *M = V + 16 * pv, *zero = M + 16 * pm;
        float *sink = zero + (C > O ? C : O);
        memset(zero, 0, sizeof(float) * C);
        input_transform(L, in + (size_t)b0 * L->in_size, n, V, zero);
        for (int x = 0; x < 16; x++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, O, C, 1.0f, V + x * pv, C,
                        U + (size_t)x * O * C, C, 0.0f, M + x * pm, O);
        output_transform(L, M, n, out + (size_t)b0 * L->out_size, sink);
    }
}

/* ---- weight gradients ---------------------------------------------------------
 * The forward pass is exactly the convolution, so differentiating its formula
 * gives the convolution's weight gradient: with Y = A^T [(G g G^T) . (B^T d B)] A
 * per tile, dg = G^T [ (A dY A^T) . (B^T d B) ] G summed over tiles. Per
 * transformed position x that sum over tiles is one GEMM,
 * Z[x] (O x C) += P[x]^T (O x T) * V[x] (T x C), with P[x] = (A dY A^T)[x]. */

/* P[x][t][o] = (A dY A^T)[x] for every tile t of n images; the pixels of a
 * cut tile that do not exist read O zeros */
static void grad_output_transform(const nn_layer *L, const float *dout, int n, float *P,
                                  const float *zero)
{
    const int OH = L->out_h, OW = L->out_w, O = L->out_c;
    const int TH = (OH + 1) / 2, TW = (OW + 1) / 2;
    const size_t plane = plane_of((size_t)n * TH * TW, O);
    size_t t = 0;
    for (int b = 0; b < n; b++) {
        const float *img = dout + (size_t)b * OH * OW * O;
        for (int ty = 0; ty < TH; ty++)
            for (int tx = 0; tx < TW; tx++, t++) {
                ptrdiff_t off[4];
                tile_pixels(ty, tx, OH, OW, O, off);
                const float *y00 = img + off[0];
                const float *y01 = off[1] >= 0 ? img + off[1] : zero;
                const float *y10 = off[2] >= 0 ? img + off[2] : zero;
                const float *y11 = off[3] >= 0 ? img + off[3] : zero;
                float *p = P + t * O;
                for (int o = 0; o < O; o++) {
                    const float a = y00[o], bb = y01[o], c = y10[o], d = y11[o];
                    /* rows: A dY (A = [1 0; 1 1; 1 -1; 0 -1]) */
                    const float r0a = a, r0b = bb, r1a = a + c, r1b = bb + d;
                    const float r2a = a - c, r2b = bb - d, r3a = -c, r3b = -d;
                    /* columns: (A dY) A^T */
                    p[0 * plane + o] = r0a, p[1 * plane + o] = r0a + r0b;
                    p[2 * plane + o] = r0a - r0b, p[3 * plane + o] = -r0b;
                    p[4 * plane + o] = r1a, p[5 * plane + o] = r1a + r1b;
                    p[6 * plane + o] = r1a - r1b, p[7 * plane + o] = -r1b;
                    p[8 * plane + o] = r2a, p[9 * plane + o] = r2a + r2b;
                    p[10 * plane + o] = r2a - r2b, p[11 * plane + o] = -r2b;
                    p[12 * plane + o] = r3a, p[13 * plane + o] = r3a + r3b;
                    p[14 * plane + o] = r3a - r3b, p[15 * plane + o] = -r3b;
                }
            }
    }
}

size_t nn_wino_grad_scratch_floats(const nn_layer *L, int max_batch)
{
    /* V and P of a chunk (the forward pass's V and M sizes), the edges, and Z */
    return nn_wino_scratch_floats(L, max_batch) + nn_wino_weight_floats(L);
}

void nn_wino_weight_grad(const nn_layer *L, const float *in, const float *dout, int B,
                         float *dW, float *scratch)
{
    const int C = L->in_c, O = L->out_c;
    const int chunk = chunk_images(L, B), tiles = tiles_of(L);
    const size_t plane = (size_t)O * C;
    float *Z = scratch + nn_wino_scratch_floats(L, B);
    for (int b0 = 0; b0 < B; b0 += chunk) {
        const int n = B - b0 < chunk ? B - b0 : chunk;
        const int T = n * tiles;
        const size_t pv = plane_of((size_t)T, C), pp = plane_of((size_t)T, O);
        float *V = scratch, *P = V + 16 * pv, *zero = P + 16 * pp;
        memset(zero, 0, sizeof(float) * (C > O ? C : O));
        input_transform(L, in + (size_t)b0 * L->in_size, n, V, zero);
        grad_output_transform(L, dout + (size_t)b0 * L->out_size, n, P, zero);
        for (int x = 0; x < 16; x++)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, C, T, 1.0f, P + x * pp, O,
                        V + x * pv, C, b0 ? 1.0f : 0.0f, Z + x * plane, C);
    }
    /* dW[o][ky][kx][c] += (G^T Z G)[ky][kx], G^T = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1] */
    for (int o = 0; o < O; o++)
        for (int c = 0; c < C; c++) {
            float z[4][4], h[3][4];
            for (int x = 0; x < 16; x++) z[x / 4][x % 4] = Z[x * plane + (size_t)o * C + c];
            for (int j = 0; j < 4; j++) { /* h = G^T z */
                h[0][j] = z[0][j] + 0.5f * (z[1][j] + z[2][j]);
                h[1][j] = 0.5f * (z[1][j] - z[2][j]);
                h[2][j] = 0.5f * (z[1][j] + z[2][j]) + z[3][j];
            }
            float *w = dW + (size_t)o * 9 * C + c;
            for (int i = 0; i < 3; i++) { /* h G */
                w[(size_t)(i * 3 + 0) * C] += h[i][0] + 0.5f * (h[i][1] + h[i][2]);
                w[(size_t)(i * 3 + 1) * C] += 0.5f * (h[i][1] - h[i][2]);
                w[(size_t)(i * 3 + 2) * C] += 0.5f * (h[i][1] + h[i][2]) + h[i][3];
            }
        }
}
