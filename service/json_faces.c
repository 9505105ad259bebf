/* json_faces.c - {"faces": [...]} answers (see json_faces.h). */
#include "json_faces.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>

/* Same number formatting as json_response.c: floats round-trip exactly. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))

/* One face object; NULL when out of memory. */
static json_t *face_json(const jr_faces *f, int i)
{
    const float *p = f->probs + (size_t)i * (size_t)f->num_classes;
    const fd_box *b = &f->boxes[i];
    int best = 0;
    for (int k = 1; k < f->num_classes; k++)
        if (p[k] > p[best]) best = k;
    json_t *probs = json_object(), *top = NULL, *o = NULL;
    if (!probs) goto err;
    for (int k = 0; k < f->num_classes; k++)
        if (json_object_set_new(probs, f->class_names[k], json_real(p[k]))) goto err;
    if (f->top > 0) {
        /* Repeated argmax, as jr_prediction_json: a handful of classes. */
        unsigned char used[256] = {0};
        int n = f->top < f->num_classes ? f->top : f->num_classes;
        top = json_array();
        if (!top) goto err;
        for (int r = 0; r < n && r < 256; r++) {
            int c = -1;
            for (int k = 0; k < f->num_classes && k < 256; k++)
                if (!used[k] && (c < 0 || p[k] > p[c])) c = k;
            used[c] = 1;
            if (json_array_append_new(top, json_pack("{s:s,s:f}", "emotion", f->class_names[c],
                                                     "probability", (double)p[c])))
                goto err;
        }
    }
    o = json_pack("{s:{s:i,s:i,s:i,s:i},s:s,s:f,s:o}", "box", "x", b->x, "y", b->y, "w", b->w,
                  "h", b->h, "emotion", f->class_names[best], "confidence", (double)p[best],
                  "probabilities", probs);
    probs = NULL; /* json_pack "o" steals it, even on failure */
    if (!o) goto err;
    if (top) {
        int bad = json_object_set_new(o, "top", top);
        top = NULL;
        if (bad) goto err;
    }
    return o;
err:
    json_decref(probs);
    json_decref(top);
    json_decref(o);
    return NULL;
}

char *jr_faces_json(const jr_faces *f)
{
    json_t *faces = json_array(), *root = NULL;
    if (!faces) return NULL;
    for (int i = 0; i < f->n; i++)
        if (json_array_append_new(faces, face_json(f, i))) goto err;
    root = json_pack("{s:o}", "faces", faces);
    faces = NULL;
    if (!root) goto err;
    if (json_object_set_new(root, "model", json_pack("{s:s,s:s}", "id", f->model_id, "version",
                                                     f->model_version)) ||
        json_object_set_new(root, "image",
                            json_pack("{s:i,s:i}", "width", f->width, "height", f->height)) ||
        json_object_set_new(root, "elapsed_ms", json_real(f->elapsed_ms)))
        goto err;
    char *s = nn_json_dumps(root, DUMP_FLAGS); /* not json_dumps: see util.h */
    json_decref(root);
    return s;
err:
    json_decref(faces);
    json_decref(root);
    return NULL;
}
