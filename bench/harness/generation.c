/* `ignis bench generation`: static batches (llama-bench / LMDeploy profile_generation).
 * For every (batch b, prompt p, output n): b requests of p random ids are submitted at
 * once and generate exactly n tokens; optionally after --depth tokens already sit in each
 * sequence's KV cache (a session prefilled first, not timed).
 *   prefill tok/s = b*p / (last first-token time)
 *   decode tok/s  = tokens after it / (last token time - last first-token time)
 * (bench_batch_rates). The engine batches continuously: when b*p exceeds
 * max_prefill_token_num the prompts take several steps, and the requests prefilled first
 * decode alongside the later prompts. Those tokens count in the prefill phase, and their
 * ITLs (a step that carries a prompt chunk) are in the ITL percentiles.
 * Each figure is the mean and sample stddev over -r repetitions (after --warmup runs);
 * TTFT and per-token latency (ITL) percentiles pool every repetition's samples. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modes.h"

typedef struct rep_result {
    double prefill_tok_s, decode_tok_s;
} rep_result;

/* n random prompt ids, drawn in [3, vocab) like the random workload's. */
static void random_ids(bench_rng *r, int32_t *ids, int n, int vocab)
{
    for (int k = 0; k < n; k++)
        ids[k] = 3 + (int32_t)(bench_rng_u64(r) % (uint64_t)(vocab - 3));
}

/* One repetition; appends TTFTs and ITLs (ms) to the pools (none for a warm-up: NULL). */
static int one_rep(ignis_engine *e, const ignis_model_info *info, int b, int p, int n, int depth, uint64_t seed,
                   rep_result *out, double *ttft, int *n_ttft, double *itl, size_t *n_itl)
{
    bench_rng r;
    bench_rng_seed(&r, seed);
    ignis_request **req = calloc((size_t)b, sizeof *req);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(p > depth ? p : depth + 1));
    uint64_t sess = ((uint64_t)bench_now() << 16) + 7;
    int rc = 0;
    if (!req || !ids) {
        free(req), free(ids);
        return bench_err("out of memory"), -1;
    }
    for (int i = 0; depth > 0 && i < b && !rc; i++) {
        ignis_request_params pr;
        ignis_request_params_init(&pr);
        random_ids(&r, ids, depth, info->vocab_size);
        pr.prompt_ids = ids;
        pr.n_prompt_ids = depth;
        pr.max_new_tokens = 1;
        pr.ignore_eos = true;
        pr.session_id = sess + (uint64_t)i;
        ignis_request *d;
        if (ignis_engine_submit(e, &pr, &d) != IGNIS_OK) {
            bench_err("--depth %d: %s", depth, ignis_last_error());
            rc = -1;
            break;
        }
        ignis_request_wait(d, -1);
        ignis_request_release(d);
    }
    for (int i = 0; i < b && !rc; i++) {
        ignis_request_params pr;
        ignis_request_params_init(&pr);
        random_ids(&r, ids, p, info->vocab_size);
        pr.prompt_ids = ids;
        pr.n_prompt_ids = p;
        pr.max_new_tokens = n;
        pr.ignore_eos = true;
        if (depth > 0) pr.session_id = sess + (uint64_t)i;
        if (ignis_engine_submit(e, &pr, &req[i]) != IGNIS_OK) {
            bench_err("batch %d, prompt %d, output %d: %s", b, p, n, ignis_last_error());
            rc = -1;
        }
    }
    /* b x n token times; they run from each request's submit, and the batch is submitted
     * within microseconds, so they are taken as the batch's times */
    double *times = calloc((size_t)b * (size_t)n, sizeof(double));
    if (!times && !rc) {
        bench_err("out of memory for %d x %d token times", b, n);
        rc = -1;
    }
    for (int i = 0; i < b; i++) {
        if (!req[i]) continue;
        ignis_request_wait(req[i], -1);
        ignis_request_result res;
        ignis_request_get_result(req[i], &res);
        if (!rc && (res.status != IGNIS_OK || res.generated_tokens != n)) {
            bench_err("batch %d, prompt %d, output %d: a request generated %d tokens (%s)", b, p, n,
                      res.generated_tokens, ignis_request_error(req[i]));
            rc = -1;
        }
        if (ttft) ttft[(*n_ttft)++] = res.ttft_s * 1e3;
        double *ti = times ? times + (size_t)i * n : NULL;
        int nt = ti ? ignis_request_tokens(req[i], NULL, ti, n) : 0;
        for (int k = 1; itl && k < nt && k < n; k++)
            itl[(*n_itl)++] = (ti[k] - ti[k - 1]) * 1e3;
        ignis_request_release(req[i]);
    }
    for (int i = 0; depth > 0 && i < b; i++)
        ignis_engine_end_session(e, sess + (uint64_t)i);
    if (!rc) bench_batch_rates(times, b, n, p, &out->prefill_tok_s, &out->decode_tok_s);
    free(times), free(req), free(ids);
    return rc;
}

/* Device memory and energy of a configuration's repetitions, from the profiler's NVML
 * telemetry (the columns stay empty where there is none: CPU backend, no driver). */
static void fill_telemetry(ignis_profiler *tp, bench_row *row)
{
    ignis_profile_summary s;
    ignis_profiler_summary(tp, &s);
    if (!s.telemetry_available) return;
    if (!isnan(s.max_mem_used_mb)) bench_row_set(row, "peak_device_mem_mb", "%.0f", s.max_mem_used_mb);
    if (!isnan(s.energy_j)) bench_row_set(row, "energy_j", "%.2f", s.energy_j);
    if (!isnan(s.mean_w)) bench_row_set(row, "mean_watts", "%.1f", s.mean_w);
}

static int one_config(ignis_engine *e, ignis_profiler *tp, const ignis_model_info *info, const bench_args *a, int b,
                      int p, int n, bench_row *row)
{
    int reps = a->reps;
    rep_result *rr = calloc((size_t)reps, sizeof *rr);
    double *ttft = malloc(sizeof(double) * (size_t)b * (size_t)reps);
    double *itl = malloc(sizeof(double) * (size_t)b * (size_t)reps * (size_t)(n > 1 ? n - 1 : 1));
    int n_ttft = 0, rc = 0;
    size_t n_itl = 0;
    if (!rr || !ttft || !itl) {
        free(rr), free(ttft), free(itl);
        return bench_err("out of memory"), -1;
    }
    for (int w = 0; w < a->gen_warmup && !rc; w++) {
        rep_result tmp;
        rc = one_rep(e, info, b, p, n, a->depth, a->seed + 1000 + (uint64_t)w, &tmp, NULL, NULL, NULL, NULL);
    }
    bool watched = tp && ignis_profiler_attach(tp, e) == IGNIS_OK && ignis_profiler_start(tp) == IGNIS_OK;
    for (int k = 0; k < reps && !rc; k++)
        rc = one_rep(e, info, b, p, n, a->depth, a->seed + (uint64_t)k, &rr[k], ttft, &n_ttft, itl, &n_itl);
    if (watched) {
        ignis_profiler_stop(tp);
        ignis_profiler_attach(tp, NULL);
        if (!rc) fill_telemetry(tp, row);
    }
    if (!rc) {
        double pf[1024], dc[1024];
        int m = reps < 1024 ? reps : 1024;
        char samples[4096] = "";
        size_t sl = 0;
        for (int k = 0; k < m; k++) {
            pf[k] = rr[k].prefill_tok_s;
            dc[k] = rr[k].decode_tok_s;
            if (sl < sizeof samples)
                sl += (size_t)snprintf(samples + sl, sizeof samples - sl, "%s%.2f/%.2f", k ? ";" : "", pf[k], dc[k]);
        }
        bench_dist dt, di;
        bench_dist_of(ttft, n_ttft, &dt);
        bench_dist_of(itl, (int)n_itl, &di);
        char config[96];
        snprintf(config, sizeof config, "b=%d,p=%d,n=%d,depth=%d", b, p, n, a->depth);
        bench_row_set(row, "config", "%s", config);
        bench_row_set(row, "batch_size", "%d", b);
        bench_row_set(row, "prompt_len", "%d", p);
        bench_row_set(row, "output_len", "%d", n);
        bench_row_set(row, "depth", "%d", a->depth);
        bench_row_set(row, "repetitions", "%d", reps);
        bench_row_set(row, "completed", "%d", b * reps);
        bench_row_set(row, "failed", "0");
        bench_row_set(row, "prefill_tok_s", "%.3f", bench_mean(pf, m));
        bench_row_set(row, "prefill_tok_s_std", "%.3f", bench_stddev(pf, m));
        bench_row_set(row, "decode_tok_s", "%.3f", bench_mean(dc, m));
        bench_row_set(row, "decode_tok_s_std", "%.3f", bench_stddev(dc, m));
        bench_row_set(row, "output_tok_s", "%.3f", bench_mean(dc, m));
        bench_row_set(row, "ttft_ms_mean", "%.4f", dt.mean);
        bench_row_set(row, "ttft_ms_std", "%.4f", dt.std);
        bench_row_set(row, "ttft_ms_p50", "%.4f", dt.p50);
        bench_row_set(row, "ttft_ms_p90", "%.4f", dt.p90);
        bench_row_set(row, "ttft_ms_p99", "%.4f", dt.p99);
        if (di.n) {
            bench_row_set(row, "itl_ms_mean", "%.4f", di.mean);
            bench_row_set(row, "itl_ms_std", "%.4f", di.std);
            bench_row_set(row, "itl_ms_p50", "%.4f", di.p50);
            bench_row_set(row, "itl_ms_p90", "%.4f", di.p90);
            bench_row_set(row, "itl_ms_p95", "%.4f", di.p95);
            bench_row_set(row, "itl_ms_p99", "%.4f", di.p99);
        }
        bench_row_set(row, "samples", "%s", samples);
        bench_row_set(row, "valid", "1");
        printf("b=%-4d p=%-5d n=%-5d prefill %10.1f ± %-8.1f tok/s  decode %9.1f ± %-7.1f tok/s  TTFT p50 %8.2f ms  "
               "ITL p50 %7.2f p90 %7.2f p99 %7.2f ms\n",
               b, p, n, bench_mean(pf, m), bench_stddev(pf, m), bench_mean(dc, m), bench_stddev(dc, m), dt.p50,
               di.n ? di.p50 : NAN, di.n ? di.p90 : NAN, di.n ? di.p99 : NAN);
        fflush(stdout);
    }
    free(rr), free(ttft), free(itl);
    return rc;
}

int bench_mode_generation(bench_args *a)
{
    if (!a->model) a->model = "synthetic:tiny";
    if (!a->n_batch) a->batch[a->n_batch++] = 1;
    if (!a->n_plen) a->plen[a->n_plen++] = 128;
    if (!a->n_olen) a->olen[a->n_olen++] = 128;
    ignis_model *m;
    ignis_model_info info;
    ignis_engine *e = NULL;
    /* NVML telemetry (no kernel timings) for each configuration's peak device memory and
     * energy; without it the run goes on and those columns stay empty */
    ignis_profiler *tp = NULL;
    ignis_profiler_opts po;
    ignis_profiler_opts_init(&po);
    po.device = a->eo.device;
    po.telemetry_ms = a->telemetry_ms;
    if (a->telemetry_ms > 0 && ignis_profiler_create(&po, &tp) != IGNIS_OK) tp = NULL;
    if (bench_open_model(a, &m, &info) != 0) {
        fprintf(stderr, "ignis bench: %s\n", bench_errmsg());
        ignis_profiler_destroy(tp);
        return 1;
    }
    if (ignis_engine_create(m, &a->eo, &e) != IGNIS_OK) {
        fprintf(stderr, "ignis bench: engine: %s\n", ignis_last_error());
        ignis_model_close(m);
        return 1;
    }
    int total = a->n_batch * a->n_plen * a->n_olen, n = 0, rc = 0;
    bench_row *rows = calloc((size_t)total, sizeof *rows);
    for (int i = 0; i < a->n_batch && !rc; i++)
        for (int j = 0; j < a->n_plen && !rc; j++)
            for (int k = 0; k < a->n_olen && !rc; k++) {
                bench_row *row = &rows[n];
                if (bench_row_init(row) != 0) {
                    rc = -1;
                    break;
                }
                n++;
                bench_meta meta = {.mode = "generation",
                                   .model = a->model,
                                   .dtype = info.weight_dtype,
                                   .backend = info.backend,
                                   .workload = "static:random-ids",
                                   .workload_hash = "",
                                   .seed = a->seed};
                bench_row_fill_meta(row, &meta);
                rc = one_config(e, tp, &info, a, a->batch[i], a->plen[j], a->olen[k], row);
            }
    if (rc)
        fprintf(stderr, "ignis bench generation: %s\n", bench_errmsg());
    else
        rc = bench_finish(a, rows, n);
    for (int i = 0; i < n; i++)
        bench_row_free(&rows[i]);
    free(rows);
    ignis_engine_destroy(e);
    ignis_model_close(m);
    ignis_profiler_destroy(tp);
    return rc ? 1 : 0;
}
