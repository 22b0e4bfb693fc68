/*
 * seg_ts: timestamps as segd sees them: whole seconds since the Unix epoch,
 * UTC, in an int64_t.
 *
 * All segment durations are exact at second precision, so sub-second input
 * is truncated toward the earlier second (floor) once, at the edge, and the
 * engine never handles fractions. The accepted range is years 0001..9999,
 * the range RFC 3339 can write.
 */
#ifndef SEG_TS_H
#define SEG_TS_H

#include <stddef.h>
#include <stdint.h>

#define SEG_TS_MIN (-62135596800LL)   /* 0001-01-01T00:00:00Z */
#define SEG_TS_MAX (253402300799LL)   /* 9999-12-31T23:59:59Z */
#define SEG_TS_BUFSZ 21               /* "YYYY-MM-DDTHH:MM:SSZ" + NUL */

/* Parses an RFC 3339 date-time ("1997-01-31T00:00:00Z",
 * "2011-12-09T12:50:00.123+01:00"; 't'/'z' and a space separator are
 * accepted as RFC 3339 section 5.6 allows). Returns 0 and sets *out, or -1.
 * s need not be NUL-terminated. */
int seg_ts_parse_rfc3339(const char *s, size_t len, int64_t *out);

/* Epoch milliseconds to seconds (floor). Returns -1 if out of range. */
int seg_ts_from_epoch_ms(int64_t ms, int64_t *out);

/* Writes "YYYY-MM-DDTHH:MM:SSZ" into buf (>= SEG_TS_BUFSZ bytes), returns
 * the length (20). ts must be within [SEG_TS_MIN, SEG_TS_MAX]. */
size_t seg_ts_format(int64_t ts, char *buf);

#endif
