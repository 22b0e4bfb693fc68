/*
 * seg_ts: RFC 3339 / epoch-millisecond timestamps <-> int64 epoch seconds.
 *
 * Why hand-written calendar arithmetic instead of strptime/timegm: timegm is
 * a GNU/BSD extension whose behaviour with TZ and out-of-range fields varies,
 * strptime depends on the locale, and neither validates strictly (both
 * normalise "Feb 30" into March). The proleptic Gregorian conversion is a
 * few lines of integer arithmetic (H. Hinnant's days_from_civil /
 * civil_from_days), exact for every year 0001..9999, and has no global
 * state, so it is safe on the hot path and in any thread.
 */
#include "util/seg_ts.h"

#include <string.h>

#define SECS_PER_DAY 86400LL

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30,
                                          31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date. The year is shifted
 * to start in March so the leap day is the last day of the "year", which
 * makes the day-of-year a closed formula. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                               /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;       /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Reads exactly n ASCII digits at s; returns -1 if any is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int seg_ts_parse_rfc3339(const char *s, size_t len, int64_t *out)
{
    /* date-time = full-date "T" partial-time time-offset; the shortest
     * form is "YYYY-MM-DDTHH:MM:SSZ" (20 bytes). */
    if (s == 0 || len < 20) return -1;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || se < 0) return -1;
    if (s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':') return -1;
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return -1;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -1;
    /* A leap second (60) cannot be represented in epoch seconds without
     * either inventing a rule or silently shifting it, so it is refused. */
    if (h > 23 || mi > 59 || se > 59) return -1;

    size_t i = 19;
    if (i < len && s[i] == '.') {
        /* Fractions never change the whole second: the fraction is added to
         * a whole local time and the offset is whole minutes, so the floor
         * of the instant is the written second. Any number of digits is
         * valid RFC 3339; they only need to be digits. */
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
        if (i == start) return -1;
    }
    if (i >= len) return -1;

    int64_t offset = 0;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        if (len - i < 6) return -1;
        int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
        if (oh < 0 || om < 0 || s[i + 3] != ':' || oh > 23 || om > 59)
            return -1;
        offset = (int64_t)oh * 3600 + om * 60;
        if (s[i] == '-') offset = -offset;
        i += 6;
    } else {
        return -1;
    }
    if (i != len) return -1;

    /* The local time minus its offset is UTC. */
    int64_t t = days_from_civil(y, mo, d) * SECS_PER_DAY +
                (int64_t)h * 3600 + mi * 60 + se - offset;
    if (t < SEG_TS_MIN || t > SEG_TS_MAX) return -1;
    *out = t;
    return 0;
}

int seg_ts_from_epoch_ms(int64_t ms, int64_t *out)
{
    /* C division truncates toward zero; -1 ms must become -1 s (floor),
     * the second that contains that instant. */
    int64_t q = ms / 1000;
    if (ms % 1000 < 0) q--;
    if (q < SEG_TS_MIN || q > SEG_TS_MAX) return -1;
    *out = q;
    return 0;
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

/* "00".."59", for the time of day. */
static const char two_digits[] =
    "0001020304050607080910111213141516171819"
    "2021222324252627282930313233343536373839"
    "4041424344454647484950515253545556575859";

size_t seg_ts_format(int64_t ts, char *buf)
{
    /* Clamp rather than write garbage if a caller breaks the contract;
     * every timestamp segd produces is inside the range. */
    if (ts < SEG_TS_MIN) ts = SEG_TS_MIN;
    if (ts > SEG_TS_MAX) ts = SEG_TS_MAX;
    /* Transitions come in runs with the same instant (every transition
     * of one evaluation) and the same day (a replay or a watermark
     * advances through time), so the last text and the date part are
     * cached per thread. */
    static _Thread_local int64_t cached_ts = INT64_MIN;
    static _Thread_local char cached_text[SEG_TS_BUFSZ];
    if (ts == cached_ts) {
        memcpy(buf, cached_text, 21);
        return 20;
    }
    int64_t days = ts / SECS_PER_DAY, sod = ts % SECS_PER_DAY;
    if (sod < 0) {
        sod += SECS_PER_DAY;
        days--;
    }
    static _Thread_local int64_t cached_day = INT64_MIN;
    static _Thread_local char cached_date[10];
    if (days != cached_day) {
        int64_t y;
        int m, d;
        civil_from_days(days, &y, &m, &d);
        int yy = (int)y;
        cached_date[0] = (char)('0' + yy / 1000);
        cached_date[1] = (char)('0' + yy / 100 % 10);
        cached_date[2] = (char)('0' + yy / 10 % 10);
        cached_date[3] = (char)('0' + yy % 10);
        cached_date[4] = '-';
        put2(cached_date + 5, m);
        cached_date[7] = '-';
        put2(cached_date + 8, d);
        cached_day = days;
    }
    int sec = (int)sod, hh = sec / 3600, mm = sec / 60 % 60, ss = sec % 60;
    memcpy(buf, cached_date, 10);
    buf[10] = 'T';
    memcpy(buf + 11, two_digits + 2 * hh, 2);
    buf[13] = ':';
    memcpy(buf + 14, two_digits + 2 * mm, 2);
    buf[16] = ':';
    memcpy(buf + 17, two_digits + 2 * ss, 2);
    buf[19] = 'Z';
    buf[20] = '\0';
    memcpy(cached_text, buf, 21);
    cached_ts = ts;
    return 20;
}
