/*
 * A stand-in OpenAI-compatible server for the harness' tests and for measuring the
 * client's ceiling: it streams answers at once (or with --delay-us between chunks), each
 * SSE chunk carrying --tokens-per-chunk tokens of "the" (one token each in the Llama-2
 * vocabulary: the answer "the the the ..." tokenizes to exactly max_tokens ids).
 *
 *   bench_standin_server [--port P (0: any)] [--tokens-per-chunk K] [--delay-us D]
 *                        [--no-usage] [--no-text] [--threads N] [--metrics-delay-ms M]
 * --no-text: like a server without a tokenizer, one chunk per token with empty text.
 * --metrics-delay-ms: /metrics answers after M ms (as a server that answers it between
 * decode steps), so a test can show that scraping never holds up the streams.
 * Prints "port N" on stdout once listening; stops on SIGTERM/SIGINT.
 * Endpoints: GET /health, GET /v1/models, GET /metrics (Prometheus, vLLM names),
 * POST /v1/completions and /v1/chat/completions (stream true; max_tokens; usage last).
 */
#include <jansson.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_k = 1, g_delay_us = 0, g_usage = 1, g_no_text = 0, g_metrics_delay_ms = 0;
static volatile sig_atomic_t g_stop;
static volatile int g_running;

typedef struct conn {
    char *body;
    size_t len;
} conn;

typedef struct stream {
    int max_tokens, sent, prompt_tokens;
    int chat, phase; /* 0 tokens, 1 usage, 2 done marker, 3 end */
} stream;

static void on_stop(int sig) { (void)sig, g_stop = 1; }

static ssize_t produce(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream *s = cls;
    (void)pos;
    if (s->phase == 0 && s->sent < s->max_tokens) {
        if (g_delay_us && s->sent) usleep((useconds_t)g_delay_us);
        char text[4096];
        size_t tl = 0;
        int k;
        text[0] = 0;
        for (k = 0; k < (g_no_text ? 1 : g_k) && s->sent + k < s->max_tokens && tl + 8 < sizeof text; k++)
            if (!g_no_text)
                tl += (size_t)snprintf(text + tl, sizeof text - tl, "%s", s->sent + k == 0 ? "the" : " the");
        int n = s->chat
                    ? snprintf(buf, max,
                               "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"standin\","
                               "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"finish_reason\":null}]}\n\n",
                               text)
                    : snprintf(buf, max,
                               "data: {\"id\":\"c\",\"object\":\"text_completion\",\"model\":\"standin\","
                               "\"choices\":[{\"index\":0,\"text\":\"%s\",\"finish_reason\":null}]}\n\n",
                               text);
        if (n < 0 || (size_t)n >= max) return 0; /* buffer too small now: called again */
        s->sent += k;
        if (s->sent >= s->max_tokens) s->phase = 1;
        return n;
    }
    if (s->phase <= 1) {
        s->phase = 2;
        if (g_usage) {
            int n = snprintf(buf, max,
                             "data: {\"id\":\"c\",\"model\":\"standin\",\"choices\":[],\"usage\":{\"prompt_tokens\":%d,"
                             "\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n",
                             s->prompt_tokens, s->sent, s->prompt_tokens + s->sent);
            if (n > 0 && (size_t)n < max) return n;
        }
    }
    if (s->phase == 2) {
        s->phase = 3;
        return snprintf(buf, max, "data: [DONE]\n\n");
    }
    return MHD_CONTENT_READER_END_OF_STREAM;
}

static void stream_free(void *cls)
{
    free(cls);
    __atomic_sub_fetch(&g_running, 1, __ATOMIC_RELAXED);
}

static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *type, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *data, size_t *size, void **ctx)
{
    (void)cls, (void)version;
    if (!*ctx) {
        *ctx = calloc(1, sizeof(conn));
        return *ctx ? MHD_YES : MHD_NO;
    }
    conn *cn = *ctx;
    if (*size) {
        char *b = realloc(cn->body, cn->len + *size + 1);
        if (!b) return MHD_NO;
        memcpy(b + cn->len, data, *size);
        cn->len += *size;
        b[cn->len] = 0;
        cn->body = b;
        *size = 0;
        return MHD_YES;
    }
    if (!strcmp(method, "GET")) {
        if (!strcmp(url, "/health")) return reply(c, 200, "text/plain", "ok");
        if (!strcmp(url, "/v1/models"))
            return reply(c, 200, "application/json", "{\"object\":\"list\",\"data\":[{\"id\":\"standin\"}]}");
        if (!strcmp(url, "/metrics")) {
            for (int ms = 0; ms < g_metrics_delay_ms && !g_stop; ms += 10) /* stoppable */
                usleep(10000);
            char m[256];
            snprintf(m, sizeof m,
                     "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name=\"standin\"} %d\n"
                     "vllm:num_requests_waiting{model_name=\"standin\"} 0\nvllm:kv_cache_usage_perc 0.25\n",
                     g_running);
            return reply(c, 200, "text/plain; version=0.0.4", m);
        }
        return reply(c, 404, "application/json", "{\"error\":{\"message\":\"not found\"}}");
    }
    int chat = !strcmp(url, "/v1/chat/completions");
    if (!chat && strcmp(url, "/v1/completions"))
        return reply(c, 404, "application/json", "{\"error\":{\"message\":\"not found\"}}");
    json_t *j = json_loads(cn->body ? cn->body : "", 0, NULL);
    json_t *mt = json_object_get(j, "max_tokens");
    if (!j || !json_is_integer(mt) || json_integer_value(mt) < 1) {
        json_decref(j);
        return reply(c, 400, "application/json", "{\"error\":{\"message\":\"max_tokens missing\"}}");
    }
    stream *s = calloc(1, sizeof *s);
    s->max_tokens = (int)json_integer_value(mt);
    s->chat = chat;
    json_t *p = json_object_get(j, "prompt");
    s->prompt_tokens = json_is_array(p) ? (int)json_array_size(p) : 1;
    json_decref(j);
    __atomic_add_fetch(&g_running, 1, __ATOMIC_RELAXED);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, produce, s, stream_free);
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

static void done(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode t)
{
    (void)cls, (void)c, (void)t;
    conn *cn = *ctx;
    if (cn) free(cn->body);
    free(cn);
    *ctx = NULL;
}

int main(int argc, char **argv)
{
    int port = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-usage")) {
            g_usage = 0;
            continue;
        }
        if (!strcmp(argv[i], "--no-text")) {
            g_no_text = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "standin: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--port"))
            port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens-per-chunk"))
            g_k = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--delay-us"))
            g_delay_us = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--metrics-delay-ms"))
            g_metrics_delay_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "standin: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (g_k < 1) g_k = 1;
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    signal(SIGPIPE, SIG_IGN);
    unsigned flags = MHD_USE_ERROR_LOG | MHD_USE_INTERNAL_POLLING_THREAD |
                     (threads > 0 ? MHD_USE_EPOLL : MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL);
    struct MHD_Daemon *d =
        threads > 0 ? MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, NULL, MHD_OPTION_NOTIFY_COMPLETED,
                                       done, NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
                                       MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_END)
                    : MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, NULL, MHD_OPTION_NOTIFY_COMPLETED,
                                       done, NULL, MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "standin: cannot listen on port %d\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("port %u\n", info ? info->port : 0);
    fflush(stdout);
    while (!g_stop)
        pause();
    MHD_stop_daemon(d);
    return 0;
}
