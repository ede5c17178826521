/*
 * When generation ends: the one rule every generation path (the scheduler and the direct
 * ignis_seq_generate) applies after each generated token.
 *
 * Precedence: a stop (EOS unless ignored, a stop id, a stop word matched in the text) wins
 * over the length limit, which wins over a full sequence, so a request whose last allowed
 * token is EOS reports "stop".
 */
#ifndef IG_FINISH_H
#define IG_FINISH_H

#include <stdbool.h>
#include <stdint.h>

#include "ignis.h"

typedef struct ig_finish_rule {
    const int32_t *eos; /* the model's EOS ids */
    int n_eos;
    bool ignore_eos;
    const int32_t *stop_ids; /* the caller's */
    int n_stop_ids;
    int max_new_tokens; /* <= 0: no limit */
    int max_len;        /* most tokens the sequence may hold (prompt, history and output) */
} ig_finish_rule;

/* The reason generation ends after token `tok`, the n_gen-th generated, which brought the
 * sequence to n_tokens; IGNIS_FINISH_NONE to go on. stop_word: the output text has just
 * matched a stop word (the caller's text delivery decides that). */
ignis_finish_reason ig_finish_after_token(const ig_finish_rule *r, int32_t tok, bool stop_word, int n_gen,
                                          int n_tokens);

#endif
