/* admin_internal.h - the admin API's state, shared by admin.c (life cycle,
 * authentication, activation), admin_routes.c (dispatch, /train, /models)
 * and admin_samples.c (/samples). Not part of the service API. */
#ifndef SERVICE_ADMIN_INTERNAL_H
#define SERVICE_ADMIN_INTERNAL_H

#include <pthread.h>

#include "admin_routes.h"
#include "train_job.h"

struct admin_api {
    admin_deps d;
    char token[ADMIN_TOKEN_MAX]; /* "" = admin API disabled */
    tj_manager *jobs;            /* NULL without a model store */
    pthread_mutex_t swap_mu;     /* one activation at a time */
};

enum { ADMIN_ACT_OK = 0, ADMIN_ACT_NOT_FOUND = -1, ADMIN_ACT_INVALID = -2, ADMIN_ACT_IO = -3 };

/* admin_activate with the reason of a failure (ADMIN_ACT_*); with
 * ADMIN_ACT_IO, errno says why the manifest could not be written. */
int admin_activate_rc(admin_api *a, const char *version, char *err, size_t errlen);

/* Fills out with a JSON error. */
void admin_fail(admin_response *out, int status, const char *code, const char *msg);

void admin_post_samples(admin_api *a, const admin_request *q, admin_response *out);

#endif
