/*
 * seg_changelog: partition state through Kafka, so a partition can move to
 * an instance with an empty disk (scale-out, a lost machine) and still
 * continue exactly where the last checkpoint left it.
 *
 * At each checkpoint a partition appends to the changelog partition of the
 * same number (co-partitioned with the input):
 *   - the latest state of every customer that changed since the last
 *     checkpoint (key = customer id, value = the snapshot's customer
 *     record), or for a customer evicted a tombstone (null value) plus a
 *     grave record (key = SEG_CHANGELOG_GRAVE + id, value = its last seq);
 *   - then one marker (key = SEG_CHANGELOG_MARKER, value = a MessagePack
 *     map with the input offset the state covers and the engine time).
 * A restore applies records only up to the last marker: anything after it
 * belongs to a checkpoint that did not finish. In production the topic is
 * compacted, so it holds about one record per customer; without
 * compaction (the test cluster) a restore reads every version and the
 * latest wins, with the same result.
 */
#ifndef SEG_CHANGELOG_H
#define SEG_CHANGELOG_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "segment/seg_engine.h"

/* Customer ids cannot contain NUL (the decoder rejects it), so no customer
 * key can collide with the marker's. */
#define SEG_CHANGELOG_MARKER     "\0segd.marker"
#define SEG_CHANGELOG_MARKER_LEN 12
/* Prefix of the key recording an evicted customer's last seq. */
#define SEG_CHANGELOG_GRAVE      "\0segd.grave:"
#define SEG_CHANGELOG_GRAVE_LEN  12

/* Produces one message; the caller's function handles QUEUE_FULL and
 * delivery accounting. value NULL = tombstone. Returns 0 or -1. */
typedef int (*seg_changelog_produce_fn)(void *opaque, int32_t partition,
                                        const void *key, size_t klen,
                                        const void *value, size_t vlen);

/* Appends e's changes since the last call, then a marker for next_offset.
 * Returns the number of records written (marker included), or -1. */
long seg_changelog_append(seg_engine_t *e, int32_t partition, int64_t next_offset,
                          seg_changelog_produce_fn produce, void *opaque,
                          char *errstr, size_t errstr_size);

typedef struct seg_changelog_restore {
    uint64_t records;        /* read */
    uint64_t applied;        /* customer records and tombstones applied */
    uint64_t markers;
    int64_t  resume_offset;  /* input offset to resume at; -1: no marker */
    int64_t  max_ts;
    double   seconds;
} seg_changelog_restore_t;

/* Reads changelog partition `partition` of `topic` from the beginning to
 * its end with `consumer` (a consumer handle used only for this, not
 * subscribed), applying complete checkpoints to e (which must be empty).
 * Calls progress about once a second. Returns 0, or -1 with errstr. */
int seg_changelog_restore(rd_kafka_t *consumer, const char *topic, int32_t partition,
                          seg_engine_t *e, int timeout_ms,
                          void (*progress)(void *opaque, const seg_changelog_restore_t *r),
                          void *opaque, seg_changelog_restore_t *out,
                          char *errstr, size_t errstr_size);

/* Finds the marker of the last complete checkpoint in changelog partition
 * `partition` without reading the whole partition: it reads the tail in
 * growing windows (the last record, then the last 64, 4096, ... records)
 * until a window holds a marker or starts at the beginning. (Compaction
 * keeps only the newest marker, at the end, as all markers share a key.)
 * Sets *offset to the marker's input offset and *max_ts to its engine
 * time, or *offset = -1 when the partition has no marker. A restart whose
 * local snapshot is at least that new needs no full changelog read.
 * Returns 0, or -1 with errstr. */
int seg_changelog_last_marker(rd_kafka_t *consumer, const char *topic, int32_t partition,
                              int timeout_ms, int64_t *offset, int64_t *max_ts,
                              char *errstr, size_t errstr_size);

#endif
