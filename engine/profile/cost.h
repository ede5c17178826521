/*
 * cost.h — the work each kernel of a forward step does, declared from the step's shape:
 * bytes that must cross DRAM (weights, KV cache read, activations in and out) and FLOPs.
 * The report divides them by the measured kernel times to give GB/s and TFLOP/s as a
 * fraction of the hardware's peak.
 *
 * Why a model and not a per-launch record: decode steps replay CUDA graphs, whose kernels
 * share one launch (one CUPTI correlation id) and whose attention reads a context that
 * grows every step, so per-launch declarations made at capture time would be stale. The
 * step's shape is known at every step, and the kernels a step runs follow from it exactly
 * as in cuda_forward.c's enqueue(): keep the two in step (the GPU test comparing the
 * decode GEMV's GB/s with kernel_bench catches drift).
 *
 * Kernels are grouped into families by name (ig_kernel_family): a family's declared totals
 * are compared with the summed time of the kernels whose names match it.
 */
#ifndef IG_PROFILE_COST_H
#define IG_PROFILE_COST_H

#include <stdbool.h>
#include <stdint.h>

typedef enum ig_kernel_fam {
    IG_FAM_GEMV_FUSED =
        0,       /* k_gemv_fused: RMSNorm + QKV + RoPE/KV store, RMSNorm + gate/up + SiLU, final norm + LM head */
    IG_FAM_GEMV, /* k_gemv: O and down projections of decode-sized steps */
    IG_FAM_CUBLAS_GEMM,  /* cuBLAS GEMMs (prefill projections, LM head) */
    IG_FAM_ATTN_DECODE,  /* k_attn_decode, k_attn_decode_stream */
    IG_FAM_ATTN_PREFILL, /* k_attn_prefill */
    IG_FAM_RMSNORM,      /* k_rmsnorm */
    IG_FAM_ROPE_KV,      /* k_rope_kv */
    IG_FAM_SILU_MUL,     /* k_silu_mul */
    IG_FAM_EMBED,        /* k_embed */
    IG_FAM_SAMPLE,       /* k_sample_* and CUB's sort (no declaration) */
    IG_FAM_COUNT,
    IG_FAM_NONE = -1
} ig_kernel_fam;

const char *ig_kernel_family_name(int fam);
/* The family of a kernel name as CUPTI reports it (mangled or not); IG_FAM_NONE if unknown. */
int ig_kernel_family(const char *kernel_name);

/* The per-rank model shape the backend computes with. */
typedef struct ig_cost_shape {
    int H;          /* hidden size */
    int nh, nkv, D; /* query heads, KV heads, head dim (this rank's) */
    int inter;      /* FFN intermediate size (this rank's) */
    int qkv_rows;   /* rows of the fused QKV matrix: (nh + 2 nkv) D */
    int vslice;     /* LM-head rows on this rank (padded vocab / tp) */
    int n_layers;
    int es;                              /* bytes per weight / activation element (2: fp16/bf16) */
    int gemv_max_m;                      /* steps of at most this many tokens take the GEMV path */
    bool prefill_kernel;                 /* the tensor-core prefill attention supports D */
    int (*gemv_ok)(int m, int n, int k); /* the GEMV kernel's eligibility (ig_gemv_supported) */
} ig_cost_shape;

/* One step: n_seqs sequences, q_len[s] new tokens and kv_len[s] context after the step;
 * n_logits rows of logits (1 per sampled sequence). */
typedef struct ig_cost_step {
    int n_seqs, n_tokens, n_logits;
    const int32_t *q_start;   /* [n_seqs + 1] */
    const int32_t *kv_len;    /* [n_seqs] */
    bool logit_rows_identity; /* logit row i is token i (decode steps) */
} ig_cost_step;

/* Adds the step's declared bytes and FLOPs per family to bytes[] and flops[]
 * (IG_FAM_COUNT each). Returns the step's total bytes. */
double ig_cost_step_add(const ig_cost_shape *m, const ig_cost_step *st, double *bytes, double *flops);

#endif
