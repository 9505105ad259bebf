/* multipart.c - streaming multipart/form-data field extraction (see multipart.h).
 *
 * The stream is treated as if it began with "\r\n", so every delimiter,
 * including the first one, is "\r\n--" + boundary. A boundary consists of
 * RFC 2046 bchars, none of which is '\r'; '\r' therefore only occurs at the
 * delimiter's first position, and after a partial match fails a new match can
 * only start at the current byte. That keeps the matcher a simple counter
 * which survives any split of the input into chunks.
 */
#include "multipart.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { S_PREAMBLE, S_AFTER_DELIM, S_DASH2, S_AFTER_CR, S_HEADERS, S_BODY, S_EPILOGUE };

static int is_bchar(unsigned char c)
{
    return isalnum(c) || strchr("'()+_,-./:=? ", c) != NULL;
}

static int valid_boundary(const char *b, size_t n)
{
    if (n < 1 || n > MP_MAX_BOUNDARY || b[n - 1] == ' ') return 0;
    for (size_t i = 0; i < n; i++)
        if (!b[i] || !is_bchar((unsigned char)b[i])) return 0;
    return 1;
}

/* Parses one "; key=value" parameter list (value a token or a quoted string
 * with backslash escapes), looking for key. Returns 1 and copies the value when
 * found, 0 when absent, -1 when the list is malformed. */
static int find_param(const char *s, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';') p++;
        if (!*p) break;
        const char *k = p;
        while (*p && *p != '=' && *p != ';') p++;
        const char *kend = p;
        while (kend > k && (kend[-1] == ' ' || kend[-1] == '\t')) kend--;
        if (*p != '=') { /* a parameter without a value: skip it */
            continue;
        }
        p++;
        while (*p == ' ' || *p == '\t') p++;
        size_t o = 0;
        int want = (size_t)(kend - k) == klen && !strncasecmp(k, key, klen);
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1]) p++;
                if (want && o + 1 < outlen) out[o++] = *p;
                else if (want) return -1;
                p++;
            }
            if (*p != '"') return -1;
            p++;
        } else {
            while (*p && *p != ';' && *p != ' ' && *p != '\t') {
                if (want && o + 1 < outlen) out[o++] = *p;
                else if (want) return -1;
                p++;
            }
        }
        if (want) {
            out[o] = '\0';
            return 1;
        }
    }
    return 0;
}

int mp_boundary_from_content_type(const char *ct, char *out, size_t outlen)
{
    if (!ct) return -1;
    const char *semi = strchr(ct, ';');
    if (!semi) return -1;
    if (find_param(semi + 1, "boundary", out, outlen) != 1) return -1;
    return valid_boundary(out, strlen(out)) ? 0 : -1;
}

int mp_init(mp_parser *p, const char *boundary, const char *field, size_t max_field)
{
    memset(p, 0, sizeof *p);
    size_t n = strlen(boundary);
    if (!valid_boundary(boundary, n) || strlen(field) >= sizeof p->field) return MP_E_MALFORMED;
    memcpy(p->delim, "\r\n--", 4);
    memcpy(p->delim + 4, boundary, n);
    p->delim_len = n + 4;
    snprintf(p->field, sizeof p->field, "%s", field);
    p->max_field = max_field;
    p->state = S_PREAMBLE;
    p->matched = 2; /* the virtual "\r\n" before the first delimiter */
    return MP_OK;
}

static int append(mp_parser *p, const uint8_t *b, size_t n)
{
    if (!n) return MP_OK;
    if (n > p->max_field - p->len) return MP_E_TOO_LARGE;
    if (p->len + n > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap < p->len + n) cap *= 2;
        if (cap > p->max_field) cap = p->max_field;
        uint8_t *d = realloc(p->data, cap);
        if (!d) return MP_E_NOMEM;
        p->data = d;
        p->cap = cap;
    }
    memcpy(p->data + p->len, b, n);
    p->len += n;
    return MP_OK;
}

static void trim(char **s)
{
    while (**s == ' ' || **s == '\t') (*s)++;
    char *e = *s + strlen(*s);
    while (e > *s && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
}

/* hdr holds the part's header lines, each ending in "\r\n", the last empty. */
static int parse_headers(mp_parser *p)
{
    char name[sizeof p->field + 1];
    int has_cd = 0, is_field = 0;
    char ctype[sizeof p->content_type] = "", fname[sizeof p->filename] = "";
    p->hdr[p->hdr_len] = '\0';
    char *line = p->hdr;
    for (;;) {
        char *end = strstr(line, "\r\n");
        if (!end) return MP_E_MALFORMED;
        *end = '\0';
        if (!*line) break;
        if (memchr(line, '\0', (size_t)(end - line)) || strchr(line, '\n') || strchr(line, '\r'))
            return MP_E_MALFORMED;
        char *colon = strchr(line, ':');
        if (!colon) return MP_E_MALFORMED;
        *colon = '\0';
        char *value = colon + 1;
        trim(&value);
        if (!strcasecmp(line, "Content-Disposition")) {
            if (strncasecmp(value, "form-data", 9) || (value[9] && value[9] != ';' && value[9] != ' '))
                return MP_E_MALFORMED;
            int r = find_param(value + 9, "name", name, sizeof name);
            if (r < 0) return MP_E_MALFORMED;
            has_cd = 1;
            is_field = r == 1 && !strcmp(name, p->field);
            if (find_param(value + 9, "filename", fname, sizeof fname) < 0) fname[0] = '\0';
        } else if (!strcasecmp(line, "Content-Type")) {
            snprintf(ctype, sizeof ctype, "%s", value);
        }
        line = end + 2;
    }
    /* RFC 7578: every part has a Content-Disposition naming the field. */
    if (!has_cd) return MP_E_MALFORMED;
    p->in_field = is_field && !p->found;
    if (p->in_field) {
        snprintf(p->content_type, sizeof p->content_type, "%s", ctype);
        snprintf(p->filename, sizeof p->filename, "%s", fname);
    }
    return MP_OK;
}

/* The current part ended at a delimiter. */
static void end_part(mp_parser *p)
{
    if (p->in_field) {
        p->found = 1;
        p->in_field = 0;
    }
    p->state = S_AFTER_DELIM;
    p->matched = 0;
}

int mp_feed(mp_parser *p, const uint8_t *buf, size_t n)
{
    size_t i = 0;
    while (!p->err && i < n) {
        uint8_t c = buf[i];
        switch (p->state) {
        case S_PREAMBLE:
            if (c == (uint8_t)p->delim[p->matched]) {
                if (++p->matched == p->delim_len) end_part(p);
            } else {
                p->matched = c == '\r';
            }
            i++;
            break;
        case S_AFTER_DELIM:
            if (c == '-') p->state = S_DASH2;
            else if (c == '\r') p->state = S_AFTER_CR;
            else if (c != ' ' && c != '\t') p->err = MP_E_MALFORMED; /* transport padding only */
            i++;
            break;
        case S_DASH2:
            if (c != '-') p->err = MP_E_MALFORMED;
            p->state = S_EPILOGUE;
            i++;
            break;
        case S_AFTER_CR:
            if (c != '\n') p->err = MP_E_MALFORMED;
            p->state = S_HEADERS;
            p->hdr_len = 0;
            i++;
            break;
        case S_HEADERS:
            if (p->hdr_len + 1 >= sizeof p->hdr) {
                p->err = MP_E_TOO_LARGE;
                break;
            }
            p->hdr[p->hdr_len++] = (char)c;
            i++;
            if ((p->hdr_len == 2 && !memcmp(p->hdr, "\r\n", 2)) ||
                (p->hdr_len >= 4 && !memcmp(p->hdr + p->hdr_len - 4, "\r\n\r\n", 4))) {
                int r = parse_headers(p);
                if (r) p->err = r;
                p->state = S_BODY;
                p->matched = 0;
            }
            break;
        case S_BODY:
            if (p->matched == 0) {
                /* Fast path: copy everything up to the next '\r' at once. */
                const uint8_t *cr = memchr(buf + i, '\r', n - i);
                size_t run = cr ? (size_t)(cr - (buf + i)) : n - i;
                if (run) {
                    if (p->in_field) p->err = append(p, buf + i, run);
                    i += run;
                    break;
                }
            }
            if (c == (uint8_t)p->delim[p->matched]) {
                i++;
                if (++p->matched == p->delim_len) end_part(p);
            } else {
                /* The partial match was content after all; the current byte
                 * is looked at again as a possible start of a delimiter. */
                if (p->in_field) p->err = append(p, (const uint8_t *)p->delim, p->matched);
                p->matched = 0;
                if (c != '\r') {
                    if (p->in_field && !p->err) p->err = append(p, &c, 1);
                    i++;
                }
            }
            break;
        case S_EPILOGUE:
            i = n;
            break;
        }
    }
    return p->err;
}

int mp_finish(mp_parser *p)
{
    if (p->err) return p->err;
    if (p->state != S_EPILOGUE) return p->err = MP_E_MALFORMED;
    if (!p->found) return MP_E_MISSING_FIELD;
    return MP_OK;
}

uint8_t *mp_take_data(mp_parser *p, size_t *len)
{
    uint8_t *d = p->data;
    *len = p->len;
    p->data = NULL;
    p->len = p->cap = 0;
    return d;
}

void mp_free(mp_parser *p)
{
    free(p->data);
    p->data = NULL;
    p->len = p->cap = 0;
}

const char *mp_strerror_code(int err)
{
    switch (err) {
    case MP_OK: return "ok";
    case MP_E_MALFORMED: return "invalid_multipart";
    case MP_E_MISSING_FIELD: return "missing_field";
    case MP_E_TOO_LARGE: return "payload_too_large";
    case MP_E_NOMEM: return "out_of_memory";
    }
    return "invalid_multipart";
}
