/*
 * A sequence's tokens and KV blocks (ig_seqkv) as the scheduler keeps them: appending
 * tokens, dropping blocks (preemption, ending) or a history's tail (session rewind),
 * registering full blocks with the prefix cache and starting from a cached prefix.
 */
#include <string.h>

#include "core/error.h"
#include "runtime/engine_internal.h"

bool ig_seqkv_append(ig_seqkv *kv, const int32_t *ids, int n)
{
    if (n <= 0) return true;
    if (!ig_grow((void **)&kv->tokens, &kv->cap_tokens, kv->n_tokens + n, sizeof(int32_t))) return false;
    memcpy(kv->tokens + kv->n_tokens, ids, sizeof(int32_t) * (size_t)n);
    kv->n_tokens += n;
    return true;
}

/* Drops every block reference; the tokens stay (so the sequence can be recomputed). */
void ig_seqkv_release_blocks(ignis_engine *e, ig_seqkv *kv)
{
    for (int i = 0; i < kv->n_blocks; i++)
        ig_kvm_unref(&e->kvm, kv->blocks[i]);
    kv->n_blocks = 0;
    kv->n_computed = 0;
    kv->n_registered = 0;
}

void ig_seqkv_free(ignis_engine *e, ig_seqkv *kv)
{
    ig_seqkv_release_blocks(e, kv);
    free(kv->tokens);
    free(kv->blocks);
    free(kv->hashes);
    memset(kv, 0, sizeof *kv);
}

/* Drops the last n tokens (n <= n_tokens). When the cut falls among computed tokens, the
 * block it falls in goes too, unless the cut is on a block boundary: that block may be
 * shared through the prefix cache, and the tokens written after the cut would change it;
 * its kept tokens are recomputed instead. */
void ig_seqkv_rewind(ignis_engine *e, ig_seqkv *kv, int n)
{
    int bl = e->block_len;
    kv->n_tokens -= n;
    if (kv->n_computed > kv->n_tokens) {
        int keep_blocks = kv->n_tokens / bl;
        for (int i = keep_blocks; i < kv->n_blocks; i++)
            ig_kvm_unref(&e->kvm, kv->blocks[i]);
        if (kv->n_blocks > keep_blocks) kv->n_blocks = keep_blocks;
        kv->n_computed = keep_blocks * bl;
    }
    if (kv->n_registered > kv->n_blocks) kv->n_registered = kv->n_blocks;
    if (kv->n_hashes > kv->n_tokens / bl) kv->n_hashes = kv->n_tokens / bl;
}

/* Chain hash of full block b (b < n_tokens / block_len); 0 on allocation failure. */
static uint64_t ig_seqkv_hash(ignis_engine *e, ig_seqkv *kv, int b)
{
    int bl = e->block_len;
    if (b < kv->n_hashes) return kv->hashes[b];
    if (!ig_grow((void **)&kv->hashes, &kv->cap_hashes, b + 1, sizeof(uint64_t))) return 0;
    while (kv->n_hashes <= b) {
        int k = kv->n_hashes;
        uint64_t parent = k ? kv->hashes[k - 1] : 0;
        kv->hashes[k] = ig_pc_chain_hash(parent, kv->tokens + (size_t)k * bl, bl);
        kv->n_hashes++;
    }
    return kv->hashes[b];
}

/* Offers the newly completed full blocks to the prefix cache. */
void ig_seqkv_register(ignis_engine *e, ig_seqkv *kv)
{
    if (!e->kvm.caching) return;
    int bl = e->block_len;
    int full = kv->n_computed / bl;
    for (int b = kv->n_registered; b < full; b++) {
        uint64_t h = ig_seqkv_hash(e, kv, b);
        if (!h) return; /* out of memory: simply not cached */
        uint64_t parent = b ? kv->hashes[b - 1] : 0;
        ig_kvm_register(&e->kvm, kv->blocks[b], h, parent, kv->tokens + (size_t)b * bl);
        kv->n_registered = b + 1;
    }
}

/* Starts a sequence without KV from its longest cached run of leading blocks. Always
 * leaves at least one token to compute (the forward that samples needs it): when every
 * token is cached, the last block is copied (copy-on-write) and its last slot recomputed. */
int ig_seqkv_match_prefix(ignis_engine *e, ig_seqkv *kv, int *queries)
{
    int bl = e->block_len, hits = 0;
    *queries = 0;
    if (!e->kvm.caching || kv->n_blocks != 0) return 0;
    int full = kv->n_tokens / bl;
    if (!ig_grow((void **)&kv->blocks, &kv->cap_blocks, full, sizeof(int32_t))) return 0;
    for (int b = 0; b < full; b++) {
        (*queries)++;
        uint64_t h = ig_seqkv_hash(e, kv, b);
        if (!h) break;
        int blk = ig_kvm_lookup(&e->kvm, h, b ? kv->hashes[b - 1] : 0, kv->tokens + (size_t)b * bl);
        if (blk < 0) break;
        ig_kvm_ref(&e->kvm, blk);
        kv->blocks[kv->n_blocks++] = blk;
        hits++;
    }
    kv->n_computed = kv->n_blocks * bl;
    kv->n_registered = kv->n_blocks;
    if (kv->n_blocks > 0 && kv->n_computed >= kv->n_tokens) {
        int last = kv->blocks[kv->n_blocks - 1];
        int nb = ig_kvm_alloc(&e->kvm);
        ig_backend *be = e->deps.backend;
        if (nb >= 0 && be->ops->kv_copy_block(be, nb, last, bl - 1) == IGNIS_OK) {
            ig_kvm_unref(&e->kvm, last);
            kv->blocks[kv->n_blocks - 1] = nb;
            kv->n_computed = kv->n_tokens - 1;
        } else {
            if (nb >= 0) ig_kvm_unref(&e->kvm, nb);
            ig_err_clear();
            ig_kvm_unref(&e->kvm, last);
            kv->n_blocks--;
            kv->n_computed -= bl;
            hits--;
        }
        kv->n_registered = kv->n_blocks - (kv->n_computed % bl ? 1 : 0);
        if (kv->n_registered < 0) kv->n_registered = 0;
    }
    return hits;
}

/* Takes `need` more blocks for a (the caller made sure they are available). */
bool ig_seqkv_take_blocks(ignis_engine *e, ig_seqkv *kv, int need)
{
    if (!ig_grow((void **)&kv->blocks, &kv->cap_blocks, kv->n_blocks + need, sizeof(int32_t))) return false;
    for (int k = 0; k < need; k++) {
        int b = ig_kvm_alloc(&e->kvm);
        if (b < 0) return false; /* the pool is shared: a direct sequence took it meanwhile */
        kv->blocks[kv->n_blocks++] = b;
    }
    return true;
}
