/*
 * cupti_collect.h — the CUPTI activity collector behind `--kernels`.
 *
 * Kinds: CONCURRENT_KERNEL (one record per kernel, graph nodes included: a CUDA-graph
 * decode step yields one record per kernel node, carrying the cudaGraphLaunch's
 * correlation id — GRAPH_TRACE would be cheaper but gives one record per graph, losing the
 * per-kernel table), MEMCPY, MEMSET, OVERHEAD (CUPTI's own cost, reported), RUNTIME (needed:
 * an external-correlation record is emitted for each API record) and
 * EXTERNAL_CORRELATION (maps API correlation ids to the engine step id the scheduler
 * pushes around each forward).
 *
 * CUPTI is process-wide: one collector per process. ig_cupti_init registers the buffer
 * callbacks and sizes the device buffer before the first CUDA context exists; the kinds
 * are enabled only between ig_cupti_enable and ig_cupti_disable (the measured window).
 */
#ifndef IG_PROFILE_CUPTI_COLLECT_H
#define IG_PROFILE_CUPTI_COLLECT_H

#include <stddef.h>
#include <stdint.h>

#include "ignis.h"
#include "profile/activity.h"

/* IGNIS_E_UNSUPPORTED when built without CUPTI. buffer_bytes: each host buffer handed to
 * CUPTI. */
ignis_status ig_cupti_init(size_t buffer_bytes);
ignis_status ig_cupti_enable(void);
/* Disables the kinds and flushes every buffer (records complete when this returns). */
ignis_status ig_cupti_disable(void);
/* CUPTI's clock, the one activity timestamps use (ns). */
uint64_t ig_cupti_now_ns(void);
void ig_cupti_push_step(uint64_t step);
void ig_cupti_pop_step(void);

/* What one window collected, with each activity's step resolved through the external
 * correlation records (-1 when none). The caller owns it after ig_cupti_take. */
typedef struct ig_cupti_data {
    ig_act *acts;
    int n_acts;
    char **names; /* kernel names, indexed by ig_act.name */
    int n_names;
    uint64_t dropped;
    uint64_t overhead_ns;
} ig_cupti_data;
void ig_cupti_take(ig_cupti_data *out);
void ig_cupti_data_free(ig_cupti_data *d);
/* Forgets everything collected so far (a new window). */
void ig_cupti_reset(void);

#endif
