/*
 * ignis_sample_logits against an independent reference written from Hugging Face's
 * definitions (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
 * TopKLogitsWarper, TopPLogitsWarper), in double precision:
 *
 *  - repetition penalty: each distinct id of the history once, positive logit / penalty,
 *    negative logit * penalty;
 *  - temperature: logits / T (T <= 0: greedy, lowest index on ties);
 *  - top-k: the k largest logits (ties at the k-th broken by the lower id, which is
 *    ignis' documented rule; HF leaves that order unspecified);
 *  - top-p: sorted by probability, a token is kept while the probability of the tokens
 *    before it is < top_p (HF removes those whose ascending cumulative is <= 1 - top_p);
 *    at least one token.
 *
 * Distributions are checked by drawing N samples (steps 0..N-1, fixed seed, so every run
 * is the same) and a chi-square goodness-of-fit test at p = 1e-6: a correct sampler
 * fails it with probability 1e-6, and a token drawn outside the kept set fails at once.
 * Exact cases (top-p boundaries, top-k 1, penalties, seeds, invalid values) need no
 * statistics. Both known mutations of the sampler (top-p keeping one token too few; the
 * temperature applied twice) fail several of these tests.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define MAXV 64
#define N_DRAWS 40000

/* chi-square quantiles at 1 - 1e-6 for 1..12 degrees of freedom */
static const double k_chi2_crit[13] = {0,     23.93, 27.63, 30.66, 33.38, 35.89, 38.26,
                                       40.52, 42.70, 44.81, 46.86, 48.87, 50.83};

/* ------------------------------------------------------------ the reference */

typedef struct ref_item {
    double v;
    int id;
} ref_item;

static int ref_desc(const void *a, const void *b)
{
    const ref_item *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->id - y->id;
}

/* p[vocab]: the probability of each id; returns the number of ids with p > 0. *margin
 * (may be NULL) receives the smallest distance between top_p and a cumulative sum, so a
 * test can refuse a case that float rounding could decide either way. */
static int ref_distribution(const float *logits, int vocab, const ignis_sampling *s, const int32_t *hist, int nh,
                            double *p, double *margin)
{
    double l[MAXV];
    bool seen[MAXV] = {false};
    for (int i = 0; i < vocab; i++)
        l[i] = logits[i];
    for (int i = 0; i < nh; i++) {
        int id = hist[i];
        if (id < 0 || id >= vocab || seen[id]) continue;
        seen[id] = true;
        l[id] = l[id] > 0 ? l[id] / s->repetition_penalty : l[id] * s->repetition_penalty;
    }
    for (int i = 0; i < vocab; i++)
        p[i] = 0;
    if (margin) *margin = INFINITY;
    if (s->temperature <= 0) {
        int best = 0;
        for (int i = 1; i < vocab; i++)
            if (l[i] > l[best]) best = i;
        p[best] = 1;
        return 1;
    }
    ref_item it[MAXV] = {{0, 0}};
    for (int i = 0; i < vocab; i++)
        it[i] = (ref_item){l[i] / s->temperature, i};
    qsort(it, (size_t)vocab, sizeof it[0], ref_desc);
    int n = s->top_k > 0 && s->top_k < vocab ? s->top_k : vocab;
    double z = 0;
    for (int i = 0; i < n; i++)
        z += exp(it[i].v - it[0].v);
    double q[MAXV];
    for (int i = 0; i < n; i++)
        q[i] = exp(it[i].v - it[0].v) / z;
    if (s->top_p < 1) {
        double before = 0;
        int keep = 0;
        for (int i = 0; i < n; i++) {
            if (margin && fabs(before - s->top_p) < *margin && i > 0) *margin = fabs(before - s->top_p);
            if (i > 0 && before >= s->top_p) break;
            before += q[i];
            keep = i + 1;
        }
        n = keep;
        z = 0;
        for (int i = 0; i < n; i++)
            z += q[i];
        for (int i = 0; i < n; i++)
            q[i] /= z;
    }
    for (int i = 0; i < n; i++)
        p[it[i].id] = q[i];
    return n;
}

/* ------------------------------------------------------------ helpers */

static ignis_sampling sampling(float t, int k, float top_p, float pen, uint64_t seed)
{
    ignis_sampling s;
    ignis_sampling_init(&s);
    s.temperature = t;
    s.top_k = k;
    s.top_p = top_p;
    s.repetition_penalty = pen;
    s.seed = seed;
    return s;
}

static void draw_counts(const float *logits, int vocab, const ignis_sampling *s, const int32_t *hist, int nh,
                        int n_draws, long *counts)
{
    for (int i = 0; i < vocab; i++)
        counts[i] = 0;
    for (int d = 0; d < n_draws; d++) {
        int32_t id = ignis_sample_logits(logits, vocab, s, hist, nh, (uint64_t)d);
        if (id < 0 || id >= vocab) fail_msg("draw %d: id %d outside [0, %d): %s", d, id, vocab, ignis_last_error());
        counts[id]++;
    }
}

/* Draws N_DRAWS samples and checks them against the reference: no id outside the kept
 * set, and chi-square over the kept ids below the 1e-6 quantile. */
static void check_distribution(const char *name, const float *logits, int vocab, const ignis_sampling *s,
                               const int32_t *hist, int nh)
{
    double p[MAXV], margin;
    int kept = ref_distribution(logits, vocab, s, hist, nh, p, &margin);
    if (margin < 1e-3)
        fail_msg("%s: top_p %g is within %g of a cumulative sum; pick another case", name, (double)s->top_p, margin);
    long c[MAXV];
    draw_counts(logits, vocab, s, hist, nh, N_DRAWS, c);
    double chi2 = 0;
    for (int i = 0; i < vocab; i++) {
        double e = p[i] * N_DRAWS;
        if (p[i] == 0) {
            if (c[i] != 0)
                fail_msg("%s: id %d was drawn %ld times but the reference filters it out (kept %d ids)", name, i, c[i],
                         kept);
            continue;
        }
        if (e < 5) fail_msg("%s: expected count %.1f of id %d is too small for chi-square", name, e, i);
        chi2 += (c[i] - e) * (c[i] - e) / e;
    }
    if (kept == 1) {
        print_message("%s: one kept id, every draw on it\n", name);
        return;
    }
    double crit = k_chi2_crit[kept - 1 < 12 ? kept - 1 : 12];
    if (!(chi2 < crit)) {
        for (int i = 0; i < vocab; i++)
            print_message("  id %d: expected %.1f, drawn %ld\n", i, p[i] * N_DRAWS, c[i]);
        fail_msg("%s: chi-square %.1f with %d dof exceeds %.2f (p = 1e-6)", name, chi2, kept - 1, crit);
    }
}

/* A vocabulary of 8 with well separated logits (no ties), some negative. */
static const float k_logits8[8] = {2.0f, 1.3f, 0.9f, 0.4f, 0.1f, -0.3f, -0.8f, -1.5f};

/* ------------------------------------------------------------ distributions */

static void test_plain_softmax_matches_reference(void **st)
{
    (void)st;
    ignis_sampling s = sampling(1.0f, 0, 1.0f, 1.0f, 11);
    check_distribution("T=1", k_logits8, 8, &s, NULL, 0);
}

static void test_temperature_below_one_matches_reference(void **st)
{
    (void)st;
    ignis_sampling s = sampling(0.6f, 0, 1.0f, 1.0f, 12);
    /* at T=0.6 the tail has too few draws for chi-square: a flatter row */
    static const float l[6] = {1.0f, 0.8f, 0.5f, 0.3f, 0.1f, -0.2f};
    check_distribution("T=0.6", l, 6, &s, NULL, 0);
}

static void test_temperature_above_one_matches_reference(void **st)
{
    (void)st;
    ignis_sampling s = sampling(2.5f, 0, 1.0f, 1.0f, 13);
    check_distribution("T=2.5", k_logits8, 8, &s, NULL, 0);
}

static void test_top_k_matches_reference(void **st)
{
    (void)st;
    ignis_sampling s = sampling(0.8f, 3, 1.0f, 1.0f, 14);
    check_distribution("T=0.8 top_k=3", k_logits8, 8, &s, NULL, 0);
    s = sampling(1.0f, 5, 1.0f, 1.0f, 15);
    check_distribution("T=1 top_k=5", k_logits8, 8, &s, NULL, 0);
}

static void test_top_p_matches_reference(void **st)
{
    (void)st;
    /* T=1: cumulative sums 0.387 0.579 0.708 0.796 0.852 ...; 0.75 keeps four ids */
    ignis_sampling s = sampling(1.0f, 0, 0.75f, 1.0f, 16);
    check_distribution("T=1 top_p=0.75", k_logits8, 8, &s, NULL, 0);
    s = sampling(1.7f, 0, 0.9f, 1.0f, 17);
    check_distribution("T=1.7 top_p=0.9", k_logits8, 8, &s, NULL, 0);
}

static void test_all_filters_with_penalty_match_reference(void **st)
{
    (void)st;
    const int32_t hist[] = {0, 0, 5, 2, 99, -1}; /* repeats and out-of-range ids on purpose */
    ignis_sampling s = sampling(1.4f, 6, 0.85f, 1.6f, 18);
    check_distribution("T=1.4 top_k=6 top_p=0.85 penalty=1.6", k_logits8, 8, &s, hist, 6);
}

/* ------------------------------------------------------------ exact cases */

/* The ids drawn over 4,000 steps, as a bit set. */
static unsigned drawn_set(const float *logits, int vocab, const ignis_sampling *s)
{
    unsigned set = 0;
    for (uint64_t d = 0; d < 4000; d++) {
        int32_t id = ignis_sample_logits(logits, vocab, s, NULL, 0, d);
        assert_true(id >= 0 && id < vocab);
        set |= 1u << id;
    }
    return set;
}

static void test_top_p_keeps_the_shortest_prefix_reaching_p_exactly(void **st)
{
    (void)st;
    /* Four equal logits: every probability is exactly 1/4 in binary floating point, so
     * top_p at a cumulative sum is an exact boundary: 0.5 keeps ids {0, 1} (the lower ids
     * win ties), not {0} and not {0, 1, 2}. */
    const float tie[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    ignis_sampling s = sampling(1.0f, 0, 0.25f, 1.0f, 21);
    assert_int_equal(drawn_set(tie, 4, &s), 0x1);
    s.top_p = 0.5f;
    assert_int_equal(drawn_set(tie, 4, &s), 0x3);
    s.top_p = 0.75f;
    assert_int_equal(drawn_set(tie, 4, &s), 0x7);
    s.top_p = 0.7f;
    assert_int_equal(drawn_set(tie, 4, &s), 0x7);
    s.top_p = 0.76f;
    assert_int_equal(drawn_set(tie, 4, &s), 0xf);
    /* A tiny top_p keeps the most likely id only (at least one id is always kept). */
    s.top_p = 1e-6f;
    assert_int_equal(drawn_set(k_logits8, 8, &s), 0x1);
    /* Unequal probabilities 0.4, 0.3, 0.2, 0.1: just below and just above 0.7. */
    const float l[4] = {logf(0.4f), logf(0.3f), logf(0.2f), logf(0.1f)};
    s.top_p = 0.69f;
    assert_int_equal(drawn_set(l, 4, &s), 0x3);
    s.top_p = 0.71f;
    assert_int_equal(drawn_set(l, 4, &s), 0x7);
    s.top_p = 0.41f;
    assert_int_equal(drawn_set(l, 4, &s), 0x3);
    s.top_p = 0.39f;
    assert_int_equal(drawn_set(l, 4, &s), 0x1);
}

static void test_top_k_keeps_lowest_ids_on_ties(void **st)
{
    (void)st;
    const float l[6] = {0.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.5f};
    ignis_sampling s = sampling(1.0f, 2, 1.0f, 1.0f, 22);
    assert_int_equal(drawn_set(l, 6, &s), 0x6);
    s.top_k = 5;
    assert_int_equal(drawn_set(l, 6, &s), 0x3e);
}

static void test_top_k_one_is_argmax(void **st)
{
    (void)st;
    uint64_t r = 7;
    float l[50];
    for (int trial = 0; trial < 50; trial++) {
        for (int i = 0; i < 50; i++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            l[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 8.0 - 4.0);
        }
        if (trial % 5 == 0) l[31] = l[7] = 5.0f; /* a tie at the top: the lower id wins */
        int best = 0;
        for (int i = 1; i < 50; i++)
            if (l[i] > l[best]) best = i;
        const float temps[] = {0.3f, 1.0f, 4.0f};
        for (int t = 0; t < 3; t++) {
            ignis_sampling s = sampling(temps[t], 1, 1.0f, 1.0f, (uint64_t)trial);
            for (uint64_t d = 0; d < 20; d++)
                assert_int_equal(ignis_sample_logits(l, 50, &s, NULL, 0, d), best);
        }
        ignis_sampling g = sampling(0.0f, 0, 1.0f, 1.0f, (uint64_t)trial);
        assert_int_equal(ignis_sample_logits(l, 50, &g, NULL, 0, 3), best);
    }
}

/* Two ids with logits 1 and 0: the odds are e^(1/T). With N draws the log of the drawn
 * ratio has a standard error sqrt(1/n0 + 1/n1); we allow 5 of them. */
static void test_temperature_scales_log_odds(void **st)
{
    (void)st;
    const float l[2] = {1.0f, 0.0f};
    const float temps[] = {0.25f, 0.5f, 2.0f, 3.0f};
    for (int t = 0; t < 4; t++) {
        ignis_sampling s = sampling(temps[t], 0, 1.0f, 1.0f, 30 + (uint64_t)t);
        long c[2];
        draw_counts(l, 2, &s, NULL, 0, N_DRAWS, c);
        assert_true(c[0] > 0 && c[1] > 0);
        double got = log((double)c[0] / (double)c[1]), want = 1.0 / temps[t];
        double se = sqrt(1.0 / (double)c[0] + 1.0 / (double)c[1]);
        if (fabs(got - want) > 5 * se)
            fail_msg("T=%g: log odds %.4f, expected %.4f (5 standard errors: %.4f)", (double)temps[t], got, want,
                     5 * se);
    }
}

static void test_repetition_penalty_divides_positive_and_multiplies_negative(void **st)
{
    (void)st;
    ignis_sampling g = sampling(0.0f, 0, 1.0f, 2.0f, 0);
    const int32_t h0[] = {0};
    /* positive: 2.0 / 2 = 1.0 < 1.5 */
    const float pos[2] = {2.0f, 1.5f};
    assert_int_equal(ignis_sample_logits(pos, 2, &g, NULL, 0, 0), 0);
    assert_int_equal(ignis_sample_logits(pos, 2, &g, h0, 1, 0), 1);
    /* negative: -1.0 * 2 = -2.0 < -1.5 (dividing would give -0.5 and keep id 0) */
    const float neg[2] = {-1.0f, -1.5f};
    assert_int_equal(ignis_sample_logits(neg, 2, &g, NULL, 0, 0), 0);
    assert_int_equal(ignis_sample_logits(neg, 2, &g, h0, 1, 0), 1);
    /* a repeated id is penalised once: 2.0 / 2 = 1.0 > 0.9 (twice would give 0.5) */
    const float once[2] = {2.0f, 0.9f};
    const int32_t h000[] = {0, 0, 0};
    assert_int_equal(ignis_sample_logits(once, 2, &g, h000, 3, 0), 0);
    /* ids outside the vocabulary in the history are ignored */
    const int32_t hbad[] = {-3, 2, 1000};
    assert_int_equal(ignis_sample_logits(pos, 2, &g, hbad, 3, 0), 0);
    /* penalty 1 is off */
    g.repetition_penalty = 1.0f;
    assert_int_equal(ignis_sample_logits(pos, 2, &g, h0, 1, 0), 0);
}

static void test_same_seed_and_step_give_same_token(void **st)
{
    (void)st;
    ignis_sampling a = sampling(1.0f, 0, 1.0f, 1.0f, 1234), b = a;
    b.seed = 1235;
    int differ_seed = 0, differ_step = 0;
    for (uint64_t d = 0; d < 200; d++) {
        int32_t x = ignis_sample_logits(k_logits8, 8, &a, NULL, 0, d);
        assert_int_equal(ignis_sample_logits(k_logits8, 8, &a, NULL, 0, d), x);
        differ_seed += ignis_sample_logits(k_logits8, 8, &b, NULL, 0, d) != x;
        differ_step += ignis_sample_logits(k_logits8, 8, &a, NULL, 0, d + 1) != x;
    }
    /* with the most likely id at p = 0.39, two independent draws agree ~25% of the time */
    assert_true(differ_seed > 100);
    assert_true(differ_step > 100);
}

/* ------------------------------------------------------------ invalid values */

static void test_nan_and_infinite_values_are_rejected(void **st)
{
    (void)st;
    const float nan = NAN, inf = INFINITY;
    const struct {
        ignis_sampling s;
        const char *field;
    } bad[] = {
        {sampling(nan, 0, 1.0f, 1.0f, 0), "temperature"},
        {sampling(inf, 0, 1.0f, 1.0f, 0), "temperature"},
        {sampling(-inf, 0, 1.0f, 1.0f, 0), "temperature"},
        {sampling(1.0f, 0, nan, 1.0f, 0), "top_p"},
        {sampling(1.0f, 0, inf, 1.0f, 0), "top_p"},
        {sampling(1.0f, 0, 0.0f, 1.0f, 0), "top_p"},
        {sampling(1.0f, 0, -0.5f, 1.0f, 0), "top_p"},
        {sampling(1.0f, 0, 1.0f, nan, 0), "repetition_penalty"},
        {sampling(1.0f, 0, 1.0f, inf, 0), "repetition_penalty"},
        {sampling(1.0f, 0, 1.0f, 0.0f, 0), "repetition_penalty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ignis_sampling_validate(&bad[i].s), IGNIS_E_ARG);
        if (!strstr(ignis_last_error(), bad[i].field))
            fail_msg("case %zu: message '%s' does not name %s", i, ignis_last_error(), bad[i].field);
        assert_int_equal(ignis_sample_logits(k_logits8, 8, &bad[i].s, NULL, 0, 0), -1);
    }
    ignis_sampling ok;
    ignis_sampling_init(&ok);
    assert_int_equal(ignis_sampling_validate(&ok), IGNIS_OK);
    ok = sampling(-1.0f, 0, 5.0f, 1.0f, 0); /* documented: <= 0 greedy, >= 1 off */
    assert_int_equal(ignis_sampling_validate(&ok), IGNIS_OK);
}

/* The API entry points refuse NaN before any work is queued. */
static void test_api_entry_points_reject_nan_sampling(void **st)
{
    (void)st;
    ignis_engine_opts o;
    ignis_engine_opts_init(&o);
    o.backend = IGNIS_BACKEND_CPU;
    o.threads = 1;
    ignis_model *m;
    TU_CHECK(ignis_model_open("synthetic:tiny", &o, &m));
    const int32_t prompt[] = {1, 2, 3};

    ignis_seq *seq;
    TU_CHECK(ignis_seq_create(m, 0, &seq));
    ignis_gen_opts go;
    ignis_gen_opts_init(&go);
    go.max_new_tokens = 2;
    go.sampling.temperature = NAN;
    assert_int_equal(ignis_seq_generate(seq, prompt, 3, &go, NULL), IGNIS_E_ARG);
    assert_non_null(strstr(ignis_last_error(), "temperature"));
    go.sampling.temperature = 0.7f;
    go.sampling.top_p = NAN;
    assert_int_equal(ignis_seq_generate(seq, prompt, 3, &go, NULL), IGNIS_E_ARG);
    assert_non_null(strstr(ignis_last_error(), "top_p"));
    go.sampling.top_p = 0.9f;
    TU_CHECK(ignis_seq_generate(seq, prompt, 3, &go, NULL));
    ignis_seq_destroy(seq);

    ignis_engine *e;
    TU_CHECK(ignis_engine_create(m, NULL, &e));
    ignis_request_params p;
    ignis_request_params_init(&p);
    p.prompt_ids = prompt;
    p.n_prompt_ids = 3;
    p.max_new_tokens = 2;
    p.sampling.repetition_penalty = INFINITY;
    ignis_request *r = NULL;
    assert_int_equal(ignis_engine_submit(e, &p, &r), IGNIS_E_ARG);
    assert_null(r);
    assert_non_null(strstr(ignis_last_error(), "repetition_penalty"));
    p.sampling.repetition_penalty = 1.0f;
    p.sampling.temperature = INFINITY;
    assert_int_equal(ignis_engine_submit(e, &p, &r), IGNIS_E_ARG);
    assert_non_null(strstr(ignis_last_error(), "temperature"));
    ignis_engine_destroy(e);
    ignis_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_softmax_matches_reference),
        cmocka_unit_test(test_temperature_below_one_matches_reference),
        cmocka_unit_test(test_temperature_above_one_matches_reference),
        cmocka_unit_test(test_top_k_matches_reference),
        cmocka_unit_test(test_top_p_matches_reference),
        cmocka_unit_test(test_all_filters_with_penalty_match_reference),
        cmocka_unit_test(test_top_p_keeps_the_shortest_prefix_reaching_p_exactly),
        cmocka_unit_test(test_top_k_keeps_lowest_ids_on_ties),
        cmocka_unit_test(test_top_k_one_is_argmax),
        cmocka_unit_test(test_temperature_scales_log_odds),
        cmocka_unit_test(test_repetition_penalty_divides_positive_and_multiplies_negative),
        cmocka_unit_test(test_same_seed_and_step_give_same_token),
        cmocka_unit_test(test_nan_and_infinite_values_are_rejected),
        cmocka_unit_test(test_api_entry_points_reject_nan_sampling),
    };
    return cmocka_run_group_tests_name("sampler", tests, NULL, NULL);
}
