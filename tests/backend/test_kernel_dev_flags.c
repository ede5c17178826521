/* The kernel launchers' per-device bookkeeping (kernels/dev_flags.h): a function attribute
 * raised on one GPU must not count as raised on another, and rank threads of different
 * GPUs recording at the same time must not lose each other's bits. */
#include <pthread.h>

#include "dev_flags.h"
#include "test_util.h"

static void test_dev_flags_are_per_device(void **state)
{
    (void)state;
    static ig_dev_flags f; /* as the launchers hold them: a zero-initialized static */
    assert_false(ig_dev_flags_any(&f));
    for (int d = 0; d < IG_MAX_DEVICES; d++)
        assert_false(ig_dev_flags_get(&f, d));
    ig_dev_flags_put(&f, 0, true);
    assert_true(ig_dev_flags_get(&f, 0));
    assert_false(ig_dev_flags_get(&f, 1)); /* the second GPU of --tp 2 still needs its own */
    ig_dev_flags_put(&f, 65, true);        /* a bit of the second word */
    assert_true(ig_dev_flags_get(&f, 65));
    assert_false(ig_dev_flags_get(&f, 64));
    assert_false(ig_dev_flags_get(&f, 1));
    ig_dev_flags_put(&f, 0, false);
    assert_false(ig_dev_flags_get(&f, 0));
    assert_true(ig_dev_flags_get(&f, 65));
    assert_true(ig_dev_flags_any(&f));
    ig_dev_flags_put(&f, 65, false);
    assert_false(ig_dev_flags_any(&f));
}

static void test_dev_flags_ignore_out_of_range_ordinals(void **state)
{
    (void)state;
    ig_dev_flags f = {{0}};
    ig_dev_flags_put(&f, -1, true);
    ig_dev_flags_put(&f, IG_MAX_DEVICES, true);
    assert_false(ig_dev_flags_any(&f));
    /* never "done" there: a launcher then redoes its per-device work, which is only slower */
    assert_false(ig_dev_flags_get(&f, -1));
    assert_false(ig_dev_flags_get(&f, IG_MAX_DEVICES));
}

typedef struct setter {
    ig_dev_flags *f;
    int dev;
} setter;

static void *set_many(void *arg)
{
    setter *s = arg;
    for (int rep = 0; rep < 20000; rep++) {
        ig_dev_flags_put(s->f, s->dev, false);
        ig_dev_flags_put(s->f, s->dev, true);
    }
    return NULL;
}

/* 64 threads toggle 64 devices that share one word: a plain read-modify-write would lose
 * bits; the atomic one ends with all of them set. */
static void test_dev_flags_concurrent_devices_keep_their_bits(void **state)
{
    (void)state;
    ig_dev_flags f = {{0}};
    pthread_t th[64];
    setter s[64];
    for (int i = 0; i < 64; i++) {
        s[i] = (setter){&f, i};
        assert_int_equal(pthread_create(&th[i], NULL, set_many, &s[i]), 0);
    }
    for (int i = 0; i < 64; i++)
        pthread_join(th[i], NULL);
    for (int d = 0; d < 64; d++)
        if (!ig_dev_flags_get(&f, d)) fail_msg("device %d: expected its bit set after the threads, found it clear", d);
    assert_false(ig_dev_flags_get(&f, 64));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dev_flags_are_per_device),
        cmocka_unit_test(test_dev_flags_ignore_out_of_range_ordinals),
        cmocka_unit_test(test_dev_flags_concurrent_devices_keep_their_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
