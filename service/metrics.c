/* metrics.c - Prometheus text exposition format 0.0.4 (see metrics.h). */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "version.h"

/* Every status the service answers (499: the client went away first; 507:
 * the admin API's disk is full or read-only); any other is counted as
 * status="other". */
static const int status_codes[MET_NSTATUS - 1] = {200, 201, 202, 204, 400, 401, 403, 404, 405,
                                                  408, 409, 413, 415, 422, 499, 500, 501, 503,
                                                  507};
static const double bucket_le[MET_NBUCKETS - 1] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                   0.25,  0.5,    1,     2.5,  5,     10};
/* Fixed label set: a client cannot grow the exposition with made-up reasons. */
static const char *const reasons[MET_NREASONS] = {
    "empty_body",        "unsupported_format", "corrupt_png",      "corrupt_jpeg",
    "truncated_png",     "truncated_jpeg",     "image_too_large",  "out_of_memory",
    "invalid_multipart", "missing_field",      "invalid_json",     "invalid_base64",
    "io_error",          "payload_too_large",  "unsupported_media_type", "other"};

void metrics_init(metrics *m)
{
    memset(m, 0, sizeof *m); /* all-zero is a valid state for lock-free atomics */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_time = (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int status_slot(int status)
{
    for (int i = 0; i < MET_NSTATUS - 1; i++)
        if (status_codes[i] == status) return i;
    return MET_NSTATUS - 1;
}

void metrics_observe_request(metrics *m, route_id route, int status, double seconds)
{
    if ((unsigned)route >= ROUTE_COUNT) route = ROUTE_OTHER;
    atomic_fetch_add(&m->requests[route][status_slot(status)], 1);
    int b = 0;
    while (b < MET_NBUCKETS - 1 && seconds > bucket_le[b]) b++;
    atomic_fetch_add(&m->latency_bucket[route][b], 1);
    atomic_fetch_add(&m->latency_count[route], 1);
    atomic_fetch_add(&m->latency_sum_us[route],
                     (unsigned long long)(seconds > 0 ? seconds * 1e6 : 0));
}

void metrics_decode_failure(metrics *m, const char *reason)
{
    int i = 0;
    while (i < MET_NREASONS - 1 && strcmp(reasons[i], reason)) i++;
    atomic_fetch_add(&m->decode_failures[i], 1);
}

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...)
{
    if (s->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
        va_end(ap);
        if (n < 0) { s->oom = 1; return; }
        if ((size_t)n < s->cap - s->len) {
            s->len += (size_t)n;
            return;
        }
        size_t cap = s->cap * 2 + (size_t)n;
        char *b = realloc(s->buf, cap);
        if (!b) { s->oom = 1; return; }
        s->buf = b;
        s->cap = cap;
    }
}

/* Label values are escaped per the exposition format: \\, \" and \n. */
static void sb_label(sbuf *s, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\') sb_printf(s, "\\\\");
        else if (*v == '"') sb_printf(s, "\\\"");
        else if (*v == '\n') sb_printf(s, "\\n");
        else sb_printf(s, "%c", *v);
    }
}

char *metrics_render(metrics *m, const metrics_gauges *g, size_t *len)
{
    sbuf s = {malloc(8192), 0, 8192, 0};
    if (!s.buf) return NULL;

    sb_printf(&s, "# HELP emotiond_http_requests_total HTTP requests answered, by route and status.\n"
                  "# TYPE emotiond_http_requests_total counter\n");
    for (int r = 0; r < ROUTE_COUNT; r++)
        for (int k = 0; k < MET_NSTATUS; k++) {
            unsigned long long v = atomic_load(&m->requests[r][k]);
            if (!v) continue;
            if (k < MET_NSTATUS - 1)
                sb_printf(&s, "emotiond_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                          route_name((route_id)r), status_codes[k], v);
            else
                sb_printf(&s, "emotiond_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                          route_name((route_id)r), v);
        }

    sb_printf(&s, "# HELP emotiond_http_request_duration_seconds Time from request headers to "
                  "response, by route.\n"
                  "# TYPE emotiond_http_request_duration_seconds histogram\n");
    for (int r = 0; r < ROUTE_COUNT; r++) {
        unsigned long long count = atomic_load(&m->latency_count[r]);
        if (!count) continue;
        unsigned long long cum = 0;
        for (int b = 0; b < MET_NBUCKETS; b++) {
            cum += atomic_load(&m->latency_bucket[r][b]);
            if (b < MET_NBUCKETS - 1)
                sb_printf(&s,
                          "emotiond_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                          "%llu\n",
                          route_name((route_id)r), bucket_le[b], cum);
        }
        /* +Inf must equal _count; buckets are read one by one, so use the larger. */
        if (cum < count) cum = count;
        sb_printf(&s,
                  "emotiond_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                  "emotiond_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                  "emotiond_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                  route_name((route_id)r), cum, route_name((route_id)r),
                  (double)atomic_load(&m->latency_sum_us[r]) / 1e6, route_name((route_id)r), cum);
    }

    sb_printf(&s, "# HELP emotiond_decode_failures_total Rejected request bodies, by reason.\n"
                  "# TYPE emotiond_decode_failures_total counter\n");
    for (int i = 0; i < MET_NREASONS; i++)
        sb_printf(&s, "emotiond_decode_failures_total{reason=\"%s\"} %llu\n", reasons[i],
                  atomic_load(&m->decode_failures[i]));

    sb_printf(&s,
              "# HELP emotiond_inferences_total Images classified.\n"
              "# TYPE emotiond_inferences_total counter\n"
              "emotiond_inferences_total %llu\n"
              "# HELP emotiond_queue_rejections_total Requests answered 503 because the queue "
              "was full.\n"
              "# TYPE emotiond_queue_rejections_total counter\n"
              "emotiond_queue_rejections_total %llu\n"
              "# HELP emotiond_queue_depth Inference jobs waiting for a worker.\n"
              "# TYPE emotiond_queue_depth gauge\n"
              "emotiond_queue_depth %d\n"
              "# HELP emotiond_queue_capacity Size of the inference queue.\n"
              "# TYPE emotiond_queue_capacity gauge\n"
              "emotiond_queue_capacity %d\n"
              "# HELP emotiond_in_flight_requests Requests received and not yet answered.\n"
              "# TYPE emotiond_in_flight_requests gauge\n"
              "emotiond_in_flight_requests %lld\n"
              "# HELP emotiond_workers Inference worker threads.\n"
              "# TYPE emotiond_workers gauge\n"
              "emotiond_workers %d\n"
              "# HELP emotiond_workers_busy Workers running a job right now.\n"
              "# TYPE emotiond_workers_busy gauge\n"
              "emotiond_workers_busy %d\n"
              "# HELP emotiond_worker_busy_seconds_total Time workers spent on jobs, summed over "
              "workers.\n"
              "# TYPE emotiond_worker_busy_seconds_total counter\n"
              "emotiond_worker_busy_seconds_total %.6f\n"
              "# HELP emotiond_worker_batches_total Batches the workers ran (queued images "
              "taken together: jobs per batch = emotiond_inferences_total / this, for crops).\n"
              "# TYPE emotiond_worker_batches_total counter\n"
              "emotiond_worker_batches_total %llu\n"
              "# HELP emotiond_ready 1 when the service accepts predictions.\n"
              "# TYPE emotiond_ready gauge\n"
              "emotiond_ready %d\n"
              "# HELP emotiond_model_reloads_total Model reloads (SIGHUP), by result.\n"
              "# TYPE emotiond_model_reloads_total counter\n"
              "emotiond_model_reloads_total{result=\"ok\"} %llu\n"
              "emotiond_model_reloads_total{result=\"error\"} %llu\n",
              atomic_load(&m->inferences), atomic_load(&m->queue_rejections), g->queue_depth,
              g->queue_capacity, (long long)atomic_load(&m->in_flight), g->workers,
              g->workers_busy, g->worker_busy_seconds, g->worker_batches, g->ready,
              atomic_load(&m->model_reloads_ok), atomic_load(&m->model_reloads_failed));
    sb_printf(&s, "# HELP emotiond_model_info The model being served.\n"
                  "# TYPE emotiond_model_info gauge\n"
                  "emotiond_model_info{id=\"");
    sb_label(&s, g->model_id);
    sb_printf(&s, "\",version=\"");
    sb_label(&s, g->model_version);
    sb_printf(&s, "\"} 1\n");
    sb_printf(&s, "# HELP emotiond_build_info The emotiond build serving (always 1).\n"
                  "# TYPE emotiond_build_info gauge\n"
                  "emotiond_build_info{version=\"");
    sb_label(&s, emotiond_version());
    sb_printf(&s, "\",git=\"");
    sb_label(&s, emotiond_git_describe());
    sb_printf(&s, "\"} 1\n"
                  "# HELP emotiond_start_time_seconds Start time of the service, seconds since "
                  "the Unix epoch.\n"
                  "# TYPE emotiond_start_time_seconds gauge\n"
                  "emotiond_start_time_seconds %.3f\n",
              m->start_time);

    if (s.oom) {
        free(s.buf);
        return NULL;
    }
    if (len) *len = s.len;
    return s.buf;
}
