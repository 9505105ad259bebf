/* admin_auth.c - see admin_auth.h. */
#include "admin_auth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fsutil.h"

int admin_token_resolve(const svc_config *cfg, char *out, size_t outlen, char *err, size_t errlen)
{
    out[0] = '\0';
    if (cfg->admin_token[0]) {
        snprintf(out, outlen, "%s", cfg->admin_token);
        return 0;
    }
    if (!cfg->admin_token_file[0]) return 0;
    size_t n = 0;
    char *s = fs_read_file(cfg->admin_token_file, 64 * 1024, &n);
    if (!s) {
        snprintf(err, errlen, "admin_token_file: cannot read %s", cfg->admin_token_file);
        return -1;
    }
    /* secrets mounted from Kubernetes or written by echo end with a newline */
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    int rc = 0;
    if (!n || n >= outlen) {
        snprintf(err, errlen, "admin_token_file: %s is %s", cfg->admin_token_file,
                 n ? "too long (at most 255 bytes)" : "empty");
        rc = -1;
    } else {
        memcpy(out, s, n + 1);
    }
    memset(s, 0, n); /* do not leave the secret in freed memory */
    free(s);
    return rc;
}

int admin_const_eq(const char *a, size_t la, const char *b, size_t lb)
{
    /* Every byte of a is visited whatever b holds, and the length difference
     * is folded in instead of returning early, so the time does not tell how
     * much of a guess was right. */
    unsigned char acc = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++) {
        unsigned char cb = lb ? (unsigned char)b[i % lb] : 0;
        acc |= (unsigned char)((unsigned char)a[i] ^ cb);
    }
    return acc == 0;
}

admin_auth_result admin_auth_check(const char *token, const char *authorization)
{
    if (!token || !*token) return ADMIN_AUTH_DISABLED;
    if (!authorization) return ADMIN_AUTH_MISSING;
    const char *p = authorization;
    while (*p == ' ' || *p == '\t') p++;
    if (strncasecmp(p, "Bearer", 6) || (p[6] != ' ' && p[6] != '\t')) return ADMIN_AUTH_MISSING;
    p += 6;
    while (*p == ' ' || *p == '\t') p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    if (!n) return ADMIN_AUTH_MISSING;
    return admin_const_eq(token, strlen(token), p, n) ? ADMIN_AUTH_OK : ADMIN_AUTH_WRONG;
}
