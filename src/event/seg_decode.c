/*
 * seg_decode: JSON (simdjson, cJSON for what simdjson refuses) and
 * MessagePack (msgpack-c) records -> one neutral field view -> one
 * validator -> seg_event_t or a reject reason.
 *
 * Why a neutral view: the two formats have different type systems (JSON
 * has only doubles, msgpack has signed/unsigned ints, float32/64, bin, ext),
 * and the rules in docs/events.md must not drift between them. Each format
 * only maps its members onto fval_t slots for the fields we know; every
 * decision about what is valid is made once, in validate().
 *
 * Why two JSON parsers: simdjson (src/event/seg_json, the one C++ file)
 * parses the bench's records in a quarter of cJSON's instructions, but it
 * is stricter than cJSON, whose leniencies are part of the contract
 * (docs/events.md: a BOM, leading zeros, raw control characters, bytes
 * that are not UTF-8, ...). So every record goes to simdjson first, and
 * one it does not accept in full (SEG_JSON_UNDECIDED: invalid, not an
 * object, or one of those leniencies) is parsed again by cJSON, which
 * decides as it always did, error sentence included. What simdjson
 * accepts, cJSON accepts with the same values; tests/fuzz/fuzz_json.c
 * checks that on every input.
 *
 * Hot-path choices:
 *  - A JSON record is copied once into simdjson's padded buffer and
 *    parsed there; its strings are unescaped into the parser, which keeps
 *    them until the next call, so event strings point there.
 *  - JSON attrs are listed as seg_attr_t in decoder memory while the record
 *    is parsed (simdjson reads forward only, so there is no tree to come
 *    back to); the cJSON path lists them the same way from its tree.
 *  - MessagePack is unpacked into a msgpack_zone owned by the decoder and
 *    cleared (not freed) per record, so a warmed-up decoder allocates
 *    nothing per event; strings are copied into decoder buffers.
 *  - Error sentences (snprintf of doubles) are only built on rejection.
 *    Building the amount's text up front had cost more than the parse:
 *    seg_decode_msgpack ran at 0.25x of msgpack_unpack_next; now ~0.7-1.0x
 *    (1.0x+ wall clock when the zone reuse beats msgpack's per-call
 *    malloc).
 *
 * Two process-wide cJSON facts callers should know: it reads numbers with
 * the C library's locale decimal point (segd never calls setlocale, so it
 * is '.'), and a failed parse writes cJSON's global error pointer, which
 * segd never reads (harmless, but a race detector will report it when
 * several threads decode).
 *
 * Two format quirks are handled at the edge, so validate() never sees them:
 *  - cJSON stores strings NUL-terminated without a length, so "a\u0000b"
 *    would silently become "a". Records containing a real \u0000 escape
 *    that reach cJSON (rare twice over) take a slow path that can tell
 *    which strings held a NUL. simdjson keeps lengths, so there a NUL is
 *    simply a byte of the string.
 *  - msgpack-c allocates a container's slots from its header before
 *    reading the elements, so a 5-byte record claiming 2^32 elements asks
 *    for ~100 GB. mp_scan() bounds every count by the bytes left first.
 */
#include "event/seg_decode.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/seg_json.h"
#include "util/seg_money.h"
#include "util/seg_ts.h"

/* ---- neutral field view ------------------------------------------------ */

typedef enum {
    VT_ABSENT = 0,
    VT_NULL,
    VT_BOOL,
    VT_INT,     /* fits int64 */
    VT_UINT,    /* msgpack positive integer above INT64_MAX */
    VT_FLOAT,   /* every JSON number; msgpack float32/float64 */
    VT_STR,
    VT_BIN,
    VT_ARRAY,
    VT_OBJECT,
    VT_EXT,
} vtype_t;

typedef struct {
    vtype_t     t;
    int         has_nul;   /* VT_STR: contains a NUL byte */
    const char *s;         /* VT_STR: not NUL-terminated */
    size_t      len;
    int64_t     i;
    uint64_t    u;
    double      d;
    const void *obj;       /* VT_OBJECT: the seg_json member, cJSON node or
                            * msgpack_object */
    const void *orig;      /* JSON slow path: the same node in the tree where
                            * cJSON cut strings at a \u0000 */
} fval_t;

enum {
    F_TYPE, F_CUSTOMER_ID, F_TS, F_KIND, F_AMOUNT, F_RATING,
    F_EVENT_ID, F_CURRENCY, F_CHANNEL, F_ATTRS, F__N
};

static const char *const field_names[F__N] = {
    "type", "customer_id", "ts", "kind", "amount", "rating",
    "event_id", "currency", "channel", "attrs",
};

/* Maps a member name to its slot, or -1 for a field we ignore. Names are
 * compared with their exact length, so "type\0x" is not "type". */
static int field_index(const char *k, size_t n)
{
    switch (n) {
    case 2:  return memcmp(k, "ts", 2) == 0 ? F_TS : -1;
    case 4:
        if (memcmp(k, "type", 4) == 0) return F_TYPE;
        if (memcmp(k, "kind", 4) == 0) return F_KIND;
        return -1;
    case 5:  return memcmp(k, "attrs", 5) == 0 ? F_ATTRS : -1;
    case 6:
        if (memcmp(k, "amount", 6) == 0) return F_AMOUNT;
        if (memcmp(k, "rating", 6) == 0) return F_RATING;
        return -1;
    case 7:  return memcmp(k, "channel", 7) == 0 ? F_CHANNEL : -1;
    case 8:
        if (memcmp(k, "event_id", 8) == 0) return F_EVENT_ID;
        if (memcmp(k, "currency", 8) == 0) return F_CURRENCY;
        return -1;
    case 11: return memcmp(k, "customer_id", 11) == 0 ? F_CUSTOMER_ID : -1;
    default: return -1;
    }
}

/* ---- decoder ----------------------------------------------------------- */

struct seg_decoder {
    seg_json_t  *sj;          /* simdjson: every JSON record is tried here first */
    seg_attr_t  *attrs;       /* a JSON record's attrs members (SEG_ATTRS_JSON) */
    size_t       attrs_cap;
    char        *arena;       /* cJSON nodes of the current record, bump-allocated */
    size_t       arena_cap, arena_used;
    int          arena_spilled; /* a record did not fit: grow before the next */
    cJSON       *json;        /* tree of the last JSON record */
    cJSON       *json_alt;    /* slow path: tree with \u0000 made visible */
    char        *scratch;     /* slow path: rewritten copy of the record */
    size_t       scratch_cap;
    msgpack_zone zone;        /* reused for every msgpack record */
    char         id[SEG_CUSTOMER_ID_MAX];  /* msgpack customer_id copy */
    char        *eid;         /* msgpack event_id copy */
    size_t       eid_cap;
    size_t       max_record;  /* 0 = unlimited */
};

/* cJSON allocates every node and string with malloc; parsing a 150-byte
 * event costs a dozen malloc/free pairs, a fifth of the decode time. While
 * a decoder parses (or frees its tree), cJSON's hooks bump-allocate from
 * that decoder's arena instead, and frees into it are no-ops; the arena
 * is reset when the tree is released. Outside those windows, and on other
 * threads (the logger uses cJSON from librdkafka's threads), the hooks are
 * plain malloc/free. */
static _Thread_local seg_decoder_t *arena_owner;

static void *arena_malloc(size_t sz)
{
    seg_decoder_t *d = arena_owner;
    if (d) {
        size_t need = (sz + 15) & ~(size_t)15;
        if (d->arena && d->arena_used + need <= d->arena_cap) {
            void *p = d->arena + d->arena_used;
            d->arena_used += need;
            return p;
        }
        d->arena_spilled = 1;
    }
    return malloc(sz);
}

static void arena_free(void *p)
{
    seg_decoder_t *d = arena_owner;
    if (d && d->arena && (char *)p >= d->arena && (char *)p < d->arena + d->arena_cap) return;
    free(p);
}

seg_decoder_t *seg_decoder_new(void)
{
    static cJSON_Hooks hooks = { arena_malloc, arena_free };
    cJSON_InitHooks(&hooks);
    seg_decoder_t *dec = calloc(1, sizeof *dec);
    if (!dec) return NULL;
    dec->arena_cap = 64 * 1024;
    dec->arena = malloc(dec->arena_cap);
    if (!dec->arena) {
        free(dec);
        return NULL;
    }
    dec->sj = seg_json_new();
    if (!dec->sj || !msgpack_zone_init(&dec->zone, MSGPACK_ZONE_CHUNK_SIZE)) {
        seg_json_destroy(dec->sj);
        free(dec->arena);
        free(dec);
        return NULL;
    }
    return dec;
}

/* Drops the current trees. When every node came from the arena (the
 * usual case: the arena grows after a record that spilled), there is
 * nothing to free and resetting the arena is the whole release; walking
 * the tree with cJSON_Delete only to make no-op frees cost about 8% of
 * the JSON decode. Only a spilled tree is walked, for its malloc'd nodes. */
static void release_json(seg_decoder_t *dec)
{
    if (!dec->arena_spilled) {
        dec->json = dec->json_alt = NULL;
        dec->arena_used = 0;
        return;
    }
    arena_owner = dec;
    if (dec->json) {
        cJSON_Delete(dec->json);
        dec->json = NULL;
    }
    if (dec->json_alt) {
        cJSON_Delete(dec->json_alt);
        dec->json_alt = NULL;
    }
    arena_owner = NULL;
    dec->arena_used = 0;
    /* Grow, so a record like this one fits next time. */
    if (dec->arena_cap < (64u << 20)) {
        char *bigger = malloc(dec->arena_cap * 2);
        if (bigger) {
            free(dec->arena);
            dec->arena = bigger;
            dec->arena_cap *= 2;
        }
    }
    dec->arena_spilled = 0;
}

void seg_decoder_destroy(seg_decoder_t *dec)
{
    if (!dec) return;
    release_json(dec);
    seg_json_destroy(dec->sj);
    free(dec->attrs);
    free(dec->arena);
    msgpack_zone_destroy(&dec->zone);
    free(dec->scratch);
    free(dec->eid);
    free(dec);
}

void seg_decoder_set_max_record(seg_decoder_t *dec, size_t max_bytes)
{
    dec->max_record = max_bytes;
}

/* ---- error sentences --------------------------------------------------- */

static void errf(char *e, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static size_t utf8_seq(const unsigned char *s, size_t n);

static void errf(char *e, size_t n, const char *fmt, ...)
{
    if (!e || n == 0) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(e, n, fmt, ap);
    va_end(ap);
    if (w >= 0 && (size_t)w >= n && n > 1) {
        /* Truncated: do not leave half a UTF-8 character at the end. */
        size_t len = n - 1, j = len - 1;
        while (j > 0 && ((unsigned char)e[j] & 0xc0) == 0x80) j--;
        if ((unsigned char)e[j] >= 0x80 &&
            utf8_seq((const unsigned char *)e + j, len - j) == 0)
            e[j] = '\0';
    }
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one.
 * Strict: no overlongs, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if (n <= need) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k <= need; k++)
        if (s[k] < 0x80 || s[k] > 0xbf) return 0;
    return need + 1;
}

/* customer ids are echoed into JSON output and the DLQ, which must stay
 * valid UTF-8 whatever the producer sent. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(s + i, n - i);
        if (k == 0) return 0;
        i += k;
    }
    return 1;
}

/* Quotes at most 40 bytes of an untrusted string for an error sentence.
 * Control characters, quotes and bytes that are not valid UTF-8 are
 * escaped, so the sentence is always printable, valid UTF-8 and safe to
 * embed in a log line or the DLQ. */
static void quote(char *out, size_t outsz, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t o = 0, i = 0, max = len > 40 ? 40 : len;
    if (outsz < 8) {
        if (outsz) out[0] = '\0';
        return;
    }
    out[o++] = '"';
    while (i < max && o + 10 < outsz) {
        unsigned c = s[i];
        size_t k = c >= 0x80 ? utf8_seq(s + i, len - i) : 1;
        if (c >= 0x80 && k > 0) {
            if (i + k > max) break;          /* never cut a character */
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
            continue;
        }
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + o, "\\u00", 4);
            o += 4;
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else if (c >= 0x80) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
        i++;
    }
    out[o++] = '"';
    if (i < len && o + 4 < outsz) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* A number as the sender wrote it, as far as we can tell: the shortest
 * %g form that reads back as the same double. */
static void fmt_num(char *out, size_t outsz, const fval_t *v)
{
    if (v->t == VT_INT) {
        snprintf(out, outsz, "%lld", (long long)v->i);
    } else if (v->t == VT_UINT) {
        snprintf(out, outsz, "%llu", (unsigned long long)v->u);
    } else if (isnan(v->d)) {
        snprintf(out, outsz, "NaN");
    } else if (isinf(v->d)) {
        snprintf(out, outsz, v->d < 0 ? "-Infinity" : "Infinity");
    } else {
        snprintf(out, outsz, "%.15g", v->d);
        if (strtod(out, NULL) != v->d) snprintf(out, outsz, "%.17g", v->d);
    }
}

static const char *type_phrase(vtype_t t)
{
    switch (t) {
    case VT_ABSENT: return "missing";
    case VT_NULL:   return "null";
    case VT_BOOL:   return "a boolean";
    case VT_INT:
    case VT_UINT:
    case VT_FLOAT:  return "a number";
    case VT_STR:    return "a string";
    case VT_BIN:    return "binary data";
    case VT_ARRAY:  return "an array";
    case VT_OBJECT: return "an object";
    case VT_EXT:    return "an extension value";
    }
    return "of an unknown type";
}

/* ---- the validator ----------------------------------------------------- */

static int str_is(const fval_t *v, const char *lit, size_t n)
{
    return v->len == n && memcmp(v->s, lit, n) == 0;
}

/* Integral value of a number field, for ts and rating. Returns 0 and sets
 * *out, 1 if the number has a fractional part (or is not finite), 2 if it
 * is outside int64 (only possible far outside every accepted range). */
static int num_integral(const fval_t *v, int64_t *out)
{
    if (v->t == VT_INT) {
        *out = v->i;
        return 0;
    }
    if (v->t == VT_UINT) return 2;
    if (!isfinite(v->d) || floor(v->d) != v->d) return 1;
    if (v->d < -9.0e18 || v->d > 9.0e18) return 2;
    *out = (int64_t)v->d;
    return 0;
}

static seg_reject_t missing(const fval_t *v, const char *name,
                            const char *why, char *e, size_t en)
{
    errf(e, en, "%s is %s; it is required%s", name,
         v->t == VT_NULL ? "null" : "missing", why);
    return SEG_REJ_MISSING_FIELD;
}

static seg_reject_t wrong_type(const fval_t *v, const char *name,
                               const char *want, char *e, size_t en)
{
    errf(e, en, "%s is %s; it must be %s", name, type_phrase(v->t), want);
    return SEG_REJ_WRONG_FIELD_TYPE;
}

static seg_reject_t check_ts(const fval_t *v, int64_t *ts, char *e, size_t en)
{
    char q[128];
    int64_t ms;
    switch (v->t) {
    case VT_ABSENT:
    case VT_NULL:
        return missing(v, "ts", "", e, en);
    case VT_STR:
        if (!v->has_nul && seg_ts_parse_rfc3339(v->s, v->len, ts) == 0)
            return SEG_REJ_NONE;
        quote(q, sizeof q, v->s, v->len);
        errf(e, en, "ts is %s; it must be an RFC 3339 date-time "
             "(e.g. 2011-12-09T12:50:00Z) in years 0001..9999", q);
        return SEG_REJ_BAD_TIMESTAMP;
    case VT_INT:
    case VT_UINT:
    case VT_FLOAT: {
        int r = num_integral(v, &ms);
        if (r == 0 && seg_ts_from_epoch_ms(ms, ts) == 0) return SEG_REJ_NONE;
        fmt_num(q, sizeof q, v);
        if (r == 1)
            errf(e, en, "ts is %s; epoch milliseconds must be a whole number",
                 q);
        else
            errf(e, en, "ts is %s epoch milliseconds; it must be within "
                 "years 0001..9999", q);
        return SEG_REJ_BAD_TIMESTAMP;
    }
    default:
        errf(e, en, "ts is %s; it must be an RFC 3339 string or integer "
             "epoch milliseconds", type_phrase(v->t));
        return SEG_REJ_BAD_TIMESTAMP;
    }
}

static seg_reject_t check_amount(const fval_t *v, int64_t *units,
                                 char *e, size_t en)
{
    char q[64];
    double d;
    switch (v->t) {
    case VT_INT:   d = (double)v->i; break;
    case VT_UINT:  d = (double)v->u; break;
    case VT_FLOAT: d = v->d; break;
    default:       return wrong_type(v, "amount", "a number", e, en);
    }
    /* -0.0 is not < 0: it is zero, and accepted. NaN fails every
     * comparison, so the happy path is one test and one conversion; the
     * sentence is only formatted for a rejection. */
    if (d >= 0 && seg_money_from_double(d, units) == 0) return SEG_REJ_NONE;
    fmt_num(q, sizeof q, v);
    if (isnan(d) || isinf(d)) {
        errf(e, en, "amount is %s; it must be a finite number", q);
        return SEG_REJ_BAD_AMOUNT;
    }
    if (d < 0) {
        errf(e, en, "amount is %s; it must be >= 0", q);
        return SEG_REJ_NEGATIVE_AMOUNT;
    }
    errf(e, en, "amount is %s; the limit is %lld", q,
         (long long)(SEG_MONEY_MAX / SEG_MONEY_SCALE));
    return SEG_REJ_BAD_AMOUNT;
}

/* The schema, in the order the team fixed (first failure wins): type,
 * customer_id, ts, kind, amount, rating, then the other optional fields.
 * ev arrives zeroed. String fields of ev point at the view's bytes; the
 * caller re-points them if those bytes are not decoder-owned. */
static seg_reject_t check_fields(const fval_t *f, seg_event_t *ev,
                                 char *e, size_t en)
{
    char q[128];
    seg_reject_t r;
    const fval_t *v;


    v = &f[F_TYPE];
    if (v->t == VT_ABSENT || v->t == VT_NULL)
        return missing(v, "type", "", e, en);
    if (v->t != VT_STR)
        return wrong_type(v, "type", "a string", e, en);
    if (str_is(v, "purchase", 8)) {
        ev->type = SEG_EV_PURCHASE;
    } else if (str_is(v, "refund", 6)) {
        ev->type = SEG_EV_REFUND;
    } else if (str_is(v, "contact", 7)) {
        ev->type = SEG_EV_CONTACT;
    } else if (str_is(v, "profile", 7)) {
        ev->type = SEG_EV_PROFILE;
    } else {
        quote(q, sizeof q, v->s, v->len);
        errf(e, en, "type is %s; it must be purchase, refund, contact or profile", q);
        return SEG_REJ_UNKNOWN_TYPE;
    }

    v = &f[F_CUSTOMER_ID];
    if (v->t == VT_ABSENT || v->t == VT_NULL)
        return missing(v, "customer_id", "", e, en);
    if (v->t != VT_STR)
        return wrong_type(v, "customer_id", "a string", e, en);
    if (v->len == 0) {
        errf(e, en, "customer_id is empty; it must be 1..%d bytes",
             SEG_CUSTOMER_ID_MAX);
        return SEG_REJ_EMPTY_CUSTOMER_ID;
    }
    if (v->len > SEG_CUSTOMER_ID_MAX) {
        errf(e, en, "customer_id is %zu bytes; the limit is %d", v->len,
             SEG_CUSTOMER_ID_MAX);
        return SEG_REJ_OVERSIZED_CUSTOMER_ID;
    }
    if (v->has_nul) {
        errf(e, en, "customer_id contains a NUL byte");
        return SEG_REJ_BAD_FIELD;
    }
    if (!utf8_valid((const unsigned char *)v->s, v->len)) {
        errf(e, en, "customer_id is not valid UTF-8");
        return SEG_REJ_BAD_FIELD;
    }
    ev->customer_id = v->s;
    ev->customer_id_len = v->len;

    r = check_ts(&f[F_TS], &ev->ts, e, en);
    if (r != SEG_REJ_NONE) return r;

    if (ev->type == SEG_EV_CONTACT) {
        v = &f[F_KIND];
        if (v->t == VT_ABSENT || v->t == VT_NULL)
            return missing(v, "kind", " for contact events", e, en);
        if (v->t != VT_STR)
            return wrong_type(v, "kind", "a string", e, en);
        if (str_is(v, "visit", 5)) {
            ev->kind = SEG_CONTACT_VISIT;
        } else if (str_is(v, "inquiry", 7)) {
            ev->kind = SEG_CONTACT_INQUIRY;
        } else if (str_is(v, "complaint", 9)) {
            ev->kind = SEG_CONTACT_COMPLAINT;
        } else if (str_is(v, "support", 7)) {
            ev->kind = SEG_CONTACT_SUPPORT;
        } else if (str_is(v, "feedback", 8)) {
            ev->kind = SEG_CONTACT_FEEDBACK;
        } else if (str_is(v, "call", 4)) {
            ev->kind = SEG_CONTACT_CALL;
        } else {
            quote(q, sizeof q, v->s, v->len);
            errf(e, en, "kind is %s; it must be visit, inquiry, call, complaint, "
                 "support or feedback", q);
            return SEG_REJ_UNKNOWN_KIND;
        }
    }

    /* A profile carries only attrs: an amount on it means nothing and is
     * ignored like an unknown field, not validated. */
    v = &f[F_AMOUNT];
    if (ev->type == SEG_EV_PROFILE) {
        /* ignored */
    } else if (v->t == VT_ABSENT || v->t == VT_NULL) {
        if (ev->type != SEG_EV_CONTACT)
            return missing(v, "amount",
                           ev->type == SEG_EV_PURCHASE ? " for purchase events"
                                                       : " for refund events",
                           e, en);
    } else {
        r = check_amount(v, &ev->amount, e, en);
        if (r != SEG_REJ_NONE) return r;
        ev->has_amount = 1;
    }

    v = &f[F_RATING];
    if (v->t != VT_ABSENT && v->t != VT_NULL) {
        int64_t n;
        if (v->t != VT_INT && v->t != VT_UINT && v->t != VT_FLOAT)
            return wrong_type(v, "rating", "an integer from 1 to 5", e, en);
        if (num_integral(v, &n) != 0 || n < 1 || n > 5) {
            fmt_num(q, sizeof q, v);
            errf(e, en, "rating is %s; it must be an integer from 1 to 5", q);
            return SEG_REJ_BAD_RATING;
        }
        ev->rating = (int)n;
    }

    static const int str_fields[] = {F_EVENT_ID, F_CURRENCY, F_CHANNEL};
    for (size_t k = 0; k < sizeof str_fields / sizeof str_fields[0]; k++) {
        v = &f[str_fields[k]];
        if (v->t != VT_ABSENT && v->t != VT_NULL && v->t != VT_STR)
            return wrong_type(v, field_names[str_fields[k]], "a string", e, en);
    }
    v = &f[F_EVENT_ID];
    if (v->t == VT_STR) {
        /* event_id is handed on as (pointer, length); a NUL inside would
         * be cut off by cJSON but kept by msgpack, so neither is allowed. */
        if (v->has_nul) {
            errf(e, en, "event_id contains a NUL byte");
            return SEG_REJ_BAD_FIELD;
        }
        ev->event_id = v->s;
        ev->event_id_len = v->len;
    }
    v = &f[F_ATTRS];
    if (v->t != VT_ABSENT && v->t != VT_NULL && v->t != VT_OBJECT)
        return wrong_type(v, "attrs", "an object", e, en);
    if (v->t == VT_OBJECT) {          /* fmt: set by the caller */
        ev->attrs.obj = v->obj;
    }

    return SEG_REJ_NONE;
}

static seg_reject_t validate(const fval_t *f, seg_event_t *ev,
                             char *e, size_t en)
{
    seg_reject_t r = check_fields(f, ev, e, en);
    if (r != SEG_REJ_NONE) memset(ev, 0, sizeof *ev);
    return r;
}

static void view_init(fval_t *f)
{
    for (int k = 0; k < F__N; k++) {
        f[k].t = VT_ABSENT;
        f[k].obj = f[k].orig = NULL;
    }
}

/* ---- JSON -------------------------------------------------------------- */

static void json_val(const cJSON *it, fval_t *v)
{
    v->has_nul = 0;
    switch (it->type & 0xff) {
    case cJSON_False:
    case cJSON_True:   v->t = VT_BOOL; break;
    case cJSON_NULL:   v->t = VT_NULL; break;
    case cJSON_Number: v->t = VT_FLOAT; v->d = it->valuedouble; break;
    case cJSON_String:
        v->t = VT_STR;
        v->s = it->valuestring;
        v->len = strlen(it->valuestring);
        break;
    case cJSON_Array:  v->t = VT_ARRAY; break;
    case cJSON_Object: v->t = VT_OBJECT; v->obj = it; break;
    default:           v->t = VT_EXT; break;
    }
}

/* Duplicate members: the last one wins, as in JavaScript, Python and Go,
 * and the same rule is applied to msgpack maps. */
static void json_view(const cJSON *root, fval_t *f)
{
    view_init(f);
    for (const cJSON *it = root->child; it; it = it->next) {
        int k = field_index(it->string, strlen(it->string));
        if (k >= 0) json_val(it, &f[k]);
    }
}

/* Index of the backslash of the first \u0000 escape in s[from..n) that is
 * really an escape (its backslash is not itself escaped: an odd run of
 * backslashes), or n if there is none. */
static size_t next_nul_escape(const char *s, size_t n, size_t from)
{
    for (size_t i = from; i + 6 <= n; i++) {
        if (s[i] != '\\') continue;
        size_t run = 0;
        while (i + run < n && s[i + run] == '\\') run++;
        i += run - 1;                    /* i: last backslash of the run */
        if (run % 2 == 1 && i + 6 <= n && memcmp(s + i + 1, "u0000", 5) == 0)
            return i;
    }
    return n;
}

static seg_reject_t json_parse_error(const char *buf, const char *at,
                                     size_t len, char *e, size_t en)
{
    size_t pos = at && at >= buf && at <= buf + len ? (size_t)(at - buf) : 0;
    errf(e, en, "record is not valid JSON (parse error at byte %zu)", pos);
    return SEG_REJ_INVALID_JSON;
}

/* Slow path for records with a real \u0000 escape: parse a copy where each
 * such escape reads \u0001 (same length, so the structure is identical),
 * and compare string lengths with the original tree, where cJSON cut each
 * of those strings at the NUL. The copy's tree is the one validated, so a
 * "type":"purchase\u0000" is an unknown type, not a purchase. */
static int json_alt_view(seg_decoder_t *dec, const char *buf, size_t len,
                         fval_t *f)
{
    if (dec->scratch_cap < len) {
        char *p = realloc(dec->scratch, len);
        if (!p) return -1;
        dec->scratch = p;
        dec->scratch_cap = len;
    }
    memcpy(dec->scratch, buf, len);
    char *s = dec->scratch;
    for (size_t i = next_nul_escape(s, len, 0); i < len;
         i = next_nul_escape(s, len, i + 6))
        s[i + 5] = '1';
    const char *end = NULL;
    arena_owner = dec;
    dec->json_alt = cJSON_ParseWithLengthOpts(s, len, &end, 0);
    arena_owner = NULL;
    if (!dec->json_alt) return -1;

    view_init(f);
    const cJSON *a = dec->json->child, *b = dec->json_alt->child;
    for (; a && b; a = a->next, b = b->next) {
        int k = field_index(b->string, strlen(b->string));
        if (k < 0) continue;
        json_val(b, &f[k]);
        if (f[k].t == VT_STR && cJSON_IsString(a))
            f[k].has_nul = strlen(a->valuestring) != f[k].len;
        f[k].orig = a;
    }
    return a || b ? -1 : 0;
}

/* simdjson's members -> the view. A string can only hold a NUL when the
 * record has a backslash (a raw NUL was refused before parsing), so only
 * then are strings scanned for one. */
static void sj_val(const seg_json_member_t *m, int esc, fval_t *v)
{
    v->has_nul = 0;
    switch (m->type) {
    case SEG_JSON_NULL:   v->t = VT_NULL; break;
    case SEG_JSON_BOOL:   v->t = VT_BOOL; break;
    case SEG_JSON_NUMBER: v->t = VT_FLOAT; v->d = m->num; break;
    case SEG_JSON_STRING:
        v->t = VT_STR;
        v->s = m->str;
        v->len = m->str_len;
        v->has_nul = esc && v->len && memchr(v->s, '\0', v->len) != NULL;
        break;
    case SEG_JSON_ARRAY:  v->t = VT_ARRAY; break;
    case SEG_JSON_OBJECT: v->t = VT_OBJECT; v->obj = m; break;
    }
}

static void sj_view(const seg_json_doc_t *doc, int esc, fval_t *f)
{
    view_init(f);
    for (size_t i = 0; i < doc->n_top; i++) {
        const seg_json_member_t *m = &doc->top[i];
        int k = field_index(m->key, m->key_len);
        if (k >= 0) sj_val(m, esc, &f[k]);
    }
}

static int attrs_reserve(seg_decoder_t *dec, size_t n);
static void attr_sj(const seg_json_member_t *m, int esc, seg_attr_t *out);
static int attrs_from_cjson(seg_decoder_t *dec, const cJSON *obj, const cJSON *orig,
                            seg_attrs_t *out);

/* The validated attrs object (ev->attrs.obj, a seg_json member) as a list
 * of seg_attr_t in decoder memory. Returns 0, or -1 out of memory. */
static int attrs_from_sj(seg_decoder_t *dec, const seg_json_doc_t *doc, int esc, seg_attrs_t *a)
{
    const seg_json_member_t *m = a->obj;
    if (attrs_reserve(dec, m->n_sub) != 0) return -1;
    for (uint32_t i = 0; i < m->n_sub; i++) attr_sj(&doc->nested[m->sub + i], esc, &dec->attrs[i]);
    a->fmt = SEG_ATTRS_JSON;
    a->obj = dec->attrs;
    a->n = m->n_sub;
    return 0;
}

static seg_reject_t attrs_oom(seg_event_t *ev, char *e, size_t en)
{
    errf(e, en, "attrs could not be read (out of memory)");
    memset(ev, 0, sizeof *ev);
    return SEG_REJ_BAD_FIELD;
}

/* The cJSON path, for records simdjson did not accept in full: as before
 * simdjson, cJSON decides, so its leniencies (docs/events.md) hold. */
static seg_reject_t decode_cjson(seg_decoder_t *dec, const char *buf, size_t len,
                                 seg_event_t *ev, char *errstr, size_t errstr_size)
{
    fval_t f[F__N];
    const char *end = NULL;
    arena_owner = dec;
    dec->json = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    arena_owner = NULL;
    if (!dec->json) return json_parse_error(buf, end, len, errstr, errstr_size);
    for (const char *p = end; p < buf + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            errf(errstr, errstr_size, "record has unexpected data after the "
                 "JSON value at byte %zu", (size_t)(p - buf));
            return SEG_REJ_INVALID_JSON;
        }
    }
    if (!cJSON_IsObject(dec->json)) {
        fval_t top;
        json_val(dec->json, &top);
        errf(errstr, errstr_size, "record is %s; it must be a JSON object",
             type_phrase(top.t));
        return SEG_REJ_NOT_OBJECT;
    }

    /* Most records have no backslash at all; memchr settles that fast. */
    const char *bs = memchr(buf, '\\', len);
    if (bs && next_nul_escape(buf, len, (size_t)(bs - buf)) < len) {
        if (json_alt_view(dec, buf, len, f) != 0) {
            errf(errstr, errstr_size,
                 "record could not be decoded (out of memory)");
            return SEG_REJ_INVALID_JSON;
        }
    } else {
        json_view(dec->json, f);
    }
    seg_reject_t r = validate(f, ev, errstr, errstr_size);
    if (r == SEG_REJ_NONE && ev->attrs.obj &&
        attrs_from_cjson(dec, ev->attrs.obj, f[F_ATTRS].orig, &ev->attrs) != 0)
        return attrs_oom(ev, errstr, errstr_size);
    return r;
}

seg_reject_t seg_decode_json(seg_decoder_t *dec, const char *buf, size_t len,
                             seg_event_t *ev, char *errstr, size_t errstr_size)
{
    fval_t f[F__N];
    memset(ev, 0, sizeof *ev);   /* a rejected record leaves no stale event */
    release_json(dec);

    if (dec->max_record && len > dec->max_record) {
        errf(errstr, errstr_size, "record is %zu bytes; the limit is %zu",
             len, dec->max_record);
        return SEG_REJ_OVERSIZED_RECORD;
    }
    if (len == 0) {
        errf(errstr, errstr_size, "record is empty; it must be a JSON object");
        return SEG_REJ_INVALID_JSON;
    }
    /* JSON text never holds a raw NUL (outside strings it is a syntax
     * error, inside one it must be escaped); cJSON would cut the string. */
    const char *nul = memchr(buf, '\0', len);
    if (nul) {
        errf(errstr, errstr_size,
             "record is not valid JSON (raw NUL byte at byte %zu)",
             (size_t)(nul - buf));
        return SEG_REJ_INVALID_JSON;
    }

    seg_json_doc_t doc;
    if (seg_json_parse_object(dec->sj, buf, len, &doc) != SEG_JSON_OK)
        return decode_cjson(dec, buf, len, ev, errstr, errstr_size);
    int esc = memchr(buf, '\\', len) != NULL;
    sj_view(&doc, esc, f);
    seg_reject_t r = validate(f, ev, errstr, errstr_size);
    if (r == SEG_REJ_NONE && ev->attrs.obj && attrs_from_sj(dec, &doc, esc, &ev->attrs) != 0)
        return attrs_oom(ev, errstr, errstr_size);
    return r;
}

/* ---- MessagePack ------------------------------------------------------- */

static uint32_t be16(const unsigned char *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Walks the value headers without building anything. Each pending value
 * needs at least one more byte, so a count larger than the bytes left can
 * only be a prefix (0) and is never handed to msgpack-c: that caps what it
 * allocates at a small multiple of the record size. *at is where a -1 was
 * found. */
static int mp_scan(const char *buf, size_t len, size_t *size, size_t *at)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t pos = 0;
    uint64_t pending = 1;
    while (pending > 0) {
        if (pending > len - pos) return 0;
        unsigned b = p[pos];
        size_t left = len - pos;
        uint64_t skip = 1, children = 0;
        if (b <= 0x7f || b >= 0xe0) {
            skip = 1;
        } else if (b <= 0x8f) {
            children = 2u * (b & 0x0f);
        } else if (b <= 0x9f) {
            children = b & 0x0f;
        } else if (b <= 0xbf) {
            skip = 1 + (b & 0x1f);
        } else {
            switch (b) {
            case 0xc0: case 0xc2: case 0xc3: skip = 1; break;
            case 0xc1:
                *at = pos;
                return -1;
            case 0xc4: case 0xd9:            /* bin8, str8 */
                if (left < 2) return 0;
                skip = 2 + (uint64_t)p[pos + 1];
                break;
            case 0xc5: case 0xda:            /* bin16, str16 */
                if (left < 3) return 0;
                skip = 3 + (uint64_t)be16(p + pos + 1);
                break;
            case 0xc6: case 0xdb:            /* bin32, str32 */
                if (left < 5) return 0;
                skip = 5 + (uint64_t)be32(p + pos + 1);
                break;
            case 0xc7:                       /* ext8: len, type, data */
                if (left < 2) return 0;
                skip = 3 + (uint64_t)p[pos + 1];
                break;
            case 0xc8:
                if (left < 3) return 0;
                skip = 4 + (uint64_t)be16(p + pos + 1);
                break;
            case 0xc9:
                if (left < 5) return 0;
                skip = 6 + (uint64_t)be32(p + pos + 1);
                break;
            case 0xca: skip = 5; break;       /* float32 */
            case 0xcb: skip = 9; break;       /* float64 */
            case 0xcc: case 0xd0: skip = 2; break;
            case 0xcd: case 0xd1: skip = 3; break;
            case 0xce: case 0xd2: skip = 5; break;
            case 0xcf: case 0xd3: skip = 9; break;
            case 0xd4: skip = 3; break;       /* fixext 1/2/4/8/16 */
            case 0xd5: skip = 4; break;
            case 0xd6: skip = 6; break;
            case 0xd7: skip = 10; break;
            case 0xd8: skip = 18; break;
            case 0xdc:
                if (left < 3) return 0;
                skip = 3;
                children = be16(p + pos + 1);
                break;
            case 0xdd:
                if (left < 5) return 0;
                skip = 5;
                children = be32(p + pos + 1);
                break;
            case 0xde:
                if (left < 3) return 0;
                skip = 3;
                children = 2u * (uint64_t)be16(p + pos + 1);
                break;
            default: /* 0xdf */
                if (left < 5) return 0;
                skip = 5;
                children = 2u * (uint64_t)be32(p + pos + 1);
                break;
            }
        }
        if (skip > left) return 0;
        pos += (size_t)skip;
        pending = pending - 1 + children;
    }
    *size = pos;
    return 1;
}

int seg_msgpack_value_size(const char *buf, size_t len, size_t *size)
{
    size_t at;
    return mp_scan(buf, len, size, &at);
}

/* Only customer_id and event_id are handed on as (pointer, length), so only
 * they need the NUL scan; any other string with a NUL already fails its
 * exact comparison or parse. */
static void mp_val(const msgpack_object *o, fval_t *v, int scan_nul)
{
    v->has_nul = 0;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:     v->t = VT_NULL; break;
    case MSGPACK_OBJECT_BOOLEAN: v->t = VT_BOOL; break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 <= (uint64_t)INT64_MAX) {
            v->t = VT_INT;
            v->i = (int64_t)o->via.u64;
        } else {
            v->t = VT_UINT;
            v->u = o->via.u64;
        }
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        v->t = VT_INT;
        v->i = o->via.i64;
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        v->t = VT_FLOAT;
        v->d = o->via.f64;
        break;
    case MSGPACK_OBJECT_STR:
        v->t = VT_STR;
        v->s = o->via.str.ptr;
        v->len = o->via.str.size;
        v->has_nul = scan_nul && v->len && memchr(v->s, '\0', v->len) != NULL;
        break;
    case MSGPACK_OBJECT_ARRAY:   v->t = VT_ARRAY; break;
    case MSGPACK_OBJECT_MAP:     v->t = VT_OBJECT; v->obj = o; break;
    case MSGPACK_OBJECT_BIN:     v->t = VT_BIN; break;
    default:                     v->t = VT_EXT; break;
    }
}

seg_reject_t seg_decode_msgpack_object(seg_decoder_t *dec,
                                       const msgpack_object *obj,
                                       seg_event_t *ev, char *errstr,
                                       size_t errstr_size)
{
    fval_t f[F__N];
    memset(ev, 0, sizeof *ev);
    release_json(dec);

    if (obj->type != MSGPACK_OBJECT_MAP) {
        fval_t top;
        mp_val(obj, &top, 0);
        errf(errstr, errstr_size, "record is %s; it must be a MessagePack map",
             type_phrase(top.t));
        return SEG_REJ_NOT_OBJECT;
    }
    view_init(f);
    const msgpack_object_kv *kv = obj->via.map.ptr;
    for (uint32_t n = 0; n < obj->via.map.size; n++) {
        /* Only str keys name fields; anything else is an unknown member. */
        if (kv[n].key.type != MSGPACK_OBJECT_STR) continue;
        int k = field_index(kv[n].key.via.str.ptr, kv[n].key.via.str.size);
        if (k >= 0)
            mp_val(&kv[n].val, &f[k], k == F_CUSTOMER_ID || k == F_EVENT_ID);
    }

    seg_reject_t r = validate(f, ev, errstr, errstr_size);
    if (r != SEG_REJ_NONE) return r;
    if (ev->attrs.obj) ev->attrs.fmt = SEG_ATTRS_MSGPACK;

    /* Strings still point into the caller's buffer: copy them so the
     * caller may reuse it (see the ownership note in seg_decode.h). */
    memcpy(dec->id, ev->customer_id, ev->customer_id_len);
    ev->customer_id = dec->id;
    if (ev->event_id) {
        if (ev->event_id_len > dec->eid_cap) {
            size_t cap = dec->eid_cap ? dec->eid_cap : 64;
            while (cap < ev->event_id_len) cap *= 2;
            char *p = realloc(dec->eid, cap);
            if (!p) {
                errf(errstr, errstr_size, "event_id is %zu bytes and could "
                     "not be copied (out of memory)", ev->event_id_len);
                memset(ev, 0, sizeof *ev);
                return SEG_REJ_BAD_FIELD;
            }
            dec->eid = p;
            dec->eid_cap = cap;
        }
        if (ev->event_id_len) memcpy(dec->eid, ev->event_id, ev->event_id_len);
        ev->event_id = dec->eid ? dec->eid : dec->id;
    }
    return SEG_REJ_NONE;
}

static seg_reject_t decode_msgpack(seg_decoder_t *dec, const char *buf, size_t len,
                                   int delimited, seg_event_t *ev,
                                   char *errstr, size_t errstr_size)
{
    memset(ev, 0, sizeof *ev);
    release_json(dec);
    if (dec->max_record && len > dec->max_record) {
        errf(errstr, errstr_size, "record is %zu bytes; the limit is %zu",
             len, dec->max_record);
        return SEG_REJ_OVERSIZED_RECORD;
    }
    if (len == 0) {
        errf(errstr, errstr_size,
             "record is empty; it must be a MessagePack map");
        return SEG_REJ_INVALID_MSGPACK;
    }
    size_t size = len, at = 0;
    int s = delimited ? 1 : mp_scan(buf, len, &size, &at);
    if (s < 0) {
        errf(errstr, errstr_size, "record is not valid MessagePack (reserved "
             "byte 0xc1 at byte %zu)", at);
        return SEG_REJ_INVALID_MSGPACK;
    }
    if (s == 0) {
        errf(errstr, errstr_size, "record is not valid MessagePack (it ends "
             "inside a value after %zu bytes)", len);
        return SEG_REJ_INVALID_MSGPACK;
    }
    if (size != len) {
        errf(errstr, errstr_size, "record has unexpected data after the "
             "MessagePack value at byte %zu", size);
        return SEG_REJ_INVALID_MSGPACK;
    }

    /* Clearing keeps the zone's first chunk, so a warmed-up decoder does
     * not allocate for ordinary records. */
    msgpack_zone_clear(&dec->zone);
    msgpack_object obj;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack(buf, len, &off, &dec->zone, &obj);
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        errf(errstr, errstr_size, "record is not valid MessagePack (%s)",
             ur == MSGPACK_UNPACK_NOMEM_ERROR
                 ? "nested deeper than 32 levels, or out of memory"
                 : "malformed");
        return SEG_REJ_INVALID_MSGPACK;
    }
    return seg_decode_msgpack_object(dec, &obj, ev, errstr, errstr_size);
}

seg_reject_t seg_decode_msgpack(seg_decoder_t *dec, const char *buf, size_t len,
                                seg_event_t *ev, char *errstr, size_t errstr_size)
{
    return decode_msgpack(dec, buf, len, 0, ev, errstr, errstr_size);
}

seg_reject_t seg_decode_msgpack_delimited(seg_decoder_t *dec, const char *buf, size_t len,
                                          seg_event_t *ev, char *errstr, size_t errstr_size)
{
    return decode_msgpack(dec, buf, len, 1, ev, errstr, errstr_size);
}

/* ---- attrs ------------------------------------------------------------- */

void seg_attrs_iter_init(seg_attrs_iter_t *it, const seg_attrs_t *a)
{
    it->a = a;
    it->i = 0;
}

static int attrs_reserve(seg_decoder_t *dec, size_t n)
{
    if (n <= dec->attrs_cap) return 0;
    size_t cap = dec->attrs_cap ? dec->attrs_cap : 16;
    while (cap < n) cap *= 2;
    seg_attr_t *p = realloc(dec->attrs, cap * sizeof *p);
    if (!p) return -1;
    dec->attrs = p;
    dec->attrs_cap = cap;
    return 0;
}

/* A string value rules may keep: valid UTF-8 (it can end up in a
 * transition's JSON) and no NUL (it is compared and printed by length). */
static void attr_string(seg_attr_t *out, const char *s, size_t len, int has_nul)
{
    if (has_nul || len > UINT32_MAX || !utf8_valid((const unsigned char *)s, len)) {
        out->type = SEG_ATTR_OTHER;
        return;
    }
    out->type = SEG_ATTR_STRING;
    out->str = s;
    out->str_len = (uint32_t)len;
}

static void attr_json(const cJSON *it, const cJSON *orig, seg_attr_t *out)
{
    memset(out, 0, sizeof *out);
    out->key = it->string;
    out->key_len = (uint32_t)strlen(it->string);
    /* On the \u0000 slow path, it comes from the tree where each such
     * escape reads \u0001, and orig from the one where cJSON cut the
     * string there: a length difference means the original held a NUL. */
    if (orig && strlen(orig->string) != out->key_len) {
        out->key = orig->string;      /* the name as far as the NUL: ignored anyway */
        out->key_len = (uint32_t)strlen(orig->string);
        out->type = SEG_ATTR_OTHER;
        return;
    }
    switch (it->type & 0xff) {
    case cJSON_NULL:   out->type = SEG_ATTR_NULL; break;
    case cJSON_False:  out->type = SEG_ATTR_BOOL; out->b = 0; break;
    case cJSON_True:   out->type = SEG_ATTR_BOOL; out->b = 1; break;
    case cJSON_Number: out->type = SEG_ATTR_NUMBER; out->num = it->valuedouble; break;
    case cJSON_String: {
        size_t n = strlen(it->valuestring);
        attr_string(out, it->valuestring, n,
                    orig && cJSON_IsString(orig) && strlen(orig->valuestring) != n);
        break;
    }
    default:           out->type = SEG_ATTR_OTHER; break;
    }
}

/* A member simdjson parsed. Its strings are valid UTF-8 (simdjson checks
 * the whole record, and escapes decode to valid UTF-8), so only a NUL from
 * a \u0000 escape (possible only when the record has a backslash) can make
 * one OTHER. A key with a NUL is cut there and its value is OTHER, as
 * cJSON (which cuts every string at a NUL) has always listed it. */
static void attr_sj(const seg_json_member_t *m, int esc, seg_attr_t *out)
{
    memset(out, 0, sizeof *out);
    const char *knul = esc && m->key_len ? memchr(m->key, '\0', m->key_len) : NULL;
    out->key = m->key;
    out->key_len = (uint32_t)(knul ? (size_t)(knul - m->key) : m->key_len);
    if (knul || m->key_len > UINT32_MAX) {
        out->type = SEG_ATTR_OTHER;
        return;
    }
    switch (m->type) {
    case SEG_JSON_NULL:   out->type = SEG_ATTR_NULL; break;
    case SEG_JSON_BOOL:   out->type = SEG_ATTR_BOOL; out->b = m->b; break;
    case SEG_JSON_NUMBER: out->type = SEG_ATTR_NUMBER; out->num = m->num; break;
    case SEG_JSON_STRING:
        if (m->str_len > UINT32_MAX || (esc && m->str_len && memchr(m->str, '\0', m->str_len))) {
            out->type = SEG_ATTR_OTHER;
        } else {
            out->type = SEG_ATTR_STRING;
            out->str = m->str;
            out->str_len = (uint32_t)m->str_len;
        }
        break;
    default:              out->type = SEG_ATTR_OTHER; break;
    }
}

/* The members of a cJSON object (orig: the same object in the tree where
 * cJSON cut strings at a \u0000, on that slow path) as a list of
 * seg_attr_t in decoder memory. Returns 0, or -1 out of memory. */
static int attrs_from_cjson(seg_decoder_t *dec, const cJSON *obj, const cJSON *orig,
                            seg_attrs_t *out)
{
    size_t n = 0;
    for (const cJSON *c = obj->child; c; c = c->next) n++;
    if (n > UINT32_MAX || attrs_reserve(dec, n) != 0) return -1;
    const cJSON *c = obj->child, *o = orig ? orig->child : NULL;
    for (size_t i = 0; i < n; i++, c = c->next, o = o ? o->next : NULL)
        attr_json(c, o, &dec->attrs[i]);
    out->fmt = SEG_ATTRS_JSON;
    out->obj = dec->attrs;
    out->n = (uint32_t)n;
    return 0;
}

static void attr_msgpack(const msgpack_object_kv *kv, seg_attr_t *out)
{
    memset(out, 0, sizeof *out);
    out->key = kv->key.via.str.ptr;
    out->key_len = kv->key.via.str.size;
    const msgpack_object *o = &kv->val;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:              out->type = SEG_ATTR_NULL; break;
    case MSGPACK_OBJECT_BOOLEAN:          out->type = SEG_ATTR_BOOL; out->b = o->via.boolean; break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: out->type = SEG_ATTR_NUMBER; out->num = (double)o->via.u64; break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: out->type = SEG_ATTR_NUMBER; out->num = (double)o->via.i64; break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:          out->type = SEG_ATTR_NUMBER; out->num = o->via.f64; break;
    case MSGPACK_OBJECT_STR:
        attr_string(out, o->via.str.ptr, o->via.str.size,
                    o->via.str.size && memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL);
        break;
    default:                              out->type = SEG_ATTR_OTHER; break;
    }
}

int seg_attrs_iter_next(seg_attrs_iter_t *it, seg_attr_t *out)
{
    const seg_attrs_t *a = it->a;
    switch (a->fmt) {
    case SEG_ATTRS_MSGPACK: {
        const msgpack_object *m = a->obj;
        /* Only str keys name members, as for the event's own fields. */
        while (it->i < m->via.map.size && m->via.map.ptr[it->i].key.type != MSGPACK_OBJECT_STR)
            it->i++;
        if (it->i >= m->via.map.size) return 0;
        attr_msgpack(&m->via.map.ptr[it->i++], out);
        return 1;
    }
    case SEG_ATTRS_JSON:
    case SEG_ATTRS_CAPTURED:
        if (it->i >= a->n) return 0;
        *out = ((const seg_attr_t *)a->obj)[it->i++];
        return 1;
    default:
        return 0;
    }
}

size_t seg_attrs_capture(seg_attrs_t *a, int (*want)(void *opaque, const char *key, size_t len),
                         void *opaque, size_t max_str, seg_attr_t *out, size_t max, char *buf,
                         size_t buf_size)
{
    if (a->fmt == SEG_ATTRS_NONE || a->fmt == SEG_ATTRS_CAPTURED) return 0;
    seg_attrs_iter_t it;
    seg_attr_t at;
    size_t n = 0, used = 0, dropped = 0;
    seg_attrs_iter_init(&it, a);
    while (seg_attrs_iter_next(&it, &at)) {
        if (want && !want(opaque, at.key, at.key_len)) continue;
        if (at.type == SEG_ATTR_STRING && at.str_len > max_str) at.type = SEG_ATTR_OTHER;
        size_t slot = n;
        for (size_t k = 0; k < n; k++)
            if (out[k].key_len == at.key_len && memcmp(out[k].key, at.key, at.key_len) == 0) {
                slot = k;   /* a repeated key: the later value wins */
                break;
            }
        size_t need = (slot == n ? at.key_len : 0) + (at.type == SEG_ATTR_STRING ? at.str_len : 0);
        if ((slot == n && n == max) || need > buf_size - used) {
            dropped++;
            continue;
        }
        if (slot == n) {
            memcpy(buf + used, at.key, at.key_len);
            at.key = buf + used;
            used += at.key_len;
        } else {
            at.key = out[slot].key;
        }
        if (at.type == SEG_ATTR_STRING) {
            memcpy(buf + used, at.str, at.str_len);
            at.str = buf + used;
            used += at.str_len;
        }
        out[slot] = at;
        if (slot == n) n++;
    }
    a->fmt = SEG_ATTRS_CAPTURED;
    a->obj = out;
    a->n = (uint32_t)n;
    return dropped;
}
