/*
 * Request bodies -> validated generation parameters. OpenAI's rules: wrong types and
 * out-of-range values are 400 with the offending `param`; unknown fields are ignored.
 * The prompt itself (chat template, tokenization, length) is prompt.c's.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

bool srv_fail(srv_error *e, int status, const char *param, const char *code, const char *fmt, ...)
{
    e->status = status;
    e->type = "invalid_request_error";
    e->param = param;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return false;
}

/* A field that is absent or null takes its default. */
static json_t *field(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    return v && !json_is_null(v) ? v : NULL;
}

static bool get_bool(json_t *o, const char *name, bool *dst, srv_error *e)
{
    json_t *v = field(o, name);
    if (!v) return true;
    if (!json_is_boolean(v)) return srv_fail(e, 400, name, NULL, "'%s' must be a boolean", name);
    *dst = json_is_true(v);
    return true;
}

static bool get_int(json_t *o, const char *name, long long lo, long long hi, long long *dst, bool *given, srv_error *e)
{
    json_t *v = field(o, name);
    if (!v) return true;
    if (!json_is_integer(v)) return srv_fail(e, 400, name, NULL, "'%s' must be an integer", name);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return srv_fail(e, 400, name, NULL, "'%s' is %lld; it must be in [%lld, %lld]", name, x, lo, hi);
    *dst = x;
    if (given) *given = true;
    return true;
}

/* lo_open: lo itself is excluded. */
static bool get_num(json_t *o, const char *name, double lo, bool lo_open, double hi, float *dst, srv_error *e)
{
    json_t *v = field(o, name);
    if (!v) return true;
    if (!json_is_number(v)) return srv_fail(e, 400, name, NULL, "'%s' must be a number", name);
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || (lo_open && x == lo) || x > hi)
        return srv_fail(e, 400, name, NULL, "'%s' is %g; it must be in %c%g, %g]", name, x, lo_open ? '(' : '[', lo,
                        hi);
    *dst = (float)x;
    return true;
}

static bool add_stop(srv_gen *g, const char *s)
{
    char **w = realloc(g->stops, sizeof(char *) * (size_t)(g->n_stops + 1));
    if (!w) return false;
    g->stops = w;
    if (!(w[g->n_stops] = strdup(s))) return false;
    g->n_stops++;
    return true;
}

static bool parse_stop(json_t *o, srv_gen *g, srv_error *e)
{
    json_t *v = field(o, "stop");
    if (!v) return true;
    size_t n = json_is_string(v) ? 1 : json_is_array(v) ? json_array_size(v) : 0;
    if (!json_is_string(v) && !json_is_array(v))
        return srv_fail(e, 400, "stop", NULL, "'stop' must be a string or an array of strings");
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_is_string(v) ? v : json_array_get(v, i);
        if (!json_is_string(x) || json_string_length(x) == 0)
            return srv_fail(e, 400, "stop", NULL, "'stop' entries must be non-empty strings");
        if (!add_stop(g, json_string_value(x))) return srv_fail(e, 500, NULL, NULL, "out of memory");
    }
    return true;
}

/* The sampling and output fields shared by every generation endpoint. */
static bool parse_common(json_t *o, srv_gen *g, srv_error *e)
{
    ignis_request_params *p = &g->p;
    bool given = false;
    long long x = 0;
    if (!get_int(o, "max_tokens", 1, 1 << 24, &x, &given, e)) return false;
    if (!get_int(o, "max_completion_tokens", 1, 1 << 24, &x, &given, e)) return false;
    if (g->kind == SRV_INTERACTIVE && !get_int(o, "request_output_len", 1, 1 << 24, &x, &given, e)) return false;
    if (given) p->max_new_tokens = (int)x;
    if (!get_num(o, "temperature", 0, false, 2, &p->sampling.temperature, e)) return false;
    if (!get_num(o, "top_p", 0, true, 1, &p->sampling.top_p, e)) return false;
    x = 0;
    given = false;
    if (!get_int(o, "top_k", 0, 1 << 24, &x, &given, e)) return false;
    if (given) p->sampling.top_k = (int)x;
    if (!get_num(o, "repetition_penalty", 0, true, 100, &p->sampling.repetition_penalty, e)) return false;
    json_t *seed = field(o, "seed");
    if (seed) {
        if (!json_is_integer(seed)) return srv_fail(e, 400, "seed", NULL, "'seed' must be an integer");
        p->sampling.seed = (uint64_t)json_integer_value(seed);
    }
    long long n = 1;
    if (!get_int(o, "n", 1, 1 << 20, &n, NULL, e)) return false;
    if (n != 1) return srv_fail(e, 400, "n", NULL, "'n' is %lld; only n = 1 is supported", n);
    if (!get_bool(o, "ignore_eos", &p->ignore_eos, e)) return false;
    if (!get_bool(o, "skip_special_tokens", &p->skip_special, e)) return false;
    if (!get_bool(o, "stream", &g->stream, e)) return false;
    json_t *so = field(o, "stream_options");
    if (so) {
        if (!json_is_object(so)) return srv_fail(e, 400, "stream_options", NULL, "'stream_options' must be an object");
        if (!get_bool(so, "include_usage", &g->include_usage, e)) return false;
    }
    json_t *user = field(o, "user");
    if (user && !json_is_string(user)) return srv_fail(e, 400, "user", NULL, "'user' must be a string");
    return parse_stop(o, g, e);
}

/* prompt: a string, an array of one string, an array of ids, or an array of one id array. */
static bool parse_prompt(json_t *o, srv_gen *g, srv_error *e)
{
    json_t *v = json_object_get(o, "prompt");
    if (!v || json_is_null(v)) return srv_fail(e, 400, "prompt", NULL, "'prompt' is required");
    if (json_is_array(v) && json_array_size(v) == 1 &&
        (json_is_string(json_array_get(v, 0)) || json_is_array(json_array_get(v, 0))))
        v = json_array_get(v, 0);
    if (json_is_string(v)) {
        g->prompt_text = strdup(json_string_value(v));
        return g->prompt_text ? true : srv_fail(e, 500, NULL, NULL, "out of memory");
    }
    if (!json_is_array(v))
        return srv_fail(e, 400, "prompt", NULL,
                        "'prompt' must be a string or an array of token ids (one prompt: n = 1)");
    size_t n = json_array_size(v);
    if (n == 0) return srv_fail(e, 400, "prompt", NULL, "'prompt' is an empty array");
    g->ids = malloc(sizeof(int32_t) * n);
    if (!g->ids) return srv_fail(e, 500, NULL, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 0x7fffffff)
            return srv_fail(e, 400, "prompt", NULL,
                            "'prompt'[%zu] is not a token id (give one prompt: a string or an array of ids)", i);
        g->ids[i] = (int32_t)json_integer_value(x);
    }
    g->n_ids = (int)n;
    return true;
}

static const char *const k_roles[] = {"system", "user", "assistant", "tool", "developer", NULL};

/* Content as a string: a string, or an array of {"type":"text","text":...} parts. */
static json_t *content_text(json_t *c, size_t i, srv_error *e)
{
    static char param[] = "messages";
    if (json_is_string(c)) return json_incref(c);
    if (!c || json_is_null(c)) return json_string("");
    if (!json_is_array(c)) {
        srv_fail(e, 400, param, NULL, "messages[%zu].content must be a string or an array of text parts", i);
        return NULL;
    }
    sbuf joined = {0};
    size_t k;
    json_t *part;
    json_array_foreach(c, k, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *t = json_object_get(part, "text");
        if (!type || strcmp(type, "text") || !json_is_string(t)) {
            sbuf_free(&joined);
            srv_fail(e, 400, param, NULL, "messages[%zu].content[%zu] must be {\"type\": \"text\", \"text\": ...}", i,
                     k);
            return NULL;
        }
        if (!sbuf_add(&joined, json_string_value(t), json_string_length(t))) {
            sbuf_free(&joined);
            return NULL;
        }
    }
    json_t *s = json_stringn(joined.data ? joined.data : "", joined.len);
    sbuf_free(&joined);
    return s;
}

/* messages: a non-empty array of {role, content}; content flattened to a string. */
static bool parse_messages(json_t *o, srv_gen *g, srv_error *e)
{
    json_t *v = json_object_get(o, "messages");
    if (!v || json_is_null(v)) return srv_fail(e, 400, "messages", NULL, "'messages' is required");
    if (!json_is_array(v)) return srv_fail(e, 400, "messages", NULL, "'messages' must be an array");
    if (json_array_size(v) == 0) return srv_fail(e, 400, "messages", NULL, "'messages' is empty");
    /* the body is the request's own: each message's content is flattened in place */
    g->messages = json_incref(v);
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *m = json_array_get(v, i);
        if (!json_is_object(m)) return srv_fail(e, 400, "messages", NULL, "messages[%zu] must be an object", i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role) return srv_fail(e, 400, "messages", NULL, "messages[%zu].role must be a string", i);
        bool known = false;
        for (int k = 0; k_roles[k]; k++)
            known |= !strcmp(role, k_roles[k]);
        if (!known)
            return srv_fail(e, 400, "messages", NULL,
                            "messages[%zu].role '%s' is unknown (system, user, assistant, tool, developer)", i, role);
        json_t *c = json_object_get(m, "content");
        if ((!c || json_is_null(c)) && strcmp(role, "assistant"))
            return srv_fail(e, 400, "messages", NULL, "messages[%zu].content is required", i);
        json_t *text = content_text(c, i, e);
        if (!text && e->status) return false;
        if (json_object_set_new(m, "content", text)) return srv_fail(e, 500, NULL, NULL, "out of memory");
    }
    json_t *kw = field(o, "chat_template_kwargs");
    if (kw) {
        if (!json_is_object(kw))
            return srv_fail(e, 400, "chat_template_kwargs", NULL, "'chat_template_kwargs' must be an object");
        g->template_vars = json_incref(kw);
    }
    return true;
}

static bool parse_interactive(json_t *o, srv_gen *g, srv_error *e)
{
    long long sid = -1;
    if (!get_int(o, "session_id", -1, (1LL << 62), &sid, NULL, e)) return false;
    g->session_id = sid;
    if (!get_bool(o, "interactive_mode", &g->interactive, e)) return false;
    if (!get_bool(o, "cancel", &g->cancel, e)) return false;
    if (g->cancel) return true;
    json_t *v = json_object_get(o, "prompt");
    if (!json_is_string(v)) return srv_fail(e, 400, "prompt", NULL, "'prompt' must be a string");
    g->prompt_text = strdup(json_string_value(v));
    return g->prompt_text ? true : srv_fail(e, 500, NULL, NULL, "out of memory");
}

bool srv_parse_gen(ignis_server *s, srv_kind kind, json_t *body, srv_gen *g, srv_error *e)
{
    memset(g, 0, sizeof *g);
    memset(e, 0, sizeof *e);
    g->kind = kind;
    g->session_id = -1;
    ignis_request_params_init(&g->p);
    if (!json_is_object(body)) return srv_fail(e, 400, NULL, NULL, "the request body must be a JSON object");
    if (kind != SRV_INTERACTIVE) {
        json_t *model = field(body, "model");
        if (model && !json_is_string(model)) return srv_fail(e, 400, "model", NULL, "'model' must be a string");
        if (model && strcmp(json_string_value(model), s->model_name))
            return srv_fail(e, 404, "model", "model_not_found",
                            "The model '%s' does not exist (this server serves '%s')", json_string_value(model),
                            s->model_name);
    }
    if (!parse_common(body, g, e)) return false;
    switch (kind) {
    case SRV_COMPLETION:
        return parse_prompt(body, g, e);
    case SRV_CHAT:
        return parse_messages(body, g, e);
    default:
        return parse_interactive(body, g, e);
    }
}

void srv_gen_free(srv_gen *g)
{
    for (int i = 0; i < g->n_stops; i++)
        free(g->stops[i]);
    free(g->stops);
    free(g->ids);
    free(g->prompt_text);
    json_decref(g->messages);
    json_decref(g->template_vars);
    memset(g, 0, sizeof *g);
}
