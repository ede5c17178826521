/*
 * The CPU reference backend: the whole forward pass in fp32 over fp32/fp16/bf16 weights,
 * multithreaded, simple enough to be the oracle for the CUDA backend.
 *
 * Tensor parallelism is emulated: with a workspace split for tp ranks, every rank's slice
 * is computed in turn and the partial outputs of wo and w2 are summed (what NCCL's
 * all-reduce does on the GPUs), so `--tp N` can be checked against `--tp 1` anywhere.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"
#include "core/error.h"
#include "model/synthetic.h"

typedef struct cpu_backend {
    ig_backend base;
    ig_pool *pool;
    ig_model_desc synth_copy; /* synthetic models: materialized weights live here */
    const ig_model_desc *d;   /* the desc the forward pass reads */
    ig_cpu_kv kv;
    float *inv_freq; /* [head_dim/2] */
    float *seq_freq; /* [head_dim/2]: one sequence's table when it depends on the length (Qwen NTK) */
    /* scratch, kept across steps and grown to the largest batch seen: once a step's sizes
     * have been reached, a forward pass allocates nothing */
    void *(*alloc)(void *user, size_t bytes); /* malloc-compatible (ig_backend_opts) */
    void *alloc_user;
    float *mm_ws; /* [threads][max matmul input width]: weight rows converted to fp32 */
    size_t mm_ws_floats;
    int cap_tokens;        /* rows of the token scratch below */
    float *x, *xb, *delta; /* [cap_tokens][hidden] */
    float *qkv;            /* [cap_tokens][qkv rows of a rank] */
    float *att;            /* [cap_tokens][heads of a rank * head_dim] */
    float *gu, *h;         /* [cap_tokens][2 * inter / tp], [cap_tokens][inter / tp] */
    float *part;           /* [cap_tokens][hidden]: one rank's partial output (tp > 1) */
    int cap_logits;        /* rows of the LM-head scratch below */
    float *rowin;          /* [cap_logits][hidden]: the final-normed rows the head reads */
    float *logits;         /* [cap_logits][vocab]: when the caller wants ids, not logits */
    float *head_part;      /* [cap_logits][vocab_padded / tp]: one rank's slice (tp > 1) */
} cpu_backend;

/* count * width floats from the backend's allocator; NULL when it fails or overflows. */
static float *scratch_floats(cpu_backend *b, size_t count, size_t width, size_t *bytes)
{
    size_t n = count * width;
    if (width && n / width != count) return NULL;
    if (n > SIZE_MAX / sizeof(float)) return NULL;
    *bytes += n * sizeof(float);
    return b->alloc(b->alloc_user, n ? n * sizeof(float) : sizeof(float));
}

static void free_token_scratch(cpu_backend *b)
{
    float **all[] = {&b->x, &b->xb, &b->delta, &b->qkv, &b->att, &b->gu, &b->h, &b->part};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        free(*all[i]);
        *all[i] = NULL;
    }
    b->cap_tokens = 0;
}

static void free_logit_scratch(cpu_backend *b)
{
    float **all[] = {&b->rowin, &b->logits, &b->head_part};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        free(*all[i]);
        *all[i] = NULL;
    }
    b->cap_logits = 0;
}

static ignis_status grow_token_scratch(cpu_backend *b, int n)
{
    if (n <= b->cap_tokens) return IGNIS_OK;
    free_token_scratch(b);
    const ig_config *c = &b->d->cfg;
    int tp = b->d->tp;
    size_t N = (size_t)n, bytes = 0, H = (size_t)c->hidden, inter = (size_t)(c->inter / tp);
    b->x = scratch_floats(b, N, H, &bytes);
    b->xb = scratch_floats(b, N, H, &bytes);
    b->delta = scratch_floats(b, N, H, &bytes);
    b->qkv = scratch_floats(b, N, (size_t)ig_qkv_rows(c, tp), &bytes);
    b->att = scratch_floats(b, N, (size_t)(c->n_heads / tp) * c->head_dim, &bytes);
    b->gu = scratch_floats(b, N, 2 * inter, &bytes);
    b->h = scratch_floats(b, N, inter, &bytes);
    b->part = tp > 1 ? scratch_floats(b, N, H, &bytes) : NULL;
    if (!b->x || !b->xb || !b->delta || !b->qkv || !b->att || !b->gu || !b->h || (tp > 1 && !b->part)) {
        free_token_scratch(b);
        return ig_err(IGNIS_E_NOMEM, "CPU backend: cannot allocate %.1f MiB of scratch for a batch of %d tokens",
                      (double)bytes / 1048576.0, n);
    }
    b->cap_tokens = n;
    return IGNIS_OK;
}

static ignis_status grow_logit_scratch(cpu_backend *b, int n)
{
    if (n <= b->cap_logits) return IGNIS_OK;
    free_logit_scratch(b);
    const ig_model_desc *d = b->d;
    size_t N = (size_t)n, bytes = 0;
    b->rowin = scratch_floats(b, N, (size_t)d->cfg.hidden, &bytes);
    b->logits = scratch_floats(b, N, (size_t)d->cfg.vocab_size, &bytes);
    b->head_part = d->tp > 1 ? scratch_floats(b, N, (size_t)(d->vocab_padded / d->tp), &bytes) : NULL;
    if (!b->rowin || !b->logits || (d->tp > 1 && !b->head_part)) {
        free_logit_scratch(b);
        return ig_err(IGNIS_E_NOMEM, "CPU backend: cannot allocate %.1f MiB of scratch for %d rows of logits",
                      (double)bytes / 1048576.0, n);
    }
    b->cap_logits = n;
    return IGNIS_OK;
}

/* ---- synthetic weights are generated once into host buffers */

typedef struct fill_ctx {
    const ig_tensor *t;
    void *dst;
} fill_ctx;

static void fill_range(void *arg, int begin, int end, int worker)
{
    (void)worker;
    fill_ctx *f = arg;
    int64_t n = ig_tensor_numel(f->t), per = (n + 1023) / 1024;
    for (int c = begin; c < end; c++) {
        int64_t b = c * per, e = b + per < n ? b + per : n;
        if (b < e) ig_synth_fill(f->t, b, e, (char *)f->dst + b * (int64_t)ig_dtype_size(f->t->dtype));
    }
}

static ignis_status materialize(cpu_backend *b, ig_model_desc *dst, ig_tensor *t)
{
    if (!ig_tensor_present(t) || t->data) return IGNIS_OK;
    void *p = ig_model_desc_alloc(dst, ig_tensor_bytes(t));
    if (!p)
        return ig_err(IGNIS_E_NOMEM, "CPU backend: cannot allocate %.1f MiB for a synthetic weight tensor",
                      (double)ig_tensor_bytes(t) / 1048576.0);
    fill_ctx f = {t, p};
    ig_pool_run(b->pool, 1024, 1, fill_range, &f);
    t->data = p;
    return IGNIS_OK;
}

static ignis_status materialize_all(cpu_backend *b, const ig_model_desc *src, const ig_backend_opts *o)
{
    ig_model_desc *m = &b->synth_copy;
    IG_TRY(ig_model_desc_init(m, &src->cfg, src->tp));
    m->source = src->source;
    m->weight_dtype = src->weight_dtype;
    m->engine = src->engine;
    for (int r = 0; r < src->tp; r++) {
        ig_weights *w = &m->ranks[r];
        ig_layer_weights *layers = w->layers;
        *w = src->ranks[r];
        w->layers = layers;
        memcpy(layers, src->ranks[r].layers, sizeof(ig_layer_weights) * (size_t)src->cfg.n_layers);
        IG_TRY(materialize(b, m, &w->tok_emb));
        IG_TRY(materialize(b, m, &w->final_norm));
        IG_TRY(materialize(b, m, &w->output));
        for (int l = 0; l < src->cfg.n_layers; l++) {
            ig_layer_weights *L = &layers[l];
            ig_tensor *ts[] = {&L->attn_norm, &L->wqkv, &L->bqkv, &L->wo, &L->bo, &L->ffn_norm, &L->w13, &L->w2};
            for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++)
                IG_TRY(materialize(b, m, ts[k]));
            if (o && o->progress)
                o->progress(o->progress_user, "generate", (uint64_t)l + 1, (uint64_t)src->cfg.n_layers);
        }
    }
    return IGNIS_OK;
}

/* ---- backend ops */

static size_t cpu_kv_block_bytes(const ig_backend *base, int block_len)
{
    const ig_config *c = &base->desc->cfg;
    return sizeof(float) * 2 * (size_t)c->n_layers * c->n_kv_heads * (size_t)block_len * c->head_dim;
}

static ignis_status cpu_mem_info(ig_backend *base, uint64_t *free_b, uint64_t *total_b)
{
    (void)base;
    long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES), ps = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || ps <= 0) return ig_err(IGNIS_E_INTERNAL, "cannot read the host memory size");
    *total_b = (uint64_t)pages * (uint64_t)ps;
    *free_b = (uint64_t)(avail > 0 ? avail : 0) * (uint64_t)ps;
    return IGNIS_OK;
}

static ignis_status cpu_kv_init(ig_backend *base, int block_len, int n_blocks, int *n_made)
{
    cpu_backend *b = (cpu_backend *)base;
    if (block_len < 1) return ig_err(IGNIS_E_ARG, "cache_block_seq_len must be >= 1 (got %d)", block_len);
    size_t bb = cpu_kv_block_bytes(base, block_len);
    if (n_blocks < 1) return ig_err(IGNIS_E_ARG, "KV cache: %d blocks asked for (at least 1)", n_blocks);
    free(b->kv.data);
    /* calloc: untouched blocks cost no resident memory */
    b->kv.data = calloc((size_t)n_blocks, bb);
    if (!b->kv.data) return ig_err(IGNIS_E_NOMEM, "KV cache: cannot allocate %d blocks of %zu bytes", n_blocks, bb);
    const ig_config *c = &b->d->cfg;
    b->kv.n_blocks = n_blocks;
    b->kv.block_len = block_len;
    b->kv.n_layers = c->n_layers;
    b->kv.n_kv_heads = c->n_kv_heads;
    b->kv.head_dim = c->head_dim;
    base->block_len = block_len;
    base->n_blocks = n_blocks;
    if (n_made) *n_made = n_blocks;
    return IGNIS_OK;
}

static ignis_status cpu_kv_copy_block(ig_backend *base, int dst, int src, int n)
{
    cpu_backend *b = (cpu_backend *)base;
    const ig_cpu_kv *kv = &b->kv;
    if (dst < 0 || dst >= kv->n_blocks || src < 0 || src >= kv->n_blocks || n < 0 || n > kv->block_len)
        return ig_err(IGNIS_E_ARG, "kv_copy_block(%d <- %d, %d slots) out of range", dst, src, n);
    for (int l = 0; l < kv->n_layers; l++)
        for (int w = 0; w < 2; w++)
            for (int h = 0; h < kv->n_kv_heads; h++)
                memcpy(ig_cpu_kv_at(kv, dst, l, w, h, 0), ig_cpu_kv_at(kv, src, l, w, h, 0),
                       sizeof(float) * (size_t)n * kv->head_dim);
    return IGNIS_OK;
}

static ignis_status check_batch(const cpu_backend *b, const ig_batch *bt)
{
    if (!b->kv.data) return ig_err(IGNIS_E_STATE, "CPU backend: forward before kv_init");
    return ig_batch_check(bt, b->d->cfg.vocab_size, b->kv.block_len, b->kv.n_blocks);
}

/* y = x W^T (+ bias) with the backend's conversion workspace. */
static ignis_status matmul(cpu_backend *b, float *y, int ldy, const float *x, int n, const ig_tensor *w,
                           const float *bias)
{
    return ig_cpu_matmul(b->pool, b->mm_ws, b->mm_ws_floats, y, ldy, x, n, w, bias);
}

/* The RoPE table of a sequence now kv_len tokens long: the model's fixed one, or, once the
 * length grows the base (HF's dynamic NTK past max_pos, Qwen's past seq_length), the table
 * ig_rope_inv_freq makes for that length. */
static const float *seq_inv_freq(cpu_backend *b, int kv_len)
{
    const ig_config *c = &b->d->cfg;
    bool hf_dynamic = c->rope.type == IG_ROPE_DYNAMIC && c->max_pos > 0 && kv_len > c->max_pos;
    if (!hf_dynamic && ig_qwen_ntk_alpha(c, kv_len) == 1.0) return b->inv_freq;
    ig_rope_inv_freq(c, kv_len, b->seq_freq);
    return b->seq_freq;
}

/* Qwen's log-n attention: scales the query of a position past seq_length. */
static void logn_scale_q(const ig_config *c, float *q, int n, int pos)
{
    float s = ig_logn_scale(c, pos);
    if (s == 1.0f) return;
    for (int i = 0; i < n; i++)
        q[i] *= s;
}

/* InternLM's o_proj bias, added once to the all-reduced attention output of n tokens. */
static void add_bias_rows(float *x, const ig_tensor *bias, int n, int H)
{
    if (!ig_tensor_present(bias)) return;
    const float *bb = bias->data;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < H; i++)
            x[(size_t)t * H + i] += bb[i];
}

/* One rank's attention block for all tokens: x (normed) -> delta (partial wo output). */
static ignis_status attention_rank(cpu_backend *b, const ig_batch *bt, int layer, int rank, float *delta)
{
    const ig_model_desc *d = b->d;
    const ig_config *c = &d->cfg;
    const ig_layer_weights *L = &d->ranks[rank].layers[layer];
    int tp = d->tp, hd = c->head_dim, nh = c->n_heads / tp, nkv = c->n_kv_heads / tp;
    int rows = ig_qkv_rows(c, tp), n = bt->n_tokens;
    IG_TRY(matmul(b, b->qkv, rows, b->xb, n, &L->wqkv, c->qkv_bias ? L->bqkv.data : NULL));
    for (int s = 0; s < bt->n_seqs; s++) {
        int t0 = bt->q_start[s], t1 = bt->q_start[s + 1];
        int pos0 = bt->kv_len[s] - (t1 - t0);
        const int32_t *table = bt->block_table + (size_t)s * bt->max_blocks;
        const float *inv_freq = seq_inv_freq(b, bt->kv_len[s]);
        for (int t = t0; t < t1; t++) {
            int pos = pos0 + (t - t0);
            float *q = b->qkv + (size_t)t * rows, *k = q + (size_t)nh * hd, *v = k + (size_t)nkv * hd;
            ig_cpu_rope(q, nh, hd, pos, inv_freq);
            ig_cpu_rope(k, nkv, hd, pos, inv_freq);
            logn_scale_q(c, q, nh * hd, pos);
            int blk = table[pos / b->kv.block_len], slot = pos % b->kv.block_len;
            for (int h = 0; h < nkv; h++) {
                memcpy(ig_cpu_kv_at(&b->kv, blk, layer, 0, rank * nkv + h, slot), k + (size_t)h * hd,
                       sizeof(float) * hd);
                memcpy(ig_cpu_kv_at(&b->kv, blk, layer, 1, rank * nkv + h, slot), v + (size_t)h * hd,
                       sizeof(float) * hd);
            }
        }
        ig_cpu_attn_args a = {&b->kv,  layer,
                              table,   pos0,
                              t1 - t0, nh,
                              nkv,     rank * nkv,
                              hd,      b->qkv + (size_t)t0 * rows,
                              rows,    b->att + (size_t)t0 * nh * hd,
                              nh * hd};
        ig_cpu_attention(b->pool, &a);
    }
    return matmul(b, delta, c->hidden, b->att, n, &L->wo, NULL);
}

static ignis_status ffn_rank(cpu_backend *b, int n, int layer, int rank, float *delta)
{
    const ig_config *c = &b->d->cfg;
    const ig_layer_weights *L = &b->d->ranks[rank].layers[layer];
    int inter = c->inter / b->d->tp;
    IG_TRY(matmul(b, b->gu, 2 * inter, b->xb, n, &L->w13, NULL));
    ig_cpu_silu_mul(b->h, b->gu, n, inter);
    return matmul(b, delta, c->hidden, b->h, n, &L->w2, NULL);
}

/* Sums rank partials into acc (the emulated all-reduce). */
static void accumulate(float *acc, const float *part, size_t n, bool first)
{
    if (first)
        memcpy(acc, part, sizeof(float) * n);
    else
        for (size_t i = 0; i < n; i++)
            acc[i] += part[i];
}

/* LM head over the wanted rows of b->xb (final-normed) into logits [n_logits][vocab]:
 * each rank's vocabulary slice in turn, the padding rows past vocab dropped. */
static ignis_status lm_head(cpu_backend *b, const ig_batch *bt, float *logits)
{
    const ig_model_desc *d = b->d;
    int H = d->cfg.hidden, V = d->cfg.vocab_size, tp = d->tp, vslice = d->vocab_padded / tp;
    for (int i = 0; i < bt->n_logits; i++)
        memcpy(b->rowin + (size_t)i * H, b->xb + (size_t)bt->logit_rows[i] * H, sizeof(float) * H);
    for (int r = 0; r < tp; r++) {
        const ig_weights *w = &d->ranks[r];
        const ig_tensor *head = ig_tensor_present(&w->output) ? &w->output : &w->tok_emb;
        if (tp == 1) {
            IG_TRY(matmul(b, logits, V, b->rowin, bt->n_logits, head, NULL));
        } else {
            IG_TRY(matmul(b, b->head_part, vslice, b->rowin, bt->n_logits, head, NULL));
            for (int i = 0; i < bt->n_logits; i++)
                for (int j = 0; j < vslice && r * vslice + j < V; j++)
                    logits[(size_t)i * V + r * vslice + j] = b->head_part[(size_t)i * vslice + j];
        }
    }
    return IGNIS_OK;
}

static ignis_status cpu_forward(ig_backend *base, const ig_batch *bt, const ig_forward_out *out)
{
    cpu_backend *b = (cpu_backend *)base;
    const ig_model_desc *d = b->d;
    const ig_config *c = &d->cfg;
    IG_TRY(check_batch(b, bt));
    IG_TRY(grow_token_scratch(b, bt->n_tokens));
    IG_TRY(grow_logit_scratch(b, bt->n_logits));
    int n = bt->n_tokens, H = c->hidden, tp = d->tp;
    size_t nh = (size_t)n * H;
    float *part = tp > 1 ? b->part : b->delta;

    ig_cpu_embed(b->x, &d->ranks[0].tok_emb, bt->tokens, n);
    ig_cpu_rmsnorm(b->xb, b->x, d->ranks[0].layers[0].attn_norm.data, n, H, c->norm_eps);
    for (int l = 0; l < c->n_layers; l++) {
        for (int r = 0; r < tp; r++) {
            IG_TRY(attention_rank(b, bt, l, r, part));
            if (tp > 1) accumulate(b->delta, part, nh, r == 0);
        }
        add_bias_rows(b->delta, &d->ranks[0].layers[l].bo, n, H);
        ig_cpu_add_rmsnorm(b->x, b->delta, b->xb, d->ranks[0].layers[l].ffn_norm.data, n, H, c->norm_eps);
        for (int r = 0; r < tp; r++) {
            IG_TRY(ffn_rank(b, n, l, r, part));
            if (tp > 1) accumulate(b->delta, part, nh, r == 0);
        }
        const float *next_norm =
            l + 1 < c->n_layers ? d->ranks[0].layers[l + 1].attn_norm.data : d->ranks[0].final_norm.data;
        ig_cpu_add_rmsnorm(b->x, b->delta, b->xb, next_norm, n, H, c->norm_eps);
    }

    int V = c->vocab_size;
    float *logits = out->logits ? out->logits : b->logits;
    IG_TRY(lm_head(b, bt, logits));
    if (out->tokens)
        for (int i = 0; i < bt->n_logits; i++) {
            const ig_sample_row *sr = &out->sampling[i];
            out->tokens[i] =
                ignis_sample_logits(logits + (size_t)i * V, V, &sr->params, sr->history, sr->n_history, sr->step);
        }
    return IGNIS_OK;
}

static void cpu_destroy(ig_backend *base)
{
    cpu_backend *b = (cpu_backend *)base;
    if (!b) return;
    free_token_scratch(b);
    free_logit_scratch(b);
    free(b->mm_ws);
    free(b->kv.data);
    free(b->inv_freq);
    free(b->seq_freq);
    ig_model_desc_free(&b->synth_copy);
    ig_pool_destroy(b->pool);
    free(b);
}

static const ig_backend_ops k_cpu_ops = {
    .name = "cpu",
    .kv_init = cpu_kv_init,
    .kv_block_bytes = cpu_kv_block_bytes,
    .forward = cpu_forward,
    .kv_copy_block = cpu_kv_copy_block,
    .mem_info = cpu_mem_info,
    .destroy = cpu_destroy,
};

static void *default_alloc(void *user, size_t bytes)
{
    (void)user;
    return malloc(bytes);
}

static bool needs_materialize(const ig_model_desc *d) { return d->source == IG_SRC_SYNTHETIC; }

ignis_status ig_backend_cpu_create(const ig_model_desc *d, const ig_backend_opts *o, ig_backend **out)
{
    *out = NULL;
    if (d->cfg.head_dim > 512) return ig_err(IGNIS_E_UNSUPPORTED, "CPU backend: head_dim %d > 512", d->cfg.head_dim);
    cpu_backend *b = calloc(1, sizeof *b);
    if (!b) return ig_err(IGNIS_E_NOMEM, "out of memory");
    b->base.ops = &k_cpu_ops;
    b->base.desc = d;
    b->base.weight_dtype = d->weight_dtype;
    int threads = o ? o->threads : 0;
    if (threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        threads = c > 0 ? (int)c : 1;
    }
    if (threads > 256) threads = 256;
    b->alloc = o && o->alloc ? o->alloc : default_alloc;
    b->alloc_user = o && o->alloc ? o->alloc_user : NULL;
    b->pool = ig_pool_create(threads);
    b->inv_freq = malloc(sizeof(float) * (size_t)(d->cfg.head_dim / 2));
    b->seq_freq = malloc(sizeof(float) * (size_t)(d->cfg.head_dim / 2));
    if (b->pool) {
        /* the widest input of any matrix: hidden (wqkv, w13, head), a rank's heads (wo),
         * a rank's FFN width (w2) */
        const ig_config *c = &d->cfg;
        int in = c->hidden;
        if ((c->n_heads / d->tp) * c->head_dim > in) in = (c->n_heads / d->tp) * c->head_dim;
        if (c->inter / d->tp > in) in = c->inter / d->tp;
        size_t bytes = 0;
        b->mm_ws_floats = ig_cpu_matmul_ws_floats(b->pool, in);
        b->mm_ws = scratch_floats(b, b->mm_ws_floats, 1, &bytes);
    }
    if (!b->pool || !b->inv_freq || !b->seq_freq || !b->mm_ws) {
        cpu_destroy(&b->base);
        return ig_err(IGNIS_E_NOMEM, "CPU backend: out of memory");
    }
    ig_rope_inv_freq(&d->cfg, 0, b->inv_freq);
    b->d = d;
    if (needs_materialize(d)) {
        ignis_status s = materialize_all(b, d, o);
        if (s != IGNIS_OK) {
            cpu_destroy(&b->base);
            return s;
        }
        b->d = &b->synth_copy;
    }
    *out = &b->base;
    return IGNIS_OK;
}
