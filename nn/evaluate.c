/* evaluate.c - accuracy and confusion matrix of a model over a dataset,
 * split across threads (each with its own workspace). */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "train.h"

int nn_evaluate(const nn_model *m, const uint8_t *pixels, const uint8_t *labels, int n,
                int tta, int threads, int *confusion, float *probs_out,
                char *err, size_t errlen)
{
    const int K = m->num_classes, B = 64;
    const size_t per = (size_t)m->in_side * m->in_side;
    int failed = 0;
    if (threads < 1) threads = 1;
    memset(confusion, 0, sizeof(int) * K * K);
    openblas_set_num_threads(1);
    #pragma omp parallel num_threads(threads)
    {
        nn_ws *ws = nn_ws_create(m, B);
        float *probs = malloc(sizeof(float) * B * K);
        int *conf = calloc((size_t)K * K, sizeof(int));
        if (!ws || !probs || !conf) {
            #pragma omp atomic write
            failed = 1;
        }
        /* every thread must reach the worksharing loop, even one that failed */
        #pragma omp for schedule(dynamic, 1)
        for (int b0 = 0; b0 < n; b0 += B) {
            if (!ws || !probs || !conf) continue;
            {
                int nb = n - b0 < B ? n - b0 : B;
                nn_predict_u8(m, ws, pixels + (size_t)b0 * per, nb, tta, probs);
                for (int i = 0; i < nb; i++) {
                    const float *p = probs + (size_t)i * K;
                    int best = 0;
                    for (int k = 1; k < K; k++) if (p[k] > p[best]) best = k;
                    conf[labels[b0 + i] * K + best]++;
                    if (probs_out) memcpy(probs_out + (size_t)(b0 + i) * K, p, sizeof(float) * K);
                }
            }
        }
        #pragma omp critical
        for (int i = 0; conf && i < K * K; i++) confusion[i] += conf[i];
        free(conf);
        free(probs);
        nn_ws_free(ws);
    }
    if (failed) {
        nn_set_err(err, errlen, "out of memory for the evaluation workspaces");
        return -1;
    }
    return 0;
}

double nn_confusion_accuracy(const int *confusion, int K)
{
    long ok = 0, all = 0;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            all += confusion[i * K + j];
            if (i == j) ok += confusion[i * K + j];
        }
    return all ? (double)ok / all : 0;
}
