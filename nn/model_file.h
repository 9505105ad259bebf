/* model_file.h - the on-disk format shared by models and checkpoints.
 *
 *   "EMOD"  u32 version  u64 header_len  header (JSON, header_len bytes)
 *   float32 params[n_params]  then each extra array named in the header
 *   u32 CRC-32 of every byte before it
 * Little-endian. The header holds the architecture, classes, input size and
 * normalisation, training metadata, and for checkpoints the trainer state. */
#ifndef NN_MODEL_FILE_H
#define NN_MODEL_FILE_H

#include <stddef.h>

#include "nn.h"

#define NN_FILE_MAGIC "EMOD"
#define NN_FILE_VERSION 1u

typedef struct {
    const char *name;
    float *data;
    size_t count;
} nn_extra;

/* Saves m plus extra float arrays and an optional "checkpoint" JSON object
 * text (NULL for a plain model), atomically (temp file, fsync, rename). */
int nn_file_save(const nn_model *m, const nn_extra *extras, int n_extras,
                 const char *ckpt_json, const char *path, char *err, size_t errlen);

/* Loads a model; when extras is non-NULL each named array (count must match)
 * is filled, and *ckpt_json (malloc'ed, may be NULL) receives the checkpoint
 * object text. */
int nn_file_load_mem(const void *buf, size_t len, nn_model **out, nn_extra *extras,
                     int n_extras, char **ckpt_json, char *err, size_t errlen);
int nn_file_load(const char *path, nn_model **out, nn_extra *extras, int n_extras,
                 char **ckpt_json, char *err, size_t errlen);

#endif
