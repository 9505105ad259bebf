/* admin_routes.h - the admin API behind Bearer authentication: training
 * jobs (/train), model versions (/models), feedback samples (/samples).
 *
 * http_server.c recognises admin paths (admin_is_path), checks the token
 * from the headers before reading any body (admin_check), collects the body
 * and hands the whole request to admin_handle on its HTTP thread: every
 * handler is short (a file write, a model load), training itself runs on the
 * job thread of train_job.c. */
#ifndef SERVICE_ADMIN_ROUTES_H
#define SERVICE_ADMIN_ROUTES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "admin_auth.h"
#include "config.h"
#include "model_store.h"
#include "worker_pool.h"

typedef struct admin_api admin_api;

typedef struct {
    const svc_config *cfg; /* must outlive the admin API */
    wp_pool *pool;
    ms_store *store;       /* NULL without model_dir: /models and /train answer 503 */
    FILE *log;
} admin_deps;

typedef struct {
    const char *method;
    const char *path;          /* without the query string */
    const char *content_type;  /* may be NULL */
    const char *label;         /* ?label= of POST /samples, may be NULL */
    const uint8_t *body;
    size_t len;
} admin_request;

typedef struct {
    int status;
    char *body;                /* malloc'ed JSON; NULL = out of memory */
    const char *code;          /* error code (static) or NULL */
    char location[128];        /* Location header, "" for none */
    const char *allow;         /* Allow header for 405 */
} admin_response;

admin_api *admin_create(const admin_deps *d, char *err, size_t errlen);

/* Asks a running training job to stop (shutdown begins). */
void admin_stop(admin_api *a);

/* Waits for the training thread and frees. */
void admin_destroy(admin_api *a);

/* 1 for the paths the admin API owns (/train, /models, /samples, below). */
int admin_is_path(const char *path);

admin_auth_result admin_check(admin_api *a, const char *authorization);

/* The 401/403 answer for a failed check. */
void admin_auth_response(admin_auth_result r, admin_response *out);

void admin_handle(admin_api *a, const admin_request *q, admin_response *out);

/* Makes a stored version the served one (as POST /models/{id}/activate). */
int admin_activate(admin_api *a, const char *version, char *err, size_t errlen);

#endif
