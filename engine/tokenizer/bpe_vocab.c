/* Vocabulary and merges of a byte-level BPE model, shared by tokenizer.json and
 * vocab.json + merges.txt: pieces by id, each piece's raw bytes (for lookups on raw
 * pre-tokens), the 256 single-byte pieces, and the (left, right) -> (rank, merged) table. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/bpe_vocab.h"

ignis_status ig_bpe_load_vocab(ignis_tokenizer *t, const char *path, json_t *vocab, int min_size)
{
    if (!json_is_object(vocab)) return ig_err(IGNIS_E_FORMAT, "%s: the BPE vocab is not a JSON object", path);
    long max_id = -1;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 16 * 1024 * 1024)
            return ig_err(IGNIS_E_FORMAT, "%s: vocab entry '%s' has no valid id", path, key);
        if (json_integer_value(v) > max_id) max_id = (long)json_integer_value(v);
    }
    int n = (int)(max_id + 1) > min_size ? (int)(max_id + 1) : min_size;
    if (n <= 0) return ig_err(IGNIS_E_FORMAT, "%s: empty vocab", path);
    IG_TRY(ig_tok_alloc_vocab(t, n));
    t->kind = IG_TOK_BYTE_BPE;
    /* keys may hold NUL (a "\u0000" piece): iterate with their lengths */
    for (void *it = json_object_iter(vocab); it; it = json_object_iter_next(vocab, it)) {
        key = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        int id = (int)json_integer_value(json_object_iter_value(it));
        if (t->piece[id])
            return ig_err(IGNIS_E_FORMAT, "%s: vocab id %d is given to both '%s' and '%s'", path, id, t->piece[id],
                          key);
        IG_TRY(ig_tok_set_piece(t, id, key, len));
        if (!ig_strmap_put(&t->piece_map, t->piece[id], len, id, false))
            return ig_err(IGNIS_E_FORMAT, "%s: vocab piece '%s' appears twice", path, key);
    }
    return IGNIS_OK;
}

/* Raw bytes of every piece; a piece with a character outside the byte alphabet has none. */
ignis_status ig_bpe_build_raw(ignis_tokenizer *t, const char *path)
{
    t->raw = calloc((size_t)t->n_vocab, sizeof *t->raw);
    t->raw_len = calloc((size_t)t->n_vocab, sizeof *t->raw_len);
    if (!t->raw || !t->raw_len) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
    IG_TRY(ig_strmap_init(&t->raw_map, (size_t)t->n_vocab));
    for (int id = 0; id < t->n_vocab; id++) {
        const unsigned char *p = (const unsigned char *)t->piece[id];
        if (!p) continue;
        size_t n = t->piece_len[id], o = 0;
        char *raw = malloc(n + 1);
        if (!raw) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
        bool ok = true;
        for (size_t i = 0; i < n;) {
            int l = ig_utf8_valid_len(p + i, n - i);
            int b = l ? ig_cp_to_byte(ig_utf8_decode(p + i, l)) : -1;
            if (b < 0) {
                ok = false;
                break;
            }
            raw[o++] = (char)b;
            i += (size_t)l;
        }
        if (!ok) {
            free(raw);
            continue;
        }
        raw[o] = 0;
        t->raw[id] = raw;
        t->raw_len[id] = (uint32_t)o;
        ig_strmap_put(&t->raw_map, raw, o, id, false);
        if (o == 1 && t->byte_id[(unsigned char)raw[0]] < 0) t->byte_id[(unsigned char)raw[0]] = id;
    }
    (void)path;
    return IGNIS_OK;
}

ignis_status ig_bpe_add_merge(ignis_tokenizer *t, const char *path, long line, const char *a, size_t la, const char *b,
                              size_t lb, int32_t rank, char **scratch, size_t *cap)
{
    int32_t ia = ig_strmap_get(&t->piece_map, a, la), ib = ig_strmap_get(&t->piece_map, b, lb);
    if (ia < 0 || ib < 0)
        return ig_err(IGNIS_E_FORMAT, "%s: merge %ld ('%.*s' '%.*s') uses a piece missing from the vocab", path, line,
                      (int)la, a, (int)lb, b);
    if (la + lb + 1 > *cap) {
        size_t c = (la + lb + 1) * 2;
        char *p = realloc(*scratch, c);
        if (!p) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
        *scratch = p;
        *cap = c;
    }
    memcpy(*scratch, a, la);
    memcpy(*scratch + la, b, lb);
    int32_t im = ig_strmap_get(&t->piece_map, *scratch, la + lb);
    if (im < 0)
        return ig_err(IGNIS_E_FORMAT, "%s: merge %ld ('%.*s' '%.*s') makes '%.*s', which is not in the vocab", path,
                      line, (int)la, a, (int)lb, b, (int)(la + lb), *scratch);
    ig_pairmap_put(&t->merges, ia, ib, rank, im);
    return IGNIS_OK;
}

ignis_status ig_bpe_check_bytes(ignis_tokenizer *t, const char *path)
{
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] < 0)
            return ig_err(IGNIS_E_FORMAT, "%s: byte-level vocab lacks the piece for byte 0x%02X", path, b);
    return IGNIS_OK;
}
