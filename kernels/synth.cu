/* Weight materialization on the device: synthetic tensors generated in place (bit-identical
 * to the host's ig_synth_fill) and dtype conversion of uploaded host tensors.
 *
 * Both are pure streaming kernels: one element per thread-iteration, grid-stride, the
 * output written once (synthetic: no reads at all; convert: one read). They run once at
 * load time, so they favour simplicity over vector width. */
#include <string.h>

#include "common.cuh"
#include "ig_kernels.h"
#include "model/synth_fn.h"

template <typename D> __device__ __forceinline__ void store_as(void *dst, int64_t i, float v)
{
    reinterpret_cast<D *>(dst)[i] = ig_from_f<D>(v);
}

/* Rounds v to dtype dt and back, so a value first "stored" in the source dtype converts
 * to the destination exactly as the host does (fp32 -> src -> fp32 -> dst). */
__device__ __forceinline__ float round_to(ig_dtype dt, float v)
{
    if (dt == IG_F16) return __half2float(__float2half_rn(v));
    if (dt == IG_BF16) return __bfloat162float(__float2bfloat16_rn(v));
    return v;
}

__device__ __forceinline__ void store_dt(ig_dtype dt, void *dst, int64_t i, float v)
{
    if (dt == IG_F16)
        store_as<__half>(dst, i, v);
    else if (dt == IG_BF16)
        store_as<__nv_bfloat16>(dst, i, v);
    else
        store_as<float>(dst, i, v);
}

__device__ __forceinline__ float load_dt(ig_dtype dt, const void *src, int64_t i)
{
    if (dt == IG_F16) return __half2float(reinterpret_cast<const __half *>(src)[i]);
    if (dt == IG_BF16) return __bfloat162float(reinterpret_cast<const __nv_bfloat16 *>(src)[i]);
    return reinterpret_cast<const float *>(src)[i];
}

__global__ void k_synth(ig_dtype src_dt, ig_dtype dst_dt, void *dst, int64_t n, uint64_t seed, float scale, float bias,
                        ig_synth_map map)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float v = ig_synth_elem(seed, ig_synth_full_index(&map, (uint64_t)i), scale, bias);
        store_dt(dst_dt, dst, i, round_to(src_dt, v));
    }
}

__global__ void k_convert(ig_dtype src_dt, const void *src, ig_dtype dst_dt, void *dst, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        store_dt(dst_dt, dst, i, load_dt(src_dt, src, i));
}

static int grid_for(int64_t n)
{
    int64_t g = (n + 255) / 256;
    return (int)(g < 8192 ? (g > 0 ? g : 1) : 8192);
}

extern "C" cudaError_t ig_k_synth(ig_dtype src_dt, ig_dtype dst_dt, void *dst, int64_t n, uint64_t seed, float scale,
                                  float bias, cudaStream_t st)
{
    ig_synth_map identity;
    memset(&identity, 0, sizeof identity);
    return ig_k_synth_map(src_dt, dst_dt, dst, n, seed, scale, bias, &identity, st);
}

extern "C" cudaError_t ig_k_synth_map(ig_dtype src_dt, ig_dtype dst_dt, void *dst, int64_t n, uint64_t seed,
                                      float scale, float bias, const ig_synth_map *map, cudaStream_t st)
{
    if (n <= 0) return cudaSuccess;
    k_synth<<<grid_for(n), 256, 0, st>>>(src_dt, dst_dt, dst, n, seed, scale, bias, *map);
    return cudaGetLastError();
}

extern "C" cudaError_t ig_k_convert(ig_dtype src_dt, const void *src, ig_dtype dst_dt, void *dst, int64_t n,
                                    cudaStream_t st)
{
    if (n <= 0) return cudaSuccess;
    k_convert<<<grid_for(n), 256, 0, st>>>(src_dt, src, dst_dt, dst, n);
    return cudaGetLastError();
}
