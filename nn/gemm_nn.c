/* gemm_nn.c - C = A * B, C (+)= A^T * B and C (+)= A * B^T for the
 * convolutions' GEMMs: Winograd's many small ones, and im2col's.
 *
 * A Winograd layer runs 16 to 64 GEMMs per chunk of tiles (T x C times
 * C x O, T a few hundred, C and O 48 to 384), and as many for its weight
 * gradient (O x T times T x C, summed over chunks). Through cblas_sgemm
 * each call copies ("packs") both operands into OpenBLAS's panel layouts
 * and zeroes C for beta = 0 before its kernel runs: 12% and 3% of a
 * training step (perf, vgg_wide). Here A is read in place and C is written
 * once: a 12 x 32 block of C is held in 24 registers while k runs over two
 * vectors of B's row k times A[i][k] broadcast. For A^T the 12 values a
 * step broadcasts are contiguous (row k of the stored A), so the transposed
 * case costs nothing extra. Only a K x 32 panel of B is copied, contiguous,
 * once per 32 columns: read in place, B's rows (N floats apart) fall on few
 * L1 sets and the panel would be fetched from L2 for every block of rows.
 *
 * It also keeps these GEMMs off OpenBLAS's CPU detection: Debian's 0.3.21
 * does not know Emerald Rapids (family 6, model 207) and runs its generic
 * SSE3 ("Prescott") kernels there, a third of the AVX-512 speed. With
 * AVX2 + FMA and no AVX-512 (Intel since Haswell, AMD Zen 1-3) the
 * same scheme runs on 256-bit vectors in 6 x 16 blocks: vgg_wide's batch-1
 * latency on a Zen 3 VM went from 5.8-6.3 ms through OpenBLAS to 3.2-3.4
 * ms, and to 2.2-2.3 ms with 16-wide panels and the prefetch below (with
 * the huge pages of infer_plan.c), training the same speed. Without either
 * it calls cblas_sgemm. */
#include <cblas.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"

#define PANEL_K 512 /* rows of the B panel on the stack: 64 KB; K is cut in such slices */

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

#define GEMM_AVX512 __attribute__((target("avx512f")))

/* Rows of block b when blocks cut M rows as evenly as they go (9 = 5 + 4,
 * 32 = 11 + 11 + 10): the first M % blocks take one more. */
static inline int block_rows(int M, int blocks, int b)
{
    return M / blocks + (b < M % blocks);
}

/* C[0..rows)[0..32) (+)= op(A)[0..rows)[0..K) * P[0..K)[0..32), P the
 * packed panel (w = 32 floats per k; w = 16: one vector, at most 16
 * columns), columns of C past n masked off (m0, m1: first and second 16);
 * acc: add to C instead of overwriting it. op(A)[r][k] is A[r * lda + k],
 * or A[k * lda + r] when ta. At most R = 12 rows: 24 accumulators, 2 loads
 * of P and 12 broadcasts per 24 multiply-adds. rows is a constant where it
 * is inlined (BLOCK_ROWS), so a block computes only its own rows: the 9-row
 * GEMMs of batch 1 used to run as 12 rows, the last three repeated.
 *
 * Like the AVX2 blocks, each block fetches its share of the next panel
 * (pf, pstep / 256 floats further per k: stored panels are contiguous, and
 * at batch 1 the 12x12 and 6x6 layers stream 22 MB of them from memory).
 * Two fetches per k, 16 floats apart, cover a share of up to two lines a k
 * (one block over a 32-wide panel); smaller shares fetch some lines twice,
 * which costs a load slot and no memory traffic. */
enum { R = 12 };
GEMM_AVX512 static inline __attribute__((always_inline)) void
block(int ta, int K, const float *A, int lda, const float *P, int w, const float *pf, int pstep,
      float *C, int ldc, __mmask16 m0, __mmask16 m1, int rows, int acc)
{
    /* nn: a[r] is row r, k steps by 1; ta: row r is A[r] of the k-th row of
     * the stored A, all at constant offsets from one pointer */
    const float *a[R];
#pragma GCC unroll 12
    for (int r = 0; r < rows; r++) a[r] = A + (size_t)r * (size_t)lda;
    __m512 c[R][2];
#pragma GCC unroll 12
    for (int r = 0; r < rows; r++) {
        c[r][0] = acc ? _mm512_maskz_loadu_ps(m0, C + (size_t)r * ldc) : _mm512_setzero_ps();
        c[r][1] = acc && w == 32 ? _mm512_maskz_loadu_ps(m1, C + (size_t)r * ldc + 16)
                                 : _mm512_setzero_ps();
    }
    const float *At = A;
    for (int k = 0; k < K; k++, At += ta ? lda : 0) {
        const __m512 b0 = _mm512_loadu_ps(P + (size_t)w * k);
        const __m512 b1 = w == 32 ? _mm512_loadu_ps(P + 32 * (size_t)k + 16) : b0;
        const float *f = pf + (((size_t)k * (size_t)pstep) >> 8);
        _mm_prefetch((const char *)f, _MM_HINT_T0);
        _mm_prefetch((const char *)(f + 16), _MM_HINT_T0);
#pragma GCC unroll 12
        for (int r = 0; r < rows; r++) {
            const __m512 x = _mm512_set1_ps(ta ? At[r] : a[r][k]);
            c[r][0] = _mm512_fmadd_ps(x, b0, c[r][0]);
            if (w == 32) c[r][1] = _mm512_fmadd_ps(x, b1, c[r][1]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < rows; r++) {
        _mm512_mask_storeu_ps(C + (size_t)r * ldc, m0, c[r][0]);
        if (w == 32) _mm512_mask_storeu_ps(C + (size_t)r * ldc + 16, m1, c[r][1]);
    }
}

/* block compiled for each row count 1..R and panel width (a variable count
 * would keep the accumulators in memory) */
#define BLOCK_W(ta, rws)                                                                           \
    do {                                                                                           \
        if (w == 32)                                                                               \
            block(ta, K, A, lda, P, 32, pf, pstep, C, ldc, m0, m1, rws, acc);                      \
        else                                                                                       \
            block(ta, K, A, lda, P, 16, pf, pstep, C, ldc, m0, m1, rws, acc);                      \
    } while (0)
#define BLOCK_ROWS(ta)                                                                             \
    switch (rows) {                                                                                \
    case 1: BLOCK_W(ta, 1); break;                                                                 \
    case 2: BLOCK_W(ta, 2); break;                                                                 \
    case 3: BLOCK_W(ta, 3); break;                                                                 \
    case 4: BLOCK_W(ta, 4); break;                                                                 \
    case 5: BLOCK_W(ta, 5); break;                                                                 \
    case 6: BLOCK_W(ta, 6); break;                                                                 \
    case 7: BLOCK_W(ta, 7); break;                                                                 \
    case 8: BLOCK_W(ta, 8); break;                                                                 \
    case 9: BLOCK_W(ta, 9); break;                                                                 \
    case 10: BLOCK_W(ta, 10); break;                                                               \
    case 11: BLOCK_W(ta, 11); break;                                                               \
    default: BLOCK_W(ta, R); break;                                                                \
    }

GEMM_AVX512 static void block_nn(int K, const float *A, int lda, const float *P, int w,
                                 const float *pf, int pstep, float *C, int ldc, __mmask16 m0,
                                 __mmask16 m1, int rows, int acc)
{
    BLOCK_ROWS(0)
}

GEMM_AVX512 static void block_tn(int K, const float *A, int lda, const float *P, int w,
                                 const float *pf, int pstep, float *C, int ldc, __mmask16 m0,
                                 __mmask16 m1, int rows, int acc)
{
    BLOCK_ROWS(1)
}

static __mmask16 lanes(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* C[0..M)[0..w) (+)= op(A) * P, P one packed K x w panel, n of its columns
 * real: the row blocks, as even as they go (9 rows one block, 32 = 11 + 11
 * + 10), each fetching its share of the next panel */
static void panel_rows_avx512(int ta, int M, int K, const float *A, int lda, const float *P,
                              int w, int n, float *C, int ldc, int acc)
{
    const __mmask16 m0 = lanes(n), m1 = lanes(n - 16);
    const int blocks = (M + R - 1) / R;
    const int pstep = (w << 8) / blocks; /* floats of the next panel per k, x 256 */
    for (int b = 0, i = 0; b < blocks; b++) {
        const int rows = block_rows(M, blocks, b);
        const float *pf = P + (size_t)w * K + (size_t)b * w * K / blocks;
        float *Ci = C + (size_t)i * ldc;
        if (ta)
            block_tn(K, A + i, lda, P, w, pf, pstep, Ci, ldc, m0, m1, rows, acc);
        else
            block_nn(K, A + (size_t)i * lda, lda, P, w, pf, pstep, Ci, ldc, m0, m1, rows, acc);
        i += rows;
    }
}

/* AVX2 + FMA (x86-64 since 2013-2015 without AVX-512: Haswell to Alder
 * Lake, Zen 1-3): the same scheme on 256-bit vectors. 16 registers hold a
 * 6 x 16 block of C (12), two vectors of the panel's row k and a
 * broadcast: 8 loads per 12 multiply-adds, as in OpenBLAS's Haswell
 * kernel. Its panels are 16 wide (nn_gemm_panel_width), one 64-byte line
 * per k. Columns past n: masked loads and stores. */
#define GEMM_AVX2 __attribute__((target("avx2,fma")))
enum { R2 = 6 };
/* The blocks of a panel fetch the next panel (16 K floats on: stored panels
 * are contiguous; in a packed one it is the unused rest of the buffer)
 * while they use this one. At batch 1 the 12x12 and 6x6 layers' GEMMs are
 * 9 rows tall (a block of 5 rows, then one of 4) and stream 22 MB of
 * transformed filters from memory, about a millisecond at this core's DRAM
 * bandwidth (20.5 GB/s, Zen 3 VM). With the hardware prefetcher alone (or
 * 16 rows ahead in the same panel) the first block waited for memory while
 * the second computed from L1: perf gave the 5-row loop 2.3x the time of
 * the 4-row one for 1.25x the work. The 9-row GEMMs of vgg_wide's shapes
 * (a microbenchmark, runs alternated): 1.50-2.16 ms that way; 1.16-1.88 ms
 * with each block fetching all of the next panel (the first block does, the
 * second finds it there, and memory idles meanwhile); 1.06-1.14 ms with
 * each block fetching its half. Two panels ahead, or into L2 rather than
 * L1, was no better. */

GEMM_AVX2 static inline __m256i lanes8(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* One row of a 6 x 16 block to C: its n real columns (plain stores when all
 * 16 are, masked ones m0, m1 otherwise). */
GEMM_AVX2 static inline __attribute__((always_inline)) void
store_row2(float *C, int n, __m256i m0, __m256i m1, __m256 c0, __m256 c1)
{
    if (n >= 16) {
        _mm256_storeu_ps(C, c0);
        _mm256_storeu_ps(C + 8, c1);
    } else {
        _mm256_maskstore_ps(C, m0, c0);
        _mm256_maskstore_ps(C + 8, m1, c1);
    }
}

/* C[0..rows)[0..16) (+)= op(A)[0..rows)[0..K) * P[0..K)[0..16), one
 * 16-wide panel; n columns real (1..16). rows is a constant where it is
 * inlined (BLOCK2_ROWS), so each block computes only its own rows. */
GEMM_AVX2 static inline __attribute__((always_inline)) void
block2(int ta, int K, const float *A, int lda, const float *P, const float *pf, int ps, float *C,
       int ldc, int n, int rows, int acc)
{
    const float *a[R2];
    const size_t rs = ta ? 1 : (size_t)lda, ks = ta ? (size_t)lda : 1;
#pragma GCC unroll 6
    for (int r = 0; r < rows; r++) a[r] = A + (size_t)r * rs;
    const __m256i m0 = lanes8(n), m1 = lanes8(n - 8);
    __m256 c[R2][2];
#pragma GCC unroll 6
    for (int r = 0; r < rows; r++) {
        c[r][0] = acc ? _mm256_maskload_ps(C + (size_t)r * ldc, m0) : _mm256_setzero_ps();
        c[r][1] = acc ? _mm256_maskload_ps(C + (size_t)r * ldc + 8, m1) : _mm256_setzero_ps();
    }
    for (int k = 0; k < K; k++) {
        const __m256 b0 = _mm256_loadu_ps(P + 16 * (size_t)k);
        const __m256 b1 = _mm256_loadu_ps(P + 16 * (size_t)k + 8);
        _mm_prefetch((const char *)(pf + 16 * (size_t)(k >> ps)), _MM_HINT_T0);
#pragma GCC unroll 6
        for (int r = 0; r < rows; r++) {
            const __m256 x = _mm256_broadcast_ss(a[r] + k * ks);
            c[r][0] = _mm256_fmadd_ps(x, b0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(x, b1, c[r][1]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < rows; r++) store_row2(C + (size_t)r * ldc, n, m0, m1, c[r][0], c[r][1]);
}

/* block2 compiled for each row count 1..R2 (a variable count would keep
 * the accumulators in memory) */
#define BLOCK2_ROWS(ta)                                                                            \
    switch (rows) {                                                                                \
    case 1: block2(ta, K, A, lda, P, pf, ps, C, ldc, n, 1, acc); break;                            \
    case 2: block2(ta, K, A, lda, P, pf, ps, C, ldc, n, 2, acc); break;                            \
    case 3: block2(ta, K, A, lda, P, pf, ps, C, ldc, n, 3, acc); break;                            \
    case 4: block2(ta, K, A, lda, P, pf, ps, C, ldc, n, 4, acc); break;                            \
    case 5: block2(ta, K, A, lda, P, pf, ps, C, ldc, n, 5, acc); break;                            \
    default: block2(ta, K, A, lda, P, pf, ps, C, ldc, n, R2, acc); break;                          \
    }

GEMM_AVX2 static void block2_nn(int K, const float *A, int lda, const float *P, const float *pf,
                                int ps, float *C, int ldc, int n, int rows, int acc)
{
    BLOCK2_ROWS(0)
}

GEMM_AVX2 static void block2_tn(int K, const float *A, int lda, const float *P, const float *pf,
                                int ps, float *C, int ldc, int n, int rows, int acc)
{
    BLOCK2_ROWS(1)
}

/* M rows in blocks of at most R2, as even as they go (9 = 5 + 4, not
 * 6 + 3): a block of fewer rows loads the same panel row per k for fewer
 * multiply-adds, and the panel is fetched once per block. w is 16. */
static void panel_rows_avx2(int ta, int M, int K, const float *A, int lda, const float *P, int w,
                            int n, float *C, int ldc, int acc)
{
    const int blocks = (M + R2 - 1) / R2;
    (void)w;
    for (int b = 0, i = 0; b < blocks; b++) {
        const int rows = block_rows(M, blocks, b);
        /* the next panel's rows to fetch: all of them, one per k; with two
         * blocks (M 7 to 12) each fetches its half, one row per 2 k */
        const int ps = blocks == 2;
        const float *pf = P + 16 * ((size_t)K + (ps ? b * (K / 2) : 0));
        if (ta)
            block2_tn(K, A + i, lda, P, pf, ps, C + (size_t)i * ldc, ldc, n, rows, acc);
        else
            block2_nn(K, A + (size_t)i * lda, lda, P, pf, ps, C + (size_t)i * ldc, ldc, n, rows,
                      acc);
        i += rows;
    }
}

/* The same 6 x 16 blocks over a panel of IEEE half floats (NN_PRECISION_FP16:
 * Winograd's transformed filters at half the bytes). Each k converts its
 * panel row (32 bytes, half a line) to two fp32 vectors with F16C, then
 * multiplies and adds in fp32 as block2 does, so the result is block2's on
 * the rounded filters. The next panel is fetched one line per two k. */
#define GEMM_F16 __attribute__((target("avx2,fma,f16c")))
GEMM_F16 static inline __attribute__((always_inline)) void
block2h(const float *A, int lda, const uint16_t *P, const uint16_t *pf, int ps, int K, float *C,
        int ldc, int n, int rows)
{
    const float *a[R2];
#pragma GCC unroll 6
    for (int r = 0; r < rows; r++) a[r] = A + (size_t)r * lda;
    __m256 c[R2][2];
#pragma GCC unroll 6
    for (int r = 0; r < rows; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        const __m256 b0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(P + 16 * (size_t)k)));
        const __m256 b1 =
            _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(P + 16 * (size_t)k + 8)));
        /* a 64-byte line is two panel rows: one fetch per 2 k, or per 4 k
         * of the half a block of two fetches (ps = 1) */
        if (!(k & ((2 << ps) - 1)))
            _mm_prefetch((const char *)(pf + 16 * (size_t)(k >> ps)), _MM_HINT_T0);
#pragma GCC unroll 6
        for (int r = 0; r < rows; r++) {
            const __m256 x = _mm256_broadcast_ss(a[r] + k);
            c[r][0] = _mm256_fmadd_ps(x, b0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(x, b1, c[r][1]);
        }
    }
    const __m256i m0 = lanes8(n), m1 = lanes8(n - 8);
#pragma GCC unroll 6
    for (int r = 0; r < rows; r++) store_row2(C + (size_t)r * ldc, n, m0, m1, c[r][0], c[r][1]);
}

GEMM_F16 static void block2h_rows(const float *A, int lda, const uint16_t *P, const uint16_t *pf,
                                  int ps, int K, float *C, int ldc, int n, int rows)
{
    switch (rows) {
    case 1: block2h(A, lda, P, pf, ps, K, C, ldc, n, 1); break;
    case 2: block2h(A, lda, P, pf, ps, K, C, ldc, n, 2); break;
    case 3: block2h(A, lda, P, pf, ps, K, C, ldc, n, 3); break;
    case 4: block2h(A, lda, P, pf, ps, K, C, ldc, n, 4); break;
    case 5: block2h(A, lda, P, pf, ps, K, C, ldc, n, 5); break;
    default: block2h(A, lda, P, pf, ps, K, C, ldc, n, R2); break;
    }
}

/* C = A * B, B in 16-wide panels of halves; rows in blocks as
 * panel_rows_avx2 cuts them, each fetching its share of the next panel. */
static void gemm_panels_f16(int M, int N, int K, const float *A, int lda, const uint16_t *Bh,
                            float *C, int ldc)
{
    const int blocks = (M + R2 - 1) / R2;
    for (int j = 0; j < N; j += 16) {
        const uint16_t *P = Bh + (size_t)j * K;
        for (int b = 0, i = 0; b < blocks; b++) {
            const int rows = block_rows(M, blocks, b);
            /* one block fetches the whole next panel; two split it */
            const int ps = blocks == 2;
            const uint16_t *pf = P + 16 * ((size_t)K + (ps ? (size_t)(b * (K / 2)) : 0));
            block2h_rows(A + (size_t)i * lda, lda, P, pf, ps, K, C + (size_t)i * ldc + j, ldc,
                         N - j, rows);
            i += rows;
        }
    }
}

typedef void panel_rows_fn(int ta, int M, int K, const float *A, int lda, const float *P, int w,
                           int n, float *C, int ldc, int acc);

static panel_rows_fn *panel_rows_of(int isa)
{
    return isa == NN_GEMM_AVX512 ? panel_rows_avx512 : panel_rows_avx2;
}

/* P[k][0..w) = B[k][j..j+w), zeros past n */
static void pack_panel(int K, const float *B, int ldb, int n, int w, float *P)
{
    /* a full panel (all but the last): copies of constant size, inlined as
     * vector moves rather than a libc call per row */
    if (n >= w && w == 32) {
        for (int k = 0; k < K; k++) memcpy(P + 32 * (size_t)k, B + (size_t)k * ldb, 128);
        return;
    }
    if (n >= w && w == 16) {
        for (int k = 0; k < K; k++) memcpy(P + 16 * (size_t)k, B + (size_t)k * ldb, 64);
        return;
    }
    const int m = n < w ? n : w;
    for (int k = 0; k < K; k++) {
        memcpy(P + (size_t)w * k, B + (size_t)k * ldb, sizeof(float) * m);
        for (int jj = m; jj < w; jj++) P[(size_t)w * k + jj] = 0.0f;
    }
}

/* P[k][0..w) = B^T[k][j..j+w) = B[j..j+w)[k] (B stored N x K), zeros past
 * N: a transposing copy, scalar, K x 32 stores per panel against M x K x 32
 * multiply-adds, so it pays only from NT_MIN_ROWS rows of A on (see
 * nn_gemm_nt) */
static void pack_panel_t(int K, const float *Bt, int ldb, int n, int w, float *P)
{
    for (int jj = 0; jj < w; jj++) {
        const float *b = jj < n ? Bt + (size_t)jj * ldb : NULL;
        for (int k = 0; k < K; k++) P[w * k + jj] = b ? b[k] : 0.0f;
    }
}

/* C = A * B with B already in panels (nn_gemm_panel_at): no copy, and the
 * panels are read front to back, one stream */
static void gemm_panels(int isa, int M, int N, int K, const float *A, int lda, const float *Bp,
                        float *C, int ldc)
{
    panel_rows_fn *rows = panel_rows_of(isa);
    const int W = nn_gemm_panel_width(isa);
    for (int j = 0; j < N; j += W) {
        const int n = N - j, w = nn_gemm_panel_cols(W, n);
        rows(0, M, K, A, lda, Bp + (size_t)j * K, w, n, C + j, ldc, 0);
    }
}

/* K in slices of PANEL_K, every slice after the first (or every one, acc)
 * adding to C; tb: B is stored transposed (N x K, ldb) */
static void gemm_packed(int isa, int ta, int tb, int M, int N, int K, const float *A, int lda,
                        const float *B, int ldb, int acc, float *C, int ldc)
{
    panel_rows_fn *rows = panel_rows_of(isa);
    const int W = nn_gemm_panel_width(isa);
    float P[PANEL_K * 32];
    for (int k0 = 0; k0 < K; k0 += PANEL_K) {
        const int kn = K - k0 < PANEL_K ? K - k0 : PANEL_K, add = acc || k0 > 0;
        const float *Ak = ta ? A + (size_t)k0 * lda : A + k0;
        for (int j = 0; j < N; j += W) {
            const int n = N - j, w = nn_gemm_panel_cols(W, n);
            if (tb)
                pack_panel_t(kn, B + (size_t)j * ldb + k0, ldb, n, w, P);
            else
                pack_panel(kn, B + (size_t)k0 * ldb + j, ldb, n, w, P);
            rows(ta, M, kn, Ak, lda, P, w, n, C + j, ldc, add);
        }
    }
}
#endif

int nn_gemm_isa(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f")) return NN_GEMM_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return NN_GEMM_AVX2;
#endif
    return NN_GEMM_BLAS;
}

int nn_gemm_nn_fast(void)
{
    return nn_gemm_isa() != NN_GEMM_BLAS;
}

/* Below this many rows the scalar transposing copy of B costs about as much
 * as the multiply-adds (32 / M of them): vgg_wide's 6x6 layers on im2col at
 * batch 1 (M = 36) took 6.8-7.1 ms per image this way against 3.0-3.5 ms
 * through Winograd. The im2col layers it serves have M = pixels x images. */
#define NT_MIN_ROWS 256

void nn_gemm_isa_run(int isa, int ta, int tb, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, int acc, float *C, int ldc)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (isa != NN_GEMM_BLAS && (!tb || M >= NT_MIN_ROWS)) {
        gemm_packed(isa, ta, tb, M, N, K, A, lda, B, ldb, acc, C, ldc);
        return;
    }
#else
    (void)isa;
#endif
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                N, K, 1.0f, A, lda, B, ldb, acc ? 1.0f : 0.0f, C, ldc);
}

void nn_gemm_isa_panels(int isa, int M, int N, int K, const float *A, int lda, const float *Bp,
                        float *C, int ldc)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (isa != NN_GEMM_BLAS) {
        gemm_panels(isa, M, N, K, A, lda, Bp, C, ldc);
        return;
    }
#else
    (void)isa;
#endif
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, Bp, N, 0.0f,
                C, ldc);
}

int nn_gemm_f16_supported(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    /* F16C from CPUID itself: clang 14's __builtin_cpu_supports does not
     * know "f16c" (the fuzz build); AVX2's check covers the OS saving the
     * ymm registers, which F16C's instructions need too */
    unsigned a, b, c, d;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
#else
    return 0;
#endif
}

void nn_gemm_nn_panels_f16(int M, int N, int K, const float *A, int lda, const uint16_t *Bh,
                           float *C, int ldc)
{
#if defined(__x86_64__) && defined(__GNUC__)
    gemm_panels_f16(M, N, K, A, lda, Bh, C, ldc);
#else
    (void)M, (void)N, (void)K, (void)A, (void)lda, (void)Bh, (void)C, (void)ldc;
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
/* n floats to halves, round to nearest even */
GEMM_F16 static void to_half(const float *src, uint16_t *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}
#endif

void nn_gemm_panels_to_f16(int W, int K, int N, const float *Bp, uint16_t *Bh)
{
#if defined(__x86_64__) && defined(__GNUC__)
    const size_t n = (size_t)K * (size_t)((N + 15) / 16 * 16);
    if (W == 16) { /* the same layout: convert in order */
        to_half(Bp, Bh, n);
        return;
    }
    float row[16];
    memset(Bh, 0, sizeof(uint16_t) * n);
    for (int j = 0; j < N; j += 16)
        for (int k = 0; k < K; k++) {
            const int m = N - j < 16 ? N - j : 16;
            for (int c = 0; c < 16; c++)
                row[c] = c < m ? Bp[nn_gemm_panel_at(W, K, N, k, j + c)] : 0.0f;
            to_half(row, Bh + nn_gemm_panel_at(16, K, N, k, j), 16);
        }
#else
    (void)W, (void)K, (void)N, (void)Bp, (void)Bh;
#endif
}

void nn_gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                float *C, int ldc)
{
    nn_gemm_isa_run(nn_gemm_isa(), 0, 0, M, N, K, A, lda, B, ldb, 0, C, ldc);
}

/* AVX2's panels are 16 wide, its block's width: with 32 a block would read
 * half of each 128-byte panel row, and the rest in a second pass. At batch 1
 * the 9-row GEMMs of the 12x12 and 6x6 layers, which stream their filters
 * from memory, took 1.21-1.49 ms instead of 1.60-1.77 (vgg_wide's shapes,
 * alternated 8 times, Zen 3 VM); vgg_wide's batch-1 latency 3.21-3.32 ->
 * 2.76-2.80 ms (best and median of 6 alternated runs of 5 x 50 calls). */
int nn_gemm_panel_width(int isa)
{
    return isa == NN_GEMM_AVX512 ? 32 : isa == NN_GEMM_AVX2 ? 16 : 0;
}

int nn_gemm_panels(void)
{
    return nn_gemm_panel_width(nn_gemm_isa());
}

size_t nn_gemm_panel_floats(int K, int N)
{
    return (size_t)K * (size_t)(nn_gemm_panels() ? (N + 15) / 16 * 16 : N);
}

void nn_gemm_nn_panels(int M, int N, int K, const float *A, int lda, const float *Bp, float *C,
                       int ldc)
{
    nn_gemm_isa_panels(nn_gemm_isa(), M, N, K, A, lda, Bp, C, ldc);
}

void nn_gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                int acc, float *C, int ldc)
{
    nn_gemm_isa_run(nn_gemm_isa(), 1, 0, M, N, K, A, lda, B, ldb, acc, C, ldc);
}

void nn_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                int acc, float *C, int ldc)
{
    nn_gemm_isa_run(nn_gemm_isa(), 0, 1, M, N, K, A, lda, B, ldb, acc, C, ldc);
}
