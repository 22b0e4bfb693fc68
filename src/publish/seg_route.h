/*
 * seg_route: routing rules that copy a filtered subset of transitions to
 * other topics, so marketing automation can subscribe to exactly the
 * moves it acts on (the default config's churn-alerts topic receives
 * lifecycle transitions into at_risk or churned) instead of filtering the
 * full stream itself.
 *
 * A rule is one config entry, routes.<topic>: "<dimension> [from a,b] [-> x,y]":
 *   lifecycle -> at_risk,churned        into at_risk or churned
 *   value from B,C -> A                 B or C moving to A
 *   dissatisfied                        every dissatisfied transition
 * Filters separated by '|' are alternatives: the topic receives a
 * transition any of them selects, once ("lifecycle -> at_risk,churned |
 * likely_churned -> in").
 * "null" in a from-list matches a first value. Values are checked against
 * the dimension's vocabulary when the rules are built.
 *
 * A user rule (docs/rules.md) is a dimension like the built-ins: its name
 * goes first, a membership's values are out and in, a graded rule's its
 * labels; a computed rule takes any text, compared as written. For rules
 * "null" also works in a to-list: a rule that leaves its value.
 */
#ifndef SEG_ROUTE_H
#define SEG_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/seg_cfg.h"
#include "rule/seg_rule.h"
#include "segment/seg_engine.h"

typedef struct seg_routes seg_routes_t;

/* Builds the rules of cfg->routes, for the user rules of rules (NULL:
 * none; borrowed only during the call). NULL with errstr naming the key
 * and its location when a rule does not parse. An empty rule set is valid. */
seg_routes_t *seg_routes_new(const seg_cfg_t *cfg, const seg_ruleset_t *rules,
                             char *errstr, size_t errstr_size);
/* NULL is a no-op. */
void seg_routes_destroy(seg_routes_t *r);

/* Number of routes (topics). */
size_t seg_routes_count(const seg_routes_t *r);
/* Topic of route i. */
const char *seg_routes_topic(const seg_routes_t *r, size_t i);
/* True if one of route i's filters selects transition t. */
bool seg_routes_match(const seg_routes_t *r, size_t i, const seg_transition_t *t);

#endif
