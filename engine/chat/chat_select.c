/* Which chat template a model path uses: explicit choice, model name, the workspace's
 * stored choice, the model's own Jinja template, or a name match. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "chat/chat_internal.h"
#include "core/error.h"
#include "ignis.h"

static bool is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* engine.chat_template of a workspace's ignis.json, copied to buf; false when absent. */
static bool workspace_choice(const char *dir, char *buf, size_t cap)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/ignis.json", dir);
    if (!is_file(path)) return false;
    json_error_t je;
    json_t *j = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
    if (!j) return false;
    const char *v = json_string_value(json_object_get(json_object_get(j, "engine"), "chat_template"));
    bool ok = v && *v && strlen(v) < cap;
    if (ok) snprintf(buf, cap, "%s", v);
    json_decref(j);
    return ok;
}

/* Does the directory (or its workspace tokenizer/ folder) carry a Jinja chat template? */
static bool has_hf_template(const char *dir)
{
    static const char *const rel[] = {"chat_template.jinja",   "tokenizer/chat_template.jinja",
                                      "chat_template.json",    "tokenizer/chat_template.json",
                                      "tokenizer_config.json", "tokenizer/tokenizer_config.json"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, rel[i]);
        if (!is_file(path)) continue;
        if (i < 2) return true;
        json_error_t je;
        json_t *j = json_load_file(path, JSON_DECODE_INT_AS_REAL, &je);
        if (!j) continue;
        const json_t *t = json_object_get(j, "chat_template");
        bool has = json_is_string(t) || (json_is_array(t) && json_array_size(t) > 0);
        json_decref(j);
        if (has) return true;
    }
    return false;
}

ignis_status ignis_chat_template_for_path(const char *model_path, const char *override, const char *model_name,
                                          ignis_chat_template **out)
{
    if (!out) return ig_err(IGNIS_E_ARG, "ignis_chat_template_for_path: out is NULL");
    *out = NULL;
    const char *dir = model_path && is_dir(model_path) ? model_path : NULL;
    if (override && *override) return ignis_chat_template_open(override, dir, out);
    if (model_name && *model_name) {
        const char *name = ignis_chat_template_for_model(model_name);
        if (!name) {
            char names[256];
            ig_chat_builtin_names(names, sizeof names);
            return ig_err(IGNIS_E_NOT_FOUND,
                          "model name '%s' matches no chat template (known families: %s; see 'ignis list'); name one "
                          "with --chat-template",
                          model_name, names);
        }
        return ignis_chat_template_open(name, dir, out);
    }
    if (dir) {
        char stored[256];
        if (workspace_choice(dir, stored, sizeof stored)) return ignis_chat_template_open(stored, dir, out);
        if (has_hf_template(dir)) return ignis_chat_template_open("hf", dir, out);
        const char *name = ignis_chat_template_for_model(model_path);
        if (name) return ignis_chat_template_open(name, dir, out);
    }
    return ignis_chat_template_open("base", dir, out);
}
