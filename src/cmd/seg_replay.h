/*
 * seg_replay: `segd replay`, the batch path: input file -> decode -> engine
 * -> transitions on stdout, rejects to the DLQ, a summary on stderr.
 *
 * Users backfill history and test rule changes on past data with it, and
 * the daemon's output is defined as equal to it, so it is the reference
 * behaviour of segd.
 */
#ifndef SEG_REPLAY_H
#define SEG_REPLAY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config/seg_cfg.h"
#include "rule/seg_rule.h"

typedef struct seg_replay_opts {
    const seg_ruleset_t *rules; /* user rules (borrowed), or NULL */
    const char *input;          /* path or "-" */
    const char *dlq;            /* NULL: rejects are only counted */
    const char *summary_json;   /* NULL: no JSON summary */
    const char *customers_out;  /* NULL: no customer table (seg_custtable.h) */
    int         customers_fmt;  /* seg_table_fmt_t */
    bool        has_until;
    int64_t     until;
    FILE       *out;            /* transitions */
    FILE       *err;            /* summary */
} seg_replay_opts_t;

/* Runs a replay. Returns 0 on success (rejected records are not failures),
 * or -1 with errstr set when the run could not complete (unreadable input,
 * unwritable output or DLQ, out of memory). */
int seg_replay_run(const seg_cfg_t *cfg, const seg_replay_opts_t *opts,
                   char *errstr, size_t errstr_size);

#endif
