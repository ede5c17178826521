/* Internal shape of a tokenizer: one vocabulary, one of two encoders (SentencePiece BPE or
 * byte-level BPE), the added/special tokens matched before either, and the decoder rules. */
#ifndef IG_TOK_INTERNAL_H
#define IG_TOK_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "ignis.h"

/* ------------------------------------------------------------ hash maps */

static inline uint64_t ig_hash_bytes(const void *p, size_t n)
{
    /* FNV-1a on 8-byte words, then a strong finalizer: pieces are short, so a simple
     * word loop beats anything fancier. */
    const unsigned char *s = (const unsigned char *)p;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        __builtin_memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)s[i] << (8 * i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    return h;
}

/* String -> int32 map; keys are spans owned by the caller (the vocabulary's arena). Probing
 * touches only the 8-byte slots; the key is compared only when the 32-bit hashes agree. */
typedef struct ig_strmap {
    struct ig_strmap_slot {
        uint32_t hash; /* 0 marks an empty slot (hashes are forced odd) */
        int32_t val;
    } * slots;
    struct ig_strmap_key {
        const char *key;
        uint32_t len;
    } * keys;
    size_t mask, count;
} ig_strmap;

ignis_status ig_strmap_init(ig_strmap *m, size_t expected);
void ig_strmap_free(ig_strmap *m);
/* Inserts or (replace=true) overwrites; returns false when the key existed and was kept. */
bool ig_strmap_put(ig_strmap *m, const char *key, size_t len, int32_t val, bool replace);
int32_t ig_strmap_get(const ig_strmap *m, const char *key, size_t len); /* -1 when absent */

/* (left id, right id) -> (rank, merged id) for rank-ordered BPE merges. */
typedef struct ig_pairmap {
    struct ig_pair_slot {
        uint64_t key; /* UINT64_MAX marks empty */
        int32_t rank, merged;
    } * slots;
    size_t mask, count;
} ig_pairmap;

ignis_status ig_pairmap_init(ig_pairmap *m, size_t expected);
void ig_pairmap_free(ig_pairmap *m);
void ig_pairmap_put(ig_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged);
/* Like ig_pairmap_put, growing the table when it is 3/4 full; false when out of memory. */
bool ig_pairmap_put_grow(ig_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged);
static inline const struct ig_pair_slot *ig_pairmap_get(const ig_pairmap *m, int32_t a, int32_t b)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    size_t i = (size_t)(h >> 20) & m->mask;
    for (;;) {
        const struct ig_pair_slot *s = &m->slots[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
        i = (i + 1) & m->mask;
    }
}

/* ------------------------------------------------------------ growable buffers */

typedef struct ig_buf {
    char *p;
    size_t n, cap;
} ig_buf;
ignis_status ig_buf_reserve(ig_buf *b, size_t extra);
ignis_status ig_buf_put(ig_buf *b, const void *p, size_t n);

typedef struct ig_ids {
    int32_t *p;
    int n, cap;
} ig_ids;
ignis_status ig_ids_push(ig_ids *v, int32_t id);
ignis_status ig_ids_append(ig_ids *v, const int32_t *ids, int k);

/* ------------------------------------------------------------ the tokenizer */

enum ig_tok_kind { IG_TOK_SPM = 1, IG_TOK_BYTE_BPE };

enum ig_piece_type { /* SentencePiece's ModelProto.SentencePiece.Type */
                     IG_PIECE_NORMAL = 1,
                     IG_PIECE_UNKNOWN = 2,
                     IG_PIECE_CONTROL = 3,
                     IG_PIECE_USER_DEFINED = 4,
                     IG_PIECE_UNUSED = 5,
                     IG_PIECE_BYTE = 6,
};

typedef struct ig_added_token {
    char *content;
    size_t len;
    int32_t id;
    bool special, lstrip, rstrip, normalized, single_word;
} ig_added_token;

typedef struct ig_word_cache ig_word_cache;

struct ignis_tokenizer {
    enum ig_tok_kind kind;
    char *source; /* file the vocabulary came from, for messages */

    /* vocabulary: piece strings as stored (▁ for SentencePiece, byte-level chars for BPE) */
    int n_vocab;
    char **piece;
    uint32_t *piece_len;
    float *score;
    uint8_t *type; /* ig_piece_type; NORMAL for BPE vocabularies */
    ig_strmap piece_map;

    /* added / special tokens, longest first for matching */
    ig_added_token *added;
    int n_added;
    bool added_first[256]; /* bytes an added token starts with */
    bool *is_special;      /* per id: shown only when not skipping special tokens */
    char **alias;          /* per id: display name that overrides the piece (InternLM2 chat tokens) */
    ig_strmap alias_map;

    int32_t bos, eos, unk, pad;
    bool add_bos, add_eos;

    /* SentencePiece */
    bool byte_fallback, add_dummy_prefix, remove_extra_ws, escape_ws;
    int32_t byte_id[256]; /* <0xNN> piece ids (SPM) or byte-level chars' ids (BPE); -1 absent */
    int max_user_len;     /* longest user-defined piece, bytes */
    bool user_first[256]; /* bytes a user-defined piece starts with */
    ig_strmap user_map;   /* user-defined pieces, matched before merging */
    /* Word splitting: no mergeable piece holds "c▁" for a character c outside this set, so
     * the normalized text can be cut before every ▁ that follows such a character and the
     * words merged (and cached) independently. */
    bool spm_words;
    bool join_ascii[128];
    uint32_t join_cp[64];
    int n_join_cp;

    /* SentencePiece-style tokenizer.json (Llama-2 as HF ships it): rank-ordered merges
     * over characters with byte fallback; ▁ from a Prepend/Replace normalizer or Metaspace */
    bool hf_spm;
    bool norm_prepend, norm_replace; /* normalizer Prepend("▁") / Replace(" ", "▁") */
    int meta_prepend;                /* Metaspace: 0 none/never, 1 always, 2 first */
    bool meta_split, fuse_unk;

    /* byte-level BPE */
    ig_pairmap merges;
    ig_strmap raw_map; /* vocabulary keyed by the raw bytes a piece stands for */
    char **raw;        /* per id: raw bytes of the piece (byte-level decoded) */
    uint32_t *raw_len;
    bool ignore_merges; /* whole pre-token found in the vocabulary wins (Llama-3) */
    bool nfc;           /* NFC normalizer declared */
    void *re_code;      /* pcre2_code_8 *, split pattern; NULL: byte-level GPT-2 default */
    bool bl_add_prefix_space;
    ig_word_cache *cache;
    pthread_mutex_t cache_lock;
};

/* loaders (fill t; the caller frees on failure) */
ignis_status ig_spm_load(ignis_tokenizer *t, const char *path);
/* Cheap check that a file starts like a ModelProto (tiktoken rank files share the name). */
bool ig_spm_probe(const char *path);
ignis_status ig_bpe_json_load(ignis_tokenizer *t, const char *path);
/* root: the parsed tokenizer.json, already known to be SentencePiece-style */
ignis_status ig_spm_json_setup(ignis_tokenizer *t, const char *path, void *root);
ignis_status ig_spm_json_encode(const ignis_tokenizer *t, const char *text, size_t len, bool at_start, ig_ids *out,
                                ig_word_cache *cache);
ignis_status ig_bpe_files_load(ignis_tokenizer *t, const char *vocab_path, const char *merges_path);
bool ig_tiktoken_probe(const char *data, size_t n);
ignis_status ig_tiktoken_load(ignis_tokenizer *t, const char *path);
/* A rank file that must first prove to be one (a tokenizer.model that is not SentencePiece):
 * IGNIS_E_FORMAT when its first line is not "base64 rank", else ig_tiktoken_load. */
ignis_status ig_tiktoken_load_probed(ignis_tokenizer *t, const char *path);
/* tokenizer_config.json: add_bos/eos, bos/eos names, added_tokens_decoder. Missing file is fine. */
ignis_status ig_tok_config_load(ignis_tokenizer *t, const char *path);

/* shared construction helpers */
/* An empty tokenizer (no ids yet: bos/eos/unk/pad and byte_id[] at -1); NULL when out of memory. */
ignis_tokenizer *ig_tok_new(void);
/* Is dir/name a regular file? path receives "dir/name" either way. */
bool ig_tok_file_in(const char *dir, const char *name, char *path, size_t cap);
ignis_status ig_tok_alloc_vocab(ignis_tokenizer *t, int n);
ignis_status ig_tok_set_piece(ignis_tokenizer *t, int id, const char *s, size_t len);
/* Registers an added token (replaces an earlier one with the same content). */
ignis_status ig_tok_add_token(ignis_tokenizer *t, const char *content, size_t len, int32_t id, bool special,
                              bool lstrip, bool rstrip, bool normalized, bool single_word);
ignis_status ig_tok_finish(ignis_tokenizer *t); /* sorts added tokens, builds per-id tables */

/* encoders: append ids of one text segment holding no added tokens */
ignis_status ig_spm_encode(const ignis_tokenizer *t, const char *text, size_t len, ig_ids *out, ig_word_cache *cache);
ignis_status ig_spm_prepare_words(ignis_tokenizer *t);
ignis_status ig_bpe_encode(const ignis_tokenizer *t, const char *text, size_t len, ig_ids *out, ig_word_cache *cache);
/* Rank-ordered merging of symbols whose ids are in sc->sy[0..ns). */
typedef struct ig_bpe_sym {
    int32_t id;
    int prev, next;
} ig_bpe_sym;
typedef struct ig_bpe_scratch {
    ig_bpe_sym *sy;
    int cap_sy;
    struct wcand *h;
    int cap_h;
} ig_bpe_scratch;
bool ig_bpe_ensure(void **p, int *cap, int need, size_t elem);
ignis_status ig_bpe_merge_syms(const ignis_tokenizer *t, ig_bpe_scratch *sc, int ns, ig_ids *out);
ignis_status ig_bpe_compile_regex(ignis_tokenizer *t, const char *pattern, const char *where);
void ig_bpe_free_regex(ignis_tokenizer *t);
ig_word_cache *ig_word_cache_new(void);
void ig_word_cache_free(ig_word_cache *c);
#define IG_CACHE_MAX_WORD 22 /* longer words are merged every time (tok_cache.c) */
/* h: ig_hash_bytes(w, n) | 1. Returns the cached ids (count in *k) or NULL. */
const int32_t *ig_word_cache_get(const ig_word_cache *c, const char *w, size_t n, uint64_t h, int *k);
void ig_word_cache_put(ig_word_cache *c, const char *w, size_t n, uint64_t h, const int32_t *ids, int k);

/* byte-level mapping of GPT-2: every byte to a printable code point */
const uint16_t *ig_byte_to_cp_table(void);
int ig_cp_to_byte(uint32_t cp); /* -1 when cp is not a byte-level char */

/* UTF-8 helpers */
/* Length of the valid UTF-8 sequence at s (1..4), or 0 when s[0..n) starts with an invalid
 * or incomplete sequence. */
int ig_utf8_valid_len(const unsigned char *s, size_t n);
/* Length of the maximal invalid subpart at s (WHATWG/Unicode "substitution of maximal
 * subparts"): the bytes one U+FFFD replaces. */
int ig_utf8_invalid_len(const unsigned char *s, size_t n);
int ig_utf8_encode(uint32_t cp, char *out);
uint32_t ig_utf8_decode(const unsigned char *s, int len);

/* JSON with "\u0000" inside strings: jansson refuses NUL in object keys (a vocab with a
 * NUL piece), so such escapes are read as U+10FFFF and ig_tok_restore_nul() turns them
 * back into NUL in the pieces and added tokens once merges are built. */
ignis_status ig_json_load_nul(const char *path, void *root_out, bool *had_nul);
ignis_status ig_tok_restore_nul(ignis_tokenizer *t);

/* files */
ignis_status ig_read_whole(const char *path, char **data, size_t *len);

#endif
