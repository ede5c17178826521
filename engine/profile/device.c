/* CUDA-side helpers of the profiler (device.h). */
#include "profile/device.h"

#include <string.h>

#include "core/error.h"

#if defined(IGNIS_HAVE_CUDA)
#include <cublas_v2.h>
#include <cuda_profiler_api.h>
#include <cuda_runtime_api.h>

#include "backend/cuda/cuda_internal.h"
#include "ig_kernels.h"

#define CK(call)                                                                                                       \
    do {                                                                                                               \
        cudaError_t e_ = (call);                                                                                       \
        if (e_ != cudaSuccess) {                                                                                       \
            st = ig_err(IGNIS_E_DEVICE, "profiler: %s: %s", #call, cudaGetErrorString(e_));                            \
            goto out;                                                                                                  \
        }                                                                                                              \
    } while (0)

ignis_status ig_prof_device_check(int device)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        cudaGetLastError();
        return ig_err(IGNIS_E_DEVICE, "no CUDA device");
    }
    if (device < 0 || device >= n) return ig_err(IGNIS_E_ARG, "CUDA device %d does not exist (%d found)", device, n);
    return IGNIS_OK;
}

ignis_status ig_prof_pci_bus_id(int device, char *buf, int len)
{
    if (cudaDeviceGetPCIBusId(buf, len, device) != cudaSuccess) {
        cudaGetLastError();
        return ig_err(IGNIS_E_DEVICE, "no PCI bus id for CUDA device %d", device);
    }
    return IGNIS_OK;
}

/* Milliseconds per copy of n bytes a -> b after one warm-up: the best of 3 runs of 4 copies. */
static ignis_status time_copy(cudaStream_t s, void *a, void *b, size_t n, double *ms_out)
{
    ignis_status st = IGNIS_OK;
    cudaEvent_t e0 = NULL, e1 = NULL;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    CK(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, s));
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        CK(cudaEventRecord(e0, s));
        for (int i = 0; i < 4; i++)
            CK(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, s));
        CK(cudaEventRecord(e1, s));
        CK(cudaEventSynchronize(e1));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (ms / 4 < best) best = ms / 4;
    }
    *ms_out = best;
out:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    return st;
}

static ignis_status peak_bw(cudaStream_t s, double *gbps)
{
    ignis_status st = IGNIS_OK;
    for (size_t n = (size_t)1 << 30; n >= ((size_t)64 << 20); n /= 2) {
        void *a = NULL, *b = NULL;
        if (cudaMalloc(&a, n) != cudaSuccess || cudaMalloc(&b, n) != cudaSuccess) {
            cudaGetLastError();
            cudaFree(a);
            continue;
        }
        double ms = 0;
        st = cudaMemsetAsync(a, 1, n, s) == cudaSuccess ? time_copy(s, a, b, n, &ms) : IGNIS_E_DEVICE;
        cudaFree(a);
        cudaFree(b);
        if (st == IGNIS_OK) *gbps = 2.0 * (double)n / (ms * 1e-3) * 1e-9;
        return st;
    }
    return ig_err(IGNIS_E_DEVICE, "profiler: no memory for the bandwidth measurement");
}

static ignis_status peak_gemm(cudaStream_t s, double *tflops)
{
    ignis_status st = IGNIS_OK;
    cublasHandle_t h = NULL;
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) return ig_err(IGNIS_E_DEVICE, "profiler: cublasCreate failed");
    cublasSetStream(h, s);
    void *A = NULL, *B = NULL, *C = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    int S = 8192;
    for (; S >= 2048; S /= 2) {
        size_t bytes = (size_t)S * S * 2;
        if (cudaMalloc(&A, bytes) == cudaSuccess && cudaMalloc(&B, bytes) == cudaSuccess &&
            cudaMalloc(&C, bytes) == cudaSuccess)
            break;
        cudaGetLastError();
        cudaFree(A);
        cudaFree(B);
        A = B = NULL;
    }
    if (!C) {
        st = ig_err(IGNIS_E_DEVICE, "profiler: no memory for the GEMM measurement");
        goto out;
    }
    /* random fp16 operands: zeros run faster than real data */
    CK(ig_k_synth(IG_F32, IG_F16, A, (int64_t)S * S, 1, 1.0f, 0.0f, s));
    CK(ig_k_synth(IG_F32, IG_F16, B, (int64_t)S * S, 2, 1.0f, 0.0f, s));
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    const float al = 1, be = 0;
    double best = 1e30;
    for (int r = 0; r < 4; r++) { /* the first is a warm-up */
        CK(cudaEventRecord(e0, s));
        if (cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, S, S, S, &al, A, CUDA_R_16F, S, B, CUDA_R_16F, S, &be, C,
                         CUDA_R_16F, S, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS) {
            st = ig_err(IGNIS_E_DEVICE, "profiler: cublasGemmEx failed");
            goto out;
        }
        CK(cudaEventRecord(e1, s));
        CK(cudaEventSynchronize(e1));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (r > 0 && ms < best) best = ms;
    }
    *tflops = 2.0 * S * S * (double)S / (best * 1e-3) * 1e-12;
out:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    cudaFree(A);
    cudaFree(B);
    cudaFree(C);
    cublasDestroy(h);
    return st;
}

ignis_status ig_prof_measure_peaks(int device, double *gbps, double *tflops)
{
    IG_TRY(ig_prof_device_check(device));
    ignis_status st = IGNIS_OK;
    cudaStream_t s = NULL;
    CK(cudaSetDevice(device));
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    st = peak_bw(s, gbps);
    if (st == IGNIS_OK) st = peak_gemm(s, tflops);
out:
    if (s) cudaStreamDestroy(s);
    return st;
}

ignis_status ignis_profile_range_begin(void)
{
    cudaError_t e = cudaProfilerStart();
    if (e != cudaSuccess) return ig_err(IGNIS_E_DEVICE, "cudaProfilerStart: %s", cudaGetErrorString(e));
    return IGNIS_OK;
}

ignis_status ignis_profile_range_end(void)
{
    cudaError_t e = cudaProfilerStop();
    if (e != cudaSuccess) return ig_err(IGNIS_E_DEVICE, "cudaProfilerStop: %s", cudaGetErrorString(e));
    return IGNIS_OK;
}

ignis_status ig_prof_cost_shape(const ig_backend *base, ig_cost_shape *o)
{
    if (!base || strcmp(base->ops->name, "cuda") != 0)
        return ig_err(IGNIS_E_UNSUPPORTED, "declared kernel work is modelled for the CUDA backend only");
    const cuda_backend *b = (const cuda_backend *)base;
    memset(o, 0, sizeof *o);
    o->H = b->H;
    o->nh = b->nh;
    o->nkv = b->nkv;
    o->D = b->D;
    o->inter = b->inter;
    o->qkv_rows = b->qkv_rows;
    o->vslice = b->vslice;
    o->n_layers = b->n_layers;
    o->es = (int)ig_dtype_size(b->dt);
    o->gemv_max_m = b->gemv_max_m;
    o->prefill_kernel = ig_attn_prefill_supported(b->D) != 0;
    o->gemv_ok = ig_gemv_supported;
    return IGNIS_OK;
}

#else /* built without CUDA */

ignis_status ig_prof_device_check(int device)
{
    (void)device;
    return ig_err(IGNIS_E_UNSUPPORTED, "built without CUDA");
}
ignis_status ig_prof_pci_bus_id(int device, char *buf, int len)
{
    (void)device;
    (void)buf;
    (void)len;
    return ig_err(IGNIS_E_UNSUPPORTED, "built without CUDA");
}
ignis_status ig_prof_measure_peaks(int device, double *gbps, double *tflops)
{
    (void)device;
    (void)gbps;
    (void)tflops;
    return ig_err(IGNIS_E_UNSUPPORTED, "built without CUDA");
}
ignis_status ignis_profile_range_begin(void)
{
    return ig_err(IGNIS_E_UNSUPPORTED, "the Nsight capture range needs CUDA");
}
ignis_status ignis_profile_range_end(void)
{
    return ig_err(IGNIS_E_UNSUPPORTED, "the Nsight capture range needs CUDA");
}
ignis_status ig_prof_cost_shape(const ig_backend *b, ig_cost_shape *o)
{
    (void)b;
    (void)o;
    return ig_err(IGNIS_E_UNSUPPORTED, "declared kernel work is modelled for the CUDA backend only");
}
#endif
