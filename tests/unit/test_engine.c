/*
 * Engine semantics, scenario by scenario. Every expected transition below
 * was worked out by hand from docs/segments.md (dates counted on a
 * calendar), not captured from a run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/seg_cfg.h"
#include "publish/seg_tjson.h"
#include "segment/seg_engine.h"
#include "util/seg_ts.h"

#define MAXOUT 4096

typedef struct capture {
    char  *lines[MAXOUT];
    int    n;
} capture_t;

static int capture(void *opaque, const seg_transition_t *t)
{
    capture_t *c = opaque;
    char buf[SEG_TJSON_MAX];
    seg_tjson_encode(t, false, buf);
    assert_true(c->n < MAXOUT);
    c->lines[c->n++] = strdup(buf);
    return 0;
}

static void capture_free(capture_t *c)
{
    for (int i = 0; i < c->n; i++) free(c->lines[i]);
    c->n = 0;
}

static int64_t ts(const char *s)
{
    int64_t v;
    assert_int_equal(seg_ts_parse_rfc3339(s, strlen(s), &v), 0);
    return v;
}

static seg_event_t ev(seg_event_type_t type, const char *id, const char *when, const char *amount)
{
    seg_event_t e;
    memset(&e, 0, sizeof e);
    e.type = type;
    e.customer_id = id;
    e.customer_id_len = strlen(id);
    e.ts = ts(when);
    if (amount) {
        int64_t a;
        assert_int_equal(seg_money_parse(amount, strlen(amount), &a), 0);
        e.amount = a;
        e.has_amount = 1;
    }
    return e;
}

static seg_event_t contact(const char *id, const char *when, seg_contact_kind_t k)
{
    seg_event_t e = ev(SEG_EV_CONTACT, id, when, NULL);
    e.kind = k;
    return e;
}

typedef struct fixture {
    seg_cfg_t     cfg;
    seg_engine_t *eng;
    capture_t     out;
} fixture_t;

static void start(fixture_t *f)
{
    char err[256];
    seg_engine_destroy(f->eng);
    f->eng = seg_engine_new(&f->cfg.seg, capture, &f->out, err, sizeof err);
    assert_non_null(f->eng);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    seg_cfg_defaults(&f->cfg);
    start(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    seg_engine_destroy(f->eng);
    capture_free(&f->out);
    free(f);
    return 0;
}

static void fold(fixture_t *f, seg_event_t e)
{
    char err[256];
    assert_int_equal(seg_engine_fold(f->eng, &e, err, sizeof err), 0);
}

static void advance(fixture_t *f, const char *when)
{
    char err[256];
    assert_int_equal(seg_engine_advance(f->eng, ts(when), err, sizeof err), 0);
}

static void expect(fixture_t *f, const char *const *want, int n)
{
    for (int i = 0; i < n && i < f->out.n; i++)
        assert_string_equal(f->out.lines[i], want[i]);
    assert_int_equal(f->out.n, n);
}

#define T(id, seq, dim, from, to, at, cause) \
    "{\"id\":\"" id ":" #seq "\",\"customer_id\":\"" id "\",\"seq\":" #seq \
    ",\"dimension\":\"" dim "\",\"from\":" from ",\"to\":\"" to "\",\"at\":\"" at \
    "\",\"cause\":\"" cause "\"}"
#define N "null"
#define Q(x) "\"" x "\""

/* One purchase, then silence for 18 months: the whole decay. */
static void single_purchase_decays(void **state)
{
    fixture_t *f = *state;
    fold(f, ev(SEG_EV_PURCHASE, "00001", "1997-01-01T00:00:00Z", "11.77"));
    advance(f, "1998-06-30T00:00:00Z");
    const char *want[] = {
        T("00001", 1, "lifecycle", N, "new", "1997-01-01T00:00:00Z", "event"),
        T("00001", 2, "value", N, "C", "1997-01-01T00:00:00Z", "event"),
        T("00001", 3, "rfm", N, "R1F1M1", "1997-01-01T00:00:00Z", "event"),
        /* first purchase + 30d */
        T("00001", 4, "lifecycle", Q("new"), "active", "1997-01-31T00:00:00Z", "time"),
        /* last purchase + 45d */
        T("00001", 5, "lifecycle", Q("active"), "at_risk", "1997-02-15T00:00:00Z", "time"),
        /* + 90d: lifecycle before rfm at the same instant */
        T("00001", 6, "lifecycle", Q("at_risk"), "silent", "1997-04-01T00:00:00Z", "time"),
        T("00001", 7, "rfm", Q("R1F1M1"), "R2F1M1", "1997-04-01T00:00:00Z", "time"),
        /* + 180d */
        T("00001", 8, "rfm", Q("R2F1M1"), "R3F1M1", "1997-06-30T00:00:00Z", "time"),
        /* + 365d: churned, and the purchase leaves the window (F=0, M=0) */
        T("00001", 9, "lifecycle", Q("silent"), "churned", "1998-01-01T00:00:00Z", "time"),
        T("00001", 10, "value", Q("C"), "D", "1998-01-01T00:00:00Z", "time"),
        T("00001", 11, "rfm", Q("R3F1M1"), "R4F0M0", "1998-01-01T00:00:00Z", "time"),
    };
    expect(f, want, 11);
}

/* Four purchases in the first month: new -> loyal at day 30; the deadline
 * at first + 30d is exact to the second. */
static void loyal_after_four(void **state)
{
    fixture_t *f = *state;
    fold(f, ev(SEG_EV_PURCHASE, "c", "2024-01-01T10:00:00Z", "100"));
    fold(f, ev(SEG_EV_PURCHASE, "c", "2024-01-10T10:00:00Z", "100"));
    fold(f, ev(SEG_EV_PURCHASE, "c", "2024-01-20T10:00:00Z", "100"));
    fold(f, ev(SEG_EV_PURCHASE, "c", "2024-01-30T10:00:00Z", "750"));
    advance(f, "2024-01-31T09:59:59Z");
    int before = f->out.n;
    advance(f, "2024-01-31T10:00:00Z");
    const char *want[] = {
        T("c", 1, "lifecycle", N, "new", "2024-01-01T10:00:00Z", "event"),
        T("c", 2, "value", N, "C", "2024-01-01T10:00:00Z", "event"),
        /* M = 100 is not < 100, so m = 2 */
        T("c", 3, "rfm", N, "R1F1M2", "2024-01-01T10:00:00Z", "event"),
    };
    assert_string_equal(f->out.lines[0], want[0]);
    assert_string_equal(f->out.lines[1], want[1]);
    assert_string_equal(f->out.lines[2], want[2]);
    /* 2nd purchase: F=2 (f=1), M=200 (m=2): value C, rfm unchanged -> nothing */
    /* 3rd: F=3 -> f=2, M=300 -> value B */
    assert_string_equal(f->out.lines[3],
        T("c", 4, "value", Q("C"), "B", "2024-01-20T10:00:00Z", "event"));
    assert_string_equal(f->out.lines[4],
        T("c", 5, "rfm", Q("R1F1M2"), "R1F2M2", "2024-01-20T10:00:00Z", "event"));
    /* 4th: M=1050 -> A, m=4 */
    assert_string_equal(f->out.lines[5],
        T("c", 6, "value", Q("B"), "A", "2024-01-30T10:00:00Z", "event"));
    assert_string_equal(f->out.lines[6],
        T("c", 7, "rfm", Q("R1F2M2"), "R1F2M4", "2024-01-30T10:00:00Z", "event"));
    assert_int_equal(before, 7);
    assert_int_equal(f->out.n, 8);
    assert_string_equal(f->out.lines[7],
        T("c", 8, "lifecycle", Q("new"), "loyal", "2024-01-31T10:00:00Z", "time"));
}

/* Refunds lower M inside the window; a refund never counts as a purchase. */
static void refund_lowers_value(void **state)
{
    fixture_t *f = *state;
    fold(f, ev(SEG_EV_PURCHASE, "r", "2024-03-01T00:00:00Z", "300"));
    fold(f, ev(SEG_EV_REFUND, "r", "2024-03-05T00:00:00Z", "100.0001"));
    const char *want[] = {
        T("r", 1, "lifecycle", N, "new", "2024-03-01T00:00:00Z", "event"),
        T("r", 2, "value", N, "B", "2024-03-01T00:00:00Z", "event"),
        T("r", 3, "rfm", N, "R1F1M2", "2024-03-01T00:00:00Z", "event"),
        /* M = 199.9999 -> C; m still 2 */
        T("r", 4, "value", Q("B"), "C", "2024-03-05T00:00:00Z", "event"),
    };
    expect(f, want, 4);
    capture_free(&f->out);
    fold(f, ev(SEG_EV_REFUND, "r", "2024-03-06T00:00:00Z", "199.9999"));
    /* M = 0 exactly -> D and m=0 (exact money: no 1e-13 left over) */
    const char *want2[] = {
        T("r", 5, "value", Q("C"), "D", "2024-03-06T00:00:00Z", "event"),
        T("r", 6, "rfm", Q("R1F1M2"), "R1F1M0", "2024-03-06T00:00:00Z", "event"),
    };
    expect(f, want2, 2);
}

/* Contacts: prospect before any purchase; two complaints in 90 days make
 * the customer dissatisfied until the first leaves the window. */
static void prospect_and_dissatisfied(void **state)
{
    fixture_t *f = *state;
    fold(f, contact("p", "2024-01-01T00:00:00Z", SEG_CONTACT_VISIT));
    fold(f, contact("p", "2024-01-02T00:00:00Z", SEG_CONTACT_COMPLAINT));
    fold(f, contact("p", "2024-02-01T00:00:00Z", SEG_CONTACT_COMPLAINT));
    advance(f, "2024-03-31T23:59:59Z");
    fold(f, ev(SEG_EV_PURCHASE, "p", "2024-04-01T00:00:00Z", "0"));
    const char *want[] = {
        T("p", 1, "lifecycle", N, "prospect", "2024-01-01T00:00:00Z", "event"),
        T("p", 2, "dissatisfied", Q("out"), "in", "2024-02-01T00:00:00Z", "event"),
        /* 2024-01-02 + 90d = 2024-04-01 (leap year): the deadline fires
         * before the purchase with the same ts. */
        T("p", 3, "dissatisfied", Q("in"), "out", "2024-04-01T00:00:00Z", "time"),
        T("p", 4, "lifecycle", Q("prospect"), "new", "2024-04-01T00:00:00Z", "event"),
        /* a zero-amount purchase: M = 0 -> D, m = 0 */
        T("p", 5, "value", N, "D", "2024-04-01T00:00:00Z", "event"),
        T("p", 6, "rfm", N, "R1F1M0", "2024-04-01T00:00:00Z", "event"),
    };
    expect(f, want, 6);
}

/* A late event is folded at the customer's clock, never in the past. */
static void late_event_at_customer_clock(void **state)
{
    fixture_t *f = *state;
    fold(f, ev(SEG_EV_PURCHASE, "l", "2024-01-01T00:00:00Z", "50"));
    advance(f, "2024-03-01T00:00:00Z");  /* new->active (1-31), ->at_risk (2-15) */
    assert_int_equal(f->out.n, 5);
    /* The clock is 2024-02-15 (the last deadline fired; the next, +90d,
     * is 03-31). A purchase dated 02-10 arrives late: it is folded at the
     * clock, where R = 5 days, F = 2 and M = 110. */
    fold(f, ev(SEG_EV_PURCHASE, "l", "2024-02-10T00:00:00Z", "60"));
    assert_int_equal(f->out.n, 7);
    assert_string_equal(f->out.lines[5],
        T("l", 6, "lifecycle", Q("at_risk"), "active", "2024-02-15T00:00:00Z", "event"));
    assert_string_equal(f->out.lines[6],
        T("l", 7, "rfm", Q("R1F1M1"), "R1F1M2", "2024-02-15T00:00:00Z", "event"));
}

/* An event exactly at a window edge: a purchase leaves F at ts + 365d. */
static void window_edge_is_exclusive(void **state)
{
    fixture_t *f = *state;
    f->cfg.seg.lifecycle.enabled = false;
    f->cfg.seg.rfm.enabled = false;
    f->cfg.seg.dissatisfied.enabled = false;
    start(f);
    fold(f, ev(SEG_EV_PURCHASE, "w", "2023-01-01T00:00:00Z", "300"));
    advance(f, "2023-12-31T23:59:59Z");
    assert_int_equal(f->out.n, 1);
    fold(f, ev(SEG_EV_PURCHASE, "w", "2024-01-01T00:00:00Z", "1"));
    /* At 2024-01-01 the first purchase has left: M = 1 -> C */
    const char *want[] = {
        T("w", 1, "value", N, "B", "2023-01-01T00:00:00Z", "event"),
        T("w", 2, "value", Q("B"), "D", "2024-01-01T00:00:00Z", "time"),
        T("w", 3, "value", Q("D"), "C", "2024-01-01T00:00:00Z", "event"),
    };
    expect(f, want, 3);
}

/* The output for a customer does not depend on how other customers'
 * events are interleaved, when each customer's own events are in order. */
static void interleaving_independent(void **state)
{
    fixture_t *f = *state;
    enum { CUST = 40, PER = 12 };
    static seg_event_t evs[CUST * PER];
    static char ids[CUST][8];
    uint64_t x = 42;
    int n = 0;
    for (int c = 0; c < CUST; c++) {
        snprintf(ids[c], sizeof ids[c], "k%02d", c);
        int64_t t = ts("2020-01-01T00:00:00Z") + (int64_t)(c * 7919 % 200) * 86400;
        for (int i = 0; i < PER; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            t += (int64_t)((x >> 33) % (120 * 86400));
            seg_event_t e;
            memset(&e, 0, sizeof e);
            e.customer_id = ids[c];
            e.customer_id_len = strlen(ids[c]);
            e.ts = t;
            int k = (int)((x >> 20) % 10);
            e.type = k < 6 ? SEG_EV_PURCHASE : k < 7 ? SEG_EV_REFUND : SEG_EV_CONTACT;
            e.kind = e.type == SEG_EV_CONTACT ? (k == 9 ? SEG_CONTACT_VISIT : SEG_CONTACT_COMPLAINT)
                                             : SEG_CONTACT_NONE;
            e.amount = (int64_t)((x >> 40) % 4000000);
            evs[n++] = e;
        }
    }
    int64_t end = ts("2026-01-01T00:00:00Z");
    /* customer-major order */
    for (int i = 0; i < n; i++) fold(f, evs[i]);
    advance(f, "2026-01-01T00:00:00Z");
    capture_t a = f->out;
    memset(&f->out, 0, sizeof f->out);
    /* time order (stable insertion sort by ts) */
    for (int i = 1; i < n; i++) {
        seg_event_t k = evs[i];
        int j = i - 1;
        while (j >= 0 && evs[j].ts > k.ts) { evs[j + 1] = evs[j]; j--; }
        evs[j + 1] = k;
    }
    start(f);
    for (int i = 0; i < n; i++) fold(f, evs[i]);
    char err[64];
    assert_int_equal(seg_engine_advance(f->eng, end, err, sizeof err), 0);
    assert_true(a.n > CUST * 5);
    assert_int_equal(a.n, f->out.n);
    for (int i = 0; i < 2; i++) {
        capture_t *c = i ? &f->out : &a;
        for (int p = 1; p < c->n; p++) {
            char *k = c->lines[p];
            int q = p - 1;
            while (q >= 0 && strcmp(c->lines[q], k) > 0) { c->lines[q + 1] = c->lines[q]; q--; }
            c->lines[q + 1] = k;
        }
    }
    for (int i = 0; i < a.n; i++) assert_string_equal(a.lines[i], f->out.lines[i]);
    capture_free(&a);
}

/* fold_local fires the event's own customer's deadlines, not others'. */
static void fold_local_fires_own_deadlines_only(void **state)
{
    fixture_t *f = *state;
    char err[64];
    seg_event_t a = ev(SEG_EV_PURCHASE, "a", "2024-01-01T00:00:00Z", "10");
    seg_event_t b = ev(SEG_EV_PURCHASE, "b", "2024-01-01T00:00:00Z", "10");
    assert_int_equal(seg_engine_fold_local(f->eng, &a, err, sizeof err), 0);
    assert_int_equal(seg_engine_fold_local(f->eng, &b, err, sizeof err), 0);
    assert_int_equal(f->out.n, 6);
    assert_int_equal(seg_engine_next_deadline(f->eng), ts("2024-01-31T00:00:00Z"));
    /* a's next event, 40 days later: a's new->active (01-31) fires first;
     * b's identical deadline waits for the watermark. */
    seg_event_t a2 = ev(SEG_EV_PURCHASE, "a", "2024-02-10T00:00:00Z", "10");
    assert_int_equal(seg_engine_fold_local(f->eng, &a2, err, sizeof err), 0);
    assert_int_equal(f->out.n, 7);
    assert_string_equal(f->out.lines[6],
        T("a", 4, "lifecycle", Q("new"), "active", "2024-01-31T00:00:00Z", "time"));
    assert_int_equal(seg_engine_next_deadline(f->eng), ts("2024-01-31T00:00:00Z"));
    assert_int_equal(seg_engine_advance(f->eng, ts("2024-01-31T00:00:00Z"), err, sizeof err), 0);
    assert_int_equal(f->out.n, 8);
    assert_string_equal(f->out.lines[7],
        T("b", 4, "lifecycle", Q("new"), "active", "2024-01-31T00:00:00Z", "time"));
}

/* Eviction: a customer churned for evict_after leaves memory at that
 * instant; when it returns it starts again as new, but its seq continues,
 * so no id is ever published twice with different content. */
static void eviction_keeps_ids_unique(void **state)
{
    fixture_t *f = *state;
    f->cfg.seg.value.enabled = false;
    f->cfg.seg.rfm.enabled = false;
    start(f);
    seg_engine_set_evict_after(f->eng, 30 * 86400);
    fold(f, ev(SEG_EV_PURCHASE, "e", "2020-01-01T00:00:00Z", "5"));
    /* new, active, at_risk, silent, churned (2020-12-31, leap year) */
    advance(f, "2021-01-29T23:59:59Z");
    seg_engine_stats_t st;
    seg_engine_stats(f->eng, &st);
    assert_int_equal(st.customers, 1);
    advance(f, "2021-01-30T00:00:00Z");   /* churned at 12-31 + 30d = 01-30 */
    seg_engine_stats(f->eng, &st);
    assert_int_equal(st.customers, 0);
    assert_int_equal(st.evicted, 1);
    assert_int_equal(f->out.n, 5);
    assert_int_equal(seg_engine_grave_count(f->eng), 1);
    fold(f, ev(SEG_EV_PURCHASE, "e", "2021-03-01T00:00:00Z", "5"));
    assert_int_equal(f->out.n, 6);
    assert_string_equal(f->out.lines[5],
        T("e", 6, "lifecycle", N, "new", "2021-03-01T00:00:00Z", "event"));
    assert_int_equal(seg_engine_grave_count(f->eng), 0);
}

/* Disabled dimensions emit nothing; membership starts at "out". */
static void disabled_dimensions_silent(void **state)
{
    fixture_t *f = *state;
    f->cfg.seg.lifecycle.enabled = false;
    f->cfg.seg.value.enabled = false;
    f->cfg.seg.rfm.enabled = false;
    start(f);
    fold(f, ev(SEG_EV_PURCHASE, "d", "2024-01-01T00:00:00Z", "10"));
    fold(f, contact("d", "2024-01-02T00:00:00Z", SEG_CONTACT_COMPLAINT));
    advance(f, "2025-01-01T00:00:00Z");
    assert_int_equal(f->out.n, 0);
    fold(f, contact("d", "2025-01-02T00:00:00Z", SEG_CONTACT_COMPLAINT));
    fold(f, contact("d", "2025-01-02T00:00:00Z", SEG_CONTACT_COMPLAINT));
    const char *want[] = {
        T("d", 1, "dissatisfied", Q("out"), "in", "2025-01-02T00:00:00Z", "event"),
    };
    expect(f, want, 1);
}

/* Customer ids are escaped in both id fields. */
static void id_is_escaped(void **state)
{
    fixture_t *f = *state;
    f->cfg.seg.value.enabled = false;
    f->cfg.seg.rfm.enabled = false;
    start(f);
    fold(f, contact("a\"b\\c\n", "2024-01-01T00:00:00Z", SEG_CONTACT_VISIT));
    assert_int_equal(f->out.n, 1);
    assert_string_equal(f->out.lines[0],
        "{\"id\":\"a\\\"b\\\\c\\n:1\",\"customer_id\":\"a\\\"b\\\\c\\n\",\"seq\":1,"
        "\"dimension\":\"lifecycle\",\"from\":null,\"to\":\"prospect\","
        "\"at\":\"2024-01-01T00:00:00Z\",\"cause\":\"event\"}");
}

/* Stats count what happened. */
static void stats_count(void **state)
{
    fixture_t *f = *state;
    fold(f, ev(SEG_EV_PURCHASE, "s1", "2024-01-01T00:00:00Z", "10"));
    fold(f, ev(SEG_EV_REFUND, "s2", "2024-01-01T00:00:00Z", "10"));
    seg_engine_stats_t st;
    seg_engine_stats(f->eng, &st);
    assert_int_equal(st.customers, 2);
    assert_int_equal(st.events_folded, 2);
    assert_int_equal(st.transitions, 3);        /* s2 has no values yet */
    assert_int_equal(st.transitions_by_dim[SEG_DIM_RFM], 1);
    assert_int_equal(st.pending_timers, 2);     /* s2 too: its refund leaves the window */
    assert_int_equal(seg_engine_max_ts(f->eng), ts("2024-01-01T00:00:00Z"));
}

/* A deadline fires only when it is the true one. After new -> active at
 * first purchase + 30d the timer waits for last purchase + 45d; a second
 * purchase moves that later, the timer stays where it was (lazily), and
 * when it comes due it is moved, not fired: deadlines_fired counts the
 * instants that were evaluated, and the at_risk comes at the new time. */
static void moved_deadline_is_not_fired(void **state)
{
    fixture_t *f = *state;
    seg_engine_stats_t st;
    fold(f, ev(SEG_EV_PURCHASE, "d", "2024-01-01T00:00:00Z", "10"));
    advance(f, "2024-02-01T00:00:00Z");
    seg_engine_stats(f->eng, &st);
    assert_int_equal(st.deadlines_fired, 1);                 /* 2024-01-31, new -> active */
    fold(f, ev(SEG_EV_PURCHASE, "d", "2024-02-10T00:00:00Z", "10"));   /* at_risk: 02-15 -> 03-26 */
    advance(f, "2024-03-25T23:59:59Z");
    seg_engine_stats(f->eng, &st);
    assert_int_equal(st.deadlines_fired, 1);                 /* 02-15 was moved, not fired */
    int before = f->out.n;
    advance(f, "2024-03-26T00:00:00Z");
    seg_engine_stats(f->eng, &st);
    assert_int_equal(st.deadlines_fired, 2);
    assert_int_equal(f->out.n, before + 1);
    assert_string_equal(f->out.lines[before],
        T("d", 5, "lifecycle", Q("active"), "at_risk", "2024-03-26T00:00:00Z", "time"));
}

/* The record packs the last values into bits and the windows into 12-byte
 * entries where they fit: whatever a customer's state (every last value
 * code, timestamps and amounts at and past the packing limits), what
 * persistence puts in is what it gets back, and a last value the record
 * cannot hold is refused rather than truncated. */
static void customer_state_round_trip(void **state)
{
    fixture_t *f = *state;
    char err[256];
    static const seg_winentry_t money[] = {
        { INT64_MIN, 3 }, { -62135596800, -200000000000000 }, { 0, 0 },
        { 1, ((int64_t)1 << 55) - 1 }, { 1, (int64_t)1 << 55 }, { 253402300799, INT64_MAX },
    };
    static const seg_winentry_t complaints[] = { { -5, 0 }, { ((int64_t)1 << 39), 0 } };
    for (unsigned v = 0; v < SEG_RFM__COUNT; v++) {
        char id[16];
        snprintf(id, sizeof id, "rt%u", v);
        seg_cust_state_t in = {
            .id = id, .id_len = strlen(id),
            .now = INT64_MAX - (int64_t)v, .first_purchase = INT64_MIN + (int64_t)v,
            .last_purchase = -(int64_t)v, .seq = UINT32_MAX - v,
            .flags = (uint8_t)(v % 4),
            .last = { (uint8_t)(v % SEG_LC__COUNT), (uint8_t)(v % SEG_VAL__COUNT),
                      (uint8_t)v, (uint8_t)(v % SEG_DIS__COUNT) },
            .money = money, .n_money = (uint32_t)(v % 7),
            .complaints = complaints, .n_complaints = (uint32_t)(v % 3),
        };
        assert_int_equal(seg_engine_customer_put(f->eng, &in, err, sizeof err), 0);
    }
    for (unsigned v = 0; v < SEG_RFM__COUNT; v++) {
        seg_cust_state_t out;
        assert_int_equal(seg_engine_customer_get(f->eng, v, &out), 0);
        char id[16];
        snprintf(id, sizeof id, "rt%u", v);
        assert_int_equal(out.id_len, strlen(id));
        assert_memory_equal(out.id, id, out.id_len);
        assert_true(out.now == INT64_MAX - (int64_t)v);
        assert_true(out.first_purchase == INT64_MIN + (int64_t)v);
        assert_true(out.last_purchase == -(int64_t)v);
        assert_int_equal(out.seq, UINT32_MAX - v);
        assert_int_equal(out.flags, v % 4);
        const uint8_t last[SEG_DIM__COUNT] = { (uint8_t)(v % SEG_LC__COUNT),
            (uint8_t)(v % SEG_VAL__COUNT), (uint8_t)v, (uint8_t)(v % SEG_DIS__COUNT) };
        assert_memory_equal(out.last, last, sizeof last);
        assert_int_equal(out.n_money, v % 7);
        if (out.n_money) assert_memory_equal(out.money, money, out.n_money * sizeof *money);
        assert_int_equal(out.n_complaints, v % 3);
        if (out.n_complaints)
            assert_memory_equal(out.complaints, complaints, out.n_complaints * sizeof *complaints);
    }
    seg_cust_state_t bad = { .id = "bad", .id_len = 3, .last = { SEG_LC__COUNT, 0, 0, 0 } };
    assert_int_equal(seg_engine_customer_put(f->eng, &bad, err, sizeof err), -1);
    bad.last[0] = 0;
    bad.last[2] = SEG_RFM__COUNT;
    assert_int_equal(seg_engine_customer_put(f->eng, &bad, err, sizeof err), -1);
    seg_engine_stats_t st;
    seg_engine_stats(f->eng, &st);
    assert_int_equal(st.customers, SEG_RFM__COUNT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(single_purchase_decays, setup, teardown),
        cmocka_unit_test_setup_teardown(loyal_after_four, setup, teardown),
        cmocka_unit_test_setup_teardown(refund_lowers_value, setup, teardown),
        cmocka_unit_test_setup_teardown(prospect_and_dissatisfied, setup, teardown),
        cmocka_unit_test_setup_teardown(late_event_at_customer_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(window_edge_is_exclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(interleaving_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(fold_local_fires_own_deadlines_only, setup, teardown),
        cmocka_unit_test_setup_teardown(eviction_keeps_ids_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(disabled_dimensions_silent, setup, teardown),
        cmocka_unit_test_setup_teardown(id_is_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(stats_count, setup, teardown),
        cmocka_unit_test_setup_teardown(moved_deadline_is_not_fired, setup, teardown),
        cmocka_unit_test_setup_teardown(customer_state_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
