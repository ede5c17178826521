/*
 * The scheduler thread: persistent (continuous) batching over a paged KV cache.
 *
 * Every step (step() at the end of this file) runs five phases:
 *  1. continue_running: every running sequence gets its next tokens, in priority order
 *     (priority, then arrival): one token for a decoding sequence, a chunk of its prompt
 *     for one still prefilling (all chunks together at most max_prefill_token_num per
 *     step; tokens_this_step is that rule). When the KV blocks it needs are not there,
 *     idle sessions give theirs up first, then the lowest-priority running sequence is
 *     preempted: its blocks are freed and it goes back to the waiting queue with all its
 *     token ids, to be recomputed later — its output is unchanged, only delayed;
 *  2. admit_waiting: waiting requests join FCFS while the batch, the prefill budget and
 *     the free blocks allow (the head of the queue is never overtaken);
 *  3. build_batch: the scheduled sequences as one ragged batch;
 *  4. run_batch: one forward; the backend samples one token for every sequence whose
 *     computed prefix reached its last token;
 *  5. deliver_results: tokens go out with their text (stop_text.c: decoding, stop words),
 *     and finish.c's rule ends requests.
 * Between steps the thread takes new requests, session ends and cancellations.
 * With prefix caching, full blocks are registered under a hash of every token up to
 * them once computed, and a newly admitted sequence starts from the longest cached run
 * of its leading blocks (seq_kv.c keeps each sequence's tokens and blocks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "profile/nvtx.h"
#include "profile/step_hook.h"
#include "runtime/engine_internal.h"

/* --------------------------------------------------------------- queues */

static bool before(const ig_active *a, const ig_active *b)
{
    if (a->priority != b->priority) return a->priority > b->priority;
    return a->seqno < b->seqno;
}

static bool queue_insert(ig_active ***q, int *n, int *cap, ig_active *a)
{
    if (!ig_grow((void **)q, cap, *n + 1, sizeof **q)) return false;
    int lo = 0, hi = *n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (before((*q)[mid], a))
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(*q + lo + 1, *q + lo, sizeof **q * (size_t)(*n - lo));
    (*q)[lo] = a;
    (*n)++;
    return true;
}

static void queue_remove_at(ig_active **q, int *n, int i)
{
    memmove(q + i, q + i + 1, sizeof *q * (size_t)(*n - i - 1));
    (*n)--;
}

static void queue_remove(ig_active **q, int *n, ig_active *a)
{
    for (int i = 0; i < *n; i++)
        if (q[i] == a) {
            queue_remove_at(q, n, i);
            return;
        }
}

/* ------------------------------------------------------------- sessions */

static ig_session *session_find(ignis_engine *e, uint64_t id)
{
    for (ig_session *s = e->sessions; s; s = s->next)
        if (s->id == id) return s;
    return NULL;
}

static void session_delete(ignis_engine *e, ig_session *s)
{
    for (ig_session **p = &e->sessions; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    ig_seqkv_free(e, &s->kv);
    free(s);
    e->n_sessions--;
}

/* Frees the blocks of the session used longest ago among those not running: idle ones,
 * and those whose request waits (a waiting request must not pin blocks the head of the
 * queue needs, or the two would wait for each other). `except` is the session being
 * admitted. False when there is none. */
static bool evict_idle_session(ignis_engine *e, const ig_session *except)
{
    ig_session *v = NULL;
    for (ig_session *s = e->sessions; s; s = s->next)
        if (s != except && (!s->active || !s->active->running) && s->kv.n_blocks > 0 &&
            (!v || s->last_used < v->last_used))
            v = s;
    if (!v) return false;
    ig_seqkv_release_blocks(e, &v->kv);
    return true;
}

/* The session's request `seqno` is over: the session takes a new one (unless it was
 * ended and its id reused meanwhile: that record belongs to the newer request). */
static void session_rec_idle(ignis_engine *e, uint64_t id, uint64_t seqno)
{
    pthread_mutex_lock(&e->mu);
    for (int i = 0; i < e->n_sess_recs; i++)
        if (e->sess_recs[i].id == id && e->sess_recs[i].seqno == seqno) e->sess_recs[i].inflight = false;
    pthread_mutex_unlock(&e->mu);
}

/* ------------------------------------------------------ finishing requests */

void ig_active_free(ignis_engine *e, ig_active *a)
{
    if (!a->sess) ig_seqkv_free(e, &a->own);
    ig_stop_text_free(&a->text);
    free(a);
}

static void publish(ignis_engine *e);

/* Ends a request that has left the queues. reason IGNIS_FINISH_ERROR uses st/msg. Its
 * blocks are released and the statistics published before the last event goes out, so a
 * caller who saw the end also sees its effect on the engine. */
static void finish(ignis_engine *e, ig_active *a, ignis_finish_reason reason, ignis_status st, const char *msg)
{
    ignis_request *r = a->req;
    double now = ig_now();
    /* The session is free again before the caller hears of the end, so the next turn can
     * be submitted from the final event (or right after it). */
    if (a->sess) {
        /* After a failed step the KV of the session may be half written: recompute it. */
        if (reason == IGNIS_FINISH_ERROR) ig_seqkv_release_blocks(e, &a->sess->kv);
        a->sess->active = NULL;
        a->sess->last_used = e->step_no;
        session_rec_idle(e, r->session_id, r->seqno);
    } else {
        ig_seqkv_release_blocks(e, &a->own);
    }
    if (reason != IGNIS_FINISH_ERROR) {
        ig_stop_text_finish(&a->text); /* whatever text is left goes out with the end */
        e->st.requests_finished++;
        publish(e);
        ig_request_emit_finish(r, reason, ig_stop_text_data(&a->text), ig_stop_text_ready(&a->text), now);
    } else {
        e->st.requests_failed++;
        publish(e);
        ig_request_emit_error(r, st, msg, now);
    }
    ig_request_unref(r);
    ig_active_free(e, a);
}

static void fail_active(ignis_engine *e, ig_active *a, ignis_status st, const char *fmt, const char *detail)
{
    char msg[768];
    snprintf(msg, sizeof msg, fmt, detail);
    finish(e, a, IGNIS_FINISH_ERROR, st, msg);
}

/* A running request fails: it leaves the running queue and ends with the error. */
static void fail_running(ignis_engine *e, ig_active *a, ignis_status st, const char *fmt, const char *detail)
{
    queue_remove(e->running, &e->n_running, a);
    fail_active(e, a, st, fmt, detail);
}

/* ------------------------------------------------------------ admission */

/* First admission: bind the request to its sequence (its own or its session's) and
 * append the prompt. */
static ignis_status attach(ignis_engine *e, ig_active *a)
{
    ignis_request *r = a->req;
    if (r->session_id) {
        ig_session *s = session_find(e, r->session_id);
        if (!s) {
            s = calloc(1, sizeof *s);
            if (!s) return ig_err(IGNIS_E_NOMEM, "out of memory for a session");
            s->id = r->session_id;
            s->next = e->sessions;
            e->sessions = s;
            e->n_sessions++;
        }
        if (s->active) /* submit refuses this; an end + resubmit race could still get here */
            return ig_err(IGNIS_E_STATE, "session %llu already has a request in flight",
                          (unsigned long long)r->session_id);
        s->active = a;
        a->sess = s;
        a->kv = &s->kv;
    } else {
        a->kv = &a->own;
    }
    ig_seqkv *kv = a->kv;
    if (r->session_rewind > kv->n_tokens)
        return ig_err(IGNIS_E_ARG, "session %llu: cannot rewind %d tokens, the history holds %d",
                      (unsigned long long)r->session_id, r->session_rewind, kv->n_tokens);
    if (r->session_rewind > 0) ig_seqkv_rewind(e, kv, r->session_rewind);
    if ((long long)kv->n_tokens + r->n_prompt >= e->seq_cap)
        return ig_err(IGNIS_E_CAPACITY,
                      "session %llu: history %d + prompt %d tokens do not fit a sequence of at most %d tokens "
                      "(session_len %d); end the session to start over",
                      (unsigned long long)r->session_id, kv->n_tokens, r->n_prompt, e->seq_cap - 1, e->session_len);
    if (kv->n_tokens + r->n_prompt == 0) return ig_err(IGNIS_E_ARG, "request: empty prompt on an empty session");
    if (!ig_seqkv_append(kv, r->prompt, r->n_prompt)) return ig_err(IGNIS_E_NOMEM, "out of memory for a prompt");
    a->prompt_end = kv->n_tokens;
    a->rule =
        (ig_finish_rule){e->eos, e->n_eos, r->ignore_eos, r->stop_ids, r->n_stop_ids, r->max_new_tokens, e->seq_cap};
    if (e->deps.tok) {
        /* the output continues the sequence: decode it after its last token so far */
        IG_TRY(ig_stop_text_init(&a->text, e->deps.tok, r->skip_special, kv->tokens[kv->n_tokens - 1],
                                 (const char *const *)r->stop_words, r->n_stop_words));
    }
    a->attached = true;
    return IGNIS_OK;
}

static void preempt(ignis_engine *e, int idx)
{
    ig_active *a = e->running[idx];
    queue_remove_at(e->running, &e->n_running, idx);
    a->running = false;
    ig_seqkv_release_blocks(e, a->kv);
    if (!queue_insert(&e->waiting, &e->n_waiting, &e->cap_waiting, a)) {
        fail_active(e, a, IGNIS_E_NOMEM, "%s", "out of memory re-queueing a preempted request");
        return;
    }
    a->preempted_at = e->step_no + 1;
    ig_request_note_preempt(a->req);
    e->st.preemptions++;
}

/* ------------------------------------------------------------------ step */

/* Whether a sequence's next tokens are charged to the prefill budget: more than one left
 * to compute. One token left (a decoding sequence's last sampled token) runs outside it.
 * (The statistics' prefill count, ig_active_prefill_tokens, is a different question.) */
static bool charges_budget(const ig_seqkv *kv) { return kv->n_tokens - kv->n_computed > 1; }

/* The "new tokens this step" rule. A sequence with one token left to compute runs it
 * outside the prefill budget; a prefilling one runs as much of its remaining prompt as the
 * budget left in this step allows. */
static int tokens_this_step(const ig_seqkv *kv, int budget)
{
    int remaining = kv->n_tokens - kv->n_computed;
    if (!charges_budget(kv)) return remaining;
    return remaining < budget ? remaining : budget;
}

/* Puts a into this step's batch with n_new tokens, charging prefill to the budget. */
static void schedule(ignis_engine *e, ig_active *a, int n_new, int *budget, int *n_sched)
{
    if (charges_budget(a->kv)) *budget -= n_new;
    a->n_new = n_new;
    e->sched[(*n_sched)++] = a;
}

/* Phase 1: every running sequence gets its next tokens, highest priority first. When the
 * blocks they need are missing, idle sessions give theirs up first, then the lowest-priority
 * running sequences are preempted (possibly the sequence itself). */
static void continue_running(ignis_engine *e, int *budget, int *n_sched)
{
    for (int i = 0; i < e->n_running; i++) {
        ig_active *a = e->running[i];
        ig_seqkv *kv = a->kv;
        int n_new = tokens_this_step(kv, *budget);
        if (n_new <= 0) continue;
        int need = ig_blocks_for(kv->n_computed + n_new, e->block_len) - kv->n_blocks;
        bool self = false;
        while (need > 0 && ig_kvm_available(&e->kvm) < need) {
            if (evict_idle_session(e, NULL)) continue;
            if (e->n_running - 1 == i) {
                self = true;
                break;
            }
            preempt(e, e->n_running - 1);
        }
        if (self) {
            if (i == 0) {
                /* Alone and still short: the blocks are held outside this engine. */
                char why[256];
                snprintf(why, sizeof why, "%d more blocks needed, %d obtainable of %d", need, ig_kvm_available(&e->kvm),
                         e->kvm.quota);
                queue_remove_at(e->running, &e->n_running, i);
                fail_active(e, a, IGNIS_E_CAPACITY, "KV cache exhausted (the pool is shared with direct sequences): %s",
                            why);
            } else {
                preempt(e, i);
            }
            return; /* a was the last running sequence */
        }
        if (!ig_seqkv_take_blocks(e, kv, need)) continue;
        schedule(e, a, n_new, budget, n_sched);
    }
}

/* Phase 2: waiting requests join, FCFS within priority, while the batch, the prefill
 * budget and the free blocks allow; the head of the queue is never overtaken. A newly
 * admitted sequence starts from its longest cached prefix. */
static void admit_waiting(ignis_engine *e, int *budget, int *n_sched)
{
    while (e->n_waiting > 0 && e->n_running < e->max_batch) {
        ig_active *a = e->waiting[0];
        /* preempted for lack of blocks a moment ago: do not thrash within the step */
        if (a->preempted_at == e->step_no + 1 && *n_sched > 0) return;
        if (!a->attached) {
            ignis_status s = attach(e, a);
            if (s != IGNIS_OK) {
                queue_remove_at(e->waiting, &e->n_waiting, 0);
                fail_active(e, a, s, "%s", ignis_last_error());
                continue;
            }
        }
        ig_seqkv *kv = a->kv;
        if (kv->n_computed >= kv->n_tokens) {
            /* nothing left to compute yet a token to sample (a session whose last step
             * was lost): recompute from scratch rather than rewrite a possibly shared slot */
            ig_seqkv_release_blocks(e, kv);
        }
        if (charges_budget(kv) && *budget == 0) return;
        bool fresh = kv->n_blocks == 0;
        int queries = 0, hits = fresh ? ig_seqkv_match_prefix(e, kv, &queries) : 0;
        int n_new = tokens_this_step(kv, *budget);
        int need = ig_blocks_for(kv->n_computed + n_new, e->block_len) - kv->n_blocks;
        /* with others running, keep 1% of the blocks for their decodes */
        int reserve = e->n_running > 0 ? (e->kvm.quota / 100 > 1 ? e->kvm.quota / 100 : 1) : 0;
        while (ig_kvm_available(&e->kvm) - need < reserve && evict_idle_session(e, a->sess)) {
        }
        if (ig_kvm_available(&e->kvm) - need < reserve || !ig_seqkv_take_blocks(e, kv, need)) {
            if (fresh) ig_seqkv_release_blocks(e, kv); /* give the matched prefix back */
            return;
        }
        queue_remove_at(e->waiting, &e->n_waiting, 0);
        if (!queue_insert(&e->running, &e->n_running, &e->cap_running, a)) {
            ig_seqkv_release_blocks(e, kv);
            fail_active(e, a, IGNIS_E_NOMEM, "%s", "out of memory admitting a request");
            continue;
        }
        a->running = true;
        e->st.prefix_cache_queries += (uint64_t)queries;
        e->st.prefix_cache_hits += (uint64_t)hits;
        ig_request_note_admit(a->req, ig_now(), kv->n_computed, !a->admitted_once);
        a->admitted_once = true;
        schedule(e, a, n_new, budget, n_sched);
    }
}

/* The step's token and block-table buffers, grown to the largest step seen (the
 * per-sequence ones hold max_batch from the start). */
static bool ensure_step_buffers(ignis_engine *e, int n_seqs, int n_tokens, int max_blocks)
{
    if (!ig_grow((void **)&e->b_tokens, &e->cap_b_tokens, n_tokens, sizeof(int32_t))) return false;
    long long tbl = (long long)n_seqs * max_blocks;
    if (tbl > e->cap_b_table) {
        int32_t *t = realloc(e->b_table, sizeof(int32_t) * (size_t)tbl);
        if (!t) return false;
        e->b_table = t;
        e->cap_b_table = (int)tbl;
    }
    return true;
}

/* Every scheduled request of this step fails with the same message (finish() releases
 * their blocks). */
static void fail_scheduled(ignis_engine *e, int n_sched, ignis_status st, const char *fmt, const char *detail)
{
    for (int s = 0; s < n_sched; s++)
        fail_running(e, e->sched[s], st, fmt, detail);
}

/* Phase 3: the scheduled sequences as one ragged batch — their new tokens end to end,
 * their KV lengths and block tables — and a sampling row for each sequence whose computed
 * prefix reaches its last token. False when the buffers cannot be had. */
static bool build_batch(ignis_engine *e, int n_sched, ig_batch *batch, ig_forward_out *out)
{
    int n_tok = 0, max_blocks = 1;
    for (int s = 0; s < n_sched; s++) {
        n_tok += e->sched[s]->n_new;
        if (e->sched[s]->kv->n_blocks > max_blocks) max_blocks = e->sched[s]->kv->n_blocks;
    }
    if (!ensure_step_buffers(e, n_sched, n_tok, max_blocks)) return false;
    int t = 0, n_rows = 0;
    for (int s = 0; s < n_sched; s++) {
        ig_active *a = e->sched[s];
        ig_seqkv *kv = a->kv;
        e->b_qstart[s] = t;
        memcpy(e->b_tokens + t, kv->tokens + kv->n_computed, sizeof(int32_t) * (size_t)a->n_new);
        t += a->n_new;
        e->b_kvlen[s] = kv->n_computed + a->n_new;
        int32_t *row = e->b_table + (size_t)s * max_blocks;
        memcpy(row, kv->blocks, sizeof(int32_t) * (size_t)kv->n_blocks);
        for (int k = kv->n_blocks; k < max_blocks; k++)
            row[k] = -1;
        a->row = -1;
        if (e->b_kvlen[s] == kv->n_tokens) {
            a->row = n_rows;
            e->b_rows[n_rows] = t - 1;
            e->b_samp[n_rows] = (ig_sample_row){a->req->sampling, (uint64_t)a->n_gen, kv->tokens, kv->n_tokens};
            n_rows++;
        }
    }
    e->b_qstart[n_sched] = t;
    *batch =
        (ig_batch){n_sched, n_tok, e->b_tokens, e->b_qstart, e->b_kvlen, e->b_table, max_blocks, e->b_rows, n_rows};
    *out = (ig_forward_out){NULL, n_rows ? e->b_out : NULL, n_rows ? e->b_samp : NULL};
    return true;
}

/* Phase 4: one forward over the batch; the backend samples a token for every row. */
static ignis_status run_batch(ignis_engine *e, const ig_batch *batch, ig_forward_out *out)
{
    double t0 = ig_now();
    ig_backend *be = e->deps.backend;
    ig_prof_step_begin(e, batch);
    ignis_status fs = be->ops->forward(be, batch, out);
    ig_prof_step_end(e, batch);
    e->st.busy_s += ig_now() - t0;
    e->st.steps++;
    e->st.batch_size = batch->n_seqs;
    e->st.batch_tokens = batch->n_tokens;
    e->step_no++;
    return fs;
}

/* A token generated for a: appended to its sequence, its text decoded and checked for
 * stop words, then delivered with whatever text became final; the request finishes when
 * the end-of-generation rule says so. */
static void deliver_token(ignis_engine *e, ig_active *a, int32_t tok)
{
    ignis_request *r = a->req;
    ig_seqkv *kv = a->kv;
    if (!ig_seqkv_append(kv, &tok, 1)) {
        fail_running(e, a, IGNIS_E_NOMEM, "%s", "out of memory appending a generated token");
        return;
    }
    int index = a->n_gen++;
    e->st.decode_tokens++;
    bool stop_word = false;
    if (ig_stop_text_push(&a->text, tok, &stop_word) != IGNIS_OK) {
        fail_running(e, a, IGNIS_E_INTERNAL, "decoding the output: %s", ignis_last_error());
        return;
    }
    ignis_finish_reason reason = ig_finish_after_token(&a->rule, tok, stop_word, a->n_gen, kv->n_tokens);
    /* A token ending the request for another reason leaves its text to the finish event,
     * which releases everything held back. */
    size_t n_text = !reason || stop_word ? ig_stop_text_ready(&a->text) : 0;
    ig_request_emit_token(r, tok, index, ig_stop_text_data(&a->text), n_text, ig_now());
    ig_stop_text_consume(&a->text, n_text);
    if (reason) {
        queue_remove(e->running, &e->n_running, a);
        finish(e, a, reason, IGNIS_OK, NULL);
    }
}

/* Phase 5: the computed tokens count (and full blocks go to the prefix cache), then each
 * sampled token is delivered. */
static void deliver_results(ignis_engine *e, int n_sched)
{
    for (int s = 0; s < n_sched; s++) {
        ig_active *a = e->sched[s];
        ig_seqkv *kv = a->kv;
        e->st.prefill_tokens += (uint64_t)ig_active_prefill_tokens(a);
        kv->n_computed += a->n_new;
        ig_seqkv_register(e, kv);
    }
    IG_NVTX_PUSH("detokenize");
    for (int s = 0; s < n_sched; s++) {
        ig_active *a = e->sched[s];
        if (a->row < 0) continue;
        int32_t tok = e->b_out[a->row];
        if (tok < 0 || tok >= e->vocab) {
            char why[64];
            snprintf(why, sizeof why, "%d", tok);
            fail_running(e, a, IGNIS_E_INTERNAL, "the backend sampled token %s, outside the vocabulary", why);
            continue;
        }
        deliver_token(e, a, tok);
    }
    IG_NVTX_POP();
}

/* One scheduling step and forward. Returns false when there was nothing to run. */
static bool step(ignis_engine *e)
{
    int budget = e->max_prefill, n_sched = 0;
    IG_NVTX_PUSH("schedule");
    continue_running(e, &budget, &n_sched);
    admit_waiting(e, &budget, &n_sched);
    IG_NVTX_POP();
    if (n_sched == 0) return false;

    ig_batch batch;
    ig_forward_out out;
    if (!build_batch(e, n_sched, &batch, &out)) {
        fail_scheduled(e, n_sched, IGNIS_E_NOMEM, "%s", "out of memory building a batch");
        return true;
    }
    ignis_status fs = run_batch(e, &batch, &out);
    if (fs != IGNIS_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ignis_last_error());
        ig_log(IGNIS_LOG_ERROR, "engine: forward of %d sequences (%d tokens) failed: %s", n_sched, batch.n_tokens, msg);
        fail_scheduled(e, n_sched, fs, "forward step failed: %s", msg);
        return true;
    }
    deliver_results(e, n_sched);
    return true;
}

/* ------------------------------------------------------------ thread */

static void take_cancels(ignis_engine *e)
{
    for (int i = 0; i < e->n_running; i++) {
        ig_active *a = e->running[i];
        if (atomic_load(&a->req->cancel)) {
            queue_remove_at(e->running, &e->n_running, i--);
            finish(e, a, IGNIS_FINISH_CANCELLED, IGNIS_OK, NULL);
        }
    }
    for (int i = 0; i < e->n_waiting; i++) {
        ig_active *a = e->waiting[i];
        if (atomic_load(&a->req->cancel)) {
            queue_remove_at(e->waiting, &e->n_waiting, i--);
            finish(e, a, IGNIS_FINISH_CANCELLED, IGNIS_OK, NULL);
        }
    }
}

static void end_session(ignis_engine *e, const ig_end_cmd *c)
{
    for (int i = 0; i < e->n_running; i++) {
        ig_active *a = e->running[i];
        if (a->req->session_id == c->session_id && a->seqno < c->seqno) {
            queue_remove_at(e->running, &e->n_running, i--);
            finish(e, a, IGNIS_FINISH_CANCELLED, IGNIS_OK, NULL);
        }
    }
    for (int i = 0; i < e->n_waiting; i++) {
        ig_active *a = e->waiting[i];
        if (a->req->session_id == c->session_id && a->seqno < c->seqno) {
            queue_remove_at(e->waiting, &e->n_waiting, i--);
            finish(e, a, IGNIS_FINISH_CANCELLED, IGNIS_OK, NULL);
        }
    }
    ig_session *s = session_find(e, c->session_id);
    if (s && !s->active) session_delete(e, s);
}

static void publish(ignis_engine *e)
{
    ignis_engine_stats *st = &e->st;
    st->running = e->n_running;
    st->waiting = e->n_waiting;
    st->sessions = e->n_sessions;
    st->kv_blocks_used = e->kvm.n_used;
    st->kv_blocks_cached = e->kvm.n_cached;
    st->kv_blocks_free = ig_kvm_available(&e->kvm) - e->kvm.n_cached;
    st->kv_blocks_peak_used = e->kvm.peak_used;
    pthread_mutex_lock(&e->mu);
    uint64_t submitted = e->stats.requests_submitted;
    e->stats = *st;
    e->stats.requests_submitted = submitted;
    pthread_mutex_unlock(&e->mu);
}

void *ig_scheduler_main(void *arg)
{
    ignis_engine *e = arg;
#ifdef __linux__
    pthread_setname_np(pthread_self(), "ignis-sched");
#endif
    ignis_request **batch_in = NULL;
    int cap_in = 0;
    ig_end_cmd *ends = NULL;
    int cap_ends = 0;
    bool idle_wait = false;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        if (idle_wait) {
            /* Requests wait for blocks held outside this engine (direct sequences), which
             * do not signal us: look again shortly. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 2000000;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            if (!e->stop && !e->wake && e->n_incoming == 0 && e->n_ends == 0)
                pthread_cond_timedwait(&e->cv, &e->mu, &ts);
        } else {
            while (!e->stop && !e->wake && e->n_incoming == 0 && e->n_ends == 0 && e->n_running == 0 &&
                   e->n_waiting == 0)
                pthread_cond_wait(&e->cv, &e->mu);
        }
        bool stop = e->stop;
        e->wake = false;
        int n_in = e->n_incoming, n_ends = e->n_ends;
        bool ok = ig_grow((void **)&batch_in, &cap_in, n_in, sizeof *batch_in) &&
                  ig_grow((void **)&ends, &cap_ends, n_ends, sizeof *ends);
        if (ok) {
            if (n_in) memcpy(batch_in, e->incoming, sizeof *batch_in * (size_t)n_in);
            if (n_ends) memcpy(ends, e->ends, sizeof *ends * (size_t)n_ends);
            e->n_incoming = 0;
            e->n_ends = 0;
            e->stats.waiting += n_in; /* they stay visible until the next publish */
        } else {
            n_in = n_ends = 0; /* leave them queued; retry next round */
        }
        pthread_mutex_unlock(&e->mu);

        for (int i = 0; i < n_in; i++) {
            ignis_request *r = batch_in[i];
            ig_active *a = calloc(1, sizeof *a);
            if (a) {
                a->req = r;
                a->seqno = r->seqno;
                a->priority = r->priority;
                a->row = -1;
            }
            if (!a || !queue_insert(&e->waiting, &e->n_waiting, &e->cap_waiting, a)) {
                free(a);
                ig_request_emit_error(r, IGNIS_E_NOMEM, "out of memory queueing the request", ig_now());
                e->st.requests_failed++;
                if (r->session_id) session_rec_idle(e, r->session_id, r->seqno);
                ig_request_unref(r);
                continue;
            }
        }
        for (int i = 0; i < n_ends; i++)
            end_session(e, &ends[i]);
        if (stop) break;
        take_cancels(e);
        bool ran = step(e);
        idle_wait = !ran && e->n_waiting > 0;
        publish(e);
    }
    /* shutdown: everything still here is cancelled */
    while (e->n_running > 0) {
        ig_active *a = e->running[--e->n_running];
        finish(e, a, IGNIS_FINISH_CANCELLED, IGNIS_OK, NULL);
    }
    while (e->n_waiting > 0) {
        ig_active *a = e->waiting[--e->n_waiting];
        finish(e, a, IGNIS_FINISH_CANCELLED, IGNIS_OK, NULL);
    }
    while (e->sessions)
        session_delete(e, e->sessions);
    publish(e);
    free(batch_in);
    free(ends);
    return NULL;
}
