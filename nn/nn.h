/* nn.h - the emotiond CNN engine: a small public API over nn/.
 *
 * An nn_model holds an architecture (parsed from JSON, see config/arch/) and
 * all its parameters in one allocation. An nn_ws is the scratch memory of one
 * thread (activations for up to max_batch images); each worker of the service
 * owns its own nn_model copy (nn_model_clone) and its own nn_ws.
 *
 * Every function that can fail returns 0 on success and -1 on failure with a
 * message a user can act on written to err (errlen bytes; err may be NULL).
 * Nothing here aborts on bad input, and nothing here knows about HTTP.
 */
#ifndef NN_NN_H
#define NN_NN_H

#include <stddef.h>
#include <stdint.h>

typedef struct nn_model nn_model;
typedef struct nn_ws nn_ws;

/* ---- creation, files ---------------------------------------------------- */

/* A fresh model with He-initialised weights from an architecture JSON text
 * or file; seed makes it reproducible. */
int nn_model_from_arch_json(const char *json, uint64_t seed, nn_model **out,
                            char *err, size_t errlen);
int nn_model_from_arch_file(const char *path, uint64_t seed, nn_model **out,
                            char *err, size_t errlen);

/* Model file (see nn/model_file.c): magic, version, JSON header (architecture,
 * classes, input size and normalisation, training metadata), tensors, CRC32.
 * Load rejects truncated, corrupted or mismatched files. Save writes a
 * temporary file, fsyncs it and renames it over path. */
int nn_model_load(const char *path, nn_model **out, char *err, size_t errlen);
int nn_model_load_mem(const void *buf, size_t len, nn_model **out, char *err, size_t errlen);
int nn_model_save(const nn_model *m, const char *path, char *err, size_t errlen);

nn_model *nn_model_clone(const nn_model *m); /* NULL when out of memory */
void nn_model_free(nn_model *m);

/* ---- metadata ------------------------------------------------------------ */

const char *nn_model_arch_name(const nn_model *m);
const char *nn_model_arch_json(const nn_model *m);   /* the architecture as stored */
int nn_model_input_size(const nn_model *m);          /* side of the square input: 48 */
int nn_model_num_classes(const nn_model *m);         /* 7 */
const char *nn_model_class_name(const nn_model *m, int i);
size_t nn_model_num_params(const nn_model *m);       /* incl. BN running stats, as Keras counts */
double nn_model_flops(const nn_model *m);            /* forward FLOPs per image (2 per MAC) */
/* Training metadata as a JSON object text ("{}" when none): dataset, epochs,
 * best validation accuracy, date, ... */
const char *nn_model_meta_json(const nn_model *m);
int nn_model_set_meta_json(nn_model *m, const char *json, char *err, size_t errlen);

/* ---- inference ----------------------------------------------------------- */

nn_ws *nn_ws_create(const nn_model *m, int max_batch); /* NULL when out of memory */
void nn_ws_free(nn_ws *ws);

/* Test-time augmentation, flags: FLIP averages with the mirrored image, CROPS
 * with the image shifted by NN_TTA_SHIFT pixels left, right, up and down (edges
 * replicated: the same fill as training's shifts); both: 10 views. */
enum { NN_TTA_NONE = 0, NN_TTA_FLIP = 1, NN_TTA_CROPS = 2 };
#define NN_TTA_SHIFT 3
/* "none", "flip", "crops", "flip+crops" -> NN_TTA_* flags; -1 for anything else */
int nn_tta_parse(const char *name);
const char *nn_tta_name(int tta); /* the inverse */

/* Arithmetic of the inference pass. INT8 runs every convolution and dense
 * layer whose input is never negative (the network input, the output of a
 * ReLU or of a pool after one) on 8-bit integers with AVX-512 VNNI: weights
 * quantized once per output channel when a workspace plans the model,
 * activations quantized per image at run time (no calibration data), int32
 * sums; batch norm, pooling, other activations and the layer that gives the
 * logits stay fp32. On vgg about 5x faster than fp32 at batch 1, one thread;
 * the default model's PublicTest accuracy moves by less than 0.1 point
 * (bench/README.md). It needs a CPU with AVX-512 VNNI: on any other, asking
 * for INT8 leaves the model in FP32 (nothing fails). */
/* FP16 keeps the 3x3 convolutions' Winograd-transformed filters (nearly all
 * the bytes a batch-1 pass reads) in IEEE half floats, rounded to nearest,
 * and computes in fp32: the GEMM converts each filter row as it loads it
 * (F16C). Where batch 1 waits on memory for the filters (vgg_wide's 12x12 and
 * 6x6 layers stream 22 MB per image in fp32) it reads half; a worker holds
 * half the weight bytes. Everything else is as FP32. Needs AVX2, FMA and
 * F16C (x86-64 since Haswell and Zen 1); elsewhere FP32. */
typedef enum { NN_PRECISION_FP32 = 0, NN_PRECISION_INT8 = 1, NN_PRECISION_FP16 = 2 } nn_precision;
/* "fp32", "int8", "fp16" -> NN_PRECISION_*; -1 for anything else */
int nn_precision_parse(const char *name);
const char *nn_precision_name(int precision); /* the inverse */
int nn_int8_supported(void);                  /* 1 when this CPU runs INT8 */
int nn_precision_supported(nn_precision p);   /* 1 when this CPU runs p */
/* What a CPU needs for p, for messages: "AVX-512 VNNI", ... ("" for FP32) */
const char *nn_precision_needs(nn_precision p);
/* The precision this CPU runs when p is asked: p where it can; else INT8
 * falls back to FP16 (the other reduced precision, with fp32's accuracy on
 * PublicTest: models/README.md, bench/README.md) where AVX2, FMA and F16C
 * are and AVX-512 is not (there FP32 runs on wider vectors than FP16, and
 * is faster), and anything else to FP32. */
nn_precision nn_precision_served(nn_precision p);
/* The precision m's inference passes use from the next call on (every
 * workspace follows). Returns the precision in effect,
 * nn_precision_served(p). Not stored in model files; nn_model_clone copies
 * it; a loaded or new model starts in FP32. */
nn_precision nn_model_set_precision(nn_model *m, nn_precision p);
nn_precision nn_model_precision(const nn_model *m);

/* Class probabilities for batch images of side x side 8-bit grayscale pixels
 * (row-major, side = nn_model_input_size), written to probs[batch][classes].
 * The model's own normalisation is applied. tta: NN_TTA_* flags, the
 * probabilities of every view averaged. batch <= the ws max_batch. */
int nn_predict_u8(const nn_model *m, nn_ws *ws, const uint8_t *pixels, int batch,
                  int tta, float *probs);

/* ---- raw access (tests, benchmarks, fine-tuning) ------------------------ */

/* The one parameter array (layout in nn/ARCH.md) and its length in floats. */
float *nn_model_params(nn_model *m, size_t *n);

/* Scales pixels to the model's input: (p * scale - mean) / std, n values. */
void nn_normalize_u8(const nn_model *m, const uint8_t *pixels, size_t n, float *out);

/* Logits for batch already-normalised NHWC inputs, written to
 * logits[batch][classes] (inference mode: BN running stats, no dropout). */
int nn_forward_logits(const nn_model *m, nn_ws *ws, const float *x, int batch, float *logits);

/* Threads the calling thread uses for its own parallel loops and for GEMM
 * (OpenBLAS's count is process-wide). The service's workers call it with 1. */
void nn_set_threads(int n);

/* ---- training ------------------------------------------------------------ */

typedef enum { NN_OPT_SGD = 0, NN_OPT_ADAM = 1 } nn_optimizer;

typedef struct {
    nn_optimizer optimizer;
    float momentum;       /* SGD momentum (0.9) */
    int nesterov;         /* SGD: Nesterov momentum */
    float weight_decay;   /* decoupled from per-layer "l2" in the architecture */
    float beta1, beta2, eps; /* Adam */
    float label_smoothing;   /* 0 = none */
} nn_optim_cfg;

void nn_optim_cfg_default(nn_optim_cfg *c, nn_optimizer opt);

typedef struct nn_trainer nn_trainer;

/* Gradients, optimizer state and a training workspace for batches of up to
 * max_batch. seed drives dropout. The trainer keeps a pointer to m. */
nn_trainer *nn_trainer_create(nn_model *m, int max_batch, const nn_optim_cfg *cfg,
                              uint64_t seed);
void nn_trainer_free(nn_trainer *t);

/* One step: forward in training mode on x (batch NHWC normalised inputs),
 * softmax cross-entropy against labels, backward, optimizer update with
 * learning rate lr. Returns the mean loss; *correct (may be NULL) receives the
 * number of correct argmax predictions. */
float nn_train_step(nn_trainer *t, const float *x, const uint8_t *labels, int batch,
                    float lr, int *correct);

#endif
