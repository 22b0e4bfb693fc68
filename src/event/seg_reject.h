/*
 * seg_reject: why a record was refused.
 *
 * The reason codes are a public, stable vocabulary: they appear in the DLQ,
 * in the replay summary and (later) as a metrics label, so operators can
 * alert on a specific failure. Add new codes at the end; never renumber.
 */
#ifndef SEG_REJECT_H
#define SEG_REJECT_H

typedef enum {
    SEG_REJ_NONE = 0,             /* accepted */
    SEG_REJ_INVALID_JSON,         /* not parseable as JSON */
    SEG_REJ_INVALID_MSGPACK,      /* not parseable as MessagePack */
    SEG_REJ_NOT_OBJECT,           /* parsed, but not an object/map */
    SEG_REJ_MISSING_FIELD,        /* a required field is absent */
    SEG_REJ_WRONG_FIELD_TYPE,     /* a field has the wrong JSON/msgpack type */
    SEG_REJ_UNKNOWN_TYPE,         /* type is not purchase|refund|contact */
    SEG_REJ_UNKNOWN_KIND,         /* contact kind not in the list */
    SEG_REJ_EMPTY_CUSTOMER_ID,
    SEG_REJ_OVERSIZED_CUSTOMER_ID,/* more than SEG_CUSTOMER_ID_MAX bytes */
    SEG_REJ_BAD_TIMESTAMP,        /* not RFC 3339 / epoch ms, or out of range */
    SEG_REJ_NEGATIVE_AMOUNT,
    SEG_REJ_BAD_AMOUNT,           /* NaN, infinite, or too large to be exact */
    SEG_REJ_BAD_RATING,           /* rating not an integer 1..5 */
    SEG_REJ_OVERSIZED_RECORD,     /* record longer than input.max_record_bytes */
    SEG_REJ_BAD_FIELD,            /* an optional field is malformed */
    SEG_REJ__COUNT
} seg_reject_t;

/* Stable snake_case name of a reason ("missing_field"). Never NULL. */
const char *seg_reject_name(seg_reject_t r);

#endif
