/* The owner of the backend's KV blocks: a thread-safe free list of block ids. Everything
 * that holds KV — a direct ignis_seq, the scheduler's block manager (which adds
 * refcounts and prefix caching on top) — takes blocks from here and gives them back. */
#ifndef IG_KV_POOL_H
#define IG_KV_POOL_H

#include <pthread.h>
#include <stdint.h>

#include "ignis.h"

typedef struct ig_kv_pool {
    pthread_mutex_t mu;
    int n_blocks;
    int block_len;
    int32_t *free_ids; /* stack of free ids */
    int n_free;
} ig_kv_pool;

ignis_status ig_kv_pool_init(ig_kv_pool *p, int n_blocks, int block_len);
void ig_kv_pool_destroy(ig_kv_pool *p);
/* Takes n blocks (all or none): IGNIS_E_CAPACITY when fewer are free. */
ignis_status ig_kv_pool_alloc(ig_kv_pool *p, int n, int32_t *ids);
void ig_kv_pool_release(ig_kv_pool *p, int n, const int32_t *ids);
int ig_kv_pool_free_count(ig_kv_pool *p);

#endif
