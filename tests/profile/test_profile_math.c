/*
 * The profiler's arithmetic on synthetic records, against values computed by hand:
 * GPU-busy time as a union of intervals, per-kernel rows (families, calls, mean/min/max,
 * share, GB/s and % of peak), per-step rows (busy time, launch gaps, host gaps), kernel
 * family matching, the cost model of a decode and a prefill step, the telemetry summary
 * (energy counter vs integrated power, throttling) and the per-request map.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/activity.h"
#include "profile/cost.h"
#include "profile/req_map.h"
#include "profile/telemetry.h"
#include "test_util.h"

#define NEAR(want, got, tol)                                                                                           \
    do {                                                                                                               \
        double w_ = (want), g_ = (got);                                                                                \
        if (!(fabs(w_ - g_) <= (tol))) fail_msg("%s: expected %.9g, got %.9g", #got, w_, g_);                          \
    } while (0)

static ig_act K(uint64_t a, uint64_t b, int64_t step, int name) { return (ig_act){a, b, step, name, IG_ACT_KERNEL}; }

static void test_busy_time_is_the_union_of_overlapping_nested_and_disjoint_intervals(void **state)
{
    (void)state;
    /* [0,10) [5,15) -> [0,15); [20,30) with nested [22,25); [30,31) touches; [40,40) empty */
    ig_act a[] = {K(20, 30, 1, 0), K(5, 15, 0, 0), K(0, 10, 0, 0), K(22, 25, 1, 0), K(30, 31, 2, 0), K(40, 40, 2, 0)};
    int n = (int)(sizeof a / sizeof a[0]);
    assert_int_equal(ig_act_busy_ns(a, n, IG_ACT_ANY_STEP), 15 + 10 + 1);
    assert_int_equal(ig_act_busy_ns(a, n, 0), 15);
    assert_int_equal(ig_act_busy_ns(a, n, 1), 10);
    assert_int_equal(ig_act_busy_ns(a, n, 7), 0);
    assert_int_equal(ig_act_busy_ns(a, 0, IG_ACT_ANY_STEP), 0);
}

static void test_kernel_families_match_ignis_and_cublas_names(void **state)
{
    (void)state;
    assert_int_equal(ig_kernel_family("_Z12k_gemv_fusedI6__halfLi1ELi0ELi1EEv13ig_gemv_fused"), IG_FAM_GEMV_FUSED);
    assert_int_equal(ig_kernel_family("_Z6k_gemvI6__halfLi1ELi2ELi4ELb0EEvPKT_S3_PfPS1_iii"), IG_FAM_GEMV);
    assert_int_equal(ig_kernel_family("nvjet_hsh_128x256_64x4_2x1_v_bz_coopA_TNT"), IG_FAM_CUBLAS_GEMM);
    assert_int_equal(ig_kernel_family("sm90_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x128x64"), IG_FAM_CUBLAS_GEMM);
    assert_int_equal(ig_kernel_family("_Z20k_attn_decode_streamI6__halfLi1ELi4EEvPKT_"), IG_FAM_ATTN_DECODE);
    assert_int_equal(ig_kernel_family("_Z14k_attn_prefillI6__halfLi128EEvPKT_"), IG_FAM_ATTN_PREFILL);
    assert_int_equal(ig_kernel_family("_Z13k_sample_prepPfiiPK12ig_sample_dev"), IG_FAM_SAMPLE);
    assert_int_equal(ig_kernel_family("some_other_kernel"), IG_FAM_NONE);
    assert_string_equal(ig_kernel_family_name(IG_FAM_CUBLAS_GEMM), "cublas_gemm");
}

static void test_kernel_rows_group_families_and_give_rates_against_the_peaks(void **state)
{
    (void)state;
    const char *names[] = {"_Z12k_gemv_fusedI6__halfLi1ELi0ELi1EEv13ig_gemv_fused",
                           "_Z12k_gemv_fusedI6__halfLi1ELi1ELi1EEv13ig_gemv_fused", "nvjet_hsh_128x256", "mystery"};
    /* gemv_fused: 10, 20 (name 0) and 30 us (name 1); cublas 100 us; mystery 40 us */
    ig_act a[] = {K(0, 10000, 0, 0),      K(10000, 30000, 0, 0),    K(30000, 60000, 0, 1),
                  K(60000, 160000, 1, 2), K(200000, 240000, -1, 3), {170000, 175000, -1, -1, IG_ACT_MEMCPY}};
    ig_decl_totals d;
    memset(&d, 0, sizeof d);
    d.bytes[IG_FAM_GEMV_FUSED] = 120e3; /* over 60 us: 2 GB/s */
    d.flops[IG_FAM_CUBLAS_GEMM] = 1e9;  /* 1 GFLOP in 100 us = 10 TFLOP/s */
    ignis_kernel_row *r = NULL;
    int n = ig_act_kernel_rows(a, 6, names, &d, 4.0, 40.0, &r);
    assert_int_equal(n, 3);
    /* sorted by total time: cublas 100 us, gemv_fused 60 us, mystery 40 us */
    assert_string_equal(r[0].name, "cublas_gemm");
    assert_string_equal(r[0].example, "nvjet_hsh_128x256");
    assert_string_equal(r[1].name, "gemv_fused");
    assert_string_equal(r[2].name, "mystery");
    assert_int_equal(r[1].calls, 3);
    NEAR(0.060, r[1].total_ms, 1e-12);
    NEAR(20.0, r[1].mean_us, 1e-9);
    NEAR(10.0, r[1].min_us, 1e-9);
    NEAR(30.0, r[1].max_us, 1e-9);
    NEAR(60.0 / 200.0, r[1].share, 1e-12);
    NEAR(100.0 / 200.0, r[0].share, 1e-12);
    NEAR(2.0, r[1].gbps, 1e-9);         /* 120e3 B / 60e-6 s = 2e9 B/s */
    NEAR(50.0, r[1].pct_peak_bw, 1e-9); /* of 4 GB/s */
    assert_true(isnan(r[1].tflops));
    NEAR(10.0, r[0].tflops, 1e-9);
    NEAR(25.0, r[0].pct_peak_flops, 1e-9);
    assert_true(isnan(r[0].gbps));
    assert_true(isnan(r[2].gbps) && isnan(r[2].pct_peak_bw));
    free(r);
}

static void test_exclusive_time_charges_overlap_once_and_sums_to_the_union(void **state)
{
    (void)state;
    /* A [0,100); B [80,200) launched early (PDL) waits on A; C [200,250); a memcpy
     * [240,260); D [300,310) with E [302,305) nested in it */
    const char *names[] = {"_Z6k_gemvI6__halfLi1ELi2ELi4ELb0EE", "mystery", "_Z9k_rmsnormI6__halfE"};
    ig_act a[] = {K(0, 100, 0, 0),   K(80, 200, 0, 0), K(200, 250, 0, 1), {240, 260, 0, -1, IG_ACT_MEMCPY},
                  K(300, 310, 0, 2), K(302, 305, 0, 2)};
    uint64_t x[6];
    assert_true(ig_act_exclusive_ns(a, 6, x));
    uint64_t want[6] = {100, 100, 50, 10, 10, 0}, sum = 0;
    for (int i = 0; i < 6; i++) {
        if (x[i] != want[i])
            fail_msg("activity %d: exclusive %llu ns, expected %llu", i, (unsigned long long)x[i],
                     (unsigned long long)want[i]);
        sum += x[i];
    }
    assert_int_equal(sum, ig_act_busy_ns(a, 6, IG_ACT_ANY_STEP));
    ignis_kernel_row *r = NULL;
    ig_decl_totals d;
    memset(&d, 0, sizeof d);
    d.bytes[IG_FAM_GEMV] = 400; /* over 200 ns exclusive: 2 GB/s (over the 220 ns of own time it would be 1.8) */
    int n = ig_act_kernel_rows(a, 6, names, &d, 0, 0, &r);
    assert_int_equal(n, 3);
    assert_string_equal(r[0].name, "gemv");
    NEAR(220e-6, r[0].total_ms, 1e-15);
    NEAR(200e-6, r[0].excl_ms, 1e-15);
    NEAR(200.0 / 260.0, r[0].share, 1e-12);
    NEAR(2.0, r[0].gbps, 1e-9);
    assert_true(isnan(r[0].pct_peak_bw)); /* no peak known */
    assert_string_equal(r[1].name, "mystery");
    assert_string_equal(r[2].name, "rmsnorm");
    NEAR(13e-6, r[2].total_ms, 1e-15);
    NEAR(10e-6, r[2].excl_ms, 1e-15);
    NEAR(0.003, r[2].min_us, 1e-12); /* 3 ns */
    free(r);
}

static void test_step_rows_give_busy_time_launch_gaps_and_host_gaps(void **state)
{
    (void)state;
    /* step 5: host [1000, 2000); kernels [1100,1200) [1250,1300) [1280,1400): busy 100 + 150 = 250,
     * span 1100..1400 = 300 -> gap 50. step 6: host [2100, 3000); one kernel [2200, 2700). */
    ig_step_ev st[] = {{5, 1, 1, 0, 1000, 2000, 500.0}, {6, 4, 40, 36, 2100, 3000, 0.0}};
    ig_act a[] = {K(1250, 1300, 5, 0), K(2200, 2700, 6, 0), K(1100, 1200, 5, 0), K(1280, 1400, 5, 0),
                  K(5000, 5100, -1, 0)};
    ignis_step_row *r = NULL;
    int n = ig_act_step_rows(st, 2, a, 5, 500, true, 4.0, &r);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].step, 5);
    assert_int_equal(r[0].n_kernels, 3);
    NEAR(250e-9, r[0].gpu_busy_s, 1e-15);
    NEAR(50e-9, r[0].launch_gap_s, 1e-15);
    NEAR(500e-9, r[0].t_s, 1e-15);
    NEAR(1000e-9, r[0].host_s, 1e-15);
    assert_true(isnan(r[0].host_gap_s));
    NEAR(2.0, r[0].gbps, 1e-9); /* 500 B / 250 ns */
    NEAR(50.0, r[0].pct_peak_bw, 1e-9);
    NEAR(100e-9, r[1].host_gap_s, 1e-15);
    NEAR(500e-9, r[1].gpu_busy_s, 1e-15);
    NEAR(0.0, r[1].launch_gap_s, 1e-15);
    assert_int_equal(r[1].prefill_tokens, 36);
    assert_true(isnan(r[1].gbps)); /* no declared bytes */
    free(r);
    /* without CUPTI: host columns only */
    n = ig_act_step_rows(st, 2, NULL, 0, 500, false, 4.0, &r);
    assert_int_equal(n, 2);
    assert_true(isnan(r[0].gpu_busy_s) && isnan(r[0].launch_gap_s) && isnan(r[0].gbps));
    NEAR(100e-9, r[1].host_gap_s, 1e-15);
    free(r);
}

static int gemv_ok_k8(int m, int n, int k) { return m >= 1 && m <= 4 && n > 0 && k % 8 == 0; }

static ig_cost_shape tiny_shape(void)
{
    ig_cost_shape m = {.H = 16,
                       .nh = 2,
                       .nkv = 1,
                       .D = 8,
                       .inter = 32,
                       .qkv_rows = 32,
                       .vslice = 64,
                       .n_layers = 2,
                       .es = 2,
                       .gemv_max_m = 4,
                       .prefill_kernel = true,
                       .gemv_ok = gemv_ok_k8};
    return m;
}

static void test_cost_of_a_decode_step_matches_the_hand_count(void **state)
{
    (void)state;
    ig_cost_shape m = tiny_shape();
    int32_t qs[] = {0, 1}, kv[] = {10};
    ig_cost_step st = {1, 1, 1, qs, kv, true};
    double b[IG_FAM_COUNT] = {0}, f[IG_FAM_COUNT] = {0};
    /* per layer: fused QKV 32*16*2 + 16*4 + 32*2 = 1152; attention 10 * (2*1*8*2) + 2*2*8*2 = 384;
     * wo 16*16*2 + 16*2 + 16*4*2 = 672; fused GLU 2*32*16*2 + 16*4 + 32*2 = 2176;
     * w2 16*32*2 + 32*2 + 16*4*2 = 1216. Embed 16 * 6 = 96; fused head 64*16*2 + 16*4 + 64*4 = 2368. */
    double total = ig_cost_step_add(&m, &st, b, f);
    NEAR(2 * (1152 + 384 + 672 + 2176 + 1216) + 96 + 2368, total, 1e-9);
    NEAR(2 * (1152 + 2176) + 2368, b[IG_FAM_GEMV_FUSED], 1e-9);
    NEAR(2 * (672 + 1216), b[IG_FAM_GEMV], 1e-9);
    NEAR(2 * 384, b[IG_FAM_ATTN_DECODE], 1e-9);
    NEAR(96, b[IG_FAM_EMBED], 1e-9);
    assert_true(b[IG_FAM_CUBLAS_GEMM] == 0 && b[IG_FAM_RMSNORM] == 0);
    NEAR(2 * (2 * 32 * 16 + 2 * 2 * 32 * 16) + 2 * 64 * 16, f[IG_FAM_GEMV_FUSED], 1e-9);
    NEAR(2 * (2 * 16 * 16 + 2 * 16 * 32), f[IG_FAM_GEMV], 1e-9);
    NEAR(2 * (4 * 2 * 8 * 10), f[IG_FAM_ATTN_DECODE], 1e-9);
    /* the sums accumulate over steps */
    ig_cost_step_add(&m, &st, b, f);
    NEAR(2 * 2 * 384, b[IG_FAM_ATTN_DECODE], 1e-9);
}

static void test_cost_of_a_prefill_step_goes_to_cublas_and_the_prefill_attention(void **state)
{
    (void)state;
    ig_cost_shape m = tiny_shape();
    int32_t qs[] = {0, 20}, kv[] = {20};
    ig_cost_step st = {1, 20, 1, qs, kv, false};
    double b[IG_FAM_COUNT] = {0}, f[IG_FAM_COUNT] = {0};
    ig_cost_step_add(&m, &st, b, f);
    /* causal: keys = 20*20 - 20*19/2 = 210 per head; 4 nh D keys per layer */
    NEAR(2 * 4.0 * 2 * 8 * 210, f[IG_FAM_ATTN_PREFILL], 1e-9);
    assert_true(f[IG_FAM_ATTN_DECODE] == 0 && f[IG_FAM_GEMV_FUSED] == 0);
    /* linears per layer: 2*20*(32*16 + 16*16 + 64*16 + 16*32) through cuBLAS; the LM head
     * over the one logit row is small enough for the GEMV kernel: 2*64*16 */
    NEAR(2 * 2.0 * 20 * (32 * 16 + 16 * 16 + 64 * 16 + 16 * 32), f[IG_FAM_CUBLAS_GEMM], 1e-9);
    NEAR(2 * 64 * 16, f[IG_FAM_GEMV], 1e-9);
    /* rmsnorm: 2 per layer over 20 rows + the final one over 1 row: T*H*(4+es) + H*4 each */
    NEAR(4 * (20 * 16 * 6 + 64) + (16 * 6 + 64), b[IG_FAM_RMSNORM], 1e-9);
}

static ignis_telemetry_sample TS(double t, double w, double e, uint64_t reasons)
{
    ignis_telemetry_sample s;
    memset(&s, 0, sizeof s);
    s.t_s = t;
    s.power_w = w;
    s.energy_j = e;
    s.sm_mhz = 1980;
    s.mem_mhz = 2619;
    s.gpu_util_pct = 100;
    s.mem_used_mb = 1000 + t;
    s.temp_c = 50 + t;
    s.throttle_reasons = reasons;
    return s;
}

static void test_telemetry_energy_from_the_counter_else_integrated_power(void **state)
{
    (void)state;
    ignis_profile_summary o;
    memset(&o, 0, sizeof o);
    ignis_telemetry_sample c[] = {TS(0, 100, 0, 0x1), TS(1, 300, 250, 0), TS(2, 200, 500, 0x2)};
    ig_telemetry_summarize(c, 3, 700, &o);
    NEAR(500, o.energy_j, 1e-9);
    NEAR(250, o.mean_w, 1e-9); /* 500 J over 2 s */
    NEAR(300, o.max_w, 1e-9);
    NEAR(700, o.power_limit_w, 1e-9);
    NEAR(1002, o.max_mem_used_mb, 1e-9);
    NEAR(52, o.max_temp_c, 1e-9);
    assert_false(o.throttled); /* idle and application clocks are not throttling */
    assert_int_equal(o.throttle_reasons, 0x3);
    /* no counter: trapezoid of power: (100+300)/2 + (300+200)/2 = 450 J; running at the
     * software power cap is the loaded board's regime (reported, not throttling), a thermal
     * slowdown is throttling */
    ignis_telemetry_sample p[] = {TS(0, 100, NAN, 0), TS(1, 300, NAN, 0x4), TS(2, 200, NAN, 0)};
    ig_telemetry_summarize(p, 3, NAN, &o);
    NEAR(450, o.energy_j, 1e-9);
    NEAR(225, o.mean_w, 1e-9);
    assert_false(o.throttled);
    assert_int_equal(o.throttle_reasons, 0x4);
    p[2].throttle_reasons = 0x20;
    ig_telemetry_summarize(p, 3, NAN, &o);
    assert_true(o.throttled);
    /* one sample: no energy, power is the sample's */
    ig_telemetry_summarize(p, 1, NAN, &o);
    assert_true(isnan(o.energy_j));
    NEAR(100, o.mean_w, 1e-9);
}

static void test_request_map_keeps_every_entry_through_growth_and_removal(void **state)
{
    (void)state;
    ig_req_map m;
    memset(&m, 0, sizeof m);
    enum { N = 5000 };
    static char keys[N];
    for (int i = 0; i < N; i++) {
        ig_req_acc *a = ig_req_map_get(&m, &keys[i]);
        assert_non_null(a);
        a->own_s = i;
        a->steps = 1;
    }
    assert_int_equal(m.n, N);
    assert_ptr_equal(ig_req_map_get(&m, &keys[7]), ig_req_map_get(&m, &keys[7]));
    ig_req_acc out;
    for (int i = 0; i < N; i += 2) {
        assert_true(ig_req_map_take(&m, &keys[i], &out));
        NEAR(i, out.own_s, 0);
    }
    assert_false(ig_req_map_take(&m, &keys[0], &out));
    for (int i = 1; i < N; i += 2) {
        assert_true(ig_req_map_take(&m, &keys[i], &out));
        NEAR(i, out.own_s, 0);
    }
    assert_int_equal(m.n, 0);
    ig_req_map_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_busy_time_is_the_union_of_overlapping_nested_and_disjoint_intervals),
        cmocka_unit_test(test_kernel_families_match_ignis_and_cublas_names),
        cmocka_unit_test(test_kernel_rows_group_families_and_give_rates_against_the_peaks),
        cmocka_unit_test(test_exclusive_time_charges_overlap_once_and_sums_to_the_union),
        cmocka_unit_test(test_step_rows_give_busy_time_launch_gaps_and_host_gaps),
        cmocka_unit_test(test_cost_of_a_decode_step_matches_the_hand_count),
        cmocka_unit_test(test_cost_of_a_prefill_step_goes_to_cublas_and_the_prefill_attention),
        cmocka_unit_test(test_telemetry_energy_from_the_counter_else_integrated_power),
        cmocka_unit_test(test_request_map_keeps_every_entry_through_growth_and_removal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
