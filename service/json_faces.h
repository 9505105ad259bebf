/* json_faces.h - the body of POST /predict for a photo: every face found,
 * with its box and its emotion. Built with Jansson, like json_response.h. */
#ifndef SERVICE_JSON_FACES_H
#define SERVICE_JSON_FACES_H

#include "face_detect.h"

typedef struct {
    int num_classes;
    const char *const *class_names; /* num_classes names */
    int n;                          /* faces */
    const fd_box *boxes;            /* n boxes, largest first */
    const float *probs;             /* n x num_classes probabilities */
    const char *model_id;
    const char *model_version;
    double elapsed_ms;
    int top;           /* > 0: each face gets "top", its top classes best first */
    int width, height; /* the uploaded image's size */
} jr_faces;

/* {"faces": [{"box": {"x","y","w","h"}, "emotion", "confidence",
 *             "probabilities": {...}, ["top": [...]]}, ...],
 *  "model": {"id", "version"}, "image": {"width", "height"}, "elapsed_ms"}
 * malloc'ed text, or NULL when out of memory. */
char *jr_faces_json(const jr_faces *f);

#endif
