/* The report's columns: one stable list, documented in reports/README.md. Adding a column
 * bumps BENCH_SCHEMA_VERSION; a report of another version is never appended to. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define DIST(x) x "_mean", x "_std", x "_p50", x "_p90", x "_p95", x "_p99"

static const char *const k_cols[] = {
    /* identity and metadata (every row) */
    "schema_version", "date", "ignis_version", "git_commit", "host", "gpu_name", "driver_version", "cuda_version",
    "model", "dtype", "backend", "mode", "workload", "workload_hash", "seed",
    /* configuration: the key compare matches rows by (with mode, model, backend, workload) */
    "config", "batch_size", "prompt_len", "output_len", "depth", "concurrency", "request_rate", "burstiness",
    "num_prompts", "repetitions",
    /* throughput */
    "completed", "failed", "duration_s", "req_per_s", "input_tok_s", "output_tok_s", "total_tok_s", "prefill_tok_s",
    "prefill_tok_s_std", "decode_tok_s", "decode_tok_s_std", "goodput_req_s", "slo", "peak_concurrency",
    /* latency distributions, milliseconds */
    DIST("ttft_ms"), DIST("tpot_ms"), DIST("itl_ms"), DIST("e2e_ms"),
    /* in-process engine view */
    "queue_ms_mean", "queue_ms_p99", "prefill_ms_mean", "prefill_ms_p99", "decode_ms_mean", "decode_ms_p99",
    "kv_usage_peak", "kv_usage_mean", "batch_size_mean", "preemptions", "prefix_cache_hit_rate", "peak_device_mem_mb",
    /* load generator self-checks */
    "schedule_lag_ms_p99", "schedule_lag_ms_max", "usage_token_mismatch",
    /* profiling (issue 13: --kernels, NVML); empty until those land */
    "kernels_csv", "gpu_busy_frac", "top_kernel", "top_kernel_share", "kernels_overhead_pct", "energy_j",
    "tokens_per_joule", "mean_watts", "throttled",
    /* validity and raw data */
    "valid", "invalid_reasons", "samples", "requests_csv", "timeline_csv"};

int bench_report_ncols(void) { return (int)(sizeof k_cols / sizeof k_cols[0]); }
const char *bench_report_col(int i) { return i >= 0 && i < bench_report_ncols() ? k_cols[i] : NULL; }

int bench_report_col_index(const char *name)
{
    for (int i = 0; i < bench_report_ncols(); i++)
        if (!strcmp(k_cols[i], name)) return i;
    return -1;
}

int bench_row_init(bench_row *r)
{
    r->v = calloc((size_t)bench_report_ncols(), sizeof(char *));
    if (!r->v) return -1;
    for (int i = 0; i < bench_report_ncols(); i++)
        r->v[i] = calloc(1, 1);
    return 0;
}

void bench_row_free(bench_row *r)
{
    if (!r->v) return;
    for (int i = 0; i < bench_report_ncols(); i++)
        free(r->v[i]);
    free(r->v);
    r->v = NULL;
}

void bench_row_set(bench_row *r, const char *col, const char *fmt, ...)
{
    int i = bench_report_col_index(col);
    if (i < 0) {
        fprintf(stderr, "ignis bench: internal: unknown report column '%s'\n", col);
        return;
    }
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* NaN/inf are not numbers a CSV reader agrees on: they become NA ("") */
    if (!strcmp(buf, "nan") || !strcmp(buf, "-nan") || !strcmp(buf, "inf") || !strcmp(buf, "-inf")) buf[0] = 0;
    char *d = strdup(buf);
    if (!d) return;
    free(r->v[i]);
    r->v[i] = d;
}

const char *bench_row_get(const bench_row *r, const char *col)
{
    int i = bench_report_col_index(col);
    return i < 0 ? NULL : r->v[i];
}
