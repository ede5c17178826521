/* tokenizer_config.json (transformers' side file): whether BOS/EOS are added, which
 * pieces are BOS/EOS, and the added tokens (added_tokens_decoder) with their flags. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* "bos_token": "<s>" or {"content": "<s>", ...} or null */
static const char *token_name(json_t *v)
{
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) {
        json_t *c = json_object_get(v, "content");
        if (json_is_string(c)) return json_string_value(c);
    }
    return NULL;
}

static ignis_status apply_added(ignis_tokenizer *t, const char *path, json_t *dec)
{
    const char *key;
    json_t *v;
    json_object_foreach(dec, key, v)
    {
        char *end;
        long id = strtol(key, &end, 10);
        json_t *content = json_object_get(v, "content");
        if (*end || id < 0 || !json_is_string(content))
            return ig_err(IGNIS_E_FORMAT, "%s: added_tokens_decoder entry '%s' needs an integer key and a content",
                          path, key);
        if (id >= t->n_vocab + (1 << 20))
            return ig_err(IGNIS_E_FORMAT, "%s: added token id %ld is far past the vocabulary (%d)", path, id,
                          t->n_vocab);
        IG_TRY(ig_tok_add_token(t, json_string_value(content), json_string_length(content), (int32_t)id,
                                json_is_true(json_object_get(v, "special")), json_is_true(json_object_get(v, "lstrip")),
                                json_is_true(json_object_get(v, "rstrip")),
                                json_is_true(json_object_get(v, "normalized")),
                                json_is_true(json_object_get(v, "single_word"))));
    }
    return IGNIS_OK;
}

static int32_t lookup(ignis_tokenizer *t, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && memcmp(t->added[i].content, name, n) == 0) return t->added[i].id;
    return ig_strmap_get(&t->piece_map, name, n);
}

ignis_status ig_tok_config_load(ignis_tokenizer *t, const char *path)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je); /* model_max_length: 1e30 */
    if (!root) return ig_err(IGNIS_E_FORMAT, "%s:%d:%d: bad JSON: %s", path, je.line, je.column, je.text);
    ignis_status st = IGNIS_OK;
    if (!json_is_object(root)) {
        st = ig_err(IGNIS_E_FORMAT, "%s: expected a JSON object", path);
        goto done;
    }
    json_t *dec = json_object_get(root, "added_tokens_decoder");
    if (json_is_object(dec) && (st = apply_added(t, path, dec)) != IGNIS_OK) goto done;
    json_t *v;
    if ((v = json_object_get(root, "bos_token"))) {
        const char *name = token_name(v);
        if (json_is_null(v))
            t->bos = -1;
        else if (name) {
            int32_t id = lookup(t, name);
            if (id >= 0) t->bos = id;
        }
    }
    if ((v = json_object_get(root, "eos_token"))) {
        const char *name = token_name(v);
        if (name) {
            int32_t id = lookup(t, name);
            if (id >= 0) t->eos = id;
        }
    }
    if ((v = json_object_get(root, "add_bos_token")) && json_is_boolean(v)) t->add_bos = json_is_true(v);
    if ((v = json_object_get(root, "add_eos_token")) && json_is_boolean(v)) t->add_eos = json_is_true(v);
done:
    json_decref(root);
    return st;
}
