/* request_log.h - one line per request and start-up/shutdown lines on a
 * stream (stderr), as plain "key=value" text or as JSON objects.
 *
 * Everything a client controls (path, request id, user agent) is escaped to
 * printable ASCII before it is written, so a request cannot forge log lines.
 */
#ifndef SERVICE_REQUEST_LOG_H
#define SERVICE_REQUEST_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

#define RLOG_ID_MAX 64

typedef struct {
    const char *id;
    const char *method;
    const char *path;
    int status;
    unsigned long long bytes; /* response body bytes */
    double ms;                /* latency */
    const char *error_code;   /* NULL for success */
    const char *client;       /* peer address, may be NULL */
} rlog_entry;

/* Copies a client-supplied X-Request-Id to out (RLOG_ID_MAX + 1 bytes) when it
 * is 1..RLOG_ID_MAX characters of [A-Za-z0-9._:/+=@-]; returns 1 then, else 0
 * (the caller generates an id instead). */
int rlog_accept_id(const char *in, char *out);

/* A fresh id from a per-process prefix and a sequence number. */
void rlog_make_id(uint32_t prefix, unsigned long long seq, char *out);

/* Escapes s to printable ASCII (\xHH for other bytes; '"' and '\\' escaped
 * too), truncated to fit out. */
void rlog_escape(const char *s, char *out, size_t outlen);

void rlog_request(FILE *f, cfg_log_format fmt, const rlog_entry *e);

/* A start-up/shutdown/event line: level "info", "warn" or "error". */
void rlog_event(FILE *f, cfg_log_format fmt, const char *level, const char *msgfmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
