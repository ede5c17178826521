/* ignis_tokbench: encode throughput of each tokenizer family on war-and-peace, one thread,
 * the text cut into ~4 KB chunks (at character boundaries) encoded one call each — the
 * same work bench/tokenizer_bench_hf.py gives HF tokenizers. Prints MB/s, median of N runs.
 *
 *   ignis_tokbench [--assets DIR] [--text FILE] [--runs N] [--chunk BYTES] [NAME=TOKDIR ...]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ignis.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)sz + 1);
    if (!p || fread(p, 1, (size_t)sz, f) != (size_t)sz) {
        fclose(f);
        free(p);
        return NULL;
    }
    fclose(f);
    p[sz] = 0;
    *n = (size_t)sz;
    return p;
}

int main(int argc, char **argv)
{
    const char *assets = getenv("IGNIS_ASSETS");
    const char *text_path = NULL;
    int runs = 5;
    size_t chunk = 4096;
    const char *names[16], *dirs[16];
    int nf = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--assets") && i + 1 < argc)
            assets = argv[++i];
        else if (!strcmp(argv[i], "--text") && i + 1 < argc)
            text_path = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
            chunk = (size_t)atol(argv[++i]);
        else if (strchr(argv[i], '=') && nf < 16) {
            char *eq = strchr(argv[i], '=');
            *eq = 0;
            names[nf] = argv[i];
            dirs[nf++] = eq + 1;
        } else {
            fprintf(stderr,
                    "usage: ignis_tokbench [--assets DIR] [--text FILE] [--runs N] [--chunk BYTES] [NAME=DIR ...]\n");
            return 2;
        }
    }
    if (!assets || !*assets) assets = "../shared/assets";
    if (runs < 1 || runs > 100 || chunk < 16) {
        fprintf(stderr, "ignis_tokbench: --runs must be 1..100 and --chunk >= 16\n");
        return 2;
    }
    static char bufs[16][4096];
    if (nf == 0) {
        static const char *dn[] = {"llama2",    "tokenizers/llama2",   "llama3", "tokenizers/llama3",
                                   "qwen2",     "tokenizers/qwen2",    "qwen3",  "tokenizers/qwen3",
                                   "internlm2", "tokenizers/internlm2"};
        for (int k = 0; k < 5; k++) {
            names[nf] = dn[2 * k];
            snprintf(bufs[nf], sizeof bufs[nf], "%s/%s", assets, dn[2 * k + 1]);
            dirs[nf] = bufs[nf];
            nf++;
        }
    }
    char tp[4096];
    if (!text_path) {
        snprintf(tp, sizeof tp, "%s/workloads/war-and-peace.txt", assets);
        text_path = tp;
    }
    size_t n;
    char *text = read_file(text_path, &n);
    if (!text) {
        fprintf(stderr, "ignis_tokbench: cannot read %s\n", text_path);
        return 1;
    }
    /* chunk boundaries moved forward to a character start, as the HF script does */
    size_t *cuts = malloc((n / chunk + 2) * sizeof *cuts);
    int nc = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + chunk < n ? i + chunk : n;
        while (j < n && ((unsigned char)text[j] & 0xC0) == 0x80)
            j++;
        cuts[nc++] = i;
        i = j;
    }
    cuts[nc] = n;
    printf("text %s: %.2f MB in %d chunks of ~%zu bytes; median of %d runs, 1 thread\n", text_path, (double)n / 1e6, nc,
           chunk, runs);
    printf("%-10s %10s %10s %12s %10s\n", "family", "MB/s", "cold MB/s", "tokens", "load s");
    int rc = 0;
    for (int f = 0; f < nf; f++) {
        double t0 = now();
        ignis_tokenizer *t;
        if (ignis_tokenizer_open(dirs[f], &t) != IGNIS_OK) {
            fprintf(stderr, "%s: %s\n", names[f], ignis_last_error());
            rc = 1;
            continue;
        }
        double load = now() - t0;
        double times[100] = {0}; /* runs is 1..100 (checked above) */
        long tokens = 0;
        for (int r = 0; r < runs; r++) {
            long tok = 0;
            double a = now();
            for (int c = 0; c < nc; c++) {
                int32_t *ids;
                int k;
                if (ignis_tokenize(t, text + cuts[c], cuts[c + 1] - cuts[c], false, true, &ids, &k) != IGNIS_OK) {
                    fprintf(stderr, "%s: %s\n", names[f], ignis_last_error());
                    return 1;
                }
                tok += k;
                free(ids);
            }
            times[r] = now() - a;
            tokens = tok;
        }
        double cold = times[0];
        qsort(times, (size_t)runs, sizeof *times, cmp_d);
        double med = times[runs / 2];
        printf("%-10s %10.2f %10.2f %12ld %10.2f\n", names[f], (double)n / 1e6 / med, (double)n / 1e6 / cold, tokens,
               load);
        fflush(stdout);
        ignis_tokenizer_free(t);
    }
    free(cuts);
    free(text);
    return rc;
}
