/* Row bias: x[t][i] += bias[i] over n_tokens rows of width n (fp32). InternLM's o_proj
 * bias goes onto the residual once, on rank 0 before the all-reduce, like the partial
 * products of rank 0. Streaming: one read and one write of x per element. */
#include "common.cuh"
#include "ig_kernels.h"

__global__ void k_add_bias_rows(float *__restrict__ x, const float *__restrict__ bias, int n_tokens, int n)
{
    ig_pdl_wait();
    ig_pdl_trigger();
    const int step = gridDim.x * blockDim.x, first = blockIdx.x * blockDim.x + threadIdx.x;
    for (int t = blockIdx.y; t < n_tokens; t += gridDim.y) {
        float *row = x + (int64_t)t * n;
        for (int i = first; i < n; i += step)
            row[i] += bias[i];
    }
}

extern "C" cudaError_t ig_k_add_bias_rows(float *x, const float *bias, int n_tokens, int n, cudaStream_t st)
{
    if (n_tokens <= 0 || n <= 0) return cudaSuccess;
    dim3 grid((unsigned)((n + 255) / 256), (unsigned)(n_tokens < 65535 ? n_tokens : 65535));
    return ig_launch(k_add_bias_rows, grid, dim3(256), 0, st, x, bias, n_tokens, n);
}
