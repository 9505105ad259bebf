/* json_response.c - JSON bodies of the API (see json_response.h). */
#include "json_response.h"

#include <jansson.h>
#include <stdlib.h>

const char jr_oom_body[] =
    "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"the server is out of memory\"}}";

/* 9 significant digits round-trip a float exactly: clients can compare the
 * answer with a direct engine call bit for bit. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))

static char *dump(json_t *o)
{
    if (!o) return NULL;
    char *s = json_dumps(o, DUMP_FLAGS);
    json_decref(o);
    return s;
}

char *jr_error(const char *code, const char *message)
{
    return dump(json_pack("{s:{s:s,s:s}}", "error", "code", code ? code : "error", "message",
                          message ? message : ""));
}

char *jr_status(const char *status, const char *reason)
{
    if (reason) return dump(json_pack("{s:s,s:s}", "status", status, "reason", reason));
    return dump(json_pack("{s:s}", "status", status));
}

char *jr_prediction_json(const jr_prediction *p)
{
    json_t *root = NULL, *probs = NULL, *top = NULL;
    int best = 0;
    for (int i = 1; i < p->num_classes; i++)
        if (p->probs[i] > p->probs[best]) best = i;

    probs = json_object();
    if (!probs) goto err;
    for (int i = 0; i < p->num_classes; i++)
        if (json_object_set_new(probs, p->class_names[i], json_real(p->probs[i]))) goto err;

    if (p->top > 0) {
        /* Selection by repeated argmax: at most a handful of classes. */
        int k = p->top < p->num_classes ? p->top : p->num_classes;
        unsigned char used[256] = {0};
        top = json_array();
        if (!top) goto err;
        for (int r = 0; r < k && r < 256; r++) {
            int b = -1;
            for (int i = 0; i < p->num_classes && i < 256; i++)
                if (!used[i] && (b < 0 || p->probs[i] > p->probs[b])) b = i;
            used[b] = 1;
            if (json_array_append_new(top, json_pack("{s:s,s:f}", "emotion", p->class_names[b],
                                                     "probability", (double)p->probs[b])))
                goto err;
        }
    }

    root = json_pack("{s:s,s:f,s:o}", "emotion", p->class_names[best], "confidence",
                     (double)p->probs[best], "probabilities", probs);
    probs = NULL; /* owned by root now (json_pack "o" steals even on failure) */
    if (!root) goto err;
    if (top) {
        if (json_object_set_new(root, "top", top)) {
            top = NULL;
            goto err;
        }
        top = NULL;
    }
    if (json_object_set_new(root, "model", json_pack("{s:s,s:s}", "id", p->model_id, "version",
                                                     p->model_version)) ||
        json_object_set_new(root, "image",
                            json_pack("{s:i,s:i}", "width", p->width, "height", p->height)) ||
        json_object_set_new(root, "elapsed_ms", json_real(p->elapsed_ms)))
        goto err;
    return dump(root);
err:
    json_decref(probs);
    json_decref(top);
    json_decref(root);
    return NULL;
}
