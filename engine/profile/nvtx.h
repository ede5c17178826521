/*
 * nvtx.h — NVTX ranges around engine stages, for Nsight Systems timelines and
 * `ncu --nvtx --nvtx-include`.
 *
 * With CUDA these are NVTX3 (header-only) push/pop calls: with no tool attached, NVTX3's
 * first call finds no injection library and every later call is one indirect call to an
 * empty function (bench/nvtx_bench measures it). Without CUDA they compile to nothing.
 * Range names are string literals; a range pushed on one thread is popped on that thread.
 *
 * Names in use (README "Profiling"): "schedule", "prefill", "decode step", "attention",
 * "ffn", "sampling", "detokenize", "http" (the server's request handling).
 */
#ifndef IG_PROFILE_NVTX_H
#define IG_PROFILE_NVTX_H

#if defined(IGNIS_HAVE_CUDA) && defined(IGNIS_HAVE_NVTX)
#include <nvtx3/nvToolsExt.h>
static inline void ig_nvtx_push(const char *name) { nvtxRangePushA(name); }
static inline void ig_nvtx_pop(void) { nvtxRangePop(); }
#else
static inline void ig_nvtx_push(const char *name) { (void)name; }
static inline void ig_nvtx_pop(void) {}
#endif

/* Statement macros, so a call site reads as one line: IG_NVTX_PUSH("prefill"); ... IG_NVTX_POP(); */
#define IG_NVTX_PUSH(name) ig_nvtx_push(name)
#define IG_NVTX_POP() ig_nvtx_pop()

#endif
