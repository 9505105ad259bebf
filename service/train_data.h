/* train_data.h - the data a training job sees: the dataset it names (only a
 * folder under the configured data directory), plus the feedback samples,
 * plus an optional validation split, assembled as a folder of symbolic links
 * in the Kaggle layout that nn_train_run reads like any other. */
#ifndef SERVICE_TRAIN_DATA_H
#define SERVICE_TRAIN_DATA_H

#include <stddef.h>

/* Resolves name (a relative folder under data_dir; NULL or "" is data_dir
 * itself) to its real path in out. Absolute paths, "..", and symbolic links
 * leading outside data_dir are refused with a message. */
int td_resolve(const char *data_dir, const char *name, char *out, size_t outlen, char *err,
               size_t errlen);

/* The data folder of a job. When there is nothing to add (no feedback to
 * use, val_split 0) that is dataset itself; otherwise a link farm is built in
 * job_dir/data: train/<class>/ = dataset's train images (minus the
 * validation share) + feedback images, test/ = dataset's test/ or the
 * validation share. The chosen folder goes to out. */
int td_prepare(const char *dataset, const char *feedback_dir, double val_split,
               const char *job_dir, char *out, size_t outlen, char *err, size_t errlen);

#endif
