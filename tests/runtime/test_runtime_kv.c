/* Unit tests of the block manager and the prefix cache alone (no engine, no backend). */
#include <stdlib.h>
#include <string.h>

#include "runtime/kv_manager.h"
#include "runtime/prefix_cache.h"
#include "test_util.h"

#define CHECK_KVM(m)                                                                                                   \
    do {                                                                                                               \
        char why_[256];                                                                                                \
        if (!ig_kvm_check((m), why_, sizeof why_)) fail_msg("block manager inconsistent: %s", why_);                   \
    } while (0)

static void test_kvm_alloc_until_empty_then_free_returns_all(void **st)
{
    (void)st;
    ig_kv_pool pool;
    TU_CHECK(ig_kv_pool_init(&pool, 8, 4));
    ig_kv_manager m;
    TU_CHECK(ig_kvm_init(&m, &pool, 0, false));
    assert_int_equal(ig_kvm_available(&m), 8);
    int got[8];
    for (int i = 0; i < 8; i++) {
        got[i] = ig_kvm_alloc(&m);
        assert_true(got[i] >= 0 && got[i] < 8);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(got[i], got[j]);
    }
    assert_int_equal(ig_kvm_alloc(&m), -1);
    assert_int_equal(ig_kvm_available(&m), 0);
    assert_int_equal(m.n_used, 8);
    CHECK_KVM(&m);
    for (int i = 0; i < 8; i++)
        ig_kvm_unref(&m, got[i]);
    assert_int_equal(m.n_used, 0);
    assert_int_equal(m.peak_used, 8);
    assert_int_equal(ig_kv_pool_free_count(&pool), 8);
    CHECK_KVM(&m);
    ig_kvm_free(&m);
    ig_kv_pool_destroy(&pool);
}

static void test_kvm_quota_caps_blocks_below_pool_size(void **st)
{
    (void)st;
    ig_kv_pool pool;
    TU_CHECK(ig_kv_pool_init(&pool, 10, 4));
    ig_kv_manager m;
    TU_CHECK(ig_kvm_init(&m, &pool, 3, false));
    assert_int_equal(ig_kvm_available(&m), 3);
    int a = ig_kvm_alloc(&m), b = ig_kvm_alloc(&m), c = ig_kvm_alloc(&m);
    assert_true(a >= 0 && b >= 0 && c >= 0);
    assert_int_equal(ig_kvm_alloc(&m), -1);
    assert_int_equal(ig_kv_pool_free_count(&pool), 7);
    ig_kvm_free(&m); /* returns held blocks */
    assert_int_equal(ig_kv_pool_free_count(&pool), 10);
    ig_kv_pool_destroy(&pool);
}

static void test_kvm_shared_block_freed_only_at_last_unref(void **st)
{
    (void)st;
    ig_kv_pool pool;
    TU_CHECK(ig_kv_pool_init(&pool, 4, 4));
    ig_kv_manager m;
    TU_CHECK(ig_kvm_init(&m, &pool, 0, true));
    int b = ig_kvm_alloc(&m);
    ig_kvm_ref(&m, b);
    assert_int_equal(ig_kvm_refcount(&m, b), 2);
    ig_kvm_unref(&m, b);
    assert_int_equal(ig_kv_pool_free_count(&pool), 3);
    ig_kvm_unref(&m, b);
    assert_int_equal(ig_kv_pool_free_count(&pool), 4); /* unregistered: straight back */
    CHECK_KVM(&m);
    ig_kvm_free(&m);
    ig_kv_pool_destroy(&pool);
}

static void test_kvm_registered_block_is_cached_then_revived_or_evicted_lru(void **st)
{
    (void)st;
    ig_kv_pool pool;
    TU_CHECK(ig_kv_pool_init(&pool, 3, 2));
    ig_kv_manager m;
    TU_CHECK(ig_kvm_init(&m, &pool, 0, true));
    int32_t t1[2] = {1, 2}, t2[2] = {3, 4}, t3[2] = {5, 6};
    uint64_t h1 = ig_pc_chain_hash(0, t1, 2), h2 = ig_pc_chain_hash(h1, t2, 2), h3 = ig_pc_chain_hash(0, t3, 2);
    int b1 = ig_kvm_alloc(&m), b2 = ig_kvm_alloc(&m), b3 = ig_kvm_alloc(&m);
    assert_true(ig_kvm_register(&m, b1, h1, 0, t1));
    assert_true(ig_kvm_register(&m, b2, h2, h1, t2));
    assert_true(ig_kvm_register(&m, b3, h3, 0, t3));
    assert_false(ig_kvm_register(&m, b3, h3, 0, t3)); /* already registered */
    /* release in order b2, b1, b3: LRU oldest is b2 */
    ig_kvm_unref(&m, b2);
    ig_kvm_unref(&m, b1);
    ig_kvm_unref(&m, b3);
    assert_int_equal(m.n_cached, 3);
    assert_int_equal(m.n_used, 0);
    assert_int_equal(ig_kvm_available(&m), 3);
    CHECK_KVM(&m);
    /* lookup finds cached blocks; a revived block leaves the LRU */
    assert_int_equal(ig_kvm_lookup(&m, h1, 0, t1), b1);
    assert_int_equal(ig_kvm_lookup(&m, h2, h1, t2), b2);
    ig_kvm_ref(&m, b1);
    assert_int_equal(m.n_cached, 2);
    CHECK_KVM(&m);
    /* a fresh allocation evicts the least recently released: b2, then b3 */
    int n1 = ig_kvm_alloc(&m);
    assert_int_equal(n1, b2);
    assert_int_equal(ig_kvm_lookup(&m, h2, h1, t2), -1);
    int n2 = ig_kvm_alloc(&m);
    assert_int_equal(n2, b3);
    assert_int_equal(ig_kvm_alloc(&m), -1);
    assert_int_equal(m.evictions, 2);
    CHECK_KVM(&m);
    ig_kvm_unref(&m, n1);
    ig_kvm_unref(&m, n2);
    ig_kvm_unref(&m, b1);
    assert_int_equal(m.n_cached, 1); /* b1 is still registered */
    CHECK_KVM(&m);
    ig_kvm_free(&m);
    assert_int_equal(ig_kv_pool_free_count(&pool), 3);
    ig_kv_pool_destroy(&pool);
}

static void test_pc_chain_hash_depends_on_whole_prefix(void **st)
{
    (void)st;
    int32_t a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 5};
    uint64_t ha = ig_pc_chain_hash(0, a, 4), hb = ig_pc_chain_hash(0, b, 4);
    assert_true(ha != hb);
    assert_true(ig_pc_chain_hash(ha, a, 4) != ig_pc_chain_hash(hb, a, 4)); /* same block, other prefix */
    assert_true(ig_pc_chain_hash(0, a, 4) == ha);                          /* deterministic */
    assert_true(ha != 0 && hb != 0);
}

static void test_pc_find_compares_tokens_not_just_hash(void **st)
{
    (void)st;
    ig_prefix_cache pc;
    TU_CHECK(ig_pc_init(&pc, 4, 2));
    int32_t t[2] = {7, 8}, u[2] = {7, 9};
    assert_true(ig_pc_insert(&pc, 1, 42, 0, t));
    assert_int_equal(ig_pc_find(&pc, 42, 0, t), 1);
    assert_int_equal(ig_pc_find(&pc, 42, 0, u), -1); /* forged collision: same hash, other tokens */
    assert_int_equal(ig_pc_find(&pc, 42, 5, t), -1); /* other parent */
    assert_false(ig_pc_insert(&pc, 2, 42, 0, t));    /* key taken by block 1 */
    assert_true(ig_pc_insert(&pc, 2, 42, 0, u));     /* same hash, other key: both live */
    assert_int_equal(ig_pc_find(&pc, 42, 0, u), 2);
    ig_pc_remove(&pc, 1);
    assert_int_equal(ig_pc_find(&pc, 42, 0, t), -1);
    assert_int_equal(ig_pc_find(&pc, 42, 0, u), 2);
    assert_int_equal(pc.n_entries, 1);
    ig_pc_free(&pc);
}

static void test_pc_random_operations_keep_lru_and_table_consistent(void **st)
{
    (void)st;
    enum { NB = 64, BL = 3 };
    ig_kv_pool pool;
    TU_CHECK(ig_kv_pool_init(&pool, NB, BL));
    ig_kv_manager m;
    TU_CHECK(ig_kvm_init(&m, &pool, 48, true));
    int held[NB * 4];
    int n_held = 0;
    srand(7);
    for (int it = 0; it < 20000; it++) {
        int op = rand() % 4;
        if ((op == 0 || n_held == 0) && n_held < NB * 4) {
            int b = ig_kvm_alloc(&m);
            if (b >= 0) {
                held[n_held++] = b;
                int32_t toks[BL] = {rand() % 5, rand() % 5, rand() % 5};
                uint64_t h = ig_pc_chain_hash(0, toks, BL);
                if (rand() % 2) ig_kvm_register(&m, b, h, 0, toks);
            } else {
                assert_int_equal(ig_kvm_available(&m), 0);
            }
        } else if (op == 1 && n_held < NB * 4) {
            int b = held[rand() % n_held];
            ig_kvm_ref(&m, b);
            held[n_held++] = b;
        } else if (op == 2) {
            int32_t toks[BL] = {rand() % 5, rand() % 5, rand() % 5};
            int b = ig_kvm_lookup(&m, ig_pc_chain_hash(0, toks, BL), 0, toks);
            if (b >= 0 && n_held < NB * 4) {
                ig_kvm_ref(&m, b);
                held[n_held++] = b;
            }
        } else if (n_held > 0) {
            int k = rand() % n_held;
            ig_kvm_unref(&m, held[k]);
            held[k] = held[--n_held];
        }
        if (it % 97 == 0) CHECK_KVM(&m);
    }
    while (n_held)
        ig_kvm_unref(&m, held[--n_held]);
    CHECK_KVM(&m);
    assert_int_equal(m.n_used, 0);
    assert_true(m.peak_used <= 48);
    ig_kvm_free(&m);
    assert_int_equal(ig_kv_pool_free_count(&pool), NB);
    ig_kv_pool_destroy(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kvm_alloc_until_empty_then_free_returns_all),
        cmocka_unit_test(test_kvm_quota_caps_blocks_below_pool_size),
        cmocka_unit_test(test_kvm_shared_block_freed_only_at_last_unref),
        cmocka_unit_test(test_kvm_registered_block_is_cached_then_revived_or_evicted_lru),
        cmocka_unit_test(test_pc_chain_hash_depends_on_whole_prefix),
        cmocka_unit_test(test_pc_find_compares_tokens_not_just_hash),
        cmocka_unit_test(test_pc_random_operations_keep_lru_and_table_consistent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
