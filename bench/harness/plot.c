/*
 * ignis bench plot REPORT.csv [REPORT.csv ...] [--output DIR]: gnuplot figures (PNG and SVG) and one
 * self-contained HTML page (tables + the SVGs inlined) per report. No Python needed.
 *
 * Figures (each only when its data exists):
 *   cdf          latency CDFs of TTFT, ITL and E2E (per-request CSVs; one curve per row)
 *   throughput   output tok/s against concurrency (or request rate), p99 TTFT and E2E on y2
 *   timeline     KV-cache usage and batch size (or in-flight requests) over time
 *   requests     per-request timeline: send -> first token -> end, one line per request
 *   generation   decode and prefill tok/s per configuration of a generation grid
 *
 * Several reports (engines, commits, settings) give one comparison instead: compare.png/.svg
 * (every report's tok/s and p99 TTFT against the shared sweep axis) and its page.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "requests_data.h"

/* pngcairo when this gnuplot has it (antialiased), else libgd's png. */
static const char *png_terminal(void)
{
    static const char *t;
    if (!t) t = system("gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1") == 0 ? "pngcairo" : "png";
    return t;
}

/* Runs a gnuplot script body twice, for name.png and name.svg (w x h) in dir. The body is
 * written out twice rather than `replot`, which does not repeat a multiplot. */
static int gnuplot_sized(const char *dir, const char *name, int w, int h, const char *body)
{
    char gp[1024];
    snprintf(gp, sizeof gp, "%s/%s.gp", dir, name);
    FILE *f = fopen(gp, "w");
    if (!f) return bench_err("cannot write %s: %s", gp, strerror(errno)), -1;
    fprintf(f, "set terminal %s size %d,%d font ',10'\nset output '%s/%s.png'\n%s\n", png_terminal(), w, h, dir, name,
            body);
    fprintf(f, "set terminal svg size %d,%d dynamic font 'sans,11' background '#ffffff'\nset output '%s/%s.svg'\n%s\n",
            w, h, dir, name, body);
    fclose(f);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>'%s/%s.log'", gp, dir, name);
    if (system(cmd) != 0) return bench_err("gnuplot failed on %s (see %s/%s.log)", gp, dir, name), -1;
    return 0;
}

static int gnuplot(const char *dir, const char *name, const char *body)
{
    return gnuplot_sized(dir, name, 900, 540, body);
}

static FILE *dat(const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f) bench_err("cannot write %s: %s", p, strerror(errno));
    return f;
}

static void cdf_block(FILE *f, const double *x, int n)
{
    double *s = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!s) return;
    memcpy(s, x, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof(double), bench_cmp_double);
    /* at most 2,000 points a curve: the SVG stays small */
    int step = n > 2000 ? n / 2000 : 1;
    for (int i = 0; i < n; i += step)
        fprintf(f, "%g %g\n", s[i], (double)(i + 1) / n);
    if (n) fprintf(f, "%g 1\n", s[n - 1]);
    fprintf(f, "\n\n");
    free(s);
}

/* Also hands back the first row's samples that could be read (row *first_row, -1 when
 * none) for the requests figure, so no per-request CSV is read twice. */
static int plot_cdfs(const char *report, const bench_table *t, const char *dir, int *made, bench_samples *first,
                     int *first_row)
{
    static const char *const metric[3] = {"ttft", "itl", "e2e"};
    FILE *f[3] = {0};
    char plot[3][4096] = {"", "", ""};
    size_t pl[3] = {0};
    int idx[3] = {0}, rc = 0;
    for (int m = 0; m < 3 && !rc; m++) {
        char name[64];
        snprintf(name, sizeof name, "cdf_%s.dat", metric[m]);
        if (!(f[m] = dat(dir, name))) rc = -1;
    }
    /* each row's per-request CSV is read once, for the three curves */
    for (int r = 0; r < t->nrows && !rc; r++) {
        const char *rq = bench_table_get(t, r, "requests_csv");
        bench_samples s;
        if (!rq || !*rq || bench_samples_load(report, rq, &s) != 0) continue;
        for (int m = 0; m < 3; m++) {
            int n;
            char key[16];
            snprintf(key, sizeof key, "%s_ms_p50", metric[m]);
            const double *x = bench_samples_for(&s, key, &n);
            if (!x || n <= 0) continue;
            cdf_block(f[m], x, n);
            pl[m] += (size_t)snprintf(plot[m] + pl[m], sizeof plot[m] - pl[m],
                                      "%s'%s/cdf_%s.dat' index %d with lines lw 2 title '%s'", idx[m] ? ", " : "plot ",
                                      dir, metric[m], idx[m], bench_table_get(t, r, "config"));
            idx[m]++;
        }
        if (*first_row < 0)
            *first = s, *first_row = r;
        else
            bench_samples_free(&s);
    }
    for (int m = 0; m < 3; m++)
        if (f[m]) fclose(f[m]);
    if (rc || idx[0] + idx[1] + idx[2] == 0) return rc;
    char body[8192];
    size_t k = (size_t)snprintf(body, sizeof body,
                                "set multiplot layout 1,3 title 'Latency CDFs'\nset grid\nset key bottom right "
                                "font ',8'\nset ylabel 'fraction of samples'\nset yrange [0:1]\n");
    for (int m = 0; m < 3; m++)
        if (idx[m])
            k += (size_t)snprintf(body + k, sizeof body - k, "set xlabel '%s (ms)'\nset title '%s'\n%s\n", metric[m],
                                  metric[m], plot[m]);
    snprintf(body + k, sizeof body - k, "unset multiplot\n");
    if (gnuplot_sized(dir, "cdf", 1200, 420, body) != 0) return -1;
    made[0] = 1;
    return 0;
}

/* The sweep's points of a report, one line each in x order: "x tok/s TTFT-p99 E2E-p99
 * tok/s-min tok/s-max". The x axis is what the sweep varied: the request rate when the
 * concurrency stayed the same, else the concurrency; an unlimited value is drawn at its
 * measured figure. Repeated runs of a point (rows with the same x) become one point: the
 * medians, with tok/s' min and max as a bar. Returns the rows used (generation rows are
 * not sweep points), or -1. */
static int throughput_points(const bench_table *t, FILE *f, bool *by_rate_out)
{
    int n = 0;
    bool rate_varies = false, conc_varies = false;
    double c0 = NAN, r0 = NAN;
    for (int r = 0; r < t->nrows; r++) {
        const char *mode = bench_table_get(t, r, "mode");
        if (!mode || !strcmp(mode, "generation")) continue;
        double c = bench_table_num(t, r, "concurrency"), rate = bench_table_num(t, r, "request_rate");
        if (n == 0) c0 = c, r0 = rate;
        conc_varies |= !(c == c0 || (isnan(c) && isnan(c0)));
        rate_varies |= !(rate == r0 || (isnan(rate) && isnan(r0)));
        n++;
    }
    bool by_rate = rate_varies && !conc_varies;
    *by_rate_out = by_rate;
    double(*pt)[4] = calloc((size_t)(n ? n : 1), sizeof *pt);
    if (!pt) return bench_err("plot: out of memory"), -1;
    int m = 0;
    for (int r = 0; r < t->nrows; r++) {
        const char *mode = bench_table_get(t, r, "mode");
        if (!mode || !strcmp(mode, "generation")) continue;
        double x = by_rate ? bench_table_num(t, r, "request_rate") : bench_table_num(t, r, "concurrency");
        if (isinf(x) || isnan(x))
            x = by_rate ? bench_table_num(t, r, "req_per_s") : bench_table_num(t, r, "peak_concurrency");
        pt[m][0] = x, pt[m][1] = bench_table_num(t, r, "output_tok_s"), pt[m][2] = bench_table_num(t, r, "ttft_ms_p99");
        pt[m][3] = bench_table_num(t, r, "e2e_ms_p99");
        m++;
    }
    qsort(pt, (size_t)m, sizeof *pt, bench_cmp_double); /* by x: the first member */
    double col[3][64];
    for (int i = 0; i < m;) {
        int j = i;
        while (j < m && pt[j][0] == pt[i][0])
            j++;
        int k = j - i < 64 ? j - i : 64;
        for (int c = 0; c < 3; c++) {
            for (int q = 0; q < k; q++)
                col[c][q] = pt[i + q][c + 1];
            qsort(col[c], (size_t)k, sizeof(double), bench_cmp_double);
        }
        double med[3];
        for (int c = 0; c < 3; c++)
            med[c] = k % 2 ? col[c][k / 2] : (col[c][k / 2 - 1] + col[c][k / 2]) / 2;
        fprintf(f, "%g %g %g %g %g %g\n", pt[i][0], med[0], med[1], med[2], col[0][0], col[0][k - 1]);
        i = j;
    }
    free(pt);
    return n;
}

static const char *axis_label(bool by_rate) { return by_rate ? "request rate (req/s)" : "concurrency"; }

static int plot_throughput(const bench_table *t, const char *dir, int *made)
{
    FILE *f = dat(dir, "throughput.dat");
    if (!f) return -1;
    bool by_rate;
    int n = throughput_points(t, f, &by_rate);
    fclose(f);
    if (n <= 0) return n;
    char body[2048];
    snprintf(body, sizeof body,
             "set title 'Throughput and tail latency'\nset grid\nset xlabel '%s'\nset ylabel 'output tok/s'\n"
             "set y2label 'p99 latency (ms)'\nset ytics nomirror\nset y2tics\nset yrange [0:*]\nset y2range [0:*]\n"
             "set key top left\n%s"
             "plot '%s/throughput.dat' using 1:2:5:6 with yerrorlines lw 2 pt 7 title 'output tok/s (median, "
             "min-max)', "
             "'' using 1:3 axes x1y2 with linespoints lw 2 pt 5 title 'TTFT p99', "
             "'' using 1:4 axes x1y2 with linespoints lw 2 pt 9 title 'E2E p99'",
             axis_label(by_rate), n < 2 ? "" /* one point: no log axis */ : "set logscale x 2\n", dir);
    made[1] = 1;
    return gnuplot(dir, "throughput", body);
}

static int plot_timeline(const char *report, const bench_table *t, const char *dir, int *made)
{
    for (int r = 0; r < t->nrows; r++) {
        const char *tl = bench_table_get(t, r, "timeline_csv");
        if (!tl || !*tl) continue;
        bench_table d;
        char *path = bench_resolve_beside(report, tl);
        int bad = !path || bench_csv_read(path, &d) != 0;
        free(path);
        if (bad) continue;
        FILE *f = dat(dir, "timeline.dat");
        if (!f) {
            bench_table_free(&d);
            return -1;
        }
        bool kv = false;
        for (int i = 0; i < d.nrows; i++) {
            double kvu = bench_table_num(&d, i, "kv_usage"), bs = bench_table_num(&d, i, "batch_size"),
                   inf = bench_table_num(&d, i, "in_flight");
            kv |= !isnan(kvu);
            fprintf(f, "%g %g %g %g %g\n", bench_table_num(&d, i, "t_s"), isnan(kvu) ? 0 : 100 * kvu,
                    isnan(bs) ? inf : bs, inf, bench_table_num(&d, i, "tok_s"));
        }
        fclose(f);
        bench_table_free(&d);
        char body[2048];
        snprintf(body, sizeof body,
                 "set title 'Over time (%s)'\nset grid\nset xlabel 'time (s)'\nset ylabel 'batch size / in flight'\n"
                 "set y2label '%s'\nset ytics nomirror\nset y2tics\nset key top right\n"
                 "plot '%s/timeline.dat' using 1:3 with steps lw 2 title 'batch size', '' using 1:4 with steps lw 1 "
                 "title 'requests in flight', '' using 1:%d axes x1y2 with lines lw 2 title '%s'",
                 bench_table_get(t, r, "config"), kv ? "KV-cache usage (%)" : "tok/s", dir, kv ? 2 : 5,
                 kv ? "KV usage %" : "tok/s");
        made[2] = 1;
        return gnuplot(dir, "timeline", body);
    }
    return 0;
}

/* The per-request timeline of row r (its samples s); nothing when r < 0. */
static int plot_requests(const bench_table *t, const bench_samples *s, int r, const char *dir, int *made)
{
    if (r < 0) return 0;
    FILE *f = dat(dir, "requests.dat");
    if (!f) return -1;
    int step = s->n_req > 1000 ? s->n_req / 1000 : 1;
    for (int i = 0; i < s->n_req; i += step)
        fprintf(f, "%d %g %g %g\n", i, s->sent[i], s->first[i] >= 0 ? s->first[i] : s->end[i], s->end[i]);
    fclose(f);
    char body[2048];
    snprintf(body, sizeof body,
             "set title 'Requests (%s): waiting for the first token, then decoding'\nset grid\nset xlabel 'time (s)'\n"
             "set ylabel 'request'\nset key top left\n"
             "plot '%s/requests.dat' using 2:1:($3-$2):(0) with vectors nohead lw 1 lc rgb '#d95f02' title 'send -> "
             "first token', '' using 3:1:($4-$3):(0) with vectors nohead lw 1 lc rgb '#1b9e77' title 'decode'",
             bench_table_get(t, r, "config"), dir);
    made[3] = 1;
    return gnuplot(dir, "requests", body);
}

static int plot_generation(const bench_table *t, const char *dir, int *made)
{
    FILE *f = dat(dir, "generation.dat");
    if (!f) return -1;
    int n = 0;
    for (int r = 0; r < t->nrows; r++) {
        const char *mode = bench_table_get(t, r, "mode");
        if (!mode || strcmp(mode, "generation")) continue;
        fprintf(f, "%d \"%s\" %g %g %g %g\n", n++, bench_table_get(t, r, "config"),
                bench_table_num(t, r, "decode_tok_s"), bench_table_num(t, r, "decode_tok_s_std"),
                bench_table_num(t, r, "prefill_tok_s"), bench_table_num(t, r, "prefill_tok_s_std"));
    }
    fclose(f);
    if (!n) return 0;
    char body[2048];
    snprintf(
        body, sizeof body,
        "set title 'Generation grid: mean and stddev over repetitions'\nset grid y\nset ylabel 'decode tok/s'\n"
        "set y2label 'prefill tok/s'\nset ytics nomirror\nset y2tics\nset xtics rotate by -30\nset key top left\n"
        "set style fill solid 0.6\nset boxwidth 0.35\nset xrange [-0.6:%d.6]\nset yrange [0:*]\nset y2range [0:*]\n"
        "plot '%s/generation.dat' using ($1-0.2):3:xtic(2) with boxes title 'decode tok/s', '' using ($1-0.2):3:4 "
        "with yerrorbars lc rgb 'black' notitle, '' using ($1+0.2):5 axes x1y2 with boxes title 'prefill tok/s', "
        "'' using ($1+0.2):5:6 axes x1y2 with yerrorbars lc rgb 'black' notitle",
        n - 1, dir);
    made[4] = 1;
    return gnuplot(dir, "generation", body);
}

static void html_escape(FILE *f, const char *s)
{
    for (; s && *s; s++)
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
}

static void inline_svg(FILE *f, const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s.svg", dir, name);
    FILE *s = fopen(p, "r");
    if (!s) return;
    char buf[8192];
    size_t n;
    bool body = false;
    fputs("<figure>", f);
    /* drop the XML prolog and DOCTYPE: inline SVG starts at <svg */
    while ((n = fread(buf, 1, sizeof buf - 1, s)) > 0) {
        buf[n] = 0;
        char *start = buf;
        if (!body) {
            char *t = strstr(buf, "<svg");
            if (!t) continue;
            start = t;
            body = true;
        }
        fputs(start, f);
    }
    fclose(s);
    fputs("</figure>\n", f);
}

static const char *const k_html_cols[] = {
    "mode",          "config",       "completed",     "failed",      "duration_s", "req_per_s",  "output_tok_s",
    "total_tok_s",   "ttft_ms_p50",  "ttft_ms_p99",   "tpot_ms_p50", "itl_ms_p50", "itl_ms_p99", "e2e_ms_p99",
    "prefill_tok_s", "decode_tok_s", "kv_usage_peak", "preemptions", "valid",      NULL};

/* Opens DIR/index.html's temporary twin and writes the page's head (title: what, escaped);
 * html_end renames it into place. */
static FILE *html_begin(const char *dir, const char *what, char *path, size_t np, char *tmp, size_t nt)
{
    snprintf(path, np, "%s/index.html", dir);
    snprintf(tmp, nt, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return bench_err("cannot write %s: %s", tmp, strerror(errno)), NULL;
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>ignis bench: ");
    html_escape(f, what);
    fprintf(f, "</title>\n<style>body{font-family:sans-serif;margin:24px;color:#222;background:#fff}"
               "table{border-collapse:collapse;font-size:13px;margin:12px 0}td,th{border:1px solid #bbb;padding:4px "
               "8px;text-align:right}th{background:#e8eef7}td:nth-child(2),td:first-child{text-align:left}"
               "figure{margin:16px 0}svg{max-width:100%%;height:auto}.bad{background:#fdd}</style></head><body>\n");
    return f;
}

static int html_end(FILE *f, const char *path, const char *tmp)
{
    fprintf(f, "</body></html>\n");
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return bench_err("cannot write %s: %s", path, strerror(errno)), -1;
    }
    return 0;
}

/* The run's identity as one line: model, backend, ignis version and commit, GPU, host, date. */
static void html_identity(FILE *f, const bench_table *t)
{
    if (!t->nrows) return;
    fprintf(f, " &mdash; model <b>");
    html_escape(f, bench_table_get(t, 0, "model"));
    fprintf(f, "</b>, backend ");
    html_escape(f, bench_table_get(t, 0, "backend"));
    fprintf(f, ", ignis ");
    html_escape(f, bench_table_get(t, 0, "ignis_version"));
    fprintf(f, " (");
    html_escape(f, bench_table_get(t, 0, "git_commit"));
    fprintf(f, "), GPU ");
    const char *g = bench_table_get(t, 0, "gpu_name");
    html_escape(f, g && *g ? g : "none");
    fprintf(f, ", host ");
    html_escape(f, bench_table_get(t, 0, "host"));
    fprintf(f, ", ");
    html_escape(f, bench_table_get(t, 0, "date"));
}

static int write_html(const char *report, const bench_table *t, const char *dir, const int *made)
{
    char path[1024], tmp[1100];
    FILE *f = html_begin(dir, report, path, sizeof path, tmp, sizeof tmp);
    if (!f) return -1;
    fprintf(f, "<h1>ignis bench report</h1>\n<p>");
    html_escape(f, report);
    html_identity(f, t);
    fprintf(f, "</p>\n<table><tr>");
    for (int c = 0; k_html_cols[c]; c++)
        fprintf(f, "<th>%s</th>", k_html_cols[c]);
    fprintf(f, "</tr>\n");
    for (int r = 0; r < t->nrows; r++) {
        const char *v = bench_table_get(t, r, "valid");
        fprintf(f, "<tr%s>", v && !strcmp(v, "0") ? " class='bad'" : "");
        for (int c = 0; k_html_cols[c]; c++) {
            fprintf(f, "<td>");
            html_escape(f, bench_table_get(t, r, k_html_cols[c]));
            fprintf(f, "</td>");
        }
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table>\n");
    for (int r = 0; r < t->nrows; r++) {
        const char *why = bench_table_get(t, r, "invalid_reasons");
        if (why && *why) {
            fprintf(f, "<p class='bad'>row %d invalid: ", r + 1);
            html_escape(f, why);
            fprintf(f, "</p>\n");
        }
    }
    static const char *const names[5] = {"cdf", "throughput", "timeline", "requests", "generation"};
    for (int i = 0; i < 5; i++)
        if (made[i]) inline_svg(f, dir, names[i]);
    return html_end(f, path, tmp);
}

/* mkdir -p: the output folder and any missing parents. */
static int make_dirs(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return errno = ENAMETOOLONG, -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int bench_plot_report(const char *report, const char *dir)
{
    bench_table t;
    if (bench_csv_read(report, &t) != 0) return -1;
    if (bench_report_col_index("schema_version") < 0 || !bench_table_get(&t, 0, "schema_version")) {
        bench_table_free(&t);
        return bench_err("%s is not an ignis bench report (no schema_version column)", report), -1;
    }
    if (make_dirs(dir) != 0) {
        bench_table_free(&t);
        return bench_err("cannot create %s: %s", dir, strerror(errno)), -1;
    }
    int made[5] = {0}, rc = 0, first_row = -1;
    bench_samples first = {0};
    if (!rc) rc = plot_cdfs(report, &t, dir, made, &first, &first_row);
    if (!rc) rc = plot_throughput(&t, dir, made);
    if (!rc) rc = plot_timeline(report, &t, dir, made);
    if (!rc) rc = plot_requests(&t, &first, first_row, dir, made);
    if (!rc) rc = plot_generation(&t, dir, made);
    if (!rc) rc = write_html(report, &t, dir, made);
    bench_samples_free(&first);
    bench_table_free(&t);
    return rc;
}

/* A report's name in a legend: its file name without folder and .csv (quotes dropped: the
 * name goes into a gnuplot string). */
static void report_label(const char *report, char *out, size_t n)
{
    const char *b = strrchr(report, '/');
    snprintf(out, n, "%s", b ? b + 1 : report);
    char *dot = strrchr(out, '.');
    if (dot && !strcmp(dot, ".csv")) *dot = 0;
    for (char *c = out; *c; c++)
        if (*c == '\'' || *c == '"') *c = '_';
}

/* Writes DIR/compare-I.dat for every report (its sweep points) and checks that they share
 * one axis; returns 0, and by_rate. */
static int compare_points(char *const *reports, const bench_table *t, int n, const char *dir, bool *by_rate)
{
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "compare-%d.dat", i);
        FILE *f = dat(dir, name);
        if (!f) return -1;
        bool br;
        int rows = throughput_points(&t[i], f, &br);
        fclose(f);
        if (rows < 0) return -1;
        if (rows == 0)
            return bench_err("%s has no throughput or serving rows: only sweeps can be compared", reports[i]), -1;
        if (i > 0 && br != *by_rate)
            return bench_err("%s varies the %s and %s the %s: they share no axis", reports[0], axis_label(*by_rate),
                             reports[i], axis_label(br)),
                   -1;
        *by_rate = br;
    }
    return 0;
}

/* compare.png/.svg: output tok/s (median, min-max) and p99 TTFT against the sweep's axis,
 * one line per report. */
static int plot_compare(char *const *reports, int n, const char *dir, bool by_rate)
{
    static const char *const panel[2][3] = {{"output tok/s (median, min-max)", "output tok/s", "1:2:5:6"},
                                            {"TTFT p99", "TTFT p99 (ms)", "1:3"}};
    char body[16384];
    size_t k = (size_t)snprintf(body, sizeof body,
                                "set multiplot layout 1,2\nset grid\nset xlabel '%s'\nset logscale x 2\n"
                                "set yrange [0:*]\nset key top left\n",
                                axis_label(by_rate));
    for (int p = 0; p < 2; p++) {
        k += (size_t)snprintf(body + k, sizeof body - k, "set title '%s'\nset ylabel '%s'\nplot ", panel[p][0],
                              panel[p][1]);
        for (int i = 0; i < n && k < sizeof body; i++) {
            char label[256];
            report_label(reports[i], label, sizeof label);
            k += (size_t)snprintf(body + k, sizeof body - k,
                                  "%s'%s/compare-%d.dat' using %s with %s lw 2 pt %d title '%s'", i ? ", " : "", dir, i,
                                  panel[p][2], p ? "linespoints" : "yerrorlines", 5 + 2 * (i % 5), label);
        }
        if (k < sizeof body) k += (size_t)snprintf(body + k, sizeof body - k, "\n");
    }
    if (k >= sizeof body - 32) return bench_err("plot: too many reports to compare in one figure"), -1;
    snprintf(body + k, sizeof body - k, "unset multiplot\n");
    return gnuplot_sized(dir, "compare", 1200, 480, body);
}

/* index.html of a comparison: every report's points and identity, then the figure. */
static int write_compare_html(char *const *reports, const bench_table *t, int n, const char *dir, bool by_rate)
{
    char path[1024], tmp[1100];
    FILE *f = html_begin(dir, "comparison", path, sizeof path, tmp, sizeof tmp);
    if (!f) return -1;
    fprintf(f, "<h1>ignis bench: %d reports compared</h1>\n", n);
    fprintf(f,
            "<table><tr><th>report</th><th>%s</th><th>output tok/s (median)</th><th>min</th><th>max</th>"
            "<th>TTFT p99 ms</th><th>E2E p99 ms</th></tr>\n",
            axis_label(by_rate));
    for (int i = 0; i < n; i++) {
        char p[1100];
        snprintf(p, sizeof p, "%s/compare-%d.dat", dir, i);
        FILE *d = fopen(p, "r");
        double v[6];
        while (d && fscanf(d, "%lf %lf %lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6) {
            fprintf(f, "<tr><td>");
            html_escape(f, reports[i]);
            fprintf(f, "</td><td>%g</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td></tr>\n", v[0],
                    v[1], v[4], v[5], v[2], v[3]);
        }
        if (d) fclose(d);
    }
    fprintf(f, "</table>\n<ul>\n");
    for (int i = 0; i < n; i++) {
        fprintf(f, "<li>");
        html_escape(f, reports[i]);
        html_identity(f, &t[i]);
        fprintf(f, "</li>\n");
    }
    fprintf(f, "</ul>\n");
    inline_svg(f, dir, "compare");
    return html_end(f, path, tmp);
}

int bench_plot_compare(char *const *reports, int n, const char *dir)
{
    bench_table *t = calloc((size_t)n, sizeof *t);
    if (!t) return bench_err("plot: out of memory"), -1;
    int rc = 0, loaded = 0;
    for (; loaded < n && !rc; loaded++) {
        rc = bench_csv_read(reports[loaded], &t[loaded]);
        if (!rc && !bench_table_get(&t[loaded], 0, "schema_version")) {
            bench_err("%s is not an ignis bench report (no schema_version column)", reports[loaded]);
            rc = -1;
        }
    }
    if (!rc && make_dirs(dir) != 0) {
        bench_err("cannot create %s: %s", dir, strerror(errno));
        rc = -1;
    }
    bool by_rate = false;
    if (!rc) rc = compare_points(reports, t, n, dir, &by_rate);
    if (!rc) rc = plot_compare(reports, n, dir, by_rate);
    if (!rc) rc = write_compare_html(reports, t, n, dir, by_rate);
    for (int i = 0; i < loaded; i++)
        bench_table_free(&t[i]);
    free(t);
    return rc;
}

int bench_plot_cmd(int argc, char **argv)
{
    static const char usage[] = "usage: ignis bench plot REPORT.csv [REPORT.csv ...] [--output DIR]\n";
    const char *dir = NULL;
    char **reports = calloc((size_t)argc, sizeof *reports);
    int n = 0;
    if (!reports) return fprintf(stderr, "ignis bench plot: out of memory\n"), 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("%s"
                   "one report: PNG+SVG figures and index.html (default DIR: the report's name without .csv)\n"
                   "several: compare.png/.svg (tok/s and p99 TTFT of every report's sweep on one axis) and\n"
                   "index.html (default DIR: compare/ beside the first report)\n",
                   usage);
            free(reports);
            return 0;
        }
        if (!strcmp(argv[i], "--output") && i + 1 < argc)
            dir = argv[++i];
        else if (argv[i][0] != '-')
            reports[n++] = argv[i];
        else {
            fprintf(stderr, "ignis bench plot: unexpected argument '%s'\n%s", argv[i], usage);
            free(reports);
            return 2;
        }
    }
    if (!n) {
        fprintf(stderr, "%s", usage);
        free(reports);
        return 2;
    }
    char def[1024];
    if (!dir) {
        snprintf(def, sizeof def, "%s", reports[0]);
        char *dot = strrchr(def, '.'), *slash = strrchr(def, '/');
        if (n > 1)
            snprintf(slash ? slash + 1 : def, sizeof def - (size_t)(slash ? slash + 1 - def : 0), "compare");
        else if (dot && !strcmp(dot, ".csv"))
            *dot = 0;
        else
            strncat(def, ".plots", sizeof def - strlen(def) - 1);
        dir = def;
    }
    int rc = n > 1 ? bench_plot_compare(reports, n, dir) : bench_plot_report(reports[0], dir);
    free(reports);
    if (rc != 0) {
        fprintf(stderr, "ignis bench plot: %s\n", bench_errmsg());
        return 1;
    }
    printf("%s/index.html\n", dir);
    return 0;
}
