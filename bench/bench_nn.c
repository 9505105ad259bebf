/* bench_nn.c - speed of the C engine on one architecture.
 *
 *   build/bench/bench_nn [--quick] [--keep-openblas-env] [--default-malloc] ARCH.json
 *   build/bench/bench_nn --workers N [--precision fp32|int8|fp16] [--quick] [...] ARCH.json|MODEL.emod
 *   build/bench/bench_nn --batches 1,8,32 [--precision fp32|int8|fp16] [--quick] [...] ARCH.json|MODEL.emod
 *   build/bench/bench_nn --b1-serve [...] ARCH.json|MODEL.emod
 *
 * Prints "key value" lines (lines starting with '#' are comments) that
 * bench/run.sh turns into a table next to bench/torch_bench.py's figures:
 * forward FLOPs per image, SGEMM GFLOP/s with 1 and 2 threads, batch-1
 * latency and batch-64 throughput with 1 thread, training throughput with 2
 * threads, and efficiency = achieved FLOP/s / SGEMM FLOP/s. Never fails on
 * timing; exits non-zero only when the model cannot be built or run.
 *
 * Where the CPU has AVX-512 VNNI it also times int8 inference (nn.h's
 * NN_PRECISION_INT8) at batch 1 and 64, alternating with fp32 in rounds so
 * that both see the same load, and prints each round's ratio's median
 * (infer_int8_*: wall-clock medians, thread CPU time per call, speed-ups);
 * where it has AVX2 + F16C, the same for NN_PRECISION_FP16 (infer_fp16_*).
 *
 * --workers N prints only the engine-alone figures bench/service.sh compares
 * the HTTP service with: images/s of batch-1 nn_predict_u8 with 1..N threads
 * running at once, each with its own model copy and workspace and 1 engine
 * thread, as the service's worker pool runs them. With --workers the model
 * may also be a model file (anything not ending in .json), e.g. the one
 * being served. --precision int8 (or fp16) runs them in int8 (fp16).
 *
 * --batches LIST prints only images/s and ms per call of nn_predict_u8 on
 * batches of each size in LIST (comma-separated, 1 to 1024), 1 thread, at
 * --precision (bench/scaling.sh's batch table): infer_bB_img_s_t1 and
 * infer_bB_latency_ms_t1 (median call, wall clock), infer_bB_cpu_img_s_t1
 * (from the thread's CPU time: what other load on the machine does not
 * change). The model may be a model file here too.
 *
 * --b1-serve times batch-1 calls on request, for bench/torch_bench.py's
 * --b1-fine, which alternates them with PyTorch's in rounds of about a
 * second. Each line read from stdin, "PRECISION N [WARM_MS [MIN_MS]]"
 * (fp32, int8, fp16), runs nn_predict_u8 on one image at that precision (1
 * thread; each precision its own copy of the model and its own workspace,
 * made on first use): untimed for WARM_MS (at least 2 calls), then timed
 * until at least N calls and MIN_MS have passed. It answers one line, "MS
 * SERVED": the median timed call in milliseconds and the precision it ran in
 * (nn.h's fallback where the CPU lacks one). A bad line is answered "error
 * MESSAGE"; end of input ends the program. The model may be a model file
 * here too.
 *
 * OpenBLAS reads OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE when it is loaded.
 * The environment may force Haswell kernels (half speed on AVX-512), so
 * unless --keep-openblas-env or EMOTIOND_BENCH_KEEP_OPENBLAS_ENV=1 is given,
 * the program removes both variables and re-executes itself, and says so.
 * It also sets MALLOC_MMAP_MAX_=0 and MALLOC_TRIM_THRESHOLD_ (unless
 * --default-malloc or EMOTIOND_BENCH_DEFAULT_MALLOC=1), exactly as
 * torch_bench.py does: with glibc's defaults every large tensor PyTorch
 * allocates is a fresh mmap that page-faults, which costs PyTorch up to 10x
 * here and would make the comparison meaningless.
 */
#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nn.h"

#define TRAIN_BATCH 64
#define INFER_BATCH 64
#define MAX_BATCHES 16
#define UNSET_NOTE "EMOTIOND_BENCH_UNSET"
#define KEEP_ENV "EMOTIOND_BENCH_KEEP_OPENBLAS_ENV"
#define MALLOC_ENV "EMOTIOND_BENCH_DEFAULT_MALLOC"
#define REEXEC_MARK "EMOTIOND_BENCH_REEXEC"

static const char *const blas_vars[] = {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"};
/* Same settings as bench/torch_bench.py: keep freed memory in the heap. */
static const char *const malloc_vars[][2] = {{"MALLOC_MMAP_MAX_", "0"},
                                             {"MALLOC_TRIM_THRESHOLD_", "4000000000"}};

typedef struct {
    const char *arch_path;
    int quick;          /* shorter runs for smoke tests */
    int keep_env;
    int default_malloc; /* leave glibc malloc's mmap threshold alone */
    int workers;        /* > 0: only the engine-alone figures for 1..workers threads */
    int precision;      /* --workers, --batches: NN_PRECISION_* of the model */
    int batches[MAX_BATCHES]; /* --batches: the batch sizes, n_batches of them */
    int n_batches;
    int b1_serve;       /* --b1-serve: time batch-1 calls as stdin asks */
    double min_seconds; /* per measurement */
} options;

/* ---- small helpers ------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void fill_random(float *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((rng_next(&seed) >> 40) * (1.0 / 16777216.0)) - 0.5f;
}

/* The engine's own knob: OpenMP threads of this thread and OpenBLAS threads. */
static void set_threads(int n)
{
    nn_set_threads(n);
}

/* Runs fn until it has both min_runs samples and min_seconds of samples (or
 * max_runs), after warmup untimed calls; returns the median seconds per call
 * (-1 if fn failed) and stores the fastest call in *best when best != NULL. */
typedef int (*bench_fn)(void *ctx);

static double time_calls(bench_fn fn, void *ctx, int warmup, int min_runs, int max_runs,
                         double min_seconds, double *best)
{
    for (int i = 0; i < warmup; i++)
        if (fn(ctx) != 0)
            return -1;
    double *t = malloc((size_t)max_runs * sizeof *t), total = 0;
    int n = 0;
    if (!t)
        return -1;
    while (n < max_runs && (n < min_runs || total < min_seconds)) {
        double t0 = now();
        if (fn(ctx) != 0) {
            free(t);
            return -1;
        }
        t[n] = now() - t0;
        total += t[n++];
    }
    double med = median(t, n); /* sorts t */
    if (best)
        *best = t[0];
    free(t);
    return med;
}

/* ---- process environment -------------------------------------------------- */

/* Appends "name=value" to a comma-separated list. */
static void note_append(char *note, size_t cap, const char *name, const char *value)
{
    size_t len = strlen(note);
    snprintf(note + len, cap - len, "%s%s=%s", len ? "," : "", name, value);
}

/* Removes the OpenBLAS variables, sets the malloc tuning, and re-executes when
 * anything changed (both are read when the process starts). */
static void maybe_reexec(char **argv, const options *o)
{
    char note[512] = "";
    int changed = 0;
    if (!getenv(REEXEC_MARK))
        unsetenv(UNSET_NOTE); /* not ours */
    for (size_t i = 0; !o->keep_env && i < sizeof blas_vars / sizeof *blas_vars; i++) {
        const char *v = getenv(blas_vars[i]);
        if (v) {
            note_append(note, sizeof note, blas_vars[i], v);
            unsetenv(blas_vars[i]);
            changed = 1;
        }
    }
    for (size_t i = 0; !o->default_malloc && i < sizeof malloc_vars / sizeof *malloc_vars; i++)
        if (!getenv(malloc_vars[i][0])) {
            setenv(malloc_vars[i][0], malloc_vars[i][1], 1);
            changed = 1;
        }
    if (!changed)
        return;
    setenv(UNSET_NOTE, note, 1);
    setenv(REEXEC_MARK, "1", 1);
    execv("/proc/self/exe", argv);
    perror("bench_nn: re-exec with the benchmark environment failed; continuing");
}

static void print_blas_env(const options *o)
{
    const char *unset = getenv(UNSET_NOTE);
    char kept[512] = "";
    for (size_t i = 0; i < sizeof blas_vars / sizeof *blas_vars; i++)
        if (getenv(blas_vars[i]))
            note_append(kept, sizeof kept, blas_vars[i], getenv(blas_vars[i]));
    if (unset && !unset[0])
        unset = NULL;
    if (kept[0])
        printf("# NOTE: OpenBLAS environment kept as is (%s)%s\n", kept,
               o->keep_env ? "" : " -- re-exec failed");
    else if (unset)
        printf("# NOTE: unset %s for this benchmark (--keep-openblas-env or %s=1 "
               "keeps them)\n", unset, KEEP_ENV);
    printf("openblas_env %s%s\n", kept[0] ? "kept:" : unset ? "unset:" : "default",
           kept[0] ? kept : unset ? unset : "");
    printf("openblas_core %s\n", openblas_get_corename());
}

/* Other processes skew every figure; print the 1-minute load average first. */
static void print_load(void)
{
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1)
            load = -1;
        fclose(f);
    }
    printf("cpus_online %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
    printf("loadavg_1min %.2f\n", load);
}

static void print_malloc_env(void)
{
    char set[256] = "";
    for (size_t i = 0; i < sizeof malloc_vars / sizeof *malloc_vars; i++)
        if (getenv(malloc_vars[i][0]))
            note_append(set, sizeof set, malloc_vars[i][0], getenv(malloc_vars[i][0]));
    if (set[0])
        printf("# NOTE: glibc malloc tuned (%s: no mmap/munmap page-fault churn per "
               "allocation; --default-malloc or %s=1 disables)\n", set, MALLOC_ENV);
    printf("malloc_env %s\n", set[0] ? set : "default");
    unsetenv(UNSET_NOTE);
    unsetenv(REEXEC_MARK);
}

/* ---- SGEMM --------------------------------------------------------------- */

typedef struct {
    int m, n, k;
    float *a, *b, *c;
} gemm_ctx;

static int run_gemm(void *p)
{
    gemm_ctx *g = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->m, g->n, g->k, 1.0f, g->a, g->k,
                g->b, g->n, 0.0f, g->c, g->n);
    return 0;
}

/* GFLOP/s of C[m][n] = A[m][k] B[k][n] with threads threads: the fastest
 * call, since other load on the machine only ever slows it down. */
static double sgemm_gflops(int m, int n, int k, int threads, const options *o)
{
    gemm_ctx g = {m, n, k, malloc(sizeof(float) * (size_t)m * (size_t)k),
                  malloc(sizeof(float) * (size_t)k * (size_t)n),
                  malloc(sizeof(float) * (size_t)m * (size_t)n)};
    double gf = -1;
    if (g.a && g.b && g.c) {
        fill_random(g.a, (size_t)m * (size_t)k, 1);
        fill_random(g.b, (size_t)k * (size_t)n, 2);
        set_threads(threads);
        double best = -1;
        time_calls(run_gemm, &g, 2, 5, 1000, o->min_seconds / 4, &best);
        gf = best > 0 ? 2.0 * m * n * k / best * 1e-9 : -1;
    }
    free(g.a);
    free(g.b);
    free(g.c);
    return gf;
}

/* ---- inference ----------------------------------------------------------- */

typedef struct {
    const nn_model *m;
    nn_ws *ws;
    const uint8_t *pixels;
    int batch;
    float *probs;
} infer_ctx;

static int run_infer(void *p)
{
    infer_ctx *c = p;
    return nn_predict_u8(c->m, c->ws, c->pixels, c->batch, NN_TTA_NONE, c->probs);
}

static uint8_t *random_pixels(size_t n, uint64_t seed)
{
    uint8_t *p = malloc(n);
    for (size_t i = 0; p && i < n; i++)
        p[i] = (uint8_t)(rng_next(&seed) >> 56);
    return p;
}

/* Median seconds of one nn_predict_u8 call on batch images, 1 thread. */
static double infer_seconds(const nn_model *m, int batch, int min_runs, const options *o)
{
    size_t side = (size_t)nn_model_input_size(m);
    infer_ctx c = {m, nn_ws_create(m, batch), random_pixels((size_t)batch * side * side, 3),
                   batch, malloc(sizeof(float) * (size_t)batch * (size_t)nn_model_num_classes(m))};
    double t = -1;
    if (c.ws && c.pixels && c.probs) {
        set_threads(1);
        t = time_calls(run_infer, &c, 2, min_runs, 10000, o->min_seconds, NULL);
    }
    nn_ws_free(c.ws);
    free((void *)c.pixels);
    free(c.probs);
    return t;
}

/* ---- training ------------------------------------------------------------ */

typedef struct {
    nn_trainer *t;
    const float *x;
    const uint8_t *labels;
    int batch;
} train_ctx;

static int run_train(void *p)
{
    train_ctx *c = p;
    float loss = nn_train_step(c->t, c->x, c->labels, c->batch, 1e-4f, NULL);
    return isnan(loss) ? -1 : 0; /* NaN means the step failed */
}

/* The optimizer the architecture trains with ("training" in its JSON). */
static void optim_from_arch(const nn_model *m, nn_optim_cfg *cfg)
{
    json_t *root = json_loads(nn_model_arch_json(m), 0, NULL);
    json_t *tr = json_object_get(root, "training");
    const char *opt = json_string_value(json_object_get(tr, "optimizer"));
    nn_optim_cfg_default(cfg, opt && strcmp(opt, "sgd") == 0 ? NN_OPT_SGD : NN_OPT_ADAM);
    json_t *v;
    if ((v = json_object_get(tr, "momentum")) && json_is_number(v))
        cfg->momentum = (float)json_number_value(v);
    if ((v = json_object_get(tr, "nesterov")) && json_is_boolean(v))
        cfg->nesterov = json_is_true(v);
    if ((v = json_object_get(tr, "weight_decay")) && json_is_number(v))
        cfg->weight_decay = (float)json_number_value(v);
    json_decref(root);
}

/* Training images/s with 2 threads on random data (batch TRAIN_BATCH). */
static double train_images_per_s(nn_model *m, const options *o, const char **opt_name)
{
    size_t side = (size_t)nn_model_input_size(m), n = (size_t)TRAIN_BATCH * side * side;
    nn_optim_cfg cfg;
    optim_from_arch(m, &cfg);
    *opt_name = cfg.optimizer == NN_OPT_SGD ? "sgd" : "adam";
    uint8_t *pix = random_pixels(n, 4), *labels = random_pixels(TRAIN_BATCH, 5);
    float *x = malloc(n * sizeof *x);
    /* the trainer sizes its replicas (one per thread) when it is created:
     * the thread count must be set first */
    set_threads(2);
    train_ctx c = {nn_trainer_create(m, TRAIN_BATCH, &cfg, 7), x, labels, TRAIN_BATCH};
    double t = -1;
    if (c.t && pix && labels && x) {
        for (int i = 0; i < TRAIN_BATCH; i++)
            labels[i] %= (uint8_t)nn_model_num_classes(m);
        nn_normalize_u8(m, pix, n, x);
        t = time_calls(run_train, &c, 1, o->quick ? 2 : 3, 1000, o->min_seconds, NULL);
    }
    nn_trainer_free(c.t);
    free(pix);
    free(labels);
    free(x);
    return t > 0 ? TRAIN_BATCH / t : -1;
}

/* ---- main ---------------------------------------------------------------- */

static int env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] && strcmp(v, "0") != 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    *o = (options){.keep_env = env_flag(KEEP_ENV), .default_malloc = env_flag(MALLOC_ENV),
                   .min_seconds = 2.0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            o->quick = 1;
        } else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
            char *end = NULL;
            long n = strtol(argv[++i], &end, 10);
            if (!end || *end || n < 1 || n > 256)
                return -1;
            o->workers = (int)n;
        }
        else if (strcmp(argv[i], "--batches") == 0 && i + 1 < argc) {
            const char *p = argv[++i];
            while (*p) {
                char *end = NULL;
                long b = strtol(p, &end, 10);
                if (end == p || b < 1 || b > 1024 || o->n_batches == MAX_BATCHES ||
                    (*end && *end != ','))
                    return -1;
                o->batches[o->n_batches++] = (int)b;
                p = *end ? end + 1 : end;
            }
            if (!o->n_batches)
                return -1;
        }
        else if (strcmp(argv[i], "--b1-serve") == 0)
            o->b1_serve = 1;
        else if (strcmp(argv[i], "--precision") == 0 && i + 1 < argc) {
            if ((o->precision = nn_precision_parse(argv[++i])) < 0)
                return -1;
        }
        else if (strcmp(argv[i], "--keep-openblas-env") == 0)
            o->keep_env = 1;
        else if (strcmp(argv[i], "--default-malloc") == 0)
            o->default_malloc = 1;
        else if (argv[i][0] != '-' && !o->arch_path)
            o->arch_path = argv[i];
        else
            return -1;
    }
    if (o->quick)
        o->min_seconds = 0.3;
    if (!o->arch_path)
        return -1;
    size_t len = strlen(o->arch_path);
    if ((o->workers > 0) + (o->n_batches > 0) + o->b1_serve > 1)
        return -1;
    /* a model file instead of an architecture only for --workers, --batches
     * and --b1-serve */
    return o->workers || o->n_batches || o->b1_serve || (len >= 5 && strcmp(o->arch_path + len - 5, ".json") == 0) ? 0 : -1;
}

static void print_rate(const char *key, double v, const char *fmt)
{
    if (v > 0) {
        printf("%s ", key);
        printf(fmt, v);
        printf("\n");
    } else {
        printf("%s nan\n", key);
    }
}

/* ---- int8 and fp16 against fp32 ---------------------------------------------------- */

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* nn_predict_u8 on batch images at precision for seconds (at least 3
 * calls, after 2 untimed): the median wall seconds per call in *wall and the
 * thread's CPU seconds per call in *cpu (other processes do not count). */
static int time_precision(nn_model *m, int precision, int batch, double seconds, double *wall,
                          double *cpu)
{
    enum { MAX_CALLS = 100000 };
    nn_model_set_precision(m, (nn_precision)precision);
    size_t side = (size_t)nn_model_input_size(m);
    nn_ws *ws = nn_ws_create(m, batch);
    uint8_t *px = random_pixels((size_t)batch * side * side, 3);
    float *probs = malloc(sizeof(float) * (size_t)batch * (size_t)nn_model_num_classes(m));
    double *t = malloc(sizeof(double) * MAX_CALLS), total = 0, c0 = 0;
    int n = 0, rc = -1;
    if (!ws || !px || !probs || !t)
        goto out;
    set_threads(1);
    for (int i = 0; i < 2; i++)
        if (nn_predict_u8(m, ws, px, batch, NN_TTA_NONE, probs))
            goto out;
    c0 = cpu_now();
    while (n < MAX_CALLS && (n < 3 || total < seconds)) {
        double t0 = now();
        if (nn_predict_u8(m, ws, px, batch, NN_TTA_NONE, probs))
            goto out;
        t[n] = now() - t0;
        total += t[n++];
    }
    *cpu = (cpu_now() - c0) / n;
    *wall = median(t, n);
    rc = 0;
out:
    nn_model_set_precision(m, NN_PRECISION_FP32);
    nn_ws_free(ws);
    free(px);
    free(probs);
    free(t);
    return rc;
}

/* fp32 then prec (int8 or fp16), ROUNDS times, at batch 1 and 64. A
 * training run or any other load changes the speed of both within a round
 * alike, so the ratio of a round is worth more than either figure; the median
 * round is printed, as infer_<name>_*. */
static int bench_precision(nn_model *m, const options *o, nn_precision prec)
{
    enum { ROUNDS = 5 };
    const char *name = nn_precision_name(prec);
    char key[64];
    printf("%s_supported %d\n", name, nn_precision_supported(prec));
    if (!nn_precision_supported(prec))
        return 0;
    static const int batches[2] = {1, INFER_BATCH};
    for (int bi = 0; bi < 2; bi++) {
        const int batch = batches[bi];
        double w[2][ROUNDS], c[2][ROUNDS], ratio[ROUNDS], cratio[ROUNDS];
        for (int r = 0; r < ROUNDS; r++) {
            for (int p = 0; p < 2; p++)
                if (time_precision(m, p ? (int)prec : NN_PRECISION_FP32, batch,
                                   o->min_seconds / 4, &w[p][r], &c[p][r]))
                    return -1;
            ratio[r] = w[0][r] / w[1][r];
            cratio[r] = c[0][r] / c[1][r];
        }
        const double w32 = median(w[0], ROUNDS), wp = median(w[1], ROUNDS);
        const double c32 = median(c[0], ROUNDS), cp = median(c[1], ROUNDS);
#define PUT(suffix, value, fmt)                                               \
    do {                                                                      \
        snprintf(key, sizeof key, "infer_%s_%s", name, suffix);              \
        print_rate(key, value, fmt);                                          \
    } while (0)
        if (batch == 1) {
            PUT("b1_latency_ms_t1", wp * 1e3, "%.3f");
            PUT("b1_fp32_latency_ms_t1", w32 * 1e3, "%.3f");
            PUT("b1_cpu_ms_t1", cp * 1e3, "%.3f");
            PUT("b1_fp32_cpu_ms_t1", c32 * 1e3, "%.3f");
            PUT("b1_speedup", median(ratio, ROUNDS), "%.2f");
            PUT("b1_cpu_speedup", median(cratio, ROUNDS), "%.2f");
        } else {
            PUT("b64_img_s_t1", batch / wp, "%.1f");
            PUT("b64_fp32_img_s_t1", batch / w32, "%.1f");
            PUT("b64_cpu_img_s_t1", batch / cp, "%.1f");
            PUT("b64_fp32_cpu_img_s_t1", batch / c32, "%.1f");
            PUT("b64_speedup", median(ratio, ROUNDS), "%.2f");
            PUT("b64_cpu_speedup", median(cratio, ROUNDS), "%.2f");
        }
#undef PUT
    }
    printf("infer_%s_rounds %d\n", name, ROUNDS);
    return 0;
}

/* ---- engine alone, as the service's worker pool runs it ------------------ */

typedef struct {
    const nn_model *src;
    pthread_barrier_t *start;
    const atomic_int *stop;
    uint64_t seed;
    long calls;  /* timed calls made */
    double *lat; /* seconds of each timed call (the first max_lat) */
    long max_lat;
    int failed;
} worker_ctx;

/* One service worker: its own model copy and workspace (room for a batch of
 * 2, as service/worker_pool.c makes it), 1 engine thread, batch-1
 * predictions of random images until *stop. */
static void *worker_main(void *arg)
{
    enum { N_IMAGES = 16 };
    worker_ctx *w = arg;
    nn_model *m = nn_model_clone(w->src);
    nn_ws *ws = m ? nn_ws_create(m, 2) : NULL;
    size_t px = m ? (size_t)nn_model_input_size(m) * (size_t)nn_model_input_size(m) : 0;
    uint8_t *pix = random_pixels(N_IMAGES * px, w->seed);
    float *probs = m ? malloc(sizeof(float) * (size_t)nn_model_num_classes(m)) : NULL;
    w->failed = !m || !ws || !pix || !probs;
    nn_set_threads(1);
    for (int i = 0; !w->failed && i < 3; i++) /* warm-up */
        w->failed = nn_predict_u8(m, ws, pix + (size_t)i * px, 1, NN_TTA_NONE, probs) != 0;
    pthread_barrier_wait(w->start);
    for (long i = 0; !w->failed && !atomic_load(w->stop); i++) {
        double t0 = now();
        w->failed = nn_predict_u8(m, ws, pix + (size_t)(i % N_IMAGES) * px, 1, NN_TTA_NONE,
                                  probs) != 0;
        if (w->calls < w->max_lat)
            w->lat[w->calls] = now() - t0;
        w->calls++;
    }
    free(probs);
    free(pix);
    nn_ws_free(ws);
    nn_model_free(m);
    return NULL;
}

/* Images/s of n workers running at once for min_seconds, and the median
 * latency of one call in *lat_ms; -1 when a prediction failed. */
static double workers_images_per_s(const nn_model *m, int n, const options *o, double *lat_ms)
{
    enum { MAX_LAT = 100000 };
    pthread_barrier_t start;
    atomic_int stop = 0;
    worker_ctx *w = calloc((size_t)n, sizeof *w);
    pthread_t *tid = calloc((size_t)n, sizeof *tid);
    double *lat = malloc((size_t)n * MAX_LAT * sizeof *lat);
    *lat_ms = -1;
    if (!w || !tid || !lat || pthread_barrier_init(&start, NULL, (unsigned)n + 1) != 0) {
        fprintf(stderr, "bench_nn: out of memory\n");
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        w[i] = (worker_ctx){m, &start, &stop, 100 + (uint64_t)i, 0,
                            lat + (size_t)i * MAX_LAT, MAX_LAT, 0};
        if (pthread_create(&tid[i], NULL, worker_main, &w[i]) != 0) {
            /* the others would wait at the barrier for ever */
            fprintf(stderr, "bench_nn: cannot start %d worker threads\n", n);
            exit(1);
        }
    }
    pthread_barrier_wait(&start);
    double t0 = now();
    struct timespec d = {(time_t)o->min_seconds,
                         (long)((o->min_seconds - (double)(time_t)o->min_seconds) * 1e9)};
    while (nanosleep(&d, &d) != 0)
        ;
    atomic_store(&stop, 1);
    long calls = 0, nlat = 0;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(tid[i], NULL);
        calls += w[i].calls;
        failed |= w[i].failed;
        long k = w[i].calls < MAX_LAT ? w[i].calls : MAX_LAT;
        memmove(lat + nlat, w[i].lat, (size_t)k * sizeof *lat);
        nlat += k;
    }
    double dt = now() - t0; /* includes every worker finishing its last call */
    double rate = -1;
    if (!failed && calls > 0) {
        rate = (double)calls / dt;
        *lat_ms = median(lat, (int)nlat) * 1e3;
    }
    pthread_barrier_destroy(&start);
    free(w);
    free(tid);
    free(lat);
    return rate;
}

static int bench_workers(const nn_model *m, const options *o)
{
    int rc = 0;
    printf("params %zu\n", nn_model_num_params(m));
    printf("flops_per_image %.0f\n", nn_model_flops(m));
    printf("workers %d\n", o->workers);
    printf("precision %s\n", nn_precision_name(nn_model_precision(m)));
    for (int n = 1; n <= o->workers; n++) {
        double lat = -1, ips = workers_images_per_s(m, n, o, &lat);
        char key[64];
        snprintf(key, sizeof key, "engine_b1_img_s_w%d", n);
        print_rate(key, ips, "%.1f");
        snprintf(key, sizeof key, "engine_b1_latency_ms_w%d", n);
        print_rate(key, lat, "%.3f");
        if (ips < 0)
            rc = -1;
    }
    if (rc)
        fprintf(stderr, "bench_nn: nn_predict_u8 failed in a worker\n");
    return rc;
}

/* --batches: images/s of nn_predict_u8 at each batch size, 1 thread. */
static int bench_batches(nn_model *m, const options *o)
{
    printf("params %zu\n", nn_model_num_params(m));
    printf("flops_per_image %.0f\n", nn_model_flops(m));
    printf("precision %s\n", nn_precision_name(nn_model_precision(m)));
    printf("threads 1\n");
    const int precision = nn_model_precision(m);
    for (int i = 0; i < o->n_batches; i++) {
        const int b = o->batches[i];
        double wall = -1, cpu = -1;
        char key[64];
        /* time_precision sets the precision back to fp32 when it is done */
        if (time_precision(m, precision, b, o->min_seconds, &wall, &cpu) != 0) {
            fprintf(stderr, "bench_nn: nn_predict_u8 failed at batch %d\n", b);
            return -1;
        }
        snprintf(key, sizeof key, "infer_b%d_img_s_t1", b);
        print_rate(key, b / wall, "%.1f");
        snprintf(key, sizeof key, "infer_b%d_latency_ms_t1", b);
        print_rate(key, wall * 1e3, "%.3f");
        snprintf(key, sizeof key, "infer_b%d_cpu_img_s_t1", b);
        print_rate(key, b / cpu, "%.1f");
        fflush(stdout);
    }
    return 0;
}

/* ---- batch-1 calls on request (--b1-serve) ------------------------------- */

typedef struct {
    nn_model *m; /* a clone at this precision; NULL until first asked for */
    nn_ws *ws;
} served_copy;

/* A request's numbers: at least n timed calls, and timed calls for at least
 * min_ms, after untimed calls for warm_ms (at least 2). */
typedef struct {
    int n;
    double warm_ms, min_ms;
} serve_req;

/* One request at precision: the median timed call in *ms, the precision it
 * ran in in *served; -1 with err set on failure. */
static int serve_request(const nn_model *src, served_copy *copies, const uint8_t *px,
                         float *probs, int precision, const serve_req *q, int max_calls,
                         double *ms, nn_precision *served, char *err, size_t cap)
{
    served_copy *c = &copies[precision];
    if (!c->m) {
        if (!(c->m = nn_model_clone(src))) {
            snprintf(err, cap, "out of memory cloning the model");
            return -1;
        }
        nn_model_set_precision(c->m, (nn_precision)precision);
        if (!(c->ws = nn_ws_create(c->m, 1))) {
            nn_model_free(c->m); /* the next request tries again */
            c->m = NULL;
            snprintf(err, cap, "out of memory creating a workspace");
            return -1;
        }
    }
    infer_ctx ctx = {c->m, c->ws, px, 1, probs};
    /* the warm-up: time_calls' own timing, thrown away */
    const double s = time_calls(run_infer, &ctx, 0, 2, max_calls, q->warm_ms * 1e-3, NULL) < 0
                         ? -1
                         : time_calls(run_infer, &ctx, 0, q->n, max_calls, q->min_ms * 1e-3, NULL);
    if (s < 0) {
        snprintf(err, cap, "nn_predict_u8 failed (or out of memory)");
        return -1;
    }
    *ms = s * 1e3;
    *served = nn_model_precision(c->m);
    return 0;
}

/* --b1-serve: answers "PRECISION N [WARM_MS [MIN_MS]]" lines until end of
 * input (see the top of this file). */
static int bench_b1_serve(const nn_model *m)
{
    enum { MAX_CALLS = 10000, N_PRECISIONS = 3 };
    served_copy copies[N_PRECISIONS] = {{0}};
    const size_t side = (size_t)nn_model_input_size(m);
    uint8_t *px = random_pixels(side * side, 3);
    float *probs = malloc(sizeof(float) * (size_t)nn_model_num_classes(m));
    char line[128], name[32], err[128];
    int rc = 0;
    if (!px || !probs) {
        fprintf(stderr, "bench_nn: out of memory\n");
        rc = -1;
        goto out;
    }
    set_threads(1);
    printf("ready\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        int precision = -1;
        double ms = -1;
        serve_req q = {0, 0, 0};
        nn_precision served = NN_PRECISION_FP32;
        const int fields = sscanf(line, "%31s %d %lf %lf", name, &q.n, &q.warm_ms, &q.min_ms);
        if (fields < 2 || q.n < 1 || q.n > MAX_CALLS || !(q.warm_ms >= 0 && q.warm_ms <= 10000) ||
            !(q.min_ms >= 0 && q.min_ms <= 10000) || (precision = nn_precision_parse(name)) < 0 ||
            precision >= N_PRECISIONS)
            printf("error expected \"fp32|int8|fp16 N [WARM_MS [MIN_MS]]\" with N from 1 to %d"
                   " and the times from 0 to 10000\n", MAX_CALLS);
        else if (serve_request(m, copies, px, probs, precision, &q, MAX_CALLS, &ms, &served, err,
                               sizeof err))
            printf("error %s\n", err);
        else
            printf("%.4f %s\n", ms, nn_precision_name(served));
        fflush(stdout);
    }
out:
    for (int i = 0; i < N_PRECISIONS; i++) {
        nn_ws_free(copies[i].ws);
        nn_model_free(copies[i].m);
    }
    free(px);
    free(probs);
    return rc;
}

static void bench_sgemm(const options *o, double *sq1, double *sq2)
{
    /* 1024^3, and the im2col GEMM of a 4x4 64->64 conv on 48x48 (one image). */
    *sq1 = sgemm_gflops(1024, 1024, 1024, 1, o);
    *sq2 = sgemm_gflops(1024, 1024, 1024, 2, o);
    print_rate("sgemm_1024_gflops_t1", *sq1, "%.1f");
    print_rate("sgemm_1024_gflops_t2", *sq2, "%.1f");
    print_rate("sgemm_conv_2304x64x1024_gflops_t1", sgemm_gflops(2304, 64, 1024, 1, o), "%.1f");
    print_rate("sgemm_conv_2304x64x1024_gflops_t2", sgemm_gflops(2304, 64, 1024, 2, o), "%.1f");
}

static int bench_model(nn_model *m, const options *o, double sq1, double sq2)
{
    double flops = nn_model_flops(m);
    printf("params %zu\n", nn_model_num_params(m));
    printf("flops_per_image %.0f\n", flops);
    double t1 = infer_seconds(m, 1, o->quick ? 5 : 20, o);
    double t64 = infer_seconds(m, INFER_BATCH, 3, o);
    if (t1 < 0 || t64 < 0) {
        fprintf(stderr, "bench_nn: nn_predict_u8 failed\n");
        return -1;
    }
    double ips64 = INFER_BATCH / t64;
    print_rate("infer_b1_latency_ms_t1", t1 * 1e3, "%.3f");
    print_rate("infer_b1_img_s_t1", 1.0 / t1, "%.1f");
    print_rate("infer_b64_img_s_t1", ips64, "%.1f");
    print_rate("infer_b64_gflops_t1", flops * ips64 * 1e-9, "%.1f");
    print_rate("infer_b64_efficiency_t1", flops * ips64 * 1e-9 / sq1, "%.3f");
    if (bench_precision(m, o, NN_PRECISION_INT8) || bench_precision(m, o, NN_PRECISION_FP16)) {
        fprintf(stderr, "bench_nn: int8 or fp16 nn_predict_u8 failed\n");
        return -1;
    }
    const char *opt = "?";
    double tr = train_images_per_s(m, o, &opt);
    printf("train_optimizer %s\n", opt);
    print_rate("train_b64_img_s_t2", tr, "%.1f");
    /* a training step is ~3 forward passes (forward, input and weight gradients) */
    print_rate("train_b64_gflops_t2", 3 * flops * tr * 1e-9, "%.1f");
    print_rate("train_b64_efficiency_t2", 3 * flops * tr * 1e-9 / sq2, "%.3f");
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o) != 0) {
        fprintf(stderr,
                "usage: %s [--quick] [--keep-openblas-env] [--default-malloc] ARCH.json\n"
                "       %s --workers N [--precision fp32|int8|fp16] [--quick] [...] "
                "ARCH.json|MODEL.emod\n"
                "       %s --batches 1,8,... [--precision fp32|int8|fp16] [--quick] [...] "
                "ARCH.json|MODEL.emod\n"
                "       %s --b1-serve [...] ARCH.json|MODEL.emod\n",
                argv[0], argv[0], argv[0], argv[0]);
        return 2;
    }
    maybe_reexec(argv, &o);
    char err[256] = "";
    nn_model *m = NULL;
    size_t len = strlen(o.arch_path);
    int is_arch = len >= 5 && strcmp(o.arch_path + len - 5, ".json") == 0;
    if ((is_arch ? nn_model_from_arch_file(o.arch_path, 42, &m, err, sizeof err)
                 : nn_model_load(o.arch_path, &m, err, sizeof err)) != 0) {
        fprintf(stderr, "bench_nn: %s: %s\n", o.arch_path, err);
        return 1;
    }
    if (o.b1_serve) {
        /* no header: the first line out is "ready", then one per request */
        int rc = bench_b1_serve(m);
        nn_model_free(m);
        return rc == 0 ? 0 : 1;
    }
    printf("# bench_nn: C engine, %s%s%s\n", o.arch_path,
           o.workers ? " (engine alone, workers)" : o.n_batches ? " (batch sizes)" : "",
           o.quick ? " (quick)" : "");
    printf("impl c\n");
    printf("arch %s\n", nn_model_arch_name(m));
    print_load();
    print_blas_env(&o);
    print_malloc_env();
    if (o.workers || o.n_batches) {
        const nn_precision served = nn_model_set_precision(m, (nn_precision)o.precision);
        if (served != (nn_precision)o.precision)
            printf("# NOTE: this CPU cannot run %s: running %s (nn_precision_served)\n",
                   nn_precision_name((nn_precision)o.precision), nn_precision_name(served));
    }
    if (o.workers) {
        int rc = bench_workers(m, &o);
        nn_model_free(m);
        return rc == 0 ? 0 : 1;
    }
    if (o.n_batches) {
        int rc = bench_batches(m, &o);
        nn_model_free(m);
        return rc == 0 ? 0 : 1;
    }
    double sq1, sq2;
    bench_sgemm(&o, &sq1, &sq2);
    int rc = bench_model(m, &o, sq1, sq2);
    nn_model_free(m);
    return rc == 0 ? 0 : 1;
}
