/*
 * The prefix cache: an index from "the KV of these tokens" to the block that holds it.
 * A full block is keyed by a chain hash of every token from the start of the sequence
 * to its end, so a hit on block i implies the whole prefix matches (the key also keeps
 * the parent hash and the block's own tokens, compared on lookup, so a 64-bit collision
 * can never hand out wrong KV). Unreferenced cached blocks sit on an LRU list and are
 * evicted oldest first when the block manager needs room.
 *
 * Not thread-safe: owned by the scheduler thread (through the block manager).
 */
#ifndef IG_PREFIX_CACHE_H
#define IG_PREFIX_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "ignis.h"

typedef struct ig_prefix_cache {
    int n_blocks;
    int block_len;
    /* per block id */
    uint64_t *hash;    /* chain hash of the prefix ending with this block */
    uint64_t *parent;  /* chain hash of the prefix before it (0 for the first block) */
    int32_t *toks;     /* [n_blocks][block_len]: the block's tokens */
    uint8_t *in_table; /* registered */
    int32_t *chain;    /* next block in the same bucket */
    int32_t *lru_prev, *lru_next;
    uint8_t *in_lru;
    /* buckets */
    int32_t *bucket;
    uint32_t n_buckets; /* power of two */
    int n_entries;
    int lru_head, lru_tail; /* oldest at head */
    int n_lru;
} ig_prefix_cache;

ignis_status ig_pc_init(ig_prefix_cache *pc, int n_blocks, int block_len);
void ig_pc_free(ig_prefix_cache *pc);

/* Hash of the prefix that ends with `toks` (block_len ids), given the hash before it. */
uint64_t ig_pc_chain_hash(uint64_t parent, const int32_t *toks, int n);

/* The block registered for (hash, parent, toks), or -1. */
int ig_pc_find(const ig_prefix_cache *pc, uint64_t hash, uint64_t parent, const int32_t *toks);
/* Registers `block` as holding (hash, parent, toks). False (nothing changed) when that key
 * is already registered to another block or the block is registered already. */
bool ig_pc_insert(ig_prefix_cache *pc, int block, uint64_t hash, uint64_t parent, const int32_t *toks);
/* Forgets a registered block (no-op if not registered); also drops it from the LRU. */
void ig_pc_remove(ig_prefix_cache *pc, int block);
static inline bool ig_pc_registered(const ig_prefix_cache *pc, int block) { return pc->in_table[block] != 0; }

/* LRU of unreferenced registered blocks: push makes `block` the newest. */
void ig_pc_lru_push(ig_prefix_cache *pc, int block);
void ig_pc_lru_remove(ig_prefix_cache *pc, int block);
/* Oldest block on the LRU, or -1. */
static inline int ig_pc_lru_oldest(const ig_prefix_cache *pc) { return pc->lru_head; }

#endif
