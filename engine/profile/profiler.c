/* The public profiler API (ignis.h "profiler"): a window's lifecycle over the CUPTI
 * collector, the NVML sampler and the scheduler's step events, and the aggregation of what
 * they collected into the summary, per-kernel and per-step rows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "profile/device.h"
#include "profile/profiler_internal.h"
#include "profile/step_hook.h"
#include "runtime/engine_internal.h"

void ignis_profiler_opts_init(ignis_profiler_opts *o)
{
    memset(o, 0, sizeof *o);
    o->telemetry_ms = 100;
}

static void note(char *dst, const char *what)
{
    snprintf(dst, sizeof((ignis_profile_summary *)0)->kernels_note, "%s", what);
}

ignis_status ignis_profiler_create(const ignis_profiler_opts *o, ignis_profiler **out)
{
    if (!o || !out) return ig_err(IGNIS_E_ARG, "ignis_profiler_create: NULL argument");
    *out = NULL;
    if (o->telemetry_ms < 0) return ig_err(IGNIS_E_ARG, "profiler: telemetry period %d ms < 0", o->telemetry_ms);
    ignis_profiler *p = calloc(1, sizeof *p);
    if (!p) return ig_err(IGNIS_E_NOMEM, "profiler: out of memory");
    p->opts = *o;
    p->opts.nvml_lib = NULL; /* not kept: only used below */
    pthread_mutex_init(&p->mu, NULL);
    ignis_profile_summary *s = &p->sum;
    if (o->kernels) {
        /* the device check initialises the driver but makes no context, so CUPTI can still
         * size its buffers after it */
        ignis_status st = ig_prof_device_check(o->device);
        if (st == IGNIS_OK) st = ig_cupti_init(o->cupti_buffer_kb * 1024);
        if (st == IGNIS_OK) {
            p->cupti_ok = true;
            p->sum.peak_gbps = o->peak_gbps;
            p->sum.peak_tflops = o->peak_tflops;
            if (o->peak_gbps <= 0 || o->peak_tflops <= 0) {
                double gb = 0, tf = 0;
                if (ig_prof_measure_peaks(o->device, &gb, &tf) == IGNIS_OK) {
                    if (o->peak_gbps <= 0) p->sum.peak_gbps = gb;
                    if (o->peak_tflops <= 0) p->sum.peak_tflops = tf;
                } else {
                    ig_log(IGNIS_LOG_WARN, "profiler: peaks not measured: %s", ignis_last_error());
                }
            }
        } else {
            note(s->kernels_note, ignis_last_error());
        }
    } else {
        note(s->kernels_note, "kernel timings off");
    }
    if (o->telemetry_ms > 0) {
        char pci[32] = "";
        bool have_pci = ig_prof_pci_bus_id(o->device, pci, sizeof pci) == IGNIS_OK;
        if (ig_nvml_open(o->nvml_lib, have_pci ? pci : NULL, o->device, &p->nvml) != IGNIS_OK)
            note(s->telemetry_note, ignis_last_error());
    } else {
        note(s->telemetry_note, "telemetry off");
    }
    ig_err_clear();
    *out = p;
    return IGNIS_OK;
}

static void free_results(ignis_profiler *p)
{
    ig_cupti_data_free(&p->data);
    free(p->krows);
    free(p->srows);
    p->krows = NULL;
    p->srows = NULL;
    p->n_krows = p->n_srows = 0;
}

void ignis_profiler_destroy(ignis_profiler *p)
{
    if (!p) return;
    if (p->started) ignis_profiler_stop(p);
    if (p->engine) ig_prof_set_engine_hook(p->engine, NULL);
    ig_telemetry_free(&p->tel);
    ig_nvml_close(p->nvml);
    free_results(p);
    free(p->steps);
    ig_req_map_free(&p->reqs);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

ignis_status ignis_profiler_attach(ignis_profiler *p, ignis_engine *e)
{
    if (!p) return ig_err(IGNIS_E_ARG, "ignis_profiler_attach: NULL profiler");
    if (p->engine && p->engine != e) ig_prof_set_engine_hook(p->engine, NULL);
    p->engine = e;
    p->have_shape = e && ig_prof_cost_shape(e->deps.backend, &p->shape) == IGNIS_OK;
    ig_err_clear();
    if (e) ig_prof_set_engine_hook(e, p);
    return IGNIS_OK;
}

ignis_status ignis_profiler_start(ignis_profiler *p)
{
    if (!p) return ig_err(IGNIS_E_ARG, "ignis_profiler_start: NULL profiler");
    if (p->started) return ig_err(IGNIS_E_STATE, "profiler: start of a window already started");
    free_results(p);
    pthread_mutex_lock(&p->mu);
    p->n_steps = 0;
    p->steps_oom = false;
    memset(&p->decl, 0, sizeof p->decl);
    pthread_mutex_unlock(&p->mu);
    double gb = p->sum.peak_gbps, tf = p->sum.peak_tflops;
    ignis_profile_summary keep = p->sum;
    memset(&p->sum, 0, sizeof p->sum);
    memcpy(p->sum.kernels_note, keep.kernels_note, sizeof keep.kernels_note);
    memcpy(p->sum.telemetry_note, keep.telemetry_note, sizeof keep.telemetry_note);
    p->sum.peak_gbps = gb;
    p->sum.peak_tflops = tf;
    if (p->cupti_ok && p->opts.kernels) {
        ig_cupti_reset();
        ignis_status st = ig_cupti_enable();
        if (st != IGNIS_OK) {
            p->cupti_ok = false;
            note(p->sum.kernels_note, ignis_last_error());
        }
    }
    if (p->nvml) {
        ignis_status st = ig_telemetry_start(&p->tel, p->nvml, p->opts.telemetry_ms);
        if (st != IGNIS_OK) note(p->sum.telemetry_note, ignis_last_error());
    }
    if (p->opts.profile_window) {
        ignis_status st = ignis_profile_range_begin();
        if (st != IGNIS_OK) ig_log(IGNIS_LOG_WARN, "profiler: %s", ignis_last_error());
        p->range_open = st == IGNIS_OK;
    }
    p->t0_ns = ig_prof_now_ns(p);
    p->t_start = ig_now();
    pthread_mutex_lock(&p->mu);
    p->in_window = true;
    pthread_mutex_unlock(&p->mu);
    p->started = true;
    ig_err_clear();
    return IGNIS_OK;
}

/* Activities without an external correlation (none pushed, or a launch path CUPTI does
 * not correlate) take the step whose host span contains their start: forward() returns
 * only after its stream is idle, so a step's activities run inside its span. */
static void attribute_by_time(ig_act *acts, int n, const ig_step_ev *steps, int n_steps)
{
    for (int i = 0; i < n; i++) {
        if (acts[i].step >= 0) continue;
        int lo = 0, hi = n_steps - 1, hit = -1;
        while (lo <= hi) {
            int mid = (lo + hi) / 2;
            if (steps[mid].begin_ns <= acts[i].start_ns) {
                hit = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        if (hit >= 0 && acts[i].start_ns < steps[hit].end_ns) acts[i].step = (int64_t)steps[hit].step;
    }
}

static void summarize_gpu(ignis_profiler *p)
{
    ignis_profile_summary *s = &p->sum;
    const ig_cupti_data *d = &p->data;
    uint64_t k = 0, mc = 0, ms = 0, nk = 0;
    for (int i = 0; i < d->n_acts; i++) {
        uint64_t dur = d->acts[i].end_ns > d->acts[i].start_ns ? d->acts[i].end_ns - d->acts[i].start_ns : 0;
        if (d->acts[i].kind == IG_ACT_KERNEL) {
            k += dur;
            nk++;
        } else if (d->acts[i].kind == IG_ACT_MEMCPY) {
            mc += dur;
        } else {
            ms += dur;
        }
    }
    uint64_t busy = ig_act_busy_ns(d->acts, d->n_acts, IG_ACT_ANY_STEP);
    double excl = 0;
    for (int i = 0; i < p->n_krows; i++)
        excl += p->krows[i].excl_ms * 1e-3;
    s->kernels_available = true;
    s->gpu_busy_s = busy == UINT64_MAX ? NAN : (double)busy * 1e-9;
    s->gpu_busy_frac = s->window_s > 0 ? s->gpu_busy_s / s->window_s : NAN;
    s->kernel_s = (double)k * 1e-9;
    s->kernel_excl_s = excl;
    s->memcpy_s = (double)mc * 1e-9;
    s->memset_s = (double)ms * 1e-9;
    s->n_kernel_records = nk;
    s->records_dropped = d->dropped;
    s->cupti_overhead_s = (double)d->overhead_ns * 1e-9;
    /* decode-only steps against the bandwidth limit */
    double bytes = 0, t = 0;
    for (int i = 0; i < p->n_srows; i++) {
        const ignis_step_row *r = &p->srows[i];
        if (r->prefill_tokens == 0 && r->bytes > 0 && !isnan(r->gpu_busy_s) && r->gpu_busy_s > 0) {
            bytes += r->bytes;
            t += r->gpu_busy_s;
        }
    }
    s->decode_step_bw_frac = t > 0 && s->peak_gbps > 0 ? bytes / t * 1e-9 / s->peak_gbps : NAN;
}

static void set_gpu_na(ignis_profile_summary *s)
{
    s->kernels_available = false;
    s->gpu_busy_s = s->gpu_busy_frac = s->kernel_s = s->kernel_excl_s = s->memcpy_s = s->memset_s = NAN;
    s->cupti_overhead_s = s->decode_step_bw_frac = NAN;
    if (s->peak_gbps <= 0) s->peak_gbps = NAN;
    if (s->peak_tflops <= 0) s->peak_tflops = NAN;
}

static void set_telemetry_na(ignis_profile_summary *s)
{
    s->telemetry_available = false;
    s->energy_j = s->mean_w = s->max_w = s->power_limit_w = NAN;
    s->mean_sm_mhz = s->mean_mem_mhz = s->mean_gpu_util_pct = s->max_mem_used_mb = s->max_temp_c = NAN;
    s->tokens_per_joule = NAN;
}

ignis_status ignis_profiler_stop(ignis_profiler *p)
{
    if (!p) return ig_err(IGNIS_E_ARG, "ignis_profiler_stop: NULL profiler");
    if (!p->started) return ig_err(IGNIS_E_STATE, "profiler: stop without start");
    p->started = false;
    pthread_mutex_lock(&p->mu);
    p->in_window = false;
    pthread_mutex_unlock(&p->mu);
    p->t_stop = ig_now();
    ignis_status st = IGNIS_OK;
    if (p->range_open) {
        st = ignis_profile_range_end();
        p->range_open = false;
    }
    bool gpu = p->cupti_ok && p->opts.kernels;
    if (gpu) {
        ignis_status cs = ig_cupti_disable();
        if (cs != IGNIS_OK) {
            st = cs;
            gpu = false;
            note(p->sum.kernels_note, ignis_last_error());
        }
        ig_cupti_take(&p->data);
    }
    if (p->nvml) ig_telemetry_stop(&p->tel);

    ignis_profile_summary *s = &p->sum;
    s->window_s = p->t_stop - p->t_start;
    pthread_mutex_lock(&p->mu);
    s->steps = (uint64_t)p->n_steps;
    for (int i = 0; i < p->n_steps; i++) {
        s->prefill_tokens += (uint64_t)p->steps[i].n_prefill_tokens;
        s->decode_tokens += (uint64_t)(p->steps[i].n_tokens - p->steps[i].n_prefill_tokens);
    }
    if (gpu) attribute_by_time(p->data.acts, p->data.n_acts, p->steps, p->n_steps);
    int nk = gpu ? ig_act_kernel_rows(p->data.acts, p->data.n_acts, (const char *const *)p->data.names, &p->decl,
                                      s->peak_gbps, s->peak_tflops, &p->krows)
                 : 0;
    int ns =
        ig_act_step_rows(p->steps, p->n_steps, p->data.acts, p->data.n_acts, p->t0_ns, gpu, s->peak_gbps, &p->srows);
    pthread_mutex_unlock(&p->mu);
    if (nk < 0 || ns < 0) {
        free_results(p);
        return ig_err(IGNIS_E_NOMEM, "profiler: out of memory aggregating the window");
    }
    p->n_krows = nk;
    p->n_srows = ns;
    if (gpu)
        summarize_gpu(p);
    else
        set_gpu_na(s);
    if (p->nvml && p->tel.n > 0) {
        s->telemetry_available = true;
        ig_telemetry_summarize(p->tel.samples, p->tel.n, ig_nvml_power_limit_w(p->nvml), s);
        double tokens = (double)(s->prefill_tokens + s->decode_tokens);
        s->tokens_per_joule = s->energy_j > 0 ? tokens / s->energy_j : NAN;
    } else {
        set_telemetry_na(s);
    }
    return st;
}

ignis_status ignis_profiler_summary(const ignis_profiler *p, ignis_profile_summary *out)
{
    if (!p || !out) return ig_err(IGNIS_E_ARG, "ignis_profiler_summary: NULL argument");
    *out = p->sum;
    return IGNIS_OK;
}

int ignis_profiler_kernels(const ignis_profiler *p, const ignis_kernel_row **rows)
{
    *rows = p ? p->krows : NULL;
    return p ? p->n_krows : 0;
}

int ignis_profiler_steps(const ignis_profiler *p, const ignis_step_row **rows)
{
    *rows = p ? p->srows : NULL;
    return p ? p->n_srows : 0;
}

int ignis_profiler_telemetry(const ignis_profiler *p, const ignis_telemetry_sample **rows)
{
    if (!p || p->started) {
        *rows = NULL;
        return 0;
    }
    *rows = p->tel.samples;
    return p->tel.n;
}

ignis_status ignis_profiler_ttft(ignis_profiler *p, ignis_request *r, ignis_ttft_breakdown *out)
{
    if (!p || !r || !out) return ig_err(IGNIS_E_ARG, "ignis_profiler_ttft: NULL argument");
    ignis_request_result res;
    ignis_request_get_result(r, &res);
    out->ttft_s = res.ttft_s >= 0 ? res.ttft_s : NAN;
    out->queue_s = res.queue_s;
    ig_req_acc acc;
    pthread_mutex_lock(&p->mu);
    bool found = ig_req_map_take(&p->reqs, r, &acc);
    pthread_mutex_unlock(&p->mu);
    if (!found) {
        out->prefill_own_s = out->prefill_shared_s = out->other_s = NAN;
        out->prefill_steps = 0;
        return ig_err(IGNIS_E_NOT_FOUND, "profiler: no step of this request was seen (attached after its prefill?)");
    }
    out->prefill_own_s = acc.own_s;
    out->prefill_shared_s = acc.shared_s;
    out->prefill_steps = acc.steps;
    out->other_s = out->ttft_s - out->queue_s - acc.own_s - acc.shared_s;
    return IGNIS_OK;
}
