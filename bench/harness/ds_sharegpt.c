/* ShareGPT JSON: a list of {"id", "conversations": [{"from": "human"|"gpt", "value"}, ...]}.
 * A request is the first human turn; its output length is the token count of the answer
 * that follows it (vLLM's and LMDeploy's rule) unless --output-len fixes it. Like vLLM,
 * pairs with a prompt or answer under 4 tokens, a prompt over --max-prompt-len (1024) or
 * prompt + answer over 2048 tokens are skipped when the lengths come from the dataset. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "workload_util.h"

static const char *turn_value(json_t *turn, const char *from)
{
    json_t *f = json_object_get(turn, "from"), *v = json_object_get(turn, "value");
    if (!json_is_string(f) || !json_is_string(v)) return NULL;
    return !strcmp(json_string_value(f), from) ? json_string_value(v) : NULL;
}

int bench_load_sharegpt(const bench_ds_opts *o, bench_workload *w)
{
    memset(w, 0, sizeof *w);
    if (!o->path) return bench_err("--dataset sharegpt needs --dataset-path FILE.json"), -1;
    json_error_t je;
    json_t *root = json_load_file(o->path, 0, &je);
    if (!root) return bench_err("%s:%d: not valid JSON: %s", o->path, je.line, je.text), -1;
    if (!json_is_array(root)) {
        json_decref(root);
        return bench_err("%s:1: expected a JSON list of conversations (ShareGPT format)", o->path), -1;
    }
    int cap = 0, answers = 0;
    size_t i;
    json_t *conv;
    json_array_foreach(root, i, conv)
    {
        if (w->n >= o->num_prompts) break;
        json_t *turns = json_object_get(conv, "conversations");
        if (!json_is_array(turns)) {
            bench_err("%s: entry %zu has no \"conversations\" list (ShareGPT format)", o->path, i);
            goto fail;
        }
        const char *prompt = json_array_size(turns) ? turn_value(json_array_get(turns, 0), "human") : NULL;
        const char *answer = json_array_size(turns) > 1 ? turn_value(json_array_get(turns, 1), "gpt") : NULL;
        if (!prompt) continue; /* conversations opened by the model: no request to replay */
        answers += answer != NULL;
        int out = o->output_len;
        if (!o->output_fixed) {
            if (!answer) continue;
            if (!o->tok) {
                bench_err("%s: output lengths come from the dataset's answers, which needs a tokenizer: pass "
                          "--tokenizer DIR (or fix them with --output-len N)",
                          o->path);
                goto fail;
            }
            out = wl_count_tokens(o, answer);
        }
        int32_t *ids = NULL;
        int n = -1;
        if (wl_tokenize(o, prompt, true, &ids, &n) != 0) goto fail;
        if (!o->output_fixed &&
            (n < 4 || out < 4 || (o->max_prompt_len > 0 && n > o->max_prompt_len) || n + out > 2048)) {
            free(ids);
            continue;
        }
        if (o->output_fixed && o->max_prompt_len > 0 && n > o->max_prompt_len) n = o->max_prompt_len;
        bench_item *it = wl_push(w, &cap);
        if (!it) {
            free(ids);
            bench_err("%s: out of memory", o->path);
            goto fail;
        }
        it->prompt = strdup(prompt);
        it->ids = ids;
        it->n_ids = n;
        it->output_len = out;
        it->ignore_eos = o->ignore_eos || o->output_fixed;
        it->expected_out = answer ? strdup(answer) : NULL;
    }
    if (!o->output_fixed && answers == 0) {
        bench_err("%s holds prompts only (no \"gpt\" answers to take output lengths from): pass --output-len N",
                  o->path);
        goto fail;
    }
    json_decref(root);
    wl_name_file(w, "sharegpt", o->path);
    return 0;
fail:
    json_decref(root);
    bench_workload_free(w);
    return -1;
}
