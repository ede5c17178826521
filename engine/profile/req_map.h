/*
 * req_map.h — per-request TTFT accumulators keyed by the request handle: the time of the
 * prefill steps a request took part in before its first token, split into its own share
 * (by token count) and the share of the other sequences in those steps.
 */
#ifndef IG_PROFILE_REQ_MAP_H
#define IG_PROFILE_REQ_MAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ig_req_acc {
    const void *req; /* NULL: empty slot */
    double own_s, shared_s;
    int steps;
} ig_req_acc;

typedef struct ig_req_map {
    ig_req_acc *slots;
    size_t cap, n; /* cap a power of two; n < cap * 3 / 4 */
} ig_req_map;

/* The request's accumulator, created empty when absent; NULL when out of memory. */
ig_req_acc *ig_req_map_get(ig_req_map *m, const void *req);
/* Removes and returns the request's accumulator; false when absent. */
bool ig_req_map_take(ig_req_map *m, const void *req, ig_req_acc *out);
void ig_req_map_free(ig_req_map *m);

#endif
