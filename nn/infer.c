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
    ws->view = malloc(sizeof(float) * (size_t)max_batch * m->in_side * m->in_side * m->in_c);
    ws->logits = malloc(sizeof(float) * (size_t)max_batch * m->num_classes);
    if (!ws->buf[0] || !ws->buf[1] || !ws->col || !ws->x || !ws->view || !ws->logits ||
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
    free(ws->view);
    free(ws->logits);
    free(ws->fold);
    free(ws->q8w);
    free(ws->q8in);
    free(ws->q8sc);
    free(ws->wino_w);
    free(ws->wino_h);
    free(ws->wino_scratch);
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
        if (st->q8) { /* bias and ReLU in its epilogue, unless deferred */
            nn_q8_forward(st, in, out, B, ws);
            return out;
        }
        if (st->wino_h && nn_wino_use(L, st->wino_m, B)) { /* as below, filters in halves */
            nn_wino_forward_f16(L, st->wino_m, in, st->wino_h, st->defer ? NULL : st->b,
                                !st->defer && st->relu, out, B, ws->wino_scratch);
            return out;
        }
        if (st->wino && nn_wino_use(L, st->wino_m, B)) { /* bias, ReLU: output transform */
            nn_wino_forward(L, st->wino_m, in, st->wino, st->defer ? NULL : st->b,
                            !st->defer && st->relu, out, B, ws->wino_scratch);
            return out;
        }
        if (conv_forward_c1(L, in, st->W, st->defer ? NULL : st->b, !st->defer && st->relu,
                            out, B) == 0)
            return out;
        conv_forward(L, in, st->W, NULL, out, B, ws->col);
        if (!st->defer) bias_act(out, st->b, n / L->out_c, L->out_c, st->relu);
        return out;
    case L_DENSE:
        if (st->q8) {
            nn_q8_forward(st, in, out, B, ws);
            return out;
        }
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

/* The plan on batch inputs x, logits out. */
static void run_plan(const nn_model *m, nn_ws *ws, const float *x, int batch, float *logits)
{
    const float *cur = x;
    int which = 0;
    for (int i = 0; i < ws->n_steps; i++) {
        float *out = ws->buf[which];
        const float *next = step_infer(m, &ws->steps[i], cur, out, batch, ws);
        if (next == out) which ^= 1;
        cur = next;
    }
    memcpy(logits, cur, sizeof(float) * (size_t)batch * m->num_classes);
}

int nn_forward_logits(const nn_model *m, nn_ws *ws, const float *x, int batch, float *logits)
{
    if (batch < 1 || batch > ws->max_batch) return -1;
    if (nn_plan_refresh(m, ws)) return -1;
    const unsigned fpu = nn_fpu_enter();
    /* int8 steps work image by image (one input scale each) and gain
     * nothing from a batch, while a batch's activations spill out of the
     * L2 cache between layers: a whole pass per image keeps them there */
    const int chunk = ws->plan_q8 ? NN_Q8_CHUNK : batch;
    const size_t in = m->layers[0].in_size;
    for (int b0 = 0; b0 < batch; b0 += chunk) {
        const int n = batch - b0 < chunk ? batch - b0 : chunk;
        run_plan(m, ws, x + (size_t)b0 * in, n, logits + (size_t)b0 * m->num_classes);
    }
    nn_fpu_leave(fpu);
    return 0;
}

/* indexed by the NN_TTA_* flag set */
static const char *const tta_names[] = {"none", "flip", "crops", "flip+crops"};

int nn_tta_parse(const char *name)
{
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, tta_names[i])) return i;
    return -1;
}

const char *nn_tta_name(int tta)
{
    return tta_names[tta & (NN_TTA_FLIP | NN_TTA_CROPS)];
}

/* view[b][y][x][c] = x[b][clamp(y - dy)][clamp(fx - dx)][c] with fx = x, or
 * side-1-x when flipped: one test-time view of the whole batch */
static void make_view(const float *x, float *view, int batch, int S, int C, int dx, int dy,
                      int flip)
{
    for (int b = 0; b < batch; b++) {
        const float *img = x + (size_t)b * S * S * C;
        float *out = view + (size_t)b * S * S * C;
        for (int y = 0; y < S; y++) {
            int sy = y - dy;
            sy = sy < 0 ? 0 : sy >= S ? S - 1 : sy;
            for (int xo = 0; xo < S; xo++) {
                int sx = (flip ? S - 1 - xo : xo) - dx;
                sx = sx < 0 ? 0 : sx >= S ? S - 1 : sx;
                memcpy(out + ((size_t)y * S + xo) * C, img + ((size_t)sy * S + sx) * C,
                       sizeof(float) * C);
            }
        }
    }
}

int nn_predict_u8(const nn_model *m, nn_ws *ws, const uint8_t *pixels, int batch,
                  int tta, float *probs)
{
    if (batch < 1 || batch > ws->max_batch) return -1;
    const int S = m->in_side, C = m->in_c, K = m->num_classes;
    nn_normalize_u8(m, pixels, (size_t)S * S * C * batch, ws->x);
    if (nn_forward_logits(m, ws, ws->x, batch, ws->logits)) return -1;
    softmax_rows(ws->logits, probs, batch, K);
    if (!(tta & (NN_TTA_FLIP | NN_TTA_CROPS))) return 0;
    /* every further view: its probabilities added, then the mean */
    static const int shifts[5][2] = {
        {0, 0}, {NN_TTA_SHIFT, 0}, {-NN_TTA_SHIFT, 0}, {0, NN_TTA_SHIFT}, {0, -NN_TTA_SHIFT}};
    const int n_shift = tta & NN_TTA_CROPS ? 5 : 1, n_flip = tta & NN_TTA_FLIP ? 2 : 1;
    float tmp[NN_MAX_CLASSES];
    for (int s = 0; s < n_shift; s++) {
        for (int f = 0; f < n_flip; f++) {
            if (s == 0 && f == 0) continue; /* the plain view, done above */
            make_view(ws->x, ws->view, batch, S, C, shifts[s][0], shifts[s][1], f);
            if (nn_forward_logits(m, ws, ws->view, batch, ws->logits)) return -1;
            for (int b = 0; b < batch; b++) {
                softmax_rows(ws->logits + (size_t)b * K, tmp, 1, K);
                for (int k = 0; k < K; k++) probs[b * K + k] += tmp[k];
            }
        }
    }
    const float inv = 1.0f / (float)(n_shift * n_flip);
    for (int i = 0; i < batch * K; i++) probs[i] *= inv;
    return 0;
}
