/* ignis_utf8_sanitize keeps valid UTF-8 byte for byte and replaces each bad byte (and NUL)
 * with one U+FFFD. "Valid" is judged independently by jansson, which refuses invalid UTF-8
 * in json_stringn: that is the check the server and `generate --batch` rely on. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define R "\xef\xbf\xbd" /* U+FFFD */

/* Sanitizes in[0..n) and checks the result is exactly want[0..want_n). */
static void expect(const char *in, size_t n, const char *want, size_t want_n)
{
    char *out = malloc(3 * n + 1);
    assert_non_null(out);
    size_t got = ignis_utf8_sanitize(in, n, out);
    if (got != want_n || memcmp(out, want, want_n) != 0) {
        print_error("input of %zu bytes: expected %zu bytes, got %zu:", n, want_n, got);
        for (size_t i = 0; i < got; i++)
            print_error(" %02x", (unsigned char)out[i]);
        print_error("\n");
        free(out);
        fail();
    }
    free(out);
}
#define EXPECT(in, want) expect(in, sizeof(in) - 1, want, sizeof(want) - 1)

/* Fails unless out[0..n) is valid UTF-8 (per jansson) without NUL. */
static void assert_valid_utf8(const char *out, size_t n)
{
    assert_null(memchr(out, 0, n));
    json_t *j = json_stringn(out, n);
    assert_non_null(j);
    json_decref(j);
}

static void test_valid_ascii_and_multibyte_text_is_unchanged(void **state)
{
    (void)state;
    EXPECT("plain ASCII, with punctuation!~", "plain ASCII, with punctuation!~");
    /* 2-byte (é, ß), 3-byte (€, 日本), 4-byte (𝄞, 😀) and the edges U+0080, U+07FF,
     * U+0800, U+FFFF, U+10000, U+10FFFF */
    const char text[] = "h\xc3\xa9llo \xc3\x9f \xe2\x82\xac \xe6\x97\xa5\xe6\x9c\xac \xf0\x9d\x84\x9e "
                        "\xf0\x9f\x98\x80 \xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf";
    EXPECT(text, text);
    EXPECT(R, R); /* U+FFFD itself is valid text */
    expect("", 0, "", 0);
}

static void test_truncated_sequences_become_one_replacement_per_byte(void **state)
{
    (void)state;
    EXPECT("a\xc3", "a" R);                                   /* 2-byte lead at the end */
    EXPECT("\xc3z", R "z");                                   /* 2-byte lead before ASCII */
    EXPECT("\xe2\x82", R R);                                  /* 3-byte sequence missing its last byte */
    EXPECT("\xe2\x82!", R R "!");                             /* ... followed by ASCII */
    EXPECT("\xf0\x9d\x84", R R R);                            /* 4-byte sequence missing its last byte */
    EXPECT("\xf0\x9d\x84\xe2\x82\xac", R R R "\xe2\x82\xac"); /* then a valid euro sign */
}

static void test_stray_bytes_and_nul_become_one_replacement_each(void **state)
{
    (void)state;
    EXPECT("x\x80y", "x" R "y"); /* lone continuation byte */
    EXPECT("\x80\xbf", R R);     /* two of them */
    EXPECT("\xff", R);           /* never valid in UTF-8 */
    EXPECT("\xfe\xff", R R);
    EXPECT("a\0b", "a" R "b");           /* NUL inside text */
    EXPECT("\xc0\xaf", R R);             /* overlong '/' */
    EXPECT("\xed\xa0\x80", R R R);       /* UTF-16 surrogate U+D800 */
    EXPECT("\xf4\x90\x80\x80", R R R R); /* U+110000, above the Unicode range */
}

/* Every 1- and 2-byte input, and 3- and 4-byte inputs drawn from a fixed-seed generator:
 * the output is valid UTF-8, at most 3 bytes per input byte, and equal to the input when
 * jansson accepts the input as it is (and it holds no NUL). */
static void check_one(const unsigned char *in, size_t n)
{
    char out[3 * 4];
    size_t got = ignis_utf8_sanitize((const char *)in, n, out);
    assert_true(got <= 3 * n);
    assert_valid_utf8(out, got);
    json_t *j = memchr(in, 0, n) ? NULL : json_stringn((const char *)in, n);
    if (j) {
        assert_int_equal(got, n);
        assert_memory_equal(out, in, n);
        json_decref(j);
    }
}

static void test_output_is_always_valid_utf8(void **state)
{
    (void)state;
    unsigned char in[4];
    for (unsigned a = 0; a < 256; a++) {
        in[0] = (unsigned char)a;
        check_one(in, 1);
        for (unsigned b = 0; b < 256; b++) {
            in[1] = (unsigned char)b;
            check_one(in, 2);
        }
    }
    uint32_t x = 2463534242u; /* xorshift32 */
    for (int i = 0; i < 200000; i++) {
        for (int k = 0; k < 4; k++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            /* bias toward the interesting bytes: lead and continuation bytes */
            in[k] = (unsigned char)(x & 1 ? 0x80 | (x >> 8) : x >> 8);
        }
        check_one(in, 3);
        check_one(in, 4);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_ascii_and_multibyte_text_is_unchanged),
        cmocka_unit_test(test_truncated_sequences_become_one_replacement_per_byte),
        cmocka_unit_test(test_stray_bytes_and_nul_become_one_replacement_each),
        cmocka_unit_test(test_output_is_always_valid_utf8),
    };
    return cmocka_run_group_tests_name("utf8_sanitize", tests, NULL, NULL);
}
