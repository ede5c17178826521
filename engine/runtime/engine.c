/*
 * The request API's front: creating and stopping an engine, submitting requests, ending
 * sessions, reading statistics. Everything here runs on the caller's thread and talks to
 * the scheduler thread (scheduler.c) through the queues under e->mu.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "model/engine_defaults.h"
#include "runtime/engine_internal.h"
#include "runtime/model_handle.h"

ignis_status ignis_engine_create(ignis_model *m, const ignis_engine_opts *opts, ignis_engine **out)
{
    if (out) *out = NULL;
    if (!m || !out) return ig_err(IGNIS_E_ARG, "ignis_engine_create: NULL argument");
    ig_engine_deps deps = {m->backend, &m->desc, m->tok, &m->kv};
    return ig_engine_create_deps(&deps, &m->desc.engine, opts, out);
}

static void engine_free(ignis_engine *e)
{
    ig_kvm_free(&e->kvm);
    free(e->incoming);
    free(e->ends);
    free(e->sess_recs);
    free(e->waiting);
    free(e->running);
    free(e->sched);
    free(e->b_tokens);
    free(e->b_qstart);
    free(e->b_kvlen);
    free(e->b_table);
    free(e->b_rows);
    free(e->b_out);
    free(e->b_samp);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

ignis_status ig_engine_create_deps(const ig_engine_deps *deps, const ig_engine_cfg *mc, const ignis_engine_opts *o,
                                   ignis_engine **out)
{
    *out = NULL;
    if (!deps->backend || !deps->desc || !deps->pool || !mc)
        return ig_err(IGNIS_E_ARG, "ignis_engine_create: the model has no backend or KV pool");
    if (deps->pool->n_blocks <= 0 || deps->pool->block_len <= 0)
        return ig_err(IGNIS_E_STATE, "ignis_engine_create: the model's KV pool is empty");
    ignis_engine_opts defaults;
    if (!o) {
        ignis_engine_opts_init(&defaults);
        o = &defaults;
    }
    int bl = deps->pool->block_len;
    if (o->cache_block_seq_len > 0 && o->cache_block_seq_len != bl)
        return ig_err(IGNIS_E_ARG,
                      "ignis_engine_create: cache_block_seq_len %d differs from the model's KV pool (%d tokens per "
                      "block); set it when opening the model",
                      o->cache_block_seq_len, bl);
    ignis_engine *e = calloc(1, sizeof *e);
    if (!e) return ig_err(IGNIS_E_NOMEM, "out of memory for an engine");
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    e->deps = *deps;
    e->block_len = bl;
    e->max_batch = o->max_batch_size > 0 ? o->max_batch_size : mc->max_batch_size;
    e->max_prefill = o->max_prefill_token_num > 0 ? o->max_prefill_token_num : mc->max_prefill_token_num;
    e->session_len = o->session_len > 0 ? o->session_len : mc->session_len;
    bool caching = o->enable_prefix_caching >= 0 ? o->enable_prefix_caching != 0 : mc->enable_prefix_caching;
    int quota = o->cache_max_entry_count >= 1.0 ? (int)(o->cache_max_entry_count < 1e9 ? o->cache_max_entry_count : 1e9)
                                                : deps->pool->n_blocks;
    if (e->max_batch <= 0) e->max_batch = IG_DEFAULT_MAX_BATCH_SIZE;
    if (e->max_prefill <= 0) e->max_prefill = IG_DEFAULT_MAX_PREFILL_TOKEN_NUM;
    if (e->session_len <= 0) e->session_len = IG_DEFAULT_SESSION_LEN;
    ignis_status s = ig_kvm_init(&e->kvm, deps->pool, quota, caching);
    if (s != IGNIS_OK) {
        engine_free(e);
        return s;
    }
    long long quota_tokens = (long long)e->kvm.quota * bl;
    e->seq_cap = quota_tokens < e->session_len ? (int)quota_tokens : e->session_len;
    e->vocab = deps->desc->cfg.vocab_size;
    e->eos = deps->desc->cfg.eos_ids;
    e->n_eos = deps->desc->cfg.n_eos;
    /* a step schedules at most max_batch sequences: its per-sequence arrays are sized once */
    size_t nb = (size_t)e->max_batch;
    e->sched = calloc(nb, sizeof *e->sched);
    e->b_qstart = malloc(sizeof(int32_t) * (nb + 1));
    e->b_kvlen = malloc(sizeof(int32_t) * nb);
    e->b_rows = malloc(sizeof(int32_t) * nb);
    e->b_out = malloc(sizeof(int32_t) * nb);
    e->b_samp = malloc(sizeof(ig_sample_row) * nb);
    if (!e->sched || !e->b_qstart || !e->b_kvlen || !e->b_rows || !e->b_out || !e->b_samp) {
        engine_free(e);
        return ig_err(IGNIS_E_NOMEM, "out of memory for a batch of %d", e->max_batch);
    }
    ignis_engine_stats *st = &e->st;
    st->max_batch_size = e->max_batch;
    st->max_prefill_token_num = e->max_prefill;
    st->session_len = e->session_len;
    st->cache_block_seq_len = bl;
    st->kv_blocks_total = e->kvm.quota;
    st->prefix_caching = caching;
    st->kv_blocks_free = ig_kvm_available(&e->kvm);
    e->stats = *st;

    if (pthread_create(&e->thread, NULL, ig_scheduler_main, e) != 0) {
        engine_free(e);
        return ig_err(IGNIS_E_INTERNAL, "ignis_engine_create: cannot start the scheduler thread");
    }
    e->thread_started = true;
    size_t bb = deps->backend->ops->kv_block_bytes ? deps->backend->ops->kv_block_bytes(deps->backend, bl) : 0;
    ig_log(IGNIS_LOG_INFO,
           "engine: %d KV blocks of %d tokens (%.2f MiB each, %.2f GiB) on %s; max batch %d, prefill chunk %d tokens, "
           "session_len %d, prefix caching %s",
           e->kvm.quota, bl, (double)bb / 1048576.0, (double)bb * e->kvm.quota / 1073741824.0, deps->backend->ops->name,
           e->max_batch, e->max_prefill, e->session_len, caching ? "on" : "off");
    *out = e;
    return IGNIS_OK;
}

void ig_engine_wake(ignis_engine *e)
{
    pthread_mutex_lock(&e->mu);
    e->wake = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

void ignis_engine_destroy(ignis_engine *e)
{
    if (!e) return;
    if (e->thread_started) {
        pthread_mutex_lock(&e->mu);
        e->stop = true;
        pthread_cond_signal(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
    }
    /* Requests submitted after the scheduler's last look at the queue. */
    for (int i = 0; i < e->n_incoming; i++) {
        ignis_request *r = e->incoming[i];
        ig_request_emit_finish(r, IGNIS_FINISH_CANCELLED, NULL, 0, ig_now());
        ig_request_unref(r);
    }
    e->n_incoming = 0;
    engine_free(e);
}

static ig_sess_rec *find_rec(ignis_engine *e, uint64_t id)
{
    for (int i = 0; i < e->n_sess_recs; i++)
        if (e->sess_recs[i].id == id) return &e->sess_recs[i];
    return NULL;
}

static ignis_status check_params(const ignis_engine *e, const ignis_request_params *p)
{
    if (p->prompt && p->prompt_ids) return ig_err(IGNIS_E_ARG, "request: give the prompt as text or as ids, not both");
    if (!p->prompt && p->n_prompt_ids > 0 && !p->prompt_ids)
        return ig_err(IGNIS_E_ARG, "request: n_prompt_ids is %d but prompt_ids is NULL", p->n_prompt_ids);
    if (p->n_prompt_ids < 0) return ig_err(IGNIS_E_ARG, "request: n_prompt_ids is negative (%d)", p->n_prompt_ids);
    if (p->session_rewind < 0 || (p->session_rewind > 0 && !p->session_id))
        return ig_err(IGNIS_E_ARG, "request: session_rewind %d needs a session and must not be negative",
                      p->session_rewind);
    if (p->n_stop_ids < 0 || (p->n_stop_ids > 0 && !p->stop_ids))
        return ig_err(IGNIS_E_ARG, "request: bad stop_ids (%d ids)", p->n_stop_ids);
    if (p->n_stop_words < 0 || (p->n_stop_words > 0 && !p->stop_words))
        return ig_err(IGNIS_E_ARG, "request: bad stop_words (%d words)", p->n_stop_words);
    if (p->n_stop_words > 0 && !e->deps.tok)
        return ig_err(IGNIS_E_ARG, "request: stop words need a tokenizer and this model has none (use stop ids)");
    for (int i = 0; i < p->n_stop_words; i++)
        if (!p->stop_words[i] || !p->stop_words[i][0]) return ig_err(IGNIS_E_ARG, "request: stop word %d is empty", i);
    if (ignis_sampling_validate(&p->sampling) != IGNIS_OK) return ig_err_prefix(IGNIS_E_ARG, "request: ");
    return IGNIS_OK;
}

ignis_status ignis_engine_submit(ignis_engine *e, const ignis_request_params *p, ignis_request **out)
{
    if (out) *out = NULL;
    if (!e || !p || !out) return ig_err(IGNIS_E_ARG, "ignis_engine_submit: NULL argument");
    IG_TRY(check_params(e, p));
    int32_t *ids = NULL;
    int n = 0;
    bool text_prompt = p->prompt != NULL;
    if (text_prompt) {
        if (!e->deps.tok)
            return ig_err(IGNIS_E_ARG, "request: a text prompt needs a tokenizer and this model has none");
        ignis_status s = ignis_tokenize(e->deps.tok, p->prompt, strlen(p->prompt), true, true, &ids, &n);
        if (s != IGNIS_OK) return ig_err_prefix(s, "request: tokenizing the prompt: ");
    } else {
        ids = (int32_t *)p->prompt_ids;
        n = p->n_prompt_ids;
    }
    ignis_status s = IGNIS_OK;
    long long quota_tokens = (long long)e->kvm.quota * e->block_len;
    for (int i = 0; i < n && s == IGNIS_OK; i++)
        if (ids[i] < 0 || ids[i] >= e->vocab)
            s = ig_err(IGNIS_E_ARG, "request: prompt id %d at position %d is outside the vocabulary [0, %d)", ids[i], i,
                       e->vocab);
    if (s == IGNIS_OK && n == 0 && !p->session_id) s = ig_err(IGNIS_E_ARG, "request: empty prompt");
    if (s == IGNIS_OK && n >= e->seq_cap)
        s = ig_err(IGNIS_E_CAPACITY,
                   "request: prompt of %d tokens does not fit: a sequence holds at most %d tokens (session_len %d, KV "
                   "cache %lld tokens)",
                   n, e->seq_cap - 1, e->session_len, quota_tokens);
    if (s == IGNIS_OK && p->max_new_tokens > 0 && (long long)n + p->max_new_tokens > quota_tokens)
        s = ig_err(IGNIS_E_CAPACITY,
                   "request: prompt %d + max_new_tokens %d = %lld tokens exceeds the whole KV cache (%d blocks of %d "
                   "= %lld tokens); raise --cache-max-entry-count or lower max_new_tokens",
                   n, p->max_new_tokens, (long long)n + p->max_new_tokens, e->kvm.quota, e->block_len, quota_tokens);
    ignis_request *r = NULL;
    if (s == IGNIS_OK) s = ig_request_new(p, ids, n, e->deps.tok != NULL, &r);
    if (text_prompt) free(ids);
    if (s != IGNIS_OK) return s;

    pthread_mutex_lock(&e->mu);
    if (e->stop) s = ig_err(IGNIS_E_STATE, "ignis_engine_submit: the engine is shutting down");
    ig_sess_rec *rec = NULL;
    if (s == IGNIS_OK && p->session_id) {
        rec = find_rec(e, p->session_id);
        if (rec && rec->inflight)
            s = ig_err(IGNIS_E_STATE, "request: session %llu already has a request in flight",
                       (unsigned long long)p->session_id);
        else if (!rec && !ig_grow((void **)&e->sess_recs, &e->cap_sess_recs, e->n_sess_recs + 1, sizeof *e->sess_recs))
            s = ig_err(IGNIS_E_NOMEM, "out of memory for a session");
    }
    if (s == IGNIS_OK && !ig_grow((void **)&e->incoming, &e->cap_incoming, e->n_incoming + 1, sizeof *e->incoming))
        s = ig_err(IGNIS_E_NOMEM, "out of memory queueing a request");
    if (s != IGNIS_OK) {
        pthread_mutex_unlock(&e->mu);
        ig_request_unref(r);
        ig_request_unref(r);
        return s;
    }
    r->engine = e;
    r->seqno = e->next_seqno++;
    if (p->session_id) {
        if (!rec) {
            rec = &e->sess_recs[e->n_sess_recs++];
            rec->id = p->session_id;
        }
        rec->inflight = true;
        rec->seqno = r->seqno;
    }
    e->incoming[e->n_incoming++] = r;
    e->stats.requests_submitted++;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    *out = r;
    return IGNIS_OK;
}

ignis_status ignis_engine_end_session(ignis_engine *e, uint64_t session_id)
{
    if (!e || !session_id) return ig_err(IGNIS_E_ARG, "ignis_engine_end_session: no engine or session id 0");
    pthread_mutex_lock(&e->mu);
    ig_sess_rec *rec = find_rec(e, session_id);
    if (!rec) {
        pthread_mutex_unlock(&e->mu);
        return ig_err(IGNIS_E_NOT_FOUND, "session %llu does not exist (never used, or already ended)",
                      (unsigned long long)session_id);
    }
    if (!ig_grow((void **)&e->ends, &e->cap_ends, e->n_ends + 1, sizeof *e->ends)) {
        pthread_mutex_unlock(&e->mu);
        return ig_err(IGNIS_E_NOMEM, "out of memory ending a session");
    }
    *rec = e->sess_recs[--e->n_sess_recs];
    e->ends[e->n_ends++] = (ig_end_cmd){session_id, e->next_seqno};
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return IGNIS_OK;
}

ignis_status ignis_engine_get_stats(ignis_engine *e, ignis_engine_stats *out)
{
    if (!e || !out) return ig_err(IGNIS_E_ARG, "ignis_engine_get_stats: NULL argument");
    pthread_mutex_lock(&e->mu);
    *out = e->stats;
    out->waiting += e->n_incoming;
    pthread_mutex_unlock(&e->mu);
    return IGNIS_OK;
}
