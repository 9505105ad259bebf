/* jpeg_dc_internal.h - what nn/jpeg_dc.c shares with nn/jpeg_dc_lanes.c: the
 * decoding tables of one Huffman table, the sequential walk's bit reader and
 * steps (which the lanes' true_walk uses too), and the lanes' walk over the
 * scan. */
#ifndef NN_JPEG_DC_INTERNAL_H
#define NN_JPEG_DC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LUT_BITS 10 /* the DC tables' lookup */
/* The AC tables' lookup, of up to PAIR_CODES codes at once (see huff_pairs). */
#define PAIR_BITS 12
/* Windows of the pair table that start a code longer than PAIR_BITS bits
 * (at most 16) get a second table of 1 << LONG_BITS entries, indexed by the
 * next LONG_BITS bits, for up to this many of them (a photo's 16-bit AC
 * codes were 2,743 lookups a 1920x1080 one, each a canonical decoding
 * before). */
#define LONG_PREFIXES 32
/* The second tables' entries: indexed by the bits after the window, up to
 * 16 in all (JPEG's longest code). */
#define LONG_BITS (16 - PAIR_BITS)
/* A pair entry with this bit set: a code longer than PAIR_BITS bits, whose
 * entry (pair format, one code) is at pair[(e & 0xFFFF) + next LONG_BITS bits]. */
#define PAIR_LONG 0x80000000u
/* Codes per pair entry, at most (see huff_pairs). */
#define PAIR_CODES 4
/* A pair entry with this bit set ends with an end of block. */
#define PAIR_EOB 0x80u
#define MAX_BLOCKS_IN_MCU 10 /* libjpeg's D_MAX_BLOCKS_IN_MCU */
/* Zero bytes after the unstuffed stream: more than one MCU can read before the
 * per-MCU bounds check sees it ran off the end (10 blocks x 64 codes of at
 * most 31 bits is 2,480 bytes), so reads never leave the buffer. */
#define STREAM_PAD 4096

/* Decoding tables for one Huffman table, in the role (DC or AC) it plays. */
typedef struct {
    /* DC tables: for each LUT_BITS-bit window that starts a code, the code's
     * length with its value's s bits, and a move of 1 along the block, where
     * a pair entry has its bits and advance (btot | 1 << 8); then s << 16 |
     * length << 24. 0: a code longer than LUT_BITS, or invalid. */
    uint32_t lut[1 << LUT_BITS];
    /* AC tables only: the pair table (see huff_pairs), then LONG_PREFIXES
     * tables of 16 entries for the codes longer than PAIR_BITS bits. */
    uint32_t pair[(1 << PAIR_BITS) + (LONG_PREFIXES << LONG_BITS)];
    uint32_t long_from; /* AC: the first window that starts a code longer than
                         * PAIR_BITS; 1 << PAIR_BITS when they have no second tables */
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

/* libjpeg's HUFF_EXTEND: the s value bits r as a signed difference (values
 * below 2^(s-1) are negative). */
static inline int32_t huff_extend(int32_t r, int s)
{
    const int32_t half = (int32_t)((1u << s) >> 1);
    return r < half ? r - (int32_t)(1u << s) + 1 : r;
}

/* The symbol of the code at the top of bits when the lookup tables have no
 * entry for it (it is longer than their window), by canonical decoding from
 * length 1 as libjpeg's jpeg_huff_decode does; its length goes to *len.
 * Returns -1 for a code that is not in the table (libjpeg warns). */
static inline int huff_slow(const huff_dec *t, uint64_t bits, int *len)
{
    return huff_decode16(t, (uint32_t)(bits >> 48), 16, len);
}

/* A bit reader over the unstuffed stream: bits holds the next n bits at its
 * top; refill tops it up to 56..63 bits from whole bytes. */
typedef struct {
    const uint8_t *buf;
    size_t pos; /* next byte to load */
    uint64_t bits;
    int n;
} bit_reader;

static inline void br_refill(bit_reader *b)
{
    uint64_t w;
    memcpy(&w, b->buf + b->pos, 8);
    w = __builtin_bswap64(w);
    b->bits |= w >> b->n;
    b->pos += (size_t)((63 - b->n) >> 3);
    b->n |= 56;
}

static inline void br_drop(bit_reader *b, int k)
{
    b->bits <<= k;
    b->n -= k;
}

/* Bits consumed so far. */
static inline size_t br_used(const bit_reader *b)
{
    return b->pos * 8 - (size_t)b->n;
}

/* Moves the reader to a byte boundary at byte pos (after a restart marker). */
static inline void br_seek(bit_reader *b, size_t pos)
{
    b->pos = pos;
    b->bits = 0;
    b->n = 0;
    br_refill(b);
}

/* ---- the sequential walk's steps ------------------------------------------- */

/* The single-code entry (bits | advance << 5) for a code the pair table has
 * no entry for (longer than PAIR_BITS), built after a refill (such an entry
 * can skip 31 bits). 0 for an invalid code. */
static inline unsigned ac_single(bit_reader *b, const huff_dec *t)
{
    br_refill(b);
    int len, v = huff_slow(t, b->bits, &len);
    if (v < 0)
        return 0;
    return (unsigned)(len + (v & 15)) | (unsigned)ac_advance(v) << 5;
}

/* One lookup in the pair table (huff_pairs): moves past one to PAIR_CODES codes.
 * top: b->bits as it was before the refill that preceded this step (see
 * skip_ac). Returns 1 while the block goes on, 0 at its end, -1 on an
 * invalid code. */
static inline int ac_step(bit_reader *b, const huff_dec *t, int *k, uint64_t top)
{
    uint32_t e = t->pair[top >> (64 - PAIR_BITS)];
    if (__builtin_expect((int32_t)e <= 0, 0) && e) /* a long code: its second table */
        e = t->pair[(e & 0xFFFF) + (top >> (64 - 16) & ((1u << LONG_BITS) - 1))];
    if (__builtin_expect(e == 0, 0)) {
        unsigned s = ac_single(b, t);
        if (!s)
            return -1;
        br_drop(b, (int)(s & 31));
        *k += (int)(s >> 5);
        return *k < 64;
    }
    /* One branch while the block goes on: when all the entry's codes
     * together stay inside it, so does each; only at its end is it asked
     * which code ended it (1.67 -> 1.55 ms for the 1920x1080 photo, with two
     * codes an entry, against a test of each). btot is below 32, so & 63 takes the same
     * bits: x86 shifts by a register's low 6 bits, so the compiler drops
     * the mask and the shift follows the table load directly (1.88 ->
     * 1.78 ms against & 31). */
    const int k2 = *k + (int)(e >> 8 & 255);
    if (__builtin_expect(k2 < 64, 1)) {
        br_drop(b, (int)(e & 63));
        *k = k2;
        return 1;
    }
    if ((e & PAIR_EOB) && k2 < 128) {
        br_drop(b, (int)(e & 63));
        return 0;
    }
    br_drop(b, (int)(e >> 16 & 31));
    *k += (int)(e >> 24);
    return *k < 64;
}

/* Walks one block's AC codes. Returns 0 on an invalid code. A refill before
 * every lookup, without testing the bit count (that branch follows the data
 * and was mispredicted), and the lookup indexed by the bits from before the
 * refill: a refill leaves at least 56 bits and a step skips at most 31 (a
 * pair entry PAIR_BITS + 15 = 27, a longer code refills for itself), so
 * at least 25 of them, more than PAIR_BITS, were there already. The refill's
 * OR (which waits on the bit count the last step left) then runs beside the
 * table load instead of before it. With two lookups per refill and the
 * lookup after it: 1.78 -> 1.72 ms for a 1920x1080 photo (Zen 4 VM), 1.67
 * with read_dc doing the same. It is called right after read_dc, which
 * refilled and then took at most 27 bits: its first lookup finds at least
 * 29 there without a refill of its own. */
static inline int skip_ac(bit_reader *b, const huff_dec *t)
{
    int k = 1, r;
    do {
        const uint64_t top = b->bits;
        br_refill(b);
        r = ac_step(b, t, &k, top);
    } while (r > 0);
    return r == 0;
}

/* The DC difference of one block. Returns 0 on an invalid code. */
static inline int read_dc(bit_reader *b, const huff_dec *t, int32_t *diff)
{
    /* as skip_ac: at least 25 bits are there on entry (56 after a seek),
     * more than LUT_BITS; a DC code and its value take at most 27 */
    const uint64_t top = b->bits;
    br_refill(b);
    uint32_t e = t->lut[top >> (64 - LUT_BITS)];
    int len, s;
    if (__builtin_expect(e != 0, 1)) {
        len = (int)(e >> 24);
        s = (int)(e >> 16 & 31);
    } else {
        s = huff_slow(t, b->bits, &len);
        if (s < 0)
            return 0;
    }
    /* Without a branch on s == 0 (a difference of zero, common in smooth
     * areas, and mispredicted): the value's s bits after the code, masked
     * to 0 when there are none (the shift is then by 0, not 64). */
    const uint64_t v = b->bits << len;
    const int32_t r = (int32_t)((v >> ((64 - s) & 63)) & (uint64_t)-(int64_t)(s != 0));
    br_drop(b, len + s);
    *diff = huff_extend(r, s);
    return 1;
}

/* The blocks of one MCU, in scan order, as the lanes walk them. */
typedef struct {
    int nblk;
    const huff_dec *dc[MAX_BLOCKS_IN_MCU], *ac[MAX_BLOCKS_IN_MCU];
    /* the DC lookup of the lanes: the DC code and the AC codes after it,
     * from a PAIR_BITS-bit window, in the same object as the tables */
    const uint32_t *dc_merged[MAX_BLOCKS_IN_MCU];
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
