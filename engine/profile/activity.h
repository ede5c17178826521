/*
 * activity.h — the profiler's raw records (GPU activity, engine steps, declared work) and
 * the arithmetic that turns them into the report's rows: per-kernel statistics, GPU-busy
 * time as the union of intervals, per-step busy time and launch gaps, achieved bandwidth
 * and FLOP rate against the measured peaks. Pure C over arrays, so the CPU tests pin it on
 * synthetic records; the CUPTI collector only fills the arrays.
 *
 * Times are nanoseconds on one clock (CUPTI's timestamps; step events are stamped with the
 * same clock by the collector).
 */
#ifndef IG_PROFILE_ACTIVITY_H
#define IG_PROFILE_ACTIVITY_H

#include <stdint.h>

#include "ignis.h"
#include "profile/cost.h"

typedef enum ig_act_kind { IG_ACT_KERNEL = 0, IG_ACT_MEMCPY, IG_ACT_MEMSET } ig_act_kind;

/* One GPU activity (a kernel, memcpy or memset execution). */
typedef struct ig_act {
    uint64_t start_ns, end_ns;
    int64_t step; /* engine step that launched it; -1: none known */
    int name;     /* KERNEL: index into the name table; -1 otherwise */
    int kind;     /* ig_act_kind */
} ig_act;

/* One engine step, as the scheduler reported it. */
typedef struct ig_step_ev {
    uint64_t step;
    int n_seqs, n_tokens, n_prefill_tokens;
    uint64_t begin_ns, end_ns; /* host: forward called, forward returned */
    double bytes;              /* declared work of the step (cost model) */
} ig_step_ev;

/* Declared work per kernel family, summed over the window (cost.h). */
typedef struct ig_decl_totals {
    double bytes[IG_FAM_COUNT], flops[IG_FAM_COUNT];
} ig_decl_totals;

/* Per-kernel rows from n activities over names[]: kernels grouped by family (cost.h),
 * unknown kernels by name; share and rates over their exclusive time (above, computed
 * against every activity, memcpys included); sorted by exclusive time, largest first. *rows is malloc'd, and
 * its name/example point into names[] or static family names. Returns the row count, or
 * -1 when out of memory. */
int ig_act_kernel_rows(const ig_act *acts, int n, const char *const *names, const ig_decl_totals *decl,
                       double peak_gbps, double peak_tflops, ignis_kernel_row **rows);

/* What each activity adds to the GPU-busy time: its span beyond the furthest end of the
 * activities that started before it (so a kernel launched early by programmatic dependent
 * launch, waiting on its predecessor, is charged only past that predecessor's end). The
 * excl[] sum equals the union of all intervals. false when out of memory. */
bool ig_act_exclusive_ns(const ig_act *acts, int n, uint64_t *excl);

/* Length of the union of the activities' intervals, in ns: of all of them (only_step ==
 * IG_ACT_ANY_STEP) or of one step's. Sorts a private copy; UINT64_MAX when out of memory. */
uint64_t ig_act_busy_ns(const ig_act *acts, int n, int64_t only_step);
#define IG_ACT_ANY_STEP INT64_MIN

/* Per-step rows: steps[] in order, each step's activities found by step id. t0_ns: the
 * window's start (t_s of each row is relative to it). with_gpu false: GPU columns NaN. */
int ig_act_step_rows(const ig_step_ev *steps, int n_steps, const ig_act *acts, int n_acts, uint64_t t0_ns,
                     bool with_gpu, double peak_gbps, ignis_step_row **rows);

#endif
