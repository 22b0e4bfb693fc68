/*
 * seg_rule_load: the whole configuration as segd reads it: the settings
 * (seg_cfg: the file over the defaults, then --set in order, then the
 * cross-key checks) and the rule set of the same file, built against
 * those settings. One function, so `segd run` at start, a live reload,
 * `segd replay` and `segd check-config` cannot read a file differently.
 */
#ifndef SEG_RULE_LOAD_H
#define SEG_RULE_LOAD_H

#include <stddef.h>

#include "config/seg_cfg.h"
#include "rule/seg_rule.h"

/* Loads path (NULL: the built-in defaults, no rules) with the nsets
 * "key=value" overrides into *cfg and returns the rule set (the caller
 * owns it), or NULL with errstr ("FILE:LINE:COL: ..."). */
seg_ruleset_t *seg_rule_load_config(const char *path, const char *const *sets, int nsets,
                                    seg_cfg_t *cfg, char *errstr, size_t errstr_size);

#endif
