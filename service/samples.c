/* samples.c - see samples.h. */
#include "samples.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dataset.h"
#include "fsutil.h"

static void fail(sample_result *r, int status, const char *code, const char *msg)
{
    r->status = status;
    r->code = code;
    snprintf(r->message, sizeof r->message, "%s", msg);
}

/* FNV-1a 64: a dedup key for an admin-only endpoint, not a security
 * boundary (a collision would only drop one sample). */
static unsigned long long hash64(const uint8_t *p, size_t n)
{
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int write_durable(const char *tmp, const char *final, const uint8_t *data, size_t len)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) goto err;
        off += (size_t)w;
    }
    if (fsync(fd)) goto err;
    if (close(fd)) {
        fd = -1;
        goto err;
    }
    fd = -1;
    if (rename(tmp, final)) goto err;
    return fs_fsync_dir(final, 0);
err:;
    /* the caller turns errno into the answer (507 for a full or read-only
     * disk): keep it across the clean-up. The temporary goes, so a sample
     * answered with an error leaves nothing behind, not even a partial
     * file (the final name is only ever given to complete contents). */
    int saved = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}

/* The answer for a failed write: 507 when the disk is full or read-only
 * (the operator can fix it; the client can retry later), else 500. */
static void fail_storage(sample_result *r, int errnum, const char *what)
{
    const char *code, *hint;
    int status = fs_storage_status(errnum, &code, &hint);
    char msg[sizeof r->message];
    snprintf(msg, sizeof msg, "cannot %s: %s (%s)", what, hint, strerror(errnum));
    fail(r, status, code, msg);
}

void samples_store(const char *data_dir, const uint8_t *img, size_t len, const char *label,
                   const img_limits *lim, sample_result *r)
{
    memset(r, 0, sizeof *r);
    int k = label ? ds_class_index(label) : -1;
    if (k < 0) {
        fail(r, 400, "invalid_label",
             label ? "label must be one of angry, disgust, fear, happy, neutral, sad, surprise"
                   : "a label is required (field \"label\" or ?label=)");
        return;
    }
    if (!len) {
        fail(r, 400, "empty_body", "the image is empty");
        return;
    }
    uint8_t px[DS_PIXELS];
    char msg[200] = "";
    int rc = img_decode_gray_resized(img, len, lim, DS_SIDE, DS_SIDE, px, NULL, NULL, msg, sizeof msg);
    if (rc != IMG_OK) {
        fail(r, rc == IMG_E_TOO_LARGE ? 422 : rc == IMG_E_NOMEM ? 503 : 400,
             img_strerror_code(rc), msg[0] ? msg : "the image cannot be decoded");
        return;
    }
    const char *ext = len >= 4 && !memcmp(img, "\x89PNG", 4) ? "png" : "jpg";
    snprintf(r->id, sizeof r->id, "%016llx", hash64(img, len));

    /* the same bytes already stored under any class: the first label stands */
    char path[1400], tmp[1500], dir[1200];
    for (int c = 0; c < DS_NUM_CLASSES; c++) {
        for (int e = 0; e < 2; e++) {
            snprintf(path, sizeof path, "%s/feedback/%s/%s.%s", data_dir, ds_class_names[c], r->id,
                     e ? "jpg" : "png");
            if (fs_exists(path)) {
                /* A 2xx promises the sample is durable. The first upload may
                 * have been renamed in but not yet had its folder fsynced
                 * (it failed, or is still running on another thread): do it
                 * here, so a duplicate is never acknowledged earlier. */
                if (fs_fsync_dir(path, 0)) {
                    fail_storage(r, errno, "store the sample");
                    return;
                }
                r->status = 200;
                r->duplicate = 1;
                snprintf(r->label, sizeof r->label, "%s", ds_class_names[c]);
                return;
            }
        }
    }
    snprintf(dir, sizeof dir, "%s/feedback/%s", data_dir, ds_class_names[k]);
    if (fs_mkdir_p(dir)) {
        fail_storage(r, errno, "create the feedback folder");
        return;
    }
    /* per-thread temporary, hidden from the data loader (leading dot) */
    snprintf(tmp, sizeof tmp, "%s/.%s.%ld.tmp", dir, r->id, (long)syscall(SYS_gettid));
    snprintf(path, sizeof path, "%s/%s.%s", dir, r->id, ext);
    if (write_durable(tmp, path, img, len)) {
        fail_storage(r, errno, "store the sample");
        return;
    }
    /* a newly created class folder must itself be durable in feedback/ */
    fs_fsync_dir(dir, 0);
    r->status = 201;
    snprintf(r->label, sizeof r->label, "%s", ds_class_names[k]);
}

static int count_class(const char *data_dir, int c)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/feedback/%s", data_dir, ds_class_names[c]);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *dot = strrchr(e->d_name, '.');
        if (e->d_name[0] != '.' && dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg")))
            n++;
    }
    closedir(d);
    return n;
}

int samples_count(const char *data_dir)
{
    int n = 0;
    for (int c = 0; c < DS_NUM_CLASSES; c++) n += count_class(data_dir, c);
    return n;
}

char *samples_stats_json(const char *data_dir)
{
    json_t *classes = json_object();
    int total = 0;
    for (int c = 0; classes && c < DS_NUM_CLASSES; c++) {
        int n = count_class(data_dir, c);
        total += n;
        json_object_set_new(classes, ds_class_names[c], json_integer(n));
    }
    json_t *root = json_pack("{s:i,s:o}", "total", total, "classes", classes);
    char *txt = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    return txt;
}
