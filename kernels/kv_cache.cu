/* Writing the paged KV cache: RoPE fused with the K/V store, and block copies.
 *
 * k_rope_kv: one block per token. The fp32 QKV GEMM row ((nh + 2 nkv) * D floats) is read
 * once; each thread handles rotate-half pairs (i, i + D/2) so both halves of a pair come
 * from one thread (no shared memory). Q goes to a dense [token][nh * D] buffer for
 * attention; K and V go straight to their slot in the token's cache block (contiguous D
 * elements per head). Bias (Qwen2) is added before the rotation, as HF does. The angle is
 * pos * inv_freq[i] in fp32 with full-precision sincosf, matching the CPU twin.
 *
 * k_kv_copy: prefix-cache copy-on-write; one block per (layer, K|V, head) tile, copying
 * n * D contiguous elements with 16-byte vectors. */
#include "common.cuh"
#include "ig_kernels.h"

template <typename T>
__global__ void k_rope_kv(const float *__restrict__ qkv, const float *__restrict__ bias,
                          const float *__restrict__ inv_freq, ig_batch_dev b, ig_kv_desc kv, int layer, int nh,
                          T *__restrict__ q_out)
{
    ig_pdl_wait();
    ig_pdl_trigger();
    int t = blockIdx.x;
    int D = kv.head_dim, half = D / 2, nkv = kv.n_kv_heads;
    /* blockIdx.y splits the token's work so a decode step (one token) still spreads over
     * many SMs instead of looping serially in one block */
    const int stride = blockDim.x * gridDim.y, first = blockIdx.y * blockDim.x + threadIdx.x;
    int pos = b.tok_pos[t], seq = b.tok_seq[t];
    int blk = b.block_table[(int64_t)seq * b.max_blocks + pos / kv.block_len];
    int slot = pos % kv.block_len;
    const float *row = qkv + (int64_t)t * (nh + 2 * nkv) * D;
    T *pool = reinterpret_cast<T *>(kv.pool);
    int n_rot = (nh + nkv) * half; /* rotated pairs: q heads then k heads */
    for (int e = first; e < n_rot; e += stride) {
        int h = e / half, i = e - h * half;
        int c0 = h * D + i, c1 = c0 + half;
        float x0 = row[c0], x1 = row[c1];
        if (bias) {
            x0 += bias[c0];
            x1 += bias[c1];
        }
        float s, c;
        sincosf((float)pos * inv_freq[i], &s, &c);
        float y0 = x0 * c - x1 * s, y1 = x1 * c + x0 * s;
        if (h < nh) {
            q_out[(int64_t)t * nh * D + c0] = ig_from_f<T>(y0);
            q_out[(int64_t)t * nh * D + c1] = ig_from_f<T>(y1);
        } else {
            T *dst = pool + ig_kv_tile_off(kv, blk, layer, 0, h - nh) + (int64_t)slot * D;
            dst[i] = ig_from_f<T>(y0);
            dst[i + half] = ig_from_f<T>(y1);
        }
    }
    for (int e = first; e < nkv * D; e += stride) {
        int h = e / D, d = e - h * D;
        int c = (nh + nkv) * D + e;
        float v = row[c] + (bias ? bias[c] : 0.0f);
        pool[ig_kv_tile_off(kv, blk, layer, 1, h) + (int64_t)slot * D + d] = ig_from_f<T>(v);
    }
}

template <typename T> __global__ void k_kv_copy(ig_kv_desc kv, int dst, int src, int n)
{
    ig_pdl_wait();
    int tile = blockIdx.x; /* (layer, k, head) */
    int h = tile % kv.n_kv_heads, k = (tile / kv.n_kv_heads) % 2, l = tile / (2 * kv.n_kv_heads);
    T *pool = reinterpret_cast<T *>(kv.pool);
    const T *s = pool + ig_kv_tile_off(kv, src, l, k, h);
    T *d = pool + ig_kv_tile_off(kv, dst, l, k, h);
    int64_t ne = (int64_t)n * kv.head_dim;
    if ((ne & 7) == 0) {
        for (int64_t i = threadIdx.x; i < ne / 8; i += blockDim.x)
            reinterpret_cast<uint4 *>(d)[i] = reinterpret_cast<const uint4 *>(s)[i];
    } else {
        for (int64_t i = threadIdx.x; i < ne; i += blockDim.x)
            d[i] = s[i];
    }
}

extern "C" cudaError_t ig_k_rope_kv(ig_dtype dt, const float *qkv, const float *bias, const float *inv_freq,
                                    ig_batch_dev b, ig_kv_desc kv, int layer, int n_heads, void *q_out, cudaStream_t st)
{
    if (b.n_tokens <= 0) return cudaSuccess;
    int work = (n_heads + kv.n_kv_heads) * kv.head_dim / 2;
    /* about four pairs per thread: each block first resolves its token's position and
     * cache block (three dependent loads), which one pair per thread would not amortise */
    int gy = (work + 511) / 512;
    IG_DISPATCH_T(dt, T,
                  return ig_launch(k_rope_kv<T>, dim3(b.n_tokens, gy), dim3(128), 0, st, qkv, bias, inv_freq, b, kv,
                                   layer, n_heads, (T *)q_out));
    return cudaErrorInvalidValue;
}

extern "C" cudaError_t ig_k_kv_copy(ig_dtype dt, ig_kv_desc kv, int dst, int src, int n, cudaStream_t st)
{
    if (n <= 0 || dst == src) return cudaSuccess;
    IG_DISPATCH_T(dt, T, k_kv_copy<T><<<kv.n_layers * 2 * kv.n_kv_heads, 256, 0, st>>>(kv, dst, src, n));
    return cudaGetLastError();
}
