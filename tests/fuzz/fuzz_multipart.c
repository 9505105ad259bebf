/* fuzz_multipart.c - the streaming multipart/form-data parser of POST /predict
 * and POST /samples.
 *
 * Input: the Content-Type header value, a '\n', then the body. The boundary
 * comes from mp_boundary_from_content_type as in the service. The body is
 * parsed three times: in one piece and in chunks of varying sizes (the way
 * libmicrohttpd hands it over) for the field "image", and once for the
 * 64-byte field "label" as POST /samples does. Invariant: how the body is
 * split never changes the result (multipart.h promises any split works). */
#include <string.h>

#include "fuzz_common.h"
#include "multipart.h"

#define MAX_FIELD (1u << 20)

typedef struct {
    int rc;
    uint8_t *data;
    size_t len;
    char content_type[128], filename[256];
} result;

/* split == 0: one call; otherwise chunk sizes 1..split cycling, seeded. */
static void parse(const char *boundary, const char *field, size_t max, const uint8_t *body,
                  size_t n, unsigned split, unsigned seed, result *r)
{
    mp_parser *p = malloc(sizeof *p);
    FUZZ_CHECK(p != NULL);
    memset(r, 0, sizeof *r);
    FUZZ_CHECK(mp_init(p, boundary, field, max) == MP_OK);
    if (!split) {
        mp_feed(p, body, n);
    } else {
        size_t off = 0;
        unsigned s = seed;
        while (off < n) {
            s = s * 1103515245u + 12345u;
            size_t c = 1 + (s >> 16) % split;
            if (c > n - off) c = n - off;
            /* a copy of exactly the chunk, so ASan catches reads past it */
            uint8_t *chunk = malloc(c);
            FUZZ_CHECK(chunk != NULL);
            memcpy(chunk, body + off, c);
            int rc = mp_feed(p, chunk, c);
            free(chunk);
            off += c;
            if (rc) break;
        }
    }
    r->rc = mp_finish(p);
    if (r->rc == MP_OK) {
        FUZZ_CHECK(p->len <= max);
        memcpy(r->content_type, p->content_type, sizeof r->content_type);
        memcpy(r->filename, p->filename, sizeof r->filename);
        FUZZ_CHECK(memchr(r->content_type, '\0', sizeof r->content_type) != NULL);
        FUZZ_CHECK(memchr(r->filename, '\0', sizeof r->filename) != NULL);
        r->data = mp_take_data(p, &r->len);
    }
    mp_free(p);
    free(p);
}

static void same(const result *a, const result *b)
{
    FUZZ_CHECK(a->rc == b->rc);
    if (a->rc != MP_OK) return;
    FUZZ_CHECK(a->len == b->len);
    FUZZ_CHECK(a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
    FUZZ_CHECK(!strcmp(a->content_type, b->content_type));
    FUZZ_CHECK(!strcmp(a->filename, b->filename));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size < 512 ? size : 512);
    if (!nl) return 0;
    char *ct = fuzz_strndup(data, (size_t)(nl - data));
    const uint8_t *body = nl + 1;
    size_t n = size - (size_t)(body - data);

    char boundary[MP_MAX_BOUNDARY + 1];
    if (mp_boundary_from_content_type(ct, boundary, sizeof boundary) == 0) {
        FUZZ_CHECK(strlen(boundary) >= 1 && strlen(boundary) <= MP_MAX_BOUNDARY);
        /* a body of exactly n bytes, so ASan catches reads past its end */
        uint8_t *b = malloc(n ? n : 1);
        FUZZ_CHECK(b != NULL);
        memcpy(b, body, n);
        result whole, split, small;
        parse(boundary, "image", MAX_FIELD, b, n, 0, 0, &whole);
        parse(boundary, "image", MAX_FIELD, b, n, 1 + (unsigned)(n % 97), (unsigned)n, &split);
        same(&whole, &split);
        free(split.data);
        parse(boundary, "image", MAX_FIELD, b, n, 1, 0, &split); /* byte by byte */
        same(&whole, &split);
        free(split.data);
        parse(boundary, "label", 64, b, n, 0, 0, &small);
        free(small.data);
        free(whole.data);
        free(b);
    }
    free(ct);
    return 0;
}
