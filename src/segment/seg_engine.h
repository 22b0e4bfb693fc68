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

#include <msgpack.h>
#include <stdbool.h>

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
    const char           *features_json;   /* output.features as a list: the object,
                                            * rendered (NULL: the default set) */
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
    uint64_t foreign_rule_states;  /* restored records written under other rules (skipped) */
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
    uint32_t              idx;               /* get: the engine's index (rule state) */
    const msgpack_object *rules;             /* put: packed rule state, or NULL */
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

/* ---- rules ------------------------------------------------------------------
 * User rules (src/rule) run after the built-ins. A rule set is borrowed (it
 * must outlive the engine or its replacement) unless handed over with own.
 *
 * Changing rules or built-in settings on a running engine is safe only if
 * the engine kept the history the new ones read: a 90-day window needs 90
 * days of events, since() and attr() the whole history. The engine knows,
 * per item it keeps, from when its history is complete ("cover"), and
 * seg_engine_check_rules says whether a change can be exact. */

/* One kept item (a rule window "w:contact.visit", a latest timestamp
 * "s:contact", an attribute "a:plan", purchase days "days", the built-ins'
 * windows "b:money", "b:complaints") and how far back it is complete. */
typedef struct seg_engine_cover {
    char    name[160];
    int64_t from;    /* every event with ts > from is held; INT64_MIN: all */
    int64_t keep;    /* seconds kept; SEG_RULE_FOREVER: everything */
} seg_engine_cover_t;

/* Sets the rules of an engine without customers, whose input starts at the
 * beginning (a replay, a partition without saved state): everything it will
 * keep is complete. NULL: no rules. Returns 0, or -1 with errstr. */
int seg_engine_set_rules(seg_engine_t *e, const seg_ruleset_t *rs, char *errstr,
                         size_t errstr_size);

const seg_ruleset_t *seg_engine_rules(const seg_engine_t *e);
const seg_segcfg_t *seg_engine_segcfg(const seg_engine_t *e);

/* 0 if the engine holds what seg and rs read; else -1 with errstr naming
 * the first rule, the selector and how far back it is held, e.g.
 * "rule 'intent' counts contact.visit over 90d, but segd holds contact.visit
 * only since 2024-03-02T00:00:00Z (kept 30d)". */
int seg_engine_check_rules(const seg_engine_t *e, const seg_segcfg_t *seg,
                           const seg_ruleset_t *rs, char *errstr, size_t errstr_size);

/* Switches the engine to built-in settings seg and rules rs (NULL: none;
 * own: the engine destroys rs when it is done with it, also on failure).
 * Every customer's rule state moves to the new rules by name. With
 * reevaluate (a live reload, or a restart under a different file), each
 * customer is then evaluated at its own clock and every value that
 * changed is emitted with cause "rule": built-ins first, then rules in the
 * new order, then removed rules' "to: null" (docs/rules.md); call
 * seg_engine_check_rules first. Without (a restore that rewrites the state
 * next), nothing is emitted. Returns 0, or -1 with errstr. */
int seg_engine_change_rules(seg_engine_t *e, const seg_segcfg_t *seg, const seg_ruleset_t *rs,
                            bool own, bool reevaluate, char *errstr, size_t errstr_size);

/* The cover, for persistence, and back (a restore). */
uint32_t seg_engine_cover(const seg_engine_t *e, const seg_engine_cover_t **out);
int seg_engine_set_cover(seg_engine_t *e, const seg_engine_cover_t *c, uint32_t n);

/* Engine time: the largest instant it was evaluated at (>= every
 * customer's clock). Persisted with the state. */
int64_t seg_engine_time(const seg_engine_t *e);
void seg_engine_set_time(seg_engine_t *e, int64_t t);

/* A customer's rule state as one MessagePack value (nil without rules),
 * for seg_snapshot_pack_customer. st from seg_engine_customer_get. */
void seg_engine_pack_rule_state(seg_engine_t *e, const seg_cust_state_t *st, msgpack_packer *pk);

/* Fires deadlines <= ev->ts, then folds ev. Returns 0, or -1 with errstr
 * set (allocation failure, or an emit callback returned -1). */
int seg_engine_fold(seg_engine_t *e, const seg_event_t *ev,
                    char *errstr, size_t errstr_size);

/* Fires the deadlines <= ev->ts of ev's customer only, then folds ev.
 * Returns 0 or -1 as above. */
int seg_engine_fold_local(seg_engine_t *e, const seg_event_t *ev,
                          char *errstr, size_t errstr_size);

/* The hash of a customer id as the engine's store uses it: a pure
 * function, so any thread may compute it ahead of the fold. */
uint64_t seg_engine_hash(const char *customer_id, size_t len);

/* seg_engine_fold for a caller that hashed the id already: hash must be
 * seg_engine_hash(ev->customer_id, ev->customer_id_len). */
int seg_engine_fold_hashed(seg_engine_t *e, const seg_event_t *ev, uint64_t hash,
                           char *errstr, size_t errstr_size);

/* Reading ahead. With state far larger than the caches, folding an event
 * waits on a chain of misses: the id's index slot, the record, a long
 * id's bytes, the window blocks, the timer entry, the rule row and the
 * rule windows' blocks. A caller that holds the next events (replay, the
 * daemon and the snapshot loader read ahead) hides them by calling
 * seg_engine_prefetch() with each event's customer id up to four times
 * before folding it, stage 0, 1, 2 then 3, a few events apart so each
 * stage's lines have arrived by the next (stage 3 does something only
 * with user rules that keep windows). `p` carries what one stage found to
 * the next; stage 0 initialises it, so it comes first, and later stages
 * may be skipped. Hints only: no effect on state or results. */
typedef struct seg_prefetch {
    uint64_t hash;
    uint32_t idx;
} seg_prefetch_t;
void seg_engine_prefetch(const seg_engine_t *e, const char *customer_id, size_t len,
                         seg_prefetch_t *p, int stage);
/* Stage 0 for a caller that set p->hash = seg_engine_hash(id) already. */
void seg_engine_prefetch_hashed(const seg_engine_t *e, seg_prefetch_t *p);

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

/* ---- lookups ------------------------------------------------------------------
 * For GET /v1/customers/{id} and the segment sizes (src/segment/seg_sizes.h);
 * like everything here, only from the thread that drives the engine. */

/* Index of the customer with this id, or SEG_CUST_NONE (UINT32_MAX). */
uint32_t seg_engine_customer_find(seg_engine_t *e, const char *id, size_t len);

/* Customer idx's id (not NUL-terminated, *len bytes) and, if seq is not
 * NULL, the number of transitions it was published; NULL for a free
 * index. Valid until the engine's next call. */
const char *seg_engine_customer_id(const seg_engine_t *e, uint32_t idx, size_t *len,
                                   uint32_t *seq);

/* The value customer idx was last told for dimension dim (a built-in, or
 * SEG_DIM_RULE(i) of the rules in force): the published name, e.g.
 * "at_risk", "out", a rule's label or computed text; NULL for none (never
 * evaluated to a value, a disabled dimension, a free index). Valid until
 * the engine's next call. */
const char *seg_engine_customer_value(seg_engine_t *e, uint32_t idx, seg_dim_t dim);

/* A customer as a lookup shows it. Strings valid until the next call. */
typedef struct seg_cust_view {
    const char      *id;            /* not NUL-terminated; valid until the next fold */
    size_t           id_len;
    uint32_t         seq;           /* transitions published so far */
    int64_t          now;           /* the customer's clock */
    int64_t          at;            /* what features and predictions are at */
    seg_features_t   features;      /* at `at` */
    uint8_t          dims[SEG_DIM__COUNT];   /* current value codes (0: none) */
    int64_t          next_at;       /* next deadline, INT64_MAX: none */
    char             next_what[256];/* what it is, e.g. "recency reaches 45d
                                     * (lifecycle at_risk_after)" */
    bool             has_predict;   /* segments.predict parameters and a purchase */
    seg_rule_pview_t predict;       /* at `at` */
} seg_cust_view_t;

/* Fills out for customer idx at instant at, or at its own clock when that
 * is later (INT64_MIN: its clock). The values are those published, so
 * `at` must not pass a deadline not yet fired (seg_engine_advance to it
 * first): segd replay's customer table views everyone at the end of the
 * replay. Returns 0, or -1 for a free index. */
int seg_engine_customer_view(seg_engine_t *e, uint32_t idx, int64_t at, seg_cust_view_t *out);

/* Customers that come and go without a transition: told with the engine
 * and the customer's index, from inside the engine call that does it.
 *   SEG_CUST_EVICTED: just before an eviction (state.evict_after), while
 *     its values can still be read;
 *   SEG_CUST_RETURNED: an evicted customer's id is back (a new record,
 *     continuing its seq, with no values yet).
 * What counts customers per segment must hear of both (seg_sizes). NULL
 * fn: nobody is told. */
typedef enum { SEG_CUST_EVICTED = 1, SEG_CUST_RETURNED = 2 } seg_cust_change_t;
typedef void (*seg_cust_hook_fn)(void *opaque, seg_engine_t *e, uint32_t idx,
                                 seg_cust_change_t what);
void seg_engine_on_customer(seg_engine_t *e, seg_cust_hook_fn fn, void *opaque);

#endif
