/* seg_timer: exact time order, moving deadlines, one entry per customer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "time/seg_timer.h"

static void order_and_updates(void **state)
{
    (void)state;
    seg_timer_t *t = seg_timer_new();
    assert_int_equal(seg_timer_next(t), INT64_MAX);
    enum { N = 50000 };
    static int64_t want[N];
    uint64_t x = 7;
    for (uint32_t i = 0; i < N; i++) {
        x = x * 6364136223846793005ULL + 1;
        want[i] = (int64_t)(x >> 40);
        assert_int_equal(seg_timer_set(t, i, want[i]), 0);
    }
    /* move every third customer's deadline, earlier or later */
    for (uint32_t i = 0; i < N; i += 3) {
        x = x * 6364136223846793005ULL + 1;
        want[i] = (int64_t)(x >> 40);
        assert_int_equal(seg_timer_set(t, i, want[i]), 0);
    }
    /* clear every seventh */
    for (uint32_t i = 0; i < N; i += 7) {
        seg_timer_clear(t, i);
        want[i] = -1;
    }
    seg_timer_clear(t, 0);          /* clearing twice is harmless */
    seg_timer_clear(t, N + 100);    /* unknown customer too */
    size_t live = 0;
    for (uint32_t i = 0; i < N; i++) live += want[i] >= 0;
    assert_int_equal(seg_timer_count(t), live);

    uint32_t idx;
    int64_t when, prev = INT64_MIN;
    size_t popped = 0;
    int64_t limit = (int64_t)1 << 23;
    while (seg_timer_pop_due(t, limit, &idx, &when)) {
        assert_true(when >= prev);
        assert_true(when <= limit);
        assert_int_equal(when, want[idx]);
        want[idx] = -2;
        prev = when;
        popped++;
    }
    assert_true(seg_timer_next(t) > limit);
    while (seg_timer_pop_due(t, INT64_MAX, &idx, &when)) {
        assert_true(when >= prev);
        assert_int_equal(when, want[idx]);
        want[idx] = -2;
        prev = when;
        popped++;
    }
    assert_int_equal(popped, live);
    assert_int_equal(seg_timer_count(t), 0);
    for (uint32_t i = 0; i < N; i++) assert_true(want[i] < 0);
    seg_timer_destroy(t);
    seg_timer_destroy(NULL);
}

static void pop_respects_limit(void **state)
{
    (void)state;
    seg_timer_t *t = seg_timer_new();
    assert_int_equal(seg_timer_set(t, 5, 100), 0);
    uint32_t idx;
    int64_t when;
    assert_int_equal(seg_timer_pop_due(t, 99, &idx, &when), 0);
    assert_int_equal(seg_timer_pop_due(t, 100, &idx, &when), 1);   /* <= limit */
    assert_int_equal(idx, 5);
    assert_int_equal(when, 100);
    assert_int_equal(seg_timer_pop_due(t, 1000, &idx, &when), 0);
    seg_timer_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(order_and_updates),
        cmocka_unit_test(pop_respects_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
