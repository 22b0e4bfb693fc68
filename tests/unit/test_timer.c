/* seg_timer: exact time order, moving deadlines, one entry per customer,
 * against a brute-force model, including the wheel's edges: deadlines set
 * behind the loaded front, many turns ahead, before 1970. */
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

/* Brute force: the model holds each customer's deadline; a pop must
 * return a minimum of the model. */
enum { M = 3000 };
static int64_t model[M];

static int64_t model_min(void)
{
    int64_t m = INT64_MAX;
    for (int i = 0; i < M; i++)
        if (model[i] != INT64_MAX && model[i] < m) m = model[i];
    return m;
}

static uint64_t rng = 12345;
static uint64_t rnd(uint64_t n)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (rng >> 33) % n;
}

static void check_pops(seg_timer_t *t, int64_t limit)
{
    uint32_t idx;
    int64_t when;
    while (seg_timer_pop_due(t, limit, &idx, &when)) {
        assert_true(idx < M);
        assert_int_equal(when, model_min());
        assert_int_equal(model[idx], when);
        model[idx] = INT64_MAX;
    }
    assert_true(model_min() == INT64_MAX || model_min() > limit);
}

static void random_against_model(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        seg_timer_t *t = seg_timer_new();
        for (int i = 0; i < M; i++) model[i] = INT64_MAX;
        /* round 0: deadlines within hours; 1: within years; 2: around
         * 1970, negative included */
        int64_t base = round == 2 ? -400000 : 1700000000;
        int64_t span = round == 0 ? 20000 : round == 1 ? 5LL * 366 * 86400 : 800000;
        int64_t now = base;
        for (int step = 0; step < 40000; step++) {
            uint32_t idx = (uint32_t)rnd(M);
            switch (rnd(10)) {
            case 0:
                seg_timer_clear(t, idx);
                model[idx] = INT64_MAX;
                break;
            case 1: {
                /* behind the front: a customer whose clock runs late */
                int64_t w = now - (int64_t)rnd(5000);
                assert_int_equal(seg_timer_set(t, idx, w), 0);
                model[idx] = w;
                break;
            }
            case 2:
                now += (int64_t)rnd((uint64_t)span / 50 + 1);
                check_pops(t, now);
                break;
            default: {
                int64_t w = now + 1 + (int64_t)rnd((uint64_t)span);
                assert_int_equal(seg_timer_set(t, idx, w), 0);
                model[idx] = w;
            }
            }
            if (step % 1000 == 0) {
                size_t live = 0;
                for (int i = 0; i < M; i++) live += model[i] != INT64_MAX;
                assert_int_equal(seg_timer_count(t), live);
                assert_int_equal(seg_timer_next(t), model_min());
                for (int i = 0; i < 50; i++) {
                    uint32_t k = (uint32_t)rnd(M);
                    assert_int_equal(seg_timer_when(t, k), model[k]);
                }
            }
        }
        check_pops(t, INT64_MAX);
        assert_int_equal(seg_timer_count(t), 0);
        assert_int_equal(seg_timer_next(t), INT64_MAX);
        seg_timer_destroy(t);
    }
}

/* After seg_timer_reserve (a snapshot load), deadlines are placed in bulk
 * at the first pop: moves, clears and duplicates made meanwhile must all
 * come out right, and so must a load larger than the reservation. */
static void bulk_load(void **state)
{
    (void)state;
    for (int variant = 0; variant < 2; variant++) {
        seg_timer_t *t = seg_timer_new();
        assert_int_equal(seg_timer_reserve(t, variant ? M / 2 : M), 0);
        for (int i = 0; i < M; i++) model[i] = INT64_MAX;
        int64_t t0 = 1700000000;
        for (uint32_t i = 0; i < M; i++) {
            int64_t w = t0 + 1 + (int64_t)rnd(300 * 86400);
            assert_int_equal(seg_timer_set(t, i, w), 0);
            model[i] = w;
        }
        for (int k = 0; k < M / 3; k++) {
            uint32_t i = (uint32_t)rnd(M);
            if (rnd(4) == 0) {
                seg_timer_clear(t, i);
                model[i] = INT64_MAX;
            } else {
                int64_t w = t0 + 1 + (int64_t)rnd(300 * 86400);
                assert_int_equal(seg_timer_set(t, i, w), 0);
                model[i] = w;
            }
        }
        if (variant) assert_int_equal(seg_timer_settle(t), 0);
        size_t live = 0;
        for (int i = 0; i < M; i++) live += model[i] != INT64_MAX;
        assert_int_equal(seg_timer_count(t), live);
        assert_int_equal(seg_timer_next(t), model_min());
        for (int64_t lim = t0; lim < t0 + 301 * 86400; lim += 7 * 86400) {
            check_pops(t, lim);
            /* sets between pops land in loaded and unloaded buckets */
            uint32_t i = (uint32_t)rnd(M);
            int64_t w = lim + 1 + (int64_t)rnd(20 * 86400);
            assert_int_equal(seg_timer_set(t, i, w), 0);
            model[i] = w;
        }
        check_pops(t, INT64_MAX);
        assert_int_equal(seg_timer_count(t), 0);
        seg_timer_destroy(t);
    }
}

/* A deadline decades away is reached without walking the wheel an hour at
 * a time, and comes out after nearer ones set later. */
static void far_future(void **state)
{
    (void)state;
    seg_timer_t *t = seg_timer_new();
    int64_t t0 = 1700000000, far = t0 + 40LL * 366 * 86400;
    assert_int_equal(seg_timer_set(t, 1, far), 0);
    assert_int_equal(seg_timer_next(t), far);
    assert_int_equal(seg_timer_set(t, 2, t0 + 10), 0);       /* behind the front now */
    assert_int_equal(seg_timer_next(t), t0 + 10);
    uint32_t idx;
    int64_t when;
    assert_int_equal(seg_timer_pop_due(t, far - 1, &idx, &when), 1);
    assert_int_equal(idx, 2);
    assert_int_equal(seg_timer_pop_due(t, far - 1, &idx, &when), 0);
    assert_int_equal(seg_timer_pop_due(t, far, &idx, &when), 1);
    assert_int_equal(idx, 1);
    assert_int_equal(when, far);
    seg_timer_destroy(t);
}

/* upcoming() names the customers due next, in order, once their hour is
 * loaded. */
static void upcoming_in_order(void **state)
{
    (void)state;
    seg_timer_t *t = seg_timer_new();
    int64_t t0 = 1700000000 & ~(int64_t)4095;   /* one bucket: t0 .. t0+4095 */
    for (uint32_t i = 0; i < 40; i++) assert_int_equal(seg_timer_set(t, i, t0 + 4000 - 100 * i), 0);
    uint32_t idx;
    int64_t when;
    assert_int_equal(seg_timer_pop_due(t, t0 + 4095, &idx, &when), 1);
    assert_int_equal(idx, 39);
    for (uint32_t k = 0; k < 39; k++) assert_int_equal(seg_timer_upcoming(t, k), 38 - k);
    assert_int_equal(seg_timer_upcoming(t, 39), UINT32_MAX);
    seg_timer_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(order_and_updates),
        cmocka_unit_test(pop_respects_limit),
        cmocka_unit_test(random_against_model),
        cmocka_unit_test(bulk_load),
        cmocka_unit_test(far_future),
        cmocka_unit_test(upcoming_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
