/* Prefill attention: flash attention (FA2 style) on tensor cores with mma.sync m16n8k16,
 * causal, GQA, variable sequence lengths in one batch, K/V read from the paged cache.
 *
 * Tiling: grid (query tile, query head, sequence); a block of 4 warps owns 64 query rows
 * of one head (16 rows per warp) and walks the sequence's keys in tiles of 64 up to the
 * tile's last causal position. Heavy (late) query tiles are scheduled first.
 *  - Q tile: loaded once to shared memory, then kept as A fragments in registers.
 *  - K/V tiles: gathered row by row through the block table with cp.async (16-byte,
 *    zero-filled past the end), double-buffered so tile j+1 streams in while tile j
 *    computes. Rows are padded by 16 bytes, so ldmatrix's 8 row addresses hit distinct
 *    banks.
 *  - S = Q K^T with ldmatrix (K rows are B's columns as stored); online softmax in
 *    registers (row max/sum over the quad of threads sharing a row, exp2 with the scale
 *    folded in); P converted in registers to A fragments; O += P V with ldmatrix.trans.
 * HBM traffic per block: Q tile once, each needed K/V tile once (shared by the G query
 * heads of a KV head through L2), O once. Shared memory: (64 + 4 * 64) * (D + 8) * 2 bytes
 * (87 KB at D = 128: two blocks per SM). */
#include "common.cuh"
#include "ig_kernels.h"

#define AP_BR 64
#define AP_BC 64
#define AP_THREADS 128
#define LOG2E 1.4426950408889634f

template <typename T> struct mma_op;
template <> struct mma_op<__half> {
    static __device__ __forceinline__ void run(float *c, const uint32_t *a, uint32_t b0, uint32_t b1)
    {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};
template <> struct mma_op<__nv_bfloat16> {
    static __device__ __forceinline__ void run(float *c, const uint32_t *a, uint32_t b0, uint32_t b1)
    {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
};

__device__ __forceinline__ void ldsm_x4(uint32_t *r, const void *p)
{
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t *r, const void *p)
{
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}
__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, bool valid)
{
    uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
    int n = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(s), "l"(gmem), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }

template <typename T> __device__ __forceinline__ uint32_t pack2(float a, float b)
{
    typename ig_tt<T>::T2 h = ig_tt<T>::from_f2(a, b);
    return *reinterpret_cast<uint32_t *>(&h);
}

template <typename T, int D>
__global__ void __launch_bounds__(AP_THREADS) k_attn_prefill(const T *__restrict__ q, ig_batch_dev b, ig_kv_desc kv,
                                                             int layer, int nh, float scale, T *__restrict__ out)
{
    constexpr int DP = D + 8;
    constexpr int VPR = D / 8; /* 16-byte vectors per row */
    extern __shared__ __align__(16) unsigned char smem[];
    T *Qs = reinterpret_cast<T *>(smem);
    T *Ks = Qs + AP_BR * DP; /* [2][64][DP] */
    T *Vs = Ks + 2 * AP_BC * DP;

    ig_pdl_wait();
    ig_pdl_trigger();
    const int seq = blockIdx.z, h = blockIdx.y;
    const int qs = b.q_start[seq], ql = b.q_start[seq + 1] - qs;
    if (ql < 2) return; /* single tokens go through the decode kernel */
    const int n_qt = (ql + AP_BR - 1) / AP_BR;
    const int qt = n_qt - 1 - (int)blockIdx.x; /* heaviest tiles first */
    if (qt < 0) return;
    const int ctx = b.kv_len[seq], pos0 = ctx - ql;
    const int q0 = qt * AP_BR;
    const int q_rows = min(AP_BR, ql - q0);
    const int kv_end = pos0 + q0 + q_rows; /* last query's position + 1 */
    const int n_kt = (kv_end + AP_BC - 1) / AP_BC;
    const int G = nh / kv.n_kv_heads, kvh = h / G;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const T *pool = reinterpret_cast<const T *>(kv.pool);
    const int32_t *table = b.block_table + (int64_t)seq * b.max_blocks;

    for (int c = tid; c < AP_BR * VPR; c += AP_THREADS) {
        int r = c / VPR, cv = c - r * VPR;
        bool ok = r < q_rows;
        const T *src = ok ? q + (int64_t)(qs + q0 + r) * nh * D + (int64_t)h * D + cv * 8 : q;
        cp_async16(Qs + r * DP + cv * 8, src, ok);
    }
    auto load_kv = [&](int kt, int buf) {
        T *kd = Ks + buf * AP_BC * DP, *vd = Vs + buf * AP_BC * DP;
        for (int c = tid; c < AP_BC * VPR; c += AP_THREADS) {
            int r = c / VPR, cv = c - r * VPR;
            int pos = kt * AP_BC + r;
            bool ok = pos < kv_end;
            const T *ks = pool, *vs = pool;
            if (ok) {
                int64_t blk = table[pos / kv.block_len];
                int64_t so = (int64_t)(pos % kv.block_len) * D + cv * 8;
                ks = pool + ig_kv_tile_off(kv, blk, layer, 0, kvh) + so;
                vs = pool + ig_kv_tile_off(kv, blk, layer, 1, kvh) + so;
            }
            cp_async16(kd + r * DP + cv * 8, ks, ok);
            cp_async16(vd + r * DP + cv * 8, vs, ok);
        }
    };
    load_kv(0, 0);
    cp_async_commit();

    uint32_t qf[D / 16][4];
    float o[D / 8][4];
#pragma unroll
    for (int i = 0; i < D / 8; i++)
        o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float m_r[2] = {-INFINITY, -INFINITY}, l_r[2] = {0.0f, 0.0f};
    const float qscale = scale * LOG2E;
    const int row0 = warp * 16 + (lane >> 2); /* this thread's rows: row0, row0 + 8 */
    const int qpos0 = pos0 + q0 + row0, qpos1 = qpos0 + 8;

    for (int kt = 0; kt < n_kt; kt++) {
        const int buf = kt & 1;
        if (kt + 1 < n_kt) {
            load_kv(kt + 1, buf ^ 1);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        if (kt == 0) {
#pragma unroll
            for (int kc = 0; kc < D / 16; kc++)
                ldsm_x4(qf[kc], Qs + (warp * 16 + (lane & 15)) * DP + kc * 16 + (lane >> 4) * 8);
        }
        const T *Kb = Ks + buf * AP_BC * DP, *Vb = Vs + buf * AP_BC * DP;

        float s[8][4];
#pragma unroll
        for (int i = 0; i < 8; i++)
            s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
        for (int kc = 0; kc < D / 16; kc++) {
#pragma unroll
            for (int np = 0; np < 4; np++) {
                uint32_t r[4];
                ldsm_x4(r, Kb + (np * 16 + (lane & 7) + (lane >> 4) * 8) * DP + kc * 16 + ((lane >> 3) & 1) * 8);
                mma_op<T>::run(s[2 * np], qf[kc], r[0], r[1]);
                mma_op<T>::run(s[2 * np + 1], qf[kc], r[2], r[3]);
            }
        }
        /* scale, causal mask (only tiles that reach past the first row's position) */
        const int k0 = kt * AP_BC;
        const bool need_mask = k0 + AP_BC - 1 > pos0 + q0;
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float v = s[nt][e] * qscale;
                if (need_mask) {
                    int kp = k0 + nt * 8 + (lane & 3) * 2 + (e & 1);
                    int qp = e < 2 ? qpos0 : qpos1;
                    if (kp > qp || kp >= kv_end) v = -INFINITY;
                }
                s[nt][e] = v;
            }
            mx0 = fmaxf(mx0, fmaxf(s[nt][0], s[nt][1]));
            mx1 = fmaxf(mx1, fmaxf(s[nt][2], s[nt][3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        float mn0 = fmaxf(m_r[0], mx0), mn1 = fmaxf(m_r[1], mx1);
        /* a row fully masked so far keeps m = -inf: use 0 as the base to avoid inf - inf */
        float b0 = mn0 == -INFINITY ? 0.0f : mn0, b1 = mn1 == -INFINITY ? 0.0f : mn1;
        float al0 = exp2f(m_r[0] - b0), al1 = exp2f(m_r[1] - b1);
        m_r[0] = mn0;
        m_r[1] = mn1;
        float rs0 = 0.0f, rs1 = 0.0f;
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            s[nt][0] = exp2f(s[nt][0] - b0);
            s[nt][1] = exp2f(s[nt][1] - b0);
            s[nt][2] = exp2f(s[nt][2] - b1);
            s[nt][3] = exp2f(s[nt][3] - b1);
            rs0 += s[nt][0] + s[nt][1];
            rs1 += s[nt][2] + s[nt][3];
        }
        l_r[0] = l_r[0] * al0 + rs0; /* thread-partial row sums; the quad is summed at the end */
        l_r[1] = l_r[1] * al1 + rs1;
#pragma unroll
        for (int dt = 0; dt < D / 8; dt++) {
            o[dt][0] *= al0;
            o[dt][1] *= al0;
            o[dt][2] *= al1;
            o[dt][3] *= al1;
        }
#pragma unroll
        for (int kc = 0; kc < AP_BC / 16; kc++) {
            uint32_t a[4];
            a[0] = pack2<T>(s[2 * kc][0], s[2 * kc][1]);
            a[1] = pack2<T>(s[2 * kc][2], s[2 * kc][3]);
            a[2] = pack2<T>(s[2 * kc + 1][0], s[2 * kc + 1][1]);
            a[3] = pack2<T>(s[2 * kc + 1][2], s[2 * kc + 1][3]);
#pragma unroll
            for (int dp = 0; dp < D / 16; dp++) {
                uint32_t r[4];
                ldsm_x4_t(r, Vb + (kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * DP + dp * 16 + (lane >> 4) * 8);
                mma_op<T>::run(o[2 * dp], a, r[0], r[1]);
                mma_op<T>::run(o[2 * dp + 1], a, r[2], r[3]);
            }
        }
        __syncthreads();
    }

    float l0 = l_r[0], l1 = l_r[1];
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
    typedef typename ig_tt<T>::T2 T2;
    if (row0 < q_rows) {
        T *dst = out + (int64_t)(qs + q0 + row0) * nh * D + (int64_t)h * D + (lane & 3) * 2;
#pragma unroll
        for (int dt = 0; dt < D / 8; dt++)
            *reinterpret_cast<T2 *>(dst + dt * 8) = ig_tt<T>::from_f2(o[dt][0] * inv0, o[dt][1] * inv0);
    }
    if (row0 + 8 < q_rows) {
        T *dst = out + (int64_t)(qs + q0 + row0 + 8) * nh * D + (int64_t)h * D + (lane & 3) * 2;
#pragma unroll
        for (int dt = 0; dt < D / 8; dt++)
            *reinterpret_cast<T2 *>(dst + dt * 8) = ig_tt<T>::from_f2(o[dt][2] * inv1, o[dt][3] * inv1);
    }
}

extern "C" int ig_attn_prefill_supported(int head_dim) { return head_dim == 64 || head_dim == 128; }

template <typename T, int D>
static cudaError_t launch_prefill(const void *q, ig_batch_dev b, ig_kv_desc kv, int layer, int nh, float scale,
                                  int max_q_len, void *out, cudaStream_t st)
{
    size_t smem = (size_t)(AP_BR + 4 * AP_BC) * (D + 8) * sizeof(T);
    static ig_dev_flags raised;
    cudaError_t e = ig_smem_allow(k_attn_prefill<T, D>, smem, &raised);
    if (e != cudaSuccess) return e;
    dim3 grid((max_q_len + AP_BR - 1) / AP_BR, nh, b.n_seqs);
    return ig_launch(k_attn_prefill<T, D>, grid, dim3(AP_THREADS), smem, st, (const T *)q, b, kv, layer, nh, scale,
                     (T *)out);
}

extern "C" cudaError_t ig_k_attn_prefill(ig_dtype dt, const void *q, ig_batch_dev b, ig_kv_desc kv, int layer,
                                         int n_heads, float scale, int max_q_len, void *out, cudaStream_t st)
{
    if (max_q_len < 2 || b.n_seqs <= 0) return cudaSuccess;
    int D = kv.head_dim;
    if (dt == IG_F16) {
        if (D == 64) return launch_prefill<__half, 64>(q, b, kv, layer, n_heads, scale, max_q_len, out, st);
        if (D == 128) return launch_prefill<__half, 128>(q, b, kv, layer, n_heads, scale, max_q_len, out, st);
    } else if (dt == IG_BF16) {
        if (D == 64) return launch_prefill<__nv_bfloat16, 64>(q, b, kv, layer, n_heads, scale, max_q_len, out, st);
        if (D == 128) return launch_prefill<__nv_bfloat16, 128>(q, b, kv, layer, n_heads, scale, max_q_len, out, st);
    }
    return cudaErrorInvalidValue;
}
