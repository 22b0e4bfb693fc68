/*
 * seg_rulestate: the rule set of a saved state, packed next to it.
 */
#include "persist/seg_rulestate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/seg_cfg.h"

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* The built-in settings as "key=value" assignments of every segments.*
 * key, so they read back through --set's own parsers. */
static void pack_segcfg(const seg_segcfg_t *seg, msgpack_packer *pk)
{
    const seg_cfg_schema_t *s = seg_cfg_schema();
    static seg_cfg_t cfg;
    seg_cfg_defaults(&cfg);
    cfg.seg = *seg;
    unsigned n = 0;
    for (size_t i = 0; i < s->n; i++) n += strncmp(s->keys[i].key, "segments.", 9) == 0;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < s->n; i++) {
        if (strncmp(s->keys[i].key, "segments.", 9) != 0) continue;
        char val[512], kv[700];
        seg_cfg_format_value(s, &cfg, i, val, sizeof val);
        snprintf(kv, sizeof kv, "%s=%s", s->keys[i].key, val);
        pack_str(pk, kv);
    }
}

void seg_rulestate_pack(seg_engine_t *e, msgpack_packer *pk)
{
    const seg_ruleset_t *rs = seg_engine_rules(e);
    pack_str(pk, "rules");
    if (rs) seg_rules_def_pack(seg_ruleset_def(rs), pk);
    else msgpack_pack_nil(pk);
    pack_str(pk, "segcfg");
    pack_segcfg(seg_engine_segcfg(e), pk);
    pack_str(pk, "rules_hash");
    msgpack_pack_uint64(pk, rs ? seg_ruleset_hash(rs) : 0);
    pack_str(pk, "time");
    msgpack_pack_int64(pk, seg_engine_time(e));
    const seg_engine_cover_t *c;
    uint32_t n = seg_engine_cover(e, &c);
    pack_str(pk, "cover");
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        msgpack_pack_array(pk, 3);
        pack_str(pk, c[i].name);
        msgpack_pack_int64(pk, c[i].from);
        msgpack_pack_int64(pk, c[i].keep);
    }
}

static const msgpack_object *field(const msgpack_object *m, const char *key)
{
    if (m->type != MSGPACK_OBJECT_MAP) return NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
            return &m->via.map.ptr[i].val;
    }
    return NULL;
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

int seg_rulestate_apply(seg_engine_t *e, const msgpack_object *map, char *errstr,
                        size_t errstr_size)
{
    const msgpack_object *rules = field(map, "rules"), *segcfg = field(map, "segcfg");
    const msgpack_object *hash = field(map, "rules_hash"), *time = field(map, "time");
    const msgpack_object *cover = field(map, "cover");
    char why[512];
    seg_segcfg_t seg = *seg_engine_segcfg(e);
    seg_rules_def_t *def;
    if (!rules || rules->type == MSGPACK_OBJECT_NIL) {
        def = seg_rules_def_empty();       /* written before rules existed */
        if (!def) goto oom;
    } else {
        if (!segcfg || segcfg->type != MSGPACK_OBJECT_ARRAY) {
            snprintf(errstr, errstr_size, "saved rules without their built-in settings");
            return -1;
        }
        static seg_cfg_t cfg;
        seg_cfg_defaults(&cfg);
        for (uint32_t i = 0; i < segcfg->via.array.size; i++) {
            const msgpack_object *kv = &segcfg->via.array.ptr[i];
            char buf[1024];
            if (kv->type != MSGPACK_OBJECT_STR || kv->via.str.size >= sizeof buf ||
                strncmp(kv->via.str.ptr, "segments.", 9) != 0) {
                snprintf(errstr, errstr_size, "saved built-in settings are malformed");
                return -1;
            }
            memcpy(buf, kv->via.str.ptr, kv->via.str.size);
            buf[kv->via.str.size] = '\0';
            if (seg_cfg_set(&cfg, buf, why, sizeof why) != 0) {
                snprintf(errstr, errstr_size, "saved built-in settings: %s", why);
                return -1;
            }
        }
        seg = cfg.seg;
        def = seg_rules_def_unpack(rules, errstr, errstr_size);
        if (!def) return -1;
    }
    seg_ruleset_t *rs = seg_ruleset_build(def, &seg, why, sizeof why);
    if (!rs) {
        snprintf(errstr, errstr_size, "the rules the state was saved under no longer build: %s",
                 why);
        return -1;
    }
    if (hash && hash->type == MSGPACK_OBJECT_POSITIVE_INTEGER && rules &&
        rules->type != MSGPACK_OBJECT_NIL && hash->via.u64 != seg_ruleset_hash(rs)) {
        seg_ruleset_destroy(rs);
        snprintf(errstr, errstr_size, "the saved rules do not match their saved hash");
        return -1;
    }
    const seg_ruleset_t *cur = seg_engine_rules(e);
    if ((!cur || seg_ruleset_hash(cur) != seg_ruleset_hash(rs)) &&
        seg_engine_change_rules(e, &seg, rs, true, false, errstr, errstr_size) != 0)
        return -1;
    else if (cur && seg_ruleset_hash(cur) == seg_ruleset_hash(rs))
        seg_ruleset_destroy(rs);
    int64_t t;
    if (time && get_i64(time, &t) == 0) seg_engine_set_time(e, t);
    if (cover && cover->type == MSGPACK_OBJECT_ARRAY) {
        uint32_t n = cover->via.array.size;
        seg_engine_cover_t *c = calloc(n ? n : 1, sizeof *c);
        if (!c) goto oom;
        for (uint32_t i = 0; i < n; i++) {
            const msgpack_object *x = &cover->via.array.ptr[i];
            if (x->type != MSGPACK_OBJECT_ARRAY || x->via.array.size != 3 ||
                x->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
                x->via.array.ptr[0].via.str.size >= sizeof c[i].name ||
                get_i64(&x->via.array.ptr[1], &c[i].from) ||
                get_i64(&x->via.array.ptr[2], &c[i].keep)) {
                free(c);
                snprintf(errstr, errstr_size, "saved history cover is malformed");
                return -1;
            }
            memcpy(c[i].name, x->via.array.ptr[0].via.str.ptr, x->via.array.ptr[0].via.str.size);
        }
        int rc = seg_engine_set_cover(e, c, n);
        free(c);
        if (rc != 0) goto oom;
    }
    return 0;
oom:
    snprintf(errstr, errstr_size, "out of memory");
    return -1;
}

int seg_rulestate_adopt(seg_engine_t *e, const seg_segcfg_t *seg, const seg_ruleset_t *rs,
                        int *changed, char *errstr, size_t errstr_size)
{
    const seg_ruleset_t *cur = seg_engine_rules(e);
    *changed = 0;
    if (cur && seg_ruleset_hash(cur) == seg_ruleset_hash(rs)) return 0;
    if (seg_engine_check_rules(e, seg, rs, errstr, errstr_size) != 0) return -1;
    *changed = 1;
    return seg_engine_change_rules(e, seg, rs, false, true, errstr, errstr_size);
}
