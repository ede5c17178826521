/*
 * Scheduler tests on a fake backend (fake_backend.h): its logits depend on every token of
 * the context as read back through the block table, so these pin the scheduler's
 * bookkeeping — batching, chunked prefill, preemption, prefix sharing, sessions,
 * cancellation — without a model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_backend.h"
#include "rt_util.h"
#include "runtime/engine_internal.h"
#include "test_util.h"

#define VOCAB 256
#define EOS 2

typedef struct env {
    fake_model fm;
    ignis_engine *e;
} env;

static void env_open(env *v, int n_blocks, int block_len, int max_batch, int max_prefill, int caching)
{
    if (fake_model_init(&v->fm, VOCAB, EOS, n_blocks, block_len) != 0) fail_msg("fake model");
    ignis_engine_opts o;
    ignis_engine_opts_init(&o);
    o.max_batch_size = max_batch;
    o.max_prefill_token_num = max_prefill;
    o.enable_prefix_caching = caching;
    ig_engine_deps d = {v->fm.backend, &v->fm.desc, NULL, &v->fm.pool};
    TU_CHECK(ig_engine_create_deps(&d, &v->fm.desc.engine, &o, &v->e));
}

/* Destroys the engine and checks every block went back to the pool. */
static void env_close(env *v)
{
    ignis_engine_destroy(v->e);
    int nf = ig_kv_pool_free_count(&v->fm.pool);
    if (nf != v->fm.pool.n_blocks)
        fail_msg("pool after destroy: expected %d free blocks, got %d", v->fm.pool.n_blocks, nf);
    fake_model_free(&v->fm);
}

static void make_prompt(int32_t *p, int n, unsigned seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = 3 + (int32_t)((seed >> 16) % (VOCAB - 3)); /* never EOS */
    }
}

/* The request most tests submit: prompt ids, max_new tokens past any EOS, in session
 * `session` (0: none). */
static ignis_request_params prompt_params(const int32_t *ids, int n, int max_new, uint64_t session)
{
    ignis_request_params p = rt_params(ids, n, max_new, true);
    p.session_id = session;
    return p;
}

/* The reference continuation: greedy, stopping after EOS unless ignore_eos. */
static int reference(const env *v, const int32_t *prompt, int n, int max_new, bool ignore_eos, int32_t *out)
{
    fake_reference(v->fm.backend, prompt, n, max_new, out);
    if (ignore_eos) return max_new;
    for (int i = 0; i < max_new; i++)
        if (out[i] == EOS) return i + 1;
    return max_new;
}

/* Ends a session and waits (up to a second) until the engine holds no session. */
static void end_session_and_wait(env *v, uint64_t session)
{
    TU_CHECK(ignis_engine_end_session(v->e, session));
    for (int i = 0; i < 1000; i++) {
        ignis_engine_stats se;
        TU_CHECK(ignis_engine_get_stats(v->e, &se));
        if (se.sessions == 0) break;
        usleep(1000);
    }
}

static void expect_pool_full(env *v, const char *when)
{
    rt_wait_idle(v->e);
    ignis_engine_stats st;
    TU_CHECK(ignis_engine_get_stats(v->e, &st));
    if (st.kv_blocks_used != 0 || st.kv_blocks_free + st.kv_blocks_cached != st.kv_blocks_total)
        fail_msg("%s: expected every block back (used 0, free+cached %d), got used %d free %d cached %d", when,
                 st.kv_blocks_total, st.kv_blocks_used, st.kv_blocks_free, st.kv_blocks_cached);
}

/* Submits n requests at once, collects them all, compares with the reference. */
static void run_batch_and_check(env *v, int n, const int *lens, int max_new, bool ignore_eos, const char *what)
{
    int32_t *prompts = malloc(sizeof(int32_t) * 4096 * (size_t)n);
    ignis_request **rs = calloc((size_t)n, sizeof *rs);
    for (int i = 0; i < n; i++) {
        make_prompt(prompts + 4096 * i, lens[i], 100u + (unsigned)i);
        ignis_request_params p = rt_params(prompts + 4096 * i, lens[i], max_new, ignore_eos);
        TU_CHECK(ignis_engine_submit(v->e, &p, &rs[i]));
    }
    for (int i = 0; i < n; i++) {
        rt_out o;
        rt_collect(rs[i], &o);
        if (o.finish_reason == IGNIS_FINISH_ERROR) fail_msg("%s: request %d failed: %s", what, i, o.error);
        int32_t want[4096];
        int nw = reference(v, prompts + 4096 * i, lens[i], max_new, ignore_eos, want);
        char tag[128];
        snprintf(tag, sizeof tag, "%s: request %d (prompt %d)", what, i, lens[i]);
        rt_expect_ids(tag, want, nw, o.ids, o.n);
        int want_reason =
            nw < max_new || (!ignore_eos && want[nw - 1] == EOS) ? IGNIS_FINISH_STOP : IGNIS_FINISH_LENGTH;
        if (o.finish_reason != want_reason)
            fail_msg("%s: finish reason: expected %s, got %s", tag, ignis_finish_reason_name(want_reason),
                     ignis_finish_reason_name(o.finish_reason));
        rt_out_free(&o);
        ignis_request_release(rs[i]);
    }
    free(prompts);
    free(rs);
}

static void test_sched_single_request_matches_reference(void **st)
{
    (void)st;
    env v;
    env_open(&v, 64, 16, 8, 512, 0);
    int lens[1] = {37};
    run_batch_and_check(&v, 1, lens, 20, true, "single");
    expect_pool_full(&v, "after a single request");
    env_close(&v);
}

static void test_sched_batch_of_16_matches_alone_with_chunked_prefill(void **st)
{
    (void)st;
    env v;
    /* prefill chunks of 13 tokens force long prompts through several steps mixed with decodes */
    env_open(&v, 256, 16, 16, 13, 0);
    int lens[16];
    for (int i = 0; i < 16; i++)
        lens[i] = 1 + (i * 37) % 90;
    run_batch_and_check(&v, 16, lens, 24, false, "batch of 16");
    fake_stats fs = fake_backend_stats(v.fm.backend);
    if (fs.max_batch_seqs < 8) fail_msg("expected batches of >= 8 sequences, got at most %d", fs.max_batch_seqs);
    ignis_engine_stats es;
    TU_CHECK(ignis_engine_get_stats(v.e, &es));
    if (es.preemptions != 0)
        fail_msg("expected no preemption with a large pool, got %llu", (unsigned long long)es.preemptions);
    expect_pool_full(&v, "after the batch");
    env_close(&v);
}

static void test_sched_max_batch_size_bounds_every_step(void **st)
{
    (void)st;
    env v;
    env_open(&v, 256, 8, 3, 512, 0);
    int lens[10];
    for (int i = 0; i < 10; i++)
        lens[i] = 5 + i;
    run_batch_and_check(&v, 10, lens, 12, true, "max batch 3");
    fake_stats fs = fake_backend_stats(v.fm.backend);
    if (fs.max_batch_seqs > 3) fail_msg("max_batch_size 3: a step ran %d sequences", fs.max_batch_seqs);
    env_close(&v);
}

static void test_sched_small_pool_preempts_and_outputs_are_unchanged(void **st)
{
    (void)st;
    env v;
    /* 12 blocks of 4 = 48 tokens; 16 requests of up to 40 tokens each */
    env_open(&v, 12, 4, 16, 64, 0);
    int lens[16];
    for (int i = 0; i < 16; i++)
        lens[i] = 3 + (i * 7) % 18;
    run_batch_and_check(&v, 16, lens, 20, true, "small pool");
    ignis_engine_stats es;
    TU_CHECK(ignis_engine_get_stats(v.e, &es));
    if (es.preemptions == 0) fail_msg("expected preemptions with 12 blocks for 16 requests, got 0");
    if (es.kv_blocks_peak_used > 12) fail_msg("peak used %d blocks of 12", es.kv_blocks_peak_used);
    print_message("small pool: %llu preemptions, peak %d blocks\n", (unsigned long long)es.preemptions,
                  es.kv_blocks_peak_used);
    expect_pool_full(&v, "after preemptions");
    env_close(&v);
}

static void test_sched_small_pool_with_prefix_cache_preempts_correctly(void **st)
{
    (void)st;
    env v;
    env_open(&v, 12, 4, 16, 64, 1);
    int lens[16];
    for (int i = 0; i < 16; i++)
        lens[i] = 3 + (i * 7) % 18;
    run_batch_and_check(&v, 16, lens, 20, true, "small pool + prefix cache");
    ignis_engine_stats es;
    TU_CHECK(ignis_engine_get_stats(v.e, &es));
    if (es.preemptions == 0) fail_msg("expected preemptions, got 0");
    expect_pool_full(&v, "after preemptions with caching");
    env_close(&v);
}

static void test_sched_request_that_can_never_fit_gets_capacity_error(void **st)
{
    (void)st;
    env v;
    env_open(&v, 4, 4, 4, 64, 0); /* 16 tokens in all */
    int32_t prompt[32];
    make_prompt(prompt, 32, 1);
    ignis_request_params p;
    ignis_request_params_init(&p);
    p.prompt_ids = prompt;
    p.n_prompt_ids = 10;
    p.max_new_tokens = 7;
    ignis_request *r = NULL;
    ignis_status s = ignis_engine_submit(v.e, &p, &r);
    if (s != IGNIS_E_CAPACITY)
        fail_msg("prompt 10 + 7 new in 16 tokens: expected capacity error, got %s", ignis_status_name(s));
    if (!strstr(ignis_last_error(), "KV cache")) fail_msg("message should name the KV cache: %s", ignis_last_error());
    assert_null(r);
    p.n_prompt_ids = 16;
    p.max_new_tokens = 0;
    s = ignis_engine_submit(v.e, &p, &r);
    if (s != IGNIS_E_CAPACITY)
        fail_msg("prompt of 16 in 16 tokens: expected capacity error, got %s", ignis_status_name(s));
    /* what fits still runs, up to the cache: without max_new_tokens it ends at capacity */
    p.n_prompt_ids = 10;
    TU_CHECK(ignis_engine_submit(v.e, &p, &r));
    rt_out o;
    rt_collect(r, &o);
    if (o.finish_reason != IGNIS_FINISH_CAPACITY && o.finish_reason != IGNIS_FINISH_STOP)
        fail_msg("unbounded request in a 16-token cache: expected capacity (or EOS), got %s",
                 ignis_finish_reason_name(o.finish_reason));
    if (o.finish_reason == IGNIS_FINISH_CAPACITY && o.n != 6) fail_msg("expected 6 tokens to fill 16, got %d", o.n);
    rt_out_free(&o);
    ignis_request_release(r);
    expect_pool_full(&v, "after capacity");
    env_close(&v);
}

static void test_sched_prefix_cache_hits_and_outputs_identical_on_and_off(void **st)
{
    (void)st;
    int32_t got[2][8][64];
    int n_got[2][8];
    for (int caching = 0; caching < 2; caching++) {
        env v;
        env_open(&v, 128, 8, 8, 512, caching);
        int32_t prompts[8][64];
        int lens[8];
        for (int i = 0; i < 8; i++) {
            make_prompt(prompts[i], 40, 77); /* shared 40-token prefix (5 blocks) */
            lens[i] = 40 + (i % 4) * 5;      /* i%4 == 0: the whole prompt is cached: copy-on-write */
            make_prompt(prompts[i] + 40, lens[i] - 40, 1000u + (unsigned)(i % 4));
        }
        for (int i = 0; i < 8; i++) { /* one after another, so later ones find earlier blocks */
            rt_out o;
            rt_run_one(v.e, prompts[i], lens[i], 16, true, &o);
            if (o.finish_reason == IGNIS_FINISH_ERROR) fail_msg("request %d failed: %s", i, o.error);
            memcpy(got[caching][i], o.ids, sizeof(int32_t) * (size_t)o.n);
            n_got[caching][i] = o.n;
            int32_t want[64];
            reference(&v, prompts[i], lens[i], 16, true, want);
            rt_expect_ids(caching ? "prefix cache on" : "prefix cache off", want, 16, o.ids, o.n);
            rt_out_free(&o);
        }
        ignis_engine_stats es;
        TU_CHECK(ignis_engine_get_stats(v.e, &es));
        fake_stats fs = fake_backend_stats(v.fm.backend);
        if (caching) {
            /* requests 1..7 each hit at least the 5 shared blocks; 4..7 repeat 0..3 entirely */
            if (es.prefix_cache_hits < 35)
                fail_msg("expected >= 35 prefix-cache block hits, got %llu", (unsigned long long)es.prefix_cache_hits);
            if (fs.copies < 1) fail_msg("a fully cached prompt should copy its last block, got %d copies", fs.copies);
            if (es.kv_blocks_cached == 0) fail_msg("expected cached blocks after the requests finished");
        } else if (es.prefix_cache_hits != 0) {
            fail_msg("caching off: expected 0 hits, got %llu", (unsigned long long)es.prefix_cache_hits);
        }
        expect_pool_full(&v, "after prefix-cache runs");
        env_close(&v);
    }
    for (int i = 0; i < 8; i++)
        rt_expect_ids("cache on vs off", got[0][i], n_got[0][i], got[1][i], n_got[1][i]);
}

static void test_sched_prefix_cache_shared_blocks_concurrently(void **st)
{
    (void)st;
    env v;
    env_open(&v, 64, 4, 16, 512, 1);
    int32_t base[24];
    make_prompt(base, 24, 5);
    /* warm the cache, then 12 concurrent requests sharing the prefix */
    rt_out o;
    rt_run_one(v.e, base, 24, 4, true, &o);
    rt_out_free(&o);
    int lens[12];
    ignis_request *rs[12];
    int32_t prompts[12][40];
    for (int i = 0; i < 12; i++) {
        lens[i] = 24 + i;
        memcpy(prompts[i], base, sizeof base);
        make_prompt(prompts[i] + 24, i, 300u + (unsigned)i);
        ignis_request_params p = prompt_params(prompts[i], lens[i], 10, 0);
        TU_CHECK(ignis_engine_submit(v.e, &p, &rs[i]));
    }
    for (int i = 0; i < 12; i++) {
        rt_collect(rs[i], &o);
        int32_t want[16];
        reference(&v, prompts[i], lens[i], 10, true, want);
        rt_expect_ids("shared prefix", want, 10, o.ids, o.n);
        ignis_request_result res;
        ignis_request_get_result(rs[i], &res);
        if (res.cached_tokens < 20) fail_msg("request %d: expected >= 20 cached tokens, got %d", i, res.cached_tokens);
        rt_out_free(&o);
        ignis_request_release(rs[i]);
    }
    expect_pool_full(&v, "after shared prefixes");
    env_close(&v);
}

static void test_sched_cancel_returns_every_block(void **st)
{
    (void)st;
    env v;
    env_open(&v, 64, 8, 8, 32, 0);
    fake_backend_delay(v.fm.backend, 200);
    ignis_request *rs[12];
    int32_t prompt[50];
    for (int i = 0; i < 12; i++) {
        make_prompt(prompt, 50, (unsigned)i);
        ignis_request_params p = prompt_params(prompt, 10 + i * 3, 200, 0);
        TU_CHECK(ignis_engine_submit(v.e, &p, &rs[i]));
    }
    usleep(5000);
    for (int i = 0; i < 12; i++)
        ignis_request_cancel(rs[i]);
    for (int i = 0; i < 12; i++) {
        rt_out o;
        rt_collect(rs[i], &o);
        if (o.finish_reason != IGNIS_FINISH_CANCELLED && o.finish_reason != IGNIS_FINISH_LENGTH)
            fail_msg("request %d: expected cancelled, got %s", i, ignis_finish_reason_name(o.finish_reason));
        ignis_request_cancel(rs[i]); /* no-op once finished */
        rt_out_free(&o);
        ignis_request_release(rs[i]);
    }
    expect_pool_full(&v, "after cancelling everything");
    /* releasing without collecting cancels too */
    ignis_request *r;
    ignis_request_params p = prompt_params(prompt, 20, 400, 0);
    TU_CHECK(ignis_engine_submit(v.e, &p, &r));
    usleep(2000);
    ignis_request_release(r);
    expect_pool_full(&v, "after releasing a running request");
    env_close(&v);
}

static void test_sched_session_prefills_only_new_tokens_and_end_frees(void **st)
{
    (void)st;
    env v;
    env_open(&v, 64, 8, 8, 512, 0);
    fake_backend_delay(v.fm.backend, 20000); /* turn 1 must still be running at the second submit */
    int32_t a[30], b[12], ctx[128];
    make_prompt(a, 30, 11);
    make_prompt(b, 12, 12);
    ignis_request_params p = prompt_params(a, 30, 9, 42);
    ignis_request *r;
    TU_CHECK(ignis_engine_submit(v.e, &p, &r));
    /* a session runs one request at a time */
    ignis_request *r2 = NULL;
    ignis_status s = ignis_engine_submit(v.e, &p, &r2);
    if (s != IGNIS_E_STATE)
        fail_msg("second request on a busy session: expected invalid state, got %s", ignis_status_name(s));
    rt_out o1;
    rt_collect(r, &o1);
    fake_backend_delay(v.fm.backend, 0);
    ignis_request_release(r);
    int32_t want1[16];
    reference(&v, a, 30, 9, true, want1);
    rt_expect_ids("session turn 1", want1, 9, o1.ids, o1.n);
    rt_wait_idle(v.e);
    ignis_engine_stats s1;
    TU_CHECK(ignis_engine_get_stats(v.e, &s1));
    if (s1.kv_blocks_used == 0) fail_msg("an idle session should keep its blocks");
    if (s1.sessions != 1) fail_msg("expected 1 live session, got %d", s1.sessions);

    p.prompt_ids = b;
    p.n_prompt_ids = 12;
    p.max_new_tokens = 7;
    TU_CHECK(ignis_engine_submit(v.e, &p, &r));
    rt_out o2;
    rt_collect(r, &o2);
    ignis_request_result res;
    ignis_request_get_result(r, &res);
    ignis_request_release(r);
    ignis_engine_stats s2;
    TU_CHECK(ignis_engine_get_stats(v.e, &s2));
    /* turn 2 computes the last token of turn 1 and its own 12 */
    uint64_t prefilled = s2.prefill_tokens - s1.prefill_tokens;
    if (prefilled != 13) fail_msg("turn 2: expected 13 tokens prefilled, got %llu", (unsigned long long)prefilled);
    if (res.cached_tokens != 38) fail_msg("turn 2: expected 38 cached tokens (30 + 8), got %d", res.cached_tokens);
    memcpy(ctx, a, sizeof a);
    memcpy(ctx + 30, o1.ids, sizeof(int32_t) * 9);
    memcpy(ctx + 39, b, sizeof b);
    int32_t want2[16];
    reference(&v, ctx, 51, 7, true, want2);
    rt_expect_ids("session turn 2", want2, 7, o2.ids, o2.n);
    rt_out_free(&o1);
    rt_out_free(&o2);

    TU_CHECK(ignis_engine_end_session(v.e, 42));
    s = ignis_engine_end_session(v.e, 42);
    if (s != IGNIS_E_NOT_FOUND) fail_msg("ending an ended session: expected not found, got %s", ignis_status_name(s));
    /* the session end is processed by the scheduler: wait for it */
    for (int i = 0; i < 1000; i++) {
        ignis_engine_stats se;
        TU_CHECK(ignis_engine_get_stats(v.e, &se));
        if (se.sessions == 0 && se.kv_blocks_used == 0) break;
        usleep(1000);
    }
    expect_pool_full(&v, "after ending the session");
    ignis_engine_stats se;
    TU_CHECK(ignis_engine_get_stats(v.e, &se));
    if (se.sessions != 0) fail_msg("expected no session left, got %d", se.sessions);
    env_close(&v);
}

static void test_sched_ending_a_busy_session_cancels_its_request(void **st)
{
    (void)st;
    env v;
    env_open(&v, 64, 8, 8, 512, 0);
    fake_backend_delay(v.fm.backend, 300);
    int32_t a[20];
    make_prompt(a, 20, 3);
    ignis_request_params p = prompt_params(a, 20, 300, 7);
    ignis_request *r;
    TU_CHECK(ignis_engine_submit(v.e, &p, &r));
    usleep(3000);
    TU_CHECK(ignis_engine_end_session(v.e, 7));
    /* the id is free again at once: a new session starts from nothing */
    p.max_new_tokens = 3;
    ignis_request *r2;
    TU_CHECK(ignis_engine_submit(v.e, &p, &r2));
    rt_out o;
    rt_collect(r, &o);
    if (o.finish_reason != IGNIS_FINISH_CANCELLED)
        fail_msg("expected cancelled, got %s", ignis_finish_reason_name(o.finish_reason));
    rt_out_free(&o);
    rt_collect(r2, &o);
    int32_t want[4];
    reference(&v, a, 20, 3, true, want);
    rt_expect_ids("new session after end", want, 3, o.ids, o.n);
    rt_out_free(&o);
    ignis_request_release(r);
    ignis_request_release(r2);
    end_session_and_wait(&v, 7);
    expect_pool_full(&v, "after ending a busy session");
    env_close(&v);
}

static void test_sched_idle_sessions_give_blocks_to_new_requests(void **st)
{
    (void)st;
    env v;
    env_open(&v, 16, 4, 8, 512, 0); /* 64 tokens */
    int32_t a[40];
    make_prompt(a, 40, 21);
    for (uint64_t sid = 1; sid <= 3; sid++) { /* three idle sessions of ~44 tokens each cannot all stay */
        ignis_request_params p = prompt_params(a, 40, 4, sid);
        ignis_request *r;
        TU_CHECK(ignis_engine_submit(v.e, &p, &r));
        rt_out o;
        rt_collect(r, &o);
        if (o.finish_reason != IGNIS_FINISH_LENGTH)
            fail_msg("session %d: %s %s", (int)sid, ignis_finish_reason_name(o.finish_reason), o.error);
        rt_out_free(&o);
        ignis_request_release(r);
    }
    /* session 1 was evicted: its next turn recomputes and still gives the right answer */
    int32_t b[5], ctx[64];
    make_prompt(b, 5, 22);
    int32_t first[8];
    reference(&v, a, 40, 4, true, first);
    memcpy(ctx, a, sizeof a);
    memcpy(ctx + 40, first, sizeof(int32_t) * 4);
    memcpy(ctx + 44, b, sizeof b);
    ignis_request_params p = prompt_params(b, 5, 6, 1);
    ignis_request *r;
    TU_CHECK(ignis_engine_submit(v.e, &p, &r));
    rt_out o;
    rt_collect(r, &o);
    int32_t want[8];
    reference(&v, ctx, 49, 6, true, want);
    rt_expect_ids("evicted session turn 2", want, 6, o.ids, o.n);
    rt_out_free(&o);
    ignis_request_release(r);
    env_close(&v); /* destroy ends the sessions; env_close checks the pool */
}

/* A session request that waits keeps its session's blocks; a higher-priority request
 * that then needs them must be able to take them, or the two wait for each other. */
static void test_sched_waiting_session_does_not_pin_blocks_against_the_head(void **st)
{
    (void)st;
    env v;
    env_open(&v, 16, 4, 8, 512, 0); /* 64 tokens */
    int32_t a[36], x[20], b[8], h[30];
    make_prompt(a, 36, 1);
    make_prompt(x, 20, 2);
    make_prompt(b, 8, 3);
    make_prompt(h, 30, 4);
    ignis_request_params p = prompt_params(a, 36, 4, 1);
    ignis_request *r;
    TU_CHECK(ignis_engine_submit(v.e, &p, &r));
    TU_CHECK(ignis_request_wait(r, 10000));
    ignis_request_release(r); /* the session now holds 10 idle blocks */
    /* X holds 6 blocks for ~5 slow steps; S (session, 10 blocks) then waits for 2 more
     * (none free); H (priority 5, 8 blocks) arrives behind it and goes first */
    fake_backend_delay(v.fm.backend, 5000);
    ignis_request *rx, *rs, *rh;
    p.session_id = 0;
    p.prompt_ids = x;
    p.n_prompt_ids = 20;
    p.max_new_tokens = 4;
    TU_CHECK(ignis_engine_submit(v.e, &p, &rx));
    usleep(5000);
    p.session_id = 1;
    p.prompt_ids = b;
    p.n_prompt_ids = 8;
    p.max_new_tokens = 4;
    TU_CHECK(ignis_engine_submit(v.e, &p, &rs));
    usleep(6000);
    p.session_id = 0;
    p.prompt_ids = h;
    p.n_prompt_ids = 30;
    p.priority = 5;
    TU_CHECK(ignis_engine_submit(v.e, &p, &rh));
    ignis_request *all[3] = {rx, rs, rh};
    for (int i = 0; i < 3; i++)
        if (ignis_request_wait(all[i], 20000) != IGNIS_OK) fail_msg("request %d never finished (deadlock)", i);
    for (int i = 0; i < 3; i++) {
        ignis_request_result res;
        ignis_request_get_result(all[i], &res);
        if (res.finish_reason != IGNIS_FINISH_LENGTH) fail_msg("request %d: %s", i, ignis_request_error(all[i]));
        ignis_request_release(all[i]);
    }
    env_close(&v);
}

static void test_sched_stop_ids_eos_and_ignore_eos(void **st)
{
    (void)st;
    env v;
    env_open(&v, 64, 8, 8, 512, 0);
    int32_t prompt[16], want[64];
    make_prompt(prompt, 16, 9);
    reference(&v, prompt, 16, 40, true, want);
    ignis_request_params p = prompt_params(prompt, 16, 40, 0);
    int32_t stop = want[5];
    int first = 0;
    while (want[first] != stop)
        first++;
    p.stop_ids = &stop;
    p.n_stop_ids = 1;
    ignis_request *r;
    TU_CHECK(ignis_engine_submit(v.e, &p, &r));
    rt_out o;
    rt_collect(r, &o);
    if (o.finish_reason != IGNIS_FINISH_STOP)
        fail_msg("stop id: expected stop, got %s", ignis_finish_reason_name(o.finish_reason));
    rt_expect_ids("stop id (kept in output)", want, first + 1, o.ids, o.n);
    rt_out_free(&o);
    ignis_request_release(r);
    env_close(&v);
}

/* Prompt A then a prompt B equal to A but for the last token of its second block: B may
 * reuse A's first block only (a block's hash covers every token up to its end). */
static void test_sched_prefix_cache_block_differing_in_its_last_token_is_not_shared(void **st)
{
    (void)st;
    env v;
    env_open(&v, 64, 8, 8, 512, 1);
    int32_t a[20], b[20], want[16];
    make_prompt(a, 20, 31);
    memcpy(b, a, sizeof a);
    b[15] = a[15] == 3 ? 4 : 3; /* position 15: the last slot of block 1 */
    rt_out o;
    rt_run_one(v.e, a, 20, 6, true, &o);
    rt_out_free(&o);
    ignis_engine_stats s1, s2;
    TU_CHECK(ignis_engine_get_stats(v.e, &s1));
    rt_run_one(v.e, b, 20, 6, true, &o);
    TU_CHECK(ignis_engine_get_stats(v.e, &s2));
    reference(&v, b, 20, 6, true, want);
    rt_expect_ids("prompt differing in a block's last token", want, 6, o.ids, o.n);
    rt_out_free(&o);
    uint64_t hits = s2.prefix_cache_hits - s1.prefix_cache_hits;
    if (hits != 1)
        fail_msg("expected exactly 1 block reused (block 0; block 1 differs in its last token), got %llu",
                 (unsigned long long)hits);
    expect_pool_full(&v, "after the two prompts");
    env_close(&v);
}

/* A session turn with session_rewind: the history's last tokens are dropped (also across a
 * block boundary, into blocks the prefix cache shares) before the new prompt, and the
 * output is the reference continuation of the rewound history + prompt. */
static void test_sched_session_rewind_drops_the_history_tail(void **st)
{
    (void)st;
    for (int caching = 0; caching < 2; caching++) {
        env v;
        env_open(&v, 64, 8, 8, 512, caching);
        int32_t a[21], b[5], ctx[64], want[16];
        make_prompt(a, 21, 51);
        make_prompt(b, 5, 52);
        ignis_request_params p = prompt_params(a, 21, 6, 7);
        ignis_request *r;
        TU_CHECK(ignis_engine_submit(v.e, &p, &r));
        rt_out o1;
        rt_collect(r, &o1);
        ignis_request_release(r);
        /* history: 21 + 6 = 27 tokens; keep 13 (inside block 1, whose KV must go) */
        p.prompt_ids = b;
        p.n_prompt_ids = 5;
        p.session_rewind = 27 - 13;
        TU_CHECK(ignis_engine_submit(v.e, &p, &r));
        rt_out o2;
        rt_collect(r, &o2);
        ignis_request_release(r);
        memcpy(ctx, a, sizeof(int32_t) * 13);
        memcpy(ctx + 13, b, sizeof b);
        reference(&v, ctx, 18, 6, true, want);
        rt_expect_ids(caching ? "rewound session (prefix cache on)" : "rewound session", want, 6, o2.ids, o2.n);
        /* rewinding more than the history fails that request */
        p.session_rewind = 1000;
        TU_CHECK(ignis_engine_submit(v.e, &p, &r));
        rt_out o3;
        rt_collect(r, &o3);
        ignis_request_release(r);
        if (o3.finish_reason != IGNIS_FINISH_ERROR || !strstr(o3.error, "rewind"))
            fail_msg("rewind past the history: expected an error, got %s (%s)",
                     ignis_finish_reason_name(o3.finish_reason), o3.error);
        rt_out_free(&o1);
        rt_out_free(&o2);
        rt_out_free(&o3);
        end_session_and_wait(&v, 7);
        expect_pool_full(&v, "after the rewound session ended");
        env_close(&v);
    }
}

/* ------------------------------------------------------------ output text and stop words
 * With a real tokenizer (stories260K's, 512 pieces) over the fake model: the expected text
 * is ignis_detokenize of the whole sequence, independent of the streaming path. */

#define TVOCAB 512

typedef struct text_env {
    fake_model fm;
    ignis_tokenizer *tok;
    ignis_engine *e;
    int32_t prompt[64];
    int n_prompt;
    int32_t ids[64];  /* the greedy continuation, 40 tokens */
    char *ctx_text;   /* text of the prompt's last token */
    char *all;        /* text of the 40 output tokens after the prompt */
    size_t bound[41]; /* bound[k]: bytes of text after k output tokens */
} text_env;

/* Text of the first k output tokens as a continuation of the prompt. */
static char *continuation(text_env *t, int k, size_t *len)
{
    int32_t seq[65];
    seq[0] = t->prompt[t->n_prompt - 1];
    memcpy(seq + 1, t->ids, sizeof(int32_t) * (size_t)k);
    char *full;
    size_t n;
    TU_CHECK(ignis_detokenize(t->tok, seq, k + 1, true, &full, &n));
    size_t c = strlen(t->ctx_text);
    if (n < c || memcmp(full, t->ctx_text, c)) fail_msg("the continuation does not start with the context's text");
    memmove(full, full + c, n - c + 1);
    *len = n - c;
    return full;
}

static void text_env_open(text_env *t)
{
    memset(t, 0, sizeof *t);
    TU_ASSET_OR_SKIP(dir, "models/stories260K/hf");
    TU_CHECK(ignis_tokenizer_open(dir, &t->tok));
    if (fake_model_init(&t->fm, TVOCAB, EOS, 64, 8) != 0) fail_msg("fake model");
    ignis_engine_opts o;
    ignis_engine_opts_init(&o);
    ig_engine_deps d = {t->fm.backend, &t->fm.desc, t->tok, &t->fm.pool};
    TU_CHECK(ig_engine_create_deps(&d, &t->fm.desc.engine, &o, &t->e));
    /* a prompt whose continuation starts with a word (a piece with SentencePiece's space
     * mark), so a decoder that forgets the prompt would drop that space */
    int32_t *ids;
    int n_base;
    TU_CHECK(ignis_tokenize(t->tok, "Once upon a time", 16, true, false, &ids, &n_base));
    memcpy(t->prompt, ids, sizeof(int32_t) * (size_t)n_base);
    free(ids);
    t->n_prompt = n_base + 1;
    bool found = false;
    for (int32_t w = 3; w < TVOCAB && !found; w++) { /* + one word piece: the fake model's output varies */
        if (strncmp(ignis_token_piece(t->tok, w), "\xE2\x96\x81", 3)) continue;
        t->prompt[n_base] = w;
        fake_reference(t->fm.backend, t->prompt, t->n_prompt, 40, t->ids);
        found = !strncmp(ignis_token_piece(t->tok, t->ids[0]), "\xE2\x96\x81", 3);
    }
    if (!found) fail_msg("no candidate prompt continues with a word piece");
    size_t n;
    TU_CHECK(ignis_detokenize(t->tok, t->prompt + t->n_prompt - 1, 1, true, &t->ctx_text, &n));
    for (int k = 0; k <= 40; k++) {
        char *c = continuation(t, k, &t->bound[k]);
        if (k < 40)
            free(c);
        else
            t->all = c;
    }
}

static void text_env_close(text_env *t)
{
    ignis_engine_destroy(t->e);
    fake_model_free(&t->fm);
    ignis_tokenizer_free(t->tok);
    free(t->ctx_text);
    free(t->all);
}

/* Runs the prompt with these stop words (ignore_eos, 40 tokens at most); *delivered[k]:
 * bytes of text delivered up to and including token event k. */
static void run_text(text_env *t, const char *const *words, int n_words, rt_out *o, size_t *delivered)
{
    ignis_request_params p = prompt_params(t->prompt, t->n_prompt, 40, 0);
    p.stop_words = words;
    p.n_stop_words = n_words;
    ignis_request *r;
    TU_CHECK(ignis_engine_submit(t->e, &p, &r));
    memset(o, 0, sizeof *o);
    size_t cap = 4096;
    o->text = calloc(cap, 1);
    for (;;) {
        ignis_event ev;
        TU_CHECK(ignis_request_poll(r, &ev, 10000));
        if (ev.type == IGNIS_EVENT_NONE) fail_msg("no event within 10 s");
        if (ev.type == IGNIS_EVENT_ERROR) fail_msg("request failed: %s", ev.error);
        if (o->text_len + ev.text_len >= cap) fail_msg("output text too long");
        memcpy(o->text + o->text_len, ev.text, ev.text_len);
        o->text_len += ev.text_len;
        if (ev.type == IGNIS_EVENT_TOKEN) {
            o->ids[o->n] = ev.token;
            delivered[o->n++] = o->text_len;
        }
        if (ev.type == IGNIS_EVENT_FINISHED) {
            o->finish_reason = ev.finish_reason;
            break;
        }
    }
    ignis_request_release(r);
}

/* A token boundary k (0 < k < 40) in the text with two printable ASCII characters on each
 * side, the two before it from token k - 1 alone. */
static int ascii_boundary(const text_env *t, int from)
{
    for (int k = from > 1 ? from : 1; k < 40; k++) { /* k - 1 is read below */
        size_t b = t->bound[k];
        /* cppcheck-suppress negativeIndex ; k >= 1 (loop start) */
        if (b < 2 || b + 2 > t->bound[40] || t->bound[k - 1] + 2 > b) continue;
        bool ok = true;
        for (size_t i = b - 2; i < b + 2; i++)
            ok &= t->all[i] >= ' ' && t->all[i] <= '~';
        if (ok) return k;
    }
    return -1;
}

static void test_sched_output_text_continues_the_prompt(void **st)
{
    (void)st;
    text_env t;
    text_env_open(&t);
    rt_out o;
    size_t delivered[64];
    run_text(&t, NULL, 0, &o, delivered);
    rt_expect_ids("no stop words", t.ids, 40, o.ids, o.n);
    if (o.text_len != t.bound[40] || memcmp(o.text, t.all, o.text_len))
        fail_msg("streamed text differs from the detokenized sequence\n expected: '%s'\n got:      '%.*s'", t.all,
                 (int)o.text_len, o.text);
    if (t.all[0] != ' ' && t.ids[0] != 0) print_message("note: the first output piece has no leading space here\n");
    rt_out_free(&o);
    text_env_close(&t);
}

static void test_sched_stop_word_split_across_tokens_is_cut_exactly(void **st)
{
    (void)st;
    text_env t;
    text_env_open(&t);
    int k = ascii_boundary(&t, 3);
    if (k < 0) fail_msg("no token boundary between ASCII characters in: %s", t.all);
    size_t b = t.bound[k];
    char word[5] = {t.all[b - 2], t.all[b - 1], t.all[b], t.all[b + 1], 0};
    const char *at = strstr(t.all, word);
    size_t cut = (size_t)(at - t.all);
    /* the token that completes the word's first occurrence is the last one generated */
    int last = 0;
    while (t.bound[last + 1] < cut + 4)
        last++;
    /* a second stop word that only shares the first's start: held back, then released */
    char near[6] = {word[0], word[1], word[2], word[3], '\x01', 0};
    const char *words[2] = {near, word};
    rt_out o;
    size_t delivered[64];
    run_text(&t, words, 2, &o, delivered);
    if (o.finish_reason != IGNIS_FINISH_STOP)
        fail_msg("stop word '%s': expected stop, got %s", word, ignis_finish_reason_name(o.finish_reason));
    rt_expect_ids("ids up to the token completing the stop word", t.ids, last + 1, o.ids, o.n);
    if (o.text_len != cut || memcmp(o.text, t.all, cut))
        fail_msg("stop word '%s': expected the text before it\n expected: '%.*s'\n got:      '%.*s'", word, (int)cut,
                 t.all, (int)o.text_len, o.text);
    /* nothing of the stop word went out early: every event's text stays before it */
    for (int i = 0; i < o.n; i++)
        if (delivered[i] > cut) fail_msg("token %d delivered text past the stop word's start", i);
    rt_out_free(&o);

    /* only the near miss: it never matches, the held-back start is released, all text comes */
    run_text(&t, words, 1, &o, delivered);
    if (o.finish_reason != IGNIS_FINISH_LENGTH)
        fail_msg("near-miss stop word: expected length, got %s", ignis_finish_reason_name(o.finish_reason));
    if (o.text_len != t.bound[40] || memcmp(o.text, t.all, o.text_len))
        fail_msg("near-miss stop word: expected all the text\n expected: '%s'\n got:      '%.*s'", t.all,
                 (int)o.text_len, o.text);
    /* while the word's first letters might have started it, they were held back */
    int held = 0;
    while (t.bound[held + 1] < cut + 2)
        held++;
    if (held < o.n && delivered[held] > cut)
        fail_msg("token %d: text that may start a stop word was delivered at once (%zu > %zu)", held, delivered[held],
                 cut);
    rt_out_free(&o);
    text_env_close(&t);
}

static void test_sched_forward_failure_fails_that_batch_only(void **st)
{
    (void)st;
    env v;
    env_open(&v, 64, 8, 8, 512, 0);
    int32_t bad[8] = {5, 6, 7, 200, 8, 9, 10, 11};
    fake_backend_fail_on(v.fm.backend, 200);
    rt_out o;
    rt_run_one(v.e, bad, 8, 5, true, &o);
    if (o.finish_reason != IGNIS_FINISH_ERROR || o.status != IGNIS_E_DEVICE)
        fail_msg("expected a device error, got %s (%s)", ignis_finish_reason_name(o.finish_reason),
                 ignis_status_name(o.status));
    if (!strstr(o.error, "injected")) fail_msg("error should carry the backend's message, got '%s'", o.error);
    rt_out_free(&o);
    int lens[4] = {5, 9, 17, 3};
    run_batch_and_check(&v, 4, lens, 8, true, "after a failure");
    ignis_engine_stats es;
    TU_CHECK(ignis_engine_get_stats(v.e, &es));
    if (es.requests_failed != 1)
        fail_msg("expected 1 failed request, got %llu", (unsigned long long)es.requests_failed);
    expect_pool_full(&v, "after a failure");
    env_close(&v);
}

static void test_sched_rejects_bad_parameters(void **st)
{
    (void)st;
    env v;
    env_open(&v, 16, 8, 8, 512, 0);
    ignis_request_params p;
    ignis_request_params_init(&p);
    ignis_request *r = NULL;
    int32_t ids[3] = {1, VOCAB, 3};
    p.prompt_ids = ids;
    p.n_prompt_ids = 3;
    if (ignis_engine_submit(v.e, &p, &r) != IGNIS_E_ARG || !strstr(ignis_last_error(), "position 1"))
        fail_msg("out-of-vocabulary id: expected an argument error naming position 1, got '%s'", ignis_last_error());
    p.n_prompt_ids = 0;
    if (ignis_engine_submit(v.e, &p, &r) != IGNIS_E_ARG) fail_msg("empty prompt: expected an argument error");
    p.prompt = "hello";
    p.prompt_ids = NULL;
    if (ignis_engine_submit(v.e, &p, &r) != IGNIS_E_ARG || !strstr(ignis_last_error(), "tokenizer"))
        fail_msg("text prompt without tokenizer: expected an argument error, got '%s'", ignis_last_error());
    const char *sw[1] = {"x"};
    p.prompt = NULL;
    p.prompt_ids = ids;
    p.n_prompt_ids = 1;
    p.stop_words = sw;
    p.n_stop_words = 1;
    if (ignis_engine_submit(v.e, &p, &r) != IGNIS_E_ARG)
        fail_msg("stop words without tokenizer: expected an argument error");
    assert_null(r);
    if (ignis_engine_end_session(v.e, 99) != IGNIS_E_NOT_FOUND) fail_msg("unknown session: expected not found");
    env_close(&v);
}

typedef struct cb_state {
    int32_t ids[64];
    int n;
    int finished;
    int reason;
} cb_state;

static void on_event(void *user, ignis_request *r, const ignis_event *ev)
{
    cb_state *s = user;
    if (ev->type == IGNIS_EVENT_TOKEN && s->n < 64) s->ids[s->n++] = ev->token;
    if (ev->type == IGNIS_EVENT_FINISHED || ev->type == IGNIS_EVENT_ERROR) {
        s->reason = ev->finish_reason;
        __atomic_store_n(&s->finished, 1, __ATOMIC_RELEASE);
    }
}

static void test_sched_callback_gets_every_token_and_poll_is_refused(void **st)
{
    (void)st;
    env v;
    env_open(&v, 64, 8, 8, 512, 0);
    int32_t prompt[20], want[32];
    make_prompt(prompt, 20, 4);
    reference(&v, prompt, 20, 12, true, want);
    cb_state s = {0};
    ignis_request_params p = prompt_params(prompt, 20, 12, 0);
    p.on_event = on_event;
    p.user = &s;
    ignis_request *r;
    TU_CHECK(ignis_engine_submit(v.e, &p, &r));
    TU_CHECK(ignis_request_wait(r, 30000));
    assert_true(__atomic_load_n(&s.finished, __ATOMIC_ACQUIRE));
    ignis_event ev;
    if (ignis_request_poll(r, &ev, 0) != IGNIS_E_STATE) fail_msg("poll on a callback request should be refused");
    rt_expect_ids("callback", want, 12, s.ids, s.n);
    int32_t ids[32];
    double times[32];
    int n = ignis_request_tokens(r, ids, times, 32);
    rt_expect_ids("ignis_request_tokens", want, 12, ids, n);
    for (int i = 1; i < n; i++)
        if (times[i] < times[i - 1]) fail_msg("token times go backwards at %d", i);
    ignis_request_result res;
    ignis_request_get_result(r, &res);
    if (res.finish_reason != IGNIS_FINISH_LENGTH || res.generated_tokens != 12 || res.ttft_s < 0 ||
        res.e2e_s < res.ttft_s || res.queue_s < 0 || res.queue_s > res.ttft_s)
        fail_msg("result: reason %d, %d tokens, queue %f ttft %f e2e %f", res.finish_reason, res.generated_tokens,
                 res.queue_s, res.ttft_s, res.e2e_s);
    ignis_request_release(r);
    env_close(&v);
}

static void test_sched_priority_admits_higher_first(void **st)
{
    (void)st;
    env v;
    env_open(&v, 64, 8, 1, 512, 0); /* one sequence at a time */
    fake_backend_delay(v.fm.backend, 500);
    int32_t prompt[8];
    make_prompt(prompt, 8, 1);
    ignis_request_params p = prompt_params(prompt, 8, 20, 0);
    ignis_request *first, *low, *high;
    TU_CHECK(ignis_engine_submit(v.e, &p, &first));
    p.max_new_tokens = 2;
    TU_CHECK(ignis_engine_submit(v.e, &p, &low));
    p.priority = 5;
    TU_CHECK(ignis_engine_submit(v.e, &p, &high));
    TU_CHECK(ignis_request_wait(low, 30000));
    TU_CHECK(ignis_request_wait(high, 30000));
    ignis_request_result rl, rh;
    ignis_request_get_result(low, &rl);
    ignis_request_get_result(high, &rh);
    if (!(rh.e2e_s < rl.e2e_s + 0.0))
        fail_msg("priority 5 should finish before priority 0: e2e %f vs %f", rh.e2e_s, rl.e2e_s);
    ignis_request_release(first);
    ignis_request_release(low);
    ignis_request_release(high);
    env_close(&v);
}

static void test_sched_destroy_with_requests_in_flight_cancels_them(void **st)
{
    (void)st;
    env v;
    env_open(&v, 64, 8, 8, 512, 1);
    fake_backend_delay(v.fm.backend, 200);
    int32_t prompt[30];
    make_prompt(prompt, 30, 2);
    ignis_request *rs[20];
    for (int i = 0; i < 20; i++) {
        ignis_request_params p = prompt_params(prompt, 10 + i, 100, i % 3 == 0 ? (uint64_t)(100 + i) : 0);
        TU_CHECK(ignis_engine_submit(v.e, &p, &rs[i]));
    }
    usleep(3000);
    ignis_request *keep = rs[0];
    for (int i = 1; i < 20; i++)
        if (i % 2) ignis_request_release(rs[i]);
    env_close(&v);
    /* handles outlive the engine */
    TU_CHECK(ignis_request_wait(keep, 0));
    ignis_request_result res;
    ignis_request_get_result(keep, &res);
    if (res.finish_reason != IGNIS_FINISH_CANCELLED && res.finish_reason != IGNIS_FINISH_LENGTH)
        fail_msg("after destroy: expected cancelled, got %s", ignis_finish_reason_name(res.finish_reason));
    ignis_request_cancel(keep);
    for (int i = 0; i < 20; i++)
        if (i % 2 == 0) ignis_request_release(rs[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sched_single_request_matches_reference),
        cmocka_unit_test(test_sched_batch_of_16_matches_alone_with_chunked_prefill),
        cmocka_unit_test(test_sched_max_batch_size_bounds_every_step),
        cmocka_unit_test(test_sched_small_pool_preempts_and_outputs_are_unchanged),
        cmocka_unit_test(test_sched_small_pool_with_prefix_cache_preempts_correctly),
        cmocka_unit_test(test_sched_request_that_can_never_fit_gets_capacity_error),
        cmocka_unit_test(test_sched_prefix_cache_hits_and_outputs_identical_on_and_off),
        cmocka_unit_test(test_sched_prefix_cache_shared_blocks_concurrently),
        cmocka_unit_test(test_sched_cancel_returns_every_block),
        cmocka_unit_test(test_sched_session_prefills_only_new_tokens_and_end_frees),
        cmocka_unit_test(test_sched_ending_a_busy_session_cancels_its_request),
        cmocka_unit_test(test_sched_idle_sessions_give_blocks_to_new_requests),
        cmocka_unit_test(test_sched_waiting_session_does_not_pin_blocks_against_the_head),
        cmocka_unit_test(test_sched_stop_ids_eos_and_ignore_eos),
        cmocka_unit_test(test_sched_prefix_cache_block_differing_in_its_last_token_is_not_shared),
        cmocka_unit_test(test_sched_session_rewind_drops_the_history_tail),
        cmocka_unit_test(test_sched_output_text_continues_the_prompt),
        cmocka_unit_test(test_sched_stop_word_split_across_tokens_is_cut_exactly),
        cmocka_unit_test(test_sched_forward_failure_fails_that_batch_only),
        cmocka_unit_test(test_sched_rejects_bad_parameters),
        cmocka_unit_test(test_sched_callback_gets_every_token_and_poll_is_refused),
        cmocka_unit_test(test_sched_priority_admits_higher_first),
        cmocka_unit_test(test_sched_destroy_with_requests_in_flight_cancels_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
