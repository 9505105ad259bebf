/* common_admin.h - helpers for the admin API tests: a small learnable
 * dataset in the Kaggle layout, servers configured with a model store and a
 * token, authenticated requests, polling of training jobs, and an
 * `emotiond serve` subprocess for the kill -9 tests. */
#ifndef TESTS_COMMON_ADMIN_H
#define TESTS_COMMON_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common_svc.h"

#define TADM_TOKEN "s3cret-t0ken-for-tests"

/* A 48x48 image of class k (a bright bar at a class-specific height), i
 * varies the noise. */
void tadm_face(int k, int i, uint8_t *px);

/* root/train/<class>/NNN.png (per_train each) and root/test/<class>/ (per_test). */
void tadm_make_dataset(const char *root, int per_train, int per_test);

/* tsv_test_config plus model_dir, data_dir and the token. */
void tadm_config(svc_config *c, const char *model_path, const char *model_dir,
                 const char *data_dir);

/* A request with "Authorization: Bearer TADM_TOKEN" (token NULL: none) and
 * optional Content-Type. */
int tadm_http(const char *method, int port, const char *path, const char *token,
              const char *content_type, const void *body, size_t len, tsv_resp *r);

/* A string member of the JSON body (dotted path "error.code"), copied to out. */
int tadm_json_str(const char *json, const char *path, char *out, size_t outlen);
/* A number member (NAN when absent). */
double tadm_json_num(const char *json, const char *path);

/* Polls GET /train/{id} until the state is not queued/running (timeout s);
 * the final state goes to state, and the body (malloc'ed) is returned. */
char *tadm_wait_job(int port, const char *id, double timeout, char *state, size_t statelen);

/* The model version /predict answers with for a test face. */
int tadm_predict_version(int port, char *version, size_t len);

/* `$BUILD/emotiond serve` with args, stderr to a log file. */
typedef struct {
    pid_t pid;
    char log[64];
    int port;
} tadm_proc;

void tadm_spawn(tadm_proc *p, const char *const *args);
/* Waits for "ready on port"; 0 when up. */
int tadm_wait_ready(tadm_proc *p, double timeout);
void tadm_kill9(tadm_proc *p);
char *tadm_slurp(const char *path);

double tadm_now(void);

#endif
