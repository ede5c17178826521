/*
 * A rendered conversation as the model sees it, and the template's stop words as a request
 * needs them: the one place `ignis chat` and the server take both from, so a model answers
 * the same through either.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "ignis.h"

ignis_status ignis_chat_encode(const ignis_chat_template *t, const ignis_tokenizer *tok, const char *text,
                               int32_t **ids, int *n)
{
    if (!t || !tok || !text || !ids || !n) return ig_err(IGNIS_E_ARG, "ignis_chat_encode: NULL argument");
    IG_TRY(ignis_tokenize(tok, text, strlen(text), ignis_chat_template_wants_bos(t), true, ids, n));
    /* a template that writes BOS itself (llama3's <|begin_of_text|> prefix) gets no second one */
    int32_t bos = ignis_tokenizer_bos(tok);
    if (*n >= 2 && bos >= 0 && (*ids)[0] == bos && (*ids)[1] == bos) {
        memmove(*ids, *ids + 1, sizeof(int32_t) * (size_t)(*n - 1));
        (*n)--;
    }
    return IGNIS_OK;
}

ignis_status ignis_chat_stops(const ignis_chat_template *t, const ignis_tokenizer *tok, int32_t **ids, int *n_ids,
                              const char ***words, int *n_words)
{
    if (!t || !tok || !ids || !n_ids || !words || !n_words)
        return ig_err(IGNIS_E_ARG, "ignis_chat_stops: NULL argument");
    const char *const *all;
    int n = ignis_chat_stop_words(t, &all);
    *ids = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    *words = malloc(sizeof(char *) * (size_t)(n > 0 ? n : 1));
    *n_ids = *n_words = 0;
    if (!*ids || !*words) {
        free(*ids), free(*words);
        *ids = NULL, *words = NULL;
        return ig_err(IGNIS_E_NOMEM, "out of memory for the chat template's stop words");
    }
    for (int i = 0; i < n; i++) {
        /* a special token leaves no text to match when the output skips special tokens:
         * it stops by id; any other word is matched in the text, and cut from it */
        int32_t id = ignis_token_id(tok, all[i]);
        if (id >= 0 && ignis_token_is_special(tok, id))
            (*ids)[(*n_ids)++] = id;
        else
            (*words)[(*n_words)++] = all[i];
    }
    return IGNIS_OK;
}
