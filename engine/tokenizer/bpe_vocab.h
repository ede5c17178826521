/* Shared construction of byte-level BPE vocabularies (bpe_json.c, bpe_files.c). */
#ifndef IG_BPE_VOCAB_H
#define IG_BPE_VOCAB_H

#include <jansson.h>

#include "tokenizer/tok_internal.h"

/* The two pre-tokenizer patterns the supported families use. */
#define IG_QWEN2_PATTERN                                                                                               \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"  \
    "\\s+(?!\\S)|\\s+"
#define IG_GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/* vocab: {"piece": id}; min_size reserves ids for added tokens beyond it. */
ignis_status ig_bpe_load_vocab(ignis_tokenizer *t, const char *path, json_t *vocab, int min_size);
ignis_status ig_bpe_build_raw(ignis_tokenizer *t, const char *path);
ignis_status ig_bpe_add_merge(ignis_tokenizer *t, const char *path, long line, const char *a, size_t la, const char *b,
                              size_t lb, int32_t rank, char **scratch, size_t *cap);
ignis_status ig_bpe_check_bytes(ignis_tokenizer *t, const char *path);

#endif
