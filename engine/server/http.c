/*
 * The HTTP front end on libmicrohttpd: an epoll daemon (so far more than 1,024
 * connections work), request bodies collected up to --max-body-bytes, then one handler
 * per route (handlers.c). Responses are queued here; generation responses wait on a
 * suspended connection (job.c) so no MHD thread ever blocks on the engine.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/clock.h"
#include "core/error.h"
#include "server/server_internal.h"
#include "server/trace.h"

#define IDLE_TIMEOUT_S 300 /* an idle keep-alive connection is closed after this */

enum MHD_Result srv_respond(srv_conn *c, struct MHD_Connection *conn, int status, const char *ctype, const char *body,
                            size_t len, const char *retry_after)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    if (ctype) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (retry_after) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        /* every route takes one method: name it */
        const char *allow = srv_route_method(c->path);
        if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    c->status = status;
    srv_metrics_http_status(&c->srv->metrics, status);
    return ret;
}

static enum MHD_Result respond_json(srv_conn *c, struct MHD_Connection *conn, int status, json_t *j,
                                    const char *retry_after)
{
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body) return srv_respond(c, conn, 500, "text/plain", "out of memory\n", 14, NULL);
    enum MHD_Result r = srv_respond(c, conn, status, "application/json", body, strlen(body), retry_after);
    free(body);
    return r;
}

enum MHD_Result srv_respond_json(srv_conn *c, struct MHD_Connection *conn, int status, json_t *j)
{
    return respond_json(c, conn, status, j, NULL);
}

enum MHD_Result srv_respond_error(srv_conn *c, struct MHD_Connection *conn, int status, const char *type,
                                  const char *param, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return respond_json(c, conn, status, srv_error_json(msg, type, param, code), status == 503 ? "1" : NULL);
}

static bool collect_body(srv_conn *c, const char *data, size_t n)
{
    if (c->too_large) return true;
    if (c->body.len + n > c->srv->opts.max_body_bytes) {
        c->too_large = true;
        sbuf_free(&c->body);
        return true;
    }
    return sbuf_add(&c->body, data, n);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    ignis_server *s = cls;
    srv_conn *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return MHD_NO;
        c->srv = s;
        c->id = atomic_fetch_add(&s->next_id, 1) + 1;
        c->t0 = ig_now();
        c->ttft_ms = -1;
        snprintf(c->method, sizeof c->method, "%s", method);
        snprintf(c->path, sizeof c->path, "%s", url);
        *con_cls = c;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->opts.max_body_bytes) {
            c->too_large = true;
            return srv_respond_error(c, conn, 413, "invalid_request_error", NULL, "request_too_large",
                                     "request body of %s bytes exceeds the limit of %zu bytes (--max-body-bytes)", cl,
                                     s->opts.max_body_bytes);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        bool ok = collect_body(c, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return ok ? MHD_YES : MHD_NO;
    }
    SRV_TRACE_PUSH("http");
    enum MHD_Result r;
    if (c->too_large)
        r = srv_respond_error(c, conn, 413, "invalid_request_error", NULL, "request_too_large",
                              "request body exceeds the limit of %zu bytes (--max-body-bytes)", s->opts.max_body_bytes);
    else
        r = srv_route(c, conn);
    SRV_TRACE_POP();
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe; /* completed or aborted alike: detach cancels what still runs */
    srv_conn *c = *con_cls;
    if (!c) return;
    if (c->job) {
        srv_job *j = c->job;
        pthread_mutex_lock(&j->mu);
        c->generated_tokens = j->n_generated;
        if (j->done && j->result.ttft_s >= 0) c->ttft_ms = j->result.ttft_s * 1e3;
        pthread_mutex_unlock(&j->mu);
        srv_job_detach(c->job);
        srv_job_unref(c->job);
    }
    if (c->srv->opts.access_log) srv_access_log(c->srv, c);
    sbuf_free(&c->body);
    free(c);
    *con_cls = NULL;
}

/* libmicrohttpd's own complaints go to our log sink. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    ig_log(IGNIS_LOG_WARN, "http: %s", msg);
}

/* host:port -> a socket address (numeric or a name, IPv4 or IPv6). */
static bool resolve(const char *host, int port, struct sockaddr_storage *ss, bool *v6)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    if (getaddrinfo(host, ps, &hints, &res) != 0 || !res) return false;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return true;
}

struct MHD_Daemon *srv_http_start(ignis_server *s, const char *host, int port, int *bound_port)
{
    struct sockaddr_storage ss;
    bool v6 = false;
    if (!resolve(host, port, &ss, &v6)) {
        ig_err(IGNIS_E_ARG, "server: cannot resolve the address '%s'", host);
        return NULL;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (v6) flags |= MHD_USE_IPv6;
    struct MHD_OptionItem pool[2] = {{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}};
    if (s->opts.http_threads > 1)
        pool[0] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, s->opts.http_threads, NULL};
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)s->opts.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_ARRAY, pool, MHD_OPTION_END);
    if (!d) {
        ig_err(IGNIS_E_IO, "server: cannot listen on %s:%d (address in use, or not allowed)", host, port);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = info ? info->port : port;
    return d;
}
