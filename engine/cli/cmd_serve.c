/*
 * ignis serve api_server MODEL [options]: the OpenAI-compatible server (engine/server/),
 * with LMDeploy's command line. The server listens first (503 while the model loads),
 * then serves until SIGINT/SIGTERM, when it stops gracefully and exits 0.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

#include "cli.h"
#include "env_opts.h"

#define DEFAULT_PORT 23333
#define DRAIN_MS 3000 /* how long in-flight responses get to go out on shutdown */

static const char *k_help =
    "usage: ignis serve api_server MODEL [options]\n"
    "\n"
    "An OpenAI-compatible HTTP server: /v1/models, /v1/completions, /v1/chat/completions,\n"
    "/v1/chat/interactive, /v1/encode, /health, /metrics (see engine/server/README.md).\n"
    "MODEL is a workspace, a Hugging Face model directory or synthetic:SHAPE.\n"
    "\n"
    "server options:\n"
    "  --server-name HOST            address to listen on (default 0.0.0.0)\n"
    "  --server-port PORT            port (default 23333; 0 picks a free one, printed at startup)\n"
    "  --model-name NAME             name served in /v1/models and expected in \"model\"\n"
    "                                (default: MODEL's last path component); picks the chat template\n"
    "  --api-keys KEY [KEY ...]      require \"Authorization: Bearer KEY\" on /v1/ endpoints\n"
    "  --max-body-bytes N            larger request bodies get 413 (default 16777216)\n"
    "  --max-waiting N               queued requests beyond N get 503 + Retry-After (default: no limit)\n"
    "  --max-connections N           concurrent connections (default 16384)\n"
    "  --http-threads N              threads serving HTTP (default 1)\n"
    "  --log-level LEVEL             error|warning|info|debug (default info: startup and access log)\n"
    "  --no-access-log               no per-request log line\n"
    "\n";

typedef struct serve_args {
    const char *model;
    ignis_engine_opts eo;
    ignis_server_opts so;
    const char **keys;
    int n_keys;
    ignis_log_level level;
} serve_args;

static bool parse_level(const char *v, ignis_log_level *out)
{
    static const struct {
        const char *name;
        ignis_log_level level;
    } k[] = {{"error", IGNIS_LOG_ERROR},
             {"warning", IGNIS_LOG_WARN},
             {"warn", IGNIS_LOG_WARN},
             {"info", IGNIS_LOG_INFO},
             {"debug", IGNIS_LOG_DEBUG}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!strcasecmp(v, k[i].name)) {
            *out = k[i].level;
            return true;
        }
    return false;
}

/* Returns 0 to go on, else the exit code (help: 0 after printing). */
static int parse_args(int argc, char **argv, serve_args *a, bool *help)
{
    const char *cmd = "serve";
    long n;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_engine_flag(cmd, argc, argv, &i, &a->eo);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            *help = true;
            return 0;
        }
        if (f[0] != '-') {
            if (i == 1 && !strcmp(f, "api_server")) continue;
            if (a->model) return cli_usage_error(cmd, "unexpected argument '%s' (MODEL is '%s')", f, a->model);
            int bw = cli_backend_word(cmd, f); /* `serve api_server turbomind MODEL` */
            if (bw < 0) return 2;
            if (bw == 0) a->model = f;
            continue;
        }
        if (!strcmp(f, "--api-keys")) {
            while (i + 1 < argc && argv[i + 1][0] != '-')
                a->keys[a->n_keys++] = argv[++i];
            if (a->n_keys == 0) return cli_usage_error(cmd, "--api-keys needs at least one key");
            continue;
        }
        if (!strcmp(f, "--no-access-log")) {
            a->so.access_log = false;
            continue;
        }
        if (!v) return cli_usage_error(cmd, "%s needs a value", f);
        i++;
        if (!strcmp(f, "--server-name")) {
            a->so.host = v;
        } else if (!strcmp(f, "--model-name")) {
            a->so.model_name = v;
        } else if (!strcmp(f, "--log-level")) {
            if (!parse_level(v, &a->level))
                return cli_usage_error(cmd, "--log-level expects error, warning, info or debug, got '%s'", v);
        } else if (!strcmp(f, "--server-port")) {
            if (!cli_int(f, v, 0, 65535, &n)) return 2;
            a->so.port = (int)n;
        } else if (!strcmp(f, "--max-body-bytes")) {
            if (!cli_int(f, v, 1, 1L << 40, &n)) return 2;
            a->so.max_body_bytes = (size_t)n;
        } else if (!strcmp(f, "--max-waiting")) {
            if (!cli_int(f, v, 0, 1 << 24, &n)) return 2;
            a->so.max_waiting = (int)n;
        } else if (!strcmp(f, "--max-connections")) {
            if (!cli_int(f, v, 1, 1 << 24, &n)) return 2;
            a->so.max_connections = (int)n;
        } else if (!strcmp(f, "--http-threads")) {
            if (!cli_int(f, v, 1, 256, &n)) return 2;
            a->so.http_threads = (int)n;
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", f);
        }
    }
    if (!a->model) return cli_usage_error(cmd, "missing MODEL (usage: ignis serve api_server MODEL [options])");
    return cli_check_model(cmd, a->model) ? 2 : 0;
}

/* Library messages (engine, access log) with a UTC timestamp, one line each. */
static void log_line(void *user, ignis_log_level level, const char *msg)
{
    (void)user;
    static const char *names[] = {"error", "warning", "info", "debug"};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: %s\n", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
            tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L, names[level], msg);
}

/* Connections need file descriptors: take the hard limit. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

typedef struct loader {
    serve_args *a;
    ignis_server *srv;
    ignis_model *model;
    atomic_int state; /* 0 loading, 1 ready, -1 failed */
    char error[1024];
} loader;

static void *load_main(void *arg)
{
    loader *l = arg;
    ignis_status st = ignis_model_open(l->a->model, &l->a->eo, &l->model);
    if (st == IGNIS_OK) st = ignis_server_attach(l->srv, l->model, &l->a->eo);
    if (st != IGNIS_OK) snprintf(l->error, sizeof l->error, "%s", ignis_last_error());
    atomic_store(&l->state, st == IGNIS_OK ? 1 : -1);
    return NULL;
}

static void print_ready(const serve_args *a, ignis_server *srv, ignis_model *m)
{
    ignis_model_info info;
    ignis_engine_stats st;
    ignis_model_get_info(m, &info);
    ignis_server_stats(srv, &st);
    fprintf(stderr,
            "ignis serve: ready: model %s (%s, %s) on backend %s; KV cache %d blocks of %d tokens; session_len %d, "
            "max batch %d, prefix caching %s%s\n",
            a->model, info.architecture, info.source, info.backend, st.kv_blocks_total, st.cache_block_seq_len,
            st.session_len, st.max_batch_size, st.prefix_caching ? "on" : "off",
            a->n_keys ? "; API keys required" : "");
}

/* Waits for the loader, a failure or a signal. Returns the signal, 0 when loaded, -1 on failure. */
static int wait_loaded(loader *l, const sigset_t *sigs)
{
    struct timespec tick = {0, 100 * 1000000L};
    for (;;) {
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (sig > 0) return sig;
        int state = atomic_load(&l->state);
        if (state != 0) return state > 0 ? 0 : -1;
    }
}

int cmd_serve(int argc, char **argv)
{
    /* main has split --name=value already (cli_split_equals) */
    const char **keys = calloc((size_t)argc + 1, sizeof(char *));
    if (!keys) {
        fprintf(stderr, "ignis serve: out of memory\n");
        return 1;
    }
    serve_args a = {0};
    ignis_engine_opts_init(&a.eo);
    ignis_server_opts_init(&a.so);
    a.so.port = DEFAULT_PORT;
    a.keys = keys;
    a.level = IGNIS_LOG_INFO;
    bool help = false;
    int rc = parse_args(argc, argv, &a, &help);
    if (!rc && !help && !cli_env_engine_opts(&a.eo)) rc = 2; /* IGNIS_CUDA_*, as chat/generate */
    if (rc || help) {
        if (help) printf("%s%s", k_help, cli_engine_flags_help);
        free(keys);
        return rc;
    }
    a.so.api_keys = a.keys;
    a.so.n_api_keys = a.n_keys;
    a.so.model_path = a.model;
    a.so.chat_template = a.eo.chat_template;
    a.eo.progress = cli_progress;
    ignis_set_log(a.level, log_line, NULL);
    raise_fd_limit();

    /* Signals are taken by sigtimedwait below: block them before any thread starts. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an error return, not a kill */

    ignis_server *srv = NULL;
    ignis_status st = ignis_server_start(&a.so, &srv);
    if (st != IGNIS_OK) {
        free(keys);
        return cli_fail(st, "serve");
    }
    const char *host = a.so.host ? a.so.host : "0.0.0.0";
    fprintf(stderr, "ignis serve: listening on http://%s%s%s:%d (loading %s)\n", strchr(host, ':') ? "[" : "", host,
            strchr(host, ':') ? "]" : "", ignis_server_port(srv), a.model);

    loader l = {.a = &a, .srv = srv};
    atomic_init(&l.state, 0);
    pthread_t th;
    if (pthread_create(&th, NULL, load_main, &l) != 0) {
        ignis_server_stop(srv, 0);
        free(keys);
        fprintf(stderr, "ignis serve: cannot start the loader thread\n");
        return 1;
    }
    int sig = wait_loaded(&l, &sigs);
    if (sig != 0) {
        if (sig > 0) { /* still loading: nothing to drain; the process exit ends the load */
            fprintf(stderr, "ignis serve: stopped by %s while loading\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
            fflush(stderr);
            _exit(0);
        }
        pthread_join(th, NULL);
        fprintf(stderr, "ignis serve: loading %s: %s\n", a.model, l.error);
        ignis_server_stop(srv, 0);
        ignis_model_close(l.model);
        free(keys);
        return 1;
    }
    pthread_join(th, NULL);
    print_ready(&a, srv, l.model);
    while ((sig = sigwaitinfo(&sigs, NULL)) < 0 && errno == EINTR) {
    }
    fprintf(stderr, "ignis serve: %s: stopping (in-flight requests end with finish_reason \"abort\")\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    ignis_server_stop(srv, DRAIN_MS);
    ignis_model_close(l.model);
    fprintf(stderr, "ignis serve: stopped\n");
    free(keys);
    return 0;
}
