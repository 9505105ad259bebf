/* face_cascade_xml.c - reads OpenCV's cascade XML (the "new" format written
 * by opencv_traincascade and shipped in opencv-data 4.x) into an fd_cascade.
 *
 * Why a purpose-built reader rather than libxml2: the file is a rigid tree of
 * elements holding numbers (no attributes, entities or namespaces that
 * matter), so 200 lines of tokenizer suffice, and nn/ keeps no dependency
 * beyond what the engine already links. The service does not even use this
 * at run time: `emotiond convert-cascade` turns the XML into the compact
 * file once (see face_cascade.c); the reader stays in the library so that
 * the conversion can be re-checked by the tests and any cascade of the same
 * kind tried without a build step.
 *
 * The parts used, below <opencv_storage><cascade>:
 *   stageType BOOST, featureType HAAR, width, height, stageNum,
 *   stages/_/{stageThreshold, weakClassifiers/_/{internalNodes, leafValues}},
 *   features/_/{rects/_ ("x y w h weight"), tilted}
 * Only stumps ("0 -1 feature threshold" + two leaves) and untilted features
 * are accepted: frontalface_default is made of those; other cascades are
 * refused with a message naming what is missing.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "face_internal.h"

#define MAX_DEPTH 16
#define NAME_MAX_LEN 32
#define TEXT_MAX 512

typedef struct {
    fd_weak w;
    int seen; /* bit 1: internalNodes read, bit 2: leafValues read */
} xweak;

typedef struct {
    /* input */
    const char *p, *end;
    /* element stack */
    int depth;
    char names[MAX_DEPTH][NAME_MAX_LEN];
    char text[TEXT_MAX];
    size_t text_len;
    int text_overflow;
    /* what was read */
    int win_w, win_h, stage_num;
    int saw_boost, saw_haar;
    fd_stage *stages;
    int n_stages, cap_stages;
    xweak *weak;
    int n_weak, cap_weak;
    fd_feature *features;
    int n_features, cap_features;
    int stage_has_threshold;
    /* error */
    char *err;
    size_t errlen;
    int failed;
} xparse;

static int fail(xparse *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(xparse *x, const char *fmt, ...)
{
    if (x->failed) return -1;
    x->failed = 1;
    if (x->err && x->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->err, x->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Grows *arr (elements of size sz) so that index n fits. */
static int grow(void **arr, int *cap, int n, size_t sz, int limit)
{
    if (n < *cap) return 0;
    if (n >= limit) return -1;
    int nc = *cap ? *cap * 2 : 64;
    if (nc > limit) nc = limit;
    void *a = realloc(*arr, (size_t)nc * sz);
    if (!a) return -1;
    memset((char *)a + (size_t)*cap * sz, 0, (size_t)(nc - *cap) * sz);
    *arr = a;
    *cap = nc;
    return 0;
}

/* Does the element stack end with the given names (innermost last)? The
 * path is matched from the cascade element down, so depth is fixed too. */
static int at(const xparse *x, int n, const char *const *names)
{
    if (x->depth != n + 2) return 0; /* opencv_storage, cascade, then n names */
    for (int i = 0; i < n; i++)
        if (strcmp(x->names[2 + i], names[i])) return 0;
    return 1;
}
#define AT(x, ...) at((x), sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *), \
                      (const char *[]){__VA_ARGS__})

/* Parses up to max numbers from the current element's text. Returns the
 * count, or -1 on a token that is not a number. */
static int numbers(xparse *x, double *out, int max)
{
    char *s = x->text;
    int n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
        if (!*s) return n;
        char *e = NULL;
        double v = strtod(s, &e);
        if (e == s || !isfinite(v)) return -1;
        if (n < max) out[n] = v;
        n++;
        s = e;
    }
}

/* Is the element's text s, ignoring surrounding white space? */
static int text_is(const xparse *x, const char *s)
{
    const char *t = x->text;
    while (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n') t++;
    size_t n = strlen(s);
    if (strncmp(t, s, n)) return 0;
    for (t += n; *t; t++)
        if (!strchr(" \t\r\n", *t)) return 0;
    return 1;
}

static int int_in(double v, int lo, int hi)
{
    return v == floor(v) && v >= lo && v <= hi;
}

static int on_start(xparse *x)
{
    if (x->depth == 1 && strcmp(x->names[0], "opencv_storage"))
        return fail(x, "not an OpenCV storage file (root element <%s>)", x->names[0]);
    if (x->depth == 2 && strcmp(x->names[1], "cascade"))
        return fail(x, "<%s> is not a cascade in OpenCV's current format (old-style "
                       "haarcascade files are not supported)", x->names[1]);
    if (AT(x, "stages", "_")) {
        if (grow((void **)&x->stages, &x->cap_stages, x->n_stages, sizeof *x->stages,
                 FD_MAX_STAGES))
            return fail(x, "too many stages or out of memory");
        x->stages[x->n_stages] = (fd_stage){x->n_weak, 0, 0.0f};
        x->n_stages++;
        x->stage_has_threshold = 0;
    } else if (AT(x, "stages", "_", "weakClassifiers", "_")) {
        if (grow((void **)&x->weak, &x->cap_weak, x->n_weak, sizeof *x->weak, FD_MAX_WEAK))
            return fail(x, "too many weak classifiers or out of memory");
        x->weak[x->n_weak++].seen = 0;
        x->stages[x->n_stages - 1].count++;
    } else if (AT(x, "features", "_")) {
        if (grow((void **)&x->features, &x->cap_features, x->n_features, sizeof *x->features,
                 FD_MAX_FEATURES))
            return fail(x, "too many features or out of memory");
        x->features[x->n_features++].nrects = 0;
    }
    return 0;
}

/* Called at an end tag, with the element's text collected. */
static int on_end(xparse *x)
{
    double v[6];
    int n;
    if (x->text_overflow && x->depth > 2) {
        /* Only short elements matter; a long one we need is an error. */
        if (AT(x, "stageType") || AT(x, "featureType") || AT(x, "width") || AT(x, "height") ||
            AT(x, "stages", "_", "stageThreshold") ||
            AT(x, "stages", "_", "weakClassifiers", "_", "internalNodes") ||
            AT(x, "stages", "_", "weakClassifiers", "_", "leafValues") ||
            AT(x, "features", "_", "rects", "_"))
            return fail(x, "element <%s> too long", x->names[x->depth - 1]);
        return 0;
    }
    if (AT(x, "stageType")) {
        if (!text_is(x, "BOOST")) return fail(x, "stageType must be BOOST");
        x->saw_boost = 1;
    } else if (AT(x, "featureType")) {
        if (!text_is(x, "HAAR"))
            return fail(x, "featureType must be HAAR (LBP/HOG cascades are not supported)");
        x->saw_haar = 1;
    } else if (AT(x, "width") || AT(x, "height")) {
        if (numbers(x, v, 1) != 1 || !int_in(v[0], 3, FD_MAX_WINDOW))
            return fail(x, "bad window %s", x->names[x->depth - 1]);
        *(AT(x, "width") ? &x->win_w : &x->win_h) = (int)v[0];
    } else if (AT(x, "stageNum")) {
        if (numbers(x, v, 1) != 1 || !int_in(v[0], 1, FD_MAX_STAGES))
            return fail(x, "bad stageNum");
        x->stage_num = (int)v[0];
    } else if (AT(x, "stages", "_", "stageThreshold")) {
        if (numbers(x, v, 1) != 1) return fail(x, "bad stageThreshold in stage %d", x->n_stages - 1);
        x->stages[x->n_stages - 1].threshold = (float)v[0];
        x->stage_has_threshold = 1;
    } else if (AT(x, "stages", "_")) {
        if (!x->stage_has_threshold || !x->stages[x->n_stages - 1].count)
            return fail(x, "stage %d lacks a threshold or weak classifiers", x->n_stages - 1);
    } else if (AT(x, "stages", "_", "weakClassifiers", "_", "internalNodes")) {
        fd_weak *w = &x->weak[x->n_weak - 1].w;
        n = numbers(x, v, 6);
        if (n != 4 || v[0] != 0 || v[1] != -1 || !int_in(v[2], 0, FD_MAX_FEATURES - 1))
            return fail(x, "weak classifier %d is not a stump (only stump cascades such as "
                           "frontalface_default are supported)", x->n_weak - 1);
        w->feature = (int)v[2];
        w->threshold = (float)v[3];
        x->weak[x->n_weak - 1].seen |= 1;
    } else if (AT(x, "stages", "_", "weakClassifiers", "_", "leafValues")) {
        fd_weak *w = &x->weak[x->n_weak - 1].w;
        if (numbers(x, v, 6) != 2) return fail(x, "weak classifier %d: expected 2 leaf values", x->n_weak - 1);
        w->left = (float)v[0];
        w->right = (float)v[1];
        x->weak[x->n_weak - 1].seen |= 2;
    } else if (AT(x, "stages", "_", "weakClassifiers", "_")) {
        if (x->weak[x->n_weak - 1].seen != 3)
            return fail(x, "weak classifier %d lacks internalNodes or leafValues", x->n_weak - 1);
    } else if (AT(x, "features", "_", "rects", "_")) {
        fd_feature *f = &x->features[x->n_features - 1];
        if (f->nrects >= FD_MAX_RECTS) return fail(x, "feature %d has more than %d rectangles", x->n_features - 1, FD_MAX_RECTS);
        if (numbers(x, v, 6) != 5 || !int_in(v[0], 0, 255) || !int_in(v[1], 0, 255) ||
            !int_in(v[2], 1, 255) || !int_in(v[3], 1, 255))
            return fail(x, "feature %d: bad rectangle", x->n_features - 1);
        f->r[f->nrects++] = (fd_rect){(uint8_t)v[0], (uint8_t)v[1], (uint8_t)v[2], (uint8_t)v[3],
                                      (float)v[4]};
    } else if (AT(x, "features", "_", "tilted")) {
        if (numbers(x, v, 1) != 1 || v[0] != 0)
            return fail(x, "feature %d is tilted (tilted Haar features are not supported)",
                        x->n_features - 1);
    }
    return 0;
}

static int starts(const xparse *x, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(x->end - x->p) >= n && !memcmp(x->p, s, n);
}

/* Moves past the next occurrence of s; -1 if there is none. */
static int skip_past(xparse *x, const char *s)
{
    size_t n = strlen(s);
    for (const char *q = x->p; (size_t)(x->end - q) >= n; q++) {
        if (!memcmp(q, s, n)) {
            x->p = q + n;
            return 0;
        }
    }
    return -1;
}

static int is_name_char(char ch)
{
    return ch && !strchr(" \t\r\n/>=\"'<", ch);
}

/* One tag at x->p (which is '<'). */
static int tag(xparse *x)
{
    if (starts(x, "<?")) return skip_past(x, "?>") ? fail(x, "unterminated <?") : 0;
    if (starts(x, "<!--")) return skip_past(x, "-->") ? fail(x, "unterminated comment") : 0;
    if (starts(x, "<![CDATA[")) return fail(x, "CDATA sections are not supported");
    if (starts(x, "<!")) return skip_past(x, ">") ? fail(x, "unterminated <!") : 0;
    int closing = starts(x, "</");
    x->p += closing ? 2 : 1;
    const char *name = x->p;
    while (x->p < x->end && is_name_char(*x->p)) x->p++;
    size_t nlen = (size_t)(x->p - name);
    if (!nlen || nlen >= NAME_MAX_LEN) return fail(x, "bad or too long element name");
    /* Attributes are skipped; a '>' inside a quoted value does not end the tag. */
    char quote = 0;
    const char *gt = NULL;
    for (const char *q = x->p; q < x->end; q++) {
        if (quote) {
            if (*q == quote) quote = 0;
        } else if (*q == '"' || *q == '\'') {
            quote = *q;
        } else if (*q == '>') {
            gt = q;
            break;
        }
    }
    if (!gt) return fail(x, "unterminated tag <%.*s", (int)nlen, name);
    int empty = !closing && gt > x->p && gt[-1] == '/';
    x->p = gt + 1;
    if (closing) {
        if (!x->depth || strlen(x->names[x->depth - 1]) != nlen ||
            memcmp(x->names[x->depth - 1], name, nlen))
            return fail(x, "mismatched end tag </%.*s>", (int)nlen, name);
        x->text[x->text_len] = '\0';
        if (on_end(x)) return -1;
        x->depth--;
        x->text_len = 0;
        x->text_overflow = 0;
        return 0;
    }
    if (x->depth == MAX_DEPTH) return fail(x, "elements nested too deeply");
    memcpy(x->names[x->depth], name, nlen);
    x->names[x->depth][nlen] = '\0';
    x->depth++;
    x->text_len = 0;
    x->text_overflow = 0;
    if (on_start(x)) return -1;
    if (empty) {
        x->text[0] = '\0';
        if (on_end(x)) return -1;
        x->depth--;
    }
    return 0;
}

static int parse(xparse *x)
{
    while (x->p < x->end && !x->failed) {
        if (*x->p == '<') {
            if (tag(x)) return -1;
            continue;
        }
        const char *t = x->p;
        while (x->p < x->end && *x->p != '<') x->p++;
        size_t n = (size_t)(x->p - t);
        if (x->text_len + n < TEXT_MAX) {
            memcpy(x->text + x->text_len, t, n);
            x->text_len += n;
        } else {
            x->text_overflow = 1;
        }
    }
    if (x->failed) return -1;
    if (x->depth) return fail(x, "unexpected end of file inside <%s>", x->names[x->depth - 1]);
    return 0;
}

int fd_cascade_from_xml(const char *xml, size_t len, fd_cascade **out, char *err, size_t errlen)
{
    xparse *x = calloc(1, sizeof *x);
    fd_cascade *c = NULL;
    *out = NULL;
    if (!x) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return -1;
    }
    x->p = xml;
    x->end = xml + len;
    x->err = err;
    x->errlen = errlen;
    if (parse(x)) goto err;
    if (!x->saw_boost || !x->saw_haar || !x->win_w || !x->win_h) {
        fail(x, "not a BOOST/HAAR cascade (stageType, featureType, width or height missing)");
        goto err;
    }
    if (x->stage_num && x->stage_num != x->n_stages) {
        fail(x, "stageNum says %d stages, the file has %d", x->stage_num, x->n_stages);
        goto err;
    }
    if (!x->n_stages || !x->n_features) {
        fail(x, "the cascade has no stages or no features");
        goto err;
    }
    c = fd_cascade_alloc(x->n_stages, x->n_weak, x->n_features);
    if (!c) {
        fail(x, "out of memory");
        goto err;
    }
    c->win_w = x->win_w;
    c->win_h = x->win_h;
    memcpy(c->stages, x->stages, (size_t)x->n_stages * sizeof *c->stages);
    for (int i = 0; i < x->n_weak; i++) c->weak[i] = x->weak[i].w;
    memcpy(c->features, x->features, (size_t)x->n_features * sizeof *c->features);
    if (fd_cascade_validate(c, err, errlen)) goto err;
    *out = c;
    c = NULL;
err:
    fd_cascade_free(c);
    free(x->stages);
    free(x->weak);
    free(x->features);
    int rc = *out ? 0 : -1;
    free(x);
    return rc;
}
