/*
 * OpenAI's response shapes: the error object, completion and chat completion bodies, the
 * SSE chunks of a stream, and LMDeploy's /v1/chat/interactive lines.
 */
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

json_t *srv_error_json(const char *message, const char *type, const char *param, const char *code)
{
    json_t *e = json_object();
    if (!e) return NULL;
    json_object_set_new(e, "message", srv_json_text(message ? message : "", message ? strlen(message) : 0));
    json_object_set_new(e, "type", json_string(type ? type : "invalid_request_error"));
    json_object_set_new(e, "param", param ? json_string(param) : json_null());
    json_object_set_new(e, "code", code ? json_string(code) : json_null());
    return json_pack("{s:o}", "error", e);
}

const char *srv_finish_name(int finish_reason)
{
    switch (finish_reason) {
    case IGNIS_FINISH_STOP:
        return "stop";
    case IGNIS_FINISH_LENGTH:
    case IGNIS_FINISH_CAPACITY:
        return "length";
    case IGNIS_FINISH_ERROR:
        return "error";
    default:
        return "abort"; /* cancelled: client gone or server stopping */
    }
}

/* JSON strings must be valid UTF-8: bytes that are not become U+FFFD (the copy is made
 * only when jansson refuses the text as it is). */
json_t *srv_json_text(const char *s, size_t n)
{
    json_t *j = json_stringn(s ? s : "", s ? n : 0);
    if (j) return j;
    char *o = malloc(3 * n + 1);
    if (!o) return NULL;
    j = json_stringn(o, ignis_utf8_sanitize(s, n, o));
    free(o);
    return j;
}

json_t *srv_usage_json(const srv_job *j)
{
    int prompt = j->prompt_tokens, gen = j->n_generated;
    int cached = j->result.cached_tokens - j->history_tokens;
    if (cached < 0) cached = 0;
    if (cached > prompt) cached = prompt;
    return json_pack("{s:i, s:i, s:i, s:{s:i}}", "prompt_tokens", prompt, "completion_tokens", gen, "total_tokens",
                     prompt + gen, "prompt_tokens_details", "cached_tokens", cached);
}

static const char *object_name(const srv_job *j, bool chunk)
{
    if (j->kind == SRV_CHAT) return chunk ? "chat.completion.chunk" : "chat.completion";
    return "text_completion";
}

static json_t *envelope(const srv_job *j, const char *model, bool chunk)
{
    return json_pack("{s:s, s:s, s:I, s:s}", "id", j->id, "object", object_name(j, chunk), "created",
                     (json_int_t)j->created, "model", model);
}

/* LMDeploy's interactive reply: {"text", "tokens", "input_tokens", "history_tokens",
 * "finish_reason"}. */
static json_t *interactive_json(const srv_job *j, const char *text, size_t len, const char *finish)
{
    json_t *o = json_pack("{s:o, s:i, s:i, s:i}", "text", srv_json_text(text, len), "tokens", j->tokens_seen,
                          "input_tokens", j->prompt_tokens, "history_tokens", j->history_tokens);
    if (o) json_object_set_new(o, "finish_reason", finish ? json_string(finish) : json_null());
    return o;
}

json_t *srv_final_json(const srv_job *j, const char *model, const char *text, size_t len)
{
    const char *finish = srv_finish_name(j->finish_reason);
    if (j->kind == SRV_INTERACTIVE) return interactive_json(j, text, len, finish);
    json_t *o = envelope(j, model, false), *choice;
    if (j->kind == SRV_CHAT)
        choice = json_pack("{s:i, s:{s:s, s:o}, s:n, s:s}", "index", 0, "message", "role", "assistant", "content",
                           srv_json_text(text, len), "logprobs", "finish_reason", finish);
    else
        choice = json_pack("{s:i, s:o, s:n, s:s}", "index", 0, "text", srv_json_text(text, len), "logprobs",
                           "finish_reason", finish);
    if (!o || !choice) {
        json_decref(o);
        json_decref(choice);
        return NULL;
    }
    json_object_set_new(o, "choices", json_pack("[o]", choice));
    json_object_set_new(o, "usage", srv_usage_json(j));
    return o;
}

static int dump_to_sbuf(const char *buf, size_t size, void *out) { return sbuf_add(out, buf, size) ? 0 : -1; }

/* Appends "data: {json}\n\n" (or, interactive, "{json}\n" as LMDeploy streams), encoded
 * straight into j->out; on failure nothing is appended. */
static void emit(srv_job *j, json_t *o)
{
    if (!o) return;
    sbuf *out = &j->out;
    size_t start = out->len;
    bool sse = j->kind != SRV_INTERACTIVE;
    bool ok = (!sse || sbuf_add(out, "data: ", 6)) && json_dump_callback(o, dump_to_sbuf, out, JSON_COMPACT) == 0 &&
              sbuf_str(out, sse ? "\n\n" : "\n");
    json_decref(o);
    if (!ok && out->data) out->data[out->len = start] = 0;
}

static json_t *chunk_json(const srv_job *j, const char *model, json_t *delta_or_text, const char *finish)
{
    json_t *o = envelope(j, model, true);
    json_t *choice = j->kind == SRV_CHAT ? json_pack("{s:i, s:o, s:n}", "index", 0, "delta", delta_or_text, "logprobs")
                                         : json_pack("{s:i, s:o, s:n}", "index", 0, "text", delta_or_text, "logprobs");
    if (!o || !choice) {
        json_decref(o);
        json_decref(choice);
        return NULL;
    }
    json_object_set_new(choice, "finish_reason", finish ? json_string(finish) : json_null());
    json_object_set_new(o, "choices", json_pack("[o]", choice));
    return o;
}

void srv_sse_head(srv_job *j, const char *model)
{
    /* OpenAI's first chat chunk names the role */
    if (j->kind == SRV_CHAT)
        emit(j, chunk_json(j, model, json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL));
}

/* The last occurrence of w in s[0, len), or NULL. */
static char *last_of(char *s, size_t len, const char *w)
{
    size_t n = strlen(w);
    for (size_t i = len >= n ? len - n + 1 : 0; i-- > 0;)
        if (!memcmp(s + i, w, n)) return s + i;
    return NULL;
}

/* A stream sends a chunk per token, and its chunks differ only in their text. Packing and
 * dumping a whole chunk (four nested containers) costs some 20 times more than encoding
 * the text alone, so the first text chunk is dumped once with a marker as its text and
 * split there: j->text_frame is the chunk without its text, which goes at j->text_at. The
 * marker (a string of one NUL) is the chunk's last string value, so its last occurrence
 * is its place (only the keys "logprobs" and "finish_reason" and nulls follow it). */
static bool text_frame(srv_job *j, const char *model)
{
    static const char mark[] = "\"\\u0000\"";
    sbuf *f = &j->text_frame;
    if (f->len) return true;
    json_t *t = json_stringn("", 1);
    json_t *o = t ? chunk_json(j, model, j->kind == SRV_CHAT ? json_pack("{s:o}", "content", t) : t, NULL) : NULL;
    bool ok = o && sbuf_add(f, "data: ", 6) && json_dump_callback(o, dump_to_sbuf, f, JSON_COMPACT) == 0 &&
              sbuf_str(f, "\n\n");
    json_decref(o);
    char *m = ok ? last_of(f->data, f->len, mark) : NULL;
    if (!m) {
        sbuf_free(f);
        return false;
    }
    j->text_at = (size_t)(m - f->data);
    memmove(m, m + sizeof mark - 1, f->len - j->text_at - (sizeof mark - 1) + 1);
    f->len -= sizeof mark - 1;
    return true;
}

void srv_sse_text(srv_job *j, const char *model, const char *text, size_t len)
{
    if (j->kind == SRV_INTERACTIVE) {
        emit(j, interactive_json(j, text, len, NULL));
        return;
    }
    if (!text_frame(j, model)) return;
    json_t *t = srv_json_text(text, len);
    if (!t) return;
    const sbuf *f = &j->text_frame;
    sbuf *out = &j->out;
    size_t start = out->len;
    bool ok = sbuf_add(out, f->data, j->text_at) &&
              json_dump_callback(t, dump_to_sbuf, out, JSON_COMPACT | JSON_ENCODE_ANY) == 0 &&
              sbuf_add(out, f->data + j->text_at, f->len - j->text_at);
    json_decref(t);
    if (!ok && out->data) out->data[out->len = start] = 0;
}

void srv_sse_tail(srv_job *j, const char *model)
{
    if (j->status != IGNIS_OK) {
        emit(j, srv_error_json(j->error ? j->error : "generation failed", "server_error", NULL, NULL));
    } else if (j->kind == SRV_INTERACTIVE) {
        emit(j, interactive_json(j, "", 0, srv_finish_name(j->finish_reason)));
        return; /* LMDeploy's stream has no [DONE] */
    } else {
        const char *finish = srv_finish_name(j->finish_reason);
        emit(j, chunk_json(j, model, j->kind == SRV_CHAT ? json_object() : json_string(""), finish));
        if (j->include_usage) {
            json_t *o = envelope(j, model, true);
            if (o) {
                json_object_set_new(o, "choices", json_array());
                json_object_set_new(o, "usage", srv_usage_json(j));
            }
            emit(j, o);
        }
    }
    sbuf_str(&j->out, "data: [DONE]\n\n");
}
