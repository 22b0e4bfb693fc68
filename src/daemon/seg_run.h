/*
 * seg_run: `segd run`, the daemon. It consumes events from Kafka, folds
 * them into one engine per assigned partition, publishes transitions (and
 * routed copies) keyed by customer id, sends rejects to the DLQ topic, and
 * stores an input offset only when everything that record caused has been
 * delivered: at-least-once, nothing lost.
 *
 * Partitions are the unit of state: a customer's state lives with the
 * partition its events arrive on, so a revoked partition's engine is
 * drained, committed and dropped, and scale-out is more instances in the
 * consumer group.
 */
#ifndef SEG_RUN_H
#define SEG_RUN_H

#include <stddef.h>

#include "config/seg_cfg.h"
#include "rule/seg_rule.h"

/* seg_run's failures: SEG_RUN_ECONFIG when the configuration cannot work
 * (a librdkafka property it refuses, a bad route filter, a listen
 * address), SEG_RUN_EFAIL for everything met while running. */
enum { SEG_RUN_EFAIL = -1, SEG_RUN_ECONFIG = -2 };

/* Checks what seg_cfg_validate cannot: the librdkafka properties (consumer,
 * producer and the restore consumer, as segd would build them) and the
 * route filters (against rules, which may be NULL). Connects to nothing.
 * Returns 0 or SEG_RUN_ECONFIG with errstr naming the key. */
int seg_run_check(const seg_cfg_t *cfg, const seg_ruleset_t *rules, char *errstr,
                  size_t errstr_size);

typedef struct seg_run_opts {
    const seg_cfg_t    *cfg;          /* read at start, copied */
    seg_ruleset_t      *rules;        /* taken over, destroyed by seg_run */
    const char         *config_path;  /* re-read by a reload; NULL: defaults */
    const char *const  *sets;         /* --set overrides, applied again by a reload */
    int                 nsets;
} seg_run_opts_t;

/* Runs until SIGTERM/SIGINT (returns 0 after a clean drain and commit) or
 * a failure (returns SEG_RUN_ECONFIG or SEG_RUN_EFAIL with errstr set).
 * Calls seg_run_check first. SIGHUP (and POST /-/reload with
 * metrics.lifecycle) re-reads the configuration (docs/rules.md). */
int seg_run(const seg_run_opts_t *opts, char *errstr, size_t errstr_size);

#endif
