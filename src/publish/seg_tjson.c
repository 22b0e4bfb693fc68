/*
 * seg_tjson: transition -> {"id":"c:3","customer_id":"c","seq":3,...}.
 */
#include "publish/seg_tjson.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "util/seg_money.h"
#include "util/seg_ts.h"

/* Bytes that JSON strings must escape: controls, '"' and '\\'. */
static int needs_escape(unsigned char ch)
{
    return ch < 0x20 || ch == '"' || ch == '\\';
}

/* Whether any of the 8 bytes of w needs escaping (the classic "has a
 * byte less than n" bit tricks, Hacker's Delight 6-1). May say yes for a
 * word without such a byte (never the reverse); the byte loop then
 * settles it. */
static int word_needs_escape(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (((w - ones * 0x20) | (q - ones) | (b - ones)) & ~w & highs) != 0;
}

static uint64_t load8(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* Length of the prefix of s that needs no escaping. Eight bytes at a time:
 * ids are short and almost never contain such a byte, and a byte loop cost
 * ~130 instructions per transition. The last word overlaps the one before
 * it rather than ending in a byte loop. */
static size_t clean_prefix(const char *s, size_t len)
{
    size_t i = 0;
    if (len >= 8) {
        for (; i + 8 <= len; i += 8)
            if (word_needs_escape(load8(s + i))) goto bytes;
        if (i == len || !word_needs_escape(load8(s + len - 8))) return len;
    }
bytes:
    while (i < len && !needs_escape((unsigned char)s[i])) i++;
    return i;
}

size_t seg_json_escape(const char *s, size_t len, char *dst)
{
    static const char hex[] = "0123456789abcdef";
    /* Ids almost never need escaping: find the first byte that does and
     * copy everything before it in one go (a whole clean string of 8..32
     * bytes as overlapping words, which is cheaper than a memcpy call). */
    size_t clean = clean_prefix(s, len);
    if (clean == len && len >= 8 && len <= 32) {
        for (size_t i = 0; i + 8 < len; i += 8) memcpy(dst + i, s + i, 8);
        memcpy(dst + len - 8, s + len - 8, 8);
        return len;
    }
    memcpy(dst, s, clean);
    char *o = dst + clean;
    for (size_t i = clean; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"':  *o++ = '\\'; *o++ = '"'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '\b': *o++ = '\\'; *o++ = 'b'; break;
        case '\f': *o++ = '\\'; *o++ = 'f'; break;
        default:
            if (ch < 0x20) {
                memcpy(o, "\\u00", 4);
                o[4] = hex[ch >> 4];
                o[5] = hex[ch & 15];
                o += 6;
            } else {
                *o++ = (char)ch;
            }
        }
    }
    return (size_t)(o - dst);
}

/* Literal text: its length is known at compile time, so no strlen. */
#define PUT_LIT(o, lit) (memcpy((o), (lit), sizeof(lit) - 1), (o) + sizeof(lit) - 1)

static char *put(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

static char *put_u64(char *o, uint64_t v)
{
    if (v < 10) {               /* most seq values and features */
        *o++ = (char)('0' + v);
        return o;
    }
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *o++ = tmp[--n];
    return o;
}

static char *put_i64(char *o, int64_t v)
{
    if (v < 0) {
        *o++ = '-';
        return put_u64(o, (uint64_t)0 - (uint64_t)v);
    }
    return put_u64(o, (uint64_t)v);
}

/* A rule's value: a JSON string, or null. */
static char *put_value(char *o, const char *v)
{
    if (!v) return PUT_LIT(o, "null");
    *o++ = '"';
    o += seg_json_escape(v, strlen(v), o);
    *o++ = '"';
    return o;
}

/* The built-in dimensions' value names, quoted, with their lengths, by
 * value code: a transition's from/to are written with one fixed-size
 * copy instead of strlen and memcpy (~100 instructions a transition).
 * Built once, on first use; a name is taken from the table only when the
 * transition's pointer is the very name seg_dim_value_name gives for its
 * code, so a caller that passes other text still gets that text. */
#define QNAME_MAX 16
typedef struct qname {
    const char *name;           /* seg_dim_value_name(dim, code), or NULL */
    char        q[QNAME_MAX];   /* "\"name\"" */
    size_t      n;
} qname_t;
static qname_t qnames[SEG_DIM__COUNT][SEG_RFM__COUNT];
static pthread_once_t qnames_once = PTHREAD_ONCE_INIT;

static void qnames_build(void)
{
    for (int d = 0; d < SEG_DIM__COUNT; d++) {
        unsigned cnt = seg_dim_value_count((seg_dim_t)d);
        for (unsigned c = 0; c < cnt && c < SEG_RFM__COUNT; c++) {
            const char *name = seg_dim_value_name((seg_dim_t)d, (uint8_t)c);
            size_t n = name ? strlen(name) : 0;
            if (!name || n + 2 > QNAME_MAX) continue;
            qnames[d][c].name = name;
            qnames[d][c].q[0] = '"';
            memcpy(qnames[d][c].q + 1, name, n);
            qnames[d][c].q[n + 1] = '"';
            qnames[d][c].n = n + 2;
        }
    }
}

/* A built-in dimension's value, quoted. */
static char *put_name(char *o, seg_dim_t d, uint8_t code, const char *name)
{
    const qname_t *q = code < SEG_RFM__COUNT ? &qnames[d][code] : NULL;
    if (q && q->name == name) {
        memcpy(o, q->q, QNAME_MAX);      /* fixed size: inlined; the tail is scratch */
        return o + q->n;
    }
    *o++ = '"';
    o = put(o, name);
    *o++ = '"';
    return o;
}

/* `,"dimension":"<name>","from":` for each dimension, built once. */
#define DIM_PART(name) ",\"dimension\":\"" name "\",\"from\":"
static const struct { const char *s; size_t n; } dim_part[SEG_DIM__COUNT] = {
    { DIM_PART("lifecycle"),    sizeof DIM_PART("lifecycle") - 1 },
    { DIM_PART("value"),        sizeof DIM_PART("value") - 1 },
    { DIM_PART("rfm"),          sizeof DIM_PART("rfm") - 1 },
    { DIM_PART("dissatisfied"), sizeof DIM_PART("dissatisfied") - 1 },
};

size_t seg_tjson_encode(const seg_transition_t *t, bool features, char *buf)
{
    pthread_once(&qnames_once, qnames_build);
    char *o = buf;
    o = PUT_LIT(o, "{\"id\":\"");
    char *id = o;
    o += seg_json_escape(t->customer_id, t->customer_id_len, o);
    size_t id_esc_len = (size_t)(o - id);
    *o++ = ':';
    char *seq = o;
    o = put_u64(o, t->seq);
    size_t seq_len = (size_t)(o - seq);
    o = PUT_LIT(o, "\",\"customer_id\":\"");
    memcpy(o, id, id_esc_len);
    o += id_esc_len;
    o = PUT_LIT(o, "\",\"seq\":");
    memcpy(o, seq, seq_len);
    o += seq_len;
    if ((unsigned)t->dim < SEG_DIM__COUNT) {
        /* Built-in values are known names: nothing to escape. */
        memcpy(o, dim_part[t->dim].s, dim_part[t->dim].n);
        o += dim_part[t->dim].n;
        if (t->from) o = put_name(o, t->dim, t->from_code, t->from);
        else o = PUT_LIT(o, "null");
        if (t->to) {
            o = PUT_LIT(o, ",\"to\":");
            o = put_name(o, t->dim, t->to_code, t->to);
        } else {   /* switched off by a reload */
            o = PUT_LIT(o, ",\"to\":null");
        }
    } else {
        /* A user rule: its name is [a-z0-9_], its values may be any text. */
        o = PUT_LIT(o, ",\"dimension\":\"");
        o = put(o, t->dim_name);
        o = PUT_LIT(o, "\",\"from\":");
        o = put_value(o, t->from);
        o = PUT_LIT(o, ",\"to\":");
        o = put_value(o, t->to);
    }
    o = PUT_LIT(o, ",\"at\":\"");
    o += seg_ts_format(t->at, o);
    if (t->cause == SEG_CAUSE_TIME) o = PUT_LIT(o, "\",\"cause\":\"time\"");
    else if (t->cause == SEG_CAUSE_RULE) o = PUT_LIT(o, "\",\"cause\":\"rule\"");
    else o = PUT_LIT(o, "\",\"cause\":\"event\"");
    if (features && t->features_json) {
        o = PUT_LIT(o, ",\"features\":");
        size_t n = strlen(t->features_json);
        memcpy(o, t->features_json, n);
        o += n;
    } else if (features && t->features) {
        const seg_features_t *f = t->features;
        o = PUT_LIT(o, ",\"features\":{");
        if (f->has_purchase) {
            o = PUT_LIT(o, "\"recency_s\":");
            o = put_i64(o, f->recency);
            o = PUT_LIT(o, ",\"age_s\":");
            o = put_i64(o, f->age);
            o = PUT_LIT(o, ",");
        }
        o = PUT_LIT(o, "\"frequency\":");
        o = put_i64(o, f->frequency);
        o = PUT_LIT(o, ",\"monetary\":");
        o += seg_money_format(f->monetary, o);
        o = PUT_LIT(o, ",\"complaints\":");
        o = put_i64(o, f->complaints);
        *o++ = '}';
    }
    *o++ = '}';
    *o = '\0';
    return (size_t)(o - buf);
}
