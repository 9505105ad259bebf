/* jpeg_dc.c - a JPEG decoded at 1/8 scale from its DC coefficients alone
 * (see jpeg_dc.h for what it takes and why).
 *
 * How it stays identical to TurboJPEG (libjpeg-turbo 2.1, the version Debian
 * 12 ships and tests/test_jpeg_dc.c compares against):
 *  - Pixels. TurboJPEG at 1/8 scale runs jpeg_idct_1x1 on each luma block:
 *    v = (dc * q + 4) >> 3, with dc the running DC sum cut to 16 bits and q the
 *    quantizer cut to a short, then range_limit[v & 1023], a table that clamps
 *    to 0..255 around 128 and wraps beyond (dc_pixel reproduces it).
 *  - Gray from YCbCr is the Y plane as decoded; Cb and Cr are never
 *    reconstructed, but their Huffman codes still have to be walked past.
 *  - Refusals. Every libjpeg warning is an error for us (TJFLAG_STOPONWARNING),
 *    so anything that could draw one makes this decoder give up and leave the
 *    file to TurboJPEG: bytes between markers, an unknown JFIF version or
 *    Adobe transform, a non-sequential scan, an invalid Huffman code, a
 *    segment that runs out of bits or has a whole unused byte before its
 *    marker (libjpeg counts those as extraneous), restart markers out of
 *    order, and anything but EOI right after the scan.
 *
 * Speed. A 1920x1080 photo at quality 90 has about 675,000 AC codes and this
 * only needs to skip them. Each AC table becomes a 2^PAIR_BITS lookup indexed
 * by the next bits of the stream, whose entry covers up to PAIR_CODES codes:
 * their lengths plus the lengths of the value bits after them (skipped
 * together) and how far they move along the block (run + 1, 16 for a run of
 * 16 zeros, 64 for end of block). DC tables get a 2^LUT_BITS lookup of length
 * and value size, in the same form. Codes longer than PAIR_BITS get a second
 * table of 1 << LONG_BITS entries under their first PAIR_BITS bits
 * (huff_pairs). The stream is unstuffed (FF 00 ->
 * FF) into a padded buffer first, so the bit reader can load 8 bytes at a
 * time without looking for markers. A large scan without restart markers is
 * walked by nn/jpeg_dc_lanes.c, 64 parts at once with AVX-512, when the CPU
 * has it; this file's sequential walk decides whenever the lanes cannot.
 */
#include "jpeg_dc.h"
#include "jpeg_dc_internal.h"

#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

/* A DHT table as stored in the file. */
typedef struct {
    uint8_t counts[17]; /* counts[l]: codes of length l, l = 1..16 */
    uint8_t vals[256];
    int defined;
} huff_spec;

typedef struct {
    int id, h, v, tq;
} frame_comp;

typedef struct {
    int width, height, ncomp, have_frame;
    frame_comp comp[4];
    int quant_dc[4]; /* the DC quantizer of each table, -1 until defined */
    huff_spec dc[4], ac[4];
    int restart_interval;
    /* the scan */
    int scan_ncomp;
    int scan_comp[4]; /* index into comp[] of each scan component */
    int scan_td[4], scan_ta[4];
} jpeg_hdr;

/* ---- the header ------------------------------------------------------------ */

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static int parse_sof(jpeg_hdr *h, const uint8_t *s, size_t n)
{
    if (h->have_frame || n < 6 || s[0] != 8)
        return 0; /* second frame, or not 8-bit */
    h->height = (int)be16(s + 1);
    h->width = (int)be16(s + 3);
    h->ncomp = s[5];
    if (h->width <= 0 || h->height <= 0 || (h->ncomp != 1 && h->ncomp != 3) ||
        n != 6 + 3 * (size_t)h->ncomp)
        return 0;
    for (int c = 0; c < h->ncomp; c++) {
        const uint8_t *p = s + 6 + 3 * c;
        frame_comp *fc = &h->comp[c];
        fc->id = p[0];
        fc->h = p[1] >> 4;
        fc->v = p[1] & 15;
        fc->tq = p[2];
        if (fc->h < 1 || fc->h > 4 || fc->v < 1 || fc->v > 4 || fc->tq > 3)
            return 0;
        for (int o = 0; o < c; o++)
            if (h->comp[o].id == fc->id)
                return 0; /* libjpeg renames duplicate ids; not ours to guess */
    }
    h->have_frame = 1;
    return 1;
}

static int parse_dqt(jpeg_hdr *h, const uint8_t *s, size_t n)
{
    while (n > 0) {
        int prec = s[0] >> 4, t = s[0] & 15;
        size_t size = 1 + (prec ? 128u : 64u);
        if (prec > 1 || t > 3 || n < size)
            return 0; /* libjpeg accepts short tables padded with 1s; we do not */
        /* element 0 is the DC quantizer in zigzag and natural order alike */
        h->quant_dc[t] = prec ? (int)be16(s + 1) : s[1];
        s += size;
        n -= size;
    }
    return 1;
}

static int parse_dht(jpeg_hdr *h, const uint8_t *s, size_t n)
{
    while (n > 0) {
        if (n < 17)
            return 0;
        int tc = s[0] >> 4, th = s[0] & 15;
        if (tc > 1 || th > 3)
            return 0;
        huff_spec *sp = tc ? &h->ac[th] : &h->dc[th];
        size_t count = 0;
        sp->counts[0] = 0;
        for (int l = 1; l <= 16; l++) {
            sp->counts[l] = s[l];
            count += s[l];
        }
        if (count > 256 || n < 17 + count)
            return 0;
        memcpy(sp->vals, s + 17, count);
        sp->defined = 1;
        s += 17 + count;
        n -= 17 + count;
    }
    return 1;
}

static int parse_sos(jpeg_hdr *h, const uint8_t *s, size_t n)
{
    if (!h->have_frame || n < 1)
        return 0;
    int ns = s[0];
    if (ns < 1 || ns > 4 || n != 4 + 2 * (size_t)ns)
        return 0;
    /* Only the one-scan layout: every frame component in this scan. */
    if (ns != h->ncomp)
        return 0;
    for (int i = 0; i < ns; i++) {
        int id = s[1 + 2 * i], c = -1;
        for (int k = 0; k < h->ncomp; k++)
            if (h->comp[k].id == id)
                c = k;
        if (c < 0)
            return 0;
        for (int o = 0; o < i; o++)
            if (h->scan_comp[o] == c)
                return 0;
        h->scan_comp[i] = c;
        h->scan_td[i] = s[2 + 2 * i] >> 4;
        h->scan_ta[i] = s[2 + 2 * i] & 15;
        if (h->scan_td[i] > 3 || h->scan_ta[i] > 3)
            return 0;
    }
    const uint8_t *t = s + 1 + 2 * ns;
    if (t[0] != 0 || t[1] != 63 || t[2] != 0)
        return 0; /* not a sequential scan: libjpeg warns */
    h->scan_ncomp = ns;
    return 1;
}

/* APP0 (JFIF) and APP14 (Adobe): only the values libjpeg warns about. */
static int check_app(uint8_t m, const uint8_t *s, size_t n)
{
    if (m == 0xE0 && n >= 14 && memcmp(s, "JFIF", 5) == 0)
        return s[5] == 1 || s[5] == 2;
    if (m == 0xEE && n >= 12 && memcmp(s, "Adobe", 5) == 0)
        return s[11] <= 1;
    return 1;
}

/* Walks the markers from SOI to the first SOS. Returns the offset of the
 * entropy-coded data, or 0 when the file is not one this decoder takes. */
static size_t parse_header(jpeg_hdr *h, const uint8_t *d, size_t len)
{
    if (len < 4 || d[0] != 0xFF || d[1] != 0xD8)
        return 0;
    size_t i = 2;
    for (;;) {
        if (i >= len || d[i] != 0xFF)
            return 0; /* bytes between segments: libjpeg warns */
        while (i < len && d[i] == 0xFF)
            i++;
        if (i + 2 >= len)
            return 0;
        uint8_t m = d[i++];
        size_t seg = be16(d + i);
        if (seg < 2 || seg > len - i)
            return 0;
        const uint8_t *s = d + i + 2;
        size_t n = seg - 2;
        int ok;
        switch (m) {
        case 0xC0: /* baseline */
        case 0xC1: /* extended sequential, Huffman */
            ok = parse_sof(h, s, n);
            break;
        case 0xC4:
            ok = parse_dht(h, s, n);
            break;
        case 0xDB:
            ok = parse_dqt(h, s, n);
            break;
        case 0xDD:
            ok = n == 2;
            h->restart_interval = ok ? (int)be16(s) : 0;
            break;
        case 0xDA:
            return parse_sos(h, s, n) ? i + seg : 0;
        case 0xFE: /* COM */
            ok = 1;
            break;
        default:
            /* APPn; every other marker (SOI, EOI, RSTn, progressive or
             * arithmetic frames, DNL, ...) is not for this decoder. */
            ok = m >= 0xE0 && m <= 0xEF && check_app(m, s, n);
            break;
        }
        if (!ok)
            return 0;
        i += seg;
    }
}

/* ---- Huffman tables ------------------------------------------------------------ */

/* tab[0 .. 2^bits): for every bits-bit window that starts with a code of at
 * most bits bits, its length | its value << vshift; 0 for the others. The
 * canonical codes (size[], code[], ncodes of them, sizes ascending) fill it
 * code by code. The DC lookup and huff_pairs' table of single codes. */
static void huff_window(uint16_t *tab, int bits, const int *size, const int *code,
                        const uint8_t *vals, int ncodes, int vshift)
{
    memset(tab, 0, sizeof *tab * ((size_t)1 << bits));
    for (int p = 0; p < ncodes && size[p] <= bits; p++) {
        const int shift = bits - size[p];
        const uint16_t e = (uint16_t)(size[p] | vals[p] << vshift);
        for (int k = 0; k < 1 << shift; k++)
            tab[code[p] << shift | k] = e;
    }
}

/* A pair entry: all its codes' bits and advance, its first code's, and
 * whether the last code's advance (alast) is an end of block's. */
static uint32_t pair_entry(uint32_t btot, uint32_t atot, uint32_t b1, uint32_t a1, uint32_t alast)
{
    return btot | (alast == 64 ? PAIR_EOB : 0) | atot << 8 | b1 << 16 | a1 << 24;
}

/* The AC pair table: for every PAIR_BITS-bit window, the first code in it
 * (its bits with the value bits after it, b1, and its advance a1) and, while
 * the whole code of a next one fits in the window too and the last did not
 * end the block, up to PAIR_CODES of them together (btot, atot, PAIR_EOB
 * when the last is an end of block); else btot = b1, atot = a1. Entry: btot
 * | PAIR_EOB | atot << 8 | b1 << 16 | a1 << 24, 0 when the first code is
 * longer than the window. Several codes per lookup shorten the chain of
 * dependent table loads that bounds this decoder's speed (about 5 bits per
 * code in a photo at quality 90). ac_step takes them all while the block
 * goes on, and at its end when the last is its end of block and the block
 * did not end before it; else the first alone (a block whose last
 * coefficient ended it).
 *
 * Built from a table of single codes (length | value << 4 for every window
 * that starts with a code of at most PAIR_BITS bits), filled code by code:
 * a second code fits when its length is at most what the first left of the
 * window (the bits after the window read as zeros, and no shorter code can
 * be a prefix of a longer one). Decoding each window by searching the code
 * lengths, twice, took 2.5% of a 1920x1080 JPEG's decoding, per request.
 *
 * The windows that start a longer code (at most 16 bits, so the next
 * LONG_BITS bits finish it) are the last ones, from t->long_from on (canonical codes grow
 * with their length). When there are at most LONG_PREFIXES of them, each
 * gets PAIR_LONG and the index of its table of 1 << LONG_BITS single-code
 * entries in pair format, in their order after the pair table, so that window x's
 * table is at (1 << PAIR_BITS) + (x - long_from) << LONG_BITS: jpeg_dc_lanes.c
 * computes the index of a long code's entry instead of looking it up
 * first. The photo's 2,743 16-bit codes each cost a canonical decoding
 * before these tables; with more such windows (a table with few codes) the
 * long codes still do. */
static void huff_pairs(huff_dec *t, const int *size, const int *code, int ncodes)
{
    uint16_t one[1 << PAIR_BITS];
    huff_window(one, PAIR_BITS, size, code, t->vals, ncodes, 4);
    uint32_t from = 0;
    while (from < 1u << PAIR_BITS && one[from])
        from++;
    t->long_from = (1u << PAIR_BITS) - from <= LONG_PREFIXES ? from : 1u << PAIR_BITS;
    for (uint32_t x = 0; x < 1u << PAIR_BITS; x++) {
        const int e1 = one[x];
        if (!e1) {
            t->pair[x] = 0;
            if (x >= t->long_from) {
                /* a longer code, or none: its second table (0 where there
                 * is no code) */
                const uint32_t at = (1u << PAIR_BITS) + ((x - t->long_from) << LONG_BITS);
                uint32_t *sub = &t->pair[at];
                for (uint32_t y = 0; y < 1u << LONG_BITS; y++) {
                    int len, v = huff_decode16(t, x << LONG_BITS | y, 16, &len);
                    uint32_t b = v < 0 ? 0 : (uint32_t)(len + (v & 15)), a = v < 0 ? 0 : (uint32_t)ac_advance(v);
                    sub[y] = v < 0 ? 0 : pair_entry(b, a, b, a, a);
                }
                t->pair[x] = PAIR_LONG | at;
            }
            continue;
        }
        const int v1 = e1 >> 4;
        const int b1 = (e1 & 15) + (v1 & 15), a1 = ac_advance(v1);
        int btot = b1, atot = a1, a = a1;
        for (int n = 1; n < PAIR_CODES && a < 64 && btot < PAIR_BITS; n++) {
            const int e2 = one[(x << btot) & ((1u << PAIR_BITS) - 1)], len2 = e2 & 15;
            if (!e2 || len2 > PAIR_BITS - btot)
                break;
            btot += len2 + (e2 >> 4 & 15);
            atot += a = ac_advance(e2 >> 4);
        }
        t->pair[x] = pair_entry((uint32_t)btot, (uint32_t)atot, (uint32_t)b1, (uint32_t)a1, (uint32_t)a);
    }
}

/* Builds the decoding tables of sp for DC (is_dc) or AC coefficients. Refuses
 * the tables libjpeg's jpeg_make_d_derived_tbl refuses. */
static int huff_build(huff_dec *t, const huff_spec *sp, int is_dc)
{
    int size[257], code[257];
    int p = 0;
    for (int l = 1; l <= 16; l++)
        for (int i = 0; i < sp->counts[l]; i++)
            size[p++] = l;
    size[p] = 0;
    int ncodes = p;

    int c = 0, si = size[0];
    p = 0;
    while (size[p]) {
        while (size[p] == si)
            code[p++] = c++;
        if (c >= 1 << si)
            return 0; /* a code of all ones, or too many codes */
        c <<= 1;
        si++;
    }

    p = 0;
    for (int l = 1; l <= 16; l++) {
        if (sp->counts[l]) {
            t->valoffset[l] = p - code[p];
            p += sp->counts[l];
            t->maxcode[l] = code[p - 1];
        } else {
            t->maxcode[l] = -1;
        }
    }
    t->maxcode[17] = 0x7FFFFFFF; /* sentinel */
    memcpy(t->vals, sp->vals, 256);
    if (!is_dc) {
        huff_pairs(t, size, code, ncodes);
        return 1;
    }
    for (p = 0; p < ncodes; p++)
        if (sp->vals[p] > 15)
            return 0;
    uint16_t one[1 << LUT_BITS];
    huff_window(one, LUT_BITS, size, code, t->vals, ncodes, 5);
    for (int x = 0; x < 1 << LUT_BITS; x++) {
        const uint32_t len = one[x] & 31u, v = (uint32_t)one[x] >> 5;
        t->lut[x] = one[x] ? (len + v) | 1u << 8 | v << 16 | len << 24 : 0;
    }
    return 1;
}

/* ---- pixels ------------------------------------------------------------------ */

/* jpeg_idct_1x1 and libjpeg's range-limit table (see the file comment). */
static inline uint8_t dc_pixel(uint32_t dc_sum, int q)
{
    int v = (int)(int16_t)dc_sum * (int)(int16_t)q;
    /* x = ((v + 4) >> 3) & 1023 maps to x + 128 below 128, 255 below 512, 0
     * below 896 and x - 896 above; y = (x + 128) & 1023 is then y below 256,
     * 255 below 640 and 0 above: two selects instead of three branches,
     * which followed the image and were mispredicted. */
    int y = (((v + 4) >> 3) + 128) & 1023;
    int r = y < 640 ? 255 : 0;
    return (uint8_t)(y < 256 ? y : r);
}

/* ---- the scan ------------------------------------------------------------------ */

#if defined(__x86_64__) && defined(__GNUC__)
/* unstuff's copy of whole 64-byte pieces whose every FF is a stuffed one
 * (followed by 00 in the piece), without a branch on where they are: the
 * 00s dropped by a compress (AVX-512 VBMI2). Stops at a piece with a
 * marker, fill bytes or an FF as its last byte, left to the copy below.
 * The 1920x1080 photo's 433 KB scan has 4,529 stuffed bytes, and a
 * branch at each (the copy below) is mispredicted: its whole decoding took
 * 0.96x the time with this (A/B in one process, best of 60). The store may
 * run up to 63 bytes past the copy, within out as below. */
__attribute__((target("avx512f,avx512bw,avx512vbmi2"))) static void
copy_stuffed64(const uint8_t *d, size_t len, size_t *i, uint8_t *out, size_t *o)
{
    const __m512i all_ff = _mm512_set1_epi8((char)0xFF);
    while (*i + 64 <= len) {
        const __m512i v = _mm512_loadu_si512((const void *)(d + *i));
        const uint64_t ff = _mm512_cmpeq_epi8_mask(v, all_ff);
        const uint64_t after_ff = ff << 1;
        if ((ff >> 63) | (after_ff & ~_mm512_testn_epi8_mask(v, v)))
            return;
        _mm512_storeu_si512((void *)(out + *o), _mm512_maskz_compress_epi8(~after_ff, v));
        *o += 64 - (size_t)__builtin_popcountll(after_ff);
        *i += 64;
    }
}
#endif

/* Unstuffs the entropy-coded data starting at d[i] into out (FF 00 -> FF),
 * up to the first marker that is not RSTn. The byte offset in out of each
 * RSTn goes to rst_at[] and its number to rst_num[] (at most max_rst; more
 * makes it fail). Returns the number of bytes written, or (size_t)-1; *marker
 * gets the marker that ended the data (0 if the file ended first). */

static size_t unstuff(const uint8_t *d, size_t len, size_t i, uint8_t *out, size_t *rst_at,
                      uint8_t *rst_num, size_t max_rst, size_t *nrst, int *marker)
{
    size_t o = 0;
    *nrst = 0;
    *marker = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    const int wide = __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("avx512bw");
#endif
    while (i < len) {
        size_t run;
#if defined(__x86_64__) && defined(__GNUC__)
        if (wide)
            copy_stuffed64(d, len, &i, out, &o);
#endif
#ifdef __SSE2__
        /* 16 bytes at a time, copied whole and tested with one compare:
         * the stuffed FF bytes of a photo come every few hundred bytes, and
         * a memchr and a memcpy per run took 4% of a 1920x1080 request (perf
         * record). The store may run up to 15 bytes past the copy: out has
         * at least len - start bytes and o + 16 <= i + 16 - start <= len -
         * start. */
        const __m128i all_ff = _mm_set1_epi8((char)0xFF);
        unsigned hit = 0;
        while (i + 16 <= len) {
            const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(d + i));
            _mm_storeu_si128((__m128i *)(void *)(out + o), v);
            hit = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, all_ff));
            if (hit)
                break;
            i += 16;
            o += 16;
        }
        if (hit) {
            run = (size_t)__builtin_ctz(hit);
            o += run;
            i += run;
        } else
#endif
        {
            const uint8_t *ff = memchr(d + i, 0xFF, len - i);
            run = ff ? (size_t)(ff - d) - i : len - i;
            memcpy(out + o, d + i, run);
            o += run;
            i += run;
            if (!ff)
                break;
        }
        while (i < len && d[i] == 0xFF)
            i++; /* FF, and any fill bytes after it */
        if (i >= len)
            break;
        uint8_t m = d[i++];
        if (m == 0x00) {
            out[o++] = 0xFF;
        } else if (m >= 0xD0 && m <= 0xD7) {
            if (*nrst == max_rst)
                return (size_t)-1;
            rst_at[*nrst] = o;
            rst_num[*nrst] = (uint8_t)(m - 0xD0);
            (*nrst)++;
        } else {
            *marker = m;
            break;
        }
    }
    return o;
}

typedef struct {
    const huff_dec *dc, *ac;
    int comp;      /* index into the scan's DC predictors */
    int is_luma;   /* a block of frame component 0 */
    int dx, dy;    /* its block offset inside the MCU (luma only) */
} mcu_block;

/* The lanes' DC table of a block with DC table dc and AC table ac: for each
 * PAIR_BITS-bit window that starts a DC code of at most LUT_BITS bits, the
 * DC code with its value bits and, when they fit in the window with their
 * own value bits, the AC codes of the pair entry after them (all of it, or
 * its first code alone): btot | PAIR_EOB | atot << 8 (1 for the DC code) |
 * s << 16 | the DC code's length << 24, as a DC entry of lut. One lookup
 * then takes a block's DC code and its first AC codes (6,076 -> 5,463 rounds
 * of the lanes for the 1920x1080 photo, its decoding 0.535 -> 0.506 ms
 * with the tables cached). A pair entry's codes end with it
 * or with an end of block (atot < 64 + 49), so the step never takes only a
 * part of these. */
static void lanes_dc_table(uint32_t *m, const huff_dec *dc, const huff_dec *ac)
{
    for (uint32_t x = 0; x < 1u << PAIR_BITS; x++) {
        const uint32_t d = dc->lut[x >> (PAIR_BITS - LUT_BITS)];
        if (!d) {
            m[x] = 0;
            continue;
        }
        const uint32_t b0 = d & 63, room = b0 < PAIR_BITS ? PAIR_BITS - b0 : 0;
        uint32_t e = room ? ac->pair[(x << b0) & ((1u << PAIR_BITS) - 1)] : 0, bits = 0, adv = 0, eob = 0;
        if (e && !(e & PAIR_LONG)) {
            if ((e & 63) <= room) {
                bits = e & 63;
                adv = e >> 8 & 255;
                eob = e & PAIR_EOB;
            } else if ((e >> 16 & 31) <= room) {
                bits = e >> 16 & 31;
                adv = e >> 24;
                eob = adv == 64 ? PAIR_EOB : 0;
            }
        }
        if (!eob && 1 + adv >= 64)
            bits = adv = 0; /* codes that would fill the block: only the end of block may end it here */
        m[x] = (b0 + bits) | eob | (1 + adv) << 8 | (d & 0xFFFF0000u);
    }
}

int jpeg_dc_decode(const uint8_t *data, size_t len, uint8_t *out, int ow, int oh)
{
    return jpeg_dc_decode_cached(NULL, data, len, out, ow, oh, JPEG_DC_LANES_AUTO) != 0;
}

int jpeg_dc_decode_how(const uint8_t *data, size_t len, uint8_t *out, int ow, int oh, int lanes)
{
    return jpeg_dc_decode_cached(NULL, data, len, out, ow, oh, lanes);
}

/* Tables DC 0..3 and AC 0..3, as jpeg_dc_decode_cached numbers them: table
 * k holds what spec[k] builds when bit k of valid is set. The lanes' DC
 * tables (lanes_dc_table) follow in the same object, as the lanes find
 * every table by its offset from tabs. */
struct jpeg_dc_cache {
    huff_dec tabs[8];
    uint32_t merged[4][1 << PAIR_BITS];
    huff_spec spec[8];
    unsigned valid;
    uint8_t key[4]; /* 1 + DC table + 4 x AC table of merged[i]; 0: none */
};

jpeg_dc_cache *jpeg_dc_cache_new(void)
{
    jpeg_dc_cache *c = malloc(sizeof *c);
    if (c) {
        c->valid = 0;
        memset(c->key, 0, sizeof c->key);
    }
    return c;
}

void jpeg_dc_cache_free(jpeg_dc_cache *c)
{
    free(c);
}

static int same_spec(const huff_spec *a, const huff_spec *b)
{
    size_t n = 0;
    for (int l = 1; l <= 16; l++)
        n += a->counts[l];
    return !memcmp(a->counts, b->counts, sizeof a->counts) && !memcmp(a->vals, b->vals, n);
}

/* cache->tabs[k] built from sp (k < 4: a DC table), or found built. */
static int tables_for(jpeg_dc_cache *cache, int k, const huff_spec *sp)
{
    if ((cache->valid >> k & 1) && same_spec(&cache->spec[k], sp))
        return 1;
    cache->valid &= ~(1u << k);
    memset(cache->key, 0, sizeof cache->key); /* the lanes' DC tables built from it */
    if (!huff_build(&cache->tabs[k], sp, k < 4))
        return 0;
    cache->spec[k] = *sp;
    cache->valid |= 1u << k;
    return 1;
}

/* The luma pixels from the predictors the lanes found, in scan order: first
 * each predictor's pixel in place, then each MCU's luma blocks to their
 * places. Not inlined: inside jpeg_dc_decode_how GCC 12 -O3 no longer
 * vectorizes the first loop (-fopt-info-vec). */
__attribute__((noinline)) static void lanes_pixels(uint16_t *dcv, const mcu_block *blk, int nblk, int mcus_x, int mcus_y,
                         int mcu_w, int mcu_h, int q, uint8_t *out, int ow, int oh)
{
    int dx[MAX_BLOCKS_IN_MCU], dy[MAX_BLOCKS_IN_MCU], ny = 0;
    for (int k = 0; k < nblk; k++)
        if (blk[k].is_luma) {
            dx[ny] = blk[k].dx;
            dy[ny++] = blk[k].dy;
        }
    const size_t n = (size_t)mcus_x * (size_t)mcus_y * (size_t)ny;
    for (size_t i = 0; i < n; i++)
        dcv[i] = dc_pixel(dcv[i], q);
    const uint16_t *p = dcv;
    for (int my = 0; my < mcus_y; my++)
        for (int mx = 0; mx < mcus_x; mx++, p += ny)
            for (int k = 0; k < ny; k++) {
                int bx = mx * (mcu_w / 8) + dx[k], by = my * (mcu_h / 8) + dy[k];
                if (bx < ow && by < oh)
                    out[(size_t)by * (size_t)ow + (size_t)bx] = (uint8_t)p[k];
            }
}

int jpeg_dc_decode_cached(jpeg_dc_cache *cache, const uint8_t *data, size_t len, uint8_t *out, int ow,
                          int oh, int lanes)
{
    jpeg_hdr h;
    memset(&h, 0, sizeof h);
    for (int t = 0; t < 4; t++)
        h.quant_dc[t] = -1;
    size_t start = parse_header(&h, data, len);
    if (!start)
        return 0;
    if (ow != (h.width + 7) / 8 || oh != (h.height + 7) / 8)
        return 0;

    /* The MCU: luma at full resolution only, at most 10 blocks (libjpeg's
     * limit). A one-component scan is one block per MCU whatever its
     * sampling factors say. */
    int hmax = 1, vmax = 1;
    for (int c = 0; c < h.ncomp; c++) {
        hmax = h.comp[c].h > hmax ? h.comp[c].h : hmax;
        vmax = h.comp[c].v > vmax ? h.comp[c].v : vmax;
    }
    if (h.ncomp > 1 && (h.comp[0].h != hmax || h.comp[0].v != vmax))
        return 0; /* luma would need upsampling */
    int mcu_w = 8, mcu_h = 8;
    if (h.ncomp > 1) {
        mcu_w = 8 * hmax;
        mcu_h = 8 * vmax;
    }
    int mcus_x = (h.width + mcu_w - 1) / mcu_w, mcus_y = (h.height + mcu_h - 1) / mcu_h;

    /* DC 0..3, AC 0..3, built as used; without a cache, one for this call */
    jpeg_dc_cache *own = cache ? NULL : jpeg_dc_cache_new();
    if (!cache)
        cache = own;
    huff_dec *tabs = cache ? cache->tabs : NULL;
    uint8_t *stream = NULL;
    size_t *rst_at = NULL;
    uint8_t *rst_num = NULL;
    int ok = 0, built = 0;
    if (!tabs)
        goto out;

    mcu_block blk[MAX_BLOCKS_IN_MCU];
    int nblk = 0;
    for (int i = 0; i < h.scan_ncomp; i++) {
        int c = h.scan_comp[i], td = h.scan_td[i], ta = h.scan_ta[i];
        if (h.quant_dc[h.comp[c].tq] < 0 || !h.dc[td].defined || !h.ac[ta].defined)
            goto out; /* libjpeg would use its default tables, or fail */
        if (!(built & 1 << td)) {
            if (!tables_for(cache, td, &h.dc[td]))
                goto out;
            built |= 1 << td;
        }
        if (!(built & 16 << ta)) {
            if (!tables_for(cache, 4 + ta, &h.ac[ta]))
                goto out;
            built |= 16 << ta;
        }
        int bh = h.ncomp > 1 ? h.comp[c].h : 1, bv = h.ncomp > 1 ? h.comp[c].v : 1;
        for (int y = 0; y < bv; y++)
            for (int x = 0; x < bh; x++) {
                if (nblk == MAX_BLOCKS_IN_MCU)
                    goto out;
                blk[nblk++] = (mcu_block){&tabs[td], &tabs[4 + ta], i, c == 0, x, y};
            }
    }
    int q = h.quant_dc[h.comp[0].tq];

    long long mcus = (long long)mcus_x * mcus_y;
    long long ri = h.restart_interval;
    size_t max_rst = ri ? (size_t)((mcus - 1) / ri) : 0;
    stream = malloc(len - start + STREAM_PAD);
    rst_at = malloc((max_rst + 1) * sizeof *rst_at);
    rst_num = malloc(max_rst + 1);
    if (!stream || !rst_at || !rst_num)
        goto out;
    size_t nrst = 0;
    int marker = 0;
    size_t nbytes = unstuff(data, len, start, stream, rst_at, rst_num, max_rst, &nrst, &marker);
    if (nbytes == (size_t)-1 || marker != 0xD9 || nrst != max_rst)
        goto out; /* the scan must end in EOI, with every restart marker in place */
    memset(stream + nbytes, 0, STREAM_PAD);

    /* A large scan without restart markers: the lanes first (see
     * jpeg_dc_lanes.c); when they cannot tell, the sequential walk below
     * decides. */
    if (!ri && lanes != JPEG_DC_LANES_NEVER &&
        (nbytes >= JPEG_DC_LANES_MIN_BYTES || lanes == JPEG_DC_LANES_ALWAYS)) {
        lanes_mcu lm = {.nblk = nblk};
        int nl = 0;
        /* The lanes' DC table of each block (lanes_dc_table), one per pair
         * of tables, found in cache or built there. A scan has at most 4
         * components and so 4 pairs: when those not in cache do not fit in
         * its empty slots, all are emptied first, so that none this scan
         * uses is overwritten. */
        uint8_t key[MAX_BLOCKS_IN_MCU];
        int missing = 0, empty = 0;
        for (int k = 0; k < nblk; k++) {
            key[k] = (uint8_t)(1 + (blk[k].dc - tabs) + 4 * (blk[k].ac - tabs - 4));
            int seen = 0, in_cache = 0;
            for (int j = 0; j < k; j++)
                seen |= key[j] == key[k];
            for (int i = 0; i < 4; i++)
                in_cache |= cache->key[i] == key[k];
            missing += !seen && !in_cache;
        }
        for (int i = 0; i < 4; i++)
            empty += !cache->key[i];
        if (missing > empty)
            memset(cache->key, 0, sizeof cache->key);
        for (int k = 0; k < nblk; k++) {
            lm.dc[k] = blk[k].dc;
            lm.ac[k] = blk[k].ac;
            lm.is_luma[k] = blk[k].is_luma;
            nl += blk[k].is_luma;
            int slot = 0;
            while (slot < 3 && cache->key[slot] && cache->key[slot] != key[k])
                slot++; /* the used slots come first, and one is free: see above */
            if (cache->key[slot] != key[k]) {
                lanes_dc_table(cache->merged[slot], blk[k].dc, blk[k].ac);
                cache->key[slot] = key[k];
            }
            lm.dc_merged[k] = cache->merged[slot];
        }
        uint16_t *dcv = nl ? malloc((size_t)(mcus * nl) * sizeof *dcv) : NULL;
        int walked = dcv && jpeg_lanes_walk(stream, nbytes, tabs, &lm, mcus * nblk, mcus * nl, dcv,
                                                 lanes == JPEG_DC_LANES_ALWAYS);
        if (walked)
            lanes_pixels(dcv, blk, nblk, mcus_x, mcus_y, mcu_w, mcu_h, q, out, ow, oh);
        free(dcv);
        if (walked) {
            ok = 2;
            goto out;
        }
    }

    bit_reader b = {stream, 0, 0, 0};
    br_refill(&b);
    uint32_t pred[4] = {0, 0, 0, 0};
    size_t seg_end = nrst ? rst_at[0] : nbytes, next_rst = 0;
    long long togo = ri;
    for (int my = 0; my < mcus_y; my++) {
        for (int mx = 0; mx < mcus_x; mx++) {
            if (ri && togo == 0) {
                /* A restart: the segment must end here, with at most the
                 * padding bits of its last byte left (libjpeg counts whole
                 * bytes as extraneous data and warns). */
                size_t used = br_used(&b);
                if (used > seg_end * 8 || seg_end * 8 - used >= 8 ||
                    rst_num[next_rst] != (next_rst & 7))
                    goto out;
                br_seek(&b, seg_end);
                next_rst++;
                seg_end = next_rst < nrst ? rst_at[next_rst] : nbytes;
                memset(pred, 0, sizeof pred);
                togo = ri;
            }
            for (int k = 0; k < nblk; k++) {
                const mcu_block *bk = &blk[k];
                int32_t diff;
                if (!read_dc(&b, bk->dc, &diff))
                    goto out;
                pred[bk->comp] += (uint32_t)diff; /* libjpeg's int sum, wrapping */
                if (bk->is_luma) {
                    int bx = mx * (mcu_w / 8) + bk->dx, by = my * (mcu_h / 8) + bk->dy;
                    if (bx < ow && by < oh)
                        out[(size_t)by * (size_t)ow + (size_t)bx] = dc_pixel(pred[bk->comp], q);
                }
                if (!skip_ac(&b, bk->ac))
                    goto out;
            }
            if (b.pos > nbytes + 8)
                goto out; /* read well past the data: it ran out */
            togo--;
        }
    }
    size_t used = br_used(&b);
    if (used > seg_end * 8 || seg_end * 8 - used >= 8)
        goto out;
    ok = 1;
out:
    jpeg_dc_cache_free(own);
    free(stream);
    free(rst_at);
    free(rst_num);
    return ok;
}
