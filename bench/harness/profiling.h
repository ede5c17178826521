/*
 * profiling.h — `ignis bench`'s profiling over the library's ignis_profiler (ignis.h):
 * every in-process replay is watched by a plain profiler (NVML energy and power, the
 * scheduler's step events for each request's TTFT breakdown); with --kernels the same
 * point is replayed a second time under CUPTI, so the report's metrics stay unperturbed,
 * the kernel profile comes from the second pass, and the tok/s difference between the
 * two is the measured cost of --kernels. --profile-window brackets the profiled pass with
 * cudaProfilerStart/Stop for nsys/ncu.
 */
#ifndef IG_BENCH_PROFILING_H
#define IG_BENCH_PROFILING_H

#include "bench.h"

typedef struct bench_prof_opts {
    bool kernels;            /* --kernels */
    bool profile_window;     /* --profile-window */
    int telemetry_ms;        /* --telemetry-ms (0: off; default 100) */
    int device;              /* the engine's CUDA device */
    const char *kernels_csv; /* --kernels-csv (default: beside the report) */
    const char *steps_csv;   /* --steps-csv (default: beside the report with --kernels) */
    const char *report;      /* --output, for the default paths */
} bench_prof_opts;

typedef struct bench_prof {
    bench_prof_opts o;
    ignis_profiler *plain; /* every pass without CUPTI */
    ignis_profiler *kern;  /* --kernels */
    ignis_profiler *cur;   /* the pass in progress */
    ignis_engine *engine;
} bench_prof;

/* Creates the profilers; call before the model is opened (CUPTI sizes its buffers before
 * the first CUDA context). A part that cannot work (no GPU, no NVML) reports itself NA in
 * the report; only bad arguments fail. */
int bench_prof_open(const bench_prof_opts *o, bench_prof *bp);
void bench_prof_close(bench_prof *bp);

/* Sets the replay hooks of one pass (kernels: the CUPTI pass) over engine e. */
void bench_prof_hooks(bench_prof *bp, ignis_engine *e, bool kernels, bench_replay_opts *ro);

/* After the plain pass of a sweep point: fills the energy and validity columns from it;
 * with --kernels replays the point again under CUPTI and fills the kernel columns, writes
 * the per-kernel and per-step CSVs (point/points name them like the other CSVs) and
 * prints the profile. m: the plain pass's metrics. */
int bench_prof_point(bench_prof *bp, const bench_workload *w, const bench_replay_opts *ro, const bench_metrics *m,
                     const bench_run *run, const char *config, int point, int points, bench_row *row);

#endif
