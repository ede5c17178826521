/* Reading tokenizer JSON whose strings hold "\u0000" (SentencePiece vocabularies converted
 * to tokenizer.json keep a NUL piece): jansson cannot hold NUL in object keys, so the
 * escape is read as the noncharacter U+10FFFF and mapped back to NUL afterwards. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

static const char k_mark[] = "\xF4\x8F\xBF\xBF"; /* U+10FFFF */

ignis_status ig_json_load_nul(const char *path, void *root_out, bool *had_nul)
{
    char *data;
    size_t n;
    IG_TRY(ig_read_whole(path, &data, &n));
    *had_nul = false;
    /* "\u0000" is 6 bytes, "\uDBFF\uDFFF" 12: rewrite into a second buffer when present */
    size_t count = 0;
    for (char *p = data; (p = memmem(p, n - (size_t)(p - data), "\\u0000", 6)) != NULL; p += 6)
        count++;
    char *text = data;
    if (count) {
        text = malloc(n + count * 6 + 1);
        if (!text) {
            free(data);
            return ig_err(IGNIS_E_NOMEM, "%s: out of memory", path);
        }
        size_t o = 0;
        for (size_t i = 0; i < n;) {
            if (data[i] == '\\' && i + 6 <= n && !memcmp(data + i, "\\u0000", 6)) {
                /* an escape only if the backslash itself is not escaped */
                size_t k = 0;
                while (k < i && data[i - 1 - k] == '\\')
                    k++;
                if (k % 2 == 0) {
                    memcpy(text + o, "\\uDBFF\\uDFFF", 12);
                    o += 12;
                    i += 6;
                    *had_nul = true;
                    continue;
                }
            }
            text[o++] = data[i++];
        }
        text[o] = 0;
        n = o;
        free(data);
    }
    json_error_t je;
    json_t *root = json_loadb(text, n, 0, &je);
    free(text);
    if (!root) return ig_err(IGNIS_E_FORMAT, "%s:%d:%d: bad JSON: %s", path, je.line, je.column, je.text);
    *(json_t **)root_out = root;
    return IGNIS_OK;
}

/* Replaces every U+10FFFF by NUL in s[0..n); returns the new length. */
static size_t unmark(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (i + 4 <= n && !memcmp(s + i, k_mark, 4)) {
            s[o++] = 0;
            i += 4;
        } else {
            s[o++] = s[i++];
        }
    }
    return o;
}

ignis_status ig_tok_restore_nul(ignis_tokenizer *t)
{
    for (int id = 0; id < t->n_vocab; id++)
        if (t->piece[id]) {
            t->piece_len[id] = (uint32_t)unmark(t->piece[id], t->piece_len[id]);
            t->piece[id][t->piece_len[id]] = 0;
        }
    for (int i = 0; i < t->n_added; i++)
        t->added[i].len = unmark(t->added[i].content, t->added[i].len);
    /* the keys changed: index them again */
    ig_strmap_free(&t->piece_map);
    IG_TRY(ig_strmap_init(&t->piece_map, (size_t)t->n_vocab));
    for (int id = 0; id < t->n_vocab; id++)
        if (t->piece[id]) ig_strmap_put(&t->piece_map, t->piece[id], t->piece_len[id], id, false);
    return IGNIS_OK;
}
