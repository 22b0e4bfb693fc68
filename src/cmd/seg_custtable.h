/*
 * seg_custtable: every customer as one row of a table, at the end of a
 * replay (segd replay --customers-out).
 *
 * Why: a CRM imports customers as a table; the batch tools of the trade
 * classify customers into one once a day. segd's transitions are the live
 * form of the same information, and this is the table form, written from
 * the same state, so the two cannot disagree. docs/predict.md lists the
 * columns.
 */
#ifndef SEG_CUSTTABLE_H
#define SEG_CUSTTABLE_H

#include <stddef.h>
#include <stdio.h>

#include "config/seg_cfg.h"
#include "rule/seg_rule.h"
#include "segment/seg_engine.h"

typedef enum { SEG_TABLE_CSV, SEG_TABLE_NDJSON } seg_table_fmt_t;

/* Writes one row per customer of e (first-appearance order), as at
 * instant `at` (the end of the replay; see seg_engine_customer_view), to f: CSV
 * (RFC 4180: header row, CRLF line ends, quoted where needed) or NDJSON
 * (one object per line; a missing value is null). rules may be NULL.
 * Returns the number of rows, or -1 with errstr on a write error. */
long seg_custtable_write(seg_engine_t *e, const seg_cfg_t *cfg, const seg_ruleset_t *rules,
                         int64_t at, seg_table_fmt_t fmt, FILE *f, char *errstr,
                         size_t errstr_size);

#endif
