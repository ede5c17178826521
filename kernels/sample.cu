/* Logits processing and sampling on the GPU: the twin of engine/runtime/sampler.c, step
 * for step (repetition penalty once per distinct history id, greedy argmax with the lowest
 * index on ties, logits / temperature, candidates sorted by (logit desc, id asc) when top-k
 * or top-p is on, softmax with the max subtracted, shortest top-p prefix, then the first
 * candidate whose running mass exceeds u * kept mass).
 *
 * Kernels (one 1024-thread block per row):
 *  - k_sample_prep: penalty through a per-row "seen" bitmap (atomicOr claims an id once),
 *    greedy rows finish with a block argmax; sampling rows divide by the temperature and,
 *    when a sort is needed, stage (logit, id) pairs for the sort;
 *  - a stable segmented radix sort (CUB, from the CUDA toolkit) orders each row's pairs
 *    descending; stability keeps ascending ids among equal logits;
 *  - k_sample_pick: softmax mass, top-p cut and the draw through chunked block-wide
 *    inclusive scans (1024 candidates per pass, stopping at the first hit).
 * The sums are parallel, so they round differently from the CPU's sequential sum: the
 * chosen id can differ only when u falls within rounding of a candidate boundary. */
#include <cub/block/block_scan.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>

#include "common.cuh"
#include "ig_kernels.h"

#define SP_THREADS 1024

__device__ __forceinline__ bool sp_sorted(const ig_sample_dev &p) { return p.top_k > 0 || p.top_p < 1.0f; }

/* Block argmax with the lowest index on ties. */
__device__ int sp_argmax(const float *v, int n)
{
    __shared__ float bv[32];
    __shared__ int bi[32];
    float best = -INFINITY;
    int idx = 0x7fffffff;
    for (int i = threadIdx.x; i < n; i += SP_THREADS) {
        float x = v[i];
        if (x > best || idx == 0x7fffffff) {
            best = x;
            idx = i;
        }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float ob = __shfl_xor_sync(0xffffffffu, best, o);
        int oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (ob > best || (ob == best && oi < idx) || (idx == 0x7fffffff && oi != 0x7fffffff)) {
            best = ob;
            idx = oi;
        }
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) {
        bv[warp] = best;
        bi[warp] = idx;
    }
    __syncthreads();
    best = bv[lane];
    idx = bi[lane];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float ob = __shfl_xor_sync(0xffffffffu, best, o);
        int oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (ob > best || (ob == best && oi < idx) || (idx == 0x7fffffff && oi != 0x7fffffff)) {
            best = ob;
            idx = oi;
        }
    }
    return idx == 0x7fffffff ? 0 : idx;
}

__global__ void __launch_bounds__(SP_THREADS)
    k_sample_prep(float *logits, int vocab, int ld, const ig_sample_dev *params, const int32_t *history,
                  uint32_t *bits, float *keys, int32_t *ids, int32_t *offsets, int n_rows, int stage_sort,
                  int32_t *out_ids)
{
    const int r = blockIdx.x;
    const ig_sample_dev p = params[r];
    float *l = logits + (int64_t)r * ld;
    if (p.repetition_penalty != 1.0f && p.repetition_penalty > 0.0f && p.hist_len > 0) {
        const int nw = (vocab + 31) / 32;
        uint32_t *seen = bits + (int64_t)r * nw;
        for (int i = threadIdx.x; i < nw; i += SP_THREADS) seen[i] = 0;
        __syncthreads();
        for (int i = threadIdx.x; i < p.hist_len; i += SP_THREADS) {
            int id = history[p.hist_off + i];
            if (id < 0 || id >= vocab) continue;
            uint32_t bit = 1u << (id & 31);
            if (atomicOr(&seen[id >> 5], bit) & bit) continue;
            float v = l[id];
            l[id] = v > 0.0f ? v / p.repetition_penalty : v * p.repetition_penalty;
        }
        __syncthreads();
    }
    if (r == 0)
        for (int i = threadIdx.x; i <= n_rows; i += SP_THREADS) offsets[i] = i * vocab;
    if (!(p.temperature > 0.0f)) {
        int best = sp_argmax(l, vocab);
        if (threadIdx.x == 0) out_ids[r] = best;
        if (stage_sort)
            for (int i = threadIdx.x; i < vocab; i += SP_THREADS) {
                keys[(int64_t)r * vocab + i] = 0.0f;
                ids[(int64_t)r * vocab + i] = i;
            }
        return;
    }
    for (int i = threadIdx.x; i < vocab; i += SP_THREADS) {
        float v = l[i] / p.temperature;
        l[i] = v;
        if (stage_sort) {
            keys[(int64_t)r * vocab + i] = v;
            ids[(int64_t)r * vocab + i] = i;
        }
    }
}

typedef cub::BlockScan<float, SP_THREADS> sp_scan;

/* First index i < n whose inclusive running sum of exp(v - mx) satisfies
 * (ge ? cum >= target : cum > target); returns n when none does. *cum_at gets that sum. */
__device__ int sp_first_cross(const float *v, int n, float mx, float target, bool ge, float *cum_at)
{
    __shared__ typename sp_scan::TempStorage tmp;
    __shared__ int first;
    __shared__ float first_cum, total;
    float run = 0.0f;
    for (int base = 0; base < n; base += SP_THREADS) {
        int i = base + threadIdx.x;
        float x = i < n ? expf(v[i] - mx) : 0.0f, incl, agg;
        if (threadIdx.x == 0) first = 0x7fffffff;
        __syncthreads();
        sp_scan(tmp).InclusiveSum(x, incl, agg);
        float cum = run + incl;
        bool hit = i < n && (ge ? cum >= target : cum > target);
        if (hit) atomicMin(&first, i);
        if (threadIdx.x == 0) total = agg;
        __syncthreads();
        if (first != 0x7fffffff) {
            if (i == first) first_cum = cum;
            __syncthreads();
            int f = first;
            float fc = first_cum;
            __syncthreads(); /* the next call resets `first`: everyone must have read it */
            *cum_at = fc;
            return f;
        }
        run += total;
        __syncthreads();
    }
    *cum_at = run;
    return n;
}

__global__ void __launch_bounds__(SP_THREADS)
    k_sample_pick(const float *logits, int vocab, int ld, const ig_sample_dev *params, const float *skeys,
                  const int32_t *sids, int32_t *out_ids)
{
    __shared__ float red[32];
    const int r = blockIdx.x;
    const ig_sample_dev p = params[r];
    if (!(p.temperature > 0.0f)) return;
    const bool sorted = sp_sorted(p);
    const float *v = sorted ? skeys + (int64_t)r * vocab : logits + (int64_t)r * ld;
    int n = vocab;
    if (sorted && p.top_k > 0 && p.top_k < n) n = p.top_k;
    float mx;
    if (sorted) {
        mx = v[0];
    } else {
        float m = -INFINITY;
        for (int i = threadIdx.x; i < n; i += SP_THREADS) m = fmaxf(m, v[i]);
        m = ig_warp_max(m);
        __shared__ float wm[32];
        if ((threadIdx.x & 31) == 0) wm[threadIdx.x >> 5] = m;
        __syncthreads();
        mx = ig_warp_max(wm[threadIdx.x & 31]);
    }
    float s = 0.0f;
    for (int i = threadIdx.x; i < n; i += SP_THREADS) s += expf(v[i] - mx);
    float sum = ig_block_sum(s, red);
    int keep = n;
    if (p.top_p < 1.0f) {
        float cum;
        int f = sp_first_cross(v, n, mx, p.top_p * sum, true, &cum);
        if (f < n) {
            keep = f + 1;
            sum = cum;
        }
    }
    float cum;
    int pick = sp_first_cross(v, keep, mx, p.u * sum, false, &cum);
    if (pick >= keep) pick = keep - 1;
    if (threadIdx.x == 0) out_ids[r] = sorted ? sids[(int64_t)r * vocab + pick] : pick;
}

static size_t sp_align(size_t x) { return (x + 255) & ~(size_t)255; }

static size_t sp_sort_tmp(int n_rows, int vocab)
{
    size_t bytes = 0;
    cub::DeviceSegmentedRadixSort::SortPairsDescending((void *)NULL, bytes, (const float *)NULL, (float *)NULL,
                                                       (const int32_t *)NULL, (int32_t *)NULL,
                                                       (int64_t)n_rows * vocab, n_rows, (const int32_t *)NULL,
                                                       (const int32_t *)NULL);
    return bytes;
}

extern "C" size_t ig_sample_ws_bytes(int n_rows, int vocab)
{
    size_t pairs = (size_t)n_rows * vocab;
    size_t b = sp_align(pairs * 4) * 4;                              /* keys in/out, ids in/out */
    b += sp_align((size_t)n_rows * ((vocab + 31) / 32) * 4);          /* seen bitmaps */
    b += sp_align((size_t)(n_rows + 1) * 4);                          /* segment offsets */
    b += sp_align(sp_sort_tmp(n_rows, vocab));
    return b;
}

extern "C" cudaError_t ig_k_sample(float *logits, int n_rows, int vocab, int ld, const ig_sample_dev *params,
                                   const int32_t *history, int any_sorted, int any_sampling, void *ws,
                                   size_t ws_bytes, int32_t *out_ids, cudaStream_t st)
{
    if (n_rows <= 0) return cudaSuccess;
    if (ws_bytes < ig_sample_ws_bytes(n_rows, vocab)) return cudaErrorInvalidValue;
    size_t pairs = (size_t)n_rows * vocab;
    char *w = (char *)ws;
    float *k_in = (float *)w;
    w += sp_align(pairs * 4);
    float *k_out = (float *)w;
    w += sp_align(pairs * 4);
    int32_t *i_in = (int32_t *)w;
    w += sp_align(pairs * 4);
    int32_t *i_out = (int32_t *)w;
    w += sp_align(pairs * 4);
    uint32_t *bits = (uint32_t *)w;
    w += sp_align((size_t)n_rows * ((vocab + 31) / 32) * 4);
    int32_t *offs = (int32_t *)w;
    w += sp_align((size_t)(n_rows + 1) * 4);
    size_t tmp_bytes = sp_sort_tmp(n_rows, vocab);

    k_sample_prep<<<n_rows, SP_THREADS, 0, st>>>(logits, vocab, ld, params, history, bits, k_in, i_in, offs, n_rows,
                                                  any_sorted, out_ids);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    if (any_sorted) {
        e = cub::DeviceSegmentedRadixSort::SortPairsDescending((void *)w, tmp_bytes, k_in, k_out, i_in, i_out,
                                                               (int64_t)pairs, n_rows, offs, offs + 1, 0,
                                                               (int)(sizeof(float) * 8), st);
        if (e != cudaSuccess) return e;
    }
    if (!any_sampling) return cudaSuccess; /* greedy rows finished in the prep kernel */
    k_sample_pick<<<n_rows, SP_THREADS, 0, st>>>(logits, vocab, ld, params, k_out, i_out, out_ids);
    return cudaGetLastError();
}
