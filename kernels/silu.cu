/* SwiGLU activation: out[t][i] = silu(gate) * up over the fp32 [gate | up] GEMM output.
 * Pure streaming: two fp32 reads and one 2-byte write per element, grid-stride over
 * n_tokens * inter with consecutive threads on consecutive columns (coalesced). */
#include "common.cuh"
#include "ig_kernels.h"

template <typename T>
__global__ void k_silu_mul(const float *__restrict__ gu, T *__restrict__ out, int n_tokens, int inter)
{
    ig_pdl_wait();
    ig_pdl_trigger();
    int64_t n = (int64_t)n_tokens * inter;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        int64_t t = e / inter, i = e - t * inter;
        float g = gu[t * 2 * inter + i], u = gu[t * 2 * inter + inter + i];
        out[e] = ig_from_f<T>(g / (1.0f + expf(-g)) * u);
    }
}

extern "C" cudaError_t ig_k_silu_mul(ig_dtype dt, const float *gu, void *out, int n_tokens, int inter,
                                     cudaStream_t st)
{
    int64_t n = (int64_t)n_tokens * inter;
    if (n <= 0) return cudaSuccess;
    int grid = (int)((n + 255) / 256 < 4096 ? (n + 255) / 256 : 4096);
    IG_DISPATCH_T(dt, T, return ig_launch(k_silu_mul<T>, dim3(grid), dim3(256), 0, st, gu, (T *)out, n_tokens, inter));
    return cudaErrorInvalidValue;
}
