/*
 * seg_reject: the stable snake_case names of rejection reasons.
 *
 * These strings are an interface (DLQ "reason", replay summary, later a
 * metrics label), so they are spelled out here rather than derived, and a
 * reason without a name is a compile-time warning (-Wswitch) rather than a
 * silent "unknown" in production.
 */
#include "event/seg_reject.h"

const char *seg_reject_name(seg_reject_t r)
{
    switch (r) {
    case SEG_REJ_NONE:                  return "none";
    case SEG_REJ_INVALID_JSON:          return "invalid_json";
    case SEG_REJ_INVALID_MSGPACK:       return "invalid_msgpack";
    case SEG_REJ_NOT_OBJECT:            return "not_object";
    case SEG_REJ_MISSING_FIELD:         return "missing_field";
    case SEG_REJ_WRONG_FIELD_TYPE:      return "wrong_field_type";
    case SEG_REJ_UNKNOWN_TYPE:          return "unknown_type";
    case SEG_REJ_UNKNOWN_KIND:          return "unknown_kind";
    case SEG_REJ_EMPTY_CUSTOMER_ID:     return "empty_customer_id";
    case SEG_REJ_OVERSIZED_CUSTOMER_ID: return "oversized_customer_id";
    case SEG_REJ_BAD_TIMESTAMP:         return "bad_timestamp";
    case SEG_REJ_NEGATIVE_AMOUNT:       return "negative_amount";
    case SEG_REJ_BAD_AMOUNT:            return "bad_amount";
    case SEG_REJ_BAD_RATING:            return "bad_rating";
    case SEG_REJ_OVERSIZED_RECORD:      return "oversized_record";
    case SEG_REJ_BAD_FIELD:             return "bad_field";
    case SEG_REJ__COUNT:                break;
    }
    return "unknown";
}
