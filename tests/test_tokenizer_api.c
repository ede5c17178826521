/* Tokenizer API behaviour beyond id parity: BOS/EOS rules per family, special tokens
 * (InternLM2's renamed chat tokens), streaming detokenization that never splits a UTF-8
 * character, invalid UTF-8 input, source selection, clear errors for broken files, and the
 * `ignis tokenize` command. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

static ignis_tokenizer *open_asset(const char *rel)
{
    TU_ASSET_OR_SKIP(p, rel);
    ignis_tokenizer *t;
    TU_CHECK(ignis_tokenizer_open(p, &t));
    return t;
}

static void expect_ids(const int32_t *got, int ng, const int32_t *want, int nw, const char *what)
{
    bool same = ng == nw && memcmp(got, want, (size_t)nw * sizeof *got) == 0;
    if (!same) {
        char eb[512] = "", gb[512] = "";
        for (int i = 0; i < nw && strlen(eb) < 480; i++)
            snprintf(eb + strlen(eb), sizeof eb - strlen(eb), " %d", want[i]);
        for (int i = 0; i < ng && strlen(gb) < 480; i++)
            snprintf(gb + strlen(gb), sizeof gb - strlen(gb), " %d", got[i]);
        fail_msg("%s: expected [%s ] got [%s ]", what, eb, gb);
    }
}

static bool valid_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        int need = c < 0x80                   ? 0
                   : (c >= 0xC2 && c <= 0xDF) ? 1
                   : (c >= 0xE0 && c <= 0xEF) ? 2
                   : (c >= 0xF0 && c <= 0xF4) ? 3
                                              : -1;
        if (need < 0 || i + (size_t)need >= n + (need == 0)) return false;
        if (need && i + (size_t)need > n - 1 + 1) return false;
        for (int k = 1; k <= need; k++)
            if (i + (size_t)k >= n || (p[i + k] & 0xC0) != 0x80) return false;
        if (c == 0xE0 && p[i + 1] < 0xA0) return false;
        if (c == 0xED && p[i + 1] > 0x9F) return false;
        if (c == 0xF0 && p[i + 1] < 0x90) return false;
        if (c == 0xF4 && p[i + 1] > 0x8F) return false;
        i += (size_t)need + 1;
    }
    return true;
}

/* ------------------------------------------------------------ encode basics */

static void test_stories260K_encodes_like_sentencepiece_with_bos(void **st)
{
    (void)st;
    ignis_tokenizer *t = open_asset("models/stories260K/hf");
    assert_int_equal(ignis_tokenizer_vocab_size(t), 512);
    assert_int_equal(ignis_tokenizer_bos(t), 1);
    assert_int_equal(ignis_tokenizer_eos(t), 2);
    int32_t *ids;
    int n;
    const char *text = "Once upon a time";
    TU_CHECK(ignis_tokenize(t, text, strlen(text), true, false, &ids, &n));
    static const int32_t want[] = {1, 403, 407, 261, 378};
    expect_ids(ids, n, want, 5, "stories260K 'Once upon a time' with BOS");
    char *back;
    size_t bl;
    TU_CHECK(ignis_detokenize(t, ids, n, true, &back, &bl));
    assert_string_equal(back, text);
    free(back);
    TU_CHECK(ignis_detokenize(t, ids, n, false, &back, &bl));
    assert_string_equal(back, "<s> Once upon a time"); /* as HF shows it: BOS, then the piece's space */
    free(back);
    free(ids);
    TU_CHECK(ignis_tokenize(t, "", 0, true, false, &ids, &n));
    static const int32_t bos_only[] = {1};
    expect_ids(ids, n, bos_only, 1, "empty text with add_special");
    free(ids);
    ignis_tokenizer_free(t);
}

static void test_add_special_follows_each_family(void **st)
{
    (void)st;
    static const struct {
        const char *rel;
        int32_t first;
        int n_extra;
    } k[] = {
        {"tokenizers/llama2", 1, 1},      /* BOS */
        {"tokenizers/llama3", 128000, 1}, /* <|begin_of_text|> from the post-processor */
        {"tokenizers/qwen2", -1, 0},      /* none */
        {"tokenizers/qwen3", -1, 0},      {"tokenizers/internlm2", 1, 1},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        ignis_tokenizer *t = open_asset(k[i].rel);
        int32_t *a, *b;
        int na, nb;
        TU_CHECK(ignis_tokenize(t, "Hello world", 11, false, true, &a, &na));
        TU_CHECK(ignis_tokenize(t, "Hello world", 11, true, true, &b, &nb));
        if (nb != na + k[i].n_extra)
            fail_msg("%s: expected %d extra ids with add_special, got %d", k[i].rel, k[i].n_extra, nb - na);
        if (k[i].first >= 0 && b[0] != k[i].first)
            fail_msg("%s: expected first id %d, got %d", k[i].rel, k[i].first, b[0]);
        assert_memory_equal(a, b + k[i].n_extra, (size_t)na * sizeof *a);
        free(a);
        free(b);
        ignis_tokenizer_free(t);
    }
}

static void test_internlm2_chat_tokens_have_their_names(void **st)
{
    (void)st;
    ignis_tokenizer *t = open_asset("tokenizers/internlm2");
    assert_int_equal(ignis_token_id(t, "<|im_end|>"), 92542);
    assert_int_equal(ignis_token_id(t, "<|im_start|>"), 92543);
    assert_int_equal(ignis_token_id(t, "<|action_start|>"), 92541);
    assert_int_equal(ignis_token_id(t, "[UNUSED_TOKEN_145]"), 92542); /* the stored piece still resolves */
    assert_string_equal(ignis_token_piece(t, 92542), "<|im_end|>");
    assert_true(ignis_token_is_special(t, 92542));
    assert_false(ignis_token_is_special(t, 1008));
    const char *text = "<|im_start|>user\nhi<|im_end|>";
    int32_t *ids;
    int n;
    TU_CHECK(ignis_tokenize(t, text, strlen(text), false, true, &ids, &n));
    assert_true(n >= 4);
    assert_int_equal(ids[0], 92543);
    assert_int_equal(ids[1], 1008);
    assert_int_equal(ids[n - 1], 92542);
    char *back;
    size_t bl;
    TU_CHECK(ignis_detokenize(t, ids, n, false, &back, &bl));
    assert_string_equal(back, text);
    free(back);
    TU_CHECK(ignis_detokenize(t, ids, n, true, &back, &bl));
    assert_string_equal(back, "user\nhi");
    free(back);
    free(ids);
    /* without parse_special the same text is plain characters */
    TU_CHECK(ignis_tokenize(t, text, strlen(text), false, false, &ids, &n));
    for (int i = 0; i < n; i++)
        if (ids[i] == 92543 || ids[i] == 92542) fail_msg("parse_special=false still produced chat token %d", ids[i]);
    free(ids);
    ignis_tokenizer_free(t);
}

static void test_qwen_special_tokens_resolve(void **st)
{
    (void)st;
    ignis_tokenizer *t = open_asset("tokenizers/qwen2");
    assert_int_equal(ignis_token_id(t, "<|im_end|>"), 151645);
    assert_int_equal(ignis_token_id(t, "<|im_start|>"), 151644);
    assert_int_equal(ignis_token_id(t, "<|endoftext|>"), 151643);
    assert_int_equal(ignis_tokenizer_eos(t), 151645);
    assert_int_equal(ignis_tokenizer_bos(t), -1);
    assert_true(ignis_token_is_special(t, 151645));
    assert_int_equal(ignis_tokenizer_vocab_size(t), 151646);
    assert_int_equal(ignis_token_id(t, "no such piece"), -1);
    assert_null(ignis_token_piece(t, 151646));
    assert_null(ignis_token_piece(t, -1));
    ignis_tokenizer_free(t);
}

/* ------------------------------------------------------------ streaming */

static const char *k_stream_texts[] = {
    "Hello, world! 你好，世界。 Привет 👨‍👩‍👧‍👦 🇫🇷 é done",
    "  leading spaces and\ttabs\n\nnew lines ½ ∑ 𝔘𝔫𝔦",
    "日本語のテキスト、絵文字🙂🙃🤖と記号★☆",
};

/* roundtrip: decode(encode(x)) == x is checked where the tokenizer keeps every byte
 * (stories260K's model collapses whitespace) */
static void stream_check(const char *rel, bool skip_special, bool roundtrip)
{
    ignis_tokenizer *t = open_asset(rel);
    for (size_t k = 0; k < sizeof k_stream_texts / sizeof *k_stream_texts; k++) {
        const char *text = k_stream_texts[k];
        int32_t *ids;
        int n;
        TU_CHECK(ignis_tokenize(t, text, strlen(text), true, true, &ids, &n));
        char *whole;
        size_t wl;
        TU_CHECK(ignis_detokenize(t, ids, n, skip_special, &whole, &wl));
        ignis_detok_stream *s;
        TU_CHECK(ignis_detok_stream_create(t, skip_special, &s));
        char *acc = malloc(wl * 2 + 64);
        size_t al = 0;
        for (int i = 0; i <= n; i++) {
            const char *p;
            size_t pl;
            if (i < n)
                TU_CHECK(ignis_detok_stream_push(s, ids[i], &p, &pl));
            else
                TU_CHECK(ignis_detok_stream_flush(s, &p, &pl));
            if (!valid_utf8(p, pl)) fail_msg("%s: stream chunk after id %d is not whole UTF-8", rel, i);
            assert_true(al + pl <= wl * 2 + 64);
            memcpy(acc + al, p, pl);
            al += pl;
        }
        if (al != wl || memcmp(acc, whole, wl) != 0)
            fail_msg("%s: streamed text differs: expected '%s' got '%.*s'", rel, whole, (int)al, acc);
        if (roundtrip && skip_special && strcmp(whole, text) != 0)
            fail_msg("%s: decode(encode(x)) != x: expected '%s' got '%s'", rel, text, whole);
        free(acc);
        free(whole);
        free(ids);
        ignis_detok_stream_free(s);
    }
    ignis_tokenizer_free(t);
}

static void test_stream_never_splits_utf8_llama2(void **st)
{
    (void)st;
    stream_check("tokenizers/llama2", true, true);
    stream_check("tokenizers/llama2", false, true);
}
static void test_stream_never_splits_utf8_llama3(void **st)
{
    (void)st;
    stream_check("tokenizers/llama3", true, true);
    stream_check("tokenizers/llama3", false, true);
}
static void test_stream_never_splits_utf8_qwen2(void **st)
{
    (void)st;
    stream_check("tokenizers/qwen2", true, true);
}
static void test_stream_never_splits_utf8_internlm2(void **st)
{
    (void)st;
    stream_check("tokenizers/internlm2", true, true);
}
static void test_stream_never_splits_utf8_stories260K(void **st)
{
    (void)st;
    stream_check("models/stories260K/hf", true, false);
}

static void test_qwen2_normalizes_to_nfc(void **st)
{
    (void)st;
    ignis_tokenizer *t = open_asset("tokenizers/qwen2");
    int32_t *a, *b;
    int na, nb;
    TU_CHECK(ignis_tokenize(t, "caf\x65\xcc\x81", 6, false, true, &a, &na)); /* e + combining acute */
    TU_CHECK(ignis_tokenize(t, "caf\xc3\xa9", 5, false, true, &b, &nb));     /* precomposed */
    expect_ids(a, na, b, nb, "NFD input encodes as its NFC form");
    free(a);
    free(b);
    ignis_tokenizer_free(t);
}

static void test_stream_holds_partial_character_until_complete(void **st)
{
    (void)st;
    ignis_tokenizer *t = open_asset("tokenizers/llama2");
    /* 🙂 = F0 9F 99 82 is four byte-fallback pieces in Llama-2 */
    int32_t ids[4];
    static const unsigned char b[4] = {0xF0, 0x9F, 0x99, 0x82};
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b[i]);
        ids[i] = ignis_token_id(t, name);
        assert_true(ids[i] >= 0);
    }
    ignis_detok_stream *s;
    TU_CHECK(ignis_detok_stream_create(t, true, &s));
    const char *p;
    size_t pl;
    for (int i = 0; i < 3; i++) {
        TU_CHECK(ignis_detok_stream_push(s, ids[i], &p, &pl));
        assert_int_equal(pl, 0);
    }
    TU_CHECK(ignis_detok_stream_push(s, ids[3], &p, &pl));
    assert_int_equal(pl, 4);
    assert_memory_equal(p, b, 4);
    /* a dangling lead byte is released as U+FFFD on flush */
    TU_CHECK(ignis_detok_stream_push(s, ids[0], &p, &pl));
    assert_int_equal(pl, 0);
    TU_CHECK(ignis_detok_stream_flush(s, &p, &pl));
    assert_int_equal(pl, 3);
    assert_memory_equal(p, "\xEF\xBF\xBD", 3);
    ignis_detok_stream_free(s);
    ignis_tokenizer_free(t);
}

/* ------------------------------------------------------------ invalid input */

static void test_invalid_utf8_never_crashes(void **st)
{
    (void)st;
    static const char *rels[] = {"tokenizers/llama2", "tokenizers/llama3",    "tokenizers/qwen2",
                                 "tokenizers/qwen3",  "tokenizers/internlm2", "models/stories260K/hf"};
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t r = 0; r < sizeof rels / sizeof *rels; r++) {
        ignis_tokenizer *t = open_asset(rels[r]);
        int vs = ignis_tokenizer_vocab_size(t);
        for (int it = 0; it < 300; it++) {
            unsigned char buf[200];
            size_t n = (size_t)(it % 199) + 1;
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                /* mostly high bytes: lone continuations, truncated leads, overlongs, surrogates */
                buf[i] = (x & 3) ? (unsigned char)(0x80 | (x >> 8)) : (unsigned char)(x >> 16);
            }
            int32_t *ids;
            int ni;
            TU_CHECK(ignis_tokenize(t, (const char *)buf, n, true, true, &ids, &ni));
            for (int i = 0; i < ni; i++)
                if (ids[i] < 0 || ids[i] >= vs) fail_msg("%s: id %d out of range for invalid input", rels[r], ids[i]);
            if (ni == 0) fail_msg("%s: %zu bytes of input gave no ids", rels[r], n);
            char *back;
            size_t bl;
            TU_CHECK(ignis_detokenize(t, ids, ni, true, &back, &bl));
            if (!valid_utf8(back, bl)) fail_msg("%s: decode of invalid input is not valid UTF-8", rels[r]);
            free(back);
            free(ids);
        }
        ignis_tokenizer_free(t);
    }
}

static void test_detokenize_rejects_out_of_range_id(void **st)
{
    (void)st;
    ignis_tokenizer *t = open_asset("models/stories260K/hf");
    int32_t ids[] = {403, 512};
    char *text;
    size_t n;
    assert_int_equal(ignis_detokenize(t, ids, 2, false, &text, &n), IGNIS_E_ARG);
    assert_non_null(strstr(ignis_last_error(), "512"));
    ignis_tokenizer_free(t);
}

/* ------------------------------------------------------------ sources and errors */

static void copy_file(const char *src, const char *dst, size_t max)
{
    size_t n;
    char *d = tu_read_file(src, &n);
    assert_non_null(d);
    FILE *f = fopen(dst, "wb");
    assert_non_null(f);
    fwrite(d, 1, n < max ? n : max, f);
    fclose(f);
    free(d);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void expect_open_error(const char *dir, ignis_status want, const char *needle)
{
    ignis_tokenizer *t = NULL;
    ignis_status s = ignis_tokenizer_open(dir, &t);
    if (s != want)
        fail_msg("opening %s: expected %s, got %s (%s)", dir, ignis_status_name(want), ignis_status_name(s),
                 ignis_last_error());
    assert_null(t);
    if (!strstr(ignis_last_error(), needle)) fail_msg("error '%s' does not mention '%s'", ignis_last_error(), needle);
}

static void test_open_reports_missing_and_corrupt_files(void **st)
{
    (void)st;
    char dir[2048], path[4200], model[4096];
    expect_open_error("/nonexistent/ignis-tok", IGNIS_E_NOT_FOUND, "/nonexistent/ignis-tok");
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("tok-empty"));
    expect_open_error(dir, IGNIS_E_NOT_FOUND, "no tokenizer found");

    const char *m = tu_asset("tokenizers/llama2/tokenizer.model");
    if (!m) skip();
    snprintf(model, sizeof model, "%s", m);
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("tok-trunc"));
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    copy_file(model, path, 100000); /* cut inside a piece */
    expect_open_error(dir, IGNIS_E_FORMAT, "tokenizer.model");

    snprintf(dir, sizeof dir, "%s", tu_tmpdir("tok-badjson"));
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_file(path, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,}}}");
    expect_open_error(dir, IGNIS_E_FORMAT, "tokenizer.json:1:");

    snprintf(dir, sizeof dir, "%s", tu_tmpdir("tok-nomerges"));
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    write_file(path, "{\"a\": 0}");
    expect_open_error(dir, IGNIS_E_NOT_FOUND, "merges.txt is missing");

    snprintf(path, sizeof path, "%s/merges.txt", dir);
    write_file(path, "#version: 0.2\na b\n");
    expect_open_error(dir, IGNIS_E_FORMAT, "merges.txt: merge 2 ('a' 'b') uses a piece missing from the vocab");

    snprintf(dir, sizeof dir, "%s", tu_tmpdir("tok-unigram"));
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_file(path, "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
    expect_open_error(dir, IGNIS_E_UNSUPPORTED, "Unigram");
    tu_rmrf(dir);
}

static void test_truncated_or_flipped_model_fails_cleanly(void **st)
{
    (void)st;
    const char *m = tu_asset("models/stories260K/hf/tokenizer.model");
    if (!m) skip();
    size_t n;
    char *data = tu_read_file(m, &n);
    assert_non_null(data);
    char dir[2048], path[2200];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("tok-fuzz"));
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    uint64_t x = 12345;
    for (int it = 0; it < 60; it++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t cut = it < 30 ? (size_t)(x % n) : n;
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fwrite(data, 1, cut, f);
        fclose(f);
        if (it >= 30) { /* same length, a few bytes flipped */
            f = fopen(path, "r+b");
            for (int k = 0; k < 4; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                fseek(f, (long)(x % n), SEEK_SET);
                fputc((int)(x >> 32) & 0xFF, f);
            }
            fclose(f);
        }
        ignis_tokenizer *t = NULL;
        ignis_status s = ignis_tokenizer_open(dir, &t);
        if (s == IGNIS_OK) { /* a flip that kept the protobuf valid: it must still encode */
            int32_t *ids;
            int k;
            TU_CHECK(ignis_tokenize(t, "Once upon a time", 16, true, true, &ids, &k));
            free(ids);
            ignis_tokenizer_free(t);
            continue;
        }
        assert_null(t);
        if (s != IGNIS_E_FORMAT && s != IGNIS_E_UNSUPPORTED)
            fail_msg("cut %zu: expected a format error, got %s (%s)", cut, ignis_status_name(s), ignis_last_error());
        if (!strstr(ignis_last_error(), "tokenizer.model"))
            fail_msg("error does not name the file: %s", ignis_last_error());
    }
    free(data);
    tu_rmrf(dir);
}

typedef struct conc_job {
    const ignis_tokenizer *t;
    const char *text;
    size_t len;
    int32_t *ids;
    int n;
    ignis_status st;
} conc_job;

static void *conc_run(void *arg)
{
    conc_job *j = arg;
    /* many small calls so the threads contend for the word cache */
    int32_t *all = NULL;
    int n = 0, cap = 0;
    for (size_t off = 0; off < j->len; off += 512) {
        size_t l = j->len - off < 512 ? j->len - off : 512;
        int32_t *ids;
        int k;
        j->st = ignis_tokenize(j->t, j->text + off, l, false, true, &ids, &k);
        if (j->st != IGNIS_OK) return NULL;
        if (n + k > cap) all = realloc(all, (size_t)(cap = (n + k) * 2) * sizeof *all);
        memcpy(all + n, ids, (size_t)k * sizeof *ids);
        n += k;
        free(ids);
    }
    j->ids = all;
    j->n = n;
    return NULL;
}

static void test_concurrent_tokenize_matches_serial(void **st)
{
    (void)st;
    const char *w = tu_asset("workloads/sonnet.txt");
    if (!w) skip();
    size_t len;
    char *text = tu_read_file(w, &len);
    /* cut at 512-byte steps inside ASCII text (sonnet.txt is ASCII) */
    static const char *rels[] = {"tokenizers/llama3", "tokenizers/llama2"};
    for (int r = 0; r < 2; r++) {
        ignis_tokenizer *t = open_asset(rels[r]);
        conc_job serial = {t, text, len, NULL, 0, IGNIS_OK};
        conc_run(&serial);
        TU_CHECK(serial.st);
        conc_job jobs[4];
        pthread_t th[4];
        for (int i = 0; i < 4; i++) {
            jobs[i] = (conc_job){t, text, len, NULL, 0, IGNIS_OK};
            assert_int_equal(pthread_create(&th[i], NULL, conc_run, &jobs[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            TU_CHECK(jobs[i].st);
            expect_ids(jobs[i].ids, jobs[i].n, serial.ids, serial.n, "thread's ids vs serial ids");
            free(jobs[i].ids);
        }
        free(serial.ids);
        ignis_tokenizer_free(t);
    }
    free(text);
}

static void test_open_finds_workspace_tokenizer_subdir(void **st)
{
    (void)st;
    const char *m = tu_asset("models/stories260K/hf/tokenizer.model");
    if (!m) skip();
    char model[4096], dir[2048], sub[2100], path[2200];
    snprintf(model, sizeof model, "%s", m);
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("tok-ws"));
    snprintf(sub, sizeof sub, "%s/tokenizer", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(path, sizeof path, "%s/tokenizer.model", sub);
    copy_file(model, path, SIZE_MAX);
    ignis_tokenizer *t;
    TU_CHECK(ignis_tokenizer_open(dir, &t));
    assert_int_equal(ignis_tokenizer_vocab_size(t), 512);
    ignis_tokenizer_free(t);
    tu_rmrf(dir);
}

static void test_tokenizer_json_wins_over_tiktoken_model(void **st)
{
    (void)st;
    /* tokenizers/llama3 holds tokenizer.json and a tiktoken tokenizer.model */
    ignis_tokenizer *t = open_asset("tokenizers/llama3");
    assert_int_equal(ignis_tokenizer_vocab_size(t), 128256);
    assert_int_equal(ignis_token_id(t, "<|eot_id|>"), 128009);
    assert_true(ignis_token_is_special(t, 128009));
    ignis_tokenizer_free(t);
}

/* ------------------------------------------------------------ CLI */

/* tu_run_cli with a clear failure when the binary itself is missing (exit 127) */
static int run_cli(const char *args, const char *in, char **out, char **err)
{
    int rc = tu_run_cli(args, in, out, err);
    if (rc == 127 || rc < 0)
        fail_msg("could not run the ignis CLI ($IGNIS_BIN=%s): exit %d",
                 getenv("IGNIS_BIN") ? getenv("IGNIS_BIN") : "unset", rc);
    return rc;
}

static void test_cli_tokenize_text_json_decode_jsonl(void **st)
{
    (void)st;
    const char *d = tu_asset("models/stories260K/hf");
    if (!d) skip();
    char dir[4096], args[8192];
    snprintf(dir, sizeof dir, "%s", d);
    char *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "tokenize '%s' --text 'Once upon a time'", dir);
    assert_int_equal(run_cli(args, NULL, &out, &err), 0);
    assert_string_equal(out, "403 407 261 378\n");
    free(out);
    free(err);
    snprintf(args, sizeof args, "tokenize '%s' --text 'Once upon a time' --json --add-special", dir);
    assert_int_equal(run_cli(args, NULL, &out, &err), 0);
    assert_string_equal(out, "[1,403,407,261,378]\n");
    free(out);
    free(err);
    snprintf(args, sizeof args, "tokenize '%s' --decode", dir);
    assert_int_equal(run_cli(args, "1 403 407 261 378", &out, &err), 0);
    assert_string_equal(out, "<s> Once upon a time\n");
    free(out);
    free(err);
    snprintf(args, sizeof args, "tokenize '%s' --decode --skip-special --text '[1, 403, 407]'", dir);
    assert_int_equal(run_cli(args, NULL, &out, &err), 0);
    assert_string_equal(out, "Once upon\n");
    free(out);
    free(err);
    snprintf(args, sizeof args, "tokenize '%s'", dir); /* stdin, byte for byte */
    assert_int_equal(run_cli(args, "Once upon", &out, &err), 0);
    assert_string_equal(out, "403 407\n");
    free(out);
    free(err);
    snprintf(args, sizeof args, "tokenize '%s' --jsonl", dir);
    assert_int_equal(
        run_cli(args, "{\"text\": \"Once upon a time\"}\n{\"text\": \"\"}\n{\"text\": \"a\\u0000b\"}\n", &out, &err),
        0); /* NUL: <0x00>, as sentencepiece */
    assert_string_equal(out, "{\"ids\":[403,407,261,378]}\n{\"ids\":[]}\n{\"ids\":[261,3,430]}\n");
    free(out);
    free(err);
}

static void test_cli_tokenize_reports_errors(void **st)
{
    (void)st;
    char *out = NULL, *err = NULL;
    int rc = run_cli("tokenize /nonexistent/tok --text hi", NULL, &out, &err);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "/nonexistent/tok"));
    free(out);
    free(err);
    rc = run_cli("tokenize", NULL, &out, &err);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "missing DIR"));
    free(out);
    free(err);
    const char *d = tu_asset("models/stories260K/hf");
    if (!d) return;
    char args[4200];
    snprintf(args, sizeof args, "tokenize '%s' --jsonl", d);
    rc = run_cli(args, "{\"text\": 1}\n", &out, &err);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "line 1"));
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories260K_encodes_like_sentencepiece_with_bos),
        cmocka_unit_test(test_add_special_follows_each_family),
        cmocka_unit_test(test_internlm2_chat_tokens_have_their_names),
        cmocka_unit_test(test_qwen_special_tokens_resolve),
        cmocka_unit_test(test_stream_never_splits_utf8_llama2),
        cmocka_unit_test(test_stream_never_splits_utf8_llama3),
        cmocka_unit_test(test_stream_never_splits_utf8_qwen2),
        cmocka_unit_test(test_stream_never_splits_utf8_internlm2),
        cmocka_unit_test(test_stream_never_splits_utf8_stories260K),
        cmocka_unit_test(test_stream_holds_partial_character_until_complete),
        cmocka_unit_test(test_qwen2_normalizes_to_nfc),
        cmocka_unit_test(test_invalid_utf8_never_crashes),
        cmocka_unit_test(test_detokenize_rejects_out_of_range_id),
        cmocka_unit_test(test_open_reports_missing_and_corrupt_files),
        cmocka_unit_test(test_truncated_or_flipped_model_fails_cleanly),
        cmocka_unit_test(test_concurrent_tokenize_matches_serial),
        cmocka_unit_test(test_open_finds_workspace_tokenizer_subdir),
        cmocka_unit_test(test_tokenizer_json_wins_over_tiktoken_model),
        cmocka_unit_test(test_cli_tokenize_text_json_decode_jsonl),
        cmocka_unit_test(test_cli_tokenize_reports_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
