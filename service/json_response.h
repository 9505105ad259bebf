/* json_response.h - the JSON bodies the API answers with, built with Jansson
 * so that every string is escaped properly. Each function returns a malloc'ed
 * NUL-terminated text, or NULL when out of memory. */
#ifndef SERVICE_JSON_RESPONSE_H
#define SERVICE_JSON_RESPONSE_H

/* {"error": {"code": code, "message": message}}. A message that is not valid
 * UTF-8 (client bytes quoted by a parse error) is sent with '?' for the bad
 * bytes, not turned into a NULL (which callers answer 503 out_of_memory). */
char *jr_error(const char *code, const char *message);

/* A malloc'ed copy of s with every byte that is not part of a valid UTF-8
 * sequence replaced by '?', so that Jansson accepts it; NULL when out of memory. */
char *jr_utf8_safe(const char *s);

typedef struct {
    int num_classes;
    const char *const *class_names; /* num_classes names */
    const float *probs;             /* num_classes probabilities */
    const char *model_id;
    const char *model_version;
    double elapsed_ms;
    int top;            /* > 0: add "top", the top classes best first */
    int width, height;  /* the uploaded image's size */
} jr_prediction;

/* {"emotion", "confidence", "probabilities": {...}, ["top": [...]],
 *  "model": {"id", "version"}, "image": {"width", "height"}, "elapsed_ms"} */
char *jr_prediction_json(const jr_prediction *p);

/* {"status": status} plus, when reason is not NULL, "reason": reason. */
char *jr_status(const char *status, const char *reason);

/* Fallback body when building a body failed (static, never freed). */
extern const char jr_oom_body[];

#endif
