/* routes.c - the URL table (see routes.h). */
#include "routes.h"

#include <string.h>

#include "web_assets.h"

typedef struct {
    const char *path;
    route_id id;
    unsigned methods;
    const char *allow;
} route;

/* HEAD is accepted wherever GET is: libmicrohttpd drops the body itself. */
static const route table[] = {
    {"/predict", ROUTE_PREDICT, M_POST | M_OPTIONS, "POST, OPTIONS"},
    {"/healthz", ROUTE_HEALTHZ, M_GET | M_HEAD | M_OPTIONS, "GET, HEAD, OPTIONS"},
    {"/livez", ROUTE_LIVEZ, M_GET | M_HEAD | M_OPTIONS, "GET, HEAD, OPTIONS"},
    {"/readyz", ROUTE_READYZ, M_GET | M_HEAD | M_OPTIONS, "GET, HEAD, OPTIONS"},
    {"/metrics", ROUTE_METRICS, M_GET | M_HEAD | M_OPTIONS, "GET, HEAD, OPTIONS"},
    {"/model", ROUTE_MODEL, M_GET | M_HEAD | M_OPTIONS, "GET, HEAD, OPTIONS"},
    {"/", ROUTE_ROOT, M_GET | M_HEAD | M_OPTIONS, "GET, HEAD, OPTIONS"},
    {"/openapi.yaml", ROUTE_OPENAPI, M_GET | M_HEAD | M_OPTIONS, "GET, HEAD, OPTIONS"},
};

static unsigned method_bit(const char *m)
{
    if (!strcmp(m, "GET")) return M_GET;
    if (!strcmp(m, "HEAD")) return M_HEAD;
    if (!strcmp(m, "POST")) return M_POST;
    if (!strcmp(m, "OPTIONS")) return M_OPTIONS;
    return 0;
}

route_result route_lookup(const char *method, const char *path, route_id *id,
                          const char **allow)
{
    *id = ROUTE_OTHER;
    *allow = NULL;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].path, path)) continue;
        *id = table[i].id;
        *allow = table[i].allow;
        unsigned bit = method_bit(method);
        if (!(bit & table[i].methods)) return ROUTE_METHOD_NOT_ALLOWED;
        return bit == M_OPTIONS ? ROUTE_PREFLIGHT : ROUTE_MATCH;
    }
    /* The files of the web page embedded in the binary ("/" is in the table). */
    if (web_asset_find(path)) {
        static const char static_allow[] = "GET, HEAD, OPTIONS";
        unsigned bit = method_bit(method);
        *id = ROUTE_STATIC;
        *allow = static_allow;
        if (!(bit & (M_GET | M_HEAD | M_OPTIONS))) return ROUTE_METHOD_NOT_ALLOWED;
        return bit == M_OPTIONS ? ROUTE_PREFLIGHT : ROUTE_MATCH;
    }
    return ROUTE_NOT_FOUND;
}

const char *route_name(route_id id)
{
    static const char *names[ROUTE_COUNT] = {"predict", "healthz", "livez",   "readyz", "metrics",
                                             "model",   "root",    "openapi", "static",
                                             "admin",   "other"};
    return (unsigned)id < ROUTE_COUNT ? names[id] : "other";
}
