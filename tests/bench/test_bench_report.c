/* The report CSV: schema, append/refuse, atomic writes, quoting, malformed files. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_test_util.h"

static const char *g_tmp;

static int setup(void **st)
{
    (void)st;
    g_tmp = strdup(tu_tmpdir("bench_report"));
    return 0;
}

static void make_row(bench_row *r, const char *config)
{
    assert_int_equal(bench_row_init(r), 0);
    bench_meta m = {.mode = "throughput",
                    .model = "synthetic:tiny",
                    .backend = "cpu",
                    .workload = "random",
                    .workload_hash = "00ff",
                    .config = config,
                    .seed = 3};
    bench_row_fill_meta(r, &m);
    bench_row_set(r, "output_tok_s", "%.1f", 123.5);
}

static void test_report_header_is_the_documented_schema(void **st)
{
    (void)st;
    char path[512];
    snprintf(path, sizeof path, "%s/schema.csv", g_tmp);
    bench_row r;
    make_row(&r, "concurrency=1,rate=inf");
    assert_int_equal(bench_report_write(path, &r, 1, false), 0);
    bench_row_free(&r);
    bench_table t;
    bt_read_csv(path, &t);
    assert_int_equal(t.ncols, bench_report_ncols());
    for (int i = 0; i < t.ncols; i++)
        assert_string_equal(t.header[i], bench_report_col(i));
    assert_string_equal(t.header[0], "schema_version");
    assert_int_equal(t.nrows, 1);
    assert_string_equal(bench_table_get(&t, 0, "schema_version"), "1");
    assert_string_equal(bench_table_get(&t, 0, "config"), "concurrency=1,rate=inf");
    assert_string_equal(bench_table_get(&t, 0, "output_tok_s"), "123.5");
    assert_string_equal(bench_table_get(&t, 0, "ignis_version"), ignis_version());
    assert_string_equal(bench_table_get(&t, 0, "energy_j"), ""); /* profiling columns: NA without a GPU */
    assert_true(strlen(bench_table_get(&t, 0, "date")) == 20);
    bench_table_free(&t);
    /* the documentation lists every column */
    char *doc = tu_read_file(tu_src("reports/README.md"), NULL);
    assert_non_null(doc);
    for (int i = 0; i < bench_report_ncols(); i++) {
        char needle[80];
        snprintf(needle, sizeof needle, "`%s`", bench_report_col(i));
        if (!strstr(doc, needle)) fail_msg("reports/README.md does not document column %s", bench_report_col(i));
    }
    free(doc);
}

static void test_report_appends_same_schema_and_refuses_another(void **st)
{
    (void)st;
    char path[512];
    snprintf(path, sizeof path, "%s/append.csv", g_tmp);
    bench_row a, b;
    make_row(&a, "first");
    make_row(&b, "second");
    assert_int_equal(bench_report_write(path, &a, 1, true), 0); /* new file */
    assert_int_equal(bench_report_write(path, &b, 1, true), 0);
    bench_table t;
    bt_read_csv(path, &t);
    assert_int_equal(t.nrows, 2);
    assert_string_equal(bench_table_get(&t, 0, "config"), "first");
    assert_string_equal(bench_table_get(&t, 1, "config"), "second");
    bench_table_free(&t);
    /* another schema: refused, file untouched */
    const char *other = tu_write_file(g_tmp, "other.csv", "schema_version,foo\n0,1\n");
    size_t before_len;
    char *before = tu_read_file(other, &before_len);
    assert_int_equal(bench_report_write(other, &a, 1, true), -1);
    assert_non_null(strstr(bench_errmsg(), "refusing to append"));
    size_t after_len;
    char *after = tu_read_file(other, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before), free(after);
    bench_row_free(&a), bench_row_free(&b);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_failed_write_leaves_nothing_half_written(void **st)
{
    (void)st;
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/atomic", g_tmp);
    mkdir(dir, 0755);
    /* the target is a directory: the rename fails after the temp file was written */
    snprintf(path, sizeof path, "%s/report.csv", dir);
    mkdir(path, 0755);
    bench_row r;
    make_row(&r, "x");
    assert_int_equal(bench_report_write(path, &r, 1, false), -1);
    assert_non_null(strstr(bench_errmsg(), "report.csv"));
    assert_int_equal(count_entries(dir), 1); /* only the directory: no temp file left */
    /* an existing report is replaced whole or not at all: a good write then a failing one */
    snprintf(path, sizeof path, "%s/ok.csv", dir);
    assert_int_equal(bench_report_write(path, &r, 1, false), 0);
    size_t n1;
    char *c1 = tu_read_file(path, &n1);
    char bad[700];
    snprintf(bad, sizeof bad, "%s/missing-dir/r.csv", dir);
    assert_int_equal(bench_report_write(bad, &r, 1, false), -1);
    size_t n2;
    char *c2 = tu_read_file(path, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(c1, c2, n1);
    free(c1), free(c2);
    bench_row_free(&r);
}

static void test_csv_quoting_round_trips(void **st)
{
    (void)st;
    char path[512];
    snprintf(path, sizeof path, "%s/quote.csv", g_tmp);
    const char *hdr[3] = {"a", "b", "c"};
    const char *cells[6] = {"plain", "with,comma", "with \"quotes\"", "multi\nline", "", "x"};
    assert_int_equal(bench_csv_write_atomic(path, hdr, 3, cells, 2), 0);
    bench_table t;
    bt_read_csv(path, &t);
    assert_int_equal(t.nrows, 2);
    for (int i = 0; i < 6; i++)
        assert_string_equal(t.rows[i / 3][i % 3], cells[i]);
    bench_table_free(&t);
}

static void test_malformed_csv_names_the_line(void **st)
{
    (void)st;
    const char *p = tu_write_file(g_tmp, "bad.csv", "a,b\n1,2\n3\n");
    bench_table t;
    assert_int_equal(bench_csv_read(p, &t), -1);
    assert_non_null(strstr(bench_errmsg(), "bad.csv:3:"));
    p = tu_write_file(g_tmp, "bad2.csv", "a,b\n1,\"unterminated\n");
    assert_int_equal(bench_csv_read(p, &t), -1);
    assert_non_null(strstr(bench_errmsg(), "bad2.csv"));
    p = tu_write_file(g_tmp, "empty.csv", "");
    assert_int_equal(bench_csv_read(p, &t), -1);
    assert_non_null(strstr(bench_errmsg(), "empty"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_header_is_the_documented_schema),
        cmocka_unit_test(test_report_appends_same_schema_and_refuses_another),
        cmocka_unit_test(test_failed_write_leaves_nothing_half_written),
        cmocka_unit_test(test_csv_quoting_round_trips),
        cmocka_unit_test(test_malformed_csv_names_the_line),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
