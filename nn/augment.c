/* augment.c - flips, shifts, rotations and zoom as one affine resampling
 * (bilinear, edges replicated), then optional random erasing. */
#include <math.h>
#include <string.h>

#include "augment.h"
#include "internal.h"

void nn_augment_image(const nn_augment *a, const uint8_t *src, uint8_t *dst, int side,
                      uint64_t *rng)
{
    const int flip = a->flip && nn_rng_uniform(rng) < 0.5f;
    const float dx = a->shift ? (nn_rng_uniform(rng) * 2 - 1) * a->shift : 0;
    const float dy = a->shift ? (nn_rng_uniform(rng) * 2 - 1) * a->shift : 0;
    const float ang = a->rotate ? (nn_rng_uniform(rng) * 2 - 1) * a->rotate * 3.14159265f / 180 : 0;
    const float zoom = a->scale ? 1 + (nn_rng_uniform(rng) * 2 - 1) * a->scale : 1;
    if (!flip && dx == 0 && dy == 0 && ang == 0 && zoom == 1) {
        memcpy(dst, src, (size_t)side * side);
    } else {
        /* inverse map: output pixel -> source coordinates around the centre */
        const float c = (side - 1) * 0.5f, ca = cosf(ang) / zoom, sa = sinf(ang) / zoom;
        for (int y = 0; y < side; y++) {
            for (int x = 0; x < side; x++) {
                float ox = (flip ? side - 1 - x : x) - c - dx, oy = y - c - dy;
                float sx = ca * ox + sa * oy + c, sy = -sa * ox + ca * oy + c;
                if (sx < 0) sx = 0;
                if (sy < 0) sy = 0;
                if (sx > side - 1) sx = (float)(side - 1);
                if (sy > side - 1) sy = (float)(side - 1);
                int x0 = (int)sx, y0 = (int)sy;
                int x1 = x0 + 1 < side ? x0 + 1 : x0, y1 = y0 + 1 < side ? y0 + 1 : y0;
                float fx = sx - x0, fy = sy - y0;
                float v = (1 - fy) * ((1 - fx) * src[y0 * side + x0] + fx * src[y0 * side + x1]) +
                          fy * ((1 - fx) * src[y1 * side + x0] + fx * src[y1 * side + x1]);
                dst[y * side + x] = (uint8_t)(v + 0.5f);
            }
        }
    }
    if (a->erase > 0 && nn_rng_uniform(rng) < a->erase) {
        /* random erasing (Zhong et al.): 2%..25% of the area, aspect 0.3..3.3 */
        float area = side * side * (0.02f + 0.23f * nn_rng_uniform(rng));
        float ratio = expf(logf(0.3f) + (logf(3.3f) - logf(0.3f)) * nn_rng_uniform(rng));
        int h = (int)sqrtf(area * ratio), w = (int)sqrtf(area / ratio);
        if (h >= 1 && w >= 1 && h < side && w < side) {
            int y0 = (int)(nn_rng_uniform(rng) * (side - h)), x0 = (int)(nn_rng_uniform(rng) * (side - w));
            for (int y = y0; y < y0 + h; y++)
                for (int x = x0; x < x0 + w; x++) dst[y * side + x] = (uint8_t)(nn_rng_next(rng) & 255);
        }
    }
}
