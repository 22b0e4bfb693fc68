/*
 * seg_reader: splits a replay input (a file or stdin) into records.
 *
 * NDJSON: one record per line ('\n', with an optional '\r' before it);
 * lines of only whitespace carry no record and are skipped (counted).
 * MessagePack: a plain concatenation of values, one record per value.
 *
 * The reader never trusts the input to be framed well. A line longer than
 * max_record_bytes, MessagePack bytes that do not parse, or a value cut
 * off by the end of the input come out as records carrying a rejection
 * reason, with their position, so the caller sends them to the DLQ like
 * any other bad record and carries on. After undecodable MessagePack bytes
 * the reader resynchronises at the next byte from which a complete map
 * parses; everything skipped is one rejected record. Splitting never
 * allocates per value, so a header claiming 2^32 elements costs nothing.
 */
#ifndef SEG_READER_H
#define SEG_READER_H

#include <stddef.h>
#include <stdint.h>

#include "config/seg_cfg.h"
#include "event/seg_reject.h"

typedef struct seg_record {
    const char           *data;      /* the record's bytes (may be cut to
                                        max_record_bytes if oversized). An
                                        accepted MessagePack record is exactly
                                        one value by seg_msgpack_value_size,
                                        so seg_decode_msgpack_delimited applies */
    size_t                len;
    uint64_t              line;      /* 1-based line number; 0 for msgpack */
    uint64_t              offset;    /* byte offset of the record in the input */
    seg_reject_t          reject;    /* SEG_REJ_NONE, or the framing problem */
    char                  why[160];  /* sentence for reject */
} seg_record_t;

typedef struct seg_reader seg_reader_t;

/* Opens path ("-" for stdin). Returns NULL with errstr set ("cannot open
 * 'x': No such file or directory"). */
seg_reader_t *seg_reader_open(const char *path, seg_format_t format,
                              size_t max_record_bytes,
                              char *errstr, size_t errstr_size);
/* Closes the input. NULL is a no-op. */
void seg_reader_close(seg_reader_t *r);

/* Fetches the next record into *rec; its pointers stay valid until the
 * next call. Returns 1 for a record, 0 at the end of the input, -1 on a
 * read error (errstr set). */
int seg_reader_next(seg_reader_t *r, seg_record_t *rec, char *errstr, size_t errstr_size);

/* Whitespace-only lines skipped so far. */
uint64_t seg_reader_blank_lines(const seg_reader_t *r);
/* Bytes consumed so far. */
uint64_t seg_reader_bytes(const seg_reader_t *r);
/* The input's display name ("-" shows as "stdin"). */
const char *seg_reader_name(const seg_reader_t *r);

#endif
