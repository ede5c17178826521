/* Decode attention: split-K flash-decoding over paged KV blocks, GQA-aware. Also the
 * generic attention path for head sizes the tensor-core prefill kernel does not take.
 *
 * Work split: grid (split, kv head, selected token). A block owns one query token and all
 * G = n_heads / n_kv_heads query heads that share its KV head, over a contiguous range of
 * `split_len` key positions: so K/V bytes are read from HBM once per token and group,
 * never once per query head.
 *
 * Per 64-key tile (128 threads):
 *  1. the tile's 64 block ids are read once, then K and V rows are gathered with 16-byte
 *     loads, 8 + 8 in flight per thread, into shared memory (rows padded by 16 bytes:
 *     row-parallel 16-byte reads of consecutive rows then hit distinct banks);
 *  2. scores S[g][j] = q_g . k_j (q pre-scaled by scale*log2(e), kept fp32 in smem): one
 *     thread per (g, key);
 *  3. online softmax per head: one warp per head reduces the tile's max, rescales the
 *     running sum, turns S into probabilities;
 *  4. O[g][d] = O * alpha + P V with each thread owning fixed (g, 2 dims) accumulators in
 *     registers (G * D <= 2048).
 * With several splits, partial (m, l, O) go to a workspace and the last block of each
 * (token, KV head) to finish merges them with the usual log-sum-exp rescaling. Traffic per block: its keys' K and V once. */
#include "common.cuh"
#include "ig_kernels.h"

#define AD_THREADS 128
#define AD_TILE 64
#define AD_MAX_ITEMS 8 /* float2 accumulators per thread: G * D / 2 <= 8 * 128 */
#define AD_LOADS 8     /* K and V 16-byte loads in flight per thread while filling a tile */
#define LOG2E 1.4426950408889634f

__device__ __forceinline__ int64_t ad_kv_off(const ig_kv_desc &kv, int64_t block, int layer, int k, int h)
{
    return ((((block * kv.n_layers + layer) * 2 + k) * kv.n_kv_heads + h) * (int64_t)kv.block_len) * kv.head_dim;
}

template <typename T>
__global__ void __launch_bounds__(AD_THREADS)
    k_attn_decode(const T *__restrict__ q, ig_batch_dev b, ig_kv_desc kv, int layer, int nh, float scale,
                  const int32_t *__restrict__ sel, int n_splits, int split_len, float *__restrict__ ws,
                  int *__restrict__ counters,
                  T *__restrict__ out)
{
    extern __shared__ __align__(16) unsigned char smem[];
    const int D = kv.head_dim, nkv = kv.n_kv_heads, G = nh / nkv, DP = D + 8;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int split = blockIdx.x, kvh = blockIdx.y, si = blockIdx.z;
    ig_pdl_wait();
    ig_pdl_trigger();
    const int t = sel[si];
    const int seq = b.tok_seq[t], ctx = b.tok_pos[t] + 1;
    const int k_begin = split * split_len;
    if (k_begin >= ctx) return;
    const int k_end = min(ctx, k_begin + split_len);

    float *q_s = reinterpret_cast<float *>(smem);          /* [G][D] */
    float *S = q_s + G * D;                                 /* [G][64] */
    __shared__ int blk_s[AD_TILE]; /* cache block id of each key row of the tile */
    const int G4 = (G + 3) & ~3; /* keeps every area 16-byte aligned */
    float *m_s = S + G * AD_TILE, *l_s = m_s + G4, *a_s = l_s + G4;
    T *Ks = reinterpret_cast<T *>(a_s + G4); /* [64][DP] */
    T *Vs = Ks + AD_TILE * DP;

    const int h0 = kvh * G;
    const float qscale = scale * LOG2E;
    for (int e = tid; e < G * D; e += AD_THREADS)
        q_s[e] = ig_to_f<T>(q[(int64_t)t * nh * D + (int64_t)h0 * D + e]) * qscale;
    if (tid < G) {
        m_s[tid] = -INFINITY;
        l_s[tid] = 0.0f;
    }
    const int items = G * D / 2;
    float2 acc[AD_MAX_ITEMS];
#pragma unroll
    for (int j = 0; j < AD_MAX_ITEMS; j++) acc[j] = make_float2(0.0f, 0.0f);

    const T *pool = reinterpret_cast<const T *>(kv.pool);
    const int32_t *table = b.block_table + (int64_t)seq * b.max_blocks;
    const int vpr = D / 8; /* 16-byte vectors per row */

    for (int k0 = k_begin; k0 < k_end; k0 += AD_TILE) {
        const int n = min(AD_TILE, k_end - k0);
        /* Latency matters more than bandwidth here (at batch 1 a block moves 32 KB): resolve
         * the tile's block ids once (one round trip), then issue every K/V load of a thread
         * before storing any (AD_LOADS in flight), instead of a table -> K/V round trip per
         * 16-byte chunk. */
        if (tid < AD_TILE) blk_s[tid] = tid < n ? table[(k0 + tid) / kv.block_len] : 0;
        __syncthreads();
        for (int c0 = tid; c0 < AD_TILE * vpr; c0 += AD_LOADS * AD_THREADS) {
            uint4 kr[AD_LOADS], vr[AD_LOADS];
#pragma unroll
            for (int u = 0; u < AD_LOADS; u++) {
                int c = c0 + u * AD_THREADS, r = c / vpr, cv = c - r * vpr;
                kr[u] = vr[u] = make_uint4(0, 0, 0, 0);
                if (c < AD_TILE * vpr && r < n) {
                    int64_t so = (int64_t)((k0 + r) % kv.block_len) * D + cv * 8;
                    kr[u] = *reinterpret_cast<const uint4 *>(pool + ad_kv_off(kv, blk_s[r], layer, 0, kvh) + so);
                    vr[u] = *reinterpret_cast<const uint4 *>(pool + ad_kv_off(kv, blk_s[r], layer, 1, kvh) + so);
                }
            }
#pragma unroll
            for (int u = 0; u < AD_LOADS; u++) {
                int c = c0 + u * AD_THREADS, r = c / vpr, cv = c - r * vpr;
                if (c < AD_TILE * vpr) {
                    *reinterpret_cast<uint4 *>(Ks + r * DP + cv * 8) = kr[u];
                    *reinterpret_cast<uint4 *>(Vs + r * DP + cv * 8) = vr[u];
                }
            }
        }
        __syncthreads();
        for (int e = tid; e < G * AD_TILE; e += AD_THREADS) {
            int g = e / AD_TILE, j = e - g * AD_TILE;
            float s = -INFINITY;
            if (j < n) {
                /* two independent partial sums: the dot is a latency chain at batch 1 */
                float s0 = 0.0f, s1 = 0.0f;
                const float *qg = q_s + g * D;
                const T *kr = Ks + j * DP;
                int d = 0;
                for (; d + 16 <= D; d += 16) {
                    float f[8], h[8];
                    ig_unpack8<T>(*reinterpret_cast<const uint4 *>(kr + d), f);
                    ig_unpack8<T>(*reinterpret_cast<const uint4 *>(kr + d + 8), h);
#pragma unroll
                    for (int u = 0; u < 8; u++) {
                        s0 += qg[d + u] * f[u];
                        s1 += qg[d + 8 + u] * h[u];
                    }
                }
                if (d < D) {
                    float f[8];
                    ig_unpack8<T>(*reinterpret_cast<const uint4 *>(kr + d), f);
#pragma unroll
                    for (int u = 0; u < 8; u++) s0 += qg[d + u] * f[u];
                }
                s = s0 + s1;
            }
            S[g * AD_TILE + j] = s;
        }
        __syncthreads();
        for (int g = warp; g < G; g += AD_THREADS / 32) {
            float v0 = S[g * AD_TILE + lane], v1 = S[g * AD_TILE + lane + 32];
            float mx = ig_warp_max(fmaxf(v0, v1));
            float m_old = m_s[g], m_new = fmaxf(m_old, mx);
            float p0 = exp2f(v0 - m_new), p1 = exp2f(v1 - m_new);
            S[g * AD_TILE + lane] = p0;
            S[g * AD_TILE + lane + 32] = p1;
            float sum = ig_warp_sum(p0 + p1);
            if (lane == 0) {
                float alpha = exp2f(m_old - m_new); /* m_old = -inf on the first tile: 0 */
                a_s[g] = alpha;
                l_s[g] = l_s[g] * alpha + sum;
                m_s[g] = m_new;
            }
        }
        __syncthreads();
#pragma unroll
        for (int jj = 0; jj < AD_MAX_ITEMS; jj++) {
            int it = tid + jj * AD_THREADS;
            if (it < items) {
                int g = it / (D / 2), d = (it - g * (D / 2)) * 2;
                float alpha = a_s[g];
                float2 o = make_float2(acc[jj].x * alpha, acc[jj].y * alpha);
                const float *p = S + g * AD_TILE;
                /* 4 independent accumulators over keys; rows past n are zero-filled and
                 * their p is exp2(-inf) = 0, so running to a multiple of 4 is exact */
                float2 o1 = make_float2(0.0f, 0.0f), o2 = o1, o3 = o1;
                typedef typename ig_tt<T>::T2 T2;
                for (int j = 0; j < n; j += 4) {
                    float2 v0 = ig_tt<T>::to_f2(*reinterpret_cast<const T2 *>(Vs + j * DP + d));
                    float2 v1 = ig_tt<T>::to_f2(*reinterpret_cast<const T2 *>(Vs + (j + 1) * DP + d));
                    float2 v2 = ig_tt<T>::to_f2(*reinterpret_cast<const T2 *>(Vs + (j + 2) * DP + d));
                    float2 v3 = ig_tt<T>::to_f2(*reinterpret_cast<const T2 *>(Vs + (j + 3) * DP + d));
                    o.x += p[j] * v0.x;
                    o.y += p[j] * v0.y;
                    o1.x += p[j + 1] * v1.x;
                    o1.y += p[j + 1] * v1.y;
                    o2.x += p[j + 2] * v2.x;
                    o2.y += p[j + 2] * v2.y;
                    o3.x += p[j + 3] * v3.x;
                    o3.y += p[j + 3] * v3.y;
                }
                o.x += (o1.x + o2.x) + o3.x;
                o.y += (o1.y + o2.y) + o3.y;
                acc[jj] = o;
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int jj = 0; jj < AD_MAX_ITEMS; jj++) {
        int it = tid + jj * AD_THREADS;
        if (it < items) {
            int g = it / (D / 2), d = (it - g * (D / 2)) * 2;
            int h = h0 + g;
            if (n_splits == 1) {
                float inv = 1.0f / l_s[g];
                *reinterpret_cast<typename ig_tt<T>::T2 *>(out + (int64_t)t * nh * D + (int64_t)h * D + d) =
                    ig_tt<T>::from_f2(acc[jj].x * inv, acc[jj].y * inv);
            } else {
                int64_t pi = ((int64_t)si * nh + h) * n_splits + split;
                *reinterpret_cast<float2 *>(ws + pi * D + d) = acc[jj];
                if (d == 0) {
                    float *ml = ws + (int64_t)gridDim.z * nh * n_splits * D + pi * 2;
                    ml[0] = m_s[g];
                    ml[1] = l_s[g];
                }
            }
        }
    }
    if (n_splits == 1) return;

    /* Split merge, done by whichever block of this (token, KV head) finishes last: every
     * block publishes its partials, then counts itself in; the last one (count == used)
     * merges O = sum_i O_i 2^(m_i - M) / sum_i l_i 2^(m_i - M) and re-arms the counter for
     * the next launch (CUDA-graph replays reuse it). Saves a second kernel per layer. */
    __shared__ int last;
    __threadfence();
    __syncthreads();
    int *counter = counters + (int64_t)si * nkv + kvh;
    const int used = min(n_splits, (ctx + split_len - 1) / split_len);
    if (tid == 0) last = atomicAdd(counter, 1) == used - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    if (tid == 0) *counter = 0;
    const float *mlb = ws + (int64_t)gridDim.z * nh * n_splits * D;
    /* stage every split's (m, l) in shared memory with parallel loads (S is free now:
     * G * 64 floats hold 2 * used <= 64 values per head), so the merge below reads L2 only
     * for the partial O values, 4 independent loads at a time — a serial chain of
     * dependent L2 loads per split would dominate the kernel at batch 1 */
    for (int e = tid; e < G * used; e += AD_THREADS) {
        int g = e / used, i = e - g * used;
        int64_t pi = ((int64_t)si * nh + h0 + g) * n_splits + i;
        S[g * AD_TILE + 2 * i] = __ldcg(mlb + pi * 2);
        S[g * AD_TILE + 2 * i + 1] = __ldcg(mlb + pi * 2 + 1);
    }
    __syncthreads();
    for (int it = tid; it < G * D; it += AD_THREADS) {
        int g = it / D, d = it - g * D, h = h0 + g;
        const float *ml = S + g * AD_TILE;
        int64_t base = ((int64_t)si * nh + h) * n_splits;
        float M = -INFINITY;
        for (int i = 0; i < used; i++) M = fmaxf(M, ml[2 * i]);
        float L = 0.0f, o = 0.0f;
        int i = 0;
        for (; i + 4 <= used; i += 4) {
            float o0 = __ldcg(ws + (base + i) * D + d), o1 = __ldcg(ws + (base + i + 1) * D + d);
            float o2 = __ldcg(ws + (base + i + 2) * D + d), o3 = __ldcg(ws + (base + i + 3) * D + d);
            float w0 = exp2f(ml[2 * i] - M), w1 = exp2f(ml[2 * i + 2] - M);
            float w2 = exp2f(ml[2 * i + 4] - M), w3 = exp2f(ml[2 * i + 6] - M);
            L += ml[2 * i + 1] * w0 + ml[2 * i + 3] * w1 + ml[2 * i + 5] * w2 + ml[2 * i + 7] * w3;
            o += o0 * w0 + o1 * w1 + o2 * w2 + o3 * w3;
        }
        for (; i < used; i++) {
            float w = exp2f(ml[2 * i] - M);
            L += ml[2 * i + 1] * w;
            o += __ldcg(ws + (base + i) * D + d) * w;
        }
        out[(int64_t)t * nh * D + (int64_t)h * D + d] = ig_from_f<T>(o / L);
    }
}

static size_t ad_smem_bytes(int G, int D)
{
    size_t G4 = (size_t)((G + 3) & ~3);
    size_t f = (size_t)G * D + (size_t)G * AD_TILE + 3 * G4;
    return f * 4 + 2 * (size_t)AD_TILE * (D + 8) * 2;
}

extern "C" size_t ig_attn_decode_ws_floats(int n_sel, int n_heads, int head_dim, int n_splits)
{
    /* partial O, then (m, l) pairs */
    return (size_t)n_sel * n_heads * n_splits * (head_dim + 2);
}

extern "C" cudaError_t ig_k_attn_decode(ig_dtype dt, const void *q, ig_batch_dev b, ig_kv_desc kv, int layer,
                                        int n_heads, float scale, const int32_t *sel, int n_sel, int n_splits,
                                        int split_len, float *ws, int *counters, void *out, cudaStream_t st)
{
    if (n_sel <= 0) return cudaSuccess;
    int G = n_heads / kv.n_kv_heads, D = kv.head_dim;
    /* the split merge stages 2 floats per split in a 64-float row: at most 32 splits */
    if (G * D / 2 > AD_MAX_ITEMS * AD_THREADS || D % 8 != 0 || D > 256 || split_len % AD_TILE != 0 ||
        n_splits < 1 || n_splits > 32)
        return cudaErrorInvalidValue;
    size_t smem = ad_smem_bytes(G, D);
    dim3 grid(n_splits, kv.n_kv_heads, n_sel);
    IG_DISPATCH_T(dt, T, {
        static size_t granted = 48 * 1024;
        if (smem > granted) {
            cudaError_t e = cudaFuncSetAttribute(k_attn_decode<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 (int)smem);
            if (e != cudaSuccess) return e;
            granted = smem;
        }
        return ig_launch(k_attn_decode<T>, grid, dim3(AD_THREADS), smem, st, (const T *)q, b, kv, layer, n_heads, scale,
                         sel, n_splits, split_len, ws, counters, (T *)out);
    });
    return cudaGetLastError();
}
