/* predict.c - body -> image bytes -> pixels -> probabilities -> JSON. */
#include "predict.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base64.h"
#include "json_response.h"

double predict_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void predict_fail(predict_job *job, int status, const char *code, const char *message)
{
    job->status = status;
    job->error_code = code;
    free(job->response);
    job->response = jr_error(code, message);
}

int predict_status_for_image_error(int e)
{
    switch (e) {
    case IMG_E_EMPTY:
    case IMG_E_FORMAT:
    case IMG_E_CORRUPT_PNG:
    case IMG_E_CORRUPT_JPEG:
    case IMG_E_TRUNCATED_PNG:
    case IMG_E_TRUNCATED_JPEG: return 400;
    case IMG_E_TOO_LARGE: return 422;
    case IMG_E_NOMEM: return 503;
    default: return 500;
    }
}

/* Static reason codes for the IMG_E_* values, so that the job never points
 * into memory owned by someone else. */
static const char *image_error_code(int e)
{
    switch (e) {
    case IMG_E_EMPTY: return "empty_body";
    case IMG_E_FORMAT: return "unsupported_format";
    case IMG_E_CORRUPT_PNG: return "corrupt_png";
    case IMG_E_CORRUPT_JPEG: return "corrupt_jpeg";
    case IMG_E_TRUNCATED_PNG: return "truncated_png";
    case IMG_E_TRUNCATED_JPEG: return "truncated_jpeg";
    case IMG_E_TOO_LARGE: return "image_too_large";
    case IMG_E_NOMEM: return "out_of_memory";
    case IMG_E_IO: return "io_error";
    }
    return "decode_error";
}

/* {"image": "<base64>"} (a data: URL is accepted too) -> bytes. Returns 0 or
 * sets the job's error. */
static int image_from_json(predict_job *job, uint8_t **out, size_t *outlen)
{
    json_error_t je;
    json_t *root = json_loadb((const char *)job->body, job->len, 0, &je);
    if (!root) {
        char msg[256];
        snprintf(msg, sizeof msg, "the body is not valid JSON: %s (line %d, column %d)", je.text,
                 je.line, je.column);
        predict_fail(job, 400, "invalid_json", msg);
        return -1;
    }
    json_t *img = json_object_get(root, "image");
    if (!json_is_object(root) || !img) {
        json_decref(root);
        predict_fail(job, 400, "missing_field",
                     "the JSON body needs a field \"image\" with the base64-encoded image");
        return -1;
    }
    if (!json_is_string(img)) {
        json_decref(root);
        predict_fail(job, 400, "invalid_base64", "\"image\" must be a base64 string");
        return -1;
    }
    const char *s = json_string_value(img);
    size_t n = json_string_length(img);
    if (!strncmp(s, "data:", 5)) {
        const char *comma = memchr(s, ',', n);
        if (!comma || !memmem(s, (size_t)(comma - s), ";base64", 7)) {
            json_decref(root);
            predict_fail(job, 400, "invalid_base64", "a data URL must be base64-encoded");
            return -1;
        }
        n -= (size_t)(comma + 1 - s);
        s = comma + 1;
    }
    uint8_t *buf = malloc(b64_decoded_max(n));
    if (!buf) {
        json_decref(root);
        predict_fail(job, 503, "out_of_memory", "out of memory decoding base64");
        return -1;
    }
    if (b64_decode(s, n, buf, outlen)) {
        free(buf);
        json_decref(root);
        predict_fail(job, 400, "invalid_base64", "\"image\" is not valid base64");
        return -1;
    }
    json_decref(root);
    *out = buf;
    return 0;
}

/* Sets the job's error from an IMG_E_* code and the decoder's message. */
static void fail_image(predict_job *job, int rc, const char *msg)
{
    /* The decoder's own reason code, so that the service, `emotiond
     * predict` and the data loader name a failure alike. */
    const char *code = img_strerror_code(rc);
    if (!code || !*code) code = image_error_code(rc);
    predict_fail(job, predict_status_for_image_error(rc), code,
                 msg[0] ? msg : "the image cannot be decoded");
}

/* The whole image is one face crop: decoded straight to the model's input
 * size into pixels (side x side). Returns 0, or -1 with the job's error set. */
static int decode_crop(predict_job *job, const wp_ctx *ctx, int side, const uint8_t *data, size_t len,
                       uint8_t *pixels, int *w, int *h)
{
    char msg[256] = "";
    int rc = img_decode_gray_resized_cached(ctx->jpeg, data, len, &job->limits, side, side, pixels, w, h,
                                            msg, sizeof msg);
    if (rc != IMG_OK) {
        fail_image(job, rc, msg);
        return -1;
    }
    return 0;
}

/* The answer without "faces", from the crop's probabilities. */
static void answer_crop(predict_job *job, const wp_ctx *ctx, const float *probs, int w, int h)
{
    const svc_model *info = ctx->info;
    jr_prediction pr = {
        .num_classes = info->num_classes,
        .class_names = info->class_names,
        .probs = probs,
        .model_id = info->id,
        .model_version = info->version,
        .elapsed_ms = (predict_now() - job->t_start) * 1e3,
        .top = job->top,
        .width = w,
        .height = h,
    };
    job->response = jr_prediction_json(&pr);
    job->status = job->response ? 200 : 503;
    if (!job->response) job->error_code = "out_of_memory";
}

/* What prepare() left to do for a job. */
enum { PREP_ANSWERED, PREP_CROP };

/* Everything before the forward pass. A job whose whole image is one face
 * crop (faces=none, no detector, or faces=auto and an image small enough)
 * is decoded into pixels (side x side) and left for the batched forward
 * pass: PREP_CROP with its size in *w, *h. Any other job is finished here
 * (an error, or face detection, which classifies each face itself):
 * PREP_ANSWERED. */
static int prepare(predict_job *job, const wp_ctx *ctx, uint8_t *pixels, int *w, int *h)
{
    uint8_t *owned = NULL, *gray = NULL;
    const uint8_t *data = job->body;
    size_t len = job->len;
    int what = PREP_ANSWERED;

    job->status = 0;
    job->error_code = NULL;
    job->response = NULL;
    if (job->form == BODY_JSON) {
        if (image_from_json(job, &owned, &len)) goto done;
        data = owned;
    }
    if (!len) {
        predict_fail(job, 400, "empty_body", "the image is empty");
        goto done;
    }
    if (job->faces == FACES_DETECT && !job->cascade) {
        predict_fail(job, 501, "face_detection_disabled",
                     "this server has no face detector (face_cascade is not set)");
        goto done;
    }
    const int side = ctx->info->input_size;
    if (job->faces == FACES_NONE || !job->cascade) {
        if (!decode_crop(job, ctx, side, data, len, pixels, w, h)) what = PREP_CROP;
        goto done;
    }
    /* Detection needs the full-size image; the decoder checks the limits
     * from the header before allocating it. */
    char msg[256] = "";
    int gw = 0, gh = 0;
    int rc = img_decode_gray(data, len, &job->limits, &gray, &gw, &gh, msg, sizeof msg);
    if (rc != IMG_OK) {
        fail_image(job, rc, msg);
        goto done;
    }
    if (job->faces == FACES_AUTO && gw <= job->crop_max_side && gh <= job->crop_max_side) {
        /* Small enough to be a crop already: classified exactly as before
         * face detection existed (same decoder path, same pixels). */
        if (!decode_crop(job, ctx, side, data, len, pixels, w, h)) what = PREP_CROP;
        goto done;
    }
    predict_faces(job, ctx, gray, gw, gh);
done:
    free(owned);
    free(gray);
    return what;
}

void predict_run_batch(predict_job **jobs, int n, const wp_ctx *ctx)
{
    const int side = ctx->info->input_size, K = ctx->info->num_classes;
    const size_t img = (size_t)side * (size_t)side;
    uint8_t *pixels = malloc((size_t)n * img);
    float *probs = malloc((size_t)n * (size_t)K * sizeof *probs);
    int *crop = malloc((size_t)n * 3 * sizeof *crop); /* job index, w, h of each crop */
    if (!pixels || !probs || !crop) {
        for (int i = 0; i < n; i++) predict_fail(jobs[i], 503, "out_of_memory", "out of memory");
        goto done;
    }
    int k = 0; /* crops waiting for the forward pass */
    for (int i = 0; i < n; i++) {
        int w = 0, h = 0;
        if (prepare(jobs[i], ctx, pixels + (size_t)k * img, &w, &h) == PREP_CROP) {
            crop[3 * k] = i;
            crop[3 * k + 1] = w;
            crop[3 * k + 2] = h;
            k++;
        }
    }
    /* One forward pass per run of crops with the same views (all of them,
     * unless jobs of differently configured servers share the pool). */
    for (int a = 0; a < k;) {
        const int tta = jobs[crop[3 * a]]->tta;
        int b = a + 1;
        while (b < k && jobs[crop[3 * b]]->tta == tta) b++;
        float *pa = probs + (size_t)a * (size_t)K;
        if (nn_predict_u8(ctx->model, ctx->ws, pixels + (size_t)a * img, b - a, tta, pa)) {
            for (int c = a; c < b; c++)
                predict_fail(jobs[crop[3 * c]], 500, "inference_failed",
                             "the model failed on this image");
        } else {
            for (int c = a; c < b; c++) {
                predict_job *job = jobs[crop[3 * c]];
                if (job->met) atomic_fetch_add(&job->met->inferences, 1);
                answer_crop(job, ctx, probs + (size_t)c * (size_t)K, crop[3 * c + 1],
                            crop[3 * c + 2]);
            }
        }
        a = b;
    }
done:
    for (int i = 0; i < n; i++)
        if (jobs[i]->error_code && jobs[i]->met)
            metrics_decode_failure(jobs[i]->met, jobs[i]->error_code);
    free(pixels);
    free(probs);
    free(crop);
}

void predict_run(predict_job *job, const wp_ctx *ctx)
{
    predict_run_batch(&job, 1, ctx);
}
