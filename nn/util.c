/* util.c - see util.h. */
#include <stdio.h>
#include <time.h>

#include "util.h"

double nn_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void nn_warn_skip_stderr(void *ctx, const char *path, const char *reason)
{
    (void)ctx;
    fprintf(stderr, "warning: skipping %s: %s\n", path, reason);
}
