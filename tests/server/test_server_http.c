/*
 * The OpenAI-compatible server over raw HTTP (libcurl, sockets), in process on a free
 * loopback port with stories260K on the CPU: every endpoint, streaming against
 * non-streaming, the golden greedy continuation, the bad-input matrix (each status with
 * an error object while the server keeps serving), API keys, the waiting-queue limit,
 * client disconnects returning KV blocks, interactive sessions prefilling only new
 * tokens, and more than 1,024 open connections.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "srv_util.h"
#include "test_util.h"

static srv_fixture g_srv; /* the shared default server */

static int setup_default(void **st)
{
    (void)st;
    su_start(&g_srv, NULL, NULL);
    return 0;
}

static int teardown_default(void **st)
{
    (void)st;
    if (g_srv.srv) su_stop(&g_srv);
    return 0;
}

static const char *choice_text(json_t *resp)
{
    json_t *c = json_array_get(json_object_get(resp, "choices"), 0);
    json_t *t = json_object_get(c, "text");
    if (!t) t = json_object_get(json_object_get(c, "message"), "content");
    return json_string_value(t);
}

/* The concatenated text of an SSE stream, its finish_reason and its usage chunk. */
typedef struct sse {
    char text[65536];
    char finish[32];
    json_t *usage;
    bool done;
    int chunks;
} sse;

static void parse_sse(const char *body, sse *o)
{
    memset(o, 0, sizeof *o);
    for (const char *p = body; p && *p;) {
        const char *nl = strstr(p, "\n\n");
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (!strncmp(p, "data: ", 6)) {
            if (!strncmp(p + 6, "[DONE]", 6)) {
                o->done = true;
            } else {
                json_t *j = json_loadb(p + 6, len - 6, 0, NULL);
                if (!j) fail_msg("SSE chunk is not JSON: %.*s", (int)len, p);
                o->chunks++;
                json_t *c = json_array_get(json_object_get(j, "choices"), 0);
                json_t *t = json_object_get(c, "text");
                if (!t) t = json_object_get(json_object_get(c, "delta"), "content");
                if (json_is_string(t)) strncat(o->text, json_string_value(t), sizeof o->text - strlen(o->text) - 1);
                const char *f = json_string_value(json_object_get(c, "finish_reason"));
                if (f) snprintf(o->finish, sizeof o->finish, "%s", f);
                json_t *u = json_object_get(j, "usage");
                if (json_is_object(u)) o->usage = json_incref(u);
                json_decref(j);
            }
        } else if (len) {
            fail_msg("stream line is not an SSE data line: %.*s", (int)len, p);
        }
        p = nl ? nl + 2 : NULL;
    }
}

static void test_health_models_and_encode(void **st)
{
    (void)st;
    su_resp r = su_http(g_srv.port, "GET", "/health", NULL, NULL);
    assert_int_equal(r.status, 200);
    su_resp_free(&r);
    r = su_http(g_srv.port, "GET", "/v1/models", NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *m = json_array_get(json_object_get(r.json, "data"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "id")), "stories");
    assert_string_equal(json_string_value(json_object_get(r.json, "object")), "list");
    su_resp_free(&r);
    /* stories260K's SentencePiece ids for "Once upon a time" with BOS (test_tokenizer_api pins them) */
    r = su_http(g_srv.port, "POST", "/v1/encode", "{\"input\":\"Once upon a time\"}", NULL);
    assert_int_equal(r.status, 200);
    json_t *ids = json_object_get(r.json, "input_ids");
    const int want[] = {1, 403, 407, 261, 378};
    assert_int_equal(json_array_size(ids), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(json_integer_value(json_array_get(ids, (size_t)i)), want[i]);
    assert_int_equal(json_integer_value(json_object_get(r.json, "length")), 5);
    su_resp_free(&r);
}

static char *lstrip(char *s)
{
    while (*s == ' ' || *s == '\n')
        s++;
    return s;
}

static void test_greedy_completion_reproduces_golden_continuation(void **st)
{
    (void)st;
    /* llama2.c's greedy run from BOS (an independent implementation) */
    size_t n = 0;
    char *gold = tu_read_file(tu_asset("models/stories260K/greedy_t0_steps256.txt"), &n);
    if (!gold) fail_msg("golden text missing");
    su_resp r = su_http(g_srv.port, "POST", "/v1/completions",
                        "{\"model\":\"stories\",\"prompt\":[1],\"max_tokens\":64,\"temperature\":0}", NULL);
    assert_int_equal(r.status, 200);
    const char *t = choice_text(r.json);
    if (!t) fail_msg("no text: %s", r.body);
    char *got = lstrip((char *)t), *want = lstrip(gold);
    if (strlen(got) < 100 || strncmp(got, want, strlen(got)))
        fail_msg("greedy continuation differs from llama2.c's:\n got: %s\nwant: %.*s", got, (int)strlen(got), want);
    json_t *u = json_object_get(r.json, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 64);
    assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 1);
    assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), 65);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(r.json, "choices"), 0), "finish_reason")),
        "length");
    su_resp_free(&r);
    free(gold);
}

static void stream_vs_plain(const char *path, const char *fields)
{
    char plain[2048], streamed[2048];
    snprintf(plain, sizeof plain, "{%s}", fields);
    snprintf(streamed, sizeof streamed, "{%s,\"stream\":true,\"stream_options\":{\"include_usage\":true}}", fields);
    su_resp a = su_http(g_srv.port, "POST", path, plain, NULL);
    su_resp b = su_http(g_srv.port, "POST", path, streamed, NULL);
    assert_int_equal(a.status, 200);
    assert_int_equal(b.status, 200);
    if (!strstr(b.headers, "text/event-stream")) fail_msg("stream content type: %s", b.headers);
    sse s;
    parse_sse(b.body, &s);
    if (!s.done) fail_msg("stream did not end with data: [DONE]: %s", b.body);
    const char *t = choice_text(a.json);
    if (!t || strcmp(t, s.text)) fail_msg("%s: streamed text differs:\nplain:    %s\nstreamed: %s", path, t, s.text);
    const char *fin =
        json_string_value(json_object_get(json_array_get(json_object_get(a.json, "choices"), 0), "finish_reason"));
    assert_string_equal(fin, s.finish);
    if (!s.usage) fail_msg("include_usage: no usage chunk: %s", b.body);
    json_t *ua = json_object_get(a.json, "usage");
    if (!json_equal(ua, s.usage)) fail_msg("usage differs: %s", b.body);
    json_decref(s.usage);
    su_resp_free(&a);
    su_resp_free(&b);
}

static void test_streamed_text_equals_non_streamed(void **st)
{
    (void)st;
    stream_vs_plain("/v1/completions",
                    "\"prompt\":\"Once upon a time\",\"max_tokens\":60,\"temperature\":0.9,\"top_p\":0.9,\"seed\":7");
    stream_vs_plain("/v1/completions", "\"prompt\":\"Lily\",\"max_tokens\":40,\"temperature\":0,\"stop\":[\"park\"]");
    stream_vs_plain("/v1/chat/completions", "\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],"
                                            "\"max_tokens\":50,\"temperature\":0.7,\"top_k\":20,\"seed\":3");
}

typedef struct bad_case {
    const char *method, *path, *body;
    long status;
    const char *param; /* expected "param", NULL: not checked */
} bad_case;

static void test_bad_input_matrix_answers_errors_and_keeps_serving(void **st)
{
    (void)st;
    static const bad_case k[] = {
        {"POST", "/v1/completions", "{\"prompt\": \"x\",", 400, NULL},
        {"POST", "/v1/completions", "[1, 2]", 400, NULL},
        {"POST", "/v1/completions", "{}", 400, "prompt"},
        {"POST", "/v1/completions", "{\"prompt\": 5}", 400, "prompt"},
        {"POST", "/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": \"ten\"}", 400, "max_tokens"},
        {"POST", "/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 0}", 400, "max_tokens"},
        {"POST", "/v1/completions", "{\"prompt\": \"x\", \"temperature\": -0.5}", 400, "temperature"},
        {"POST", "/v1/completions", "{\"prompt\": \"x\", \"temperature\": 2.5}", 400, "temperature"},
        {"POST", "/v1/completions", "{\"prompt\": \"x\", \"top_p\": 0}", 400, "top_p"},
        {"POST", "/v1/completions", "{\"prompt\": \"x\", \"top_p\": 1.5}", 400, "top_p"},
        {"POST", "/v1/completions", "{\"prompt\": \"x\", \"top_k\": -1}", 400, "top_k"},
        {"POST", "/v1/completions", "{\"prompt\": \"x\", \"n\": 2}", 400, "n"},
        {"POST", "/v1/completions", "{\"prompt\": \"x\", \"stream\": \"yes\"}", 400, "stream"},
        {"POST", "/v1/completions", "{\"prompt\": \"x\", \"stop\": 5}", 400, "stop"},
        {"POST", "/v1/completions", "{\"prompt\": [1, 100000]}", 400, "prompt"},
        {"POST", "/v1/completions", "{\"prompt\": \"x\", \"model\": \"gpt-17\"}", 404, "model"},
        {"POST", "/v1/chat/completions", "{\"messages\": []}", 400, "messages"},
        {"POST", "/v1/chat/completions", "{\"messages\": \"hi\"}", 400, "messages"},
        {"POST", "/v1/chat/completions", "{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}", 400,
         "messages"},
        {"POST", "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\"}]}", 400, "messages"},
        {"POST", "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": 3}]}", 400, "messages"},
        {"POST", "/v1/chat/interactive", "{\"cancel\": true}", 400, "session_id"},
        {"GET", "/v1/completions", NULL, 405, NULL},
        {"POST", "/v1/models", "{}", 405, NULL},
        {"DELETE", "/health", NULL, 405, NULL},
        {"GET", "/v1/nothing", NULL, 404, NULL},
        {"GET", "/", NULL, 404, NULL},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        su_resp r = su_http(g_srv.port, k[i].method, k[i].path, k[i].body, NULL);
        char what[512];
        snprintf(what, sizeof what, "%s %s %s", k[i].method, k[i].path, k[i].body ? k[i].body : "");
        su_expect_error(&r, k[i].status, what);
        if (k[i].param) {
            const char *p = json_string_value(json_object_get(json_object_get(r.json, "error"), "param"));
            if (!p || strcmp(p, k[i].param)) fail_msg("%s: expected param '%s', got: %s", what, k[i].param, r.body);
        }
        if (k[i].status == 405 && !strstr(r.headers, "Allow:")) fail_msg("%s: 405 without Allow: %s", what, r.headers);
        su_resp_free(&r);
    }
    /* a prompt longer than the session: 400 naming the limit */
    char *body = malloc(200000);
    strcpy(body, "{\"prompt\":\"");
    for (int i = 0; i < 700; i++)
        strcat(body, "Once upon a time ");
    strcat(body, "\"}");
    su_resp r = su_http(g_srv.port, "POST", "/v1/completions", body, NULL);
    su_expect_error(&r, 400, "prompt over the session length");
    if (!strstr(r.body, "512")) fail_msg("the error should name the limit (512 tokens): %s", r.body);
    su_resp_free(&r);
    /* a body over --max-body-bytes (16 MiB by default): 413 */
    size_t big = (16u << 20) + 1024;
    char *huge = malloc(big + 64);
    memset(huge, ' ', big);
    memcpy(huge, "{\"prompt\":\"", 11);
    strcpy(huge + big, "\"}");
    r = su_http(g_srv.port, "POST", "/v1/completions", huge, NULL);
    su_expect_error(&r, 413, "body over the limit");
    su_resp_free(&r);
    free(huge);
    free(body);
    /* and the server still serves */
    r = su_http(g_srv.port, "POST", "/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":5}", NULL);
    assert_int_equal(r.status, 200);
    su_resp_free(&r);
    assert_true(su_wait_idle(g_srv.port, 30));
    assert_true(su_metric(g_srv.port, "ignis:kv_cache_blocks_used") == 0);
}

static double prefilled(void) { return su_metric(g_srv.port, "ignis:prefill_tokens_computed_total"); }

static void test_interactive_session_turns_prefill_only_new_tokens(void **st)
{
    (void)st;
    static const char *turns[] = {"Once upon a time", " Lily saw a cat.", " The cat"};
    int history = 0;
    for (int t = 0; t < 3; t++) {
        json_t *req = json_pack("{s:s, s:i, s:b, s:i, s:f}", "prompt", turns[t], "session_id", 42, "interactive_mode",
                                1, "request_output_len", 12, "temperature", 0.0);
        char *body = json_dumps(req, JSON_COMPACT);
        double before = prefilled();
        su_resp r = su_http(g_srv.port, "POST", "/v1/chat/interactive", body, NULL);
        double after = prefilled();
        assert_int_equal(r.status, 200);
        int in = (int)json_integer_value(json_object_get(r.json, "input_tokens"));
        int gen = (int)json_integer_value(json_object_get(r.json, "tokens"));
        int hist = (int)json_integer_value(json_object_get(r.json, "history_tokens"));
        if (hist != history) fail_msg("turn %d: history_tokens %d, expected %d: %s", t, hist, history, r.body);
        /* the turn's own tokens, plus (after the first) the previous answer's last token,
         * which was sampled but not yet run through the model */
        int want = in + (t > 0 ? 1 : 0);
        if ((int)(after - before) != want)
            fail_msg("turn %d: %g tokens prefilled, expected only the new %d (history %d)", t, after - before, want,
                     hist);
        history += in + gen;
        free(body);
        json_decref(req);
        su_resp_free(&r);
    }
    assert_true(su_metric(g_srv.port, "ignis:num_sessions") == 1);
    assert_true(su_metric(g_srv.port, "ignis:kv_cache_blocks_used") > 0);
    su_resp r = su_http(g_srv.port, "POST", "/v1/chat/interactive", "{\"session_id\":42,\"cancel\":true}", NULL);
    assert_int_equal(r.status, 200);
    su_resp_free(&r);
    for (int i = 0; i < 200 && su_metric(g_srv.port, "ignis:kv_cache_blocks_used") != 0; i++)
        usleep(10000);
    assert_true(su_metric(g_srv.port, "ignis:num_sessions") == 0);
    assert_true(su_metric(g_srv.port, "ignis:kv_cache_blocks_used") == 0);
}

static void test_more_than_1024_connections_are_served(void **st)
{
    (void)st;
    enum { N = 1100 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2 * N + 256) {
        print_message("skipping: the file descriptor limit (%llu) is below %d\n", (unsigned long long)rl.rlim_max,
                      2 * N + 256);
        skip();
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    int *fds = malloc(sizeof(int) * N);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_srv.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&a, sizeof a) != 0) fail_msg("connect %d failed", i);
    }
    /* all open at once; then each asks for /health over its own connection */
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < N; i++)
        if (write(fds[i], req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) fail_msg("write %d failed", i);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        char buf[1024] = "";
        size_t n = 0;
        while (n < sizeof buf - 1 && !strstr(buf, "{\"status\":\"ok\"}")) {
            ssize_t r = read(fds[i], buf + n, sizeof buf - 1 - n);
            if (r <= 0) break;
            n += (size_t)r;
            buf[n] = 0;
        }
        buf[n] = 0;
        ok += strncmp(buf, "HTTP/1.1 200", 12) == 0;
        close(fds[i]);
    }
    free(fds);
    assert_int_equal(ok, N);
}

/* ------------------------------------------------------------- own servers */

static void test_api_keys_guard_v1_but_not_health(void **st)
{
    (void)st;
    srv_fixture f;
    ignis_server_opts o;
    ignis_server_opts_init(&o);
    const char *keys[] = {"sk-one", "sk-two"};
    o.api_keys = keys;
    o.n_api_keys = 2;
    su_start(&f, &o, NULL);
    su_resp r = su_http(f.port, "GET", "/v1/models", NULL, NULL);
    su_expect_error(&r, 401, "no key");
    su_resp_free(&r);
    r = su_http(f.port, "GET", "/v1/models", NULL, "Authorization: Bearer sk-three");
    su_expect_error(&r, 401, "wrong key");
    su_resp_free(&r);
    r = su_http(f.port, "POST", "/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":3}", "Authorization: sk-two");
    su_expect_error(&r, 401, "key without Bearer");
    su_resp_free(&r);
    r = su_http(f.port, "GET", "/v1/models", NULL, "Authorization: Bearer sk-two");
    assert_int_equal(r.status, 200);
    su_resp_free(&r);
    r = su_http(f.port, "POST", "/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":3}",
                "Authorization: Bearer sk-one");
    assert_int_equal(r.status, 200);
    su_resp_free(&r);
    r = su_http(f.port, "GET", "/health", NULL, NULL);
    assert_int_equal(r.status, 200);
    su_resp_free(&r);
    su_stop(&f);
}

/* A chat template that writes BOS itself (a config whose user turn opens with "<s>"): the
 * server encodes the conversation as `ignis chat` does (ignis_chat_encode), with one BOS
 * where tokenizing the rendered text with BOS added gives two. */
static void test_chat_prompt_gets_one_bos_when_the_template_writes_it(void **st)
{
    (void)st;
    const char *path = tu_write_file(tu_tmpdir("srv-bos"), "bos.json", "{\"model_name\": \"base\", \"user\": \"<s>\"}");
    srv_fixture f;
    ignis_server_opts o;
    ignis_server_opts_init(&o);
    o.chat_template = path;
    su_start(&f, &o, NULL);
    const ignis_tokenizer *tok = ignis_model_tokenizer(f.model);
    static const char text[] = "<s>Once upon a time";
    int32_t *ids;
    int n;
    TU_CHECK(ignis_tokenize(tok, text, strlen(text), true, true, &ids, &n));
    int32_t bos = ignis_tokenizer_bos(tok);
    assert_true(n >= 2 && ids[0] == bos && ids[1] == bos); /* the doubled BOS to avoid */
    free(ids);
    su_resp r = su_http(f.port, "POST", "/v1/chat/completions",
                        "{\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":2}", NULL);
    assert_int_equal(r.status, 200);
    int prompt = (int)json_integer_value(json_object_get(json_object_get(r.json, "usage"), "prompt_tokens"));
    if (prompt != n - 1) fail_msg("prompt_tokens %d, expected %d (one BOS): %s", prompt, n - 1, r.body);
    su_resp_free(&r);
    su_stop(&f);
}

/* A raw client connection: the request is written at once; the test reads from it when
 * it wants and closes it to hang up (libcurl's multi interface stalled here under load). */
static int raw_request(int port, const char *body)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) fail_msg("connect to port %d failed", port);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    if (write(fd, req, (size_t)n) != n) fail_msg("write failed");
    return fd;
}

/* Waits (up to 20 s) for the first bytes of the answer on fd. */
static bool raw_first_bytes(int fd)
{
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    return read(fd, buf, sizeof buf) > 0;
}

static bool wait_metric(int port, const char *name, double want)
{
    for (int i = 0; i < 2000; i++, usleep(10000))
        if (su_metric(port, name) == want) return true;
    return false;
}

static double finished_count(int port, const char *reason)
{
    su_resp mr = su_http(port, "GET", "/metrics", NULL, NULL);
    char key[64];
    snprintf(key, sizeof key, "finished_reason=\"%s\"} ", reason);
    const char *line = strstr(mr.body, key);
    double v = line ? strtod(line + strlen(key), NULL) : -1;
    su_resp_free(&mr);
    return v;
}

static void test_full_queue_is_503_and_disconnects_free_kv(void **st)
{
    (void)st;
    srv_fixture f;
    ignis_server_opts o;
    ignis_server_opts_init(&o);
    o.max_waiting = 1;
    ignis_engine_opts eo;
    ignis_engine_opts_init(&eo);
    eo.max_batch_size = 1;  /* one runs, one waits, the third is turned away */
    eo.session_len = 16384; /* long enough that A and B are still running when the checks run */
    su_start(&f, &o, &eo);
    static const char *longreq = "{\"prompt\":\"Once upon a time\",\"max_tokens\":16000,\"ignore_eos\":true%s}";
    char b1[256], b2[256];
    snprintf(b1, sizeof b1, longreq, ",\"stream\":true");
    snprintf(b2, sizeof b2, longreq, "");
    int a = raw_request(f.port, b1);
    if (!raw_first_bytes(a)) fail_msg("the streaming request never sent a byte");
    /* the engine publishes its counts after a step: wait until they show A running */
    if (!wait_metric(f.port, "ignis:num_requests_waiting", 0)) fail_msg("A never left the waiting queue");
    int b = raw_request(f.port, b2);
    if (!wait_metric(f.port, "ignis:num_requests_waiting", 1)) fail_msg("the second request never waited");

    su_resp r = su_http(f.port, "POST", "/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":3}", NULL);
    if (r.status != 503)
        fail_msg("queue full: expected 503, got %ld (%s); running %g, waiting %g; ended: abort %g, length %g", r.status,
                 r.body, su_metric(f.port, "ignis:num_requests_running"),
                 su_metric(f.port, "ignis:num_requests_waiting"), finished_count(f.port, "abort"),
                 finished_count(f.port, "length"));
    su_expect_error(&r, 503, "queue full");
    if (!strstr(r.headers, "Retry-After:")) fail_msg("503 without Retry-After: %s", r.headers);
    su_resp_free(&r);
    assert_true(su_metric(f.port, "ignis:num_requests_running") == 1);
    assert_true(su_metric(f.port, "ignis:kv_cache_blocks_used") > 0);

    /* the queued client hangs up: its request goes, the running one stays */
    close(b);
    if (!wait_metric(f.port, "ignis:num_requests_waiting", 0)) fail_msg("the abandoned queued request stayed queued");
    if (su_metric(f.port, "ignis:num_requests_running") != 1)
        fail_msg("after the queued client left: running %g, aborted %g, length %g",
                 su_metric(f.port, "ignis:num_requests_running"), finished_count(f.port, "abort"),
                 finished_count(f.port, "length"));
    /* the streaming client hangs up mid-stream */
    close(a);
    if (!su_wait_idle(f.port, 30)) fail_msg("requests of gone clients still run");
    if (su_metric(f.port, "ignis:kv_cache_blocks_used") != 0 || su_metric(f.port, "ignis:kv_cache_usage_perc") != 0)
        fail_msg("KV blocks not returned after disconnects: %g used", su_metric(f.port, "ignis:kv_cache_blocks_used"));
    /* the engine's statistics go idle a moment before the last callback counts the end */
    double aborted = finished_count(f.port, "abort");
    for (int i = 0; i < 500 && aborted != 2; i++, usleep(10000))
        aborted = finished_count(f.port, "abort");
    if (aborted != 2) fail_msg("expected 2 aborted requests in /metrics, got %g", aborted);
    r = su_http(f.port, "POST", "/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":3}", NULL);
    assert_int_equal(r.status, 200); /* still serving */
    su_resp_free(&r);
    su_stop(&f);
}

int main(void)
{
    if (!tu_asset("models/stories260K/hf")) {
        fprintf(stderr, "%s: asset models/stories260K/hf not found (set IGNIS_ASSETS)\n",
                tu_assets_required() ? "error" : "skipping");
        return tu_assets_required() ? 1 : 77;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_health_models_and_encode),
        cmocka_unit_test(test_greedy_completion_reproduces_golden_continuation),
        cmocka_unit_test(test_streamed_text_equals_non_streamed),
        cmocka_unit_test(test_bad_input_matrix_answers_errors_and_keeps_serving),
        cmocka_unit_test(test_interactive_session_turns_prefill_only_new_tokens),
        cmocka_unit_test(test_more_than_1024_connections_are_served),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_api_keys_guard_v1_but_not_health),
        cmocka_unit_test(test_chat_prompt_gets_one_bos_when_the_template_writes_it),
        cmocka_unit_test(test_full_queue_is_503_and_disconnects_free_kv),
    };
    int rc = cmocka_run_group_tests_name("server", shared, setup_default, teardown_default);
    rc |= cmocka_run_group_tests_name("server_own", own, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
