/*
 * cuda_internal.h — state of the CUDA backend shared by its host files (backend.c:
 * device, KV pool, lifecycle; weights.c: upload; forward.c: the forward pass, CUDA graphs,
 * sampling).
 *
 * Device data layout:
 *  - matrices in the storage dtype `dt` (fp16 or bf16), canonical row-major [out][in];
 *    norm weights, biases and the RoPE table in fp32;
 *  - residual stream x and every GEMM output fp32; activations that feed a GEMM or the
 *    attention (normed x, Q, attention output, SwiGLU output) in dt;
 *  - the paged KV pool in dt, one allocation of (n_blocks + 1) blocks: block b holds, for
 *    every layer, K then V, each [n_kv_heads][block_len][head_dim]; the address of
 *    (b, layer, K|V, head, slot) is ((((b * n_layers + layer) * 2 + kv) * n_kv_heads +
 *    head) * block_len + slot) * head_dim — the CPU backend's layout. The extra last block
 *    is private: padding sequences of a CUDA-graph decode bucket write their K/V there.
 */
#ifndef IG_CUDA_INTERNAL_H
#define IG_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "backend/backend.h"
#include "backend/cuda/nccl.h"
#include "core/error.h"
#include "ig_kernels.h"

#define IG_CK(call)                                                                                                    \
    do {                                                                                                               \
        cudaError_t ig_ck_e_ = (call);                                                                                 \
        if (ig_ck_e_ != cudaSuccess)                                                                                   \
            return ig_err(IGNIS_E_DEVICE, "CUDA: %s failed at %s:%d: %s (%s)", #call, __FILE__, __LINE__,              \
                          cudaGetErrorString(ig_ck_e_), cudaGetErrorName(ig_ck_e_));                                   \
    } while (0)

#define IG_CKB(call)                                                                                                   \
    do {                                                                                                               \
        cublasStatus_t ig_ckb_s_ = (call);                                                                             \
        if (ig_ckb_s_ != CUBLAS_STATUS_SUCCESS)                                                                        \
            return ig_err(IGNIS_E_DEVICE, "cuBLAS: %s failed at %s:%d: %s", #call, __FILE__, __LINE__,                 \
                          cublasGetStatusString(ig_ckb_s_));                                                           \
    } while (0)

#define IG_CUDA_MAX_GRAPHS 16

typedef struct cuda_layer {
    void *wqkv, *wo, *w13, *w2;         /* dt */
    float *attn_norm, *ffn_norm, *bqkv; /* fp32; bqkv NULL without bias */
    float *bo;                          /* fp32 [hidden]; InternLM's o_proj bias, NULL otherwise */
} cuda_layer;

typedef struct cuda_graph {
    int bucket; /* number of sequences (= tokens) the graph was captured for */
    cudaGraphExec_t exec;
} cuda_graph;

typedef struct cuda_backend {
    ig_backend base;
    int device;
    int n_sms;
    char device_name[256];
    cudaStream_t st;
    cublasHandle_t cublas;
    void *cublas_ws;
    size_t cublas_ws_bytes;
    ig_dtype dt;

    /* model shape, of this rank: nh, nkv, inter, qkv_rows and vslice are the rank's share */
    int H, nh, nkv, D, inter, vocab, vocab_padded, n_layers, qkv_rows;
    int vslice; /* LM-head rows on this rank: vocab_padded / tp */

    /* tensor parallelism (cuda_tp.c): rank 0 adds the residual in wo/w2, every rank
     * all-reduces it; LM-head slices are all-gathered into the full logits */
    int rank, tp;
    ncclComm_t comm;          /* NULL: a single rank, no collectives */
    ig_nccl_api *nccl;        /* owned (ig_nccl_close); NULL without comm */
    float *tp_part, *tp_recv; /* [cap_logits][vslice], [tp][cap_logits][vslice] */
    float eps, scale;

    /* weights (one allocation) */
    void *wbuf;
    size_t wbytes;
    void *tok_emb, *out_w;
    float *final_norm, *inv_freq;
    cuda_layer *layers;

    /* KV pool */
    void *kv_pool;
    size_t kv_bytes;

    /* per-step scratch (grown on demand; growing invalidates the graphs) */
    int cap_tokens, cap_seqs, cap_blocks, cap_logits;
    float *x, *qkv, *gu, *logits;
    void *hbuf, *act, *q, *att, *hl; /* act: SwiGLU output [T][inter] */
    int32_t *meta_d, *meta_h;        /* pinned host staging of the batch metadata */
    size_t meta_ints;
    float *attn_ws;
    size_t attn_ws_floats;
    int *attn_cnt; /* split-merge counters of the decode attention (cuda_forward.c) */
    size_t attn_cnt_n;
    /* knobs (ignis_cuda_opts, resolved at creation) */
    int gemv_max_m;  /* largest token count that uses the GEMV kernel instead of cuBLAS (0: none) */
    int split_cover; /* decode attention: blocks per SM the split-K plan aims for */
    int decode_attn; /* IG_ATTN_DECODE_AUTO or _TILED */

    /* sampling */
    void *sample_ws;
    size_t sample_ws_bytes;
    ig_sample_dev *sp_h, *sp_d;
    int32_t *hist_h, *hist_d, *ids_h, *ids_d;
    int cap_sample_rows;
    size_t cap_hist;

    /* CUDA graphs of decode steps, one per batch-size bucket */
    cuda_graph graphs[IG_CUDA_MAX_GRAPHS];
    int n_graphs;
    int use_graphs;
} cuda_backend;

ignis_status ig_cuda_upload_weights(cuda_backend *b, const ig_model_desc *d, const ig_backend_opts *o);
ignis_status ig_cuda_forward(ig_backend *base, const ig_batch *batch, const ig_forward_out *out);
void ig_cuda_free_step(cuda_backend *b);
void ig_cuda_drop_graphs(cuda_backend *b);

#endif
