/* `ignis bench compare`: its exit codes on identical, noisy, regressed and invalid reports
 * (reports made here from synthetic runs, through the same writer the modes use). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_test_util.h"

static const char *g_tmp;

/* 400 requests; TTFT ~ 100 ms x (0.5 + Gamma(2)/2) x lat_scale, 32 tokens each with ITLs
 * ~ 20 ms x (0.5 + Gamma(2)/2) x lat_scale; duration 10 s x dur_scale. */
static void make_report(const char *name, uint64_t seed, double lat_scale, double dur_scale, bool invalid,
                        bool with_requests)
{
    bench_rng r;
    bench_rng_seed(&r, seed);
    bench_run run = {0};
    run.n = 400;
    run.recs = calloc((size_t)run.n, sizeof(bench_record));
    for (int i = 0; i < run.n; i++) {
        bench_record *q = &run.recs[i];
        q->index = i;
        q->ready = q->sent = q->scheduled = i * 0.02;
        q->ok = true;
        q->queue = q->prefill = -1;
        q->usage_tokens = q->cached_tokens = -1;
        q->prompt_tokens = 64;
        q->output_tokens = 32;
        q->token_times = malloc(sizeof(double) * 32);
        double t = 0.1 * (0.5 + bench_rng_gamma(&r, 2) / 2) * lat_scale;
        q->ttft = t;
        for (int k = 0; k < 32; k++) {
            if (k) t += 0.02 * (0.5 + bench_rng_gamma(&r, 2) / 2) * lat_scale;
            q->token_times[k] = t;
        }
        q->e2e = t;
        q->decode = t - q->ttft;
    }
    run.duration = 10 * dur_scale;
    run.preemptions = -1;
    bench_metrics m;
    bench_metrics_compute(&run, NULL, &m);
    char rep[512], req[512];
    snprintf(rep, sizeof rep, "%s/%s.csv", g_tmp, name);
    snprintf(req, sizeof req, "%s/%s-requests.csv", g_tmp, name);
    assert_int_equal(bench_write_requests_csv(req, &run, "concurrency=8,rate=inf"), 0);
    bench_row row;
    bench_row_init(&row);
    bench_meta meta = {.mode = "throughput",
                       .model = "synthetic:tiny",
                       .backend = "cpu",
                       .workload = "random",
                       .workload_hash = "abcd",
                       .config = "concurrency=8,rate=inf"};
    bench_row_fill_meta(&row, &meta);
    bench_row_fill_metrics(&row, &m);
    bench_row_check_validity(&row, &m);
    if (invalid) {
        bench_row_set(&row, "valid", "0");
        bench_row_set(&row, "invalid_reasons", "schedule lag p99 25.0 ms > 10 ms");
    }
    if (with_requests) bench_row_set(&row, "requests_csv", "%s", req);
    remove(rep);
    assert_int_equal(bench_report_write(rep, &row, 1, false), 0);
    bench_row_free(&row);
    bench_run_free(&run);
}

static int setup(void **st)
{
    (void)st;
    g_tmp = strdup(tu_tmpdir("bench_compare"));
    make_report("base", 1, 1.0, 1.0, false, true);
    make_report("noisy", 2, 1.0, 1.0, false, true);
    make_report("noisy-nodata", 2, 1.0, 1.0, false, false);
    make_report("slow", 3, 1.5, 1.0, false, true);
    make_report("lowtput", 1, 1.0, 1.10, false, true);
    make_report("invalid", 1, 1.0, 1.0, true, true);
    return 0;
}

static int compare(const char *a, const char *b, const char *extra, char **out)
{
    char args[2048];
    snprintf(args, sizeof args, "bench compare '%s/%s.csv' '%s/%s.csv' %s", g_tmp, a, g_tmp, b, extra ? extra : "");
    char *err = NULL;
    int rc = tu_run_cli(args, NULL, out, &err);
    if (rc == 2 && err) print_message("stderr: %s\n", err);
    free(err);
    return rc;
}

static void test_compare_identical_reports_pass(void **st)
{
    (void)st;
    char *out;
    assert_int_equal(compare("base", "base", NULL, &out), 0);
    assert_non_null(strstr(out, "1 matched row(s), 0 regression(s)"));
    free(out);
}

static void test_compare_noise_passes_through_bootstrap_cis(void **st)
{
    (void)st;
    char *out;
    int rc = compare("base", "noisy", NULL, &out);
    if (rc != 0) fail_msg("exit %d on a noisy but equal run:\n%s", rc, out);
    /* the run differs by more than the tolerance somewhere, and the CIs called it noise */
    assert_non_null(strstr(out, "noise (CIs overlap)"));
    free(out);
    /* without per-request data the same difference fails: the CIs are what let it pass */
    assert_int_equal(compare("base", "noisy-nodata", NULL, &out), 1);
    free(out);
}

static void test_compare_regressions_fail(void **st)
{
    (void)st;
    char *out;
    assert_int_equal(compare("base", "slow", NULL, &out), 1);
    assert_non_null(strstr(out, "REGRESSION"));
    free(out);
    /* 10% fewer tok/s (no CI for throughput) */
    assert_int_equal(compare("base", "lowtput", "--metrics output_tok_s", &out), 1);
    free(out);
    /* ... within a 15% tolerance it passes */
    assert_int_equal(compare("base", "lowtput", "--metrics output_tok_s --tolerance 15", &out), 0);
    free(out);
    /* the other way round is an improvement */
    assert_int_equal(compare("slow", "base", NULL, &out), 0);
    assert_non_null(strstr(out, "improved"));
    free(out);
}

static void test_compare_invalid_or_unmatched_exits_3_and_bad_input_2(void **st)
{
    (void)st;
    char *out;
    assert_int_equal(compare("base", "invalid", NULL, &out), 3);
    assert_non_null(strstr(out, "NEW marked invalid"));
    free(out);
    /* no common configuration */
    const char *hdr[2] = {"schema_version", "config"};
    const char *cells[2] = {"1", "other"};
    char p[600];
    snprintf(p, sizeof p, "%s/other.csv", g_tmp);
    assert_int_equal(bench_csv_write_atomic(p, hdr, 2, cells, 1), 0);
    assert_int_equal(compare("base", "other", NULL, &out), 3);
    free(out);
    tu_write_file(g_tmp, "garbage.csv", "a,b\n1,\"2\n");
    assert_int_equal(compare("base", "garbage", NULL, &out), 2);
    free(out);
    assert_int_equal(compare("base", "missing", NULL, &out), 2);
    free(out);
    assert_int_equal(compare("base", "base", "--metrics no_such_metric", &out), 2);
    free(out);
    assert_int_equal(tu_run_cli("bench compare only-one.csv", NULL, &out, NULL), 2);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compare_identical_reports_pass),
        cmocka_unit_test(test_compare_noise_passes_through_bootstrap_cis),
        cmocka_unit_test(test_compare_regressions_fail),
        cmocka_unit_test(test_compare_invalid_or_unmatched_exits_3_and_bad_input_2),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
