/* image.c - PNG (libpng) and JPEG (TurboJPEG 2.x) decoding to 8-bit grayscale,
 * plus an exact area-averaging resize.
 *
 * Design notes
 *  - Thread safety: no global mutable state. Every call owns its own png_struct
 *    or tjhandle; error messages go to the caller's buffer.
 *  - Limits are checked from the header before any pixel buffer exists: for PNG
 *    we read the IHDR ourselves (so the message can name the size) and also
 *    set png_set_user_limits; for JPEG tjDecompressHeader3 gives the size.
 *  - Bombs (tests/test_bombs.c): PNG metadata chunks we never use (text, ICC,
 *    Exif) are skipped without being inflated; a JPEG with more than
 *    JPEG_MAX_SCANS scans is refused before decoding (image_too_large).
 *  - Grayscale: both formats use the BT.601 luma that JPEG's YCbCr uses
 *    (Y = 0.299 R + 0.587 G + 0.114 B), so a colour PNG and the same picture as
 *    a JPEG give (nearly) the same gray. Sample values are used as stored: no
 *    gamma or ICC correction.
 *  - Alpha (alpha channel or tRNS) is DROPPED, not composited: the stored
 *    colour of every pixel is used whatever its opacity. This keeps values
 *    exact and predictable (a face cut out on a transparent background keeps
 *    whatever colour the encoder left under the transparent pixels).
 *  - PNG is decoded strictly: CRC errors in any chunk are fatal and the file is
 *    read up to IEND, so a bad IDAT CRC (PngSuite xcsn0g01.png) is caught.
 *  - JPEG warnings are fatal (TJFLAG_STOPONWARNING): a truncated JPEG would
 *    otherwise decode "successfully" with a gray-filled bottom. This is strict:
 *    a file with only stray bytes before a marker is rejected too.
 */
#include "image.h"
#include "jpeg_dc.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

/* Largest ancillary chunk libpng may allocate (iCCP, zTXt, ... after
 * decompression): guards against decompression bombs in metadata. */
#define PNG_CHUNK_MALLOC_MAX (8u << 20)
/* Most ancillary chunks (sPLT, tEXt, unknown) kept in memory. */
#define PNG_CHUNK_CACHE_MAX 1000u
/* Most scans (SOS markers) a JPEG may have. Baseline files have one per
 * component; libjpeg's own progressive scripts use 6 (gray) to 10 (colour).
 * Each scan is a pass over every block of its component, and a scan can be a
 * few bytes (end-of-band runs), so thousands of scans in a small file are a
 * CPU bomb; TurboJPEG 2.1's TJFLAG_LIMITSCANS stops only at 500. */
#define JPEG_MAX_SCANS 64

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* ---- small helpers -------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void img_limits_default(img_limits *lim)
{
    lim->max_width = 4096;
    lim->max_height = 4096;
    lim->max_pixels = 4096LL * 4096LL;
}

const char *img_strerror_code(int err)
{
    switch (err) {
    case IMG_OK: return "ok";
    case IMG_E_EMPTY: return "empty_body";
    case IMG_E_FORMAT: return "unsupported_format";
    case IMG_E_CORRUPT_PNG: return "corrupt_png";
    case IMG_E_CORRUPT_JPEG: return "corrupt_jpeg";
    case IMG_E_TRUNCATED_PNG: return "truncated_png";
    case IMG_E_TRUNCATED_JPEG: return "truncated_jpeg";
    case IMG_E_TOO_LARGE: return "image_too_large";
    case IMG_E_NOMEM: return "out_of_memory";
    case IMG_E_IO: return "io_error";
    default: return "unknown_error";
    }
}

/* Size check shared by both formats; kind is "PNG" or "JPEG". */
static int check_limits(const char *kind, long long w, long long h, const img_limits *lim,
                        char *err, size_t errlen)
{
    img_limits def;
    if (!lim) {
        img_limits_default(&def);
        lim = &def;
    }
    if (w > lim->max_width || h > lim->max_height) {
        set_err(err, errlen, "%s is %lldx%lld, above the %dx%d limit", kind, w, h,
                lim->max_width, lim->max_height);
        return IMG_E_TOO_LARGE;
    }
    if (w * h > lim->max_pixels) {
        set_err(err, errlen, "%s is %lldx%lld = %lld pixels, above the limit of %lld pixels",
                kind, w, h, w * h, lim->max_pixels);
        return IMG_E_TOO_LARGE;
    }
    return IMG_OK;
}

/* BT.601 luma in 16-bit fixed point; the weights sum to 65536 so gray input
 * (r == g == b) maps to itself exactly. */
static inline uint8_t luma(unsigned r, unsigned g, unsigned b)
{
    return (uint8_t)((19595u * r + 38470u * g + 7471u * b + 32768u) >> 16);
}

/* Converts n pixels of ch interleaved channels (1..4; 2 and 4 carry alpha,
 * which is dropped) to gray, in place: output pixel i is written at i <= i*ch,
 * after its input has been read. */
static void to_gray_inplace(uint8_t *p, size_t n, int ch)
{
    if (ch == 1)
        return;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = p + i * (size_t)ch;
        p[i] = ch >= 3 ? luma(s[0], s[1], s[2]) : s[0];
    }
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- format sniffing -------------------------------------------------------- */

enum { FMT_PNG = 1, FMT_JPEG = 2 };

/* Names formats we do not decode, so the message tells the client what it sent. */
static const char *other_format_name(const uint8_t *d, size_t len)
{
    if (len >= 4 && memcmp(d, "GIF8", 4) == 0) return "GIF";
    if (len >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) return "WebP";
    if (len >= 2 && memcmp(d, "BM", 2) == 0) return "BMP";
    if (len >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0)) return "TIFF";
    if (len >= 12 && memcmp(d + 4, "ftyp", 4) == 0) return "HEIF/AVIF/MP4";
    if (len >= 1 && (d[0] == '<' || d[0] == '{')) return "text (HTML/XML/JSON)";
    return NULL;
}

/* Returns FMT_PNG, FMT_JPEG or a negative IMG_E* code with a message. */
static int sniff(const uint8_t *d, size_t len, char *err, size_t errlen)
{
    if (len >= 8 && memcmp(d, png_signature, 8) == 0)
        return FMT_PNG;
    if (len >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF)
        return FMT_JPEG;
    if (len < 8 && memcmp(d, png_signature, len) == 0) {
        set_err(err, errlen, "PNG data is truncated: only %zu bytes, not even a full signature", len);
        return IMG_E_TRUNCATED_PNG;
    }
    if (len < 3 && d[0] == 0xFF && (len < 2 || d[1] == 0xD8)) {
        set_err(err, errlen, "JPEG data is truncated: only %zu bytes", len);
        return IMG_E_TRUNCATED_JPEG;
    }
    /* Every PNG has its IHDR chunk type at offset 12: a damaged signature
     * ("PNG" at offset 1, or an IHDR near the start, shifted when a text-mode
     * transfer added or removed CR bytes) is a broken PNG, not another format. */
    if ((len >= 4 && memcmp(d + 1, "PNG", 3) == 0) ||
        memmem(d, len < 32 ? len : 32, "IHDR", 4) != NULL) {
        /* the data may be shorter than 8 bytes: print only what is there */
        char hex[3 * 8] = "";
        size_t n = len < 8 ? len : 8;
        for (size_t i = 0; i < n; i++)
            snprintf(hex + 3 * i, sizeof hex - 3 * i, i + 1 < n ? "%02X " : "%02X", d[i]);
        set_err(err, errlen, "corrupt PNG: damaged signature (first %zu bytes are "
                "%s; was the file transferred in text or 7-bit mode?)", n, hex);
        return IMG_E_CORRUPT_PNG;
    }
    const char *other = other_format_name(d, len);
    if (other)
        set_err(err, errlen, "unsupported image format: looks like %s; send PNG or JPEG", other);
    else
        set_err(err, errlen, "unsupported image format (first bytes %02X %02X %02X %02X); "
                "send PNG or JPEG", d[0], len > 1 ? d[1] : 0, len > 2 ? d[2] : 0,
                len > 3 ? d[3] : 0);
    return IMG_E_FORMAT;
}

/* ---- PNG ---------------------------------------------------------------------- */

/* Everything the setjmp-protected code touches lives here, behind a pointer,
 * so nothing is lost across longjmp (locals of the setjmp caller would be
 * indeterminate unless volatile). */
typedef struct {
    const uint8_t *data;
    size_t len, pos;
    int truncated;       /* the read callback ran out of data */
    char msg[256];       /* last libpng error message */
    png_structp png;
    png_infop info;
    uint8_t *buf;        /* pixels being decoded (freed on error) */
    png_bytep *rows;     /* row pointers into buf (interlaced images) */
    uint8_t *row;        /* one decoded row (non-interlaced images) */
    int w, h;
} png_ctx;

static void png_error_cb(png_structp png, png_const_charp msg)
{
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1); /* never return into libpng (that would abort) */
}

/* Warnings (including benign errors such as a bad iCCP profile) are ignored:
 * the image data itself is fine. */
static void png_warning_cb(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_cb(png_structp png, png_bytep out, png_size_t n)
{
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos) {
        c->truncated = 1;
        png_error(png, "Read Error");
    }
    memcpy(out, c->data + c->pos, n);
    c->pos += n;
}

/* Pre-check of the IHDR size so the error names it and nothing is allocated
 * for absurd sizes; malformed headers are left to libpng. */
static int png_precheck_size(const uint8_t *d, size_t len, const img_limits *lim,
                             char *err, size_t errlen)
{
    if (len < 24 || memcmp(d + 12, "IHDR", 4) != 0)
        return IMG_OK;
    uint32_t w = be32(d + 16), h = be32(d + 20);
    if (w == 0 || h == 0 || w > 0x7fffffffu || h > 0x7fffffffu)
        return IMG_OK; /* invalid: libpng reports it as corrupt */
    return check_limits("PNG", w, h, lim, err, errlen);
}

static int png_fail(png_ctx *c, char *err, size_t errlen)
{
    if (c->truncated) {
        set_err(err, errlen, "PNG data is truncated: the file ends after %zu bytes, "
                "before the end of the PNG stream", c->len);
        return IMG_E_TRUNCATED_PNG;
    }
    if (strstr(c->msg, "user limit")) {
        set_err(err, errlen, "PNG is too large: %s", c->msg);
        return IMG_E_TOO_LARGE;
    }
    if (strstr(c->msg, "Out of memory") || strstr(c->msg, "Insufficient memory")) {
        set_err(err, errlen, "out of memory while decoding PNG: %s", c->msg);
        return IMG_E_NOMEM;
    }
    set_err(err, errlen, "corrupt PNG: %s", c->msg);
    return IMG_E_CORRUPT_PNG;
}

/* Sets up the transformations to 8-bit gray/gray+alpha/RGB/RGBA samples and
 * returns the number of channels per decoded pixel. */
static int png_setup_transforms(png_structp png, png_infop info)
{
    int ct = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);
    if (ct == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png); /* note: also turns tRNS into alpha */
    if (ct == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) {
#ifdef PNG_READ_SCALE_16_TO_8_SUPPORTED
        png_set_scale_16(png); /* rounds; strip_16 would truncate */
#else
        png_set_strip_16(png);
#endif
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    return png_get_channels(png, info);
}

/* Non-interlaced: one row at a time through a small buffer, so memory stays
 * at one byte per pixel whatever the colour type. Called under c's setjmp. */
static int png_read_rows_gray(png_ctx *c, int ch, size_t rowbytes, char *err, size_t errlen)
{
    c->buf = malloc((size_t)c->w * (size_t)c->h);
    c->row = malloc(rowbytes);
    if (!c->buf || !c->row) {
        set_err(err, errlen, "out of memory decoding a %dx%d PNG", c->w, c->h);
        return IMG_E_NOMEM;
    }
    for (int y = 0; y < c->h; y++) {
        png_read_row(c->png, c->row, NULL);
        to_gray_inplace(c->row, (size_t)c->w, ch);
        memcpy(c->buf + (size_t)y * (size_t)c->w, c->row, (size_t)c->w);
    }
    /* Reading to IEND checks the CRC of the last IDAT and the trailing chunks. */
    png_read_end(c->png, NULL);
    return IMG_OK;
}

/* Interlaced: Adam7 passes need the whole image in memory at full depth. */
static int png_read_all_gray(png_ctx *c, int ch, size_t rowbytes, char *err, size_t errlen)
{
    c->buf = malloc(rowbytes * (size_t)c->h);
    c->rows = malloc(sizeof *c->rows * (size_t)c->h);
    if (!c->buf || !c->rows) {
        set_err(err, errlen, "out of memory decoding a %dx%d PNG", c->w, c->h);
        return IMG_E_NOMEM;
    }
    for (int y = 0; y < c->h; y++)
        c->rows[y] = c->buf + (size_t)y * rowbytes;
    png_read_image(c->png, c->rows);
    png_read_end(c->png, NULL);
    to_gray_inplace(c->buf, (size_t)c->w * (size_t)c->h, ch);
    return IMG_OK;
}

/* The setjmp-protected part: all state in c, nothing else modified after
 * setjmp. Returns IMG_OK with c->buf holding w*h gray bytes, or an IMG_E* code.
 * lim is not NULL here. */
static int png_decode_ctx(png_ctx *c, const img_limits *lim, char *err, size_t errlen)
{
    if (setjmp(png_jmpbuf(c->png)))
        return png_fail(c, err, errlen);

    png_set_read_fn(c->png, c, png_read_cb);
    png_set_user_limits(c->png, (png_uint_32)lim->max_width, (png_uint_32)lim->max_height);
    png_set_chunk_malloc_max(c->png, PNG_CHUNK_MALLOC_MAX);
    png_set_chunk_cache_max(c->png, PNG_CHUNK_CACHE_MAX);
#ifdef PNG_HANDLE_AS_UNKNOWN_SUPPORTED
    /* Metadata this decoder never uses (text, ICC profile, palettes, Exif) is
     * skipped unread, only its CRC checked: otherwise libpng inflates every
     * zTXt/iTXt/iCCP chunk (up to PNG_CHUNK_MALLOC_MAX each) and keeps the text,
     * so a 1 MB file of 150 compressed 8 MB text chunks costs 1.2 GB and minutes
     * (tests/test_bombs.c). */
    static const png_byte ignored[] = "iCCP\0iTXt\0tEXt\0zTXt\0sPLT\0eXIf";
    png_set_keep_unknown_chunks(c->png, PNG_HANDLE_CHUNK_NEVER, ignored,
                                (int)(sizeof ignored / 5));
#endif
    /* libpng already fails on CRC errors in critical chunks (that is what
     * catches PngSuite's xcsn0g01.png, bad IDAT CRC) but by default only warns
     * about ancillary ones and drops the chunk; be strict about both. */
    png_set_crc_action(c->png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);

    png_read_info(c->png, c->info);
    c->w = (int)png_get_image_width(c->png, c->info);
    c->h = (int)png_get_image_height(c->png, c->info);
    int rc = check_limits("PNG", c->w, c->h, lim, err, errlen);
    if (rc != IMG_OK)
        return rc;

    int ch = png_setup_transforms(c->png, c->info);
    size_t rowbytes = png_get_rowbytes(c->png, c->info);
    if (ch < 1 || ch > 4 || rowbytes != (size_t)c->w * (size_t)ch) {
        set_err(err, errlen, "corrupt PNG: unexpected layout after conversion "
                "(%d channels, %zu bytes per row)", ch, rowbytes);
        return IMG_E_CORRUPT_PNG;
    }
    if (png_get_interlace_type(c->png, c->info) == PNG_INTERLACE_NONE)
        return png_read_rows_gray(c, ch, rowbytes, err, errlen);
    return png_read_all_gray(c, ch, rowbytes, err, errlen);
}

static int png_decode(const uint8_t *data, size_t len, const img_limits *lim,
                      uint8_t **pixels, int *w, int *h, char *err, size_t errlen)
{
    int rc = png_precheck_size(data, len, lim, err, errlen);
    if (rc != IMG_OK)
        return rc;

    png_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        set_err(err, errlen, "out of memory starting the PNG decoder");
        return IMG_E_NOMEM;
    }
    c->data = data;
    c->len = len;
    c->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, png_error_cb, png_warning_cb);
    if (c->png)
        c->info = png_create_info_struct(c->png);
    if (!c->png || !c->info) {
        set_err(err, errlen, "out of memory starting the PNG decoder");
        rc = IMG_E_NOMEM;
        goto out;
    }
    rc = png_decode_ctx(c, lim, err, errlen);
    if (rc == IMG_OK) {
        size_t n = (size_t)c->w * (size_t)c->h;
        uint8_t *shrunk = realloc(c->buf, n); /* interlaced: drop the colour tail */
        *pixels = shrunk ? shrunk : c->buf;
        c->buf = NULL;
        *w = c->w;
        *h = c->h;
    }
out:
    if (c->png)
        png_destroy_read_struct(&c->png, c->info ? &c->info : NULL, NULL);
    free(c->rows);
    free(c->row);
    free(c->buf);
    free(c);
    return rc;
}

/* ---- JPEG --------------------------------------------------------------------- */

static int contains(const char *s, const char *sub)
{
    return s && strstr(s, sub) != NULL;
}

static int is_sof_marker(uint8_t m)
{
    /* SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC). */
    return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

/* Walks the marker segments before the first scan. Returns 1 when they run
 * past the end of the data, i.e. the header itself was cut off (libjpeg then
 * reports a confusing "missing SOS marker" or sees a tables-only stream), and
 * 0 otherwise. The frame size of the first SOF segment, if complete, goes to
 * *w, *h (left alone when there is none). */
static int jpeg_walk_header(const uint8_t *d, size_t len, long *w, long *h)
{
    size_t i = 2; /* after SOI */
    while (i < len) {
        if (d[i] != 0xFF)
            return 0; /* garbage where a marker should be: corrupt */
        while (i < len && d[i] == 0xFF)
            i++; /* fill bytes */
        if (i >= len)
            return 1;
        uint8_t m = d[i++];
        if (m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7))
            continue; /* markers without a length */
        if (m == 0xD9)
            return 0; /* EOI before any scan: complete but empty */
        if (i + 2 > len)
            return 1;
        size_t seg = (size_t)d[i] << 8 | d[i + 1];
        if (seg < 2)
            return 0;
        if (seg > len - i)
            return 1;
        if (m == 0xDA)
            return 0; /* reached the first scan: the header is complete */
        if (is_sof_marker(m) && seg >= 8) {
            *h = (long)d[i + 3] << 8 | d[i + 4];
            *w = (long)d[i + 5] << 8 | d[i + 6];
        }
        i += seg;
    }
    return 1;
}

/* Counts the scans (SOS markers) of a JPEG, up to limit + 1: marker segments
 * are skipped by their length (an Exif thumbnail's markers are not counted)
 * and entropy-coded data byte by byte (where 0xFF is only ever followed by a
 * stuffed 0x00, a restart marker or the next real marker). Stops at EOI. */
static int jpeg_count_scans(const uint8_t *d, size_t len, int limit)
{
    size_t i = 2; /* after SOI */
    int scans = 0;
    while (i + 1 < len) {
        if (d[i] != 0xFF) {
            /* entropy-coded data: on to the next 0xFF that has a byte after
             * it. memchr, not a loop per byte: this walk over a 434 KB photo
             * was 4.6% of a 1920x1080 upload's CPU time (perf). */
            const uint8_t *ff = memchr(d + i, 0xFF, len - 1 - i);
            if (!ff)
                break;
            i = (size_t)(ff - d);
        }
        uint8_t m = d[i + 1];
        if (m == 0xFF) {
            i++; /* fill byte */
            continue;
        }
        if (m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) {
            i += 2; /* stuffed byte, TEM, SOI, RSTn: no length */
            continue;
        }
        if (m == 0xD9 || i + 4 > len)
            break; /* EOI: libjpeg reads no further */
        if (m == 0xDA && ++scans > limit)
            break;
        i += 2 + ((size_t)d[i + 2] << 8 | d[i + 3]); /* the segment; a scan's data follows */
    }
    return scans;
}

static int jpeg_header_truncated(const uint8_t *d, size_t len)
{
    long w = 0, h = 0;
    return jpeg_walk_header(d, len, &w, &h);
}

/* Maps a TurboJPEG/libjpeg failure to an IMG_E* code and a message. */
static int jpeg_fail(tjhandle tj, const uint8_t *data, size_t len, const char *what,
                     char *err, size_t errlen)
{
    const char *m = tjGetErrorStr2(tj);
    if (!m)
        m = "unknown error";
    if (jpeg_header_truncated(data, len)) {
        set_err(err, errlen, "JPEG data is truncated: the file ends after %zu bytes, "
                "inside the header", len);
        return IMG_E_TRUNCATED_JPEG;
    }
    if (contains(m, "Premature end")) {
        set_err(err, errlen, "JPEG data is truncated: the file ends after %zu bytes, "
                "before the end of the image data", len);
        return IMG_E_TRUNCATED_JPEG;
    }
    if (contains(m, "Unsupported JPEG data precision")) {
        set_err(err, errlen, "unsupported JPEG variant: %s (only 8-bit JPEG is supported)", m);
        return IMG_E_FORMAT;
    }
    if (contains(m, "Insufficient memory") || contains(m, "Memory allocation failure")) {
        set_err(err, errlen, "out of memory decoding JPEG: %s", m);
        return IMG_E_NOMEM;
    }
    /* With TJFLAG_STOPONWARNING a libjpeg warning ends decoding too; say so,
     * since such messages ("Corrupt JPEG data: ...") can look harmless. */
    set_err(err, errlen, "corrupt JPEG (%s%s): %s", what,
            tjGetErrorCode(tj) == TJERR_WARNING ? ", warning treated as error" : "", m);
    return IMG_E_CORRUPT_JPEG;
}

/* Decompresses into dst (dw x dh pixels of format pf). Every libjpeg warning
 * is an error: a truncated file would otherwise "succeed" with a gray-filled
 * bottom, and damaged entropy-coded data often shows up only as a warning
 * (e.g. "extraneous bytes before marker") while the pixels are already wrong. */
static int jpeg_decompress(tjhandle tj, const uint8_t *data, size_t len, uint8_t *dst,
                           int dw, int dh, int pf, char *err, size_t errlen)
{
    int flags = TJFLAG_STOPONWARNING;
#ifdef TJFLAG_LIMITSCANS
    flags |= TJFLAG_LIMITSCANS; /* refuse progressive files with absurd scan counts */
#endif
    if (tjDecompress2(tj, data, (unsigned long)len, dst, dw, dw * tjPixelSize[pf], dh, pf,
                      flags) == 0)
        return IMG_OK;
    return jpeg_fail(tj, data, len, "decoding", err, errlen);
}

/* CMYK/YCCK JPEGs (Adobe, stored inverted as libjpeg-turbo's own cmyk.h
 * assumes): R = C*K/255 etc., then luma. Compacts 4 bytes/pixel to 1 in place. */
static void cmyk_to_gray_inplace(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = p + 4 * i;
        unsigned k = s[3];
        unsigned r = (s[0] * k + 127) / 255, g = (s[1] * k + 127) / 255, b = (s[2] * k + 127) / 255;
        p[i] = luma(r, g, b);
    }
}

/* The smallest TurboJPEG scaling factor (<= 1) whose output is still at least
 * min_w x min_h; min_w = min_h = 0 selects 1/1 (full size). */
static tjscalingfactor jpeg_pick_scale(int w, int h, int min_w, int min_h)
{
    tjscalingfactor best = {1, 1};
    if (min_w <= 0 || min_h <= 0)
        return best;
    int n = 0;
    tjscalingfactor *sf = tjGetScalingFactors(&n);
    for (int i = 0; sf && i < n; i++) {
        if (sf[i].num > sf[i].denom)
            continue; /* upscaling factors never help */
        if (TJSCALED(w, sf[i]) < min_w || TJSCALED(h, sf[i]) < min_h)
            continue;
        if ((long long)sf[i].num * best.denom < (long long)best.num * sf[i].denom)
            best = sf[i];
    }
    return best;
}

/* Decodes a JPEG to gray at the smallest scale that is >= min_w x min_h.
 * *pixels is malloc'ed, *w x *h its (scaled) size; ow/oh the original size. */
static int jpeg_decode(jpeg_dc_cache *cache, const uint8_t *data, size_t len, const img_limits *lim,
                       int min_w, int min_h, uint8_t **pixels, int *w, int *h, int *ow, int *oh,
                       char *err, size_t errlen)
{
    int rc, jw = 0, jh = 0, subsamp = 0, cs = 0;
    uint8_t *buf = NULL;
    /* Size check from our own look at the SOF segment first: it also covers
     * sizes TurboJPEG refuses outright (above 65500) with a clear message. */
    long fw = 0, fh = 0;
    jpeg_walk_header(data, len, &fw, &fh);
    if (fw > 0 && fh > 0 && (rc = check_limits("JPEG", fw, fh, lim, err, errlen)) != IMG_OK)
        return rc;

    tjhandle tj = tjInitDecompress();
    if (!tj) {
        set_err(err, errlen, "cannot start the JPEG decoder: %s", tjGetErrorStr2(NULL));
        return IMG_E_NOMEM;
    }
    if (tjDecompressHeader3(tj, data, (unsigned long)len, &jw, &jh, &subsamp, &cs) != 0) {
        rc = jpeg_fail(tj, data, len, "reading header", err, errlen);
        goto out;
    }
    /* TurboJPEG 2.1 returns success without a size for a tables-only stream,
     * which is also what a file cut before its first frame looks like. */
    if (jw <= 0 || jh <= 0) {
        if (contains(tjGetErrorStr2(tj), "Premature end") || jpeg_header_truncated(data, len)) {
            set_err(err, errlen, "JPEG data is truncated: the file ends after %zu bytes, "
                    "inside the header", len);
            rc = IMG_E_TRUNCATED_JPEG;
        } else {
            set_err(err, errlen, "corrupt JPEG: no image frame (tables-only datastream)");
            rc = IMG_E_CORRUPT_JPEG;
        }
        goto out;
    }
    rc = check_limits("JPEG", jw, jh, lim, err, errlen);
    if (rc != IMG_OK)
        goto out;
    tjscalingfactor sf = jpeg_pick_scale(jw, jh, min_w, min_h);
    int sw = TJSCALED(jw, sf), sh = TJSCALED(jh, sf);
    int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK; /* TJPF_GRAY cannot convert these */
    int pf = cmyk ? TJPF_CMYK : TJPF_GRAY;
    buf = malloc((size_t)sw * (size_t)sh * (size_t)tjPixelSize[pf]);
    if (!buf) {
        set_err(err, errlen, "out of memory decoding a %dx%d JPEG", jw, jh);
        rc = IMG_E_NOMEM;
        goto out;
    }
    /* At 1/8 scale the DC coefficients are the image: the fast path walks
     * past everything else (gray and YCbCr only: gray from RGB is not the
     * first component), and leaves any file it does not take (or that is
     * damaged) to TurboJPEG. */
    if ((cs == TJCS_GRAY || cs == TJCS_YCbCr) && sf.num == 1 && sf.denom == 8 &&
        jpeg_dc_decode_cached(cache, data, len, buf, sw, sh, JPEG_DC_LANES_AUTO)) {
        rc = IMG_OK; /* one scan, then EOI: jpeg_dc_decode takes no other */
    } else if (jpeg_count_scans(data, len, JPEG_MAX_SCANS) > JPEG_MAX_SCANS) {
        /* Counted only for TurboJPEG: the walk over every byte was 2.3% of
         * a 1920x1080 upload's CPU time (perf), for a file the fast path
         * had just read as one scan. */
        set_err(err, errlen, "JPEG has more than %d scans (progressive passes), above the limit: "
                "refused as a decompression bomb", JPEG_MAX_SCANS);
        rc = IMG_E_TOO_LARGE;
    } else {
        rc = jpeg_decompress(tj, data, len, buf, sw, sh, pf, err, errlen);
    }
    if (rc != IMG_OK)
        goto out;
    if (cmyk)
        cmyk_to_gray_inplace(buf, (size_t)sw * (size_t)sh);
    *pixels = buf;
    buf = NULL;
    *w = sw;
    *h = sh;
    *ow = jw;
    *oh = jh;
out:
    free(buf);
    tjDestroy(tj);
    return rc;
}

/* ---- public API ------------------------------------------------------------------ */

/* Common front end: argument checks, sniffing, then the format decoder. */
static int decode_any(jpeg_dc_cache *cache, const uint8_t *data, size_t len, const img_limits *lim,
                      int min_w, int min_h, uint8_t **pixels, int *w, int *h, int *ow, int *oh,
                      char *err, size_t errlen)
{
    img_limits def;
    if (!lim) {
        img_limits_default(&def);
        lim = &def;
    }
    if (!data || len == 0) {
        set_err(err, errlen, "empty image: the body has 0 bytes");
        return IMG_E_EMPTY;
    }
    int fmt = sniff(data, len, err, errlen);
    if (fmt < 0)
        return fmt;
    if (fmt == FMT_JPEG)
        return jpeg_decode(cache, data, len, lim, min_w, min_h, pixels, w, h, ow, oh, err, errlen);
    int rc = png_decode(data, len, lim, pixels, w, h, err, errlen);
    if (rc == IMG_OK) {
        *ow = *w;
        *oh = *h;
    }
    return rc;
}

int img_decode_gray(const uint8_t *data, size_t len, const img_limits *lim,
                    uint8_t **pixels, int *w, int *h, char *err, size_t errlen)
{
    int ow, oh;
    *pixels = NULL;
    return decode_any(NULL, data, len, lim, 0, 0, pixels, w, h, &ow, &oh, err, errlen);
}

int img_decode_gray_resized(const uint8_t *data, size_t len, const img_limits *lim,
                            int out_w, int out_h, uint8_t *out,
                            int *orig_w, int *orig_h, char *err, size_t errlen)
{
    return img_decode_gray_resized_cached(NULL, data, len, lim, out_w, out_h, out, orig_w, orig_h, err,
                                          errlen);
}

int img_decode_gray_resized_cached(jpeg_dc_cache *cache, const uint8_t *data, size_t len,
                                   const img_limits *lim, int out_w, int out_h, uint8_t *out,
                                   int *orig_w, int *orig_h, char *err, size_t errlen)
{
    if (out_w <= 0 || out_h <= 0) {
        /* A caller bug rather than bad input; there is no better code for it. */
        set_err(err, errlen, "invalid output size %dx%d", out_w, out_h);
        return IMG_E_FORMAT;
    }
    uint8_t *px = NULL;
    int w = 0, h = 0, ow = 0, oh = 0;
    int rc = decode_any(cache, data, len, lim, out_w, out_h, &px, &w, &h, &ow, &oh, err, errlen);
    if (rc != IMG_OK)
        return rc;
    img_resize_area(px, w, h, out, out_w, out_h);
    free(px);
    if (orig_w)
        *orig_w = ow;
    if (orig_h)
        *orig_h = oh;
    return IMG_OK;
}

/* Overlap, in units of 1/(dst*src) of the full extent, between source pixel
 * s (covering [s*dn, (s+1)*dn)) and output pixel o (covering [o*sn, (o+1)*sn)),
 * where sn/dn are the source/destination sizes along that axis. */
static inline long long overlap(long long s, long long o, long long sn, long long dn)
{
    long long lo = s * dn > o * sn ? s * dn : o * sn;
    long long hi = (s + 1) * dn < (o + 1) * sn ? (s + 1) * dn : (o + 1) * sn;
    return hi > lo ? hi - lo : 0;
}

/* Exact area average: in integer coordinates scaled by dw (x) and dh (y), each
 * output pixel is a box of sw x sh units and each source pixel a box of dw x dh
 * units; the output is the overlap-weighted mean of the source pixels, whose
 * weights sum to sw*sh, rounded to nearest. No allocation, so it cannot fail. */
void img_resize_area(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh)
{
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * (size_t)sh);
        return;
    }
    const unsigned long long total = (unsigned long long)sw * (unsigned long long)sh;
    for (int oy = 0; oy < dh; oy++) {
        int y0 = (int)((long long)oy * sh / dh);
        int y1 = (int)(((long long)(oy + 1) * sh + dh - 1) / dh); /* exclusive */
        const unsigned long long wy0 = (unsigned long long)overlap(y0, oy, sh, dh);
        const unsigned long long wy1 = (unsigned long long)overlap(y1 - 1, oy, sh, dh);
        for (int ox = 0; ox < dw; ox++) {
            int x0 = (int)((long long)ox * sw / dw);
            int x1 = (int)(((long long)(ox + 1) * sw + dw - 1) / dw);
            const unsigned long long wx0 = (unsigned long long)overlap(x0, ox, sw, dw);
            const unsigned long long wx1 = (unsigned long long)overlap(x1 - 1, ox, sw, dw);
            unsigned long long acc = 0;
            /* Only a box's first and last row and column overlap it in part;
             * the pixels between lie inside it whole (weight dw across, dh
             * down), so they are summed first and weighted once. The same
             * integer sum as weighting each pixel, in another order: 240x135
             * -> 48x48 (a 1920x1080 JPEG at 1/8) took 55 us that way. */
            for (int y = y0; y < y1; y++) {
                const uint8_t *row = src + (size_t)y * (size_t)sw;
                unsigned long long rs = (unsigned long long)row[x0] * wx0;
                if (x1 - 1 > x0) {
                    unsigned long long mid = 0;
                    for (int x = x0 + 1; x < x1 - 1; x++) mid += row[x];
                    rs += mid * (unsigned long long)dw + (unsigned long long)row[x1 - 1] * wx1;
                }
                acc += rs * (y == y0 ? wy0 : y == y1 - 1 ? wy1 : (unsigned long long)dh);
            }
            dst[(size_t)oy * (size_t)dw + (size_t)ox] = (uint8_t)((acc + total / 2) / total);
        }
    }
}

int img_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len,
                  char *err, size_t errlen)
{
    char eb[128];
    struct stat st;
    uint8_t *buf = NULL;
    size_t n = 0, cap;
    int rc = IMG_E_IO;
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, "cannot open %s: %s", path, strerror_r(errno, eb, sizeof eb));
        return IMG_E_IO;
    }
    if (fstat(fd, &st) != 0) {
        set_err(err, errlen, "cannot stat %s: %s", path, strerror_r(errno, eb, sizeof eb));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        set_err(err, errlen, "cannot read %s: it is a directory", path);
        goto out;
    }
    if (S_ISREG(st.st_mode) && (unsigned long long)st.st_size > max_bytes) {
        set_err(err, errlen, "%s is %lld bytes, above the %zu-byte limit", path,
                (long long)st.st_size, max_bytes);
        rc = IMG_E_TOO_LARGE;
        goto out;
    }
    /* st_size is a hint only (pipes, /proc): read until EOF, growing as needed. */
    cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536;
    buf = malloc(cap);
    if (!buf)
        goto nomem;
    for (;;) {
        if (n == cap) {
            if (cap > max_bytes) {
                set_err(err, errlen, "%s is above the %zu-byte limit", path, max_bytes);
                rc = IMG_E_TOO_LARGE;
                goto out;
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb)
                goto nomem;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            set_err(err, errlen, "cannot read %s: %s", path, strerror_r(errno, eb, sizeof eb));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > max_bytes) {
        set_err(err, errlen, "%s is above the %zu-byte limit", path, max_bytes);
        rc = IMG_E_TOO_LARGE;
        goto out;
    }
    *data = buf;
    *len = n;
    buf = NULL;
    rc = IMG_OK;
    goto out;
nomem:
    set_err(err, errlen, "out of memory reading %s", path);
    rc = IMG_E_NOMEM;
out:
    free(buf);
    close(fd);
    return rc;
}
