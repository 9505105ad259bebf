/* fuzz_image.c - image bytes -> 8-bit gray, as the service decodes them:
 * img_decode_gray_resized to the model's 48x48 input (POST /predict, face
 * crops) and img_decode_gray at full size (the face detection path), with the
 * service's default limits (4096 x 4096). Invariants: a success has a size
 * within the limits, both paths agree on that size, and a failure has one of
 * the documented codes and a message. */
#include <string.h>

#include "fuzz_common.h"
#include "image.h"

static int known_code(int rc)
{
    switch (rc) {
    case IMG_E_EMPTY: case IMG_E_FORMAT: case IMG_E_CORRUPT_PNG: case IMG_E_CORRUPT_JPEG:
    case IMG_E_TRUNCATED_PNG: case IMG_E_TRUNCATED_JPEG: case IMG_E_TOO_LARGE: case IMG_E_NOMEM:
        return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    img_limits lim;
    img_limits_default(&lim);
    uint8_t out[48 * 48];
    char err[256] = "";
    int ow = -1, oh = -1;
    int rc = img_decode_gray_resized(data, size, &lim, 48, 48, out, &ow, &oh, err, sizeof err);
    if (rc == IMG_OK) {
        FUZZ_CHECK(ow >= 1 && oh >= 1 && ow <= lim.max_width && oh <= lim.max_height);
        FUZZ_CHECK((long long)ow * oh <= lim.max_pixels);
    } else {
        FUZZ_CHECK(known_code(rc));
        FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
    }

    uint8_t *px = NULL;
    int w = -1, h = -1;
    char err2[256] = "";
    int rc2 = img_decode_gray(data, size, &lim, &px, &w, &h, err2, sizeof err2);
    if (rc2 == IMG_OK) {
        FUZZ_CHECK(px != NULL && w >= 1 && h >= 1 && w <= lim.max_width && h <= lim.max_height);
        if (rc == IMG_OK) FUZZ_CHECK(w == ow && h == oh);
        /* what the face detector's crops go through */
        img_resize_area(px, w, h, out, 48, 48);
        uint8_t small[7 * 5];
        img_resize_area(px, w, h, small, 7, 5);
    } else {
        FUZZ_CHECK(px == NULL && known_code(rc2) && err2[0] != '\0');
    }
    free(px);
    return 0;
}
