/* test_service_json.c - the shapes of the JSON answers, the metrics text and
 * the log lines, without a server. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_response.h"
#include "metrics.h"
#include "predict.h"
#include "request_log.h"

static const char *const names[7] = {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"};

START_TEST(test_error_shape)
{
    char *s = jr_error("corrupt_png", "bad \"IDAT\"\nchunk");
    json_t *o = json_loads(s, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(json_object_size(o), 1);
    json_t *e = json_object_get(o, "error");
    ck_assert_int_eq(json_object_size(e), 2);
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "corrupt_png");
    ck_assert_str_eq(json_string_value(json_object_get(e, "message")), "bad \"IDAT\"\nchunk");
    json_decref(o);
    free(s);
    o = json_loads(jr_oom_body, 0, NULL);
    ck_assert_ptr_nonnull(json_object_get(o, "error"));
    json_decref(o);
}
END_TEST

START_TEST(test_prediction_shape)
{
    float probs[7] = {0.05f, 0.01f, 0.04f, 0.6f, 0.2f, 0.07f, 0.03f};
    jr_prediction p = {7, names, probs, "seed", "abc123", 1.25, 0, 48, 64};
    char *s = jr_prediction_json(&p);
    json_t *o = json_loads(s, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_object_get(o, "emotion")), "happy");
    ck_assert(fabs(json_real_value(json_object_get(o, "confidence")) - 0.6) < 1e-7);
    json_t *pr = json_object_get(o, "probabilities");
    ck_assert_int_eq(json_object_size(pr), 7);
    /* Floats survive the text round trip exactly. */
    for (int i = 0; i < 7; i++)
        ck_assert((float)json_real_value(json_object_get(pr, names[i])) == probs[i]);
    /* Keys in class order. */
    const char *key;
    json_t *v;
    int i = 0;
    json_object_foreach(pr, key, v) ck_assert_str_eq(key, names[i++]);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "model"), "id")), "seed");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "model"), "version")), "abc123");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(o, "image"), "height")), 64);
    ck_assert(fabs(json_real_value(json_object_get(o, "elapsed_ms")) - 1.25) < 1e-9);
    ck_assert_ptr_null(json_object_get(o, "top"));
    json_decref(o);
    free(s);

    p.top = 3;
    s = jr_prediction_json(&p);
    o = json_loads(s, 0, NULL);
    json_t *top = json_object_get(o, "top");
    ck_assert_int_eq(json_array_size(top), 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(top, 0), "emotion")), "happy");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(top, 1), "emotion")), "neutral");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(top, 2), "emotion")), "sad");
    json_decref(o);
    free(s);
    p.top = 99; /* clamped to the number of classes */
    s = jr_prediction_json(&p);
    o = json_loads(s, 0, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(o, "top")), 7);
    json_decref(o);
    free(s);
}
END_TEST

START_TEST(test_status_shape)
{
    char *s = jr_status("not_ready", "shutting_down");
    ck_assert_str_eq(s, "{\"status\":\"not_ready\",\"reason\":\"shutting_down\"}");
    free(s);
    s = jr_status("ok", NULL);
    ck_assert_str_eq(s, "{\"status\":\"ok\"}");
    free(s);
}
END_TEST

START_TEST(test_status_codes)
{
    ck_assert_int_eq(predict_status_for_image_error(IMG_E_CORRUPT_PNG), 400);
    ck_assert_int_eq(predict_status_for_image_error(IMG_E_TRUNCATED_JPEG), 400);
    ck_assert_int_eq(predict_status_for_image_error(IMG_E_FORMAT), 400);
    ck_assert_int_eq(predict_status_for_image_error(IMG_E_EMPTY), 400);
    ck_assert_int_eq(predict_status_for_image_error(IMG_E_TOO_LARGE), 422);
    ck_assert_int_eq(predict_status_for_image_error(IMG_E_NOMEM), 503);
}
END_TEST

START_TEST(test_metrics_text)
{
    metrics m;
    metrics_init(&m);
    metrics_observe_request(&m, ROUTE_PREDICT, 200, 0.003);
    metrics_observe_request(&m, ROUTE_PREDICT, 200, 0.2);
    metrics_observe_request(&m, ROUTE_PREDICT, 418, 20);
    metrics_decode_failure(&m, "corrupt_png");
    metrics_decode_failure(&m, "something new");
    metrics_gauges g = {3, 64, 2, 1, 1.5, "seed", "v\"1\n", 1, 7};
    size_t len;
    char *t = metrics_render(&m, &g, &len);
    ck_assert_uint_eq(strlen(t), len);
    ck_assert_ptr_nonnull(strstr(t, "emotiond_http_requests_total{route=\"predict\",status=\"200\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "emotiond_http_requests_total{route=\"predict\",status=\"other\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "emotiond_http_request_duration_seconds_bucket{route=\"predict\",le=\"0.005\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "emotiond_http_request_duration_seconds_bucket{route=\"predict\",le=\"0.25\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "emotiond_http_request_duration_seconds_bucket{route=\"predict\",le=\"10\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "emotiond_http_request_duration_seconds_bucket{route=\"predict\",le=\"+Inf\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(t, "emotiond_http_request_duration_seconds_count{route=\"predict\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(t, "emotiond_decode_failures_total{reason=\"corrupt_png\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "emotiond_decode_failures_total{reason=\"other\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "emotiond_queue_depth 3\n"));
    ck_assert_ptr_nonnull(strstr(t, "emotiond_worker_busy_seconds_total 1.500000\n"));
    ck_assert_ptr_nonnull(strstr(t, "emotiond_worker_batches_total 7\n"));
    ck_assert_ptr_nonnull(strstr(t, "emotiond_model_info{id=\"seed\",version=\"v\\\"1\\n\"} 1\n"));
    /* Every line is a comment or "name{labels} value". */
    char *save = NULL;
    for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') {
            ck_assert(!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7));
            continue;
        }
        ck_assert_msg(!strncmp(line, "emotiond_", 9), "%s", line);
        char *sp = strrchr(line, ' ');
        ck_assert_ptr_nonnull(sp);
        char *end;
        strtod(sp + 1, &end);
        ck_assert_msg(*end == '\0', "bad value in '%s'", line);
    }
    free(t);
}
END_TEST

START_TEST(test_log_lines)
{
    char id[RLOG_ID_MAX + 1];
    ck_assert_int_eq(rlog_accept_id("req-1.2_3:4", id), 1);
    ck_assert_str_eq(id, "req-1.2_3:4");
    ck_assert_int_eq(rlog_accept_id("a b", id), 0);
    ck_assert_int_eq(rlog_accept_id("a\nb", id), 0);
    ck_assert_int_eq(rlog_accept_id("", id), 0);
    ck_assert_int_eq(rlog_accept_id(NULL, id), 0);
    char longid[100];
    memset(longid, 'a', 99);
    longid[99] = '\0';
    ck_assert_int_eq(rlog_accept_id(longid, id), 0);

    char esc[64];
    rlog_escape("/x\n\"y\\\x01\xff", esc, sizeof esc);
    ck_assert_str_eq(esc, "/x\\x0a\\\"y\\\\\\x01\\xff");

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rlog_entry e = {"id1", "POST", "/predict\n{\"forged\":1}", 400, 99, 1.5, "corrupt_png", "127.0.0.1"};
    rlog_request(f, CFG_LOG_JSON, &e);
    rlog_request(f, CFG_LOG_PLAIN, &e);
    rlog_event(f, CFG_LOG_JSON, "info", "ready on port %d", 8080);
    fclose(f);
    /* Three lines exactly: the newline in the path did not start a new one. */
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    ck_assert_int_eq(lines, 3);
    char *nl = strchr(buf, '\n');
    *nl = '\0';
    json_t *o = json_loads(buf, 0, NULL);
    ck_assert_msg(o != NULL, "JSON log line does not parse: %s", buf);
    ck_assert_str_eq(json_string_value(json_object_get(o, "id")), "id1");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "status")), 400);
    ck_assert_str_eq(json_string_value(json_object_get(o, "error")), "corrupt_png");
    ck_assert_ptr_null(json_object_get(o, "forged"));
    json_decref(o);
    char *plain = nl + 1;
    ck_assert_ptr_nonnull(strstr(plain, "status=400"));
    ck_assert_ptr_nonnull(strstr(plain, "id=id1"));
    char *ev = strchr(plain, '\n') + 1;
    *strchr(ev, '\n') = '\0';
    o = json_loads(ev, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(o, "msg")), "ready on port 8080");
    json_decref(o);
    free(buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service_json");
    TCase *tc = tcase_create("json");
    tcase_add_test(tc, test_error_shape);
    tcase_add_test(tc, test_prediction_shape);
    tcase_add_test(tc, test_status_shape);
    tcase_add_test(tc, test_status_codes);
    tcase_add_test(tc, test_metrics_text);
    tcase_add_test(tc, test_log_lines);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
