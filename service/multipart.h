/* multipart.h - a streaming multipart/form-data parser (RFC 7578, RFC 2046)
 * that extracts one field, written for untrusted bodies instead of
 * libmicrohttpd's post processor (0.9.75 predates the fix for CVE-2023-27371).
 *
 * Feed the body in chunks of any size as they arrive: the delimiter and the
 * part headers may be split anywhere. Only the wanted field's content is kept
 * (in a buffer that grows up to max_field bytes); other parts are skipped.
 */
#ifndef SERVICE_MULTIPART_H
#define SERVICE_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

enum {
    MP_OK = 0,
    MP_E_MALFORMED = -1,     /* bad boundary, headers or missing final delimiter */
    MP_E_MISSING_FIELD = -2, /* the body is well formed but lacks the field */
    MP_E_TOO_LARGE = -3,     /* the field is larger than max_field, or headers too long */
    MP_E_NOMEM = -4
};

#define MP_MAX_BOUNDARY 70  /* RFC 2046 */
#define MP_MAX_HEADERS 8192 /* bytes of headers of one part */

typedef struct {
    int state;
    char delim[MP_MAX_BOUNDARY + 5]; /* "\r\n--" boundary */
    size_t delim_len;
    size_t matched;          /* bytes of delim matched so far */
    char hdr[MP_MAX_HEADERS];
    size_t hdr_len;
    char field[64];          /* wanted field name */
    int in_field;            /* the current part is the wanted field */
    int found;               /* the wanted field has been seen */
    int err;                 /* sticky error */
    size_t max_field;
    uint8_t *data;           /* the field's content */
    size_t len, cap;
    char content_type[128];  /* the field part's Content-Type, "" if none */
    char filename[256];
} mp_parser;

/* Extracts the boundary parameter of a Content-Type value ("multipart/form-data;
 * boundary=xyz", quoted or not) into out. Returns 0, or -1 when it is missing or
 * not a valid RFC 2046 boundary. */
int mp_boundary_from_content_type(const char *content_type, char *out, size_t outlen);

int mp_init(mp_parser *p, const char *boundary, const char *field, size_t max_field);

/* Returns MP_OK or a (sticky) negative MP_E_* code. */
int mp_feed(mp_parser *p, const uint8_t *buf, size_t n);

/* After the last chunk: MP_OK when the final delimiter was seen and the field
 * found; the field's bytes are then p->data[0..p->len). */
int mp_finish(mp_parser *p);

/* Hands the field's buffer to the caller (who frees it). */
uint8_t *mp_take_data(mp_parser *p, size_t *len);

void mp_free(mp_parser *p);

const char *mp_strerror_code(int err);

#endif
