/* Reading per-request CSVs back (compare's bootstrap, plots). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "requests_data.h"

char *bench_resolve_beside(const char *report_path, const char *path)
{
    if (access(path, R_OK) == 0) return strdup(path);
    const char *slash = strrchr(report_path, '/');
    if (!slash) return strdup(path);
    /* beside the report: its directory + the file's own name */
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t n = (size_t)(slash - report_path) + strlen(base) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%.*s/%s", (int)(slash - report_path), report_path, base);
    return p;
}

/* Cell (row, col) of t as a number; false when empty or absent. */
static bool num(const bench_table *t, int row, const char *col, double *v)
{
    double x = bench_table_num(t, row, col);
    if (isnan(x)) return false;
    *v = x;
    return true;
}

int bench_samples_load(const char *report_path, const char *path, bench_samples *s)
{
    memset(s, 0, sizeof *s);
    char *p = bench_resolve_beside(report_path, path);
    bench_table t;
    int rc = p ? bench_csv_read(p, &t) : -1;
    free(p);
    if (rc) return -1;
    size_t n = (size_t)(t.nrows ? t.nrows : 1), n_itl = 0;
    for (int i = 0; i < t.nrows; i++) {
        const char *l = bench_table_get(&t, i, "itl_ms_list");
        for (; l && *l; l++)
            n_itl += *l == ' ';
        n_itl++;
    }
    s->ttft = malloc(n * sizeof(double));
    s->tpot = malloc(n * sizeof(double));
    s->e2e = malloc(n * sizeof(double));
    s->itl = malloc((n_itl ? n_itl : 1) * sizeof(double));
    s->sent = malloc(n * sizeof(double));
    s->first = malloc(n * sizeof(double));
    s->end = malloc(n * sizeof(double));
    if (!s->ttft || !s->tpot || !s->e2e || !s->itl || !s->sent || !s->first || !s->end) {
        bench_table_free(&t);
        bench_samples_free(s);
        return bench_err("%s: out of memory", path), -1;
    }
    for (int i = 0; i < t.nrows; i++) {
        double ok = 0, v, ready = 0, sent = 0;
        num(&t, i, "ok", &ok);
        num(&t, i, "ready_s", &ready);
        num(&t, i, "sent_s", &sent);
        s->sent[s->n_req] = sent;
        s->first[s->n_req] = num(&t, i, "ttft_ms", &v) ? ready + v / 1e3 : -1;
        s->end[s->n_req] = num(&t, i, "e2e_ms", &v) ? ready + v / 1e3 : sent;
        s->n_req++;
        if (!ok) continue;
        if (num(&t, i, "ttft_ms", &v)) s->ttft[s->n_ttft++] = v;
        if (num(&t, i, "tpot_ms", &v)) s->tpot[s->n_tpot++] = v;
        if (num(&t, i, "e2e_ms", &v)) s->e2e[s->n_e2e++] = v;
        const char *l = bench_table_get(&t, i, "itl_ms_list");
        while (l && *l) {
            char *e;
            v = strtod(l, &e);
            if (e == l) break;
            s->itl[s->n_itl++] = v;
            l = e;
        }
    }
    bench_table_free(&t);
    return 0;
}

void bench_samples_free(bench_samples *s)
{
    free(s->ttft), free(s->tpot), free(s->e2e), free(s->itl), free(s->sent), free(s->first), free(s->end);
    memset(s, 0, sizeof *s);
}

const double *bench_samples_for(const bench_samples *s, const char *metric, int *n)
{
    static const struct {
        const char *prefix;
        size_t off_x, off_n;
    } map[] = {{"ttft_ms_", offsetof(bench_samples, ttft), offsetof(bench_samples, n_ttft)},
               {"tpot_ms_", offsetof(bench_samples, tpot), offsetof(bench_samples, n_tpot)},
               {"e2e_ms_", offsetof(bench_samples, e2e), offsetof(bench_samples, n_e2e)},
               {"itl_ms_", offsetof(bench_samples, itl), offsetof(bench_samples, n_itl)}};
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
        if (!strncmp(metric, map[k].prefix, strlen(map[k].prefix))) {
            *n = *(const int *)((const char *)s + map[k].off_n);
            return *(double *const *)((const char *)s + map[k].off_x);
        }
    *n = 0;
    return NULL;
}
