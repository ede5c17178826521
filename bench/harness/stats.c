/* Summary statistics of latency samples: percentiles, mean, sample stddev, bootstrap CIs.
 * Definitions are in bench.h and reports/README.md; tests check them against hand values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_percentile_sorted(const double *s, int n, double p)
{
    if (n <= 0) return NAN;
    if (n == 1) return s[0];
    double h = (double)(n - 1) * p / 100.0;
    int lo = (int)floor(h);
    if (lo >= n - 1) return s[n - 1];
    if (lo < 0) return s[0];
    return s[lo] + (h - lo) * (s[lo + 1] - s[lo]);
}

double bench_mean(const double *x, int n)
{
    if (n <= 0) return NAN;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += x[i];
    return s / n;
}

double bench_stddev(const double *x, int n)
{
    if (n < 2) return n == 1 ? 0.0 : NAN;
    double m = bench_mean(x, n), ss = 0;
    for (int i = 0; i < n; i++)
        ss += (x[i] - m) * (x[i] - m);
    return sqrt(ss / (n - 1));
}

void bench_dist_of(const double *x, int n, bench_dist *d)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    if (n <= 0) {
        d->mean = d->std = d->min = d->max = d->p50 = d->p90 = d->p95 = d->p99 = NAN;
        return;
    }
    double *s = malloc(sizeof(double) * (size_t)n);
    if (!s) {
        d->n = 0;
        return;
    }
    memcpy(s, x, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof(double), bench_cmp_double);
    d->mean = bench_mean(s, n);
    d->std = bench_stddev(s, n);
    d->min = s[0];
    d->max = s[n - 1];
    d->p50 = bench_percentile_sorted(s, n, 50);
    d->p90 = bench_percentile_sorted(s, n, 90);
    d->p95 = bench_percentile_sorted(s, n, 95);
    d->p99 = bench_percentile_sorted(s, n, 99);
    free(s);
}

void bench_bootstrap_ci(const double *x, int n, double p, int B, double alpha, uint64_t seed, double *lo, double *hi)
{
    *lo = *hi = NAN;
    if (n <= 0 || B <= 0) return;
    double *res = malloc(sizeof(double) * (size_t)n), *stat = malloc(sizeof(double) * (size_t)B);
    if (!res || !stat) {
        free(res);
        free(stat);
        return;
    }
    bench_rng r;
    bench_rng_seed(&r, seed);
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < n; i++)
            res[i] = x[bench_rng_u64(&r) % (uint64_t)n];
        qsort(res, (size_t)n, sizeof(double), bench_cmp_double);
        stat[b] = bench_percentile_sorted(res, n, p);
    }
    qsort(stat, (size_t)B, sizeof(double), bench_cmp_double);
    *lo = bench_percentile_sorted(stat, B, 100.0 * alpha / 2);
    *hi = bench_percentile_sorted(stat, B, 100.0 * (1 - alpha / 2));
    free(res);
    free(stat);
}

void bench_batch_rates(const double *times, int b, int n, int p, double *prefill_tok_s, double *decode_tok_s)
{
    double t1 = 0, t2 = 0;
    for (int i = 0; i < b && n > 0; i++) {
        if (times[(size_t)i * n] > t1) t1 = times[(size_t)i * n];
        if (times[(size_t)i * n + n - 1] > t2) t2 = times[(size_t)i * n + n - 1];
    }
    long long after = 0;
    for (size_t k = 0; k < (size_t)b * (size_t)(n > 0 ? n : 0); k++)
        after += times[k] > t1;
    *prefill_tok_s = t1 > 0 ? (double)b * p / t1 : NAN;
    *decode_tok_s = after > 0 && t2 > t1 ? (double)after / (t2 - t1) : NAN;
}
