/*
 * The OpenAI-compatible server's shared state. Threads:
 *  - MHD's epoll thread(s): parse requests, submit them, write responses (http.c);
 *  - the engine's scheduler thread: delivers events to job_on_event (job.c), which only
 *    copies text into the job and wakes the connection — it never formats or blocks;
 *  - the watchdog (server.c): notices clients that hung up while their connection is
 *    suspended (MHD does not look at suspended sockets) and cancels their requests.
 *
 * Lock order: srv.jobs_mu -> job.mu -> (ignis_request's and MHD's own locks). Never call
 * ignis_request_release with a job.mu held (the engine may be waiting on it in a callback).
 */
#ifndef IG_SERVER_INTERNAL_H
#define IG_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ignis.h"
#include "server/metrics.h"
#include "server/sbuf.h"

typedef struct srv_sessions srv_sessions;

struct ignis_server {
    ignis_server_opts opts; /* strings below are our copies */
    char *host, *model_name, *model_path, *chat_template;
    char **api_keys;
    int n_api_keys;
    bool name_given; /* opts.model_name was set (it may pick the chat template) */
    struct MHD_Daemon *daemon;
    int port;
    /* set once by ignis_server_attach, then read-only */
    atomic_bool ready;
    ignis_model *model;
    ignis_engine *engine;
    const ignis_tokenizer *tok;
    ignis_chat_template *tmpl;
    /* the template's stop words (ignis_chat_stops): special tokens by id, the rest as text */
    int32_t *tmpl_stop_ids;
    int n_tmpl_stop_ids;
    const char **tmpl_stops;
    int n_tmpl_stops;
    ignis_model_info info;
    int session_len, max_batch_size; /* the engine's configuration */
    /* shutdown */
    atomic_bool draining; /* new requests get 503 */
    atomic_bool stopping; /* readers end streams instead of waiting */
    /* every job whose connection may be suspended */
    pthread_mutex_t jobs_mu;
    struct srv_job **jobs;
    int n_jobs, cap_jobs;
    pthread_t watchdog;
    bool watchdog_started;
    atomic_bool watchdog_stop;
    atomic_uint_fast64_t next_id;
    srv_sessions *sessions;
    srv_metrics metrics;
    double created; /* unix time of start, for /v1/models */
};

typedef enum srv_kind { SRV_COMPLETION, SRV_CHAT, SRV_INTERACTIVE } srv_kind;

/* The generation parameters of one request, validated. */
typedef struct srv_gen {
    srv_kind kind;
    bool stream;
    bool include_usage;
    ignis_request_params p; /* sampling, max_new_tokens, ignore_eos, skip_special, stop words */
    char **stops;           /* the request's `stop` plus (chat) the template's stop words */
    int n_stops;
    char *prompt_text;     /* completion/interactive text prompt (or NULL: ids given) */
    json_t *messages;      /* chat: the messages, content flattened to strings */
    json_t *template_vars; /* chat: chat_template_kwargs */
    int32_t *ids;          /* the prompt's ids (given, or tokenized by srv_build_prompt) */
    int n_ids;
    /* interactive */
    int64_t session_id; /* -1: none */
    bool interactive;
    bool cancel;
} srv_gen;

/* One generation request in flight: shared by its HTTP connection and the engine. */
typedef struct srv_job {
    pthread_mutex_t mu;
    int refs; /* the connection, the engine (until the last event), the stream response */
    struct ignis_server *srv;
    struct MHD_Connection *conn; /* NULL once MHD has finished with the connection */
    int fd;                      /* the client's socket, peeked while suspended */
    bool suspended;              /* we suspended conn and nobody resumed it yet */
    bool client_gone;
    ignis_request *req; /* NULL once the last event has been handled */
    srv_kind kind;
    bool stream, include_usage;
    char id[48];
    long long created;
    /* written by the engine thread, taken by the connection (under mu) */
    sbuf pending; /* text not yet sent (stream) or all text (not stream) */
    int n_generated;
    bool done;
    int finish_reason;
    ignis_status status;
    char *error;
    ignis_request_result result;
    double t_last_token; /* seconds from submit of the previous token (inter-token latency) */
    /* the connection's side (MHD thread only) */
    sbuf taken;      /* pending text moved out of the lock for formatting */
    sbuf out;        /* formatted bytes not yet handed to MHD */
    sbuf text_frame; /* a text chunk without its text, which goes at text_at (openai_write.c) */
    size_t text_at;
    int tokens_seen;   /* n_generated when the text being formatted was taken */
    bool sent_head;    /* the chat role chunk */
    bool sent_tail;    /* finish chunk, usage, [DONE] */
    int prompt_tokens; /* this request's prompt */
    int history_tokens;
    int64_t session_id;
    bool end_session_after; /* interactive_mode false on a session with history */
    int list_index;         /* in srv.jobs */
} srv_job;

/* Per-HTTP-request state (MHD's con_cls). */
typedef struct srv_conn {
    struct ignis_server *srv;
    uint64_t id;
    double t0;
    char method[16];
    char path[256];
    sbuf body;
    bool too_large;
    int status; /* of the response queued, for the access log */
    srv_job *job;
    int prompt_tokens, generated_tokens;
    double ttft_ms;
} srv_conn;

/* ---- http.c: responses (the body is copied) */
enum MHD_Result srv_respond(srv_conn *c, struct MHD_Connection *conn, int status, const char *ctype, const char *body,
                            size_t len, const char *retry_after);
enum MHD_Result srv_respond_json(srv_conn *c, struct MHD_Connection *conn, int status, json_t *j); /* steals j */
enum MHD_Result srv_respond_error(srv_conn *c, struct MHD_Connection *conn, int status, const char *type,
                                  const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
struct MHD_Daemon *srv_http_start(struct ignis_server *s, const char *host, int port, int *bound_port);

/* ---- handlers.c: one per endpoint; each queues a response or suspends the connection */
enum MHD_Result srv_route(srv_conn *c, struct MHD_Connection *conn);
/* The one method a route takes (for a 405's Allow header); NULL: no such route. */
const char *srv_route_method(const char *path);

/* ---- parse.c: JSON body -> srv_gen (chat: g->messages is the body's, content flattened in
 * place); on failure fills status/param/message */
typedef struct srv_error {
    int status;
    const char *type;
    const char *param;
    const char *code;
    char message[512];
} srv_error;
/* Fills e as an invalid_request_error and returns false, for `return srv_fail(...)`. */
bool srv_fail(srv_error *e, int status, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
bool srv_parse_gen(struct ignis_server *s, srv_kind kind, json_t *body, srv_gen *g, srv_error *err);
void srv_gen_free(srv_gen *g);

/* ---- prompt.c: messages/text -> ids (chat template, BOS, stop words), length checks */
bool srv_build_prompt(struct ignis_server *s, srv_gen *g, int history_tokens, srv_error *err);

/* ---- job.c */
srv_job *srv_job_new(struct ignis_server *s, srv_conn *c, const srv_gen *g, struct MHD_Connection *conn);
/* Submits; on failure the job is dropped and err says why (status 400/503/500). */
bool srv_job_submit(srv_job *j, srv_gen *g, srv_error *err);
void srv_job_unref(srv_job *j);
/* Builds the streaming response (SSE) over j. */
struct MHD_Response *srv_job_stream_response(srv_job *j);
/* Suspends the connection until the job's last event (non-streaming). */
void srv_job_suspend_until_done(srv_job *j);
/* The connection ended (completed or aborted): cancel what is still running. */
void srv_job_detach(srv_job *j);
/* Watchdog: cancels jobs whose client hung up while suspended; resume_all wakes every
 * suspended connection (shutdown). */
void srv_jobs_check_clients(struct ignis_server *s);
void srv_jobs_cancel_all(struct ignis_server *s);
void srv_jobs_resume_all(struct ignis_server *s);
int srv_jobs_count(struct ignis_server *s);

/* ---- openai_write.c */
const char *srv_finish_name(int finish_reason);
json_t *srv_json_text(const char *s, size_t len); /* invalid UTF-8 -> U+FFFD */
json_t *srv_usage_json(const srv_job *j);
json_t *srv_final_json(const srv_job *j, const char *model, const char *text, size_t len);
/* Appends the SSE chunks for new text / the end of the stream to j->out. */
void srv_sse_text(srv_job *j, const char *model, const char *text, size_t len);
void srv_sse_head(srv_job *j, const char *model);
void srv_sse_tail(srv_job *j, const char *model);
json_t *srv_error_json(const char *message, const char *type, const char *param, const char *code);

/* ---- sessions.c: interactive sessions (client id -> engine session) */
srv_sessions *srv_sessions_new(void);
void srv_sessions_free(srv_sessions *ss);
/* Engine session id for a client id (made on first use) and its history length. */
uint64_t srv_session_get(srv_sessions *ss, int64_t client_id, int *history_tokens);
void srv_session_grow(srv_sessions *ss, int64_t client_id, int tokens);
/* Forgets the client id; returns the engine id it had (0: none). */
uint64_t srv_session_forget(srv_sessions *ss, int64_t client_id);

/* ---- auth.c */
bool srv_auth_ok(const struct ignis_server *s, struct MHD_Connection *conn);

/* ---- access_log.c */
void srv_access_log(const struct ignis_server *s, const srv_conn *c);

#endif
