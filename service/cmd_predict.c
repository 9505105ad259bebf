/* cmd_predict.c - `emotiond predict`: classify image files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "image.h"
#include "nn.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: emotiond predict --model FILE [--tta flip] IMAGE...\n"
               "\n"
               "Prints the most likely emotion and the probability of each class for\n"
               "every PNG or JPEG given (a face crop; any size and colour).\n");
}

int cmd_predict(int argc, char **argv)
{
    const char *model_path = NULL;
    int tta = NN_TTA_NONE, n_img = 0;
    char **imgs = calloc(argc > 0 ? argc : 1, sizeof *imgs);
    if (!imgs) return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); free(imgs); return 0; }
        if (!strcmp(argv[i], "--model") && i + 1 < argc) { model_path = argv[++i]; continue; }
        if (!strcmp(argv[i], "--tta") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(v, "flip")) tta = NN_TTA_FLIP;
            else if (strcmp(v, "none")) { fprintf(stderr, "emotiond predict: --tta must be flip or none\n"); free(imgs); return 2; }
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "emotiond predict: unknown option or missing value: %s\n", argv[i]);
            free(imgs);
            return 2;
        }
        imgs[n_img++] = argv[i];
    }
    if (!model_path || n_img == 0) {
        fprintf(stderr, "emotiond predict: --model and at least one image are required\n");
        usage(stderr);
        free(imgs);
        return 2;
    }
    char err[1024];
    nn_model *m = NULL;
    if (nn_model_load(model_path, &m, err, sizeof err)) {
        fprintf(stderr, "emotiond predict: %s\n", err);
        free(imgs);
        return 1;
    }
    const int S = nn_model_input_size(m), K = nn_model_num_classes(m);
    nn_ws *ws = nn_ws_create(m, 1);
    uint8_t *px = malloc((size_t)S * S);
    float probs[64];
    int failures = 0;
    img_limits lim;
    img_limits_default(&lim);
    for (int i = 0; ws && px && i < n_img; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        if (img_read_file(imgs[i], 64u << 20, &data, &len, err, sizeof err) ||
            img_decode_gray_resized(data, len, &lim, S, S, px, NULL, NULL, err, sizeof err)) {
            fprintf(stderr, "%s: error: %s\n", imgs[i], err);
            failures++;
            free(data);
            continue;
        }
        free(data);
        nn_predict_u8(m, ws, px, 1, tta, probs);
        int best = 0;
        for (int k = 1; k < K; k++) if (probs[k] > probs[best]) best = k;
        printf("%s: %s %.3f  (", imgs[i], nn_model_class_name(m, best), probs[best]);
        for (int k = 0; k < K; k++) printf("%s%s %.3f", k ? ", " : "", nn_model_class_name(m, k), probs[k]);
        printf(")\n");
    }
    if (!ws || !px) { fprintf(stderr, "emotiond predict: out of memory\n"); failures++; }
    free(px);
    nn_ws_free(ws);
    nn_model_free(m);
    free(imgs);
    return failures ? 1 : 0;
}
