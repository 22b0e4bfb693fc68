/*
 * seg_dlq: the replay dead-letter file.
 *
 * A rejected record must never vanish: the DLQ keeps the original bytes,
 * why they were refused and where they came from, one NDJSON object per
 * record, so a user can fix and re-feed them. The format is documented in
 * docs/events.md. (The Kafka daemon has its own DLQ topic, carrying the
 * same facts as message headers.)
 */
#ifndef SEG_DLQ_H
#define SEG_DLQ_H

#include <stddef.h>
#include <stdint.h>

#include "event/seg_reject.h"

typedef struct seg_dlq seg_dlq_t;

/* Opens (truncates) path for writing. NULL with errstr on failure. */
seg_dlq_t *seg_dlq_open(const char *path, char *errstr, size_t errstr_size);

/* Appends one rejected record. line is 0 when not applicable (msgpack).
 * data may be NULL when len is 0. Returns 0, or -1 with errstr. */
int seg_dlq_write(seg_dlq_t *d, seg_reject_t reason, const char *error,
                  const char *source, uint64_t line, uint64_t offset,
                  const char *data, size_t len, char *errstr, size_t errstr_size);

/* Flushes and closes; returns 0 or -1 with errstr (a failed flush loses
 * records, so the caller must report it). NULL is a no-op returning 0. */
int seg_dlq_close(seg_dlq_t *d, char *errstr, size_t errstr_size);

/* 1 if s[0..len) is valid UTF-8 without NUL bytes. */
int seg_utf8_valid(const char *s, size_t len);

#endif
