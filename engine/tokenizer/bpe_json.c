/* Hugging Face tokenizer.json with a byte-level BPE model (Llama-3, Qwen2/2.5/3):
 * model (vocab, merges as "a b" or ["a", "b"], ignore_merges), added_tokens, normalizer
 * (NFC, or a Sequence holding it), pre_tokenizer (Split regex + ByteLevel, in a Sequence or
 * alone), post_processor (TemplateProcessing: BOS/EOS) and decoder (ByteLevel). Anything
 * else is refused by name rather than tokenized differently from HF. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/bpe_vocab.h"

static const char *type_of(json_t *o)
{
    json_t *ty = json_object_get(o, "type");
    return json_is_string(ty) ? json_string_value(ty) : "";
}

static ignis_status load_normalizer(ignis_tokenizer *t, const char *path, json_t *n)
{
    if (!n || json_is_null(n)) return IGNIS_OK;
    const char *ty = type_of(n);
    if (!strcmp(ty, "NFC")) {
        t->nfc = true;
        return IGNIS_OK;
    }
    if (!strcmp(ty, "Sequence")) {
        json_t *arr = json_object_get(n, "normalizers");
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e) IG_TRY(load_normalizer(t, path, e));
        return IGNIS_OK;
    }
    return ig_err(IGNIS_E_UNSUPPORTED, "%s: normalizer '%s' is not supported for byte-level BPE", path, ty);
}

typedef struct pretok_state {
    int n_split;
    bool byte_level;
} pretok_state;

static ignis_status load_pretok(ignis_tokenizer *t, const char *path, json_t *p, pretok_state *ps)
{
    if (!p || json_is_null(p)) return IGNIS_OK;
    const char *ty = type_of(p);
    if (!strcmp(ty, "Sequence")) {
        json_t *arr = json_object_get(p, "pretokenizers");
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e) IG_TRY(load_pretok(t, path, e, ps));
        return IGNIS_OK;
    }
    if (!strcmp(ty, "Split")) {
        json_t *pat = json_object_get(p, "pattern");
        json_t *re = json_object_get(pat, "Regex");
        const char *beh = json_string_value(json_object_get(p, "behavior"));
        if (!json_is_string(re))
            return ig_err(IGNIS_E_UNSUPPORTED, "%s: Split pre-tokenizer without a Regex pattern is not supported",
                          path);
        if (!beh || strcmp(beh, "Isolated") != 0 || json_is_true(json_object_get(p, "invert")))
            return ig_err(IGNIS_E_UNSUPPORTED, "%s: Split behavior '%s'%s is not supported (only Isolated)", path,
                          beh ? beh : "?", json_is_true(json_object_get(p, "invert")) ? " with invert" : "");
        if (ps->n_split++ || ps->byte_level)
            return ig_err(IGNIS_E_UNSUPPORTED, "%s: more than one regex split in the pre-tokenizer is not supported",
                          path);
        return ig_bpe_compile_regex(t, json_string_value(re), path);
    }
    if (!strcmp(ty, "ByteLevel")) {
        ps->byte_level = true;
        t->bl_add_prefix_space = json_is_true(json_object_get(p, "add_prefix_space"));
        json_t *ur = json_object_get(p, "use_regex");
        if (!ur || json_is_true(ur)) {
            if (ps->n_split++)
                return ig_err(IGNIS_E_UNSUPPORTED, "%s: ByteLevel use_regex after a Split is not supported", path);
            IG_TRY(ig_bpe_compile_regex(t, IG_GPT2_PATTERN, path));
        }
        return IGNIS_OK;
    }
    return ig_err(IGNIS_E_UNSUPPORTED, "%s: pre-tokenizer '%s' is not supported", path, ty);
}

static ignis_status load_post(ignis_tokenizer *t, const char *path, json_t *p)
{
    if (!p || json_is_null(p)) return IGNIS_OK;
    const char *ty = type_of(p);
    if (!strcmp(ty, "Sequence")) {
        json_t *arr = json_object_get(p, "processors");
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e) IG_TRY(load_post(t, path, e));
        return IGNIS_OK;
    }
    if (!strcmp(ty, "ByteLevel")) return IGNIS_OK; /* offsets only */
    if (!strcmp(ty, "TemplateProcessing")) {
        json_t *single = json_object_get(p, "single");
        json_t *specials = json_object_get(p, "special_tokens");
        size_t i;
        json_t *e;
        bool seen_seq = false;
        json_array_foreach(single, i, e)
        {
            if (json_object_get(e, "Sequence")) {
                seen_seq = true;
                continue;
            }
            json_t *sp = json_object_get(e, "SpecialToken");
            const char *name = json_string_value(json_object_get(sp, "id"));
            if (!name) continue;
            json_t *ids = json_object_get(json_object_get(specials, name), "ids");
            if (json_array_size(ids) != 1)
                return ig_err(IGNIS_E_UNSUPPORTED, "%s: template special token '%s' must map to one id", path, name);
            int32_t id = (int32_t)json_integer_value(json_array_get(ids, 0));
            if (!seen_seq) {
                t->bos = id;
                t->add_bos = true;
            } else {
                t->eos = id;
                t->add_eos = true;
            }
        }
        return IGNIS_OK;
    }
    return ig_err(IGNIS_E_UNSUPPORTED, "%s: post-processor '%s' is not supported", path, ty);
}

static ignis_status load_merges(ignis_tokenizer *t, const char *path, json_t *merges)
{
    if (!json_is_array(merges)) return ig_err(IGNIS_E_FORMAT, "%s: model.merges is missing or not an array", path);
    size_t n = json_array_size(merges);
    IG_TRY(ig_pairmap_init(&t->merges, n));
    char *scratch = NULL;
    size_t cap = 0;
    ignis_status st = IGNIS_OK;
    for (size_t i = 0; i < n && st == IGNIS_OK; i++) {
        json_t *m = json_array_get(merges, i);
        if (json_is_string(m)) {
            const char *s = json_string_value(m);
            size_t sl = json_string_length(m);
            const char *sp = memchr(s, ' ', sl);
            if (!sp || memchr(sp + 1, ' ', sl - (size_t)(sp + 1 - s))) {
                st = ig_err(IGNIS_E_FORMAT, "%s: merge %zu '%s' is not two pieces separated by one space", path, i, s);
                break;
            }
            st = ig_bpe_add_merge(t, path, (long)i, s, (size_t)(sp - s), sp + 1, sl - (size_t)(sp + 1 - s), (int32_t)i,
                                  &scratch, &cap);
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
            st = ig_bpe_add_merge(t, path, (long)i, json_string_value(a), json_string_length(a), json_string_value(b),
                                  json_string_length(b), (int32_t)i, &scratch, &cap);
        } else {
            st = ig_err(IGNIS_E_FORMAT, "%s: merge %zu is neither \"a b\" nor [\"a\", \"b\"]", path, i);
        }
    }
    free(scratch);
    return st;
}

/* Byte fallback, a Metaspace pre-tokenizer or a ▁-writing normalizer mark the
 * SentencePiece-converted layout (Llama-2, Mistral) rather than byte-level BPE. */
static bool mentions_metaspace(json_t *o)
{
    if (json_is_object(o)) {
        const char *ty = type_of(o);
        if (!strcmp(ty, "Metaspace") || !strcmp(ty, "Prepend")) return true;
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) if (mentions_metaspace(v)) return true;
    } else if (json_is_array(o)) {
        size_t i;
        json_t *v;
        json_array_foreach(o, i, v) if (mentions_metaspace(v)) return true;
    }
    return false;
}

static bool is_spm_style(json_t *root)
{
    json_t *model = json_object_get(root, "model");
    return json_is_true(json_object_get(model, "byte_fallback")) ||
           mentions_metaspace(json_object_get(root, "normalizer")) ||
           mentions_metaspace(json_object_get(root, "pre_tokenizer"));
}

ignis_status ig_bpe_json_load(ignis_tokenizer *t, const char *path)
{
    bool had_nul = false;
    json_t *root;
    IG_TRY(ig_json_load_nul(path, &root, &had_nul));
    ignis_status st = IGNIS_OK;
    json_t *model = json_object_get(root, "model");
    const char *mty = type_of(model);
    if (!json_is_object(model)) {
        st = ig_err(IGNIS_E_FORMAT, "%s: no \"model\" object", path);
        goto done;
    }
    if (strcmp(mty, "BPE") != 0 && !(mty[0] == 0 && json_object_get(model, "merges"))) {
        st = ig_err(IGNIS_E_UNSUPPORTED, "%s: model type '%s' is not supported (only BPE)", path, mty);
        goto done;
    }
    const char *cont = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    const char *eow = json_string_value(json_object_get(model, "end_of_word_suffix"));
    if ((cont && *cont) || (eow && *eow)) {
        st = ig_err(IGNIS_E_UNSUPPORTED, "%s: BPE with subword prefixes/suffixes is not supported", path);
        goto done;
    }
    json_t *added = json_object_get(root, "added_tokens");
    int min_size = 0;
    size_t i;
    json_t *e;
    json_array_foreach(added, i, e)
    {
        json_int_t id = json_integer_value(json_object_get(e, "id"));
        if (id + 1 > min_size && id < 16 * 1024 * 1024) min_size = (int)id + 1;
    }
    if ((st = ig_bpe_load_vocab(t, path, json_object_get(model, "vocab"), min_size)) != IGNIS_OK) goto done;
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    if ((st = load_merges(t, path, json_object_get(model, "merges"))) != IGNIS_OK) goto done;
    json_array_foreach(added, i, e)
    {
        json_t *c = json_object_get(e, "content");
        json_t *idv = json_object_get(e, "id");
        if (!json_is_string(c) || !json_is_integer(idv) || json_integer_value(idv) < 0 ||
            json_integer_value(idv) >= t->n_vocab) {
            st = ig_err(IGNIS_E_FORMAT, "%s: added_tokens[%zu] needs a content and a valid id", path, i);
            goto done;
        }
        if ((st = ig_tok_add_token(
                 t, json_string_value(c), json_string_length(c), (int32_t)json_integer_value(idv),
                 json_is_true(json_object_get(e, "special")), json_is_true(json_object_get(e, "lstrip")),
                 json_is_true(json_object_get(e, "rstrip")), json_is_true(json_object_get(e, "normalized")),
                 json_is_true(json_object_get(e, "single_word")))) != IGNIS_OK)
            goto done;
    }
    if (had_nul && (st = ig_tok_restore_nul(t)) != IGNIS_OK) goto done;
    if (is_spm_style(root)) {
        if ((st = ig_spm_json_setup(t, path, root)) != IGNIS_OK) goto done;
        if ((st = load_post(t, path, json_object_get(root, "post_processor"))) != IGNIS_OK) goto done;
        goto done;
    }
    if ((st = load_normalizer(t, path, json_object_get(root, "normalizer"))) != IGNIS_OK) goto done;
    pretok_state ps = {0};
    if ((st = load_pretok(t, path, json_object_get(root, "pre_tokenizer"), &ps)) != IGNIS_OK) goto done;
    if (!ps.byte_level) {
        st = ig_err(IGNIS_E_UNSUPPORTED, "%s: BPE without a ByteLevel pre-tokenizer is not supported", path);
        goto done;
    }
    if ((st = load_post(t, path, json_object_get(root, "post_processor"))) != IGNIS_OK) goto done;
    json_t *dec = json_object_get(root, "decoder");
    if (dec && !json_is_null(dec) && strcmp(type_of(dec), "ByteLevel") != 0) {
        st = ig_err(IGNIS_E_UNSUPPORTED, "%s: decoder '%s' is not supported with byte-level BPE", path, type_of(dec));
        goto done;
    }
    if ((st = ig_bpe_build_raw(t, path)) != IGNIS_OK) goto done;
    if ((st = ig_bpe_check_bytes(t, path)) != IGNIS_OK) goto done;
    t->cache = ig_word_cache_new();
    if (!t->cache) {
        st = ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    pthread_mutex_init(&t->cache_lock, NULL);
done:
    json_decref(root);
    return st;
}
