/* Skinny GEMM for decode: y[m][n] (+)= sum_k W[n][k] x[m][k] for m in 1..4, W row-major
 * [N][K] (the canonical layout), fp32 accumulation; fp32 output, or — in GLU mode — the
 * SwiGLU of a gate row and its up row (rows n and n + N of W) written in the storage dtype,
 * which fuses the SiLU*mul kernel into the gate/up GEMV.
 *
 * The problem is pure weight streaming (each weight byte read once), so the plan is about
 * bytes in flight and about not idling between kernels:
 *  - each warp owns R rows (GLU: the gate/up pair) and each lane streams U 16-byte vectors
 *    per row per step with ld.global.nc.L1::no_allocate, software-pipelined: the loads of
 *    step i+1 are issued before step i's FMAs, so 2 * R * U * 16 bytes are in flight per
 *    thread;
 *  - the first step's weight loads are issued before griddepcontrol.wait (programmatic
 *    dependent launch): weights never depend on the previous kernel, so the GEMV's HBM
 *    stream starts while the previous kernel (norm, attention) is still finishing;
 *  - the m activation rows (<= 4 * K * 2 bytes) are staged once per block in shared memory
 *    (after the wait) and read as 16-byte vectors;
 *  - 8 warps per block, one short-lived block per 8 * R rows, so the hardware scheduler
 *    balances the tail; warp partials are reduced with shuffles and lane 0 writes (or adds:
 *    the residual add is fused as accumulate).
 * The (R, U) variant per shape is picked from kernel_bench measurements (see
 * bench/NOTES-cuda.md). */
#include "common.cuh"
#include "ig_kernels.h"

#define GV_THREADS 256

/* The warp's dot products: acc[r][m] = W row r . x row m over K = 8 KV elements, the
 * weights software-pipelined (cur holds step 0, issued by the caller before its PDL wait),
 * x from shared memory; triggers the dependent launch once the last weights are issued, and
 * returns the warp-reduced sums in every lane. */
template <typename T, int M, int R, int U>
__device__ __forceinline__ void gv_dot(const uint4 *const (&wr)[R], uint4 (&cur)[R][U], const uint4 *xs, int KV,
                                       int lane, float (&acc)[R][M])
{
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int m = 0; m < M; m++)
            acc[r][m] = 0.0f;
    for (int c = lane; c < KV; c += 32 * U) {
        uint4 nxt[R][U];
        const int cn = c + 32 * U;
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int r = 0; r < R; r++)
                if (cn + u * 32 < KV) nxt[r][u] = ig_ld_stream(wr[r] + cn + u * 32);
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int idx = c + u * 32;
            if (idx < KV) {
#pragma unroll
                for (int m = 0; m < M; m++) {
                    float xf[8];
                    ig_unpack8<T>(xs[m * KV + idx], xf);
#pragma unroll
                    for (int r = 0; r < R; r++) {
                        float wf[8];
                        ig_unpack8<T>(cur[r][u], wf);
#pragma unroll
                        for (int e = 0; e < 8; e++)
                            acc[r][m] = fmaf(wf[e], xf[e], acc[r][m]);
                    }
                }
            }
        }
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int r = 0; r < R; r++)
                cur[r][u] = nxt[r][u];
    }
    ig_pdl_trigger();
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int m = 0; m < M; m++)
            acc[r][m] = ig_warp_sum(acc[r][m]);
}

template <typename T, int M, int R, int U, bool GLU>
__global__ void __launch_bounds__(GV_THREADS)
    k_gemv(const T *__restrict__ W, const T *__restrict__ x, float *__restrict__ y, T *__restrict__ yg, int N, int K,
           int accumulate)
{
    extern __shared__ __align__(16) unsigned char smem[];
    uint4 *xs = reinterpret_cast<uint4 *>(smem);
    const int KV = K / 8;
    const int lane = threadIdx.x & 31;
    /* GLU: warp w computes output n = w (gate row n, up row n + N); else rows n0 .. n0+R-1 */
    const int wid = blockIdx.x * (GV_THREADS / 32) + (threadIdx.x >> 5);
    const int n0 = GLU ? wid : wid * R;
    const bool active = n0 < N;
    const uint4 *wr[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        int row = GLU ? (r == 0 ? n0 : n0 + N) : n0 + r;
        if (!GLU) row = min(row, N - 1);
        if (GLU && n0 >= N) row = 0;
        wr[r] = reinterpret_cast<const uint4 *>(W + (int64_t)row * K);
    }
    uint4 cur[R][U];
    if (active) {
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int r = 0; r < R; r++)
                if (lane + u * 32 < KV) cur[r][u] = ig_ld_stream(wr[r] + lane + u * 32);
    }
    ig_pdl_wait();
    for (int i = threadIdx.x; i < M * KV; i += GV_THREADS)
        xs[i] = reinterpret_cast<const uint4 *>(x)[i];
    __syncthreads();
    if (!active) {
        ig_pdl_trigger();
        return;
    }

    float acc[R][M];
    gv_dot<T, M, R, U>(wr, cur, xs, KV, lane, acc);
    if (lane == 0) {
        if (GLU) {
#pragma unroll
            for (int m = 0; m < M; m++) {
                float g = acc[0][m], u = acc[R - 1][m];
                yg[(int64_t)m * N + n0] = ig_from_f<T>(g / (1.0f + expf(-g)) * u);
            }
        } else {
#pragma unroll
            for (int r = 0; r < R; r++) {
                if (n0 + r < N) {
#pragma unroll
                    for (int m = 0; m < M; m++) {
                        float *dst = y + (int64_t)m * N + n0 + r;
                        *dst = accumulate ? *dst + acc[r][m] : acc[r][m];
                    }
                }
            }
        }
    }
}

extern "C" int ig_gemv_supported(int m, int n, int k)
{
    return m >= 1 && m <= 4 && n > 0 && k > 0 && k % 8 == 0 && (size_t)m * k * 2 <= 96 * 1024;
}

template <typename T, int M, int R, int U, bool GLU>
static cudaError_t launch_gemv(const void *w, const void *x, float *y, void *yg, int n, int k, int accumulate,
                               cudaStream_t st)
{
    size_t smem = (size_t)M * k * sizeof(T);
    static ig_dev_flags raised;
    cudaError_t e = ig_smem_allow(k_gemv<T, M, R, U, GLU>, smem, &raised);
    if (e != cudaSuccess) return e;
    int rows_per_block = (GV_THREADS / 32) * (GLU ? 1 : R);
    return ig_launch(k_gemv<T, M, R, U, GLU>, dim3((n + rows_per_block - 1) / rows_per_block), dim3(GV_THREADS), smem,
                     st, (const T *)w, (const T *)x, y, (T *)yg, n, k, accumulate);
}

/* variant: 0 = (R 1, U 8), 1 = (R 2, U 4), 2 = (R 2, U 8), 3 = (R 4, U 4); GLU uses R 2 with
 * U 4 (variant 0, 1) or U 8 (variant 2, 3). */
template <typename T, int M>
static cudaError_t gemv_m(int variant, bool glu, const void *w, const void *x, float *y, void *yg, int n, int k,
                          int acc, cudaStream_t st)
{
    if (glu) {
        if (variant >= 2) return launch_gemv<T, M, 2, 8, true>(w, x, y, yg, n, k, acc, st);
        return launch_gemv<T, M, 2, 4, true>(w, x, y, yg, n, k, acc, st);
    }
    switch (variant) {
    case 0:
        return launch_gemv<T, M, 1, 8, false>(w, x, y, yg, n, k, acc, st);
    case 2:
        return launch_gemv<T, M, 2, 8, false>(w, x, y, yg, n, k, acc, st);
    case 3:
        return launch_gemv<T, M, 4, 4, false>(w, x, y, yg, n, k, acc, st);
    default:
        return launch_gemv<T, M, 2, 4, false>(w, x, y, yg, n, k, acc, st);
    }
}

extern "C" cudaError_t ig_k_gemv_ex(ig_dtype dt, const void *w, const void *x, float *y, void *y_glu, int m, int n,
                                    int k, int accumulate, int variant, cudaStream_t st)
{
    if (!ig_gemv_supported(m, n, k)) return cudaErrorInvalidValue;
    bool glu = y_glu != NULL;
    if (variant < 0) variant = ig_gemv_default_variant(m, n, k);
    IG_DISPATCH_T(dt, T, {
        switch (m) {
        case 1:
            return gemv_m<T, 1>(variant, glu, w, x, y, y_glu, n, k, accumulate, st);
        case 2:
            return gemv_m<T, 2>(variant, glu, w, x, y, y_glu, n, k, accumulate, st);
        case 3:
            return gemv_m<T, 3>(variant, glu, w, x, y, y_glu, n, k, accumulate, st);
        default:
            return gemv_m<T, 4>(variant, glu, w, x, y, y_glu, n, k, accumulate, st);
        }
    });
    return cudaErrorInvalidValue;
}

extern "C" int ig_gemv_default_variant(int m, int n, int k)
{
    (void)m;
    (void)n;
    (void)k;
    return 1;
}

extern "C" cudaError_t ig_k_gemv(ig_dtype dt, const void *w, const void *x, float *y, int m, int n, int k,
                                 int accumulate, cudaStream_t st)
{
    return ig_k_gemv_ex(dt, w, x, y, NULL, m, n, k, accumulate, -1, st);
}

/* ---------------------------------------------------------------- fused decode GEMV
 * Same streaming plan as k_gemv (R = 2 rows per warp, U = 4, weights prefetched before the
 * PDL wait). Prologue: each block reads the m residual rows (fp32, from L2), reduces
 * sum(x^2) per row and stages x * inv_rms * norm_w in the storage dtype in shared memory —
 * replacing the separate RMSNorm kernel and its round trip. Epilogues: see ig_kernels.h.
 * ROPE pairs rows (h*D + i, h*D + i + D/2) in one warp so the rotation needs no exchange. */
template <typename T, int M, int EPI, int P> __global__ void __launch_bounds__(GV_THREADS) k_gemv_fused(ig_gemv_fused a)
{
    /* P (row pair) items per warp: R = 2P rows; U keeps 2 * R * U * 16 B in flight per lane */
    constexpr int R = 2 * P, U = 4 / P;
    extern __shared__ __align__(16) unsigned char smem[];
    T *xs_t = reinterpret_cast<T *>(smem);
    __shared__ float red[32];
    __shared__ float inv_s[M];
    const int K = a.k, KV = K / 8, N = a.n;
    const T *W = reinterpret_cast<const T *>(a.w);
    const int lane = threadIdx.x & 31;
    const int wid = blockIdx.x * (GV_THREADS / 32) + (threadIdx.x >> 5);
    const int half = EPI == IG_GEMV_ROPE ? a.kv.head_dim / 2 : 0;
    /* item p of this warp: GLU output n (rows n, n + N); ROPE pair (rows h*D+i, h*D+i+D/2);
     * STORE rows 2*it, 2*it + 1 */
    const int n_items = EPI == IG_GEMV_STORE ? (N + 1) / 2 : EPI == IG_GEMV_ROPE ? N / 2 : N;
    int rows[R];
    bool ok[P];
#pragma unroll
    for (int p = 0; p < P; p++) {
        const int it = wid * P + p;
        ok[p] = it < n_items;
        int r0, r1;
        if (EPI == IG_GEMV_GLU) {
            r0 = it;
            r1 = it + N;
        } else if (EPI == IG_GEMV_ROPE) {
            int h = it / max(half, 1), i = it - h * half;
            r0 = h * a.kv.head_dim + i;
            r1 = r0 + half;
        } else {
            r0 = min(2 * it, N - 1);
            r1 = min(2 * it + 1, N - 1);
        }
        rows[2 * p] = ok[p] ? r0 : 0;
        rows[2 * p + 1] = ok[p] ? r1 : 0;
    }
    const bool active = ok[0];
    const uint4 *wr[R];
#pragma unroll
    for (int r = 0; r < R; r++)
        wr[r] = reinterpret_cast<const uint4 *>(W + (int64_t)rows[r] * K);
    uint4 cur[R][U];
    if (active) {
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int r = 0; r < R; r++)
                if (lane + u * 32 < KV) cur[r][u] = ig_ld_stream(wr[r] + lane + u * 32);
    }
    ig_pdl_wait();
    /* RMSNorm prologue, same arithmetic as k_rmsnorm: inv = 1 / sqrt(mean(x^2) + eps) */
#pragma unroll
    for (int m = 0; m < M; m++) {
        const float4 *xr = reinterpret_cast<const float4 *>(a.x + (int64_t)m * K);
        float ss = 0.0f;
        for (int i = threadIdx.x; i < K / 4; i += GV_THREADS) {
            float4 v = xr[i];
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
        ss = ig_block_sum(ss, red);
        if (threadIdx.x == 0) inv_s[m] = 1.0f / sqrtf(ss / (float)K + a.eps);
    }
    __syncthreads();
#pragma unroll
    for (int m = 0; m < M; m++) {
        const float4 *xr = reinterpret_cast<const float4 *>(a.x + (int64_t)m * K);
        const float4 *g4 = reinterpret_cast<const float4 *>(a.norm_w);
        float inv = inv_s[m];
        for (int i = threadIdx.x; i < K / 4; i += GV_THREADS) {
            float4 v = xr[i], g = g4[i];
            T *d = xs_t + (int64_t)m * K + 4 * i;
            d[0] = ig_from_f<T>(v.x * inv * g.x);
            d[1] = ig_from_f<T>(v.y * inv * g.y);
            d[2] = ig_from_f<T>(v.z * inv * g.z);
            d[3] = ig_from_f<T>(v.w * inv * g.w);
        }
    }
    __syncthreads();
    if (!active) {
        ig_pdl_trigger();
        return;
    }
    const uint4 *xs = reinterpret_cast<const uint4 *>(smem);
    float acc[R][M];
    gv_dot<T, M, R, U>(wr, cur, xs, KV, lane, acc);
    if (lane != 0) return;
#pragma unroll
    for (int p = 0; p < P; p++) {
        if (!ok[p]) continue;
        const int it = wid * P + p;
        if (EPI == IG_GEMV_STORE) {
#pragma unroll
            for (int r = 0; r < 2; r++)
                if (2 * it + r < N)
#pragma unroll
                    for (int m = 0; m < M; m++)
                        a.y[(int64_t)m * N + 2 * it + r] = acc[2 * p + r][m];
        } else if (EPI == IG_GEMV_GLU) {
            T *o = reinterpret_cast<T *>(a.out);
#pragma unroll
            for (int m = 0; m < M; m++) {
                float g = acc[2 * p][m], u = acc[2 * p + 1][m];
                o[(int64_t)m * N + it] = ig_from_f<T>(g / (1.0f + expf(-g)) * u);
            }
        } else {
            const int D = a.kv.head_dim, nh = a.n_heads, nkv = a.kv.n_kv_heads;
            const int r0 = rows[2 * p], r1 = rows[2 * p + 1];
            const int h = r0 / D, i = r0 - h * D;
            T *q = reinterpret_cast<T *>(a.out);
            T *pool = reinterpret_cast<T *>(a.kv.pool);
#pragma unroll
            for (int m = 0; m < M; m++) {
                float x0 = acc[2 * p][m], x1 = acc[2 * p + 1][m];
                if (a.bias) {
                    x0 += a.bias[r0];
                    x1 += a.bias[r1];
                }
                const int pos = a.b.tok_pos[m];
                if (h < nh + nkv) {
                    float sn, cs;
                    sincosf((float)pos * a.inv_freq[i], &sn, &cs);
                    float y0 = x0 * cs - x1 * sn, y1 = x1 * cs + x0 * sn;
                    x0 = y0;
                    x1 = y1;
                }
                if (h < nh) {
                    q[(int64_t)m * nh * D + r0] = ig_from_f<T>(x0);
                    q[(int64_t)m * nh * D + r1] = ig_from_f<T>(x1);
                } else {
                    const int seq = a.b.tok_seq[m];
                    const int64_t blk = a.b.block_table[(int64_t)seq * a.b.max_blocks + pos / a.kv.block_len];
                    const int which = h < nh + nkv ? 0 : 1, kh = which ? h - nh - nkv : h - nh;
                    T *dst = pool + ig_kv_tile_off(a.kv, blk, a.layer, which, kh) + (int64_t)(pos % a.kv.block_len) * D;
                    dst[i] = ig_from_f<T>(x0);
                    dst[i + half] = ig_from_f<T>(x1);
                }
            }
        }
    }
}

/* Row pairs per warp. 2 (half the blocks, hence half the norm prologues) measured slower
 * than 1 on H100 (bench/NOTES-cuda.md), so 1. */
#define GV_FUSED_P 1

template <typename T, int M, int EPI> static cudaError_t launch_fused(const ig_gemv_fused *a, cudaStream_t st)
{
    constexpr int P = GV_FUSED_P;
    size_t smem = (size_t)M * a->k * sizeof(T);
    static ig_dev_flags raised;
    cudaError_t e = ig_smem_allow(k_gemv_fused<T, M, EPI, P>, smem, &raised);
    if (e != cudaSuccess) return e;
    int items = EPI == IG_GEMV_GLU ? a->n : EPI == IG_GEMV_ROPE ? a->n / 2 : (a->n + 1) / 2;
    int warps = (items + P - 1) / P;
    int blocks = (warps + GV_THREADS / 32 - 1) / (GV_THREADS / 32);
    return ig_launch(k_gemv_fused<T, M, EPI, P>, dim3(blocks), dim3(GV_THREADS), smem, st, *a);
}

template <typename T, int EPI> static cudaError_t fused_m(const ig_gemv_fused *a, cudaStream_t st)
{
    switch (a->m) {
    case 1:
        return launch_fused<T, 1, EPI>(a, st);
    case 2:
        return launch_fused<T, 2, EPI>(a, st);
    case 3:
        return launch_fused<T, 3, EPI>(a, st);
    default:
        return launch_fused<T, 4, EPI>(a, st);
    }
}

extern "C" cudaError_t ig_k_gemv_fused(ig_dtype dt, const ig_gemv_fused *a, cudaStream_t st)
{
    if (!ig_gemv_supported(a->m, a->n, a->k) || a->k % 4 != 0) return cudaErrorInvalidValue;
    if (a->epilogue == IG_GEMV_ROPE && (a->kv.head_dim % 2 != 0 || a->n % a->kv.head_dim != 0))
        return cudaErrorInvalidValue;
    IG_DISPATCH_T(dt, T, {
        switch (a->epilogue) {
        case IG_GEMV_GLU:
            return fused_m<T, IG_GEMV_GLU>(a, st);
        case IG_GEMV_ROPE:
            return fused_m<T, IG_GEMV_ROPE>(a, st);
        default:
            return fused_m<T, IG_GEMV_STORE>(a, st);
        }
    });
    return cudaErrorInvalidValue;
}
