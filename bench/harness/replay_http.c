/* Open-loop replay over HTTP against an OpenAI-compatible server: every request streams
 * (SSE) through libcurl's multi interface on this one thread, so thousands of streams
 * cost one event loop, not thousands of threads. The loop only appends bytes, splits SSE
 * events and notes each text chunk's arrival; token counting happens after the run
 * (bench_stream_token_times), keeping the client far from being the bottleneck. */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"

typedef struct hctx hctx;

typedef struct hreq {
    hctx *c; /* the replay it belongs to (curl's callbacks get only the request) */
    int idx;
    CURL *h;
    struct curl_slist *hdr;
    char *body;
    /* SSE parsing */
    char *buf;
    size_t blen, bcap;
    /* answer */
    char *text;
    size_t tlen, tcap;
    double *ct;   /* chunk arrival (since t0) */
    size_t *cend; /* cumulative text bytes after the chunk */
    int nch;
    size_t cap_t, cap_e; /* capacities of ct and cend */
    double *et;          /* arrival of chunks without text (a server without a tokenizer sends
                            one per token); used only when no text came at all */
    int n_et;
    size_t cap_et;
    int usage_out, usage_in;
    int state;    /* 0 not sent, 1 in flight, 2 done */
    bool blocked; /* was due while every concurrency slot was taken */
    bool done_marker, failed;
    char err[160];
} hreq;

/* One /metrics sample in flight on the streams' event loop. A blocking GET would stop the
 * loop (and with it every stream's timing) for as long as the server takes to answer, and
 * some servers answer /metrics only between their decode steps. */
typedef struct hscrape {
    CURL *h;
    struct curl_slist *hdr;
    char *acc;
    double t;      /* when it was sent: the sample's time */
    int in_flight; /* streams in flight then */
} hscrape;

struct hctx {
    const bench_workload *w;
    const bench_replay_opts *o;
    hreq *r;
    double t0;
    long long tokens_seen; /* text chunks so far (progress) */
    hscrape scr;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static void add_text(hreq *q, const char *s, size_t n, double t)
{
    if (!n) return;
    if (grow((void **)&q->text, &q->tcap, q->tlen + n + 1, 1) ||
        grow((void **)&q->ct, &q->cap_t, (size_t)q->nch + 1, sizeof(double)) ||
        grow((void **)&q->cend, &q->cap_e, (size_t)q->nch + 1, sizeof(size_t))) {
        q->failed = true;
        return;
    }
    memcpy(q->text + q->tlen, s, n);
    q->tlen += n;
    q->text[q->tlen] = 0;
    q->ct[q->nch] = t;
    q->cend[q->nch] = q->tlen;
    q->nch++;
}

/* One SSE event's data: a JSON chunk (completions: choices[0].text; chat:
 * choices[0].delta.content), a usage object, an error, or [DONE]. */
static void on_data(hctx *c, hreq *q, const char *d, size_t n, double t)
{
    if (n == 6 && !memcmp(d, "[DONE]", 6)) {
        q->done_marker = true;
        return;
    }
    json_t *j = json_loadb(d, n, 0, NULL);
    if (!j) return;
    json_t *ch = json_object_get(j, "choices"), *c0 = json_array_get(ch, 0), *v = NULL;
    if (c0) {
        v = json_object_get(c0, "text");
        if (!v) v = json_object_get(json_object_get(c0, "delta"), "content");
    }
    if (json_is_string(v) && json_string_length(v)) {
        add_text(q, json_string_value(v), json_string_length(v), t);
        c->tokens_seen++;
    } else if (json_is_string(v) && json_is_null(json_object_get(c0, "finish_reason")) &&
               !json_object_get(json_object_get(c0, "delta"), "role")) {
        if (!grow((void **)&q->et, &q->cap_et, (size_t)q->n_et + 1, sizeof(double))) q->et[q->n_et++] = t;
    }
    json_t *u = json_object_get(j, "usage");
    if (json_is_object(u)) {
        json_t *ct = json_object_get(u, "completion_tokens"), *pt = json_object_get(u, "prompt_tokens");
        if (json_is_integer(ct)) q->usage_out = (int)json_integer_value(ct);
        if (json_is_integer(pt)) q->usage_in = (int)json_integer_value(pt);
    }
    json_t *e = json_object_get(j, "error");
    if (e) {
        json_t *m = json_object_get(e, "message");
        snprintf(q->err, sizeof q->err, "server error: %s", json_is_string(m) ? json_string_value(m) : "(no message)");
        q->failed = true;
    }
    json_decref(j);
}

static size_t on_stream(char *p, size_t sz, size_t nm, void *user)
{
    hreq *q = user;
    size_t n = sz * nm;
    double t = bench_now() - q->c->t0;
    if (grow((void **)&q->buf, &q->bcap, q->blen + n + 1, 1)) return 0;
    memcpy(q->buf + q->blen, p, n);
    q->blen += n;
    /* events end with a blank line; "data:" lines inside carry the payload */
    size_t start = 0;
    for (;;) {
        char *b = q->buf + start;
        size_t left = q->blen - start;
        char *end = memmem(b, left, "\n\n", 2);
        /* a CRLF blank line ends the event only before that "\n\n" (it cannot straddle
         * it): look no further, or a buffer of many events is rescanned once per event */
        char *end2 = memmem(b, end ? (size_t)(end - b) + 2 : left, "\r\n\r\n", 4);
        size_t sep = 2;
        if (end2) end = end2, sep = 4;
        if (!end) break;
        for (char *line = b; line < end;) {
            char *nl = memchr(line, '\n', (size_t)(end - line));
            char *le = nl ? nl : end;
            size_t ll = (size_t)(le - line);
            if (ll && line[ll - 1] == '\r') ll--;
            if (ll >= 5 && !memcmp(line, "data:", 5)) {
                const char *d = line + 5;
                size_t dl = ll - 5;
                if (dl && *d == ' ') d++, dl--;
                on_data(q->c, q, d, dl, t);
            }
            line = nl ? nl + 1 : end;
        }
        start = (size_t)(end - q->buf) + sep;
    }
    memmove(q->buf, q->buf + start, q->blen - start);
    q->blen -= start;
    return n;
}

static char *prompt_text(const bench_item *it, const ignis_tokenizer *tok)
{
    if (it->prompt) return strdup(it->prompt);
    if (!tok) return NULL;
    char *s = NULL;
    size_t n;
    if (ignis_detokenize(tok, it->ids, it->n_ids, true, &s, &n) != IGNIS_OK) return NULL;
    return s;
}

/* Appends the string add to the buffer s (len bytes of cap, kept NUL-terminated). */
static int append(char **s, size_t *len, size_t *cap, const char *add)
{
    size_t n = strlen(add);
    if (grow((void **)s, cap, *len + n + 1, 1)) return -1;
    memcpy(*s + *len, add, n + 1);
    *len += n;
    return 0;
}

/* The request body; turns of a conversation carry the earlier turns and answers: as
 * messages (chat) or before the prompt's text (completions; a prompt sent as ids goes
 * alone). NULL after bench_err when the chat endpoint gets a prompt of ids only. */
static char *make_body(hctx *c, int idx, const char *model)
{
    const bench_item *it = &c->w->items[idx];
    const bench_replay_opts *o = c->o;
    bool chat = !strcmp(o->endpoint, "chat");
    char *pt = o->send_ids && !chat && it->n_ids >= 0 ? NULL : prompt_text(it, o->tok);
    if (chat && !pt) {
        bench_err("request %d has ids only: the chat endpoint needs text (pass --tokenizer DIR)", idx);
        return NULL;
    }
    json_t *b = json_object();
    json_object_set_new(b, "model", json_string(model));
    json_object_set_new(b, "max_tokens", json_integer(it->output_len));
    json_object_set_new(b, "stream", json_true());
    json_object_set_new(b, "stream_options", json_pack("{s:b}", "include_usage", 1));
    json_object_set_new(b, "temperature", json_real(o->sampling.temperature));
    if (it->ignore_eos) json_object_set_new(b, "ignore_eos", json_true());
    json_t *msgs = chat ? json_array() : NULL;
    char *hist = NULL; /* completions: the earlier turns' prompts and answers, then pt */
    size_t hlen = 0, hcap = 0;
    int oom = 0;
    for (int k = it->turn > 0 && pt ? 0 : idx; k < idx; k++) {
        const bench_item *pk = &c->w->items[k];
        if (pk->conversation != it->conversation) continue;
        char *pp = prompt_text(pk, o->tok);
        const char *ans = c->r[k].text ? c->r[k].text : "";
        if (chat) {
            json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", pp ? pp : ""));
            json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "assistant", "content", ans));
        } else
            oom |= append(&hist, &hlen, &hcap, pp ? pp : "") | append(&hist, &hlen, &hcap, ans);
        free(pp);
    }
    if (chat) {
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", pt));
        json_object_set_new(b, "messages", msgs);
    } else if (pt) {
        if (hist) oom |= append(&hist, &hlen, &hcap, pt);
        json_object_set_new(b, "prompt", json_string(hist ? hist : pt));
    } else {
        /* ids without a tokenizer: OpenAI's completions take a token array */
        json_t *a = json_array();
        for (int k = 0; k < it->n_ids; k++)
            json_array_append_new(a, json_integer(it->ids[k]));
        json_object_set_new(b, "prompt", a);
    }
    free(hist);
    free(pt);
    char *s = oom ? NULL : json_dumps(b, JSON_COMPACT);
    json_decref(b);
    if (!s) bench_err("request %d: out of memory for its body", idx);
    return s;
}

/* Builds the body of every request that carries no earlier turn's answer before the clock
 * starts: one body (JSON with up to thousands of prompt ids) takes tens of microseconds,
 * which in a burst of hundreds of sends would become schedule lag. Later turns are built
 * when sent. The bodies are kept to the end of the run either way. */
static int prebuild_bodies(hctx *c, const char *model)
{
    for (int i = 0; i < c->w->n; i++)
        if (c->w->items[i].turn == 0 && !(c->r[i].body = make_body(c, i, model))) return -1;
    return 0;
}

static size_t sink(char *p, size_t sz, size_t nm, void *user)
{
    char **acc = user;
    size_t n = sz * nm, l = *acc ? strlen(*acc) : 0;
    if (l + n > (1u << 24)) return 0;
    char *q = realloc(*acc, l + n + 1);
    if (!q) return 0;
    memcpy(q + l, p, n);
    q[l + n] = 0;
    *acc = q;
    return n;
}

/* hdr with "Authorization: Bearer KEY" appended; hdr itself without a key. */
static struct curl_slist *with_auth(struct curl_slist *hdr, const char *key)
{
    if (!key) return hdr;
    char a[512];
    snprintf(a, sizeof a, "Authorization: Bearer %s", key);
    return curl_slist_append(hdr, a);
}

/* A GET of base + path whose answer accumulates in *acc; *hdr is the caller's to free
 * after the handle. NULL when curl has no handle to give. */
static CURL *get_handle(const char *base, const char *path, const char *key, struct curl_slist **hdr, char **acc)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", base, path);
    *hdr = NULL;
    *acc = NULL;
    CURL *h = curl_easy_init();
    if (!h) return NULL;
    *hdr = with_auth(NULL, key);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, acc);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    return h;
}

/* GET base + path, blocking (used before the run). */
static char *http_get(const char *base, const char *path, const char *key, long *status)
{
    char *acc;
    struct curl_slist *hdr;
    *status = 0;
    CURL *h = get_handle(base, path, key, &hdr, &acc);
    if (!h) return bench_err("GET %s%s: no curl handle", base, path), NULL;
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    if (rc != CURLE_OK) {
        free(acc);
        bench_err("GET %s%s: %s", base, path, curl_easy_strerror(rc));
        return NULL;
    }
    return acc ? acc : strdup("");
}

/* First value of a Prometheus metric among `names` (summed over its label sets). */
static double prom_value(const char *text, const char *const *names)
{
    for (int k = 0; names[k]; k++) {
        double sum = 0;
        int found = 0;
        size_t nl = strlen(names[k]);
        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
            if (strncmp(l, names[k], nl) || (l[nl] != ' ' && l[nl] != '{')) continue;
            const char *v = l[nl] == '{' ? strchr(l, '}') : l + nl;
            if (v && *v == '}') v++;
            if (v) sum += strtod(v, NULL), found = 1;
        }
        if (found) return sum;
    }
    return -1;
}

/* Starts a /metrics GET on the event loop unless one is still out. */
static void scrape_start(hctx *c, CURLM *mh, double t, int in_flight)
{
    hscrape *s = &c->scr;
    if (s->h) return; /* the last one has not come back: skip this sample */
    s->h = get_handle(c->o->base_url, "/metrics", c->o->api_key, &s->hdr, &s->acc);
    if (!s->h) return;
    s->t = t;
    s->in_flight = in_flight;
    curl_multi_add_handle(mh, s->h);
}

/* Ends the scrape in flight; with `ok`, its answer becomes a sample. */
static void scrape_end(hctx *c, CURLM *mh, bench_run *out, bool ok)
{
    /* the first name a server exports wins: ours, vLLM (new and old), LMDeploy, SGLang,
     * llama.cpp's llama-server (--metrics) */
    static const char *const kv[] = {"ignis:kv_cache_usage_perc",     "vllm:kv_cache_usage_perc",
                                     "vllm:gpu_cache_usage_perc",     "lmdeploy:kv_cache_usage_perc",
                                     "lmdeploy:gpu_cache_usage_perc", "sglang:token_usage",
                                     "llamacpp:kv_cache_usage_ratio", NULL};
    static const char *const run[] = {"ignis:num_requests_running",    "vllm:num_requests_running",
                                      "lmdeploy:num_requests_running", "sglang:num_running_reqs",
                                      "llamacpp:requests_processing",  NULL};
    static const char *const wait[] = {"ignis:num_requests_waiting",    "vllm:num_requests_waiting",
                                       "lmdeploy:num_requests_waiting", "sglang:num_queue_reqs",
                                       "llamacpp:requests_deferred",    NULL};
    hscrape *sc = &c->scr;
    long st = 0;
    curl_easy_getinfo(sc->h, CURLINFO_RESPONSE_CODE, &st);
    bench_sample s = {
        .t = sc->t, .kv_usage = -1, .running = -1, .waiting = -1, .batch_size = -1, .in_flight = sc->in_flight};
    if (ok && sc->acc && st == 200) {
        s.kv_usage = prom_value(sc->acc, kv);
        if (s.kv_usage > 1) s.kv_usage /= 100; /* some engines export percent */
        s.running = (int)prom_value(sc->acc, run);
        s.waiting = (int)prom_value(sc->acc, wait);
        s.batch_size = s.running;
    }
    if (ok) bench_run_add_sample(out, &s);
    curl_multi_remove_handle(mh, sc->h);
    curl_easy_cleanup(sc->h);
    curl_slist_free_all(sc->hdr);
    free(sc->acc);
    *sc = (hscrape){0};
}

static char *served_model(const bench_replay_opts *o)
{
    if (o->served_model) return strdup(o->served_model);
    long st;
    char *s = http_get(o->base_url, "/v1/models", o->api_key, &st);
    if (!s) return NULL;
    json_t *j = json_loads(s, 0, NULL);
    free(s);
    json_t *id = json_object_get(json_array_get(json_object_get(j, "data"), 0), "id");
    char *name = json_is_string(id) ? strdup(json_string_value(id)) : NULL;
    json_decref(j);
    if (!name) bench_err("%s/v1/models names no model (HTTP %ld): pass --model NAME", o->base_url, st);
    return name;
}

/* Sends request i: its stream joins the event loop. */
static int start_request(hctx *c, CURLM *mh, int i, const char *url, const char *model)
{
    hreq *q = &c->r[i];
    q->c = c;
    q->idx = i;
    q->usage_out = q->usage_in = -1;
    if (!q->body && !(q->body = make_body(c, i, model))) return -1;
    q->h = curl_easy_init();
    q->hdr = curl_slist_append(NULL, "Content-Type: application/json");
    q->hdr = curl_slist_append(q->hdr, "Accept: text/event-stream");
    q->hdr = with_auth(q->hdr, c->o->api_key);
    curl_easy_setopt(q->h, CURLOPT_URL, url);
    curl_easy_setopt(q->h, CURLOPT_HTTPHEADER, q->hdr);
    curl_easy_setopt(q->h, CURLOPT_POSTFIELDS, q->body);
    curl_easy_setopt(q->h, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(q->h, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(q->h, CURLOPT_PRIVATE, q);
    curl_easy_setopt(q->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(q->h, CURLOPT_TCP_NODELAY, 1L);
    curl_multi_add_handle(mh, q->h);
    q->state = 1;
    return 0;
}

int bench_replay_http(const bench_workload *w, const bench_replay_opts *o, bench_run *out)
{
    memset(out, 0, sizeof *out);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* one socket per stream: lift the soft descriptor limit (often 1,024) to the hard one */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (o->warmup > 0) {
        /* warm-up: the workload's first requests, all at once, not measured */
        bench_workload ww = *w;
        ww.n = o->warmup < w->n ? o->warmup : w->n;
        ww.n_conversations = 0;
        bench_replay_opts wo = *o;
        wo.warmup = 0;
        wo.progress = wo.scrape_metrics = false;
        wo.concurrency = 0;
        wo.request_rate = INFINITY;
        bench_run wr;
        int wrc = bench_replay_http(&ww, &wo, &wr);
        bench_run_free(&wr);
        if (wrc != 0) return -1;
        memset(out, 0, sizeof *out);
    }
    char *model = served_model(o);
    if (!model) return -1;
    int n = w->n;
    hctx c = {.w = w, .o = o};
    c.r = calloc((size_t)n, sizeof(hreq));
    out->recs = calloc((size_t)n, sizeof(bench_record));
    out->n = n;
    double *release = malloc(sizeof(double) * (size_t)n);
    int *next_turn = malloc(sizeof(int) * (size_t)n);
    bool oom = !c.r || !out->recs || !release || !next_turn;
    if (oom) bench_err("replay: out of memory");
    if (oom || bench_arrivals(w, o, release, next_turn) != 0) {
        free(model), free(c.r), free(release), free(next_turn);
        bench_run_free(out);
        return -1;
    }
    char url[1024];
    snprintf(url, sizeof url, "%s/v1/%s", o->base_url,
             !strcmp(o->endpoint, "chat") ? "chat/completions" : "completions");
    CURLM *mh = curl_multi_init();
    curl_multi_setopt(mh, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    int conc = o->concurrency > 0 ? o->concurrency : n + 1, in_flight = 0, done = 0, rc = 0;
    double last_free = 0, next_sample = 0,
           every = o->scrape_metrics ? 0.5 : (o->sample_every_s > 0 ? o->sample_every_s : 0.05);
    bench_progress pg;
    bench_progress_init(&pg, o->progress ? n : 0);
    rc = prebuild_bodies(&c, model);
    c.t0 = bench_now();
    int first = 0, freed = 0; /* items before first are all sent */
    double next_due = 0;      /* the earliest release still ahead */
    while (done < n && rc == 0) {
        double now = bench_now() - c.t0;
        /* only a freed slot (and the next turn it released) or a release coming due lets a
         * request go: the loop wakes on every streamed chunk, and skips the scan otherwise */
        if (freed || now >= next_due) {
            next_due = INFINITY;
            while (first < n && c.r[first].state != 0)
                first++;
            /* send every released request that fits, earliest first (items are in order) */
            for (int i = first; i < n; i++) {
                hreq *q = &c.r[i];
                if (q->state != 0) continue;
                if (release[i] > now) {
                    if (release[i] < next_due) next_due = release[i];
                    continue;
                }
                if (in_flight >= conc) {
                    q->blocked = true;
                    continue;
                }
                bench_record *r = &out->recs[i];
                r->index = i;
                r->scheduled = release[i];
                r->ready = q->blocked && last_free > release[i] ? last_free : release[i];
                if ((rc = start_request(&c, mh, i, url, model)) != 0) break;
                in_flight++;
                if (in_flight > out->peak_in_flight) out->peak_in_flight = in_flight;
                r->sent = bench_now() - c.t0;
            }
        }
        int running;
        curl_multi_perform(mh, &running);
        CURLMsg *msg;
        int left;
        freed = 0;
        while ((msg = curl_multi_info_read(mh, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            if (msg->easy_handle == c.scr.h) {
                scrape_end(&c, mh, out, msg->data.result == CURLE_OK);
                continue;
            }
            hreq *q;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&q);
            double t = bench_now() - c.t0;
            long code = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            bench_record *r = &out->recs[q->idx];
            r->e2e = t - r->ready;
            if (msg->data.result != CURLE_OK)
                snprintf(q->err, sizeof q->err, "%s", curl_easy_strerror(msg->data.result)), q->failed = true;
            else if (code != 200) {
                snprintf(q->err, sizeof q->err, "HTTP %ld: %.120s", code, q->buf ? q->buf : "");
                q->failed = true;
            }
            curl_multi_remove_handle(mh, msg->easy_handle);
            curl_easy_cleanup(msg->easy_handle);
            q->h = NULL;
            q->state = 2;
            in_flight--;
            done++;
            last_free = t;
            freed++;
            if (next_turn[q->idx] >= 0) release[next_turn[q->idx]] = t;
        }
        now = bench_now() - c.t0;
        if (now >= next_sample) {
            if (o->scrape_metrics)
                scrape_start(&c, mh, now, in_flight);
            else {
                bench_sample s = {
                    .t = now, .kv_usage = -1, .running = -1, .waiting = -1, .batch_size = -1, .in_flight = in_flight};
                bench_run_add_sample(out, &s);
            }
            next_sample = now + every;
            bench_progress_update(&pg, done, c.tokens_seen);
        }
        double until = next_due < next_sample ? next_due : next_sample;
        int ms = (int)((until - now) * 1e3);
        if (ms > 50) ms = 50;
        if (ms < 0) ms = 0;
        /* a freed slot may let a waiting request go now: no sleep then */
        if (done < n && !freed) curl_multi_poll(mh, NULL, 0, ms, NULL);
    }
    bench_progress_end(&pg);
    double last = 0;
    for (int i = 0; i < n; i++) {
        hreq *q = &c.r[i];
        bench_record *r = &out->recs[i];
        r->index = i;
        r->queue = r->prefill = -1;
        r->prefill_own = r->prefill_shared = -1; /* in-process profiling only */
        r->cached_tokens = -1;
        r->counted_tokens = -1;
        r->usage_tokens = q->usage_out;
        if (q->h) {
            curl_multi_remove_handle(mh, q->h);
            curl_easy_cleanup(q->h);
        }
        /* a server without a tokenizer streams no text: its usage still counts the tokens,
         * and chunks without text (one per token) still time them when they all came */
        bool counted_by_usage = q->nch == 0 && q->usage_out > 0;
        r->ok = q->state == 2 && !q->failed && (q->nch > 0 || counted_by_usage);
        if (!r->ok) {
            snprintf(r->error, sizeof r->error, "%s",
                     q->err[0]       ? q->err
                     : q->state != 2 ? "not sent"
                                     : "no text streamed and no usage");
            r->ttft = -1;
        } else if (counted_by_usage) {
            r->output_tokens = q->usage_out;
            r->ttft = r->decode = -1;
            if (q->n_et == q->usage_out) {
                r->token_times = malloc(sizeof(double) * (size_t)q->n_et);
                for (int k = 0; r->token_times && k < q->n_et; k++)
                    r->token_times[k] = q->et[k] - r->ready;
                if (r->token_times) {
                    r->ttft = r->token_times[0];
                    r->decode = r->e2e - r->ttft;
                }
            }
        } else {
            double *tt;
            int nt = bench_stream_token_times(o->tok, q->text, q->tlen, q->ct, q->cend, q->nch, q->usage_out, &tt,
                                              &r->counted_tokens);
            for (int k = 0; k < nt; k++)
                tt[k] -= r->ready;
            r->token_times = tt;
            r->output_tokens = nt;
            r->ttft = nt ? tt[0] : -1;
            r->decode = nt ? r->e2e - r->ttft : -1;
        }
        if (r->ok) r->prompt_tokens = q->usage_in >= 0 ? q->usage_in : w->items[i].n_ids;
        if (q->state == 2 && r->ready + r->e2e > last) last = r->ready + r->e2e;
        curl_slist_free_all(q->hdr);
        free(q->body), free(q->buf), free(q->text), free(q->ct), free(q->cend), free(q->et);
    }
    out->duration = last;
    out->preemptions = -1;
    if (c.scr.h) scrape_end(&c, mh, out, false); /* still out when the last stream ended */
    if (rc == 0 && bench_run_token_rates(out) != 0) rc = -1;
    curl_multi_cleanup(mh);
    free(model), free(c.r), free(release), free(next_turn);
    return rc;
}
