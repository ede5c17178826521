/* `ignis bench serving` against our own server, `ignis serve api_server` (CPU backend,
 * stories260K) on a free loopback port, polled on /health and always stopped. Exits 77
 * (skipped) while the CLI has no `serve` command. */
#include <stdlib.h>
#include <string.h>

#include "bench_test_util.h"

static pid_t g_pid = -1;
static int g_port;
static const char *g_tmp, *g_model;

/* `ignis serve api_server MODEL` on the CPU at a free port (set in *port), --model-name
 * NAME when given; the pid once /health answers, -1 (and stopped) when it never does. */
static pid_t start_server(const char *model, const char *name, int *port)
{
    *port = bt_free_port();
    char ps[16];
    snprintf(ps, sizeof ps, "%d", *port);
    char *argv[] = {getenv("IGNIS_BIN"),
                    "serve",
                    "api_server",
                    (char *)model,
                    "--server-name",
                    "127.0.0.1",
                    "--server-port",
                    ps,
                    "--backend",
                    "cpu",
                    "--threads",
                    "2",
                    name ? "--model-name" : NULL,
                    (char *)name,
                    NULL};
    pid_t pid = bt_spawn(argv, NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/health", *port);
    if (bt_wait_health(url, 60)) return pid;
    bt_stop(pid);
    return -1;
}

static int setup(void **st)
{
    (void)st;
    g_tmp = strdup(tu_tmpdir("bench_api_server"));
    const char *m = tu_asset("models/stories260K/hf");
    if (!m) return 0; /* the test skips */
    g_model = strdup(m);
    g_pid = start_server(g_model, "stories", &g_port);
    return g_pid > 0 ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    bt_stop(g_pid);
    return 0;
}

static void serving(const char *name, const char *extra)
{
    char args[2048];
    snprintf(args, sizeof args,
             "bench serving --base-url http://127.0.0.1:%d --tokenizer '%s' --num-prompts 16 --random-input-len 24 "
             "--output-len 20 --concurrency 4 --no-progress --output '%s/%s.csv' --requests-csv '%s/%s-req.csv' "
             "--scrape-metrics %s",
             g_port, g_model, g_tmp, name, g_tmp, name, extra);
    int rc = bt_run_cli(args);
    if (rc != 0) fail_msg("ignis %s: exit %d", args, rc);
    char p[600];
    snprintf(p, sizeof p, "%s/%s.csv", g_tmp, name);
    bench_table t;
    bt_read_csv(p, &t);
    assert_int_equal((int)bt_num(&t, 0, "completed"), 16);
    assert_int_equal((int)bt_num(&t, 0, "failed"), 0);
    assert_true(bt_num(&t, 0, "usage_token_mismatch") >= 0); /* reported (text re-tokenization may merge) */
    assert_true(bt_num(&t, 0, "ttft_ms_p50") > 0);
    bench_table_free(&t);
    snprintf(p, sizeof p, "%s/%s-req.csv", g_tmp, name);
    bt_read_csv(p, &t);
    for (int r = 0; r < t.nrows; r++)
        assert_int_equal((int)bt_num(&t, r, "usage_tokens"), 20); /* ignore_eos: exactly what was asked */
    bench_table_free(&t);
}

static void test_serving_against_our_server(void **st)
{
    (void)st;
    TU_SKIP_WITHOUT_ASSET(g_model, "models/stories260K/hf");
    serving("completions", "");
    serving("chat", "--endpoint chat");
}

/* A model without a tokenizer (synthetic:tiny) streams one empty chunk per token, so the
 * harness times every token: TTFT and 19 ITLs for 20 tokens, counts agreeing with usage. */
static void test_serving_a_tokenizer_less_model_times_every_token(void **st)
{
    (void)st;
    int port;
    pid_t pid = start_server("synthetic:tiny", NULL, &port);
    if (pid < 0) fail_msg("server on synthetic:tiny did not come up");
    char args[2048];
    snprintf(args, sizeof args,
             "bench serving --base-url http://127.0.0.1:%d --send-ids --vocab 512 --num-prompts 8 "
             "--random-input-len 12 --output-len 20 --concurrency 4 --no-progress --output '%s/tiny.csv' "
             "--requests-csv '%s/tiny-req.csv'",
             port, g_tmp, g_tmp);
    int rc = bt_run_cli(args);
    bt_stop(pid);
    if (rc != 0) fail_msg("ignis %s: exit %d", args, rc);
    char p[600];
    snprintf(p, sizeof p, "%s/tiny.csv", g_tmp);
    bench_table t;
    bt_read_csv(p, &t);
    assert_int_equal((int)bt_num(&t, 0, "completed"), 8);
    assert_int_equal((int)bt_num(&t, 0, "failed"), 0);
    assert_true(bt_num(&t, 0, "ttft_ms_p50") > 0);
    assert_true(bt_num(&t, 0, "itl_ms_p50") >= 0);
    bench_table_free(&t);
    snprintf(p, sizeof p, "%s/tiny-req.csv", g_tmp);
    bt_read_csv(p, &t);
    assert_int_equal(t.nrows, 8);
    for (int r = 0; r < t.nrows; r++) {
        assert_int_equal((int)bt_num(&t, r, "output_tokens"), 20);
        assert_true(bt_num(&t, r, "ttft_ms") > 0);
        assert_int_equal(bt_list_len(bench_table_get(&t, r, "itl_ms_list")), 19);
    }
    bench_table_free(&t);
}

int main(void)
{
    /* the server lands in its own branch: skip until `ignis serve` exists */
    char *err = NULL;
    int rc = tu_run_cli("serve api_server --help", NULL, NULL, &err);
    bool missing = rc != 0 && err && strstr(err, "unknown command");
    free(err);
    if (missing) {
        printf("skipping: this ignis has no 'serve' command yet\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serving_against_our_server),
        cmocka_unit_test(test_serving_a_tokenizer_less_model_times_every_token),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
