/*
 * seg_sizes: how many customers each segment holds, and how they move.
 *
 * Operators watch segments drift (mParticle shows each audience's size,
 * its adds and drops over 24 h, and volatility = (adds + drops) / size).
 * segd can answer that exactly because every change of a customer's value
 * is a transition: this module is fed the transitions the engine emits,
 * the same ones published, so its sizes are what a consumer of the
 * transitions would count by keeping each customer's latest value
 * (docs/operations.md, "Segment sizes"):
 *   - a transition from -> to moves one customer out of `from` and into
 *     `to`; a transition to null (a rule removed, a dimension switched
 *     off, a computed rule without a value) only takes it out;
 *   - a dimension whose customers start at a value without a transition
 *     (dissatisfied "out", a membership rule's "out") counts there every
 *     customer the transitions told of (one with at least one transition,
 *     in any dimension) that is in none of its other values; a customer
 *     segd holds but never published a transition for (refunds only, a
 *     profile only) is counted nowhere, as a consumer cannot know it.
 * Customers that arrive or leave without transitions are added or taken
 * out from the engine's state: a partition restored or revoked
 * (seg_sizes_add_engine), a customer evicted (state.evict_after) or back
 * after its eviction (seg_sizes_on_customer, the engine's hook). So with
 * eviction the sizes are of the customers held: a consumer that keeps an
 * evicted customer in "churned" counts it there, segd no longer does.
 *
 * Flows are counted by the event time of the transition (`at`) into two
 * rings per (dimension, from, to): 60 one-minute buckets (the last hour)
 * and 96 fifteen-minute buckets (the last 24 h). "Now" is the latest
 * transition or the time the owner advanced it to (replay's end, the
 * daemon's watermark), whichever is later. A window is whole buckets, so
 * "the last hour" reaches up to a minute further back, and "the last
 * 24 h" up to 15 minutes.
 *
 * Values: a built-in dimension has its fixed set. A rule's values are
 * rows in the order first seen; a computed rule can take any text, so
 * past SEG_SIZES_RULE_VALUES distinct values the rest share one row,
 * "_other", as segd_transitions_total does: neither the JSON nor the
 * Prometheus series grow without bound.
 *
 * Not thread-safe: one thread (the daemon's main loop, replay) feeds and
 * reads it; the Prometheus series it updates are atomics.
 */
#ifndef SEG_SIZES_H
#define SEG_SIZES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/seg_cfg.h"
#include "rule/seg_rule.h"
#include "segment/seg_engine.h"
#include "util/seg_metrics.h"

#define SEG_SIZES_RULE_VALUES 64

typedef struct seg_sizes seg_sizes_t;

/* NULL on allocation failure. */
seg_sizes_t *seg_sizes_new(void);
/* NULL is a no-op. Does not remove Prometheus series (the registry goes
 * with the process). */
void seg_sizes_destroy(seg_sizes_t *s);

/* The dimensions in force: the built-ins enabled in seg and the rules of
 * rs (NULL: none; borrowed for the call only). Call before the engines
 * switch (seg_engine_change_rules), so the transitions of the switch find
 * the new dimensions and their starting values. A dimension no longer in
 * force is kept, inactive, for the transitions that empty it, and no
 * longer listed. Returns 0, or -1 on allocation failure. */
int seg_sizes_set_dims(seg_sizes_t *s, const seg_segcfg_t *seg, const seg_ruleset_t *rs);

/* Counts one transition, as emitted. Returns 0, or -1 on allocation
 * failure (the sizes are then marked inexact; JSON says so). */
int seg_sizes_transition(seg_sizes_t *s, const seg_transition_t *t);

/* Counts one transition's flow only (entries, exits, rings), not the
 * customers: for transitions emitted while a partition's state is being
 * restored, whose result seg_sizes_add_engine then counts. */
int seg_sizes_flow(seg_sizes_t *s, const seg_transition_t *t);

/* Adds (sign 1) or takes out (sign -1) customer idx's current values, or
 * every customer of engine e, without counting flows. Returns 0 or -1 as
 * above. */
int seg_sizes_add_customer(seg_sizes_t *s, seg_engine_t *e, uint32_t idx, int sign);
int seg_sizes_add_engine(seg_sizes_t *s, seg_engine_t *e, int sign);

/* Moves "now" to t if it is later. */
void seg_sizes_advance(seg_sizes_t *s, int64_t t);
/* "Now": INT64_MIN before any transition or advance. */
int64_t seg_sizes_time(const seg_sizes_t *s);

/* The engine's customer hook (seg_engine_on_customer), opaque = s. */
void seg_sizes_on_customer(void *opaque, seg_engine_t *e, uint32_t idx, seg_cust_change_t what);

/* Customers the transitions told of, as counted here. */
int64_t seg_sizes_customers(const seg_sizes_t *s);

/* One row: a value of a dimension. */
typedef struct seg_size_row {
    const char *dimension;
    const char *value;          /* "_other": a rule's values past the bound */
    bool        initial;        /* customers start here without a transition */
    int64_t     customers;
    uint64_t    entries_1h, exits_1h, entries_24h, exits_24h;
    uint64_t    entries_total, exits_total;   /* since the process started */
} seg_size_row_t;

/* Calls fn for every value of every dimension in force, dimensions in
 * order (built-ins, then rules), values in order. Strings valid during
 * the call. */
typedef void (*seg_size_row_fn)(void *opaque, const seg_size_row_t *row);
void seg_sizes_rows(seg_sizes_t *s, seg_size_row_fn fn, void *opaque);

/* The JSON of GET /v1/segments (docs/operations.md): malloc'd, NUL-
 * terminated, its length in *len; NULL on allocation failure. */
char *seg_sizes_json(seg_sizes_t *s, size_t *len);

/* Sets segd_segment_customers{dimension,value} and registers the series
 * of values seen so far (counters segd_segment_entries_total and
 * segd_segment_exits_total are updated as transitions arrive once
 * registered here). Call from the thread that feeds s, e.g. once a
 * second. */
void seg_sizes_publish(seg_sizes_t *s, seg_metrics_t *m);

/* The replay summary's last section: one line per dimension,
 * "    lifecycle     new=3 active=10 ..." (values that need it quoted as
 * JSON strings), only values with customers. */
void seg_sizes_print(seg_sizes_t *s, FILE *f);

#endif
