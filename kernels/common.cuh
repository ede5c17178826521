/* Shared device helpers for ignis' kernels: element-type traits (fp16/bf16 storage, fp32
 * math), 16-byte vector access, warp/block reductions, the paged-KV address, and the
 * launch path (programmatic dependent launch, per-device shared-memory limits). */
#ifndef IG_KERNELS_COMMON_CUH
#define IG_KERNELS_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/dtype.h"
#include "dev_flags.h"
#include "ig_kernels.h"

/* Storage type traits: every kernel keeps fp32 math and converts at the edges. */
template <typename T> struct ig_tt;
template <> struct ig_tt<__half> {
    typedef __half2 T2;
    static __device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
    static __device__ __forceinline__ __half from_f(float v) { return __float2half_rn(v); }
    static __device__ __forceinline__ float2 to_f2(__half2 v) { return __half22float2(v); }
    static __device__ __forceinline__ __half2 from_f2(float a, float b) { return __floats2half2_rn(a, b); }
};
template <> struct ig_tt<__nv_bfloat16> {
    typedef __nv_bfloat162 T2;
    static __device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
    static __device__ __forceinline__ __nv_bfloat16 from_f(float v) { return __float2bfloat16_rn(v); }
    static __device__ __forceinline__ float2 to_f2(__nv_bfloat162 v) { return __bfloat1622float2(v); }
    static __device__ __forceinline__ __nv_bfloat162 from_f2(float a, float b) { return __floats2bfloat162_rn(a, b); }
};
template <> struct ig_tt<float> {
    static __device__ __forceinline__ float to_f(float v) { return v; }
    static __device__ __forceinline__ float from_f(float v) { return v; }
};

template <typename T> __device__ __forceinline__ float ig_to_f(T v) { return ig_tt<T>::to_f(v); }
template <typename T> __device__ __forceinline__ T ig_from_f(float v) { return ig_tt<T>::from_f(v); }

/* 8 fp16/bf16 values as one 16-byte word, unpacked to fp32. */
template <typename T> __device__ __forceinline__ void ig_unpack8(const uint4 &u, float *f)
{
    const typename ig_tt<T>::T2 *h = reinterpret_cast<const typename ig_tt<T>::T2 *>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 t = ig_tt<T>::to_f2(h[i]);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}
template <typename T> __device__ __forceinline__ uint4 ig_pack8(const float *f)
{
    uint4 u;
    typename ig_tt<T>::T2 *h = reinterpret_cast<typename ig_tt<T>::T2 *>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++)
        h[i] = ig_tt<T>::from_f2(f[2 * i], f[2 * i + 1]);
    return u;
}

/* Streaming 16-byte load for data read exactly once (weights): bypass L1 allocation so the
 * activations that are reused stay resident. */
__device__ __forceinline__ uint4 ig_ld_stream(const void *p)
{
    uint4 r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
                 : "l"(p));
    return r;
}

__device__ __forceinline__ float ig_warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float ig_warp_max(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Block-wide sum; every thread gets the result. `red` holds >= 32 floats. */
__device__ __forceinline__ float ig_block_sum(float v, float *red)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = ig_warp_sum(v);
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < nw ? red[lane] : 0.0f;
    return ig_warp_sum(v);
}

/* Dispatch on the storage dtype of activations/weights (fp16 or bf16). */
#define IG_DISPATCH_T(dt, T, ...)                                                                                      \
    do {                                                                                                               \
        if ((dt) == IG_F16) {                                                                                          \
            typedef __half T;                                                                                          \
            __VA_ARGS__;                                                                                               \
        } else if ((dt) == IG_BF16) {                                                                                  \
            typedef __nv_bfloat16 T;                                                                                   \
            __VA_ARGS__;                                                                                               \
        } else {                                                                                                       \
            return cudaErrorInvalidValue;                                                                              \
        }                                                                                                              \
    } while (0)

static inline int ig_cdiv(long a, long b) { return (int)((a + b - 1) / b); }

/* Programmatic dependent launch (Hopper): every kernel is launched so that it may start
 * while its predecessor in the stream drains; it calls ig_pdl_wait() before touching any
 * buffer a predecessor writes or reads (weights excepted: they are never written), and
 * ig_pdl_trigger() once its successors may be scheduled. wait() returns only when the
 * predecessor grid has completed and its writes are visible, so ordering is unchanged;
 * what overlaps is launch latency, block ramp-up and the weight prefetch of GEMVs. */
__device__ __forceinline__ void ig_pdl_wait()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void ig_pdl_trigger()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* Element offset of the [block_len][head_dim] tile of (block, layer, K (0) or V (1), KV
 * head) in the paged pool — the layout of ig_kernels.h, written once for every kernel that
 * reads or writes the cache. Slot s of the tile is at + s * head_dim. */
__device__ __forceinline__ int64_t ig_kv_tile_off(const ig_kv_desc &kv, int64_t block, int layer, int k, int h)
{
    return ((((block * kv.n_layers + layer) * 2 + k) * kv.n_kv_heads + h) * (int64_t)kv.block_len) * kv.head_dim;
}

/* Devices whose launches go without programmatic dependent launch (ig_kernels_set_pdl;
 * defined in launch.cu). Per device because the launchers take only a stream. */
extern "C" ig_dev_flags ig_pdl_off_devices;

template <typename... KArgs, typename... Args>
static cudaError_t ig_launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t st,
                             Args... args)
{
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    bool pdl = true;
    if (ig_dev_flags_any(&ig_pdl_off_devices)) { /* the device query only when some device opted out */
        int dev = 0;
        cudaError_t e = cudaGetDevice(&dev);
        if (e != cudaSuccess) return e;
        pdl = !ig_dev_flags_get(&ig_pdl_off_devices, dev);
    }
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    cfg.numAttrs = pdl ? 1 : 0;
    cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, ((KArgs)args)...);
    return e != cudaSuccess ? e : cudaGetLastError();
}

/* Lets `kernel` launch with `smem` bytes of dynamic shared memory on the current device.
 * Above the default 48 KiB a kernel needs its limit raised, once per device (the attribute
 * lives in each device's context); it is raised straight to the device's opt-in maximum,
 * so concurrent callers on one device all set the same value and no size seen later needs
 * another call. `raised` is the caller's per-kernel record of the devices done (a static
 * of the launcher: zero-initialized). */
template <typename... KArgs>
static cudaError_t ig_smem_allow(void (*kernel)(KArgs...), size_t smem, ig_dev_flags *raised)
{
    if (smem <= 48 * 1024) return cudaSuccess;
    int dev = 0, optin = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess || ig_dev_flags_get(raised, dev)) return e;
    if ((e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev)) != cudaSuccess) return e;
    cudaFuncAttributes fa;
    if ((e = cudaFuncGetAttributes(&fa, kernel)) != cudaSuccess) return e;
    int limit = optin - (int)fa.sharedSizeBytes;
    if (smem > (size_t)limit) return cudaErrorInvalidValue; /* more than this device has */
    if ((e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, limit)) != cudaSuccess) return e;
    ig_dev_flags_put(raised, dev, true);
    return cudaSuccess;
}

#endif
