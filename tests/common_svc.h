/* common_svc.h - helpers shared by the service tests: a tiny model written
 * to a temporary file, an in-process server, an HTTP client (libcurl), and
 * PNG/JPEG encoders to make test images in memory. */
#ifndef TESTS_COMMON_SVC_H
#define TESTS_COMMON_SVC_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "config.h"
#include "nn.h"

/* A small architecture (48x48 input, 7 classes) that runs in microseconds. */
extern const char tsv_tiny_arch[];

/* A fresh tiny model (seeded) saved to a new temporary file; the path is
 * written to path (at least 64 bytes). Returns the model (caller frees). */
nn_model *tsv_make_model_file(uint64_t seed, char *path, size_t pathlen);

/* Config for tests: port 0 on 127.0.0.1, 2 workers, quiet logs. */
void tsv_test_config(svc_config *c, const char *model_path);

/* Starts an in-process server; aborts the test on failure. log may be NULL
 * (discarded). */
app *tsv_start(const svc_config *c);

typedef struct {
    long status;
    char *body;        /* NUL-terminated */
    size_t len;
    char headers[8192];/* raw response headers */
    int curl_rc;       /* CURLcode */
} tsv_resp;

/* One request. headers: NULL-terminated list of "Name: value". body may be
 * NULL (no body). Returns 0 when a response arrived. */
int tsv_http(const char *method, int port, const char *path, const char *const *headers,
             const void *body, size_t len, tsv_resp *r);
void tsv_resp_free(tsv_resp *r);

/* The value of a response header (case-insensitive), copied to out; 0 if found. */
int tsv_header(const tsv_resp *r, const char *name, char *out, size_t outlen);

/* Waits (up to timeout seconds) until the server at port has received at
 * least n POST /predict requests, answered or still in flight, judging by
 * its /metrics. Returns 0 then, -1 on timeout. */
int tsv_wait_predicts(int port, int n, double timeout);

/* Encodes pixels (w*h*channels bytes, or 16-bit big-endian when bit_depth is
 * 16) as PNG; color_type as libpng's PNG_COLOR_TYPE_*. Palette images use a
 * grey ramp palette. Returns malloc'ed bytes. */
uint8_t *tsv_png(int w, int h, int color_type, int bit_depth, const uint8_t *pixels,
                 size_t *len);
/* 8-bit grey or RGB (channels 1 or 3) JPEG, quality 90. */
uint8_t *tsv_jpeg(int w, int h, int channels, const uint8_t *pixels, size_t *len);

/* A w x h grey gradient test face, malloc'ed. */
uint8_t *tsv_gradient(int w, int h, int channels);

/* Reads a whole file; NULL if absent. */
uint8_t *tsv_read_file(const char *path, size_t *len);

/* The shared data directory (../shared/data) if present, else NULL. */
const char *tsv_shared_data(void);

#endif
