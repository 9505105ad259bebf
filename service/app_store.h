/* app_store.h - start-up with a model store (--model-dir): the served model
 * is the store's active version, so that a restart serves what was active
 * before; an empty store first imports the configured model file. */
#ifndef SERVICE_APP_STORE_H
#define SERVICE_APP_STORE_H

#include <stddef.h>

#include "config.h"
#include "model_ref.h"
#include "model_store.h"

/* Opens cfg->model_dir into *store and loads its active version. When the
 * store has none, the model file cfg->model (or, if given is not NULL, a copy
 * of given) becomes version v0001 and is activated first. */
svc_model *app_store_open(const svc_config *cfg, const nn_model *given, ms_store **store,
                          char *err, size_t errlen);

/* Loads the active version of store. */
svc_model *app_store_load_active(ms_store *store, char *err, size_t errlen);

#endif
