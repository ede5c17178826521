#include "runtime/stop_text.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

ignis_status ig_stop_text_init(ig_stop_text *t, const ignis_tokenizer *tok, bool skip_special, int32_t context,
                               const char *const *words, int n_words)
{
    memset(t, 0, sizeof *t);
    t->words = words;
    t->n_words = n_words;
    IG_TRY(ignis_detok_stream_create(tok, skip_special, &t->detok));
    if (context < 0) return IGNIS_OK;
    /* Decode the context token and drop its bytes: the decoder now knows the text has
     * started (no dummy-prefix space stripped from the first output word). The flush
     * drops a partial UTF-8 character of the prompt rather than glue it to the output. */
    const char *piece;
    size_t n;
    ignis_status s = ignis_detok_stream_push(t->detok, context, &piece, &n);
    if (s == IGNIS_OK) s = ignis_detok_stream_flush(t->detok, &piece, &n);
    if (s != IGNIS_OK) ig_stop_text_free(t);
    return s;
}

void ig_stop_text_free(ig_stop_text *t)
{
    if (t->detok) ignis_detok_stream_free(t->detok);
    free(t->hold);
    memset(t, 0, sizeof *t);
}

static bool hold_append(ig_stop_text *t, const char *s, size_t n)
{
    if (!n) return true;
    if (t->len + n > t->cap) {
        size_t c = t->cap ? t->cap : 64;
        while (c < t->len + n)
            c *= 2;
        char *h = realloc(t->hold, c);
        if (!h) return false;
        t->hold = h;
        t->cap = c;
    }
    memcpy(t->hold + t->len, s, n);
    t->len += n;
    return true;
}

/* Cuts the held text at its earliest stop word, if any. Delivered text never holds the
 * start of a stop word (ready() keeps such a tail back), so searching the held part
 * suffices. */
static void cut_at_stop_word(ig_stop_text *t)
{
    long best = -1;
    for (int i = 0; i < t->n_words; i++) {
        const char *p = t->len ? memmem(t->hold, t->len, t->words[i], strlen(t->words[i])) : NULL;
        if (p && (best < 0 || p - t->hold < best)) best = p - t->hold;
    }
    if (best < 0) return;
    t->len = (size_t)best;
    t->matched = true;
    ignis_detok_stream_free(t->detok); /* what follows the stop word is dropped */
    t->detok = NULL;
}

ignis_status ig_stop_text_push(ig_stop_text *t, int32_t tok, bool *matched)
{
    *matched = t->matched;
    if (!t->detok) return IGNIS_OK;
    const char *piece;
    size_t n;
    IG_TRY(ignis_detok_stream_push(t->detok, tok, &piece, &n));
    if (!hold_append(t, piece, n)) return ig_err(IGNIS_E_NOMEM, "out of memory holding the output text");
    cut_at_stop_word(t);
    *matched = t->matched;
    return IGNIS_OK;
}

void ig_stop_text_finish(ig_stop_text *t)
{
    if (!t->detok) return;
    const char *piece;
    size_t n;
    /* a failed flush or append loses only an incomplete character's replacement mark */
    if (ignis_detok_stream_flush(t->detok, &piece, &n) == IGNIS_OK) hold_append(t, piece, n);
    cut_at_stop_word(t);
    if (t->detok) {
        ignis_detok_stream_free(t->detok);
        t->detok = NULL;
    }
}

/* Length of the longest tail of the held text that is a proper prefix of a stop word. */
static size_t stop_prefix_len(const ig_stop_text *t)
{
    size_t keep = 0;
    for (int i = 0; i < t->n_words; i++) {
        size_t L = strlen(t->words[i]);
        size_t k = L - 1 < t->len ? L - 1 : t->len;
        for (; k > keep; k--)
            if (!memcmp(t->hold + t->len - k, t->words[i], k)) {
                keep = k;
                break;
            }
    }
    return keep;
}

size_t ig_stop_text_ready(const ig_stop_text *t)
{
    if (!t->detok) return t->len; /* matched or finished: nothing can change any more */
    return t->len - stop_prefix_len(t);
}

void ig_stop_text_consume(ig_stop_text *t, size_t n)
{
    if (n > t->len) n = t->len;
    if (n < t->len) memmove(t->hold, t->hold + n, t->len - n);
    t->len -= n;
}
