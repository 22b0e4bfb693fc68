/*
 * seg_timer: each customer's next deadline, ordered by time.
 *
 * Segments change with the passage of time alone (a customer who stops
 * buying becomes at_risk 45 days after the last purchase), so segd must
 * wake up for a customer at exact instants. Rather than one timer per
 * deadline, the engine keeps at most ONE pending timer per customer: the
 * earliest instant at which any of its values could change. When it fires,
 * the engine evaluates the customer and sets the next one. Setting a
 * deadline is O(1); firing costs O(1) amortised per due customer (plus a
 * sort of each hour's deadlines when time reaches it), never a scan of all
 * customers. Deadlines come out in exact time order, at second precision,
 * so output can be compared instant by instant with a batch replay.
 * seg_timer.c says how (a timing wheel in front of a sorted run).
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

/* Sizes the timer for about n customers (a snapshot load knows how many
 * follow): the per-customer array is allocated once (and only touched as
 * customers arrive), wheel buckets start at their share of n instead of
 * growing by doubling, and on an empty timer the deadlines set next are
 * only recorded (4 bytes each) and placed together by seg_timer_settle,
 * or by the next pop or next() (placing them as they come costs a cache
 * miss each on a 10M-customer load). Only a hint: returns 0, or -1 on
 * allocation failure, and the timer works either way. */
int seg_timer_reserve(seg_timer_t *t, uint32_t n);

/* Places the deadlines recorded since seg_timer_reserve. Returns 0, or -1
 * on allocation failure (those not placed stay recorded; the next call,
 * pop or next() retries). */
int seg_timer_settle(seg_timer_t *t);

/* Sets (or moves) customer idx's deadline to `when`. Returns 0 or -1 on
 * allocation failure. */
int seg_timer_set(seg_timer_t *t, uint32_t idx, int64_t when);

/* Removes customer idx's deadline, if any. */
void seg_timer_clear(seg_timer_t *t, uint32_t idx);

/* If the earliest deadline is <= limit, removes it, stores it in *idx and
 * *when and returns 1. Otherwise returns 0. Equal deadlines (different
 * customers) come out by increasing idx, whatever order they were set in. */
int seg_timer_pop_due(seg_timer_t *t, int64_t limit, uint32_t *idx, int64_t *when);

/* Customer idx's pending deadline, or INT64_MAX if it has none. */
int64_t seg_timer_when(const seg_timer_t *t, uint32_t idx);

/* Prefetch hint for a caller that reads ahead: customer idx's entry (no
 * effect on the set). */
void seg_timer_prefetch(const seg_timer_t *t, uint32_t idx);

/* The customer whose deadline is k-th in line after the next pop, as far
 * as the timer knows without work (deadlines set late may come first), or
 * UINT32_MAX: a caller firing deadlines prefetches their state. */
uint32_t seg_timer_upcoming(const seg_timer_t *t, size_t k);

/* Number of pending deadlines. */
size_t seg_timer_count(const seg_timer_t *t);

/* Earliest pending deadline, or INT64_MAX if none. May load the next
 * deadlines into the timer's front (hence not const); on allocation
 * failure it returns a lower bound instead. */
int64_t seg_timer_next(seg_timer_t *t);

/* Bytes held. */
size_t seg_timer_bytes(const seg_timer_t *t);

#endif
