/* app_store.c - see app_store.h. */
#include "app_store.h"

#include <math.h>
#include <stdio.h>

svc_model *app_store_load_active(ms_store *store, char *err, size_t errlen)
{
    char id[MS_ID_MAX], path[1400];
    if (ms_active(store, id, sizeof id) || ms_file_path(store, id, path, sizeof path)) {
        snprintf(err, errlen, "the model store %s has no active model", ms_dir(store));
        return NULL;
    }
    return sm_load(path, err, errlen);
}

svc_model *app_store_open(const svc_config *cfg, const nn_model *given, ms_store **store,
                          char *err, size_t errlen)
{
    char id[MS_ID_MAX];
    nn_model *m = NULL;
    *store = ms_open(cfg->model_dir, cfg->keep_models, err, errlen);
    if (!*store) return NULL;
    if (ms_active(*store, id, sizeof id) == 0) return app_store_load_active(*store, err, errlen);
    /* empty store: the configured model becomes its first version */
    if (given) m = nn_model_clone(given);
    else if (nn_model_load(cfg->model, &m, err, errlen)) goto err;
    if (!m) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    ms_add_info info = {"import", NULL, "ready", NULL, NAN, NAN};
    if (ms_add(*store, m, &info, id, sizeof id, err, errlen) || ms_set_active(*store, id, err, errlen))
        goto err;
    nn_model_free(m);
    return app_store_load_active(*store, err, errlen);
err:
    nn_model_free(m);
    ms_close(*store);
    *store = NULL;
    return NULL;
}
