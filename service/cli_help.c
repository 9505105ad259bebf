/* cli_help.c - see cli_help.h. */
#include "cli_help.h"

#include <string.h>

/* Writes text word-wrapped: the first line continues at column col, the
 * next ones start at column indent. A '\n' in text breaks the line. */
static void wrap(FILE *f, const char *text, int col, int indent)
{
    const char *p = text;
    int fresh = 1; /* nothing written on this line yet */
    while (*p) {
        if (*p == '\n') {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
            fresh = 1;
            p++;
            continue;
        }
        if (*p == ' ') {
            p++;
            continue;
        }
        size_t n = strcspn(p, " \n");
        if (!fresh && col + 1 + (int)n > HELP_WIDTH) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
            fresh = 1;
        }
        if (!fresh) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, n, f);
        col += (int)n;
        fresh = 0;
        p += n;
    }
    fputc('\n', f);
}

void help_option(FILE *f, const char *flag, const char *text)
{
    int col = fprintf(f, "  %s", flag);
    if (col + 2 > HELP_DESC_COL) {
        fputc('\n', f);
        col = 0;
    }
    fprintf(f, "%*s", HELP_DESC_COL - col, "");
    wrap(f, text, HELP_DESC_COL, HELP_DESC_COL);
}

void help_paragraph(FILE *f, const char *text)
{
    wrap(f, text, 0, 0);
}

void help_roff_text(FILE *out, const char *s, size_t n)
{
    if (n && (s[0] == '.' || s[0] == '\'')) fputs("\\&", out);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\') fputs("\\e", out);
        else if (s[i] == '-') fputs("\\-", out);
        else fputc(s[i], out);
    }
}

static size_t indent_of(const char *line, size_t n)
{
    size_t i = 0;
    while (i < n && line[i] == ' ') i++;
    return i;
}

/* The rest of a line after its indentation, without trailing spaces. */
static void emit_trimmed(FILE *out, const char *line, size_t n)
{
    size_t i = indent_of(line, n);
    while (n > i && line[n - 1] == ' ') n--;
    help_roff_text(out, line + i, n - i);
    fputc('\n', out);
}

void help_to_man(FILE *out, const char *name, const char *text)
{
    enum { NONE, SYNOPSIS, PARA, OPTION, VERBATIM } st = NONE;
    int need_pp = 0;
    fputs(".SS emotiond ", out);
    help_roff_text(out, name, strlen(name));
    fputc('\n', out);
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        size_t ind = indent_of(line, n);
        int blank = ind == n;
        if (st == VERBATIM && (blank || ind < 2 || line[ind] == '-')) {
            fputs(".fi\n", out);
            st = NONE;
        }
        if (!strncmp(line, "usage: ", 7) ||
            (st == SYNOPSIS && ind == 7 && !strncmp(line + 7, "emotiond", 8))) {
            if (st != SYNOPSIS) fputs(".nf\n", out);
            st = SYNOPSIS;
            size_t skip = strncmp(line, "usage: ", 7) ? 0 : 7;
            emit_trimmed(out, line + skip, n - skip);
        } else {
            if (st == SYNOPSIS) {
                fputs(".fi\n", out);
                st = NONE;
                need_pp = 1;
            }
            if (blank) {
                if (st != NONE) need_pp = 1;
                st = NONE;
            } else if (ind == 0) {
                int heading = line[n - 1] == ':' && n < 60;
                if (need_pp || st == OPTION || heading) fputs(".PP\n", out);
                need_pp = 0;
                if (heading) {
                    fputs("\\fB", out);
                    help_roff_text(out, line, n);
                    fputs("\\fR\n.br\n", out);
                    st = NONE;
                } else {
                    emit_trimmed(out, line, n);
                    st = PARA;
                }
            } else if (line[ind] == '-' && ind == 2) {
                /* "  --flag VALUE   text": the flag ends at two spaces */
                const char *f = line + ind;
                size_t fl = 0;
                while (ind + fl < n && !(f[fl] == ' ' && ind + fl + 1 < n && f[fl + 1] == ' '))
                    fl++;
                while (fl && f[fl - 1] == ' ') fl--;
                fputs(".TP\n\\fB", out);
                help_roff_text(out, f, fl);
                fputs("\\fR\n", out);
                if (ind + fl < n) emit_trimmed(out, f + fl, n - ind - fl);
                st = OPTION;
                need_pp = 0;
            } else if (st == OPTION && ind >= 4) {
                emit_trimmed(out, line, n);
            } else {
                if (st != VERBATIM) {
                    if (need_pp || st == OPTION || st == PARA) fputs(".PP\n", out);
                    fputs(".nf\n", out);
                }
                need_pp = 0;
                st = VERBATIM;
                fputs("  ", out);
                emit_trimmed(out, line, n);
            }
        }
        line += n + (nl ? 1 : 0);
    }
    if (st == SYNOPSIS || st == VERBATIM) fputs(".fi\n", out);
}
