/*
 * backend.h — what a compute backend (CPU reference, CUDA) provides: a table of functions
 * over one model description (calm's shape). Every caller — the single-sequence path, the
 * scheduler, the tests — drives a backend the same way: build an ig_batch of tokens from
 * one or more sequences whose KV lives in a paged block pool, call forward, read logits or
 * sampled tokens.
 *
 * The paged KV pool: `n_blocks` blocks of `block_len` token slots. One block id covers
 * every layer, and holds K and V for all of this rank's KV heads. A sequence's context
 * positions map to blocks through its block table: position p lives in block
 * table[p / block_len], slot p % block_len. The backend writes K/V of the batch's tokens
 * into their slots during forward and reads them back for attention.
 */
#ifndef IG_BACKEND_H
#define IG_BACKEND_H

#include <stdint.h>

#include "ignis.h"
#include "model/model.h"

/* One forward step over tokens of several sequences. Sequence s owns tokens
 * [q_start[s], q_start[s+1]); their positions are consecutive, ending at kv_len[s] - 1
 * (so the first new token of s is at position kv_len[s] - (q_start[s+1] - q_start[s])).
 * Prefill chunks and decode tokens mix freely. */
typedef struct ig_batch {
    int n_seqs;
    int n_tokens;
    const int32_t *tokens;      /* [n_tokens] */
    const int32_t *q_start;     /* [n_seqs + 1] */
    const int32_t *kv_len;      /* [n_seqs]: context length after this step */
    const int32_t *block_table; /* [n_seqs][max_blocks] block ids */
    int max_blocks;             /* row stride of block_table */
    const int32_t *logit_rows;  /* [n_logits] token indices whose logits are wanted */
    int n_logits;
} ig_batch;

/* Checks a batch against the model and the KV pool (every backend's forward calls it):
 * consistent sequence ranges, context lengths covered by the block tables, block ids in
 * the pool, token ids in the vocabulary, logit rows in range. */
ignis_status ig_batch_check(const ig_batch *b, int vocab, int block_len, int n_blocks);

/* Per-row sampling (row i of logit_rows). */
typedef struct ig_sample_row {
    ignis_sampling params;
    uint64_t step;          /* selects the random draw: same (seed, step) -> same draw */
    const int32_t *history; /* ids for the repetition penalty (prompt + generated) */
    int n_history;
} ig_sample_row;

typedef struct ig_forward_out {
    float *logits;                 /* optional host [n_logits][vocab_size] */
    int32_t *tokens;               /* optional host [n_logits]: sampled ids */
    const ig_sample_row *sampling; /* required when tokens != NULL */
} ig_forward_out;

typedef struct ig_backend ig_backend;

typedef struct ig_backend_ops {
    const char *name;
    /* Allocates the KV pool of n_blocks (>= 1) blocks; the caller sizes it (model_open's
     * init_kv: cache_max_entry_count over mem_info). Returns the count made. */
    ignis_status (*kv_init)(ig_backend *b, int block_len, int n_blocks, int *n_made);
    /* Bytes one KV block takes on this backend. */
    size_t (*kv_block_bytes)(const ig_backend *b, int block_len);
    ignis_status (*forward)(ig_backend *b, const ig_batch *batch, const ig_forward_out *out);
    /* Copies KV slots [0, n) of block src into block dst (prefix-cache copy-on-write). */
    ignis_status (*kv_copy_block)(ig_backend *b, int dst, int src, int n);
    /* Free and total bytes of the backend's memory (host RAM or device memory). */
    ignis_status (*mem_info)(ig_backend *b, uint64_t *free_b, uint64_t *total_b);
    void (*destroy)(ig_backend *b);
} ig_backend_ops;

struct ig_backend {
    const ig_backend_ops *ops;
    const ig_model_desc *desc; /* borrowed; outlives the backend */
    ig_dtype weight_dtype;     /* matrices as held by the backend */
    int block_len;
    int n_blocks;
};

typedef struct ig_backend_opts {
    int threads;
    int device;
    ig_dtype dtype; /* CUDA: storage dtype (F16/BF16); CPU ignores */
    bool verify_checksums;
    ignis_progress_fn progress;
    void *progress_user;
    /* CPU: allocator of the step scratch (NULL: malloc). It must return memory free()
     * releases; tests inject allocation failures through it, per backend. */
    void *(*alloc)(void *user, size_t bytes);
    void *alloc_user;
    ignis_cuda_opts cuda; /* CUDA: knobs from ignis_engine_opts (CPU ignores) */
} ig_backend_opts;

ignis_status ig_backend_cpu_create(const ig_model_desc *d, const ig_backend_opts *o, ig_backend **out);
/* Returns IGNIS_E_UNSUPPORTED when built without CUDA, IGNIS_E_DEVICE without a device. */
ignis_status ig_backend_cuda_create(const ig_model_desc *d, const ig_backend_opts *o, ig_backend **out);
/* Number of usable CUDA devices (0 when built without CUDA or no driver). */
int ig_cuda_device_count(void);

#endif
