/* Per-request samples read back from a `--requests-csv` file (compare's bootstrap, plots). */
#ifndef IG_BENCH_REQUESTS_DATA_H
#define IG_BENCH_REQUESTS_DATA_H

#include "bench.h"

typedef struct bench_samples {
    double *ttft, *tpot, *e2e, *itl; /* milliseconds, successful requests only */
    int n_ttft, n_tpot, n_e2e, n_itl;
    double *sent, *first, *end; /* request timeline (seconds; first -1 when none) */
    int n_req;
} bench_samples;

/* A CSV named in a report row: path as given when readable, else the file of that name
 * beside the report (reports move with their CSVs). malloc'd; NULL when out of memory. */
char *bench_resolve_beside(const char *report_path, const char *path);
/* path as written in a report row: tried as given, then beside the report. */
int bench_samples_load(const char *report_path, const char *path, bench_samples *out);
void bench_samples_free(bench_samples *s);
/* The samples of one metric column name ("ttft_ms_p99" -> ttft); NULL when none. */
const double *bench_samples_for(const bench_samples *s, const char *metric, int *n);

#endif
