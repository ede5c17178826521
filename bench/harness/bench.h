/*
 * The benchmark harness behind `ignis bench`: the types every part shares.
 *
 * Data path: args -> workload (dataset loaders) -> arrival schedule -> replay (in-process
 * engine or HTTP) -> per-request records -> metrics -> report row (CSV) -> summary, plots,
 * compare. Each arrow is one file; this header is the contract between them.
 *
 * Times are seconds (double) on CLOCK_MONOTONIC unless a name says _ms; token counts are ints.
 */
#ifndef IG_BENCH_H
#define IG_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ignis.h"

/* ------------------------------------------------------------------ errors
 * Harness functions return 0 on success, -1 on failure with a one-line message in
 * bench_errmsg() (what, where, why), like the library's ignis_last_error(). */
void bench_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *bench_errmsg(void);
double bench_now(void); /* CLOCK_MONOTONIC seconds */

/* ---------------------------------------------------------------- random
 * splitmix64-seeded xoshiro256** — the same seed gives the same workload and schedule on
 * every machine (no libc rand()). */
typedef struct bench_rng {
    uint64_t s[4];
} bench_rng;
void bench_rng_seed(bench_rng *r, uint64_t seed);
uint64_t bench_rng_u64(bench_rng *r);
double bench_rng_uniform(bench_rng *r);                  /* [0, 1) */
int bench_rng_range(bench_rng *r, int lo, int hi);       /* [lo, hi] inclusive */
double bench_rng_gamma(bench_rng *r, double shape);      /* Gamma(shape, scale 1) */
double bench_rng_exponential(bench_rng *r, double rate); /* mean 1/rate */

/* -------------------------------------------------------------- workload */
typedef struct bench_item {
    char *prompt;       /* text, or NULL when the prompt is ids only */
    int32_t *ids;       /* prompt ids (tokenized when a tokenizer was available) */
    int n_ids;          /* prompt tokens; -1 when unknown (text without a tokenizer) */
    int output_len;     /* tokens to generate (max_new_tokens) */
    bool ignore_eos;    /* generate exactly output_len */
    int conversation;   /* multiturn: conversation index; -1 for single requests */
    int turn;           /* multiturn: 0-based turn within its conversation */
    char *expected_out; /* ShareGPT: the dataset's answer (kept for reference) */
} bench_item;

typedef struct bench_workload {
    bench_item *items;
    int n;
    char name[256];      /* "sharegpt:FILE", "random", "jsonl:FILE", ... */
    char hash[17];       /* 64-bit FNV-1a of the requests (ids/text, lengths), hex */
    int n_conversations; /* multiturn: conversations; else 0 */
} bench_workload;
void bench_workload_free(bench_workload *w);
void bench_workload_hash(bench_workload *w);

typedef enum bench_dataset {
    BENCH_DS_RANDOM = 0,
    BENCH_DS_SHAREGPT,
    BENCH_DS_SONNET,
    BENCH_DS_PREFIX,
    BENCH_DS_MULTITURN,
    BENCH_DS_JSONL
} bench_dataset;
int bench_dataset_parse(const char *s, bench_dataset *out);

typedef struct bench_ds_opts {
    bench_dataset kind;
    const char *path;   /* dataset file (sharegpt, sonnet, multiturn, jsonl) */
    int num_prompts;    /* requests (multiturn: conversations) */
    int input_len;      /* random/prefix/sonnet: prompt tokens */
    int output_len;     /* random: output tokens; also the fixed length of --output-len */
    bool output_fixed;  /* --output-len given: overrides every dataset's output length */
    double range_ratio; /* random: lengths uniform in [len*(1-r), len*(1+r)] */
    int prefix_len;     /* prefix/sonnet/random: shared prefix tokens */
    int vocab;          /* ids drawn in [3, vocab) for random prompts */
    int max_prompt_len; /* longer prompts are cut to this many tokens (0: no limit) */
    int max_turns;      /* multiturn: at most this many turns per conversation */
    bool ignore_eos;
    uint64_t seed;
    const ignis_tokenizer *tok; /* NULL: text prompts stay text (n_ids -1) */
} bench_ds_opts;
void bench_ds_opts_init(bench_ds_opts *o);
/* Builds the workload; on a bad file the message names the file and the line. */
int bench_workload_load(const bench_ds_opts *o, bench_workload *out);
/* The parsers alone (used by the loader; tested directly). */
int bench_load_sharegpt(const bench_ds_opts *o, bench_workload *out);
int bench_load_jsonl(const bench_ds_opts *o, bench_workload *out);
int bench_load_multiturn(const bench_ds_opts *o, bench_workload *out);
int bench_load_sonnet(const bench_ds_opts *o, bench_workload *out);
int bench_load_random(const bench_ds_opts *o, bench_workload *out);

/* -------------------------------------------------------------- schedule
 * Arrival offsets (seconds from the start) of n requests at `rate` requests/s: gaps are
 * Gamma(shape = burstiness, scale = 1/(rate*burstiness)) — mean 1/rate, variance
 * 1/(rate^2 * burstiness); burstiness 1 is a Poisson process. rate <= 0 or inf: all at 0. */
int bench_schedule(double rate, double burstiness, uint64_t seed, int n, double *offsets);

/* ---------------------------------------------------------------- records
 * One per request, filled by a replay; all times relative to the run's start (t0). */
typedef struct bench_record {
    int index;          /* workload item */
    double scheduled;   /* when the schedule said to send it */
    double ready;       /* max(scheduled, slot free, previous turn done): latency origin */
    double sent;        /* when it was actually submitted/sent */
    double ttft;        /* first token - ready; -1 when none */
    double e2e;         /* finished - ready */
    double queue;       /* in-process: submit -> first scheduled; -1 over HTTP */
    double prefill;     /* in-process: first scheduled -> first token; -1 over HTTP */
    double decode;      /* first token -> finished */
    int prompt_tokens;  /* as counted by the engine (or the tokenizer over HTTP) */
    int output_tokens;  /* generated tokens (counted by us) */
    int usage_tokens;   /* HTTP: the server's usage.completion_tokens; -1 when absent */
    int counted_tokens; /* HTTP: tokens our tokenizer counted in the streamed text; -1 when not */
    int cached_tokens;  /* in-process: prefix-cache/session tokens; -1 when unknown */
    int preemptions;
    double prefill_own;    /* profiling: this request's share of its prefill steps (s), -1 unknown */
    double prefill_shared; /* profiling: the rest of those steps (other requests' tokens), -1 unknown */
    bool ok;
    char error[160];
    double *token_times; /* output_tokens times (relative to ready) of each token */
} bench_record;

/* A timeline sample of the engine (in-process) or of the server's /metrics (HTTP). */
typedef struct bench_sample {
    double t;        /* seconds since t0 */
    double kv_usage; /* used / total blocks, 0..1 (-1 unknown) */
    int running, waiting, batch_size;
    int in_flight;       /* client-side requests outstanding */
    double tokens_per_s; /* generated tok/s over the last interval */
} bench_sample;

typedef struct bench_run {
    bench_record *recs;
    int n;
    double duration; /* first send .. last finish */
    bench_sample *samples;
    int n_samples, cap_samples;
    /* in-process engine counters over the run (deltas); -1 when unknown */
    long long preemptions;
    long long prefix_queries, prefix_hits;
    int peak_in_flight;
} bench_run;
void bench_run_free(bench_run *r);
/* TPOT of a request in seconds: (E2E - TTFT) / (output tokens - 1); NAN with fewer than two
 * tokens or no first token. */
double bench_tpot(const bench_record *r);
int bench_run_add_sample(bench_run *r, const bench_sample *s);
/* Sets every sample's tokens_per_s from the records' token times: the tokens that arrived
 * after the previous sample and up to this one, over that interval. For a replay over HTTP,
 * where only the client sees tokens (a chunk may carry several; they are split only once
 * the stream is tokenized), and whether or not /metrics was scraped. */
int bench_run_token_rates(bench_run *r);

/* ----------------------------------------------------------------- replay */
typedef struct bench_replay_opts {
    int concurrency;     /* most requests in flight; <= 0: unlimited */
    double request_rate; /* requests/s of the arrival schedule; <= 0 or inf: all at once */
    double burstiness;   /* gamma shape of the gaps (1: Poisson) */
    uint64_t seed;
    int warmup;            /* requests run (and discarded) before the measured window */
    double sample_every_s; /* timeline sampling period */
    bool progress;         /* progress line on a TTY */
    ignis_sampling sampling;
    /* HTTP only */
    const char *base_url;       /* "http://host:port" */
    const char *endpoint;       /* "completions" or "chat" */
    const char *served_model;   /* "model" field; NULL: ask /v1/models */
    const ignis_tokenizer *tok; /* counts streamed tokens; NULL: usage or 1 per chunk */
    bool scrape_metrics;        /* sample GET /metrics (Prometheus) on the timeline */
    const char *api_key;
    bool send_ids; /* completions: send prompts as token-id arrays (servers without a tokenizer) */
    /* in-process profiling (profiling.c): the measured window begins (after the warm-up)
     * and ends; each request's record is filled, before its handle is released */
    void (*on_window)(void *user, bool begin);
    void (*on_request)(void *user, ignis_request *req, bench_record *rec);
    void *hook_user;
} bench_replay_opts;
void bench_replay_opts_init(bench_replay_opts *o);

/* Open-loop replay of w through the in-process engine / an OpenAI-compatible server.
 * Latency origin per request: `ready` = max(scheduled arrival, the moment a concurrency
 * slot freed if it had to wait for one, the previous turn's end); schedule lag = sent -
 * ready is the client's own delay and is reported, never hidden. */
int bench_replay_engine(ignis_engine *e, const bench_workload *w, const bench_replay_opts *o, bench_run *out);
/* When each request may be sent: single requests and first turns at their offset on o's
 * schedule (rate, burstiness, seed), later turns at INFINITY until the turn before ends;
 * next_turn[i]: the item of i's conversation that follows it, -1 for none. */
int bench_arrivals(const bench_workload *w, const bench_replay_opts *o, double *release, int *next_turn);
int bench_replay_http(const bench_workload *w, const bench_replay_opts *o, bench_run *out);

/* Per-token arrival times of a streamed answer: chunks (arrival time, cumulative bytes of
 * text) and the full text; tokens are located by tokenizing the full text once and
 * mapping each token's end byte to the chunk that delivered it (no per-chunk
 * re-tokenization). The server's usage_tokens (when > 0) is the authoritative count:
 * a tokenizer count that differs (re-tokenizing text can merge or split tokens) is
 * rescaled onto it and returned in *counted for the mismatch check. Without a tokenizer:
 * usage_tokens spread over the chunks by bytes, else one token per chunk. Returns the
 * token count, times malloc'd in *times (NULL when 0); *counted = -1 without a tokenizer. */
int bench_stream_token_times(const ignis_tokenizer *tok, const char *text, size_t text_len, const double *chunk_t,
                             const size_t *chunk_end, int n_chunks, int usage_tokens, double **times, int *counted);

/* ------------------------------------------------------------ statistics
 * Percentile: linear interpolation between closest ranks (NumPy's default "linear",
 * Hyndman-Fan type 7): p-th of sorted x[0..n-1] at rank h = (n-1)*p/100,
 * x[floor h] + (h - floor h)*(x[floor h + 1] - x[floor h]). Std: sample (n-1). */
typedef struct bench_dist {
    int n;
    double mean, std, min, max, p50, p90, p95, p99;
} bench_dist;
int bench_cmp_double(const void *a, const void *b); /* qsort order of doubles, ascending */
double bench_percentile_sorted(const double *sorted, int n, double p);
void bench_dist_of(const double *x, int n, bench_dist *out); /* x need not be sorted */
double bench_mean(const double *x, int n);
double bench_stddev(const double *x, int n); /* sample; 0 when n < 2 */
/* Percentile bootstrap CI of the p-th percentile: B resamples with replacement, the
 * (alpha/2, 1-alpha/2) percentiles of the resampled statistic. Deterministic in seed. */
void bench_bootstrap_ci(const double *x, int n, double p, int B, double alpha, uint64_t seed, double *lo, double *hi);
/* A static batch's rates from its token times: times[i*n + k] is request i's token k in
 * seconds from the batch's submit (b requests, n tokens each, p prompt tokens each). The
 * prefill phase ends at the last first token T1, the batch at the last token T2:
 *   prefill tok/s = b*p / T1
 *   decode tok/s  = (tokens after T1) / (T2 - T1)
 * Only tokens after T1 count towards decode: when the prompts take several steps
 * (b*p > max_prefill_token_num) the requests prefilled first decode alongside the later
 * prompts, and those tokens fall in the prefill phase. NAN where a phase is empty. */
void bench_batch_rates(const double *times, int b, int n, int p, double *prefill_tok_s, double *decode_tok_s);

typedef struct bench_slo {
    double ttft_ms, tpot_ms, e2e_ms; /* <= 0: not set */
} bench_slo;
int bench_slo_parse(const char *s, bench_slo *out);

/* vLLM's definitions: TPOT per request = (e2e - ttft)/(out - 1) over requests with out > 1;
 * ITL = every gap between consecutive tokens of a request, pooled over requests; goodput =
 * completed requests meeting every SLO set / duration. */
typedef struct bench_metrics {
    int completed, failed;
    double duration_s;
    long long input_tokens, output_tokens;
    double req_per_s, input_tok_s, output_tok_s, total_tok_s;
    bench_dist ttft_ms, tpot_ms, itl_ms, e2e_ms;
    bench_dist queue_ms, prefill_ms, decode_ms, lag_ms;
    double goodput_req_s;
    int peak_concurrency;
    double kv_peak, kv_mean, batch_mean; /* -1 unknown */
    long long preemptions;               /* -1 unknown */
    double prefix_hit_rate;              /* -1 unknown */
    long long usage_mismatch;            /* HTTP: sum |ours - usage|; -1 unknown */
} bench_metrics;
void bench_metrics_compute(const bench_run *r, const bench_slo *slo, bench_metrics *m);

/* ---------------------------------------------------------------- report */
#define BENCH_SCHEMA_VERSION 1
/* The report's columns, in order (reports/README.md documents each). */
int bench_report_ncols(void);
const char *bench_report_col(int i);
int bench_report_col_index(const char *name);

/* A row: one string per column ("" = NA). */
typedef struct bench_row {
    char **v;
} bench_row;
int bench_row_init(bench_row *r);
void bench_row_free(bench_row *r);
void bench_row_set(bench_row *r, const char *col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *bench_row_get(const bench_row *r, const char *col);

typedef struct bench_table {
    char **header;
    int ncols;
    char ***rows; /* rows[i][j] */
    int nrows;
} bench_table;
/* Reads a CSV file (libcsv) with a header line; -1 with file:line on a malformed file. */
int bench_csv_read(const char *path, bench_table *out);
void bench_table_free(bench_table *t);
const char *bench_table_get(const bench_table *t, int row, const char *col);
/* A cell as a number; NaN when absent, empty (NA) or not wholly a number. */
double bench_table_num(const bench_table *t, int row, const char *col);
/* Writes path atomically (temp + rename): header + rows; append = keep the file's rows
 * first, refusing a file whose header is not this schema's. */
int bench_report_write(const char *path, const bench_row *rows, int n, bool append);
/* Generic atomic CSV writer: header ncols names, rows of ncols strings each. */
int bench_csv_write_atomic(const char *path, const char *const *header, int ncols, const char *const *cells, int nrows);
/* The same for cells the caller malloc'd (NULL allowed: empty); frees each and the array. */
int bench_csv_write_owned(const char *path, const char *const *header, int ncols, char **cells, int nrows);
/* A numeric cell: printf of v with fmt, "" (NA) when v is NaN or infinite; malloc'd. */
char *bench_cell(const char *fmt, double v);
/* The file of one sweep point: base itself for a single point, else the point's index
 * before the extension (x.csv -> x.2.csv). */
void bench_point_path(const char *base, int point, int points, char *out, size_t cap);

/* Per-request and timeline CSVs (written atomically). */
int bench_write_requests_csv(const char *path, const bench_run *r, const char *config);
int bench_write_timeline_csv(const char *path, const bench_run *r, const char *config);

/* Fills a row's metadata and metric columns. */
typedef struct bench_meta {
    const char *mode, *model, *dtype, *backend, *workload, *workload_hash, *config;
    uint64_t seed;
} bench_meta;
void bench_row_fill_meta(bench_row *row, const bench_meta *m);
void bench_row_fill_metrics(bench_row *row, const bench_metrics *m);
/* Self-checks (schedule lag, usage mismatch, failures): sets `valid` and `invalid_reasons`. */
void bench_row_check_validity(bench_row *row, const bench_metrics *m);

/* --------------------------------------------------------------- outputs */
void bench_summary_print(FILE *f, const char *title, const bench_metrics *m);
/* Progress line on stderr when it is a TTY: requests done, tok/s, ETA. */
typedef struct bench_progress {
    bool tty;
    int total;
    double t0, last;
} bench_progress;
void bench_progress_init(bench_progress *p, int total);
void bench_progress_update(bench_progress *p, int done, long long tokens);
void bench_progress_end(bench_progress *p);

/* Plots of a report (PNG + SVG via gnuplot) and its HTML page into dir. */
int bench_plot_report(const char *report_csv, const char *dir);
/* Several reports compared (their sweeps' tok/s and p99 TTFT on one axis: compare.png/.svg)
 * and the comparison's HTML page into dir. Reports sweeping different axes are refused. */
int bench_plot_compare(char *const *reports, int n, const char *dir);

/* ------------------------------------------------------------------ modes */
typedef int (*bench_engine_flag_fn)(const char *cmd, int argc, char **argv, int *i, ignis_engine_opts *o);
/* The CLI's environment knobs (IGNIS_CUDA_*) onto engine options; false after printing why. */
typedef bool (*bench_engine_env_fn)(ignis_engine_opts *o);
/* Entry point: argv[0] is "bench". engine_flag parses the shared engine flags (the CLI's),
 * engine_env (may be NULL) applies the CLI's environment knobs. */
int bench_main(int argc, char **argv, bench_engine_flag_fn engine_flag, bench_engine_env_fn engine_env,
               const char *engine_flags_help);

int bench_compare(int argc, char **argv);
int bench_plot_cmd(int argc, char **argv);

#endif
