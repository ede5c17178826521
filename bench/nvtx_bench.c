/* nvtx_bench: the cost of ignis's NVTX ranges (engine/profile/nvtx.h) with no tool
 * attached — what every engine step pays for being visible in Nsight. Times N push/pop
 * pairs against the same loop without them and prints ns per range and the cost per
 * decode step (4 ranges: schedule, decode step, sampling, detokenize; eager steps add 2
 * per layer). Run it under nsys to see the cost with a tool attached.
 *
 *   nvtx_bench [N]   (default 10,000,000)
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/clock.h"
#include "profile/nvtx.h"

static volatile unsigned g_sink;

static double loop(long n, int with_nvtx)
{
    double t0 = ig_now();
    for (long i = 0; i < n; i++) {
        if (with_nvtx) IG_NVTX_PUSH("decode step");
        g_sink += (unsigned)i; /* the loop's own work, in both variants */
        if (with_nvtx) IG_NVTX_POP();
    }
    return ig_now() - t0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000000L;
#if defined(IGNIS_HAVE_CUDA) && defined(IGNIS_HAVE_NVTX)
    const char *mode = "NVTX3";
#else
    const char *mode = "compiled out (no CUDA)";
#endif
    loop(n / 10, 1); /* first call: NVTX looks for a tool once */
    double best_base = 1e30, best_nvtx = 1e30;
    for (int r = 0; r < 5; r++) {
        double b = loop(n, 0), t = loop(n, 1);
        if (b < best_base) best_base = b;
        if (t < best_nvtx) best_nvtx = t;
    }
    double ns = (best_nvtx - best_base) / (double)n * 1e9;
    printf("nvtx_bench (%s): %ld ranges, %.2f ns per push/pop pair (loop %.2f ns without)\n", mode, n, ns,
           best_base / (double)n * 1e9);
    printf("per decode step (4 ranges): %.3f us; per eager 32-layer step (68 ranges): %.3f us\n", 4 * ns * 1e-3,
           68 * ns * 1e-3);
    return 0;
}
