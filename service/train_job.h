/* train_job.h - training jobs of the admin API (POST/GET/DELETE /train).
 *
 * At most one job runs at a time, on its own thread at a lower priority
 * (nice) with a configurable number of threads, beside the inference
 * workers. Each job has a folder <model_dir>/jobs/<id>/ holding job.json (its
 * record: state, options, progress, per-epoch history, result; replaced
 * atomically at every state change and epoch), run/ (nn_train_run's
 * checkpoint.emod, best.emod, history) and, if needed, data/ (see
 * train_data.h). A job found "queued" or "running" when the server starts was
 * cut off by a crash or kill: it is reported "interrupted" and
 * POST /train {"resume": id} continues it from its last checkpoint.
 *
 * When training ends the best epoch's model is evaluated on the validation
 * set beside the active model; it is added to the store and activated when it
 * is not worse (or reaches min_accuracy, or force is set), else kept as
 * "rejected" with the reason. */
#ifndef SERVICE_TRAIN_JOB_H
#define SERVICE_TRAIN_JOB_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "model_ref.h"
#include "model_store.h"

typedef struct tj_manager tj_manager;

typedef struct {
    ms_store *store;
    const char *model_dir;  /* jobs live in model_dir/jobs */
    const char *data_dir;   /* "" when none is configured */
    const char *arch_dir;
    int threads, nice;
    FILE *log;
    cfg_log_format log_format;
    /* Makes a store version the served one (load, validate, record, swap). */
    int (*activate)(void *ctx, const char *version, char *err, size_t errlen);
    /* The served model, referenced (sm_unref it). */
    svc_model *(*current)(void *ctx);
    void *ctx;
} tj_deps;

enum { TJ_OK = 0, TJ_BUSY = -1, TJ_BAD = -2, TJ_NOT_FOUND = -3, TJ_CONFLICT = -4, TJ_ERROR = -5,
       TJ_STORAGE = -6 };

/* Loads the job records of the store; running ones become "interrupted". */
tj_manager *tj_create(const tj_deps *d, char *err, size_t errlen);

/* Asks a running job to stop at its next step (it will be "interrupted"). */
void tj_stop(tj_manager *m);

/* tj_stop, waits for the job thread, frees. */
void tj_destroy(tj_manager *m);

/* Starts a job from validated options (see train_opts.h; opts is taken).
 * TJ_OK: id_out is the job. TJ_BUSY: id_out is the running job. TJ_BAD:
 * field/msg say why. TJ_NOT_FOUND / TJ_CONFLICT: the job to resume does not
 * exist / cannot be resumed (msg). TJ_STORAGE: the job's folder or record
 * could not be written (msg; errno says why, as ENOSPC or EROFS): the job
 * is not accepted, and its record is as before. */
int tj_submit(tj_manager *m, json_t *opts, char *id_out, size_t idlen, char *field,
              size_t fieldlen, char *msg, size_t msglen);

/* The record of job id (NULL: the latest job) as JSON text (malloc'ed), or
 * NULL when there is none. */
char *tj_get_json(tj_manager *m, const char *id);

/* Cancels a queued or running job (it stops at the next step boundary).
 * TJ_OK with the record in *json, TJ_NOT_FOUND, or TJ_CONFLICT (finished). */
int tj_cancel(tj_manager *m, const char *id, char **json);

/* 1 when id has the form of a job id ("j" + digits). */
int tj_valid_id(const char *id);

#endif
