/* Loading a workspace (format: WORKSPACE.md): parse ignis.json, mmap the rank files,
 * lay the tensors over the maps as llama2.c does. Nothing is copied; the page cache
 * holds the weights and a second process opening the same workspace shares them. */
#include "model/workspace.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/hf_weights.h"
#include "core/crc32c.h"
#include "core/error.h"

static const char *const k_rope_names[] = {"default", "linear", "llama3", "dynamic"};

const char *ig_rope_type_name(ig_rope_type t)
{
    return (unsigned)t < sizeof k_rope_names / sizeof k_rope_names[0] ? k_rope_names[t] : "?";
}

int ig_rope_type_from_name(const char *s, ig_rope_type *t)
{
    for (size_t i = 0; i < sizeof k_rope_names / sizeof k_rope_names[0]; i++)
        if (strcmp(s, k_rope_names[i]) == 0) {
            *t = (ig_rope_type)i;
            return 0;
        }
    return -1;
}

/* indexed by ig_arch */
static const char *const k_arch_names[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "InternLM2ForCausalLM",
                                           "InternLMForCausalLM", "QWenLMHeadModel"};

const char *ig_arch_hf_name(ig_arch a)
{
    return (unsigned)a < sizeof k_arch_names / sizeof k_arch_names[0] ? k_arch_names[a] : "?";
}

/* indexed by ig_arch */
static const char *const k_model_types[] = {"llama", "qwen2", "internlm2", "internlm", "qwen"};

const char *ig_arch_model_type(ig_arch a)
{
    return (unsigned)a < sizeof k_model_types / sizeof k_model_types[0] ? k_model_types[a] : "llama";
}

int ig_arch_from_hf_name(const char *s, ig_arch *a)
{
    for (size_t i = 0; i < sizeof k_arch_names / sizeof k_arch_names[0]; i++)
        if (strcmp(s, k_arch_names[i]) == 0) {
            *a = (ig_arch)i;
            return 0;
        }
    return -1;
}

static json_t *load_config(const char *dir, char *path, size_t n, json_error_t *jerr)
{
    snprintf(path, n, "%s/%s", dir, IG_WORKSPACE_CONFIG);
    return json_load_file(path, 0, jerr);
}

bool ig_is_workspace(const char *dir)
{
    char path[4200];
    json_error_t jerr;
    json_t *root = load_config(dir, path, sizeof path, &jerr);
    if (!root) return false;
    json_t *f = json_object_get(root, "format");
    bool ok = json_is_string(f) && strcmp(json_string_value(f), IG_WORKSPACE_FORMAT) == 0;
    json_decref(root);
    return ok;
}

/* ------------------------------------------------------------ JSON fields */

typedef struct jctx {
    const char *file; /* "DIR/ignis.json" for messages */
} jctx;

static ignis_status jint(const jctx *j, json_t *o, const char *sect, const char *key, bool required, int def, int lo,
                         int *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (required) return ig_err(IGNIS_E_FORMAT, "%s: %s.%s is missing", j->file, sect, key);
        *out = def;
        return IGNIS_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > INT32_MAX)
        return ig_err(IGNIS_E_FORMAT, "%s: %s.%s must be an integer >= %d", j->file, sect, key, lo);
    *out = (int)json_integer_value(v);
    return IGNIS_OK;
}

static ignis_status jnum(const jctx *j, json_t *o, const char *sect, const char *key, bool required, double def,
                         double *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (required) return ig_err(IGNIS_E_FORMAT, "%s: %s.%s is missing", j->file, sect, key);
        *out = def;
        return IGNIS_OK;
    }
    if (!json_is_number(v)) return ig_err(IGNIS_E_FORMAT, "%s: %s.%s must be a number", j->file, sect, key);
    *out = json_number_value(v);
    return IGNIS_OK;
}

static ignis_status jbool(const jctx *j, json_t *o, const char *sect, const char *key, bool def, bool *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        *out = def;
        return IGNIS_OK;
    }
    if (!json_is_boolean(v)) return ig_err(IGNIS_E_FORMAT, "%s: %s.%s must be true or false", j->file, sect, key);
    *out = json_is_true(v);
    return IGNIS_OK;
}

static ignis_status jstr(const jctx *j, json_t *o, const char *sect, const char *key, char *buf, size_t n)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v)) return ig_err(IGNIS_E_FORMAT, "%s: %s.%s must be a string", j->file, sect, key);
    if (strlen(json_string_value(v)) >= n)
        return ig_err(IGNIS_E_FORMAT, "%s: %s.%s is too long (at most %zu characters)", j->file, sect, key, n - 1);
    snprintf(buf, n, "%s", json_string_value(v));
    return IGNIS_OK;
}

static ignis_status parse_model(const jctx *j, json_t *m, ig_config *c)
{
    const char *S = "model";
    memset(c, 0, sizeof *c);
    if (!json_is_object(m)) return ig_err(IGNIS_E_FORMAT, "%s: \"model\" section is missing", j->file);
    IG_TRY(jstr(j, m, S, "architecture", c->architecture, sizeof c->architecture));
    if (ig_arch_from_hf_name(c->architecture, &c->arch))
        return ig_err(IGNIS_E_UNSUPPORTED, "%s: model.architecture %s is not supported", j->file, c->architecture);
    IG_TRY(jstr(j, m, S, "model_type", c->model_type, sizeof c->model_type));
    IG_TRY(jint(j, m, S, "vocab_size", true, 0, 1, &c->vocab_size));
    IG_TRY(jint(j, m, S, "hidden_size", true, 0, 1, &c->hidden));
    IG_TRY(jint(j, m, S, "num_layers", true, 0, 1, &c->n_layers));
    IG_TRY(jint(j, m, S, "num_heads", true, 0, 1, &c->n_heads));
    IG_TRY(jint(j, m, S, "num_kv_heads", true, 0, 1, &c->n_kv_heads));
    IG_TRY(jint(j, m, S, "head_dim", true, 0, 1, &c->head_dim));
    IG_TRY(jint(j, m, S, "intermediate_size", true, 0, 1, &c->inter));
    double eps;
    IG_TRY(jnum(j, m, S, "norm_eps", true, 0, &eps));
    c->norm_eps = (float)eps;
    IG_TRY(jint(j, m, S, "max_position_embeddings", true, 0, 1, &c->max_pos));
    IG_TRY(jbool(j, m, S, "tie_word_embeddings", false, &c->tie_embeddings));
    IG_TRY(jbool(j, m, S, "qkv_bias", false, &c->qkv_bias));
    /* Qwen (v1) long context; absent for other architectures */
    IG_TRY(jint(j, m, S, "seq_length", false, 0, 0, &c->seq_length));
    IG_TRY(jbool(j, m, S, "use_dynamic_ntk", false, &c->use_dynamic_ntk));
    IG_TRY(jbool(j, m, S, "use_logn_attn", false, &c->use_logn_attn));
    IG_TRY(jint(j, m, S, "bos_token_id", false, -1, -1, &c->bos_id));
    json_t *eos = json_object_get(m, "eos_token_id");
    if (json_is_integer(eos)) {
        c->eos_ids[c->n_eos++] = (int)json_integer_value(eos);
    } else if (json_is_array(eos)) {
        size_t i;
        json_t *x;
        json_array_foreach(eos, i, x)
        {
            if (!json_is_integer(x) || c->n_eos == IG_MAX_EOS)
                return ig_err(IGNIS_E_FORMAT, "%s: model.eos_token_id must be up to %d integers", j->file, IG_MAX_EOS);
            c->eos_ids[c->n_eos++] = (int)json_integer_value(x);
        }
    } else if (eos) {
        return ig_err(IGNIS_E_FORMAT, "%s: model.eos_token_id must be an integer or a list", j->file);
    }
    json_t *r = json_object_get(m, "rope");
    if (!json_is_object(r)) return ig_err(IGNIS_E_FORMAT, "%s: model.rope is missing", j->file);
    char tname[32];
    IG_TRY(jstr(j, r, "model.rope", "type", tname, sizeof tname));
    if (ig_rope_type_from_name(tname, &c->rope.type))
        return ig_err(IGNIS_E_UNSUPPORTED,
                      "%s: model.rope.type \"%s\" is not supported (default, linear, llama3, dynamic)", j->file, tname);
    bool scaled = c->rope.type != IG_ROPE_DEFAULT, l3 = c->rope.type == IG_ROPE_LLAMA3;
    IG_TRY(jnum(j, r, "model.rope", "theta", true, 0, &c->rope.theta));
    IG_TRY(jnum(j, r, "model.rope", "factor", scaled, 1.0, &c->rope.factor));
    IG_TRY(jnum(j, r, "model.rope", "low_freq_factor", l3, 0, &c->rope.low_freq_factor));
    IG_TRY(jnum(j, r, "model.rope", "high_freq_factor", l3, 0, &c->rope.high_freq_factor));
    IG_TRY(jint(j, r, "model.rope", "original_max_position_embeddings", l3, 0, 0, &c->rope.original_max_pos));
    return IGNIS_OK;
}

static ignis_status parse_engine(const jctx *j, json_t *e, ig_engine_cfg *out)
{
    const char *S = "engine";
    if (!e) return IGNIS_OK; /* defaults already set */
    if (!json_is_object(e)) return ig_err(IGNIS_E_FORMAT, "%s: \"engine\" must be an object", j->file);
    IG_TRY(jint(j, e, S, "session_len", false, out->session_len, 1, &out->session_len));
    IG_TRY(jint(j, e, S, "max_batch_size", false, out->max_batch_size, 1, &out->max_batch_size));
    IG_TRY(jnum(j, e, S, "cache_max_entry_count", false, out->cache_max_entry_count, &out->cache_max_entry_count));
    if (!(out->cache_max_entry_count > 0))
        return ig_err(IGNIS_E_FORMAT, "%s: engine.cache_max_entry_count must be positive", j->file);
    IG_TRY(jint(j, e, S, "cache_block_seq_len", false, out->cache_block_seq_len, 1, &out->cache_block_seq_len));
    IG_TRY(jint(j, e, S, "max_prefill_token_num", false, out->max_prefill_token_num, 1, &out->max_prefill_token_num));
    IG_TRY(jbool(j, e, S, "enable_prefix_caching", out->enable_prefix_caching, &out->enable_prefix_caching));
    if (json_object_get(e, "chat_template"))
        IG_TRY(jstr(j, e, S, "chat_template", out->chat_template, sizeof out->chat_template));
    return IGNIS_OK;
}

/* Norms and biases are always fp32; matrices have the workspace's dtype. */
static bool ig_tensor_rank_ok(ig_role role, ig_dtype dt, ig_dtype matrix_dtype)
{
    bool vec = role == IG_ROLE_FINAL_NORM || role == IG_ROLE_ATTN_NORM || role == IG_ROLE_FFN_NORM ||
               role == IG_ROLE_BQKV || role == IG_ROLE_BO;
    return dt == (vec ? IG_F32 : matrix_dtype);
}

/* Maps one rank file and lays its tensor table over it. */
static ignis_status load_rank(const jctx *j, const char *dir, int r, json_t *rank, ig_dtype wdt, bool verify,
                              ig_model_desc *d)
{
    if (!json_is_object(rank)) return ig_err(IGNIS_E_FORMAT, "%s: weights.ranks[%d] must be an object", j->file, r);
    char rel[256];
    IG_TRY(jstr(j, rank, "weights.ranks[]", "file", rel, sizeof rel));
    if (rel[0] == '/' || strstr(rel, ".."))
        return ig_err(IGNIS_E_FORMAT, "%s: weights.ranks[%d].file \"%s\" must be inside the workspace", j->file, r,
                      rel);
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ig_err(errno == ENOENT ? IGNIS_E_NOT_FOUND : IGNIS_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return ig_err(IGNIS_E_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    uint64_t size = (uint64_t)sb.st_size;
    const unsigned char *base = NULL;
    if (size > 0) {
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return ig_err(IGNIS_E_IO, "%s: mmap failed: %s", path, strerror(e));
        }
        ignis_status st = ig_model_desc_add_map(d, m, (size_t)size);
        if (st != IGNIS_OK) {
            munmap(m, (size_t)size);
            close(fd);
            return st;
        }
        base = m;
    }
    close(fd);

    json_t *tensors = json_object_get(rank, "tensors");
    if (!json_is_array(tensors))
        return ig_err(IGNIS_E_FORMAT, "%s: weights.ranks[%d].tensors must be a list", j->file, r);
    size_t i;
    json_t *t;
    json_array_foreach(tensors, i, t)
    {
        char name[64], dts[16];
        if (!json_is_object(t))
            return ig_err(IGNIS_E_FORMAT, "%s: %s: tensor entry %zu is not an object", j->file, rel, i);
        IG_TRY(jstr(j, t, rel, "name", name, sizeof name));
        IG_TRY(jstr(j, t, name, "dtype", dts, sizeof dts));
        int layer;
        ig_role role;
        if (ig_canon_parse_name(name, &layer, &role) || layer >= d->cfg.n_layers)
            return ig_err(IGNIS_E_FORMAT, "%s: %s: unknown tensor name %s", j->file, rel, name);
        ig_dtype dt;
        if (ig_dtype_from_str(dts, &dt) || dt == IG_I32)
            return ig_err(IGNIS_E_FORMAT, "%s: %s: tensor %s: unknown dtype %s", j->file, rel, name, dts);
        json_t *sh = json_object_get(t, "shape");
        if (!json_is_array(sh) || json_array_size(sh) < 1 || json_array_size(sh) > 2)
            return ig_err(IGNIS_E_FORMAT, "%s: %s: tensor %s: shape must have 1 or 2 dimensions", j->file, rel, name);
        ig_tensor tt;
        memset(&tt, 0, sizeof tt);
        tt.dtype = dt;
        tt.ndim = (int)json_array_size(sh);
        for (int k = 0; k < tt.ndim; k++) {
            json_t *x = json_array_get(sh, (size_t)k);
            if (!json_is_integer(x) || json_integer_value(x) <= 0 || json_integer_value(x) > (1LL << 40))
                return ig_err(IGNIS_E_FORMAT, "%s: %s: tensor %s: bad shape", j->file, rel, name);
            tt.shape[k] = json_integer_value(x);
        }
        json_t *jo = json_object_get(t, "offset"), *jb = json_object_get(t, "bytes");
        if (!json_is_integer(jo) || !json_is_integer(jb) || json_integer_value(jo) < 0)
            return ig_err(IGNIS_E_FORMAT, "%s: %s: tensor %s: offset and bytes must be integers", j->file, rel, name);
        uint64_t off = (uint64_t)json_integer_value(jo), bytes = (uint64_t)json_integer_value(jb);
        if (bytes != ig_tensor_bytes(&tt))
            return ig_err(IGNIS_E_FORMAT, "%s: %s: tensor %s: %llu bytes recorded but its %s shape needs %zu", j->file,
                          rel, name, (unsigned long long)bytes, dts, ig_tensor_bytes(&tt));
        /* checked with or without --verify: the backends read weights in place (floats,
         * 16-byte vectors), which a misaligned map would make undefined or fault */
        if (off % IG_WORKSPACE_ALIGN != 0)
            return ig_err(IGNIS_E_FORMAT,
                          "%s: tensor %s: offset %llu is not a multiple of the workspace alignment %d (corrupt "
                          "index; re-run ignis convert)",
                          path, name, (unsigned long long)off, IG_WORKSPACE_ALIGN);
        if (off > size || bytes > size - off)
            return ig_err(IGNIS_E_FORMAT,
                          "%s: tensor %s: bytes %llu..%llu lie past the end of the file (%llu bytes; truncated?)", path,
                          name, (unsigned long long)off, (unsigned long long)(off + bytes), (unsigned long long)size);
        if (!ig_tensor_rank_ok(role, dt, wdt))
            return ig_err(
                IGNIS_E_FORMAT,
                "%s: %s: tensor %s: dtype %s does not match the workspace (%s matrices, fp32 norms and biases)",
                j->file, rel, name, dts, ig_dtype_str(wdt));
        tt.data = base + off;
        if (verify) {
            json_t *jc = json_object_get(t, "crc32c");
            if (!json_is_integer(jc))
                return ig_err(IGNIS_E_FORMAT, "%s: %s: tensor %s has no crc32c to verify", j->file, rel, name);
            uint32_t want = (uint32_t)json_integer_value(jc), got = ig_crc32c(0, tt.data, bytes);
            if (want != got)
                return ig_err(IGNIS_E_FORMAT,
                              "%s: tensor %s: checksum mismatch (crc32c expected %08x, got %08x): the file is corrupt",
                              path, name, want, got);
        }
        ig_tensor *slot = ig_desc_slot(d, r, layer, role);
        if (ig_tensor_present(slot))
            return ig_err(IGNIS_E_FORMAT, "%s: %s: tensor %s appears twice", j->file, rel, name);
        *slot = tt;
    }
    return IGNIS_OK;
}

static ignis_status open_ws(const char *dir, bool verify, ig_model_desc *d, json_t *root, const jctx *j)
{
    json_t *fmt = json_object_get(root, "format"), *ver = json_object_get(root, "version");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), IG_WORKSPACE_FORMAT) != 0)
        return ig_err(IGNIS_E_FORMAT, "%s: \"format\" is %s%s%s, not \"%s\": not an ignis workspace", j->file,
                      json_is_string(fmt) ? "\"" : "", json_is_string(fmt) ? json_string_value(fmt) : "missing",
                      json_is_string(fmt) ? "\"" : "", IG_WORKSPACE_FORMAT);
    if (!json_is_integer(ver)) return ig_err(IGNIS_E_FORMAT, "%s: \"version\" must be an integer", j->file);
    if (json_integer_value(ver) != IG_WORKSPACE_VERSION)
        return ig_err(IGNIS_E_UNSUPPORTED,
                      "%s: workspace format version %lld is not supported by ignis %s (it reads version %d); "
                      "re-run ignis convert",
                      j->file, (long long)json_integer_value(ver), IGNIS_VERSION, IG_WORKSPACE_VERSION);
    ig_config cfg;
    IG_TRY(parse_model(j, json_object_get(root, "model"), &cfg));

    json_t *w = json_object_get(root, "weights");
    if (!json_is_object(w)) return ig_err(IGNIS_E_FORMAT, "%s: \"weights\" section is missing", j->file);
    int tp = 0;
    char dts[16];
    IG_TRY(jint(j, w, "weights", "tp", true, 0, 1, &tp));
    IG_TRY(jstr(j, w, "weights", "dtype", dts, sizeof dts));
    ig_dtype wdt;
    if (ig_dtype_from_str(dts, &wdt) || wdt == IG_I32)
        return ig_err(IGNIS_E_FORMAT, "%s: weights.dtype \"%s\" is not fp32, fp16 or bf16", j->file, dts);
    json_t *ranks = json_object_get(w, "ranks");
    if (!json_is_array(ranks) || json_array_size(ranks) != (size_t)tp)
        return ig_err(IGNIS_E_FORMAT, "%s: weights.ranks must list %d rank files", j->file, tp);
    IG_TRY(ig_config_validate(&cfg, tp));
    IG_TRY(ig_model_desc_init(d, &cfg, tp));
    d->source = IG_SRC_WORKSPACE;
    d->weight_dtype = wdt;
    if (strlen(dir) >= sizeof d->path) return ig_err(IGNIS_E_ARG, "%s: path too long", dir);
    memcpy(d->path, dir, strlen(dir) + 1);
    IG_TRY(parse_engine(j, json_object_get(root, "engine"), &d->engine));
    char tok[4200];
    snprintf(tok, sizeof tok, "%s/tokenizer", dir);
    struct stat sb;
    if (stat(tok, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if (strlen(tok) >= sizeof d->tokenizer_dir) return ig_err(IGNIS_E_ARG, "%s: path too long", tok);
        memcpy(d->tokenizer_dir, tok, strlen(tok) + 1);
    }
    for (int r = 0; r < tp; r++)
        IG_TRY(load_rank(j, dir, r, json_array_get(ranks, (size_t)r), wdt, verify, d));
    ignis_status st = ig_model_desc_validate(d);
    if (st != IGNIS_OK) return ig_err_prefix(st, "%s: ", j->file);
    return IGNIS_OK;
}

ignis_status ig_workspace_open(const char *dir, bool verify_checksums, ig_model_desc *d)
{
    memset(d, 0, sizeof *d);
    char path[4200];
    json_error_t jerr;
    json_t *root = load_config(dir, path, sizeof path, &jerr);
    if (!root) {
        struct stat sb;
        if (stat(path, &sb) != 0)
            return ig_err(IGNIS_E_NOT_FOUND, "%s: no %s: not an ignis workspace", dir, IG_WORKSPACE_CONFIG);
        return ig_err(IGNIS_E_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", path, jerr.text, jerr.line,
                      jerr.column);
    }
    jctx j = {path};
    ignis_status st = json_is_object(root) ? open_ws(dir, verify_checksums, d, root, &j)
                                           : ig_err(IGNIS_E_FORMAT, "%s: not a JSON object", path);
    json_decref(root);
    if (st != IGNIS_OK) ig_model_desc_free(d);
    return st;
}
