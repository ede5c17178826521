/*
 * A generation request between its HTTP connection and the engine.
 *
 * The engine's thread calls job_on_event: it appends the event's text to j->pending and,
 * when the connection is suspended waiting for output, resumes it — nothing more, so the
 * scheduler never waits on a client. The connection's thread (MHD) formats what is
 * pending into SSE chunks (stream_read) or, for a non-streaming request, the whole body
 * once the last event is in. A connection with nothing to send is suspended; since MHD
 * does not watch suspended sockets, the watchdog peeks them and cancels the request of a
 * client that hung up, so its KV blocks return to the pool.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "server/server_internal.h"

srv_job *srv_job_new(ignis_server *s, srv_conn *c, const srv_gen *g, struct MHD_Connection *conn)
{
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    j->refs = 1; /* the connection's */
    j->srv = s;
    j->conn = conn;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    j->fd = ci ? ci->connect_fd : -1;
    j->kind = g->kind;
    j->stream = g->stream;
    j->include_usage = g->include_usage;
    j->created = (long long)time(NULL);
    snprintf(j->id, sizeof j->id, "%s-%llx%llx", g->kind == SRV_CHAT ? "chatcmpl" : "cmpl", (long long)s->created,
             (unsigned long long)c->id);
    j->session_id = -1;
    j->t_last_token = -1;
    j->list_index = -1;
    return j;
}

void srv_job_unref(srv_job *j)
{
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left) return;
    sbuf_free(&j->pending);
    sbuf_free(&j->taken);
    sbuf_free(&j->out);
    sbuf_free(&j->text_frame);
    free(j->error);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

/* Called with j->mu held: let the connection run again if it waits for us. */
static void wake_locked(srv_job *j)
{
    if (j->suspended && j->conn) {
        j->suspended = false;
        MHD_resume_connection(j->conn);
    }
}

/* After a turn: the session grows by what was computed into it, or ends. */
static void session_after_turn(srv_job *j, int finish_reason)
{
    ignis_server *s = j->srv;
    if (j->session_id < 0) return;
    if (j->end_session_after || finish_reason == IGNIS_FINISH_ERROR) {
        uint64_t eid = srv_session_forget(s->sessions, j->session_id);
        if (eid) ignis_engine_end_session(s->engine, eid);
        return;
    }
    srv_session_grow(s->sessions, j->session_id, j->prompt_tokens + j->n_generated);
}

static void job_on_event(void *user, ignis_request *req, const ignis_event *ev)
{
    srv_job *j = user;
    if (ev->type == IGNIS_EVENT_TOKEN) {
        pthread_mutex_lock(&j->mu);
        sbuf_add(&j->pending, ev->text, ev->text_len);
        j->n_generated++;
        double gap = j->t_last_token >= 0 ? ev->time_s - j->t_last_token : -1;
        j->t_last_token = ev->time_s;
        if (j->stream) wake_locked(j); /* a non-streaming answer waits for the end */
        pthread_mutex_unlock(&j->mu);
        srv_metrics_token_gap(&j->srv->metrics, gap);
        return;
    }
    if (ev->type != IGNIS_EVENT_FINISHED && ev->type != IGNIS_EVENT_ERROR) return;
    ignis_request_result res;
    ignis_request_get_result(req, &res);
    /* before the client hears of the end, so its next turn sees the session grown */
    session_after_turn(j, ev->type == IGNIS_EVENT_ERROR ? IGNIS_FINISH_ERROR : ev->finish_reason);
    pthread_mutex_lock(&j->mu);
    if (ev->type == IGNIS_EVENT_FINISHED) sbuf_add(&j->pending, ev->text, ev->text_len);
    j->result = res;
    j->finish_reason = ev->type == IGNIS_EVENT_ERROR ? IGNIS_FINISH_ERROR : ev->finish_reason;
    j->status = ev->type == IGNIS_EVENT_ERROR ? (ev->status != IGNIS_OK ? ev->status : IGNIS_E_INTERNAL) : IGNIS_OK;
    if (ev->type == IGNIS_EVENT_ERROR) j->error = strdup(ev->error ? ev->error : "generation failed");
    j->req = NULL; /* from here on nobody cancels it; released below */
    j->done = true;
    wake_locked(j);
    pthread_mutex_unlock(&j->mu);
    srv_metrics_request_done(&j->srv->metrics, &res);
    ignis_request_release(req); /* allowed from the request's own callback */
    srv_job_unref(j);           /* the engine's reference */
}

static void list_add(srv_job *j)
{
    ignis_server *s = j->srv;
    pthread_mutex_lock(&s->jobs_mu);
    if (s->n_jobs == s->cap_jobs) {
        int cap = s->cap_jobs ? 2 * s->cap_jobs : 64;
        srv_job **a = realloc(s->jobs, sizeof *a * (size_t)cap);
        if (a) {
            s->jobs = a;
            s->cap_jobs = cap;
        }
    }
    if (s->n_jobs < s->cap_jobs) { /* else: not watched (out of memory), still served */
        j->list_index = s->n_jobs;
        s->jobs[s->n_jobs++] = j;
    }
    pthread_mutex_unlock(&s->jobs_mu);
}

static void list_remove(srv_job *j)
{
    ignis_server *s = j->srv;
    pthread_mutex_lock(&s->jobs_mu);
    int i = j->list_index;
    if (i >= 0 && i < s->n_jobs && s->jobs[i] == j) {
        s->jobs[i] = s->jobs[--s->n_jobs];
        s->jobs[i]->list_index = i;
        j->list_index = -1;
    }
    pthread_mutex_unlock(&s->jobs_mu);
}

static void submit_error(srv_error *e, ignis_status st)
{
    int status = st == IGNIS_E_NOMEM || st == IGNIS_E_INTERNAL ? 500 : st == IGNIS_E_STATE ? 409 : 400;
    srv_fail(e, status, NULL, st == IGNIS_E_CAPACITY ? "context_length_exceeded" : NULL, "%s", ignis_last_error());
    if (status >= 500) e->type = "server_error";
}

bool srv_job_submit(srv_job *j, srv_gen *g, srv_error *err)
{
    ignis_request_params p = g->p;
    p.prompt = NULL;
    p.prompt_ids = g->ids;
    p.n_prompt_ids = g->n_ids;
    p.stop_words = (const char *const *)g->stops;
    p.n_stop_words = g->n_stops;
    p.on_event = job_on_event;
    p.user = j;
    pthread_mutex_lock(&j->mu);
    j->refs++; /* the engine's, dropped after its last event */
    ignis_request *r = NULL;
    /* under j->mu so the first event (on the engine's thread) finds j->req set */
    ignis_status st = ignis_engine_submit(j->srv->engine, &p, &r);
    if (st == IGNIS_OK)
        j->req = r;
    else
        j->refs--;
    pthread_mutex_unlock(&j->mu);
    if (st != IGNIS_OK) {
        submit_error(err, st);
        return false;
    }
    list_add(j);
    return true;
}

/* ------------------------------------------------------------ the connection's side */

/* Moves pending text into j->taken (under the lock) and formats it outside of it, so the
 * engine's thread never waits for JSON encoding. Returns false when there was nothing. */
static bool format_pending(srv_job *j, bool *done)
{
    const char *model = j->srv->model_name;
    pthread_mutex_lock(&j->mu);
    sbuf t = j->taken;
    j->taken = j->pending;
    j->pending = t;
    sbuf_clear(&j->pending);
    *done = j->done;
    int n = j->n_generated, before = j->tokens_seen;
    pthread_mutex_unlock(&j->mu);
    bool any = sbuf_avail(&j->taken) > 0;
    j->tokens_seen = n;
    if (any) {
        srv_sse_text(j, model, j->taken.data + j->taken.off, sbuf_avail(&j->taken));
    } else if (!j->srv->tok && j->kind != SRV_INTERACTIVE) {
        /* a model without a tokenizer has no text: one empty chunk per token still lets a
         * client time each token (TTFT, ITL) */
        for (int k = before; k < n; k++)
            srv_sse_text(j, model, "", 0);
        any = n > before;
    }
    sbuf_clear(&j->taken);
    if (*done) {
        srv_sse_tail(j, model);
        j->sent_tail = true;
    }
    return any || *done;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    srv_job *j = cls;
    for (;;) {
        if (sbuf_avail(&j->out)) return (ssize_t)sbuf_take(&j->out, buf, max);
        if (j->sent_tail) return MHD_CONTENT_READER_END_OF_STREAM;
        if (!j->sent_head) {
            srv_sse_head(j, j->srv->model_name);
            j->sent_head = true;
            continue;
        }
        bool done;
        if (format_pending(j, &done)) continue;
        pthread_mutex_lock(&j->mu);
        if (j->done || sbuf_avail(&j->pending)) { /* arrived meanwhile */
            pthread_mutex_unlock(&j->mu);
            continue;
        }
        if (atomic_load(&j->srv->stopping) || j->client_gone || !j->conn) {
            pthread_mutex_unlock(&j->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        /* suspend under the lock: the engine's resume (under it too) comes strictly after */
        j->suspended = true;
        MHD_suspend_connection(j->conn);
        pthread_mutex_unlock(&j->mu);
        return 0;
    }
}

static void stream_free(void *cls) { srv_job_unref(cls); }

struct MHD_Response *srv_job_stream_response(srv_job *j)
{
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, j, stream_free);
    if (!r) return NULL;
    pthread_mutex_lock(&j->mu);
    j->refs++; /* the response's */
    pthread_mutex_unlock(&j->mu);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            j->kind == SRV_INTERACTIVE ? "application/x-ndjson" : "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    return r;
}

void srv_job_suspend_until_done(srv_job *j)
{
    pthread_mutex_lock(&j->mu);
    if (!j->done && j->conn) {
        j->suspended = true;
        MHD_suspend_connection(j->conn);
    }
    pthread_mutex_unlock(&j->mu);
}

void srv_job_detach(srv_job *j)
{
    list_remove(j);
    pthread_mutex_lock(&j->mu);
    j->conn = NULL;
    j->suspended = false;
    if (j->req) ignis_request_cancel(j->req); /* the client will not read the rest */
    pthread_mutex_unlock(&j->mu);
}

/* A hung-up client reads as end-of-file (0) or an error other than "would block". */
static bool client_hung_up(int fd)
{
    if (fd < 0) return false;
    char b;
    ssize_t r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void srv_jobs_check_clients(ignis_server *s)
{
    pthread_mutex_lock(&s->jobs_mu);
    for (int i = 0; i < s->n_jobs; i++) {
        srv_job *j = s->jobs[i];
        pthread_mutex_lock(&j->mu);
        /* only while suspended is the socket ours to look at: MHD is not using it */
        if (j->suspended && !j->client_gone && client_hung_up(j->fd)) {
            j->client_gone = true;
            if (j->req) ignis_request_cancel(j->req);
        }
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_unlock(&s->jobs_mu);
}

void srv_jobs_cancel_all(ignis_server *s)
{
    pthread_mutex_lock(&s->jobs_mu);
    for (int i = 0; i < s->n_jobs; i++) {
        srv_job *j = s->jobs[i];
        pthread_mutex_lock(&j->mu);
        if (j->req) ignis_request_cancel(j->req);
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_unlock(&s->jobs_mu);
}

void srv_jobs_resume_all(ignis_server *s)
{
    pthread_mutex_lock(&s->jobs_mu);
    for (int i = 0; i < s->n_jobs; i++) {
        srv_job *j = s->jobs[i];
        pthread_mutex_lock(&j->mu);
        wake_locked(j);
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_unlock(&s->jobs_mu);
}

int srv_jobs_count(ignis_server *s)
{
    pthread_mutex_lock(&s->jobs_mu);
    int n = s->n_jobs;
    pthread_mutex_unlock(&s->jobs_mu);
    return n;
}
