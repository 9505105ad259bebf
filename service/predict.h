/* predict.h - one POST /predict job: from the request body to the JSON
 * answer. Runs on a worker thread (decoding is CPU work too, kept off the
 * HTTP threads); knows nothing about libmicrohttpd. */
#ifndef SERVICE_PREDICT_H
#define SERVICE_PREDICT_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "metrics.h"
#include "worker_pool.h"

typedef enum {
    BODY_RAW = 0,  /* image/png, image/jpeg, application/octet-stream */
    BODY_MULTIPART,/* the "image" field already extracted into body */
    BODY_JSON      /* {"image": "<base64>"} */
} body_form;

typedef struct {
    /* in */
    body_form form;
    const uint8_t *body;
    size_t len;
    img_limits limits;
    int tta;
    int top;          /* 0 = no "top" list */
    double t_start;   /* monotonic seconds when the request arrived */
    metrics *met;     /* may be NULL */
    /* out */
    int status;
    char *response;   /* malloc'ed JSON; NULL means out of memory (use jr_oom_body) */
    const char *error_code; /* static string, NULL on success */
} predict_job;

/* Classifies the image in job->body with the worker's model. */
void predict_run(predict_job *job, const wp_ctx *ctx);

/* HTTP status for an IMG_E_* code: 400 for bad data, 422 for images over the
 * size limits, 503 when out of memory, 500 otherwise. */
int predict_status_for_image_error(int img_err);

/* Sets status/response/error_code of job to an error answer. */
void predict_fail(predict_job *job, int status, const char *code, const char *message);

double predict_now(void); /* monotonic seconds */

#endif
