/* util.h - small helpers shared by nn/ and the commands built on it. */
#ifndef NN_UTIL_H
#define NN_UTIL_H

#include <stddef.h>

/* Seconds on the monotonic clock: for durations only. */
double nn_now_s(void);

/* A ds_warn_fn (dataset.h) that prints "warning: skipping PATH: REASON" to stderr. */
void nn_warn_skip_stderr(void *ctx, const char *path, const char *reason);

/* mkdir -p: creates dir and its missing parents (0755); 0 or -1 with errno. */
int nn_mkdir_p(const char *dir);

/* fsync a directory (is_dir) or the directory holding a file, so that a
 * rename into it is durable; 0 or -1 with errno. */
int nn_fsync_dir(const char *path, int is_dir);

/* json_dumps, but NULL whenever any part of the text could not be written.
 * Jansson 2.14's json_dumps ignores a failed allocation while writing an
 * object key (dump.c does not check dump_string's result for keys) and
 * returns a text with that key cut or missing, as if whole: a model header
 * that does not load, a manifest the store refuses at the next start, a
 * response body that is not the JSON it claims. Here the text goes through
 * json_dump_callback into our own buffer, whose failure is remembered.
 * Found by tests/test_alloc_fail.c. */
struct json_t;
char *nn_json_dumps(const struct json_t *j, size_t flags);

#endif
