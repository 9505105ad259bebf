/* fuzz_model.c - the model file loader (nn/model_file.c) and the service's
 * checks on a loaded model (sm_wrap: what SIGHUP reloads and
 * POST /models/{id}/activate run before a model is served).
 *
 * Each input is loaded twice: as it is, and with a correct CRC-32 appended,
 * so that the fuzzer gets past the checksum into the header, the architecture
 * and the tensors. A model that loads is wrapped (one forward pass) when its
 * input side is small enough to keep the fuzzer fast. */
#include <string.h>

#include "fuzz_common.h"
#include "internal.h"
#include "model_file.h"
#include "model_ref.h"

static void try_load(const uint8_t *buf, size_t len)
{
    nn_model *m = NULL;
    char *ckpt = NULL;
    char err[512] = "";
    if (nn_file_load_mem(buf, len, &m, NULL, 0, &ckpt, err, sizeof err) != 0) {
        FUZZ_CHECK(m == NULL && ckpt == NULL && err[0] != '\0');
        return;
    }
    FUZZ_CHECK(m != NULL);
    int side = nn_model_input_size(m);
    int classes = nn_model_num_classes(m);
    FUZZ_CHECK(side >= 4 && classes >= 2);
    for (int i = 0; i < classes; i++) FUZZ_CHECK(nn_model_class_name(m, i) != NULL);
    FUZZ_CHECK(nn_model_meta_json(m) != NULL && nn_model_arch_json(m) != NULL);
    free(ckpt);
    if (side <= 64 && nn_model_flops(m) < 5e6) {
        svc_model *s = sm_wrap(m, NULL, err, sizeof err); /* takes m, also on failure */
        if (s) {
            FUZZ_CHECK(s->info_json != NULL && s->num_classes == classes);
            sm_unref(s);
        }
    } else {
        nn_model_free(m);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        nn_set_threads(1);
        init = 1;
    }
    uint8_t *buf = malloc(size + 4);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    try_load(buf, size);
    uint32_t crc = nn_crc32(0, buf, size);
    memcpy(buf + size, &crc, 4); /* the format is little-endian, as is every target we build on */
    try_load(buf, size + 4);
    free(buf);
    return 0;
}
