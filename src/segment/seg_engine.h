/*
 * seg_engine: folds events into customer state, re-evaluates that
 * customer's segments, and reports every change as a transition.
 *
 * This is the whole semantics of segd (docs/segments.md) behind four
 * calls; `segd replay` and the Kafka daemon both drive it, so they cannot
 * disagree. Time is driven from outside: the engine never reads a clock.
 *   - seg_engine_fold(ev) first fires every deadline <= ev->ts, then folds
 *     the event and evaluates its customer at max(customer clock, ev->ts);
 *   - seg_engine_fold_local(ev) fires only that customer's own deadlines
 *     <= ev->ts before folding: the daemon's form, where everyone else's
 *     deadlines wait for the watermark;
 *   - seg_engine_advance(t) fires every deadline <= t (end of a replay,
 *     or a daemon's watermark).
 * For a customer whose events arrive in ts order both forms give the same
 * transitions (docs/segments.md, "Per-customer time").
 * Transitions are handed to the emit callback synchronously, in order.
 * The transition and the strings it points at are valid only during the
 * callback.
 */
#ifndef SEG_ENGINE_H
#define SEG_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "config/seg_cfg.h"
#include "event/seg_event.h"
#include "rule/seg_rule.h"
#include "segment/seg_dims.h"
#include "state/seg_window.h"

typedef enum { SEG_CAUSE_EVENT = 0, SEG_CAUSE_TIME = 1, SEG_CAUSE_RULE = 2 } seg_cause_t;

/* A dimension number: the built-ins (seg_dim_t), then user rule i as
 * SEG_DIM__COUNT + i. */
#define SEG_DIM_RULE(i) ((seg_dim_t)(SEG_DIM__COUNT + (i)))

typedef struct seg_transition {
    const char           *customer_id;     /* not NUL-terminated */
    size_t                customer_id_len;
    uint32_t              seq;             /* 1, 2, ... per customer */
    seg_dim_t             dim;             /* >= SEG_DIM__COUNT: a user rule */
    const char           *dim_name;        /* NUL-terminated, never NULL */
    const char           *from;            /* NULL = no previous value */
    const char           *to;              /* NULL = no value any more (rules only) */
    uint8_t               from_code;       /* value codes of seg_dims.h; for a graded rule
                                            * or membership its label code; 0 = none */
    uint8_t               to_code;
    int64_t               at;              /* epoch seconds */
    seg_cause_t           cause;
    const seg_features_t *features;        /* at `at` */
} seg_transition_t;

/* Receives each transition. Return 0, or -1 to make the engine call that
 * triggered it fail (the transition counts as emitted: the caller decides
 * whether to stop). */
typedef int (*seg_emit_fn)(void *opaque, const seg_transition_t *t);

typedef struct seg_engine_stats {
    uint64_t events_folded;
    uint64_t late_events;          /* folded with ts < customer clock */
    uint64_t deadlines_fired;
    uint64_t evicted;
    uint64_t transitions;
    uint64_t transitions_by_dim[SEG_DIM__COUNT];
    uint64_t rule_transitions;     /* all user rules together */
    uint32_t customers;
    size_t   pending_timers;
    size_t   state_bytes;          /* store + timers, as allocated */
} seg_engine_stats_t;

typedef struct seg_engine seg_engine_t;

/* A customer's complete state, as persistence reads and writes it
 * (src/persist). Pointers are valid until the engine's next call. */
typedef struct seg_cust_state {
    const char           *id;
    size_t                id_len;
    int64_t               now, first_purchase, last_purchase;
    uint32_t              seq;
    uint8_t               flags;             /* SEG_CUST_HAS_* of seg_store.h */
    uint8_t               last[SEG_DIM__COUNT];
    const seg_winentry_t *money;             /* sorted by ts */
    uint32_t              n_money;
    const seg_winentry_t *complaints;
    uint32_t              n_complaints;
} seg_cust_state_t;

/* Receives one changed customer: its state, or state == NULL when the
 * customer was removed (eviction), with its id and the last seq it used
 * (kept so a returning customer never reuses an id). */
typedef int (*seg_change_fn)(void *opaque, const char *id, size_t id_len,
                             const seg_cust_state_t *state, uint32_t removed_seq);

/* Creates an engine with a copy of cfg. emit must not be NULL. Returns
 * NULL with errstr set on failure. */
seg_engine_t *seg_engine_new(const seg_segcfg_t *cfg, seg_emit_fn emit,
                             void *opaque, char *errstr, size_t errstr_size);
/* Frees all state. NULL is a no-op. */
void seg_engine_destroy(seg_engine_t *e);

/* Runs user rules (src/rule) after the built-ins. rs is borrowed: it must
 * outlive the engine or the next seg_engine_set_rules. For now only on an
 * engine without customers (a fresh replay or partition); NULL or a rule
 * set without rules runs none. Returns 0, or -1 with errstr. */
int seg_engine_set_rules(seg_engine_t *e, const seg_ruleset_t *rs, char *errstr,
                         size_t errstr_size);

/* Fires deadlines <= ev->ts, then folds ev. Returns 0, or -1 with errstr
 * set (allocation failure, or an emit callback returned -1). */
int seg_engine_fold(seg_engine_t *e, const seg_event_t *ev,
                    char *errstr, size_t errstr_size);

/* Fires the deadlines <= ev->ts of ev's customer only, then folds ev.
 * Returns 0 or -1 as above. */
int seg_engine_fold_local(seg_engine_t *e, const seg_event_t *ev,
                          char *errstr, size_t errstr_size);

/* Reading ahead. With state far larger than the caches, folding an event
 * waits on a chain of misses: the id's index slot, the record, the id
 * bytes, the window blocks, the timer entry. A caller that holds the next
 * events (replay and the snapshot loader decode ahead) hides them by
 * calling seg_engine_prefetch() with each event's customer id three times
 * before folding it, stage 0, 1 then 2, a few events apart so each stage's
 * lines have arrived by the next. `p` carries what one stage found to the
 * next; stage 0 initialises it, so it comes first, and stages 1 and 2 may
 * be skipped. Hints only: no effect on state or results. */
typedef struct seg_prefetch {
    uint64_t hash;
    uint32_t idx;
} seg_prefetch_t;
void seg_engine_prefetch(const seg_engine_t *e, const char *customer_id, size_t len,
                         seg_prefetch_t *p, int stage);

/* Earliest pending deadline of any customer, INT64_MAX if none. */
int64_t seg_engine_next_deadline(const seg_engine_t *e);

/* Fires every deadline <= t, in time order. Returns 0 or -1 as above. */
int seg_engine_advance(seg_engine_t *e, int64_t t, char *errstr, size_t errstr_size);

/* Largest event ts folded so far (INT64_MIN before the first). */
int64_t seg_engine_max_ts(const seg_engine_t *e);

void seg_engine_stats(const seg_engine_t *e, seg_engine_stats_t *out);

/* ---- persistence access --------------------------------------------------
 * Iterate customers: for idx in 0..seg_engine_customer_high()-1, call
 * seg_engine_customer_get, which returns -1 for a free index. */
uint32_t seg_engine_customer_high(const seg_engine_t *e);
int seg_engine_customer_get(seg_engine_t *e, uint32_t idx, seg_cust_state_t *out);

/* Creates or replaces a customer from a saved state and schedules its next
 * deadline. Entries must be sorted by ts. Returns 0 or -1 (errstr). */
int seg_engine_customer_put(seg_engine_t *e, const seg_cust_state_t *in,
                            char *errstr, size_t errstr_size);

/* Prepares an engine with no customers yet for about n of them (a snapshot
 * header says how many follow), so loading them does not grow the id
 * index step by step. Only a hint: returns 0, or -1 on allocation failure,
 * and the engine works either way. */
int seg_engine_reserve(seg_engine_t *e, uint32_t n);

/* Ends what seg_engine_reserve began: the deadlines of the customers put
 * since are placed now (otherwise the next deadline query does it).
 * Returns 0, or -1 on allocation failure (retried by that query). */
int seg_engine_reserve_end(seg_engine_t *e);

/* Removes a customer (a changelog tombstone). Absent is not an error. */
void seg_engine_customer_remove(seg_engine_t *e, const char *id, size_t len);

/* Engine time: the largest event ts folded. Restored from a snapshot. */
void seg_engine_set_max_ts(seg_engine_t *e, int64_t t);

/* Customers churned for `after` seconds are removed from memory at that
 * instant (state.evict_after); 0 (the default) never removes anyone. A
 * later event from an evicted customer starts it again as new. */
void seg_engine_set_evict_after(seg_engine_t *e, int64_t after);

/* Evicted customers leave only (hash of id, last seq) behind, so that a
 * returning customer continues its seq and never republishes an id with
 * different content. Persistence saves and restores these. */
size_t seg_engine_grave_count(const seg_engine_t *e);
/* Entry i (0..count-1 in table order; empty slots skipped by returning -1). */
int seg_engine_grave_get(const seg_engine_t *e, size_t i, uint64_t *hash, uint32_t *seq);
size_t seg_engine_grave_slots(const seg_engine_t *e);
int seg_engine_grave_put(seg_engine_t *e, uint64_t hash, uint32_t seq);

/* Starts recording which customers change (for the changelog). */
void seg_engine_track_changes(seg_engine_t *e, bool on);

/* Reports every customer changed or removed since the last call, once
 * each, and forgets them. Stops early and returns -1 if fn does. */
int seg_engine_drain_changes(seg_engine_t *e, seg_change_fn fn, void *opaque);

/* Customers changed since the last drain. */
size_t seg_engine_pending_changes(const seg_engine_t *e);

#endif
