/*
 * seg_rule_def: the rule definition as data: freeing it, and packing it
 * into (and out of) one MessagePack value.
 *
 * Snapshots and changelog markers carry the definition their state was
 * written under, so a restart under a different configuration can rebuild
 * the old rule set, load the state into it, and switch to the new one the
 * way a live reload does (docs/rules.md). The packed form is also what the
 * rule set's hash is taken of, so it holds only what decides transitions:
 * names, forms, labels, expressions with their whitespace collapsed, retain
 * and predict; not file positions, descriptions or comments, which a user
 * may change without changing a single transition.
 */
#include "rule/seg_rule_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void text_free(seg_rule_text_t *t) { free(t->text); }

void seg_rules_def_destroy(seg_rules_def_t *d)
{
    if (!d) return;
    for (uint32_t i = 0; i < d->n_rules; i++) {
        seg_rule_spec_t *r = &d->rules[i];
        free(r->name);
        text_free(&r->where);
        text_free(&r->body);
        for (uint32_t k = 0; k < r->n_cases; k++) {
            free(r->cases[k].label);
            text_free(&r->cases[k].cond);
        }
        free(r->cases);
        free(r->else_label);
        free(r->description);
    }
    free(d->rules);
    for (uint32_t i = 0; i < d->n_retain_attrs; i++) free(d->retain_attrs[i]);
    free(d->retain_attrs);
    for (uint32_t i = 0; i < d->n_outf; i++) text_free(&d->outf[i]);
    free(d->outf);
    free(d->file);
    free(d);
}

/* ---- packing --------------------------------------------------------------------- */

static void pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    if (s) pack_str(pk, s, strlen(s));
    else msgpack_pack_nil(pk);
}

/* An expression with every run of whitespace outside string literals
 * turned into one space, and none at either end: re-indenting the YAML
 * changes no hash. */
static void pack_text(msgpack_packer *pk, const seg_rule_text_t *t)
{
    if (!t->text) {
        msgpack_pack_nil(pk);
        return;
    }
    char *o = malloc(t->len + 1);
    if (!o) {                        /* hashing the raw text is still correct */
        pack_str(pk, t->text, t->len);
        return;
    }
    size_t n = 0;
    int quoted = 0, space = 0;
    for (uint32_t i = 0; i < t->len; i++) {
        char c = t->text[i];
        if (!quoted && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
            space = n > 0;
            continue;
        }
        if (space) o[n++] = ' ';
        space = 0;
        o[n++] = c;
        if (c == '"') quoted = !quoted;
        else if (c == '\\' && quoted && i + 1 < t->len) o[n++] = t->text[++i];
    }
    pack_str(pk, o, n);
    free(o);
}

void seg_rules_def_pack(const seg_rules_def_t *d, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 6);
    pack_str(pk, "v", 1);
    msgpack_pack_int(pk, 1);
    pack_str(pk, "rules", 5);
    msgpack_pack_array(pk, d->n_rules);
    for (uint32_t i = 0; i < d->n_rules; i++) {
        const seg_rule_spec_t *r = &d->rules[i];
        msgpack_pack_array(pk, 6);
        pack_cstr(pk, r->name);
        msgpack_pack_uint8(pk, r->form);
        pack_text(pk, &r->where);
        pack_text(pk, &r->body);
        msgpack_pack_array(pk, r->n_cases * 2);
        for (uint32_t k = 0; k < r->n_cases; k++) {
            pack_cstr(pk, r->cases[k].label);
            pack_text(pk, &r->cases[k].cond);
        }
        pack_cstr(pk, r->else_label);
    }
    pack_str(pk, "retain", 6);
    msgpack_pack_array(pk, SEG_RULE_SELECTORS);
    for (unsigned s = 0; s < SEG_RULE_SELECTORS; s++) msgpack_pack_int64(pk, d->retain[s]);
    pack_str(pk, "since", 5);
    msgpack_pack_array(pk, SEG_RULE_SELECTORS);
    for (unsigned s = 0; s < SEG_RULE_SELECTORS; s++)
        d->retain_since[s] ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    pack_str(pk, "attrs", 5);
    msgpack_pack_array(pk, d->n_retain_attrs);
    for (uint32_t i = 0; i < d->n_retain_attrs; i++) pack_cstr(pk, d->retain_attrs[i]);
    pack_str(pk, "predict", 7);
    const seg_rule_predict_t *p = &d->predict;
    msgpack_pack_array(pk, 12);
    p->has_bgnbd ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    p->has_gg ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    const double v[] = { p->r, p->alpha, p->a, p->b, p->p, p->q, p->gamma };
    for (size_t i = 0; i < 7; i++) msgpack_pack_double(pk, v[i]);
    msgpack_pack_int64(pk, p->unit);
    msgpack_pack_int64(pk, p->horizon);
    msgpack_pack_double(pk, p->discount_rate);
}

/* ---- unpacking ------------------------------------------------------------------- */

static const msgpack_object *field(const msgpack_object *m, const char *key)
{
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

static int get_str(const msgpack_object *o, char **out, bool nil_ok)
{
    *out = NULL;
    if (o->type == MSGPACK_OBJECT_NIL) return nil_ok ? 0 : -1;
    if (o->type != MSGPACK_OBJECT_STR || memchr(o->via.str.ptr, '\0', o->via.str.size)) return -1;
    *out = malloc(o->via.str.size + 1);
    if (!*out) return -1;
    memcpy(*out, o->via.str.ptr, o->via.str.size);
    (*out)[o->via.str.size] = '\0';
    return 0;
}

static int get_text(const msgpack_object *o, seg_rule_text_t *t)
{
    memset(t, 0, sizeof *t);
    if (get_str(o, &t->text, true)) return -1;
    if (t->text) {
        t->len = (uint32_t)strlen(t->text);
        t->mode = SRC_FLAT;
        t->col = 1;
    }
    return 0;
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

static int get_f64(const msgpack_object *o, double *v)
{
    if (o->type != MSGPACK_OBJECT_FLOAT64 && o->type != MSGPACK_OBJECT_FLOAT32) return -1;
    *v = o->via.f64;
    return 0;
}

seg_rules_def_t *seg_rules_def_unpack(const msgpack_object *o, char *errstr, size_t errstr_size)
{
    const char *why = "malformed";
    seg_rules_def_t *d = seg_rules_def_empty();
    if (!d || !(d->file = malloc(sizeof "saved rules"))) {
        why = "out of memory";
        goto bad;
    }
    memcpy(d->file, "saved rules", sizeof "saved rules");
    const msgpack_object *v, *rules, *retain, *since, *attrs, *pred;
    int64_t ver;
    if (o->type != MSGPACK_OBJECT_MAP || !(v = field(o, "v")) || get_i64(v, &ver) || ver != 1) {
        why = "unsupported version";
        goto bad;
    }
    if (!(rules = field(o, "rules")) || rules->type != MSGPACK_OBJECT_ARRAY ||
        rules->via.array.size > SEG_RULES_MAX || !(retain = field(o, "retain")) ||
        retain->type != MSGPACK_OBJECT_ARRAY || retain->via.array.size != SEG_RULE_SELECTORS ||
        !(since = field(o, "since")) || since->type != MSGPACK_OBJECT_ARRAY ||
        since->via.array.size != SEG_RULE_SELECTORS || !(attrs = field(o, "attrs")) ||
        attrs->type != MSGPACK_OBJECT_ARRAY || attrs->via.array.size > 1024 ||
        !(pred = field(o, "predict")) || pred->type != MSGPACK_OBJECT_ARRAY ||
        pred->via.array.size != 12)
        goto bad;
    d->rules = calloc(rules->via.array.size + 1, sizeof *d->rules);
    if (!d->rules) goto bad;
    for (uint32_t i = 0; i < rules->via.array.size; i++) {
        const msgpack_object *r = &rules->via.array.ptr[i];
        seg_rule_spec_t *s = &d->rules[d->n_rules++];
        int64_t form;
        if (r->type != MSGPACK_OBJECT_ARRAY || r->via.array.size != 6) goto bad;
        const msgpack_object *a = r->via.array.ptr;
        if (get_str(&a[0], &s->name, false) || get_i64(&a[1], &form) || form < 1 || form > 3 ||
            get_text(&a[2], &s->where) || get_text(&a[3], &s->body) ||
            a[4].type != MSGPACK_OBJECT_ARRAY || a[4].via.array.size % 2 ||
            a[4].via.array.size > 510 || get_str(&a[5], &s->else_label, true))
            goto bad;
        s->form = (uint8_t)form;
        uint32_t nc = a[4].via.array.size / 2;
        s->cases = calloc(nc + 1, sizeof *s->cases);
        if (!s->cases) goto bad;
        for (uint32_t k = 0; k < nc; k++) {
            seg_rule_case_t *c = &s->cases[s->n_cases++];
            if (get_str(&a[4].via.array.ptr[2 * k], &c->label, false) ||
                get_text(&a[4].via.array.ptr[2 * k + 1], &c->cond) || !c->cond.text)
                goto bad;
        }
        if ((s->form != SEG_RULE_CASES && !s->body.text) ||
            (s->form == SEG_RULE_CASES && s->n_cases == 0))
            goto bad;
    }
    for (unsigned i = 0; i < SEG_RULE_SELECTORS; i++) {
        if (get_i64(&retain->via.array.ptr[i], &d->retain[i]) || d->retain[i] < 0) goto bad;
        if (since->via.array.ptr[i].type != MSGPACK_OBJECT_BOOLEAN) goto bad;
        d->retain_since[i] = since->via.array.ptr[i].via.boolean;
    }
    d->retain_attrs = calloc(attrs->via.array.size + 1, sizeof *d->retain_attrs);
    if (!d->retain_attrs) goto bad;
    for (uint32_t i = 0; i < attrs->via.array.size; i++)
        if (get_str(&attrs->via.array.ptr[i], &d->retain_attrs[d->n_retain_attrs++], false))
            goto bad;
    const msgpack_object *p = pred->via.array.ptr;
    seg_rule_predict_t *pp = &d->predict;
    if (p[0].type != MSGPACK_OBJECT_BOOLEAN || p[1].type != MSGPACK_OBJECT_BOOLEAN) goto bad;
    pp->has_bgnbd = p[0].via.boolean;
    pp->has_gg = p[1].via.boolean;
    double *const dv[] = { &pp->r, &pp->alpha, &pp->a, &pp->b, &pp->p, &pp->q, &pp->gamma };
    for (int i = 0; i < 7; i++)
        if (get_f64(&p[2 + i], dv[i])) goto bad;
    if (get_i64(&p[9], &pp->unit) || get_i64(&p[10], &pp->horizon) ||
        get_f64(&p[11], &pp->discount_rate) || pp->unit <= 0 || pp->horizon <= 0)
        goto bad;
    return d;
bad:
    snprintf(errstr, errstr_size, "saved rule definition: %s", why);
    seg_rules_def_destroy(d);
    return NULL;
}
