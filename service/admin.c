/* admin.c - the admin API's life cycle, authentication and model activation
 * (see admin_routes.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "json_response.h"
#include "model_ref.h"
#include "request_log.h"

void admin_fail(admin_response *out, int status, const char *code, const char *msg)
{
    out->status = status;
    out->code = code;
    free(out->body);
    out->body = jr_error(code, msg);
}

/* The hot swap: the file is loaded and checked here, off the request path;
 * the new version is recorded durably, then published to the pool, whose
 * workers each take it between two requests (worker_pool.c). A crash before
 * the manifest write serves the old version after restart, after it the new
 * one: never a half state. */
int admin_activate_rc(admin_api *a, const char *version, char *err, size_t errlen)
{
    char path[1400];
    int rc = ADMIN_ACT_OK, saved = 0;
    if (!a->d.store || ms_file_path(a->d.store, version, path, sizeof path)) {
        snprintf(err, errlen, "no model version '%s' in the store", version);
        return ADMIN_ACT_NOT_FOUND;
    }
    pthread_mutex_lock(&a->swap_mu);
    svc_model *m = sm_load(path, err, errlen);
    if (!m) {
        rc = ADMIN_ACT_INVALID;
        goto out;
    }
    if (ms_set_active(a->d.store, version, err, errlen)) {
        rc = ADMIN_ACT_IO;
        saved = errno; /* a full or read-only store: the route answers 507 */
        goto out;
    }
    wp_set_model(a->d.pool, m);
    rlog_event(a->d.log, a->d.cfg->log_format, "info", "model %s version %s activated", m->id,
               m->version);
out:
    sm_unref(m);
    pthread_mutex_unlock(&a->swap_mu);
    /* only an I/O failure has a cause for the caller to read (0 otherwise,
     * so that a stale ENOSPC is not taken for one) */
    errno = rc == ADMIN_ACT_IO ? saved : 0;
    return rc;
}

int admin_activate(admin_api *a, const char *version, char *err, size_t errlen)
{
    return admin_activate_rc(a, version, err, errlen) ? -1 : 0;
}

static int activate_cb(void *ctx, const char *version, char *err, size_t errlen)
{
    return admin_activate(ctx, version, err, errlen);
}

static svc_model *current_cb(void *ctx)
{
    admin_api *a = ctx;
    return wp_get_model(a->d.pool);
}

admin_api *admin_create(const admin_deps *d, char *err, size_t errlen)
{
    admin_api *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->d = *d;
    pthread_mutex_init(&a->swap_mu, NULL);
    if (admin_token_resolve(d->cfg, a->token, sizeof a->token, err, errlen)) goto err;
    if (d->store) {
        tj_deps td = {d->store,          d->cfg->model_dir, d->cfg->data_dir,
                      d->cfg->arch_dir,  d->cfg->train_threads, d->cfg->train_nice,
                      d->log,            d->cfg->log_format, activate_cb,
                      current_cb,        a};
        a->jobs = tj_create(&td, err, errlen);
        if (!a->jobs) goto err;
    }
    rlog_event(d->log, d->cfg->log_format, "info",
               "admin API %s", a->token[0] ? "enabled (Bearer token)"
                                           : "disabled: no admin token configured");
    return a;
err:
    admin_destroy(a);
    return NULL;
}

void admin_stop(admin_api *a)
{
    if (a && a->jobs) tj_stop(a->jobs);
}

void admin_destroy(admin_api *a)
{
    if (!a) return;
    tj_destroy(a->jobs);
    memset(a->token, 0, sizeof a->token);
    pthread_mutex_destroy(&a->swap_mu);
    free(a);
}

admin_auth_result admin_check(admin_api *a, const char *authorization)
{
    return admin_auth_check(a->token, authorization);
}

void admin_auth_response(admin_auth_result r, admin_response *out)
{
    switch (r) {
    case ADMIN_AUTH_DISABLED:
        admin_fail(out, 403, "admin_disabled",
                   "the admin API is disabled: configure a token with admin_token (config file), "
                   "EMOTIOND_ADMIN_TOKEN, --admin-token or admin_token_file, then send "
                   "\"Authorization: Bearer <token>\"");
        return;
    case ADMIN_AUTH_MISSING:
        admin_fail(out, 401, "unauthorized",
                   "the admin API needs an \"Authorization: Bearer <token>\" header");
        return;
    case ADMIN_AUTH_WRONG:
        admin_fail(out, 401, "invalid_token", "the Bearer token is not valid");
        return;
    case ADMIN_AUTH_OK:
        break;
    }
    out->status = 0;
}
