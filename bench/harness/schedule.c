/* The arrival schedule of an open-loop replay: when each request is due. */
#include <math.h>
#include <stdlib.h>

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

int bench_arrivals(const bench_workload *w, const bench_replay_opts *o, double *release, int *next_turn)
{
    int n_arr = 0;
    for (int i = 0; i < w->n; i++)
        n_arr += w->items[i].turn == 0;
    double *offs = calloc((size_t)(n_arr ? n_arr : 1), sizeof(double));
    int *last_of_conv = calloc((size_t)(w->n_conversations ? w->n_conversations : 1), sizeof(int));
    if (!offs || !last_of_conv) {
        free(offs), free(last_of_conv);
        return bench_err("replay: out of memory"), -1;
    }
    int rc = bench_schedule(o->request_rate, o->burstiness, o->seed, n_arr, offs);
    for (int c = 0; c < w->n_conversations; c++)
        last_of_conv[c] = -1;
    for (int i = 0, a = 0; !rc && i < w->n; i++) {
        const bench_item *it = &w->items[i];
        next_turn[i] = -1;
        release[i] = it->turn == 0 ? offs[a++] : INFINITY;
        if (it->conversation >= 0 && it->conversation < w->n_conversations) {
            int prev = last_of_conv[it->conversation];
            if (prev >= 0) next_turn[prev] = i;
            last_of_conv[it->conversation] = i;
        }
    }
    free(offs), free(last_of_conv);
    return rc;
}
