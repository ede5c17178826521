#include "runtime/kv_manager.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

ignis_status ig_kvm_init(ig_kv_manager *m, ig_kv_pool *pool, int quota, bool prefix_caching)
{
    memset(m, 0, sizeof *m);
    if (!pool || pool->n_blocks <= 0) return ig_err(IGNIS_E_STATE, "block manager: the model has no KV pool");
    m->pool = pool;
    m->block_len = pool->block_len;
    m->quota = quota > 0 && quota < pool->n_blocks ? quota : pool->n_blocks;
    m->ref = calloc((size_t)pool->n_blocks, sizeof *m->ref);
    if (!m->ref) return ig_err(IGNIS_E_NOMEM, "block manager: out of memory for %d blocks", pool->n_blocks);
    m->caching = prefix_caching;
    if (prefix_caching) {
        ignis_status s = ig_pc_init(&m->pc, pool->n_blocks, pool->block_len);
        if (s != IGNIS_OK) {
            free(m->ref);
            m->ref = NULL;
            return s;
        }
    }
    return IGNIS_OK;
}

void ig_kvm_free(ig_kv_manager *m)
{
    if (!m->ref) return;
    /* Blocks still referenced belong to sequences the caller failed to release; they go
     * back too, so the pool is whole again whatever happened. */
    for (int b = 0; b < m->pool->n_blocks; b++) {
        bool held = m->ref[b] > 0 || (m->caching && m->pc.in_lru[b]);
        if (held) {
            int32_t id = b;
            ig_kv_pool_release(m->pool, 1, &id);
        }
    }
    if (m->caching) ig_pc_free(&m->pc);
    free(m->ref);
    memset(m, 0, sizeof *m);
}

int ig_kvm_available(const ig_kv_manager *m)
{
    int from_pool = ig_kv_pool_free_count(m->pool);
    int room = m->quota - m->n_used - m->n_cached;
    if (from_pool > room) from_pool = room;
    if (from_pool < 0) from_pool = 0;
    return from_pool + m->n_cached;
}

int ig_kvm_alloc(ig_kv_manager *m)
{
    int32_t id = -1;
    if (m->n_used + m->n_cached < m->quota && ig_kv_pool_alloc(m->pool, 1, &id) == IGNIS_OK) {
        /* fresh from the pool */
    } else if (m->n_cached > 0) {
        id = ig_pc_lru_oldest(&m->pc);
        ig_pc_remove(&m->pc, id);
        m->n_cached--;
        m->evictions++;
    } else {
        ig_err_clear(); /* running out is an expected outcome, not an error to report */
        return -1;
    }
    m->ref[id] = 1;
    if (++m->n_used > m->peak_used) m->peak_used = m->n_used;
    return id;
}

void ig_kvm_ref(ig_kv_manager *m, int block)
{
    if (m->ref[block]++ == 0) {
        /* only a cached block can be revived from refcount 0 */
        ig_pc_lru_remove(&m->pc, block);
        m->n_cached--;
        if (++m->n_used > m->peak_used) m->peak_used = m->n_used;
    }
}

void ig_kvm_unref(ig_kv_manager *m, int block)
{
    if (--m->ref[block] > 0) return;
    m->n_used--;
    if (m->caching && ig_pc_registered(&m->pc, block)) {
        ig_pc_lru_push(&m->pc, block);
        m->n_cached++;
    } else {
        int32_t id = block;
        ig_kv_pool_release(m->pool, 1, &id);
    }
}

int ig_kvm_lookup(const ig_kv_manager *m, uint64_t hash, uint64_t parent, const int32_t *toks)
{
    return m->caching ? ig_pc_find(&m->pc, hash, parent, toks) : -1;
}

bool ig_kvm_register(ig_kv_manager *m, int block, uint64_t hash, uint64_t parent, const int32_t *toks)
{
    return m->caching && ig_pc_insert(&m->pc, block, hash, parent, toks);
}

bool ig_kvm_check(const ig_kv_manager *m, char *why, int why_len)
{
    int used = 0, cached = 0, lru = 0;
    for (int b = 0; b < m->pool->n_blocks; b++) {
        if (m->ref[b] < 0) {
            snprintf(why, (size_t)why_len, "block %d has refcount %d", b, m->ref[b]);
            return false;
        }
        if (m->ref[b] > 0) used++;
        if (m->caching && m->pc.in_lru[b]) {
            lru++;
            if (m->ref[b] != 0 || !m->pc.in_table[b]) {
                snprintf(why, (size_t)why_len, "block %d on the LRU with refcount %d, registered %d", b, m->ref[b],
                         m->pc.in_table[b]);
                return false;
            }
        }
        if (m->caching && m->ref[b] == 0 && m->pc.in_table[b] && !m->pc.in_lru[b]) {
            snprintf(why, (size_t)why_len, "block %d registered, unreferenced, but not on the LRU", b);
            return false;
        }
    }
    cached = lru;
    if (used != m->n_used || cached != m->n_cached || (m->caching && lru != m->pc.n_lru)) {
        snprintf(why, (size_t)why_len, "counts: used %d (tracked %d), cached %d (tracked %d)", used, m->n_used, cached,
                 m->n_cached);
        return false;
    }
    if (m->n_used + m->n_cached > m->quota) {
        snprintf(why, (size_t)why_len, "holding %d blocks over a quota of %d", m->n_used + m->n_cached, m->quota);
        return false;
    }
    return true;
}
