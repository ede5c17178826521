/*
 * profiler_internal.h — struct ignis_profiler, shared by the public API (profiler.c) and
 * the scheduler hook (step_hook.c). Fields under `mu` are written by the engine thread
 * (step events) and read by the caller's thread at stop.
 */
#ifndef IG_PROFILE_PROFILER_INTERNAL_H
#define IG_PROFILE_PROFILER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "ignis.h"
#include "profile/activity.h"
#include "profile/cost.h"
#include "profile/cupti_collect.h"
#include "profile/req_map.h"
#include "profile/telemetry.h"

struct ignis_profiler {
    ignis_profiler_opts opts;
    ignis_engine *engine;
    bool cupti_ok;   /* CUPTI initialised: kernels can be collected */
    bool have_shape; /* the engine's backend has a cost model */
    ig_cost_shape shape;
    ig_nvml *nvml;
    ig_telemetry tel;
    bool started;
    bool range_open;        /* cudaProfilerStart called */
    double t_start, t_stop; /* host seconds (ig_now) */
    uint64_t t0_ns;         /* window start on the step clock */
    ignis_profile_summary sum;

    pthread_mutex_t mu;
    /* under mu */
    bool in_window;
    ig_step_ev *steps;
    int n_steps, cap_steps;
    bool steps_oom;
    ig_decl_totals decl;
    ig_req_map reqs;
    /* the step in flight (engine thread only) */
    uint64_t cur_step;
    uint64_t cur_begin_ns;
    double cur_begin_s;

    /* results of the last window */
    ig_cupti_data data;
    ignis_kernel_row *krows;
    int n_krows;
    ignis_step_row *srows;
    int n_srows;
};

/* The step clock: CUPTI's when kernels are collected (so steps and activities compare),
 * else the monotonic clock, in ns. */
uint64_t ig_prof_now_ns(const ignis_profiler *p);

#endif
