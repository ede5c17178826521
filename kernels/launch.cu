/* The launch path's per-device state (common.cuh): which devices run without
 * programmatic dependent launch. */
#include "common.cuh"
#include "ig_kernels.h"

extern "C" {
ig_dev_flags ig_pdl_off_devices; /* zero-initialized: PDL on everywhere */
}

extern "C" cudaError_t ig_kernels_set_pdl(int device, int on)
{
    if (device < 0 || device >= IG_MAX_DEVICES) return cudaErrorInvalidDevice;
    ig_dev_flags_put(&ig_pdl_off_devices, device, !on);
    return cudaSuccess;
}
