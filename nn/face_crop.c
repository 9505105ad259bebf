/* face_crop.c - cutting a detected face out the way FER2013 framed its faces.
 *
 * The classifier was trained on FER2013's 48x48 crops, so a face found in a
 * photo must be framed alike before the resize. The margin around the
 * cascade's box is therefore measured rather than guessed: see FD_FER_MARGIN
 * in face_detect.h and `bench_face --fer DIR`, which runs the detector on
 * FER2013 images and reports where the box falls inside them.
 */
#include <math.h>
#include <stdlib.h>

#include "face_detect.h"
#include "image.h"

int fd_crop_face(const uint8_t *gray, int w, int h, const fd_box *box, double margin,
                 uint8_t *out, int side)
{
    if (!gray || !box || !out || w < 1 || h < 1 || side < 1 || box->w < 1 || box->h < 1 ||
        !(margin >= 0.0 && margin <= 2.0))
        return -1;
    /* A square around the box centre: the cascade's boxes are square, but a
     * caller's may not be, and the classifier wants a square. */
    double cx = box->x + box->w * 0.5, cy = box->y + box->h * 0.5;
    double bside = box->w > box->h ? box->w : box->h;
    int s = (int)lround(bside * (1.0 + 2.0 * margin));
    if (s < 1) s = 1;
    if (s > 3 * (w > h ? w : h)) return -1; /* a box far bigger than the image: bad input */
    int x0 = (int)lround(cx - s * 0.5), y0 = (int)lround(cy - s * 0.5);
    uint8_t *tmp = malloc((size_t)s * (size_t)s);
    if (!tmp) return -1;
    /* Edge pixels are repeated where the square leaves the image: a face at
     * the border keeps its place in the frame instead of being shifted. */
    for (int y = 0; y < s; y++) {
        int sy = y0 + y;
        sy = sy < 0 ? 0 : sy >= h ? h - 1 : sy;
        const uint8_t *row = gray + (size_t)sy * (size_t)w;
        uint8_t *dst = tmp + (size_t)y * (size_t)s;
        for (int x = 0; x < s; x++) {
            int sx = x0 + x;
            sx = sx < 0 ? 0 : sx >= w ? w - 1 : sx;
            dst[x] = row[sx];
        }
    }
    img_resize_area(tmp, s, s, out, side, side);
    free(tmp);
    return 0;
}
