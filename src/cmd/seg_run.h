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

/* Runs until SIGTERM/SIGINT (returns 0 after a clean drain and commit) or
 * a fatal error (returns -1 with errstr set). */
int seg_run(const seg_cfg_t *cfg, char *errstr, size_t errstr_size);

#endif
