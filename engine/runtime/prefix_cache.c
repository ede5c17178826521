#include "runtime/prefix_cache.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/synth_fn.h"

ignis_status ig_pc_init(ig_prefix_cache *pc, int n_blocks, int block_len)
{
    memset(pc, 0, sizeof *pc);
    if (n_blocks <= 0 || block_len <= 0)
        return ig_err(IGNIS_E_ARG, "prefix cache: %d blocks of %d tokens", n_blocks, block_len);
    size_t n = (size_t)n_blocks;
    pc->n_blocks = n_blocks;
    pc->block_len = block_len;
    /* at most n_blocks entries: a load factor <= 1/2 keeps chains short */
    pc->n_buckets = 16;
    while (pc->n_buckets < 2 * n)
        pc->n_buckets <<= 1;
    pc->hash = calloc(n, sizeof *pc->hash);
    pc->parent = calloc(n, sizeof *pc->parent);
    pc->toks = calloc(n * (size_t)block_len, sizeof *pc->toks);
    pc->in_table = calloc(n, 1);
    pc->in_lru = calloc(n, 1);
    pc->chain = malloc(n * sizeof *pc->chain);
    pc->lru_prev = malloc(n * sizeof *pc->lru_prev);
    pc->lru_next = malloc(n * sizeof *pc->lru_next);
    pc->bucket = malloc(pc->n_buckets * sizeof *pc->bucket);
    if (!pc->hash || !pc->parent || !pc->toks || !pc->in_table || !pc->in_lru || !pc->chain || !pc->lru_prev ||
        !pc->lru_next || !pc->bucket) {
        ig_pc_free(pc);
        return ig_err(IGNIS_E_NOMEM, "prefix cache: out of memory for %d blocks of %d tokens", n_blocks, block_len);
    }
    for (uint32_t i = 0; i < pc->n_buckets; i++)
        pc->bucket[i] = -1;
    pc->lru_head = pc->lru_tail = -1;
    return IGNIS_OK;
}

void ig_pc_free(ig_prefix_cache *pc)
{
    free(pc->hash);
    free(pc->parent);
    free(pc->toks);
    free(pc->in_table);
    free(pc->in_lru);
    free(pc->chain);
    free(pc->lru_prev);
    free(pc->lru_next);
    free(pc->bucket);
    memset(pc, 0, sizeof *pc);
}

uint64_t ig_pc_chain_hash(uint64_t parent, const int32_t *toks, int n)
{
    uint64_t h = ig_mix64(parent ^ 0x9e3779b97f4a7c15ULL);
    for (int i = 0; i < n; i++)
        h = ig_mix64(h + (uint64_t)(uint32_t)toks[i] + 0x632be59bd9b4e019ULL * (uint64_t)(i + 1));
    h = ig_mix64(h ^ (uint64_t)n);
    return h ? h : 1; /* 0 is the "no parent" hash of the first block */
}

static inline uint32_t bucket_of(const ig_prefix_cache *pc, uint64_t hash)
{
    return (uint32_t)(hash ^ (hash >> 32)) & (pc->n_buckets - 1);
}

static bool same_key(const ig_prefix_cache *pc, int b, uint64_t hash, uint64_t parent, const int32_t *toks)
{
    return pc->hash[b] == hash && pc->parent[b] == parent &&
           !memcmp(pc->toks + (size_t)b * pc->block_len, toks, sizeof(int32_t) * (size_t)pc->block_len);
}

int ig_pc_find(const ig_prefix_cache *pc, uint64_t hash, uint64_t parent, const int32_t *toks)
{
    for (int b = pc->bucket[bucket_of(pc, hash)]; b >= 0; b = pc->chain[b])
        if (same_key(pc, b, hash, parent, toks)) return b;
    return -1;
}

bool ig_pc_insert(ig_prefix_cache *pc, int block, uint64_t hash, uint64_t parent, const int32_t *toks)
{
    if (block < 0 || block >= pc->n_blocks || pc->in_table[block]) return false;
    if (ig_pc_find(pc, hash, parent, toks) >= 0) return false;
    uint32_t k = bucket_of(pc, hash);
    pc->hash[block] = hash;
    pc->parent[block] = parent;
    memcpy(pc->toks + (size_t)block * pc->block_len, toks, sizeof(int32_t) * (size_t)pc->block_len);
    pc->chain[block] = pc->bucket[k];
    pc->bucket[k] = block;
    pc->in_table[block] = 1;
    pc->n_entries++;
    return true;
}

void ig_pc_remove(ig_prefix_cache *pc, int block)
{
    if (block < 0 || block >= pc->n_blocks || !pc->in_table[block]) return;
    ig_pc_lru_remove(pc, block);
    int32_t *link = &pc->bucket[bucket_of(pc, pc->hash[block])];
    while (*link >= 0 && *link != block)
        link = &pc->chain[*link];
    if (*link == block) *link = pc->chain[block];
    pc->in_table[block] = 0;
    pc->n_entries--;
}

void ig_pc_lru_push(ig_prefix_cache *pc, int block)
{
    if (pc->in_lru[block]) ig_pc_lru_remove(pc, block);
    pc->lru_prev[block] = pc->lru_tail;
    pc->lru_next[block] = -1;
    if (pc->lru_tail >= 0)
        pc->lru_next[pc->lru_tail] = block;
    else
        pc->lru_head = block;
    pc->lru_tail = block;
    pc->in_lru[block] = 1;
    pc->n_lru++;
}

void ig_pc_lru_remove(ig_prefix_cache *pc, int block)
{
    if (!pc->in_lru[block]) return;
    int p = pc->lru_prev[block], n = pc->lru_next[block];
    if (p >= 0)
        pc->lru_next[p] = n;
    else
        pc->lru_head = n;
    if (n >= 0)
        pc->lru_prev[n] = p;
    else
        pc->lru_tail = p;
    pc->in_lru[block] = 0;
    pc->n_lru--;
}
