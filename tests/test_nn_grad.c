/* test_nn_grad.c - numerical gradient checks of every layer's backward pass,
 * and a tiny network that must overfit a tiny batch. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trainer_internal.h"

/* Small nets that together contain every layer type. Input 8x8 (or 9x9 so
 * that pooling drops an odd edge), 3 classes. */
static const char *nets[] = {
    "{\"name\":\"g1\",\"input\":{\"size\":8},\"classes\":[\"a\",\"b\",\"c\"],\"layers\":["
    "{\"type\":\"conv\",\"filters\":4,\"kernel\":3,\"padding\":\"same\",\"l2\":0.01},"
    "{\"type\":\"batchnorm\"},{\"type\":\"relu\"},{\"type\":\"maxpool\"},"
    "{\"type\":\"conv\",\"filters\":5,\"kernel\":2,\"padding\":\"valid\"},{\"type\":\"elu\"},"
    "{\"type\":\"dropout\",\"rate\":0.3},{\"type\":\"flatten\"},"
    "{\"type\":\"dense\",\"units\":6},{\"type\":\"elu\"},{\"type\":\"dense\",\"units\":3}]}",
    "{\"name\":\"g2\",\"input\":{\"size\":9},\"classes\":[\"a\",\"b\",\"c\"],\"layers\":["
    "{\"type\":\"conv\",\"filters\":3,\"kernel\":4,\"padding\":\"same\"},{\"type\":\"elu\"},"
    "{\"type\":\"batchnorm\",\"eps\":0.001,\"momentum\":0.01},"
    "{\"type\":\"conv\",\"filters\":4,\"kernel\":1},{\"type\":\"maxpool\"},"
    "{\"type\":\"conv\",\"filters\":4,\"kernel\":3,\"padding\":\"same\"},{\"type\":\"relu\"},"
    "{\"type\":\"gap\"},{\"type\":\"dense\",\"units\":3}]}",
    /* batch norm + ReLU + max pooling fused in training
     * (bn_apply_relu_maxpool), on a 9x9 image whose last row and column the
     * pooling drops */
    "{\"name\":\"g3\",\"input\":{\"size\":9},\"classes\":[\"a\",\"b\",\"c\"],\"layers\":["
    "{\"type\":\"conv\",\"filters\":4,\"kernel\":3,\"padding\":\"same\"},"
    "{\"type\":\"batchnorm\"},{\"type\":\"relu\"},{\"type\":\"maxpool\"},"
    "{\"type\":\"conv\",\"filters\":5,\"kernel\":3,\"padding\":\"same\"},"
    "{\"type\":\"batchnorm\"},{\"type\":\"relu\"},{\"type\":\"maxpool\"},"
    "{\"type\":\"gap\"},{\"type\":\"dense\",\"units\":3}]}",
};

static float loss_at(nn_trainer *t, const float *x, const uint8_t *y, int B, uint64_t rng)
{
    t->rng = rng; /* the same dropout mask for every evaluation */
    return nn_train_step(t, x, y, B, 0.0f, NULL);
}

static void check_net(const char *json, float smoothing)
{
    char err[256];
    nn_model *m;
    ck_assert_msg(nn_model_from_arch_json(json, 7, &m, err, sizeof err) == 0, "%s", err);
    /* non-trivial batch-norm affine parameters */
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].type == L_BN)
            for (int c = 0; c < 2 * m->layers[i].in_c; c++)
                m->params[m->layers[i].p_off + c] = 0.5f + 0.1f * (float)c;
    nn_optim_cfg cfg;
    nn_optim_cfg_default(&cfg, NN_OPT_SGD);
    cfg.momentum = 0;
    cfg.label_smoothing = smoothing;
    const int B = 4;
    nn_trainer *t = nn_trainer_create(m, B, &cfg, 1);
    ck_assert_ptr_nonnull(t);
    const size_t in = (size_t)m->in_side * m->in_side;
    float *x = malloc(sizeof(float) * in * B);
    uint8_t y[4] = {0, 1, 2, 1};
    uint64_t r = 99;
    for (size_t i = 0; i < in * B; i++) x[i] = nn_rng_normal(&r);
    const uint64_t rng = 12345;

    loss_at(t, x, y, B, rng);
    float *analytic = malloc(sizeof(float) * m->n_params);
    memcpy(analytic, t->grads, sizeof(float) * m->n_params);
    int checked = 0;
    for (int li = 0; li < m->n_layers; li++) {
        const nn_layer *L = &m->layers[li];
        size_t n = L->type == L_BN ? 2 * (size_t)L->in_c : L->p_count; /* skip running stats */
        for (size_t j = 0; j < n; j += 1 + n / 12) {
            float *w = &m->params[L->p_off + j];
            float keep = *w, h = 2e-3f; /* small: a step across a ReLU or max-pool kink spoils the estimate */
            /* the Keras-style l2 is part of the gradient, not of the returned loss */
            float l2 = (L->type == L_CONV || L->type == L_DENSE) && j < L->p_count - L->out_c
                           ? 2.0f * L->l2 * keep : 0.0f;
            *w = keep + h;
            double lp = loss_at(t, x, y, B, rng);
            *w = keep - h;
            double lm = loss_at(t, x, y, B, rng);
            *w = keep;
            double num = (lp - lm) / (2.0 * h) + l2;
            double ana = analytic[L->p_off + j] + l2;
            double tol = 2e-3 + 2e-2 * fabs(num);
            ck_assert_msg(fabs(num - ana) <= tol,
                          "layer %d (type %d) param %zu: numerical %.6f analytic %.6f",
                          li, (int)L->type, j, num, ana);
            checked++;
        }
    }
    ck_assert_int_gt(checked, 20);
    free(analytic);
    free(x);
    nn_trainer_free(t);
    nn_model_free(m);
}

START_TEST(test_grad_net1) { check_net(nets[0], 0.0f); }
END_TEST

START_TEST(test_grad_net2) { check_net(nets[1], 0.1f); }
END_TEST

START_TEST(test_grad_net3) { check_net(nets[2], 0.0f); }
END_TEST

/* Input gradient of each kind of layer, checked directly on the kernels. */
START_TEST(test_grad_kernels_input)
{
    /* conv: d(sum(out * R))/d in, with R random */
    nn_layer L = {0};
    L.type = L_CONV; L.in_h = 5; L.in_w = 6; L.in_c = 2; L.k = 4; L.pad = 1;
    L.out_h = 5; L.out_w = 6; L.out_c = 3;
    L.in_size = 60; L.out_size = 90;
    const int B = 2;
    uint64_t r = 5;
    float x[120], W[3 * 16 * 2], b[3] = {0.1f, -0.2f, 0.3f}, R[180], out[180];
    float din[120], dW[96] = {0}, db[3] = {0}, col[4096 * 32];
    for (int i = 0; i < 120; i++) x[i] = nn_rng_normal(&r);
    for (int i = 0; i < 96; i++) W[i] = nn_rng_normal(&r);
    for (int i = 0; i < 180; i++) R[i] = nn_rng_normal(&r);
    conv_backward(&L, x, W, R, din, dW, db, B, col);
    for (int i = 0; i < 120; i += 7) {
        float keep = x[i];
        double s[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            x[i] = keep + (sgn ? -1e-2f : 1e-2f);
            conv_forward(&L, x, W, b, out, B, col);
            s[sgn] = 0;
            for (int j = 0; j < 180; j++) s[sgn] += out[j] * R[j];
        }
        x[i] = keep;
        double num = (s[0] - s[1]) / 2e-2;
        ck_assert_msg(fabs(num - din[i]) < 1e-2, "conv din[%d]: %f vs %f", i, num, din[i]);
    }
}
END_TEST

START_TEST(test_overfit_tiny_batch)
{
    char err[256];
    nn_model *m;
    ck_assert(nn_model_from_arch_json(nets[0], 3, &m, err, sizeof err) == 0);
    nn_optim_cfg cfg;
    nn_optim_cfg_default(&cfg, NN_OPT_ADAM);
    nn_trainer *t = nn_trainer_create(m, 8, &cfg, 3);
    float x[8 * 64];
    uint8_t y[8];
    uint64_t r = 11;
    for (int i = 0; i < 8 * 64; i++) x[i] = nn_rng_uniform(&r);
    for (int i = 0; i < 8; i++) y[i] = (uint8_t)(i % 3);
    float first = 0, last = 0;
    for (int s = 0; s < 300; s++) {
        last = nn_train_step(t, x, y, 8, 0.01f, NULL);
        if (s == 0) first = last;
    }
    ck_assert_msg(last < 0.05f, "loss fell from %f only to %f", first, last);
    nn_trainer_free(t);
    nn_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nn_grad");
    TCase *tc = tcase_create("grad");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_grad_net1);
    tcase_add_test(tc, test_grad_net2);
    tcase_add_test(tc, test_grad_net3);
    tcase_add_test(tc, test_grad_kernels_input);
    tcase_add_test(tc, test_overfit_tiny_batch);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
