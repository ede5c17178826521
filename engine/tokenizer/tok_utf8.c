/* UTF-8 validation and GPT-2's byte-to-unicode table. Validation follows the Unicode
 * "maximal subpart" rule so invalid input decodes the same way Rust's from_utf8_lossy does. */
#include "tokenizer/tok_internal.h"

/* Continuation bytes a lead byte needs (0: not a lead byte) and the allowed range of the
 * first continuation byte, which excludes overlongs, surrogates and code points > U+10FFFF. */
static int lead_byte(unsigned c, unsigned *lo, unsigned *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) return 1;
    if (c == 0xE0) return *lo = 0xA0, 2;
    if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return 2;
    if (c == 0xED) return *hi = 0x9F, 2;
    if (c == 0xF0) return *lo = 0x90, 3;
    if (c >= 0xF1 && c <= 0xF3) return 3;
    if (c == 0xF4) return *hi = 0x8F, 3;
    return 0;
}

int ig_utf8_valid_len(const unsigned char *s, size_t n)
{
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    unsigned lo, hi;
    int need = lead_byte(c, &lo, &hi);
    if (need == 0) return 0;
    if (n < (size_t)need + 1) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (int i = 2; i <= need; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return need + 1;
}

int ig_utf8_invalid_len(const unsigned char *s, size_t n)
{
    unsigned lo, hi;
    int need = lead_byte(s[0], &lo, &hi);
    if (need == 0) return 1;
    int k = 1;
    if (k < (int)n && s[k] >= lo && s[k] <= hi) {
        k++;
        while (k <= need && k < (int)n && (s[k] & 0xC0) == 0x80)
            k++;
    }
    return k;
}

int ig_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

uint32_t ig_utf8_decode(const unsigned char *s, int len)
{
    switch (len) {
    case 1:
        return s[0];
    case 2:
        return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    case 3:
        return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    default:
        return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
               (s[3] & 0x3F);
    }
}

/* GPT-2 maps printable Latin-1 bytes to themselves and the other 68 bytes, in order, to
 * U+0100 upwards, so every byte string becomes printable text. */
static uint16_t build_entry(int b)
{
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return (uint16_t)b;
    int n = 0;
    for (int i = 0; i < b; i++)
        if (!((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF))) n++;
    return (uint16_t)(256 + n);
}

/* Computed once at first use; the table is small and fixed. */
static uint16_t g_b2c[256];
static int g_c2b[512];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void init_tables(void)
{
    for (int i = 0; i < 512; i++)
        g_c2b[i] = -1;
    for (int b = 0; b < 256; b++) {
        g_b2c[b] = build_entry(b);
        g_c2b[g_b2c[b]] = b;
    }
}

const uint16_t *ig_byte_to_cp_table(void)
{
    pthread_once(&g_once, init_tables);
    return g_b2c;
}

int ig_cp_to_byte(uint32_t cp)
{
    pthread_once(&g_once, init_tables);
    return cp < 512 ? g_c2b[cp] : -1;
}
