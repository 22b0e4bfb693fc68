/*
 * seg_route: rules as (dimension, from-set, to-set) with value sets held
 * as bitmaps over the dimension's value codes, so matching a transition
 * is a few comparisons on the publish path.
 */
#include "publish/seg_route.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CODES 128            /* >= every dimension's value count (rfm: 101) */

typedef struct rule {
    char      topic[SEG_CFG_MAPKEY_MAX];
    seg_dim_t dim;
    bool      any_from, any_to, from_null;
    uint64_t  from[CODES / 64], to[CODES / 64];
} rule_t;

struct seg_routes {
    rule_t *rules;
    size_t  n;
};

static int code_of(seg_dim_t d, const char *name, size_t len)
{
    for (unsigned c = 0; c < seg_dim_value_count(d); c++) {
        const char *n = seg_dim_value_name(d, (uint8_t)c);
        if (n && strlen(n) == len && memcmp(n, name, len) == 0) return (int)c;
    }
    return -1;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

/* Parses "a,b,c" up to the end or "->"; sets bits. Returns the end, or
 * NULL with why set. */
static const char *parse_set(const char *p, seg_dim_t d, uint64_t *bits, bool *has_null,
                             char *why, size_t wsz)
{
    for (;;) {
        p = skip_ws(p);
        const char *b = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t' && strncmp(p, "->", 2) != 0) p++;
        size_t len = (size_t)(p - b);
        if (len == 0) {
            snprintf(why, wsz, "expected a value name");
            return NULL;
        }
        if (has_null && len == 4 && memcmp(b, "null", 4) == 0) {
            *has_null = true;
        } else {
            int c = code_of(d, b, len);
            if (c <= 0 && !(d == SEG_DIM_DISSATISFIED && c == 0)) {
                snprintf(why, wsz, "'%.*s' is not a value of dimension '%s'", (int)len, b, seg_dim_name(d));
                return NULL;
            }
            bits[c / 64] |= 1ULL << (c % 64);
        }
        p = skip_ws(p);
        if (*p != ',') return p;
        p++;
    }
}

static int parse_rule(rule_t *r, const char *s, char *why, size_t wsz)
{
    const char *p = skip_ws(s), *b = p;
    while (*p && *p != ' ' && *p != '\t' && strncmp(p, "->", 2) != 0) p++;
    int d;
    for (d = 0; d < SEG_DIM__COUNT; d++) {
        const char *n = seg_dim_name((seg_dim_t)d);
        if (strlen(n) == (size_t)(p - b) && memcmp(n, b, (size_t)(p - b)) == 0) break;
    }
    if (d == SEG_DIM__COUNT) {
        snprintf(why, wsz, "'%.*s' is not a dimension (lifecycle, value, rfm, dissatisfied)",
                 (int)(p - b), b);
        return -1;
    }
    r->dim = (seg_dim_t)d;
    r->any_from = r->any_to = true;
    p = skip_ws(p);
    if (strncmp(p, "from", 4) == 0 && (p[4] == ' ' || p[4] == '\t')) {
        r->any_from = false;
        p = parse_set(p + 4, r->dim, r->from, &r->from_null, why, wsz);
        if (!p) return -1;
    }
    p = skip_ws(p);
    if (strncmp(p, "->", 2) == 0) {
        r->any_to = false;
        p = parse_set(p + 2, r->dim, r->to, NULL, why, wsz);
        if (!p) return -1;
    }
    p = skip_ws(p);
    if (*p) {
        snprintf(why, wsz, "unexpected '%s'; the form is \"<dimension> [from a,b] [-> x,y]\"", p);
        return -1;
    }
    return 0;
}

seg_routes_t *seg_routes_new(const seg_cfg_t *cfg, char *errstr, size_t errstr_size)
{
    seg_routes_t *rs = calloc(1, sizeof *rs);
    if (!rs) goto oom;
    if (cfg->routes.n) {
        rs->rules = calloc(cfg->routes.n, sizeof *rs->rules);
        if (!rs->rules) goto oom;
    }
    for (unsigned i = 0; i < cfg->routes.n; i++) {
        const seg_cfg_mapentry_t *e = &cfg->routes.e[i];
        rule_t *r = &rs->rules[rs->n];
        char why[256];
        if (parse_rule(r, e->val, why, sizeof why) != 0) {
            char where[600];
            seg_cfg_where(cfg, "routes", e, where, sizeof where);
            snprintf(errstr, errstr_size, "%s: key 'routes.%s': %s", where, e->key, why);
            seg_routes_destroy(rs);
            return NULL;
        }
        snprintf(r->topic, sizeof r->topic, "%s", e->key);
        rs->n++;
    }
    return rs;
oom:
    snprintf(errstr, errstr_size, "out of memory");
    seg_routes_destroy(rs);
    return NULL;
}

void seg_routes_destroy(seg_routes_t *r)
{
    if (!r) return;
    free(r->rules);
    free(r);
}

size_t seg_routes_count(const seg_routes_t *r) { return r->n; }

const char *seg_routes_topic(const seg_routes_t *r, size_t i) { return r->rules[i].topic; }

bool seg_routes_match(const seg_routes_t *rs, size_t i, const seg_transition_t *t)
{
    const rule_t *r = &rs->rules[i];
    if (t->dim != r->dim) return false;
    if (!r->any_to && !(r->to[t->to_code / 64] >> (t->to_code % 64) & 1)) return false;
    if (!r->any_from) {
        if (!t->from) return r->from_null;
        if (!(r->from[t->from_code / 64] >> (t->from_code % 64) & 1)) return false;
    }
    return true;
}
