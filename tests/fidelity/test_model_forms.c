/*
 * The command lines of the LMDeploy tutorial (issue 14), with `ignis` for `lmdeploy`, on
 * local models: stories260K (a real tokenizer, for chat) and the internlm / qwen fixtures
 * (for generate). Each either runs or fails with its one clear message:
 *   ignis chat turbomind MODEL --model-name internlm-chat-20b | qwen-7b | internlm2-chat-7b
 *   ignis convert internlm2-chat-7b MODEL;  ignis chat turbomind ./workspace
 *   ignis chat pytorch MODEL                 -> "not supported", use turbomind
 *   ignis chat turbomind owner/name          -> not a local directory: download it first
 *   a 4-bit (AWQ) checkpoint                 -> "not supported yet"
 *   ignis list                               -> the chat templates and model names
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

static char g_stories[2048];

static int setup(void **state)
{
    (void)state;
    const char *m = tu_asset("models/stories260K/hf/model.safetensors");
    g_stories[0] = 0;
    if (m) snprintf(g_stories, sizeof g_stories, "%s", tu_asset("models/stories260K/hf"));
    return 0;
}

#define NEED_STORIES() TU_SKIP_WITHOUT_ASSET(g_stories[0], "models/stories260K/hf")

static void expect_in(const char *what, const char *text, const char *needle)
{
    if (!text || !strstr(text, needle)) fail_msg("%s: expected '%s' in:\n%s", what, needle, text ? text : "(null)");
}

/* One chat turn ("Once" then exit) through `ignis chat ARGS`; returns stdout, and stderr
 * in *err_out when it is not NULL. */
static char *chat_once(const char *args, char **err_out)
{
    char cmd[9000], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "chat %s --backend cpu --threads 1 --max-new-tokens 4 --seed 1", args);
    int rc = tu_run_cli(cmd, "Once\n\nexit\n\n", &out, &err);
    if (rc != 0) fail_msg("ignis %s: exit %d\nstderr: %s", cmd, rc, err ? err : "");
    if (err_out)
        *err_out = err;
    else
        free(err);
    return out;
}

static void test_chat_turbomind_hf_dir_with_model_names(void **state)
{
    (void)state;
    NEED_STORIES();
    static const char *const names[] = {"internlm-chat-20b", "qwen-7b", "internlm2-chat-7b"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char args[4096];
        snprintf(args, sizeof args, "turbomind '%s' --model-name %s --verbose", g_stories, names[i]);
        char *err = NULL, *out = chat_once(args, &err);
        /* --verbose names the template the model name picked */
        const char *want = i == 0   ? "chat template internlm,"
                           : i == 1 ? "chat template qwen,"
                                    : "chat template internlm2,";
        expect_in(names[i], err, want);
        free(out);
        free(err);
    }
}

static void test_convert_then_chat_turbomind_workspace(void **state)
{
    (void)state;
    NEED_STORIES();
    char cmd[12000], ws[4096], *out = NULL, *err = NULL;
    snprintf(ws, sizeof ws, "%s/workspace", tu_tmpdir("forms-ws"));
    snprintf(cmd, sizeof cmd, "convert internlm2-chat-7b '%s' --dst-path '%s'", g_stories, ws);
    int rc = tu_run_cli(cmd, NULL, &out, &err);
    if (rc != 0) fail_msg("ignis %s: exit %d\nstderr: %s", cmd, rc, err ? err : "");
    free(out);
    free(err);
    char args[4200];
    snprintf(args, sizeof args, "turbomind '%s'", ws);
    out = chat_once(args, NULL);
    expect_in("chat turbomind ./workspace", out, "double enter to end input >>> ");
    free(out);
}

static void test_backend_word_pytorch_and_hub_ids_fail_clearly(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    int rc = tu_run_cli("chat pytorch ./Qwen-7B-Chat --model-name qwen-7b", NULL, &out, &err);
    assert_int_not_equal(rc, 0);
    expect_in("chat pytorch", err, "'pytorch' backend is not supported");
    expect_in("chat pytorch", err, "turbomind");
    free(out);
    free(err);
    rc = tu_run_cli("chat turbomind internlm/internlm-chat-20b-4bit --model-name internlm-chat-20b", NULL, &out, &err);
    assert_int_not_equal(rc, 0);
    expect_in("hub id", err, "is not a local directory");
    expect_in("hub id", err, "download");
    free(out);
    free(err);
    rc = tu_run_cli("generate turbomind Qwen/Qwen-7B-Chat --prompt-ids 1", NULL, &out, &err);
    assert_int_not_equal(rc, 0);
    expect_in("generate hub id", err, "is not a local directory");
    free(out);
    free(err);
    rc = tu_run_cli("bench pytorch --model synthetic:tiny", NULL, &out, &err);
    assert_int_equal(rc, 2);
    expect_in("bench pytorch", err, "'pytorch' backend is not supported");
    free(out);
    free(err);
    rc = tu_run_cli("bench throughput turbomind --model Qwen/Qwen-7B-Chat", NULL, &out, &err);
    assert_int_equal(rc, 2);
    expect_in("bench hub id", err, "is not a local directory");
    free(out);
    free(err);
    rc = tu_run_cli("serve api_server pytorch ./Qwen-7B-Chat --server-port 0", NULL, &out, &err);
    assert_int_equal(rc, 2);
    expect_in("serve pytorch", err, "'pytorch' backend is not supported");
    free(out);
    free(err);
    rc = tu_run_cli("serve api_server turbomind Qwen/Qwen-7B-Chat --server-port 0", NULL, &out, &err);
    assert_int_equal(rc, 2);
    expect_in("serve hub id", err, "is not a local directory");
    free(out);
    free(err);
}

/* `ignis bench MODE turbomind --model M` runs: the backend word is LMDeploy's name for ours. */
static void test_bench_turbomind_word_runs(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    int rc = tu_run_cli("bench throughput turbomind --model synthetic:tiny --backend cpu --threads 1 --dataset random "
                        "--random-input-len 8 --output-len 4 --num-prompts 4 --no-progress",
                        NULL, &out, &err);
    if (rc != 0) fail_msg("bench turbomind: exit %d\nstderr: %s", rc, err ? err : "");
    expect_in("bench turbomind", out, "Successful requests");
    free(out);
    free(err);
}

static void test_generate_turbomind_runs_internlm_and_qwen_fixtures(void **state)
{
    (void)state;
    static const char *const fx[] = {"tests/fixtures/internlm", "tests/fixtures/qwen"};
    for (int i = 0; i < 2; i++) {
        char cmd[8192], *out = NULL, *err = NULL;
        snprintf(cmd, sizeof cmd,
                 "generate turbomind '%s' --prompt-ids '1 5 9' --max-new-tokens 3 --ids --backend cpu --threads 1",
                 tu_src(fx[i]));
        int rc = tu_run_cli(cmd, NULL, &out, &err);
        if (rc != 0) fail_msg("ignis %s: exit %d\nstderr: %s", cmd, rc, err ? err : "");
        expect_in(fx[i], err, i == 0 ? "InternLMForCausalLM" : "QWenLMHeadModel");
        free(out);
        free(err);
    }
}

/* A copy of the internlm fixture whose config.json says AWQ 4-bit, as LMDeploy's
 * internlm-chat-20b-4bit does. */
static void test_4bit_checkpoint_is_not_supported_yet(void **state)
{
    (void)state;
    char dir[4096], p[4200], q[8400];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("forms-awq")); /* tu_src reuses the buffer */
    snprintf(p, sizeof p, "%s/config.json", tu_src("tests/fixtures/internlm"));
    char *cfg = tu_read_file(p, NULL);
    assert_non_null(cfg);
    char *brace = strrchr(cfg, '}');
    assert_non_null(brace);
    *brace = 0;
    snprintf(q, sizeof q, "%s/config.json", dir);
    FILE *f = fopen(q, "wb");
    assert_non_null(f);
    fprintf(f, "%s, \"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": 128}}\n", cfg);
    fclose(f);
    free(cfg);
    snprintf(p, sizeof p, "%s/model.safetensors", tu_src("tests/fixtures/internlm"));
    snprintf(q, sizeof q, "%s/model.safetensors", dir);
    assert_int_equal(symlink(p, q), 0);
    char cmd[8192], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "generate turbomind '%s' --prompt-ids 1 --backend cpu", dir);
    int rc = tu_run_cli(cmd, NULL, &out, &err);
    assert_int_not_equal(rc, 0);
    expect_in("awq", err, "not supported yet");
    free(out);
    free(err);
}

static void test_list_prints_templates_and_model_names(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    assert_int_equal(tu_run_cli("list", NULL, &out, &err), 0);
    static const char *const want[] = {"internlm2", "internlm-chat-20b", "qwen-7b", "llama3", "chatml"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        expect_in("ignis list", out, want[i]);
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_turbomind_hf_dir_with_model_names),
        cmocka_unit_test(test_convert_then_chat_turbomind_workspace),
        cmocka_unit_test(test_backend_word_pytorch_and_hub_ids_fail_clearly),
        cmocka_unit_test(test_generate_turbomind_runs_internlm_and_qwen_fixtures),
        cmocka_unit_test(test_bench_turbomind_word_runs),
        cmocka_unit_test(test_4bit_checkpoint_is_not_supported_yet),
        cmocka_unit_test(test_list_prints_templates_and_model_names),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
