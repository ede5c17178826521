/* Chat templates: Jinja rendering equals transformers' apply_chat_template byte for byte
 * (golden strings from tests/chat/make_template_golden.py), built-ins match LMDeploy's
 * layout, configs and errors are handled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "test_util.h"

static const char *const k_special_keys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                             "pad_token", "cls_token", "mask_token"};

static bool is_special_key(const char *k)
{
    for (size_t i = 0; i < sizeof k_special_keys / sizeof k_special_keys[0]; i++)
        if (!strcmp(k, k_special_keys[i])) return true;
    return false;
}

static void show_diff(const char *name, const char *want, const char *got)
{
    size_t i = 0;
    while (want[i] && want[i] == got[i])
        i++;
    size_t from = i > 40 ? i - 40 : 0;
    print_message("  %s: first difference at byte %zu\n    expected: ...%.80s\n    got:      ...%.80s\n", name, i,
                  want + from, got + from);
}

static void test_chat_jinja_matches_transformers_golden(void **state)
{
    (void)state;
    char golden[4096];
    snprintf(golden, sizeof golden, "%s", tu_src("tests/chat/golden/hf_templates.json"));
    json_error_t je;
    json_t *root = json_load_file(golden, 0, &je);
    if (!root) fail_msg("%s:%d: %s", golden, je.line, je.text);
    json_t *cases = json_object_get(root, "cases");
    assert_true(json_array_size(cases) > 100);
    int failures = 0, checked = 0, skipped = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *source = json_string_value(json_object_get(c, "source"));
        bool asset = !strncmp(source, "asset:", 6);
        char tpath[4096];
        const char *dir = NULL;
        ignis_chat_template *t = NULL;
        json_t *extra = json_object();
        json_t *vars = json_object_get(c, "variables");
        const char *k;
        json_t *v;
        json_object_foreach(vars, k, v)
        {
            /* asset templates must find their special tokens in tokenizer_config.json themselves */
            if (asset && is_special_key(k)) continue;
            json_object_set(extra, k, v);
        }
        if (json_object_get(c, "tools")) json_object_set(extra, "tools", json_object_get(c, "tools"));
        if (asset) {
            dir = tu_asset(source + 6);
            if (!dir) {
                if (tu_assets_required()) fail_msg("required asset missing: %s", source + 6);
                skipped++;
                json_decref(extra);
                continue;
            }
            snprintf(tpath, sizeof tpath, "%s", dir);
            TU_CHECK(ignis_chat_template_open("hf", tpath, &t));
        } else {
            char full[4096];
            snprintf(full, sizeof full, "%s", tu_src("tests/chat"));
            strncat(full, "/", sizeof full - strlen(full) - 1);
            strncat(full, source + 5, sizeof full - strlen(full) - 1);
            TU_CHECK(ignis_chat_template_open(full, NULL, &t));
        }
        char *msgs = json_dumps(json_object_get(c, "messages"), JSON_COMPACT);
        char *ex = json_dumps(extra, JSON_COMPACT);
        char *got = NULL;
        bool agp = json_is_true(json_object_get(c, "add_generation_prompt"));
        ignis_status s = ignis_chat_render_json(t, msgs, ex, agp, &got);
        const char *want = json_string_value(json_object_get(c, "expected"));
        const char *want_err = json_string_value(json_object_get(c, "error"));
        if (want_err) {
            if (s != IGNIS_E_ARG) {
                print_message("  %s: expected the template to reject the conversation (%s), got %s\n", name, want_err,
                              ignis_status_name(s));
                failures++;
            } else if (!strncmp(want_err, "TemplateError: ", 15) && !strstr(ignis_last_error(), want_err + 15)) {
                /* raise_exception's message must reach the user; Python's own errors
                 * (TypeError, ...) are only required to fail */
                print_message("  %s: error message '%s' does not carry '%s'\n", name, ignis_last_error(),
                              want_err + 15);
                failures++;
            }
        } else if (s != IGNIS_OK) {
            print_message("  %s: render failed: %s\n", name, ignis_last_error());
            failures++;
        } else if (strcmp(want, got)) {
            show_diff(name, want, got);
            failures++;
        }
        checked++;
        free(got);
        free(msgs);
        free(ex);
        json_decref(extra);
        ignis_chat_template_free(t);
    }
    json_decref(root);
    print_message("golden chat templates: %d checked, %d skipped (assets missing), %d failed\n", checked, skipped,
                  failures);
    if (failures) fail_msg("%d of %d golden renderings differ from transformers", failures, checked);
}

static char *render(const char *name, const ignis_chat_msg *m, int n, bool agp)
{
    ignis_chat_template *t = NULL;
    TU_CHECK(ignis_chat_template_open(name, NULL, &t));
    char *out = NULL;
    TU_CHECK(ignis_chat_render(t, m, n, agp, &out));
    ignis_chat_template_free(t);
    return out;
}

static const ignis_chat_msg k_conv[] = {{"user", "Hi"}, {"assistant", "Hello!"}, {"user", "How are you?"}};

static void test_chat_builtin_qwen_is_chatml_with_default_system(void **state)
{
    (void)state;
    char *s = render("qwen", k_conv, 3, true);
    assert_string_equal(s, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                           "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
                           "<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n");
    free(s);
    ignis_chat_msg sys[] = {{"system", "Be brief."}, {"user", "Hi"}};
    s = render("Qwen2-7B-Instruct", sys, 2, true);
    assert_string_equal(
        s, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    free(s);
}

static void test_chat_builtin_internlm2_uses_its_meta_instruction(void **state)
{
    (void)state;
    char *s = render("internlm2-chat-7b", k_conv, 1, true);
    assert_non_null(strstr(s, "<|im_start|>system\nYou are an AI assistant whose name is InternLM (书生·浦语).\n"));
    assert_non_null(
        strstr(s, "English and 中文.\n<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
    free(s);
    ignis_chat_template *t = NULL;
    TU_CHECK(ignis_chat_template_open("internlm2", NULL, &t));
    const char *const *w;
    int n = ignis_chat_stop_words(t, &w);
    assert_int_equal(n, 2);
    assert_string_equal(w[0], "<|im_end|>");
    assert_string_equal(w[1], "<|action_end|>");
    assert_true(ignis_chat_template_wants_bos(t));
    ignis_chat_template_free(t);
}

/* LMDeploy's InternLMChat7B (model.py v0.4.0, BaseChatTemplate.messages2prompt): default
 * system "<|System|>:" + meta + "\n" only when the conversation has no system message, user
 * turns "<|User|>:" + text + "\n", answers "<|Bot|>:" + text + "<eoa>" + "\n". */
static void test_chat_builtin_internlm_matches_lmdeploy_layout(void **state)
{
    (void)state;
    ignis_chat_msg sys[] = {{"system", "SYS"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}};
    char *s = render("internlm-chat-20b", sys, 4, true);
    assert_string_equal(s, "<|System|>:SYS\n<|User|>:U1\n<|Bot|>:A1<eoa>\n<|User|>:U2\n<|Bot|>:");
    free(s);
    s = render("internlm-chat-7b", k_conv, 3, true);
    assert_string_equal(s,
                        "<|System|>:You are an AI assistant whose name is InternLM (书生·浦语).\n"
                        "- InternLM (书生·浦语) is a conversational language model that is developed by Shanghai AI "
                        "Laboratory (上海人工智能实验室). It is designed to be helpful, honest, and harmless.\n"
                        "- InternLM (书生·浦语) can understand and communicate fluently in the language chosen by the "
                        "user such as English and 中文.\n\n"
                        "<|User|>:Hi\n<|Bot|>:Hello!<eoa>\n<|User|>:How are you?\n<|Bot|>:");
    free(s);
    ignis_chat_template *t = NULL;
    TU_CHECK(ignis_chat_template_open("internlm", NULL, &t));
    const char *const *w;
    assert_int_equal(ignis_chat_stop_words(t, &w), 1);
    assert_string_equal(w[0], "<eoa>");
    ignis_chat_template_free(t);
    /* qwen-7b (Qwen v1) is LMDeploy's Qwen7BChat: ChatML with its default system prompt */
    s = render("qwen-7b", k_conv, 1, true);
    assert_string_equal(s, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                           "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    free(s);
}

static void test_chat_builtin_llama2_and_llama3_layouts(void **state)
{
    (void)state;
    ignis_chat_msg sys[] = {{"system", "SYS"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}};
    char *s = render("llama2", sys, 4, true);
    assert_string_equal(s, "[INST] <<SYS>>\nSYS\n<</SYS>>\n\nU1 [/INST] A1</s><s>[INST] U2 [/INST] ");
    free(s);
    s = render("llama3", sys, 4, true);
    assert_string_equal(s, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSYS<|eot_id|>"
                           "<|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|>"
                           "<|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|>"
                           "<|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|>"
                           "<|start_header_id|>assistant<|end_header_id|>\n\n");
    free(s);
    ignis_chat_template *t = NULL;
    TU_CHECK(ignis_chat_template_open("llama3", NULL, &t));
    assert_false(ignis_chat_template_wants_bos(t)); /* its text opens with <|begin_of_text|> */
    ignis_chat_template_free(t);
    s = render("base", k_conv, 3, true);
    assert_string_equal(s, "HiHello!How are you?");
    free(s);
}

static void test_chat_builtin_without_generation_prompt_and_continuation(void **state)
{
    (void)state;
    char *s = render("chatml", k_conv, 2, false);
    assert_string_equal(s, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n");
    free(s);
    /* a trailing assistant message is continued, as LMDeploy does */
    s = render("chatml", k_conv, 2, true);
    assert_string_equal(s, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!");
    free(s);
}

static void test_chat_model_name_maps_to_template(void **state)
{
    (void)state;
    assert_string_equal(ignis_chat_template_for_model("internlm2-chat-7b"), "internlm2");
    assert_string_equal(ignis_chat_template_for_model("/models/Meta-Llama-3-8B-Instruct/"), "llama3");
    assert_string_equal(ignis_chat_template_for_model("llama2"), "llama2");
    assert_string_equal(ignis_chat_template_for_model("Llama-2-7b-chat-hf"), "llama2");
    assert_string_equal(ignis_chat_template_for_model("Qwen2.5-7B-Instruct"), "qwen");
    assert_string_equal(ignis_chat_template_for_model("base"), "base");
    assert_null(ignis_chat_template_for_model("mystery-model"));
    assert_string_equal(ignis_chat_template_for_model("internlm-chat-20b"), "internlm");
    assert_string_equal(ignis_chat_template_for_model("./internlm-chat-20b-4bit"), "internlm");
    assert_string_equal(ignis_chat_template_for_model("internlm-20b"), "base");
    assert_string_equal(ignis_chat_template_for_model("qwen-7b"), "qwen");
    assert_string_equal(ignis_chat_template_for_model("/models/Qwen-7B-Chat"), "qwen");
    assert_string_equal(ignis_chat_template_for_model("internlm2-chat-7b"), "internlm2");
}

static void test_chat_json_config_overrides_builtin(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("chat-json");
    char path[4096];
    snprintf(path, sizeof path, "%s/tmpl.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"model_name\": \"internlm2\", \"meta_instruction\": \"You are a robot developed by LMDeploy.\","
          " \"stop_words\": [\"<|im_end|>\"]}",
          f);
    fclose(f);
    ignis_chat_template *t = NULL;
    TU_CHECK(ignis_chat_template_open(path, NULL, &t));
    char *s = NULL;
    TU_CHECK(ignis_chat_render(t, k_conv, 1, true, &s));
    assert_string_equal(s, "<|im_start|>system\nYou are a robot developed by LMDeploy.<|im_end|>\n"
                           "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    free(s);
    const char *const *w;
    assert_int_equal(ignis_chat_stop_words(t, &w), 1);
    ignis_chat_template_free(t);

    f = fopen(path, "w");
    fputs("{\"model_name\": \"x\", \"sytem\": \"typo\"}", f);
    fclose(f);
    assert_int_equal(ignis_chat_template_open(path, NULL, &t), IGNIS_E_FORMAT);
    assert_non_null(strstr(ignis_last_error(), "unknown field \"sytem\""));
    tu_rmrf(dir);
}

static void test_chat_template_errors_are_clear(void **state)
{
    (void)state;
    ignis_chat_template *t = NULL;
    assert_int_equal(ignis_chat_template_open("no-such-template", NULL, &t), IGNIS_E_NOT_FOUND);
    assert_non_null(strstr(ignis_last_error(), "unknown chat template 'no-such-template'"));
    assert_int_equal(ignis_chat_template_open("hf", NULL, &t), IGNIS_E_ARG);
    const char *dir = tu_tmpdir("chat-err");
    assert_int_equal(ignis_chat_template_open("hf", dir, &t), IGNIS_E_NOT_FOUND);
    assert_non_null(strstr(ignis_last_error(), "no chat_template found"));

    char path[4096];
    snprintf(path, sizeof path, "%s/bad.jinja", dir);
    FILE *f = fopen(path, "w");
    fputs("line one\n{% for m in messages %}{{ m.content }\n", f);
    fclose(f);
    assert_int_equal(ignis_chat_template_open(path, NULL, &t), IGNIS_E_FORMAT);
    assert_non_null(strstr(ignis_last_error(), "line 2"));

    f = fopen(path, "w");
    fputs("{{ messages[0].content.nope.deeper }}", f);
    fclose(f);
    TU_CHECK(ignis_chat_template_open(path, NULL, &t));
    char *out = NULL;
    assert_int_equal(ignis_chat_render(t, k_conv, 1, true, &out), IGNIS_E_ARG);
    assert_non_null(strstr(ignis_last_error(), "'nope' is undefined"));
    assert_null(out);
    ignis_chat_template_free(t);

    TU_CHECK(ignis_chat_template_open("qwen", NULL, &t));
    ignis_chat_msg bad[] = {{"narrator", "x"}};
    assert_int_equal(ignis_chat_render(t, bad, 1, true, &out), IGNIS_E_ARG);
    assert_non_null(strstr(ignis_last_error(), "role 'narrator'"));
    ignis_chat_template_free(t);
    tu_rmrf(dir);
}

static void test_chat_hf_template_from_workspace_layout(void **state)
{
    (void)state;
    /* a workspace keeps tokenizer files under tokenizer/ */
    TU_ASSET_OR_SKIP(src, "tokenizers/qwen2/tokenizer_config.json");
    char srcp[2048];
    snprintf(srcp, sizeof srcp, "%s", src);
    const char *dir = tu_tmpdir("chat-ws");
    char wsdir[2048], cmd[8192];
    snprintf(wsdir, sizeof wsdir, "%s", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/tokenizer' && cp '%s' '%s/tokenizer/'", wsdir, srcp, wsdir);
    assert_int_equal(system(cmd), 0);
    ignis_chat_template *t = NULL;
    TU_CHECK(ignis_chat_template_open("hf", wsdir, &t));
    char *s = NULL;
    TU_CHECK(ignis_chat_render(t, k_conv, 1, true, &s));
    assert_string_equal(s,
                        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                        "<|im_start|>assistant\n");
    const char *const *w;
    int n = ignis_chat_stop_words(t, &w);
    assert_int_equal(n, 1);
    assert_string_equal(w[0], "<|im_end|>");
    free(s);
    ignis_chat_template_free(t);
    tu_rmrf(wsdir);
}

static ignis_status render_src(const char *src, char **out)
{
    const char *dir = tu_tmpdir("chat-src");
    char path[4096];
    snprintf(path, sizeof path, "%s/t.jinja", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(src, f);
    fclose(f);
    ignis_chat_template *t = NULL;
    *out = NULL;
    ignis_status s = ignis_chat_template_open(path, NULL, &t);
    if (s == IGNIS_OK) {
        s = ignis_chat_render(t, k_conv, 3, true, out);
        ignis_chat_template_free(t);
    }
    tu_rmrf(dir);
    return s;
}

static void test_chat_jinja_limits_runaway_templates(void **state)
{
    (void)state;
    char *out = NULL;
    /* recursion, huge ranges, deep nesting and huge strings fail cleanly */
    assert_int_equal(render_src("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", &out), IGNIS_E_ARG);
    assert_non_null(strstr(ignis_last_error(), "nested deeper"));
    assert_int_equal(render_src("{{ range(1000000)|length }}", &out), IGNIS_E_ARG);
    assert_non_null(strstr(ignis_last_error(), "range too big"));
    assert_int_equal(render_src("{{ 'x' * 1000000000 }}", &out), IGNIS_E_ARG);
    size_t n = 20000;
    char *deep = malloc(2 * n + 16), *p = deep;
    p += sprintf(p, "{{ ");
    for (size_t i = 0; i < n; i++)
        *p++ = '(';
    *p++ = '1';
    for (size_t i = 0; i < n; i++)
        *p++ = ')';
    strcpy(p, " }}");
    assert_int_equal(render_src(deep, &out), IGNIS_E_FORMAT);
    char *ifs = malloc(n * 10 + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(ifs + i * 10, "{% if 1 %}", 10);
    ifs[n * 10] = 0;
    assert_int_equal(render_src(ifs, &out), IGNIS_E_FORMAT);
    free(ifs);
    free(deep);
    assert_int_equal(render_src("{{ ns.x }}{% set ns.x = 1 %}", &out), IGNIS_E_ARG);
    assert_int_equal(render_src("{{ 1 // 0 }}", &out), IGNIS_E_ARG);
    assert_int_equal(render_src("{{ raise_exception('custom failure') }}", &out), IGNIS_E_ARG);
    assert_non_null(strstr(ignis_last_error(), "custom failure"));
    assert_int_equal(render_src("{% for x in 5 %}{% endfor %}", &out), IGNIS_E_ARG);
    assert_non_null(strstr(ignis_last_error(), "not iterable"));
    assert_int_equal(render_src("{% endfor %}", &out), IGNIS_E_FORMAT);
    assert_int_equal(render_src("{% include 'x' %}", &out), IGNIS_E_FORMAT);
    assert_non_null(strstr(ignis_last_error(), "unsupported tag 'include'"));
}

/* Every prefix and many one-character mutations of a real template either compile and
 * render or fail with a message: never a crash (run under valgrind/ASan to check memory). */
static void test_chat_jinja_survives_truncated_and_mutated_templates(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s", tu_src("tests/chat/templates/qwen25_tools.jinja"));
    size_t len = 0;
    char *src = tu_read_file(path, &len);
    assert_non_null(src);
    const char *dir = tu_tmpdir("chat-fuzz");
    char tpath[4096];
    snprintf(tpath, sizeof tpath, "%s/t.jinja", dir);
    static const char mutations[] = "{}%-+#()[]'\"|.~ \n";
    int compiled = 0, failed = 0;
    for (size_t cut = 0; cut <= len; cut += 3) {
        for (size_t m = 0; m <= sizeof mutations - 1; m++) {
            char *copy = malloc(len + 1);
            memcpy(copy, src, len + 1);
            size_t n = cut;
            if (m < sizeof mutations - 1) {
                if (cut >= len) break;
                copy[cut] = mutations[m];
                n = len;
            }
            FILE *f = fopen(tpath, "w");
            fwrite(copy, 1, n, f);
            fclose(f);
            free(copy);
            ignis_chat_template *t = NULL;
            if (ignis_chat_template_open(tpath, NULL, &t) != IGNIS_OK) {
                assert_true(strlen(ignis_last_error()) > 0);
                failed++;
                continue;
            }
            compiled++;
            char *out = NULL;
            if (ignis_chat_render(t, k_conv, 3, true, &out) == IGNIS_OK) {
                assert_non_null(out);
                free(out);
            } else
                assert_true(strlen(ignis_last_error()) > 0);
            ignis_chat_template_free(t);
        }
    }
    print_message("mutated templates: %d compiled, %d rejected\n", compiled, failed);
    assert_true(compiled > 0 && failed > 0);
    free(src);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_jinja_matches_transformers_golden),
        cmocka_unit_test(test_chat_builtin_qwen_is_chatml_with_default_system),
        cmocka_unit_test(test_chat_builtin_internlm2_uses_its_meta_instruction),
        cmocka_unit_test(test_chat_builtin_internlm_matches_lmdeploy_layout),
        cmocka_unit_test(test_chat_builtin_llama2_and_llama3_layouts),
        cmocka_unit_test(test_chat_builtin_without_generation_prompt_and_continuation),
        cmocka_unit_test(test_chat_model_name_maps_to_template),
        cmocka_unit_test(test_chat_json_config_overrides_builtin),
        cmocka_unit_test(test_chat_template_errors_are_clear),
        cmocka_unit_test(test_chat_hf_template_from_workspace_layout),
        cmocka_unit_test(test_chat_jinja_limits_runaway_templates),
        cmocka_unit_test(test_chat_jinja_survives_truncated_and_mutated_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
