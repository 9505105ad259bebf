/* test_winograd.c - 3x3 convolutions by Winograd's F(2x2, 3x3), F(4x4, 3x3)
 * and F(6x6, 3x3) (nn/winograd.c) against im2col + GEMM (conv_forward): odd
 * sizes (tiles cut by the right and bottom edges), channel counts that are no
 * multiple of a vector, batches split into several chunks; then the
 * inference plan and a training step with and without it. */
#include <cblas.h>
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainer_internal.h"

static nn_layer conv3(int H, int W, int C, int O)
{
    nn_layer L = {0};
    L.type = L_CONV;
    L.in_h = H, L.in_w = W, L.in_c = C;
    L.out_h = H, L.out_w = W, L.out_c = O;
    L.in_size = (size_t)H * W * C;
    L.out_size = (size_t)H * W * O;
    L.k = 3, L.pad = 1;
    L.p_count = (size_t)O * 9 * C + O;
    return L;
}

/* H, W, C, O, B */
static const int SHAPES[][5] = {
    {6, 6, 4, 5, 1},      /* one 3x3 grid of tiles */
    {7, 5, 8, 16, 2},     /* odd: edge tiles keep one row or column */
    {1, 1, 4, 3, 6},      /* a single pixel: the tile is mostly padding */
    {12, 12, 48, 96, 17}, /* chunks of up to 32 tiles cut across images (2x2 tiles:
                           * 36 per image, 19 chunks of 31, then 23) */
    {48, 48, 17, 24, 5},  /* 576 tiles per image (2x2): chunks cut inside each image */
    {24, 24, 96, 96, 1},
    {11, 9, 6, 7, 3},     /* 4x4 tiles cut by both edges (3 and 1 pixels kept) */
    {8, 10, 40, 24, 2},   /* 4x4 tiles from 8 pixels on; a cut column */
    {30, 26, 20, 33, 2},  /* 6x6 tiles cut by both edges (the last keep 2) */
};

/* Every tile side on every shape (the one nn_wino_tile picks, and the
 * others: each must be exact wherever it is used). */
START_TEST(test_wino_matches_conv)
{
    static const int SIDES[] = {2, 4, 6};
    const int *s = SHAPES[_i / 3], m = SIDES[_i % 3];
    const nn_layer L = conv3(s[0], s[1], s[2], s[3]);
    const int B = s[4];
    ck_assert(nn_wino_eligible(&L));
    uint64_t r = 17 + _i / 3;
    float *W = malloc(sizeof(float) * L.p_count), *in = malloc(sizeof(float) * L.in_size * B);
    float *want = malloc(sizeof(float) * L.out_size * B), *got = malloc(sizeof(float) * L.out_size * B);
    float *col = malloc(sizeof(float) * L.out_size / L.out_c * B * 9 * L.in_c);
    float *U = malloc(sizeof(float) * nn_wino_weight_floats(&L, m));
    float *scratch = malloc(sizeof(float) * nn_wino_scratch_floats(&L, m, B));
    for (size_t i = 0; i < L.p_count; i++) W[i] = nn_rng_uniform(&r) - 0.5f;
    for (size_t i = 0; i < L.in_size * B; i++) in[i] = nn_rng_uniform(&r) * 2.0f;
    /* odd shapes: with a bias and the ReLU fused into the output transform */
    const int fused = _i / 3 % 2;
    float *bias = malloc(sizeof(float) * L.out_c);
    for (int o = 0; o < L.out_c; o++) bias[o] = nn_rng_uniform(&r) - 0.5f;
    conv_forward(&L, in, W, fused ? bias : NULL, want, B, col);
    if (fused)
        for (size_t i = 0; i < L.out_size * B; i++) want[i] = want[i] > 0 ? want[i] : 0.0f;
    nn_wino_pack(&L, m, W, U);
    for (size_t i = 0; i < L.out_size * B; i++) got[i] = NAN; /* every pixel must be written */
    nn_wino_forward(&L, m, in, U, fused ? bias : NULL, fused, got, B, scratch);
    float d = 0, big = 0;
    for (size_t i = 0; i < L.out_size * B; i++) {
        ck_assert_msg(isfinite(got[i]), "shape %d, m %d: output %zu not written", _i / 3, m, i);
        d = fmaxf(d, fabsf(got[i] - want[i]));
        big = fmaxf(big, fabsf(want[i]));
    }
    /* a few roundings of sums of 9*C products (measured at most 1.1e-6,
     * 3.7e-6 and 8.2e-6 of the largest output with 2x2, 4x4 and 6x6 tiles:
     * F(6x6)'s transforms scale terms by up to 32) */
    const float tol = m == 6 ? 4e-5f : 2e-5f;
    ck_assert_msg(d <= tol * big + 1e-6f, "shape %d, m %d: differs by %g (outputs up to %g)",
                  _i / 3, m, d, big);
    free(W), free(in), free(want), free(got), free(col), free(U), free(scratch), free(bias);
}
END_TEST

/* A plan sizes the scratch for its largest batch and also runs smaller
 * ones, whose chunks, cut as evenly as they go, can hold more tiles: 9-tile
 * images (12x12, 4x4 tiles) at batch 3 are one chunk of 27, at batch 4 two
 * of 18. Each batch must fit (make asan sees an overrun) and be exact. */
START_TEST(test_wino_smaller_batches)
{
    const nn_layer L = conv3(12, 12, 8, 8);
    const int m = 4, max_batch = 4;
    uint64_t r = 23;
    float *W = malloc(sizeof(float) * L.p_count), *in = malloc(sizeof(float) * L.in_size * max_batch);
    float *want = malloc(sizeof(float) * L.out_size * max_batch);
    float *got = malloc(sizeof(float) * L.out_size * max_batch);
    float *col = malloc(sizeof(float) * L.out_size / L.out_c * max_batch * 9 * L.in_c);
    float *U = malloc(sizeof(float) * nn_wino_weight_floats(&L, m));
    float *scratch = malloc(sizeof(float) * nn_wino_scratch_floats(&L, m, max_batch));
    for (size_t i = 0; i < L.p_count; i++) W[i] = nn_rng_uniform(&r) - 0.5f;
    for (size_t i = 0; i < L.in_size * max_batch; i++) in[i] = nn_rng_uniform(&r);
    nn_wino_pack(&L, m, W, U);
    for (int B = 1; B <= max_batch; B++) {
        conv_forward(&L, in, W, NULL, want, B, col);
        nn_wino_forward(&L, m, in, U, NULL, 0, got, B, scratch);
        float d = 0, big = 0;
        for (size_t i = 0; i < L.out_size * B; i++) {
            d = fmaxf(d, fabsf(got[i] - want[i]));
            big = fmaxf(big, fabsf(want[i]));
        }
        ck_assert_msg(d <= 2e-5f * big, "batch %d: differs by %g (outputs up to %g)", B, d, big);
    }
    free(W), free(in), free(want), free(got), free(col), free(U), free(scratch);
}
END_TEST

/* M, N, K: rows past the last block of 12 or 6 (and fewer than one block),
 * columns past the last of 32 (and of 16), a single row, a single column, K
 * past the kernel's panel; enough rows for nn_gemm_nt's kernel (256). The
 * kernels compile a block per row count (1..12 with AVX-512, 1..6 with
 * AVX2) and cut M into blocks as even as they go: between them the shapes
 * give every count (13 = 7 + 6, 64 = 4 x 11 + 2 x 10, 5 = 3 + 2 with AVX2). */
static const int GEMM_SHAPES[][3] = {
    {13, 37, 5}, {8, 32, 48}, {1, 7, 3},  {64, 96, 96}, {9, 1, 17},   {10, 20, 600},
    {24, 48, 1100}, {300, 50, 27}, {2, 17, 4}, {3, 40, 7}, {4, 33, 9}, {5, 16, 12}};

/* The GEMM kernels (nn/gemm_nn.c) against OpenBLAS on one of GEMM_SHAPES,
 * with lda, ldb and ldc wider than the matrices: the columns between must
 * stay untouched. GEMM_TN: nn_gemm_tn (A stored K x M, the weight
 * gradients); GEMM_NT: nn_gemm_nt (B stored N x K, the im2col
 * convolutions); GEMM_PANELS: nn_gemm_nn_panels, B first laid out by
 * nn_gemm_panel_at with NaN in the padding (never to reach C). The
 * transposed ones both overwrite and accumulate. */
enum { GEMM_NN, GEMM_TN, GEMM_NT, GEMM_PANELS };

static void check_gemm(int op, int shape, uint64_t seed)
{
    static const char *const NAME[] = {"nn", "tn", "nt", "panels"};
    const int ta = op == GEMM_TN, tb = op == GEMM_NT;
    const int M = GEMM_SHAPES[shape][0], N = GEMM_SHAPES[shape][1], K = GEMM_SHAPES[shape][2];
    const int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 5;
    const size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb;
    uint64_t r = seed + shape;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
    float *Bp = malloc(sizeof(float) * nn_gemm_panel_floats(K, N));
    float *got = malloc(sizeof(float) * M * ldc), *want = malloc(sizeof(float) * M * ldc);
    for (size_t i = 0; i < na; i++) A[i] = nn_rng_uniform(&r) - 0.5f;
    for (size_t i = 0; i < nb; i++) B[i] = nn_rng_uniform(&r) - 0.5f;
    /* every kernel this CPU runs, B in the panels of each */
    for (int isa = nn_gemm_panels() ? NN_GEMM_AVX2 : NN_GEMM_BLAS; isa <= nn_gemm_isa(); isa++) {
        for (size_t i = 0; i < nn_gemm_panel_floats(K, N); i++) Bp[i] = NAN;
        for (int k = 0; k < K && op == GEMM_PANELS; k++)
            for (int n = 0; n < N; n++)
                Bp[nn_gemm_panel_at(nn_gemm_panel_width(isa), K, N, k, n)] =
                    B[(size_t)k * ldb + n];
        for (int acc = 0; acc < (ta || tb ? 2 : 1); acc++) {
            for (int i = 0; i < M * ldc; i++) got[i] = want[i] = (float)(i % 5) - 2.0f;
            if (op == GEMM_PANELS)
                nn_gemm_isa_panels(isa, M, N, K, A, lda, Bp, got, ldc);
            else
                nn_gemm_isa_run(isa, ta, tb, M, N, K, A, lda, B, ldb, acc, got, ldc);
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                        tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb,
                        acc ? 1.0f : 0.0f, want, ldc);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < ldc; j++) {
                    const float g = got[i * ldc + j], w = want[i * ldc + j];
                    ck_assert_msg(fabsf(g - w) <= 1e-6f * (float)K,
                                  "%s isa %d %dx%dx%d acc %d: C[%d][%d] = %g, want %g", NAME[op],
                                  isa, M, N, K, acc, i, j, g, w);
                }
        }
    }
    free(A), free(B), free(Bp), free(got), free(want);
}

START_TEST(test_gemm_nn) { check_gemm(GEMM_NN, _i, 99); }
END_TEST

START_TEST(test_gemm_tn) { check_gemm(GEMM_TN, _i, 7); }
END_TEST

START_TEST(test_gemm_panels) { check_gemm(GEMM_PANELS, _i, 5); }
END_TEST

START_TEST(test_gemm_nt) { check_gemm(GEMM_NT, _i, 11); }
END_TEST

/* H, W, O, k, pad of conv_forward_c1's tests: vgg_wide's first layer, more
 * than one chunk of 64 filters with a tail, a 5x5 kernel, "valid" padding,
 * an even kernel (out 4x3) */
static const int C1_SHAPES[][5] = {
    {48, 48, 48, 3, 1}, {7, 5, 70, 3, 1}, {9, 9, 5, 5, 2}, {6, 6, 16, 3, 0}, {5, 4, 17, 4, 1}};

/* The one-channel direct convolution (layer_conv.c), on each kernel this
 * CPU runs, against the sum written out, 2 images, with and without bias
 * and ReLU, every output written. */
START_TEST(test_conv_c1)
{
    const int *sh = C1_SHAPES[_i], H = sh[0], Wd = sh[1], O = sh[2], k = sh[3], pad = sh[4];
    nn_layer L = {0};
    L.type = L_CONV, L.in_h = H, L.in_w = Wd, L.in_c = 1, L.out_c = O, L.k = k, L.pad = pad;
    L.out_h = H + 2 * pad - k + 1, L.out_w = Wd + 2 * pad - k + 1;
    L.in_size = (size_t)H * Wd, L.out_size = (size_t)L.out_h * L.out_w * O;
    const int B = 2;
    uint64_t r = 3 + _i;
    float *x = malloc(sizeof(float) * L.in_size * B), *W = malloc(sizeof(float) * O * k * k);
    float *bias = malloc(sizeof(float) * O), *got = malloc(sizeof(float) * L.out_size * B);
    for (size_t i = 0; i < L.in_size * B; i++) x[i] = nn_rng_uniform(&r);
    for (int i = 0; i < O * k * k; i++) W[i] = nn_rng_uniform(&r) - 0.5f;
    for (int i = 0; i < O; i++) bias[i] = nn_rng_uniform(&r) - 0.5f;
    /* conv_forward takes it wherever one of our kernels runs */
    ck_assert_int_eq(conv_forward_c1(&L, x, W, NULL, 0, got, B) == 0, nn_gemm_nn_fast());
    for (int isa = NN_GEMM_AVX2; isa <= nn_gemm_isa(); isa++)
        for (int mode = 0; mode < 4; mode++) {
            const float *b = mode & 1 ? bias : NULL;
            const int relu = mode >> 1;
            for (size_t i = 0; i < L.out_size * B; i++) got[i] = NAN;
            ck_assert_int_eq(conv_forward_c1_isa(isa, &L, x, W, b, relu, got, B), 0);
            for (int img = 0; img < B; img++)
                for (int oy = 0; oy < L.out_h; oy++)
                    for (int ox = 0; ox < L.out_w; ox++)
                        for (int o = 0; o < O; o++) {
                            double want = b ? b[o] : 0.0;
                            for (int ky = 0; ky < k; ky++)
                                for (int kx = 0; kx < k; kx++) {
                                    const int iy = oy + ky - pad, ix = ox + kx - pad;
                                    if (iy >= 0 && iy < H && ix >= 0 && ix < Wd)
                                        want += (double)W[(o * k + ky) * k + kx] *
                                                x[(size_t)img * L.in_size + (size_t)iy * Wd + ix];
                                }
                            if (relu && want < 0) want = 0;
                            const float g =
                                got[(((size_t)img * L.out_h + oy) * L.out_w + ox) * O + o];
                            ck_assert_msg(fabs(g - want) <= 1e-5,
                                          "isa %d %dx%d O %d k %d pad %d mode %d: "
                                          "[%d][%d][%d][%d] = %g, want %g",
                                          isa, H, Wd, O, k, pad, mode, img, oy, ox, o, g, want);
                        }
        }
    free(x), free(W), free(bias), free(got);
}
END_TEST

/* Not for Winograd: 1 input channel, other kernels, "valid" padding. */
START_TEST(test_wino_eligible)
{
    nn_layer L = conv3(12, 12, 1, 8);
    ck_assert(!nn_wino_eligible(&L));
    L = conv3(12, 12, 8, 8);
    ck_assert(nn_wino_eligible(&L));
    L.k = 4;
    ck_assert(!nn_wino_eligible(&L));
    L = conv3(12, 12, 8, 8);
    L.pad = 0, L.out_h = L.out_w = 10;
    ck_assert(!nn_wino_eligible(&L));
    /* few tiles: OpenBLAS's thin GEMMs would lose; gemm_nn.c's kernels
     * still gain from 8 tiles (a 6x6 image has 9) */
    L = conv3(6, 6, 8, 8);
    ck_assert_int_eq(nn_wino_use(&L, 2, 1), nn_gemm_nn_fast());
    ck_assert(nn_wino_use(&L, 2, 4));
    L = conv3(4, 4, 8, 8);
    ck_assert(!nn_wino_use(&L, 2, 1));
    /* tile sides: training 2 below 8 pixels, else 4; inference also 6 where
     * it computes fewer products with 16 tiles or more per image (through
     * OpenBLAS, NN_WINO_MIN_TILES: 24x24 and 26x26 have 16 and 25) */
    const int f6 = nn_gemm_nn_fast() ? 6 : 4;
    const int TILES[][3] = {{6, 2, 2},   {12, 4, 4}, {20, 4, 4}, {24, 4, f6},
                            {26, 4, f6}, {48, 4, 6}, {9, 4, 4}};
    for (size_t i = 0; i < sizeof TILES / sizeof TILES[0]; i++) {
        L = conv3(TILES[i][0], TILES[i][0], 8, 8);
        ck_assert_int_eq(nn_wino_tile(&L, 0), TILES[i][1]);
        ck_assert_int_eq(nn_wino_tile(&L, 1), TILES[i][2]);
        /* a batch of one takes Winograd wherever 4x4 tiles did */
        ck_assert_int_eq(nn_wino_use(&L, nn_wino_tile(&L, 1), 1),
                         nn_wino_use(&L, nn_wino_tile(&L, 0), 1));
    }
}
END_TEST

static const char *ARCH =
    "{\"name\":\"w\",\"input\":{\"size\":12,\"channels\":1},\"layers\":["
    "{\"type\":\"conv\",\"filters\":8,\"kernel\":3},{\"type\":\"batchnorm\"},{\"type\":\"relu\"},"
    "{\"type\":\"conv\",\"filters\":16,\"kernel\":3},{\"type\":\"batchnorm\"},{\"type\":\"relu\"},"
    "{\"type\":\"maxpool\"},"
    "{\"type\":\"conv\",\"filters\":12,\"kernel\":3},{\"type\":\"relu\"},"
    "{\"type\":\"gap\"},{\"type\":\"dense\",\"units\":7}]}";

/* The plan uses it where it pays and answers what im2col + GEMM answers, at
 * batch 1 (12x12 layer only) and batch 6 (the 6x6 layer too), in fp32; an
 * int8 plan keeps its int8 steps. */
START_TEST(test_plan_with_winograd)
{
    nn_model *m;
    char err[256];
    ck_assert_msg(nn_model_from_arch_json(ARCH, 7, &m, err, sizeof err) == 0, "%s", err);
    uint64_t r = 7;
    size_t np;
    float *p = nn_model_params(m, &np);
    for (size_t i = 0; i < np; i++) p[i] += 0.05f * (nn_rng_uniform(&r) - 0.5f);
    const int B = 6, S = 12;
    float x[6 * 12 * 12], got[6 * 7], want[6 * 7];
    for (int i = 0; i < B * S * S; i++) x[i] = nn_rng_uniform(&r);
    nn_ws *ws = nn_ws_create(m, B), *plain = nn_ws_create(m, B);
    ck_assert(ws && plain);
    plain->wino_off = 1;
    plain->plan_model = NULL; /* rebuilt without Winograd */
    int with = 0;
    for (int i = 0; i < ws->n_steps; i++) with += ws->steps[i].wino != NULL;
    ck_assert_int_eq(with, 2); /* the 16- and 12-filter convs, not the first (1 channel) */
    const int batches[2] = {1, B};
    for (int bi = 0; bi < 2; bi++) {
        const int n = batches[bi];
        ck_assert_int_eq(nn_forward_logits(m, ws, x, n, got), 0);
        ck_assert_int_eq(nn_forward_logits(m, plain, x, n, want), 0);
        for (int i = 0; i < plain->n_steps; i++) ck_assert_ptr_null(plain->steps[i].wino);
        float d = 0;
        for (int i = 0; i < n * 7; i++) d = fmaxf(d, fabsf(got[i] - want[i]));
        ck_assert_msg(d < 1e-5f, "batch %d: logits differ by %g", n, d);
    }
    nn_model_set_precision(m, NN_PRECISION_INT8);
    ck_assert_int_eq(nn_forward_logits(m, ws, x, 1, got), 0);
    for (int i = 0; i < ws->n_steps; i++)
        ck_assert_msg(!(ws->steps[i].q8 && ws->steps[i].wino), "step %d: int8 and Winograd", i);
    nn_ws_free(ws);
    nn_ws_free(plain);
    nn_model_free(m);
}
END_TEST

/* H, W, C, O: 2x2 tiles (the input gradient from the forward U, mirrored),
 * 4x4 tiles (its own turned U), cut by both edges */
static const int GRAD_SHAPES[][4] = {{7, 6, 8, 16}, {9, 14, 16, 8}, {12, 8, 5, 3}};

/* Training: the input gradient of a 3x3 conv is the convolution of the
 * output gradient with the turned filters, channels swapped. */
START_TEST(test_wino_input_grad)
{
    const int *s = GRAD_SHAPES[_i];
    const nn_layer L = conv3(s[0], s[1], s[2], s[3]);
    const int B = 3;
    uint64_t r = 41;
    float *W = malloc(sizeof(float) * L.p_count), *dW = calloc(L.p_count, sizeof(float));
    float *dout = malloc(sizeof(float) * L.out_size * B), *in = calloc(L.in_size * B, sizeof(float));
    float *want = malloc(sizeof(float) * L.in_size * B), *got = malloc(sizeof(float) * L.in_size * B);
    float *col = malloc(sizeof(float) * L.out_size / L.out_c * B * 9 * L.in_c);
    const int m = nn_wino_tile(&L, 0);
    float *U = malloc(sizeof(float) * nn_wino_weight_floats(&L, m));
    float *Ut = malloc(sizeof(float) * nn_wino_weight_floats(&L, m));
    float *scratch = malloc(sizeof(float) * nn_wino_grad_scratch_floats(&L, B));
    for (size_t i = 0; i < L.p_count; i++) W[i] = nn_rng_uniform(&r) - 0.5f;
    for (size_t i = 0; i < L.out_size * B; i++) dout[i] = nn_rng_uniform(&r) - 0.5f;
    conv_backward(&L, in, W, dout, want, dW, dW + L.p_count - L.out_c, B, col);
    nn_wino_pack(&L, m, W, U);
    nn_wino_pack_turned(&L, W, Ut);
    nn_wino_input_grad(&L, dout, Ut, got, B, scratch);
    /* and the weight gradient, added to what dW holds (here: twice it) */
    float *dW2 = malloc(sizeof(float) * L.p_count);
    memcpy(dW2, dW, sizeof(float) * L.p_count);
    float *gs = malloc(sizeof(float) * nn_wino_grad_scratch_floats(&L, B));
    for (size_t i = 0; i < L.in_size * B; i++) in[i] = nn_rng_uniform(&r);
    memset(dW, 0, sizeof(float) * L.p_count);
    conv_backward(&L, in, W, dout, NULL, dW, dW + L.p_count - L.out_c, B, col);
    memcpy(dW2, dW, sizeof(float) * L.p_count);
    nn_wino_weight_grad(&L, in, dout, B, dW2, gs);
    float dw = 0, wbig = 0;
    for (size_t i = 0; i < L.p_count - L.out_c; i++) {
        dw = fmaxf(dw, fabsf(dW2[i] - 2 * dW[i]));
        wbig = fmaxf(wbig, fabsf(dW[i]));
    }
    ck_assert_msg(dw <= 4e-5f * wbig, "shape %d: weight gradient differs by %g (values up to %g)",
                  _i, dw, wbig);
    free(dW2), free(gs);
    float d = 0, big = 0;
    for (size_t i = 0; i < L.in_size * B; i++) {
        d = fmaxf(d, fabsf(got[i] - want[i]));
        big = fmaxf(big, fabsf(want[i]));
    }
    ck_assert_msg(d <= 2e-5f * big, "shape %d: input gradient differs by %g (values up to %g)", _i,
                  d, big);
    free(Ut);
    free(W), free(dW), free(dout), free(in), free(want), free(got), free(col), free(U), free(scratch);
}
END_TEST

/* ELU rather than ReLU and no max pooling: a rounding difference in the
 * forward pass cannot flip a mask, so gradients compare closely. */
static const char *SMOOTH =
    "{\"name\":\"s\",\"input\":{\"size\":12,\"channels\":1},\"layers\":["
    "{\"type\":\"conv\",\"filters\":8,\"kernel\":3},{\"type\":\"elu\"},"
    "{\"type\":\"conv\",\"filters\":16,\"kernel\":3},{\"type\":\"batchnorm\"},{\"type\":\"elu\"},"
    "{\"type\":\"conv\",\"filters\":12,\"kernel\":3},{\"type\":\"elu\"},"
    "{\"type\":\"gap\"},{\"type\":\"dense\",\"units\":7}]}";

/* A training step with Winograd (forward and input gradients) gives the
 * gradients and, over a few steps, the losses of one without. */
START_TEST(test_train_step_with_winograd)
{
    nn_model *a;
    char err[256];
    ck_assert_msg(nn_model_from_arch_json(SMOOTH, 7, &a, err, sizeof err) == 0, "%s", err);
    nn_model *b = nn_model_clone(a);
    ck_assert_ptr_nonnull(b);
    nn_optim_cfg cfg;
    nn_optim_cfg_default(&cfg, NN_OPT_SGD);
    enum { B = 8 };
    nn_trainer *ta = nn_trainer_create(a, B, &cfg, 1), *tb = nn_trainer_create(b, B, &cfg, 1);
    ck_assert(ta && tb);
    tb->wino_off = 1;
    int with = 0;
    for (int i = 0; i < a->n_layers; i++) with += ta->wino_u[i] != NULL;
    ck_assert_int_eq(with, 2);
    float x[B * 12 * 12];
    uint8_t labels[B];
    uint64_t r = 23;
    for (int i = 0; i < B * 12 * 12; i++) x[i] = nn_rng_uniform(&r);
    for (int i = 0; i < B; i++) labels[i] = (uint8_t)(i % 7);
    /* learning rate 0: the gradients of the same weights */
    const float la = nn_train_step(ta, x, labels, B, 0.0f, NULL);
    const float lb = nn_train_step(tb, x, labels, B, 0.0f, NULL);
    ck_assert_float_eq_tol(la, lb, 1e-5f);
    float d = 0, big = 0;
    for (size_t i = 0; i < a->n_params; i++) {
        d = fmaxf(d, fabsf(ta->grads[i] - tb->grads[i]));
        big = fmaxf(big, fabsf(tb->grads[i]));
    }
    ck_assert_msg(d <= 1e-4f * big, "gradients differ by %g (up to %g)", d, big);
    for (int s = 0; s < 5; s++) {
        const float sa = nn_train_step(ta, x, labels, B, 0.05f, NULL);
        const float sb = nn_train_step(tb, x, labels, B, 0.05f, NULL);
        ck_assert_msg(fabsf(sa - sb) <= 1e-4f * fabsf(sb) + 1e-6f, "step %d: loss %g vs %g", s,
                      sa, sb);
    }
    nn_trainer_free(ta);
    nn_trainer_free(tb);
    nn_model_free(a);
    nn_model_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("winograd");
    TCase *tc = tcase_create("winograd");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_wino_matches_conv, 0, 3 * (int)(sizeof SHAPES / sizeof SHAPES[0]));
    tcase_add_loop_test(tc, test_gemm_nn, 0, (int)(sizeof GEMM_SHAPES / sizeof GEMM_SHAPES[0]));
    tcase_add_loop_test(tc, test_gemm_tn, 0, (int)(sizeof GEMM_SHAPES / sizeof GEMM_SHAPES[0]));
    tcase_add_loop_test(tc, test_gemm_nt, 0, (int)(sizeof GEMM_SHAPES / sizeof GEMM_SHAPES[0]));
    tcase_add_loop_test(tc, test_gemm_panels, 0,
                        (int)(sizeof GEMM_SHAPES / sizeof GEMM_SHAPES[0]));
    tcase_add_loop_test(tc, test_conv_c1, 0, (int)(sizeof C1_SHAPES / sizeof C1_SHAPES[0]));
    tcase_add_test(tc, test_wino_smaller_batches);
    tcase_add_test(tc, test_wino_eligible);
    tcase_add_test(tc, test_plan_with_winograd);
    tcase_add_loop_test(tc, test_wino_input_grad, 0,
                        (int)(sizeof GRAD_SHAPES / sizeof GRAD_SHAPES[0]));
    tcase_add_test(tc, test_train_step_with_winograd);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
