/* admin_samples.c - POST /samples: the image in any body form /predict takes
 * (raw image with ?label=, multipart fields "image" and "label", JSON
 * {"image": base64, "label"}), then samples.c stores it. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "base64.h"
#include "multipart.h"
#include "samples.h"

static void media_type(const char *ct, char *out, size_t outlen)
{
    size_t o = 0;
    while (*ct == ' ' || *ct == '\t') ct++;
    for (; *ct && *ct != ';' && *ct != ' ' && o + 1 < outlen; ct++)
        out[o++] = (char)(*ct >= 'A' && *ct <= 'Z' ? *ct + 32 : *ct);
    out[o] = '\0';
}

/* {"image": "<base64 or data URL>", "label": "..."}; returns 0 or fails out. */
static int from_json(const admin_request *q, uint8_t **img, size_t *len, char *label,
                     size_t labellen, admin_response *out)
{
    json_error_t je;
    json_t *root = json_loadb((const char *)q->body, q->len, 0, &je);
    json_t *im = json_object_get(root, "image"), *lb = json_object_get(root, "label");
    int rc = -1;
    if (!root) {
        admin_fail(out, 400, "invalid_json", "the body is not valid JSON");
        goto out;
    }
    if (!json_is_string(im)) {
        admin_fail(out, 400, "missing_field", "the JSON body needs \"image\" (base64) and \"label\"");
        goto out;
    }
    if (lb && !json_is_string(lb)) {
        admin_fail(out, 400, "invalid_label", "\"label\" must be a string");
        goto out;
    }
    snprintf(label, labellen, "%s", lb ? json_string_value(lb) : "");
    const char *s = json_string_value(im);
    size_t n = json_string_length(im);
    if (!strncmp(s, "data:", 5)) {
        const char *comma = memchr(s, ',', n);
        if (!comma) {
            admin_fail(out, 400, "invalid_base64", "a data URL must be base64-encoded");
            goto out;
        }
        n -= (size_t)(comma + 1 - s);
        s = comma + 1;
    }
    *img = malloc(b64_decoded_max(n) + 1);
    if (!*img) {
        admin_fail(out, 503, "out_of_memory", "out of memory");
        goto out;
    }
    if (b64_decode(s, n, *img, len)) {
        admin_fail(out, 400, "invalid_base64", "\"image\" is not valid base64");
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* Two parsers over the same bytes: each keeps one field. */
static int from_multipart(const admin_request *q, uint8_t **img, size_t *len, char *label,
                          size_t labellen, admin_response *out)
{
    char boundary[MP_MAX_BOUNDARY + 1];
    if (mp_boundary_from_content_type(q->content_type, boundary, sizeof boundary)) {
        admin_fail(out, 400, "invalid_multipart", "multipart/form-data needs a valid boundary");
        return -1;
    }
    mp_parser *pi = malloc(sizeof *pi), *pl = malloc(sizeof *pl);
    int rc = -1;
    if (!pi || !pl) {
        admin_fail(out, 503, "out_of_memory", "out of memory");
        goto out_free;
    }
    mp_init(pi, boundary, "image", q->len);
    mp_init(pl, boundary, "label", 64);
    mp_feed(pi, q->body, q->len);
    mp_feed(pl, q->body, q->len);
    int ri = mp_finish(pi), rl = mp_finish(pl);
    if (ri != MP_OK) {
        admin_fail(out, 400, mp_strerror_code(ri),
                   ri == MP_E_MISSING_FIELD ? "the multipart body has no field \"image\""
                                            : "the multipart/form-data body is malformed");
        goto out;
    }
    if (rl == MP_OK) snprintf(label, labellen, "%.*s", (int)pl->len, (const char *)pl->data);
    else if (rl != MP_E_MISSING_FIELD) {
        admin_fail(out, 400, "invalid_label", "the \"label\" field is malformed or too long");
        goto out;
    }
    *img = mp_take_data(pi, len);
    rc = 0;
out:
    mp_free(pi);
    mp_free(pl);
out_free:
    free(pi);
    free(pl);
    return rc;
}

void admin_post_samples(admin_api *a, const admin_request *q, admin_response *out)
{
    const svc_config *cfg = a->d.cfg;
    char mt[64], label[80] = "";
    uint8_t *owned = NULL;
    const uint8_t *img = q->body;
    size_t len = q->len;
    media_type(q->content_type ? q->content_type : "", mt, sizeof mt);
    if (!strcmp(mt, "application/json")) {
        if (from_json(q, &owned, &len, label, sizeof label, out)) goto out;
        img = owned;
    } else if (!strcmp(mt, "multipart/form-data")) {
        if (from_multipart(q, &owned, &len, label, sizeof label, out)) goto out;
        img = owned;
    } else if (strcmp(mt, "image/png") && strcmp(mt, "image/jpeg") && strcmp(mt, "image/jpg") &&
               strcmp(mt, "application/octet-stream")) {
        admin_fail(out, 415, "unsupported_media_type",
                   "send the image as image/png or image/jpeg (with ?label=), multipart/form-data "
                   "(fields \"image\" and \"label\") or application/json");
        goto out;
    }
    if (!label[0] && q->label) snprintf(label, sizeof label, "%s", q->label);
    img_limits lim = {cfg->max_image_width, cfg->max_image_height, cfg->max_image_pixels};
    sample_result r;
    samples_store(cfg->data_dir, img, len, label[0] ? label : NULL, &lim, &r);
    if (r.code) {
        admin_fail(out, r.status, r.code, r.message);
        goto out;
    }
    json_t *j = json_pack("{s:s,s:s,s:b}", "id", r.id, "label", r.label, "duplicate", r.duplicate);
    out->status = j ? r.status : 503;
    out->body = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
out:
    free(owned);
}
