/* The CUDA backend end to end against the CPU backend (the reference):
 *  - paged multi-sequence batches through the backend interface (prefill chunks, decode
 *    tokens and CUDA-graph decode steps mixed, block_len 16 and 64, shuffled blocks), on
 *    synthetic:tiny and on a synthetic GQA model with head_dim 128 (tensor-core prefill);
 *  - logits of the HF fixtures (tests/fixtures) and their greedy ids;
 *  - stories260K greedy ids against the golden file.
 * Tolerance on logits (fp16 storage of weights, activations and KV; fp32 math): max |diff|
 * <= 2e-2 * max(1, max |ref|) per row for fp16, 8e-2 for bf16 (bf16 keeps 3 fewer mantissa
 * bits); the top-1 id must be identical wherever the CPU's top-1/top-2 gap exceeds that
 * tolerance (always, for the fixtures, whose gaps are >= 0.01 by construction, and for
 * stories260K's greedy ids). */
#include <unistd.h>

#include "cuda_test_util.h"
#include "ig_kernels.h"

#include "model/synthetic.h"

static int argmax(const float *v, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

static float gap12(const float *v, int n)
{
    int b = argmax(v, n);
    float second = -INFINITY;
    for (int i = 0; i < n; i++)
        if (i != b && v[i] > second) second = v[i];
    return v[b] - second;
}

static double logit_tol(ig_dtype dt) { return dt == IG_BF16 ? 8e-2 : 2e-2; }

/* Compares rows of logits; returns the worst |diff| relative to the row scale. */
static double compare_logits(const char *what, const float *got, const float *ref, int rows, int vocab, ig_dtype dt,
                             bool strict_top1)
{
    double worst = 0;
    for (int r = 0; r < rows; r++) {
        const float *g = got + (size_t)r * vocab, *f = ref + (size_t)r * vocab;
        double mx = 1;
        for (int i = 0; i < vocab; i++)
            mx = fabs(f[i]) > mx ? fabs(f[i]) : mx;
        double lim = logit_tol(dt) * mx;
        for (int i = 0; i < vocab; i++) {
            double d = fabs((double)g[i] - f[i]);
            if (!(d <= lim))
                fail_msg("%s row %d logit %d: expected %.6g (CPU), got %.6g (CUDA), tol %.3g", what, r, i, f[i], g[i],
                         lim);
            if (d / mx > worst) worst = d / mx;
        }
        int ag = argmax(g, vocab), af = argmax(f, vocab);
        if (ag != af && (strict_top1 || gap12(f, vocab) > lim))
            fail_msg("%s row %d: top-1 expected %d (CPU, gap %.4g), got %d (CUDA)", what, r, af, gap12(f, vocab), ag);
    }
    print_message("  %s: %d rows, max |diff| / row scale = %.3g (tol %.3g)\n", what, rows, worst, logit_tol(dt));
    return worst;
}

/* ------------------------------------------------------------------ batches through the backends */

/* A GQA model with head_dim 128 (4 heads, 2 KV heads), synthetic weights: the shape that
 * takes the tensor-core prefill kernel, small enough for the CPU reference. */
static void make_d128(ig_model_desc *d)
{
    ig_config c;
    memset(&c, 0, sizeof c);
    c.arch = IG_ARCH_QWEN2;
    snprintf(c.architecture, sizeof c.architecture, "Qwen2ForCausalLM");
    c.vocab_size = 1000;
    c.hidden = 512;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 128;
    c.inter = 1024;
    c.norm_eps = 1e-6f;
    c.rope.type = IG_ROPE_DEFAULT;
    c.rope.theta = 1e6;
    c.max_pos = 4096;
    c.qkv_bias = true;
    c.bos_id = 1;
    c.eos_ids[0] = 2;
    c.n_eos = 1;
    assert_int_equal(ig_model_desc_init(d, &c, 1), IGNIS_OK);
    d->source = IG_SRC_SYNTHETIC;
    d->weight_dtype = IG_F16;
    snprintf(d->path, sizeof d->path, "synthetic:test-d128");
    uint64_t seed = 1000;
#define SYN(t, dt_, nd, a, b_, sc, bi)                                                                                 \
    do {                                                                                                               \
        (t).dtype = (dt_);                                                                                             \
        (t).ndim = (nd);                                                                                               \
        (t).shape[0] = (a);                                                                                            \
        (t).shape[1] = (nd) == 2 ? (b_) : 0;                                                                           \
        (t).data = NULL;                                                                                               \
        (t).synth_seed = seed++;                                                                                       \
        (t).synth_scale = (sc);                                                                                        \
        (t).synth_bias = (bi);                                                                                         \
    } while (0)
    float ah = sqrtf(3.0f / c.hidden), ai = sqrtf(3.0f / c.inter);
    int qkv = ig_qkv_rows(&c, 1);
    ig_weights *w = &d->ranks[0];
    SYN(w->tok_emb, IG_F16, 2, c.vocab_size, c.hidden, 1.0f, 0.0f);
    SYN(w->final_norm, IG_F32, 1, c.hidden, 0, 0.1f, 1.0f);
    SYN(w->output, IG_F16, 2, c.vocab_size, c.hidden, ah, 0.0f);
    for (int l = 0; l < c.n_layers; l++) {
        ig_layer_weights *L = &w->layers[l];
        SYN(L->attn_norm, IG_F32, 1, c.hidden, 0, 0.1f, 1.0f);
        SYN(L->wqkv, IG_F16, 2, qkv, c.hidden, ah, 0.0f);
        SYN(L->bqkv, IG_F32, 1, qkv, 0, 0.1f, 0.0f);
        SYN(L->wo, IG_F16, 2, c.hidden, c.n_heads * c.head_dim, ah, 0.0f);
        SYN(L->ffn_norm, IG_F32, 1, c.hidden, 0, 0.1f, 1.0f);
        SYN(L->w13, IG_F16, 2, 2 * c.inter, c.hidden, ah, 0.0f);
        SYN(L->w2, IG_F16, 2, c.hidden, c.inter, ai, 0.0f);
    }
#undef SYN
    assert_int_equal(ig_model_desc_validate(d), IGNIS_OK);
}

typedef struct seqstate {
    int len; /* tokens in the cache */
    int32_t toks[512];
} seqstate;

/* Runs one batch on both backends; compares all requested logits rows and, when
 * `sample`, greedy ids sampled on each side. */
static void run_both(ig_backend *gpu, ig_backend *cpu, const ig_batch *b, int vocab, ig_dtype dt, const char *what,
                     bool sample, int32_t *next_out)
{
    float *lg = malloc(sizeof(float) * (size_t)b->n_logits * vocab);
    float *lc = malloc(sizeof(float) * (size_t)b->n_logits * vocab);
    for (size_t i = 0; i < (size_t)b->n_logits * vocab; i++)
        lg[i] = NAN;
    int32_t tg[64], tc[64];
    ig_sample_row rows[64];
    memset(rows, 0, sizeof rows);
    for (int i = 0; i < b->n_logits && i < 64; i++)
        ignis_sampling_init(&rows[i].params);
    ig_forward_out og = {lg, sample ? tg : NULL, sample ? rows : NULL};
    ig_forward_out oc = {lc, sample ? tc : NULL, sample ? rows : NULL};
    TU_CHECK(gpu->ops->forward(gpu, b, &og));
    TU_CHECK(cpu->ops->forward(cpu, b, &oc));
    compare_logits(what, lg, lc, b->n_logits, vocab, dt, false);
    if (sample)
        for (int i = 0; i < b->n_logits; i++) {
            if (tg[i] != tc[i] && gap12(lc + (size_t)i * vocab, vocab) > logit_tol(dt))
                fail_msg("%s: greedy id of row %d: expected %d (CPU), got %d (CUDA sampler)", what, i, tc[i], tg[i]);
            if (next_out) next_out[i] = tc[i];
        }
    free(lg);
    free(lc);
}

/* knobs: the CUDA backend's options (NULL: defaults). */
static void batch_case(const ig_model_desc *d, ig_dtype dt, int bl, const ignis_cuda_opts *knobs)
{
    ig_backend_opts o = {.threads = 2, .dtype = dt};
    if (knobs) o.cuda = *knobs;
    ig_backend *gpu = NULL, *cpu = NULL;
    TU_CHECK(ig_backend_cuda_create(d, &o, &gpu));
    TU_CHECK(ig_backend_cpu_create(d, &o, &cpu));
    const int n_blocks = 96;
    int made = 0;
    TU_CHECK(gpu->ops->kv_init(gpu, bl, n_blocks, &made));
    assert_int_equal(made, n_blocks);
    TU_CHECK(cpu->ops->kv_init(cpu, bl, n_blocks, &made));
    const int V = d->cfg.vocab_size, S = 3;
    const int max_blocks = (512 + bl - 1) / bl;
    int32_t *table = malloc(sizeof(int32_t) * S * max_blocks);
    /* interleaved, descending block ids: sequences never own contiguous runs */
    for (int s = 0; s < S; s++)
        for (int k = 0; k < max_blocks; k++)
            table[s * max_blocks + k] = (n_blocks - 1 - (k * S + s)) % n_blocks;
    seqstate sq[3];
    memset(sq, 0, sizeof sq);
    char what[1200];
    const int plan[3][3] = {{40, 7, 1}, {1, 20, 1}, {0, 0, 0}};
    int32_t next[3] = {0, 0, 0};
    for (int step = 0; step < 10; step++) {
        int nq[3];
        for (int s = 0; s < S; s++)
            nq[s] = step < 2 ? plan[step][s] : 1;
        int32_t toks[64], q_start[4], kv_len[3], rows[64];
        int T = 0, nl = 0;
        q_start[0] = 0;
        for (int s = 0; s < S; s++) {
            for (int i = 0; i < nq[s]; i++) {
                int32_t id = step < 2 ? (int32_t)((s * 97 + sq[s].len * 31 + 5) % V) : next[s];
                toks[T++] = id;
                sq[s].toks[sq[s].len++] = id;
            }
            q_start[s + 1] = T;
            kv_len[s] = sq[s].len;
        }
        if (step == 0) {
            for (int t = 0; t < T; t++)
                rows[nl++] = t; /* every position's logits */
        } else {
            for (int s = 0; s < S; s++)
                rows[nl++] = q_start[s + 1] - 1;
        }
        ig_batch b = {S, T, toks, q_start, kv_len, table, max_blocks, rows, nl};
        snprintf(what, sizeof what, "%s %s bl=%d step %d%s", d->path, ig_dtype_str(dt), bl, step,
                 step >= 2   ? " (decode graph)"
                 : step == 1 ? " (mixed)"
                             : " (prefill)");
        run_both(gpu, cpu, &b, V, dt, what, step >= 1, next);
    }
    free(table);
    gpu->ops->destroy(gpu);
    cpu->ops->destroy(cpu);
}

static void test_cuda_paged_batches_match_cpu_backend(void **state)
{
    (void)state;
    ig_model_desc tiny, d128;
    TU_CHECK(ig_synthetic_open("synthetic:tiny", IG_F16, 1, &tiny));
    make_d128(&d128);
    const int bls[2] = {16, 64};
    for (int i = 0; i < 2; i++) {
        batch_case(&tiny, IG_F16, bls[i], NULL);
        batch_case(&d128, IG_F16, bls[i], NULL);
    }
    batch_case(&d128, IG_BF16, 16, NULL);
    ig_model_desc_free(&tiny);
    ig_model_desc_free(&d128);
}

/* Every non-default value of ignis_cuda_opts takes another kernel path (launches without
 * graphs or PDL, cuBLAS for single tokens, the tiled decode kernel, a finer split-K) and
 * still matches the CPU backend on the same paged prefill/mixed/decode batches. */
static void test_cuda_knobs_match_cpu_backend(void **state)
{
    (void)state;
    ig_model_desc d128;
    make_d128(&d128);
    const ignis_cuda_opts knobs[] = {
        {.graphs = -1}, {.pdl = -1}, {.gemv_max_m = -1}, {.decode_attn = 1}, {.split_cover = 1},
    };
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        print_message("  knobs #%zu\n", i);
        batch_case(&d128, IG_F16, 16, &knobs[i]);
    }
    /* PDL is per device: leave it on for the suites that follow */
    CT_CK(ig_kernels_set_pdl(0, 1));
    ig_model_desc_free(&d128);
}

/* The scheduler's pattern: 16 sequences with prompts of 1..90 tokens, prefill in chunks of
 * at most 37 tokens per step mixed with the decode tokens of sequences already past their
 * prompt, logits for the last token of every sequence that has finished its prompt; the
 * CPU's greedy ids are fed to both backends. Pins mixed eager batches of many sequences and
 * decode-only steps of 9..16 sequences (CUDA graph buckets 16, cuBLAS inside the graph). */
static void sched_case(const ig_model_desc *d, int bl)
{
    enum { NS = 16, NEW = 12 };
    ig_backend_opts o = {.threads = 2, .dtype = IG_F16};
    ig_backend *gpu = NULL, *cpu = NULL;
    TU_CHECK(ig_backend_cuda_create(d, &o, &gpu));
    TU_CHECK(ig_backend_cpu_create(d, &o, &cpu));
    const int max_len = 90 + NEW + 1, max_blocks = (max_len + bl - 1) / bl, n_blocks = NS * max_blocks;
    int made = 0;
    TU_CHECK(gpu->ops->kv_init(gpu, bl, n_blocks, &made));
    TU_CHECK(cpu->ops->kv_init(cpu, bl, n_blocks, &made));
    const int V = d->cfg.vocab_size;
    int32_t *table = malloc(sizeof(int32_t) * NS * max_blocks);
    for (int s = 0; s < NS; s++)
        for (int k = 0; k < max_blocks; k++)
            table[s * max_blocks + k] = (k * NS + (NS - 1 - s)) % n_blocks;
    int32_t toks[NS][128];
    int plen[NS], done[NS], gen[NS];
    for (int s = 0; s < NS; s++) {
        plen[s] = 1 + (s * 29 + 7) % 90;
        unsigned seed = 50u + (unsigned)s;
        for (int i = 0; i < plen[s]; i++) {
            seed = seed * 1103515245u + 12345u;
            toks[s][i] = 3 + (int32_t)((seed >> 16) % (unsigned)(V - 3));
        }
        done[s] = 0; /* tokens in the cache */
        gen[s] = 0;
    }
    char what[1200];
    for (int step = 0; step < 200; step++) {
        int32_t bt_tok[NS + 40], q_start[NS + 1], kv_len[NS], rows[NS], tab[NS * 16], seq_of[NS];
        int T = 0, S = 0, nl = 0, budget = 37;
        q_start[0] = 0;
        for (int s = 0; s < NS; s++) {
            if (gen[s] >= NEW) continue;
            int have = plen[s] + gen[s]; /* tokens known; the cache holds done[s] of them */
            int n = have - done[s];
            if (done[s] < plen[s]) { /* prefilling: a chunk within the step's budget */
                if (budget <= 0) continue;
                if (n > budget) n = budget;
                budget -= n;
            }
            if (n <= 0) continue;
            for (int i = 0; i < n; i++)
                bt_tok[T++] = toks[s][done[s] + i];
            done[s] += n;
            q_start[S + 1] = T;
            kv_len[S] = done[s];
            memcpy(tab + S * max_blocks, table + s * max_blocks, sizeof(int32_t) * max_blocks);
            seq_of[S] = s;
            if (done[s] == plen[s] + gen[s]) rows[nl++] = T - 1; /* all known tokens in: sample */
            S++;
        }
        if (S == 0) break;
        ig_batch b = {S, T, bt_tok, q_start, kv_len, tab, max_blocks, rows, nl};
        int32_t next[NS];
        snprintf(what, sizeof what, "%s bl=%d scheduler step %d (%d seqs, %d tokens)", d->path, bl, step, S, T);
        if (nl > 0) {
            run_both(gpu, cpu, &b, V, IG_F16, what, true, next);
        } else {
            ig_forward_out none = {NULL, NULL, NULL};
            TU_CHECK(gpu->ops->forward(gpu, &b, &none));
            TU_CHECK(cpu->ops->forward(cpu, &b, &none));
        }
        /* map logit rows back to sequences */
        for (int i = 0, si = 0; i < nl; i++) {
            while (q_start[si + 1] - 1 != rows[i])
                si++;
            int s = seq_of[si];
            toks[s][plen[s] + gen[s]] = next[i];
            gen[s]++;
        }
    }
    for (int s = 0; s < NS; s++)
        if (gen[s] != NEW) fail_msg("scheduler emulation: sequence %d generated %d of %d", s, gen[s], NEW);
    free(table);
    gpu->ops->destroy(gpu);
    cpu->ops->destroy(cpu);
}

static void test_cuda_scheduler_pattern_matches_cpu_backend(void **state)
{
    (void)state;
    ig_model_desc tiny, d128;
    TU_CHECK(ig_synthetic_open("synthetic:tiny", IG_F16, 1, &tiny));
    make_d128(&d128);
    sched_case(&tiny, 16);
    sched_case(&d128, 64);
    ig_model_desc_free(&tiny);
    ig_model_desc_free(&d128);
}

/* ------------------------------------------------------------------ models through ignis.h */
static ignis_model *open_model(const char *path, ignis_backend_kind k)
{
    ignis_engine_opts o;
    ignis_engine_opts_init(&o);
    o.backend = k;
    o.session_len = 512;
    o.cache_max_entry_count = 64; /* blocks */
    o.cache_block_seq_len = 16;
    ignis_model *m = NULL;
    ignis_status s = ignis_model_open(path, &o, &m);
    if (s != IGNIS_OK) fail_msg("opening %s on %s: %s", path, ignis_backend_name(k), ignis_last_error());
    return m;
}

static void all_logits(ignis_model *m, const int32_t *ids, int n, float *out)
{
    ignis_seq *s = NULL;
    TU_CHECK(ignis_seq_create(m, 0, &s));
    TU_CHECK(ignis_seq_eval(s, ids, n, out, true));
    ignis_seq_destroy(s);
}

static void test_cuda_synthetic_tiny_logits_match_cpu(void **state)
{
    (void)state;
    ignis_model *g = open_model("synthetic:tiny", IGNIS_BACKEND_CUDA),
                *c = open_model("synthetic:tiny", IGNIS_BACKEND_CPU);
    ignis_model_info info;
    TU_CHECK(ignis_model_get_info(g, &info));
    assert_string_equal(info.backend, "cuda");
    int32_t ids[100];
    for (int i = 0; i < 100; i++)
        ids[i] = (i * 53 + 1) % info.vocab_size;
    float *lg = malloc(sizeof(float) * 100 * info.vocab_size), *lc = malloc(sizeof(float) * 100 * info.vocab_size);
    all_logits(g, ids, 100, lg);
    all_logits(c, ids, 100, lc);
    compare_logits("synthetic:tiny all positions", lg, lc, 100, info.vocab_size, IG_F16, false);
    free(lg);
    free(lc);
    ignis_model_close(g);
    ignis_model_close(c);
}

typedef struct collect {
    int32_t ids[1024];
    int n;
} collect;
static int on_tok(void *u, int32_t t)
{
    collect *c = u;
    if (c->n < 1024) c->ids[c->n++] = t;
    return 0;
}

static void greedy(ignis_model *m, const int32_t *prompt, int n_prompt, int n_new, collect *out)
{
    ignis_seq *s = NULL;
    TU_CHECK(ignis_seq_create(m, 0, &s));
    ignis_gen_opts go;
    ignis_gen_opts_init(&go);
    go.max_new_tokens = n_new;
    go.ignore_eos = true;
    go.on_token = on_tok;
    go.user = out;
    out->n = 0;
    TU_CHECK(ignis_seq_generate(s, prompt, n_prompt, &go, NULL));
    ignis_seq_destroy(s);
}

static void test_cuda_fixture_logits_and_greedy_match_cpu(void **state)
{
    (void)state;
    const char *names[6] = {"llama2", "llama3", "qwen2", "internlm2", "internlm", "qwen"};
    int ran = 0;
    for (int f = 0; f < 6; f++) {
        char rel[256];
        snprintf(rel, sizeof rel, "tests/fixtures/%s", names[f]);
        const char *dir = tu_src(rel);
        char cfgp[1024], pp[1024], gp[1024];
        snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
        snprintf(pp, sizeof pp, "%s/prompt_ids.txt", dir);
        snprintf(gp, sizeof gp, "%s/greedy_ids.txt", dir);
        if (!tu_exists(cfgp) || !tu_exists(pp)) {
            print_message("  fixture %s absent\n", names[f]);
            continue;
        }
        int32_t *prompt = NULL, *gold = NULL;
        int n = tu_read_ints(pp, &prompt), ng = tu_exists(gp) ? tu_read_ints(gp, &gold) : 0;
        ignis_model *g = open_model(dir, IGNIS_BACKEND_CUDA), *c = open_model(dir, IGNIS_BACKEND_CPU);
        ignis_model_info info;
        TU_CHECK(ignis_model_get_info(g, &info));
        float *lg = malloc(sizeof(float) * n * info.vocab_size), *lc = malloc(sizeof(float) * n * info.vocab_size);
        all_logits(g, prompt, n, lg);
        all_logits(c, prompt, n, lc);
        char what[128];
        snprintf(what, sizeof what, "fixture %s logits", names[f]);
        compare_logits(what, lg, lc, n, info.vocab_size, IG_F16, true);
        if (ng > 0) {
            collect out;
            greedy(g, prompt, n, ng, &out);
            for (int i = 0; i < ng; i++)
                if (out.ids[i] != gold[i])
                    fail_msg("fixture %s greedy id %d: expected %d (HF), got %d (CUDA)", names[f], i, gold[i],
                             out.ids[i]);
        }
        free(lg);
        free(lc);
        free(prompt);
        free(gold);
        ignis_model_close(g);
        ignis_model_close(c);
        ran++;
    }
    if (!ran) skip();
}

/* Token by token (the decode path: fused GEMV + RoPE epilogue), row i = logits after ids[i]. */
static void step_logits(ignis_model *m, const int32_t *ids, int n, int V, float *out)
{
    ignis_seq *s = NULL;
    TU_CHECK(ignis_seq_create(m, 0, &s));
    for (int i = 0; i < n; i++)
        TU_CHECK(ignis_seq_eval(s, ids + i, 1, out + (size_t)i * V, false));
    ignis_seq_destroy(s);
}

/* Qwen past seq_length (the qwen fixture with config_ntk.json: seq_length 6): dynamic NTK
 * and log-n on the GPU (kernels/long_ctx.cu) against the CPU backend, whose logits
 * test_fidelity checks against make_fixtures.py's numpy reference; prefill and decode. */
static void test_cuda_qwen_ntk_logn_past_seq_length_matches_cpu(void **state)
{
    (void)state;
    char dir[4096], p[4200];
    snprintf(p, sizeof p, "%s/config_ntk.json", tu_src("tests/fixtures/qwen"));
    if (!tu_exists(p)) skip();
    assert_true(tu_make_qwen_ntk_dir("cuda-qwen-ntk", dir, sizeof dir));
    snprintf(p, sizeof p, "%s/prompt_ids.txt", tu_src("tests/fixtures/qwen"));
    int32_t *prompt = NULL;
    int n = tu_read_ints(p, &prompt);
    ignis_model *g = open_model(dir, IGNIS_BACKEND_CUDA), *c = open_model(dir, IGNIS_BACKEND_CPU);
    ignis_model_info info;
    TU_CHECK(ignis_model_get_info(g, &info));
    int V = info.vocab_size;
    float *lg = malloc(sizeof(float) * n * V), *lc = malloc(sizeof(float) * n * V);
    all_logits(g, prompt, n, lg);
    all_logits(c, prompt, n, lc);
    compare_logits("qwen NTK/log-n prefill", lg, lc, n, V, IG_F16, true);
    step_logits(g, prompt, n, V, lg);
    step_logits(c, prompt, n, V, lc);
    compare_logits("qwen NTK/log-n decode", lg, lc, n, V, IG_F16, true);
    free(lg);
    free(lc);
    free(prompt);
    ignis_model_close(g);
    ignis_model_close(c);
}

/* stories260K is an fp32 model; the golden ids come from an fp32 run. The CUDA backend
 * stores weights, activations and KV in fp16, whose logit error on this model is ~1e-3 of
 * the row's largest logit (measured by the logits tests above). So: the CUDA greedy ids
 * must equal the golden ids at every step, except that they may part ways at a step where
 * the fp32 reference itself is a near-tie — its top-1/top-2 gap below 2e-3 of the row's
 * largest |logit| (twice the fp16 error) — after which the texts legitimately differ. The
 * fp32 gaps come from the CPU backend run teacher-forced on the golden ids, which must
 * itself reproduce every golden id. */
static void test_cuda_stories260k_greedy_ids_match_golden(void **state)
{
    (void)state;
    TU_ASSET_OR_SKIP(hf_, "models/stories260K/hf");
    char *hf = strdup(hf_); /* tu_asset's buffer is reused by the next call */
    TU_ASSET_OR_SKIP(golden, "models/stories260K/greedy_t0_ids.txt");
    int32_t *gold = NULL;
    int ng = tu_read_ints(golden, &gold);
    assert_int_equal(ng, 256);
    /* fp32 reference gaps along the golden path */
    ignis_model *c = open_model(hf, IGNIS_BACKEND_CPU);
    ignis_model_info info;
    TU_CHECK(ignis_model_get_info(c, &info));
    const int V = info.vocab_size;
    int32_t *path = malloc(sizeof(int32_t) * (ng + 1));
    path[0] = 1;
    memcpy(path + 1, gold, sizeof(int32_t) * ng);
    float *lc = malloc(sizeof(float) * (size_t)ng * V);
    all_logits(c, path, ng, lc);
    for (int i = 0; i < ng; i++)
        if (argmax(lc + (size_t)i * V, V) != gold[i])
            fail_msg("CPU reference (fp32) step %d: argmax %d, golden %d", i, argmax(lc + (size_t)i * V, V), gold[i]);
    ignis_model_close(c);

    ignis_model *g = open_model(hf, IGNIS_BACKEND_CUDA);
    int32_t bos = 1;
    collect out;
    greedy(g, &bos, 1, ng, &out);
    assert_int_equal(out.n, ng);
    int first = -1;
    for (int i = 0; i < ng && first < 0; i++)
        if (out.ids[i] != gold[i]) first = i;
    if (first >= 0) {
        const float *row = lc + (size_t)first * V;
        double mx = 1;
        for (int i = 0; i < V; i++)
            mx = fabs(row[i]) > mx ? fabs(row[i]) : mx;
        double gap = gap12(row, V), lim = 2e-3 * mx;
        if (!(gap < lim))
            fail_msg("stories260K greedy id %d: expected %d (golden), got %d (CUDA); the fp32 gap there is %.4g, not a "
                     "near-tie (< %.4g)",
                     first, gold[first], out.ids[first], gap, lim);
        print_message("  stories260K: %d of %d greedy ids equal the golden ids, then a near-tie (fp32 gap %.4g < %.4g "
                      "at step %d: golden %d, CUDA fp16 %d)\n",
                      first, ng, gap, lim, first, gold[first], out.ids[first]);
    } else {
        print_message("  stories260K: all %d greedy ids equal the golden ids\n", ng);
    }
    free(gold);
    free(path);
    free(lc);
    free(hf);
    ignis_model_close(g);
}

int main(void)
{
    CT_SKIP_WITHOUT_GPU();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuda_paged_batches_match_cpu_backend),
        cmocka_unit_test(test_cuda_knobs_match_cpu_backend),
        cmocka_unit_test(test_cuda_scheduler_pattern_matches_cpu_backend),
        cmocka_unit_test(test_cuda_synthetic_tiny_logits_match_cpu),
        cmocka_unit_test(test_cuda_fixture_logits_and_greedy_match_cpu),
        cmocka_unit_test(test_cuda_qwen_ntk_logn_past_seq_length_matches_cpu),
        cmocka_unit_test(test_cuda_stories260k_greedy_ids_match_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
