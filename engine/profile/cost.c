/* The cost model of a forward step (see cost.h): it walks the step the way
 * cuda_forward.c's enqueue() launches it and declares, per kernel, the bytes that must
 * move through DRAM at least once and the FLOPs of its arithmetic.
 *
 * Conventions: weights and activations fed to a GEMM/attention are `es` bytes per
 * element, the residual stream x and GEMM outputs fp32; an accumulating GEMM (residual add
 * as beta = 1) reads its output too. Attention reads each sequence's whole K and V once.
 * The padding sequences of a CUDA-graph decode bucket are left out: they add FLOPs on
 * one private KV block but no weight traffic. */
#include "profile/cost.h"

#include <string.h>

static const struct {
    const char *name;
    const char *patterns[5]; /* substrings of the kernel name; first match wins, families in order */
} k_fams[IG_FAM_COUNT] = {
    [IG_FAM_GEMV_FUSED] = {"gemv_fused", {"k_gemv_fused"}},
    [IG_FAM_GEMV] = {"gemv", {"k_gemv"}},
    [IG_FAM_CUBLAS_GEMM] = {"cublas_gemm", {"gemm", "nvjet", "cutlass", "xmma", "gemv2T"}},
    [IG_FAM_ATTN_DECODE] = {"attn_decode", {"k_attn_decode"}},
    [IG_FAM_ATTN_PREFILL] = {"attn_prefill", {"k_attn_prefill"}},
    [IG_FAM_RMSNORM] = {"rmsnorm", {"k_rmsnorm"}},
    [IG_FAM_ROPE_KV] = {"rope_kv", {"k_rope_kv"}},
    [IG_FAM_SILU_MUL] = {"silu_mul", {"k_silu_mul"}},
    [IG_FAM_EMBED] = {"embed", {"k_embed"}},
    [IG_FAM_SAMPLE] = {"sample", {"k_sample", "RadixSort", "cub::"}},
};

const char *ig_kernel_family_name(int fam) { return fam >= 0 && fam < IG_FAM_COUNT ? k_fams[fam].name : ""; }

int ig_kernel_family(const char *kernel_name)
{
    if (!kernel_name) return IG_FAM_NONE;
    /* ig kernels first (k_gemv_fused before k_gemv): a cuBLAS pattern like "gemm" never
     * occurs in their names, but k_gemv must not claim k_gemv_fused */
    for (int f = 0; f < IG_FAM_COUNT; f++)
        for (int i = 0; i < 5 && k_fams[f].patterns[i]; i++)
            if (strstr(kernel_name, k_fams[f].patterns[i])) return f;
    return IG_FAM_NONE;
}

typedef struct acc {
    double *bytes, *flops, total;
} acc;

static void add(acc *a, int fam, double bytes, double flops)
{
    a->bytes[fam] += bytes;
    a->flops[fam] += flops;
    a->total += bytes;
}

/* Y[M][N] (+)= X[M][K] W[N][K]^T through the GEMV kernel or cuBLAS (cuda_forward.c gemm()). */
static void linear(acc *a, const ig_cost_shape *m, int M, int N, int K, bool accumulate)
{
    int fam = M <= m->gemv_max_m && m->gemv_ok(M, N, K) ? IG_FAM_GEMV : IG_FAM_CUBLAS_GEMM;
    double es = m->es;
    double bytes = (double)N * K * es + (double)M * K * es + (double)M * N * 4.0 * (accumulate ? 2 : 1);
    add(a, fam, bytes, 2.0 * M * N * K);
}

/* One layer's attention over the step's sequences: those with >= 2 new tokens through
 * the prefill kernel (when it supports D), the others through the decode kernel. */
static void attention(acc *a, const ig_cost_shape *m, const ig_cost_step *st)
{
    double es = m->es, kv_row = 2.0 * m->nkv * m->D * es; /* K and V of one position */
    for (int s = 0; s < st->n_seqs; s++) {
        int q = st->q_start[s + 1] - st->q_start[s], ctx = st->kv_len[s];
        /* positions ctx - q .. ctx - 1 attend to 1 .. ctx keys: sum = q ctx - q (q - 1) / 2 */
        double keys = (double)q * ctx - (double)q * (q - 1) / 2.0;
        double bytes = ctx * kv_row + 2.0 * q * m->nh * m->D * es;
        double flops = 4.0 * m->nh * m->D * keys;
        add(a, q >= 2 && m->prefill_kernel ? IG_FAM_ATTN_PREFILL : IG_FAM_ATTN_DECODE, bytes, flops);
    }
}

double ig_cost_step_add(const ig_cost_shape *m, const ig_cost_step *st, double *bytes, double *flops)
{
    acc a = {bytes, flops, 0};
    const int T = st->n_tokens, H = m->H, I = m->inter, QD = m->nh * m->D;
    const double es = m->es;
    const bool fused = T <= m->gemv_max_m && H % 8 == 0 && m->gemv_ok(T, m->qkv_rows, H) && m->gemv_ok(T, I, H) &&
                       m->gemv_ok(T, m->vslice, H);
    /* every layer's attention is the same: walk the sequences once per step, not per layer */
    double attn_bytes[IG_FAM_COUNT] = {0}, attn_flops[IG_FAM_COUNT] = {0};
    acc attn = {attn_bytes, attn_flops, 0};
    attention(&attn, m, st);
    add(&a, IG_FAM_EMBED, (double)T * H * (es + 4.0), 0);
    for (int l = 0; l < m->n_layers; l++) {
        if (fused) {
            /* norm of x (fp32) + QKV rows + RoPE; Q out, K/V into the cache */
            add(&a, IG_FAM_GEMV_FUSED,
                (double)m->qkv_rows * H * es + (double)T * H * 4.0 + (double)T * m->qkv_rows * es,
                2.0 * T * m->qkv_rows * H);
        } else {
            add(&a, IG_FAM_RMSNORM, (double)T * H * (4.0 + es) + H * 4.0, 0);
            linear(&a, m, T, m->qkv_rows, H, false);
            add(&a, IG_FAM_ROPE_KV, (double)T * m->qkv_rows * (4.0 + es), 0);
        }
        add(&a, IG_FAM_ATTN_DECODE, attn_bytes[IG_FAM_ATTN_DECODE], attn_flops[IG_FAM_ATTN_DECODE]);
        add(&a, IG_FAM_ATTN_PREFILL, attn_bytes[IG_FAM_ATTN_PREFILL], attn_flops[IG_FAM_ATTN_PREFILL]);
        linear(&a, m, T, H, QD, true);
        if (fused) {
            add(&a, IG_FAM_GEMV_FUSED, 2.0 * I * H * es + (double)T * H * 4.0 + (double)T * I * es,
                2.0 * T * 2.0 * I * H);
        } else {
            add(&a, IG_FAM_RMSNORM, (double)T * H * (4.0 + es) + H * 4.0, 0);
            linear(&a, m, T, 2 * I, H, false);
            add(&a, IG_FAM_SILU_MUL, (double)T * I * (8.0 + es), 0);
        }
        linear(&a, m, T, H, I, true);
    }
    const int L = st->n_logits;
    if (L > 0 && fused && st->logit_rows_identity && L == T) {
        add(&a, IG_FAM_GEMV_FUSED, (double)m->vslice * H * es + (double)T * H * 4.0 + (double)T * m->vslice * 4.0,
            2.0 * T * m->vslice * H);
    } else if (L > 0) {
        add(&a, IG_FAM_RMSNORM, (double)L * H * (4.0 + es) + H * 4.0, 0);
        linear(&a, m, L, m->vslice, H, false);
    }
    return a.total;
}
