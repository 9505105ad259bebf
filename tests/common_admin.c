/* common_admin.c - see common_admin.h. */
#include "common_admin.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common_imgtest.h"
#include "dataset.h"

extern char **environ;

double tadm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void tadm_face(int k, int i, uint8_t *px)
{
    uint64_t r = (uint64_t)(k * 7919 + i * 104729 + 12345);
    for (int p = 0; p < 48 * 48; p++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        px[p] = (uint8_t)(40 + ((r >> 33) & 31));
    }
    int y0 = 3 + 6 * k;
    for (int y = y0; y < y0 + 4; y++)
        for (int x = 4; x < 44; x++) px[y * 48 + x] = 220;
}

static void make_split(const char *root, const char *split, int n, int offset)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, split);
    mkdir(path, 0755);
    for (int k = 0; k < DS_NUM_CLASSES; k++) {
        snprintf(path, sizeof path, "%s/%s/%s", root, split, ds_class_names[k]);
        mkdir(path, 0755);
        for (int i = 0; i < n; i++) {
            uint8_t px[48 * 48];
            size_t len;
            tadm_face(k, i + offset, px);
            uint8_t *png = imgt_png_gray8(48, 48, px, &len);
            snprintf(path, sizeof path, "%s/%s/%s/%03d.png", root, split, ds_class_names[k], i);
            imgt_write_file(path, png, len);
            free(png);
        }
    }
}

void tadm_make_dataset(const char *root, int per_train, int per_test)
{
    make_split(root, "train", per_train, 0);
    make_split(root, "test", per_test, 500);
}

void tadm_config(svc_config *c, const char *model_path, const char *model_dir,
                 const char *data_dir)
{
    tsv_test_config(c, model_path);
    if (model_dir) snprintf(c->model_dir, sizeof c->model_dir, "%s", model_dir);
    if (data_dir) snprintf(c->data_dir, sizeof c->data_dir, "%s", data_dir);
    snprintf(c->admin_token, sizeof c->admin_token, "%s", TADM_TOKEN);
    c->train_threads = 1;
}

int tadm_http(const char *method, int port, const char *path, const char *token,
              const char *content_type, const void *body, size_t len, tsv_resp *r)
{
    char auth[512], ct[256];
    const char *h[3] = {NULL, NULL, NULL};
    int n = 0;
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h[n++] = auth;
    }
    if (content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        h[n++] = ct;
    }
    return tsv_http(method, port, path, h, body, len, r);
}

static json_t *walk(json_t *root, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *v = root;
    for (char *save = NULL, *t = strtok_r(buf, ".", &save); t && v; t = strtok_r(NULL, ".", &save))
        v = json_object_get(v, t);
    return v;
}

int tadm_json_str(const char *json, const char *path, char *out, size_t outlen)
{
    json_t *root = json_loads(json ? json : "", 0, NULL);
    const char *s = json_string_value(walk(root, path));
    if (s) snprintf(out, outlen, "%s", s);
    else if (outlen) out[0] = '\0';
    json_decref(root);
    return s ? 0 : -1;
}

double tadm_json_num(const char *json, const char *path)
{
    json_t *root = json_loads(json ? json : "", 0, NULL);
    json_t *v = walk(root, path);
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    json_decref(root);
    return x;
}

char *tadm_wait_job(int port, const char *id, double timeout, char *state, size_t statelen)
{
    char path[128];
    snprintf(path, sizeof path, "/train/%s", id);
    double t0 = tadm_now();
    for (;;) {
        tsv_resp r;
        if (tadm_http("GET", port, path, TADM_TOKEN, NULL, NULL, 0, &r) == 0 && r.status == 200) {
            tadm_json_str(r.body, "state", state, statelen);
            if (strcmp(state, "queued") && strcmp(state, "running")) return r.body;
        }
        tsv_resp_free(&r);
        if (tadm_now() - t0 > timeout) {
            snprintf(state, statelen, "timeout");
            return NULL;
        }
        usleep(20000);
    }
}

int tadm_predict_version(int port, char *version, size_t len)
{
    uint8_t px[48 * 48];
    size_t n;
    tadm_face(3, 7, px);
    uint8_t *png = imgt_png_gray8(48, 48, px, &n);
    tsv_resp r;
    int rc = tadm_http("POST", port, "/predict", NULL, "image/png", png, n, &r);
    free(png);
    if (rc == 0 && r.status == 200) rc = tadm_json_str(r.body, "model.version", version, len);
    else rc = -1;
    tsv_resp_free(&r);
    return rc;
}

void tadm_spawn(tadm_proc *p, const char *const *args)
{
    const char *build = getenv("BUILD");
    char exe[512];
    snprintf(exe, sizeof exe, "%s/emotiond", build && *build ? build : "build");
    snprintf(p->log, sizeof p->log, "/tmp/emotiond-admlog-XXXXXX");
    int fd = mkstemp(p->log);
    ck_assert_int_ge(fd, 0);
    char *argv[64];
    int n = 0;
    argv[n++] = exe;
    argv[n++] = "serve";
    for (const char *const *a = args; *a && n < 60; a++) argv[n++] = (char *)*a;
    argv[n] = NULL;
    char *envp[512];
    int m = 0;
    for (char **e = environ; *e && m < 500; e++)
        if (strncmp(*e, "EMOTIOND_", 9)) envp[m++] = *e;
    envp[m++] = "EMOTIOND_ADMIN_TOKEN=" TADM_TOKEN;
    envp[m] = NULL;
    p->pid = fork();
    ck_assert_int_ge(p->pid, 0);
    if (p->pid == 0) {
        dup2(fd, 2);
        execve(exe, argv, envp);
        _exit(127);
    }
    close(fd);
    p->port = 0;
}

char *tadm_slurp(const char *path)
{
    size_t len = 0;
    uint8_t *b = tsv_read_file(path, &len);
    char *s = malloc(len + 1);
    if (b) memcpy(s, b, len);
    s[b ? len : 0] = '\0';
    free(b);
    return s;
}

int tadm_wait_ready(tadm_proc *p, double timeout)
{
    double t0 = tadm_now();
    while (tadm_now() - t0 < timeout) {
        char *s = tadm_slurp(p->log);
        const char *q = strstr(s, "ready on port ");
        if (q) p->port = atoi(q + strlen("ready on port "));
        free(s);
        if (p->port > 0) return 0;
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) return -1;
        usleep(20000);
    }
    return -1;
}

void tadm_kill9(tadm_proc *p)
{
    int st;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &st, 0);
}
