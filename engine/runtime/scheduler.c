/*
 * The scheduler thread: persistent (continuous) batching over a paged KV cache.
 *
 * Every step:
 *  1. take new requests, session ends and cancellations;
 *  2. give every running sequence its next tokens, in priority order (priority, then
 *     arrival): one token for a decoding sequence, a chunk of its prompt for one still
 *     prefilling (all chunks together at most max_prefill_token_num per step). When the
 *     KV blocks it needs are not there, idle sessions give theirs up first, then the
 *     lowest-priority running sequence is preempted: its blocks are freed and it goes
 *     back to the waiting queue with all its token ids, to be recomputed later — its
 *     output is unchanged, only delayed;
 *  3. admit waiting requests FCFS while the batch, the prefill budget and the free
 *     blocks allow (the head of the queue is never overtaken);
 *  4. run one forward over the whole batch; the backend samples one token for every
 *     sequence whose computed prefix reached its last token;
 *  5. deliver tokens, apply stop conditions, finish requests.
 * With prefix caching, full blocks are registered under a hash of every token up to
 * them once computed, and a newly admitted sequence starts from the longest cached run
 * of its leading blocks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "profile/nvtx.h"
#include "profile/step_hook.h"
#include "runtime/engine_internal.h"

static inline int blocks_for(int tokens, int bl) { return (tokens + bl - 1) / bl; }

/* ------------------------------------------------------------ sequence KV state */

static bool seq_append(ig_seqkv *kv, const int32_t *ids, int n)
{
    if (n <= 0) return true;
    if (!ig_grow((void **)&kv->tokens, &kv->cap_tokens, kv->n_tokens + n, sizeof(int32_t))) return false;
    memcpy(kv->tokens + kv->n_tokens, ids, sizeof(int32_t) * (size_t)n);
    kv->n_tokens += n;
    return true;
}

/* Drops every block reference; the tokens stay (so the sequence can be recomputed). */
static void seq_release_blocks(ignis_engine *e, ig_seqkv *kv)
{
    for (int i = 0; i < kv->n_blocks; i++)
        ig_kvm_unref(&e->kvm, kv->blocks[i]);
    kv->n_blocks = 0;
    kv->n_computed = 0;
    kv->n_registered = 0;
}

static void seq_free(ignis_engine *e, ig_seqkv *kv)
{
    seq_release_blocks(e, kv);
    free(kv->tokens);
    free(kv->blocks);
    free(kv->hashes);
    memset(kv, 0, sizeof *kv);
}

/* Chain hash of full block b (b < n_tokens / block_len); 0 on allocation failure. */
static uint64_t seq_hash(ignis_engine *e, ig_seqkv *kv, int b)
{
    int bl = e->block_len;
    if (b < kv->n_hashes) return kv->hashes[b];
    if (!ig_grow((void **)&kv->hashes, &kv->cap_hashes, b + 1, sizeof(uint64_t))) return 0;
    while (kv->n_hashes <= b) {
        int k = kv->n_hashes;
        uint64_t parent = k ? kv->hashes[k - 1] : 0;
        kv->hashes[k] = ig_pc_chain_hash(parent, kv->tokens + (size_t)k * bl, bl);
        kv->n_hashes++;
    }
    return kv->hashes[b];
}

/* Offers the newly completed full blocks to the prefix cache. */
static void seq_register(ignis_engine *e, ig_seqkv *kv)
{
    if (!e->kvm.caching) return;
    int bl = e->block_len;
    int full = kv->n_computed / bl;
    for (int b = kv->n_registered; b < full; b++) {
        uint64_t h = seq_hash(e, kv, b);
        if (!h) return; /* out of memory: simply not cached */
        uint64_t parent = b ? kv->hashes[b - 1] : 0;
        ig_kvm_register(&e->kvm, kv->blocks[b], h, parent, kv->tokens + (size_t)b * bl);
        kv->n_registered = b + 1;
    }
}

/* Starts a sequence without KV from its longest cached run of leading blocks. Always
 * leaves at least one token to compute (the forward that samples needs it): when every
 * token is cached, the last block is copied (copy-on-write) and its last slot recomputed. */
static int seq_match_prefix(ignis_engine *e, ig_seqkv *kv, int *queries)
{
    int bl = e->block_len, hits = 0;
    *queries = 0;
    if (!e->kvm.caching || kv->n_blocks != 0) return 0;
    int full = kv->n_tokens / bl;
    if (!ig_grow((void **)&kv->blocks, &kv->cap_blocks, full, sizeof(int32_t))) return 0;
    for (int b = 0; b < full; b++) {
        (*queries)++;
        uint64_t h = seq_hash(e, kv, b);
        if (!h) break;
        int blk = ig_kvm_lookup(&e->kvm, h, b ? kv->hashes[b - 1] : 0, kv->tokens + (size_t)b * bl);
        if (blk < 0) break;
        ig_kvm_ref(&e->kvm, blk);
        kv->blocks[kv->n_blocks++] = blk;
        hits++;
    }
    kv->n_computed = kv->n_blocks * bl;
    kv->n_registered = kv->n_blocks;
    if (kv->n_blocks > 0 && kv->n_computed >= kv->n_tokens) {
        int last = kv->blocks[kv->n_blocks - 1];
        int nb = ig_kvm_alloc(&e->kvm);
        ig_backend *be = e->deps.backend;
        if (nb >= 0 && be->ops->kv_copy_block(be, nb, last, bl - 1) == IGNIS_OK) {
            ig_kvm_unref(&e->kvm, last);
            kv->blocks[kv->n_blocks - 1] = nb;
            kv->n_computed = kv->n_tokens - 1;
        } else {
            if (nb >= 0) ig_kvm_unref(&e->kvm, nb);
            ig_err_clear();
            ig_kvm_unref(&e->kvm, last);
            kv->n_blocks--;
            kv->n_computed -= bl;
            hits--;
        }
        kv->n_registered = kv->n_blocks - (kv->n_computed % bl ? 1 : 0);
        if (kv->n_registered < 0) kv->n_registered = 0;
    }
    return hits;
}

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
    seq_free(e, &s->kv);
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
    seq_release_blocks(e, &v->kv);
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
    if (!a->sess) seq_free(e, &a->own);
    if (a->detok) ignis_detok_stream_free(a->detok);
    free(a->hold);
    free(a);
}

static bool hold_append(ig_active *a, const char *s, size_t n)
{
    if (!n) return true;
    if (a->hold_len + n > a->hold_cap) {
        size_t c = a->hold_cap ? a->hold_cap : 64;
        while (c < a->hold_len + n)
            c *= 2;
        char *h = realloc(a->hold, c);
        if (!h) return false;
        a->hold = h;
        a->hold_cap = c;
    }
    memcpy(a->hold + a->hold_len, s, n);
    a->hold_len += n;
    return true;
}

/* Earliest stop word occurrence in the held text, or -1. */
static long find_stop_word(const ig_active *a)
{
    const ignis_request *r = a->req;
    long best = -1;
    for (int i = 0; i < r->n_stop_words; i++) {
        const char *p = memmem(a->hold, a->hold_len, r->stop_words[i], strlen(r->stop_words[i]));
        if (p && (best < 0 || p - a->hold < best)) best = p - a->hold;
    }
    return best;
}

/* Length of the longest suffix of the held text that begins some stop word. */
static size_t stop_prefix_len(const ig_active *a)
{
    const ignis_request *r = a->req;
    size_t keep = 0;
    for (int i = 0; i < r->n_stop_words; i++) {
        size_t L = strlen(r->stop_words[i]);
        size_t k = L - 1 < a->hold_len ? L - 1 : a->hold_len;
        for (; k > keep; k--)
            if (!memcmp(a->hold + a->hold_len - k, r->stop_words[i], k)) {
                keep = k;
                break;
            }
    }
    return keep;
}

/* Ends a request that has left the queues. reason IGNIS_FINISH_ERROR uses st/msg. */
static void publish(ignis_engine *e);

/* Ends a request that has left the queues. reason IGNIS_FINISH_ERROR uses st/msg. Its
 * blocks are released and the statistics published before the last event goes out, so a
 * caller who saw the end also sees its effect on the engine. */
static void finish(ignis_engine *e, ig_active *a, int reason, ignis_status st, const char *msg)
{
    ignis_request *r = a->req;
    double now = ig_now();
    /* The session is free again before the caller hears of the end, so the next turn can
     * be submitted from the final event (or right after it). */
    if (a->sess) {
        /* After a failed step the KV of the session may be half written: recompute it. */
        if (reason == IGNIS_FINISH_ERROR) seq_release_blocks(e, &a->sess->kv);
        a->sess->active = NULL;
        a->sess->last_used = e->step_no;
        session_rec_idle(e, r->session_id, r->seqno);
    } else {
        seq_release_blocks(e, &a->own);
    }
    if (reason != IGNIS_FINISH_ERROR) {
        if (a->detok) {
            const char *piece;
            size_t len;
            if (ignis_detok_stream_flush(a->detok, &piece, &len) == IGNIS_OK) hold_append(a, piece, len);
            long k = find_stop_word(a);
            if (k >= 0) a->hold_len = (size_t)k;
        }
        e->st.requests_finished++;
        publish(e);
        ig_request_emit_finish(r, reason, a->hold, a->hold_len, now);
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
    if ((long long)kv->n_tokens + r->n_prompt >= e->seq_cap)
        return ig_err(IGNIS_E_CAPACITY,
                      "session %llu: history %d + prompt %d tokens do not fit a sequence of at most %d tokens "
                      "(session_len %d); end the session to start over",
                      (unsigned long long)r->session_id, kv->n_tokens, r->n_prompt, e->seq_cap - 1, e->session_len);
    if (kv->n_tokens + r->n_prompt == 0) return ig_err(IGNIS_E_ARG, "request: empty prompt on an empty session");
    if (!seq_append(kv, r->prompt, r->n_prompt)) return ig_err(IGNIS_E_NOMEM, "out of memory for a prompt");
    a->prompt_end = kv->n_tokens;
    if (e->deps.tok) {
        ignis_status s = ignis_detok_stream_create(e->deps.tok, r->skip_special, &a->detok);
        if (s != IGNIS_OK) return s;
    }
    a->attached = true;
    return IGNIS_OK;
}

/* Takes `need` more blocks for a (the caller made sure they are available). */
static bool take_blocks(ignis_engine *e, ig_seqkv *kv, int need)
{
    if (!ig_grow((void **)&kv->blocks, &kv->cap_blocks, kv->n_blocks + need, sizeof(int32_t))) return false;
    for (int k = 0; k < need; k++) {
        int b = ig_kvm_alloc(&e->kvm);
        if (b < 0) return false; /* the pool is shared: a direct sequence took it meanwhile */
        kv->blocks[kv->n_blocks++] = b;
    }
    return true;
}

static void preempt(ignis_engine *e, int idx)
{
    ig_active *a = e->running[idx];
    queue_remove_at(e->running, &e->n_running, idx);
    a->running = false;
    seq_release_blocks(e, a->kv);
    if (!queue_insert(&e->waiting, &e->n_waiting, &e->cap_waiting, a)) {
        fail_active(e, a, IGNIS_E_NOMEM, "%s", "out of memory re-queueing a preempted request");
        return;
    }
    a->preempted_at = e->step_no + 1;
    ig_request_note_preempt(a->req);
    e->st.preemptions++;
}

/* ------------------------------------------------------------------ step */

static void emit_token(ignis_engine *e, ig_active *a, int32_t tok)
{
    ignis_request *r = a->req;
    ig_seqkv *kv = a->kv;
    if (!seq_append(kv, &tok, 1)) {
        queue_remove(e->running, &e->n_running, a);
        fail_active(e, a, IGNIS_E_NOMEM, "%s", "out of memory appending a generated token");
        return;
    }
    int index = a->n_gen++;
    e->st.decode_tokens++;
    if (a->detok) {
        const char *piece;
        size_t len;
        if (ignis_detok_stream_push(a->detok, tok, &piece, &len) != IGNIS_OK || !hold_append(a, piece, len)) {
            queue_remove(e->running, &e->n_running, a);
            fail_active(e, a, IGNIS_E_INTERNAL, "decoding the output: %s", ignis_last_error());
            return;
        }
    }
    int reason = IGNIS_FINISH_NONE;
    for (int i = 0; i < r->n_stop_ids && !reason; i++)
        if (tok == r->stop_ids[i]) reason = IGNIS_FINISH_STOP;
    for (int i = 0; i < e->n_eos && !reason && !r->ignore_eos; i++)
        if (tok == e->eos[i]) reason = IGNIS_FINISH_STOP;
    size_t deliver = a->hold_len;
    bool cut = false;
    if (r->n_stop_words > 0) {
        long k = find_stop_word(a);
        if (k >= 0) {
            deliver = (size_t)k;
            reason = IGNIS_FINISH_STOP;
            cut = true;
        } else if (!reason) {
            deliver = a->hold_len - stop_prefix_len(a);
        }
    }
    if (!reason && r->max_new_tokens > 0 && a->n_gen >= r->max_new_tokens) reason = IGNIS_FINISH_LENGTH;
    if (!reason && kv->n_tokens >= e->seq_cap) reason = IGNIS_FINISH_CAPACITY;
    if (reason && !cut) deliver = 0; /* the finish event flushes everything */
    ig_request_emit_token(r, tok, index, a->hold, deliver, ig_now());
    if (deliver) memmove(a->hold, a->hold + deliver, a->hold_len - deliver);
    a->hold_len -= deliver;
    if (cut) {
        a->hold_len = 0;
        if (a->detok) { /* what follows the stop word is dropped */
            ignis_detok_stream_free(a->detok);
            a->detok = NULL;
        }
    }
    if (reason) {
        queue_remove(e->running, &e->n_running, a);
        finish(e, a, reason, IGNIS_OK, NULL);
    }
}

static bool ensure_step_buffers(ignis_engine *e, int n_seqs, int n_tokens, int max_blocks)
{
    if (n_tokens > e->cap_b_tokens) {
        int c = e->cap_b_tokens ? e->cap_b_tokens : 256;
        while (c < n_tokens)
            c *= 2;
        int32_t *t = realloc(e->b_tokens, sizeof(int32_t) * (size_t)c);
        if (!t) return false;
        e->b_tokens = t;
        e->cap_b_tokens = c;
    }
    if (n_seqs > e->cap_b_seqs) {
        int c = n_seqs;
        int32_t *q = realloc(e->b_qstart, sizeof(int32_t) * (size_t)(c + 1));
        if (q) e->b_qstart = q;
        int32_t *k = realloc(e->b_kvlen, sizeof(int32_t) * (size_t)c);
        if (k) e->b_kvlen = k;
        int32_t *rw = realloc(e->b_rows, sizeof(int32_t) * (size_t)c);
        if (rw) e->b_rows = rw;
        int32_t *o = realloc(e->b_out, sizeof(int32_t) * (size_t)c);
        if (o) e->b_out = o;
        ig_sample_row *sr = realloc(e->b_samp, sizeof(ig_sample_row) * (size_t)c);
        if (sr) e->b_samp = sr;
        if (!q || !k || !rw || !o || !sr) return false;
        e->cap_b_seqs = c;
    }
    long long tbl = (long long)n_seqs * max_blocks;
    if (tbl > e->cap_b_table) {
        int32_t *t = realloc(e->b_table, sizeof(int32_t) * (size_t)tbl);
        if (!t) return false;
        e->b_table = t;
        e->cap_b_table = (int)tbl;
    }
    return true;
}

/* One scheduling step and forward. Returns false when there was nothing to run. */
static bool step(ignis_engine *e)
{
    const int bl = e->block_len;
    int budget = e->max_prefill;
    int n_sched = 0;
    IG_NVTX_PUSH("schedule");

    /* 1. running sequences, highest priority first */
    for (int i = 0; i < e->n_running; i++) {
        ig_active *a = e->running[i];
        ig_seqkv *kv = a->kv;
        int remaining = kv->n_tokens - kv->n_computed;
        int n_new = remaining <= 1 ? remaining : (remaining < budget ? remaining : budget);
        if (n_new <= 0) continue;
        int need = blocks_for(kv->n_computed + n_new, bl) - kv->n_blocks;
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
            break; /* a was the last running sequence */
        }
        if (!take_blocks(e, kv, need)) continue;
        if (remaining > 1) budget -= n_new;
        a->n_new = n_new;
        e->sched[n_sched++] = a;
    }

    /* 2. admission, FCFS within priority */
    while (e->n_waiting > 0 && e->n_running < e->max_batch) {
        ig_active *a = e->waiting[0];
        /* preempted for lack of blocks a moment ago: do not thrash within the step */
        if (a->preempted_at == e->step_no + 1 && n_sched > 0) break;
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
            seq_release_blocks(e, kv);
        }
        if (kv->n_tokens - kv->n_computed > 1 && budget == 0) break;
        bool fresh = kv->n_blocks == 0;
        int queries = 0, hits = fresh ? seq_match_prefix(e, kv, &queries) : 0;
        int remaining = kv->n_tokens - kv->n_computed;
        int n_new = remaining <= 1 ? remaining : (remaining < budget ? remaining : budget);
        int need = blocks_for(kv->n_computed + n_new, bl) - kv->n_blocks;
        int reserve = e->n_running > 0 ? (e->kvm.quota / 100 > 1 ? e->kvm.quota / 100 : 1) : 0;
        while (ig_kvm_available(&e->kvm) - need < reserve && evict_idle_session(e, a->sess)) {
        }
        if (ig_kvm_available(&e->kvm) - need < reserve || !take_blocks(e, kv, need)) {
            if (fresh) seq_release_blocks(e, kv); /* give the matched prefix back */
            break;
        }
        queue_remove_at(e->waiting, &e->n_waiting, 0);
        if (!queue_insert(&e->running, &e->n_running, &e->cap_running, a)) {
            seq_release_blocks(e, kv);
            fail_active(e, a, IGNIS_E_NOMEM, "%s", "out of memory admitting a request");
            continue;
        }
        a->running = true;
        e->st.prefix_cache_queries += (uint64_t)queries;
        e->st.prefix_cache_hits += (uint64_t)hits;
        ig_request_note_admit(a->req, ig_now(), kv->n_computed, !a->admitted_once);
        a->admitted_once = true;
        if (remaining > 1) budget -= n_new;
        a->n_new = n_new;
        e->sched[n_sched++] = a;
    }
    IG_NVTX_POP();
    if (n_sched == 0) return false;

    /* 3. the batch */
    int n_tok = 0, max_blocks = 1;
    for (int s = 0; s < n_sched; s++) {
        n_tok += e->sched[s]->n_new;
        if (e->sched[s]->kv->n_blocks > max_blocks) max_blocks = e->sched[s]->kv->n_blocks;
    }
    if (!ensure_step_buffers(e, n_sched, n_tok, max_blocks)) {
        for (int s = 0; s < n_sched; s++) {
            queue_remove(e->running, &e->n_running, e->sched[s]);
            fail_active(e, e->sched[s], IGNIS_E_NOMEM, "%s", "out of memory building a batch");
        }
        return true;
    }
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
    ig_batch batch = {n_sched, n_tok, e->b_tokens, e->b_qstart, e->b_kvlen, e->b_table, max_blocks, e->b_rows, n_rows};
    ig_forward_out out = {NULL, n_rows ? e->b_out : NULL, n_rows ? e->b_samp : NULL};
    double t0 = ig_now();
    ig_backend *be = e->deps.backend;
    ig_prof_step_begin(e, &batch);
    ignis_status fs = be->ops->forward(be, &batch, &out);
    ig_prof_step_end(e, &batch);
    e->st.busy_s += ig_now() - t0;
    e->st.steps++;
    e->st.batch_size = n_sched;
    e->st.batch_tokens = n_tok;
    e->step_no++;
    if (fs != IGNIS_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ignis_last_error());
        ig_log(IGNIS_LOG_ERROR, "engine: forward of %d sequences (%d tokens) failed: %s", n_sched, n_tok, msg);
        for (int s = 0; s < n_sched; s++) {
            ig_active *a = e->sched[s];
            queue_remove(e->running, &e->n_running, a);
            if (!a->sess) seq_release_blocks(e, a->kv);
            fail_active(e, a, fs, "forward step failed: %s", msg);
        }
        return true;
    }

    /* 4. results */
    for (int s = 0; s < n_sched; s++) {
        ig_active *a = e->sched[s];
        ig_seqkv *kv = a->kv;
        bool decode = a->n_new == 1 && a->n_gen > 0 && kv->n_computed == kv->n_tokens - 1;
        if (!decode) e->st.prefill_tokens += (uint64_t)a->n_new;
        kv->n_computed += a->n_new;
        seq_register(e, kv);
    }
    IG_NVTX_PUSH("detokenize");
    for (int s = 0; s < n_sched; s++) {
        ig_active *a = e->sched[s];
        if (a->row < 0) continue;
        int32_t tok = e->b_out[a->row];
        if (tok < 0 || tok >= e->vocab) {
            queue_remove(e->running, &e->n_running, a);
            char why[64];
            snprintf(why, sizeof why, "%d", tok);
            fail_active(e, a, IGNIS_E_INTERNAL, "the backend sampled token %s, outside the vocabulary", why);
            continue;
        }
        emit_token(e, a, tok);
    }
    IG_NVTX_POP();
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
