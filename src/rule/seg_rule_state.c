/*
 * seg_rule_state: a customer's rule row in and out of persistence, and
 * from one rule set to another.
 *
 * Snapshots and changelog records carry the row positionally, in the
 * layout of the rule set they were written under (the header or marker
 * carries that rule set's definition, seg_rules_def_pack), because that is
 * compact and cheap to load: no names per customer. A change of rules
 * (a reload, or a restart under a different file) moves rows by name
 * instead: a window kept for contact.visit stays contact.visit's, an
 * attribute stays under its key, a rule keeps its value if a rule of that
 * name still exists and can hold it.
 *
 * The packed row: [ windows..., sinces..., attrs..., values..., days ]
 *   windows: one flat array ts, val, ts, val... per kept stream, ST order;
 *   sinces:  one latest ts (or nil) per kept selector, SEL order;
 *   attrs:   nil (never set) or [ts, type, payload] per kept key;
 *   values:  one string (or nil) per rule;
 *   days:    the purchase-days array, or nil without predictions.
 */
#include "rule/seg_rule_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_window(seg_rulerun_t *rr, const seg_window_t *w, msgpack_packer *pk)
{
    msgpack_pack_array(pk, w->len * 2);
    for (uint32_t i = 0; i < w->len; i++) {
        seg_winentry_t e = seg_window_at(rr->pool, w, i);
        msgpack_pack_int64(pk, e.ts);
        msgpack_pack_int64(pk, e.val);
    }
}

void seg_rulerun_pack_row(seg_rulerun_t *rr, const unsigned char *row, msgpack_packer *pk)
{
    const seg_ruleset_t *rs = rr->rs;
    unsigned char *r = (unsigned char *)row;
    unsigned nw = 0, ns = 0;
    for (unsigned s = 0; s < ST__COUNT; s++) nw += rs->retain[s] > 0;
    for (unsigned s = 0; s < SEL__COUNT; s++) ns += rs->since_kept[s];
    msgpack_pack_array(pk, nw + ns + rs->n_attrs + rs->n_rules + 1);
    for (unsigned s = 0; s < ST__COUNT; s++)
        if (rs->retain[s] > 0) pack_window(rr, row_win(rs, r, s), pk);
    for (unsigned s = 0; s < SEL__COUNT; s++) {
        if (!rs->since_kept[s]) continue;
        bool has;
        int64_t ts = since_get(rs, row, s, &has);
        if (has) msgpack_pack_int64(pk, ts);
        else msgpack_pack_nil(pk);
    }
    for (uint32_t k = 0; k < rs->n_attrs; k++) {
        const attr_slot_t *a = attr_at(rs, r, k);
        int type = (int)(a->tt & 7);
        if (type == AT_NEVER) {
            msgpack_pack_nil(pk);
            continue;
        }
        msgpack_pack_array(pk, 3);
        msgpack_pack_int64(pk, a->tt >> 3);
        msgpack_pack_uint8(pk, (uint8_t)type);
        if (type == AT_STR) {
            uint32_t len;
            const char *v = seg_vpool_get(rr->vp, (uint32_t)a->payload, &len);
            pack_str(pk, v ? v : "", v ? len : 0);
        } else {
            msgpack_pack_int64(pk, a->payload);
        }
    }
    for (uint32_t i = 0; i < rs->n_rules; i++) {
        const char *v = seg_rulerun_value(rr, row, i);
        if (v) pack_str(pk, v, strlen(v));
        else msgpack_pack_nil(pk);
    }
    if (rs->predict_state) pack_window(rr, (const seg_window_t *)(row + rs->days_off), pk);
    else msgpack_pack_nil(pk);
}

static int get_i64(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 0;
    }
    return -1;
}

static int unpack_window(seg_rulerun_t *rr, seg_window_t *w, const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size % 2) return -1;
    int64_t last = INT64_MIN;
    for (uint32_t i = 0; i < o->via.array.size; i += 2) {
        int64_t ts, val;
        if (get_i64(&o->via.array.ptr[i], &ts) || get_i64(&o->via.array.ptr[i + 1], &val) ||
            ts < last)
            return -1;
        last = ts;
        if (seg_window_insert(rr->pool, w, ts, val) != 0) return -1;
    }
    return 0;
}

/* The code of label v (len bytes) in rule r, or 0. */
static uint16_t label_code(const crule_t *r, const char *v, size_t len)
{
    for (uint32_t c = 1; c <= r->n_labels; c++)
        if (strlen(r->labels[c]) == len && memcmp(r->labels[c], v, len) == 0) return (uint16_t)c;
    return 0;
}

/* Stores value v (NUL-free, len bytes; NULL: none) as rule r's. Returns
 * 0, 1 if a graded rule has no such label (stored as none), -1 on
 * allocation failure. */
static int put_value(seg_rulerun_t *rr, unsigned char *row, const crule_t *r, const char *v,
                     size_t len)
{
    if (r->form == FORM_VALUE) {
        uint32_t id = 0;
        if (v && !(id = seg_vpool_intern(rr->vp, v, (uint32_t)len))) return -1;
        seg_vpool_release(rr->vp, value_id(r, row));
        memcpy(row + r->slot_off, &id, 4);
        return 0;
    }
    uint16_t code = v ? label_code(r, v, len) : 0;
    if (r->plain_when && !code) code = 1;   /* out: a plain membership always has a value */
    row[r->slot_off] = (uint8_t)(r->plain_when ? code - 1 : code);
    return v && !label_code(r, v, len) ? 1 : 0;
}

int seg_rulerun_unpack_row(seg_rulerun_t *rr, unsigned char *row, const msgpack_object *o,
                           char *errstr, size_t errstr_size)
{
    const seg_ruleset_t *rs = rr->rs;
    unsigned nw = 0, ns = 0;
    for (unsigned s = 0; s < ST__COUNT; s++) nw += rs->retain[s] > 0;
    for (unsigned s = 0; s < SEL__COUNT; s++) ns += rs->since_kept[s];
    const char *why = "malformed rule state";
    if (o->type != MSGPACK_OBJECT_ARRAY ||
        o->via.array.size != nw + ns + rs->n_attrs + rs->n_rules + 1)
        goto bad;
    const msgpack_object *a = o->via.array.ptr;
    uint32_t k = 0;
    for (unsigned s = 0; s < ST__COUNT; s++)
        if (rs->retain[s] > 0 && unpack_window(rr, row_win(rs, row, s), &a[k++])) goto bad;
    for (unsigned s = 0; s < SEL__COUNT; s++) {
        if (!rs->since_kept[s]) continue;
        int64_t ts;
        if (a[k].type == MSGPACK_OBJECT_NIL) {
            k++;
            continue;
        }
        if (get_i64(&a[k++], &ts) || ts == INT64_MIN) goto bad;
        since_put(rs, row, s, ts);
    }
    for (uint32_t i = 0; i < rs->n_attrs; i++, k++) {
        if (a[k].type == MSGPACK_OBJECT_NIL) continue;
        const msgpack_object *e = a[k].via.array.ptr;
        int64_t ts, type, payload = 0;
        if (a[k].type != MSGPACK_OBJECT_ARRAY || a[k].via.array.size != 3 || get_i64(&e[0], &ts) ||
            get_i64(&e[1], &type) || type < AT_NULL || type > AT_STR ||
            ts < (INT64_MIN >> 3) || ts > (INT64_MAX >> 3))
            goto bad;
        if (type == AT_STR) {
            if (e[2].type != MSGPACK_OBJECT_STR || e[2].via.str.size > ATTR_MAX ||
                memchr(e[2].via.str.ptr, '\0', e[2].via.str.size))
                goto bad;
            uint32_t id = seg_vpool_intern(rr->vp, e[2].via.str.ptr, e[2].via.str.size);
            if (!id) {
                why = "out of memory";
                goto bad;
            }
            payload = id;
        } else if (get_i64(&e[2], &payload)) {
            goto bad;
        }
        attr_slot_t *slot = attr_at(rs, row, i);
        slot->tt = (int64_t)((uint64_t)ts << 3) | type;
        slot->payload = payload;
    }
    for (uint32_t i = 0; i < rs->n_rules; i++, k++) {
        const crule_t *r = &rs->rules[i];
        if (a[k].type == MSGPACK_OBJECT_NIL) {
            if (r->plain_when) goto bad;
            continue;
        }
        if (a[k].type != MSGPACK_OBJECT_STR || a[k].via.str.size > STR_MAX ||
            memchr(a[k].via.str.ptr, '\0', a[k].via.str.size))
            goto bad;
        int rc = put_value(rr, row, r, a[k].via.str.ptr, a[k].via.str.size);
        if (rc < 0) why = "out of memory";
        if (rc != 0) goto bad;
    }
    if (rs->predict_state) {
        if (unpack_window(rr, (seg_window_t *)(row + rs->days_off), &a[k])) goto bad;
    } else if (a[k].type != MSGPACK_OBJECT_NIL) {
        goto bad;
    }
    return 0;
bad:
    seg_rulerun_row_free(rr, row);
    snprintf(errstr, errstr_size, "%s", why);
    return -1;
}

int seg_rulerun_migrate_row(seg_rulerun_t *from, unsigned char *old_row, seg_rulerun_t *to,
                            unsigned char *new_row)
{
    const seg_ruleset_t *os = from->rs, *ns = to->rs;
    int rc = 0;
    /* Windows: the same pool, so the handle moves as it is. */
    for (unsigned s = 0; s < ST__COUNT; s++) {
        if (os->retain[s] <= 0) continue;
        seg_window_t *ow = row_win(os, old_row, s);
        if (ns->retain[s] > 0) *row_win(ns, new_row, s) = *ow;
        else seg_window_free(from->pool, ow);
        memset(ow, 0, sizeof *ow);
    }
    if (os->predict_state) {
        seg_window_t *ow = (seg_window_t *)(old_row + os->days_off);
        if (ns->predict_state) *(seg_window_t *)(new_row + ns->days_off) = *ow;
        else seg_window_free(from->pool, ow);
        memset(ow, 0, sizeof *ow);
    }
    for (unsigned s = 0; s < SEL__COUNT; s++) {
        bool has;
        if (!os->since_kept[s] || !ns->since_kept[s]) continue;
        int64_t ts = since_get(os, old_row, s, &has);
        if (has) since_put(ns, new_row, s, ts);
    }
    for (uint32_t k = 0; k < os->n_attrs; k++) {
        attr_slot_t *oa = attr_at(os, old_row, k);
        int type = (int)(oa->tt & 7);
        if (type == AT_NEVER) continue;
        for (uint32_t j = 0; j < ns->n_attrs; j++) {
            if (ns->attr_key_len[j] != os->attr_key_len[k] ||
                memcmp(ns->attr_keys[j], os->attr_keys[k], os->attr_key_len[k]))
                continue;
            attr_slot_t *na = attr_at(ns, new_row, j);
            *na = *oa;
            if (type == AT_STR) {
                uint32_t len;
                const char *v = seg_vpool_get(from->vp, (uint32_t)oa->payload, &len);
                uint32_t id = v ? seg_vpool_intern(to->vp, v, len) : 0;
                if (!id) {
                    na->tt = 0;   /* lost: the history check refuses such a change first */
                    rc = -1;
                }
                na->payload = id;
            }
            break;
        }
        if (type == AT_STR) seg_vpool_release(from->vp, (uint32_t)oa->payload);
        memset(oa, 0, sizeof *oa);
    }
    for (uint32_t i = 0; i < os->n_rules; i++) {
        const crule_t *r = &os->rules[i];
        const char *v = seg_rulerun_value(from, old_row, i);
        for (uint32_t j = 0; j < ns->n_rules; j++) {
            if (strcmp(ns->rules[j].name, r->name) != 0) continue;
            if (put_value(to, new_row, &ns->rules[j], v, v ? strlen(v) : 0) < 0) rc = -1;
            break;
        }
        if (r->form == FORM_VALUE) {
            seg_vpool_release(from->vp, value_id(r, old_row));
            memset(old_row + r->slot_off, 0, 4);
        } else {
            old_row[r->slot_off] = 0;
        }
    }
    return rc;
}

/* ---- what a rule set keeps ------------------------------------------------------- */

static void item(seg_rule_item_t *out, uint32_t max, uint32_t *n, const char *name,
                 int64_t keep, int64_t need, const seg_ruleset_t *rs, int32_t rule,
                 const char *what)
{
    /* merge with an item of the same name: the longest keep and need */
    for (uint32_t i = 0; i < *n && i < max; i++) {
        if (strcmp(out[i].name, name) != 0) continue;
        if (keep > out[i].keep) out[i].keep = keep;
        if (need > out[i].need) {
            out[i].need = need;
            snprintf(out[i].rule, sizeof out[i].rule, "%s", rule >= 0 ? rs->rules[rule].name : "");
            snprintf(out[i].what, sizeof out[i].what, "%s", what);
        }
        return;
    }
    if (*n < max) {
        seg_rule_item_t *it = &out[*n];
        memset(it, 0, sizeof *it);
        snprintf(it->name, sizeof it->name, "%s", name);
        it->keep = keep;
        it->need = need;
        if (rule >= 0) snprintf(it->rule, sizeof it->rule, "%s", rs->rules[rule].name);
        snprintf(it->what, sizeof it->what, "%s", what);
    }
    (*n)++;
}

static const char *const stream_sel[ST__COUNT] = {
    "purchase", "refund", "contact.visit", "contact.inquiry", "contact.complaint",
    "contact.support", "contact.feedback", "contact.call",
};

uint32_t seg_ruleset_items(const seg_ruleset_t *rs, seg_rule_item_t *out, uint32_t max)
{
    uint32_t n = 0;
    char name[160], what[96];
    for (unsigned s = 0; s < ST__COUNT; s++) {
        if (rs->retain[s] <= 0) continue;
        snprintf(name, sizeof name, "w:%s", stream_sel[s]);
        item(out, max, &n, name, rs->retain[s], 0, rs, -1, "");
    }
    for (uint32_t k = 0; k < rs->n_wins; k++) {
        const win_t *w = &rs->wins[k];
        unsigned first = w->sel == SEL_CONTACT ? ST_VISIT : w->sel;
        unsigned last = w->sel == SEL_CONTACT ? ST_CALL : w->sel;
        for (unsigned s = first; s <= last; s++) {
            snprintf(name, sizeof name, "w:%s", stream_sel[s]);
            snprintf(what, sizeof what, "%s %s", w->sum ? "sums" : "counts", rule_sel_name(w->sel));
            item(out, max, &n, name, rs->retain[s], w->w, rs, w->rule, what);
        }
    }
    for (unsigned s = 0; s < SEL__COUNT; s++) {
        if (!rs->since_kept[s]) continue;
        snprintf(name, sizeof name, "s:%s", rule_sel_name(s));
        int32_t rule = -1;
        for (uint32_t k = 0; k < rs->n_feats && rule < 0; k++)
            if (rs->feats[k].kind == FT_SINCE && rs->feats[k].sel == s) rule = rs->feats[k].rule;
        snprintf(what, sizeof what, "reads since(%s)", rule_sel_name(s));
        item(out, max, &n, name, SEG_RULE_FOREVER, rule >= 0 ? SEG_RULE_FOREVER : 0, rs, rule, what);
    }
    for (uint32_t k = 0; k < rs->n_attrs; k++) {
        snprintf(name, sizeof name, "a:%s", rs->attr_keys[k]);
        snprintf(what, sizeof what, "reads attr(\"%.64s\")", rs->attr_keys[k]);
        item(out, max, &n, name, SEG_RULE_FOREVER, rs->attr_rule[k] >= 0 ? SEG_RULE_FOREVER : 0,
             rs, rs->attr_rule[k], what);
    }
    if (rs->predict_state) {
        int32_t rule = -1;
        for (uint32_t k = 0; k < rs->n_feats && rule < 0; k++)
            if (rs->feats[k].kind >= FT_P_ALIVE) rule = rs->feats[k].rule;
        item(out, max, &n, "days", SEG_RULE_FOREVER, SEG_RULE_FOREVER, rs, rule,
             "reads the predictions (every purchase day)");
    }
    return n;
}
