/* Workloads: the dataset kinds, the loader dispatch, synthetic prompts (random, prefix),
 * and the workload's identity hash. File formats live in their own files. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "workload_util.h"

void bench_ds_opts_init(bench_ds_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kind = BENCH_DS_RANDOM;
    o->num_prompts = 200;
    o->input_len = 128;
    o->output_len = 128;
    o->vocab = 32000;
    o->max_prompt_len = 1024;
    o->max_turns = 8;
}

int bench_dataset_parse(const char *s, bench_dataset *out)
{
    static const char *names[] = {"random", "sharegpt", "sonnet", "prefix", "multiturn", "jsonl"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, names[i])) {
            *out = (bench_dataset)i;
            return 0;
        }
    bench_err("--dataset: unknown dataset '%s' (expected sharegpt, random, sonnet, prefix, multiturn)", s);
    return -1;
}

void bench_workload_free(bench_workload *w)
{
    for (int i = 0; i < w->n; i++) {
        free(w->items[i].prompt);
        free(w->items[i].ids);
        free(w->items[i].expected_out);
    }
    free(w->items);
    memset(w, 0, sizeof *w);
}

/* FNV-1a over what a request is: its prompt (ids, else text), output length and flags. Two
 * reports with the same hash replayed the same requests. */
void bench_workload_hash(bench_workload *w)
{
    uint64_t h = 0xcbf29ce484222325ull;
#define MIX(p, n)                                                                                                      \
    for (size_t k_ = 0; k_ < (n); k_++)                                                                                \
        h = (h ^ ((const unsigned char *)(p))[k_]) * 0x100000001b3ull;
    for (int i = 0; i < w->n; i++) {
        const bench_item *it = &w->items[i];
        if (it->n_ids > 0)
            MIX(it->ids, sizeof(int32_t) * (size_t)it->n_ids)
        else if (it->prompt)
            MIX(it->prompt, strlen(it->prompt))
        MIX(&it->output_len, sizeof it->output_len)
        unsigned char f[3] = {it->ignore_eos, (unsigned char)it->turn, (unsigned char)(it->conversation >= 0)};
        MIX(f, 3)
    }
#undef MIX
    snprintf(w->hash, sizeof w->hash, "%016llx", (unsigned long long)h);
}

bench_item *wl_push(bench_workload *w, int *cap)
{
    if (w->n == *cap) {
        int c = *cap ? 2 * *cap : 256;
        bench_item *p = realloc(w->items, sizeof *p * (size_t)c);
        if (!p) return NULL;
        w->items = p;
        *cap = c;
    }
    bench_item *it = &w->items[w->n++];
    memset(it, 0, sizeof *it);
    it->n_ids = -1;
    it->conversation = -1;
    return it;
}

int wl_tokenize(const bench_ds_opts *o, const char *text, bool add_special, int32_t **ids, int *n)
{
    *ids = NULL;
    *n = -1;
    if (!o->tok) return 0;
    if (ignis_tokenize(o->tok, text, strlen(text), add_special, false, ids, n) != IGNIS_OK) {
        bench_err("tokenizing a prompt: %s", ignis_last_error());
        return -1;
    }
    /* a tokenizer larger than the model's vocabulary (synthetic models): fold ids in */
    for (int i = 0; o->vocab > 0 && i < *n; i++)
        if ((*ids)[i] >= o->vocab) (*ids)[i] %= o->vocab;
    return 0;
}

int wl_count_tokens(const bench_ds_opts *o, const char *text)
{
    int32_t *ids;
    int n;
    if (!o->tok || wl_tokenize(o, text, false, &ids, &n) != 0) return -1;
    free(ids);
    return n;
}

void wl_name_file(bench_workload *w, const char *kind, const char *path)
{
    const char *slash = strrchr(path, '/');
    snprintf(w->name, sizeof w->name, "%s:%s", kind, slash ? slash + 1 : path);
}

/* Lengths uniform in [len*(1-r), len*(1+r)] (vLLM's --random-range-ratio), at least 1. */
static int draw_len(bench_rng *r, int len, double ratio)
{
    int lo = (int)(len * (1.0 - ratio)), hi = (int)(len * (1.0 + ratio));
    if (lo < 1) lo = 1;
    if (hi < lo) hi = lo;
    return bench_rng_range(r, lo, hi);
}

int bench_load_random(const bench_ds_opts *o, bench_workload *w)
{
    memset(w, 0, sizeof *w);
    if (o->num_prompts < 1 || o->input_len < 1 || o->output_len < 1 || o->vocab < 4 || o->range_ratio < 0 ||
        o->range_ratio >= 1 || o->prefix_len < 0) {
        bench_err("random dataset: --num-prompts, --random-input-len, --random-output-len must be >= 1, "
                  "--random-range-ratio in [0, 1), --prefix-len >= 0");
        return -1;
    }
    bench_rng r;
    bench_rng_seed(&r, o->seed);
    /* one shared prefix for every prompt (prefix caching workloads) */
    int32_t *prefix = malloc(sizeof(int32_t) * (size_t)(o->prefix_len + 1));
    if (!prefix) return bench_err("random dataset: out of memory"), -1;
    for (int k = 0; k < o->prefix_len; k++)
        prefix[k] = 3 + (int32_t)(bench_rng_u64(&r) % (uint64_t)(o->vocab - 3));
    int cap = 0;
    for (int i = 0; i < o->num_prompts; i++) {
        bench_item *it = wl_push(w, &cap);
        int in = draw_len(&r, o->input_len, o->range_ratio);
        int out = o->output_fixed ? o->output_len : draw_len(&r, o->output_len, o->range_ratio);
        if (!it || !(it->ids = malloc(sizeof(int32_t) * (size_t)(o->prefix_len + in)))) {
            free(prefix);
            bench_workload_free(w);
            return bench_err("random dataset: out of memory"), -1;
        }
        memcpy(it->ids, prefix, sizeof(int32_t) * (size_t)o->prefix_len);
        for (int k = 0; k < in; k++)
            it->ids[o->prefix_len + k] = 3 + (int32_t)(bench_rng_u64(&r) % (uint64_t)(o->vocab - 3));
        it->n_ids = o->prefix_len + in;
        it->output_len = out;
        it->ignore_eos = true; /* synthetic prompts: generate exactly what was asked */
    }
    free(prefix);
    snprintf(w->name, sizeof w->name, "%s:in%d:out%d:r%g:prefix%d", o->kind == BENCH_DS_PREFIX ? "prefix" : "random",
             o->input_len, o->output_len, o->range_ratio, o->prefix_len);
    return 0;
}

int bench_workload_load(const bench_ds_opts *o, bench_workload *out)
{
    int rc;
    switch (o->kind) {
    case BENCH_DS_SHAREGPT:
        rc = bench_load_sharegpt(o, out);
        break;
    case BENCH_DS_JSONL:
        rc = bench_load_jsonl(o, out);
        break;
    case BENCH_DS_MULTITURN:
        rc = bench_load_multiturn(o, out);
        break;
    case BENCH_DS_SONNET:
        rc = bench_load_sonnet(o, out);
        break;
    case BENCH_DS_PREFIX: {
        bench_ds_opts p = *o;
        if (p.prefix_len == 0) p.prefix_len = 256; /* the point of this dataset is a shared prefix */
        rc = bench_load_random(&p, out);
        break;
    }
    default:
        rc = bench_load_random(o, out);
    }
    if (rc == 0) {
        if (out->n == 0) {
            bench_err("workload %s has no requests", out->name);
            bench_workload_free(out);
            return -1;
        }
        bench_workload_hash(out);
    }
    return rc;
}
