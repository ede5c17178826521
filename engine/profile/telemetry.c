/* The NVML sampling thread and the summary of its samples (telemetry.h). */
#include "profile/telemetry.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/grow.h"

static void take(ig_telemetry *t)
{
    ig_nvml_reading r;
    ig_nvml_read(t->nvml, &r);
    ignis_telemetry_sample s;
    s.t_s = ig_now() - t->t0;
    s.power_w = r.power_w;
    s.energy_j =
        r.energy_mj != UINT64_MAX && t->energy0_mj != UINT64_MAX ? (double)(r.energy_mj - t->energy0_mj) * 1e-3 : NAN;
    s.sm_mhz = r.sm_mhz;
    s.mem_mhz = r.mem_mhz;
    s.gpu_util_pct = r.gpu_util_pct;
    s.mem_util_pct = r.mem_util_pct;
    s.mem_used_mb = r.mem_used_mb;
    s.temp_c = r.temp_c;
    s.throttle_reasons = r.reasons;
    if (!ig_grow((void **)&t->samples, &t->cap, t->n + 1, sizeof *t->samples)) {
        t->oom = true; /* keep what we have; the summary covers a shorter span */
        return;
    }
    t->samples[t->n++] = s;
}

static void *sampler(void *arg)
{
    ig_telemetry *t = arg;
    pthread_mutex_lock(&t->mu);
    struct timespec due;
    clock_gettime(CLOCK_MONOTONIC, &due);
    while (!t->stop) {
        due.tv_nsec += (long)t->interval_ms * 1000000L;
        due.tv_sec += due.tv_nsec / 1000000000L;
        due.tv_nsec %= 1000000000L;
        int rc = 0;
        while (!t->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&t->cv, &t->mu, &due);
        if (t->stop) break;
        pthread_mutex_unlock(&t->mu);
        take(t); /* only this thread touches samples while running */
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

ignis_status ig_telemetry_start(ig_telemetry *t, ig_nvml *nvml, int interval_ms)
{
    ig_telemetry_free(t);
    t->nvml = nvml;
    t->interval_ms = interval_ms > 0 ? interval_ms : 100;
    t->stop = false;
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    ig_nvml_reading r;
    ig_nvml_read(nvml, &r);
    t->energy0_mj = r.energy_mj;
    t->t0 = ig_now();
    take(t);
    if (pthread_create(&t->thread, NULL, sampler, t) != 0) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        return ig_err(IGNIS_E_INTERNAL, "telemetry: cannot start the sampling thread");
    }
    t->running = true;
    return IGNIS_OK;
}

void ig_telemetry_stop(ig_telemetry *t)
{
    if (!t->running) return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    t->running = false;
    take(t);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
}

void ig_telemetry_free(ig_telemetry *t)
{
    ig_telemetry_stop(t);
    free(t->samples);
    t->samples = NULL;
    t->n = t->cap = 0;
    t->oom = false;
}

/* Mean of the non-NaN values of one column. */
#define COLUMN_MEAN(s, n, field, out)                                                                                  \
    do {                                                                                                               \
        double sum_ = 0;                                                                                               \
        int k_ = 0;                                                                                                    \
        for (int i_ = 0; i_ < (n); i_++)                                                                               \
            if (!isnan((s)[i_].field)) {                                                                               \
                sum_ += (s)[i_].field;                                                                                 \
                k_++;                                                                                                  \
            }                                                                                                          \
        (out) = k_ ? sum_ / k_ : NAN;                                                                                  \
    } while (0)

#define COLUMN_MAX(s, n, field, out)                                                                                   \
    do {                                                                                                               \
        double m_ = NAN;                                                                                               \
        for (int i_ = 0; i_ < (n); i_++)                                                                               \
            if (!isnan((s)[i_].field) && (isnan(m_) || (s)[i_].field > m_)) m_ = (s)[i_].field;                        \
        (out) = m_;                                                                                                    \
    } while (0)

void ig_telemetry_summarize(const ignis_telemetry_sample *s, int n, double power_limit_w, ignis_profile_summary *out)
{
    out->telemetry_samples = n;
    out->power_limit_w = power_limit_w;
    out->throttle_reasons = 0;
    for (int i = 0; i < n; i++)
        out->throttle_reasons |= s[i].throttle_reasons;
    out->throttled = (out->throttle_reasons & IG_NVML_THROTTLE_MASK) != 0;
    COLUMN_MAX(s, n, power_w, out->max_w);
    COLUMN_MEAN(s, n, sm_mhz, out->mean_sm_mhz);
    COLUMN_MEAN(s, n, mem_mhz, out->mean_mem_mhz);
    COLUMN_MEAN(s, n, gpu_util_pct, out->mean_gpu_util_pct);
    COLUMN_MAX(s, n, mem_used_mb, out->max_mem_used_mb);
    COLUMN_MAX(s, n, temp_c, out->max_temp_c);
    double span = n >= 2 ? s[n - 1].t_s - s[0].t_s : 0;
    bool counter = n >= 2;
    for (int i = 0; i < n; i++)
        if (isnan(s[i].energy_j)) counter = false;
    if (counter) {
        out->energy_j = s[n - 1].energy_j - s[0].energy_j;
    } else if (n >= 2) {
        double e = 0;
        for (int i = 1; i < n; i++)
            if (!isnan(s[i].power_w) && !isnan(s[i - 1].power_w))
                e += 0.5 * (s[i].power_w + s[i - 1].power_w) * (s[i].t_s - s[i - 1].t_s);
        out->energy_j = e;
    } else {
        out->energy_j = NAN;
    }
    if (span > 0 && !isnan(out->energy_j)) {
        out->mean_w = out->energy_j / span;
    } else {
        COLUMN_MEAN(s, n, power_w, out->mean_w);
    }
}
