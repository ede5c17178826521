/* Workload loaders: the asset datasets, synthetic prompts, and clear errors (with the
 * file and line) on bad input. */
#include <stdlib.h>
#include <string.h>

#include "bench_test_util.h"

static ignis_tokenizer *g_tok;
static const char *g_tmp;

static int setup(void **st)
{
    (void)st;
    g_tmp = strdup(tu_tmpdir("bench_datasets"));
    const char *dir = tu_asset("tokenizers/llama2");
    if (dir && ignis_tokenizer_open(dir, &g_tok) != IGNIS_OK) return -1;
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    ignis_tokenizer_free(g_tok);
    return 0;
}

static void expect_error(const bench_ds_opts *o, const char *needle)
{
    bench_workload w;
    assert_int_equal(bench_workload_load(o, &w), -1);
    if (!strstr(bench_errmsg(), needle)) fail_msg("error '%s' does not mention '%s'", bench_errmsg(), needle);
}

static void test_sharegpt_output_lengths_come_from_answers(void **st)
{
    (void)st;
    TU_SKIP_WITHOUT_ASSET(g_tok, "tokenizers/llama2");
    TU_ASSET_OR_SKIP(path, "workloads/ShareGPT_V3_with_answers_1489.json");
    bench_ds_opts o;
    bench_ds_opts_init(&o);
    o.kind = BENCH_DS_SHAREGPT;
    o.path = path;
    o.num_prompts = 20;
    o.tok = g_tok;
    bench_workload w;
    assert_int_equal(bench_workload_load(&o, &w), 0);
    assert_int_equal(w.n, 20);
    for (int i = 0; i < w.n; i++) {
        bench_item *it = &w.items[i];
        assert_non_null(it->expected_out);
        int32_t *ids;
        int n;
        TU_CHECK(ignis_tokenize(g_tok, it->expected_out, strlen(it->expected_out), false, false, &ids, &n));
        free(ids);
        assert_int_equal(it->output_len, n);
        assert_true(it->n_ids >= 4 && it->n_ids <= 1024 && it->n_ids + it->output_len <= 2048);
        assert_int_equal(it->ids[0], ignis_tokenizer_bos(g_tok)); /* prompts start with BOS */
    }
    assert_int_equal(strlen(w.hash), 16);
    bench_workload_free(&w);
    /* without a tokenizer, answers cannot be counted: say how to fix it */
    o.tok = NULL;
    expect_error(&o, "--tokenizer");
}

static void test_sharegpt_prompts_only_file_needs_output_len(void **st)
{
    (void)st;
    TU_ASSET_OR_SKIP(path, "workloads/ShareGPT_V3_filtered_1000.json");
    bench_ds_opts o;
    bench_ds_opts_init(&o);
    o.kind = BENCH_DS_SHAREGPT;
    o.path = path;
    o.num_prompts = 10;
    o.tok = g_tok;
    expect_error(&o, "--output-len");
    o.output_fixed = true;
    o.output_len = 64;
    bench_workload w;
    assert_int_equal(bench_workload_load(&o, &w), 0);
    assert_int_equal(w.n, 10);
    for (int i = 0; i < w.n; i++)
        assert_int_equal(w.items[i].output_len, 64);
    bench_workload_free(&w);
}

static void test_sharegpt_bad_json_names_the_line(void **st)
{
    (void)st;
    bench_ds_opts o;
    bench_ds_opts_init(&o);
    o.kind = BENCH_DS_SHAREGPT;
    o.output_fixed = true;
    o.path = tu_write_file(g_tmp, "bad.json", "[\n {\"id\": \"a\", \"conversations\": []},\n {\"id\": oops}\n]\n");
    expect_error(&o, "bad.json:3:");
    o.path = tu_write_file(g_tmp, "notlist.json", "{\"id\": 1}\n");
    expect_error(&o, "expected a JSON list");
    o.path = "/nonexistent/x.json";
    expect_error(&o, "/nonexistent/x.json");
}

static void test_jsonl_workload_reads_generate_batch_lines(void **st)
{
    (void)st;
    bench_ds_opts o;
    bench_ds_opts_init(&o);
    o.kind = BENCH_DS_JSONL;
    o.vocab = 32000;
    o.path = tu_write_file(g_tmp, "w.jsonl",
                           "{\"id\": \"a\", \"prompt_ids\": [1, 5, 9], \"max_new_tokens\": 7, \"ignore_eos\": true}\n"
                           "\n"
                           "{\"prompt_ids\": [2, 3], \"max_new_tokens\": 4, \"temperature\": 0.5}\n");
    bench_workload w;
    assert_int_equal(bench_workload_load(&o, &w), 0);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.items[0].n_ids, 3);
    assert_int_equal(w.items[0].ids[2], 9);
    assert_int_equal(w.items[0].output_len, 7);
    assert_true(w.items[0].ignore_eos);
    assert_false(w.items[1].ignore_eos);
    assert_int_equal(w.items[1].output_len, 4);
    bench_workload_free(&w);
    /* --output-len overrides every line */
    o.output_fixed = true;
    o.output_len = 3;
    assert_int_equal(bench_workload_load(&o, &w), 0);
    assert_int_equal(w.items[0].output_len, 3);
    bench_workload_free(&w);
}

static void test_jsonl_errors_name_file_and_line(void **st)
{
    (void)st;
    bench_ds_opts o;
    bench_ds_opts_init(&o);
    o.kind = BENCH_DS_JSONL;
    o.path = tu_write_file(g_tmp, "e1.jsonl",
                           "{\"prompt_ids\": [1], \"max_new_tokens\": 2}\n\n{\"prompt_ids\": [1], "
                           "\"max_new_tokens\": 2, \"colour\": 1}\n");
    expect_error(&o, "e1.jsonl:3: unknown field \"colour\"");
    o.path = tu_write_file(g_tmp, "e2.jsonl", "{\"prompt_ids\": [1], \"max_new_tokens\": 2}\n{\"prompt_ids\": [1, \n");
    expect_error(&o, "e2.jsonl:2:");
    o.path = tu_write_file(g_tmp, "e3.jsonl", "{\"prompt_ids\": [1]}\n");
    expect_error(&o, "e3.jsonl:1: no \"max_new_tokens\"");
    o.path = tu_write_file(g_tmp, "e4.jsonl", "{\"prompt_ids\": [1, -4], \"max_new_tokens\": 2}\n");
    expect_error(&o, "e4.jsonl:1: \"prompt_ids\"[1]");
    o.path = tu_write_file(g_tmp, "e5.jsonl", "[1, 2]\n");
    expect_error(&o, "e5.jsonl:1: expected a JSON object");
    o.path = tu_write_file(g_tmp, "e6.jsonl", "{\"prompt\": \"x\", \"prompt_ids\": [1], \"max_new_tokens\": 2}\n");
    expect_error(&o, "e6.jsonl:1: give exactly one");
    o.path = g_tmp; /* a directory opens but cannot be read */
    expect_error(&o, "cannot read");
}

static void test_multiturn_keeps_conversations_in_order(void **st)
{
    (void)st;
    TU_ASSET_OR_SKIP(path, "workloads/mt_bench_question.jsonl");
    bench_ds_opts o;
    bench_ds_opts_init(&o);
    o.kind = BENCH_DS_MULTITURN;
    o.path = path;
    o.num_prompts = 5;
    expect_error(&o, "--output-len");
    o.output_fixed = true;
    o.output_len = 16;
    bench_workload w;
    assert_int_equal(bench_workload_load(&o, &w), 0);
    assert_int_equal(w.n_conversations, 5);
    assert_int_equal(w.n, 10); /* MT-Bench: two turns each */
    for (int i = 0; i < w.n; i++) {
        assert_int_equal(w.items[i].conversation, i / 2);
        assert_int_equal(w.items[i].turn, i % 2);
        assert_non_null(w.items[i].prompt);
    }
    bench_workload_free(&w);
    o.path = tu_write_file(g_tmp, "mt.jsonl", "{\"turns\": [\"a\"]}\n{\"turns\": []}\n");
    expect_error(&o, "mt.jsonl:2:");
}

static void test_random_lengths_ranges_seed_and_prefix(void **st)
{
    (void)st;
    bench_ds_opts o;
    bench_ds_opts_init(&o);
    o.num_prompts = 300;
    o.input_len = 100;
    o.output_len = 50;
    o.range_ratio = 0.2;
    o.vocab = 1000;
    o.prefix_len = 8;
    o.seed = 5;
    bench_workload a, b, c;
    assert_int_equal(bench_workload_load(&o, &a), 0);
    assert_int_equal(a.n, 300);
    int min_in = 1 << 30, max_in = 0;
    for (int i = 0; i < a.n; i++) {
        bench_item *it = &a.items[i];
        int in = it->n_ids - 8;
        min_in = in < min_in ? in : min_in;
        max_in = in > max_in ? in : max_in;
        assert_true(in >= 80 && in <= 120);
        assert_true(it->output_len >= 40 && it->output_len <= 60);
        for (int k = 0; k < it->n_ids; k++)
            assert_true(it->ids[k] >= 3 && it->ids[k] < 1000);
        assert_memory_equal(it->ids, a.items[0].ids, 8 * sizeof(int32_t)); /* shared prefix */
    }
    assert_true(min_in < 85 && max_in > 115); /* the range is used, not one length */
    assert_int_equal(bench_workload_load(&o, &b), 0);
    assert_string_equal(a.hash, b.hash);
    o.seed = 6;
    assert_int_equal(bench_workload_load(&o, &c), 0);
    assert_string_not_equal(a.hash, c.hash);
    bench_workload_free(&a), bench_workload_free(&b), bench_workload_free(&c);
    o.range_ratio = 1.5;
    expect_error(&o, "--random-range-ratio");
}

static void test_sonnet_prompts_share_their_opening(void **st)
{
    (void)st;
    TU_SKIP_WITHOUT_ASSET(g_tok, "tokenizers/llama2");
    TU_ASSET_OR_SKIP(path, "workloads/sonnet.txt");
    bench_ds_opts o;
    bench_ds_opts_init(&o);
    o.kind = BENCH_DS_SONNET;
    o.path = path;
    o.num_prompts = 8;
    o.input_len = 300;
    o.prefix_len = 100;
    o.tok = g_tok;
    bench_workload w;
    assert_int_equal(bench_workload_load(&o, &w), 0);
    assert_int_equal(w.n, 8);
    for (int i = 0; i < w.n; i++) {
        assert_true(w.items[i].n_ids >= 300);
        assert_memory_equal(w.items[i].ids, w.items[0].ids, 90 * sizeof(int32_t));
    }
    bench_workload_free(&w);
    o.tok = NULL;
    expect_error(&o, "tokenizer");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sharegpt_output_lengths_come_from_answers),
        cmocka_unit_test(test_sharegpt_prompts_only_file_needs_output_len),
        cmocka_unit_test(test_sharegpt_bad_json_names_the_line),
        cmocka_unit_test(test_jsonl_workload_reads_generate_batch_lines),
        cmocka_unit_test(test_jsonl_errors_name_file_and_line),
        cmocka_unit_test(test_multiturn_keeps_conversations_in_order),
        cmocka_unit_test(test_random_lengths_ranges_seed_and_prefix),
        cmocka_unit_test(test_sonnet_prompts_share_their_opening),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
