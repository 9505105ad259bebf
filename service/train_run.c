/* train_run.c - the body of a training job's thread (see train_job.h):
 * lower priority, inputs, nn_train_run with progress, then the gate. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dataset.h"
#include "fsutil.h"
#include "request_log.h"
#include "train.h"
#include "train_data.h"
#include "train_job_internal.h"
#include "util.h"

/* Numeric option or NN_UNSET. */
static double opt_num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (json_is_boolean(v)) return json_is_true(v);
    return json_is_number(v) ? json_number_value(v) : NN_UNSET;
}

static void on_progress(void *ctx, const nn_train_progress *p)
{
    tj_run *r = ctx;
    tj_manager *m = r->m;
    pthread_mutex_lock(&m->mu);
    json_t *rec = tj_record(m, r->id);
    json_object_set_new(rec, "progress",
                        json_pack("{s:i,s:i,s:i,s:i,s:f,s:f,s:f,s:f,s:f,s:f}", "epoch", p->epoch,
                                  "epochs", p->epochs, "step", p->step, "steps", p->steps,
                                  "images_per_s", p->images_per_s, "eta_s", p->eta_s,
                                  "elapsed_s", p->elapsed_s, "loss", p->loss, "accuracy", p->acc,
                                  "lr", p->lr));
    if (p->end_of_epoch) {
        json_t *h = json_object_get(rec, "history");
        /* a resumed job repeats no epoch, but be safe against duplicates */
        while (json_array_size(h) >= (size_t)p->epoch) json_array_remove(h, json_array_size(h) - 1);
        json_array_append_new(h, json_pack("{s:i,s:f,s:f,s:f,s:f,s:f}", "epoch", p->epoch, "loss",
                                           p->loss, "accuracy", p->acc, "val_accuracy", p->val_acc,
                                           "lr", p->lr, "seconds", p->epoch_s));
        tj_persist(m, r->id); /* the checkpoint of this epoch is on disk now */
    }
    pthread_mutex_unlock(&m->mu);
}

static void finish(tj_run *r, const char *state, const char *key, const char *text)
{
    tj_manager *m = r->m;
    pthread_mutex_lock(&m->mu);
    json_t *rec = tj_record(m, r->id);
    tj_set_state(m, r->id, state);
    if (key && text) json_object_set_new(rec, key, json_string(text));
    tj_persist(m, r->id);
    r->done = 1; /* last touch of the lock by this thread */
    pthread_mutex_unlock(&m->mu);
    rlog_event(m->d.log, m->d.log_format, !strcmp(state, "failed") ? "error" : "info",
               "training job %s %s%s%s", r->id, state, text ? ": " : "", text ? text : "");
}

/* finish(r, "failed") for a write that failed with errnum: a full or
 * read-only disk gets "error_code" (insufficient_storage, storage_read_only)
 * and a hint beside the message, so that whoever polls the job knows to
 * free space (or remount) and resume it; the previous checkpoint and model
 * versions are intact (every file is written to a temporary and renamed). */
static void finish_failed(tj_run *r, int errnum, const char *text)
{
    const char *code, *hint;
    char msg[1400];
    if (fs_storage_status(errnum, &code, &hint) != 507) {
        finish(r, "failed", "error", text);
        return;
    }
    snprintf(msg, sizeof msg, "%s; %s (POST /train {\"resume\": \"%s\"} continues the job)", text,
             hint, r->id);
    pthread_mutex_lock(&r->m->mu);
    json_object_set_new(tj_record(r->m, r->id), "error_code", json_string(code));
    pthread_mutex_unlock(&r->m->mu);
    finish(r, "failed", "error", msg);
}

/* Validation accuracy of model on ds (NAN when it cannot run on it). */
static double accuracy(const nn_model *model, const ds_dataset *ds, int threads)
{
    int K = nn_model_num_classes(model);
    if (!ds->n || K != DS_NUM_CLASSES || nn_model_input_size(model) != DS_SIDE) return NAN;
    int *conf = malloc(sizeof(int) * (size_t)K * (size_t)K);
    double acc = NAN;
    if (conf && !nn_evaluate(model, ds->pixels, ds->labels, ds->n, NN_TTA_NONE, threads, conf,
                             NULL, NULL, 0))
        acc = nn_confusion_accuracy(conf, K);
    free(conf);
    return acc;
}

/* The gate: evaluate the new model beside the served one, store it, and
 * activate it when it passes (or force). */
static void judge(tj_run *r, const char *run_dir, const char *data, int threads)
{
    tj_manager *m = r->m;
    char path[4200], err[512] = "", reason[300] = "", version[MS_ID_MAX] = "";
    nn_model *model = NULL;
    ds_dataset val = {0};
    svc_model *cur = m->d.current(m->d.ctx);
    snprintf(path, sizeof path, "%s/best.emod", run_dir);
    if (nn_model_load(path, &model, err, sizeof err)) goto fail;
    snprintf(path, sizeof path, "%s/test", data);
    if (ds_load_folder(&val, path, NULL, NULL, err, sizeof err)) goto fail;
    double acc = accuracy(model, &val, threads);
    double base = cur ? accuracy(cur->nn, &val, threads) : NAN;
    json_t *min = json_object_get(r->opts, "min_accuracy");
    double need = json_is_number(min) ? json_number_value(min) : base;
    int force = json_is_true(json_object_get(r->opts, "force"));
    int pass = !isfinite(need) || (isfinite(acc) && acc >= need);
    if (!pass)
        snprintf(reason, sizeof reason, "validation accuracy %.4f is below %s %.4f", acc,
                 json_is_number(min) ? "min_accuracy" : "the active model's", need);
    ms_add_info info = {"training", r->id, pass || force ? "ready" : "rejected",
                        reason[0] ? reason : NULL, acc, base};
    if (ms_add(m->d.store, model, &info, version, sizeof version, err, sizeof err)) {
        int e = errno; /* ms_add keeps the cause: ENOSPC, EROFS... */
        char msg[700];
        snprintf(msg, sizeof msg, "cannot save the new model version: %s", err);
        finish_failed(r, e, msg);
        goto out;
    }
    pthread_mutex_lock(&m->mu);
    json_t *rec = tj_record(m, r->id);
    json_object_set_new(rec, "model", json_string(version));
    json_object_set_new(rec, "val_accuracy", isfinite(acc) ? json_real(acc) : json_null());
    json_object_set_new(rec, "baseline_accuracy", isfinite(base) ? json_real(base) : json_null());
    json_object_set_new(rec, "activated", json_false());
    pthread_mutex_unlock(&m->mu);
    if (!pass && !force) {
        finish(r, "rejected", "reason", reason);
        goto out;
    }
    if (m->d.activate(m->d.ctx, version, err, sizeof err)) {
        finish_failed(r, errno, err); /* errno: the manifest write's cause (admin.c) */
        goto out;
    }
    pthread_mutex_lock(&m->mu);
    json_object_set_new(tj_record(m, r->id), "activated", json_true());
    pthread_mutex_unlock(&m->mu);
    finish(r, "succeeded", pass ? NULL : "reason", pass ? NULL : "forced past the gate");
    goto out;
fail:
    finish(r, "failed", "error", err[0] ? err : "cannot evaluate the new model");
out:
    ds_free(&val);
    nn_model_free(model);
    sm_unref(cur);
}

/* Where the network comes from: the checkpoint (resume), the served model
 * (fine_tune), a named or inline architecture, or else the served model's
 * architecture from scratch. Fills o->arch_path / init_model / resume. */
static int pick_start(tj_run *r, const char *job_dir, nn_train_opts *o, char *arch_path,
                      char *init_path, char *ck_path, char *err, size_t errlen)
{
    tj_manager *m = r->m;
    snprintf(ck_path, 1400, "%s/run/checkpoint.emod", job_dir);
    if (r->resume && fs_exists(ck_path)) {
        o->resume = ck_path;
        return 0;
    }
    json_t *arch = json_object_get(r->opts, "architecture");
    if (json_is_string(arch)) {
        snprintf(arch_path, 1400, "%s/%s.json", m->d.arch_dir, json_string_value(arch));
        o->arch_path = arch_path;
        return 0;
    }
    svc_model *cur = m->d.current(m->d.ctx);
    int rc = -1;
    if (json_is_true(json_object_get(r->opts, "fine_tune"))) {
        snprintf(init_path, 1400, "%s/init.emod", job_dir);
        rc = nn_model_save(cur->nn, init_path, err, errlen);
        o->init_model = init_path;
    } else {
        char *txt = json_is_object(arch) ? nn_json_dumps(arch, JSON_COMPACT)
                                         : strdup(nn_model_arch_json(cur->nn));
        snprintf(arch_path, 1400, "%s/arch.json", job_dir);
        rc = txt ? fs_write_atomic(arch_path, txt, strlen(txt), err, errlen) : -1;
        free(txt);
        o->arch_path = arch_path;
    }
    sm_unref(cur);
    return rc;
}

void *tj_thread(void *arg)
{
    tj_run *r = arg;
    tj_manager *m = r->m;
    /* Lower priority for this thread only (Linux: per-thread nice); the
     * OpenMP threads it starts inherit it, so /predict keeps its cores. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), m->d.nice);
    int threads = (int)opt_num(r->opts, "threads");
    if (threads < 1) threads = m->d.threads;
    omp_set_num_threads(threads); /* this thread's parallel regions only */

    char job_dir[1200], run_dir[1300], dataset[4096], data[4096], err[1024] = "";
    char arch_path[1400], init_path[1400], ck_path[1400];
    snprintf(job_dir, sizeof job_dir, "%s/%s", m->jobs_dir, r->id);
    snprintf(run_dir, sizeof run_dir, "%s/run", job_dir);
    pthread_mutex_lock(&m->mu);
    tj_set_state(m, r->id, "running");
    tj_persist(m, r->id);
    pthread_mutex_unlock(&m->mu);
    rlog_event(m->d.log, m->d.log_format, "info", "training job %s %s (%d threads, nice %d)",
               r->id, r->resume ? "resumed" : "started", threads, m->d.nice);

    char feedback[1200];
    snprintf(feedback, sizeof feedback, "%s/feedback", m->d.data_dir);
    json_t *fb = json_object_get(r->opts, "include_feedback");
    double split = opt_num(r->opts, "validation_split");
    if (td_resolve(m->d.data_dir, json_string_value(json_object_get(r->opts, "dataset")), dataset,
                   sizeof dataset, err, sizeof err) ||
        td_prepare(dataset, fb && !json_is_true(fb) ? NULL : feedback, split > 0 ? split : 0,
                   job_dir, data, sizeof data, err, sizeof err)) {
        finish(r, "failed", "error", err);
        return NULL;
    }
    nn_train_opts o;
    nn_train_opts_init(&o);
    if (pick_start(r, job_dir, &o, arch_path, init_path, ck_path, err, sizeof err)) {
        finish(r, "failed", "error", err);
        return NULL;
    }
    json_t *aug = json_object_get(r->opts, "augmentation");
    o.data_dir = data;
    o.out_dir = run_dir;
    o.epochs = opt_num(r->opts, "epochs");
    o.batch = opt_num(r->opts, "batch");
    o.lr = opt_num(r->opts, "lr");
    o.weight_decay = opt_num(r->opts, "weight_decay");
    o.label_smoothing = opt_num(r->opts, "label_smoothing");
    o.patience = opt_num(r->opts, "patience");
    o.seed = opt_num(r->opts, "seed");
    o.max_train = opt_num(r->opts, "max_train");
    o.optimizer = json_string_value(json_object_get(r->opts, "optimizer"));
    o.schedule = json_string_value(json_object_get(r->opts, "schedule"));
    o.flip = opt_num(aug, "flip");
    o.shift = opt_num(aug, "shift");
    o.rotate = opt_num(aug, "rotate");
    o.scale = opt_num(aug, "scale");
    o.erase = opt_num(aug, "erase");
    o.threads = threads;
    o.command = "POST /train";
    o.on_progress = on_progress;
    o.ctx = r;
    o.cancel = &r->cancel;
    int rc = nn_train_run(&o, err, sizeof err);
    if (rc < 0) finish_failed(r, errno, err); /* errno: see nn_train_run */
    else if (rc == 1 && r->user_cancel) finish(r, "cancelled", "reason", "cancelled by DELETE /train");
    else if (rc == 1)
        finish(r, "interrupted", "reason",
               "the server stopped; POST /train {\"resume\": id} continues from the checkpoint");
    else judge(r, run_dir, data, threads);
    return NULL;
}
