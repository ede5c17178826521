/* ignis chat — an interactive terminal chat with LMDeploy's conventions: input ends with
 * an empty line, "exit" quits, "end" starts a new session, answers stream as generated,
 * Ctrl-C stops the current answer. The conversation stays in the sequence's KV cache
 * between turns: each turn renders the whole conversation with the chat template and
 * prefills only what the cache does not already hold. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char *k_usage =
    "usage: ignis chat MODEL [options]\n"
    "\n"
    "MODEL: a workspace or a Hugging Face model directory (synthetic models have no tokenizer)\n"
    "  --model-name NAME           LMDeploy-style name that picks the chat template (internlm2-chat-7b, ...)\n"
    "  --chat-template NAME|FILE   built-in (internlm2, llama2, llama3, qwen, chatml, base), \"hf\" for the\n"
    "                              model's own Jinja template, or a .json/.jinja file\n"
    "  --session-len N             max tokens of a session (history + answer)\n"
    "  --max-new-tokens N          max tokens per answer (default: until a stop word or the session is full)\n"
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

typedef struct chat {
    ignis_model *model;
    const ignis_tokenizer *tok;
    ignis_seq *seq;
    ignis_chat_template *tmpl;
    ignis_chat_msg *msgs; /* history; contents are malloc'd */
    int n_msgs, cap_msgs;
    int32_t *stop_ids;
    int n_stop_ids;
    const char **stop_words; /* stop words that are not single tokens: matched in the text */
    int n_stop_words;
    ignis_gen_opts go;
    uint64_t seed;
    int turn; /* turns in this session: seeds each answer */
    bool verbose;
    int delay_ms;
    /* per answer */
    ignis_detok_stream *ds;
    text answer;
    size_t printed;
    bool stopped_by_word;
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

/* ------------------------------------------------------------------ streaming */

static void emit(chat *c, const char *p, size_t n)
{
    if (!n) return;
    if (fwrite(p, 1, n, stdout) != n) c->io_error = true;
    fflush(stdout);
}

/* Length of the longest suffix of s[0..n) that is a proper prefix of a stop word: that much
 * text is held back until it is clear whether a stop word is forming. */
static size_t holdback(const chat *c, const char *s, size_t n)
{
    size_t best = 0;
    for (int w = 0; w < c->n_stop_words; w++) {
        size_t wl = strlen(c->stop_words[w]);
        for (size_t k = wl - 1; k > best; k--)
            if (k <= n && !memcmp(s + n - k, c->stop_words[w], k)) {
                best = k;
                break;
            }
    }
    return best;
}

/* Takes newly final text: appends it to the answer, ends the answer at a stop word,
 * prints what can no longer be part of one. Returns true when a stop word was found. */
static bool take_text(chat *c, const char *p, size_t n)
{
    size_t from = c->answer.n;
    if (!text_add(&c->answer, p, n)) {
        c->io_error = true;
        return true;
    }
    for (int w = 0; w < c->n_stop_words; w++) {
        size_t wl = strlen(c->stop_words[w]);
        size_t start = from >= wl ? from - wl + 1 : 0;
        char *hit =
            c->answer.n >= start + wl ? memmem(c->answer.p + start, c->answer.n - start, c->stop_words[w], wl) : NULL;
        if (hit) {
            c->answer.n = (size_t)(hit - c->answer.p);
            c->answer.p[c->answer.n] = 0;
            if (c->answer.n > c->printed) emit(c, c->answer.p + c->printed, c->answer.n - c->printed);
            c->printed = c->answer.n;
            c->stopped_by_word = true;
            return true;
        }
    }
    size_t safe = c->answer.n - holdback(c, c->answer.p, c->answer.n);
    if (safe > c->printed) {
        emit(c, c->answer.p + c->printed, safe - c->printed);
        c->printed = safe;
    }
    return false;
}

static int on_token(void *user, int32_t tok)
{
    chat *c = user;
    const char *p;
    size_t n;
    bool stop = false;
    if (ignis_detok_stream_push(c->ds, tok, &p, &n) == IGNIS_OK && n) stop = take_text(c, p, n);
    if (c->delay_ms > 0 && !stop && !g_interrupted) {
        struct timespec ts = {c->delay_ms / 1000, (long)(c->delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return stop || g_interrupted || c->io_error;
}

/* ------------------------------------------------------------------ one turn */

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb)
{
    int i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    return i;
}

/* Encodes the rendered conversation. Built-in templates get the tokenizer's BOS (as
 * LMDeploy encodes with add_bos), Jinja templates write it themselves. */
static ignis_status encode(chat *c, const char *s, int32_t **ids, int *n)
{
    bool bos = ignis_chat_template_wants_bos(c->tmpl);
    ignis_status st = ignis_tokenize(c->tok, s, strlen(s), bos, true, ids, n);
    if (st != IGNIS_OK) return st;
    int32_t b = ignis_tokenizer_bos(c->tok);
    if (*n >= 2 && b >= 0 && (*ids)[0] == b && (*ids)[1] == b) {
        memmove(*ids, *ids + 1, sizeof(int32_t) * (size_t)(*n - 1));
        (*n)--;
    }
    return IGNIS_OK;
}

static void print_session_full(const chat *c, int need)
{
    fprintf(stderr,
            "\nignis chat: the session is full: this turn needs %d tokens but the session holds at most %d "
            "(--session-len). Type 'end' to start a new session.\n",
            need, ignis_seq_capacity(c->seq));
}

/* Runs one user turn. Returns 0, or 1 on a fatal error (message printed). */
static int run_turn(chat *c, const char *input, size_t len)
{
    if (!push_msg(c, "user", input, len)) return cli_fail(IGNIS_E_NOMEM, "chat");
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
    st = encode(c, prompt, &ids, &n);
    free(prompt);
    if (st != IGNIS_OK) {
        pop_msg(c);
        return cli_fail(st, "chat: tokenizing the conversation");
    }
    int cap = ignis_seq_capacity(c->seq);
    if (n + 1 > cap) {
        print_session_full(c, n + 1);
        free(ids);
        pop_msg(c);
        return 0;
    }
    /* reuse the cached prefix that still matches the rendered conversation */
    const int32_t *cached;
    int nc = ignis_seq_tokens(c->seq, &cached);
    int keep = common_prefix(cached, nc, ids, n);
    if (keep == n) keep = n - 1; /* at least one token must run to get the next logits */
    if (keep < nc && (st = ignis_seq_truncate(c->seq, keep)) != IGNIS_OK) {
        free(ids);
        pop_msg(c);
        return cli_fail(st, "chat");
    }

    c->go.sampling.seed = c->seed + (uint64_t)c->turn;
    c->answer.n = 0;
    c->printed = 0;
    c->stopped_by_word = false;
    g_interrupted = 0;
    if ((st = ignis_detok_stream_create(c->tok, true, &c->ds)) != IGNIS_OK) {
        free(ids);
        pop_msg(c);
        return cli_fail(st, "chat");
    }
    /* The answer continues the prompt: prime the stream with the prompt's last token (its
     * text discarded) so the first answer token keeps its leading space instead of being
     * decoded as the start of a text. The history then holds exactly what the model wrote. */
    const char *ignored;
    size_t ignored_n;
    if ((st = ignis_detok_stream_push(c->ds, ids[n - 1], &ignored, &ignored_n)) != IGNIS_OK) {
        free(ids);
        pop_msg(c);
        return cli_fail(st, "chat");
    }
    ignis_gen_stats gs;
    st = ignis_seq_generate(c->seq, ids + keep, n - keep, &c->go, &gs);
    free(ids);
    if (st == IGNIS_OK && !c->stopped_by_word && !c->io_error) {
        const char *p;
        size_t pn;
        if (ignis_detok_stream_flush(c->ds, &p, &pn) == IGNIS_OK && pn) take_text(c, p, pn);
        if (!c->stopped_by_word && c->answer.n > c->printed)
            emit(c, c->answer.p + c->printed, c->answer.n - c->printed);
    }
    ignis_detok_stream_free(c->ds);
    c->ds = NULL;
    emit(c, "\n", 1);
    if (st != IGNIS_OK) {
        pop_msg(c);
        if (st == IGNIS_E_CAPACITY) {
            print_session_full(c, n + 1);
            return 0;
        }
        return cli_fail(st, "chat: generating");
    }
    if (c->io_error) return cli_fail(IGNIS_E_IO, "chat: writing the answer");
    if (!push_msg(c, "assistant", c->answer.p ? c->answer.p : "", c->answer.n)) return cli_fail(IGNIS_E_NOMEM, "chat");
    c->turn++;
    if (g_interrupted) fprintf(stderr, "[answer stopped by Ctrl-C]\n");
    if (gs.finish_reason == IGNIS_FINISH_CAPACITY)
        fprintf(stderr,
                "ignis chat: the session is full (%d tokens, --session-len); the answer was cut. Type 'end' to "
                "start a new session.\n",
                cap);
    if (c->verbose)
        fprintf(stderr,
                "[prefill %d tokens, reused %d cached, context %d] [generated %d tokens in %.3f s, finish: %s]\n",
                gs.prompt_tokens, keep, ignis_seq_len(c->seq), gs.generated_tokens, gs.prefill_s + gs.decode_s,
                c->stopped_by_word ? "stop" : ignis_finish_reason_name(gs.finish_reason));
    return 0;
}

/* ------------------------------------------------------------------ input */

/* Reads lines until an empty one (LMDeploy's "double enter"). Returns 1 with *out set,
 * 0 at end of input with nothing read, -1 when Ctrl-C interrupted the input. */
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
        if (any) text_add(in, "\n", 1);
        text_add(in, line, (size_t)r);
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

static int setup_stops(chat *c)
{
    const char *const *words;
    int nw = ignis_chat_stop_words(c->tmpl, &words);
    c->stop_ids = malloc(sizeof(int32_t) * (size_t)(nw + 1));
    c->stop_words = malloc(sizeof(char *) * (size_t)(nw + 1));
    if (!c->stop_ids || !c->stop_words) return cli_fail(IGNIS_E_NOMEM, "chat");
    for (int i = 0; i < nw; i++) {
        int32_t id = ignis_token_id(c->tok, words[i]);
        if (id >= 0)
            c->stop_ids[c->n_stop_ids++] = id;
        else
            c->stop_words[c->n_stop_words++] = words[i];
    }
    int32_t eos = ignis_tokenizer_eos(c->tok);
    if (eos >= 0) c->stop_ids[c->n_stop_ids++] = eos;
    c->go.stop_ids = c->stop_ids;
    c->go.n_stop_ids = c->n_stop_ids;
    return 0;
}

static void chat_free(chat *c)
{
    clear_history(c);
    free(c->msgs);
    free(c->stop_ids);
    free(c->stop_words);
    free(c->answer.p);
    ignis_detok_stream_free(c->ds);
    ignis_seq_destroy(c->seq);
    ignis_chat_template_free(c->tmpl);
    ignis_model_close(c->model);
}

int cmd_chat(int argc, char **argv)
{
    const char *model = NULL, *model_name = NULL;
    ignis_engine_opts eo;
    ignis_engine_opts_init(&eo);
    chat c;
    memset(&c, 0, sizeof c);
    ignis_gen_opts_init(&c.go);
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
            printf("%s\n%s", k_usage, cli_engine_flags_help);
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
        } else if (!model) {
            int bw = cli_backend_word("chat", a); /* `chat turbomind MODEL` */
            if (bw < 0) return 2;
            if (bw == 0) model = a;
        } else {
            return cli_usage_error("chat", "unexpected argument '%s'", a);
        }
#undef VAL
    }
    if (!model) return cli_usage_error("chat", "no MODEL given");
    if (cli_check_model("chat", model)) return 2;
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
    if (st != IGNIS_OK) return cli_fail(st, "chat template");
    eo.chat_template = NULL; /* resolved here; the engine does not render */
    eo.progress = cli_progress;
    if ((st = ignis_model_open(model, &eo, &c.model)) != IGNIS_OK) {
        chat_free(&c);
        return cli_fail(st, model);
    }
    c.tok = ignis_model_tokenizer(c.model);
    if (!c.tok) {
        fprintf(stderr,
                "ignis chat: %s has no tokenizer files (tokenizer.model or tokenizer.json), and chat needs one\n",
                model);
        chat_free(&c);
        return 1;
    }
    if ((st = ignis_seq_create(c.model, 0, &c.seq)) != IGNIS_OK) {
        chat_free(&c);
        return cli_fail(st, "chat: creating the session");
    }
    if (setup_stops(&c)) {
        chat_free(&c);
        return 1;
    }
    c.go.on_token = on_token;
    c.go.user = &c;

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
                    info.source, info.backend, ignis_chat_template_name(c.tmpl), ignis_seq_capacity(c.seq));
    }

    text in = {0};
    int rc = 0;
    for (;;) {
        printf("\ndouble enter to end input >>> ");
        fflush(stdout);
        int r = read_input(&in);
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
            st = ignis_seq_truncate(c.seq, 0);
            if (st != IGNIS_OK) {
                rc = cli_fail(st, "chat: resetting the session");
                break;
            }
            clear_history(&c);
            c.turn = 0;
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
