/* ignis chat — an interactive terminal chat with LMDeploy's conventions: input ends with
 * an empty line, "exit" quits, "end" starts a new session, answers stream as generated,
 * Ctrl-C stops the current answer. Each answer is a request of one interactive session of
 * the request API (the same path as the server), so the conversation stays in the
 * session's KV cache between turns: each turn renders the whole conversation with the
 * chat template and sends only the tokens the session does not already hold (rewinding
 * past the first difference, when the rendering of the history differs from what the
 * model wrote). Stop words, EOS and finish reasons are the runtime's. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "env_opts.h"

static const char *k_usage =
    "usage: ignis chat MODEL [options]\n"
    "\n"
    "MODEL: a workspace or a Hugging Face model directory (synthetic models have no tokenizer)\n"
    "  --model-name NAME           LMDeploy-style name that picks the chat template (internlm2-chat-7b, ...)\n"
    "  --chat-template NAME|FILE   built-in (internlm2, llama2, llama3, qwen, chatml, base), \"hf\" for the\n"
    "                              model's own Jinja template, or a .json/.jinja file\n"
    "  --session-len N             max tokens of a session (history + answer)\n"
    "  --max-new-tokens N          max tokens per answer (default 1024, or the room left in the session)\n"
    "  --temperature T             sampling temperature, 0 = greedy (default 0.8)\n"
    "  --top-k K                   keep the K most likely tokens, 0 = off (default 40)\n"
    "  --top-p P                   nucleus sampling, 1 = off (default 0.8)\n"
    "  --repetition-penalty R      HF-style penalty, 1 = off (default 1)\n"
    "  --seed S                    sampling seed: the same seed gives the same answers (default: random)\n"
    "  --verbose                   per-turn statistics on stderr (also IGNIS_CHAT_STATS=1)\n"
    "\n"
    "At the prompt, end your input with an empty line (press Enter twice). Type 'exit' to quit,\n"
    "'end' to start a new session. Ctrl-C stops the current answer.\n"
    "IGNIS_CHAT_TOKEN_DELAY_MS=N slows streaming down by N ms per token (demos and tests).\n";

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

/* ------------------------------------------------------------------ growing text */

typedef struct text {
    char *p;
    size_t n, cap;
} text;

static bool text_add(text *t, const char *s, size_t n)
{
    if (t->n + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->n + n + 1)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) return false;
        t->p = p;
        t->cap = cap;
    }
    if (n) memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = 0;
    return true;
}

/* ------------------------------------------------------------------ session state */

/* LMDeploy's chat answers with at most this many tokens unless told otherwise (and never
 * more than the session has room for), so a base model that never says EOS does not fill
 * the session on its first answer. */
#define DEFAULT_ANSWER_TOKENS 1024

typedef struct chat {
    ignis_model *model;
    const ignis_tokenizer *tok;
    ignis_engine *engine;
    int capacity; /* most tokens a session holds */
    uint64_t session;
    int32_t *held; /* the tokens the session holds: what was sent and generated */
    int n_held, cap_held;
    ignis_chat_template *tmpl;
    ignis_chat_msg *msgs; /* history; contents are malloc'd */
    int n_msgs, cap_msgs;
    int32_t *stop_ids;
    int n_stop_ids;
    const char **stop_words; /* stop words that are not single tokens: matched in the text */
    int n_stop_words;
    ignis_gen_opts go; /* max_new_tokens 0: DEFAULT_ANSWER_TOKENS or the room left */
    uint64_t seed;
    int turn; /* turns in this session: seeds each answer */
    bool verbose;
    int delay_ms;
    /* per answer, written by the engine's thread in the event callback */
    text answer;
    bool io_error;
} chat;

static bool push_msg(chat *c, const char *role, const char *content, size_t len)
{
    if (c->n_msgs == c->cap_msgs) {
        int cap = c->cap_msgs ? c->cap_msgs * 2 : 16;
        ignis_chat_msg *m = realloc(c->msgs, sizeof *m * (size_t)cap);
        if (!m) return false;
        c->msgs = m;
        c->cap_msgs = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return false;
    memcpy(copy, content, len);
    copy[len] = 0;
    c->msgs[c->n_msgs].role = role;
    c->msgs[c->n_msgs].content = copy;
    c->n_msgs++;
    return true;
}

static void pop_msg(chat *c)
{
    if (!c->n_msgs) return;
    free((char *)c->msgs[--c->n_msgs].content);
}

static void clear_history(chat *c)
{
    while (c->n_msgs)
        pop_msg(c);
}

static bool held_set(chat *c, const int32_t *a, int na, ignis_request *r)
{
    int ng = r ? ignis_request_tokens(r, NULL, NULL, 0) : 0;
    if (na + ng > c->cap_held) {
        int32_t *h = realloc(c->held, sizeof(int32_t) * (size_t)(na + ng));
        if (!h) return false;
        c->held = h;
        c->cap_held = na + ng;
    }
    if (na) memmove(c->held, a, sizeof(int32_t) * (size_t)na);
    if (ng) ignis_request_tokens(r, c->held + na, NULL, ng);
    c->n_held = na + ng;
    return true;
}

/* "end": the session's blocks go back to the pool; the next turn starts a new one. */
static void new_session(chat *c)
{
    ignis_engine_end_session(c->engine, c->session); /* NOT_FOUND when it was never used */
    c->session++;
    c->n_held = 0;
    clear_history(c);
    c->turn = 0;
}

/* ------------------------------------------------------------------ streaming */

static void emit(chat *c, const char *p, size_t n)
{
    if (!n) return;
    if (fwrite(p, 1, n, stdout) != n) c->io_error = true;
    fflush(stdout);
}

/* Engine thread: prints the answer's text as it becomes final (the runtime holds back
 * what may start a stop word and cuts at one). */
static void on_event(void *user, ignis_request *r, const ignis_event *ev)
{
    (void)r;
    chat *c = user;
    if (ev->text_len) {
        if (!text_add(&c->answer, ev->text, ev->text_len)) c->io_error = true;
        emit(c, ev->text, ev->text_len);
    }
    if (ev->type == IGNIS_EVENT_TOKEN && c->delay_ms > 0 && !g_interrupted) {
        /* demos and tests: slow the stream down (this stalls the engine, which is alone) */
        struct timespec ts = {c->delay_ms / 1000, (long)(c->delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ------------------------------------------------------------------ one turn */

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb)
{
    int i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    return i;
}

static void print_session_full(const chat *c, int need)
{
    fprintf(stderr,
            "\nignis chat: the session is full: this turn needs %d tokens but the session holds at most %d "
            "(--session-len). Type 'end' to start a new session.\n",
            need, c->capacity);
}

/* Waits for the answer; Ctrl-C cancels it (the engine ends it at its next step). */
static void wait_answer(ignis_request *r)
{
    bool cancelled = false;
    while (ignis_request_wait(r, 50) != IGNIS_OK)
        if (g_interrupted && !cancelled) {
            ignis_request_cancel(r);
            cancelled = true;
        }
}

/* Runs one user turn. Returns 0, or 1 on a fatal error (message printed). */
static int run_turn(chat *c, const char *input, size_t len)
{
    if (!push_msg(c, "user", input, len)) return fprintf(stderr, "ignis chat: out of memory\n"), 1;
    char *prompt = NULL;
    ignis_status st = ignis_chat_render(c->tmpl, c->msgs, c->n_msgs, true, &prompt);
    if (st != IGNIS_OK) {
        /* the template rejected this conversation: report, forget the turn, keep going */
        fprintf(stderr, "ignis chat: %s\n", ignis_last_error());
        pop_msg(c);
        return 0;
    }
    int32_t *ids = NULL;
    int n = 0;
    st = ignis_chat_encode(c->tmpl, c->tok, prompt, &ids, &n); /* as the server encodes it */
    free(prompt);
    if (st != IGNIS_OK) {
        pop_msg(c);
        return cli_fail(st, "chat: tokenizing the conversation");
    }
    if (n + 1 > c->capacity) {
        print_session_full(c, n + 1);
        free(ids);
        pop_msg(c);
        return 0;
    }
    /* send what the session does not hold yet; at least one token must run to sample */
    int keep = common_prefix(c->held, c->n_held, ids, n);
    if (keep == n) keep = n - 1;

    ignis_request_params p;
    ignis_request_params_init(&p);
    p.prompt_ids = ids + keep;
    p.n_prompt_ids = n - keep;
    p.session_id = c->session;
    p.session_rewind = c->n_held - keep;
    p.sampling = c->go.sampling;
    p.sampling.seed = c->seed + (uint64_t)c->turn;
    /* By default at most DEFAULT_ANSWER_TOKENS; when the session has less room, no limit:
     * the answer then ends at the session's end and the user is told it is full. */
    int room = c->capacity - n;
    p.max_new_tokens = c->go.max_new_tokens > 0       ? c->go.max_new_tokens
                       : room > DEFAULT_ANSWER_TOKENS ? DEFAULT_ANSWER_TOKENS
                                                      : 0;
    p.stop_ids = c->stop_ids;
    p.n_stop_ids = c->n_stop_ids;
    p.stop_words = c->stop_words;
    p.n_stop_words = c->n_stop_words;
    p.on_event = on_event;
    p.user = c;
    c->answer.n = 0;
    g_interrupted = 0;
    ignis_request *r = NULL;
    if ((st = ignis_engine_submit(c->engine, &p, &r)) != IGNIS_OK) {
        free(ids);
        pop_msg(c);
        return cli_fail(st, "chat");
    }
    wait_answer(r);
    emit(c, "\n", 1);
    ignis_request_result res;
    ignis_request_get_result(r, &res);
    if (res.finish_reason == IGNIS_FINISH_ERROR) {
        fprintf(stderr, "ignis chat: %s\n", ignis_request_error(r));
        ignis_request_release(r);
        free(ids);
        pop_msg(c);
        return 1;
    }
    /* a request cancelled before it was admitted never reached the session */
    bool ok = res.queue_s < 0 || held_set(c, ids, n, r);
    free(ids);
    ignis_request_release(r);
    if (!ok || c->io_error) {
        fprintf(stderr, "ignis chat: %s\n", ok ? "cannot write the answer to stdout" : "out of memory");
        return 1;
    }
    if (!push_msg(c, "assistant", c->answer.p ? c->answer.p : "", c->answer.n))
        return fprintf(stderr, "ignis chat: out of memory\n"), 1;
    c->turn++;
    bool by_user = res.finish_reason == IGNIS_FINISH_CANCELLED && g_interrupted;
    if (by_user) fprintf(stderr, "[answer stopped by Ctrl-C]\n");
    if (res.finish_reason == IGNIS_FINISH_CAPACITY)
        fprintf(stderr,
                "ignis chat: the session is full (%d tokens, --session-len); the answer was cut. Type 'end' to "
                "start a new session.\n",
                c->capacity);
    if (c->verbose)
        fprintf(stderr,
                "[prefill %d tokens, reused %d cached, context %d] [generated %d tokens in %.3f s, finish: %s]\n",
                n - res.cached_tokens, res.cached_tokens, c->n_held, res.generated_tokens, res.e2e_s - res.queue_s,
                by_user ? "stopped" : ignis_finish_reason_name(res.finish_reason));
    return 0;
}

/* ------------------------------------------------------------------ input */

/* Reads lines until an empty one (LMDeploy's "double enter"). Returns 1 with *out set,
 * 0 at end of input with nothing read, -1 when Ctrl-C interrupted the input, -2 when out
 * of memory. */
static int read_input(text *in)
{
    in->n = 0;
    if (in->p) in->p[0] = 0;
    char *line = NULL;
    size_t lcap = 0;
    bool any = false;
    for (;;) {
        errno = 0;
        ssize_t r = getline(&line, &lcap, stdin);
        if (r < 0) {
            if (errno == ENOMEM) {
                free(line);
                return -2;
            }
            if (errno == EINTR && g_interrupted) {
                clearerr(stdin);
                free(line);
                return -1;
            }
            free(line);
            return any ? 1 : 0;
        }
        while (r > 0 && (line[r - 1] == '\n' || line[r - 1] == '\r'))
            line[--r] = 0;
        if (r == 0) break;
        if ((any && !text_add(in, "\n", 1)) || !text_add(in, line, (size_t)r)) {
            free(line);
            return -2;
        }
        any = true;
    }
    free(line);
    return 1;
}

static bool is_word(const text *in, const char *w)
{
    const char *p = in->p ? in->p : "";
    size_t a = 0, b = in->n;
    while (a < b && (p[a] == ' ' || p[a] == '\t' || p[a] == '\n'))
        a++;
    while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t' || p[b - 1] == '\n'))
        b--;
    return b - a == strlen(w) && !memcmp(p + a, w, b - a);
}

/* ------------------------------------------------------------------ setup */

/* The template's stop words split as the server splits them (ignis_chat_stops), plus the
 * tokenizer's EOS. */
static int setup_stops(chat *c)
{
    if (ignis_chat_stops(c->tmpl, c->tok, &c->stop_ids, &c->n_stop_ids, &c->stop_words, &c->n_stop_words) != IGNIS_OK)
        return fprintf(stderr, "ignis chat: %s\n", ignis_last_error()), 1;
    int32_t eos = ignis_tokenizer_eos(c->tok);
    if (eos < 0) return 0;
    int32_t *ids = realloc(c->stop_ids, sizeof(int32_t) * (size_t)(c->n_stop_ids + 1));
    if (!ids) return fprintf(stderr, "ignis chat: out of memory\n"), 1;
    c->stop_ids = ids;
    c->stop_ids[c->n_stop_ids++] = eos;
    return 0;
}

static void chat_free(chat *c)
{
    clear_history(c);
    free(c->msgs);
    free(c->stop_ids);
    free(c->stop_words);
    free(c->answer.p);
    free(c->held);
    ignis_engine_destroy(c->engine);
    ignis_chat_template_free(c->tmpl);
    ignis_model_close(c->model);
}

int cmd_chat(int argc, char **argv)
{
    const char *model = NULL, *model_name = NULL;
    ignis_engine_opts eo;
    ignis_engine_opts_init(&eo);
    if (!cli_env_engine_opts(&eo)) return 2;
    chat c;
    memset(&c, 0, sizeof c);
    ignis_gen_opts_init(&c.go); /* max_new_tokens 0: the default answer length */
    c.go.sampling.temperature = 0.8f;
    c.go.sampling.top_k = 40;
    c.go.sampling.top_p = 0.8f;
    c.go.sampling.repetition_penalty = 1.0f;
    bool seeded = false;
    const char *env = getenv("IGNIS_CHAT_STATS");
    c.verbose = env && !strcmp(env, "1");
    if ((env = getenv("IGNIS_CHAT_TOKEN_DELAY_MS")) && *env) c.delay_ms = atoi(env);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_engine_flag("chat", argc, argv, &i, &eo);
        if (r == 0) r = cli_sampling_flag("chat", argc, argv, &i, &c.go, &seeded);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_print_help(k_usage, cli_engine_flags_help);
            return 0;
        }
#define VAL                                                                                                            \
    if (!v) return cli_usage_error("chat", "%s needs a value", a);                                                     \
    i++
        if (!strcmp(a, "--model-name")) {
            VAL;
            model_name = v;
        } else if (!strcmp(a, "--verbose")) {
            c.verbose = true;
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("chat", "unknown option '%s'", a);
        } else {
            int rc = cli_model_positional("chat", a, &model);
            if (rc) return rc;
        }
#undef VAL
    }
    int rc = cli_require_model("chat", model);
    if (rc) return rc;
    if (!strncmp(model, "synthetic:", 10)) {
        fprintf(stderr,
                "ignis chat: %s has no tokenizer, and chat needs one to turn your text into tokens; use a "
                "workspace or a Hugging Face model directory with tokenizer files (or 'ignis generate "
                "--prompt-ids' for synthetic models)\n",
                model);
        return 1;
    }
    c.seed = seeded ? c.go.sampling.seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

    /* the template first: a bad --chat-template should fail before a long model load */
    const char *override = eo.chat_template;
    ignis_status st = ignis_chat_template_for_path(model, override, model_name, &c.tmpl);
    if (st != IGNIS_OK) return cli_fail(st, "chat");
    eo.chat_template = NULL; /* resolved here; the engine does not render */
    eo.progress = cli_progress;
    if ((st = ignis_model_open(model, &eo, &c.model)) != IGNIS_OK) {
        chat_free(&c);
        return cli_fail(st, "chat");
    }
    c.tok = ignis_model_tokenizer(c.model);
    if (!c.tok) {
        fprintf(stderr,
                "ignis chat: %s has no tokenizer files (tokenizer.model or tokenizer.json), and chat needs one\n",
                model);
        chat_free(&c);
        return 1;
    }
    ignis_engine_stats es;
    if ((st = ignis_engine_create(c.model, &eo, &c.engine)) != IGNIS_OK ||
        (st = ignis_engine_get_stats(c.engine, &es)) != IGNIS_OK) {
        chat_free(&c);
        return cli_fail(st, "chat");
    }
    long long pool_tokens = (long long)es.kv_blocks_total * es.cache_block_seq_len;
    c.capacity = pool_tokens < es.session_len ? (int)pool_tokens : es.session_len;
    c.session = 1;
    if (setup_stops(&c)) {
        chat_free(&c);
        return 1;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: Ctrl-C at the prompt interrupts the read */
    sigaction(SIGINT, &sa, NULL);

    if (c.verbose) {
        ignis_model_info info;
        if (ignis_model_get_info(c.model, &info) == IGNIS_OK)
            fprintf(stderr, "[model %s (%s, %s backend), chat template %s, session %d tokens]\n", info.architecture,
                    info.source, info.backend, ignis_chat_template_name(c.tmpl), c.capacity);
    }

    text in = {0};
    rc = 0;
    for (;;) {
        printf("\ndouble enter to end input >>> ");
        fflush(stdout);
        int r = read_input(&in);
        if (r == -2) {
            fprintf(stderr, "ignis chat: out of memory reading the input\n");
            rc = 1;
            break;
        }
        if (r < 0) {
            g_interrupted = 0;
            printf("\n");
            continue;
        }
        if (r == 0) {
            printf("\n");
            break;
        }
        if (is_word(&in, "exit")) break;
        if (is_word(&in, "end")) {
            new_session(&c);
            if (c.verbose) fprintf(stderr, "[session reset]\n");
            continue;
        }
        if (!in.n) continue;
        if ((rc = run_turn(&c, in.p, in.n)) != 0) break;
    }
    free(in.p);
    chat_free(&c);
    return rc;
}
