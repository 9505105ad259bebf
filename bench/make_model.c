/* make_model.c - a model file with random weights, for the service benchmark.
 *
 *   build/bench/make_model ARCH.json OUT.emod [SEED]
 *
 * Builds the architecture with the engine's He initialisation (seed 42 unless
 * SEED is given) and saves it as a model file that `emotiond serve --model`
 * and bench/flask_service.py both load. Speed does not depend on the weights,
 * so bench/service.sh uses this when no trained model is given. Exits 0 on
 * success, 1 when the architecture cannot be built or the file not written,
 * 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn.h"

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s ARCH.json OUT.emod [SEED]\n", argv[0]);
        return 2;
    }
    uint64_t seed = 42;
    if (argc == 4) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(argv[3], &end, 10);
        if (errno || !end || *end || end == argv[3]) {
            fprintf(stderr, "make_model: SEED must be a non-negative integer, not '%s'\n",
                    argv[3]);
            return 2;
        }
        seed = (uint64_t)v;
    }
    char err[512] = "";
    nn_model *m = NULL;
    if (nn_model_from_arch_file(argv[1], seed, &m, err, sizeof err) != 0) {
        fprintf(stderr, "make_model: %s: %s\n", argv[1], err);
        return 1;
    }
    if (nn_model_save(m, argv[2], err, sizeof err) != 0) {
        fprintf(stderr, "make_model: %s: %s\n", argv[2], err);
        nn_model_free(m);
        return 1;
    }
    printf("make_model: %s (%s, %zu parameters, seed %" PRIu64 ") -> %s\n", argv[1],
           nn_model_arch_name(m), nn_model_num_params(m), seed, argv[2]);
    nn_model_free(m);
    return 0;
}
