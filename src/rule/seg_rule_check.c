/*
 * seg_rule_check: what a parsed expression means, decided once at load.
 *
 * Three passes over one rule's tree:
 *   1. names and types, bottom-up: every name becomes a feature, a window,
 *      an attribute, a built-in dimension or a rule above; every operator
 *      is checked against docs/rules.md's table; constant subtrees are
 *      folded (with the evaluator's own value operations);
 *   2. time, top-down: a time-dependent feature (recency, age, since(),
 *      the predictions) may stand only where segd can know the instants it
 *      changes the result at: compared with a constant, first in tier(),
 *      left of in [...], inside has(). Each such place adds its candidate
 *      instants to the rule set;
 *   3. dependencies: what events or changes can move the rule at all, so
 *      an event re-evaluates only the rules it can affect.
 * Errors name the token (its offset) and are final: the first one wins.
 */
#include "rule/seg_rule_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segment/seg_dims.h"

int rule_fail(build_t *b, uint32_t off, const char *fmt, ...)
{
    char why[RULE_ERR];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    rsrc_fail(b->cur_src, off, b->err, b->errsz, "%s", why);
    return -1;
}

static const char *type_name(int t)
{
    switch (t) {
    case TY_BOOL: return "a condition (true/false)";
    case TY_NUM:  return "a number";
    case TY_DUR:  return "a duration";
    case TY_STR:  return "a string";
    default:      return "an attribute (any type)";
    }
}

static int name_is(const node_t *n, const char *s)
{
    return n->name_len == strlen(s) && memcmp(n->name, s, n->name_len) == 0;
}

/* ---- selectors ---------------------------------------------------------------- */

static const char *const sel_names[SEL__COUNT] = {
    "purchase", "refund", "contact.visit", "contact.inquiry", "contact.complaint",
    "contact.support", "contact.feedback", "contact.call", "contact",
};

const char *rule_sel_name(unsigned sel) { return sel < SEL__COUNT ? sel_names[sel] : "?"; }

int rule_stream_of(int type, int kind)
{
    switch (type) {
    case SEG_EV_PURCHASE: return ST_PURCHASE;
    case SEG_EV_REFUND:   return ST_REFUND;
    case SEG_EV_CONTACT:
        switch (kind) {
        case SEG_CONTACT_VISIT:     return ST_VISIT;
        case SEG_CONTACT_INQUIRY:   return ST_INQUIRY;
        case SEG_CONTACT_COMPLAINT: return ST_COMPLAINT;
        case SEG_CONTACT_SUPPORT:   return ST_SUPPORT;
        case SEG_CONTACT_FEEDBACK:  return ST_FEEDBACK;
        case SEG_CONTACT_CALL:      return ST_CALL;
        default:                    return -1;
        }
    default:
        return -1;
    }
}

/* The selector an argument names, or -1 after reporting why not. */
static int selector(build_t *b, const node_t *n, const char *fn)
{
    if (n->kind == N_NAME) {
        if (name_is(n, "purchase")) return SEL_PURCHASE;
        if (name_is(n, "refund")) return SEL_REFUND;
        if (name_is(n, "contact")) return SEL_CONTACT;
    } else if (n->kind == N_SEL) {
        if (n->name_len > 8 && memcmp(n->name, "contact.", 8) == 0) {
            for (int s = SEL_VISIT; s <= SEL_CALL; s++)
                if (strlen(sel_names[s]) == n->name_len &&
                    memcmp(sel_names[s], n->name, n->name_len) == 0)
                    return s;
            return rule_fail(b, n->off + 8, "unknown contact kind '%.*s' (visit, inquiry, "
                             "call, complaint, support, feedback)",
                             (int)(n->name_len - 8 > 40 ? 40 : n->name_len - 8), n->name + 8);
        }
        return rule_fail(b, n->off, "'%.*s' is not a selector: only contact has kinds, as "
                         "in contact.visit", (int)(n->name_len > 40 ? 40 : n->name_len), n->name);
    }
    return rule_fail(b, n->off, "%s() needs a selector first: purchase, refund, contact or "
                     "contact.KIND", fn);
}

/* ---- folding -------------------------------------------------------------------- */

static int fold_value(build_t *b, node_t *n, rval_t v)
{
    if (v.t == RV_STR) {
        char *s = arena_strdup(b->ar, v.u.s, v.len);
        if (!s) return rule_fail(b, n->off, "out of memory");
        v.u.s = s;
    }
    n->kind = N_LIT;
    n->v = v;
    n->is_const = true;
    n->a = n->b = NULL;
    n->args = NULL;
    n->nargs = 0;
    return 0;
}

/* A constant expression's value: the tree is folded bottom-up, so a
 * constant node is a literal by now. */
static rval_t const_of(const node_t *n) { return n->v; }

static int lit_type(rval_t v)
{
    switch (v.t) {
    case RV_BOOL: return TY_BOOL;
    case RV_DEC:
    case RV_REAL: return TY_NUM;
    case RV_DUR:  return TY_DUR;
    case RV_STR:  return TY_STR;
    default:      return TY_ANY;   /* an absent constant (1 / 0): compares false */
    }
}

/* ---- names ---------------------------------------------------------------------- */

static int dim_of(const node_t *n)
{
    for (int d = 0; d < SEG_DIM__COUNT; d++)
        if (name_is(n, seg_dim_name((seg_dim_t)d))) return d;
    return -1;
}

static bool dim_enabled(const seg_segcfg_t *s, int d)
{
    switch (d) {
    case SEG_DIM_LIFECYCLE:    return s->lifecycle.enabled;
    case SEG_DIM_VALUE:        return s->value.enabled;
    case SEG_DIM_RFM:          return s->rfm.enabled;
    default:                   return s->dissatisfied.enabled;
    }
}

static int rule_index(const build_t *b, const node_t *n)
{
    for (uint32_t i = 0; i < b->def->n_rules; i++)
        if (strlen(b->def->rules[i].name) == n->name_len &&
            memcmp(b->def->rules[i].name, n->name, n->name_len) == 0)
            return (int)i;
    return -1;
}

static const char *const functions =
    "count, sum, since, attr, has, if, tier, expected_purchases, clv";

static int need_predict(build_t *b, const node_t *n, bool gg)
{
    const seg_rule_predict_t *p = &b->rs->def->predict;
    if (!p->has_bgnbd || (gg && !p->has_gg))
        return rule_fail(b, n->off, "'%.*s' needs the model parameters in segments.predict "
                         "(%s; `segd fit` prints them)", (int)n->name_len, n->name,
                         gg ? "bgnbd and gamma_gamma" : "bgnbd");
    return 0;
}

static int resolve_name(build_t *b, node_t *n)
{
    int r = rule_index(b, n);
    if (b->outf && (r >= 0 || dim_of(n) >= 0))
        return rule_fail(b, n->off, "'%.*s' is a segment; output.features lists features "
                         "(count, sum, recency, since, attr, the predictions, ...), which "
                         "the transition's from and to already complement",
                         (int)n->name_len, n->name);
    if (r >= 0) {
        if ((uint32_t)r == b->cur_rule)
            return rule_fail(b, n->off, "a rule cannot read its own value");
        if ((uint32_t)r > b->cur_rule)
            return rule_fail(b, n->off, "'%s' is a rule defined further down (line %u); a "
                             "rule reads only rules above it", b->def->rules[r].name,
                             b->def->rules[r].line);
        const crule_t *cr = &b->rs->rules[r];
        n->kind = N_RULE;
        n->idx = r;
        n->type = cr->form == FORM_VALUE ? cr->value_type : TY_STR;
        return 0;
    }
    int d = dim_of(n);
    if (d >= 0) {
        if (!dim_enabled(&b->rs->seg, d))
            return rule_fail(b, n->off, "'%s' is a built-in dimension that is switched off "
                             "(segments.%s.enabled: false)", seg_dim_name((seg_dim_t)d),
                             seg_dim_name((seg_dim_t)d));
        n->kind = N_DIM;
        n->idx = d;
        n->type = TY_STR;
        b->rs->uses_dims = true;
        return 0;
    }
    feat_t f = { 0 };
    if (name_is(n, "recency")) f.kind = FT_RECENCY;
    else if (name_is(n, "age")) f.kind = FT_AGE;
    else if (name_is(n, "p_alive")) f.kind = FT_P_ALIVE;
    else if (name_is(n, "expected_spend")) f.kind = FT_SPEND;
    if (f.kind) {
        if ((f.kind == FT_P_ALIVE || f.kind == FT_SPEND) && need_predict(b, n, f.kind == FT_SPEND))
            return -1;
        int idx = rule_intern_feat(b, f);
        if (idx < 0) return rule_fail(b, n->off, "out of memory");
        n->kind = N_FEAT;
        n->idx = idx;
        n->type = f.kind == FT_RECENCY || f.kind == FT_AGE ? TY_DUR : TY_NUM;
        n->is_time = f.kind != FT_SPEND;
        return 0;
    }
    if (name_is(n, "purchase") || name_is(n, "refund") || name_is(n, "contact"))
        return rule_fail(b, n->off, "'%.*s' is a selector: it is only an argument of count(), "
                         "sum() and since()", (int)n->name_len, n->name);
    static const char *const fns[] = { "count", "sum", "since", "attr", "has", "if", "tier",
                                       "expected_purchases", "clv" };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        if (name_is(n, fns[i]))
            return rule_fail(b, n->off, "'%s' is a function: call it with (...)", fns[i]);
    return rule_fail(b, n->off, "unknown name '%.*s'", (int)(n->name_len > 64 ? 64 : n->name_len),
                     n->name);
}

/* ---- types ---------------------------------------------------------------------- */

static int check(build_t *b, node_t **np);
static int misused(build_t *b, const node_t *n);

static int nargs_is(build_t *b, const node_t *n, uint32_t want, const char *what)
{
    if (n->nargs == want) return 0;
    return rule_fail(b, n->off, "%.*s() takes %s, got %u argument%s", (int)n->name_len, n->name,
                     what, n->nargs, n->nargs == 1 ? "" : "s");
}

/* A constant positive duration argument (a window, a horizon). */
static int positive_duration(build_t *b, node_t **np, const char *what, int64_t *out)
{
    if (check(b, np)) return -1;
    node_t *n = *np;
    if (!n->is_const || n->type != TY_DUR)
        return rule_fail(b, n->off, "%s must be a constant duration, like 30d", what);
    int64_t v = const_of(n).u.i;
    if (v <= 0) return rule_fail(b, n->off, "%s must be longer than 0s", what);
    *out = v;
    return 0;
}

/* A list of constants whose type matches `want`: TY_ANY takes any one
 * type, or any types at all with mixed (x in [...] on an attr()). */
static int const_list(build_t *b, node_t *l, int want, const char *where, bool mixed)
{
    int first = 0;
    for (uint32_t i = 0; i < l->nargs; i++) {
        if (check(b, &l->args[i])) return -1;
        node_t *e = l->args[i];
        if (!e->is_const)
            return rule_fail(b, e->off, "the elements of %s must be constants", where);
        int t = e->type;
        if (t == TY_ANY) continue;                 /* an absent constant */
        if (want != TY_ANY && t != want)
            return rule_fail(b, e->off, "%s holds %s where %s is expected", where, type_name(t),
                             type_name(want));
        if (want == TY_ANY && !mixed) {
            if (first && t != first)
                return rule_fail(b, e->off, "the elements of %s must have one type", where);
            first = t;
        }
    }
    return 0;
}

/* A string constant compared with a dimension or an enumerable rule must
 * be one of its values: value == "E" can never hold. */
static int vocabulary(build_t *b, const node_t *ref, const node_t *lit)
{
    if (lit->kind != N_LIT || lit->v.t != RV_STR) return 0;
    const char *s = lit->v.u.s;
    if (ref->kind == N_DIM) {
        unsigned n = seg_dim_value_count((seg_dim_t)ref->idx);
        for (unsigned c = 0; c < n; c++) {
            const char *v = seg_dim_value_name((seg_dim_t)ref->idx, (uint8_t)c);
            if (v && strlen(v) == lit->v.len && memcmp(v, s, lit->v.len) == 0) return 0;
        }
        static const char *const vocab[SEG_DIM__COUNT] = {
            "prospect, new, active, loyal, at_risk, silent, churned", "A, B, C, D",
            "R1F0M0 .. R4F4M4", "out, in",
        };
        return rule_fail(b, lit->off, "\"%.*s\" is never a value of dimension '%s' (%s)",
                         (int)(lit->v.len > 40 ? 40 : lit->v.len), s,
                         seg_dim_name((seg_dim_t)ref->idx), vocab[ref->idx]);
    }
    if (ref->kind == N_RULE) {
        const crule_t *r = &b->rs->rules[ref->idx];
        if (r->form == FORM_VALUE) return 0;
        for (uint32_t c = 1; c <= r->n_labels; c++)
            if (strlen(r->labels[c]) == lit->v.len && memcmp(r->labels[c], s, lit->v.len) == 0)
                return 0;
        return rule_fail(b, lit->off, "\"%.*s\" is never a value of rule '%s'",
                         (int)(lit->v.len > 40 ? 40 : lit->v.len), s, r->name);
    }
    return 0;
}

static int arith_type(build_t *b, node_t *n)
{
    int x = n->a->type, y = n->b->type, t = 0;
    switch (n->op) {
    case '+':
        if (x == TY_STR || y == TY_STR) t = TY_STR;
        else if (x == TY_NUM && y == TY_NUM) t = TY_NUM;
        else if (x == TY_DUR && y == TY_DUR) t = TY_DUR;
        else if (x == TY_ANY && y != TY_BOOL) t = TY_ANY;
        else if (y == TY_ANY && x != TY_BOOL) t = TY_ANY;
        else if (x == TY_ANY || y == TY_ANY) t = TY_ANY;   /* string attr + bool */
        break;
    case '-':
        if ((x == TY_NUM || x == TY_ANY) && (y == TY_NUM || y == TY_ANY))
            t = x == TY_ANY && y == TY_ANY ? TY_ANY : TY_NUM;
        else if ((x == TY_DUR || x == TY_ANY) && (y == TY_DUR || y == TY_ANY))
            t = TY_DUR;
        break;
    case '*':
        if ((x == TY_NUM || x == TY_ANY) && (y == TY_NUM || y == TY_ANY)) t = TY_NUM;
        else if ((x == TY_DUR && (y == TY_NUM || y == TY_ANY)) ||
                 (y == TY_DUR && (x == TY_NUM || x == TY_ANY)))
            t = TY_DUR;
        break;
    default: /* '/' */
        if ((x == TY_NUM || x == TY_ANY) && (y == TY_NUM || y == TY_ANY)) t = TY_NUM;
        else if (x == TY_DUR && (y == TY_NUM || y == TY_ANY)) t = TY_DUR;
        else if (x == TY_DUR && y == TY_DUR) t = TY_NUM;
        break;
    }
    if (!t) {
        static const char *const verb[] = { ['+'] = "add", ['-'] = "subtract",
                                            ['*'] = "multiply", ['/'] = "divide" };
        return rule_fail(b, n->off, "cannot %s %s and %s", verb[n->op], type_name(x),
                         type_name(y));
    }
    n->type = (uint8_t)t;
    return 0;
}

static int cmp_types_ok(int op, int x, int y)
{
    if (x == TY_ANY || y == TY_ANY) return !(op != CMP_EQ && op != CMP_NE && (x == TY_BOOL || y == TY_BOOL));
    if (x != y) return 0;
    return !(x == TY_BOOL && op != CMP_EQ && op != CMP_NE);
}

/* Whether a duration scaled by a number (a constant) is whole seconds:
 * at run time it would be rounded toward zero, in a constant it is an
 * error (docs/rules.md). */
static bool whole_seconds(int op, rval_t a, rval_t b)
{
    if (a.t == RV_DUR && b.t == RV_DUR) return true;      /* + and - */
    rval_t d = a.t == RV_DUR ? a : b, k = a.t == RV_DUR ? b : a;
    if (k.t == RV_DEC) {
        if (op == '*') return ((__int128)d.u.i * k.u.i) % DEC_ONE == 0;
        return k.u.i != 0 && ((__int128)d.u.i * DEC_ONE) % k.u.i == 0;
    }
    if (k.t != RV_REAL) return true;
    double x = op == '*' ? (double)d.u.i * k.u.d : (double)d.u.i / k.u.d;
    return x == (double)(int64_t)x;
}

/* Folds n if every operand is a constant. */
static int maybe_fold(build_t *b, node_t *n)
{
    rval_t v;
    b->fold.used = 0;
    switch (n->kind) {
    case N_NEG:
        if (!n->a->is_const) return 0;
        v = rv_neg(n->a->v);
        break;
    case N_NOT:
        if (!n->a->is_const) return 0;
        v = (rval_t){ .t = RV_BOOL, .u.i = !rv_truthy(n->a->v) };
        break;
    case N_ARITH:
        if (!n->a->is_const || !n->b->is_const) return 0;
        v = rv_arith(n->op, n->a->v, n->b->v, &b->fold);
        if (v.t == RV_ABSENT && n->type == TY_STR)
            return rule_fail(b, n->off, "this string is longer than %d bytes", STR_MAX);
        if (v.t == RV_ABSENT && n->type == TY_DUR)
            return rule_fail(b, n->off, "this duration is out of range");
        if (v.t == RV_DUR && !whole_seconds(n->op, n->a->v, n->b->v))
            return rule_fail(b, n->off, "this duration is not a whole number of seconds");
        break;
    case N_CMP:
        if (!n->a->is_const || !n->b->is_const) return 0;
        v = (rval_t){ .t = RV_BOOL, .u.i = rv_compare(n->op, n->a->v, n->b->v) };
        break;
    case N_AND:
    case N_OR:
        if (!n->a->is_const || !n->b->is_const) return 0;
        v = (rval_t){ .t = RV_BOOL,
                      .u.i = n->kind == N_AND ? rv_truthy(n->a->v) && rv_truthy(n->b->v)
                                              : rv_truthy(n->a->v) || rv_truthy(n->b->v) };
        break;
    default:
        return 0;
    }
    return fold_value(b, n, v);
}

static int check_call(build_t *b, node_t **np)
{
    node_t *n = *np;
    if (name_is(n, "count") || name_is(n, "sum")) {
        bool sum = name_is(n, "sum");
        if (nargs_is(b, n, 2, "a selector and a window")) return -1;
        int sel = selector(b, n->args[0], sum ? "sum" : "count");
        if (sel < 0) return -1;
        win_t w = { .sel = (uint8_t)sel, .sum = sum };
        if (positive_duration(b, &n->args[1], "the window", &w.w)) return -1;
        int idx = rule_intern_win(b, w);
        if (idx < 0) return rule_fail(b, n->off, "out of memory");
        n->kind = N_WIN;
        n->op = sum ? 's' : 'c';
        n->idx = idx;
        n->type = TY_NUM;
        return 0;
    }
    if (name_is(n, "since")) {
        if (nargs_is(b, n, 1, "a selector")) return -1;
        int sel = selector(b, n->args[0], "since");
        if (sel < 0) return -1;
        feat_t f = { .kind = sel == SEL_PURCHASE ? FT_RECENCY : FT_SINCE, .sel = (uint8_t)sel };
        int idx = rule_intern_feat(b, f);
        if (idx < 0) return rule_fail(b, n->off, "out of memory");
        n->kind = N_FEAT;
        n->idx = idx;
        n->type = TY_DUR;
        n->is_time = true;
        return 0;
    }
    if (name_is(n, "attr")) {
        if (nargs_is(b, n, 1, "a key in double quotes")) return -1;
        node_t *k = n->args[0];
        if (k->kind != N_LIT || k->v.t != RV_STR || k->v.len == 0 || k->v.len > 128)
            return rule_fail(b, k->off, "attr() takes a key of 1 to 128 bytes in double quotes, "
                             "as in attr(\"plan\")");
        int idx = rule_intern_attr(b, k->v.u.s, k->v.len);
        if (idx < 0) return rule_fail(b, n->off, "out of memory");
        n->kind = N_ATTR;
        n->idx = idx;
        n->type = TY_ANY;
        return 0;
    }
    if (name_is(n, "has")) {
        if (nargs_is(b, n, 1, "one expression")) return -1;
        if (check(b, &n->args[0])) return -1;
        n->kind = N_HAS;
        n->a = n->args[0];
        n->type = TY_BOOL;
        if (n->a->is_const)
            return fold_value(b, n, (rval_t){ .t = RV_BOOL, .u.i = n->a->v.t != RV_ABSENT });
        return 0;
    }
    if (name_is(n, "if")) {
        if (nargs_is(b, n, 3, "a condition and two values")) return -1;
        for (int i = 0; i < 3; i++)
            if (check(b, &n->args[i])) return -1;
        node_t *c = n->args[0], *x = n->args[1], *y = n->args[2];
        if (c->type != TY_BOOL && c->type != TY_ANY)
            return rule_fail(b, c->off, "if() needs a condition first, got %s", type_name(c->type));
        if (x->type != y->type && x->type != TY_ANY && y->type != TY_ANY)
            return rule_fail(b, y->off, "if(): both values must have one type (%s and %s)",
                             type_name(x->type), type_name(y->type));
        /* A time feature as a branch is never allowed (docs/rules.md), even
         * when a constant condition would fold the if() away. */
        if (x->kind == N_FEAT && x->is_time) return misused(b, x);
        if (y->kind == N_FEAT && y->is_time) return misused(b, y);
        n->kind = N_IF;
        n->type = x->type == y->type ? x->type : TY_ANY;
        if (c->is_const) {
            node_t *pick = rv_truthy(c->v) ? x : y;
            if (pick->is_const) return fold_value(b, n, pick->v);
            *np = pick;
        }
        return 0;
    }
    if (name_is(n, "tier")) {
        if (nargs_is(b, n, 2, "a value and a list of bounds")) return -1;
        if (check(b, &n->args[0])) return -1;
        node_t *x = n->args[0], *l = n->args[1];
        if (x->type != TY_NUM && x->type != TY_DUR && x->type != TY_ANY)
            return rule_fail(b, x->off, "tier() takes a number or a duration, got %s",
                             type_name(x->type));
        if (l->kind != N_LIST || l->nargs == 0)
            return rule_fail(b, l->off, "tier() takes its bounds as a list, as in [90d, 180d]");
        if (const_list(b, l, x->type == TY_ANY ? TY_ANY : x->type, "tier()'s bounds", false)) return -1;
        n->kind = N_TIER;
        n->a = x;
        n->b = l;
        n->type = TY_NUM;
        return 0;
    }
    if (name_is(n, "expected_purchases") || name_is(n, "clv")) {
        bool clv = name_is(n, "clv");
        if (nargs_is(b, n, 1, "a horizon, like 365d")) return -1;
        if (need_predict(b, n, clv)) return -1;
        feat_t f = { .kind = clv ? FT_CLV : FT_EXPECTED };
        if (positive_duration(b, &n->args[0], "the horizon", &f.h)) return -1;
        int idx = rule_intern_feat(b, f);
        if (idx < 0) return rule_fail(b, n->off, "out of memory");
        n->kind = N_FEAT;
        n->idx = idx;
        n->type = TY_NUM;
        n->is_time = true;
        return 0;
    }
    return rule_fail(b, n->off, "unknown function '%.*s' (%s)",
                     (int)(n->name_len > 64 ? 64 : n->name_len), n->name, functions);
}

static int check(build_t *b, node_t **np)
{
    node_t *n = *np;
    switch (n->kind) {
    case N_LIT:
        n->type = (uint8_t)lit_type(n->v);
        n->is_const = true;
        return 0;
    case N_NAME:
        return resolve_name(b, n);
    case N_SEL:
        return rule_fail(b, n->off, "'%.*s' is a selector: it is only an argument of count(), "
                         "sum() and since()", (int)(n->name_len > 40 ? 40 : n->name_len), n->name);
    case N_LIST:
        return rule_fail(b, n->off, "a list [...] is only allowed after 'in' and as tier()'s "
                         "bounds");
    case N_CALL:
        return check_call(b, np);
    case N_NEG:
        if (check(b, &n->a)) return -1;
        if (n->a->type != TY_NUM && n->a->type != TY_DUR && n->a->type != TY_ANY)
            return rule_fail(b, n->off, "cannot negate %s", type_name(n->a->type));
        n->type = n->a->type;
        return maybe_fold(b, n);
    case N_NOT:
        if (check(b, &n->a)) return -1;
        if (n->a->type != TY_BOOL && n->a->type != TY_ANY)
            return rule_fail(b, n->a->off, "'not' needs a condition, got %s", type_name(n->a->type));
        n->type = TY_BOOL;
        return maybe_fold(b, n);
    case N_AND:
    case N_OR:
        if (check(b, &n->a) || check(b, &n->b)) return -1;
        for (int i = 0; i < 2; i++) {
            node_t *x = i ? n->b : n->a;
            if (x->type != TY_BOOL && x->type != TY_ANY)
                return rule_fail(b, x->off, "'%s' needs conditions on both sides, got %s",
                                 n->kind == N_AND ? "and" : "or", type_name(x->type));
        }
        n->type = TY_BOOL;
        return maybe_fold(b, n);
    case N_ARITH:
        if (check(b, &n->a) || check(b, &n->b)) return -1;
        if (arith_type(b, n)) return -1;
        return maybe_fold(b, n);
    case N_CMP:
        if (check(b, &n->a) || check(b, &n->b)) return -1;
        if (!cmp_types_ok(n->op, n->a->type, n->b->type)) {
            if (n->a->type == n->b->type)
                return rule_fail(b, n->off, "conditions can only be compared with == and !=");
            return rule_fail(b, n->off, "cannot compare %s with %s%s", type_name(n->a->type),
                             type_name(n->b->type),
                             (n->a->type == TY_DUR && n->b->type == TY_NUM) ||
                             (n->a->type == TY_NUM && n->b->type == TY_DUR)
                                 ? " (durations are written with a unit: 30d, 12h, 45s)" : "");
        }
        if (vocabulary(b, n->a, n->b) || vocabulary(b, n->b, n->a)) return -1;
        n->type = TY_BOOL;
        return maybe_fold(b, n);
    case N_IN:
        if (check(b, &n->a)) return -1;
        if (const_list(b, n->b, n->a->type, "the list after 'in'", n->a->type == TY_ANY)) return -1;
        for (uint32_t i = 0; i < n->b->nargs; i++)
            if (vocabulary(b, n->a, n->b->args[i])) return -1;
        n->type = TY_BOOL;
        if (n->a->is_const) {
            int hit = 0;
            for (uint32_t i = 0; i < n->b->nargs; i++)
                hit |= rv_compare(CMP_EQ, n->a->v, n->b->args[i]->v);
            return fold_value(b, n, (rval_t){ .t = RV_BOOL, .u.i = hit });
        }
        return 0;
    default:
        return 0;   /* already resolved */
    }
}

/* ---- time ----------------------------------------------------------------------- */

static const char *time_name(build_t *b, const node_t *n, char *buf, size_t size)
{
    const feat_t *f = &b->rs->feats[n->idx];
    switch (f->kind) {
    case FT_RECENCY:  return f->sel == SEL_PURCHASE && n->name_len == 0 ? "since(purchase)" : "recency";
    case FT_AGE:      return "age";
    case FT_SINCE:    snprintf(buf, size, "since(%s)", rule_sel_name(f->sel)); return buf;
    case FT_P_ALIVE:  return "p_alive";
    case FT_EXPECTED: return "expected_purchases()";
    default:          return "clv()";
    }
}

static int misused(build_t *b, const node_t *n)
{
    char buf[64];
    const char *name = time_name(b, n, buf, sizeof buf);
    if (n->type == TY_DUR)
        return rule_fail(b, n->off, "%s grows with time; compare it with a constant duration, "
                         "use it in tier() or has()", name);
    return rule_fail(b, n->off, "%s changes with time; compare it with a constant number, use "
                     "it in tier() or has()", name);
}

/* Adds the instants at which `feature OP c` can change (feature left). */
static int candidates(build_t *b, const node_t *feat, int op, rval_t c)
{
    const feat_t *f = &b->rs->feats[feat->idx];
    if (c.t == RV_ABSENT) return 0;              /* compares false for ever */
    if (f->kind == FT_RECENCY || f->kind == FT_AGE || f->kind == FT_SINCE) {
        /* t - base OP c: < and >= flip at base + c; <= and > at base + c + 1. */
        int64_t v = c.u.i;
        int rc = 0;
        if (op == CMP_LT || op == CMP_GE || op == CMP_EQ || op == CMP_NE)
            rc |= rule_add_tbase(b, f->kind == FT_SINCE ? FT_SINCE : f->kind, f->sel, v);
        if (op == CMP_LE || op == CMP_GT || op == CMP_EQ || op == CMP_NE)
            rc |= v == INT64_MAX ? 0 : rule_add_tbase(b, f->kind, f->sel, v + 1);
        return rc ? rule_fail(b, feat->off, "out of memory") : 0;
    }
    double d = c.t == RV_DEC ? (double)c.u.i / (double)DEC_ONE : c.u.d;
    if (op == CMP_EQ || op == CMP_NE) {
        if (rule_add_tpred(b, feat->idx, CMP_LT, d) || rule_add_tpred(b, feat->idx, CMP_LE, d))
            return rule_fail(b, feat->off, "out of memory");
        return 0;
    }
    /* The predictions only fall between purchases: < and >= flip where f
     * drops below c, <= and > where it reaches c. */
    int flip = op == CMP_LT || op == CMP_GE ? CMP_LT : CMP_LE;
    return rule_add_tpred(b, feat->idx, (uint8_t)flip, d) ? rule_fail(b, feat->off, "out of memory") : 0;
}

static int swap_op(int op)
{
    switch (op) {
    case CMP_LT: return CMP_GT;
    case CMP_LE: return CMP_GE;
    case CMP_GT: return CMP_LT;
    case CMP_GE: return CMP_LE;
    default:     return op;
    }
}

/* allowed: n itself may be a time feature (a comparison with a constant,
 * the first argument of tier(), the left of in, has()). */
static int check_time(build_t *b, node_t *n, bool allowed)
{
    if (!n) return 0;
    if (n->kind == N_FEAT && n->is_time) return allowed ? 0 : misused(b, n);
    switch (n->kind) {
    case N_CMP:
        if (check_time(b, n->a, n->b->is_const) || check_time(b, n->b, n->a->is_const))
            return -1;
        if (n->a->kind == N_FEAT && n->a->is_time && n->b->is_const)
            return candidates(b, n->a, n->op, n->b->v);
        if (n->b->kind == N_FEAT && n->b->is_time && n->a->is_const)
            return candidates(b, n->b, swap_op(n->op), n->a->v);
        return 0;
    case N_IN:
        if (check_time(b, n->a, true)) return -1;
        if (n->a->kind == N_FEAT && n->a->is_time)
            for (uint32_t i = 0; i < n->b->nargs; i++)
                if (candidates(b, n->a, CMP_EQ, n->b->args[i]->v)) return -1;
        return 0;
    case N_TIER:
        if (check_time(b, n->a, true)) return -1;
        if (n->a->kind == N_FEAT && n->a->is_time)
            for (uint32_t i = 0; i < n->b->nargs; i++)
                if (candidates(b, n->a, CMP_GE, n->b->args[i]->v)) return -1;
        return 0;
    case N_HAS:
        /* has(recency) asks only whether it exists, which time does not
         * change; anything computed from it (has(1 / (recency / 1d)))
         * could change at an instant segd does not know. */
        return check_time(b, n->a, true);
    case N_IF:
        for (int i = 0; i < 3; i++)
            if (check_time(b, n->args[i], false)) return -1;
        return 0;
    default:
        return check_time(b, n->a, false) || check_time(b, n->b, false);
    }
}

/* ---- dependencies ------------------------------------------------------------------ */

static uint64_t sel_deps(unsigned sel)
{
    if (sel == SEL_PURCHASE) return DEP_PURCHASE;
    if (sel == SEL_REFUND) return DEP_REFUND;
    if (sel == SEL_CONTACT) return (uint64_t)0x3f * DEP_CONTACT0;
    return DEP_CONTACT0 << (sel - SEL_VISIT);
}

static uint64_t deps(const build_t *b, const node_t *n)
{
    if (!n) return 0;
    uint64_t d = 0;
    switch (n->kind) {
    case N_WIN:
        return DEP_TIME | sel_deps(b->rs->wins[n->idx].sel);
    case N_FEAT: {
        const feat_t *f = &b->rs->feats[n->idx];
        if (f->kind == FT_SINCE) return DEP_TIME | sel_deps(f->sel);
        if (f->kind == FT_SPEND) return DEP_PURCHASE;
        return DEP_TIME | DEP_PURCHASE;
    }
    case N_ATTR: return DEP_ATTR;
    case N_DIM:  return DEP_DIM0 << n->idx;
    case N_RULE: return DEP_RULE(n->idx);
    default: break;
    }
    d |= deps(b, n->a) | deps(b, n->b);
    for (uint32_t i = 0; i < n->nargs; i++) d |= deps(b, n->args[i]);
    return d;
}

int rule_check(build_t *b, node_t **np, uint32_t rule)
{
    b->cur_rule = rule;
    if (check(b, np) || (!b->outf && check_time(b, *np, false))) return -1;
    b->rs->rules[rule].deps |= deps(b, *np);
    return 0;
}
