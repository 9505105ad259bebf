/* base64.c - RFC 4648 base64 (see base64.h). */
#include "base64.h"

#include <stdlib.h>

size_t b64_decoded_max(size_t n)
{
    return n / 4 * 3 + 3;
}

/* 0..63 for alphabet characters, -1 for whitespace, -2 for '=', -3 invalid. */
static int sextet(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+' || ch == '-') return 62;
    if (ch == '/' || ch == '_') return 63;
    if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') return -1;
    if (ch == '=') return -2;
    return -3;
}

int b64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen)
{
    uint32_t acc = 0;
    int nbits = 0;     /* sextets in the current quantum */
    int pad = 0;       /* '=' seen: only whitespace and '=' may follow */
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = sextet((unsigned char)in[i]);
        if (v == -1) continue;
        if (v == -3) return -1;
        if (v == -2) {
            /* Padding may only complete a quantum of 2 or 3 sextets. */
            if (nbits < 2 && !pad) return -1;
            pad++;
            if (nbits + pad > 4) return -1;
            continue;
        }
        if (pad) return -1;
        acc = acc << 6 | (uint32_t)v;
        if (++nbits == 4) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
            nbits = 0;
        }
    }
    if (pad && nbits + pad != 4) return -1;
    switch (nbits) {
    case 0: break;
    case 1: return -1; /* 6 bits cannot encode a byte */
    case 2:
        if (acc & 0xf) return -1; /* non-canonical trailing bits */
        out[o++] = (uint8_t)(acc >> 4);
        break;
    case 3:
        if (acc & 0x3) return -1;
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
        break;
    }
    *outlen = o;
    return 0;
}

char *b64_encode(const uint8_t *in, size_t n)
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *s = malloc((n + 2) / 3 * 4 + 1);
    if (!s) return NULL;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        s[o++] = alpha[v >> 18];
        s[o++] = alpha[(v >> 12) & 63];
        s[o++] = alpha[(v >> 6) & 63];
        s[o++] = alpha[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        s[o++] = alpha[v >> 18];
        s[o++] = alpha[(v >> 12) & 63];
        s[o++] = '=';
        s[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        s[o++] = alpha[v >> 18];
        s[o++] = alpha[(v >> 12) & 63];
        s[o++] = alpha[(v >> 6) & 63];
        s[o++] = '=';
    }
    s[o] = '\0';
    return s;
}
