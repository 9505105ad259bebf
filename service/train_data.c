/* train_data.c - see train_data.h. */
#include "train_data.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "fsutil.h"

int td_resolve(const char *data_dir, const char *name, char *out, size_t outlen, char *err,
               size_t errlen)
{
    char root[PATH_MAX], want[PATH_MAX + 1100], real[PATH_MAX];
    if (!data_dir || !*data_dir) {
        snprintf(err, errlen, "no data directory is configured (data_dir)");
        return -1;
    }
    if (!realpath(data_dir, root)) {
        snprintf(err, errlen, "data_dir %s: %s", data_dir, strerror(errno));
        return -1;
    }
    if (name && *name) {
        /* refuse the obvious escapes by name, then the subtle ones (links)
         * by comparing real paths */
        if (name[0] == '/' || strlen(name) > 1000) {
            snprintf(err, errlen, "dataset must be a relative folder under the data directory");
            return -1;
        }
        for (const char *p = name; *p; p++) {
            if ((unsigned char)*p < 0x20) {
                snprintf(err, errlen, "dataset contains a control character");
                return -1;
            }
        }
        const char *p = name;
        while (*p) {
            size_t n = strcspn(p, "/");
            if (n == 2 && !strncmp(p, "..", 2)) {
                snprintf(err, errlen, "dataset must not contain '..'");
                return -1;
            }
            p += n;
            while (*p == '/') p++;
        }
        snprintf(want, sizeof want, "%s/%s", root, name);
    } else {
        snprintf(want, sizeof want, "%s", root);
    }
    if (!realpath(want, real)) {
        snprintf(err, errlen, "dataset folder not found under the data directory");
        return -1;
    }
    size_t rl = strlen(root);
    if (strncmp(real, root, rl) || (real[rl] != '/' && real[rl] != '\0')) {
        snprintf(err, errlen, "dataset leads outside the data directory");
        return -1;
    }
    struct stat st;
    if (stat(real, &st) || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "dataset is not a folder");
        return -1;
    }
    if (strlen(real) >= outlen) {
        snprintf(err, errlen, "dataset path too long");
        return -1;
    }
    snprintf(out, outlen, "%s", real);
    return 0;
}

static int is_image(const char *n)
{
    const char *dot = strrchr(n, '.');
    return n[0] != '.' && dot &&
           (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

/* Deterministic split: the same file always lands on the same side. */
static int to_validation(const char *name, double share)
{
    unsigned long long h = 1469598103934665603ULL;
    for (const char *p = name; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    return (double)(h % 10000) < share * 10000;
}

/* Links the images of src into dst_train (and, with share > 0, part of them
 * into dst_val), names prefixed with tag. Returns the number linked, -1 on
 * error. A missing src is an empty class. */
static int link_class(const char *src, const char *tag, const char *dst_train,
                      const char *dst_val, double share)
{
    DIR *d = opendir(src);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_image(e->d_name)) continue;
        char from[2400], to[2400];
        snprintf(from, sizeof from, "%s/%s", src, e->d_name);
        const char *dst = share > 0 && to_validation(e->d_name, share) ? dst_val : dst_train;
        snprintf(to, sizeof to, "%s/%s-%s", dst, tag, e->d_name);
        if (symlink(from, to) && errno != EEXIST) {
            closedir(d);
            return -1;
        }
        n++;
    }
    closedir(d);
    return n;
}

int td_prepare(const char *dataset, const char *feedback_dir, double val_split,
               const char *job_dir, char *out, size_t outlen, char *err, size_t errlen)
{
    int feedback = 0;
    if (feedback_dir) {
        for (int c = 0; c < DS_NUM_CLASSES; c++) {
            char dir[2200];
            snprintf(dir, sizeof dir, "%s/%s", feedback_dir, ds_class_names[c]);
            DIR *d = opendir(dir);
            struct dirent *e;
            while (d && !feedback && (e = readdir(d))) feedback = is_image(e->d_name);
            if (d) closedir(d);
        }
    }
    if (!feedback && val_split <= 0) {
        snprintf(out, outlen, "%s", dataset);
        return 0;
    }
    char data[1200];
    snprintf(data, sizeof data, "%s/data", job_dir);
    fs_rm_rf(data); /* rebuilt from scratch: the sources may have changed */
    for (int c = 0; c < DS_NUM_CLASSES; c++) {
        char tr[1400], va[1400], src[2400];
        snprintf(tr, sizeof tr, "%s/train/%s", data, ds_class_names[c]);
        snprintf(va, sizeof va, "%s/test/%s", data, ds_class_names[c]);
        if (fs_mkdir_p(tr) || (val_split > 0 && fs_mkdir_p(va))) goto ioerr;
        snprintf(src, sizeof src, "%s/train/%s", dataset, ds_class_names[c]);
        if (link_class(src, "base", tr, va, val_split) < 0) goto ioerr;
        if (feedback) {
            snprintf(src, sizeof src, "%s/%s", feedback_dir, ds_class_names[c]);
            if (link_class(src, "feedback", tr, va, 0) < 0) goto ioerr;
        }
    }
    if (val_split <= 0) {
        char from[1200], to[1400];
        snprintf(from, sizeof from, "%s/test", dataset);
        snprintf(to, sizeof to, "%s/test", data);
        if (symlink(from, to)) goto ioerr;
    }
    snprintf(out, outlen, "%s", data);
    return 0;
ioerr:
    snprintf(err, errlen, "cannot assemble the training data in %s: %s", data, strerror(errno));
    return -1;
}
