/* seg_inflight: offsets become committable only in order and only when
 * every message of every earlier record is delivered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "publish/seg_inflight.h"

static void in_order_commit(void **state)
{
    (void)state;
    seg_inflight_t *f = seg_inflight_new();
    uint64_t a = seg_inflight_begin(f, 10);
    uint64_t b = seg_inflight_begin(f, 11);
    uint64_t c = seg_inflight_begin(f, 15);   /* gaps (compaction, DLQ) are fine */
    seg_inflight_hold(f, a);                   /* a produced 2 messages */
    seg_inflight_hold(f, a);
    seg_inflight_release(f, a);                /* a processed */
    seg_inflight_release(f, b);                /* b produced nothing */
    seg_inflight_release(f, c);
    assert_int_equal(seg_inflight_advance(f), -1);   /* a still has 2 out */
    seg_inflight_release(f, a);
    assert_int_equal(seg_inflight_advance(f), -1);
    seg_inflight_release(f, a);
    assert_int_equal(seg_inflight_advance(f), 16);   /* a, b, c all done */
    assert_int_equal(seg_inflight_pending(f), 0);
    assert_int_equal(seg_inflight_advance(f), -1);
    /* late or duplicate releases of dropped tokens are ignored */
    seg_inflight_release(f, a);
    seg_inflight_destroy(f);
}

static void later_done_waits_for_earlier(void **state)
{
    (void)state;
    seg_inflight_t *f = seg_inflight_new();
    uint64_t t[5000];
    for (int i = 0; i < 5000; i++) {       /* forces the ring to grow and wrap */
        t[i] = seg_inflight_begin(f, 100 + i);
        seg_inflight_hold(f, t[i]);
        seg_inflight_release(f, t[i]);
    }
    for (int i = 4999; i >= 1; i--) seg_inflight_release(f, t[i]);
    assert_int_equal(seg_inflight_advance(f), -1);
    assert_int_equal(seg_inflight_pending(f), 5000);
    seg_inflight_release(f, t[0]);
    assert_int_equal(seg_inflight_advance(f), 100 + 5000);
    uint64_t n = seg_inflight_begin(f, 9000);
    assert_int_equal(n, t[4999] + 1);       /* tokens keep counting */
    seg_inflight_release(f, n);
    assert_int_equal(seg_inflight_advance(f), 9001);
    seg_inflight_destroy(f);
}

static void opaque_packing(void **state)
{
    (void)state;
    void *p = seg_inflight_pack(513, 0x123456789abULL);
    assert_int_equal(seg_inflight_slot(p), 513);
    assert_int_equal(seg_inflight_token(p), 0x123456789abULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(in_order_commit),
        cmocka_unit_test(later_done_waits_for_earlier),
        cmocka_unit_test(opaque_packing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
