/* http_server.c - libmicrohttpd front end (see http_server.h).
 *
 * Life of a request (one `req` per request, in libmicrohttpd's con_cls):
 *  1. first call (headers only): route, method, and for POST /predict the
 *     Content-Type and Content-Length checks. Anything that can be answered
 *     from the headers is answered here, before the body is read.
 *  2. body calls: bytes are counted (413 past the limit) and stored, or fed
 *     to the multipart parser which keeps only the "image" field.
 *  3. last call: the connection is suspended and the job queued; a worker
 *     runs it and resumes the connection (or the queue is full: 503 at once).
 *  4. the call after resume queues the worker's answer.
 *  5. the completion callback logs the request, counts it and frees `req`.
 */
#include "http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "face_detect.h"
#include "json_response.h"
#include "multipart.h"
#include "predict.h"
#include "request_log.h"
#include "routes.h"
#include "web_assets.h"

/* After a chunked body passes the limit, up to this much more is read and
 * dropped so that the client still gets its 413 (libmicrohttpd can only
 * answer once the body is in); beyond it the connection is closed. */
#define DRAIN_SLACK (1u << 20)
#define PREALLOC_MAX ((size_t)64 * 1024)

struct srv_server {
    srv_deps d;
    struct MHD_Daemon *mhd;
    int port;
    atomic_int shutting_down;
    atomic_ullong seq;      /* request ids */
    uint32_t id_prefix;
    fd_cascade *cascade;    /* face detector shared read-only by the jobs; NULL = none */
    MHD_socket quiesced;    /* listening socket handed back by MHD_quiesce_daemon */
};

enum { PH_HEADERS, PH_DEFERRED, PH_BODY, PH_QUEUED, PH_DONE, PH_ANSWERED };

typedef struct {
    srv_server *srv;
    struct MHD_Connection *conn;
    route_id route;
    route_result rr;
    const char *method; /* static string */
    char path[256];
    char id[RLOG_ID_MAX + 1];
    const char *origin; /* allowed Origin to echo, NULL when none */
    const char *allow;
    double t0;
    atomic_int phase;
    /* body */
    body_form form;
    uint8_t *body;
    size_t len, cap;
    unsigned long long received;
    int too_large;
    mp_parser *mp;
    int top;
    faces_mode faces;
    int max_faces;
    predict_job job;
    /* admin API: the token was checked from the headers; a refused request's
     * body is dropped, not stored */
    int admin;
    admin_auth_result auth;
    char location[128];
    const web_asset *asset; /* a file of the web page: its CSP, ETag, caching */
    /* answer, for the log and metrics */
    int status;
    size_t bytes;
    const char *error_code;
} req;

static void log_event(srv_server *s, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_event(srv_server *s, const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rlog_event(s->d.log, s->d.cfg->log_format, level, "%s", msg);
}

/* libmicrohttpd's own messages (bad requests it rejects itself, ...). */
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    srv_server *s = cls;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    rlog_event(s->d.log, s->d.cfg->log_format, "warn", "libmicrohttpd: %s", msg);
}

static const char *static_method(const char *m)
{
    static const char *known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                                  "TRACE", "CONNECT"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(m, known[i])) return known[i];
    return "OTHER";
}

static const char *allowed_origin(srv_server *s, const char *origin)
{
    if (!origin || !*origin) return NULL;
    const svc_config *c = s->d.cfg;
    for (int i = 0; i < c->cors_count; i++) {
        if (!strcmp(c->cors_origins[i], "*")) return "*";
        if (!strcmp(c->cors_origins[i], origin)) return origin;
    }
    return NULL;
}

/* Queues a response. body is freed by libmicrohttpd when owned. Every
 * answer of the service is built here, so the headers common to all (request
 * id, nosniff, Content-Security-Policy, caching, CORS) are set in one place. */
static enum MHD_Result respond(req *r, int status, const char *ctype, const char *body,
                               size_t len, int owned, const char *error_code)
{
    srv_server *s = r->srv;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, (void *)body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        if (owned) free((void *)body);
        return MHD_NO;
    }
    if (ctype) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* The page gets its own policy; anything else (JSON, text) may load
     * nothing and be framed nowhere. */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            r->asset ? web_page_csp : web_api_csp);
    if (r->asset) {
        /* Revalidated on each use (a 304 while the binary is the same). */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, r->asset->etag);
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    } else {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    }
    if (status == 503) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", s->d.cfg->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if ((status == 405 || status == 204) && r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->location[0]) MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"emotiond-admin\"");
    if (r->origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->origin);
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
        if (strcmp(r->origin, "*")) MHD_add_response_header(resp, "Vary", "Origin");
        if (status == 204 && r->allow) {
            MHD_add_response_header(resp, "Access-Control-Allow-Methods", r->allow);
            MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                    "Content-Type, X-Request-Id");
            MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        }
    }
    /* While draining, answered connections are not kept alive. */
    if (atomic_load(&s->shutting_down))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->status = status;
    r->bytes = len;
    r->error_code = error_code;
    atomic_store(&r->phase, PH_ANSWERED);
    return ret;
}

static enum MHD_Result respond_json(req *r, int status, char *json, const char *error_code)
{
    if (!json) {
        return respond(r, 503, "application/json", jr_oom_body, strlen(jr_oom_body), 0,
                       "out_of_memory");
    }
    return respond(r, status, "application/json", json, strlen(json), 1, error_code);
}

static enum MHD_Result respond_error(req *r, int status, const char *code, const char *msg)
{
    return respond_json(r, status, jr_error(code, msg), code);
}

static void free_body(req *r)
{
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
}

/* ---- GET endpoints ------------------------------------------------------- */

static int is_ready(srv_server *s, const char **reason)
{
    if (atomic_load(&s->shutting_down)) {
        *reason = "shutting_down";
        return 0;
    }
    wp_stats st;
    wp_get_stats(s->d.pool, &st);
    if (st.queue_depth >= st.queue_capacity) {
        *reason = "queue_full";
        return 0;
    }
    *reason = NULL;
    return 1;
}

/* If-None-Match holds this ETag (or "*"): the client's copy is current. */
static int etag_matches(const char *inm, const char *etag)
{
    if (!inm) return 0;
    size_t n = strlen(etag);
    for (const char *p = inm; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (!strncmp(p, "W/", 2)) p += 2; /* weak comparison, as RFC 9110 asks for GET */
        if (*p == '*' || (!strncmp(p, etag, n) && (p[n] == '\0' || p[n] == ',' || p[n] == ' ')))
            return 1;
        while (*p && *p != ',') p++;
    }
    return 0;
}

/* GET / (index.html), /app.js, /style.css: the page embedded in the binary. */
static enum MHD_Result handle_asset(req *r)
{
    const web_asset *a = web_asset_find(r->path);
    if (!a) return respond_error(r, 404, "not_found", "no such resource");
    r->asset = a;
    const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (etag_matches(inm, a->etag)) return respond(r, 304, NULL, "", 0, 0, NULL);
    return respond(r, 200, web_asset_type(a), (const char *)a->data, a->len, 0, NULL);
}

static enum MHD_Result handle_get(req *r)
{
    srv_server *s = r->srv;
    switch (r->route) {
    case ROUTE_HEALTHZ:
    case ROUTE_LIVEZ:
        return respond_json(r, 200, jr_status("ok", NULL), NULL);
    case ROUTE_READYZ: {
        const char *reason;
        if (is_ready(s, &reason)) return respond_json(r, 200, jr_status("ready", NULL), NULL);
        return respond_json(r, 503, jr_status("not_ready", reason), NULL);
    }
    case ROUTE_MODEL: {
        svc_model *m = wp_get_model(s->d.pool);
        char *body = strdup(m->info_json);
        sm_unref(m);
        return respond_json(r, 200, body, NULL);
    }
    case ROUTE_METRICS: {
        wp_stats st;
        wp_get_stats(s->d.pool, &st);
        svc_model *m = wp_get_model(s->d.pool);
        const char *reason;
        metrics_gauges g = {st.queue_depth, st.queue_capacity, st.workers,    st.busy,
                            st.busy_seconds, m->id,            m->version,    is_ready(s, &reason),
                            st.batches};
        size_t len = 0;
        char *text = metrics_render(s->d.met, &g, &len);
        sm_unref(m);
        if (!text) return respond_json(r, 503, NULL, "out_of_memory");
        return respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, 1, NULL);
    }
    case ROUTE_ROOT:
    case ROUTE_STATIC:
        return handle_asset(r);
    case ROUTE_OPENAPI:
        if (!s->d.openapi)
            return respond_error(r, 404, "not_found", "the API description is not available");
        return respond(r, 200, "application/yaml", s->d.openapi, s->d.openapi_len, 0, NULL);
    default:
        return respond_error(r, 404, "not_found", "no such resource");
    }
}

/* ---- POST /predict -------------------------------------------------------- */

/* Lower-cased media type without parameters. */
static void media_type(const char *ct, char *out, size_t outlen)
{
    size_t o = 0;
    while (*ct == ' ' || *ct == '\t') ct++;
    for (; *ct && *ct != ';' && *ct != ' ' && o + 1 < outlen; ct++)
        out[o++] = (char)(*ct >= 'A' && *ct <= 'Z' ? *ct + 32 : *ct);
    out[o] = '\0';
}

static enum MHD_Result predict_headers(req *r)
{
    srv_server *s = r->srv;
    const svc_config *cfg = s->d.cfg;
    struct MHD_Connection *c = r->conn;

    if (atomic_load(&s->shutting_down))
        return respond_error(r, 503, "shutting_down", "the server is shutting down");
    /* Already saturated: say so now instead of reading a body that would be
     * refused anyway (the submit below re-checks, this is only a shortcut).
     * Only for a client that asked "Expect: 100-continue" and waits for the
     * go-ahead: one already sending its body could be reset by the close
     * that follows an early answer before it reads the 503 (seen under
     * TSan with 2 MB uploads). Its body is read and the submit answers. */
    wp_stats st;
    wp_get_stats(s->d.pool, &st);
    if (st.queue_depth >= st.queue_capacity &&
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT)) {
        atomic_fetch_add(&s->d.met->queue_rejections, 1);
        return respond_error(r, 503, "queue_full", "the server is busy; retry later");
    }

    const char *top = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "top");
    if (top) {
        char *end = NULL;
        long k = strtol(top, &end, 10);
        if (!*top || *end || k < 1 || k > 256)
            return respond_error(r, 400, "invalid_parameter",
                                 "top must be an integer from 1 to the number of classes");
        r->top = (int)k;
    }
    const char *faces = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "faces");
    if (faces && !strcmp(faces, "detect")) r->faces = FACES_DETECT;
    else if (faces && !strcmp(faces, "none")) r->faces = FACES_NONE;
    else if (faces && strcmp(faces, "auto"))
        return respond_error(r, 400, "invalid_parameter", "faces must be auto, detect or none");
    r->max_faces = cfg->max_faces;
    const char *mf = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "max_faces");
    if (mf) {
        char *end = NULL;
        long k = strtol(mf, &end, 10);
        if (!*mf || *end || k < 1 || k > 256)
            return respond_error(r, 400, "invalid_parameter",
                                 "max_faces must be an integer from 1 to 256");
        if (k < r->max_faces) r->max_faces = (int)k; /* the server's limit still holds */
    }

    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    char mt[64];
    media_type(ct ? ct : "", mt, sizeof mt);
    if (!strcmp(mt, "image/png") || !strcmp(mt, "image/jpeg") || !strcmp(mt, "image/jpg") ||
        !strcmp(mt, "application/octet-stream")) {
        r->form = BODY_RAW;
    } else if (!strcmp(mt, "application/json")) {
        r->form = BODY_JSON;
    } else if (!strcmp(mt, "multipart/form-data")) {
        char boundary[MP_MAX_BOUNDARY + 1];
        if (mp_boundary_from_content_type(ct, boundary, sizeof boundary)) {
            metrics_decode_failure(s->d.met, "invalid_multipart");
            return respond_error(r, 400, "invalid_multipart",
                                 "multipart/form-data needs a valid boundary parameter");
        }
        r->form = BODY_MULTIPART;
        r->mp = malloc(sizeof *r->mp);
        if (!r->mp) return respond_error(r, 503, "out_of_memory", "out of memory");
        mp_init(r->mp, boundary, "image", (size_t)cfg->max_body_bytes);
    } else {
        metrics_decode_failure(s->d.met, "unsupported_media_type");
        return respond_error(r, 415, "unsupported_media_type",
                             ct ? "send the image as image/png, image/jpeg, multipart/form-data "
                                  "(field \"image\") or application/json ({\"image\": base64})"
                                : "a Content-Type header is required");
    }

    /* Refuse an announced oversize body before reading any of it. */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end = NULL;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end != cl && n > (unsigned long long)cfg->max_body_bytes) {
            /* A client that did not ask "Expect: 100-continue" is sending the
             * body already; answering now and closing could reset the
             * connection before it reads the 413. A modest excess is read and
             * dropped instead, and answered once it is in. */
            const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                             MHD_HTTP_HEADER_EXPECT);
            if (!expect && n - (unsigned long long)cfg->max_body_bytes <= DRAIN_SLACK) {
                r->too_large = 1;
                atomic_store(&r->phase, PH_BODY);
                return MHD_YES;
            }
            metrics_decode_failure(s->d.met, "payload_too_large");
            char msg[128];
            snprintf(msg, sizeof msg, "the body is larger than the limit of %lld bytes",
                     cfg->max_body_bytes);
            return respond_error(r, 413, "payload_too_large", msg);
        }
        /* Reserve room for a small announced body at once. Larger ones grow
         * as bytes actually arrive, so that clients announcing big bodies
         * and sending nothing cannot make the server reserve memory. */
        if (end != cl && n > 0 && r->form != BODY_MULTIPART) {
            size_t want = n < PREALLOC_MAX ? (size_t)n : PREALLOC_MAX;
            r->body = malloc(want);
            if (r->body) r->cap = want;
        }
    }
    atomic_store(&r->phase, PH_BODY);
    return MHD_YES;
}

static int store_body(req *r, const char *data, size_t n)
{
    if (r->form == BODY_MULTIPART) {
        if (!r->mp->err) mp_feed(r->mp, (const uint8_t *)data, n);
        return 0;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 16384;
        while (cap < r->len + n) cap *= 2;
        if (cap > (size_t)r->srv->d.cfg->max_body_bytes) cap = (size_t)r->srv->d.cfg->max_body_bytes;
        uint8_t *b = realloc(r->body, cap);
        if (!b) return -1;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return 0;
}

static void job_finished(req *r)
{
    struct MHD_Connection *c = r->conn;
    atomic_store(&r->phase, PH_DONE);
    /* r may be freed by an HTTP thread as soon as the connection resumes. */
    MHD_resume_connection(c);
}

/* A batch of queued /predict jobs: classified together, then every
 * connection resumed in one burst, which the HTTP thread handles in one
 * wake-up. */
static void job_run(void **args, int n, const wp_ctx *ctx)
{
    predict_job *jobs[WP_MAX_BATCH];
    for (int i = 0; i < n; i++) jobs[i] = &((req *)args[i])->job;
    predict_run_batch(jobs, n, ctx);
    for (int i = 0; i < n; i++) job_finished(args[i]);
}

static void job_cancel(void *arg)
{
    req *r = arg;
    predict_fail(&r->job, 503, "shutting_down", "the server shut down before this image was classified");
    job_finished(r);
}

static enum MHD_Result predict_body_done(req *r)
{
    srv_server *s = r->srv;
    const svc_config *cfg = s->d.cfg;
    if (r->too_large) {
        free_body(r);
        metrics_decode_failure(s->d.met, "payload_too_large");
        char msg[128];
        snprintf(msg, sizeof msg, "the body is larger than the limit of %lld bytes",
                 cfg->max_body_bytes);
        return respond_error(r, 413, "payload_too_large", msg);
    }
    if (r->form == BODY_MULTIPART) {
        int rc = mp_finish(r->mp);
        if (rc != MP_OK) {
            static const char *msgs[] = {
                "", "the multipart/form-data body is malformed",
                "the multipart/form-data body has no field \"image\"",
                "a multipart/form-data part is too large", "out of memory"};
            int status = rc == MP_E_TOO_LARGE ? 413 : rc == MP_E_NOMEM ? 503 : 400;
            const char *code = mp_strerror_code(rc);
            metrics_decode_failure(s->d.met, code);
            return respond_error(r, status, code, msgs[-rc]);
        }
        free_body(r);
        r->body = mp_take_data(r->mp, &r->len);
    }
    if (!r->len) {
        metrics_decode_failure(s->d.met, "empty_body");
        return respond_error(r, 400, "empty_body", "the request body is empty");
    }

    predict_job *j = &r->job;
    memset(j, 0, sizeof *j);
    j->form = r->form;
    j->body = r->body;
    j->len = r->len;
    j->limits.max_width = cfg->max_image_width;
    j->limits.max_height = cfg->max_image_height;
    j->limits.max_pixels = cfg->max_image_pixels;
    j->tta = (cfg->tta ? NN_TTA_FLIP : 0) | (cfg->tta_crops ? NN_TTA_CROPS : 0);
    j->top = r->top;
    j->faces = r->faces;
    j->cascade = s->cascade;
    fd_params_default(&j->detect);
    j->detect.scale_step = 1.0 + cfg->face_scale_step_percent / 100.0;
    j->detect.min_size = cfg->face_min_size;
    j->detect.max_scan_side = cfg->face_max_scan_side;
    j->detect.min_neighbors = cfg->face_min_neighbors;
    j->max_faces = r->max_faces;
    j->crop_max_side = cfg->face_crop_max_side;
    j->t_start = r->t0;
    j->met = s->d.met;

    /* Suspend before the job becomes visible to a worker, so that its resume
     * can never overtake the suspend. */
    atomic_store(&r->phase, PH_QUEUED);
    MHD_suspend_connection(r->conn);
    int rc = wp_submit(s->d.pool, job_run, job_cancel, r);
    if (rc != WP_OK) {
        if (rc == WP_E_FULL) {
            atomic_fetch_add(&s->d.met->queue_rejections, 1);
            predict_fail(j, 503, "queue_full", "the server is busy; retry later");
        } else {
            predict_fail(j, 503, "shutting_down", "the server is shutting down");
        }
        job_finished(r);
    }
    return MHD_YES;
}

/* ---- admin API ------------------------------------------------------------- */

/* Headers of an admin request: the token is judged now, so that a refused
 * client cannot make the server buffer a body; the body (if any) is read
 * and, for an authorised request, kept up to max_body_bytes. */
static enum MHD_Result admin_headers(req *r)
{
    srv_server *s = r->srv;
    r->admin = 1;
    r->route = ROUTE_ADMIN;
    r->form = BODY_RAW;
    if (atomic_load(&s->shutting_down))
        return respond_error(r, 503, "shutting_down", "the server is shutting down");
    r->auth = admin_check(s->d.admin, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                                  MHD_HTTP_HEADER_AUTHORIZATION));
    atomic_store(&r->phase, PH_BODY);
    return MHD_YES;
}

static enum MHD_Result admin_body_done(req *r)
{
    srv_server *s = r->srv;
    admin_response out;
    memset(&out, 0, sizeof out);
    if (r->auth != ADMIN_AUTH_OK) {
        admin_auth_response(r->auth, &out);
    } else if (r->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "the body is larger than the limit of %lld bytes",
                 s->d.cfg->max_body_bytes);
        free_body(r);
        return respond_error(r, 413, "payload_too_large", msg);
    } else {
        struct MHD_Connection *c = r->conn;
        admin_request q = {r->method, r->path,
                           MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
                           MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "label"),
                           r->body, r->len};
        admin_handle(s->d.admin, &q, &out);
    }
    free_body(r);
    snprintf(r->location, sizeof r->location, "%s", out.location);
    if (out.allow) r->allow = out.allow;
    return respond_json(r, out.status, out.body, out.code);
}

/* Answers everything but a POST /predict from the routing result. */
static enum MHD_Result dispatch(req *r)
{
    switch (r->rr) {
    case ROUTE_NOT_FOUND:
        return respond_error(r, 404, "not_found", "no such resource");
    case ROUTE_METHOD_NOT_ALLOWED: {
        char msg[128];
        snprintf(msg, sizeof msg, "allowed methods: %s", r->allow);
        return respond_error(r, 405, "method_not_allowed", msg);
    }
    case ROUTE_PREFLIGHT:
        return respond(r, 204, NULL, "", 0, 0, NULL);
    case ROUTE_MATCH:
        break;
    }
    return handle_get(r);
}

static int has_body(struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strcmp(cl, "0")) return 1;
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

/* ---- libmicrohttpd callbacks --------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    srv_server *s = cls;
    req *r = *con_cls;

    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO; /* closes the connection: nothing better to do */
        *con_cls = r;
        atomic_fetch_add(&s->d.met->in_flight, 1);
        r->srv = s;
        r->conn = conn;
        r->t0 = predict_now();
        r->method = static_method(method);
        snprintf(r->path, sizeof r->path, "%s", url);
        atomic_init(&r->phase, PH_HEADERS);
        const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
        if (!rlog_accept_id(rid, r->id))
            rlog_make_id(s->id_prefix, atomic_fetch_add(&s->seq, 1) + 1, r->id);
        r->origin = allowed_origin(s, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                                  "Origin"));
        r->rr = route_lookup(method, url, &r->route, &r->allow);
        if (s->d.admin && s->d.mode != SRV_SERVE_PUBLIC && admin_is_path(url))
            return admin_headers(r);
        if (s->d.mode == SRV_SERVE_ADMIN) r->rr = ROUTE_NOT_FOUND; /* admin port: nothing else */
        /* A POST to /predict is judged from its headers right away: an error
         * answered now means the body is never read (libmicrohttpd then
         * closes the connection). Everything else is answered on the next
         * call, once the (empty) request is complete, so that libmicrohttpd
         * keeps the connection alive. */
        if (r->rr == ROUTE_MATCH && r->route == ROUTE_PREDICT) return predict_headers(r);
        if (has_body(conn)) return dispatch(r);
        atomic_store(&r->phase, PH_DEFERRED);
        return MHD_YES;
    }

    int phase = atomic_load(&r->phase);
    if (phase == PH_DEFERRED) {
        if (*upload_data_size) { /* an unexpected body: dropped, within the limit */
            r->received += *upload_data_size;
            *upload_data_size = 0;
            return r->received > (unsigned long long)s->d.cfg->max_body_bytes ? MHD_NO : MHD_YES;
        }
        return dispatch(r);
    }
    if (phase == PH_BODY && *upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        r->received += n;
        unsigned long long limit = (unsigned long long)s->d.cfg->max_body_bytes;
        if (r->received > limit) {
            if (!r->too_large) {
                r->too_large = 1;
                free_body(r);
                if (r->mp) mp_free(r->mp);
            }
            if (r->received > limit + DRAIN_SLACK) {
                r->status = 413;
                r->error_code = "payload_too_large";
                return MHD_NO; /* close: the client keeps sending far past the limit */
            }
            return MHD_YES;
        }
        if (r->too_large || (r->admin && r->auth != ADMIN_AUTH_OK)) return MHD_YES;
        if (store_body(r, upload_data, n)) {
            r->too_large = 1; /* out of memory for this body: answer as oversize */
            free_body(r);
        }
        return MHD_YES;
    }
    if (*upload_data_size) { /* a body where none is expected: drop it */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (phase == PH_BODY) return r->admin ? admin_body_done(r) : predict_body_done(r);
    if (phase == PH_DONE) {
        predict_job *j = &r->job;
        free_body(r); /* the job no longer needs it */
        j->body = NULL;
        char *resp = j->response;
        j->response = NULL;
        return respond_json(r, j->status ? j->status : 500, resp, j->error_code);
    }
    return MHD_YES; /* PH_QUEUED (spurious call) or already answered */
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    srv_server *s = cls;
    req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    double dt = predict_now() - r->t0;
    int status = r->status;
    const char *ecode = r->error_code;
    if (!status) { /* no answer was sent: the client went away or a timeout hit */
        status = 499;
        ecode = toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "timeout" : "client_closed";
    }
    metrics_observe_request(s->d.met, r->route, status, dt);
    if (s->d.cfg->log_requests) {
        char client[INET6_ADDRSTRLEN] = "";
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            const struct sockaddr *sa = ci->client_addr;
            if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, client,
                          sizeof client);
            else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, client,
                          sizeof client);
        }
        rlog_entry e = {r->id,  r->method, r->path, status, r->bytes, dt * 1e3, ecode,
                        client[0] ? client : NULL};
        rlog_request(s->d.log, s->d.cfg->log_format, &e);
    }
    free(r->body);
    free(r->job.response);
    if (r->mp) {
        mp_free(r->mp);
        free(r->mp);
    }
    free(r);
    atomic_fetch_sub(&s->d.met->in_flight, 1);
}

/* ---- life cycle ------------------------------------------------------------ */

srv_server *srv_start(const srv_deps *deps, char *err, size_t errlen)
{
    const svc_config *cfg = deps->cfg;
    srv_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->d = *deps;
    s->quiesced = MHD_INVALID_SOCKET;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s->id_prefix = (uint32_t)(ts.tv_nsec ^ (ts.tv_sec << 20) ^ ((long)getpid() << 8));

    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    const struct sockaddr *sa;
    /* poll(), not epoll: libmicrohttpd 0.9.75's MHD_quiesce_daemon races
     * its own epoll threads (both remove the listening socket from the
     * epoll set; the loser's epoll_ctl fails with ENOENT and MHD_PANIC
     * aborts the process, seen once in test_shutdown_drains), so a SIGTERM
     * under load could kill the service instead of draining it. With poll()
     * quiescing only flags the threads and wakes them through the
     * inter-thread channel (MHD_USE_ITC, which it needs). A thread polls at
     * most its share of connection_limit sockets; the service's throughput
     * stayed within this VM's run-to-run noise (wrk, 48x48 PNG, 64
     * connections, three runs each: 9592-11149 requests in 6 s with epoll,
     * 9354-10278 with poll). */
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                         MHD_ALLOW_SUSPEND_RESUME;
    memset(&sin, 0, sizeof sin);
    memset(&sin6, 0, sizeof sin6);
    if (inet_pton(AF_INET, cfg->host, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t)cfg->port);
        sa = (const struct sockaddr *)&sin;
    } else if (inet_pton(AF_INET6, cfg->host, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons((uint16_t)cfg->port);
        sa = (const struct sockaddr *)&sin6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "host: '%s' is not an IPv4 or IPv6 address", cfg->host);
        free(s);
        return NULL;
    }

    /* Loaded once here, not per request; a configured cascade that does not
     * load stops start-up rather than silently serving without detection. */
    if (cfg->face_cascade[0]) {
        char fe[512];
        if (fd_cascade_load(cfg->face_cascade, &s->cascade, fe, sizeof fe)) {
            snprintf(err, errlen, "face_cascade: %s (set it to null in the config file to serve "
                     "without face detection)", fe);
            free(s);
            return NULL;
        }
    }

    s->mhd = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, s,
        MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)(cfg->http_threads > 1 ? cfg->http_threads : 1),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->connection_timeout,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->connection_limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->connection_memory_limit,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
        MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errlen, "cannot listen on %s port %d (address in use or not permitted?)",
                 cfg->host, cfg->port);
        fd_cascade_free(s->cascade);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    log_event(s, "info", "listening on %s port %d (%d HTTP threads)", cfg->host, s->port,
              cfg->http_threads);
    return s;
}

int srv_port(const srv_server *s)
{
    return s->port;
}

void srv_begin_shutdown(srv_server *s)
{
    if (atomic_exchange(&s->shutting_down, 1)) return;
    /* Stop accepting: the listening socket is handed back to us. With MHD's
     * own threads it must stay open until MHD_stop_daemon (they may still
     * use it: TSan saw close() race a worker's epoll_ctl on it when the
     * threads used epoll, and a reused descriptor number would be worse), so
     * it is only shut down here, which refuses new connections, and closed in
     * srv_stop. */
    s->quiesced = MHD_quiesce_daemon(s->mhd);
    if (s->quiesced != MHD_INVALID_SOCKET) shutdown(s->quiesced, SHUT_RDWR);
}

int srv_shutting_down(const srv_server *s)
{
    return atomic_load(&((srv_server *)s)->shutting_down);
}

long long srv_in_flight(const srv_server *s)
{
    return atomic_load(&s->d.met->in_flight);
}

void srv_stop(srv_server *s)
{
    if (!s) return;
    if (s->mhd) MHD_stop_daemon(s->mhd);
    if (s->quiesced != MHD_INVALID_SOCKET) close(s->quiesced);
    fd_cascade_free(s->cascade);
    free(s);
}
