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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/seg_store.h"
#include "time/seg_timer.h"

#define MAX_OFFSETS (3 + SEG_RFM_TIERS)

struct seg_engine {
    seg_segcfg_t  cfg;
    seg_store_t  *store;
    seg_timer_t  *timers;
    seg_emit_fn   emit;
    void         *opaque;
    int64_t       max_ts;
    int64_t       recency_offsets[MAX_OFFSETS]; /* ascending, unique */
    int           n_offsets;
    int           track_money;       /* some dimension reads F or M */
    int           track_complaints;
    int           emit_failed;
    seg_engine_stats_t stats;
};

/* Window entry value for purchases/refunds: signed amount * 2 + is_purchase,
 * so one 8-byte field says both how much and whether it counts in F. */
static int64_t money_val(int64_t signed_amount, int is_purchase)
{
    return signed_amount * 2 + (is_purchase ? 1 : 0);
}
static int money_is_purchase(int64_t v) { return (int)(v & 1); }
static int64_t money_amount(int64_t v) { return (v - (v & 1)) / 2; }

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

seg_engine_t *seg_engine_new(const seg_segcfg_t *cfg, seg_emit_fn emit,
                             void *opaque, char *errstr, size_t errstr_size)
{
    seg_engine_t *e = calloc(1, sizeof *e);
    if (!e) goto oom;
    e->cfg = *cfg;
    e->emit = emit;
    e->opaque = opaque;
    e->max_ts = INT64_MIN;
    e->store = seg_store_new(errstr, errstr_size);
    if (!e->store) goto fail;
    e->timers = seg_timer_new();
    if (!e->timers) goto oom;

    if (cfg->lifecycle.enabled) {
        add_offset(e, cfg->lifecycle.at_risk_after);
        add_offset(e, cfg->lifecycle.silent_after);
        add_offset(e, cfg->lifecycle.churned_after);
    }
    if (cfg->rfm.enabled)
        for (int i = 0; i < SEG_RFM_TIERS; i++) add_offset(e, cfg->rfm.recency[i]);
    e->track_money = cfg->lifecycle.enabled || cfg->value.enabled || cfg->rfm.enabled;
    e->track_complaints = cfg->dissatisfied.enabled;
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
    seg_store_destroy(e->store);
    seg_timer_destroy(e->timers);
    free(e);
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
        seg_window_expire(pool, &c->money, t - e->cfg.window);
        const seg_winentry_t *en = seg_window_entries(pool, &c->money);
        for (uint32_t i = 0; i < c->money.len; i++) {
            f->frequency += money_is_purchase(en[i].val);
            f->monetary += money_amount(en[i].val);
        }
    }
    if (e->track_complaints) {
        seg_window_expire(pool, &c->complaints, t - e->cfg.dissatisfied.window);
        f->complaints = c->complaints.len;
    }
}

/* Evaluates customer c at instant t (its clock) and emits one transition
 * per dimension whose value changed, in dimension order. */
static void evaluate(seg_engine_t *e, seg_cust_t *c, int64_t t, seg_cause_t cause)
{
    seg_features_t f;
    features_at(e, c, t, &f);
    uint8_t v[SEG_DIM__COUNT];
    seg_dims_eval(&e->cfg, &f, v);
    const bool enabled[SEG_DIM__COUNT] = {
        e->cfg.lifecycle.enabled, e->cfg.value.enabled,
        e->cfg.rfm.enabled, e->cfg.dissatisfied.enabled
    };
    for (int d = 0; d < SEG_DIM__COUNT; d++) {
        if (!enabled[d] || v[d] == c->last[d]) continue;
        seg_transition_t tr = {
            .customer_id = c->id,
            .customer_id_len = c->id_len,
            .seq = ++c->seq,
            .dim = (seg_dim_t)d,
            .from = seg_dim_value_name((seg_dim_t)d, c->last[d]),
            .to = seg_dim_value_name((seg_dim_t)d, v[d]),
            .from_code = c->last[d],
            .to_code = v[d],
            .at = t,
            .cause = cause,
            .features = &f,
        };
        c->last[d] = v[d];
        e->stats.transitions++;
        e->stats.transitions_by_dim[d]++;
        if (e->emit(e->opaque, &tr) != 0) e->emit_failed = 1;
    }
}

/* The earliest instant after c's clock at which one of its values could
 * change, or INT64_MAX if none can without a new event. */
static int64_t next_deadline(seg_engine_t *e, seg_cust_t *c)
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
    }
    /* Windows were expired at `now`, so their first entries leave later. */
    if (c->money.len) {
        int64_t d = seg_window_entries(pool, &c->money)[0].ts + e->cfg.window;
        if (d < best) best = d;
    }
    if (c->complaints.len) {
        int64_t d = seg_window_entries(pool, &c->complaints)[0].ts +
                    e->cfg.dissatisfied.window;
        if (d < best) best = d;
    }
    return best;
}

static int reschedule(seg_engine_t *e, uint32_t idx, seg_cust_t *c)
{
    int64_t d = next_deadline(e, c);
    if (d == INT64_MAX) {
        seg_timer_clear(e->timers, idx);
        return 0;
    }
    return seg_timer_set(e->timers, idx, d);
}

static int finish(seg_engine_t *e, int rc, char *errstr, size_t errstr_size)
{
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
    uint32_t idx;
    int64_t when;
    int rc = 0;
    while (rc == 0 && seg_timer_pop_due(e->timers, t, &idx, &when)) {
        seg_cust_t *c = seg_store_get(e->store, idx);
        /* Deadlines are always set after the clock (next_deadline), and
         * an event never moves a clock past a pending deadline without
         * firing it first, so when > c->now here. */
        c->now = when;
        e->stats.deadlines_fired++;
        evaluate(e, c, when, SEG_CAUSE_TIME);
        rc = reschedule(e, idx, c);
    }
    return finish(e, rc, errstr, errstr_size);
}

int seg_engine_fold(seg_engine_t *e, const seg_event_t *ev,
                    char *errstr, size_t errstr_size)
{
    if (seg_engine_advance(e, ev->ts, errstr, errstr_size) != 0) return -1;
    return seg_engine_fold_local(e, ev, errstr, errstr_size);
}

/* Fires customer idx's own deadlines <= t, in order. */
static int fire_own(seg_engine_t *e, uint32_t idx, seg_cust_t *c, int64_t t)
{
    int64_t when;
    while ((when = seg_timer_when(e->timers, idx)) <= t) {
        c->now = when;
        e->stats.deadlines_fired++;
        evaluate(e, c, when, SEG_CAUSE_TIME);
        if (reschedule(e, idx, c) != 0) return -1;
    }
    return 0;
}

int seg_engine_fold_local(seg_engine_t *e, const seg_event_t *ev,
                          char *errstr, size_t errstr_size)
{
    int created;
    uint32_t idx = seg_store_upsert(e->store, ev->customer_id, ev->customer_id_len, &created);
    if (idx == SEG_CUST_NONE) return finish(e, -1, errstr, errstr_size);
    seg_cust_t *c = seg_store_get(e->store, idx);
    if (!created && fire_own(e, idx, c, ev->ts) != 0)
        return finish(e, -1, errstr, errstr_size);
    if (created || ev->ts > c->now) c->now = ev->ts;
    else if (ev->ts < c->now) e->stats.late_events++;
    const int64_t t = c->now;
    seg_winpool_t *pool = seg_store_winpool(e->store);
    int rc = 0;

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
    }
    if (rc != 0) return finish(e, rc, errstr, errstr_size);

    e->stats.events_folded++;
    if (ev->ts > e->max_ts) e->max_ts = ev->ts;
    evaluate(e, c, t, SEG_CAUSE_EVENT);
    rc = reschedule(e, idx, c);
    return finish(e, rc, errstr, errstr_size);
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
    out->state_bytes = seg_store_bytes(e->store) + seg_timer_bytes(e->timers);
}
