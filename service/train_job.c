/* train_job.c - job records, submit, cancel (see train_job.h); the job
 * thread itself is in train_run.c. */
#include "train_job.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "request_log.h"
#include "train_data.h"
#include "train_job_internal.h"
#include "train_opts.h"

int tj_valid_id(const char *id)
{
    if (!id || id[0] != 'j' || !id[1] || strlen(id) > 20) return 0;
    for (const char *p = id + 1; *p; p++)
        if (!isdigit((unsigned char)*p)) return 0;
    return 1;
}

json_t *tj_record(tj_manager *m, const char *id)
{
    return json_object_get(m->jobs, id);
}

void tj_set_state(tj_manager *m, const char *id, const char *state)
{
    json_t *r = tj_record(m, id);
    char now[32];
    fs_utc_now(now, sizeof now);
    json_object_set_new(r, "state", json_string(state));
    if (!strcmp(state, "running")) json_object_set_new(r, "started", json_string(now));
    if (strcmp(state, "running") && strcmp(state, "queued"))
        json_object_set_new(r, "finished", json_string(now));
}

int tj_persist(tj_manager *m, const char *id)
{
    char path[1200], err[256];
    snprintf(path, sizeof path, "%s/%s/job.json", m->jobs_dir, id);
    char *txt = nn_json_dumps(tj_record(m, id), JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    int rc = txt ? fs_write_atomic(path, txt, strlen(txt), err, sizeof err) : -1;
    int saved = txt ? errno : ENOMEM;
    if (rc)
        rlog_event(m->d.log, m->d.log_format, "error", "job %s: cannot save its record: %s", id,
                   txt ? err : "out of memory");
    free(txt);
    errno = saved;
    return rc;
}

static int is_active_state(const char *s)
{
    return s && (!strcmp(s, "queued") || !strcmp(s, "running"));
}

/* Reads every jobs/<id>/job.json; a job that was running when the previous
 * server died is marked interrupted (and that is saved). */
static void load_jobs(tj_manager *m)
{
    DIR *d = opendir(m->jobs_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!tj_valid_id(e->d_name)) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s/job.json", m->jobs_dir, e->d_name);
        json_t *r = json_load_file(path, 0, NULL);
        if (!json_is_object(r)) {
            json_decref(r); /* a job folder whose first record never landed */
            continue;
        }
        json_object_set_new(r, "id", json_string(e->d_name));
        json_object_set_new(m->jobs, e->d_name, r);
        long n = atol(e->d_name + 1);
        if (n >= m->next) {
            m->next = n + 1;
            snprintf(m->latest, sizeof m->latest, "%.20s", e->d_name); /* tj_valid_id: <= 20 */
        }
        if (is_active_state(json_string_value(json_object_get(r, "state")))) {
            tj_set_state(m, e->d_name, "interrupted");
            json_object_set_new(r, "reason",
                                json_string("the server stopped while the job ran; "
                                            "POST /train {\"resume\": id} continues it"));
            tj_persist(m, e->d_name);
            rlog_event(m->d.log, m->d.log_format, "warn",
                       "training job %s was interrupted; resume it with POST /train", e->d_name);
        }
    }
    closedir(d);
}

tj_manager *tj_create(const tj_deps *d, char *err, size_t errlen)
{
    tj_manager *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->d = *d;
    pthread_mutex_init(&m->mu, NULL);
    m->jobs = json_object();
    m->next = 1;
    snprintf(m->jobs_dir, sizeof m->jobs_dir, "%s/jobs", d->model_dir);
    if (!m->jobs || fs_mkdir_p(m->jobs_dir)) {
        snprintf(err, errlen, "cannot create %s: %s", m->jobs_dir, strerror(errno));
        json_decref(m->jobs);
        pthread_mutex_destroy(&m->mu);
        free(m);
        return NULL;
    }
    load_jobs(m);
    return m;
}

static void free_run(tj_run *r)
{
    if (!r) return;
    pthread_join(r->thread, NULL);
    json_decref(r->opts);
    free(r);
}

void tj_stop(tj_manager *m)
{
    pthread_mutex_lock(&m->mu);
    if (m->run && !m->run->done) m->run->cancel = 1;
    pthread_mutex_unlock(&m->mu);
}

void tj_destroy(tj_manager *m)
{
    if (!m) return;
    tj_stop(m);
    free_run(m->run); /* the thread saves a checkpoint and marks the job interrupted */
    json_decref(m->jobs);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* Checks what the options name on disk (dataset, architecture file). */
static int check_sources(tj_manager *m, json_t *opts, char *field, size_t fl, char *msg, size_t ml)
{
    char real[4096], e[512];
    if (td_resolve(m->d.data_dir, json_string_value(json_object_get(opts, "dataset")), real,
                   sizeof real, e, sizeof e)) {
        snprintf(field, fl, "dataset");
        snprintf(msg, ml, "dataset: %s", e);
        return -1;
    }
    const char *arch = json_string_value(json_object_get(opts, "architecture"));
    if (arch) {
        char path[1400];
        snprintf(path, sizeof path, "%s/%s.json", m->d.arch_dir, arch);
        if (!fs_exists(path)) {
            snprintf(field, fl, "architecture");
            snprintf(msg, ml, "architecture: no %s.json in the architecture folder", arch);
            return -1;
        }
    }
    return 0;
}

/* A resumed job keeps its options; only these may be given again. */
static void merge_resume_opts(json_t *old, json_t *given)
{
    static const char *keys[] = {"epochs", "threads", "force", "min_accuracy"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(given, keys[i]);
        if (v) json_object_set(old, keys[i], v);
    }
}

static int start_thread(tj_manager *m, const char *id, json_t *opts, int resume)
{
    if (m->run) { /* the previous thread has finished (done): reap it */
        free_run(m->run);
        m->run = NULL;
    }
    tj_run *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->m = m;
    snprintf(r->id, sizeof r->id, "%s", id);
    r->opts = json_deep_copy(opts);
    r->resume = resume;
    if (!r->opts || pthread_create(&r->thread, NULL, tj_thread, r)) {
        json_decref(r->opts);
        free(r);
        return -1;
    }
    m->run = r;
    return 0;
}

int tj_submit(tj_manager *m, json_t *opts, char *id_out, size_t idlen, char *field,
              size_t fl, char *msg, size_t ml)
{
    int rc = TJ_ERROR, saved = 0, created = 0;
    json_t *before = NULL; /* a resumed job's record as it was, to put back */
    char id[32], dir[1200];
    field[0] = msg[0] = '\0';
    pthread_mutex_lock(&m->mu);
    if (m->run && !m->run->done) {
        snprintf(id_out, idlen, "%s", m->run->id);
        snprintf(msg, ml, "training job %s is %s; one job runs at a time", m->run->id,
                 json_string_value(json_object_get(tj_record(m, m->run->id), "state")));
        rc = TJ_BUSY;
        goto out;
    }
    const char *resume = json_string_value(json_object_get(opts, "resume"));
    int resuming = resume != NULL;
    if (resuming) {
        json_t *r = tj_valid_id(resume) ? tj_record(m, resume) : NULL;
        if (!r) {
            snprintf(field, fl, "resume");
            snprintf(msg, ml, "resume: no training job with that id");
            rc = TJ_NOT_FOUND;
            goto out;
        }
        const char *st = json_string_value(json_object_get(r, "state"));
        if (!st || (strcmp(st, "interrupted") && strcmp(st, "cancelled") && strcmp(st, "failed"))) {
            snprintf(field, fl, "resume");
            snprintf(msg, ml, "resume: job %s is %s; only interrupted, cancelled or failed jobs "
                              "can be resumed", resume, st ? st : "unknown");
            rc = TJ_CONFLICT;
            goto out;
        }
        snprintf(id, sizeof id, "%s", resume);
        before = json_deep_copy(r);
        if (!before) {
            snprintf(msg, ml, "out of memory");
            goto out;
        }
        json_t *old = json_object_get(r, "options");
        merge_resume_opts(old, opts);
        json_object_set_new(r, "resumed", json_integer(json_integer_value(json_object_get(r, "resumed")) + 1));
        json_object_del(r, "error");
        json_object_del(r, "error_code");
        json_object_del(r, "reason");
        json_object_del(r, "finished");
    } else {
        if (check_sources(m, opts, field, fl, msg, ml)) {
            rc = TJ_BAD;
            goto out;
        }
        snprintf(id, sizeof id, "j%04ld", m->next);
        char now[32];
        snprintf(dir, sizeof dir, "%s/%s", m->jobs_dir, id);
        if (fs_mkdir_p(dir)) {
            saved = errno;
            snprintf(msg, ml, "cannot create %s: %s", dir, strerror(saved));
            rc = TJ_STORAGE;
            goto out;
        }
        created = 1;
        fs_utc_now(now, sizeof now);
        json_t *r = json_pack("{s:s,s:s,s:s,s:O,s:i,s:{},s:[],s:n}", "id", id, "state", "queued",
                              "created", now, "options", opts, "resumed", 0, "progress",
                              "history", "model");
        if (!r || json_object_set_new(m->jobs, id, r)) {
            snprintf(msg, ml, "out of memory");
            fs_rm_rf(dir);
            goto out;
        }
    }
    tj_set_state(m, id, "queued");
    json_object_del(tj_record(m, id), "finished");
    /* A 202 promises a job that a restart still knows (as interrupted, then
     * resumable): without its record on disk (full or read-only store) the
     * job is refused, and the in-memory state is put back as it was. */
    if (tj_persist(m, id)) {
        saved = errno;
        const char *code, *hint;
        fs_storage_status(saved, &code, &hint);
        snprintf(msg, ml, "cannot save the record of training job %s: %s (%s)", id, hint,
                 strerror(saved));
        if (resuming) json_object_set_new(m->jobs, id, before);
        else json_object_del(m->jobs, id);
        before = NULL;
        if (created) fs_rm_rf(dir); /* nothing in it: the record never landed */
        rc = TJ_STORAGE;
        goto out;
    }
    if (!resuming) m->next++;
    snprintf(m->latest, sizeof m->latest, "%s", id);
    if (start_thread(m, id, json_object_get(tj_record(m, id), "options"), resuming)) {
        tj_set_state(m, id, "failed");
        json_object_set_new(tj_record(m, id), "error", json_string("cannot start the training thread"));
        tj_persist(m, id);
        snprintf(msg, ml, "cannot start the training thread");
        goto out;
    }
    snprintf(id_out, idlen, "%s", id);
    rc = TJ_OK;
out:
    pthread_mutex_unlock(&m->mu);
    json_decref(opts);
    json_decref(before);
    if (rc == TJ_STORAGE) errno = saved;
    return rc;
}

char *tj_get_json(tj_manager *m, const char *id)
{
    pthread_mutex_lock(&m->mu);
    json_t *r = NULL;
    if (!id) r = m->latest[0] ? tj_record(m, m->latest) : NULL;
    else if (tj_valid_id(id)) r = tj_record(m, id);
    char *txt = r ? json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    pthread_mutex_unlock(&m->mu);
    return txt;
}

int tj_cancel(tj_manager *m, const char *id, char **json)
{
    *json = NULL;
    pthread_mutex_lock(&m->mu);
    int rc = TJ_NOT_FOUND;
    json_t *r = tj_valid_id(id) ? tj_record(m, id) : NULL;
    if (r) {
        rc = TJ_CONFLICT;
        if (m->run && !m->run->done && !strcmp(m->run->id, id)) {
            m->run->user_cancel = 1;
            m->run->cancel = 1;
            json_object_set_new(r, "cancel_requested", json_true());
            rc = TJ_OK;
        }
        *json = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}
