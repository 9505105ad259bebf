/* test_average.c - weight averaging and batch-norm recalibration (nn/average.c):
 * the exact mean of the parameters, refusal of mixed architectures, and
 * running statistics equal to the mean of the batches' statistics. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "train.h"

static const char *tiny =
    "{\"name\":\"tiny\",\"input\":{\"size\":12},\"layers\":["
    "{\"type\":\"conv\",\"filters\":4,\"kernel\":3},{\"type\":\"batchnorm\"},{\"type\":\"relu\"},"
    "{\"type\":\"maxpool\"},{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":7}]}";

/* batch norm straight on the input: its statistics are the pixels' own */
static const char *bn_first =
    "{\"name\":\"bnfirst\",\"input\":{\"size\":8},\"layers\":["
    "{\"type\":\"batchnorm\"},{\"type\":\"flatten\"},{\"type\":\"dense\",\"units\":7}]}";

static nn_model *model(const char *arch, uint64_t seed)
{
    char err[256];
    nn_model *m = NULL;
    ck_assert_msg(nn_model_from_arch_json(arch, seed, &m, err, sizeof err) == 0, "%s", err);
    return m;
}

START_TEST(test_mean_of_parameters)
{
    nn_model *a[3] = {model(tiny, 1), model(tiny, 2), model(tiny, 3)}, *avg = NULL;
    char err[256];
    ck_assert_msg(nn_model_average(a, 3, &avg, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(avg->n_params, a[0]->n_params);
    for (size_t j = 0; j < avg->n_params; j++) {
        double want = ((double)a[0]->params[j] + a[1]->params[j] + a[2]->params[j]) / 3;
        ck_assert_msg(fabs(avg->params[j] - want) <= 1e-6 * (1 + fabs(want)), "param %zu: %g vs %g",
                      j, avg->params[j], want);
    }
    ck_assert_ptr_ne(avg->params, a[0]->params); /* a copy, not an alias */
    ck_assert_str_eq(nn_model_arch_name(avg), "tiny");
    nn_model_free(avg);
    for (int i = 0; i < 3; i++) nn_model_free(a[i]);
}
END_TEST

START_TEST(test_mixed_architectures_refused)
{
    nn_model *a[2] = {model(tiny, 1), model(bn_first, 1)}, *avg = (nn_model *)1;
    char err[512] = "";
    ck_assert_int_eq(nn_model_average(a, 2, &avg, err, sizeof err), -1);
    ck_assert_ptr_null(avg);
    ck_assert_msg(strstr(err, "another architecture") != NULL, "message: %s", err);
    ck_assert_int_eq(nn_model_average(a, 0, &avg, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no model") != NULL, "message: %s", err);
    for (int i = 0; i < 2; i++) nn_model_free(a[i]);
}
END_TEST

START_TEST(test_recalibrated_statistics)
{
    enum { N = 100, B = 32, PX = 64 }; /* 3 whole batches; the last 4 images are left out */
    nn_model *m = model(bn_first, 5);
    uint8_t *px = malloc(N * PX);
    uint64_t r = 99;
    for (int i = 0; i < N * PX; i++) px[i] = (uint8_t)(nn_rng_next(&r) % 200 + (i / PX) % 50);
    const nn_layer *L = &m->layers[0];
    float *p = m->params + L->p_off;
    const float momentum = L->momentum;
    const size_t n = m->n_params;
    float *before = malloc(n * sizeof *before);
    memcpy(before, p - L->p_off, n * sizeof *before);
    char err[256];
    ck_assert_msg(nn_bn_recalibrate(m, px, N, B, err, sizeof err) == 0, "%s", err);
    /* expected: the mean over batches of each batch's mean and unbiased variance */
    double mean_sum = 0, var_sum = 0;
    float x[B * PX];
    for (int b = 0; b + B <= N; b += B) {
        nn_normalize_u8(m, px + (size_t)b * PX, B * PX, x);
        double s = 0, ss = 0;
        for (int i = 0; i < B * PX; i++) s += x[i];
        double mu = s / (B * PX);
        for (int i = 0; i < B * PX; i++) ss += (x[i] - mu) * (x[i] - mu);
        mean_sum += mu;
        var_sum += ss / (B * PX - 1);
    }
    const float run_mean = p[2], run_var = p[3]; /* gamma, beta, mean, var (C = 1) */
    ck_assert_msg(fabs(run_mean - mean_sum / 3) < 1e-5, "running mean %g, want %g", run_mean, mean_sum / 3);
    ck_assert_msg(fabs(run_var - var_sum / 3) < 1e-5, "running var %g, want %g", run_var, var_sum / 3);
    /* nothing else moved, and the layer's momentum is back */
    for (size_t j = 0; j < n; j++)
        if (j != L->p_off + 2 && j != L->p_off + 3)
            ck_assert_msg(m->params[j] == before[j], "parameter %zu changed", j);
    ck_assert_float_eq(m->layers[0].momentum, momentum);
    ck_assert_int_eq(nn_bn_recalibrate(m, px, 0, B, err, sizeof err), -1);
    free(before);
    free(px);
    nn_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("average");
    TCase *tc = tcase_create("average");
    tcase_add_test(tc, test_mean_of_parameters);
    tcase_add_test(tc, test_mixed_architectures_refused);
    tcase_add_test(tc, test_recalibrated_statistics);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
