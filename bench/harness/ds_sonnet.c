/* Sonnet workload (vLLM's): prompts made of lines of a poem. Every prompt starts with the
 * same instruction and the poem's first lines (about --prefix-len tokens, shared: prefix
 * caching sees them), then lines drawn at random until about --random-input-len tokens. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "workload_util.h"

#define SONNET_HEAD "Pick as many lines as you can from these poem lines:\n"

int bench_load_sonnet(const bench_ds_opts *o, bench_workload *w)
{
    memset(w, 0, sizeof *w);
    if (!o->path) return bench_err("--dataset sonnet needs --dataset-path sonnet.txt"), -1;
    if (!o->tok) return bench_err("--dataset sonnet counts tokens: it needs a tokenizer (--tokenizer DIR)"), -1;
    FILE *f = fopen(o->path, "r");
    if (!f) return bench_err("cannot open %s", o->path), -1;
    char **lines = NULL, *buf = NULL;
    int *toks = NULL, nl = 0, cap = 0;
    size_t bcap = 0;
    ssize_t len;
    while ((len = getline(&buf, &bcap, f)) >= 0) {
        if (strspn(buf, " \t\r\n") == (size_t)len) continue;
        if (nl == cap) {
            cap = cap ? 2 * cap : 256;
            lines = realloc(lines, sizeof(char *) * (size_t)cap);
            toks = realloc(toks, sizeof(int) * (size_t)cap);
        }
        lines[nl] = strdup(buf);
        toks[nl] = wl_count_tokens(o, buf);
        nl++;
    }
    free(buf);
    fclose(f);
    int rc = 0;
    if (nl == 0) {
        bench_err("%s: no lines", o->path);
        rc = -1;
        goto out;
    }
    bench_rng r;
    bench_rng_seed(&r, o->seed);
    int icap = 0, head_tok = wl_count_tokens(o, SONNET_HEAD);
    for (int i = 0; i < o->num_prompts; i++) {
        size_t tcap = 4096, tl = 0;
        char *text = malloc(tcap);
        if (!text) break;
        text[0] = 0;
        int have = head_tok, k = 0;
#define APPEND(s)                                                                                                      \
    do {                                                                                                               \
        size_t sl_ = strlen(s);                                                                                        \
        if (tl + sl_ + 1 > tcap) text = realloc(text, tcap = 2 * (tl + sl_ + 1));                                      \
        memcpy(text + tl, s, sl_ + 1);                                                                                 \
        tl += sl_;                                                                                                     \
    } while (0)
        APPEND(SONNET_HEAD);
        for (; k < nl && have + toks[k] <= o->prefix_len; k++) {
            APPEND(lines[k]);
            have += toks[k];
        }
        while (have < o->input_len) {
            int j = bench_rng_range(&r, 0, nl - 1);
            APPEND(lines[j]);
            have += toks[j];
        }
#undef APPEND
        bench_item *it = wl_push(w, &icap);
        if (!it) {
            free(text);
            break;
        }
        it->prompt = text;
        if (wl_tokenize(o, text, true, &it->ids, &it->n_ids) != 0) {
            rc = -1;
            goto out;
        }
        it->output_len = o->output_len;
        it->ignore_eos = true;
    }
    snprintf(w->name, sizeof w->name, "sonnet:in%d:prefix%d:out%d", o->input_len, o->prefix_len, o->output_len);
out:
    for (int i = 0; i < nl; i++)
        free(lines[i]);
    free(lines);
    free(toks);
    if (rc) bench_workload_free(w);
    return rc;
}
