/* The CUDA backend checks its knobs (ignis_cuda_opts) before touching a device, so a bad
 * value is one clear IGNIS_E_ARG on any machine, GPU or not. */
#include <string.h>

#include "backend/backend.h"
#include "model/synthetic.h"
#include "test_util.h"

static void expect_refused(const ignis_cuda_opts *k, const char *needle)
{
    ig_model_desc d;
    TU_CHECK(ig_synthetic_open("synthetic:tiny", IG_F16, 1, &d));
    ig_backend_opts o = {.dtype = IG_F16, .cuda = *k};
    ig_backend *b = NULL;
    assert_int_equal(ig_backend_cuda_create(&d, &o, &b), IGNIS_E_ARG);
    assert_null(b);
    if (!strstr(ignis_last_error(), needle))
        fail_msg("expected the error to mention \"%s\", got: %s", needle, ignis_last_error());
    ig_model_desc_free(&d);
}

static void test_cuda_backend_rejects_bad_knobs_before_any_device(void **state)
{
    (void)state;
    expect_refused(&(ignis_cuda_opts){.decode_attn = 7}, "cuda.decode_attn 7");
    expect_refused(&(ignis_cuda_opts){.split_cover = -2}, "cuda.split_cover -2");
    expect_refused(&(ignis_cuda_opts){.nccl = 3}, "cuda.nccl 3");

    /* the public entry point carries the options to the backend */
    ignis_engine_opts eo;
    ignis_engine_opts_init(&eo);
    eo.backend = IGNIS_BACKEND_CUDA;
    eo.cuda.decode_attn = 7;
    ignis_model *m = NULL;
    assert_int_equal(ignis_model_open("synthetic:tiny", &eo, &m), IGNIS_E_ARG);
    assert_null(m);
    if (!strstr(ignis_last_error(), "cuda.decode_attn 7"))
        fail_msg("expected ignis_model_open to report cuda.decode_attn, got: %s", ignis_last_error());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuda_backend_rejects_bad_knobs_before_any_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
