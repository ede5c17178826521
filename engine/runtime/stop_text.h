/*
 * The output text of one request: generated tokens decoded incrementally, cut at the first
 * stop word, and delivered only once final. Text that could still be the start of a stop
 * word is held back until the next tokens show it is not (or the request ends); a matched
 * stop word and everything after it are never delivered.
 *
 * The decoder is primed with the token just before the output (the prompt's last), so the
 * output reads as a continuation of the prompt: prompt text + output text is the text of
 * the whole sequence (SentencePiece's leading space of the first output word is kept).
 *
 * Use: push each token; deliver ig_stop_text_ready() bytes from ig_stop_text_data() and
 * ig_stop_text_consume() them; at the end ig_stop_text_finish() makes everything left final.
 */
#ifndef IG_STOP_TEXT_H
#define IG_STOP_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ignis.h"

typedef struct ig_stop_text {
    ignis_detok_stream *detok; /* NULL once a stop word matched or the text was finished */
    const char *const *words;  /* stop words (the caller's, alive as long as this) */
    int n_words;
    char *hold; /* decoded, not yet delivered */
    size_t len, cap;
    bool matched; /* a stop word was found: hold ends right before it */
} ig_stop_text;

/* context: the id before the first output token (< 0: none, the output starts a text). */
ignis_status ig_stop_text_init(ig_stop_text *t, const ignis_tokenizer *tok, bool skip_special, int32_t context,
                               const char *const *words, int n_words);
void ig_stop_text_free(ig_stop_text *t);

/* Decodes one more output token. Sets *matched when a stop word is now complete in the
 * text (the text is cut before it; later tokens add nothing). */
ignis_status ig_stop_text_push(ig_stop_text *t, int32_t tok, bool *matched);
/* The generation ended: the decoder's incomplete tail is released, a stop word cut. */
void ig_stop_text_finish(ig_stop_text *t);

/* Bytes at the front of the undelivered text that can no longer change: all of it after a
 * match or finish; else all but the longest tail that begins some stop word. */
size_t ig_stop_text_ready(const ig_stop_text *t);
static inline const char *ig_stop_text_data(const ig_stop_text *t) { return t->hold ? t->hold : ""; }
/* The caller delivered the first n bytes. */
void ig_stop_text_consume(ig_stop_text *t, size_t n);

#endif
