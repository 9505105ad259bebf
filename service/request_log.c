/* request_log.c - request and event log lines (see request_log.h). */
#include "request_log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

int rlog_accept_id(const char *in, char *out)
{
    if (!in) return 0;
    size_t n = strlen(in);
    if (n < 1 || n > RLOG_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 strchr("._:/+=@-", c);
        if (!ok || !c) return 0;
    }
    memcpy(out, in, n + 1);
    return 1;
}

void rlog_make_id(uint32_t prefix, unsigned long long seq, char *out)
{
    snprintf(out, RLOG_ID_MAX + 1, "%08x-%llu", prefix, seq);
}

void rlog_escape(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    if (!outlen) return;
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[5];
        size_t n;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            n = 2;
        } else if (c < 0x20 || c >= 0x7f) {
            snprintf(tmp, sizeof tmp, "\\x%02x", c);
            n = 4;
        } else {
            tmp[0] = (char)c;
            n = 1;
        }
        if (o + n >= outlen) break;
        memcpy(out + o, tmp, n);
        o += n;
    }
    out[o] = '\0';
}

static void timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* In JSON, rlog_escape's "\x" is not valid; "\\x" keeps the text readable and
 * the line valid JSON. */
static void json_escape(const char *s, char *out, size_t outlen)
{
    char tmp[1024];
    rlog_escape(s, tmp, sizeof tmp);
    size_t o = 0;
    for (const char *p = tmp; *p && o + 2 < outlen; p++) {
        if (p[0] == '\\' && p[1] == 'x') {
            out[o++] = '\\';
            out[o++] = '\\';
            continue;
        }
        if (p[0] == '\\' && (p[1] == '"' || p[1] == '\\')) {
            out[o++] = *p++;
            out[o++] = *p;
            continue;
        }
        out[o++] = *p;
    }
    out[o] = '\0';
}

void rlog_request(FILE *f, cfg_log_format fmt, const rlog_entry *e)
{
    char ts[40], id[RLOG_ID_MAX * 4 + 1], path[600], client[100];
    timestamp(ts, sizeof ts);
    if (fmt == CFG_LOG_JSON) {
        json_escape(e->id, id, sizeof id);
        json_escape(e->path, path, sizeof path);
        json_escape(e->client ? e->client : "", client, sizeof client);
        fprintf(f,
                "{\"ts\":\"%s\",\"level\":\"info\",\"msg\":\"request\",\"id\":\"%s\","
                "\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"bytes\":%llu,"
                "\"latency_ms\":%.3f,\"client\":\"%s\"%s%s%s}\n",
                ts, id, e->method, path, e->status, e->bytes, e->ms, client,
                e->error_code ? ",\"error\":\"" : "", e->error_code ? e->error_code : "",
                e->error_code ? "\"" : "");
    } else {
        rlog_escape(e->id, id, sizeof id);
        rlog_escape(e->path, path, sizeof path);
        rlog_escape(e->client ? e->client : "-", client, sizeof client);
        fprintf(f, "%s INFO request id=%s method=%s path=\"%s\" status=%d bytes=%llu ms=%.3f "
                   "client=%s%s%s\n",
                ts, id, e->method, path, e->status, e->bytes, e->ms, client,
                e->error_code ? " error=" : "", e->error_code ? e->error_code : "");
    }
    fflush(f);
}

void rlog_event(FILE *f, cfg_log_format fmt, const char *level, const char *msgfmt, ...)
{
    char ts[40], msg[1024], esc[2048];
    timestamp(ts, sizeof ts);
    va_list ap;
    va_start(ap, msgfmt);
    vsnprintf(msg, sizeof msg, msgfmt, ap);
    va_end(ap);
    if (fmt == CFG_LOG_JSON) {
        json_escape(msg, esc, sizeof esc);
        fprintf(f, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", ts, level, esc);
    } else {
        rlog_escape(msg, esc, sizeof esc);
        /* Upper-case level for plain text, like the request lines. */
        char lv[8];
        size_t i = 0;
        for (; level[i] && i < sizeof lv - 1; i++)
            lv[i] = (char)(level[i] >= 'a' && level[i] <= 'z' ? level[i] - 32 : level[i]);
        lv[i] = '\0';
        fprintf(f, "%s %s %s\n", ts, lv, esc);
    }
    fflush(f);
}
