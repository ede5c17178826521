/* SwiGLU activation: out[t][i] = silu(gate) * up over the fp32 [gate | up] GEMM output.
 * Pure streaming: two fp32 reads and one 2-byte write per element. Rows on blockIdx.y and
 * columns on x, so no per-element (64-bit) division; 16-byte loads and 8-byte stores when
 * inter % 4 == 0 (every row then starts 16-byte aligned). */
#include "common.cuh"
#include "ig_kernels.h"

template <typename T>
__global__ void k_silu_mul(const float *__restrict__ gu, T *__restrict__ out, int n_tokens, int inter)
{
    ig_pdl_wait();
    ig_pdl_trigger();
    typedef typename ig_tt<T>::T2 T2;
    const int step = gridDim.x * blockDim.x, first = blockIdx.x * blockDim.x + threadIdx.x;
    for (int t = blockIdx.y; t < n_tokens; t += gridDim.y) {
        const float *g = gu + (int64_t)t * 2 * inter, *u = g + inter;
        T *o = out + (int64_t)t * inter;
        if ((inter & 3) == 0) {
            for (int i = first * 4; i < inter; i += step * 4) {
                float4 a = *reinterpret_cast<const float4 *>(g + i), c = *reinterpret_cast<const float4 *>(u + i);
                T2 lo = ig_tt<T>::from_f2(a.x / (1.0f + expf(-a.x)) * c.x, a.y / (1.0f + expf(-a.y)) * c.y);
                T2 hi = ig_tt<T>::from_f2(a.z / (1.0f + expf(-a.z)) * c.z, a.w / (1.0f + expf(-a.w)) * c.w);
                reinterpret_cast<T2 *>(o + i)[0] = lo;
                reinterpret_cast<T2 *>(o + i)[1] = hi;
            }
        } else {
            for (int i = first; i < inter; i += step)
                o[i] = ig_from_f<T>(g[i] / (1.0f + expf(-g[i])) * u[i]);
        }
    }
}

extern "C" cudaError_t ig_k_silu_mul(ig_dtype dt, const float *gu, void *out, int n_tokens, int inter, cudaStream_t st)
{
    if (n_tokens <= 0 || inter <= 0) return cudaSuccess;
    int per = (inter & 3) == 0 ? inter / 4 : inter;
    dim3 grid((unsigned)((per + 255) / 256), (unsigned)(n_tokens < 65535 ? n_tokens : 65535));
    IG_DISPATCH_T(dt, T, return ig_launch(k_silu_mul<T>, grid, dim3(256), 0, st, gu, (T *)out, n_tokens, inter));
    return cudaErrorInvalidValue;
}
