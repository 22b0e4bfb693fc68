/*
 * seg_tcopy: a transition copied whole into a byte buffer.
 *
 * The engine hands its emitter a transition whose strings and features
 * live only until the emitter returns (a rule's value, the features of
 * the evaluation, the id of a customer that may be evicted). Replay
 * encodes and writes transitions on a thread of its own, so that
 * formatting, counting and writing (about a quarter of the fold thread's
 * time, docs/benchmarks.md) run beside the fold instead of inside it:
 * the fold thread copies each transition here and the writer thread
 * reads the copy back, as the seg_transition_t the encoder takes.
 *
 * Names that are static (a built-in dimension's name and value names, as
 * seg_dims.h gives them) are kept as pointers rather than copied, so the
 * copy is small (~100 bytes for a built-in transition) and the encoder's
 * fast path for known names still applies.
 */
#ifndef SEG_TCOPY_H
#define SEG_TCOPY_H

#include <stdbool.h>
#include <stddef.h>

#include "event/seg_event.h"
#include "rule/seg_rule.h"
#include "segment/seg_engine.h"

/* Longest text of a rule's value. */
#define SEG_TCOPY_VALUE_MAX SEG_RULE_VALUE_MAX

/* Most bytes one copy takes: the record and the features, the id, a
 * rule's name, two values and the features object, each NUL-terminated
 * and 8-aligned. */
#define SEG_TCOPY_MAX (256 + SEG_CUSTOMER_ID_MAX + SEG_RULE_NAME_MAX + \
                       2 * SEG_TCOPY_VALUE_MAX + SEG_RULE_OUTF_MAX + 6 * 8)

/* Copies t into buf (8-byte aligned, `room` bytes free). The features
 * (t->features, t->features_json) are copied only when `features` is
 * true; otherwise the copy has none. Returns the bytes used, a multiple
 * of 8, or 0 when the copy needs more than `room` (never with room >=
 * SEG_TCOPY_MAX for a transition the engine made). */
size_t seg_tcopy_put(const seg_transition_t *t, bool features, void *buf, size_t room);

/* Reads the copy at buf back into *t, whose pointers then point into buf
 * or at static names (valid as long as buf is). Returns the bytes the
 * copy takes: the offset of the next one. */
size_t seg_tcopy_get(const void *buf, seg_transition_t *t);

#endif
