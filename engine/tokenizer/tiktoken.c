/* tiktoken rank files: Llama-3's original tokenizer.model and Qwen (v1)'s qwen.tiktoken,
 * one "base64(bytes) rank" per line. A byte-level BPE whose merge priority is the rank of
 * the merged bytes: every split of a token into two tokens becomes a (left, right) ->
 * (rank, merged) entry, and a whole pre-token found in the table is taken as is (tiktoken,
 * like HF's ignore_merges). The file carries neither the split pattern nor the special
 * tokens, so the rank count names the family: 128000 is Llama-3 (its pattern, its 256
 * special tokens; tokenizer_config.json may rename them afterwards), 151643 is Qwen
 * (tokenization_qwen.py's pattern and its 208 special tokens). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/bpe_vocab.h"

#define LLAMA3_PATTERN                                                                                                 \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "                                         \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"                                                                     \
    "\\s+(?!\\S)|\\s+"

static int b64v(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes standard base64 (with padding) into out; returns the length or -1. */
static long b64_decode(const char *s, size_t n, unsigned char *out)
{
    if (n % 4) return -1;
    long o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + (size_t)k];
            v[k] = c == '=' && i + 4 == n && k >= 2 ? -2 : b64v(c);
            if (v[k] == -1) return -1;
        }
        if (v[2] == -2 && v[3] != -2) return -1;
        out[o++] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
        if (v[2] != -2) out[o++] = (unsigned char)(((v[1] & 15) << 4) | (v[2] >> 2));
        if (v[3] != -2) out[o++] = (unsigned char)(((v[2] & 3) << 6) | v[3]);
    }
    return o;
}

bool ig_tiktoken_probe(const char *data, size_t n)
{
    /* "<base64> <digits>\n" on the first line */
    const char *nl = memchr(data, '\n', n < 512 ? n : 512);
    if (!nl) return false;
    const char *sp = memchr(data, ' ', (size_t)(nl - data));
    if (!sp || sp == data) return false;
    for (const char *p = data; p < sp; p++)
        if (b64v((unsigned char)*p) < 0 && *p != '=') return false;
    for (const char *p = sp + 1; p < nl; p++)
        if (*p < '0' || *p > '9') return false;
    return sp + 1 < nl;
}

ignis_status ig_tiktoken_load_probed(ignis_tokenizer *t, const char *path)
{
    char head[512];
    FILE *f = fopen(path, "rb");
    size_t hn = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    if (!ig_tiktoken_probe(head, hn))
        return ig_err(IGNIS_E_FORMAT, "%s: neither a SentencePiece model nor a tiktoken rank file", path);
    return ig_tiktoken_load(t, path);
}

/* tokenization_qwen.py's PAT_STR: Llama-3's, except that digits split one by one */
#define QWEN_PATTERN                                                                                                   \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "                                              \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"                                                                     \
    "\\s+(?!\\S)|\\s+"

static const char *const k_llama3_special[] = {
    "<|begin_of_text|>",   "<|end_of_text|>",   NULL, NULL,         NULL, NULL,
    "<|start_header_id|>", "<|end_header_id|>", NULL, "<|eot_id|>",
};

static void llama3_special(int i, char *name, size_t n)
{
    const char *nm = i < (int)(sizeof k_llama3_special / sizeof *k_llama3_special) ? k_llama3_special[i] : NULL;
    if (nm) {
        snprintf(name, n, "%s", nm);
        return;
    }
    int reserved = i < 6 ? i - 2 : i < 9 ? i - 4 : i - 5; /* Llama-3's numbering skips the named ones */
    snprintf(name, n, "<|reserved_special_token_%d|>", reserved);
}

/* tokenization_qwen.py: ENDOFTEXT, IMSTART, IMEND, then EXTRAS <|extra_0|>..<|extra_204|> */
static void qwen_special(int i, char *name, size_t n)
{
    static const char *const named[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    if (i < 3)
        snprintf(name, n, "%s", named[i]);
    else
        snprintf(name, n, "<|extra_%d|>", i - 3);
}

typedef struct tt_family {
    long ranks;
    const char *pattern;
    int n_special;
    void (*special_name)(int i, char *name, size_t n);
    int bos, eos; /* offsets past the ranks; -1: none */
    bool add_bos;
} tt_family;

static const tt_family k_families[] = {
    {128000, LLAMA3_PATTERN, 256, llama3_special, 0, 1, true}, /* <|begin_of_text|>, <|end_of_text|> */
    {151643, QWEN_PATTERN, 208, qwen_special, -1, 0, false},   /* Qwen adds no BOS; <|endoftext|> */
};

ignis_status ig_tiktoken_load(ignis_tokenizer *t, const char *path)
{
    char *data;
    size_t size;
    IG_TRY(ig_read_whole(path, &data, &size));
    ignis_status st = IGNIS_OK;
    long lines = 0;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (size && data[size - 1] != '\n') lines++;
    const tt_family *fam = NULL;
    for (size_t i = 0; i < sizeof k_families / sizeof k_families[0]; i++)
        if (k_families[i].ranks == lines) fam = &k_families[i];
    if (!fam) {
        free(data);
        return ig_err(IGNIS_E_UNSUPPORTED,
                      "%s: a tiktoken file with %ld ranks; only Llama-3's (128000) and Qwen's (151643) are known (the "
                      "split pattern and special tokens are not in the file) - use tokenizer.json",
                      path, lines);
    }
    int n_special = fam->n_special;
    if ((st = ig_tok_alloc_vocab(t, (int)lines + n_special)) != IGNIS_OK) goto done;
    t->kind = IG_TOK_BYTE_BPE;
    t->raw = calloc((size_t)t->n_vocab, sizeof *t->raw);
    t->raw_len = calloc((size_t)t->n_vocab, sizeof *t->raw_len);
    if (!t->raw || !t->raw_len) {
        st = ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    if ((st = ig_strmap_init(&t->raw_map, (size_t)lines)) != IGNIS_OK) goto done;
    const uint16_t *b2c = ig_byte_to_cp_table();
    long line = 0;
    unsigned char raw[1024];
    char piece[4096];
    for (char *p = data; p < data + size; line++) {
        char *nl = memchr(p, '\n', (size_t)(data + size - p));
        char *end = nl ? nl : data + size;
        char *sp = memchr(p, ' ', (size_t)(end - p));
        char *rend;
        long rank = sp ? strtol(sp + 1, &rend, 10) : -1;
        long n = sp && (size_t)(sp - p) <= 4 * sizeof raw / 3 ? b64_decode(p, (size_t)(sp - p), raw) : -1;
        if (!sp || n <= 0 || rend != end || rank < 0 || rank >= lines) {
            st = ig_err(IGNIS_E_FORMAT, "%s:%ld: expected \"<base64 bytes> <rank>\" with a rank below %ld", path,
                        line + 1, lines);
            goto done;
        }
        if (t->raw[rank]) {
            st = ig_err(IGNIS_E_FORMAT, "%s:%ld: rank %ld appears twice", path, line + 1, rank);
            goto done;
        }
        size_t pl = 0;
        for (long k = 0; k < n; k++)
            pl += (size_t)ig_utf8_encode(b2c[raw[k]], piece + pl);
        if ((st = ig_tok_set_piece(t, (int)rank, piece, pl)) != IGNIS_OK) goto done;
        t->raw[rank] = malloc((size_t)n + 1);
        if (!t->raw[rank]) {
            st = ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
            goto done;
        }
        memcpy(t->raw[rank], raw, (size_t)n);
        t->raw[rank][n] = 0;
        t->raw_len[rank] = (uint32_t)n;
        if (!ig_strmap_put(&t->piece_map, t->piece[rank], pl, (int32_t)rank, false) ||
            !ig_strmap_put(&t->raw_map, t->raw[rank], (size_t)n, (int32_t)rank, false)) {
            st = ig_err(IGNIS_E_FORMAT, "%s:%ld: token bytes appear twice", path, line + 1);
            goto done;
        }
        if (n == 1) t->byte_id[raw[0]] = (int32_t)rank;
        p = end + 1;
    }
    for (long r = 0; r < lines; r++)
        if (!t->raw[r]) {
            st = ig_err(IGNIS_E_FORMAT, "%s: rank %ld is missing", path, r);
            goto done;
        }
    if ((st = ig_bpe_check_bytes(t, path)) != IGNIS_OK) goto done;
    /* merges: every split of a token into two tokens, ranked by the token */
    size_t pairs = 0;
    for (long r = 0; r < lines; r++)
        pairs += t->raw_len[r] - 1;
    if ((st = ig_pairmap_init(&t->merges, pairs / 2 + 1024)) != IGNIS_OK) goto done;
    for (long r = 0; r < lines; r++) {
        const char *w = t->raw[r];
        uint32_t n = t->raw_len[r];
        for (uint32_t k = 1; k < n; k++) {
            int32_t a = ig_strmap_get(&t->raw_map, w, k), b = ig_strmap_get(&t->raw_map, w + k, n - k);
            if (a >= 0 && b >= 0) ig_pairmap_put_grow(&t->merges, a, b, (int32_t)r, (int32_t)r);
        }
    }
    t->ignore_merges = true;
    for (int i = 0; i < n_special; i++) {
        int32_t id = (int32_t)lines + i;
        char name[64];
        fam->special_name(i, name, sizeof name);
        const char *nm = name;
        if ((st = ig_tok_set_piece(t, id, nm, strlen(nm))) != IGNIS_OK) goto done;
        ig_strmap_put(&t->piece_map, t->piece[id], strlen(nm), id, false);
        if ((st = ig_tok_add_token(t, nm, strlen(nm), id, true, false, false, false, false)) != IGNIS_OK) goto done;
    }
    t->bos = fam->bos >= 0 ? (int32_t)lines + fam->bos : -1;
    t->eos = fam->eos >= 0 ? (int32_t)lines + fam->eos : -1;
    t->add_bos = fam->add_bos;
    if ((st = ig_bpe_compile_regex(t, fam->pattern, path)) != IGNIS_OK) goto done;
    t->cache = ig_word_cache_new();
    if (!t->cache) {
        st = ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    pthread_mutex_init(&t->cache_lock, NULL);
done:
    free(data);
    return st;
}
