/* common_imgtest.h - helpers for the image and dataset tests: PNG and JPEG
 * encoders that make test images in memory, and temporary directories. */
#ifndef TESTS_COMMON_IMGTEST_H
#define TESTS_COMMON_IMGTEST_H

#include <png.h>
#include <stddef.h>
#include <stdint.h>

/* A PNG to encode. samples holds w*h*channels values (channels implied by
 * color_type; palette images hold indices), each within the bit depth's range;
 * the encoder packs sub-byte depths and writes 16-bit big-endian. */
typedef struct {
    int w, h;
    int color_type;       /* PNG_COLOR_TYPE_* */
    int bit_depth;        /* 1, 2, 4, 8, 16 */
    int interlace;        /* PNG_INTERLACE_NONE or PNG_INTERLACE_ADAM7 */
    const uint16_t *samples;
    const png_color *palette; /* palette images */
    int npalette;
    const uint8_t *trns;  /* palette alpha entries (tRNS), may be NULL */
    int ntrns;
    const png_color_16 *trns_color; /* gray/RGB tRNS colour, may be NULL */
} imgt_png_spec;

/* Encodes a PNG into a malloc'ed buffer; returns 0, -1 on a libpng error. */
int imgt_png_encode(const imgt_png_spec *s, uint8_t **out, size_t *len);

/* 8-bit gray PNG from w*h bytes; malloc'ed, aborts the test on failure. */
uint8_t *imgt_png_gray8(int w, int h, const uint8_t *px, size_t *len);

/* JPEG from packed pixels of TurboJPEG pixel format pf (TJPF_GRAY, TJPF_RGB,
 * TJPF_CMYK, ...); subsamp TJSAMP_*. Returns malloc'ed bytes (free()), aborts
 * the test on failure. */
uint8_t *imgt_jpeg_encode(const uint8_t *px, int w, int h, int pf, int subsamp, int quality,
                          size_t *len);

/* The reference gray of an RGB colour (BT.601, as the decoder uses). */
int imgt_luma(int r, int g, int b);

/* Writes a file; aborts the test on failure. */
void imgt_write_file(const char *path, const void *data, size_t len);

/* Creates a fresh temporary directory; path must hold 64 bytes. */
void imgt_mkdtemp(char *path);
/* Removes a directory tree (best effort). */
void imgt_rm_rf(const char *path);

/* A CRC-correct PNG chunk appended at p (returns bytes written: 12 + len). */
size_t imgt_png_chunk(uint8_t *p, const char type[4], const uint8_t *data, uint32_t len);

#endif
