/* Each CUDA kernel against its CPU twin (engine/backend/cpu/cpu_ops.h, the shared sampler,
 * the host synthetic fill) on random inputs. Outputs are poisoned before every launch.
 *
 * Tolerances (fp16 / bf16 storage, fp32 math on both sides; inputs are rounded to the
 * storage type before the CPU sees them, so only output rounding and summation order differ):
 *  - synthetic weights, embedding, sampling: exact;
 *  - RMSNorm, RoPE, SiLU*mul (one rounding of an fp32 result): rtol 2^-10 (fp16) / 2^-7 (bf16)
 *    of |ref| plus 1e-6;
 *  - GEMV: fp32 accumulation in a different order: 1e-4 of sum_k |w_k x_k| per output;
 *  - attention: P is rounded to fp16/bf16 before the PV product on the tensor-core path and
 *    the output once: atol 2e-3 + rtol 1e-2 (fp16), atol 1.6e-2 + rtol 2e-2 (bf16), on
 *    outputs of magnitude <= 1. */
#include "cuda_test_util.h"

#include "backend/cpu/cpu_ops.h"
#include "core/threadpool.h"
#include "ig_kernels.h"
#include "model/synthetic.h"

static const ig_dtype k_dts[2] = {IG_F16, IG_BF16};
static double rtol_store(ig_dtype dt) { return dt == IG_F16 ? 1.0 / 1024 : 1.0 / 128; }

/* ------------------------------------------------------------------ synthetic weights */
static void test_cuda_synth_is_bit_identical_to_host_fill(void **state)
{
    (void)state;
    const int64_t n = 100003;
    const ig_dtype all[3] = {IG_F32, IG_F16, IG_BF16};
    for (int si = 0; si < 3; si++)
        for (int di = 0; di < 3; di++) {
            ig_tensor t;
            memset(&t, 0, sizeof t);
            t.dtype = all[si];
            t.ndim = 1;
            t.shape[0] = n;
            t.synth_seed = 0x1234567ULL + (uint64_t)si;
            t.synth_scale = 0.037f;
            t.synth_bias = si == 1 ? 1.0f : 0.0f;
            size_t ss = ig_dtype_size(all[si]), ds = ig_dtype_size(all[di]);
            void *src = malloc(ss * n), *want = malloc(ds * n), *got = malloc(ds * n);
            float *f = malloc(sizeof(float) * n);
            ig_synth_fill(&t, 0, n, src);
            ig_to_f32(f, src, all[si], n);
            ig_from_f32(want, all[di], f, n);
            void *d = ct_dev_poisoned(ds * n);
            CT_CK(ig_k_synth(all[si], all[di], d, n, t.synth_seed, t.synth_scale, t.synth_bias, 0));
            CT_CK(cudaMemcpy(got, d, ds * n, cudaMemcpyDeviceToHost));
            if (memcmp(got, want, ds * n) != 0) {
                for (int64_t i = 0; i < n; i++)
                    if (memcmp((char *)got + i * ds, (char *)want + i * ds, ds) != 0)
                        fail_msg("synth %s->%s element %lld differs from the host fill", ig_dtype_str(all[si]),
                                 ig_dtype_str(all[di]), (long long)i);
            }
            cudaFree(d);
            free(src);
            free(want);
            free(got);
            free(f);
        }
}

/* ------------------------------------------------------------------ embedding */
static void test_cuda_embed_matches_cpu(void **state)
{
    (void)state;
    const int vocab = 300, hidden = 264, T = 37;
    uint64_t rs = 1;
    for (int di = 0; di < 2; di++) {
        ig_dtype dt = k_dts[di];
        float *e32 = malloc(sizeof(float) * vocab * hidden);
        for (int i = 0; i < vocab * hidden; i++)
            e32[i] = ct_rand(&rs);
        uint16_t *e = malloc(2 * (size_t)vocab * hidden);
        ig_from_f32(e, dt, e32, (size_t)vocab * hidden);
        int32_t tok[37];
        for (int t = 0; t < T; t++)
            tok[t] = (t * 131 + 7) % vocab;
        ig_tensor te = {.dtype = dt, .ndim = 2, .shape = {vocab, hidden}, .data = e};
        float *ref = malloc(sizeof(float) * T * hidden);
        ig_cpu_embed(ref, &te, tok, T);
        void *de = ct_dev_from(e, 2 * (size_t)vocab * hidden);
        int32_t *dtok = ct_dev_from(tok, sizeof tok);
        float *dx = ct_dev_poisoned(sizeof(float) * T * hidden);
        CT_CK(ig_k_embed(dt, de, dtok, T, hidden, dx, 0));
        float *got = malloc(sizeof(float) * T * hidden);
        CT_CK(cudaMemcpy(got, dx, sizeof(float) * T * hidden, cudaMemcpyDeviceToHost));
        ct_expect_close("embed", got, ref, (size_t)T * hidden, 0, 0);
        cudaFree(de);
        cudaFree(dtok);
        cudaFree(dx);
        free(e32);
        free(e);
        free(ref);
        free(got);
    }
}

/* ------------------------------------------------------------------ RMSNorm + residual */
static void rmsnorm_case(ig_dtype dt, int rows, int dim)
{
    uint64_t rs = 99 + (uint64_t)dim;
    size_t n = (size_t)rows * dim;
    float *x = malloc(sizeof(float) * n), *delta = malloc(sizeof(float) * n), *w = malloc(sizeof(float) * dim);
    for (size_t i = 0; i < n; i++) {
        x[i] = 3.0f * ct_rand(&rs);
        delta[i] = ct_rand(&rs);
    }
    for (int i = 0; i < dim; i++)
        w[i] = 1.0f + 0.2f * ct_rand(&rs);
    float *dx = ct_dev_from(x, sizeof(float) * n), *dd = ct_dev_from(delta, sizeof(float) * n);
    float *dw = ct_dev_from(w, sizeof(float) * dim);
    void *dout = ct_dev_poisoned(2 * n);
    CT_CK(ig_k_rmsnorm(dt, dx, dd, dw, 1e-5f, dout, NULL, rows, dim, 0));
    float *rx = malloc(sizeof(float) * n), *rout = malloc(sizeof(float) * n);
    memcpy(rx, x, sizeof(float) * n);
    ig_cpu_add_rmsnorm(rx, delta, rout, w, rows, dim, 1e-5f);
    float *gx = malloc(sizeof(float) * n);
    CT_CK(cudaMemcpy(gx, dx, sizeof(float) * n, cudaMemcpyDeviceToHost));
    ct_expect_close("rmsnorm residual x", gx, rx, n, 0, 0);
    float *gout = ct_to_host_f32(dout, dt, n);
    ct_expect_close("rmsnorm out", gout, rout, n, 1e-6, rtol_store(dt));
    free(gout);
    /* gather form: rows in reverse order, no residual */
    int32_t *sel = malloc(sizeof(int32_t) * rows);
    for (int r = 0; r < rows; r++)
        sel[r] = rows - 1 - r;
    int32_t *dsel = ct_dev_from(sel, sizeof(int32_t) * rows);
    CT_CK(cudaMemset(dout, 0xff, 2 * n));
    CT_CK(ig_k_rmsnorm(dt, dx, NULL, dw, 1e-5f, dout, dsel, rows, dim, 0));
    float *rg = malloc(sizeof(float) * n);
    for (int r = 0; r < rows; r++)
        ig_cpu_rmsnorm(rg + (size_t)r * dim, rx + (size_t)sel[r] * dim, w, 1, dim, 1e-5f);
    gout = ct_to_host_f32(dout, dt, n);
    ct_expect_close("rmsnorm gathered", gout, rg, n, 1e-6, rtol_store(dt));
    cudaFree(dx);
    cudaFree(dd);
    cudaFree(dw);
    cudaFree(dout);
    cudaFree(dsel);
    free(x);
    free(delta);
    free(w);
    free(rx);
    free(rout);
    free(gx);
    free(gout);
    free(sel);
    free(rg);
}

static void test_cuda_rmsnorm_residual_matches_cpu(void **state)
{
    (void)state;
    for (int di = 0; di < 2; di++) {
        rmsnorm_case(k_dts[di], 5, 4096);
        rmsnorm_case(k_dts[di], 3, 64);
        rmsnorm_case(k_dts[di], 4, 98);    /* not a multiple of 4: scalar path */
        rmsnorm_case(k_dts[di], 2, 40000); /* wider than the register path */
    }
}

/* ------------------------------------------------------------------ SiLU * mul */
static void test_cuda_silu_mul_matches_cpu(void **state)
{
    (void)state;
    const int rows = 7, inter = 172;
    uint64_t rs = 5;
    float *gu = malloc(sizeof(float) * rows * 2 * inter), *ref = malloc(sizeof(float) * rows * inter);
    for (int i = 0; i < rows * 2 * inter; i++)
        gu[i] = 6.0f * ct_rand(&rs);
    ig_cpu_silu_mul(ref, gu, rows, inter);
    float *dgu = ct_dev_from(gu, sizeof(float) * rows * 2 * inter);
    for (int di = 0; di < 2; di++) {
        void *dout = ct_dev_poisoned(2 * (size_t)rows * inter);
        CT_CK(ig_k_silu_mul(k_dts[di], dgu, dout, rows, inter, 0));
        float *got = ct_to_host_f32(dout, k_dts[di], (size_t)rows * inter);
        ct_expect_close("silu_mul", got, ref, (size_t)rows * inter, 1e-6, rtol_store(k_dts[di]) + 1e-6);
        free(got);
        cudaFree(dout);
    }
    cudaFree(dgu);
    free(gu);
    free(ref);
}

/* ------------------------------------------------------------------ GEMV */
static void test_cuda_gemv_matches_cpu(void **state)
{
    (void)state;
    const int N = 1003, K = 4096;
    ig_pool *pool = ig_pool_create(2);
    uint64_t rs = 11;
    for (int di = 0; di < 2; di++) {
        ig_dtype dt = k_dts[di];
        float *w32 = malloc(sizeof(float) * N * K);
        for (size_t i = 0; i < (size_t)N * K; i++)
            w32[i] = ct_round(dt, ct_rand(&rs) * 0.05f);
        uint16_t *w = malloc(2 * (size_t)N * K);
        ig_from_f32(w, dt, w32, (size_t)N * K);
        ig_tensor tw = {.dtype = dt, .ndim = 2, .shape = {N, K}, .data = w};
        void *dw = ct_dev_from(w, 2 * (size_t)N * K);
        for (int M = 1; M <= 4; M++) {
            float *x = malloc(sizeof(float) * M * K);
            for (int i = 0; i < M * K; i++)
                x[i] = ct_round(dt, ct_rand(&rs));
            uint16_t *xh = malloc(2 * (size_t)M * K);
            ig_from_f32(xh, dt, x, (size_t)M * K);
            void *dx = ct_dev_from(xh, 2 * (size_t)M * K);
            float *ref = malloc(sizeof(float) * M * N), *got = malloc(sizeof(float) * M * N);
            ct_cpu_matmul(pool, ref, N, x, M, &tw, NULL);
            /* accumulate form: y starts at 1.5 and gets the product added */
            float *y0 = malloc(sizeof(float) * M * N);
            for (int i = 0; i < M * N; i++)
                y0[i] = 1.5f;
            float *dy = ct_dev_from(y0, sizeof(float) * M * N);
            CT_CK(ig_k_gemv(dt, dw, dx, dy, M, N, K, 1, 0));
            CT_CK(cudaMemcpy(got, dy, sizeof(float) * M * N, cudaMemcpyDeviceToHost));
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    double abs_sum = 0;
                    for (int k = 0; k < K; k++)
                        abs_sum += fabs((double)w32[(size_t)n * K + k] * x[(size_t)m * K + k]);
                    double want = (double)ref[m * N + n] + 1.5, d = fabs(got[m * N + n] - want);
                    if (!(d <= 1e-4 * abs_sum + 1e-6))
                        fail_msg("gemv %s M=%d y[%d][%d]: expected %.7g, got %.7g", ig_dtype_str(dt), M, m, n, want,
                                 got[m * N + n]);
                }
            cudaFree(dx);
            cudaFree(dy);
            free(x);
            free(xh);
            free(ref);
            free(got);
            free(y0);
        }
        cudaFree(dw);
        free(w32);
        free(w);
    }
    ig_pool_destroy(pool);
}

/* A kernel whose dynamic shared memory exceeds the default 48 KiB (GEMV of 4 rows of
 * 8192: 64 KiB of x) runs on every visible device: the limit is raised per device, so the
 * second GPU of --tp 2 gets it too (it once was raised only for the first). */
static void test_cuda_large_smem_gemv_runs_on_every_device(void **state)
{
    (void)state;
    const int N = 257, K = 8192, M = 4;
    int n_dev = ig_cuda_device_count();
    ig_pool *pool = ig_pool_create(2);
    uint64_t rs = 29;
    float *w32 = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * M * K);
    uint16_t *w = malloc(2 * (size_t)N * K), *xh = malloc(2 * (size_t)M * K);
    for (size_t i = 0; i < (size_t)N * K; i++)
        w32[i] = ct_round(IG_F16, ct_rand(&rs) * 0.05f);
    for (int i = 0; i < M * K; i++)
        x[i] = ct_round(IG_F16, ct_rand(&rs));
    ig_from_f32(w, IG_F16, w32, (size_t)N * K);
    ig_from_f32(xh, IG_F16, x, (size_t)M * K);
    ig_tensor tw = {.dtype = IG_F16, .ndim = 2, .shape = {N, K}, .data = w};
    float *ref = malloc(sizeof(float) * M * N), *got = malloc(sizeof(float) * M * N);
    ct_cpu_matmul(pool, ref, N, x, M, &tw, NULL);
    for (int dev = 0; dev < n_dev; dev++) {
        CT_CK(cudaSetDevice(dev));
        void *dw = ct_dev_from(w, 2 * (size_t)N * K), *dx = ct_dev_from(xh, 2 * (size_t)M * K);
        float *dy = ct_dev_poisoned(sizeof(float) * M * N);
        cudaError_t e = ig_k_gemv(IG_F16, dw, dx, dy, M, N, K, 0, 0);
        if (e != cudaSuccess) fail_msg("device %d: GEMV with 64 KiB of shared memory: %s", dev, cudaGetErrorString(e));
        CT_CK(cudaMemcpy(got, dy, sizeof(float) * M * N, cudaMemcpyDeviceToHost));
        for (int i = 0; i < M * N; i++) {
            int m = i / N, n = i % N;
            double abs_sum = 0;
            for (int k = 0; k < K; k++)
                abs_sum += fabs((double)w32[(size_t)n * K + k] * x[(size_t)m * K + k]);
            if (!(fabs(got[i] - ref[i]) <= 1e-4 * abs_sum + 1e-6))
                fail_msg("device %d: gemv y[%d][%d]: expected %.7g, got %.7g", dev, m, n, ref[i], got[i]);
        }
        print_message("  device %d: 64 KiB GEMV matches the CPU\n", dev);
        cudaFree(dw);
        cudaFree(dx);
        cudaFree(dy);
    }
    CT_CK(cudaSetDevice(0));
    free(w32);
    free(x);
    free(w);
    free(xh);
    free(ref);
    free(got);
    ig_pool_destroy(pool);
}

/* ------------------------------------------------------------------ RoPE + KV write, attention */
typedef struct attn_case {
    int nh, nkv, D, bl;
    int n_seqs;
    int q_len[6], kv_len[6];
} attn_case;

/* Builds a paged batch: sequence s's blocks are a shuffled set of pool blocks. */
typedef struct paged {
    int n_blocks, max_blocks, T;
    int32_t *table, q_start[7], kv_len[6], *tok_pos, *tok_seq, *tokens;
} paged;

static void paged_build(paged *p, const attn_case *c)
{
    p->max_blocks = 0;
    int total = 0;
    for (int s = 0; s < c->n_seqs; s++) {
        int nb = (c->kv_len[s] + c->bl - 1) / c->bl;
        if (nb > p->max_blocks) p->max_blocks = nb;
        total += nb;
    }
    p->n_blocks = total + 3;
    p->table = calloc((size_t)c->n_seqs * p->max_blocks, sizeof(int32_t));
    int *perm = malloc(sizeof(int) * p->n_blocks);
    for (int i = 0; i < p->n_blocks; i++)
        perm[i] = i;
    uint64_t h = 77;
    for (int i = p->n_blocks - 1; i > 0; i--) {
        h = ig_mix64(h);
        int j = (int)(h % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int k = 0;
    p->T = 0;
    p->q_start[0] = 0;
    for (int s = 0; s < c->n_seqs; s++) {
        int nb = (c->kv_len[s] + c->bl - 1) / c->bl;
        for (int b = 0; b < nb; b++)
            p->table[s * p->max_blocks + b] = perm[k++];
        p->kv_len[s] = c->kv_len[s];
        p->q_start[s + 1] = p->q_start[s] + c->q_len[s];
        p->T += c->q_len[s];
    }
    p->tok_pos = malloc(sizeof(int32_t) * p->T);
    p->tok_seq = malloc(sizeof(int32_t) * p->T);
    p->tokens = calloc((size_t)p->T, sizeof(int32_t));
    for (int s = 0; s < c->n_seqs; s++)
        for (int t = p->q_start[s]; t < p->q_start[s + 1]; t++) {
            p->tok_pos[t] = c->kv_len[s] - c->q_len[s] + (t - p->q_start[s]);
            p->tok_seq[t] = s;
        }
    free(perm);
}

static void paged_free(paged *p)
{
    free(p->table);
    free(p->tok_pos);
    free(p->tok_seq);
    free(p->tokens);
}

static ig_batch_dev paged_upload(const paged *p, int n_seqs, void **allocs)
{
    ig_batch_dev b;
    allocs[0] = ct_dev_from(p->tokens, sizeof(int32_t) * p->T);
    allocs[1] = ct_dev_from(p->tok_pos, sizeof(int32_t) * p->T);
    allocs[2] = ct_dev_from(p->tok_seq, sizeof(int32_t) * p->T);
    allocs[3] = ct_dev_from(p->q_start, sizeof(int32_t) * (n_seqs + 1));
    allocs[4] = ct_dev_from(p->kv_len, sizeof(int32_t) * n_seqs);
    allocs[5] = ct_dev_from(p->table, sizeof(int32_t) * n_seqs * p->max_blocks);
    b.tokens = allocs[0];
    b.tok_pos = allocs[1];
    b.tok_seq = allocs[2];
    b.q_start = allocs[3];
    b.kv_len = allocs[4];
    b.block_table = allocs[5];
    b.max_blocks = p->max_blocks;
    b.n_seqs = n_seqs;
    b.n_tokens = p->T;
    return b;
}

/* Fused decode GEMVs (RMSNorm prologue; STORE / GLU / ROPE epilogues) against the CPU chain
 * rmsnorm -> (round to the storage type, as the GPU stages it) -> matmul -> silu*mul / rope.
 * Tolerance: 1e-4 of sum_k |w_k x_k| for the fp32 products (as the plain GEMV) plus one
 * rounding of the output to the storage type for GLU/ROPE. */
static void test_cuda_fused_gemv_matches_cpu(void **state)
{
    (void)state;
    const int K = 512, nh = 4, nkv = 2, D = 128, I = 700, NS = 1000, bl = 16, L = 2, layer = 1;
    const int QKV = (nh + 2 * nkv) * D;
    ig_pool *pool = ig_pool_create(2);
    ig_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.head_dim = D;
    cfg.rope.theta = 1e6;
    float inv[64];
    ig_rope_inv_freq(&cfg, 0, inv);
    uint64_t rs = 777;
    for (int di = 0; di < 2; di++) {
        ig_dtype dt = k_dts[di];
        const int nrow = 2 * I > QKV ? (2 * I > NS ? 2 * I : NS) : (QKV > NS ? QKV : NS);
        float *w32 = malloc(sizeof(float) * nrow * K);
        for (size_t i = 0; i < (size_t)nrow * K; i++)
            w32[i] = ct_round(dt, ct_rand(&rs) * 0.1f);
        uint16_t *wh = malloc(2 * (size_t)nrow * K);
        ig_from_f32(wh, dt, w32, (size_t)nrow * K);
        void *dw = ct_dev_from(wh, 2 * (size_t)nrow * K);
        float nw[512], bias[1024];
        for (int i = 0; i < K; i++)
            nw[i] = 1.0f + 0.3f * ct_rand(&rs);
        for (int i = 0; i < QKV; i++)
            bias[i] = 0.2f * ct_rand(&rs);
        float *dnw = ct_dev_from(nw, sizeof nw), *dbias = ct_dev_from(bias, sizeof(float) * QKV);
        float *dinv = ct_dev_from(inv, sizeof(float) * D / 2);
        for (int M = 1; M <= 4; M++) {
            float *x = malloc(sizeof(float) * M * K), *xn = malloc(sizeof(float) * M * K);
            for (int i = 0; i < M * K; i++)
                x[i] = 2.0f * ct_rand(&rs);
            ig_cpu_rmsnorm(xn, x, nw, M, K, 1e-6f);
            for (int i = 0; i < M * K; i++)
                xn[i] = ct_round(dt, xn[i]);
            float *dx = ct_dev_from(x, sizeof(float) * M * K);
            /* one sequence of M new tokens at positions 37.., so the ROPE epilogue writes slots */
            attn_case ac = {nh, nkv, D, bl, 1, {M}, {36 + M}};
            paged p;
            paged_build(&p, &ac);
            void *al[6];
            ig_batch_dev bd = paged_upload(&p, 1, al);
            size_t pool_elems = (size_t)p.n_blocks * L * 2 * nkv * bl * D;
            ig_kv_desc kv = {ct_dev_poisoned(2 * pool_elems), L, nkv, D, bl};
            ig_gemv_fused a;
            memset(&a, 0, sizeof a);
            a.w = dw;
            a.x = dx;
            a.norm_w = dnw;
            a.eps = 1e-6f;
            a.m = M;
            a.k = K;
            for (int epi = 0; epi < 3; epi++) {
                int n = epi == IG_GEMV_STORE ? NS : epi == IG_GEMV_GLU ? I : QKV;
                int rows_w = epi == IG_GEMV_GLU ? 2 * I : n;
                ig_tensor tw = {.dtype = dt, .ndim = 2, .shape = {rows_w, K}, .data = wh};
                float *y = malloc(sizeof(float) * M * rows_w);
                ct_cpu_matmul(pool, y, rows_w, xn, M, &tw, epi == IG_GEMV_ROPE ? bias : NULL);
                double *absum = malloc(sizeof(double) * M * rows_w);
                for (int m = 0; m < M; m++)
                    for (int r = 0; r < rows_w; r++) {
                        double t = 0;
                        for (int k = 0; k < K; k++)
                            t += fabs((double)w32[(size_t)r * K + k] * xn[m * K + k]);
                        absum[m * rows_w + r] = t;
                    }
                a.epilogue = epi;
                a.n = n;
                float *dy = NULL;
                void *dout = NULL;
                if (epi == IG_GEMV_STORE) {
                    dy = ct_dev_poisoned(sizeof(float) * M * n);
                    a.y = dy;
                } else {
                    dout = ct_dev_poisoned(2 * (size_t)M * (epi == IG_GEMV_GLU ? I : nh * D));
                    a.out = dout;
                }
                a.bias = epi == IG_GEMV_ROPE ? dbias : NULL;
                a.inv_freq = dinv;
                a.b = bd;
                a.kv = kv;
                a.layer = layer;
                a.n_heads = nh;
                CT_CK(ig_k_gemv_fused(dt, &a, 0));
                CT_CK(cudaDeviceSynchronize());
                double ro = epi == IG_GEMV_STORE ? 0 : rtol_store(dt);
                if (epi == IG_GEMV_STORE) {
                    float *g = malloc(sizeof(float) * M * n);
                    CT_CK(cudaMemcpy(g, dy, sizeof(float) * M * n, cudaMemcpyDeviceToHost));
                    for (int i = 0; i < M * n; i++)
                        if (!(fabs(g[i] - y[i]) <= 1e-4 * absum[i] + 1e-6))
                            fail_msg("fused STORE %s M=%d y[%d]: expected %.7g, got %.7g", ig_dtype_str(dt), M, i, y[i],
                                     g[i]);
                    free(g);
                } else if (epi == IG_GEMV_GLU) {
                    float *g = ct_to_host_f32(dout, dt, (size_t)M * I), *ref = malloc(sizeof(float) * M * I);
                    ig_cpu_silu_mul(ref, y, M, I);
                    for (int m = 0; m < M; m++)
                        for (int j = 0; j < I; j++) {
                            double gt = y[m * 2 * I + j], up = y[m * 2 * I + I + j];
                            /* error of silu(g)*u from errors eg, eu of the fp32 products */
                            double eg = 1e-4 * absum[m * 2 * I + j] + 1e-6, eu = 1e-4 * absum[m * 2 * I + I + j] + 1e-6;
                            double lim =
                                (1.2 * eg * fabs(up) + eu * fabs(gt) + eg * eu) + ro * fabs(ref[m * I + j]) + 1e-6;
                            if (!(fabs(g[m * I + j] - ref[m * I + j]) <= lim))
                                fail_msg("fused GLU %s M=%d [%d][%d]: expected %.7g, got %.7g", ig_dtype_str(dt), M, m,
                                         j, ref[m * I + j], g[m * I + j]);
                        }
                    free(g);
                    free(ref);
                } else {
                    float *gq = ct_to_host_f32(dout, dt, (size_t)M * nh * D),
                          *gp = ct_to_host_f32(kv.pool, dt, pool_elems);
                    ig_cpu_kv ck = {gp, p.n_blocks, bl, L, nkv, D};
                    for (int m = 0; m < M; m++) {
                        float *r = y + (size_t)m * QKV;
                        double emax = 0;
                        for (int i = 0; i < QKV; i++)
                            emax = fmax(emax, 1e-4 * absum[m * QKV + i] + 1e-6);
                        ig_cpu_rope(r, nh, D, p.tok_pos[m], inv);
                        ig_cpu_rope(r + nh * D, nkv, D, p.tok_pos[m], inv);
                        /* a rotation mixes two products: their errors add */
                        ct_expect_close("fused ROPE q", gq + (size_t)m * nh * D, r, (size_t)nh * D, 2 * emax + 1e-5,
                                        ro);
                        int blk = p.table[p.tok_pos[m] / bl], slot = p.tok_pos[m] % bl;
                        for (int h = 0; h < nkv; h++) {
                            ct_expect_close("fused ROPE k", ig_cpu_kv_at(&ck, blk, layer, 0, h, slot), r + (nh + h) * D,
                                            D, 2 * emax + 1e-5, ro);
                            ct_expect_close("fused ROPE v", ig_cpu_kv_at(&ck, blk, layer, 1, h, slot),
                                            r + (nh + nkv + h) * D, D, emax + 1e-5, ro);
                        }
                    }
                    free(gq);
                    free(gp);
                }
                cudaFree(dy);
                cudaFree(dout);
                free(y);
                free(absum);
            }
            for (int i = 0; i < 6; i++)
                cudaFree(al[i]);
            cudaFree(kv.pool);
            cudaFree(dx);
            paged_free(&p);
            free(x);
            free(xn);
        }
        cudaFree(dw);
        cudaFree(dnw);
        cudaFree(dbias);
        cudaFree(dinv);
        free(w32);
        free(wh);
    }
    ig_pool_destroy(pool);
}

static void test_cuda_rope_kv_matches_cpu(void **state)
{
    (void)state;
    const attn_case c = {6, 2, 64, 16, 3, {1, 20, 5}, {9, 20, 300}};
    const int L = 2, layer = 1;
    paged p;
    paged_build(&p, &c);
    const int rows = (c.nh + 2 * c.nkv) * c.D;
    uint64_t rs = 3;
    float *qkv = malloc(sizeof(float) * p.T * rows), *bias = malloc(sizeof(float) * rows);
    for (int i = 0; i < p.T * rows; i++)
        qkv[i] = ct_rand(&rs);
    for (int i = 0; i < rows; i++)
        bias[i] = 0.1f * ct_rand(&rs);
    ig_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.head_dim = c.D;
    cfg.rope.type = IG_ROPE_DEFAULT;
    cfg.rope.theta = 10000.0;
    float inv[64];
    ig_rope_inv_freq(&cfg, 0, inv);
    for (int di = 0; di < 2; di++) {
        ig_dtype dt = k_dts[di];
        void *al[6];
        ig_batch_dev bd = paged_upload(&p, c.n_seqs, al);
        size_t pool_elems = (size_t)p.n_blocks * L * 2 * c.nkv * c.bl * c.D;
        ig_kv_desc kv = {ct_dev_poisoned(2 * pool_elems), L, c.nkv, c.D, c.bl};
        float *dqkv = ct_dev_from(qkv, sizeof(float) * p.T * rows), *db = ct_dev_from(bias, sizeof(float) * rows);
        float *dinv = ct_dev_from(inv, sizeof(float) * c.D / 2);
        void *dq = ct_dev_poisoned(2 * (size_t)p.T * c.nh * c.D);
        CT_CK(ig_k_rope_kv(dt, dqkv, db, dinv, bd, kv, layer, c.nh, dq, 0));
        float *gq = ct_to_host_f32(dq, dt, (size_t)p.T * c.nh * c.D);
        float *gpool = ct_to_host_f32(kv.pool, dt, pool_elems);
        ig_cpu_kv ck = {gpool, p.n_blocks, c.bl, L, c.nkv, c.D};
        for (int t = 0; t < p.T; t++) {
            float *r = malloc(sizeof(float) * rows);
            for (int i = 0; i < rows; i++)
                r[i] = qkv[(size_t)t * rows + i] + bias[i];
            ig_cpu_rope(r, c.nh, c.D, p.tok_pos[t], inv);
            ig_cpu_rope(r + c.nh * c.D, c.nkv, c.D, p.tok_pos[t], inv);
            ct_expect_close("rope q", gq + (size_t)t * c.nh * c.D, r, (size_t)c.nh * c.D, 1e-6, rtol_store(dt) + 1e-5);
            int s = p.tok_seq[t], pos = p.tok_pos[t];
            int blk = p.table[s * p.max_blocks + pos / c.bl], slot = pos % c.bl;
            for (int h = 0; h < c.nkv; h++) {
                ct_expect_close("rope k in cache", ig_cpu_kv_at(&ck, blk, layer, 0, h, slot), r + (c.nh + h) * c.D, c.D,
                                1e-6, rtol_store(dt) + 1e-5);
                ct_expect_close("v in cache", ig_cpu_kv_at(&ck, blk, layer, 1, h, slot), r + (c.nh + c.nkv + h) * c.D,
                                c.D, 1e-6, rtol_store(dt));
            }
            free(r);
        }
        free(gq);
        free(gpool);
        for (int i = 0; i < 6; i++)
            cudaFree(al[i]);
        cudaFree(kv.pool);
        cudaFree(dqkv);
        cudaFree(db);
        cudaFree(dinv);
        cudaFree(dq);
    }
    free(qkv);
    free(bias);
    paged_free(&p);
}

/* Prefix-cache copy-on-write: slots [0, n) of block src land in block dst for every layer,
 * K and V, head; the rest of dst and every other block stay untouched (exact). */
static void test_cuda_kv_copy_copies_only_the_prefix(void **state)
{
    (void)state;
    const int L = 3, nkv = 2, D = 64, bl = 16, nb = 5, n = 7, src = 3, dst = 1;
    size_t per_block = (size_t)L * 2 * nkv * bl * D, total = per_block * nb;
    uint16_t *h = malloc(2 * total), *got = malloc(2 * total);
    for (size_t i = 0; i < total; i++)
        h[i] = (uint16_t)(ig_mix64(i) & 0x3bff); /* finite fp16 */
    void *d = ct_dev_from(h, 2 * total);
    ig_kv_desc kv = {d, L, nkv, D, bl};
    CT_CK(ig_k_kv_copy(IG_F16, kv, dst, src, n, 0));
    CT_CK(cudaMemcpy(got, d, 2 * total, cudaMemcpyDeviceToHost));
    for (int b = 0; b < nb; b++)
        for (int l = 0; l < L; l++)
            for (int k = 0; k < 2; k++)
                for (int hh = 0; hh < nkv; hh++)
                    for (int sl = 0; sl < bl; sl++)
                        for (int e = 0; e < D; e++) {
                            size_t at = ((((size_t)b * L + l) * 2 + k) * nkv + hh) * bl * D + (size_t)sl * D + e;
                            /* the copied slots of dst come from the same place in src (src > dst) */
                            size_t from = b == dst && sl < n ? at + (size_t)(src - dst) * per_block : at;
                            if (got[at] != h[from])
                                fail_msg("kv_copy block %d layer %d kv %d head %d slot %d dim %d: expected 0x%04x, got "
                                         "0x%04x",
                                         b, l, k, hh, sl, e, h[from], got[at]);
                        }
    cudaFree(d);
    free(h);
    free(got);
}

/* Runs one attention case through the GPU vs ig_cpu_attention. path IG_ATTN_DECODE_AUTO:
 * the prefill kernel for q_len >= 2 when it takes the head size, the decode kernel the
 * backend would pick for the rest; TILED or STREAM: that decode kernel for every token
 * (a case STREAM does not take is skipped). Split-K over split_len-key splits. */
static void attn_run(const attn_case *c, ig_dtype dt, int path, int split_len, ig_pool *pool)
{
    if (path == IG_ATTN_DECODE_STREAM && !ig_attn_decode_streams(c->nh, c->nkv, c->D, c->bl)) return;
    const int L = 2, layer = 1;
    paged p;
    paged_build(&p, c);
    size_t pool_elems = (size_t)p.n_blocks * L * 2 * c->nkv * c->bl * c->D;
    uint64_t rs = 1000 + (uint64_t)c->D;
    float *kv32 = malloc(sizeof(float) * pool_elems);
    for (size_t i = 0; i < pool_elems; i++)
        kv32[i] = ct_round(dt, ct_rand(&rs) * 2.0f);
    const int QD = c->nh * c->D;
    float *q32 = malloc(sizeof(float) * p.T * QD);
    for (int i = 0; i < p.T * QD; i++)
        q32[i] = ct_round(dt, ct_rand(&rs) * 2.0f);
    uint16_t *kvh = malloc(2 * pool_elems), *qh = malloc(2 * (size_t)p.T * QD);
    ig_from_f32(kvh, dt, kv32, pool_elems);
    ig_from_f32(qh, dt, q32, (size_t)p.T * QD);
    void *al[6];
    ig_batch_dev bd = paged_upload(&p, c->n_seqs, al);
    ig_kv_desc kv = {ct_dev_from(kvh, 2 * pool_elems), L, c->nkv, c->D, c->bl};
    void *dq = ct_dev_from(qh, 2 * (size_t)p.T * QD);
    void *dout = ct_dev_poisoned(2 * (size_t)p.T * QD);
    float scale = 1.0f / sqrtf((float)c->D);
    int use_prefill = path == IG_ATTN_DECODE_AUTO && ig_attn_prefill_supported(c->D);
    int32_t *sel = malloc(sizeof(int32_t) * p.T);
    int n_sel = 0, max_q = 0, max_ctx = 1;
    for (int s = 0; s < c->n_seqs; s++) {
        int ql = c->q_len[s];
        if (ql > max_q) max_q = ql;
        if (c->kv_len[s] > max_ctx) max_ctx = c->kv_len[s];
        if (!use_prefill || ql == 1)
            for (int t = p.q_start[s]; t < p.q_start[s + 1]; t++)
                sel[n_sel++] = t;
    }
    int32_t *dsel = ct_dev_from(sel, sizeof(int32_t) * (n_sel > 0 ? n_sel : 1));
    int n_splits = (max_ctx + split_len - 1) / split_len;
    size_t ws_b = sizeof(float) * (ig_attn_decode_ws_floats(n_sel, c->nh, c->D, n_splits) + 1);
    float *ws = ct_dev_poisoned(ws_b); /* partials: any content */
    int *cnt = NULL;
    CT_CK(cudaMalloc((void **)&cnt, sizeof(int) * (n_sel + 1) * c->nkv));
    CT_CK(cudaMemset(cnt, 0, sizeof(int) * (n_sel + 1) * c->nkv)); /* split-merge counters start at zero */
    if (use_prefill) CT_CK(ig_k_attn_prefill(dt, dq, bd, kv, layer, c->nh, scale, max_q, dout, 0));
    CT_CK(ig_k_attn_decode_path(dt, dq, bd, kv, layer, c->nh, scale, dsel, n_sel, n_splits, split_len, ws, cnt, dout,
                                path, 0));
    CT_CK(cudaDeviceSynchronize());
    float *got = ct_to_host_f32(dout, dt, (size_t)p.T * QD);
    float *ref = malloc(sizeof(float) * p.T * QD);
    ig_cpu_kv ck = {kv32, p.n_blocks, c->bl, L, c->nkv, c->D};
    for (int s = 0; s < c->n_seqs; s++) {
        int t0 = p.q_start[s];
        ig_cpu_attn_args a = {&ck,
                              layer,
                              p.table + s * p.max_blocks,
                              c->kv_len[s] - c->q_len[s],
                              c->q_len[s],
                              c->nh,
                              c->nkv,
                              0,
                              c->D,
                              q32 + (size_t)t0 * QD,
                              QD,
                              ref + (size_t)t0 * QD,
                              QD};
        ig_cpu_attention(pool, &a);
    }
    char what[160];
    static const char *const path_name[] = {"prefill+decode", "decode-tiled", "decode-stream"};
    snprintf(what, sizeof what, "attention %s nh=%d nkv=%d D=%d bl=%d %s split_len=%d", ig_dtype_str(dt), c->nh, c->nkv,
             c->D, c->bl, path_name[path], split_len);
    ct_expect_close(what, got, ref, (size_t)p.T * QD, dt == IG_F16 ? 2e-3 : 1.6e-2, dt == IG_F16 ? 1e-2 : 2e-2);
    for (int i = 0; i < 6; i++)
        cudaFree(al[i]);
    cudaFree(kv.pool);
    cudaFree(dq);
    cudaFree(dout);
    cudaFree(dsel);
    cudaFree(ws);
    cudaFree(cnt);
    free(kv32);
    free(q32);
    free(kvh);
    free(qh);
    free(sel);
    free(got);
    free(ref);
    paged_free(&p);
}

static void test_cuda_attention_matches_cpu_paged_mixed_batch(void **state)
{
    (void)state;
    ig_pool *pool = ig_pool_create(2);
    /* decode tokens, a prefill from scratch, a chunk continuing a cached prefix, a long one */
    const attn_case cases[] = {
        {8, 2, 128, 16, 5, {1, 70, 5, 1, 130}, {1, 70, 133, 200, 300}},
        {4, 4, 64, 64, 4, {1, 64, 17, 129}, {513, 64, 80, 129}},
        {4, 2, 16, 16, 3, {1, 12, 3}, {40, 12, 50}}, /* fixtures' head size: generic path */
        {8, 1, 8, 64, 2, {1, 9}, {100, 9}},          /* stories260K-like tiny heads */
        {28, 4, 128, 64, 2, {1, 3}, {700, 3}},       /* Qwen2-7B grouping (7 heads per KV head) */
        /* streaming decode kernel shapes (all of head size 128 above take it too; the
         * Qwen2 case has a masked head group): MHA (Llama-2) with a 1-key context, a partial
         * last chunk and a long one; 2 heads per KV head on 32-token blocks */
        {4, 4, 128, 64, 5, {1, 1, 1, 1, 40}, {1, 17, 700, 64, 100}},
        {8, 4, 128, 32, 3, {1, 1, 2}, {33, 250, 90}},
        {16, 2, 128, 64, 3, {1, 1, 1}, {5, 300, 64}}, /* 8 per KV head: two head groups a block each */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int di = 0; di < 2; di++) {
            attn_run(&cases[i], k_dts[di], IG_ATTN_DECODE_AUTO, 64, pool);
            attn_run(&cases[i], k_dts[di], IG_ATTN_DECODE_AUTO, 256, pool);
            for (int path = IG_ATTN_DECODE_TILED; path <= IG_ATTN_DECODE_STREAM; path++) {
                attn_run(&cases[i], k_dts[di], path, 64, pool);
                attn_run(&cases[i], k_dts[di], path, 128, pool);
                attn_run(&cases[i], k_dts[di], path, 4096, pool);
            }
        }
    ig_pool_destroy(pool);
}

/* ------------------------------------------------------------------ sampling */
static int cmp_desc_id(const void *a, const void *b)
{
    const double *x = a, *y = b; /* [value, id] pairs */
    if (x[0] > y[0]) return -1;
    if (x[0] < y[0]) return 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* Whether `got` is a draw the sampler's definition allows once fp32 rounding of the
 * running sums is accounted for: recomputes the candidate masses in double and accepts a
 * candidate whose cumulative-mass interval reaches within eps * total of the draw point
 * (and of the top-p boundary). eps = 2e-3 bounds the relative error of a sequential fp32
 * sum of up to 32000 terms (n * 2^-24), the CPU sampler's own rounding. */
static bool draw_within_rounding(const float *row, int V, const ignis_sampling *s, const int32_t *hist, int nh,
                                 uint64_t step, int32_t got)
{
    const double eps = 2e-3;
    float *l = malloc(sizeof(float) * V);
    memcpy(l, row, sizeof(float) * V);
    unsigned char *seen = calloc((size_t)V, 1);
    for (int i = 0; i < nh; i++)
        if (!seen[hist[i]]) {
            seen[hist[i]] = 1;
            l[hist[i]] = l[hist[i]] > 0 ? l[hist[i]] / s->repetition_penalty : l[hist[i]] * s->repetition_penalty;
        }
    double *c = malloc(sizeof(double) * 2 * V);
    for (int i = 0; i < V; i++) {
        c[2 * i] = l[i] / s->temperature;
        c[2 * i + 1] = i;
    }
    bool sorted = s->top_k > 0 || s->top_p < 1.0f;
    int n = V;
    if (sorted) {
        qsort(c, (size_t)V, 2 * sizeof(double), cmp_desc_id);
        if (s->top_k > 0 && s->top_k < n) n = s->top_k;
    }
    double mx = c[0];
    for (int i = 0; i < n; i++)
        mx = c[2 * i] > mx ? c[2 * i] : mx;
    double *cum = malloc(sizeof(double) * (n + 1));
    cum[0] = 0;
    for (int i = 0; i < n; i++)
        cum[i + 1] = cum[i] + exp((double)(float)c[2 * i] - mx);
    double S = cum[n], kept = S;
    if (s->top_p < 1.0f)
        for (int i = 0; i < n; i++)
            if (cum[i + 1] >= s->top_p * S) {
                kept = cum[i + 1];
                break;
            }
    double target = ig_uniform01(s->seed, step) * kept;
    bool ok = false;
    for (int j = 0; j < n; j++)
        if ((int32_t)c[2 * j + 1] == got)
            ok = cum[j] <= target + eps * S && cum[j + 1] >= target - eps * S && cum[j] <= kept + eps * S;
    free(l);
    free(seen);
    free(c);
    free(cum);
    return ok;
}

static void test_cuda_sampling_matches_cpu_sampler(void **state)
{
    (void)state;
    const int vocabs[2] = {1000, 32000};
    const ignis_sampling cfgs[] = {
        {0.0f, 0, 1.0f, 1.0f, 1},   /* greedy */
        {0.0f, 0, 1.0f, 1.3f, 2},   /* greedy + repetition penalty */
        {0.8f, 0, 1.0f, 1.0f, 3},   /* temperature only */
        {1.0f, 40, 1.0f, 1.0f, 4},  /* top-k */
        {0.7f, 0, 0.9f, 1.0f, 5},   /* top-p */
        {1.2f, 50, 0.95f, 1.2f, 6}, /* everything */
        {1.0f, 1, 1.0f, 1.0f, 7},   /* top-k 1 */
        /* radix-select bounds: the largest k it takes, the first it leaves to the full sort */
        {1.0f, IG_SAMPLE_SELECT_K, 0.98f, 1.0f, 8},
        {1.0f, IG_SAMPLE_SELECT_K + 1, 1.0f, 1.0f, 9},
        /* pure top-p, peaked: the nucleus ends within the top 1024 (speculative select);
         * the flatter top-p row above (T 0.7) takes the full sort after the attempt */
        {0.1f, 0, 0.9f, 1.0f, 11},
        {0.5f, 100, 1.0f, 1.0f, 10}, /* logits rounded to halves below: ties across the k-th */
    };
    const int n_cfg = sizeof cfgs / sizeof cfgs[0];
    const int draws = 12, rows = n_cfg * draws;
    for (int vi = 0; vi < 2; vi++) {
        int V = vocabs[vi], ld = V + 64;
        uint64_t rs = 42 + (uint64_t)V;
        float *logits = malloc(sizeof(float) * rows * ld);
        for (int i = 0; i < rows * ld; i++)
            logits[i] = 4.0f * ct_rand(&rs);
        /* many exact ties (and -0 next to +0) around the k-th largest logit: halves (a few
         * hundred to 2,000 equal keys, which the select ranks in shared memory) and, every
         * other draw, only -1, 0 and 1 (~10,000 equal keys: its row-scan path) */
        for (int r = (n_cfg - 1) * draws; r < rows; r++)
            for (int i = 0; i < V; i++) {
                float *x = &logits[(size_t)r * ld + i];
                *x = r % 2 ? roundf(*x * 0.25f) : roundf(*x * 2.0f) * 0.5f;
            }
        /* exact ties at the top: the lowest index must win (not on the tie rows above,
         * where the draw must fall among the tied candidates themselves) */
        for (int r = 0; r < (n_cfg - 1) * draws; r++) {
            logits[(size_t)r * ld + 17] = 9.0f;
            logits[(size_t)r * ld + 3] = 9.0f;
        }
        int32_t hist[64];
        for (int i = 0; i < 64; i++)
            hist[i] = (i * 37) % 40; /* repeats on purpose */
        ig_sample_dev *sp = malloc(sizeof(ig_sample_dev) * rows);
        int32_t *want = malloc(sizeof(int32_t) * rows);
        for (int ci = 0; ci < n_cfg; ci++)
            for (int d = 0; d < draws; d++) {
                int r = ci * draws + d;
                const ignis_sampling *s = &cfgs[ci];
                sp[r].temperature = s->temperature;
                sp[r].top_k = s->top_k;
                sp[r].top_p = s->top_p;
                sp[r].repetition_penalty = s->repetition_penalty;
                sp[r].u = ig_uniform01(s->seed, (uint64_t)d);
                sp[r].hist_off = 0;
                sp[r].hist_len = 64;
                want[r] = ignis_sample_logits(logits + (size_t)r * ld, V, s, hist, 64, (uint64_t)d);
            }
        float *dl = ct_dev_from(logits, sizeof(float) * rows * ld);
        ig_sample_dev *dsp = ct_dev_from(sp, sizeof(ig_sample_dev) * rows);
        int32_t *dh = ct_dev_from(hist, sizeof hist);
        int32_t *dids = ct_dev_poisoned(sizeof(int32_t) * rows);
        size_t wsb = ig_sample_ws_bytes(rows, V);
        void *ws = ct_dev_poisoned(wsb);
        CT_CK(ig_k_sample(dl, rows, V, ld, dsp, dh, 1, 1, ws, wsb, dids, 0));
        int32_t *got = malloc(sizeof(int32_t) * rows);
        CT_CK(cudaMemcpy(got, dids, sizeof(int32_t) * rows, cudaMemcpyDeviceToHost));
        int same = 0, rounding = 0;
        for (int r = 0; r < rows; r++) {
            const ignis_sampling *s = &cfgs[r / draws];
            if (got[r] == want[r]) {
                same++;
                continue;
            }
            /* greedy and small candidate sets must agree exactly; a draw among thousands of
             * near-equal tails may differ by the CPU's own fp32 summation error */
            if (s->temperature > 0 &&
                draw_within_rounding(logits + (size_t)r * ld, V, s, hist, 64, (uint64_t)(r % draws), got[r]))
                rounding++;
            else
                fail_msg("sampling vocab %d config %d draw %d: expected id %d (CPU sampler), got %d", V, r / draws,
                         r % draws, want[r], got[r]);
        }
        print_message(
            "  sampling vocab %d: %d rows identical to the CPU sampler, %d within fp32 rounding of the draw\n", V, same,
            rounding);
        if (same < rows * 9 / 10) fail_msg("sampling vocab %d: only %d of %d rows identical", V, same, rows);
        cudaFree(dl);
        cudaFree(dsp);
        cudaFree(dh);
        cudaFree(dids);
        cudaFree(ws);
        free(logits);
        free(sp);
        free(want);
        free(got);
    }
}

int main(void)
{
    CT_SKIP_WITHOUT_GPU();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuda_synth_is_bit_identical_to_host_fill),
        cmocka_unit_test(test_cuda_embed_matches_cpu),
        cmocka_unit_test(test_cuda_rmsnorm_residual_matches_cpu),
        cmocka_unit_test(test_cuda_silu_mul_matches_cpu),
        cmocka_unit_test(test_cuda_gemv_matches_cpu),
        cmocka_unit_test(test_cuda_large_smem_gemv_runs_on_every_device),
        cmocka_unit_test(test_cuda_rope_kv_matches_cpu),
        cmocka_unit_test(test_cuda_fused_gemv_matches_cpu),
        cmocka_unit_test(test_cuda_kv_copy_copies_only_the_prefix),
        cmocka_unit_test(test_cuda_attention_matches_cpu_paged_mixed_batch),
        cmocka_unit_test(test_cuda_sampling_matches_cpu_sampler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
