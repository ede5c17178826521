/*
 * The direct single-sequence path: one sequence, its own KV blocks from the model's pool,
 * evaluated on the calling thread. Prompts longer than max_prefill_token_num are fed in
 * chunks so the activations of a long prompt never need memory for all of it at once.
 *
 * The last token a generation samples is not evaluated right away (that forward pass is
 * wasted if the caller stops there); it stays "pending" and is evaluated at the front of
 * the next eval/generate call.
 */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "model/engine_defaults.h"
#include "runtime/finish.h"
#include "runtime/model_handle.h"

struct ignis_seq {
    ignis_model *m;
    int cap;         /* max tokens */
    int n_eval;      /* tokens whose K/V are cached */
    int32_t *tokens; /* [cap] history: evaluated tokens, then possibly one pending */
    int n_tokens;    /* n_eval or n_eval + 1 */
    int32_t *blocks; /* [max_blocks] held block ids */
    int n_blocks, max_blocks;
};

ignis_status ignis_seq_create(ignis_model *m, int max_len, ignis_seq **out)
{
    *out = NULL;
    const ig_engine_cfg *e = ig_model_engine(m);
    if (max_len <= 0) max_len = e->session_len;
    if (max_len <= 0) return ig_err(IGNIS_E_ARG, "sequence length must be positive");
    ignis_seq *s = calloc(1, sizeof *s);
    if (!s) return ig_err(IGNIS_E_NOMEM, "out of memory");
    s->m = m;
    s->cap = max_len;
    s->max_blocks = (max_len + m->kv.block_len - 1) / m->kv.block_len;
    s->tokens = malloc(sizeof(int32_t) * (size_t)max_len);
    s->blocks = malloc(sizeof(int32_t) * (size_t)s->max_blocks);
    if (!s->tokens || !s->blocks) {
        ignis_seq_destroy(s);
        return ig_err(IGNIS_E_NOMEM, "out of memory for a sequence of %d tokens", max_len);
    }
    *out = s;
    return IGNIS_OK;
}

void ignis_seq_destroy(ignis_seq *s)
{
    if (!s) return;
    if (s->n_blocks) ig_kv_pool_release(&s->m->kv, s->n_blocks, s->blocks);
    free(s->tokens);
    free(s->blocks);
    free(s);
}

int ignis_seq_len(const ignis_seq *s) { return s->n_tokens; }
int ignis_seq_capacity(const ignis_seq *s) { return s->cap; }

int ignis_seq_tokens(const ignis_seq *s, const int32_t **ids)
{
    *ids = s->tokens;
    return s->n_tokens;
}

/* Keeps exactly the blocks `len` tokens need. */
static ignis_status fit_blocks(ignis_seq *s, int len)
{
    int need = (len + s->m->kv.block_len - 1) / s->m->kv.block_len;
    if (need > s->n_blocks) {
        ignis_status st = ig_kv_pool_alloc(&s->m->kv, need - s->n_blocks, s->blocks + s->n_blocks);
        if (st != IGNIS_OK) return st;
    } else if (need < s->n_blocks) {
        ig_kv_pool_release(&s->m->kv, s->n_blocks - need, s->blocks + need);
    }
    s->n_blocks = need;
    return IGNIS_OK;
}

ignis_status ignis_seq_truncate(ignis_seq *s, int len)
{
    if (len < 0 || len > s->n_tokens)
        return ig_err(IGNIS_E_ARG, "truncate to %d: the sequence holds %d tokens", len, s->n_tokens);
    s->n_tokens = len;
    if (s->n_eval > len) s->n_eval = len;
    return fit_blocks(s, s->n_eval);
}

/* Runs tokens [n_eval, n_tokens) of the history through the model. Logits rows for the
 * last `want_rows` of them go to logits (or sampled ids to out->tokens). */
static ignis_status run_pending(ignis_seq *s, float *logits, int want_rows, const ig_sample_row *sr, int32_t *tok_out)
{
    const ig_engine_cfg *e = ig_model_engine(s->m);
    int chunk = e->max_prefill_token_num > 0 ? e->max_prefill_token_num : IG_DEFAULT_MAX_PREFILL_TOKEN_NUM;
    int vocab = s->m->desc.cfg.vocab_size;
    int first_wanted = s->n_tokens - want_rows;
    IG_TRY(fit_blocks(s, s->n_tokens));
    while (s->n_eval < s->n_tokens) {
        int n = s->n_tokens - s->n_eval;
        if (n > chunk) n = chunk;
        int32_t q_start[2] = {0, n}, kv_len = s->n_eval + n;
        /* logits wanted for positions in [first_wanted, n_tokens) that fall in this chunk */
        int lo = first_wanted > s->n_eval ? first_wanted : s->n_eval;
        int nrows = kv_len - lo;
        if (nrows < 0) nrows = 0;
        int32_t *rows = malloc(sizeof(int32_t) * (size_t)(nrows > 0 ? nrows : 1));
        if (!rows) return ig_err(IGNIS_E_NOMEM, "out of memory");
        for (int i = 0; i < nrows; i++)
            rows[i] = lo - s->n_eval + i;
        ig_batch b = {1, n, s->tokens + s->n_eval, q_start, &kv_len, s->blocks, s->max_blocks, rows, nrows};
        ig_forward_out o = {NULL, NULL, NULL};
        if (nrows > 0) {
            if (logits) o.logits = logits + (size_t)(lo - first_wanted) * vocab;
            if (tok_out) {
                o.tokens = tok_out;
                o.sampling = sr;
            }
        }
        ignis_status st = s->m->backend->ops->forward(s->m->backend, &b, &o);
        free(rows);
        if (st != IGNIS_OK) return st;
        s->n_eval += n;
    }
    return IGNIS_OK;
}

static ignis_status append(ignis_seq *s, const int32_t *ids, int n)
{
    if (n < 0) return ig_err(IGNIS_E_ARG, "negative token count");
    if (s->n_tokens + n > s->cap)
        return ig_err(IGNIS_E_CAPACITY, "session length exceeded: %d tokens held + %d new > %d", s->n_tokens, n,
                      s->cap);
    int vocab = s->m->desc.cfg.vocab_size;
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab)
            return ig_err(IGNIS_E_ARG, "token id %d at position %d is outside the vocabulary [0, %d)", ids[i], i,
                          vocab);
    memcpy(s->tokens + s->n_tokens, ids, sizeof(int32_t) * (size_t)n);
    s->n_tokens += n;
    return IGNIS_OK;
}

ignis_status ignis_seq_eval(ignis_seq *s, const int32_t *ids, int n, float *logits, bool all_logits)
{
    int before = s->n_tokens;
    IG_TRY(append(s, ids, n));
    if (s->n_tokens == s->n_eval) return ig_err(IGNIS_E_ARG, "nothing to evaluate");
    int want = logits ? (all_logits ? n : 1) : 0;
    if (logits && all_logits && n == 0) want = 0;
    ignis_status st = run_pending(s, logits, want, NULL, NULL);
    if (st != IGNIS_OK) {
        /* leave the sequence as it was before the call */
        if (s->n_eval > before) s->n_eval = before;
        s->n_tokens = before;
        fit_blocks(s, s->n_eval);
    }
    return st;
}

void ignis_gen_opts_init(ignis_gen_opts *o)
{
    memset(o, 0, sizeof *o);
    ignis_sampling_init(&o->sampling);
}

ignis_status ignis_seq_generate(ignis_seq *s, const int32_t *prompt, int n_prompt, const ignis_gen_opts *opts,
                                ignis_gen_stats *stats)
{
    ignis_gen_opts defaults;
    if (!opts) {
        ignis_gen_opts_init(&defaults);
        opts = &defaults;
    }
    ignis_gen_stats st_local;
    ignis_gen_stats *st = stats ? stats : &st_local;
    memset(st, 0, sizeof *st);
    if (ignis_sampling_validate(&opts->sampling) != IGNIS_OK) return ig_err_prefix(IGNIS_E_ARG, "ignis_seq_generate: ");
    IG_TRY(append(s, prompt, n_prompt));
    if (s->n_tokens == s->n_eval)
        return ig_err(IGNIS_E_ARG, "nothing to generate from: the prompt is empty and no token is pending");
    st->prompt_tokens = s->n_tokens - s->n_eval;

    ig_sample_row row = {opts->sampling, 0, s->tokens, 0};
    const ig_config *cfg = &s->m->desc.cfg;
    ig_finish_rule rule = {cfg->eos_ids,         cfg->n_eos, opts->ignore_eos, opts->stop_ids, opts->n_stop_ids,
                           opts->max_new_tokens, s->cap};
    double t0 = ig_now(), t_first = t0;
    st->finish_reason = s->n_tokens >= s->cap ? IGNIS_FINISH_CAPACITY : IGNIS_FINISH_NONE;
    while (!st->finish_reason) {
        int32_t tok = -1;
        row.step = (uint64_t)st->generated_tokens;
        row.n_history = s->n_tokens;
        ignis_status e = run_pending(s, NULL, 1, &row, &tok);
        if (e != IGNIS_OK) {
            st->finish_reason = IGNIS_FINISH_ERROR;
            return e;
        }
        if (st->generated_tokens == 0) {
            t_first = ig_now();
            st->prefill_s = t_first - t0;
        }
        s->tokens[s->n_tokens++] = tok; /* pending until the next step evaluates it */
        st->generated_tokens++;
        int stop_cb = opts->on_token ? opts->on_token(opts->user, tok) : 0;
        st->finish_reason = ig_finish_after_token(&rule, tok, false, st->generated_tokens, s->n_tokens);
        if (stop_cb && st->finish_reason != IGNIS_FINISH_STOP) st->finish_reason = IGNIS_FINISH_CALLBACK;
    }
    st->decode_s = ig_now() - t_first;
    return IGNIS_OK;
}
