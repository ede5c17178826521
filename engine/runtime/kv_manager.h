/*
 * The scheduler's block manager: reference-counted KV blocks taken from the model's
 * ig_kv_pool, plus (optionally) the prefix cache over them. A block is in one of three
 * states:
 *  - used:   refcount > 0 (held by one or more sequences; > 1 only when shared through
 *            the prefix cache, and then read-only);
 *  - cached: refcount 0 but registered in the prefix cache: kept, on the LRU list, and
 *            reclaimed (oldest first) when a fresh block is needed;
 *  - free:   back in the model's pool.
 * `quota` bounds used + cached (the engine's share of the pool).
 *
 * Not thread-safe: owned by the scheduler thread. The pool underneath is shared and
 * thread-safe.
 */
#ifndef IG_KV_MANAGER_H
#define IG_KV_MANAGER_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/kv_pool.h"
#include "runtime/prefix_cache.h"

typedef struct ig_kv_manager {
    ig_kv_pool *pool;
    int block_len;
    int quota;    /* max blocks held (used + cached) */
    int32_t *ref; /* [pool->n_blocks] */
    int n_used;   /* blocks with ref > 0 */
    int n_cached; /* blocks with ref == 0 kept by the prefix cache */
    int peak_used;
    bool caching;
    ig_prefix_cache pc;
    uint64_t evictions;
} ig_kv_manager;

ignis_status ig_kvm_init(ig_kv_manager *m, ig_kv_pool *pool, int quota, bool prefix_caching);
/* Returns every block it still holds (cached ones included) to the pool. */
void ig_kvm_free(ig_kv_manager *m);

/* Blocks a caller could obtain now: free in the pool (within quota) plus reclaimable. */
int ig_kvm_available(const ig_kv_manager *m);
/* A fresh block with refcount 1 (contents undefined), or -1 when none can be had:
 * takes a free pool block, else evicts the least recently used cached block. */
int ig_kvm_alloc(ig_kv_manager *m);
/* Takes another reference (a cached block becomes used again). */
void ig_kvm_ref(ig_kv_manager *m, int block);
/* Drops a reference; at zero a registered block becomes cached, others go back to the pool. */
void ig_kvm_unref(ig_kv_manager *m, int block);
static inline int ig_kvm_refcount(const ig_kv_manager *m, int block) { return m->ref[block]; }

/* Prefix cache (no-ops / -1 when caching is off). */
int ig_kvm_lookup(const ig_kv_manager *m, uint64_t hash, uint64_t parent, const int32_t *toks);
bool ig_kvm_register(ig_kv_manager *m, int block, uint64_t hash, uint64_t parent, const int32_t *toks);

/* Consistency check for tests: counts agree with the refcounts, LRU and pool. */
bool ig_kvm_check(const ig_kv_manager *m, char *why, int why_len);

#endif
