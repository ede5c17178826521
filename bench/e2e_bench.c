/* End-to-end throughput of one sequence through the public API (what `ignis generate`
 * does): prefill tok/s of an N-token prompt and decode tok/s at batch 1, median of R runs
 * after a warm-up run, with the weight bandwidth decode implies.
 *
 *   e2e_bench [--model synthetic:llama2-7b] [--backend cuda|cpu] [--prefill 512]
 *             [--decode 256] [--runs 5] [--dtype fp16|bf16]
 *
 * The CUDA knobs follow the CLI's environment variables (IGNIS_CUDA_GRAPHS, ...).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/env_opts.h"
#include "core/clock.h"
#include "ignis.h"

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int die(const char *what)
{
    fprintf(stderr, "e2e_bench: %s: %s\n", what, ignis_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    const char *model = "synthetic:llama2-7b";
    int n_prefill = 512, n_decode = 256, runs = 5;
    ignis_engine_opts o;
    ignis_engine_opts_init(&o);
    o.backend = IGNIS_BACKEND_CUDA;
    if (!cli_env_engine_opts(&o)) return 2; /* IGNIS_CUDA_* as the CLI reads them */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "e2e_bench: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--prefill"))
            n_prefill = atoi(v);
        else if (!strcmp(a, "--decode"))
            n_decode = atoi(v);
        else if (!strcmp(a, "--runs"))
            runs = atoi(v);
        else if (!strcmp(a, "--backend")) {
            if (ignis_backend_parse(v, &o.backend) != IGNIS_OK) return die("--backend");
        } else if (!strcmp(a, "--dtype")) {
            if (ignis_dtype_parse(v, &o.dtype) != IGNIS_OK) return die("--dtype");
        } else {
            fprintf(stderr, "e2e_bench: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (runs < 1 || runs > 100 || n_prefill < 1 || n_decode < 2) {
        fprintf(stderr, "e2e_bench: --runs 1..100, --prefill >= 1, --decode >= 2\n");
        return 2;
    }
    o.session_len = n_prefill + n_decode + 64;
    o.max_batch_size = 1;
    o.max_prefill_token_num = n_prefill;
    double t0 = ig_now();
    ignis_model *m = NULL;
    if (ignis_model_open(model, &o, &m) != IGNIS_OK) return die("open");
    double t_load = ig_now() - t0;
    ignis_model_info info;
    ignis_model_get_info(m, &info);
    printf("model %s backend %s weights %s: %.3f GB read per forward, load %.1f s\n", model, info.backend,
           info.weight_dtype, (double)info.weight_bytes / 1e9, t_load);

    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n_prefill);
    float *logits = malloc(sizeof(float) * (size_t)info.vocab_size);
    for (int i = 0; i < n_prefill; i++)
        ids[i] = 1 + (int32_t)((i * 7919u) % (unsigned)(info.vocab_size - 1));
    double *pf = malloc(sizeof(double) * (size_t)runs), *dc = malloc(sizeof(double) * (size_t)runs);
    for (int r = -1; r < runs; r++) {
        ignis_seq *s = NULL;
        if (ignis_seq_create(m, 0, &s) != IGNIS_OK) return die("seq_create");
        double a = ig_now();
        if (ignis_seq_eval(s, ids, n_prefill, logits, false) != IGNIS_OK) return die("prefill");
        double b = ig_now();
        ignis_gen_opts g;
        ignis_gen_opts_init(&g);
        g.max_new_tokens = n_decode;
        g.ignore_eos = true;
        ignis_gen_stats st;
        /* one more prompt token makes the first decode step: every generated token is one
         * batch-1 forward */
        if (ignis_seq_generate(s, ids, 1, &g, &st) != IGNIS_OK) return die("decode");
        ignis_seq_destroy(s);
        double ptoks = n_prefill / (b - a), dtoks = (st.generated_tokens - 1) / st.decode_s;
        printf("run %2d: prefill %d tok in %.2f ms = %.0f tok/s; decode %d tok = %.1f tok/s (%.0f GB/s of weights)%s\n",
               r, n_prefill, (b - a) * 1e3, ptoks, st.generated_tokens, dtoks, dtoks * (double)info.weight_bytes / 1e9,
               r < 0 ? " [warm-up]" : "");
        if (r >= 0) {
            pf[r] = ptoks;
            dc[r] = dtoks;
        }
    }
    double mp = median(pf, runs), md = median(dc, runs);
    printf("RESULT prefill_%d_tok_s %.0f decode_b1_tok_s %.1f decode_weight_GBps %.0f (median of %d)\n", n_prefill, mp,
           md, md * (double)info.weight_bytes / 1e9, runs);
    free(ids);
    free(logits);
    free(pf);
    free(dc);
    ignis_model_close(m);
    return 0;
}
