/* dataset.h - FER2013 in memory: N images of 48x48 8-bit grayscale + labels.
 *
 * Two source layouts:
 *  - Kaggle folders: <root>/<split>/<class>/NAME.jpg|*.png, classes in alphabetical
 *    order (angry, disgust, fear, happy, neutral, sad, surprise).
 *  - the original fer2013.csv (emotion,pixels,Usage), whose label order
 *    0 Angry 1 Disgust 2 Fear 3 Happy 4 Sad 5 Surprise 6 Neutral is mapped to ours.
 * Images of another size or colour are converted; unreadable ones are reported
 * by name (through the warn callback) and skipped.
 */
#ifndef NN_DATASET_H
#define NN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#define DS_NUM_CLASSES 7
#define DS_SIDE 48
#define DS_PIXELS (DS_SIDE * DS_SIDE)

extern const char *const ds_class_names[DS_NUM_CLASSES];

typedef struct {
    int n;            /* number of images */
    int cap;          /* allocated capacity */
    uint8_t *pixels;  /* n * DS_PIXELS, row-major */
    uint8_t *labels;  /* n, 0..DS_NUM_CLASSES-1 */
    int skipped;      /* unreadable files skipped while loading */
} ds_dataset;

/* Called once per skipped file with its path and the reason; may be NULL. */
typedef void (*ds_warn_fn)(void *ctx, const char *path, const char *reason);

/* Loads <dir>/<class>/NAME.{jpg,png} for every class into ds (ds is initialised here).
 * Files are sorted by name within a class, so the order is reproducible.
 * Returns 0, or -1 with a message in err (missing folder, out of memory). */
int ds_load_folder(ds_dataset *ds, const char *dir, ds_warn_fn warn, void *ctx,
                   char *err, size_t errlen);

/* Loads the rows of fer2013.csv whose Usage equals usage ("Training",
 * "PublicTest", "PrivateTest"), or all rows when usage is NULL. */
int ds_load_csv(ds_dataset *ds, const char *csv_path, const char *usage,
                ds_warn_fn warn, void *ctx, char *err, size_t errlen);

/* Appends one image; returns 0 or -1 on allocation failure. */
int ds_append(ds_dataset *ds, const uint8_t *pixels48, int label);

/* Per-class counts into counts[DS_NUM_CLASSES]. */
void ds_class_counts(const ds_dataset *ds, int *counts);

void ds_free(ds_dataset *ds);

/* Index of a class name (case-insensitive), or -1. */
int ds_class_index(const char *name);

#endif
