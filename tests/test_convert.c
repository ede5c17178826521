/* Converter, workspace writer/loader and online conversion: values, splits, errors. */
#include <dirent.h>
#include <signal.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/hf_config.h"
#include "convert/hf_load.h"
#include "convert/hf_weights.h"
#include "convert/safetensors.h"
#include "core/crc32c.h"
#include "model/workspace.h"
#include "test_convert_fixture.h"
#include "test_util.h"

/* ------------------------------------------------------------------ helpers */

typedef struct paths {
    char root[2048]; /* fresh temp dir */
    char hf[2100];   /* root/hf: the fixture checkpoint */
    char ws[2100];   /* root/ws: the workspace destination (not created) */
} paths;

static void make_paths(paths *p, const char *tag)
{
    snprintf(p->root, sizeof p->root, "%s", tu_tmpdir(tag));
    snprintf(p->hf, sizeof p->hf, "%s/hf", p->root);
    snprintf(p->ws, sizeof p->ws, "%s/ws", p->root);
    if (mkdir(p->hf, 0755) != 0) fail_msg("mkdir %s: %s", p->hf, strerror(errno));
}

static ignis_status convert(const char *hf, const char *dst, const char *name, ignis_dtype dt, int tp)
{
    ignis_convert_opts o;
    ignis_convert_opts_init(&o);
    o.model_name = name;
    o.hf_dir = hf;
    o.dst_path = dst;
    o.dtype = dt;
    o.tp = tp;
    return ignis_convert(&o);
}

/* No dst.tmp-* beside dst. */
static void assert_no_temp_dirs(const char *dst)
{
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", dst);
    char *slash = strrchr(parent, '/');
    assert_non_null(slash);
    *slash = 0;
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s.tmp-", slash + 1);
    DIR *d = opendir(parent);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            closedir(d);
            fail_msg("temporary directory %s/%s was left behind", parent, e->d_name);
        }
    closedir(d);
}

/* Nothing at dst and no dst.tmp-* beside it. */
static void assert_nothing_left(const char *dst)
{
    if (tu_exists(dst)) fail_msg("expected no workspace at %s after a failed convert, but it exists", dst);
    assert_no_temp_dirs(dst);
}

static const void *src_data(const ig_st_set *st, const char *fmt, int layer)
{
    char n[128];
    /* some names have no %d: the extra argument is ignored, as C allows */
    // cppcheck-suppress wrongPrintfScanfArgNum
    snprintf(n, sizeof n, fmt, layer);
    const ig_st_tensor *t = ig_st_find(st, n);
    if (!t) fail_msg("stories260K has no tensor %s", n);
    return t->data;
}

static void assert_msg_has(const char *needle)
{
    const char *m = ignis_last_error();
    if (!strstr(m, needle)) fail_msg("error message should contain \"%s\"; got \"%s\"", needle, m);
}

/* Converting must fail with status `want`, a message holding every needle, nothing left. */
static void expect_convert_failure(const paths *p, ignis_status want, const char *const *needles, int n)
{
    ignis_status s = convert(p->hf, p->ws, "test-model", IGNIS_DTYPE_AUTO, 1);
    if (s != want)
        fail_msg("expected status %s, got %s (%s)", ignis_status_name(want), ignis_status_name(s), ignis_last_error());
    for (int i = 0; i < n; i++)
        assert_msg_has(needles[i]);
    assert_nothing_left(p->ws);
}

static void replace_in_file(const char *path, const char *from, const char *to)
{
    char *s = tu_read_file(path, NULL);
    assert_non_null(s);
    char *at = strstr(s, from);
    if (!at) fail_msg("%s does not contain %s", path, from);
    size_t n = strlen(s) + strlen(to) + 1;
    char *o = malloc(n);
    snprintf(o, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    tc_write_text(path, o);
    free(o);
    free(s);
}

static float elem(const ig_tensor *t, int64_t i)
{
    float v;
    ig_to_f32(&v, (const char *)t->data + (size_t)i * ig_dtype_size(t->dtype), t->dtype, 1);
    return v;
}

static int64_t ncols(const ig_tensor *t) { return t->ndim == 2 ? t->shape[1] : 1; }

/* t's rows [r0, r0+n) equal source rows [s0, s0+n) (all columns), element by element. */
static void assert_rows(const ig_tensor *t, int64_t r0, const tc_tensor *s, int64_t s0, int64_t n, const char *what)
{
    int64_t c = ncols(t);
    int64_t sc = s->ndim == 2 ? s->shape[1] : 1;
    assert_int_equal(c, sc);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < c; j++) {
            float got = elem(t, (r0 + i) * c + j), want = tc_value(s, (s0 + i) * sc + j);
            if (memcmp(&got, &want, 4) != 0)
                fail_msg("%s: row %lld col %lld: expected %.9g (from %s row %lld), got %.9g", what, (long long)(r0 + i),
                         (long long)j, want, s->name, (long long)(s0 + i), got);
        }
}

/* t's columns [c0, c0+n) of every row equal source columns [s0, s0+n). */
static void assert_cols(const ig_tensor *t, const tc_tensor *s, int64_t s0, const char *what)
{
    int64_t c = t->shape[1], rows = t->shape[0];
    assert_int_equal(rows, s->shape[0]);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < c; j++) {
            float got = elem(t, i * c + j), want = tc_value(s, i * s->shape[1] + s0 + j);
            if (memcmp(&got, &want, 4) != 0)
                fail_msg("%s: [%lld, %lld]: expected %.9g (from %s col %lld), got %.9g", what, (long long)i,
                         (long long)j, want, s->name, (long long)(s0 + j), got);
        }
}

static tc_tensor *T(tc_model *m, const char *fmt, int layer)
{
    char n[160];
    snprintf(n, sizeof n, fmt, layer);
    tc_tensor *t = tc_find(m, n);
    if (!t) fail_msg("fixture has no tensor %s", n);
    return t;
}

/* Checks every rank tensor of d against the fixture's HF tensors, computing the expected
 * slices here independently of the converter (source values are exactly representable
 * in the desc dtype: same dtype, or fp32 weights). */
static void assert_desc_matches_fixture(const ig_model_desc *d, tc_model *m)
{
    const ig_config *c = &d->cfg;
    int tp = d->tp, hd = c->head_dim, nh_r = c->n_heads / tp, nkv_r = c->n_kv_heads / tp, ir = c->inter / tp;
    int qpk = c->n_heads / c->n_kv_heads;
    bool ilm = m->arch == TC_INTERNLM2;
    tc_tensor *emb = T(m, ilm ? "model.tok_embeddings.weight" : "model.embed_tokens.weight", 0);
    int vp_r = d->vocab_padded / tp;
    for (int r = 0; r < tp; r++) {
        const ig_weights *w = &d->ranks[r];
        assert_rows(&w->tok_emb, 0, emb, 0, c->vocab_size, "tok_embeddings");
        assert_rows(&w->final_norm, 0, T(m, "model.norm.weight", 0), 0, c->hidden, "norm");
        if (c->tie_embeddings && tp == 1) {
            assert_int_equal(w->output.ndim, 0);
        } else {
            tc_tensor *out = c->tie_embeddings ? emb : T(m, ilm ? "output.weight" : "lm_head.weight", 0);
            int64_t row0 = (int64_t)r * vp_r, real = c->vocab_size - row0 < vp_r ? c->vocab_size - row0 : vp_r;
            assert_rows(&w->output, 0, out, row0, real, "output");
            for (int64_t i = real * c->hidden; i < (int64_t)vp_r * c->hidden; i++)
                if (elem(&w->output, i) != 0.0f) fail_msg("output padding element %lld is not zero", (long long)i);
        }
        for (int l = 0; l < c->n_layers; l++) {
            const ig_layer_weights *L = &w->layers[l];
            char what[64];
            snprintf(what, sizeof what, "rank %d layer %d", r, l);
            assert_rows(
                &L->attn_norm, 0,
                T(m, ilm ? "model.layers.%d.attention_norm.weight" : "model.layers.%d.input_layernorm.weight", l), 0,
                c->hidden, what);
            assert_rows(
                &L->ffn_norm, 0,
                T(m, ilm ? "model.layers.%d.ffn_norm.weight" : "model.layers.%d.post_attention_layernorm.weight", l), 0,
                c->hidden, what);
            if (ilm) {
                /* packed per KV group g: [q heads of g (qpk of them) | k_g | v_g], hd rows each */
                tc_tensor *pk = T(m, "model.layers.%d.attention.wqkv.weight", l);
                for (int i = 0; i < nh_r; i++) {
                    int h = r * nh_r + i;
                    assert_rows(&L->wqkv, (int64_t)i * hd, pk, (int64_t)((h / qpk) * (qpk + 2) + h % qpk) * hd, hd,
                                what);
                }
                for (int i = 0; i < nkv_r; i++) {
                    int g = r * nkv_r + i;
                    assert_rows(&L->wqkv, (int64_t)(nh_r + i) * hd, pk, (int64_t)(g * (qpk + 2) + qpk) * hd, hd, what);
                    assert_rows(&L->wqkv, (int64_t)(nh_r + nkv_r + i) * hd, pk, (int64_t)(g * (qpk + 2) + qpk + 1) * hd,
                                hd, what);
                }
                assert_cols(&L->wo, T(m, "model.layers.%d.attention.wo.weight", l), (int64_t)r * nh_r * hd, what);
                assert_rows(&L->w13, 0, T(m, "model.layers.%d.feed_forward.w1.weight", l), (int64_t)r * ir, ir, what);
                assert_rows(&L->w13, ir, T(m, "model.layers.%d.feed_forward.w3.weight", l), (int64_t)r * ir, ir, what);
                assert_cols(&L->w2, T(m, "model.layers.%d.feed_forward.w2.weight", l), (int64_t)r * ir, what);
            } else {
                int64_t q0 = (int64_t)nh_r * hd, k0 = (int64_t)nkv_r * hd;
                assert_rows(&L->wqkv, 0, T(m, "model.layers.%d.self_attn.q_proj.weight", l), r * q0, q0, what);
                assert_rows(&L->wqkv, q0, T(m, "model.layers.%d.self_attn.k_proj.weight", l), r * k0, k0, what);
                assert_rows(&L->wqkv, q0 + k0, T(m, "model.layers.%d.self_attn.v_proj.weight", l), r * k0, k0, what);
                if (c->qkv_bias) {
                    assert_rows(&L->bqkv, 0, T(m, "model.layers.%d.self_attn.q_proj.bias", l), r * q0, q0, what);
                    assert_rows(&L->bqkv, q0, T(m, "model.layers.%d.self_attn.k_proj.bias", l), r * k0, k0, what);
                    assert_rows(&L->bqkv, q0 + k0, T(m, "model.layers.%d.self_attn.v_proj.bias", l), r * k0, k0, what);
                } else {
                    assert_int_equal(L->bqkv.ndim, 0);
                }
                assert_cols(&L->wo, T(m, "model.layers.%d.self_attn.o_proj.weight", l), r * q0, what);
                assert_rows(&L->w13, 0, T(m, "model.layers.%d.mlp.gate_proj.weight", l), (int64_t)r * ir, ir, what);
                assert_rows(&L->w13, ir, T(m, "model.layers.%d.mlp.up_proj.weight", l), (int64_t)r * ir, ir, what);
                assert_cols(&L->w2, T(m, "model.layers.%d.mlp.down_proj.weight", l), (int64_t)r * ir, what);
            }
        }
    }
}

/* Same shapes, dtypes and bytes in every tensor of every rank. */
static void assert_descs_equal(const ig_model_desc *a, const ig_model_desc *b)
{
    assert_int_equal(a->tp, b->tp);
    assert_int_equal(a->weight_dtype, b->weight_dtype);
    ig_model_desc *A = (ig_model_desc *)a, *B = (ig_model_desc *)b;
    for (int r = 0; r < a->tp; r++)
        for (int l = -1; l < a->cfg.n_layers; l++)
            for (int role = l < 0 ? IG_ROLE_TOK_EMB : IG_ROLE_ATTN_NORM; role <= (l < 0 ? IG_ROLE_OUTPUT : IG_ROLE_W2);
                 role++) {
                const ig_tensor *x = ig_desc_slot(A, r, l, (ig_role)role), *y = ig_desc_slot(B, r, l, (ig_role)role);
                char name[64];
                ig_canon_name(name, sizeof name, l, (ig_role)role);
                if (x->ndim != y->ndim || x->shape[0] != y->shape[0] || x->shape[1] != y->shape[1] ||
                    x->dtype != y->dtype)
                    fail_msg("rank %d %s: shape/dtype differ", r, name);
                if (x->ndim && memcmp(x->data, y->data, ig_tensor_bytes(x)) != 0)
                    fail_msg("rank %d %s: bytes differ", r, name);
            }
}

/* ---------------------------------------------------------------- checksums */

static void test_crc32c_matches_known_vector_and_portable_path(void **state)
{
    (void)state;
    assert_int_equal(ig_crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(ig_crc32c_portable(0, "123456789", 9), 0xe3069283u);
    unsigned char buf[1031];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += 37) {
            uint32_t hw = ig_crc32c(0, buf + off, n), sw = ig_crc32c_portable(0, buf + off, n);
            if (hw != sw) fail_msg("crc32c of %zu bytes at +%zu: hardware %08x, table %08x", n, off, hw, sw);
        }
    assert_int_equal(ig_crc32c(ig_crc32c(0, buf, 100), buf + 100, 900), ig_crc32c(0, buf, 1000));
}

/* -------------------------------------------------------------- safetensors */

static void write_raw_st(const char *path, const char *header, size_t data_bytes)
{
    FILE *f = fopen(path, "wb");
    uint64_t hl = strlen(header);
    fwrite(&hl, 8, 1, f);
    fputs(header, f);
    for (size_t i = 0; i < data_bytes; i++)
        fputc(0, f);
    fclose(f);
}

static void test_safetensors_rejects_overlapping_tensors(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("st-overlap");
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_raw_st(path,
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                 24);
    ig_st_set s;
    memset(&s, 0, sizeof s);
    assert_int_equal(ig_st_open_file(&s, path), IGNIS_E_FORMAT);
    assert_msg_has("model.safetensors: tensors a and b overlap");
    ig_st_close(&s);
    tu_rmrf(dir);
}

static void test_safetensors_rejects_bad_header_length(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("st-hlen");
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    uint64_t hl = 1ull << 40;
    fwrite(&hl, 8, 1, f);
    fputs("{}", f);
    fclose(f);
    ig_st_set s;
    memset(&s, 0, sizeof s);
    assert_int_equal(ig_st_open_file(&s, path), IGNIS_E_FORMAT);
    assert_msg_has("model.safetensors: header length");
    ig_st_close(&s);
    tu_rmrf(dir);
}

static void test_safetensors_rejects_shape_size_mismatch(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("st-size");
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_raw_st(path, "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", 16);
    ig_st_set s;
    memset(&s, 0, sizeof s);
    assert_int_equal(ig_st_open_file(&s, path), IGNIS_E_FORMAT);
    assert_msg_has("model.safetensors: tensor w: data_offsets span 16 bytes but BF16 shape needs 12");
    ig_st_close(&s);
    tu_rmrf(dir);
}

/* ------------------------------------------------------------ stories260K */

static void test_convert_stories260k_round_trips_exactly(void **state)
{
    (void)state;
    TU_ASSET_OR_SKIP(asset, "models/stories260K/hf");
    char hf[4096];
    snprintf(hf, sizeof hf, "%s", asset);
    char root[4096], ws[4200];
    snprintf(root, sizeof root, "%s", tu_tmpdir("conv-stories"));
    snprintf(ws, sizeof ws, "%s/workspace", root);
    TU_CHECK(convert(hf, ws, "stories260K", IGNIS_DTYPE_AUTO, 1));

    ig_model_desc d, h;
    TU_CHECK(ig_workspace_open(ws, true, &d));
    assert_int_equal(d.source, IG_SRC_WORKSPACE);
    assert_int_equal(d.weight_dtype, IG_F32);
    assert_int_equal(d.cfg.vocab_size, 512);
    assert_int_equal(d.cfg.n_layers, 5);
    assert_int_equal(d.cfg.n_kv_heads, 4);
    assert_int_equal(d.cfg.head_dim, 8);
    assert_int_equal(d.cfg.inter, 172);
    assert_int_equal(d.cfg.bos_id, 1);
    assert_int_equal(d.cfg.n_eos, 1);
    assert_int_equal(d.cfg.eos_ids[0], 2);
    assert_true(d.cfg.tie_embeddings);
    assert_true(d.cfg.norm_eps == 1e-5f);
    assert_true(d.cfg.rope.theta == 10000.0);
    assert_string_equal(d.engine.chat_template, "base");
    assert_int_equal(d.engine.session_len, 512);
    char tok[4400];
    snprintf(tok, sizeof tok, "%s/tokenizer.model", d.tokenizer_dir);
    if (!tu_exists(tok)) fail_msg("tokenizer.model was not copied to %s", d.tokenizer_dir);

    /* every canonical tensor equals the HF values bit for bit (fp32 kept as fp32) */
    ig_st_set st;
    TU_CHECK(ig_st_open_dir(&st, hf));
    const ig_config *c = &d.cfg;
    int q = c->n_heads * c->head_dim * c->hidden, kv = c->n_kv_heads * c->head_dim * c->hidden;
    assert_memory_equal(d.ranks[0].tok_emb.data, src_data(&st, "model.embed_tokens.weight", 0), 512 * 64 * 4);
    assert_memory_equal(d.ranks[0].final_norm.data, src_data(&st, "model.norm.weight", 0), 64 * 4);
    assert_int_equal(d.ranks[0].output.ndim, 0);
    for (int l = 0; l < c->n_layers; l++) {
        const ig_layer_weights *L = &d.ranks[0].layers[l];
        const char *w = L->wqkv.data;
        assert_memory_equal(w, src_data(&st, "model.layers.%d.self_attn.q_proj.weight", l), (size_t)q * 4);
        assert_memory_equal(w + (size_t)q * 4, src_data(&st, "model.layers.%d.self_attn.k_proj.weight", l),
                            (size_t)kv * 4);
        assert_memory_equal(w + (size_t)(q + kv) * 4, src_data(&st, "model.layers.%d.self_attn.v_proj.weight", l),
                            (size_t)kv * 4);
        assert_memory_equal(L->wo.data, src_data(&st, "model.layers.%d.self_attn.o_proj.weight", l), 64 * 64 * 4);
        const char *g = L->w13.data;
        assert_memory_equal(g, src_data(&st, "model.layers.%d.mlp.gate_proj.weight", l), 172 * 64 * 4);
        assert_memory_equal(g + 172 * 64 * 4, src_data(&st, "model.layers.%d.mlp.up_proj.weight", l), 172 * 64 * 4);
        assert_memory_equal(L->w2.data, src_data(&st, "model.layers.%d.mlp.down_proj.weight", l), 64 * 172 * 4);
        assert_memory_equal(L->attn_norm.data, src_data(&st, "model.layers.%d.input_layernorm.weight", l), 64 * 4);
        assert_memory_equal(L->ffn_norm.data, src_data(&st, "model.layers.%d.post_attention_layernorm.weight", l),
                            64 * 4);
    }
    ig_st_close(&st);

    /* the in-memory conversion gives the same tensors as the workspace */
    TU_CHECK(ig_hf_open(hf, (ig_dtype)-1, 1, &h));
    assert_int_equal(h.source, IG_SRC_HF);
    assert_string_equal(h.tokenizer_dir, hf);
    assert_descs_equal(&d, &h);
    ig_model_desc_free(&h);
    ig_model_desc_free(&d);
    tu_rmrf(root);
}

/* --------------------------------------------------------- splits, layouts */

static void check_arch_all_tp(tc_arch arch, const char *extra, const char *tag)
{
    paths p;
    make_paths(&p, tag);
    tc_model m;
    tc_model_init(&m, arch, 42);
    tc_write(&m, p.hf, extra, false);
    for (int tp = 1; tp <= 2; tp++) {
        char ws[2200];
        snprintf(ws, sizeof ws, "%s-tp%d", p.ws, tp);
        TU_CHECK(convert(p.hf, ws, tag, IGNIS_DTYPE_AUTO, tp));
        ig_model_desc d, h;
        TU_CHECK(ig_workspace_open(ws, true, &d));
        assert_int_equal(d.tp, tp);
        assert_int_equal(d.vocab_padded, tp == 2 ? 52 : 51);
        assert_desc_matches_fixture(&d, &m);
        TU_CHECK(ig_hf_open(p.hf, (ig_dtype)-1, tp, &h));
        assert_desc_matches_fixture(&h, &m);
        assert_descs_equal(&d, &h);
        ig_model_desc_free(&h);
        ig_model_desc_free(&d);
    }
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_convert_llama2_mha_splits_for_tp(void **state)
{
    (void)state;
    check_arch_all_tp(TC_LLAMA2, NULL, "conv-llama2");
}

static void test_convert_llama3_gqa_splits_for_tp(void **state)
{
    (void)state;
    check_arch_all_tp(TC_LLAMA3, NULL, "conv-llama3");
}

static void test_convert_qwen2_bias_and_tied_output_split_for_tp(void **state)
{
    (void)state;
    check_arch_all_tp(TC_QWEN2, NULL, "conv-qwen2");
}

static void test_convert_internlm2_unpacks_grouped_wqkv(void **state)
{
    (void)state;
    check_arch_all_tp(TC_INTERNLM2, NULL, "conv-internlm2");
}

/* tp=2 ranks put back together equal the tp=1 tensors, whatever the layout code does. */
static void test_convert_tp2_ranks_reassemble_to_tp1(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "conv-reassemble");
    tc_model m;
    tc_model_init(&m, TC_LLAMA3, 7); /* GQA, untied lm_head, odd vocab */
    tc_write(&m, p.hf, NULL, false);
    ig_model_desc a, b;
    TU_CHECK(ig_hf_open(p.hf, (ig_dtype)-1, 1, &a));
    TU_CHECK(ig_hf_open(p.hf, (ig_dtype)-1, 2, &b));
    const ig_config *c = &a.cfg;
    size_t rowb = (size_t)c->hidden * 4;
    int hd = c->head_dim, nh2 = c->n_heads / 2, nkv2 = c->n_kv_heads / 2, ir = c->inter / 2;
    for (int l = 0; l < c->n_layers; l++) {
        const ig_layer_weights *A = &a.ranks[0].layers[l];
        for (int r = 0; r < 2; r++) {
            const ig_layer_weights *B = &b.ranks[r].layers[l];
            const char *bq = B->wqkv.data, *aq = A->wqkv.data;
            /* q rows of rank r: heads [r*nh2, (r+1)*nh2) */
            assert_memory_equal(bq, aq + (size_t)r * nh2 * hd * rowb, (size_t)nh2 * hd * rowb);
            size_t ak = (size_t)c->n_heads * hd * rowb, av = ak + (size_t)c->n_kv_heads * hd * rowb;
            assert_memory_equal(bq + (size_t)nh2 * hd * rowb, aq + ak + (size_t)r * nkv2 * hd * rowb,
                                (size_t)nkv2 * hd * rowb);
            assert_memory_equal(bq + (size_t)(nh2 + nkv2) * hd * rowb, aq + av + (size_t)r * nkv2 * hd * rowb,
                                (size_t)nkv2 * hd * rowb);
            for (int i = 0; i < c->hidden; i++) {
                const float *wo_a = (const float *)A->wo.data + (size_t)i * c->n_heads * hd + (size_t)r * nh2 * hd;
                assert_memory_equal((const float *)B->wo.data + (size_t)i * nh2 * hd, wo_a, (size_t)nh2 * hd * 4);
                const float *w2_a = (const float *)A->w2.data + (size_t)i * c->inter + (size_t)r * ir;
                assert_memory_equal((const float *)B->w2.data + (size_t)i * ir, w2_a, (size_t)ir * 4);
            }
            const char *b13 = B->w13.data, *a13 = A->w13.data;
            assert_memory_equal(b13, a13 + (size_t)r * ir * rowb, (size_t)ir * rowb);
            assert_memory_equal(b13 + (size_t)ir * rowb, a13 + (size_t)(c->inter + r * ir) * rowb, (size_t)ir * rowb);
        }
    }
    /* output: 51 rows padded to 52, 26 per rank */
    assert_memory_equal(b.ranks[0].output.data, a.ranks[0].output.data, 26 * rowb);
    assert_memory_equal(b.ranks[1].output.data, (const char *)a.ranks[0].output.data + 26 * rowb, 25 * rowb);
    ig_model_desc_free(&a);
    ig_model_desc_free(&b);
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_convert_reads_sharded_checkpoint_and_llama3_rope(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "conv-sharded");
    tc_model m;
    tc_model_init(&m, TC_LLAMA3, 3);
    tc_write(&m, p.hf,
             "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
             "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 128}",
             true);
    char shard[4200];
    snprintf(shard, sizeof shard, "%s/model-00002-of-00002.safetensors", p.hf);
    assert_true(tu_exists(shard));
    TU_CHECK(convert(p.hf, p.ws, "meta-llama-3-8b-instruct", IGNIS_DTYPE_AUTO, 1));
    ig_model_desc d;
    TU_CHECK(ig_workspace_open(p.ws, false, &d));
    assert_int_equal(d.cfg.rope.type, IG_ROPE_LLAMA3);
    assert_true(d.cfg.rope.factor == 8.0 && d.cfg.rope.low_freq_factor == 1.0 && d.cfg.rope.high_freq_factor == 4.0);
    assert_int_equal(d.cfg.rope.original_max_pos, 128);
    assert_int_equal(d.cfg.n_eos, 2);
    assert_int_equal(d.cfg.eos_ids[1], 7);
    assert_string_equal(d.engine.chat_template, "llama3");
    assert_desc_matches_fixture(&d, &m);
    ig_model_desc_free(&d);
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_convert_reads_transformers5_rope_parameters(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "conv-ropeparams");
    tc_model m;
    tc_model_init(&m, TC_LLAMA3, 5);
    tc_write(&m, p.hf,
             "\"rope_parameters\": {\"rope_type\": \"llama3\", \"rope_theta\": 500000.0, \"factor\": 8.0, "
             "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 64}",
             false);
    ig_model_desc d;
    TU_CHECK(ig_hf_open(p.hf, -1, 1, &d));
    assert_int_equal(d.cfg.rope.type, IG_ROPE_LLAMA3);
    assert_true(d.cfg.rope.theta == 500000.0);
    assert_int_equal(d.cfg.rope.original_max_pos, 64);
    ig_model_desc_free(&d);
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_convert_fp16_rounds_to_nearest_even_and_bf16_source_kept(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "conv-dtype");
    tc_model m;
    tc_model_init(&m, TC_LLAMA2, 5);
    tc_write(&m, p.hf, NULL, false);
    ig_model_desc d;
    TU_CHECK(convert(p.hf, p.ws, "llama2", IGNIS_DTYPE_F16, 1));
    TU_CHECK(ig_workspace_open(p.ws, true, &d));
    assert_int_equal(d.weight_dtype, IG_F16);
    assert_int_equal(d.ranks[0].layers[0].attn_norm.dtype, IG_F32);
    tc_tensor *q = T(&m, "model.layers.%d.self_attn.q_proj.weight", 1);
    const uint16_t *h = d.ranks[0].layers[1].wqkv.data;
    for (int64_t i = 0; i < q->shape[0] * q->shape[1]; i++)
        if (h[i] != ig_f32_to_f16(tc_value(q, i)))
            fail_msg("wqkv[%lld]: expected fp16 %04x, got %04x", (long long)i, ig_f32_to_f16(tc_value(q, i)), h[i]);
    ig_model_desc_free(&d);
    tc_model_free(&m);

    /* bf16 checkpoint with --dtype auto stays bf16, bit for bit */
    tu_rmrf(p.hf);
    mkdir(p.hf, 0755);
    tu_rmrf(p.ws);
    tc_model_init_as(&m, TC_INTERNLM2, 6, "BF16");
    tc_write(&m, p.hf, NULL, false);
    TU_CHECK(convert(p.hf, p.ws, "internlm2", IGNIS_DTYPE_AUTO, 2));
    TU_CHECK(ig_workspace_open(p.ws, true, &d));
    assert_int_equal(d.weight_dtype, IG_BF16);
    assert_desc_matches_fixture(&d, &m);
    const uint16_t *e = d.ranks[1].tok_emb.data;
    tc_tensor *emb = T(&m, "model.tok_embeddings.weight", 0);
    assert_memory_equal(e, emb->data, emb->bytes);
    ig_model_desc_free(&d);
    tc_model_free(&m);
    tu_rmrf(p.root);
}

/* -------------------------------------------------------- workspace rules */

static void test_convert_replaces_previous_workspace_and_refuses_other_dirs(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "conv-replace");
    tc_model m;
    tc_model_init(&m, TC_LLAMA3, 9);
    tc_write(&m, p.hf, NULL, false);
    TU_CHECK(convert(p.hf, p.ws, "x", IGNIS_DTYPE_AUTO, 1));
    TU_CHECK(convert(p.hf, p.ws, "internlm2-chat-7b", IGNIS_DTYPE_BF16, 2));
    assert_no_temp_dirs(p.ws);

    /* leftovers of a killed convert (its process is gone) are removed by the next one;
     * those of a live process (this one) are not */
    long dead = 4194000;
    while (kill((pid_t)dead, 0) == 0 || errno != ESRCH)
        dead--;
    char stale[2300], live[2300];
    snprintf(stale, sizeof stale, "%s.tmp-%ld-abcdef", p.ws, dead);
    snprintf(live, sizeof live, "%s.tmp-%ld-ghijkl", p.ws, (long)getpid());
    mkdir(stale, 0755);
    mkdir(live, 0755);
    TU_CHECK(convert(p.hf, p.ws, "internlm2-chat-7b", IGNIS_DTYPE_BF16, 2));
    if (tu_exists(stale)) fail_msg("stale %s was not removed", stale);
    assert_true(tu_exists(live));
    rmdir(live);
    ig_model_desc d;
    TU_CHECK(ig_workspace_open(p.ws, true, &d));
    assert_int_equal(d.tp, 2);
    assert_int_equal(d.weight_dtype, IG_BF16);
    assert_string_equal(d.engine.chat_template, "internlm2");
    ig_model_desc_free(&d);

    char other[2200], keep[2300];
    snprintf(other, sizeof other, "%s/notes", p.root);
    mkdir(other, 0755);
    snprintf(keep, sizeof keep, "%s/keep.txt", other);
    tc_write_text(keep, "mine\n");
    assert_int_equal(convert(p.hf, other, "x", IGNIS_DTYPE_AUTO, 1), IGNIS_E_ARG);
    assert_msg_has("is not an ignis workspace; refusing to overwrite");
    assert_true(tu_exists(keep));
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_workspace_open_rejects_truncated_rank_file(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "ws-trunc");
    tc_model m;
    tc_model_init(&m, TC_LLAMA2, 11);
    tc_write(&m, p.hf, NULL, false);
    TU_CHECK(convert(p.hf, p.ws, "x", IGNIS_DTYPE_AUTO, 1));
    char bin[2300];
    snprintf(bin, sizeof bin, "%s/weights/rank0.bin", p.ws);
    struct stat sb;
    assert_int_equal(stat(bin, &sb), 0);
    assert_int_equal(truncate(bin, sb.st_size - 100), 0);
    ig_model_desc d;
    assert_int_equal(ig_workspace_open(p.ws, false, &d), IGNIS_E_FORMAT);
    assert_msg_has("weights/rank0.bin: tensor layers.1.w2: bytes");
    assert_msg_has("truncated");
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_workspace_open_verifies_checksums(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "ws-crc");
    tc_model m;
    tc_model_init(&m, TC_LLAMA2, 12);
    tc_write(&m, p.hf, NULL, false);
    TU_CHECK(convert(p.hf, p.ws, "x", IGNIS_DTYPE_AUTO, 1));
    char bin[2300];
    snprintf(bin, sizeof bin, "%s/weights/rank0.bin", p.ws);
    FILE *f = fopen(bin, "r+b");
    fseek(f, 5, SEEK_SET); /* inside tok_embeddings, the first tensor */
    int ch = fgetc(f);
    fseek(f, 5, SEEK_SET);
    fputc(ch ^ 0x40, f);
    fclose(f);
    ig_model_desc d;
    TU_CHECK(ig_workspace_open(p.ws, false, &d)); /* not verified: opens */
    ig_model_desc_free(&d);
    assert_int_equal(ig_workspace_open(p.ws, true, &d), IGNIS_E_FORMAT);
    assert_msg_has("tensor tok_embeddings: checksum mismatch");
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_workspace_open_rejects_unknown_version(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "ws-version");
    tc_model m;
    tc_model_init(&m, TC_QWEN2, 13);
    tc_write(&m, p.hf, NULL, false);
    TU_CHECK(convert(p.hf, p.ws, "qwen2-7b-instruct", IGNIS_DTYPE_AUTO, 1));
    assert_true(ig_is_workspace(p.ws));
    assert_false(ig_is_workspace(p.hf));
    char js[2300];
    snprintf(js, sizeof js, "%s/ignis.json", p.ws);
    replace_in_file(js, "\"version\": 1", "\"version\": 99");
    ig_model_desc d;
    assert_int_equal(ig_workspace_open(p.ws, false, &d), IGNIS_E_UNSUPPORTED);
    assert_msg_has("workspace format version 99 is not supported");
    replace_in_file(js, "\"format\": \"ignis-workspace\"", "\"format\": \"something-else\"");
    assert_false(ig_is_workspace(p.ws));
    assert_int_equal(ig_workspace_open(p.ws, false, &d), IGNIS_E_FORMAT);
    assert_msg_has("not an ignis workspace");
    tc_model_free(&m);
    tu_rmrf(p.root);
}

/* -------------------------------------------------------- converter errors */

static void test_convert_rejects_missing_safetensors(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "err-missing-st");
    tc_model m;
    tc_model_init(&m, TC_LLAMA2, 1);
    tc_write_config(&m, p.hf, NULL);
    const char *n[] = {p.hf, "no model.safetensors or model.safetensors.index.json"};
    expect_convert_failure(&p, IGNIS_E_NOT_FOUND, n, 2);
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_convert_rejects_truncated_safetensors(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "err-trunc-st");
    tc_model m;
    tc_model_init(&m, TC_LLAMA2, 1);
    tc_write(&m, p.hf, NULL, false);
    char st[2300];
    snprintf(st, sizeof st, "%s/model.safetensors", p.hf);
    struct stat sb;
    stat(st, &sb);
    assert_int_equal(truncate(st, sb.st_size - 100), 0);
    /* the last tensor in the file is the one cut short */
    const char *n[] = {"model.safetensors: tensor model.layers.1.mlp.down_proj.weight", "truncated"};
    expect_convert_failure(&p, IGNIS_E_FORMAT, n, 2);
    assert_int_equal(truncate(st, 5), 0);
    const char *n2[] = {"model.safetensors: file is 5 bytes", "truncated"};
    expect_convert_failure(&p, IGNIS_E_FORMAT, n2, 2);
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_convert_rejects_bad_json_config(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "err-json");
    tc_model m;
    tc_model_init(&m, TC_LLAMA2, 1);
    tc_write(&m, p.hf, NULL, false);
    char cfg[2300];
    snprintf(cfg, sizeof cfg, "%s/config.json", p.hf);
    tc_write_text(cfg, "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 32,,}\n");
    const char *n[] = {"config.json: not valid JSON", "line 1"};
    expect_convert_failure(&p, IGNIS_E_FORMAT, n, 2);
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_convert_rejects_unknown_architecture(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "err-arch");
    tc_model m;
    tc_model_init(&m, TC_LLAMA2, 1);
    tc_write(&m, p.hf, NULL, false);
    char cfg[2300];
    snprintf(cfg, sizeof cfg, "%s/config.json", p.hf);
    replace_in_file(cfg, "LlamaForCausalLM", "GPT2LMHeadModel");
    const char *n[] = {"config.json: architecture GPT2LMHeadModel is not supported",
                       "LlamaForCausalLM, Qwen2ForCausalLM, InternLM2ForCausalLM"};
    expect_convert_failure(&p, IGNIS_E_UNSUPPORTED, n, 2);
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_convert_rejects_missing_tensor(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "err-tensor");
    tc_model m;
    tc_model_init(&m, TC_QWEN2, 1);
    tc_remove(&m, "model.layers.1.self_attn.k_proj.bias");
    tc_write(&m, p.hf, NULL, false);
    const char *n[] = {"model.safetensors: tensor model.layers.1.self_attn.k_proj.bias not found"};
    expect_convert_failure(&p, IGNIS_E_NOT_FOUND, n, 1);
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_convert_rejects_wrong_shape(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "err-shape");
    tc_model m;
    tc_model_init(&m, TC_LLAMA2, 1);
    tc_tensor *t = tc_find(&m, "model.layers.0.self_attn.q_proj.weight");
    t->shape[1] = 16;
    t->bytes /= 2;
    tc_write(&m, p.hf, NULL, false);
    const char *n[] = {
        "model.safetensors: tensor model.layers.0.self_attn.q_proj.weight: expected shape [32, 32], got [32, 16]"};
    expect_convert_failure(&p, IGNIS_E_FORMAT, n, 1);
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_convert_rejects_wrong_dtype(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "err-dtype");
    tc_model m;
    tc_model_init(&m, TC_INTERNLM2, 1);
    tc_tensor *t = tc_find(&m, "model.layers.0.feed_forward.w3.weight");
    snprintf(t->dtype, sizeof t->dtype, "I64");
    t->data = realloc(t->data, t->bytes * 2);
    memset(t->data, 0, t->bytes * 2);
    t->bytes *= 2;
    tc_write(&m, p.hf, NULL, true); /* sharded: the message names the shard */
    const char *n[] = {"tensor model.layers.0.feed_forward.w3.weight: expected dtype F32, F16 or BF16, got I64",
                       "model-0000"};
    expect_convert_failure(&p, IGNIS_E_UNSUPPORTED, n, 2);
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_convert_rejects_bad_index_json(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "err-index");
    tc_model m;
    tc_model_init(&m, TC_LLAMA2, 1);
    tc_write(&m, p.hf, NULL, true);
    char idx[2300];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", p.hf);
    /* a tensor mapped to a shard that does not exist */
    json_t *j = json_load_file(idx, 0, NULL);
    assert_non_null(j);
    json_object_set_new(json_object_get(j, "weight_map"), "model.norm.weight",
                        json_string("model-00003-of-00002.safetensors"));
    json_dump_file(j, idx, JSON_INDENT(2));
    json_decref(j);
    const char *n[] = {
        "model.safetensors.index.json: shard model-00003-of-00002.safetensors (holding model.norm.weight) not found"};
    expect_convert_failure(&p, IGNIS_E_NOT_FOUND, n, 1);
    tc_write_text(idx, "{\"weight_map\": {\"a\": }\n");
    const char *n2[] = {"model.safetensors.index.json: not valid JSON"};
    expect_convert_failure(&p, IGNIS_E_FORMAT, n2, 1);
    tc_write_text(idx, "{\"metadata\": {}}\n");
    const char *n3[] = {"model.safetensors.index.json: missing or empty \"weight_map\""};
    expect_convert_failure(&p, IGNIS_E_FORMAT, n3, 1);
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_convert_rejects_unknown_rope_type(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "err-rope");
    tc_model m;
    tc_model_init(&m, TC_LLAMA3, 1);
    tc_write(&m, p.hf, "\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0}", false);
    const char *n[] = {"config.json: rope_scaling type \"yarn\" is not supported"};
    expect_convert_failure(&p, IGNIS_E_UNSUPPORTED, n, 1);
    tc_model_free(&m);
    tu_rmrf(p.root);
}

static void test_convert_rejects_tp_that_does_not_divide_heads(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "err-tp");
    tc_model m;
    tc_model_init(&m, TC_LLAMA3, 1);
    tc_write(&m, p.hf, NULL, false);
    assert_int_equal(convert(p.hf, p.ws, "x", IGNIS_DTYPE_AUTO, 4), IGNIS_E_UNSUPPORTED);
    assert_msg_has("tp 4 does not divide num_key_value_heads 2");
    assert_nothing_left(p.ws);
    tc_model_free(&m);
    tu_rmrf(p.root);
}

/* ------------------------------------------------------------ config.json */

static void test_hf_config_parses_ids_head_dim_and_rope_variants(void **state)
{
    (void)state;
    ig_config c;
    int dt;
    TU_CHECK(ig_hf_config_parse("{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 10, \"hidden_size\": 64, "
                                "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"intermediate_size\": 8, "
                                "\"head_dim\": 32, \"eos_token_id\": [5, 6, 7], "
                                "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}",
                                "a/config.json", &c, &dt));
    assert_int_equal(c.head_dim, 32);  /* from config, not hidden/heads = 16 */
    assert_int_equal(c.n_kv_heads, 4); /* defaults to num_attention_heads */
    assert_int_equal(c.bos_id, -1);    /* absent */
    assert_int_equal(c.n_eos, 3);
    assert_int_equal(c.eos_ids[2], 7);
    assert_int_equal(c.rope.type, IG_ROPE_LINEAR);
    assert_true(c.rope.factor == 2.0);
    assert_true(c.rope.theta == 10000.0);
    assert_int_equal(dt, -1);
    TU_CHECK(ig_hf_config_parse("{\"architectures\": [\"InternLM2ForCausalLM\"], \"vocab_size\": 10, "
                                "\"hidden_size\": 64, \"num_hidden_layers\": 1, \"num_attention_heads\": 4, "
                                "\"num_key_value_heads\": 2, \"intermediate_size\": 8, \"bias\": false, "
                                "\"rope_theta\": 1000000, \"torch_dtype\": \"bfloat16\", \"bos_token_id\": 1, "
                                "\"eos_token_id\": 2, \"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2.5}}",
                                "b/config.json", &c, &dt));
    assert_int_equal(c.arch, IG_ARCH_INTERNLM2);
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(c.rope.type, IG_ROPE_DYNAMIC);
    assert_true(c.rope.factor == 2.5 && c.rope.theta == 1e6);
    assert_int_equal(dt, IG_BF16);
    assert_string_equal(c.model_type, "internlm2");
    assert_int_equal(ig_hf_config_parse("{\"architectures\": [\"InternLM2ForCausalLM\"], \"vocab_size\": 10, "
                                        "\"hidden_size\": 64, \"num_hidden_layers\": 1, \"num_attention_heads\": 4, "
                                        "\"intermediate_size\": 8, \"bias\": true}",
                                        "c/config.json", &c, &dt),
                     IGNIS_E_UNSUPPORTED);
    assert_msg_has("c/config.json: InternLM2 with bias=true is not supported");
    assert_int_equal(
        ig_hf_config_parse("{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 10}", "d/config.json", &c, &dt),
        IGNIS_E_FORMAT);
    assert_msg_has("d/config.json: missing required key \"hidden_size\"");
}

/* ---------------------------------------------------- templates, progress */

typedef struct prog {
    uint64_t last, total;
    int calls;
    bool monotonic;
} prog;

static void on_progress(void *user, const char *stage, uint64_t done, uint64_t total)
{
    prog *p = user;
    if (strcmp(stage, "convert") != 0 || done < p->last || done > total) p->monotonic = false;
    p->last = done;
    p->total = total;
    p->calls++;
}

static void test_convert_picks_chat_template_and_reports_progress(void **state)
{
    (void)state;
    paths p;
    make_paths(&p, "conv-template");
    tc_model m;
    tc_model_init(&m, TC_LLAMA2, 31);
    tc_write(&m, p.hf, NULL, false);
    static const struct {
        const char *name, *tmpl;
    } cases[] = {
        {"Llama-2-7b-chat-hf", "llama2"}, {"internlm2-chat-7b", "internlm2"},
        {"Qwen2-7B-Instruct", "qwen"},    {"llama3.1-8b", "llama3"},
        {"mistral-7b", "base"},
    };
    mkdir(p.ws, 0755); /* an empty directory may be the destination */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        prog pr = {0, 0, 0, true};
        ignis_convert_opts o;
        ignis_convert_opts_init(&o);
        o.model_name = cases[i].name;
        o.hf_dir = p.hf;
        o.dst_path = p.ws;
        o.progress = on_progress;
        o.progress_user = &pr;
        TU_CHECK(ignis_convert(&o));
        assert_true(pr.monotonic);
        assert_true(pr.calls > 0);
        assert_int_equal(pr.last, pr.total);
        ig_model_desc d;
        TU_CHECK(ig_workspace_open(p.ws, false, &d));
        if (strcmp(d.engine.chat_template, cases[i].tmpl) != 0)
            fail_msg("model name %s: expected template %s, got %s", cases[i].name, cases[i].tmpl,
                     d.engine.chat_template);
        /* every tensor starts on a 4096-byte boundary of its map */
        assert_int_equal((uintptr_t)d.ranks[0].layers[1].w2.data % 4096, 0);
        assert_int_equal((uintptr_t)d.ranks[0].final_norm.data % 4096, 0);
        ig_model_desc_free(&d);
    }
    ignis_convert_opts o;
    ignis_convert_opts_init(&o);
    o.model_name = "internlm2-chat-7b";
    o.hf_dir = p.hf;
    o.dst_path = p.ws;
    o.chat_template = "vicuna";
    TU_CHECK(ignis_convert(&o));
    ig_model_desc d;
    TU_CHECK(ig_workspace_open(p.ws, false, &d));
    assert_string_equal(d.engine.chat_template, "vicuna");
    ig_model_desc_free(&d);
    char tf[2300];
    snprintf(tf, sizeof tf, "%s/my_template.json", p.root);
    tc_write_text(tf, "{\"system\": \"\"}\n");
    o.chat_template = tf;
    TU_CHECK(ignis_convert(&o));
    TU_CHECK(ig_workspace_open(p.ws, false, &d));
    assert_string_equal(d.engine.chat_template, "chat_template.json");
    ig_model_desc_free(&d);
    snprintf(tf, sizeof tf, "%s/chat_template.json", p.ws);
    if (!tu_exists(tf)) fail_msg("template file was not copied to %s", tf);
    o.chat_template = "no such/template";
    assert_int_equal(ignis_convert(&o), IGNIS_E_ARG);
    assert_msg_has("chat template 'no such/template' is neither an existing file nor a template name");
    tc_model_free(&m);
    tu_rmrf(p.root);
}

/* ------------------------------------------------------------ tokenizer files */

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) fail_msg("cannot write %s", path);
    fclose(f);
}

/* n deterministic pseudo-random bytes; first: the first byte (0x0A passes the
 * SentencePiece probe, so the protobuf parser itself must refuse the rest). */
static void write_random(const char *path, size_t n, unsigned char first)
{
    unsigned char *b = malloc(n);
    assert_non_null(b);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b[i] = (unsigned char)x;
    }
    b[0] = first;
    write_bytes(path, b, n);
    free(b);
}

/* A tokenizer file that cannot be loaded fails the conversion, with a message naming
 * the file, even when the loader would have picked another one. */
static void test_convert_rejects_unloadable_tokenizer_files(void **state)
{
    (void)state;
    TU_ASSET_OR_SKIP(asset, "tokenizers/qwen3/tokenizer.json");
    char qwen3[4096]; /* tu_asset's buffer is reused */
    snprintf(qwen3, sizeof qwen3, "%s", asset);
    tc_model m;
    tc_model_init(&m, TC_LLAMA2, 3);
    enum { RANDOM_MODEL, BAD_PROTOBUF_MODEL, TRUNCATED_JSON, NOT_A_BPE_JSON, GOOD_JSON_BAD_MODEL, VOCAB_NO_MERGES };
    static const char *const needles[][2] = {
        {"tokenizer.model", "neither a SentencePiece model nor a tiktoken rank file"},
        {"tokenizer.model", "SentencePiece"},
        {"tokenizer.json", "JSON"},
        {"tokenizer.json", "vocab"},
        {"tokenizer.model", "neither a SentencePiece model nor a tiktoken rank file"},
        {"merges.txt", "missing"},
    };
    for (int c = RANDOM_MODEL; c <= VOCAB_NO_MERGES; c++) {
        paths p;
        make_paths(&p, "conv-tok");
        tc_write(&m, p.hf, NULL, false);
        char f[2300];
        if (c == RANDOM_MODEL || c == GOOD_JSON_BAD_MODEL) {
            snprintf(f, sizeof f, "%s/tokenizer.model", p.hf);
            write_random(f, 4096, 0x5a);
        }
        if (c == BAD_PROTOBUF_MODEL) {
            snprintf(f, sizeof f, "%s/tokenizer.model", p.hf);
            write_random(f, 4096, 0x0a);
        }
        if (c == TRUNCATED_JSON || c == GOOD_JSON_BAD_MODEL) {
            size_t n;
            char *js = tu_read_file(qwen3, &n);
            assert_non_null(js);
            snprintf(f, sizeof f, "%s/tokenizer.json", p.hf);
            write_bytes(f, js, c == TRUNCATED_JSON ? n / 2 : n);
            free(js);
        }
        if (c == NOT_A_BPE_JSON) {
            snprintf(f, sizeof f, "%s/tokenizer.json", p.hf);
            tc_write_text(f, "{\"model\": {\"type\": \"BPE\", \"vocab\": [1, 2]}}\n");
        }
        if (c == VOCAB_NO_MERGES) {
            snprintf(f, sizeof f, "%s/vocab.json", p.hf);
            tc_write_text(f, "{\"a\": 0}\n");
        }
        ignis_status s = convert(p.hf, p.ws, "llama2-7b", IGNIS_DTYPE_AUTO, 1);
        if (s != IGNIS_E_FORMAT)
            fail_msg("case %d: expected %s, got %s (%s)", c, ignis_status_name(IGNIS_E_FORMAT), ignis_status_name(s),
                     ignis_last_error());
        for (int k = 0; k < 2; k++)
            if (!strstr(ignis_last_error(), needles[c][k]))
                fail_msg("case %d: message '%s' does not mention '%s'", c, ignis_last_error(), needles[c][k]);
        assert_nothing_left(p.ws);
        tu_rmrf(p.root);
    }
    /* the same valid tokenizer.json alone converts, and the workspace encodes with it */
    paths p;
    make_paths(&p, "conv-tok-ok");
    tc_write(&m, p.hf, NULL, false);
    size_t n;
    char *js = tu_read_file(qwen3, &n), f[2300];
    snprintf(f, sizeof f, "%s/tokenizer.json", p.hf);
    write_bytes(f, js, n);
    free(js);
    TU_CHECK(convert(p.hf, p.ws, "llama2-7b", IGNIS_DTYPE_AUTO, 1));
    ignis_tokenizer *t;
    TU_CHECK(ignis_tokenizer_open(p.ws, &t));
    int32_t *ids;
    int k;
    TU_CHECK(ignis_tokenize(t, "hello", 5, false, true, &ids, &k));
    assert_true(k > 0);
    free(ids);
    ignis_tokenizer_free(t);
    tu_rmrf(p.root);
    tc_model_free(&m);
}

typedef struct warn_log {
    char text[4096];
    int n;
} warn_log;

static void collect_warning(void *user, ignis_log_level level, const char *msg)
{
    warn_log *w = user;
    if (level != IGNIS_LOG_WARN) return;
    w->n++;
    size_t used = strlen(w->text);
    snprintf(w->text + used, sizeof w->text - used, "%s\n", msg);
}

/* A template of another family converts (the user may know better) but warns; so does a
 * model name that picks no template. */
static void test_convert_warns_when_chat_template_does_not_match(void **state)
{
    (void)state;
    static const struct {
        tc_arch arch;
        const char *name, *tmpl; /* tmpl: --chat-template, or NULL */
        const char *warning;     /* NULL: no warning */
    } cases[] = {
        {TC_LLAMA2, "internlm2-chat-7b", NULL, "chat template 'internlm2'"},
        {TC_LLAMA2, "qwen2-7b", NULL, "chat template 'qwen'"},
        {TC_LLAMA2, "llama3-8b", NULL, "chat template 'llama3'"}, /* a 32k vocabulary is no Llama 3 */
        {TC_LLAMA2, "llama2-7b", "internlm2", "from --chat-template"},
        {TC_LLAMA2, "my-model", NULL, "matches no chat template"},
        {TC_LLAMA2, "llama2-7b", NULL, NULL},
        {TC_LLAMA2, "my-model", "chatml", NULL},
        {TC_QWEN2, "qwen2-7b", NULL, NULL},
        {TC_QWEN2, "llama2-7b", NULL, "chat template 'llama2'"},
        {TC_INTERNLM2, "internlm2-chat-7b", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        paths p;
        make_paths(&p, "conv-tmpl-warn");
        tc_model m;
        tc_model_init(&m, cases[i].arch, 5);
        tc_write(&m, p.hf, NULL, false);
        tc_model_free(&m);
        warn_log w = {{0}, 0};
        ignis_set_log(IGNIS_LOG_WARN, collect_warning, &w);
        ignis_convert_opts o;
        ignis_convert_opts_init(&o);
        o.model_name = cases[i].name;
        o.hf_dir = p.hf;
        o.dst_path = p.ws;
        o.chat_template = cases[i].tmpl;
        ignis_status s = ignis_convert(&o);
        ignis_set_log(IGNIS_LOG_WARN, NULL, NULL);
        if (s != IGNIS_OK) fail_msg("case %zu: convert failed: %s", i, ignis_last_error());
        if (!cases[i].warning && w.n) fail_msg("case %zu (%s): expected no warning, got: %s", i, cases[i].name, w.text);
        if (cases[i].warning && (w.n != 1 || !strstr(w.text, cases[i].warning)))
            fail_msg("case %zu (%s): expected one warning with '%s', got %d: %s", i, cases[i].name, cases[i].warning,
                     w.n, w.text);
        tu_rmrf(p.root);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_matches_known_vector_and_portable_path),
        cmocka_unit_test(test_hf_config_parses_ids_head_dim_and_rope_variants),
        cmocka_unit_test(test_convert_picks_chat_template_and_reports_progress),
        cmocka_unit_test(test_safetensors_rejects_overlapping_tensors),
        cmocka_unit_test(test_safetensors_rejects_bad_header_length),
        cmocka_unit_test(test_safetensors_rejects_shape_size_mismatch),
        cmocka_unit_test(test_convert_stories260k_round_trips_exactly),
        cmocka_unit_test(test_convert_llama2_mha_splits_for_tp),
        cmocka_unit_test(test_convert_llama3_gqa_splits_for_tp),
        cmocka_unit_test(test_convert_qwen2_bias_and_tied_output_split_for_tp),
        cmocka_unit_test(test_convert_internlm2_unpacks_grouped_wqkv),
        cmocka_unit_test(test_convert_tp2_ranks_reassemble_to_tp1),
        cmocka_unit_test(test_convert_reads_sharded_checkpoint_and_llama3_rope),
        cmocka_unit_test(test_convert_reads_transformers5_rope_parameters),
        cmocka_unit_test(test_convert_fp16_rounds_to_nearest_even_and_bf16_source_kept),
        cmocka_unit_test(test_convert_replaces_previous_workspace_and_refuses_other_dirs),
        cmocka_unit_test(test_workspace_open_rejects_truncated_rank_file),
        cmocka_unit_test(test_workspace_open_verifies_checksums),
        cmocka_unit_test(test_workspace_open_rejects_unknown_version),
        cmocka_unit_test(test_convert_rejects_missing_safetensors),
        cmocka_unit_test(test_convert_rejects_truncated_safetensors),
        cmocka_unit_test(test_convert_rejects_bad_json_config),
        cmocka_unit_test(test_convert_rejects_unloadable_tokenizer_files),
        cmocka_unit_test(test_convert_warns_when_chat_template_does_not_match),
        cmocka_unit_test(test_convert_rejects_unknown_architecture),
        cmocka_unit_test(test_convert_rejects_missing_tensor),
        cmocka_unit_test(test_convert_rejects_wrong_shape),
        cmocka_unit_test(test_convert_rejects_wrong_dtype),
        cmocka_unit_test(test_convert_rejects_bad_index_json),
        cmocka_unit_test(test_convert_rejects_unknown_rope_type),
        cmocka_unit_test(test_convert_rejects_tp_that_does_not_divide_heads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
