/* test_torch_reference.c - the C forward pass against PyTorch.
 *
 * For every architecture in config/arch/ (every *.json), tests/fixtures/<arch>.ref
 * (written by tests/torch_reference.py) holds parameters in our layout, a
 * batch of uint8 images and the logits and probabilities PyTorch computes for
 * them. We load the parameters into a model built from the same JSON and
 * require the same outputs within 1e-4 (relative above magnitude 1).
 * Runs from the project root.
 */
#include <check.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

#define ARCH_GLOB "config/arch/*.json"
#define FIXTURE_DIR "tests/fixtures"
#define REGEN_HINT "regenerate with: /usr/bin/python3 tests/torch_reference.py"
#define TOL 1e-4
#define SEED_PARAMS 1315335u
#define MAX_ARCHS 32

typedef struct {
    int32_t n_params, batch, n_classes;
    float *params;
    uint8_t *pixels;
    float *logits;
    float *probs;
} fixture;

static char g_arch[MAX_ARCHS][256]; /* architecture names from ARCH_GLOB */
static int g_narch;

/* ---- fixture file -------------------------------------------------------- */

static int read_exact(FILE *f, void *dst, size_t n)
{
    return fread(dst, 1, n, f) == n ? 0 : -1;
}

static int read_i32(FILE *f, int32_t *v)
{
    uint8_t b[4];
    if (read_exact(f, b, 4) != 0)
        return -1;
    *v = (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                   (uint32_t)b[3] << 24);
    return 0;
}

/* Little-endian float32 array (the test machines are little-endian; checked). */
static float *read_f32(FILE *f, size_t n)
{
    float *p = malloc(n * sizeof *p);
    if (p && read_exact(f, p, n * sizeof *p) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

static void fixture_free(fixture *fx)
{
    free(fx->params);
    free(fx->pixels);
    free(fx->logits);
    free(fx->probs);
    memset(fx, 0, sizeof *fx);
}

static int fixture_read_body(FILE *f, fixture *fx, int side)
{
    char magic[4];
    int32_t version;
    if (read_exact(f, magic, 4) != 0 || memcmp(magic, "EREF", 4) != 0)
        return -1;
    if (read_i32(f, &version) != 0 || version != 1 || read_i32(f, &fx->n_params) != 0 ||
        fx->n_params <= 0)
        return -1;
    if (!(fx->params = read_f32(f, (size_t)fx->n_params)))
        return -1;
    if (read_i32(f, &fx->batch) != 0 || fx->batch <= 0 || fx->batch > 1024)
        return -1;
    size_t npix = (size_t)fx->batch * (size_t)side * (size_t)side;
    if (!(fx->pixels = malloc(npix)) || read_exact(f, fx->pixels, npix) != 0)
        return -1;
    if (read_i32(f, &fx->n_classes) != 0 || fx->n_classes <= 0 || fx->n_classes > 1000)
        return -1;
    size_t nout = (size_t)fx->batch * (size_t)fx->n_classes;
    if (!(fx->logits = read_f32(f, nout)) || !(fx->probs = read_f32(f, nout)))
        return -1;
    return fgetc(f) == EOF ? 0 : -1; /* no trailing bytes */
}

static void fixture_load(const char *arch, int side, fixture *fx)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.ref", FIXTURE_DIR, arch);
    memset(fx, 0, sizeof *fx);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: cannot open (%s)", path, REGEN_HINT);
    int rc = fixture_read_body(f, fx, side);
    fclose(f);
    if (rc != 0)
        fixture_free(fx);
    ck_assert_msg(rc == 0, "%s: malformed or truncated fixture (%s)", path, REGEN_HINT);
}

/* ---- model --------------------------------------------------------------- */

static nn_model *model_for(const char *arch)
{
    char path[512], err[256] = "";
    nn_model *m = NULL;
    snprintf(path, sizeof path, "config/arch/%s.json", arch);
    int rc = nn_model_from_arch_file(path, 1, &m, err, sizeof err);
    ck_assert_msg(rc == 0 && m != NULL, "%s: %s", path, err);
    return m;
}

/* A model of arch carrying the fixture's parameters; checks the counts. */
static nn_model *model_with_fixture(const char *arch, fixture *fx)
{
    nn_model *m = model_for(arch);
    fixture_load(arch, nn_model_input_size(m), fx);
    size_t n = 0;
    float *p = nn_model_params(m, &n);
    ck_assert_msg(nn_model_num_params(m) == (size_t)fx->n_params,
                  "%s: nn_model_num_params %zu, PyTorch reference %d (%s if the JSON changed)",
                  arch, nn_model_num_params(m), fx->n_params, REGEN_HINT);
    ck_assert_msg(p != NULL && n == (size_t)fx->n_params, "%s: nn_model_params gives %zu floats",
                  arch, n);
    ck_assert_int_eq(nn_model_num_classes(m), fx->n_classes);
    memcpy(p, fx->params, n * sizeof *p);
    return m;
}

static int close_enough(float got, float want)
{
    double tol = TOL * fmax(1.0, fabs((double)want));
    return isfinite(got) && fabs((double)got - (double)want) <= tol;
}

static void expect_close(const char *arch, const char *what, const float *got,
                         const float *want, int batch, int classes)
{
    double worst = 0;
    for (int b = 0; b < batch; b++)
        for (int c = 0; c < classes; c++) {
            int i = b * classes + c;
            double diff = fabs((double)got[i] - (double)want[i]);
            ck_assert_msg(close_enough(got[i], want[i]),
                          "%s %s[%d][%d]: got %.7g, PyTorch %.7g (|diff| %.3g)", arch, what, b,
                          c, (double)got[i], (double)want[i], diff);
            worst = fmax(worst, diff);
        }
    printf("%s %s: max |diff| vs PyTorch %.2g\n", arch, what, worst);
}

/* ---- tests --------------------------------------------------------------- */

START_TEST(test_param_count)
{
    const char *arch = g_arch[_i];
    fixture fx;
    nn_model *m = model_with_fixture(arch, &fx);
    if (strcmp(arch, "seed") == 0)
        ck_assert_msg(nn_model_num_params(m) == SEED_PARAMS,
                      "seed: %zu parameters, the Keras model has %u",
                      nn_model_num_params(m), SEED_PARAMS);
    printf("%s: %zu parameters, nn_model_flops %.0f per image\n", arch,
           nn_model_num_params(m), nn_model_flops(m));
    nn_model_free(m);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_predict_u8)
{
    const char *arch = g_arch[_i];
    fixture fx;
    nn_model *m = model_with_fixture(arch, &fx);
    nn_ws *ws = nn_ws_create(m, fx.batch);
    ck_assert_ptr_nonnull(ws);
    float *probs = calloc((size_t)fx.batch * (size_t)fx.n_classes, sizeof *probs);
    ck_assert_ptr_nonnull(probs);
    ck_assert_int_eq(nn_predict_u8(m, ws, fx.pixels, fx.batch, NN_TTA_NONE, probs), 0);
    expect_close(arch, "probs", probs, fx.probs, fx.batch, fx.n_classes);
    free(probs);
    nn_ws_free(ws);
    nn_model_free(m);
    fixture_free(&fx);
}
END_TEST

/* One image at a time must give the same as the batch (catches stride bugs). */
START_TEST(test_predict_u8_batch1)
{
    const char *arch = g_arch[_i];
    fixture fx;
    nn_model *m = model_with_fixture(arch, &fx);
    nn_ws *ws = nn_ws_create(m, 1);
    size_t side = (size_t)nn_model_input_size(m), classes = (size_t)fx.n_classes;
    float *probs = calloc((size_t)fx.batch * classes, sizeof *probs);
    ck_assert(ws && probs);
    for (int b = 0; b < fx.batch; b++)
        ck_assert_int_eq(nn_predict_u8(m, ws, fx.pixels + (size_t)b * side * side, 1,
                                       NN_TTA_NONE, probs + (size_t)b * classes), 0);
    expect_close(arch, "probs(one image per call)", probs, fx.probs, fx.batch, fx.n_classes);
    free(probs);
    nn_ws_free(ws);
    nn_model_free(m);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_forward_logits)
{
    const char *arch = g_arch[_i];
    fixture fx;
    nn_model *m = model_with_fixture(arch, &fx);
    size_t side = (size_t)nn_model_input_size(m);
    size_t npix = (size_t)fx.batch * side * side;
    float *x = malloc(npix * sizeof *x);
    float *logits = calloc((size_t)fx.batch * (size_t)fx.n_classes, sizeof *logits);
    nn_ws *ws = nn_ws_create(m, fx.batch);
    ck_assert(x && logits && ws);
    nn_normalize_u8(m, fx.pixels, npix, x);
    ck_assert_int_eq(nn_forward_logits(m, ws, x, fx.batch, logits), 0);
    expect_close(arch, "logits", logits, fx.logits, fx.batch, fx.n_classes);
    free(x);
    free(logits);
    nn_ws_free(ws);
    nn_model_free(m);
    fixture_free(&fx);
}
END_TEST

START_TEST(test_all_archs_found)
{
    ck_assert_msg(g_narch > 0, "no architectures matched " ARCH_GLOB " (run from the project root)");
    int seed = 0;
    for (int i = 0; i < g_narch; i++)
        seed |= strcmp(g_arch[i], "seed") == 0;
    ck_assert_msg(seed, "config/arch/seed.json not found");
}
END_TEST

/* ---- main ---------------------------------------------------------------- */

static void find_archs(void)
{
    glob_t g;
    g_narch = 0;
    if (glob(ARCH_GLOB, 0, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc && g_narch < MAX_ARCHS; i++) {
        const char *base = strrchr(g.gl_pathv[i], '/');
        base = base ? base + 1 : g.gl_pathv[i];
        size_t len = strlen(base) - strlen(".json");
        if (len == 0 || len >= sizeof g_arch[0])
            continue;
        memcpy(g_arch[g_narch], base, len);
        g_arch[g_narch][len] = '\0';
        g_narch++;
    }
    globfree(&g);
}

static Suite *torch_reference_suite(void)
{
    Suite *s = suite_create("torch_reference");
    TCase *tc = tcase_create("forward");
    tcase_set_timeout(tc, 120); /* seconds; an unoptimised build under ASan is slow */
    tcase_add_test(tc, test_all_archs_found);
    tcase_add_loop_test(tc, test_param_count, 0, g_narch);
    tcase_add_loop_test(tc, test_predict_u8, 0, g_narch);
    tcase_add_loop_test(tc, test_predict_u8_batch1, 0, g_narch);
    tcase_add_loop_test(tc, test_forward_logits, 0, g_narch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    const uint16_t probe = 1;
    if (*(const uint8_t *)&probe != 1) {
        fprintf(stderr, "test_torch_reference: fixtures are little-endian float32\n");
        return 1;
    }
    find_archs();
    SRunner *sr = srunner_create(torch_reference_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
