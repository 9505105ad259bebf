/* model_store.h - the model store: a directory with one file per model
 * version (vNNNN.emod) and manifest.json, which lists the versions with their
 * metadata and names the active one.
 *
 * Every change writes the model file first (nn_model_save: tmp + fsync +
 * rename) and then replaces the manifest atomically (fs_write_atomic), so a
 * kill -9 at any moment leaves the previous manifest, which only names
 * complete files. Files the manifest does not name (a version saved just
 * before a crash, temporaries) are removed when the store is opened.
 * Thread-safe: one mutex guards the in-memory manifest and its writes. */
#ifndef SERVICE_MODEL_STORE_H
#define SERVICE_MODEL_STORE_H

#include <stddef.h>

#include "nn.h"

typedef struct ms_store ms_store;

#define MS_ID_MAX 32

typedef struct {
    const char *source;      /* "import" or "training" */
    const char *job;         /* training job id, or NULL */
    const char *state;       /* "ready" or "rejected" */
    const char *reason;      /* why rejected, or NULL */
    double val_accuracy;     /* on the job's validation set; NAN if unknown */
    double baseline_accuracy;/* the active model's on the same set; NAN if unknown */
} ms_add_info;

/* Opens (creating it if needed) the store in dir, keeping keep versions. */
ms_store *ms_open(const char *dir, int keep, char *err, size_t errlen);
void ms_close(ms_store *s);

const char *ms_dir(const ms_store *s);

/* The active version's id; returns -1 (and "") when there is none. */
int ms_active(ms_store *s, char *id, size_t idlen);

/* The file of version id; -1 when the store has no such version. */
int ms_file_path(ms_store *s, const char *id, char *path, size_t pathlen);

/* Saves m as a new version (its metadata gets "version": the new id) and
 * records it; applies retention. The new id goes to id_out. On failure the
 * store is as before (no new file left) and errno says why (ENOSPC, EROFS,
 * ENOMEM...), for fs_storage_status. */
int ms_add(ms_store *s, nn_model *m, const ms_add_info *info, char *id_out, size_t idlen,
           char *err, size_t errlen);

/* Records id as the active version, durably. On failure the previous
 * manifest stands and errno says why (ENOENT: no such version). */
int ms_set_active(ms_store *s, const char *id, char *err, size_t errlen);

/* {"active": id|null, "keep": N, "versions": [...newest first]} (malloc'ed JSON). */
char *ms_list_json(ms_store *s);

/* 1 when id has the form of a version id (v + digits), so that it can be
 * put into a path. */
int ms_valid_id(const char *id);

#endif
