/* RMSNorm fused with the residual add: x += delta (optional, written back), then
 * out = x / sqrt(mean(x^2) + eps) * w in the storage dtype for the next GEMM.
 *
 * One block per row. The row (hidden fp32, 16 KB at 4096) is read into registers once
 * (float4 loads, up to 8 per thread at 256 threads), squared-summed with one block
 * reduction, then scaled and written: traffic is one fp32 read (+ one delta read and one
 * fp32 write when fused) and one 2-byte write per element. A gather list (`rows`) lets the
 * final norm touch only the rows whose logits are wanted. */
#include "common.cuh"
#include "ig_kernels.h"

#define RMS_THREADS 256
#define RMS_MAXV 8 /* float4 per thread kept in registers: hidden <= 8192 on the fast path */

template <typename T>
__global__ void __launch_bounds__(RMS_THREADS)
    k_rmsnorm(float *__restrict__ x, const float *__restrict__ delta, const float *__restrict__ w, float eps,
              T *__restrict__ out, const int32_t *__restrict__ rows, int hidden)
{
    __shared__ float red[32];
    ig_pdl_wait();
    ig_pdl_trigger();
    int r = blockIdx.x;
    int src = rows ? rows[r] : r;
    float *xr = x + (int64_t)src * hidden;
    T *o = out + (int64_t)r * hidden;
    if ((hidden & 3) == 0 && hidden <= RMS_THREADS * 4 * RMS_MAXV) {
        int nv = hidden / 4;
        float4 v[RMS_MAXV];
        float ss = 0.0f;
#pragma unroll
        for (int j = 0; j < RMS_MAXV; j++) {
            int i = threadIdx.x + j * RMS_THREADS;
            if (i < nv) {
                v[j] = reinterpret_cast<const float4 *>(xr)[i];
                if (delta) {
                    float4 d = reinterpret_cast<const float4 *>(delta + (int64_t)src * hidden)[i];
                    v[j].x += d.x;
                    v[j].y += d.y;
                    v[j].z += d.z;
                    v[j].w += d.w;
                    reinterpret_cast<float4 *>(xr)[i] = v[j];
                }
                ss += v[j].x * v[j].x + v[j].y * v[j].y + v[j].z * v[j].z + v[j].w * v[j].w;
            }
        }
        ss = ig_block_sum(ss, red);
        float inv = 1.0f / sqrtf(ss / (float)hidden + eps);
#pragma unroll
        for (int j = 0; j < RMS_MAXV; j++) {
            int i = threadIdx.x + j * RMS_THREADS;
            if (i < nv) {
                float4 g = reinterpret_cast<const float4 *>(w)[i];
                o[4 * i + 0] = ig_from_f<T>(v[j].x * inv * g.x);
                o[4 * i + 1] = ig_from_f<T>(v[j].y * inv * g.y);
                o[4 * i + 2] = ig_from_f<T>(v[j].z * inv * g.z);
                o[4 * i + 3] = ig_from_f<T>(v[j].w * inv * g.w);
            }
        }
    } else {
        float ss = 0.0f;
        for (int i = threadIdx.x; i < hidden; i += RMS_THREADS) {
            float a = xr[i];
            if (delta) {
                a += delta[(int64_t)src * hidden + i];
                xr[i] = a;
            }
            ss += a * a;
        }
        ss = ig_block_sum(ss, red);
        float inv = 1.0f / sqrtf(ss / (float)hidden + eps);
        for (int i = threadIdx.x; i < hidden; i += RMS_THREADS)
            o[i] = ig_from_f<T>(xr[i] * inv * w[i]);
    }
}

extern "C" cudaError_t ig_k_rmsnorm(ig_dtype dt, float *x, const float *delta, const float *w, float eps, void *out,
                                    const int32_t *rows, int n_rows, int hidden, cudaStream_t st)
{
    if (n_rows <= 0) return cudaSuccess;
    if (rows && delta) return cudaErrorInvalidValue;
    IG_DISPATCH_T(dt, T,
                  return ig_launch(k_rmsnorm<T>, dim3(n_rows), dim3(RMS_THREADS), 0, st, x, delta, w, eps, (T *)out,
                                   rows, hidden));
    return cudaErrorInvalidValue;
}
