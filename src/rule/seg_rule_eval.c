/*
 * seg_rule_eval: running a compiled rule set for one customer.
 *
 * The hot path of user rules. Per evaluation it reads the customer's row
 * (windows, latest timestamps, attributes, values), runs each rule's flat
 * program on a fixed stack, and stores what changed. Nothing is looked up
 * by name and nothing is allocated once warm: features and windows are
 * computed at most once per evaluation (a generation stamp marks what is
 * already known), string results go to a scratch buffer sized at load for
 * the worst case, and values are interned ids.
 *
 * Row layout (seg_rule_compile.c): kept windows (seg_window_t), the
 * purchase-days window of the predictions, latest timestamps (stored as
 * ts ^ INT64_MIN so that an all-zero row means "none"), attributes (16
 * bytes: ts << 3 | type, then the payload), value ids (4 bytes), label
 * codes (1 byte; a plain membership stores in = 1, out = 0). An all-zero
 * row is a customer that has seen nothing.
 */
#include "rule/seg_rule_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "event/seg_decode.h"
#include "rule/seg_rule_vpool.h"
#include "segment/seg_dims.h"
#include "util/seg_money.h"

/* ---- lifecycle --------------------------------------------------------------------- */

static const uint8_t sel_first[SEL__COUNT];
static const uint8_t sel_last[SEL__COUNT];

/* The time sources program p reads (see TSRC_*). */
static uint64_t prog_tdeps(const seg_ruleset_t *rs, const prog_t *p)
{
    uint64_t m = 0;
    if (!p->present) return 0;
    for (uint32_t pc = p->start; rs->code[pc].op != OP_END; pc++) {
        const rop_t *op = &rs->code[pc];
        if (op->op == OP_WIN) {
            m |= op->a < TSRC_WINS ? (uint64_t)1 << op->a : TSRC_OTHER;
        } else if (op->op == OP_FEAT) {
            const feat_t *f = &rs->feats[op->a];
            if (f->kind != FT_RECENCY && f->kind != FT_AGE && f->kind != FT_SINCE) {
                m |= TSRC_OTHER;      /* predictions change with time alone */
                continue;
            }
            uint8_t sel = f->kind == FT_SINCE ? f->sel : 0;
            for (uint32_t i = 0; i < rs->n_tbases; i++)
                if (rs->tbases[i].kind == f->kind && rs->tbases[i].sel == sel)
                    m |= i < TSRC_TBASES ? (uint64_t)1 << (TSRC_WINS + i) : TSRC_OTHER;
            /* no tbase: only has() reads it, which time does not change */
        }
    }
    return m;
}

static int build_tdeps(seg_rulerun_t *rr)
{
    const seg_ruleset_t *rs = rr->rs;
    rr->tdeps = calloc(rs->n_rules + 1, sizeof *rr->tdeps);
    if (!rr->tdeps) return -1;
    for (uint32_t i = 0; i < rs->n_rules; i++) {
        const crule_t *r = &rs->rules[i];
        uint64_t m = prog_tdeps(rs, &r->where) | prog_tdeps(rs, &r->when) |
                     prog_tdeps(rs, &r->value);
        for (uint32_t k = 0; k < r->n_cases; k++) m |= prog_tdeps(rs, &r->cases[k]);
        rr->tdeps[i] = m;
    }
    return 0;
}

/* The time sources with an instant exactly at t: a window whose entry
 * leaves at t (ts + w == t), a threshold a growing feature reaches at t.
 * Before expire(): the entries leaving at t are still there. */
static uint64_t due_sources(seg_rulerun_t *rr, const seg_rule_cust_t *c)
{
    const seg_ruleset_t *rs = rr->rs;
    uint64_t m = TSRC_OTHER;
    int64_t t = c->t;
    for (uint32_t k = 0; k < rs->n_wins && k < TSRC_WINS; k++) {
        const win_t *w = &rs->wins[k];
        for (unsigned s = sel_first[w->sel]; s <= sel_last[w->sel]; s++) {
            const seg_window_t *win = row_win(rs, c->row, s);
            uint32_t i = seg_window_first_after(rr->pool, win, t - w->w - 1);
            if (i < win->len && seg_window_at(rr->pool, win, i).ts == t - w->w) {
                m |= (uint64_t)1 << k;
                break;
            }
        }
    }
    for (uint32_t i = 0; i < rs->n_tbases && i < TSRC_TBASES; i++) {
        const tbase_t *tb = &rs->tbases[i];
        int64_t base;
        bool has = c->has_purchase;
        if (tb->kind == FT_RECENCY) base = c->last_purchase;
        else if (tb->kind == FT_AGE) base = c->first_purchase;
        else base = since_get(rs, c->row, tb->sel, &has);
        if (!has) continue;
        for (uint32_t j = 0; j < tb->n; j++)
            if (base + tb->off[j] == t) {
                m |= (uint64_t)1 << (TSRC_WINS + i);
                break;
            }
    }
    return m;
}

/* The prediction models, when a rule reads them (the checker made sure
 * segments.predict holds their parameters). */
static int make_model(seg_rulerun_t *rr)
{
    const seg_ruleset_t *rs = rr->rs;
    if (!rs->predict_state || !rs->has_predict) return 0;
    const seg_rule_predict_t *q = &rs->predict;
    seg_predict_params_t p = { .r = q->r, .alpha = q->alpha, .a = q->a, .b = q->b,
                               .unit_seconds = q->unit, .discount_rate = q->discount_rate };
    if (q->has_gg) {
        p.p = q->p;
        p.q = q->q;
        p.gamma = q->gamma;
    }
    char err[256];
    rr->model = seg_predict_new(&p, err, sizeof err);
    return rr->model ? 0 : -1;
}

/* The distinct (stream, width) pairs of rs's windows. */
static int build_ends(seg_rulerun_t *rr)
{
    const seg_ruleset_t *rs = rr->rs;
    size_t cap = 0;
    for (uint32_t k = 0; k < rs->n_wins; k++)
        cap += (size_t)(sel_last[rs->wins[k].sel] - sel_first[rs->wins[k].sel] + 1);
    rr->ends = malloc((cap + 1) * sizeof *rr->ends);
    if (!rr->ends) return -1;
    for (uint32_t k = 0; k < rs->n_wins; k++)
        for (unsigned s = sel_first[rs->wins[k].sel]; s <= sel_last[rs->wins[k].sel]; s++) {
            uint32_t j = 0;
            while (j < rr->n_ends && !(rr->ends[j].s == s && rr->ends[j].w == rs->wins[k].w)) j++;
            if (j == rr->n_ends) {
                rr->ends[j].s = (uint8_t)s;
                rr->ends[j].w = rs->wins[k].w;
                rr->n_ends++;
            }
        }
    return 0;
}

seg_rulerun_t *seg_rulerun_new(const seg_ruleset_t *rs, seg_winpool_t *pool)
{
    seg_rulerun_t *rr = calloc(1, sizeof *rr);
    if (!rr) return NULL;
    rr->rs = rs;
    rr->pool = pool;
    rr->vp = seg_vpool_new();
    uint32_t nr = rs->n_rules + 1, nf = rs->n_feats + 1, nw = rs->n_wins + 1;
    size_t depth = (size_t)(rs->max_stack + 2) * nr;
    rr->stack = malloc(depth * sizeof *rr->stack);
    rr->feat_val = malloc(nf * sizeof *rr->feat_val);
    rr->win_val = malloc(nw * sizeof *rr->win_val);
    rr->rule_val = malloc(nr * sizeof *rr->rule_val);
    rr->feat_gen = calloc(nf, sizeof *rr->feat_gen);
    rr->win_gen = calloc(nw, sizeof *rr->win_gen);
    rr->rule_gen = calloc(nr, sizeof *rr->rule_gen);
    rr->rule_code = calloc(nr, sizeof *rr->rule_code);
    rr->sb.cap = (size_t)(rs->n_concat + 1) * (STR_MAX + 1);
    rr->sb.p = malloc(rr->sb.cap);
    if (!rr->vp || !rr->stack || !rr->feat_val || !rr->win_val || !rr->rule_val ||
        !rr->feat_gen || !rr->win_gen || !rr->rule_gen || !rr->rule_code || !rr->sb.p ||
        build_ends(rr) != 0 || build_tdeps(rr) != 0 || make_model(rr) != 0) {
        seg_rulerun_destroy(rr);
        return NULL;
    }
    return rr;
}

void seg_rulerun_destroy(seg_rulerun_t *rr)
{
    if (!rr) return;
    seg_vpool_destroy(rr->vp);
    free(rr->stack);
    free(rr->feat_val);
    free(rr->win_val);
    free(rr->rule_val);
    free(rr->feat_gen);
    free(rr->win_gen);
    free(rr->rule_gen);
    free(rr->rule_code);
    free(rr->sb.p);
    free(rr->ends);
    free(rr->tdeps);
    seg_predict_destroy(rr->model);
    free(rr);
}

const seg_ruleset_t *seg_rulerun_ruleset(const seg_rulerun_t *rr) { return rr->rs; }

size_t seg_rulerun_bytes(const seg_rulerun_t *rr)
{
    return seg_vpool_bytes(rr->vp) + rr->sb.cap;
}

void seg_rulerun_prefetch(const seg_rulerun_t *rr, const unsigned char *row)
{
    const seg_ruleset_t *rs = rr->rs;
    for (unsigned s = 0; s < ST__COUNT; s++)
        if (rs->retain[s] > 0)
            seg_window_prefetch(rr->pool, row_win(rs, (unsigned char *)row, s));
}

void seg_rulerun_row_free(seg_rulerun_t *rr, unsigned char *row)
{
    const seg_ruleset_t *rs = rr->rs;
    if (!rs->row_bytes) return;
    for (unsigned s = 0; s < ST__COUNT; s++)
        if (rs->retain[s] > 0) seg_window_free(rr->pool, row_win(rs, row, s));
    if (rs->predict_state) seg_window_free(rr->pool, (seg_window_t *)(row + rs->days_off));
    for (uint32_t k = 0; k < rs->n_attrs; k++) {
        attr_slot_t *a = attr_at(rs, row, k);
        if ((a->tt & 7) == AT_STR) seg_vpool_release(rr->vp, (uint32_t)a->payload);
    }
    for (uint32_t i = 0; i < rs->n_rules; i++)
        if (rs->rules[i].form == FORM_VALUE) seg_vpool_release(rr->vp, value_id(&rs->rules[i], row));
    memset(row, 0, rs->row_bytes);
}

/* ---- folding ------------------------------------------------------------------------- */

uint64_t seg_rule_dirty_of(const seg_event_t *ev)
{
    uint64_t d = ev->attrs.fmt != SEG_ATTRS_NONE ? DEP_ATTR : 0;
    int s = rule_stream_of(ev->type, ev->kind);
    if (s == ST_PURCHASE) d |= DEP_PURCHASE;
    else if (s == ST_REFUND) d |= DEP_REFUND;
    else if (s >= ST_VISIT) d |= DEP_CONTACT0 << (s - ST_VISIT);
    return d;
}

static int fold_attrs(seg_rulerun_t *rr, unsigned char *row, const seg_event_t *ev)
{
    const seg_ruleset_t *rs = rr->rs;
    seg_attrs_iter_t it;
    seg_attr_t a;
    int rc = 0;
    seg_attrs_iter_init(&it, &ev->attrs);
    while (seg_attrs_iter_next(&it, &a)) {
        if (a.type == SEG_ATTR_OTHER) continue;
        if (a.type == SEG_ATTR_STRING && a.str_len > ATTR_MAX) continue;
        for (uint32_t k = 0; k < rs->n_attrs; k++) {
            if (rs->attr_key_len[k] != a.key_len || memcmp(rs->attr_keys[k], a.key, a.key_len))
                continue;
            attr_slot_t *s = attr_at(rs, row, k);
            /* The latest ts wins; between equal ts, the one read last. */
            if ((s->tt & 7) != AT_NEVER && (s->tt >> 3) > ev->ts) break;
            attr_slot_t n = { 0 };
            switch (a.type) {
            case SEG_ATTR_NULL: n.tt = AT_NULL; break;
            case SEG_ATTR_BOOL: n.tt = AT_BOOL; n.payload = a.b != 0; break;
            case SEG_ATTR_NUMBER: {
                rval_t v = rv_from_double(a.num);
                if (v.t == RV_ABSENT) goto skip;          /* NaN/inf: ignored like OTHER */
                if (v.t == RV_DEC) {
                    n.tt = AT_DEC;
                    n.payload = v.u.i;
                } else {
                    n.tt = AT_REAL;
                    memcpy(&n.payload, &v.u.d, 8);
                }
                break;
            }
            default: {
                uint32_t id = seg_vpool_intern(rr->vp, a.str, a.str_len);
                if (!id) {
                    rc = -1;
                    goto skip;
                }
                n.tt = AT_STR;
                n.payload = id;
                break;
            }
            }
            n.tt |= (int64_t)((uint64_t)ev->ts << 3);
            if ((s->tt & 7) == AT_STR) seg_vpool_release(rr->vp, (uint32_t)s->payload);
            *s = n;
        skip:
            break;
        }
    }
    return rc;
}

int seg_rulerun_fold(seg_rulerun_t *rr, unsigned char *row, const seg_event_t *ev, int64_t t)
{
    const seg_ruleset_t *rs = rr->rs;
    if (!rs->row_bytes) return 0;
    int rc = 0;
    int s = rule_stream_of(ev->type, ev->kind);
    if (s >= 0 && rs->retain[s] > 0 && ev->ts > t - rs->retain[s])
        rc |= seg_window_insert(rr->pool, row_win(rs, row, (unsigned)s), ev->ts,
                                ev->has_amount ? ev->amount : 0);
    if (s >= 0 && s != ST_PURCHASE) {
        unsigned sel = (unsigned)s;       /* streams and selectors share numbers up to SEL_CALL */
        bool has;
        if (rs->since_kept[sel]) {
            int64_t cur = since_get(rs, row, sel, &has);
            if (!has || cur < ev->ts) since_put(rs, row, sel, ev->ts);
        }
        if (s >= ST_VISIT && rs->since_kept[SEL_CONTACT]) {
            int64_t cur = since_get(rs, row, SEL_CONTACT, &has);
            if (!has || cur < ev->ts) since_put(rs, row, SEL_CONTACT, ev->ts);
        }
    }
    if (rs->predict_state && s == ST_PURCHASE) {
        /* the purchase days of the predictions: one entry per UTC day,
         * the day's purchases summed (refunds are left out) */
        int64_t day = ev->ts / 86400 * 86400;
        if (day > ev->ts) day -= 86400;
        rc |= seg_window_add(rr->pool, (seg_window_t *)(row + rs->days_off), day,
                             ev->has_amount ? ev->amount : 0);
        if (rs->n_tpreds) memset(row + rs->pnext_off, 0, 8);   /* the crossings move */
    }
    if (rs->n_attrs && ev->attrs.fmt != SEG_ATTRS_NONE) rc |= fold_attrs(rr, row, ev);
    return rc ? -1 : 0;
}

/* ---- features ------------------------------------------------------------------------ */

static rval_t dur(int64_t s) { return (rval_t){ .t = RV_DUR, .u.i = s }; }

static const uint8_t sel_first[SEL__COUNT] = { ST_PURCHASE, ST_REFUND, ST_VISIT, ST_INQUIRY,
                                               ST_COMPLAINT, ST_SUPPORT, ST_FEEDBACK, ST_CALL,
                                               ST_VISIT };
static const uint8_t sel_last[SEL__COUNT] = { ST_PURCHASE, ST_REFUND, ST_VISIT, ST_INQUIRY,
                                              ST_COMPLAINT, ST_SUPPORT, ST_FEEDBACK, ST_CALL,
                                              ST_CALL };

static rval_t window_value(seg_rulerun_t *rr, uint32_t k)
{
    if (rr->win_gen[k] == rr->gen) return rr->win_val[k];
    const seg_ruleset_t *rs = rr->rs;
    const win_t *w = &rs->wins[k];
    int64_t cut = rr->c->t - w->w, count = 0, sum = 0;
    for (unsigned s = sel_first[w->sel]; s <= sel_last[w->sel]; s++) {
        const seg_window_t *win = row_win(rs, rr->c->row, s);
        uint32_t i = seg_window_first_after(rr->pool, win, cut);
        count += win->len - i;
        if (w->sum) {
            int64_t vals[32];
            for (uint32_t n; i < win->len; i += n) {
                n = seg_window_vals(rr->pool, win, i, vals, 32);
                for (uint32_t j = 0; j < n; j++) sum += vals[j];
            }
        }
    }
    rval_t v = { .t = RV_DEC, .u.i = w->sum ? sum : count * DEC_ONE };
    rr->win_val[k] = v;
    rr->win_gen[k] = rr->gen;
    return v;
}

/* Whether a prediction reads the mean spend (Gamma-Gamma). */
static bool needs_mbar(uint8_t kind) { return kind == FT_SPEND || kind == FT_CLV; }

/* The customer's history as the models see it (docs/predict.md); false
 * without a purchase. The mean spend walks every purchase day, so it is
 * summed only when `mbar` asks for it (spend and CLV; P(alive) and
 * expected purchases do not read it); otherwise h->mbar is NaN, which any
 * reader that should have asked turns into an absent value. */
static bool predict_hist(seg_rulerun_t *rr, const seg_rule_cust_t *c, bool mbar,
                         seg_predict_hist_t *h)
{
    const seg_ruleset_t *rs = rr->rs;
    const seg_window_t *days = (const seg_window_t *)(c->row + rs->days_off);
    if (!c->has_purchase || days->len == 0) return false;
    h->x = days->len - 1;
    h->first = c->first_purchase;
    h->last = c->last_purchase;
    h->mbar = NAN;
    if (!mbar) return true;
    int64_t sum = 0, vals[32];
    for (uint32_t i = 1, n; i < days->len; i += n) {
        n = seg_window_vals(rr->pool, days, i, vals, 32);
        for (uint32_t j = 0; j < n; j++) sum += vals[j];
    }
    h->mbar = h->x ? (double)sum / (double)DEC_ONE / (double)h->x : 0.0;
    return true;
}

static seg_predict_feature_t predict_feature(uint8_t kind)
{
    switch (kind) {
    case FT_P_ALIVE: return SEG_PF_P_ALIVE;
    case FT_EXPECTED: return SEG_PF_EXPECTED_PURCHASES;
    case FT_SPEND: return SEG_PF_EXPECTED_SPEND;
    default: return SEG_PF_CLV;
    }
}

static rval_t feature(seg_rulerun_t *rr, uint32_t k)
{
    if (rr->feat_gen[k] == rr->gen) return rr->feat_val[k];
    const seg_ruleset_t *rs = rr->rs;
    const feat_t *f = &rs->feats[k];
    const seg_rule_cust_t *c = rr->c;
    rval_t v = { .t = RV_ABSENT };
    bool has;
    switch (f->kind) {
    case FT_RECENCY:
        if (c->has_purchase) v = dur(c->t - c->last_purchase);
        break;
    case FT_AGE:
        if (c->has_purchase) v = dur(c->t - c->first_purchase);
        break;
    case FT_SINCE: {
        int64_t base = since_get(rs, c->row, f->sel, &has);
        if (has) v = dur(c->t - base);
        break;
    }
    default: {
        seg_predict_hist_t h;
        if (!rr->model || !predict_hist(rr, c, needs_mbar(f->kind), &h)) break;
        double d = seg_predict_eval(rr->model, &h, predict_feature(f->kind), f->h, c->t);
        if (d == d) v = (rval_t){ .t = RV_REAL, .u.d = d };   /* NaN: absent */
        break;
    }
    }
    rr->feat_val[k] = v;
    rr->feat_gen[k] = rr->gen;
    return v;
}

static rval_t attr_value(seg_rulerun_t *rr, uint32_t k)
{
    const attr_slot_t *a = attr_at(rr->rs, rr->c->row, k);
    switch (a->tt & 7) {
    case AT_BOOL: return (rval_t){ .t = RV_BOOL, .u.i = a->payload != 0 };
    case AT_DEC:  return (rval_t){ .t = RV_DEC, .u.i = a->payload };
    case AT_REAL: {
        rval_t v = { .t = RV_REAL };
        memcpy(&v.u.d, &a->payload, 8);
        return v;
    }
    case AT_STR: {
        uint32_t len;
        const char *s = seg_vpool_get(rr->vp, (uint32_t)a->payload, &len);
        return s ? (rval_t){ .t = RV_STR, .len = len, .u.s = s } : (rval_t){ .t = RV_ABSENT };
    }
    default:      return (rval_t){ .t = RV_ABSENT };
    }
}

static rval_t str(const char *s)
{
    return s ? (rval_t){ .t = RV_STR, .len = (uint32_t)strlen(s), .u.s = s }
             : (rval_t){ .t = RV_ABSENT };
}

static int compute_rule(seg_rulerun_t *rr, uint32_t i, rval_t *stack);

/* Rule i's value in this evaluation: computed already, else (its inputs
 * did not change) its stored label, or for a computed rule its value
 * recomputed (the stored text has lost the number's type). */
static rval_t rule_value(seg_rulerun_t *rr, uint32_t i, rval_t *stack, uint16_t *code)
{
    const crule_t *r = &rr->rs->rules[i];
    if (rr->rule_gen[i] != rr->gen) {
        if (r->form != FORM_VALUE) {
            rr->rule_code[i] = stored_code(r, rr->c->row);
            rr->rule_gen[i] = rr->gen;
        } else {
            compute_rule(rr, i, stack);
        }
    }
    if (code) *code = rr->rule_code[i];
    if (r->form != FORM_VALUE)
        return str(rr->rule_code[i] ? r->labels[rr->rule_code[i]] : NULL);
    return rr->rule_val[i];
}

/* ---- the machine ------------------------------------------------------------------- */

static rval_t run(seg_rulerun_t *rr, uint32_t pc, rval_t *stack)
{
    const seg_ruleset_t *rs = rr->rs;
    const rop_t *code = rs->code;
    rval_t *sp = stack;          /* next free slot */
    for (;; pc++) {
        const rop_t *op = &code[pc];
        switch (op->op) {
        case OP_K:    *sp++ = rs->consts[op->a]; break;
        case OP_WIN:  *sp++ = window_value(rr, op->a); break;
        case OP_FEAT: *sp++ = feature(rr, op->a); break;
        case OP_ATTR: *sp++ = attr_value(rr, op->a); break;
        case OP_DIM:
            *sp++ = str(seg_dim_value_name((seg_dim_t)op->a, rr->c->dims[op->a]));
            break;
        case OP_RULE:
            *sp = rule_value(rr, op->a, sp + 1, NULL);
            sp++;
            break;
        case OP_CODE_IN: {
            int hit = 0;
            if (op->c == 0) {
                uint8_t code_ = rr->c->dims[op->d];
                if (seg_dim_value_name((seg_dim_t)op->d, code_))
                    hit = 1 + (int)((rs->codesets[op->a * 4 + code_ / 64] >> (code_ % 64)) & 1);
            } else {
                uint16_t code_;
                (void)rule_value(rr, op->d, sp, &code_);
                if (code_)
                    hit = 1 + (int)((rs->codesets[op->a * 4 + code_ / 64] >> (code_ % 64)) & 1);
            }
            /* hit: 0 absent (false whatever the operator), 1 not in, 2 in */
            *sp++ = (rval_t){ .t = RV_BOOL, .u.i = hit && ((hit == 2) ^ (op->b != 0)) };
            break;
        }
        case OP_NEG:  sp[-1] = rv_neg(sp[-1]); break;
        case OP_NOT:  sp[-1] = (rval_t){ .t = RV_BOOL, .u.i = !rv_truthy(sp[-1]) }; break;
        case OP_BOOL: sp[-1] = (rval_t){ .t = RV_BOOL, .u.i = rv_truthy(sp[-1]) }; break;
        case OP_HAS:  sp[-1] = (rval_t){ .t = RV_BOOL, .u.i = sp[-1].t != RV_ABSENT }; break;
        case OP_ARITH:
            sp--;
            sp[-1] = rv_arith((int)op->a, sp[-1], sp[0], &rr->sb);
            break;
        case OP_CMP:
            sp--;
            sp[-1] = (rval_t){ .t = RV_BOOL, .u.i = rv_compare((int)op->a, sp[-1], sp[0]) };
            break;
        case OP_IN: {
            const uint32_t *l = rs->lists + rs->list_at[op->a];
            int hit = 0;
            for (uint32_t k = 0; k < l[0] && !hit; k++)
                hit = rv_compare(CMP_EQ, sp[-1], rs->consts[l[1 + k]]);
            sp[-1] = (rval_t){ .t = RV_BOOL, .u.i = hit };
            break;
        }
        case OP_TIER: {
            const uint32_t *l = rs->lists + rs->list_at[op->a];
            rval_t x = sp[-1];
            if (x.t == RV_ABSENT) break;
            int64_t n = 0;
            int typed = 0;
            for (uint32_t k = 0; k < l[0]; k++) {
                rval_t bnd = rs->consts[l[1 + k]];
                int num = (x.t == RV_DEC || x.t == RV_REAL) && (bnd.t == RV_DEC || bnd.t == RV_REAL);
                if (num || x.t == bnd.t) typed = 1;
                n += rv_compare(CMP_LE, bnd, x);
            }
            sp[-1] = typed ? (rval_t){ .t = RV_DEC, .u.i = n * DEC_ONE } : (rval_t){ .t = RV_ABSENT };
            break;
        }
        case OP_JF:
            sp--;
            if (!rv_truthy(*sp)) pc = op->a - 1;
            break;
        case OP_JMP:
            pc = op->a - 1;
            break;
        case OP_ANDJ:
        case OP_ORJ: {
            int t = rv_truthy(sp[-1]);
            sp[-1] = (rval_t){ .t = RV_BOOL, .u.i = t };
            if (t == (op->op == OP_ORJ)) pc = op->a - 1;
            else sp--;
            break;
        }
        default: /* OP_END */
            return sp[-1];
        }
    }
}

/* Evaluates rule i into rule_val/rule_code (no storing, no reporting). */
static int compute_rule(seg_rulerun_t *rr, uint32_t i, rval_t *stack)
{
    const crule_t *r = &rr->rs->rules[i];
    uint16_t code = 0;
    rval_t v = { .t = RV_ABSENT };
    if (!r->where.present || rv_truthy(run(rr, r->where.start, stack))) {
        switch (r->form) {
        case FORM_WHEN:
            code = rv_truthy(run(rr, r->when.start, stack)) ? 2 : 1;
            break;
        case FORM_CASES:
            code = r->else_code;
            for (uint32_t k = 0; k < r->n_cases; k++)
                if (rv_truthy(run(rr, r->cases[k].start, stack))) {
                    code = r->case_code[k];
                    break;
                }
            break;
        default:
            v = run(rr, r->value.start, stack);
            break;
        }
    }
    /* a label's text is made only when another rule reads it (rule_value) */
    rr->rule_val[i] = v;
    rr->rule_code[i] = code;
    rr->rule_gen[i] = rr->gen;
    return 0;
}

/* Expires what no window needs any more; memory only, results are exact
 * either way (every window counts ts > t - W itself). */
static void expire(seg_rulerun_t *rr, unsigned char *row, int64_t t)
{
    const seg_ruleset_t *rs = rr->rs;
    for (unsigned s = 0; s < ST__COUNT; s++)
        if (rs->retain[s] > 0) seg_window_expire(rr->pool, row_win(rs, row, s), t - rs->retain[s]);
}

int seg_rulerun_eval(seg_rulerun_t *rr, const seg_rule_cust_t *c, uint64_t dirty,
                     seg_rule_change_fn fn, void *opaque)
{
    const seg_ruleset_t *rs = rr->rs;
    if (!rs->n_rules) return 0;
    if (++rr->gen == 0) {                 /* wrapped: forget every stamp */
        memset(rr->feat_gen, 0, (rs->n_feats + 1) * sizeof *rr->feat_gen);
        memset(rr->win_gen, 0, (rs->n_wins + 1) * sizeof *rr->win_gen);
        memset(rr->rule_gen, 0, (rs->n_rules + 1) * sizeof *rr->rule_gen);
        rr->gen = 1;
    }
    rr->c = c;
    rr->sb.used = 0;
    /* Time: only the rules reading a source due at t (the rest cannot
     * have changed since their last evaluation, or a deadline would have
     * been due earlier). */
    uint64_t tdue = dirty != SEG_RULE_DIRTY_ALL && (dirty & DEP_TIME) ? due_sources(rr, c) : 0;
    if (dirty != SEG_RULE_DIRTY_ALL) dirty &= ~(uint64_t)DEP_TIME;
    expire(rr, c->row, c->t);
    int rc = 0;
    for (uint32_t i = 0; i < rs->n_rules; i++) {
        const crule_t *r = &rs->rules[i];
        if (!(r->deps & dirty) && !(rr->tdeps[i] & tdue) && dirty != SEG_RULE_DIRTY_ALL)
            continue;
        if (rr->rule_gen[i] != rr->gen) compute_rule(rr, i, rr->stack);
        if (r->form != FORM_VALUE) {
            uint16_t old = stored_code(r, c->row), now = rr->rule_code[i];
            if (old == now) continue;
            c->row[r->slot_off] = (uint8_t)(r->plain_when ? now - 1 : now);
            fn(opaque, i, old ? r->labels[old] : NULL, now ? r->labels[now] : NULL);
        } else {
            uint32_t old = value_id(r, c->row), len = 0;
            const char *was = seg_vpool_get(rr->vp, old, &len);
            rval_t v = rr->rule_val[i];
            const char *s = NULL;
            size_t n = 0;
            if (v.t != RV_ABSENT) {
                n = rv_print(v, rr->pbuf, &s);
                if (n > STR_MAX) s = NULL;
            }
            if ((!s && !was) || (s && was && len == n && memcmp(was, s, n) == 0)) continue;
            uint32_t id = 0;
            if (s) {
                id = seg_vpool_intern(rr->vp, s, (uint32_t)n);
                if (!id) {
                    rc = -1;
                    continue;
                }
                s = seg_vpool_get(rr->vp, id, NULL);   /* NUL-terminated */
            }
            memcpy(c->row + r->slot_off, &id, 4);
            fn(opaque, i, was, s);
            seg_vpool_release(rr->vp, old);
        }
        dirty |= DEP_RULE(i);
    }
    return rc;
}

/* ---- the next instant ---------------------------------------------------------------- */

int64_t seg_rulerun_next(seg_rulerun_t *rr, const seg_rule_cust_t *c)
{
    const seg_ruleset_t *rs = rr->rs;
    int64_t best = INT64_MAX, now = c->t;
    for (uint32_t i = 0; i < rs->n_tbases; i++) {
        const tbase_t *tb = &rs->tbases[i];
        int64_t base;
        bool has = c->has_purchase;
        if (tb->kind == FT_RECENCY) base = c->last_purchase;
        else if (tb->kind == FT_AGE) base = c->first_purchase;
        else base = since_get(rs, c->row, tb->sel, &has);
        if (!has) continue;
        /* offsets ascend: the first instant after now is the one */
        uint32_t lo = 0, hi = tb->n;
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (base + tb->off[mid] > now) hi = mid;
            else lo = mid + 1;
        }
        if (lo < tb->n && base + tb->off[lo] < best) best = base + tb->off[lo];
    }
    seg_predict_hist_t h;
    if (rs->n_tpreds && rr->model && predict_hist(rr, c, false, &h)) {
        /* Between purchases each prediction only falls, so each comparison
         * flips at most once: the earliest flip after the instant it was
         * computed stays the next one until it passes or a purchase comes
         * (which clears it), and the row keeps it. */
        int64_t cached;
        memcpy(&cached, c->row + rs->pnext_off, 8);
        if (cached == 0 || cached <= now) {
            cached = INT64_MAX;
            if (rs->tpreds_mbar) (void)predict_hist(rr, c, true, &h);
            for (uint32_t k = 0; k < rs->n_tpreds; k++) {
                const tpred_t *tp = &rs->tpreds[k];
                const feat_t *f = &rs->feats[tp->feat];
                int64_t d = seg_predict_cross(rr->model, &h, predict_feature(f->kind), f->h,
                                              tp->op == CMP_LT ? SEG_PCMP_LT : SEG_PCMP_LE,
                                              tp->c, now);
                if (d < cached) cached = d;
            }
            memcpy(c->row + rs->pnext_off, &cached, 8);
        }
        if (cached < best) best = cached;
    }
    for (uint32_t k = 0; k < rr->n_ends; k++) {
        const seg_window_t *win = row_win(rs, c->row, rr->ends[k].s);
        if (win->len == 0) continue;
        int64_t w = rr->ends[k].w;
        uint32_t i = seg_window_first_after(rr->pool, win, now - w);
        if (i < win->len) {
            int64_t d = seg_window_at(rr->pool, win, i).ts + w;
            if (d < best) best = d;
        }
    }
    return best;
}

int seg_rulerun_predict(seg_rulerun_t *rr, const seg_rule_cust_t *c, seg_rule_pview_t *out)
{
    seg_predict_hist_t h;
    const seg_rule_predict_t *q = &rr->rs->predict;
    if (!rr->model || !predict_hist(rr, c, q->has_gg, &h)) return -1;
    double u = (double)q->unit;
    out->x = h.x;
    out->t_x = (double)(h.last - h.first) / u;
    out->T = (double)((c->t > h.last ? c->t : h.last) - h.first) / u;
    out->p_alive = seg_predict_eval(rr->model, &h, SEG_PF_P_ALIVE, 0, c->t);
    out->expected = seg_predict_eval(rr->model, &h, SEG_PF_EXPECTED_PURCHASES, q->horizon, c->t);
    out->clv = q->has_gg ? seg_predict_eval(rr->model, &h, SEG_PF_CLV, q->horizon, c->t) : NAN;
    return 0;
}

/* ---- output.features ------------------------------------------------------------------ */

uint32_t seg_ruleset_outf_count(const seg_ruleset_t *rs) { return rs ? rs->n_outf : 0; }

typedef struct { char *p, *end; } ob_t;

static void ob_put(ob_t *o, const char *s, size_t n)
{
    if ((size_t)(o->end - o->p) < n) n = (size_t)(o->end - o->p);
    memcpy(o->p, s, n);
    o->p += n;
}

static void ob_str(ob_t *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    ob_put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char e[6] = { '\\', (char)ch };
        if (ch == '"' || ch == '\\') {
            ob_put(o, e, 2);
        } else if (ch < 0x20) {
            char u[6] = { '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15] };
            ob_put(o, u, 6);
        } else {
            ob_put(o, (const char *)&ch, 1);
        }
    }
    ob_put(o, "\"", 1);
}

static void ob_i64(ob_t *o, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", (long long)v);
    ob_put(o, b, (size_t)n);
}

size_t seg_rulerun_features_json(seg_rulerun_t *rr, const seg_rule_cust_t *c,
                                 const seg_features_t *f, bool fresh, char *buf, size_t cap)
{
    const seg_ruleset_t *rs = rr->rs;
    ob_t o = { buf, buf + cap - 1 };
    if (fresh) {
        if (++rr->gen == 0) {
            memset(rr->feat_gen, 0, (rs->n_feats + 1) * sizeof *rr->feat_gen);
            memset(rr->win_gen, 0, (rs->n_wins + 1) * sizeof *rr->win_gen);
            memset(rr->rule_gen, 0, (rs->n_rules + 1) * sizeof *rr->rule_gen);
            rr->gen = 1;
        }
        rr->c = c;
        rr->sb.used = 0;
    }
    ob_put(&o, "{", 1);
    for (uint32_t i = 0; i < rs->n_outf; i++) {
        const outf_t *e = &rs->outf[i];
        if (i) ob_put(&o, ",", 1);
        ob_str(&o, e->name, strlen(e->name));
        ob_put(&o, ":", 1);
        char num[64];
        switch (e->builtin) {
        case OUTF_RECENCY:
        case OUTF_AGE:
            if (f->has_purchase) ob_i64(&o, e->builtin == OUTF_RECENCY ? f->recency : f->age);
            else ob_put(&o, "null", 4);
            continue;
        case OUTF_FREQUENCY: ob_i64(&o, f->frequency); continue;
        case OUTF_COMPLAINTS: ob_i64(&o, f->complaints); continue;
        case OUTF_MONETARY: ob_put(&o, num, seg_money_format(f->monetary, num)); continue;
        default: break;
        }
        rval_t v = run(rr, e->prog.start, rr->stack);
        switch (v.t) {
        case RV_BOOL: ob_put(&o, v.u.i ? "true" : "false", v.u.i ? 4 : 5); break;
        case RV_DEC: ob_put(&o, num, seg_money_format(v.u.i, num)); break;
        case RV_DUR: ob_i64(&o, v.u.i); break;     /* seconds */
        case RV_REAL:
            if (isfinite(v.u.d)) ob_put(&o, num, (size_t)snprintf(num, sizeof num, "%.17g", v.u.d));
            else ob_put(&o, "null", 4);
            break;
        case RV_STR:
            if (v.len <= 256) ob_str(&o, v.u.s, v.len);
            else ob_put(&o, "null", 4);
            break;
        default: ob_put(&o, "null", 4); break;
        }
    }
    ob_put(&o, "}", 1);
    *o.p = '\0';
    return (size_t)(o.p - buf);
}

const char *seg_rulerun_value(seg_rulerun_t *rr, const unsigned char *row, uint32_t i)
{
    const crule_t *r = &rr->rs->rules[i];
    if (r->form == FORM_VALUE) return seg_vpool_get(rr->vp, value_id(r, row), NULL);
    uint16_t code = stored_code(r, row);
    return code ? r->labels[code] : NULL;
}

int seg_rulerun_eval_all(seg_rulerun_t *rr, const seg_rule_cust_t *c, const char *const *prev,
                         seg_rule_change_fn fn, void *opaque)
{
    const seg_ruleset_t *rs = rr->rs;
    if (!rs->n_rules) return 0;
    if (++rr->gen == 0) {
        memset(rr->feat_gen, 0, (rs->n_feats + 1) * sizeof *rr->feat_gen);
        memset(rr->win_gen, 0, (rs->n_wins + 1) * sizeof *rr->win_gen);
        memset(rr->rule_gen, 0, (rs->n_rules + 1) * sizeof *rr->rule_gen);
        rr->gen = 1;
    }
    rr->c = c;
    rr->sb.used = 0;
    expire(rr, c->row, c->t);
    int rc = 0;
    for (uint32_t i = 0; i < rs->n_rules; i++) {
        const crule_t *r = &rs->rules[i];
        if (rr->rule_gen[i] != rr->gen) compute_rule(rr, i, rr->stack);
        const char *s = NULL;
        size_t n = 0;
        uint32_t id = 0;
        rval_t v = r->form == FORM_VALUE ? rr->rule_val[i] : (rval_t){ .t = RV_ABSENT };
        if (v.t != RV_ABSENT) {
            n = rv_print(v, rr->pbuf, &s);
            if (n > STR_MAX) s = NULL;
        }
        /* Store it, whatever the row held. */
        if (r->form == FORM_VALUE) {
            if (s && !(id = seg_vpool_intern(rr->vp, s, (uint32_t)n))) {
                rc = -1;
                continue;
            }
            seg_vpool_release(rr->vp, value_id(r, c->row));
            memcpy(c->row + r->slot_off, &id, 4);
            if (id) s = seg_vpool_get(rr->vp, id, NULL);
        } else {
            uint16_t code = rr->rule_code[i];
            c->row[r->slot_off] = (uint8_t)(r->plain_when ? code - 1 : code);
            s = code ? r->labels[code] : NULL;
        }
        const char *was = prev[i];
        if ((!s && !was) || (s && was && strcmp(s, was) == 0)) continue;
        fn(opaque, i, was, s);
    }
    return rc;
}
