/* face_eval.h - measuring the face detector against labelled photos (shared
 * by tests/test_face_detect.c and bench/bench_face.c). */
#ifndef NN_FACE_EVAL_H
#define NN_FACE_EVAL_H

#include <stddef.h>

#include "face_detect.h"

/* Number of detections paired with a label at IoU >= iou_min (greedy, best
 * IoU first, each used once), or -1 when out of memory. */
int fd_match(const fd_box *det, int nd, const fd_box *truth, int nt, double iou_min);

typedef struct {
    double iou_min;
    int images;          /* labelled images scanned */
    int truths;          /* labelled faces */
    int detections;      /* faces reported on the labelled images */
    int true_positives;  /* detections matched to a label */
    int dogs_detections; /* faces reported on dogs.jpg (all false) */
    double recall, precision;
    double seconds;      /* detection time only, all images, dogs.jpg included */
} fd_eval;

/* Runs the detector over dlib's examples/faces folder (training.xml,
 * testing.xml, dogs.jpg; see face_eval.c). */
int fd_eval_dlib(const fd_cascade *c, const fd_params *p, const char *dir, double iou_min,
                 fd_eval *ev, char *err, size_t errlen);

#endif
