/* Aggregation of GPU activity records into the report's per-kernel and per-step rows
 * (activity.h). Everything here is plain arithmetic over arrays; no CUDA. */
#include "profile/activity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct span {
    uint64_t a, b;
} span;

static int span_cmp(const void *x, const void *y)
{
    const span *p = x, *q = y;
    return p->a < q->a ? -1 : p->a > q->a ? 1 : 0;
}

/* Union length of n spans (sorted in place). */
static uint64_t union_ns(span *s, int n)
{
    if (n == 0) return 0;
    qsort(s, (size_t)n, sizeof *s, span_cmp);
    uint64_t total = 0, cur_a = s[0].a, cur_b = s[0].b;
    for (int i = 1; i < n; i++) {
        if (s[i].a > cur_b) {
            total += cur_b - cur_a;
            cur_a = s[i].a;
            cur_b = s[i].b;
        } else if (s[i].b > cur_b) {
            cur_b = s[i].b;
        }
    }
    return total + (cur_b - cur_a);
}

uint64_t ig_act_busy_ns(const ig_act *acts, int n, int64_t only_step)
{
    span *s = malloc(sizeof *s * (size_t)(n > 0 ? n : 1));
    if (!s) return UINT64_MAX;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (only_step != IG_ACT_ANY_STEP && acts[i].step != only_step) continue;
        if (acts[i].end_ns <= acts[i].start_ns) continue;
        s[k++] = (span){acts[i].start_ns, acts[i].end_ns};
    }
    uint64_t u = union_ns(s, k);
    free(s);
    return u;
}

/* ----------------------------------------------------------------- per kernel */

static int idx_by_start(const void *x, const void *y, void *ctx)
{
    const ig_act *acts = ctx, *p = &acts[*(const int *)x], *q = &acts[*(const int *)y];
    if (p->start_ns != q->start_ns) return p->start_ns < q->start_ns ? -1 : 1;
    return *(const int *)x - *(const int *)y; /* ties: record order, so the result is deterministic */
}

bool ig_act_exclusive_ns(const ig_act *acts, int n, uint64_t *excl)
{
    int *order = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!order) return false;
    for (int i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, (size_t)n, sizeof(int), idx_by_start, (void *)acts);
    /* sweep in start order: each activity adds what lies beyond the furthest end so far */
    uint64_t reach = 0;
    for (int k = 0; k < n; k++) {
        const ig_act *a = &acts[order[k]];
        uint64_t from = a->start_ns > reach ? a->start_ns : reach;
        excl[order[k]] = a->end_ns > from ? a->end_ns - from : 0;
        if (a->end_ns > reach) reach = a->end_ns;
    }
    free(order);
    return true;
}

typedef struct group {
    int fam;  /* family, or IG_FAM_NONE: grouped by name */
    int name; /* index into names[]: the group's name (unknown family) or an example */
    uint64_t calls, total_ns, excl_ns, min_ns, max_ns;
} group;

static int row_cmp(const void *x, const void *y)
{
    const ignis_kernel_row *p = x, *q = y;
    return p->excl_ms < q->excl_ms ? 1 : p->excl_ms > q->excl_ms ? -1 : strcmp(p->name, q->name);
}

static double pct(double v, double peak) { return peak > 0 && !isnan(v) ? 100.0 * v / peak : NAN; }

int ig_act_kernel_rows(const ig_act *acts, int n, const char *const *names, const ig_decl_totals *decl,
                       double peak_gbps, double peak_tflops, ignis_kernel_row **rows)
{
    *rows = NULL;
    int n_names = 0;
    for (int i = 0; i < n; i++)
        if (acts[i].kind == IG_ACT_KERNEL && acts[i].name + 1 > n_names) n_names = acts[i].name + 1;
    /* group of each name: families share one group, unknown names get their own */
    int *name_group = malloc(sizeof(int) * (size_t)(n_names > 0 ? n_names : 1));
    group *g = calloc((size_t)(n_names + IG_FAM_COUNT > 0 ? n_names + IG_FAM_COUNT : 1), sizeof *g);
    uint64_t *excl = malloc(sizeof(uint64_t) * (size_t)(n > 0 ? n : 1));
    if (!name_group || !g || !excl || !ig_act_exclusive_ns(acts, n, excl)) {
        free(name_group);
        free(g);
        free(excl);
        return -1;
    }
    int fam_group[IG_FAM_COUNT];
    for (int f = 0; f < IG_FAM_COUNT; f++)
        fam_group[f] = -1;
    int n_groups = 0;
    for (int i = 0; i < n_names; i++)
        name_group[i] = -1;
    uint64_t all_ns = 0;
    for (int i = 0; i < n; i++) {
        const ig_act *a = &acts[i];
        if (a->kind != IG_ACT_KERNEL || a->name < 0) continue;
        int gi = name_group[a->name];
        if (gi < 0) {
            int fam = ig_kernel_family(names[a->name]);
            gi = fam >= 0 ? fam_group[fam] : -1;
            if (gi < 0) {
                gi = n_groups++;
                g[gi].fam = fam;
                g[gi].name = a->name;
                g[gi].min_ns = UINT64_MAX;
                if (fam >= 0) fam_group[fam] = gi;
            }
            name_group[a->name] = gi;
        }
        uint64_t d = a->end_ns > a->start_ns ? a->end_ns - a->start_ns : 0;
        g[gi].calls++;
        g[gi].total_ns += d;
        g[gi].excl_ns += excl[i];
        if (d < g[gi].min_ns) g[gi].min_ns = d;
        if (d > g[gi].max_ns) g[gi].max_ns = d;
        all_ns += excl[i];
    }
    free(excl);
    ignis_kernel_row *r = calloc((size_t)(n_groups > 0 ? n_groups : 1), sizeof *r);
    if (!r) {
        free(name_group);
        free(g);
        return -1;
    }
    for (int i = 0; i < n_groups; i++) {
        const group *x = &g[i];
        ignis_kernel_row *o = &r[i];
        o->name = x->fam >= 0 ? ig_kernel_family_name(x->fam) : names[x->name];
        o->example = names[x->name];
        o->calls = x->calls;
        o->total_ms = (double)x->total_ns * 1e-6;
        o->mean_us = x->calls ? (double)x->total_ns * 1e-3 / (double)x->calls : NAN;
        o->min_us = (double)x->min_ns * 1e-3;
        o->max_us = (double)x->max_ns * 1e-3;
        o->excl_ms = (double)x->excl_ns * 1e-6;
        o->share = all_ns ? (double)x->excl_ns / (double)all_ns : NAN;
        o->bytes = x->fam >= 0 && decl ? decl->bytes[x->fam] : 0;
        o->flops = x->fam >= 0 && decl ? decl->flops[x->fam] : 0;
        double s = (double)x->excl_ns * 1e-9;
        o->gbps = o->bytes > 0 && s > 0 ? o->bytes / s * 1e-9 : NAN;
        o->tflops = o->flops > 0 && s > 0 ? o->flops / s * 1e-12 : NAN;
        o->pct_peak_bw = pct(o->gbps, peak_gbps);
        o->pct_peak_flops = pct(o->tflops, peak_tflops);
    }
    qsort(r, (size_t)n_groups, sizeof *r, row_cmp);
    free(name_group);
    free(g);
    *rows = r;
    return n_groups;
}

/* ------------------------------------------------------------------- per step */

static int act_step_cmp(const void *x, const void *y)
{
    const ig_act *p = *(const ig_act *const *)x, *q = *(const ig_act *const *)y;
    if (p->step != q->step) return p->step < q->step ? -1 : 1;
    return p->start_ns < q->start_ns ? -1 : p->start_ns > q->start_ns ? 1 : 0;
}

int ig_act_step_rows(const ig_step_ev *steps, int n_steps, const ig_act *acts, int n_acts, uint64_t t0_ns,
                     bool with_gpu, double peak_gbps, ignis_step_row **rows)
{
    *rows = NULL;
    ignis_step_row *r = calloc((size_t)(n_steps > 0 ? n_steps : 1), sizeof *r);
    /* activities ordered by (step, start), so each step's are one run */
    const ig_act **by = malloc(sizeof *by * (size_t)(n_acts > 0 ? n_acts : 1));
    span *sp = malloc(sizeof *sp * (size_t)(n_acts > 0 ? n_acts : 1));
    if (!r || !by || !sp) {
        free(r);
        free(by);
        free(sp);
        return -1;
    }
    int nb = 0;
    for (int i = 0; i < n_acts; i++)
        if (acts[i].step >= 0) by[nb++] = &acts[i];
    qsort(by, (size_t)nb, sizeof *by, act_step_cmp);
    int j = 0;
    for (int i = 0; i < n_steps; i++) {
        const ig_step_ev *s = &steps[i];
        ignis_step_row *o = &r[i];
        o->step = s->step;
        o->batch_size = s->n_seqs;
        o->tokens = s->n_tokens;
        o->prefill_tokens = s->n_prefill_tokens;
        o->t_s = s->begin_ns >= t0_ns ? (double)(s->begin_ns - t0_ns) * 1e-9 : -(double)(t0_ns - s->begin_ns) * 1e-9;
        o->host_s = (double)(s->end_ns - s->begin_ns) * 1e-9;
        o->host_gap_s =
            i > 0 && s->begin_ns >= steps[i - 1].end_ns ? (double)(s->begin_ns - steps[i - 1].end_ns) * 1e-9 : NAN;
        o->bytes = s->bytes;
        o->gpu_busy_s = o->launch_gap_s = o->gbps = o->pct_peak_bw = NAN;
        if (!with_gpu) continue;
        while (j < nb && by[j]->step < (int64_t)s->step)
            j++;
        int k = 0;
        uint64_t first = UINT64_MAX, last = 0;
        for (; j < nb && by[j]->step == (int64_t)s->step; j++) {
            const ig_act *a = by[j];
            if (a->kind == IG_ACT_KERNEL) o->n_kernels++;
            if (a->end_ns <= a->start_ns) continue;
            sp[k++] = (span){a->start_ns, a->end_ns};
            if (a->start_ns < first) first = a->start_ns;
            if (a->end_ns > last) last = a->end_ns;
        }
        uint64_t busy = union_ns(sp, k);
        o->gpu_busy_s = (double)busy * 1e-9;
        o->launch_gap_s = k ? (double)(last - first - busy) * 1e-9 : 0.0;
        o->gbps = busy > 0 && s->bytes > 0 ? s->bytes / (double)busy : NAN; /* bytes per ns = GB/s */
        o->pct_peak_bw = pct(o->gbps, peak_gbps);
    }
    free(by);
    free(sp);
    *rows = r;
    return n_steps;
}
