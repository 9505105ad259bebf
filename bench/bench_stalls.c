/* bench_stalls.c - how long this machine stops running a busy thread.
 *
 *   build/bench/bench_stalls [--seconds S] [--threads N] [--gap-ms G]
 *
 * Runs N threads (default: the CPUs online) that do nothing but read
 * CLOCK_MONOTONIC for S seconds (default 5) and counts the pauses between two
 * readings longer than G ms (default 2): time the thread did not run. On an
 * idle machine with a thread per CPU there should be none beyond the odd
 * kernel thread. A VM whose host caps its CPU time (a quota per period) shows
 * pauses of the host's period instead, once every CPU is busy: the 2-core VM
 * of 2026-12-07 paused them for about 100 ms 14-15 times in 10 s with two
 * busy threads (two runs), never with one. Such pauses are what a server's tail latency (p99) reads
 * whenever its load keeps every core busy, and no code of its own removes
 * them; bench/service.sh prints these figures next to its p99.
 *
 * Prints "key value" lines: stalls_threads, stalls_seconds, stalls_gap_ms,
 * stalls_count (pauses over G ms, all threads), stalls_max_ms,
 * stalls_lost_pct (the pauses' total time as a share of N x S) and
 * stalls_over_50ms (pauses over 50 ms). A benchmark: never fails on what
 * it measures. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    double seconds, gap;
    long count, over_50ms;
    double max, lost;
} probe;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *probe_main(void *arg)
{
    probe *p = arg;
    const double t0 = now();
    double last = t0;
    for (;;) {
        const double t = now(), g = t - last;
        if (g > p->gap) {
            p->count++;
            p->lost += g;
            if (g > 0.050)
                p->over_50ms++;
        }
        if (g > p->max)
            p->max = g;
        last = t;
        if (t - t0 >= p->seconds)
            break;
    }
    return NULL;
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--seconds S] [--threads N] [--gap-ms G]\n", argv0);
}

int main(int argc, char **argv)
{
    double seconds = 5, gap_ms = 2;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--seconds") == 0) {
            seconds = atof(argv[++i]);
        } else if (i + 1 < argc && strcmp(argv[i], "--threads") == 0) {
            threads = atol(argv[++i]);
        } else if (i + 1 < argc && strcmp(argv[i], "--gap-ms") == 0) {
            gap_ms = atof(argv[++i]);
        } else {
            usage(argv[0]);
            return 2;
        }
    }
    if (threads < 1 || threads > 1024 || !(seconds > 0) || !(gap_ms > 0)) {
        usage(argv[0]);
        return 2;
    }
    probe *p = calloc((size_t)threads, sizeof *p);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    if (!p || !tid) {
        fprintf(stderr, "bench_stalls: out of memory\n");
        return 1;
    }
    long started = 0;
    for (long i = 0; i < threads; i++) {
        p[i].seconds = seconds;
        p[i].gap = gap_ms / 1e3;
        if (pthread_create(&tid[i], NULL, probe_main, &p[i]) != 0)
            break;
        started++;
    }
    if (!started) {
        fprintf(stderr, "bench_stalls: cannot start a thread\n");
        return 1;
    }
    probe all = {0};
    for (long i = 0; i < started; i++) {
        pthread_join(tid[i], NULL);
        all.count += p[i].count;
        all.over_50ms += p[i].over_50ms;
        all.lost += p[i].lost;
        if (p[i].max > all.max)
            all.max = p[i].max;
    }
    printf("stalls_threads %ld\n", started);
    printf("stalls_seconds %.1f\n", seconds);
    printf("stalls_gap_ms %.1f\n", gap_ms);
    printf("stalls_count %ld\n", all.count);
    printf("stalls_over_50ms %ld\n", all.over_50ms);
    printf("stalls_max_ms %.1f\n", all.max * 1e3);
    printf("stalls_lost_pct %.1f\n", 100.0 * all.lost / ((double)started * seconds));
    free(p);
    free(tid);
    return 0;
}
