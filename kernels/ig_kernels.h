/*
 * ig_kernels.h — C entry points of ignis' CUDA kernels (launchers), called by the CUDA
 * backend's host code and the GPU tests. Each launcher enqueues on `stream` and returns the
 * launch error (cudaSuccess when the launch was accepted).
 *
 * Conventions shared by all kernels:
 *  - `dt` is the storage type of weights, activations fed to GEMMs and the KV cache:
 *    IG_F16 or IG_BF16. All arithmetic is fp32.
 *  - The residual stream x and every GEMM output are fp32 row-major [rows][width].
 *  - Paged KV pool layout (documented for the backend in cuda_internal.h): element
 *    (block b, layer l, kv k (0 = K, 1 = V), kv head h, slot s, dim d) lives at
 *      ((((b * n_layers + l) * 2 + k) * n_kv_heads + h) * block_len + s) * head_dim + d
 *    so one block id covers every layer, and each (block, layer, K|V, head) is one
 *    contiguous [block_len][head_dim] tile that attention loads with 16-byte vectors.
 */
#ifndef IG_KERNELS_H
#define IG_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "core/dtype.h"
#include "model/synth_fn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ig_kv_desc {
    void *pool; /* base of the pool (dt elements) */
    int n_layers;
    int n_kv_heads;
    int head_dim;
    int block_len;
} ig_kv_desc;

/* Per-step batch metadata on the device (see backend.h's ig_batch). */
typedef struct ig_batch_dev {
    const int32_t *tokens;      /* [n_tokens] */
    const int32_t *tok_pos;     /* [n_tokens] position of each token in its sequence */
    const int32_t *tok_seq;     /* [n_tokens] sequence index of each token */
    const int32_t *q_start;     /* [n_seqs + 1] */
    const int32_t *kv_len;      /* [n_seqs] */
    const int32_t *block_table; /* [n_seqs][max_blocks] */
    int max_blocks;
    int n_seqs;
    int n_tokens;
} ig_batch_dev;

/* Programmatic dependent launch (common.cuh's ig_launch) for every later launch on
 * `device`: on (the default) or off, to measure what the overlap buys. A per-device
 * setting, because launchers take only a stream: every backend on the device shares it.
 * Function attributes that launchers need (dynamic shared memory above 48 KiB) are
 * raised per device on first use (ig_smem_allow), so no other per-device set-up exists.
 * cudaErrorInvalidDevice for an ordinal past dev_flags.h's IG_MAX_DEVICES. */
cudaError_t ig_kernels_set_pdl(int device, int on);

/* Synthetic weights: dst[i] = round_dst(round_src(ig_synth_elem(seed, i, scale, bias))),
 * i.e. exactly what the host's ig_synth_fill gives in src_dt, then converted to dst_dt. */
cudaError_t ig_k_synth(ig_dtype src_dt, ig_dtype dst_dt, void *dst, int64_t n, uint64_t seed, float scale, float bias,
                       cudaStream_t st);
/* The same for a tensor-parallel slice: element i takes the value of its full-tensor index
 * (ig_synth_full_index), so every rank's slice belongs to one tp-1 model. */
cudaError_t ig_k_synth_map(ig_dtype src_dt, ig_dtype dst_dt, void *dst, int64_t n, uint64_t seed, float scale,
                           float bias, const ig_synth_map *map, cudaStream_t st);
/* Element conversion (fp32/fp16/bf16 to fp32/fp16/bf16), round-to-nearest-even. */
cudaError_t ig_k_convert(ig_dtype src_dt, const void *src, ig_dtype dst_dt, void *dst, int64_t n, cudaStream_t st);

/* x[t][:] = emb[tokens[t]][:] as fp32. */
cudaError_t ig_k_embed(ig_dtype dt, const void *emb, const int32_t *tokens, int n_tokens, int hidden, float *x,
                       cudaStream_t st);

/* For each row r: if delta, x[r] += delta[r] (stored back); out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w.
 * With `rows` (a gather list, delta must be NULL) output row i normalizes x[rows[i]]. */
cudaError_t ig_k_rmsnorm(ig_dtype dt, float *x, const float *delta, const float *w, float eps, void *out,
                         const int32_t *rows, int n_rows, int hidden, cudaStream_t st);

/* qkv: fp32 [n_tokens][(nh + 2 nkv) * D] (GEMM output); bias optional fp32 [(nh+2nkv)*D].
 * Adds the bias, rotates Q and K (rotate-half pairs (i, i + D/2), angle = pos * inv_freq[i]),
 * writes Q to q_out (dt, [n_tokens][nh * D]) and K/V into their paged-cache slots of `layer`. */
cudaError_t ig_k_rope_kv(ig_dtype dt, const float *qkv, const float *bias, const float *inv_freq, ig_batch_dev b,
                         ig_kv_desc kv, int layer, int n_heads, void *q_out, cudaStream_t st);

/* Qwen (v1) past seq_length, after ig_k_rope_kv / the ROPE epilogue: dynamic NTK re-rotates
 * Q and the new K slots of long sequences to the NTK base, log-n scales Q (long_ctx.cu). */
cudaError_t ig_k_qwen_long_ctx(ig_dtype dt, void *q, const float *inv_freq, ig_batch_dev b, ig_kv_desc kv, int layer,
                               int n_heads, int seq_length, double theta, int use_ntk, int use_logn, cudaStream_t st);

/* x[t][i] += bias[i] for t < n_tokens, i < n (fp32; InternLM's o_proj bias). */
cudaError_t ig_k_add_bias_rows(float *x, const float *bias, int n_tokens, int n, cudaStream_t st);

/* out[t][i] = silu(gu[t][i]) * gu[t][inter + i] (gate rows then up rows), in dt. */
cudaError_t ig_k_silu_mul(ig_dtype dt, const float *gu, void *out, int n_tokens, int inter, cudaStream_t st);

/* Attention for single query tokens (decode) and the generic path for any head_dim:
 * for each of the n_sel tokens sel[i] (sequence tok_seq, position tok_pos), causal over
 * the sequence's cache [0, pos], all heads, split-K over `n_splits` chunks of
 * `split_len` keys (multiple of 64; n_splits <= 32), merged in the same kernel by the last
 * block of each (token, KV head) to finish. ws: fp32 workspace of
 * ig_attn_decode_ws_floats(...) floats (unused when n_splits == 1); counters: n_sel * n_kv_heads
 * ints used by nothing else, zeroed once before first use (the split merge re-arms them).
 * q: dt [n_tokens][nh * D]; out: dt [n_tokens][nh * D]. */
size_t ig_attn_decode_ws_floats(int n_sel, int n_heads, int head_dim, int n_splits);
cudaError_t ig_k_attn_decode(ig_dtype dt, const void *q, ig_batch_dev b, ig_kv_desc kv, int layer, int n_heads,
                             float scale, const int32_t *sel, int n_sel, int n_splits, int split_len, float *ws,
                             int *counters, void *out, cudaStream_t st);
/* The same with the kernel chosen by the caller (tests and benchmarks compare them):
 * TILED is the shared-memory tile kernel (any shape above); STREAM the register-streaming
 * one, for the shapes ig_attn_decode_streams() accepts (head_dim 128, block_len a multiple
 * of 16) (cudaErrorInvalidValue otherwise);
 * AUTO, what ig_k_attn_decode uses, takes STREAM wherever it can. */
enum { IG_ATTN_DECODE_AUTO = 0, IG_ATTN_DECODE_TILED = 1, IG_ATTN_DECODE_STREAM = 2 };
int ig_attn_decode_streams(int n_heads, int n_kv_heads, int head_dim, int block_len);
cudaError_t ig_k_attn_decode_path(ig_dtype dt, const void *q, ig_batch_dev b, ig_kv_desc kv, int layer, int n_heads,
                                  float scale, const int32_t *sel, int n_sel, int n_splits, int split_len, float *ws,
                                  int *counters, void *out, int path, cudaStream_t st);

/* Flash attention (tensor cores, mma.sync) over the batch's sequences with q_len >= 2:
 * causal, GQA, variable lengths, K/V read from the paged cache. head_dim 64 or 128
 * (ig_attn_prefill_supported). max_q_len bounds the longest sequence's new tokens. */
int ig_attn_prefill_supported(int head_dim);
cudaError_t ig_k_attn_prefill(ig_dtype dt, const void *q, ig_batch_dev b, ig_kv_desc kv, int layer, int n_heads,
                              float scale, int max_q_len, void *out, cudaStream_t st);

/* y[m][n] (+)= sum_k W[n][k] x[m][k] for small m (weights streamed once; batch-1 decode).
 * K must be a multiple of 8 and W, x 16-byte aligned (ig_gemv_supported). */
int ig_gemv_supported(int m, int n, int k);
cudaError_t ig_k_gemv(ig_dtype dt, const void *w, const void *x, float *y, int m, int n, int k, int accumulate,
                      cudaStream_t st);
/* The general form: with y_glu != NULL, W has 2n rows ([gate | up]) and y_glu (dt, [m][n])
 * receives silu(gate) * up instead of y. variant picks the kernel's tiling (-1: default
 * for the shape; 0..3: see gemv.cu) for benchmarks. */
cudaError_t ig_k_gemv_ex(ig_dtype dt, const void *w, const void *x, float *y, void *y_glu, int m, int n, int k,
                         int accumulate, int variant, cudaStream_t st);
int ig_gemv_default_variant(int m, int n, int k);

/* Decode GEMV with the RMSNorm fused in front (the residual x, fp32 [m][k], is normalized
 * with norm_w/eps inside every block, exactly as ig_k_rmsnorm would) and one of these
 * epilogues fused behind:
 *  IG_GEMV_STORE: y[m][n] = result (fp32);
 *  IG_GEMV_GLU:   W has 2n rows [gate | up]; out (dt [m][n]) = silu(gate) * up;
 *  IG_GEMV_ROPE:  W is wqkv (n = (nh + 2 nkv) * D rows); adds bias (optional), rotates Q/K
 *                 as ig_k_rope_kv does, writes Q to out (dt [m][nh * D]) and K/V into the
 *                 cache slots of tokens 0..m-1 of `b` in `layer`. */
enum { IG_GEMV_STORE = 0, IG_GEMV_GLU = 1, IG_GEMV_ROPE = 2 };
typedef struct ig_gemv_fused {
    int epilogue;
    const void *w;
    const float *x;      /* residual stream [m][k] */
    const float *norm_w; /* [k] */
    float eps;
    int m, n, k;
    float *y;  /* STORE */
    void *out; /* GLU, ROPE */
    /* ROPE only */
    const float *bias, *inv_freq;
    ig_batch_dev b;
    ig_kv_desc kv;
    int layer, n_heads;
} ig_gemv_fused;
cudaError_t ig_k_gemv_fused(ig_dtype dt, const ig_gemv_fused *a, cudaStream_t st);

/* Copies slots [0, n) of block src into block dst, for every layer, K and V, head. */
cudaError_t ig_k_kv_copy(ig_dtype dt, ig_kv_desc kv, int dst, int src, int n, cudaStream_t st);

/* ------------------------------------------------------------------ sampling */
typedef struct ig_sample_dev {
    float temperature;        /* <= 0: greedy */
    int top_k;                /* <= 0: off */
    float top_p;              /* >= 1: off */
    float repetition_penalty; /* 1: off */
    float u;                  /* the uniform draw ig_uniform01(seed, step) */
    int hist_off, hist_len;   /* this row's ids in the history array */
} ig_sample_dev;

/* Sampling rows with 0 < top_k <= IG_SAMPLE_SELECT_K (and top_k < vocab) take their
 * candidates by a block-wide radix select and sort only those; pure top-p rows try the top
 * IG_SAMPLE_SELECT_K first; the others sort the whole row. Whether a row may need that
 * full sort (host and device agree): */
#define IG_SAMPLE_SELECT_K 1024
#ifdef __CUDACC__
__host__ __device__
#endif
    static inline int
    ig_sample_full_sort(int top_k, float top_p, int vocab)
{
    int select = top_k > 0 && top_k <= IG_SAMPLE_SELECT_K && top_k < vocab;
    return (top_k > 0 || top_p < 1.0f) && !select;
}

/* Applies repetition penalty and temperature to logits rows in place ([n_rows][ld] fp32,
 * first `vocab` columns), then picks one id per row into out_ids: greedy rows take the
 * argmax (lowest index on ties); sampling rows follow ignis_sample_logits (top-k, then
 * top-p over the probabilities sorted descending, then the draw u over the kept mass).
 * any_full_sort: some row has temperature > 0 and ig_sample_full_sort(...) (1 is always
 * correct, 0 saves the sort pass); any_sampling: some row has temperature > 0 (else the
 * argmax pass is all).
 * ws: device scratch of ig_sample_ws_bytes(n_rows, vocab) bytes. */
size_t ig_sample_ws_bytes(int n_rows, int vocab);
cudaError_t ig_k_sample(float *logits, int n_rows, int vocab, int ld, const ig_sample_dev *params,
                        const int32_t *history, int any_full_sort, int any_sampling, void *ws, size_t ws_bytes,
                        int32_t *out_ids, cudaStream_t st);

#ifdef __cplusplus
}
#endif
#endif
