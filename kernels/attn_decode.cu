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
 * (token, KV head) to finish merges them with the usual log-sum-exp rescaling. Traffic per block: its keys' K and V
 * once. */
#include "common.cuh"
#include "ig_kernels.h"

#define AD_THREADS 128
#define AD_TILE 64
#define AD_MAX_ITEMS 8 /* float2 accumulators per thread: G * D / 2 <= 8 * 128 */
#define AD_LOADS 8     /* K and V 16-byte loads in flight per thread while filling a tile */
#define LOG2E 1.4426950408889634f

/* The split workspace holds every split's partial O ([sel][head][split][D]), then the
 * (m, l) pairs in the same order: where those pairs start. */
template <typename F> __device__ __forceinline__ F *ad_ml_area(F *ws, int nh, int n_splits, int D)
{
    return ws + (int64_t)gridDim.z * nh * n_splits * D;
}

/* Split merge, done by whichever block of this (token, KV head) finishes last: every
 * block has published its partials (O, then m and l), then counts itself in; the last one
 * (count == used * per_split, the blocks each split is made of) merges O = sum_i O_i 2^(m_i - M) / sum_i l_i 2^(m_i -
 * M) and re-arms the counter for the next launch (CUDA-graph replays reuse it). Saves a second kernel per layer. stage:
 * G * 64 floats of shared memory the caller no longer needs. */
template <typename T>
__device__ void ad_merge_splits(const float *ws, int *counters, float *stage, int t, int si, int kvh, int nkv, int h0,
                                int G, int D, int nh, int n_splits, int split_len, int ctx, int per_split, T *out)
{
    __shared__ int last;
    const int tid = threadIdx.x;
    __threadfence();
    __syncthreads();
    int *counter = counters + (int64_t)si * nkv + kvh;
    const int used = min(n_splits, (ctx + split_len - 1) / split_len);
    if (tid == 0) last = atomicAdd(counter, 1) == used * per_split - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    if (tid == 0) *counter = 0;
    const float *mlb = ad_ml_area(ws, nh, n_splits, D);
    /* stage every split's (m, l) in shared memory with parallel loads (2 * used <= 64
     * values per head), so the merge below reads L2 only for the partial O values, 4
     * independent loads at a time — a serial chain of dependent L2 loads per split would
     * dominate the kernel at batch 1 */
    for (int e = tid; e < G * used; e += AD_THREADS) {
        int g = e / used, i = e - g * used;
        int64_t pi = ((int64_t)si * nh + h0 + g) * n_splits + i;
        stage[g * AD_TILE + 2 * i] = __ldcg(mlb + pi * 2);
        stage[g * AD_TILE + 2 * i + 1] = __ldcg(mlb + pi * 2 + 1);
    }
    __syncthreads();
    for (int it = tid; it < G * D; it += AD_THREADS) {
        int g = it / D, d = it - g * D, h = h0 + g;
        const float *ml = stage + g * AD_TILE;
        int64_t base = ((int64_t)si * nh + h) * n_splits;
        float M = -INFINITY;
        for (int i = 0; i < used; i++)
            M = fmaxf(M, ml[2 * i]);
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

template <typename T>
__global__ void __launch_bounds__(AD_THREADS)
    k_attn_decode(const T *__restrict__ q, ig_batch_dev b, ig_kv_desc kv, int layer, int nh, float scale,
                  const int32_t *__restrict__ sel, int n_splits, int split_len, float *__restrict__ ws,
                  int *__restrict__ counters, T *__restrict__ out)
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

    float *q_s = reinterpret_cast<float *>(smem); /* [G][D] */
    float *S = q_s + G * D;                       /* [G][64] */
    __shared__ int blk_s[AD_TILE];                /* cache block id of each key row of the tile */
    const int G4 = (G + 3) & ~3;                  /* keeps every area 16-byte aligned */
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
    for (int j = 0; j < AD_MAX_ITEMS; j++)
        acc[j] = make_float2(0.0f, 0.0f);

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
                    kr[u] = *reinterpret_cast<const uint4 *>(pool + ig_kv_tile_off(kv, blk_s[r], layer, 0, kvh) + so);
                    vr[u] = *reinterpret_cast<const uint4 *>(pool + ig_kv_tile_off(kv, blk_s[r], layer, 1, kvh) + so);
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
                    for (int u = 0; u < 8; u++)
                        s0 += qg[d + u] * f[u];
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
            __syncwarp(); /* every lane has read m_s[g] before lane 0 rewrites it */
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
                    float *ml = ad_ml_area(ws, nh, n_splits, D) + pi * 2;
                    ml[0] = m_s[g];
                    ml[1] = l_s[g];
                }
            }
        }
    }
    if (n_splits == 1) return;
    ad_merge_splits<T>(ws, counters, S, t, si, kvh, nkv, h0, G, D, nh, n_splits, split_len, ctx, 1, out);
}

/* ---- streaming variant (head_dim 128) ----
 * The tiled kernel above moves a tile into shared memory with the whole block, then computes
 * on it with the loads stopped; at large batch each block has only 2-3 tiles and ncu shows
 * it latency-bound at ~2 TB/s. Here every warp streams its own chunks of 2U keys straight
 * into registers and never waits on the other warps until the end, so an SM always has
 * some warp's loads in flight:
 *  - lane = (half, sub): dims [8 sub, 8 sub + 8) of rows half * U + u (u < U) of the chunk,
 *    one 16-byte K and one V load per row, all 2U issued before any arithmetic;
 *  - q . k partial dots over the lane's 8 dims, reduce-scattered over the 16 lanes of the
 *    half (log2(16) shuffle steps, halving the values kept each step), so lane sub ends
 *    with the full score of row half * U + sub / (16 / U);
 *  - online softmax with a warp-uniform running max; probabilities broadcast back by
 *    shuffle, O += p V over the lane's 8 dims;
 *  - at the end the two halves, then the 4 warps, are merged through shared memory.
 * Warps take chunks round-robin; a chunk never crosses a cache block (block_len % 2U == 0,
 * split_len % 64 == 0), so a chunk costs one block-table lookup.
 * A block computes GT of the G query heads that share a KV head (GT = G for G = 1, 2, 4;
 * else 4, the last group masked): q and O take 16 GT registers, so larger groups are split
 * over ceil(G / GT) blocks with consecutive ids that read the same K/V, the second mostly
 * from L2. */
#define AS_WARPS 4
/* keys per half-warp chunk for GT query heads per block: fewer for GT = 4 so q, O and the
 * chunk's K/V stay in registers */
#define AS_KEYS(GT) ((GT) <= 2 ? 8 : 4)
#define AS_MAX_G 16 /* G * D <= 2048 (the tiled kernel's bound) with D = 128 */

template <int U> __device__ __forceinline__ float as_reduce16(float *v, int sub)
{
    int n = U;
#pragma unroll
    for (int m = 8; m >= 1; m >>= 1) {
        if (n > 1) {
            const bool up = sub & m;
            const int h = n / 2;
#pragma unroll
            for (int i = 0; i < h; i++) {
                float send = up ? v[i] : v[i + h], keep = up ? v[i + h] : v[i];
                v[i] = keep + __shfl_xor_sync(0xffffffffu, send, m);
            }
            n = h;
        } else {
            v[0] += __shfl_xor_sync(0xffffffffu, v[0], m);
        }
    }
    return v[0];
}

template <typename T, int GT, int U>
__global__ void __launch_bounds__(AS_WARPS * 32)
    k_attn_decode_stream(const T *__restrict__ q, ig_batch_dev b, ig_kv_desc kv, int layer, int nh, float scale,
                         const int32_t *__restrict__ sel, int n_splits, int split_len, float *__restrict__ ws,
                         int *__restrict__ counters, T *__restrict__ out)
{
    constexpr int D = 128, CH = 2 * U, SPAN = 16 / U;
    __shared__ float o_s[AS_WARPS][GT][D];
    __shared__ float ml_s[AS_WARPS][GT][2];
    __shared__ float stage[AS_MAX_G * AD_TILE];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, half = lane >> 4, sub = lane & 15;
    const int nkv = kv.n_kv_heads, G = nh / nkv, n_groups = (G + GT - 1) / GT;
    const int grp = blockIdx.x % n_groups, split = blockIdx.x / n_groups, kvh = blockIdx.y, si = blockIdx.z;
    ig_pdl_wait();
    ig_pdl_trigger();
    const int t = sel[si];
    const int seq = b.tok_seq[t], ctx = b.tok_pos[t] + 1;
    const int k_begin = split * split_len;
    if (k_begin >= ctx) return;
    const int k_end = min(ctx, k_begin + split_len);
    const int h0 = kvh * G, hg = h0 + grp * GT, ng = min(GT, G - grp * GT), bl = kv.block_len;

    float qr[GT][8], o[GT][8], m[GT], l[GT];
    const float qscale = scale * LOG2E;
#pragma unroll
    for (int g = 0; g < GT; g++) {
        /* a masked head of the last group runs with q = 0 and is never written */
        if (g < ng)
            ig_unpack8<T>(*reinterpret_cast<const uint4 *>(q + (int64_t)t * nh * D + (int64_t)(hg + g) * D + sub * 8),
                          qr[g]);
        else
#pragma unroll
            for (int i = 0; i < 8; i++)
                qr[g][i] = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            qr[g][i] *= qscale;
            o[g][i] = 0.0f;
        }
        m[g] = -INFINITY;
        l[g] = 0.0f;
    }
    const T *pool = reinterpret_cast<const T *>(kv.pool);
    const int32_t *table = b.block_table + (int64_t)seq * b.max_blocks;
    const int own = half * U + sub / SPAN; /* the row whose full score this lane ends with */

    for (int c0 = k_begin + warp * CH; c0 < k_end; c0 += AS_WARPS * CH) {
        const int64_t blk = table[c0 / bl];
        const int64_t row0 = (int64_t)(c0 % bl) * D + sub * 8;
        const T *kp = pool + ig_kv_tile_off(kv, blk, layer, 0, kvh) + row0;
        const T *vp = pool + ig_kv_tile_off(kv, blk, layer, 1, kvh) + row0;
        uint4 kr[U], vr[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            kr[u] = *reinterpret_cast<const uint4 *>(kp + (half * U + u) * D);
            vr[u] = *reinterpret_cast<const uint4 *>(vp + (half * U + u) * D);
        }
        float s[GT][U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            float f[8];
            ig_unpack8<T>(kr[u], f);
#pragma unroll
            for (int g = 0; g < GT; g++) {
                float a = 0.0f, c = 0.0f;
#pragma unroll
                for (int i = 0; i < 8; i += 2) {
                    a += qr[g][i] * f[i];
                    c += qr[g][i + 1] * f[i + 1];
                }
                s[g][u] = a + c;
            }
        }
        const bool valid = c0 + own < k_end;
        float p[GT];
#pragma unroll
        for (int g = 0; g < GT; g++) {
            float sc = as_reduce16<U>(s[g], sub);
            sc = valid ? sc : -INFINITY;
            /* row 0 of every chunk is a real key, so the chunk max is finite */
            float m_new = fmaxf(m[g], ig_warp_max(sc));
            float alpha = exp2f(m[g] - m_new);
            p[g] = exp2f(sc - m_new);
            /* each row's score sits in SPAN lanes of its half: count it once */
            l[g] = l[g] * alpha + (sub % SPAN == 0 ? p[g] : 0.0f);
            m[g] = m_new;
#pragma unroll
            for (int i = 0; i < 8; i++)
                o[g][i] *= alpha;
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            float f[8];
            ig_unpack8<T>(vr[u], f);
            /* rows past the context hold stale or never-written cache bytes: p is 0 there,
             * but 0 * NaN is not */
            if (c0 + half * U + u >= k_end)
#pragma unroll
                for (int i = 0; i < 8; i++)
                    f[i] = 0.0f;
#pragma unroll
            for (int g = 0; g < GT; g++) {
                float pu = __shfl_sync(0xffffffffu, p[g], (half << 4) | (u * SPAN));
#pragma unroll
                for (int i = 0; i < 8; i++)
                    o[g][i] += pu * f[i];
            }
        }
    }

    /* halves share the warp's running max: add them, then publish per warp */
#pragma unroll
    for (int g = 0; g < GT; g++) {
#pragma unroll
        for (int i = 0; i < 8; i++)
            o[g][i] += __shfl_xor_sync(0xffffffffu, o[g][i], 16);
        float lsum = ig_warp_sum(l[g]);
        if (half == 0)
#pragma unroll
            for (int i = 0; i < 8; i += 4)
                *reinterpret_cast<float4 *>(&o_s[warp][g][sub * 8 + i]) =
                    make_float4(o[g][i], o[g][i + 1], o[g][i + 2], o[g][i + 3]);
        if (lane == 0) {
            ml_s[warp][g][0] = m[g]; /* -inf for a warp that had no chunk: weight 0 below */
            ml_s[warp][g][1] = lsum;
        }
    }
    __syncthreads();
#pragma unroll
    for (int g = 0; g < GT; g++) {
        const int d = tid, h = hg + g;
        if (g >= ng) break;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < AS_WARPS; w++)
            M = fmaxf(M, ml_s[w][g][0]);
        float L = 0.0f, acc = 0.0f;
#pragma unroll
        for (int w = 0; w < AS_WARPS; w++) {
            float wt = exp2f(ml_s[w][g][0] - M);
            L += ml_s[w][g][1] * wt;
            acc += o_s[w][g][d] * wt;
        }
        if (n_splits == 1) {
            out[(int64_t)t * nh * D + (int64_t)h * D + d] = ig_from_f<T>(acc / L);
        } else {
            int64_t pi = ((int64_t)si * nh + h) * n_splits + split;
            ws[pi * D + d] = acc;
            if (d == 0) {
                float *ml = ad_ml_area(ws, nh, n_splits, D) + pi * 2;
                ml[0] = M;
                ml[1] = L;
            }
        }
    }
    if (n_splits == 1) return;
    ad_merge_splits<T>(ws, counters, stage, t, si, kvh, nkv, h0, G, D, nh, n_splits, split_len, ctx, n_groups, out);
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

/* The streaming kernel's shapes: head_dim 128, chunks that never cross a cache block; GT
 * query heads per block. */
static int as_heads(int G) { return G == 1 || G == 2 ? G : 4; }

static int as_keys(int G, int D, int block_len)
{
    int U = AS_KEYS(as_heads(G));
    if (D != 128 || G < 1 || G > AS_MAX_G || block_len % (2 * U) != 0) return 0;
    return U;
}

template <typename T>
static cudaError_t as_launch(int G, dim3 grid, cudaStream_t st, const T *q, ig_batch_dev b, ig_kv_desc kv, int layer,
                             int nh, float scale, const int32_t *sel, int n_splits, int split_len, float *ws,
                             int *counters, T *out)
{
    const dim3 blk(AS_WARPS * 32);
    const int GT = as_heads(G);
    grid.x *= (G + GT - 1) / GT;
    switch (GT) {
    case 1:
        return ig_launch(k_attn_decode_stream<T, 1, AS_KEYS(1)>, grid, blk, 0, st, q, b, kv, layer, nh, scale, sel,
                         n_splits, split_len, ws, counters, out);
    case 2:
        return ig_launch(k_attn_decode_stream<T, 2, AS_KEYS(2)>, grid, blk, 0, st, q, b, kv, layer, nh, scale, sel,
                         n_splits, split_len, ws, counters, out);
    default:
        return ig_launch(k_attn_decode_stream<T, 4, AS_KEYS(4)>, grid, blk, 0, st, q, b, kv, layer, nh, scale, sel,
                         n_splits, split_len, ws, counters, out);
    }
}

extern "C" int ig_attn_decode_streams(int n_heads, int n_kv_heads, int head_dim, int block_len)
{
    return n_kv_heads > 0 && n_heads % n_kv_heads == 0 && as_keys(n_heads / n_kv_heads, head_dim, block_len) > 0;
}

extern "C" cudaError_t ig_k_attn_decode_path(ig_dtype dt, const void *q, ig_batch_dev b, ig_kv_desc kv, int layer,
                                             int n_heads, float scale, const int32_t *sel, int n_sel, int n_splits,
                                             int split_len, float *ws, int *counters, void *out, int path,
                                             cudaStream_t st)
{
    if (n_sel <= 0) return cudaSuccess;
    int G = n_heads / kv.n_kv_heads, D = kv.head_dim;
    /* the split merge stages 2 floats per split in a 64-float row: at most 32 splits */
    if (G * D / 2 > AD_MAX_ITEMS * AD_THREADS || D % 8 != 0 || D > 256 || split_len % AD_TILE != 0 || n_splits < 1 ||
        n_splits > 32)
        return cudaErrorInvalidValue;
    dim3 grid(n_splits, kv.n_kv_heads, n_sel);
    const bool fits = as_keys(G, D, kv.block_len) > 0;
    if (path == IG_ATTN_DECODE_STREAM && !fits) return cudaErrorInvalidValue;
    if (path != IG_ATTN_DECODE_TILED && fits) {
        IG_DISPATCH_T(dt, T, {
            return as_launch<T>(G, grid, st, (const T *)q, b, kv, layer, n_heads, scale, sel, n_splits, split_len, ws,
                                counters, (T *)out);
        });
        return cudaGetLastError();
    }
    size_t smem = ad_smem_bytes(G, D);
    IG_DISPATCH_T(dt, T, {
        static ig_dev_flags raised;
        cudaError_t e = ig_smem_allow(k_attn_decode<T>, smem, &raised);
        if (e != cudaSuccess) return e;
        return ig_launch(k_attn_decode<T>, grid, dim3(AD_THREADS), smem, st, (const T *)q, b, kv, layer, n_heads, scale,
                         sel, n_splits, split_len, ws, counters, (T *)out);
    });
    return cudaGetLastError();
}

extern "C" cudaError_t ig_k_attn_decode(ig_dtype dt, const void *q, ig_batch_dev b, ig_kv_desc kv, int layer,
                                        int n_heads, float scale, const int32_t *sel, int n_sel, int n_splits,
                                        int split_len, float *ws, int *counters, void *out, cudaStream_t st)
{
    return ig_k_attn_decode_path(dt, q, b, kv, layer, n_heads, scale, sel, n_sel, n_splits, split_len, ws, counters,
                                 out, IG_ATTN_DECODE_AUTO, st);
}
