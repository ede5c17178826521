/* Helpers shared by the GPU suites: skip without a device, deterministic random inputs,
 * device buffers poisoned before use, and closeness checks that report expected vs got. */
#ifndef IG_CUDA_TEST_UTIL_H
#define IG_CUDA_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"
#include "core/dtype.h"
#include "model/synth_fn.h"
#include "test_util.h"

/* GPU suites return 77 (ctest: skipped) when no device is present, so they build and
 * skip cleanly in CI. */
#define CT_SKIP_WITHOUT_GPU()                                                                                          \
    do {                                                                                                               \
        if (ig_cuda_device_count() == 0) {                                                                             \
            printf("no CUDA device: skipped\n");                                                                       \
            return 77;                                                                                                 \
        }                                                                                                              \
    } while (0)

#define CT_CK(call)                                                                                                    \
    do {                                                                                                               \
        cudaError_t ct_e_ = (call);                                                                                    \
        if (ct_e_ != cudaSuccess) fail_msg("%s: %s", #call, cudaGetErrorString(ct_e_));                                \
    } while (0)

static inline float ct_rand(uint64_t *state)
{
    *state += 1;
    return ig_synth_value(0x5eedULL, *state); /* uniform [-1, 1) */
}

/* Rounds v through storage dtype dt (what the GPU sees) */
static inline float ct_round(ig_dtype dt, float v)
{
    if (dt == IG_F16) return ig_f16_to_f32(ig_f32_to_f16(v));
    if (dt == IG_BF16) return ig_bf16_to_f32(ig_f32_to_bf16(v));
    return v;
}

/* Device buffer filled with 0xff bytes (NaN in fp32/fp16/bf16): an element a kernel
 * forgets to write shows up as NaN in the comparison. */
static inline void *ct_dev_poisoned(size_t bytes)
{
    void *p = NULL;
    CT_CK(cudaMalloc(&p, bytes));
    CT_CK(cudaMemset(p, 0xff, bytes));
    return p;
}

static inline void *ct_dev_from(const void *host, size_t bytes)
{
    void *p = NULL;
    CT_CK(cudaMalloc(&p, bytes));
    CT_CK(cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice));
    return p;
}

/* Host copy of n device elements of dtype dt, as fp32. */
static inline float *ct_to_host_f32(const void *dev, ig_dtype dt, size_t n)
{
    size_t es = ig_dtype_size(dt);
    void *raw = malloc(es * n);
    float *f = malloc(sizeof(float) * n);
    assert_non_null(raw);
    assert_non_null(f);
    CT_CK(cudaMemcpy(raw, dev, es * n, cudaMemcpyDeviceToHost));
    ig_to_f32(f, raw, dt, n);
    free(raw);
    return f;
}

/* The CPU reference matmul (cpu_ops.h) with its conversion workspace made here. */
static inline void ct_cpu_matmul(ig_pool *pool, float *y, int ldy, const float *x, int n, const ig_tensor *w,
                                 const float *bias)
{
    size_t ws_floats = ig_cpu_matmul_ws_floats(pool, (int)w->shape[1]);
    float *ws = malloc(sizeof(float) * ws_floats);
    assert_non_null(ws);
    TU_CHECK(ig_cpu_matmul(pool, ws, ws_floats, y, ldy, x, n, w, bias));
    free(ws);
}

/* Fails unless |got - ref| <= atol + rtol * |ref| everywhere (NaN never passes). */
static inline void ct_expect_close(const char *what, const float *got, const float *ref, size_t n, double atol,
                                   double rtol)
{
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        double lim = atol + rtol * fabs((double)ref[i]);
        if (!(d <= lim))
            fail_msg("%s[%zu]: expected %.7g, got %.7g (|diff| %.3g > tol %.3g)", what, i, ref[i], got[i], d, lim);
        if (d > worst) {
            worst = d;
            wi = i;
        }
    }
    print_message("  %s: %zu values, max |diff| %.3g at %zu (atol %.2g, rtol %.2g)\n", what, n, worst, wi, atol, rtol);
}

#endif
