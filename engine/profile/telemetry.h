/*
 * telemetry.h — NVML readings sampled on a thread every `interval_ms` over the measured
 * window, and their summary: energy (the device's energy counter, else power integrated
 * over the samples), mean and peak power, clocks, utilisation, memory, temperature,
 * throttling.
 */
#ifndef IG_PROFILE_TELEMETRY_H
#define IG_PROFILE_TELEMETRY_H

#include <pthread.h>
#include <stdbool.h>

#include "ignis.h"
#include "profile/nvml_loader.h"

typedef struct ig_telemetry {
    ig_nvml *nvml;
    int interval_ms;
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop; /* under mu */
    double t0;
    uint64_t energy0_mj; /* counter at the window's start; UINT64_MAX: unsupported */
    ignis_telemetry_sample *samples;
    int n, cap;
    bool oom;
} ig_telemetry;

/* Starts sampling (one reading at once, then every interval_ms). */
ignis_status ig_telemetry_start(ig_telemetry *t, ig_nvml *nvml, int interval_ms);
/* Takes a last reading and joins the thread. The samples stay in t until the next start. */
void ig_telemetry_stop(ig_telemetry *t);
void ig_telemetry_free(ig_telemetry *t);

/* Fills the telemetry fields of `out` from n samples (pure; the CPU tests pin it). Energy
 * from the counter column when every sample has it, else the trapezoid integral of power. */
void ig_telemetry_summarize(const ignis_telemetry_sample *s, int n, double power_limit_w, ignis_profile_summary *out);

#endif
