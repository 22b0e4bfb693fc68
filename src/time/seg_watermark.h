/*
 * seg_watermark: the daemon's notion of "now" for deadlines that no event
 * of their own customer triggers.
 *
 * In event-time mode the watermark is the minimum, over assigned partitions
 * that are not idle, of each partition's largest event ts, minus the allowed
 * lateness: no partition can still deliver an event older than that (if
 * each partition is in ts order), so deadlines up to it can fire without
 * running ahead of input. A partition that has been read to its end and
 * has had no record for idle_timeout is idle and stops holding it back; one
 * with records still to read never is, so a slow consumer cannot make the
 * watermark pass records it has not read yet. When every partition is
 * idle, event time follows the
 * wall clock from the last record on: the largest ts seen, minus lateness,
 * plus the wall time elapsed since that record arrived. So silence still
 * turns `active` into `at_risk` on time, and a live stream (ts close to
 * arrival time) sees deadlines fire at their wall-clock instant.
 *
 * In wall mode the watermark is simply the wall clock.
 *
 * The watermark never goes back. Slots are small integers chosen by the
 * caller (one per assigned partition). Times: event ts in seconds, wall
 * time in milliseconds.
 */
#ifndef SEG_WATERMARK_H
#define SEG_WATERMARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { SEG_TIME_EVENT = 0, SEG_TIME_WALL = 1 } seg_time_mode_t;

typedef struct seg_watermark seg_watermark_t;

/* Returns a watermark tracker or NULL. lateness in seconds, idle_timeout
 * in milliseconds. */
seg_watermark_t *seg_watermark_new(seg_time_mode_t mode, int64_t lateness_s,
                                   int64_t idle_timeout_ms);
/* NULL is a no-op. */
void seg_watermark_destroy(seg_watermark_t *w);

/* Starts tracking slot (a newly assigned partition) at wall time now_ms.
 * A new slot holds the watermark back until it has a record or goes
 * idle (at its end, and idle_timeout after now_ms). Returns 0 or -1
 * (allocation). */
int seg_watermark_add(seg_watermark_t *w, unsigned slot, int64_t now_ms);

/* Stops tracking slot (revoked partition). */
void seg_watermark_remove(seg_watermark_t *w, unsigned slot);

/* A record with event ts `ts` arrived on slot at wall time now_ms. The
 * slot is no longer at its end (seg_watermark_at_end). */
void seg_watermark_observe(seg_watermark_t *w, unsigned slot, int64_t ts, int64_t now_ms);

/* A record without a usable ts (a rejected one) arrived on slot: it is
 * not at its end any more, and its idle clock is left as it was. */
void seg_watermark_more(seg_watermark_t *w, unsigned slot);

/* Slot has been read to the end of its partition (the consumer's
 * partition-EOF event, which comes after every record fetched before it).
 * Only a slot at its end can become idle; a record clears it. */
void seg_watermark_at_end(seg_watermark_t *w, unsigned slot);

/* Recomputes and returns the watermark at wall time now_ms (INT64_MIN
 * while nothing is known yet). Monotonic. */
int64_t seg_watermark_update(seg_watermark_t *w, int64_t now_ms);

/* The last value returned by seg_watermark_update. */
int64_t seg_watermark_get(const seg_watermark_t *w);

/* How far slot's own deadlines may fire, as of the last update: the
 * watermark, but never past the slot's own largest ts minus lateness while
 * the slot is active, and not at all (INT64_MIN) while an active slot has
 * had no record yet. A partition behind the others (one just taken over
 * from another instance, with a backlog) must fold its backlog before its
 * deadlines fire; the shared watermark, monotonic and already ahead, does
 * not say that. An idle slot follows the watermark. Wall mode: the
 * watermark. */
int64_t seg_watermark_slot_limit(const seg_watermark_t *w, unsigned slot);

/* 1 if slot is currently idle (as of the last update): at its end and
 * without a record for idle_timeout. */
bool seg_watermark_idle(const seg_watermark_t *w, unsigned slot);

#endif
