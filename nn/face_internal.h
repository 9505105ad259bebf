/* face_internal.h - the cascade structure shared by the face detector's files
 * (face_cascade.c, face_cascade_xml.c, face_detect.c); not public API. */
#ifndef NN_FACE_INTERNAL_H
#define NN_FACE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "face_detect.h"

/* Bounds a cascade file may not exceed: they keep a hostile file from making
 * the loader allocate much, and are far above OpenCV's shipped cascades
 * (25 stages, 2913 stumps, 2135 features for frontalface_default). */
#define FD_MAX_STAGES 1000
#define FD_MAX_WEAK 100000
#define FD_MAX_FEATURES 100000
#define FD_MAX_WINDOW 255 /* rectangles are stored in bytes */
#define FD_MAX_RECTS 3

typedef struct {
    uint8_t x, y, w, h;
    float weight;
} fd_rect;

typedef struct {
    int nrects;             /* 2 or 3 */
    fd_rect r[FD_MAX_RECTS];
} fd_feature;

/* A stump: value < threshold ? left : right, where value is the feature's
 * weighted rectangle sum divided by the window's area * standard deviation. */
typedef struct {
    int feature;
    float threshold, left, right;
} fd_weak;

typedef struct {
    int first, count;       /* range in the weak array */
    float threshold;        /* the stage passes when its sum >= threshold */
} fd_stage;

struct fd_cascade {
    int win_w, win_h;
    int n_stages, n_weak, n_features;
    fd_stage *stages;
    fd_weak *weak;
    fd_feature *features;
};

/* Allocates the three arrays (zeroed) of a cascade of the given sizes. */
fd_cascade *fd_cascade_alloc(int n_stages, int n_weak, int n_features);

/* Checks the invariants every evaluator relies on (indices in range,
 * rectangles inside the window, finite numbers). */
int fd_cascade_validate(const fd_cascade *c, char *err, size_t errlen);

/* face_group.c: merges raw hits like OpenCV's groupRectangles (eps 0.2):
 * clusters of similar boxes are averaged, clusters of min_neighbors hits or
 * fewer dropped, and boxes inside a stronger one removed. Rewrites rects in
 * place (*n shrinks). 0, or -1 when out of memory. */
int fd_group_boxes(fd_box *rects, int *n, int min_neighbors, double eps);

/* Sorts boxes largest first (area, then position, so the order is total). */
void fd_sort_boxes(fd_box *b, int n);

#endif
