/* How `ignis chat` and the server turn a template's output into a request: the rendered
 * conversation encoded with exactly one BOS (the reference: transformers' apply_chat_template
 * with tokenize=True equals the rendered text tokenized without added specials, for
 * templates that write BOS themselves), and the template's stop words split into special
 * tokens (stopped by id: skipped output leaves them no text) and words matched in the text.
 * Ids are the real tokenizers' (Qwen2, Llama-3, InternLM2, Llama-2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static ignis_tokenizer *open_tok(const char *rel)
{
    TU_ASSET_OR_SKIP(dir, rel);
    ignis_tokenizer *t = NULL;
    TU_CHECK(ignis_tokenizer_open(dir, &t));
    return t;
}

/* Stop ids and words of template `name` on tokenizer `tok_rel` equal the expected lists. */
static void expect_stops(const char *tok_rel, const char *name, const int32_t *want_ids, int n_want_ids,
                         const char *const *want_words, int n_want_words)
{
    ignis_tokenizer *tok = open_tok(tok_rel);
    ignis_chat_template *t = NULL;
    TU_CHECK(ignis_chat_template_open(name, NULL, &t));
    int32_t *ids;
    const char **words;
    int n_ids, n_words;
    TU_CHECK(ignis_chat_stops(t, tok, &ids, &n_ids, &words, &n_words));
    if (n_ids != n_want_ids || n_words != n_want_words)
        fail_msg("%s on %s: %d stop ids and %d words, expected %d and %d", name, tok_rel, n_ids, n_words, n_want_ids,
                 n_want_words);
    for (int i = 0; i < n_ids; i++)
        if (ids[i] != want_ids[i])
            fail_msg("%s on %s: stop id %d is %d, expected %d", name, tok_rel, i, ids[i], want_ids[i]);
    for (int i = 0; i < n_words; i++)
        assert_string_equal(words[i], want_words[i]);
    free(ids);
    free(words);
    ignis_chat_template_free(t);
    ignis_tokenizer_free(tok);
}

static void test_special_stop_words_stop_by_id(void **st)
{
    (void)st;
    expect_stops("tokenizers/qwen2", "qwen", (const int32_t[]){151645}, 1, NULL, 0);
    expect_stops("tokenizers/internlm2", "internlm2", (const int32_t[]){92542, 92540}, 2, NULL, 0);
    expect_stops("tokenizers/llama2", "llama2", (const int32_t[]){2}, 1, NULL, 0);
    /* Llama-3 (not 3.1) has no <|eom_id|>: it stays a word */
    expect_stops("tokenizers/llama3", "llama3", (const int32_t[]){128009, 128001}, 2, (const char *[]){"<|eom_id|>"},
                 1);
}

/* A word that is no special token stays text, even when it is a single ordinary token:
 * matched in the output, it is cut from the answer. */
static void test_other_stop_words_stay_text(void **st)
{
    (void)st;
    const char *path =
        tu_write_file(tu_tmpdir("chat-encode"), "stops.json",
                      "{\"model_name\": \"base\", \"stop_words\": [\"Lily\", \"<|im_end|>\", \"</s>\", \"the\"]}");
    ignis_tokenizer *tok = open_tok("tokenizers/llama2");
    assert_true(ignis_token_id(tok, "the") >= 0); /* an ordinary single token */
    ignis_tokenizer_free(tok);
    expect_stops("tokenizers/llama2", path, (const int32_t[]){2}, 1, (const char *[]){"Lily", "<|im_end|>", "the"}, 3);
}

/* Renders [user "hi"] with template `name` and encodes it with tokenizer `tok_rel`: the ids
 * are BOS (when the template wants it, does not write it and the tokenizer has one) + the
 * text's own ids. */
static void expect_encoding(const char *tok_rel, const char *name, bool template_writes_bos)
{
    ignis_tokenizer *tok = open_tok(tok_rel);
    ignis_chat_template *t = NULL;
    TU_CHECK(ignis_chat_template_open(name, NULL, &t));
    const ignis_chat_msg m = {"user", "hi"};
    char *text = NULL;
    TU_CHECK(ignis_chat_render(t, &m, 1, true, &text));
    int32_t *got, *plain;
    int n_got, n_plain;
    TU_CHECK(ignis_chat_encode(t, tok, text, &got, &n_got));
    TU_CHECK(ignis_tokenize(tok, text, strlen(text), false, true, &plain, &n_plain));
    int32_t bos = ignis_tokenizer_bos(tok);
    int lead = !template_writes_bos && ignis_chat_template_wants_bos(t) && bos >= 0;
    if (n_got != n_plain + lead) fail_msg("%s on %s: %d ids, expected %d", name, tok_rel, n_got, n_plain + lead);
    if (lead) assert_int_equal(got[0], bos);
    for (int i = 0; i < n_plain; i++)
        assert_int_equal(got[lead + i], plain[i]);
    assert_true(n_got < 2 || !(got[0] == bos && got[1] == bos));
    free(got), free(plain), free(text);
    ignis_chat_template_free(t);
    ignis_tokenizer_free(tok);
}

static void test_encode_adds_bos_once(void **st)
{
    (void)st;
    expect_encoding("tokenizers/llama3", "llama3", true); /* <|begin_of_text|> is in the text */
    expect_encoding("tokenizers/llama2", "llama2", false);
    expect_encoding("tokenizers/qwen2", "qwen", false); /* Qwen2 has no BOS: none added */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_special_stop_words_stop_by_id),
        cmocka_unit_test(test_other_stop_words_stay_text),
        cmocka_unit_test(test_encode_adds_bos_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
