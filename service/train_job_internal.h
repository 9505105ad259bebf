/* train_job_internal.h - shared between train_job.c (records, submit,
 * cancel) and train_run.c (the job thread). Not part of the service API. */
#ifndef SERVICE_TRAIN_JOB_INTERNAL_H
#define SERVICE_TRAIN_JOB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "train_job.h"

typedef struct {
    tj_manager *m;
    char id[32];
    json_t *opts;                 /* the job's options (owned) */
    int resume;                   /* continue from run/checkpoint.emod */
    atomic_int cancel;            /* read by nn_train_run at every step */
    int user_cancel;              /* DELETE: ends "cancelled", else "interrupted" */
    int done;                     /* the thread will not take the lock again */
    pthread_t thread;
} tj_run;

struct tj_manager {
    tj_deps d;
    char jobs_dir[1100];
    pthread_mutex_t mu;
    json_t *jobs;    /* id -> record */
    char latest[32];
    long next;
    tj_run *run;     /* the current or last job thread, NULL if none */
};

/* The thread body (train_run.c). */
void *tj_thread(void *arg);

/* Record helpers; call with m->mu held. */
json_t *tj_record(tj_manager *m, const char *id);
void tj_set_state(tj_manager *m, const char *id, const char *state);
/* Writes the record of id (job.json); a failure is logged, and returned
 * (-1, errno set) for the callers that must not go on without it. */
int tj_persist(tj_manager *m, const char *id);

#endif
