/* seg_route: filter syntax, vocabulary checks, matching; seg_kafka: a
 * rejected passthrough property names the key and where it was set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config/seg_cfg.h"
#include "io/seg_kafka.h"
#include "publish/seg_route.h"

static seg_cfg_t *cfg_with(const char *const *sets, int n)
{
    seg_cfg_t *c = malloc(sizeof *c);
    char err[512];
    seg_cfg_defaults(c);
    for (int i = 0; i < n; i++) assert_int_equal(seg_cfg_set(c, sets[i], err, sizeof err), 0);
    return c;
}

static seg_transition_t tr(seg_dim_t d, uint8_t from, uint8_t to)
{
    seg_transition_t t;
    memset(&t, 0, sizeof t);
    t.dim = d;
    t.from_code = from;
    t.to_code = to;
    t.from = seg_dim_value_name(d, from);
    t.to = seg_dim_value_name(d, to);
    return t;
}

static void default_churn_alerts(void **state)
{
    (void)state;
    seg_cfg_t *c = cfg_with(NULL, 0);
    char err[512];
    seg_routes_t *r = seg_routes_new(c, NULL, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(seg_routes_count(r), 1);
    assert_string_equal(seg_routes_topic(r, 0), "churn-alerts");
    seg_transition_t a = tr(SEG_DIM_LIFECYCLE, SEG_LC_ACTIVE, SEG_LC_AT_RISK);
    seg_transition_t b = tr(SEG_DIM_LIFECYCLE, SEG_LC_SILENT, SEG_LC_CHURNED);
    seg_transition_t n = tr(SEG_DIM_LIFECYCLE, SEG_LC_AT_RISK, SEG_LC_SILENT);
    seg_transition_t v = tr(SEG_DIM_VALUE, SEG_VAL_B, SEG_VAL_A);
    assert_true(seg_routes_match(r, 0, &a));
    assert_true(seg_routes_match(r, 0, &b));
    assert_false(seg_routes_match(r, 0, &n));
    assert_false(seg_routes_match(r, 0, &v));
    seg_routes_destroy(r);
    free(c);
}

static void from_sets_and_null(void **state)
{
    (void)state;
    const char *sets[] = {
        "routes=",
        "routes.upgrades=value from null,B,C -> A",
        "routes.unhappy=dissatisfied -> in",
        "routes.all-rfm=rfm",
    };
    seg_cfg_t *c = cfg_with(sets, 4);
    char err[512];
    seg_routes_t *r = seg_routes_new(c, NULL, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(seg_routes_count(r), 3);
    seg_transition_t first = tr(SEG_DIM_VALUE, 0, SEG_VAL_A);        /* from null */
    seg_transition_t bc = tr(SEG_DIM_VALUE, SEG_VAL_C, SEG_VAL_A);
    seg_transition_t da = tr(SEG_DIM_VALUE, SEG_VAL_D, SEG_VAL_A);
    seg_transition_t ab = tr(SEG_DIM_VALUE, SEG_VAL_A, SEG_VAL_B);
    size_t up = strcmp(seg_routes_topic(r, 0), "upgrades") == 0 ? 0
              : strcmp(seg_routes_topic(r, 1), "upgrades") == 0 ? 1 : 2;
    assert_true(seg_routes_match(r, up, &first));
    assert_true(seg_routes_match(r, up, &bc));
    assert_false(seg_routes_match(r, up, &da));
    assert_false(seg_routes_match(r, up, &ab));
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(seg_routes_topic(r, i), "unhappy") == 0) {
            seg_transition_t in = tr(SEG_DIM_DISSATISFIED, SEG_DIS_OUT, SEG_DIS_IN);
            seg_transition_t out = tr(SEG_DIM_DISSATISFIED, SEG_DIS_IN, SEG_DIS_OUT);
            assert_true(seg_routes_match(r, i, &in));
            assert_false(seg_routes_match(r, i, &out));
        } else if (strcmp(seg_routes_topic(r, i), "all-rfm") == 0) {
            seg_transition_t x = tr(SEG_DIM_RFM, 0, 7);
            assert_true(seg_routes_match(r, i, &x));
            assert_false(seg_routes_match(r, i, &first));
        }
    }
    seg_routes_destroy(r);
    free(c);
}

/* "a | b": the route takes what either filter selects. */
static void alternatives(void **state)
{
    (void)state;
    const char *sets[] = { "routes=", "routes.alerts=lifecycle -> churned | value from A|dissatisfied -> in" };
    seg_cfg_t *c = cfg_with(sets, 2);
    char err[512];
    seg_routes_t *r = seg_routes_new(c, NULL, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(seg_routes_count(r), 1);
    assert_string_equal(seg_routes_topic(r, 0), "alerts");
    seg_transition_t churned = tr(SEG_DIM_LIFECYCLE, SEG_LC_SILENT, SEG_LC_CHURNED);
    seg_transition_t at_risk = tr(SEG_DIM_LIFECYCLE, SEG_LC_ACTIVE, SEG_LC_AT_RISK);
    seg_transition_t a_drop = tr(SEG_DIM_VALUE, SEG_VAL_A, SEG_VAL_C);
    seg_transition_t b_up = tr(SEG_DIM_VALUE, SEG_VAL_B, SEG_VAL_A);
    seg_transition_t dis_in = tr(SEG_DIM_DISSATISFIED, SEG_DIS_OUT, SEG_DIS_IN);
    seg_transition_t dis_out = tr(SEG_DIM_DISSATISFIED, SEG_DIS_IN, SEG_DIS_OUT);
    assert_true(seg_routes_match(r, 0, &churned));
    assert_false(seg_routes_match(r, 0, &at_risk));
    assert_true(seg_routes_match(r, 0, &a_drop));
    assert_false(seg_routes_match(r, 0, &b_up));
    assert_true(seg_routes_match(r, 0, &dis_in));
    assert_false(seg_routes_match(r, 0, &dis_out));
    seg_routes_destroy(r);
    free(c);
}

static void bad_rules_name_the_key(void **state)
{
    (void)state;
    static const struct { const char *set, *want; } cases[] = {
        { "routes.x=lifecycl -> at_risk", "--set: key 'routes.x': 'lifecycl' is not a dimension" },
        { "routes.x=lifecycle -> at-risk", "--set: key 'routes.x': 'at-risk' is not a value of dimension 'lifecycle'" },
        { "routes.x=value from A,",  "--set: key 'routes.x': expected a value name" },
        { "routes.x=rfm -> R1F1M1 extra", "--set: key 'routes.x': unexpected 'extra'" },
        { "routes.x=value -> E", "--set: key 'routes.x': 'E' is not a value of dimension 'value'" },
        { "routes.x=value -> A |", "--set: key 'routes.x': expected a dimension" },
        { "routes.x=value -> A | lifecycle -> A", "--set: key 'routes.x': 'A' is not a value of dimension 'lifecycle'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *sets[] = { "routes=", cases[i].set };
        seg_cfg_t *c = cfg_with(sets, 2);
        char err[512];
        seg_routes_t *r = seg_routes_new(c, NULL, err, sizeof err);
        assert_null(r);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("%s: got '%s'", cases[i].set, err);
        free(c);
    }
}

static void kafka_passthrough_errors(void **state)
{
    (void)state;
    char err[1024];
    const char *ok[] = { "kafka.consumer.fetch.min.bytes=1" };
    seg_cfg_t *c = cfg_with(ok, 1);
    rd_kafka_conf_t *conf = seg_kafka_consumer_conf(c, "127.0.0.1:9", err, sizeof err);
    assert_non_null(conf);
    char v[64];
    size_t vn = sizeof v;
    assert_int_equal(rd_kafka_conf_get(conf, "enable.auto.offset.store", v, &vn), RD_KAFKA_CONF_OK);
    assert_string_equal(v, "false");
    rd_kafka_conf_destroy(conf);
    free(c);

    const char *unknown[] = { "kafka.consumer.no.such.property=1" };
    c = cfg_with(unknown, 1);
    assert_null(seg_kafka_consumer_conf(c, "127.0.0.1:9", err, sizeof err));
    assert_non_null(strstr(err, "--set: key 'kafka.consumer.no.such.property': librdkafka rejects it"));
    free(c);

    const char *forced[] = { "kafka.producer.enable.idempotence=false" };
    c = cfg_with(forced, 1);
    assert_null(seg_kafka_producer_conf(c, "127.0.0.1:9", err, sizeof err));
    assert_non_null(strstr(err, "key 'kafka.producer.enable.idempotence': segd requires enable.idempotence=true"));
    free(c);

    const char *grp[] = { "kafka.consumer.group.id=x" };
    c = cfg_with(grp, 1);
    assert_null(seg_kafka_consumer_conf(c, "127.0.0.1:9", err, sizeof err));
    assert_non_null(strstr(err, "set it with kafka.group_id instead"));
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_churn_alerts),
        cmocka_unit_test(from_sets_and_null),
        cmocka_unit_test(alternatives),
        cmocka_unit_test(bad_rules_name_the_key),
        cmocka_unit_test(kafka_passthrough_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
