/* Token-id parity with the reference libraries: llama.cpp's tokenizer vectors (47 per
 * vocabulary) and the project's golden sets (tests/tokenizer/make_golden.py: HF tokenizers
 * and sentencepiece on war-and-peace, sonnet, ShareGPT, MT-Bench, edge and random Unicode
 * strings). Every id must match exactly, and decoding the reference ids must give the
 * reference decode (the text itself for valid UTF-8). No tolerance. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* ------------------------------------------------------------ llama.cpp vectors */

static void run_llamacpp(const char *vocab, const char *tok_rel)
{
    char rel_inp[256], rel_out[256];
    snprintf(rel_inp, sizeof rel_inp, "llama.cpp-vocab/ggml-vocab-%s.gguf.inp", vocab);
    snprintf(rel_out, sizeof rel_out, "llama.cpp-vocab/ggml-vocab-%s.gguf.out", vocab);
    char inp_path[4096], out_path[4096], tok_dir[4096];
    {
        TU_ASSET_OR_SKIP(p, rel_inp);
        snprintf(inp_path, sizeof inp_path, "%s", p);
    }
    {
        TU_ASSET_OR_SKIP(p, rel_out);
        snprintf(out_path, sizeof out_path, "%s", p);
    }
    {
        TU_ASSET_OR_SKIP(p, tok_rel);
        snprintf(tok_dir, sizeof tok_dir, "%s", p);
    }
    size_t inp_len, out_len;
    char *inp = tu_read_file(inp_path, &inp_len), *outs = tu_read_file(out_path, &out_len);
    assert_non_null(inp);
    assert_non_null(outs);
    ignis_tokenizer *t;
    TU_CHECK(ignis_tokenizer_open(tok_dir, &t));
    /* inputs are separated by "\n__ggml_vocab_test__\n"; the file ends with one, so the last
     * input is empty; outputs are one line each of " id id ...", without BOS */
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *ip = inp, *op = outs;
    int n_cases = 0, n_ok = 0;
    for (;;) {
        char *e = strstr(ip, sep);
        size_t tl = e ? (size_t)(e - ip) : strlen(ip);
        char *nl = strchr(op, '\n');
        if (!e && tl == 0 && (!op || !*op)) { /* the trailing empty input: empty output */
            n_cases++;
            n_ok++;
            break;
        }
        assert_non_null(nl);
        *nl = 0;
        int32_t *want = NULL;
        int nw = 0, capw = 0;
        for (char *q = op; *q;) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q) break;
            if (nw == capw) want = realloc(want, (size_t)(capw = capw ? capw * 2 : 64) * sizeof *want);
            want[nw++] = (int32_t)v;
            q = end;
        }
        int32_t *got;
        int ng;
        TU_CHECK(ignis_tokenize(t, ip, tl, false, true, &got, &ng));
        n_cases++;
        bool same = ng == nw && (nw == 0 || memcmp(got, want, (size_t)nw * sizeof *got) == 0);
        if (same)
            n_ok++;
        else {
            print_message("%s case %d: text '%.*s'\n  expected (%d):", vocab, n_cases, (int)(tl > 80 ? 80 : tl), ip,
                          nw);
            for (int i = 0; i < nw && i < 40; i++)
                print_message(" %d", want[i]);
            print_message("\n  got      (%d):", ng);
            for (int i = 0; i < ng && i < 40; i++)
                print_message(" %d", got[i]);
            print_message("\n");
        }
        free(got);
        free(want);
        op = nl + 1;
        if (!e) break;
        ip = e + strlen(sep);
    }
    print_message("llama.cpp %s: %d/%d exact\n", vocab, n_ok, n_cases);
    ignis_tokenizer_free(t);
    free(inp);
    free(outs);
    if (n_ok != n_cases) fail_msg("llama.cpp %s: expected %d/%d exact, got %d", vocab, n_cases, n_cases, n_ok);
    assert_int_equal(n_cases, 47);
}

static void test_llamacpp_llama_spm_vectors_exact(void **st)
{
    (void)st;
    run_llamacpp("llama-spm", "tokenizers/llama2");
}
static void test_llamacpp_llama_bpe_vectors_exact(void **st)
{
    (void)st;
    run_llamacpp("llama-bpe", "tokenizers/llama3");
}
static void test_llamacpp_qwen2_vectors_exact(void **st)
{
    (void)st;
    run_llamacpp("qwen2", "tokenizers/qwen2");
}

/* ------------------------------------------------------------ golden sets */

static const char *golden_dir(void)
{
    const char *d = getenv("IGNIS_GOLDEN_DIR");
    return d && *d ? d : NULL;
}

typedef struct family {
    const char *name, *tok_rel;
    bool parse_special;
    const char *ids_name; /* golden ids file when shared with another family (NULL: name) */
    bool tok_in_golden;   /* tok_rel is under the golden dir (tokenizer.json made by the script) */
} family;

static void run_golden(const family *f)
{
    const char *gd = golden_dir();
    char texts_path[4096], ids_path[4096], tok_dir[4096];
    if (gd) {
        snprintf(texts_path, sizeof texts_path, "%s/texts.jsonl", gd);
        snprintf(ids_path, sizeof ids_path, "%s/%s.jsonl", gd, f->ids_name ? f->ids_name : f->name);
    }
    if (!gd || !tu_exists(texts_path) || !tu_exists(ids_path)) {
        if (tu_assets_required() || (getenv("IGNIS_REQUIRE_GOLDEN") && !strcmp(getenv("IGNIS_REQUIRE_GOLDEN"), "1")))
            fail_msg("golden set %s missing in '%s': run python3 tests/tokenizer/make_golden.py --out DIR", f->name,
                     gd ? gd : "(IGNIS_GOLDEN_DIR unset)");
        print_message("skipping: golden set %s not generated (tests/tokenizer/make_golden.py)\n", f->name);
        skip();
    }
    if (f->tok_in_golden) {
        snprintf(tok_dir, sizeof tok_dir, "%s/%s", gd, f->tok_rel);
    } else {
        TU_ASSET_OR_SKIP(p, f->tok_rel);
        snprintf(tok_dir, sizeof tok_dir, "%s", p);
    }
    ignis_tokenizer *t;
    TU_CHECK(ignis_tokenizer_open(tok_dir, &t));
    FILE *ft = fopen(texts_path, "r"), *fi = fopen(ids_path, "r");
    assert_non_null(ft);
    assert_non_null(fi);
    char *lt = NULL, *li = NULL;
    size_t ct = 0, ci = 0;
    struct {
        char name[32];
        int n, ids_ok, dec_ok;
    } sets[16];
    int n_sets = 0, shown = 0, total = 0, bad_ids = 0, bad_dec = 0;
    while (getline(&lt, &ct, ft) >= 0) {
        if (getline(&li, &ci, fi) < 0) fail_msg("%s: fewer id lines than texts", ids_path);
        json_error_t je;
        json_t *jt = json_loads(lt, JSON_ALLOW_NUL, &je), *ji = json_loads(li, JSON_ALLOW_NUL, &je);
        if (!jt || !ji) fail_msg("%s/%s: bad JSON line %d", texts_path, f->name, total + 1);
        const char *set = json_string_value(json_object_get(jt, "set"));
        json_t *jtext = json_object_get(jt, "text");
        const char *text = json_string_value(jtext);
        size_t tl = json_string_length(jtext);
        json_t *jids = json_object_get(ji, "ids");
        json_t *jdec = json_object_get(ji, "decoded");
        int k;
        for (k = 0; k < n_sets && strcmp(sets[k].name, set); k++) {
        }
        if (k == n_sets) {
            assert_true(n_sets < 16);
            snprintf(sets[n_sets].name, sizeof sets[n_sets].name, "%s", set);
            sets[n_sets].n = sets[n_sets].ids_ok = sets[n_sets].dec_ok = 0;
            n_sets++;
        }
        sets[k].n++;
        total++;
        int nw = (int)json_array_size(jids);
        int32_t *want = malloc(((size_t)nw + 1) * sizeof *want);
        for (int i = 0; i < nw; i++)
            want[i] = (int32_t)json_integer_value(json_array_get(jids, i));
        int32_t *got;
        int ng;
        TU_CHECK(ignis_tokenize(t, text, tl, false, f->parse_special, &got, &ng));
        bool same = ng == nw && (nw == 0 || memcmp(got, want, (size_t)nw * sizeof *got) == 0);
        if (same)
            sets[k].ids_ok++;
        else {
            bad_ids++;
            if (shown++ < 6) {
                int d = 0;
                while (d < ng && d < nw && got[d] == want[d])
                    d++;
                print_message("%s [%s #%d] ids differ at %d (expected %d ids, got %d); text '%.*s'\n", f->name, set,
                              sets[k].n, d, nw, ng, (int)(tl > 100 ? 100 : tl), text);
                print_message("  expected:");
                for (int i = d > 3 ? d - 3 : 0; i < nw && i < d + 8; i++)
                    print_message(" %d(%s)", want[i], ignis_token_piece(t, want[i]));
                print_message("\n  got     :");
                for (int i = d > 3 ? d - 3 : 0; i < ng && i < d + 8; i++)
                    print_message(" %d(%s)", got[i], ignis_token_piece(t, got[i]));
                print_message("\n");
            }
        }
        /* decoding the reference ids gives the reference decode (= the text when absent) */
        char *dec;
        size_t dl;
        TU_CHECK(ignis_detokenize(t, want, nw, false, &dec, &dl));
        const char *exp = jdec ? json_string_value(jdec) : text;
        size_t el = jdec ? json_string_length(jdec) : tl;
        if (dl == el && memcmp(dec, exp, el) == 0)
            sets[k].dec_ok++;
        else {
            bad_dec++;
            if (shown++ < 10)
                print_message("%s [%s #%d] decode differs: expected '%.*s' got '%.*s'\n", f->name, set, sets[k].n,
                              (int)(el > 100 ? 100 : el), exp, (int)(dl > 100 ? 100 : dl), dec);
        }
        free(dec);
        free(got);
        free(want);
        json_decref(jt);
        json_decref(ji);
    }
    if (getline(&li, &ci, fi) >= 0) fail_msg("%s: more id lines than texts", ids_path);
    for (int k = 0; k < n_sets; k++)
        print_message("%-12s %-14s ids %5d/%-5d decode %5d/%-5d\n", f->name, sets[k].name, sets[k].ids_ok, sets[k].n,
                      sets[k].dec_ok, sets[k].n);
    free(lt);
    free(li);
    fclose(ft);
    fclose(fi);
    ignis_tokenizer_free(t);
    if (bad_ids || bad_dec)
        fail_msg("%s: expected all %d texts exact, got %d id mismatches and %d decode mismatches", f->name, total,
                 bad_ids, bad_dec);
}

static const family k_llama2_spm = {.name = "llama2-spm", .tok_rel = "tokenizers/llama2", .parse_special = false};
static const family k_llama2_hf = {.name = "llama2-hf", .tok_rel = "tokenizers/llama2", .parse_special = true};
static const family k_llama2_hf_json = {.name = "llama2-hf-json",
                                        .tok_rel = "_llama2_hf",
                                        .parse_special = true,
                                        .ids_name = "llama2-hf",
                                        .tok_in_golden = true};
static const family k_llama2_metaspace = {.name = "llama2-metaspace",
                                          .tok_rel = "_llama2_metaspace",
                                          .parse_special = true,
                                          .ids_name = NULL,
                                          .tok_in_golden = true};
static const family k_llama3_tiktoken = {.name = "llama3-tiktoken",
                                         .tok_rel = "_llama3_tiktoken",
                                         .parse_special = true,
                                         .ids_name = "llama3",
                                         .tok_in_golden = true};
static const family k_internlm2_metaspace = {
    .name = "internlm2-metaspace", .tok_rel = "_internlm2_metaspace", .parse_special = true, .tok_in_golden = true};
static const family k_spm_userdef = {
    .name = "spm-userdef", .tok_rel = "_spm_userdef", .parse_special = false, .tok_in_golden = true};
static const family k_stories = {.name = "stories260K", .tok_rel = "models/stories260K/hf", .parse_special = false};
static const family k_internlm2 = {.name = "internlm2", .tok_rel = "tokenizers/internlm2", .parse_special = false};
static const family k_llama3 = {.name = "llama3", .tok_rel = "tokenizers/llama3", .parse_special = true};
static const family k_qwen2 = {.name = "qwen2", .tok_rel = "tokenizers/qwen2", .parse_special = true};
/* Qwen (v1)'s qwen.tiktoken, written by make_golden.py from Qwen2's ranks, against the
 * tiktoken package */
static const family k_qwen_tiktoken = {
    .name = "qwen-tiktoken", .tok_rel = "_qwen_tiktoken", .parse_special = true, .tok_in_golden = true};
static const family k_qwen3 = {.name = "qwen3", .tok_rel = "tokenizers/qwen3", .parse_special = true};

static void test_golden_llama2_matches_sentencepiece(void **st)
{
    (void)st;
    run_golden(&k_llama2_spm);
}
static void test_golden_llama2_matches_hf_tokenizers(void **st)
{
    (void)st;
    run_golden(&k_llama2_hf);
}
static void test_golden_llama2_tokenizer_json_matches_hf_tokenizers(void **st)
{
    (void)st;
    run_golden(&k_llama2_hf_json);
}
static void test_golden_llama2_metaspace_json_matches_hf_tokenizers(void **st)
{
    (void)st;
    run_golden(&k_llama2_metaspace);
}
static void test_golden_internlm2_metaspace_json_matches_hf_tokenizers(void **st)
{
    (void)st;
    run_golden(&k_internlm2_metaspace);
}
static void test_golden_user_defined_symbols_match_sentencepiece(void **st)
{
    (void)st;
    run_golden(&k_spm_userdef);
}
static void test_golden_stories260K_matches_sentencepiece(void **st)
{
    (void)st;
    run_golden(&k_stories);
}
static void test_golden_internlm2_matches_sentencepiece(void **st)
{
    (void)st;
    run_golden(&k_internlm2);
}
static void test_golden_llama3_matches_hf_tokenizers(void **st)
{
    (void)st;
    run_golden(&k_llama3);
}
static void test_golden_llama3_tiktoken_model_matches_hf_tokenizers(void **st)
{
    (void)st;
    run_golden(&k_llama3_tiktoken);
}
static void test_golden_qwen_tiktoken_matches_tiktoken(void **st)
{
    (void)st;
    run_golden(&k_qwen_tiktoken);
}
static void test_golden_qwen2_matches_hf_tokenizers(void **st)
{
    (void)st;
    run_golden(&k_qwen2);
}
static void test_golden_qwen3_matches_hf_tokenizers(void **st)
{
    (void)st;
    run_golden(&k_qwen3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llamacpp_llama_spm_vectors_exact),
        cmocka_unit_test(test_llamacpp_llama_bpe_vectors_exact),
        cmocka_unit_test(test_llamacpp_qwen2_vectors_exact),
        cmocka_unit_test(test_golden_llama2_matches_sentencepiece),
        cmocka_unit_test(test_golden_llama2_matches_hf_tokenizers),
        cmocka_unit_test(test_golden_llama2_tokenizer_json_matches_hf_tokenizers),
        cmocka_unit_test(test_golden_llama2_metaspace_json_matches_hf_tokenizers),
        cmocka_unit_test(test_golden_internlm2_metaspace_json_matches_hf_tokenizers),
        cmocka_unit_test(test_golden_stories260K_matches_sentencepiece),
        cmocka_unit_test(test_golden_user_defined_symbols_match_sentencepiece),
        cmocka_unit_test(test_golden_internlm2_matches_sentencepiece),
        cmocka_unit_test(test_golden_llama3_matches_hf_tokenizers),
        cmocka_unit_test(test_golden_llama3_tiktoken_model_matches_hf_tokenizers),
        cmocka_unit_test(test_golden_qwen_tiktoken_matches_tiktoken),
        cmocka_unit_test(test_golden_qwen2_matches_hf_tokenizers),
        cmocka_unit_test(test_golden_qwen3_matches_hf_tokenizers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
