/* face_cascade.c - the cascade in memory, its checks and its compact file.
 *
 * Compact format, version 1, every integer little-endian, floats as their
 * IEEE-754 bits (OpenCV itself keeps a loaded cascade in floats, so nothing
 * is lost against the XML):
 *
 *   "EMFC" u32 version u32 win_w u32 win_h u32 n_stages u32 n_weak u32 n_features
 *   n_stages   x { u32 count; f32 threshold }         weak classifiers in order
 *   n_weak     x { u32 feature; f32 threshold, left, right }
 *   n_features x { u8 nrects; 3 x { u8 x, y, w, h; f32 weight } }  unused rects zero
 *   u32 CRC-32 of every byte before it
 *
 * About 100 KB for frontalface_default against 930 KB of XML, and read with
 * a few loops instead of an XML parser.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "face_internal.h"
#include "image.h"
#include "internal.h"

#define MAGIC "EMFC"
#define VERSION 1u
#define HEADER_BYTES 28
#define STAGE_BYTES 8
#define WEAK_BYTES 16
#define FEATURE_BYTES (1 + FD_MAX_RECTS * 8)

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

fd_cascade *fd_cascade_alloc(int n_stages, int n_weak, int n_features)
{
    fd_cascade *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->n_stages = n_stages;
    c->n_weak = n_weak;
    c->n_features = n_features;
    /* +1: calloc(0) may return NULL, which would read as out of memory. */
    c->stages = calloc((size_t)n_stages + 1, sizeof *c->stages);
    c->weak = calloc((size_t)n_weak + 1, sizeof *c->weak);
    c->features = calloc((size_t)n_features + 1, sizeof *c->features);
    if (!c->stages || !c->weak || !c->features) {
        fd_cascade_free(c);
        return NULL;
    }
    return c;
}

void fd_cascade_free(fd_cascade *c)
{
    if (!c) return;
    free(c->stages);
    free(c->weak);
    free(c->features);
    free(c);
}

int fd_cascade_window(const fd_cascade *c) { return c->win_w; }
int fd_cascade_num_stages(const fd_cascade *c) { return c->n_stages; }
int fd_cascade_num_weak(const fd_cascade *c) { return c->n_weak; }

int fd_cascade_validate(const fd_cascade *c, char *err, size_t errlen)
{
    /* The evaluator reads a 1-pixel border around the variance rectangle
     * (OpenCV's normrect is the window minus one pixel on every side). */
    if (c->win_w < 3 || c->win_h < 3 || c->win_w > FD_MAX_WINDOW || c->win_h > FD_MAX_WINDOW) {
        set_err(err, errlen, "cascade window %dx%d out of range", c->win_w, c->win_h);
        return -1;
    }
    if (c->n_stages < 1 || c->n_stages > FD_MAX_STAGES || c->n_weak < 1 ||
        c->n_weak > FD_MAX_WEAK || c->n_features < 1 || c->n_features > FD_MAX_FEATURES) {
        set_err(err, errlen, "cascade sizes out of range (%d stages, %d weak, %d features)",
                c->n_stages, c->n_weak, c->n_features);
        return -1;
    }
    int next = 0;
    for (int s = 0; s < c->n_stages; s++) {
        const fd_stage *st = &c->stages[s];
        if (st->first != next || st->count < 1 || st->count > c->n_weak - next ||
            !isfinite(st->threshold)) {
            set_err(err, errlen, "cascade stage %d is malformed", s);
            return -1;
        }
        next += st->count;
    }
    if (next != c->n_weak) {
        set_err(err, errlen, "cascade stages cover %d of %d weak classifiers", next, c->n_weak);
        return -1;
    }
    for (int i = 0; i < c->n_weak; i++) {
        const fd_weak *w = &c->weak[i];
        if (w->feature < 0 || w->feature >= c->n_features || !isfinite(w->threshold) ||
            !isfinite(w->left) || !isfinite(w->right)) {
            set_err(err, errlen, "cascade weak classifier %d is malformed", i);
            return -1;
        }
    }
    for (int i = 0; i < c->n_features; i++) {
        const fd_feature *f = &c->features[i];
        if (f->nrects < 2 || f->nrects > FD_MAX_RECTS) {
            set_err(err, errlen, "cascade feature %d has %d rectangles", i, f->nrects);
            return -1;
        }
        for (int k = 0; k < f->nrects; k++) {
            const fd_rect *r = &f->r[k];
            if (!r->w || !r->h || r->x + r->w > c->win_w || r->y + r->h > c->win_h ||
                !isfinite(r->weight)) {
                set_err(err, errlen, "cascade feature %d: rectangle %d is outside the %dx%d window",
                        i, k, c->win_w, c->win_h);
                return -1;
            }
        }
    }
    return 0;
}

/* ---- little-endian fields ------------------------------------------------- */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float rdf(const uint8_t *p)
{
    uint32_t u = rd32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint8_t *wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
    return p + 4;
}

static uint8_t *wrf(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return wr32(p, u);
}

static size_t compact_size(long long n_stages, long long n_weak, long long n_features)
{
    return (size_t)(HEADER_BYTES + n_stages * STAGE_BYTES + n_weak * WEAK_BYTES +
                    n_features * FEATURE_BYTES + 4);
}

/* ---- compact file --------------------------------------------------------- */

static int load_compact(const uint8_t *p, size_t len, fd_cascade **out, char *err,
                        size_t errlen)
{
    fd_cascade *c = NULL;
    if (len < HEADER_BYTES + 4) {
        set_err(err, errlen, "cascade file truncated (%zu bytes)", len);
        goto err;
    }
    uint32_t version = rd32(p + 4);
    if (version != VERSION) {
        set_err(err, errlen, "cascade file version %u is not supported (expected %u)", version,
                VERSION);
        goto err;
    }
    uint32_t ww = rd32(p + 8), wh = rd32(p + 12), ns = rd32(p + 16), nw = rd32(p + 20),
             nf = rd32(p + 24);
    if (ns < 1 || ns > FD_MAX_STAGES || nw < 1 || nw > FD_MAX_WEAK || nf < 1 ||
        nf > FD_MAX_FEATURES || ww > FD_MAX_WINDOW || wh > FD_MAX_WINDOW) {
        set_err(err, errlen, "cascade file header out of range");
        goto err;
    }
    size_t want = compact_size(ns, nw, nf);
    if (len != want) {
        set_err(err, errlen, "cascade file %s: %zu bytes, expected %zu",
                len < want ? "truncated" : "has trailing bytes", len, want);
        goto err;
    }
    if (nn_crc32(0, p, len - 4) != rd32(p + len - 4)) {
        set_err(err, errlen, "cascade file corrupted (CRC mismatch)");
        goto err;
    }
    c = fd_cascade_alloc((int)ns, (int)nw, (int)nf);
    if (!c) {
        set_err(err, errlen, "out of memory loading the cascade");
        goto err;
    }
    c->win_w = (int)ww;
    c->win_h = (int)wh;
    const uint8_t *q = p + HEADER_BYTES;
    int first = 0;
    for (uint32_t s = 0; s < ns; s++, q += STAGE_BYTES) {
        uint32_t count = rd32(q);
        if (count > nw) count = nw + 1; /* rejected by validate, without overflow */
        c->stages[s].first = first;
        c->stages[s].count = (int)count;
        c->stages[s].threshold = rdf(q + 4);
        first += (int)count;
        if (first > (int)nw) first = (int)nw + 1;
    }
    for (uint32_t i = 0; i < nw; i++, q += WEAK_BYTES) {
        uint32_t f = rd32(q);
        c->weak[i].feature = f < nf ? (int)f : -1;
        c->weak[i].threshold = rdf(q + 4);
        c->weak[i].left = rdf(q + 8);
        c->weak[i].right = rdf(q + 12);
    }
    for (uint32_t i = 0; i < nf; i++, q += FEATURE_BYTES) {
        fd_feature *f = &c->features[i];
        f->nrects = q[0];
        for (int k = 0; k < FD_MAX_RECTS; k++) {
            const uint8_t *r = q + 1 + 8 * k;
            f->r[k] = (fd_rect){r[0], r[1], r[2], r[3], rdf(r + 4)};
        }
    }
    if (fd_cascade_validate(c, err, errlen)) goto err;
    *out = c;
    return 0;
err:
    fd_cascade_free(c);
    return -1;
}

int fd_cascade_load_mem(const void *buf, size_t len, fd_cascade **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    const uint8_t *p = buf;
    if (len >= 4 && !memcmp(p, MAGIC, 4)) return load_compact(p, len, out, err, errlen);
    /* OpenCV writes its XML with a declaration; skip whitespace and a BOM. */
    size_t i = 0;
    if (len >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) i = 3;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) i++;
    if (i < len && p[i] == '<') return fd_cascade_from_xml((const char *)p, len, out, err, errlen);
    set_err(err, errlen, "not a face cascade (neither a compact cascade nor OpenCV XML)");
    return -1;
}

int fd_cascade_load(const char *path, fd_cascade **out, char *err, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    char msg[256];
    *out = NULL;
    /* 64 MB: far above any cascade (OpenCV's largest XML is about 2.6 MB). */
    if (img_read_file(path, 64u << 20, &data, &len, msg, sizeof msg)) {
        set_err(err, errlen, "%s: %s", path, msg);
        return -1;
    }
    int rc = fd_cascade_load_mem(data, len, out, msg, sizeof msg);
    if (rc) set_err(err, errlen, "%s: %s", path, msg);
    free(data);
    return rc;
}

int fd_cascade_save(const fd_cascade *c, const char *path, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    char tmp[4096];
    int fd = -1;
    if (fd_cascade_validate(c, err, errlen)) return -1;
    size_t len = compact_size(c->n_stages, c->n_weak, c->n_features);
    buf = calloc(1, len);
    if (!buf) {
        set_err(err, errlen, "out of memory");
        goto err;
    }
    uint8_t *q = buf;
    memcpy(q, MAGIC, 4);
    q = wr32(q + 4, VERSION);
    q = wr32(q, (uint32_t)c->win_w);
    q = wr32(q, (uint32_t)c->win_h);
    q = wr32(q, (uint32_t)c->n_stages);
    q = wr32(q, (uint32_t)c->n_weak);
    q = wr32(q, (uint32_t)c->n_features);
    for (int s = 0; s < c->n_stages; s++) {
        q = wr32(q, (uint32_t)c->stages[s].count);
        q = wrf(q, c->stages[s].threshold);
    }
    for (int i = 0; i < c->n_weak; i++) {
        q = wr32(q, (uint32_t)c->weak[i].feature);
        q = wrf(q, c->weak[i].threshold);
        q = wrf(q, c->weak[i].left);
        q = wrf(q, c->weak[i].right);
    }
    for (int i = 0; i < c->n_features; i++) {
        const fd_feature *f = &c->features[i];
        *q++ = (uint8_t)f->nrects;
        for (int k = 0; k < FD_MAX_RECTS; k++) {
            /* Unused slots are written as zeros whatever memory holds. */
            fd_rect r = k < f->nrects ? f->r[k] : (fd_rect){0, 0, 0, 0, 0.0f};
            q[0] = r.x;
            q[1] = r.y;
            q[2] = r.w;
            q[3] = r.h;
            q = wrf(q + 4, r.weight);
        }
    }
    wr32(q, nn_crc32(0, buf, len - 4));

    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        set_err(err, errlen, "%s: path too long", path);
        goto err;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        set_err(err, errlen, "%s: %s", tmp, strerror(errno));
        goto err;
    }
    for (size_t off = 0; off < len;) {
        ssize_t k = write(fd, buf + off, len - off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            set_err(err, errlen, "%s: %s", tmp, strerror(errno));
            goto err_unlink;
        }
        off += (size_t)k;
    }
    if (fsync(fd) || close(fd)) {
        fd = -1;
        set_err(err, errlen, "%s: %s", tmp, strerror(errno));
        goto err_unlink;
    }
    fd = -1;
    if (rename(tmp, path)) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        goto err_unlink;
    }
    free(buf);
    return 0;
err_unlink:
    if (fd >= 0) close(fd);
    fd = -1;
    unlink(tmp);
err:
    if (fd >= 0) close(fd);
    free(buf);
    return -1;
}
