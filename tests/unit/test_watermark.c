/* seg_watermark: min over active partitions, idleness (read to the end
 * and quiet), wall pace, never backwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "time/seg_watermark.h"

static void min_over_active_partitions(void **state)
{
    (void)state;
    seg_watermark_t *w = seg_watermark_new(SEG_TIME_EVENT, 10, 30000);
    assert_int_equal(seg_watermark_add(w, 0, 0), 0);
    assert_int_equal(seg_watermark_add(w, 3, 0), 0);
    assert_int_equal(seg_watermark_update(w, 0), INT64_MIN);  /* nothing yet */
    seg_watermark_observe(w, 0, 1000, 100);
    /* slot 3 has no record and is not idle: it holds the watermark */
    assert_int_equal(seg_watermark_update(w, 200), INT64_MIN);
    seg_watermark_observe(w, 3, 500, 300);
    assert_int_equal(seg_watermark_update(w, 400), 490);       /* min(1000,500) - 10 */
    seg_watermark_observe(w, 3, 2000, 500);
    assert_int_equal(seg_watermark_update(w, 600), 990);
    /* slot 3 goes backwards in ts: the watermark does not */
    seg_watermark_observe(w, 3, 100, 700);
    seg_watermark_observe(w, 0, 900, 700);
    assert_int_equal(seg_watermark_update(w, 800), 990);
    /* slot 0 idle (read to its end, 30 s without records) no longer holds
     * it back */
    seg_watermark_at_end(w, 0);
    seg_watermark_observe(w, 3, 3000, 20000);
    assert_int_equal(seg_watermark_update(w, 30700), 2990);
    assert_true(seg_watermark_idle(w, 0));
    assert_false(seg_watermark_idle(w, 3));
    seg_watermark_destroy(w);
}

static void all_idle_follows_wall_clock(void **state)
{
    (void)state;
    seg_watermark_t *w = seg_watermark_new(SEG_TIME_EVENT, 0, 5000);
    seg_watermark_add(w, 0, 0);
    seg_watermark_add(w, 1, 0);
    seg_watermark_observe(w, 0, 1000000, 1000);
    seg_watermark_observe(w, 1, 999000, 2000);
    seg_watermark_at_end(w, 0);
    seg_watermark_at_end(w, 1);
    assert_int_equal(seg_watermark_update(w, 2000), 999000);
    /* both idle from 7 s on: largest ts + wall time since the last record */
    assert_int_equal(seg_watermark_update(w, 7000), 1000000 + 5);
    assert_int_equal(seg_watermark_update(w, 62000), 1000000 + 60);
    /* a record wakes a partition: min rule again, but never backwards */
    seg_watermark_observe(w, 1, 1000010, 63000);
    assert_int_equal(seg_watermark_update(w, 63000), 1000060);
    seg_watermark_remove(w, 1);
    seg_watermark_remove(w, 0);
    /* no partitions left: still wall pace from the last record */
    assert_int_equal(seg_watermark_update(w, 163000), 1000010 + 100);
    seg_watermark_destroy(w);
}

/* A partition taken over behind the others (restored state, backlog to
 * fold) must not have its deadlines fired by the shared watermark, which
 * is already ahead and never goes back. */
static void slot_limit_holds_a_partition_behind(void **state)
{
    (void)state;
    seg_watermark_t *w = seg_watermark_new(SEG_TIME_EVENT, 10, 30000);
    seg_watermark_add(w, 0, 0);
    seg_watermark_observe(w, 0, 5000, 100);
    assert_int_equal(seg_watermark_update(w, 100), 4990);
    assert_int_equal(seg_watermark_slot_limit(w, 0), 4990);
    /* slot 1 joins: no record yet, so none of its deadlines may fire */
    seg_watermark_add(w, 1, 200);
    assert_int_equal(seg_watermark_update(w, 300), 4990);   /* monotonic */
    assert_int_equal(seg_watermark_slot_limit(w, 1), INT64_MIN);
    assert_int_equal(seg_watermark_slot_limit(w, 0), 4990);
    /* its backlog starts far behind: it fires only up to its own input */
    seg_watermark_observe(w, 1, 1000, 400);
    assert_int_equal(seg_watermark_update(w, 400), 4990);
    assert_int_equal(seg_watermark_slot_limit(w, 1), 990);
    seg_watermark_observe(w, 1, 3000, 500);
    seg_watermark_update(w, 500);
    assert_int_equal(seg_watermark_slot_limit(w, 1), 2990);
    /* caught up and beyond the watermark: the watermark caps it */
    seg_watermark_observe(w, 1, 9000, 600);
    assert_int_equal(seg_watermark_update(w, 600), 4990);
    assert_int_equal(seg_watermark_slot_limit(w, 1), 4990);
    /* slot 0 goes idle: slot 1's own ts now drives everything */
    seg_watermark_at_end(w, 0);
    assert_int_equal(seg_watermark_update(w, 30200), 8990);
    assert_int_equal(seg_watermark_slot_limit(w, 0), 8990);
    /* a new slot that stays silent becomes idle and follows */
    seg_watermark_add(w, 2, 30200);
    assert_int_equal(seg_watermark_slot_limit(w, 2), INT64_MIN);
    seg_watermark_at_end(w, 2);   /* an empty partition: at its end at once */
    seg_watermark_observe(w, 1, 9001, 60000);
    seg_watermark_update(w, 60300);
    assert_true(seg_watermark_idle(w, 2));
    assert_int_equal(seg_watermark_slot_limit(w, 2), seg_watermark_get(w));
    seg_watermark_destroy(w);
}

/* Time without records is not idleness while records are still to be
 * read: a consumer that falls behind (blocked on a full producer queue, a
 * long checkpoint, a starved CPU) must not let the watermark run past the
 * records it has not read yet, or their customers' deadlines fire early
 * and the output depends on the machine's speed. */
static void behind_is_never_idle(void **state)
{
    (void)state;
    seg_watermark_t *w = seg_watermark_new(SEG_TIME_EVENT, 0, 3000);
    seg_watermark_add(w, 0, 0);
    seg_watermark_add(w, 1, 0);
    seg_watermark_observe(w, 0, 1000, 100);
    seg_watermark_observe(w, 1, 500, 100);
    assert_int_equal(seg_watermark_update(w, 100), 500);
    /* slot 0 keeps coming; slot 1 has not been read for a minute, but it
     * was never at its end: it holds the watermark at its own ts */
    seg_watermark_observe(w, 0, 9000, 60000);
    assert_int_equal(seg_watermark_update(w, 60000), 500);
    assert_false(seg_watermark_idle(w, 1));
    assert_int_equal(seg_watermark_slot_limit(w, 1), 500);
    /* at its end, idle_timeout after its last record: idle at once */
    seg_watermark_at_end(w, 1);
    assert_int_equal(seg_watermark_update(w, 60100), 9000);
    assert_true(seg_watermark_idle(w, 1));
    /* a record without a ts (rejected) means more to read: not idle, and
     * its idle clock is not restarted by it */
    seg_watermark_more(w, 1);
    assert_false(seg_watermark_idle(w, 1));
    assert_int_equal(seg_watermark_update(w, 60200), 9000);   /* never back */
    assert_false(seg_watermark_idle(w, 1));
    seg_watermark_at_end(w, 1);
    seg_watermark_update(w, 60300);
    assert_true(seg_watermark_idle(w, 1));
    /* all at the end and quiet: wall pace from the last record (at 60 s) */
    seg_watermark_at_end(w, 0);
    assert_int_equal(seg_watermark_update(w, 70000), 9000 + 10);
    /* a record clears the end: min rule again */
    seg_watermark_observe(w, 1, 9500, 70000);
    assert_false(seg_watermark_idle(w, 1));
    assert_int_equal(seg_watermark_slot_limit(w, 1), 9010);   /* capped by the watermark */
    /* unknown slots are ignored */
    seg_watermark_at_end(w, 7);
    seg_watermark_more(w, 7);
    seg_watermark_destroy(w);
}

static void wall_mode(void **state)
{
    (void)state;
    seg_watermark_t *w = seg_watermark_new(SEG_TIME_WALL, 0, 5000);
    assert_int_equal(seg_watermark_update(w, 1700000000123LL), 1700000000);
    seg_watermark_observe(w, 0, 5, 1);   /* unknown slot: ignored */
    assert_int_equal(seg_watermark_update(w, 1600000000000LL), 1700000000);
    seg_watermark_destroy(w);
    seg_watermark_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(min_over_active_partitions),
        cmocka_unit_test(all_idle_follows_wall_clock),
        cmocka_unit_test(slot_limit_holds_a_partition_behind),
        cmocka_unit_test(behind_is_never_idle),
        cmocka_unit_test(wall_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
