/* fuzz_json.c - the JSON request bodies, each through the narrowest existing
 * function that parses it (the service is not restructured for fuzzing):
 *  - POST /predict {"image": "<base64 or data: URL>"}: predict_run with
 *    BODY_JSON (JSON -> base64 -> decode -> 48x48 -> a tiny model), faces=none;
 *  - POST /train options: topt_parse;
 *  - POST /samples {"image", "label"}: admin_post_samples with a data folder
 *    that cannot be created (/dev/null/...), so nothing is ever written.
 * Every input goes through all three, and through jr_utf8_safe (error
 * messages quote client bytes). Invariants: the answer is valid JSON with an
 * error code unless it is a success (a NULL answer becomes a 503), and
 * /predict never answers 500 (an unexpected server error) for any body. */
#include <jansson.h>
#include <string.h>

#include "admin_internal.h"
#include "fuzz_common.h"
#include "json_response.h"
#include "model_ref.h"
#include "predict.h"
#include "train_opts.h"

/* the tests' tiny architecture (tests/common_svc.c): microseconds per image */
static const char tiny_arch[] =
    "{\"name\": \"tiny\", \"input\": {\"size\": 48, \"channels\": 1, \"scale\": 0.00392156862745098,"
    " \"mean\": 0.5, \"std\": 0.25}, \"layers\": ["
    " {\"type\": \"conv\", \"filters\": 4, \"kernel\": 3, \"padding\": \"same\"},"
    " {\"type\": \"batchnorm\"}, {\"type\": \"relu\"}, {\"type\": \"maxpool\"},"
    " {\"type\": \"maxpool\"}, {\"type\": \"flatten\"}, {\"type\": \"dense\", \"units\": 7}]}";

static svc_model *model;
static nn_ws *ws;
static svc_config cfg;

static void init_once(void)
{
    if (model) return;
    char err[256];
    nn_model *m = NULL;
    nn_set_threads(1);
    FUZZ_CHECK(nn_model_from_arch_json(tiny_arch, 7, &m, err, sizeof err) == 0);
    model = sm_wrap(m, NULL, err, sizeof err);
    FUZZ_CHECK(model != NULL);
    ws = nn_ws_create(model->nn, 2);
    FUZZ_CHECK(ws != NULL);
    cfg_defaults(&cfg);
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "/dev/null/emotiond-fuzz");
}

static void check_json_body(const char *body)
{
    FUZZ_CHECK(body != NULL);
    json_t *j = json_loads(body, 0, NULL);
    FUZZ_CHECK(json_is_object(j));
    json_decref(j);
}

static void fuzz_predict(const uint8_t *data, size_t size)
{
    wp_ctx ctx = {.model = model->nn, .ws = ws, .info = model, .worker = 0};
    predict_job job;
    memset(&job, 0, sizeof job);
    job.form = BODY_JSON;
    job.body = data;
    job.len = size;
    img_limits_default(&job.limits);
    job.tta = (int)(size & 1);
    job.top = (int)(size % 3);
    job.t_start = predict_now();
    job.faces = FACES_NONE;
    job.max_faces = 16;
    job.crop_max_side = 128;
    predict_run(&job, &ctx);
    FUZZ_CHECK(job.status == 200 || job.status == 400 || job.status == 422 || job.status == 503);
    FUZZ_CHECK((job.status == 200) == (job.error_code == NULL));
    check_json_body(job.response);
    free(job.response);
}

static void fuzz_train_opts(const uint8_t *data, size_t size)
{
    json_t *opts = NULL;
    char field[128], msg[512];
    if (topt_parse((const char *)data, size, &opts, field, sizeof field, msg, sizeof msg) == 0) {
        FUZZ_CHECK(json_is_object(opts));
        json_decref(opts);
    } else {
        FUZZ_CHECK(opts == NULL && msg[0] != '\0');
        FUZZ_CHECK(memchr(field, '\0', sizeof field) && memchr(msg, '\0', sizeof msg));
        /* what POST /train answers with it (admin_fail, bad_field): never NULL */
        char *body = jr_error("invalid_option", msg);
        check_json_body(body);
        free(body);
        char *f = jr_utf8_safe(field);
        json_t *j = json_string(f);
        FUZZ_CHECK(j != NULL);
        json_decref(j);
        free(f);
    }
}

/* jr_utf8_safe against Jansson's own UTF-8 check: its output is always
 * accepted, and valid UTF-8 goes through unchanged. */
static void fuzz_utf8_safe(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size);
    char *safe = jr_utf8_safe(s);
    FUZZ_CHECK(safe != NULL && strlen(safe) == strlen(s));
    json_t *j = json_string(safe);
    FUZZ_CHECK(j != NULL);
    json_decref(j);
    json_t *orig = json_string(s);
    if (orig) FUZZ_CHECK(strcmp(safe, s) == 0);
    json_decref(orig);
    free(safe);
    free(s);
}

static void fuzz_samples(const uint8_t *data, size_t size)
{
    admin_api a;
    memset(&a, 0, sizeof a);
    a.d.cfg = &cfg;
    admin_request q = {.method = "POST", .path = "/samples",
                       .content_type = "application/json; charset=utf-8",
                       .label = (size & 2) ? "happy" : NULL, .body = data, .len = size};
    admin_response out;
    memset(&out, 0, sizeof out);
    admin_post_samples(&a, &q, &out);
    /* the data folder cannot exist: at best storage_error */
    FUZZ_CHECK(out.status >= 400 && out.code != NULL);
    check_json_body(out.body);
    free(out.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    fuzz_predict(data, size);
    fuzz_train_opts(data, size);
    fuzz_samples(data, size);
    fuzz_utf8_safe(data, size);
    return 0;
}
