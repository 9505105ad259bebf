/* test_service_http.c - the real server, in-process on an ephemeral port,
 * spoken to over HTTP with libcurl: every endpoint, every body form, every
 * error code, CORS, request ids, metrics, back-pressure, concurrency against
 * direct engine calls, and model reload. */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <png.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base64.h"
#include "common_svc.h"
#include "image.h"
#include "model_ref.h"
#include "predict.h"

static char model_path[64];
static nn_model *model; /* the engine the server's answers are checked against */
static app *server;
static int port;

static void setup(void)
{
    model = tsv_make_model_file(42, model_path, sizeof model_path);
    svc_config c;
    tsv_test_config(&c, model_path);
    c.max_body_bytes = 256 * 1024;
    c.cors_count = 1;
    snprintf(c.cors_origins[0], sizeof c.cors_origins[0], "https://app.example");
    server = tsv_start(&c);
    port = app_port(server);
}

static void teardown(void)
{
    app_free(server);
    nn_model_free(model);
    unlink(model_path);
}

/* Probabilities straight from the engine for an encoded image. */
static void direct_probs(const nn_model *m, const uint8_t *img, size_t len, float *probs)
{
    uint8_t px[48 * 48];
    char err[256];
    ck_assert_int_eq(img_decode_gray_resized(img, len, NULL, 48, 48, px, NULL, NULL, err, sizeof err),
                     IMG_OK);
    nn_ws *ws = nn_ws_create(m, 2);
    ck_assert_int_eq(nn_predict_u8(m, ws, px, 1, NN_TTA_NONE, probs), 0);
    nn_ws_free(ws);
}

/* Checks a 200 /predict answer against the engine. */
static void check_prediction(const char *body, const float *expect)
{
    json_error_t je;
    json_t *o = json_loads(body, 0, &je);
    ck_assert_msg(o != NULL, "not JSON: %s", body);
    json_t *probs = json_object_get(o, "probabilities");
    ck_assert_int_eq(json_object_size(probs), 7);
    int best = 0;
    double sum = 0;
    for (int i = 0; i < 7; i++) {
        const char *name = nn_model_class_name(model, i);
        json_t *v = json_object_get(probs, name);
        ck_assert_msg(json_is_real(v), "no probability for %s", name);
        ck_assert_msg(fabs(json_real_value(v) - expect[i]) < 1e-6, "%s: %g vs %g", name,
                      json_real_value(v), (double)expect[i]);
        sum += json_real_value(v);
        if (expect[i] > expect[best]) best = i;
    }
    ck_assert(fabs(sum - 1) < 1e-4);
    ck_assert_str_eq(json_string_value(json_object_get(o, "emotion")), nn_model_class_name(model, best));
    ck_assert(fabs(json_real_value(json_object_get(o, "confidence")) - expect[best]) < 1e-6);
    json_t *mi = json_object_get(o, "model");
    ck_assert_str_eq(json_string_value(json_object_get(mi, "id")), "tiny");
    ck_assert(json_is_string(json_object_get(mi, "version")));
    ck_assert(json_is_number(json_object_get(o, "elapsed_ms")));
    ck_assert(json_real_value(json_object_get(o, "elapsed_ms")) >= 0);
    json_decref(o);
}

static void check_error(const tsv_resp *r, long status, const char *code)
{
    ck_assert_msg(r->status == status, "status %ld, expected %ld: %s", r->status, status, r->body);
    json_error_t je;
    json_t *o = json_loads(r->body, 0, &je);
    ck_assert_msg(o != NULL, "error body is not JSON: %s", r->body);
    json_t *e = json_object_get(o, "error");
    ck_assert_msg(json_is_object(e), "no error object: %s", r->body);
    ck_assert_msg(json_object_size(o) == 1 && json_object_size(e) == 2, "extra fields: %s", r->body);
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
    ck_assert(strlen(json_string_value(json_object_get(e, "message"))) > 0);
    char ct[128];
    ck_assert_int_eq(tsv_header(r, "Content-Type", ct, sizeof ct), 0);
    ck_assert_str_eq(ct, "application/json");
    json_decref(o);
}

static uint8_t *face_png(int w, int h, size_t *len)
{
    uint8_t *px = tsv_gradient(w, h, 1);
    uint8_t *png = tsv_png(w, h, PNG_COLOR_TYPE_GRAY, 8, px, len);
    free(px);
    return png;
}

static const char *const H_PNG[] = {"Content-Type: image/png", "Expect:", NULL};
static const char *const H_JPEG[] = {"Content-Type: image/jpeg", "Expect:", NULL};
static const char *const H_JSON[] = {"Content-Type: application/json", NULL};

START_TEST(test_health_endpoints)
{
    tsv_resp r;
    const char *paths[] = {"/healthz", "/livez", "/readyz"};
    const char *status[] = {"ok", "ok", "ready"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(tsv_http("GET", port, paths[i], NULL, NULL, 0, &r), 0);
        ck_assert_int_eq(r.status, 200);
        json_t *o = json_loads(r.body, 0, NULL);
        ck_assert_str_eq(json_string_value(json_object_get(o, "status")), status[i]);
        json_decref(o);
        tsv_resp_free(&r);
    }
    ck_assert_int_eq(tsv_http("HEAD", port, "/healthz", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.len, 0);
    tsv_resp_free(&r);
}
END_TEST

START_TEST(test_root_and_openapi)
{
    tsv_resp r;
    ck_assert_int_eq(tsv_http("GET", port, "/", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "/openapi.yaml"));
    tsv_resp_free(&r);
    ck_assert_int_eq(tsv_http("GET", port, "/openapi.yaml", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(!strncmp(r.body, "openapi: 3.1", 12), "spec starts with %.20s", r.body);
    size_t flen = 0;
    uint8_t *file = tsv_read_file("openapi.yaml", &flen);
    ck_assert_ptr_nonnull(file);
    ck_assert_uint_eq(flen, r.len);
    free(file);
    tsv_resp_free(&r);
}
END_TEST

START_TEST(test_routing_errors)
{
    tsv_resp r;
    ck_assert_int_eq(tsv_http("GET", port, "/nope", NULL, NULL, 0, &r), 0);
    check_error(&r, 404, "not_found");
    tsv_resp_free(&r);

    ck_assert_int_eq(tsv_http("GET", port, "/predict", NULL, NULL, 0, &r), 0);
    check_error(&r, 405, "method_not_allowed");
    char allow[64];
    ck_assert_int_eq(tsv_header(&r, "Allow", allow, sizeof allow), 0);
    ck_assert_str_eq(allow, "POST, OPTIONS");
    tsv_resp_free(&r);

    ck_assert_int_eq(tsv_http("DELETE", port, "/model", NULL, NULL, 0, &r), 0);
    check_error(&r, 405, "method_not_allowed");
    ck_assert_int_eq(tsv_header(&r, "Allow", allow, sizeof allow), 0);
    ck_assert_str_eq(allow, "GET, HEAD, OPTIONS");
    tsv_resp_free(&r);

    ck_assert_int_eq(tsv_http("POST", port, "/healthz", H_JSON, "{}", 2, &r), 0);
    check_error(&r, 405, "method_not_allowed");
    tsv_resp_free(&r);
}
END_TEST

START_TEST(test_cors)
{
    tsv_resp r;
    char v[256];
    const char *pre[] = {"Origin: https://app.example", "Access-Control-Request-Method: POST", NULL};
    ck_assert_int_eq(tsv_http("OPTIONS", port, "/predict", pre, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 204);
    ck_assert_int_eq(tsv_header(&r, "Access-Control-Allow-Origin", v, sizeof v), 0);
    ck_assert_str_eq(v, "https://app.example");
    ck_assert_int_eq(tsv_header(&r, "Access-Control-Allow-Methods", v, sizeof v), 0);
    ck_assert_str_eq(v, "POST, OPTIONS");
    ck_assert_int_eq(tsv_header(&r, "Access-Control-Allow-Headers", v, sizeof v), 0);
    ck_assert_int_eq(tsv_header(&r, "Allow", v, sizeof v), 0);
    tsv_resp_free(&r);

    const char *bad[] = {"Origin: https://evil.example", NULL};
    ck_assert_int_eq(tsv_http("OPTIONS", port, "/predict", bad, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 204);
    ck_assert_int_ne(tsv_header(&r, "Access-Control-Allow-Origin", v, sizeof v), 0);
    tsv_resp_free(&r);

    const char *get[] = {"Origin: https://app.example", NULL};
    ck_assert_int_eq(tsv_http("GET", port, "/healthz", get, NULL, 0, &r), 0);
    ck_assert_int_eq(tsv_header(&r, "Access-Control-Allow-Origin", v, sizeof v), 0);
    ck_assert_str_eq(v, "https://app.example");
    ck_assert_int_eq(tsv_header(&r, "Vary", v, sizeof v), 0);
    tsv_resp_free(&r);

    ck_assert_int_eq(tsv_http("OPTIONS", port, "/nope", get, NULL, 0, &r), 0);
    check_error(&r, 404, "not_found");
    tsv_resp_free(&r);
}
END_TEST

START_TEST(test_predict_raw_png_and_jpeg)
{
    size_t len;
    uint8_t *png = face_png(61, 77, &len);
    float expect[7];
    direct_probs(model, png, len, expect);
    tsv_resp r;
    ck_assert_int_eq(tsv_http("POST", port, "/predict", H_PNG, png, len, &r), 0);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    check_prediction(r.body, expect);
    json_t *o = json_loads(r.body, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(o, "image"), "width")), 61);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(o, "image"), "height")), 77);
    ck_assert_ptr_null(json_object_get(o, "top"));
    json_decref(o);
    tsv_resp_free(&r);
    free(png);

    uint8_t *px = tsv_gradient(100, 90, 3);
    uint8_t *jpg = tsv_jpeg(100, 90, 3, px, &len);
    direct_probs(model, jpg, len, expect);
    ck_assert_int_eq(tsv_http("POST", port, "/predict", H_JPEG, jpg, len, &r), 0);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    check_prediction(r.body, expect);
    tsv_resp_free(&r);
    /* The type is sniffed from the bytes: octet-stream works as well. */
    const char *oct[] = {"Content-Type: application/octet-stream", NULL};
    ck_assert_int_eq(tsv_http("POST", port, "/predict", oct, jpg, len, &r), 0);
    ck_assert_int_eq(r.status, 200);
    tsv_resp_free(&r);
    free(jpg);
    free(px);
}
END_TEST

/* The same image via multipart (as curl -F sends it) and via JSON base64. */
START_TEST(test_predict_multipart_and_json)
{
    size_t len;
    uint8_t *png = face_png(48, 48, &len);
    float expect[7];
    direct_probs(model, png, len, expect);

    CURL *c = curl_easy_init();
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, "comment");
    curl_mime_data(part, "a face", CURL_ZERO_TERMINATED);
    part = curl_mime_addpart(mime);
    curl_mime_name(part, "image");
    curl_mime_filename(part, "face.png");
    curl_mime_type(part, "image/png");
    curl_mime_data(part, (const char *)png, len);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/predict", port);
    tsv_resp r;
    memset(&r, 0, sizeof r);
    FILE *body = open_memstream(&r.body, &r.len);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    fclose(body);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    check_prediction(r.body, expect);
    free(r.body);
    curl_mime_free(mime);
    curl_easy_cleanup(c);

    char *b64 = b64_encode(png, len);
    char *json = malloc(strlen(b64) + 64);
    sprintf(json, "{\"image\": \"%s\"}", b64);
    ck_assert_int_eq(tsv_http("POST", port, "/predict?top=3", H_JSON, json, strlen(json), &r), 0);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    check_prediction(r.body, expect);
    json_t *o = json_loads(r.body, 0, NULL);
    json_t *top = json_object_get(o, "top");
    ck_assert_int_eq(json_array_size(top), 3);
    double prev = 2;
    for (int i = 0; i < 3; i++) {
        double p = json_real_value(json_object_get(json_array_get(top, (size_t)i), "probability"));
        ck_assert(p <= prev);
        prev = p;
    }
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(top, 0), "emotion")),
                     json_string_value(json_object_get(o, "emotion")));
    json_decref(o);
    tsv_resp_free(&r);

    sprintf(json, "{\"image\": \"data:image/png;base64,%s\"}", b64);
    ck_assert_int_eq(tsv_http("POST", port, "/predict", H_JSON, json, strlen(json), &r), 0);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    check_prediction(r.body, expect);
    tsv_resp_free(&r);
    free(json);
    free(b64);
    free(png);
}
END_TEST

static void post_expect(const char *const *h, const void *body, size_t len, long status,
                        const char *code)
{
    tsv_resp r;
    ck_assert_msg(tsv_http("POST", port, "/predict", h, body, len, &r) == 0,
                  "no answer (curl error %d) where %s was expected", r.curl_rc, code);
    check_error(&r, status, code);
    tsv_resp_free(&r);
}

START_TEST(test_predict_errors)
{
    size_t len;
    uint8_t *png = face_png(50, 50, &len);

    const char *text[] = {"Content-Type: text/plain", NULL};
    post_expect(text, "hello", 5, 415, "unsupported_media_type");
    const char *none[] = {"Content-Type:", NULL};
    post_expect(none, png, len, 415, "unsupported_media_type");
    post_expect(H_PNG, "", 0, 400, "empty_body");
    post_expect(H_PNG, "GIF89a\x01\x00\x01\x00", 10, 400, "unsupported_format");
    post_expect(H_PNG, png, len / 2, 400, "truncated_png");
    uint8_t *bad = malloc(len);
    memcpy(bad, png, len);
    for (size_t i = 40; i < len - 20; i++) bad[i] ^= 0x5a; /* IDAT garbage, CRCs wrong */
    post_expect(H_PNG, bad, len, 400, "corrupt_png");
    free(bad);

    uint8_t *px = tsv_gradient(64, 64, 1);
    size_t jl;
    uint8_t *jpg = tsv_jpeg(64, 64, 1, px, &jl);
    post_expect(H_JPEG, jpg, jl / 2, 400, "truncated_jpeg");
    free(jpg);
    free(px);

    /* Width above the 4096 limit, rejected from the header. */
    uint8_t *row = calloc(4097, 1);
    size_t wl;
    uint8_t *wide = tsv_png(4097, 1, PNG_COLOR_TYPE_GRAY, 8, row, &wl);
    post_expect(H_PNG, wide, wl, 422, "image_too_large");
    free(wide);
    free(row);

    /* Over the 256 KiB body limit: announced by Content-Length, a little
     * over (read and dropped, then answered) ... */
    size_t big = 300 * 1024;
    uint8_t *huge = calloc(4 << 20, 1);
    memcpy(huge, png, len);
    post_expect(H_PNG, huge, big, 413, "payload_too_large");
    /* ... far over, with Expect: 100-continue (answered before any byte of
     * the body is sent) ... */
    const char *expect[] = {"Content-Type: image/png", "Expect: 100-continue", NULL};
    post_expect(expect, huge, 4 << 20, 413, "payload_too_large");
    /* ... and chunked, without a Content-Length: counted as it arrives. */
    const char *chunked[] = {"Content-Type: image/png", "Transfer-Encoding: chunked", "Expect:", NULL};
    post_expect(chunked, huge, big, 413, "payload_too_large");
    free(huge);

    post_expect(H_JSON, "{\"image\": ", 10, 400, "invalid_json");
    post_expect(H_JSON, "{\"picture\": \"AAAA\"}", 19, 400, "missing_field");
    post_expect(H_JSON, "[1]", 3, 400, "missing_field");
    post_expect(H_JSON, "{\"image\": \"not*base64\"}", 23, 400, "invalid_base64");
    post_expect(H_JSON, "{\"image\": 12}", 13, 400, "invalid_base64");
    post_expect(H_JSON, "{\"image\": \"\"}", 13, 400, "empty_body");

    const char *mp[] = {"Content-Type: multipart/form-data; boundary=XyZ", NULL};
    const char *nofield = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--XyZ--\r\n";
    post_expect(mp, nofield, strlen(nofield), 400, "missing_field");
    const char *trunc = "--XyZ\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nabc";
    post_expect(mp, trunc, strlen(trunc), 400, "invalid_multipart");
    const char *mpnob[] = {"Content-Type: multipart/form-data", NULL};
    post_expect(mpnob, nofield, strlen(nofield), 400, "invalid_multipart");

    tsv_resp r;
    ck_assert_int_eq(tsv_http("POST", port, "/predict?top=0", H_PNG, png, len, &r), 0);
    check_error(&r, 400, "invalid_parameter");
    tsv_resp_free(&r);
    ck_assert_int_eq(tsv_http("POST", port, "/predict?top=abc", H_PNG, png, len, &r), 0);
    check_error(&r, 400, "invalid_parameter");
    tsv_resp_free(&r);

    /* After all that the server still answers. */
    ck_assert_int_eq(tsv_http("POST", port, "/predict", H_PNG, png, len, &r), 0);
    ck_assert_int_eq(r.status, 200);
    tsv_resp_free(&r);
    free(png);
}
END_TEST

START_TEST(test_request_id)
{
    tsv_resp r;
    char v[128];
    const char *good[] = {"X-Request-Id: abc-123.x_y", NULL};
    ck_assert_int_eq(tsv_http("GET", port, "/healthz", good, NULL, 0, &r), 0);
    ck_assert_int_eq(tsv_header(&r, "X-Request-Id", v, sizeof v), 0);
    ck_assert_str_eq(v, "abc-123.x_y");
    tsv_resp_free(&r);
    /* Characters that could forge log lines or JSON are not echoed. */
    const char *evil[] = {"X-Request-Id: a\"b c\\d", NULL};
    ck_assert_int_eq(tsv_http("GET", port, "/healthz", evil, NULL, 0, &r), 0);
    ck_assert_int_eq(tsv_header(&r, "X-Request-Id", v, sizeof v), 0);
    ck_assert_str_ne(v, "a\"b c\\d");
    ck_assert(strlen(v) > 0 && !strpbrk(v, "\" \\"));
    tsv_resp_free(&r);
    ck_assert_int_eq(tsv_http("GET", port, "/nope", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(tsv_header(&r, "X-Request-Id", v, sizeof v), 0);
    tsv_resp_free(&r);
}
END_TEST

START_TEST(test_model_endpoint)
{
    tsv_resp r;
    ck_assert_int_eq(tsv_http("GET", port, "/model", NULL, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, 200);
    json_t *o = json_loads(r.body, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_object_get(o, "architecture")), "tiny");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "parameters")),
                     (json_int_t)nn_model_num_params(model));
    ck_assert(fabs(json_real_value(json_object_get(o, "flops")) - nn_model_flops(model)) < 1);
    ck_assert_int_eq(json_array_size(json_object_get(o, "classes")), 7);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(o, "classes"), 3)),
                     nn_model_class_name(model, 3));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(o, "input"), "size")), 48);
    ck_assert(json_is_object(json_object_get(o, "training")));
    ck_assert(json_is_string(json_object_get(o, "version")));
    ck_assert(json_is_string(json_object_get(o, "id")));
    json_decref(o);
    tsv_resp_free(&r);
}
END_TEST

START_TEST(test_metrics)
{
    size_t len;
    uint8_t *png = face_png(48, 48, &len);
    tsv_resp r;
    ck_assert_int_eq(tsv_http("POST", port, "/predict", H_PNG, png, len, &r), 0);
    tsv_resp_free(&r);
    ck_assert_int_eq(tsv_http("POST", port, "/predict", H_PNG, png, 20, &r), 0);
    tsv_resp_free(&r);
    /* A request is counted when libmicrohttpd reports it completed, which can
     * be just after its client has the answer: poll until both are in. */
    for (int tries = 0;; tries++) {
        ck_assert_int_eq(tsv_http("GET", port, "/metrics", NULL, NULL, 0, &r), 0);
        if (strstr(r.body, "emotiond_http_request_duration_seconds_count{route=\"predict\"} 2\n") ||
            tries == 100)
            break;
        tsv_resp_free(&r);
        usleep(50 * 1000);
    }
    ck_assert_int_eq(r.status, 200);
    char ct[128];
    tsv_header(&r, "Content-Type", ct, sizeof ct);
    ck_assert_ptr_nonnull(strstr(ct, "text/plain"));
    static const char *want[] = {
        "emotiond_http_requests_total{route=\"predict\",status=\"200\"} 1\n",
        "emotiond_http_requests_total{route=\"predict\",status=\"400\"} 1\n",
        "emotiond_http_request_duration_seconds_bucket{route=\"predict\",le=\"+Inf\"} 2\n",
        "emotiond_http_request_duration_seconds_count{route=\"predict\"} 2\n",
        "emotiond_decode_failures_total{reason=\"truncated_png\"} 1\n",
        "emotiond_inferences_total 1\n",
        "emotiond_queue_depth 0\n",
        "emotiond_workers 2\n",
        "emotiond_worker_busy_seconds_total ",
        "emotiond_model_info{id=\"tiny\",version=\"",
        "# TYPE emotiond_http_request_duration_seconds histogram\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(r.body, want[i]) != NULL, "metrics lack '%s'", want[i]);
    tsv_resp_free(&r);
    free(png);
}
END_TEST

typedef struct {
    int thread;
    int n;
    int ok;
    char msg[256];
} conc_arg;

static void *conc_client(void *p)
{
    conc_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        int w = 20 + (a->thread * 7 + i * 13) % 90, h = 20 + (a->thread * 11 + i * 5) % 90;
        size_t len;
        uint8_t *px = tsv_gradient(w, h, 1);
        for (int k = 0; k < w * h; k++) px[k] = (uint8_t)(px[k] * (a->thread + 1) + i);
        uint8_t *png = tsv_png(w, h, PNG_COLOR_TYPE_GRAY, 8, px, &len);
        float expect[7];
        direct_probs(model, png, len, expect);
        tsv_resp r;
        if (tsv_http("POST", port, "/predict", H_PNG, png, len, &r) || r.status != 200) {
            snprintf(a->msg, sizeof a->msg, "request failed: %ld %s", r.status, r.body);
            tsv_resp_free(&r);
            free(png);
            free(px);
            return NULL;
        }
        json_t *o = json_loads(r.body, 0, NULL);
        json_t *probs = json_object_get(o, "probabilities");
        for (int c = 0; c < 7; c++) {
            double v = json_real_value(json_object_get(probs, nn_model_class_name(model, c)));
            if (fabs(v - expect[c]) > 1e-6) {
                snprintf(a->msg, sizeof a->msg, "thread %d request %d class %d: %g vs %g",
                         a->thread, i, c, v, (double)expect[c]);
                json_decref(o);
                tsv_resp_free(&r);
                free(png);
                free(px);
                return NULL;
            }
        }
        json_decref(o);
        tsv_resp_free(&r);
        free(png);
        free(px);
        a->ok++;
    }
    return NULL;
}

START_TEST(test_concurrent_equals_engine)
{
    enum { T = 16, N = 12 };
    pthread_t th[T];
    conc_arg args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (conc_arg){i, N, 0, ""};
        pthread_create(&th[i], NULL, conc_client, &args[i]);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(args[i].ok == N, "thread %d: %s", i, args[i].msg);
    }
}
END_TEST

/* SIGHUP's work in-process: a new file is picked up, a bad one refused. */
START_TEST(test_reload)
{
    size_t len;
    uint8_t *png = face_png(48, 48, &len);
    tsv_resp r;
    ck_assert_int_eq(tsv_http("GET", port, "/model", NULL, NULL, 0, &r), 0);
    json_t *o = json_loads(r.body, 0, NULL);
    char v1[64];
    snprintf(v1, sizeof v1, "%s", json_string_value(json_object_get(o, "version")));
    json_decref(o);
    tsv_resp_free(&r);

    char other[64];
    nn_model *m2 = tsv_make_model_file(7, other, sizeof other);
    ck_assert_int_eq(rename(other, model_path), 0);
    char err[512] = "";
    ck_assert_msg(app_reload(server, err, sizeof err) == 0, "%s", err);
    float expect[7];
    direct_probs(m2, png, len, expect);
    /* Each worker swaps before its next job: after one round every answer is new. */
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(tsv_http("POST", port, "/predict", H_PNG, png, len, &r), 0);
        ck_assert_int_eq(r.status, 200);
        o = json_loads(r.body, 0, NULL);
        double p0 = json_real_value(json_object_get(json_object_get(o, "probabilities"),
                                                    nn_model_class_name(m2, 0)));
        ck_assert_msg(fabs(p0 - expect[0]) < 1e-6, "answer %d from the old model", i);
        ck_assert_str_ne(json_string_value(json_object_get(json_object_get(o, "model"), "version")), v1);
        json_decref(o);
        tsv_resp_free(&r);
    }

    FILE *f = fopen(model_path, "wb");
    fputs("not a model", f);
    fclose(f);
    ck_assert_int_eq(app_reload(server, err, sizeof err), -1);
    ck_assert(strlen(err) > 0);
    ck_assert_int_eq(tsv_http("POST", port, "/predict", H_PNG, png, len, &r), 0);
    ck_assert_int_eq(r.status, 200);
    tsv_resp_free(&r);
    ck_assert_int_eq(tsv_http("GET", port, "/metrics", NULL, NULL, 0, &r), 0);
    ck_assert_ptr_nonnull(strstr(r.body, "emotiond_model_reloads_total{result=\"ok\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "emotiond_model_reloads_total{result=\"error\"} 1\n"));
    tsv_resp_free(&r);
    nn_model_free(m2);
    free(png);
}
END_TEST

/* A separate server with one worker and a queue of one: a burst of slow
 * (large) images must get some 503 + Retry-After at once, the rest 200. */
typedef struct {
    int port;
    const uint8_t *img;
    size_t len;
    long status;
    char retry[16];
    int curl_rc;     /* when no status came: why (CURLcode) */
    char body[160];  /* the start of an unexpected answer */
} burst_arg;

static void *burst_client(void *p)
{
    burst_arg *a = p;
    tsv_resp r;
    /* No "Expect: 100-continue" (curl adds it past 1 MB): the client sends
     * its body at once, as most do for images, and must still get its 503 */
    const char *hdr[] = {"Content-Type: image/png", "Expect:", NULL};
    if (tsv_http("POST", a->port, "/predict", hdr, a->img, a->len, &r) == 0) {
        a->status = r.status;
        tsv_header(&r, "Retry-After", a->retry, sizeof a->retry);
        snprintf(a->body, sizeof a->body, "%s", r.body ? r.body : "");
    }
    a->curl_rc = r.curl_rc;
    tsv_resp_free(&r);
    return NULL;
}

/* tta and tta_crops: the answer is the engine's mean over the 10 views. */
START_TEST(test_predict_tta)
{
    svc_config c;
    tsv_test_config(&c, model_path);
    c.tta = 1;
    c.tta_crops = 1;
    app *a = tsv_start(&c);
    size_t len;
    uint8_t *png = face_png(48, 48, &len);
    uint8_t px[48 * 48];
    char err[256];
    ck_assert_int_eq(img_decode_gray_resized(png, len, NULL, 48, 48, px, NULL, NULL, err, sizeof err),
                     IMG_OK);
    float expect[7], plain[7];
    nn_ws *ws = nn_ws_create(model, 1);
    ck_assert_int_eq(nn_predict_u8(model, ws, px, 1, NN_TTA_FLIP | NN_TTA_CROPS, expect), 0);
    ck_assert_int_eq(nn_predict_u8(model, ws, px, 1, NN_TTA_NONE, plain), 0);
    nn_ws_free(ws);
    float d = 0;
    for (int i = 0; i < 7; i++) d = fmaxf(d, fabsf(expect[i] - plain[i]));
    ck_assert_msg(d > 1e-6f, "the test image must tell the modes apart");
    tsv_resp r;
    ck_assert_int_eq(tsv_http("POST", app_port(a), "/predict", H_PNG, png, len, &r), 0);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    check_prediction(r.body, expect);
    tsv_resp_free(&r);
    free(png);
    app_free(a);
}
END_TEST

/* The served defaults (flip+crops in int8, or what int8 falls back to where
 * the CPU has no VNNI: fp16, or fp32 without F16C or with AVX-512): the answer is the
 * engine's own in that precision and mode. */
START_TEST(test_predict_served_defaults)
{
    svc_config c, d;
    tsv_test_config(&c, model_path);
    cfg_defaults(&d);
    c.tta = d.tta;
    c.tta_crops = d.tta_crops;
    c.precision = d.precision;
    const int mode = (d.tta ? NN_TTA_FLIP : 0) | (d.tta_crops ? NN_TTA_CROPS : 0);
    app *a = tsv_start(&c);
    size_t len;
    uint8_t *png = face_png(48, 48, &len);
    uint8_t px[48 * 48];
    char err[256];
    ck_assert_int_eq(img_decode_gray_resized(png, len, NULL, 48, 48, px, NULL, NULL, err, sizeof err),
                     IMG_OK);
    nn_model *m = nn_model_clone(model);
    ck_assert_ptr_nonnull(m);
    nn_model_set_precision(m, (nn_precision)d.precision);
    float expect[7];
    nn_ws *ws = nn_ws_create(m, 1);
    ck_assert_int_eq(nn_predict_u8(m, ws, px, 1, mode, expect), 0);
    nn_ws_free(ws);
    nn_model_free(m);
    tsv_resp r;
    ck_assert_int_eq(tsv_http("POST", app_port(a), "/predict", H_PNG, png, len, &r), 0);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    check_prediction(r.body, expect);
    tsv_resp_free(&r);
    free(png);
    app_free(a);
}
END_TEST

START_TEST(test_queue_full_503)
{
    svc_config c;
    tsv_test_config(&c, model_path);
    c.workers = 1;
    c.queue_size = 1;
    c.http_threads = 4;
    c.retry_after = 2;
    app *a = tsv_start(&c);
    int p = app_port(a);
    /* Noise compresses badly and decodes slowly: a few ms of work per job. */
    int w = 1500, h = 1500;
    uint8_t *px = malloc((size_t)w * h);
    unsigned s = 1;
    for (int i = 0; i < w * h; i++) px[i] = (uint8_t)((s = s * 1103515245u + 12345u) >> 24);
    size_t len;
    uint8_t *png = tsv_png(w, h, PNG_COLOR_TYPE_GRAY, 8, px, &len);
    free(px);
    enum { N = 12 };
    pthread_t th[N];
    burst_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (burst_arg){p, png, len, 0, "", 0, ""};
        pthread_create(&th[i], NULL, burst_client, &args[i]);
    }
    int ok = 0, busy = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (args[i].status == 200) ok++;
        if (args[i].status == 503) {
            busy++;
            ck_assert_str_eq(args[i].retry, "2");
        }
    }
    for (int i = 0; i < N; i++)
        ck_assert_msg(args[i].status == 200 || args[i].status == 503,
                      "client %d: status %ld (curl %d: %s), body %s", i, args[i].status,
                      args[i].curl_rc, curl_easy_strerror((CURLcode)args[i].curl_rc),
                      args[i].body);
    ck_assert_int_eq(ok + busy, N);
    ck_assert_int_ge(ok, 1);
    ck_assert_int_ge(busy, 1);
    tsv_resp r;
    ck_assert_int_eq(tsv_http("GET", p, "/metrics", NULL, NULL, 0, &r), 0);
    char want[64];
    snprintf(want, sizeof want, "emotiond_queue_rejections_total %d\n", busy);
    ck_assert_msg(strstr(r.body, want) != NULL, "%s", r.body);
    tsv_resp_free(&r);
    app_free(a);
    free(png);
}
END_TEST

/* In-process shutdown with requests in flight: every one of them is answered. */
START_TEST(test_shutdown_drains)
{
    svc_config c;
    tsv_test_config(&c, model_path);
    c.workers = 1;
    c.queue_size = 32;
    c.http_threads = 4;
    /* The 8 jobs must fit in the 5 s grace period even under the
     * sanitizers: without face detection a 1200x1200 image costs only its
     * decode, as this test was sized for. */
    c.face_cascade[0] = '\0';
    app *a = tsv_start(&c);
    int p = app_port(a);
    int w = 1200, h = 1200;
    uint8_t *px = malloc((size_t)w * h);
    unsigned s = 3;
    for (int i = 0; i < w * h; i++) px[i] = (uint8_t)((s = s * 1103515245u + 12345u) >> 24);
    size_t len;
    uint8_t *png = tsv_png(w, h, PNG_COLOR_TYPE_GRAY, 8, px, &len);
    free(px);
    enum { N = 8 };
    pthread_t th[N];
    burst_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (burst_arg){p, png, len, 0, "", 0, ""};
        pthread_create(&th[i], NULL, burst_client, &args[i]);
    }
    ck_assert_int_eq(tsv_wait_predicts(p, N, 20), 0); /* every request has reached the server */
    ck_assert_int_eq(app_shutdown(a), 0);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(args[i].status == 200, "request %d: %ld", i, args[i].status);
    }
    /* The listening socket is closed. */
    tsv_resp r;
    ck_assert_int_ne(tsv_http("GET", p, "/healthz", NULL, NULL, 0, &r), 0);
    tsv_resp_free(&r);
    app_free(a);
    free(png);
}
END_TEST

/* libmicrohttpd never times out by default: the configured timeout closes a
 * client that stops halfway through its headers. */
START_TEST(test_connection_timeout)
{
    svc_config c;
    tsv_test_config(&c, model_path);
    c.connection_timeout = 1;
    app *a = tsv_start(&c);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)app_port(a));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char *partial = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    ck_assert_int_eq(write(fd, partial, strlen(partial)), (ssize_t)strlen(partial));
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    double t0 = predict_now();
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    double dt = predict_now() - t0;
    ck_assert_msg(n <= 0, "the server answered a half-sent request");
    ck_assert_msg(dt > 0.5 && dt < 5, "closed after %.2f s", dt);
    close(fd);
    app_free(a);
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("service_http");
    TCase *tc = tcase_create("http");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_health_endpoints);
    tcase_add_test(tc, test_predict_tta);
    tcase_add_test(tc, test_predict_served_defaults);
    tcase_add_test(tc, test_root_and_openapi);
    tcase_add_test(tc, test_routing_errors);
    tcase_add_test(tc, test_cors);
    tcase_add_test(tc, test_predict_raw_png_and_jpeg);
    tcase_add_test(tc, test_predict_multipart_and_json);
    tcase_add_test(tc, test_predict_errors);
    tcase_add_test(tc, test_request_id);
    tcase_add_test(tc, test_model_endpoint);
    tcase_add_test(tc, test_metrics);
    tcase_add_test(tc, test_concurrent_equals_engine);
    tcase_add_test(tc, test_reload);
    tcase_add_test(tc, test_queue_full_503);
    tcase_add_test(tc, test_shutdown_drains);
    tcase_add_test(tc, test_connection_timeout);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
