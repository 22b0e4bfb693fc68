/*
 * test_metrics: the Prometheus registry.
 *
 * Render output is compared with hand-written exposition text (family and
 * series order, label and HELP escaping, histogram buckets). The
 * concurrency test has two threads adding to one counter while a third
 * renders and the main thread adds and removes series; every render must
 * be well-formed and monotonic, and the final count exact. Run it under
 * -fsanitize=thread and address to catch races and use-after-free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/seg_metrics.h"

#define L(...) ((const seg_label_t[]){__VA_ARGS__})
#define N(...) (sizeof((const seg_label_t[]){__VA_ARGS__}) / sizeof(seg_label_t))

static char err[256];

static seg_counter_t *counter(seg_metrics_t *m, const char *name, const char *help,
                              const seg_label_t *l, size_t n)
{
    seg_counter_t *c = seg_metrics_counter(m, name, help, l, n, err, sizeof err);
    if (!c) fail_msg("counter %s: %s", name, err);
    return c;
}

static seg_gauge_t *gauge(seg_metrics_t *m, const char *name, const char *help,
                          const seg_label_t *l, size_t n)
{
    seg_gauge_t *g = seg_metrics_gauge(m, name, help, l, n, err, sizeof err);
    if (!g) fail_msg("gauge %s: %s", name, err);
    return g;
}

static void expect_render(seg_metrics_t *m, const char *want)
{
    size_t len = 12345;
    char *got = seg_metrics_render(m, &len);
    assert_non_null(got);
    assert_int_equal(len, strlen(got));
    if (strcmp(got, want) != 0)
        fail_msg("render mismatch\n--- got ---\n%s--- want ---\n%s", got, want);
    free(got);
}

static void test_render_small_registry(void **state)
{
    (void)state;
    seg_metrics_t *m = seg_metrics_new();
    assert_non_null(m);
    /* Registered out of order on purpose: output order must not depend on it. */
    seg_gauge_t *wm = gauge(m, "segd_watermark_seconds", "Event-time watermark.", NULL, 0);
    seg_counter_t *in_p = counter(m, "segd_events_in_total", "Input events by type.",
                                  L({"type", "purchase"}), 1);
    seg_counter_t *in_r = counter(m, "segd_events_in_total", "Input events by type.",
                                  L({"type", "refund"}), 1);
    counter(m, "segd_events_in_total", "Input events by type.", L({"type", "contact"}), 1);
    seg_counter_t *dlq = counter(m, "segd_dlq_total", "Records sent to the DLQ.", NULL, 0);
    seg_gauge_t *lag10 = gauge(m, "segd_consumer_lag", "Consumer lag in messages.",
                               L({"topic", "events"}, {"partition", "10"}), 2);
    seg_gauge_t *lag2 = gauge(m, "segd_consumer_lag", "Consumer lag in messages.",
                              L({"topic", "events"}, {"partition", "2"}), 2);
    seg_gauge_t *lagx = gauge(m, "segd_consumer_lag", "Consumer lag in messages.",
                              L({"topic", "alerts"}, {"partition", "0"}), 2);

    seg_gauge_set(wm, 1700000000);
    seg_counter_add(in_p, 3);
    seg_counter_add(in_p, 2);
    seg_counter_add(in_r, 2);
    seg_counter_add(dlq, 1);
    seg_gauge_set(lag10, 3);
    seg_gauge_set(lag2, 10);
    seg_gauge_add(lag2, -3);
    seg_gauge_set(lagx, -5);

    assert_int_equal(seg_counter_get(in_p), 5);
    assert_int_equal(seg_gauge_get(lag2), 7);

    expect_render(m,
        "# HELP segd_consumer_lag Consumer lag in messages.\n"
        "# TYPE segd_consumer_lag gauge\n"
        "segd_consumer_lag{topic=\"alerts\",partition=\"0\"} -5\n"
        "segd_consumer_lag{topic=\"events\",partition=\"2\"} 7\n"
        "segd_consumer_lag{topic=\"events\",partition=\"10\"} 3\n"
        "# HELP segd_dlq_total Records sent to the DLQ.\n"
        "# TYPE segd_dlq_total counter\n"
        "segd_dlq_total 1\n"
        "# HELP segd_events_in_total Input events by type.\n"
        "# TYPE segd_events_in_total counter\n"
        "segd_events_in_total{type=\"contact\"} 0\n"
        "segd_events_in_total{type=\"purchase\"} 5\n"
        "segd_events_in_total{type=\"refund\"} 2\n"
        "# HELP segd_watermark_seconds Event-time watermark.\n"
        "# TYPE segd_watermark_seconds gauge\n"
        "segd_watermark_seconds 1700000000\n");

    /* Counters are 64-bit. */
    seg_counter_add(dlq, UINT64_C(18446744073709551614));
    assert_int_equal(seg_counter_get(dlq), UINT64_MAX);
    seg_metrics_destroy(m);
    seg_metrics_destroy(NULL);
}

static void test_numeric_label_order(void **state)
{
    (void)state;
    seg_metrics_t *m = seg_metrics_new();
    const char *vals[] = {"10", "x", "2", "", "01", "1", "100", "b10", "b9"};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++)
        gauge(m, "g", "h", L({"p", vals[i]}), 1);
    /* Integers first by value ("01" after "1": longer), then the rest
     * bytewise. */
    expect_render(m,
        "# HELP g h\n# TYPE g gauge\n"
        "g{p=\"1\"} 0\ng{p=\"2\"} 0\ng{p=\"01\"} 0\ng{p=\"10\"} 0\ng{p=\"100\"} 0\n"
        "g{p=\"\"} 0\ng{p=\"b10\"} 0\ng{p=\"b9\"} 0\ng{p=\"x\"} 0\n");
    seg_metrics_destroy(m);
}

static void test_escaping(void **state)
{
    (void)state;
    seg_metrics_t *m = seg_metrics_new();
    seg_counter_t *c = counter(m, "segd_events_rejected_total",
                               "Rejected records; reason is a \"code\" \\ see\ndocs.",
                               L({"reason", "a\\b\"c\nd"}), 1);
    seg_counter_add(c, 4);
    counter(m, "segd_events_rejected_total",
            "Rejected records; reason is a \"code\" \\ see\ndocs.",
            L({"reason", "caf\xc3\xa9 {x=y}, ok"}), 1);
    expect_render(m,
        "# HELP segd_events_rejected_total Rejected records; reason is a \"code\" \\\\ see\\ndocs.\n"
        "# TYPE segd_events_rejected_total counter\n"
        "segd_events_rejected_total{reason=\"a\\\\b\\\"c\\nd\"} 4\n"
        "segd_events_rejected_total{reason=\"caf\xc3\xa9 {x=y}, ok\"} 0\n");
    seg_metrics_destroy(m);
}

static void test_histogram(void **state)
{
    (void)state;
    seg_metrics_t *m = seg_metrics_new();
    const double b[] = {0.25, 0.5, 1, 2.5};
    seg_histogram_t *h = seg_metrics_histogram(m, "segd_delivery_seconds",
                                               "Produce to delivery report latency.",
                                               L({"topic", "out"}), 1, b, 4, err, sizeof err);
    assert_non_null(h);
    seg_histogram_observe(h, 0.125);
    seg_histogram_observe(h, 0.25);   /* bounds are inclusive */
    seg_histogram_observe(h, 0.75);
    seg_histogram_observe(h, 1);
    seg_histogram_observe(h, 3);      /* only in +Inf */
    seg_histogram_observe(h, NAN);    /* ignored */

    const double b2[] = {1e-06, 0.005, 0.01, 0.025, 0.1, 10};
    seg_histogram_t *h2 = seg_metrics_histogram(m, "segd_fold_seconds", "Fold time.",
                                                NULL, 0, b2, 6, err, sizeof err);
    assert_non_null(h2);
    seg_histogram_observe(h2, 0.1);
    seg_histogram_observe(h2, 0.2);
    seg_histogram_observe(h2, -1e-7); /* below every bound: first bucket */

    expect_render(m,
        "# HELP segd_delivery_seconds Produce to delivery report latency.\n"
        "# TYPE segd_delivery_seconds histogram\n"
        "segd_delivery_seconds_bucket{topic=\"out\",le=\"0.25\"} 2\n"
        "segd_delivery_seconds_bucket{topic=\"out\",le=\"0.5\"} 2\n"
        "segd_delivery_seconds_bucket{topic=\"out\",le=\"1\"} 4\n"
        "segd_delivery_seconds_bucket{topic=\"out\",le=\"2.5\"} 4\n"
        "segd_delivery_seconds_bucket{topic=\"out\",le=\"+Inf\"} 5\n"
        "segd_delivery_seconds_sum{topic=\"out\"} 5.125\n"
        "segd_delivery_seconds_count{topic=\"out\"} 5\n"
        "# HELP segd_fold_seconds Fold time.\n"
        "# TYPE segd_fold_seconds histogram\n"
        "segd_fold_seconds_bucket{le=\"1e-06\"} 1\n"
        "segd_fold_seconds_bucket{le=\"0.005\"} 1\n"
        "segd_fold_seconds_bucket{le=\"0.01\"} 1\n"
        "segd_fold_seconds_bucket{le=\"0.025\"} 1\n"
        "segd_fold_seconds_bucket{le=\"0.1\"} 2\n"
        "segd_fold_seconds_bucket{le=\"10\"} 3\n"
        "segd_fold_seconds_bucket{le=\"+Inf\"} 3\n"
        /* 0.1 + 0.2 - 1e-7 in doubles: Python's repr, the shortest
         * decimal that reads back as the same double */
        "segd_fold_seconds_sum 0.29999990000000004\n"
        "segd_fold_seconds_count 3\n");

    /* Another series in the family must use the same bounds. */
    assert_null(seg_metrics_histogram(m, "segd_delivery_seconds",
                                      "Produce to delivery report latency.",
                                      L({"topic", "alerts"}), 1, b2, 6, err, sizeof err));
    assert_string_equal(err, "metric segd_delivery_seconds: bucket bounds differ from its other series");
    assert_non_null(seg_metrics_histogram(m, "segd_delivery_seconds",
                                          "Produce to delivery report latency.",
                                          L({"topic", "alerts"}), 1, b, 4, err, sizeof err));
    seg_histogram_remove(m, h);
    seg_histogram_remove(m, h2);
    expect_render(m,
        "# HELP segd_delivery_seconds Produce to delivery report latency.\n"
        "# TYPE segd_delivery_seconds histogram\n"
        "segd_delivery_seconds_bucket{topic=\"alerts\",le=\"0.25\"} 0\n"
        "segd_delivery_seconds_bucket{topic=\"alerts\",le=\"0.5\"} 0\n"
        "segd_delivery_seconds_bucket{topic=\"alerts\",le=\"1\"} 0\n"
        "segd_delivery_seconds_bucket{topic=\"alerts\",le=\"2.5\"} 0\n"
        "segd_delivery_seconds_bucket{topic=\"alerts\",le=\"+Inf\"} 0\n"
        "segd_delivery_seconds_sum{topic=\"alerts\"} 0\n"
        "segd_delivery_seconds_count{topic=\"alerts\"} 0\n");
    seg_metrics_destroy(m);
}

static void expect_reject(void *handle, const char *want_err)
{
    if (handle) fail_msg("accepted, expected: %s", want_err);
    assert_string_equal(err, want_err);
}

static void test_registration_errors(void **state)
{
    (void)state;
    seg_metrics_t *m = seg_metrics_new();
    counter(m, "segd_x_total", "X.", L({"reason", "a"}), 1);

    expect_reject(seg_metrics_counter(m, "9x", "h", NULL, 0, err, sizeof err),
                  "invalid metric name '9x'");
    expect_reject(seg_metrics_counter(m, "a-b", "h", NULL, 0, err, sizeof err),
                  "invalid metric name 'a-b'");
    expect_reject(seg_metrics_gauge(m, "", "h", NULL, 0, err, sizeof err),
                  "invalid metric name ''");
    expect_reject(seg_metrics_gauge(m, "ok", "h", L({"__name", "v"}), 1, err, sizeof err),
                  "metric ok: invalid label name '__name'");
    expect_reject(seg_metrics_gauge(m, "ok", "h", L({"a.b", "v"}), 1, err, sizeof err),
                  "metric ok: invalid label name 'a.b'");
    expect_reject(seg_metrics_gauge(m, "ok", "h", L({"a", "v"}, {"a", "w"}), 2, err, sizeof err),
                  "metric ok: label a given twice");
    expect_reject(seg_metrics_gauge(m, "ok", "h", L({"a", NULL}), 1, err, sizeof err),
                  "metric ok: label a has no value");
    expect_reject(seg_metrics_gauge(m, "ok", NULL, NULL, 0, err, sizeof err),
                  "metric ok: help text is missing");
    expect_reject(seg_metrics_gauge(m, "segd_x_total", "X.", L({"reason", "b"}), 1, err, sizeof err),
                  "metric segd_x_total is already registered as a counter");
    expect_reject(seg_metrics_counter(m, "segd_x_total", "Y.", L({"reason", "b"}), 1, err, sizeof err),
                  "metric segd_x_total is already registered with other help text");
    expect_reject(seg_metrics_counter(m, "segd_x_total", "X.", L({"cause", "b"}), 1, err, sizeof err),
                  "metric segd_x_total: label names differ from its other series");
    expect_reject(seg_metrics_counter(m, "segd_x_total", "X.", NULL, 0, err, sizeof err),
                  "metric segd_x_total: label names differ from its other series");
    expect_reject(seg_metrics_counter(m, "segd_x_total", "X.", L({"reason", "a"}), 1, err, sizeof err),
                  "metric segd_x_total{reason=\"a\"} is already registered");

    const double up[] = {1, 2}, flat[] = {1, 1}, down[] = {2, 1}, inf[] = {1, INFINITY},
                 nan[] = {NAN};
    expect_reject(seg_metrics_histogram(m, "h", "h", L({"le", "1"}), 1, up, 2, err, sizeof err),
                  "metric h: invalid label name 'le'");
    const char *bounds_err = "metric h: bucket bounds must be finite and strictly increasing";
    expect_reject(seg_metrics_histogram(m, "h", "h", NULL, 0, flat, 2, err, sizeof err), bounds_err);
    expect_reject(seg_metrics_histogram(m, "h", "h", NULL, 0, down, 2, err, sizeof err), bounds_err);
    expect_reject(seg_metrics_histogram(m, "h", "h", NULL, 0, inf, 2, err, sizeof err), bounds_err);
    expect_reject(seg_metrics_histogram(m, "h", "h", NULL, 0, nan, 1, err, sizeof err), bounds_err);

    /* "le" is only reserved in histograms; colons are legal in names. */
    assert_non_null(seg_metrics_gauge(m, "job:ok:ratio", "h", L({"le", "x"}), 1, err, sizeof err));

    /* None of the failures left a trace. */
    expect_render(m,
        "# HELP job:ok:ratio h\n# TYPE job:ok:ratio gauge\njob:ok:ratio{le=\"x\"} 0\n"
        "# HELP segd_x_total X.\n# TYPE segd_x_total counter\nsegd_x_total{reason=\"a\"} 0\n");
    seg_metrics_destroy(m);
}

static void test_add_remove_series(void **state)
{
    (void)state;
    seg_metrics_t *m = seg_metrics_new();
    seg_gauge_t *lag[4];
    char pv[4][4];
    for (int p = 0; p < 4; p++) {
        snprintf(pv[p], sizeof pv[p], "%d", p);
        lag[p] = gauge(m, "segd_lag", "Lag.", L({"partition", pv[p]}), 1);
        seg_gauge_set(lag[p], 100 + p);
    }
    seg_counter_t *c = counter(m, "segd_z_total", "Z.", NULL, 0);
    seg_counter_add(c, 9);

    /* Revoke partitions 1 and 3. */
    seg_gauge_remove(m, lag[1]);
    seg_gauge_remove(m, lag[3]);
    seg_gauge_remove(m, NULL);
    expect_render(m,
        "# HELP segd_lag Lag.\n# TYPE segd_lag gauge\n"
        "segd_lag{partition=\"0\"} 100\nsegd_lag{partition=\"2\"} 102\n"
        "# HELP segd_z_total Z.\n# TYPE segd_z_total counter\nsegd_z_total 9\n");

    /* Reassigned: a fresh series starting at 0. */
    lag[3] = gauge(m, "segd_lag", "Lag.", L({"partition", "3"}), 1);
    expect_render(m,
        "# HELP segd_lag Lag.\n# TYPE segd_lag gauge\n"
        "segd_lag{partition=\"0\"} 100\nsegd_lag{partition=\"2\"} 102\n"
        "segd_lag{partition=\"3\"} 0\n"
        "# HELP segd_z_total Z.\n# TYPE segd_z_total counter\nsegd_z_total 9\n");

    /* An emptied family is not rendered but keeps its definition. */
    seg_gauge_remove(m, lag[0]);
    seg_gauge_remove(m, lag[2]);
    seg_gauge_remove(m, lag[3]);
    seg_counter_remove(m, c);
    seg_counter_remove(m, NULL);
    seg_histogram_remove(m, NULL);
    expect_render(m, "");
    expect_reject(seg_metrics_counter(m, "segd_lag", "Lag.", L({"partition", "0"}), 1,
                                      err, sizeof err),
                  "metric segd_lag is already registered as a gauge");
    seg_metrics_destroy(m);
}

static int collect_calls;
static void collect(seg_metrics_t *m, void *opaque)
{
    (void)m;
    seg_gauge_set(opaque, ++collect_calls);
}

static void test_collect_hook(void **state)
{
    (void)state;
    seg_metrics_t *m = seg_metrics_new();
    seg_gauge_t *g = gauge(m, "renders", "Renders so far.", NULL, 0);
    seg_metrics_set_collect(m, collect, g);
    expect_render(m, "# HELP renders Renders so far.\n# TYPE renders gauge\nrenders 1\n");
    expect_render(m, "# HELP renders Renders so far.\n# TYPE renders gauge\nrenders 2\n");
    seg_metrics_set_collect(m, NULL, NULL);
    expect_render(m, "# HELP renders Renders so far.\n# TYPE renders gauge\nrenders 2\n");
    seg_metrics_destroy(m);
}

/* ---- concurrency ------------------------------------------------------ */

#define ADDS_PER_THREAD 1000000

struct conc {
    seg_metrics_t *m;
    seg_counter_t *c;
    seg_histogram_t *h;
    atomic_int ready;    /* adders spin until both run, so they overlap */
    atomic_int stop;
    int renders;
    const char *failure;
};

static void *adder(void *arg)
{
    struct conc *x = arg;
    atomic_fetch_add(&x->ready, 1);
    while (atomic_load(&x->ready) < 2) {
    }
    /* A tight loop first: the likeliest way to expose a lost update. */
    for (int i = 0; i < ADDS_PER_THREAD; i++) seg_counter_add(x->c, 1);
    for (int i = 0; i < ADDS_PER_THREAD; i++)
        seg_histogram_observe(x->h, (i % 4) * 0.5);  /* 0, .5, 1, 1.5 */
    return NULL;
}

static unsigned long long sample(const char *text, const char *prefix)
{
    const char *p = strstr(text, prefix);
    return p ? strtoull(p + strlen(prefix), NULL, 10) : ~0ULL;
}

static void *renderer(void *arg)
{
    struct conc *x = arg;
    unsigned long long last = 0;
    while (!atomic_load(&x->stop)) {
        char *s = seg_metrics_render(x->m, NULL);
        if (!s) { x->failure = "render failed"; return NULL; }
        x->renders++;
        unsigned long long v = sample(s, "\nsegd_adds_total ");
        unsigned long long b0 = sample(s, "segd_obs_bucket{le=\"0.5\"} ");
        unsigned long long b1 = sample(s, "segd_obs_bucket{le=\"1\"} ");
        unsigned long long inf = sample(s, "segd_obs_bucket{le=\"+Inf\"} ");
        unsigned long long cnt = sample(s, "segd_obs_count ");
        if (v == ~0ULL || v < last) x->failure = "counter missing or went backwards";
        if (b0 > b1 || b1 > inf || inf != cnt) x->failure = "histogram not cumulative";
        last = v;
        free(s);
        if (x->failure) return NULL;
    }
    return NULL;
}

static void test_concurrent_add_render_remove(void **state)
{
    (void)state;
    struct conc x = {0};
    x.m = seg_metrics_new();
    x.c = counter(x.m, "segd_adds_total", "Adds.", NULL, 0);
    const double b[] = {0.5, 1};
    x.h = seg_metrics_histogram(x.m, "segd_obs", "Obs.", NULL, 0, b, 2, err, sizeof err);
    assert_non_null(x.h);
    atomic_init(&x.stop, 0);
    atomic_init(&x.ready, 0);

    pthread_t a1, a2, r;
    assert_int_equal(pthread_create(&r, NULL, renderer, &x), 0);
    assert_int_equal(pthread_create(&a1, NULL, adder, &x), 0);
    assert_int_equal(pthread_create(&a2, NULL, adder, &x), 0);

    /* Meanwhile this thread plays the rebalance callback: series appear
     * and disappear under the renderer's feet. */
    int churns = 0;
    for (int round = 0; round < 2000; round++) {
        seg_gauge_t *g[8];
        for (int p = 0; p < 8; p++) {
            char v[8];
            snprintf(v, sizeof v, "%d", (p * 5 + round) % 8);
            g[p] = gauge(x.m, "segd_churn", "Churn.", L({"partition", v}), 1);
            seg_gauge_set(g[p], round);
        }
        for (int p = 7; p >= 0; p--) seg_gauge_remove(x.m, g[p]);
        churns++;
    }
    pthread_join(a1, NULL);
    pthread_join(a2, NULL);
    atomic_store(&x.stop, 1);
    pthread_join(r, NULL);
    if (x.failure) fail_msg("%s", x.failure);
    assert_true(x.renders > 0);
    assert_int_equal(churns, 2000);

    char want[1024];
    snprintf(want, sizeof want,
             "# HELP segd_adds_total Adds.\n# TYPE segd_adds_total counter\n"
             "segd_adds_total %d\n"
             "# HELP segd_obs Obs.\n# TYPE segd_obs histogram\n"
             "segd_obs_bucket{le=\"0.5\"} %d\n"
             "segd_obs_bucket{le=\"1\"} %d\n"
             "segd_obs_bucket{le=\"+Inf\"} %d\n"
             "segd_obs_sum %d\n"
             "segd_obs_count %d\n",
             2 * ADDS_PER_THREAD,
             2 * ADDS_PER_THREAD / 2, 2 * ADDS_PER_THREAD * 3 / 4, 2 * ADDS_PER_THREAD,
             /* each thread: ADDS/4 * (0 + .5 + 1 + 1.5) = ADDS * 0.75 */
             2 * ADDS_PER_THREAD * 3 / 4,
             2 * ADDS_PER_THREAD);
    expect_render(x.m, want);
    print_message("  %d renders raced %d adds and %d series churns\n",
                  x.renders, 2 * ADDS_PER_THREAD, churns * 8);
    seg_metrics_destroy(x.m);
}

/* ---- RSS -------------------------------------------------------------- */

static long long status_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

static void test_process_rss(void **state)
{
    (void)state;
    int64_t before = seg_metrics_process_rss();
    long long st = status_rss_bytes();
    assert_true(before > 0);
    assert_true(st > 0);
    /* Two reads a moment apart, by different files: within 2 MiB. */
    assert_true(llabs((long long)before - st) < 2 * 1024 * 1024);

    size_t n = 64u << 20;
    volatile char *p = malloc(n);
    assert_non_null((void *)p);
    for (size_t i = 0; i < n; i += 4096) p[i] = 1;
    int64_t after = seg_metrics_process_rss();
    assert_true(after - before >= (int64_t)(60u << 20));
    free((void *)p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_small_registry),
        cmocka_unit_test(test_numeric_label_order),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_registration_errors),
        cmocka_unit_test(test_add_remove_series),
        cmocka_unit_test(test_collect_hook),
        cmocka_unit_test(test_concurrent_add_render_remove),
        cmocka_unit_test(test_process_rss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
