/* The progress line on a TTY: requests done, generated tok/s, ETA. Silent otherwise, so
 * logs and CI output stay clean. */
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "bench.h"

void bench_progress_init(bench_progress *p, int total)
{
    p->tty = total > 0 && isatty(STDERR_FILENO);
    p->total = total;
    p->t0 = bench_now();
    p->last = 0;
}

void bench_progress_update(bench_progress *p, int done, long long tokens)
{
    if (!p->tty) return;
    double now = bench_now(), el = now - p->t0;
    if (now - p->last < 0.1 && done < p->total) return;
    p->last = now;
    int width = 30, filled = p->total ? (int)((double)done / p->total * width) : 0;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    double eta = done > 0 ? el / done * (p->total - done) : NAN;
    fprintf(stderr, "\r[%s] %d/%d req  %.0f tok/s  elapsed %.0fs  ETA %s%.0fs ", bar, done, p->total,
            el > 0 ? (double)tokens / el : 0.0, el, isnan(eta) ? "~" : "", isnan(eta) ? 0.0 : eta);
    fflush(stderr);
}

void bench_progress_end(bench_progress *p)
{
    if (p->tty) fprintf(stderr, "\n");
}
