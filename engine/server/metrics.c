/* Prometheus exposition of the server's metrics (text format 0.0.4). */
#include "server/metrics.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* vLLM's bucket bounds, so the same dashboards and SLO queries work. */
static const double k_ttft[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25, 0.5,  0.75,
                                1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160., 640., 2560.};
static const double k_itl[] = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                               0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
static const double k_e2e[] = {0.3,  0.5,  0.8,  1.0,  1.5,  2.0,  2.5,  5.0,  10.0,  15.0, 20.0,
                               30.0, 40.0, 50.0, 60.0, 120., 240., 480., 960., 1920., 7680.};

static void hist_init(srv_hist *h, const char *name, const char *help, const double *b, int n)
{
    memset(h, 0, sizeof *h);
    h->name = name;
    h->help = help;
    h->bounds = b;
    h->n_bounds = n;
}

void srv_metrics_init(srv_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    hist_init(&m->c.ttft, "time_to_first_token_seconds", "Histogram of time to first token in seconds.", k_ttft,
              (int)(sizeof k_ttft / sizeof k_ttft[0]));
    hist_init(&m->c.itl, "inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", k_itl,
              (int)(sizeof k_itl / sizeof k_itl[0]));
    hist_init(&m->c.e2e, "e2e_request_latency_seconds", "Histogram of end-to-end request latency in seconds.", k_e2e,
              (int)(sizeof k_e2e / sizeof k_e2e[0]));
    hist_init(&m->c.queue, "request_queue_time_seconds", "Histogram of time spent waiting in the queue in seconds.",
              k_e2e, (int)(sizeof k_e2e / sizeof k_e2e[0]));
}

void srv_metrics_destroy(srv_metrics *m) { pthread_mutex_destroy(&m->mu); }

static void observe(srv_hist *h, double v)
{
    int i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void srv_metrics_token_gap(srv_metrics *m, double gap_s)
{
    if (gap_s < 0) return;
    pthread_mutex_lock(&m->mu);
    observe(&m->c.itl, gap_s);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_request_done(srv_metrics *m, const ignis_request_result *r)
{
    int fin = r->finish_reason == IGNIS_FINISH_STOP                                                  ? SRV_FIN_STOP
              : r->finish_reason == IGNIS_FINISH_LENGTH || r->finish_reason == IGNIS_FINISH_CAPACITY ? SRV_FIN_LENGTH
              : r->finish_reason == IGNIS_FINISH_ERROR                                               ? SRV_FIN_ERROR
                                                                                                     : SRV_FIN_ABORT;
    pthread_mutex_lock(&m->mu);
    m->c.prompt_tokens += (uint64_t)(r->prompt_tokens > 0 ? r->prompt_tokens : 0);
    m->c.generation_tokens += (uint64_t)(r->generated_tokens > 0 ? r->generated_tokens : 0);
    m->c.finished[fin]++;
    if (r->ttft_s >= 0) observe(&m->c.ttft, r->ttft_s);
    if (r->e2e_s >= 0) observe(&m->c.e2e, r->e2e_s);
    if (r->queue_s >= 0) observe(&m->c.queue, r->queue_s);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_http_status(srv_metrics *m, int status)
{
    int k = status / 100;
    if (k < 1 || k > 5) return;
    pthread_mutex_lock(&m->mu);
    m->c.http_status[k]++;
    pthread_mutex_unlock(&m->mu);
}

typedef struct wctx {
    sbuf *out;
    const char *label; /* model_name="..." */
    bool ok;
} wctx;

static void head(wctx *w, const char *name, const char *type, const char *help)
{
    w->ok &= sbuf_printf(w->out, "# HELP ignis:%s %s\n# TYPE ignis:%s %s\n", name, help, name, type);
}

static void gauge(wctx *w, const char *name, const char *help, double v)
{
    head(w, name, "gauge", help);
    w->ok &= sbuf_printf(w->out, "ignis:%s{%s} %.17g\n", name, w->label, v);
}

/* Text format 0.0.4: a counter's HELP/TYPE lines name the sample, _total included. */
static void counter(wctx *w, const char *name, const char *help, uint64_t v)
{
    char full[128];
    snprintf(full, sizeof full, "%s_total", name);
    head(w, full, "counter", help);
    w->ok &= sbuf_printf(w->out, "ignis:%s_total{%s} %llu\n", name, w->label, (unsigned long long)v);
}

static void hist(wctx *w, const srv_hist *h)
{
    head(w, h->name, "histogram", h->help);
    uint64_t cum = 0;
    for (int i = 0; i <= h->n_bounds; i++) {
        cum += h->counts[i];
        if (i < h->n_bounds)
            w->ok &= sbuf_printf(w->out, "ignis:%s_bucket{%s,le=\"%g\"} %llu\n", h->name, w->label, h->bounds[i],
                                 (unsigned long long)cum);
        else
            w->ok &= sbuf_printf(w->out, "ignis:%s_bucket{%s,le=\"+Inf\"} %llu\n", h->name, w->label,
                                 (unsigned long long)cum);
    }
    w->ok &= sbuf_printf(w->out, "ignis:%s_sum{%s} %.17g\nignis:%s_count{%s} %llu\n", h->name, w->label, h->sum,
                         h->name, w->label, (unsigned long long)h->count);
}

/* Label values escape backslash, quote and newline. */
static void label_of(const char *model_name, char *dst, size_t cap)
{
    size_t n = 0;
    const char *pre = "model_name=\"";
    for (const char *p = pre; *p && n + 1 < cap; p++)
        dst[n++] = *p;
    for (const char *p = model_name; *p && n + 3 < cap; p++) {
        if (*p == '\\' || *p == '"') dst[n++] = '\\';
        if (*p == '\n') {
            dst[n++] = '\\';
            dst[n++] = 'n';
            continue;
        }
        dst[n++] = *p;
    }
    if (n + 1 < cap) dst[n++] = '"';
    dst[n] = 0;
}

bool srv_metrics_write(srv_metrics *m, const ignis_engine_stats *st, const char *model_name, sbuf *out)
{
    /* formatted from a copy, outside the lock: the engine's thread takes it for every token
     * gap and must not wait for a scrape */
    pthread_mutex_lock(&m->mu);
    srv_counts c = m->c;
    pthread_mutex_unlock(&m->mu);
    char label[512];
    label_of(model_name, label, sizeof label);
    wctx w = {out, label, true};
    ignis_engine_stats zero;
    if (!st) {
        memset(&zero, 0, sizeof zero);
        st = &zero;
    }
    gauge(&w, "num_requests_running", "Number of requests in model execution batches.", st->running);
    gauge(&w, "num_requests_waiting", "Number of requests waiting to be processed (preempted ones included).",
          st->waiting);
    gauge(&w, "num_sessions", "Number of live interactive sessions.", st->sessions);
    double total = st->kv_blocks_total > 0 ? st->kv_blocks_total : 1;
    gauge(&w, "kv_cache_usage_perc", "KV-cache usage: fraction of the engine's blocks in use (1 = 100%).",
          st->kv_blocks_used / total);
    gauge(&w, "kv_cache_blocks_total", "KV-cache blocks the engine may hold.", st->kv_blocks_total);
    gauge(&w, "kv_cache_blocks_used", "KV-cache blocks referenced by running requests or sessions.",
          st->kv_blocks_used);
    gauge(&w, "kv_cache_blocks_free", "KV-cache blocks free.", st->kv_blocks_free);
    gauge(&w, "kv_cache_blocks_cached", "Unreferenced prefix-cache blocks (reclaimable).", st->kv_blocks_cached);
    gauge(&w, "cache_block_seq_len", "Tokens per KV-cache block.", st->cache_block_seq_len);
    counter(&w, "num_preemptions", "Cumulative number of preemptions.", st->preemptions);
    counter(&w, "prefix_cache_queries", "Prefix-cache lookups (full prompt blocks).", st->prefix_cache_queries);
    counter(&w, "prefix_cache_hits", "Prefix-cache hits (full prompt blocks found cached).", st->prefix_cache_hits);
    counter(&w, "prefill_tokens_computed", "Prompt and history tokens computed (recomputation included).",
            st->prefill_tokens);
    counter(&w, "prompt_tokens", "Number of prefill tokens processed (prompts of finished requests).", c.prompt_tokens);
    counter(&w, "generation_tokens", "Number of generation tokens processed.", c.generation_tokens);
    static const char *fin[SRV_FIN_N] = {"stop", "length", "abort", "error"};
    head(&w, "request_success_total", "counter", "Count of finished requests by finish reason.");
    for (int i = 0; i < SRV_FIN_N; i++)
        w.ok &= sbuf_printf(out, "ignis:request_success_total{%s,finished_reason=\"%s\"} %llu\n", label, fin[i],
                            (unsigned long long)c.finished[i]);
    head(&w, "http_responses_total", "counter", "HTTP responses by status class.");
    for (int k = 1; k <= 5; k++)
        w.ok &= sbuf_printf(out, "ignis:http_responses_total{%s,status=\"%dxx\"} %llu\n", label, k,
                            (unsigned long long)c.http_status[k]);
    hist(&w, &c.ttft);
    hist(&w, &c.itl);
    hist(&w, &c.e2e);
    hist(&w, &c.queue);
    return w.ok;
}
