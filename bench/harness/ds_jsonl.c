/* JSONL workloads (workloads/README.md): one request per line, the same fields as
 * `ignis generate --batch` so one file serves both; and MT-Bench style multi-turn files
 * ({"turns": ["...", "..."]} per line). Errors name the file and the 1-based line. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "workload_util.h"

static const char *const k_fields[] = {
    "prompt", "prompt_ids", "max_new_tokens",     "output_len", "ignore_eos", "temperature", "top_k",
    "top_p",  "seed",       "repetition_penalty", "stop",       "priority",   "id",          NULL};

/* Calls fn for each non-blank line as parsed JSON; stops at the first failure. */
typedef int (*line_fn)(const bench_ds_opts *o, bench_workload *w, int *cap, json_t *obj, int line);

static int each_line(const bench_ds_opts *o, bench_workload *w, line_fn fn)
{
    FILE *f = fopen(o->path, "r");
    if (!f) return bench_err("cannot open %s", o->path), -1;
    char *buf = NULL;
    size_t bcap = 0;
    ssize_t len;
    int line = 0, cap = 0, rc = 0;
    while ((len = getline(&buf, &bcap, f)) >= 0 && w->n < o->num_prompts) {
        line++;
        size_t k = strspn(buf, " \t\r\n");
        if (buf[k] == 0) continue;
        json_error_t je;
        json_t *obj = json_loads(buf, JSON_DISABLE_EOF_CHECK, &je);
        if (!obj || !json_is_object(obj)) {
            bench_err("%s:%d: %s", o->path, line, obj ? "expected a JSON object" : je.text);
            json_decref(obj);
            rc = -1;
            break;
        }
        rc = fn(o, w, &cap, obj, line);
        json_decref(obj);
        if (rc) break;
    }
    if (!rc && ferror(f)) {
        bench_err("cannot read %s (a directory?)", o->path);
        rc = -1;
    }
    free(buf);
    fclose(f);
    if (rc) bench_workload_free(w);
    return rc;
}

static int request_line(const bench_ds_opts *o, bench_workload *w, int *cap, json_t *obj, int line)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool known = false;
        for (int i = 0; k_fields[i]; i++)
            known |= !strcmp(key, k_fields[i]);
        if (!known) return bench_err("%s:%d: unknown field \"%s\"", o->path, line, key), -1;
    }
    json_t *pr = json_object_get(obj, "prompt"), *pi = json_object_get(obj, "prompt_ids");
    if ((pr != NULL) == (pi != NULL))
        return bench_err("%s:%d: give exactly one of \"prompt\" (text) or \"prompt_ids\"", o->path, line), -1;
    if (pr && !json_is_string(pr)) return bench_err("%s:%d: \"prompt\" must be a string", o->path, line), -1;
    if (pi && !json_is_array(pi)) return bench_err("%s:%d: \"prompt_ids\" must be an array", o->path, line), -1;
    json_t *mn = json_object_get(obj, "max_new_tokens");
    if (!mn) mn = json_object_get(obj, "output_len");
    if (mn && (!json_is_integer(mn) || json_integer_value(mn) < 1))
        return bench_err("%s:%d: \"max_new_tokens\" must be an integer >= 1", o->path, line), -1;
    if (!mn && !o->output_fixed)
        return bench_err("%s:%d: no \"max_new_tokens\" (give it per line or pass --output-len N)", o->path, line), -1;
    bench_item *it = wl_push(w, cap);
    if (!it) return bench_err("%s:%d: out of memory", o->path, line), -1;
    it->output_len = o->output_fixed ? o->output_len : (int)json_integer_value(mn);
    json_t *ie = json_object_get(obj, "ignore_eos");
    it->ignore_eos = o->ignore_eos || (ie && json_is_true(ie));
    if (pr) {
        it->prompt = strdup(json_string_value(pr));
        if (wl_tokenize(o, it->prompt, true, &it->ids, &it->n_ids) != 0) return -1;
    } else {
        size_t n = json_array_size(pi);
        it->ids = malloc(sizeof(int32_t) * (n ? n : 1));
        if (!it->ids) return bench_err("%s:%d: out of memory", o->path, line), -1;
        for (size_t k = 0; k < n; k++) {
            json_t *x = json_array_get(pi, k);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 0x7fffffff)
                return bench_err("%s:%d: \"prompt_ids\"[%zu] is not a non-negative integer", o->path, line, k), -1;
            it->ids[k] = (int32_t)json_integer_value(x);
            if (o->vocab > 0 && it->ids[k] >= o->vocab) it->ids[k] %= o->vocab;
        }
        it->n_ids = (int)n;
    }
    if (o->max_prompt_len > 0 && it->n_ids > o->max_prompt_len) it->n_ids = o->max_prompt_len;
    return 0;
}

int bench_load_jsonl(const bench_ds_opts *o, bench_workload *w)
{
    memset(w, 0, sizeof *w);
    if (!o->path) return bench_err("--workload needs a FILE.jsonl"), -1;
    int rc = each_line(o, w, request_line);
    if (!rc) wl_name_file(w, "jsonl", o->path);
    return rc;
}

/* {"turns": ["first user message", "second", ...]} (MT-Bench's question file). Each turn is
 * one request of the conversation, sent when the previous turn has finished. */
static int conversation_line(const bench_ds_opts *o, bench_workload *w, int *cap, json_t *obj, int line)
{
    json_t *turns = json_object_get(obj, "turns");
    if (!json_is_array(turns) || json_array_size(turns) == 0)
        return bench_err("%s:%d: expected \"turns\": a non-empty list of strings", o->path, line), -1;
    int conv = w->n_conversations++;
    size_t k;
    json_t *t;
    json_array_foreach(turns, k, t)
    {
        if ((int)k >= o->max_turns) break;
        if (!json_is_string(t)) return bench_err("%s:%d: \"turns\"[%zu] is not a string", o->path, line, k), -1;
        bench_item *it = wl_push(w, cap);
        if (!it) return bench_err("%s:%d: out of memory", o->path, line), -1;
        it->prompt = strdup(json_string_value(t));
        if (wl_tokenize(o, it->prompt, k == 0, &it->ids, &it->n_ids) != 0) return -1;
        it->output_len = o->output_len;
        it->ignore_eos = true;
        it->conversation = conv;
        it->turn = (int)k;
    }
    return 0;
}

int bench_load_multiturn(const bench_ds_opts *o, bench_workload *w)
{
    memset(w, 0, sizeof *w);
    if (!o->path) return bench_err("--dataset multiturn needs --dataset-path FILE.jsonl ({\"turns\": [...]})"), -1;
    if (!o->output_fixed) return bench_err("%s: multi-turn prompts carry no answers: pass --output-len N", o->path), -1;
    /* num_prompts counts conversations here: each_line stops on items, so lift the cap */
    bench_ds_opts p = *o;
    p.num_prompts = 1 << 30;
    int rc = each_line(&p, w, conversation_line);
    if (rc) return rc;
    /* keep the first num_prompts conversations */
    int keep = 0;
    while (keep < w->n && w->items[keep].conversation < o->num_prompts)
        keep++;
    for (int i = keep; i < w->n; i++) {
        free(w->items[i].prompt);
        free(w->items[i].ids);
    }
    w->n = keep;
    if (w->n_conversations > o->num_prompts) w->n_conversations = o->num_prompts;
    wl_name_file(w, "multiturn", o->path);
    return 0;
}
