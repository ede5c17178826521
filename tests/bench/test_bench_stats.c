/* The harness' statistics against values computed by hand (the comments show the sums). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_test_util.h"

#define NEAR(a, b, tol)                                                                                                \
    do {                                                                                                               \
        double a_ = (a), b_ = (b);                                                                                     \
        if (!(fabs(a_ - b_) <= (tol))) fail_msg("%s = %.9g, expected %.9g (tol %g)", #a, a_, b_, (double)(tol));       \
    } while (0)

static void test_percentiles_interpolate_between_closest_ranks(void **st)
{
    (void)st;
    double x[10] = {7, 1, 10, 3, 5, 2, 9, 4, 8, 6}; /* 1..10, unsorted */
    bench_dist d;
    bench_dist_of(x, 10, &d);
    NEAR(d.p50, 5.5, 1e-12);  /* rank 4.5: 5 + .5*(6-5) */
    NEAR(d.p90, 9.1, 1e-12);  /* rank 8.1 */
    NEAR(d.p95, 9.55, 1e-12); /* rank 8.55 */
    NEAR(d.p99, 9.91, 1e-12); /* rank 8.91 */
    NEAR(d.min, 1, 0);
    NEAR(d.max, 10, 0);
    NEAR(d.mean, 5.5, 1e-12);
    NEAR(d.std, sqrt(82.5 / 9.0), 1e-12); /* sum of squared deviations 82.5, n-1 = 9 */
    double one = 42;
    bench_dist_of(&one, 1, &d);
    NEAR(d.p99, 42, 0);
    NEAR(d.std, 0, 0);
    bench_dist_of(NULL, 0, &d);
    assert_true(isnan(d.p50) && isnan(d.mean));
}

/* Three requests: two succeed, one fails. Times in seconds, from the run's start.
 *  r0: ready 0, sent 0, ttft .1, e2e .5, 5 tokens at .1 .2 .3 .4 .5 -> TPOT .4/4 = 100 ms
 *  r1: ready .2, sent .25 (50 ms lag), ttft .3, e2e .9, 3 tokens at .3 .5 .9 -> TPOT .6/2 = 300 ms
 *  r2: failed (ready .5, sent .5, e2e .1) */
static void make_run(bench_run *r, double *t0, double *t1)
{
    memset(r, 0, sizeof *r);
    r->recs = calloc(3, sizeof(bench_record));
    r->n = 3;
    bench_record *q = r->recs;
    q[0] = (bench_record){.index = 0,
                          .ready = 0,
                          .sent = 0,
                          .ttft = .1,
                          .e2e = .5,
                          .queue = -1,
                          .prefill = -1,
                          .decode = .4,
                          .prompt_tokens = 10,
                          .output_tokens = 5,
                          .usage_tokens = 5,
                          .ok = true};
    q[1] = (bench_record){.index = 1,
                          .ready = .2,
                          .sent = .25,
                          .ttft = .3,
                          .e2e = .9,
                          .queue = -1,
                          .prefill = -1,
                          .decode = .6,
                          .prompt_tokens = 20,
                          .output_tokens = 3,
                          .usage_tokens = 4,
                          .ok = true};
    q[2] = (bench_record){.index = 2,
                          .ready = .5,
                          .sent = .5,
                          .ttft = -1,
                          .e2e = .1,
                          .queue = -1,
                          .prefill = -1,
                          .decode = -1,
                          .usage_tokens = -1,
                          .ok = false};
    q[0].counted_tokens = q[1].counted_tokens = q[2].counted_tokens = -1; /* in-process style */
    q[0].token_times = t0;
    q[1].token_times = t1;
    r->duration = 1.1; /* r1 ends at .2 + .9 */
    r->preemptions = -1;
}

static void test_metrics_follow_vllm_definitions(void **st)
{
    (void)st;
    double t0[5] = {.1, .2, .3, .4, .5}, t1[3] = {.3, .5, .9};
    bench_run r;
    make_run(&r, t0, t1);
    bench_metrics m;
    bench_slo slo = {0};
    bench_metrics_compute(&r, &slo, &m);
    assert_int_equal(m.completed, 2);
    assert_int_equal(m.failed, 1);
    assert_int_equal(m.input_tokens, 30);
    assert_int_equal(m.output_tokens, 8);
    NEAR(m.req_per_s, 2 / 1.1, 1e-9);
    NEAR(m.output_tok_s, 8 / 1.1, 1e-9);
    NEAR(m.total_tok_s, 38 / 1.1, 1e-9);
    NEAR(m.ttft_ms.mean, 200, 1e-9);
    NEAR(m.ttft_ms.std, sqrt(2 * 100.0 * 100.0), 1e-9);
    NEAR(m.ttft_ms.p99, 100 + 0.99 * 200, 1e-9);
    NEAR(m.tpot_ms.mean, 200, 1e-9); /* (100 + 300) / 2 */
    NEAR(m.tpot_ms.p50, 200, 1e-9);
    /* ITL pooled: 100 100 100 100 | 200 400 */
    assert_int_equal(m.itl_ms.n, 6);
    NEAR(m.itl_ms.mean, 1000.0 / 6, 1e-9);
    NEAR(m.itl_ms.p50, 100, 1e-9); /* rank 2.5 between 100 and 100 */
    NEAR(m.itl_ms.p90, 300, 1e-9); /* rank 4.5: 200 + .5*200 */
    NEAR(m.e2e_ms.mean, 700, 1e-9);
    NEAR(m.lag_ms.max, 50, 1e-9);
    NEAR(m.goodput_req_s, 2 / 1.1, 1e-9); /* no SLO: every completed request counts */
    assert_int_equal(m.peak_concurrency, 2);
    assert_int_equal(m.usage_mismatch, 1); /* r1: 3 recorded, server said 4 */
    r.recs[0].counted_tokens = 7;          /* the tokenizer's count wins when there is one */
    bench_metrics_compute(&r, &slo, &m);
    assert_int_equal(m.usage_mismatch, 3); /* |5 - 7| + |4 - 3| */
    r.recs[0].counted_tokens = -1;
    bench_slo s1 = {.ttft_ms = 200};
    bench_metrics_compute(&r, &s1, &m);
    NEAR(m.goodput_req_s, 1 / 1.1, 1e-9);
    bench_slo s2 = {.tpot_ms = 150, .e2e_ms = 1000};
    bench_metrics_compute(&r, &s2, &m);
    NEAR(m.goodput_req_s, 1 / 1.1, 1e-9);
    bench_slo s3 = {.e2e_ms = 1000};
    bench_metrics_compute(&r, &s3, &m);
    NEAR(m.goodput_req_s, 2 / 1.1, 1e-9);
    r.recs[0].token_times = r.recs[1].token_times = NULL;
    bench_run_free(&r);
}

static void test_slo_parser_rejects_bad_specs(void **st)
{
    (void)st;
    bench_slo s;
    assert_int_equal(bench_slo_parse("ttft:200,tpot:50.5,e2e:3000", &s), 0);
    NEAR(s.ttft_ms, 200, 0);
    NEAR(s.tpot_ms, 50.5, 0);
    NEAR(s.e2e_ms, 3000, 0);
    assert_int_equal(bench_slo_parse("ttft:abc", &s), -1);
    assert_int_equal(bench_slo_parse("foo:1", &s), -1);
    assert_int_equal(bench_slo_parse("ttft:-3", &s), -1);
    assert_non_null(strstr(bench_errmsg(), "--slo"));
}

static void test_bootstrap_ci_matches_hand_enumeration(void **st)
{
    (void)st;
    /* {0, 10}: a resample's median is 0 (1/4), 5 (1/2) or 10 (1/4), so the 95% interval
     * spans [0, 10] */
    double x[2] = {0, 10}, lo, hi;
    bench_bootstrap_ci(x, 2, 50, 4000, 0.05, 1, &lo, &hi);
    NEAR(lo, 0, 0);
    NEAR(hi, 10, 0);
    /* with alpha 0.6 the interval is the central 40%: all medians there are 5 */
    bench_bootstrap_ci(x, 2, 50, 4000, 0.6, 1, &lo, &hi);
    NEAR(lo, 5, 0);
    NEAR(hi, 5, 0);
    double c[3] = {3, 3, 3};
    bench_bootstrap_ci(c, 3, 99, 100, 0.05, 2, &lo, &hi);
    NEAR(lo, 3, 0);
    NEAR(hi, 3, 0);
    /* deterministic in the seed */
    double y[50], l2, h2;
    for (int i = 0; i < 50; i++)
        y[i] = (i * 37) % 50;
    bench_bootstrap_ci(y, 50, 90, 500, 0.05, 9, &lo, &hi);
    bench_bootstrap_ci(y, 50, 90, 500, 0.05, 9, &l2, &h2);
    NEAR(lo, l2, 0);
    NEAR(hi, h2, 0);
    assert_true(lo <= 44.1 && hi >= 44.1); /* the sample's own p90 (rank 44.1) is inside */
}

/* Gaps of the schedule: Gamma(k, 1/(rate k)) has mean 1/rate, variance 1/(rate^2 k). */
static void check_gaps(double rate, double k, double var_tol)
{
    int n = 200000;
    double *o = malloc(sizeof(double) * (size_t)n), *g = malloc(sizeof(double) * (size_t)n);
    assert_int_equal(bench_schedule(rate, k, 123, n, o), 0);
    for (int i = 0; i < n; i++)
        g[i] = i ? o[i] - o[i - 1] : o[0];
    double mean = bench_mean(g, n), sd = bench_stddev(g, n);
    NEAR(mean, 1 / rate, 0.01 / rate); /* 1%: > 4 standard errors */
    NEAR(sd * sd, 1 / (rate * rate * k), var_tol / (rate * rate * k));
    free(o), free(g);
}

static void test_schedule_poisson_and_gamma_moments(void **st)
{
    (void)st;
    check_gaps(10, 1, 0.03);   /* Poisson: exponential gaps */
    check_gaps(10, 0.5, 0.05); /* bursty */
    check_gaps(4, 4, 0.03);    /* smoother than Poisson */
    double o[4];
    assert_int_equal(bench_schedule(INFINITY, 1, 0, 4, o), 0);
    NEAR(o[3], 0, 0);
    assert_int_equal(bench_schedule(5, 0, 0, 4, o), -1);
}

static void test_stream_tokens_spread_over_multi_token_chunks(void **st)
{
    (void)st;
    /* chunks "the" | " the the" | " the the" at t = 1, 2, 3 (byte ends 3, 11, 19) */
    const char *text = "the the the the the";
    double ct[3] = {1, 2, 3}, *t;
    size_t ce[3] = {3, 11, 19};
    /* no tokenizer, usage 5: tokens spread by bytes (1, 2, 2), times interpolated */
    int counted;
    int n = bench_stream_token_times(NULL, text, strlen(text), ct, ce, 3, 5, &t, &counted);
    assert_int_equal(counted, -1);
    assert_int_equal(n, 5);
    double want[5] = {1, 1.5, 2, 2.5, 3};
    for (int i = 0; i < 5; i++)
        NEAR(t[i], want[i], 1e-12);
    free(t);
    /* neither: one token per chunk */
    n = bench_stream_token_times(NULL, text, strlen(text), ct, ce, 3, -1, &t, NULL);
    assert_int_equal(n, 3);
    NEAR(t[2], 3, 0);
    free(t);
    TU_ASSET_OR_SKIP(dir, "tokenizers/llama2");
    ignis_tokenizer *tok;
    TU_CHECK(ignis_tokenizer_open(dir, &tok));
    n = bench_stream_token_times(tok, text, strlen(text), ct, ce, 3, -1, &t, &counted);
    assert_int_equal(n, 5);
    assert_int_equal(counted, 5);
    for (int i = 0; i < 5; i++)
        NEAR(t[i], want[i], 1e-12);
    free(t);
    /* the server says 10 tokens (our tokenizer sees 5): its count wins, the tokenizer's
     * split (1, 2, 2) scaled onto it (2, 4, 4) */
    n = bench_stream_token_times(tok, text, strlen(text), ct, ce, 3, 10, &t, &counted);
    assert_int_equal(n, 10);
    assert_int_equal(counted, 5);
    double want10[10] = {1, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75, 3};
    for (int i = 0; i < 10; i++)
        NEAR(t[i], want10[i], 1e-12);
    free(t);
    /* two tokens in the first chunk: both take its time (the TTFT) */
    double ct2[2] = {1, 2};
    size_t ce2[2] = {7, 11};
    n = bench_stream_token_times(tok, "the the the", 11, ct2, ce2, 2, -1, &t, NULL);
    assert_int_equal(n, 3);
    NEAR(t[0], 1, 0);
    NEAR(t[1], 1, 0);
    NEAR(t[2], 2, 0);
    free(t);
    ignis_tokenizer_free(tok);
}

/* A static batch's rates. Without overlap every token but the first of each request is a
 * decode token; with the prompts over several steps, the first request's tokens produced
 * while the second still prefilled belong to the prefill phase (the old formula,
 * b*(n-1) / (T2 - T1), would give 6 / 0.6 = 10 below). */
static void test_batch_rates_count_only_tokens_after_the_prefill(void **st)
{
    (void)st;
    double pf, dc;
    /* b 2, n 3, p 4: T1 = 1.5, T2 = 4; after T1: 2.0 3.0 | 2.5 4.0 -> 4 tokens / 2.5 s */
    const double plain[] = {1.0, 2.0, 3.0, 1.5, 2.5, 4.0};
    bench_batch_rates(plain, 2, 3, 4, &pf, &dc);
    NEAR(pf, 8 / 1.5, 1e-12);
    NEAR(dc, 4 / 2.5, 1e-12);
    /* b 2, n 4, p 10: request 0 decodes 0.7 and 0.9 while request 1 prefills until 1.0 */
    const double overlap[] = {0.5, 0.7, 0.9, 1.3, 1.0, 1.2, 1.4, 1.6};
    bench_batch_rates(overlap, 2, 4, 10, &pf, &dc);
    NEAR(pf, 20 / 1.0, 1e-12);
    NEAR(dc, 4 / 0.6, 1e-9); /* 1.3 | 1.2 1.4 1.6 */
    /* one token each: no decode phase */
    const double one[] = {0.2, 0.3};
    bench_batch_rates(one, 2, 1, 5, &pf, &dc);
    NEAR(pf, 10 / 0.3, 1e-12);
    assert_true(isnan(dc));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentiles_interpolate_between_closest_ranks),
        cmocka_unit_test(test_metrics_follow_vllm_definitions),
        cmocka_unit_test(test_slo_parser_rejects_bad_specs),
        cmocka_unit_test(test_bootstrap_ci_matches_hand_enumeration),
        cmocka_unit_test(test_schedule_poisson_and_gamma_moments),
        cmocka_unit_test(test_stream_tokens_spread_over_multi_token_chunks),
        cmocka_unit_test(test_batch_rates_count_only_tokens_after_the_prefill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
