/* json_response.c - JSON bodies of the API (see json_response.h). */
#include "json_response.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const char jr_oom_body[] =
    "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"the server is out of memory\"}}";

/* 9 significant digits round-trip a float exactly: clients can compare the
 * answer with a direct engine call bit for bit. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))

static char *dump(json_t *o)
{
    if (!o) return NULL;
    char *s = nn_json_dumps(o, DUMP_FLAGS); /* not json_dumps: see util.h */
    json_decref(o);
    return s;
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 if there is none. */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
             : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    /* overlong 3/4-byte forms, UTF-16 surrogates, above U+10FFFF */
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return n;
}

char *jr_utf8_safe(const char *s)
{
    char *out = strdup(s ? s : "");
    if (!out) return NULL;
    for (unsigned char *p = (unsigned char *)out; *p;) {
        size_t n = utf8_seq(p);
        if (n) {
            p += n;
        } else {
            *p++ = '?';
        }
    }
    return out;
}

char *jr_error(const char *code, const char *message)
{
    char *s = dump(json_pack("{s:{s:s,s:s}}", "error", "code", code ? code : "error", "message",
                             message ? message : ""));
    if (s || !message) return s;
    /* Jansson refuses strings that are not UTF-8: jansson's own parse errors
     * quote the client's bytes ("invalid escape near '\\xc6'"), and a name cut
     * at a byte limit can end inside a character. */
    char *safe = jr_utf8_safe(message);
    if (!safe) return NULL;
    s = dump(json_pack("{s:{s:s,s:s}}", "error", "code", code ? code : "error", "message", safe));
    free(safe);
    return s;
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
