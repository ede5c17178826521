/* SentencePiece-style tokenizer.json, the form HF ships for Llama-2 and Mistral: a BPE
 * model over characters with rank-ordered merges and <0xNN> byte fallback, ▁ written by a
 * Prepend + Replace normalizer (legacy) or by a Metaspace pre-tokenizer (prepend_scheme
 * always/first/never, split or not); decoded like SentencePiece (▁ -> space, byte pieces,
 * the first space stripped). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

static const char k_ws[] = "\xE2\x96\x81";

static const char *type_of(json_t *o)
{
    json_t *ty = json_object_get(o, "type");
    return json_is_string(ty) ? json_string_value(ty) : "";
}

static bool is_ws_string(json_t *v, const char *want)
{
    return json_is_string(v) && !strcmp(json_string_value(v), want);
}

static ignis_status load_normalizer(ignis_tokenizer *t, const char *path, json_t *n)
{
    if (!n || json_is_null(n)) return IGNIS_OK;
    const char *ty = type_of(n);
    if (!strcmp(ty, "Sequence")) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(n, "normalizers"), i, e) IG_TRY(load_normalizer(t, path, e));
        return IGNIS_OK;
    }
    if (!strcmp(ty, "Prepend") && is_ws_string(json_object_get(n, "prepend"), k_ws)) {
        t->norm_prepend = true;
        return IGNIS_OK;
    }
    if (!strcmp(ty, "Replace") && is_ws_string(json_object_get(json_object_get(n, "pattern"), "String"), " ") &&
        is_ws_string(json_object_get(n, "content"), k_ws)) {
        t->norm_replace = true;
        return IGNIS_OK;
    }
    return ig_err(IGNIS_E_UNSUPPORTED, "%s: normalizer '%s' is not supported with a SentencePiece-style BPE", path, ty);
}

static ignis_status load_pretok(ignis_tokenizer *t, const char *path, json_t *p)
{
    if (!p || json_is_null(p)) return IGNIS_OK;
    const char *ty = type_of(p);
    if (!strcmp(ty, "Sequence")) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(p, "pretokenizers"), i, e) IG_TRY(load_pretok(t, path, e));
        return IGNIS_OK;
    }
    if (!strcmp(ty, "Metaspace")) {
        json_t *rep = json_object_get(p, "replacement");
        if (rep && !is_ws_string(rep, k_ws))
            return ig_err(IGNIS_E_UNSUPPORTED, "%s: Metaspace replacement other than U+2581 is not supported", path);
        const char *scheme = json_string_value(json_object_get(p, "prepend_scheme"));
        if (scheme)
            t->meta_prepend = !strcmp(scheme, "always") ? 1 : !strcmp(scheme, "first") ? 2 : 0;
        else
            t->meta_prepend = json_is_false(json_object_get(p, "add_prefix_space")) ? 0 : 1;
        json_t *split = json_object_get(p, "split");
        t->meta_split = !split || json_is_true(split);
        t->norm_replace = true;
        return IGNIS_OK;
    }
    return ig_err(IGNIS_E_UNSUPPORTED, "%s: pre-tokenizer '%s' is not supported with a SentencePiece-style BPE", path,
                  ty);
}

static ignis_status load_decoder(ignis_tokenizer *t, const char *path, json_t *d)
{
    if (!d || json_is_null(d)) return IGNIS_OK;
    const char *ty = type_of(d);
    if (!strcmp(ty, "Sequence")) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(d, "decoders"), i, e) IG_TRY(load_decoder(t, path, e));
        return IGNIS_OK;
    }
    if (!strcmp(ty, "Strip")) {
        t->add_dummy_prefix = json_integer_value(json_object_get(d, "start")) > 0;
        return IGNIS_OK;
    }
    if (!strcmp(ty, "Metaspace")) {
        const char *scheme = json_string_value(json_object_get(d, "prepend_scheme"));
        t->add_dummy_prefix =
            scheme ? strcmp(scheme, "never") != 0 : !json_is_false(json_object_get(d, "add_prefix_space"));
        return IGNIS_OK;
    }
    if (!strcmp(ty, "Replace") || !strcmp(ty, "ByteFallback") || !strcmp(ty, "Fuse")) return IGNIS_OK;
    return ig_err(IGNIS_E_UNSUPPORTED, "%s: decoder '%s' is not supported with a SentencePiece-style BPE", path, ty);
}

ignis_status ig_spm_json_setup(ignis_tokenizer *t, const char *path, void *rootp)
{
    json_t *root = rootp, *model = json_object_get(root, "model");
    t->kind = IG_TOK_SPM;
    t->hf_spm = true;
    t->escape_ws = true;
    t->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    t->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    if (unk) t->unk = ig_strmap_get(&t->piece_map, unk, strlen(unk));
    for (int id = 0; id < t->n_vocab; id++) {
        const char *p = t->piece[id];
        if (p && t->piece_len[id] == 6 && !memcmp(p, "<0x", 3) && p[5] == '>') {
            char hex[3] = {p[3], p[4], 0}, *end;
            unsigned long v = strtoul(hex, &end, 16);
            if (!*end && v < 256) {
                t->byte_id[v] = id;
                t->type[id] = IG_PIECE_BYTE;
            }
        }
    }
    if (t->byte_fallback)
        for (int b = 0; b < 256; b++)
            if (t->byte_id[b] < 0)
                return ig_err(IGNIS_E_FORMAT, "%s: byte_fallback is set but piece <0x%02X> is missing", path, b);
    for (int i = 0; i < t->n_added; i++) {
        int32_t id = t->added[i].id;
        if (id >= 0 && id < t->n_vocab && t->added[i].special) t->type[id] = IG_PIECE_CONTROL;
        if (id == t->unk) t->type[id] = IG_PIECE_UNKNOWN;
    }
    IG_TRY(load_normalizer(t, path, json_object_get(root, "normalizer")));
    IG_TRY(load_pretok(t, path, json_object_get(root, "pre_tokenizer")));
    IG_TRY(load_decoder(t, path, json_object_get(root, "decoder")));
    IG_TRY(ig_spm_prepare_words(t));
    if (t->fuse_unk && !t->byte_fallback) t->spm_words = false; /* unk runs fuse only within HF's words */
    return IGNIS_OK;
}

/* HF BPE on one word: characters (or their bytes when unknown) merged by rank. */
static ignis_status merge_word(const ignis_tokenizer *t, const char *w, size_t n, ig_bpe_scratch *sc, ig_ids *out)
{
    if (t->ignore_merges) {
        int32_t id = ig_strmap_get(&t->piece_map, w, n);
        if (id >= 0) return ig_ids_push(out, id);
    }
    if (!ig_bpe_ensure((void **)&sc->sy, &sc->cap_sy, (int)n + 1, sizeof *sc->sy))
        return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
    int ns = 0;
    bool prev_unk = false;
    for (size_t i = 0; i < n;) {
        int l = ig_utf8_valid_len((const unsigned char *)w + i, n - i);
        if (!l) l = 1; /* an invalid byte stands alone and falls back to <0xNN> */
        int32_t id = ig_strmap_get(&t->piece_map, w + i, (size_t)l);
        if (id >= 0) {
            sc->sy[ns++].id = id;
            prev_unk = false;
        } else if (t->byte_fallback) {
            for (int k = 0; k < l; k++)
                sc->sy[ns++].id = t->byte_id[(unsigned char)w[i + (size_t)k]];
            prev_unk = false;
        } else if (t->unk >= 0) {
            if (!(t->fuse_unk && prev_unk)) sc->sy[ns++].id = t->unk;
            prev_unk = true;
        }
        i += (size_t)l;
    }
    return ig_bpe_merge_syms(t, sc, ns, out);
}

static ignis_status encode_word(const ignis_tokenizer *t, const char *w, size_t n, ig_bpe_scratch *sc, ig_ids *out,
                                ig_word_cache *cache)
{
    if (!cache || n > IG_CACHE_MAX_WORD) return merge_word(t, w, n, sc, out);
    uint64_t h = ig_hash_bytes(w, n) | 1;
    int k;
    const int32_t *ids = ig_word_cache_get(cache, w, n, h, &k);
    if (ids) return ig_ids_append(out, ids, k);
    int before = out->n;
    IG_TRY(merge_word(t, w, n, sc, out));
    ig_word_cache_put(cache, w, n, h, out->p + before, out->n - before);
    return IGNIS_OK;
}

static bool joins(const ignis_tokenizer *t, const unsigned char *p, int l)
{
    if (l == 1) return p[0] < 128 && t->join_ascii[p[0]];
    uint32_t cp = ig_utf8_decode(p, l);
    for (int k = 0; k < t->n_join_cp; k++)
        if (t->join_cp[k] == cp) return true;
    return false;
}

ignis_status ig_spm_json_encode(const ignis_tokenizer *t, const char *text, size_t len, bool at_start, ig_ids *out,
                                ig_word_cache *cache)
{
    ig_buf nb = {0};
    ignis_status st = ig_buf_reserve(&nb, len * 3 + 8);
    if (st != IGNIS_OK) return st;
    bool prepend = t->norm_prepend || (t->meta_prepend == 1 || (t->meta_prepend == 2 && at_start));
    /* Metaspace prepends only when the text does not already start with ▁ (a space) */
    if (!t->norm_prepend && prepend && (text[0] == ' ' || (len >= 3 && !memcmp(text, k_ws, 3)))) prepend = false;
    if (prepend) memcpy(nb.p, k_ws, 3), nb.n = 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ' && t->norm_replace)
            memcpy(nb.p + nb.n, k_ws, 3), nb.n += 3;
        else
            nb.p[nb.n++] = text[i];
    }
    const char *s = nb.p;
    size_t n = nb.n;
    ig_bpe_scratch sc = {0};
    /* words: Metaspace split=true cuts before every ▁; otherwise the cut is ours, made only
     * where no piece can span it (see ig_spm_prepare_words) */
    bool split_all = t->meta_split;
    if (!split_all && !t->spm_words) {
        st = encode_word(t, s, n, &sc, out, cache);
    } else {
        const unsigned char *u = (const unsigned char *)s;
        size_t w = 0, i = 0;
        int prev_len = 0;
        while (i < n && st == IGNIS_OK) {
            int l = ig_utf8_valid_len(u + i, n - i);
            if (!l) l = 1;
            if (l == 3 && i > w && !memcmp(u + i, k_ws, 3) && (split_all || !joins(t, u + i - prev_len, prev_len))) {
                st = encode_word(t, s + w, i - w, &sc, out, cache);
                w = i;
            }
            prev_len = l;
            i += (size_t)l;
        }
        if (st == IGNIS_OK && w < n) st = encode_word(t, s + w, n - w, &sc, out, cache);
    }
    free(sc.sy);
    free(sc.h);
    free(nb.p);
    return st;
}
