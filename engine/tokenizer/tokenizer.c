/* Opening a tokenizer directory, the per-id tables every source shares, the public
 * accessors, and the encode driver: BOS, added/special tokens split out, the model's
 * encoder on the text between them, EOS. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tokenizer/tok_internal.h"

ignis_status ig_read_whole(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return ig_err(errno == ENOENT ? IGNIS_E_NOT_FOUND : IGNIS_E_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return ig_err(IGNIS_E_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *p = malloc(n + 1);
    if (!p) {
        fclose(f);
        return ig_err(IGNIS_E_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    if (n && fread(p, 1, n, f) != n) {
        int e = errno;
        free(p);
        fclose(f);
        return ig_err(IGNIS_E_IO, "%s: read failed: %s", path, e ? strerror(e) : "short read");
    }
    fclose(f);
    p[n] = 0;
    *data = p;
    *len = n;
    return IGNIS_OK;
}

ignis_status ig_tok_alloc_vocab(ignis_tokenizer *t, int n)
{
    t->n_vocab = n;
    t->piece = calloc((size_t)n, sizeof *t->piece);
    t->piece_len = calloc((size_t)n, sizeof *t->piece_len);
    t->score = calloc((size_t)n, sizeof *t->score);
    t->type = calloc((size_t)n, sizeof *t->type);
    if (!t->piece || !t->piece_len || !t->score || !t->type)
        return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory for %d pieces", n);
    for (int i = 0; i < n; i++)
        t->type[i] = IG_PIECE_NORMAL;
    return ig_strmap_init(&t->piece_map, (size_t)n);
}

ignis_status ig_tok_set_piece(ignis_tokenizer *t, int id, const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (!p) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
    memcpy(p, s, len);
    p[len] = 0;
    free(t->piece[id]);
    t->piece[id] = p;
    t->piece_len[id] = (uint32_t)len;
    return IGNIS_OK;
}

ignis_status ig_tok_add_token(ignis_tokenizer *t, const char *content, size_t len, int32_t id, bool special,
                              bool lstrip, bool rstrip, bool normalized, bool single_word)
{
    if (len == 0) return IGNIS_OK;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == len && memcmp(t->added[i].content, content, len) == 0) {
            ig_added_token *a = &t->added[i];
            a->id = id;
            a->special = special;
            a->lstrip = lstrip;
            a->rstrip = rstrip;
            a->normalized = normalized;
            a->single_word = single_word;
            return IGNIS_OK;
        }
    ig_added_token *na = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *na);
    if (!na) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
    t->added = na;
    char *c = malloc(len + 1);
    if (!c) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
    memcpy(c, content, len);
    c[len] = 0;
    t->added[t->n_added++] = (ig_added_token){c, len, id, special, lstrip, rstrip, normalized, single_word};
    return IGNIS_OK;
}

/* Added tokens may sit past the model's vocabulary (Qwen2's vocab.json stops before its
 * special tokens). */
static ignis_status grow_vocab(ignis_tokenizer *t, int n)
{
    size_t old = (size_t)t->n_vocab, nn = (size_t)n;
#define GROW(f)                                                                                                        \
    do {                                                                                                               \
        if (t->f) {                                                                                                    \
            void *p_ = realloc(t->f, nn * sizeof *t->f);                                                               \
            if (!p_) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");                                         \
            t->f = p_;                                                                                                 \
            memset(t->f + old, 0, (nn - old) * sizeof *t->f);                                                          \
        }                                                                                                              \
    } while (0)
    GROW(piece);
    GROW(piece_len);
    GROW(score);
    GROW(type);
    GROW(raw);
    GROW(raw_len);
#undef GROW
    for (size_t i = old; i < nn; i++)
        t->type[i] = IG_PIECE_USER_DEFINED;
    t->n_vocab = n;
    return IGNIS_OK;
}

static int cmp_added(const void *a, const void *b)
{
    const ig_added_token *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return memcmp(x->content, y->content, x->len);
}

ignis_status ig_tok_finish(ignis_tokenizer *t)
{
    qsort(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added);
    int32_t max_id = t->n_vocab - 1;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id > max_id) max_id = t->added[i].id;
    if (max_id >= t->n_vocab) IG_TRY(grow_vocab(t, max_id + 1));
    t->is_special = calloc((size_t)t->n_vocab, sizeof *t->is_special);
    t->alias = calloc((size_t)t->n_vocab, sizeof *t->alias);
    if (!t->is_special || !t->alias) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
    IG_TRY(ig_strmap_init(&t->alias_map, (size_t)t->n_added + 4));
    for (int i = 0; i < t->n_added; i++) {
        ig_added_token *a = &t->added[i];
        t->added_first[(unsigned char)a->content[0]] = true;
        if (a->id < 0 || a->id >= t->n_vocab) continue;
        if (a->special) t->is_special[a->id] = true;
        /* An added token whose text differs from the stored piece (InternLM2's chat tokens,
         * config-renamed pieces) is shown by its added name. */
        if (t->piece[a->id] == NULL || t->piece_len[a->id] != a->len || memcmp(t->piece[a->id], a->content, a->len)) {
            if (t->piece[a->id] == NULL) {
                IG_TRY(ig_tok_set_piece(t, a->id, a->content, a->len));
                ig_strmap_put(&t->piece_map, t->piece[a->id], a->len, a->id, false);
            } else if (!t->alias[a->id]) {
                t->alias[a->id] = a->content;
            }
        }
        ig_strmap_put(&t->alias_map, a->content, a->len, a->id, true);
    }
    for (int i = 0; i < t->n_vocab; i++)
        if (!t->piece[i]) IG_TRY(ig_tok_set_piece(t, i, "", 0));
    return IGNIS_OK;
}

void ignis_tokenizer_free(ignis_tokenizer *t)
{
    if (!t) return;
    for (int i = 0; i < t->n_vocab; i++) {
        if (t->piece) free(t->piece[i]);
        if (t->raw) free(t->raw[i]);
    }
    free(t->piece);
    free(t->piece_len);
    free(t->score);
    free(t->type);
    free(t->raw);
    free(t->raw_len);
    for (int i = 0; i < t->n_added; i++)
        free(t->added[i].content);
    free(t->added);
    free(t->is_special);
    free(t->alias);
    free(t->source);
    ig_strmap_free(&t->piece_map);
    ig_strmap_free(&t->alias_map);
    ig_strmap_free(&t->user_map);
    ig_strmap_free(&t->raw_map);
    ig_pairmap_free(&t->merges);
    ig_bpe_free_regex(t);
    if (t->cache) {
        ig_word_cache_free(t->cache);
        pthread_mutex_destroy(&t->cache_lock);
    }
    free(t);
}

bool ig_tok_file_in(const char *dir, const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

ignis_tokenizer *ig_tok_new(void)
{
    ignis_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->bos = t->eos = t->unk = t->pad = -1;
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = -1;
    return t;
}

/* InternLM2 keeps its chat tokens as [UNUSED_TOKEN_n] pieces; its HF tokenizer_config
 * names them. Without that file (a bare tokenizer.model) we apply the same names. */
static ignis_status internlm2_aliases(ignis_tokenizer *t)
{
    static const struct {
        int32_t id;
        const char *piece, *name;
    } k[] = {
        {92538, "[UNUSED_TOKEN_141]", "<|plugin|>"},     {92539, "[UNUSED_TOKEN_142]", "<|interpreter|>"},
        {92540, "[UNUSED_TOKEN_143]", "<|action_end|>"}, {92541, "[UNUSED_TOKEN_144]", "<|action_start|>"},
        {92542, "[UNUSED_TOKEN_145]", "<|im_end|>"},     {92543, "[UNUSED_TOKEN_146]", "<|im_start|>"},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        if (k[i].id >= t->n_vocab || strcmp(t->piece[k[i].id], k[i].piece) != 0) return IGNIS_OK;
    }
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        IG_TRY(ig_tok_add_token(t, k[i].name, strlen(k[i].name), k[i].id, true, false, false, false, false));
    return IGNIS_OK;
}

static ignis_status open_in(const char *dir, ignis_tokenizer *t, bool *found)
{
    char p1[4096], p2[4096], cfg[4096];
    *found = true;
    bool have_cfg = ig_tok_file_in(dir, "tokenizer_config.json", cfg, sizeof cfg);
    if (ig_tok_file_in(dir, "tokenizer.json", p1, sizeof p1)) {
        t->source = strdup(p1);
        IG_TRY(ig_bpe_json_load(t, p1));
    } else if (ig_tok_file_in(dir, "tokenizer.model", p1, sizeof p1) && ig_spm_probe(p1)) {
        t->source = strdup(p1);
        IG_TRY(ig_spm_load(t, p1));
        IG_TRY(internlm2_aliases(t));
    } else if (ig_tok_file_in(dir, "vocab.json", p1, sizeof p1)) {
        if (!ig_tok_file_in(dir, "merges.txt", p2, sizeof p2))
            return ig_err(IGNIS_E_NOT_FOUND, "%s: vocab.json is present but merges.txt is missing", dir);
        t->source = strdup(p1);
        IG_TRY(ig_bpe_files_load(t, p1, p2));
    } else if (ig_tok_file_in(dir, "tokenizer.model", p1, sizeof p1)) {
        t->source = strdup(p1);
        IG_TRY(ig_tiktoken_load_probed(t, p1));
    } else if (ig_tok_file_in(dir, "qwen.tiktoken", p1, sizeof p1)) { /* Qwen (v1) */
        t->source = strdup(p1);
        IG_TRY(ig_tiktoken_load(t, p1));
    } else {
        *found = false;
        return IGNIS_OK;
    }
    if (have_cfg) IG_TRY(ig_tok_config_load(t, cfg));
    return ig_tok_finish(t);
}

ignis_status ignis_tokenizer_open(const char *dir, ignis_tokenizer **out)
{
    if (!dir || !out) return ig_err(IGNIS_E_ARG, "ignis_tokenizer_open: NULL argument");
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0) return ig_err(IGNIS_E_NOT_FOUND, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return ig_err(IGNIS_E_ARG, "%s: not a directory (pass the tokenizer's directory)", dir);
    const char *cands[2];
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/tokenizer", dir);
    cands[0] = dir;
    cands[1] = sub;
    for (int c = 0; c < 2; c++) {
        if (c == 1 && (stat(sub, &st) != 0 || !S_ISDIR(st.st_mode))) break;
        ignis_tokenizer *t = ig_tok_new();
        if (!t) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
        bool found;
        ignis_status s = open_in(cands[c], t, &found);
        if (s != IGNIS_OK || !found) {
            ignis_tokenizer_free(t);
            if (s != IGNIS_OK) return s;
            continue;
        }
        *out = t;
        return IGNIS_OK;
    }
    return ig_err(IGNIS_E_NOT_FOUND,
                  "%s: no tokenizer found (looked for tokenizer.json, tokenizer.model, vocab.json + merges.txt "
                  "in it and in its tokenizer/ subdirectory)",
                  dir);
}

int ignis_tokenizer_vocab_size(const ignis_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t ignis_tokenizer_bos(const ignis_tokenizer *t) { return t ? t->bos : -1; }
int32_t ignis_tokenizer_eos(const ignis_tokenizer *t) { return t ? t->eos : -1; }

const char *ignis_token_piece(const ignis_tokenizer *t, int32_t id)
{
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    return t->alias[id] ? t->alias[id] : t->piece[id];
}

int32_t ignis_token_id(const ignis_tokenizer *t, const char *piece)
{
    if (!t || !piece) return -1;
    size_t n = strlen(piece);
    int32_t id = ig_strmap_get(&t->alias_map, piece, n);
    if (id >= 0) return id;
    return ig_strmap_get(&t->piece_map, piece, n);
}

bool ignis_token_is_special(const ignis_tokenizer *t, int32_t id)
{
    return t && id >= 0 && id < t->n_vocab && t->is_special[id];
}

/* ------------------------------------------------------------ encode driver */

static bool is_ws_at(const unsigned char *s, size_t n, size_t *w)
{
    /* Rust's char::is_whitespace (White_Space property), which HF's lstrip/rstrip use. */
    unsigned c = s[0];
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) {
        *w = 1;
        return true;
    }
    int l = ig_utf8_valid_len(s, n);
    if (l < 2) return false;
    uint32_t cp = ig_utf8_decode(s, l);
    if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
        cp == 0x202F || cp == 0x205F || cp == 0x3000) {
        *w = (size_t)l;
        return true;
    }
    return false;
}

static size_t ws_run_before(const unsigned char *s, size_t lo, size_t pos)
{
    /* Walks back over whitespace characters ending at pos (not before lo). */
    size_t p = pos;
    while (p > lo) {
        size_t q = p - 1;
        while (q > lo && (s[q] & 0xC0) == 0x80 && p - q < 4)
            q--;
        size_t w;
        if (is_ws_at(s + q, p - q, &w) && q + w == p)
            p = q;
        else
            break;
    }
    return p;
}

static bool is_word_char_before(const unsigned char *s, size_t lo, size_t pos)
{
    if (pos <= lo) return false;
    unsigned c = s[pos - 1];
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c >= 0x80;
}

static bool is_word_char_at(const unsigned char *s, size_t pos, size_t n)
{
    if (pos >= n) return false;
    unsigned c = s[pos];
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c >= 0x80;
}

static ignis_status encode_segment(const ignis_tokenizer *t, const char *s, size_t n, bool at_start, ig_ids *out,
                                   ig_word_cache *cache)
{
    if (n == 0) return IGNIS_OK;
    if (t->hf_spm) return ig_spm_json_encode(t, s, n, at_start, out, cache);
    if (t->kind == IG_TOK_SPM) return ig_spm_encode(t, s, n, out, cache);
    return ig_bpe_encode(t, s, n, out, cache);
}

ignis_status ignis_tokenize(const ignis_tokenizer *t, const char *text, size_t len, bool add_special,
                            bool parse_special, int32_t **ids, int *n_ids)
{
    if (!t || !ids || !n_ids || (!text && len)) return ig_err(IGNIS_E_ARG, "ignis_tokenize: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    if (len > (size_t)INT32_MAX / 2)
        return ig_err(IGNIS_E_CAPACITY, "ignis_tokenize: text of %zu bytes is too long", len);
    ig_ids v = {0};
    ignis_status st = IGNIS_OK;
    ig_word_cache *cache = NULL;
    ignis_tokenizer *mt = (ignis_tokenizer *)t; /* the cache is the one mutable part, behind a lock */
    if (t->cache && pthread_mutex_trylock(&mt->cache_lock) == 0) cache = t->cache;
    if (add_special && t->add_bos && t->bos >= 0 && (st = ig_ids_push(&v, t->bos)) != IGNIS_OK) goto fail;

    const unsigned char *s = (const unsigned char *)text;
    size_t seg = 0; /* start of the pending text segment */
    size_t i = 0;
    while (i < len) {
        const ig_added_token *hit = NULL;
        if (t->added_first[s[i]]) {
            for (int k = 0; k < t->n_added; k++) {
                const ig_added_token *a = &t->added[k];
                if (a->content[0] != (char)s[i] || a->len > len - i) continue;
                if (a->special && !parse_special) continue;
                /* Tokens that are also plain pieces the encoder handles itself (SentencePiece
                 * user-defined symbols) need no splitting. */
                if (memcmp(a->content, s + i, a->len) != 0) continue;
                if (a->single_word && (is_word_char_before(s, seg, i) || is_word_char_at(s, i + a->len, len))) continue;
                hit = a; /* sorted longest first */
                break;
            }
        }
        if (!hit) {
            i++;
            continue;
        }
        size_t end_text = hit->lstrip ? ws_run_before(s, seg, i) : i;
        if ((st = encode_segment(t, text + seg, end_text - seg, seg == 0, &v, cache)) != IGNIS_OK) goto fail;
        if ((st = ig_ids_push(&v, hit->id)) != IGNIS_OK) goto fail;
        i += hit->len;
        if (hit->rstrip) {
            size_t w;
            while (i < len && is_ws_at(s + i, len - i, &w))
                i += w;
        }
        seg = i;
    }
    if ((st = encode_segment(t, text + seg, len - seg, seg == 0, &v, cache)) != IGNIS_OK) goto fail;
    if (add_special && t->add_eos && t->eos >= 0 && (st = ig_ids_push(&v, t->eos)) != IGNIS_OK) goto fail;
    if (cache) pthread_mutex_unlock(&mt->cache_lock);
    if (!v.p) {
        v.p = malloc(sizeof *v.p);
        if (!v.p) return ig_err(IGNIS_E_NOMEM, "ignis_tokenize: out of memory");
    }
    *ids = v.p;
    *n_ids = v.n;
    return IGNIS_OK;
fail:
    if (cache) pthread_mutex_unlock(&mt->cache_lock);
    free(v.p);
    return st;
}
