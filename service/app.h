/* app.h - one running service: model, worker pool, metrics and HTTP server,
 * started and stopped together. cmd_serve wraps it with signals; the
 * integration tests start it in-process. */
#ifndef SERVICE_APP_H
#define SERVICE_APP_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "model_ref.h"

typedef struct app app;

/* Loads cfg->model and starts serving. cfg is copied. */
int app_start(const svc_config *cfg, FILE *log, app **out, char *err, size_t errlen);

/* Starts with a model already loaded (a reference is taken). With
 * cfg->model_dir the store's active version is served instead; model only
 * seeds an empty store. */
int app_start_with_model(const svc_config *cfg, FILE *log, svc_model *model, app **out,
                         char *err, size_t errlen);

int app_port(const app *a);

/* The port of the admin API: the separate admin listener's, or app_port. */
int app_admin_port(const app *a);

/* Re-reads the model file (SIGHUP). A file that fails to load or validate is
 * refused with a message in err and the current model keeps serving. */
int app_reload(app *a, char *err, size_t errlen);

/* Graceful stop: readiness off, listening socket closed, in-flight requests
 * finished within cfg->shutdown_grace seconds (after which queued jobs are
 * answered 503), then libmicrohttpd stopped. Returns 0 when every request
 * finished within the grace period. */
int app_shutdown(app *a);

/* Frees everything (calls app_shutdown first if needed). */
void app_free(app *a);

#endif
