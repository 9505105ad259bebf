/* util.c - see util.h. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>
#include <sys/stat.h>
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

int nn_mkdir_p(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

int nn_fsync_dir(const char *path, int is_dir)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    if (!is_dir) {
        char *slash = strrchr(dir, '/');
        if (!slash) snprintf(dir, sizeof dir, ".");
        else if (slash == dir) dir[1] = '\0';
        else *slash = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

typedef struct {
    char *buf;
    size_t len, cap;
    int failed; /* sticky: Jansson may go on after a -1 (see util.h) */
} dump_buf;

static int dump_to_buf(const char *data, size_t size, void *ctx)
{
    dump_buf *b = ctx;
    if (b->failed) return -1;
    if (b->len + size + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + size + 1) cap *= 2;
        char *n = realloc(b->buf, cap);
        if (!n) {
            b->failed = 1;
            return -1;
        }
        b->buf = n;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, size);
    b->len += size;
    b->buf[b->len] = '\0';
    return 0;
}

char *nn_json_dumps(const json_t *j, size_t flags)
{
    dump_buf b = {NULL, 0, 0, 0};
    if (!j || json_dump_callback(j, dump_to_buf, &b, flags) || b.failed || !b.buf) {
        free(b.buf);
        return NULL;
    }
    return b.buf;
}
