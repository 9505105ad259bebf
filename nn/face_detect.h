/* face_detect.h - Viola-Jones face detection with OpenCV's trained Haar cascades.
 *
 * The service classifies 48x48 face crops; photos and webcam frames first
 * need the faces found. This is a plain C evaluator of OpenCV's boosted
 * Haar cascades (haarcascade_frontalface_default.xml from Debian's
 * opencv-data): integral images, variance-normalised Haar features, stage
 * thresholds, a multi-scale sliding window over an image pyramid and the
 * grouping of overlapping hits, following OpenCV 4's CascadeClassifier so
 * that the trained thresholds mean what they meant in training. No OpenCV
 * code or library is used.
 *
 * A cascade is loaded from the compact file written by fd_cascade_save
 * (models/haarcascade_frontalface_default.fdc, made by `emotiond
 * convert-cascade`) or, for convenience, straight from the OpenCV XML (read
 * by a small purpose-built parser, no libxml2). A loaded cascade is never
 * modified: threads share one freely.
 *
 * As everywhere in nn/: 0 on success, -1 with a message in err on failure;
 * nothing aborts on bad input.
 */
#ifndef NN_FACE_DETECT_H
#define NN_FACE_DETECT_H

#include <stddef.h>
#include <stdint.h>

typedef struct fd_cascade fd_cascade;

/* Loads a compact cascade file, or an OpenCV cascade XML (sniffed from the
 * first bytes). Rejects truncated, corrupted or unsupported files (only
 * BOOST/HAAR cascades of stumps, without tilted features, are supported). */
int fd_cascade_load(const char *path, fd_cascade **out, char *err, size_t errlen);
int fd_cascade_load_mem(const void *buf, size_t len, fd_cascade **out, char *err,
                        size_t errlen);
/* Parses OpenCV's cascade XML text (len bytes, need not be NUL-terminated). */
int fd_cascade_from_xml(const char *xml, size_t len, fd_cascade **out, char *err,
                        size_t errlen);

/* Writes the compact format: a temporary file renamed over path. The bytes
 * depend only on the cascade, so a conversion is reproducible. */
int fd_cascade_save(const fd_cascade *c, const char *path, char *err, size_t errlen);

void fd_cascade_free(fd_cascade *c);

int fd_cascade_window(const fd_cascade *c);  /* side of the training window: 24 */
int fd_cascade_num_stages(const fd_cascade *c);
int fd_cascade_num_weak(const fd_cascade *c); /* weak classifiers over all stages */

/* A face: box in pixels of the image given to fd_detect, and the number of
 * raw hits that were merged into it (more = surer). */
typedef struct {
    int x, y, w, h;
    int neighbors;
} fd_box;

typedef struct {
    double scale_step;  /* each scanned face size is this much larger (1.1) */
    int min_size;       /* smallest face side in input pixels; 0 = the cascade window */
    int max_size;       /* largest face side in input pixels; 0 = the whole image */
    int min_neighbors;  /* raw hits needed to keep a group (3, as OpenCV) */
    /* Downscale before scanning: the image is first shrunk (area average) so
     * that its longer side is at most this; 0 = scan at full size. Bounds the
     * cost of big photos; faces smaller than window*side/max_scan_side are
     * then missed. */
    int max_scan_side;
} fd_params;

void fd_params_default(fd_params *p); /* 1.1, 0, 0, 3, 640 */

/* Finds the faces in a w x h 8-bit grayscale image (row-major). *boxes
 * receives a malloc'ed array of *n boxes (NULL when none), largest first.
 * Fails only on bad arguments or when out of memory. */
int fd_detect(const fd_cascade *c, const fd_params *p, const uint8_t *gray, int w, int h,
              fd_box **boxes, int *n, char *err, size_t errlen);

/* The crop the classifier sees for a detected face: the box grown by margin
 * (a fraction of the box side, on every side) and kept square, then resized
 * to side x side by area averaging. Parts of the crop outside the image are
 * filled by repeating the edge pixels, so a face at the border is not
 * shifted. out holds side*side bytes. 0, or -1 when out of memory or the
 * arguments are bad. */
int fd_crop_face(const uint8_t *gray, int w, int h, const fd_box *box, double margin,
                 uint8_t *out, int side);

/* The margin that matches FER2013's framing. Measured with `bench_face --fer`
 * on 662 FER2013 PublicTest crops (upscaled 4x): in the 401 with exactly one
 * detection, the cascade's box spans a median 0.833 of the crop's side
 * (mean 0.795, sd 0.13, pulled down by partial boxes), centred (0.50, 0.49).
 * (1 / 0.833 - 1) / 2 = 0.10 on each side. */
#define FD_FER_MARGIN 0.10

/* Intersection over union of two boxes (0 when either is empty). */
double fd_iou(const fd_box *a, const fd_box *b);

#endif
