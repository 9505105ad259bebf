/* image.h - decode PNG/JPEG bytes to 8-bit grayscale and resize by area averaging.
 *
 * The one place where images are decoded: the data loader (nn/dataset.c) and
 * the HTTP service both call it. Nothing here aborts on bad input: every
 * failure returns a negative IMG_E* code and a human-readable message.
 */
#ifndef NN_IMAGE_H
#define NN_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include "jpeg_dc.h"

enum {
    IMG_OK = 0,
    IMG_E_EMPTY = -1,        /* zero bytes */
    IMG_E_FORMAT = -2,       /* neither PNG nor JPEG signature: "unsupported_format" */
    IMG_E_CORRUPT_PNG = -3,  /* "corrupt_png" */
    IMG_E_CORRUPT_JPEG = -4, /* "corrupt_jpeg" */
    IMG_E_TRUNCATED_PNG = -5,  /* "truncated_png" */
    IMG_E_TRUNCATED_JPEG = -6, /* "truncated_jpeg" */
    IMG_E_TOO_LARGE = -7,    /* width/height/pixels above the limits: "image_too_large" */
    IMG_E_NOMEM = -8,        /* allocation failed: "out_of_memory" */
    IMG_E_IO = -9            /* file could not be read: "io_error" */
};

/* Limits checked from the header, before any pixel buffer is allocated. */
typedef struct {
    int max_width;        /* default 4096 */
    int max_height;       /* default 4096 */
    long long max_pixels; /* default 4096*4096 */
} img_limits;

void img_limits_default(img_limits *lim);

/* Short stable reason code for an IMG_E* value ("corrupt_png", ...). */
const char *img_strerror_code(int err);

/* Decodes PNG or JPEG (sniffed from the magic bytes) in memory and resizes it
 * to out_w x out_h grayscale by area averaging, writing out_w*out_h bytes to
 * out (row-major). JPEGs are decoded at a reduced scale (TurboJPEG scaling
 * factors) when the image is much larger than the target. orig_w/orig_h (may
 * be NULL) receive the source size. Returns IMG_OK or a negative IMG_E* code
 * with a message in err (errlen bytes, may be 0). */
int img_decode_gray_resized(const uint8_t *data, size_t len, const img_limits *lim,
                            int out_w, int out_h, uint8_t *out,
                            int *orig_w, int *orig_h, char *err, size_t errlen);

/* img_decode_gray_resized with the Huffman tables of JPEGs decoded at 1/8
 * scale kept in cache (jpeg_dc.h) for the calling thread's next images;
 * NULL: none kept. */
int img_decode_gray_resized_cached(jpeg_dc_cache *cache, const uint8_t *data, size_t len,
                                   const img_limits *lim, int out_w, int out_h, uint8_t *out,
                                   int *orig_w, int *orig_h, char *err, size_t errlen);

/* Decodes to full-size 8-bit grayscale; *pixels is malloc'ed (caller frees). */
int img_decode_gray(const uint8_t *data, size_t len, const img_limits *lim,
                    uint8_t **pixels, int *w, int *h, char *err, size_t errlen);

/* Area-average resize of a grayscale image (any size, up or down). */
void img_resize_area(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh);

/* Reads a whole file (up to max_bytes) into a malloc'ed buffer. */
int img_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len,
                  char *err, size_t errlen);

#endif
