/* The server's Prometheus metrics: counters and histograms the server observes, plus the
 * engine's gauges and counters read at scrape time. Names follow vLLM's ("vllm:" becomes
 * "ignis:") so dashboards carry over; engine/server/README.md lists them. */
#ifndef IG_SERVER_METRICS_H
#define IG_SERVER_METRICS_H

#include <pthread.h>
#include <stdint.h>

#include "ignis.h"
#include "server/sbuf.h"

#define SRV_HIST_MAX_BUCKETS 24

typedef struct srv_hist {
    const char *name; /* without the ignis: prefix */
    const char *help;
    const double *bounds; /* upper bounds in seconds, increasing; +Inf implied */
    int n_bounds;
    uint64_t counts[SRV_HIST_MAX_BUCKETS + 1]; /* per bucket (not cumulative); last = +Inf */
    double sum;
    uint64_t count;
} srv_hist;

enum { SRV_FIN_STOP, SRV_FIN_LENGTH, SRV_FIN_ABORT, SRV_FIN_ERROR, SRV_FIN_N };

/* What the server observed; a scrape formats a copy taken under the lock. */
typedef struct srv_counts {
    uint64_t prompt_tokens;     /* prompt tokens of finished requests */
    uint64_t generation_tokens; /* tokens generated */
    uint64_t finished[SRV_FIN_N];
    uint64_t http_status[6]; /* 1xx..5xx responses, index status/100 */
    srv_hist ttft, itl, e2e, queue;
} srv_counts;

typedef struct srv_metrics {
    pthread_mutex_t mu;
    srv_counts c;
} srv_metrics;

void srv_metrics_init(srv_metrics *m);
void srv_metrics_destroy(srv_metrics *m);
/* One generated token, `gap_s` after the previous one (< 0: the first). */
void srv_metrics_token_gap(srv_metrics *m, double gap_s);
/* A finished request (result of ignis_request_get_result). */
void srv_metrics_request_done(srv_metrics *m, const ignis_request_result *r);
void srv_metrics_http_status(srv_metrics *m, int status);
/* Prometheus text format 0.0.4; st may be NULL (no engine yet). */
bool srv_metrics_write(srv_metrics *m, const ignis_engine_stats *st, const char *model_name, sbuf *out);

#endif
