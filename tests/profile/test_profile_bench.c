/*
 * `ignis bench throughput --kernels` on the CPU (CI): the run succeeds, the report's
 * profiling columns exist and are NA (no GPU, no NVML here), the per-step CSV is written
 * beside the report with its host columns filled and its GPU columns NA, and every request
 * of the per-request CSV carries its TTFT breakdown (own and shared prefill) that adds up
 * with the queue time to at most its TTFT.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_test_util.h"

static void test_bench_kernels_on_the_cpu_gives_na_columns_steps_and_ttft_parts(void **st)
{
    (void)st;
    const char *tmp = tu_tmpdir("profile_bench");
    char args[2048];
    snprintf(args, sizeof args,
             "bench throughput --model synthetic:tiny --threads 2 --num-prompts 10 --random-input-len 40 "
             "--random-output-len 8 --concurrency 4 --kernels --telemetry-ms 20 --no-progress --output '%s/r.csv' "
             "--requests-csv '%s/q.csv'",
             tmp, tmp);
    char *out = NULL, *err = NULL;
    int rc = tu_run_cli(args, NULL, &out, &err);
    if (rc != 0) fail_msg("ignis %s\nexit %d\n%s\n%s", args, rc, out ? out : "", err ? err : "");
    if (!strstr(out, "Kernel profile (--kernels):")) fail_msg("no kernel-profile line in:\n%s", out);
    free(out), free(err);

    char p[600];
    bench_table t;
    snprintf(p, sizeof p, "%s/r.csv", tmp);
    bt_read_csv(p, &t);
    assert_int_equal(t.nrows, 1);
    static const char *na[] = {"kernels_csv",      "gpu_busy_frac",        "top_kernel",
                               "top_kernel_share", "kernels_overhead_pct", "energy_j",
                               "tokens_per_joule", "mean_watts",           "throttled"};
    for (size_t i = 0; i < sizeof na / sizeof na[0]; i++) {
        const char *v = bench_table_get(&t, 0, na[i]);
        if (!v)
            fail_msg("report lacks column %s", na[i]);
        else if (*v)
            fail_msg("column %s is '%s' without a GPU (expected NA)", na[i], v);
    }
    /* no profiling self-check fires without a GPU (the load generator's own checks may, on a
     * busy machine, so `valid` itself is not pinned here) */
    const char *why = bench_table_get(&t, 0, "invalid_reasons");
    if (strstr(why, "kernel profile") || strstr(why, "throttled") || strstr(why, "CUPTI"))
        fail_msg("profiling self-check fired without a GPU: %s", why);
    bench_table_free(&t);

    snprintf(p, sizeof p, "%s/r.steps.csv", tmp);
    bt_read_csv(p, &t);
    assert_true(t.nrows > 0);
    double tokens = 0;
    for (int r = 0; r < t.nrows; r++) {
        assert_true(bt_num(&t, r, "host_ms") > 0);
        assert_true(bt_num(&t, r, "batch_size") >= 1);
        tokens += bt_num(&t, r, "tokens");
        assert_string_equal(bench_table_get(&t, r, "gpu_busy_ms"), "");
        assert_string_equal(bench_table_get(&t, r, "gbps"), "");
    }
    /* 10 prompts of 40 tokens once, 7 fed-back tokens each (the 8th is never evaluated) */
    if (fabs(tokens - (10 * 40 + 10 * 7)) > 0.5) fail_msg("steps computed %.0f tokens, expected 470", tokens);
    bench_table_free(&t);

    snprintf(p, sizeof p, "%s/q.csv", tmp);
    bt_read_csv(p, &t);
    assert_int_equal(t.nrows, 10);
    for (int r = 0; r < t.nrows; r++) {
        double own = bt_num(&t, r, "prefill_own_ms"), shared = bt_num(&t, r, "prefill_shared_ms");
        double queue = bt_num(&t, r, "queue_ms"), ttft = bt_num(&t, r, "ttft_ms");
        if (!(own > 0 && shared >= 0)) fail_msg("request %d: own %g shared %g", r, own, shared);
        if (!(queue + own + shared <= ttft + 0.01))
            fail_msg("request %d: parts %g > ttft %g", r, queue + own + shared, ttft);
    }
    bench_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bench_kernels_on_the_cpu_gives_na_columns_steps_and_ttft_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
