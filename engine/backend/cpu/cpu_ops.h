/*
 * cpu_ops.h — the CPU reference of every transformer operation, in fp32. Each function
 * is the twin of a CUDA kernel in kernels/ and is what the GPU tests compare against, so
 * they are written to be obviously correct first; the hot ones (matmul, attention) are
 * split over the thread pool.
 */
#ifndef IG_CPU_OPS_H
#define IG_CPU_OPS_H

#include <stdint.h>

#include "core/threadpool.h"
#include "model/model.h"

/* out[t][:] = emb[tokens[t]][:] (converted to fp32). */
void ig_cpu_embed(float *out, const ig_tensor *emb, const int32_t *tokens, int n_tokens);

/* out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, for each of n rows of dim. out may be x. */
void ig_cpu_rmsnorm(float *out, const float *x, const float *w, int n, int dim, float eps);

/* Residual add fused with the next norm: x[r] += delta[r]; out[r] = rmsnorm(x[r]) * w. */
void ig_cpu_add_rmsnorm(float *x, const float *delta, float *out, const float *w, int n, int dim, float eps);

/* Rotate-half RoPE of one token's heads, in place: for i < head_dim/2, the pair
 * (v[i], v[i + head_dim/2]) rotates by angle pos * inv_freq[i] (angle computed in fp32). */
void ig_cpu_rope(float *v, int n_heads, int head_dim, int pos, const float *inv_freq);

/* out[r][j] = silu(gu[r][j]) * gu[r][inter + j]: gu rows are [gate | up]. */
void ig_cpu_silu_mul(float *out, const float *gu, int n, int inter);

/* Floats of conversion workspace ig_cpu_matmul needs for a weight of `in` columns: one
 * fp32 row per pool worker (each converts an fp16/bf16 weight row once per use). */
size_t ig_cpu_matmul_ws_floats(const ig_pool *pool, int in);

/* y[r][o] = sum_i x[r][i] * W[o][i] (+ bias[o]); W is [out][in] fp32/fp16/bf16 host data,
 * x is [n][in], y is [n][out] with row stride ldy (>= out). ws: ws_floats floats of
 * workspace, at least ig_cpu_matmul_ws_floats(pool, in) unless W is fp32 (the caller
 * keeps it: nothing is allocated here). IGNIS_E_INTERNAL when the shapes or the
 * workspace do not fit. */
ignis_status ig_cpu_matmul(ig_pool *pool, float *ws, size_t ws_floats, float *y, int ldy, const float *x, int n,
                           const ig_tensor *w, const float *bias);

/* The paged fp32 KV pool: block b, layer l, K (kv=0) or V (kv=1), head h, slot s at
 * ((((b * n_layers + l) * 2 + kv) * n_kv_heads + h) * block_len + s) * head_dim. */
typedef struct ig_cpu_kv {
    float *data;
    int n_blocks, block_len, n_layers, n_kv_heads, head_dim;
} ig_cpu_kv;

static inline float *ig_cpu_kv_at(const ig_cpu_kv *kv, int block, int layer, int which, int head, int slot)
{
    return kv->data +
           ((((size_t)block * kv->n_layers + layer) * 2 + which) * kv->n_kv_heads + head) * kv->block_len *
               kv->head_dim +
           (size_t)slot * kv->head_dim;
}

/* Causal attention of n_tok query tokens of one sequence whose positions are
 * pos0 .. pos0 + n_tok - 1, over context positions [0, pos of the token], K/V read from
 * the blocks of `table`. q: [n_tok][n_heads][hd]; out: [n_tok][n_heads][hd]. Query head h
 * uses KV head kv_head0 + h / (n_heads / n_kv_used). */
typedef struct ig_cpu_attn_args {
    const ig_cpu_kv *kv;
    int layer;
    const int32_t *table;
    int pos0, n_tok;
    int n_heads, n_kv_used, kv_head0, head_dim;
    const float *q;
    int ldq; /* floats between tokens in q */
    float *out;
    int ldo;
} ig_cpu_attn_args;
void ig_cpu_attention(ig_pool *pool, const ig_cpu_attn_args *a);

#endif
