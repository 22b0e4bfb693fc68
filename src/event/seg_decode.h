/*
 * seg_decode: turns one raw input record (a JSON object, or a MessagePack
 * map) into a validated seg_event_t, or into a rejection reason.
 *
 * Decoding and validation are one step so that a record is parsed exactly
 * once, and so that JSON and MessagePack obey literally the same rules:
 * both formats first become a neutral view of the fields, and one
 * validator checks that view. docs/events.md is the schema.
 *
 * The decoder keeps reusable scratch memory so that the per-event path does
 * no heap churn once warmed up. One decoder per thread.
 *
 * Ownership of event strings (customer_id, event_id): they point into memory
 * owned by the decoder and stay valid until the next seg_decode_* call on
 * the same decoder, or its _destroy, whichever comes first.
 *  - JSON: they point into the parser's memory (simdjson's unescaped
 *    strings, or the cJSON tree of a record simdjson left to cJSON), which
 *    the decoder keeps until the next call.
 *  - MessagePack: they are COPIED into decoder-owned buffers, never left
 *    pointing into the caller's buf (or the unpacker's buffer), so the
 *    caller may reuse or free its input as soon as the call returns.
 *    The attrs object (seg_event_t.attrs) is the exception: it is not
 *    copied (only rules read it, and rarely), so with MessagePack its
 *    strings point into buf and live only as long as buf; with JSON, its
 *    members are listed in decoder memory and point into the parser's, as
 *    the event's strings do. A caller that keeps an event past either
 *    copies what it needs with seg_attrs_capture.
 * Callers that keep an id longer must copy it.
 */
#ifndef SEG_DECODE_H
#define SEG_DECODE_H

#include <stddef.h>
#include <msgpack.h>
#include "event/seg_event.h"
#include "event/seg_reject.h"

typedef struct seg_decoder seg_decoder_t;

/* Returns a new decoder, or NULL on allocation failure. */
seg_decoder_t *seg_decoder_new(void);
/* Frees the decoder and everything events point into. NULL is a no-op. */
void seg_decoder_destroy(seg_decoder_t *dec);

/* Records longer than max_bytes are rejected as oversized_record before any
 * parsing (seg_decode_json / seg_decode_msgpack only; the _object variant
 * never sees the raw size). 0, the default, means no limit. */
void seg_decoder_set_max_record(seg_decoder_t *dec, size_t max_bytes);

/* Decodes one JSON object from buf[0..len) (trailing whitespace allowed,
 * anything else after the object is invalid_json). On success returns
 * SEG_REJ_NONE and fills *ev (its strings point into the decoder, valid
 * until the next call). On failure returns the reason and writes a human
 * sentence into errstr ("amount is -3.5; it must be >= 0"; printable,
 * valid UTF-8) and leaves *ev zeroed. errstr may be NULL. buf need not be
 * NUL-terminated and is not kept. */
seg_reject_t seg_decode_json(seg_decoder_t *dec, const char *buf, size_t len,
                             seg_event_t *ev, char *errstr, size_t errstr_size);

/* Same for exactly one MessagePack value in buf[0..len): a trailing byte
 * after the value is invalid_msgpack. buf is not kept (strings are copied).
 * The raw bytes are bounds-checked before msgpack-c sees them, so a header
 * claiming 2^32 elements in a 5-byte record cannot make it allocate
 * gigabytes. */
seg_reject_t seg_decode_msgpack(seg_decoder_t *dec, const char *buf, size_t len,
                                seg_event_t *ev, char *errstr, size_t errstr_size);

/* seg_decode_msgpack for bytes already delimited by
 * seg_msgpack_value_size(): the caller guarantees it returned 1 with
 * *size == len for exactly these bytes (seg_reader's accepted MessagePack
 * records), which is the bounds check seg_decode_msgpack
 * starts with, so this skips repeating it. Anything else must go through
 * seg_decode_msgpack. */
seg_reject_t seg_decode_msgpack_delimited(seg_decoder_t *dec, const char *buf, size_t len,
                                          seg_event_t *ev, char *errstr, size_t errstr_size);

/* Validates a MessagePack value that the caller already unpacked (e.g. with
 * msgpack_unpacker over a stream). obj and its zone are only read during
 * the call; strings are copied into the decoder as for seg_decode_msgpack.
 * A value that is not a map is not_object. */
seg_reject_t seg_decode_msgpack_object(seg_decoder_t *dec,
                                       const msgpack_object *obj,
                                       seg_event_t *ev, char *errstr,
                                       size_t errstr_size);

/* ---- attrs -------------------------------------------------------------
 * Reading an event's attrs (seg_event_t.attrs): only rules read them, and
 * only the keys they name. A MessagePack map is left where msgpack-c put
 * it; a JSON object's top-level members are listed as the record is parsed
 * (simdjson reads forward only). This iterator reads the members in order.
 * Duplicate keys come out as often as they occur (the last one wins for
 * whoever keeps a value per key). */
typedef struct seg_attrs_iter {
    const seg_attrs_t *a;
    uint32_t           i;
} seg_attrs_iter_t;

void seg_attrs_iter_init(seg_attrs_iter_t *it, const seg_attrs_t *a);
/* Fills *out with the next member and returns 1, or returns 0 at the end.
 * out's strings point into the object (or the capture). */
int seg_attrs_iter_next(seg_attrs_iter_t *it, seg_attr_t *out);

/* Copies the members of *a whose key `want` accepts (want(opaque, key,
 * len) != 0; want NULL takes every member) into out[0..max) and their
 * bytes into buf[0..buf_size), and points *a at the copy
 * (SEG_ATTRS_CAPTURED), so the event's attrs outlive the decoder's next
 * call. A key that occurs twice is kept once, with its last value (the one
 * that wins); a string value longer than max_str is kept as
 * SEG_ATTR_OTHER, without its bytes. So max distinct keys and
 * max * (128 + max_str) bytes always suffice for keys of at most 128
 * bytes. Members that still do not fit are dropped; returns how many (0
 * normally). For readers that decode ahead of the fold (replay). */
size_t seg_attrs_capture(seg_attrs_t *a, int (*want)(void *opaque, const char *key, size_t len),
                         void *opaque, size_t max_str, seg_attr_t *out, size_t max, char *buf,
                         size_t buf_size);

/* Finds the extent of the first MessagePack value in buf[0..len) without
 * allocating, for readers that split a stream into records themselves.
 * Returns 1 and sets *size (bytes of that value) when it is complete, 0 if
 * buf holds only a prefix of a value (read more; bound this with a record
 * size limit, since a header may claim 2^32 elements), -1 if the bytes can
 * never start a valid value (the reserved byte 0xc1). Does not check
 * nesting depth; seg_decode_msgpack does that. */
int seg_msgpack_value_size(const char *buf, size_t len, size_t *size);

#endif
