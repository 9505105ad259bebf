/* fpu.c - denormal handling for the compute loops.
 *
 * Gradients of the early layers fall into the denormal range during training,
 * and x86 turns every arithmetic operation on a denormal into a microcode
 * assist costing ~100 cycles: the batch-norm backward pass alone took 12% of a
 * training step. Setting FTZ (results flush to zero) and DAZ (inputs read as
 * zero) for the duration of a pass removes that cost; values below 1.2e-38
 * carry nothing a network can use. The setting is per thread, so each pass
 * sets it in the threads that compute and restores the caller's state. */
#include "internal.h"

#if defined(__SSE2__)
#include <xmmintrin.h>

#define NN_MXCSR_FTZ 0x8000u
#define NN_MXCSR_DAZ 0x0040u

unsigned nn_fpu_enter(void)
{
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | NN_MXCSR_FTZ | NN_MXCSR_DAZ);
    return old;
}

void nn_fpu_leave(unsigned saved)
{
    _mm_setcsr(saved);
}
#else
unsigned nn_fpu_enter(void) { return 0; }
void nn_fpu_leave(unsigned saved) { (void)saved; }
#endif
