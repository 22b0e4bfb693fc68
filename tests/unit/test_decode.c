/*
 * test_decode: the event schema of docs/events.md, in both wire formats.
 *
 * Most cases are written once as JSON and run twice: through
 * seg_decode_json, and through seg_decode_msgpack after a faithful
 * JSON -> MessagePack conversion done here (integral numbers become msgpack
 * ints, others float64). Both must give the same reason, the same key phrase
 * of the error sentence, and, when accepted, the same event. That is the
 * "one validator" promise. Cases that only exist in one format (JSON syntax,
 * raw msgpack bytes, float32, bin, NUL bytes) are written directly.
 *
 * The fixture files tests/data/events/{valid,invalid}.ndjson are checked at
 * the end against their hand-written .expected files.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <msgpack.h>

#include "event/seg_decode.h"
#include "util/seg_ts.h"

static seg_decoder_t *dj, *dm;   /* one decoder per format: events of both
                                    are compared while both are alive */
static seg_decoder_t *dd;        /* seg_decode_msgpack_delimited's, beside dm */
static size_t delimited_checked; /* records run_mp compared both ways */

/* The record limit of both MessagePack decoders. */
static void set_max_mp(size_t n)
{
    seg_decoder_set_max_record(dm, n);
    seg_decoder_set_max_record(dd, n);
}

typedef struct {
    seg_reject_t r;
    seg_event_t  ev;
    char         err[512];
} res_t;

/* ---- JSON -> MessagePack, for running the same case in both formats --- */

static void pack_json(msgpack_packer *pk, const cJSON *it)
{
    switch (it->type & 0xff) {
    case cJSON_False:  msgpack_pack_false(pk); break;
    case cJSON_True:   msgpack_pack_true(pk); break;
    case cJSON_NULL:   msgpack_pack_nil(pk); break;
    case cJSON_Number: {
        double d = it->valuedouble;
        if (isfinite(d) && floor(d) == d && fabs(d) < 9007199254740992.0)
            msgpack_pack_int64(pk, (int64_t)d);
        else
            msgpack_pack_double(pk, d);
        break;
    }
    case cJSON_String: {
        size_t n = strlen(it->valuestring);
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, it->valuestring, n);
        break;
    }
    case cJSON_Array:
        msgpack_pack_array(pk, (size_t)cJSON_GetArraySize(it));
        for (const cJSON *c = it->child; c; c = c->next) pack_json(pk, c);
        break;
    case cJSON_Object:
        msgpack_pack_map(pk, (size_t)cJSON_GetArraySize(it));
        for (const cJSON *c = it->child; c; c = c->next) {
            size_t n = strlen(c->string);
            msgpack_pack_str(pk, n);
            msgpack_pack_str_body(pk, c->string, n);
            pack_json(pk, c);
        }
        break;
    default:
        fail_msg("unexpected cJSON type");
    }
}

static void to_msgpack(const char *json, msgpack_sbuffer *sb)
{
    cJSON *root = cJSON_Parse(json);
    if (!root) fail_msg("test bug: not JSON: %s", json);
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    pack_json(&pk, root);
    cJSON_Delete(root);
}

/* ---- runners ----------------------------------------------------------- */

static res_t run_json(const char *json)
{
    res_t r;
    memset(&r, 0, sizeof r);
    strcpy(r.err, "(unset)");
    r.r = seg_decode_json(dj, json, strlen(json), &r.ev, r.err, sizeof r.err);
    return r;
}

static void same_event(const char *rec, const seg_event_t *a,
                       const seg_event_t *b)
{
    if (a->type != b->type || a->kind != b->kind || a->ts != b->ts ||
        a->amount != b->amount || a->has_amount != b->has_amount ||
        a->rating != b->rating || a->customer_id_len != b->customer_id_len ||
        memcmp(a->customer_id, b->customer_id, a->customer_id_len) != 0 ||
        (a->event_id == NULL) != (b->event_id == NULL) ||
        a->event_id_len != b->event_id_len ||
        (a->event_id &&
         memcmp(a->event_id, b->event_id, a->event_id_len) != 0))
        fail_msg("json and msgpack decode %s differently", rec);
}

static res_t run_mp(const char *buf, size_t n)
{
    res_t r;
    memset(&r, 0, sizeof r);
    strcpy(r.err, "(unset)");
    r.r = seg_decode_msgpack(dm, buf, n, &r.ev, r.err, sizeof r.err);
    /* Every record that seg_msgpack_value_size delimits exactly (what the
     * reader hands on) decodes the same through the delimited entry. */
    size_t size = 0;
    if (seg_msgpack_value_size(buf, n, &size) == 1 && size == n) {
        seg_event_t ev;
        char err[sizeof r.err];
        strcpy(err, "(unset)");
        seg_reject_t d = seg_decode_msgpack_delimited(dd, buf, n, &ev, err, sizeof err);
        if (d != r.r || strcmp(err, r.err) != 0)
            fail_msg("delimited decode differs: %s (%s) vs %s (%s)", seg_reject_name(d), err,
                     seg_reject_name(r.r), r.err);
        if (d == SEG_REJ_NONE) same_event("(delimited)", &r.ev, &ev);
        delimited_checked++;
    }
    return r;
}

static res_t run_mp_json(const char *json)
{
    msgpack_sbuffer sb;
    to_msgpack(json, &sb);
    res_t r = run_mp(sb.data, sb.size);
    /* The caller's buffer is gone after the call: the event must not
     * depend on it (strings are copied into the decoder). */
    memset(sb.data, 0xAA, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return r;
}

static void check_reject(const char *fmt, const char *rec, res_t r,
                         seg_reject_t want, const char *phrase)
{
    if (r.r != want)
        fail_msg("%s %s: got %s (%s), want %s", fmt, rec, seg_reject_name(r.r),
                 r.err, seg_reject_name(want));
    if (phrase && !strstr(r.err, phrase))
        fail_msg("%s %s: error \"%s\" lacks \"%s\"", fmt, rec, r.err, phrase);
}

/* The same record, rejected the same way, in both formats. */
static void rej(const char *json, seg_reject_t want, const char *phrase)
{
    check_reject("json", json, run_json(json), want, phrase);
    check_reject("msgpack", json, run_mp_json(json), want, phrase);
}

static void rej_json(const char *json, seg_reject_t want, const char *phrase)
{
    check_reject("json", json, run_json(json), want, phrase);
}

static void rej_json_n(const char *buf, size_t n, seg_reject_t want,
                       const char *phrase)
{
    res_t r;
    memset(&r, 0, sizeof r);
    r.r = seg_decode_json(dj, buf, n, &r.ev, r.err, sizeof r.err);
    check_reject("json", "(bytes)", r, want, phrase);
}

static void rej_mp(const char *buf, size_t n, seg_reject_t want,
                   const char *phrase)
{
    check_reject("msgpack", "(bytes)", run_mp(buf, n), want, phrase);
}

/* Accepted in both formats, with identical events; returns the JSON one
 * (valid until the next JSON decode). */
static seg_event_t acc(const char *json)
{
    res_t j = run_json(json);
    if (j.r != SEG_REJ_NONE)
        fail_msg("json %s: rejected as %s (%s)", json, seg_reject_name(j.r),
                 j.err);
    res_t m = run_mp_json(json);
    if (m.r != SEG_REJ_NONE)
        fail_msg("msgpack %s: rejected as %s (%s)", json, seg_reject_name(m.r),
                 m.err);
    same_event(json, &j.ev, &m.ev);
    return j.ev;
}

static void id_is(const seg_event_t *ev, const char *want)
{
    assert_int_equal(ev->customer_id_len, strlen(want));
    assert_memory_equal(ev->customer_id, want, strlen(want));
}

#define P(rest) "{\"type\":\"purchase\",\"customer_id\":\"c1\"," \
                "\"ts\":\"2011-12-09T12:50:00Z\"" rest "}"
#define PA(rest) P(",\"amount\":10" rest)
#define T0 1323435000   /* 2011-12-09T12:50:00Z */

static int setup(void **state)
{
    (void)state;
    dj = seg_decoder_new();
    dm = seg_decoder_new();
    dd = seg_decoder_new();
    return dj && dm && dd ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    seg_decoder_destroy(dj);
    seg_decoder_destroy(dm);
    seg_decoder_destroy(dd);
    seg_decoder_destroy(NULL);   /* no-op by contract */
    return 0;
}

/* ---- valid events ------------------------------------------------------ */

static void test_valid_purchase_refund(void **state)
{
    (void)state;
    seg_event_t ev = acc("{\"type\":\"purchase\",\"customer_id\":\"00001\","
                         "\"ts\":\"1997-01-01T00:00:00Z\",\"amount\":29.73}");
    assert_int_equal(ev.type, SEG_EV_PURCHASE);
    assert_int_equal(ev.kind, SEG_CONTACT_NONE);
    id_is(&ev, "00001");
    assert_int_equal(ev.ts, 852076800);
    assert_int_equal(ev.amount, 297300);
    assert_true(ev.has_amount);
    assert_int_equal(ev.rating, 0);
    assert_null(ev.event_id);

    ev = acc("{\"type\":\"refund\",\"customer_id\":\"17850\","
             "\"ts\":\"2011-12-09 12:50:00\\u005a\",\"amount\":0,"
             "\"event_id\":\"inv-C536379\",\"currency\":\"GBP\","
             "\"channel\":\"web\",\"attrs\":{\"n\":[1,2]}}");
    assert_int_equal(ev.type, SEG_EV_REFUND);
    id_is(&ev, "17850");
    assert_int_equal(ev.ts, T0);
    assert_int_equal(ev.amount, 0);
    assert_true(ev.has_amount);
    assert_int_equal(ev.event_id_len, 11);
    assert_memory_equal(ev.event_id, "inv-C536379", 11);

    /* kind on a purchase is ignored, whatever it holds */
    ev = acc(PA(",\"kind\":42"));
    assert_int_equal(ev.kind, SEG_CONTACT_NONE);
    ev = acc(PA(",\"kind\":\"complaint\""));
    assert_int_equal(ev.kind, SEG_CONTACT_NONE);
}

static void test_valid_contact_kinds(void **state)
{
    (void)state;
    static const struct { const char *name; seg_contact_kind_t k; } kinds[] = {
        {"visit", SEG_CONTACT_VISIT},         {"inquiry", SEG_CONTACT_INQUIRY},
        {"complaint", SEG_CONTACT_COMPLAINT}, {"support", SEG_CONTACT_SUPPORT},
        {"feedback", SEG_CONTACT_FEEDBACK},   {"call", SEG_CONTACT_CALL},
    };
    char rec[256];
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        snprintf(rec, sizeof rec, "{\"type\":\"contact\",\"customer_id\":\"x\","
                 "\"ts\":0,\"kind\":\"%s\",\"rating\":%zu}", kinds[i].name,
                 i % 5 + 1);
        seg_event_t ev = acc(rec);
        assert_int_equal(ev.type, SEG_EV_CONTACT);
        assert_int_equal(ev.kind, kinds[i].k);
        assert_int_equal(ev.rating, (int)(i % 5) + 1);
        assert_false(ev.has_amount);
        assert_int_equal(ev.ts, 0);
        assert_string_equal(seg_contact_kind_name(kinds[i].k), kinds[i].name);
    }
    /* amount is optional on a contact, but validated when present */
    seg_event_t ev = acc("{\"type\":\"contact\",\"customer_id\":\"x\",\"ts\":0,"
                         "\"kind\":\"visit\",\"amount\":2.5}");
    assert_true(ev.has_amount);
    assert_int_equal(ev.amount, 25000);
    rej("{\"type\":\"contact\",\"customer_id\":\"x\",\"ts\":0,"
        "\"kind\":\"visit\",\"amount\":-2.5}",
        SEG_REJ_NEGATIVE_AMOUNT, "amount is -2.5; it must be >= 0");
    assert_string_equal(seg_event_type_name(SEG_EV_PURCHASE), "purchase");
    assert_string_equal(seg_event_type_name(SEG_EV_REFUND), "refund");
    assert_string_equal(seg_event_type_name(SEG_EV_CONTACT), "contact");
}

/* A profile carries only attrs: amount and kind mean nothing on it and are
 * ignored, not validated; the common optional fields still are. */
static void test_valid_profile(void **state)
{
    (void)state;
    seg_event_t ev = acc("{\"type\":\"profile\",\"customer_id\":\"p1\",\"ts\":0,"
                         "\"attrs\":{\"plan\":\"pro\"}}");
    assert_int_equal(ev.type, SEG_EV_PROFILE);
    assert_int_equal(ev.attrs.fmt, SEG_ATTRS_JSON);
    assert_false(ev.has_amount);
    ev = acc("{\"type\":\"profile\",\"customer_id\":\"p1\",\"ts\":0}");
    assert_int_equal(ev.attrs.fmt, SEG_ATTRS_NONE);
    ev = acc("{\"type\":\"profile\",\"customer_id\":\"p1\",\"ts\":0,\"amount\":-5,"
             "\"kind\":7}");
    assert_false(ev.has_amount);
    assert_int_equal(ev.kind, SEG_CONTACT_NONE);
    assert_string_equal(seg_event_type_name(SEG_EV_PROFILE), "profile");
    rej("{\"type\":\"profile\",\"customer_id\":\"p1\",\"ts\":0,\"attrs\":[1]}",
        SEG_REJ_WRONG_FIELD_TYPE, "attrs is an array; it must be an object");
    rej("{\"type\":\"profile\",\"customer_id\":\"p1\",\"ts\":0,\"rating\":9}",
        SEG_REJ_BAD_RATING, "rating is 9");
    rej("{\"type\":\"profile\",\"ts\":0}", SEG_REJ_MISSING_FIELD, "customer_id is missing");
}

typedef struct attr_want {
    const char     *key;
    seg_attr_type_t type;
    double          num;
    const char     *str;
} attr_want_t;

static void attrs_are(const seg_event_t *ev, const attr_want_t *w, size_t n, const char *fmt)
{
    seg_attrs_iter_t it;
    seg_attr_t a;
    size_t i = 0;
    seg_attrs_iter_init(&it, &ev->attrs);
    while (seg_attrs_iter_next(&it, &a)) {
        if (i == n) fail_msg("%s: more attrs than expected", fmt);
        if (a.key_len != strlen(w[i].key) || memcmp(a.key, w[i].key, a.key_len) != 0)
            fail_msg("%s: attr %zu is '%.*s', want '%s'", fmt, i, (int)a.key_len, a.key, w[i].key);
        if (a.type != w[i].type)
            fail_msg("%s: attr '%s' has type %d, want %d", fmt, w[i].key, a.type, w[i].type);
        if (a.type == SEG_ATTR_NUMBER && a.num != w[i].num)
            fail_msg("%s: attr '%s' is %g, want %g", fmt, w[i].key, a.num, w[i].num);
        if (a.type == SEG_ATTR_BOOL && a.b != (w[i].num != 0))
            fail_msg("%s: attr '%s' is %d", fmt, w[i].key, a.b);
        if (a.type == SEG_ATTR_STRING &&
            (a.str_len != strlen(w[i].str) || memcmp(a.str, w[i].str, a.str_len) != 0))
            fail_msg("%s: attr '%s' is '%.*s', want '%s'", fmt, w[i].key, (int)a.str_len, a.str,
                     w[i].str);
        i++;
    }
    if (i != n) fail_msg("%s: %zu attrs, want %zu", fmt, i, n);
}

#define ATTRS_REC "{\"type\":\"purchase\",\"customer_id\":\"c1\",\"ts\":0,\"amount\":1," \
    "\"attrs\":{\"plan\":\"pro\",\"seats\":12,\"vip\":true,\"gone\":null,\"obj\":{\"a\":1}," \
    "\"list\":[1],\"ratio\":0.25,\"seats\":-3}}"

/* attrs are read member by member, in order, duplicates included, in both
 * formats; objects and arrays are OTHER (rules ignore them). */
static void test_attrs_iterate(void **state)
{
    (void)state;
    static const attr_want_t want[] = {
        {"plan", SEG_ATTR_STRING, 0, "pro"}, {"seats", SEG_ATTR_NUMBER, 12, NULL},
        {"vip", SEG_ATTR_BOOL, 1, NULL},     {"gone", SEG_ATTR_NULL, 0, NULL},
        {"obj", SEG_ATTR_OTHER, 0, NULL},    {"list", SEG_ATTR_OTHER, 0, NULL},
        {"ratio", SEG_ATTR_NUMBER, 0.25, NULL}, {"seats", SEG_ATTR_NUMBER, -3, NULL},
    };
    res_t j = run_json(ATTRS_REC);
    assert_int_equal(j.r, SEG_REJ_NONE);
    assert_int_equal(j.ev.attrs.fmt, SEG_ATTRS_JSON);
    attrs_are(&j.ev, want, 8, "json");
    msgpack_sbuffer sb;
    to_msgpack(ATTRS_REC, &sb);
    res_t m = run_mp(sb.data, sb.size);
    assert_int_equal(m.r, SEG_REJ_NONE);
    assert_int_equal(m.ev.attrs.fmt, SEG_ATTRS_MSGPACK);
    attrs_are(&m.ev, want, 8, "msgpack");
    msgpack_sbuffer_destroy(&sb);
    /* no attrs, attrs: null, attrs: {} */
    assert_int_equal(acc(PA("")).attrs.fmt, SEG_ATTRS_NONE);
    assert_int_equal(acc(PA(",\"attrs\":null")).attrs.fmt, SEG_ATTRS_NONE);
    seg_event_t ev = acc(PA(",\"attrs\":{}"));
    attrs_are(&ev, NULL, 0, "empty");
}

/* A string rules could keep must be valid UTF-8 without NUL: a \u0000 in a
 * JSON value or key (which cJSON would silently cut) and a broken msgpack
 * string are OTHER. */
static void test_attrs_bad_strings(void **state)
{
    (void)state;
    static const attr_want_t want[] = {
        {"a", SEG_ATTR_OTHER, 0, NULL}, {"b", SEG_ATTR_STRING, 0, "ok"},
        {"c", SEG_ATTR_OTHER, 0, NULL},
    };
    const char *rec = PA(",\"attrs\":{\"a\":\"x\\u0000y\",\"b\":\"ok\",\"c\\u0000d\":\"z\"}");
    res_t j = run_json(rec);
    assert_int_equal(j.r, SEG_REJ_NONE);
    attrs_are(&j.ev, want, 3, "json nul");

    /* {"type":"refund","customer_id":"c","ts":0,"amount":1,"attrs":{"a":"\xff","b":"ok","c":"a\0b"}} */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    const char *kv[] = {"type", "refund", "customer_id", "c"};
    for (int i = 0; i < 4; i++) {
        msgpack_pack_str(&pk, strlen(kv[i]));
        msgpack_pack_str_body(&pk, kv[i], strlen(kv[i]));
    }
    msgpack_pack_str(&pk, 2);
    msgpack_pack_str_body(&pk, "ts", 2);
    msgpack_pack_int(&pk, 0);
    msgpack_pack_str(&pk, 6);
    msgpack_pack_str_body(&pk, "amount", 6);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "attrs", 5);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "a", 1);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "\xff", 1);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "b", 1);
    msgpack_pack_str(&pk, 2);
    msgpack_pack_str_body(&pk, "ok", 2);
    msgpack_pack_int(&pk, 7);                  /* an int key: not a member */
    msgpack_pack_int(&pk, 7);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "c", 1);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "a\0b", 3);
    res_t m = run_mp(sb.data, sb.size);
    assert_int_equal(m.r, SEG_REJ_NONE);
    attrs_are(&m.ev, want, 3, "msgpack bad");
    msgpack_sbuffer_destroy(&sb);
}

static int want_p(void *opaque, const char *key, size_t len)
{
    (void)opaque;
    return len >= 1 && key[0] == 'p';
}

/* A capture keeps the wanted members after the decoder moved on. */
static void test_attrs_capture(void **state)
{
    (void)state;
    res_t j = run_json("{\"type\":\"profile\",\"customer_id\":\"c\",\"ts\":0,"
                       "\"attrs\":{\"plan\":\"pro\",\"x\":1,\"price\":9.5,\"p2\":\"long-value\"}}");
    assert_int_equal(j.r, SEG_REJ_NONE);
    seg_attr_t slots[4];
    char buf[64];
    seg_attrs_t a = j.ev.attrs;
    assert_int_equal(seg_attrs_capture(&a, want_p, NULL, 1024, slots, 4, buf, sizeof buf), 0);
    assert_int_equal(a.fmt, SEG_ATTRS_CAPTURED);
    (void)run_json(PA(",\"attrs\":{\"zzzz\":\"overwrites the tree\"}"));
    seg_event_t ev = { .attrs = a };
    static const attr_want_t want[] = {
        {"plan", SEG_ATTR_STRING, 0, "pro"}, {"price", SEG_ATTR_NUMBER, 9.5, NULL},
        {"p2", SEG_ATTR_STRING, 0, "long-value"},
    };
    attrs_are(&ev, want, 3, "captured");
    /* too little room: members are dropped and counted, never cut */
    j = run_json("{\"type\":\"profile\",\"customer_id\":\"c\",\"ts\":0,"
                 "\"attrs\":{\"plan\":\"pro\",\"p2\":\"long-value\"}}");
    a = j.ev.attrs;
    assert_int_equal(seg_attrs_capture(&a, NULL, NULL, 1024, slots, 4, buf, 10), 1);
    ev.attrs = a;
    attrs_are(&ev, want, 1, "cut");
    /* a repeated key is kept once, with its last value; a long string is
     * kept as OTHER without its bytes */
    j = run_json("{\"type\":\"profile\",\"customer_id\":\"c\",\"ts\":0,"
                 "\"attrs\":{\"p\":\"first\",\"q\":\"0123456789\",\"p\":\"last\"}}");
    a = j.ev.attrs;
    assert_int_equal(seg_attrs_capture(&a, NULL, NULL, 5, slots, 2, buf, sizeof buf), 0);
    ev.attrs = a;
    static const attr_want_t dedup[] = {
        {"p", SEG_ATTR_STRING, 0, "last"}, {"q", SEG_ATTR_OTHER, 0, NULL},
    };
    attrs_are(&ev, dedup, 2, "dedup");
}

static void test_nulls_are_absent(void **state)
{
    (void)state;
    seg_event_t ev = acc(PA(",\"event_id\":null,\"currency\":null,"
                            "\"channel\":null,\"rating\":null,\"attrs\":null"));
    assert_null(ev.event_id);
    assert_int_equal(ev.rating, 0);
    ev = acc("{\"type\":\"contact\",\"customer_id\":\"x\",\"ts\":0,"
             "\"kind\":\"visit\",\"amount\":null}");
    assert_false(ev.has_amount);
    assert_int_equal(ev.amount, 0);
    /* null for a required field is missing */
    rej(P(",\"amount\":null"), SEG_REJ_MISSING_FIELD, "amount is null");
    rej("{\"type\":null,\"customer_id\":\"c\",\"ts\":0}",
        SEG_REJ_MISSING_FIELD, "type is null");
    rej("{\"type\":\"refund\",\"customer_id\":null,\"ts\":0,\"amount\":1}",
        SEG_REJ_MISSING_FIELD, "customer_id is null");
    rej("{\"type\":\"refund\",\"customer_id\":\"c\",\"ts\":null,\"amount\":1}",
        SEG_REJ_MISSING_FIELD, "ts is null");
    rej("{\"type\":\"contact\",\"customer_id\":\"c\",\"ts\":0,\"kind\":null}",
        SEG_REJ_MISSING_FIELD, "kind is null");
}

static void test_unknown_fields_ignored(void **state)
{
    (void)state;
    seg_event_t ev = acc("{\"v\":2,\"Type\":5,\"customerId\":[],\"extra\":"
                         "{\"type\":\"nope\",\"amount\":-1},\"type\":\"purchase\","
                         "\"customer_id\":\"c\",\"ts\":1000,\"amount\":1,"
                         "\"TS\":\"garbage\",\"\":null}");
    assert_int_equal(ev.type, SEG_EV_PURCHASE);
    assert_int_equal(ev.ts, 1);
    assert_int_equal(ev.amount, 10000);
}

/* A record whose cJSON tree outgrows the decoder's node arena (64 KiB to
 * start with): its nodes spill to malloc and must be freed (ASan's leak
 * check sees it under make test-asan), and the arena grows, so the same
 * record fits next time and small records keep decoding correctly around
 * it. Each record is decoded twice in a row, once after a spill, once
 * after a grow. */
static void test_json_tree_outgrows_arena(void **state)
{
    (void)state;
    enum { N = 20000 };                 /* ~1.3 MB of nodes, 120 KB text */
    size_t cap = 64 + N * 6 + 200;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t n = (size_t)snprintf(big, cap, "{\"extra\":[");
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(big + n, cap - n, "%s%d", i ? "," : "", i % 100000);
    n += (size_t)snprintf(big + n, cap - n, "],\"type\":\"purchase\",\"customer_id\":"
                          "\"big\",\"ts\":1000,\"amount\":2.5}");
    assert_true(n < cap);
    for (int round = 0; round < 4; round++) {
        res_t r;
        memset(&r, 0, sizeof r);
        r.r = seg_decode_json(dj, big, n, &r.ev, r.err, sizeof r.err);
        assert_int_equal(r.r, SEG_REJ_NONE);
        id_is(&r.ev, "big");
        assert_int_equal(r.ev.amount, 25000);
        seg_event_t ev = acc(PA(""));
        id_is(&ev, "c1");
        assert_int_equal(ev.ts, T0);
    }
    /* A spilled record that is rejected releases its nodes too. */
    big[n - 1] = ',';
    rej_json_n(big, n, SEG_REJ_INVALID_JSON, "not valid JSON");
    free(big);
}

static void test_duplicate_keys_last_wins(void **state)
{
    (void)state;
    seg_event_t ev = acc(PA(",\"amount\":20,\"customer_id\":\"c2\""));
    assert_int_equal(ev.amount, 200000);
    id_is(&ev, "c2");
    rej(PA(",\"amount\":-1"), SEG_REJ_NEGATIVE_AMOUNT, "amount is -1");
    /* a bad earlier value is replaced by a later good one */
    acc("{\"amount\":-1,\"type\":\"purchase\",\"customer_id\":\"c\","
        "\"ts\":0,\"amount\":10}");
}

static void test_customer_id_bytes(void **state)
{
    (void)state;
    char rec[1024], id[256];
    /* exactly 128 bytes is accepted, 129 is not */
    memset(id, 'a', 128);
    id[128] = '\0';
    snprintf(rec, sizeof rec, "{\"type\":\"purchase\",\"customer_id\":\"%s\","
             "\"ts\":0,\"amount\":1}", id);
    seg_event_t ev = acc(rec);
    assert_int_equal(ev.customer_id_len, 128);
    id[128] = 'a';
    id[129] = '\0';
    snprintf(rec, sizeof rec, "{\"type\":\"purchase\",\"customer_id\":\"%s\","
             "\"ts\":0,\"amount\":1}", id);
    rej(rec, SEG_REJ_OVERSIZED_CUSTOMER_ID,
        "customer_id is 129 bytes; the limit is 128");
    /* the limit is bytes, not characters: 64 x "é" (2 bytes) = 128 bytes */
    id[0] = '\0';
    for (int i = 0; i < 64; i++) strcat(id, "\xc3\xa9");
    snprintf(rec, sizeof rec, "{\"type\":\"purchase\",\"customer_id\":\"%s\","
             "\"ts\":0,\"amount\":1}", id);
    ev = acc(rec);
    assert_int_equal(ev.customer_id_len, 128);
    strcat(id, "x");
    snprintf(rec, sizeof rec, "{\"type\":\"purchase\",\"customer_id\":\"%s\","
             "\"ts\":0,\"amount\":1}", id);
    rej(rec, SEG_REJ_OVERSIZED_CUSTOMER_ID, "is 129 bytes");
    /* escapes are decoded before counting */
    ev = acc("{\"type\":\"purchase\",\"customer_id\":\"a\\\"b\\\\c\\u00e9\","
             "\"ts\":0,\"amount\":1}");
    id_is(&ev, "a\"b\\c\xc3\xa9");
    /* numbers are not coerced to ids */
    rej("{\"type\":\"purchase\",\"customer_id\":17850,\"ts\":0,\"amount\":1}",
        SEG_REJ_WRONG_FIELD_TYPE, "customer_id is a number; it must be a string");
}

static void test_ts_forms(void **state)
{
    (void)state;
    static const struct { const char *ts; int64_t want; } forms[] = {
        {"\"2011-12-09T12:50:00Z\"", T0},
        {"\"2011-12-09t12:50:00z\"", T0},
        {"\"2011-12-09 12:50:00Z\"", T0},
        {"\"2011-12-09T13:50:00+01:00\"", T0},
        {"\"2011-12-09T04:20:00-08:30\"", T0},
        {"\"2011-12-09T12:50:00.999999Z\"", T0},
        {"\"1969-12-31T23:59:59.5Z\"", -1},
        {"1323435000000", T0},
        {"1323435000999", T0},
        {"1.323435e12", T0},          /* a JSON number with no fraction */
        {"0", 0},
        {"-1", -1},                   /* floor: -1 ms is in second -1 */
        {"-1000", -1},
        {"-1001", -2},
        {"253402300799999", SEG_TS_MAX},
        {"-62135596800000", SEG_TS_MIN},
    };
    char rec[256];
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        snprintf(rec, sizeof rec, "{\"type\":\"purchase\",\"customer_id\":\"c\","
                 "\"ts\":%s,\"amount\":1}", forms[i].ts);
        seg_event_t ev = acc(rec);
        if (ev.ts != forms[i].want)
            fail_msg("%s: ts %lld, want %lld", rec, (long long)ev.ts,
                     (long long)forms[i].want);
    }
}

static void test_amount_exactness(void **state)
{
    (void)state;
    static const struct { const char *amount; int64_t units; } cases[] = {
        {"11.77", 117700},
        {"0.30000000000000004", 3000},   /* 0.1 + 0.2 as a double prints */
        {"0.1", 1000},
        {"1e-5", 0},                     /* rounds to the nearest 1/10000 */
        {"0.00004", 0},
        {"0.00006", 1},
        {"0.0001", 1},
        {"99999.9999", 999999999},
        {"4.35", 43500},
        {"1005.1", 10051000},
        {"-0.0", 0},                     /* negative zero is zero */
        {"0", 0},
        {"12", 120000},
        {"1.2e3", 12000000},
        {"10000000000", 100000000000000LL},   /* the limit itself */
    };
    char rec[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(rec, sizeof rec, P(",\"amount\":%s"), cases[i].amount);
        seg_event_t ev = acc(rec);
        if (ev.amount != cases[i].units)
            fail_msg("%s: %lld units, want %lld", cases[i].amount,
                     (long long)ev.amount, (long long)cases[i].units);
    }
}

/* ---- one test per rejection reason ------------------------------------- */

static void test_rej_invalid_json(void **state)
{
    (void)state;
    rej_json("", SEG_REJ_INVALID_JSON, "empty");
    rej_json("   ", SEG_REJ_INVALID_JSON, "not valid JSON");
    rej_json("not json", SEG_REJ_INVALID_JSON, "not valid JSON");
    rej_json("{", SEG_REJ_INVALID_JSON, "not valid JSON");
    rej_json("{\"type\":\"purchase\",", SEG_REJ_INVALID_JSON, "not valid JSON");
    rej_json("{\"type\":'purchase'}", SEG_REJ_INVALID_JSON, "not valid JSON");
    rej_json("{\"a\":1,}", SEG_REJ_INVALID_JSON, "not valid JSON");
    rej_json("{\"a\":\"\\ud800\"}", SEG_REJ_INVALID_JSON, "not valid JSON");
    rej_json(PA("") " x", SEG_REJ_INVALID_JSON, "unexpected data after");
    rej_json(PA("") "}", SEG_REJ_INVALID_JSON, "unexpected data after");
    rej_json(PA("") PA(""), SEG_REJ_INVALID_JSON, "unexpected data after");
    /* a raw NUL is never JSON, even inside a string */
    static const char nul[] = "{\"type\":\"purchase\",\"customer_id\":\"a\0b\","
                              "\"ts\":0,\"amount\":1}";
    rej_json_n(nul, sizeof nul - 1, SEG_REJ_INVALID_JSON, "raw NUL byte at byte 35");
    /* trailing whitespace, including CR of a CRLF line, is fine */
    seg_event_t ev;
    const char *crlf = PA("") " \t\r\n";
    assert_int_equal(seg_decode_json(dj, crlf, strlen(crlf), &ev, NULL, 0),
                     SEG_REJ_NONE);
    /* the length is honoured: no NUL terminator is needed or read */
    char buf[128];
    const char *rec = PA("");
    size_t n = strlen(rec);
    memcpy(buf, rec, n);
    memcpy(buf + n, "garbage", 7);
    assert_int_equal(seg_decode_json(dj, buf, n, &ev, NULL, 0), SEG_REJ_NONE);
    assert_int_equal(seg_decode_json(dj, buf, n - 1, &ev, NULL, 0),
                     SEG_REJ_INVALID_JSON);
}

static void test_rej_invalid_msgpack(void **state)
{
    (void)state;
    rej_mp("", 0, SEG_REJ_INVALID_MSGPACK, "empty");
    rej_mp("\xc1", 1, SEG_REJ_INVALID_MSGPACK, "reserved byte 0xc1 at byte 0");
    rej_mp("\x81\xa4type\xc1", 7, SEG_REJ_INVALID_MSGPACK, "0xc1 at byte 6");
    rej_mp("\x82\xa4type", 6, SEG_REJ_INVALID_MSGPACK, "ends inside a value");
    rej_mp("\x81\xa4ty", 4, SEG_REJ_INVALID_MSGPACK, "ends inside a value");
    rej_mp("\xcb\x00", 2, SEG_REJ_INVALID_MSGPACK, "ends inside a value");
    rej_mp("\x80\x80", 2, SEG_REJ_INVALID_MSGPACK,
           "unexpected data after the MessagePack value at byte 1");
    /* headers claiming 2^32 elements must not make msgpack-c allocate */
    rej_mp("\xdd\xff\xff\xff\xff", 5, SEG_REJ_INVALID_MSGPACK,
           "ends inside a value");
    rej_mp("\xdf\xff\xff\xff\xff\xc0\xc0", 7, SEG_REJ_INVALID_MSGPACK,
           "ends inside a value");
    rej_mp("\xdb\xff\xff\xff\xff", 5, SEG_REJ_INVALID_MSGPACK,
           "ends inside a value");
    /* nesting beyond msgpack-c's 32 levels, inside an otherwise valid map */
    char deep[128];
    size_t n = 0;
    deep[n++] = (char)0x81;
    deep[n++] = (char)0xa1;
    deep[n++] = 'x';
    for (int i = 0; i < 40; i++) deep[n++] = (char)0x91;
    deep[n++] = (char)0xc0;
    rej_mp(deep, n, SEG_REJ_INVALID_MSGPACK, "nested deeper than 32");
}

static void test_rej_not_object(void **state)
{
    (void)state;
    rej("[1,2]", SEG_REJ_NOT_OBJECT, "record is an array");
    rej("\"purchase\"", SEG_REJ_NOT_OBJECT, "record is a string");
    rej("42", SEG_REJ_NOT_OBJECT, "record is a number");
    rej("null", SEG_REJ_NOT_OBJECT, "record is null");
    rej("true", SEG_REJ_NOT_OBJECT, "record is a boolean");
    rej("[" PA("") "]", SEG_REJ_NOT_OBJECT, "record is an array");
}

static void test_rej_missing_field(void **state)
{
    (void)state;
    rej("{}", SEG_REJ_MISSING_FIELD, "type is missing");
    rej("{\"customer_id\":\"c\",\"ts\":0,\"amount\":1}", SEG_REJ_MISSING_FIELD,
        "type is missing");
    rej("{\"type\":\"purchase\",\"ts\":0,\"amount\":1}", SEG_REJ_MISSING_FIELD,
        "customer_id is missing");
    rej("{\"type\":\"purchase\",\"customer_id\":\"c\",\"amount\":1}",
        SEG_REJ_MISSING_FIELD, "ts is missing");
    rej(P(""), SEG_REJ_MISSING_FIELD,
        "amount is missing; it is required for purchase events");
    rej("{\"type\":\"refund\",\"customer_id\":\"c\",\"ts\":0}",
        SEG_REJ_MISSING_FIELD, "amount is missing; it is required for refund");
    rej("{\"type\":\"contact\",\"customer_id\":\"c\",\"ts\":0}",
        SEG_REJ_MISSING_FIELD, "kind is missing; it is required for contact");
}

static void test_rej_wrong_field_type(void **state)
{
    (void)state;
    rej("{\"type\":1,\"customer_id\":\"c\",\"ts\":0,\"amount\":1}",
        SEG_REJ_WRONG_FIELD_TYPE, "type is a number; it must be a string");
    rej("{\"type\":[\"purchase\"],\"customer_id\":\"c\",\"ts\":0,\"amount\":1}",
        SEG_REJ_WRONG_FIELD_TYPE, "type is an array; it must be a string");
    rej("{\"type\":\"purchase\",\"customer_id\":true,\"ts\":0,\"amount\":1}",
        SEG_REJ_WRONG_FIELD_TYPE, "customer_id is a boolean");
    rej("{\"type\":\"purchase\",\"customer_id\":{},\"ts\":0,\"amount\":1}",
        SEG_REJ_WRONG_FIELD_TYPE, "customer_id is an object");
    rej(P(",\"amount\":\"12.5\""), SEG_REJ_WRONG_FIELD_TYPE,
        "amount is a string; it must be a number");
    rej(P(",\"amount\":true"), SEG_REJ_WRONG_FIELD_TYPE, "amount is a boolean");
    rej("{\"type\":\"contact\",\"customer_id\":\"c\",\"ts\":0,\"kind\":3}",
        SEG_REJ_WRONG_FIELD_TYPE, "kind is a number; it must be a string");
    rej(PA(",\"rating\":\"5\""), SEG_REJ_WRONG_FIELD_TYPE,
        "rating is a string");
    rej(PA(",\"event_id\":5"), SEG_REJ_WRONG_FIELD_TYPE,
        "event_id is a number; it must be a string");
    rej(PA(",\"currency\":{}"), SEG_REJ_WRONG_FIELD_TYPE, "currency is an object");
    rej(PA(",\"channel\":[]"), SEG_REJ_WRONG_FIELD_TYPE, "channel is an array");
    rej(PA(",\"attrs\":\"x\""), SEG_REJ_WRONG_FIELD_TYPE,
        "attrs is a string; it must be an object");
    rej(PA(",\"attrs\":[1]"), SEG_REJ_WRONG_FIELD_TYPE, "attrs is an array");
}

static void test_rej_unknown_type(void **state)
{
    (void)state;
    rej("{\"type\":\"purchases\",\"customer_id\":\"c\",\"ts\":0,\"amount\":1}",
        SEG_REJ_UNKNOWN_TYPE,
        "type is \"purchases\"; it must be purchase, refund, contact or profile");
    rej("{\"type\":\"Purchase\",\"customer_id\":\"c\",\"ts\":0,\"amount\":1}",
        SEG_REJ_UNKNOWN_TYPE, "type is \"Purchase\"");
    rej("{\"type\":\"\",\"customer_id\":\"c\",\"ts\":0}", SEG_REJ_UNKNOWN_TYPE,
        "type is \"\"");
    /* the sentence keeps UTF-8, escapes controls, quotes and broken bytes */
    rej("{\"type\":\"caf\xc3\xa9\\u0001\\\"\xff\",\"customer_id\":\"c\"}",
        SEG_REJ_UNKNOWN_TYPE, "type is \"caf\xc3\xa9\\u0001\\\"\\xff\"; it must");
    /* long values are cut in the sentence */
    rej("{\"type\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
        SEG_REJ_UNKNOWN_TYPE, "aaaaaaaaaa\"...;");
}

static void test_rej_unknown_kind(void **state)
{
    (void)state;
    rej("{\"type\":\"contact\",\"customer_id\":\"c\",\"ts\":0,\"kind\":\"phone\"}",
        SEG_REJ_UNKNOWN_KIND, "kind is \"phone\"; it must be visit, inquiry, call, "
        "complaint, support or feedback");
    rej("{\"type\":\"contact\",\"customer_id\":\"c\",\"ts\":0,\"kind\":\"Visit\"}",
        SEG_REJ_UNKNOWN_KIND, "kind is \"Visit\"");
}

static void test_rej_empty_customer_id(void **state)
{
    (void)state;
    rej("{\"type\":\"purchase\",\"customer_id\":\"\",\"ts\":0,\"amount\":1}",
        SEG_REJ_EMPTY_CUSTOMER_ID, "customer_id is empty");
}

static void test_rej_oversized_customer_id(void **state)
{
    (void)state;
    char rec[2048], id[1100];
    memset(id, '7', 1000);
    id[1000] = '\0';
    snprintf(rec, sizeof rec, "{\"type\":\"refund\",\"customer_id\":\"%s\","
             "\"ts\":0,\"amount\":1}", id);
    rej(rec, SEG_REJ_OVERSIZED_CUSTOMER_ID,
        "customer_id is 1000 bytes; the limit is 128");
}

static void test_rej_bad_timestamp(void **state)
{
    (void)state;
    static const struct { const char *ts, *phrase; } bad[] = {
        {"\"2011-13-09T12:50:00Z\"", "ts is \"2011-13-09T12:50:00Z\"; it must "
                                     "be an RFC 3339 date-time"},
        {"\"2011-02-29T12:50:00Z\"", "ts is \"2011-02-29"},
        {"\"2011-12-09T24:00:00Z\"", "RFC 3339"},
        {"\"2011-12-09T12:50:60Z\"", "RFC 3339"},
        {"\"2011-12-09T12:50:00\"", "RFC 3339"},
        {"\"2011-12-09\"", "RFC 3339"},
        {"\"2011-12-09T12:50:00+24:00\"", "RFC 3339"},
        {"\"0000-12-31T12:50:00Z\"", "0001..9999"},
        {"\"\"", "ts is \"\""},
        {"\"1323435000000\"", "RFC 3339"},     /* ms as a string: no */
        {"1323435000000.5", "ts is 1323435000000.5; epoch milliseconds must "
                            "be a whole number"},
        {"1e20", "ts is 1e+20 epoch milliseconds; it must be within years "
                 "0001..9999"},
        {"253402300800000", "ts is 253402300800000 epoch milliseconds"},
        {"-62135596800001", "ts is -62135596800001 epoch milliseconds"},
        {"true", "ts is a boolean; it must be an RFC 3339 string or integer "
                 "epoch milliseconds"},
        {"{}", "ts is an object"},
        {"[]", "ts is an array"},
    };
    char rec[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(rec, sizeof rec, "{\"type\":\"purchase\",\"customer_id\":\"c\","
                 "\"ts\":%s,\"amount\":1}", bad[i].ts);
        rej(rec, SEG_REJ_BAD_TIMESTAMP, bad[i].phrase);
    }
}

static void test_rej_negative_amount(void **state)
{
    (void)state;
    rej(P(",\"amount\":-3.5"), SEG_REJ_NEGATIVE_AMOUNT,
        "amount is -3.5; it must be >= 0");
    rej(P(",\"amount\":-1"), SEG_REJ_NEGATIVE_AMOUNT,
        "amount is -1; it must be >= 0");
    /* negative even if it would round to 0 units */
    rej(P(",\"amount\":-0.00001"), SEG_REJ_NEGATIVE_AMOUNT, "amount is -1e-05");
    rej(P(",\"amount\":-1e300"), SEG_REJ_NEGATIVE_AMOUNT, ">= 0");
}

static void test_rej_bad_amount(void **state)
{
    (void)state;
    rej(P(",\"amount\":10000000000.0001"), SEG_REJ_BAD_AMOUNT,
        "amount is 10000000000.0001; the limit is 10000000000");
    rej(P(",\"amount\":1e300"), SEG_REJ_BAD_AMOUNT, "the limit is 10000000000");
    /* JSON has no NaN/Infinity literals, but an overflowing number is inf */
    rej_json(P(",\"amount\":1e999"), SEG_REJ_BAD_AMOUNT,
             "amount is Infinity; it must be a finite number");
}

static void test_rej_bad_rating(void **state)
{
    (void)state;
    rej(PA(",\"rating\":0"), SEG_REJ_BAD_RATING,
        "rating is 0; it must be an integer from 1 to 5");
    rej(PA(",\"rating\":6"), SEG_REJ_BAD_RATING, "rating is 6");
    rej(PA(",\"rating\":-1"), SEG_REJ_BAD_RATING, "rating is -1");
    rej(PA(",\"rating\":2.5"), SEG_REJ_BAD_RATING, "rating is 2.5");
    rej(PA(",\"rating\":1e30"), SEG_REJ_BAD_RATING, "rating is 1e+30");
    assert_int_equal(acc(PA(",\"rating\":5")).rating, 5);
    assert_int_equal(acc(PA(",\"rating\":1")).rating, 1);
    assert_int_equal(acc(PA(",\"rating\":3.0")).rating, 3);
}

static void test_rej_oversized_record(void **state)
{
    (void)state;
    const char *rec = PA("");
    size_t n = strlen(rec);
    msgpack_sbuffer sb;
    to_msgpack(rec, &sb);
    seg_decoder_set_max_record(dj, n - 1);
    set_max_mp(sb.size - 1);
    char want_j[64], want_m[64];
    snprintf(want_j, sizeof want_j, "record is %zu bytes; the limit is %zu", n,
             n - 1);
    snprintf(want_m, sizeof want_m, "record is %zu bytes; the limit is %zu",
             sb.size, sb.size - 1);
    rej_json(rec, SEG_REJ_OVERSIZED_RECORD, want_j);
    rej_mp(sb.data, sb.size, SEG_REJ_OVERSIZED_RECORD, want_m);
    /* at the limit it is fine */
    seg_decoder_set_max_record(dj, n);
    set_max_mp(sb.size);
    acc(rec);
    seg_decoder_set_max_record(dj, 0);
    set_max_mp(0);
    msgpack_sbuffer_destroy(&sb);
}

static void test_rej_bad_field(void **state)
{
    (void)state;
    /* a NUL inside customer_id: as an escape in JSON, as a byte in msgpack */
    rej_json("{\"type\":\"purchase\",\"customer_id\":\"ab\\u0000cd\",\"ts\":0,"
             "\"amount\":1}", SEG_REJ_BAD_FIELD, "customer_id contains a NUL byte");
    static const char nul_id[] = "\x84\xa4type\xa8purchase\xab" "customer_id"
                                 "\xa5" "ab\0cd" "\xa2ts\x00\xa6" "amount\x01";
    rej_mp(nul_id, sizeof nul_id - 1, SEG_REJ_BAD_FIELD,
           "customer_id contains a NUL byte");
    rej_json("{\"type\":\"purchase\",\"customer_id\":\"\\u0000\",\"ts\":0,"
             "\"amount\":1}", SEG_REJ_BAD_FIELD, "NUL");
    rej_json(PA(",\"event_id\":\"e\\u0000\""), SEG_REJ_BAD_FIELD,
             "event_id contains a NUL byte");
    /* not UTF-8: overlong, surrogate, beyond U+10FFFF, truncated, stray */
    static const char *const ids[] = {"\xc0\x80", "\xed\xa0\x80",
                                      "\xf4\x90\x80\x80", "a\xe2\x82", "\xff",
                                      "\x80", "\xc3\x28"};
    char rec[256];
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        snprintf(rec, sizeof rec, "{\"type\":\"purchase\",\"customer_id\":"
                 "\"%s\",\"ts\":0,\"amount\":1}", ids[i]);
        rej(rec, SEG_REJ_BAD_FIELD, "customer_id is not valid UTF-8");
    }
    /* valid multi-byte UTF-8 of every length is fine */
    seg_event_t ev = acc("{\"type\":\"purchase\",\"customer_id\":"
                         "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"ts\":0,"
                         "\"amount\":1}");
    assert_int_equal(ev.customer_id_len, 9);
}

/* A \u0000 escape takes the slow path: check it decodes every other field
 * exactly as the fast path would, and that NULs in keys or type values are
 * not mistaken for the names they start with. */
static void test_json_nul_escapes(void **state)
{
    (void)state;
    res_t r = run_json("{\"type\":\"purchase\",\"customer_id\":\"c\\u00e9\","
                       "\"ts\":1000,\"amount\":1.5,\"note\":\"x\\u0000y\","
                       "\"event_id\":\"e1\"}");
    assert_int_equal(r.r, SEG_REJ_NONE);
    id_is(&r.ev, "c\xc3\xa9");
    assert_int_equal(r.ev.amount, 15000);
    assert_int_equal(r.ev.event_id_len, 2);
    r = run_json("{\"type\":\"purchase\\u0000\",\"customer_id\":\"c\","
                 "\"ts\":0,\"amount\":1}");
    assert_int_equal(r.r, SEG_REJ_UNKNOWN_TYPE);
    r = run_json("{\"type\\u0000x\":\"purchase\",\"customer_id\":\"c\","
                 "\"ts\":0,\"amount\":1}");
    assert_int_equal(r.r, SEG_REJ_MISSING_FIELD);
    r = run_json("{\"type\":\"contact\",\"customer_id\":\"c\","
                 "\"ts\":0,\"kind\":\"visit\\u0000\"}");
    assert_int_equal(r.r, SEG_REJ_UNKNOWN_KIND);
    r = run_json("{\"type\":\"purchase\",\"customer_id\":\"c\","
                 "\"ts\":\"2011-12-09T12:50:00Z\\u0000\",\"amount\":1}");
    assert_int_equal(r.r, SEG_REJ_BAD_TIMESTAMP);
    /* an escaped backslash followed by "u0000" is six ordinary characters */
    r = run_json("{\"type\":\"purchase\",\"customer_id\":\"\\\\u0000\","
                 "\"ts\":0,\"amount\":1}");
    assert_int_equal(r.r, SEG_REJ_NONE);
    id_is(&r.ev, "\\u0000");
    r = run_json("{\"type\":\"purchase\",\"customer_id\":\"\\\\\\u0000\","
                 "\"ts\":0,\"amount\":1}");
    assert_int_equal(r.r, SEG_REJ_BAD_FIELD);
}

static void test_check_order(void **state)
{
    (void)state;
    /* first failure wins: type, customer_id, ts, kind, amount, rating,
     * other optional fields */
    rej("{\"type\":\"x\",\"ts\":\"bad\",\"amount\":-1}", SEG_REJ_UNKNOWN_TYPE,
        NULL);
    rej("{\"type\":\"purchase\",\"ts\":\"bad\",\"amount\":-1}",
        SEG_REJ_MISSING_FIELD, "customer_id");
    rej("{\"type\":\"purchase\",\"customer_id\":\"\",\"ts\":\"bad\"}",
        SEG_REJ_EMPTY_CUSTOMER_ID, NULL);
    rej("{\"type\":\"purchase\",\"customer_id\":\"c\",\"ts\":\"bad\","
        "\"amount\":-1}", SEG_REJ_BAD_TIMESTAMP, NULL);
    rej("{\"type\":\"contact\",\"customer_id\":\"c\",\"ts\":0,\"kind\":\"x\","
        "\"amount\":-1}", SEG_REJ_UNKNOWN_KIND, NULL);
    rej(P(",\"amount\":-1,\"rating\":9"), SEG_REJ_NEGATIVE_AMOUNT, NULL);
    rej(PA(",\"rating\":9,\"event_id\":1"), SEG_REJ_BAD_RATING, NULL);
    rej(PA(",\"attrs\":1,\"event_id\":1"), SEG_REJ_WRONG_FIELD_TYPE, "event_id");
}

/* ---- msgpack-only shapes ----------------------------------------------- */

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer  pk;
} mp_t;

static void mp_begin(mp_t *m, size_t fields)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&m->pk, fields);
}

static void mp_str(mp_t *m, const char *s)
{
    msgpack_pack_str(&m->pk, strlen(s));
    msgpack_pack_str_body(&m->pk, s, strlen(s));
}

static void mp_base(mp_t *m, size_t extra, const char *type)
{
    mp_begin(m, 3 + extra);
    mp_str(m, "type");
    mp_str(m, type);
    mp_str(m, "customer_id");
    mp_str(m, "c1");
    mp_str(m, "ts");
    msgpack_pack_uint64(&m->pk, 1323435000000ULL);
}

static res_t mp_end(mp_t *m)
{
    res_t r = run_mp(m->sb.data, m->sb.size);
    memset(m->sb.data, 0x55, m->sb.size);
    msgpack_sbuffer_destroy(&m->sb);
    return r;
}

static void test_msgpack_types(void **state)
{
    (void)state;
    mp_t m;
    res_t r;

    /* float32 amounts keep only ~7 significant digits, but small ones are
     * still exact after rounding to 1/10000 */
    mp_base(&m, 1, "purchase");
    mp_str(&m, "amount");
    msgpack_pack_float(&m.pk, 11.77f);
    r = mp_end(&m);
    assert_int_equal(r.r, SEG_REJ_NONE);
    assert_int_equal(r.ev.amount, 117700);
    assert_int_equal(r.ev.ts, T0);
    id_is(&r.ev, "c1");   /* copied: the input was overwritten */

    /* unsigned and negative integers */
    mp_base(&m, 1, "refund");
    mp_str(&m, "amount");
    msgpack_pack_uint8(&m.pk, 200);
    r = mp_end(&m);
    assert_int_equal(r.r, SEG_REJ_NONE);
    assert_int_equal(r.ev.amount, 2000000);

    mp_base(&m, 1, "refund");
    mp_str(&m, "amount");
    msgpack_pack_uint64(&m.pk, UINT64_MAX);
    r = mp_end(&m);
    check_reject("msgpack", "uint64 amount", r, SEG_REJ_BAD_AMOUNT,
                 "amount is 18446744073709551615; the limit is 10000000000");

    mp_base(&m, 1, "refund");
    mp_str(&m, "amount");
    msgpack_pack_int64(&m.pk, INT64_MIN);
    r = mp_end(&m);
    check_reject("msgpack", "int64 amount", r, SEG_REJ_NEGATIVE_AMOUNT,
                 "amount is -9223372036854775808; it must be >= 0");

    /* NaN and infinities exist in msgpack */
    const double nonfinite[] = {NAN, INFINITY, -INFINITY};
    const char *const names[] = {"NaN", "Infinity", "-Infinity"};
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "amount is %s; it must be a finite number",
                 names[i]);
        mp_base(&m, 1, "purchase");
        mp_str(&m, "amount");
        msgpack_pack_double(&m.pk, nonfinite[i]);
        check_reject("msgpack", names[i], mp_end(&m), SEG_REJ_BAD_AMOUNT, want);
    }

    /* an integral float64 ts is accepted like the JSON number 1.5e3 */
    mp_begin(&m, 4);
    mp_str(&m, "type");
    mp_str(&m, "purchase");
    mp_str(&m, "customer_id");
    mp_str(&m, "c");
    mp_str(&m, "ts");
    msgpack_pack_double(&m.pk, -1500.0);
    mp_str(&m, "amount");
    msgpack_pack_int8(&m.pk, 3);
    r = mp_end(&m);
    assert_int_equal(r.r, SEG_REJ_NONE);
    assert_int_equal(r.ev.ts, -2);

    /* uint64 ts beyond int64 */
    mp_begin(&m, 4);
    mp_str(&m, "type");
    mp_str(&m, "purchase");
    mp_str(&m, "customer_id");
    mp_str(&m, "c");
    mp_str(&m, "ts");
    msgpack_pack_uint64(&m.pk, UINT64_MAX);
    mp_str(&m, "amount");
    msgpack_pack_int8(&m.pk, 3);
    check_reject("msgpack", "uint64 ts", mp_end(&m), SEG_REJ_BAD_TIMESTAMP,
                 "ts is 18446744073709551615 epoch milliseconds");

    /* bin is not a string */
    mp_begin(&m, 4);
    mp_str(&m, "type");
    mp_str(&m, "purchase");
    mp_str(&m, "customer_id");
    msgpack_pack_bin(&m.pk, 2);
    msgpack_pack_bin_body(&m.pk, "c1", 2);
    mp_str(&m, "ts");
    msgpack_pack_int8(&m.pk, 0);
    mp_str(&m, "amount");
    msgpack_pack_int8(&m.pk, 3);
    check_reject("msgpack", "bin id", mp_end(&m), SEG_REJ_WRONG_FIELD_TYPE,
                 "customer_id is binary data; it must be a string");

    /* ext values, non-string keys, and keys with an embedded NUL are
     * unknown members; the event is otherwise fine */
    mp_base(&m, 4, "purchase");
    msgpack_pack_int8(&m.pk, 7);
    msgpack_pack_int8(&m.pk, 7);
    msgpack_pack_str(&m.pk, 7);
    msgpack_pack_str_body(&m.pk, "amount\0", 7);
    msgpack_pack_int8(&m.pk, -7);
    mp_str(&m, "x");
    msgpack_pack_ext(&m.pk, 1, 1);
    msgpack_pack_ext_body(&m.pk, "z", 1);
    mp_str(&m, "amount");
    msgpack_pack_int8(&m.pk, 7);
    r = mp_end(&m);
    assert_int_equal(r.r, SEG_REJ_NONE);
    assert_int_equal(r.ev.amount, 70000);

    mp_base(&m, 2, "purchase");
    mp_str(&m, "amount");
    msgpack_pack_int8(&m.pk, 7);
    mp_str(&m, "event_id");
    msgpack_pack_ext(&m.pk, 1, 1);
    msgpack_pack_ext_body(&m.pk, "z", 1);
    check_reject("msgpack", "ext event_id", mp_end(&m),
                 SEG_REJ_WRONG_FIELD_TYPE, "event_id is an extension value");

    /* a msgpack event_id with a NUL is refused like the JSON one */
    mp_base(&m, 2, "purchase");
    mp_str(&m, "amount");
    msgpack_pack_int8(&m.pk, 7);
    mp_str(&m, "event_id");
    msgpack_pack_str(&m.pk, 3);
    msgpack_pack_str_body(&m.pk, "e\0f", 3);
    check_reject("msgpack", "nul event_id", mp_end(&m), SEG_REJ_BAD_FIELD,
                 "event_id contains a NUL byte");
}

static void test_msgpack_strings_are_copied(void **state)
{
    (void)state;
    char big_eid[300];
    memset(big_eid, 'e', sizeof big_eid - 1);
    big_eid[sizeof big_eid - 1] = '\0';
    mp_t m;
    mp_base(&m, 2, "purchase");
    mp_str(&m, "amount");
    msgpack_pack_int8(&m.pk, 1);
    mp_str(&m, "event_id");
    mp_str(&m, big_eid);
    res_t r = mp_end(&m);   /* overwrites the input before returning */
    assert_int_equal(r.r, SEG_REJ_NONE);
    id_is(&r.ev, "c1");
    assert_int_equal(r.ev.event_id_len, 299);
    assert_memory_equal(r.ev.event_id, big_eid, 299);
}

static void test_msgpack_object_entry(void **state)
{
    (void)state;
    /* a stream of two records through msgpack_unpacker, as a reader would */
    msgpack_sbuffer a, b;
    to_msgpack(PA(""), &a);
    to_msgpack("[1]", &b);
    msgpack_unpacker up;
    assert_true(msgpack_unpacker_init(&up, 1024));
    assert_true(msgpack_unpacker_reserve_buffer(&up, a.size + b.size));
    memcpy(msgpack_unpacker_buffer(&up), a.data, a.size);
    memcpy(msgpack_unpacker_buffer(&up) + a.size, b.data, b.size);
    msgpack_unpacker_buffer_consumed(&up, a.size + b.size);
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    seg_event_t ev;
    char err[256];
    assert_int_equal(msgpack_unpacker_next(&up, &res), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(seg_decode_msgpack_object(dm, &res.data, &ev, err,
                                               sizeof err), SEG_REJ_NONE);
    assert_int_equal(ev.amount, 100000);
    assert_int_equal(msgpack_unpacker_next(&up, &res), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(seg_decode_msgpack_object(dm, &res.data, &ev, err,
                                               sizeof err), SEG_REJ_NOT_OBJECT);
    assert_non_null(strstr(err, "must be a MessagePack map"));
    msgpack_unpacked_destroy(&res);
    msgpack_unpacker_destroy(&up);
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&b);
}

static void test_msgpack_value_size(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    to_msgpack(PA(",\"attrs\":{\"a\":[1,2.5,\"x\",null,true,{\"b\":-70000}]}"),
               &sb);
    size_t sz = 0;
    assert_int_equal(seg_msgpack_value_size(sb.data, sb.size, &sz), 1);
    assert_int_equal(sz, sb.size);
    /* every proper prefix is incomplete, never invalid */
    for (size_t n = 0; n < sb.size; n++)
        assert_int_equal(seg_msgpack_value_size(sb.data, n, &sz), 0);
    msgpack_sbuffer_destroy(&sb);
    /* two values back to back: the size of the first */
    assert_int_equal(seg_msgpack_value_size("\x92\x01\xcd\x01\x02\xc0", 6, &sz),
                     1);
    assert_int_equal(sz, 5);
    assert_int_equal(seg_msgpack_value_size("\xc1", 1, &sz), -1);
    assert_int_equal(seg_msgpack_value_size("\xdd\xff\xff\xff\xff", 5, &sz), 0);
    assert_int_equal(seg_msgpack_value_size("\xd8\x01" "0123456789abcdef",
                                            18, &sz), 1);
    assert_int_equal(sz, 18);
    assert_int_equal(seg_msgpack_value_size("\xc7\x02\x05xy", 5, &sz), 1);
    assert_int_equal(sz, 5);
}

static void test_reject_names(void **state)
{
    (void)state;
    static const char *const names[SEG_REJ__COUNT] = {
        "none", "invalid_json", "invalid_msgpack", "not_object",
        "missing_field", "wrong_field_type", "unknown_type", "unknown_kind",
        "empty_customer_id", "oversized_customer_id", "bad_timestamp",
        "negative_amount", "bad_amount", "bad_rating", "oversized_record",
        "bad_field",
    };
    for (int r = 0; r < SEG_REJ__COUNT; r++)
        assert_string_equal(seg_reject_name((seg_reject_t)r), names[r]);
    assert_string_equal(seg_reject_name(SEG_REJ__COUNT), "unknown");
    assert_string_equal(seg_reject_name((seg_reject_t)999), "unknown");
}

static void test_errstr_small_and_null(void **state)
{
    (void)state;
    seg_event_t ev;
    char tiny[8];
    const char *rec = P(",\"amount\":-3.5");
    assert_int_equal(seg_decode_json(dj, rec, strlen(rec), &ev, tiny,
                                     sizeof tiny), SEG_REJ_NEGATIVE_AMOUNT);
    assert_string_equal(tiny, "amount ");   /* truncated, terminated */
    assert_int_equal(seg_decode_json(dj, rec, strlen(rec), &ev, NULL, 0),
                     SEG_REJ_NEGATIVE_AMOUNT);
    /* a rejection leaves no half-filled event behind */
    assert_null(ev.customer_id);
    assert_int_equal(ev.type, 0);
    assert_int_equal(ev.ts, 0);
    assert_int_equal(seg_decode_msgpack(dm, "\xc1", 1, &ev, NULL, 0),
                     SEG_REJ_INVALID_MSGPACK);
    assert_null(ev.customer_id);
    /* a truncated sentence never ends inside a UTF-8 character:
     * 'type is "' is 9 bytes, then the 2-byte e-acute would need 11 */
    char small[11];
    rec = "{\"type\":\"\xc3\xa9\"}";
    assert_int_equal(seg_decode_json(dj, rec, strlen(rec), &ev, small,
                                     sizeof small), SEG_REJ_UNKNOWN_TYPE);
    assert_string_equal(small, "type is \"");
}

/* ---- fixture files ----------------------------------------------------- */

static char *slurp(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/events/%s", SEG_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

/* Splits buf into lines in place (without the '\n'); returns the count. */
static size_t lines(char *buf, size_t len, char **out, size_t max)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n') continue;
        if (n == max) fail_msg("too many fixture lines");
        buf[i] = '\0';
        out[n++] = buf + start;
        start = i + 1;
    }
    if (start < len) fail_msg("fixture does not end with a newline");
    return n;
}

static seg_reject_t reason_by_name(const char *name)
{
    for (int r = 0; r < SEG_REJ__COUNT; r++)
        if (strcmp(seg_reject_name((seg_reject_t)r), name) == 0)
            return (seg_reject_t)r;
    fail_msg("unknown reason \"%s\" in invalid.expected", name);
    return SEG_REJ__COUNT;
}

/* invalid.ndjson line i must be rejected with invalid.expected line i; when
 * the line is well-formed JSON without NUL escapes, the same value as
 * MessagePack must be rejected with the same reason. */
static void test_fixture_invalid(void **state)
{
    (void)state;
    size_t nl, el;
    char *rec = slurp("invalid.ndjson", &nl), *exp = slurp("invalid.expected", &el);
    static char *rl[512], *xl[512];
    size_t nr = lines(rec, nl, rl, 512), nx = lines(exp, el, xl, 512);
    assert_int_equal(nr, nx);
    assert_true(nr >= 30);
    int seen[SEG_REJ__COUNT] = {0};
    for (size_t i = 0; i < nr; i++) {
        seg_reject_t want = reason_by_name(xl[i]);
        seen[want]++;
        char err[512];
        seg_event_t ev;
        seg_reject_t got = seg_decode_json(dj, rl[i], strlen(rl[i]), &ev, err,
                                           sizeof err);
        if (got != want)
            fail_msg("invalid.ndjson:%zu: got %s (%s), want %s", i + 1,
                     seg_reject_name(got), err, xl[i]);
        assert_true(strlen(err) > 10);
        cJSON *probe = cJSON_Parse(rl[i]);
        int convertible = want != SEG_REJ_INVALID_JSON && probe &&
                          !strstr(rl[i], "\\u0000");
        cJSON_Delete(probe);
        if (convertible) {
            res_t m = run_mp_json(rl[i]);
            if (m.r != want)
                fail_msg("invalid.ndjson:%zu as msgpack: got %s (%s), want %s",
                         i + 1, seg_reject_name(m.r), m.err, xl[i]);
        }
    }
    /* every reason the JSON decoder can produce has a fixture */
    for (int r = 1; r < SEG_REJ__COUNT; r++) {
        if (r == SEG_REJ_INVALID_MSGPACK || r == SEG_REJ_OVERSIZED_RECORD)
            continue;
        if (!seen[r]) fail_msg("no fixture for %s", seg_reject_name(r));
    }
    free(rec);
    free(exp);
}

/* valid.expected: type, kind, customer_id, ts (epoch s), amount (units or
 * -), rating, event_id (or -), tab-separated, one per valid.ndjson line. */
static void test_fixture_valid(void **state)
{
    (void)state;
    size_t nl, el;
    char *rec = slurp("valid.ndjson", &nl), *exp = slurp("valid.expected", &el);
    static char *rl[512], *xl[512];
    size_t nr = lines(rec, nl, rl, 512), nx = lines(exp, el, xl, 512);
    assert_int_equal(nr, nx);
    assert_true(nr >= 15);
    for (size_t i = 0; i < nr; i++) {
        char *f[8];
        int nf = 0;
        f[nf++] = xl[i];
        for (char *p = xl[i]; *p; p++) {
            if (*p != '\t') continue;
            *p = '\0';
            if (nf == 8) break;
            f[nf++] = p + 1;
        }
        if (nf != 7) fail_msg("valid.expected:%zu: want 7 fields", i + 1);

        seg_event_t ev = acc(rl[i]);
        char amount[32] = "-", eid[256] = "-", id[256];
        if (ev.has_amount)
            snprintf(amount, sizeof amount, "%lld", (long long)ev.amount);
        if (ev.event_id)
            snprintf(eid, sizeof eid, "%.*s", (int)ev.event_id_len, ev.event_id);
        snprintf(id, sizeof id, "%.*s", (int)ev.customer_id_len, ev.customer_id);
        const char *kind = ev.type == SEG_EV_CONTACT ? seg_contact_kind_name(ev.kind)
                                                     : "-";
        if (strcmp(f[0], seg_event_type_name(ev.type)) || strcmp(f[1], kind) ||
            strcmp(f[2], id) || strtoll(f[3], NULL, 10) != ev.ts ||
            strcmp(f[4], amount) || atoi(f[5]) != ev.rating ||
            strcmp(f[6], eid))
            fail_msg("valid.ndjson:%zu: decoded %s %s %s %lld %s %d %s", i + 1,
                     seg_event_type_name(ev.type), kind, id, (long long)ev.ts,
                     amount, ev.rating, eid);
    }
    free(rec);
    free(exp);
}

/* Runs last: run_mp compared the delimited entry on the suite's records. */
static void test_delimited_was_compared(void **state)
{
    (void)state;
    assert_true(delimited_checked > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_purchase_refund),
        cmocka_unit_test(test_valid_contact_kinds),
        cmocka_unit_test(test_nulls_are_absent),
        cmocka_unit_test(test_unknown_fields_ignored),
        cmocka_unit_test(test_json_tree_outgrows_arena),
        cmocka_unit_test(test_duplicate_keys_last_wins),
        cmocka_unit_test(test_customer_id_bytes),
        cmocka_unit_test(test_ts_forms),
        cmocka_unit_test(test_amount_exactness),
        cmocka_unit_test(test_rej_invalid_json),
        cmocka_unit_test(test_rej_invalid_msgpack),
        cmocka_unit_test(test_rej_not_object),
        cmocka_unit_test(test_rej_missing_field),
        cmocka_unit_test(test_rej_wrong_field_type),
        cmocka_unit_test(test_rej_unknown_type),
        cmocka_unit_test(test_valid_profile),
        cmocka_unit_test(test_attrs_iterate),
        cmocka_unit_test(test_attrs_bad_strings),
        cmocka_unit_test(test_attrs_capture),
        cmocka_unit_test(test_rej_unknown_kind),
        cmocka_unit_test(test_rej_empty_customer_id),
        cmocka_unit_test(test_rej_oversized_customer_id),
        cmocka_unit_test(test_rej_bad_timestamp),
        cmocka_unit_test(test_rej_negative_amount),
        cmocka_unit_test(test_rej_bad_amount),
        cmocka_unit_test(test_rej_bad_rating),
        cmocka_unit_test(test_rej_oversized_record),
        cmocka_unit_test(test_rej_bad_field),
        cmocka_unit_test(test_json_nul_escapes),
        cmocka_unit_test(test_check_order),
        cmocka_unit_test(test_msgpack_types),
        cmocka_unit_test(test_msgpack_strings_are_copied),
        cmocka_unit_test(test_msgpack_object_entry),
        cmocka_unit_test(test_msgpack_value_size),
        cmocka_unit_test(test_reject_names),
        cmocka_unit_test(test_errstr_small_and_null),
        cmocka_unit_test(test_fixture_invalid),
        cmocka_unit_test(test_fixture_valid),
        cmocka_unit_test(test_delimited_was_compared),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
