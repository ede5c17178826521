/* ignis generate — one prompt in, its continuation out (streamed), tokens/s on stderr.
 * With --batch IN.jsonl it runs many requests through the scheduler instead. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *k_usage =
    "usage: ignis generate MODEL (--prompt TEXT | --prompt-ids \"1 2 3\") [options]\n"
    "       ignis generate MODEL --batch IN.jsonl [--concurrency N] [engine options]\n"
    "\n"
    "MODEL: a workspace, a Hugging Face model directory, or synthetic:SHAPE\n"
    "  --prompt TEXT               prompt text (needs the model's tokenizer; BOS added)\n"
    "  --prompt-ids \"IDS\"          prompt token ids, space or comma separated\n"
    "  --max-new-tokens N          tokens to generate (default 128)\n"
    "  --temperature T             0 = greedy (default 0)\n"
    "  --top-k K, --top-p P        sampling filters (default off)\n"
    "  --repetition-penalty R      HF-style penalty (default 1 = off)\n"
    "  --seed S                    sampling seed (default 0)\n"
    "  --ignore-eos                do not stop at EOS (benchmarks)\n"
    "  --ids                       print token ids instead of text\n"
    "  --batch IN.jsonl            offline batch generation through the scheduler; the sampling\n"
    "                              flags above are each line's defaults\n"
    "  --concurrency N             requests in flight in --batch mode (default: all)\n";

typedef struct gen_state {
    bool ids;
    bool first;
    ignis_detok_stream *ds;
} gen_state;

static int on_token(void *user, int32_t tok)
{
    gen_state *g = user;
    if (g->ids || !g->ds) {
        printf(g->first ? "%d" : " %d", tok);
    } else {
        const char *p;
        size_t n;
        if (ignis_detok_stream_push(g->ds, tok, &p, &n) == IGNIS_OK && n) fwrite(p, 1, n, stdout);
    }
    g->first = false;
    fflush(stdout);
    return 0;
}

static int parse_ids(const char *s, int32_t **out, int *n)
{
    int cap = 16, k = 0;
    int32_t *v = malloc(sizeof(int32_t) * (size_t)cap);
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n')
            p++;
        if (!*p) break;
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < 0 || x > 0x7fffffff) {
            free(v);
            return -1;
        }
        if (k == cap) v = realloc(v, sizeof(int32_t) * (size_t)(cap *= 2));
        v[k++] = (int32_t)x;
        p = end;
    }
    *out = v;
    *n = k;
    return 0;
}

int cmd_generate(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL, *prompt_ids = NULL, *batch = NULL;
    ignis_engine_opts eo;
    ignis_engine_opts_init(&eo);
    ignis_gen_opts go;
    ignis_gen_opts_init(&go);
    go.max_new_tokens = 128;
    bool ids = false;
    long concurrency = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_engine_flag("generate", argc, argv, &i, &eo);
        if (r == 0) r = cli_sampling_flag("generate", argc, argv, &i, &go, NULL);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("%s\n%s", k_usage, cli_engine_flags_help);
            return 0;
        }
#define VAL                                                                                                            \
    if (!v) return cli_usage_error("generate", "%s needs a value", a);                                                 \
    i++
        if (!strcmp(a, "--prompt")) {
            VAL;
            prompt = v;
        } else if (!strcmp(a, "--prompt-ids")) {
            VAL;
            prompt_ids = v;
        } else if (!strcmp(a, "--batch")) {
            VAL;
            batch = v;
        } else if (!strcmp(a, "--concurrency")) {
            VAL;
            if (!cli_int(a, v, 1, 1 << 20, &concurrency)) return 2;
        } else if (!strcmp(a, "--ignore-eos")) {
            go.ignore_eos = true;
        } else if (!strcmp(a, "--ids")) {
            ids = true;
        } else if (a[0] == '-') {
            return cli_usage_error("generate", "unknown option '%s'", a);
        } else if (!model) {
            int bw = cli_backend_word("generate", a); /* `generate turbomind MODEL` */
            if (bw < 0) return 2;
            if (bw == 0) model = a;
        } else {
            return cli_usage_error("generate", "unexpected argument '%s'", a);
        }
#undef VAL
    }
    if (!model) return cli_usage_error("generate", "no MODEL given");
    if (cli_check_model("generate", model)) return 2;
    if (batch) {
        if (prompt || prompt_ids) return cli_usage_error("generate", "--batch excludes --prompt/--prompt-ids");
        return cmd_generate_batch(model, batch, (int)concurrency, &eo, &go);
    }
    if (!prompt == !prompt_ids) return cli_usage_error("generate", "give exactly one of --prompt or --prompt-ids");

    int32_t *pids = NULL;
    int np = 0;
    if (prompt_ids && (parse_ids(prompt_ids, &pids, &np) != 0 || np == 0))
        return cli_usage_error("generate", "--prompt-ids expects token ids separated by spaces or commas, got '%s'",
                               prompt_ids);

    eo.progress = cli_progress;
    ignis_model *m = NULL;
    ignis_status s = ignis_model_open(model, &eo, &m);
    if (s != IGNIS_OK) {
        free(pids);
        return cli_fail(s, model);
    }
    const ignis_tokenizer *tok = ignis_model_tokenizer(m);
    int rc = 0;
    ignis_seq *seq = NULL;
    gen_state g = {ids, true, NULL};
    if (prompt) {
        if (!tok) {
            rc = cli_fail(IGNIS_E_ARG, "--prompt");
            fprintf(stderr, "ignis: %s has no tokenizer; use --prompt-ids\n", model);
            goto done;
        }
        if ((s = ignis_tokenize(tok, prompt, strlen(prompt), true, false, &pids, &np)) != IGNIS_OK) {
            rc = cli_fail(s, "tokenize");
            goto done;
        }
    }
    if (tok && !ids && (s = ignis_detok_stream_create(tok, true, &g.ds)) != IGNIS_OK) {
        rc = cli_fail(s, "detokenizer");
        goto done;
    }
    if ((s = ignis_seq_create(m, 0, &seq)) != IGNIS_OK) {
        rc = cli_fail(s, "sequence");
        goto done;
    }
    go.on_token = on_token;
    go.user = &g;
    ignis_gen_stats st;
    s = ignis_seq_generate(seq, pids, np, &go, &st);
    if (g.ds) {
        const char *p;
        size_t n2;
        if (ignis_detok_stream_flush(g.ds, &p, &n2) == IGNIS_OK && n2) fwrite(p, 1, n2, stdout);
    }
    printf("\n");
    fflush(stdout);
    if (s != IGNIS_OK) {
        rc = cli_fail(s, "generate");
        goto done;
    }
    ignis_model_info info;
    ignis_model_get_info(m, &info);
    double dec_tps = st.generated_tokens > 1 && st.decode_s > 0 ? (st.generated_tokens - 1) / st.decode_s : 0;
    fprintf(stderr,
            "ignis: %s [%s, %s, %s]: prompt %d tokens in %.3f s (%.1f tok/s); generated %d tokens, "
            "decode %.2f tok/s (%.1f GB/s of weights); finish: %s\n",
            model, info.architecture, info.backend, info.weight_dtype, st.prompt_tokens, st.prefill_s,
            st.prefill_s > 0 ? st.prompt_tokens / st.prefill_s : 0, st.generated_tokens, dec_tps,
            dec_tps * (double)info.weight_bytes / 1e9, ignis_finish_reason_name(st.finish_reason));
done:
    if (g.ds) ignis_detok_stream_free(g.ds);
    ignis_seq_destroy(seq);
    ignis_model_close(m);
    free(pids);
    return rc;
}
