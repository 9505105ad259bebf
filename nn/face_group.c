/* face_group.c - merging the raw hits of the sliding window into faces.
 *
 * A face fires the cascade at several neighbouring positions and scales; a
 * lone hit is usually a false alarm. Same rules as OpenCV's groupRectangles,
 * with which the cascade's "min_neighbors 3" default was tuned:
 *  - two boxes are similar when every edge differs by at most
 *    eps * (mean of their smaller width and smaller height); similarity is
 *    closed transitively (union-find) into clusters;
 *  - each cluster becomes the rounded mean of its boxes, kept only when it
 *    has more than min_neighbors members;
 *  - a kept box lying inside another kept box (eps slack) that has more
 *    hits (more than max(3, its own)) is dropped: it is a part of a face.
 */
#include <math.h>
#include <stdlib.h>

#include "face_internal.h"

static int find(int *parent, int i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]]; /* path halving */
        i = parent[i];
    }
    return i;
}

static int similar(const fd_box *a, const fd_box *b, double eps)
{
    double delta = eps * ((a->w < b->w ? a->w : b->w) + (a->h < b->h ? a->h : b->h)) * 0.5;
    return abs(a->x - b->x) <= delta && abs(a->y - b->y) <= delta &&
           abs(a->x + a->w - b->x - b->w) <= delta && abs(a->y + a->h - b->y - b->h) <= delta;
}

int fd_group_boxes(fd_box *rects, int *n, int min_neighbors, double eps)
{
    int count = *n;
    if (min_neighbors <= 0 || count == 0) return 0; /* OpenCV: no grouping at all */
    int *parent = malloc((size_t)count * sizeof *parent);
    int *cls = malloc((size_t)count * sizeof *cls);
    double *acc = calloc((size_t)count * 4, sizeof *acc);
    int *members = calloc((size_t)count, sizeof *members);
    fd_box *mean = malloc((size_t)count * sizeof *mean);
    int rc = -1;
    if (!parent || !cls || !acc || !members || !mean) goto done;

    for (int i = 0; i < count; i++) parent[i] = i;
    for (int i = 0; i < count; i++)
        for (int j = i + 1; j < count; j++)
            if (similar(&rects[i], &rects[j], eps)) {
                int a = find(parent, i), b = find(parent, j);
                if (a != b) parent[b] = a;
            }

    /* Cluster ids 0..nclasses-1 in order of first appearance. */
    int nclasses = 0;
    for (int i = 0; i < count; i++) cls[i] = -1;
    for (int i = 0; i < count; i++) {
        int root = find(parent, i);
        if (cls[root] < 0) cls[root] = nclasses++;
        int k = cls[root];
        acc[4 * k] += rects[i].x;
        acc[4 * k + 1] += rects[i].y;
        acc[4 * k + 2] += rects[i].w;
        acc[4 * k + 3] += rects[i].h;
        members[k]++;
    }
    for (int k = 0; k < nclasses; k++) {
        /* OpenCV scales by a float reciprocal and rounds; so do we, so that
         * boxes match its output to the pixel. */
        float s = 1.0f / (float)members[k];
        mean[k] = (fd_box){(int)lrintf((float)acc[4 * k] * s), (int)lrintf((float)acc[4 * k + 1] * s),
                           (int)lrintf((float)acc[4 * k + 2] * s),
                           (int)lrintf((float)acc[4 * k + 3] * s), members[k]};
    }

    int out = 0;
    for (int i = 0; i < nclasses; i++) {
        const fd_box *r1 = &mean[i];
        int n1 = r1->neighbors, j;
        if (n1 <= min_neighbors) continue;
        for (j = 0; j < nclasses; j++) {
            const fd_box *r2 = &mean[j];
            int n2 = r2->neighbors;
            if (j == i || n2 <= min_neighbors) continue;
            int dx = (int)lrint(r2->w * eps), dy = (int)lrint(r2->h * eps);
            if (r1->x >= r2->x - dx && r1->y >= r2->y - dy && r1->x + r1->w <= r2->x + r2->w + dx &&
                r1->y + r1->h <= r2->y + r2->h + dy && (n2 > (n1 > 3 ? n1 : 3) || n1 < 3))
                break;
        }
        if (j == nclasses) rects[out++] = *r1;
    }
    *n = out;
    rc = 0;
done:
    free(parent);
    free(cls);
    free(acc);
    free(members);
    free(mean);
    return rc;
}

static int cmp_box(const void *pa, const void *pb)
{
    const fd_box *a = pa, *b = pb;
    long long aa = (long long)a->w * a->h, ab = (long long)b->w * b->h;
    if (aa != ab) return aa > ab ? -1 : 1;
    if (a->y != b->y) return a->y < b->y ? -1 : 1;
    if (a->x != b->x) return a->x < b->x ? -1 : 1;
    return (a->neighbors > b->neighbors) - (a->neighbors < b->neighbors);
}

void fd_sort_boxes(fd_box *b, int n)
{
    if (n > 1) qsort(b, (size_t)n, sizeof *b, cmp_box);
}

double fd_iou(const fd_box *a, const fd_box *b)
{
    if (a->w <= 0 || a->h <= 0 || b->w <= 0 || b->h <= 0) return 0.0;
    long long x0 = a->x > b->x ? a->x : b->x, y0 = a->y > b->y ? a->y : b->y;
    long long x1 = a->x + a->w < b->x + b->w ? a->x + a->w : b->x + b->w;
    long long y1 = a->y + a->h < b->y + b->h ? a->y + a->h : b->y + b->h;
    if (x1 <= x0 || y1 <= y0) return 0.0;
    double inter = (double)(x1 - x0) * (double)(y1 - y0);
    double uni = (double)a->w * a->h + (double)b->w * b->h - inter;
    return inter / uni;
}
