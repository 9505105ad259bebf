/* fuzz_common.h - what every harness in tests/fuzz/ shares.
 *
 * Each harness defines LLVMFuzzerTestOneInput and is built twice:
 *  - by `make fuzz` / `make fuzz-ci` with clang -fsanitize=fuzzer,address,undefined
 *    into build/fuzz/fuzzers/<name> (a libFuzzer binary);
 *  - by `make test` / `make asan` with the project's compiler, with
 *    -DLLVMFuzzerTestOneInput=<name>_one, and linked into
 *    tests/test_fuzz_corpus.c, which replays every file of tests/corpus/<name>/.
 * A harness reports a bug by crashing (FUZZ_CHECK aborts), never by a return
 * value, so both builds see it the same way. */
#ifndef TESTS_FUZZ_COMMON_H
#define TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test; a violation aborts (a "crash"). */
#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* A NUL-terminated copy of the input (abort when out of memory: the fuzzer's
 * malloc limit is far above any input size). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    for (size_t i = 0; i < size; i++) s[i] = (char)data[i];
    s[size] = '\0';
    return s;
}

#endif
