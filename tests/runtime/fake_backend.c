#include "fake_backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

typedef struct fake_backend {
    ig_backend base;
    int vocab;
    int32_t *slots;  /* [n_blocks][block_len][2]: token, position (-1: empty) */
    uint32_t *stamp; /* [n_blocks][block_len]: forward count of the last write */
    fake_stats st;
    int32_t fail_token;
    int delay_us;
} fake_backend;

static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* logits of a context: row v = hash(context, v) in [-4, 4) */
static void context_logits(uint64_t h, int vocab, float *logits)
{
    for (int v = 0; v < vocab; v++)
        logits[v] =
            (float)((double)(mix(h ^ (uint64_t)v * 0x9e3779b97f4a7c15ULL) >> 11) / 9007199254740992.0 * 8.0 - 4.0);
}

static uint64_t ctx_push(uint64_t h, int32_t tok) { return mix(h * 31 + (uint64_t)(uint32_t)tok + 7); }

static int32_t pick(const float *logits, int vocab, const ig_sample_row *row)
{
    const ignis_sampling *s = &row->params;
    if (s->temperature <= 0) {
        int best = 0;
        for (int v = 1; v < vocab; v++)
            if (logits[v] > logits[best]) best = v;
        return best;
    }
    /* softmax draw with a (seed, step) uniform: deterministic like the real sampler */
    double mx = logits[0], sum = 0;
    for (int v = 1; v < vocab; v++)
        mx = logits[v] > mx ? logits[v] : mx;
    for (int v = 0; v < vocab; v++)
        sum += exp((logits[v] - mx) / s->temperature);
    double u = (double)(mix(s->seed * 0x2545F4914F6CDD1DULL + row->step + 1) >> 11) / 9007199254740992.0 * sum;
    double acc = 0;
    for (int v = 0; v < vocab; v++) {
        acc += exp((logits[v] - mx) / s->temperature);
        if (acc > u) return v;
    }
    return vocab - 1;
}

static ignis_status fk_kv_init(ig_backend *b, int block_len, int n_blocks, int *made)
{
    fake_backend *f = (fake_backend *)b;
    if (n_blocks <= 0) n_blocks = 64;
    f->slots = malloc(sizeof(int32_t) * 2 * (size_t)n_blocks * block_len);
    f->stamp = calloc((size_t)n_blocks * block_len, sizeof(uint32_t));
    if (!f->slots || !f->stamp) return ig_err(IGNIS_E_NOMEM, "fake kv");
    memset(f->slots, 0xff, sizeof(int32_t) * 2 * (size_t)n_blocks * block_len);
    b->block_len = block_len;
    b->n_blocks = n_blocks;
    *made = n_blocks;
    return IGNIS_OK;
}

static size_t fk_block_bytes(const ig_backend *b, int block_len) { return (size_t)block_len * 8; }

static ignis_status fk_forward(ig_backend *b, const ig_batch *bt, const ig_forward_out *out)
{
    fake_backend *f = (fake_backend *)b;
    int bl = b->block_len;
    if (f->delay_us) usleep((useconds_t)f->delay_us);
    f->st.forwards++;
    if (bt->n_seqs > f->st.max_batch_seqs) f->st.max_batch_seqs = bt->n_seqs;
    if (bt->n_tokens > f->st.max_batch_tokens) f->st.max_batch_tokens = bt->n_tokens;
    if (bt->q_start[0] != 0 || bt->q_start[bt->n_seqs] != bt->n_tokens)
        return ig_err(IGNIS_E_INTERNAL, "fake: q_start does not cover the batch");
    for (int i = 0; i < bt->n_tokens; i++) {
        if (bt->tokens[i] == f->fail_token)
            return ig_err(IGNIS_E_DEVICE, "fake: injected failure on token %d", f->fail_token);
        if (bt->tokens[i] < 0 || bt->tokens[i] >= f->vocab)
            return ig_err(IGNIS_E_INTERNAL, "fake: token %d out of range", bt->tokens[i]);
    }
    uint32_t stamp = (uint32_t)f->st.forwards;
    /* write K/V */
    for (int s = 0; s < bt->n_seqs; s++) {
        int q0 = bt->q_start[s], q1 = bt->q_start[s + 1], kvl = bt->kv_len[s];
        if (q1 <= q0 || kvl < q1 - q0)
            return ig_err(IGNIS_E_INTERNAL, "fake: seq %d: %d tokens, kv_len %d", s, q1 - q0, kvl);
        if ((kvl + bl - 1) / bl > bt->max_blocks)
            return ig_err(IGNIS_E_INTERNAL, "fake: seq %d: kv_len %d beyond table", s, kvl);
        for (int t = q0; t < q1; t++) {
            int pos = kvl - (q1 - t);
            int blk = bt->block_table[(size_t)s * bt->max_blocks + pos / bl];
            if (blk < 0 || blk >= b->n_blocks)
                return ig_err(IGNIS_E_INTERNAL, "fake: seq %d pos %d: block %d", s, pos, blk);
            size_t slot = (size_t)blk * bl + pos % bl;
            if (f->stamp[slot] == stamp)
                return ig_err(IGNIS_E_INTERNAL, "fake: block %d slot %d written twice in one batch", blk, pos % bl);
            f->stamp[slot] = stamp;
            f->slots[2 * slot] = bt->tokens[t];
            f->slots[2 * slot + 1] = pos;
        }
    }
    /* rows */
    float *lg = malloc(sizeof(float) * (size_t)f->vocab);
    if (!lg) return ig_err(IGNIS_E_NOMEM, "fake logits");
    for (int i = 0; i < bt->n_logits; i++) {
        int t = bt->logit_rows[i], s = 0;
        while (s + 1 <= bt->n_seqs && bt->q_start[s + 1] <= t)
            s++;
        int q1 = bt->q_start[s + 1], kvl = bt->kv_len[s];
        int pos = kvl - (q1 - t);
        uint64_t h = 0x1234;
        for (int p = 0; p <= pos; p++) {
            int blk = bt->block_table[(size_t)s * bt->max_blocks + p / bl];
            if (blk < 0 || blk >= b->n_blocks) {
                free(lg);
                return ig_err(IGNIS_E_INTERNAL, "fake: read seq %d pos %d: block %d", s, p, blk);
            }
            size_t slot = (size_t)blk * bl + p % bl;
            if (f->slots[2 * slot + 1] != p) {
                free(lg);
                return ig_err(IGNIS_E_INTERNAL, "fake: seq %d pos %d reads a slot holding position %d (stale KV)", s, p,
                              f->slots[2 * slot + 1]);
            }
            h = ctx_push(h, f->slots[2 * slot]);
        }
        context_logits(h, f->vocab, lg);
        if (out->logits) memcpy(out->logits + (size_t)i * f->vocab, lg, sizeof(float) * (size_t)f->vocab);
        if (out->tokens) out->tokens[i] = pick(lg, f->vocab, &out->sampling[i]);
    }
    free(lg);
    return IGNIS_OK;
}

static ignis_status fk_copy(ig_backend *b, int dst, int src, int n)
{
    fake_backend *f = (fake_backend *)b;
    if (dst < 0 || src < 0 || dst >= b->n_blocks || src >= b->n_blocks || n > b->block_len)
        return ig_err(IGNIS_E_INTERNAL, "fake: copy %d -> %d (%d slots)", src, dst, n);
    memcpy(f->slots + 2 * (size_t)dst * b->block_len, f->slots + 2 * (size_t)src * b->block_len,
           sizeof(int32_t) * 2 * (size_t)n);
    f->st.copies++;
    return IGNIS_OK;
}

static ignis_status fk_mem(ig_backend *b, uint64_t *fr, uint64_t *tot)
{
    *fr = 1 << 20;
    *tot = 1 << 20;
    return IGNIS_OK;
}

static void fk_destroy(ig_backend *b)
{
    fake_backend *f = (fake_backend *)b;
    free(f->slots);
    free(f->stamp);
    free(f);
}

static const ig_backend_ops fk_ops = {"fake", fk_kv_init, fk_block_bytes, fk_forward, fk_copy, fk_mem, fk_destroy};

int fake_model_init(fake_model *m, int vocab, int eos, int n_blocks, int block_len)
{
    memset(m, 0, sizeof *m);
    ig_config *c = &m->desc.cfg;
    c->vocab_size = vocab;
    c->n_eos = eos >= 0 ? 1 : 0;
    c->eos_ids[0] = eos;
    c->bos_id = -1;
    snprintf(c->architecture, sizeof c->architecture, "Fake");
    m->desc.engine.session_len = 4096;
    m->desc.engine.max_batch_size = 64;
    m->desc.engine.cache_block_seq_len = block_len;
    m->desc.engine.max_prefill_token_num = 512;
    m->desc.engine.cache_max_entry_count = n_blocks;
    fake_backend *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->base.ops = &fk_ops;
    f->base.desc = &m->desc;
    f->vocab = vocab;
    f->fail_token = -1;
    m->backend = &f->base;
    int made = 0;
    if (fk_kv_init(&f->base, block_len, n_blocks, &made) != IGNIS_OK) return -1;
    return ig_kv_pool_init(&m->pool, made, block_len) == IGNIS_OK ? 0 : -1;
}

void fake_model_free(fake_model *m)
{
    if (m->backend) m->backend->ops->destroy(m->backend);
    ig_kv_pool_destroy(&m->pool);
    memset(m, 0, sizeof *m);
}

fake_stats fake_backend_stats(const ig_backend *b) { return ((const fake_backend *)b)->st; }
void fake_backend_fail_on(ig_backend *b, int32_t token) { ((fake_backend *)b)->fail_token = token; }
void fake_backend_delay(ig_backend *b, int us) { ((fake_backend *)b)->delay_us = us; }

void fake_reference(const ig_backend *b, const int32_t *prompt, int n_prompt, int n_new, int32_t *out)
{
    const fake_backend *f = (const fake_backend *)b;
    float *lg = malloc(sizeof(float) * (size_t)f->vocab);
    uint64_t h = 0x1234;
    for (int i = 0; i < n_prompt; i++)
        h = ctx_push(h, prompt[i]);
    ig_sample_row row = {0};
    for (int k = 0; k < n_new; k++) {
        context_logits(h, f->vocab, lg);
        out[k] = pick(lg, f->vocab, &row);
        h = ctx_push(h, out[k]);
    }
    free(lg);
}
