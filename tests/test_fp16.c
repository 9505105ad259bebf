/* test_fp16.c - NN_PRECISION_FP16: the Winograd filters in half floats.
 * The conversion rounds each value to the nearest half; the GEMM on half
 * panels equals an exact product with those halves (up to fp32 sums); a
 * network in FP16 gives the probabilities of FP32 to 1e-3 and the same
 * classes on the shipped model; switching back gives FP32's exact outputs.
 * Skips, saying so, on a CPU without AVX2, FMA and F16C. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nn.h"

#define DEFAULT_MODEL "models/default.emod"

static float half_to_float(uint16_t h)
{
    const int e = h >> 10 & 31, f = h & 1023;
    float v = e == 0 ? ldexpf((float)f, -24) : e == 31 ? (f ? NAN : INFINITY)
                                                      : ldexpf((float)(f + 1024), e - 25);
    return h >> 15 ? -v : v;
}

static int skip_without_f16(void)
{
    if (nn_gemm_f16_supported()) return 0;
    printf("SKIP: this CPU lacks AVX2, FMA or F16C: FP16 runs as FP32 here\n");
    return 1;
}

static float uniform(uint64_t *r)
{
    *r = *r * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)(*r >> 40) / (float)(1 << 24) - 0.5f;
}

/* M, N, K as in test_winograd.c: partial row blocks (9 = 5 + 4, 13), a
 * single row or column, N past the last 16, K odd and large */
static const int SHAPES[][3] = {{13, 37, 5}, {9, 48, 96}, {1, 7, 3},  {64, 96, 96},
                                {9, 1, 17},  {10, 20, 600}, {4, 384, 384}, {7, 33, 1}};

START_TEST(test_gemm_f16)
{
    if (skip_without_f16()) return;
    const int M = SHAPES[_i][0], N = SHAPES[_i][1], K = SHAPES[_i][2];
    /* float panels of both widths the plan may convert: 16 (AVX2) and 32
     * (AVX-512), whatever this CPU is */
    const int lda = K + 3, ldc = N + 5, W = _i % 2 ? 32 : 16;
    const size_t np = nn_gemm_panel_floats(K, N);
    uint64_t r = 7 + (uint64_t)_i;
    float *A = malloc(sizeof(float) * M * lda), *B = malloc(sizeof(float) * K * N);
    float *Bp = calloc(np, sizeof(float)), *C = malloc(sizeof(float) * M * ldc);
    uint16_t *Bh = malloc(sizeof(uint16_t) * np);
    ck_assert(A && B && Bp && C && Bh);
    for (int i = 0; i < M * lda; i++) A[i] = uniform(&r);
    for (int i = 0; i < K * N; i++) B[i] = uniform(&r) * (i % 7 == 0 ? 1e-3f : 1.0f);
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) Bp[nn_gemm_panel_at(W, K, N, k, n)] = B[k * N + n];
    memset(Bh, 0xFF, sizeof(uint16_t) * np); /* NaN: the padding must be written too */
    nn_gemm_panels_to_f16(W, K, N, Bp, Bh);
    /* every value rounded to the nearest half, the padding zero */
    for (int k = 0; k < K; k++)
        for (int n = 0; n < (N + 15) / 16 * 16; n++) {
            const float h = half_to_float(Bh[nn_gemm_panel_at(16, K, N, k, n)]);
            if (n >= N) {
                ck_assert_msg(h == 0.0f, "padding B[%d][%d] = %g", k, n, h);
                continue;
            }
            const float b = B[k * N + n];
            ck_assert_msg(fabsf(h - b) <= fabsf(b) * 0x1p-11f + 0x1p-25f,
                          "B[%d][%d] = %.9g became %.9g", k, n, b, h);
        }
    for (int i = 0; i < M * ldc; i++) C[i] = -7.0f; /* past N must stay */
    nn_gemm_nn_panels_f16(M, N, K, A, lda, Bh, C, ldc);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            if (j >= N) {
                ck_assert_msg(C[i * ldc + j] == -7.0f, "C[%d][%d] past N written", i, j);
                continue;
            }
            double want = 0;
            for (int k = 0; k < K; k++)
                want += (double)A[i * lda + k] *
                        half_to_float(Bh[nn_gemm_panel_at(16, K, N, k, j)]);
            ck_assert_msg(fabs(C[i * ldc + j] - want) <= 1e-6 * K,
                          "%dx%dx%d: C[%d][%d] = %g, want %g", M, N, K, i, j, C[i * ldc + j],
                          want);
        }
    free(A), free(B), free(Bp), free(C), free(Bh);
}
END_TEST

/* FP16 against FP32 on one model: probabilities within tol, the classes the
 * same where FP32's top two are further apart than the difference; then back
 * to FP32, bit for bit what it gave first. Batch 1 and batch 16 (more tiles
 * per GEMM). */
static void check_model(nn_model *m, float tol, const char *what)
{
    enum { N = 32 };
    const int S = nn_model_input_size(m), K = nn_model_num_classes(m);
    uint8_t *px = malloc((size_t)N * S * S);
    float *p32 = malloc(sizeof(float) * N * K), *p16 = malloc(sizeof(float) * N * K);
    float *again = malloc(sizeof(float) * N * K);
    ck_assert(px && p32 && p16 && again);
    uint64_t r = 3;
    for (int i = 0; i < N * S * S; i++)
        px[i] = (uint8_t)(128 + 100 * uniform(&r) + 60 * sinf((float)(i % S) / 5.0f));
    for (int batch = 1; batch <= 16; batch += 15) {
        nn_ws *ws = nn_ws_create(m, batch);
        ck_assert_ptr_nonnull(ws);
        ck_assert_int_eq(nn_model_set_precision(m, NN_PRECISION_FP32), NN_PRECISION_FP32);
        for (int i = 0; i < N; i += batch)
            ck_assert_int_eq(nn_predict_u8(m, ws, px + (size_t)i * S * S, batch, 0, p32 + i * K), 0);
        ck_assert_int_eq(nn_model_set_precision(m, NN_PRECISION_FP16), NN_PRECISION_FP16);
        for (int i = 0; i < N; i += batch)
            ck_assert_int_eq(nn_predict_u8(m, ws, px + (size_t)i * S * S, batch, 0, p16 + i * K), 0);
        float d = 0;
        for (int i = 0; i < N * K; i++) d = fmaxf(d, fabsf(p16[i] - p32[i]));
        ck_assert_msg(d <= tol, "%s, batch %d: FP16 probabilities differ by %g", what, batch, d);
        for (int i = 0; i < N; i++) {
            int a = 0, b = 0;
            for (int k = 1; k < K; k++) {
                if (p32[i * K + k] > p32[i * K + a]) a = k;
                if (p16[i * K + k] > p16[i * K + b]) b = k;
            }
            ck_assert_msg(a == b || p32[i * K + a] - p32[i * K + b] <= 2 * d,
                          "%s: image %d is class %d in FP32, %d in FP16", what, i, a, b);
        }
        nn_model_set_precision(m, NN_PRECISION_FP32);
        for (int i = 0; i < N; i += batch)
            ck_assert_int_eq(nn_predict_u8(m, ws, px + (size_t)i * S * S, batch, 0, again + i * K), 0);
        ck_assert_msg(!memcmp(again, p32, sizeof(float) * N * K), "%s: FP32 after FP16 differs",
                      what);
        if (batch == 1) printf("%s: FP16 probabilities within %.2g of FP32\n", what, d);
        nn_ws_free(ws);
    }
    free(px), free(p32), free(p16), free(again);
}

START_TEST(test_network_arch)
{
    if (skip_without_f16()) return;
    static const char *const arch[] = {"config/arch/vgg.json", "config/arch/vgg_wide.json"};
    nn_model *m = NULL;
    char err[256];
    ck_assert_msg(nn_model_from_arch_file(arch[_i], 11, &m, err, sizeof err) == 0, "%s", err);
    check_model(m, 2e-3f, arch[_i]);
    nn_model_free(m);
}
END_TEST

/* Channel counts that are not multiples of 16, some layers with more output
 * than input channels (their input gradient's planes would pad more than
 * the forward ones): the filters' panels pad, and only the forward planes
 * are converted and read. */
START_TEST(test_network_odd_channels)
{
    if (skip_without_f16()) return;
    static const char *const arch =
        "{\"name\": \"odd\", \"input\": {\"size\": 48, \"channels\": 1, \"scale\": 0.0039215686,"
        " \"mean\": 0.0, \"std\": 1.0}, \"layers\": ["
        "{\"type\": \"conv\", \"filters\": 12, \"kernel\": 3, \"padding\": \"same\"}, {\"type\": \"relu\"},"
        "{\"type\": \"conv\", \"filters\": 20, \"kernel\": 3, \"padding\": \"same\"}, {\"type\": \"relu\"},"
        "{\"type\": \"maxpool\"},"
        "{\"type\": \"conv\", \"filters\": 40, \"kernel\": 3, \"padding\": \"same\"}, {\"type\": \"relu\"},"
        "{\"type\": \"maxpool\"},"
        "{\"type\": \"conv\", \"filters\": 36, \"kernel\": 3, \"padding\": \"same\"}, {\"type\": \"relu\"},"
        "{\"type\": \"gap\"}, {\"type\": \"dense\", \"units\": 7}]}";
    nn_model *m = NULL;
    char err[256];
    ck_assert_msg(nn_model_from_arch_json(arch, 13, &m, err, sizeof err) == 0, "%s", err);
    check_model(m, 2e-3f, "12-20-40-36 channels");
    nn_model_free(m);
}
END_TEST

START_TEST(test_network_default_model)
{
    if (skip_without_f16()) return;
    nn_model *m = NULL;
    char err[256];
    ck_assert_msg(nn_model_load(DEFAULT_MODEL, &m, err, sizeof err) == 0, "%s", err);
    check_model(m, 2e-3f, DEFAULT_MODEL);
    nn_model_free(m);
}
END_TEST

/* The plan keeps one copy of the filters: halves in FP16, floats in FP32. */
START_TEST(test_plan_holds_one_copy)
{
    if (skip_without_f16()) return;
    nn_model *m = NULL;
    char err[256];
    ck_assert_msg(nn_model_from_arch_file("config/arch/vgg.json", 5, &m, err, sizeof err) == 0,
                  "%s", err);
    nn_ws *ws = nn_ws_create(m, 1);
    ck_assert_ptr_nonnull(ws);
    uint8_t px[48 * 48] = {0};
    float p[7];
    nn_model_set_precision(m, NN_PRECISION_FP16);
    ck_assert_int_eq(nn_predict_u8(m, ws, px, 1, 0, p), 0);
    ck_assert_ptr_nonnull(ws->wino_h);
    ck_assert_ptr_null(ws->wino_w);
    int halves = 0;
    for (int i = 0; i < ws->n_steps; i++) {
        ck_assert_ptr_null(ws->steps[i].wino);
        halves += ws->steps[i].wino_h != NULL;
    }
    ck_assert_int_gt(halves, 0);
    nn_model_set_precision(m, NN_PRECISION_FP32);
    ck_assert_int_eq(nn_predict_u8(m, ws, px, 1, 0, p), 0);
    ck_assert_ptr_null(ws->wino_h);
    ck_assert_ptr_nonnull(ws->wino_w);
    for (int i = 0; i < ws->n_steps; i++) ck_assert_ptr_null(ws->steps[i].wino_h);
    nn_ws_free(ws);
    nn_model_free(m);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_int_eq(nn_precision_parse("fp16"), NN_PRECISION_FP16);
    ck_assert_str_eq(nn_precision_name(NN_PRECISION_FP16), "fp16");
    ck_assert_int_eq(nn_precision_supported(NN_PRECISION_FP16), nn_gemm_f16_supported());
    ck_assert_int_eq(nn_precision_supported(NN_PRECISION_FP32), 1);
    nn_model *m = NULL;
    char err[256];
    ck_assert_msg(nn_model_from_arch_file("config/arch/vgg.json", 5, &m, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(nn_model_set_precision(m, NN_PRECISION_FP16),
                     nn_gemm_f16_supported() ? NN_PRECISION_FP16 : NN_PRECISION_FP32);
    nn_model *c = nn_model_clone(m);
    ck_assert_int_eq(nn_model_precision(c), nn_model_precision(m));
    nn_model_free(c);
    nn_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fp16");
    TCase *tc = tcase_create("fp16");
    tcase_set_timeout(tc, 300); /* the sanitizer builds */
    tcase_add_loop_test(tc, test_gemm_f16, 0, (int)(sizeof SHAPES / sizeof SHAPES[0]));
    tcase_add_loop_test(tc, test_network_arch, 0, 2);
    tcase_add_test(tc, test_network_odd_channels);
    tcase_add_test(tc, test_network_default_model);
    tcase_add_test(tc, test_plan_holds_one_copy);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
