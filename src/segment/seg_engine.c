/*
 * seg_engine: fold -> evaluate -> transitions -> next deadline.
 *
 * Every customer carries its own clock (seg_cust_t.now), the last instant
 * it was evaluated at. An event folds at max(clock, ts), so a late event
 * still counts but never moves a customer back in time; a fired deadline
 * moves the clock to the deadline. Because every deadline <= ts fires
 * before an event with that ts is folded, a customer whose own events are
 * in ts order is evaluated at exactly the instants the spec names,
 * whatever other customers' events are interleaved with it.
 *
 * After each evaluation the customer's single next deadline is recomputed
 * from its state: the nearest of last purchase + each recency threshold,
 * first purchase + new_for, and the oldest windowed entry + its window.
 * That is O(1) per customer given sorted windows, and it is exactly the
 * set of instants at which a time-dependent value can change.
 */
#include "segment/seg_engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/seg_rows.h"
#include "util/seg_ts.h"
#include "state/seg_store.h"
#include "time/seg_timer.h"

#define MAX_OFFSETS (3 + SEG_RFM_TIERS)
#define FIRE_AHEAD  8   /* deadlines between prefetching a record and firing it */

/* The customer record stores each dimension's last value in a few bits. */
_Static_assert(SEG_DIM__COUNT == SEG_CUST_LAST_SLOTS, "one last-value slot per dimension");
_Static_assert(SEG_LC__COUNT <= 1u << SEG_CUST_LAST_BITS(SEG_DIM_LIFECYCLE), "lifecycle codes");
_Static_assert(SEG_VAL__COUNT <= 1u << SEG_CUST_LAST_BITS(SEG_DIM_VALUE), "value codes");
_Static_assert(SEG_RFM__COUNT <= 1u << SEG_CUST_LAST_BITS(SEG_DIM_RFM), "rfm codes");
_Static_assert(SEG_DIS__COUNT <= 1u << SEG_CUST_LAST_BITS(SEG_DIM_DISSATISFIED), "dissatisfied codes");

struct seg_engine {
    seg_segcfg_t  cfg;
    int8_t        fjson_state;  /* this evaluation: 0 not rendered, 1 rendered */
    char         *fjson;        /* SEG_RULE_OUTF_MAX bytes, when outf_on */
    seg_rule_cust_t *cur_rc;    /* the rule view of the customer being evaluated */
    seg_store_t  *store;
    seg_timer_t  *timers;
    seg_emit_fn   emit;
    void         *opaque;
    int64_t       max_ts;
    int64_t       recency_offsets[MAX_OFFSETS]; /* ascending, unique */
    int           n_offsets;
    int           track_money;       /* some dimension reads F or M */
    unsigned      dims_on;           /* bit d: built-in dimension d is enabled */
    int           track_complaints;
    int           emit_failed;
    int           rule_oom;          /* rule state could not grow */
    int64_t       evict_after;       /* 0 = never */
    seg_cust_hook_fn on_cust;        /* evictions and returns (seg_sizes) */
    void         *cust_opaque;
    bool          track;             /* record changes for the changelog */
    uint32_t     *dirty;             /* changed customer indices (may repeat) */
    size_t        n_dirty, dirty_cap;
    char        **removed;           /* removed since the last drain: len byte, id, seq (4 bytes) */
    size_t        n_removed, removed_cap;
    struct grave { uint64_t hash; uint32_t seq; } *graves;  /* hash 0 = empty, seq 0 = deleted */
    size_t        grave_slots, grave_used;
    seg_winentry_t *scratch;         /* a customer's windows, for persistence */
    size_t        scratch_cap;
    /* User rules: the compiled set (borrowed), its runtime and one row of
     * rule state per customer; all NULL without rules. */
    const seg_ruleset_t *rules;
    seg_ruleset_t *rules_owned;      /* == rules when the engine owns them */
    seg_rulerun_t *rr;
    seg_rows_t   *rows;
    /* How far back the kept history is complete, per item (rule windows,
     * latest timestamps, attributes, the built-ins' windows): what a
     * change of rules may rely on (seg_engine_check_rules). */
    seg_engine_cover_t *cover;
    uint32_t      n_cover;
    int64_t       time;              /* engine time: >= every customer's clock */
    /* The evaluation the rules report into (rule_changed). */
    seg_cust_t   *cur;
    int64_t       cur_t;
    seg_cause_t   cur_cause;
    const seg_features_t *cur_features;
    seg_engine_stats_t stats;
};

/* Window entry value for purchases/refunds: signed amount * 2 + is_purchase,
 * so one 8-byte field says both how much and whether it counts in F. */
static int64_t money_val(int64_t signed_amount, int is_purchase)
{
    return signed_amount * 2 + (is_purchase ? 1 : 0);
}

static void add_offset(seg_engine_t *e, int64_t off)
{
    for (int i = 0; i < e->n_offsets; i++)
        if (e->recency_offsets[i] == off) return;
    int i = e->n_offsets++;
    while (i > 0 && e->recency_offsets[i - 1] > off) {
        e->recency_offsets[i] = e->recency_offsets[i - 1];
        i--;
    }
    e->recency_offsets[i] = off;
}

static int cover_switch(seg_engine_t *e, const seg_segcfg_t *seg, const seg_ruleset_t *rs);

/* The built-in settings and what follows from them. */
static void apply_segcfg(seg_engine_t *e, const seg_segcfg_t *cfg)
{
    e->cfg = *cfg;
    e->n_offsets = 0;
    if (cfg->lifecycle.enabled) {
        add_offset(e, cfg->lifecycle.at_risk_after);
        add_offset(e, cfg->lifecycle.silent_after);
        add_offset(e, cfg->lifecycle.churned_after);
    }
    if (cfg->rfm.enabled)
        for (int i = 0; i < SEG_RFM_TIERS; i++) add_offset(e, cfg->rfm.recency[i]);
    e->track_money = cfg->lifecycle.enabled || cfg->value.enabled || cfg->rfm.enabled;
    e->track_complaints = cfg->dissatisfied.enabled;
    e->dims_on = (unsigned)cfg->lifecycle.enabled << SEG_DIM_LIFECYCLE |
                 (unsigned)cfg->value.enabled << SEG_DIM_VALUE |
                 (unsigned)cfg->rfm.enabled << SEG_DIM_RFM |
                 (unsigned)cfg->dissatisfied.enabled << SEG_DIM_DISSATISFIED;
}

seg_engine_t *seg_engine_new(const seg_segcfg_t *cfg, seg_emit_fn emit,
                             void *opaque, char *errstr, size_t errstr_size)
{
    seg_engine_t *e = calloc(1, sizeof *e);
    if (!e) goto oom;
    e->emit = emit;
    e->opaque = opaque;
    e->max_ts = INT64_MIN;
    e->time = INT64_MIN;
    e->store = seg_store_new(errstr, errstr_size);
    if (!e->store) goto fail;
    e->timers = seg_timer_new();
    if (!e->timers) goto oom;

    apply_segcfg(e, cfg);
    if (cover_switch(e, cfg, NULL) != 0) goto oom;   /* e->time is INT64_MIN: all complete */
    return e;
oom:
    snprintf(errstr, errstr_size, "out of memory creating the engine");
fail:
    seg_engine_destroy(e);
    return NULL;
}

void seg_engine_destroy(seg_engine_t *e)
{
    if (!e) return;
    /* Rule rows point into the store's window pool and the runtime's
     * values; both go away here, so the rows need no freeing one by one. */
    seg_rows_destroy(e->rows);
    seg_rulerun_destroy(e->rr);
    seg_ruleset_destroy(e->rules_owned);
    free(e->fjson);
    free(e->cover);
    seg_store_destroy(e->store);
    seg_timer_destroy(e->timers);
    free(e->dirty);
    for (size_t i = 0; i < e->n_removed; i++) free(e->removed[i]);
    free(e->removed);
    free(e->graves);
    free(e->scratch);
    free(e);
}

/* Customer idx's rule row: never NULL when the rule set keeps state, except
 * on allocation failure; a shared zero row stands in when it keeps none. */
static unsigned char *rule_row(seg_engine_t *e, uint32_t idx)
{
    static unsigned char none[8];
    return e->rows ? seg_rows_get(e->rows, idx) : none;
}

static void rule_cust(const seg_cust_t *c, int64_t t, const uint8_t *dims, unsigned char *row,
                      seg_rule_cust_t *out)
{
    out->t = t;
    out->has_purchase = (c->flags & SEG_CUST_HAS_PURCHASE) != 0;
    out->first_purchase = c->first_purchase;
    out->last_purchase = c->last_purchase;
    out->dims = dims;
    out->row = row;
}

/* The transition's features object when output.features is a list: made
 * once per evaluation, at its first transition (whether it is printed is
 * the emitter's output.features). */
static const char *features_json(seg_engine_t *e, const seg_rule_cust_t *rc,
                                 const seg_features_t *f, bool fresh)
{
    if (!e->rr || !rc || !seg_ruleset_outf_count(e->rules)) return NULL;
    if (!e->fjson && !(e->fjson = malloc(SEG_RULE_OUTF_MAX))) return NULL;
    if (e->fjson_state == 0) {
        seg_rulerun_features_json(e->rr, rc, f, fresh, e->fjson, SEG_RULE_OUTF_MAX);
        e->fjson_state = 1;
    }
    return e->fjson;
}

/* A rule's value changed: one transition, numbered after the built-ins'. */
static void rule_changed(void *opaque, uint32_t rule, const char *from, const char *to)
{
    seg_engine_t *e = opaque;
    seg_cust_t *c = e->cur;
    const seg_ruleset_t *rs = e->rules;
    const char *const *vals;
    int nv = seg_ruleset_values(rs, rule, &vals);
    uint8_t fc = 0, tc = 0;
    for (int k = 0; k < nv; k++) {
        if (from && strcmp(vals[k], from) == 0) fc = (uint8_t)(k + 1);
        if (to && strcmp(vals[k], to) == 0) tc = (uint8_t)(k + 1);
    }
    seg_transition_t tr = {
        .customer_id = seg_cust_id(c),
        .customer_id_len = c->id_len,
        .seq = ++c->seq,
        .dim = SEG_DIM_RULE(rule),
        .dim_name = seg_ruleset_name(rs, rule),
        .from = from,
        .to = to,
        .from_code = fc,
        .to_code = tc,
        .at = e->cur_t,
        .cause = e->cur_cause,
        .features = e->cur_features,
        .features_json = features_json(e, e->cur_rc, e->cur_features, false),
    };
    e->stats.transitions++;
    e->stats.rule_transitions++;
    if (e->emit(e->opaque, &tr) != 0) e->emit_failed = 1;
}

static void features_at(seg_engine_t *e, seg_cust_t *c, int64_t t, seg_features_t *f)
{
    seg_winpool_t *pool = seg_store_winpool(e->store);
    memset(f, 0, sizeof *f);
    f->has_purchase = (c->flags & SEG_CUST_HAS_PURCHASE) != 0;
    f->has_contact = (c->flags & SEG_CUST_HAS_CONTACT) != 0;
    if (f->has_purchase) {
        f->recency = t - c->last_purchase;
        f->age = t - c->first_purchase;
    }
    if (e->track_money) {
        /* (t - window, t]: an entry at exactly t - window has left. */
        /* money_val: F counts the purchases (odd values), M sums the
         * signed amounts (the values halved). */
        if (c->money.len)
            seg_window_expire_sum(pool, &c->money, t - e->cfg.window, &f->frequency,
                                  &f->monetary);
    }
    if (e->track_complaints) {
        if (c->complaints.len)
            seg_window_expire(pool, &c->complaints, t - e->cfg.dissatisfied.window);
        f->complaints = c->complaints.len;
    }
}

/* Records that customer idx changed, once per drain. Allocation failure
 * only costs the changelog an entry until the next change; the local
 * snapshot still holds the state. */
static void mark_dirty(seg_engine_t *e, uint32_t idx, seg_cust_t *c)
{
    if (!e->track || (c->flags & SEG_CUST_DIRTY)) return;
    if (e->n_dirty == e->dirty_cap) {
        size_t ncap = e->dirty_cap ? e->dirty_cap * 2 : 1024;
        uint32_t *nd = realloc(e->dirty, ncap * sizeof *nd);
        if (!nd) return;
        e->dirty = nd;
        e->dirty_cap = ncap;
    }
    e->dirty[e->n_dirty++] = idx;
    c->flags |= SEG_CUST_DIRTY;
}

/* Makes e->scratch hold c's windows plus `more` entries. Called before a
 * window can grow (folding, restoring), so that reading a customer out for
 * persistence (state_of) never allocates and cannot fail. Returns 0, or -1
 * on allocation failure. */
static int scratch_fit(seg_engine_t *e, const seg_cust_t *c, size_t more)
{
    size_t need = (size_t)c->money.len + c->complaints.len + more;
    if (need <= e->scratch_cap) return 0;
    size_t ncap = need < 64 ? 64 : need + need / 2;
    seg_winentry_t *ns = realloc(e->scratch, ncap * sizeof *ns);
    if (!ns) return -1;
    e->scratch = ns;
    e->scratch_cap = ncap;
    return 0;
}

/* Evaluates customer c (index idx) at instant t (its clock) and emits one
 * transition per dimension whose value changed, built-ins first, then the
 * user rules that `dirty` says may have changed (seg_rule.h). */
static void evaluate(seg_engine_t *e, uint32_t idx, seg_cust_t *c, int64_t t, seg_cause_t cause,
                     uint64_t dirty)
{
    seg_features_t f;
    features_at(e, c, t, &f);
    uint8_t v[SEG_DIM__COUNT];
    seg_dims_eval(&e->cfg, &f, v);
    uint8_t last[SEG_DIM__COUNT];
    seg_cust_lasts(c, last);
    /* The enabled dimensions whose value differs, as bits: most
     * evaluations move none, and this costs no branch per dimension. */
    unsigned moved = 0;
    for (int d = 0; d < SEG_DIM__COUNT; d++) moved |= (unsigned)(v[d] != last[d]) << d;
    moved &= e->dims_on;
    seg_rule_cust_t rc;
    unsigned char *row = NULL;
    if (e->rr) {
        row = rule_row(e, idx);
        if (row) rule_cust(c, t, v, row, &rc);
        else e->rule_oom = 1;          /* the built-ins still move */
    }
    e->fjson_state = 0;
    for (unsigned m = moved; m; m &= m - 1) {
        int d = __builtin_ctz(m);
        seg_transition_t tr = {
            .customer_id = seg_cust_id(c),
            .customer_id_len = c->id_len,
            .seq = ++c->seq,
            .dim = (seg_dim_t)d,
            .from = seg_dim_value_name((seg_dim_t)d, last[d]),
            .to = seg_dim_value_name((seg_dim_t)d, v[d]),
            .from_code = last[d],
            .to_code = v[d],
            .dim_name = seg_dim_name((seg_dim_t)d),
            .at = t,
            .cause = cause,
            .features = &f,
            .features_json = row ? features_json(e, &rc, &f, true) : NULL,
        };
        last[d] = v[d];
        dirty |= SEG_RULE_DIRTY_DIM(d);
        e->stats.transitions++;
        e->stats.transitions_by_dim[d]++;
        if (e->emit(e->opaque, &tr) != 0) e->emit_failed = 1;
    }
    if (moved) seg_cust_set_lasts(c, last);
    if (e->rr && row) {
        e->cur = c;
        e->cur_t = t;
        e->cur_cause = cause;
        e->cur_features = &f;
        e->cur_rc = &rc;
        if (seg_rulerun_eval(e->rr, &rc, dirty, rule_changed, e) != 0) e->rule_oom = 1;
        e->cur = NULL;
        e->cur_rc = NULL;
    }
}

/* The earliest instant after c's clock at which one of its values could
 * change, or INT64_MAX if none can without a new event. */
static int64_t next_deadline(seg_engine_t *e, uint32_t idx, seg_cust_t *c)
{
    seg_winpool_t *pool = seg_store_winpool(e->store);
    int64_t best = INT64_MAX, now = c->now;
    if (c->flags & SEG_CUST_HAS_PURCHASE) {
        for (int i = 0; i < e->n_offsets; i++) {
            int64_t d = c->last_purchase + e->recency_offsets[i];
            if (d > now) {
                best = d;
                break;
            }
        }
        if (e->cfg.lifecycle.enabled) {
            int64_t d = c->first_purchase + e->cfg.lifecycle.new_for;
            if (d > now && d < best) best = d;
        }
        if (e->evict_after > 0) {
            int64_t d = c->last_purchase + e->cfg.lifecycle.churned_after + e->evict_after;
            if (d > now && d < best) best = d;
        }
    }
    /* Windows were expired at `now`, so their first entries leave later. */
    if (c->money.len) {
        int64_t d = seg_window_first_ts(pool, &c->money) + e->cfg.window;
        if (d < best) best = d;
    }
    if (c->complaints.len) {
        int64_t d = seg_window_first_ts(pool, &c->complaints) +
                    e->cfg.dissatisfied.window;
        if (d < best) best = d;
    }
    if (e->rr) {
        unsigned char *row = rule_row(e, idx);
        if (row) {
            seg_rule_cust_t rc;
            rule_cust(c, now, NULL, row, &rc);
            int64_t d = seg_rulerun_next(e->rr, &rc);
            if (d < best) best = d;
        }
    }
    return best;
}

/* SEG_CUST_TIMER_EXACT says that c's timer is its true deadline: set by
 * reschedule when next_deadline() equals the timer, and cleared before
 * anything changes what next_deadline() reads (an event, a settings
 * change, a lookup that expires windows). A due timer with the flag is
 * fired without computing its deadline again; one without it is checked
 * (seg_engine_advance). */
static void set_exact(seg_cust_t *c, bool exact)
{
    if (exact) c->flags |= SEG_CUST_TIMER_EXACT;
    else c->flags &= (uint8_t)~SEG_CUST_TIMER_EXACT;
}

/* Timers are kept lazily: a customer's timer is a lower bound of its true
 * next deadline. Most events push a deadline later (a purchase moves
 * "last purchase + 45d" out); moving the timer on every event would cost
 * a wheel entry per event (and, with the heap segd used before, a tenth of
 * replay time), so a later deadline leaves the timer where it is, and when
 * it comes due it is checked against next_deadline() and moved then (once
 * per deadline period rather than once per event). An earlier deadline
 * always moves the timer, so it is never later than the truth. */
static int reschedule(seg_engine_t *e, uint32_t idx, seg_cust_t *c)
{
    int64_t d = next_deadline(e, idx, c), w = seg_timer_when(e->timers, idx);
    int rc = 0;
    if (d < w) {
        rc = seg_timer_set(e->timers, idx, d);
        w = rc == 0 ? d : w;
    }
    set_exact(c, d == w);
    return rc;
}

/* Prefetches what evaluating customer idx reads besides its record (which
 * must be cached by now, or this waits for it): id, windows, rule row. */
static void warm_state(const seg_engine_t *e, uint32_t idx)
{
    if (idx >= seg_store_high(e->store)) return;
    seg_store_prefetch_id(e->store, idx);
    if (e->rows) seg_rows_prefetch(e->rows, idx);
    const seg_cust_t *c = seg_store_get(e->store, idx);
    const seg_winpool_t *pool = seg_store_winpool(e->store);
    seg_window_prefetch(pool, &c->money);
    seg_window_prefetch(pool, &c->complaints);
}

/* Prefetches the blocks of customer idx's rule windows (with user rules
 * that keep windows); its rule row must be cached by now, as warm_state
 * started it. With 20 rules, a fifth of replay's samples had been the
 * first read of those blocks. */
static void warm_rules(const seg_engine_t *e, uint32_t idx)
{
    if (!e->rows || !e->rr) return;
    const unsigned char *row = seg_rows_peek(e->rows, idx);
    if (row) seg_rulerun_prefetch(e->rr, row);
}

static uint64_t grave_hash(uint64_t h) { return h ? h : 1; }

int seg_engine_grave_put(seg_engine_t *e, uint64_t hash, uint32_t seq)
{
    hash = grave_hash(hash);
    if ((e->grave_used + 1) * 2 > e->grave_slots) {
        size_t n = e->grave_slots ? e->grave_slots * 2 : 64;
        struct grave *g = calloc(n, sizeof *g);
        if (!g) return -1;
        for (size_t i = 0; i < e->grave_slots; i++) {
            if (!e->graves[i].hash || !e->graves[i].seq) continue;
            size_t j = e->graves[i].hash & (n - 1);
            while (g[j].hash) j = (j + 1) & (n - 1);
            g[j] = e->graves[i];
        }
        free(e->graves);
        e->graves = g;
        e->grave_slots = n;
        size_t live = 0;
        for (size_t i = 0; i < n; i++) live += g[i].hash != 0;
        e->grave_used = live;
    }
    size_t j = hash & (e->grave_slots - 1);
    while (e->graves[j].hash && e->graves[j].hash != hash) j = (j + 1) & (e->grave_slots - 1);
    if (!e->graves[j].hash) e->grave_used++;
    e->graves[j].hash = hash;
    e->graves[j].seq = seq;
    return 0;
}

/* Returns and forgets the seq left by an evicted customer, 0 if none. */
static uint32_t grave_take(seg_engine_t *e, const char *id, size_t len)
{
    if (!e->grave_used) return 0;
    uint64_t hash = grave_hash(seg_store_hash(id, len));
    size_t j = hash & (e->grave_slots - 1);
    while (e->graves[j].hash) {
        if (e->graves[j].hash == hash) {
            uint32_t seq = e->graves[j].seq;
            e->graves[j].seq = 0;      /* deleted; the slot keeps probe chains intact */
            return seq;
        }
        j = (j + 1) & (e->grave_slots - 1);
    }
    return 0;
}

size_t seg_engine_grave_slots(const seg_engine_t *e) { return e->grave_slots; }

size_t seg_engine_grave_count(const seg_engine_t *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->grave_slots; i++) n += e->graves[i].hash && e->graves[i].seq;
    return n;
}

int seg_engine_grave_get(const seg_engine_t *e, size_t i, uint64_t *hash, uint32_t *seq)
{
    if (i >= e->grave_slots || !e->graves[i].hash || !e->graves[i].seq) return -1;
    *hash = e->graves[i].hash;
    *seq = e->graves[i].seq;
    return 0;
}

static int remember_removed(seg_engine_t *e, const char *id, size_t len, uint32_t seq)
{
    if (!e->track) return 0;
    if (e->n_removed == e->removed_cap) {
        size_t ncap = e->removed_cap ? e->removed_cap * 2 : 64;
        char **nr = realloc(e->removed, ncap * sizeof *nr);
        if (!nr) return -1;
        e->removed = nr;
        e->removed_cap = ncap;
    }
    char *copy = malloc(len + 5);
    if (!copy) return -1;
    copy[0] = (char)(unsigned char)len;
    memcpy(copy + 1, id, len);
    memcpy(copy + 1 + len, &seq, 4);
    e->removed[e->n_removed++] = copy;
    return 0;
}

/* Releases customer idx's rule state, if the rules keep any. */
static void free_rule_row(seg_engine_t *e, uint32_t idx)
{
    unsigned char *row = e->rows ? seg_rows_peek(e->rows, idx) : NULL;
    if (row) seg_rulerun_row_free(e->rr, row);
}

static int remove_customer(seg_engine_t *e, uint32_t idx, seg_cust_t *c)
{
    int rc = remember_removed(e, seg_cust_id(c), c->id_len, c->seq);
    free_rule_row(e, idx);
    if (seg_engine_grave_put(e, seg_store_hash(seg_cust_id(c), c->id_len), c->seq) != 0) rc = -1;
    seg_timer_clear(e->timers, idx);
    seg_store_delete(e->store, idx);
    return rc;
}

/* Fires customer idx's deadline at `when`: evaluate, then either evict it
 * (churned for evict_after) or set its next deadline. */
static int fire(seg_engine_t *e, uint32_t idx, seg_cust_t *c, int64_t when)
{
    c->now = when;
    e->stats.deadlines_fired++;
    evaluate(e, idx, c, when, SEG_CAUSE_TIME, SEG_RULE_DIRTY_TIME);
    mark_dirty(e, idx, c);
    if (e->evict_after > 0 && (c->flags & SEG_CUST_HAS_PURCHASE) &&
        when - c->last_purchase >= e->cfg.lifecycle.churned_after + e->evict_after) {
        e->stats.evicted++;
        if (e->on_cust) e->on_cust(e->cust_opaque, e, idx, SEG_CUST_EVICTED);
        return remove_customer(e, idx, c);
    }
    return reschedule(e, idx, c);
}

static int finish(seg_engine_t *e, int rc, char *errstr, size_t errstr_size)
{
    if (e->rule_oom) {
        e->rule_oom = 0;
        rc = -1;
    }
    if (rc != 0) {
        snprintf(errstr, errstr_size, "out of memory in the engine");
        return -1;
    }
    if (e->emit_failed) {
        e->emit_failed = 0;
        snprintf(errstr, errstr_size, "the transition sink failed");
        return -1;
    }
    return 0;
}

int seg_engine_advance(seg_engine_t *e, int64_t t, char *errstr, size_t errstr_size)
{
    if (t > e->time) e->time = t;
    uint32_t idx;
    int64_t when;
    int rc = 0;
    while (rc == 0 && seg_timer_pop_due(e->timers, t, &idx, &when)) {
        /* The timer knows who is due next: start loading their records,
         * and the ids and windows of those whose records were started
         * a few deadlines ago. */
        uint32_t ahead = seg_timer_upcoming(e->timers, FIRE_AHEAD);
        if (ahead != UINT32_MAX) seg_store_prefetch_cust(e->store, ahead);
        ahead = seg_timer_upcoming(e->timers, FIRE_AHEAD / 2);
        if (ahead != UINT32_MAX) warm_state(e, ahead);
        if (e->rr) {
            ahead = seg_timer_upcoming(e->timers, FIRE_AHEAD / 4);
            if (ahead != UINT32_MAX) warm_rules(e, ahead);
        }
        seg_cust_t *c = seg_store_get(e->store, idx);
        /* The entry is a lower bound (see reschedule): fire only if it is
         * the true deadline, else put the customer back at the true one.
         * An exact timer is the true deadline already. */
        if (!(c->flags & SEG_CUST_TIMER_EXACT)) {
            int64_t real = next_deadline(e, idx, c);
            if (real > when) {
                if (real != INT64_MAX) rc = seg_timer_set(e->timers, idx, real) == 0 ? 0 : -1;
                set_exact(c, rc == 0);
                continue;
            }
        }
        /* Deadlines are always after the clock (next_deadline), and an
         * event never moves a clock past a pending deadline without firing
         * it first, so when > c->now here. */
        rc = fire(e, idx, c, when);
    }
    return finish(e, rc, errstr, errstr_size);
}

static int fold_local(seg_engine_t *e, const seg_event_t *ev, uint64_t hash,
                      char *errstr, size_t errstr_size);

int seg_engine_fold(seg_engine_t *e, const seg_event_t *ev,
                    char *errstr, size_t errstr_size)
{
    if (seg_engine_advance(e, ev->ts, errstr, errstr_size) != 0) return -1;
    return seg_engine_fold_local(e, ev, errstr, errstr_size);
}

int seg_engine_fold_hashed(seg_engine_t *e, const seg_event_t *ev, uint64_t hash,
                           char *errstr, size_t errstr_size)
{
    if (seg_engine_advance(e, ev->ts, errstr, errstr_size) != 0) return -1;
    return fold_local(e, ev, hash, errstr, errstr_size);
}

uint64_t seg_engine_hash(const char *customer_id, size_t len)
{
    return seg_store_hash(customer_id, len);
}

/* Fires customer idx's own deadlines <= t, in order. */
static int fire_own(seg_engine_t *e, uint32_t idx, seg_cust_t *c, int64_t t)
{
    int64_t when;
    while (seg_timer_when(e->timers, idx) <= t && (when = next_deadline(e, idx, c)) <= t) {
        bool evicting = e->evict_after > 0 && (c->flags & SEG_CUST_HAS_PURCHASE) &&
            when - c->last_purchase >= e->cfg.lifecycle.churned_after + e->evict_after;
        if (fire(e, idx, c, when) != 0) return -1;
        if (evicting) return 1;
    }
    return 0;
}

int seg_engine_fold_local(seg_engine_t *e, const seg_event_t *ev,
                          char *errstr, size_t errstr_size)
{
    return fold_local(e, ev, seg_store_hash(ev->customer_id, ev->customer_id_len),
                      errstr, errstr_size);
}

static int fold_local(seg_engine_t *e, const seg_event_t *ev, uint64_t hash,
                      char *errstr, size_t errstr_size)
{
    int created;
    uint32_t idx = seg_store_upsert_hashed(e->store, ev->customer_id, ev->customer_id_len, hash,
                                           &created);
    if (idx == SEG_CUST_NONE) return finish(e, -1, errstr, errstr_size);
    seg_cust_t *c = seg_store_get(e->store, idx);
    if (!created) {
        int own = fire_own(e, idx, c, ev->ts);
        if (own < 0) return finish(e, -1, errstr, errstr_size);
        if (own == 1) {
            /* Evicted just now: the event starts the customer again. */
            idx = seg_store_upsert_hashed(e->store, ev->customer_id, ev->customer_id_len, hash,
                                          &created);
            if (idx == SEG_CUST_NONE) return finish(e, -1, errstr, errstr_size);
            c = seg_store_get(e->store, idx);
        }
    }
    if (created) {
        c->seq = grave_take(e, ev->customer_id, ev->customer_id_len);
        if (c->seq && e->on_cust) e->on_cust(e->cust_opaque, e, idx, SEG_CUST_RETURNED);
    }
    set_exact(c, false);               /* until reschedule, below */
    if (created || ev->ts > c->now) c->now = ev->ts;
    else if (ev->ts < c->now) e->stats.late_events++;
    const int64_t t = c->now;
    seg_winpool_t *pool = seg_store_winpool(e->store);
    int rc = scratch_fit(e, c, 1);     /* room for the entry this event may add */
    if (rc != 0) return finish(e, rc, errstr, errstr_size);

    switch (ev->type) {
    case SEG_EV_PURCHASE:
        if (!(c->flags & SEG_CUST_HAS_PURCHASE)) {
            c->first_purchase = c->last_purchase = ev->ts;
            c->flags |= SEG_CUST_HAS_PURCHASE;
        } else {
            if (ev->ts < c->first_purchase) c->first_purchase = ev->ts;
            if (ev->ts > c->last_purchase) c->last_purchase = ev->ts;
        }
        /* A late entry already outside the window at t never counts. */
        if (e->track_money && ev->ts > t - e->cfg.window)
            rc = seg_window_insert(pool, &c->money, ev->ts, money_val(ev->amount, 1));
        break;
    case SEG_EV_REFUND:
        if (e->track_money && ev->ts > t - e->cfg.window)
            rc = seg_window_insert(pool, &c->money, ev->ts, money_val(-ev->amount, 0));
        break;
    case SEG_EV_CONTACT:
        c->flags |= SEG_CUST_HAS_CONTACT;
        if (ev->kind == SEG_CONTACT_COMPLAINT && e->track_complaints &&
            ev->ts > t - e->cfg.dissatisfied.window)
            rc = seg_window_insert(pool, &c->complaints, ev->ts, 0);
        break;
    case SEG_EV_PROFILE:
        break;   /* only attrs, which only rules read */
    }
    if (rc == 0 && e->rr) {
        unsigned char *row = rule_row(e, idx);
        rc = row ? seg_rulerun_fold(e->rr, row, ev, t) : -1;
    }
    if (rc != 0) return finish(e, rc, errstr, errstr_size);

    e->stats.events_folded++;
    if (ev->ts > e->max_ts) e->max_ts = ev->ts;
    if (t > e->time) e->time = t;
    evaluate(e, idx, c, t, SEG_CAUSE_EVENT,
             created ? SEG_RULE_DIRTY_ALL : seg_rule_dirty_of(ev));
    mark_dirty(e, idx, c);
    rc = reschedule(e, idx, c);
    return finish(e, rc, errstr, errstr_size);
}

void seg_engine_prefetch(const seg_engine_t *e, const char *customer_id, size_t len,
                         seg_prefetch_t *p, int stage)
{
    switch (stage) {
    case 0:
        p->hash = seg_store_hash(customer_id, len);
        p->idx = SEG_CUST_NONE;
        seg_store_prefetch_slot(e->store, p->hash);
        break;
    case 1:
        p->idx = seg_store_prefetch_record(e->store, p->hash);
        if (p->idx != SEG_CUST_NONE) seg_timer_prefetch(e->timers, p->idx);
        break;
    case 2:
        if (p->idx != SEG_CUST_NONE) warm_state(e, p->idx);
        break;
    default:
        if (p->idx != SEG_CUST_NONE) warm_rules(e, p->idx);
        break;
    }
}

void seg_engine_prefetch_hashed(const seg_engine_t *e, seg_prefetch_t *p)
{
    p->idx = SEG_CUST_NONE;
    seg_store_prefetch_slot(e->store, p->hash);
}

int64_t seg_engine_next_deadline(const seg_engine_t *e)
{
    return seg_timer_next(e->timers);
}

int64_t seg_engine_max_ts(const seg_engine_t *e) { return e->max_ts; }

void seg_engine_stats(const seg_engine_t *e, seg_engine_stats_t *out)
{
    *out = e->stats;
    out->customers = seg_store_count(e->store);
    out->pending_timers = seg_timer_count(e->timers);
    out->state_bytes = seg_store_bytes(e->store) + seg_timer_bytes(e->timers) +
                       (e->rows ? seg_rows_bytes(e->rows) : 0) +
                       (e->rr ? seg_rulerun_bytes(e->rr) : 0);
}

/* ---- persistence access ---------------------------------------------------- */

uint32_t seg_engine_customer_high(const seg_engine_t *e)
{
    return seg_store_high(e->store);
}

/* Fills out from c. The pool keeps entries packed, so the windows are
 * copied into e->scratch (large enough: scratch_fit), valid until the
 * next call. */
static void state_of(seg_engine_t *e, uint32_t idx, seg_cust_t *c, seg_cust_state_t *out)
{
    seg_winpool_t *pool = seg_store_winpool(e->store);
    seg_winentry_t *money = NULL, *complaints = NULL;
    if (c->money.len) {
        money = e->scratch;
        seg_window_read(pool, &c->money, money);
    }
    if (c->complaints.len) {
        complaints = e->scratch + c->money.len;
        seg_window_read(pool, &c->complaints, complaints);
    }
    out->id = seg_cust_id(c);
    out->id_len = c->id_len;
    out->now = c->now;
    out->first_purchase = c->first_purchase;
    out->last_purchase = c->last_purchase;
    out->seq = c->seq;
    out->flags = c->flags & (SEG_CUST_HAS_PURCHASE | SEG_CUST_HAS_CONTACT);
    seg_cust_lasts(c, out->last);
    out->money = money;
    out->n_money = c->money.len;
    out->complaints = complaints;
    out->n_complaints = c->complaints.len;
    out->idx = idx;
    out->rules = NULL;
}

int seg_engine_customer_get(seg_engine_t *e, uint32_t idx, seg_cust_state_t *out)
{
    if (idx >= seg_store_high(e->store)) return -1;
    seg_cust_t *c = seg_store_get(e->store, idx);
    if (c->id_len == 0) return -1;
    state_of(e, idx, c, out);
    return 0;
}

int seg_engine_customer_put(seg_engine_t *e, const seg_cust_state_t *in,
                            char *errstr, size_t errstr_size)
{
    /* The record keeps each last value in only as many bits as its
     * dimension's codes need (persistence checks the same bound). */
    for (unsigned d = 0; d < SEG_DIM__COUNT; d++) {
        if (in->last[d] >= seg_dim_value_count((seg_dim_t)d)) {
            snprintf(errstr, errstr_size, "a customer's last %s value is out of range",
                     seg_dim_name((seg_dim_t)d));
            return -1;
        }
    }
    int created;
    uint32_t idx = seg_store_upsert(e->store, in->id, in->id_len, &created);
    if (idx == SEG_CUST_NONE) goto oom;
    seg_cust_t *c = seg_store_get(e->store, idx);
    if (created) (void)grave_take(e, in->id, in->id_len);   /* the live record wins */
    seg_winpool_t *pool = seg_store_winpool(e->store);
    seg_window_free(pool, &c->money);
    seg_window_free(pool, &c->complaints);
    c->now = in->now;
    c->first_purchase = in->first_purchase;
    c->last_purchase = in->last_purchase;
    c->seq = in->seq;
    c->flags = in->flags & (SEG_CUST_HAS_PURCHASE | SEG_CUST_HAS_CONTACT);
    seg_cust_set_lasts(c, in->last);
    bool sorted = true;
    for (uint32_t i = 1; i < in->n_money && sorted; i++)
        sorted = in->money[i - 1].ts <= in->money[i].ts;
    if (sorted) {
        if (seg_window_assign(pool, &c->money, in->money, in->n_money) != 0) goto oom;
    } else {
        for (uint32_t i = 0; i < in->n_money; i++)
            if (seg_window_insert(pool, &c->money, in->money[i].ts, in->money[i].val) != 0)
                goto oom;
    }
    for (uint32_t i = 0; i < in->n_complaints; i++)
        if (seg_window_insert(pool, &c->complaints, in->complaints[i].ts, 0) != 0) goto oom;
    if (scratch_fit(e, c, 0) != 0) goto oom;
    if (e->rr) {
        unsigned char *row = rule_row(e, idx);
        if (!row) goto oom;
        seg_rulerun_row_free(e->rr, row);
        const msgpack_object *o = in->rules;
        uint64_t h = 0;
        if (o && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2 &&
            o->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            h = o->via.array.ptr[0].via.u64;
        if (o && o->type != MSGPACK_OBJECT_NIL && h != seg_ruleset_hash(e->rules)) {
            /* Written under other rules: a changelog record that a later
             * checkpoint (under these rules) rewrites. Counted, not read. */
            e->stats.foreign_rule_states++;
        } else if (o && o->type != MSGPACK_OBJECT_NIL &&
                   seg_rulerun_unpack_row(e->rr, row, &o->via.array.ptr[1], errstr,
                                          errstr_size) != 0) {
            return -1;
        }
    }
    if (reschedule(e, idx, c) != 0) goto oom;
    return 0;
oom:
    snprintf(errstr, errstr_size, "out of memory restoring a customer");
    return -1;
}

int seg_engine_reserve(seg_engine_t *e, uint32_t n)
{
    int rc = seg_store_reserve(e->store, n);
    if (seg_timer_reserve(e->timers, n) != 0) rc = -1;
    return rc;
}

int seg_engine_reserve_end(seg_engine_t *e)
{
    return seg_timer_settle(e->timers);
}

void seg_engine_customer_remove(seg_engine_t *e, const char *id, size_t len)
{
    uint32_t idx = seg_store_find(e->store, id, len);
    if (idx == SEG_CUST_NONE) return;
    free_rule_row(e, idx);
    seg_timer_clear(e->timers, idx);
    seg_store_delete(e->store, idx);
}

void seg_engine_set_max_ts(seg_engine_t *e, int64_t t)
{
    e->max_ts = t;
    if (t > e->time) e->time = t;
}

void seg_engine_set_evict_after(seg_engine_t *e, int64_t after) { e->evict_after = after; }

void seg_engine_track_changes(seg_engine_t *e, bool on) { e->track = on; }

size_t seg_engine_pending_changes(const seg_engine_t *e)
{
    return e->n_dirty + e->n_removed;
}

int seg_engine_drain_changes(seg_engine_t *e, seg_change_fn fn, void *opaque)
{
    /* Removals first: a removed id that came back since is in the dirty
     * list and must end up present. */
    size_t r = 0;
    for (; r < e->n_removed; r++) {
        const char *rec = e->removed[r];
        size_t len = (unsigned char)rec[0];
        uint32_t seq;
        memcpy(&seq, rec + 1 + len, 4);
        if (fn(opaque, rec + 1, len, NULL, seq) != 0) break;
        free(e->removed[r]);
    }
    memmove(e->removed, e->removed + r, (e->n_removed - r) * sizeof *e->removed);
    e->n_removed -= r;
    if (e->n_removed) return -1;
    size_t i = 0;
    for (; i < e->n_dirty; i++) {
        uint32_t idx = e->dirty[i];
        if (idx >= seg_store_high(e->store)) continue;
        seg_cust_t *c = seg_store_get(e->store, idx);
        if (c->id_len == 0 || !(c->flags & SEG_CUST_DIRTY)) continue;
        seg_cust_state_t st;
        state_of(e, idx, c, &st);
        if (fn(opaque, seg_cust_id(c), c->id_len, &st, 0) != 0) break;
        c->flags &= (uint8_t)~SEG_CUST_DIRTY;
    }
    memmove(e->dirty, e->dirty + i, (e->n_dirty - i) * sizeof *e->dirty);
    e->n_dirty -= i;
    return e->n_dirty ? -1 : 0;
}

/* ---- changing rules ------------------------------------------------------------- */

#define MAX_ITEMS 1024

/* What the built-ins keep: their windows, as cover items. */
static uint32_t builtin_items(const seg_segcfg_t *seg, seg_rule_item_t *out)
{
    uint32_t n = 0;
    if (seg->lifecycle.enabled || seg->value.enabled || seg->rfm.enabled) {
        memset(&out[n], 0, sizeof out[n]);
        snprintf(out[n].name, sizeof out[n].name, "b:money");
        out[n].keep = out[n].need = seg->window;
        snprintf(out[n].what, sizeof out[n].what, "counts purchases and refunds (segments.window)");
        n++;
    }
    if (seg->dissatisfied.enabled) {
        memset(&out[n], 0, sizeof out[n]);
        snprintf(out[n].name, sizeof out[n].name, "b:complaints");
        out[n].keep = out[n].need = seg->dissatisfied.window;
        snprintf(out[n].what, sizeof out[n].what,
                 "counts complaints (segments.dissatisfied.window)");
        n++;
    }
    return n;
}

/* All items of seg + rs; *n set. NULL on allocation failure. */
static seg_rule_item_t *items_of(const seg_segcfg_t *seg, const seg_ruleset_t *rs, uint32_t *n)
{
    seg_rule_item_t *it = calloc(MAX_ITEMS, sizeof *it);
    if (!it) return NULL;
    uint32_t k = builtin_items(seg, it);
    if (rs) {
        uint32_t r = seg_ruleset_items(rs, it + k, MAX_ITEMS - k);
        k += r < MAX_ITEMS - k ? r : MAX_ITEMS - k;
    }
    *n = k;
    return it;
}

static const seg_engine_cover_t *cover_find(const seg_engine_t *e, const char *name)
{
    for (uint32_t i = 0; i < e->n_cover; i++)
        if (strcmp(e->cover[i].name, name) == 0) return &e->cover[i];
    return NULL;
}

/* From when an item's history is complete now, at engine time T. */
static int64_t cover_start(const seg_engine_t *e, const char *name)
{
    const seg_engine_cover_t *c = cover_find(e, name);
    int64_t T = e->time;
    if (!c) return T;   /* not kept: complete only from now on */
    int64_t from = c->from;
    if (c->keep != SEG_RULE_FOREVER && T != INT64_MIN && T - c->keep > from) from = T - c->keep;
    return from;
}

static void fmt_span(int64_t s, char *buf, size_t size)
{
    if (s == SEG_RULE_FOREVER) snprintf(buf, size, "everything");
    else if (s % 86400 == 0) snprintf(buf, size, "%lldd", (long long)(s / 86400));
    else if (s % 3600 == 0) snprintf(buf, size, "%lldh", (long long)(s / 3600));
    else if (s % 60 == 0) snprintf(buf, size, "%lldm", (long long)(s / 60));
    else snprintf(buf, size, "%llds", (long long)s);
}

int seg_engine_check_rules(const seg_engine_t *e, const seg_segcfg_t *seg,
                           const seg_ruleset_t *rs, char *errstr, size_t errstr_size)
{
    uint32_t n;
    seg_rule_item_t *it = items_of(seg, rs, &n);
    if (!it) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        if (it[i].need <= 0) continue;
        int64_t have = cover_start(e, it[i].name);
        int64_t want = it[i].need == SEG_RULE_FOREVER || e->time == INT64_MIN
                           ? INT64_MIN : e->time - it[i].need;
        if (have <= want) continue;
        const seg_engine_cover_t *c = cover_find(e, it[i].name);
        const char *what = it[i].name + 2;   /* "w:contact.visit" -> "contact.visit" */
        char since[SEG_TS_BUFSZ], kept[32], need[32];
        seg_ts_format(have, since);
        fmt_span(c ? c->keep : 0, kept, sizeof kept);
        fmt_span(it[i].need, need, sizeof need);
        char who[SEG_RULE_NAME_MAX + 32];
        if (it[i].rule[0]) snprintf(who, sizeof who, "rule '%s'", it[i].rule);
        else snprintf(who, sizeof who, "the built-in dimensions");
        if (!c)
            snprintf(errstr, errstr_size, "%s %s%s%s, but segd has not kept %s (it would hold it "
                     "only from %s on); see docs/rules.md", who, it[i].what,
                     it[i].need == SEG_RULE_FOREVER ? "" : " over ",
                     it[i].need == SEG_RULE_FOREVER ? "" : need, what, since);
        else
            snprintf(errstr, errstr_size, "%s %s%s%s, but segd holds %s only since %s (kept %s); "
                     "see docs/rules.md", who, it[i].what,
                     it[i].need == SEG_RULE_FOREVER ? "" : " over ",
                     it[i].need == SEG_RULE_FOREVER ? "" : need, what, since, kept);
        rc = -1;
    }
    free(it);
    return rc;
}

/* The cover after switching to seg + rs at engine time. */
static int cover_switch(seg_engine_t *e, const seg_segcfg_t *seg, const seg_ruleset_t *rs)
{
    uint32_t n;
    seg_rule_item_t *it = items_of(seg, rs, &n);
    seg_engine_cover_t *c = calloc(n ? n : 1, sizeof *c);
    if (!it || !c) {
        free(it);
        free(c);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        snprintf(c[i].name, sizeof c[i].name, "%s", it[i].name);
        c[i].from = cover_start(e, it[i].name);
        c[i].keep = it[i].keep;
    }
    free(e->cover);
    e->cover = c;
    e->n_cover = n;
    free(it);
    return 0;
}

uint32_t seg_engine_cover(const seg_engine_t *e, const seg_engine_cover_t **out)
{
    *out = e->cover;
    return e->n_cover;
}

int seg_engine_set_cover(seg_engine_t *e, const seg_engine_cover_t *c, uint32_t n)
{
    seg_engine_cover_t *nc = calloc(n ? n : 1, sizeof *nc);
    if (!nc) return -1;
    memcpy(nc, c, n * sizeof *nc);
    free(e->cover);
    e->cover = nc;
    e->n_cover = n;
    return 0;
}

int64_t seg_engine_time(const seg_engine_t *e) { return e->time; }
void seg_engine_set_time(seg_engine_t *e, int64_t t) { e->time = t; }
const seg_ruleset_t *seg_engine_rules(const seg_engine_t *e) { return e->rules; }
const seg_segcfg_t *seg_engine_segcfg(const seg_engine_t *e) { return &e->cfg; }

static void emit_change(seg_engine_t *e, seg_cust_t *c, seg_dim_t dim, const char *name,
                        const char *from, const char *to, uint8_t fc, uint8_t tc,
                        const seg_features_t *f)
{
    seg_transition_t tr = {
        .customer_id = seg_cust_id(c),
        .customer_id_len = c->id_len,
        .seq = ++c->seq,
        .dim = dim,
        .dim_name = name,
        .from = from,
        .to = to,
        .from_code = fc,
        .to_code = tc,
        .at = c->now,
        .cause = SEG_CAUSE_RULE,
        .features = f,
    };
    e->stats.transitions++;
    if ((unsigned)dim < SEG_DIM__COUNT) e->stats.transitions_by_dim[dim]++;
    else e->stats.rule_transitions++;
    if (e->emit(e->opaque, &tr) != 0) e->emit_failed = 1;
}

/* A customer's built-in values under the new settings, published. */
static void reevaluate_builtins(seg_engine_t *e, seg_cust_t *c, const seg_segcfg_t *old,
                                uint8_t v[SEG_DIM__COUNT], seg_features_t *f)
{
    features_at(e, c, c->now, f);
    seg_dims_eval(&e->cfg, f, v);
    const bool was[SEG_DIM__COUNT] = { old->lifecycle.enabled, old->value.enabled,
                                       old->rfm.enabled, old->dissatisfied.enabled };
    const bool on[SEG_DIM__COUNT] = { e->cfg.lifecycle.enabled, e->cfg.value.enabled,
                                      e->cfg.rfm.enabled, e->cfg.dissatisfied.enabled };
    uint8_t last[SEG_DIM__COUNT];
    seg_cust_lasts(c, last);
    for (int d = 0; d < SEG_DIM__COUNT; d++) {
        seg_dim_t dim = (seg_dim_t)d;
        if (on[d]) {
            if (v[d] == last[d]) continue;
            emit_change(e, c, dim, seg_dim_name(dim), seg_dim_value_name(dim, last[d]),
                        seg_dim_value_name(dim, v[d]), last[d], v[d], f);
            last[d] = v[d];
        } else {
            /* Switched off: a value it held is withdrawn once (the
             * membership's "out" is its starting point, not a value). */
            if (was[d] && last[d] != 0)
                emit_change(e, c, dim, seg_dim_name(dim), seg_dim_value_name(dim, last[d]), NULL,
                            last[d], 0, f);
            last[d] = v[d] = 0;
        }
    }
    seg_cust_set_lasts(c, last);
}

int seg_engine_change_rules(seg_engine_t *e, const seg_segcfg_t *seg, const seg_ruleset_t *rs,
                            bool own, bool reevaluate, char *errstr, size_t errstr_size)
{
    seg_winpool_t *pool = seg_store_winpool(e->store);
    seg_rulerun_t *nrr = NULL;
    seg_rows_t *nrows = NULL;
    char **prev_buf = NULL;
    const char **prev = NULL;
    uint32_t n_new = rs ? seg_ruleset_count(rs) : 0, n_old = e->rules ? seg_ruleset_count(e->rules) : 0;
    bool keeps = rs && (n_new > 0 || seg_ruleset_row_bytes(rs) > 0);
    if (keeps) {
        nrr = seg_rulerun_new(rs, pool);
        if (seg_ruleset_row_bytes(rs)) nrows = seg_rows_new(seg_ruleset_row_bytes(rs));
        if (!nrr || (seg_ruleset_row_bytes(rs) && !nrows)) goto oom;
    }
    prev = calloc(n_new + 1, sizeof *prev);
    prev_buf = calloc(n_old + 1, sizeof *prev_buf);
    if (!prev || !prev_buf || cover_switch(e, seg, rs) != 0) goto oom;

    seg_segcfg_t old = e->cfg;
    int old_money = e->track_money, old_complaints = e->track_complaints;
    apply_segcfg(e, seg);
    const seg_ruleset_t *ors = e->rules;
    seg_rulerun_t *orr = e->rr;
    seg_rows_t *orows = e->rows;
    /* From here the engine runs the new rules (rule_changed reads them). */
    e->rules = rs;             /* kept even without rules: its hash names the settings */
    e->rr = nrr;
    e->rows = nrows;
    int rc = 0;
    uint32_t high = seg_store_high(e->store);
    /* Every deadline may move; reschedule below makes each exact again
     * (and a customer the loop does not reach, on failure, stays checked). */
    for (uint32_t idx = 0; idx < high; idx++) set_exact(seg_store_get(e->store, idx), false);
    for (uint32_t idx = 0; idx < high && rc == 0; idx++) {
        seg_cust_t *c = seg_store_get(e->store, idx);
        if (c->id_len == 0) continue;
        if (old_money && !e->track_money) seg_window_free(pool, &c->money);
        if (old_complaints && !e->track_complaints) seg_window_free(pool, &c->complaints);
        unsigned char *orow = orows ? seg_rows_peek(orows, idx) : NULL;
        /* What the customer was told last, before the rows move. */
        for (uint32_t i = 0; reevaluate && i < n_old; i++) {
            const char *v = orow ? seg_rulerun_value(orr, orow, i) : NULL;
            prev_buf[i] = v ? strdup(v) : NULL;
            if (v && !prev_buf[i]) rc = -1;
        }
        unsigned char *nrow = nrr ? rule_row(e, idx) : NULL;
        if (nrr && !nrow) rc = -1;
        if (orow && orr && nrow && rc == 0) {
            if (seg_rulerun_migrate_row(orr, orow, nrr, nrow) != 0) rc = -1;
        } else if (orow && orr) {
            seg_rulerun_row_free(orr, orow);
        }
        if (reevaluate && rc == 0) {
            seg_features_t f;
            uint8_t v[SEG_DIM__COUNT];
            reevaluate_builtins(e, c, &old, v, &f);
            for (uint32_t j = 0; j < n_new; j++) {
                int i = ors ? seg_ruleset_find(ors, seg_ruleset_name(rs, j),
                                               strlen(seg_ruleset_name(rs, j))) : -1;
                prev[j] = i >= 0 ? prev_buf[i] : seg_ruleset_initial(rs, (uint32_t)j);
            }
            if (nrr && nrow) {
                seg_rule_cust_t rc_;
                rule_cust(c, c->now, v, nrow, &rc_);
                e->cur = c;
                e->cur_t = c->now;
                e->cur_cause = SEG_CAUSE_RULE;
                e->cur_features = &f;
                if (seg_rulerun_eval_all(nrr, &rc_, prev, rule_changed, e) != 0) rc = -1;
                e->cur = NULL;
            }
            for (uint32_t i = 0; i < n_old; i++) {
                const char *name = seg_ruleset_name(ors, i);
                if (rs && seg_ruleset_find(rs, name, strlen(name)) >= 0) continue;
                const char *init = seg_ruleset_initial(ors, i);
                if (prev_buf[i] && !(init && strcmp(init, prev_buf[i]) == 0))
                    emit_change(e, c, SEG_DIM_RULE(i), name, prev_buf[i], NULL, 0, 0, &f);
            }
        }
        for (uint32_t i = 0; reevaluate && i < n_old; i++) {
            free(prev_buf[i]);
            prev_buf[i] = NULL;
        }
        mark_dirty(e, idx, c);
        if (rc == 0 && reschedule(e, idx, c) != 0) rc = -1;
    }
    seg_rulerun_destroy(orr);
    seg_rows_destroy(orows);
    if (e->rules_owned && e->rules_owned != rs) seg_ruleset_destroy(e->rules_owned);
    e->rules_owned = own ? (seg_ruleset_t *)rs : NULL;
    free(prev);
    free(prev_buf);
    if (rc != 0 || e->emit_failed) {
        e->emit_failed = 0;
        snprintf(errstr, errstr_size, rc ? "out of memory changing the rules"
                                         : "the transition sink failed");
        return -1;
    }
    return 0;
oom:
    seg_rulerun_destroy(nrr);
    seg_rows_destroy(nrows);
    free(prev);
    free(prev_buf);
    if (own) seg_ruleset_destroy((seg_ruleset_t *)rs);
    snprintf(errstr, errstr_size, "out of memory changing the rules");
    return -1;
}

int seg_engine_set_rules(seg_engine_t *e, const seg_ruleset_t *rs, char *errstr,
                         size_t errstr_size)
{
    if (seg_store_count(e->store) != 0 || seg_store_high(e->store) != 0) {
        snprintf(errstr, errstr_size, "rules can only be set on an engine without customers");
        return -1;
    }
    int64_t t = e->time;
    e->time = INT64_MIN;     /* no history yet: everything kept will be complete */
    int rc = seg_engine_change_rules(e, &e->cfg, rs, false, false, errstr, errstr_size);
    e->time = t;
    for (uint32_t i = 0; i < e->n_cover; i++) e->cover[i].from = INT64_MIN;
    return rc;
}

void seg_engine_pack_rule_state(seg_engine_t *e, const seg_cust_state_t *st, msgpack_packer *pk)
{
    unsigned char *row = e->rr ? rule_row(e, st->idx) : NULL;
    if (!row) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, seg_ruleset_hash(e->rules));
    seg_rulerun_pack_row(e->rr, row, pk);
}

/* ---- lookups (GET /v1/customers, segment sizes) ------------------------------- */

void seg_engine_on_customer(seg_engine_t *e, seg_cust_hook_fn fn, void *opaque)
{
    e->on_cust = fn;
    e->cust_opaque = opaque;
}

uint32_t seg_engine_customer_find(seg_engine_t *e, const char *id, size_t len)
{
    if (len == 0 || len > 255) return SEG_CUST_NONE;
    return seg_store_find(e->store, id, len);
}

const char *seg_engine_customer_id(const seg_engine_t *e, uint32_t idx, size_t *len,
                                   uint32_t *seq)
{
    if (idx >= seg_store_high(e->store)) return NULL;
    const seg_cust_t *c = seg_store_get(e->store, idx);
    if (c->id_len == 0) return NULL;
    *len = c->id_len;
    if (seq) *seq = c->seq;
    return seg_cust_id(c);
}

static bool dim_enabled(const seg_segcfg_t *cfg, seg_dim_t d)
{
    switch (d) {
    case SEG_DIM_LIFECYCLE:    return cfg->lifecycle.enabled;
    case SEG_DIM_VALUE:        return cfg->value.enabled;
    case SEG_DIM_RFM:          return cfg->rfm.enabled;
    case SEG_DIM_DISSATISFIED: return cfg->dissatisfied.enabled;
    default:                   return false;
    }
}

const char *seg_engine_customer_value(seg_engine_t *e, uint32_t idx, seg_dim_t dim)
{
    if (idx >= seg_store_high(e->store)) return NULL;
    seg_cust_t *c = seg_store_get(e->store, idx);
    if (c->id_len == 0) return NULL;
    if ((unsigned)dim < SEG_DIM__COUNT) {
        if (!dim_enabled(&e->cfg, dim)) return NULL;
        uint8_t last[SEG_DIM__COUNT];
        seg_cust_lasts(c, last);
        return seg_dim_value_name(dim, last[dim]);
    }
    uint32_t i = (uint32_t)dim - SEG_DIM__COUNT;
    if (!e->rr || !e->rules || i >= seg_ruleset_count(e->rules)) return NULL;
    unsigned char *row = rule_row(e, idx);
    return row ? seg_rulerun_value(e->rr, row, i) : NULL;
}

static void what_add(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void what_add(char *buf, size_t size, const char *fmt, ...)
{
    size_t n = strlen(buf);
    if (n && n + 2 < size) {
        memcpy(buf + n, "; ", 3);
        n += 2;
    }
    if (n >= size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, size - n, fmt, ap);
    va_end(ap);
}

/* Names what a deadline at `at` is: every source of next_deadline() that
 * gives that instant (several may coincide). */
static void deadline_what(seg_engine_t *e, uint32_t idx, seg_cust_t *c, int64_t at, char *buf,
                          size_t size)
{
    seg_winpool_t *pool = seg_store_winpool(e->store);
    const seg_segcfg_t *g = &e->cfg;
    char span[32];
    buf[0] = '\0';
    if (c->flags & SEG_CUST_HAS_PURCHASE) {
        int64_t off = at - c->last_purchase;
        bool is_off = false;
        for (int i = 0; i < e->n_offsets; i++) is_off |= e->recency_offsets[i] == off;
        if (is_off) {
            char who[160] = "";
            if (g->lifecycle.enabled && off == g->lifecycle.at_risk_after)
                what_add(who, sizeof who, "lifecycle at_risk_after");
            if (g->lifecycle.enabled && off == g->lifecycle.silent_after)
                what_add(who, sizeof who, "lifecycle silent_after");
            if (g->lifecycle.enabled && off == g->lifecycle.churned_after)
                what_add(who, sizeof who, "lifecycle churned_after");
            for (int i = 0; g->rfm.enabled && i < SEG_RFM_TIERS; i++)
                if (off == g->rfm.recency[i]) {
                    what_add(who, sizeof who, "rfm recency tier");
                    break;
                }
            fmt_span(off, span, sizeof span);
            what_add(buf, size, "recency reaches %s (%s)", span, who);
        }
        if (g->lifecycle.enabled && at == c->first_purchase + g->lifecycle.new_for) {
            fmt_span(g->lifecycle.new_for, span, sizeof span);
            what_add(buf, size, "age reaches %s (lifecycle new_for)", span);
        }
        if (e->evict_after > 0 && at == c->last_purchase + g->lifecycle.churned_after +
                                           e->evict_after)
            what_add(buf, size, "eviction from memory (state.evict_after)");
    }
    if (c->money.len && at == seg_window_at(pool, &c->money, 0).ts + g->window)
        what_add(buf, size, "a purchase or refund leaves segments.window");
    if (c->complaints.len &&
        at == seg_window_at(pool, &c->complaints, 0).ts + g->dissatisfied.window)
        what_add(buf, size, "a complaint leaves segments.dissatisfied.window");
    if (e->rr) {
        unsigned char *row = rule_row(e, idx);
        if (row) {
            seg_rule_cust_t rc;
            rule_cust(c, c->now, NULL, row, &rc);
            if (seg_rulerun_next(e->rr, &rc) == at)
                what_add(buf, size, "a time condition of a user rule");
        }
    }
}

int seg_engine_customer_view(seg_engine_t *e, uint32_t idx, int64_t at, seg_cust_view_t *out)
{
    if (idx >= seg_store_high(e->store)) return -1;
    seg_cust_t *c = seg_store_get(e->store, idx);
    if (c->id_len == 0) return -1;
    memset(out, 0, sizeof *out);
    out->id = seg_cust_id(c);
    out->id_len = c->id_len;
    out->seq = c->seq;
    out->now = c->now;
    out->at = at > c->now ? at : c->now;
    /* Windows were expired at the clock when it was last evaluated, so
     * reading the features there changes nothing; a later `at` expires
     * what left by then, which no deadline can have missed. Its timer is
     * checked again when due, as it was before the flag. */
    features_at(e, c, out->at, &out->features);
    set_exact(c, false);
    uint8_t last[SEG_CUST_LAST_SLOTS];
    seg_cust_lasts(c, last);
    memcpy(out->dims, last, SEG_DIM__COUNT);
    out->next_at = next_deadline(e, idx, c);
    if (out->next_at != INT64_MAX)
        deadline_what(e, idx, c, out->next_at, out->next_what, sizeof out->next_what);
    if (e->rr && e->rows) {
        unsigned char *row = seg_rows_peek(e->rows, idx);
        if (row) {
            seg_rule_cust_t rc;
            rule_cust(c, out->at, out->dims, row, &rc);
            out->has_predict = seg_rulerun_predict(e->rr, &rc, &out->predict) == 0;
        }
    }
    return 0;
}
