/* test_faults_disk.c - a full disk and a read-only one under the admin API's
 * writes: feedback samples (POST /samples), the manifest (activation), a
 * training job's record and checkpoints (POST /train, every epoch) and the
 * new model version it saves at the end.
 *
 * Each test runs an in-process server whose model store (<root>/models), job
 * folder (<root>/models/jobs) and feedback folder (<root>/data/feedback) are
 * three small tmpfs mounts, so that one of them can be filled (a filler file
 * written until ENOSPC) or remounted read-only at the right moment without
 * touching the others, then freed. What must hold: a clear error (507 with
 * insufficient_storage or storage_read_only, or a failed job with that
 * error_code), nothing corrupted (the store loads, the previous model serves,
 * files byte for byte as before, no temporary or partial file left), nothing
 * acknowledged lost (a 201 sample is on disk; a refused one is absent), and
 * /predict answers 200 throughout (a client thread posts all along). Once
 * the space is back the same operation succeeds.
 *
 * Mounting needs root (CAP_SYS_ADMIN): without it every test prints SKIP and
 * passes. The mounts live in a mount namespace of the test's own process
 * (Check forks one per test), so that they vanish with it even if it
 * crashes; teardown unmounts them anyway. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common_admin.h"
#include "common_imgtest.h"
#include "fsutil.h"
#include "model_file.h"
#include "model_store.h"

enum { FS_FEEDBACK, FS_STORE, FS_JOBS, FS_N };
static const char *const fs_size[FS_N] = {"size=256k", "size=256k", "size=1m"};
static char model_path[64], root[64], data[128];
static char dirs[FS_N][160]; /* mount points */
static int mounted[FS_N];
static char skip_why[1024];
static app *srv;
static int port;

/* ---- mounts ---------------------------------------------------------------- */

static int do_mount(int i, unsigned long flags)
{
    return mount("tmpfs", dirs[i], "tmpfs", MS_NOSUID | MS_NODEV | flags, fs_size[i]);
}

static void remount(int i, int ro)
{
    ck_assert_msg(do_mount(i, MS_REMOUNT | (ro ? MS_RDONLY : 0)) == 0, "remount %s %s: %s",
                  dirs[i], ro ? "ro" : "rw", strerror(errno));
}

/* Writes <dir>/.filler until the file system is full. */
static void fill(int i)
{
    char path[200];
    static const char zero[16384];
    snprintf(path, sizeof path, "%s/.filler", dirs[i]);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    ck_assert_int_ge(fd, 0);
    for (;;) {
        ssize_t w = write(fd, zero, sizeof zero);
        if (w < 0) {
            ck_assert_int_eq(errno, ENOSPC);
            break;
        }
    }
    /* the last page may have taken a short write: now not one byte fits */
    while (write(fd, zero, 1) == 1) {
    }
    close(fd);
}

static void unfill(int i)
{
    char path[200];
    snprintf(path, sizeof path, "%s/.filler", dirs[i]);
    ck_assert_int_eq(unlink(path), 0);
}

/* ---- /predict all along ------------------------------------------------------ */

static struct {
    pthread_t th;
    atomic_int stop, ok, bad, running;
    char last_bad[256];
} pred;

static void *predict_loop(void *arg)
{
    (void)arg;
    uint8_t px[48 * 48];
    size_t n;
    tadm_face(2, 11, px);
    uint8_t *png = imgt_png_gray8(48, 48, px, &n);
    while (!atomic_load(&pred.stop)) {
        tsv_resp r;
        int rc = tadm_http("POST", port, "/predict", NULL, "image/png", png, n, &r);
        if (rc == 0 && r.status == 200) {
            atomic_fetch_add(&pred.ok, 1);
        } else {
            atomic_fetch_add(&pred.bad, 1);
            snprintf(pred.last_bad, sizeof pred.last_bad, "%ld %.200s", r.status, r.body);
        }
        tsv_resp_free(&r);
        usleep(2000);
    }
    free(png);
    return NULL;
}

static void start_server(void)
{
    svc_config c;
    tadm_config(&c, model_path, dirs[FS_STORE], data);
    srv = tsv_start(&c);
    port = app_port(srv);
    atomic_store(&pred.stop, 0);
    ck_assert_int_eq(pthread_create(&pred.th, NULL, predict_loop, NULL), 0);
    atomic_store(&pred.running, 1);
}

static void stop_server(void)
{
    if (atomic_load(&pred.running)) {
        atomic_store(&pred.stop, 1);
        pthread_join(pred.th, NULL);
        atomic_store(&pred.running, 0);
    }
    app_free(srv);
    srv = NULL;
}

/* Ends a test: /predict never failed, and did answer. */
static void check_predicts(const char *what)
{
    stop_server();
    ck_assert_msg(atomic_load(&pred.bad) == 0, "%s: %d /predict failed (last: %s)", what,
                  atomic_load(&pred.bad), pred.last_bad);
    ck_assert_int_gt(atomic_load(&pred.ok), 0);
    fprintf(stderr, "%s: /predict answered 200 %d times throughout, 0 failures\n", what,
            atomic_load(&pred.ok));
}

static void setup(void)
{
    char err[256], id[MS_ID_MAX];
    skip_why[0] = '\0';
    memset(mounted, 0, sizeof mounted);
    memset(&pred, 0, sizeof pred);
    nn_model_free(tsv_make_model_file(9, model_path, sizeof model_path));
    imgt_mkdtemp(root);
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(dirs[FS_FEEDBACK], sizeof dirs[0], "%s/feedback", data);
    snprintf(dirs[FS_STORE], sizeof dirs[0], "%s/models", root);
    snprintf(dirs[FS_JOBS], sizeof dirs[0], "%s/models/jobs", root);
    fs_mkdir_p(data);
    tadm_make_dataset(data, 6, 2); /* small: a few ms per epoch */
    /* A private mount namespace first (this process is single-threaded
     * here, as unshare requires): the tmpfs mounts are then invisible to the
     * rest of the machine and go away with this process whatever happens. */
    if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
        snprintf(skip_why, sizeof skip_why, "cannot make a mount namespace (%s): needs root or "
                 "CAP_SYS_ADMIN", strerror(errno));
        return;
    }
    for (int i = 0; i < FS_N; i++) {
        fs_mkdir_p(dirs[i]);
        if (do_mount(i, 0)) {
            snprintf(skip_why, sizeof skip_why, "cannot mount a tmpfs on %s (%s): needs root or "
                     "CAP_SYS_ADMIN", dirs[i], strerror(errno));
            return;
        }
        mounted[i] = 1;
    }
    /* two versions, v0001 active */
    ms_store *s = ms_open(dirs[FS_STORE], 5, err, sizeof err);
    ck_assert_msg(s != NULL, "%s", err);
    for (uint64_t seed = 1; seed <= 2; seed++) {
        nn_model *m = NULL;
        ck_assert_int_eq(nn_model_from_arch_json(tsv_tiny_arch, seed, &m, err, sizeof err), 0);
        ms_add_info info = {"import", NULL, "ready", NULL, NAN, NAN};
        ck_assert_msg(ms_add(s, m, &info, id, sizeof id, err, sizeof err) == 0, "%s", err);
        nn_model_free(m);
    }
    ck_assert_int_eq(ms_set_active(s, "v0001", err, sizeof err), 0);
    ms_close(s);
    start_server();
}

static void teardown(void)
{
    if (srv) stop_server();
    for (int i = FS_N - 1; i >= 0; i--) /* jobs is inside the store's mount */
        if (mounted[i] && umount2(dirs[i], MNT_DETACH))
            fprintf(stderr, "umount %s: %s\n", dirs[i], strerror(errno));
    unlink(model_path);
    imgt_rm_rf(root);
}

static int skipped(const char *test)
{
    if (!skip_why[0]) return 0;
    fprintf(stderr, "SKIP %s: %s\n", test, skip_why);
    return 1;
}

/* ---- checks -------------------------------------------------------------------- */

static int n_tmp;
static char tmp_seen[512];

static int tmp_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_F && strstr(path + ftw->base, ".tmp")) {
        n_tmp++;
        snprintf(tmp_seen, sizeof tmp_seen, "%s", path);
    }
    return 0;
}

/* No temporary left anywhere under dir. */
static void check_no_tmp(const char *dir)
{
    n_tmp = 0;
    nftw(dir, tmp_one, 16, FTW_PHYS);
    ck_assert_msg(n_tmp == 0, "%d temporary file(s) left, e.g. %s", n_tmp, tmp_seen);
}

static char *file_text(const char *dir, const char *name)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = tadm_slurp(path);
    return s;
}

static void expect_error(const tsv_resp *r, long status, const char *code, const char *words)
{
    char got[64] = "", msg[512] = "";
    tadm_json_str(r->body, "error.code", got, sizeof got);
    tadm_json_str(r->body, "error.message", msg, sizeof msg);
    ck_assert_msg(r->status == status && !strcmp(got, code) && strstr(msg, words),
                  "expected %ld %s (\"%s\"), got %ld %s", status, code, words, r->status, r->body);
}

static void expect_version(const char *v)
{
    char got[64];
    ck_assert_int_eq(tadm_predict_version(port, got, sizeof got), 0);
    ck_assert_str_eq(got, v);
}

/* The store as a restart sees it. */
static void expect_store_active(const char *v)
{
    char err[256], active[MS_ID_MAX];
    ms_store *s = ms_open(dirs[FS_STORE], 5, err, sizeof err);
    ck_assert_msg(s != NULL, "the store does not load: %s", err);
    ck_assert_int_eq(ms_active(s, active, sizeof active), 0);
    ck_assert_str_eq(active, v);
    ms_close(s);
}

static long post(const char *path, const char *body, tsv_resp *r)
{
    ck_assert_int_eq(tadm_http("POST", port, path, TADM_TOKEN, body ? "application/json" : NULL,
                               body, body ? strlen(body) : 0, r), 0);
    return r->status;
}

/* ---- POST /samples ----------------------------------------------------------- */

typedef struct {
    uint8_t *png;
    size_t len;
    char id[24];
    const char *label;
} sample;

static void make_sample(sample *s, int i)
{
    static const char *labels[] = {"angry", "happy", "sad", "fear"};
    uint8_t px[48 * 48];
    tadm_face(i % 7, 3000 + i, px);
    s->png = imgt_png_gray8(48, 48, px, &s->len);
    s->label = labels[i % 4];
    s->id[0] = '\0';
}

static long post_sample(sample *s, tsv_resp *r)
{
    char path[64];
    snprintf(path, sizeof path, "/samples?label=%s", s->label);
    ck_assert_int_eq(tadm_http("POST", port, path, TADM_TOKEN, "image/png", s->png, s->len, r), 0);
    if (r->status == 201 || r->status == 200) tadm_json_str(r->body, "id", s->id, sizeof s->id);
    return r->status;
}

/* 1 when any class folder holds a file of that content hash. */
static int sample_on_disk(const sample *s, int must_match)
{
    static const char *classes[] = {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"};
    char id[24];
    /* the id is FNV-1a 64 of the bytes (samples.c), recomputed here so that a
     * refused sample, which has no id in its answer, can be looked for too */
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < s->len; i++) {
        h ^= s->png[i];
        h *= 1099511628211ULL;
    }
    snprintf(id, sizeof id, "%016llx", h);
    for (int c = 0; c < 7; c++) {
        char path[400];
        snprintf(path, sizeof path, "%s/%s/%s.png", dirs[FS_FEEDBACK], classes[c], id);
        size_t len = 0;
        uint8_t *b = tsv_read_file(path, &len);
        if (!b) continue;
        if (must_match)
            ck_assert_msg(len == s->len && !memcmp(b, s->png, len), "sample %s damaged", id);
        free(b);
        return 1;
    }
    return 0;
}

START_TEST(test_samples_full_and_read_only)
{
    if (skipped("test_samples_full_and_read_only")) return;
    enum { N = 64 };
    sample *s = calloc(N, sizeof *s);
    for (int i = 0; i < N; i++) make_sample(&s[i], i);
    int acked = 0, refused = 0, k = 0;
    tsv_resp r;
    /* a little room (8 pages of 4 KiB: a few samples plus their class
     * folders), so that posts succeed, then the disk fills between two */
    char filler[200];
    struct stat st;
    snprintf(filler, sizeof filler, "%s/.filler", dirs[FS_FEEDBACK]);
    fill(FS_FEEDBACK);
    ck_assert_int_eq(stat(filler, &st), 0);
    ck_assert_int_eq(truncate(filler, st.st_size > 8 * 4096 ? st.st_size - 8 * 4096 : 0), 0);
    for (; k < N; k++) {
        if (post_sample(&s[k], &r) == 201) {
            acked++;
        } else {
            expect_error(&r, 507, "insufficient_storage", "disk is full");
            refused++;
            tsv_resp_free(&r);
            break;
        }
        tsv_resp_free(&r);
    }
    ck_assert_msg(acked >= 2 && refused == 1, "%d stored before the disk was full", acked);
    int before_full = acked;
    /* while full: more refusals; a duplicate of a stored one needs no space */
    for (int j = k + 1; j < k + 4; j++) {
        ck_assert_int_eq(post_sample(&s[j], &r), 507);
        tsv_resp_free(&r);
    }
    ck_assert_int_eq(post_sample(&s[0], &r), 200);
    tsv_resp_free(&r);
    for (int i = 0; i < acked; i++) ck_assert(sample_on_disk(&s[i], 1));
    for (int j = k; j < k + 4; j++) ck_assert_msg(!sample_on_disk(&s[j], 0), "refused sample present");
    check_no_tmp(dirs[FS_FEEDBACK]);
    ck_assert_int_eq(tadm_http("GET", port, "/samples/stats", TADM_TOKEN, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq((int)tadm_json_num(r.body, "total"), acked);
    tsv_resp_free(&r);

    /* space back: the refused ones go in */
    unfill(FS_FEEDBACK);
    for (int j = k; j < k + 4; j++) {
        ck_assert_int_eq(post_sample(&s[j], &r), 201);
        tsv_resp_free(&r);
        ck_assert(sample_on_disk(&s[j], 1));
    }
    acked += 4;

    /* read-only: refused with its own code, nothing changes, then rw again */
    remount(FS_FEEDBACK, 1);
    int ro = k + 4;
    ck_assert_int_eq(post_sample(&s[ro], &r), 507);
    expect_error(&r, 507, "storage_read_only", "read-only");
    tsv_resp_free(&r);
    ck_assert_int_eq(post_sample(&s[1], &r), 200); /* a duplicate is still answered */
    tsv_resp_free(&r);
    remount(FS_FEEDBACK, 0);
    ck_assert(!sample_on_disk(&s[ro], 0));
    for (int i = 0; i < k + 4; i++) ck_assert(sample_on_disk(&s[i], 1));
    ck_assert_int_eq(post_sample(&s[ro], &r), 201);
    tsv_resp_free(&r);
    ck_assert(sample_on_disk(&s[ro], 1));
    acked++;
    check_no_tmp(dirs[FS_FEEDBACK]);
    fprintf(stderr, "samples: %d acknowledged until the disk was full, then 4 refused with 507 "
            "(none on disk, a duplicate still 200), stored once space was back; 1 refused while "
            "read-only, stored after remount rw; all %d acknowledged intact, no temporary left\n",
            before_full, acked);
    for (int i = 0; i < N; i++) free(s[i].png);
    free(s);
    check_predicts("samples");
}
END_TEST

/* ---- activation (manifest writes) ------------------------------------------------ */

START_TEST(test_activate_full_and_read_only)
{
    if (skipped("test_activate_full_and_read_only")) return;
    tsv_resp r;
    char *man0 = file_text(dirs[FS_STORE], "manifest.json");
    char *v1 = file_text(dirs[FS_STORE], "v0001.emod"), *v2 = file_text(dirs[FS_STORE], "v0002.emod");
    expect_version("v0001");

    fill(FS_STORE);
    ck_assert_int_eq(post("/models/v0002/activate", NULL, &r), 507);
    expect_error(&r, 507, "insufficient_storage", "disk is full");
    tsv_resp_free(&r);
    expect_version("v0001");
    check_no_tmp(dirs[FS_STORE]);
    char *man1 = file_text(dirs[FS_STORE], "manifest.json");
    ck_assert_str_eq(man1, man0);
    free(man1);
    expect_store_active("v0001");
    /* a restart on the full disk serves the recorded version */
    stop_server();
    start_server();
    expect_version("v0001");
    unfill(FS_STORE);
    ck_assert_int_eq(post("/models/v0002/activate", NULL, &r), 200);
    tsv_resp_free(&r);
    expect_version("v0002");
    expect_store_active("v0002");

    remount(FS_STORE, 1);
    man0 = (free(man0), file_text(dirs[FS_STORE], "manifest.json"));
    ck_assert_int_eq(post("/models/v0001/activate", NULL, &r), 507);
    expect_error(&r, 507, "storage_read_only", "read-only");
    tsv_resp_free(&r);
    expect_version("v0002");
    stop_server(); /* and a restart on the read-only store */
    start_server();
    expect_version("v0002");
    remount(FS_STORE, 0);
    man1 = file_text(dirs[FS_STORE], "manifest.json");
    ck_assert_str_eq(man1, man0);
    free(man1);
    check_no_tmp(dirs[FS_STORE]);
    ck_assert_int_eq(post("/models/v0001/activate", NULL, &r), 200);
    tsv_resp_free(&r);
    expect_version("v0001");
    expect_store_active("v0001");
    /* the version files were never touched */
    char *f = file_text(dirs[FS_STORE], "v0001.emod");
    ck_assert(!strcmp(f, v1));
    free(f);
    f = file_text(dirs[FS_STORE], "v0002.emod");
    ck_assert(!strcmp(f, v2));
    free(f);
    free(man0);
    free(v1);
    free(v2);
    check_predicts("activate");
}
END_TEST

/* ---- training: submit, checkpoints, the new version --------------------------------- */

static json_t *get_job(const char *id)
{
    char path[64];
    snprintf(path, sizeof path, "/train/%s", id);
    tsv_resp r;
    tadm_http("GET", port, path, TADM_TOKEN, NULL, NULL, 0, &r);
    json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    tsv_resp_free(&r);
    return j;
}

/* Waits for the end of job id; returns its record (state in state). */
static json_t *wait_job(const char *id, char *state, size_t len)
{
    char *b = tadm_wait_job(port, id, 60, state, len);
    ck_assert_msg(b != NULL, "job %s: %s", id, state);
    json_t *j = json_loads(b, 0, NULL);
    free(b);
    return j;
}

static void expect_failed_for(json_t *j, const char *code, const char *words)
{
    const char *st = json_string_value(json_object_get(j, "state"));
    const char *ec = json_string_value(json_object_get(j, "error_code"));
    const char *e = json_string_value(json_object_get(j, "error"));
    ck_assert_msg(st && !strcmp(st, "failed") && ec && !strcmp(ec, code) && e && strstr(e, words),
                  "job: state %s, error_code %s, error %s (expected failed, %s, \"%s\")", st, ec, e,
                  code, words);
}

static void resume_to_success(const char *body, const char *version)
{
    tsv_resp r;
    char state[32];
    ck_assert_msg(post("/train", body, &r) == 202, "%s: %ld %s", body, r.status, r.body);
    tsv_resp_free(&r);
    json_t *j = wait_job("j0001", state, sizeof state);
    ck_assert_msg(!strcmp(state, "succeeded"), "resumed job %s: %s", state,
                  json_string_value(json_object_get(j, "error")));
    json_decref(j);
    expect_version(version);
    expect_store_active(version);
}

START_TEST(test_train_submit_refused)
{
    if (skipped("test_train_submit_refused")) return;
    tsv_resp r;
    const char *body = "{\"epochs\": 1, \"batch\": 16}";
    fill(FS_JOBS);
    ck_assert_int_eq(post("/train", body, &r), 507);
    expect_error(&r, 507, "insufficient_storage", "disk is full");
    tsv_resp_free(&r);
    /* nothing accepted, nothing left: no job, no folder */
    ck_assert_int_eq(tadm_http("GET", port, "/train", TADM_TOKEN, NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 404);
    tsv_resp_free(&r);
    char path[300];
    snprintf(path, sizeof path, "%s/j0001", dirs[FS_JOBS]);
    ck_assert_msg(!fs_exists(path), "a job folder was left by a refused job");
    unfill(FS_JOBS);
    remount(FS_JOBS, 1);
    ck_assert_int_eq(post("/train", body, &r), 507);
    expect_error(&r, 507, "storage_read_only", "Read-only");
    tsv_resp_free(&r);
    remount(FS_JOBS, 0);
    char state[32];
    ck_assert_int_eq(post("/train", body, &r), 202);
    char id[32];
    tadm_json_str(r.body, "id", id, sizeof id);
    tsv_resp_free(&r);
    ck_assert_str_eq(id, "j0001"); /* the refused attempts took no id */
    json_decref(wait_job(id, state, sizeof state));
    ck_assert_msg(!strcmp(state, "succeeded") || !strcmp(state, "rejected"), "%s", state);
    check_predicts("train submit");
}
END_TEST

/* The job's checkpoint as it is on disk: loads (CRC checked) as a checkpoint. */
static void expect_checkpoint_loads(void)
{
    char path[300], err[512];
    snprintf(path, sizeof path, "%s/j0001/run/checkpoint.emod", dirs[FS_JOBS]);
    nn_model *m = NULL;
    char *ck = NULL;
    ck_assert_msg(nn_file_load(path, &m, NULL, 0, &ck, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_nonnull(ck);
    free(ck);
    nn_model_free(m);
    /* history.csv, if there, is whole: header, one line per epoch, final newline */
    snprintf(path, sizeof path, "%s/j0001/run/history.csv", dirs[FS_JOBS]);
    char *h = tadm_slurp(path);
    if (h[0]) {
        ck_assert_msg(!strncmp(h, "epoch,", 6) && h[strlen(h) - 1] == '\n', "history.csv cut: %s", h);
    }
    free(h);
}

static void checkpoint_fault(int read_only)
{
    tsv_resp r;
    char state[32];
    ck_assert_int_eq(post("/train", "{\"epochs\": 1000, \"batch\": 16, \"force\": true}", &r), 202);
    tsv_resp_free(&r);
    /* a few epochs (each ends with a checkpoint and a record), then the fault
     * lands at whatever the job is doing */
    double t0 = tadm_now();
    int epochs = 0;
    while (epochs < 1 && tadm_now() - t0 < 30) {
        json_t *j = get_job("j0001");
        epochs = (int)json_array_size(json_object_get(j, "history"));
        json_decref(j);
        usleep(2000);
    }
    ck_assert_int_ge(epochs, 1);
    if (read_only) remount(FS_JOBS, 1);
    else fill(FS_JOBS);
    json_t *j = wait_job("j0001", state, sizeof state);
    expect_failed_for(j, read_only ? "storage_read_only" : "insufficient_storage",
                      read_only ? "Read-only file system" : "No space left on device");
    int done = (int)json_array_size(json_object_get(j, "history"));
    fprintf(stderr, "checkpoint %s: job failed after %d epochs: %s\n", read_only ? "read-only" : "full",
            done, json_string_value(json_object_get(j, "error")));
    json_decref(j);
    expect_version("v0001");
    check_no_tmp(dirs[FS_JOBS]);
    expect_checkpoint_loads();
    expect_store_active("v0001");
    if (read_only) remount(FS_JOBS, 0);
    else unfill(FS_JOBS);
    char body[128];
    snprintf(body, sizeof body, "{\"resume\": \"j0001\", \"epochs\": %d}", done + 1);
    resume_to_success(body, "v0003");
    expect_checkpoint_loads();
}

START_TEST(test_checkpoint_disk_full)
{
    if (skipped("test_checkpoint_disk_full")) return;
    checkpoint_fault(0);
    check_predicts("checkpoint full");
}
END_TEST

START_TEST(test_checkpoint_read_only)
{
    if (skipped("test_checkpoint_read_only")) return;
    checkpoint_fault(1);
    check_predicts("checkpoint read-only");
}
END_TEST

START_TEST(test_model_save_full_and_read_only)
{
    if (skipped("test_model_save_full_and_read_only")) return;
    tsv_resp r;
    char state[32];
    char *man0 = file_text(dirs[FS_STORE], "manifest.json");
    /* the job's own folder has room; only the store is full */
    fill(FS_STORE);
    ck_assert_int_eq(post("/train", "{\"epochs\": 2, \"batch\": 16, \"force\": true}", &r), 202);
    tsv_resp_free(&r);
    json_t *j = wait_job("j0001", state, sizeof state);
    expect_failed_for(j, "insufficient_storage", "cannot save the new model version");
    fprintf(stderr, "model save full: %s\n", json_string_value(json_object_get(j, "error")));
    json_decref(j);
    expect_version("v0001");
    check_no_tmp(dirs[FS_STORE]);
    char path[300];
    snprintf(path, sizeof path, "%s/v0003.emod", dirs[FS_STORE]);
    ck_assert(!fs_exists(path));
    char *man1 = file_text(dirs[FS_STORE], "manifest.json");
    ck_assert_str_eq(man1, man0);
    free(man1);
    expect_store_active("v0001");
    /* read-only instead of full: the same, with its own code */
    unfill(FS_STORE);
    remount(FS_STORE, 1);
    ck_assert_int_eq(post("/train", "{\"resume\": \"j0001\"}", &r), 202);
    tsv_resp_free(&r);
    j = wait_job("j0001", state, sizeof state);
    expect_failed_for(j, "storage_read_only", "cannot save the new model version");
    json_decref(j);
    expect_version("v0001");
    remount(FS_STORE, 0);
    man1 = file_text(dirs[FS_STORE], "manifest.json");
    ck_assert_str_eq(man1, man0);
    free(man1);
    free(man0);
    check_no_tmp(dirs[FS_STORE]);
    /* room again: resuming saves and activates the version */
    resume_to_success("{\"resume\": \"j0001\"}", "v0003");
    check_predicts("model save");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("faults_disk");
    TCase *tc = tcase_create("disk");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_samples_full_and_read_only);
    tcase_add_test(tc, test_activate_full_and_read_only);
    tcase_add_test(tc, test_train_submit_refused);
    tcase_add_test(tc, test_checkpoint_disk_full);
    tcase_add_test(tc, test_checkpoint_read_only);
    tcase_add_test(tc, test_model_save_full_and_read_only);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
