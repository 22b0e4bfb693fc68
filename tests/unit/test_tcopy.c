/*
 * seg_tcopy: a transition copied for replay's writer thread.
 *
 * Replay's output is byte-identical to one thread's only if the copy
 * encodes exactly as the original did, after the engine has reused every
 * buffer the original pointed into. So: copies of random transitions
 * (built-in and rule dimensions, values and features objects up to their
 * limits, ids with any bytes) are packed back to back, the originals'
 * memory is then scribbled over, and each copy must encode to the same
 * line as its original did. Also: the built-in names stay the static
 * pointers the encoder's fast path recognises, the largest transition
 * fits SEG_TCOPY_MAX, and too little room is refused without a write
 * past it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "publish/seg_tcopy.h"
#include "publish/seg_tjson.h"
#include "util/seg_ts.h"
#include "seg_test_rng.h"

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t next(void) { return seg_test_rng(&rng); }

/* What one random transition points into: rewritten after copying. */
typedef struct orig {
    char           id[SEG_CUSTOMER_ID_MAX];
    char           name[SEG_RULE_NAME_MAX + 1];
    char           from[SEG_TCOPY_VALUE_MAX + 1], to[SEG_TCOPY_VALUE_MAX + 1];
    char           fjson[SEG_RULE_OUTF_MAX];
    seg_features_t f;
} orig_t;

static void fill(char *s, size_t len)
{
    static const char pool[] = "abcXYZ019_-:\"\\\n\t\x01 \xc3\xa9/";
    for (size_t i = 0; i < len; i++) s[i] = pool[next() % (sizeof pool - 1)];
    s[len] = '\0';
}

static size_t some_len(size_t max)
{
    switch (next() % 4) {
    case 0: return max;
    case 1: return next() % (max + 1);
    default: return next() % 12;
    }
}

static seg_transition_t random_transition(orig_t *o)
{
    size_t id_len = 1 + next() % SEG_CUSTOMER_ID_MAX;
    char idbuf[SEG_CUSTOMER_ID_MAX + 1];
    fill(idbuf, id_len);
    memcpy(o->id, idbuf, id_len);
    o->f = (seg_features_t){
        .has_purchase = (int)(next() % 2), .recency = (int64_t)(next() % 1000000) - 10,
        .age = (int64_t)(next() % 100000000), .frequency = (int64_t)(next() % 30),
        .monetary = (int64_t)next(), .complaints = (int64_t)(next() % 5),
    };
    seg_transition_t t = {
        .customer_id = o->id, .customer_id_len = id_len,
        .seq = (uint32_t)next(),
        .at = SEG_TS_MIN + (int64_t)(next() % (uint64_t)(SEG_TS_MAX - SEG_TS_MIN + 1)),
        .cause = (seg_cause_t)(next() % 3),
        .features = next() % 4 ? &o->f : NULL,
    };
    if (next() % 2) {
        seg_dim_t d = (seg_dim_t)(next() % SEG_DIM__COUNT);
        unsigned nv = seg_dim_value_count(d);
        t.dim = d;
        t.dim_name = seg_dim_name(d);
        t.from_code = (uint8_t)(next() % nv);
        t.to_code = (uint8_t)(1 + next() % (nv - 1));
        t.from = seg_dim_value_name(d, t.from_code);
        t.to = seg_dim_value_name(d, t.to_code);
    } else {
        t.dim = SEG_DIM_RULE(next() % 20);
        fill(o->name, 1 + next() % SEG_RULE_NAME_MAX);
        t.dim_name = o->name;
        fill(o->from, some_len(SEG_TCOPY_VALUE_MAX));
        fill(o->to, some_len(SEG_TCOPY_VALUE_MAX));
        t.from = next() % 5 ? o->from : NULL;
        t.to = next() % 5 ? o->to : NULL;
        t.from_code = (uint8_t)(next() % 4);
        t.to_code = (uint8_t)(next() % 4);
        if (next() % 2) {
            fill(o->fjson, some_len(SEG_RULE_OUTF_MAX - 1));
            t.features_json = o->fjson;
        }
    }
    return t;
}

#define N 64

static void copies_encode_as_originals(void **state)
{
    (void)state;
    size_t cap = N * SEG_TCOPY_MAX;
    char *buf = malloc(cap);
    orig_t *o = malloc(N * sizeof *o);
    char *want = malloc((size_t)N * SEG_TJSON_MAX), *got = malloc(SEG_TJSON_MAX);
    size_t *want_len = malloc(N * sizeof *want_len);
    assert_true(buf && o && want && got && want_len);
    for (int round = 0; round < 300; round++) {
        bool features = round % 2;
        size_t used = 0;
        for (int i = 0; i < N; i++) {
            seg_transition_t t = random_transition(&o[i]);
            want_len[i] = seg_tjson_encode(&t, features, want + (size_t)i * SEG_TJSON_MAX);
            size_t n = seg_tcopy_put(&t, features, buf + used, cap - used);
            assert_true(n > 0 && n <= SEG_TCOPY_MAX && n % 8 == 0);
            used += n;
        }
        /* The engine reuses everything a transition pointed into. */
        memset(o, 0x5a, N * sizeof *o);
        size_t off = 0;
        for (int i = 0; i < N; i++) {
            seg_transition_t c;
            off += seg_tcopy_get(buf + off, &c);
            size_t g = seg_tjson_encode(&c, features, got);
            assert_int_equal(g, want_len[i]);
            assert_memory_equal(got, want + (size_t)i * SEG_TJSON_MAX, g);
            if (!features) {
                assert_null(c.features);
                assert_null(c.features_json);
            }
            if ((unsigned)c.dim < SEG_DIM__COUNT) {
                /* kept as the static names, not copied */
                assert_ptr_equal(c.dim_name, seg_dim_name(c.dim));
                assert_ptr_equal(c.to, seg_dim_value_name(c.dim, c.to_code));
            }
        }
        assert_int_equal(off, used);
    }
    free(buf);
    free(o);
    free(want);
    free(got);
    free(want_len);
}

/* The largest transition the engine can make fits SEG_TCOPY_MAX; with
 * one byte less room nothing is copied, and nothing is written past the
 * room given. */
static void largest_and_too_little_room(void **state)
{
    (void)state;
    orig_t *o = malloc(sizeof *o);
    assert_non_null(o);
    memset(o->id, 'i', SEG_CUSTOMER_ID_MAX);
    memset(o->name, 'n', SEG_RULE_NAME_MAX);
    o->name[SEG_RULE_NAME_MAX] = '\0';
    memset(o->from, 'f', SEG_TCOPY_VALUE_MAX);
    o->from[SEG_TCOPY_VALUE_MAX] = '\0';
    memset(o->to, 't', SEG_TCOPY_VALUE_MAX);
    o->to[SEG_TCOPY_VALUE_MAX] = '\0';
    memset(o->fjson, 'j', SEG_RULE_OUTF_MAX - 1);
    o->fjson[SEG_RULE_OUTF_MAX - 1] = '\0';
    seg_transition_t t = {
        .customer_id = o->id, .customer_id_len = SEG_CUSTOMER_ID_MAX, .seq = 7,
        .dim = SEG_DIM_RULE(3), .dim_name = o->name, .from = o->from, .to = o->to,
        .at = 0, .cause = SEG_CAUSE_RULE, .features = &o->f, .features_json = o->fjson,
    };
    char *buf = malloc(SEG_TCOPY_MAX + 64);
    assert_non_null(buf);
    size_t n = seg_tcopy_put(&t, true, buf, SEG_TCOPY_MAX);
    assert_true(n > 0 && n <= SEG_TCOPY_MAX);
    for (size_t room = 0; room < n; room += 1 + room / 3) {
        memset(buf, 0x77, SEG_TCOPY_MAX + 64);
        assert_int_equal(seg_tcopy_put(&t, true, buf, room), 0);
        for (size_t i = room; i < SEG_TCOPY_MAX + 64; i++) assert_int_equal(buf[i], 0x77);
    }
    assert_int_equal(seg_tcopy_put(&t, true, buf, n), n);
    free(buf);
    free(o);
}

/* The usual transition (a built-in dimension under its own names, no
 * features, an id of 8 to 32 bytes) takes seg_tcopy_put's short path:
 * for each id length it encodes as its original did, keeps the static
 * names, and with too little room copies nothing and writes nothing. */
static void usual_copy_every_id_length(void **state)
{
    (void)state;
    char id[33], *buf = malloc(SEG_TCOPY_MAX + 64), got[SEG_TJSON_MAX], want[SEG_TJSON_MAX];
    assert_non_null(buf);
    for (size_t len = 1; len <= 33; len++) {
        fill(id, len - 1);
        id[len - 1] = 'z';
        seg_transition_t t = {
            .customer_id = id, .customer_id_len = len, .seq = 41, .dim = SEG_DIM_RFM,
            .dim_name = seg_dim_name(SEG_DIM_RFM), .from_code = 3, .to_code = 9,
            .from = seg_dim_value_name(SEG_DIM_RFM, 3), .to = seg_dim_value_name(SEG_DIM_RFM, 9),
            .at = 1704067200, .cause = SEG_CAUSE_TIME,
        };
        size_t wl = seg_tjson_encode(&t, false, want);
        size_t n = seg_tcopy_put(&t, false, buf, SEG_TCOPY_MAX);
        assert_true(n > 0 && n % 8 == 0);
        for (size_t room = 0; room < n; room++) {
            memset(buf, 0x77, SEG_TCOPY_MAX + 64);
            assert_int_equal(seg_tcopy_put(&t, false, buf, room), 0);
            for (size_t i = room; i < SEG_TCOPY_MAX + 64; i++) assert_int_equal(buf[i], 0x77);
        }
        memset(buf, 0x77, SEG_TCOPY_MAX + 64);
        assert_int_equal(seg_tcopy_put(&t, false, buf, n), n);
        for (size_t i = n; i < SEG_TCOPY_MAX + 64; i++) assert_int_equal(buf[i], 0x77);
        memset(id, '#', sizeof id);
        seg_transition_t c;
        assert_int_equal(seg_tcopy_get(buf, &c), n);
        assert_ptr_equal(c.dim_name, seg_dim_name(SEG_DIM_RFM));
        assert_ptr_equal(c.from, seg_dim_value_name(SEG_DIM_RFM, 3));
        assert_ptr_equal(c.to, seg_dim_value_name(SEG_DIM_RFM, 9));
        assert_null(c.features);
        assert_null(c.features_json);
        size_t g = seg_tjson_encode(&c, false, got);
        assert_int_equal(g, wl);
        assert_memory_equal(got, want, g);
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(copies_encode_as_originals),
        cmocka_unit_test(largest_and_too_little_room),
        cmocka_unit_test(usual_copy_every_id_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
