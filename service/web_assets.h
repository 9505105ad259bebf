/* web_assets.h - the web page served at GET / (service/web/), embedded in
 * the binary at build time by service/web/embed.c: the page needs no files
 * at run time and always matches the binary that serves it. */
#ifndef SERVICE_WEB_ASSETS_H
#define SERVICE_WEB_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *name;          /* base name in service/web/, e.g. "app.js" */
    const unsigned char *data; /* len bytes, then a NUL */
    size_t len;
    const char *etag;          /* strong ETag, quoted: hash of the bytes */
} web_asset;

/* Generated (build/gen/web_assets.c). */
extern const web_asset web_assets[];
extern const size_t web_asset_count;

/* The asset served at a URL path: "/" and "/index.html" are index.html,
 * "/NAME" is NAME. NULL when there is none. */
const web_asset *web_asset_find(const char *path);

/* Its Content-Type, from the name's extension. */
const char *web_asset_type(const web_asset *a);

/* Content-Security-Policy of the page's responses: no inline script or
 * style, nothing from another origin, not framed. */
extern const char web_page_csp[];

/* Content-Security-Policy of every other response (JSON, text): nothing may
 * load from them at all. */
extern const char web_api_csp[];

#endif
