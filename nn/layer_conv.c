/* layer_conv.c - 2-D convolution, stride 1, NHWC, through im2col + SGEMM
 * (directly where there is one input channel: conv_forward_c1).
 *
 * A chunk of images is unrolled into col [M, K] (M = images*OH*OW output
 * pixels, K = k*k*C, in the same (ky, kx, c) order as a filter row of
 * W [O, K]), so that out [M, O] = col * W^T is one large GEMM. The chunk
 * bounds the scratch memory (NN_COL_ROWS rows) while keeping M large. */
#include <string.h>

#include "internal.h"

/* col[m][(ky*k + kx)*C + c] = in[b][oh+ky-pad][ow+kx-pad][c] (0 outside) */
static void im2col(const nn_layer *L, const float *in, int nimg, float *col)
{
    const int H = L->in_h, W = L->in_w, C = L->in_c, k = L->k, pad = L->pad;
    const int OH = L->out_h, OW = L->out_w;
    const size_t K = (size_t)k * k * C;
    for (int r = 0; r < nimg * OH; r++) {
        const int b = r / OH, oh = r % OH;
        const float *img = in + (size_t)b * H * W * C;
        for (int ow = 0; ow < OW; ow++) {
            float *dst = col + ((size_t)r * OW + ow) * K;
            for (int ky = 0; ky < k; ky++) {
                const int ih = oh + ky - pad;
                float *d = dst + (size_t)ky * k * C;
                if (ih < 0 || ih >= H) { memset(d, 0, sizeof(float) * k * C); continue; }
                const float *srow = img + (size_t)ih * W * C;
                int kx0 = 0, kx1 = k; /* the kx range that falls inside the row */
                if (ow - pad < 0) kx0 = pad - ow;
                if (ow - pad + k > W) kx1 = W - ow + pad;
                if (kx0 > 0) memset(d, 0, sizeof(float) * kx0 * C);
                if (kx1 > kx0)
                    memcpy(d + (size_t)kx0 * C, srow + (size_t)(ow - pad + kx0) * C,
                           sizeof(float) * (kx1 - kx0) * C);
                if (kx1 < k) {
                    int from = kx1 > kx0 ? kx1 : kx0;
                    memset(d + (size_t)from * C, 0, sizeof(float) * (k - from) * C);
                }
            }
        }
    }
}

/* The adjoint of im2col, as a gather so that threads never write the same
 * element: din[b][ih][iw][c] = sum over the (oh, ow, ky, kx) that read it. */
static void col2im(const nn_layer *L, const float *col, int nimg, float *din)
{
    const int H = L->in_h, W = L->in_w, C = L->in_c, k = L->k, pad = L->pad;
    const int OH = L->out_h, OW = L->out_w;
    const size_t K = (size_t)k * k * C;
    for (int r = 0; r < nimg * H; r++) {
        const int b = r / H, ih = r % H;
        float *drow = din + (size_t)r * W * C;
        memset(drow, 0, sizeof(float) * W * C);
        for (int ky = 0; ky < k; ky++) {
            const int oh = ih + pad - ky;
            if (oh < 0 || oh >= OH) continue;
            const float *crow = col + ((size_t)b * OH + oh) * OW * K + (size_t)ky * k * C;
            for (int iw = 0; iw < W; iw++) {
                float *d = drow + (size_t)iw * C;
                for (int kx = 0; kx < k; kx++) {
                    const int ow = iw + pad - kx;
                    if (ow < 0 || ow >= OW) continue;
                    const float *s = crow + (size_t)ow * K + (size_t)kx * C;
                    for (int c = 0; c < C; c++) d[c] += s[c];
                }
            }
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Wt[t][0..OC) = W[o0 + ..][t] for the on filters from o0, zeros past them */
static void c1_pack(const float *W, int K, int o0, int on, int OC, float *Wt)
{
    for (int t = 0; t < K; t++)
        for (int o = 0; o < OC; o++) Wt[t * OC + o] = o < on ? W[(size_t)(o0 + o) * K + t] : 0.0f;
}

/* One input channel (a grayscale network's first layer): K = k*k taps, so
 * im2col copies runs of k floats (k libc calls per tap row and pixel) and
 * the GEMM's blocks are all set-up and stores; a 48x48 image took 78 us
 * that way (vgg_wide at batch 1, 1 -> 48 channels), bias and ReLU in a pass
 * of their own after it. Here each output pixel holds up to 64 channels in
 * 4 registers while the taps inside the image are broadcast into them, in
 * the GEMM's order (bias first when given, then tap by tap), and the ReLU
 * is applied before the one store. Wt[t][0..64) = W[o0 + ..][t], zeros past O. */
__attribute__((target("avx512f"))) static void conv_c1_avx512(const nn_layer *L,
                                                               const float *in,
                                                               const float *W, const float *b,
                                                               int relu, float *out, int B)
{
    enum { OC = 64, MAX_TAPS = 49 };
    float Wt[MAX_TAPS * OC] __attribute__((aligned(64)));
    const int H = L->in_h, Wd = L->in_w, OH = L->out_h, OW = L->out_w, O = L->out_c;
    const int k = L->k, pad = L->pad, K = k * k;
    for (int o0 = 0; o0 < O; o0 += OC) {
        const int on = O - o0 < OC ? O - o0 : OC;
        __mmask16 m[4];
        __m512 bias[4];
        for (int j = 0; j < 4; j++) {
            const int n = on - 16 * j;
            m[j] = n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
            bias[j] = b ? _mm512_maskz_loadu_ps(m[j], b + o0 + 16 * j) : _mm512_setzero_ps();
        }
        c1_pack(W, K, o0, on, OC, Wt);
        for (int img = 0; img < B; img++) {
            const float *x = in + (size_t)img * H * Wd;
            float *y = out + (size_t)img * OH * OW * O + o0;
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++, y += O) {
                    __m512 acc[4] = {bias[0], bias[1], bias[2], bias[3]};
                    for (int ky = 0; ky < k; ky++) {
                        const int iy = oy + ky - pad;
                        if (iy < 0 || iy >= H) continue;
                        for (int kx = 0; kx < k; kx++) {
                            const int ix = ox + kx - pad;
                            if (ix < 0 || ix >= Wd) continue;
                            const __m512 v = _mm512_set1_ps(x[(size_t)iy * Wd + ix]);
                            const float *w = Wt + (ky * k + kx) * OC;
#pragma GCC unroll 4
                            for (int j = 0; j < 4; j++)
                                acc[j] = _mm512_fmadd_ps(v, _mm512_load_ps(w + 16 * j), acc[j]);
                        }
                    }
#pragma GCC unroll 4
                    for (int j = 0; j < 4; j++) {
                        if (relu) acc[j] = _mm512_max_ps(acc[j], _mm512_setzero_ps());
                        _mm512_mask_storeu_ps(y + 16 * j, m[j], acc[j]);
                    }
                }
        }
    }
}

/* The same with AVX2 + FMA: 64 channels in 8 registers (6 loads per 8
 * multiply-adds would leave the FMA units waiting with 32). vgg_wide's first
 * layer at batch 1 on a Zen 3 VM: 153-168 us through im2col -> 60 us. */
__attribute__((target("avx2,fma"))) static void conv_c1_avx2(const nn_layer *L,
                                                              const float *in, const float *W,
                                                              const float *b, int relu,
                                                              float *out, int B)
{
    enum { OC = 64, V = OC / 8, MAX_TAPS = 49 };
    float Wt[MAX_TAPS * OC] __attribute__((aligned(32)));
    const int H = L->in_h, Wd = L->in_w, OH = L->out_h, OW = L->out_w, O = L->out_c;
    const int k = L->k, pad = L->pad, K = k * k;
    for (int o0 = 0; o0 < O; o0 += OC) {
        const int on = O - o0 < OC ? O - o0 : OC;
        __m256i m[V];
        __m256 bias[V];
        for (int j = 0; j < V; j++) {
            m[j] = _mm256_cmpgt_epi32(_mm256_set1_epi32(on - 8 * j),
                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            bias[j] = b ? _mm256_maskload_ps(b + o0 + 8 * j, m[j]) : _mm256_setzero_ps();
        }
        c1_pack(W, K, o0, on, OC, Wt);
        for (int img = 0; img < B; img++) {
            const float *x = in + (size_t)img * H * Wd;
            float *y = out + (size_t)img * OH * OW * O + o0;
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++, y += O) {
                    __m256 acc[V];
#pragma GCC unroll 8
                    for (int j = 0; j < V; j++) acc[j] = bias[j];
                    for (int ky = 0; ky < k; ky++) {
                        const int iy = oy + ky - pad;
                        if (iy < 0 || iy >= H) continue;
                        for (int kx = 0; kx < k; kx++) {
                            const int ix = ox + kx - pad;
                            if (ix < 0 || ix >= Wd) continue;
                            const __m256 v = _mm256_broadcast_ss(x + (size_t)iy * Wd + ix);
                            const float *w = Wt + (ky * k + kx) * OC;
#pragma GCC unroll 8
                            for (int j = 0; j < V; j++)
                                acc[j] = _mm256_fmadd_ps(v, _mm256_load_ps(w + 8 * j), acc[j]);
                        }
                    }
#pragma GCC unroll 8
                    for (int j = 0; j < V; j++) {
                        if (relu) acc[j] = _mm256_max_ps(acc[j], _mm256_setzero_ps());
                        if (8 * j + 8 <= on)
                            _mm256_storeu_ps(y + 8 * j, acc[j]);
                        else if (8 * j < on) /* vmaskmovps stores are slow on AMD */
                            _mm256_maskstore_ps(y + 8 * j, m[j], acc[j]);
                    }
                }
        }
    }
}
#endif

int conv_forward_c1_isa(int isa, const nn_layer *L, const float *in, const float *W,
                        const float *b, int relu, float *out, int B)
{
    if (L->in_c != 1 || L->k > 7) return -1;
#if defined(__x86_64__) && defined(__GNUC__)
    if (isa == NN_GEMM_AVX512) {
        conv_c1_avx512(L, in, W, b, relu, out, B);
        return 0;
    }
    if (isa == NN_GEMM_AVX2) {
        conv_c1_avx2(L, in, W, b, relu, out, B);
        return 0;
    }
#endif
    (void)isa, (void)in, (void)W, (void)b, (void)relu, (void)out, (void)B;
    return -1;
}

int conv_forward_c1(const nn_layer *L, const float *in, const float *W, const float *b,
                    int relu, float *out, int B)
{
    return conv_forward_c1_isa(nn_gemm_isa(), L, in, W, b, relu, out, B);
}

void conv_forward(const nn_layer *L, const float *in, const float *W, const float *b,
                  float *out, int B, float *col)
{
    if (conv_forward_c1(L, in, W, b, 0, out, B) == 0) return;
    const int O = L->out_c;
    const size_t K = (size_t)L->k * L->k * L->in_c;
    const size_t per = (size_t)L->out_h * L->out_w;
    const size_t chunk = nn_conv_chunk_images(L, B);
    for (size_t b0 = 0; b0 < (size_t)B; b0 += chunk) {
        const int n = (int)((b0 + chunk <= (size_t)B) ? chunk : B - b0);
        const int M = (int)(n * per);
        float *o = out + b0 * per * O;
        /* bias first, then accumulate the GEMM onto it (beta = 1); without a
         * bias the GEMM overwrites (the caller adds it later, fused) */
        if (b)
            for (int m = 0; m < M; m++)
                for (int c = 0; c < O; c++) o[(size_t)m * O + c] = b[c];
        const float *a;
        if (L->k == 1 && L->pad == 0) {
            a = in + b0 * L->in_size; /* a 1x1 conv needs no unrolling */
        } else {
            im2col(L, in + b0 * L->in_size, n, col);
            a = col;
        }
        nn_gemm_nt(M, O, (int)K, a, (int)K, W, (int)K, b != NULL, o, O);
    }
}

void conv_bias_backward(const float *dout, size_t M, int O, float *db)
{
    for (size_t m = 0; m < M; m++) {
        const float *dr = dout + m * O;
        for (int o = 0; o < O; o++) db[o] += dr[o];
    }
}

void conv_backward(const nn_layer *L, const float *in, const float *W, const float *dout,
                   float *din, float *dW, float *db, int B, float *col)
{
    const int O = L->out_c;
    const size_t K = (size_t)L->k * L->k * L->in_c;
    const size_t per = (size_t)L->out_h * L->out_w;
    const size_t chunk = nn_conv_chunk_images(L, B);
    const int direct = L->k == 1 && L->pad == 0;
    for (size_t b0 = 0; b0 < (size_t)B; b0 += chunk) {
        const int n = (int)((b0 + chunk <= (size_t)B) ? chunk : B - b0);
        const int M = (int)(n * per);
        const float *d = dout + b0 * per * O;
        if (db) conv_bias_backward(d, (size_t)M, O, db);
        const float *a;
        if (direct) {
            a = in + b0 * L->in_size;
        } else {
            im2col(L, in + b0 * L->in_size, n, col);
            a = col;
        }
        /* dW [O, K] += dout^T [O, M] * col [M, K] */
        nn_gemm_tn(O, (int)K, M, d, O, a, (int)K, 1, dW, (int)K);
        if (!din) continue;
        if (direct) {
            /* din [M, C] = dout [M, O] * W [O, C] */
            nn_gemm_nn(M, (int)K, O, d, O, W, (int)K, din + b0 * L->in_size, (int)K);
        } else {
            /* dcol [M, K] = dout [M, O] * W [O, K], reusing the col scratch */
            nn_gemm_nn(M, (int)K, O, d, O, W, (int)K, col, (int)K);
            col2im(L, col, n, din + b0 * L->in_size);
        }
    }
}
