/*
 * step_hook.h — the scheduler's two calls around each forward step (runtime/scheduler.c):
 * an NVTX range named for the step ("prefill" when any sequence computes more than one
 * token, else "decode step"), and, when a profiler is attached (ignis_profiler_attach),
 * the step's external correlation id pushed for CUPTI and the step event recorded
 * (per-step profile, TTFT breakdown). Must run on the engine thread, begin and end
 * paired, end before the step's results update the sequences.
 */
#ifndef IG_PROFILE_STEP_HOOK_H
#define IG_PROFILE_STEP_HOOK_H

#include "backend/backend.h"
#include "ignis.h"

void ig_prof_step_begin(ignis_engine *e, const ig_batch *b);
void ig_prof_step_end(ignis_engine *e, const ig_batch *b);
/* Sets (or, with p NULL, clears) the engine's profiler, waiting for a step in flight. */
void ig_prof_set_engine_hook(ignis_engine *e, ignis_profiler *p);

#endif
