/* CSV files through libcsv: reading with a header, and atomic writing (temp + rename) so a
 * crash or a full disk never leaves half a report. */
#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

typedef struct reader {
    bench_table *t;
    char **cur;
    int ncur, cap;
    int line;     /* 1-based line of the record being parsed */
    int bad_line; /* first record whose field count differs from the header's */
    int oom;
} reader;

static void on_field(void *s, size_t len, void *user)
{
    reader *r = user;
    if (r->ncur == r->cap) {
        int cap = r->cap ? 2 * r->cap : 64;
        char **p = realloc(r->cur, sizeof(char *) * (size_t)cap);
        if (!p) {
            r->oom = 1;
            return;
        }
        r->cur = p;
        r->cap = cap;
    }
    char *d = malloc(len + 1);
    if (!d) {
        r->oom = 1;
        return;
    }
    memcpy(d, s, len);
    d[len] = 0;
    r->cur[r->ncur++] = d;
}

static void on_record(int c, void *user)
{
    reader *r = user;
    bench_table *t = r->t;
    r->line++;
    if (!t->header) {
        t->header = r->cur;
        t->ncols = r->ncur;
    } else {
        if (r->ncur != t->ncols && !r->bad_line) r->bad_line = r->line;
        char **row = calloc((size_t)t->ncols, sizeof(char *));
        char ***rows = realloc(t->rows, sizeof(char **) * (size_t)(t->nrows + 1));
        if (!row || !rows) {
            free(row);
            r->oom = 1;
            for (int i = 0; i < r->ncur; i++)
                free(r->cur[i]);
            free(r->cur);
            goto reset;
        }
        t->rows = rows;
        for (int i = 0; i < t->ncols; i++)
            row[i] = i < r->ncur ? r->cur[i] : strdup("");
        for (int i = t->ncols; i < r->ncur; i++)
            free(r->cur[i]);
        free(r->cur);
        t->rows[t->nrows++] = row;
    }
reset:
    r->cur = NULL;
    r->ncur = r->cap = 0;
    (void)c;
}

int bench_csv_read(const char *path, bench_table *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        bench_err("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct csv_parser p;
    csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL);
    reader r = {.t = out};
    char buf[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if (csv_parse(&p, buf, n, on_field, on_record, &r) != n) {
            bench_err("%s:%d: malformed CSV (%s)", path, r.line + 1, csv_strerror(csv_error(&p)));
            rc = -1;
            break;
        }
    if (!rc && csv_fini(&p, on_field, on_record, &r) != 0) {
        bench_err("%s:%d: malformed CSV (%s)", path, r.line + 1, csv_strerror(csv_error(&p)));
        rc = -1;
    }
    csv_free(&p);
    fclose(f);
    for (int i = 0; i < r.ncur; i++)
        free(r.cur[i]);
    free(r.cur);
    if (!rc && r.oom) {
        bench_err("%s: out of memory reading the CSV", path);
        rc = -1;
    }
    if (!rc && !out->header) {
        bench_err("%s: empty CSV (no header line)", path);
        rc = -1;
    }
    if (!rc && r.bad_line) {
        bench_err("%s:%d: the row has a different number of fields than the header (%d)", path, r.bad_line, out->ncols);
        rc = -1;
    }
    if (rc) bench_table_free(out);
    return rc;
}

void bench_table_free(bench_table *t)
{
    for (int i = 0; i < t->nrows; i++) {
        for (int j = 0; j < t->ncols; j++)
            free(t->rows[i][j]);
        free(t->rows[i]);
    }
    free(t->rows);
    if (t->header)
        for (int j = 0; j < t->ncols; j++)
            free(t->header[j]);
    free(t->header);
    memset(t, 0, sizeof *t);
}

const char *bench_table_get(const bench_table *t, int row, const char *col)
{
    for (int j = 0; j < t->ncols; j++)
        if (!strcmp(t->header[j], col)) return t->rows[row][j] ? t->rows[row][j] : "";
    return NULL;
}

double bench_table_num(const bench_table *t, int row, const char *col)
{
    const char *s = bench_table_get(t, row, col);
    char *e;
    if (!s || !*s) return NAN;
    double v = strtod(s, &e);
    return e == s || *e ? NAN : v;
}

static int write_line(FILE *f, const char *const *cells, int n)
{
    for (int i = 0; i < n; i++) {
        if (i && fputc(',', f) == EOF) return -1;
        const char *c = cells[i] ? cells[i] : "";
        /* quote only what needs it, so the file stays readable */
        if (strpbrk(c, ",\"\r\n") ? csv_fwrite(f, c, strlen(c)) != 0 : fputs(c, f) == EOF) return -1;
    }
    return fputc('\n', f) == EOF ? -1 : 0;
}

int bench_csv_write_atomic(const char *path, const char *const *header, int ncols, const char *const *cells, int nrows)
{
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (!tmp) {
        bench_err("%s: out of memory", path);
        return -1;
    }
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        bench_err("cannot write %s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    int bad = write_line(f, header, ncols);
    for (int i = 0; i < nrows && !bad; i++)
        bad = write_line(f, cells + (size_t)i * (size_t)ncols, ncols);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) bad = -1;
    if (fclose(f) != 0) bad = -1;
    if (bad || rename(tmp, path) != 0) {
        bench_err("cannot write %s: %s", path, strerror(errno ? errno : EIO));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

int bench_csv_write_owned(const char *path, const char *const *header, int ncols, char **cells, int nrows)
{
    int rc = bench_csv_write_atomic(path, header, ncols, (const char *const *)cells, nrows);
    for (size_t i = 0; i < (size_t)ncols * (size_t)nrows; i++)
        free(cells[i]);
    free(cells);
    return rc;
}

char *bench_cell(const char *fmt, double v)
{
    char b[64] = "";
    if (!isnan(v) && !isinf(v)) snprintf(b, sizeof b, fmt, v);
    return strdup(b);
}

void bench_point_path(const char *base, int point, int points, char *out, size_t cap)
{
    if (points <= 1) {
        snprintf(out, cap, "%s", base);
        return;
    }
    const char *dot = strrchr(base, '.');
    if (!dot || strchr(dot, '/')) dot = base + strlen(base);
    snprintf(out, cap, "%.*s.%d%s", (int)(dot - base), base, point, dot);
}

int bench_report_write(const char *path, const bench_row *rows, int n, bool append)
{
    int nc = bench_report_ncols();
    bench_table old = {0};
    if (append && access(path, F_OK) == 0) {
        if (bench_csv_read(path, &old) != 0) return -1;
        bool same = old.ncols == nc;
        for (int j = 0; same && j < nc; j++)
            same = !strcmp(old.header[j], bench_report_col(j));
        if (!same) {
            const char *v = old.nrows ? bench_table_get(&old, 0, "schema_version") : NULL;
            bench_err("%s is a report of another schema (version %s, %d columns; this is version %d, %d columns): "
                      "refusing to append (write to a new file)",
                      path, v && *v ? v : "unknown", old.ncols, BENCH_SCHEMA_VERSION, nc);
            bench_table_free(&old);
            return -1;
        }
    }
    int total = old.nrows + n;
    const char **cells = calloc((size_t)(total ? total : 1) * (size_t)nc, sizeof(char *));
    const char **hdr = calloc((size_t)nc, sizeof(char *));
    if (!cells || !hdr) {
        free(cells), free(hdr), bench_table_free(&old);
        bench_err("%s: out of memory", path);
        return -1;
    }
    for (int j = 0; j < nc; j++)
        hdr[j] = bench_report_col(j);
    for (int i = 0; i < old.nrows; i++)
        for (int j = 0; j < nc; j++)
            cells[(size_t)i * nc + j] = old.rows[i][j];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < nc; j++)
            cells[(size_t)(old.nrows + i) * nc + j] = rows[i].v[j];
    int rc = bench_csv_write_atomic(path, hdr, nc, cells, total);
    free(cells), free(hdr), bench_table_free(&old);
    return rc;
}
