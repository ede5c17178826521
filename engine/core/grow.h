/* The doubling growth of the engine's dynamic arrays (queues, token and block lists, the
 * profiler's records), in one place. */
#ifndef IG_CORE_GROW_H
#define IG_CORE_GROW_H

#include <stdbool.h>
#include <stdlib.h>

/* Grows *p (an array of *cap elements of elem bytes) to hold need, doubling. False when
 * out of memory (*p and *cap unchanged). */
static inline bool ig_grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap) return true;
    int c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *n = realloc(*p, (size_t)c * elem);
    if (!n) return false;
    *p = n;
    *cap = c;
    return true;
}

#endif
