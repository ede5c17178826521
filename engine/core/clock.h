#ifndef IG_CLOCK_H
#define IG_CLOCK_H
#include <time.h>
/* Monotonic seconds, for durations only. */
static inline double ig_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
#endif
