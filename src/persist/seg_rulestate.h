/*
 * seg_rulestate: the rule set an engine's state was written under, in
 * snapshot headers and changelog markers.
 *
 * A customer's rule state is stored positionally, in the layout of the
 * rule set it was computed under. To read it back, a restore first
 * rebuilds that rule set from the definition saved next to it (with the
 * built-in settings, the engine time and how far back the kept history is
 * complete), loads the state into it, and only then switches to the rule
 * set of the configuration it runs under, re-evaluating everyone as a live
 * reload would (docs/rules.md).
 */
#ifndef SEG_RULESTATE_H
#define SEG_RULESTATE_H

#include <msgpack.h>
#include <stddef.h>

#include "segment/seg_engine.h"

/* Number of map entries seg_rulestate_pack writes. */
#define SEG_RULESTATE_FIELDS 5

/* Packs the engine's rules (definition), built-in settings, rules hash,
 * time and cover as SEG_RULESTATE_FIELDS key/value pairs of the enclosing
 * map. */
void seg_rulestate_pack(seg_engine_t *e, msgpack_packer *pk);

/* Reads those fields from a header or marker map and puts the engine
 * (without customers, or between checkpoints of a restore) under that rule
 * set, silently (nothing emitted). A map without them (written before
 * rules existed) means no rules under the engine's current built-in
 * settings. Returns 0, or -1 with errstr. */
int seg_rulestate_apply(seg_engine_t *e, const msgpack_object *map, char *errstr,
                        size_t errstr_size);

/* After a restore: if the engine's rule set is not rs (by hash), checks
 * that its state holds what rs and seg read and switches to them,
 * re-evaluating every customer (cause "rule"). *changed tells whether it
 * did. Returns 0, or -1 with errstr (the history check's refusal). */
int seg_rulestate_adopt(seg_engine_t *e, const seg_segcfg_t *seg, const seg_ruleset_t *rs,
                        int *changed, char *errstr, size_t errstr_size);

#endif
