/* fsutil.h - small filesystem helpers for the durable parts of the admin API
 * (model store manifest, job records, feedback samples): files are written
 * to a temporary name, fsynced and renamed, and the directory is fsynced, so
 * that a kill -9 or power cut leaves either the old or the new file. */
#ifndef SERVICE_FSUTIL_H
#define SERVICE_FSUTIL_H

#include <stddef.h>

/* mkdir -p; 0 or -1 with errno. */
int fs_mkdir_p(const char *dir);

/* fsync of the directory holding path (path itself when is_dir). */
int fs_fsync_dir(const char *path, int is_dir);

/* Writes data to path atomically and durably (tmp + fsync + rename + fsync
 * of the directory). Returns 0, or -1 with a message and errno saying why
 * (ENOSPC, EROFS...: see fs_storage_status). */
int fs_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);

/* Reads a whole file of at most max bytes, NUL-terminated (malloc'ed). */
char *fs_read_file(const char *path, size_t max, size_t *len);

/* Removes a directory tree (best effort; symlinks are removed, not followed). */
void fs_rm_rf(const char *path);

/* 1 when path exists. */
int fs_exists(const char *path);

/* The HTTP answer for a write that failed with errnum, so that a client can
 * tell a problem it (or an operator) can fix from a bug: the disk is full
 * (ENOSPC, EDQUOT) -> 507 "insufficient_storage"; the file system is
 * read-only (EROFS) -> 507 "storage_read_only"; anything else -> 500
 * "storage_error". *code is static; *hint (may be NULL) is a sentence for
 * the message ("the disk holding ... is full"). */
int fs_storage_status(int errnum, const char **code, const char **hint);

/* UTC "YYYY-MM-DDTHH:MM:SSZ" of now. */
void fs_utc_now(char *out, size_t outlen);

#endif
