/* The arrival schedule of an open-loop replay: when each request is due. */
#include <math.h>

#include "bench.h"

int bench_schedule(double rate, double burstiness, uint64_t seed, int n, double *offsets)
{
    if (n < 0 || !offsets) {
        bench_err("schedule: bad arguments (n=%d)", n);
        return -1;
    }
    if (!(rate > 0) || isinf(rate)) {
        /* infinite rate: everything is due at once (a throughput run) */
        for (int i = 0; i < n; i++)
            offsets[i] = 0;
        return 0;
    }
    if (!(burstiness > 0)) {
        bench_err("schedule: --burstiness must be > 0 (got %g)", burstiness);
        return -1;
    }
    bench_rng r;
    bench_rng_seed(&r, seed ^ 0x5c4ed011e5ull);
    /* Gamma(k, theta) gaps with k*theta = 1/rate keep the mean rate; k = 1 is exponential */
    double theta = 1.0 / (rate * burstiness), t = 0;
    for (int i = 0; i < n; i++) {
        t += bench_rng_gamma(&r, burstiness) * theta;
        offsets[i] = t;
    }
    return 0;
}
