#include "model/synthetic.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "model/synth_fn.h"
#include "model/workspace.h"

typedef struct shape {
    const char *name;
    ig_arch arch;
    const char *architecture;
    int vocab, hidden, layers, heads, kv_heads, inter, max_pos;
    double theta;
    bool qkv_bias, tie;
    ig_rope_type rope;
} shape;

/* Shapes of the real models (config.json of each), so benchmarks move the same bytes. */
static const shape k_shapes[] = {
    {"tiny", IG_ARCH_LLAMA, "LlamaForCausalLM", 512, 256, 4, 8, 4, 688, 2048, 10000.0, false, false, IG_ROPE_DEFAULT},
    {"llama2-7b", IG_ARCH_LLAMA, "LlamaForCausalLM", 32000, 4096, 32, 32, 32, 11008, 4096, 10000.0, false, false,
     IG_ROPE_DEFAULT},
    {"llama3-8b", IG_ARCH_LLAMA, "LlamaForCausalLM", 128256, 4096, 32, 32, 8, 14336, 8192, 500000.0, false, false,
     IG_ROPE_LLAMA3},
    {"internlm2-7b", IG_ARCH_INTERNLM2, "InternLM2ForCausalLM", 92544, 4096, 32, 32, 8, 14336, 32768, 1000000.0, false,
     false, IG_ROPE_DEFAULT},
    {"qwen2-7b", IG_ARCH_QWEN2, "Qwen2ForCausalLM", 152064, 3584, 28, 28, 4, 18944, 32768, 1000000.0, true, false,
     IG_ROPE_DEFAULT},
    {"llama2-70b", IG_ARCH_LLAMA, "LlamaForCausalLM", 32000, 8192, 80, 64, 8, 28672, 4096, 10000.0, false, false,
     IG_ROPE_DEFAULT},
    /* internlm-chat-20b: config "bias": false (internlm-chat-7b has q/k/v/o biases) */
    {"internlm-20b", IG_ARCH_INTERNLM, "InternLMForCausalLM", 103168, 5120, 60, 40, 40, 13824, 4096, 10000.0, false,
     false, IG_ROPE_DEFAULT},
    /* Qwen-7B-Chat: intermediate_size 22016 is both MLP branches, 11008 each; seq_length 8192 */
    {"qwen-7b", IG_ARCH_QWEN, "QWenLMHeadModel", 151936, 4096, 32, 32, 32, 11008, 8192, 10000.0, true, false,
     IG_ROPE_DEFAULT},
};

const char *ig_synthetic_names(void)
{
    return "tiny, llama2-7b, llama3-8b, internlm2-7b, qwen2-7b, llama2-70b, internlm-20b, qwen-7b";
}

static void synth(ig_tensor *t, ig_dtype dt, int ndim, int64_t d0, int64_t d1, uint64_t seed, float scale, float bias)
{
    t->dtype = dt;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim == 2 ? d1 : 0;
    t->data = NULL;
    t->synth_seed = seed;
    t->synth_scale = scale;
    t->synth_bias = bias;
    memset(&t->synth_map, 0, sizeof t->synth_map);
}

/* Seeds name the tensor by (layer, role); a rank's slice takes its elements at their
 * full-tensor indices (ig_synth_map), so all ranks and backends agree with tp 1. */
static uint64_t seed_of(int rank, int layer, int role)
{
    (void)rank;
    return ig_mix64(((uint64_t)(layer + 1) << 8) ^ (uint64_t)role);
}

static void rows_map(ig_tensor *t, int n_runs, const int64_t *len, const int64_t *full0)
{
    ig_synth_map *m = &t->synth_map;
    m->n_runs = n_runs;
    for (int k = 0; k < n_runs; k++) {
        m->run_len[k] = len[k];
        m->run_full0[k] = full0[k];
    }
    m->cols = t->ndim == 2 ? t->shape[1] : 1;
    m->col0 = 0;
    m->full_cols = m->cols;
}

static void cols_map(ig_tensor *t, int64_t col0, int64_t full_cols)
{
    ig_synth_map *m = &t->synth_map;
    m->n_runs = 1;
    m->run_len[0] = t->shape[0];
    m->run_full0[0] = 0;
    m->cols = t->shape[1];
    m->col0 = col0;
    m->full_cols = full_cols;
}

ignis_status ig_synthetic_open(const char *name, ig_dtype dtype, int tp, ig_model_desc *d)
{
    if (strncmp(name, "synthetic:", 10) == 0) name += 10;
    const shape *s = NULL;
    for (size_t i = 0; i < sizeof k_shapes / sizeof k_shapes[0]; i++)
        if (strcmp(name, k_shapes[i].name) == 0) s = &k_shapes[i];
    if (!s) return ig_err(IGNIS_E_NOT_FOUND, "synthetic:%s: unknown shape (known: %s)", name, ig_synthetic_names());
    if (dtype != IG_F32 && dtype != IG_F16 && dtype != IG_BF16) dtype = IG_F16;

    ig_config c;
    memset(&c, 0, sizeof c);
    c.arch = s->arch;
    snprintf(c.architecture, sizeof c.architecture, "%s", s->architecture);
    snprintf(c.model_type, sizeof c.model_type, "%s", ig_arch_model_type(s->arch));
    c.vocab_size = s->vocab;
    c.hidden = s->hidden;
    c.n_layers = s->layers;
    c.n_heads = s->heads;
    c.n_kv_heads = s->kv_heads;
    c.head_dim = s->hidden / s->heads;
    c.inter = s->inter;
    c.norm_eps = 1e-5f;
    c.rope.type = s->rope;
    c.rope.theta = s->theta;
    c.rope.factor = 8.0;
    c.rope.low_freq_factor = 1.0;
    c.rope.high_freq_factor = 4.0;
    c.rope.original_max_pos = 8192;
    c.max_pos = s->max_pos;
    c.tie_embeddings = s->tie;
    c.qkv_bias = s->qkv_bias;
    c.bos_id = 1;
    c.eos_ids[0] = 2;
    c.n_eos = 1;
    if (s->arch == IG_ARCH_QWEN) { /* as in Qwen-7B-Chat's config.json */
        c.seq_length = s->max_pos;
        c.use_dynamic_ntk = c.use_logn_attn = true;
    }
    IG_TRY(ig_config_validate(&c, tp));
    IG_TRY(ig_model_desc_init(d, &c, tp));
    d->source = IG_SRC_SYNTHETIC;
    d->weight_dtype = dtype;
    snprintf(d->path, sizeof d->path, "synthetic:%s", s->name);

    /* Uniform(-a, a) has std a/sqrt(3): a = sqrt(3/fan_in) gives unit-variance outputs, so
     * activations stay in range through every layer in fp16. */
    float a_h = sqrtf(3.0f / (float)c.hidden), a_i = sqrtf(3.0f / (float)c.inter);
    float a_o = sqrtf(3.0f / (float)(c.n_heads * c.head_dim));
    int qkv = ig_qkv_rows(&c, tp);
    for (int r = 0; r < tp; r++) {
        ig_weights *w = &d->ranks[r];
        /* embeddings are shared by all ranks: same seed on every rank */
        synth(&w->tok_emb, dtype, 2, c.vocab_size, c.hidden, seed_of(0, -1, 1), 1.0f, 0.0f);
        synth(&w->final_norm, IG_F32, 1, c.hidden, 0, seed_of(0, -1, 2), 0.0f, 1.0f);
        synth(&w->output, dtype, 2, d->vocab_padded / tp, c.hidden, seed_of(r, -1, 3), a_h, 0.0f);
        /* where this rank's slices sit in the full tensors (the converter's split) */
        int64_t hd = c.head_dim, qh = c.n_heads / tp * hd, kh = c.n_kv_heads / tp * hd, ih = c.inter / tp;
        int64_t qkv_len[3] = {qh, kh, kh};
        int64_t qkv_full[3] = {r * qh, (int64_t)c.n_heads * hd + r * kh,
                               (int64_t)(c.n_heads + c.n_kv_heads) * hd + r * kh};
        int64_t w13_len[2] = {ih, ih}, w13_full[2] = {r * ih, c.inter + r * ih};
        int64_t out_len[1] = {d->vocab_padded / tp}, out_full[1] = {r * (int64_t)(d->vocab_padded / tp)};
        if (tp > 1) rows_map(&w->output, 1, out_len, out_full);
        for (int l = 0; l < c.n_layers; l++) {
            ig_layer_weights *L = &w->layers[l];
            synth(&L->attn_norm, IG_F32, 1, c.hidden, 0, seed_of(0, l, 10), 0.0f, 1.0f);
            synth(&L->wqkv, dtype, 2, qkv, c.hidden, seed_of(r, l, 11), a_h, 0.0f);
            if (c.qkv_bias) synth(&L->bqkv, IG_F32, 1, qkv, 0, seed_of(r, l, 12), 0.1f, 0.0f);
            synth(&L->wo, dtype, 2, c.hidden, c.n_heads / tp * c.head_dim, seed_of(r, l, 13), a_o, 0.0f);
            if (ig_config_has_o_bias(&c)) synth(&L->bo, IG_F32, 1, c.hidden, 0, seed_of(0, l, 17), 0.1f, 0.0f);
            synth(&L->ffn_norm, IG_F32, 1, c.hidden, 0, seed_of(0, l, 14), 0.0f, 1.0f);
            synth(&L->w13, dtype, 2, 2LL * c.inter / tp, c.hidden, seed_of(r, l, 15), a_h, 0.0f);
            synth(&L->w2, dtype, 2, c.hidden, c.inter / tp, seed_of(r, l, 16), a_i, 0.0f);
            if (tp > 1) {
                rows_map(&L->wqkv, 3, qkv_len, qkv_full);
                if (c.qkv_bias) rows_map(&L->bqkv, 3, qkv_len, qkv_full);
                cols_map(&L->wo, r * qh, (int64_t)c.n_heads * hd);
                rows_map(&L->w13, 2, w13_len, w13_full);
                cols_map(&L->w2, r * ih, c.inter);
            }
        }
    }
    return IGNIS_OK;
}

void ig_synth_fill(const ig_tensor *t, int64_t begin, int64_t end, void *dst)
{
    for (int64_t i = begin; i < end; i++) {
        float v = ig_synth_elem(t->synth_seed, ig_synth_full_index(&t->synth_map, (uint64_t)i), t->synth_scale,
                                t->synth_bias);
        switch (t->dtype) {
        case IG_F32:
            ((float *)dst)[i - begin] = v;
            break;
        case IG_F16:
            ((uint16_t *)dst)[i - begin] = ig_f32_to_f16(v);
            break;
        case IG_BF16:
            ((uint16_t *)dst)[i - begin] = ig_f32_to_bf16(v);
            break;
        case IG_I32:
            ((int32_t *)dst)[i - begin] = (int32_t)v;
            break;
        }
    }
}
