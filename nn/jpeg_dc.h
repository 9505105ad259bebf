/* jpeg_dc.h - a JPEG decoded at 1/8 scale from its DC coefficients alone.
 *
 * At 1/8 scale each 8x8 block of the luma plane becomes one pixel, the
 * block's DC coefficient; libjpeg-turbo gets there by running its general
 * Huffman decoder over every coefficient, which was most of a large upload's
 * cost (bench/README.md, "Large uploads"). This decoder only walks past the
 * AC coefficients, with tables built for that, and writes exactly the pixels
 * TurboJPEG's tjDecompress2 at scale 1/8, TJPF_GRAY, would.
 *
 * It takes only the common case: a clean 8-bit baseline or extended-sequential
 * Huffman JPEG, grayscale or YCbCr, all components in one interleaved scan,
 * luma at full resolution, restart markers allowed. Anything else (progressive,
 * arithmetic, non-interleaved scans, any damage or oddity at all) makes it
 * return 0 without having written anything the caller uses, and the caller
 * runs TurboJPEG, which decodes the file or names what is wrong with it. So
 * the fast path never accepts a file that TurboJPEG (with
 * TJFLAG_STOPONWARNING) would refuse, and never produces different pixels.
 */
#ifndef NN_JPEG_DC_H
#define NN_JPEG_DC_H

#include <stddef.h>
#include <stdint.h>

/* Decodes data (len bytes, a JPEG whose header TurboJPEG has read and found
 * grayscale or YCbCr) into out, ow x oh gray pixels, ow = ceil(width / 8) and
 * oh = ceil(height / 8). Returns 1 when out holds the image, 0 when the file
 * is not one this decoder takes (out may then hold anything). */
int jpeg_dc_decode(const uint8_t *data, size_t len, uint8_t *out, int ow, int oh);

/* Scans of at least this many bytes (a 1920x1080 photo has about 430 KB),
 * without restart markers, are walked in 64 lanes at once on CPUs with
 * AVX-512 (nn/jpeg_dc_lanes.c), in about half the time from 250 KB up; at
 * 69-120 KB the two walks broke even (bench/README.md, "64 lanes at once"),
 * and below that the lanes' fixed costs would weigh more. */
#define JPEG_DC_LANES_MIN_BYTES (64 * 1024)
enum { JPEG_DC_LANES_NEVER, JPEG_DC_LANES_AUTO, JPEG_DC_LANES_ALWAYS };

/* jpeg_dc_decode with the lanes' use chosen (AUTO: from
 * JPEG_DC_LANES_MIN_BYTES up; ALWAYS: whenever the CPU and the scan allow,
 * with parts down to 32 bits, which tests use on small files). Returns 0 as jpeg_dc_decode, 1 when the
 * sequential walk decoded it, 2 when the lanes did. */
int jpeg_dc_decode_how(const uint8_t *data, size_t len, uint8_t *out, int ow, int oh, int lanes);

/* The Huffman tables a thread's earlier calls built, kept for its next: a
 * file whose DHT tables are the ones a table was built from (the same
 * encoder's defaults, say the standard tables of JPEG's Annex K that
 * libjpeg writes unless told to optimize) uses it as it is. Building the
 * four tables of a YCbCr file (and the lanes' DC tables, built from them)
 * took 36 us, 6% of decoding the 1920x1080 photo. About 250 KB; one per
 * thread, never shared. */
typedef struct jpeg_dc_cache jpeg_dc_cache;

/* NULL when out of memory (the decoders then build their tables each call). */
jpeg_dc_cache *jpeg_dc_cache_new(void);
void jpeg_dc_cache_free(jpeg_dc_cache *c);

/* jpeg_dc_decode_how with cache's tables (cache may be NULL: built for
 * this call alone). */
int jpeg_dc_decode_cached(jpeg_dc_cache *cache, const uint8_t *data, size_t len, uint8_t *out, int ow,
                          int oh, int lanes);

#endif
