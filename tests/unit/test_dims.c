/* seg_dims: every rule at and around its thresholds (defaults). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "config/seg_cfg.h"
#include "segment/seg_dims.h"

#define DAY 86400LL
#define MONEY(x) ((int64_t)((x) * 10000LL))

static seg_cfg_t cfg;

static const char *eval(seg_dim_t d, int64_t R, int64_t A, int64_t F, int64_t M)
{
    seg_features_t f = { .has_purchase = 1, .recency = R, .age = A,
                         .frequency = F, .monetary = M };
    uint8_t v[SEG_DIM__COUNT];
    seg_dims_eval(&cfg.seg, &f, v);
    return seg_dim_value_name(d, v[d]);
}

static void lifecycle_rules(void **state)
{
    (void)state;
    assert_string_equal(eval(SEG_DIM_LIFECYCLE, 0, 0, 1, 0), "new");
    assert_string_equal(eval(SEG_DIM_LIFECYCLE, 0, 30 * DAY - 1, 9, 0), "new");
    assert_string_equal(eval(SEG_DIM_LIFECYCLE, 0, 30 * DAY, 3, 0), "active");
    assert_string_equal(eval(SEG_DIM_LIFECYCLE, 0, 30 * DAY, 4, 0), "loyal");
    assert_string_equal(eval(SEG_DIM_LIFECYCLE, 45 * DAY - 1, 99 * DAY, 9, 0), "loyal");
    assert_string_equal(eval(SEG_DIM_LIFECYCLE, 45 * DAY, 99 * DAY, 9, 0), "at_risk");
    /* recency rules come before "new" */
    assert_string_equal(eval(SEG_DIM_LIFECYCLE, 45 * DAY, 45 * DAY, 1, 0), "at_risk");
    assert_string_equal(eval(SEG_DIM_LIFECYCLE, 90 * DAY - 1, 99 * DAY, 1, 0), "at_risk");
    assert_string_equal(eval(SEG_DIM_LIFECYCLE, 90 * DAY, 99 * DAY, 1, 0), "silent");
    assert_string_equal(eval(SEG_DIM_LIFECYCLE, 365 * DAY - 1, 999 * DAY, 0, 0), "silent");
    assert_string_equal(eval(SEG_DIM_LIFECYCLE, 365 * DAY, 999 * DAY, 0, 0), "churned");

    seg_features_t f = { 0 };
    uint8_t v[SEG_DIM__COUNT];
    seg_dims_eval(&cfg.seg, &f, v);
    assert_null(seg_dim_value_name(SEG_DIM_LIFECYCLE, v[SEG_DIM_LIFECYCLE]));
    assert_null(seg_dim_value_name(SEG_DIM_VALUE, v[SEG_DIM_VALUE]));
    assert_null(seg_dim_value_name(SEG_DIM_RFM, v[SEG_DIM_RFM]));
    f.has_contact = 1;
    seg_dims_eval(&cfg.seg, &f, v);
    assert_string_equal(seg_dim_value_name(SEG_DIM_LIFECYCLE, v[0]), "prospect");
}

static void value_rules(void **state)
{
    (void)state;
    assert_string_equal(eval(SEG_DIM_VALUE, 0, 0, 1, MONEY(1000)), "A");
    assert_string_equal(eval(SEG_DIM_VALUE, 0, 0, 1, MONEY(1000) - 1), "B");
    assert_string_equal(eval(SEG_DIM_VALUE, 0, 0, 1, MONEY(250)), "B");
    assert_string_equal(eval(SEG_DIM_VALUE, 0, 0, 1, MONEY(250) - 1), "C");
    assert_string_equal(eval(SEG_DIM_VALUE, 0, 0, 1, 1), "C");
    assert_string_equal(eval(SEG_DIM_VALUE, 0, 0, 1, 0), "D");
    assert_string_equal(eval(SEG_DIM_VALUE, 0, 0, 1, -MONEY(5)), "D");
}

static void rfm_rules(void **state)
{
    (void)state;
    assert_string_equal(eval(SEG_DIM_RFM, 0, 0, 1, 1), "R1F1M1");
    assert_string_equal(eval(SEG_DIM_RFM, 90 * DAY - 1, 0, 2, MONEY(100) - 1), "R1F1M1");
    assert_string_equal(eval(SEG_DIM_RFM, 90 * DAY, 0, 3, MONEY(100)), "R2F2M2");
    assert_string_equal(eval(SEG_DIM_RFM, 180 * DAY - 1, 0, 5, MONEY(500) - 1), "R2F2M2");
    assert_string_equal(eval(SEG_DIM_RFM, 180 * DAY, 0, 6, MONEY(500)), "R3F3M3");
    assert_string_equal(eval(SEG_DIM_RFM, 365 * DAY - 1, 0, 10, MONEY(1000) - 1), "R3F3M3");
    assert_string_equal(eval(SEG_DIM_RFM, 365 * DAY, 0, 11, MONEY(1000)), "R4F4M4");
    assert_string_equal(eval(SEG_DIM_RFM, 9999 * DAY, 0, 0, 0), "R4F0M0");
    assert_string_equal(eval(SEG_DIM_RFM, 0, 0, 0, -1), "R1F0M0");
}

static void dissatisfied_rule(void **state)
{
    (void)state;
    seg_features_t f = { .complaints = 1 };
    uint8_t v[SEG_DIM__COUNT];
    seg_dims_eval(&cfg.seg, &f, v);
    assert_string_equal(seg_dim_value_name(SEG_DIM_DISSATISFIED, v[3]), "out");
    f.complaints = 2;
    seg_dims_eval(&cfg.seg, &f, v);
    assert_string_equal(seg_dim_value_name(SEG_DIM_DISSATISFIED, v[3]), "in");
}

static void names(void **state)
{
    (void)state;
    assert_string_equal(seg_dim_name(SEG_DIM_LIFECYCLE), "lifecycle");
    assert_string_equal(seg_dim_name(SEG_DIM_DISSATISFIED), "dissatisfied");
    /* every rfm code has a distinct well-formed name */
    for (unsigned c = 1; c < seg_dim_value_count(SEG_DIM_RFM); c++) {
        const char *n = seg_dim_value_name(SEG_DIM_RFM, (uint8_t)c);
        assert_non_null(n);
        assert_int_equal(strlen(n), 6);
        for (unsigned d = 1; d < c; d++)
            assert_string_not_equal(n, seg_dim_value_name(SEG_DIM_RFM, (uint8_t)d));
    }
    assert_null(seg_dim_value_name(SEG_DIM_VALUE, 99));
}

static int setup(void **state)
{
    (void)state;
    seg_cfg_defaults(&cfg);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lifecycle_rules),
        cmocka_unit_test(value_rules),
        cmocka_unit_test(rfm_rules),
        cmocka_unit_test(dissatisfied_rule),
        cmocka_unit_test(names),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
