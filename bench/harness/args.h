/* `ignis bench` command-line options: one struct for every mode (each mode reads its part). */
#ifndef IG_BENCH_ARGS_H
#define IG_BENCH_ARGS_H

#include "bench.h"

#define BENCH_MAX_LIST 32

typedef struct bench_args {
    const char *mode; /* generation | throughput | serving | default */
    const char *model;
    const char *output;       /* report CSV (appended to) */
    const char *requests_csv; /* per-request CSV */
    const char *timeline_csv; /* timeline CSV */
    const char *plot_dir;     /* plots + HTML after the run */
    const char *tokenizer;    /* --tokenizer DIR */
    uint64_t seed;
    bench_slo slo;
    const char *slo_text;
    ignis_engine_opts eo;
    bench_ds_opts ds;
    bench_replay_opts rp;
    bool progress;
    bool num_prompts_given; /* the embedded default keeps a given --num-prompts */
    /* sweeps: every combination of these (throughput, serving) */
    int conc[BENCH_MAX_LIST], n_conc;
    double rate[BENCH_MAX_LIST];
    int n_rate;
    bool sweep_auto;
    /* generation grid */
    int batch[BENCH_MAX_LIST], n_batch;
    int plen[BENCH_MAX_LIST], n_plen;
    int olen[BENCH_MAX_LIST], n_olen;
    int reps, gen_warmup, depth;
    int vocab; /* serving: --vocab (0: the tokenizer's, else 32000) */
    /* profiling (profiling.h), in-process modes */
    bool kernels, profile_window;
    int telemetry_ms;
    const char *kernels_csv, *steps_csv;
} bench_args;

/* Parses argv (argv[0] = the mode name); prints usage and returns 2 on a bad flag, 1 when
 * --help was printed, 0 to run. */
int bench_args_parse(bench_args *a, const char *mode, int argc, char **argv, bench_engine_flag_fn engine_flag,
                     const char *engine_help);
/* "1,8,64" -> ints; "1,4,inf" -> doubles. */
int bench_parse_int_list(const char *s, int *out, int cap);
int bench_parse_double_list(const char *s, double *out, int cap);

#endif
