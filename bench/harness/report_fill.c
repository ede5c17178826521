/* Filling a report row: metadata (who, where, what), metrics, self-checks; and the
 * per-request and timeline CSVs beside it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#include "git_commit.h" /* generated at build time: bench/harness/git_commit.cmake */

/* GPU name, driver and CUDA version from nvidia-smi (the public API does not expose them;
 * empty when there is no NVIDIA driver). Read once. */
static void gpu_info(char *name, char *driver, char *cuda, size_t cap)
{
    static int done;
    static char n[256], d[256], c[256];
    if (!done) {
        done = 1;
        FILE *p = popen("nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null", "r");
        char line[256];
        if (p && fgets(line, sizeof line, p)) {
            char *comma = strchr(line, ',');
            if (comma) {
                *comma = 0;
                snprintf(n, sizeof n, "%s", line);
                snprintf(d, sizeof d, "%s", comma + 1 + (comma[1] == ' '));
                d[strcspn(d, "\r\n")] = 0;
            }
        }
        if (p) pclose(p);
        p = popen("nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*'", "r");
        if (p && fgets(line, sizeof line, p)) {
            line[strcspn(line, "\r\n")] = 0;
            snprintf(c, sizeof c, "%s", line + strlen("CUDA Version: "));
        }
        if (p) pclose(p);
    }
    snprintf(name, cap, "%s", n);
    snprintf(driver, cap, "%s", d);
    snprintf(cuda, cap, "%s", c);
}

void bench_row_fill_meta(bench_row *row, const bench_meta *m)
{
    char date[32], host[128] = "", gn[256], gd[256], gc[256];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    gethostname(host, sizeof host - 1);
    gpu_info(gn, gd, gc, sizeof gn);
    bench_row_set(row, "schema_version", "%d", BENCH_SCHEMA_VERSION);
    bench_row_set(row, "date", "%s", date);
    bench_row_set(row, "ignis_version", "%s", ignis_version());
    bench_row_set(row, "git_commit", "%s", IGNIS_GIT_COMMIT);
    bench_row_set(row, "host", "%s", host);
    bench_row_set(row, "gpu_name", "%s", gn);
    bench_row_set(row, "driver_version", "%s", gd);
    bench_row_set(row, "cuda_version", "%s", gc);
    bench_row_set(row, "model", "%s", m->model ? m->model : "");
    bench_row_set(row, "dtype", "%s", m->dtype ? m->dtype : "");
    bench_row_set(row, "backend", "%s", m->backend ? m->backend : "");
    bench_row_set(row, "mode", "%s", m->mode ? m->mode : "");
    bench_row_set(row, "workload", "%s", m->workload ? m->workload : "");
    bench_row_set(row, "workload_hash", "%s", m->workload_hash ? m->workload_hash : "");
    bench_row_set(row, "seed", "%llu", (unsigned long long)m->seed);
    bench_row_set(row, "config", "%s", m->config ? m->config : "");
}

static void set_dist(bench_row *row, const char *base, const bench_dist *d)
{
    char col[64];
#define SETD(suffix, val)                                                                                              \
    snprintf(col, sizeof col, "%s_" suffix, base);                                                                     \
    bench_row_set(row, col, "%.4f", d->n ? (val) : NAN)
    SETD("mean", d->mean);
    SETD("std", d->std);
    SETD("p50", d->p50);
    SETD("p90", d->p90);
    SETD("p95", d->p95);
    SETD("p99", d->p99);
#undef SETD
}

void bench_row_fill_metrics(bench_row *row, const bench_metrics *m)
{
    bench_row_set(row, "completed", "%d", m->completed);
    bench_row_set(row, "failed", "%d", m->failed);
    bench_row_set(row, "duration_s", "%.4f", m->duration_s);
    bench_row_set(row, "req_per_s", "%.4f", m->req_per_s);
    bench_row_set(row, "input_tok_s", "%.3f", m->input_tok_s);
    bench_row_set(row, "output_tok_s", "%.3f", m->output_tok_s);
    bench_row_set(row, "total_tok_s", "%.3f", m->total_tok_s);
    bench_row_set(row, "goodput_req_s", "%.4f", m->goodput_req_s);
    bench_row_set(row, "peak_concurrency", "%d", m->peak_concurrency);
    set_dist(row, "ttft_ms", &m->ttft_ms);
    set_dist(row, "tpot_ms", &m->tpot_ms);
    set_dist(row, "itl_ms", &m->itl_ms);
    set_dist(row, "e2e_ms", &m->e2e_ms);
    if (m->queue_ms.n) {
        bench_row_set(row, "queue_ms_mean", "%.4f", m->queue_ms.mean);
        bench_row_set(row, "queue_ms_p99", "%.4f", m->queue_ms.p99);
    }
    if (m->prefill_ms.n) {
        bench_row_set(row, "prefill_ms_mean", "%.4f", m->prefill_ms.mean);
        bench_row_set(row, "prefill_ms_p99", "%.4f", m->prefill_ms.p99);
    }
    if (m->decode_ms.n) {
        bench_row_set(row, "decode_ms_mean", "%.4f", m->decode_ms.mean);
        bench_row_set(row, "decode_ms_p99", "%.4f", m->decode_ms.p99);
    }
    if (m->kv_peak >= 0) bench_row_set(row, "kv_usage_peak", "%.4f", m->kv_peak);
    if (m->kv_mean >= 0) bench_row_set(row, "kv_usage_mean", "%.4f", m->kv_mean);
    if (m->batch_mean >= 0) bench_row_set(row, "batch_size_mean", "%.3f", m->batch_mean);
    if (m->preemptions >= 0) bench_row_set(row, "preemptions", "%lld", m->preemptions);
    if (m->prefix_hit_rate >= 0) bench_row_set(row, "prefix_cache_hit_rate", "%.4f", m->prefix_hit_rate);
    if (m->lag_ms.n) {
        bench_row_set(row, "schedule_lag_ms_p99", "%.4f", m->lag_ms.p99);
        bench_row_set(row, "schedule_lag_ms_max", "%.4f", m->lag_ms.max);
    }
    if (m->usage_mismatch >= 0) bench_row_set(row, "usage_token_mismatch", "%lld", m->usage_mismatch);
}

/* A run is invalid when the load generator could not keep its schedule (p99 lag above
 * 10 ms: the measured latencies include client delay), when requests failed, or when the
 * server's token counts disagree with ours by more than 1%. */
void bench_row_check_validity(bench_row *row, const bench_metrics *m)
{
    char why[512] = "";
    size_t k = 0;
    if (m->lag_ms.n && m->lag_ms.p99 > 10.0)
        k += (size_t)snprintf(why + k, sizeof why - k, "%sschedule lag p99 %.1f ms > 10 ms", k ? "; " : "",
                              m->lag_ms.p99);
    if (m->failed > 0 && k < sizeof why)
        k += (size_t)snprintf(why + k, sizeof why - k, "%s%d requests failed", k ? "; " : "", m->failed);
    if (m->usage_mismatch > 0 && m->output_tokens > 0 && (double)m->usage_mismatch > 0.01 * (double)m->output_tokens &&
        k < sizeof why)
        k += (size_t)snprintf(why + k, sizeof why - k, "%stoken count differs from server usage by %lld", k ? "; " : "",
                              m->usage_mismatch);
    if (m->completed == 0 && k < sizeof why)
        k += (size_t)snprintf(why + k, sizeof why - k, "%sno request completed", k ? "; " : "");
    bench_row_set(row, "valid", "%d", k == 0);
    bench_row_set(row, "invalid_reasons", "%s", why);
}

int bench_write_requests_csv(const char *path, const bench_run *r, const char *config)
{
    static const char *hdr[] = {"config",           "index",         "ok",
                                "scheduled_s",      "ready_s",       "sent_s",
                                "ttft_ms",          "e2e_ms",        "queue_ms",
                                "prefill_ms",       "decode_ms",     "tpot_ms",
                                "prompt_tokens",    "output_tokens", "usage_tokens",
                                "counted_tokens",   "cached_tokens", "preemptions",
                                "itl_ms_list",      "error",         "prefill_own_ms",
                                "prefill_shared_ms"};
    int nc = (int)(sizeof hdr / sizeof hdr[0]);
    char **cells = calloc((size_t)nc * (size_t)(r->n ? r->n : 1), sizeof(char *));
    if (!cells) return bench_err("%s: out of memory", path), -1;
    for (int i = 0; i < r->n; i++) {
        const bench_record *q = &r->recs[i];
        char **c = cells + (size_t)i * nc;
        double tp = bench_tpot(q) * 1e3;
        c[0] = strdup(config ? config : "");
        c[1] = bench_cell("%.0f", q->index);
        c[2] = bench_cell("%.0f", q->ok);
        c[3] = bench_cell("%.6f", q->scheduled);
        c[4] = bench_cell("%.6f", q->ready);
        c[5] = bench_cell("%.6f", q->sent);
        c[6] = bench_cell("%.4f", q->ok && q->ttft >= 0 ? q->ttft * 1e3 : NAN);
        c[7] = bench_cell("%.4f", q->ok ? q->e2e * 1e3 : NAN);
        c[8] = bench_cell("%.4f", q->queue >= 0 ? q->queue * 1e3 : NAN);
        c[9] = bench_cell("%.4f", q->prefill >= 0 ? q->prefill * 1e3 : NAN);
        c[10] = bench_cell("%.4f", q->decode >= 0 ? q->decode * 1e3 : NAN);
        c[11] = bench_cell("%.4f", tp);
        c[12] = bench_cell("%.0f", q->prompt_tokens);
        c[13] = bench_cell("%.0f", q->output_tokens);
        c[14] = bench_cell("%.0f", q->usage_tokens >= 0 ? q->usage_tokens : NAN);
        c[15] = bench_cell("%.0f", q->counted_tokens >= 0 ? q->counted_tokens : NAN);
        c[16] = bench_cell("%.0f", q->cached_tokens >= 0 ? q->cached_tokens : NAN);
        c[17] = bench_cell("%.0f", q->preemptions);
        /* ITLs as one space-separated field: compare bootstraps ITL percentiles from it */
        size_t cap = 16 + (size_t)(q->output_tokens > 0 ? q->output_tokens : 0) * 12, k = 0;
        char *l = malloc(cap);
        if (l) {
            l[0] = 0;
            for (int t = 1; q->token_times && t < q->output_tokens; t++)
                k += (size_t)snprintf(l + k, cap - k, "%s%.3f", t > 1 ? " " : "",
                                      (q->token_times[t] - q->token_times[t - 1]) * 1e3);
        }
        c[18] = l;
        c[19] = strdup(q->error);
        c[20] = bench_cell("%.4f", q->prefill_own >= 0 ? q->prefill_own * 1e3 : NAN);
        c[21] = bench_cell("%.4f", q->prefill_shared >= 0 ? q->prefill_shared * 1e3 : NAN);
    }
    return bench_csv_write_owned(path, hdr, nc, cells, r->n);
}

int bench_write_timeline_csv(const char *path, const bench_run *r, const char *config)
{
    static const char *hdr[] = {"config", "t_s", "kv_usage", "running", "waiting", "batch_size", "in_flight", "tok_s"};
    int nc = (int)(sizeof hdr / sizeof hdr[0]);
    char **cells = calloc((size_t)nc * (size_t)(r->n_samples ? r->n_samples : 1), sizeof(char *));
    if (!cells) return bench_err("%s: out of memory", path), -1;
    for (int i = 0; i < r->n_samples; i++) {
        const bench_sample *s = &r->samples[i];
        char **c = cells + (size_t)i * nc;
        c[0] = strdup(config ? config : "");
        c[1] = bench_cell("%.4f", s->t);
        c[2] = bench_cell("%.4f", s->kv_usage >= 0 ? s->kv_usage : NAN);
        c[3] = bench_cell("%.0f", s->running >= 0 ? s->running : NAN);
        c[4] = bench_cell("%.0f", s->waiting >= 0 ? s->waiting : NAN);
        c[5] = bench_cell("%.0f", s->batch_size >= 0 ? s->batch_size : NAN);
        c[6] = bench_cell("%.0f", s->in_flight);
        c[7] = bench_cell("%.2f", s->tokens_per_s);
    }
    return bench_csv_write_owned(path, hdr, nc, cells, r->n_samples);
}
