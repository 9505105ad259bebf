/* test_fuzz_corpus.c - replays every file of tests/corpus/<harness>/ through
 * its libFuzzer harness (tests/fuzz/<harness>.c, compiled here without
 * libFuzzer as <harness>_one): the seeds and every crash the fuzzers ever
 * found stay regression cases of `make test` and `make asan`. PngSuite and
 * libjpeg-turbo's test images in ../shared/data (not copied into the tree)
 * are replayed through the image harness too when they are present.
 *
 * A harness signals a bug by crashing; the file being replayed is printed
 * when that happens (FUZZ_REPLAY_VERBOSE=1 prints every file). */
#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common_svc.h"

#define HARNESSES(X) X(fuzz_base64) X(fuzz_config) X(fuzz_image) X(fuzz_jpeg_dc) \
                     X(fuzz_json) X(fuzz_model) X(fuzz_multipart)
#define DECLARE(name) int name##_one(const uint8_t *data, size_t size);
HARNESSES(DECLARE)

static char current[1024];

static void on_crash(int sig)
{
    static const char pre[] = "\ncrashed while replaying ";
    (void)!write(2, pre, sizeof pre - 1);
    (void)!write(2, current, strlen(current));
    (void)!write(2, "\n", 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Feeds every regular file of dir to fn, in name order; returns the count
 * (-1 when dir does not exist). */
static int replay_dir(const char *dir, int (*fn)(const uint8_t *, size_t))
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof *names);
            ck_assert_ptr_nonnull(names);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    signal(SIGABRT, on_crash);
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGFPE, on_crash);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(current, sizeof current, "%s/%s", dir, names[i]);
        free(names[i]);
        struct stat st;
        if (stat(current, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        size_t len = 0;
        uint8_t *data = tsv_read_file(current, &len);
        ck_assert_msg(data != NULL, "cannot read %s", current);
        if (getenv("FUZZ_REPLAY_VERBOSE")) fprintf(stderr, "replaying %s\n", current);
        fn(data, len);
        free(data);
        count++;
    }
    free(names);
    current[0] = '\0';
    return count;
}

#define TEST(name)                                                         \
    START_TEST(test_##name)                                                \
    {                                                                      \
        int n = replay_dir("tests/corpus/" #name, name##_one);             \
        ck_assert_msg(n > 0, "tests/corpus/" #name " is missing or empty"); \
    }                                                                      \
    END_TEST
HARNESSES(TEST)

START_TEST(test_shared_images)
{
    const char *shared = tsv_shared_data();
    if (!shared) {
        fprintf(stderr, "skipped: ../shared/data not present\n");
        return;
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/pngsuite", shared);
    int a = replay_dir(dir, fuzz_image_one);
    snprintf(dir, sizeof dir, "%s/jpeg/libjpeg-turbo", shared);
    int b = replay_dir(dir, fuzz_image_one);
    ck_assert_int_gt(a, 100);
    ck_assert_int_gt(b, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fuzz_corpus");
    TCase *tc = tcase_create("replay");
    tcase_set_timeout(tc, 120);
#define ADD(name) tcase_add_test(tc, test_##name);
    HARNESSES(ADD)
    tcase_add_test(tc, test_shared_images);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
