/*
 * seg_money: exact decimal money in integer 1/10000 units.
 *
 * Config thresholds arrive as text and are parsed digit by digit, so "0.1"
 * is exactly 1000 units. Event amounts arrive as doubles from the JSON and
 * MessagePack libraries; a double holding a decimal with at most 4 places
 * and a magnitude below SEG_MONEY_MAX is within far less than half a unit
 * of the intended integer, so rounding d * 10^4 once recovers it exactly.
 * After that point only integers are added.
 */
#include "util/seg_money.h"

#include <math.h>
#include <stdio.h>

int seg_money_parse(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (i < len && (s[i] == '-' || s[i] == '+')) {
        neg = s[i] == '-';
        i++;
    }
    int64_t whole = 0;
    size_t digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        whole = whole * 10 + (s[i] - '0');
        if (whole > SEG_MONEY_MAX / SEG_MONEY_SCALE) return -1;
        i++;
        digits++;
    }
    int64_t frac = 0;
    size_t fdigits = 0;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (fdigits == 4) return -1;       /* finer than 1/10000 */
            frac = frac * 10 + (s[i] - '0');
            fdigits++;
            i++;
        }
        if (fdigits == 0) return -1;
    }
    if (digits == 0 && fdigits == 0) return -1;
    if (i != len) return -1;
    while (fdigits < 4) {
        frac *= 10;
        fdigits++;
    }
    int64_t v = whole * SEG_MONEY_SCALE + frac;
    if (v > SEG_MONEY_MAX) return -1;
    *out = neg ? -v : v;
    return 0;
}

int seg_money_from_double(double d, int64_t *out)
{
    if (!isfinite(d)) return -1;
    double u = d * (double)SEG_MONEY_SCALE;
    if (fabs(u) > (double)SEG_MONEY_MAX) return -1;
    *out = (int64_t)llround(u);
    return 0;
}

/* Decimal digits of v into buf, returns the count (no snprintf: this runs
 * for every computed rule value and feature printed). */
static size_t put_u64(uint64_t v, char *buf)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    return n;
}

size_t seg_money_format(int64_t units, char *buf)
{
    uint64_t mag = units < 0 ? (uint64_t)0 - (uint64_t)units : (uint64_t)units;
    uint64_t whole = mag / SEG_MONEY_SCALE, frac = mag % SEG_MONEY_SCALE;
    size_t n = 0;
    if (units < 0) buf[n++] = '-';
    n += put_u64(whole, buf + n);
    if (frac != 0) {
        int places = 4;
        while (frac % 10 == 0) {
            frac /= 10;
            places--;
        }
        buf[n++] = '.';
        for (int k = places - 1; k >= 0; k--, frac /= 10) buf[n + (size_t)k] = (char)('0' + frac % 10);
        n += (size_t)places;
    }
    buf[n] = '\0';
    return n;
}
