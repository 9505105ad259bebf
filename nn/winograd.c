/* winograd.c - 3x3 "same" convolutions by Winograd's F(2x2, 3x3) and
 * F(4x4, 3x3), in inference and in training (forward, input and weight
 * gradients), and F(6x6, 3x3) in inference (nn_wino_tile).
 *
 * Each m x m block of output pixels (a tile) comes from an (m+2)x(m+2)
 * input patch d: Y = A^T [ (G g G^T) . (B^T d B) ] A, an elementwise
 * product in the transformed space, so per tile and channel pair it takes
 * 16 multiplications for a 2x2 tile instead of 36 (2.25x fewer), 36 for a
 * 4x4 tile instead of 144 (4x fewer), 64 for a 6x6 tile instead of 324.
 * Summed over input channels the P products (P = 16, 36 or 64) are P
 * independent GEMMs, M[x] (T x O) = V[x] (T x C) * U[x] (C x O), over the T
 * tiles of a chunk of images (gemm_nn.c); the transforms before and after
 * are cheap adds, vectorised over channels
 * (NHWC keeps them contiguous). Layers of 8x8 pixels and more use 4x4 tiles
 * (their transforms: winograd_f43.c), smaller ones 2x2; in inference, layers
 * of 24x24 and more 6x6 tiles (winograd_f63.c: 64 products per tile, 1.27x
 * fewer than 4x4 tiles on the same pixels):
 *
 *   B^T = | 1  0 -1  0 |   G = | 1    0    0   |   A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |       | 1/2  1/2  1/2 |         | 0  1 -1 -1 |
 *         | 0 -1  1  0 |       | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |       | 0    0    1   |
 *
 * The weight transform U runs once per plan (infer_plan.c) and once per
 * training step (trainer.c), where for 2x2 tiles the same U also gives the
 * input gradient (see wino_conv). Where a chunk has few tiles the GEMMs are
 * too thin to pay (measured on vgg_wide's 6x6 layers at batch 1: 0.75x of
 * im2col + one GEMM; 1.5x at batch 8), so Winograd is used only from
 * NN_WINO_MIN_TILES tiles on. gemm_nn.c's kernel has no such fixed cost per
 * call: with it, from NN_WINO_MIN_TILES_FAST (batch-1 latency of vgg_wide
 * 3.33 -> 2.73 ms). The error against direct convolution is a few
 * float roundings (tests: at most 2e-5 of the largest output, 4e-5 with
 * 6x6 tiles; measured up to 1.1e-6, 3.7e-6 and 8.2e-6 with 2x2, 4x4 and
 * 6x6 tiles). */
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

static int tiles_of(const nn_layer *L, int m)
{
    return ((L->out_h + m - 1) / m) * ((L->out_w + m - 1) / m);
}

/* transformed positions: 16, 36 or 64 */
static int planes_of(int m)
{
    return (m + 2) * (m + 2);
}

/* Output tile side in training (and so in the input gradient's convolution,
 * which has the same pixels): 4 (F(4x4, 3x3), winograd_f43.c) from 8x8
 * pixels on. Below, 4x4 tiles would compute as much padding as F(2x2) saves
 * (a 6x6 image: 4 tiles x 36 products = 9 tiles x 16). */
static int tile_side(const nn_layer *L)
{
    return L->out_h >= 8 && L->out_w >= 8 ? 4 : 2;
}

/* In inference also 6 (F(6x6, 3x3), winograd_f63.c, forward only) where it
 * computes fewer products than 4x4 tiles and an image still has 16 tiles or
 * more: vgg_wide's 48x48 and 24x24 layers (0.79x the products). At 12x12 an
 * image has 4 tiles: at batch 1 its GEMMs would be 4 rows tall over 1.8x
 * the filter bytes, and those layers already wait on memory there. Without
 * a kernel of ours (OpenBLAS) an image needs NN_WINO_MIN_TILES of them, or
 * a batch of one would go to im2col (nn_wino_use) where 4x4 tiles do not. */
int nn_wino_tile(const nn_layer *L, int inference)
{
    const int m = tile_side(L), need = nn_gemm_nn_fast() ? 16 : NN_WINO_MIN_TILES;
    if (inference && tiles_of(L, 6) >= need &&
        tiles_of(L, 6) * planes_of(6) < tiles_of(L, m) * planes_of(m))
        return 6;
    return m;
}

/* The weight gradient's images per chunk: as many tiles as keep the
 * chunk's transformed matrices at NN_WINO_CHUNK_TILES F(2x2) tiles' worth,
 * at least one image. Its GEMMs sum over the tiles into P planes of O x C
 * (Z, 9.4 MB for a 384 -> 384 layer), read and written again per chunk, so
 * its chunks stay large. */
static int chunk_images(const nn_layer *L, int m, int batch)
{
    int n = NN_WINO_CHUNK_TILES * 16 / planes_of(m) / tiles_of(L, m);
    if (n < 1) n = 1;
    return n < batch ? n : batch;
}

/* A convolution's tiles per chunk: the batch's B x tiles cut into chunks of
 * at most NN_WINO_CONV_TILES, as even as they go (a 9-tile image at batch 4:
 * 18 + 18, not 32 + 4), across image boundaries. With larger chunks (whole
 * images, up to 576 F(2x2) tiles' worth) the transformed input and output
 * of a chunk, up to 28 MB for a 384 -> 384 layer at batch 64, fell out of
 * the caches between the transform that wrote them and the GEMMs or the
 * transform that read them; the GEMMs' filters, read again per chunk, stay
 * in L2 or stream with the prefetch (gemm_nn.c). vgg_wide, one thread, both
 * builds in one process alternated (median round ratio): batch 64 1.063x
 * images/s, its 12x12 and 6x6 layers 6-15% faster each; batch 2 1.022x;
 * batch 1 1.018x (only the 48x48 layer, 64 tiles, is cut); training at
 * batch 64 on two threads 1.12x. bench/README.md, "Chunks of at most 32
 * tiles". */
static int conv_chunk_tiles(const nn_layer *L, int m, int batch)
{
    const long total = (long)batch * tiles_of(L, m);
    const long chunks = (total + NN_WINO_CONV_TILES - 1) / NN_WINO_CONV_TILES;
    return chunks > 0 ? (int)((total + chunks - 1) / chunks) : 1; /* 1: an empty batch */
}

int nn_wino_use(const nn_layer *L, int m, int batch)
{
    return (long)batch * tiles_of(L, m) >=
           (nn_gemm_nn_fast() ? NN_WINO_MIN_TILES_FAST : NN_WINO_MIN_TILES);
}

/* Floats from one of the P matrices of a chunk to the next: T x W plus a
 * cache line, because the transforms read or write all P at once and with
 * T x W x 4 bytes a multiple of 4096 (1152 tiles of 48 channels) the P
 * streams would fall on the same L1 cache sets. */
static size_t plane_of(size_t T, int W)
{
    return T * (size_t)W + 16;
}

size_t nn_wino_weight_floats(const nn_layer *L, int m)
{
    /* the forward filters' planes are C x O, the input gradient's O x C:
     * the same unless the panels pad */
    const size_t f = nn_gemm_panel_floats(L->in_c, L->out_c);
    const size_t g = nn_gemm_panel_floats(L->out_c, L->in_c);
    return (size_t)planes_of(m) * (f > g ? f : g);
}

static int wider(const nn_layer *L)
{
    return L->in_c > L->out_c ? L->in_c : L->out_c;
}

/* After the V and M (or P) matrices of a chunk: what the pixels of a tile
 * outside the image read (zeros, as many as the wider side has channels),
 * where their outputs go (m*m - 1 separate sinks of O floats: a 1x1 image's
 * tile has that many missing outputs, and they must not alias), so that the
 * transforms need no test per channel; then the rows between the two 1-D
 * passes of F(4x4) (36) and F(6x6) (64). */
static size_t edge_floats(const nn_layer *L, int m)
{
    return (size_t)wider(L) + (size_t)(m * m - 1) * L->out_c +
           (m > 2 ? (size_t)planes_of(m) * wider(L) : 0);
}

/* V, M and the edges of a chunk of t tiles */
static size_t chunk_floats(const nn_layer *L, int m, size_t t)
{
    return (size_t)planes_of(m) * (plane_of(t, L->in_c) + plane_of(t, L->out_c)) +
           edge_floats(L, m);
}

size_t nn_wino_scratch_floats(const nn_layer *L, int m, int max_batch)
{
    /* a smaller batch's evened chunk can be larger than max_batch's (27
     * tiles against 18 + 18), never more than NN_WINO_CONV_TILES */
    const size_t t = (size_t)max_batch * tiles_of(L, m);
    return chunk_floats(L, m, t < NN_WINO_CONV_TILES ? t : NN_WINO_CONV_TILES);
}

/* the weight gradient's V, P and edges (chunk_images) */
static size_t grad_chunk_floats(const nn_layer *L, int m, int max_batch)
{
    return chunk_floats(L, m, (size_t)chunk_images(L, m, max_batch) * tiles_of(L, m));
}

/* One chunk's scratch, T tiles: V (the transformed input, P planes of T x C
 * floats), M (P planes of T x O: the GEMMs' products, or the weight
 * gradient's transformed output gradient), then the edges (edge_floats):
 * zero, the m*m - 1 sinks, the tmp of F(4x4) and F(6x6). zero is cleared
 * here. */
typedef struct {
    float *V, *M, *zero, *sink, *tmp;
    size_t pv, pm; /* floats from one plane of V (of M) to the next */
} chunk_bufs;

static chunk_bufs chunk_scratch(const nn_layer *L, int m, int T, float *scratch)
{
    const int P = planes_of(m);
    chunk_bufs c;
    c.pv = plane_of((size_t)T, L->in_c), c.pm = plane_of((size_t)T, L->out_c);
    c.V = scratch, c.M = c.V + P * c.pv, c.zero = c.M + P * c.pm;
    c.sink = c.zero + wider(L), c.tmp = c.sink + (size_t)(m * m - 1) * L->out_c;
    memset(c.zero, 0, sizeof(float) * wider(L));
    return c;
}

/* Offsets of the m x m output pixels of tile (ty, tx) in an OH x OW x O
 * image, row by row; -1 for a pixel past the right or bottom edge. */
static void tile_pixels(int m, int ty, int tx, int OH, int OW, int O, ptrdiff_t *off)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) {
            const int y = m * ty + i, x = m * tx + j;
            off[m * i + j] = y < OH && x < OW ? ((ptrdiff_t)y * OW + x) * O : -1;
        }
}

/* The F(2x2) transforms run over the channels of one tile with every
 * operand in a named variable (no small arrays), so that the compiler
 * vectorises the channel loop (NN_WINO_CLONES: one clone per ISA). */

/* The 16 matrices an F(2x2) transform reads or writes, one named pointer
 * each (named, not an array: see above): DECL q0 = base, DECL q1 = base +
 * plane, ..., DECL q15 = base + 15 * plane, for DECL e.g. "*restrict". */
#define WINO_PLANES(T, DECL, q, base, plane)                                              \
    T DECL q##0 = (base), DECL q##1 = (base) + (plane), DECL q##2 = (base) + 2 * (plane),   \
      DECL q##3 = (base) + 3 * (plane), DECL q##4 = (base) + 4 * (plane),                   \
      DECL q##5 = (base) + 5 * (plane), DECL q##6 = (base) + 6 * (plane),                   \
      DECL q##7 = (base) + 7 * (plane), DECL q##8 = (base) + 8 * (plane),                   \
      DECL q##9 = (base) + 9 * (plane), DECL q##10 = (base) + 10 * (plane),                 \
      DECL q##11 = (base) + 11 * (plane), DECL q##12 = (base) + 12 * (plane),               \
      DECL q##13 = (base) + 13 * (plane), DECL q##14 = (base) + 14 * (plane),               \
      DECL q##15 = (base) + 15 * (plane)

/* u[x * plane + c] = (G g G^T)[x] for n channels of the filters of one
 * output channel, g[ky][kx] = w[(3 ky + kx) * C + c] (W's layout
 * [O][3][3][C]) */
NN_WINO_CLONES static void filter_tile(const float *w, int C, int n, size_t plane,
                                       float *restrict u)
{
    const float *g00 = w, *g01 = w + C, *g02 = w + 2 * C, *g10 = w + 3 * C, *g11 = w + 4 * C;
    const float *g12 = w + 5 * C, *g20 = w + 6 * C, *g21 = w + 7 * C, *g22 = w + 8 * C;
    WINO_PLANES(float, *restrict, u, u, plane);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC ivdep /* the 16 outputs never alias the 9 inputs */
#endif
    for (int c = 0; c < n; c++) {
        /* rows: t = G g */
        const float t00 = g00[c], t01 = g01[c], t02 = g02[c];
        const float t10 = 0.5f * (g00[c] + g10[c] + g20[c]);
        const float t11 = 0.5f * (g01[c] + g11[c] + g21[c]);
        const float t12 = 0.5f * (g02[c] + g12[c] + g22[c]);
        const float t20 = 0.5f * (g00[c] - g10[c] + g20[c]);
        const float t21 = 0.5f * (g01[c] - g11[c] + g21[c]);
        const float t22 = 0.5f * (g02[c] - g12[c] + g22[c]);
        const float t30 = g20[c], t31 = g21[c], t32 = g22[c];
        /* columns: t G^T */
        u0[c] = t00, u1[c] = 0.5f * (t00 + t01 + t02), u2[c] = 0.5f * (t00 - t01 + t02);
        u3[c] = t02;
        u4[c] = t10, u5[c] = 0.5f * (t10 + t11 + t12), u6[c] = 0.5f * (t10 - t11 + t12);
        u7[c] = t12;
        u8[c] = t20, u9[c] = 0.5f * (t20 + t21 + t22), u10[c] = 0.5f * (t20 - t21 + t22);
        u11[c] = t22;
        u12[c] = t30, u13[c] = 0.5f * (t30 + t31 + t32), u14[c] = 0.5f * (t30 - t31 + t32);
        u15[c] = t32;
    }
}

/* U[x] = (G g G^T)[x] for the 3x3 filters g = W[o][.][.][c] of every pair
 * (o, c), C x O (nn_gemm_nn_panels' B in the forward pass) if by_c, else
 * O x C (that of the input gradient), each plane in the GEMM's panel layout
 * (nn_gemm_panel_at; the planes nn_gemm_panel_floats apart); the filters
 * turned by 180 degrees (the taps read in reverse) if turned, which only
 * F(4x4) needs (see nn_wino_pack_turned). Blocks of 16 x 16 channel pairs
 * go through a buffer on the stack (64 KB for F(6x6)), transposed from there
 * when by_c; a block's 16 columns never straddle two panels (those are 32
 * wide). */
static void pack(const nn_layer *L, int m, const float *W, int turned, int by_c, float *U)
{
    enum { BL = 16 };
    float blk[64 * BL * BL], tmp[24 * BL];
    const int O = L->out_c, C = L->in_c, P = planes_of(m);
    const int panels = nn_gemm_panels(), R = by_c ? C : O, S = by_c ? O : C;
    const size_t plane = nn_gemm_panel_floats(R, S);
    if (plane != (size_t)R * S) /* the panels' padding columns */
        memset(U, 0, sizeof(float) * plane * P);
    for (int o0 = 0; o0 < O; o0 += BL)
        for (int c0 = 0; c0 < C; c0 += BL) {
            const int on = O - o0 < BL ? O - o0 : BL, cn = C - c0 < BL ? C - c0 : BL;
            /* blk[x][o][c] */
            for (int o = 0; o < on; o++) {
                const float *w = W + (size_t)(o0 + o) * 9 * C + c0;
                if (m == 2) {
                    filter_tile(w, C, cn, BL * BL, blk + o * BL);
                } else {
                    const float *g[9];
                    for (int k = 0; k < 9; k++) g[k] = w + (size_t)(turned ? 8 - k : k) * C;
                    if (m == 6)
                        nn_wino63_filter_tile(g, cn, BL * BL, blk + o * BL, tmp);
                    else
                        nn_wino43_filter_tile(g, cn, BL * BL, blk + o * BL, tmp);
                }
            }
            for (int x = 0; x < P; x++) {
                const float *b = blk + x * BL * BL;
                float *u = U + x * plane;
                if (by_c)
                    for (int c = 0; c < cn; c++) {
                        float *row = u + nn_gemm_panel_at(panels, R, S, c0 + c, o0);
                        for (int o = 0; o < on; o++) row[o] = b[o * BL + c];
                    }
                else
                    for (int o = 0; o < on; o++) {
                        float *row = u + nn_gemm_panel_at(panels, R, S, o0 + o, c0);
                        for (int c = 0; c < cn; c++) row[c] = b[o * BL + c];
                    }
            }
        }
}

void nn_wino_pack(const nn_layer *L, int m, const float *W, float *U)
{
    pack(L, m, W, 0, 1, U);
}

void nn_wino_pack_f16(const nn_layer *L, int m, const float *W, float *tmp, uint16_t *Uh)
{
    const size_t plane = nn_gemm_panel_floats(L->in_c, L->out_c);
    nn_wino_pack(L, m, W, tmp);
    for (int x = 0; x < planes_of(m); x++)
        nn_gemm_panels_to_f16(nn_gemm_panels(), L->in_c, L->out_c, tmp + x * plane,
                              Uh + x * plane);
}

/* The input gradient multiplies by U[x] O x C. For F(2x2) that is the
 * forward transform read at mirrored positions (see wino_conv); F(4x4)'s
 * points 2 and -2 have no mirror among them (unlike F(2x2)'s 0, 1, -1 and
 * infinity), so there the turned filters are transformed themselves. */
void nn_wino_pack_turned(const nn_layer *L, const float *W, float *Ut)
{
    const int m = tile_side(L);
    pack(L, m, W, m == 4, 0, Ut);
}

/* v[x * plane + c] = (B^T d B)[x] for one tile, d[i][j] = p[4i + j][c] */
NN_WINO_CLONES static void input_tile(const float *const *p, int C, size_t plane,
                                   float *restrict v)
{
    const float *d00 = p[0], *d01 = p[1], *d02 = p[2], *d03 = p[3];
    const float *d10 = p[4], *d11 = p[5], *d12 = p[6], *d13 = p[7];
    const float *d20 = p[8], *d21 = p[9], *d22 = p[10], *d23 = p[11];
    const float *d30 = p[12], *d31 = p[13], *d32 = p[14], *d33 = p[15];
    WINO_PLANES(float, *restrict, v, v, plane);
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

/* A tile of a batch: its image b, its row ty and column tx among the TH x
 * TW tiles of an image. A chunk's tiles go image by image, row by row. */
typedef struct {
    int b, ty, tx;
} tile_pos;

static tile_pos tile_at(long g, int TH, int TW)
{
    const long per = (long)TH * TW;
    const tile_pos p = {(int)(g / per), (int)(g % per / TW), (int)(g % TW)};
    return p;
}

static void tile_next(tile_pos *p, int TH, int TW)
{
    if (++p->tx < TW) return;
    p->tx = 0;
    if (++p->ty < TH) return;
    p->ty = 0, p->b++;
}

/* V[x][t][c] for the T tiles t of a chunk, tiles g0 .. g0 + T - 1 of the
 * batch in: d is the (m+2)x(m+2) patch at (m*ty - 1, m*tx - 1); pixels
 * outside the image read zero (C zeros) */
static void input_transform(const nn_layer *L, int m, const float *in, long g0, int T, float *V,
                            const float *zero, float *tmp)
{
    const int H = L->in_h, W = L->in_w, C = L->in_c, a = m + 2;
    const int TH = (L->out_h + m - 1) / m, TW = (L->out_w + m - 1) / m;
    const size_t plane = plane_of((size_t)T, C);
    tile_pos q = tile_at(g0, TH, TW);
    for (size_t t = 0; t < (size_t)T; t++, tile_next(&q, TH, TW)) {
        const float *img = in + (size_t)q.b * H * W * C;
        const float *p[64];
        for (int i = 0; i < a; i++) {
            const int y = m * q.ty - 1 + i;
            for (int j = 0; j < a; j++) {
                const int x = m * q.tx - 1 + j;
                p[a * i + j] =
                    y < 0 || y >= H || x < 0 || x >= W ? zero : img + ((size_t)y * W + x) * C;
            }
        }
        if (m == 6)
            nn_wino63_input_tile(p, C, plane, V + t * C, tmp);
        else if (m == 4)
            nn_wino43_input_tile(p, C, plane, V + t * C, tmp);
        else
            input_tile(p, C, plane, V + t * C);
    }
}

/* y00, y01, y10, y11 (each O floats) = A^T m A + bias, m[x] = M[x * plane + o],
 * then max(0, y) if relu (fused here: one pass over the output less) */
NN_WINO_CLONES static void output_tile(const float *m, size_t plane, int O, const float *bias,
                                    int relu, float *restrict y00, float *restrict y01,
                                    float *restrict y10, float *restrict y11)
{
    WINO_PLANES(const float, *, m, m, plane);
    for (int o = 0; o < O; o++) {
        /* s = A^T m: two rows of four */
        const float s00 = m0[o] + m4[o] + m8[o], s01 = m1[o] + m5[o] + m9[o];
        const float s02 = m2[o] + m6[o] + m10[o], s03 = m3[o] + m7[o] + m11[o];
        const float s10 = m4[o] - m8[o] - m12[o], s11 = m5[o] - m9[o] - m13[o];
        const float s12 = m6[o] - m10[o] - m14[o], s13 = m7[o] - m11[o] - m15[o];
        float a = s00 + s01 + s02 + bias[o], b = s01 - s02 - s03 + bias[o];
        float c = s10 + s11 + s12 + bias[o], d = s11 - s12 - s13 + bias[o];
        if (relu) { /* the compiler takes the test out of the loop */
            a = a > 0 ? a : 0.0f, b = b > 0 ? b : 0.0f;
            c = c > 0 ? c : 0.0f, d = d > 0 ? d : 0.0f;
        }
        y00[o] = a, y01[o] = b, y10[o] = c, y11[o] = d;
    }
}

/* out[b][m ty + i][m tx + j][o] = (A^T M A)[i][j] + bias[o] (then ReLU if
 * relu) for the pixels inside of the T tiles of a chunk (tiles g0 .. g0 +
 * T - 1 of the batch out); the others go to the m*m - 1 sinks of O floats
 * (pixel (0, 0) of a tile is always inside) */
static void output_transform(const nn_layer *L, int m, const float *M, long g0, int T,
                             const float *bias, int relu, float *out, float *sink, float *tmp)
{
    const int OH = L->out_h, OW = L->out_w, O = L->out_c;
    const int TH = (OH + m - 1) / m, TW = (OW + m - 1) / m;
    const size_t plane = plane_of((size_t)T, O);
    tile_pos q = tile_at(g0, TH, TW);
    for (size_t t = 0; t < (size_t)T; t++, tile_next(&q, TH, TW)) {
        float *img = out + (size_t)q.b * OH * OW * O;
        ptrdiff_t off[36];
        float *y[36];
        tile_pixels(m, q.ty, q.tx, OH, OW, O, off);
        for (int k = 0; k < m * m; k++)
            y[k] = off[k] >= 0 ? img + off[k] : sink + (size_t)(k - 1) * O;
        if (m == 6)
            nn_wino63_output_tile(M + t * O, plane, O, bias, relu, y, tmp);
        else if (m == 4)
            nn_wino43_output_tile(M + t * O, plane, O, bias, relu, y, tmp);
        else
            output_tile(M + t * O, plane, O, bias, relu, y[0], y[1], y[2], y[3]);
    }
}

/* out = the convolution L of in by U's filters: M[x] = V[x] * U[x] with U[x]
 * C x O (in the panels nn_wino_pack writes). Turned, U is what
 * nn_wino_pack_turned wrote for the layer whose input gradient L computes
 * (L's C and O swapped, so again U[x] is L's C x O), and the filters are
 * those turned by 180 degrees. For F(2x2), G rot(g) G^T = P (G g G^T) P^T
 * with P swapping rows 0 and 3 (G's rows 0 and 3 are each other's reverse,
 * rows 1 and 2 symmetric), so U[x] is the forward transform read at x's
 * mirror position. */
static void wino_conv(const nn_layer *L, int m, const float *in, const float *U,
                      const uint16_t *Uh, int turned, const float *bias, int relu, float *out,
                      int B, float *scratch)
{
    static const int mirror[4] = {3, 1, 2, 0};
    const int C = L->in_c, O = L->out_c, P = planes_of(m);
    const int chunk = conv_chunk_tiles(L, m, B);
    const long total = (long)B * tiles_of(L, m);
    const size_t up = nn_gemm_panel_floats(C, O);
    for (long g0 = 0; g0 < total; g0 += chunk) {
        const int T = total - g0 < chunk ? (int)(total - g0) : chunk;
        const chunk_bufs c = chunk_scratch(L, m, T, scratch);
        input_transform(L, m, in, g0, T, c.V, c.zero, c.tmp);
        for (int x = 0; x < P; x++) {
            /* F(4x4)'s turned U was transformed turned (nn_wino_pack_turned) */
            const int ux = turned && m == 2 ? 4 * mirror[x / 4] + mirror[x % 4] : x;
            if (Uh) /* NN_PRECISION_FP16: the same panels in halves */
                nn_gemm_nn_panels_f16(T, O, C, c.V + x * c.pv, C, Uh + (size_t)ux * up,
                                      c.M + x * c.pm, O);
            else
                nn_gemm_nn_panels(T, O, C, c.V + x * c.pv, C, U + (size_t)ux * up,
                                  c.M + x * c.pm, O);
        }
        /* zero is also the bias if there is none */
        output_transform(L, m, c.M, g0, T, bias ? bias : c.zero, relu, out, c.sink, c.tmp);
    }
}

void nn_wino_forward(const nn_layer *L, int m, const float *in, const float *U,
                     const float *bias, int relu, float *out, int B, float *scratch)
{
    wino_conv(L, m, in, U, NULL, 0, bias, relu, out, B, scratch);
}

void nn_wino_forward_f16(const nn_layer *L, int m, const float *in, const uint16_t *Uh,
                         const float *bias, int relu, float *out, int B, float *scratch)
{
    wino_conv(L, m, in, NULL, Uh, 0, bias, relu, out, B, scratch);
}

/* The convolution from the gradient of L's output to that of its input:
 * L with its input and output swapped (and the filters turned) */
static nn_layer input_grad_layer(const nn_layer *L)
{
    nn_layer T = *L;
    T.in_c = L->out_c, T.out_c = L->in_c;
    T.in_size = L->out_size, T.out_size = L->in_size;
    return T;
}

void nn_wino_input_grad(const nn_layer *L, const float *dout, const float *Ut, float *din,
                        int B, float *scratch)
{
    const nn_layer G = input_grad_layer(L);
    wino_conv(&G, tile_side(L), dout, Ut, NULL, 1, NULL, 0, din, B, scratch);
}

/* ---- weight gradients ---------------------------------------------------------
 * The forward pass is exactly the convolution, so differentiating its formula
 * gives the convolution's weight gradient: with Y = A^T [(G g G^T) . (B^T d B)] A
 * per tile, dg = G^T [ (A dY A^T) . (B^T d B) ] G summed over tiles. Per
 * transformed position x that sum over tiles is one GEMM,
 * Z[x] (O x C) += P[x]^T (O x T) * V[x] (T x C), with P[x] = (A dY A^T)[x]. */

/* p[x * plane + o] = (A dY A^T)[x] for one tile whose four output pixels'
 * gradients are y00, y01, y10, y11 (O floats each) */
NN_WINO_CLONES static void grad_output_tile(const float *y00, const float *y01, const float *y10,
                                         const float *y11, int O, size_t plane,
                                         float *restrict p)
{
    WINO_PLANES(float, *restrict, p, p, plane);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC ivdep /* the 16 outputs never alias the 4 inputs */
#endif
    for (int o = 0; o < O; o++) {
        const float a = y00[o], b = y01[o], c = y10[o], d = y11[o];
        /* rows: A dY (A = [1 0; 1 1; 1 -1; 0 -1]) */
        const float r0a = a, r0b = b, r1a = a + c, r1b = b + d;
        const float r2a = a - c, r2b = b - d, r3a = -c, r3b = -d;
        /* columns: (A dY) A^T */
        p0[o] = r0a, p1[o] = r0a + r0b, p2[o] = r0a - r0b, p3[o] = -r0b;
        p4[o] = r1a, p5[o] = r1a + r1b, p6[o] = r1a - r1b, p7[o] = -r1b;
        p8[o] = r2a, p9[o] = r2a + r2b, p10[o] = r2a - r2b, p11[o] = -r2b;
        p12[o] = r3a, p13[o] = r3a + r3b, p14[o] = r3a - r3b, p15[o] = -r3b;
    }
}

/* P[x][t][o] = (A dY A^T)[x] for the T tiles of a chunk, tiles g0 .. g0 +
 * T - 1 of the batch; the pixels of a cut tile that do not exist read O
 * zeros */
static void grad_output_transform(const nn_layer *L, int m, const float *dout, long g0, int T,
                                  float *P, const float *zero, float *tmp)
{
    const int OH = L->out_h, OW = L->out_w, O = L->out_c;
    const int TH = (OH + m - 1) / m, TW = (OW + m - 1) / m;
    const size_t plane = plane_of((size_t)T, O);
    tile_pos q = tile_at(g0, TH, TW);
    for (size_t t = 0; t < (size_t)T; t++, tile_next(&q, TH, TW)) {
        const float *img = dout + (size_t)q.b * OH * OW * O;
        ptrdiff_t off[16];
        const float *y[16];
        tile_pixels(m, q.ty, q.tx, OH, OW, O, off);
        for (int k = 0; k < m * m; k++) y[k] = off[k] >= 0 ? img + off[k] : zero;
        if (m == 4)
            nn_wino43_grad_output_tile(y, O, plane, P + t * O, tmp);
        else
            grad_output_tile(y[0], y[1], y[2], y[3], O, plane, P + t * O);
    }
}

/* w[(3 ky + kx) * C + c] += (G^T z G)[ky][kx], z[x] = z[x * plane + c]: the
 * weight gradient of one output channel's filters from its 16 sums */
NN_WINO_CLONES static void grad_filter_tile(const float *z, int C, size_t plane, float *w)
{
    WINO_PLANES(const float, *, z, z, plane);
    float *w00 = w, *w01 = w + C, *w02 = w + 2 * C, *w10 = w + 3 * C, *w11 = w + 4 * C;
    float *w12 = w + 5 * C, *w20 = w + 6 * C, *w21 = w + 7 * C, *w22 = w + 8 * C;
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC ivdep /* Z and dW are separate arrays */
#endif
    for (int c = 0; c < C; c++) {
        /* rows: h = G^T z, G^T = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1] */
        const float h00 = z0[c] + 0.5f * (z4[c] + z8[c]), h01 = z1[c] + 0.5f * (z5[c] + z9[c]);
        const float h02 = z2[c] + 0.5f * (z6[c] + z10[c]);
        const float h03 = z3[c] + 0.5f * (z7[c] + z11[c]);
        const float h10 = 0.5f * (z4[c] - z8[c]), h11 = 0.5f * (z5[c] - z9[c]);
        const float h12 = 0.5f * (z6[c] - z10[c]), h13 = 0.5f * (z7[c] - z11[c]);
        const float h20 = 0.5f * (z4[c] + z8[c]) + z12[c], h21 = 0.5f * (z5[c] + z9[c]) + z13[c];
        const float h22 = 0.5f * (z6[c] + z10[c]) + z14[c];
        const float h23 = 0.5f * (z7[c] + z11[c]) + z15[c];
        /* columns: h G */
        w00[c] += h00 + 0.5f * (h01 + h02), w01[c] += 0.5f * (h01 - h02);
        w02[c] += 0.5f * (h01 + h02) + h03;
        w10[c] += h10 + 0.5f * (h11 + h12), w11[c] += 0.5f * (h11 - h12);
        w12[c] += 0.5f * (h11 + h12) + h13;
        w20[c] += h20 + 0.5f * (h21 + h22), w21[c] += 0.5f * (h21 - h22);
        w22[c] += 0.5f * (h21 + h22) + h23;
    }
}

size_t nn_wino_grad_scratch_floats(const nn_layer *L, int max_batch)
{
    /* the weight gradient: V and P of a chunk (the forward pass's V and M
     * sizes), the edges, and Z; the input gradient: its convolution's */
    const nn_layer G = input_grad_layer(L);
    const int m = tile_side(L);
    const size_t w = grad_chunk_floats(L, m, max_batch) + nn_wino_weight_floats(L, m);
    const size_t in = nn_wino_scratch_floats(&G, m, max_batch);
    return w > in ? w : in;
}

void nn_wino_weight_grad(const nn_layer *L, const float *in, const float *dout, int B,
                         float *dW, float *scratch)
{
    const int C = L->in_c, O = L->out_c, m = tile_side(L), NP = planes_of(m);
    const int chunk = chunk_images(L, m, B), tiles = tiles_of(L, m);
    const size_t plane = (size_t)O * C;
    float *Z = scratch + grad_chunk_floats(L, m, B), *tmp = NULL;
    for (int b0 = 0; b0 < B; b0 += chunk) {
        const int n = B - b0 < chunk ? B - b0 : chunk;
        const int T = n * tiles;
        const chunk_bufs c = chunk_scratch(L, m, T, scratch); /* c.M holds P */
        tmp = c.tmp;
        input_transform(L, m, in, (long)b0 * tiles, T, c.V, c.zero, c.tmp);
        grad_output_transform(L, m, dout, (long)b0 * tiles, T, c.M, c.zero, c.tmp);
        for (int x = 0; x < NP; x++)
            nn_gemm_tn(O, C, T, c.M + x * c.pm, O, c.V + x * c.pv, C, b0 > 0, Z + x * plane, C);
    }
    for (int o = 0; o < O; o++)
        if (m == 4)
            nn_wino43_grad_filter_tile(Z + (size_t)o * C, C, plane, dW + (size_t)o * 9 * C, tmp);
        else
            grad_filter_tile(Z + (size_t)o * C, C, plane, dW + (size_t)o * 9 * C);
}
