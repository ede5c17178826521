/* Chat templates: open (built-in, LMDeploy JSON config, Jinja file, or the model's
 * Hugging Face chat_template), render a conversation, stop words. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "chat_internal.h"
#include "core/error.h"
#include "jinja.h"

struct ignis_chat_template {
    char *name;
    ig_chat_fields f; /* field templates (built-in or JSON config) */
    json_t *doc;      /* keeps a JSON config's strings alive */
    ig_jinja *jinja;  /* Jinja templates */
    json_t *specials; /* bos_token, eos_token, ... for Jinja templates */
    char *stops[IG_CHAT_MAX_STOP * 2];
    int nstops;
    bool wants_bos;
};

static const char *S(const char *s) { return s ? s : ""; }

static bool file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static ignis_status read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return ig_err(errno == ENOENT ? IGNIS_E_NOT_FOUND : IGNIS_E_IO, "%s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return ig_err(IGNIS_E_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > ((size_t)64 << 20)) {
                free(buf);
                fclose(f);
                return ig_err(IGNIS_E_FORMAT, "%s: larger than 64 MB, not a chat template", path);
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return ig_err(IGNIS_E_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return ig_err(IGNIS_E_IO, "%s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return IGNIS_OK;
}

static void add_stop(ignis_chat_template *t, const char *w)
{
    if (!w || !*w || t->nstops == (int)(sizeof t->stops / sizeof t->stops[0])) return;
    for (int i = 0; i < t->nstops; i++)
        if (!strcmp(t->stops[i], w)) return;
    char *c = strdup(w);
    if (c) t->stops[t->nstops++] = c;
}

void ignis_chat_template_free(ignis_chat_template *t)
{
    if (!t) return;
    free(t->name);
    json_decref(t->doc);
    json_decref(t->specials);
    ig_jinja_free(t->jinja);
    for (int i = 0; i < t->nstops; i++)
        free(t->stops[i]);
    free(t);
}

static ignis_chat_template *tmpl_new(const char *name)
{
    ignis_chat_template *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->name = strdup(name);
    if (!t->name) {
        free(t);
        return NULL;
    }
    return t;
}

/* ------------------------------------------------------------------ special tokens */

/* A token in tokenizer_config.json is a string or an AddedToken object {"content": ...}. */
static const char *token_text(const json_t *v)
{
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) {
        const json_t *c = json_object_get(v, "content");
        if (json_is_string(c)) return json_string_value(c);
    }
    return NULL;
}

static const char *const k_special_keys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                             "pad_token", "cls_token", "mask_token"};

static json_t *load_json_quiet(const char *path)
{
    if (!file_exists(path)) return NULL;
    json_error_t je;
    return json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
}

/* Directories where a model keeps its tokenizer files: the directory itself, then a
 * workspace's tokenizer/ folder. */
static void cand_path(char *buf, size_t cap, const char *dir, int which, const char *file)
{
    snprintf(buf, cap, which == 0 ? "%s/%s" : "%s/tokenizer/%s", dir, file);
}

static json_t *load_specials(const char *dir)
{
    json_t *sp = json_object();
    if (!sp || !dir) return sp;
    const char *files[] = {"tokenizer_config.json", "special_tokens_map.json"};
    for (int w = 0; w < 2; w++)
        for (int fi = 0; fi < 2; fi++) {
            char path[4096];
            cand_path(path, sizeof path, dir, w, files[fi]);
            json_t *j = load_json_quiet(path);
            if (!j) continue;
            for (size_t k = 0; k < sizeof k_special_keys / sizeof k_special_keys[0]; k++) {
                const char *v = token_text(json_object_get(j, k_special_keys[k]));
                if (v && !json_object_get(sp, k_special_keys[k]))
                    json_object_set_new(sp, k_special_keys[k], json_string(v));
            }
            json_decref(j);
        }
    return sp;
}

/* ------------------------------------------------------------------ Jinja templates */

static ignis_status open_jinja(const char *name, const char *src, size_t len, const char *dir,
                               ignis_chat_template **out)
{
    ignis_chat_template *t = tmpl_new(name);
    if (!t) return ig_err(IGNIS_E_NOMEM, "out of memory opening chat template %s", name);
    char label[512];
    snprintf(label, sizeof label, "chat template %s", name);
    ignis_status s = ig_jinja_compile(src, len, label, &t->jinja);
    if (s != IGNIS_OK) {
        ignis_chat_template_free(t);
        return s;
    }
    t->specials = load_specials(dir);
    if (!t->specials) {
        ignis_chat_template_free(t);
        return ig_err(IGNIS_E_NOMEM, "out of memory opening chat template %s", name);
    }
    add_stop(t, json_string_value(json_object_get(t->specials, "eos_token")));
    /* end-of-turn markers the template writes: the model emits them to end its answer */
    static const char *const markers[] = {"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<|end|>"};
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        if (memmem(src, len, markers[i], strlen(markers[i]))) add_stop(t, markers[i]);
    t->wants_bos = false;
    *out = t;
    return IGNIS_OK;
}

/* The chat_template value of a tokenizer_config.json / chat_template.json: a string, or
 * a list of {"name", "template"} of which "default" is the one apply_chat_template uses. */
static const char *hf_template_string(const json_t *v)
{
    if (json_is_string(v)) return json_string_value(v);
    if (!json_is_array(v)) return NULL;
    const char *first = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        const char *tpl = json_string_value(json_object_get(e, "template"));
        if (!tpl) continue;
        if (!first) first = tpl;
        if (n && !strcmp(n, "default")) return tpl;
    }
    return first;
}

static ignis_status open_hf(const char *dir, ignis_chat_template **out)
{
    if (!dir)
        return ig_err(IGNIS_E_ARG, "chat template 'hf' needs the model directory that holds tokenizer_config.json");
    char path[4096];
    /* transformers' precedence: chat_template.jinja, chat_template.json, tokenizer_config.json */
    for (int w = 0; w < 2; w++) {
        cand_path(path, sizeof path, dir, w, "chat_template.jinja");
        if (file_exists(path)) {
            char *src;
            size_t len;
            IG_TRY(read_file(path, &src, &len));
            ignis_status s = open_jinja("hf", src, len, dir, out);
            free(src);
            return s;
        }
    }
    const char *files[] = {"chat_template.json", "tokenizer_config.json"};
    for (int fi = 0; fi < 2; fi++)
        for (int w = 0; w < 2; w++) {
            cand_path(path, sizeof path, dir, w, files[fi]);
            if (!file_exists(path)) continue;
            json_error_t je;
            json_t *j = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
            if (!j) return ig_err(IGNIS_E_FORMAT, "%s:%d: %s", path, je.line, je.text);
            const char *src = hf_template_string(json_object_get(j, "chat_template"));
            if (src) {
                ignis_status s = open_jinja("hf", src, strlen(src), dir, out);
                json_decref(j);
                return s;
            }
            json_decref(j);
        }
    return ig_err(IGNIS_E_NOT_FOUND,
                  "%s: no chat_template found (looked for chat_template.jinja, chat_template.json and a "
                  "chat_template entry in tokenizer_config.json); pick a built-in with --chat-template",
                  dir);
}

/* ------------------------------------------------------------------ field templates */

static ignis_status open_fields(const ig_chat_fields *f, const char *name, ignis_chat_template **out)
{
    ignis_chat_template *t = tmpl_new(name);
    if (!t) return ig_err(IGNIS_E_NOMEM, "out of memory opening chat template %s", name);
    t->f = *f;
    for (int i = 0; i < IG_CHAT_MAX_STOP && f->stop_words[i]; i++)
        add_stop(t, f->stop_words[i]);
    /* the template text opens with BOS itself where it has a prefix (llama3) */
    t->wants_bos = !(f->prefix && *f->prefix);
    *out = t;
    return IGNIS_OK;
}

/* Formats the error before releasing the document its strings live in. */
static ignis_status cfg_fail(json_t *doc, ignis_status s)
{
    json_decref(doc);
    return s;
}

/* An LMDeploy ChatTemplateConfig JSON: model_name picks the built-in to start from, the
 * other fields override it. A {"chat_template": "..."} file is a Jinja template. */
static ignis_status open_json_config(const char *path, const char *dir, ignis_chat_template **out)
{
    json_error_t je;
    json_t *j = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
    if (!j) return ig_err(IGNIS_E_FORMAT, "chat template %s:%d: %s", path, je.line, je.text);
    if (!json_is_object(j)) {
        return cfg_fail(j, ig_err(IGNIS_E_FORMAT, "chat template %s: expected a JSON object", path));
    }
    const char *jsrc = hf_template_string(json_object_get(j, "chat_template"));
    if (jsrc) {
        ignis_status s = open_jinja(path, jsrc, strlen(jsrc), dir, out);
        json_decref(j);
        return s;
    }
    const json_t *mn = json_object_get(j, "model_name");
    const ig_chat_fields *base = NULL;
    if (mn && !json_is_string(mn)) {
        return cfg_fail(j, ig_err(IGNIS_E_FORMAT, "chat template %s: \"model_name\" must be a string", path));
    }
    if (mn) {
        const char *bn = ignis_chat_template_for_model(json_string_value(mn));
        base = ig_chat_builtin(bn ? bn : json_string_value(mn));
    }
    ig_chat_fields f = base ? *base : *ig_chat_builtin("base");
    f.name = path;
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
        {"system", offsetof(ig_chat_fields, system)},
        {"meta_instruction", offsetof(ig_chat_fields, meta_instruction)},
        {"eosys", offsetof(ig_chat_fields, eosys)},
        {"user", offsetof(ig_chat_fields, user)},
        {"eoh", offsetof(ig_chat_fields, eoh)},
        {"assistant", offsetof(ig_chat_fields, assistant)},
        {"eoa", offsetof(ig_chat_fields, eoa)},
        {"separator", offsetof(ig_chat_fields, separator)},
        {"stop_word_suffix", offsetof(ig_chat_fields, separator)}, /* older LMDeploy name */
        {"tool", offsetof(ig_chat_fields, tool)},
        {"eotool", offsetof(ig_chat_fields, eotool)},
    };
    const char *k;
    json_t *v;
    bool completion = false;
    json_object_foreach(j, k, v)
    {
        if (!strcmp(k, "model_name")) continue;
        bool known = false;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (!strcmp(k, keys[i].key)) {
                if (!json_is_string(v) && !json_is_null(v)) {
                    return cfg_fail(j, ig_err(IGNIS_E_FORMAT, "chat template %s: \"%s\" must be a string", path, k));
                }
                /* null keeps the base template's value, as LMDeploy drops None fields */
                if (json_is_string(v)) *(const char **)((char *)&f + keys[i].off) = json_string_value(v);
                known = true;
            }
        if (known) continue;
        if (!strcmp(k, "stop_words")) {
            if (json_is_null(v)) continue;
            if (!json_is_array(v) || json_array_size(v) > IG_CHAT_MAX_STOP) {
                return cfg_fail(j, ig_err(IGNIS_E_FORMAT,
                                          "chat template %s: \"stop_words\" must be a list of at most %d strings", path,
                                          IG_CHAT_MAX_STOP));
            }
            memset(f.stop_words, 0, sizeof f.stop_words);
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
            {
                if (!json_is_string(e)) {
                    return cfg_fail(
                        j, ig_err(IGNIS_E_FORMAT, "chat template %s: stop_words[%zu] is not a string", path, i));
                }
                f.stop_words[i] = json_string_value(e);
            }
            continue;
        }
        if (!strcmp(k, "capability")) {
            const char *c = json_string_value(v);
            if (c && !strcmp(c, "completion"))
                completion = true;
            else if (!c || strcmp(c, "chat")) {
                return cfg_fail(j, ig_err(IGNIS_E_UNSUPPORTED,
                                          "chat template %s: capability must be \"chat\" or \"completion\"", path));
            }
            continue;
        }
        return cfg_fail(
            j, ig_err(IGNIS_E_FORMAT,
                      "chat template %s: unknown field \"%s\" (known: model_name, system, meta_instruction, eosys, "
                      "user, eoh, assistant, eoa, separator, tool, eotool, stop_words, capability, chat_template)",
                      path, k));
    }
    if (completion) {
        ig_chat_fields plain = {.name = path};
        memcpy(plain.stop_words, f.stop_words, sizeof plain.stop_words);
        f = plain;
    }
    ignis_status s = open_fields(&f, path, out);
    if (s != IGNIS_OK) {
        json_decref(j);
        return s;
    }
    (*out)->doc = j;
    return IGNIS_OK;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static ignis_status open_file(const char *path, const char *dir, ignis_chat_template **out)
{
    if (ends_with(path, ".jinja") || ends_with(path, ".j2")) {
        char *src;
        size_t len;
        IG_TRY(read_file(path, &src, &len));
        ignis_status s = open_jinja(path, src, len, dir, out);
        free(src);
        return s;
    }
    /* sniff: a JSON object is a config, anything else a Jinja template */
    char *src;
    size_t len;
    IG_TRY(read_file(path, &src, &len));
    size_t i = 0;
    while (i < len && (src[i] == ' ' || src[i] == '\n' || src[i] == '\r' || src[i] == '\t'))
        i++;
    ignis_status s =
        i < len && src[i] == '{' && !(i + 1 < len && (src[i + 1] == '{' || src[i + 1] == '%' || src[i + 1] == '#'))
            ? open_json_config(path, dir, out)
            : open_jinja(path, src, len, dir, out);
    free(src);
    return s;
}

ignis_status ignis_chat_template_open(const char *name_or_file, const char *model_dir_or_null,
                                      ignis_chat_template **out)
{
    if (!out) return ig_err(IGNIS_E_ARG, "ignis_chat_template_open: out is NULL");
    *out = NULL;
    if (!name_or_file || !*name_or_file) return ig_err(IGNIS_E_ARG, "chat template: empty name");
    const char *dir = model_dir_or_null && *model_dir_or_null ? model_dir_or_null : NULL;
    if (!strcmp(name_or_file, "hf")) return open_hf(dir, out);
    if (file_exists(name_or_file)) return open_file(name_or_file, dir, out);
    /* a workspace names its template file relative to itself */
    if (dir && !strchr(name_or_file, '/')) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, name_or_file);
        if (file_exists(path)) return open_file(path, dir, out);
    }
    const ig_chat_fields *f = ig_chat_builtin(name_or_file);
    if (!f) {
        const char *mapped = ignis_chat_template_for_model(name_or_file);
        if (mapped) f = ig_chat_builtin(mapped);
    }
    if (!f) {
        char names[256];
        ig_chat_builtin_names(names, sizeof names);
        if (strchr(name_or_file, '/') || ends_with(name_or_file, ".json") || ends_with(name_or_file, ".jinja"))
            return ig_err(IGNIS_E_NOT_FOUND, "chat template file %s does not exist", name_or_file);
        return ig_err(IGNIS_E_NOT_FOUND,
                      "unknown chat template '%s' (built-ins: %s; or \"hf\" for the model's own Jinja template, or a "
                      ".json/.jinja file)",
                      name_or_file, names);
    }
    return open_fields(f, f->name, out);
}

const char *ignis_chat_template_name(const ignis_chat_template *t) { return t ? t->name : ""; }

int ignis_chat_stop_words(const ignis_chat_template *t, const char *const **words)
{
    if (words) *words = t ? (const char *const *)t->stops : NULL;
    return t ? t->nstops : 0;
}

bool ignis_chat_template_wants_bos(const ignis_chat_template *t) { return t && t->wants_bos; }

/* ------------------------------------------------------------------ rendering */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s)
{
    if (!s || b->oom) return;
    size_t k = strlen(s);
    if (b->n + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + k + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, k);
    b->n += k;
    b->p[b->n] = 0;
}

/* The text of a message's content: a string, null, or OpenAI content parts. */
static ignis_status content_text(const json_t *c, int idx, sbuf *b)
{
    if (!c || json_is_null(c)) return IGNIS_OK;
    if (json_is_string(c)) {
        sb_add(b, json_string_value(c));
        return IGNIS_OK;
    }
    if (json_is_array(c)) {
        size_t i;
        json_t *part;
        json_array_foreach(c, i, part)
        {
            const char *type = json_string_value(json_object_get(part, "type"));
            const char *text = json_string_value(json_object_get(part, "text"));
            if (type && strcmp(type, "text"))
                return ig_err(IGNIS_E_UNSUPPORTED, "message %d: content part of type '%s' (only text is supported)",
                              idx, type);
            if (!text) return ig_err(IGNIS_E_ARG, "message %d: content part %zu has no text", idx, i);
            sb_add(b, text);
        }
        return IGNIS_OK;
    }
    return ig_err(IGNIS_E_ARG, "message %d: content must be a string or a list of text parts", idx);
}

/* LMDeploy's BaseChatTemplate.messages2prompt. */
static ignis_status render_fields(const ignis_chat_template *t, const json_t *msgs, bool add_gen, char **out)
{
    const ig_chat_fields *f = &t->f;
    size_t n = json_array_size(msgs);
    sbuf b = {0};
    sb_add(&b, S(f->prefix));
    const char *role0 = n ? json_string_value(json_object_get(json_array_get(msgs, 0), "role")) : NULL;
    if (f->meta_instruction && !(role0 && !strcmp(role0, "system"))) {
        sb_add(&b, S(f->system));
        sb_add(&b, f->meta_instruction);
        sb_add(&b, S(f->eosys));
    }
    const char *last_role = NULL;
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role) {
            free(b.p);
            return ig_err(IGNIS_E_ARG, "chat template %s: message %zu has no role", t->name, i);
        }
        const char *box, *eox1, *eox2 = NULL;
        if (!strcmp(role, "system"))
            box = f->system, eox1 = f->eosys;
        else if (!strcmp(role, "user"))
            box = f->user, eox1 = f->eoh;
        else if (!strcmp(role, "assistant"))
            box = f->assistant, eox1 = f->eoa, eox2 = f->separator;
        else if (!strcmp(role, "tool") || !strcmp(role, "ipython") || !strcmp(role, "environment"))
            box = f->tool, eox1 = f->eotool;
        else {
            free(b.p);
            return ig_err(IGNIS_E_ARG,
                          "chat template %s: message %zu has role '%s' (expected system, user, assistant or tool)",
                          t->name, i, role);
        }
        sb_add(&b, S(box));
        ignis_status s = content_text(json_object_get(m, "content"), (int)i, &b);
        if (s != IGNIS_OK) {
            free(b.p);
            return s;
        }
        sb_add(&b, S(eox1));
        sb_add(&b, S(eox2));
        last_role = role;
    }
    if (add_gen) {
        if (last_role && !strcmp(last_role, "assistant")) {
            /* the model continues the last answer: drop its end-of-answer markers */
            size_t cut = strlen(S(f->eoa)) + strlen(S(f->separator));
            if (b.p && cut <= b.n) b.n -= cut;
            if (b.p) b.p[b.n] = 0;
        } else
            sb_add(&b, S(f->assistant));
    }
    if (b.oom) {
        free(b.p);
        return ig_err(IGNIS_E_NOMEM, "out of memory rendering chat template %s", t->name);
    }
    if (!b.p) {
        b.p = calloc(1, 1);
        if (!b.p) return ig_err(IGNIS_E_NOMEM, "out of memory rendering chat template %s", t->name);
    }
    *out = b.p;
    return IGNIS_OK;
}

static ignis_status render_jinja(const ignis_chat_template *t, json_t *msgs, const json_t *extra, bool add_gen,
                                 char **out)
{
    json_t *vars = json_deep_copy(t->specials);
    if (!vars) return ig_err(IGNIS_E_NOMEM, "out of memory rendering chat template %s", t->name);
    json_object_set(vars, "messages", msgs);
    json_object_set_new(vars, "tools", json_null());
    json_object_set_new(vars, "documents", json_null());
    json_object_set_new(vars, "add_generation_prompt", json_boolean(add_gen));
    if (extra) json_object_update(vars, (json_t *)extra);
    ignis_status s = ig_jinja_render(t->jinja, vars, out, NULL);
    json_decref(vars);
    return s;
}

static ignis_status check_messages(const ignis_chat_template *t, const json_t *msgs)
{
    if (!json_is_array(msgs)) return ig_err(IGNIS_E_ARG, "chat template %s: messages must be a JSON array", t->name);
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        if (!json_is_object(m))
            return ig_err(IGNIS_E_ARG, "chat template %s: message %zu is not an object", t->name, i);
        if (!json_is_string(json_object_get(m, "role")))
            return ig_err(IGNIS_E_ARG, "chat template %s: message %zu has no \"role\" string", t->name, i);
    }
    return IGNIS_OK;
}

ignis_status ignis_chat_render_json(const ignis_chat_template *t, const char *messages_json,
                                    const char *extra_vars_json, bool add_generation_prompt, char **out)
{
    if (!t || !messages_json || !out) return ig_err(IGNIS_E_ARG, "ignis_chat_render_json: NULL argument");
    *out = NULL;
    json_error_t je;
    json_t *msgs = json_loads(messages_json, 0, &je);
    if (!msgs) return ig_err(IGNIS_E_FORMAT, "chat messages: invalid JSON at line %d: %s", je.line, je.text);
    json_t *extra = NULL;
    if (extra_vars_json && *extra_vars_json) {
        extra = json_loads(extra_vars_json, 0, &je);
        if (!extra || !json_is_object(extra)) {
            json_decref(msgs);
            json_decref(extra);
            return ig_err(IGNIS_E_FORMAT, "chat template variables: expected a JSON object");
        }
    }
    ignis_status s = check_messages(t, msgs);
    if (s == IGNIS_OK)
        s = t->jinja ? render_jinja(t, msgs, extra, add_generation_prompt, out)
                     : render_fields(t, msgs, add_generation_prompt, out);
    json_decref(msgs);
    json_decref(extra);
    return s;
}

ignis_status ignis_chat_render(const ignis_chat_template *t, const ignis_chat_msg *msgs, int n,
                               bool add_generation_prompt, char **out)
{
    if (!t || !out || n < 0 || (n > 0 && !msgs)) return ig_err(IGNIS_E_ARG, "ignis_chat_render: invalid argument");
    *out = NULL;
    json_t *arr = json_array();
    if (!arr) return ig_err(IGNIS_E_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        if (!msgs[i].role) {
            json_decref(arr);
            return ig_err(IGNIS_E_ARG, "chat template %s: message %d has no role", t->name, i);
        }
        json_t *m = json_object();
        json_t *c =
            json_stringn_nocheck(msgs[i].content ? msgs[i].content : "", msgs[i].content ? strlen(msgs[i].content) : 0);
        if (!m || !c || json_object_set_new(m, "role", json_string_nocheck(msgs[i].role)) ||
            json_object_set_new(m, "content", c) || json_array_append_new(arr, m)) {
            json_decref(arr);
            return ig_err(IGNIS_E_NOMEM, "out of memory");
        }
    }
    ignis_status s = t->jinja ? render_jinja(t, arr, NULL, add_generation_prompt, out)
                              : render_fields(t, arr, add_generation_prompt, out);
    json_decref(arr);
    return s;
}
