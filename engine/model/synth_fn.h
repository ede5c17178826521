/* The value function of synthetic weights, shared verbatim by the host (CPU backend,
 * tests) and the device (CUDA backend generates 7B-class weights in place). A counter-based
 * hash: element i of a tensor depends only on (seed, i), so any slice can be generated
 * independently and both backends see bit-identical weights. */
#ifndef IG_SYNTH_FN_H
#define IG_SYNTH_FN_H

#include <stdint.h>

#ifdef __CUDACC__
#define IG_HD __host__ __device__ __forceinline__
#else
#define IG_HD static inline
#endif

/* splitmix64 finalizer: full avalanche, cheap on both sides */
IG_HD uint64_t ig_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Uniform in [-1, 1), 24 bits of resolution (exact in fp32). */
IG_HD float ig_synth_value(uint64_t seed, uint64_t i)
{
    uint64_t h = ig_mix64(seed ^ ig_mix64(i + 0x9e3779b97f4a7c15ULL));
    return (float)(h >> 40) * (1.0f / 8388608.0f) - 1.0f;
}

/* Element i of a synthetic tensor. Multiply and add are kept separate (no FMA
 * contraction on the device) so host and device round identically. */
IG_HD float ig_synth_elem(uint64_t seed, uint64_t i, float scale, float bias)
{
#ifdef __CUDA_ARCH__
    return __fadd_rn(__fmul_rn(ig_synth_value(seed, i), scale), bias);
#else
    volatile float m = ig_synth_value(seed, i) * scale;
    return m + bias;
#endif
}

/* Where a tensor-parallel rank's slice sits in the full (tp 1) tensor, so every rank's
 * synthetic weights are slices of one model and `--tp N` computes what `--tp 1` does.
 * The slice's rows come in up to three runs of consecutive full rows (wqkv: this rank's
 * q, k and v heads); its columns start at col0 of a full row of full_cols. n_runs 0 is
 * the identity (an unsplit tensor). */
typedef struct ig_synth_map {
    int n_runs;
    int64_t run_len[3];   /* slice rows in each run */
    int64_t run_full0[3]; /* full row of each run's first row */
    int64_t cols;         /* slice row length */
    int64_t col0;         /* full column of the slice's first column */
    int64_t full_cols;    /* full row length */
} ig_synth_map;

/* Index in the full tensor of element e of the slice. */
IG_HD uint64_t ig_synth_full_index(const ig_synth_map *m, uint64_t e)
{
    if (m->n_runs == 0) return e;
    int64_t row = (int64_t)(e / (uint64_t)m->cols), col = (int64_t)(e % (uint64_t)m->cols);
    int64_t full_row = row;
    for (int k = 0; k < m->n_runs; k++) {
        if (row < m->run_len[k]) {
            full_row = m->run_full0[k] + row;
            break;
        }
        row -= m->run_len[k];
    }
    return (uint64_t)(full_row * m->full_cols + m->col0 + col);
}

/* Uniform in [0, 1) for sampling: the draw of (seed, step) on any backend. */
IG_HD float ig_uniform01(uint64_t seed, uint64_t step)
{
    uint64_t h = ig_mix64(ig_mix64(seed + 0x632be59bd9b4e019ULL) ^ (step * 0x9e3779b97f4a7c15ULL));
    return (float)(h >> 40) * (1.0f / 16777216.0f);
}

#endif
