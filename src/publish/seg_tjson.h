/*
 * seg_tjson: the published JSON form of a transition.
 *
 * One encoder for every sink (replay's stdout, the Kafka output topic, the
 * routed topics) so the bytes are identical everywhere and consumers can
 * dedupe on `id`. The format is fixed-order and compact, written with
 * plain formatting rather than a JSON tree: it is the hottest output path,
 * and its only variable-content field, customer_id, is escaped here.
 */
#ifndef SEG_TJSON_H
#define SEG_TJSON_H

#include <stdbool.h>
#include <stddef.h>
#include "segment/seg_engine.h"

/* Enough for any transition: a 128-byte id escaped as \u00XX is 768 bytes,
 * twice (id and customer_id); a rule's values are at most 4096 bytes each,
 * 24576 escaped, twice; plus the fixed fields and features (a list of
 * output.features: SEG_RULE_OUTF_MAX). */
#define SEG_TJSON_MAX (53248 + SEG_RULE_OUTF_MAX)

/* Writes the transition as one JSON object without a newline into buf
 * (at least SEG_TJSON_MAX bytes). With features, appends a "features"
 * object. Returns the length. */
size_t seg_tjson_encode(const seg_transition_t *t, bool features, char *buf);

/* Appends s[0..len) JSON-escaped (without quotes) to dst; returns the
 * number of bytes written (at most 6 * len). Invalid UTF-8 is passed
 * through unchanged; inputs were validated as JSON/msgpack strings. */
size_t seg_json_escape(const char *s, size_t len, char *dst);

#endif
