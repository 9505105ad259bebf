/* test_alloc_fail.c - every allocation of a representative operation made to
 * fail in turn: the model file loader (memory and file) and saver, PNG and
 * JPEG decoding with the resize to 48x48 and at full size, face detection,
 * workspace creation and a forward pass, the config parser and printer, the
 * JSON bodies of /predict and of errors, the multipart parser, the model
 * store, the feedback sample store and the /train options parser.
 *
 * The hook lives in this test binary only (the product has no global switch
 * for it): the Makefile links it with -Wl,--wrap=malloc,calloc,realloc,
 * strdup,free, so every call to those in nn/, service/ and here goes to the
 * __wrap_ functions below, and Jansson is given the same ones through
 * json_set_alloc_funcs. When armed, the Nth allocation returns NULL. For
 * N = 1, 2, ... each operation runs until a run sees no failure (every
 * allocation it makes has then been failed once), in two modes: only the
 * Nth allocation fails, or every one from the Nth on (memory stays short
 * while the error path runs). Each failed run must return an error with a
 * message (or the documented NULL), must not crash, and must free all it
 * allocated: live allocations are tracked by pointer between arming and the
 * check. Under `make asan`, ASan's own malloc is what __real_malloc reaches
 * (the wrap renames only our references), and LeakSanitizer checks as well.
 *
 * Libraries' internal allocations (libpng, TurboJPEG, libgomp, OpenBLAS) are
 * not ours to wrap: their failures come back through their own error paths,
 * which the fuzzers and bomb tests reach. */
#include <check.h>
#include <execinfo.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common_admin.h"
#include "common_imgtest.h"
#include "config.h"
#include "dataset.h"
#include "face_detect.h"
#include "fsutil.h"
#include "json_faces.h"
#include "json_response.h"
#include "model_file.h"
#include "model_store.h"
#include "multipart.h"
#include "samples.h"
#include "train_opts.h"

/* ---- the hook ---------------------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void __real_free(void *p);

static atomic_int armed;      /* count and fail only while set */
static atomic_int sticky;     /* 1: fail every allocation from the Nth on */
static atomic_long seen;      /* allocations while armed */
static atomic_long fail_at;   /* N (1-based); 0: none */
static atomic_long failed;    /* NULLs returned */
static int hook_linked;       /* set by __wrap_malloc: the wrap is in effect */

/* Live allocations made while armed, by address (open addressing). A tiny
 * spin lock: OpenMP threads may allocate too (they are limited to one). */
#define LIVE_SLOTS (1u << 16)
static void *live[LIVE_SLOTS];
static atomic_flag live_lock = ATOMIC_FLAG_INIT;
static long live_n;

static size_t slot_of(const void *p)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= 0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 7) & (LIVE_SLOTS - 1);
}

static void live_add(void *p)
{
    while (atomic_flag_test_and_set(&live_lock)) {
    }
    size_t i = slot_of(p);
    for (size_t k = 0; k < LIVE_SLOTS; k++, i = (i + 1) & (LIVE_SLOTS - 1))
        if (!live[i] || live[i] == (void *)1) {
            live[i] = p;
            live_n++;
            break;
        }
    atomic_flag_clear(&live_lock);
}

static void live_del(void *p)
{
    if (!p) return;
    while (atomic_flag_test_and_set(&live_lock)) {
    }
    size_t i = slot_of(p);
    for (size_t k = 0; k < LIVE_SLOTS && live[i]; k++, i = (i + 1) & (LIVE_SLOTS - 1))
        if (live[i] == p) {
            live[i] = (void *)1; /* tombstone */
            live_n--;
            break;
        }
    atomic_flag_clear(&live_lock);
}

static void live_reset(void)
{
    memset(live, 0, sizeof live);
    live_n = 0;
}

/* Jansson's parser is not safe against a failed allocation: when the
 * buffer of a long token cannot grow, its lexer goes on and then aborts on
 * an assert (load.c lex_unget_unsave, akheron/jansson#362, open upstream;
 * Debian 12's 2.14 has it). That is a library bug we cannot fix here, so
 * the allocations made inside json_load* (wrapped below, to know when) are
 * neither failed nor counted; everything after a parse is. */
static _Thread_local int in_parse;

json_t *__real_json_loads(const char *input, size_t flags, json_error_t *error);
json_t *__real_json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error);
json_t *__real_json_load_file(const char *path, size_t flags, json_error_t *error);

json_t *__wrap_json_loads(const char *input, size_t flags, json_error_t *error)
{
    in_parse++;
    json_t *j = __real_json_loads(input, flags, error);
    in_parse--;
    return j;
}

json_t *__wrap_json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error)
{
    in_parse++;
    json_t *j = __real_json_loadb(buffer, buflen, flags, error);
    in_parse--;
    return j;
}

json_t *__wrap_json_load_file(const char *path, size_t flags, json_error_t *error)
{
    in_parse++;
    json_t *j = __real_json_load_file(path, flags, error);
    in_parse--;
    return j;
}

static int should_fail(void)
{
    if (!atomic_load(&armed) || in_parse) return 0;
    long n = atomic_fetch_add(&seen, 1) + 1, at = atomic_load(&fail_at);
    if (at > 0 && (n == at || (atomic_load(&sticky) && n > at))) {
        atomic_fetch_add(&failed, 1);
        /* ALLOC_FAIL_TRACE=N prints where the Nth allocation is made */
        const char *t = getenv("ALLOC_FAIL_TRACE");
        if (t && atol(t) == n) {
            void *frames[32];
            backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
        }
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t n)
{
    hook_linked = 1;
    if (should_fail()) return NULL;
    void *p = __real_malloc(n);
    if (p && atomic_load(&armed)) live_add(p);
    if (p && atomic_load(&armed) && getenv("ALLOC_LOG")) {
        fprintf(stderr, "ALLOC %ld %p\n", atomic_load(&seen), p);
        void *frames[8];
        backtrace_symbols_fd(frames, backtrace(frames, 8), 2);
    }
    return p;
}

void *__wrap_calloc(size_t k, size_t n)
{
    if (should_fail()) return NULL;
    void *p = __real_calloc(k, n);
    if (p && atomic_load(&armed)) live_add(p);
    return p;
}

void *__wrap_realloc(void *old, size_t n)
{
    if (should_fail()) return NULL; /* old stays valid, as realloc promises */
    void *p = __real_realloc(old, n);
    if (p || !n) live_del(old);
    if (p && atomic_load(&armed)) live_add(p);
    return p;
}

char *__wrap_strdup(const char *s)
{
    if (should_fail()) return NULL;
    char *p = __real_strdup(s);
    if (p && atomic_load(&armed)) live_add(p);
    return p;
}

void __wrap_free(void *p)
{
    live_del(p);
    __real_free(p);
}

static void arm(long n, int stick)
{
    atomic_store(&seen, 0);
    atomic_store(&failed, 0);
    atomic_store(&fail_at, n);
    atomic_store(&sticky, stick);
    live_reset();
    atomic_store(&armed, 1);
}

static void disarm(void)
{
    atomic_store(&armed, 0);
}

/* Checks inside an operation run while armed, and Check itself allocates
 * (it is linked statically, so its malloc calls are wrapped too): a broken
 * expectation is noted here and asserted once the hook is disarmed. */
static char violation[2048];
#define EXPECT(cond, ...)                                                              \
    do {                                                                               \
        if (!(cond) && !violation[0]) snprintf(violation, sizeof violation, __VA_ARGS__); \
    } while (0)

/* ---- the loop ------------------------------------------------------------------- */

/* An operation: 0 when it succeeded, else an error with a message in msg.
 * It frees whatever it made before returning (results included). */
typedef int (*op_fn)(char *msg, size_t msglen);

/* Runs op with the Nth allocation failing for N = 1, 2, ... until a run
 * sees no failure; returns the number of failing runs. */
static int exercise(const char *name, op_fn op, int stick)
{
    char msg[1024];
    /* once unarmed first: lazily built caches (OpenBLAS, libgomp) are then
     * in place and not taken for leaks */
    msg[0] = '\0';
    ck_assert_msg(op(msg, sizeof msg) == 0, "%s fails even with memory: %s", name, msg);
    int runs = 0;
    for (long n = 1; n < 200000; n++) {
        msg[0] = '\0';
        arm(n, stick);
        violation[0] = '\0';
        int rc = op(msg, sizeof msg);
        disarm();
        long f = atomic_load(&failed), left = live_n;
        if (left && getenv("ALLOC_LOG"))
            for (size_t i = 0; i < LIVE_SLOTS; i++)
                if (live[i] && live[i] != (void *)1) fprintf(stderr, "LEAK %p\n", live[i]);
        ck_assert_msg(!violation[0], "%s: allocation %ld failed (%s): %s", name, n,
                      stick ? "and every later one" : "only", violation);
        ck_assert_msg(left == 0, "%s: allocation %ld failed (%s): %ld allocation(s) leaked", name,
                      n, stick ? "and every later one" : "only", left);
        if (!f) {
            ck_assert_msg(rc == 0, "%s: no allocation failed but it returned an error: %s", name, msg);
            fprintf(stderr, "%-28s %-6s %4ld allocations, each failed once: %d error returns, "
                    "0 crashes, 0 leaks\n", name, stick ? "sticky" : "single", n - 1, runs);
            return runs;
        }
        if (rc) {
            runs++;
            ck_assert_msg(msg[0], "%s: allocation %ld failed: an error without a message", name, n);
        }
        /* rc == 0 with a failed allocation: the operation coped (a fallback,
         * or a best-effort step), which is fine */
    }
    ck_abort_msg("%s: never ran without a failure", name);
    return runs;
}

/* ---- fixtures -------------------------------------------------------------------- */

static char tmpdir[64], model_path[128];
static uint8_t *model_bytes, *png, *jpeg, *png_big, *jpeg_big;
static size_t model_len, png_len, jpeg_len, png_big_len, jpeg_big_len;
static nn_model *model;

static void setup(void)
{
    char err[256];
    nn_set_threads(1);
    omp_set_num_threads(1);
    /* files go to a tmpfs when there is one: the store and the saver fsync
     * every file, hundreds of times here, which costs seconds on a disk */
    snprintf(tmpdir, sizeof tmpdir, "%s/emotiond-allocfail-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp %s", tmpdir);
    snprintf(model_path, sizeof model_path, "%s/m.emod", tmpdir);
    ck_assert_int_eq(nn_model_from_arch_json(tsv_tiny_arch, 5, &model, err, sizeof err), 0);
    ck_assert_int_eq(nn_model_save(model, model_path, err, sizeof err), 0);
    model_bytes = tsv_read_file(model_path, &model_len);
    uint8_t px[48 * 48];
    tadm_face(3, 1, px);
    png = imgt_png_gray8(48, 48, px, &png_len);
    jpeg = tsv_jpeg(48, 48, 1, px, &jpeg_len);
    uint8_t *rgb = tsv_gradient(320, 240, 3);
    png_big = tsv_png(320, 240, 2 /* PNG_COLOR_TYPE_RGB */, 8, rgb, &png_big_len);
    jpeg_big = tsv_jpeg(320, 240, 3, rgb, &jpeg_big_len);
    free(rgb);
}

static void teardown(void)
{
    disarm();
    nn_model_free(model);
    free(model_bytes);
    free(png);
    free(jpeg);
    free(png_big);
    free(jpeg_big);
    imgt_rm_rf(tmpdir);
}

/* ---- operations ------------------------------------------------------------------ */

static int op_model_load_mem(char *msg, size_t ml)
{
    nn_model *m = NULL;
    int rc = nn_model_load_mem(model_bytes, model_len, &m, msg, ml);
    EXPECT(rc ? m == NULL : m != NULL, "model pointer and return code disagree");
    nn_model_free(m);
    return rc;
}

static int op_model_load_file(char *msg, size_t ml)
{
    nn_model *m = NULL;
    int rc = nn_model_load(model_path, &m, msg, ml);
    EXPECT(rc ? m == NULL : m != NULL, "model pointer and return code disagree");
    nn_model_free(m);
    return rc;
}

/* A file that a save said it wrote must load: checked with the hook off. */
static void expect_loads(const char *path)
{
    int was = atomic_exchange(&armed, 0);
    nn_model *m = NULL;
    char err[512] = "";
    int rc = nn_model_load(path, &m, err, sizeof err);
    EXPECT(rc == 0, "saved with success but does not load: %s", err);
    nn_model_free(m);
    atomic_store(&armed, was);
}

static int op_model_save(char *msg, size_t ml)
{
    char path[160];
    snprintf(path, sizeof path, "%s/saved.emod", tmpdir);
    unlink(path);
    int rc = nn_model_save(model, path, msg, ml);
    if (!rc) expect_loads(path);
    return rc;
}

static int op_model_clone(char *msg, size_t ml)
{
    nn_model *c = nn_model_clone(model);
    if (!c) snprintf(msg, ml, "nn_model_clone: NULL (out of memory)");
    nn_model_free(c);
    return c ? 0 : -1;
}

static int decode(const uint8_t *data, size_t len, int full, char *msg, size_t ml)
{
    img_limits lim;
    img_limits_default(&lim);
    int rc;
    if (full) {
        uint8_t *px = NULL;
        int w = 0, h = 0;
        rc = img_decode_gray(data, len, &lim, &px, &w, &h, msg, ml);
        EXPECT(rc ? px == NULL : px != NULL, "pixels pointer and return code disagree");
        free(px);
    } else {
        uint8_t out[48 * 48];
        rc = img_decode_gray_resized(data, len, &lim, 48, 48, out, NULL, NULL, msg, ml);
    }
    /* an allocation failure is out_of_memory, never taken for a bad image */
    EXPECT(rc == IMG_OK || rc == IMG_E_NOMEM, "decode: %s (%s) under allocation failure",
           img_strerror_code(rc), msg);
    return rc;
}

static int op_png_48(char *m, size_t l) { return decode(png, png_len, 0, m, l); }
static int op_jpeg_48(char *m, size_t l) { return decode(jpeg, jpeg_len, 0, m, l); }
static int op_png_photo(char *m, size_t l) { return decode(png_big, png_big_len, 0, m, l); }
static int op_jpeg_photo(char *m, size_t l) { return decode(jpeg_big, jpeg_big_len, 0, m, l); }
static int op_png_full(char *m, size_t l) { return decode(png_big, png_big_len, 1, m, l); }
static int op_jpeg_full(char *m, size_t l) { return decode(jpeg_big, jpeg_big_len, 1, m, l); }

static int op_infer(char *msg, size_t ml)
{
    nn_ws *ws = nn_ws_create(model, 2);
    if (!ws) {
        snprintf(msg, ml, "nn_ws_create: NULL (out of memory)");
        return -1;
    }
    uint8_t px[2 * 48 * 48];
    float probs[2 * 7];
    tadm_face(1, 2, px);
    tadm_face(4, 2, px + 48 * 48);
    int rc = nn_predict_u8(model, ws, px, 2, NN_TTA_FLIP, probs);
    if (rc) snprintf(msg, ml, "nn_predict_u8: %d", rc);
    nn_ws_free(ws);
    return rc;
}

static const char config_json[] =
    "{\"port\": 9000, \"workers\": 3, \"model\": \"models/x.emod\", \"tta\": true,"
    " \"log_format\": \"json\", \"max_faces\": 4, \"face_cascade\": null}";

static int op_config(char *msg, size_t ml)
{
    svc_config c;
    cfg_defaults(&c);
    int rc = cfg_apply_json(&c, config_json, "test.json", msg, ml);
    if (rc) return rc;
    char *txt = cfg_to_json(&c);
    if (!txt) {
        snprintf(msg, ml, "cfg_to_json: NULL (out of memory)");
        return -1;
    }
    free(txt);
    return 0;
}

static int op_config_file(char *msg, size_t ml)
{
    char path[160];
    snprintf(path, sizeof path, "%s/c.json", tmpdir);
    svc_config c;
    cfg_defaults(&c);
    return cfg_apply_file(&c, path, msg, ml);
}

static int op_json_bodies(char *msg, size_t ml)
{
    static const float probs[7] = {0.1f, 0.05f, 0.05f, 0.5f, 0.1f, 0.1f, 0.1f};
    jr_prediction p = {7, ds_class_names, probs, "tiny", "v0001", 1.5, 3, 48, 48};
    char *a = jr_prediction_json(&p);
    char *e = jr_error("corrupt_png", "PNG decoding failed: \xff bad bytes");
    char *s = jr_status("ready", NULL);
    fd_box boxes[2] = {{10, 10, 50, 50, 5}, {70, 20, 30, 30, 3}};
    float fprobs[14];
    for (int i = 0; i < 14; i++) fprobs[i] = 1.0f / 7;
    jr_faces f = {7, ds_class_names, 2, boxes, fprobs, "tiny", "v0001", 2.5, 2, 200, 100};
    char *fj = jr_faces_json(&f);
    int rc = a && e && s && fj ? 0 : -1;
    if (rc) snprintf(msg, ml, "a JSON body is NULL (out of memory)");
    /* a body given is the whole body: it parses and has its keys */
    int was = atomic_exchange(&armed, 0);
    const char *texts[4] = {a, e, s, fj}, *keys[4] = {"probabilities", "error", "status", "faces"};
    for (int i = 0; i < 4; i++) {
        if (!texts[i]) continue;
        json_t *j = json_loads(texts[i], 0, NULL);
        EXPECT(j && json_object_get(j, keys[i]) && json_object_size(j) >= 1 &&
                   !json_object_get(j, ""),
               "a body is damaged: %s", texts[i]);
        json_decref(j);
    }
    atomic_store(&armed, was);
    free(a);
    free(e);
    free(s);
    free(fj);
    return rc;
}

static int op_multipart(char *msg, size_t ml)
{
    char boundary[MP_MAX_BOUNDARY + 1];
    if (mp_boundary_from_content_type("multipart/form-data; boundary=xYz", boundary, sizeof boundary)) {
        snprintf(msg, ml, "boundary");
        return -1;
    }
    char head[] = "--xYz\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nskip me\r\n"
                  "--xYz\r\nContent-Disposition: form-data; name=\"image\"; filename=\"f.png\"\r\n"
                  "Content-Type: image/png\r\n\r\n";
    char tail[] = "\r\n--xYz--\r\n";
    size_t n = strlen(head) + png_len + strlen(tail);
    uint8_t *body = malloc(n);
    if (!body) {
        snprintf(msg, ml, "out of memory");
        return -1;
    }
    memcpy(body, head, strlen(head));
    memcpy(body + strlen(head), png, png_len);
    memcpy(body + strlen(head) + png_len, tail, strlen(tail));
    mp_parser *p = malloc(sizeof *p);
    int rc = -1;
    if (!p) {
        snprintf(msg, ml, "out of memory");
        goto out;
    }
    rc = mp_init(p, boundary, "image", 1 << 20);
    if (rc) {
        snprintf(msg, ml, "mp_init: %s", mp_strerror_code(rc));
        goto out;
    }
    for (size_t i = 0; i < n; i += 7) mp_feed(p, body + i, n - i < 7 ? n - i : 7); /* in pieces */
    rc = mp_finish(p);
    if (rc) {
        EXPECT(rc == MP_E_NOMEM, "multipart: %s under allocation failure", mp_strerror_code(rc));
        snprintf(msg, ml, "mp_finish: %s", mp_strerror_code(rc));
    } else {
        size_t len = 0;
        uint8_t *d = mp_take_data(p, &len);
        EXPECT(d && len == png_len && !memcmp(d, png, len), "multipart: wrong field content");
        free(d);
    }
    mp_free(p);
out:
    free(p);
    free(body);
    return rc;
}

static int op_train_options(char *msg, size_t ml)
{
    static const char body[] = "{\"epochs\": 3, \"batch\": 16, \"lr\": 0.01, \"optimizer\": \"adam\","
                               " \"augmentation\": {\"flip\": true, \"shift\": 2}, \"force\": true}";
    json_t *o = NULL;
    char field[128];
    int rc = topt_parse(body, strlen(body), &o, field, sizeof field, msg, ml);
    if (rc && !msg[0]) snprintf(msg, ml, "topt_parse failed (field '%s')", field);
    json_decref(o);
    return rc;
}

static int op_model_store(char *msg, size_t ml)
{
    char dir[160], id[MS_ID_MAX];
    snprintf(dir, sizeof dir, "%s/store", tmpdir);
    fs_rm_rf(dir);
    ms_store *s = ms_open(dir, 1, msg, ml);
    if (!s) return -1;
    ms_add_info info = {"import", NULL, "ready", NULL, 0.5, NAN};
    int rc = ms_add(s, model, &info, id, sizeof id, msg, ml);
    if (!rc) rc = ms_set_active(s, id, msg, ml);
    if (!rc) rc = ms_add(s, model, &info, id, sizeof id, msg, ml); /* and retention */
    if (!rc) {
        char *j = ms_list_json(s);
        if (!j) {
            snprintf(msg, ml, "ms_list_json: NULL (out of memory)");
            rc = -1;
        }
        free(j);
    }
    ms_close(s);
    if (!rc) { /* what it said it stored, a restart finds: the store opens, the active version loads */
        int was = atomic_exchange(&armed, 0);
        char e[512] = "", act[MS_ID_MAX], path[1400];
        ms_store *again = ms_open(dir, 1, e, sizeof e);
        EXPECT(again != NULL, "the store does not open again: %s", e);
        if (again) {
            EXPECT(ms_active(again, act, sizeof act) == 0 &&
                       ms_file_path(again, act, path, sizeof path) == 0,
                   "the store has no active version");
            ms_close(again);
            expect_loads(path);
        }
        atomic_store(&armed, was);
    }
    /* ms_add writes the version into the model's metadata (a new string
     * that the model owns, freed with it in teardown): not a leak */
    live_del((void *)nn_model_meta_json(model));
    return rc;
}

static int op_sample(char *msg, size_t ml)
{
    char dir[160];
    snprintf(dir, sizeof dir, "%s/data", tmpdir);
    fs_rm_rf(dir);
    img_limits lim;
    img_limits_default(&lim);
    sample_result r;
    samples_store(dir, png, png_len, "happy", &lim, &r);
    if (!r.code) {
        char *j = samples_stats_json(dir);
        int ok = j != NULL;
        free(j);
        if (!ok) {
            snprintf(msg, ml, "samples_stats_json: NULL (out of memory)");
            return -1;
        }
        return 0;
    }
    snprintf(msg, ml, "%d %s: %s", r.status, r.code, r.message);
    EXPECT(r.status == 503 && !strcmp(r.code, "out_of_memory"), "sample refused with %s", msg);
    return -1;
}

static void run_op(const char *name, op_fn op)
{
    /* ALLOC_FAIL_ONLY=text runs only the operations whose name has it */
    const char *only = getenv("ALLOC_FAIL_ONLY");
    if (only && !strstr(name, only)) return;
    exercise(name, op, 0);
    exercise(name, op, 1);
}

/* ---- tests --------------------------------------------------------------------------- */

START_TEST(test_hook_in_effect)
{
    /* the wrap must reach our code (also under ASan, whose malloc is what
     * __real_malloc resolves to): a failed allocation is seen from nn/ */
    arm(1, 0);
    nn_model *c = nn_model_clone(model);
    disarm();
    ck_assert_msg(hook_linked && atomic_load(&failed) == 1 && c == NULL,
                  "the --wrap=malloc hook is not in effect (linked %d, failed %ld)", hook_linked,
                  atomic_load(&failed));
    /* and Jansson goes through it too */
    arm(1, 0);
    json_t *j = json_object();
    disarm();
    ck_assert_ptr_null(j);
}
END_TEST

START_TEST(test_model_files)
{
    run_op("model load (memory)", op_model_load_mem);
    run_op("model load (file)", op_model_load_file);
    run_op("model save", op_model_save);
    run_op("model clone", op_model_clone);
}
END_TEST

START_TEST(test_decode)
{
    run_op("PNG 48x48 to 48x48", op_png_48);
    run_op("JPEG 48x48 to 48x48", op_jpeg_48);
    run_op("PNG 320x240 RGB to 48x48", op_png_photo);
    run_op("JPEG 320x240 RGB to 48x48", op_jpeg_photo);
    run_op("PNG 320x240 full size", op_png_full);
    run_op("JPEG 320x240 full size", op_jpeg_full);
}
END_TEST

START_TEST(test_inference)
{
    run_op("workspace + forward (flip)", op_infer);
}
END_TEST

START_TEST(test_config_and_json)
{
    char path[160];
    snprintf(path, sizeof path, "%s/c.json", tmpdir);
    imgt_write_file(path, config_json, strlen(config_json));
    run_op("config JSON + print", op_config);
    run_op("config file", op_config_file);
    run_op("JSON response bodies", op_json_bodies);
    run_op("train options", op_train_options);
}
END_TEST

START_TEST(test_multipart)
{
    run_op("multipart (7-byte pieces)", op_multipart);
}
END_TEST

START_TEST(test_stores)
{
    run_op("model store open/add/activate", op_model_store);
    run_op("feedback sample + stats", op_sample);
}
END_TEST

int main(void)
{
    /* Jansson's allocations go through the same hook */
    json_set_alloc_funcs(__wrap_malloc, __wrap_free);
    Suite *s = suite_create("alloc_fail");
    TCase *tc = tcase_create("alloc");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_hook_in_effect);
    tcase_add_test(tc, test_model_files);
    tcase_add_test(tc, test_decode);
    tcase_add_test(tc, test_inference);
    tcase_add_test(tc, test_config_and_json);
    tcase_add_test(tc, test_multipart);
    tcase_add_test(tc, test_stores);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed_n = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed_n ? 1 : 0;
}
