/* threads.c - how many cores the engine uses. */
#include <cblas.h>
#include <omp.h>

#include "nn.h"

void nn_set_threads(int n)
{
    if (n < 1) n = 1;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}
