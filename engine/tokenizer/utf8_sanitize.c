/* ignis_utf8_sanitize: text that may hold invalid UTF-8 made fit for a JSON string. It
 * shares the tokenizer's validator (tok_utf8.c), so "valid" means the same here as in
 * decoding: no overlongs, surrogates or code points above U+10FFFF, which jansson refuses. */
#include <string.h>

#include "tokenizer/tok_internal.h"

size_t ignis_utf8_sanitize(const char *in, size_t n, char *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        int len = ig_utf8_valid_len(s + i, n - i);
        /* NUL is valid UTF-8 but would end a C string early: replace it too. */
        if (len > 0 && s[i] != 0) {
            memcpy(out + w, s + i, (size_t)len);
            w += (size_t)len;
            i += (size_t)len;
        } else {
            /* one U+FFFD per bad byte (not per maximal subpart): a valid sequence may start
             * at the next byte, and every byte costs at most 3 output bytes */
            memcpy(out + w, "\xef\xbf\xbd", 3);
            w += 3;
            i++;
        }
    }
    return w;
}
