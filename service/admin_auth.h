/* admin_auth.h - the admin API's Bearer token: where it comes from and how a
 * request's Authorization header is checked against it.
 *
 * The token is compared in constant time (for the configured token's length)
 * and never written anywhere: not in logs, not in answers, not in
 * --print-config. */
#ifndef SERVICE_ADMIN_AUTH_H
#define SERVICE_ADMIN_AUTH_H

#include <stddef.h>

#include "config.h"

#define ADMIN_TOKEN_MAX 256

typedef enum {
    ADMIN_AUTH_OK = 0,
    ADMIN_AUTH_DISABLED, /* no token configured: 403 */
    ADMIN_AUTH_MISSING,  /* no or malformed Authorization header: 401 */
    ADMIN_AUTH_WRONG     /* a Bearer token that does not match: 401 */
} admin_auth_result;

/* The effective token: cfg->admin_token (config file, EMOTIOND_ADMIN_TOKEN,
 * --admin-token) or else the contents of cfg->admin_token_file (trailing
 * whitespace trimmed). out gets "" when none is configured. Returns -1 with
 * a message when the file is set but unreadable, empty or too long. */
int admin_token_resolve(const svc_config *cfg, char *out, size_t outlen, char *err, size_t errlen);

/* Checks an Authorization header value (may be NULL) against token. */
admin_auth_result admin_auth_check(const char *token, const char *authorization);

/* Compares a and b (lengths la, lb) in time that depends on la only. */
int admin_const_eq(const char *a, size_t la, const char *b, size_t lb);

#endif
