/*
 * seg_rule_yaml: segments.rules, segments.retain and segments.predict out
 * of the configuration file.
 *
 * seg_cfg reads every other key of the same file into a plain struct and
 * leaves these three sections alone (they are trees of user-chosen names,
 * not schema rows; seg_cfg.h "foreign"). Here the file is loaded as a
 * libyaml document, whose nodes carry their start and end marks, so each
 * expression keeps where it stands: for a plain or single-quoted scalar,
 * the file's own bytes are handed to the lexer, so an error points at the
 * right line and column even in a folded multi-line expression.
 */
#include "rule/seg_rule_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct yl {
    yaml_document_t doc;
    const char     *name;
    const char     *buf;
    size_t          len;
    seg_rules_def_t *def;
    char           *err;
    size_t          errsz;
} yl_t;

static int fail(yl_t *y, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(yl_t *y, const yaml_node_t *n, const char *fmt, ...)
{
    char why[RULE_ERR];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(y->err, y->errsz, "%s:%zu:%zu: %s", y->name, n ? n->start_mark.line + 1 : 1,
             n ? n->start_mark.column + 1 : 1, why);
    return -1;
}

static yaml_node_t *node(yl_t *y, int id) { return yaml_document_get_node(&y->doc, id); }

static const char *scalar(const yaml_node_t *n, size_t *len)
{
    *len = n->data.scalar.length;
    return (const char *)n->data.scalar.value;
}

static int key_is(const yaml_node_t *k, const char *s)
{
    return k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(s) &&
           memcmp(k->data.scalar.value, s, k->data.scalar.length) == 0;
}

static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    size_t l;
    const char *v = scalar(n, &l);
    return l == 0 || (l == 1 && v[0] == '~') || (l == 4 && !memcmp(v, "null", 4));
}

/* A scalar's text as the owner of the expression sees it. */
static char *dup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* libyaml counts marks in characters; the byte offset of character i. */
static size_t byte_at(const yl_t *y, size_t chars)
{
    size_t b = 0, c = 0;
    while (b < y->len && c < chars) {
        b++;
        while (b < y->len && ((unsigned char)y->buf[b] & 0xC0) == 0x80) b++;
        c++;
    }
    return b;
}

static int text_of(yl_t *y, const yaml_node_t *n, const char *what, seg_rule_text_t *t)
{
    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return fail(y, n, "%s: expected an expression, got %s", what,
                    n->type == YAML_MAPPING_NODE ? "a mapping"
                    : n->type == YAML_SEQUENCE_NODE ? "a list (an expression starting with [ "
                                                      "must be wrapped in parentheses)"
                                                    : "no value");
    size_t len;
    const char *v = scalar(n, &len);
    size_t s = byte_at(y, n->start_mark.index), e = byte_at(y, n->end_mark.index);
    memset(t, 0, sizeof *t);
    t->line = (uint32_t)n->start_mark.line + 1;
    t->col = (uint32_t)n->start_mark.column + 1;
    switch (n->data.scalar.style) {
    case YAML_PLAIN_SCALAR_STYLE:
        /* The raw bytes: folding a plain scalar only turns line breaks and
         * indentation into spaces, which the lexer skips anyway. */
        if (e > y->len || e < s) goto flat;
        t->text = dup(y->buf + s, e - s);
        t->len = (uint32_t)(e - s);
        t->mode = SRC_RAW;
        break;
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
        if (e > y->len || e < s + 2) goto flat;
        t->text = dup(y->buf + s + 1, e - s - 2);
        t->len = (uint32_t)(e - s - 2);
        t->col++;
        t->mode = SRC_RAW;
        break;
    case YAML_LITERAL_SCALAR_STYLE:
    case YAML_FOLDED_SCALAR_STYLE: {
        /* Content starts on the line after the indicator, indented. */
        size_t i = s;
        while (i < y->len && y->buf[i] != '\n') i++;
        while (i < y->len && y->buf[i] == '\n') {   /* blank lines first */
            i++;
            t->line++;
        }
        uint32_t ind = 0;
        while (i + ind < y->len && y->buf[i + ind] == ' ') ind++;
        t->text = dup(v, len);
        t->len = (uint32_t)len;
        t->indent = ind;
        t->col = ind + 1;
        t->mode = n->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ? SRC_BLOCK : SRC_FLAT;
        break;
    }
    default:
    flat:
        t->text = dup(v, len);
        t->len = (uint32_t)len;
        if (n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE) t->col++;
        t->mode = SRC_FLAT;
        break;
    }
    if (!t->text) return fail(y, n, "out of memory");
    if (t->len > SEG_RULE_EXPR_MAX)
        return fail(y, n, "%s: the expression is longer than %d bytes", what, SEG_RULE_EXPR_MAX);
    return 0;
}

static int plain_label(yl_t *y, const yaml_node_t *n, const char *what, char **out)
{
    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return fail(y, n, "%s: expected a label, got %s", what,
                    n->type == YAML_SCALAR_NODE ? "no value" : "a collection");
    size_t len;
    const char *v = scalar(n, &len);
    if (memchr(v, '\0', len)) return fail(y, n, "%s: a label must not contain NUL", what);
    *out = dup(v, len);
    return *out ? 0 : fail(y, n, "out of memory");
}

/* ---- rules ---------------------------------------------------------------------------- */

static int load_rule(yl_t *y, const yaml_node_t *kn, const yaml_node_t *vn, seg_rule_spec_t *r)
{
    size_t nl;
    const char *name = scalar(kn, &nl);
    r->name = dup(name, memchr(name, '\0', nl) ? strlen(name) : nl);
    r->line = (uint32_t)kn->start_mark.line + 1;
    r->col = (uint32_t)kn->start_mark.column + 1;
    if (!r->name) return fail(y, kn, "out of memory");
    char what[128];
    snprintf(what, sizeof what, "rule '%.64s'", r->name);
    if (vn->type != YAML_MAPPING_NODE)
        return fail(y, vn, "%s: expected a mapping with when:, cases: or value:", what);
    const yaml_node_t *seen[6] = { 0 };
    static const char *const keys[] = { "when", "cases", "value", "where", "else",
                                        "description" };
    for (yaml_node_pair_t *p = vn->data.mapping.pairs.start; p < vn->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = node(y, p->key), *v = node(y, p->value);
        int which = -1;
        for (int i = 0; i < 6; i++)
            if (key_is(k, keys[i])) which = i;
        if (which < 0) {
            size_t l;
            const char *ks = k->type == YAML_SCALAR_NODE ? scalar(k, &l) : (l = 1, "?");
            return fail(y, k, "%s: unknown key '%.*s' (when, cases, else, value, where, "
                        "description)", what, (int)(l > 40 ? 40 : l), ks);
        }
        if (seen[which])
            return fail(y, k, "%s: %s appears twice (first at line %zu)", what, keys[which],
                        seen[which]->start_mark.line + 1);
        seen[which] = k;
        char sub[160];
        snprintf(sub, sizeof sub, "%s: %s", what, keys[which]);
        switch (which) {
        case 0:
        case 2:
            if (r->form)
                return fail(y, k, "%s: has both %s and %s; a rule is one of when:, cases:, "
                            "value:", what, r->form == SEG_RULE_WHEN ? "when" : r->form ==
                            SEG_RULE_CASES ? "cases" : "value", keys[which]);
            r->form = which == 0 ? SEG_RULE_WHEN : SEG_RULE_VALUE;
            if (text_of(y, v, sub, &r->body)) return -1;
            break;
        case 1: {
            if (r->form)
                return fail(y, k, "%s: has both %s and cases; a rule is one of when:, cases:, "
                            "value:", what, r->form == SEG_RULE_WHEN ? "when" : "value");
            r->form = SEG_RULE_CASES;
            if (v->type != YAML_SEQUENCE_NODE)
                return fail(y, v, "%s: expected a list of '- LABEL: condition'", sub);
            size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            if (n == 0) return fail(y, v, "%s: the list is empty", sub);
            if (n > 255) return fail(y, v, "%s: more than 255 cases", sub);
            r->cases = calloc(n, sizeof *r->cases);
            if (!r->cases) return fail(y, v, "out of memory");
            for (size_t i = 0; i < n; i++) {
                const yaml_node_t *it = node(y, v->data.sequence.items.start[i]);
                if (it->type != YAML_MAPPING_NODE ||
                    it->data.mapping.pairs.top - it->data.mapping.pairs.start != 1)
                    return fail(y, it, "%s: case %zu must be one '- LABEL: condition'", sub, i + 1);
                const yaml_node_t *lk = node(y, it->data.mapping.pairs.start->key);
                const yaml_node_t *lv = node(y, it->data.mapping.pairs.start->value);
                seg_rule_case_t *c = &r->cases[r->n_cases++];
                if (plain_label(y, lk, sub, &c->label)) return -1;
                c->line = (uint32_t)lk->start_mark.line + 1;
                c->col = (uint32_t)lk->start_mark.column + 1;
                char cs[224];
                snprintf(cs, sizeof cs, "%s: case '%.64s'", what, c->label);
                if (text_of(y, lv, cs, &c->cond)) return -1;
            }
            break;
        }
        case 3:
            if (text_of(y, v, sub, &r->where)) return -1;
            break;
        case 4:
            if (plain_label(y, v, sub, &r->else_label)) return -1;
            break;
        default:
            if (v->type != YAML_SCALAR_NODE) return fail(y, v, "%s: expected text", sub);
            size_t l;
            const char *d = scalar(v, &l);
            r->description = dup(d, l);
            if (!r->description) return fail(y, v, "out of memory");
            break;
        }
    }
    if (!r->form) return fail(y, vn, "%s: needs one of when:, cases:, value:", what);
    if (seen[4] && r->form != SEG_RULE_CASES)
        return fail(y, seen[4], "%s: else: goes with cases:", what);
    return 0;
}

static int load_rules(yl_t *y, const yaml_node_t *n)
{
    if (is_null(n)) return 0;
    if (n->type != YAML_MAPPING_NODE)
        return fail(y, n, "key 'segments.rules': expected a mapping of rule names");
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (cnt > SEG_RULES_MAX)
        return fail(y, n, "key 'segments.rules': more than %d rules", SEG_RULES_MAX);
    y->def->rules = calloc(cnt ? cnt : 1, sizeof *y->def->rules);
    if (!y->def->rules) return fail(y, n, "out of memory");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = node(y, p->key);
        if (k->type != YAML_SCALAR_NODE)
            return fail(y, k, "key 'segments.rules': a rule name must be a plain name");
        for (uint32_t i = 0; i < y->def->n_rules; i++) {
            size_t l;
            const char *nm = scalar(k, &l);
            if (strlen(y->def->rules[i].name) == l && !memcmp(y->def->rules[i].name, nm, l))
                return fail(y, k, "rule '%.64s': defined twice (first at line %u)",
                            y->def->rules[i].name, y->def->rules[i].line);
        }
        seg_rule_spec_t *r = &y->def->rules[y->def->n_rules++];
        if (load_rule(y, k, node(y, p->value), r)) return -1;
    }
    return 0;
}

/* ---- retain, predict ---------------------------------------------------------------- */

/* "<int><s|m|h|d|w>" or "0". -1 if it is not one. */
static int64_t duration(const char *s, size_t n)
{
    if (n == 1 && s[0] == '0') return 0;
    if (n < 2) return -1;
    int64_t v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > 1000000000LL) return -1;
        v = v * 10 + (s[i] - '0');
    }
    switch (s[n - 1]) {
    case 's': return v;
    case 'm': return v * 60;
    case 'h': return v * 3600;
    case 'd': return v * 86400;
    case 'w': return v * 604800;
    default:  return -1;
    }
}

static int sel_index(const char *s, size_t n)
{
    for (unsigned i = 0; i < SEG_RULE_SELECTORS; i++) {
        const char *nm = rule_sel_name(i);
        if (strlen(nm) == n && memcmp(nm, s, n) == 0) return (int)i;
    }
    return -1;
}

static int load_retain(yl_t *y, const yaml_node_t *n)
{
    seg_rules_def_t *d = y->def;
    if (is_null(n)) return 0;
    if (n->type != YAML_MAPPING_NODE)
        return fail(y, n, "key 'segments.retain': expected a mapping (selector: duration, "
                    "attrs: [...], since: [...])");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = node(y, p->key), *v = node(y, p->value);
        size_t kl, vl;
        if (k->type != YAML_SCALAR_NODE) return fail(y, k, "key 'segments.retain': bad key");
        const char *ks = scalar(k, &kl);
        if (key_is(k, "attrs") || key_is(k, "since")) {
            bool attrs = key_is(k, "attrs");
            if (v->type != YAML_SEQUENCE_NODE)
                return fail(y, v, "key 'segments.retain.%s': expected a list", ks);
            for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                const yaml_node_t *e = node(y, *it);
                if (e->type != YAML_SCALAR_NODE || is_null(e))
                    return fail(y, e, "key 'segments.retain.%s': expected names", ks);
                const char *es = scalar(e, &vl);
                if (attrs) {
                    if (vl == 0 || vl > 128 || memchr(es, '\0', vl))
                        return fail(y, e, "key 'segments.retain.attrs': a key is 1 to 128 bytes");
                    char **na = realloc(d->retain_attrs, (d->n_retain_attrs + 1) * sizeof *na);
                    if (!na) return fail(y, e, "out of memory");
                    d->retain_attrs = na;
                    if (!(na[d->n_retain_attrs] = dup(es, vl))) return fail(y, e, "out of memory");
                    d->n_retain_attrs++;
                } else {
                    int sel = sel_index(es, vl);
                    if (sel < 0)
                        return fail(y, e, "key 'segments.retain.since': unknown selector '%.*s' "
                                    "(purchase, refund, contact, contact.KIND)",
                                    (int)(vl > 40 ? 40 : vl), es);
                    d->retain_since[sel] = true;
                }
            }
            continue;
        }
        int sel = sel_index(ks, kl);
        if (sel < 0)
            return fail(y, k, "key 'segments.retain.%.*s': unknown selector (purchase, refund, "
                        "contact, contact.visit, contact.inquiry, contact.call, "
                        "contact.complaint, contact.support, contact.feedback; or attrs, since)",
                        (int)(kl > 40 ? 40 : kl), ks);
        if (v->type != YAML_SCALAR_NODE)
            return fail(y, v, "key 'segments.retain.%s': expected a duration", ks);
        const char *vs = scalar(v, &vl);
        int64_t dur = duration(vs, vl);
        if (dur < 0)
            return fail(y, v, "key 'segments.retain.%s': expected a duration such as 90d, got "
                        "'%.*s'", ks, (int)(vl > 40 ? 40 : vl), vs);
        d->retain[sel] = dur;
    }
    return 0;
}

/* A finite number > 0, or >= 0 with zero_ok. */
static int number(yl_t *y, const yaml_node_t *v, const char *key, bool zero_ok, double *out)
{
    size_t l;
    if (v->type != YAML_SCALAR_NODE) return fail(y, v, "key '%s': expected a number", key);
    const char *s = scalar(v, &l);
    char buf[64];
    if (l == 0 || l >= sizeof buf) return fail(y, v, "key '%s': expected a number", key);
    memcpy(buf, s, l);
    buf[l] = '\0';
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (*end || errno || !isfinite(d))
        return fail(y, v, "key '%s': expected a number, got '%s'", key, buf);
    if (d < 0 || (d == 0 && !zero_ok))
        return fail(y, v, "key '%s': must be %s 0, got %s", key, zero_ok ? "at least" : "more than",
                    buf);
    *out = d;
    return 0;
}

static int load_params(yl_t *y, const yaml_node_t *n, const char *sect, const char *const *names,
                       double *const *out, int count)
{
    char key[96];
    if (n->type != YAML_MAPPING_NODE)
        return fail(y, n, "key 'segments.predict.%s': expected a mapping", sect);
    int got = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = node(y, p->key);
        int which = -1;
        for (int i = 0; i < count; i++)
            if (key_is(k, names[i])) which = i;
        size_t kl;
        const char *ks = k->type == YAML_SCALAR_NODE ? scalar(k, &kl) : (kl = 1, "?");
        if (which < 0)
            return fail(y, k, "key 'segments.predict.%s.%.*s': unknown key", sect,
                        (int)(kl > 40 ? 40 : kl), ks);
        snprintf(key, sizeof key, "segments.predict.%s.%s", sect, names[which]);
        if (number(y, node(y, p->value), key, false, out[which])) return -1;
        got |= 1 << which;
    }
    if (got != (1 << count) - 1)
        return fail(y, n, "key 'segments.predict.%s': needs all of its parameters (%s%s%s%s%s%s%s)",
                    sect, names[0], count > 1 ? ", " : "", count > 1 ? names[1] : "",
                    count > 2 ? ", " : "", count > 2 ? names[2] : "", count > 3 ? ", " : "",
                    count > 3 ? names[3] : "");
    return 0;
}

static int load_predict(yl_t *y, const yaml_node_t *n)
{
    seg_rule_predict_t *pp = &y->def->predict;
    if (is_null(n)) return 0;
    if (n->type != YAML_MAPPING_NODE)
        return fail(y, n, "key 'segments.predict': expected a mapping");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = node(y, p->key), *v = node(y, p->value);
        size_t l;
        if (key_is(k, "bgnbd")) {
            static const char *const nm[] = { "r", "alpha", "a", "b" };
            double *const out[] = { &pp->r, &pp->alpha, &pp->a, &pp->b };
            if (load_params(y, v, "bgnbd", nm, out, 4)) return -1;
            pp->has_bgnbd = true;
        } else if (key_is(k, "gamma_gamma")) {
            static const char *const nm[] = { "p", "q", "gamma" };
            double *const out[] = { &pp->p, &pp->q, &pp->gamma };
            if (load_params(y, v, "gamma_gamma", nm, out, 3)) return -1;
            if (pp->q <= 1)
                return fail(y, v, "key 'segments.predict.gamma_gamma.q': must be greater than 1 "
                            "(the expected spend is finite only then)");
            pp->has_gg = true;
        } else if (key_is(k, "unit") || key_is(k, "horizon")) {
            const char *s = v->type == YAML_SCALAR_NODE ? scalar(v, &l) : (l = 0, "");
            int64_t d = duration(s, l);
            if (d <= 0)
                return fail(y, v, "key 'segments.predict.%s': expected a duration such as 7d",
                            key_is(k, "unit") ? "unit" : "horizon");
            if (key_is(k, "unit")) pp->unit = d;
            else pp->horizon = d;
        } else if (key_is(k, "discount_rate")) {
            if (number(y, v, "segments.predict.discount_rate", true, &pp->discount_rate)) return -1;
        } else if (key_is(k, "fit")) {
            /* What `segd fit` reports about the fit: kept in the file for
             * people, not read. */
        } else {
            const char *ks = k->type == YAML_SCALAR_NODE ? scalar(k, &l) : (l = 1, "?");
            return fail(y, k, "key 'segments.predict.%.*s': unknown key (bgnbd, gamma_gamma, "
                        "unit, horizon, discount_rate, fit)", (int)(l > 40 ? 40 : l), ks);
        }
    }
    return 0;
}

/* output.features as a list (seg_cfg reads the boolean form): names of
 * built-in features or expressions, up to 32. */
static int load_outf(yl_t *y, const yaml_node_t *n)
{
    if (n->type != YAML_SEQUENCE_NODE) return 0;
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (cnt > 16) return fail(y, n, "key 'output.features': at most 16 features");
    y->def->outf = calloc(cnt + 1, sizeof *y->def->outf);
    if (!y->def->outf) return fail(y, n, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        const yaml_node_t *v = node(y, n->data.sequence.items.start[i]);
        char what[64];
        snprintf(what, sizeof what, "output.features item %zu", i + 1);
        if (text_of(y, v, what, &y->def->outf[i])) return -1;
        y->def->n_outf++;
        if (y->def->outf[i].len > 128)
            return fail(y, v, "%s: at most 128 bytes (it is also the key it prints under)", what);
    }
    return 0;
}

/* ---- the document ------------------------------------------------------------------- */

seg_rules_def_t *seg_rules_def_empty(void)
{
    seg_rules_def_t *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->predict.unit = 7 * 86400;
    d->predict.horizon = 365 * 86400;
    return d;
}

seg_rules_def_t *seg_rules_def_load_buffer(const char *name, const char *buf, size_t len,
                                           char *errstr, size_t errstr_size)
{
    yaml_parser_t parser;
    yl_t y = { .name = name, .buf = buf, .len = len, .err = errstr, .errsz = errstr_size };
    y.def = seg_rules_def_empty();
    if (!y.def || !(y.def->file = dup(name, strlen(name)))) {
        snprintf(errstr, errstr_size, "%s: out of memory", name);
        seg_rules_def_destroy(y.def);
        return NULL;
    }
    if (!yaml_parser_initialize(&parser)) {
        snprintf(errstr, errstr_size, "%s: out of memory", name);
        seg_rules_def_destroy(y.def);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    int rc = -1, loaded = 0;
    if (!yaml_parser_load(&parser, &y.doc)) {
        /* seg_cfg reads the same file first and reports syntax errors with
         * more care; this is the fallback for callers that skip it. */
        snprintf(errstr, errstr_size, "%s:%zu:%zu: YAML syntax error: %s", name,
                 parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                 parser.problem ? parser.problem : "unknown");
        goto out;
    }
    loaded = 1;
    const yaml_node_t *root = yaml_document_get_root_node(&y.doc);
    rc = 0;
    if (!root || root->type != YAML_MAPPING_NODE) goto out;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top && !rc; p++) {
        const yaml_node_t *seg = node(&y, p->value);
        if (key_is(node(&y, p->key), "output") && seg->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *q = seg->data.mapping.pairs.start;
                 q < seg->data.mapping.pairs.top && !rc; q++)
                if (key_is(node(&y, q->key), "features")) rc = load_outf(&y, node(&y, q->value));
            continue;
        }
        if (!key_is(node(&y, p->key), "segments") || seg->type != YAML_MAPPING_NODE) continue;
        for (yaml_node_pair_t *q = seg->data.mapping.pairs.start; q < seg->data.mapping.pairs.top && !rc; q++) {
            const yaml_node_t *k = node(&y, q->key), *v = node(&y, q->value);
            if (key_is(k, "rules")) rc = load_rules(&y, v);
            else if (key_is(k, "retain")) rc = load_retain(&y, v);
            else if (key_is(k, "predict")) rc = load_predict(&y, v);
        }
    }
out:
    if (loaded) yaml_document_delete(&y.doc);
    yaml_parser_delete(&parser);
    if (rc) {
        seg_rules_def_destroy(y.def);
        return NULL;
    }
    return y.def;
}

seg_rules_def_t *seg_rules_def_load_file(const char *path, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errstr, errstr_size, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= (16u << 20)) {
                snprintf(errstr, errstr_size, "%s: file too large for a config", path);
                goto fail;
            }
            cap = cap ? cap * 2 : 4096;
            char *n = realloc(buf, cap);
            if (!n) {
                snprintf(errstr, errstr_size, "%s: out of memory", path);
                goto fail;
            }
            buf = n;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        snprintf(errstr, errstr_size, "%s: read error", path);
        goto fail;
    }
    fclose(f);
    seg_rules_def_t *d = seg_rules_def_load_buffer(path, buf, len, errstr, errstr_size);
    free(buf);
    return d;
fail:
    fclose(f);
    free(buf);
    return NULL;
}
