/* `ignis bench serving` against a stand-in OpenAI server (bench_standin_server) that sends
 * several tokens per SSE chunk: every request completes, tokens are counted per token (not
 * per chunk) and agree with the server's usage, the ITLs of a chunk are spread evenly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_test_util.h"

static pid_t g_pid = -1;
static int g_port;
static const char *g_tmp;

static int setup(void **st)
{
    (void)st;
    g_tmp = strdup(tu_tmpdir("bench_serving"));
    const char *const opts[] = {"--tokens-per-chunk", "4", NULL};
    g_pid = bt_spawn_standin(opts, &g_port);
    return g_pid > 0 ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    bt_stop(g_pid);
    return 0;
}

static int serving(const char *name, const char *extra)
{
    char args[2048];
    snprintf(args, sizeof args,
             "bench serving --base-url http://127.0.0.1:%d --num-prompts 12 --random-input-len 16 --output-len 30 "
             "--concurrency 3 --no-progress --output '%s/%s.csv' --requests-csv '%s/%s-req.csv' "
             "--timeline-csv '%s/%s-tl.csv' %s",
             g_port, g_tmp, name, g_tmp, name, g_tmp, name, extra);
    return bt_run_cli(args);
}

static void check_report(const char *name, int completed)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s.csv", g_tmp, name);
    bench_table t;
    bt_read_csv(p, &t);
    assert_int_equal(t.nrows, 1);
    assert_int_equal((int)bt_num(&t, 0, "completed"), completed);
    assert_int_equal((int)bt_num(&t, 0, "failed"), 0);
    assert_int_equal((int)bt_num(&t, 0, "usage_token_mismatch"), 0);
    assert_string_equal(bench_table_get(&t, 0, "backend"), "http");
    assert_string_equal(bench_table_get(&t, 0, "mode"), "serving");
    assert_true(bt_num(&t, 0, "output_tok_s") > 0);
    bench_table_free(&t);
}

/* 30 tokens in chunks of 4,4,...,2: ITLs 0 0 0 | a a a a | b b b b | ... | z z */
static void check_itls(const char *name)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s-req.csv", g_tmp, name);
    bench_table t;
    bt_read_csv(p, &t);
    assert_int_equal(t.nrows, 12);
    for (int r = 0; r < t.nrows; r++) {
        assert_int_equal((int)bt_num(&t, r, "output_tokens"), 30);
        assert_int_equal((int)bt_num(&t, r, "usage_tokens"), 30);
        const char *l = bench_table_get(&t, r, "itl_ms_list");
        double itl[64] = {0};
        int n = 0;
        char *e;
        for (double v = strtod(l, &e); e != l && n < 64; l = e, v = strtod(l, &e))
            itl[n++] = v;
        assert_int_equal(n, 29);
        for (int k = 0; k < 3; k++)
            assert_true(itl[k] == 0); /* the first chunk's tokens share its time */
        for (int c = 0; c < 6; c++)   /* chunks 2..7 of four tokens: four equal gaps */
            for (int k = 1; k < 4; k++)
                if (fabs(itl[3 + 4 * c + k] - itl[3 + 4 * c]) > 0.0015)
                    fail_msg("request %d chunk %d: ITLs %g and %g differ", r, c + 1, itl[3 + 4 * c + k],
                             itl[3 + 4 * c]);
        assert_true(fabs(itl[27] - itl[28]) <= 0.0015); /* the last chunk holds two tokens */
    }
    bench_table_free(&t);
}

static void test_serving_counts_tokens_of_multi_token_chunks(void **st)
{
    (void)st;
    TU_ASSET_OR_SKIP(tok, "tokenizers/llama2");
    char extra[1024];
    snprintf(extra, sizeof extra, "--tokenizer '%s'", tok);
    assert_int_equal(serving("completions", extra), 0);
    check_report("completions", 12);
    check_itls("completions");
    /* the chat endpoint (prompts detokenized into messages) */
    snprintf(extra, sizeof extra, "--tokenizer '%s' --endpoint chat --model standin", tok);
    assert_int_equal(serving("chat", extra), 0);
    check_report("chat", 12);
    check_itls("chat");
}

static void test_serving_without_tokenizer_uses_usage(void **st)
{
    (void)st;
    /* ids go as a token array; the counts come from usage, spread over the chunks */
    assert_int_equal(serving("nouse", ""), 0);
    check_report("nouse", 12);
    check_itls("nouse");
}

/* `ignis bench serving --base-url <a fresh stand-in started with opts> ARGS`; the stand-in
 * is stopped after, and a non-zero exit fails the test. */
static void serving_against(const char *const opts[], const char *args)
{
    int port;
    pid_t pid = bt_spawn_standin(opts, &port);
    assert_true(pid > 0);
    char full[3072];
    snprintf(full, sizeof full, "bench serving --base-url http://127.0.0.1:%d %s", port, args);
    int rc = bt_run_cli(full);
    bt_stop(pid);
    if (rc != 0) fail_msg("ignis %s: exit %d", full, rc);
}

static void test_serving_ids_to_a_server_without_text(void **st)
{
    (void)st;
    /* a server without a tokenizer (our server on a synthetic model): prompts go as ids,
     * answers come as one empty-text chunk per token plus usage */
    TU_ASSET_OR_SKIP(tok_s, "tokenizers/llama2");
    char *tok = strdup(tok_s);
    const char *const opts[] = {"--no-text", NULL};
    char args[2048];
    snprintf(args, sizeof args,
             "--tokenizer '%s' --send-ids --num-prompts 12 --random-input-len 16 --output-len 30 --concurrency 3 "
             "--no-progress --output '%s/notext.csv' --requests-csv '%s/notext-req.csv'",
             tok, g_tmp, g_tmp);
    free(tok);
    serving_against(opts, args);
    check_report("notext", 12);
    char p[600];
    snprintf(p, sizeof p, "%s/notext-req.csv", g_tmp);
    bench_table t;
    bt_read_csv(p, &t);
    for (int r = 0; r < t.nrows; r++) {
        assert_int_equal((int)bt_num(&t, r, "output_tokens"), 30);
        assert_int_equal((int)bt_num(&t, r, "prompt_tokens"), 16); /* the server saw 16 ids */
        assert_true(bt_num(&t, r, "ttft_ms") >= 0);                /* timed by the empty chunks */
        assert_int_equal(bt_list_len(bench_table_get(&t, r, "itl_ms_list")), 29);
    }
    bench_table_free(&t);
}

static void test_serving_open_loop_schedule_and_metrics_scrape(void **st)
{
    (void)st;
    assert_int_equal(serving("rate", "--request-rate 400 --burstiness 0.5 --scrape-metrics --seed 3"), 0);
    check_report("rate", 12);
    char p[600];
    snprintf(p, sizeof p, "%s/rate-req.csv", g_tmp);
    bench_table t;
    bt_read_csv(p, &t);
    double last = -1;
    for (int r = 0; r < t.nrows; r++) {
        double sched = bt_num(&t, r, "scheduled_s"), ready = bt_num(&t, r, "ready_s");
        assert_true(sched > last); /* arrivals spread by the schedule, in order */
        assert_true(ready >= sched);
        last = sched;
    }
    bench_table_free(&t);
    snprintf(p, sizeof p, "%s/rate-tl.csv", g_tmp);
    bt_read_csv(p, &t);
    assert_true(t.nrows >= 1);
    assert_true(fabs(bt_num(&t, 0, "kv_usage") - 0.25) < 1e-9); /* the stand-in's vllm: gauge */
    bench_table_free(&t);
}

/* A server slow to answer /metrics (8 s here, past the scrape's 5 s timeout) must not hold
 * up the streams: the scrape runs on the streams' event loop, never blocking it. A blocking
 * GET at the first sample would stretch the run past 5 s; the streams alone take well
 * under a second. */
static void test_serving_slow_metrics_never_stall_the_streams(void **st)
{
    (void)st;
    const char *const opts[] = {"--metrics-delay-ms", "8000", NULL};
    char args[2048];
    snprintf(args, sizeof args,
             "--model standin --num-prompts 12 --random-input-len 16 --output-len 30 --concurrency 3 "
             "--scrape-metrics --no-progress --output '%s/slowmetrics.csv'",
             g_tmp);
    serving_against(opts, args);
    char p[600];
    snprintf(p, sizeof p, "%s/slowmetrics.csv", g_tmp);
    bench_table t;
    bt_read_csv(p, &t);
    assert_int_equal((int)bt_num(&t, 0, "completed"), 12);
    double d = bt_num(&t, 0, "duration_s");
    if (!(d < 4.0)) fail_msg("the run took %.2f s: a /metrics scrape held up the streams", d);
    bench_table_free(&t);
}

/* Tokens of the requests CSV (ready + TTFT + the ITLs) that arrived in (t0, t1]. */
static int tokens_between(const bench_table *req, double t0, double t1)
{
    int n = 0;
    for (int r = 0; r < req->nrows; r++) {
        double t = bt_num(req, r, "ready_s") + bt_num(req, r, "ttft_ms") / 1e3;
        n += t > t0 && t <= t1;
        const char *l = bench_table_get(req, r, "itl_ms_list");
        char *e;
        for (double v = strtod(l, &e); e != l; l = e, v = strtod(l, &e)) {
            t += v / 1e3;
            n += t > t0 && t <= t1;
        }
    }
    return n;
}

/* The timeline's tok/s over HTTP comes from the tokens the client received (a /metrics
 * scrape carries no token counter): each interval's rate times its length is the number of
 * tokens the requests CSV puts in it, give or take one 4-token chunk at an edge (the CSVs'
 * printed precision). The stand-in paces chunks 50 ms apart, so the run spans 3 samples. */
static void test_serving_timeline_tok_s_counts_the_tokens_received(void **st)
{
    (void)st;
    const char *const opts[] = {"--tokens-per-chunk", "4", "--delay-us", "50000", NULL};
    char args[2048];
    snprintf(args, sizeof args,
             "--model standin --num-prompts 12 --random-input-len 16 --output-len 32 --concurrency 3 --scrape-metrics "
             "--no-progress --output '%s/paced.csv' --requests-csv '%s/paced-req.csv' --timeline-csv '%s/paced-tl.csv'",
             g_tmp, g_tmp, g_tmp);
    serving_against(opts, args);
    char p[600];
    bench_table req, tl;
    snprintf(p, sizeof p, "%s/paced-req.csv", g_tmp);
    bt_read_csv(p, &req);
    snprintf(p, sizeof p, "%s/paced-tl.csv", g_tmp);
    bt_read_csv(p, &tl);
    assert_int_equal(tokens_between(&req, -1, 1e9), 12 * 32);
    int busy = 0;
    for (int j = 0; j < tl.nrows; j++) {
        double t0 = j ? bt_num(&tl, j - 1, "t_s") : 0, t1 = bt_num(&tl, j, "t_s");
        double got = bt_num(&tl, j, "tok_s") * (t1 - t0);
        int want = tokens_between(&req, t0, t1);
        if (fabs(got - want) > 4.01)
            fail_msg("interval %d (%.4f, %.4f] s: tok_s says %.1f tokens, the requests CSV %d", j, t0, t1, got, want);
        busy += want > 0;
    }
    if (busy < 2) fail_msg("only %d timeline intervals saw tokens: the run was meant to span several", busy);
    bench_table_free(&req);
    bench_table_free(&tl);
}

static void test_serving_unreachable_server_marks_the_run_invalid(void **st)
{
    (void)st;
    int port = bt_free_port();
    char args[1024];
    snprintf(args, sizeof args,
             "bench serving --base-url http://127.0.0.1:%d --model x --num-prompts 3 --output-len 4 --no-progress "
             "--output '%s/down.csv'",
             port, g_tmp);
    char *out = NULL;
    assert_int_equal(tu_run_cli(args, NULL, &out, NULL), 0);
    free(out);
    char p[600];
    snprintf(p, sizeof p, "%s/down.csv", g_tmp);
    bench_table t;
    bt_read_csv(p, &t);
    assert_int_equal((int)bt_num(&t, 0, "failed"), 3);
    assert_string_equal(bench_table_get(&t, 0, "valid"), "0");
    assert_non_null(strstr(bench_table_get(&t, 0, "invalid_reasons"), "3 requests failed"));
    bench_table_free(&t);
    /* and --base-url is required */
    assert_int_equal(tu_run_cli("bench serving --num-prompts 3", NULL, NULL, NULL), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serving_counts_tokens_of_multi_token_chunks),
        cmocka_unit_test(test_serving_without_tokenizer_uses_usage),
        cmocka_unit_test(test_serving_ids_to_a_server_without_text),
        cmocka_unit_test(test_serving_open_loop_schedule_and_metrics_scrape),
        cmocka_unit_test(test_serving_slow_metrics_never_stall_the_streams),
        cmocka_unit_test(test_serving_timeline_tok_s_counts_the_tokens_received),
        cmocka_unit_test(test_serving_unreachable_server_marks_the_run_invalid),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
