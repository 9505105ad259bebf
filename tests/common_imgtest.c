/* common_imgtest.c - see common_imgtest.h. */
#include "common_imgtest.h"

#include <check.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

typedef struct {
    uint8_t *data;
    size_t len, cap;
    int oom;
} membuf;

static void mem_write(png_structp png, png_bytep p, png_size_t n)
{
    membuf *b = png_get_io_ptr(png);
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 1024) + n;
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            b->oom = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void mem_flush(png_structp png)
{
    (void)png;
}

static int channels_of(int color_type)
{
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1; /* palette indices */
    }
}

/* Packs one row of samples at the given depth (MSB first, 16-bit big-endian). */
static void pack_row(const uint16_t *s, size_t n, int depth, uint8_t *row)
{
    if (depth == 16) {
        for (size_t i = 0; i < n; i++) {
            row[2 * i] = (uint8_t)(s[i] >> 8);
            row[2 * i + 1] = (uint8_t)s[i];
        }
        return;
    }
    if (depth == 8) {
        for (size_t i = 0; i < n; i++)
            row[i] = (uint8_t)s[i];
        return;
    }
    size_t per = 8 / (size_t)depth;
    memset(row, 0, (n + per - 1) / per);
    for (size_t i = 0; i < n; i++)
        row[i / per] |= (uint8_t)(s[i] << (8 - depth * (int)(i % per + 1)));
}

static int encode_rows(png_structp png, png_infop info, const imgt_png_spec *s, uint8_t *rows)
{
    if (setjmp(png_jmpbuf(png)))
        return -1;
    png_set_IHDR(png, info, (png_uint_32)s->w, (png_uint_32)s->h, s->bit_depth, s->color_type,
                 s->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette)
        png_set_PLTE(png, info, s->palette, s->npalette);
    if (s->trns || s->trns_color)
        png_set_tRNS(png, info, s->trns, s->ntrns, s->trns_color);
    png_write_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    png_bytep *rp = png_malloc(png, sizeof *rp * (size_t)s->h);
    for (int y = 0; y < s->h; y++)
        rp[y] = rows + (size_t)y * rowbytes;
    png_write_image(png, rp);
    png_write_end(png, NULL);
    png_free(png, rp);
    return 0;
}

int imgt_png_encode(const imgt_png_spec *s, uint8_t **out, size_t *len)
{
    int ch = channels_of(s->color_type);
    size_t n = (size_t)s->w * (size_t)ch;
    size_t rowbytes = (n * (size_t)s->bit_depth + 7) / 8;
    uint8_t *rows = calloc((size_t)s->h, rowbytes);
    membuf b = {0};
    int rc = -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!rows || !info)
        goto out;
    for (int y = 0; y < s->h; y++)
        pack_row(s->samples + (size_t)y * n, n, s->bit_depth, rows + (size_t)y * rowbytes);
    png_set_write_fn(png, &b, mem_write, mem_flush);
    rc = encode_rows(png, info, s, rows);
    if (b.oom)
        rc = -1;
out:
    png_destroy_write_struct(&png, &info);
    free(rows);
    if (rc != 0) {
        free(b.data);
        return -1;
    }
    *out = b.data;
    *len = b.len;
    return 0;
}

uint8_t *imgt_png_gray8(int w, int h, const uint8_t *px, size_t *len)
{
    uint16_t *s = malloc(sizeof *s * (size_t)w * (size_t)h);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++)
        s[i] = px[i];
    imgt_png_spec spec = {.w = w, .h = h, .color_type = PNG_COLOR_TYPE_GRAY, .bit_depth = 8,
                          .samples = s};
    uint8_t *out = NULL;
    ck_assert_int_eq(imgt_png_encode(&spec, &out, len), 0);
    free(s);
    return out;
}

uint8_t *imgt_jpeg_encode(const uint8_t *px, int w, int h, int pf, int subsamp, int quality,
                          size_t *len)
{
    tjhandle tj = tjInitCompress();
    ck_assert_ptr_nonnull(tj);
    unsigned char *jpg = NULL;
    unsigned long jlen = 0;
    int rc = tjCompress2(tj, px, w, 0, h, pf, &jpg, &jlen, subsamp, quality, 0);
    ck_assert_msg(rc == 0, "tjCompress2: %s", tjGetErrorStr2(tj));
    uint8_t *out = malloc(jlen);
    ck_assert_ptr_nonnull(out);
    memcpy(out, jpg, jlen);
    *len = jlen;
    tjFree(jpg);
    tjDestroy(tj);
    return out;
}

int imgt_luma(int r, int g, int b)
{
    return (int)((19595u * (unsigned)r + 38470u * (unsigned)g + 7471u * (unsigned)b + 32768u) >> 16);
}

void imgt_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

void imgt_mkdtemp(char *path)
{
    snprintf(path, 64, "/tmp/emotiond-test-XXXXXX");
    ck_assert_msg(mkdtemp(path) != NULL, "mkdtemp failed");
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

void imgt_rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* CRC-32 as PNG uses it (bitwise; zlib is not linked into the tests). */
static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

size_t imgt_png_chunk(uint8_t *p, const char type[4], const uint8_t *data, uint32_t len)
{
    p[0] = (uint8_t)(len >> 24);
    p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    memcpy(p + 4, type, 4);
    if (len)
        memcpy(p + 8, data, len);
    uint32_t crc = crc32_png(p + 4, 4 + (size_t)len);
    p[8 + len] = (uint8_t)(crc >> 24);
    p[9 + len] = (uint8_t)(crc >> 16);
    p[10 + len] = (uint8_t)(crc >> 8);
    p[11 + len] = (uint8_t)crc;
    return 12 + (size_t)len;
}
