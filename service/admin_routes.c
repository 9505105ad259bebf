/* admin_routes.c - dispatch of the admin API, /train and /models (see
 * admin_routes.h); /samples is in admin_samples.c. */
#include "admin_routes.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "fsutil.h"
#include "json_response.h"
#include "samples.h"
#include "train_opts.h"

static int has_prefix(const char *path, const char *p)
{
    size_t n = strlen(p);
    return !strncmp(path, p, n) && (path[n] == '\0' || path[n] == '/');
}

int admin_is_path(const char *path)
{
    return has_prefix(path, "/train") || has_prefix(path, "/models") ||
           has_prefix(path, "/samples");
}

static void ok(admin_response *out, int status, char *body)
{
    out->status = body ? status : 503;
    out->code = body ? NULL : "out_of_memory";
    out->body = body;
}

static void not_allowed(admin_response *out, const char *allow)
{
    char msg[96];
    snprintf(msg, sizeof msg, "allowed methods: %s", allow);
    out->allow = allow;
    admin_fail(out, 405, "method_not_allowed", msg);
}

static int need_store(admin_api *a, admin_response *out)
{
    if (a->d.store && a->jobs) return 0;
    admin_fail(out, 503, "not_configured",
               "no model store: start the server with --model-dir DIR (model_dir, "
               "EMOTIOND_MODEL_DIR)");
    return -1;
}

/* 400 with the offending field inside the error object. */
static void bad_field(admin_response *out, const char *code, const char *field, const char *msg)
{
    json_t *e = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code, "message", msg, "field", field);
    if (!e) { /* a field name cut inside a UTF-8 character (train_opts.c keeps 100 bytes) */
        char *m = jr_utf8_safe(msg), *f = jr_utf8_safe(field);
        if (m && f) e = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code, "message", m, "field", f);
        free(m);
        free(f);
    }
    out->status = 400;
    out->code = code;
    out->body = e ? json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(e);
}

static void post_train(admin_api *a, const admin_request *q, admin_response *out)
{
    char field[128], msg[512], id[32] = "";
    json_t *opts = NULL;
    if (topt_parse((const char *)q->body, q->len, &opts, field, sizeof field, msg, sizeof msg)) {
        if (field[0]) bad_field(out, "invalid_option", field, msg);
        else admin_fail(out, 400, "invalid_json", msg);
        return;
    }
    int rc = tj_submit(a->jobs, opts, id, sizeof id, field, sizeof field, msg, sizeof msg);
    switch (rc) {
    case TJ_OK:
        snprintf(out->location, sizeof out->location, "/train/%s", id);
        ok(out, 202, tj_get_json(a->jobs, id));
        return;
    case TJ_BUSY: {
        json_t *e = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", "job_running", "message", msg,
                              "job", id);
        out->status = 409;
        out->code = "job_running";
        out->body = e ? json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(e);
        snprintf(out->location, sizeof out->location, "/train/%s", id);
        return;
    }
    case TJ_BAD: bad_field(out, "invalid_option", field, msg); return;
    case TJ_NOT_FOUND: admin_fail(out, 404, "job_not_found", msg); return;
    case TJ_CONFLICT: admin_fail(out, 409, "not_resumable", msg); return;
    case TJ_STORAGE: {
        /* the job's folder or record cannot be written: 507 when the disk
         * is full or read-only, so that the client knows to retry later */
        const char *code;
        int status = fs_storage_status(errno, &code, NULL);
        admin_fail(out, status, code, msg);
        return;
    }
    default: admin_fail(out, 500, "internal_error", msg); return;
    }
}

static void train_routes(admin_api *a, const admin_request *q, admin_response *out)
{
    const char *rest = q->path + strlen("/train");
    if (!*rest || !strcmp(rest, "/")) {
        if (!strcmp(q->method, "POST")) {
            post_train(a, q, out);
        } else if (!strcmp(q->method, "GET") || !strcmp(q->method, "HEAD")) {
            char *j = tj_get_json(a->jobs, NULL);
            if (j) ok(out, 200, j);
            else admin_fail(out, 404, "job_not_found", "no training job has run yet");
        } else {
            not_allowed(out, "GET, HEAD, POST");
        }
        return;
    }
    const char *id = rest + 1;
    if (!tj_valid_id(id)) {
        admin_fail(out, 404, "job_not_found", "no training job with that id");
        return;
    }
    if (!strcmp(q->method, "GET") || !strcmp(q->method, "HEAD")) {
        char *j = tj_get_json(a->jobs, id);
        if (j) ok(out, 200, j);
        else admin_fail(out, 404, "job_not_found", "no training job with that id");
    } else if (!strcmp(q->method, "DELETE")) {
        char *j = NULL;
        int rc = tj_cancel(a->jobs, id, &j);
        if (rc == TJ_OK) {
            ok(out, 202, j);
            return;
        }
        free(j);
        if (rc == TJ_NOT_FOUND) admin_fail(out, 404, "job_not_found", "no training job with that id");
        else admin_fail(out, 409, "job_finished", "the job is not running: nothing to cancel");
    } else {
        not_allowed(out, "GET, HEAD, DELETE");
    }
}

static void activate_route(admin_api *a, const char *id, admin_response *out)
{
    char err[512], prev[MS_ID_MAX] = "";
    ms_active(a->d.store, prev, sizeof prev);
    int rc = ms_valid_id(id) ? admin_activate_rc(a, id, err, sizeof err) : ADMIN_ACT_NOT_FOUND;
    if (rc == ADMIN_ACT_NOT_FOUND) {
        admin_fail(out, 404, "model_not_found", "no model version with that id");
        return;
    }
    if (rc == ADMIN_ACT_INVALID) {
        admin_fail(out, 422, "invalid_model", err);
        return;
    }
    if (rc) {
        /* the manifest could not be written: the previous version still
         * serves and is still the one recorded; a full or read-only disk is
         * the operator's to fix (507), anything else is ours (500) */
        int e = errno;
        const char *code, *hint;
        int status = fs_storage_status(e, &code, &hint);
        char msg[800];
        snprintf(msg, sizeof msg, "%s%s%s", status == 507 ? hint : "", status == 507 ? "; " : "", err);
        admin_fail(out, status, code, msg);
        return;
    }
    json_t *j = json_pack("{s:s,s:s?}", "active", id, "previous", prev[0] ? prev : NULL);
    ok(out, 200, j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL);
    json_decref(j);
}

static void models_routes(admin_api *a, const admin_request *q, admin_response *out)
{
    const char *rest = q->path + strlen("/models");
    if (!*rest || !strcmp(rest, "/")) {
        if (strcmp(q->method, "GET") && strcmp(q->method, "HEAD")) {
            not_allowed(out, "GET, HEAD");
            return;
        }
        ok(out, 200, ms_list_json(a->d.store));
        return;
    }
    char id[MS_ID_MAX + 1];
    const char *slash = strchr(rest + 1, '/');
    size_t n = slash ? (size_t)(slash - rest - 1) : strlen(rest + 1);
    if (!slash || strcmp(slash, "/activate") || n >= sizeof id) {
        admin_fail(out, 404, "not_found", "no such resource");
        return;
    }
    memcpy(id, rest + 1, n);
    id[n] = '\0';
    if (strcmp(q->method, "POST")) {
        not_allowed(out, "POST");
        return;
    }
    activate_route(a, id, out);
}

static void samples_routes(admin_api *a, const admin_request *q, admin_response *out)
{
    if (!a->d.cfg->data_dir[0]) {
        admin_fail(out, 503, "not_configured",
                   "no data directory: start the server with --data-dir DIR (data_dir, "
                   "EMOTIOND_DATA_DIR)");
        return;
    }
    if (!strcmp(q->path, "/samples")) {
        if (strcmp(q->method, "POST")) not_allowed(out, "POST");
        else admin_post_samples(a, q, out);
    } else if (!strcmp(q->path, "/samples/stats")) {
        if (strcmp(q->method, "GET") && strcmp(q->method, "HEAD")) not_allowed(out, "GET, HEAD");
        else ok(out, 200, samples_stats_json(a->d.cfg->data_dir));
    } else {
        admin_fail(out, 404, "not_found", "no such resource");
    }
}

void admin_handle(admin_api *a, const admin_request *q, admin_response *out)
{
    memset(out, 0, sizeof *out);
    if (has_prefix(q->path, "/samples")) {
        samples_routes(a, q, out);
        return;
    }
    if (need_store(a, out)) return;
    if (has_prefix(q->path, "/train")) train_routes(a, q, out);
    else models_routes(a, q, out);
}
