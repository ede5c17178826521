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
 *  - top-k rows with k <= IG_SAMPLE_SELECT_K: k_sample_select picks the k candidates by a
 *    block radix select and ranks only them (the row is read 5 times, never sorted);
 *  - pure top-p rows try the same on the top IG_SAMPLE_SELECT_K first and are done when the
 *    nucleus ends among them;
 *  - the rest (k > IG_SAMPLE_SELECT_K, wider nuclei): a stable segmented radix sort (CUB,
 *    from the CUDA toolkit) orders each such row's pairs descending (other rows get empty
 *    segments); stability keeps ascending ids among equal logits;
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

/* Pure top-p rows first try the top IG_SAMPLE_SELECT_K candidates: when the nucleus ends
 * inside them the row is done without the full sort, else it falls back to it. */
__device__ __forceinline__ bool sp_speculate(const ig_sample_dev &p, int vocab)
{
    return p.top_k <= 0 && p.top_p < 1.0f && vocab > IG_SAMPLE_SELECT_K;
}

/* Rows k_sample_select takes: top-k within its bound, and the speculative top-p ones. */
__device__ __forceinline__ bool sp_selects(const ig_sample_dev &p, int vocab)
{
    return p.temperature > 0.0f && sp_sorted(p) &&
           (!ig_sample_full_sort(p.top_k, p.top_p, vocab) || sp_speculate(p, vocab));
}

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
    k_sample_prep(float *logits, int vocab, int ld, const ig_sample_dev *params, const int32_t *history, uint32_t *bits,
                  float *keys, int32_t *ids, int32_t *seg_begin, int32_t *seg_end, int stage_sort, int32_t *out_ids)
{
    const int r = blockIdx.x;
    const ig_sample_dev p = params[r];
    float *l = logits + (int64_t)r * ld;
    if (p.repetition_penalty != 1.0f && p.repetition_penalty > 0.0f && p.hist_len > 0) {
        const int nw = (vocab + 31) / 32;
        uint32_t *seen = bits + (int64_t)r * nw;
        for (int i = threadIdx.x; i < nw; i += SP_THREADS)
            seen[i] = 0;
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
    /* the full sort sees an empty segment for every row that does not need it (a
     * speculative top-p row that k_sample_select resolves empties its segment too) */
    const bool sort_row = stage_sort && p.temperature > 0.0f && ig_sample_full_sort(p.top_k, p.top_p, vocab);
    if (threadIdx.x == 0) {
        seg_begin[r] = r * vocab;
        seg_end[r] = sort_row ? (r + 1) * vocab : r * vocab;
    }
    if (!(p.temperature > 0.0f)) {
        int best = sp_argmax(l, vocab);
        if (threadIdx.x == 0) out_ids[r] = best;
        return;
    }
    /* 8 loads issued before the stores: the stores may alias the next loads for the
     * compiler, which would otherwise wait one L2 round trip per element */
    for (int base = 0; base < vocab; base += 8 * SP_THREADS) {
        float v[8];
#pragma unroll
        for (int u = 0; u < 8; u++) {
            const int i = base + u * SP_THREADS + (int)threadIdx.x;
            v[u] = i < vocab ? l[i] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < 8; u++) {
            const int i = base + u * SP_THREADS + (int)threadIdx.x;
            if (i >= vocab) continue;
            const float x = v[u] / p.temperature;
            l[i] = x;
            if (sort_row) {
                keys[(int64_t)r * vocab + i] = x;
                ids[(int64_t)r * vocab + i] = i;
            }
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

/* Softmax mass, top-p cut and the draw over candidates v[0, n) (sorted descending when
 * `sorted`, so v[0] is the max): the index of the chosen candidate. */
__device__ int sp_pick(const float *v, int n, bool sorted, const ig_sample_dev &p)
{
    __shared__ float red[32], wm[32];
    float mx;
    if (sorted) {
        mx = v[0];
    } else {
        float m = -INFINITY;
        for (int i = threadIdx.x; i < n; i += SP_THREADS)
            m = fmaxf(m, v[i]);
        m = ig_warp_max(m);
        if ((threadIdx.x & 31) == 0) wm[threadIdx.x >> 5] = m;
        __syncthreads();
        mx = ig_warp_max(wm[threadIdx.x & 31]);
    }
    float s = 0.0f;
    for (int i = threadIdx.x; i < n; i += SP_THREADS)
        s += expf(v[i] - mx);
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
    return pick < keep ? pick : keep - 1;
}

__global__ void __launch_bounds__(SP_THREADS)
    k_sample_pick(const float *logits, int vocab, int ld, const ig_sample_dev *params, const float *skeys,
                  const int32_t *sids, const int32_t *seg_begin, const int32_t *seg_end, int32_t *out_ids)
{
    const int r = blockIdx.x;
    const ig_sample_dev p = params[r];
    if (!(p.temperature > 0.0f)) return;
    const bool sorted = sp_sorted(p);
    /* a sorted row is this kernel's only while its sort segment is non-empty: the prep
     * kernel gives one only to rows that may need the full sort, and k_sample_select
     * empties it for the speculative rows it resolves */
    if (sorted && seg_end[r] == seg_begin[r]) return;
    const float *v = sorted ? skeys + (int64_t)r * vocab : logits + (int64_t)r * ld;
    int n = vocab;
    if (sorted && p.top_k > 0 && p.top_k < n) n = p.top_k;
    int pick = sp_pick(v, n, sorted, p);
    if (threadIdx.x == 0) out_ids[r] = sorted ? sids[(int64_t)r * vocab + pick] : pick;
}

/* Order-preserving unsigned image of a logit (larger value, larger key); -0 is read as +0,
 * as the CPU's comparison does. */
__device__ __forceinline__ uint32_t sp_key(float v)
{
    uint32_t u = __float_as_uint(v == 0.0f ? 0.0f : v);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

typedef cub::BlockScan<int, SP_THREADS> sp_iscan;

/* One pass of the block over a row: f(i, key, in_range) for every i < vocab rounded up to
 * the block, all threads together (f may use warp collectives). A block has one row to
 * itself, so the loads are issued SP_UNROLL at a time: a plain strided loop would wait
 * one L2 round trip per element. */
#define SP_UNROLL 8
#define SP_LIST 2048 /* keys of the select's bucket kept in shared memory */
template <typename F> __device__ __forceinline__ void sp_row_pass(const float *l, int vocab, F f)
{
    for (int base = 0; base < vocab; base += SP_THREADS * SP_UNROLL) {
        float x[SP_UNROLL];
#pragma unroll
        for (int u = 0; u < SP_UNROLL; u++) {
            const int i = base + u * SP_THREADS + (int)threadIdx.x;
            x[u] = i < vocab ? l[i] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < SP_UNROLL; u++) {
            const int i = base + u * SP_THREADS + (int)threadIdx.x;
            f(i, sp_key(x[u]), i < vocab);
        }
    }
}

/* Top-k rows with k <= IG_SAMPLE_SELECT_K, one block per row, instead of sorting the whole
 * vocabulary: (1) radix select, 8 bits a pass from the top, finds the key T of the k-th
 * largest logit and how many of the k tie at T; (2) the candidates are every logit above T
 * plus the lowest ids equal to T (an ordered compaction keeps "id ascending" among ties);
 * (3) the k candidates are ranked in shared memory on (key desc, id asc) — the CPU's
 * order — and the draw runs on them.
 * Pure top-p rows (sp_speculate) run the same with k = IG_SAMPLE_SELECT_K, plus one pass for
 * the whole row's softmax mass: if the nucleus (top_p of that mass) ends within the k
 * candidates, the draw is the one the full sort would give; else the row keeps its sort
 * segment and k_sample_pick finishes it after the sort. */
__global__ void __launch_bounds__(SP_THREADS)
    k_sample_select(const float *logits, int vocab, int ld, const ig_sample_dev *params, int32_t *seg_begin,
                    int32_t *seg_end, int32_t *out_ids)
{
    __shared__ unsigned int hist[256];
    __shared__ unsigned int s_prefix;
    __shared__ int s_need, s_equal, n_above, n_list;
    __shared__ unsigned long long cand[IG_SAMPLE_SELECT_K];
    __shared__ unsigned long long lst[SP_LIST];
    __shared__ float cv[IG_SAMPLE_SELECT_K];
    __shared__ int32_t cid[IG_SAMPLE_SELECT_K];
    __shared__ typename sp_iscan::TempStorage scan_tmp;
    const int r = blockIdx.x, tid = threadIdx.x;
    const ig_sample_dev p = params[r];
    if (!sp_selects(p, vocab)) return;
    const float *l = logits + (int64_t)r * ld;
    const bool spec = sp_speculate(p, vocab);
    const int k = spec ? IG_SAMPLE_SELECT_K : p.top_k;

    /* Once the bucket holding the k-th key is small, its keys move to shared memory
     * (`lst`, with every key above the bucket going straight to `cand`), and the remaining
     * passes read that list instead of the row: 3 row passes instead of 5 when the logits
     * are spread, as they are unless huge ties pile up. */
    unsigned int prefix = 0, mask = 0;
    int need = k; /* rank (from the top) still to find among keys matching prefix */
    bool listed = false;
    if (tid == 0) n_above = n_list = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = tid; i < 256; i += SP_THREADS)
            hist[i] = 0;
        __syncthreads();
        if (!listed) {
            /* logits share their top bits (sign, exponent): one shared-memory atomic per
             * distinct digit of a warp instead of 32 colliding ones */
            sp_row_pass(l, vocab, [&](int, unsigned int key, bool in) {
                unsigned int digit = in && (key & mask) == prefix ? (key >> shift) & 255u : 256u;
                unsigned int peers = __match_any_sync(0xffffffffu, digit);
                if (digit < 256u && (tid & 31) == __ffs(peers) - 1) atomicAdd(&hist[digit], __popc(peers));
            });
        } else {
            for (int j = tid; j < n_list; j += SP_THREADS) {
                unsigned int key = (unsigned int)(lst[j] >> 32);
                if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1u);
            }
        }
        __syncthreads();
        if (tid < 32) {
            /* lane j holds digits 255 - 8j down to 248 - 8j: counts from the top */
            unsigned int c[8], sum = 0;
#pragma unroll
            for (int e = 0; e < 8; e++) {
                c[e] = hist[255 - 8 * tid - e];
                sum += c[e];
            }
            unsigned int incl = sum;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                unsigned int y = __shfl_up_sync(0xffffffffu, incl, o);
                if (tid >= o) incl += y;
            }
            unsigned int before = incl - sum;
            if (before < (unsigned int)need && (unsigned int)need <= incl) {
#pragma unroll
                for (int e = 0; e < 8; e++) {
                    if (before + c[e] >= (unsigned int)need) {
                        s_prefix = prefix | ((unsigned int)(255 - 8 * tid - e) << shift);
                        s_need = need - (int)before;
                        s_equal = (int)c[e]; /* keys in the chosen bucket (= T after the last pass) */
                        break;
                    }
                    before += c[e];
                }
            }
        }
        __syncthreads();
        prefix = s_prefix;
        need = s_need;
        mask |= 255u << shift;
        if (!listed && shift > 0 && s_equal <= SP_LIST) {
            sp_row_pass(l, vocab, [&](int i, unsigned int key, bool in) {
                if (!in) return;
                const unsigned int hi = key & mask;
                if (hi > prefix)
                    cand[atomicAdd(&n_above, 1)] = ((unsigned long long)~key << 32) | (unsigned int)i;
                else if (hi == prefix)
                    lst[atomicAdd(&n_list, 1)] = ((unsigned long long)key << 32) | (unsigned int)i;
            });
            listed = true;
            __syncthreads();
        }
    }
    const unsigned int T = prefix; /* k - need keys lie above T; take `need` of those equal */
    /* usually every key equal to T is taken (no tie straddles the k-th place); otherwise
     * the lowest ids among the ties */
    const bool all_ties = s_equal == need;

    if (listed) {
        for (int j = tid; j < n_list; j += SP_THREADS) {
            const unsigned int key = (unsigned int)(lst[j] >> 32), id = (unsigned int)lst[j];
            bool take = key > T;
            if (key == T) {
                int below = 0; /* ties with a lower id */
                if (!all_ties)
                    for (int j2 = 0; j2 < n_list; j2++)
                        below += (unsigned int)(lst[j2] >> 32) == T && (unsigned int)lst[j2] < id;
                take = below < need;
            }
            if (take) cand[atomicAdd(&n_above, 1)] = ((unsigned long long)~key << 32) | id;
        }
    } else {
        sp_row_pass(l, vocab, [&](int i, unsigned int key, bool in) {
            if (in && (key > T || (all_ties && key == T)))
                cand[atomicAdd(&n_above, 1)] = ((unsigned long long)~key << 32) | (unsigned int)i;
        });
        __syncthreads();
        const int above = n_above;
        int taken = all_ties ? need : 0;
        for (int base = 0; base < vocab && taken < need; base += SP_THREADS) {
            const int i = base + tid;
            const int eq = i < vocab && sp_key(l[i]) == T;
            int pos, total;
            sp_iscan(scan_tmp).ExclusiveSum(eq, pos, total);
            if (eq && taken + pos < need) cand[above + taken + pos] = ((unsigned long long)~T << 32) | (unsigned int)i;
            taken += total;
            __syncthreads(); /* scan_tmp is reused by the next chunk's scan */
        }
    }
    __syncthreads();
    /* the (key, id) pairs are distinct: a candidate's rank is how many sort before it
     * (k <= 1024 broadcast reads per thread, cheaper than a radix sort of 1024) */
    if (tid < k) {
        const unsigned long long c = cand[tid];
        int rank = 0;
        for (int j = 0; j < k; j++)
            rank += cand[j] < c;
        const int32_t id = (int32_t)(c & 0xffffffffu);
        cid[rank] = id;
        cv[rank] = l[id];
    }
    __syncthreads();
    if (!spec) {
        const int pick = sp_pick(cv, k, true, p);
        if (tid == 0) out_ids[r] = cid[pick];
        return;
    }
    __shared__ float red[32];
    const float mx = cv[0];
    float part = 0.0f;
    for (int i = tid; i < vocab; i += SP_THREADS)
        part += expf(l[i] - mx);
    const float total = ig_block_sum(part, red);
    float cum;
    const int f = sp_first_cross(cv, k, mx, p.top_p * total, true, &cum);
    if (f >= k) return; /* the nucleus is wider than the candidates: the sort decides */
    const int pick = sp_first_cross(cv, f + 1, mx, p.u * cum, false, &cum);
    if (tid == 0) {
        out_ids[r] = cid[pick <= f ? pick : f];
        seg_end[r] = seg_begin[r]; /* nothing left to sort */
    }
}

static size_t sp_align(size_t x) { return (x + 255) & ~(size_t)255; }

static size_t sp_sort_tmp(int n_rows, int vocab)
{
    size_t bytes = 0;
    cub::DeviceSegmentedRadixSort::SortPairsDescending((void *)NULL, bytes, (const float *)NULL, (float *)NULL,
                                                       (const int32_t *)NULL, (int32_t *)NULL, (int64_t)n_rows * vocab,
                                                       n_rows, (const int32_t *)NULL, (const int32_t *)NULL);
    return bytes;
}

/* The sampler's workspace, in order: sort keys in/out and ids in/out, the penalty's seen
 * bitmaps, sort segment begins and ends, CUB's sort scratch. */
struct sp_ws {
    float *k_in, *k_out;
    int32_t *i_in, *i_out;
    uint32_t *bits;
    int32_t *seg_begin, *seg_end;
    void *tmp;
    size_t tmp_bytes;
};

/* Lays the workspace out from base (NULL: only measures it) and returns its size. */
static size_t sp_layout(char *base, int n_rows, int vocab, sp_ws *w)
{
    const size_t pairs = (size_t)n_rows * vocab;
    size_t off = 0;
    auto take = [&](size_t bytes) {
        char *p = base ? base + off : NULL;
        off += sp_align(bytes);
        return p;
    };
    w->k_in = (float *)take(pairs * 4);
    w->k_out = (float *)take(pairs * 4);
    w->i_in = (int32_t *)take(pairs * 4);
    w->i_out = (int32_t *)take(pairs * 4);
    w->bits = (uint32_t *)take((size_t)n_rows * ((vocab + 31) / 32) * 4);
    w->seg_begin = (int32_t *)take((size_t)n_rows * 4);
    w->seg_end = (int32_t *)take((size_t)n_rows * 4);
    w->tmp_bytes = sp_sort_tmp(n_rows, vocab);
    w->tmp = take(w->tmp_bytes);
    return off;
}

extern "C" size_t ig_sample_ws_bytes(int n_rows, int vocab)
{
    sp_ws w;
    return sp_layout(NULL, n_rows, vocab, &w);
}

extern "C" cudaError_t ig_k_sample(float *logits, int n_rows, int vocab, int ld, const ig_sample_dev *params,
                                   const int32_t *history, int any_full_sort, int any_sampling, void *ws,
                                   size_t ws_bytes, int32_t *out_ids, cudaStream_t st)
{
    if (n_rows <= 0) return cudaSuccess;
    sp_ws w;
    if (ws_bytes < sp_layout((char *)ws, n_rows, vocab, &w)) return cudaErrorInvalidValue;
    const size_t pairs = (size_t)n_rows * vocab;

    k_sample_prep<<<n_rows, SP_THREADS, 0, st>>>(logits, vocab, ld, params, history, w.bits, w.k_in, w.i_in,
                                                 w.seg_begin, w.seg_end, any_full_sort, out_ids);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess || !any_sampling) return e; /* greedy rows finished in the prep kernel */
    k_sample_select<<<n_rows, SP_THREADS, 0, st>>>(logits, vocab, ld, params, w.seg_begin, w.seg_end, out_ids);
    if (any_full_sort) {
        e = cub::DeviceSegmentedRadixSort::SortPairsDescending(w.tmp, w.tmp_bytes, w.k_in, w.k_out, w.i_in, w.i_out,
                                                               (int64_t)pairs, n_rows, w.seg_begin, w.seg_end, 0,
                                                               (int)(sizeof(float) * 8), st);
        if (e != cudaSuccess) return e;
    }
    k_sample_pick<<<n_rows, SP_THREADS, 0, st>>>(logits, vocab, ld, params, w.k_out, w.i_out, w.seg_begin, w.seg_end,
                                                 out_ids);
    return cudaGetLastError();
}
