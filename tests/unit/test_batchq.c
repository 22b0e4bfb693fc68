/*
 * test_batchq: the hand-over between replay's decoder thread and its fold
 * thread (src/util/seg_batchq).
 *
 * Replay's output is only the same as one thread's if every batch arrives,
 * once, in the order it was filled, with what was written into it, and if
 * either side can stop the other without a hang. Checked with a real
 * producer thread over a small ring (so both sides wait on each other
 * often), with the consumer holding two batches at once as replay's
 * read-ahead does, with a consumer woken only once several batches wait
 * (replay's writer thread), and with cancels from both sides.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "util/seg_batchq.h"

#define RING   3
#define LAZY_RING 8      /* for the lazy wake-up: a consumer woken per half ring */
#define ITEMS  64
#define ROUNDS 20000

typedef struct {
    seg_batchq_t *q;
    uint64_t      data[LAZY_RING][ITEMS];
    unsigned      count[LAZY_RING];
    int           ring;
    uint64_t      rounds;       /* batches to produce */
    uint64_t      produced;     /* batches handed over */
} shared_t;

/* Fills batch k with k * ITEMS .. k * ITEMS + n - 1 (n varies), so the
 * consumer can tell a lost, repeated or reordered batch, and a batch
 * whose contents it does not see. */
static void *producer(void *arg)
{
    shared_t *s = arg;
    for (uint64_t k = 0; k < s->rounds; k++) {
        int i = seg_batchq_get_free(s->q);
        if (i < 0) return NULL;
        unsigned n = 1 + (unsigned)(k % ITEMS);
        for (unsigned j = 0; j < n; j++) s->data[i][j] = k * ITEMS + j;
        s->count[i] = n;
        seg_batchq_put_full(s->q, i);
        s->produced++;
    }
    seg_batchq_finish(s->q);
    return NULL;
}

static void check_batch(const shared_t *s, int i, uint64_t k)
{
    assert_true(i >= 0 && i < s->ring);
    assert_int_equal(s->count[i], 1 + (unsigned)(k % ITEMS));
    for (unsigned j = 0; j < s->count[i]; j++) assert_int_equal(s->data[i][j], k * ITEMS + j);
}

static void in_order(int ring, unsigned wake)
{
    shared_t s = { .q = seg_batchq_new((unsigned)ring), .rounds = ROUNDS, .ring = ring };
    assert_non_null(s.q);
    if (wake) seg_batchq_set_wake(s.q, wake);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, producer, &s), 0);
    uint64_t k = 0;
    int held = -1;          /* a second batch taken early, as replay's read-ahead does */
    for (;;) {
        int i = held >= 0 ? held : seg_batchq_get_full(s.q);
        held = -1;
        if (i < 0) break;
        check_batch(&s, i, k);
        if (k % 3 == 0) {
            held = seg_batchq_try_full(s.q);
            if (held >= 0) check_batch(&s, held, k + 1);
        }
        seg_batchq_put_free(s.q, i);
        k++;
    }
    assert_int_equal(k, ROUNDS);
    assert_int_equal(seg_batchq_get_full(s.q), -1);
    assert_int_equal(seg_batchq_try_full(s.q), -1);
    pthread_join(t, NULL);
    seg_batchq_destroy(s.q);
}

static void test_in_order(void **state)
{
    (void)state;
    in_order(RING, 0);
}

/* The same with the consumer woken only once half the ring waits: no
 * batch is lost or reordered, and neither side waits forever for the
 * other (the test would hang). */
static void test_in_order_lazy_wake(void **state)
{
    (void)state;
    in_order(LAZY_RING, LAZY_RING / 2);
}

static void *two_then_finish(void *arg)
{
    shared_t *s = arg;
    for (uint64_t k = 0; k < 2; k++) {
        int i = seg_batchq_get_free(s->q);
        s->data[i][0] = k * ITEMS;
        s->count[i] = 1;
        seg_batchq_put_full(s->q, i);
    }
    seg_batchq_finish(s->q);
    return NULL;
}

/* A consumer waiting for more batches than will ever come is woken by
 * finish, and gets the ones that did. */
static void test_lazy_wake_finish(void **state)
{
    (void)state;
    shared_t s = { .q = seg_batchq_new(LAZY_RING), .ring = LAZY_RING };
    assert_non_null(s.q);
    seg_batchq_set_wake(s.q, LAZY_RING);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, two_then_finish, &s), 0);
    for (uint64_t k = 0; k < 2; k++) {
        int i = seg_batchq_get_full(s.q);
        assert_true(i >= 0 && i < LAZY_RING);
        assert_int_equal(s.count[i], 1);
        assert_int_equal(s.data[i][0], k * ITEMS);
        seg_batchq_put_free(s.q, i);
    }
    assert_int_equal(seg_batchq_get_full(s.q), -1);
    pthread_join(t, NULL);
    seg_batchq_destroy(s.q);
}

/* The consumer stops early (a fold failed): the producer, waiting for a
 * free batch in a full ring, returns. */
static void test_consumer_cancels(void **state)
{
    (void)state;
    shared_t s = { .q = seg_batchq_new(RING), .rounds = ROUNDS, .ring = RING };
    assert_non_null(s.q);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, producer, &s), 0);
    int i = seg_batchq_get_full(s.q);
    check_batch(&s, i, 0);
    seg_batchq_cancel(s.q);
    pthread_join(t, NULL);
    assert_true(s.produced < ROUNDS);
    assert_true(s.produced <= RING);
    assert_int_equal(seg_batchq_get_full(s.q), -1);
    seg_batchq_destroy(s.q);
}

static void *cancel_soon(void *arg)
{
    seg_batchq_t *q = arg;
    int i = seg_batchq_get_free(q);
    assert_true(i >= 0);
    seg_batchq_put_full(q, i);
    seg_batchq_cancel(q);
    return NULL;
}

/* The producer stops (a read error): a consumer waiting for a batch
 * returns -1, and a batch handed over before the cancel is not taken. */
static void test_producer_cancels(void **state)
{
    (void)state;
    seg_batchq_t *q = seg_batchq_new(RING);
    assert_non_null(q);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_soon, q), 0);
    pthread_join(t, NULL);
    assert_int_equal(seg_batchq_get_full(q), -1);
    assert_int_equal(seg_batchq_get_free(q), -1);
    seg_batchq_destroy(q);
}

/* One thread, step by step: ring order, a full ring, the end. */
static void test_single_thread(void **state)
{
    (void)state;
    assert_null(seg_batchq_new(0));
    seg_batchq_t *q = seg_batchq_new(2);
    assert_non_null(q);
    assert_int_equal(seg_batchq_try_full(q), -1);
    assert_int_equal(seg_batchq_get_free(q), 0);
    seg_batchq_put_full(q, 0);
    assert_int_equal(seg_batchq_get_free(q), 1);
    seg_batchq_put_full(q, 1);
    assert_int_equal(seg_batchq_try_full(q), 0);
    assert_int_equal(seg_batchq_try_full(q), 1);
    assert_int_equal(seg_batchq_try_full(q), -1);
    seg_batchq_put_free(q, 0);
    assert_int_equal(seg_batchq_get_free(q), 0);
    seg_batchq_put_full(q, 0);
    seg_batchq_finish(q);
    seg_batchq_put_free(q, 1);
    assert_int_equal(seg_batchq_get_full(q), 0);
    seg_batchq_put_free(q, 0);
    assert_int_equal(seg_batchq_get_full(q), -1);
    seg_batchq_destroy(q);
    seg_batchq_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_thread),
        cmocka_unit_test(test_in_order),
        cmocka_unit_test(test_in_order_lazy_wake),
        cmocka_unit_test(test_lazy_wake_finish),
        cmocka_unit_test(test_consumer_cancels),
        cmocka_unit_test(test_producer_cancels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
