/* seg_snapshot: a loaded snapshot continues exactly like the engine that
 * wrote it; truncated or corrupt files are rejected whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/seg_cfg.h"
#include "persist/seg_rulestate.h"
#include "persist/seg_snapshot.h"
#include "publish/seg_tjson.h"

typedef struct out { char *buf; size_t len, cap; } out_t;

static int collect(void *opaque, const seg_transition_t *t)
{
    out_t *o = opaque;
    char line[SEG_TJSON_MAX + 1];
    size_t n = seg_tjson_encode(t, false, line);
    line[n++] = '\n';
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2;
        o->buf = realloc(o->buf, o->cap);
    }
    memcpy(o->buf + o->len, line, n);
    o->len += n;
    return 0;
}

static seg_cfg_t cfg;
static char dir[] = "/tmp/segd-snap-XXXXXX";

/* A deterministic mixed stream over 300 customers, in time order. */
static void event_at(int i, seg_event_t *e, char *id)
{
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ULL;
    x ^= x >> 29;
    memset(e, 0, sizeof *e);
    snprintf(id, 16, "c%03d", (int)(x % 300));
    e->customer_id = id;
    e->customer_id_len = strlen(id);
    e->ts = 1700000000 + (int64_t)i * 3600 * 7;
    int k = (int)((x >> 20) % 10);
    e->type = k < 6 ? SEG_EV_PURCHASE : k < 7 ? SEG_EV_REFUND : SEG_EV_CONTACT;
    e->kind = e->type == SEG_EV_CONTACT ? (k == 9 ? SEG_CONTACT_VISIT : SEG_CONTACT_COMPLAINT) : 0;
    e->amount = (int64_t)((x >> 30) % 5000000);
}

static seg_engine_t *engine(out_t *o)
{
    char err[128];
    seg_engine_t *e = seg_engine_new(&cfg.seg, collect, o, err, sizeof err);
    assert_non_null(e);
    return e;
}

static void run(seg_engine_t *e, int from, int to)
{
    char err[128], id[16];
    for (int i = from; i < to; i++) {
        seg_event_t ev;
        event_at(i, &ev, id);
        assert_int_equal(seg_engine_fold(e, &ev, err, sizeof err), 0);
    }
}

static void round_trip_continues_identically(void **state)
{
    (void)state;
    char err[256], path[512];
    out_t full = { 0 }, first = { 0 }, second = { 0 };
    seg_engine_t *a = engine(&full);
    run(a, 0, 4000);
    assert_int_equal(seg_engine_advance(a, 1700000000 + 4000LL * 3600 * 7 + 400 * 86400LL, err, sizeof err), 0);
    seg_engine_destroy(a);

    seg_engine_t *b = engine(&first);
    run(b, 0, 2000);
    seg_snapshot_info_t wi, li;
    seg_engine_stats_t bs;
    seg_engine_stats(b, &bs);
    assert_true(bs.customers > 250);
    assert_int_equal(seg_snapshot_write(dir, "events", 3, b, 2000, &wi, err, sizeof err), 0);
    assert_int_equal(wi.customers, bs.customers);
    seg_engine_destroy(b);

    seg_engine_t *c = engine(&second);
    seg_snapshot_path(dir, "events", 3, path, sizeof path);
    assert_int_equal(seg_snapshot_load(path, "events", 3, c, &li, err, sizeof err), 0);
    assert_int_equal(li.next_offset, 2000);
    assert_int_equal(li.customers, bs.customers);
    assert_int_equal(li.max_ts, seg_engine_max_ts(c));
    run(c, 2000, 4000);
    assert_int_equal(seg_engine_advance(c, 1700000000 + 4000LL * 3600 * 7 + 400 * 86400LL, err, sizeof err), 0);
    seg_engine_destroy(c);
    /* before + after the snapshot == one uninterrupted run, byte for byte */
    assert_int_equal(first.len + second.len, full.len);
    assert_memory_equal(first.buf, full.buf, first.len);
    assert_memory_equal(second.buf, full.buf + first.len, second.len);
    assert_true(full.len > 10000);
    free(full.buf); free(first.buf); free(second.buf);

    /* wrong partition */
    out_t o = { 0 };
    seg_engine_t *d = engine(&o);
    assert_int_equal(seg_snapshot_load(path, "events", 4, d, &li, err, sizeof err), -1);
    assert_non_null(strstr(err, "belongs to events[3]"));
    seg_engine_destroy(d);
}

static void damaged_files_rejected(void **state)
{
    (void)state;
    char err[256], path[512], bad[600];
    out_t o = { 0 };
    seg_engine_t *e = engine(&o);
    run(e, 0, 500);
    assert_int_equal(seg_snapshot_write(dir, "events", 1, e, 500, NULL, err, sizeof err), 0);
    seg_engine_destroy(e);
    seg_snapshot_path(dir, "events", 1, path, sizeof path);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *img = malloc((size_t)n);
    assert_int_equal(fread(img, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    static const struct { long len; long flip; const char *want; } cases[] = {
        { -1, 100, "fails its checksum" },
        { -1, 9, "truncated or padded" },          /* length field */
        { -1, 0, "bad magic" },
        { 10, -1, "truncated (10 bytes)" },
        { -2, -1, "truncated or padded" },        /* cut in the middle */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(bad, sizeof bad, "%s/bad%zu.snap", dir, i);
        long len = cases[i].len == -1 ? n : cases[i].len == -2 ? n / 2 : cases[i].len;
        char *copy = malloc((size_t)n);
        memcpy(copy, img, (size_t)n);
        if (cases[i].flip >= 0) copy[cases[i].flip] ^= 0x10;
        f = fopen(bad, "wb");
        fwrite(copy, 1, (size_t)len, f);
        fclose(f);
        free(copy);
        seg_snapshot_info_t info;
        out_t o2 = { 0 };
        seg_engine_t *x = engine(&o2);
        assert_int_equal(seg_snapshot_load(bad, NULL, 0, x, &info, err, sizeof err), -1);
        if (!strstr(err, cases[i].want)) fail_msg("case %zu: '%s'", i, err);
        seg_engine_destroy(x);
    }
    free(img);
    free(o.buf);
}

static void crash_before_rename_keeps_previous(void **state)
{
    (void)state;
    char err[256], path[512];
    out_t o = { 0 };
    seg_engine_t *e = engine(&o);
    run(e, 0, 300);
    assert_int_equal(seg_snapshot_write(dir, "t", 0, e, 300, NULL, err, sizeof err), 0);
    run(e, 300, 600);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("SEGD_FAULT", "snapshot-before-rename", 1);
        seg_snapshot_write(dir, "t", 0, e, 600, NULL, err, sizeof err);
        _exit(0);   /* not reached: the hook kills the process */
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    seg_engine_destroy(e);
    seg_snapshot_path(dir, "t", 0, path, sizeof path);
    seg_snapshot_info_t info;
    seg_engine_t *x = engine(&o);
    assert_int_equal(seg_snapshot_load(path, "t", 0, x, &info, err, sizeof err), 0);
    assert_int_equal(info.next_offset, 300);     /* the previous one */
    seg_engine_destroy(x);
    free(o.buf);
}

static int setup(void **state)
{
    (void)state;
    seg_cfg_defaults(&cfg);
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- with user rules ------------------------------------------------------------- */

static const char *rules_a =
    "segments:\n  retain:\n    contact.visit: 60d\n  rules:\n"
    "    spend:\n      when: sum(purchase, 30d) - sum(refund, 30d) >= 500\n"
    "    contacts:\n      cases:\n        - many: count(contact, 60d) >= 3\n"
    "        - some: count(contact.complaint, 20d) >= 1\n      else: none\n"
    "    last_seen:\n      where: has(since(contact))\n"
    "      value: (\"t\" + tier(since(contact), [7d, 30d, 90d]))\n"
    "    n:\n      value: count(purchase, 60d)\n";
/* changed: spend's threshold; contacts gains a label; n removed; visits
 * (kept 60d by retain) counted over 45d; a rule on the built-ins */
static const char *rules_b =
    "segments:\n  rules:\n"
    "    spend:\n      when: sum(purchase, 30d) - sum(refund, 30d) >= 800\n"
    "    contacts:\n      cases:\n        - lots: count(contact, 60d) >= 6\n"
    "        - many: count(contact, 60d) >= 3\n"
    "        - some: count(contact.complaint, 20d) >= 1\n      else: none\n"
    "    last_seen:\n      where: has(since(contact))\n"
    "      value: (\"t\" + tier(since(contact), [7d, 30d, 90d]))\n"
    "    visits:\n      when: count(contact.visit, 45d) >= 2\n"
    "    top:\n      when: value == \"A\"\n";

static seg_ruleset_t *ruleset(const char *yaml)
{
    char err[512];
    seg_rules_def_t *d = seg_rules_def_load_buffer("t.yaml", yaml, strlen(yaml), err, sizeof err);
    if (!d) fail_msg("%s", err);
    seg_ruleset_t *rs = seg_ruleset_build(d, &cfg.seg, err, sizeof err);
    if (!rs) fail_msg("%s", err);
    return rs;
}

static seg_engine_t *rule_engine(out_t *o, const seg_ruleset_t *rs)
{
    char err[256];
    seg_engine_t *e = engine(o);
    assert_int_equal(seg_engine_set_rules(e, rs, err, sizeof err), 0);
    return e;
}

#define END (1700000000 + 4000LL * 3600 * 7 + 400 * 86400LL)

/* A snapshot carries the rule state and the rule set: a load under the
 * same rules continues byte for byte like the engine that wrote it. */
/* A snapshot in the middle continues exactly as the uninterrupted run. */
static void round_trip_with(const char *rules, const char *dim1, const char *dim2)
{
    char err[256], path[512];
    seg_ruleset_t *ra = ruleset(rules);
    out_t full = { 0 }, first = { 0 }, second = { 0 };
    seg_engine_t *a = rule_engine(&full, ra);
    run(a, 0, 4000);
    assert_int_equal(seg_engine_advance(a, END, err, sizeof err), 0);
    seg_engine_destroy(a);
    char want[128];
    snprintf(want, sizeof want, "\"dimension\":\"%s\"", dim1);
    assert_non_null(strstr(full.buf, want));
    snprintf(want, sizeof want, "\"dimension\":\"%s\"", dim2);
    assert_non_null(strstr(full.buf, want));

    seg_engine_t *b = rule_engine(&first, ra);
    run(b, 0, 2000);
    seg_snapshot_info_t wi, li;
    assert_int_equal(seg_snapshot_write(dir, "events", 5, b, 2000, &wi, err, sizeof err), 0);
    seg_engine_destroy(b);

    seg_engine_t *c = rule_engine(&second, ra);
    seg_snapshot_path(dir, "events", 5, path, sizeof path);
    assert_int_equal(seg_snapshot_load(path, "events", 5, c, &li, err, sizeof err), 0);
    int changed = -1;
    assert_int_equal(seg_rulestate_adopt(c, &cfg.seg, ra, &changed, err, sizeof err), 0);
    assert_int_equal(changed, 0);
    run(c, 2000, 4000);
    assert_int_equal(seg_engine_advance(c, END, err, sizeof err), 0);
    seg_engine_destroy(c);
    assert_int_equal(first.len + second.len, full.len);
    assert_memory_equal(first.buf, full.buf, first.len);
    assert_memory_equal(second.buf, full.buf + first.len, second.len);
    free(full.buf); free(first.buf); free(second.buf);
    seg_ruleset_destroy(ra);
}

static void rules_round_trip(void **state)
{
    (void)state;
    round_trip_with(rules_a, "contacts", "last_seen");
}

/* The predictions' purchase days travel in the snapshot: thresholds on
 * P(alive) and expected purchases fire at the same seconds after a
 * restore (issue 11). */
static const char *rules_p =
    "segments:\n  predict:\n    unit: 7d\n"
    "    bgnbd: {r: 0.243, alpha: 4.414, a: 0.793, b: 2.426}\n"
    "    gamma_gamma: {p: 6.25, q: 3.74, gamma: 15.44}\n  rules:\n"
    "    churn:\n      when: p_alive < 0.6\n"
    "    busy:\n      when: expected_purchases(30d) >= 0.4\n"
    "    worth:\n      where: has(recency)\n      value: tier(clv(365d), [50, 200])\n";

static void predict_round_trip(void **state)
{
    (void)state;
    round_trip_with(rules_p, "churn", "busy");
}

/* A restart under different rules re-evaluates as a live reload does:
 * loading a snapshot written under rules A into a configuration with rules
 * B gives the same output as switching A -> B in memory at that point. */
static void rules_change_on_load(void **state)
{
    (void)state;
    char err[512], path[512];
    seg_ruleset_t *ra = ruleset(rules_a), *rb = ruleset(rules_b);
    out_t live = { 0 }, first = { 0 }, second = { 0 };

    seg_engine_t *a = rule_engine(&live, ra);
    run(a, 0, 2000);
    size_t before = live.len;
    assert_int_equal(seg_engine_check_rules(a, &cfg.seg, rb, err, sizeof err), 0);
    assert_int_equal(seg_engine_change_rules(a, &cfg.seg, rb, false, true, err, sizeof err), 0);
    run(a, 2000, 4000);
    assert_int_equal(seg_engine_advance(a, END, err, sizeof err), 0);
    seg_engine_destroy(a);
    /* the reload published with cause rule: a new rule from null or out,
     * the removed one to null, the changed label set */
    const char *reload = live.buf + before;
    assert_non_null(strstr(reload, "\"cause\":\"rule\""));
    assert_non_null(strstr(reload, "\"dimension\":\"n\",\"from\":\"1\",\"to\":null"));
    assert_non_null(strstr(reload, "\"dimension\":\"visits\",\"from\":\"out\",\"to\":\"in\""));
    assert_null(strstr(reload, "\"dimension\":\"last_seen\",\"from\":\"t0\",\"to\":\"t0\""));

    seg_engine_t *b = rule_engine(&first, ra);
    run(b, 0, 2000);
    seg_snapshot_info_t wi, li;
    assert_int_equal(seg_snapshot_write(dir, "events", 6, b, 2000, &wi, err, sizeof err), 0);
    seg_engine_destroy(b);
    assert_int_equal(first.len, before);

    seg_engine_t *c = rule_engine(&second, rb);
    seg_snapshot_path(dir, "events", 6, path, sizeof path);
    assert_int_equal(seg_snapshot_load(path, "events", 6, c, &li, err, sizeof err), 0);
    int changed = -1;
    assert_int_equal(seg_rulestate_adopt(c, &cfg.seg, rb, &changed, err, sizeof err), 0);
    assert_int_equal(changed, 1);
    run(c, 2000, 4000);
    assert_int_equal(seg_engine_advance(c, END, err, sizeof err), 0);
    seg_engine_destroy(c);
    assert_int_equal(second.len, live.len - before);
    assert_memory_equal(second.buf, live.buf + before, second.len);
    free(live.buf); free(first.buf); free(second.buf);
    seg_ruleset_destroy(ra);
    seg_ruleset_destroy(rb);
}

/* A change that needs history the state does not hold is refused, naming
 * the rule, the selector and how far back segd holds it. */
static void rules_change_needs_history(void **state)
{
    (void)state;
    char err[512];
    seg_ruleset_t *ra = ruleset(rules_a);
    seg_ruleset_t *longer = ruleset("segments:\n  rules:\n    v:\n      when: count(contact.visit, 90d) >= 1\n");
    seg_ruleset_t *newsel = ruleset("segments:\n  rules:\n    s:\n      when: since(refund) < 30d\n");
    seg_ruleset_t *okay = ruleset("segments:\n  rules:\n    v:\n      when: count(contact.visit, 60d) >= 1\n");
    out_t o = { 0 };
    seg_engine_t *a = rule_engine(&o, ra);
    run(a, 0, 2000);
    /* Visits are kept 60 days (retain): a 60-day window is fine, a 90-day
     * one is not, however long the engine has run. */
    assert_int_equal(seg_engine_check_rules(a, &cfg.seg, okay, err, sizeof err), 0);
    assert_int_equal(seg_engine_check_rules(a, &cfg.seg, longer, err, sizeof err), -1);
    assert_non_null(strstr(err, "rule 'v' counts contact.visit over 90d, but segd holds "
                                "contact.visit only since "));
    assert_non_null(strstr(err, "(kept 60d)"));
    /* a state that holds visits only from 10 days ago */
    seg_engine_cover_t c = { .from = seg_engine_time(a) - 10 * 86400, .keep = 60 * 86400 };
    snprintf(c.name, sizeof c.name, "w:contact.visit");
    const seg_engine_cover_t *all;
    uint32_t n = seg_engine_cover(a, &all);
    seg_engine_cover_t copy[64];
    memcpy(copy, all, n * sizeof *copy);
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(copy[i].name, c.name) == 0) copy[i] = c;
    assert_int_equal(seg_engine_set_cover(a, copy, n), 0);
    assert_int_equal(seg_engine_check_rules(a, &cfg.seg, newsel, err, sizeof err), -1);
    assert_non_null(strstr(err, "rule 's' reads since(refund), but segd has not kept refund"));
    assert_int_equal(seg_engine_check_rules(a, &cfg.seg, okay, err, sizeof err), -1);  /* only 10 days */
    assert_non_null(strstr(err, "(kept 60d)"));
    seg_engine_destroy(a);
    free(o.buf);
    seg_ruleset_destroy(ra);
    seg_ruleset_destroy(longer);
    seg_ruleset_destroy(newsel);
    seg_ruleset_destroy(okay);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_continues_identically),
        cmocka_unit_test(damaged_files_rejected),
        cmocka_unit_test(crash_before_rename_keeps_previous),
        cmocka_unit_test(rules_round_trip),
        cmocka_unit_test(predict_round_trip),
        cmocka_unit_test(rules_change_on_load),
        cmocka_unit_test(rules_change_needs_history),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
