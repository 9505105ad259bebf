/* base64.h - RFC 4648 base64 for JSON request bodies ({"image": "<base64>"}).
 *
 * The decoder accepts the standard and the URL-safe alphabet, ignores ASCII
 * whitespace (line-wrapped encoders) and accepts missing '=' padding, but
 * rejects any other character, misplaced padding and impossible lengths.
 */
#ifndef SERVICE_BASE64_H
#define SERVICE_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Upper bound of the decoded size of n input characters. */
size_t b64_decoded_max(size_t n);

/* Decodes n characters of in into out (at least b64_decoded_max(n) bytes).
 * Returns 0 and the decoded length in *outlen, or -1 on malformed input. */
int b64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen);

/* Encodes n bytes with padding into a malloc'ed NUL-terminated string (NULL
 * when out of memory). */
char *b64_encode(const uint8_t *in, size_t n);

#endif
