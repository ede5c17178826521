/* In-process open-loop replay: one submitting thread keeps to the arrival schedule, the
 * engine's callback only records completions, a sampler thread records the engine's
 * stats on a timeline. Per-request times come from the engine afterwards
 * (ignis_request_get_result, ignis_request_tokens with times). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

void bench_replay_opts_init(bench_replay_opts *o)
{
    memset(o, 0, sizeof *o);
    o->request_rate = INFINITY;
    o->burstiness = 1.0;
    o->sample_every_s = 0.02;
    o->endpoint = "completions";
    ignis_sampling_init(&o->sampling);
}

typedef struct slot {
    ignis_request *req;
    int state;         /* 0 not sent, 1 in flight, 2 done */
    double done_at;    /* since t0 */
    bool blocked;      /* was due while every concurrency slot was taken */
    int next_turn;     /* item index of this conversation's next turn, -1 */
    double release_at; /* since t0: arrival, or the previous turn's end; INFINITY until then */
} slot;

typedef struct replay {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot *s;
    int in_flight, done, n;
    double t0, last_free; /* last_free: when a slot last freed, since t0 */
    long long tokens;
    /* sampler */
    ignis_engine *e;
    bench_run *run;
    double every;
    bool stop;
} replay;

typedef struct cb_ctx {
    replay *rp;
    int idx;
} cb_ctx;

/* On the engine's thread: keep it short (it stalls every request). */
static void on_event(void *user, ignis_request *req, const ignis_event *ev)
{
    cb_ctx *c = user;
    replay *rp = c->rp;
    (void)req;
    if (ev->type == IGNIS_EVENT_TOKEN) {
        __atomic_add_fetch(&rp->tokens, 1, __ATOMIC_RELAXED);
        return;
    }
    if (ev->type != IGNIS_EVENT_FINISHED && ev->type != IGNIS_EVENT_ERROR) return;
    double t = bench_now() - rp->t0;
    pthread_mutex_lock(&rp->mu);
    slot *s = &rp->s[c->idx];
    s->state = 2;
    s->done_at = t;
    rp->in_flight--;
    rp->done++;
    rp->last_free = t;
    if (s->next_turn >= 0) rp->s[s->next_turn].release_at = t;
    pthread_cond_broadcast(&rp->cv);
    pthread_mutex_unlock(&rp->mu);
}

static void *sampler(void *arg)
{
    replay *rp = arg;
    ignis_engine_stats st;
    uint64_t last_tok = 0;
    double last_t = 0;
    for (;;) {
        pthread_mutex_lock(&rp->mu);
        bool stop = rp->stop;
        int in_flight = rp->in_flight;
        pthread_mutex_unlock(&rp->mu);
        if (stop) break;
        double t = bench_now() - rp->t0;
        if (ignis_engine_get_stats(rp->e, &st) == IGNIS_OK) {
            bench_sample s = {.t = t,
                              .kv_usage = st.kv_blocks_total ? (double)st.kv_blocks_used / st.kv_blocks_total : -1,
                              .running = st.running,
                              .waiting = st.waiting,
                              .batch_size = st.batch_size,
                              .in_flight = in_flight};
            if (last_t > 0 && t > last_t) s.tokens_per_s = (double)(st.decode_tokens - last_tok) / (t - last_t);
            last_tok = st.decode_tokens;
            last_t = t;
            pthread_mutex_lock(&rp->mu);
            bench_run_add_sample(rp->run, &s);
            pthread_mutex_unlock(&rp->mu);
        }
        struct timespec ts = {0, (long)(rp->every * 1e9)};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void params_for(const bench_item *it, const bench_replay_opts *o, ignis_request_params *p)
{
    ignis_request_params_init(p);
    if (it->n_ids >= 0) {
        p->prompt_ids = it->ids;
        p->n_prompt_ids = it->n_ids;
    } else
        p->prompt = it->prompt;
    p->sampling = o->sampling;
    p->max_new_tokens = it->output_len;
    p->ignore_eos = it->ignore_eos;
}

/* Warm-up: the first requests of the workload, all at once, not measured. */
static int warm_up(ignis_engine *e, const bench_workload *w, const bench_replay_opts *o)
{
    int n = o->warmup < w->n ? o->warmup : w->n;
    ignis_request **r = calloc((size_t)(n ? n : 1), sizeof *r);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        ignis_request_params p;
        params_for(&w->items[i], o, &p);
        p.session_id = 0;
        if (ignis_engine_submit(e, &p, &r[i]) != IGNIS_OK) {
            bench_err("warm-up request %d: %s", i, ignis_last_error());
            rc = -1;
        }
    }
    for (int i = 0; i < n; i++)
        if (r[i]) {
            ignis_request_wait(r[i], -1);
            ignis_request_release(r[i]);
        }
    free(r);
    return rc;
}

static void fill_record(bench_record *q, ignis_request *req, double ready, double sent)
{
    ignis_request_result res;
    ignis_request_get_result(req, &res);
    double off = sent - ready; /* client delay counts against latency (open loop) */
    q->ok = res.status == IGNIS_OK && res.finish_reason != IGNIS_FINISH_CANCELLED &&
            res.finish_reason != IGNIS_FINISH_ERROR;
    if (!q->ok) snprintf(q->error, sizeof q->error, "%s", ignis_request_error(req));
    q->prompt_tokens = res.prompt_tokens;
    q->cached_tokens = res.cached_tokens;
    q->preemptions = res.preemptions;
    q->queue = res.queue_s;
    q->ttft = res.ttft_s >= 0 ? res.ttft_s + off : -1;
    q->e2e = res.e2e_s + off;
    q->prefill = res.ttft_s >= 0 ? res.ttft_s - res.queue_s : -1;
    q->decode = res.ttft_s >= 0 ? res.e2e_s - res.ttft_s : -1;
    int n = ignis_request_tokens(req, NULL, NULL, 0);
    q->output_tokens = n;
    q->usage_tokens = q->counted_tokens = -1;
    if (n > 0 && (q->token_times = malloc(sizeof(double) * (size_t)n))) {
        ignis_request_tokens(req, NULL, q->token_times, n);
        for (int k = 0; k < n; k++)
            q->token_times[k] += off;
    }
}

int bench_replay_engine(ignis_engine *e, const bench_workload *w, const bench_replay_opts *o, bench_run *out)
{
    memset(out, 0, sizeof *out);
    if (o->warmup > 0 && warm_up(e, w, o) != 0) return -1;
    int n = w->n;
    replay rp = {.n = n, .e = e, .run = out, .every = o->sample_every_s > 0 ? o->sample_every_s : 0.02};
    pthread_mutex_init(&rp.mu, NULL);
    /* on bench_now()'s clock, so a wait is until a point of the schedule */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rp.cv, &ca);
    pthread_condattr_destroy(&ca);
    rp.s = calloc((size_t)n, sizeof(slot));
    cb_ctx *ctx = calloc((size_t)n, sizeof(cb_ctx));
    double *release = calloc((size_t)(n ? n : 1), sizeof(double));
    int *next_turn = calloc((size_t)(n ? n : 1), sizeof(int));
    out->recs = calloc((size_t)n, sizeof(bench_record));
    out->n = n;
    if (!rp.s || !ctx || !release || !next_turn || !out->recs) {
        free(rp.s), free(ctx), free(release), free(next_turn);
        bench_run_free(out);
        return bench_err("replay: out of memory"), -1;
    }
    if (bench_arrivals(w, o, release, next_turn) != 0) {
        free(rp.s), free(ctx), free(release), free(next_turn);
        bench_run_free(out);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        rp.s[i].release_at = release[i];
        rp.s[i].next_turn = next_turn[i];
        ctx[i] = (cb_ctx){&rp, i};
    }
    free(release), free(next_turn);

    ignis_engine_stats st0, st1;
    ignis_engine_get_stats(e, &st0);
    bench_progress pg;
    bench_progress_init(&pg, o->progress ? n : 0);
    if (o->on_window) o->on_window(o->hook_user, true);
    rp.t0 = bench_now();
    pthread_t th;
    bool sampling = pthread_create(&th, NULL, sampler, &rp) == 0;
    int conc = o->concurrency > 0 ? o->concurrency : n + 1, rc = 0;
    uint64_t session_base = ((uint64_t)bench_now() << 20) ^ 0x1000;
    pthread_mutex_lock(&rp.mu);
    while (rp.done < n && rc == 0) {
        double now = bench_now() - rp.t0, next_due = INFINITY;
        int pick = -1;
        /* the earliest released, unsent request (scan: n is thousands, sends are rare) */
        for (int i = 0; i < n; i++) {
            slot *s = &rp.s[i];
            if (s->state != 0) continue;
            if (s->release_at <= now) {
                if (rp.in_flight >= conc) s->blocked = true;
                if (pick < 0 || s->release_at < rp.s[pick].release_at) pick = i;
            } else if (s->release_at < next_due)
                next_due = s->release_at;
        }
        if (pick >= 0 && rp.in_flight < conc) {
            slot *s = &rp.s[pick];
            bench_record *q = &out->recs[pick];
            const bench_item *it = &w->items[pick];
            q->index = pick;
            q->scheduled = s->release_at;
            q->ready = s->blocked && rp.last_free > s->release_at ? rp.last_free : s->release_at;
            ignis_request_params p;
            params_for(it, o, &p);
            if (it->conversation >= 0) p.session_id = session_base + (uint64_t)it->conversation;
            p.on_event = on_event;
            p.user = &ctx[pick];
            s->state = 1;
            rp.in_flight++;
            if (rp.in_flight > out->peak_in_flight) out->peak_in_flight = rp.in_flight;
            q->sent = bench_now() - rp.t0;
            pthread_mutex_unlock(&rp.mu); /* the callback takes the lock */
            ignis_status st = ignis_engine_submit(e, &p, &s->req);
            pthread_mutex_lock(&rp.mu);
            if (st != IGNIS_OK) {
                snprintf(q->error, sizeof q->error, "%s", ignis_last_error());
                s->state = 2;
                s->req = NULL;
                rp.in_flight--;
                rp.done++;
                if (s->next_turn >= 0) rp.s[s->next_turn].release_at = bench_now() - rp.t0;
            }
            continue;
        }
        /* wait for a completion or the next arrival (at most 50 ms, for the progress line) */
        double until = next_due < INFINITY ? next_due : now + 0.05;
        if (until > now + 0.05) until = now + 0.05;
        double abs_t = rp.t0 + until;
        if (abs_t > bench_now()) {
            struct timespec ts = {(time_t)abs_t, (long)((abs_t - floor(abs_t)) * 1e9)};
            pthread_cond_timedwait(&rp.cv, &rp.mu, &ts);
        }
        if (o->progress) {
            int d = rp.done;
            pthread_mutex_unlock(&rp.mu);
            bench_progress_update(&pg, d, __atomic_load_n(&rp.tokens, __ATOMIC_RELAXED));
            pthread_mutex_lock(&rp.mu);
        }
    }
    rp.stop = true;
    pthread_mutex_unlock(&rp.mu);
    if (sampling) pthread_join(th, NULL);
    if (o->on_window) o->on_window(o->hook_user, false);
    bench_progress_end(&pg);
    double last = 0;
    for (int i = 0; i < n; i++) {
        slot *s = &rp.s[i];
        bench_record *q = &out->recs[i];
        q->index = i;
        q->prefill_own = q->prefill_shared = -1;
        if (s->req) {
            fill_record(q, s->req, q->ready, q->sent);
            if (o->on_request) o->on_request(o->hook_user, s->req, q);
            ignis_request_release(s->req);
        } else {
            q->ok = false;
            q->ttft = q->e2e = q->queue = q->prefill = q->decode = -1;
            q->usage_tokens = q->cached_tokens = q->counted_tokens = -1;
        }
        if (s->done_at > last) last = s->done_at;
    }
    for (int c = 0; c < w->n_conversations; c++)
        ignis_engine_end_session(e, session_base + (uint64_t)c);
    out->duration = last;
    ignis_engine_get_stats(e, &st1);
    out->preemptions = (long long)(st1.preemptions - st0.preemptions);
    out->prefix_queries = (long long)(st1.prefix_cache_queries - st0.prefix_cache_queries);
    out->prefix_hits = (long long)(st1.prefix_cache_hits - st0.prefix_cache_hits);
    if (!st1.prefix_caching) out->prefix_queries = 0;
    pthread_mutex_destroy(&rp.mu);
    pthread_cond_destroy(&rp.cv);
    free(rp.s), free(ctx);
    return rc;
}
