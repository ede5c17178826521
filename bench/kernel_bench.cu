/* kernel_bench: times each CUDA kernel of ignis and every GEMM shape of Llama-2-7B (fp16)
 * with CUDA events — warm-up, then the median of many repetitions, each repetition timing
 * a burst of launches over rotating input buffers (so weights come from HBM, not L2) — and
 * reports achieved GB/s and TFLOP/s against peaks measured in the same run (a large
 * device-to-device copy counting read + write bytes; an 8192^3 fp16 cuBLAS GEMM).
 *
 *   kernel_bench [--reps 30] [--only gemm|kernels|attn|sample]
 */
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ig_kernels.h"

#define CK(x)                                                                                                          \
    do {                                                                                                               \
        cudaError_t e_ = (x);                                                                                          \
        if (e_ != cudaSuccess) {                                                                                       \
            fprintf(stderr, "kernel_bench: %s: %s (%s:%d)\n", #x, cudaGetErrorString(e_), __FILE__, __LINE__);         \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)
#define CKB(x)                                                                                                         \
    do {                                                                                                               \
        cublasStatus_t s_ = (x);                                                                                       \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                                             \
            fprintf(stderr, "kernel_bench: %s: %s\n", #x, cublasGetStatusString(s_));                                  \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

static int g_reps = 30;
static cudaStream_t g_st;
static double g_peak_bw = 0, g_peak_tf = 0;

/* Median over reps of (time of `inner` calls) / inner, in microseconds. */
static double time_us(const std::function<void(int)> &fn, int inner = 10)
{
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++)
        fn(i);
    CK(cudaStreamSynchronize(g_st));
    std::vector<double> t;
    int k = 0;
    for (int r = 0; r < g_reps; r++) {
        CK(cudaEventRecord(a, g_st));
        for (int i = 0; i < inner; i++)
            fn(k++);
        CK(cudaEventRecord(b, g_st));
        CK(cudaEventSynchronize(b));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms * 1000.0 / inner);
    }
    CK(cudaGetLastError());
    std::sort(t.begin(), t.end());
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return t[t.size() / 2];
}

static void report(const char *name, double us, double bytes, double flops)
{
    double gbs = bytes / us / 1e3, tfs = flops / us / 1e6;
    printf("%-46s %9.2f us %8.0f GB/s (%5.1f%% of copy) %7.1f TFLOP/s (%5.1f%% of GEMM)\n", name, us, gbs,
           g_peak_bw > 0 ? 100.0 * gbs / g_peak_bw : 0.0, tfs, g_peak_tf > 0 ? 100.0 * tfs / g_peak_tf : 0.0);
}

static void *dalloc(size_t bytes, float scale = 0.02f)
{
    void *p;
    CK(cudaMalloc(&p, bytes));
    /* random fp16 data (never zeros: they can run faster than real data) */
    CK(ig_k_synth(IG_F32, IG_F16, p, (int64_t)(bytes / 2), (uint64_t)(uintptr_t)p, scale, 0.0f, g_st));
    return p;
}

static cublasHandle_t g_cublas;

static void gemm(const void *W, const void *X, float *Y, int M, int N, int K, float beta)
{
    const float alpha = 1.0f;
    CKB(cublasGemmEx(g_cublas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, W, CUDA_R_16F, K, X, CUDA_R_16F, K, &beta, Y,
                     CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

static void peaks()
{
    size_t n = (size_t)2 << 30;
    void *a, *b;
    CK(cudaMalloc(&a, n));
    CK(cudaMalloc(&b, n));
    CK(cudaMemsetAsync(a, 1, n, g_st));
    double us = time_us([&](int) { CK(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, g_st)); }, 2);
    g_peak_bw = 2.0 * n / us / 1e3;
    cudaFree(a);
    cudaFree(b);
    int S = 8192;
    void *A = dalloc((size_t)S * S * 2, 1.0f), *B = dalloc((size_t)S * S * 2, 1.0f);
    void *C;
    CK(cudaMalloc(&C, (size_t)S * S * 2));
    const float al = 1, be = 0;
    us = time_us(
        [&](int) {
            CKB(cublasGemmEx(g_cublas, CUBLAS_OP_T, CUBLAS_OP_N, S, S, S, &al, A, CUDA_R_16F, S, B, CUDA_R_16F, S, &be,
                             C, CUDA_R_16F, S, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        },
        2);
    g_peak_tf = 2.0 * S * S * (double)S / us / 1e6;
    printf("peaks: copy %.0f GB/s (read + write), fp16 GEMM 8192^3 %.1f TFLOP/s\n\n", g_peak_bw, g_peak_tf);
    cudaFree(A);
    cudaFree(B);
    cudaFree(C);
}

struct shape {
    const char *name;
    int N, K;
};
static const shape k_shapes[] = {
    {"wqkv", 12288, 4096}, {"wo", 4096, 4096}, {"w13", 22016, 4096}, {"w2", 4096, 11008}, {"lm_head", 32000, 4096}};

static void bench_gemm()
{
    printf("== GEMMs of Llama-2-7B (fp16 weights, fp32 accumulate and output) ==\n");
    /* rotate over copies of each weight so that every call streams from HBM (>= 4x L2) */
    const size_t pool = (size_t)1 << 30;
    char *wpool = (char *)dalloc(pool);
    void *x = dalloc((size_t)512 * 11008 * 2, 1.0f);
    float *y;
    CK(cudaMalloc(&y, sizeof(float) * (size_t)512 * 32000));
    const int Ms[] = {1, 2, 4, 16, 64, 256, 512};
    double tot_cublas[8] = {0}, tot_best[8] = {0};
    for (int mi = 0; mi < 7; mi++) {
        int M = Ms[mi];
        for (const shape &s : k_shapes) {
            size_t wb = (size_t)s.N * s.K * 2;
            int copies = (int)(pool / wb);
            double bytes = (double)wb + (double)M * s.K * 2 + (double)M * s.N * 4, flops = 2.0 * M * s.N * (double)s.K;
            char name[96];
            double us = time_us([&](int i) { gemm(wpool + (size_t)(i % copies) * wb, x, y, M, s.N, s.K, 0.0f); });
            snprintf(name, sizeof name, "cuBLAS  M=%-3d %-8s N=%-5d K=%-5d", M, s.name, s.N, s.K);
            report(name, us, bytes, flops);
            int mult = (s.N == 4096 || s.N == 12288 || s.N == 22016) ? 32 : 1; /* layer count; lm_head once */
            tot_cublas[mi] += us * mult;
            double best = us;
            if (ig_gemv_supported(M, s.N, s.K)) {
                for (int v = 0; v < 4; v++) {
                    double g = time_us([&](int i) {
                        CK(ig_k_gemv_ex(IG_F16, wpool + (size_t)(i % copies) * wb, x, y, NULL, M, s.N, s.K, 0, v,
                                        g_st));
                    });
                    snprintf(name, sizeof name, "ig_gemv M=%-3d %-8s N=%-5d K=%-5d v%d", M, s.name, s.N, s.K, v);
                    report(name, g, bytes, flops);
                    best = std::min(best, g);
                }
                if (s.N == 22016) {
                    for (int v = 1; v < 3; v++) {
                        double g = time_us([&](int i) {
                            CK(ig_k_gemv_ex(IG_F16, wpool + (size_t)(i % copies) * wb, x, NULL, y, M, s.N / 2, s.K, 0,
                                            v, g_st));
                        });
                        snprintf(name, sizeof name, "ig_gemv M=%-3d w13+silu N=%-5d K=%-5d GLU v%d", M, s.N, s.K, v);
                        report(name, g, bytes - (double)M * s.N * 3, flops);
                    }
                }
            }
            tot_best[mi] += best * mult;
        }
    }
    printf("\nper-token GEMM time of one Llama-2-7B forward (32 layers + LM head):\n");
    for (int mi = 0; mi < 7; mi++)
        printf("  M=%-3d cuBLAS %8.1f us, best (cuBLAS or ig_gemv) %8.1f us -> %8.0f tok/s GEMM-only bound\n", Ms[mi],
               tot_cublas[mi], tot_best[mi], Ms[mi] * 1e6 / tot_best[mi]);
    printf("\n");
    cudaFree(wpool);
    cudaFree(x);
    cudaFree(y);
}

static void bench_kernels()
{
    printf("== elementwise kernels (Llama-2-7B widths) ==\n");
    const int H = 4096, I = 11008, nh = 32, nkv = 32, D = 128;
    const int Ts[] = {1, 16, 64, 256, 512};
    float *x, *gu, *qkv, *w, *inv;
    void *h, *q;
    CK(cudaMalloc(&x, sizeof(float) * 1024 * H));
    CK(cudaMalloc(&gu, sizeof(float) * 512 * 2 * I));
    CK(cudaMalloc(&qkv, sizeof(float) * 512 * 3 * H));
    CK(cudaMalloc(&w, sizeof(float) * H));
    CK(cudaMalloc(&inv, sizeof(float) * D));
    CK(ig_k_synth(IG_F32, IG_F32, x, 1024 * H, 1, 1.0f, 0.0f, g_st));
    CK(ig_k_synth(IG_F32, IG_F32, gu, 512 * 2 * I, 2, 1.0f, 0.0f, g_st));
    CK(ig_k_synth(IG_F32, IG_F32, qkv, 512 * 3 * H, 3, 1.0f, 0.0f, g_st));
    CK(ig_k_synth(IG_F32, IG_F32, w, H, 4, 0.1f, 1.0f, g_st));
    CK(ig_k_synth(IG_F32, IG_F32, inv, D, 5, 0.01f, 0.01f, g_st));
    CK(cudaMalloc(&h, 2 * 512 * I));
    CK(cudaMalloc(&q, 2 * 512 * H));
    void *emb = dalloc((size_t)32000 * H * 2, 1.0f);
    /* a KV pool for the rope/KV write: 512 tokens in blocks of 64 */
    const int bl = 64, nb = 16;
    void *pool = dalloc((size_t)nb * 32 * 2 * nkv * bl * D * 2, 1.0f);
    int32_t hmeta[4096];
    for (int t = 0; t < 512; t++) {
        hmeta[t] = (t * 7) % 32000; /* tokens */
        hmeta[512 + t] = t;         /* pos */
        hmeta[1024 + t] = 0;        /* seq */
    }
    hmeta[1536] = 0;
    hmeta[1537] = 512;
    hmeta[1538] = 512;
    for (int k = 0; k < nb; k++)
        hmeta[1539 + k] = nb - 1 - k;
    int32_t *meta;
    CK(cudaMalloc(&meta, sizeof hmeta));
    CK(cudaMemcpy(meta, hmeta, sizeof hmeta, cudaMemcpyHostToDevice));
    for (int T : Ts) {
        char name[96];
        double us = time_us([&](int) { CK(ig_k_rmsnorm(IG_F16, x, NULL, w, 1e-5f, h, NULL, T, H, g_st)); });
        snprintf(name, sizeof name, "rmsnorm          T=%-3d H=%d", T, H);
        report(name, us, (double)T * H * 6 + H * 4, 0);
        us = time_us([&](int) { CK(ig_k_rmsnorm(IG_F16, x, x + 256 * H, w, 1e-5f, h, NULL, T, H, g_st)); });
        snprintf(name, sizeof name, "add+rmsnorm      T=%-3d H=%d", T, H);
        report(name, us, (double)T * H * 14 + H * 4, 0);
        us = time_us([&](int) { CK(ig_k_silu_mul(IG_F16, gu, h, T, I, g_st)); });
        snprintf(name, sizeof name, "silu_mul         T=%-3d I=%d", T, I);
        report(name, us, (double)T * I * 10, 0);
        us = time_us([&](int) { CK(ig_k_embed(IG_F16, emb, meta, T, H, x + 256 * H, g_st)); });
        snprintf(name, sizeof name, "embed            T=%-3d H=%d", T, H);
        report(name, us, (double)T * H * 6, 0);
        ig_batch_dev b = {meta, meta + 512, meta + 1024, meta + 1536, meta + 1538, meta + 1539, nb, 1, T};
        ig_kv_desc kv = {pool, 32, nkv, D, bl};
        us = time_us([&](int) { CK(ig_k_rope_kv(IG_F16, qkv, NULL, inv, b, kv, 3, nh, q, g_st)); });
        snprintf(name, sizeof name, "rope+kv write    T=%-3d", T);
        report(name, us, (double)T * 3 * H * 4 + (double)T * 3 * H * 2, 0);
    }
    printf("\n");
    cudaFree(x);
    cudaFree(gu);
    cudaFree(qkv);
    cudaFree(w);
    cudaFree(inv);
    cudaFree(h);
    cudaFree(q);
    cudaFree(emb);
    cudaFree(pool);
    cudaFree(meta);
}

/* Attention at Llama-2-7B's shape (32 heads of 128, MHA) and a GQA shape (Llama-3-8B: 8 KV heads). */
static void bench_attn()
{
    printf("== attention (paged KV, block_len 64, fp16) ==\n");
    const int D = 128, bl = 64;
    /* L > 1: a pool of L layers read at layer L / 2 with the blocks in random order, i.e.
     * the address pattern of a real decode step (r128 at batch 256: mean context 192) */
    struct cfg {
        int nh, nkv, B, ctx, qlen, L;
    } cases[] = {{32, 32, 1, 512, 1, 1},     {32, 32, 1, 4096, 1, 1},  {32, 32, 16, 1024, 1, 1},
                 {32, 32, 64, 1024, 1, 1},   {32, 32, 256, 512, 1, 1}, {32, 32, 256, 192, 1, 32},
                 {32, 32, 256, 448, 1, 32},  {32, 8, 64, 1024, 1, 1},  {32, 16, 64, 1024, 1, 1},
                 {28, 4, 64, 1024, 1, 1},    {64, 8, 64, 1024, 1, 1},  {32, 32, 1, 512, 512, 1},
                 {32, 32, 1, 2048, 2048, 1}, {32, 8, 4, 1024, 1024, 1}};
    for (const cfg &c : cases) {
        int per_seq = (c.ctx + bl - 1) / bl, nblocks = per_seq * c.B;
        size_t pool_b = (size_t)nblocks * c.L * 2 * c.nkv * bl * D * 2;
        void *pool = dalloc(pool_b, 1.0f);
        int T = c.B * c.qlen;
        void *q = dalloc((size_t)T * c.nh * D * 2, 1.0f), *out;
        CK(cudaMalloc(&out, (size_t)T * c.nh * D * 2));
        std::vector<int32_t> hm;
        std::vector<int32_t> tok(T, 0), pos(T), seq(T), qs(c.B + 1), kvl(c.B), tab((size_t)c.B * per_seq), sel(T);
        for (int s = 0; s < c.B; s++) {
            for (int i = 0; i < c.qlen; i++) {
                int t = s * c.qlen + i;
                pos[t] = c.ctx - c.qlen + i;
                seq[t] = s;
                sel[t] = t;
            }
            qs[s] = s * c.qlen;
            kvl[s] = c.ctx;
            for (int k = 0; k < per_seq; k++)
                tab[(size_t)s * per_seq + k] = (k * c.B + s) % nblocks;
        }
        if (c.L > 1) {
            uint64_t r = 12345;
            for (size_t i = tab.size() - 1; i > 0; i--) {
                r = r * 6364136223846793005ull + 1442695040888963407ull;
                std::swap(tab[i], tab[(size_t)((r >> 33) % (i + 1))]);
            }
        }
        qs[c.B] = T;
        for (auto *v : {&tok, &pos, &seq, &qs, &kvl, &tab, &sel})
            hm.insert(hm.end(), v->begin(), v->end());
        int32_t *m;
        CK(cudaMalloc(&m, hm.size() * 4));
        CK(cudaMemcpy(m, hm.data(), hm.size() * 4, cudaMemcpyHostToDevice));
        size_t o = 0;
        ig_batch_dev b;
        b.tokens = m + o;
        o += T;
        b.tok_pos = m + o;
        o += T;
        b.tok_seq = m + o;
        o += T;
        b.q_start = m + o;
        o += c.B + 1;
        b.kv_len = m + o;
        o += c.B;
        b.block_table = m + o;
        o += (size_t)c.B * per_seq;
        const int32_t *dsel = m + o;
        b.max_blocks = per_seq;
        b.n_seqs = c.B;
        b.n_tokens = T;
        ig_kv_desc kv = {pool, c.L, c.nkv, D, bl};
        const int layer = c.L / 2;
        char name[96];
        double kv_bytes = (double)c.B * c.ctx * c.nkv * D * 2 * 2;
        if (c.qlen == 1) {
            /* the backend's split plan: cover the SMs IGNIS_CUDA_SPLIT_COVER times (default 4) */
            const char *cov_env = getenv("IGNIS_CUDA_SPLIT_COVER");
            const int cover = cov_env && atoi(cov_env) > 0 ? atoi(cov_env) : 4;
            int units = c.B * c.nkv, want = std::max(1, std::min((cover * 132 + units - 1) / units, 32));
            want = std::min(want, (c.ctx + 63) / 64);
            int sl = ((c.ctx + want - 1) / want + 63) / 64 * 64, ns = (c.ctx + sl - 1) / sl;
            float *ws;
            CK(cudaMalloc(&ws, sizeof(float) * (ig_attn_decode_ws_floats(T, c.nh, D, ns) + 1)));
            int *cnt;
            CK(cudaMalloc(&cnt, sizeof(int) * T * c.nkv));
            CK(cudaMemset(cnt, 0, sizeof(int) * T * c.nkv));
            for (int path = IG_ATTN_DECODE_TILED; path <= IG_ATTN_DECODE_STREAM; path++) {
                if (path == IG_ATTN_DECODE_STREAM && !ig_attn_decode_streams(c.nh, c.nkv, D, bl)) continue;
                double us = time_us([&](int) {
                    CK(ig_k_attn_decode_path(IG_F16, q, b, kv, layer, c.nh, 0.088f, dsel, T, ns, sl, ws, cnt, out, path,
                                             g_st));
                });
                snprintf(name, sizeof name, "decode %s B=%-3d ctx=%-4d nh=%d nkv=%-2d L=%-2d splits=%d",
                         path == IG_ATTN_DECODE_STREAM ? "stream" : "tiled ", c.B, c.ctx, c.nh, c.nkv, c.L, ns);
                report(name, us, kv_bytes + 4.0 * T * c.nh * D, 4.0 * T * c.nh * (double)c.ctx * D);
            }
            cudaFree(ws);
            cudaFree(cnt);
        } else {
            double us = time_us(
                [&](int) { CK(ig_k_attn_prefill(IG_F16, q, b, kv, layer, c.nh, 0.088f, c.qlen, out, g_st)); }, 3);
            snprintf(name, sizeof name, "prefill B=%d q=%-4d nh=%d nkv=%d (causal)", c.B, c.qlen, c.nh, c.nkv);
            /* causal: half the full QK^T and PV products */
            report(name, us, kv_bytes + 4.0 * T * c.nh * D, 2.0 * c.B * c.nh * (double)c.qlen * c.ctx * D);
        }
        cudaFree(pool);
        cudaFree(q);
        cudaFree(out);
        cudaFree(m);
    }
    printf("\n");
}

/* GPU sampling over Llama-2's vocabulary, 1 to 256 rows. */
static void bench_sample()
{
    printf("== sampling (vocab 32000) ==\n");
    /* modes: greedy; top-k 40 + top-p (the chat default shape: radix select); top-p only on
     * flat logits (uniform in [-5, 5] after temperature: the nucleus is wider than the top
     * 1024, so the select attempt is followed by the full sort); top-p only on peaked logits
     * (temperature 0.05: the nucleus ends within the top 1024, no sort) */
    static const char *const mode_name[] = {"greedy + penalty", "top-k 40 + top-p 0.95 + penalty",
                                            "top-p 0.95 flat (select + full sort)", "top-p 0.95 peaked (select)"};
    static const float mode_temp[] = {0.0f, 0.8f, 0.8f, 0.05f};
    for (int rows : {1, 64, 256}) {
        for (int mode = 0; mode < 4; mode++) {
            float *lg = (float *)dalloc(sizeof(float) * rows * 32000);
            CK(ig_k_synth(IG_F32, IG_F32, lg, (int64_t)rows * 32000, 9, 4.0f, 0.0f, g_st));
            std::vector<ig_sample_dev> sp(rows);
            for (auto &p : sp)
                p = {mode_temp[mode], mode == 1 ? 40 : 0, mode ? 0.95f : 1.0f, 1.1f, 0.5f, 0, 64};
            const int full_sort = mode > 0 && ig_sample_full_sort(sp[0].top_k, sp[0].top_p, 32000);
            ig_sample_dev *dsp;
            int32_t *hist, *ids;
            CK(cudaMalloc(&dsp, sizeof(ig_sample_dev) * rows));
            CK(cudaMemcpy(dsp, sp.data(), sizeof(ig_sample_dev) * rows, cudaMemcpyHostToDevice));
            CK(cudaMalloc(&hist, 64 * 4));
            CK(cudaMemset(hist, 0, 64 * 4));
            CK(cudaMalloc(&ids, rows * 4));
            size_t wsb = ig_sample_ws_bytes(rows, 32000);
            void *ws;
            CK(cudaMalloc(&ws, wsb));
            /* the sampler rewrites the logits in place (penalty, temperature): each run starts
             * from a pristine copy, and the copy's own time is subtracted */
            const size_t lb = sizeof(float) * rows * 32000;
            float *work;
            CK(cudaMalloc(&work, lb));
            double copy_us = time_us([&](int) { CK(cudaMemcpyAsync(work, lg, lb, cudaMemcpyDeviceToDevice, g_st)); });
            double us =
                time_us([&](int) {
                    CK(cudaMemcpyAsync(work, lg, lb, cudaMemcpyDeviceToDevice, g_st));
                    CK(ig_k_sample(work, rows, 32000, 32000, dsp, hist, full_sort, mode > 0, ws, wsb, ids, g_st));
                }) -
                copy_us;
            char name[96];
            snprintf(name, sizeof name, "sample rows=%-3d %s", rows, mode_name[mode]);
            report(name, us, 4.0 * rows * 32000, 0);
            cudaFree(work);
            cudaFree(lg);
            cudaFree(dsp);
            cudaFree(hist);
            cudaFree(ids);
            cudaFree(ws);
        }
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    std::string only;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--reps"))
            g_reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--only"))
            only = argv[i + 1];
    }
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        printf("kernel_bench: no CUDA device\n");
        return 77;
    }
    cudaDeviceProp p;
    CK(cudaGetDeviceProperties(&p, 0));
    printf("device: %s, %d SMs, %.0f MB L2, reps %d (median)\n", p.name, p.multiProcessorCount, p.l2CacheSize / 1e6,
           g_reps);
    /* IGNIS_CUDA_PDL=0: launches without programmatic dependent launch (a per-device
     * setting of the kernels; the library reads no environment) */
    const char *pdl = getenv("IGNIS_CUDA_PDL");
    if (pdl && pdl[0] == '0') CK(ig_kernels_set_pdl(0, 0));
    CK(cudaStreamCreate(&g_st));
    CKB(cublasCreate(&g_cublas));
    CKB(cublasSetStream(g_cublas, g_st));
    peaks();
    if (only.empty() || only == "gemm") bench_gemm();
    if (only.empty() || only == "kernels") bench_kernels();
    if (only.empty() || only == "attn") bench_attn();
    if (only.empty() || only == "sample") bench_sample();
    return 0;
}
