/*
 * seg_snapshot: a partition's complete engine state in one file, so a
 * restart resumes in seconds instead of replaying months of input.
 *
 * What a snapshot holds: every customer (id, clock, first/last purchase,
 * transition seq, last published values, windowed entries), the engine's
 * time, and the input offset the state covers (the next record to
 * consume). Pending deadlines are not stored one by one: each customer's
 * next deadline is a pure function of its state and is recomputed on load,
 * so a snapshot can never disagree with its own timers.
 *
 * Format (docs/guarantees.md): "SEGDSNP1", u64 body length, u32 CRC-32 of
 * the body, u32 zero, then the body: a MessagePack header map followed by
 * one array per customer. Little-endian. Version 2 headers also carry the
 * rule set the state was written under (seg_rulestate.h); a version 1 file
 * loads as state without rules.
 *
 * The write is atomic: temp file, fsync, rename, fsync of the directory.
 * A load verifies length and checksum before it trusts a byte, and builds
 * into an engine the caller throws away on failure: a truncated or
 * corrupt file is reported and skipped, never half-loaded.
 */
#ifndef SEG_SNAPSHOT_H
#define SEG_SNAPSHOT_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "segment/seg_engine.h"

typedef struct seg_snapshot_info {
    char     topic[256];
    int32_t  partition;
    int64_t  next_offset;     /* first input offset not reflected */
    int64_t  max_ts;          /* engine time */
    uint64_t customers;
    uint64_t bytes;           /* file size */
    double   seconds;         /* time taken to write or load */
} seg_snapshot_info_t;

/* The snapshot path for a partition: "<dir>/<topic>.<partition>.snap". */
void seg_snapshot_path(const char *dir, const char *topic, int32_t partition,
                       char *buf, size_t size);

/* Writes e's state atomically to its path in dir. info receives what was
 * written. Returns 0 or -1 with errstr. If the environment variable
 * SEGD_FAULT is "snapshot-before-rename" the process kills itself with
 * SIGKILL after the temp file is durable and before the rename (tests use
 * it to crash inside the write). */
int seg_snapshot_write(const char *dir, const char *topic, int32_t partition,
                       seg_engine_t *e, int64_t next_offset,
                       seg_snapshot_info_t *info, char *errstr, size_t errstr_size);

/* Loads path into e, which must be empty. On failure (missing, truncated,
 * checksum mismatch, malformed, wrong partition) returns -1 with errstr and
 * e holds garbage: destroy it. Returns 0 with info filled on success. If
 * topic is non-NULL, the file must belong to topic/partition. */
int seg_snapshot_load(const char *path, const char *topic, int32_t partition,
                      seg_engine_t *e, seg_snapshot_info_t *info,
                      char *errstr, size_t errstr_size);

/* Parses a snapshot image already in memory (what load does after reading
 * the file). Exposed for the fuzz target. */
int seg_snapshot_parse(const char *buf, size_t len, seg_engine_t *e,
                       seg_snapshot_info_t *info, char *errstr, size_t errstr_size);

/* Encodes / decodes one customer record (also the changelog value). The
 * packer appends to sbuf; e is the engine st was read from (for the rule
 * state). Decode returns 0 and fills st (pointing into scratch storage
 * owned by the caller's zone / arrays, st->rules at the rule state), or -1. */
void seg_snapshot_pack_customer(seg_engine_t *e, msgpack_packer *pk, const seg_cust_state_t *st);
int seg_snapshot_unpack_customer(const msgpack_object *o, seg_cust_state_t *st,
                                 seg_winentry_t **scratch, size_t *scratch_cap,
                                 char *errstr, size_t errstr_size);

#endif
