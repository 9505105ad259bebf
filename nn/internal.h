/* internal.h - structures shared inside nn/ (not part of the public API). */
#ifndef NN_INTERNAL_H
#define NN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nn.h"

#define NN_MAX_LAYERS 64
/* An architecture may hold at most this many parameters (400 MB of floats;
 * training needs about four times that). Architectures reach the engine from
 * POST /train bodies too, so the cap is what stops a request from asking for
 * billions of parameters and taking the server's memory. The shipped ones
 * hold 1.3 to 2.7 million. */
#define NN_MAX_PARAMS ((size_t)100 * 1000 * 1000)
#define NN_MAX_CLASSES 16
#define NN_NAME_MAX 64

typedef enum {
    L_CONV, L_BN, L_RELU, L_ELU, L_MAXPOOL, L_DROPOUT, L_FLATTEN, L_GAP, L_DENSE
} nn_layer_type;

/* One layer. Shapes are per image, NHWC. */
typedef struct {
    nn_layer_type type;
    int in_h, in_w, in_c;
    int out_h, out_w, out_c;
    size_t in_size, out_size;  /* floats per image */
    int k, pad;                /* conv: kernel side, padding before (top/left) */
    float l2;                  /* conv/dense: L2 factor on W (Keras' kernel_regularizer) */
    float eps, momentum;       /* batchnorm */
    float rate;                /* dropout */
    size_t p_off, p_count;     /* this layer's slice of the parameter array */
} nn_layer;

struct nn_model {
    char name[NN_NAME_MAX];
    char *arch_json;           /* the architecture text as given (stored in files) */
    char *meta_json;           /* training metadata, a JSON object text */
    int in_side, in_c;
    float in_scale, in_mean, in_std;
    int num_classes;
    char class_names[NN_MAX_CLASSES][32];
    int n_layers;
    nn_layer layers[NN_MAX_LAYERS];
    size_t n_params;
    float *params;             /* one allocation for every tensor */
    size_t max_act;            /* largest activation, floats per image */
    size_t max_col_k;          /* largest conv im2col row (k*k*C) */
    uint64_t gen;              /* changes whenever params may have changed: a
                                * workspace's folded weights are valid only
                                * for the (model, gen) they were built from */
    int precision;             /* NN_PRECISION_*, the one in effect (runtime
                                * only, never stored in a file) */
};

/* The shape of an int8 convolution (int8.c); a dense layer is a 1x1
 * convolution of a 1x1 image with IN channels. The kernels read a padded
 * copy of the input, Hp x Wp x C bytes, so that no tap needs a bounds check. */
typedef struct {
    int H, W, C;               /* the input image */
    int k, pad;                /* kernel side; zero rows/columns before (top/left) */
    int OH, OW, O;
    int Hp, Wp;                /* the padded input: OH + k - 1, OW + k - 1 */
    int kq;                    /* 4-byte groups in one kernel row of k*C taps */
} nn_q8_geom;

/* One step of the inference plan (infer_plan.c): a layer with whatever of the
 * following layers it absorbed. */
typedef struct {
    const nn_layer *L;
    const float *W, *b;        /* conv/dense: effective weights (batch norm folded) */
    int relu;                  /* conv/dense: ReLU in the epilogue;
                                * maxpool: ReLU after the max (it commutes) */
    int defer;                 /* conv: no bias or ReLU here, the next maxpool
                                * adds them to 4x fewer values */
    const float *pool_bias;    /* maxpool: bias of the deferring conv, or NULL */
    /* int8 plans: a conv or dense step whose input is never negative */
    int q8;                    /* runs on 8-bit integers (nn_q8_forward) */
    nn_q8_geom qg;
    const int8_t *qw;          /* its weights quantized and packed (int8.c) */
    const float *qscale;       /* per output channel: W ~ qw * qscale */
    /* fp32 3x3 convs: W in Winograd's transformed space (winograd.c), or NULL */
    const float *wino;
    const uint16_t *wino_h;    /* the same in halves, instead, in an FP16 plan */
    int wino_m;                /* their output tile side (nn_wino_tile) */
} nn_step;

struct nn_ws {
    int max_batch;
    float *buf[2];             /* ping-pong activations, max_batch * max_act each */
    float *col;                /* im2col scratch */
    size_t col_rows;           /* rows the col scratch holds */
    float *x;                  /* normalised input, max_batch * in_size */
    float *view;               /* a test-time augmented copy of x */
    float *logits;             /* max_batch * classes */
    /* the plan, built for plan_model at plan_gen */
    const nn_model *plan_model;
    uint64_t plan_gen;
    int n_steps;
    nn_step steps[NN_MAX_LAYERS];
    float *fold;               /* folded conv/dense weights */
    size_t fold_cap;           /* floats allocated in fold */
    /* int8 (int8.c): what the plan was built for, its quantized weights and
     * the scratch of one image */
    int plan_precision;
    int plan_q8;               /* int8 does most of the work: run image by image */
    int q8_ref;                /* tests: the plain-C reference kernels, not VNNI */
    void *q8w;                 /* packed weights, then per-channel scales */
    size_t q8w_cap;            /* bytes allocated in q8w */
    uint8_t *q8in;             /* one image quantized into its padded layout */
    size_t q8in_cap;
    float *q8sc;               /* per output channel: input scale * weight scale */
    size_t q8sc_cap;
    /* Winograd (winograd.c): transformed weights of the steps that use it,
     * and the scratch of one chunk */
    int wino_off;              /* tests and benchmarks: im2col + GEMM only */
    float *wino_w;
    size_t wino_w_cap;         /* bytes */
    uint16_t *wino_h;          /* FP16 plans: the transformed weights in halves */
    size_t wino_h_cap;         /* bytes */
    float *wino_scratch;
    size_t wino_scratch_cap;   /* bytes */
};

/* ---- Winograd F(2x2, 3x3), F(4x4, 3x3) and (inference only) F(6x6, 3x3)
 * for fp32 3x3 convolutions (winograd.c). m: the output tile's side,
 * nn_wino_tile's choice (2, 4 or 6). U: P = (m+2)^2 planes of C x O
 * floats, in nn_gemm_panel_at's layout; scratch: nn_wino_scratch_floats. */
#define NN_WINO_MIN_TILES 32     /* fewer tiles in a call: im2col + GEMM */
#define NN_WINO_MIN_TILES_FAST 8 /* the same with gemm_nn.c's kernels */
#define NN_WINO_CONV_TILES 32    /* tiles per chunk of a convolution (conv_chunk_tiles) */
#define NN_WINO_CHUNK_TILES 576  /* the weight gradient's chunk: F(2x2) tiles' worth (whole images) */
int nn_wino_eligible(const nn_layer *L);
/* the tile side for inference (forward only: 2, 4 or 6) or training (2 or 4) */
int nn_wino_tile(const nn_layer *L, int inference);
int nn_wino_use(const nn_layer *L, int m, int batch);
size_t nn_wino_weight_floats(const nn_layer *L, int m);
size_t nn_wino_scratch_floats(const nn_layer *L, int m, int max_batch);
void nn_wino_pack(const nn_layer *L, int m, const float *W, float *U);
/* NN_PRECISION_FP16: what nn_wino_pack writes, in halves (its P planes, each
 * converted by nn_gemm_panels_to_f16, as far apart); tmp holds
 * nn_wino_weight_floats(L, m) floats */
void nn_wino_pack_f16(const nn_layer *L, int m, const float *W, float *tmp, uint16_t *Uh);
/* Training, with m = nn_wino_tile(L, 0) (U from nn_wino_pack with that m).
 * Scratch of both gradients: nn_wino_grad_scratch_floats(L, B).
 * dW [O][3][3][C] += the weight gradient of L for input in and output
 * gradient dout (B images); din = the input gradient, from Ut, the filters
 * of the input gradient (P planes of O x C, laid out likewise) that
 * nn_wino_pack_turned(L, W, Ut) writes, nn_wino_weight_floats(L, m) floats
 * like U. */
size_t nn_wino_grad_scratch_floats(const nn_layer *L, int max_batch);
void nn_wino_pack_turned(const nn_layer *L, const float *W, float *Ut);
void nn_wino_weight_grad(const nn_layer *L, const float *in, const float *dout, int B,
                         float *dW, float *scratch);
void nn_wino_input_grad(const nn_layer *L, const float *dout, const float *Ut, float *din,
                        int B, float *scratch);
/* out [B, H, W, O] = conv(in [B, H, W, C]) + bias (O floats; NULL: none),
 * then ReLU if relu */
void nn_wino_forward(const nn_layer *L, int m, const float *in, const float *U,
                     const float *bias, int relu, float *out, int B, float *scratch);
/* the same with U in halves (nn_gemm_panels_to_f16 of what nn_wino_pack
 * wrote): NN_PRECISION_FP16 */
void nn_wino_forward_f16(const nn_layer *L, int m, const float *in, const uint16_t *Uh,
                         const float *bias, int relu, float *out, int B, float *scratch);

/* The transforms run over the channels of one tile, vectorised by the
 * compiler; target_clones builds them for AVX-512, AVX2 and plain x86-64
 * and picks one at load time, so the binary still runs on any x86-64. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define NN_WINO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NN_WINO_CLONES
#endif
/* F(4x4, 3x3) per tile (winograd_f43.c): planes are the 36 transformed
 * positions, plane floats apart; tmp holds 36 x max(C, O) floats.
 * g: the 9 taps' channel vectors (row-major); p: the 36 pixels of the 6x6
 * patch; y: the 16 output pixels (distinct, sinks for those outside). */
void nn_wino43_filter_tile(const float *const g[9], int C, size_t plane, float *u, float *tmp);
void nn_wino43_input_tile(const float *const p[36], int C, size_t plane, float *v, float *tmp);
void nn_wino43_output_tile(const float *m, size_t plane, int O, const float *bias, int relu,
                           float *const y[16], float *tmp);
void nn_wino43_grad_output_tile(const float *const y[16], int O, size_t plane, float *p,
                                float *tmp);
void nn_wino43_grad_filter_tile(const float *z, int C, size_t plane, float *w, float *tmp);
/* F(6x6, 3x3) per tile (winograd_f63.c), the forward pass only: 64 planes,
 * tmp of 64 x max(C, O) floats, p the 64 pixels of the 8x8 patch, y the 36
 * output pixels. */
void nn_wino63_filter_tile(const float *const g[9], int C, size_t plane, float *u, float *tmp);
void nn_wino63_input_tile(const float *const p[64], int C, size_t plane, float *v, float *tmp);
void nn_wino63_output_tile(const float *m, size_t plane, int O, const float *bias, int relu,
                           float *const y[36], float *tmp);

/* gemm_nn.c: C (M x N, row stride ldc) = A (M x K) * B (K x N), all
 * row-major and untransposed; on the kernel for AVX-512 or AVX2 + FMA where
 * the CPU has it, else OpenBLAS. nn_gemm_nn_fast() tells whether a kernel
 * of ours runs (tests). */
void nn_gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                float *C, int ldc);
/* C (M x N) = A^T * B, A stored K x M (row stride lda), or C += A^T * B
 * when acc: the weight gradients' GEMMs */
void nn_gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                int acc, float *C, int ldc);
/* C (M x N) (+)= A * B^T, B stored N x K (row stride ldb): the im2col
 * convolutions' forward GEMM against filters [O][K] */
void nn_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                int acc, float *C, int ldc);
int nn_gemm_nn_fast(void);
/* The instruction sets of the kernels, best last; nn_gemm_isa() is the best
 * this CPU runs, what the functions above use. nn_gemm_isa_run is
 * nn_gemm_nn (ta = tb = 0), nn_gemm_tn (ta) or nn_gemm_nt (tb), and
 * nn_gemm_isa_panels nn_gemm_nn_panels, on the kernels of one isa <=
 * nn_gemm_isa(): the tests check each the CPU runs. */
enum { NN_GEMM_BLAS, NN_GEMM_AVX2, NN_GEMM_AVX512 };
int nn_gemm_isa(void);
void nn_gemm_isa_run(int isa, int ta, int tb, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, int acc, float *C, int ldc);
void nn_gemm_isa_panels(int isa, int M, int N, int K, const float *A, int lda, const float *Bp,
                        float *C, int ldc);
/* B (K x N) stored for the kernel ahead of time, when it is used many times
 * (Winograd's transformed filters): for our kernels in column panels of
 * W = nn_gemm_panel_width(isa) columns (32 for AVX-512, 16 for AVX2), each
 * K x w contiguous (w = W; with W = 32 the last is 16 wide when 16 columns
 * or fewer are left; zero-padded), one after the other, so that
 * nn_gemm_nn_panels neither copies nor strides; for OpenBLAS (W = 0)
 * row-major, and nn_gemm_nn_panels is cblas_sgemm with ldb = N.
 * nn_gemm_panels() is the width for nn_gemm_isa(); nn_gemm_panel_floats how
 * much B takes (any width); nn_gemm_panel_at where B[k][n] goes. */
int nn_gemm_panel_width(int isa);
int nn_gemm_panels(void);
size_t nn_gemm_panel_floats(int K, int N);
/* w of the panel of width W that starts with left columns of B to go */
static inline int nn_gemm_panel_cols(int W, int left)
{
    return W == 32 && left <= 16 ? 16 : W;
}
static inline size_t nn_gemm_panel_at(int panels, int K, int N, int k, int n)
{
    if (!panels) return (size_t)k * N + n;
    const int j = n / panels * panels, w = nn_gemm_panel_cols(panels, N - j);
    return (size_t)j * K + (size_t)k * w + (size_t)(n - j);
}
void nn_gemm_nn_panels(int M, int N, int K, const float *A, int lda, const float *Bp, float *C,
                       int ldc);
/* NN_PRECISION_FP16: B's panels in IEEE half floats, 16 wide whatever the
 * CPU (the AVX2 + F16C kernel runs them; nn_gemm_panel_at(16, ...) places
 * B[k][n]; (N + 15) / 16 * 16 * K halves). nn_gemm_panels_to_f16 converts
 * float panels of width W (16 or 32: nn_gemm_panels(), what nn_wino_pack
 * wrote) to them, rounding to nearest even;
 * nn_gemm_nn_panels_f16 is C = A * B on them, in fp32 arithmetic. Only
 * where nn_gemm_f16_supported(). */
int nn_gemm_f16_supported(void);
void nn_gemm_panels_to_f16(int W, int K, int N, const float *Bp, uint16_t *Bh);
void nn_gemm_nn_panels_f16(int M, int N, int K, const float *A, int lda, const uint16_t *Bh,
                           float *C, int ldc);

/* infer_plan.c: (re)builds ws's plan for m unless it is current; -1 when out
 * of memory. */
int nn_plan_refresh(const nn_model *m, nn_ws *ws);
/* A fresh value for nn_model.gen (model.c). */
uint64_t nn_model_new_gen(const nn_model *m);

/* ---- int8 inference (int8.c, int8_vnni.c) --------------------------------
 * Weights: symmetric int8, one scale per output channel, packed as
 * [ceil(O/16)][k][kq][16][4]: one 64-byte vector holds 4 consecutive taps of
 * 16 output channels, the operand layout of vpdpbusd. Taps past k*C in a
 * kernel row are zero. Activations: u8 with one scale per image (its max /
 * 255), computed when the image is quantized. */
void nn_q8_geom_of(const nn_layer *L, nn_q8_geom *g);
size_t nn_q8_packed_bytes(const nn_q8_geom *g);
/* bytes of one quantized padded image, with the slack the kernels may read */
size_t nn_q8_input_bytes(const nn_q8_geom *g);
/* W [O][k][k][C] (a dense layer's [O][IN]) -> qw, scale[O] */
void nn_q8_pack(const nn_q8_geom *g, const float *W, int8_t *qw, float *scale);
/* One image x [H][W][C] (never negative) -> q, padded, zero border; returns
 * its scale (x ~ q * scale; 0 for an all-zero image). The AVX-512 version
 * gives the same bytes and the same scale. */
float nn_q8_quantize_ref(const nn_q8_geom *g, const float *x, uint8_t *q);
float nn_q8_quantize_vnni(const nn_q8_geom *g, const float *x, uint8_t *q);
/* out [OH][OW][O] = (float)(sum of q * qw) * sc[o], then + bias[o] (bias may
 * be NULL), then ReLU when relu is set. The VNNI kernel gives the same bits. */
void nn_q8_conv_ref(const nn_q8_geom *g, const uint8_t *q, const int8_t *qw, const float *sc,
                    const float *bias, int relu, float *out);
void nn_q8_conv_vnni(const nn_q8_geom *g, const uint8_t *q, const int8_t *qw, const float *sc,
                     const float *bias, int relu, float *out);
/* 1 when this CPU (and OS) runs the AVX-512 VNNI kernels. nn_q8_cpu_override
 * (tests): -1 asks the CPU, 0 pretends it lacks VNNI. */
int nn_q8_vnni_available(void);
extern int nn_q8_cpu_override;
/* Images an int8 plan runs through all its steps at a time (infer.c). */
#define NN_Q8_CHUNK 1
/* A plan step with q8 set: B images in, fp32 out (infer.c). */
void nn_q8_forward(const nn_step *st, const float *in, float *out, int B, nn_ws *ws);

/* arch.c: parse an architecture JSON into m (layers, shapes, param layout). */
int nn_arch_parse(nn_model *m, const char *json, char *err, size_t errlen);

/* model.c */
nn_model *nn_model_alloc_from_arch(const char *json, char *err, size_t errlen);
void nn_model_init_params(nn_model *m, uint64_t seed);

/* Rows of im2col kept at once: bounds the scratch memory and keeps GEMMs big. */
#define NN_COL_ROWS 4096
size_t nn_conv_chunk_images(const nn_layer *L, int batch);

/* ---- layer kernels: flat float arrays, batch B, NHWC ---------------------- */
/* conv: in [B,H,W,C], W [O,k,k,C], b [O] -> out [B,OH,OW,O]. col: scratch.
 * b == NULL: no bias (the caller adds it in a fused pass). */
void conv_forward(const nn_layer *L, const float *in, const float *W, const float *b,
                  float *out, int B, float *col);
/* The same for one input channel, then ReLU if relu, with no scratch; -1
 * (nothing done) unless L has one input channel, k <= 7 and the CPU AVX-512
 * or AVX2 + FMA. conv_forward calls it first. conv_forward_c1_isa: on the
 * kernel of one isa <= nn_gemm_isa() (tests), -1 for NN_GEMM_BLAS. */
int conv_forward_c1(const nn_layer *L, const float *in, const float *W, const float *b,
                    int relu, float *out, int B);
int conv_forward_c1_isa(int isa, const nn_layer *L, const float *in, const float *W,
                        const float *b, int relu, float *out, int B);
/* db [O] += dout [M, O] summed over its M rows */
void conv_bias_backward(const float *dout, size_t M, int O, float *db);
/* din may be NULL (first layer), db too (no bias gradient wanted). dW, db
 * accumulate. */
void conv_backward(const nn_layer *L, const float *in, const float *W, const float *dout,
                   float *din, float *dW, float *db, int B, float *col);

/* Flush denormals to zero in the calling thread (fpu.c); returns the state
 * to hand back to nn_fpu_leave. */
unsigned nn_fpu_enter(void);
void nn_fpu_leave(unsigned saved);

/* batchnorm over rows of C channels: x [N, C], N = B*H*W (see layer_bn.c). */
void bn_partial_sum(const float *x, size_t N, int C, double *sum);
void bn_partial_sqdev(const float *x, size_t N, int C, const float *mean, double *sq);
void bn_apply(const float *x, float *y, const float *a, const float *s, size_t N, int C);
void bn_apply_relu(const float *x, float *y, const float *a, const float *s, size_t N, int C);
/* bn_apply_relu then maxpool_forward of the pooling layer P, in one pass */
void bn_apply_relu_maxpool(const nn_layer *P, const float *x, float *out, uint8_t *argmax,
                           const float *a, const float *s, int B);
void bn_forward_infer(const float *x, float *y, const float *gamma, const float *beta,
                      const float *run_mean, const float *run_var, size_t N, int C, float eps);
/* ra, rs: when a ReLU follows the batch norm, the forward pass's scale and
 * shift (its output was max(0, x * ra + rs), bn_apply_relu); the ReLU's
 * backward pass is then folded in (dy is taken as 0 where x * ra + rs <= 0).
 * Both NULL: no ReLU. */
void bn_backward_partial(const float *x, const float *dy, const float *ra, const float *rs,
                         const float *mean, size_t N, int C, double *sdy, double *sdyx);
void bn_backward_apply(const float *x, const float *dy, const float *ra, const float *rs,
                       const float *k1, const float *k2, const float *k3, float *dx, size_t N,
                       int C);

void relu_forward(const float *x, float *y, size_t n);
void relu_backward(const float *y, const float *dy, float *dx, size_t n);
void elu_forward(const float *x, float *y, size_t n);
void elu_backward(const float *y, const float *dy, float *dx, size_t n);

/* The 2x2 max pooling L's windows: the offset in floats, in a batch of its
 * inputs, of the first input row of output row r (r counts the B * out_h
 * output rows of the batch). Output pixel ow's window starts 2 * ow pixels
 * into that row; its other three pixels follow at + C, + W*C and + W*C + C. */
static inline size_t maxpool_row_at(const nn_layer *L, int r)
{
    return (size_t)(r / L->out_h) * L->in_size +
           (size_t)(2 * (r % L->out_h)) * L->in_w * L->in_c;
}
/* 2x2 max pooling, stride 2. argmax (may be NULL at inference) [B,OH,OW,C]. */
void maxpool_forward(const nn_layer *L, const float *in, float *out, uint8_t *argmax, int B);
/* inference: out = max over the window of in, plus bias[c] (may be NULL),
 * then ReLU when relu is set */
void maxpool_bias_act(const nn_layer *L, const float *in, float *out, const float *bias,
                      int relu, int B);
/* x [N, C] += bias (may be NULL), then ReLU when relu is set */
void bias_act(float *x, const float *bias, size_t N, int C, int relu);
void maxpool_backward(const nn_layer *L, const float *dout, const uint8_t *argmax,
                      float *din, int B);
void gap_forward(const nn_layer *L, const float *in, float *out, int B);
void gap_backward(const nn_layer *L, const float *dout, float *din, int B);

/* dense: in [B,IN], W [OUT,IN], b [OUT] -> out [B,OUT] */
void dense_forward(const float *in, const float *W, const float *b, float *out,
                   int B, int IN, int OUT);
void dense_backward(const float *in, const float *W, const float *dout, float *din,
                    float *dW, float *db, int B, int IN, int OUT);

/* dropout: mask holds 0 or 1/(1-rate) per element. */
void dropout_forward(const float *x, float *y, float *mask, size_t n, float rate,
                     uint64_t *rng);
void dropout_backward(const float *dy, const float *mask, float *dx, size_t n);

/* softmax over rows of K. */
void softmax_rows(const float *logits, float *probs, int B, int K);
/* mean cross-entropy with label smoothing; writes dlogits = dloss/dlogits. */
/* Summed cross-entropy over B rows (label smoothing); dlogits = dloss/dlogits
 * for a loss averaged over `scale_b` rows (the whole batch, when the rows are
 * one thread's share of it). */
double softmax_xent(const float *logits, const uint8_t *labels, float *dlogits, int B, int K,
                    float smoothing, int scale_b, int *correct);

/* ---- small helpers --------------------------------------------------------- */
static inline uint64_t nn_rng_next(uint64_t *s)
{
    /* splitmix64: tiny, fast, good enough for init, dropout and augmentation */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline float nn_rng_uniform(uint64_t *s) /* [0,1) */
{
    return (float)(nn_rng_next(s) >> 40) * (1.0f / 16777216.0f);
}
float nn_rng_normal(uint64_t *s);

void nn_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

uint32_t nn_crc32(uint32_t crc, const void *data, size_t len);

#endif
