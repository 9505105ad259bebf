/* average.c - weight averaging (SWA) and batch-norm recalibration.
 *
 * Stochastic weight averaging (Izmailov et al., 2018) averages the weights of
 * snapshots taken along one training run at a constant or cyclic learning
 * rate: the mean lies nearer the centre of the flat region SGD wanders in,
 * which generalises better than any one snapshot, at no inference cost. The
 * averaged weights no longer match the batch-norm running statistics of any
 * snapshot (the statistics of a mean network are not the mean of the
 * statistics), so they are measured again on training images. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "train.h"
#include "trainer_internal.h"
#include "util.h"

int nn_model_average(nn_model *const *models, int n, nn_model **out, char *err, size_t errlen)
{
    *out = NULL;
    if (n < 1) {
        nn_set_err(err, errlen, "average: no model given");
        return -1;
    }
    for (int i = 1; i < n; i++) {
        if (models[i]->n_params != models[0]->n_params ||
            strcmp(models[i]->arch_json, models[0]->arch_json)) {
            nn_set_err(err, errlen, "average: model %d has another architecture than model 1 "
                                    "(%s, %zu parameters vs %s, %zu): only snapshots of one "
                                    "architecture can be averaged",
                       i + 1, models[i]->name, models[i]->n_params, models[0]->name,
                       models[0]->n_params);
            return -1;
        }
    }
    const size_t np = models[0]->n_params;
    double *sum = calloc(np ? np : 1, sizeof *sum);
    nn_model *m = nn_model_clone(models[0]);
    if (!sum || !m) {
        free(sum);
        nn_model_free(m);
        nn_set_err(err, errlen, "average: out of memory for %zu parameters", np);
        return -1;
    }
    /* in double: twenty float snapshots summed in float lose the low bits */
    for (int i = 0; i < n; i++) {
        const float *p = models[i]->params;
        for (size_t j = 0; j < np; j++) sum[j] += p[j];
    }
    for (size_t j = 0; j < np; j++) m->params[j] = (float)(sum[j] / n);
    free(sum);
    m->gen++; /* new weights: inference workspaces refold */
    *out = m;
    return 0;
}

int nn_bn_recalibrate(nn_model *m, const uint8_t *pixels, int n, int batch, char *err,
                      size_t errlen)
{
    if (n < 1 || batch < 1) {
        nn_set_err(err, errlen, "batch-norm recalibration: no images");
        return -1;
    }
    if (batch > n) batch = n;
    /* The trainer's forward pass in training mode computes each batch's
     * statistics and folds them into the running ones with the layer's
     * momentum; a momentum of 1/(k+1) at batch k makes the running value the
     * plain mean over every batch so far (PyTorch's momentum=None). */
    float saved_momentum[NN_MAX_LAYERS];
    for (int i = 0; i < m->n_layers; i++) saved_momentum[i] = m->layers[i].momentum;
    nn_optim_cfg cfg;
    nn_optim_cfg_default(&cfg, NN_OPT_SGD);
    const size_t per = (size_t)m->in_side * m->in_side * m->in_c;
    nn_trainer *t = nn_trainer_create(m, batch, &cfg, 1);
    float *x = malloc((size_t)batch * per * sizeof *x);
    int rc = -1;
    if (!t || !x) {
        nn_set_err(err, errlen, "batch-norm recalibration: out of memory");
        goto out;
    }
    for (int k = 0, off = 0; off + batch <= n; k++, off += batch) {
        for (int i = 0; i < m->n_layers; i++)
            if (m->layers[i].type == L_BN) m->layers[i].momentum = 1.0f / (float)(k + 1);
        nn_normalize_u8(m, pixels + (size_t)off * per, (size_t)batch * per, x);
        nn_train_forward_stats(t, x, batch);
    }
    rc = 0;
out:
    for (int i = 0; i < m->n_layers; i++) m->layers[i].momentum = saved_momentum[i];
    free(x);
    nn_trainer_free(t);
    return rc;
}
