/* Validation of an ig_batch, shared by the backends: a malformed batch from any caller is
 * an error with the offending sequence, never an out-of-bounds KV write. */
#include "backend/backend.h"
#include "core/error.h"

ignis_status ig_batch_check(const ig_batch *bt, int vocab, int block_len, int n_blocks)
{
    if (bt->n_seqs < 1 || bt->n_tokens < 1 || bt->q_start[0] != 0 || bt->q_start[bt->n_seqs] != bt->n_tokens)
        return ig_err(IGNIS_E_ARG, "batch: %d sequences / %d tokens are inconsistent", bt->n_seqs, bt->n_tokens);
    for (int s = 0; s < bt->n_seqs; s++) {
        int nq = bt->q_start[s + 1] - bt->q_start[s];
        if (nq < 0 || bt->kv_len[s] < nq)
            return ig_err(IGNIS_E_ARG, "batch: sequence %d has %d new tokens but context %d", s, nq, bt->kv_len[s]);
        int need = (bt->kv_len[s] + block_len - 1) / block_len;
        if (need > bt->max_blocks)
            return ig_err(IGNIS_E_ARG, "batch: sequence %d needs %d blocks, table holds %d", s, need, bt->max_blocks);
        for (int k = 0; k < need; k++) {
            int blk = bt->block_table[(size_t)s * bt->max_blocks + k];
            if (blk < 0 || blk >= n_blocks)
                return ig_err(IGNIS_E_ARG, "batch: sequence %d block %d is id %d (pool has %d)", s, k, blk, n_blocks);
        }
    }
    for (int t = 0; t < bt->n_tokens; t++)
        if (bt->tokens[t] < 0 || bt->tokens[t] >= vocab)
            return ig_err(IGNIS_E_ARG, "token id %d at batch position %d is outside the vocabulary [0, %d)",
                          bt->tokens[t], t, vocab);
    for (int i = 0; i < bt->n_logits; i++)
        if (bt->logit_rows[i] < 0 || bt->logit_rows[i] >= bt->n_tokens)
            return ig_err(IGNIS_E_ARG, "batch: logit row %d is out of range", bt->logit_rows[i]);
    return IGNIS_OK;
}
