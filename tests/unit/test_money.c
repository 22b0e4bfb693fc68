/*
 * test_money: exact 1/10000 units from decimal text and from the doubles
 * JSON/MessagePack parsers hand us.
 *
 * The central promise (seg_money.h) is that any amount with at most 4
 * decimals and a magnitude up to SEG_MONEY_MAX survives the trip
 * text -> double (strtod, as cJSON does) -> units exactly. It is checked
 * here on the edges and on a million pseudo-random amounts.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/seg_money.h"
#include "seg_test_rng.h"

static int parse(const char *s, int64_t *out)
{
    return seg_money_parse(s, strlen(s), out);
}

static void expect_parse(const char *s, int64_t want)
{
    int64_t got = 0x5eed;
    if (parse(s, &got) != 0) fail_msg("rejected \"%s\"", s);
    if (got != want)
        fail_msg("\"%s\": got %lld, want %lld", s, (long long)got,
                 (long long)want);
}

static void test_parse(void **state)
{
    (void)state;
    expect_parse("0", 0);
    expect_parse("1000", 10000000);
    expect_parse("99.5", 995000);
    expect_parse("12.50", 125000);
    expect_parse("0.1", 1000);
    expect_parse("0.0001", 1);
    expect_parse("-0.0001", -1);
    expect_parse("11.77", 117700);
    expect_parse("250", 2500000);
    expect_parse("10000000000", SEG_MONEY_MAX);
    expect_parse("-10000000000", -SEG_MONEY_MAX);
}

static void test_parse_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "-", ".", "1.", "abc", "1e3", "1.5e2", "0.00001", "1.23456",
        " 1", "1 ", "1,5", "10000000000.0001", "10000000001", "--1",
        "99999999999999999999999", "0x10", "1.2.3",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t got = 0x5eed;
        if (parse(bad[i], &got) == 0)
            fail_msg("accepted \"%s\" as %lld", bad[i], (long long)got);
        assert_int_equal(got, 0x5eed);
    }
    int64_t v;
    assert_int_equal(seg_money_parse("12.5", 2, &v), 0);   /* honours len */
    assert_int_equal(v, 120000);
}

static void expect_double(double d, int64_t want)
{
    int64_t got = 0x5eed;
    if (seg_money_from_double(d, &got) != 0) fail_msg("rejected %.17g", d);
    if (got != want)
        fail_msg("%.17g: got %lld, want %lld", d, (long long)got,
                 (long long)want);
}

static void test_from_double(void **state)
{
    (void)state;
    expect_double(11.77, 117700);
    expect_double(0.1 + 0.2, 3000);          /* 0.30000000000000004 */
    expect_double(0.1, 1000);
    expect_double(1e-5, 0);                  /* below half a unit */
    expect_double(0.00004, 0);
    expect_double(0.00006, 1);
    expect_double(0.0001, 1);
    expect_double(-2.5, -25000);
    expect_double(-0.0, 0);
    expect_double(99999.9999, 999999999);
    expect_double(123456.7891, 1234567891);
    expect_double(1e10, SEG_MONEY_MAX);
    expect_double(-1e10, -SEG_MONEY_MAX);
    expect_double(4.35, 43500);              /* 4.3499999999999996447... */
    expect_double(1.005, 10050);
}

static void test_from_double_invalid(void **state)
{
    (void)state;
    const double bad[] = {NAN, INFINITY, -INFINITY, 1e10 + 0.001, 1e11, 1e300,
                          -1e300};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t got = 0x5eed;
        if (seg_money_from_double(bad[i], &got) == 0)
            fail_msg("accepted %g", bad[i]);
        assert_int_equal(got, 0x5eed);
    }
}

/* Summing the units of ten 0.1s is exactly 1; summing the doubles is not. */
static void test_no_float_accumulation(void **state)
{
    (void)state;
    int64_t sum = 0, u, one;
    double dsum = 0;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(seg_money_from_double(0.1, &u), 0);
        sum += u;
        dsum += 0.1;
    }
    assert_int_equal(seg_money_from_double(1.0, &one), 0);
    assert_int_equal(sum, one);
    assert_true(dsum != 1.0);   /* the reason integer units exist */
}

/* text -> strtod -> units is the identity for every 4-decimal amount in
 * range; the text is built here with integer arithmetic, not by the code
 * under test. */
static void test_text_double_units_exact(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    char text[64];
    for (long i = 0; i < 1000000; i++) {
        seg_test_rng(&x);
        int64_t units;
        switch (i % 4) {
        case 0:  units = (int64_t)(x % (uint64_t)(SEG_MONEY_MAX + 1)); break;
        case 1:  units = (int64_t)(x % 100000000); break;       /* < 10^4 */
        case 2:  units = (int64_t)(x % 10000000000ULL); break;  /* < 10^6 */
        default: units = SEG_MONEY_MAX - (int64_t)(x % 1000); break;
        }
        if (i % 3 == 0) units = -units;
        snprintf(text, sizeof text, "%s%lld.%04lld", units < 0 ? "-" : "",
                 (long long)(llabs(units) / 10000),
                 (long long)(llabs(units) % 10000));
        int64_t got;
        if (seg_money_from_double(strtod(text, NULL), &got) != 0 || got != units)
            fail_msg("%s -> %lld, want %lld", text, (long long)got,
                     (long long)units);
        if (parse(text, &got) != 0 || got != units)
            fail_msg("parse(%s) -> %lld", text, (long long)got);
    }
}

static void expect_fmt(int64_t units, const char *want)
{
    char buf[32];
    size_t n = seg_money_format(units, buf);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_format(void **state)
{
    (void)state;
    expect_fmt(0, "0");
    expect_fmt(125000, "12.5");
    expect_fmt(-30000, "-3");
    expect_fmt(1, "0.0001");
    expect_fmt(-1, "-0.0001");
    expect_fmt(117700, "11.77");
    expect_fmt(1234567891, "123456.7891");
    expect_fmt(SEG_MONEY_MAX, "10000000000");
    /* format then parse is the identity */
    const int64_t vals[] = {0, 1, -1, 10, 999, 10000, 123456789, -987654321,
                            SEG_MONEY_MAX, -SEG_MONEY_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char buf[32];
        int64_t back;
        size_t n = seg_money_format(vals[i], buf);
        assert_int_equal(seg_money_parse(buf, n, &back), 0);
        assert_int_equal(back, vals[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_from_double),
        cmocka_unit_test(test_from_double_invalid),
        cmocka_unit_test(test_no_float_accumulation),
        cmocka_unit_test(test_text_double_units_exact),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
