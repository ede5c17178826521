/*
 * model.h — the shared description of a model: its configuration and its weights, as
 * every producer (workspace loader, in-memory HF conversion, synthetic generator) fills
 * it and every backend (CPU, CUDA) consumes it.
 *
 * Weights are in ignis' canonical layout, whatever the source architecture:
 *  - matrices are row-major [out][in] (as in HF), so a GEMV reads each output's row
 *    contiguously;
 *  - per layer, Q, K and V are one matrix `wqkv` whose rows are [q heads | k heads | v heads]
 *    of this rank; gate and up are one matrix `w13` whose rows are [gate | up] of this rank;
 *  - RoPE is the "rotate half" form (pairs i and i + head_dim/2), which is what HF's Llama,
 *    Qwen2 and InternLM2 weights expect;
 *  - norm weights and biases are fp32; matrices are fp32, fp16 or bf16.
 * A tensor's bytes are either in host memory (`data`: an mmap of a workspace, or owned
 * buffers) or synthetic (`data == NULL`, values a pure function of `synth_seed` and the
 * element index: see synthetic.h), so a 7B synthetic model can be generated directly on
 * the GPU without ever existing on the host.
 */
#ifndef IG_MODEL_H
#define IG_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "ignis.h"
#include "model/synth_fn.h"

#define IG_MAX_EOS 8

typedef enum ig_arch {
    IG_ARCH_LLAMA = 0,
    IG_ARCH_QWEN2,
    IG_ARCH_INTERNLM2,
    IG_ARCH_INTERNLM, /* InternLM v1: Llama layout, biases on q/k/v/o */
    IG_ARCH_QWEN      /* Qwen v1: fused c_attn (with bias), dynamic NTK + log-n past seq_length */
} ig_arch;

typedef enum ig_rope_type {
    IG_ROPE_DEFAULT = 0,
    IG_ROPE_LINEAR, /* positions divided by factor */
    IG_ROPE_LLAMA3, /* Llama-3.1 frequency-dependent scaling */
    IG_ROPE_DYNAMIC /* NTK-aware: base grows past max_position_embeddings */
} ig_rope_type;

typedef struct ig_rope {
    ig_rope_type type;
    double theta;            /* rope_theta (base) */
    double factor;           /* scaling factor (linear, llama3, dynamic) */
    double low_freq_factor;  /* llama3 */
    double high_freq_factor; /* llama3 */
    int original_max_pos;    /* llama3: original_max_position_embeddings */
} ig_rope;

typedef struct ig_config {
    ig_arch arch;
    char architecture[64]; /* HF "architectures"[0] */
    char model_type[32];   /* HF "model_type" */
    int vocab_size;
    int hidden; /* hidden_size */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int inter; /* intermediate_size */
    float norm_eps;
    ig_rope rope;
    int max_pos; /* max_position_embeddings */
    bool tie_embeddings;
    bool qkv_bias;
    int bos_id; /* -1: none */
    int eos_ids[IG_MAX_EOS];
    int n_eos;
    /* Qwen (v1) long-context extrapolation, both inactive up to seq_length tokens:
     * use_dynamic_ntk grows the RoPE base per sequence (ig_qwen_ntk_alpha), use_logn_attn
     * scales the query at position p by log(p+1)/log(seq_length) (ig_logn_scale). */
    int seq_length; /* 0 for other architectures */
    bool use_dynamic_ntk;
    bool use_logn_attn;
} ig_config;

/* Engine knobs stored in the workspace and overridable at open time (LMDeploy names). */
typedef struct ig_engine_cfg {
    int session_len;
    int max_batch_size;
    double cache_max_entry_count;
    int cache_block_seq_len;
    int max_prefill_token_num;
    bool enable_prefix_caching;
    char chat_template[64];
} ig_engine_cfg;

typedef struct ig_tensor {
    ig_dtype dtype;
    int ndim;            /* 1 or 2 */
    int64_t shape[2];    /* [out][in] for matrices, [n] for vectors */
    const void *data;    /* host bytes, or NULL when synthetic */
    uint64_t synth_seed; /* synthetic: values = ig_synth_value(seed, i) * synth_scale + synth_bias */
    float synth_scale;
    float synth_bias;
    ig_synth_map synth_map; /* synthetic: this slice's place in the full tensor */
} ig_tensor;

static inline int64_t ig_tensor_numel(const ig_tensor *t)
{
    return t->ndim == 1 ? t->shape[0] : t->shape[0] * t->shape[1];
}
static inline size_t ig_tensor_bytes(const ig_tensor *t)
{
    return (size_t)ig_tensor_numel(t) * ig_dtype_size(t->dtype);
}
static inline bool ig_tensor_present(const ig_tensor *t) { return t->ndim > 0; }

typedef struct ig_layer_weights {
    ig_tensor attn_norm; /* [hidden] fp32 */
    ig_tensor wqkv;      /* [(nh + 2*nkv)/tp * head_dim][hidden] */
    ig_tensor bqkv;      /* [(nh + 2*nkv)/tp * head_dim] fp32, Qwen2 only (ndim 0 otherwise) */
    ig_tensor wo;        /* [hidden][nh/tp * head_dim] */
    ig_tensor bo;        /* [hidden] fp32, InternLM only (ndim 0 otherwise); whole on every rank,
                          * added once to the all-reduced wo output */
    ig_tensor ffn_norm;  /* [hidden] fp32 */
    ig_tensor w13;       /* [2 * inter/tp][hidden]: gate rows then up rows */
    ig_tensor w2;        /* [hidden][inter/tp] */
} ig_layer_weights;

/* One tensor-parallel rank's weights. */
typedef struct ig_weights {
    ig_tensor tok_emb;        /* [vocab][hidden] (full on every rank) */
    ig_tensor final_norm;     /* [hidden] fp32 */
    ig_tensor output;         /* [vocab_padded/tp][hidden]; ndim 0 when tied (use tok_emb) */
    ig_layer_weights *layers; /* [n_layers] */
} ig_weights;

typedef enum ig_source { IG_SRC_WORKSPACE = 0, IG_SRC_HF, IG_SRC_SYNTHETIC } ig_source;

/* Everything a backend needs to build a model. Owns its memory (mmaps or buffers). */
typedef struct ig_model_desc {
    ig_config cfg;
    ig_engine_cfg engine;
    ig_source source;
    char path[1024];          /* what was opened */
    char tokenizer_dir[1024]; /* "" when the model has no tokenizer files */
    ig_dtype weight_dtype;    /* dtype of the matrices */
    int tp;                   /* ranks the weights are split for */
    int vocab_padded;         /* vocab rounded up to a multiple of tp */
    ig_weights *ranks;        /* [tp] */

    /* ownership: released by ig_model_desc_free */
    void **owned; /* malloc'd buffers */
    int n_owned, cap_owned;
    void **maps; /* mmap'd weight files */
    size_t *map_lens;
    int n_maps;
} ig_model_desc;

/* Allocates the ranks/layers arrays for cfg (zeroed tensors). */
ignis_status ig_model_desc_init(ig_model_desc *d, const ig_config *cfg, int tp);
void ig_model_desc_free(ig_model_desc *d);
/* Allocates `bytes` owned by the desc (freed with it); NULL + error on failure. */
void *ig_model_desc_alloc(ig_model_desc *d, size_t bytes);
/* Registers an mmap the desc owns. */
ignis_status ig_model_desc_add_map(ig_model_desc *d, void *base, size_t len);

/* Checks that cfg is internally consistent (heads divide, dims positive); names the field. */
ignis_status ig_config_validate(const ig_config *cfg, int tp);
/* Checks every tensor of every rank has the canonical shape for cfg/tp. */
ignis_status ig_model_desc_validate(const ig_model_desc *d);

/* Expected shapes for rank tensors (used by the converter, loader and validator). */
int ig_qkv_rows(const ig_config *c, int tp); /* (nh + 2 nkv)/tp * head_dim */
int ig_vocab_padded(const ig_config *c, int tp);

/* Default engine knobs for a config (session_len from max_pos, LMDeploy defaults). */
void ig_engine_cfg_default(ig_engine_cfg *e, const ig_config *cfg);

/* RoPE inverse frequencies: inv_freq[i] for i in [0, head_dim/2), computed in double from
 * the rope config; every variant (default, linear, llama3) is expressed as a table, so
 * kernels take one form. `seq_len` matters only for the dynamic type and Qwen's dynamic
 * NTK (use_dynamic_ntk). Also returns the attention scale multiplier a variant may need
 * (1 for these). */
void ig_rope_inv_freq(const ig_config *c, int seq_len, float *inv_freq);

/* Qwen (v1) dynamic NTK: alpha = max(2^ceil(log2(len/seq_length) + 1) - 1, 1) for a sequence
 * of len tokens, 1 when disabled or len <= seq_length; the RoPE base becomes
 * theta * alpha^(head_dim/(head_dim-2)). As in Qwen's modeling code the sequence's length
 * at its forward decides alpha, and every position of that forward uses it. */
double ig_qwen_ntk_alpha(const ig_config *c, int len);
/* Qwen RoPE table for a sequence of len tokens: ig_rope_inv_freq, which applies the NTK base. */
void ig_qwen_inv_freq(const ig_config *c, int len, float *inv_freq);
/* Qwen (v1) log-n attention: the query at 0-based position pos is multiplied by
 * log(pos+1)/log(seq_length) past seq_length (1 otherwise, and when disabled). */
float ig_logn_scale(const ig_config *c, int pos);
/* InternLM (v1) with "bias": true has an o_proj bias besides the q/k/v ones. */
static inline bool ig_config_has_o_bias(const ig_config *c) { return c->arch == IG_ARCH_INTERNLM && c->qkv_bias; }
/* True when the forward pass needs per-sequence RoPE tables or query scales. */
bool ig_config_has_long_ctx(const ig_config *c);

#endif
