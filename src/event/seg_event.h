/*
 * seg_event: the one decoded, validated shape of an input record.
 *
 * Every input format (NDJSON line, MessagePack map, later a Kafka message)
 * is decoded into a seg_event_t before anything else in segd looks at it,
 * so the fold/evaluate stages never see raw bytes or partial records. A
 * record that breaks the schema never becomes a seg_event_t: the decoder
 * returns a seg_reject_t reason instead, and the caller routes the original
 * bytes to the dead-letter queue.
 *
 * Ownership: string fields point into memory owned by the decoder that
 * produced the event. They stay valid until the next call on that decoder
 * (or its _destroy). Callers that keep an id must copy it.
 */
#ifndef SEG_EVENT_H
#define SEG_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include "util/seg_money.h"  /* SEG_MONEY_SCALE: amounts are 1/10000 units */

#define SEG_CUSTOMER_ID_MAX 128   /* bytes, per docs/events.md */


typedef enum {
    SEG_EV_PURCHASE = 1,
    SEG_EV_REFUND   = 2,
    SEG_EV_CONTACT  = 3,
    SEG_EV_PROFILE  = 4,   /* carries only attrs (Segment's identify call) */
} seg_event_type_t;
#define SEG_EV__COUNT 5

typedef enum {
    SEG_CONTACT_NONE      = 0,   /* not a contact */
    SEG_CONTACT_VISIT     = 1,
    SEG_CONTACT_INQUIRY   = 2,
    SEG_CONTACT_COMPLAINT = 3,
    SEG_CONTACT_SUPPORT   = 4,
    SEG_CONTACT_FEEDBACK  = 5,
    SEG_CONTACT_CALL      = 6,   /* added later: codes are never renumbered */
} seg_contact_kind_t;
#define SEG_CONTACT__COUNT 7

/* One top-level member of an event's attrs, as rules read it. */
typedef enum {
    SEG_ATTR_NULL = 0,      /* null: unsets the key */
    SEG_ATTR_BOOL,
    SEG_ATTR_NUMBER,        /* num; every JSON number, msgpack int or float */
    SEG_ATTR_STRING,        /* str/str_len: valid UTF-8, no NUL */
    SEG_ATTR_OTHER,         /* object, array, bin, ext, or a string with a NUL
                             * or invalid UTF-8: rules ignore it */
} seg_attr_type_t;

typedef struct seg_attr {
    const char     *key;    /* not NUL-terminated */
    uint32_t        key_len;
    seg_attr_type_t type;
    int             b;      /* SEG_ATTR_BOOL */
    double          num;    /* SEG_ATTR_NUMBER */
    const char     *str;    /* SEG_ATTR_STRING, not NUL-terminated */
    uint32_t        str_len;
} seg_attr_t;

/* The event's `attrs` object, as the decoder left it: read it with
 * seg_attrs_iter_* (seg_decode.h). fmt says where it lives; it is valid
 * as long as the event's strings are (see the ownership note above), or,
 * once captured (SEG_ATTRS_CAPTURED), as long as the capture's storage. */
typedef enum {
    SEG_ATTRS_NONE = 0,     /* no attrs, or attrs: null */
    SEG_ATTRS_JSON,         /* obj: n seg_attr_t listed by the JSON decoder */
    SEG_ATTRS_MSGPACK,      /* obj: a msgpack_object map */
    SEG_ATTRS_CAPTURED,     /* obj: n seg_attr_t (seg_attrs_capture) */
} seg_attrs_fmt_t;

typedef struct seg_attrs {
    seg_attrs_fmt_t fmt;
    const void     *obj;
    uint32_t        n;
} seg_attrs_t;

typedef struct seg_event {
    seg_event_type_t   type;
    seg_contact_kind_t kind;          /* SEG_CONTACT_NONE unless type==CONTACT */
    const char        *customer_id;   /* not NUL-terminated; see len */
    size_t             customer_id_len;
    int64_t            ts;            /* epoch seconds, floor of the input */
    int64_t            amount;        /* 1/10000 units, >= 0; 0 when absent */
    int                has_amount;
    int                rating;        /* 1..5, 0 when absent */
    const char        *event_id;      /* NULL when absent */
    size_t             event_id_len;
    seg_attrs_t        attrs;         /* fmt SEG_ATTRS_NONE when absent */
} seg_event_t;

const char *seg_event_type_name(seg_event_type_t t);
const char *seg_contact_kind_name(seg_contact_kind_t k);

#endif
