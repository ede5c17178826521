/* `ignis bench`: mode dispatch and the replay modes (throughput, serving, the embedded
 * default) — open the model, load the workload, run each sweep point, write the report. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "bench.h"
#include "modes.h"
#include "profiling.h"

static int fail(const char *what)
{
    fprintf(stderr, "ignis bench: %s: %s\n", what, bench_errmsg());
    return 1;
}

int bench_open_model(const bench_args *a, ignis_model **m, ignis_model_info *info)
{
    if (ignis_model_open(a->model, &a->eo, m) != IGNIS_OK) {
        bench_err("opening %s: %s", a->model, ignis_last_error());
        return -1;
    }
    ignis_model_get_info(*m, info);
    return 0;
}

/* The tokenizer that counts and encodes text prompts: --tokenizer, else the model's own. */
int bench_tokenizer(const bench_args *a, const ignis_model *m, ignis_tokenizer **owned, const ignis_tokenizer **tok)
{
    *owned = NULL;
    *tok = m ? ignis_model_tokenizer(m) : NULL;
    if (a->tokenizer) {
        if (ignis_tokenizer_open(a->tokenizer, owned) != IGNIS_OK) {
            bench_err("--tokenizer %s: %s", a->tokenizer, ignis_last_error());
            return -1;
        }
        *tok = *owned;
    }
    return 0;
}

/* Writes the report rows and the optional CSVs and plots; prints where they went. */
int bench_finish(const bench_args *a, const bench_row *rows, int n)
{
    if (a->output) {
        if (bench_report_write(a->output, rows, n, true) != 0) return fail("writing the report");
        fprintf(stderr, "ignis bench: report -> %s\n", a->output);
        if (a->plot_dir) {
            if (bench_plot_report(a->output, a->plot_dir) != 0) return fail("plotting");
            fprintf(stderr, "ignis bench: plots and HTML -> %s/\n", a->plot_dir);
        }
    }
    return 0;
}

typedef struct replay_ctx {
    const bench_args *a;
    ignis_engine *engine; /* NULL over HTTP */
    const bench_workload *w;
    const char *backend, *dtype, *model;
    bench_prof *prof; /* in-process profiling; NULL over HTTP */
} replay_ctx;

/* One sweep point: replay, metrics, a row; returns the fraction of requests within SLO. */
static int run_point(replay_ctx *c, int conc, double rate, int point, int points, bench_row *row, double *slo_frac,
                     double *req_s)
{
    const bench_args *a = c->a;
    bench_replay_opts ro = a->rp;
    ro.concurrency = conc;
    ro.request_rate = rate;
    bench_run run;
    if (c->prof) bench_prof_hooks(c->prof, c->engine, false, &ro);
    int rc = c->engine ? bench_replay_engine(c->engine, c->w, &ro, &run) : bench_replay_http(c->w, &ro, &run);
    if (rc != 0) return -1;
    bench_metrics m;
    bench_metrics_compute(&run, &a->slo, &m);
    char config[160], title[200];
    if (conc > 0)
        snprintf(config, sizeof config, "concurrency=%d,rate=%g", conc, rate);
    else
        snprintf(config, sizeof config, "concurrency=inf,rate=%g", rate);
    snprintf(title, sizeof title, "%s %s", a->mode, config);
    bench_summary_print(stdout, title, &m);
    if (slo_frac) *slo_frac = m.completed ? m.goodput_req_s / m.req_per_s : 0;
    if (req_s) *req_s = m.req_per_s;
    if (bench_row_init(row) != 0) return bench_err("out of memory"), -1;
    bench_meta meta = {.mode = a->mode,
                       .model = c->model,
                       .dtype = c->dtype,
                       .backend = c->backend,
                       .workload = c->w->name,
                       .workload_hash = c->w->hash,
                       .config = config,
                       .seed = a->seed};
    bench_row_fill_meta(row, &meta);
    bench_row_fill_metrics(row, &m);
    bench_row_check_validity(row, &m);
    if (conc > 0)
        bench_row_set(row, "concurrency", "%d", conc);
    else
        bench_row_set(row, "concurrency", "inf");
    bench_row_set(row, "request_rate", "%g", rate);
    bench_row_set(row, "burstiness", "%g", ro.burstiness);
    bench_row_set(row, "num_prompts", "%d", c->w->n);
    bench_row_set(row, "slo", "%s", a->slo_text ? a->slo_text : "");
    char path[1024];
    if (a->requests_csv) {
        bench_point_path(a->requests_csv, point, points, path, sizeof path);
        if (bench_write_requests_csv(path, &run, config) != 0) rc = -1;
        bench_row_set(row, "requests_csv", "%s", path);
    }
    if (a->timeline_csv) {
        bench_point_path(a->timeline_csv, point, points, path, sizeof path);
        if (bench_write_timeline_csv(path, &run, config) != 0) rc = -1;
        bench_row_set(row, "timeline_csv", "%s", path);
    }
    if (c->prof && bench_prof_point(c->prof, c->w, &ro, &m, &run, config, point, points, row) != 0) rc = -1;
    bench_run_free(&run);
    return rc;
}

/* --sweep auto: the highest request rate whose requests all but 1% meet the SLOs, by
 * bisection between 0 and the throughput at an unlimited rate (6 steps). Every point
 * tried is a row; the chosen one says so in `config`. */
static int sweep_auto(replay_ctx *c, int conc, bench_row *rows, int *n)
{
    double frac, top;
    if (run_point(c, conc, INFINITY, *n, 99, &rows[*n], &frac, &top) != 0) return -1;
    (*n)++;
    double lo = 0, hi = top, best = -1;
    int best_row = -1;
    for (int k = 0; k < 6 && *n < 3 * BENCH_MAX_LIST; k++) {
        double rate = (lo + hi) / 2;
        if (run_point(c, conc, rate, *n, 99, &rows[*n], &frac, NULL) != 0) return -1;
        if (frac >= 0.99) {
            lo = rate;
            if (rate > best) best = rate, best_row = *n;
        } else
            hi = rate;
        (*n)++;
    }
    if (best_row >= 0) {
        char cfg[200];
        snprintf(cfg, sizeof cfg, "%s,sweep=chosen", bench_row_get(&rows[best_row], "config"));
        bench_row_set(&rows[best_row], "config", "%s", cfg);
        printf("sweep auto: highest rate meeting the SLOs: %.3f req/s (bounds %.3f .. %.3f)\n", best, lo, hi);
    } else
        printf("sweep auto: no rate met the SLOs (lowest tried %.3f req/s)\n", hi);
    return 0;
}

static int run_replays(replay_ctx *c)
{
    const bench_args *a = c->a;
    bench_row rows[3 * BENCH_MAX_LIST] = {0};
    int n = 0, rc = 0, points = a->n_conc * a->n_rate;
    if (a->sweep_auto)
        rc = sweep_auto(c, a->conc[0], rows, &n);
    else
        for (int i = 0; i < a->n_conc && !rc; i++)
            for (int j = 0; j < a->n_rate && !rc && n < 3 * BENCH_MAX_LIST; j++) {
                rc = run_point(c, a->conc[i], a->rate[j], n, points, &rows[n], NULL, NULL);
                if (!rc) n++;
            }
    if (rc) fail("replay");
    if (!rc) rc = bench_finish(a, rows, n);
    for (int i = 0; i < n; i++)
        bench_row_free(&rows[i]);
    return rc ? 1 : 0;
}

static int mode_throughput(bench_args *a)
{
    ignis_model *m = NULL;
    ignis_model_info info;
    ignis_engine *e = NULL;
    ignis_tokenizer *owned = NULL;
    const ignis_tokenizer *tok;
    bench_workload w = {0};
    int rc = 1;
    if (!a->model) a->model = "synthetic:tiny";
    /* before the model: CUPTI sizes its buffers before the first CUDA context */
    bench_prof prof;
    bench_prof_opts po = {.kernels = a->kernels,
                          .profile_window = a->profile_window,
                          .telemetry_ms = a->telemetry_ms,
                          .device = a->eo.device,
                          .kernels_csv = a->kernels_csv,
                          .steps_csv = a->steps_csv,
                          .report = a->output};
    if (bench_prof_open(&po, &prof) != 0) return fail("profiling");
    if (bench_open_model(a, &m, &info) != 0) {
        bench_prof_close(&prof);
        return fail("model");
    }
    if (bench_tokenizer(a, m, &owned, &tok) != 0) {
        fail("tokenizer");
        goto out;
    }
    a->ds.tok = tok;
    a->ds.vocab = info.vocab_size;
    if (bench_workload_load(&a->ds, &w) != 0) {
        fail("workload");
        goto out;
    }
    /* text the engine cannot tokenize would fail every request: say so once, up front */
    for (int i = 0; i < w.n && !ignis_model_tokenizer(m); i++)
        if (w.items[i].n_ids < 0) {
            fprintf(stderr, "ignis bench: %s has no tokenizer for the text prompts of %s: pass --tokenizer DIR\n",
                    a->model, w.name);
            goto out;
        }
    if (ignis_engine_create(m, &a->eo, &e) != IGNIS_OK) {
        fprintf(stderr, "ignis bench: engine: %s\n", ignis_last_error());
        goto out;
    }
    replay_ctx c = {.a = a,
                    .engine = e,
                    .w = &w,
                    .backend = info.backend,
                    .dtype = info.weight_dtype,
                    .model = a->model,
                    .prof = &prof};
    rc = run_replays(&c);
out:
    bench_prof_close(&prof); /* detached from the engine before it goes */
    if (e) ignis_engine_destroy(e);
    bench_workload_free(&w);
    ignis_tokenizer_free(owned);
    ignis_model_close(m);
    return rc;
}

static int mode_serving(bench_args *a)
{
    ignis_tokenizer *owned = NULL;
    const ignis_tokenizer *tok = NULL;
    bench_workload w = {0};
    int rc = 1;
    if (bench_tokenizer(a, NULL, &owned, &tok) != 0) return fail("tokenizer");
    a->ds.tok = tok;
    a->ds.vocab = a->vocab > 0 ? a->vocab : tok ? ignis_tokenizer_vocab_size(tok) : 32000;
    a->rp.tok = tok;
    a->rp.served_model = a->model;
    if (bench_workload_load(&a->ds, &w) != 0) {
        fail("workload");
        goto out;
    }
    replay_ctx c = {.a = a, .w = &w, .backend = "http", .dtype = "", .model = a->model ? a->model : a->rp.base_url};
    rc = run_replays(&c);
out:
    bench_workload_free(&w);
    ignis_tokenizer_free(owned);
    return rc;
}

/* `ignis bench` alone: a short throughput replay on the biggest model that suits the
 * machine (a GPU: synthetic:llama2-7b; the CPU: synthetic:tiny), about a minute, writing
 * reports/latest.csv, its per-request and timeline CSVs, plots and HTML page. */
static int mode_default(bench_args *a)
{
    ignis_model *probe = NULL;
    ignis_engine_opts eo = a->eo;
    eo.progress = NULL;
    if (!a->model) {
        if (ignis_model_open("synthetic:tiny", &eo, &probe) != IGNIS_OK) {
            fprintf(stderr, "ignis bench: opening synthetic:tiny: %s\n", ignis_last_error());
            return 1;
        }
        ignis_model_info info;
        ignis_model_get_info(probe, &info);
        bool gpu = !strcmp(info.backend, "cuda");
        ignis_model_close(probe);
        a->model = gpu ? "synthetic:llama2-7b" : "synthetic:tiny";
        bool conc_given = a->n_conc > 1 || a->conc[0] > 0;
        /* 7B on one GPU: 1,000 requests of 128 in / 128 out, up to 256 at once; tiny on
         * the CPU: 200 requests, up to 32 at once (each about a minute) */
        if (!a->num_prompts_given) a->ds.num_prompts = gpu ? 1000 : 200;
        if (!conc_given) {
            a->conc[0] = gpu ? 256 : 32;
            a->n_conc = 1;
        }
    }
    mkdir("reports", 0755);
    if (!a->output) {
        a->output = "reports/latest.csv";
        remove(a->output); /* latest is a fresh report, not a history */
    }
    if (!a->requests_csv) a->requests_csv = "reports/latest-requests.csv";
    if (!a->timeline_csv) a->timeline_csv = "reports/latest-timeline.csv";
    if (!a->plot_dir) a->plot_dir = "reports/latest";
    a->mode = "throughput";
    fprintf(stderr, "ignis bench: embedded default: %s, random 128 in / 128 out, %d requests, concurrency %d\n",
            a->model, a->ds.num_prompts, a->conc[0]);
    return mode_throughput(a);
}

int bench_main(int argc, char **argv, bench_engine_flag_fn engine_flag, bench_engine_env_fn engine_env,
               const char *engine_flags_help)
{
    const char *mode = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    if (mode && !strcmp(mode, "compare")) return bench_compare(argc - 1, argv + 1);
    if (mode && !strcmp(mode, "plot")) return bench_plot_cmd(argc - 1, argv + 1);
    static const char *modes[] = {"generation", "throughput", "serving"};
    bool known = !mode;
    for (int i = 0; i < 3 && mode; i++)
        known |= !strcmp(mode, modes[i]);
    if (!known) {
        fprintf(stderr, "ignis bench: unknown mode '%s' (expected generation, throughput, serving, compare, plot)\n",
                mode);
        return 2;
    }
    bench_args a;
    int r = mode ? bench_args_parse(&a, mode, argc - 1, argv + 1, engine_flag, engine_flags_help)
                 : bench_args_parse(&a, "default", argc, argv, engine_flag, engine_flags_help);
    if (r) return r == 1 ? 0 : 2;
    if (engine_env && !engine_env(&a.eo)) return 2;
    a.eo.progress = NULL;
    if (!mode) return mode_default(&a);
    if (!strcmp(mode, "generation")) return bench_mode_generation(&a);
    if (!strcmp(mode, "serving")) return mode_serving(&a);
    return mode_throughput(&a);
}
