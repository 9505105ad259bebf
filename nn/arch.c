/* arch.c - architecture JSON -> layer list, shapes and parameter layout.
 *
 * Architectures are data: config/arch/NAME.json. The text is stored inside
 * every model file, so a model always carries the description it was built
 * from. See nn/ARCH.md for the format. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "internal.h"

static const char *const default_classes[] = {
    "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"
};

static int get_num(json_t *obj, const char *key, double def, double *out, int li,
                   char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (!v) { *out = def; return 0; }
    if (!json_is_number(v)) {
        nn_set_err(err, errlen, "architecture: layer %d: '%s' must be a number", li, key);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

static int parse_input(nn_model *m, json_t *root, char *err, size_t errlen)
{
    json_t *in = json_object_get(root, "input");
    double side = 48, ch = 1, scale = 1.0 / 255.0, mean = 0, std = 1;
    if (in) {
        if (!json_is_object(in)) { nn_set_err(err, errlen, "architecture: 'input' must be an object"); return -1; }
        if (get_num(in, "size", 48, &side, -1, err, errlen) ||
            get_num(in, "channels", 1, &ch, -1, err, errlen) ||
            get_num(in, "scale", 1.0 / 255.0, &scale, -1, err, errlen) ||
            get_num(in, "mean", 0, &mean, -1, err, errlen) ||
            get_num(in, "std", 1, &std, -1, err, errlen))
            return -1;
    }
    if (side < 4 || side > 1024 || side != floor(side) || ch != 1 || std <= 0) {
        nn_set_err(err, errlen, "architecture: input must be a square of 4..1024 pixels, 1 channel, std > 0");
        return -1;
    }
    m->in_side = (int)side;
    m->in_c = 1;
    m->in_scale = (float)scale;
    m->in_mean = (float)mean;
    m->in_std = (float)std;

    json_t *cls = json_object_get(root, "classes");
    if (cls) {
        size_t n = json_array_size(cls);
        if (!json_is_array(cls) || n < 2 || n > NN_MAX_CLASSES) {
            nn_set_err(err, errlen, "architecture: 'classes' must be an array of 2..%d names", NN_MAX_CLASSES);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            const char *s = json_string_value(json_array_get(cls, i));
            if (!s || !*s || strlen(s) >= sizeof m->class_names[0]) {
                nn_set_err(err, errlen, "architecture: class %zu must be a name of 1..31 characters", i);
                return -1;
            }
            strcpy(m->class_names[i], s);
        }
        m->num_classes = (int)n;
    } else {
        m->num_classes = 7;
        for (int i = 0; i < 7; i++) strcpy(m->class_names[i], default_classes[i]);
    }
    return 0;
}

/* Sets the output shape and parameter count of layer L from its input. */
static int shape_layer(nn_layer *L, json_t *spec, int li, char *err, size_t errlen)
{
    double v;
    L->out_h = L->in_h; L->out_w = L->in_w; L->out_c = L->in_c;
    L->p_count = 0;
    switch (L->type) {
    case L_CONV: {
        double filters, k;
        if (get_num(spec, "filters", 0, &filters, li, err, errlen) ||
            get_num(spec, "kernel", 3, &k, li, err, errlen) ||
            get_num(spec, "l2", 0, &v, li, err, errlen))
            return -1;
        if (filters < 1 || filters > 4096 || k < 1 || k > 15) {
            nn_set_err(err, errlen, "architecture: layer %d: conv needs 1..4096 filters and a kernel of 1..15", li);
            return -1;
        }
        L->l2 = (float)v;
        L->k = (int)k;
        const char *pad = json_string_value(json_object_get(spec, "padding"));
        if (!pad || !strcmp(pad, "same")) {
            L->pad = (L->k - 1) / 2; /* the rest (k-1-pad) goes after, as TF/PyTorch do */
        } else if (!strcmp(pad, "valid")) {
            L->pad = -1; /* marker, fixed below */
        } else {
            nn_set_err(err, errlen, "architecture: layer %d: padding must be \"same\" or \"valid\"", li);
            return -1;
        }
        L->out_c = (int)filters;
        if (L->pad < 0) {
            L->pad = 0;
            L->out_h = L->in_h - L->k + 1;
            L->out_w = L->in_w - L->k + 1;
        }
        L->p_count = (size_t)L->out_c * L->k * L->k * L->in_c + L->out_c;
        break;
    }
    case L_BN:
        if (get_num(spec, "eps", 1e-5, &v, li, err, errlen)) return -1;
        L->eps = (float)v;
        if (get_num(spec, "momentum", 0.1, &v, li, err, errlen)) return -1;
        L->momentum = (float)v;
        if (L->eps <= 0 || L->momentum < 0 || L->momentum > 1) {
            nn_set_err(err, errlen, "architecture: layer %d: batchnorm needs eps > 0 and momentum in [0,1]", li);
            return -1;
        }
        if (L->in_c > 4096) {
            nn_set_err(err, errlen, "architecture: layer %d: batchnorm supports at most 4096 channels", li);
            return -1;
        }
        L->p_count = 4 * (size_t)L->in_c;
        break;
    case L_MAXPOOL:
        L->out_h = L->in_h / 2;
        L->out_w = L->in_w / 2;
        break;
    case L_DROPOUT:
        if (get_num(spec, "rate", 0.5, &v, li, err, errlen)) return -1;
        if (v < 0 || v >= 1) {
            nn_set_err(err, errlen, "architecture: layer %d: dropout rate must be in [0,1)", li);
            return -1;
        }
        L->rate = (float)v;
        break;
    case L_FLATTEN:
        L->out_h = 1; L->out_w = 1; L->out_c = L->in_h * L->in_w * L->in_c;
        break;
    case L_GAP:
        L->out_h = 1; L->out_w = 1;
        break;
    case L_DENSE: {
        double units;
        if (get_num(spec, "units", 0, &units, li, err, errlen) ||
            get_num(spec, "l2", 0, &v, li, err, errlen))
            return -1;
        if (L->in_h != 1 || L->in_w != 1) {
            nn_set_err(err, errlen, "architecture: layer %d: dense needs a flat input (add flatten or gap before it)", li);
            return -1;
        }
        if (units < 1 || units > 65536) {
            nn_set_err(err, errlen, "architecture: layer %d: dense needs 1..65536 units", li);
            return -1;
        }
        L->l2 = (float)v;
        L->out_c = (int)units;
        L->p_count = (size_t)L->out_c * L->in_c + L->out_c;
        break;
    }
    case L_RELU:
    case L_ELU:
        break;
    }
    if (L->out_h < 1 || L->out_w < 1) {
        nn_set_err(err, errlen, "architecture: layer %d: the feature map shrinks to nothing", li);
        return -1;
    }
    return 0;
}

static int layer_type(const char *s, nn_layer_type *t)
{
    static const struct { const char *name; nn_layer_type t; } map[] = {
        {"conv", L_CONV}, {"batchnorm", L_BN}, {"relu", L_RELU}, {"elu", L_ELU},
        {"maxpool", L_MAXPOOL}, {"dropout", L_DROPOUT}, {"flatten", L_FLATTEN},
        {"gap", L_GAP}, {"dense", L_DENSE},
    };
    for (size_t i = 0; s && i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(s, map[i].name)) { *t = map[i].t; return 0; }
    return -1;
}

int nn_arch_parse(nn_model *m, const char *json, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr);
    int rc = -1;
    if (!root) {
        nn_set_err(err, errlen, "architecture: invalid JSON at line %d: %s", jerr.line, jerr.text);
        return -1;
    }
    if (!json_is_object(root)) {
        nn_set_err(err, errlen, "architecture: the top level must be an object");
        goto out;
    }
    const char *name = json_string_value(json_object_get(root, "name"));
    if (!name || !*name || strlen(name) >= NN_NAME_MAX) {
        nn_set_err(err, errlen, "architecture: 'name' must be a string of 1..%d characters", NN_NAME_MAX - 1);
        goto out;
    }
    strcpy(m->name, name);
    if (parse_input(m, root, err, errlen)) goto out;

    json_t *layers = json_object_get(root, "layers");
    size_t n = json_array_size(layers);
    if (!json_is_array(layers) || n == 0 || n > NN_MAX_LAYERS) {
        nn_set_err(err, errlen, "architecture: 'layers' must be an array of 1..%d layers", NN_MAX_LAYERS);
        goto out;
    }
    int h = m->in_side, w = m->in_side, c = m->in_c;
    size_t off = 0, max_act = (size_t)h * w * c, max_col = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *spec = json_array_get(layers, i);
        nn_layer *L = &m->layers[i];
        memset(L, 0, sizeof *L);
        if (!json_is_object(spec) ||
            layer_type(json_string_value(json_object_get(spec, "type")), &L->type)) {
            nn_set_err(err, errlen, "architecture: layer %zu: 'type' must be one of conv, batchnorm, relu, elu, maxpool, dropout, flatten, gap, dense", i);
            goto out;
        }
        L->in_h = h; L->in_w = w; L->in_c = c;
        if (shape_layer(L, spec, (int)i, err, errlen)) goto out;
        L->in_size = (size_t)h * w * c;
        L->out_size = (size_t)L->out_h * L->out_w * L->out_c;
        L->p_off = off;
        off += L->p_count;
        if (off > NN_MAX_PARAMS) { /* checked per layer: the sum cannot overflow */
            nn_set_err(err, errlen, "architecture: layer %zu takes the model past %zu "
                       "parameters, the most the engine accepts", i, NN_MAX_PARAMS);
            goto out;
        }
        if (L->out_size > max_act) max_act = L->out_size;
        if (L->type == L_CONV && (size_t)L->k * L->k * L->in_c > max_col)
            max_col = (size_t)L->k * L->k * L->in_c;
        h = L->out_h; w = L->out_w; c = L->out_c;
    }
    if (h != 1 || w != 1 || c != m->num_classes) {
        nn_set_err(err, errlen, "architecture: the last layer must output %d values (one per class), not %dx%dx%d",
                   m->num_classes, h, w, c);
        goto out;
    }
    if (max_act * 4096ull > (1ull << 34)) {
        nn_set_err(err, errlen, "architecture: activations too large");
        goto out;
    }
    m->n_layers = (int)n;
    m->n_params = off;
    m->max_act = max_act;
    m->max_col_k = max_col;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

size_t nn_conv_chunk_images(const nn_layer *L, int batch)
{
    size_t per = (size_t)L->out_h * L->out_w;
    size_t n = NN_COL_ROWS / per;
    if (n < 1) n = 1;
    if (n > (size_t)batch) n = (size_t)batch;
    return n;
}
