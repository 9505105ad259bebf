/* cmd_predict.c - `emotiond predict`: classify image files. A face crop
 * gives one line; a photo gives one line per face found (see --faces). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_help.h"
#include "commands.h"
#include "face_detect.h"
#include "image.h"
#include "nn.h"

#define DEFAULT_CASCADE "models/haarcascade_frontalface_default.fdc"
/* faces=auto: images with both sides up to this are face crops (the
 * service's face_crop_max_side default). */
#define CROP_MAX_SIDE 128

enum { F_AUTO, F_DETECT, F_NONE };

void cmd_predict_usage(FILE *f)
{
    char text[512];
    fprintf(f, "usage: emotiond predict --model FILE [options] IMAGE...\n\n");
    snprintf(text, sizeof text,
             "Prints the most likely emotion and the probability of each class for every PNG "
             "or JPEG given. A face crop (any colour; auto: both sides up to %d pixels) gives "
             "one line; in a photo the faces are found first and each gives a line with its "
             "box, largest first. The exit status is 1 when an image could not be read.",
             CROP_MAX_SIDE);
    help_paragraph(f, text);
    fputs("\nOptions:\n", f);
    help_option(f, "--model FILE", "the model (.emod) (required)");
    help_option(f, "--faces auto|detect|none",
                "auto: find faces unless the image is a face crop; detect: always; none: "
                "classify every image as one face crop [auto]");
    help_option(f, "--cascade FILE", "face detector cascade [" DEFAULT_CASCADE "]");
    help_option(f, "--max-faces N", "classify at most the N largest faces, 1 to 10000 [16]");
    help_option(f, "--tta MODE", "none, flip, crops or flip+crops (see emotiond eval --help) [none]");
    help_option(f, "--precision fp32|int8|fp16", "int8: 8-bit arithmetic with AVX-512 VNNI; fp16: "
                "filters in half floats (AVX2 + F16C); fp32 on a CPU without what they need "
                "(see emotiond eval --help) [fp32]");
    help_option(f, "-h, --help", "print this help and exit");
}

static void print_probs(const nn_model *m, const float *probs)
{
    int K = nn_model_num_classes(m), best = 0;
    for (int k = 1; k < K; k++)
        if (probs[k] > probs[best]) best = k;
    printf("%s %.3f  (", nn_model_class_name(m, best), probs[best]);
    for (int k = 0; k < K; k++) printf("%s%s %.3f", k ? ", " : "", nn_model_class_name(m, k), probs[k]);
    printf(")\n");
}

/* One photo: a line per face. Returns 0, or -1 with a message in err. */
static int predict_photo(const char *name, const nn_model *m, nn_ws *ws, int tta,
                         const fd_cascade *c, int max_faces, const uint8_t *gray, int w, int h,
                         char *err, size_t errlen)
{
    const int S = nn_model_input_size(m);
    fd_box *boxes = NULL;
    int n = 0;
    uint8_t *px = malloc((size_t)S * S);
    float probs[64];
    if (!px || fd_detect(c, NULL, gray, w, h, &boxes, &n, err, errlen)) {
        if (!px) snprintf(err, errlen, "out of memory");
        free(px);
        return -1;
    }
    if (!n) printf("%s: no face found (%dx%d)\n", name, w, h);
    if (n > max_faces) n = max_faces;
    for (int i = 0; i < n; i++) {
        const fd_box *b = &boxes[i];
        if (fd_crop_face(gray, w, h, b, FD_FER_MARGIN, px, S) ||
            nn_predict_u8(m, ws, px, 1, tta, probs)) {
            snprintf(err, errlen, "out of memory classifying face %d", i + 1);
            free(px);
            free(boxes);
            return -1;
        }
        printf("%s: face %d/%d at x=%d y=%d w=%d h=%d: ", name, i + 1, n, b->x, b->y, b->w, b->h);
        print_probs(m, probs);
    }
    free(px);
    free(boxes);
    return 0;
}

int cmd_predict(int argc, char **argv)
{
    const char *model_path = NULL, *cascade_path = NULL;
    int tta = NN_TTA_NONE, n_img = 0, faces = F_AUTO, max_faces = 16,
        precision = NN_PRECISION_FP32;
    char **imgs = calloc(argc > 0 ? argc : 1, sizeof *imgs);
    if (!imgs) return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { cmd_predict_usage(stdout); free(imgs); return 0; }
        if (!strcmp(argv[i], "--model") && i + 1 < argc) { model_path = argv[++i]; continue; }
        if (!strcmp(argv[i], "--cascade") && i + 1 < argc) { cascade_path = argv[++i]; continue; }
        if (!strcmp(argv[i], "--tta") && i + 1 < argc) {
            const char *v = argv[++i];
            tta = nn_tta_parse(v);
            if (tta < 0) { fprintf(stderr, "emotiond predict: --tta must be none, flip, crops or flip+crops\n"); free(imgs); return 2; }
            continue;
        }
        if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            precision = nn_precision_parse(argv[++i]);
            if (precision < 0) { fprintf(stderr, "emotiond predict: --precision must be fp32, int8 or fp16\n"); free(imgs); return 2; }
            continue;
        }
        if (!strcmp(argv[i], "--faces") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(v, "auto")) faces = F_AUTO;
            else if (!strcmp(v, "detect")) faces = F_DETECT;
            else if (!strcmp(v, "none")) faces = F_NONE;
            else { fprintf(stderr, "emotiond predict: --faces must be auto, detect or none\n"); free(imgs); return 2; }
            continue;
        }
        if (!strcmp(argv[i], "--max-faces") && i + 1 < argc) {
            char *end = NULL;
            long k = strtol(argv[++i], &end, 10);
            if (*end || k < 1 || k > 10000) { fprintf(stderr, "emotiond predict: --max-faces must be from 1 to 10000\n"); free(imgs); return 2; }
            max_faces = (int)k;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            static const char *const known[] = {"--model", "--cascade", "--tta", "--faces",
                                                "--max-faces", "--precision"};
            int is_known = 0;
            for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
                is_known |= !strcmp(argv[i], known[k]);
            if (is_known)
                fprintf(stderr, "emotiond predict: %s needs a value\n", argv[i]);
            else
                fprintf(stderr, "emotiond predict: unknown option '%s' (see emotiond predict "
                                "--help)\n", argv[i]);
            free(imgs);
            return 2;
        }
        imgs[n_img++] = argv[i];
    }
    if (!model_path || n_img == 0) {
        fprintf(stderr, "emotiond predict: --model and at least one image are required\n");
        cmd_predict_usage(stderr);
        free(imgs);
        return 2;
    }
    char err[1024];
    nn_model *m = NULL;
    fd_cascade *cascade = NULL;
    if (nn_model_load(model_path, &m, err, sizeof err)) {
        fprintf(stderr, "emotiond predict: %s\n", err);
        free(imgs);
        return 1;
    }
    if (nn_model_set_precision(m, (nn_precision)precision) != (nn_precision)precision)
        fprintf(stderr, "emotiond predict: warning: %s needs a CPU with %s; predicting in %s\n",
                nn_precision_name(precision), nn_precision_needs((nn_precision)precision),
                nn_precision_name(nn_model_precision(m)));
    if (faces != F_NONE &&
        fd_cascade_load(cascade_path ? cascade_path : DEFAULT_CASCADE, &cascade, err, sizeof err)) {
        /* Asked for explicitly, a missing detector is an error; by default
         * the images are simply taken as face crops, as before detection. */
        if (cascade_path || faces == F_DETECT) {
            fprintf(stderr, "emotiond predict: %s\n", err);
            nn_model_free(m);
            free(imgs);
            return 1;
        }
        fprintf(stderr, "emotiond predict: warning: %s; images are classified as face crops\n", err);
    }
    const int S = nn_model_input_size(m);
    nn_ws *ws = nn_ws_create(m, 2);
    uint8_t *px = malloc((size_t)S * S);
    float probs[64];
    int failures = 0;
    img_limits lim;
    img_limits_default(&lim);
    for (int i = 0; ws && px && i < n_img; i++) {
        uint8_t *data = NULL, *gray = NULL;
        size_t len = 0;
        int w = 0, h = 0;
        if (img_read_file(imgs[i], 64u << 20, &data, &len, err, sizeof err)) goto fail;
        if (cascade) {
            if (img_decode_gray(data, len, &lim, &gray, &w, &h, err, sizeof err)) goto fail;
            if (faces == F_DETECT || w > CROP_MAX_SIDE || h > CROP_MAX_SIDE) {
                if (predict_photo(imgs[i], m, ws, tta, cascade, max_faces, gray, w, h, err,
                                  sizeof err))
                    goto fail;
                goto next;
            }
        }
        if (img_decode_gray_resized(data, len, &lim, S, S, px, NULL, NULL, err, sizeof err))
            goto fail;
        nn_predict_u8(m, ws, px, 1, tta, probs);
        printf("%s: ", imgs[i]);
        print_probs(m, probs);
        goto next;
    fail:
        fprintf(stderr, "%s: error: %s\n", imgs[i], err);
        failures++;
    next:
        free(data);
        free(gray);
    }
    if (!ws || !px) { fprintf(stderr, "emotiond predict: out of memory\n"); failures++; }
    free(px);
    nn_ws_free(ws);
    nn_model_free(m);
    fd_cascade_free(cascade);
    free(imgs);
    return failures ? 1 : 0;
}
