/* test_base64.c - base64 decoding of JSON bodies. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

static int dec(const char *s, char *out, size_t *n)
{
    return b64_decode(s, strlen(s), (uint8_t *)out, n);
}

START_TEST(test_rfc4648_vectors)
{
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char out[16];
        size_t n = 99;
        ck_assert_int_eq(dec(enc[i], out, &n), 0);
        ck_assert_uint_eq(n, strlen(plain[i]));
        ck_assert_int_eq(memcmp(out, plain[i], n), 0);
        char *e = b64_encode((const uint8_t *)plain[i], strlen(plain[i]));
        ck_assert_str_eq(e, enc[i]);
        free(e);
    }
}
END_TEST

START_TEST(test_lenient_forms)
{
    char out[16];
    size_t n;
    ck_assert_int_eq(dec("Zm9v\r\nYmFy\n", out, &n), 0); /* wrapped lines */
    ck_assert_uint_eq(n, 6);
    ck_assert_int_eq(dec("Zm9vYg", out, &n), 0); /* no padding */
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(dec("-_8=", out, &n), 0); /* URL-safe alphabet */
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq((unsigned char)out[0], 0xfb);
    ck_assert_int_eq((unsigned char)out[1], 0xff);
}
END_TEST

START_TEST(test_invalid)
{
    char out[64];
    size_t n;
    ck_assert_int_eq(dec("Zm9v!", out, &n), -1);      /* bad character */
    ck_assert_int_eq(dec("Z", out, &n), -1);          /* one dangling sextet */
    ck_assert_int_eq(dec("Zm9vY", out, &n), -1);
    ck_assert_int_eq(dec("Zg=", out, &n), -1);        /* incomplete padding */
    ck_assert_int_eq(dec("Zg===", out, &n), -1);      /* too much padding */
    ck_assert_int_eq(dec("=Zg=", out, &n), -1);       /* padding first */
    ck_assert_int_eq(dec("Zg==Zg==", out, &n), -1);   /* data after padding */
    ck_assert_int_eq(dec("Zh==", out, &n), -1);       /* non-zero trailing bits */
    ck_assert_int_eq(b64_decode("Zm\0v", 4, (uint8_t *)out, &n), -1); /* NUL inside */
}
END_TEST

START_TEST(test_roundtrip_binary)
{
    uint8_t buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (uint8_t)(i * 7919 >> 3);
    for (size_t len = 0; len < 1000; len += 37) {
        char *e = b64_encode(buf, len);
        uint8_t *d = malloc(b64_decoded_max(strlen(e)));
        size_t n;
        ck_assert_int_eq(b64_decode(e, strlen(e), d, &n), 0);
        ck_assert_uint_eq(n, len);
        ck_assert_int_eq(memcmp(d, buf, len), 0);
        free(d);
        free(e);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("base64");
    TCase *tc = tcase_create("base64");
    tcase_add_test(tc, test_rfc4648_vectors);
    tcase_add_test(tc, test_lenient_forms);
    tcase_add_test(tc, test_invalid);
    tcase_add_test(tc, test_roundtrip_binary);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
