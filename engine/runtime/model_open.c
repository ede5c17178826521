/*
 * ignis_model_open: turns a path into a running model — workspace, Hugging Face
 * directory (converted in memory) or synthetic shape — then picks the backend, loads the
 * weights onto it, sizes the KV pool and opens the tokenizer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "convert/hf_load.h"
#include "core/error.h"
#include "model/synthetic.h"
#include "model/workspace.h"
#include "runtime/model_handle.h"

void ignis_engine_opts_init(ignis_engine_opts *o)
{
    memset(o, 0, sizeof *o);
    o->enable_prefix_caching = -1;
}

const char *ignis_backend_name(ignis_backend_kind b)
{
    switch (b) {
    case IGNIS_BACKEND_AUTO:
        return "auto";
    case IGNIS_BACKEND_CPU:
        return "cpu";
    case IGNIS_BACKEND_CUDA:
        return "cuda";
    }
    return "?";
}

ignis_status ignis_backend_parse(const char *s, ignis_backend_kind *out)
{
    if (!strcasecmp(s, "auto"))
        *out = IGNIS_BACKEND_AUTO;
    else if (!strcasecmp(s, "cpu"))
        *out = IGNIS_BACKEND_CPU;
    else if (!strcasecmp(s, "cuda") || !strcasecmp(s, "gpu"))
        *out = IGNIS_BACKEND_CUDA;
    else
        return ig_err(IGNIS_E_ARG, "unknown backend '%s' (expected auto, cpu or cuda)", s);
    return IGNIS_OK;
}

const char *ignis_dtype_name(ignis_dtype d)
{
    switch (d) {
    case IGNIS_DTYPE_AUTO:
        return "auto";
    case IGNIS_DTYPE_F32:
        return "fp32";
    case IGNIS_DTYPE_F16:
        return "fp16";
    case IGNIS_DTYPE_BF16:
        return "bf16";
    }
    return "?";
}

ignis_status ignis_dtype_parse(const char *s, ignis_dtype *out)
{
    if (!strcasecmp(s, "auto")) {
        *out = IGNIS_DTYPE_AUTO;
        return IGNIS_OK;
    }
    ig_dtype t;
    if (ig_dtype_from_str(s, &t) != 0 || t == IG_I32)
        return ig_err(IGNIS_E_ARG, "unknown dtype '%s' (expected auto, fp16, bf16 or fp32)", s);
    *out = t == IG_F32 ? IGNIS_DTYPE_F32 : t == IG_F16 ? IGNIS_DTYPE_F16 : IGNIS_DTYPE_BF16;
    return IGNIS_OK;
}

/* -1 means "keep the source's dtype" for the producers. */
static int to_ig_dtype(ignis_dtype d)
{
    switch (d) {
    case IGNIS_DTYPE_F32:
        return IG_F32;
    case IGNIS_DTYPE_F16:
        return IG_F16;
    case IGNIS_DTYPE_BF16:
        return IG_BF16;
    default:
        return -1;
    }
}

static bool is_file(const char *dir, const char *name)
{
    char p[2048];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static ignis_status load_desc(const char *path, const ignis_engine_opts *o, ig_model_desc *d)
{
    int tp = o->tp > 0 ? o->tp : 1;
    if (!strncmp(path, "synthetic:", 10)) {
        int dt = to_ig_dtype(o->dtype);
        return ig_synthetic_open(path, dt < 0 ? IG_F16 : (ig_dtype)dt, tp, d);
    }
    struct stat st;
    if (stat(path, &st) != 0) return ig_err(IGNIS_E_NOT_FOUND, "%s: no such file or directory", path);
    if (!S_ISDIR(st.st_mode))
        return ig_err(IGNIS_E_ARG,
                      "%s: not a directory (expected a workspace, an HF model directory or synthetic:SHAPE)", path);
    if (is_file(path, "ignis.json")) {
        IG_TRY(ig_workspace_open(path, o->verify_checksums, d));
        if (tp != d->tp)
            return ig_err(IGNIS_E_ARG, "%s: workspace was converted for --tp %d, not %d (re-run ignis convert --tp %d)",
                          path, d->tp, tp, tp);
        return IGNIS_OK;
    }
    if (is_file(path, "config.json")) return ig_hf_open(path, to_ig_dtype(o->dtype), tp, d);
    return ig_err(IGNIS_E_FORMAT, "%s: neither a workspace (no ignis.json) nor a Hugging Face model (no config.json)",
                  path);
}

static void apply_overrides(ig_engine_cfg *e, const ignis_engine_opts *o)
{
    if (o->session_len > 0) e->session_len = o->session_len;
    if (o->max_batch_size > 0) e->max_batch_size = o->max_batch_size;
    if (o->cache_max_entry_count > 0) e->cache_max_entry_count = o->cache_max_entry_count;
    if (o->cache_block_seq_len > 0) e->cache_block_seq_len = o->cache_block_seq_len;
    if (o->max_prefill_token_num > 0) e->max_prefill_token_num = o->max_prefill_token_num;
    if (o->enable_prefix_caching >= 0) e->enable_prefix_caching = o->enable_prefix_caching != 0;
    if (o->chat_template && *o->chat_template)
        snprintf(e->chat_template, sizeof e->chat_template, "%s", o->chat_template);
}

/* Sizes the KV pool like LMDeploy's cache_max_entry_count: >= 1 is a block count, < 1 a
 * fraction of the backend's free memory after weights. On the CPU the fraction is capped
 * at what max_batch_size full sessions can use: host RAM is shared with everything else. */
static ignis_status init_kv(ignis_model *m)
{
    const ig_engine_cfg *e = &m->desc.engine;
    ig_backend *b = m->backend;
    int bl = e->cache_block_seq_len;
    size_t bb = b->ops->kv_block_bytes(b, bl);
    long long n;
    if (e->cache_max_entry_count >= 1.0) {
        n = (long long)e->cache_max_entry_count;
    } else {
        uint64_t fr, tot;
        IG_TRY(b->ops->mem_info(b, &fr, &tot));
        n = (long long)((double)fr * e->cache_max_entry_count / (double)bb);
        if (!strcmp(b->ops->name, "cpu")) {
            long long per_seq = (e->session_len + bl - 1) / bl;
            long long cap = per_seq * (e->max_batch_size > 0 ? e->max_batch_size : 1);
            if (n > cap) n = cap;
        }
    }
    if (n < 1) return ig_err(IGNIS_E_CAPACITY, "KV cache: no room for a single block of %zu bytes", bb);
    if (n > 1 << 24) n = 1 << 24;
    int made = 0;
    IG_TRY(b->ops->kv_init(b, bl, (int)n, &made));
    IG_TRY(ig_kv_pool_init(&m->kv, made, bl));
    ig_log(IGNIS_LOG_INFO, "KV cache: %d blocks of %d tokens (%.1f MiB each, %.2f GiB in all) on %s", made, bl,
           (double)bb / 1048576.0, (double)bb * made / 1073741824.0, b->ops->name);
    return IGNIS_OK;
}

ignis_status ignis_model_open(const char *path, const ignis_engine_opts *opts, ignis_model **out)
{
    *out = NULL;
    if (!path || !*path) return ig_err(IGNIS_E_ARG, "no model path given");
    ignis_engine_opts defaults;
    if (!opts) {
        ignis_engine_opts_init(&defaults);
        opts = &defaults;
    }
    ignis_model *m = calloc(1, sizeof *m);
    if (!m) return ig_err(IGNIS_E_NOMEM, "out of memory");
    m->opts = *opts;
    ignis_status s = load_desc(path, opts, &m->desc);
    if (s != IGNIS_OK) goto fail;
    apply_overrides(&m->desc.engine, opts);
    snprintf(m->chat_template, sizeof m->chat_template, "%s", m->desc.engine.chat_template);
    m->opts.chat_template = m->chat_template;

    ignis_backend_kind kind = opts->backend;
    if (kind == IGNIS_BACKEND_AUTO) kind = ig_cuda_device_count() > 0 ? IGNIS_BACKEND_CUDA : IGNIS_BACKEND_CPU;
    ig_backend_opts bo = {.threads = opts->threads,
                          .device = opts->device,
                          .dtype = IG_F16,
                          .verify_checksums = opts->verify_checksums,
                          .progress = opts->progress,
                          .progress_user = opts->progress_user,
                          .cuda = opts->cuda};
    int dt = to_ig_dtype(opts->dtype);
    if (dt == IG_F16 || dt == IG_BF16)
        bo.dtype = (ig_dtype)dt;
    else if (m->desc.weight_dtype == IG_BF16)
        bo.dtype = IG_BF16;
    s = kind == IGNIS_BACKEND_CUDA ? ig_backend_cuda_create(&m->desc, &bo, &m->backend)
                                   : ig_backend_cpu_create(&m->desc, &bo, &m->backend);
    if (s != IGNIS_OK) {
        ig_err_prefix(s, "%s backend: ", ignis_backend_name(kind));
        goto fail;
    }
    snprintf(m->backend_name, sizeof m->backend_name, "%s", m->backend->ops->name);
    if ((s = init_kv(m)) != IGNIS_OK) goto fail;

    if (m->desc.tokenizer_dir[0]) {
        s = ignis_tokenizer_open(m->desc.tokenizer_dir, &m->tok);
        if (s == IGNIS_E_NOT_FOUND) {
            m->tok = NULL; /* an HF dir with weights only: ids in, ids out */
            ig_err_clear();
        } else if (s != IGNIS_OK) {
            ig_err_prefix(s, "%s: tokenizer: ", path);
            goto fail;
        }
    }
    *out = m;
    return IGNIS_OK;
fail:
    ignis_model_close(m);
    return s;
}

void ignis_model_close(ignis_model *m)
{
    if (!m) return;
    if (m->tok) ignis_tokenizer_free(m->tok);
    if (m->backend) m->backend->ops->destroy(m->backend);
    ig_kv_pool_destroy(&m->kv);
    ig_model_desc_free(&m->desc);
    free(m);
}

const ignis_tokenizer *ignis_model_tokenizer(const ignis_model *m) { return m ? m->tok : NULL; }

int ignis_model_eos_ids(const ignis_model *m, const int32_t **ids)
{
    *ids = m->desc.cfg.eos_ids;
    return m->desc.cfg.n_eos;
}

ignis_status ignis_model_get_info(const ignis_model *m, ignis_model_info *out)
{
    const ig_config *c = &m->desc.cfg;
    const ig_engine_cfg *e = &m->desc.engine;
    memset(out, 0, sizeof *out);
    static const char *src[] = {"workspace", "hf", "synthetic"};
    out->architecture = c->architecture;
    out->source = src[m->desc.source];
    out->backend = m->backend_name;
    out->weight_dtype = ig_dtype_str(m->backend->weight_dtype);
    out->vocab_size = c->vocab_size;
    out->hidden_size = c->hidden;
    out->num_layers = c->n_layers;
    out->num_heads = c->n_heads;
    out->num_kv_heads = c->n_kv_heads;
    out->head_dim = c->head_dim;
    out->intermediate_size = c->inter;
    out->bos_token_id = c->bos_id;
    out->eos_token_id = c->n_eos > 0 ? c->eos_ids[0] : -1;
    out->session_len = e->session_len;
    out->max_batch_size = e->max_batch_size;
    out->cache_block_seq_len = e->cache_block_seq_len;
    out->tp = m->desc.tp;
    uint64_t per_layer = (uint64_t)ig_qkv_rows(c, 1) * c->hidden + (c->qkv_bias ? (uint64_t)ig_qkv_rows(c, 1) : 0) +
                         (uint64_t)c->n_heads * c->head_dim * c->hidden + 3ull * c->inter * c->hidden +
                         2ull * c->hidden;
    uint64_t emb = (uint64_t)c->vocab_size * c->hidden;
    out->num_params = per_layer * c->n_layers + emb * (c->tie_embeddings ? 1 : 2) + c->hidden;
    size_t es = ig_dtype_size(m->backend->weight_dtype);
    /* a forward pass reads every matrix once, the LM head but not the embedding table */
    out->weight_bytes = (uint64_t)(((uint64_t)ig_qkv_rows(c, 1) * c->hidden +
                                    (uint64_t)c->n_heads * c->head_dim * c->hidden + 3ull * c->inter * c->hidden) *
                                       c->n_layers +
                                   emb) *
                        es;
    return IGNIS_OK;
}
