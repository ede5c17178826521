/*
 * nvml_loader.h — GPU telemetry through NVML, loaded at run time (dlopen of
 * libnvidia-ml.so.1, like NCCL in backend/cuda/nccl.c): ignis links no driver library, so
 * it still runs where there is no driver, and a missing library is a clean
 * IGNIS_E_UNSUPPORTED. nvml.h (types only) comes from PyPI's nvidia-nvml-dev, which
 * .ci/setup unpacks into build/.nvml; without it this compiles to the same clean failure.
 */
#ifndef IG_PROFILE_NVML_LOADER_H
#define IG_PROFILE_NVML_LOADER_H

#include <stdint.h>

#include "ignis.h"

typedef struct ig_nvml ig_nvml;

/* Opens NVML from `lib` (NULL: libnvidia-ml.so.1) and the device with PCI bus id `pci`
 * (as cudaDeviceGetPCIBusId writes it; the reliable match when CUDA_VISIBLE_DEVICES
 * reorders devices) or, when pci is NULL, NVML's device `index`. */
ignis_status ig_nvml_open(const char *lib, const char *pci, int index, ig_nvml **out);
void ig_nvml_close(ig_nvml *n);

/* One reading. Fields a device does not support are NaN; energy_mj is the device's
 * cumulative counter (UINT64_MAX when unsupported). */
typedef struct ig_nvml_reading {
    double power_w, sm_mhz, mem_mhz, gpu_util_pct, mem_util_pct, mem_used_mb, temp_c;
    uint64_t energy_mj;
    uint64_t reasons;
} ig_nvml_reading;
void ig_nvml_read(ig_nvml *n, ig_nvml_reading *r);
/* Enforced power limit in W; NaN when unsupported. */
double ig_nvml_power_limit_w(ig_nvml *n);

/* Clock-event reasons that mean the GPU ran slower than it should (thermal and hardware
 * slowdowns). Not throttling: idle, application clocks, sync boost, and the software power
 * cap (0x4) — a fully loaded H100/H200 runs at its power limit by design (every ShareGPT
 * replay at concurrency >= 8 on the H200 reported it), so it describes the regime, not a
 * fault; it stays visible in throttle_reasons. */
#define IG_NVML_THROTTLE_MASK 0xE8ull /* HwSlowdown 0x8, SwThermal 0x20, HwThermal 0x40, HwPowerBrake 0x80 */

#endif
