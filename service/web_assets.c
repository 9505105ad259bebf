/* web_assets.c - lookup of the embedded page files (see web_assets.h). */
#include "web_assets.h"

#include <string.h>

const char web_page_csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

const char web_api_csp[] = "default-src 'none'; frame-ancestors 'none'";

const web_asset *web_asset_find(const char *path)
{
    if (!path || path[0] != '/') return NULL;
    const char *name = path[1] ? path + 1 : "index.html";
    for (size_t i = 0; i < web_asset_count; i++)
        if (!strcmp(web_assets[i].name, name)) return &web_assets[i];
    return NULL;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

const char *web_asset_type(const web_asset *a)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (ends_with(a->name, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}
