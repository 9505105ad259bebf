/* jpeg_dc_internal.h - what nn/jpeg_dc.c shares with nn/jpeg_dc_lanes.c: the
 * decoding tables of one Huffman table and the lanes' walk over the scan. */
#ifndef NN_JPEG_DC_INTERNAL_H
#define NN_JPEG_DC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#define LUT_BITS 10 /* the DC tables' lookup */
/* The AC tables' lookup, of up to two codes at once (see huff_pairs). */
#define PAIR_BITS 12
/* Windows of the pair table that start a code longer than PAIR_BITS bits
 * (at most 16) get a second table of 16 entries, indexed by the next 4
 * bits, for up to this many of them (a photo's 16-bit AC codes were 2,743
 * lookups a 1920x1080 one, each a canonical decoding before). */
#define LONG_PREFIXES 32
/* A pair entry with this bit set: a code longer than PAIR_BITS bits, whose
 * entry (pair format, one code) is at pair[(e & 0xFFFF) + next 4 bits]. */
#define PAIR_LONG 0x80000000u
#define MAX_BLOCKS_IN_MCU 10 /* libjpeg's D_MAX_BLOCKS_IN_MCU */
/* Zero bytes after the unstuffed stream: more than one MCU can read before the
 * per-MCU bounds check sees it ran off the end (10 blocks x 64 codes of at
 * most 31 bits is 2,480 bytes), so reads never leave the buffer. */
#define STREAM_PAD 4096

/* Decoding tables for one Huffman table, in the role (DC or AC) it plays. */
typedef struct {
    uint16_t lut[1 << LUT_BITS]; /* DC tables; 0: code longer than LUT_BITS, or invalid */
    /* AC tables only: the pair table (see huff_pairs), then LONG_PREFIXES
     * tables of 16 entries for the codes longer than PAIR_BITS bits. */
    uint32_t pair[(1 << PAIR_BITS) + 16 * LONG_PREFIXES];
    int32_t maxcode[18];          /* largest code of length l, -1 if none */
    int32_t valoffset[18];        /* code + valoffset[l] = index into vals */
    uint8_t vals[256];
} huff_dec;

/* The symbol whose code starts the 16 bits top, if its length is at most
 * maxlen (canonical decoding, as libjpeg's jpeg_huff_decode); -1 otherwise. */
static inline int huff_decode16(const huff_dec *t, uint32_t top, int maxlen, int *len)
{
    for (int l = 1; l <= maxlen; l++) {
        int32_t c = (int32_t)(top >> (16 - l));
        if (c <= t->maxcode[l]) {
            *len = l;
            return t->vals[(c + t->valoffset[l]) & 0xFF];
        }
    }
    return -1;
}

/* How far an AC symbol moves along the block: past its run of zeros and its
 * coefficient, 16 for a run of 16 zeros (ZRL), 64 for end of block. */
static inline int ac_advance(int v)
{
    int r = v >> 4, s = v & 15;
    return s ? r + 1 : r == 15 ? 16 : 64;
}

/* The blocks of one MCU, in scan order, as the lanes walk them. */
typedef struct {
    int nblk;
    const huff_dec *dc[MAX_BLOCKS_IN_MCU], *ac[MAX_BLOCKS_IN_MCU];
    int is_luma[MAX_BLOCKS_IN_MCU];
} lanes_mcu;

/* Walks the Huffman codes of a scan without restart markers (stream: nbytes
 * unstuffed bytes followed by STREAM_PAD zeros; tabs: the tables mcu points
 * into) in 64 lanes of AVX-512 at once, each from its own part of the stream
 * (see jpeg_dc_lanes.c), and writes the luma DC predictor of each of the nluma
 * luma blocks, cut to 16 bits, to dcv in scan order. nblocks: the scan's
 * blocks, MCUs x mcu->nblk. Returns 1 when the walk is the one the sequential
 * decoder would make and ends where it would accept it; 0 when the lanes
 * could not tell (a part they could not join, an invalid code, a scan that
 * does not end where it should, no AVX-512): the caller then walks the scan
 * itself, which decides. tiny: parts down to 32 bits, not 512 (tests). */
int jpeg_lanes_walk(const uint8_t *stream, size_t nbytes, const huff_dec *tabs,
                    const lanes_mcu *mcu, long long nblocks, long long nluma, uint16_t *dcv,
                    int tiny);

/* Whether this CPU runs jpeg_lanes_walk (AVX-512 F and BW). */
int jpeg_lanes_supported(void);

#endif
