/* `ignis bench` profiling (profiling.h): the profilers' lifecycle around each replay, the
 * --kernels pass, the per-kernel and per-step CSVs, the report's profiling columns and the
 * self-checks they add (kernel profile perturbed, GPU throttled, CUPTI records dropped). */
#include "profiling.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --kernels may cost this much tok/s before its figures are marked perturbed */
#define PERTURBED_PCT 5.0

int bench_prof_open(const bench_prof_opts *o, bench_prof *bp)
{
    memset(bp, 0, sizeof *bp);
    bp->o = *o;
    ignis_profiler_opts po;
    ignis_profiler_opts_init(&po);
    po.device = o->device;
    po.telemetry_ms = o->telemetry_ms;
    if (o->kernels) {
        /* first: CUPTI must be set up before anything touches the device */
        po.kernels = true;
        po.profile_window = o->profile_window;
        if (ignis_profiler_create(&po, &bp->kern) != IGNIS_OK)
            return bench_err("profiler (--kernels): %s", ignis_last_error()), -1;
    }
    po.kernels = false;
    po.profile_window = o->profile_window && !o->kernels;
    if (ignis_profiler_create(&po, &bp->plain) != IGNIS_OK) {
        bench_prof_close(bp);
        return bench_err("profiler: %s", ignis_last_error()), -1;
    }
    return 0;
}

void bench_prof_close(bench_prof *bp)
{
    ignis_profiler_destroy(bp->plain);
    ignis_profiler_destroy(bp->kern);
    bp->plain = bp->kern = bp->cur = NULL;
}

/* The measured window of a replay (after its warm-up) is the profiler's window. */
static void on_window(void *user, bool begin)
{
    bench_prof *bp = user;
    if (begin) {
        ignis_profiler_attach(bp->cur, bp->engine);
        if (ignis_profiler_start(bp->cur) != IGNIS_OK)
            fprintf(stderr, "ignis bench: profiler: %s\n", ignis_last_error());
    } else {
        if (ignis_profiler_stop(bp->cur) != IGNIS_OK)
            fprintf(stderr, "ignis bench: profiler: %s\n", ignis_last_error());
        ignis_profiler_attach(bp->cur, NULL);
    }
}

static void on_request(void *user, ignis_request *req, bench_record *q)
{
    bench_prof *bp = user;
    ignis_ttft_breakdown b;
    if (ignis_profiler_ttft(bp->cur, req, &b) == IGNIS_OK) {
        q->prefill_own = b.prefill_own_s;
        q->prefill_shared = b.prefill_shared_s;
    }
}

void bench_prof_hooks(bench_prof *bp, ignis_engine *e, bool kernels, bench_replay_opts *ro)
{
    bp->engine = e;
    bp->cur = kernels ? bp->kern : bp->plain;
    ro->on_window = on_window;
    ro->on_request = on_request;
    ro->hook_user = bp;
}

/* FILE or, by default, REPORT.what.csv (what.csv without a report). */
static void csv_path(const char *given, const char *report, const char *what, int point, int points, char *out,
                     size_t cap)
{
    char base[1024];
    if (given)
        snprintf(base, sizeof base, "%s", given);
    else if (report) {
        const char *dot = strrchr(report, '.');
        if (!dot || strchr(dot, '/')) dot = report + strlen(report);
        snprintf(base, sizeof base, "%.*s.%s.csv", (int)(dot - report), report, what);
    } else
        snprintf(base, sizeof base, "%s.csv", what);
    bench_point_path(base, point, points, out, cap);
}

static int write_kernels_csv(const char *path, const ignis_profiler *p, const char *config)
{
    static const char *hdr[] = {"config", "kernel",      "calls",          "total_ms",  "excl_ms",     "mean_us",
                                "min_us", "max_us",      "share",          "gbytes",    "gflop",       "gbps",
                                "tflops", "pct_peak_bw", "pct_peak_flops", "peak_gbps", "peak_tflops", "example"};
    const int nc = (int)(sizeof hdr / sizeof hdr[0]);
    const ignis_kernel_row *k;
    int n = ignis_profiler_kernels(p, &k);
    ignis_profile_summary s;
    ignis_profiler_summary(p, &s);
    char **c = calloc((size_t)nc * (size_t)(n ? n : 1), sizeof(char *));
    if (!c) return bench_err("%s: out of memory", path), -1;
    for (int i = 0; i < n; i++) {
        char **r = c + (size_t)i * nc;
        r[0] = strdup(config);
        r[1] = strdup(k[i].name);
        r[2] = bench_cell("%.0f", (double)k[i].calls);
        r[3] = bench_cell("%.4f", k[i].total_ms);
        r[4] = bench_cell("%.4f", k[i].excl_ms);
        r[5] = bench_cell("%.3f", k[i].mean_us);
        r[6] = bench_cell("%.3f", k[i].min_us);
        r[7] = bench_cell("%.3f", k[i].max_us);
        r[8] = bench_cell("%.5f", k[i].share);
        r[9] = bench_cell("%.6f", k[i].bytes > 0 ? k[i].bytes * 1e-9 : NAN);
        r[10] = bench_cell("%.6f", k[i].flops > 0 ? k[i].flops * 1e-9 : NAN);
        r[11] = bench_cell("%.1f", k[i].gbps);
        r[12] = bench_cell("%.3f", k[i].tflops);
        r[13] = bench_cell("%.2f", k[i].pct_peak_bw);
        r[14] = bench_cell("%.2f", k[i].pct_peak_flops);
        r[15] = bench_cell("%.1f", s.peak_gbps);
        r[16] = bench_cell("%.2f", s.peak_tflops);
        r[17] = strdup(k[i].example);
    }
    return bench_csv_write_owned(path, hdr, nc, c, n);
}

static int write_steps_csv(const char *path, const ignis_profiler *p, const char *config)
{
    static const char *hdr[] = {"config",         "step",    "t_s",         "batch_size",  "tokens",
                                "prefill_tokens", "host_ms", "host_gap_ms", "gpu_busy_ms", "launch_gap_ms",
                                "n_kernels",      "mbytes",  "gbps",        "pct_peak_bw"};
    const int nc = (int)(sizeof hdr / sizeof hdr[0]);
    const ignis_step_row *s;
    int n = ignis_profiler_steps(p, &s);
    char **c = calloc((size_t)nc * (size_t)(n ? n : 1), sizeof(char *));
    if (!c) return bench_err("%s: out of memory", path), -1;
    for (int i = 0; i < n; i++) {
        char **r = c + (size_t)i * nc;
        r[0] = strdup(config);
        r[1] = bench_cell("%.0f", (double)s[i].step);
        r[2] = bench_cell("%.6f", s[i].t_s);
        r[3] = bench_cell("%.0f", s[i].batch_size);
        r[4] = bench_cell("%.0f", s[i].tokens);
        r[5] = bench_cell("%.0f", s[i].prefill_tokens);
        r[6] = bench_cell("%.4f", s[i].host_s * 1e3);
        r[7] = bench_cell("%.4f", s[i].host_gap_s * 1e3);
        r[8] = bench_cell("%.4f", s[i].gpu_busy_s * 1e3);
        r[9] = bench_cell("%.4f", s[i].launch_gap_s * 1e3);
        r[10] = bench_cell("%.0f", isnan(s[i].gpu_busy_s) ? NAN : s[i].n_kernels);
        r[11] = bench_cell("%.3f", s[i].bytes > 0 ? s[i].bytes * 1e-6 : NAN);
        r[12] = bench_cell("%.1f", s[i].gbps);
        r[13] = bench_cell("%.2f", s[i].pct_peak_bw);
    }
    return bench_csv_write_owned(path, hdr, nc, c, n);
}

/* Appends a reason to the row's self-check verdict and marks it invalid. */
static void invalidate(bench_row *row, const char *why)
{
    const char *old = bench_row_get(row, "invalid_reasons");
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%s%s", old && *old ? old : "", old && *old ? "; " : "", why);
    bench_row_set(row, "invalid_reasons", "%s", buf);
    bench_row_set(row, "valid", "0");
}

/* What share of the slowest 1% of TTFTs was queueing, own prefill, shared prefill. */
static void print_ttft_breakdown(FILE *f, const bench_run *run, double p99_ms)
{
    double ttft = 0, queue = 0, own = 0, shared = 0;
    int n = 0;
    for (int i = 0; i < run->n; i++) {
        const bench_record *q = &run->recs[i];
        if (!q->ok || q->ttft < 0 || q->ttft * 1e3 < p99_ms || q->prefill_own < 0) continue;
        ttft += q->ttft;
        queue += q->queue;
        own += q->prefill_own;
        shared += q->prefill_shared;
        n++;
    }
    if (!n || ttft <= 0) return;
    fprintf(f, "%-36s queueing %.1f%%, own prefill %.1f%%, prefill shared with others %.1f%%, rest %.1f%% (%d req)\n",
            "TTFT >= p99 is:", 100 * queue / ttft, 100 * own / ttft, 100 * shared / ttft,
            100 * (ttft - queue - own - shared) / ttft, n);
}

static void print_profile(FILE *f, const ignis_profiler *p, double overhead_pct)
{
    ignis_profile_summary s;
    ignis_profiler_summary(p, &s);
    fprintf(f, "------------ kernel profile (--kernels pass) ------------\n");
    if (!s.kernels_available) {
        fprintf(f, "kernel timings unavailable: %s\n", s.kernels_note);
        return;
    }
    fprintf(f, "%-36s %.1f%% (%.3f s of %.3f s); decode steps at %.1f%% of %.0f GB/s\n",
            "GPU busy:", 100 * s.gpu_busy_frac, s.gpu_busy_s, s.window_s, 100 * s.decode_step_bw_frac, s.peak_gbps);
    fprintf(f, "%-36s %.2f%% tok/s; CUPTI overhead records %.3f ms; dropped %llu\n", "Cost of --kernels:", overhead_pct,
            s.cupti_overhead_s * 1e3, (unsigned long long)s.records_dropped);
    const ignis_kernel_row *k;
    int n = ignis_profiler_kernels(p, &k);
    fprintf(f, "%-18s %8s %10s %9s %6s %8s %7s %8s %7s\n", "kernel", "calls", "excl ms", "mean us", "share", "GB/s",
            "%peak", "TFLOP/s", "%peak");
    for (int i = 0; i < n && i < 8; i++)
        fprintf(f, "%-18.18s %8llu %10.2f %9.2f %5.1f%% %8.0f %6.1f%% %8.2f %6.1f%%\n", k[i].name,
                (unsigned long long)k[i].calls, k[i].excl_ms, k[i].mean_us, 100 * k[i].share, k[i].gbps,
                k[i].pct_peak_bw, k[i].tflops, k[i].pct_peak_flops);
}

int bench_prof_point(bench_prof *bp, const bench_workload *w, const bench_replay_opts *ro, const bench_metrics *m,
                     const bench_run *run, const char *config, int point, int points, bench_row *row)
{
    if (!bp || !bp->plain) return 0;
    int rc = 0;
    char path[1100];
    ignis_profile_summary s;
    ignis_profiler_summary(bp->plain, &s);
    if (s.telemetry_available) {
        bench_row_set(row, "energy_j", "%.2f", s.energy_j);
        bench_row_set(row, "tokens_per_joule", "%.4f", s.tokens_per_joule);
        bench_row_set(row, "mean_watts", "%.1f", s.mean_w);
        bench_row_set(row, "throttled", "%d", s.throttled);
        if (!isnan(s.max_mem_used_mb)) bench_row_set(row, "peak_device_mem_mb", "%.0f", s.max_mem_used_mb);
        if (s.throttled) {
            char why[96];
            snprintf(why, sizeof why, "GPU throttled during the run (NVML clocks-event reasons 0x%llx)",
                     (unsigned long long)s.throttle_reasons);
            invalidate(row, why);
        }
        printf("%-36s %.1f J, %.0f W mean (max %.0f W), %.3f tokens/J%s", "Energy (NVML):", s.energy_j, s.mean_w,
               s.max_w, s.tokens_per_joule, s.throttled ? ", THROTTLED" : "");
        if (s.throttle_reasons & 0x4) printf(", at the power cap"); /* the loaded board's regime */
        printf(" (clock reasons 0x%llx)\n", (unsigned long long)s.throttle_reasons);
    }
    print_ttft_breakdown(stdout, run, m->ttft_ms.p99);
    const ignis_profiler *steps_of = bp->plain;
    ignis_profile_summary pre;
    if (bp->o.kernels && bp->kern && ignis_profiler_summary(bp->kern, &pre) == IGNIS_OK && pre.kernels_note[0]) {
        /* no CUPTI here (no GPU, CPU build): no second pass, the kernel columns stay NA */
        printf("%-36s unavailable: %s\n", "Kernel profile (--kernels):", pre.kernels_note);
    } else if (bp->o.kernels && bp->kern) {
        /* the same point again under CUPTI: metrics of this pass only measure the cost */
        bench_replay_opts ro2 = *ro;
        ro2.warmup = 0;
        bench_prof_hooks(bp, bp->engine, true, &ro2);
        bench_run run2;
        if (bench_replay_engine(bp->engine, w, &ro2, &run2) != 0) return -1;
        bench_slo none = {0, 0, 0};
        bench_metrics m2;
        bench_metrics_compute(&run2, &none, &m2);
        bench_run_free(&run2);
        bp->cur = bp->plain;
        double overhead = m->output_tok_s > 0 ? 100.0 * (1.0 - m2.output_tok_s / m->output_tok_s) : NAN;
        ignis_profile_summary sk;
        ignis_profiler_summary(bp->kern, &sk);
        const ignis_kernel_row *k;
        int nk = ignis_profiler_kernels(bp->kern, &k);
        bench_row_set(row, "kernels_overhead_pct", "%.2f", overhead);
        if (sk.kernels_available) {
            bench_row_set(row, "gpu_busy_frac", "%.4f", sk.gpu_busy_frac);
            if (nk > 0) {
                bench_row_set(row, "top_kernel", "%s", k[0].name);
                bench_row_set(row, "top_kernel_share", "%.4f", k[0].share);
            }
            csv_path(bp->o.kernels_csv, bp->o.report, "kernels", point, points, path, sizeof path);
            if (write_kernels_csv(path, bp->kern, config) != 0) rc = -1;
            bench_row_set(row, "kernels_csv", "%s", path);
            if (overhead > PERTURBED_PCT) {
                char why[128];
                snprintf(why, sizeof why, "kernel profile perturbed: --kernels cost %.1f%% of tok/s (> %.0f%%)",
                         overhead, PERTURBED_PCT);
                invalidate(row, why);
            }
            if (sk.records_dropped > 0) {
                char why[96];
                snprintf(why, sizeof why, "CUPTI dropped %llu activity records",
                         (unsigned long long)sk.records_dropped);
                invalidate(row, why);
            }
        }
        print_profile(stdout, bp->kern, overhead);
        steps_of = bp->kern;
    }
    if (bp->o.steps_csv || (bp->o.kernels && bp->kern)) {
        csv_path(bp->o.steps_csv, bp->o.report, "steps", point, points, path, sizeof path);
        if (write_steps_csv(path, steps_of, config) != 0) rc = -1;
    }
    return rc;
}
