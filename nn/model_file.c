/* model_file.c - save and load models and checkpoints (format: model_file.h). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "model_file.h"
#include "util.h"

#define MAX_HEADER (1u << 20)
#define MAX_FILE ((size_t)1 << 31)

static char *build_header(const nn_model *m, const nn_extra *extras, int n_extras,
                          const char *ckpt_json, char *err, size_t errlen)
{
    json_t *root = json_object(), *arch = json_loads(m->arch_json, 0, NULL);
    json_t *meta = json_loads(m->meta_json, 0, NULL);
    json_t *classes = json_array(), *ex = json_array();
    json_t *ckpt = ckpt_json ? json_loads(ckpt_json, 0, NULL) : NULL;
    char *out = NULL;
    if (!root || !arch || !meta || !classes || !ex || (ckpt_json && !ckpt)) {
        nn_set_err(err, errlen, "cannot build the model file header (out of memory or bad metadata JSON)");
        goto out;
    }
    /* Every insertion is checked: one that fails for lack of memory would
     * otherwise leave a header without a class name or the input size, and
     * the save would succeed with a file that does not load (found by
     * tests/test_alloc_fail.c: "6 class names for a network with 7 outputs"). */
    int bad = 0;
    for (int i = 0; i < m->num_classes; i++)
        bad |= json_array_append_new(classes, json_string(m->class_names[i]));
    for (int i = 0; i < n_extras; i++)
        bad |= json_array_append_new(ex, json_pack("{s:s,s:I}", "name", extras[i].name,
                                                   "count", (json_int_t)extras[i].count));
    bad |= json_object_set(root, "arch", arch);
    bad |= json_object_set(root, "classes", classes);
    bad |= json_object_set_new(root, "input", json_pack("{s:i,s:i,s:f,s:f,s:f}",
        "size", m->in_side, "channels", m->in_c, "scale", (double)m->in_scale,
        "mean", (double)m->in_mean, "std", (double)m->in_std));
    bad |= json_object_set(root, "meta", meta);
    bad |= json_object_set_new(root, "params", json_integer((json_int_t)m->n_params));
    bad |= json_object_set(root, "extras", ex);
    if (ckpt) bad |= json_object_set(root, "checkpoint", ckpt);
    out = bad ? NULL : nn_json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    if (!out) nn_set_err(err, errlen, "out of memory writing the header");
out:
    json_decref(root); json_decref(arch); json_decref(meta);
    json_decref(classes); json_decref(ex); json_decref(ckpt);
    return out;
}

static int write_all(int fd, const void *buf, size_t len, uint32_t *crc)
{
    const char *p = buf;
    *crc = nn_crc32(*crc, buf, len);
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int nn_file_save(const nn_model *m, const nn_extra *extras, int n_extras,
                 const char *ckpt_json, const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    int fd = -1;
    uint32_t crc = 0;
    char *hdr = build_header(m, extras, n_extras, ckpt_json, err, errlen);
    if (!hdr) return -1;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        nn_set_err(err, errlen, "path too long: %s", path);
        goto err;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        nn_set_err(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        goto err;
    }
    uint32_t version = NN_FILE_VERSION;
    uint64_t hlen = strlen(hdr);
    if (write_all(fd, NN_FILE_MAGIC, 4, &crc) || write_all(fd, &version, 4, &crc) ||
        write_all(fd, &hlen, 8, &crc) || write_all(fd, hdr, hlen, &crc) ||
        write_all(fd, m->params, sizeof(float) * m->n_params, &crc))
        goto werr;
    for (int i = 0; i < n_extras; i++)
        if (write_all(fd, extras[i].data, sizeof(float) * extras[i].count, &crc)) goto werr;
    uint32_t dummy = 0, final = crc;
    if (write_all(fd, &final, 4, &dummy)) goto werr;
    /* the data must be on disk before the rename makes it visible, or a crash
     * could leave a complete-looking name over incomplete contents */
    if (fsync(fd)) goto werr;
    if (close(fd)) { fd = -1; goto werr; }
    fd = -1;
    if (rename(tmp, path)) {
        nn_set_err(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto err;
    }
    nn_fsync_dir(path, 0); /* make the rename itself durable (best effort) */
    free(hdr);
    return 0;
werr:
    nn_set_err(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
err:;
    /* callers tell a full disk (ENOSPC) or a read-only one (EROFS) from
     * errno: the clean-up must not overwrite it. The temporary is removed,
     * so a failed save leaves the previous file, whole, under its name. */
    int saved = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(hdr);
    errno = saved;
    return -1;
}

/* Checks that the stored input and classes agree with what the architecture
 * says, so that a file cannot describe one network and carry another. */
static int check_header(const nn_model *m, json_t *root, char *err, size_t errlen)
{
    json_t *classes = json_object_get(root, "classes");
    if (json_array_size(classes) != (size_t)m->num_classes) {
        nn_set_err(err, errlen, "model file: %zu class names for a network with %d outputs",
                   json_array_size(classes), m->num_classes);
        return -1;
    }
    json_t *params = json_object_get(root, "params");
    if (!json_is_integer(params) || (size_t)json_integer_value(params) != m->n_params) {
        nn_set_err(err, errlen, "model file: parameter count does not match its architecture (%zu expected)",
                   m->n_params);
        return -1;
    }
    json_t *in = json_object_get(root, "input");
    if (json_integer_value(json_object_get(in, "size")) != m->in_side) {
        nn_set_err(err, errlen, "model file: input size does not match its architecture");
        return -1;
    }
    return 0;
}

int nn_file_load_mem(const void *buf, size_t len, nn_model **out, nn_extra *extras,
                     int n_extras, char **ckpt_json, char *err, size_t errlen)
{
    const uint8_t *p = buf;
    json_t *root = NULL;
    nn_model *m = NULL;
    char *arch = NULL;
    *out = NULL;
    if (ckpt_json) *ckpt_json = NULL;
    if (len < 20 || memcmp(p, NN_FILE_MAGIC, 4)) {
        nn_set_err(err, errlen, "not an emotiond model file (bad magic number)");
        return -1;
    }
    uint32_t version, crc_stored;
    uint64_t hlen;
    memcpy(&version, p + 4, 4);
    memcpy(&hlen, p + 8, 8);
    if (version != NN_FILE_VERSION) {
        nn_set_err(err, errlen, "model file format version %u is not supported (this build reads version %u)",
                   version, NN_FILE_VERSION);
        return -1;
    }
    if (hlen == 0 || hlen > MAX_HEADER || 16 + hlen + 4 > len) {
        nn_set_err(err, errlen, "model file is truncated or corrupted (header length %llu for a %zu-byte file)",
                   (unsigned long long)hlen, len);
        return -1;
    }
    memcpy(&crc_stored, p + len - 4, 4);
    if (nn_crc32(0, p, len - 4) != crc_stored) {
        nn_set_err(err, errlen, "model file is truncated or corrupted (checksum mismatch)");
        return -1;
    }
    json_error_t jerr;
    root = json_loadb((const char *)p + 16, hlen, 0, &jerr);
    if (!root || !json_is_object(root)) {
        nn_set_err(err, errlen, "model file header is not valid JSON: %s", root ? "not an object" : jerr.text);
        goto err;
    }
    arch = nn_json_dumps(json_object_get(root, "arch"), JSON_COMPACT | JSON_SORT_KEYS);
    if (!arch) {
        nn_set_err(err, errlen, json_object_get(root, "arch") ? "out of memory reading the header"
                                                              : "model file header has no architecture");
        goto err;
    }
    char sub[256];
    /* The parameters must be in the file before memory is reserved for them:
     * a 300-byte header can name an architecture of billions of parameters
     * (tests/corpus/fuzz_model/bomb-15gb-params.emod). */
    nn_model *probe = calloc(1, sizeof *probe);
    if (!probe) { nn_set_err(err, errlen, "out of memory"); goto err; }
    int bad_arch = nn_arch_parse(probe, arch, sub, sizeof sub);
    size_t probe_params = probe->n_params;
    free(probe);
    if (bad_arch) { nn_set_err(err, errlen, "model file: %s", sub); goto err; }
    if (probe_params > (len - 20 - hlen) / sizeof(float)) {
        nn_set_err(err, errlen, "model file size does not match its header (%zu parameters, %zu "
                   "tensor bytes present)", probe_params, len - 20 - hlen);
        goto err;
    }
    m = nn_model_alloc_from_arch(arch, sub, sizeof sub);
    if (!m) { nn_set_err(err, errlen, "model file: %s", sub); goto err; }
    if (check_header(m, root, err, errlen)) goto err;
    json_t *cls = json_object_get(root, "classes");
    for (int i = 0; i < m->num_classes; i++) {
        const char *s = json_string_value(json_array_get(cls, i));
        if (!s || strlen(s) >= sizeof m->class_names[0]) {
            nn_set_err(err, errlen, "model file: bad class name %d", i);
            goto err;
        }
        strcpy(m->class_names[i], s);
    }
    json_t *meta = json_object_get(root, "meta");
    if (meta) {
        char *mj = nn_json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
        /* out of memory must say so: a load that fails without a message
         * leaves the service to log and answer an empty reason
         * (tests/test_alloc_fail.c) */
        if (!mj) { nn_set_err(err, errlen, "out of memory reading the model metadata"); goto err; }
        if (nn_model_set_meta_json(m, mj, err, errlen)) { free(mj); goto err; }
        free(mj);
    }
    /* tensors: params, then the extras in the order the header lists them */
    size_t off = 16 + hlen, avail = len - 4;
    size_t need = sizeof(float) * m->n_params;
    json_t *ex = json_object_get(root, "extras");
    for (size_t i = 0; i < json_array_size(ex); i++)
        need += sizeof(float) * (size_t)json_integer_value(json_object_get(json_array_get(ex, i), "count"));
    if (off + need != avail) {
        nn_set_err(err, errlen, "model file size does not match its header (%zu tensor bytes expected, %zu present)",
                   need, avail - off);
        goto err;
    }
    memcpy(m->params, p + off, sizeof(float) * m->n_params);
    m->gen++;
    off += sizeof(float) * m->n_params;
    for (size_t i = 0; i < json_array_size(ex); i++) {
        json_t *e = json_array_get(ex, i);
        const char *name = json_string_value(json_object_get(e, "name"));
        size_t count = (size_t)json_integer_value(json_object_get(e, "count"));
        for (int j = 0; name && extras && j < n_extras; j++)
            if (!strcmp(extras[j].name, name)) {
                if (extras[j].count != count) {
                    nn_set_err(err, errlen, "checkpoint: '%s' holds %zu values, %zu expected", name, count, extras[j].count);
                    goto err;
                }
                memcpy(extras[j].data, p + off, sizeof(float) * count);
            }
        off += sizeof(float) * count;
    }
    if (ckpt_json && json_object_get(root, "checkpoint")) {
        *ckpt_json = nn_json_dumps(json_object_get(root, "checkpoint"), JSON_COMPACT);
        /* a NULL here would read as "a model, not a checkpoint" (train_loop.c
         * refuses to resume from it with that reason): fail as what it is */
        if (!*ckpt_json) { nn_set_err(err, errlen, "out of memory reading the checkpoint state"); goto err; }
    }
    free(arch);
    json_decref(root);
    *out = m;
    return 0;
err:
    free(arch);
    json_decref(root);
    nn_model_free(m);
    return -1;
}

int nn_file_load(const char *path, nn_model **out, nn_extra *extras, int n_extras,
                 char **ckpt_json, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        nn_set_err(err, errlen, "cannot open model file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (size_t)st.st_size > MAX_FILE) {
        close(fd);
        nn_set_err(err, errlen, "%s is not a regular file of at most 2 GiB", path);
        return -1;
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    size_t got = 0;
    while (buf && got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf || got != len) {
        free(buf);
        nn_set_err(err, errlen, "cannot read model file %s", path);
        return -1;
    }
    char sub[512];
    int rc = nn_file_load_mem(buf, len, out, extras, n_extras, ckpt_json, sub, sizeof sub);
    if (rc) nn_set_err(err, errlen, "%s: %s", path, sub);
    free(buf);
    return rc;
}

int nn_model_load(const char *path, nn_model **out, char *err, size_t errlen)
{
    return nn_file_load(path, out, NULL, 0, NULL, err, errlen);
}

int nn_model_load_mem(const void *buf, size_t len, nn_model **out, char *err, size_t errlen)
{
    return nn_file_load_mem(buf, len, out, NULL, 0, NULL, err, errlen);
}

int nn_model_save(const nn_model *m, const char *path, char *err, size_t errlen)
{
    return nn_file_save(m, NULL, 0, NULL, path, err, errlen);
}
