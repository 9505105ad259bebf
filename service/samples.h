/* samples.h - labelled feedback images (POST /samples): stored durably in
 * <data_dir>/feedback/<class>/<hash>.<png|jpg>, the Kaggle layout, so that the
 * next training job can add them to its training set.
 *
 * A sample is written to a temporary file, fsynced, renamed into its class
 * folder and the folder fsynced before it is acknowledged: an answered
 * sample survives kill -9. The file name is the content hash, which makes a
 * second upload of the same bytes a no-op (deduplication). */
#ifndef SERVICE_SAMPLES_H
#define SERVICE_SAMPLES_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

#define SAMPLE_ID_LEN 16 /* hex digits */

typedef struct {
    int status;          /* 201 stored, 200 duplicate, else an error status */
    const char *code;    /* error code (static), NULL on success */
    char message[256];
    char id[SAMPLE_ID_LEN + 1];
    char label[16];      /* the stored class (of the first upload for duplicates) */
    int duplicate;
} sample_result;

/* Validates (decodable image, known label) and stores one sample. */
void samples_store(const char *data_dir, const uint8_t *img, size_t len, const char *label,
                   const img_limits *lim, sample_result *out);

/* {"total": N, "classes": {"angry": n, ...}} of the feedback folder (malloc'ed). */
char *samples_stats_json(const char *data_dir);

/* Number of feedback images (0 when the folder does not exist). */
int samples_count(const char *data_dir);

#endif
