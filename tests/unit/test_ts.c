/*
 * test_ts: RFC 3339 parsing, epoch-ms flooring and UTC formatting.
 *
 * Expected instants were computed independently (Python's datetime), and
 * the whole 0001..9999 range is walked day by day against a naive calendar
 * written here, so a bug shared by parse and format cannot hide behind a
 * round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "util/seg_ts.h"

static int parse(const char *s, int64_t *out)
{
    return seg_ts_parse_rfc3339(s, strlen(s), out);
}

static void expect_ts(const char *s, int64_t want)
{
    int64_t got = 0x5eed;
    if (parse(s, &got) != 0) fail_msg("rejected valid timestamp %s", s);
    if (got != want)
        fail_msg("%s: got %lld, want %lld", s, (long long)got, (long long)want);
}

static void expect_bad(const char *s)
{
    int64_t got = 0x5eed;
    if (parse(s, &got) == 0)
        fail_msg("accepted invalid timestamp \"%s\" as %lld", s, (long long)got);
    assert_int_equal(got, 0x5eed);   /* *out untouched on failure */
}

static void test_known_instants(void **state)
{
    (void)state;
    expect_ts("1970-01-01T00:00:00Z", 0);
    expect_ts("1969-12-31T23:59:59Z", -1);
    expect_ts("1997-01-01T00:00:00Z", 852076800);
    expect_ts("2000-02-29T00:00:00Z", 951782400);
    expect_ts("2011-12-09T12:50:00Z", 1323435000);
    expect_ts("1900-03-01T00:00:00Z", -2203891200LL);
    expect_ts("2100-03-01T00:00:00Z", 4107542400LL);
    expect_ts("1600-02-29T12:00:00Z", -11670955200LL);
    expect_ts("2024-02-29T23:59:59Z", 1709251199);
    expect_ts("1582-10-10T00:00:00Z", -12219724800LL);  /* proleptic */
    expect_ts("0001-01-01T00:00:00Z", SEG_TS_MIN);
    expect_ts("9999-12-31T23:59:59Z", SEG_TS_MAX);
    assert_int_equal(SEG_TS_MIN, -62135596800LL);
    assert_int_equal(SEG_TS_MAX, 253402300799LL);
}

static void test_forms(void **state)
{
    (void)state;
    /* separators and designators RFC 3339 section 5.6 allows */
    expect_ts("2011-12-09t12:50:00z", 1323435000);
    expect_ts("2011-12-09 12:50:00Z", 1323435000);
    /* offsets: local time minus offset is UTC */
    expect_ts("2011-12-09T12:50:00+01:00", 1323431400);
    expect_ts("2011-12-09T12:50:00-08:30", 1323465600);
    expect_ts("2011-12-09T12:50:00+00:00", 1323435000);
    expect_ts("2011-12-09T12:50:00-00:00", 1323435000);
    expect_ts("2011-12-09T13:50:00+01:00", 1323435000);
    /* an offset may move the instant across a day, month or year */
    expect_ts("1970-01-01T00:30:00+01:00", -1800);
    expect_ts("1969-12-31T23:30:00-01:00", 1800);
    /* offsets at the edge of the range stay inside it */
    expect_ts("0001-01-01T23:59:59+23:59", -62135596741LL);
    expect_ts("9999-12-31T00:00:00-23:59", 253402300740LL);
    /* fractions are floored away: the written second is the floor */
    expect_ts("2011-12-09T12:50:00.999Z", 1323435000);
    expect_ts("2011-12-09T12:50:00.1Z", 1323435000);
    expect_ts("2011-12-09T12:50:00.123456789012Z", 1323435000);
    expect_ts("1969-12-31T23:59:59.999Z", -1);
    expect_ts("2011-12-09T12:50:00.5+01:00", 1323431400);
}

static void test_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "2011-12-09",
        "2011-12-09T12:50:00",          /* no offset: local time is ambiguous */
        "2011-12-09T12:50Z",            /* seconds are required */
        "2011-12-09T12:50:00ZZ",
        "2011-12-09T12:50:00Z ",
        " 2011-12-09T12:50:00Z",
        "2011-12-09X12:50:00Z",
        "2011/12/09T12:50:00Z",
        "11-12-09T12:50:00Z",
        "20111-12-09T12:50:00Z",
        "2011-1-09T12:50:00Z",
        "2011-12-9T12:50:00Z",
        "2011-12-09T1:50:00Z",
        "2011-12-09T12:50:00.Z",        /* a dot needs digits */
        "2011-12-09T12:50:00,5Z",
        "2011-12-09T12:50:00+01",
        "2011-12-09T12:50:00+0100",
        "2011-12-09T12:50:00+01:0",
        "2011-12-09T12:50:00+24:00",    /* offset hour 0..23 */
        "2011-12-09T12:50:00+01:60",    /* offset minute 0..59 */
        "2011-12-09T12:50:00UTC",
        "2011-00-09T12:50:00Z",
        "2011-13-09T12:50:00Z",
        "2011-12-00T12:50:00Z",
        "2011-12-32T12:50:00Z",
        "2011-04-31T12:50:00Z",
        "2011-02-29T12:50:00Z",         /* not a leap year */
        "1900-02-29T12:50:00Z",         /* divisible by 100, not by 400 */
        "2100-02-29T12:50:00Z",
        "2011-12-09T24:00:00Z",
        "2011-12-09T12:60:00Z",
        "2011-12-09T12:50:60Z",         /* leap seconds are refused */
        "2016-12-31T23:59:60Z",
        "0000-01-01T00:00:00Z",         /* year 0 is outside 0001..9999 */
        "0001-01-01T00:00:00+00:01",    /* before 0001 once in UTC */
        "9999-12-31T23:59:59-00:01",    /* after 9999 once in UTC */
        "-001-01-01T00:00:00Z",
        "+2011-12-09T12:50:00Z",
        "2011-12-09T12:50:00+01:00:00",
        "2011-12-09T12:50:00.123",
        ("\xef\xbb\xbf" "2011-12-09T12:50:00Z"),   /* a BOM first */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_bad(bad[i]);
}

static void test_leap_days(void **state)
{
    (void)state;
    expect_ts("2000-02-29T00:00:00Z", 951782400);
    expect_ts("2004-02-29T00:00:00Z", 1078012800);
    expect_ts("1600-02-29T00:00:00Z", -11670998400LL);
    expect_ts("0004-02-29T00:00:00Z", -62035891200LL);
    expect_ts("9996-02-29T00:00:00Z", 253281168000LL);
    int64_t a, b;
    assert_int_equal(parse("2000-02-28T00:00:00Z", &a), 0);
    assert_int_equal(parse("2000-03-01T00:00:00Z", &b), 0);
    assert_int_equal(b - a, 2 * 86400);
    assert_int_equal(parse("2001-02-28T00:00:00Z", &a), 0);
    assert_int_equal(parse("2001-03-01T00:00:00Z", &b), 0);
    assert_int_equal(b - a, 86400);
}

static void test_not_nul_terminated(void **state)
{
    (void)state;
    /* The parser must honour len: the bytes after it are not part of it. */
    const char buf[] = "2011-12-09T12:50:00Z9999";
    int64_t t;
    assert_int_equal(seg_ts_parse_rfc3339(buf, 20, &t), 0);
    assert_int_equal(t, 1323435000);
    assert_int_equal(seg_ts_parse_rfc3339(buf, 19, &t), -1);
    assert_int_equal(seg_ts_parse_rfc3339(buf, 21, &t), -1);
    assert_int_equal(seg_ts_parse_rfc3339(NULL, 0, &t), -1);
}

static void test_epoch_ms(void **state)
{
    (void)state;
    int64_t t;
    struct { int64_t ms, s; } ok[] = {
        {0, 0}, {999, 0}, {1000, 1}, {1999, 1},
        {-1, -1}, {-999, -1}, {-1000, -1}, {-1001, -2},   /* floor */
        {1323435000123LL, 1323435000},
        {SEG_TS_MAX * 1000 + 999, SEG_TS_MAX},
        {SEG_TS_MIN * 1000, SEG_TS_MIN},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(seg_ts_from_epoch_ms(ok[i].ms, &t), 0);
        assert_int_equal(t, ok[i].s);
    }
    t = 0x5eed;
    assert_int_equal(seg_ts_from_epoch_ms((SEG_TS_MAX + 1) * 1000, &t), -1);
    assert_int_equal(seg_ts_from_epoch_ms(SEG_TS_MIN * 1000 - 1, &t), -1);
    assert_int_equal(seg_ts_from_epoch_ms(INT64_MAX, &t), -1);
    assert_int_equal(seg_ts_from_epoch_ms(INT64_MIN, &t), -1);
    assert_int_equal(t, 0x5eed);
}

static void expect_fmt(int64_t ts, const char *want)
{
    char buf[SEG_TS_BUFSZ];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(seg_ts_format(ts, buf), 20);
    assert_string_equal(buf, want);
}

static void test_format(void **state)
{
    (void)state;
    expect_fmt(0, "1970-01-01T00:00:00Z");
    expect_fmt(-1, "1969-12-31T23:59:59Z");
    expect_fmt(1323435000, "2011-12-09T12:50:00Z");
    expect_fmt(951782400, "2000-02-29T00:00:00Z");
    expect_fmt(SEG_TS_MIN, "0001-01-01T00:00:00Z");
    expect_fmt(SEG_TS_MAX, "9999-12-31T23:59:59Z");
    expect_fmt(-2203891200LL, "1900-03-01T00:00:00Z");
    expect_fmt(-2203891201LL, "1900-02-28T23:59:59Z");
}

static int naive_dim(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

/* Every day from 0001-01-01 to 9999-12-31, with a varying time of day:
 * format must print what a naive day counter says, and parse must return
 * the instant. Covers every leap day, century rule and year length. */
static void test_every_day_round_trip(void **state)
{
    (void)state;
    int y = 1, m = 1, d = 1;
    int64_t days = SEG_TS_MIN / 86400;
    long n = 0;
    char want[80], got[SEG_TS_BUFSZ];   /* want: room for any six ints */
    for (;;) {
        int64_t sod = (n * 7919) % 86400;      /* wander through the day */
        int64_t ts = days * 86400 + sod;
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d,
                 (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
        seg_ts_format(ts, got);
        if (strcmp(want, got) != 0)
            fail_msg("format(%lld) = %s, want %s", (long long)ts, got, want);
        /* again: the text of the last instant is cached */
        memset(got, 0, sizeof got);
        seg_ts_format(ts, got);
        if (strcmp(want, got) != 0)
            fail_msg("format(%lld) = %s, want %s", (long long)ts, got, want);
        int64_t back;
        if (parse(got, &back) != 0 || back != ts)
            fail_msg("parse(%s) did not return %lld", got, (long long)ts);
        if (y == 9999 && m == 12 && d == 31) break;
        n++;
        days++;
        if (++d > naive_dim(y, m)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }
    assert_int_equal(n, 3652058);   /* days in 0001..9999, minus one */
    assert_int_equal(days * 86400 + 86399, SEG_TS_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_instants),
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_leap_days),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_epoch_ms),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_every_day_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
