/* train_opts.h - the JSON body of POST /train, checked field by field before
 * a job starts, so that a bad option is a 400 naming the field rather than a
 * job that fails minutes later. */
#ifndef SERVICE_TRAIN_OPTS_H
#define SERVICE_TRAIN_OPTS_H

#include <jansson.h>
#include <stddef.h>

/* Parses and validates body (len bytes). On success *out is a new object with
 * the accepted fields (unknown fields are errors) and 0 is returned; on
 * failure -1, field gets the offending field's name ("" for the body) and
 * msg a sentence. */
int topt_parse(const char *body, size_t len, json_t **out, char *field, size_t fieldlen,
               char *msg, size_t msglen);

/* 1 when name can name an architecture file (letters, digits, '_', '-', '.'
 * without a leading dot). */
int topt_valid_arch_name(const char *name);

#endif
