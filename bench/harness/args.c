/* Option parsing for every `ignis bench` mode. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

int bench_parse_int_list(const char *s, int *out, int cap)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > (1 << 24) || (*end && *end != ',') || n == cap) return -1;
        out[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return n;
}

int bench_parse_double_list(const char *s, double *out, int cap)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v > 0) || (*end && *end != ',') || n == cap) return -1;
        out[n++] = v;
        p = *end ? end + 1 : end;
    }
    return n;
}

static void usage(FILE *f, const char *mode, const char *engine_help)
{
    fprintf(f,
            "usage: ignis bench [MODE] [OPTIONS]\n"
            "\n"
            "modes:\n"
            "  (none)        the embedded default: a short throughput replay of synthetic:llama2-7b on a GPU or\n"
            "                synthetic:tiny on the CPU; writes reports/latest.csv, its plots and HTML page\n"
            "  generation    static batches: every combination of -b, -p, -n (prefill/decode tok/s, TTFT, ITL)\n"
            "  throughput    open-loop workload replay through the in-process engine\n"
            "  serving       the same replay over HTTP against any OpenAI-compatible server\n"
            "  compare BASE.csv NEW.csv [--tolerance PCT] [--metrics a,b]   regression gate (exit 0/1/2/3)\n"
            "  plot REPORT.csv [--output DIR]                                 PNG+SVG plots and an HTML page\n"
            "  plot A.csv B.csv [...] [--output DIR]                          the reports' sweeps compared\n"
            "\n"
            "common options:\n"
            "  --model MODEL           workspace, HF directory or synthetic:SHAPE (serving: the served name)\n"
            "  --output FILE           report CSV; appended to when it exists with the same schema\n"
            "  --requests-csv FILE     per-request CSV;  --timeline-csv FILE  engine/server timeline CSV\n"
            "  --plot DIR              write plots and the HTML page of the report after the run\n"
            "  --seed S                workload, schedule and sampling seed (default 0)\n"
            "  --slo ttft:MS,tpot:MS,e2e:MS   goodput counts requests meeting every SLO given\n"
            "  --tokenizer DIR         tokenizer for text datasets / counting streamed tokens\n"
            "  --no-progress           no progress line\n"
            "\n"
            "generation: -b LIST (batch sizes), -p LIST (prompt lengths), -n LIST (output lengths),\n"
            "            -r N (repetitions, default 3), --warmup N (default 1), --depth N (KV already filled)\n"
            "\n"
            "throughput / serving workload:\n"
            "  --workload FILE.jsonl   requests in the JSONL format of workloads/README.md\n"
            "  --dataset sharegpt|random|sonnet|prefix|multiturn   --dataset-path FILE\n"
            "  --num-prompts N (200)   --random-input-len N (128)  --random-output-len N (128)\n"
            "  --random-range-ratio R (0)  --prefix-len N  --output-len N (fixes every output length)\n"
            "  --max-prompt-len N (1024)   --ignore-eos   --warmup N (requests, default 0)\n"
            "  --concurrency LIST      most requests in flight (sweep: 1,8,64)\n"
            "  --request-rate LIST     req/s, Poisson (sweep: 1,4,16,inf; default inf)\n"
            "  --burstiness B          gamma shape of the arrival gaps (1 = Poisson)\n"
            "  --sweep auto            find the highest request rate at which the SLOs hold (needs --slo)\n"
            "  --temperature T         sampling temperature (default 0: greedy)\n"
            "\n"
            "serving: --base-url URL (required), --endpoint completions|chat, --api-key KEY,\n"
            "         --scrape-metrics (sample the server's Prometheus /metrics),\n"
            "         --send-ids (completions: prompts as token-id arrays, for servers without a tokenizer),\n"
            "         --vocab N (random ids are drawn below N; default: the tokenizer's size, else 32000)\n"
            "\n"
            "profiling (in-process throughput):\n"
            "  --kernels               replay each point again under CUPTI: per-kernel and per-step CSVs beside\n"
            "                          the report (REPORT.kernels.csv, REPORT.steps.csv), GPU-busy, %% of peak, cost\n"
            "  --kernels-csv FILE      --steps-csv FILE   where those go (--steps-csv alone: host-side steps)\n"
            "  --profile-window        cudaProfilerStart/Stop around the measured (profiled) pass, for\n"
            "                          nsys --capture-range=cudaProfilerApi / ncu --profile-from-start off\n"
            "  --telemetry-ms N        NVML sampling period (default 100; 0: off): energy, watts, throttling\n"
            "\n%s",
            engine_help ? engine_help : "");
    (void)mode;
}

int bench_args_parse(bench_args *a, const char *mode, int argc, char **argv, bench_engine_flag_fn engine_flag,
                     const char *engine_help)
{
    const char *cmd = "bench";
    memset(a, 0, sizeof *a);
    a->mode = mode;
    a->progress = true;
    ignis_engine_opts_init(&a->eo);
    bench_ds_opts_init(&a->ds);
    bench_replay_opts_init(&a->rp);
    a->reps = 3;
    a->gen_warmup = 1;
    a->telemetry_ms = 100;
    /* the options whose value is kept as given (a path, a name, a URL) */
    const struct {
        const char *flag;
        const char **dst;
    } text_flags[] = {{"--model", &a->model},
                      {"--output", &a->output},
                      {"--requests-csv", &a->requests_csv},
                      {"--timeline-csv", &a->timeline_csv},
                      {"--plot", &a->plot_dir},
                      {"--tokenizer", &a->tokenizer},
                      {"--dataset-path", &a->ds.path},
                      {"--base-url", &a->rp.base_url},
                      {"--api-key", &a->rp.api_key},
                      {"--kernels-csv", &a->kernels_csv},
                      {"--steps-csv", &a->steps_csv}};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            usage(stdout, mode, engine_help);
            return 1;
        }
        if (engine_flag && strcmp(mode, "serving") != 0) {
            int r = engine_flag(cmd, argc, argv, &i, &a->eo);
            if (r < 0) return 2;
            if (r > 0) continue;
        }
#define VAL()                                                                                                          \
    do {                                                                                                               \
        if (!v) {                                                                                                      \
            fprintf(stderr, "ignis bench: %s needs a value\n", f);                                                     \
            return 2;                                                                                                  \
        }                                                                                                              \
        i++;                                                                                                           \
    } while (0)
#define INT(dst, lo, hi)                                                                                               \
    do {                                                                                                               \
        VAL();                                                                                                         \
        char *e_;                                                                                                      \
        long x_ = strtol(v, &e_, 10);                                                                                  \
        if (*e_ || !*v || x_ < (lo) || x_ > (hi)) {                                                                    \
            fprintf(stderr, "ignis bench: %s expects an integer in [%ld, %ld], got '%s'\n", f, (long)(lo), (long)(hi), \
                    v);                                                                                                \
            return 2;                                                                                                  \
        }                                                                                                              \
        dst = (int)x_;                                                                                                 \
    } while (0)
#define DBL(dst, cond)                                                                                                 \
    do {                                                                                                               \
        VAL();                                                                                                         \
        char *e_;                                                                                                      \
        double x_ = strtod(v, &e_);                                                                                    \
        if (*e_ || !*v || !(cond)) {                                                                                   \
            fprintf(stderr, "ignis bench: bad value for %s: '%s'\n", f, v);                                            \
            return 2;                                                                                                  \
        }                                                                                                              \
        dst = x_;                                                                                                      \
    } while (0)
#define LIST(fn, dst, n)                                                                                               \
    do {                                                                                                               \
        VAL();                                                                                                         \
        n = fn(v, dst, BENCH_MAX_LIST);                                                                                \
        if (n < 1) {                                                                                                   \
            fprintf(stderr, "ignis bench: %s expects a comma-separated list of positive numbers, got '%s'\n", f, v);   \
            return 2;                                                                                                  \
        }                                                                                                              \
    } while (0)
        const char **text = NULL;
        for (size_t k = 0; k < sizeof text_flags / sizeof text_flags[0] && !text; k++)
            if (!strcmp(f, text_flags[k].flag)) text = text_flags[k].dst;
        if (text) {
            VAL();
            *text = v;
        } else if (!strcmp(f, "--seed")) {
            VAL();
            char *e;
            a->seed = strtoull(v, &e, 10);
            if (*e || !*v) {
                fprintf(stderr, "ignis bench: --seed expects an unsigned integer, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(f, "--slo")) {
            VAL();
            if (bench_slo_parse(v, &a->slo) != 0) {
                fprintf(stderr, "ignis bench: %s\n", bench_errmsg());
                return 2;
            }
            a->slo_text = v;
        } else if (!strcmp(f, "--no-progress")) {
            a->progress = false;
        } else if (!strcmp(f, "--workload")) {
            VAL();
            a->ds.kind = BENCH_DS_JSONL;
            a->ds.path = v;
        } else if (!strcmp(f, "--dataset")) {
            VAL();
            if (bench_dataset_parse(v, &a->ds.kind) != 0) {
                fprintf(stderr, "ignis bench: %s\n", bench_errmsg());
                return 2;
            }
        } else if (!strcmp(f, "--num-prompts")) {
            INT(a->ds.num_prompts, 1, 10000000);
            a->num_prompts_given = true;
        } else if (!strcmp(f, "--random-input-len"))
            INT(a->ds.input_len, 1, 1 << 24);
        else if (!strcmp(f, "--random-output-len"))
            INT(a->ds.output_len, 1, 1 << 24);
        else if (!strcmp(f, "--random-range-ratio"))
            DBL(a->ds.range_ratio, x_ >= 0 && x_ < 1);
        else if (!strcmp(f, "--prefix-len"))
            INT(a->ds.prefix_len, 0, 1 << 24);
        else if (!strcmp(f, "--max-prompt-len"))
            INT(a->ds.max_prompt_len, 0, 1 << 24);
        else if (!strcmp(f, "--output-len")) {
            INT(a->ds.output_len, 1, 1 << 24);
            a->ds.output_fixed = true;
        } else if (!strcmp(f, "--ignore-eos"))
            a->ds.ignore_eos = true;
        else if (!strcmp(f, "--warmup")) {
            INT(a->rp.warmup, 0, 1 << 20);
            a->gen_warmup = a->rp.warmup;
        } else if (!strcmp(f, "--concurrency"))
            LIST(bench_parse_int_list, a->conc, a->n_conc);
        else if (!strcmp(f, "--request-rate"))
            LIST(bench_parse_double_list, a->rate, a->n_rate);
        else if (!strcmp(f, "--burstiness"))
            DBL(a->rp.burstiness, x_ > 0);
        else if (!strcmp(f, "--sweep")) {
            VAL();
            if (strcmp(v, "auto")) {
                fprintf(stderr, "ignis bench: --sweep takes 'auto' (lists go to --concurrency/--request-rate)\n");
                return 2;
            }
            a->sweep_auto = true;
        } else if (!strcmp(f, "--temperature")) {
            double t;
            DBL(t, x_ >= 0);
            a->rp.sampling.temperature = (float)t;
        } else if (!strcmp(f, "--endpoint")) {
            VAL();
            if (strcmp(v, "chat") && strcmp(v, "completions")) {
                fprintf(stderr, "ignis bench: --endpoint is chat or completions, got '%s'\n", v);
                return 2;
            }
            a->rp.endpoint = v;
        } else if (!strcmp(f, "--vocab"))
            INT(a->vocab, 4, 1 << 24);
        else if (!strcmp(f, "--send-ids"))
            a->rp.send_ids = true;
        else if (!strcmp(f, "--kernels"))
            a->kernels = true;
        else if (!strcmp(f, "--profile-window"))
            a->profile_window = true;
        else if (!strcmp(f, "--telemetry-ms"))
            INT(a->telemetry_ms, 0, 60000);
        else if (!strcmp(f, "--scrape-metrics"))
            a->rp.scrape_metrics = true;
        else if (!strcmp(f, "-b") || !strcmp(f, "--batch-size"))
            LIST(bench_parse_int_list, a->batch, a->n_batch);
        else if (!strcmp(f, "-p") || !strcmp(f, "--prompt-len"))
            LIST(bench_parse_int_list, a->plen, a->n_plen);
        else if (!strcmp(f, "-n") || !strcmp(f, "--gen-len"))
            LIST(bench_parse_int_list, a->olen, a->n_olen);
        else if (!strcmp(f, "-r") || !strcmp(f, "--repetitions"))
            INT(a->reps, 1, 1000);
        else if (!strcmp(f, "--depth"))
            INT(a->depth, 0, 1 << 24);
        else {
            fprintf(stderr, "ignis bench %s: unknown option '%s'\n(run 'ignis bench --help' for usage)\n", mode, f);
            return 2;
        }
#undef VAL
#undef INT
#undef DBL
#undef LIST
    }
    a->ds.seed = a->seed;
    a->rp.seed = a->seed;
    a->rp.sampling.seed = a->seed;
    a->rp.progress = a->progress;
    if (a->sweep_auto && a->slo.ttft_ms <= 0 && a->slo.tpot_ms <= 0 && a->slo.e2e_ms <= 0) {
        fprintf(stderr, "ignis bench: --sweep auto needs --slo (the limits it keeps)\n");
        return 2;
    }
    if (!strcmp(mode, "serving") && !a->rp.base_url) {
        fprintf(stderr, "ignis bench serving: --base-url URL is required (e.g. http://127.0.0.1:23333)\n");
        return 2;
    }
    if (!a->n_conc) a->conc[a->n_conc++] = 0;
    if (!a->n_rate) a->rate[a->n_rate++] = INFINITY;
    return 0;
}
