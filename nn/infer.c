/* infer.c - inference: workspace and forward pass in inference mode. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static size_t col_rows_for(const nn_model *m, int batch)
{
    size_t rows = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer *L = &m->layers[i];
        if (L->type != L_CONV) continue;
        size_t r = nn_conv_chunk_images(L, batch) * L->out_h * L->out_w;
        if (r > rows) rows = r;
    }
    return rows;
}

nn_ws *nn_ws_create(const nn_model *m, int max_batch)
{
    if (max_batch < 1) return NULL;
    nn_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->max_batch = max_batch;
    size_t act = (size_t)max_batch * m->max_act;
    ws->buf[0] = malloc(sizeof(float) * act);
    ws->buf[1] = malloc(sizeof(float) * act);
    ws->col_rows = col_rows_for(m, max_batch);
    ws->col = malloc(sizeof(float) * (ws->col_rows * m->max_col_k + 1));
    ws->x = malloc(sizeof(float) * (size_t)max_batch * m->in_side * m->in_side * m->in_c);
    ws->logits = malloc(sizeof(float) * (size_t)max_batch * m->num_classes);
    if (!ws->buf[0] || !ws->buf[1] || !ws->col || !ws->x || !ws->logits ||
        nn_plan_refresh(m, ws)) {
        nn_ws_free(ws);
        return NULL;
    }
    return ws;
}

void nn_ws_free(nn_ws *ws)
{
    if (!ws) return;
    free(ws->buf[0]);
    free(ws->buf[1]);
    free(ws->col);
    free(ws->x);
    free(ws->logits);
    free(ws->fold);
    free(ws);
}

/* One plan step. Returns the output pointer. */
static const float *step_infer(const nn_model *m, const nn_step *st, const float *in,
                               float *out, int B, nn_ws *ws)
{
    const nn_layer *L = st->L;
    const float *p = m->params + L->p_off;
    const size_t n = L->out_size * B;
    switch (L->type) {
    case L_CONV:
        conv_forward(L, in, st->W, NULL, out, B, ws->col);
        if (!st->defer) bias_act(out, st->b, n / L->out_c, L->out_c, st->relu);
        return out;
    case L_DENSE:
        dense_forward(in, st->W, st->b, out, B, L->in_c, L->out_c);
        if (st->relu) relu_forward(out, out, n);
        return out;
    case L_BN: {
        const int C = L->in_c;
        bn_forward_infer(in, out, p, p + C, p + 2 * C, p + 3 * C, n / C, C, L->eps);
        return out;
    }
    case L_RELU: relu_forward(in, out, n); return out;
    case L_ELU: elu_forward(in, out, n); return out;
    case L_MAXPOOL:
        if (st->pool_bias || st->relu)
            maxpool_bias_act(L, in, out, st->pool_bias, st->relu, B);
        else
            maxpool_forward(L, in, out, NULL, B);
        return out;
    case L_GAP: gap_forward(L, in, out, B); return out;
    case L_DROPOUT:
    case L_FLATTEN:
        return in; /* not in plans */
    }
    return in;
}

int nn_forward_logits(const nn_model *m, nn_ws *ws, const float *x, int batch, float *logits)
{
    if (batch < 1 || batch > ws->max_batch) return -1;
    if (nn_plan_refresh(m, ws)) return -1;
    const unsigned fpu = nn_fpu_enter();
    const float *cur = x;
    int which = 0;
    for (int i = 0; i < ws->n_steps; i++) {
        float *out = ws->buf[which];
        const float *next = step_infer(m, &ws->steps[i], cur, out, batch, ws);
        if (next == out) which ^= 1;
        cur = next;
    }
    memcpy(logits, cur, sizeof(float) * (size_t)batch * m->num_classes);
    nn_fpu_leave(fpu);
    return 0;
}

int nn_predict_u8(const nn_model *m, nn_ws *ws, const uint8_t *pixels, int batch,
                  int tta, float *probs)
{
    if (batch < 1 || batch > ws->max_batch) return -1;
    const int S = m->in_side, K = m->num_classes;
    const size_t per = (size_t)S * S;
    nn_normalize_u8(m, pixels, per * batch, ws->x);
    if (nn_forward_logits(m, ws, ws->x, batch, ws->logits)) return -1;
    softmax_rows(ws->logits, probs, batch, K);
    if (tta & NN_TTA_FLIP) {
        /* mirror each row in place, run again, average the probabilities */
        for (size_t r = 0; r < (size_t)batch * S; r++) {
            float *row = ws->x + r * S;
            for (int a = 0, b = S - 1; a < b; a++, b--) {
                float t = row[a]; row[a] = row[b]; row[b] = t;
            }
        }
        if (nn_forward_logits(m, ws, ws->x, batch, ws->logits)) return -1;
        float tmp[NN_MAX_CLASSES];
        for (int b = 0; b < batch; b++) {
            softmax_rows(ws->logits + (size_t)b * K, tmp, 1, K);
            for (int k = 0; k < K; k++) probs[b * K + k] = 0.5f * (probs[b * K + k] + tmp[k]);
        }
    }
    return 0;
}
