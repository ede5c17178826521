/* Helpers shared by the subcommands: errors, numeric flags, progress, engine flags. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* argv with every "--name=value" split into "--name" "value", so each command's parser
 * sees one form. Options are only split before a bare "--" and only when the name is a
 * plain option name (letters, digits, dashes): "--prompt=a=b" gives "--prompt" "a=b". The
 * split is made in place (argv's strings are the program's to modify: the '=' becomes the
 * name's end); the new array lives until exit, when free_split releases it. */
static char **k_split;

static size_t option_name_len(const char *a)
{
    if (strncmp(a, "--", 2) != 0) return 0;
    const char *eq = strchr(a, '=');
    if (!eq || eq - a < 3) return 0;
    size_t n = strspn(a + 2, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
    return n == (size_t)(eq - a) - 2 ? (size_t)(eq - a) : 0;
}

static void free_split(void) { free(k_split); }

char **cli_split_equals(int *argc, char **argv)
{
    int n = *argc;
    char **out = calloc((size_t)n * 2 + 1, sizeof *out);
    if (!out) return NULL;
    int k = 0;
    bool options = true;
    for (int i = 0; i < n; i++) {
        if (i > 0 && !strcmp(argv[i], "--")) options = false;
        size_t len = i > 0 && options ? option_name_len(argv[i]) : 0;
        out[k++] = argv[i];
        if (len) {
            argv[i][len] = 0;
            out[k++] = argv[i] + len + 1;
        }
    }
    out[k] = NULL;
    k_split = out;
    atexit(free_split);
    *argc = k;
    return out;
}

/* One line: "ignis: <what>: <message>", or "ignis: <message>" when the message already
 * names <what> (library messages name the file or the operation: "ignis: m: m/config.json:
 * ..." would say the path twice). */
int cli_fail(ignis_status s, const char *what)
{
    const char *msg = ignis_last_error();
    if (!msg || !*msg) msg = ignis_status_name(s);
    if (!what || !*what || strstr(msg, what))
        fprintf(stderr, "ignis: %s\n", msg);
    else
        fprintf(stderr, "ignis: %s: %s\n", what, msg);
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ignis %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'ignis %s --help')\n", cmd);
    va_end(ap);
    return 2;
}

int cli_parse_ids(const char *s, int32_t **ids, int *n, const char **bad)
{
    int cap = 64, k = 0;
    int32_t *v = malloc((size_t)cap * sizeof *v);
    if (!v) return -2;
    for (const char *p = s; *p;) {
        if (strchr(" \t\r\n,[]", *p)) {
            p++;
            continue;
        }
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < 0 || x > INT32_MAX) {
            if (bad) *bad = p;
            free(v);
            return -1;
        }
        if (k == cap) {
            int32_t *q = realloc(v, (size_t)(cap *= 2) * sizeof *q);
            if (!q) {
                free(v);
                return -2;
            }
            v = q;
        }
        v[k++] = (int32_t)x;
        p = end;
    }
    *ids = v;
    *n = k;
    return 0;
}

bool cli_int(const char *flag, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || x < lo || x > hi) {
        fprintf(stderr, "ignis: %s expects an integer in [%ld, %ld], got '%s'\n", flag, lo, hi, v ? v : "");
        return false;
    }
    *out = x;
    return true;
}

/* A number in a range, one message either way: "--top-p expects a number in (0, 1], got 'x'".
 * strtod also reads "nan" and "inf": both are refused, as no option means anything by them
 * (a NaN temperature would silently turn sampling into greedy decoding). */
static bool cli_double_in(const char *flag, const char *v, double lo, bool lo_open, double hi, const char *range,
                          double *out)
{
    char *end;
    errno = 0;
    double x = v ? strtod(v, &end) : 0;
    if (!v || !*v || *end || errno || !isfinite(x) || (lo_open ? !(x > lo) : !(x >= lo)) || !(x <= hi)) {
        fprintf(stderr, "ignis: %s expects a number in %s, got '%s'\n", flag, range, v ? v : "");
        return false;
    }
    *out = x;
    return true;
}

void cli_print_help(const char *usage, const char *more)
{
    fputs(usage, stdout);
    putchar('\n');
    for (const char *l = more; *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l + 1) : strlen(l);
        /* the option a line documents: its first word when it starts with "--" */
        const char *w = l + strspn(l, " ");
        size_t wl = strcspn(w, " ,\n");
        char opt[64];
        bool dup = false;
        if (w[0] == '-' && w[1] == '-' && wl + 3 < sizeof opt) {
            snprintf(opt, sizeof opt, " %.*s ", (int)wl, w);
            dup = strstr(usage, opt) != NULL;
        }
        if (!dup) fwrite(l, 1, n, stdout);
        l += n;
    }
}

void cli_progress(void *user, const char *stage, uint64_t done, uint64_t total)
{
    (void)user;
    static int tty = -1;
    if (tty < 0) tty = isatty(STDERR_FILENO);
    if (!tty || total == 0) return;
    int width = 40, filled = (int)((double)done / (double)total * width);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r%-8s [%s] %5.1f%% %8.1f/%.1f MB", stage, bar, 100.0 * (double)done / (double)total,
            (double)done / 1e6, (double)total / 1e6);
    if (done >= total) fprintf(stderr, "\n");
    fflush(stderr);
}

const char *cli_engine_flags_help =
    "engine options:\n"
    "  --backend auto|cpu|cuda       compute backend (default auto)\n"
    "  --threads N                   CPU backend threads (default: all cores)\n"
    "  --device N                    CUDA device ordinal (default 0)\n"
    "  --dtype auto|fp16|bf16|fp32   weight dtype on the backend\n"
    "  --tp N                        tensor-parallel ranks (default 1)\n"
    "  --session-len N               max tokens per sequence\n"
    "  --max-batch-size N            max sequences per step\n"
    "  --cache-max-entry-count X     KV pool: < 1 fraction of free memory, >= 1 block count\n"
    "  --cache-block-seq-len N       tokens per KV block\n"
    "  --max-prefill-token-num N     prefill chunk size\n"
    "  --enable-prefix-caching       share KV blocks of common prefixes\n"
    "  --chat-template NAME|FILE     override the chat template\n"
    "  --verify                      check weight checksums while loading\n";

int cli_engine_flag(const char *cmd, int argc, char **argv, int *i, ignis_engine_opts *o)
{
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    long n;
    double x;
#define NEED_VALUE                                                                                                     \
    if (!v) {                                                                                                          \
        cli_usage_error(cmd, "%s needs a value", a);                                                                   \
        return -1;                                                                                                     \
    }                                                                                                                  \
    (*i)++
    if (!strcmp(a, "--backend")) {
        NEED_VALUE;
        if (ignis_backend_parse(v, &o->backend) != IGNIS_OK) {
            cli_fail(IGNIS_E_ARG, "--backend");
            return -1;
        }
        return 1;
    }
    if (!strcmp(a, "--dtype")) {
        NEED_VALUE;
        if (ignis_dtype_parse(v, &o->dtype) != IGNIS_OK) {
            cli_fail(IGNIS_E_ARG, "--dtype");
            return -1;
        }
        return 1;
    }
    if (!strcmp(a, "--chat-template")) {
        NEED_VALUE;
        o->chat_template = v;
        return 1;
    }
    if (!strcmp(a, "--enable-prefix-caching")) {
        o->enable_prefix_caching = 1;
        return 1;
    }
    if (!strcmp(a, "--verify")) {
        o->verify_checksums = true;
        return 1;
    }
    if (!strcmp(a, "--cache-max-entry-count")) {
        NEED_VALUE;
        if (!cli_double_in(a, v, 0, true, 1e12, "(0, 1e12]", &x)) return -1;
        o->cache_max_entry_count = x;
        return 1;
    }
    static const struct {
        const char *flag;
        long lo, hi;
        size_t off;
    } ints[] = {
        {"--threads", 0, 1024, offsetof(ignis_engine_opts, threads)},
        {"--device", 0, 64, offsetof(ignis_engine_opts, device)},
        {"--tp", 1, 64, offsetof(ignis_engine_opts, tp)},
        {"--session-len", 1, 1 << 24, offsetof(ignis_engine_opts, session_len)},
        {"--max-batch-size", 1, 1 << 16, offsetof(ignis_engine_opts, max_batch_size)},
        {"--cache-block-seq-len", 1, 1 << 16, offsetof(ignis_engine_opts, cache_block_seq_len)},
        {"--max-prefill-token-num", 1, 1 << 24, offsetof(ignis_engine_opts, max_prefill_token_num)},
    };
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++)
        if (!strcmp(a, ints[k].flag)) {
            NEED_VALUE;
            if (!cli_int(a, v, ints[k].lo, ints[k].hi, &n)) return -1;
            *(int *)((char *)o + ints[k].off) = (int)n;
            return 1;
        }
#undef NEED_VALUE
    return 0;
}

int cli_sampling_flag(const char *cmd, int argc, char **argv, int *i, ignis_gen_opts *go, bool *seeded)
{
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    static const char *const flags[] = {"--max-new-tokens", "--temperature",        "--top-k",
                                        "--top-p",          "--repetition-penalty", "--seed"};
    int k = -1;
    for (int j = 0; j < 6; j++)
        if (!strcmp(a, flags[j])) k = j;
    if (k < 0) return 0;
    if (!v) {
        cli_usage_error(cmd, "%s needs a value", a);
        return -1;
    }
    (*i)++;
    long n;
    double x;
    switch (k) {
    case 0:
        if (!cli_int(a, v, 1, 1 << 24, &n)) return -1;
        go->max_new_tokens = (int)n;
        break;
    case 1:
        if (!cli_double_in(a, v, 0, false, 1e6, "[0, 1e6]", &x)) return -1;
        go->sampling.temperature = (float)x;
        break;
    case 2:
        if (!cli_int(a, v, 0, 1 << 24, &n)) return -1;
        go->sampling.top_k = (int)n;
        break;
    case 3:
        if (!cli_double_in(a, v, 0, true, 1, "(0, 1]", &x)) return -1;
        go->sampling.top_p = (float)x;
        break;
    case 4:
        if (!cli_double_in(a, v, 0, true, 1e6, "(0, 1e6]", &x)) return -1;
        go->sampling.repetition_penalty = (float)x;
        break;
    default: {
        char *end;
        errno = 0;
        unsigned long long seed = strtoull(v, &end, 10);
        if (*end || !*v || v[0] == '-' || errno)
            return fprintf(stderr, "ignis: --seed expects a non-negative integer, got '%s'\n", v), -1;
        go->sampling.seed = seed;
        if (seeded) *seeded = true;
    }
    }
    return 1;
}
