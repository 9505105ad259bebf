/* model.c - nn_model life cycle, initialisation and metadata getters. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

void nn_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

float nn_rng_normal(uint64_t *s)
{
    /* Box-Muller; u1 in (0,1] so the log is finite */
    float u1 = 1.0f - nn_rng_uniform(s), u2 = nn_rng_uniform(s);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

/* Unique enough that a workspace planned for a freed model never takes a new
 * model at the same address for it: the address mixed with the time in ns. */
uint64_t nn_model_new_gen(const nn_model *m)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = (uint64_t)(uintptr_t)m ^ ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; /* murmur3 finaliser */
    return x;
}

nn_model *nn_model_alloc_from_arch(const char *json, char *err, size_t errlen)
{
    nn_model *m = calloc(1, sizeof *m);
    if (!m) { nn_set_err(err, errlen, "out of memory"); return NULL; }
    if (nn_arch_parse(m, json, err, errlen)) goto err;
    m->gen = nn_model_new_gen(m);
    m->arch_json = strdup(json);
    m->meta_json = strdup("{}");
    m->params = calloc(m->n_params ? m->n_params : 1, sizeof(float));
    if (!m->arch_json || !m->meta_json || !m->params) {
        nn_set_err(err, errlen, "out of memory for %zu parameters", m->n_params);
        goto err;
    }
    return m;
err:
    nn_model_free(m);
    return NULL;
}

/* He (Kaiming) normal initialisation for conv and dense weights, zero biases;
 * batch norm starts as the identity (gamma 1, beta 0, mean 0, var 1). */
void nn_model_init_params(nn_model *m, uint64_t seed)
{
    uint64_t rng = seed ^ 0x5DEECE66Dull;
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer *L = &m->layers[i];
        float *p = m->params + L->p_off;
        if (L->type == L_CONV || L->type == L_DENSE) {
            size_t fan_in = L->type == L_CONV ? (size_t)L->k * L->k * L->in_c : (size_t)L->in_c;
            size_t nw = L->p_count - L->out_c;
            float sd = sqrtf(2.0f / (float)fan_in);
            for (size_t j = 0; j < nw; j++) p[j] = sd * nn_rng_normal(&rng);
            memset(p + nw, 0, sizeof(float) * L->out_c);
        } else if (L->type == L_BN) {
            int C = L->in_c;
            for (int c = 0; c < C; c++) {
                p[c] = 1.0f;          /* gamma */
                p[C + c] = 0.0f;      /* beta */
                p[2 * C + c] = 0.0f;  /* running mean */
                p[3 * C + c] = 1.0f;  /* running var */
            }
        }
    }
}

int nn_model_from_arch_json(const char *json, uint64_t seed, nn_model **out,
                            char *err, size_t errlen)
{
    *out = NULL;
    if (!json) { nn_set_err(err, errlen, "architecture: no text"); return -1; }
    nn_model *m = nn_model_alloc_from_arch(json, err, errlen);
    if (!m) return -1;
    nn_model_init_params(m, seed);
    *out = m;
    return 0;
}

int nn_model_from_arch_file(const char *path, uint64_t seed, nn_model **out,
                            char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        nn_set_err(err, errlen, "cannot open architecture file %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        nn_set_err(err, errlen, "cannot read architecture file %s (larger than 1 MiB or unreadable)", path);
        return -1;
    }
    buf[n] = 0;
    char sub[256];
    int rc = nn_model_from_arch_json(buf, seed, out, sub, sizeof sub);
    if (rc) nn_set_err(err, errlen, "%s: %s", path, sub);
    free(buf);
    return rc;
}

nn_model *nn_model_clone(const nn_model *m)
{
    nn_model *c = malloc(sizeof *c);
    if (!c) return NULL;
    *c = *m;
    c->arch_json = strdup(m->arch_json);
    c->meta_json = strdup(m->meta_json);
    c->params = malloc(sizeof(float) * (m->n_params ? m->n_params : 1));
    if (!c->arch_json || !c->meta_json || !c->params) {
        nn_model_free(c);
        return NULL;
    }
    memcpy(c->params, m->params, sizeof(float) * m->n_params);
    c->gen = nn_model_new_gen(c);
    return c;
}

void nn_model_free(nn_model *m)
{
    if (!m) return;
    free(m->arch_json);
    free(m->meta_json);
    free(m->params);
    free(m);
}

const char *nn_model_arch_name(const nn_model *m) { return m->name; }
const char *nn_model_arch_json(const nn_model *m) { return m->arch_json; }
int nn_model_input_size(const nn_model *m) { return m->in_side; }
int nn_model_num_classes(const nn_model *m) { return m->num_classes; }
size_t nn_model_num_params(const nn_model *m) { return m->n_params; }
const char *nn_model_meta_json(const nn_model *m) { return m->meta_json; }

const char *nn_model_class_name(const nn_model *m, int i)
{
    return i >= 0 && i < m->num_classes ? m->class_names[i] : NULL;
}

float *nn_model_params(nn_model *m, size_t *n)
{
    m->gen++; /* the caller may write: workspaces must refold */
    if (n) *n = m->n_params;
    return m->params;
}

double nn_model_flops(const nn_model *m)
{
    double f = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer *L = &m->layers[i];
        if (L->type == L_CONV)
            f += 2.0 * L->out_h * L->out_w * L->out_c * (double)L->k * L->k * L->in_c;
        else if (L->type == L_DENSE)
            f += 2.0 * L->out_c * (double)L->in_c;
    }
    return f;
}

int nn_model_set_meta_json(nn_model *m, const char *json, char *err, size_t errlen)
{
    char *copy = strdup(json ? json : "{}");
    if (!copy) { nn_set_err(err, errlen, "out of memory"); return -1; }
    free(m->meta_json);
    m->meta_json = copy;
    return 0;
}

void nn_normalize_u8(const nn_model *m, const uint8_t *pixels, size_t n, float *out)
{
    const float a = m->in_scale / m->in_std, s = -m->in_mean / m->in_std;
    for (size_t i = 0; i < n; i++) out[i] = pixels[i] * a + s;
}

uint32_t nn_crc32(uint32_t crc, const void *data, size_t len)
{
    /* CRC-32 (IEEE polynomial, the values zlib gives), bit by bit: about
     * 100 MB/s, plenty for model files of a few MB. */
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}
