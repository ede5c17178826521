/* `ignis chat` driven like a user would: piped stdin and a pseudo-terminal, with the
 * stories260K model (a base model, so the "base" template: the conversation is the
 * story so far). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

#define PROMPT "double enter to end input >>> "

static char g_model[2048];

static int setup(void **state)
{
    (void)state;
    const char *m = tu_asset("models/stories260K/hf/model.safetensors");
    if (!m) {
        g_model[0] = 0;
        return 0;
    }
    snprintf(g_model, sizeof g_model, "%s", tu_asset("models/stories260K/hf"));
    return 0;
}

#define NEED_MODEL() TU_SKIP_WITHOUT_ASSET(g_model[0], "models/stories260K/hf")

/* Runs `ignis chat MODEL args` with stdin; returns the exit status. */
static int chat(const char *args, const char *input, char **out, char **err)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "chat '%s' %s", g_model, args);
    return tu_run_cli(cmd, input, out, err);
}

/* The answers in a piped session's stdout: the text between consecutive prompts. */
static int answers(const char *out, char ans[][4096], int max)
{
    int n = 0;
    const char *p = strstr(out, PROMPT);
    while (p && n < max) {
        p += strlen(PROMPT);
        const char *next = strstr(p, PROMPT);
        size_t len = next ? (size_t)(next - p) : strlen(p);
        /* each answer ends with a newline, then the prompt opens with one */
        while (len && p[len - 1] == '\n')
            len--;
        if (!next) break; /* text after the last prompt is not an answer */
        if (!len) {       /* 'end', or a turn refused: nothing was answered */
            p = next;
            continue;
        }
        if (len >= 4096) len = 4095;
        memcpy(ans[n], p, len);
        ans[n][len] = 0;
        n++;
        p = next;
    }
    return n;
}

static void test_chat_cli_greedy_answer_matches_reference_continuation(void **state)
{
    (void)state;
    NEED_MODEL();
    TU_ASSET_OR_SKIP(ref_path, "models/stories260K/greedy_t0_steps256.txt");
    char *ref = tu_read_file(ref_path, NULL);
    assert_non_null(ref);
    char *out = NULL, *err = NULL;
    int st =
        chat("--chat-template base --temperature 0 --max-new-tokens 24", "Once upon a time\n\nexit\n\n", &out, &err);
    if (st != 0) fail_msg("expected exit status 0, got %d; stderr: %s", st, err);
    char ans[4][4096];
    int n = answers(out, ans, 4);
    assert_int_equal(n, 1);
    /* the reference is the model's greedy story from BOS + "Once upon a time" */
    const char *cont = ref + strlen("Once upon a time");
    assert_true(strlen(ans[0]) > 40);
    if (strncmp(cont, ans[0], strlen(ans[0])))
        fail_msg("greedy answer is not the reference continuation\n expected prefix of: %.120s\n got: %s", cont,
                 ans[0]);
    free(ref);
    free(out);
    free(err);
}

static void test_chat_cli_exit_and_end_of_input_quit_with_status_0(void **state)
{
    (void)state;
    NEED_MODEL();
    char *out = NULL, *err = NULL;
    assert_int_equal(chat("--chat-template base --seed 3", "exit\n\n", &out, &err), 0);
    assert_non_null(strstr(out, PROMPT));
    free(out);
    free(err);
    /* end of input without 'exit' also quits cleanly, after answering what was typed */
    assert_int_equal(chat("--chat-template base --seed 3 --max-new-tokens 8", "The cat", &out, &err), 0);
    assert_true(strlen(out) > 2 * strlen(PROMPT));
    free(out);
    free(err);
}

static void test_chat_cli_end_resets_the_session(void **state)
{
    (void)state;
    NEED_MODEL();
    char *out = NULL, *err = NULL;
    const char *in = "Once upon a time\n\nThe dog\n\nend\n\nOnce upon a time\n\nThe dog\n\nexit\n\n";
    int st = chat("--chat-template base --temperature 1 --seed 11 --max-new-tokens 24", in, &out, &err);
    if (st != 0) fail_msg("exit status %d; stderr: %s", st, err);
    char ans[8][4096];
    int n = answers(out, ans, 8);
    assert_int_equal(n, 4);
    /* after 'end' the same turns give the same answers: nothing of the old session remains */
    assert_string_equal(ans[0], ans[2]);
    assert_string_equal(ans[1], ans[3]);
    assert_true(strlen(ans[0]) > 0);
    free(out);
    free(err);
}

/* Parses "[prefill N tokens, reused M cached, context C]" lines of --verbose. */
static int prefill_stats(const char *err, int (*v)[3], int max)
{
    int n = 0;
    for (const char *p = err; n < max && (p = strstr(p, "[prefill ")); p++)
        if (sscanf(p, "[prefill %d tokens, reused %d cached, context %d]", &v[n][0], &v[n][1], &v[n][2]) == 3) n++;
    return n;
}

static void check_cache_reuse(const char *tmpl)
{
    char args[256], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "--chat-template %s --verbose --temperature 0 --max-new-tokens 16", tmpl);
    int st = chat(args, "Once upon a time\n\nThe little dog\n\nThe end\n\nexit\n\n", &out, &err);
    if (st != 0) fail_msg("%s: exit status %d; stderr: %s", tmpl, st, err);
    int s[4][3];
    int n = prefill_stats(err, s, 4);
    if (n != 3) fail_msg("%s: expected 3 turns of statistics, got %d in: %s", tmpl, n, err);
    for (int t = 1; t < 3; t++) {
        int history = s[t - 1][2]; /* tokens the sequence held after the previous turn */
        if (s[t][1] <= 0 || s[t][0] >= history)
            fail_msg("%s: turn %d prefilled %d tokens and reused %d, but %d were already cached: the history was "
                     "prefilled again",
                     tmpl, t + 1, s[t][0], s[t][1], history);
        /* everything but the new turn (and at most the pending last token) comes from the cache */
        if (s[t][1] < history - 2)
            fail_msg("%s: turn %d reused only %d of %d cached tokens", tmpl, t + 1, s[t][1], history);
    }
    free(out);
    free(err);
}

static void test_chat_cli_second_turn_prefills_only_the_new_turn(void **state)
{
    (void)state;
    NEED_MODEL();
    check_cache_reuse("base");
    check_cache_reuse("qwen"); /* ChatML markers around each turn */
}

static void test_chat_cli_same_seed_same_answer_different_seed_different_answer(void **state)
{
    (void)state;
    NEED_MODEL();
    const char *in = "Once upon a time\n\nexit\n\n";
    char *o1, *o2, *o3, *e;
    assert_int_equal(
        chat("--chat-template base --temperature 1 --top-k 0 --top-p 1 --seed 7 --max-new-tokens 48", in, &o1, &e), 0);
    free(e);
    assert_int_equal(
        chat("--chat-template base --temperature 1 --top-k 0 --top-p 1 --seed 7 --max-new-tokens 48", in, &o2, &e), 0);
    free(e);
    assert_int_equal(
        chat("--chat-template base --temperature 1 --top-k 0 --top-p 1 --seed 8 --max-new-tokens 48", in, &o3, &e), 0);
    free(e);
    assert_string_equal(o1, o2);
    if (!strcmp(o1, o3)) fail_msg("seeds 7 and 8 gave the same 48-token answer at temperature 1: %s", o1);
    free(o1);
    free(o2);
    free(o3);
}

static void test_chat_cli_full_session_is_reported_and_chat_goes_on(void **state)
{
    (void)state;
    NEED_MODEL();
    char *out = NULL, *err = NULL;
    const char *in = "Once upon a time there was a dog and a cat and a bird and a fish and a frog\n\n"
                     "end\n\nHi\n\nexit\n\n";
    int st = chat("--chat-template base --session-len 12 --max-new-tokens 4 --seed 1", in, &out, &err);
    if (st != 0) fail_msg("exit status %d; stderr: %s", st, err);
    if (!strstr(err, "the session is full")) fail_msg("expected a 'session is full' message, stderr: %s", err);
    assert_non_null(strstr(err, "--session-len"));
    if (!strstr(err, "Type 'end'")) fail_msg("the 'session is full' message should say to type 'end': %s", err);
    char ans[4][4096];
    assert_int_equal(answers(out, ans, 4), 1); /* the short turn after 'end' was answered */
    free(out);
    free(err);
}

static void test_chat_cli_rejects_models_without_tokenizer_and_bad_templates(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    assert_int_equal(tu_run_cli("chat synthetic:tiny", "hello\n\n", &out, &err), 1);
    if (!strstr(err, "no tokenizer")) fail_msg("expected a 'no tokenizer' message, got: %s", err);
    free(out);
    free(err);
    NEED_MODEL();
    assert_int_equal(chat("--chat-template no-such-template", "", &out, &err), 1);
    assert_non_null(strstr(err, "unknown chat template 'no-such-template'"));
    free(out);
    free(err);
    assert_int_equal(chat("--top-p 2", "", &out, &err), 2);
    free(out);
    free(err);
}

static void test_chat_cli_workspace_uses_its_stored_template_and_model_name_overrides(void **state)
{
    (void)state;
    NEED_MODEL();
    char top[2048], ws[2100], cmd[8192];
    snprintf(top, sizeof top, "%s", tu_tmpdir("chat-ws"));
    snprintf(ws, sizeof ws, "%s/ws", top);
    char *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "convert qwen-tiny-chat '%s' --dst-path '%s'", g_model, ws);
    int st = tu_run_cli(cmd, "", &out, &err);
    if (st != 0) fail_msg("convert failed (%d): %s", st, err);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "chat '%s' --verbose --temperature 0 --max-new-tokens 8", ws);
    assert_int_equal(tu_run_cli(cmd, "Hi\n\nexit\n\n", &out, &err), 0);
    if (!strstr(err, "chat template qwen")) fail_msg("expected the workspace's template 'qwen', stderr: %s", err);
    int s1[2][3];
    assert_int_equal(prefill_stats(err, s1, 2), 1);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "chat '%s' --model-name llama2 --verbose --temperature 0 --max-new-tokens 8", ws);
    assert_int_equal(tu_run_cli(cmd, "Hi\n\nexit\n\n", &out, &err), 0);
    if (!strstr(err, "chat template llama2")) fail_msg("--model-name llama2 should pick 'llama2', stderr: %s", err);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "chat '%s' --model-name mystery --temperature 0", ws);
    assert_int_equal(tu_run_cli(cmd, "", &out, &err), 1);
    assert_non_null(strstr(err, "matches no chat template"));
    free(out);
    free(err);
    tu_rmrf(top);
}

static void test_chat_cli_template_stop_word_ends_the_answer_before_it(void **state)
{
    (void)state;
    NEED_MODEL();
    char top[2048], path[2100], args[4400];
    snprintf(top, sizeof top, "%s", tu_tmpdir("chat-stop"));
    snprintf(path, sizeof path, "%s/stop.json", top);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    /* the greedy story is ", there was a little girl named Lily. ..." */
    fputs("{\"model_name\": \"base\", \"stop_words\": [\"Lily\"]}", f);
    fclose(f);
    snprintf(args, sizeof args, "--chat-template '%s' --temperature 0 --max-new-tokens 40 --verbose", path);
    char *out = NULL, *err = NULL;
    int st = chat(args, "Once upon a time\n\nexit\n\n", &out, &err);
    if (st != 0) fail_msg("exit status %d; stderr: %s", st, err);
    char ans[4][4096];
    assert_int_equal(answers(out, ans, 4), 1);
    assert_string_equal(ans[0], ", there was a little girl named ");
    if (!strstr(err, "finish: stop")) fail_msg("expected finish: stop, stderr: %s", err);
    free(out);
    free(err);
    tu_rmrf(top);
}

static void test_chat_cli_help_lists_each_option_once(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(tu_run_cli("chat --help", NULL, &out, NULL), 0);
    char seen[64][40];
    int n = 0;
    for (const char *l = out; l && *l;) {
        const char *w = l + strspn(l, " ");
        if (w[0] == '-' && w[1] == '-') {
            size_t wl = strcspn(w, " ,\n");
            char opt[40];
            snprintf(opt, sizeof opt, "%.*s", (int)(wl < 39 ? wl : 39), w);
            for (int i = 0; i < n; i++)
                if (!strcmp(seen[i], opt)) fail_msg("chat --help lists %s twice:\n%s", opt, out);
            if (n < 64) snprintf(seen[n++], sizeof seen[0], "%s", opt);
        }
        const char *e = strchr(l, '\n');
        l = e ? e + 1 : NULL;
    }
    if (n < 10) fail_msg("chat --help lists only %d options:\n%s", n, out);
    free(out);
}

/* A base model that never says EOS: the first answer stops at 1024 tokens (LMDeploy's
 * default), not at the end of a 2048-token session. */
static void test_chat_cli_default_answer_length_is_1024_tokens(void **state)
{
    (void)state;
    NEED_MODEL();
    char *out = NULL, *err = NULL;
    int st = chat("--chat-template base --temperature 0 --session-len 2048 --verbose", "Once upon a time\n\nexit\n\n",
                  &out, &err);
    if (st != 0) fail_msg("exit status %d; stderr: %s", st, err);
    int gen = -1;
    const char *g = strstr(err, "[generated ");
    if (g) sscanf(g, "[generated %d", &gen);
    if (gen != 1024 || !strstr(err, "finish: length"))
        fail_msg("expected an answer of 1024 tokens (finish: length), got %d: %s", gen, err);
    if (strstr(err, "session is full")) fail_msg("the first answer should not fill the session: %s", err);
    free(out);
    free(err);
}

/* ------------------------------------------------------------------ pseudo-terminal */

typedef struct pty_session {
    pid_t pid;
    int fd;
    char buf[1 << 16];
    size_t n;
} pty_session;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Reads from the terminal until `needle` appears after offset `from` or timeout; returns
 * the offset just past it, or -1. */
static long pty_wait_for(pty_session *s, size_t from, const char *needle, double timeout)
{
    double end = now_s() + timeout;
    for (;;) {
        s->buf[s->n] = 0;
        char *hit = from <= s->n ? strstr(s->buf + from, needle) : NULL;
        if (hit) return (long)(hit - s->buf + (long)strlen(needle));
        double left = end - now_s();
        if (left <= 0) return -1;
        struct pollfd pfd = {s->fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (r <= 0) continue;
        ssize_t k = read(s->fd, s->buf + s->n, sizeof s->buf - 1 - s->n);
        if (k <= 0) return -1; /* EIO: the child closed the terminal */
        s->n += (size_t)k;
    }
}

static void pty_write(pty_session *s, const char *text)
{
    assert_int_equal(write(s->fd, text, strlen(text)), (ssize_t)strlen(text));
}

static void test_chat_cli_pty_streams_and_ctrl_c_stops_the_answer_only(void **state)
{
    (void)state;
    NEED_MODEL();
    const char *bin = getenv("IGNIS_BIN");
    assert_non_null(bin);
    pty_session *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->pid = forkpty(&s->fd, NULL, NULL, NULL);
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        setenv("IGNIS_CHAT_TOKEN_DELAY_MS", "25", 1);
        setenv("IGNIS_CHAT_STATS", "1", 1);
        execl(bin, bin, "chat", g_model, "--chat-template", "base", "--temperature", "0", "--max-new-tokens", "120",
              (char *)NULL);
        _exit(127);
    }
    long at = pty_wait_for(s, 0, PROMPT, 60);
    if (at < 0) fail_msg("no prompt on the terminal; got: %s", s->buf);
    pty_write(s, "Once upon a time\r\r");
    /* streaming: the first words show up while the answer is still being generated */
    long first = pty_wait_for(s, (size_t)at, "there was", 30);
    if (first < 0) fail_msg("no streamed answer; got: %s", s->buf + at);
    pty_write(s, "\x03"); /* Ctrl-C: SIGINT to the chat, which must stop this answer only */
    long back = pty_wait_for(s, (size_t)first, PROMPT, 30);
    if (back < 0) fail_msg("no prompt after Ctrl-C; got: %s", s->buf + first);
    s->buf[s->n] = 0;
    assert_non_null(strstr(s->buf + first, "stopped by Ctrl-C"));
    int gen = -1;
    const char *g = strstr(s->buf + at, "[generated ");
    if (g) sscanf(g, "[generated %d", &gen);
    if (gen <= 0 || gen >= 120) fail_msg("expected an answer cut short by Ctrl-C, generated %d of 120 tokens", gen);
    if (!strstr(g, "finish: stopped")) fail_msg("Ctrl-C should be reported as 'stopped': %s", g);
    /* the chat is still alive and answers the next turn */
    pty_write(s, "The end\r\r");
    long again = pty_wait_for(s, (size_t)back, PROMPT, 60);
    if (again < 0) fail_msg("no answer to the next turn; got: %s", s->buf + back);
    pty_write(s, "exit\r\r");
    int status = 0;
    double end = now_s() + 30;
    pid_t r;
    while ((r = waitpid(s->pid, &status, WNOHANG)) == 0 && now_s() < end) {
        char tmp[4096];
        struct pollfd pfd = {s->fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) > 0 && read(s->fd, tmp, sizeof tmp) <= 0) {
            /* terminal closed; keep waiting for the exit status */
        }
    }
    if (r == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &status, 0);
        fail_msg("ignis chat did not exit after 'exit'");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(s->fd);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_cli_greedy_answer_matches_reference_continuation),
        cmocka_unit_test(test_chat_cli_exit_and_end_of_input_quit_with_status_0),
        cmocka_unit_test(test_chat_cli_end_resets_the_session),
        cmocka_unit_test(test_chat_cli_second_turn_prefills_only_the_new_turn),
        cmocka_unit_test(test_chat_cli_same_seed_same_answer_different_seed_different_answer),
        cmocka_unit_test(test_chat_cli_full_session_is_reported_and_chat_goes_on),
        cmocka_unit_test(test_chat_cli_rejects_models_without_tokenizer_and_bad_templates),
        cmocka_unit_test(test_chat_cli_template_stop_word_ends_the_answer_before_it),
        cmocka_unit_test(test_chat_cli_workspace_uses_its_stored_template_and_model_name_overrides),
        cmocka_unit_test(test_chat_cli_pty_streams_and_ctrl_c_stops_the_answer_only),
        cmocka_unit_test(test_chat_cli_help_lists_each_option_once),
        cmocka_unit_test(test_chat_cli_default_answer_length_is_1024_tokens),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
