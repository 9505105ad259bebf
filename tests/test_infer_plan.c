/* test_infer_plan.c - the fused inference plan (nn/infer_plan.c): batch norm
 * folded into conv and dense weights, bias and ReLU moved behind max pooling.
 * Checks it against a plain layer-by-layer forward pass written here from the
 * layer kernels, on architectures that exercise every fusion and every case
 * that must not fuse, and that a workspace notices new weights. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* conv+BN+ReLU+pool (all fused), conv+BN without ReLU, conv+ReLU without BN,
 * conv+ELU+BN (no fold), standalone BN after a pool, dense+BN+ReLU, GAP */
static const char *ARCHS[] = {
    "{\"name\":\"a\",\"input\":{\"size\":12,\"channels\":1},\"layers\":["
    "{\"type\":\"conv\",\"filters\":4,\"kernel\":3},{\"type\":\"batchnorm\"},{\"type\":\"relu\"},"
    "{\"type\":\"maxpool\"},"
    "{\"type\":\"conv\",\"filters\":5,\"kernel\":3},{\"type\":\"batchnorm\"},"
    "{\"type\":\"conv\",\"filters\":6,\"kernel\":3},{\"type\":\"relu\"},{\"type\":\"maxpool\"},"
    "{\"type\":\"batchnorm\"},{\"type\":\"flatten\"},{\"type\":\"dropout\",\"rate\":0.3},"
    "{\"type\":\"dense\",\"units\":8},{\"type\":\"batchnorm\"},{\"type\":\"relu\"},"
    "{\"type\":\"dense\",\"units\":7}]}",
    "{\"name\":\"b\",\"input\":{\"size\":12,\"channels\":1},\"layers\":["
    "{\"type\":\"conv\",\"filters\":4,\"kernel\":4},{\"type\":\"elu\"},{\"type\":\"batchnorm\"},"
    "{\"type\":\"maxpool\"},{\"type\":\"conv\",\"filters\":6,\"kernel\":3},{\"type\":\"maxpool\"},"
    "{\"type\":\"conv\",\"filters\":7,\"kernel\":1,\"padding\":\"valid\"},{\"type\":\"batchnorm\"},"
    "{\"type\":\"relu\"},{\"type\":\"gap\"},{\"type\":\"dense\",\"units\":7}]}",
};

/* random weights, and batch-norm statistics far from the identity so that a
 * fold that forgot a term would show */
static nn_model *make_model(const char *json)
{
    nn_model *m;
    char err[256];
    ck_assert_msg(nn_model_from_arch_json(json, 7, &m, err, sizeof err) == 0, "%s", err);
    uint64_t r = 99;
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer *L = &m->layers[i];
        float *p = m->params + L->p_off;
        if (L->type == L_BN) {
            const int C = L->in_c;
            for (int c = 0; c < C; c++) {
                p[c] = 0.5f + nn_rng_uniform(&r);             /* gamma */
                p[C + c] = nn_rng_uniform(&r) - 0.5f;         /* beta */
                p[2 * C + c] = nn_rng_uniform(&r) - 0.5f;     /* mean */
                p[3 * C + c] = 0.2f + 2 * nn_rng_uniform(&r); /* var */
            }
        } else if (L->type == L_CONV || L->type == L_DENSE) {
            float *b = p + L->p_count - L->out_c;
            for (int o = 0; o < L->out_c; o++) b[o] = 0.4f * (nn_rng_uniform(&r) - 0.5f);
        }
    }
    m->gen++;
    return m;
}

/* layer by layer, unfused, straight from the kernels */
static void reference_forward(const nn_model *m, const float *x, int B, float *logits)
{
    size_t biggest = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].out_size > biggest) biggest = m->layers[i].out_size;
    if (m->layers[0].in_size > biggest) biggest = m->layers[0].in_size;
    float *a = malloc(sizeof(float) * biggest * B), *b = malloc(sizeof(float) * biggest * B);
    float *col = malloc(sizeof(float) * 4096 * 64);
    memcpy(a, x, sizeof(float) * m->layers[0].in_size * B);
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer *L = &m->layers[i];
        const float *p = m->params + L->p_off;
        const size_t n = L->out_size * B;
        switch (L->type) {
        case L_CONV: conv_forward(L, a, p, p + L->p_count - L->out_c, b, B, col); break;
        case L_BN:
            bn_forward_infer(a, b, p, p + L->in_c, p + 2 * L->in_c, p + 3 * L->in_c,
                             n / L->in_c, L->in_c, L->eps);
            break;
        case L_RELU: relu_forward(a, b, n); break;
        case L_ELU: elu_forward(a, b, n); break;
        case L_MAXPOOL: maxpool_forward(L, a, b, NULL, B); break;
        case L_GAP: gap_forward(L, a, b, B); break;
        case L_DENSE: dense_forward(a, p, p + L->p_count - L->out_c, b, B, L->in_c, L->out_c); break;
        case L_DROPOUT:
        case L_FLATTEN: memcpy(b, a, sizeof(float) * n); break;
        }
        float *t = a; a = b; b = t;
    }
    memcpy(logits, a, sizeof(float) * (size_t)B * m->num_classes);
    free(a); free(b); free(col);
}

static float max_diff(const float *a, const float *b, size_t n)
{
    float d = 0;
    for (size_t i = 0; i < n; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

START_TEST(test_plan_matches_unfused)
{
    nn_model *m = make_model(ARCHS[_i]);
    const int B = 3, S = m->in_side;
    float *x = malloc(sizeof(float) * B * S * S), got[3 * 7], want[3 * 7];
    uint64_t r = 5;
    for (int i = 0; i < B * S * S; i++) x[i] = nn_rng_uniform(&r);
    nn_ws *ws = nn_ws_create(m, B);
    ck_assert_ptr_nonnull(ws);
    ck_assert_int_eq(nn_forward_logits(m, ws, x, B, got), 0);
    reference_forward(m, x, B, want);
    float d = max_diff(got, want, (size_t)B * 7);
    ck_assert_msg(d < 1e-4f, "arch %d: fused plan differs from the layer-by-layer pass by %g", _i, d);
    /* the plan is shorter than the layer list when something fused */
    if (_i == 0) ck_assert_int_lt(ws->n_steps, m->n_layers - 6);
    nn_ws_free(ws);
    free(x);
    nn_model_free(m);
}
END_TEST

/* new weights reach a workspace planned before them: through nn_model_params,
 * through a training step, and when the workspace is handed another model */
START_TEST(test_plan_follows_weights)
{
    nn_model *m = make_model(ARCHS[0]);
    const int S = m->in_side;
    float x[12 * 12], before[7], after[7], fresh[7];
    uint64_t r = 11;
    for (int i = 0; i < S * S; i++) x[i] = nn_rng_uniform(&r);
    nn_ws *ws = nn_ws_create(m, 4);
    ck_assert_int_eq(nn_forward_logits(m, ws, x, 1, before), 0);

    size_t n;
    float *p = nn_model_params(m, &n);
    for (size_t i = 0; i < n; i++) p[i] *= 1.1f;
    ck_assert_int_eq(nn_forward_logits(m, ws, x, 1, after), 0);
    reference_forward(m, x, 1, fresh);
    ck_assert_float_gt(max_diff(before, after, 7), 1e-4f);
    ck_assert_float_lt(max_diff(after, fresh, 7), 1e-4f);

    nn_optim_cfg cfg;
    nn_optim_cfg_default(&cfg, NN_OPT_SGD);
    nn_trainer *t = nn_trainer_create(m, 4, &cfg, 1);
    ck_assert_ptr_nonnull(t);
    float xb[4 * 12 * 12];
    uint8_t labels[4] = {0, 1, 2, 3};
    for (int i = 0; i < 4 * S * S; i++) xb[i] = nn_rng_uniform(&r);
    nn_train_step(t, xb, labels, 4, 0.5f, NULL);
    ck_assert_int_eq(nn_forward_logits(m, ws, x, 1, after), 0);
    reference_forward(m, x, 1, fresh);
    ck_assert_float_lt(max_diff(after, fresh, 7), 1e-4f);
    nn_trainer_free(t);

    nn_model *other = make_model(ARCHS[0]);
    float *q = nn_model_params(other, &n);
    for (size_t i = 0; i < n; i++) q[i] *= -0.7f;
    ck_assert_int_eq(nn_forward_logits(other, ws, x, 1, after), 0);
    reference_forward(other, x, 1, fresh);
    ck_assert_float_lt(max_diff(after, fresh, 7), 1e-4f);

    nn_ws_free(ws);
    nn_model_free(other);
    nn_model_free(m);
}
END_TEST

/* TTA: the mean of the softmax of every view, each view built here by hand */
START_TEST(test_tta_views)
{
    nn_model *m = make_model(ARCHS[0]);
    const int S = m->in_side, B = 2, K = 7;
    uint8_t px[2 * 12 * 12];
    uint64_t r = 3;
    for (int i = 0; i < B * S * S; i++) px[i] = (uint8_t)(nn_rng_next(&r) & 255);
    nn_ws *ws = nn_ws_create(m, B);
    const int modes[3] = {NN_TTA_FLIP, NN_TTA_CROPS, NN_TTA_FLIP | NN_TTA_CROPS};
    for (int mi = 0; mi < 3; mi++) {
        const int tta = modes[mi];
        float got[2 * 7], want[2 * 7] = {0};
        ck_assert_int_eq(nn_predict_u8(m, ws, px, B, tta, got), 0);
        const int shifts[5][2] = {{0, 0}, {NN_TTA_SHIFT, 0}, {-NN_TTA_SHIFT, 0},
                                  {0, NN_TTA_SHIFT}, {0, -NN_TTA_SHIFT}};
        const int ns = tta & NN_TTA_CROPS ? 5 : 1, nf = tta & NN_TTA_FLIP ? 2 : 1;
        for (int s = 0; s < ns; s++)
            for (int f = 0; f < nf; f++) {
                float x[2 * 12 * 12], logits[2 * 7], p[2 * 7];
                for (int b = 0; b < B; b++)
                    for (int y = 0; y < S; y++)
                        for (int xo = 0; xo < S; xo++) {
                            int sy = y - shifts[s][1], sx = (f ? S - 1 - xo : xo) - shifts[s][0];
                            sy = sy < 0 ? 0 : sy > S - 1 ? S - 1 : sy;
                            sx = sx < 0 ? 0 : sx > S - 1 ? S - 1 : sx;
                            x[(b * S + y) * S + xo] = px[(b * S + sy) * S + sx] / 255.0f;
                        }
                reference_forward(m, x, B, logits);
                softmax_rows(logits, p, B, K);
                for (int i = 0; i < B * K; i++) want[i] += p[i] / (ns * nf);
            }
        float d = max_diff(got, want, (size_t)B * K);
        ck_assert_msg(d < 1e-5f, "tta %d: differs from the mean of the views by %g", tta, d);
    }
    nn_ws_free(ws);
    nn_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("infer_plan");
    TCase *tc = tcase_create("plan");
    tcase_add_loop_test(tc, test_plan_matches_unfused, 0, 2);
    tcase_add_test(tc, test_plan_follows_weights);
    tcase_add_test(tc, test_tta_views);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
