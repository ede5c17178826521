#include "convert/hf_weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/hf_config.h"
#include "core/error.h"

static const char *const k_role_names[] = {
    "tok_embeddings", "norm", "output", "attention_norm", "wqkv", "bqkv", "wo", "ffn_norm", "w13", "w2", "bo"};

void ig_canon_name(char *buf, size_t n, int layer, ig_role role)
{
    if (layer < 0)
        snprintf(buf, n, "%s", k_role_names[role]);
    else
        snprintf(buf, n, "layers.%d.%s", layer, k_role_names[role]);
}

int ig_canon_parse_name(const char *name, int *layer, ig_role *role)
{
    int l = -1;
    const char *rest = name;
    if (strncmp(name, "layers.", 7) == 0) {
        char *end;
        long v = strtol(name + 7, &end, 10);
        if (end == name + 7 || *end != '.' || v < 0 || v > 1000000) return -1;
        l = (int)v;
        rest = end + 1;
    }
    for (int r = 0; r <= IG_ROLE_BO; r++) {
        bool layer_role = r >= IG_ROLE_ATTN_NORM;
        if (strcmp(rest, k_role_names[r]) == 0 && layer_role == (l >= 0)) {
            *layer = l;
            *role = (ig_role)r;
            return 0;
        }
    }
    return -1;
}

bool ig_canon_rank_invariant(ig_role r)
{
    return r == IG_ROLE_TOK_EMB || r == IG_ROLE_FINAL_NORM || r == IG_ROLE_ATTN_NORM || r == IG_ROLE_FFN_NORM ||
           r == IG_ROLE_BO;
}

size_t ig_canon_bytes(const ig_canon *t)
{
    int64_t n = t->ndim == 1 ? t->shape[0] : t->shape[0] * t->shape[1];
    return (size_t)n * ig_dtype_size(t->dtype);
}

ig_tensor *ig_desc_slot(ig_model_desc *d, int rank, int layer, ig_role role)
{
    ig_weights *w = &d->ranks[rank];
    switch (role) {
    case IG_ROLE_TOK_EMB:
        return &w->tok_emb;
    case IG_ROLE_FINAL_NORM:
        return &w->final_norm;
    case IG_ROLE_OUTPUT:
        return &w->output;
    case IG_ROLE_ATTN_NORM:
        return &w->layers[layer].attn_norm;
    case IG_ROLE_WQKV:
        return &w->layers[layer].wqkv;
    case IG_ROLE_BQKV:
        return &w->layers[layer].bqkv;
    case IG_ROLE_WO:
        return &w->layers[layer].wo;
    case IG_ROLE_FFN_NORM:
        return &w->layers[layer].ffn_norm;
    case IG_ROLE_W13:
        return &w->layers[layer].w13;
    case IG_ROLE_W2:
        return &w->layers[layer].w2;
    case IG_ROLE_BO:
        return &w->layers[layer].bo;
    }
    return NULL;
}

/* ------------------------------------------------------------ source names */

/* The HF tensors behind a canonical role, per architecture. */
enum src_kind {
    S_EMB,
    S_NORM,
    S_LM_HEAD,
    S_ATTN_NORM,
    S_FFN_NORM,
    S_Q,
    S_K,
    S_V,
    S_QB,
    S_KB,
    S_VB,
    S_QKV_PACKED,
    S_QKV_FUSED, /* Qwen's c_attn: rows [q | k | v] */
    S_QKV_FUSED_B,
    S_O,
    S_OB,
    S_GATE,
    S_UP,
    S_DOWN
};

/* Qwen (v1), modeling_qwen.py: QWenMLP computes c_proj(w1(x) * silu(w2(x))), so w2 is
 * the gated branch (our gate) and w1 the linear one (our up). */
static void qwen_src_name(int layer, enum src_kind k, char *buf, size_t n)
{
    const char *s = "";
    switch (k) {
    case S_EMB:
        snprintf(buf, n, "transformer.wte.weight");
        return;
    case S_NORM:
        snprintf(buf, n, "transformer.ln_f.weight");
        return;
    case S_LM_HEAD:
        snprintf(buf, n, "lm_head.weight");
        return;
    case S_ATTN_NORM:
        s = "ln_1.weight";
        break;
    case S_FFN_NORM:
        s = "ln_2.weight";
        break;
    case S_QKV_FUSED:
        s = "attn.c_attn.weight";
        break;
    case S_QKV_FUSED_B:
        s = "attn.c_attn.bias";
        break;
    case S_O:
        s = "attn.c_proj.weight";
        break;
    case S_GATE:
        s = "mlp.w2.weight";
        break;
    case S_UP:
        s = "mlp.w1.weight";
        break;
    case S_DOWN:
        s = "mlp.c_proj.weight";
        break;
    default:
        s = "?";
        break;
    }
    snprintf(buf, n, "transformer.h.%d.%s", layer, s);
}

static void src_name(const ig_config *c, int layer, enum src_kind k, char *buf, size_t n)
{
    if (c->arch == IG_ARCH_QWEN) {
        qwen_src_name(layer, k, buf, n);
        return;
    }
    bool ilm = c->arch == IG_ARCH_INTERNLM2;
    const char *s = "";
    switch (k) {
    case S_EMB:
        snprintf(buf, n, ilm ? "model.tok_embeddings.weight" : "model.embed_tokens.weight");
        return;
    case S_NORM:
        snprintf(buf, n, "model.norm.weight");
        return;
    case S_LM_HEAD:
        snprintf(buf, n, ilm ? "output.weight" : "lm_head.weight");
        return;
    case S_ATTN_NORM:
        s = ilm ? "attention_norm.weight" : "input_layernorm.weight";
        break;
    case S_FFN_NORM:
        s = ilm ? "ffn_norm.weight" : "post_attention_layernorm.weight";
        break;
    case S_Q:
        s = "self_attn.q_proj.weight";
        break;
    case S_K:
        s = "self_attn.k_proj.weight";
        break;
    case S_V:
        s = "self_attn.v_proj.weight";
        break;
    case S_QB:
        s = "self_attn.q_proj.bias";
        break;
    case S_KB:
        s = "self_attn.k_proj.bias";
        break;
    case S_VB:
        s = "self_attn.v_proj.bias";
        break;
    case S_QKV_PACKED:
        s = "attention.wqkv.weight";
        break;
    case S_O:
        s = ilm ? "attention.wo.weight" : "self_attn.o_proj.weight";
        break;
    case S_OB:
        s = "self_attn.o_proj.bias";
        break;
    case S_QKV_FUSED:
    case S_QKV_FUSED_B:
        s = "?";
        break;
    case S_GATE:
        s = ilm ? "feed_forward.w1.weight" : "mlp.gate_proj.weight";
        break;
    case S_UP:
        s = ilm ? "feed_forward.w3.weight" : "mlp.up_proj.weight";
        break;
    case S_DOWN:
        s = ilm ? "feed_forward.w2.weight" : "mlp.down_proj.weight";
        break;
    }
    snprintf(buf, n, "model.layers.%d.%s", layer, s);
}

static int src_dtype_to_ig(ig_st_dtype t)
{
    switch (t) {
    case IG_ST_F32:
        return IG_F32;
    case IG_ST_F16:
        return IG_F16;
    case IG_ST_BF16:
        return IG_BF16;
    default:
        return -1;
    }
}

static void fmt_shape(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

/* Is "X.weight" stored as "X.qweight" (a 4-bit AWQ/GPTQ checkpoint)? */
static bool quantized_twin(const ig_hf_ckpt *ck, const char *name)
{
    char q[176];
    size_t n = strlen(name);
    if (n < 7 || strcmp(name + n - 7, ".weight") != 0) return false;
    snprintf(q, sizeof q, "%.*s.qweight", (int)(n - 7), name);
    return ig_st_find(&ck->st, q) != NULL;
}

/* Finds a source tensor and checks its dtype and shape; d1 < 0 means a vector. */
static ignis_status get_src(const ig_hf_ckpt *ck, int layer, enum src_kind k, int64_t d0, int64_t d1,
                            const ig_st_tensor **out)
{
    char name[160];
    src_name(&ck->cfg, layer, k, name, sizeof name);
    const ig_st_tensor *t = ig_st_find(&ck->st, name);
    if (!t && d1 >= 0 && quantized_twin(ck, name))
        return ig_err(IGNIS_E_UNSUPPORTED,
                      "%s: 4-bit (AWQ/GPTQ) weights are not supported yet: %s is stored as .qweight; use the "
                      "fp16/bf16 model",
                      ck->dir, name);
    if (!t)
        return ig_err(IGNIS_E_NOT_FOUND, "%s: tensor %s not found (checkpoint %s)", ig_st_where(&ck->st), name,
                      ck->dir);
    if (src_dtype_to_ig(t->dtype) < 0)
        return ig_err(IGNIS_E_UNSUPPORTED, "%s: tensor %s: expected dtype F32, F16 or BF16, got %s", t->file, name,
                      ig_st_dtype_name(t->dtype));
    int64_t want[2] = {d0, d1};
    int want_nd = d1 < 0 ? 1 : 2;
    bool ok = t->ndim == want_nd && t->shape[0] == d0 && (want_nd == 1 || t->shape[1] == d1);
    if (!ok) {
        char ws[64], gs[128];
        fmt_shape(ws, sizeof ws, want_nd, want);
        fmt_shape(gs, sizeof gs, t->ndim, t->shape);
        return ig_err(IGNIS_E_FORMAT, "%s: tensor %s: expected shape %s, got %s", t->file, name, ws, gs);
    }
    *out = t;
    return IGNIS_OK;
}

/* --------------------------------------------------------------- checkpoint */

ignis_status ig_hf_ckpt_open(ig_hf_ckpt *ck, const char *dir)
{
    memset(ck, 0, sizeof *ck);
    snprintf(ck->dir, sizeof ck->dir, "%s", dir);
    IG_TRY(ig_hf_config_load(dir, &ck->cfg, &ck->src_dtype));
    IG_TRY(ig_st_open_dir(&ck->st, dir));
    return IGNIS_OK;
}

void ig_hf_ckpt_close(ig_hf_ckpt *ck)
{
    if (!ck) return;
    ig_st_close(&ck->st);
}

/* ---------------------------------------------------------------------- plan */

static ignis_status check_sources(const ig_hf_ckpt *ck)
{
    const ig_config *c = &ck->cfg;
    const ig_st_tensor *t;
    int64_t H = c->hidden, hd = c->head_dim, q = (int64_t)c->n_heads * hd, kv = (int64_t)c->n_kv_heads * hd;
    IG_TRY(get_src(ck, -1, S_EMB, c->vocab_size, H, &t));
    IG_TRY(get_src(ck, -1, S_NORM, H, -1, &t));
    if (!c->tie_embeddings) IG_TRY(get_src(ck, -1, S_LM_HEAD, c->vocab_size, H, &t));
    for (int l = 0; l < c->n_layers; l++) {
        IG_TRY(get_src(ck, l, S_ATTN_NORM, H, -1, &t));
        IG_TRY(get_src(ck, l, S_FFN_NORM, H, -1, &t));
        if (c->arch == IG_ARCH_INTERNLM2) {
            IG_TRY(get_src(ck, l, S_QKV_PACKED, q + 2 * kv, H, &t));
        } else if (c->arch == IG_ARCH_QWEN) {
            IG_TRY(get_src(ck, l, S_QKV_FUSED, q + 2 * kv, H, &t));
            IG_TRY(get_src(ck, l, S_QKV_FUSED_B, q + 2 * kv, -1, &t));
        } else {
            IG_TRY(get_src(ck, l, S_Q, q, H, &t));
            IG_TRY(get_src(ck, l, S_K, kv, H, &t));
            IG_TRY(get_src(ck, l, S_V, kv, H, &t));
            if (c->qkv_bias) {
                IG_TRY(get_src(ck, l, S_QB, q, -1, &t));
                IG_TRY(get_src(ck, l, S_KB, kv, -1, &t));
                IG_TRY(get_src(ck, l, S_VB, kv, -1, &t));
            }
        }
        IG_TRY(get_src(ck, l, S_O, H, q, &t));
        if (ig_config_has_o_bias(c)) IG_TRY(get_src(ck, l, S_OB, H, -1, &t));
        IG_TRY(get_src(ck, l, S_GATE, c->inter, H, &t));
        IG_TRY(get_src(ck, l, S_UP, c->inter, H, &t));
        IG_TRY(get_src(ck, l, S_DOWN, H, c->inter, &t));
    }
    return IGNIS_OK;
}

ignis_status ig_hf_plan(const ig_hf_ckpt *ck, int dtype_or_auto, int tp, ig_canon **list, int *n,
                        ig_dtype *matrix_dtype)
{
    const ig_config *c = &ck->cfg;
    *list = NULL;
    *n = 0;
    IG_TRY(ig_config_validate(c, tp));
    IG_TRY(check_sources(ck));
    ig_dtype md;
    if (dtype_or_auto >= 0) {
        if (dtype_or_auto != IG_F32 && dtype_or_auto != IG_F16 && dtype_or_auto != IG_BF16)
            return ig_err(IGNIS_E_ARG, "weight dtype %s is not supported (fp32, fp16, bf16)",
                          ig_dtype_str((ig_dtype)dtype_or_auto));
        md = (ig_dtype)dtype_or_auto;
    } else if (ck->src_dtype >= 0) {
        md = (ig_dtype)ck->src_dtype;
    } else {
        char name[160];
        src_name(c, -1, S_EMB, name, sizeof name);
        md = (ig_dtype)src_dtype_to_ig(ig_st_find(&ck->st, name)->dtype);
    }
    *matrix_dtype = md;

    int per_rank = 3 + c->n_layers * 8;
    ig_canon *L = calloc((size_t)(per_rank * tp), sizeof *L);
    if (!L) return ig_err(IGNIS_E_NOMEM, "out of memory");
    int k = 0, hd = c->head_dim, vp = ig_vocab_padded(c, tp);
#define ADD(LAYER, ROLE, DT, ND, D0, D1)                                                                               \
    do {                                                                                                               \
        ig_canon *t_ = &L[k++];                                                                                        \
        t_->rank = r;                                                                                                  \
        t_->layer = (LAYER);                                                                                           \
        t_->role = (ROLE);                                                                                             \
        t_->dtype = (DT);                                                                                              \
        t_->ndim = (ND);                                                                                               \
        t_->shape[0] = (D0);                                                                                           \
        t_->shape[1] = (ND) == 2 ? (D1) : 0;                                                                           \
        ig_canon_name(t_->name, sizeof t_->name, (LAYER), (ROLE));                                                     \
    } while (0)
    for (int r = 0; r < tp; r++) {
        ADD(-1, IG_ROLE_TOK_EMB, md, 2, c->vocab_size, c->hidden);
        ADD(-1, IG_ROLE_FINAL_NORM, IG_F32, 1, c->hidden, 0);
        if (!c->tie_embeddings || tp > 1) ADD(-1, IG_ROLE_OUTPUT, md, 2, vp / tp, c->hidden);
        for (int l = 0; l < c->n_layers; l++) {
            ADD(l, IG_ROLE_ATTN_NORM, IG_F32, 1, c->hidden, 0);
            ADD(l, IG_ROLE_WQKV, md, 2, ig_qkv_rows(c, tp), c->hidden);
            if (c->qkv_bias) ADD(l, IG_ROLE_BQKV, IG_F32, 1, ig_qkv_rows(c, tp), 0);
            ADD(l, IG_ROLE_WO, md, 2, c->hidden, c->n_heads / tp * hd);
            if (ig_config_has_o_bias(c)) ADD(l, IG_ROLE_BO, IG_F32, 1, c->hidden, 0);
            ADD(l, IG_ROLE_FFN_NORM, IG_F32, 1, c->hidden, 0);
            ADD(l, IG_ROLE_W13, md, 2, 2LL * c->inter / tp, c->hidden);
            ADD(l, IG_ROLE_W2, md, 2, c->hidden, c->inter / tp);
        }
    }
#undef ADD
    *list = L;
    *n = k;
    return IGNIS_OK;
}

/* ------------------------------------------------------------------ produce */

/* Converts n elements between dtypes; same dtype is a plain copy, so fp32 -> fp32 and
 * bf16 -> bf16 are bit-exact. */
static void convert_elems(void *dst, ig_dtype dt, const void *src, ig_dtype stype, size_t n)
{
    if (dt == stype) {
        memcpy(dst, src, n * ig_dtype_size(dt));
        return;
    }
    if (stype == IG_F32) {
        ig_from_f32(dst, dt, src, n);
        return;
    }
    float tmp[1024];
    size_t ss = ig_dtype_size(stype), ds = ig_dtype_size(dt);
    for (size_t i = 0; i < n; i += 1024) {
        size_t m = n - i < 1024 ? n - i : 1024;
        ig_to_f32(tmp, (const char *)src + i * ss, stype, m);
        ig_from_f32((char *)dst + i * ds, dt, tmp, m);
    }
}

/* Copies the block rows [row0, row0+nrows) x cols [col0, col0+ncols) of src into dst
 * (dense, ncols per row), converting to dt. Vectors are a column of width 1. */
static void copy_block(const ig_st_tensor *src, int64_t row0, int64_t nrows, int64_t col0, int64_t ncols, void *dst,
                       ig_dtype dt)
{
    ig_dtype st = (ig_dtype)src_dtype_to_ig(src->dtype);
    int64_t scols = src->ndim == 1 ? 1 : src->shape[1];
    size_t ss = ig_dtype_size(st), ds = ig_dtype_size(dt);
    const char *s = src->data;
    char *d = dst;
    if (col0 == 0 && ncols == scols) { /* contiguous rows: one call */
        convert_elems(d, dt, s + (size_t)(row0 * scols) * ss, st, (size_t)(nrows * ncols));
        return;
    }
    for (int64_t i = 0; i < nrows; i++)
        convert_elems(d + (size_t)(i * ncols) * ds, dt, s + (size_t)((row0 + i) * scols + col0) * ss, st,
                      (size_t)ncols);
}

static const ig_st_tensor *src(const ig_hf_ckpt *ck, int layer, enum src_kind k)
{
    char name[160];
    src_name(&ck->cfg, layer, k, name, sizeof name);
    return ig_st_find(&ck->st, name);
}

/* Rows of this rank's q, k and v heads, in canonical [q | k | v] order. For InternLM2 the
 * source is the packed wqkv, grouped per KV head g as [q heads of g | k_g | v_g]: query
 * head h lives in group h / (nh/nkv) at slot h % (nh/nkv). */
static void produce_qkv(const ig_hf_ckpt *ck, const ig_canon *t, int tp, bool bias, char *d)
{
    const ig_config *c = &ck->cfg;
    int hd = c->head_dim, nh_r = c->n_heads / tp, nkv_r = c->n_kv_heads / tp, qpk = c->n_heads / c->n_kv_heads;
    int64_t cols = bias ? 1 : c->hidden;
    size_t head_bytes = (size_t)hd * (size_t)cols * ig_dtype_size(t->dtype);
    int r = t->rank;
    if (c->arch == IG_ARCH_INTERNLM2) {
        const ig_st_tensor *w = src(ck, t->layer, S_QKV_PACKED);
        for (int i = 0; i < nh_r; i++) {
            int h = r * nh_r + i, g = h / qpk, j = h % qpk;
            copy_block(w, (int64_t)(g * (qpk + 2) + j) * hd, hd, 0, cols, d, t->dtype);
            d += head_bytes;
        }
        for (int kvv = 0; kvv < 2; kvv++)
            for (int i = 0; i < nkv_r; i++) {
                int g = r * nkv_r + i;
                copy_block(w, (int64_t)(g * (qpk + 2) + qpk + kvv) * hd, hd, 0, cols, d, t->dtype);
                d += head_bytes;
            }
        return;
    }
    /* q, k and v each from its own tensor, or (Qwen's c_attn) from one whose rows are
     * already [q (nh heads) | k | v], at those row offsets */
    const ig_st_tensor *q, *k, *v;
    int64_t k0 = 0, v0 = 0;
    if (c->arch == IG_ARCH_QWEN) {
        q = k = v = src(ck, t->layer, bias ? S_QKV_FUSED_B : S_QKV_FUSED);
        k0 = (int64_t)c->n_heads * hd;
        v0 = k0 + (int64_t)c->n_kv_heads * hd;
    } else {
        q = src(ck, t->layer, bias ? S_QB : S_Q);
        k = src(ck, t->layer, bias ? S_KB : S_K);
        v = src(ck, t->layer, bias ? S_VB : S_V);
    }
    copy_block(q, (int64_t)r * nh_r * hd, (int64_t)nh_r * hd, 0, cols, d, t->dtype);
    d += head_bytes * (size_t)nh_r;
    copy_block(k, k0 + (int64_t)r * nkv_r * hd, (int64_t)nkv_r * hd, 0, cols, d, t->dtype);
    d += head_bytes * (size_t)nkv_r;
    copy_block(v, v0 + (int64_t)r * nkv_r * hd, (int64_t)nkv_r * hd, 0, cols, d, t->dtype);
}

ignis_status ig_hf_produce(const ig_hf_ckpt *ck, int tp, const ig_canon *t, void *dst)
{
    const ig_config *c = &ck->cfg;
    int r = t->rank, l = t->layer;
    char *d = dst;
    int64_t H = c->hidden;
    switch (t->role) {
    case IG_ROLE_TOK_EMB:
        copy_block(src(ck, -1, S_EMB), 0, c->vocab_size, 0, H, d, t->dtype);
        break;
    case IG_ROLE_FINAL_NORM:
        copy_block(src(ck, -1, S_NORM), 0, H, 0, 1, d, IG_F32);
        break;
    case IG_ROLE_ATTN_NORM:
        copy_block(src(ck, l, S_ATTN_NORM), 0, H, 0, 1, d, IG_F32);
        break;
    case IG_ROLE_FFN_NORM:
        copy_block(src(ck, l, S_FFN_NORM), 0, H, 0, 1, d, IG_F32);
        break;
    case IG_ROLE_OUTPUT: {
        const ig_st_tensor *w = src(ck, -1, c->tie_embeddings ? S_EMB : S_LM_HEAD);
        int64_t rows = t->shape[0], row0 = (int64_t)r * rows;
        int64_t real = c->vocab_size - row0;
        if (real > rows) real = rows;
        if (real < 0) real = 0;
        copy_block(w, row0, real, 0, H, d, t->dtype);
        /* padding rows (vocab rounded up to a multiple of tp) are zero: their logits are 0
         * and the sampler never sees them, since it reads only vocab_size columns */
        size_t rb = (size_t)H * ig_dtype_size(t->dtype);
        memset(d + (size_t)real * rb, 0, (size_t)(rows - real) * rb);
        break;
    }
    case IG_ROLE_WQKV:
        produce_qkv(ck, t, tp, false, d);
        break;
    case IG_ROLE_BQKV:
        produce_qkv(ck, t, tp, true, d);
        break;
    case IG_ROLE_WO: {
        int64_t cols = t->shape[1];
        copy_block(src(ck, l, S_O), 0, H, (int64_t)r * cols, cols, d, t->dtype);
        break;
    }
    case IG_ROLE_W13: {
        int64_t ir = c->inter / tp;
        copy_block(src(ck, l, S_GATE), (int64_t)r * ir, ir, 0, H, d, t->dtype);
        copy_block(src(ck, l, S_UP), (int64_t)r * ir, ir, 0, H, d + (size_t)(ir * H) * ig_dtype_size(t->dtype),
                   t->dtype);
        break;
    }
    case IG_ROLE_W2: {
        int64_t ir = c->inter / tp;
        copy_block(src(ck, l, S_DOWN), 0, H, (int64_t)r * ir, ir, d, t->dtype);
        break;
    }
    case IG_ROLE_BO:
        copy_block(src(ck, l, S_OB), 0, H, 0, 1, d, IG_F32);
        break;
    }
    return IGNIS_OK;
}
