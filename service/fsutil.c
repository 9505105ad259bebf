/* fsutil.c - see fsutil.h. */
#include "fsutil.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int fs_mkdir_p(const char *dir)
{
    return nn_mkdir_p(dir); /* one implementation, in nn/util.c */
}

int fs_fsync_dir(const char *path, int is_dir)
{
    return nn_fsync_dir(path, is_dir); /* one implementation, in nn/util.c */
}

int fs_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
    /* A temporary name per thread: two threads may write the same file (a
     * job record from the training thread and from an HTTP thread), and one
     * thread's previous temporary is always renamed or removed already. */
    char tmp[4200];
    int fd = -1;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%ld", path, (long)getpid(), (long)syscall(SYS_gettid));
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) goto err;
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) goto err;
        p += w;
        left -= (size_t)w;
    }
    /* the contents must be on disk before the rename publishes them */
    if (fsync(fd)) goto err;
    if (close(fd)) {
        fd = -1;
        goto err;
    }
    fd = -1;
    if (rename(tmp, path)) goto err;
    fs_fsync_dir(path, 0); /* the rename itself */
    return 0;
err:;
    /* errno is the caller's only way to tell a full disk from a read-only
     * one (fs_storage_status): the clean-up below must not overwrite it
     * (unlink of a temporary that open() could not create sets ENOENT) */
    int saved = errno;
    if (err) snprintf(err, errlen, "cannot write %s: %s", path, strerror(saved));
    if (fd >= 0) close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}

char *fs_read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END)) goto err;
    long n = ftell(f);
    if (n < 0 || (size_t)n > max || fseek(f, 0, SEEK_SET)) goto err;
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) goto err;
    buf[n] = '\0';
    if (len) *len = (size_t)n;
    fclose(f);
    return buf;
err:
    free(buf);
    fclose(f);
    return NULL;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP) rmdir(path);
    else unlink(path);
    return 0;
}

void fs_rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int fs_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int fs_storage_status(int errnum, const char **code, const char **hint)
{
    const char *h = "the data could not be written";
    int status = 500;
    *code = "storage_error";
    if (errnum == ENOSPC || errnum == EDQUOT) {
        status = 507;
        *code = "insufficient_storage";
        h = "the disk is full (no space left on the device or quota exceeded): free some space and retry";
    } else if (errnum == EROFS) {
        status = 507;
        *code = "storage_read_only";
        h = "the file system is mounted read-only: remount it read-write and retry";
    }
    if (hint) *hint = h;
    return status;
}

void fs_utc_now(char *out, size_t outlen)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
