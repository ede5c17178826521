/* ig_tokenizer_check_dir: a workspace must not carry a tokenizer file that cannot be
 * loaded. The loader picks one source (tokenizer.json over tokenizer.model over
 * vocab.json + merges.txt), so a broken file it does not pick would lie in the workspace
 * unnoticed until something else reads it: every source is loaded on its own here. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include "core/error.h"
#include "tokenizer/tok_check.h"
#include "tokenizer/tok_internal.h"

typedef enum { SRC_JSON, SRC_MODEL, SRC_BPE_FILES, SRC_TIKTOKEN } src_kind;

/* Loads one vocabulary source on its own; the loaders' messages name the file. */
static ignis_status load_source(src_kind kind, const char *path, const char *path2)
{
    ignis_tokenizer *t = ig_tok_new();
    if (!t) return ig_err(IGNIS_E_NOMEM, "%s: out of memory checking the tokenizer", path);
    ignis_status s = IGNIS_OK;
    if (kind == SRC_JSON) {
        s = ig_bpe_json_load(t, path);
    } else if (kind == SRC_BPE_FILES) {
        s = ig_bpe_files_load(t, path, path2);
    } else if (kind == SRC_MODEL && ig_spm_probe(path)) {
        s = ig_spm_load(t, path);
    } else {
        s = ig_tiktoken_load_probed(t, path);
    }
    if (s == IGNIS_OK && t->n_vocab <= 0) s = ig_err(IGNIS_E_FORMAT, "%s: the vocabulary is empty", path);
    ignis_tokenizer_free(t);
    return s;
}

static ignis_status check_json(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j) return ig_err(IGNIS_E_FORMAT, "%s: not valid JSON (line %d: %s)", path, je.line, je.text);
    json_decref(j);
    return IGNIS_OK;
}

static ignis_status check_tiktoken_files(const char *dir, bool *any)
{
    DIR *d = opendir(dir);
    if (!d) return IGNIS_OK; /* the caller reports an unreadable directory */
    struct dirent *e;
    ignis_status s = IGNIS_OK;
    while (s == IGNIS_OK && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n <= 9 || strcmp(e->d_name + n - 9, ".tiktoken") != 0) continue;
        char path[8192];
        if (!ig_tok_file_in(dir, e->d_name, path, sizeof path)) continue;
        *any = true;
        s = load_source(SRC_TIKTOKEN, path, NULL);
    }
    closedir(d);
    return s;
}

ignis_status ig_tokenizer_check_dir(const char *dir, int *vocab)
{
    if (vocab) *vocab = 0;
    char p[4096], p2[4096];
    bool any = false;
    static const char *const k_json[] = {"tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                                         "added_tokens.json"};
    for (size_t i = 0; i < sizeof k_json / sizeof k_json[0]; i++)
        if (ig_tok_file_in(dir, k_json[i], p, sizeof p)) IG_TRY(check_json(p));
    if (ig_tok_file_in(dir, "tokenizer.json", p, sizeof p)) {
        any = true;
        IG_TRY(load_source(SRC_JSON, p, NULL));
    }
    if (ig_tok_file_in(dir, "tokenizer.model", p, sizeof p)) {
        any = true;
        IG_TRY(load_source(SRC_MODEL, p, NULL));
    }
    bool have_vocab = ig_tok_file_in(dir, "vocab.json", p, sizeof p),
         have_merges = ig_tok_file_in(dir, "merges.txt", p2, sizeof p2);
    if (have_vocab || have_merges) {
        any = true;
        if (!have_vocab || !have_merges)
            return ig_err(IGNIS_E_FORMAT, "%s: %s is present but %s is missing", dir,
                          have_vocab ? "vocab.json" : "merges.txt", have_vocab ? "merges.txt" : "vocab.json");
        IG_TRY(load_source(SRC_BPE_FILES, p, p2));
    }
    IG_TRY(check_tiktoken_files(dir, &any));
    if (!any) return IGNIS_OK;

    /* the tokenizer the loader picks, with its config, on a sample text */
    ignis_tokenizer *t;
    IG_TRY(ignis_tokenizer_open(dir, &t));
    static const char k_sample[] = "Hello, world! 123 <- a sample";
    int32_t *ids = NULL;
    int n = 0;
    const char *src = t->source ? t->source : dir;
    ignis_status s = ignis_tokenize(t, k_sample, sizeof k_sample - 1, true, true, &ids, &n);
    if (s != IGNIS_OK)
        s = ig_err_prefix(s, "%s: cannot encode a sample text: ", src);
    else if (n == 0)
        s = ig_err(IGNIS_E_FORMAT, "%s: encodes a sample text as no tokens", src);
    if (s == IGNIS_OK && vocab) *vocab = ignis_tokenizer_vocab_size(t);
    free(ids);
    ignis_tokenizer_free(t);
    return s;
}
