/* `ignis bench` modes end to end on synthetic:tiny (CPU): throughput sweeps, multi-turn
 * sessions, the generation grid, reports compared in one plot, the embedded default with its
 * plots and HTML page, and that page rendered by headless Chromium. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_test_util.h"

static const char *g_tmp;

static int setup(void **st)
{
    (void)st;
    g_tmp = strdup(tu_tmpdir("bench_cli"));
    return 0;
}

static void test_throughput_sweep_writes_a_row_per_point(void **st)
{
    (void)st;
    char args[2048];
    snprintf(args, sizeof args,
             "bench throughput --model synthetic:tiny --threads 2 --num-prompts 12 --random-input-len 32 "
             "--random-output-len 16 --concurrency 2,6 --no-progress --output '%s/t.csv' --requests-csv '%s/tr.csv' "
             "--timeline-csv '%s/tt.csv'",
             g_tmp, g_tmp, g_tmp);
    assert_int_equal(bt_run_cli(args), 0);
    char p[600];
    snprintf(p, sizeof p, "%s/t.csv", g_tmp);
    bench_table t;
    bt_read_csv(p, &t);
    assert_int_equal(t.nrows, 2);
    assert_string_equal(bench_table_get(&t, 0, "config"), "concurrency=2,rate=inf");
    assert_string_equal(bench_table_get(&t, 1, "config"), "concurrency=6,rate=inf");
    for (int r = 0; r < 2; r++) {
        assert_int_equal((int)bt_num(&t, r, "completed"), 12);
        assert_int_equal((int)bt_num(&t, r, "peak_concurrency"), r ? 6 : 2);
        assert_true(bt_num(&t, r, "output_tok_s") > 0);
        /* sampled on a timeline (how much depends on timing: only the range is pinned) */
        double kv = bt_num(&t, r, "kv_usage_peak");
        assert_true(kv >= 0 && kv <= 1);
        assert_true(bt_num(&t, r, "batch_size_mean") >= 0);
        assert_true(bt_num(&t, r, "decode_ms_mean") > 0);
        assert_string_equal(bench_table_get(&t, r, "backend"), "cpu");
        assert_int_equal((int)bt_num(&t, r, "preemptions"), 0);
    }
    assert_string_equal(bench_table_get(&t, 0, "workload_hash"), bench_table_get(&t, 1, "workload_hash"));
    bench_table_free(&t);
    snprintf(p, sizeof p, "%s/tr.1.csv", g_tmp);
    bt_read_csv(p, &t);
    assert_int_equal(t.nrows, 12);
    for (int r = 0; r < 12; r++) {
        assert_int_equal((int)bt_num(&t, r, "prompt_tokens"), 32);
        assert_int_equal((int)bt_num(&t, r, "output_tokens"), 16);
        assert_true(bt_num(&t, r, "ttft_ms") <= bt_num(&t, r, "e2e_ms"));
    }
    bench_table_free(&t);
    /* a second run appends to the same report */
    assert_int_equal(bt_run_cli(args), 0);
    snprintf(p, sizeof p, "%s/t.csv", g_tmp);
    bt_read_csv(p, &t);
    assert_int_equal(t.nrows, 4);
    bench_table_free(&t);
}

static void test_multiturn_replays_sessions_in_process(void **st)
{
    (void)st;
    TU_ASSET_OR_SKIP(mt_s, "workloads/mt_bench_question.jsonl");
    char *mt = strdup(mt_s); /* tu_asset's buffer is reused */
    TU_ASSET_OR_SKIP(tok, "tokenizers/llama2");
    char args[2048];
    snprintf(args, sizeof args,
             "bench throughput --model synthetic:tiny --threads 2 --dataset multiturn --dataset-path '%s' "
             "--tokenizer '%s' --num-prompts 3 --output-len 8 --concurrency 4 --no-progress --output '%s/mt.csv'",
             mt, tok, g_tmp);
    free(mt);
    assert_int_equal(bt_run_cli(args), 0);
    char p[600];
    snprintf(p, sizeof p, "%s/mt.csv", g_tmp);
    bench_table t;
    bt_read_csv(p, &t);
    assert_int_equal((int)bt_num(&t, 0, "completed"), 6); /* 3 conversations x 2 turns */
    assert_int_equal((int)bt_num(&t, 0, "failed"), 0);
    bench_table_free(&t);
}

static void expect_file(const char *dir, const char *name, const char *magic);

static void test_generation_grid_reports_mean_and_stddev(void **st)
{
    (void)st;
    char args[1024];
    snprintf(
        args, sizeof args,
        "bench generation --model synthetic:tiny --threads 2 -b 1,3 -p 16 -n 6 -r 2 --warmup 0 --output '%s/g.csv'",
        g_tmp);
    assert_int_equal(bt_run_cli(args), 0);
    snprintf(args, sizeof args,
             "bench generation --model synthetic:tiny --threads 2 -b 2 -p 8 -n 4 -r 2 --depth 24 --output '%s/g.csv'",
             g_tmp);
    assert_int_equal(bt_run_cli(args), 0);
    char p[600];
    snprintf(p, sizeof p, "%s/g.csv", g_tmp);
    bench_table t;
    bt_read_csv(p, &t);
    assert_int_equal(t.nrows, 3);
    assert_string_equal(bench_table_get(&t, 0, "config"), "b=1,p=16,n=6,depth=0");
    assert_string_equal(bench_table_get(&t, 2, "config"), "b=2,p=8,n=4,depth=24");
    for (int r = 0; r < 3; r++) {
        assert_true(bt_num(&t, r, "prefill_tok_s") > 0);
        assert_true(bt_num(&t, r, "decode_tok_s") > 0);
        assert_true(bt_num(&t, r, "decode_tok_s_std") >= 0);
        assert_true(bt_num(&t, r, "itl_ms_p50") > 0);
        assert_int_equal((int)bt_num(&t, r, "repetitions"), 2);
        assert_non_null(strchr(bench_table_get(&t, r, "samples"), ';')); /* two raw samples */
    }
    assert_int_equal((int)bt_num(&t, 1, "completed"), 6); /* 3 requests x 2 repetitions */
    bench_table_free(&t);
    /* its plot, into a folder whose parents do not exist yet */
    snprintf(args, sizeof args, "bench plot '%s/g.csv' --output '%s/plots/grid'", g_tmp, g_tmp);
    assert_int_equal(bt_run_cli(args), 0);
    snprintf(p, sizeof p, "%s/plots/grid", g_tmp);
    expect_file(p, "generation.png", "PNG");
    expect_file(p, "generation.svg", "<svg");
    expect_file(p, "index.html", "<table>");
}

static void expect_file(const char *dir, const char *name, const char *magic)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    size_t n;
    char *c = tu_read_file(p, &n);
    if (!c) fail_msg("%s was not written", p);
    if (n < 200) fail_msg("%s is only %zu bytes", p, n);
    if (magic && !memmem(c, n < 4096 ? n : 4096, magic, strlen(magic))) fail_msg("%s does not contain '%s'", p, magic);
    free(c);
}

static const char *chromium(void)
{
    static const char *const names[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome",
                                        NULL};
    for (int i = 0; names[i]; i++)
        if (access(names[i], X_OK) == 0) return names[i];
    return NULL;
}

static size_t screenshot(const char *browser, const char *html, const char *png, int height)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,%d "
             "--screenshot='%s' 'file://%s' >/dev/null 2>&1",
             browser, height, png, html);
    if (system(cmd) != 0) return 0;
    struct stat s;
    return stat(png, &s) == 0 ? (size_t)s.st_size : 0;
}

/* Rendered by headless Chromium in a window of the page's height, the page's screenshot is
 * far from a blank page's (PNG compresses a blank page to almost nothing). */
static void expect_renders(const char *html, int height)
{
    const char *browser = chromium();
    if (!browser) {
        if (tu_assets_required()) fail_msg("chromium not installed (.ci/setup installs it)");
        print_message("skipping the render check: no chromium\n");
        return;
    }
    const char *blank = tu_write_file(g_tmp, "blank.html", "<!DOCTYPE html><html><body></body></html>\n");
    char shot[800], shot0[800];
    snprintf(shot, sizeof shot, "%s.png", html);
    snprintf(shot0, sizeof shot0, "%s/blank.png", g_tmp);
    size_t s_page = screenshot(browser, html, shot, height), s_blank = screenshot(browser, blank, shot0, height);
    print_message("screenshot %s: %zu bytes (blank page: %zu)\n", shot, s_page, s_blank);
    assert_true(s_blank > 0);
    if (s_page < 10 * s_blank) fail_msg("%s renders almost blank: %zu bytes vs %zu blank", html, s_page, s_blank);
}

/* The x values of a compare-I.dat, in order (its lines: "x tok/s ttft e2e min max"). */
static int dat_xs(const char *dir, int i, double *x, int cap)
{
    char p[800];
    snprintf(p, sizeof p, "%s/compare-%d.dat", dir, i);
    FILE *f = fopen(p, "r");
    if (!f) fail_msg("%s was not written", p);
    double v[6];
    int n = 0;
    while (n < cap && fscanf(f, "%lf %lf %lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6)
        x[n++] = v[0];
    fclose(f);
    return n;
}

/* Several reports give one comparison: each report's sweep (repeated points merged) on the
 * shared axis, the figure and a page naming every report. Reports that share no axis, or
 * hold no sweep at all, get exit 1 and say why. */
static void test_plot_compares_reports_on_one_axis(void **st)
{
    (void)st;
    char args[2048];
    snprintf(args, sizeof args,
             "bench throughput --model synthetic:tiny --threads 2 --num-prompts 8 --random-input-len 16 "
             "--random-output-len 8 --concurrency 1,4 --max-batch-size 2 --no-progress --output '%s/b.csv'",
             g_tmp);
    assert_int_equal(bt_run_cli(args), 0);
    snprintf(args, sizeof args, "bench plot '%s/t.csv' '%s/b.csv' --output '%s/cmp'", g_tmp, g_tmp, g_tmp);
    assert_int_equal(bt_run_cli(args), 0);
    char d[700];
    snprintf(d, sizeof d, "%s/cmp", g_tmp);
    expect_file(d, "compare.png", "PNG");
    expect_file(d, "compare.svg", "<svg");
    double x[8];
    assert_int_equal(dat_xs(d, 0, x, 8), 2); /* t.csv: two runs of concurrency 2 and 6 */
    assert_true(x[0] == 2 && x[1] == 6);
    assert_int_equal(dat_xs(d, 1, x, 8), 2);
    assert_true(x[0] == 1 && x[1] == 4);
    char p[800];
    snprintf(p, sizeof p, "%s/index.html", d);
    char *html = tu_read_file(p, NULL);
    assert_non_null(html);
    assert_non_null(strstr(html, "<svg"));
    assert_non_null(strstr(html, "/t.csv"));
    assert_non_null(strstr(html, "/b.csv"));
    free(html);
    expect_renders(p, 900); /* a table and one figure */
    /* without --output: compare/ beside the first report */
    snprintf(args, sizeof args, "bench plot '%s/t.csv' '%s/b.csv'", g_tmp, g_tmp);
    assert_int_equal(bt_run_cli(args), 0);
    snprintf(d, sizeof d, "%s/compare", g_tmp);
    expect_file(d, "index.html", "<table>");

    snprintf(args, sizeof args,
             "bench throughput --model synthetic:tiny --threads 2 --num-prompts 6 --random-input-len 16 "
             "--random-output-len 8 --request-rate 200,400 --concurrency 4 --no-progress --output '%s/r.csv'",
             g_tmp);
    assert_int_equal(bt_run_cli(args), 0);
    char *err = NULL;
    snprintf(args, sizeof args, "bench plot '%s/t.csv' '%s/r.csv' --output '%s/cmp2'", g_tmp, g_tmp, g_tmp);
    assert_int_equal(tu_run_cli(args, NULL, NULL, &err), 1);
    if (!strstr(err, "share no axis")) fail_msg("unexpected message: %s", err);
    free(err);
    snprintf(args, sizeof args, "bench plot '%s/t.csv' '%s/g.csv' --output '%s/cmp3'", g_tmp, g_tmp, g_tmp);
    assert_int_equal(tu_run_cli(args, NULL, NULL, &err), 1);
    if (!strstr(err, "g.csv has no throughput or serving rows")) fail_msg("unexpected message: %s", err);
    free(err);
}

static void test_default_bench_writes_report_plots_and_page(void **st)
{
    (void)st;
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(g_tmp), 0);
    int rc = bt_run_cli("bench --num-prompts 10 --threads 2 --no-progress");
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    char d[700];
    snprintf(d, sizeof d, "%s/reports", g_tmp);
    bench_table t;
    char p[800];
    snprintf(p, sizeof p, "%s/latest.csv", d);
    bt_read_csv(p, &t);
    assert_int_equal(t.nrows, 1);
    assert_string_equal(bench_table_get(&t, 0, "model"), "synthetic:tiny");
    assert_int_equal((int)bt_num(&t, 0, "completed"), 10);
    /* the commit of this build: HEAD of the source tree (not that of an older configure) */
    const char *src = getenv("IGNIS_SOURCE_DIR");
    char cmd[1200], head[64] = "";
    snprintf(cmd, sizeof cmd, "git -C '%s' rev-parse --short=12 HEAD 2>/dev/null", src ? src : ".");
    FILE *g = popen(cmd, "r");
    if (g && fgets(head, sizeof head, g)) head[strcspn(head, "\n")] = 0;
    if (g) pclose(g);
    if (*head) {
        const char *c = bench_table_get(&t, 0, "git_commit");
        if (strncmp(c, head, strlen(head))) fail_msg("report names commit %s, the tree is at %s", c, head);
    }
    bench_table_free(&t);
    expect_file(d, "latest-requests.csv", "itl_ms_list");
    expect_file(d, "latest-timeline.csv", "kv_usage");
    snprintf(d, sizeof d, "%s/reports/latest", g_tmp);
    static const char *const figs[] = {"cdf", "throughput", "timeline", "requests"};
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.png", figs[i]);
        expect_file(d, name, "PNG");
        snprintf(name, sizeof name, "%s.svg", figs[i]);
        expect_file(d, name, "<svg");
    }
    expect_file(d, "index.html", "<table>");
    snprintf(p, sizeof p, "%s/index.html", d);
    char *html = tu_read_file(p, NULL);
    assert_non_null(strstr(html, "<svg"));
    assert_null(strstr(html, "src=\"http")); /* self-contained: nothing fetched */
    assert_null(strstr(html, "<img"));
    free(html);

    expect_renders(p, 2000); /* a table and four figures */
}

static void test_bad_usage_exits_2_and_bad_files_1(void **st)
{
    (void)st;
    assert_int_equal(tu_run_cli("bench nosuchmode", NULL, NULL, NULL), 2);
    assert_int_equal(tu_run_cli("bench throughput --frobnicate", NULL, NULL, NULL), 2);
    assert_int_equal(tu_run_cli("bench throughput --concurrency 0", NULL, NULL, NULL), 2);
    assert_int_equal(tu_run_cli("bench throughput --sweep auto", NULL, NULL, NULL), 2); /* needs --slo */
    char *err = NULL;
    assert_int_equal(
        tu_run_cli("bench throughput --model synthetic:tiny --workload /nonexistent.jsonl", NULL, NULL, &err), 1);
    assert_non_null(strstr(err, "/nonexistent.jsonl"));
    free(err);
    char *out = NULL;
    assert_int_equal(tu_run_cli("bench --help", NULL, &out, NULL), 0);
    assert_non_null(strstr(out, "generation"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_throughput_sweep_writes_a_row_per_point),
        cmocka_unit_test(test_multiturn_replays_sessions_in_process),
        cmocka_unit_test(test_generation_grid_reports_mean_and_stddev),
        cmocka_unit_test(test_plot_compares_reports_on_one_axis),
        cmocka_unit_test(test_default_bench_writes_report_plots_and_page),
        cmocka_unit_test(test_bad_usage_exits_2_and_bad_files_1),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
