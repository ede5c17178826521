/*
 * The prompt of a generation request as token ids: chat messages rendered with the
 * model's chat template (whose stop words join the request's `stop`), text tokenized with
 * BOS as the template or a fresh sequence wants, and the session-length check that turns
 * a too-long prompt into a 400 naming the limits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

/* The template's stops join the request's: its special tokens by id (the server's array,
 * copied by the engine at submit), its other words with the request's `stop`. */
static bool add_template_stops(ignis_server *s, srv_gen *g)
{
    g->p.stop_ids = s->tmpl_stop_ids;
    g->p.n_stop_ids = s->n_tmpl_stop_ids;
    if (s->n_tmpl_stops <= 0) return true;
    char **w = realloc(g->stops, sizeof(char *) * (size_t)(g->n_stops + s->n_tmpl_stops));
    if (!w) return false;
    g->stops = w;
    for (int i = 0; i < s->n_tmpl_stops; i++) {
        if (!s->tmpl_stops[i] || !*s->tmpl_stops[i]) continue;
        if (!(w[g->n_stops] = strdup(s->tmpl_stops[i]))) return false;
        g->n_stops++;
    }
    return true;
}

/* Chat: the template's rendering of the messages, opened for the assistant. */
static char *render_chat(ignis_server *s, srv_gen *g, srv_error *e)
{
    char *msgs = json_dumps(g->messages, JSON_COMPACT);
    char *vars = g->template_vars ? json_dumps(g->template_vars, JSON_COMPACT) : NULL;
    char *text = NULL;
    ignis_status st = msgs ? ignis_chat_render_json(s->tmpl, msgs, vars, true, &text) : IGNIS_E_NOMEM;
    free(msgs);
    free(vars);
    if (st != IGNIS_OK) {
        srv_fail(e, st == IGNIS_E_NOMEM ? 500 : 400, "messages", NULL,
                 "the chat template '%s' cannot render these messages: %s", ignis_chat_template_name(s->tmpl),
                 ignis_last_error());
        return NULL;
    }
    return text;
}

static bool check_length(ignis_server *s, srv_gen *g, int history, srv_error *e)
{
    long long total = (long long)history + g->n_ids;
    if (total >= s->session_len) {
        char hist[64] = "";
        if (history) snprintf(hist, sizeof hist, " (after %d tokens of history)", history);
        return srv_fail(
            e, 400, g->kind == SRV_CHAT ? "messages" : "prompt", "context_length_exceeded",
            "This model's maximum context length is %d tokens. However, your prompt has %d tokens%s; shorten it",
            s->session_len, g->n_ids, hist);
    }
    if (g->p.max_new_tokens > 0 && total + g->p.max_new_tokens > s->session_len)
        return srv_fail(e, 400, "max_tokens", "context_length_exceeded",
                        "This model's maximum context length is %d tokens. However, you requested %lld tokens (%lld "
                        "in the prompt and history, %d in the completion); lower max_tokens",
                        s->session_len, total + g->p.max_new_tokens, total, g->p.max_new_tokens);
    return true;
}

bool srv_build_prompt(ignis_server *s, srv_gen *g, int history_tokens, srv_error *e)
{
    char *rendered = NULL;
    const char *text = g->prompt_text;
    bool bos = history_tokens == 0; /* a sequence starts with BOS, a session's next turn not */
    if (g->kind == SRV_CHAT) {
        if (!add_template_stops(s, g)) return srv_fail(e, 500, NULL, NULL, "out of memory");
        if (!(rendered = render_chat(s, g, e))) return false;
        text = rendered;
    }
    if (text) {
        if (!s->tok) {
            free(rendered);
            return srv_fail(e, 400, g->kind == SRV_CHAT ? "messages" : "prompt", NULL,
                            "this model has no tokenizer: give the prompt as an array of token ids");
        }
        /* a conversation is encoded as `ignis chat` encodes it */
        ignis_status st = rendered ? ignis_chat_encode(s->tmpl, s->tok, text, &g->ids, &g->n_ids)
                                   : ignis_tokenize(s->tok, text, strlen(text), bos, true, &g->ids, &g->n_ids);
        free(rendered);
        if (st != IGNIS_OK) return srv_fail(e, 400, "prompt", NULL, "%s", ignis_last_error());
    }
    if (g->n_stops > 0 && !s->tok)
        return srv_fail(e, 400, "stop", NULL, "this model has no tokenizer: 'stop' needs one");
    for (int i = 0; i < g->n_ids; i++)
        if (g->ids[i] < 0 || g->ids[i] >= s->info.vocab_size)
            return srv_fail(e, 400, "prompt", NULL,
                            "prompt token id %d at position %d is outside the vocabulary [0, %d)", g->ids[i], i,
                            s->info.vocab_size);
    if (g->n_ids == 0 && history_tokens == 0) return srv_fail(e, 400, "prompt", NULL, "the prompt is empty");
    return check_length(s, g, history_tokens, e);
}
