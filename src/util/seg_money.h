/*
 * seg_money: exact money. Amounts are integers of 1/10000 of a currency
 * unit (4 decimals), so sums and thresholds never accumulate binary
 * floating point error.
 */
#ifndef SEG_MONEY_H
#define SEG_MONEY_H

#include <stddef.h>
#include <stdint.h>

/* Largest accepted magnitude, in units: 10^14 units = 10^10 currency units.
 * Below 2^53 / 10^4, so a double carrying a 4-decimal amount converts back
 * to the exact integer, and a sum of 10^5 such amounts fits an int64. */
#define SEG_MONEY_MAX 100000000000000LL
#define SEG_MONEY_SCALE 10000LL     /* units per currency unit */

/* Parses decimal text ("1000", "99.5", "-0.0001") exactly. More than 4
 * decimals, exponents or junk are errors. Returns 0 or -1. */
int seg_money_parse(const char *s, size_t len, int64_t *out);

/* Converts a double that carries a decimal amount (as JSON parsers give
 * it) to units, rounding to the nearest 1/10000. Returns -1 for NaN,
 * infinities and magnitudes above SEG_MONEY_MAX. */
int seg_money_from_double(double d, int64_t *out);

/* Formats units as a minimal decimal ("12.5", "-3", "0.0001"); buf must
 * hold 32 bytes. Returns the length. */
size_t seg_money_format(int64_t units, char *buf);

#endif
