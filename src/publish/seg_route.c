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

#define CODES 256            /* >= every dimension's value count (rfm: 101, rules: 255) */
#define MAX_VALUES 64        /* texts in a computed rule's list */

typedef struct vlist {
    char  *v[MAX_VALUES];
    size_t n;
} vlist_t;

typedef struct {
    size_t    route;                /* index of its topic in topics */
    int       dim;                  /* a built-in, or -1: the user rule named name */
    char      name[SEG_RULE_NAME_MAX + 1];
    bool      text;                 /* a computed rule: values compared as text */
    bool      any_from, any_to, from_null, to_null;
    uint64_t  from[CODES / 64], to[CODES / 64];
    vlist_t   from_text, to_text;
} rule_t;             /* one filter */

struct seg_routes {
    rule_t *rules;                  /* every filter of every route, in route order */
    size_t  n;
    char  (*topics)[SEG_CFG_MAPKEY_MAX];
    size_t  ntopics;
};

/* What a route's dimension can be: a built-in, or a user rule. */
typedef struct dimref {
    int                dim;        /* built-in, or -1 */
    const char        *name;
    int                nvals;      /* user rule: values, -1 computed */
    const char *const *vals;
} dimref_t;

static int code_of(const dimref_t *d, const char *name, size_t len)
{
    if (d->dim >= 0) {
        for (unsigned c = 0; c < seg_dim_value_count((seg_dim_t)d->dim); c++) {
            const char *n = seg_dim_value_name((seg_dim_t)d->dim, (uint8_t)c);
            if (n && strlen(n) == len && memcmp(n, name, len) == 0) return (int)c;
        }
        return -1;
    }
    for (int k = 0; k < d->nvals; k++)
        if (strlen(d->vals[k]) == len && memcmp(d->vals[k], name, len) == 0) return k + 1;
    return -1;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

/* Parses "a,b,c" up to the end or "->"; sets bits (or texts for a
 * computed rule). has_null: where "null" may stand. Returns the end, or
 * NULL with why. */
static const char *parse_set(const char *p, const dimref_t *d, uint64_t *bits, vlist_t *texts,
                             bool *has_null, char *why, size_t wsz)
{
    for (;;) {
        p = skip_ws(p);
        const char *b = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t' && *p != '|' &&
               strncmp(p, "->", 2) != 0)
            p++;
        size_t len = (size_t)(p - b);
        if (len == 0) {
            snprintf(why, wsz, "expected a value name");
            return NULL;
        }
        if (has_null && len == 4 && memcmp(b, "null", 4) == 0) {
            *has_null = true;
        } else if (d->dim < 0 && d->nvals < 0) {
            if (texts->n == MAX_VALUES) {
                snprintf(why, wsz, "more than %d values", MAX_VALUES);
                return NULL;
            }
            texts->v[texts->n] = strndup(b, len);
            if (!texts->v[texts->n]) {
                snprintf(why, wsz, "out of memory");
                return NULL;
            }
            texts->n++;
        } else {
            int c = code_of(d, b, len);
            /* code 0 is "undefined" for lifecycle/value/rfm, but dissatisfied's "out" */
            if (c < 0 || (d->dim >= 0 && c == 0 && d->dim != SEG_DIM_DISSATISFIED)) {
                snprintf(why, wsz, "'%.*s' is not a value of %s '%s'", (int)len, b,
                         d->dim >= 0 ? "dimension" : "rule", d->name);
                return NULL;
            }
            bits[c / 64] |= 1ULL << (c % 64);
        }
        p = skip_ws(p);
        if (*p != ',') return p;
        p++;
    }
}

/* Parses one filter of s, up to its end or a '|', which *end points at. */
static int parse_rule(rule_t *r, const char *s, const seg_ruleset_t *rules, const char **end,
                      char *why, size_t wsz)
{
    const char *p = skip_ws(s), *b = p;
    while (*p && *p != ' ' && *p != '\t' && *p != '|' && strncmp(p, "->", 2) != 0) p++;
    size_t len = (size_t)(p - b);
    if (len == 0) {
        snprintf(why, wsz, "expected a dimension");
        return -1;
    }
    dimref_t d = { .dim = -1 };
    for (int k = 0; k < SEG_DIM__COUNT; k++) {
        const char *n = seg_dim_name((seg_dim_t)k);
        if (strlen(n) == len && memcmp(n, b, len) == 0) {
            d.dim = k;
            d.name = n;
        }
    }
    int ri = rules && d.dim < 0 ? seg_ruleset_find(rules, b, len) : -1;
    if (d.dim < 0 && ri < 0) {
        snprintf(why, wsz, "'%.*s' is not a dimension (lifecycle, value, rfm, dissatisfied, "
                 "or a rule of segments.rules)", (int)len, b);
        return -1;
    }
    if (ri >= 0) {
        d.name = seg_ruleset_name(rules, (uint32_t)ri);
        d.nvals = seg_ruleset_values(rules, (uint32_t)ri, &d.vals);
        snprintf(r->name, sizeof r->name, "%s", d.name);
        r->text = d.nvals < 0;
    }
    r->dim = d.dim;
    r->any_from = r->any_to = true;
    p = skip_ws(p);
    if (strncmp(p, "from", 4) == 0 && (p[4] == ' ' || p[4] == '\t')) {
        r->any_from = false;
        p = parse_set(p + 4, &d, r->from, &r->from_text, &r->from_null, why, wsz);
        if (!p) return -1;
    }
    p = skip_ws(p);
    if (strncmp(p, "->", 2) == 0) {
        r->any_to = false;
        p = parse_set(p + 2, &d, r->to, &r->to_text, d.dim < 0 ? &r->to_null : NULL, why, wsz);
        if (!p) return -1;
    }
    p = skip_ws(p);
    if (*p && *p != '|') {
        snprintf(why, wsz, "unexpected '%s'; the form is \"<dimension> [from a,b] [-> x,y]\" "
                 "with alternatives separated by '|'", p);
        return -1;
    }
    *end = p;
    return 0;
}

static void vlist_free(vlist_t *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    l->n = 0;
}

static bool in_texts(const vlist_t *l, const char *v)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], v) == 0) return true;
    return false;
}

/* Number of '|'-separated filters in a route's text. */
static size_t count_alts(const char *s)
{
    size_t n = 1;
    for (; *s; s++) n += *s == '|';
    return n;
}

seg_routes_t *seg_routes_new(const seg_cfg_t *cfg, const seg_ruleset_t *rules,
                             char *errstr, size_t errstr_size)
{
    seg_routes_t *rs = calloc(1, sizeof *rs);
    if (!rs) goto oom;
    size_t nf = 0;
    for (unsigned i = 0; i < cfg->routes.n; i++) nf += count_alts(cfg->routes.e[i].val);
    if (cfg->routes.n) {
        rs->rules = calloc(nf, sizeof *rs->rules);
        rs->topics = calloc(cfg->routes.n, sizeof *rs->topics);
        if (!rs->rules || !rs->topics) goto oom;
    }
    for (unsigned i = 0; i < cfg->routes.n; i++) {
        const seg_cfg_mapentry_t *e = &cfg->routes.e[i];
        const char *p = e->val;
        for (;;) {
            rule_t *r = &rs->rules[rs->n];
            char why[256];
            const char *end = NULL;
            if (parse_rule(r, p, rules, &end, why, sizeof why) != 0) {
                vlist_free(&r->from_text);
                vlist_free(&r->to_text);
                char where[600];
                seg_cfg_where(cfg, "routes", e, where, sizeof where);
                snprintf(errstr, errstr_size, "%s: key 'routes.%s': %s", where, e->key, why);
                seg_routes_destroy(rs);
                return NULL;
            }
            r->route = rs->ntopics;
            rs->n++;
            if (*end != '|') break;
            p = end + 1;
        }
        snprintf(rs->topics[rs->ntopics++], sizeof rs->topics[0], "%s", e->key);
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
    for (size_t i = 0; i < r->n; i++) {
        vlist_free(&r->rules[i].from_text);
        vlist_free(&r->rules[i].to_text);
    }
    free(r->rules);
    free(r->topics);
    free(r);
}

size_t seg_routes_count(const seg_routes_t *r) { return r->ntopics; }

const char *seg_routes_topic(const seg_routes_t *r, size_t i) { return r->topics[i]; }

static bool filter_match(const rule_t *r, const seg_transition_t *t)
{
    if (r->dim >= 0) {
        if ((int)t->dim != r->dim) return false;
    } else if ((unsigned)t->dim < SEG_DIM__COUNT || strcmp(t->dim_name, r->name) != 0) {
        return false;
    }
    if (!r->any_to) {
        if (!t->to) {
            if (!r->to_null) return false;
        } else if (r->text ? !in_texts(&r->to_text, t->to)
                           : !(r->to[t->to_code / 64] >> (t->to_code % 64) & 1)) {
            return false;
        }
    }
    if (!r->any_from) {
        if (!t->from) return r->from_null;
        if (r->text ? !in_texts(&r->from_text, t->from)
                    : !(r->from[t->from_code / 64] >> (t->from_code % 64) & 1))
            return false;
    }
    return true;
}

bool seg_routes_match(const seg_routes_t *rs, size_t i, const seg_transition_t *t)
{
    for (size_t k = 0; k < rs->n; k++)
        if (rs->rules[k].route == i && filter_match(&rs->rules[k], t)) return true;
    return false;
}
