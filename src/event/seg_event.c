/*
 * seg_event: stable names for event types and contact kinds.
 *
 * The names are the wire vocabulary of docs/events.md; the decoder matches
 * input against them and the replay summary prints them, so they live in
 * one place.
 */
#include "event/seg_event.h"

const char *seg_event_type_name(seg_event_type_t t)
{
    switch (t) {
    case SEG_EV_PURCHASE: return "purchase";
    case SEG_EV_REFUND:   return "refund";
    case SEG_EV_CONTACT:  return "contact";
    case SEG_EV_PROFILE:  return "profile";
    }
    return "unknown";
}

const char *seg_contact_kind_name(seg_contact_kind_t k)
{
    switch (k) {
    case SEG_CONTACT_NONE:      return "none";
    case SEG_CONTACT_VISIT:     return "visit";
    case SEG_CONTACT_INQUIRY:   return "inquiry";
    case SEG_CONTACT_COMPLAINT: return "complaint";
    case SEG_CONTACT_SUPPORT:   return "support";
    case SEG_CONTACT_FEEDBACK:  return "feedback";
    case SEG_CONTACT_CALL:      return "call";
    }
    return "unknown";
}
