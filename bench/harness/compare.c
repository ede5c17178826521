/*
 * ignis bench compare BASE.csv NEW.csv [--tolerance PCT] [--metrics a,b,...] [--seed S]
 *
 * Matches rows by configuration (mode, model, backend, workload hash, config) and prints
 * each metric's change. A metric regresses when it got worse by more than the tolerance
 * (default 5%); for a latency percentile whose rows both have per-request data, it must
 * also be outside noise: the 95% bootstrap confidence intervals (2,000 resamples) of the
 * two runs' percentiles must not overlap. So run-to-run noise passes and a real shift fails.
 *
 * Exit status (a CI gate):
 *   0  no regression
 *   1  at least one metric regressed beyond the tolerance
 *   2  usage error, unreadable or malformed report
 *   3  nothing to judge: no rows matched, or a matched NEW row is marked invalid (its
 *      self-checks failed: schedule lag, failures, token-count mismatch)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "requests_data.h"

static const char *const k_default_metrics[] = {
    "output_tok_s", "req_per_s",  "prefill_tok_s", "decode_tok_s", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50",
    "tpot_ms_p99",  "itl_ms_p50", "itl_ms_p99",    "e2e_ms_p50",   "e2e_ms_p99",  NULL};

static bool lower_is_better(const char *m) { return strstr(m, "_ms") != NULL; }

static const char *const k_key[] = {"mode", "model", "backend", "workload_hash", "config"};

static bool same_config(const bench_table *a, int i, const bench_table *b, int j)
{
    for (size_t k = 0; k < sizeof k_key / sizeof k_key[0]; k++) {
        const char *x = bench_table_get(a, i, k_key[k]), *y = bench_table_get(b, j, k_key[k]);
        if (!x || !y || strcmp(x, y)) return false;
    }
    return true;
}

static bool value(const bench_table *t, int r, const char *col, double *v)
{
    *v = bench_table_num(t, r, col);
    return !isnan(*v);
}

/* The per-request samples of a matched row pair: read when the first metric of the pair
 * needs them, then shared by the pair's other metrics (each file is read at most once). */
typedef struct pair_samples {
    int state; /* 0 not read yet, 1 read, -1 unavailable */
    bench_samples b, n;
} pair_samples;

static bool pair_load(pair_samples *ps, const char *base_path, const char *new_path, const bench_table *b, int i,
                      const bench_table *n, int j)
{
    if (ps->state) return ps->state > 0;
    const char *pb = bench_table_get(b, i, "requests_csv"), *pn = bench_table_get(n, j, "requests_csv");
    ps->state = -1;
    if (!pb || !*pb || !pn || !*pn || bench_samples_load(base_path, pb, &ps->b) != 0) return false;
    if (bench_samples_load(new_path, pn, &ps->n) != 0) {
        bench_samples_free(&ps->b);
        return false;
    }
    ps->state = 1;
    return true;
}

static void pair_free(pair_samples *ps)
{
    if (ps->state > 0) bench_samples_free(&ps->b), bench_samples_free(&ps->n);
    ps->state = 0;
}

/* True when the bootstrap CIs of the percentile in `metric` separate base and new. */
static int ci_separated(pair_samples *ps, const char *base_path, const char *new_path, const bench_table *b, int i,
                        const bench_table *n, int j, const char *metric, uint64_t seed, char *note, size_t cap)
{
    const char *pct = strrchr(metric, 'p');
    if (!pct || !strncmp(metric + strlen(metric) - 4, "mean", 4)) return -1;
    double p = atof(pct + 1);
    if (!(p > 0) || !pair_load(ps, base_path, new_path, b, i, n, j)) return -1;
    int nb, nn;
    const double *xb = bench_samples_for(&ps->b, metric, &nb), *xn = bench_samples_for(&ps->n, metric, &nn);
    if (!xb || !xn || nb <= 1 || nn <= 1) return -1;
    double bl, bh, nl, nh;
    bench_bootstrap_ci(xb, nb, p, 2000, 0.05, seed, &bl, &bh);
    bench_bootstrap_ci(xn, nn, p, 2000, 0.05, seed + 1, &nl, &nh);
    snprintf(note, cap, "CI95 base [%.3g, %.3g] new [%.3g, %.3g]", bl, bh, nl, nh);
    return nl > bh || nh < bl;
}

int bench_compare(int argc, char **argv)
{
    const char *paths[2] = {NULL, NULL};
    double tol = 5.0;
    const char *metrics[64];
    int nm = 0, np = 0;
    uint64_t seed = 0;
    char *mlist = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: ignis bench compare BASE.csv NEW.csv [--tolerance PCT (5)] [--metrics a,b,...] [--seed S]\n"
                   "exit: 0 no regression, 1 regression, 2 bad input, 3 no matching rows or NEW marked invalid\n");
            return 0;
        }
        if (!strcmp(argv[i], "--tolerance") && i + 1 < argc) {
            char *e;
            tol = strtod(argv[++i], &e);
            if (*e || tol < 0) {
                fprintf(stderr, "ignis bench compare: --tolerance expects a percentage >= 0\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--metrics") && i + 1 < argc) {
            mlist = strdup(argv[++i]);
            for (char *tok = strtok(mlist, ","); tok && nm < 63; tok = strtok(NULL, ","))
                metrics[nm++] = tok;
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (argv[i][0] != '-' && np < 2)
            paths[np++] = argv[i];
        else {
            fprintf(stderr, "ignis bench compare: unexpected argument '%s'\n", argv[i]);
            free(mlist);
            return 2;
        }
    }
    if (np != 2) {
        fprintf(stderr, "usage: ignis bench compare BASE.csv NEW.csv [--tolerance PCT] [--metrics a,b,...]\n");
        free(mlist);
        return 2;
    }
    if (!nm)
        for (; k_default_metrics[nm]; nm++)
            metrics[nm] = k_default_metrics[nm];
    bench_table b, n;
    if (bench_csv_read(paths[0], &b) != 0) {
        fprintf(stderr, "ignis bench compare: %s\n", bench_errmsg());
        free(mlist);
        return 2;
    }
    if (bench_csv_read(paths[1], &n) != 0) {
        fprintf(stderr, "ignis bench compare: %s\n", bench_errmsg());
        bench_table_free(&b);
        free(mlist);
        return 2;
    }
    for (int k = 0; k < nm; k++)
        if (bench_report_col_index(metrics[k]) < 0) {
            fprintf(stderr, "ignis bench compare: unknown metric '%s' (a report column such as ttft_ms_p99)\n",
                    metrics[k]);
            bench_table_free(&b), bench_table_free(&n), free(mlist);
            return 2;
        }
    int matched = 0, regressions = 0, invalid = 0;
    printf("%-34s %-14s %12s %12s %9s  %s\n", "config", "metric", "base", "new", "change", "verdict");
    for (int j = 0; j < n.nrows; j++) {
        int i = 0;
        while (i < b.nrows && !same_config(&b, i, &n, j))
            i++;
        if (i == b.nrows) continue;
        matched++;
        const char *cfg = bench_table_get(&n, j, "config");
        const char *valid = bench_table_get(&n, j, "valid");
        if (valid && !strcmp(valid, "0")) {
            invalid++;
            printf("%-34s %-14s %s\n", cfg, "(row)", "NEW marked invalid:");
            printf("    %s\n", bench_table_get(&n, j, "invalid_reasons"));
        }
        pair_samples ps = {0};
        for (int k = 0; k < nm; k++) {
            double vb, vn;
            if (!value(&b, i, metrics[k], &vb) || !value(&n, j, metrics[k], &vn)) continue;
            double change = vb != 0 ? (vn - vb) / fabs(vb) * 100.0 : 0.0;
            double worse = lower_is_better(metrics[k]) ? change : -change;
            const char *verdict = "ok";
            char note[160] = "";
            if (worse > tol) {
                int sep = ci_separated(&ps, paths[0], paths[1], &b, i, &n, j, metrics[k], seed, note, sizeof note);
                if (sep == 0)
                    verdict = "noise (CIs overlap)";
                else {
                    verdict = "REGRESSION";
                    regressions++;
                }
            } else if (-worse > tol)
                verdict = "improved";
            printf("%-34s %-14s %12.4g %12.4g %+8.2f%%  %s %s\n", cfg, metrics[k], vb, vn, change, verdict, note);
        }
        pair_free(&ps);
    }
    bench_table_free(&b);
    bench_table_free(&n);
    free(mlist);
    if (!matched) {
        fprintf(stderr,
                "ignis bench compare: no row of %s matches a row of %s (mode, model, backend, workload_hash, "
                "config)\n",
                paths[1], paths[0]);
        return 3;
    }
    printf("%d matched row(s), %d regression(s) beyond %.1f%%%s\n", matched, regressions, tol,
           invalid ? ", NEW has invalid rows" : "");
    if (regressions) return 1;
    return invalid ? 3 : 0;
}
