/* augment.h - training-time augmentation of 8-bit grayscale faces. */
#ifndef NN_AUGMENT_H
#define NN_AUGMENT_H

#include <stdint.h>

typedef struct {
    int flip;        /* random horizontal flip, p = 0.5 */
    int shift;       /* random translation of up to +-shift pixels */
    float rotate;    /* random rotation of up to +-rotate degrees */
    float scale;     /* random zoom of up to +-scale (0.1 = 10%) */
    float erase;     /* probability of random erasing (a rectangle set to noise) */
} nn_augment;

/* Writes an augmented copy of src (side x side) to dst; rng advances. With
 * every option off dst is an exact copy. */
void nn_augment_image(const nn_augment *a, const uint8_t *src, uint8_t *dst, int side,
                      uint64_t *rng);

#endif
