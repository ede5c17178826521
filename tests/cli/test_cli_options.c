/*
 * The command line's shared option handling ($IGNIS_BIN): "--name=value" works like
 * "--name value" for every command; NaN and infinite sampling values are refused; every
 * error is one line without a doubled prefix or a repeated path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static int run(const char *args, const char *in, char **out, char **err)
{
    *out = *err = NULL;
    int rc = tu_run_cli(args, in, out, err);
    if (rc < 0) fail_msg("could not run ignis %s", args);
    return rc;
}

/* stderr is exactly one non-empty line. */
static void assert_one_line(const char *args, const char *err)
{
    if (!err || !*err || strchr(err, '\n') != err + strlen(err) - 1)
        fail_msg("ignis %s: expected one line on stderr, got: '%s'", args, err ? err : "(none)");
}

/* No "X: X:" anywhere in the line (a prefix added twice). */
static void assert_no_doubled_prefix(const char *args, const char *err)
{
    for (const char *p = err; (p = strchr(p, ':')) != NULL; p++) {
        const char *start = p;
        while (start > err && start[-1] != ' ' && start[-1] != '\n')
            start--;
        size_t n = (size_t)(p - start) + 1; /* "word:" */
        if (n > 1 && !strncmp(p + 1, " ", 1) && !strncmp(p + 2, start, n))
            fail_msg("ignis %s: doubled prefix '%.*s' in: %s", args, (int)n, start, err);
    }
}

static const char *k_gen = "generate synthetic:tiny --backend cpu --threads 1 --prompt-ids '1 2 3' --ids";

static void test_equals_form_gives_the_same_output_as_separate_value(void **st)
{
    (void)st;
    char a[1024], b[1024], *o1, *e1, *o2, *e2;
    snprintf(a, sizeof a, "%s --max-new-tokens 6 --temperature 0.8 --top-k 20 --seed 7", k_gen);
    snprintf(b, sizeof b,
             "generate synthetic:tiny --backend=cpu --threads=1 --prompt-ids='1 2 3' --ids --max-new-tokens=6 "
             "--temperature=0.8 --top-k=20 --seed=7");
    assert_int_equal(run(a, NULL, &o1, &e1), 0);
    int rc = run(b, NULL, &o2, &e2);
    if (rc != 0) fail_msg("ignis %s: exit %d: %s", b, rc, e2 ? e2 : "");
    assert_non_null(o1);
    assert_non_null(o2);
    assert_string_equal(o1, o2);
    free(o1), free(e1), free(o2), free(e2);
}

static void test_equals_form_works_for_tokenize_and_convert(void **st)
{
    (void)st;
    TU_ASSET_OR_SKIP(tok, "tokenizers/llama2");
    char a[4096], *o1, *e1, *o2, *e2;
    snprintf(a, sizeof a, "tokenize '%s' --text 'a=b c'", tok);
    assert_int_equal(run(a, NULL, &o1, &e1), 0);
    snprintf(a, sizeof a, "tokenize '%s' --text='a=b c'", tok);
    assert_int_equal(run(a, NULL, &o2, &e2), 0);
    assert_string_equal(o1, o2);
    free(o1), free(e1), free(o2), free(e2);
    /* convert: an "=" option reaches the parser (an unknown dtype is reported as such) */
    assert_int_equal(run("convert a b --dtype=fp8", NULL, &o1, &e1), 2);
    assert_one_line("convert --dtype=fp8", e1);
    assert_non_null(strstr(e1, "fp8"));
    free(o1), free(e1);
}

static void test_nan_and_infinite_sampling_values_are_refused(void **st)
{
    (void)st;
    static const char *cases[] = {
        "--temperature nan",
        "--temperature=NaN",
        "--temperature inf",
        "--temperature -inf",
        "--temperature 1e999",
        "--top-p nan",
        "--top-p=inf",
        "--top-p 0",
        "--repetition-penalty nan",
        "--repetition-penalty inf",
        "--cache-max-entry-count nan",
        "--top-p 1.5",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char a[1024], *o, *e;
        snprintf(a, sizeof a, "%s %s", k_gen, cases[i]);
        int rc = run(a, NULL, &o, &e);
        if (rc != 2) fail_msg("ignis %s: expected exit 2, got %d (stdout %s)", a, rc, o ? o : "");
        assert_one_line(a, e);
        /* the message names the option */
        char flag[64];
        snprintf(flag, sizeof flag, "%.*s", (int)strcspn(cases[i], " ="), cases[i]);
        if (!strstr(e, flag)) fail_msg("ignis %s: message does not name %s: %s", a, flag, e);
        free(o), free(e);
    }
}

static void test_usage_errors_are_one_line(void **st)
{
    (void)st;
    static const char *cases[] = {
        "generate synthetic:tiny --prompt",
        "generate synthetic:tiny --prompt-ids '1' --bogus",
        "generate synthetic:tiny --prompt-ids '1' --threads x",
        "generate synthetic:tiny --prompt-ids '1' --dtype fp8",
        "generate synthetic:tiny --prompt-ids '1' --backend gpu9",
        "tokenize",
        "tokenize a b",
        "convert a",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *o, *e;
        int rc = run(cases[i], NULL, &o, &e);
        if (rc != 2) fail_msg("ignis %s: expected exit 2, got %d", cases[i], rc);
        assert_one_line(cases[i], e);
        assert_no_doubled_prefix(cases[i], e);
        free(o), free(e);
    }
}

static void test_runtime_errors_say_it_once(void **st)
{
    (void)st;
    TU_ASSET_OR_SKIP(asset, "tokenizers/llama2");
    char tok[2048]; /* tu_asset's buffer is reused by tu_tmpdir */
    snprintf(tok, sizeof tok, "%s", asset);
    char a[4096], *o, *e;
    /* the library message already names the operation: no "detokenize: detokenize:" */
    snprintf(a, sizeof a, "tokenize '%s' --decode --text '1 2 999999'", tok);
    assert_int_equal(run(a, NULL, &o, &e), 1);
    assert_one_line(a, e);
    assert_no_doubled_prefix(a, e);
    assert_non_null(strstr(e, "999999"));
    free(o), free(e);
    /* a missing model path appears once */
    const char *missing = "/nonexistent-ignis-model-dir";
    snprintf(a, sizeof a, "generate %s --prompt-ids 1", missing);
    assert_int_equal(run(a, NULL, &o, &e), 1);
    assert_one_line(a, e);
    const char *first = strstr(e, missing);
    if (!first || strstr(first + 1, missing)) fail_msg("ignis %s: expected the path once: %s", a, e);
    free(o), free(e);
    /* a model directory with a broken config.json: the path is not said twice */
    char dir[2048], cfg[2100];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("cli-badcfg"));
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fputs("{", f);
    fclose(f);
    snprintf(a, sizeof a, "generate '%s' --prompt-ids 1", dir);
    assert_int_equal(run(a, NULL, &o, &e), 1);
    assert_one_line(a, e);
    first = strstr(e, dir);
    if (!first || strstr(first + strlen(dir) + 1, dir)) fail_msg("ignis %s: expected the directory once: %s", a, e);
    free(o), free(e);
    tu_rmrf(dir);
    snprintf(a, sizeof a, "tokenize %s --text hi", missing);
    assert_int_equal(run(a, NULL, &o, &e), 1);
    assert_one_line(a, e);
    first = strstr(e, missing);
    if (!first || strstr(first + 1, missing)) fail_msg("ignis %s: expected the path once: %s", a, e);
    free(o), free(e);
    /* jsonl decode with a non-integer id: one line naming the line and the field */
    snprintf(a, sizeof a, "tokenize '%s' --decode --jsonl", tok);
    assert_int_equal(run(a, "{\"ids\":[1,\"x\"]}\n", &o, &e), 1);
    assert_one_line(a, e);
    assert_non_null(strstr(e, "line 1"));
    free(o), free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equals_form_gives_the_same_output_as_separate_value),
        cmocka_unit_test(test_equals_form_works_for_tokenize_and_convert),
        cmocka_unit_test(test_nan_and_infinite_sampling_values_are_refused),
        cmocka_unit_test(test_usage_errors_are_one_line),
        cmocka_unit_test(test_runtime_errors_say_it_once),
    };
    return cmocka_run_group_tests_name("cli options", tests, NULL, NULL);
}
