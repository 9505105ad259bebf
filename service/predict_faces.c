/* predict_faces.c - POST /predict on a photo: find the faces, frame each like
 * a FER2013 crop, classify it, answer {"faces": [...]}. Runs on a worker
 * thread like the rest of the job: detection is the costly part of a photo
 * and must not hold up the HTTP threads. */
#include <stdlib.h>

#include "json_faces.h"
#include "predict.h"

void predict_faces(predict_job *job, const wp_ctx *ctx, const uint8_t *gray, int w, int h)
{
    const svc_model *info = ctx->info;
    const int side = info->input_size, K = info->num_classes;
    fd_box *boxes = NULL;
    uint8_t *crop = NULL;
    float *probs = NULL;
    int n = 0;
    char msg[256] = "";
    if (fd_detect(job->cascade, &job->detect, gray, w, h, &boxes, &n, msg, sizeof msg)) {
        /* The image was decoded and the parameters are checked at start-up,
         * so a failure here is a lack of memory. */
        predict_fail(job, 503, "out_of_memory", msg);
        goto done;
    }
    if (n > job->max_faces) n = job->max_faces; /* boxes are sorted largest first */
    crop = malloc((size_t)side * (size_t)side);
    probs = malloc(((size_t)n + 1) * (size_t)K * sizeof *probs);
    if (!crop || !probs) {
        predict_fail(job, 503, "out_of_memory", "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (fd_crop_face(gray, w, h, &boxes[i], FD_FER_MARGIN, crop, side)) {
            predict_fail(job, 503, "out_of_memory", "out of memory cropping a face");
            goto done;
        }
        if (nn_predict_u8(ctx->model, ctx->ws, crop, 1, job->tta,
                          probs + (size_t)i * K)) {
            predict_fail(job, 500, "inference_failed", "the model failed on a face");
            goto done;
        }
        if (job->met) atomic_fetch_add(&job->met->inferences, 1);
    }
    jr_faces fr = {
        .num_classes = K,
        .class_names = info->class_names,
        .n = n,
        .boxes = boxes,
        .probs = probs,
        .model_id = info->id,
        .model_version = info->version,
        .elapsed_ms = (predict_now() - job->t_start) * 1e3,
        .top = job->top,
        .width = w,
        .height = h,
    };
    job->response = jr_faces_json(&fr);
    job->status = job->response ? 200 : 503;
    if (!job->response) job->error_code = "out_of_memory";
done:
    free(boxes);
    free(crop);
    free(probs);
}
