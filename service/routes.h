/* routes.h - the URL table of the HTTP API: which paths exist and which
 * methods each accepts. Pure lookup, no I/O, so it is unit-tested alone. */
#ifndef SERVICE_ROUTES_H
#define SERVICE_ROUTES_H

typedef enum {
    ROUTE_PREDICT = 0,
    ROUTE_HEALTHZ,
    ROUTE_LIVEZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_MODEL,
    ROUTE_ROOT,
    ROUTE_OPENAPI,
    ROUTE_STATIC, /* the page's other files (/app.js, /style.css; web_assets.h) */
    ROUTE_ADMIN, /* /train, /models, /samples (routed by admin_routes.c) */
    ROUTE_OTHER, /* unknown paths, for metrics labels */
    ROUTE_COUNT
} route_id;

typedef enum {
    ROUTE_MATCH = 0,
    ROUTE_NOT_FOUND = 1,
    ROUTE_METHOD_NOT_ALLOWED = 2,
    ROUTE_PREFLIGHT = 3 /* OPTIONS on a known path */
} route_result;

enum { M_GET = 1, M_HEAD = 2, M_POST = 4, M_OPTIONS = 8 };

/* Looks up method and path (without the query string). *id is set for every
 * known path, to ROUTE_OTHER otherwise; *allow to the value of the Allow
 * header for that path (e.g. "POST, OPTIONS"). */
route_result route_lookup(const char *method, const char *path, route_id *id,
                          const char **allow);

/* Stable label for metrics and logs: "predict", "healthz", ... */
const char *route_name(route_id id);

#endif
