/* cli_help.h - the layout of the subcommands' --help text, and the man page
 * made from that same text (`emotiond help --man`, `make man`).
 *
 * Every usage text follows one layout, which the man page converter reads:
 *
 *   usage: emotiond CMD ...        synopsis; more synopsis lines start with
 *          emotiond CMD ...        seven spaces and "emotiond"
 *   (blank)
 *   Plain text at column 0.        a paragraph (filled by man)
 *   Options:                       a heading: column 0, ends with ':'
 *     --flag VALUE    text         an option: two spaces, '-', the flag, two
 *                     more text    or more spaces, its text; continuation
 *                                  lines are indented past column 4
 *     emotiond ...                 any other indented line is shown verbatim
 */
#ifndef SERVICE_CLI_HELP_H
#define SERVICE_CLI_HELP_H

#include <stdio.h>

#define HELP_WIDTH 79   /* --help lines fit an 80-column terminal */
#define HELP_DESC_COL 28 /* where an option's text starts */

/* One option: "  FLAG  TEXT", TEXT word-wrapped at HELP_WIDTH with
 * continuation lines indented to HELP_DESC_COL (a long FLAG puts TEXT on
 * the next line). */
void help_option(FILE *f, const char *flag, const char *text);

/* A paragraph at column 0, word-wrapped at HELP_WIDTH. */
void help_paragraph(FILE *f, const char *text);

/* Writes text (in the layout above) as man(7) markup for the section of one
 * subcommand: ".SS emotiond NAME", the synopsis, paragraphs and .TP option
 * lists, with roff's special characters escaped. */
void help_to_man(FILE *out, const char *name, const char *text);

/* Escapes s for roff running text (backslash, leading dot/quote, hyphens). */
void help_roff_text(FILE *out, const char *s, size_t n);

#endif
