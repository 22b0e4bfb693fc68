/*
 * seg_rule_compile: a checked definition -> seg_ruleset_t.
 *
 * Builds everything the evaluator needs so that evaluating a customer does
 * no lookup by name and no allocation: the flat code of every expression
 * (a stack machine, SQLite VDBE-style), the constant pool, the tables of
 * windows, features and attributes each rule reads (shared between rules,
 * so count(contact, 90d) is computed once per evaluation however many
 * rules use it), the candidate instants, and the layout of the per-customer
 * row: exactly the windows, latest timestamps, attributes and values the
 * rules need, sized at load time (docs/rules.md, "State and memory").
 */
#include "rule/seg_rule_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segment/seg_dims.h"
#include "state/seg_store.h"

/* ---- growable tables ------------------------------------------------------------- */

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap) return 0;
    uint32_t nc = *cap ? *cap : 8;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return -1;
    memset((char *)q + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *p = q;
    *cap = nc;
    return 0;
}

int rule_intern_feat(build_t *b, feat_t f)
{
    seg_ruleset_t *rs = b->rs;
    for (uint32_t i = 0; i < rs->n_feats; i++)
        if (rs->feats[i].kind == f.kind && rs->feats[i].sel == f.sel && rs->feats[i].h == f.h)
            return (int)i;
    if (grow((void **)&rs->feats, &b->cap_feats, rs->n_feats + 1, sizeof f)) return -1;
    f.rule = (int32_t)b->cur_rule;
    rs->feats[rs->n_feats] = f;
    return (int)rs->n_feats++;
}

int rule_intern_win(build_t *b, win_t w)
{
    seg_ruleset_t *rs = b->rs;
    for (uint32_t i = 0; i < rs->n_wins; i++)
        if (rs->wins[i].sel == w.sel && rs->wins[i].sum == w.sum && rs->wins[i].w == w.w)
            return (int)i;
    if (grow((void **)&rs->wins, &b->cap_wins, rs->n_wins + 1, sizeof w)) return -1;
    w.rule = (int32_t)b->cur_rule;
    rs->wins[rs->n_wins] = w;
    return (int)rs->n_wins++;
}

int rule_intern_attr(build_t *b, const char *key, uint32_t len)
{
    seg_ruleset_t *rs = b->rs;
    for (uint32_t i = 0; i < rs->n_attrs; i++)
        if (rs->attr_key_len[i] == len && memcmp(rs->attr_keys[i], key, len) == 0) return (int)i;
    /* Two arrays of one capacity: both grow from b->cap_attrs alike. */
    uint32_t cap = b->cap_attrs, cap2 = b->cap_attrs, cap3 = b->cap_attrs;
    if (grow((void **)&rs->attr_keys, &cap, rs->n_attrs + 1, sizeof *rs->attr_keys) ||
        grow((void **)&rs->attr_key_len, &cap2, rs->n_attrs + 1, sizeof(uint32_t)) ||
        grow((void **)&rs->attr_rule, &cap3, rs->n_attrs + 1, sizeof(int32_t)))
        return -1;
    b->cap_attrs = cap;
    rs->attr_rule[rs->n_attrs] = b->cur_rule == UINT32_MAX ? -1 : (int32_t)b->cur_rule;
    char *k = arena_strdup(rs->arena, key, len);
    if (!k) return -1;
    rs->attr_keys[rs->n_attrs] = k;
    rs->attr_key_len[rs->n_attrs] = len;
    return (int)rs->n_attrs++;
}

int rule_add_tbase(build_t *b, uint8_t kind, uint8_t sel, int64_t off)
{
    seg_ruleset_t *rs = b->rs;
    if (kind != FT_SINCE) sel = 0;
    tbase_t *t = NULL;
    for (uint32_t i = 0; i < rs->n_tbases; i++)
        if (rs->tbases[i].kind == kind && rs->tbases[i].sel == sel) t = &rs->tbases[i];
    if (!t) {
        if (grow((void **)&rs->tbases, &b->cap_tbases, rs->n_tbases + 1, sizeof *t)) return -1;
        t = &rs->tbases[rs->n_tbases++];
        t->kind = kind;
        t->sel = sel;
    }
    uint32_t i = 0;
    while (i < t->n && t->off[i] < off) i++;
    if (i < t->n && t->off[i] == off) return 0;
    int64_t *no = realloc(t->off, (t->n + 1) * sizeof *no);
    if (!no) return -1;
    t->off = no;
    memmove(no + i + 1, no + i, (t->n - i) * sizeof *no);
    no[i] = off;
    t->n++;
    return 0;
}

int rule_add_tpred(build_t *b, int32_t feat, uint8_t op, double c)
{
    seg_ruleset_t *rs = b->rs;
    for (uint32_t i = 0; i < rs->n_tpreds; i++)
        if (rs->tpreds[i].feat == feat && rs->tpreds[i].op == op && rs->tpreds[i].c == c) return 0;
    if (grow((void **)&rs->tpreds, &b->cap_tpreds, rs->n_tpreds + 1, sizeof *rs->tpreds))
        return -1;
    rs->tpreds[rs->n_tpreds++] = (tpred_t){ .feat = feat, .op = op, .c = c };
    uint8_t kind = rs->feats[feat].kind;
    if (kind == FT_SPEND || kind == FT_CLV) rs->tpreds_mbar = true;
    return 0;
}

/* ---- code ------------------------------------------------------------------------ */

static int emit(build_t *b, uint8_t op, uint32_t a, int push)
{
    seg_ruleset_t *rs = b->rs;
    if (grow((void **)&rs->code, &b->cap_code, rs->n_code + 1, sizeof(rop_t))) return -1;
    rs->code[rs->n_code++] = (rop_t){ .op = op, .a = a };
    b->depth += push;
    if (b->depth > b->max_depth) b->max_depth = b->depth;
    return 0;
}

static int add_const(build_t *b, rval_t v, uint32_t *idx)
{
    seg_ruleset_t *rs = b->rs;
    if (grow((void **)&rs->consts, &b->cap_consts, rs->n_consts + 1, sizeof v)) return -1;
    rs->consts[rs->n_consts] = v;
    *idx = rs->n_consts++;
    return 0;
}

static int add_list(build_t *b, const node_t *l, uint32_t *idx)
{
    seg_ruleset_t *rs = b->rs;
    if (grow((void **)&rs->list_at, &b->cap_lists, rs->n_lists + 1, sizeof(uint32_t)) ||
        grow((void **)&rs->lists, &b->cap_list_words, rs->n_list_words + 1 + l->nargs,
             sizeof(uint32_t)))
        return -1;
    rs->list_at[rs->n_lists] = rs->n_list_words;
    rs->lists[rs->n_list_words++] = l->nargs;
    for (uint32_t i = 0; i < l->nargs; i++) {
        uint32_t k;
        if (add_const(b, l->args[i]->v, &k)) return -1;
        rs->lists[rs->n_list_words++] = k;
    }
    *idx = rs->n_lists++;
    return 0;
}

/* The code of a string among a dimension's or an enumerable rule's values,
 * or -1. */
static int code_of(const build_t *b, const node_t *ref, rval_t s)
{
    if (s.t != RV_STR) return -1;
    if (ref->kind == N_DIM) {
        unsigned n = seg_dim_value_count((seg_dim_t)ref->idx);
        for (unsigned c = 0; c < n; c++) {
            const char *v = seg_dim_value_name((seg_dim_t)ref->idx, (uint8_t)c);
            if (v && strlen(v) == s.len && memcmp(v, s.u.s, s.len) == 0) return (int)c;
        }
        return -1;
    }
    const crule_t *r = &b->rs->rules[ref->idx];
    for (uint32_t c = 1; c <= r->n_labels; c++)
        if (strlen(r->labels[c]) == s.len && memcmp(r->labels[c], s.u.s, s.len) == 0)
            return (int)c;
    return -1;
}

static bool enumerable(const build_t *b, const node_t *n)
{
    return n->kind == N_DIM || (n->kind == N_RULE && b->rs->rules[n->idx].form != FORM_VALUE);
}

/* x == "s", x != "s", x in ["s", ...] on a dimension or a graded rule: a
 * test of its code against a bit set, no string compared per customer. */
static int emit_codeset(build_t *b, const node_t *ref, node_t *const *lits, uint32_t n, bool negate)
{
    seg_ruleset_t *rs = b->rs;
    uint64_t set[4] = { 0 };
    for (uint32_t i = 0; i < n; i++) {
        int c = code_of(b, ref, lits[i]->v);
        if (c >= 0 && c < 256) set[c / 64] |= (uint64_t)1 << (c % 64);
    }
    if (grow((void **)&rs->codesets, &b->cap_codesets, (rs->n_codesets + 1) * 4, sizeof(uint64_t)))
        return -1;
    memcpy(rs->codesets + rs->n_codesets * 4, set, sizeof set);
    if (emit(b, OP_CODE_IN, rs->n_codesets++, 1)) return -1;
    rop_t *op = &rs->code[rs->n_code - 1];
    op->b = negate;
    op->c = ref->kind == N_RULE;
    op->d = (uint16_t)ref->idx;
    return 0;
}

static int gen(build_t *b, const node_t *n)
{
    seg_ruleset_t *rs = b->rs;
    uint32_t k, at;
    switch (n->kind) {
    case N_LIT:
        return add_const(b, n->v, &k) || emit(b, OP_K, k, 1);
    case N_WIN:  return emit(b, OP_WIN, (uint32_t)n->idx, 1);
    case N_FEAT: return emit(b, OP_FEAT, (uint32_t)n->idx, 1);
    case N_ATTR: return emit(b, OP_ATTR, (uint32_t)n->idx, 1);
    case N_DIM:  return emit(b, OP_DIM, (uint32_t)n->idx, 1);
    case N_RULE: return emit(b, OP_RULE, (uint32_t)n->idx, 1);
    case N_NEG:  return gen(b, n->a) || emit(b, OP_NEG, 0, 0);
    case N_NOT:  return gen(b, n->a) || emit(b, OP_NOT, 0, 0);
    case N_HAS:  return gen(b, n->a) || emit(b, OP_HAS, 0, 0);
    case N_ARITH:
        return gen(b, n->a) || gen(b, n->b) || emit(b, OP_ARITH, n->op, -1);
    case N_CMP:
        if ((n->op == CMP_EQ || n->op == CMP_NE) && enumerable(b, n->a) && n->b->kind == N_LIT &&
            n->b->v.t == RV_STR)
            return emit_codeset(b, n->a, &n->b, 1, n->op == CMP_NE);
        if ((n->op == CMP_EQ || n->op == CMP_NE) && enumerable(b, n->b) && n->a->kind == N_LIT &&
            n->a->v.t == RV_STR)
            return emit_codeset(b, n->b, &n->a, 1, n->op == CMP_NE);
        return gen(b, n->a) || gen(b, n->b) || emit(b, OP_CMP, n->op, -1);
    case N_IN: {
        bool all_str = true;
        for (uint32_t i = 0; i < n->b->nargs; i++)
            all_str &= n->b->args[i]->v.t == RV_STR || n->b->args[i]->v.t == RV_ABSENT;
        if (enumerable(b, n->a) && all_str)
            return emit_codeset(b, n->a, n->b->args, n->b->nargs, false);
        return gen(b, n->a) || add_list(b, n->b, &k) || emit(b, OP_IN, k, 0);
    }
    case N_TIER:
        return gen(b, n->a) || add_list(b, n->b, &k) || emit(b, OP_TIER, k, 0);
    case N_AND:
    case N_OR:
        if (gen(b, n->a)) return -1;
        at = rs->n_code;
        if (emit(b, n->kind == N_AND ? OP_ANDJ : OP_ORJ, 0, -1)) return -1;
        if (gen(b, n->b) || emit(b, OP_BOOL, 0, 0)) return -1;
        rs->code[at].a = rs->n_code;
        return 0;
    case N_IF: {
        if (gen(b, n->args[0])) return -1;
        uint32_t jf = rs->n_code;
        if (emit(b, OP_JF, 0, -1) || gen(b, n->args[1])) return -1;
        uint32_t jmp = rs->n_code;
        if (emit(b, OP_JMP, 0, -1) || gen(b, n->args[2])) return -1;
        rs->code[jf].a = jmp + 1;
        rs->code[jmp].a = rs->n_code;
        return 0;
    }
    default:
        return rule_fail(b, n->off, "internal error: node %d left unresolved", n->kind);
    }
}

int rule_compile_expr(build_t *b, node_t *n, prog_t *out)
{
    b->depth = 0;
    out->start = b->rs->n_code;
    out->present = true;
    if (gen(b, n) || emit(b, OP_END, 0, 0)) return rule_fail(b, n->off, "out of memory");
    if ((uint32_t)b->max_depth > b->rs->max_stack) b->rs->max_stack = (uint32_t)b->max_depth;
    return 0;
}

/* ---- the rule set -------------------------------------------------------------------- */

static const char *const reserved[] = {
    "and", "or", "not", "in", "true", "false", "recency", "age", "since", "count", "sum",
    "attr", "has", "if", "tier", "purchase", "refund", "contact", "p_alive",
    "expected_purchases", "expected_spend", "clv",
};

static int bad_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SEG_RULE_NAME_MAX || s[0] < 'a' || s[0] > 'z') return 1;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 1;
    return 0;
}

static int bad_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SEG_RULE_LABEL_MAX) return 1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == '+'))
            return 1;
    }
    return 0;
}

/* Errors about the rule itself (not its expressions) point at its name. */
static int fail_rule(build_t *b, const seg_rule_spec_t *sp, uint32_t line, uint32_t col,
                     const char *fmt, const char *arg)
{
    char why[RULE_ERR];
    snprintf(why, sizeof why, fmt, arg);
    snprintf(b->err, b->errsz, "%s:%u:%u: rule '%s': %s", b->def->file ? b->def->file : "config",
             line ? line : sp->line, line ? col : sp->col, sp->name, why);
    return -1;
}

static int label_code(build_t *b, crule_t *r, const char *label)
{
    for (uint32_t c = 1; c <= r->n_labels; c++)
        if (strcmp(r->labels[c], label) == 0) return (int)c;
    if (r->n_labels == 255) return -1;
    r->labels[++r->n_labels] = arena_strdup(b->rs->arena, label, strlen(label));
    return r->labels[r->n_labels] ? (int)r->n_labels : -1;
}

static int compile_text(build_t *b, const seg_rule_spec_t *sp, const seg_rule_text_t *t,
                        uint32_t rule, prog_t *out, int want, uint8_t *type_out)
{
    rsrc_t src = {
        .text = t->text, .len = t->len, .file = b->def->file ? b->def->file : "config",
        .rule = sp->name, .line = t->line, .col = t->col, .indent = t->indent, .mode = t->mode,
    };
    b->cur_src = &src;
    node_t *n = rule_parse(&src, b->ar, b->err, b->errsz);
    if (!n || rule_check(b, &n, rule)) return -1;
    if (want == TY_BOOL && n->type != TY_BOOL && n->type != TY_ANY)
        return rule_fail(b, n->off, "a condition is expected here, got %s",
                         n->type == TY_NUM ? "a number" : n->type == TY_DUR ? "a duration" : "a string");
    if (want == TY_STR) {
        if (n->type == TY_BOOL)
            return rule_fail(b, n->off, "value: must give a string or a number; a condition "
                             "is a membership: write it as when:");
        if (n->type == TY_DUR)
            return rule_fail(b, n->off, "value: must give a string or a number, not a duration");
        *type_out = n->type;
    }
    /* Scratch a rule may need for string +: counted on the folded tree. */
    node_t *stack[256];
    int sp_ = 0;
    stack[sp_++] = n;
    while (sp_ > 0) {
        node_t *x = stack[--sp_];
        if (!x) continue;
        if (x->kind == N_ARITH && x->op == '+' && (x->type == TY_STR || x->type == TY_ANY))
            b->rs->rules[rule].n_concat++;
        if (sp_ + 2 + (int)x->nargs <= 256) {
            stack[sp_++] = x->a;
            stack[sp_++] = x->b;
            for (uint32_t i = 0; i < x->nargs; i++) stack[sp_++] = x->args[i];
        } else {
            b->rs->rules[rule].n_concat += 64;   /* a deep tree: reserve generously */
        }
    }
    return rule_compile_expr(b, n, out);
}

static int compile_rule(build_t *b, uint32_t i)
{
    seg_ruleset_t *rs = b->rs;
    const seg_rule_spec_t *sp = &b->def->rules[i];
    crule_t *r = &rs->rules[i];
    r->name = arena_strdup(rs->arena, sp->name, strlen(sp->name));
    r->line = sp->line;
    r->form = sp->form == SEG_RULE_WHEN ? FORM_WHEN : sp->form == SEG_RULE_CASES ? FORM_CASES
                                                                              : FORM_VALUE;
    r->labels = arena_alloc(rs->arena, 257 * sizeof *r->labels);
    if (!r->name || !r->labels) return fail_rule(b, sp, 0, 0, "%s", "out of memory");
    if (r->form == FORM_WHEN) {
        r->labels[1] = "out";
        r->labels[2] = "in";
        r->n_labels = 2;
        r->plain_when = !sp->where.text;
    } else if (r->form == FORM_CASES) {
        r->cases = arena_alloc(rs->arena, (sp->n_cases + 1) * sizeof *r->cases);
        r->case_code = arena_alloc(rs->arena, (sp->n_cases + 1) * sizeof *r->case_code);
        if (!r->cases || !r->case_code) return fail_rule(b, sp, 0, 0, "%s", "out of memory");
        r->n_cases = sp->n_cases;
        for (uint32_t k = 0; k < sp->n_cases; k++) {
            const seg_rule_case_t *c = &sp->cases[k];
            if (bad_label(c->label))
                return fail_rule(b, sp, c->line, c->col, "bad label '%.64s': 1 to 64 letters, "
                                 "digits, _, -, . or +", c->label);
            int code = label_code(b, r, c->label);
            if (code < 0)
                return fail_rule(b, sp, c->line, c->col, "%s", "more than 255 labels");
            r->case_code[k] = (uint16_t)code;
        }
        if (sp->else_label) {
            if (bad_label(sp->else_label))
                return fail_rule(b, sp, 0, 0, "bad else label '%.64s': 1 to 64 letters, digits, "
                                 "_, -, . or +", sp->else_label);
            int code = label_code(b, r, sp->else_label);
            if (code < 0) return fail_rule(b, sp, 0, 0, "%s", "more than 255 labels");
            r->else_code = (uint16_t)code;
        }
    }
    if (sp->where.text && compile_text(b, sp, &sp->where, i, &r->where, TY_BOOL, NULL)) return -1;
    switch (r->form) {
    case FORM_WHEN:
        return compile_text(b, sp, &sp->body, i, &r->when, TY_BOOL, NULL);
    case FORM_CASES:
        for (uint32_t k = 0; k < sp->n_cases; k++)
            if (compile_text(b, sp, &sp->cases[k].cond, i, &r->cases[k], TY_BOOL, NULL)) return -1;
        return 0;
    default:
        return compile_text(b, sp, &sp->body, i, &r->value, TY_STR, &r->value_type);
    }
}

static int check_names(build_t *b)
{
    const seg_rules_def_t *d = b->def;
    const seg_segcfg_t *s = &b->rs->seg;
    const bool enabled[SEG_DIM__COUNT] = { s->lifecycle.enabled, s->value.enabled,
                                           s->rfm.enabled, s->dissatisfied.enabled };
    if (d->n_rules > SEG_RULES_MAX) {
        snprintf(b->err, b->errsz, "%s: more than %d rules", d->file ? d->file : "config",
                 SEG_RULES_MAX);
        return -1;
    }
    for (uint32_t i = 0; i < d->n_rules; i++) {
        const seg_rule_spec_t *sp = &d->rules[i];
        if (bad_name(sp->name))
            return fail_rule(b, sp, 0, 0, "%s", "a rule name is 1 to 64 of a-z, 0-9 and _, "
                             "starting with a letter");
        for (size_t k = 0; k < sizeof reserved / sizeof reserved[0]; k++)
            if (strcmp(sp->name, reserved[k]) == 0)
                return fail_rule(b, sp, 0, 0, "'%s' is a word of the language; name the rule "
                                 "otherwise", sp->name);
        for (int dd = 0; dd < SEG_DIM__COUNT; dd++)
            if (enabled[dd] && strcmp(sp->name, seg_dim_name((seg_dim_t)dd)) == 0)
                return fail_rule(b, sp, 0, 0, "'%s' is a built-in dimension; switch it off "
                                 "(enabled: false) to define it as a rule", sp->name);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(d->rules[j].name, sp->name) == 0)
                return fail_rule(b, sp, 0, 0, "%s", "a second rule with this name");
    }
    return 0;
}

static const uint8_t sel_streams[SEL__COUNT][2] = {
    [SEL_PURCHASE] = { ST_PURCHASE, ST_PURCHASE }, [SEL_REFUND] = { ST_REFUND, ST_REFUND },
    [SEL_VISIT] = { ST_VISIT, ST_VISIT },           [SEL_INQUIRY] = { ST_INQUIRY, ST_INQUIRY },
    [SEL_COMPLAINT] = { ST_COMPLAINT, ST_COMPLAINT }, [SEL_SUPPORT] = { ST_SUPPORT, ST_SUPPORT },
    [SEL_FEEDBACK] = { ST_FEEDBACK, ST_FEEDBACK },  [SEL_CALL] = { ST_CALL, ST_CALL },
    [SEL_CONTACT] = { ST_VISIT, ST_CALL },
};

static void keep_stream(seg_ruleset_t *rs, unsigned sel, int64_t w)
{
    for (unsigned s = sel_streams[sel][0]; s <= sel_streams[sel][1]; s++)
        if (w > rs->retain[s]) rs->retain[s] = w;
}

static void layout(seg_ruleset_t *rs)
{
    const seg_rules_def_t *d = rs->def;
    for (uint32_t i = 0; i < rs->n_wins; i++) keep_stream(rs, rs->wins[i].sel, rs->wins[i].w);
    for (unsigned sel = 0; sel < SEL__COUNT; sel++) {
        if (d->retain[sel] > 0) keep_stream(rs, sel, d->retain[sel]);
        if ((d->retain[sel] > 0 || d->retain_since[sel]) && sel != SEL_PURCHASE)
            rs->since_kept[sel] = true;
    }
    for (uint32_t i = 0; i < rs->n_feats; i++) {
        const feat_t *f = &rs->feats[i];
        if (f->kind == FT_SINCE && f->sel != SEL_PURCHASE) rs->since_kept[f->sel] = true;
        if (f->kind == FT_P_ALIVE || f->kind == FT_EXPECTED || f->kind == FT_CLV ||
            f->kind == FT_SPEND)
            rs->predict_state = true;
    }
    /* Parameters alone keep the purchase days too: the customer table
     * (segd replay --customers-out) and lookups show the predictions. */
    if (d->predict.has_bgnbd) rs->predict_state = true;
    /* 8-byte items first, then 4, then 1: no padding inside the row. */
    uint32_t off = 0;
    for (unsigned s = 0; s < ST__COUNT; s++)
        if (rs->retain[s] > 0) {
            rs->win_off[s] = off;
            off += (uint32_t)sizeof(seg_window_t);
        }
    if (rs->predict_state) {
        rs->days_off = off;
        off += (uint32_t)sizeof(seg_window_t);
    }
    if (rs->predict_state && rs->n_tpreds) {
        rs->pnext_off = off;
        off += 8;
    }
    for (unsigned sel = 0; sel < SEL__COUNT; sel++)
        if (rs->since_kept[sel]) {
            rs->since_off[sel] = off;
            off += 8;
        }
    rs->attr_off = off;
    off += 16 * rs->n_attrs;
    for (uint32_t i = 0; i < rs->n_rules; i++)
        if (rs->rules[i].form == FORM_VALUE) {
            rs->rules[i].slot_off = off;
            rs->rules[i].slot_size = 4;
            off += 4;
        }
    for (uint32_t i = 0; i < rs->n_rules; i++)
        if (rs->rules[i].form != FORM_VALUE) {
            rs->rules[i].slot_off = off;
            rs->rules[i].slot_size = 1;
            off += 1;
        }
    rs->row_bytes = (off + 7) & ~7u;
    for (uint32_t i = 0; i <= rs->n_rules; i++) rs->n_concat += rs->rules[i].n_concat;
    /* (rules[n_rules] is the scratch rule of output.features) */
}

/* The hash of what decides the transitions: the definition as packed, and
 * the built-in settings, field by field (no struct padding). */
static uint64_t ruleset_hash(const seg_ruleset_t *rs)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    seg_rules_def_pack(rs->def, &pk);
    const seg_segcfg_t *s = &rs->seg;
    int64_t f[] = {
        s->window, s->lifecycle.enabled, s->lifecycle.new_for, s->lifecycle.at_risk_after,
        s->lifecycle.silent_after, s->lifecycle.churned_after, s->lifecycle.loyal_min_purchases,
        s->value.enabled, s->value.a_min, s->value.b_min, s->rfm.enabled,
        s->rfm.recency[0], s->rfm.recency[1], s->rfm.recency[2], s->rfm.frequency[0],
        s->rfm.frequency[1], s->rfm.frequency[2], s->rfm.monetary[0], s->rfm.monetary[1],
        s->rfm.monetary[2], s->dissatisfied.enabled, s->dissatisfied.window,
        s->dissatisfied.min_complaints,
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) msgpack_pack_int64(&pk, f[i]);
    uint64_t h = seg_store_hash(sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return h;
}

/* output.features: the built-in names as they are, anything else an
 * expression over features, compiled under a scratch rule after the last
 * real one (so every feature is known), reading time features bare. */
static int compile_outf(build_t *b)
{
    seg_ruleset_t *rs = b->rs;
    const seg_rules_def_t *def = b->def;
    static const char *const names[] = { NULL, "recency_s", "age_s", "frequency", "monetary",
                                         "complaints" };
    if (!def->n_outf) return 0;
    rs->outf = calloc(def->n_outf, sizeof *rs->outf);
    if (!rs->outf) {
        snprintf(b->err, b->errsz, "out of memory building output.features");
        return -1;
    }
    for (uint32_t i = 0; i < def->n_outf; i++) {
        const seg_rule_text_t *t = &def->outf[i];
        outf_t *o = &rs->outf[i];
        size_t a = 0, z = t->len;
        while (a < z && (t->text[a] == ' ' || t->text[a] == '\n' || t->text[a] == '\t')) a++;
        while (z > a && (t->text[z - 1] == ' ' || t->text[z - 1] == '\n' || t->text[z - 1] == '\t')) z--;
        o->name = arena_strdup(rs->arena, t->text + a, z - a);
        if (!o->name) {
            snprintf(b->err, b->errsz, "out of memory building output.features");
            return -1;
        }
        for (uint32_t k = 1; k < sizeof names / sizeof names[0]; k++)
            if (strcmp(o->name, names[k]) == 0) o->builtin = (uint8_t)k;
        for (uint32_t k = 0; k < i; k++)
            if (strcmp(rs->outf[k].name, o->name) == 0) {
                snprintf(b->err, b->errsz, "%s:%u:%u: output.features: '%s' is listed twice",
                         def->file ? def->file : "config", t->line, t->col, o->name);
                return -1;
            }
        rs->n_outf = i + 1;
        if (o->builtin) continue;
        char what[48];
        snprintf(what, sizeof what, "output.features item %u", i + 1);
        seg_rule_spec_t sp = { .name = what, .line = t->line, .col = t->col };
        uint8_t type = 0;
        b->outf = true;
        int rc = compile_text(b, &sp, t, def->n_rules, &o->prog, 0, &type);
        b->outf = false;
        if (rc) return -1;
    }
    return 0;
}

seg_ruleset_t *seg_ruleset_build(seg_rules_def_t *def, const seg_segcfg_t *seg,
                                 char *errstr, size_t errstr_size)
{
    seg_ruleset_t *rs = calloc(1, sizeof *rs);
    build_t b = { .rs = rs, .def = def, .err = errstr, .errsz = errstr_size };
    if (!rs || !def) {
        snprintf(errstr, errstr_size, "out of memory building the rules");
        free(rs);
        seg_rules_def_destroy(def);
        return NULL;
    }
    rs->def = def;
    rs->seg = *seg;
    rs->arena = arena_new();
    /* Trees and their strings live as long as the rule set: constants
     * point into them. */
    b.ar = rs->arena;
    b.fold.cap = 64 * (STR_MAX + 1);
    b.fold.p = malloc(b.fold.cap);
    /* one more: the scratch rule output.features compile under */
    rs->rules = calloc(def->n_rules + 1, sizeof *rs->rules);
    if (!rs->arena || !b.fold.p || !rs->rules) {
        snprintf(errstr, errstr_size, "out of memory building the rules");
        goto fail;
    }
    rs->has_predict = def->predict.has_bgnbd;
    rs->predict = def->predict;
    if (check_names(&b)) goto fail;
    for (uint32_t i = 0; i < def->n_rules; i++) {
        if (compile_rule(&b, i)) goto fail;
        rs->n_rules = i + 1;   /* rules above the next one are complete */
    }
    if (compile_outf(&b)) goto fail;
    b.cur_rule = UINT32_MAX;   /* what follows no rule reads */
    for (uint32_t i = 0; i < def->n_retain_attrs; i++)
        if (rule_intern_attr(&b, def->retain_attrs[i], (uint32_t)strlen(def->retain_attrs[i])) < 0) {
            snprintf(errstr, errstr_size, "out of memory building the rules");
            goto fail;
        }
    layout(rs);
    rs->hash = ruleset_hash(rs);
    free(b.fold.p);
    return rs;
fail:
    rs->n_rules = def->n_rules;
    free(b.fold.p);
    seg_ruleset_destroy(rs);
    return NULL;
}

void seg_ruleset_destroy(seg_ruleset_t *rs)
{
    if (!rs) return;
    for (uint32_t i = 0; i < rs->n_tbases; i++) free(rs->tbases[i].off);
    free(rs->tbases);
    free(rs->tpreds);
    free(rs->outf);
    free(rs->rules);
    free(rs->code);
    free(rs->consts);
    free(rs->lists);
    free(rs->list_at);
    free(rs->codesets);
    free(rs->feats);
    free(rs->wins);
    free(rs->attr_keys);
    free(rs->attr_key_len);
    free(rs->attr_rule);
    arena_destroy(rs->arena);
    seg_rules_def_destroy(rs->def);
    free(rs);
}

uint64_t seg_ruleset_hash(const seg_ruleset_t *rs) { return rs->hash; }
const seg_rules_def_t *seg_ruleset_def(const seg_ruleset_t *rs) { return rs->def; }
const seg_segcfg_t *seg_ruleset_segcfg(const seg_ruleset_t *rs) { return &rs->seg; }
uint32_t seg_ruleset_count(const seg_ruleset_t *rs) { return rs->n_rules; }
const char *seg_ruleset_name(const seg_ruleset_t *rs, uint32_t i) { return rs->rules[i].name; }
size_t seg_ruleset_row_bytes(const seg_ruleset_t *rs) { return rs->row_bytes; }
uint32_t seg_ruleset_attr_count(const seg_ruleset_t *rs) { return rs->n_attrs; }

int seg_ruleset_find(const seg_ruleset_t *rs, const char *name, size_t len)
{
    for (uint32_t i = 0; i < rs->n_rules; i++)
        if (strlen(rs->rules[i].name) == len && memcmp(rs->rules[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

int seg_ruleset_values(const seg_ruleset_t *rs, uint32_t i, const char *const **values)
{
    const crule_t *r = &rs->rules[i];
    if (r->form == FORM_VALUE) return -1;
    *values = (const char *const *)r->labels + 1;
    return (int)r->n_labels;
}

const char *seg_ruleset_initial(const seg_ruleset_t *rs, uint32_t i)
{
    return rs->rules[i].plain_when ? "out" : NULL;
}

bool seg_ruleset_wants_attr(const seg_ruleset_t *rs, const char *key, size_t len)
{
    for (uint32_t i = 0; i < rs->n_attrs; i++)
        if (rs->attr_key_len[i] == len && memcmp(rs->attr_keys[i], key, len) == 0) return true;
    return false;
}
