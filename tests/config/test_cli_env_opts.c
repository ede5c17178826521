/* The CUDA knobs are options of ignis_engine_opts; only the CLI (and the benchmarks) map
 * the IGNIS_CUDA_* / IGNIS_NCCL_LIB environment variables onto them, refusing a malformed
 * value with one line that names the variable. */
#include <stdlib.h>
#include <string.h>

#include "cli/env_opts.h"
#include "test_util.h"

static const char *const k_vars[] = {"IGNIS_CUDA_GRAPHS",      "IGNIS_CUDA_PDL",         "IGNIS_CUDA_GEMV_MAX_M",
                                     "IGNIS_CUDA_SPLIT_COVER", "IGNIS_CUDA_DECODE_ATTN", "IGNIS_CUDA_NCCL",
                                     "IGNIS_NCCL_LIB"};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof k_vars / sizeof k_vars[0]; i++)
        unsetenv(k_vars[i]);
    return 0;
}

static void test_env_unset_leaves_every_default(void **state)
{
    (void)state;
    ignis_engine_opts o, ref;
    ignis_engine_opts_init(&o);
    ignis_engine_opts_init(&ref);
    setenv("IGNIS_CUDA_SPLIT_COVER", "", 1); /* empty counts as unset */
    assert_true(cli_env_engine_opts(&o));
    assert_memory_equal(&o.cuda, &ref.cuda, sizeof o.cuda);
    assert_int_equal(o.cuda.graphs, 0);
    assert_null(o.cuda.nccl_lib);
}

static void test_env_maps_each_variable_onto_its_option(void **state)
{
    (void)state;
    setenv("IGNIS_CUDA_GRAPHS", "0", 1);
    setenv("IGNIS_CUDA_PDL", "0", 1);
    setenv("IGNIS_CUDA_GEMV_MAX_M", "2", 1);
    setenv("IGNIS_CUDA_SPLIT_COVER", "8", 1);
    setenv("IGNIS_CUDA_DECODE_ATTN", "tiled", 1);
    setenv("IGNIS_CUDA_NCCL", "1", 1);
    setenv("IGNIS_NCCL_LIB", "/opt/nccl/libnccl.so.2", 1);
    ignis_engine_opts o;
    ignis_engine_opts_init(&o);
    assert_true(cli_env_engine_opts(&o));
    assert_int_equal(o.cuda.graphs, -1);
    assert_int_equal(o.cuda.pdl, -1);
    assert_int_equal(o.cuda.gemv_max_m, 2);
    assert_int_equal(o.cuda.split_cover, 8);
    assert_int_equal(o.cuda.decode_attn, 1);
    assert_int_equal(o.cuda.nccl, 1);
    assert_string_equal(o.cuda.nccl_lib, "/opt/nccl/libnccl.so.2");

    /* GEMV_MAX_M=0 meant "never the GEMV kernels": the option's explicit none, not its default */
    setenv("IGNIS_CUDA_GEMV_MAX_M", "0", 1);
    setenv("IGNIS_CUDA_GRAPHS", "1", 1);
    setenv("IGNIS_CUDA_DECODE_ATTN", "auto", 1);
    assert_true(cli_env_engine_opts(&o));
    assert_int_equal(o.cuda.gemv_max_m, -1);
    assert_int_equal(o.cuda.graphs, 0);
    assert_int_equal(o.cuda.decode_attn, 0);
}

static void test_env_rejects_malformed_values(void **state)
{
    (void)state;
    const char *bad[][2] = {{"IGNIS_CUDA_GEMV_MAX_M", "four"},  {"IGNIS_CUDA_GEMV_MAX_M", "-3"},
                            {"IGNIS_CUDA_SPLIT_COVER", "0"},    {"IGNIS_CUDA_GRAPHS", "off"},
                            {"IGNIS_CUDA_DECODE_ATTN", "fast"}, {"IGNIS_CUDA_NCCL", "2"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clear_env(NULL);
        setenv(bad[i][0], bad[i][1], 1);
        ignis_engine_opts o;
        ignis_engine_opts_init(&o);
        if (cli_env_engine_opts(&o)) fail_msg("%s=%s: expected a refusal, it was accepted", bad[i][0], bad[i][1]);
    }
}

/* The CLI refuses before loading anything, with one line naming the variable. */
static void test_cli_reports_a_malformed_variable_in_one_line(void **state)
{
    (void)state;
    setenv("IGNIS_CUDA_SPLIT_COVER", "lots", 1);
    /* every command that builds an engine reads them: generate, chat, serve, bench */
    static const char *const cmds[] = {
        "generate synthetic:tiny --prompt-ids 1 --max-new-tokens 1 --backend cpu",
        "serve api_server synthetic:tiny --backend cpu --server-port 0",
        "bench throughput --model synthetic:tiny --backend cpu --num-prompts 1 --no-progress",
    };
    for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
        char *out = NULL, *err = NULL;
        int rc = tu_run_cli(cmds[c], NULL, &out, &err);
        if (rc != 2) fail_msg("%s: exit %d, expected 2 (%s)", cmds[c], rc, err ? err : "");
        assert_non_null(err);
        if (!strstr(err, "IGNIS_CUDA_SPLIT_COVER expects an integer in [1, 1024], got 'lots'"))
            fail_msg("%s: expected the error to name IGNIS_CUDA_SPLIT_COVER and its value, got: %s", cmds[c], err);
        const char *nl = strchr(err, '\n');
        if (nl && nl[1]) fail_msg("%s: expected a one-line error, got: %s", cmds[c], err);
        free(out);
        free(err);
    }
    unsetenv("IGNIS_CUDA_SPLIT_COVER");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_env_unset_leaves_every_default, clear_env),
        cmocka_unit_test_setup(test_env_maps_each_variable_onto_its_option, clear_env),
        cmocka_unit_test_setup(test_env_rejects_malformed_values, clear_env),
        cmocka_unit_test_setup(test_cli_reports_a_malformed_variable_in_one_line, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
