/* Per-request records -> the run's metrics, with vLLM's definitions (see bench.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

void bench_run_free(bench_run *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->recs[i].token_times);
    free(r->recs);
    free(r->samples);
    memset(r, 0, sizeof *r);
}

int bench_run_add_sample(bench_run *r, const bench_sample *s)
{
    if (r->n_samples == r->cap_samples) {
        int cap = r->cap_samples ? 2 * r->cap_samples : 1024;
        bench_sample *p = realloc(r->samples, sizeof *p * (size_t)cap);
        if (!p) return -1;
        r->samples = p;
        r->cap_samples = cap;
    }
    r->samples[r->n_samples++] = *s;
    return 0;
}

/* Index of the first sample at or after t (n when none): samples are in time order. */
static int sample_at_or_after(const bench_sample *s, int n, double t)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (s[mid].t < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int bench_run_token_rates(bench_run *r)
{
    int n = r->n_samples;
    if (n == 0) return 0;
    long long *count = calloc((size_t)n, sizeof *count);
    if (!count) return bench_err("timeline: out of memory"), -1;
    for (int i = 0; i < r->n; i++) {
        const bench_record *q = &r->recs[i];
        for (int k = 0; q->ok && q->token_times && k < q->output_tokens; k++) {
            int j = sample_at_or_after(r->samples, n, q->ready + q->token_times[k]);
            if (j < n) count[j]++;
        }
    }
    for (int j = 0; j < n; j++) {
        double dt = r->samples[j].t - (j ? r->samples[j - 1].t : 0);
        r->samples[j].tokens_per_s = dt > 0 ? (double)count[j] / dt : 0;
    }
    free(count);
    return 0;
}

int bench_slo_parse(const char *s, bench_slo *out)
{
    memset(out, 0, sizeof *out);
    const char *p = s;
    while (p && *p) {
        char key[16];
        double v;
        int used = 0;
        if (sscanf(p, "%15[a-z0-9]:%lf%n", key, &v, &used) != 2 || v <= 0) {
            bench_err("--slo: expected ttft:MS,tpot:MS,e2e:MS (positive milliseconds), got '%s'", s);
            return -1;
        }
        if (!strcmp(key, "ttft"))
            out->ttft_ms = v;
        else if (!strcmp(key, "tpot"))
            out->tpot_ms = v;
        else if (!strcmp(key, "e2e"))
            out->e2e_ms = v;
        else {
            bench_err("--slo: unknown metric '%s' (expected ttft, tpot or e2e)", key);
            return -1;
        }
        p += used;
        if (*p == ',')
            p++;
        else if (*p) {
            bench_err("--slo: expected ',' after '%.*s'", used, p - used);
            return -1;
        }
    }
    return 0;
}

double bench_tpot(const bench_record *r)
{
    return r->output_tokens > 1 && r->ttft >= 0 ? (r->e2e - r->ttft) / (r->output_tokens - 1) : NAN;
}

/* Peak number of requests between send and finish at once: sweep the sorted start and end
 * times (an end at the same instant as a start is counted first). */
static int peak_concurrency(const bench_run *r)
{
    int n = r->n, cur = 0, peak = 0;
    double *st = malloc(sizeof(double) * (size_t)(n ? n : 1)), *en = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!st || !en) {
        free(st), free(en);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        st[i] = r->recs[i].sent;
        en[i] = r->recs[i].ready + r->recs[i].e2e;
    }
    qsort(st, (size_t)n, sizeof(double), bench_cmp_double);
    qsort(en, (size_t)n, sizeof(double), bench_cmp_double);
    for (int i = 0, j = 0; i < n;) {
        if (j < n && en[j] <= st[i]) {
            cur--;
            j++;
        } else {
            cur++;
            i++;
            if (cur > peak) peak = cur;
        }
    }
    free(st), free(en);
    return peak;
}

void bench_metrics_compute(const bench_run *r, const bench_slo *slo, bench_metrics *m)
{
    memset(m, 0, sizeof *m);
    int n = r->n;
    size_t cap = (size_t)(n ? n : 1);
    double *ttft = calloc(cap, sizeof(double)), *tpot = calloc(cap, sizeof(double)), *e2e = calloc(cap, sizeof(double));
    double *queue = calloc(cap, sizeof(double)), *prefill = calloc(cap, sizeof(double));
    double *decode = calloc(cap, sizeof(double)), *lag = calloc(cap, sizeof(double));
    size_t n_itl = 0;
    for (int i = 0; i < n; i++)
        if (r->recs[i].ok && r->recs[i].output_tokens > 1) n_itl += (size_t)r->recs[i].output_tokens - 1;
    double *itl = calloc(n_itl ? n_itl : 1, sizeof(double));
    int nt = 0, np = 0, ne = 0, nq = 0, npf = 0, nd = 0, nl = 0, good = 0;
    size_t ni = 0;
    m->usage_mismatch = -1;
    for (int i = 0; i < n; i++) {
        const bench_record *q = &r->recs[i];
        lag[nl++] = (q->sent - q->ready) * 1e3;
        if (!q->ok) {
            m->failed++;
            continue;
        }
        m->completed++;
        m->input_tokens += q->prompt_tokens > 0 ? q->prompt_tokens : 0;
        m->output_tokens += q->output_tokens;
        if (q->usage_tokens >= 0) {
            /* ours: the tokenizer's count when there was one, else what we recorded */
            int ours = q->counted_tokens >= 0 ? q->counted_tokens : q->output_tokens;
            if (m->usage_mismatch < 0) m->usage_mismatch = 0;
            m->usage_mismatch += llabs((long long)q->usage_tokens - ours);
        }
        if (q->ttft >= 0) ttft[nt++] = q->ttft * 1e3;
        double tp = bench_tpot(q);
        if (!isnan(tp)) tpot[np++] = tp * 1e3;
        e2e[ne++] = q->e2e * 1e3;
        if (q->queue >= 0) queue[nq++] = q->queue * 1e3;
        if (q->prefill >= 0) prefill[npf++] = q->prefill * 1e3;
        if (q->decode >= 0) decode[nd++] = q->decode * 1e3;
        if (q->token_times)
            for (int k = 1; k < q->output_tokens; k++)
                itl[ni++] = (q->token_times[k] - q->token_times[k - 1]) * 1e3;
        bool ok = true;
        if (slo) {
            if (slo->ttft_ms > 0 && !(q->ttft >= 0 && q->ttft * 1e3 <= slo->ttft_ms)) ok = false;
            if (slo->tpot_ms > 0 && !isnan(tp) && tp * 1e3 > slo->tpot_ms) ok = false;
            if (slo->e2e_ms > 0 && q->e2e * 1e3 > slo->e2e_ms) ok = false;
        }
        good += ok;
    }
    m->duration_s = r->duration;
    double d = r->duration > 0 ? r->duration : NAN;
    m->req_per_s = m->completed / d;
    m->input_tok_s = (double)m->input_tokens / d;
    m->output_tok_s = (double)m->output_tokens / d;
    m->total_tok_s = (double)(m->input_tokens + m->output_tokens) / d;
    m->goodput_req_s = good / d;
    bench_dist_of(ttft, nt, &m->ttft_ms);
    bench_dist_of(tpot, np, &m->tpot_ms);
    bench_dist_of(itl, (int)ni, &m->itl_ms);
    bench_dist_of(e2e, ne, &m->e2e_ms);
    bench_dist_of(queue, nq, &m->queue_ms);
    bench_dist_of(prefill, npf, &m->prefill_ms);
    bench_dist_of(decode, nd, &m->decode_ms);
    bench_dist_of(lag, nl, &m->lag_ms);
    m->peak_concurrency = r->peak_in_flight > 0 ? r->peak_in_flight : peak_concurrency(r);
    m->kv_peak = m->kv_mean = m->batch_mean = -1;
    int nkv = 0, nb = 0;
    double skv = 0, sb = 0;
    for (int i = 0; i < r->n_samples; i++) {
        const bench_sample *s = &r->samples[i];
        if (s->kv_usage >= 0) {
            if (s->kv_usage > m->kv_peak) m->kv_peak = s->kv_usage;
            skv += s->kv_usage;
            nkv++;
        }
        if (s->batch_size >= 0) {
            sb += s->batch_size;
            nb++;
        }
    }
    if (nkv) m->kv_mean = skv / nkv;
    if (nb) m->batch_mean = sb / nb;
    m->preemptions = r->preemptions;
    m->prefix_hit_rate = r->prefix_queries > 0 ? (double)r->prefix_hits / (double)r->prefix_queries : -1;
    free(ttft), free(tpot), free(e2e), free(queue), free(prefill), free(decode), free(lag), free(itl);
}
