/*
 * seg_timer: each customer's next deadline, ordered by time.
 *
 * Segments change with the passage of time alone (a customer who stops
 * buying becomes at_risk 45 days after the last purchase), so segd must
 * wake up for a customer at exact instants. Rather than one timer per
 * deadline, the engine keeps at most ONE pending timer per customer: the
 * earliest instant at which any of its values could change. When it fires,
 * the engine evaluates the customer and sets the next one. So the
 * structure holds at most one entry per customer, and firing costs
 * O(log n) per due customer, never a scan of all customers.
 *
 * Why a heap and not a timer wheel: deadlines spread over years at second
 * precision, and transitions must fire in exact time order (the output is
 * compared instant by instant with a batch replay). A 4-ary implicit heap
 * gives exact order with no tuning, a small constant (4 children share a
 * cache line) and 16 bytes per pending customer plus a 4-byte position.
 */
#ifndef SEG_TIMER_H
#define SEG_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct seg_timer seg_timer_t;

/* Returns an empty timer set, or NULL. */
seg_timer_t *seg_timer_new(void);
/* NULL is a no-op. */
void seg_timer_destroy(seg_timer_t *t);

/* Sets (or moves) customer idx's deadline to `when`. Returns 0 or -1 on
 * allocation failure. */
int seg_timer_set(seg_timer_t *t, uint32_t idx, int64_t when);

/* Removes customer idx's deadline, if any. */
void seg_timer_clear(seg_timer_t *t, uint32_t idx);

/* If the earliest deadline is <= limit, removes it, stores it in *idx and
 * *when and returns 1. Otherwise returns 0. Equal deadlines come out in an
 * unspecified order (they belong to different customers). */
int seg_timer_pop_due(seg_timer_t *t, int64_t limit, uint32_t *idx, int64_t *when);

/* Customer idx's pending deadline, or INT64_MAX if it has none. */
int64_t seg_timer_when(const seg_timer_t *t, uint32_t idx);

/* Prefetch hints for a caller that reads ahead (no effect on the set):
 * first customer idx's heap position, then, once that is cached, its heap
 * entry. */
void seg_timer_prefetch_pos(const seg_timer_t *t, uint32_t idx);
void seg_timer_prefetch_entry(const seg_timer_t *t, uint32_t idx);

/* Number of pending deadlines. */
size_t seg_timer_count(const seg_timer_t *t);

/* Earliest pending deadline, or INT64_MAX if none. */
int64_t seg_timer_next(const seg_timer_t *t);

/* Bytes held. */
size_t seg_timer_bytes(const seg_timer_t *t);

#endif
