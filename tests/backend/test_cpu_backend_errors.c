/* The CPU backend keeps its step scratch across forward passes and reports a failed
 * allocation as IGNIS_E_NOMEM with a message, leaving the backend usable; its matmul
 * reports a workspace that does not fit instead of writing past it. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"
#include "core/error.h"
#include "model/synthetic.h"
#include "test_util.h"

/* An allocator that counts its calls and, while `fail` is set, refuses every one. */
typedef struct counting_alloc {
    int calls;
    bool fail;
} counting_alloc;

static void *count_alloc(void *user, size_t bytes)
{
    counting_alloc *a = user;
    a->calls++;
    return a->fail ? NULL : malloc(bytes);
}

static void assert_msg_has(const char *needle)
{
    const char *msg = ignis_last_error();
    if (!strstr(msg, needle)) fail_msg("expected the error to mention \"%s\", got: %s", needle, msg);
}

/* Runs n prompt tokens of one sequence from position 0 (blocks 0.. of the pool), logits of
 * the last one into `logits`. */
static ignis_status prefill(ig_backend *b, int n, float *logits)
{
    int32_t toks[64], table[8] = {0, 1, 2, 3, 4, 5, 6, 7}, q_start[2] = {0, n}, kv_len[1] = {n}, row[1] = {n - 1};
    for (int i = 0; i < n; i++)
        toks[i] = (int32_t)(3 + 7 * i) % 32;
    ig_batch bt = {1, n, toks, q_start, kv_len, table, 8, row, 1};
    ig_forward_out out = {logits, NULL, NULL};
    return b->ops->forward(b, &bt, &out);
}

static void test_cpu_forward_keeps_scratch_and_reports_allocation_failure(void **state)
{
    (void)state;
    ig_model_desc d;
    TU_CHECK(ig_synthetic_open("synthetic:tiny", IG_F32, 1, &d));
    counting_alloc ca = {0, false};
    ig_backend_opts o = {.threads = 2, .dtype = IG_F32, .alloc = count_alloc, .alloc_user = &ca};
    ig_backend *b = NULL;
    TU_CHECK(ig_backend_cpu_create(&d, &o, &b));
    int made = 0;
    TU_CHECK(b->ops->kv_init(b, 16, 8, &made));
    int V = d.cfg.vocab_size;
    float *ref = malloc(sizeof(float) * V), *got = malloc(sizeof(float) * V);

    TU_CHECK(prefill(b, 4, ref));
    /* same sizes again with every allocation refused: the kept scratch serves it */
    ca.fail = true;
    int calls = ca.calls;
    TU_CHECK(prefill(b, 4, got));
    assert_int_equal(ca.calls, calls);
    assert_memory_equal(got, ref, sizeof(float) * V);

    /* a larger batch must grow the scratch: the refusal comes back as a status */
    assert_int_equal(prefill(b, 40, got), IGNIS_E_NOMEM);
    assert_msg_has("CPU backend: cannot allocate");
    assert_msg_has("batch of 40 tokens");

    /* the backend still works once memory is available again */
    ca.fail = false;
    TU_CHECK(prefill(b, 4, got));
    assert_memory_equal(got, ref, sizeof(float) * V);
    TU_CHECK(prefill(b, 40, got));

    free(ref);
    free(got);
    b->ops->destroy(b);
    ig_model_desc_free(&d);
}

static void test_cpu_matmul_rejects_short_workspace(void **state)
{
    (void)state;
    ig_pool *pool = ig_pool_create(2);
    assert_non_null(pool);
    uint16_t w[3 * 8] = {0};
    float x[8] = {0}, y[3], ws[16];
    ig_tensor t = {.dtype = IG_F16, .ndim = 2, .shape = {3, 8}, .data = w};
    assert_int_equal(ig_cpu_matmul_ws_floats(pool, 8), 16);
    TU_CHECK(ig_cpu_matmul(pool, ws, 16, y, 3, x, 1, &t, NULL));
    assert_int_equal(ig_cpu_matmul(pool, ws, 15, y, 3, x, 1, &t, NULL), IGNIS_E_INTERNAL);
    assert_msg_has("CPU matmul: 15 floats of workspace");
    assert_int_equal(ig_cpu_matmul(pool, ws, 16, y, 2, x, 1, &t, NULL), IGNIS_E_INTERNAL);
    assert_msg_has("output stride 2");
    ig_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_forward_keeps_scratch_and_reports_allocation_failure),
        cmocka_unit_test(test_cpu_matmul_rejects_short_workspace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
