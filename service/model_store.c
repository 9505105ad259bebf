/* model_store.c - see model_store.h. */
#include "model_store.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"

#define MANIFEST "manifest.json"
#define MAX_MANIFEST (16u << 20)

struct ms_store {
    pthread_mutex_t mu;
    char dir[1024];
    int keep;
    json_t *man; /* the manifest as on disk */
};

int ms_valid_id(const char *id)
{
    if (!id || id[0] != 'v' || !id[1] || strlen(id) >= MS_ID_MAX) return 0;
    for (const char *p = id + 1; *p; p++)
        if (!isdigit((unsigned char)*p)) return 0;
    return 1;
}

const char *ms_dir(const ms_store *s)
{
    return s->dir;
}

/* Writes man as the manifest; on success it becomes the store's state. */
static int commit(ms_store *s, json_t *man, char *err, size_t errlen)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", s->dir, MANIFEST);
    char *txt = nn_json_dumps(man, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!txt) {
        snprintf(err, errlen, "out of memory writing the manifest");
        json_decref(man);
        return -1;
    }
    int rc = fs_write_atomic(path, txt, strlen(txt), err, errlen);
    int saved = errno; /* why it failed (ENOSPC, EROFS): callers answer 507 from it */
    free(txt);
    if (rc) {
        json_decref(man);
        errno = saved;
        return -1;
    }
    json_decref(s->man);
    s->man = man;
    return 0;
}

static json_t *find_version(json_t *man, const char *id, size_t *index)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(man, "versions"), i, v) {
        const char *vid = json_string_value(json_object_get(v, "id"));
        if (vid && !strcmp(vid, id)) {
            if (index) *index = i;
            return v;
        }
    }
    return NULL;
}

/* Removes temporaries and version files the manifest does not name: they
 * are what a crash between writing a file and the manifest leaves. */
static void sweep(ms_store *s)
{
    DIR *d = opendir(s->dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", s->dir, n);
        if (strstr(n, ".tmp.")) {
            unlink(path);
            continue;
        }
        size_t len = strlen(n);
        if (len > 5 && !strcmp(n + len - 5, ".emod")) {
            char id[64];
            snprintf(id, sizeof id, "%.*s", (int)(len - 5), n);
            if (ms_valid_id(id) && !find_version(s->man, id, NULL)) unlink(path);
        }
    }
    closedir(d);
}

static int check_manifest(json_t *man)
{
    if (!json_is_object(man) || !json_is_array(json_object_get(man, "versions")) ||
        !json_is_integer(json_object_get(man, "next")))
        return -1;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(man, "versions"), i, v)
        if (!ms_valid_id(json_string_value(json_object_get(v, "id")))) return -1;
    json_t *a = json_object_get(man, "active");
    if (a && !json_is_null(a) && !find_version(man, json_string_value(a), NULL)) return -1;
    return 0;
}

ms_store *ms_open(const char *dir, int keep, char *err, size_t errlen)
{
    ms_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->keep = keep > 0 ? keep : 1;
    if (fs_mkdir_p(dir)) {
        snprintf(err, errlen, "model_dir: cannot create %s: %s", dir, strerror(errno));
        goto err;
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, MANIFEST);
    if (fs_exists(path)) {
        json_error_t je;
        s->man = json_load_file(path, 0, &je);
        if (!s->man || check_manifest(s->man)) {
            /* never half-written by us: someone edited it; refuse rather
             * than guess which model to serve */
            snprintf(err, errlen, "model_dir: %s is not a valid manifest%s%s", path,
                     s->man ? "" : ": ", s->man ? "" : je.text);
            goto err;
        }
    } else {
        s->man = json_pack("{s:i,s:n,s:i,s:[]}", "format", 1, "active", "next", 1, "versions");
        if (!s->man) {
            snprintf(err, errlen, "out of memory");
            goto err;
        }
    }
    sweep(s);
    return s;
err:
    ms_close(s);
    return NULL;
}

void ms_close(ms_store *s)
{
    if (!s) return;
    json_decref(s->man);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int ms_active(ms_store *s, char *id, size_t idlen)
{
    pthread_mutex_lock(&s->mu);
    const char *a = json_string_value(json_object_get(s->man, "active"));
    snprintf(id, idlen, "%s", a ? a : "");
    pthread_mutex_unlock(&s->mu);
    return a ? 0 : -1;
}

int ms_file_path(ms_store *s, const char *id, char *path, size_t pathlen)
{
    if (!ms_valid_id(id)) return -1;
    pthread_mutex_lock(&s->mu);
    json_t *v = find_version(s->man, id, NULL);
    const char *file = json_string_value(json_object_get(v, "file"));
    if (file) snprintf(path, pathlen, "%s/%s", s->dir, file);
    pthread_mutex_unlock(&s->mu);
    return file ? 0 : -1;
}

static json_t *num_or_null(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

/* Drops the oldest versions beyond keep, never the active one nor `fresh`.
 * The manifest is committed first and the files unlinked after, so a crash
 * in between only leaves an orphan file for the next sweep. */
static void apply_retention(ms_store *s, const char *fresh)
{
    json_t *man = json_deep_copy(s->man);
    json_t *vs = json_object_get(man, "versions");
    const char *active = json_string_value(json_object_get(man, "active"));
    char doomed[64][MS_ID_MAX];
    int nd = 0;
    while (json_array_size(vs) > (size_t)s->keep && nd < 64) {
        size_t i, victim = (size_t)-1;
        json_t *v;
        json_array_foreach(vs, i, v) { /* oldest first: versions are appended */
            const char *id = json_string_value(json_object_get(v, "id"));
            if ((active && !strcmp(id, active)) || !strcmp(id, fresh)) continue;
            victim = i;
            break;
        }
        if (victim == (size_t)-1) break;
        snprintf(doomed[nd++], MS_ID_MAX, "%s",
                 json_string_value(json_object_get(json_array_get(vs, victim), "id")));
        json_array_remove(vs, victim);
    }
    if (!nd) {
        json_decref(man);
        return;
    }
    char e[256];
    if (commit(s, man, e, sizeof e)) return; /* kept: retried on the next add */
    for (int i = 0; i < nd; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%.31s.emod", s->dir, doomed[i]);
        unlink(path);
    }
}

int ms_add(ms_store *s, nn_model *m, const ms_add_info *info, char *id_out, size_t idlen,
           char *err, size_t errlen)
{
    int rc = -1, saved = 0;
    json_t *meta = NULL, *man = NULL;
    char *meta_txt = NULL;
    pthread_mutex_lock(&s->mu);
    long long n = json_integer_value(json_object_get(s->man, "next"));
    char id[MS_ID_MAX], file[64], path[1200], now[32];
    snprintf(id, sizeof id, "v%04lld", n);
    snprintf(file, sizeof file, "%s.emod", id);
    snprintf(path, sizeof path, "%s/%s", s->dir, file);
    fs_utc_now(now, sizeof now);

    /* the version travels inside the file, so that /predict names it */
    meta = json_loads(nn_model_meta_json(m), 0, NULL);
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    json_object_set_new(meta, "version", json_string(id));
    if (info->job) json_object_set_new(meta, "job", json_string(info->job));
    meta_txt = nn_json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
    if (!meta_txt || nn_model_set_meta_json(m, meta_txt, err, errlen)) {
        if (!meta_txt) snprintf(err, errlen, "out of memory");
        saved = ENOMEM;
        goto err;
    }
    if (nn_model_save(m, path, err, errlen)) {
        saved = errno; /* ENOSPC, EROFS...: nn_file_save keeps it */
        goto err;
    }

    man = json_deep_copy(s->man);
    json_t *v = json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s,s:s?,s:o,s:o,s:s,s:I}", "id", id, "file",
                          file, "created", now, "source", info->source ? info->source : "import",
                          "job", info->job, "state", info->state ? info->state : "ready",
                          "reason", info->reason, "val_accuracy", num_or_null(info->val_accuracy),
                          "baseline_accuracy", num_or_null(info->baseline_accuracy),
                          "architecture", nn_model_arch_name(m) ? nn_model_arch_name(m) : "",
                          "parameters", (json_int_t)nn_model_num_params(m));
    if (!man || !v || json_array_append_new(json_object_get(man, "versions"), v) ||
        json_object_set_new(man, "next", json_integer(n + 1))) {
        snprintf(err, errlen, "out of memory");
        if (!man) json_decref(v); /* else v was appended, or freed by the failed append */
        json_decref(man);
        unlink(path);
        saved = ENOMEM;
        goto err;
    }
    if (commit(s, man, err, errlen)) {
        saved = errno;
        unlink(path); /* not in the manifest: the sweep would remove it anyway */
        goto err;
    }
    apply_retention(s, id);
    snprintf(id_out, idlen, "%s", id);
    rc = 0;
err:
    pthread_mutex_unlock(&s->mu);
    json_decref(meta);
    free(meta_txt);
    if (rc) errno = saved;
    return rc;
}

int ms_set_active(ms_store *s, const char *id, char *err, size_t errlen)
{
    int rc = -1, saved = ENOENT;
    pthread_mutex_lock(&s->mu);
    if (!ms_valid_id(id) || !find_version(s->man, id, NULL)) {
        snprintf(err, errlen, "no model version '%s'", id);
        goto out;
    }
    json_t *man = json_deep_copy(s->man);
    if (!man || json_object_set_new(man, "active", json_string(id))) {
        json_decref(man);
        snprintf(err, errlen, "out of memory");
        saved = ENOMEM;
        goto out;
    }
    rc = commit(s, man, err, errlen);
    saved = errno;
out:
    pthread_mutex_unlock(&s->mu);
    if (rc) errno = saved;
    return rc;
}

char *ms_list_json(ms_store *s)
{
    pthread_mutex_lock(&s->mu);
    json_t *vs = json_array();
    const char *active = json_string_value(json_object_get(s->man, "active"));
    json_t *all = json_object_get(s->man, "versions");
    for (size_t i = json_array_size(all); vs && i-- > 0;) { /* newest first */
        json_t *v = json_deep_copy(json_array_get(all, i));
        const char *id = json_string_value(json_object_get(v, "id"));
        json_object_set_new(v, "active", json_boolean(active && id && !strcmp(id, active)));
        json_array_append_new(vs, v);
    }
    json_t *root = json_pack("{s:s?,s:i,s:o}", "active", active, "keep", s->keep, "versions", vs);
    pthread_mutex_unlock(&s->mu);
    char *txt = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    return txt;
}
