/*
 * The profiler API where no tool and no GPU are available (CI): every part reports itself
 * unavailable with a reason, figures are NaN (never a crash, never a made-up zero), the
 * NVML loader fails cleanly on a missing library, and the scheduler's step events still
 * give the per-step rows and the TTFT breakdown on the CPU backend — with the NVTX ranges
 * compiled in and no tool attached.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/nvml_loader.h"
#include "test_util.h"

#define MISSING_NVML "/nonexistent/libnvidia-ml.so.1"

static void test_profiler_without_device_or_nvml_reports_not_available(void **state)
{
    (void)state;
    ignis_profiler_opts o;
    ignis_profiler_opts_init(&o);
    assert_int_equal(o.telemetry_ms, 100);
    o.kernels = true;
    o.telemetry_ms = 20;
    o.nvml_lib = MISSING_NVML;
    o.peak_gbps = 1000; /* not measured without a device anyway */
    ignis_profiler *p = NULL;
    assert_int_equal(ignis_profiler_create(&o, &p), IGNIS_OK);
    assert_int_equal(ignis_profiler_stop(p), IGNIS_E_STATE);
    assert_int_equal(ignis_profiler_start(p), IGNIS_OK);
    assert_int_equal(ignis_profiler_start(p), IGNIS_E_STATE);
    assert_int_equal(ignis_profiler_stop(p), IGNIS_OK);
    ignis_profile_summary s;
    assert_int_equal(ignis_profiler_summary(p, &s), IGNIS_OK);
    assert_false(s.kernels_available);
    if (s.kernels_note[0] == '\0') fail_msg("kernels unavailable without a note saying why");
    printf("kernels: %s\ntelemetry: %s\n", s.kernels_note, s.telemetry_note);
    assert_false(s.telemetry_available);
    if (!strstr(s.telemetry_note, MISSING_NVML))
        fail_msg("telemetry note does not name the library: %s", s.telemetry_note);
    assert_true(isnan(s.gpu_busy_s) && isnan(s.gpu_busy_frac) && isnan(s.kernel_s) && isnan(s.cupti_overhead_s));
    assert_true(isnan(s.energy_j) && isnan(s.mean_w) && isnan(s.tokens_per_joule) && isnan(s.decode_step_bw_frac));
    assert_true(s.window_s >= 0);
    assert_int_equal(s.steps, 0);
    const ignis_kernel_row *k;
    const ignis_step_row *r;
    const ignis_telemetry_sample *t;
    assert_int_equal(ignis_profiler_kernels(p, &k), 0);
    assert_int_equal(ignis_profiler_steps(p, &r), 0);
    assert_int_equal(ignis_profiler_telemetry(p, &t), 0);
    ignis_profiler_destroy(p);
}

static void test_nvml_loader_fails_cleanly_when_the_library_is_absent(void **state)
{
    (void)state;
    ig_nvml *n = (ig_nvml *)1;
    assert_int_equal(ig_nvml_open(MISSING_NVML, NULL, 0, &n), IGNIS_E_UNSUPPORTED);
    assert_null(n);
    /* built with nvml.h: the loader names the library it could not open; without: the header */
    const char *msg = ignis_last_error();
    if (!strstr(msg, MISSING_NVML) && !strstr(msg, "nvml.h"))
        fail_msg("message says neither library nor header: %s", msg);
    ig_nvml_close(NULL);
}

static void test_nsight_capture_range_without_a_device_is_a_clean_error(void **state)
{
    (void)state;
    ignis_status s = ignis_profile_range_begin();
    if (s != IGNIS_OK && ignis_last_error()[0] == '\0') fail_msg("range_begin failed without a message");
#if !defined(IGNIS_HAVE_CUDA)
    assert_int_equal(s, IGNIS_E_UNSUPPORTED);
#endif
    ignis_profile_range_end();
}

#define N_REQ 4
#define MAX_NEW 8

static void test_step_events_give_step_rows_and_ttft_breakdown_on_the_cpu(void **state)
{
    (void)state;
    ignis_engine_opts eo;
    ignis_engine_opts_init(&eo);
    eo.backend = IGNIS_BACKEND_CPU;
    eo.threads = 2;
    eo.max_prefill_token_num = 16; /* prompts of 20+ tokens take several chunks */
    eo.enable_prefix_caching = 0;
    ignis_model *m = NULL;
    assert_int_equal(ignis_model_open("synthetic:tiny", &eo, &m), IGNIS_OK);
    ignis_engine *e = NULL;
    assert_int_equal(ignis_engine_create(m, &eo, &e), IGNIS_OK);

    ignis_profiler_opts o;
    ignis_profiler_opts_init(&o);
    o.telemetry_ms = 0;
    ignis_profiler *p = NULL;
    assert_int_equal(ignis_profiler_create(&o, &p), IGNIS_OK);
    assert_int_equal(ignis_profiler_attach(p, e), IGNIS_OK);
    assert_int_equal(ignis_profiler_start(p), IGNIS_OK);

    static const int lens[N_REQ] = {5, 21, 40, 3};
    ignis_request *rq[N_REQ];
    int32_t prompt[64];
    int prompt_total = 0;
    for (int i = 0; i < N_REQ; i++) {
        for (int j = 0; j < lens[i]; j++)
            prompt[j] = 1 + (7 * i + 3 * j) % 200;
        ignis_request_params rp;
        ignis_request_params_init(&rp);
        rp.prompt_ids = prompt;
        rp.n_prompt_ids = lens[i];
        rp.max_new_tokens = MAX_NEW;
        rp.ignore_eos = true;
        assert_int_equal(ignis_engine_submit(e, &rp, &rq[i]), IGNIS_OK);
        prompt_total += lens[i];
    }
    for (int i = 0; i < N_REQ; i++)
        assert_int_equal(ignis_request_wait(rq[i], 60000), IGNIS_OK);
    assert_int_equal(ignis_profiler_stop(p), IGNIS_OK);

    ignis_profile_summary s;
    ignis_profiler_summary(p, &s);
    assert_true(s.steps > 0);
    /* every prompt token computed once; every generated token but the last fed back once */
    assert_int_equal(s.prefill_tokens, prompt_total);
    assert_int_equal(s.decode_tokens, N_REQ * (MAX_NEW - 1));
    const ignis_step_row *r;
    int n = ignis_profiler_steps(p, &r);
    assert_int_equal(n, (int)s.steps);
    long tokens = 0;
    for (int i = 0; i < n; i++) {
        tokens += r[i].tokens;
        assert_true(r[i].batch_size >= 1 && r[i].tokens >= r[i].batch_size);
        assert_true(r[i].host_s > 0);
        assert_true(isnan(r[i].gpu_busy_s) && isnan(r[i].gbps));
        if (i > 0) assert_true(r[i].step > r[i - 1].step && r[i].t_s >= r[i - 1].t_s);
        if (i > 0 && !(r[i].host_gap_s >= 0)) fail_msg("step %d: host gap %g", i, r[i].host_gap_s);
    }
    assert_int_equal(tokens, prompt_total + N_REQ * (MAX_NEW - 1));

    for (int i = 0; i < N_REQ; i++) {
        ignis_ttft_breakdown b;
        assert_int_equal(ignis_profiler_ttft(p, rq[i], &b), IGNIS_OK);
        if (!(b.prefill_steps >= (lens[i] + 15) / 16)) fail_msg("request %d: %d prefill steps", i, b.prefill_steps);
        assert_true(b.queue_s >= 0 && b.prefill_own_s > 0 && b.prefill_shared_s >= 0);
        /* the parts never exceed the whole (1 us of clock granularity) */
        if (!(b.other_s >= -1e-6)) fail_msg("request %d: parts exceed TTFT by %g s", i, -b.other_s);
        assert_true(fabs(b.ttft_s - (b.queue_s + b.prefill_own_s + b.prefill_shared_s + b.other_s)) < 1e-9);
        /* read once: a second read does not find it */
        assert_int_equal(ignis_profiler_ttft(p, rq[i], &b), IGNIS_E_NOT_FOUND);
        ignis_request_release(rq[i]);
    }
    ignis_profiler_destroy(p); /* detaches from the engine */
    ignis_engine_destroy(e);
    ignis_model_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profiler_without_device_or_nvml_reports_not_available),
        cmocka_unit_test(test_nvml_loader_fails_cleanly_when_the_library_is_absent),
        cmocka_unit_test(test_nsight_capture_range_without_a_device_is_a_clean_error),
        cmocka_unit_test(test_step_events_give_step_rows_and_ttft_breakdown_on_the_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
