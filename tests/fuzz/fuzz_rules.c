/*
 * fuzz_rules: the rule language is a parser, a type checker and an
 * evaluator fed by text users write, so any input must end in a message or
 * in a rule set that runs, never in a crash, a hang or a leak.
 *
 * The first byte picks the mode:
 *   - even: the rest is a whole configuration file, loaded as segd does
 *     (seg_cfg, then the rule definition, then the build);
 *   - odd: the rest is one expression, put into three rules (a membership,
 *     a graded rule and a computed value, so every form sees it), with the
 *     built-ins on and retain/attrs keeping what an expression may read.
 * A rule set that builds is then run: a few customers' events of every
 * type (attributes included, one of them late) are folded through an
 * engine and time is advanced two years, so the evaluator, the candidate
 * instants and the row bookkeeping see what the checker let through; every
 * transition is encoded as JSON; and the definition must survive packing
 * with the same hash.
 *
 * Without SEG_FUZZ this file is linked with replay_main.c and run over
 * tests/fuzz/corpus/rules/ in every `make test`, also under ASan.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/seg_cfg.h"
#include "event/seg_decode.h"
#include "publish/seg_tjson.h"
#include "rule/seg_rule.h"
#include "segment/seg_engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink(void *opaque, const seg_transition_t *t)
{
    static char buf[SEG_TJSON_MAX];
    size_t n = seg_tjson_encode(t, true, buf);
    if (n >= SEG_TJSON_MAX) abort();
    (*(uint64_t *)opaque)++;
    return 0;
}

static const char *const events[] = {
    "{\"type\":\"purchase\",\"customer_id\":\"a\",\"ts\":\"2024-01-01T00:00:00Z\",\"amount\":12.5,"
    "\"attrs\":{\"plan\":\"pro\",\"seats\":40,\"vip\":true}}",
    "{\"type\":\"contact\",\"customer_id\":\"a\",\"ts\":\"2024-01-03T00:00:00Z\",\"kind\":\"inquiry\"}",
    "{\"type\":\"contact\",\"customer_id\":\"b\",\"ts\":\"2024-01-04T00:00:00Z\",\"kind\":\"complaint\"}",
    "{\"type\":\"refund\",\"customer_id\":\"a\",\"ts\":\"2024-01-05T00:00:00Z\",\"amount\":2}",
    "{\"type\":\"profile\",\"customer_id\":\"b\",\"ts\":\"2024-01-06T00:00:00Z\","
    "\"attrs\":{\"plan\":null,\"seats\":\"x\",\"vip\":false}}",
    "{\"type\":\"contact\",\"customer_id\":\"a\",\"ts\":\"2024-01-02T00:00:00Z\",\"kind\":\"visit\"}",
    "{\"type\":\"purchase\",\"customer_id\":\"c\",\"ts\":\"2024-02-01T00:00:00Z\",\"amount\":900}",
    "{\"type\":\"contact\",\"customer_id\":\"c\",\"ts\":\"2024-02-02T00:00:00Z\",\"kind\":\"call\"}",
};

static void run(const seg_ruleset_t *rs, const seg_segcfg_t *seg)
{
    char err[512];
    uint64_t n = 0;
    seg_engine_t *e = seg_engine_new(seg, sink, &n, err, sizeof err);
    seg_decoder_t *dec = seg_decoder_new();
    if (!e || !dec || seg_engine_set_rules(e, rs, err, sizeof err) != 0) abort();
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        seg_event_t ev;
        if (seg_decode_json(dec, events[i], strlen(events[i]), &ev, err, sizeof err) != SEG_REJ_NONE)
            abort();
        if (seg_engine_fold(e, &ev, err, sizeof err) != 0) abort();
    }
    if (seg_engine_advance(e, 1767225600 /* 2026-01-01 */, err, sizeof err) != 0) abort();
    seg_decoder_destroy(dec);
    seg_engine_destroy(e);

    /* the definition survives packing, hash and all */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    seg_rules_def_pack(seg_ruleset_def(rs), &pk);
    msgpack_zone z;
    msgpack_zone_init(&z, 4096);
    msgpack_object o;
    size_t off = 0;
    if (msgpack_unpack(sb.data, sb.size, &off, &z, &o) != MSGPACK_UNPACK_SUCCESS) abort();
    seg_rules_def_t *back = seg_rules_def_unpack(&o, err, sizeof err);
    if (!back) abort();
    seg_ruleset_t *rs2 = seg_ruleset_build(back, seg, err, sizeof err);
    if (!rs2 || seg_ruleset_hash(rs2) != seg_ruleset_hash(rs)) abort();
    seg_ruleset_destroy(rs2);
    msgpack_zone_destroy(&z);
    msgpack_sbuffer_destroy(&sb);
}

/* A YAML single-quoted scalar holding s: ' doubled, newlines as spaces. */
static size_t quote(char *out, const uint8_t *s, size_t n)
{
    size_t o = 0;
    out[o++] = '\'';
    for (size_t i = 0; i < n; i++) {
        char c = (char)s[i];
        if (c == '\'') out[o++] = '\'';
        if (c == '\n' || c == '\r') c = ' ';
        out[o++] = c;
    }
    out[o++] = '\'';
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384) return 0;
    static seg_cfg_t cfg;
    char err[1024];
    char *yaml;
    size_t len;
    if (data[0] % 2 == 0) {
        yaml = malloc(size);
        if (!yaml) return 0;
        memcpy(yaml, data + 1, size - 1);
        len = size - 1;
    } else {
        static const char head[] =
            "segments:\n  retain:\n    contact: 30d\n    refund: 30d\n    purchase: 30d\n"
            "    attrs: [plan, seats, vip]\n    since: [contact, refund]\n  rules:\n";
        size_t cap = sizeof head + 3 * (2 * size + 64) + 256;
        yaml = malloc(cap);
        if (!yaml) return 0;
        len = (size_t)snprintf(yaml, cap, "%s", head);
        char *q = malloc(2 * size + 4);
        if (!q) {
            free(yaml);
            return 0;
        }
        size_t ql = quote(q, data + 1, size - 1);
        len += (size_t)snprintf(yaml + len, cap - len, "    m:\n      when: %.*s\n", (int)ql, q);
        len += (size_t)snprintf(yaml + len, cap - len,
                                "    g:\n      cases:\n        - A: %.*s\n      else: B\n",
                                (int)ql, q);
        len += (size_t)snprintf(yaml + len, cap - len, "    v:\n      value: %.*s\n", (int)ql, q);
        free(q);
    }
    seg_cfg_defaults(&cfg);
    if (seg_cfg_load_buffer(&cfg, "fuzz.yaml", yaml, len, err, sizeof err) == 0 &&
        seg_cfg_validate(&cfg, err, sizeof err) == 0) {
        seg_rules_def_t *def = seg_rules_def_load_buffer("fuzz.yaml", yaml, len, err, sizeof err);
        if (def) {
            seg_ruleset_t *rs = seg_ruleset_build(def, &cfg.seg, err, sizeof err);
            if (rs) {
                run(rs, &cfg.seg);
                seg_ruleset_destroy(rs);
            } else if (!err[0]) {
                abort();   /* a refusal always says why */
            }
        } else if (!err[0]) {
            abort();
        }
    }
    free(yaml);
    return 0;
}
