/* predict.h - one POST /predict job: from the request body to the JSON
 * answer. Runs on a worker thread (decoding is CPU work too, kept off the
 * HTTP threads); knows nothing about libmicrohttpd. */
#ifndef SERVICE_PREDICT_H
#define SERVICE_PREDICT_H

#include <stddef.h>
#include <stdint.h>

#include "face_detect.h"
#include "image.h"
#include "metrics.h"
#include "worker_pool.h"

typedef enum {
    BODY_RAW = 0,  /* image/png, image/jpeg, application/octet-stream */
    BODY_MULTIPART,/* the "image" field already extracted into body */
    BODY_JSON      /* {"image": "<base64>"} */
} body_form;

/* ?faces=: find the faces first, or classify the whole image as one crop. */
typedef enum {
    FACES_AUTO = 0, /* detect, unless the image is small enough to be a face crop */
    FACES_DETECT,
    FACES_NONE
} faces_mode;

typedef struct {
    /* in */
    body_form form;
    const uint8_t *body;
    size_t len;
    img_limits limits;
    int tta;                   /* NN_TTA_* flags */
    int top;          /* 0 = no "top" list */
    double t_start;   /* monotonic seconds when the request arrived */
    metrics *met;     /* may be NULL */
    faces_mode faces;
    const fd_cascade *cascade; /* NULL: no face detection configured */
    fd_params detect;
    int max_faces;        /* faces classified, largest first */
    int crop_max_side;    /* FACES_AUTO: both sides <= this -> a face crop */
    /* out */
    int status;
    char *response;   /* malloc'ed JSON; NULL means out of memory (use jr_oom_body) */
    const char *error_code; /* static string, NULL on success */
} predict_job;

/* Classifies the image in job->body with the worker's model. */
void predict_run(predict_job *job, const wp_ctx *ctx);

/* predict_run for n jobs at once (n <= the max_batch of ctx->ws): each is
 * decoded, then every whole-image crop among them goes through one batched
 * forward pass (jobs with face detection or an error are finished on their
 * own). Each job gets the answer predict_run would give it. */
void predict_run_batch(predict_job **jobs, int n, const wp_ctx *ctx);

/* predict_faces.c: detects the faces in a decoded w x h grayscale image and
 * classifies each ({"faces": [...]} answer). */
void predict_faces(predict_job *job, const wp_ctx *ctx, const uint8_t *gray, int w, int h);

/* HTTP status for an IMG_E_* code: 400 for bad data, 422 for images over the
 * size limits, 503 when out of memory, 500 otherwise. */
int predict_status_for_image_error(int img_err);

/* Sets status/response/error_code of job to an error answer. */
void predict_fail(predict_job *job, int status, const char *code, const char *message);

double predict_now(void); /* monotonic seconds */

#endif
