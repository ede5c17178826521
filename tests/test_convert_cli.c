/* `ignis convert` on the command line: exit codes, messages, files written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test_convert_fixture.h"
#include "test_util.h"

static char g_root[2048], g_hf[2100];

static int setup(void **state)
{
    (void)state;
    snprintf(g_root, sizeof g_root, "%s", tu_tmpdir("conv-cli"));
    snprintf(g_hf, sizeof g_hf, "%s/hf", g_root);
    mkdir(g_hf, 0755);
    tc_model m;
    tc_model_init(&m, TC_QWEN2, 21);
    tc_write(&m, g_hf, NULL, false);
    tc_model_free(&m);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(g_root);
    return 0;
}

static int run(const char *args, char **out, char **err)
{
    *out = *err = NULL;
    int rc = tu_run_cli(args, NULL, out, err);
    if (rc < 0) fail_msg("could not run ignis %s", args);
    return rc;
}

static void test_cli_convert_help_exits_zero(void **state)
{
    (void)state;
    char *out, *err;
    assert_int_equal(run("convert --help", &out, &err), 0);
    if (!out || !strstr(out, "usage: ignis convert MODEL_NAME HF_DIR")) fail_msg("help text missing; got: %s", out);
    free(out);
    free(err);
}

static void test_cli_convert_usage_errors_exit_two(void **state)
{
    (void)state;
    static const char *cases[] = {"convert",
                                  "convert only-name",
                                  "convert a b --dtype fp8",
                                  "convert a b --tp 0",
                                  "convert a b --bogus",
                                  "convert a b --dst-path"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *err;
        int rc = run(cases[i], &out, &err);
        if (rc != 2) fail_msg("ignis %s: expected exit 2, got %d (stderr: %s)", cases[i], rc, err ? err : "");
        free(out);
        free(err);
    }
}

static void test_cli_convert_failure_prints_one_line_and_exits_one(void **state)
{
    (void)state;
    char args[8192], *out, *err;
    snprintf(args, sizeof args, "convert llama2 '%s/nope' --dst-path '%s/ws-fail'", g_root, g_root);
    assert_int_equal(run(args, &out, &err), 1);
    if (!err || strncmp(err, "ignis: convert: ", 16) != 0 || strchr(err, '\n') != err + strlen(err) - 1)
        fail_msg("expected one line starting 'ignis: convert: '; got: %s", err ? err : "(none)");
    char ws[2200];
    snprintf(ws, sizeof ws, "%s/ws-fail", g_root);
    assert_false(tu_exists(ws));
    free(out);
    free(err);
}

static void test_cli_convert_writes_tp_ranks(void **state)
{
    (void)state;
    char args[8192], *out, *err;
    snprintf(args, sizeof args, "convert qwen2-7b '%s' --dst-path '%s/ws' --tp 2 --dtype bf16", g_hf, g_root);
    int rc = run(args, &out, &err);
    if (rc != 0) fail_msg("expected exit 0, got %d: %s", rc, err ? err : "");
    char p[2300];
    const char *files[] = {"ignis.json", "weights/rank0.bin", "weights/rank1.bin", "tokenizer/tokenizer_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/ws/%s", g_root, files[i]);
        if (!tu_exists(p)) fail_msg("expected %s to be written", p);
    }
    snprintf(p, sizeof p, "%s/ws/ignis.json", g_root);
    char *js = tu_read_file(p, NULL);
    assert_non_null(strstr(js, "\"chat_template\": \"qwen\""));
    assert_non_null(strstr(js, "\"dtype\": \"bf16\""));
    free(js);
    free(out);
    free(err);
}

/* A tokenizer.model of random bytes fails the conversion (one line naming the file) and
 * leaves nothing at the destination. */
static void test_cli_convert_rejects_random_tokenizer_model(void **state)
{
    (void)state;
    char hf[2300], f[2400], args[8192], ws[2300], *out, *err;
    snprintf(hf, sizeof hf, "%s/hf-badtok", g_root);
    mkdir(hf, 0755);
    tc_model m;
    tc_model_init(&m, TC_LLAMA2, 9);
    tc_write(&m, hf, NULL, false);
    tc_model_free(&m);
    snprintf(f, sizeof f, "%s/tokenizer.model", hf);
    FILE *fp = fopen(f, "wb");
    assert_non_null(fp);
    for (int i = 0; i < 4096; i++)
        fputc((i * 7919 + 13) % 251 + 3, fp);
    fclose(fp);
    snprintf(ws, sizeof ws, "%s/ws-badtok", g_root);
    snprintf(args, sizeof args, "convert llama2-7b '%s' --dst-path '%s'", hf, ws);
    assert_int_equal(run(args, &out, &err), 1);
    if (!err || strchr(err, '\n') != err + strlen(err) - 1 || !strstr(err, "tokenizer.model"))
        fail_msg("expected one line naming tokenizer.model; got: %s", err ? err : "(none)");
    assert_false(tu_exists(ws));
    free(out);
    free(err);
}

/* A template of another family converts but says so on stderr. */
static void test_cli_convert_warns_on_template_of_another_family(void **state)
{
    (void)state;
    char args[8192], *out, *err;
    snprintf(args, sizeof args, "convert internlm2-chat-7b '%s' --dst-path '%s/ws-warn'", g_hf, g_root);
    int rc = run(args, &out, &err);
    if (rc != 0) fail_msg("expected exit 0, got %d: %s", rc, err ? err : "");
    if (!err || !strstr(err, "warning") || !strstr(err, "'internlm2'") || !strstr(err, "does not match"))
        fail_msg("expected a template warning; got: %s", err ? err : "(none)");
    free(out);
    free(err);
    snprintf(args, sizeof args, "convert qwen2-7b '%s' --dst-path='%s/ws-warn'", g_hf, g_root);
    assert_int_equal(run(args, &out, &err), 0);
    if (err && strstr(err, "warning")) fail_msg("expected no warning for a matching template; got: %s", err);
    free(out);
    free(err);
    /* the seed's first-generation models with their own templates (the tutorial's case) */
    static const char *const v1[][2] = {{"qwen-7b", "qwen"}, {"internlm-chat-20b", "internlm"}};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "convert %s '%s/tests/fixtures/%s' --dst-path '%s/ws-v1-%d'", v1[i][0],
                 getenv("IGNIS_SOURCE_DIR"), v1[i][1], g_root, i);
        assert_int_equal(run(args, &out, &err), 0);
        if (err && strstr(err, "warning")) fail_msg("%s: expected no warning; got: %s", v1[i][0], err);
        free(out);
        free(err);
    }
    /* and InternLM v1's template on a Qwen checkpoint is another family's */
    snprintf(args, sizeof args, "convert internlm-chat-20b '%s/tests/fixtures/qwen' --dst-path '%s/ws-v1-x'",
             getenv("IGNIS_SOURCE_DIR"), g_root);
    assert_int_equal(run(args, &out, &err), 0);
    if (!err || !strstr(err, "'internlm'") || !strstr(err, "does not match"))
        fail_msg("expected a template warning; got: %s", err ? err : "(none)");
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_convert_help_exits_zero),
        cmocka_unit_test(test_cli_convert_usage_errors_exit_two),
        cmocka_unit_test(test_cli_convert_failure_prints_one_line_and_exits_one),
        cmocka_unit_test(test_cli_convert_writes_tp_ranks),
        cmocka_unit_test(test_cli_convert_rejects_random_tokenizer_model),
        cmocka_unit_test(test_cli_convert_warns_on_template_of_another_family),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
