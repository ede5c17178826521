/*
 * A fake ig_backend for scheduler tests that need no model: its "KV" stores, per slot,
 * the token and position written there, and the logits of a row are a pure function of
 * every token of the row's context as read back through the block table. So any block
 * table, chunking or prefix-sharing mistake of the scheduler changes the output (or is
 * reported as an error: a slot holding the wrong position, a block id out of range, two
 * sequences of one batch writing the same slot), while a correct scheduler gives the
 * same ids whatever the batching.
 */
#ifndef IG_TEST_FAKE_BACKEND_H
#define IG_TEST_FAKE_BACKEND_H

#include <stdint.h>

#include "backend/backend.h"
#include "model/model.h"
#include "runtime/kv_pool.h"

typedef struct fake_model {
    ig_model_desc desc;
    ig_backend *backend;
    ig_kv_pool pool;
} fake_model;

typedef struct fake_stats {
    int forwards;
    int max_batch_seqs;
    int max_batch_tokens;
    int copies;
} fake_stats;

/* vocab >= 16; eos: the model's EOS id (-1: none). */
int fake_model_init(fake_model *m, int vocab, int eos, int n_blocks, int block_len);
void fake_model_free(fake_model *m);
fake_stats fake_backend_stats(const ig_backend *b);
/* Makes forward fail (IGNIS_E_DEVICE) whenever a batch contains this token (-1: never). */
void fake_backend_fail_on(ig_backend *b, int32_t token);
/* Sleeps this many microseconds in each forward (to widen race windows). */
void fake_backend_delay(ig_backend *b, int us);
/* The greedy continuation the fake model gives for a prompt (reference for tests). */
void fake_reference(const ig_backend *b, const int32_t *prompt, int n_prompt, int n_new, int32_t *out);

#endif
