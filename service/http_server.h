/* http_server.h - the HTTP front end: libmicrohttpd in its own thread pool
 * (poll), routing, request bodies, CORS, logging and metrics per request.
 *
 * POST /predict bodies are read here, then the connection is suspended and
 * the job goes to the worker pool; the worker resumes the connection with the
 * answer. The HTTP threads never run the network themselves.
 */
#ifndef SERVICE_HTTP_SERVER_H
#define SERVICE_HTTP_SERVER_H

#include <stddef.h>
#include <stdio.h>

#include "admin_routes.h"
#include "config.h"
#include "metrics.h"
#include "worker_pool.h"

typedef struct srv_server srv_server;

/* Which API a listener serves: both (admin API on the main port), only the
 * public one (the admin API has its own port), or only the admin API. */
typedef enum { SRV_SERVE_ALL = 0, SRV_SERVE_PUBLIC = 1, SRV_SERVE_ADMIN = 2 } srv_mode;

typedef struct {
    const svc_config *cfg; /* must outlive the server */
    wp_pool *pool;
    metrics *met;
    FILE *log;             /* request and event lines (stderr) */
    const char *openapi;   /* GET /openapi.yaml body; NULL answers 404 */
    size_t openapi_len;
    admin_api *admin;      /* NULL: admin paths are unknown (404) */
    srv_mode mode;
} srv_deps;

srv_server *srv_start(const srv_deps *deps, char *err, size_t errlen);

/* The bound TCP port (useful with port 0). */
int srv_port(const srv_server *s);

/* Readiness off, new requests answered 503, listening socket closed.
 * Connections already open and requests in flight carry on. */
void srv_begin_shutdown(srv_server *s);

int srv_shutting_down(const srv_server *s);

/* Requests received and not yet completed. */
long long srv_in_flight(const srv_server *s);

/* Stops libmicrohttpd (closing idle connections) and frees the server. Call
 * only when no connection is suspended, i.e. the pool has no jobs. */
void srv_stop(srv_server *s);

#endif
