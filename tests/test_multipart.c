/* test_multipart.c - the streaming multipart/form-data parser. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"

#define BOUNDARY "----emotiondBoundary7MA4YWxkTrZu0gW"

/* A body as curl -F sends it: a text field, the image, another field. */
static char *make_body(const uint8_t *img, size_t imglen, const char *field, size_t *len)
{
    const char *pre = "preamble to be ignored\r\n";
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "%s--" BOUNDARY "\r\n"
                     "Content-Disposition: form-data; name=\"note\"\r\n\r\n"
                     "hello\r\n--" "----emotiondBoundary7MA4YWxkTrZu0g" "\r\n"
                     "--" BOUNDARY "\r\n"
                     "Content-Disposition: form-data; name=\"%s\"; filename=\"face \\\"1\\\".png\"\r\n"
                     "Content-Type: image/png\r\n\r\n",
                     pre, field);
    const char *tail = "\r\n--" BOUNDARY "\r\n"
                       "content-disposition: form-data; name=\"image2\"\r\n\r\n"
                       "x\r\n--" BOUNDARY "--\r\nepilogue";
    *len = (size_t)n + imglen + strlen(tail);
    char *b = malloc(*len);
    memcpy(b, head, (size_t)n);
    memcpy(b + n, img, imglen);
    memcpy(b + n + imglen, tail, strlen(tail));
    return b;
}

/* Content that looks like delimiters: CRs, LFs, dashes and boundary prefixes. */
static uint8_t *tricky_content(size_t *len)
{
    /* Partial delimiters only: a full one cannot occur in content (RFC 2046). */
    static const char pieces[] = "\r\n--" "----emotiondBoundary7MA4YWxkTrZu0g" "X\r\r\n-\r\n--\r\n--"
                                 "----emotiondBoundary7MA4Y\r\r\n--";
    size_t n = 5000;
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 131 + 7);
    memcpy(p + 100, pieces, sizeof pieces - 1);
    memcpy(p + 3000, pieces, sizeof pieces - 2);
    p[n - 1] = '\r'; /* content ending in CR, right before the delimiter */
    *len = n;
    return p;
}

START_TEST(test_boundary_param)
{
    char b[80];
    ck_assert_int_eq(mp_boundary_from_content_type("multipart/form-data; boundary=abc", b, sizeof b), 0);
    ck_assert_str_eq(b, "abc");
    ck_assert_int_eq(mp_boundary_from_content_type("multipart/form-data; charset=utf-8; BOUNDARY=\"a b:c\"", b, sizeof b), 0);
    ck_assert_str_eq(b, "a b:c");
    ck_assert_int_eq(mp_boundary_from_content_type("multipart/form-data", b, sizeof b), -1);
    ck_assert_int_eq(mp_boundary_from_content_type("multipart/form-data; boundary=", b, sizeof b), -1);
    ck_assert_int_eq(mp_boundary_from_content_type("multipart/form-data; boundary=\"unterminated", b, sizeof b), -1);
    ck_assert_int_eq(mp_boundary_from_content_type("multipart/form-data; boundary=a\rb", b, sizeof b), -1);
    char longb[200];
    memset(longb, 'a', sizeof longb);
    snprintf(longb, sizeof longb, "multipart/form-data; boundary=%.*s", 71,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    ck_assert_int_eq(mp_boundary_from_content_type(longb, b, sizeof b), -1);
}
END_TEST

START_TEST(test_whole_body)
{
    size_t imglen, len;
    uint8_t *img = tricky_content(&imglen);
    char *body = make_body(img, imglen, "image", &len);
    mp_parser p;
    ck_assert_int_eq(mp_init(&p, BOUNDARY, "image", 1 << 20), MP_OK);
    ck_assert_int_eq(mp_feed(&p, (uint8_t *)body, len), MP_OK);
    ck_assert_int_eq(mp_finish(&p), MP_OK);
    ck_assert_uint_eq(p.len, imglen);
    ck_assert_int_eq(memcmp(p.data, img, imglen), 0);
    ck_assert_str_eq(p.content_type, "image/png");
    ck_assert_str_eq(p.filename, "face \"1\".png");
    size_t dl;
    uint8_t *d = mp_take_data(&p, &dl);
    ck_assert_uint_eq(dl, imglen);
    free(d);
    mp_free(&p);
    free(body);
    free(img);
}
END_TEST

/* The same body cut into every possible pair of chunks, then byte by byte. */
START_TEST(test_split_everywhere)
{
    size_t imglen, len;
    uint8_t *img = tricky_content(&imglen);
    char *body = make_body(img, imglen, "image", &len);
    for (size_t cut = 0; cut <= len; cut += (cut < 400 || cut > len - 400) ? 1 : 37) {
        mp_parser p;
        mp_init(&p, BOUNDARY, "image", 1 << 20);
        ck_assert_int_eq(mp_feed(&p, (uint8_t *)body, cut), MP_OK);
        ck_assert_int_eq(mp_feed(&p, (uint8_t *)body + cut, len - cut), MP_OK);
        ck_assert_int_eq(mp_finish(&p), MP_OK);
        ck_assert_uint_eq(p.len, imglen);
        ck_assert_msg(!memcmp(p.data, img, imglen), "content differs when cut at %zu", cut);
        mp_free(&p);
    }
    mp_parser p;
    mp_init(&p, BOUNDARY, "image", 1 << 20);
    for (size_t i = 0; i < len; i++) ck_assert_int_eq(mp_feed(&p, (uint8_t *)body + i, 1), MP_OK);
    ck_assert_int_eq(mp_finish(&p), MP_OK);
    ck_assert_uint_eq(p.len, imglen);
    ck_assert_int_eq(memcmp(p.data, img, imglen), 0);
    mp_free(&p);
    free(body);
    free(img);
}
END_TEST

START_TEST(test_missing_field)
{
    size_t len;
    char *body = make_body((const uint8_t *)"abc", 3, "picture", &len);
    mp_parser p;
    mp_init(&p, BOUNDARY, "image", 1 << 20);
    ck_assert_int_eq(mp_feed(&p, (uint8_t *)body, len), MP_OK);
    ck_assert_int_eq(mp_finish(&p), MP_E_MISSING_FIELD);
    ck_assert_str_eq(mp_strerror_code(MP_E_MISSING_FIELD), "missing_field");
    mp_free(&p);
    free(body);
}
END_TEST

START_TEST(test_oversize_field)
{
    size_t imglen, len;
    uint8_t *img = tricky_content(&imglen);
    char *body = make_body(img, imglen, "image", &len);
    mp_parser p;
    mp_init(&p, BOUNDARY, "image", 1000);
    ck_assert_int_eq(mp_feed(&p, (uint8_t *)body, len), MP_E_TOO_LARGE);
    ck_assert_int_eq(mp_finish(&p), MP_E_TOO_LARGE);
    mp_free(&p);
    free(body);
    free(img);
}
END_TEST

static int parse_all(const char *body, const char *field)
{
    mp_parser p;
    mp_init(&p, "xyz", field, 1 << 20);
    mp_feed(&p, (const uint8_t *)body, strlen(body));
    int rc = mp_finish(&p);
    mp_free(&p);
    return rc;
}

START_TEST(test_malformed)
{
    /* no final delimiter (truncated body) */
    ck_assert_int_eq(parse_all("--xyz\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nabc", "image"),
                     MP_E_MALFORMED);
    /* no delimiter at all */
    ck_assert_int_eq(parse_all("just some text", "image"), MP_E_MALFORMED);
    /* empty body */
    ck_assert_int_eq(parse_all("", "image"), MP_E_MALFORMED);
    /* garbage after a delimiter */
    ck_assert_int_eq(parse_all("--xyzGARBAGE\r\n\r\n--xyz--", "image"), MP_E_MALFORMED);
    /* part without Content-Disposition */
    ck_assert_int_eq(parse_all("--xyz\r\nContent-Type: image/png\r\n\r\nabc\r\n--xyz--", "image"),
                     MP_E_MALFORMED);
    /* header line without colon */
    ck_assert_int_eq(parse_all("--xyz\r\nContent-Disposition form-data\r\n\r\nabc\r\n--xyz--", "image"),
                     MP_E_MALFORMED);
    /* not form-data */
    ck_assert_int_eq(parse_all("--xyz\r\nContent-Disposition: attachment; name=\"image\"\r\n\r\nabc\r\n--xyz--", "image"),
                     MP_E_MALFORMED);
    /* well formed, empty content, with transport padding after the delimiter */
    ck_assert_int_eq(parse_all("--xyz  \r\nContent-Disposition: form-data; name=image\r\n\r\n\r\n--xyz--", "image"),
                     MP_OK);
    /* no parts at all */
    ck_assert_int_eq(parse_all("--xyz--\r\n", "image"), MP_E_MISSING_FIELD);
}
END_TEST

START_TEST(test_header_too_long)
{
    size_t n = MP_MAX_HEADERS + 100;
    char *body = malloc(n + 100);
    int k = sprintf(body, "--xyz\r\nX-Long: ");
    memset(body + k, 'a', n);
    strcpy(body + k + n, "\r\n\r\nabc\r\n--xyz--");
    ck_assert_int_eq(parse_all(body, "image"), MP_E_TOO_LARGE);
    free(body);
}
END_TEST

START_TEST(test_first_field_wins)
{
    const char *body = "--xyz\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nfirst\r\n"
                       "--xyz\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nsecond\r\n--xyz--";
    mp_parser p;
    mp_init(&p, "xyz", "image", 100);
    mp_feed(&p, (const uint8_t *)body, strlen(body));
    ck_assert_int_eq(mp_finish(&p), MP_OK);
    ck_assert_uint_eq(p.len, 5);
    ck_assert_int_eq(memcmp(p.data, "first", 5), 0);
    mp_free(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("multipart");
    TCase *tc = tcase_create("multipart");
    tcase_add_test(tc, test_boundary_param);
    tcase_add_test(tc, test_whole_body);
    tcase_add_test(tc, test_split_everywhere);
    tcase_add_test(tc, test_missing_field);
    tcase_add_test(tc, test_oversize_field);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_header_too_long);
    tcase_add_test(tc, test_first_field_wins);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
