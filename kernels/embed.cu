/* Embedding gather: x[t] = fp32(emb[tokens[t]]). One block per token row; each thread
 * moves 8 elements per 16-byte load (rows are hidden * 2 bytes, hidden % 8 == 0 on the
 * vector path), so traffic is one read of the selected rows plus one fp32 write. */
#include "common.cuh"
#include "ig_kernels.h"

template <typename T>
__global__ void k_embed(const T *__restrict__ emb, const int32_t *__restrict__ tokens, int hidden,
                        float *__restrict__ x)
{
    ig_pdl_wait();
    ig_pdl_trigger();
    int t = blockIdx.x;
    const T *row = emb + (int64_t)tokens[t] * hidden;
    float *dst = x + (int64_t)t * hidden;
    if ((hidden & 7) == 0) {
        for (int i = threadIdx.x * 8; i < hidden; i += blockDim.x * 8) {
            float f[8];
            ig_unpack8<T>(*reinterpret_cast<const uint4 *>(row + i), f);
            reinterpret_cast<float4 *>(dst + i)[0] = make_float4(f[0], f[1], f[2], f[3]);
            reinterpret_cast<float4 *>(dst + i)[1] = make_float4(f[4], f[5], f[6], f[7]);
        }
    } else {
        for (int i = threadIdx.x; i < hidden; i += blockDim.x)
            dst[i] = ig_to_f<T>(row[i]);
    }
}

extern "C" cudaError_t ig_k_embed(ig_dtype dt, const void *emb, const int32_t *tokens, int n_tokens, int hidden,
                                  float *x, cudaStream_t st)
{
    if (n_tokens <= 0) return cudaSuccess;
    IG_DISPATCH_T(dt, T,
                  return ig_launch(k_embed<T>, dim3(n_tokens), dim3(256), 0, st, (const T *)emb, tokens, hidden, x));
    return cudaErrorInvalidValue;
}
