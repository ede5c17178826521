/* The environment variables the CLI (and the benchmarks) map onto ignis_engine_opts: the
 * library itself reads none. */
#ifndef IG_CLI_ENV_OPTS_H
#define IG_CLI_ENV_OPTS_H

#include <stdbool.h>

#include "ignis.h"

/* Sets o->cuda from IGNIS_CUDA_GRAPHS=0|1, IGNIS_CUDA_PDL=0|1, IGNIS_CUDA_GEMV_MAX_M=N
 * (0: none), IGNIS_CUDA_SPLIT_COVER=N, IGNIS_CUDA_DECODE_ATTN=auto|tiled,
 * IGNIS_CUDA_NCCL=0|1 and IGNIS_NCCL_LIB=PATH; unset or empty variables leave a field as
 * it is. A malformed value prints one line naming the variable and returns false. */
bool cli_env_engine_opts(ignis_engine_opts *o);

#endif
