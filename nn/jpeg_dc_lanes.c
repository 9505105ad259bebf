/* jpeg_dc_lanes.c - the Huffman walk of a large JPEG scan in 64 lanes at once.
 *
 * Why. jpeg_dc.c walks past every AC code of a scan to reach the DC ones, one
 * table lookup after another: each lookup's index is the bit position the
 * last one left, so the walk is a chain of dependent loads (about 3.3 ns a
 * lookup on the Zen 5 VM, 1.41 ms for a 1920x1080 photo at quality 90, more
 * than the forward pass it feeds; bench/README.md, "Only the DC
 * coefficients"). Nothing in a scan without restart markers says where a
 * block starts, so the chain cannot be cut by the file's own structure.
 *
 * How. Huffman codes resynchronize: decoding from any bit, a walk soon
 * reaches a code boundary of the true walk, and from there on both are the
 * same. So the stream is cut into NLANES parts of equal bits and lane l walks
 * from part l's first bit as if a block of the MCU's first kind began there.
 * After a few blocks it stands where the true walk stands: the same bit, at
 * a block start, at the same block of the MCU; from then on it is exact. The
 * lanes are the 16 lanes of GROUPS AVX-512 vectors, stepped together: one
 * gather for each lane's next 32 bits, one for its table entry (the pair
 * table of jpeg_dc.c, up to four AC codes, its second tables for codes
 * longer than PAIR_BITS found by index arithmetic; at a block's start
 * lanes_dc_table's entry, the DC code and the AC codes after it), so GROUPS
 * x 16 lookups share the latency one lookup had. A DC entry has the pair
 * entries' form, so the two take one path without masks; a step's cost
 * followed its masked operations and branches, and then its count, not its
 * arithmetic (bench/README.md, "What a step of the lanes costs").
 * Codes the tables do not hold are decoded one lane at a time
 * (lane_step_slow); an invalid one sends a lane that has not joined yet on
 * from the next bit.
 *
 * Joining. Each lane notes block starts (bit, block of the MCU, blocks and
 * luma blocks walked, its luma DC sum): its first HEAD, every EVERY-th, and
 * TAIL more past its part's end, where it stops. Lane 0 starts where the true
 * walk does. If lane l-1 is on the true walk, the first of its notes past
 * part l's start that lane l noted too (same bit, same block of the MCU) is
 * on it, and lane l is on it from that note on. Where there is none (in a
 * 4:2:0 scan a lane can take the true walk's bits at the wrong one of the
 * four luma blocks, which share their tables, and find the right one only
 * some MCUs later), true_walk carries the true walk, one code at a time, to
 * lane l's next note on it. A part never joined, an invalid code after a lane
 * joined, or a walk that does not end within the scan's last byte after
 * exactly the blocks its MCUs need: jpeg_lanes_walk returns 0 and jpeg_dc.c
 * walks the scan itself, which decides; the lanes never accept or write
 * anything the sequential walk would not.
 *
 * DC values. Each lane keeps the sum of its luma DC differences and logs it
 * after every luma DC code (vpcompressd: one store per step, whatever lanes
 * had one). Once the lanes are joined, each log entry inside its lane's true
 * stretch becomes the predictor of one luma block: the true predictor where
 * the lane joined plus what the lane's sum has grown since.
 */
#include "jpeg_dc_internal.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define LANES_AVX512 __attribute__((target("avx512f,avx512bw")))
#define GROUPS 4
#define NLANES (16 * GROUPS)
/* Block starts noted at a lane's start (HEAD), past its part's end (TAIL)
 * and every EVERY-th in between. 16, 16 and 32 before: 8, 8 and 64 took the
 * 1920x1080 photo's decoding from 0.512 to 0.500 ms, and the lanes, forced
 * on, joined in as many of the test files and FER2013 images (32,238 of
 * 32,316 against 32,237). */
#define HEAD 8
#define TAIL 8
#define EVERY 64
/* A lane that ran this far past the stream's end is lost (lanes_run looks
 * every 64 steps, and reads stay inside STREAM_PAD: a gather reads 4 bytes
 * at pos / 8, a slow step 8). */
#define OVERRUN_BITS (8 * 1024)

/* The lanes' block starts, as noted: field[l * cap + i] is lane l's i-th
 * note. The bit, the block of the MCU, the luma and all blocks the lane
 * walked before it, the lane's luma DC sum before it. */
typedef struct {
    uint32_t *pos, *c, *jl, *jall, *sum;
    uint32_t cap;   /* notes per lane */
    uint32_t every; /* the EVERY-th notes stop before cap - TAIL */
} lane_notes;

/* One lane's state, as a slow step reads and writes it. next: the block
 * count (jall) of its next note before its part's end (next_note). */
typedef struct {
    uint32_t pos, k, c, jl, jall, sum, next, nnote, ntail, live;
} lane_state;

typedef struct {
    const uint8_t *stream;
    uint32_t nbits;
    const lanes_mcu *mcu;
    uint32_t start[NLANES], end[NLANES], tail_cap[NLANES];
    lane_notes notes;
    uint32_t *log;     /* (luma DC sum & 0xFFFF) | lane << 16 */
    size_t nlog, log_cap;
    uint32_t nnote[NLANES], ntail[NLANES]; /* after the walk */
    uint32_t restart_jall[NLANES]; /* jall after a lane's last invalid code */
    int lost; /* a lane ran off the stream, or the log would overflow */
} lanes_walk;

int jpeg_lanes_supported(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

/* The block count of a lane's next note, after one at block count jall,
 * its nnote-th: each of its first HEAD blocks, then every EVERY-th while
 * there is room (a lane's blocks are counted one by one, so it meets the
 * count exactly). */
static uint32_t next_note(uint32_t jall, uint32_t nnote, uint32_t every)
{
    if (nnote >= every)
        return UINT32_MAX;
    return jall + 1 < HEAD ? jall + 1 : (jall | (EVERY - 1)) + 1;
}

/* A block start at s's state: noted at the block counts next_note gives and
 * at each block start past its part's end; the TAIL-th note past the end
 * stops it. */
static void lane_block_start(lanes_walk *w, int l, lane_state *s)
{
    const lane_notes *n = &w->notes;
    const int tail = s->pos >= w->end[l];
    if (!(tail || s->jall == s->next))
        return;
    const size_t i = (size_t)l * n->cap + s->nnote++;
    n->pos[i] = s->pos;
    n->c[i] = s->c;
    n->jl[i] = s->jl;
    n->jall[i] = s->jall;
    n->sum[i] = s->sum;
    s->next = next_note(s->jall, s->nnote, n->every);
    if (tail && ++s->ntail == w->tail_cap[l])
        s->live = 0;
}

/* One step of lane l by canonical decoding, for a code the lookup tables
 * have no entry for (longer than their window, or invalid). */
static void lane_step_slow(lanes_walk *w, int l, lane_state *s)
{
    uint64_t bits;
    memcpy(&bits, w->stream + (s->pos >> 3), 8);
    bits = __builtin_bswap64(bits) << (s->pos & 7); /* at least 57 bits */
    const int c = (int)s->c;
    int len;
    if (s->k == 0) {
        const int v = huff_slow(w->mcu->dc[c], bits, &len);
        if (v < 0)
            goto invalid;
        const int32_t diff = huff_extend(v ? (int32_t)((bits << len) >> (64 - v)) : 0, v);
        s->pos += (uint32_t)(len + v);
        s->k = 1;
        if (w->mcu->is_luma[c]) {
            s->sum += (uint32_t)diff;
            w->log[w->nlog++] = (s->sum & 0xFFFF) | (uint32_t)l << 16;
        }
    } else {
        const int v = huff_slow(w->mcu->ac[c], bits, &len);
        if (v < 0)
            goto invalid;
        s->pos += (uint32_t)(len + (v & 15));
        s->k += (uint32_t)ac_advance(v);
        if (s->k >= 64) {
            s->k = 0;
            s->jall++;
            s->jl += (uint32_t)w->mcu->is_luma[c];
            s->c = s->c + 1 == (uint32_t)w->mcu->nblk ? 0 : s->c + 1;
            lane_block_start(w, l, s);
        }
    }
    if (s->pos > w->nbits + OVERRUN_BITS) {
        s->live = 0;
        w->lost = 1;
    }
    return;
invalid:
    /* Not a code: a lane that has not joined the true walk yet starts over
     * one bit further on. Its block count moves on too, so that the notes
     * after this point tell it; a lane that had joined is on a damaged
     * scan, and jpeg_lanes_walk gives up when it sees this came after the
     * lane's joining note. */
    if (s->k && w->mcu->is_luma[s->c])
        s->jl++; /* its DC is in the log: the log's entries follow jl */
    s->pos++;
    s->k = 0;
    s->c = 0;
    s->jall++;
    w->restart_jall[l] = s->jall;
    lane_block_start(w, l, s);
}

/* 16 lanes' state, one lane per 32-bit element. kc: the block of the MCU
 * (c) | the place in the block (k, 0 before its DC code) << 8, in one vector
 * because both change together and a step is short of registers: vpermd
 * reads only c, the low 4 bits. */
typedef struct {
    __m512i pos, kc, jl, jall, sum, next, end, logtag /* lane << 16 */;
    __m512i nnote, ntail, tail_cap, note_at /* lane * notes.cap * 4 */;
    __mmask16 live;
} lane_group;

/* The constants of a step. */
typedef struct {
    __m512i bswap, dcoff, acoff, long_from, long_off, luma, nblk;
    /* set once here: set1 in the step had GCC rebuild each one from a
     * general register every step */
    __m512i one, v7, v31, v32, v63, v255, v256, vffff, vff00, k64, k128, eob;
} step_consts;

LANES_AVX512 static void group_spill(const lane_group *g, lane_state *s)
{
    uint32_t a[9][16];
    _mm512_storeu_si512(a[0], g->pos);
    _mm512_storeu_si512(a[1], g->kc);
    _mm512_storeu_si512(a[2], g->jl);
    _mm512_storeu_si512(a[3], g->jall);
    _mm512_storeu_si512(a[4], g->sum);
    _mm512_storeu_si512(a[5], g->next);
    _mm512_storeu_si512(a[6], g->nnote);
    _mm512_storeu_si512(a[7], g->ntail);
    for (int i = 0; i < 16; i++)
        s[i] = (lane_state){a[0][i], a[1][i] >> 8, a[1][i] & 255, a[2][i], a[3][i], a[4][i],
                            a[5][i], a[6][i], a[7][i], (uint32_t)(g->live >> i & 1)};
}

LANES_AVX512 static void group_fill(lane_group *g, const lane_state *s)
{
    uint32_t a[8][16];
    __mmask16 live = 0;
    for (int i = 0; i < 16; i++) {
        a[0][i] = s[i].pos;
        a[1][i] = s[i].c | s[i].k << 8;
        a[2][i] = s[i].jl;
        a[3][i] = s[i].jall;
        a[4][i] = s[i].sum;
        a[5][i] = s[i].next;
        a[6][i] = s[i].nnote;
        a[7][i] = s[i].ntail;
        live |= (__mmask16)(s[i].live << i);
    }
    g->pos = _mm512_loadu_si512(a[0]);
    g->kc = _mm512_loadu_si512(a[1]);
    g->jl = _mm512_loadu_si512(a[2]);
    g->jall = _mm512_loadu_si512(a[3]);
    g->sum = _mm512_loadu_si512(a[4]);
    g->next = _mm512_loadu_si512(a[5]);
    g->nnote = _mm512_loadu_si512(a[6]);
    g->ntail = _mm512_loadu_si512(a[7]);
    g->live = live;
}

/* One step of 16 lanes: each live lane reads one DC code with its value, or
 * one or two AC codes (the pair table), exactly as jpeg_dc.c's read_dc and
 * ac_step; lanes whose code the tables do not hold step one at a time. In
 * three parts, each run for all groups before the next (lanes_run): the
 * gathers of the groups then stand side by side and overlap, where one
 * group's whole step after another's left them waiting in turn (1.16 ->
 * 0.62 ms for the 1920x1080 photo). */

/* The lanes' next 32 bits, at least 25 of them past pos. */
LANES_AVX512 static inline __attribute__((always_inline)) __m512i
group_bits(const lanes_walk *w, const lane_group *g, const step_consts *K)
{
    __m512i bits = _mm512_i32gather_epi32(_mm512_srli_epi32(g->pos, 3), (const void *)w->stream, 1);
    bits = _mm512_shuffle_epi8(bits, K->bswap);
    return _mm512_sllv_epi32(bits, _mm512_and_si512(g->pos, K->v7));
}

/* Their table entries: tabs + block c's table (offsets in 32-bit entries). */
LANES_AVX512 static inline __attribute__((always_inline)) __m512i
group_entry(const lane_group *g, const step_consts *K, const char *tabs, __m512i bits)
{
    const __mmask16 isdc = _mm512_cmplt_epu32_mask(g->kc, K->v256);
    const __m512i w = _mm512_srli_epi32(bits, 32 - PAIR_BITS);
    __m512i idx = _mm512_add_epi32(_mm512_permutexvar_epi32(g->kc, K->acoff), w);
    /* A window from long_from on starts a code longer than PAIR_BITS: its
     * entry is in the second tables, at long_off + the window's first 16
     * bits (huff_pairs), one lookup as for any other code. */
    idx = _mm512_mask_add_epi32(idx, _mm512_cmpge_epu32_mask(w, _mm512_permutexvar_epi32(g->kc, K->long_from)),
                                _mm512_permutexvar_epi32(g->kc, K->long_off), _mm512_srli_epi32(bits, 16));
    idx = _mm512_mask_add_epi32(idx, isdc, _mm512_permutexvar_epi32(g->kc, K->dcoff), w);
    return _mm512_i32gather_epi32(idx, (const void *)tabs, 4);
}

/* The step itself, from the lanes' bits and entries. */
LANES_AVX512 static inline __attribute__((always_inline)) void
group_step(lanes_walk *w, lane_group *g, const step_consts *K, int gi,
           __m512i bits, __m512i e, size_t *nlog)
{
    const __m512i zero = _mm512_setzero_si512(), one = K->one, k64 = K->k64;
    const __m512i pos = g->pos, kc = g->kc;
    const __mmask16 live = g->live;
    const __mmask16 isdc = _mm512_cmplt_epu32_mask(kc, K->v256);
    /* The walk, as ac_step and read_dc: a DC entry is a pair entry of one
     * code that moves 1 along the block, so both take the same path, and an
     * entry of 0 (a code the tables do not hold: slow, below) moves nothing.
     * Everything the next lookup waits on is then a few operations from
     * the gathered entry: all its bits, and k + atot while the block goes
     * on (atot at bits 8..15 of the entry as k is in kc). */
    g->pos = _mm512_mask_add_epi32(pos, live, pos, _mm512_and_si512(e, K->v63));
    const __m512i k2c = _mm512_add_epi32(kc, _mm512_and_si512(e, K->vff00));
    const __mmask16 cont = _mm512_mask_cmplt_epu32_mask(live, k2c, k64);
    __mmask16 end = live & (__mmask16)~cont;
    /* At a block's end (the MCU's next block) all the entry's codes count
     * when its last is the end of block and the block did not end before it
     * (k + the others' advance < 64); else only its first does, which may
     * or may not end the block (its last coefficient ended it): rare. */
    __m512i c1 = _mm512_add_epi32(_mm512_and_si512(kc, K->v255), one);
    c1 = _mm512_mask_mov_epi32(c1, _mm512_cmpeq_epi32_mask(c1, K->nblk), zero);
    __m512i knew = _mm512_mask_mov_epi32(c1, cont, k2c);
    const __mmask16 first = _mm512_mask_cmpge_epu32_mask(end, k2c, K->k128) |
                            (end & (__mmask16)~_mm512_test_epi32_mask(e, K->eob));
    if (first) {
        const __m512i k1c =
            _mm512_add_epi32(kc, _mm512_and_si512(_mm512_srli_epi32(e, 16), K->vff00));
        const __mmask16 goes_on = _mm512_mask_cmplt_epu32_mask(first, k1c, k64);
        g->pos = _mm512_mask_add_epi32(g->pos, first, pos,
                                       _mm512_and_si512(_mm512_srli_epi32(e, 16), K->v31));
        knew = _mm512_mask_mov_epi32(knew, goes_on, k1c);
        end &= (__mmask16)~goes_on;
    }
    g->kc = knew;

    /* DC: the code's length and its value's s bits (read_dc). A right
     * shift by 32 (s = 0) gives 0. */
    const __mmask16 slow = _mm512_mask_testn_epi32_mask(live, e, e);
    const __m512i luma = _mm512_permutexvar_epi32(kc, K->luma); /* 1 or 0 */
    const __mmask16 logged = _mm512_mask_test_epi32_mask(isdc & live & (__mmask16)~slow, luma, luma);
    const __m512i len = _mm512_srli_epi32(e, 24), s = _mm512_and_si512(_mm512_srli_epi32(e, 16), K->v31);
    const __m512i r = _mm512_srlv_epi32(_mm512_sllv_epi32(bits, len), _mm512_sub_epi32(K->v32, s));
    const __m512i one_s = _mm512_sllv_epi32(one, s);
    const __mmask16 neg = _mm512_cmplt_epi32_mask(r, _mm512_srli_epi32(one_s, 1));
    const __m512i diff = _mm512_mask_sub_epi32(r, neg, r, _mm512_sub_epi32(one_s, one));
    g->sum = _mm512_mask_add_epi32(g->sum, logged, g->sum, diff);
    const __m512i entry = _mm512_or_si512(_mm512_and_si512(g->sum, K->vffff), g->logtag);
    _mm512_storeu_si512(w->log + *nlog, _mm512_maskz_compress_epi32(logged, entry));
    *nlog += (size_t)__builtin_popcount(logged);
    g->jall = _mm512_mask_add_epi32(g->jall, end, g->jall, one);
    g->jl = _mm512_mask_add_epi32(g->jl, end, g->jl, luma);

    const __mmask16 tail = _mm512_mask_cmpge_epu32_mask(end, g->pos, g->end);
    const __mmask16 note = tail | _mm512_mask_cmpeq_epi32_mask(end, g->jall, g->next);
    if (note) {
        const lane_notes *n = &w->notes;
        const __m512i at = _mm512_add_epi32(g->note_at, _mm512_slli_epi32(g->nnote, 2));
        const __m512i c = _mm512_and_si512(g->kc, _mm512_set1_epi32(255));
        _mm512_mask_i32scatter_epi32(n->pos, note, at, g->pos, 1);
        _mm512_mask_i32scatter_epi32(n->c, note, at, c, 1);
        _mm512_mask_i32scatter_epi32(n->jl, note, at, g->jl, 1);
        _mm512_mask_i32scatter_epi32(n->jall, note, at, g->jall, 1);
        _mm512_mask_i32scatter_epi32(n->sum, note, at, g->sum, 1);
        g->nnote = _mm512_mask_add_epi32(g->nnote, note, g->nnote, one);
        g->ntail = _mm512_mask_add_epi32(g->ntail, tail, g->ntail, one);
        g->live &= (__mmask16)~_mm512_mask_cmpeq_epi32_mask(tail, g->ntail, g->tail_cap);
        /* next_note, for the lanes just noted */
        const __m512i j1 = _mm512_add_epi32(g->jall, one);
        __m512i nx = _mm512_add_epi32(_mm512_or_si512(g->jall, _mm512_set1_epi32(EVERY - 1)), one);
        nx = _mm512_mask_mov_epi32(nx, _mm512_cmplt_epu32_mask(j1, _mm512_set1_epi32(HEAD)), j1);
        nx = _mm512_mask_mov_epi32(nx, _mm512_cmpge_epu32_mask(g->nnote, _mm512_set1_epi32((int)n->every)),
                                   _mm512_set1_epi32(-1));
        g->next = _mm512_mask_mov_epi32(g->next, note, nx);
    }
    if (slow) {
        lane_state st[16];
        w->nlog = *nlog;
        group_spill(g, st);
        for (int i = 0; i < 16; i++)
            if (slow >> i & 1)
                lane_step_slow(w, gi * 16 + i, &st[i]);
        group_fill(g, st);
        *nlog = w->nlog;
    }
}

LANES_AVX512 static void lanes_run(lanes_walk *w, const huff_dec *tabs)
{
    const lanes_mcu *m = w->mcu;
    step_consts K;
    uint32_t dcoff[16] = {0}, acoff[16] = {0}, long_from[16] = {0}, long_off[16] = {0}, luma[16] = {0};
    for (int c = 0; c < m->nblk; c++) {
        /* in entries: the gathers scale by 4, one shift less before each */
        dcoff[c] = (uint32_t)(((const char *)m->dc_merged[c] - (const char *)tabs) / 4);
        acoff[c] = (uint32_t)(((const char *)m->ac[c]->pair - (const char *)tabs) / 4);
        luma[c] = (uint32_t)m->is_luma[c];
        long_from[c] = m->ac[c]->long_from;
        /* window x's second table at pair + (1 << PAIR_BITS) + (x - long_from) << LONG_BITS,
         * its entry y there: pair + the window's 16 bits + long_off (mod 2^32) */
        long_off[c] = acoff[c] + (1u << PAIR_BITS) - (long_from[c] << LONG_BITS);
    }
    K.dcoff = _mm512_loadu_si512(dcoff);
    K.acoff = _mm512_loadu_si512(acoff);
    K.long_from = _mm512_loadu_si512(long_from);
    K.long_off = _mm512_loadu_si512(long_off);
    K.luma = _mm512_loadu_si512(luma);
    K.nblk = _mm512_set1_epi32(m->nblk);
    K.bswap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
    K.one = _mm512_set1_epi32(1);
    K.v7 = _mm512_set1_epi32(7);
    K.v31 = _mm512_set1_epi32(31);
    K.v32 = _mm512_set1_epi32(32);
    K.v63 = _mm512_set1_epi32(63);
    K.v255 = _mm512_set1_epi32(255);
    K.v256 = _mm512_set1_epi32(256);
    K.vffff = _mm512_set1_epi32(0xFFFF);
    K.vff00 = _mm512_set1_epi32(0xFF00);
    K.k64 = _mm512_set1_epi32(64 << 8);
    K.k128 = _mm512_set1_epi32(128 << 8);
    K.eob = _mm512_set1_epi32(PAIR_EOB);

    lane_group g[GROUPS];
    for (int gi = 0; gi < GROUPS; gi++) {
        uint32_t lane[16];
        for (int i = 0; i < 16; i++)
            lane[i] = (uint32_t)(gi * 16 + i);
        const __m512i l = _mm512_loadu_si512(lane);
        g[gi].logtag = _mm512_slli_epi32(l, 16);
        g[gi].note_at = _mm512_mullo_epi32(l, _mm512_set1_epi32((int)(w->notes.cap * 4)));
        g[gi].pos = _mm512_loadu_si512(w->start + gi * 16);
        g[gi].end = _mm512_loadu_si512(w->end + gi * 16);
        g[gi].tail_cap = _mm512_loadu_si512(w->tail_cap + gi * 16);
        g[gi].kc = g[gi].jl = g[gi].jall = g[gi].sum = g[gi].ntail = _mm512_setzero_si512();
        g[gi].nnote = g[gi].next = _mm512_set1_epi32(1); /* the start, noted by jpeg_lanes_walk */
        g[gi].live = 0xFFFF;
    }
    const char *t = (const char *)tabs;
    const __m512i far = _mm512_set1_epi32((int)(w->nbits + OVERRUN_BITS));
    size_t nlog = w->nlog; /* w->nlog only around slow steps: a register, not memory, between */
    for (unsigned it = 1;; it++) {
        __mmask16 any = 0;
        for (int gi = 0; gi < GROUPS; gi++)
            any |= g[gi].live;
        if (!any || w->lost)
            break;
        /* each step logs at most 16 entries per group, plus its slow steps */
        if (nlog + 2 * NLANES > w->log_cap) {
            w->lost = 1;
            break;
        }
        /* A lane lost in the padding after the stream: looked for every 64
         * steps, which move a lane at most 64 x 31 bits, so reads stay in
         * STREAM_PAD. */
        if (it % 64 == 0)
            for (int gi = 0; gi < GROUPS; gi++)
                if (_mm512_mask_cmpgt_epu32_mask(g[gi].live, g[gi].pos, far))
                    w->lost = 1;
        __m512i bits[GROUPS], e[GROUPS];
#pragma GCC unroll 8
        for (int gi = 0; gi < GROUPS; gi++)
            bits[gi] = group_bits(w, &g[gi], &K);
#pragma GCC unroll 8
        for (int gi = 0; gi < GROUPS; gi++)
            e[gi] = group_entry(&g[gi], &K, t, bits[gi]);
#pragma GCC unroll 8
        for (int gi = 0; gi < GROUPS; gi++)
            group_step(w, &g[gi], &K, gi, bits[gi], e[gi], &nlog);
    }
    w->nlog = nlog;
    for (int gi = 0; gi < GROUPS; gi++) {
        _mm512_storeu_si512(w->nnote + gi * 16, g[gi].nnote);
        _mm512_storeu_si512(w->ntail + gi * 16, g[gi].ntail);
    }
}

/* The true walk at a block start: its bit, block of the MCU, the luma and
 * all blocks before it and the luma predictor. */
typedef struct {
    uint32_t pos, c, pred;
    long long nl, na;
} walk_state;

enum { WALK_INVALID = -1, WALK_PASSED = -2, WALK_ENDED = -3 };

/* The true walk from t, with jpeg_dc.c's sequential steps, writing
 * the luma predictors it passes to dcv, until a block start that lane l
 * noted (same bit, same block of the MCU): returns that note's index, with
 * t at it. Or WALK_ENDED at the scan's last block's end (nblocks walked),
 * WALK_PASSED past lane l's last note, WALK_INVALID at an invalid code.
 *
 * It walks where a lane took the true walk's bits at another block of the
 * MCU (the four luma blocks of a 4:2:0 MCU share their tables, so nothing
 * in the bits tells them apart until a chroma block): that lane finds the
 * right block a few MCUs later, and this walk joins it at its next note. */
static int true_walk(const lanes_walk *w, int l, walk_state *t, uint16_t *dcv, long long nblocks,
                     long long nluma)
{
    const lanes_mcu *m = w->mcu;
    const lane_notes *n = &w->notes;
    const uint32_t *np = n->pos + (size_t)l * n->cap, *nc = n->c + (size_t)l * n->cap;
    const uint32_t nn = w->nnote[l];
    /* jpeg_dc.c's reader and steps, from bit t->pos: a seek leaves at
     * least 56 - 7 bits, more than read_dc needs on entry */
    bit_reader b;
    b.buf = w->stream;
    br_seek(&b, t->pos >> 3);
    br_drop(&b, (int)(t->pos & 7));
    uint32_t i = 0, pos = t->pos, c = t->c;
    int ret;
    for (;;) {
        pos = (uint32_t)br_used(&b);
        if (t->na == nblocks) {
            ret = WALK_ENDED;
            break;
        }
        while (i < nn && np[i] < pos)
            i++;
        ret = WALK_PASSED;
        if (i == nn)
            break;
        for (uint32_t j = i; j < nn && np[j] == pos; j++)
            if (nc[j] == c)
                ret = (int)j;
        if (ret >= 0)
            break;
        ret = WALK_INVALID;
        int32_t diff;
        if (pos > w->nbits + OVERRUN_BITS || !read_dc(&b, m->dc[c], &diff))
            break;
        if (m->is_luma[c]) {
            if (t->nl >= nluma)
                break;
            t->pred += (uint32_t)diff;
            dcv[t->nl++] = (uint16_t)t->pred;
        }
        if (!skip_ac(&b, m->ac[c]))
            break;
        t->na++;
        c = c + 1 == (uint32_t)m->nblk ? 0 : c + 1;
    }
    t->pos = pos;
    t->c = c;
    return ret;
}

int jpeg_lanes_walk(const uint8_t *stream, size_t nbytes, const huff_dec *tabs,
                    const lanes_mcu *mcu, long long nblocks, long long nluma, uint16_t *dcv,
                    int tiny)
{
    if (!jpeg_lanes_supported() || nbytes >= (1u << 28) || nluma <= 0 || mcu->nblk > 16)
        return 0;
    lanes_walk w;
    memset(&w, 0, sizeof w);
    w.stream = stream;
    w.nbits = (uint32_t)(nbytes * 8);
    w.mcu = mcu;
    const uint32_t part = w.nbits / NLANES;
    if (part < (tiny ? 32u : 8u * 64))
        return 0; /* parts too short to join in (tiny: tests, which want
                     the joins' every path on small files) */
    for (int l = 0; l < NLANES; l++) {
        w.start[l] = (uint32_t)l * part;
        w.end[l] = l + 1 < NLANES ? (uint32_t)(l + 1) * part : w.nbits - 7;
        w.tail_cap[l] = l + 1 < NLANES ? TAIL : 1;
    }
    /* Notes: HEAD, TAIL and one every EVERY blocks of twice a lane's share
     * (a lane's blocks vary with the detail in its part). */
    lane_notes *n = &w.notes;
    n->cap = (uint32_t)(HEAD + TAIL + 2 * (nblocks / NLANES) / EVERY + 16);
    n->every = n->cap - TAIL - 1;
    uint32_t *note_mem = malloc((size_t)5 * NLANES * n->cap * sizeof *note_mem);
    w.log_cap = (size_t)nluma + (size_t)nluma / 4 + 64 * NLANES;
    w.log = malloc((w.log_cap + 16) * sizeof *w.log);
    int ok = 0;
    if (!note_mem || !w.log)
        goto out;
    const size_t field = (size_t)NLANES * n->cap;
    n->pos = note_mem;
    n->c = note_mem + field;
    n->jl = note_mem + 2 * field;
    n->jall = note_mem + 3 * field;
    n->sum = note_mem + 4 * field;
    for (int l = 0; l < NLANES; l++) { /* the start: block 0 of the MCU, nothing walked */
        const size_t i = (size_t)l * n->cap;
        n->pos[i] = w.start[l];
        n->c[i] = n->jl[i] = n->jall[i] = n->sum[i] = 0;
    }

    lanes_run(&w, tabs);
    if (w.lost)
        goto out;

    /* Join the lanes. Lane 0 is on the true walk from its start. Lane l
     * takes it over at the first of lane l-1's notes past part l's start
     * (and past where l-1 joined) that lane l noted too; when there is
     * none, true_walk walks from the first of them to a note of lane l, or
     * past them all (lane l is then not used; a short part may end before
     * its lane finds the right block of the MCU), or to the scan's end. For
     * each lane used: its joining note (at), its luma blocks up to where the
     * true walk left it (hi_jl); and, true at its joining note, the luma and
     * all blocks before it and the luma predictor (nl, na, pred). */
    int at[NLANES] = {0}, used[NLANES] = {0}, ended = 0;
    uint32_t hi_jl[NLANES] = {0}, pred[NLANES];
    long long nl[NLANES], na[NLANES];
#define NOTE(f, l, i) (n->f[(size_t)(l) * n->cap + (size_t)(i)])
    at[0] = 0;
    used[0] = 1;
    nl[0] = na[0] = 0;
    pred[0] = 0;
    walk_state t = {0, 0, 0, 0, 0};
    for (int l = 1; l < NLANES && !ended; l++) {
        int tn = -1;
        if (used[l - 1]) {
            const int a = at[l - 1];
            int tp = -1, first = -1;
            for (int i = a, j = 0; i < (int)w.nnote[l - 1] && tp < 0; i++) {
                const uint32_t pp = NOTE(pos, l - 1, i);
                if (pp < w.start[l])
                    continue;
                if (first < 0)
                    first = i;
                while (j < (int)w.nnote[l] && NOTE(pos, l, j) < pp)
                    j++;
                for (int jj = j; jj < (int)w.nnote[l] && NOTE(pos, l, jj) == pp; jj++)
                    if (NOTE(c, l, jj) == NOTE(c, l - 1, i)) {
                        tp = i;
                        tn = jj;
                        break;
                    }
            }
            if (first < 0)
                goto out;
            if (tp < 0)
                tp = first;
            hi_jl[l - 1] = NOTE(jl, l - 1, tp);
            t.pos = NOTE(pos, l - 1, tp);
            t.c = NOTE(c, l - 1, tp);
            t.nl = nl[l - 1] + (NOTE(jl, l - 1, tp) - NOTE(jl, l - 1, a));
            t.na = na[l - 1] + (NOTE(jall, l - 1, tp) - NOTE(jall, l - 1, a));
            t.pred = pred[l - 1] + (NOTE(sum, l - 1, tp) - NOTE(sum, l - 1, a));
        }
        if (tn < 0) {
            tn = true_walk(&w, l, &t, dcv, nblocks, nluma);
            if (tn == WALK_INVALID)
                goto out;
            if (tn == WALK_ENDED)
                ended = 1;
            if (tn < 0)
                continue; /* lane l not used; the walk goes on into l + 1 */
        }
        at[l] = tn;
        used[l] = 1;
        nl[l] = t.nl;
        na[l] = t.na;
        pred[l] = t.pred;
    }
    for (int l = 0; l < NLANES; l++)
        if (used[l] && NOTE(jall, l, at[l]) < w.restart_jall[l])
            goto out; /* an invalid code after the lane joined: a damaged scan */
    const int L = NLANES - 1;
    if (!ended && !used[L] && true_walk(&w, L, &t, dcv, nblocks, nluma) != WALK_ENDED)
        goto out; /* the last lane was passed: the walk must reach the end */
    if (used[L]) {
        /* The last lane's last note is the first block start within the
         * last byte: the true walk must end there, after exactly nblocks
         * blocks. */
        const int fi = (int)w.nnote[L] - 1, a = at[L];
        if (w.ntail[L] != 1 || fi < a)
            goto out;
        t.pos = NOTE(pos, L, fi);
        t.na = na[L] + (NOTE(jall, L, fi) - NOTE(jall, L, a));
        t.nl = nl[L] + (NOTE(jl, L, fi) - NOTE(jl, L, a));
        hi_jl[L] = NOTE(jl, L, fi);
    }
    /* Where the scan's blocks end, the scan must: within its last byte. */
    if (t.na != nblocks || t.nl != nluma || t.pos > w.nbits || w.nbits - t.pos >= 8)
        goto out;

    /* The predictors: lane l's j-th luma DC is the true walk's luma block
     * nl[l] + j - (jl at its joining note) when it lies between its joining
     * note and the next lane's. */
    struct {
        uint32_t seen, j0, hi, add; /* entries seen; used from j0 to hi; pred - sum at j0 */
        long long to;               /* dcv index of entry j0 */
    } lane[NLANES];
    for (int l = 0; l < NLANES; l++) {
        lane[l].seen = 0;
        lane[l].j0 = used[l] ? NOTE(jl, l, at[l]) : 1;
        lane[l].hi = used[l] ? hi_jl[l] : 0;
        lane[l].add = used[l] ? pred[l] - NOTE(sum, l, at[l]) : 0;
        lane[l].to = used[l] ? nl[l] : 0;
    }
    for (size_t i = 0; i < w.nlog; i++) {
        const uint32_t e = w.log[i], j = lane[e >> 16].seen++;
        if (j >= lane[e >> 16].j0 && j < lane[e >> 16].hi)
            dcv[lane[e >> 16].to + (j - lane[e >> 16].j0)] = (uint16_t)(lane[e >> 16].add + e);
    }
#undef NOTE
    ok = 1;
out:
    free(note_mem);
    free(w.log);
    return ok;
}

#else /* not x86-64 with GNU C */

int jpeg_lanes_supported(void)
{
    return 0;
}

int jpeg_lanes_walk(const uint8_t *stream, size_t nbytes, const huff_dec *tabs,
                    const lanes_mcu *mcu, long long nblocks, long long nluma, uint16_t *dcv,
                    int tiny)
{
    (void)stream, (void)nbytes, (void)tabs, (void)mcu, (void)nblocks, (void)nluma, (void)dcv;
    (void)tiny;
    return 0;
}

#endif
