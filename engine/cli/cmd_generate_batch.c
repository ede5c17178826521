/*
 * ignis generate MODEL --batch IN.jsonl: offline batch generation through the scheduler.
 *
 * Input: one JSON object per line (blank lines skipped), "-" for stdin:
 *   {"prompt": "text"} or {"prompt_ids": [1, 2, 3]}, plus optional "max_new_tokens" (default
 *   128), "temperature", "top_k", "top_p", "repetition_penalty", "seed", "ignore_eos",
 *   "stop" (a string or an array: strings are stop words, integers stop ids), "priority",
 *   and "id" (any JSON value, echoed back).
 * Output: one JSON line per request on stdout, in input order, each written as soon as it
 * and every request before it are done:
 *   {"index", "id"?, "ids", "text" (with a tokenizer), "finish_reason", "prompt_tokens",
 *    "generated_tokens", "cached_tokens", "preemptions", "queue_ms", "ttft_ms", "e2e_ms"}
 *   or {"index", "id"?, "error"} for a request that failed (bad line, too long, ...).
 * Then one summary line on stderr: {"summary": "generate-batch", ...}.
 * Exit status 0 when every request succeeded, 1 when any failed (the others still ran).
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "cli.h"

static double ig_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define DEFAULT_MAX_NEW 128

typedef struct breq {
    int line;   /* 1-based input line */
    json_t *id; /* echoed "id", or NULL */
    int32_t *ids;
    int n_ids;
    char *prompt;
    ignis_request_params p;
    char **stop_words;
    int n_stop_words;
    int32_t *stop_ids;
    int n_stop_ids;
    bool failed; /* before or at submit; error says why (NULL: out of memory) */
    char *error;
    ignis_request *req;
    bool done; /* under bstate.mu */
    struct bstate *b;
} breq;

typedef struct bstate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int finished; /* requests whose last event arrived */
} bstate;

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* A malloc'd message (NULL only when out of memory, which print_result reports). */
static char *fmt_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_error(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return xstrdup(buf);
}

#define OOM_ERROR "out of memory"

static const char *k_fields[] = {"prompt", "prompt_ids", "max_new_tokens",     "temperature", "top_k",    "top_p",
                                 "seed",   "ignore_eos", "repetition_penalty", "stop",        "priority", "id",
                                 NULL};

/* Fills q from one parsed line; on a problem sets q->error (left NULL when out of memory)
 * and returns false. */
static bool parse_request(json_t *o, const ignis_gen_opts *defaults, breq *q)
{
    ignis_request_params_init(&q->p);
    q->p.max_new_tokens = DEFAULT_MAX_NEW;
    if (defaults) {
        /* the command line's sampling flags are every line's defaults */
        q->p.sampling = defaults->sampling;
        q->p.max_new_tokens = defaults->max_new_tokens;
        q->p.ignore_eos = defaults->ignore_eos;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        bool known = false;
        for (int i = 0; k_fields[i]; i++)
            known |= !strcmp(key, k_fields[i]);
        if (!known) {
            q->error = fmt_error("unknown field \"%s\" (expected prompt or prompt_ids, max_new_tokens, temperature, "
                                 "top_k, top_p, repetition_penalty, seed, ignore_eos, stop, priority, id)",
                                 key);
            return false;
        }
    }
    json_t *pr = json_object_get(o, "prompt"), *pi = json_object_get(o, "prompt_ids");
    if ((pr != NULL) == (pi != NULL)) {
        q->error = xstrdup("give exactly one of \"prompt\" (text) or \"prompt_ids\" (array of ids)");
        return false;
    }
    if (pr) {
        if (!json_is_string(pr)) {
            q->error = xstrdup("\"prompt\" must be a string");
            return false;
        }
        if (!(q->prompt = xstrdup(json_string_value(pr)))) return false;
        q->p.prompt = q->prompt;
    } else {
        if (!json_is_array(pi)) {
            q->error = xstrdup("\"prompt_ids\" must be an array of token ids");
            return false;
        }
        q->n_ids = (int)json_array_size(pi);
        q->ids = malloc(sizeof(int32_t) * (size_t)(q->n_ids ? q->n_ids : 1));
        if (!q->ids) return false;
        for (int i = 0; i < q->n_ids; i++) {
            json_t *x = json_array_get(pi, (size_t)i);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 0x7fffffff) {
                q->error = fmt_error("\"prompt_ids\"[%d] is not a non-negative integer", i);
                return false;
            }
            q->ids[i] = (int32_t)json_integer_value(x);
        }
        q->p.prompt_ids = q->ids;
        q->p.n_prompt_ids = q->n_ids;
    }
    /* integer fields take integers only: 3.7 tokens is a mistake, not 3 */
#define NUM_FIELD(name, lo, hi, dst, cast, integral)                                                                   \
    if ((v = json_object_get(o, name))) {                                                                              \
        if (integral ? !json_is_integer(v) : !json_is_number(v)) {                                                     \
            q->error =                                                                                                 \
                fmt_error("\"%s\" must be %s in %s", name, integral ? "an integer" : "a number", #lo " .. " #hi);      \
            return false;                                                                                              \
        }                                                                                                              \
        double x_ = json_number_value(v);                                                                              \
        if (!(x_ >= (lo) && x_ <= (hi))) {                                                                             \
            q->error = fmt_error("\"%s\" must be in %s, got %g", name, #lo " .. " #hi, x_);                            \
            return false;                                                                                              \
        }                                                                                                              \
        dst = (cast)x_;                                                                                                \
    }
    NUM_FIELD("max_new_tokens", 1, 16777216, q->p.max_new_tokens, int, true);
    NUM_FIELD("temperature", 0, 100, q->p.sampling.temperature, float, false);
    NUM_FIELD("top_k", 0, 16777216, q->p.sampling.top_k, int, true);
    NUM_FIELD("top_p", 1e-9, 1, q->p.sampling.top_p, float, false);
    NUM_FIELD("repetition_penalty", 1e-9, 100, q->p.sampling.repetition_penalty, float, false);
    NUM_FIELD("priority", -1000000, 1000000, q->p.priority, int, true);
#undef NUM_FIELD
    if ((v = json_object_get(o, "seed"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            q->error = xstrdup("\"seed\" must be a non-negative integer");
            return false;
        }
        q->p.sampling.seed = (uint64_t)json_integer_value(v);
    }
    if ((v = json_object_get(o, "ignore_eos"))) {
        if (!json_is_boolean(v)) {
            q->error = xstrdup("\"ignore_eos\" must be true or false");
            return false;
        }
        q->p.ignore_eos = json_is_true(v);
    }
    if ((v = json_object_get(o, "stop"))) {
        json_t *arr = v;
        bool single = json_is_string(v);
        if (!single && !json_is_array(v)) {
            q->error = xstrdup("\"stop\" must be a string or an array of strings and ids");
            return false;
        }
        size_t n = single ? 1 : json_array_size(arr);
        q->stop_words = calloc(n ? n : 1, sizeof(char *));
        q->stop_ids = calloc(n ? n : 1, sizeof(int32_t));
        if (!q->stop_words || !q->stop_ids) return false;
        for (size_t i = 0; i < n; i++) {
            json_t *x = single ? v : json_array_get(arr, i);
            if (json_is_string(x) && json_string_length(x) > 0) {
                if (!(q->stop_words[q->n_stop_words] = xstrdup(json_string_value(x)))) return false;
                q->n_stop_words++;
            } else if (json_is_integer(x) && json_integer_value(x) >= 0 && json_integer_value(x) <= 0x7fffffff) {
                q->stop_ids[q->n_stop_ids++] = (int32_t)json_integer_value(x);
            } else {
                q->error = xstrdup("\"stop\" entries must be non-empty strings (stop words) or token ids");
                return false;
            }
        }
        q->p.stop_words = (const char *const *)q->stop_words;
        q->p.n_stop_words = q->n_stop_words;
        q->p.stop_ids = q->stop_ids;
        q->p.n_stop_ids = q->n_stop_ids;
    }
    if ((v = json_object_get(o, "id"))) q->id = json_incref(v);
    return true;
}

static void breq_free(breq *q)
{
    if (q->req) ignis_request_release(q->req);
    json_decref(q->id);
    free(q->ids);
    free(q->prompt);
    for (int i = 0; i < q->n_stop_words; i++)
        free(q->stop_words[i]);
    free(q->stop_words);
    free(q->stop_ids);
    free(q->error);
}

static void breqs_free(breq *qs, int n)
{
    for (int i = 0; i < n; i++)
        breq_free(&qs[i]);
    free(qs);
}

/* JSON strings must be valid UTF-8: bytes that are not become U+FFFD (the copy is made
 * only when jansson refuses the text as it is). "" when out of memory. */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j) return j;
    size_t n = strlen(s);
    char *o = malloc(3 * n + 1);
    if (!o) return json_string("");
    j = json_stringn(o, ignis_utf8_sanitize(s, n, o));
    free(o);
    return j ? j : json_string("");
}

static void on_event(void *user, ignis_request *r, const ignis_event *ev)
{
    (void)r;
    if (ev->type != IGNIS_EVENT_FINISHED && ev->type != IGNIS_EVENT_ERROR) return;
    breq *q = user;
    bstate *b = q->b;
    pthread_mutex_lock(&b->mu);
    q->done = true;
    b->finished++;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Sets o[key] = v (which it takes); false when either is missing (out of memory). */
static bool put(json_t *o, const char *key, json_t *v) { return v && json_object_set_new(o, key, v) == 0; }

/* The result object of a request that ran; NULL when out of memory. */
static json_t *result_json(int index, breq *q, const ignis_request_result *res)
{
    json_t *o = json_object();
    bool ok = o && put(o, "index", json_integer(index)) && (!q->id || json_object_set(o, "id", q->id) == 0);
    int n = ignis_request_tokens(q->req, NULL, NULL, 0);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    json_t *a = json_array();
    ok = ok && ids && a;
    if (ok) n = ignis_request_tokens(q->req, ids, NULL, n);
    for (int i = 0; ok && i < n; i++)
        ok = json_array_append_new(a, json_integer(ids[i])) == 0;
    free(ids);
    if (ok)
        ok = put(o, "ids", a); /* json_object_set_new takes a, also when it fails */
    else
        json_decref(a);
    char *text = ok ? ignis_request_text(q->req) : NULL;
    if (text) ok = put(o, "text", json_text(text));
    free(text);
    ok = ok && put(o, "finish_reason", json_string(ignis_finish_reason_name(res->finish_reason))) &&
         put(o, "prompt_tokens", json_integer(res->prompt_tokens)) &&
         put(o, "generated_tokens", json_integer(res->generated_tokens)) &&
         put(o, "cached_tokens", json_integer(res->cached_tokens)) &&
         put(o, "preemptions", json_integer(res->preemptions)) && put(o, "queue_ms", json_real(res->queue_s * 1e3)) &&
         put(o, "ttft_ms", json_real(res->ttft_s >= 0 ? res->ttft_s * 1e3 : -1)) &&
         put(o, "e2e_ms", json_real(res->e2e_s * 1e3));
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *error_json(int index, breq *q, const char *err)
{
    json_t *o = json_object();
    if (o && put(o, "index", json_integer(index)) && (!q->id || json_object_set(o, "id", q->id) == 0) &&
        put(o, "error", json_text(err)))
        return o;
    json_decref(o);
    return NULL;
}

/* Writes request index's line; a line that cannot be built still says so, in JSON. */
static void print_result(int index, breq *q, uint64_t *gen_tokens, uint64_t *prompt_tokens, int *failed)
{
    const char *err = q->failed ? (q->error ? q->error : OOM_ERROR) : NULL;
    ignis_request_result res;
    if (!err && q->req) {
        ignis_request_get_result(q->req, &res);
        if (res.finish_reason == IGNIS_FINISH_ERROR) err = ignis_request_error(q->req);
    }
    json_t *o = err ? error_json(index, q, err) : result_json(index, q, &res);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(o);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    } else {
        printf("{\"index\":%d,\"error\":\"out of memory writing the result\"}\n", index);
        err = OOM_ERROR;
    }
    if (err) {
        (*failed)++;
    } else {
        *gen_tokens += (uint64_t)res.generated_tokens;
        *prompt_tokens += (uint64_t)res.prompt_tokens;
    }
    fflush(stdout);
}

/* Reads and parses every line; parse problems become per-request errors. */
static int read_requests(const char *path, const ignis_gen_opts *defaults, breq **out, int *n_out)
{
    struct stat sb;
    if (strcmp(path, "-") && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "ignis: generate --batch: %s is a directory; give a JSONL file (one request per line)\n", path);
        return -1;
    }
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        fprintf(stderr, "ignis: generate --batch: cannot open %s: %m\n", path);
        return -1;
    }
    breq *qs = NULL;
    int n = 0, cap = 0, lineno = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        size_t k = 0;
        while (k < (size_t)len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r' || line[k] == '\n'))
            k++;
        if (k == (size_t)len) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            breq *nq = realloc(qs, sizeof *qs * (size_t)cap);
            if (!nq) {
                fprintf(stderr, "ignis: generate --batch: out of memory reading %s\n", path);
                free(line);
                if (f != stdin) fclose(f);
                breqs_free(qs, n);
                return -1;
            }
            qs = nq;
        }
        breq *q = &qs[n++];
        memset(q, 0, sizeof *q);
        q->line = lineno;
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)len, 0, &je);
        if (!json_is_object(o)) {
            q->failed = true;
            q->error = o ? fmt_error("line %d: not a JSON object", lineno)
                         : fmt_error("line %d: invalid JSON: %s", lineno, je.text);
        } else if (!parse_request(o, defaults, q)) {
            char *e = q->error;
            q->failed = true;
            q->error = fmt_error("line %d: %s", lineno, e ? e : OOM_ERROR);
            free(e);
        }
        json_decref(o);
    }
    int read_errno = errno;
    bool err = ferror(f);
    free(line);
    if (f != stdin) fclose(f);
    if (err) {
        fprintf(stderr, "ignis: generate --batch: error reading %s: %s\n", path, strerror(read_errno));
        breqs_free(qs, n);
        return -1;
    }
    *out = qs;
    *n_out = n;
    return 0;
}

int cmd_generate_batch(const char *model, const char *jsonl_path, int concurrency, const ignis_engine_opts *eo_in,
                       const ignis_gen_opts *defaults)
{
    breq *qs = NULL;
    int n = 0;
    if (read_requests(jsonl_path, defaults, &qs, &n) != 0) return 1;
    if (n == 0) {
        fprintf(stderr, "ignis: generate --batch: %s holds no requests\n", jsonl_path);
        free(qs);
        return 1;
    }
    ignis_engine_opts eo = *eo_in;
    eo.progress = cli_progress;
    ignis_model *m = NULL;
    ignis_engine *e = NULL;
    double t_load = ig_now();
    ignis_status s = ignis_model_open(model, &eo, &m);
    if (s != IGNIS_OK) {
        int rc = cli_fail(s, "generate --batch");
        breqs_free(qs, n);
        return rc;
    }
    t_load = ig_now() - t_load;
    if ((s = ignis_engine_create(m, &eo, &e)) != IGNIS_OK) {
        int rc = cli_fail(s, "generate --batch");
        ignis_model_close(m);
        breqs_free(qs, n);
        return rc;
    }
    bstate b;
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    b.finished = 0;
    if (concurrency <= 0 || concurrency > n) concurrency = n;

    double t0 = ig_now();
    int submitted = 0, in_flight_submitted = 0, next_out = 0, failed = 0;
    uint64_t gen_tokens = 0, prompt_tokens = 0;
    for (;;) {
        /* submit while under the concurrency limit */
        pthread_mutex_lock(&b.mu);
        int fin = b.finished;
        pthread_mutex_unlock(&b.mu);
        while (submitted < n && in_flight_submitted - fin < concurrency) {
            breq *q = &qs[submitted++];
            if (q->failed) continue;
            q->p.on_event = on_event;
            q->p.user = q;
            q->b = &b;
            if (ignis_engine_submit(e, &q->p, &q->req) != IGNIS_OK) {
                q->failed = true;
                q->error = fmt_error("line %d: %s", q->line, ignis_last_error());
                q->req = NULL;
                continue;
            }
            in_flight_submitted++;
        }
        /* write finished results in input order */
        while (next_out < submitted) {
            breq *q = &qs[next_out];
            pthread_mutex_lock(&b.mu);
            bool done = q->done;
            pthread_mutex_unlock(&b.mu);
            if (q->req && !done) break;
            print_result(next_out, q, &gen_tokens, &prompt_tokens, &failed);
            if (q->req) {
                ignis_request_release(q->req);
                q->req = NULL;
            }
            next_out++;
        }
        if (next_out == n) break;
        pthread_mutex_lock(&b.mu);
        if (b.finished == fin) pthread_cond_wait(&b.cv, &b.mu);
        pthread_mutex_unlock(&b.mu);
    }
    double elapsed = ig_now() - t0;
    ignis_engine_stats st = {0};
    ignis_engine_get_stats(e, &st); /* cannot fail on a live engine */
    ignis_engine_destroy(e);
    ignis_model_info info = {.backend = "?"};
    ignis_model_get_info(m, &info); /* cannot fail on an open model */
    json_t *sum = json_pack(
        "{s:s, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:f, s:f, s:f, s:f, s:i, s:i, s:i, s:I, s:I, s:I, s:I}", "summary",
        "generate-batch", "model", model, "backend", info.backend, "requests", n, "failed", failed, "concurrency",
        concurrency, "prompt_tokens", (json_int_t)prompt_tokens, "generated_tokens", (json_int_t)gen_tokens, "load_s",
        t_load, "elapsed_s", elapsed, "generated_tok_s", elapsed > 0 ? (double)gen_tokens / elapsed : 0.0, "requests_s",
        elapsed > 0 ? n / elapsed : 0.0, "kv_blocks_total", st.kv_blocks_total, "peak_kv_blocks_used",
        st.kv_blocks_peak_used, "cache_block_seq_len", st.cache_block_seq_len, "preemptions",
        (json_int_t)st.preemptions, "prefix_cache_hits", (json_int_t)st.prefix_cache_hits, "prefix_cache_queries",
        (json_int_t)st.prefix_cache_queries, "steps", (json_int_t)st.steps);
    char *ss = sum ? json_dumps(sum, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    if (ss)
        fprintf(stderr, "%s\n", ss);
    else
        fprintf(stderr, "ignis: generate --batch: out of memory writing the summary\n");
    free(ss);
    json_decref(sum);
    ignis_model_close(m);
    breqs_free(qs, n);
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
    return failed ? 1 : 0;
}
