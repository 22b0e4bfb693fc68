/*
 * seg_tjson: transition -> {"id":"c:3","customer_id":"c","seq":3,...}.
 */
#include "publish/seg_tjson.h"

#include <stdio.h>
#include <string.h>

#include "util/seg_money.h"
#include "util/seg_ts.h"

size_t seg_json_escape(const char *s, size_t len, char *dst)
{
    static const char hex[] = "0123456789abcdef";
    char *o = dst;
    for (size_t i = 0; i < len; i++) {
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

static char *put(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

static char *put_u64(char *o, uint64_t v)
{
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

size_t seg_tjson_encode(const seg_transition_t *t, bool features, char *buf)
{
    char *o = buf;
    o = put(o, "{\"id\":\"");
    char *id = o;
    o += seg_json_escape(t->customer_id, t->customer_id_len, o);
    size_t id_esc_len = (size_t)(o - id);
    *o++ = ':';
    o = put_u64(o, t->seq);
    o = put(o, "\",\"customer_id\":\"");
    memcpy(o, id, id_esc_len);
    o += id_esc_len;
    o = put(o, "\",\"seq\":");
    o = put_u64(o, t->seq);
    o = put(o, ",\"dimension\":\"");
    o = put(o, seg_dim_name(t->dim));
    o = put(o, "\",\"from\":");
    if (t->from) {
        *o++ = '"';
        o = put(o, t->from);
        *o++ = '"';
    } else {
        o = put(o, "null");
    }
    o = put(o, ",\"to\":\"");
    o = put(o, t->to);
    o = put(o, "\",\"at\":\"");
    o += seg_ts_format(t->at, o);
    o = put(o, t->cause == SEG_CAUSE_TIME ? "\",\"cause\":\"time\"" : "\",\"cause\":\"event\"");
    if (features && t->features) {
        const seg_features_t *f = t->features;
        o = put(o, ",\"features\":{");
        if (f->has_purchase) {
            o = put(o, "\"recency_s\":");
            o = put_i64(o, f->recency);
            o = put(o, ",\"age_s\":");
            o = put_i64(o, f->age);
            o = put(o, ",");
        }
        o = put(o, "\"frequency\":");
        o = put_i64(o, f->frequency);
        o = put(o, ",\"monetary\":");
        o += seg_money_format(f->monetary, o);
        o = put(o, ",\"complaints\":");
        o = put_i64(o, f->complaints);
        *o++ = '}';
    }
    *o++ = '}';
    *o = '\0';
    return (size_t)(o - buf);
}
