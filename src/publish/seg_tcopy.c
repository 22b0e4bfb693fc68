/*
 * seg_tcopy: [record | features? | id | strings...], each part 8-aligned.
 *
 * The record is a compact form of seg_transition_t (48 bytes against 96,
 * plus the features only when they are published): the fold thread
 * writes every copy and the writer thread reads it, so its size is memory
 * traffic on the replay's critical path. A static name stays
 * the pointer it was: that is decided by comparing the pointer with what
 * seg_dims.h returns for the same dimension and code, never by content,
 * so any other text is copied.
 */
#include "publish/seg_tcopy.h"

#include <stdint.h>
#include <string.h>

typedef struct rec {
    int64_t     at;
    const char *dim_name;         /* static, or the copy behind */
    const char *from, *to;        /* static, NULL, or copies behind */
    const char *features_json;    /* NULL, or the copy behind */
    uint32_t    seq;
    int32_t     dim;
    uint32_t    size;             /* bytes of the whole copy */
    uint8_t     id_len;           /* the id follows the record (or the features) */
    uint8_t     from_code, to_code, cause;
    uint8_t     has_features;     /* a seg_features_t follows the record */
} rec_t;

_Static_assert(SEG_CUSTOMER_ID_MAX <= UINT8_MAX, "an id's length fits rec_t.id_len");
_Static_assert(sizeof(rec_t) + sizeof(seg_features_t) + 16 <= 256,
               "SEG_TCOPY_MAX leaves 256 bytes for the record and the features");

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Appends s[0..len) and a NUL at buf + *used; returns the copy, or NULL
 * (nothing written) if it does not fit in room. */
static const char *put_str(char *buf, size_t *used, size_t room, const char *s, size_t len)
{
    size_t need = align8(len + 1);
    if (need > room - *used) return NULL;
    char *d = buf + *used;
    memcpy(d, s, len);
    d[len] = '\0';
    *used += need;
    return d;
}

/* put_str for the id, the one string every copy has: an id of 8..32
 * bytes (the usual) goes as 8-byte words, the last one overlapping the one
 * before it, which reads nothing outside the id and is cheaper than a
 * memcpy call. */
static const char *put_id(char *buf, size_t *used, size_t room, const char *s, size_t len)
{
    if (len < 8 || len > 32) return put_str(buf, used, room, s, len);
    size_t need = align8(len + 1);
    if (need > room - *used) return NULL;
    char *d = buf + *used;
    for (size_t i = 0; i + 8 < len; i += 8) memcpy(d + i, s + i, 8);
    memcpy(d + len - 8, s + len - 8, 8);
    d[len] = '\0';
    *used += need;
    return d;
}

/* A built-in dimension's value name as seg_dims.h gives it (kept), or any
 * other text (copied). Sets *ok to false when it does not fit. */
static const char *put_value(char *buf, size_t *used, size_t room, const seg_transition_t *t,
                             const char *v, uint8_t code, bool *ok)
{
    if (!v) return NULL;
    if ((unsigned)t->dim < SEG_DIM__COUNT && v == seg_dim_value_name(t->dim, code)) return v;
    const char *c = put_str(buf, used, room, v, strlen(v));
    if (!c) *ok = false;
    return c;
}

/* The general case of seg_tcopy_put: any name may need copying. Kept
 * out of line so that the usual case needs no saved registers. */
__attribute__((noinline, cold))
static size_t put_any(const seg_transition_t *t, bool features, void *buf, size_t room)
{
    char *b = buf;
    bool with_f = features && t->features;
    size_t used = align8(sizeof(rec_t)) + (with_f ? align8(sizeof(seg_features_t)) : 0);
    if (used > room || t->customer_id_len > SEG_CUSTOMER_ID_MAX) return 0;
    rec_t *r = buf;
    r->at = t->at;
    r->seq = t->seq;
    r->dim = (int32_t)t->dim;
    r->id_len = (uint8_t)t->customer_id_len;
    r->from_code = t->from_code;
    r->to_code = t->to_code;
    r->cause = (uint8_t)t->cause;
    r->has_features = with_f;
    if (with_f) memcpy(b + align8(sizeof(rec_t)), t->features, sizeof(seg_features_t));
    bool ok = true;
    if (!put_id(b, &used, room, t->customer_id, t->customer_id_len)) return 0;
    r->dim_name = t->dim_name;
    if ((unsigned)t->dim >= SEG_DIM__COUNT || t->dim_name != seg_dim_name(t->dim))
        r->dim_name = put_str(b, &used, room, t->dim_name, strlen(t->dim_name));
    r->from = put_value(b, &used, room, t, t->from, t->from_code, &ok);
    r->to = put_value(b, &used, room, t, t->to, t->to_code, &ok);
    r->features_json = NULL;
    if (features && t->features_json)
        ok = ok && (r->features_json = put_str(b, &used, room, t->features_json,
                                               strlen(t->features_json)));
    if (!ok || !r->dim_name) return 0;
    r->size = (uint32_t)used;
    return used;
}

size_t seg_tcopy_put(const seg_transition_t *t, bool features, void *buf, size_t room)
{
    /* The usual copy, on the fold thread's path once per transition: a
     * built-in dimension under its own names, no features, an id of 8..32
     * bytes. Only the record and the id are written; the rest is
     * put_any's. */
    unsigned d = (unsigned)t->dim;
    size_t len = t->customer_id_len;
    if (d >= SEG_DIM__COUNT || features || len < 8 || len > 32 ||
        t->dim_name != seg_dim_name(t->dim) ||
        t->from != seg_dim_value_name(t->dim, t->from_code) ||
        t->to != seg_dim_value_name(t->dim, t->to_code))
        return put_any(t, features, buf, room);
    size_t used = align8(sizeof(rec_t));
    if (used > room || !put_id(buf, &used, room, t->customer_id, len)) return 0;
    rec_t *r = buf;
    r->at = t->at;
    r->dim_name = t->dim_name;
    r->from = t->from;
    r->to = t->to;
    r->features_json = NULL;
    r->seq = t->seq;
    r->dim = (int32_t)d;
    r->size = (uint32_t)used;
    r->id_len = (uint8_t)len;
    r->from_code = t->from_code;
    r->to_code = t->to_code;
    r->cause = (uint8_t)t->cause;
    r->has_features = 0;
    return used;
}

size_t seg_tcopy_get(const void *buf, seg_transition_t *t)
{
    const rec_t *r = buf;
    const char *b = buf;
    size_t off = align8(sizeof(rec_t));
    t->features = NULL;
    if (r->has_features) {
        t->features = (const seg_features_t *)(const void *)(b + off);
        off += align8(sizeof(seg_features_t));
    }
    t->customer_id = b + off;
    t->customer_id_len = r->id_len;
    t->seq = r->seq;
    t->dim = (seg_dim_t)r->dim;
    t->dim_name = r->dim_name;
    t->from = r->from;
    t->to = r->to;
    t->from_code = r->from_code;
    t->to_code = r->to_code;
    t->at = r->at;
    t->cause = (seg_cause_t)r->cause;
    t->features_json = r->features_json;
    return r->size;
}
