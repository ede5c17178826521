/* Sonnet workload (vLLM's): prompts made of lines of a poem. Every prompt starts with the
 * same instruction and the poem's first lines (about --prefix-len tokens, shared: prefix
 * caching sees them), then lines drawn at random until about --random-input-len tokens. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "workload_util.h"

#define SONNET_HEAD "Pick as many lines as you can from these poem lines:\n"

/* Appends s to the growing prompt *text (tl bytes used of *tcap); false when out of memory
 * (*text is then freed and NULL). */
static bool append_text(char **text, size_t *tl, size_t *tcap, const char *s)
{
    size_t sl = strlen(s);
    if (*tl + sl + 1 > *tcap) {
        size_t ncap = 2 * (*tl + sl + 1);
        char *nt = realloc(*text, ncap);
        if (!nt) {
            free(*text);
            *text = NULL;
            return false;
        }
        *text = nt;
        *tcap = ncap;
    }
    memcpy(*text + *tl, s, sl + 1);
    *tl += sl;
    return true;
}

int bench_load_sonnet(const bench_ds_opts *o, bench_workload *w)
{
    memset(w, 0, sizeof *w);
    if (!o->path) return bench_err("--dataset sonnet needs --dataset-path sonnet.txt"), -1;
    if (!o->tok) return bench_err("--dataset sonnet counts tokens: it needs a tokenizer (--tokenizer DIR)"), -1;
    FILE *f = fopen(o->path, "r");
    if (!f) return bench_err("cannot open %s", o->path), -1;
    char **lines = NULL, *buf = NULL;
    int *toks = NULL, nl = 0, cap = 0, rc = 0;
    size_t bcap = 0;
    ssize_t len;
    while ((len = getline(&buf, &bcap, f)) >= 0) {
        if (strspn(buf, " \t\r\n") == (size_t)len) continue;
        if (nl == cap) {
            int ncap = cap ? 2 * cap : 256;
            char **nlines = realloc(lines, sizeof(char *) * (size_t)ncap);
            if (nlines) lines = nlines;
            int *ntoks = nlines ? realloc(toks, sizeof(int) * (size_t)ncap) : NULL;
            if (ntoks) toks = ntoks;
            if (!nlines || !ntoks) {
                rc = -1;
                break;
            }
            cap = ncap;
        }
        if (!(lines[nl] = strdup(buf))) {
            rc = -1;
            break;
        }
        toks[nl] = wl_count_tokens(o, buf);
        nl++;
    }
    free(buf);
    fclose(f);
    if (rc) {
        bench_err("%s: out of memory reading the poem", o->path);
        goto out;
    }
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
        bool ok = append_text(&text, &tl, &tcap, SONNET_HEAD);
        for (; ok && k < nl && have + toks[k] <= o->prefix_len; k++) {
            ok = append_text(&text, &tl, &tcap, lines[k]);
            have += toks[k];
        }
        while (ok && have < o->input_len) {
            int j = bench_rng_range(&r, 0, nl - 1);
            ok = append_text(&text, &tl, &tcap, lines[j]);
            have += toks[j];
        }
        if (!ok) {
            bench_err("%s: out of memory building prompt %d", o->path, i);
            rc = -1;
            goto out;
        }
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
