/* metrics.h - counters of the service and their Prometheus text rendering.
 *
 * Names follow Prometheus conventions (checked by `promtool check metrics` in
 * tests/test_metrics_promtool.c): base units in the name (_seconds, _bytes),
 * counters end in _total, durations are _seconds histograms, every family
 * has HELP and TYPE lines, label values come from fixed sets.
 *
 * Counters are C11 atomics: HTTP threads and workers bump them without a lock.
 * Gauges owned by other modules (queue depth, worker busy time, model) are
 * passed in at rendering time instead of being mirrored here.
 */
#ifndef SERVICE_METRICS_H
#define SERVICE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>

#include "routes.h"

#define MET_NSTATUS 20
#define MET_NBUCKETS 14
#define MET_NREASONS 16

typedef struct {
    atomic_ullong requests[ROUTE_COUNT][MET_NSTATUS];
    atomic_ullong latency_bucket[ROUTE_COUNT][MET_NBUCKETS]; /* non-cumulative */
    atomic_ullong latency_count[ROUTE_COUNT];
    atomic_ullong latency_sum_us[ROUTE_COUNT];
    atomic_ullong decode_failures[MET_NREASONS];
    atomic_ullong inferences;
    atomic_ullong queue_rejections;
    atomic_ullong model_reloads_ok;
    atomic_ullong model_reloads_failed;
    atomic_llong in_flight;
    double start_time; /* Unix time of metrics_init, for emotiond_start_time_seconds */
} metrics;

/* Values owned elsewhere, sampled when /metrics is rendered. */
typedef struct {
    int queue_depth, queue_capacity;
    int workers, workers_busy;
    double worker_busy_seconds;
    const char *model_id, *model_version;
    int ready;
    unsigned long long worker_batches; /* worker runs; inferences / batches = mean batch */
} metrics_gauges;

void metrics_init(metrics *m);
void metrics_observe_request(metrics *m, route_id route, int status, double seconds);
/* reason: an img_strerror_code / request error code ("corrupt_png", ...) */
void metrics_decode_failure(metrics *m, const char *reason);

/* The exposition text (malloc'ed), NULL when out of memory. */
char *metrics_render(metrics *m, const metrics_gauges *g, size_t *len);

#endif
