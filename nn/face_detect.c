/* face_detect.c - multi-scale sliding-window evaluation of a Haar cascade.
 *
 * The steps follow OpenCV 4's CascadeClassifier::detectMultiScale, because
 * the cascade's thresholds were trained for exactly that evaluation:
 *  - scales 1, s, s^2, ... (s = scale_step) while the window fits; for each,
 *    the image is resized (bilinear, as OpenCV's pyramid) to size/scale and
 *    scanned with the fixed 24x24 window, so features never need rescaling;
 *  - the window moves by 2 pixels below scale 2 and by 1 above, and skips
 *    one more step after a window that fails the very first stage;
 *  - every feature value is divided by the window's area times its standard
 *    deviation (over the window less a 1-pixel border), making the cascade
 *    insensitive to contrast; windows with a deviation of 10 grey levels or
 *    less are rejected outright, as OpenCV does, since flat areas hold no face;
 *  - hits are merged by fd_group_boxes (face_group.c).
 * Integral images are kept in uint32 and differenced modulo 2^32: every
 * rectangle sum inside a window is far below 2^32, so the wrapped arithmetic
 * is exact even where the totals of a large image overflow.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "face_internal.h"
#include "image.h"

/* A stump with its rectangles turned into offsets for one integral-image
 * stride: the hot loop then touches one small array in stage order. */
typedef struct {
    int ofs[FD_MAX_RECTS][4];
    float weight[FD_MAX_RECTS];
    int nrects;
    float threshold, left, right;
} opt_weak;

typedef struct {
    const fd_cascade *c;
    opt_weak *ow;
    int stride;
    int nofs[4];       /* the variance rectangle */
    double norm_area;
    /* raw hits, in scan-image pixels */
    fd_box *hits;
    int n_hits, cap_hits;
} scan_state;

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void fd_params_default(fd_params *p)
{
    p->scale_step = 1.1;
    p->min_size = 0;
    p->max_size = 0;
    p->min_neighbors = 3;
    p->max_scan_side = 640;
}

/* Bilinear resize with OpenCV's pixel-centre convention (source coordinate
 * (d + 0.5) * scale - 0.5, clamped at the borders), in 11-bit fixed point
 * like its INTER_LINEAR_EXACT. xo/xw: scratch of dw ints each. */
static void resize_bilinear(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh,
                            int *xo, int *xw)
{
    enum { BITS = 11, ONE = 1 << BITS };
    double sx = (double)sw / dw, sy = (double)sh / dh;
    for (int x = 0; x < dw; x++) {
        double f = (x + 0.5) * sx - 0.5;
        int i = (int)floor(f);
        int w = (int)lround((f - i) * ONE);
        if (i < 0) { i = 0; w = 0; }
        if (i >= sw - 1) { i = sw - 1; w = 0; }
        xo[x] = i;
        xw[x] = w;
    }
    for (int y = 0; y < dh; y++) {
        double f = (y + 0.5) * sy - 0.5;
        int j = (int)floor(f);
        int wy = (int)lround((f - j) * ONE);
        if (j < 0) { j = 0; wy = 0; }
        if (j >= sh - 1) { j = sh - 1; wy = 0; }
        const uint8_t *r0 = src + (size_t)j * sw;
        const uint8_t *r1 = wy ? r0 + sw : r0;
        uint8_t *out = dst + (size_t)y * dw;
        for (int x = 0; x < dw; x++) {
            int i = xo[x], wx = xw[x], i1 = wx ? i + 1 : i;
            int top = r0[i] * (ONE - wx) + r0[i1] * wx;
            int bot = r1[i] * (ONE - wx) + r1[i1] * wx;
            long long v = (long long)top * (ONE - wy) + (long long)bot * wy;
            out[x] = (uint8_t)((v + (1LL << (2 * BITS - 1))) >> (2 * BITS));
        }
    }
}

/* Integral images of sums and squared sums, (w+1) x (h+1), first row and
 * column zero. */
static void integrals(const uint8_t *img, int w, int h, uint32_t *sum, uint32_t *sq)
{
    int stride = w + 1;
    memset(sum, 0, (size_t)stride * sizeof *sum);
    memset(sq, 0, (size_t)stride * sizeof *sq);
    for (int y = 0; y < h; y++) {
        const uint8_t *row = img + (size_t)y * w;
        uint32_t *s = sum + (size_t)(y + 1) * stride, *q = sq + (size_t)(y + 1) * stride;
        const uint32_t *sp = s - stride, *qp = q - stride;
        uint32_t rs = 0, rq = 0;
        s[0] = q[0] = 0;
        for (int x = 0; x < w; x++) {
            uint32_t v = row[x];
            rs += v;
            rq += v * v;
            s[x + 1] = sp[x + 1] + rs;
            q[x + 1] = qp[x + 1] + rq;
        }
    }
}

static void rect_offsets(int x, int y, int w, int h, int stride, int ofs[4])
{
    ofs[0] = y * stride + x;
    ofs[1] = y * stride + x + w;
    ofs[2] = (y + h) * stride + x;
    ofs[3] = (y + h) * stride + x + w;
}

static void prepare_level(scan_state *st, int stride)
{
    const fd_cascade *c = st->c;
    st->stride = stride;
    for (int i = 0; i < c->n_weak; i++) {
        const fd_weak *wk = &c->weak[i];
        const fd_feature *f = &c->features[wk->feature];
        opt_weak *o = &st->ow[i];
        o->nrects = f->nrects;
        for (int k = 0; k < f->nrects; k++) {
            rect_offsets(f->r[k].x, f->r[k].y, f->r[k].w, f->r[k].h, stride, o->ofs[k]);
            o->weight[k] = f->r[k].weight;
        }
        o->threshold = wk->threshold;
        o->left = wk->left;
        o->right = wk->right;
    }
    rect_offsets(1, 1, c->win_w - 2, c->win_h - 2, stride, st->nofs);
}

static inline int32_t rsum(const uint32_t *p, const int o[4])
{
    return (int32_t)(p[o[0]] - p[o[1]] - p[o[2]] + p[o[3]]);
}

/* 1 when the window at p passes every stage, 0 when it fails the first,
 * -1 otherwise (OpenCV's convention, which drives the extra step). */
static int eval_window(const scan_state *st, const uint32_t *p, const uint32_t *q)
{
    int32_t s = rsum(p, st->nofs);
    uint32_t sq = q[st->nofs[0]] - q[st->nofs[1]] - q[st->nofs[2]] + q[st->nofs[3]];
    double nf = st->norm_area * sq - (double)s * s;
    if (nf <= 0.0) return -1;
    nf = sqrt(nf);
    float inv = (float)(1.0 / nf);
    if (st->norm_area * inv >= 0.1) return -1; /* deviation <= 10 grey levels */
    const fd_cascade *c = st->c;
    const opt_weak *o = st->ow;
    for (int si = 0; si < c->n_stages; si++) {
        const fd_stage *sg = &c->stages[si];
        double acc = 0.0;
        for (int k = 0; k < sg->count; k++, o++) {
            float v = o->weight[0] * (float)rsum(p, o->ofs[0]) +
                      o->weight[1] * (float)rsum(p, o->ofs[1]);
            if (o->nrects > 2) v += o->weight[2] * (float)rsum(p, o->ofs[2]);
            acc += v * inv < o->threshold ? o->left : o->right;
        }
        if (acc < sg->threshold) return si == 0 ? 0 : -1;
    }
    return 1;
}

static int add_hit(scan_state *st, fd_box b)
{
    if (st->n_hits == st->cap_hits) {
        int nc = st->cap_hits ? st->cap_hits * 2 : 256;
        fd_box *h = realloc(st->hits, (size_t)nc * sizeof *h);
        if (!h) return -1;
        st->hits = h;
        st->cap_hits = nc;
    }
    st->hits[st->n_hits++] = b;
    return 0;
}

/* Scans one pyramid level (an image already resized to w x h). */
static int scan_level(scan_state *st, const uint32_t *sum, const uint32_t *sq, int w, int h,
                      double factor)
{
    const fd_cascade *c = st->c;
    int step = factor >= 2.0 ? 1 : 2;
    int win_w = (int)lround(c->win_w * factor), win_h = (int)lround(c->win_h * factor);
    for (int y = 0; y + c->win_h <= h; y += step) {
        for (int x = 0; x + c->win_w <= w; x += step) {
            size_t at = (size_t)y * st->stride + (size_t)x;
            int r = eval_window(st, sum + at, sq + at);
            if (r > 0 && add_hit(st, (fd_box){(int)lround(x * factor), (int)lround(y * factor),
                                             win_w, win_h, 1}))
                return -1;
            if (r == 0) x += step;
        }
    }
    return 0;
}

int fd_detect(const fd_cascade *c, const fd_params *p, const uint8_t *gray, int w, int h,
              fd_box **boxes, int *n, char *err, size_t errlen)
{
    fd_params def;
    uint8_t *small = NULL, *level = NULL;
    uint32_t *sum = NULL, *sq = NULL;
    int *xo = NULL, *xw = NULL;
    scan_state st = {0};
    int rc = -1;
    *boxes = NULL;
    *n = 0;
    if (!p) {
        fd_params_default(&def);
        p = &def;
    }
    if (!c || !gray || w < 1 || h < 1 || (long long)w * h > (1LL << 28)) {
        set_err(err, errlen, "face detection: bad image (%dx%d)", w, h);
        return -1;
    }
    if (!(p->scale_step > 1.0 && p->scale_step <= 4.0) || p->min_size < 0 || p->max_size < 0 ||
        p->min_neighbors < 0 || p->max_scan_side < 0) {
        set_err(err, errlen, "face detection: bad parameters (scale_step must be in (1, 4])");
        return -1;
    }

    /* Downscale first: sw x sh is the image actually scanned, and `down`
     * maps its pixels back to the caller's. */
    int sw = w, sh = h;
    const uint8_t *img = gray;
    int longer = w > h ? w : h;
    if (p->max_scan_side && longer > p->max_scan_side) {
        double r = (double)p->max_scan_side / longer;
        sw = (int)lround(w * r);
        sh = (int)lround(h * r);
        if (sw < 1) sw = 1;
        if (sh < 1) sh = 1;
        small = malloc((size_t)sw * sh);
        if (!small) goto oom;
        img_resize_area(gray, w, h, small, sw, sh);
        img = small;
    }
    double down = (double)w / sw;

    st.c = c;
    st.ow = malloc((size_t)c->n_weak * sizeof *st.ow);
    level = malloc((size_t)sw * sh);
    sum = malloc((size_t)(sw + 1) * (sh + 1) * sizeof *sum);
    sq = malloc((size_t)(sw + 1) * (sh + 1) * sizeof *sq);
    xo = malloc((size_t)sw * sizeof *xo);
    xw = malloc((size_t)sw * sizeof *xw);
    if (!st.ow || !level || !sum || !sq || !xo || !xw) goto oom;
    st.norm_area = (double)(c->win_w - 2) * (c->win_h - 2);

    /* Face sizes are asked for in caller pixels; the scan works in its own. */
    double min_scan = p->min_size / down, max_scan = p->max_size ? p->max_size / down : 1e9;
    for (double factor = 1.0;; factor *= p->scale_step) {
        int win_w = (int)lround(c->win_w * factor), win_h = (int)lround(c->win_h * factor);
        if (win_w > sw || win_h > sh || win_w > max_scan || win_h > max_scan) break;
        if (win_w < min_scan || win_h < min_scan) continue;
        int lw = (int)lround(sw / factor), lh = (int)lround(sh / factor);
        if (lw < c->win_w || lh < c->win_h) break;
        resize_bilinear(img, sw, sh, level, lw, lh, xo, xw);
        integrals(level, lw, lh, sum, sq);
        prepare_level(&st, lw + 1);
        if (scan_level(&st, sum, sq, lw, lh, factor)) goto oom;
    }

    if (fd_group_boxes(st.hits, &st.n_hits, p->min_neighbors, 0.2)) goto oom;
    for (int i = 0; i < st.n_hits; i++) {
        fd_box *b = &st.hits[i];
        int x0 = (int)lround(b->x * down), y0 = (int)lround(b->y * down);
        int x1 = (int)lround((b->x + b->w) * down), y1 = (int)lround((b->y + b->h) * down);
        if (x1 > w) x1 = w;
        if (y1 > h) y1 = h;
        *b = (fd_box){x0, y0, x1 - x0, y1 - y0, b->neighbors};
    }
    fd_sort_boxes(st.hits, st.n_hits);
    if (st.n_hits) {
        *boxes = st.hits;
        *n = st.n_hits;
        st.hits = NULL;
    }
    rc = 0;
    goto done;
oom:
    set_err(err, errlen, "out of memory in face detection (%dx%d image)", w, h);
done:
    free(st.hits);
    free(st.ow);
    free(small);
    free(level);
    free(sum);
    free(sq);
    free(xo);
    free(xw);
    return rc;
}
