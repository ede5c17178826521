/* The older two-file form of a byte-level BPE tokenizer (Qwen2's vocab.json + merges.txt).
 * What tokenizer.json would declare comes from transformers' Qwen2Tokenizer: NFC, the
 * Qwen2 split pattern, byte-level mapping, no BOS; added tokens come from
 * tokenizer_config.json (loaded afterwards by the caller). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/bpe_vocab.h"

ignis_status ig_bpe_files_load(ignis_tokenizer *t, const char *vocab_path, const char *merges_path)
{
    bool had_nul = false;
    json_t *vocab;
    IG_TRY(ig_json_load_nul(vocab_path, &vocab, &had_nul));
    ignis_status st = ig_bpe_load_vocab(t, vocab_path, vocab, 0);
    json_decref(vocab);
    IG_TRY(st);
    char *data;
    size_t size;
    IG_TRY(ig_read_whole(merges_path, &data, &size));
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if ((st = ig_pairmap_init(&t->merges, lines)) != IGNIS_OK) {
        free(data);
        return st;
    }
    char *scratch = NULL;
    size_t cap = 0;
    int32_t rank = 0;
    long line = 0;
    for (char *p = data; p < data + size && st == IGNIS_OK;) {
        char *nl = memchr(p, '\n', (size_t)(data + size - p));
        char *end = nl ? nl : data + size;
        line++;
        size_t len = (size_t)(end - p);
        if (len && p[len - 1] == '\r') len--;
        if (len == 0 || (line == 1 && len >= 8 && memcmp(p, "#version", 8) == 0)) {
            p = end + 1;
            continue;
        }
        char *sp = memchr(p, ' ', len);
        if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - p))) {
            st = ig_err(IGNIS_E_FORMAT, "%s:%ld: expected two pieces separated by one space", merges_path, line);
            break;
        }
        st = ig_bpe_add_merge(t, merges_path, line, p, (size_t)(sp - p), sp + 1, len - (size_t)(sp + 1 - p), rank++,
                              &scratch, &cap);
        p = end + 1;
    }
    free(scratch);
    free(data);
    IG_TRY(st);
    if (rank == 0) return ig_err(IGNIS_E_FORMAT, "%s: no merges", merges_path);
    if (had_nul) IG_TRY(ig_tok_restore_nul(t));
    t->nfc = true;
    IG_TRY(ig_bpe_compile_regex(t, IG_QWEN2_PATTERN, vocab_path));
    IG_TRY(ig_bpe_build_raw(t, vocab_path));
    IG_TRY(ig_bpe_check_bytes(t, vocab_path));
    t->cache = ig_word_cache_new();
    if (!t->cache) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
    pthread_mutex_init(&t->cache_lock, NULL);
    return IGNIS_OK;
}
