#include "runtime/kv_pool.h"

#include <stdlib.h>

#include "core/error.h"

ignis_status ig_kv_pool_init(ig_kv_pool *p, int n_blocks, int block_len)
{
    p->free_ids = malloc(sizeof(int32_t) * (size_t)(n_blocks > 0 ? n_blocks : 1));
    if (!p->free_ids) return ig_err(IGNIS_E_NOMEM, "out of memory for %d KV block ids", n_blocks);
    pthread_mutex_init(&p->mu, NULL);
    p->n_blocks = n_blocks;
    p->block_len = block_len;
    /* lowest ids on top: block 0 is handed out first, which keeps small runs compact */
    for (int i = 0; i < n_blocks; i++)
        p->free_ids[i] = n_blocks - 1 - i;
    p->n_free = n_blocks;
    return IGNIS_OK;
}

void ig_kv_pool_destroy(ig_kv_pool *p)
{
    if (!p->free_ids) return;
    pthread_mutex_destroy(&p->mu);
    free(p->free_ids);
    p->free_ids = NULL;
}

ignis_status ig_kv_pool_alloc(ig_kv_pool *p, int n, int32_t *ids)
{
    pthread_mutex_lock(&p->mu);
    if (n > p->n_free) {
        int nf = p->n_free;
        pthread_mutex_unlock(&p->mu);
        return ig_err(IGNIS_E_CAPACITY, "KV cache: %d blocks needed, %d free of %d", n, nf, p->n_blocks);
    }
    for (int i = 0; i < n; i++)
        ids[i] = p->free_ids[--p->n_free];
    pthread_mutex_unlock(&p->mu);
    return IGNIS_OK;
}

void ig_kv_pool_release(ig_kv_pool *p, int n, const int32_t *ids)
{
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < n; i++)
        p->free_ids[p->n_free++] = ids[i];
    pthread_mutex_unlock(&p->mu);
}

int ig_kv_pool_free_count(ig_kv_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->n_free;
    pthread_mutex_unlock(&p->mu);
    return n;
}
