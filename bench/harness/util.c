/* Harness plumbing: the error message of the last failure, the clock, and the PRNG. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "bench.h"

static _Thread_local char g_err[512];

void bench_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
}

const char *bench_errmsg(void) { return g_err; }

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void bench_rng_seed(bench_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t bench_rng_u64(bench_rng *r)
{
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

double bench_rng_uniform(bench_rng *r) { return (double)(bench_rng_u64(r) >> 11) * 0x1.0p-53; }

int bench_rng_range(bench_rng *r, int lo, int hi)
{
    if (hi <= lo) return lo;
    return lo + (int)(bench_rng_u64(r) % (uint64_t)(hi - lo + 1));
}

double bench_rng_exponential(bench_rng *r, double rate) { return -log1p(-bench_rng_uniform(r)) / rate; }

/* Standard normal by Box-Muller (one of the pair is dropped: simplicity over speed). */
static double normal(bench_rng *r)
{
    double u1 = 1.0 - bench_rng_uniform(r), u2 = bench_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Marsaglia & Tsang (2000); shape < 1 boosted by U^(1/shape). */
double bench_rng_gamma(bench_rng *r, double shape)
{
    if (shape < 1.0) {
        double u = bench_rng_uniform(r);
        return bench_rng_gamma(r, shape + 1.0) * pow(u > 0 ? u : 1e-300, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = normal(r), v = 1.0 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = bench_rng_uniform(r);
        if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
        if (log(u > 0 ? u : 1e-300) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
    }
}
