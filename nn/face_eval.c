/* face_eval.c - detection accuracy against hand-labelled boxes.
 *
 * The labelled set is dlib's examples/faces (../shared/data/photos-dlib/):
 * training.xml and testing.xml list images and their face boxes as
 * <image file='F'> <box top= left= width= height=/> ... </image>, and
 * dogs.jpg holds no human face. Both XML files are used: the detector was
 * not trained on them, so for us every labelled box is test data.
 *
 * Matching: detections and labels are paired greedily by decreasing IoU;
 * a pair counts when IoU >= iou_min. dlib's boxes are tighter than OpenCV's
 * (they stop at the brows and chin), so IoU 0.5 is a fair but not a loose bar.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "face_eval.h"
#include "image.h"
#include "util.h"

#define MAX_TRUTH 256

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int fd_match(const fd_box *det, int nd, const fd_box *truth, int nt, double iou_min)
{
    if (nd <= 0 || nt <= 0) return 0;
    unsigned char *used_d = calloc((size_t)nd, 1), *used_t = calloc((size_t)nt, 1);
    int tp = 0;
    if (!used_d || !used_t) {
        free(used_d);
        free(used_t);
        return -1;
    }
    /* Best remaining pair first; n is small (a few dozen), O(n^3) is fine. */
    for (;;) {
        double best = iou_min;
        int bi = -1, bj = -1;
        for (int i = 0; i < nd; i++) {
            if (used_d[i]) continue;
            for (int j = 0; j < nt; j++) {
                if (used_t[j]) continue;
                double v = fd_iou(&det[i], &truth[j]);
                if (v >= best) {
                    best = v;
                    bi = i;
                    bj = j;
                }
            }
        }
        if (bi < 0) break;
        used_d[bi] = used_t[bj] = 1;
        tp++;
    }
    free(used_d);
    free(used_t);
    return tp;
}

/* Value of attribute name="..." or name='...' inside the tag text [p, end). */
static int attr_int(const char *p, const char *end, const char *name, int *out)
{
    size_t n = strlen(name);
    for (const char *q = p; q + n + 2 < end; q++) {
        if (memcmp(q, name, n) || q[n] != '=' || (q > p && q[-1] != ' ' && q[-1] != '\t' &&
                                                  q[-1] != '\n'))
            continue;
        char quote = q[n + 1];
        if (quote != '\'' && quote != '"') return -1;
        char *e = NULL;
        long v = strtol(q + n + 2, &e, 10);
        if (e == q + n + 2 || *e != quote || v < -100000 || v > 100000) return -1;
        *out = (int)v;
        return 0;
    }
    return -1;
}

static int attr_str(const char *p, const char *end, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    for (const char *q = p; q + n + 2 < end; q++) {
        if (memcmp(q, name, n) || q[n] != '=') continue;
        char quote = q[n + 1];
        const char *v = q + n + 2, *ve = v;
        while (ve < end && *ve != quote) ve++;
        if ((quote != '\'' && quote != '"') || ve >= end || (size_t)(ve - v) >= outlen) return -1;
        memcpy(out, v, (size_t)(ve - v));
        out[ve - v] = '\0';
        return 0;
    }
    return -1;
}

/* Detects on one image file; *boxes malloc'ed. */
static int detect_file(const fd_cascade *c, const fd_params *p, const char *path, fd_box **boxes,
                       int *n, double *secs, char *err, size_t errlen)
{
    uint8_t *data = NULL, *px = NULL;
    size_t len = 0;
    int w = 0, h = 0, rc = -1;
    img_limits lim;
    img_limits_default(&lim);
    char msg[256];
    if (img_read_file(path, 64u << 20, &data, &len, msg, sizeof msg) ||
        img_decode_gray(data, len, &lim, &px, &w, &h, msg, sizeof msg)) {
        set_err(err, errlen, "%s: %s", path, msg);
        goto done;
    }
    double t0 = nn_now_s();
    if (fd_detect(c, p, px, w, h, boxes, n, err, errlen)) goto done;
    *secs += nn_now_s() - t0;
    rc = 0;
done:
    free(data);
    free(px);
    return rc;
}

static int eval_xml(const fd_cascade *c, const fd_params *p, const char *dir, const char *xmlname,
                    fd_eval *ev, char *err, size_t errlen)
{
    char path[2048];
    uint8_t *xml = NULL;
    size_t len = 0;
    char msg[256];
    int rc = -1;
    snprintf(path, sizeof path, "%s/%s", dir, xmlname);
    if (img_read_file(path, 16u << 20, &xml, &len, msg, sizeof msg)) {
        set_err(err, errlen, "%s: %s", path, msg);
        return -1;
    }
    const char *s = (const char *)xml, *end = s + len;
    fd_box truth[MAX_TRUTH];
    for (const char *q = s; q < end;) {
        const char *img = memmem(q, (size_t)(end - q), "<image ", 7);
        if (!img) break;
        const char *tag_end = memchr(img, '>', (size_t)(end - img));
        const char *close = memmem(img, (size_t)(end - img), "</image>", 8);
        if (!tag_end || !close) {
            set_err(err, errlen, "%s: malformed <image>", path);
            goto done;
        }
        char file[512];
        if (attr_str(img, tag_end, "file", file, sizeof file)) {
            set_err(err, errlen, "%s: <image> without file", path);
            goto done;
        }
        int nt = 0;
        for (const char *b = tag_end; b < close;) {
            b = memmem(b, (size_t)(close - b), "<box ", 5);
            if (!b) break;
            const char *be = memchr(b, '>', (size_t)(close - b));
            if (!be || nt == MAX_TRUTH) {
                set_err(err, errlen, "%s: malformed or too many <box> in %s", path, file);
                goto done;
            }
            fd_box t = {0, 0, 0, 0, 0};
            if (attr_int(b, be, "top", &t.y) || attr_int(b, be, "left", &t.x) ||
                attr_int(b, be, "width", &t.w) || attr_int(b, be, "height", &t.h)) {
                set_err(err, errlen, "%s: <box> lacks top/left/width/height in %s", path, file);
                goto done;
            }
            truth[nt++] = t;
            b = be;
        }
        fd_box *det = NULL;
        int nd = 0;
        snprintf(path, sizeof path, "%s/%s", dir, file);
        if (detect_file(c, p, path, &det, &nd, &ev->seconds, err, errlen)) goto done;
        int tp = fd_match(det, nd, truth, nt, ev->iou_min);
        free(det);
        if (tp < 0) {
            set_err(err, errlen, "out of memory");
            goto done;
        }
        ev->images++;
        ev->truths += nt;
        ev->detections += nd;
        ev->true_positives += tp;
        q = close + 8;
    }
    rc = 0;
done:
    free(xml);
    return rc;
}

int fd_eval_dlib(const fd_cascade *c, const fd_params *p, const char *dir, double iou_min,
                 fd_eval *ev, char *err, size_t errlen)
{
    memset(ev, 0, sizeof *ev);
    ev->iou_min = iou_min;
    if (eval_xml(c, p, dir, "training.xml", ev, err, errlen) ||
        eval_xml(c, p, dir, "testing.xml", ev, err, errlen))
        return -1;
    char path[2048];
    snprintf(path, sizeof path, "%s/dogs.jpg", dir);
    fd_box *det = NULL;
    int nd = 0;
    if (detect_file(c, p, path, &det, &nd, &ev->seconds, err, errlen)) return -1;
    free(det);
    ev->dogs_detections = nd;
    ev->recall = ev->truths ? (double)ev->true_positives / ev->truths : 0.0;
    ev->precision = ev->detections ? (double)ev->true_positives / ev->detections : 0.0;
    return 0;
}
