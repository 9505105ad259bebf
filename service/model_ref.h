/* model_ref.h - a loaded, validated model plus what the API says about it
 * (id, version, the GET /model body), shared by reference count between the
 * worker pool, the HTTP threads and SIGHUP reloads. The nn_model inside is
 * the master copy: workers clone it and never run inference on it, so it is
 * read-only once published and may be read from any thread. */
#ifndef SERVICE_MODEL_REF_H
#define SERVICE_MODEL_REF_H

#include <stdatomic.h>
#include <stddef.h>

#include "nn.h"

typedef struct svc_model {
    nn_model *nn;
    char id[128];
    char version[64];
    char digest[32];   /* FNV-1a 64 of the parameters, hex */
    char *info_json;   /* GET /model body */
    int input_size;
    int num_classes;
    const char **class_names; /* num_classes pointers into nn */
    atomic_int refs;
} svc_model;

/* Loads and validates a model file: the header must describe a classifier
 * the service can feed (input side and class names sane) and a forward pass
 * on a blank image must succeed and give finite probabilities. */
svc_model *sm_load(const char *path, char *err, size_t errlen);

/* Same checks for a model already in memory; takes ownership of m (freed on
 * failure too). path is only reported in the metadata (may be NULL). */
svc_model *sm_wrap(nn_model *m, const char *path, char *err, size_t errlen);

svc_model *sm_ref(svc_model *s);
void sm_unref(svc_model *s);

#endif
