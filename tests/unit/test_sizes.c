/*
 * seg_sizes: counts, starting values, the rule bound, the time rings, and
 * the state-driven paths (restore scan, eviction and return). Expected
 * numbers are worked out by hand from the transitions each case feeds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/seg_cfg.h"
#include "segment/seg_engine.h"
#include "segment/seg_sizes.h"
#include "util/seg_ts.h"

static int64_t ts(const char *s)
{
    int64_t v;
    assert_int_equal(seg_ts_parse_rfc3339(s, strlen(s), &v), 0);
    return v;
}

static seg_ruleset_t *rules(const seg_cfg_t *cfg, const char *yaml)
{
    char err[512];
    seg_rules_def_t *d = seg_rules_def_load_buffer("t.yaml", yaml, strlen(yaml), err, sizeof err);
    assert_non_null(d);
    seg_ruleset_t *rs = seg_ruleset_build(d, &cfg->seg, err, sizeof err);
    if (!rs) fprintf(stderr, "%s\n", err);
    assert_non_null(rs);
    return rs;
}

/* A transition of a built-in dimension by value code. */
static seg_transition_t tb(const char *cust, uint32_t seq, seg_dim_t d, uint8_t from, uint8_t to,
                           int64_t at)
{
    seg_transition_t t;
    memset(&t, 0, sizeof t);
    t.customer_id = cust;
    t.customer_id_len = strlen(cust);
    t.seq = seq;
    t.dim = d;
    t.dim_name = seg_dim_name(d);
    t.from = seg_dim_value_name(d, from);
    t.to = seg_dim_value_name(d, to);
    t.from_code = from;
    t.to_code = to;
    t.at = at;
    return t;
}

static seg_transition_t tr(const char *cust, uint32_t seq, uint32_t rule, const char *name,
                           const char *from, const char *to, int64_t at)
{
    seg_transition_t t;
    memset(&t, 0, sizeof t);
    t.customer_id = cust;
    t.customer_id_len = strlen(cust);
    t.seq = seq;
    t.dim = SEG_DIM_RULE(rule);
    t.dim_name = name;
    t.from = from;
    t.to = to;
    t.at = at;
    return t;
}

/* The row of dimension/value in the JSON, or NULL. */
static cJSON *value_row(cJSON *doc, const char *dim, const char *value)
{
    cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(doc, "dimensions")) {
        if (strcmp(cJSON_GetObjectItem(d, "dimension")->valuestring, dim) != 0) continue;
        cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(d, "values"))
            if (strcmp(cJSON_GetObjectItem(v, "value")->valuestring, value) == 0) return v;
    }
    return NULL;
}

static double num(cJSON *doc, const char *dim, const char *value, const char *field)
{
    cJSON *v = value_row(doc, dim, value);
    assert_non_null(v);
    cJSON *f = cJSON_GetObjectItem(v, field);
    assert_non_null(f);
    return f->valuedouble;
}

static cJSON *json(seg_sizes_t *s)
{
    char *text = seg_sizes_json(s, NULL);
    assert_non_null(text);
    cJSON *doc = cJSON_Parse(text);
    free(text);
    assert_non_null(doc);
    return doc;
}

static void builtins_and_starting_value(void **st)
{
    (void)st;
    seg_cfg_t cfg;
    seg_cfg_defaults(&cfg);
    seg_sizes_t *s = seg_sizes_new();
    assert_int_equal(seg_sizes_set_dims(s, &cfg.seg, NULL), 0);
    int64_t t0 = ts("2024-01-01T00:00:00Z");
    seg_transition_t t[] = {
        tb("a", 1, SEG_DIM_LIFECYCLE, SEG_LC_NONE, SEG_LC_NEW, t0),
        tb("b", 1, SEG_DIM_LIFECYCLE, SEG_LC_NONE, SEG_LC_NEW, t0 + 10),
        tb("b", 2, SEG_DIM_DISSATISFIED, SEG_DIS_OUT, SEG_DIS_IN, t0 + 20),
        tb("a", 2, SEG_DIM_LIFECYCLE, SEG_LC_NEW, SEG_LC_ACTIVE, t0 + 30),
        tb("c", 1, SEG_DIM_DISSATISFIED, SEG_DIS_OUT, SEG_DIS_IN, t0 + 40),
        tb("c", 2, SEG_DIM_DISSATISFIED, SEG_DIS_IN, SEG_DIS_OUT, t0 + 50),
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        assert_int_equal(seg_sizes_transition(s, &t[i]), 0);
    assert_int_equal(seg_sizes_customers(s), 3);
    cJSON *doc = json(s);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(doc, "exact")));
    assert_int_equal(num(doc, "lifecycle", "new", "customers"), 1);
    assert_int_equal(num(doc, "lifecycle", "active", "customers"), 1);
    assert_int_equal(num(doc, "lifecycle", "new", "entries_total"), 2);
    assert_int_equal(num(doc, "lifecycle", "new", "exits_total"), 1);
    /* "out" is where customers start: 3 known, 1 in. */
    assert_int_equal(num(doc, "dissatisfied", "in", "customers"), 1);
    assert_int_equal(num(doc, "dissatisfied", "out", "customers"), 2);
    assert_int_equal(num(doc, "dissatisfied", "out", "exits_24h"), 2);
    assert_int_equal(num(doc, "dissatisfied", "out", "entries_24h"), 1);
    /* volatility = (adds + drops) / size */
    assert_true(num(doc, "lifecycle", "new", "volatility_24h") == 3.0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(value_row(doc, "lifecycle", "loyal"),
                                                 "volatility_24h")));
    cJSON_Delete(doc);
    seg_sizes_destroy(s);
}

static void rings_follow_event_time(void **st)
{
    (void)st;
    seg_cfg_t cfg;
    seg_cfg_defaults(&cfg);
    seg_sizes_t *s = seg_sizes_new();
    assert_int_equal(seg_sizes_set_dims(s, &cfg.seg, NULL), 0);
    int64_t t0 = ts("2024-01-01T00:00:00Z");
    /* 10 entries two days back, 5 at 23 h back, 2 at 30 min back, one now. */
    uint32_t seq = 0;
    char id[16];
    for (int i = 0; i < 18; i++) {
        int64_t at = i < 10 ? t0 - 2 * 86400 : i < 15 ? t0 - 23 * 3600 : i < 17 ? t0 - 1800 : t0;
        snprintf(id, sizeof id, "c%d", i);
        seg_transition_t t = tb(id, 1, SEG_DIM_VALUE, SEG_VAL_NONE, SEG_VAL_B, at);
        (void)seq;
        assert_int_equal(seg_sizes_transition(s, &t), 0);
    }
    cJSON *doc = json(s);
    assert_int_equal(num(doc, "value", "B", "customers"), 18);
    assert_int_equal(num(doc, "value", "B", "entries_total"), 18);
    assert_int_equal(num(doc, "value", "B", "entries_24h"), 8);
    assert_int_equal(num(doc, "value", "B", "entries_1h"), 3);
    cJSON_Delete(doc);
    /* An hour later in event time, the last hour is empty and the ones
     * 23 h back are past 24 h; two days later, everything is. */
    seg_sizes_advance(s, t0 + 3600 + 60);
    doc = json(s);
    assert_int_equal(num(doc, "value", "B", "entries_1h"), 0);
    assert_int_equal(num(doc, "value", "B", "entries_24h"), 3);
    cJSON_Delete(doc);
    seg_sizes_advance(s, t0 + 2 * 86400);
    doc = json(s);
    assert_int_equal(num(doc, "value", "B", "entries_24h"), 0);
    assert_int_equal(num(doc, "value", "B", "customers"), 18);
    assert_string_equal(cJSON_GetObjectItem(doc, "time")->valuestring, "2024-01-03T00:00:00Z");
    cJSON_Delete(doc);
    /* A late transition older than 24 h counts in totals only. */
    seg_transition_t late = tb("z", 1, SEG_DIM_VALUE, SEG_VAL_NONE, SEG_VAL_A, t0 - 86400 * 5);
    assert_int_equal(seg_sizes_transition(s, &late), 0);
    doc = json(s);
    assert_int_equal(num(doc, "value", "A", "entries_total"), 1);
    assert_int_equal(num(doc, "value", "A", "entries_24h"), 0);
    cJSON_Delete(doc);
    seg_sizes_destroy(s);
}

static void rule_values_bounded_and_removed(void **st)
{
    (void)st;
    seg_cfg_t cfg;
    seg_cfg_defaults(&cfg);
    seg_ruleset_t *rs = rules(&cfg, "segments:\n  rules:\n"
                                    "    member:\n      when: count(purchase, 30d) >= 1\n"
                                    "    spend:\n      where: has(recency)\n"
                                    "      value: sum(purchase, 30d)\n");
    seg_sizes_t *s = seg_sizes_new();
    assert_int_equal(seg_sizes_set_dims(s, &cfg.seg, rs), 0);
    int64_t t0 = ts("2024-01-01T00:00:00Z");
    char id[16], v[16];
    /* 100 customers, each with its own computed value: 64 rows, then _other. */
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "c%d", i);
        snprintf(v, sizeof v, "%d", i);
        seg_transition_t a = tr(id, 1, 0, "member", "out", "in", t0);
        seg_transition_t b = tr(id, 2, 1, "spend", NULL, v, t0);
        assert_int_equal(seg_sizes_transition(s, &a), 0);
        assert_int_equal(seg_sizes_transition(s, &b), 0);
    }
    /* one moves between two values that are both past the bound */
    seg_transition_t m = tr("c99", 3, 1, "spend", "99", "98", t0 + 1);
    assert_int_equal(seg_sizes_transition(s, &m), 0);
    cJSON *doc = json(s);
    assert_int_equal(num(doc, "member", "in", "customers"), 100);
    assert_int_equal(num(doc, "member", "out", "customers"), 0);
    assert_int_equal(num(doc, "spend", "0", "customers"), 1);
    assert_int_equal(num(doc, "spend", "63", "customers"), 1);
    assert_null(value_row(doc, "spend", "64"));
    assert_int_equal(num(doc, "spend", "_other", "customers"), 36);
    assert_int_equal(num(doc, "spend", "_other", "entries_total"), 37);
    assert_int_equal(num(doc, "spend", "_other", "exits_total"), 1);
    cJSON_Delete(doc);
    /* The rule "spend" is removed: a reload publishes to: null for each. */
    seg_ruleset_t *rs2 = rules(&cfg, "segments:\n  rules:\n"
                                     "    member:\n      when: count(purchase, 30d) >= 1\n");
    assert_int_equal(seg_sizes_set_dims(s, &cfg.seg, rs2), 0);
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "c%d", i);
        snprintf(v, sizeof v, "%d", i == 99 ? 98 : i);
        seg_transition_t x = tr(id, 4, 1, "spend", v, NULL, t0 + 2);
        assert_int_equal(seg_sizes_transition(s, &x), 0);
    }
    doc = json(s);
    cJSON *d;
    int dims = 0;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(doc, "dimensions")) {
        dims++;
        assert_string_not_equal(cJSON_GetObjectItem(d, "dimension")->valuestring, "spend");
    }
    assert_int_equal(dims, 5);
    assert_int_equal(num(doc, "member", "in", "customers"), 100);
    cJSON_Delete(doc);
    seg_sizes_destroy(s);
    seg_ruleset_destroy(rs);
    seg_ruleset_destroy(rs2);
}

typedef struct feed {
    seg_sizes_t *sizes;
    int          n;
} feed_t;

static int feed(void *opaque, const seg_transition_t *t)
{
    feed_t *f = opaque;
    f->n++;
    return seg_sizes_transition(f->sizes, t);
}

static seg_event_t purchase(const char *id, int64_t at)
{
    seg_event_t e;
    memset(&e, 0, sizeof e);
    e.type = SEG_EV_PURCHASE;
    e.customer_id = id;
    e.customer_id_len = strlen(id);
    e.ts = at;
    e.amount = 500000;   /* 50.00 */
    e.has_amount = 1;
    return e;
}

/* A scan of an engine's state gives what its transitions gave, and
 * eviction and return keep the two in step. */
static void engine_state_scan_eviction(void **st)
{
    (void)st;
    seg_cfg_t cfg;
    seg_cfg_defaults(&cfg);
    char err[256];
    seg_ruleset_t *rs = rules(&cfg, "segments:\n  rules:\n"
                                    "    member:\n      when: count(purchase, 30d) >= 1\n");
    feed_t f = { seg_sizes_new(), 0 };
    assert_int_equal(seg_sizes_set_dims(f.sizes, &cfg.seg, rs), 0);
    seg_engine_t *e = seg_engine_new(&cfg.seg, feed, &f, err, sizeof err);
    assert_non_null(e);
    assert_int_equal(seg_engine_set_rules(e, rs, err, sizeof err), 0);
    seg_engine_on_customer(e, seg_sizes_on_customer, f.sizes);
    seg_engine_set_evict_after(e, 30 * 86400);
    int64_t t0 = ts("2020-01-01T00:00:00Z");
    char id[16];
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "k%d", i);
        seg_event_t ev = purchase(id, t0 + i * 86400 * 20);
        assert_int_equal(seg_engine_fold(e, &ev, err, sizeof err), 0);
    }
    /* a refund-only customer: held, never published */
    seg_event_t rf = purchase("r", t0 + 100);
    rf.type = SEG_EV_REFUND;
    assert_int_equal(seg_engine_fold(e, &rf, err, sizeof err), 0);
    int64_t end = t0 + 20 * 86400 * 20;
    assert_int_equal(seg_engine_advance(e, end, err, sizeof err), 0);
    seg_engine_stats_t es;
    seg_engine_stats(e, &es);
    assert_true(es.evicted > 0);
    char *by_tr = seg_sizes_json(f.sizes, NULL);
    /* The same counts from the state alone. */
    seg_sizes_t *scan = seg_sizes_new();
    assert_int_equal(seg_sizes_set_dims(scan, &cfg.seg, rs), 0);
    assert_int_equal(seg_sizes_add_engine(scan, e, 1), 0);
    assert_int_equal(seg_sizes_customers(scan), seg_sizes_customers(f.sizes));
    assert_int_equal(seg_sizes_customers(scan), (int64_t)es.customers - 1);
    cJSON *a = cJSON_Parse(by_tr), *b = json(scan);
    cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(a, "dimensions")) {
        const char *dn = cJSON_GetObjectItem(d, "dimension")->valuestring;
        cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(d, "values")) {
            const char *vn = cJSON_GetObjectItem(v, "value")->valuestring;
            int want = (int)cJSON_GetObjectItem(v, "customers")->valuedouble;
            cJSON *w = value_row(b, dn, vn);
            int got = w ? (int)cJSON_GetObjectItem(w, "customers")->valuedouble : 0;
            if (want != got) fail_msg("%s=%s: transitions %d, scan %d", dn, vn, want, got);
        }
    }
    /* An evicted customer comes back: new again, once. */
    seg_event_t back = purchase("k0", end + 86400);
    assert_int_equal(seg_engine_fold(e, &back, err, sizeof err), 0);
    cJSON_Delete(b);
    b = json(f.sizes);
    seg_sizes_t *scan2 = seg_sizes_new();
    assert_int_equal(seg_sizes_set_dims(scan2, &cfg.seg, rs), 0);
    assert_int_equal(seg_sizes_add_engine(scan2, e, 1), 0);
    cJSON *c2 = json(scan2);
    assert_int_equal(num(b, "lifecycle", "new", "customers"),
                     num(c2, "lifecycle", "new", "customers"));
    assert_int_equal(num(b, "lifecycle", "new", "customers"), 2);   /* k19 (20 days old) and k0 */
    assert_int_equal(num(b, "member", "out", "customers"), num(c2, "member", "out", "customers"));
    assert_int_equal(seg_sizes_customers(f.sizes), seg_sizes_customers(scan2));
    /* Taking the engine out leaves nothing. */
    assert_int_equal(seg_sizes_add_engine(scan2, e, -1), 0);
    assert_int_equal(seg_sizes_customers(scan2), 0);
    cJSON_Delete(c2);
    c2 = json(scan2);
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(c2, "dimensions")) {
        cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(d, "values"))
            assert_int_equal((int)cJSON_GetObjectItem(v, "customers")->valuedouble, 0);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c2);
    free(by_tr);
    seg_engine_destroy(e);
    seg_sizes_destroy(f.sizes);
    seg_sizes_destroy(scan);
    seg_sizes_destroy(scan2);
    seg_ruleset_destroy(rs);
}

static void lookup_view(void **st)
{
    (void)st;
    seg_cfg_t cfg;
    seg_cfg_defaults(&cfg);
    char err[256];
    feed_t f = { seg_sizes_new(), 0 };
    assert_int_equal(seg_sizes_set_dims(f.sizes, &cfg.seg, NULL), 0);
    seg_engine_t *e = seg_engine_new(&cfg.seg, feed, &f, err, sizeof err);
    int64_t t0 = ts("2024-01-01T00:00:00Z");
    seg_event_t ev = purchase("x", t0);
    assert_int_equal(seg_engine_fold(e, &ev, err, sizeof err), 0);
    uint32_t idx = seg_engine_customer_find(e, "x", 1);
    assert_int_not_equal(idx, UINT32_MAX);
    assert_int_equal(seg_engine_customer_find(e, "y", 1), UINT32_MAX);
    seg_cust_view_t v;
    assert_int_equal(seg_engine_customer_view(e, idx, INT64_MIN, &v), 0);
    assert_int_equal(v.seq, 3);   /* lifecycle new, value C, rfm R1F1M1; dissatisfied stays out */
    assert_int_equal(v.now, t0);
    assert_int_equal(v.features.frequency, 1);
    assert_int_equal(v.features.monetary, 500000);
    /* new_for 30d comes first: age reaches 30d */
    assert_int_equal(v.next_at, t0 + 30 * 86400);
    assert_non_null(strstr(v.next_what, "age reaches 30d"));
    assert_string_equal(seg_engine_customer_value(e, idx, SEG_DIM_LIFECYCLE), "new");
    assert_string_equal(seg_engine_customer_value(e, idx, SEG_DIM_DISSATISFIED), "out");
    seg_engine_destroy(e);
    seg_sizes_destroy(f.sizes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(builtins_and_starting_value),
        cmocka_unit_test(rings_follow_event_time),
        cmocka_unit_test(rule_values_bounded_and_removed),
        cmocka_unit_test(engine_state_scan_eviction),
        cmocka_unit_test(lookup_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
