/* version.h - the version of emotiond, defined here and nowhere else.
 *
 * The release number is EMOTIOND_VERSION (openapi.yaml's info.version must
 * match it: tests/test_cli.c checks). The build adds `git describe` of the
 * checkout when there is one (the Makefile writes it to
 * $(BUILD)/gen/git_describe.h); a tarball without .git builds without it. */
#ifndef SERVICE_VERSION_H
#define SERVICE_VERSION_H

#include <stdio.h>

#define EMOTIOND_VERSION "0.1.0"

/* "0.1.0" */
const char *emotiond_version(void);

/* `git describe --tags --always` (with "-dirty" for local changes) of the
 * build's checkout, "" when built without git. */
const char *emotiond_git_describe(void);

/* The --version text: "emotiond 0.1.0 (git ...)" and the file formats. */
void emotiond_print_version(FILE *f);

#endif
