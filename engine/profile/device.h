/*
 * device.h — what the profiler asks of the CUDA device: whether one is there, its PCI bus
 * id (to find it in NVML), the measured peaks the report divides by, the Nsight capture
 * range, and the cost-model shape of a CUDA backend. Every call fails cleanly
 * (IGNIS_E_UNSUPPORTED / IGNIS_E_DEVICE) without CUDA or a device.
 */
#ifndef IG_PROFILE_DEVICE_H
#define IG_PROFILE_DEVICE_H

#include "backend/backend.h"
#include "ignis.h"
#include "profile/cost.h"

ignis_status ig_prof_device_check(int device);
ignis_status ig_prof_pci_bus_id(int device, char *buf, int len);
/* Peaks with kernel_bench's definitions: a device-to-device copy counting read + write
 * bytes, and an fp16 cuBLAS GEMM (8192^3, smaller when memory is short). */
ignis_status ig_prof_measure_peaks(int device, double *gbps, double *tflops);
/* Fills the shape of a CUDA backend; IGNIS_E_UNSUPPORTED for other backends. */
ignis_status ig_prof_cost_shape(const ig_backend *b, ig_cost_shape *out);

#endif
