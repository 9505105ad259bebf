/* version.c - see version.h. */
#include "version.h"

#include "model_file.h"

#if defined(__has_include)
#if __has_include("git_describe.h")
#include "git_describe.h" /* $(BUILD)/gen, written by the Makefile */
#endif
#endif
#ifndef EMOTIOND_GIT
#define EMOTIOND_GIT ""
#endif

const char *emotiond_version(void)
{
    return EMOTIOND_VERSION;
}

const char *emotiond_git_describe(void)
{
    return EMOTIOND_GIT;
}

void emotiond_print_version(FILE *f)
{
    if (EMOTIOND_GIT[0]) fprintf(f, "emotiond %s (git %s)\n", EMOTIOND_VERSION, EMOTIOND_GIT);
    else fprintf(f, "emotiond %s\n", EMOTIOND_VERSION);
    fprintf(f, "model file format %u (.emod)\n", (unsigned)NN_FILE_VERSION);
}
