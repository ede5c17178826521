/*
 * The routes: one handler per endpoint. Generation handlers parse and validate, build the
 * prompt, submit a job, then either stream (SSE) or suspend the connection until the
 * last event (finish_nonstream answers when MHD calls us again).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/server_internal.h"

typedef enum MHD_Result (*handler_fn)(srv_conn *c, struct MHD_Connection *conn);

static enum MHD_Result respond_err(srv_conn *c, struct MHD_Connection *conn, const srv_error *e)
{
    return srv_respond_error(c, conn, e->status, e->type ? e->type : "invalid_request_error", e->param, e->code, "%s",
                             e->message);
}

static enum MHD_Result h_health(srv_conn *c, struct MHD_Connection *conn)
{
    if (!atomic_load(&c->srv->ready) || atomic_load(&c->srv->draining)) {
        static const char busy[] = "{\"status\":\"unavailable\"}";
        return srv_respond(c, conn, 503, "application/json", busy, sizeof busy - 1, "1");
    }
    static const char ok[] = "{\"status\":\"ok\"}";
    return srv_respond(c, conn, 200, "application/json", ok, sizeof ok - 1, NULL);
}

static enum MHD_Result h_metrics(srv_conn *c, struct MHD_Connection *conn)
{
    ignis_server *s = c->srv;
    ignis_engine_stats st;
    bool have = atomic_load(&s->ready) && ignis_engine_get_stats(s->engine, &st) == IGNIS_OK;
    sbuf out = {0};
    if (!srv_metrics_write(&s->metrics, have ? &st : NULL, s->model_name, &out)) {
        sbuf_free(&out);
        return srv_respond_error(c, conn, 500, "server_error", NULL, NULL, "out of memory writing metrics");
    }
    enum MHD_Result r =
        srv_respond(c, conn, 200, "text/plain; version=0.0.4; charset=utf-8", out.data ? out.data : "", out.len, NULL);
    sbuf_free(&out);
    return r;
}

static enum MHD_Result h_models(srv_conn *c, struct MHD_Connection *conn)
{
    ignis_server *s = c->srv;
    json_t *m =
        json_pack("{s:s, s:s, s:I, s:s, s:s, s:i}", "id", s->model_name, "object", "model", "created",
                  (json_int_t)s->created, "owned_by", "ignis", "root", s->model_name, "max_model_len", s->session_len);
    return srv_respond_json(c, conn, 200, json_pack("{s:s, s:[o]}", "object", "list", "data", m));
}

static json_t *parse_body(srv_conn *c, srv_error *e)
{
    json_error_t je;
    json_t *body = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, &je);
    if (!body) {
        srv_fail(e, 400, NULL, NULL, "the body is not valid JSON: %s (line %d, column %d)", je.text, je.line,
                 je.column);
    } else if (!json_is_object(body)) {
        json_decref(body);
        body = NULL;
        srv_fail(e, 400, NULL, NULL, "the request body must be a JSON object");
    }
    return body;
}

/* LMDeploy's /v1/encode: {"input": str | [str], "add_bos": bool} -> {"input_ids", "length"}. */
static enum MHD_Result h_encode(srv_conn *c, struct MHD_Connection *conn)
{
    ignis_server *s = c->srv;
    srv_error e = {0};
    json_t *body = parse_body(c, &e);
    if (!body) return respond_err(c, conn, &e);
    if (!s->tok) {
        json_decref(body);
        return srv_respond_error(c, conn, 400, "invalid_request_error", NULL, NULL, "this model has no tokenizer");
    }
    json_t *in = json_object_get(body, "input"), *bos = json_object_get(body, "add_bos");
    bool list = json_is_array(in);
    if ((!json_is_string(in) && !list) || (bos && !json_is_boolean(bos))) {
        json_decref(body);
        return srv_respond_error(c, conn, 400, "invalid_request_error",
                                 json_is_string(in) || list ? "add_bos" : "input", NULL,
                                 "'input' must be a string or an array of strings, 'add_bos' a boolean");
    }
    bool add_bos = !bos || json_is_true(bos);
    json_t *ids_all = json_array(), *lens = json_array();
    size_t n = list ? json_array_size(in) : 1;
    for (size_t i = 0; i < n; i++) {
        json_t *x = list ? json_array_get(in, i) : in;
        int32_t *ids = NULL;
        int k = 0;
        if (!json_is_string(x) ||
            ignis_tokenize(s->tok, json_string_value(x), json_string_length(x), add_bos, true, &ids, &k) != IGNIS_OK) {
            json_decref(body);
            json_decref(ids_all);
            json_decref(lens);
            return srv_respond_error(c, conn, 400, "invalid_request_error", "input", NULL,
                                     "'input'[%zu] must be a string", i);
        }
        json_t *a = json_array();
        for (int t = 0; t < k; t++)
            json_array_append_new(a, json_integer(ids[t]));
        free(ids);
        json_array_append_new(ids_all, a);
        json_array_append_new(lens, json_integer(k));
    }
    json_decref(body);
    json_t *r =
        list ? json_pack("{s:o, s:o}", "input_ids", ids_all, "length", lens)
             : json_pack("{s:O, s:O}", "input_ids", json_array_get(ids_all, 0), "length", json_array_get(lens, 0));
    if (!list) {
        json_decref(ids_all);
        json_decref(lens);
    }
    return srv_respond_json(c, conn, 200, r);
}

/* Requests of this server waiting for the scheduler: those not admitted yet, and at least
 * those in flight beyond a full batch (preempted ones go back to waiting). */
static int count_waiting(ignis_server *s, int max_batch)
{
    int unadmitted = 0, inflight = 0;
    pthread_mutex_lock(&s->jobs_mu);
    for (int i = 0; i < s->n_jobs; i++) {
        srv_job *j = s->jobs[i];
        pthread_mutex_lock(&j->mu);
        if (j->req && !j->done) {
            ignis_request_result r;
            ignis_request_get_result(j->req, &r);
            unadmitted += r.queue_s < 0;
            inflight++;
        }
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_unlock(&s->jobs_mu);
    return inflight - max_batch > unadmitted ? inflight - max_batch : unadmitted;
}

/* 503 + Retry-After when --max-waiting requests already wait. Only this server's own
 * count decides: the engine's statistics are published after each step, so right after an
 * admission they still show the request as waiting and would turn the next one away. */
static bool queue_full(ignis_server *s, int *waiting)
{
    if (s->opts.max_waiting <= 0) return false;
    *waiting = count_waiting(s, s->max_batch_size);
    return *waiting >= s->opts.max_waiting;
}

/* interactive: which engine session the turn runs in, and whether it ends after. */
static void bind_session(ignis_server *s, srv_gen *g, srv_job *j, int *history)
{
    *history = 0;
    if (g->session_id < 0) return;
    uint64_t eid = srv_session_get(s->sessions, g->session_id, history);
    if (!g->interactive && *history == 0) { /* a one-shot turn needs no session */
        srv_session_forget(s->sessions, g->session_id);
        return;
    }
    g->p.session_id = eid;
    j->session_id = g->session_id;
    j->end_session_after = !g->interactive;
}

static enum MHD_Result interactive_cancel(srv_conn *c, struct MHD_Connection *conn, const srv_gen *g)
{
    ignis_server *s = c->srv;
    if (g->session_id < 0)
        return srv_respond_error(c, conn, 400, "invalid_request_error", "session_id", NULL,
                                 "please set a session_id to cancel a request");
    uint64_t eid = srv_session_forget(s->sessions, g->session_id);
    if (eid) ignis_engine_end_session(s->engine, eid); /* cancels its request, frees its blocks */
    return srv_respond_json(c, conn, 200,
                            json_pack("{s:s, s:i, s:i, s:i, s:s}", "text", "", "tokens", 0, "input_tokens", 0,
                                      "history_tokens", 0, "finish_reason", "stop"));
}

static enum MHD_Result generate(srv_conn *c, struct MHD_Connection *conn, srv_kind kind)
{
    ignis_server *s = c->srv;
    srv_error e = {0};
    json_t *body = parse_body(c, &e);
    if (!body) return respond_err(c, conn, &e);
    srv_gen g;
    bool ok = srv_parse_gen(s, kind, body, &g, &e);
    json_decref(body);
    if (!ok) {
        srv_gen_free(&g);
        return respond_err(c, conn, &e);
    }
    if (kind == SRV_INTERACTIVE && g.cancel) {
        enum MHD_Result r = interactive_cancel(c, conn, &g);
        srv_gen_free(&g);
        return r;
    }
    int waiting = 0;
    if (queue_full(s, &waiting)) {
        srv_gen_free(&g);
        return srv_respond_error(c, conn, 503, "server_error", NULL, "server_busy",
                                 "the server is busy: %d requests are waiting (limit %d); retry later", waiting,
                                 s->opts.max_waiting);
    }
    srv_job *j = srv_job_new(s, c, &g, conn);
    if (!j) {
        srv_gen_free(&g);
        return srv_respond_error(c, conn, 500, "server_error", NULL, NULL, "out of memory");
    }
    int history = 0;
    if (kind == SRV_INTERACTIVE) bind_session(s, &g, j, &history);
    bool built = srv_build_prompt(s, &g, history, &e);
    j->prompt_tokens = g.n_ids; /* before submit: the engine's thread reads them */
    j->history_tokens = history;
    if (!built || !srv_job_submit(j, &g, &e)) {
        srv_gen_free(&g);
        srv_job_unref(j);
        return respond_err(c, conn, &e);
    }
    c->prompt_tokens = g.n_ids;
    c->job = j;
    bool stream = g.stream;
    srv_gen_free(&g);
    if (!stream) {
        srv_job_suspend_until_done(j);
        return MHD_YES;
    }
    struct MHD_Response *r = srv_job_stream_response(j);
    if (!r) return MHD_NO; /* the connection closes; detach cancels the request */
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    c->status = 200;
    srv_metrics_http_status(&s->metrics, 200);
    return ret;
}

static enum MHD_Result h_completions(srv_conn *c, struct MHD_Connection *conn)
{
    return generate(c, conn, SRV_COMPLETION);
}
static enum MHD_Result h_chat(srv_conn *c, struct MHD_Connection *conn) { return generate(c, conn, SRV_CHAT); }
static enum MHD_Result h_interactive(srv_conn *c, struct MHD_Connection *conn)
{
    return generate(c, conn, SRV_INTERACTIVE);
}

/* Called again after the last event resumed a non-streaming request. */
static enum MHD_Result finish_nonstream(srv_conn *c, struct MHD_Connection *conn)
{
    srv_job *j = c->job;
    pthread_mutex_lock(&j->mu);
    bool done = j->done;
    sbuf text = j->pending;
    j->pending = (sbuf){0};
    j->tokens_seen = j->n_generated;
    pthread_mutex_unlock(&j->mu);
    enum MHD_Result r;
    if (!done)
        r = srv_respond_error(c, conn, 503, "server_error", NULL, "server_stopping", "the server is shutting down");
    else if (j->status != IGNIS_OK)
        r = srv_respond_error(c, conn, 500, "server_error", NULL, NULL, "%s",
                              j->error ? j->error : "generation failed");
    else
        r = srv_respond_json(
            c, conn, 200,
            srv_final_json(j, c->srv->model_name, text.data ? text.data + text.off : "", sbuf_avail(&text)));
    sbuf_free(&text);
    return r;
}

static const struct {
    const char *path;
    const char *method;
    handler_fn fn;
    bool needs_model; /* 503 until a model is attached; API keys apply */
} k_routes[] = {
    {"/health", "GET", h_health, false},
    {"/metrics", "GET", h_metrics, false},
    {"/v1/models", "GET", h_models, true},
    {"/v1/completions", "POST", h_completions, true},
    {"/v1/chat/completions", "POST", h_chat, true},
    {"/v1/chat/interactive", "POST", h_interactive, true},
    {"/v1/encode", "POST", h_encode, true},
};

const char *srv_route_method(const char *path)
{
    for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++)
        if (!strcmp(path, k_routes[i].path)) return k_routes[i].method;
    return NULL;
}

enum MHD_Result srv_route(srv_conn *c, struct MHD_Connection *conn)
{
    if (c->job) return finish_nonstream(c, conn);
    ignis_server *s = c->srv;
    for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++) {
        if (strcmp(c->path, k_routes[i].path)) continue;
        bool head_of_get = !strcmp(c->method, "HEAD") && !strcmp(k_routes[i].method, "GET");
        if (strcmp(c->method, k_routes[i].method) && !head_of_get)
            return srv_respond_error(c, conn, 405, "invalid_request_error", NULL, "method_not_allowed",
                                     "%s does not take %s (use %s)", c->path, c->method, k_routes[i].method);
        if (k_routes[i].needs_model) {
            if (!srv_auth_ok(s, conn))
                return srv_respond_error(c, conn, 401, "invalid_request_error", NULL, "invalid_api_key",
                                         "missing or incorrect API key (send \"Authorization: Bearer KEY\")");
            if (atomic_load(&s->draining))
                return srv_respond_error(c, conn, 503, "server_error", NULL, "server_stopping",
                                         "the server is shutting down");
            if (!atomic_load(&s->ready))
                return srv_respond_error(c, conn, 503, "server_error", NULL, "model_loading",
                                         "the model is still loading; retry later");
        }
        return k_routes[i].fn(c, conn);
    }
    return srv_respond_error(c, conn, 404, "invalid_request_error", NULL, "not_found", "no route %s %s", c->method,
                             c->path);
}
