/* ignis_convert: Hugging Face checkpoint -> workspace directory (format: model/WORKSPACE.md).
 *
 * Everything is written into DST.tmp-XXXXXX beside DST, fsynced, and only then moved into
 * place, so a crash or an error at any point leaves either the previous DST or nothing:
 * never a half-written workspace. Source tensors are validated before the temp directory
 * is created, and each canonical tensor is produced, checksummed and written one at a
 * time, so peak memory is the largest tensor rather than the model. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <signal.h>

#include "chat/chat_internal.h"
#include "convert/fsutil.h"
#include "convert/hf_weights.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "model/workspace.h"
#include "tokenizer/tok_check.h"

void ignis_convert_opts_init(ignis_convert_opts *o)
{
    memset(o, 0, sizeof *o);
    o->dtype = IGNIS_DTYPE_AUTO;
    o->tp = 1;
}

/* LMDeploy picks the chat template from the model name (the chat module's mapping);
 * names it does not know get the plain "base" template. */
static const char *template_for_name(const char *model_name)
{
    const char *t = ignis_chat_template_for_model(model_name);
    return t ? t : "base";
}

/* The architecture a built-in template's special tokens belong to; -1: any (base, chatml). */
/* Whether a built-in template belongs to the checkpoint's family (true for templates
 * that name no family). Qwen's template serves Qwen v1 and Qwen2 alike. */
static bool template_fits(const char *tmpl, ig_arch arch)
{
    if (!strcmp(tmpl, "internlm2")) return arch == IG_ARCH_INTERNLM2;
    if (!strcmp(tmpl, "internlm")) return arch == IG_ARCH_INTERNLM;
    if (!strcmp(tmpl, "qwen")) return arch == IG_ARCH_QWEN2 || arch == IG_ARCH_QWEN;
    if (!strcmp(tmpl, "llama2") || !strcmp(tmpl, "llama3")) return arch == IG_ARCH_LLAMA;
    return true;
}

/* A template of another family still converts (the user may know better), but chatting
 * with it would feed the model tokens it never saw: say so, and say how to choose. */
static void warn_template_mismatch(const ignis_convert_opts *o, const char *tmpl, const char *tmpl_file,
                                   const ig_config *c)
{
    if (tmpl_file[0]) return; /* a user's own template file: nothing to compare */
    if (!o->chat_template && !ignis_chat_template_for_model(o->model_name)) {
        char names[256];
        ig_chat_builtin_names(names, sizeof names);
        ig_log(IGNIS_LOG_WARN,
               "convert: model name '%s' matches no chat template (known families: %s); the workspace gets 'base' (no "
               "chat formatting); choose one with --chat-template",
               o->model_name, names);
    }
    bool vocab_mismatch =
        (!strcmp(tmpl, "llama3") && c->vocab_size < 128000) || (!strcmp(tmpl, "llama2") && c->vocab_size >= 128000);
    if (!template_fits(tmpl, c->arch) || vocab_mismatch)
        ig_log(IGNIS_LOG_WARN,
               "convert: chat template '%s' (%s) does not match the checkpoint (%s, vocabulary %d); "
               "choose the template with --chat-template or the model name",
               tmpl, o->chat_template ? "from --chat-template" : "chosen from the model name", c->architecture,
               c->vocab_size);
}

static bool valid_template_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(((ig_engine_cfg *)0)->chat_template)) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') return false;
    return true;
}

static const char *const k_tokenizer_files[] = {
    "tokenizer.model", "tokenizer.json",          "tokenizer_config.json",  "vocab.json",
    "merges.txt",      "special_tokens_map.json", "generation_config.json", "added_tokens.json",
};

static bool is_tokenizer_file(const char *name)
{
    for (size_t i = 0; i < sizeof k_tokenizer_files / sizeof k_tokenizer_files[0]; i++)
        if (strcmp(name, k_tokenizer_files[i]) == 0) return true;
    size_t n = strlen(name);
    return n > 9 && strcmp(name + n - 9, ".tiktoken") == 0;
}

/* Copies the tokenizer files of src into dst_dir; their names go into `files`. */
static ignis_status copy_tokenizer(const char *src, const char *dst_dir, json_t *files)
{
    DIR *d = opendir(src);
    if (!d) return ig_err(IGNIS_E_IO, "%s: cannot list: %s", src, strerror(errno));
    /* sorted so ignis.json is the same for the same input */
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    ignis_status st = IGNIS_OK;
    while ((e = readdir(d))) {
        if (!is_tokenizer_file(e->d_name)) continue;
        char **nn = realloc(names, (size_t)(n + 1) * sizeof *nn);
        if (!nn || !(nn[n] = strdup(e->d_name))) {
            names = nn ? nn : names;
            st = ig_err(IGNIS_E_NOMEM, "out of memory");
            break;
        }
        names = nn;
        n++;
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    if (st == IGNIS_OK && n > 0 && mkdir(dst_dir, 0755) != 0)
        st = ig_err(IGNIS_E_IO, "%s: cannot create: %s", dst_dir, strerror(errno));
    for (int i = 0; st == IGNIS_OK && i < n; i++) {
        char a[8192], b[8500];
        snprintf(a, sizeof a, "%s/%s", src, names[i]);
        snprintf(b, sizeof b, "%s/%s", dst_dir, names[i]);
        if ((st = ig_copy_file(a, b)) == IGNIS_OK) json_array_append_new(files, json_string(names[i]));
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (st == IGNIS_OK && n > 0) st = ig_fsync_path(dst_dir);
    return st;
}

/* The shortest decimal that reads back as the same float, so ignis.json says 1e-05 and
 * not 9.9999997473787516e-06 for a config's rms_norm_eps. */
static double short_float(float f)
{
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) return d;
    }
    return (double)f;
}

static json_t *model_json(const ig_config *c)
{
    json_t *rope = json_pack("{s:s, s:f}", "type", ig_rope_type_name(c->rope.type), "theta", c->rope.theta);
    if (c->rope.type != IG_ROPE_DEFAULT) json_object_set_new(rope, "factor", json_real(c->rope.factor));
    if (c->rope.type == IG_ROPE_LLAMA3) {
        json_object_set_new(rope, "low_freq_factor", json_real(c->rope.low_freq_factor));
        json_object_set_new(rope, "high_freq_factor", json_real(c->rope.high_freq_factor));
        json_object_set_new(rope, "original_max_position_embeddings", json_integer(c->rope.original_max_pos));
    }
    json_t *eos = json_array();
    for (int i = 0; i < c->n_eos; i++)
        json_array_append_new(eos, json_integer(c->eos_ids[i]));
    json_t *m =
        json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:o, s:i, s:b, s:b, s:i, s:o}", "architecture",
                  c->architecture, "model_type", c->model_type, "vocab_size", c->vocab_size, "hidden_size", c->hidden,
                  "num_layers", c->n_layers, "num_heads", c->n_heads, "num_kv_heads", c->n_kv_heads, "head_dim",
                  c->head_dim, "intermediate_size", c->inter, "norm_eps", short_float(c->norm_eps), "rope", rope,
                  "max_position_embeddings", c->max_pos, "tie_word_embeddings", c->tie_embeddings, "qkv_bias",
                  c->qkv_bias, "bos_token_id", c->bos_id, "eos_token_id", eos);
    if (m && c->seq_length > 0) { /* Qwen (v1)'s long context; workspace.c reads these back */
        json_object_set_new(m, "seq_length", json_integer(c->seq_length));
        json_object_set_new(m, "use_dynamic_ntk", json_boolean(c->use_dynamic_ntk));
        json_object_set_new(m, "use_logn_attn", json_boolean(c->use_logn_attn));
    }
    return m;
}

static json_t *engine_json(const ig_engine_cfg *e)
{
    return json_pack("{s:i, s:i, s:f, s:i, s:i, s:b, s:s}", "session_len", e->session_len, "max_batch_size",
                     e->max_batch_size, "cache_max_entry_count", e->cache_max_entry_count, "cache_block_seq_len",
                     e->cache_block_seq_len, "max_prefill_token_num", e->max_prefill_token_num, "enable_prefix_caching",
                     e->enable_prefix_caching, "chat_template", e->chat_template);
}

typedef struct progress {
    const ignis_convert_opts *o;
    uint64_t done, total;
} progress;

/* Writes rank r's tensors (plan entries [begin, end)) into path; appends their table. */
static ignis_status write_rank(const ig_hf_ckpt *ck, int tp, const ig_canon *plan, int begin, int end, const char *path,
                               const char *rel, json_t *tensors, progress *pg)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return ig_err(IGNIS_E_IO, "%s: cannot create: %s", path, strerror(errno));
    ignis_status st = IGNIS_OK;
    uint64_t off = 0;
    void *buf = NULL;
    size_t cap = 0;
    for (int i = begin; st == IGNIS_OK && i < end; i++) {
        const ig_canon *t = &plan[i];
        size_t n = ig_canon_bytes(t);
        if (n > cap) {
            free(buf);
            buf = malloc(n);
            cap = n;
            if (!buf) {
                st = ig_err(IGNIS_E_NOMEM, "out of memory for tensor %s (%zu bytes)", t->name, n);
                break;
            }
        }
        if ((st = ig_hf_produce(ck, tp, t, buf)) != IGNIS_OK) break;
        uint32_t crc = ig_crc32c(0, buf, n);
        if ((st = ig_pwrite_all(fd, buf, n, off, rel)) != IGNIS_OK) break;
        json_t *shape = t->ndim == 1 ? json_pack("[I]", (json_int_t)t->shape[0])
                                     : json_pack("[I, I]", (json_int_t)t->shape[0], (json_int_t)t->shape[1]);
        json_array_append_new(tensors, json_pack("{s:s, s:s, s:o, s:I, s:I, s:I}", "name", t->name, "dtype",
                                                 ig_dtype_str(t->dtype), "shape", shape, "offset", (json_int_t)off,
                                                 "bytes", (json_int_t)n, "crc32c", (json_int_t)crc));
        off = (off + n + IG_WORKSPACE_ALIGN - 1) / IG_WORKSPACE_ALIGN * IG_WORKSPACE_ALIGN;
        pg->done += n;
        if (pg->o->progress) pg->o->progress(pg->o->progress_user, "convert", pg->done, pg->total);
    }
    free(buf);
    if (st == IGNIS_OK && fsync(fd) != 0) st = ig_err(IGNIS_E_IO, "%s: fsync failed: %s", rel, strerror(errno));
    if (close(fd) != 0 && st == IGNIS_OK) st = ig_err(IGNIS_E_IO, "%s: close failed: %s", rel, strerror(errno));
    return st;
}

/* Refuses destinations that are not ours to replace. */
static ignis_status check_destination(const char *dst)
{
    if (!ig_path_exists(dst)) {
        char parent[4096];
        ig_dirname(dst, parent, sizeof parent);
        if (!ig_is_dir(parent))
            return ig_err(IGNIS_E_NOT_FOUND, "destination %s: parent directory %s does not exist", dst, parent);
        return IGNIS_OK;
    }
    if (!ig_is_dir(dst)) return ig_err(IGNIS_E_ARG, "destination %s exists and is not a directory", dst);
    if (ig_is_workspace(dst) || ig_dir_is_empty(dst)) return IGNIS_OK;
    return ig_err(IGNIS_E_ARG,
                  "destination %s exists and is not an ignis workspace; refusing to overwrite it (remove it or "
                  "choose another --dst-path)",
                  dst);
}

static ignis_status resolve_template(const ignis_convert_opts *o, char *name, size_t n, char *file, size_t fn)
{
    file[0] = 0;
    if (!o->chat_template) {
        snprintf(name, n, "%s", template_for_name(o->model_name));
        return IGNIS_OK;
    }
    struct stat sb;
    if (stat(o->chat_template, &sb) == 0 && S_ISREG(sb.st_mode)) {
        /* a template file travels with the workspace, named relative to it */
        snprintf(file, fn, "%s", o->chat_template);
        snprintf(name, n, "chat_template.json");
        return IGNIS_OK;
    }
    if (!valid_template_name(o->chat_template))
        return ig_err(IGNIS_E_ARG, "chat template '%s' is neither an existing file nor a template name",
                      o->chat_template);
    snprintf(name, n, "%s", o->chat_template);
    return IGNIS_OK;
}

/* Appends n bytes to a growing string; false when out of memory. */
static bool append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = (*len + n + 1) * 2;
        char *b = realloc(*buf, nc);
        if (!b) return false;
        *buf = b;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
    return true;
}

/* ignis.json text: indented for people, except that each tensor of the (long) tensor
 * tables is one line. Each rank's "tensors" value is a marker string in root, replaced
 * here by its table. 15 significant digits print config values as written (0.8, 1e-05). */
static char *render_config(json_t *root, json_t *const *tables, int tp)
{
    size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15);
    char *text = json_dumps(root, flags);
    if (!text) return NULL;
    char *out = NULL;
    size_t len = 0, cap = 0;
    const char *p = text;
    bool ok = true;
    for (int r = 0; ok && r < tp; r++) {
        char marker[40];
        snprintf(marker, sizeof marker, "\"@tensors-of-rank-%d@\"", r);
        const char *at = strstr(p, marker);
        if (!at) {
            ok = false;
            break;
        }
        ok = append(&out, &len, &cap, p, (size_t)(at - p)) && append(&out, &len, &cap, "[\n", 2);
        size_t i;
        json_t *t;
        json_array_foreach(tables[r], i, t)
        {
            char *line = json_dumps(t, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
            ok = ok && line && append(&out, &len, &cap, "          ", 10) &&
                 append(&out, &len, &cap, line, strlen(line)) &&
                 append(&out, &len, &cap, i + 1 < json_array_size(tables[r]) ? ",\n" : "\n",
                        i + 1 < json_array_size(tables[r]) ? 2 : 1);
            free(line);
        }
        ok = ok && append(&out, &len, &cap, "        ]", 9);
        p = at + strlen(marker);
    }
    ok = ok && append(&out, &len, &cap, p, strlen(p)) && append(&out, &len, &cap, "\n", 1);
    free(text);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

/* Writes everything into tmp (which exists and is empty). */
static ignis_status write_workspace(const ignis_convert_opts *o, const ig_hf_ckpt *ck, const ig_canon *plan, int n,
                                    ig_dtype md, const char *tmp, const char *tmpl, const char *tmpl_file)
{
    const ig_config *c = &ck->cfg;
    int tp = o->tp;
    char path[8192];
    progress pg = {o, 0, 0};
    for (int i = 0; i < n; i++)
        pg.total += ig_canon_bytes(&plan[i]);

    snprintf(path, sizeof path, "%s/weights", tmp);
    if (mkdir(path, 0755) != 0) return ig_err(IGNIS_E_IO, "%s: cannot create: %s", path, strerror(errno));

    ignis_status st = IGNIS_OK;
    json_t *ranks = json_array();
    json_t **tables = calloc((size_t)tp, sizeof *tables);
    if (!tables) return ig_err(IGNIS_E_NOMEM, "out of memory");
    int begin = 0;
    for (int r = 0; st == IGNIS_OK && r < tp; r++) {
        int end = begin;
        while (end < n && plan[end].rank == r)
            end++;
        char rel[64];
        snprintf(rel, sizeof rel, "weights/rank%d.bin", r);
        snprintf(path, sizeof path, "%s/%s", tmp, rel);
        json_t *tensors = json_array();
        st = write_rank(ck, tp, plan, begin, end, path, rel, tensors, &pg);
        char marker[32];
        snprintf(marker, sizeof marker, "@tensors-of-rank-%d@", r);
        json_array_append_new(ranks, json_pack("{s:s, s:s}", "file", rel, "tensors", marker));
        tables[r] = tensors;
        begin = end;
    }
    if (st == IGNIS_OK) {
        snprintf(path, sizeof path, "%s/weights", tmp);
        st = ig_fsync_path(path);
    }

    json_t *tok_files = json_array();
    if (st == IGNIS_OK) {
        snprintf(path, sizeof path, "%s/tokenizer", tmp);
        st = copy_tokenizer(o->hf_dir, path, tok_files);
    }
    if (st == IGNIS_OK && tmpl_file[0]) {
        snprintf(path, sizeof path, "%s/%s", tmp, tmpl);
        st = ig_copy_file(tmpl_file, path);
    }

    json_t *root = NULL;
    if (st == IGNIS_OK) {
        ig_engine_cfg e;
        ig_engine_cfg_default(&e, c);
        snprintf(e.chat_template, sizeof e.chat_template, "%s", tmpl);
        root = json_object();
        json_object_set_new(root, "format", json_string(IG_WORKSPACE_FORMAT));
        json_object_set_new(root, "version", json_integer(IG_WORKSPACE_VERSION));
        json_object_set_new(root, "created_by", json_string("ignis " IGNIS_VERSION));
        /* absolute, so the record still means something when the workspace moves */
        char *abs = realpath(o->hf_dir, NULL);
        json_t *src = json_pack("{s:s?, s:s?}", "model_name", o->model_name, "hf_dir", abs ? abs : o->hf_dir);
        free(abs);
        json_object_set_new(root, "source", src ? src : json_object()); /* NULL: name not UTF-8 */
        json_object_set_new(root, "model", model_json(c));
        json_object_set_new(root, "engine", engine_json(&e));
        json_object_set_new(root, "weights",
                            json_pack("{s:s, s:i, s:i, s:i, s:s, s:O}", "dtype", ig_dtype_str(md), "tp", tp,
                                      "vocab_padded", ig_vocab_padded(c, tp), "alignment", IG_WORKSPACE_ALIGN,
                                      "checksum", "crc32c", "ranks", ranks));
        json_object_set_new(
            root, "tokenizer",
            json_pack("{s:s, s:O}", "dir", json_array_size(tok_files) ? "tokenizer" : "", "files", tok_files));
        char *text = render_config(root, tables, tp);
        if (!text) {
            st = ig_err(IGNIS_E_NOMEM, "out of memory writing %s", IG_WORKSPACE_CONFIG);
        } else {
            size_t len = strlen(text);
            snprintf(path, sizeof path, "%s/%s", tmp, IG_WORKSPACE_CONFIG);
            st = ig_write_file(path, text, len);
            free(text);
        }
    }
    json_decref(root);
    json_decref(ranks);
    for (int r = 0; r < tp; r++)
        json_decref(tables[r]);
    free(tables);
    json_decref(tok_files);
    if (st == IGNIS_OK) st = ig_fsync_path(tmp);
    return st;
}

/* Opens the finished temp workspace the way ignis_model_open() will (structure and
 * shapes; the checksums were computed from the bytes just written), so a writer/loader
 * disagreement fails the convert instead of the first run. */
static ignis_status check_loadable(const char *tmp)
{
    ig_model_desc d;
    ignis_status st = ig_workspace_open(tmp, false, &d);
    if (st != IGNIS_OK) return ig_err_prefix(IGNIS_E_INTERNAL, "the written workspace does not load back: ");
    ig_model_desc_free(&d);
    return IGNIS_OK;
}

/* Removes DST.tmp-PID-XXXXXX directories whose converting process no longer exists (a
 * convert killed before it could clean up). Directories of live processes, such as a
 * concurrent convert to the same destination, are left alone. */
static void remove_stale_temps(const char *dst)
{
    char parent[4096], prefix[512];
    ig_dirname(dst, parent, sizeof parent);
    const char *base = strrchr(dst, '/');
    base = base ? base + 1 : dst;
    snprintf(prefix, sizeof prefix, "%s.tmp-", base);
    DIR *d = opendir(parent);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + strlen(prefix), &end, 10);
        if (end == e->d_name + strlen(prefix) || *end != '-' || strlen(end) != 7 || pid <= 0) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", parent, e->d_name);
        if (ig_rmrf(path) == 0)
            ig_log(IGNIS_LOG_WARN, "removed %s, left by an interrupted convert (process %ld)", path, pid);
    }
    closedir(d);
}

ignis_status ignis_convert(const ignis_convert_opts *o)
{
    if (!o || !o->model_name || !*o->model_name) return ig_err(IGNIS_E_ARG, "convert: model name is required");
    if (!o->hf_dir || !*o->hf_dir) return ig_err(IGNIS_E_ARG, "convert: Hugging Face model directory is required");
    if (o->tp < 1) return ig_err(IGNIS_E_ARG, "tp must be >= 1 (got %d)", o->tp);
    int dtype;
    switch (o->dtype) {
    case IGNIS_DTYPE_AUTO:
        dtype = -1;
        break;
    case IGNIS_DTYPE_F32:
        dtype = IG_F32;
        break;
    case IGNIS_DTYPE_F16:
        dtype = IG_F16;
        break;
    case IGNIS_DTYPE_BF16:
        dtype = IG_BF16;
        break;
    default:
        return ig_err(IGNIS_E_ARG, "unknown weight dtype %d", (int)o->dtype);
    }
    if (!ig_is_dir(o->hf_dir))
        return ig_err(IGNIS_E_NOT_FOUND, "%s: not a directory (expected a Hugging Face model directory)", o->hf_dir);
    const char *dst = o->dst_path && *o->dst_path ? o->dst_path : "./workspace";
    char dstbuf[4000];
    if (strlen(dst) >= sizeof dstbuf) return ig_err(IGNIS_E_ARG, "destination path is too long");
    snprintf(dstbuf, sizeof dstbuf, "%s", dst);
    size_t dl = strlen(dstbuf);
    while (dl > 1 && dstbuf[dl - 1] == '/')
        dstbuf[--dl] = 0; /* "ws/" and "ws" are the same place */
    dst = dstbuf;
    IG_TRY(check_destination(dst));
    char tmpl[64], tmpl_file[4096];
    IG_TRY(resolve_template(o, tmpl, sizeof tmpl, tmpl_file, sizeof tmpl_file));

    ig_hf_ckpt ck;
    ig_canon *plan = NULL;
    int n = 0;
    ig_dtype md;
    ignis_status st = ig_hf_ckpt_open(&ck, o->hf_dir);
    if (st == IGNIS_OK) st = ig_hf_plan(&ck, dtype, o->tp, &plan, &n, &md);
    /* before any byte is written: a workspace must not carry a tokenizer it cannot load */
    int tok_vocab = 0;
    if (st == IGNIS_OK && (st = ig_tokenizer_check_dir(o->hf_dir, &tok_vocab)) != IGNIS_OK)
        st = ig_err_prefix(st, "tokenizer: ");
    if (st == IGNIS_OK && tok_vocab > ck.cfg.vocab_size)
        ig_log(IGNIS_LOG_WARN,
               "convert: %s: the tokenizer has %d tokens but the model's vocabulary is %d: ids past it cannot be run",
               o->hf_dir, tok_vocab, ck.cfg.vocab_size);
    if (st == IGNIS_OK) warn_template_mismatch(o, tmpl, tmpl_file, &ck.cfg);
    if (st == IGNIS_OK) {
        remove_stale_temps(dst);
        char tmp[4096];
        /* the pid in the name lets a later convert recognise the leftovers of one that was
         * killed (Ctrl-C, OOM) and remove them */
        snprintf(tmp, sizeof tmp, "%s.tmp-%ld-XXXXXX", dst, (long)getpid());
        if (!mkdtemp(tmp)) {
            st = ig_err(IGNIS_E_IO, "cannot create a temporary directory beside %s: %s", dst, strerror(errno));
        } else {
            chmod(tmp, 0755); /* mkdtemp makes it 0700; a workspace is as shareable as its source */
            st = write_workspace(o, &ck, plan, n, md, tmp, tmpl, tmpl_file);
            if (st == IGNIS_OK) st = check_loadable(tmp);
            if (st == IGNIS_OK) st = ig_replace_dir(tmp, dst);
            if (st != IGNIS_OK) ig_rmrf(tmp);
        }
    }
    free(plan);
    ig_hf_ckpt_close(&ck);
    return st;
}
