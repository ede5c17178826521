/*
 * The server's public face: start (bind and serve), attach a model, stop gracefully, and
 * the watchdog thread that notices clients hanging up while their connection waits.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "server/server_internal.h"

#define WATCHDOG_PERIOD_MS 50
#define DEFAULT_MAX_BODY (16u << 20)

void ignis_server_opts_init(ignis_server_opts *o)
{
    memset(o, 0, sizeof *o);
    o->access_log = true;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void *watchdog_main(void *arg)
{
    ignis_server *s = arg;
    while (!atomic_load(&s->watchdog_stop)) {
        srv_jobs_check_clients(s);
        struct timespec ts = {0, WATCHDOG_PERIOD_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void server_free(ignis_server *s)
{
    if (s->engine) ignis_engine_destroy(s->engine);
    ignis_chat_template_free(s->tmpl);
    free(s->tmpl_stop_ids);
    free(s->tmpl_stops);
    srv_sessions_free(s->sessions);
    srv_metrics_destroy(&s->metrics);
    pthread_mutex_destroy(&s->jobs_mu);
    free(s->jobs);
    free(s->host);
    free(s->model_name);
    free(s->model_path);
    free(s->chat_template);
    for (int i = 0; i < s->n_api_keys; i++)
        free(s->api_keys[i]);
    free(s->api_keys);
    free(s);
}

/* The served name: opts.model_name, else the model path's last component. */
static char *served_name(const ignis_server_opts *o)
{
    if (o->model_name && *o->model_name) return dup_or_null(o->model_name);
    const char *p = o->model_path && *o->model_path ? o->model_path : "ignis";
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && p[b - 1] != '/')
        b--;
    return strndup(p + b, n - b);
}

ignis_status ignis_server_start(const ignis_server_opts *opts, ignis_server **out)
{
    if (out) *out = NULL;
    if (!opts || !out) return ig_err(IGNIS_E_ARG, "ignis_server_start: NULL argument");
    if (opts->port < 0 || opts->port > 65535)
        return ig_err(IGNIS_E_ARG, "ignis_server_start: port %d is outside [0, 65535]", opts->port);
    if (opts->n_api_keys < 0 || (opts->n_api_keys > 0 && !opts->api_keys))
        return ig_err(IGNIS_E_ARG, "ignis_server_start: bad api_keys (%d keys)", opts->n_api_keys);
    if (opts->max_waiting < 0 || opts->max_connections < 0 || opts->http_threads < 0)
        return ig_err(IGNIS_E_ARG, "ignis_server_start: max_waiting, max_connections and http_threads must be >= 0");
    ignis_server *s = calloc(1, sizeof *s);
    if (!s) return ig_err(IGNIS_E_NOMEM, "out of memory for a server");
    pthread_mutex_init(&s->jobs_mu, NULL);
    srv_metrics_init(&s->metrics);
    s->opts = *opts;
    if (!s->opts.max_body_bytes) s->opts.max_body_bytes = DEFAULT_MAX_BODY;
    if (!s->opts.max_connections) s->opts.max_connections = 16384;
    if (!s->opts.http_threads) s->opts.http_threads = 1;
    s->host = dup_or_null(opts->host ? opts->host : "0.0.0.0");
    s->model_name = served_name(opts);
    s->name_given = opts->model_name && *opts->model_name;
    s->model_path = dup_or_null(opts->model_path);
    s->chat_template = dup_or_null(opts->chat_template);
    s->sessions = srv_sessions_new();
    bool ok = s->host && s->model_name && s->sessions && (!opts->model_path || s->model_path) &&
              (!opts->chat_template || s->chat_template);
    if (ok && opts->n_api_keys > 0) {
        s->api_keys = calloc((size_t)opts->n_api_keys, sizeof(char *));
        ok = s->api_keys != NULL;
        for (int i = 0; ok && i < opts->n_api_keys; i++) {
            if (!opts->api_keys[i] || !*opts->api_keys[i]) {
                server_free(s);
                return ig_err(IGNIS_E_ARG, "ignis_server_start: api key %d is empty", i);
            }
            ok = (s->api_keys[i] = dup_or_null(opts->api_keys[i])) != NULL;
            s->n_api_keys = i + 1;
        }
    }
    if (!ok) {
        server_free(s);
        return ig_err(IGNIS_E_NOMEM, "out of memory starting the server");
    }
    s->opts.host = s->host;
    s->opts.model_name = s->model_name;
    s->opts.model_path = s->model_path;
    s->opts.chat_template = s->chat_template;
    s->opts.api_keys = (const char *const *)s->api_keys;
    s->created = (double)time(NULL);
    s->daemon = srv_http_start(s, s->host, opts->port, &s->port);
    if (!s->daemon) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", ignis_last_error());
        server_free(s);
        return ig_err(IGNIS_E_IO, "%s", msg);
    }
    if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
        MHD_stop_daemon(s->daemon);
        server_free(s);
        return ig_err(IGNIS_E_INTERNAL, "ignis_server_start: cannot start the watchdog thread");
    }
    s->watchdog_started = true;
    *out = s;
    return IGNIS_OK;
}

ignis_status ignis_server_attach(ignis_server *s, ignis_model *m, const ignis_engine_opts *eo)
{
    if (!s || !m) return ig_err(IGNIS_E_ARG, "ignis_server_attach: NULL argument");
    if (atomic_load(&s->ready) || s->engine) return ig_err(IGNIS_E_STATE, "ignis_server_attach: a model is attached");
    IG_TRY(ignis_model_get_info(m, &s->info));
    const char *path = s->model_path ? s->model_path : "synthetic:none";
    /* a served name (often an alias such as "gpt-3.5-turbo") picks the template only when
     * it names one; otherwise the model's own choice stands */
    ignis_status st = IGNIS_E_NOT_FOUND;
    if (s->name_given && !s->chat_template) st = ignis_chat_template_for_path(path, NULL, s->model_name, &s->tmpl);
    if (st != IGNIS_OK) st = ignis_chat_template_for_path(path, s->chat_template, NULL, &s->tmpl);
    if (st != IGNIS_OK) return ig_err_prefix(st, "server: chat template: ");
    s->tok = ignis_model_tokenizer(m);
    /* without a tokenizer there is no chat (it needs text): no stops either */
    if (s->tok)
        st =
            ignis_chat_stops(s->tmpl, s->tok, &s->tmpl_stop_ids, &s->n_tmpl_stop_ids, &s->tmpl_stops, &s->n_tmpl_stops);
    if (st == IGNIS_OK) st = ignis_engine_create(m, eo, &s->engine);
    if (st != IGNIS_OK) {
        free(s->tmpl_stop_ids), free(s->tmpl_stops);
        s->tmpl_stop_ids = NULL, s->tmpl_stops = NULL;
        s->n_tmpl_stop_ids = s->n_tmpl_stops = 0;
        ignis_chat_template_free(s->tmpl);
        s->tmpl = NULL;
        s->tok = NULL;
        return st;
    }
    ignis_engine_stats es;
    ignis_engine_get_stats(s->engine, &es);
    s->session_len = es.session_len;
    s->max_batch_size = es.max_batch_size;
    s->model = m;
    atomic_store(&s->ready, true);
    return IGNIS_OK;
}

int ignis_server_port(const ignis_server *s) { return s ? s->port : 0; }

ignis_status ignis_server_stats(ignis_server *s, ignis_engine_stats *out)
{
    if (!s || !out) return ig_err(IGNIS_E_ARG, "ignis_server_stats: NULL argument");
    if (!atomic_load(&s->ready)) return ig_err(IGNIS_E_STATE, "ignis_server_stats: no model attached yet");
    return ignis_engine_get_stats(s->engine, out);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void ignis_server_stop(ignis_server *s, int drain_ms)
{
    if (!s) return;
    /* 1. no new work: close the listening socket, answer 503 on open connections */
    atomic_store(&s->draining, true);
    MHD_socket lfd = MHD_quiesce_daemon(s->daemon);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    /* 2. end what runs: each stream gets its finish_reason and [DONE] */
    srv_jobs_cancel_all(s);
    /* 3. let the last bytes go out */
    for (int waited = 0; srv_jobs_count(s) > 0 && waited < drain_ms; waited += 10)
        sleep_ms(10);
    /* 4. wake whatever still waits (MHD must not stop with suspended connections) */
    atomic_store(&s->stopping, true);
    atomic_store(&s->watchdog_stop, true);
    if (s->watchdog_started) pthread_join(s->watchdog, NULL);
    srv_jobs_resume_all(s);
    MHD_stop_daemon(s->daemon);
    server_free(s);
}
