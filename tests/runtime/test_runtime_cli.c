/* `ignis generate`: one prompt's continuation (appendable to the prompt), and `--batch
 * IN.jsonl`: one JSON line per request in input order, a summary on stderr, failed lines
 * reported without stopping the others. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static const char *write_input(const char *name, const char *text)
{
    return tu_write_file(tu_tmpdir("runtime_cli"), name, text);
}

static json_t *line_at(const char *out, int k)
{
    const char *p = out;
    for (int i = 0; i < k && p; i++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (!p || !*p) fail_msg("output has no line %d:\n%s", k, out);
    const char *e = strchr(p, '\n');
    json_error_t je;
    json_t *j = json_loadb(p, e ? (size_t)(e - p) : strlen(p), 0, &je);
    if (!j) fail_msg("line %d is not JSON (%s): %.*s", k, je.text, (int)(e ? e - p : (long)strlen(p)), p);
    return j;
}

static void test_cli_batch_writes_results_in_order_with_errors_and_summary(void **st)
{
    (void)st;
    const char *in =
        write_input("in.jsonl", "{\"prompt_ids\":[1,2,3,4,5],\"max_new_tokens\":8,\"id\":\"first\"}\n"
                                "{\"prompt_ids\":[9,8,7],\"max_new_tokens\":3}\n"
                                "\n"
                                "{\"prompt_ids\":[1,999999]}\n"
                                "{\"prompt_ids\":[4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4],\"max_new_tokens\":6,"
                                "\"temperature\":0.7,\"seed\":5,\"ignore_eos\":true}\n"
                                "{oops\n"
                                "{\"prompt_ids\":[1,2,3,4,5],\"max_new_tokens\":8}\n");
    char cmd[8192], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd,
             "generate synthetic:tiny --backend cpu --threads 2 --batch '%s' --concurrency 2 "
             "--max-batch-size 4 --cache-block-seq-len 4",
             in);
    int rc = tu_run_cli(cmd, NULL, &out, &err);
    if (rc != 1) fail_msg("a batch with bad lines should exit 1, got %d\nstderr: %s", rc, err);
    json_t *l0 = line_at(out, 0), *l1 = line_at(out, 1), *l2 = line_at(out, 2), *l3 = line_at(out, 3),
           *l4 = line_at(out, 4), *l5 = line_at(out, 5);
    assert_string_equal(json_string_value(json_object_get(l0, "id")), "first");
    assert_int_equal(json_integer_value(json_object_get(l0, "index")), 0);
    assert_int_equal(json_array_size(json_object_get(l0, "ids")), 8);
    assert_string_equal(json_string_value(json_object_get(l0, "finish_reason")), "length");
    assert_int_equal(json_integer_value(json_object_get(l0, "prompt_tokens")), 5);
    assert_true(json_real_value(json_object_get(l0, "ttft_ms")) >= 0);
    assert_true(json_real_value(json_object_get(l0, "e2e_ms")) >= json_real_value(json_object_get(l0, "ttft_ms")));
    assert_int_equal(json_array_size(json_object_get(l1, "ids")), 3);
    const char *e2 = json_string_value(json_object_get(l2, "error"));
    if (!e2 || !strstr(e2, "line 4") || !strstr(e2, "vocabulary")) fail_msg("line 4 error: %s", e2 ? e2 : "(none)");
    assert_int_equal(json_array_size(json_object_get(l3, "ids")), 6);
    const char *e4 = json_string_value(json_object_get(l4, "error"));
    if (!e4 || !strstr(e4, "line 6") || !strstr(e4, "JSON")) fail_msg("line 6 error: %s", e4 ? e4 : "(none)");
    /* the same request twice gives the same ids */
    if (!json_equal(json_object_get(l0, "ids"), json_object_get(l5, "ids")))
        fail_msg("identical greedy requests differ in one batch");
    /* and the same as the direct path */
    char *out2 = NULL;
    rc = tu_run_cli(
        "generate synthetic:tiny --backend cpu --threads 2 --prompt-ids '1 2 3 4 5' --max-new-tokens 8 --ids", NULL,
        &out2, NULL);
    assert_int_equal(rc, 0);
    json_t *ids = json_object_get(l0, "ids");
    char want[1024] = "";
    for (size_t i = 0; i < json_array_size(ids); i++) {
        char t[32];
        snprintf(t, sizeof t, i ? " %lld" : "%lld", (long long)json_integer_value(json_array_get(ids, i)));
        strcat(want, t);
    }
    if (strncmp(out2, want, strlen(want))) fail_msg("batch ids '%s' vs direct path '%s'", want, out2);
    const char *sum = strstr(err, "{\"summary\":\"generate-batch\"");
    if (!sum) fail_msg("no summary line on stderr:\n%s", err);
    json_t *js = json_loads(sum, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(js);
    assert_int_equal(json_integer_value(json_object_get(js, "requests")), 6);
    assert_int_equal(json_integer_value(json_object_get(js, "failed")), 2);
    assert_int_equal(json_integer_value(json_object_get(js, "generated_tokens")), 8 + 3 + 6 + 8);
    assert_true(json_object_get(js, "peak_kv_blocks_used") && json_object_get(js, "preemptions") &&
                json_object_get(js, "prefix_cache_hits") && json_object_get(js, "generated_tok_s"));
    json_decref(js);
    json_decref(l0);
    json_decref(l1);
    json_decref(l2);
    json_decref(l3);
    json_decref(l4);
    json_decref(l5);
    free(out);
    free(out2);
    free(err);
}

static void test_cli_batch_missing_file_is_one_clear_error(void **st)
{
    (void)st;
    char *out = NULL, *err = NULL;
    int rc = tu_run_cli("generate synthetic:tiny --batch /nonexistent/in.jsonl", NULL, &out, &err);
    assert_int_not_equal(rc, 0);
    if (!strstr(err, "/nonexistent/in.jsonl")) fail_msg("error should name the file: %s", err);
    if (out && *out) fail_msg("nothing should be written to stdout, got: %s", out);
    free(out);
    free(err);
}

static void test_cli_batch_text_prompts_and_stop_words_with_tokenizer(void **st)
{
    (void)st;
    TU_ASSET_OR_SKIP(model_rel, "models/stories260K/hf");
    char model[2048];
    snprintf(model, sizeof model, "%s", model_rel); /* tu_asset's buffer is reused */
    const char *in =
        write_input("text.jsonl", "{\"prompt\":\"Once upon a time\",\"max_new_tokens\":40}\n"
                                  "{\"prompt\":\"Once upon a time\",\"max_new_tokens\":40,\"stop\":[\"the\"]}\n");
    char cmd[8192], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "generate '%s' --backend cpu --threads 2 --batch '%s'", model, in);
    int rc = tu_run_cli(cmd, NULL, &out, &err);
    if (rc != 0) fail_msg("exit %d\nstderr: %s", rc, err);
    json_t *a = line_at(out, 0), *b = line_at(out, 1);
    const char *ta = json_string_value(json_object_get(a, "text")), *tb = json_string_value(json_object_get(b, "text"));
    if (!ta || !tb) fail_msg("text missing: %s", out);
    const char *hit = strstr(ta, "the");
    if (hit) {
        /* the stopped text is exactly the full text up to the stop word */
        if (strlen(tb) != (size_t)(hit - ta) || strncmp(ta, tb, strlen(tb)))
            fail_msg("stop word 'the': expected '%.*s', got '%s'", (int)(hit - ta), ta, tb);
        assert_string_equal(json_string_value(json_object_get(b, "finish_reason")), "stop");
    } else {
        assert_string_equal(ta, tb);
    }
    /* a stop word spanning several tokens: the text before it is delivered, not a byte more */
    if (strlen(ta) < 30) fail_msg("reference text too short: '%s'", ta);
    char sw[16];
    memcpy(sw, ta + 14, 9);
    sw[9] = 0;
    json_t *line = json_pack("{s:s, s:i, s:[s]}", "prompt", "Once upon a time", "max_new_tokens", 40, "stop", sw);
    char *ls = json_dumps(line, JSON_COMPACT);
    char body[1024];
    snprintf(body, sizeof body, "%s\n", ls);
    free(ls);
    json_decref(line);
    const char *in2 = write_input("stop2.jsonl", body);
    snprintf(cmd, sizeof cmd, "generate '%s' --backend cpu --threads 2 --batch '%s'", model, in2);
    char *out2 = NULL, *err2 = NULL;
    rc = tu_run_cli(cmd, NULL, &out2, &err2);
    if (rc != 0) fail_msg("exit %d\nstderr: %s", rc, err2);
    json_t *c = line_at(out2, 0);
    const char *tc = json_string_value(json_object_get(c, "text"));
    size_t want = (size_t)(strstr(ta, sw) - ta);
    if (!tc || strlen(tc) != want || strncmp(tc, ta, want))
        fail_msg("stop word '%s': expected '%.*s', got '%s'", sw, (int)want, ta, tc ? tc : "(none)");
    assert_string_equal(json_string_value(json_object_get(c, "finish_reason")), "stop");
    json_decref(c);
    free(out2);
    free(err2);
    json_decref(a);
    json_decref(b);
    free(out);
    free(err);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

/* "The dog" + the printed continuation is the text of the whole sequence (the first word
 * keeps its leading space), for generate and for --batch alike. */
static void test_cli_generate_output_appends_to_the_prompt(void **st)
{
    (void)st;
    TU_ASSET_OR_SKIP(model_rel, "models/stories260K/hf");
    char model[2048], cmd[8192];
    snprintf(model, sizeof model, "%s", model_rel);
    char *text = NULL, *ids_out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "generate '%s' --backend cpu --threads 2 --prompt 'The dog' --max-new-tokens 20", model);
    int rc = tu_run_cli(cmd, NULL, &text, &err);
    if (rc != 0) fail_msg("exit %d\nstderr: %s", rc, err);
    if (!strstr(err, "tok/s")) fail_msg("expected the speed on stderr, got: %s", err);
    free(err);
    snprintf(cmd, sizeof cmd, "generate '%s' --backend cpu --threads 2 --prompt 'The dog' --max-new-tokens 20 --ids",
             model);
    rc = tu_run_cli(cmd, NULL, &ids_out, NULL);
    assert_int_equal(rc, 0);
    /* reference: the library's one-shot detokenization of prompt + output ids */
    ignis_tokenizer *tok;
    TU_CHECK(ignis_tokenizer_open(model, &tok));
    int32_t *ids, seq[128];
    int n;
    TU_CHECK(ignis_tokenize(tok, "The dog", 7, true, false, &ids, &n));
    memcpy(seq, ids, sizeof(int32_t) * (size_t)n);
    free(ids);
    int n_prompt = n;
    for (char *p = ids_out, *e; *p && n < 128; p = e) {
        long v = strtol(p, &e, 10);
        if (e == p) break;
        seq[n++] = (int32_t)v;
    }
    assert_int_equal(n - n_prompt, 20);
    char *whole;
    size_t wl;
    TU_CHECK(ignis_detokenize(tok, seq, n, true, &whole, &wl));
    size_t tl = strlen(text);
    while (tl && text[tl - 1] == '\n')
        text[--tl] = 0;
    char joined[4096];
    snprintf(joined, sizeof joined, "The dog%s", text);
    if (strcmp(joined, whole))
        fail_msg("prompt + output is not the sequence's text\n expected: '%s'\n got:      '%s'", whole, joined);
    if (text[0] != ' ') fail_msg("the continuation should start with a space: '%s'", text);
    /* the batch path (and so the server) delivers the same text */
    const char *in = write_input("dog.jsonl", "{\"prompt\":\"The dog\",\"max_new_tokens\":20}\n");
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "generate '%s' --backend cpu --threads 2 --batch '%s'", model, in);
    assert_int_equal(tu_run_cli(cmd, NULL, &out, NULL), 0);
    json_t *l = line_at(out, 0);
    assert_string_equal(json_string_value(json_object_get(l, "text")), text);
    json_decref(l);
    free(out);
    free(whole);
    ignis_tokenizer_free(tok);
    free(text);
    free(ids_out);
}

static void test_cli_batch_fractional_max_new_tokens_is_an_error_naming_its_line(void **st)
{
    (void)st;
    const char *in = write_input("frac.jsonl", "{\"prompt_ids\":[1,2,3],\"max_new_tokens\":3}\n"
                                               "{\"prompt_ids\":[1,2,3],\"max_new_tokens\":3.7}\n"
                                               "{\"prompt_ids\":[1,2,3],\"top_k\":2.5}\n");
    char cmd[4096], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "generate synthetic:tiny --backend cpu --threads 2 --batch '%s'", in);
    int rc = tu_run_cli(cmd, NULL, &out, &err);
    if (rc != 1) fail_msg("expected exit 1, got %d\nstderr: %s", rc, err);
    json_t *l0 = line_at(out, 0), *l1 = line_at(out, 1), *l2 = line_at(out, 2);
    assert_int_equal(json_array_size(json_object_get(l0, "ids")), 3);
    const char *e1 = json_string_value(json_object_get(l1, "error"));
    if (!e1 || !strstr(e1, "line 2") || !strstr(e1, "max_new_tokens") || !strstr(e1, "integer"))
        fail_msg("3.7 tokens: expected an error naming line 2 and max_new_tokens, got %s", e1 ? e1 : "(none)");
    const char *e2 = json_string_value(json_object_get(l2, "error"));
    if (!e2 || !strstr(e2, "line 3") || !strstr(e2, "top_k"))
        fail_msg("top_k 2.5: expected an error naming line 3, got %s", e2 ? e2 : "(none)");
    json_decref(l0);
    json_decref(l1);
    json_decref(l2);
    free(out);
    free(err);
}

static void test_cli_batch_directory_is_one_clear_error(void **st)
{
    (void)st;
    const char *dir = tu_tmpdir("batch-dir");
    char cmd[4096], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "generate synthetic:tiny --batch '%s'", dir);
    int rc = tu_run_cli(cmd, NULL, &out, &err);
    assert_int_equal(rc, 1);
    if (!err || !strstr(err, "is a directory") || !strstr(err, dir) || count_lines(err) != 1)
        fail_msg("expected one line saying the batch file is a directory, got: %s", err ? err : "(none)");
    if (out && *out) fail_msg("nothing should go to stdout, got: %s", out);
    free(out);
    free(err);
}

static void test_cli_generate_help_documents_every_batch_field(void **st)
{
    (void)st;
    char *out = NULL;
    assert_int_equal(tu_run_cli("generate --help", NULL, &out, NULL), 0);
    static const char *const fields[] = {"prompt",     "prompt_ids", "max_new_tokens",     "temperature",
                                         "top_k",      "top_p",      "repetition_penalty", "seed",
                                         "ignore_eos", "stop",       "priority",           "id"};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        char key[64];
        snprintf(key, sizeof key, "\n  %s ", fields[i]);
        if (!strstr(out, key)) fail_msg("generate --help does not document the batch field \"%s\"", fields[i]);
    }
    free(out);
}

static void test_cli_generate_text_prompt_without_tokenizer_is_one_line(void **st)
{
    (void)st;
    char *out = NULL, *err = NULL;
    int rc = tu_run_cli("generate synthetic:tiny --backend cpu --threads 2 --prompt hello", NULL, &out, &err);
    assert_int_equal(rc, 1);
    if (!err || count_lines(err) != 1 || !strstr(err, "no tokenizer") || !strstr(err, "--prompt-ids"))
        fail_msg("expected one line saying the model has no tokenizer (use --prompt-ids), got: %s", err);
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_batch_writes_results_in_order_with_errors_and_summary),
        cmocka_unit_test(test_cli_batch_missing_file_is_one_clear_error),
        cmocka_unit_test(test_cli_batch_text_prompts_and_stop_words_with_tokenizer),
        cmocka_unit_test(test_cli_generate_output_appends_to_the_prompt),
        cmocka_unit_test(test_cli_batch_fractional_max_new_tokens_is_an_error_naming_its_line),
        cmocka_unit_test(test_cli_batch_directory_is_one_clear_error),
        cmocka_unit_test(test_cli_generate_help_documents_every_batch_field),
        cmocka_unit_test(test_cli_generate_text_prompt_without_tokenizer_is_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
