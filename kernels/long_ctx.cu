/* Qwen (v1) long context on the GPU, after RoPE has run with the model's base table:
 * for a sequence longer than seq_length, dynamic NTK re-rotates each new token's Q (dt
 * [T][nh * D]) and its K cache slot from angle pos * inv_freq[i] to pos * inv_ntk[i]
 * (undoing the base rotation with the very same fp32 angle, then applying the NTK one), and
 * log-n multiplies Q at positions past seq_length by log(pos + 1) / log(seq_length). Both
 * follow modeling_qwen.py and the CPU twin (engine/model/long_ctx.c,
 * engine/backend/cpu/cpu_backend.c): alpha comes from the sequence's length after this step
 * and applies to every token of the step. One block per token; tokens within seq_length
 * return at once, so the kernel costs a launch per layer when nothing is long.
 * Traffic when active: one read and one write of Q and of the new K (2-byte elements). */
#include "common.cuh"
#include "ig_kernels.h"

/* modeling_qwen.py's get_ntk_alpha, 2^ceil(log2(len / sl) + 1) - 1, in integers: the
 * smallest k with sl * 2^k >= len gives ceil(log2(len / sl)) = k. */
__device__ __forceinline__ int ntk_alpha(int len, int sl)
{
    if (len <= sl) return 1;
    int k = 0;
    while (((long long)sl << k) < len)
        k++;
    return (1 << (k + 1)) - 1;
}

template <typename T>
__global__ void k_qwen_long_ctx(T *__restrict__ q, const float *__restrict__ inv_freq, ig_batch_dev b, ig_kv_desc kv,
                                int layer, int nh, int seq_length, double theta, int use_ntk, int use_logn)
{
    ig_pdl_wait();
    ig_pdl_trigger();
    const int t = blockIdx.x;
    const int pos = b.tok_pos[t], seq = b.tok_seq[t];
    const int alpha = use_ntk ? ntk_alpha(b.kv_len[seq], seq_length) : 1;
    const float ls =
        use_logn && pos + 1 > seq_length ? (float)(log((double)pos + 1.0) / log((double)seq_length)) : 1.0f;
    if (alpha == 1 && ls == 1.0f) return;
    const int D = kv.head_dim, half = D / 2, nkv = kv.n_kv_heads;
    const int64_t blk = b.block_table[(int64_t)seq * b.max_blocks + pos / kv.block_len];
    const int slot = pos % kv.block_len;
    T *pool = reinterpret_cast<T *>(kv.pool);
    const double base = theta * pow((double)alpha, (double)D / (D - 2));
    for (int e = threadIdx.x; e < (nh + nkv) * half; e += blockDim.x) {
        const int h = e / half, i = e - h * half;
        T *p = h < nh
                   ? q + (int64_t)t * nh * D + (int64_t)h * D
                   : pool + ((((blk * kv.n_layers + layer) * 2) * nkv + (h - nh)) * (int64_t)kv.block_len + slot) * D;
        float x0 = ig_to_f(p[i]), x1 = ig_to_f(p[i + half]);
        if (alpha != 1) {
            float s, c;
            sincosf((float)pos * inv_freq[i], &s, &c);
            const float u0 = x0 * c + x1 * s, u1 = x1 * c - x0 * s; /* the base rotation undone */
            const float inv_n = (float)(1.0 / pow(base, (double)(2 * i) / D));
            sincosf((float)pos * inv_n, &s, &c);
            x0 = u0 * c - u1 * s;
            x1 = u1 * c + u0 * s;
        }
        if (h < nh) {
            x0 *= ls;
            x1 *= ls;
        }
        p[i] = ig_from_f<T>(x0);
        p[i + half] = ig_from_f<T>(x1);
    }
}

extern "C" cudaError_t ig_k_qwen_long_ctx(ig_dtype dt, void *q, const float *inv_freq, ig_batch_dev b, ig_kv_desc kv,
                                          int layer, int n_heads, int seq_length, double theta, int use_ntk,
                                          int use_logn, cudaStream_t st)
{
    if (b.n_tokens <= 0) return cudaSuccess;
    IG_DISPATCH_T(dt, T,
                  return ig_launch(k_qwen_long_ctx<T>, dim3(b.n_tokens), dim3(128), 0, st, (T *)q, inv_freq, b, kv,
                                   layer, n_heads, seq_length, theta, use_ntk, use_logn));
    return cudaErrorInvalidValue;
}
