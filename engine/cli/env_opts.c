/* Environment variables onto ignis_engine_opts.cuda (README, "CUDA backend"). They are
 * tuning knobs for comparisons, so a malformed value is refused rather than ignored: a
 * measurement taken with a typo would silently measure the default. */
#include "env_opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The variable's value, NULL when unset or empty. */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static bool env_int(const char *name, long lo, long hi, long *out)
{
    const char *v = env(name);
    if (!v) return true;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (*end || errno || x < lo || x > hi) {
        fprintf(stderr, "ignis: %s expects an integer in [%ld, %ld], got '%s'\n", name, lo, hi, v);
        return false;
    }
    *out = x;
    return true;
}

/* "0" -> off (-1, the options' explicit off), "1" -> on (0, the default). */
static bool env_switch(const char *name, int *field)
{
    const char *v = env(name);
    if (!v) return true;
    if (strcmp(v, "0") && strcmp(v, "1")) {
        fprintf(stderr, "ignis: %s expects 0 or 1, got '%s'\n", name, v);
        return false;
    }
    *field = v[0] == '0' ? -1 : 0;
    return true;
}

bool cli_env_engine_opts(ignis_engine_opts *o)
{
    ignis_cuda_opts *c = &o->cuda;
    if (!env_switch("IGNIS_CUDA_GRAPHS", &c->graphs) || !env_switch("IGNIS_CUDA_PDL", &c->pdl)) return false;
    long gemv = -2, cover = 0, nccl = -1;
    if (!env_int("IGNIS_CUDA_GEMV_MAX_M", 0, 1024, &gemv)) return false;
    if (gemv >= 0) c->gemv_max_m = gemv == 0 ? -1 : (int)gemv;
    if (!env_int("IGNIS_CUDA_SPLIT_COVER", 1, 1024, &cover)) return false;
    if (cover > 0) c->split_cover = (int)cover;
    const char *da = env("IGNIS_CUDA_DECODE_ATTN");
    if (da) {
        if (strcmp(da, "auto") && strcmp(da, "tiled")) {
            fprintf(stderr, "ignis: IGNIS_CUDA_DECODE_ATTN expects auto or tiled, got '%s'\n", da);
            return false;
        }
        c->decode_attn = !strcmp(da, "tiled");
    }
    if (!env_int("IGNIS_CUDA_NCCL", 0, 1, &nccl)) return false;
    if (nccl >= 0) c->nccl = (int)nccl;
    if (env("IGNIS_NCCL_LIB")) c->nccl_lib = env("IGNIS_NCCL_LIB");
    return true;
}
