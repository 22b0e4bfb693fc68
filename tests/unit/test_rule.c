/*
 * The rule language (docs/rules.md): broken fixtures with their exact
 * messages and positions, valid fixtures, and semantics scenario by
 * scenario through the engine. Every expected transition below was worked
 * out by hand from docs/rules.md, not captured from a run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/seg_cfg.h"
#include "event/seg_decode.h"
#include "publish/seg_tjson.h"
#include "rule/seg_rule.h"
#include "segment/seg_engine.h"
#include "util/seg_ts.h"

#define RULE_DATA SEG_TEST_DATA "/rules"

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Loads a configuration file as segd does: seg_cfg, then the rules.
 * Returns the rule set, or NULL with err. */
static seg_ruleset_t *load(const char *path, seg_cfg_t *cfg, char *err, size_t errsz)
{
    seg_cfg_defaults(cfg);
    if (seg_cfg_load_file(cfg, path, err, errsz) != 0 || seg_cfg_validate(cfg, err, errsz) != 0)
        return NULL;
    seg_rules_def_t *def = seg_rules_def_load_file(path, err, errsz);
    if (!def) return NULL;
    return seg_ruleset_build(def, &cfg->seg, err, errsz);
}

/* ---- fixtures ------------------------------------------------------------------ */

static void test_bad_fixtures(void **state)
{
    (void)state;
    DIR *dir = opendir(RULE_DATA "/bad");
    assert_non_null(dir);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(dir)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0) continue;
        char path[1024], exp[1024], want[2048], err[2048] = "";
        snprintf(path, sizeof path, "%s/bad/%s", RULE_DATA, de->d_name);
        snprintf(exp, sizeof exp, "%s/bad/%.*s.expected", RULE_DATA, (int)(len - 5), de->d_name);
        char *tmpl = read_all(exp);
        if (!tmpl) fail_msg("%s has no .expected sidecar", path);
        char *nl = strchr(tmpl, '\n');
        if (nl) *nl = '\0';
        /* FILE stands for the path */
        if (strncmp(tmpl, "FILE", 4) != 0) fail_msg("%s: expected text starts with FILE", exp);
        snprintf(want, sizeof want, "%s%s", path, tmpl + 4);
        free(tmpl);
        seg_cfg_t cfg;
        seg_ruleset_t *rs = load(path, &cfg, err, sizeof err);
        if (rs) fail_msg("%s was accepted", path);
        if (strcmp(err, want) != 0) fail_msg("%s:\n  want: %s\n  got:  %s", de->d_name, want, err);
        n++;
    }
    closedir(dir);
    assert_true(n >= 45);
}

static void test_good_fixtures(void **state)
{
    (void)state;
    const char *extra[] = { SEG_TEST_DATA "/config/builtins-as-rules.yaml",
                            SEG_TEST_DATA "/../../config/segd.yaml" };
    char err[2048];
    int n = 0;
    for (size_t i = 0; i < 2; i++) {
        seg_cfg_t cfg;
        seg_ruleset_t *rs = load(extra[i], &cfg, err, sizeof err);
        if (!rs) fail_msg("%s: %s", extra[i], err);
        seg_ruleset_destroy(rs);
    }
    DIR *dir = opendir(RULE_DATA "/good");
    assert_non_null(dir);
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/good/%s", RULE_DATA, de->d_name);
        seg_cfg_t cfg;
        seg_ruleset_t *rs = load(path, &cfg, err, sizeof err);
        if (!rs) fail_msg("%s: %s", path, err);
        assert_true(seg_ruleset_count(rs) > 0);
        seg_ruleset_destroy(rs);
        n++;
    }
    closedir(dir);
    assert_true(n >= 1);
}

/* The hash changes with what decides transitions, not with layout. */
static void test_hash(void **state)
{
    (void)state;
    seg_segcfg_t seg;
    seg_cfg_t cfg;
    seg_cfg_defaults(&cfg);
    seg = cfg.seg;
    const char *a = "segments:\n  rules:\n    x:\n      when: count(purchase, 30d) >= 1\n";
    const char *b = "# a comment\nsegments:\n\n  rules:\n    x:\n      description: moved\n"
                    "      when: count(purchase,\n        30d)   >= 1\n";
    const char *c = "segments:\n  rules:\n    x:\n      when: count(purchase, 31d) >= 1\n";
    char err[512];
    uint64_t h[3];
    const char *src[3] = { a, b, c };
    for (int i = 0; i < 3; i++) {
        seg_rules_def_t *d = seg_rules_def_load_buffer("t.yaml", src[i], strlen(src[i]), err,
                                                        sizeof err);
        assert_non_null(d);
        seg_ruleset_t *rs = seg_ruleset_build(d, &seg, err, sizeof err);
        assert_non_null(rs);
        h[i] = seg_ruleset_hash(rs);
        seg_ruleset_destroy(rs);
    }
    assert_true(h[0] == h[1]);
    assert_true(h[0] != h[2]);
    seg.value.a_min++;   /* built-in settings count too */
    seg_rules_def_t *d = seg_rules_def_load_buffer("t.yaml", a, strlen(a), err, sizeof err);
    seg_ruleset_t *rs = seg_ruleset_build(d, &seg, err, sizeof err);
    assert_true(seg_ruleset_hash(rs) != h[0]);
    /* a definition survives packing */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    seg_rules_def_pack(seg_ruleset_def(rs), &pk);
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    msgpack_object o;
    size_t off = 0;
    assert_int_equal(msgpack_unpack(sb.data, sb.size, &off, &z, &o), MSGPACK_UNPACK_SUCCESS);
    seg_rules_def_t *back = seg_rules_def_unpack(&o, err, sizeof err);
    assert_non_null(back);
    seg_ruleset_t *rs2 = seg_ruleset_build(back, &seg, err, sizeof err);
    assert_non_null(rs2);
    assert_true(seg_ruleset_hash(rs2) == seg_ruleset_hash(rs));
    seg_ruleset_destroy(rs2);
    seg_ruleset_destroy(rs);
    msgpack_zone_destroy(&z);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- semantics through the engine ------------------------------------------------ */

#define MAXOUT 256

typedef struct capture {
    char *lines[MAXOUT];
    int   n;
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

#define OFF "segments:\n  lifecycle: {enabled: false}\n  value: {enabled: false}\n" \
            "  rfm: {enabled: false}\n  dissatisfied: {enabled: false}\n  rules:\n"

/* Replays NDJSON events (input order) through an engine with these rules
 * up to `until`, and compares every transition with want (NULL-ended). */
static void scenario(const char *yaml, const char *const *events, const char *until,
                     const char *const *want)
{
    char err[1024];
    seg_cfg_t cfg;
    seg_cfg_defaults(&cfg);
    if (seg_cfg_load_buffer(&cfg, "t.yaml", yaml, strlen(yaml), err, sizeof err) != 0)
        fail_msg("%s", err);
    seg_rules_def_t *def = seg_rules_def_load_buffer("t.yaml", yaml, strlen(yaml), err, sizeof err);
    if (!def) fail_msg("%s", err);
    seg_ruleset_t *rs = seg_ruleset_build(def, &cfg.seg, err, sizeof err);
    if (!rs) fail_msg("%s", err);
    capture_t cap = { .n = 0 };
    seg_engine_t *e = seg_engine_new(&cfg.seg, capture, &cap, err, sizeof err);
    assert_non_null(e);
    assert_int_equal(seg_engine_set_rules(e, rs, err, sizeof err), 0);
    seg_decoder_t *dec = seg_decoder_new();
    for (int i = 0; events[i]; i++) {
        seg_event_t ev;
        if (seg_decode_json(dec, events[i], strlen(events[i]), &ev, err, sizeof err) != SEG_REJ_NONE)
            fail_msg("event %d: %s", i, err);
        if (seg_engine_fold(e, &ev, err, sizeof err) != 0) fail_msg("fold: %s", err);
    }
    int64_t end = seg_engine_max_ts(e), u;
    if (until && seg_ts_parse_rfc3339(until, strlen(until), &u) == 0 && u > end) end = u;
    assert_int_equal(seg_engine_advance(e, end, err, sizeof err), 0);
    int n = 0;
    while (want[n]) n++;
    for (int i = 0; i < n || i < cap.n; i++) {
        const char *w = i < n ? want[i] : "(nothing)", *g = i < cap.n ? cap.lines[i] : "(nothing)";
        if (strcmp(w, g) != 0) fail_msg("transition %d:\n  want: %s\n  got:  %s", i + 1, w, g);
    }
    for (int i = 0; i < cap.n; i++) free(cap.lines[i]);
    seg_decoder_destroy(dec);
    seg_engine_destroy(e);
    seg_ruleset_destroy(rs);
}

#define T(id, seq, dim, from, to, at, cause) \
    "{\"id\":\"" id ":" #seq "\",\"customer_id\":\"" id "\",\"seq\":" #seq ",\"dimension\":\"" dim \
    "\",\"from\":" from ",\"to\":" to ",\"at\":\"" at "\",\"cause\":\"" cause "\"}"
#define P(id, ts, amount) \
    "{\"type\":\"purchase\",\"customer_id\":\"" id "\",\"ts\":\"" ts "\",\"amount\":" amount "}"
#define C(id, ts, kind) \
    "{\"type\":\"contact\",\"customer_id\":\"" id "\",\"ts\":\"" ts "\",\"kind\":\"" kind "\"}"

/* A window is half-open on the old side: an event counts until exactly
 * ts + W, and the exit fires at that second. */
static void test_window_edge(void **state)
{
    (void)state;
    const char *ev[] = { P("c1", "2024-01-01T00:00:00Z", "5"), NULL };
    const char *want[] = {
        T("c1", 1, "w", "\"out\"", "\"in\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 2, "w", "\"in\"", "\"out\"", "2024-01-01T00:00:10Z", "time"),
        NULL,
    };
    scenario(OFF "    w:\n      when: count(purchase, 10s) >= 1\n", ev, "2024-02-01T00:00:00Z",
             want);
}

/* < and >= flip at base + c; <= and > one second later. */
static void test_le_vs_lt(void **state)
{
    (void)state;
    const char *ev[] = { C("c1", "2024-01-01T00:00:00Z", "visit"), NULL };
    const char *want[] = {
        T("c1", 1, "a", "\"out\"", "\"in\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 2, "b", "\"out\"", "\"in\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 3, "b", "\"in\"", "\"out\"", "2024-01-01T00:00:10Z", "time"),
        T("c1", 4, "a", "\"in\"", "\"out\"", "2024-01-01T00:00:11Z", "time"),
        NULL,
    };
    scenario(OFF "    a:\n      when: since(contact) <= 10s\n"
                 "    b:\n      when: 10s > since(contact)\n",
             ev, "2024-01-02T00:00:00Z", want);
}

/* A comparison with an absent value is false: not (recency < 30d) holds
 * for a customer who never bought, recency >= 30d does not. */
static void test_absent(void **state)
{
    (void)state;
    const char *ev[] = { C("c1", "2024-01-01T00:00:00Z", "visit"), NULL };
    const char *want[] = {
        T("c1", 1, "n", "\"out\"", "\"in\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 2, "h", "null", "\"no\"", "2024-01-01T00:00:00Z", "event"),
        NULL,
    };
    scenario(OFF "    n:\n      when: not (recency < 30d)\n"
                 "    r:\n      when: recency >= 30d\n"
                 "    h:\n      value: if(has(recency), \"yes\", \"no\")\n"
                 "    s:\n      value: (\"x\" + attr(\"never\"))\n",
             ev, NULL, want);
}

/* Numbers stay exact where they can, print minimally; doubles print
 * shortest; durations with the largest unit; 1 / 0 has no value. */
static void test_printing(void **state)
{
    (void)state;
    const char *ev[] = { C("c1", "2024-01-01T00:00:00Z", "visit"), NULL };
    const char *want[] = {
        T("c1", 1, "p1", "null", "\"0.3333333333333333\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 2, "p2", "null", "\"25\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 3, "p3", "null", "\"2.5\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 4, "p4", "null", "\"x2w\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 5, "p5", "null", "\"atrue\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 6, "p6", "null", "\"0.3\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 7, "p8", "null", "\"n36h-90s\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 8, "p9", "null", "\"1e+19\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 9, "p10", "null", "\"-0.0001\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 10, "p11", "null", "\"q\\\"uote\\\\\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 11, "p12", "null", "\"3\"", "2024-01-01T00:00:00Z", "event"),
        NULL,
    };
    scenario(OFF "    p1:\n      value: (1 / 3)\n"
                 "    p2:\n      value: (2 * 12.5)\n"
                 "    p3:\n      value: (10 / 4)\n"
                 "    p4:\n      value: (\"x\" + 14d)\n"
                 "    p5:\n      value: (\"a\" + true)\n"
                 "    p6:\n      value: (0.1 + 0.2)\n"
                 "    p7:\n      value: (1 / 0)\n"
                 "    p8:\n      value: (\"n\" + 36h + \"-\" + 90s)\n"
                 "    p9:\n      value: (100000000000000 * 100000)\n"
                 "    p10:\n      value: (-0.0001 * 1)\n"
                 "    p11:\n      value: '\"q\\\"uote\\\\\"'\n"
                 "    p12:\n      value: (6 / 2.0)\n",
             ev, NULL, want);
}

/* attr(): the value of the latest ts wins, so a late event with an older
 * value does not overwrite; null unsets; objects are ignored. */
static void test_attr_latest(void **state)
{
    (void)state;
    const char *ev[] = {
        "{\"type\":\"profile\",\"customer_id\":\"c1\",\"ts\":\"2024-01-02T00:00:00Z\","
        "\"attrs\":{\"plan\":\"pro\"}}",
        "{\"type\":\"profile\",\"customer_id\":\"c1\",\"ts\":\"2024-01-01T00:00:00Z\","
        "\"attrs\":{\"plan\":\"basic\"}}",
        "{\"type\":\"profile\",\"customer_id\":\"c1\",\"ts\":\"2024-01-03T00:00:00Z\","
        "\"attrs\":{\"plan\":{\"tier\":1}}}",
        "{\"type\":\"purchase\",\"customer_id\":\"c1\",\"ts\":\"2024-01-04T00:00:00Z\","
        "\"amount\":1,\"attrs\":{\"plan\":null}}",
        NULL,
    };
    const char *want[] = {
        T("c1", 1, "plan", "null", "\"pro\"", "2024-01-02T00:00:00Z", "event"),
        T("c1", 2, "plan", "\"pro\"", "null", "2024-01-04T00:00:00Z", "event"),
        NULL,
    };
    scenario(OFF "    plan:\n      value: attr(\"plan\")\n", ev, NULL, want);
}

/* A late event is folded and evaluated at the customer's clock: it counts
 * if clock - W < ts, and leaves the window at ts + W. */
static void test_late_event(void **state)
{
    (void)state;
    const char *ev[] = {
        P("c1", "2024-01-01T00:01:40Z", "1"),
        P("c1", "2024-01-01T00:01:35Z", "1"),
        NULL,
    };
    const char *want[] = {
        T("c1", 1, "two", "\"out\"", "\"in\"", "2024-01-01T00:01:40Z", "event"),
        T("c1", 2, "two", "\"in\"", "\"out\"", "2024-01-01T00:01:45Z", "time"),
        NULL,
    };
    scenario(OFF "    two:\n      when: count(purchase, 10s) >= 2\n", ev, "2024-01-01T01:00:00Z",
             want);
}

/* where: false leaves the value for "no value": to null. */
static void test_where_to_null(void **state)
{
    (void)state;
    const char *ev[] = { P("c1", "2024-01-01T00:00:00Z", "7.5"), NULL };
    const char *want[] = {
        T("c1", 1, "v", "null", "\"v7.5\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 2, "v", "\"v7.5\"", "null", "2024-01-01T00:00:10Z", "time"),
        NULL,
    };
    scenario(OFF "    v:\n      where: count(purchase, 10s) >= 1\n"
                 "      value: (\"v\" + sum(purchase, 10s))\n",
             ev, "2024-01-02T00:00:00Z", want);
}

/* tier() and in [...] on a time feature fire at each bound. */
static void test_tier_and_in(void **state)
{
    (void)state;
    const char *ev[] = { C("c1", "2024-01-01T00:00:00Z", "call"), NULL };
    const char *want[] = {
        T("c1", 1, "t", "null", "\"t0\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 2, "i", "\"out\"", "\"in\"", "2024-01-01T00:00:05Z", "time"),
        T("c1", 3, "i", "\"in\"", "\"out\"", "2024-01-01T00:00:06Z", "time"),
        T("c1", 4, "i", "\"out\"", "\"in\"", "2024-01-01T00:00:07Z", "time"),
        T("c1", 5, "i", "\"in\"", "\"out\"", "2024-01-01T00:00:08Z", "time"),
        T("c1", 6, "t", "\"t0\"", "\"t1\"", "2024-01-01T00:00:10Z", "time"),
        T("c1", 7, "t", "\"t1\"", "\"t2\"", "2024-01-01T00:00:20Z", "time"),
        NULL,
    };
    scenario(OFF "    t:\n      value: (\"t\" + tier(since(contact.call), [10s, 20s]))\n"
                 "    i:\n      when: since(contact) in [5s, 7s]\n",
             ev, "2024-01-02T00:00:00Z", want);
}

/* A rule reads built-in dimensions and rules above it, at the same
 * evaluation, after them. */
static void test_reads_dims_and_rules(void **state)
{
    (void)state;
    const char *ev[] = {
        P("c1", "2024-01-01T00:00:00Z", "100"),
        P("c1", "2024-01-02T00:00:00Z", "100"),
        NULL,
    };
    const char *want[] = {
        T("c1", 1, "lifecycle", "null", "\"new\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 2, "n", "null", "\"1\"", "2024-01-01T00:00:00Z", "event"),
        T("c1", 3, "n", "\"1\"", "\"2\"", "2024-01-02T00:00:00Z", "event"),
        T("c1", 4, "m", "\"out\"", "\"in\"", "2024-01-02T00:00:00Z", "event"),
        /* 30 days after the first purchase: it leaves n's window */
        T("c1", 5, "lifecycle", "\"new\"", "\"active\"", "2024-01-31T00:00:00Z", "time"),
        T("c1", 6, "n", "\"2\"", "\"1\"", "2024-01-31T00:00:00Z", "time"),
        T("c1", 7, "m", "\"in\"", "\"out\"", "2024-01-31T00:00:00Z", "time"),
        T("c1", 8, "n", "\"1\"", "\"0\"", "2024-02-01T00:00:00Z", "time"),
        /* the last purchase + 45d, + 90d */
        T("c1", 9, "lifecycle", "\"active\"", "\"at_risk\"", "2024-02-16T00:00:00Z", "time"),
        T("c1", 10, "la", "\"out\"", "\"in\"", "2024-02-16T00:00:00Z", "time"),
        T("c1", 11, "lifecycle", "\"at_risk\"", "\"silent\"", "2024-04-01T00:00:00Z", "time"),
        T("c1", 12, "la", "\"in\"", "\"out\"", "2024-04-01T00:00:00Z", "time"),
        NULL,
    };
    scenario("segments:\n  value: {enabled: false}\n  rfm: {enabled: false}\n"
             "  dissatisfied: {enabled: false}\n  rules:\n"
             "    n:\n      value: count(purchase, 30d)\n"
             "    m:\n      when: n >= 2\n"
             "    la:\n      when: lifecycle == \"at_risk\"\n",
             ev, "2024-04-10T00:00:00Z", want);
}

/* A rule that reads only attributes is not disturbed by purchases, and a
 * graded rule without else has no value until a case holds. */
static void test_graded_no_else(void **state)
{
    (void)state;
    const char *ev[] = {
        P("c1", "2024-01-01T00:00:00Z", "1"),
        "{\"type\":\"profile\",\"customer_id\":\"c1\",\"ts\":\"2024-01-02T00:00:00Z\","
        "\"attrs\":{\"account_type\":\"business\",\"seats\":40}}",
        "{\"type\":\"profile\",\"customer_id\":\"c1\",\"ts\":\"2024-01-03T00:00:00Z\","
        "\"attrs\":{\"seats\":\"many\"}}",
        NULL,
    };
    const char *want[] = {
        T("c1", 1, "kind", "null", "\"enterprise\"", "2024-01-02T00:00:00Z", "event"),
        T("c1", 2, "big", "\"out\"", "\"in\"", "2024-01-02T00:00:00Z", "event"),
        T("c1", 3, "big", "\"in\"", "\"out\"", "2024-01-03T00:00:00Z", "event"),
        NULL,
    };
    scenario(OFF "    kind:\n      cases:\n        - enterprise: attr(\"account_type\") == \"business\"\n"
                 "    big:\n      when: attr(\"seats\") * 2 > 50\n",
             ev, NULL, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_fixtures),
        cmocka_unit_test(test_good_fixtures),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_window_edge),
        cmocka_unit_test(test_le_vs_lt),
        cmocka_unit_test(test_absent),
        cmocka_unit_test(test_printing),
        cmocka_unit_test(test_attr_latest),
        cmocka_unit_test(test_late_event),
        cmocka_unit_test(test_where_to_null),
        cmocka_unit_test(test_tier_and_in),
        cmocka_unit_test(test_reads_dims_and_rules),
        cmocka_unit_test(test_graded_no_else),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
