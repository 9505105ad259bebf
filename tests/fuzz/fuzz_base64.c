/* fuzz_base64.c - b64_decode on arbitrary text (the "image" string of a JSON
 * body) into a buffer of exactly b64_decoded_max bytes, so that ASan sees any
 * overrun, plus two round trips: decode(encode(x)) == x for the raw input,
 * and encode(decode(s)) decodes back to the same bytes. */
#include <string.h>

#include "base64.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    size_t max = b64_decoded_max(size);
    uint8_t *out = malloc(max ? max : 1);
    FUZZ_CHECK(out != NULL);
    size_t outlen = (size_t)-1;
    if (b64_decode(text, size, out, &outlen) == 0) {
        FUZZ_CHECK(outlen <= max);
        FUZZ_CHECK(outlen <= size / 4 * 3 + 2);
        char *enc = b64_encode(out, outlen);
        FUZZ_CHECK(enc != NULL);
        size_t elen = strlen(enc);
        FUZZ_CHECK(elen == (outlen + 2) / 3 * 4);
        uint8_t *back = malloc(b64_decoded_max(elen));
        size_t blen = 0;
        FUZZ_CHECK(back != NULL && b64_decode(enc, elen, back, &blen) == 0);
        FUZZ_CHECK(blen == outlen && memcmp(back, out, outlen) == 0);
        free(back);
        free(enc);
    }
    free(out);

    /* the raw input as binary data */
    char *enc = b64_encode(data, size);
    FUZZ_CHECK(enc != NULL);
    size_t elen = strlen(enc);
    FUZZ_CHECK(elen == (size + 2) / 3 * 4);
    uint8_t *back = malloc(b64_decoded_max(elen));
    size_t blen = 0;
    FUZZ_CHECK(back != NULL && b64_decode(enc, elen, back, &blen) == 0);
    FUZZ_CHECK(blen == size && (size == 0 || memcmp(back, data, size) == 0));
    free(back);
    free(enc);
    return 0;
}
