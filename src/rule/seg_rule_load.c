/*
 * seg_rule_load: settings, then rules, from one file.
 */
#include "rule/seg_rule_load.h"

#include <stdio.h>

seg_ruleset_t *seg_rule_load_config(const char *path, const char *const *sets, int nsets,
                                    seg_cfg_t *cfg, char *errstr, size_t errstr_size)
{
    seg_cfg_defaults(cfg);
    if (path && seg_cfg_load_file(cfg, path, errstr, errstr_size) != 0) return NULL;
    for (int i = 0; i < nsets; i++)
        if (seg_cfg_set(cfg, sets[i], errstr, errstr_size) != 0) return NULL;
    if (seg_cfg_validate(cfg, errstr, errstr_size) != 0) return NULL;
    seg_rules_def_t *def = path ? seg_rules_def_load_file(path, errstr, errstr_size)
                                : seg_rules_def_empty();
    if (!def) {
        if (!path) snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    return seg_ruleset_build(def, &cfg->seg, errstr, errstr_size);
}
