/* fuzz_jpeg_dc.c - nn/jpeg_dc.c against TurboJPEG, on any bytes: whenever the
 * 1/8-scale DC decoder takes a file, TurboJPEG (tjDecompress2 at 1/8,
 * TJPF_GRAY, TJFLAG_STOPONWARNING) must decode it too, to the same pixels.
 * The decoder is called at 1/8 whatever the size, so small inputs reach all
 * of it (the service only calls it for images of 384 px and more), once
 * walking the scan itself and once with the lanes of nn/jpeg_dc_lanes.c
 * forced on, which must agree; and a third time with the lanes and one
 * table cache kept across inputs (jpeg_dc_cache, as a service worker keeps
 * one), whose tables each input's must replace or match. */
#include <string.h>
#include <turbojpeg.h>

#include "fuzz_common.h"
#include "jpeg_dc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tjhandle tj = tjInitDecompress();
    FUZZ_CHECK(tj != NULL);
    int w = 0, h = 0, ss = 0, cs = 0;
    /* as nn/image.c: only files whose header TurboJPEG reads as gray or
     * YCbCr, within the service's 4096 x 4096 limit */
    if (tjDecompressHeader3(tj, data, (unsigned long)size, &w, &h, &ss, &cs) != 0 || w <= 0 ||
        h <= 0 || w > 4096 || h > 4096 || (cs != TJCS_GRAY && cs != TJCS_YCbCr)) {
        tjDestroy(tj);
        return 0;
    }
    int sw = (w + 7) / 8, sh = (h + 7) / 8;
    uint8_t *got = malloc((size_t)sw * (size_t)sh), *ref = malloc((size_t)sw * (size_t)sh);
    FUZZ_CHECK(got != NULL && ref != NULL);
    /* the sequential walk, and the lanes whenever they can (small scans
     * included), without and with the cache: the same verdict, and when
     * taken TurboJPEG's pixels */
    static jpeg_dc_cache *cache;
    if (!cache)
        FUZZ_CHECK((cache = jpeg_dc_cache_new()) != NULL);
    int took = 0;
    for (int mode = 0; mode < 3; mode++) {
        int t = mode == 0   ? jpeg_dc_decode_how(data, size, got, sw, sh, JPEG_DC_LANES_NEVER) != 0
                : mode == 1 ? jpeg_dc_decode_how(data, size, got, sw, sh, JPEG_DC_LANES_ALWAYS) != 0
                            : jpeg_dc_decode_cached(cache, data, size, got, sw, sh, JPEG_DC_LANES_ALWAYS) != 0;
        if (mode == 0)
            took = t;
        FUZZ_CHECK(t == took);
        if (!t)
            continue;
        int rc = tjDecompress2(tj, data, (unsigned long)size, ref, sw, 0, sh, TJPF_GRAY,
                               TJFLAG_STOPONWARNING);
        if (rc != 0)
            fprintf(stderr, "TurboJPEG refuses what the fast path took: %s\n", tjGetErrorStr2(tj));
        FUZZ_CHECK(rc == 0);
        FUZZ_CHECK(memcmp(got, ref, (size_t)sw * (size_t)sh) == 0);
    }
    free(got);
    free(ref);
    tjDestroy(tj);
    return 0;
}
