/* The CUDA forward pass over an ig_batch: embedding, per layer (RMSNorm, QKV GEMM, RoPE
 * + KV store, attention, O GEMM with the residual add fused as beta = 1, RMSNorm, gate/up
 * GEMM, SwiGLU, down GEMM with the residual add), final norm of the wanted rows, LM head,
 * then logits to the host and/or sampling on the device. Steps of at most gemv_max_m tokens
 * (decode) take the fused GEMV path: 5 kernels per layer (see enqueue()).
 *
 * Decode steps (every sequence contributes one token and wants its logits) run as CUDA
 * graphs captured per batch-size bucket (1, 2, 4, ... sequences): the batch is padded to
 * the bucket with dummy sequences whose K/V go to the pool's private block, and the step's
 * metadata is copied into fixed device buffers before the replay. (At batch 1 on H100 the
 * graphs measure no faster than eager launches — every kernel runs >= 10 us — but they keep
 * launch cost off small models and large buckets; IGNIS_CUDA_GRAPHS=0 turns them off.)
 * Anything else (prefill chunks, mixed batches) runs eagerly. */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "model/synth_fn.h"
#include "profile/nvtx.h"

#define MAX_SPLITS 32

typedef struct meta_off {
    size_t tokens, pos, seq, q_start, kv_len, table, logit_rows, dec_sel, total;
} meta_off;

static meta_off meta_layout(int T, int S, int MB, int L)
{
    meta_off m;
    m.tokens = 0;
    m.pos = m.tokens + (size_t)T;
    m.seq = m.pos + (size_t)T;
    m.q_start = m.seq + (size_t)T;
    m.kv_len = m.q_start + (size_t)S + 1;
    m.table = m.kv_len + (size_t)S;
    m.logit_rows = m.table + (size_t)S * MB;
    m.dec_sel = m.logit_rows + (size_t)L;
    m.total = m.dec_sel + (size_t)T;
    return m;
}

/* What one enqueue of the forward pass computes (device pointers come from the layout). */
typedef struct plan {
    int T, S, L;       /* tokens, sequences, logit rows */
    int max_q_prefill; /* longest q_len >= 2 for the tensor-core kernel, 0 if none */
    int n_dec;         /* tokens through the decode kernel (dec_sel) */
    int n_splits, split_len;
    bool rows_identity; /* logit_rows[i] == i for i < L */
} plan;

void ig_cuda_drop_graphs(cuda_backend *b)
{
    for (int i = 0; i < b->n_graphs; i++)
        cudaGraphExecDestroy(b->graphs[i].exec);
    b->n_graphs = 0;
}

/* The buffers sized by the step shape (tokens, sequences, blocks, logit rows); ensure_step
 * regrows them, the sampling and attention workspaces are sized separately. */
static void free_shape_buffers(cuda_backend *b)
{
    cudaFree(b->x);
    cudaFree(b->qkv);
    cudaFree(b->gu);
    cudaFree(b->logits);
    cudaFree(b->tp_part);
    cudaFree(b->tp_recv);
    cudaFree(b->hbuf);
    cudaFree(b->act);
    cudaFree(b->q);
    cudaFree(b->att);
    cudaFree(b->hl);
    cudaFree(b->meta_d);
    if (b->meta_h) cudaFreeHost(b->meta_h);
    b->x = b->qkv = b->gu = b->logits = b->tp_part = b->tp_recv = NULL;
    b->hbuf = b->act = b->q = b->att = b->hl = NULL;
    b->meta_d = b->meta_h = NULL;
    b->cap_tokens = b->cap_seqs = b->cap_blocks = b->cap_logits = 0;
    b->meta_ints = 0;
}

void ig_cuda_free_step(cuda_backend *b)
{
    free_shape_buffers(b);
    cudaFree(b->attn_ws);
    cudaFree(b->attn_cnt);
    cudaFree(b->sample_ws);
    if (b->sp_h) cudaFreeHost(b->sp_h);
    cudaFree(b->sp_d);
    if (b->hist_h) cudaFreeHost(b->hist_h);
    cudaFree(b->hist_d);
    if (b->ids_h) cudaFreeHost(b->ids_h);
    cudaFree(b->ids_d);
    b->attn_ws = NULL;
    b->attn_cnt = NULL;
    b->attn_cnt_n = 0;
    b->sample_ws = NULL;
    b->hist_h = b->hist_d = b->ids_h = b->ids_d = NULL;
    b->sp_h = b->sp_d = NULL;
    b->attn_ws_floats = b->sample_ws_bytes = b->cap_hist = 0;
    b->cap_sample_rows = 0;
}

static int pow2_at_least(int n)
{
    int p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

#define DMALLOC(ptr, bytes)                                                                                            \
    do {                                                                                                               \
        cudaError_t e_ = cudaMalloc((void **)&(ptr), (size_t)(bytes) > 0 ? (size_t)(bytes) : 16);                      \
        if (e_ != cudaSuccess) {                                                                                       \
            cudaGetLastError();                                                                                        \
            (ptr) = NULL;                                                                                              \
            return ig_err(IGNIS_E_DEVICE, "CUDA backend: cannot allocate %zu bytes of step scratch (%s): %s",          \
                          (size_t)(bytes), #ptr, cudaGetErrorString(e_));                                              \
        }                                                                                                              \
    } while (0)

/* Grows the per-step buffers to hold T tokens, S sequences of MB blocks, L logit rows. */
static ignis_status ensure_step(cuda_backend *b, int T, int S, int MB, int L)
{
    if (T <= b->cap_tokens && S <= b->cap_seqs && MB <= b->cap_blocks && L <= b->cap_logits) return IGNIS_OK;
    IG_CK(cudaStreamSynchronize(b->st));
    ig_cuda_drop_graphs(b);
    int cT = pow2_at_least(T > b->cap_tokens ? T : b->cap_tokens);
    int cS = pow2_at_least(S > b->cap_seqs ? S : b->cap_seqs);
    int cMB = MB > b->cap_blocks ? MB : b->cap_blocks;
    int cL = pow2_at_least(L > b->cap_logits ? L : b->cap_logits);
    if (cL < 1) cL = 1;
    free_shape_buffers(b);
    size_t es = ig_dtype_size(b->dt);
    int wide = b->H > b->inter ? b->H : b->inter;
    DMALLOC(b->x, sizeof(float) * (size_t)cT * b->H);
    DMALLOC(b->qkv, sizeof(float) * (size_t)cT * b->qkv_rows);
    DMALLOC(b->gu, sizeof(float) * (size_t)cT * 2 * b->inter);
    DMALLOC(b->hbuf, es * (size_t)cT * wide);
    DMALLOC(b->act, es * (size_t)cT * b->inter);
    DMALLOC(b->q, es * (size_t)cT * b->nh * b->D);
    DMALLOC(b->att, es * (size_t)cT * b->nh * b->D);
    DMALLOC(b->hl, es * (size_t)cL * b->H);
    DMALLOC(b->logits, sizeof(float) * (size_t)cL * b->vocab_padded);
    if (b->comm) {
        DMALLOC(b->tp_part, sizeof(float) * (size_t)cL * b->vslice);
        DMALLOC(b->tp_recv, sizeof(float) * (size_t)cL * b->vslice * b->tp);
    }
    meta_off m = meta_layout(cT, cS, cMB, cL);
    DMALLOC(b->meta_d, sizeof(int32_t) * m.total);
    cudaError_t e = cudaMallocHost((void **)&b->meta_h, sizeof(int32_t) * m.total);
    if (e != cudaSuccess) {
        b->meta_h = NULL;
        return ig_err(IGNIS_E_DEVICE, "CUDA backend: cannot allocate pinned batch metadata: %s", cudaGetErrorString(e));
    }
    b->meta_ints = m.total;
    b->cap_tokens = cT;
    b->cap_seqs = cS;
    b->cap_blocks = cMB;
    b->cap_logits = cL;
    return IGNIS_OK;
}

/* The split partials (any content) and the split-merge counters (zero between launches,
 * never written by anything else: a counter that lands on stale partials would misfire). */
static ignis_status ensure_attn_ws(cuda_backend *b, size_t floats, size_t counters)
{
    if (counters > b->attn_cnt_n) {
        IG_CK(cudaStreamSynchronize(b->st));
        ig_cuda_drop_graphs(b);
        cudaFree(b->attn_cnt);
        b->attn_cnt = NULL;
        b->attn_cnt_n = 0;
        DMALLOC(b->attn_cnt, sizeof(int) * counters);
        IG_CK(cudaMemsetAsync(b->attn_cnt, 0, sizeof(int) * counters, b->st));
        b->attn_cnt_n = counters;
    }
    if (floats <= b->attn_ws_floats) return IGNIS_OK;
    IG_CK(cudaStreamSynchronize(b->st));
    ig_cuda_drop_graphs(b);
    cudaFree(b->attn_ws);
    b->attn_ws = NULL;
    b->attn_ws_floats = 0;
    DMALLOC(b->attn_ws, sizeof(float) * floats);
    b->attn_ws_floats = floats;
    return IGNIS_OK;
}

/* Split-K plan of the decode kernel: enough (token, KV head, split) blocks to cover the
 * SMs split_cover times (default 4; ignis_cuda_opts.split_cover), splits of whole 64-key tiles. */
static void split_plan(const cuda_backend *b, int n_sel, int max_ctx, int *n_splits, int *split_len)
{
    int units = n_sel * b->nkv;
    int want = (b->split_cover * b->n_sms + units - 1) / (units > 0 ? units : 1);
    int tiles = (max_ctx + 63) / 64;
    if (want > tiles) want = tiles;
    if (want > MAX_SPLITS) want = MAX_SPLITS;
    if (want < 1) want = 1;
    int sl = ((max_ctx + want - 1) / want + 63) / 64 * 64;
    if (sl < 64) sl = 64;
    *split_len = sl;
    *n_splits = (max_ctx + sl - 1) / sl;
    if (*n_splits < 1) *n_splits = 1;
}

static ignis_status gemm(cuda_backend *b, const void *W, const void *X, float *Y, int M, int N, int K, int acc)
{
    if (M <= b->gemv_max_m && ig_gemv_supported(M, N, K)) {
        IG_CK(ig_k_gemv(b->dt, W, X, Y, M, N, K, acc, b->st));
        return IGNIS_OK;
    }
    const float alpha = 1.0f, beta = acc ? 1.0f : 0.0f;
    cudaDataType_t t = b->dt == IG_BF16 ? CUDA_R_16BF : CUDA_R_16F;
    /* row-major Y[M][N] = X[M][K] W[N][K]^T is column-major Y^T = W^T(op T) X^T */
    IG_CKB(cublasGemmEx(b->cublas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, W, t, K, X, t, K, &beta, Y, CUDA_R_32F, N,
                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return IGNIS_OK;
}

/* Tensor parallelism: after wo and w2 every rank holds part of the new residual (rank 0
 * x + its partial product, the others their partial products); the sum is the whole. */
static ignis_status allreduce_x(cuda_backend *b, int T)
{
    if (!b->comm) return IGNIS_OK;
    IG_CKN(b->nccl, b->nccl->AllReduce(b->x, b->x, (size_t)T * b->H, ncclFloat32, ncclSum, b->comm, b->st));
    return IGNIS_OK;
}

/* LM-head slices [L][vslice] of every rank -> full rows [L][vocab_padded] in b->logits. */
static ignis_status gather_logits(cuda_backend *b, int L)
{
    size_t n = (size_t)L * b->vslice;
    IG_CKN(b->nccl, b->nccl->AllGather(b->tp_part, b->tp_recv, n, ncclFloat32, b->comm, b->st));
    for (int r = 0; r < b->tp; r++)
        IG_CK(cudaMemcpy2DAsync(b->logits + (size_t)r * b->vslice, sizeof(float) * (size_t)b->vocab_padded,
                                b->tp_recv + (size_t)r * n, sizeof(float) * (size_t)b->vslice,
                                sizeof(float) * (size_t)b->vslice, (size_t)L, cudaMemcpyDeviceToDevice, b->st));
    return IGNIS_OK;
}

static ig_batch_dev batch_dev(const cuda_backend *b, const plan *p)
{
    meta_off m = meta_layout(b->cap_tokens, b->cap_seqs, b->cap_blocks, b->cap_logits);
    ig_batch_dev d;
    d.tokens = b->meta_d + m.tokens;
    d.tok_pos = b->meta_d + m.pos;
    d.tok_seq = b->meta_d + m.seq;
    d.q_start = b->meta_d + m.q_start;
    d.kv_len = b->meta_d + m.kv_len;
    d.block_table = b->meta_d + m.table;
    d.max_blocks = b->cap_blocks;
    d.n_seqs = p->S;
    d.n_tokens = p->T;
    return d;
}

/* Enqueues the whole forward pass on b->st (also used inside graph capture). */
static ignis_status enqueue(cuda_backend *b, const plan *p)
{
    meta_off m = meta_layout(b->cap_tokens, b->cap_seqs, b->cap_blocks, b->cap_logits);
    ig_batch_dev bd = batch_dev(b, p);
    ig_kv_desc kv = {b->kv_pool, b->n_layers, b->nkv, b->D, b->base.block_len};
    const int T = p->T, H = b->H, I = b->inter, QD = b->nh * b->D;
    const ig_config *cfg = &b->base.desc->cfg;
    /* decode-sized steps: RMSNorm fused into the GEMVs, RoPE + KV store into the QKV GEMV,
     * SiLU*mul into the gate/up GEMV */
    const bool fused = T <= b->gemv_max_m && H % 8 == 0 && ig_gemv_supported(T, b->qkv_rows, H) &&
                       ig_gemv_supported(T, I, H) && ig_gemv_supported(T, b->vslice, H);
    ig_gemv_fused fa;
    memset(&fa, 0, sizeof fa);
    fa.x = b->x;
    fa.eps = b->eps;
    fa.m = T;
    fa.k = H;
    fa.inv_freq = b->inv_freq;
    fa.b = bd;
    fa.kv = kv;
    fa.n_heads = b->nh;
    IG_CK(ig_k_embed(b->dt, b->tok_emb, bd.tokens, T, H, b->x, b->st));
    for (int l = 0; l < b->n_layers; l++) {
        const cuda_layer *L = &b->layers[l];
        IG_NVTX_PUSH("attention");
        if (fused) {
            fa.epilogue = IG_GEMV_ROPE;
            fa.w = L->wqkv;
            fa.norm_w = L->attn_norm;
            fa.n = b->qkv_rows;
            fa.out = b->q;
            fa.bias = L->bqkv;
            fa.layer = l;
            IG_CK(ig_k_gemv_fused(b->dt, &fa, b->st));
        } else {
            IG_CK(ig_k_rmsnorm(b->dt, b->x, NULL, L->attn_norm, b->eps, b->hbuf, NULL, T, H, b->st));
            IG_TRY(gemm(b, L->wqkv, b->hbuf, b->qkv, T, b->qkv_rows, H, 0));
            IG_CK(ig_k_rope_kv(b->dt, b->qkv, L->bqkv, b->inv_freq, bd, kv, l, b->nh, b->q, b->st));
        }
        if (ig_config_has_long_ctx(cfg)) /* Qwen: a no-op for tokens within seq_length */
            IG_CK(ig_k_qwen_long_ctx(b->dt, b->q, b->inv_freq, bd, kv, l, b->nh, cfg->seq_length, cfg->rope.theta,
                                     cfg->use_dynamic_ntk, cfg->use_logn_attn, b->st));
        if (p->max_q_prefill >= 2)
            IG_CK(ig_k_attn_prefill(b->dt, b->q, bd, kv, l, b->nh, b->scale, p->max_q_prefill, b->att, b->st));
        if (p->n_dec > 0)
            IG_CK(ig_k_attn_decode_path(b->dt, b->q, bd, kv, l, b->nh, b->scale, b->meta_d + m.dec_sel, p->n_dec,
                                        p->n_splits, p->split_len, b->attn_ws, b->attn_cnt, b->att, b->decode_attn,
                                        b->st));
        IG_TRY(gemm(b, L->wo, b->att, b->x, T, H, QD, b->rank == 0));
        if (L->bo && b->rank == 0) IG_CK(ig_k_add_bias_rows(b->x, L->bo, T, H, b->st));
        IG_TRY(allreduce_x(b, T));
        IG_NVTX_POP();
        IG_NVTX_PUSH("ffn");
        if (fused) {
            fa.epilogue = IG_GEMV_GLU;
            fa.w = L->w13;
            fa.norm_w = L->ffn_norm;
            fa.n = I;
            fa.out = b->act;
            IG_CK(ig_k_gemv_fused(b->dt, &fa, b->st));
        } else {
            IG_CK(ig_k_rmsnorm(b->dt, b->x, NULL, L->ffn_norm, b->eps, b->hbuf, NULL, T, H, b->st));
            IG_TRY(gemm(b, L->w13, b->hbuf, b->gu, T, 2 * I, H, 0));
            IG_CK(ig_k_silu_mul(b->dt, b->gu, b->act, T, I, b->st));
        }
        IG_TRY(gemm(b, L->w2, b->act, b->x, T, H, I, b->rank == 0));
        IG_TRY(allreduce_x(b, T));
        IG_NVTX_POP();
    }
    float *head_out = b->comm ? b->tp_part : b->logits;
    if (p->L > 0 && fused && p->rows_identity && p->L == T) {
        fa.epilogue = IG_GEMV_STORE;
        fa.w = b->out_w;
        fa.norm_w = b->final_norm;
        fa.n = b->vslice;
        fa.y = head_out;
        IG_CK(ig_k_gemv_fused(b->dt, &fa, b->st));
    } else if (p->L > 0) {
        IG_CK(ig_k_rmsnorm(b->dt, b->x, NULL, b->final_norm, b->eps, b->hl, b->meta_d + m.logit_rows, p->L, H, b->st));
        IG_TRY(gemm(b, b->out_w, b->hl, head_out, p->L, b->vslice, H, 0));
    }
    if (p->L > 0 && b->comm) IG_TRY(gather_logits(b, p->L));
    return IGNIS_OK;
}

static ignis_status check_batch(const cuda_backend *b, const ig_batch *bt)
{
    if (!b->kv_pool) return ig_err(IGNIS_E_STATE, "CUDA backend: forward before kv_init");
    return ig_batch_check(bt, b->vocab, b->base.block_len, b->base.n_blocks);
}

/* Writes the step's metadata into the pinned staging buffer; sequences [S, S_pad) are
 * graph padding (one token each, position 0, in the private block). */
static void fill_meta(cuda_backend *b, const ig_batch *bt, int S_pad, int L_pad, bool prefill_kernel, int *n_dec)
{
    meta_off m = meta_layout(b->cap_tokens, b->cap_seqs, b->cap_blocks, b->cap_logits);
    int32_t *h = b->meta_h;
    const int scratch = b->base.n_blocks;
    int nd = 0;
    for (int s = 0; s < bt->n_seqs; s++) {
        int t0 = bt->q_start[s], t1 = bt->q_start[s + 1], pos0 = bt->kv_len[s] - (t1 - t0);
        bool dec = !prefill_kernel || t1 - t0 == 1;
        for (int t = t0; t < t1; t++) {
            h[m.tokens + t] = bt->tokens[t];
            h[m.pos + t] = pos0 + (t - t0);
            h[m.seq + t] = s;
            if (dec) h[m.dec_sel + nd++] = t;
        }
        h[m.q_start + s] = t0;
        h[m.kv_len + s] = bt->kv_len[s];
        int need = (bt->kv_len[s] + b->base.block_len - 1) / b->base.block_len;
        int32_t *row = h + m.table + (size_t)s * b->cap_blocks;
        memcpy(row, bt->block_table + (size_t)s * bt->max_blocks, sizeof(int32_t) * (size_t)need);
        for (int k = need; k < b->cap_blocks; k++)
            row[k] = scratch;
    }
    int T = bt->n_tokens;
    for (int s = bt->n_seqs; s < S_pad; s++) {
        int t = T + (s - bt->n_seqs);
        h[m.tokens + t] = 0;
        h[m.pos + t] = 0;
        h[m.seq + t] = s;
        h[m.dec_sel + nd++] = t;
        h[m.q_start + s] = t;
        h[m.kv_len + s] = 1;
        for (int k = 0; k < b->cap_blocks; k++)
            h[m.table + (size_t)s * b->cap_blocks + k] = scratch;
    }
    h[m.q_start + S_pad] = T + (S_pad - bt->n_seqs);
    for (int i = 0; i < bt->n_logits; i++)
        h[m.logit_rows + i] = bt->logit_rows[i];
    for (int i = bt->n_logits; i < L_pad; i++)
        h[m.logit_rows + i] = i;
    *n_dec = nd;
}

static cuda_graph *find_graph(cuda_backend *b, int bucket)
{
    for (int i = 0; i < b->n_graphs; i++)
        if (b->graphs[i].bucket == bucket) return &b->graphs[i];
    return NULL;
}

static ignis_status capture(cuda_backend *b, const plan *p, int bucket)
{
    if (b->n_graphs >= IG_CUDA_MAX_GRAPHS) return IGNIS_OK;
    IG_CK(cudaStreamBeginCapture(b->st, cudaStreamCaptureModeThreadLocal));
    ignis_status s = enqueue(b, p);
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(b->st, &g);
    if (s != IGNIS_OK) {
        if (g) cudaGraphDestroy(g);
        return s;
    }
    if (e != cudaSuccess)
        return ig_err(IGNIS_E_DEVICE, "CUDA graph capture of a decode step: %s", cudaGetErrorString(e));
    cudaGraphExec_t ex = NULL;
    e = cudaGraphInstantiate(&ex, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) return ig_err(IGNIS_E_DEVICE, "cudaGraphInstantiate: %s", cudaGetErrorString(e));
    b->graphs[b->n_graphs].bucket = bucket;
    b->graphs[b->n_graphs].exec = ex;
    b->n_graphs++;
    return IGNIS_OK;
}

static ignis_status ensure_sampling(cuda_backend *b, int rows, size_t hist)
{
    if (rows > b->cap_sample_rows) {
        int r = pow2_at_least(rows);
        cudaFree(b->sample_ws);
        cudaFree(b->sp_d);
        cudaFree(b->ids_d);
        if (b->sp_h) cudaFreeHost(b->sp_h);
        if (b->ids_h) cudaFreeHost(b->ids_h);
        b->sample_ws = NULL;
        b->sp_d = b->sp_h = NULL;
        b->ids_d = b->ids_h = NULL;
        b->cap_sample_rows = 0;
        b->sample_ws_bytes = ig_sample_ws_bytes(r, b->vocab);
        DMALLOC(b->sample_ws, b->sample_ws_bytes);
        DMALLOC(b->sp_d, sizeof(ig_sample_dev) * (size_t)r);
        DMALLOC(b->ids_d, sizeof(int32_t) * (size_t)r);
        IG_CK(cudaMallocHost((void **)&b->sp_h, sizeof(ig_sample_dev) * (size_t)r));
        IG_CK(cudaMallocHost((void **)&b->ids_h, sizeof(int32_t) * (size_t)r));
        b->cap_sample_rows = r;
    }
    if (hist > b->cap_hist || !b->hist_d) {
        size_t c = hist < 4096 ? 4096 : hist * 2;
        cudaFree(b->hist_d);
        if (b->hist_h) cudaFreeHost(b->hist_h);
        b->hist_d = b->hist_h = NULL;
        b->cap_hist = 0;
        DMALLOC(b->hist_d, sizeof(int32_t) * c);
        IG_CK(cudaMallocHost((void **)&b->hist_h, sizeof(int32_t) * c));
        b->cap_hist = c;
    }
    return IGNIS_OK;
}

static ignis_status sample(cuda_backend *b, int n, const ig_sample_row *rows, int32_t *out_ids)
{
    size_t hist = 0;
    for (int i = 0; i < n; i++)
        if (rows[i].history && rows[i].n_history > 0) hist += (size_t)rows[i].n_history;
    IG_TRY(ensure_sampling(b, n, hist));
    int any_sorted = 0, any_sampling = 0;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const ignis_sampling *s = &rows[i].params;
        ig_sample_dev *d = &b->sp_h[i];
        d->temperature = s->temperature;
        d->top_k = s->top_k;
        d->top_p = s->top_p;
        d->repetition_penalty = s->repetition_penalty;
        d->u = ig_uniform01(s->seed, rows[i].step);
        d->hist_off = (int)off;
        d->hist_len = rows[i].history && rows[i].n_history > 0 ? rows[i].n_history : 0;
        if (d->hist_len) memcpy(b->hist_h + off, rows[i].history, sizeof(int32_t) * (size_t)d->hist_len);
        off += (size_t)d->hist_len;
        if (s->temperature > 0.0f && ig_sample_full_sort(s->top_k, s->top_p, b->vocab)) any_sorted = 1;
        if (s->temperature > 0.0f) any_sampling = 1;
    }
    IG_CK(cudaMemcpyAsync(b->sp_d, b->sp_h, sizeof(ig_sample_dev) * (size_t)n, cudaMemcpyHostToDevice, b->st));
    if (off) IG_CK(cudaMemcpyAsync(b->hist_d, b->hist_h, sizeof(int32_t) * off, cudaMemcpyHostToDevice, b->st));
    IG_CK(ig_k_sample(b->logits, n, b->vocab, b->vocab_padded, b->sp_d, b->hist_d, any_sorted, any_sampling,
                      b->sample_ws, b->sample_ws_bytes, b->ids_d, b->st));
    IG_CK(cudaMemcpyAsync(b->ids_h, b->ids_d, sizeof(int32_t) * (size_t)n, cudaMemcpyDeviceToHost, b->st));
    IG_CK(cudaStreamSynchronize(b->st));
    memcpy(out_ids, b->ids_h, sizeof(int32_t) * (size_t)n);
    return IGNIS_OK;
}

ignis_status ig_cuda_forward(ig_backend *base, const ig_batch *bt, const ig_forward_out *out)
{
    cuda_backend *b = (cuda_backend *)base;
    IG_TRY(check_batch(b, bt));
    if (out && out->tokens && !out->sampling)
        return ig_err(IGNIS_E_ARG, "forward: sampled tokens requested without sampling parameters");
    IG_CK(cudaSetDevice(b->device));
    const int bl = base->block_len;
    const bool prefill_ok = ig_attn_prefill_supported(b->D) != 0;
    int max_q = 0, max_ctx = 1, need_blocks = 1;
    bool decode = bt->n_logits == bt->n_seqs;
    for (int s = 0; s < bt->n_seqs; s++) {
        int nq = bt->q_start[s + 1] - bt->q_start[s];
        if (nq > max_q) max_q = nq;
        if (bt->kv_len[s] > max_ctx) max_ctx = bt->kv_len[s];
        int nb = (bt->kv_len[s] + bl - 1) / bl;
        if (nb > need_blocks) need_blocks = nb;
        if (nq != 1) decode = false;
    }
    for (int i = 0; decode && i < bt->n_logits; i++)
        if (bt->logit_rows[i] != i) decode = false;
    int session_blocks = (base->desc->engine.session_len + bl - 1) / bl;
    int cap_blocks = need_blocks > session_blocks ? need_blocks : session_blocks;
    int max_bucket = base->desc->engine.max_batch_size > 0 ? base->desc->engine.max_batch_size : 1;
    if (max_bucket > 256) max_bucket = 256;

    plan p;
    memset(&p, 0, sizeof p);
    if (decode && b->use_graphs && bt->n_seqs <= pow2_at_least(max_bucket)) {
        int bucket = pow2_at_least(bt->n_seqs);
        IG_TRY(ensure_step(b, bucket, bucket, cap_blocks, bucket));
        /* graphs are built for any context up to the table capacity */
        int cap_ctx = b->cap_blocks * bl;
        p.T = p.S = p.L = bucket;
        p.rows_identity = true;
        p.max_q_prefill = 0;
        p.n_dec = bucket;
        split_plan(b, bucket, cap_ctx, &p.n_splits, &p.split_len);
        if (p.n_splits > 1)
            IG_TRY(
                ensure_attn_ws(b, ig_attn_decode_ws_floats(bucket, b->nh, b->D, p.n_splits), (size_t)bucket * b->nkv));
        int nd = 0;
        fill_meta(b, bt, bucket, bucket, false, &nd);
        IG_CK(cudaMemcpyAsync(b->meta_d, b->meta_h, sizeof(int32_t) * b->meta_ints, cudaMemcpyHostToDevice, b->st));
        cuda_graph *g = find_graph(b, bucket);
        if (!g) {
            /* first step of this bucket: run eagerly (warms up the kernels and cuBLAS), then capture */
            IG_TRY(enqueue(b, &p));
            IG_CK(cudaStreamSynchronize(b->st));
            IG_TRY(capture(b, &p, bucket));
        } else {
            IG_CK(cudaGraphLaunch(g->exec, b->st));
        }
    } else {
        IG_TRY(ensure_step(b, bt->n_tokens, bt->n_seqs, cap_blocks, bt->n_logits));
        p.T = bt->n_tokens;
        p.S = bt->n_seqs;
        p.L = bt->n_logits;
        p.rows_identity = true;
        for (int i = 0; i < bt->n_logits; i++)
            if (bt->logit_rows[i] != i) p.rows_identity = false;
        int nd = 0;
        fill_meta(b, bt, bt->n_seqs, bt->n_logits, prefill_ok, &nd);
        p.n_dec = nd;
        p.max_q_prefill = prefill_ok && max_q >= 2 ? max_q : 0;
        split_plan(b, nd > 0 ? nd : 1, max_ctx, &p.n_splits, &p.split_len);
        if (nd > 0 && p.n_splits > 1)
            IG_TRY(ensure_attn_ws(b, ig_attn_decode_ws_floats(nd, b->nh, b->D, p.n_splits), (size_t)nd * b->nkv));
        IG_CK(cudaMemcpyAsync(b->meta_d, b->meta_h, sizeof(int32_t) * b->meta_ints, cudaMemcpyHostToDevice, b->st));
        IG_TRY(enqueue(b, &p));
    }
    if (out && out->logits && bt->n_logits > 0)
        IG_CK(cudaMemcpy2DAsync(out->logits, sizeof(float) * (size_t)b->vocab, b->logits,
                                sizeof(float) * (size_t)b->vocab_padded, sizeof(float) * (size_t)b->vocab,
                                (size_t)bt->n_logits, cudaMemcpyDeviceToHost, b->st));
    if (out && out->tokens && bt->n_logits > 0) {
        IG_NVTX_PUSH("sampling");
        ignis_status ss = sample(b, bt->n_logits, out->sampling, out->tokens);
        IG_NVTX_POP();
        IG_TRY(ss);
    }
    IG_CK(cudaStreamSynchronize(b->st));
    IG_CK(cudaGetLastError());
    return IGNIS_OK;
}
