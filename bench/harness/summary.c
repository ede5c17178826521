/* The summary table on stdout (vLLM's benchmark_serving layout, so numbers read alike). */
#include <stdio.h>

#include "bench.h"

static void dist_lines(FILE *f, const char *name, const bench_dist *d)
{
    if (!d->n) return;
    fprintf(f, "%-8s ms   mean %9.2f  std %9.2f  p50 %9.2f  p90 %9.2f  p95 %9.2f  p99 %9.2f\n", name, d->mean, d->std,
            d->p50, d->p90, d->p95, d->p99);
}

void bench_summary_print(FILE *f, const char *title, const bench_metrics *m)
{
    fprintf(f, "============ %s ============\n", title);
    fprintf(f, "%-36s %d\n", "Successful requests:", m->completed);
    fprintf(f, "%-36s %d\n", "Failed requests:", m->failed);
    fprintf(f, "%-36s %.2f\n", "Benchmark duration (s):", m->duration_s);
    fprintf(f, "%-36s %lld\n", "Total input tokens:", m->input_tokens);
    fprintf(f, "%-36s %lld\n", "Total generated tokens:", m->output_tokens);
    fprintf(f, "%-36s %.2f\n", "Request throughput (req/s):", m->req_per_s);
    fprintf(f, "%-36s %.2f\n", "Output token throughput (tok/s):", m->output_tok_s);
    fprintf(f, "%-36s %.2f\n", "Total token throughput (tok/s):", m->total_tok_s);
    fprintf(f, "%-36s %.2f\n", "Goodput (req/s):", m->goodput_req_s);
    fprintf(f, "%-36s %d\n", "Peak concurrent requests:", m->peak_concurrency);
    dist_lines(f, "TTFT", &m->ttft_ms);
    dist_lines(f, "TPOT", &m->tpot_ms);
    dist_lines(f, "ITL", &m->itl_ms);
    dist_lines(f, "E2E", &m->e2e_ms);
    dist_lines(f, "queue", &m->queue_ms);
    dist_lines(f, "prefill", &m->prefill_ms);
    dist_lines(f, "decode", &m->decode_ms);
    if (m->kv_peak >= 0)
        fprintf(f, "%-36s peak %.1f%%  mean %.1f%%\n", "KV-cache usage:", 100 * m->kv_peak, 100 * m->kv_mean);
    if (m->batch_mean >= 0) fprintf(f, "%-36s %.2f\n", "Mean batch size:", m->batch_mean);
    if (m->preemptions >= 0) fprintf(f, "%-36s %lld\n", "Preemptions:", m->preemptions);
    if (m->prefix_hit_rate >= 0) fprintf(f, "%-36s %.1f%%\n", "Prefix-cache hit rate:", 100 * m->prefix_hit_rate);
    if (m->lag_ms.n) fprintf(f, "%-36s p99 %.2f  max %.2f\n", "Schedule lag (ms):", m->lag_ms.p99, m->lag_ms.max);
    if (m->usage_mismatch >= 0) fprintf(f, "%-36s %lld\n", "Token count vs server usage (|diff|):", m->usage_mismatch);
    fprintf(f, "==================================================\n");
}
