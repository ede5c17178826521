/*
 * 1,000 random requests from several threads with random cancels, releases, sessions and
 * session ends, on a KV pool small enough to preempt, prefix caching on: every request
 * must end (finished or cancelled, never an error), every greedy request that was not
 * cancelled must match the reference, and the pool must be whole at the end. Runs on
 * the fake backend (fast enough for valgrind), then the same load on synthetic:tiny with
 * the CPU backend (prompts from a fixed set whose greedy outputs are computed first with
 * the direct ignis_seq path). IGNIS_STRESS_N overrides the count; IGNIS_STRESS_FAKE_ONLY=1
 * skips the model run (the valgrind invocation sets it).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_backend.h"
#include "rt_util.h"
#include "runtime/engine_internal.h"
#include "test_util.h"

#define VOCAB 128
#define EOS 2
#define THREADS 4

typedef struct shared {
    fake_model fm;
    ignis_engine *e;
    int n_per_thread;
    atomic_int checked, cancelled, rejected, mismatches, errors;
    char first_problem[512];
    pthread_mutex_t mu;
} shared;

typedef struct worker {
    shared *sh;
    int id;
} worker;

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static void problem(shared *sh, const char *fmt, int a, int b, const char *s)
{
    pthread_mutex_lock(&sh->mu);
    if (!sh->first_problem[0]) snprintf(sh->first_problem, sizeof sh->first_problem, fmt, a, b, s);
    pthread_mutex_unlock(&sh->mu);
}

static void *work(void *arg)
{
    worker *w = arg;
    shared *sh = w->sh;
    unsigned seed = 1000u + (unsigned)w->id * 7919u;
    int32_t prompt[64], want[16];
    for (int i = 0; i < sh->n_per_thread; i++) {
        int n = 1 + (int)(next_rand(&seed) % 60);
        /* a few shared prefixes so the prefix cache is exercised */
        unsigned pseed = next_rand(&seed) % 4 == 0 ? 5u : seed;
        for (int k = 0; k < n; k++) {
            pseed = pseed * 1103515245u + 12345u;
            prompt[k] = 3 + (int32_t)((pseed >> 16) % (VOCAB - 3));
        }
        ignis_request_params p;
        ignis_request_params_init(&p);
        p.prompt_ids = prompt;
        p.n_prompt_ids = n;
        p.max_new_tokens = 1 + (int)(next_rand(&seed) % 8);
        p.ignore_eos = next_rand(&seed) % 2;
        bool greedy = next_rand(&seed) % 3 != 0;
        if (!greedy) {
            p.sampling.temperature = 0.8f;
            p.sampling.seed = next_rand(&seed);
        }
        int mode = (int)(next_rand(&seed) % 10); /* 0-1 cancel, 2 release early, 3 session */
        if (mode == 3) p.session_id = 1 + (uint64_t)w->id * 10 + next_rand(&seed) % 3;
        p.priority = (int)(next_rand(&seed) % 3);
        ignis_request *r = NULL;
        ignis_status s = ignis_engine_submit(sh->e, &p, &r);
        if (s == IGNIS_E_STATE && p.session_id) { /* busy session: expected */
            atomic_fetch_add(&sh->rejected, 1);
            continue;
        }
        if (s == IGNIS_E_CAPACITY && p.session_id) {
            atomic_fetch_add(&sh->rejected, 1);
            continue;
        }
        if (s != IGNIS_OK) {
            atomic_fetch_add(&sh->errors, 1);
            problem(sh, "submit %d of thread %d: %.300s", i, w->id, ignis_last_error());
            continue;
        }
        if (mode <= 1) {
            if (mode == 1) usleep(next_rand(&seed) % 200);
            ignis_request_cancel(r);
        }
        if (mode == 2) {
            if (next_rand(&seed) % 2) usleep(next_rand(&seed) % 100);
            ignis_request_release(r);
            continue;
        }
        rt_out o;
        rt_collect(r, &o);
        if (o.finish_reason == IGNIS_FINISH_ERROR) {
            if (p.session_id && o.status == IGNIS_E_CAPACITY) { /* a session grew past the cache: expected */
                atomic_fetch_add(&sh->rejected, 1);
            } else {
                atomic_fetch_add(&sh->errors, 1);
                problem(sh, "request %d of thread %d failed: %.300s", i, w->id, o.error);
            }
        } else if (o.finish_reason == IGNIS_FINISH_CANCELLED) {
            atomic_fetch_add(&sh->cancelled, 1);
        } else if (greedy && !p.session_id) {
            fake_reference(sh->fm.backend, prompt, n, p.max_new_tokens, want);
            int nw = p.max_new_tokens;
            if (!p.ignore_eos)
                for (int k = 0; k < nw; k++)
                    if (want[k] == EOS) nw = k + 1;
            bool same = nw == o.n;
            for (int k = 0; same && k < nw; k++)
                same = want[k] == o.ids[k];
            if (!same) {
                atomic_fetch_add(&sh->mismatches, 1);
                problem(sh, "request %d of thread %d: output differs from the reference (%d ids, got %d)", i, nw, "");
            }
            atomic_fetch_add(&sh->checked, 1);
        }
        rt_out_free(&o);
        if (mode == 3 && next_rand(&seed) % 4 == 0) ignis_engine_end_session(sh->e, p.session_id);
        ignis_request_release(r);
    }
    return NULL;
}

static shared *g_sh;

/* Diagnostics for a stuck request: the scheduler's queues as they are (racy, best effort). */
static void dump_engine(void)
{
    ignis_engine *e = g_sh->e;
    fprintf(
        stderr,
        "engine: step %llu, running %d, waiting %d, incoming %d, sessions %d; kv used %d cached %d avail %d quota %d\n",
        (unsigned long long)e->step_no, e->n_running, e->n_waiting, e->n_incoming, e->n_sessions, e->kvm.n_used,
        e->kvm.n_cached, ig_kvm_available(&e->kvm), e->kvm.quota);
    for (int i = 0; i < e->n_waiting; i++) {
        ig_active *a = e->waiting[i];
        fprintf(stderr,
                "  waiting seq %llu prio %d attached %d tokens %d computed %d blocks %d preempted_at %llu cancel %d\n",
                (unsigned long long)a->seqno, a->priority, a->attached, a->kv ? a->kv->n_tokens : -1,
                a->kv ? a->kv->n_computed : -1, a->kv ? a->kv->n_blocks : -1, (unsigned long long)a->preempted_at,
                (int)atomic_load(&a->req->cancel));
    }
    for (int i = 0; i < e->n_running; i++) {
        ig_active *a = e->running[i];
        fprintf(stderr, "  running seq %llu prio %d tokens %d computed %d blocks %d\n", (unsigned long long)a->seqno,
                a->priority, a->kv->n_tokens, a->kv->n_computed, a->kv->n_blocks);
    }
    for (ig_session *s = e->sessions; s; s = s->next)
        fprintf(stderr, "  session %llu tokens %d blocks %d active %p\n", (unsigned long long)s->id, s->kv.n_tokens,
                s->kv.n_blocks, (void *)s->active);
}

static void test_stress_random_requests_cancels_sessions_no_leak_no_error(void **st)
{
    (void)st;
    const char *env_n = getenv("IGNIS_STRESS_N");
    int total = env_n ? atoi(env_n) : 1000;
    if (total < THREADS) total = THREADS;
    shared *sh = calloc(1, sizeof *sh);
    pthread_mutex_init(&sh->mu, NULL);
    if (fake_model_init(&sh->fm, VOCAB, EOS, 40, 4) != 0) fail_msg("fake model");
    fake_backend_delay(sh->fm.backend, 50);
    ignis_engine_opts o;
    ignis_engine_opts_init(&o);
    o.max_batch_size = 12;
    o.max_prefill_token_num = 24;
    o.enable_prefix_caching = 1;
    ig_engine_deps d = {sh->fm.backend, &sh->fm.desc, NULL, &sh->fm.pool};
    TU_CHECK(ig_engine_create_deps(&d, &sh->fm.desc.engine, &o, &sh->e));
    g_sh = sh;
    rt_on_stuck = dump_engine;
    sh->n_per_thread = total / THREADS;
    pthread_t th[THREADS];
    worker ws[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ws[i] = (worker){sh, i};
        pthread_create(&th[i], NULL, work, &ws[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    rt_wait_idle(sh->e);
    ignis_engine_stats es;
    TU_CHECK(ignis_engine_get_stats(sh->e, &es));
    print_message("stress: %d requests, %d checked against the reference, %d cancelled, %d rejected (busy session), "
                  "%llu preemptions, %llu prefix-cache hits, peak %d of %d blocks\n",
                  total, atomic_load(&sh->checked), atomic_load(&sh->cancelled), atomic_load(&sh->rejected),
                  (unsigned long long)es.preemptions, (unsigned long long)es.prefix_cache_hits, es.kv_blocks_peak_used,
                  es.kv_blocks_total);
    if (atomic_load(&sh->errors) || atomic_load(&sh->mismatches))
        fail_msg("%d errors, %d mismatches; first: %s", atomic_load(&sh->errors), atomic_load(&sh->mismatches),
                 sh->first_problem);
    if (es.requests_finished + es.requests_failed != es.requests_submitted)
        fail_msg("finished %llu + failed %llu != submitted %llu", (unsigned long long)es.requests_finished,
                 (unsigned long long)es.requests_failed, (unsigned long long)es.requests_submitted);
    if (atomic_load(&sh->checked) < total / 10) fail_msg("too few requests checked (%d)", atomic_load(&sh->checked));
    ignis_engine_destroy(sh->e);
    int nf = ig_kv_pool_free_count(&sh->fm.pool);
    if (nf != sh->fm.pool.n_blocks) fail_msg("pool after destroy: expected %d free, got %d", sh->fm.pool.n_blocks, nf);
    fake_model_free(&sh->fm);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

/* ---------------------------------------------------------- synthetic:tiny on the CPU */

#define TINY_PROMPTS 24
#define TINY_MAX_NEW 4

typedef struct tiny_shared {
    ignis_model *m;
    ignis_engine *e;
    int n_per_thread;
    int32_t prompts[TINY_PROMPTS][32];
    int lens[TINY_PROMPTS];
    int32_t ref[TINY_PROMPTS][TINY_MAX_NEW];
    atomic_int checked, cancelled, errors, mismatches;
    char first_problem[512];
    pthread_mutex_t mu;
} tiny_shared;

typedef struct tiny_worker {
    tiny_shared *sh;
    int id;
} tiny_worker;

static int ref_sink(void *user, int32_t tok)
{
    int32_t **w = user;
    *(*w)++ = tok;
    return 0;
}

static void *tiny_work(void *arg)
{
    tiny_worker *w = arg;
    tiny_shared *sh = w->sh;
    unsigned seed = 77u + (unsigned)w->id * 104729u;
    for (int i = 0; i < sh->n_per_thread; i++) {
        int k = (int)(next_rand(&seed) % TINY_PROMPTS);
        ignis_request_params p;
        ignis_request_params_init(&p);
        p.prompt_ids = sh->prompts[k];
        p.n_prompt_ids = sh->lens[k];
        p.max_new_tokens = 1 + (int)(next_rand(&seed) % TINY_MAX_NEW);
        p.ignore_eos = true;
        bool greedy = next_rand(&seed) % 4 != 0;
        if (!greedy) {
            p.sampling.temperature = 1.0f;
            p.sampling.top_p = 0.9f;
            p.sampling.seed = next_rand(&seed);
        }
        int mode = (int)(next_rand(&seed) % 10);
        ignis_request *r;
        if (ignis_engine_submit(sh->e, &p, &r) != IGNIS_OK) {
            atomic_fetch_add(&sh->errors, 1);
            pthread_mutex_lock(&sh->mu);
            if (!sh->first_problem[0])
                snprintf(sh->first_problem, sizeof sh->first_problem, "submit: %.400s", ignis_last_error());
            pthread_mutex_unlock(&sh->mu);
            continue;
        }
        if (mode == 0) ignis_request_cancel(r);
        if (mode == 1) {
            ignis_request_release(r);
            continue;
        }
        rt_out o;
        rt_collect(r, &o);
        ignis_request_release(r);
        if (o.finish_reason == IGNIS_FINISH_ERROR) {
            atomic_fetch_add(&sh->errors, 1);
            pthread_mutex_lock(&sh->mu);
            if (!sh->first_problem[0]) snprintf(sh->first_problem, sizeof sh->first_problem, "%.400s", o.error);
            pthread_mutex_unlock(&sh->mu);
        } else if (o.finish_reason == IGNIS_FINISH_CANCELLED) {
            atomic_fetch_add(&sh->cancelled, 1);
        } else if (greedy) {
            bool same = o.n == p.max_new_tokens;
            for (int j = 0; same && j < o.n; j++)
                same = o.ids[j] == sh->ref[k][j];
            if (!same) atomic_fetch_add(&sh->mismatches, 1);
            atomic_fetch_add(&sh->checked, 1);
        }
        rt_out_free(&o);
    }
    return NULL;
}

static void test_stress_synthetic_tiny_cpu_no_leak_no_error(void **st)
{
    (void)st;
    const char *fo = getenv("IGNIS_STRESS_FAKE_ONLY");
    if (fo && !strcmp(fo, "1")) {
        print_message("skipping: IGNIS_STRESS_FAKE_ONLY=1\n");
        skip();
    }
    const char *env_n = getenv("IGNIS_STRESS_N");
    int total = env_n ? atoi(env_n) : 1000;
    if (total < THREADS) total = THREADS;
    tiny_shared *sh = calloc(1, sizeof *sh);
    pthread_mutex_init(&sh->mu, NULL);
    ignis_engine_opts o;
    ignis_engine_opts_init(&o);
    o.backend = IGNIS_BACKEND_CPU;
    o.threads = 1;
    o.cache_block_seq_len = 8;
    o.cache_max_entry_count = 10;
    o.max_batch_size = 16;
    o.max_prefill_token_num = 40;
    o.enable_prefix_caching = 1;
    TU_CHECK(ignis_model_open("synthetic:tiny", &o, &sh->m));
    unsigned seed = 3;
    for (int k = 0; k < TINY_PROMPTS; k++) {
        sh->lens[k] = 1 + (int)(next_rand(&seed) % 28);
        unsigned ps = k % 3 == 0 ? 11u : (unsigned)k * 31u; /* some shared prefixes */
        for (int j = 0; j < sh->lens[k]; j++)
            sh->prompts[k][j] = 3 + (int32_t)(next_rand(&ps) % 500);
        ignis_seq *s;
        TU_CHECK(ignis_seq_create(sh->m, 0, &s));
        ignis_gen_opts go;
        ignis_gen_opts_init(&go);
        go.max_new_tokens = TINY_MAX_NEW;
        go.ignore_eos = true;
        int32_t *wp = sh->ref[k];
        go.on_token = ref_sink;
        go.user = &wp;
        ignis_gen_stats gs;
        TU_CHECK(ignis_seq_generate(s, sh->prompts[k], sh->lens[k], &go, &gs));
        ignis_seq_destroy(s);
    }
    TU_CHECK(ignis_engine_create(sh->m, NULL, &sh->e));
    sh->n_per_thread = total / THREADS;
    pthread_t th[THREADS];
    tiny_worker ws[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ws[i] = (tiny_worker){sh, i};
        pthread_create(&th[i], NULL, tiny_work, &ws[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    rt_wait_idle(sh->e);
    ignis_engine_stats es;
    TU_CHECK(ignis_engine_get_stats(sh->e, &es));
    print_message("synthetic:tiny stress: %d requests, %d checked, %d cancelled, %llu preemptions, %llu prefix-cache "
                  "hits, peak %d of %d blocks\n",
                  total, atomic_load(&sh->checked), atomic_load(&sh->cancelled), (unsigned long long)es.preemptions,
                  (unsigned long long)es.prefix_cache_hits, es.kv_blocks_peak_used, es.kv_blocks_total);
    if (atomic_load(&sh->errors) || atomic_load(&sh->mismatches))
        fail_msg("%d errors, %d greedy outputs differ from the direct path; first problem: %s",
                 atomic_load(&sh->errors), atomic_load(&sh->mismatches), sh->first_problem);
    if (es.kv_blocks_used != 0) fail_msg("idle engine holds %d blocks", es.kv_blocks_used);
    if (es.requests_finished + es.requests_failed != es.requests_submitted)
        fail_msg("finished %llu + failed %llu != submitted %llu", (unsigned long long)es.requests_finished,
                 (unsigned long long)es.requests_failed, (unsigned long long)es.requests_submitted);
    ignis_engine_destroy(sh->e);
    ignis_model_close(sh->m);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_random_requests_cancels_sessions_no_leak_no_error),
        cmocka_unit_test(test_stress_synthetic_tiny_cpu_no_leak_no_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
