/* test_int8.c - int8 inference (nn/int8.c, nn/int8_vnni.c).
 *
 * The AVX-512 VNNI kernels must give exactly the bits of the plain-C
 * reference (the same integer sums, the same float epilogue) on shapes that
 * exercise every path: 1 and 3 input channels (taps padded to groups of 4),
 * even kernels, 'valid' padding, channel counts that are not multiples of 16,
 * rows narrower than a tile, dense layers. Then whole networks: VNNI and
 * reference logits identical, and int8 probabilities close to fp32 with the
 * same argmax on most inputs, for every shipped architecture (the PyTorch
 * fixtures' weights) and the default model. On a CPU without VNNI the
 * comparisons with the VNNI kernels are skipped (and said so), the rest runs
 * the reference kernels, and INT8 must fall back to FP32. Runs from the
 * project root. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "worker_pool.h"

static int have_vnni(void)
{
    static int said;
    int v = nn_q8_vnni_available();
    if (!v && !said++) printf("int8: no AVX-512 VNNI here: VNNI comparisons skipped\n");
    return v;
}

/* ---- one layer: VNNI against the reference ------------------------------- */

typedef struct {
    int H, W, C, k, same, O;
} shape;

static const shape SHAPES[] = {
    {48, 48, 1, 3, 1, 32},  /* vgg's first layer */
    {24, 24, 32, 3, 1, 64}, /* a middle one */
    {6, 6, 256, 3, 1, 256}, /* the last conv: 6 wide, one tile per row */
    {12, 12, 3, 3, 1, 40},  /* 3 channels, 40 = 2 blocks + 8 */
    {11, 13, 5, 4, 1, 7},   /* even kernel, odd everything, 7 channels */
    {9, 10, 16, 3, 0, 96},  /* valid padding, 96 = 64 + 32 */
    {5, 5, 8, 1, 0, 50},    /* 1x1 */
    {1, 1, 300, 1, 0, 70},  /* a dense layer (300 inputs, 70 units) */
    {20, 30, 6, 5, 1, 48},  /* 5x5, 48 = 3 blocks */
};

static nn_layer layer_of(const shape *s)
{
    nn_layer L = {0};
    L.type = L_CONV;
    L.in_h = s->H;
    L.in_w = s->W;
    L.in_c = s->C;
    L.k = s->k;
    L.pad = s->same ? (s->k - 1) / 2 : 0;
    L.out_h = s->same ? s->H : s->H - s->k + 1;
    L.out_w = s->same ? s->W : s->W - s->k + 1;
    L.out_c = s->O;
    L.in_size = (size_t)s->H * s->W * s->C;
    L.out_size = (size_t)L.out_h * L.out_w * s->O;
    return L;
}

START_TEST(test_kernel_bitexact)
{
    const shape *s = &SHAPES[_i];
    nn_layer L = layer_of(s);
    nn_q8_geom g;
    nn_q8_geom_of(&L, &g);
    const size_t K = (size_t)s->k * s->k * s->C, nin = L.in_size, nout = L.out_size;
    float *W = malloc(sizeof(float) * K * s->O), *x = malloc(sizeof(float) * nin);
    float *sc = malloc(sizeof(float) * s->O), *bias = malloc(sizeof(float) * s->O);
    float *scale = malloc(sizeof(float) * s->O);
    int8_t *qw = malloc(nn_q8_packed_bytes(&g));
    uint8_t *q1 = malloc(nn_q8_input_bytes(&g)), *q2 = malloc(nn_q8_input_bytes(&g));
    float *y1 = malloc(sizeof(float) * nout), *y2 = malloc(sizeof(float) * nout);
    uint64_t r = 1000 + (uint64_t)_i;
    for (size_t i = 0; i < K * s->O; i++) W[i] = nn_rng_normal(&r) * 0.2f;
    for (size_t i = 0; i < nin; i++) /* ReLU-like: a quarter exactly zero */
        x[i] = nn_rng_uniform(&r) < 0.25f ? 0 : 3 * nn_rng_uniform(&r);
    for (int o = 0; o < s->O; o++) bias[o] = nn_rng_uniform(&r) - 0.5f;
    nn_q8_pack(&g, W, qw, scale);
    /* the packed weights reproduce W within half a step of each channel */
    for (int o = 0; o < s->O; o++) {
        ck_assert(scale[o] > 0);
        for (size_t t = 0; t < K; t++) {
            const int ky = (int)(t / ((size_t)s->k * s->C)), j = (int)(t % ((size_t)s->k * s->C));
            const int8_t v = qw[((size_t)(o / 16) * s->k * g.kq + (size_t)ky * g.kq + j / 4) * 64 +
                                (o % 16) * 4 + j % 4];
            ck_assert_float_le(fabsf(v * scale[o] - W[o * K + t]), 0.5f * scale[o] * 1.0001f);
        }
    }
    const float s_ref = nn_q8_quantize_ref(&g, x, q1);
    ck_assert_float_gt(s_ref, 0);
    if (have_vnni()) {
        const float s_vnni = nn_q8_quantize_vnni(&g, x, q2);
        ck_assert_msg(s_vnni == s_ref, "shape %d: scale %g vs %g", _i, s_vnni, s_ref);
        ck_assert_msg(!memcmp(q1, q2, nn_q8_input_bytes(&g)), "shape %d: quantized bytes differ",
                      _i);
    }
    for (int o = 0; o < s->O; o++) sc[o] = s_ref * scale[o];
    for (int mode = 0; mode < 3; mode++) { /* raw, + bias, + bias and ReLU */
        const float *b = mode ? bias : NULL;
        nn_q8_conv_ref(&g, q1, qw, sc, b, mode == 2, y1);
        /* the reference itself: close to the float convolution */
        if (mode == 1) {
            float *want = malloc(sizeof(float) * nout), *col = malloc(sizeof(float) * 4096 * K);
            conv_forward(&L, x, W, bias, want, 1, col);
            float worst = 0, big = 0;
            for (size_t i = 0; i < nout; i++) {
                worst = fmaxf(worst, fabsf(y1[i] - want[i]));
                big = fmaxf(big, fabsf(want[i]));
            }
            ck_assert_msg(worst < 0.03f * big, "shape %d: int8 off by %g (max |y| %g)", _i, worst,
                          big);
            free(want);
            free(col);
        }
        if (!have_vnni()) continue;
        memset(y2, 0xA5, sizeof(float) * nout);
        nn_q8_conv_vnni(&g, q1, qw, sc, b, mode == 2, y2);
        for (size_t i = 0; i < nout; i++)
            ck_assert_msg(!memcmp(&y1[i], &y2[i], sizeof(float)),
                          "shape %d mode %d: out[%zu] VNNI %.9g, reference %.9g", _i, mode, i,
                          y2[i], y1[i]);
    }
    free(W); free(x); free(sc); free(bias); free(scale); free(qw);
    free(q1); free(q2); free(y1); free(y2);
}
END_TEST

/* ---- whole networks ------------------------------------------------------ */

#define N_IMG 24

/* The fixture's 4 images (uniform noise) and 20 smoother ones: gradients,
 * blobs and noise, so that the networks see more than noise. */
static uint8_t *test_images(const uint8_t *fixture, int n_fixture, int S)
{
    uint8_t *px = malloc((size_t)N_IMG * S * S);
    memcpy(px, fixture, (size_t)n_fixture * S * S);
    uint64_t r = 77;
    for (int b = n_fixture; b < N_IMG; b++) {
        const float cx = S * nn_rng_uniform(&r), cy = S * nn_rng_uniform(&r);
        const float gx = 4 * (nn_rng_uniform(&r) - 0.5f), rad = 4 + S * nn_rng_uniform(&r) / 2;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                float d = sqrtf((x - cx) * (x - cx) + (y - cy) * (y - cy));
                float v = 110 + gx * (x - S / 2) + (d < rad ? 70 : -20) + 25 * nn_rng_normal(&r);
                px[((size_t)b * S + y) * S + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    }
    return px;
}

static nn_model *fixture_model(const char *arch, uint8_t **pixels)
{
    char path[256], err[256] = "";
    nn_model *m = NULL;
    snprintf(path, sizeof path, "config/arch/%s.json", arch);
    ck_assert_msg(nn_model_from_arch_file(path, 1, &m, err, sizeof err) == 0, "%s", err);
    /* tests/fixtures/ARCH.ref (tests/torch_reference.py): "EREF", version,
     * n_params, params, batch, pixels, ... */
    snprintf(path, sizeof path, "tests/fixtures/%s.ref", arch);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char magic[4];
    int32_t version, n, batch;
    size_t np;
    float *p = nn_model_params(m, &np);
    const int S = nn_model_input_size(m);
    ck_assert(fread(magic, 1, 4, f) == 4 && !memcmp(magic, "EREF", 4));
    ck_assert(fread(&version, 4, 1, f) == 1 && fread(&n, 4, 1, f) == 1 && (size_t)n == np);
    ck_assert(fread(p, sizeof(float), np, f) == np);
    ck_assert(fread(&batch, 4, 1, f) == 1 && batch > 0 && batch <= N_IMG);
    uint8_t *fx = malloc((size_t)batch * S * S);
    ck_assert(fread(fx, 1, (size_t)batch * S * S, f) == (size_t)batch * S * S);
    fclose(f);
    m->gen++;
    *pixels = test_images(fx, batch, S);
    free(fx);
    return m;
}

/* probs of the first n images at the model's precision; ref: the reference
 * kernels */
static void predict(nn_model *m, const uint8_t *px, int n, int ref, float *probs)
{
    nn_ws *ws = nn_ws_create(m, 8);
    ck_assert_ptr_nonnull(ws);
    ws->q8_ref = ref;
    ws->plan_model = NULL; /* planned again, now that the reference kernels count */
    const int S = nn_model_input_size(m), K = nn_model_num_classes(m);
    for (int b = 0; b < n; b += 8)
        ck_assert_int_eq(nn_predict_u8(m, ws, px + (size_t)b * S * S, n - b < 8 ? n - b : 8, NN_TTA_NONE,
                                       probs + (size_t)b * K), 0);
    nn_ws_free(ws);
}

static int argmax(const float *p, int K)
{
    int best = 0;
    for (int k = 1; k < K; k++)
        if (p[k] > p[best]) best = k;
    return best;
}

/* int8 against fp32: every probability within max_dp, argmax the same on at
 * least min_agree of the images; VNNI and reference networks bit-identical
 * (on 8 images: the reference kernels are slow) */
static void check_network(nn_model *m, const uint8_t *px, const char *name, float max_dp,
                          int min_agree)
{
    const int K = nn_model_num_classes(m), vnni = have_vnni();
    float p32[N_IMG * NN_MAX_CLASSES], p8[N_IMG * NN_MAX_CLASSES], pref[8 * NN_MAX_CLASSES];
    nn_model_set_precision(m, NN_PRECISION_FP32);
    predict(m, px, N_IMG, 0, p32);
    m->precision = NN_PRECISION_INT8; /* also without VNNI: the reference kernels */
    predict(m, px, vnni ? N_IMG : 8, !vnni, p8);
    const int n = vnni ? N_IMG : 8;
    float worst = 0;
    int agree = 0;
    for (int b = 0; b < n; b++) {
        for (int k = 0; k < K; k++) worst = fmaxf(worst, fabsf(p8[b * K + k] - p32[b * K + k]));
        agree += argmax(p8 + b * K, K) == argmax(p32 + b * K, K);
    }
    printf("int8 %s: max |p_int8 - p_fp32| %.4f, argmax agrees on %d/%d\n", name, worst, agree, n);
    ck_assert_msg(worst <= max_dp, "%s: int8 probabilities differ from fp32 by %g", name, worst);
    ck_assert_msg(agree >= min_agree * n / N_IMG, "%s: argmax agrees on %d/%d only", name, agree,
                  n);
    if (vnni) {
        predict(m, px, 8, 1, pref);
        ck_assert_msg(!memcmp(p8, pref, sizeof(float) * 8 * K),
                      "%s: VNNI and reference networks differ", name);
    }
}

static const char *const ARCHS[] = {"vgg", "vgg_wide", "seed"};

START_TEST(test_network_fixture)
{
    uint8_t *px;
    nn_model *m = fixture_model(ARCHS[_i], &px);
    /* random weights spread the probabilities less than training does;
     * seed (ELU) runs only its first convolution in int8 */
    check_network(m, px, ARCHS[_i], 0.05f, N_IMG - 2);
    free(px);
    nn_model_free(m);
}
END_TEST

START_TEST(test_network_default_model)
{
    nn_model *m;
    char err[256];
    ck_assert_msg(nn_model_load("models/default.emod", &m, err, sizeof err) == 0, "%s", err);
    uint8_t *px;
    nn_model *shape = fixture_model(nn_model_arch_name(m), &px);
    nn_model_free(shape);
    check_network(m, px, "models/default.emod", 0.05f, N_IMG - 2);
    free(px);
    nn_model_free(m);
}
END_TEST

/* Which steps run int8: the convolutions and the hidden dense layer of vgg,
 * not the logits; seed's ELU makes every input but the first signed. */
START_TEST(test_plan_steps)
{
    for (int a = 0; a < 3; a++) {
        uint8_t *px;
        nn_model *m = fixture_model(ARCHS[a], &px);
        m->precision = NN_PRECISION_INT8;
        nn_ws *ws = nn_ws_create(m, 1);
        ws->q8_ref = 1;
        ws->plan_model = NULL; /* planned again, now that the reference kernels count */
        ck_assert_int_eq(nn_plan_refresh(m, ws), 0);
        int q8 = 0, mm = 0, last_q8 = 0;
        for (int i = 0; i < ws->n_steps; i++) {
            const nn_layer_type t = ws->steps[i].L->type;
            if (t != L_CONV && t != L_DENSE) continue;
            mm++;
            q8 += ws->steps[i].q8;
            last_q8 = ws->steps[i].q8;
        }
        ck_assert_int_eq(last_q8, 0);
        if (!strcmp(ARCHS[a], "seed")) ck_assert_int_eq(q8, 1);
        else ck_assert_int_eq(q8, mm - 1);
        nn_ws_free(ws);
        free(px);
        nn_model_free(m);
    }
}
END_TEST

/* Precision changes reach a planned workspace, both ways, and new weights
 * reach its int8 copy. */
START_TEST(test_plan_follows_precision)
{
    if (!have_vnni()) return;
    uint8_t *px;
    nn_model *m = fixture_model("vgg", &px);
    nn_ws *ws = nn_ws_create(m, 1);
    float a[7], b[7], c[7], d[7];
    ck_assert_int_eq(nn_predict_u8(m, ws, px, 1, NN_TTA_NONE, a), 0);
    ck_assert_int_eq(nn_model_set_precision(m, NN_PRECISION_INT8), NN_PRECISION_INT8);
    ck_assert_int_eq(nn_model_precision(m), NN_PRECISION_INT8);
    ck_assert_int_eq(nn_predict_u8(m, ws, px, 1, NN_TTA_NONE, b), 0);
    ck_assert(memcmp(a, b, sizeof a)); /* int8 is not bit-identical to fp32 */
    nn_model *copy = nn_model_clone(m);
    ck_assert_int_eq(nn_model_precision(copy), NN_PRECISION_INT8);
    nn_model_free(copy);
    size_t n;
    float *p = nn_model_params(m, &n);
    for (size_t i = 0; i < n; i++) p[i] *= -1.0f;
    ck_assert_int_eq(nn_predict_u8(m, ws, px, 1, NN_TTA_NONE, c), 0);
    ck_assert(memcmp(b, c, sizeof b));
    nn_ws *fresh = nn_ws_create(m, 1);
    ck_assert_int_eq(nn_predict_u8(m, fresh, px, 1, NN_TTA_NONE, d), 0);
    ck_assert(!memcmp(c, d, sizeof c));
    for (size_t i = 0; i < n; i++) p[i] *= -1.0f;
    ck_assert_int_eq(nn_model_set_precision(m, NN_PRECISION_FP32), NN_PRECISION_FP32);
    ck_assert_int_eq(nn_predict_u8(m, ws, px, 1, NN_TTA_NONE, c), 0);
    ck_assert(!memcmp(a, c, sizeof a));
    nn_ws_free(fresh);
    nn_ws_free(ws);
    free(px);
    nn_model_free(m);
}
END_TEST

/* A CPU without VNNI: INT8 is refused; the model runs FP16 where the CPU
 * has F16C and no AVX-512 (else FP32: nn_precision_served) and answers
 * exactly that precision's probabilities. */
START_TEST(test_fallback_without_vnni)
{
    uint8_t *px;
    nn_model *m = fixture_model("vgg", &px);
    float a[7], b[7], h[7];
    nn_ws *ws = nn_ws_create(m, 1);
    ck_assert_int_eq(nn_predict_u8(m, ws, px, 1, NN_TTA_NONE, a), 0);
    const nn_precision fb = nn_gemm_f16_supported() && nn_gemm_isa() != NN_GEMM_AVX512
                                ? NN_PRECISION_FP16
                                : NN_PRECISION_FP32;
    ck_assert_int_eq(nn_model_set_precision(m, fb), fb);
    ck_assert_int_eq(nn_predict_u8(m, ws, px, 1, NN_TTA_NONE, h), 0);
    nn_model_set_precision(m, NN_PRECISION_FP32);
    nn_q8_cpu_override = 0;
    ck_assert_int_eq(nn_int8_supported(), 0);
    ck_assert_int_eq(nn_precision_served(NN_PRECISION_INT8), fb);
    ck_assert_int_eq(nn_model_set_precision(m, NN_PRECISION_INT8), fb);
    ck_assert_int_eq(nn_model_precision(m), fb);
    ck_assert_int_eq(nn_predict_u8(m, ws, px, 1, NN_TTA_NONE, b), 0);
    ck_assert(!memcmp(h, b, sizeof h));
    nn_model_set_precision(m, NN_PRECISION_FP32);
    /* a model set to INT8 before: a workspace on this CPU plans fp32 */
    m->precision = NN_PRECISION_INT8;
    ck_assert_int_eq(nn_predict_u8(m, ws, px, 1, NN_TTA_NONE, b), 0);
    ck_assert(!memcmp(a, b, sizeof a));
    nn_q8_cpu_override = -1;
    nn_ws_free(ws);
    free(px);
    nn_model_free(m);
}
END_TEST

/* The service's workers: their model copies follow wp_set_precision, also
 * across a model swap. */
typedef struct {
    const uint8_t *px;
    int precision;
    float probs[7];
} pool_job;

static void pool_run(void **args, int n, const wp_ctx *ctx)
{
    for (int i = 0; i < n; i++) {
        pool_job *j = args[i];
        j->precision = nn_model_precision(ctx->model);
        nn_predict_u8(ctx->model, ctx->ws, j->px, 1, NN_TTA_NONE, j->probs);
    }
}

static void pool_cancel(void *arg) { (void)arg; }

START_TEST(test_worker_pool_precision)
{
    uint8_t *px;
    char err[256];
    nn_model *m = fixture_model("vgg", &px);
    float want[7];
    nn_model *mine = nn_model_clone(m);
    nn_ws *ws = nn_ws_create(mine, 1);
    const int p8 = nn_model_set_precision(mine, NN_PRECISION_INT8);
    ck_assert_int_eq(nn_predict_u8(mine, ws, px, 1, NN_TTA_NONE, want), 0);
    svc_model *sm = sm_wrap(m, NULL, err, sizeof err);
    ck_assert_msg(sm != NULL, "%s", err);
    wp_config pc = {.workers = 1, .capacity = 4, .max_batch = 1};
    wp_pool *pool = wp_create(sm, &pc, err, sizeof err);
    ck_assert_msg(pool != NULL, "%s", err);
    ck_assert_int_eq(wp_set_precision(pool, NN_PRECISION_INT8), p8);
    for (int round = 0; round < 2; round++) {
        pool_job j = {px, -1, {0}};
        ck_assert_int_eq(wp_submit(pool, pool_run, pool_cancel, &j), WP_OK);
        ck_assert_int_eq(wp_wait_idle(pool, 60), 0);
        ck_assert_int_eq(j.precision, p8);
        ck_assert(!memcmp(j.probs, want, sizeof want));
        /* the same weights published again: the new copy runs int8 too */
        nn_model *again = nn_model_clone(sm->nn);
        svc_model *sm2 = sm_wrap(again, NULL, err, sizeof err);
        ck_assert_msg(sm2 != NULL, "%s", err);
        wp_set_model(pool, sm2);
        sm_unref(sm2);
    }
    ck_assert_int_eq(wp_set_precision(pool, NN_PRECISION_FP32), NN_PRECISION_FP32);
    pool_job j = {px, -1, {0}};
    ck_assert_int_eq(wp_submit(pool, pool_run, pool_cancel, &j), WP_OK);
    ck_assert_int_eq(wp_wait_idle(pool, 60), 0);
    ck_assert_int_eq(j.precision, NN_PRECISION_FP32);
    wp_destroy(pool);
    sm_unref(sm);
    nn_ws_free(ws);
    nn_model_free(mine);
    free(px);
}
END_TEST

START_TEST(test_precision_names)
{
    ck_assert_int_eq(nn_precision_parse("fp32"), NN_PRECISION_FP32);
    ck_assert_int_eq(nn_precision_parse("int8"), NN_PRECISION_INT8);
    ck_assert_int_eq(nn_precision_parse("INT8"), -1);
    ck_assert_int_eq(nn_precision_parse(""), -1);
    ck_assert_int_eq(nn_precision_parse(NULL), -1);
    ck_assert_str_eq(nn_precision_name(NN_PRECISION_FP32), "fp32");
    ck_assert_str_eq(nn_precision_name(NN_PRECISION_INT8), "int8");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("int8");
    TCase *tc = tcase_create("int8");
    tcase_set_timeout(tc, 300); /* the reference kernels under the sanitizers */
    tcase_add_loop_test(tc, test_kernel_bitexact, 0, (int)(sizeof SHAPES / sizeof *SHAPES));
    tcase_add_loop_test(tc, test_network_fixture, 0, 3);
    tcase_add_test(tc, test_network_default_model);
    tcase_add_test(tc, test_plan_steps);
    tcase_add_test(tc, test_plan_follows_precision);
    tcase_add_test(tc, test_fallback_without_vnni);
    tcase_add_test(tc, test_worker_pool_precision);
    tcase_add_test(tc, test_precision_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
