/* ignis generate — one prompt in, its continuation out (streamed), tokens/s on stderr; with
 * --batch IN.jsonl many prompts. Both go through the request API (ignis_engine_*), like
 * the server and the harness, so stop rules and text delivery are the runtime's. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "env_opts.h"

static const char *k_usage =
    "usage: ignis generate MODEL (--prompt TEXT | --prompt-ids \"1 2 3\") [options]\n"
    "       ignis generate MODEL --batch IN.jsonl [--concurrency N] [options]\n"
    "\n"
    "MODEL: a workspace, a Hugging Face model directory, or synthetic:SHAPE\n"
    "  --prompt TEXT               prompt text (needs the model's tokenizer; BOS added); the output\n"
    "                              continues it: prompt + output is the whole text\n"
    "  --prompt-ids \"IDS\"          prompt token ids, space or comma separated\n"
    "  --max-new-tokens N          tokens to generate (default 128)\n"
    "  --temperature T             0 = greedy (default 0)\n"
    "  --top-k K, --top-p P        sampling filters (default off)\n"
    "  --repetition-penalty R      HF-style penalty (default 1 = off)\n"
    "  --seed S                    sampling seed (default 0)\n"
    "  --ignore-eos                do not stop at EOS (benchmarks)\n"
    "  --ids                       print token ids instead of text\n"
    "  --batch IN.jsonl            offline batch generation, \"-\" for stdin (format below)\n"
    "  --concurrency N             requests in flight in --batch mode (default: all)\n"
    "Tokens/s go to stderr; the text (or ids) to stdout.\n"
    "\n"
    "--batch input: one JSON object per line (blank lines skipped); fields:\n"
    "  prompt              string    prompt text (tokenized with BOS); exactly one of prompt,\n"
    "  prompt_ids          [int]     prompt token ids                   prompt_ids\n"
    "  max_new_tokens      integer   >= 1 (default: --max-new-tokens, 128)\n"
    "  temperature         number    0 .. 100, 0 = greedy (default: --temperature, 0)\n"
    "  top_k               integer   >= 0, 0 = off (default: --top-k, 0)\n"
    "  top_p               number    (0, 1], 1 = off (default: --top-p, 1)\n"
    "  repetition_penalty  number    > 0, 1 = off (default: --repetition-penalty, 1)\n"
    "  seed                integer   >= 0 (default: --seed, 0)\n"
    "  ignore_eos          boolean   (default: --ignore-eos, false)\n"
    "  stop                string or [string | int]: stop words (cut from the text) and stop ids\n"
    "                                (kept in the ids) (default: none)\n"
    "  priority            integer   higher is scheduled first (default 0)\n"
    "  id                  any       echoed back in the result\n"
    "Output: one JSON line per request on stdout, in input order: index, id, ids, text,\n"
    "finish_reason, prompt_tokens, generated_tokens, cached_tokens, preemptions, queue_ms,\n"
    "ttft_ms, e2e_ms — or index, id, error (\"line N: ...\"); a summary line on stderr.\n"
    "Exit status 1 when any request failed (the others still ran).\n";

/* Streams one request's output: text as it becomes final (or ids with --ids, or when the
 * model has no tokenizer). Returns the finish event's reason, or IGNIS_FINISH_ERROR after
 * printing the failure. */
static ignis_finish_reason stream_output(ignis_request *r, bool print_ids)
{
    bool first = true;
    for (;;) {
        ignis_event ev;
        if (ignis_request_poll(r, &ev, -1) != IGNIS_OK) {
            cli_fail(IGNIS_E_STATE, "generate");
            return IGNIS_FINISH_ERROR;
        }
        if (ev.type == IGNIS_EVENT_TOKEN && print_ids) {
            printf(first ? "%d" : " %d", ev.token);
            first = false;
        } else if (!print_ids && ev.text_len) {
            fwrite(ev.text, 1, ev.text_len, stdout);
        }
        fflush(stdout);
        if (ev.type == IGNIS_EVENT_FINISHED) return ev.finish_reason;
        if (ev.type == IGNIS_EVENT_ERROR) {
            printf("\n");
            fprintf(stderr, "ignis: generate: %s\n", ev.error);
            return IGNIS_FINISH_ERROR;
        }
    }
}

/* One prompt through the request API, its continuation streamed to stdout, the timing on
 * stderr. pids: the prompt's ids, or NULL to tokenize `prompt` (BOS added). */
static int generate_one(const char *model, const char *prompt, const int32_t *pids, int np, bool print_ids,
                        ignis_engine_opts *eo, const ignis_gen_opts *go)
{
    eo->progress = cli_progress;
    ignis_model *m = NULL;
    ignis_engine *e = NULL;
    ignis_request *r = NULL;
    int32_t *tok_ids = NULL;
    int rc = 1;
    ignis_status s = ignis_model_open(model, eo, &m);
    if (s != IGNIS_OK) return cli_fail(s, "generate");
    const ignis_tokenizer *tok = ignis_model_tokenizer(m);
    if (prompt) {
        if (!tok) {
            fprintf(stderr, "ignis: generate: %s has no tokenizer, so --prompt cannot be encoded; use --prompt-ids\n",
                    model);
            goto done;
        }
        if ((s = ignis_tokenize(tok, prompt, strlen(prompt), true, false, &tok_ids, &np)) != IGNIS_OK) {
            cli_fail(s, "generate: tokenizing --prompt");
            goto done;
        }
        pids = tok_ids;
    }
    if ((s = ignis_engine_create(m, eo, &e)) != IGNIS_OK) {
        cli_fail(s, "generate");
        goto done;
    }
    ignis_request_params p;
    ignis_request_params_init(&p);
    p.prompt_ids = pids;
    p.n_prompt_ids = np;
    p.sampling = go->sampling;
    p.max_new_tokens = go->max_new_tokens;
    p.ignore_eos = go->ignore_eos;
    p.stop_ids = go->stop_ids;
    p.n_stop_ids = go->n_stop_ids;
    if ((s = ignis_engine_submit(e, &p, &r)) != IGNIS_OK) {
        cli_fail(s, "generate");
        goto done;
    }
    ignis_finish_reason why = stream_output(r, print_ids || !tok);
    if (why == IGNIS_FINISH_ERROR) goto done;
    printf("\n");
    fflush(stdout);
    ignis_request_result res;
    ignis_request_get_result(r, &res);
    ignis_model_info info;
    if ((s = ignis_model_get_info(m, &info)) != IGNIS_OK) {
        cli_fail(s, "generate");
        goto done;
    }
    /* prefill: admitted -> first token; decode: first token -> last (n - 1 steps) */
    double prefill_s = res.ttft_s - res.queue_s, decode_s = res.e2e_s - res.ttft_s;
    double dec_tps = res.generated_tokens > 1 && decode_s > 0 ? (res.generated_tokens - 1) / decode_s : 0;
    fprintf(stderr,
            "ignis: %s [%s, %s, %s]: prompt %d tokens in %.3f s (%.1f tok/s); generated %d tokens, "
            "decode %.2f tok/s (%.1f GB/s of weights); finish: %s\n",
            model, info.architecture, info.backend, info.weight_dtype, res.prompt_tokens, prefill_s,
            prefill_s > 0 ? res.prompt_tokens / prefill_s : 0, res.generated_tokens, dec_tps,
            dec_tps * (double)info.weight_bytes / 1e9, ignis_finish_reason_name(why));
    rc = 0;
done:
    ignis_request_release(r);
    ignis_engine_destroy(e);
    ignis_model_close(m);
    free(tok_ids);
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL, *prompt_ids = NULL, *batch = NULL;
    ignis_engine_opts eo;
    ignis_engine_opts_init(&eo);
    if (!cli_env_engine_opts(&eo)) return 2;
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
            cli_print_help(k_usage, cli_engine_flags_help);
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
        } else {
            int rc = cli_model_positional("generate", a, &model);
            if (rc) return rc;
        }
#undef VAL
    }
    int rc = cli_require_model("generate", model);
    if (rc) return rc;
    if (batch) {
        if (prompt || prompt_ids) return cli_usage_error("generate", "--batch excludes --prompt/--prompt-ids");
        return cmd_generate_batch(model, batch, (int)concurrency, &eo, &go);
    }
    if (!prompt == !prompt_ids) return cli_usage_error("generate", "give exactly one of --prompt or --prompt-ids");

    int32_t *pids = NULL;
    int np = 0;
    if (prompt_ids) {
        int r = cli_parse_ids(prompt_ids, &pids, &np, NULL);
        if (r == -2) {
            fprintf(stderr, "ignis: generate: out of memory reading --prompt-ids\n");
            return 1;
        }
        if (r != 0 || np == 0) {
            free(pids);
            return cli_usage_error("generate", "--prompt-ids expects token ids separated by spaces or commas, got '%s'",
                                   prompt_ids);
        }
    }
    rc = generate_one(model, prompt, pids, np, ids, &eo, &go);
    free(pids);
    return rc;
}
