/* int8_vnni.c - the int8 kernels with AVX-512 VNNI (see int8.c for the
 * arithmetic and the layouts).
 *
 * Only the functions here are compiled for AVX-512 (function attributes, not
 * a build flag), so the rest of the binary runs on any x86-64; int8.c calls
 * them only when nn_q8_vnni_available() says the CPU has them.
 *
 * The convolution is direct, without im2col: an output row's pixels read
 * their taps from the padded u8 image at a stride of C bytes, and one kernel
 * row (ky) of k*C taps is contiguous in it. A tile of MR pixels by NB*16
 * output channels keeps MR*NB int32 accumulators in registers; each step
 * loads NB weight vectors (4 taps of 16 channels), broadcasts 4 input bytes
 * of each pixel and issues MR*NB vpdpbusd. MR*NB = 24 leaves room in the 32
 * vector registers for the weights and one broadcast. A row whose width is
 * not a multiple of MR ends with a tile shifted back to overlap the previous
 * one (the overlapped pixels are computed twice, with the same result). */
#include <string.h>

#include "internal.h"

int nn_q8_cpu_override = -1;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

int nn_q8_vnni_available(void)
{
    if (nn_q8_cpu_override >= 0) return nn_q8_cpu_override;
    /* libgcc fills this in before main, and also checks that the OS saves
     * the AVX-512 registers (XCR0) */
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

/* mr pixels (stride C bytes in q) x nb blocks of 16 channels (stride wstep
 * bytes in qw), all kernel rows; out: the first pixel's first channel. mask:
 * the channels of the last block that exist. nb and mr are constants in
 * every caller, so the loops unroll and acc lives in registers. */
static inline __attribute__((always_inline)) VNNI void
tile(const uint8_t *a, size_t row_bytes, int C, int k, int kq, const int8_t *w, size_t wstep,
     int nb, int mr, __mmask16 mask, const float *sc, const float *bias, int relu, float *out,
     int O)
{
    __m512i acc[24][4];
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nb; j++) acc[r][j] = _mm512_setzero_si512();
    for (int ky = 0; ky < k; ky++) {
        const uint8_t *ar = a + (size_t)ky * row_bytes;
        const int8_t *wk = w + (size_t)ky * kq * 64;
        for (int t = 0; t < kq; t++) {
            __m512i wv[4];
            for (int j = 0; j < nb; j++)
                wv[j] = _mm512_loadu_si512((const void *)(wk + j * wstep + (size_t)t * 64));
            for (int r = 0; r < mr; r++) {
                int32_t four;
                memcpy(&four, ar + (size_t)r * C + 4 * t, 4); /* unaligned */
                const __m512i av = _mm512_set1_epi32(four);
                for (int j = 0; j < nb; j++) acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], av, wv[j]);
            }
        }
    }
    const __m512 zero = _mm512_setzero_ps();
    for (int j = 0; j < nb; j++) {
        const __mmask16 m = j == nb - 1 ? mask : 0xFFFF;
        const __m512 s = _mm512_maskz_loadu_ps(m, sc + 16 * j);
        const __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + 16 * j) : zero;
        for (int r = 0; r < mr; r++) {
            __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][j]), s);
            if (bias) v = _mm512_add_ps(v, b);
            if (relu) v = _mm512_max_ps(v, zero);
            _mm512_mask_storeu_ps(out + (size_t)r * O + 16 * j, m, v);
        }
    }
}

/* One output row of one channel chunk: tiles of MR pixels, the last one
 * shifted back; rows narrower than MR go pixel by pixel. */
#define ROW_FN(NB, MR)                                                                    \
    static VNNI void row_##NB(const nn_q8_geom *g, const uint8_t *a, const int8_t *w,     \
                              __mmask16 mask, const float *sc, const float *bias,         \
                              int relu, float *out)                                       \
    {                                                                                     \
        const size_t row_bytes = (size_t)g->Wp * g->C;                                    \
        const size_t wstep = (size_t)g->k * g->kq * 64;                                   \
        const int OW = g->OW, C = g->C, O = g->O;                                         \
        if (OW < MR) {                                                                    \
            for (int ow = 0; ow < OW; ow++)                                               \
                tile(a + (size_t)ow * C, row_bytes, C, g->k, g->kq, w, wstep, NB, 1,      \
                     mask, sc, bias, relu, out + (size_t)ow * O, O);                      \
            return;                                                                       \
        }                                                                                 \
        for (int ow = 0; ow < OW; ow += MR) {                                             \
            const int o0 = ow + MR <= OW ? ow : OW - MR;                                  \
            tile(a + (size_t)o0 * C, row_bytes, C, g->k, g->kq, w, wstep, NB, MR, mask,   \
                 sc, bias, relu, out + (size_t)o0 * O, O);                                \
        }                                                                                 \
    }
ROW_FN(4, 6)
ROW_FN(3, 8)
ROW_FN(2, 12)
ROW_FN(1, 16)

VNNI void nn_q8_conv_vnni(const nn_q8_geom *g, const uint8_t *q, const int8_t *qw,
                          const float *sc, const float *bias, int relu, float *out)
{
    const int O = g->O, blocks = (O + 15) / 16;
    const size_t row_bytes = (size_t)g->Wp * g->C, wstep = (size_t)g->k * g->kq * 64;
    /* chunks of up to 64 channels outside: their weights stay in cache
     * while every row goes through */
    for (int b0 = 0; b0 < blocks; b0 += 4) {
        const int nb = blocks - b0 < 4 ? blocks - b0 : 4;
        const int last = O - 16 * (b0 + nb - 1); /* channels in the last block */
        const __mmask16 mask = (__mmask16)(last >= 16 ? 0xFFFF : (1u << last) - 1);
        const int8_t *w = qw + (size_t)b0 * wstep;
        const float *s = sc + 16 * b0, *b = bias ? bias + 16 * b0 : NULL;
        for (int oh = 0; oh < g->OH; oh++) {
            const uint8_t *a = q + (size_t)oh * row_bytes;
            float *y = out + (size_t)oh * g->OW * O + 16 * b0;
            switch (nb) {
            case 4: row_4(g, a, w, mask, s, b, relu, y); break;
            case 3: row_3(g, a, w, mask, s, b, relu, y); break;
            case 2: row_2(g, a, w, mask, s, b, relu, y); break;
            default: row_1(g, a, w, mask, s, b, relu, y); break;
            }
        }
    }
}

/* nn_q8_quantize_ref with 16 floats at a time: the same max (exact in any
 * order), the same product, rounding to nearest even, the same clamps. */
VNNI float nn_q8_quantize_vnni(const nn_q8_geom *g, const float *x, uint8_t *q)
{
    const int W = g->W, C = g->C, Wp = g->Wp, pad = g->pad;
    const size_t n = (size_t)g->H * W * C;
    __m512 vmx = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) vmx = _mm512_max_ps(_mm512_loadu_ps(x + i), vmx); /* NaN: skipped */
    float mx = _mm512_reduce_max_ps(vmx);
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    memset(q, 0, nn_q8_input_bytes(g));
    const float inv = mx > 0 ? 255.0f / mx : 0;
    const __m512 vinv = _mm512_set1_ps(inv), lo = _mm512_setzero_ps(),
                 hi = _mm512_set1_ps(255.0f);
    const int n_row = W * C;
    for (int y = 0; y < g->H; y++) {
        const float *src = x + (size_t)y * n_row;
        uint8_t *dst = q + ((size_t)(y + pad) * Wp + pad) * C;
        int j = 0;
        for (; j < n_row; j += 16) {
            const __mmask16 m = n_row - j >= 16 ? 0xFFFF : (__mmask16)((1u << (n_row - j)) - 1);
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + j), vinv);
            v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
            _mm_mask_storeu_epi8(dst + j, m, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
        }
    }
    return mx / 255.0f;
}

#else /* not x86-64 with GCC or Clang: no int8 kernels, INT8 stays FP32 */

int nn_q8_vnni_available(void)
{
    return nn_q8_cpu_override > 0;
}

void nn_q8_conv_vnni(const nn_q8_geom *g, const uint8_t *q, const int8_t *qw, const float *sc,
                     const float *bias, int relu, float *out)
{
    nn_q8_conv_ref(g, q, qw, sc, bias, relu, out);
}

float nn_q8_quantize_vnni(const nn_q8_geom *g, const float *x, uint8_t *q)
{
    return nn_q8_quantize_ref(g, x, q);
}

#endif
