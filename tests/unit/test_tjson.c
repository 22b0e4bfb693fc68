/*
 * seg_tjson: the published transition line, byte for byte.
 *
 * The encoder is hand-tuned (precomputed literals, word-at-a-time escape
 * scan), so it is checked against a deliberately naive reference written
 * here with snprintf and gmtime_r, over the README's example and over
 * many random transitions: every dimension and value code, ids with every
 * kind of byte that needs escaping, the whole timestamp range, features
 * with negative and large numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "publish/seg_tjson.h"
#include "seg_test_rng.h"
#include "util/seg_money.h"
#include "util/seg_ts.h"

/* ---- the reference ------------------------------------------------------ */

static size_t ref_escape(const char *s, size_t len, char *o)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') n += (size_t)sprintf(o + n, "\\\"");
        else if (c == '\\') n += (size_t)sprintf(o + n, "\\\\");
        else if (c == '\n') n += (size_t)sprintf(o + n, "\\n");
        else if (c == '\r') n += (size_t)sprintf(o + n, "\\r");
        else if (c == '\t') n += (size_t)sprintf(o + n, "\\t");
        else if (c == '\b') n += (size_t)sprintf(o + n, "\\b");
        else if (c == '\f') n += (size_t)sprintf(o + n, "\\f");
        else if (c < 0x20) n += (size_t)sprintf(o + n, "\\u%04x", c);
        else o[n++] = (char)c;
    }
    o[n] = '\0';
    return n;
}

static void ref_time(int64_t at, char *out)
{
    time_t t = (time_t)at;
    struct tm tm;
    assert_non_null(gmtime_r(&t, &tm));
    sprintf(out, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static size_t ref_encode(const seg_transition_t *t, bool features, char *buf)
{
    char id[1024], at[64], from[64];
    ref_escape(t->customer_id, t->customer_id_len, id);
    ref_time(t->at, at);
    if (t->from) snprintf(from, sizeof from, "\"%s\"", t->from);
    else snprintf(from, sizeof from, "null");
    int n = sprintf(buf, "{\"id\":\"%s:%u\",\"customer_id\":\"%s\",\"seq\":%u,"
                    "\"dimension\":\"%s\",\"from\":%s,\"to\":\"%s\",\"at\":\"%s\","
                    "\"cause\":\"%s\"",
                    id, t->seq, id, t->seq, seg_dim_name(t->dim), from, t->to, at,
                    t->cause == SEG_CAUSE_TIME ? "time" : "event");
    if (features && t->features) {
        const seg_features_t *f = t->features;
        char money[32];
        money[seg_money_format(f->monetary, money)] = '\0';
        n += sprintf(buf + n, ",\"features\":{");
        if (f->has_purchase)
            n += sprintf(buf + n, "\"recency_s\":%lld,\"age_s\":%lld,",
                         (long long)f->recency, (long long)f->age);
        n += sprintf(buf + n, "\"frequency\":%lld,\"monetary\":%s,\"complaints\":%lld}",
                     (long long)f->frequency, money, (long long)f->complaints);
    }
    n += sprintf(buf + n, "}");
    return (size_t)n;
}

/* ---- tests -------------------------------------------------------------- */

static void readme_example(void **state)
{
    (void)state;
    seg_transition_t t = {
        .customer_id = "00001", .customer_id_len = 5, .seq = 4,
        .dim = SEG_DIM_LIFECYCLE, .from = "new", .to = "active",
        .at = 854668800, .cause = SEG_CAUSE_TIME,
    };
    char buf[SEG_TJSON_MAX];
    size_t n = seg_tjson_encode(&t, false, buf);
    const char *want = "{\"id\":\"00001:4\",\"customer_id\":\"00001\",\"seq\":4,"
                       "\"dimension\":\"lifecycle\",\"from\":\"new\",\"to\":\"active\","
                       "\"at\":\"1997-01-31T00:00:00Z\",\"cause\":\"time\"}";
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void escapes_each_byte(void **state)
{
    (void)state;
    /* Every byte value at every position of a 1..40-byte id, so the
     * word-at-a-time scan, its overlapping last word, the word copy of a
     * clean id (8..32 bytes) and the byte loop each see each one. */
    char id[48], got[320], want[320];
    for (int c = 1; c < 256; c++) {
        for (size_t len = 1; len <= 40; len++) {
            for (size_t pos = 0; pos < len; pos++) {
                memset(id, 'a', len);
                id[pos] = (char)c;
                size_t g = seg_json_escape(id, len, got);
                size_t w = ref_escape(id, len, want);
                got[g] = '\0';
                assert_int_equal(g, w);
                assert_string_equal(got, want);
            }
        }
    }
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void) { return seg_test_rng(&rng); }

static void random_transitions(void **state)
{
    (void)state;
    static const char pool[] = "abcXYZ019_-:\"\\\n\r\t\b\f\x01\x1f \x7f\xc3\xa9/";
    char id[SEG_CUSTOMER_ID_MAX];
    char got[SEG_TJSON_MAX], want[4096];
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = 1 + next() % (iter % 10 == 0 ? SEG_CUSTOMER_ID_MAX : 16);
        bool plain = next() % 2;
        for (size_t i = 0; i < len; i++)
            id[i] = plain ? (char)('a' + next() % 26) : pool[next() % (sizeof pool - 1)];
        seg_dim_t d = (seg_dim_t)(next() % SEG_DIM__COUNT);
        unsigned nv = seg_dim_value_count(d);
        uint8_t from = (uint8_t)(next() % nv), to = (uint8_t)(1 + next() % (nv - 1));
        if (d == SEG_DIM_DISSATISFIED) to = (uint8_t)(next() % nv);
        seg_features_t f = {
            .has_purchase = (int)(next() % 2),
            .recency = (int64_t)(next() % 100000000) - 1000,
            .age = (int64_t)(next() % 1000000000),
            .frequency = (int64_t)(next() % 30),
            .monetary = (int64_t)(next() % 20000000000ULL) - 10000000000LL,
            .complaints = (int64_t)(next() % 5),
        };
        uint32_t seqs[] = { 0, 1, 9, 10, 99, 12345, UINT32_MAX };
        seg_transition_t t = {
            .customer_id = id, .customer_id_len = len,
            .seq = iter % 3 ? seqs[next() % 7] : (uint32_t)next(),
            .dim = d,
            .from = seg_dim_value_name(d, from),
            .to = seg_dim_value_name(d, to),
            .from_code = from, .to_code = to,
            .at = SEG_TS_MIN + (int64_t)(next() % (uint64_t)(SEG_TS_MAX - SEG_TS_MIN + 1)),
            .cause = next() % 2 ? SEG_CAUSE_TIME : SEG_CAUSE_EVENT,
            .features = next() % 4 ? &f : NULL,
        };
        bool features = next() % 2;
        size_t g = seg_tjson_encode(&t, features, got);
        size_t w = ref_encode(&t, features, want);
        assert_true(g < SEG_TJSON_MAX);
        assert_int_equal(g, w);
        assert_string_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(readme_example),
        cmocka_unit_test(escapes_each_byte),
        cmocka_unit_test(random_transitions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
