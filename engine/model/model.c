#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/error.h"
#include "model/engine_defaults.h"

ignis_status ig_model_desc_init(ig_model_desc *d, const ig_config *cfg, int tp)
{
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    d->tp = tp;
    d->vocab_padded = ig_vocab_padded(cfg, tp);
    d->ranks = calloc((size_t)tp, sizeof *d->ranks);
    if (!d->ranks) return ig_err(IGNIS_E_NOMEM, "out of memory for %d weight ranks", tp);
    for (int r = 0; r < tp; r++) {
        d->ranks[r].layers = calloc((size_t)cfg->n_layers, sizeof(ig_layer_weights));
        if (!d->ranks[r].layers) {
            ig_model_desc_free(d);
            return ig_err(IGNIS_E_NOMEM, "out of memory for %d layers", cfg->n_layers);
        }
    }
    ig_engine_cfg_default(&d->engine, cfg);
    return IGNIS_OK;
}

void ig_model_desc_free(ig_model_desc *d)
{
    if (!d) return;
    if (d->ranks)
        for (int r = 0; r < d->tp; r++)
            free(d->ranks[r].layers);
    free(d->ranks);
    for (int i = 0; i < d->n_owned; i++)
        free(d->owned[i]);
    free(d->owned);
    for (int i = 0; i < d->n_maps; i++)
        munmap(d->maps[i], d->map_lens[i]);
    free(d->maps);
    free(d->map_lens);
    memset(d, 0, sizeof *d);
}

void *ig_model_desc_alloc(ig_model_desc *d, size_t bytes)
{
    if (d->n_owned == d->cap_owned) {
        int cap = d->cap_owned ? d->cap_owned * 2 : 64;
        void **n = realloc(d->owned, (size_t)cap * sizeof *n);
        if (!n) {
            ig_err(IGNIS_E_NOMEM, "out of memory");
            return NULL;
        }
        d->owned = n;
        d->cap_owned = cap;
    }
    /* 64-byte alignment so vector loads and DMA from these buffers are aligned */
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0) {
        ig_err(IGNIS_E_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    d->owned[d->n_owned++] = p;
    return p;
}

ignis_status ig_model_desc_add_map(ig_model_desc *d, void *base, size_t len)
{
    void **m = realloc(d->maps, (size_t)(d->n_maps + 1) * sizeof *m);
    if (!m) return ig_err(IGNIS_E_NOMEM, "out of memory");
    d->maps = m;
    size_t *l = realloc(d->map_lens, (size_t)(d->n_maps + 1) * sizeof *l);
    if (!l) return ig_err(IGNIS_E_NOMEM, "out of memory");
    d->map_lens = l;
    d->maps[d->n_maps] = base;
    d->map_lens[d->n_maps] = len;
    d->n_maps++;
    return IGNIS_OK;
}

int ig_qkv_rows(const ig_config *c, int tp) { return (c->n_heads + 2 * c->n_kv_heads) / tp * c->head_dim; }

int ig_vocab_padded(const ig_config *c, int tp) { return (c->vocab_size + tp - 1) / tp * tp; }

ignis_status ig_config_validate(const ig_config *c, int tp)
{
#define POS(f)                                                                                                         \
    if (c->f <= 0) return ig_err(IGNIS_E_FORMAT, "config: %s must be positive (got %d)", #f, (int)c->f)
    POS(vocab_size);
    POS(hidden);
    POS(n_layers);
    POS(n_heads);
    POS(n_kv_heads);
    POS(head_dim);
    POS(inter);
#undef POS
    if (tp < 1) return ig_err(IGNIS_E_ARG, "tp must be >= 1 (got %d)", tp);
    if (c->n_heads % c->n_kv_heads)
        return ig_err(IGNIS_E_FORMAT, "config: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                      c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2)
        return ig_err(IGNIS_E_UNSUPPORTED, "config: head_dim %d is odd; RoPE needs pairs", c->head_dim);
    if (c->n_kv_heads % tp)
        return ig_err(IGNIS_E_UNSUPPORTED, "tp %d does not divide num_key_value_heads %d", tp, c->n_kv_heads);
    if (c->inter % tp) return ig_err(IGNIS_E_UNSUPPORTED, "tp %d does not divide intermediate_size %d", tp, c->inter);
    if (!(c->norm_eps > 0)) return ig_err(IGNIS_E_FORMAT, "config: rms_norm_eps must be positive");
    if (!(c->rope.theta > 0)) return ig_err(IGNIS_E_FORMAT, "config: rope_theta must be positive");
    return IGNIS_OK;
}

static ignis_status check_shape(const ig_tensor *t, const char *name, int rank, int layer, int ndim, int64_t d0,
                                int64_t d1, bool need_f32)
{
    char where[96];
    if (layer >= 0)
        snprintf(where, sizeof where, "rank %d layer %d %s", rank, layer, name);
    else
        snprintf(where, sizeof where, "rank %d %s", rank, name);
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        if (ndim == 2)
            return ig_err(IGNIS_E_FORMAT, "%s: expected shape [%lld, %lld], got ndim %d [%lld, %lld]", where,
                          (long long)d0, (long long)d1, t->ndim, (long long)t->shape[0], (long long)t->shape[1]);
        return ig_err(IGNIS_E_FORMAT, "%s: expected shape [%lld], got ndim %d [%lld]", where, (long long)d0, t->ndim,
                      (long long)t->shape[0]);
    }
    if (need_f32 && t->dtype != IG_F32)
        return ig_err(IGNIS_E_FORMAT, "%s: expected fp32, got %s", where, ig_dtype_str(t->dtype));
    return IGNIS_OK;
}

ignis_status ig_model_desc_validate(const ig_model_desc *d)
{
    const ig_config *c = &d->cfg;
    IG_TRY(ig_config_validate(c, d->tp));
    int tp = d->tp, hd = c->head_dim;
    for (int r = 0; r < tp; r++) {
        const ig_weights *w = &d->ranks[r];
        IG_TRY(check_shape(&w->tok_emb, "tok_embeddings", r, -1, 2, c->vocab_size, c->hidden, false));
        IG_TRY(check_shape(&w->final_norm, "norm", r, -1, 1, c->hidden, 0, true));
        if (ig_tensor_present(&w->output) || tp > 1 || !c->tie_embeddings)
            IG_TRY(check_shape(&w->output, "output", r, -1, 2, d->vocab_padded / tp, c->hidden, false));
        for (int l = 0; l < c->n_layers; l++) {
            const ig_layer_weights *L = &w->layers[l];
            IG_TRY(check_shape(&L->attn_norm, "attention_norm", r, l, 1, c->hidden, 0, true));
            IG_TRY(check_shape(&L->wqkv, "wqkv", r, l, 2, ig_qkv_rows(c, tp), c->hidden, false));
            if (c->qkv_bias) IG_TRY(check_shape(&L->bqkv, "bqkv", r, l, 1, ig_qkv_rows(c, tp), 0, true));
            IG_TRY(check_shape(&L->wo, "wo", r, l, 2, c->hidden, c->n_heads / tp * hd, false));
            if (ig_config_has_o_bias(c)) IG_TRY(check_shape(&L->bo, "bo", r, l, 1, c->hidden, 0, true));
            IG_TRY(check_shape(&L->ffn_norm, "ffn_norm", r, l, 1, c->hidden, 0, true));
            IG_TRY(check_shape(&L->w13, "w13", r, l, 2, 2LL * c->inter / tp, c->hidden, false));
            IG_TRY(check_shape(&L->w2, "w2", r, l, 2, c->hidden, c->inter / tp, false));
        }
    }
    return IGNIS_OK;
}

void ig_engine_cfg_default(ig_engine_cfg *e, const ig_config *cfg)
{
    memset(e, 0, sizeof *e);
    e->session_len = cfg->max_pos > 0 ? cfg->max_pos : IG_DEFAULT_SESSION_LEN;
    e->max_batch_size = IG_DEFAULT_MAX_BATCH_SIZE;
    e->cache_max_entry_count = IG_DEFAULT_CACHE_MAX_ENTRY_COUNT;
    e->cache_block_seq_len = IG_DEFAULT_CACHE_BLOCK_SEQ_LEN;
    e->max_prefill_token_num = IG_DEFAULT_MAX_PREFILL_TOKEN_NUM;
    e->enable_prefix_caching = IG_DEFAULT_ENABLE_PREFIX_CACHING;
    snprintf(e->chat_template, sizeof e->chat_template, "base");
}

void ig_rope_inv_freq(const ig_config *c, int seq_len, float *inv_freq)
{
    const ig_rope *r = &c->rope;
    int half = c->head_dim / 2;
    double base = r->theta;
    if (r->type == IG_ROPE_DYNAMIC && c->max_pos > 0 && seq_len > c->max_pos) {
        /* NTK-aware scaling as in HF's dynamic rope: grow the base with the length */
        double f = r->factor * seq_len / c->max_pos - (r->factor - 1.0);
        base = base * pow(f, (double)c->head_dim / (c->head_dim - 2));
    }
    if (c->use_dynamic_ntk) /* Qwen (v1): the base grows by alpha past seq_length (long_ctx.c) */
        base = base * pow(ig_qwen_ntk_alpha(c, seq_len), (double)c->head_dim / (c->head_dim - 2));
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow(base, (double)(2 * i) / c->head_dim);
        if (r->type == IG_ROPE_LINEAR) {
            f /= r->factor;
        } else if (r->type == IG_ROPE_LLAMA3) {
            /* Llama-3.1: keep high frequencies, divide low ones by factor, blend between */
            double low_wavelen = r->original_max_pos / r->low_freq_factor;
            double high_wavelen = r->original_max_pos / r->high_freq_factor;
            double wavelen = 2.0 * M_PI / f;
            if (wavelen > low_wavelen) {
                f /= r->factor;
            } else if (wavelen >= high_wavelen) {
                double smooth =
                    (r->original_max_pos / wavelen - r->low_freq_factor) / (r->high_freq_factor - r->low_freq_factor);
                f = (1.0 - smooth) * f / r->factor + smooth * f;
            }
        }
        inv_freq[i] = (float)f;
    }
}
