/* util.h - small helpers shared by nn/ and the commands built on it. */
#ifndef NN_UTIL_H
#define NN_UTIL_H

/* Seconds on the monotonic clock: for durations only. */
double nn_now_s(void);

/* A ds_warn_fn (dataset.h) that prints "warning: skipping PATH: REASON" to stderr. */
void nn_warn_skip_stderr(void *ctx, const char *path, const char *reason);

/* mkdir -p: creates dir and its missing parents (0755); 0 or -1 with errno. */
int nn_mkdir_p(const char *dir);

/* fsync a directory (is_dir) or the directory holding a file, so that a
 * rename into it is durable; 0 or -1 with errno. */
int nn_fsync_dir(const char *path, int is_dir);

#endif
