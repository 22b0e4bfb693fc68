/*
 * seg_gen: synthetic customer events for benchmarks and tests.
 *
 * `make bench` needs millions of customers whose histories look like a real
 * shop's, so that replay exercises the same mix of state sizes, windows and
 * deadlines it meets in production; the public datasets top out at 23,570
 * customers. Customers follow the BG/NBD process (Fader, Hardie & Lee,
 * "Counting your customers the easy way", Marketing Science 2005), the model
 * fitted on the CDNOW data in ../shared/data:
 *
 *   - while active, a customer buys at Poisson rate lambda ~ Gamma(r, alpha);
 *   - after every purchase it drops out for good with probability
 *     p ~ Beta(a, b);
 *   - customers arrive (first purchase) uniformly over the first half of
 *     the period.
 *
 * On top of that: lognormal purchase amounts (mean about 60, in cents),
 * about 5% of purchases refunded (fully or in part) one to ten days later,
 * and contacts at each customer's own Poisson rate while it is active,
 * complaints being a minority kind. A few customers only ever visit
 * (prospects).
 *
 * Why generate into a flat array and sort: a k-way merge over 10M
 * per-customer streams would need 10M live generator states. A 16-byte
 * record per event (about 40M events for 10M customers over a year, so
 * 640 MB plus the same again as the radix sort's scratch) is simpler, and
 * a stable LSD radix sort on the 32-bit time offset is a few passes of
 * sequential memory traffic. Stability keeps the output a pure function of
 * the seed: ties keep generation order.
 *
 * Determinism: one xoshiro256** stream seeded through splitmix64 drives
 * every draw, and --bad-rate uses a second stream, so adding bad records
 * never changes the valid ones.
 *
 * Output is written with hand-rolled appends (NDJSON) and msgpack-c's
 * msgpack_packer (MessagePack); snprintf per field would dominate the run
 * time at 40M records.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <msgpack.h>

#include "util/seg_ts.h"

/* ---- model parameters (per year) ------------------------------------- */

/* lambda ~ Gamma(shape R, rate ALPHA): mean R/ALPHA = 3 purchases a year. */
#define LAMBDA_R        1.5
#define LAMBDA_ALPHA    0.5
/* p ~ Beta(A, B): mean 0.2, so an average customer makes ~5 purchases
 * before dropping out, and many far fewer (the Beta is skewed to 0). */
#define DROP_A          1.0
#define DROP_B          4.0
/* Contact rate mu ~ Gamma(2, 1): mean 2 contacts a year while active. */
#define CONTACT_SHAPE   2.0
#define CONTACT_RATE    1.0
#define ARRIVAL_SHARE   0.5     /* first purchases fall in this share of the period */
#define PROSPECT_SHARE  0.05    /* customers who visit but never buy */
#define PRE_VISIT_PROB  0.2     /* a visit in the 14 days before the first purchase */
#define REFUND_PROB     0.05
#define REFUND_FULL     0.6     /* share of refunds that return the whole amount */
/* Lognormal amounts: mean exp(mu + sigma^2/2) = 60. */
#define AMOUNT_SIGMA    0.8
#define AMOUNT_MEAN     60.0
#define CHANNEL_PROB    0.7
#define CURRENCY_PROB   0.5
#define RATING_PROB     0.5     /* feedback contacts that carry a rating */

#define DAY   86400.0
#define YEAR  (365.0 * DAY)

/* ---- PRNG: xoshiro256** seeded by splitmix64 --------------------------- */

typedef struct { uint64_t s[4]; } rng_t;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static inline double rng_unif(rng_t *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }
/* Uniform in (0, 1], safe for log(). */
static inline double rng_unif_pos(rng_t *r) { return 1.0 - rng_unif(r); }
static inline uint64_t rng_below(rng_t *r, uint64_t n) { return (uint64_t)(rng_unif(r) * (double)n); }

static double rng_normal(rng_t *r)
{
    /* Marsaglia polar method; the second value is dropped to keep the
     * stream's consumption simple to reason about. */
    double u, v, s;
    do {
        u = 2.0 * rng_unif(r) - 1.0;
        v = 2.0 * rng_unif(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * log(s) / s);
}

/* Gamma(shape, 1) by Marsaglia & Tsang (2000); shape < 1 via the boost
 * Gamma(k) = Gamma(k + 1) * U^(1/k). */
static double rng_gamma(rng_t *r, double shape)
{
    if (shape < 1.0) {
        double g = rng_gamma(r, shape + 1.0);
        return g * pow(rng_unif_pos(r), 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        double u = rng_unif_pos(r);
        if (u < 1.0 - 0.0331 * x * x * x * x)
            return d * v;
        if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v;
    }
}

static double rng_beta(rng_t *r, double a, double b)
{
    double x = rng_gamma(r, a), y = rng_gamma(r, b);
    return x / (x + y);
}

/* Waiting time of a Poisson process with the given rate per year, in s. */
static inline double rng_wait(rng_t *r, double rate_per_year)
{
    return -log(rng_unif_pos(r)) / rate_per_year * YEAR;
}

/* ---- event records ----------------------------------------------------- */

enum { T_PURCHASE = 0, T_REFUND = 1, T_CONTACT = 2 };
enum { K_VISIT = 0, K_INQUIRY, K_SUPPORT, K_FEEDBACK, K_COMPLAINT, K__COUNT };
static const char *const kind_names[K__COUNT] = {
    "visit", "inquiry", "support", "feedback", "complaint"
};
/* Cumulative kind distribution; complaints are the minority kind. */
static const double kind_cdf[K__COUNT] = { 0.55, 0.70, 0.82, 0.92, 1.0 };
static const char *const channel_names[4] = { NULL, "web", "app", "store" };

/* 16 bytes per event: the time offset is the sort key. */
typedef struct {
    uint32_t ts;        /* seconds since --start */
    uint32_t cust;      /* customer index */
    uint32_t cents;     /* amount (purchase/refund) */
    uint8_t  type;      /* T_* */
    uint8_t  kind;      /* K_* for contacts */
    uint8_t  channel;   /* 0 = absent, else index into channel_names */
    uint8_t  flags;     /* bit 0: currency present; bits 1-3: rating (0 = absent) */
} rec_t;

typedef struct {
    rec_t  *v;
    size_t  n, cap;
} recs_t;

static int recs_push(recs_t *a, const rec_t *r)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap + a->cap / 2 : 1 << 16;
        rec_t *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = *r;
    return 0;
}

typedef struct {
    uint64_t customers, prospects;
    uint64_t by_type[3];
    uint64_t by_kind[K__COUNT];
} counts_t;

static void fill_optional(rng_t *r, rec_t *e)
{
    e->channel = rng_unif(r) < CHANNEL_PROB ? (uint8_t)(1 + rng_below(r, 3)) : 0;
    e->flags = 0;
    if (e->type != T_CONTACT && rng_unif(r) < CURRENCY_PROB)
        e->flags |= 1;
    if (e->type == T_CONTACT && e->kind == K_FEEDBACK && rng_unif(r) < RATING_PROB)
        e->flags |= (uint8_t)((1 + rng_below(r, 5)) << 1);
}

static uint8_t draw_kind(rng_t *r)
{
    double u = rng_unif(r);
    for (int k = 0; k < K__COUNT; k++)
        if (u < kind_cdf[k])
            return (uint8_t)k;
    return K_VISIT;
}

static uint32_t draw_cents(rng_t *r)
{
    const double mu = log(AMOUNT_MEAN) - AMOUNT_SIGMA * AMOUNT_SIGMA / 2.0;
    double x = exp(mu + AMOUNT_SIGMA * rng_normal(r));
    double c = llround(x * 100.0);
    if (c < 1) c = 1;
    if (c > 100000000) c = 100000000;   /* 1M currency units */
    return (uint32_t)c;
}

/* Insertion sort of one customer's few events, so that --by-customer
 * output is in time order within each customer (stable). */
static void sort_small(rec_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        rec_t x = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1].ts > x.ts) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

static int push_event(recs_t *a, counts_t *c, rng_t *r, uint32_t cust,
                      double ts, uint8_t type, uint8_t kind, uint32_t cents)
{
    rec_t e = { .ts = (uint32_t)ts, .cust = cust, .cents = cents,
                .type = type, .kind = kind };
    fill_optional(r, &e);
    c->by_type[type]++;
    if (type == T_CONTACT)
        c->by_kind[kind]++;
    return recs_push(a, &e);
}

static int gen_customer(recs_t *a, counts_t *c, rng_t *r, uint32_t cust, double period)
{
    size_t first = a->n;
    double arrive = rng_unif(r) * period * ARRIVAL_SHARE;

    if (rng_unif(r) < PROSPECT_SHARE) {
        /* Visits only: one to three, within a month of arriving. */
        int n = 1 + (int)rng_below(r, 3);
        for (int i = 0; i < n; i++) {
            double t = arrive + rng_unif(r) * 30.0 * DAY;
            if (t < period && push_event(a, c, r, cust, t, T_CONTACT, K_VISIT, 0))
                return -1;
        }
        c->prospects++;
        sort_small(a->v + first, a->n - first);
        return 0;
    }

    double lambda = rng_gamma(r, LAMBDA_R) / LAMBDA_ALPHA;
    double p = rng_beta(r, DROP_A, DROP_B);
    double mu = rng_gamma(r, CONTACT_SHAPE) / CONTACT_RATE;

    if (rng_unif(r) < PRE_VISIT_PROB) {
        double t = arrive - rng_unif(r) * 14.0 * DAY;
        if (t >= 0 && push_event(a, c, r, cust, t, T_CONTACT, K_VISIT, 0))
            return -1;
    }

    /* Purchases: the first at arrival, then Poisson(lambda) until dropout
     * (decided right after each purchase, as in BG/NBD) or the end. */
    double t = arrive, active_end = period;
    for (;;) {
        uint32_t cents = draw_cents(r);
        if (push_event(a, c, r, cust, t, T_PURCHASE, 0, cents))
            return -1;
        if (rng_unif(r) < REFUND_PROB) {
            double rt = t + DAY + rng_unif(r) * 9.0 * DAY;
            uint32_t rc = cents;
            if (rng_unif(r) >= REFUND_FULL) {
                rc = (uint32_t)(cents * (0.1 + 0.8 * rng_unif(r)));
                if (rc < 1)
                    rc = 1;
            }
            if (rt < period && push_event(a, c, r, cust, rt, T_REFUND, 0, rc))
                return -1;
        }
        if (rng_unif(r) < p) {
            active_end = t;
            break;
        }
        t += rng_wait(r, lambda);
        if (t >= period)
            break;
    }

    /* Contacts while active. */
    for (double ct = arrive + rng_wait(r, mu); ct < active_end; ct += rng_wait(r, mu))
        if (push_event(a, c, r, cust, ct, T_CONTACT, draw_kind(r), 0))
            return -1;

    sort_small(a->v + first, a->n - first);
    return 0;
}

/* Stable LSD radix sort on ts, 11 bits per pass, only as many passes as
 * the largest offset needs (3 for a year). */
static int radix_sort(recs_t *a)
{
    if (a->n < 2)
        return 0;
    uint32_t max = 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].ts > max)
            max = a->v[i].ts;
    rec_t *tmp = malloc(a->n * sizeof *tmp);
    if (!tmp)
        return -1;
    rec_t *src = a->v, *dst = tmp;
    for (int shift = 0; shift < 32 && (max >> shift) != 0; shift += 11) {
        static size_t cnt[2048];
        memset(cnt, 0, sizeof cnt);
        for (size_t i = 0; i < a->n; i++)
            cnt[(src[i].ts >> shift) & 2047]++;
        size_t sum = 0;
        for (int b = 0; b < 2048; b++) {
            size_t k = cnt[b];
            cnt[b] = sum;
            sum += k;
        }
        for (size_t i = 0; i < a->n; i++)
            dst[cnt[(src[i].ts >> shift) & 2047]++] = src[i];
        rec_t *x = src; src = dst; dst = x;
    }
    if (src != a->v) {
        free(a->v);
        a->v = src;
        a->cap = a->n;
    } else {
        free(tmp);
    }
    return 0;
}

/* ---- output ------------------------------------------------------------ */

#define OUT_CAP (4u << 20)

typedef struct {
    FILE    *f;
    char    *buf;
    size_t   len;
    uint64_t bytes;
    int      err;
} out_t;

static void out_flush(out_t *o)
{
    if (o->len && !o->err && fwrite(o->buf, 1, o->len, o->f) != o->len)
        o->err = errno ? errno : EIO;
    o->bytes += o->len;
    o->len = 0;
}

static inline void out_ensure(out_t *o, size_t n)
{
    if (o->len + n > OUT_CAP)
        out_flush(o);
}

static inline void out_mem(out_t *o, const void *p, size_t n)
{
    if (n > OUT_CAP) {          /* never happens for our records */
        out_flush(o);
        if (!o->err && fwrite(p, 1, n, o->f) != n)
            o->err = EIO;
        o->bytes += n;
        return;
    }
    out_ensure(o, n);
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

#define OUT_LIT(o, s) out_mem((o), (s), sizeof(s) - 1)

static inline void out_str(out_t *o, const char *s) { out_mem(o, s, strlen(s)); }

static void out_u64(out_t *o, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    out_mem(o, tmp + sizeof tmp - n, (size_t)n);
}

static int msgpack_write_cb(void *data, const char *buf, size_t len)
{
    out_mem((out_t *)data, buf, len);
    return 0;
}

/* Text pieces shared by both formats. */
typedef struct {
    char    cust[12];           /* "c" + 10 digits */
    char    ts[SEG_TS_BUFSZ];   /* RFC 3339 */
    char    amount[24];         /* "59.99" */
    size_t  amount_len;
    char    event_id[24];       /* "e" + sequence */
    size_t  event_id_len;
} text_t;

/* Day prefixes "YYYY-MM-DDT" for every day the period touches, so the
 * per-event timestamp is a copy plus six digits. */
typedef struct {
    char   (*day)[12];
    size_t  ndays;
    int64_t start, day0;        /* epoch seconds; day0 = midnight UTC of start */
} tscache_t;

static int tscache_init(tscache_t *c, int64_t start, uint32_t max_off)
{
    c->start = start;
    c->day0 = start - (((start % 86400) + 86400) % 86400);
    c->ndays = (size_t)((start - c->day0 + (int64_t)max_off) / 86400) + 2;
    c->day = malloc(c->ndays * sizeof *c->day);
    if (!c->day)
        return -1;
    for (size_t d = 0; d < c->ndays; d++) {
        char buf[SEG_TS_BUFSZ];
        int64_t t = c->day0 + (int64_t)d * 86400;
        if (t > SEG_TS_MAX)
            t = SEG_TS_MAX;     /* never reached: checked in main */
        seg_ts_format(t, buf);
        memcpy(c->day[d], buf, 11);
        c->day[d][11] = '\0';
    }
    return 0;
}

static void format_ts(const tscache_t *c, uint32_t off, char *out)
{
    int64_t rel = c->start - c->day0 + off;
    size_t d = (size_t)(rel / 86400);
    unsigned s = (unsigned)(rel % 86400);
    unsigned hh = s / 3600, mm = s / 60 % 60, ss = s % 60;
    memcpy(out, c->day[d], 11);
    out[11] = (char)('0' + hh / 10); out[12] = (char)('0' + hh % 10); out[13] = ':';
    out[14] = (char)('0' + mm / 10); out[15] = (char)('0' + mm % 10); out[16] = ':';
    out[17] = (char)('0' + ss / 10); out[18] = (char)('0' + ss % 10); out[19] = 'Z';
    out[20] = '\0';
}

static void format_cust(uint32_t idx, char *out)
{
    out[0] = 'c';
    for (int i = 10; i >= 1; i--) {
        out[i] = (char)('0' + idx % 10);
        idx /= 10;
    }
    out[11] = '\0';
}

/* Cents to "59.99", with a minus sign for the negative-amount bad records. */
static size_t format_cents(int64_t cents, char *out)
{
    char tmp[24];
    int n = 0;
    uint64_t v = cents < 0 ? (uint64_t)(-cents) : (uint64_t)cents;
    tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
    tmp[sizeof tmp - 1 - n++] = (char)('0' + v / 10 % 10);
    tmp[sizeof tmp - 1 - n++] = '.';
    v /= 100;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (cents < 0)
        tmp[sizeof tmp - 1 - n++] = '-';
    memcpy(out, tmp + sizeof tmp - n, (size_t)n);
    out[n] = '\0';
    return (size_t)n;
}

static size_t format_event_id(uint64_t seq, char *out)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + seq % 10);
        seq /= 10;
    } while (seq);
    out[0] = 'e';
    memcpy(out + 1, tmp + sizeof tmp - n, (size_t)n);
    out[1 + n] = '\0';
    return (size_t)n + 1;
}

static const char *const type_names[3] = { "purchase", "refund", "contact" };

/* ---- generic record writer ---------------------------------------------
 * Valid and bad records are both a short list of fields, written by one
 * encoder per format, so a bad record differs from a valid one only in the
 * field that makes it bad. */

typedef enum { F_STR, F_MONEY, F_INT } fkind_t;
typedef struct {
    const char *key;
    fkind_t     k;
    const char *s;      /* F_STR text; F_MONEY decimal text */
    size_t      slen;
    int64_t     i;      /* F_INT value; F_MONEY cents */
} field_t;

#define MAX_FIELDS 10

static void write_fields_json(out_t *o, const field_t *f, int n)
{
    out_ensure(o, 512);
    OUT_LIT(o, "{");
    for (int i = 0; i < n; i++) {
        if (i)
            OUT_LIT(o, ",");
        OUT_LIT(o, "\"");
        out_str(o, f[i].key);
        OUT_LIT(o, "\":");
        switch (f[i].k) {
        case F_STR:
            /* Generated strings never need escaping. */
            OUT_LIT(o, "\"");
            out_mem(o, f[i].s, f[i].slen);
            OUT_LIT(o, "\"");
            break;
        case F_MONEY:
            out_mem(o, f[i].s, f[i].slen);
            break;
        case F_INT:
            if (f[i].i < 0) {
                OUT_LIT(o, "-");
                out_u64(o, (uint64_t)(-f[i].i));
            } else {
                out_u64(o, (uint64_t)f[i].i);
            }
            break;
        }
    }
    OUT_LIT(o, "}\n");
}

static void write_fields_msgpack(msgpack_packer *pk, const field_t *f, int n)
{
    msgpack_pack_map(pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        msgpack_pack_str_with_body(pk, f[i].key, strlen(f[i].key));
        switch (f[i].k) {
        case F_STR:
            msgpack_pack_str_with_body(pk, f[i].s, f[i].slen);
            break;
        case F_MONEY:
            /* A float, as producers send money; cents/100 converts back
             * to the exact cents with seg_money_from_double. */
            msgpack_pack_double(pk, (double)f[i].i / 100.0);
            break;
        case F_INT:
            msgpack_pack_int64(pk, f[i].i);
            break;
        }
    }
}

static int valid_fields(const rec_t *e, text_t *t, field_t *f)
{
    int n = 0;
    const char *ty = type_names[e->type];
    f[n++] = (field_t){ "type", F_STR, ty, strlen(ty), 0 };
    f[n++] = (field_t){ "customer_id", F_STR, t->cust, 11, 0 };
    f[n++] = (field_t){ "ts", F_STR, t->ts, 20, 0 };
    if (e->type == T_CONTACT) {
        const char *k = kind_names[e->kind];
        f[n++] = (field_t){ "kind", F_STR, k, strlen(k), 0 };
        if (e->flags >> 1)
            f[n++] = (field_t){ "rating", F_INT, NULL, 0, e->flags >> 1 };
    } else {
        t->amount_len = format_cents(e->cents, t->amount);
        f[n++] = (field_t){ "amount", F_MONEY, t->amount, t->amount_len, e->cents };
    }
    f[n++] = (field_t){ "event_id", F_STR, t->event_id, t->event_id_len, 0 };
    if (e->channel) {
        const char *c = channel_names[e->channel];
        f[n++] = (field_t){ "channel", F_STR, c, strlen(c), 0 };
    }
    if (e->flags & 1)
        f[n++] = (field_t){ "currency", F_STR, "EUR", 3, 0 };
    return n;
}

/* Deliberately invalid records, each breaking exactly one rule of
 * docs/events.md (the name says which rejection reason it should get). */
typedef enum {
    B_GARBAGE, B_NOT_OBJECT, B_MISSING_CUSTOMER, B_MISSING_TS,
    B_MISSING_AMOUNT, B_NEGATIVE_AMOUNT, B_BAD_TS, B_UNKNOWN_TYPE,
    B_AMOUNT_STRING, B_UNKNOWN_KIND, B_EMPTY_CUSTOMER, B_NUMERIC_CUSTOMER,
    B__COUNT
} bad_t;
static const char *const bad_names[B__COUNT] = {
    "garbage", "not_object", "missing_customer_id", "missing_ts",
    "missing_amount", "negative_amount", "bad_ts", "unknown_type",
    "amount_string", "unknown_kind", "empty_customer_id", "numeric_customer_id"
};

static int bad_fields(bad_t kind, const rec_t *e, text_t *t, field_t *f)
{
    int n = 0;
    const char *ty = kind == B_UNKNOWN_KIND ? "contact"
                   : kind == B_UNKNOWN_TYPE ? "gift" : "purchase";
    f[n++] = (field_t){ "type", F_STR, ty, strlen(ty), 0 };
    if (kind == B_EMPTY_CUSTOMER)
        f[n++] = (field_t){ "customer_id", F_STR, "", 0, 0 };
    else if (kind == B_NUMERIC_CUSTOMER)
        f[n++] = (field_t){ "customer_id", F_INT, NULL, 0, e->cust };
    else if (kind != B_MISSING_CUSTOMER)
        f[n++] = (field_t){ "customer_id", F_STR, t->cust, 11, 0 };
    if (kind == B_BAD_TS)
        f[n++] = (field_t){ "ts", F_STR, "2024-02-30T25:61:00Z", 20, 0 };
    else if (kind != B_MISSING_TS)
        f[n++] = (field_t){ "ts", F_STR, t->ts, 20, 0 };
    if (kind == B_UNKNOWN_KIND) {
        f[n++] = (field_t){ "kind", F_STR, "hug", 3, 0 };
    } else if (kind == B_AMOUNT_STRING) {
        t->amount_len = format_cents(e->cents ? e->cents : 1250, t->amount);
        f[n++] = (field_t){ "amount", F_STR, t->amount, t->amount_len, 0 };
    } else if (kind != B_MISSING_AMOUNT) {
        int64_t c = e->cents ? e->cents : 1250;
        if (kind == B_NEGATIVE_AMOUNT)
            c = -c;
        t->amount_len = format_cents(c, t->amount);
        f[n++] = (field_t){ "amount", F_MONEY, t->amount, t->amount_len, c };
    }
    return n;
}

typedef enum { FMT_JSON, FMT_MSGPACK } fmt_t;

static void write_bad(out_t *o, msgpack_packer *pk, fmt_t fmt, bad_t kind,
                      const rec_t *e, text_t *t)
{
    if (kind == B_GARBAGE) {
        if (fmt == FMT_JSON) {
            /* A record cut off mid-way, as a crashed producer leaves it. */
            OUT_LIT(o, "{\"type\":\"purchase\",\"customer_id\":\"");
            out_mem(o, t->cust, 6);
            OUT_LIT(o, "\n");
        } else {
            /* Not a map. Raw garbage bytes would desynchronise a msgpack
             * stream for good, which is a different test from "one bad
             * record among good ones". */
            msgpack_pack_str_with_body(pk, "garbage", 7);
        }
        return;
    }
    if (kind == B_NOT_OBJECT) {
        if (fmt == FMT_JSON) {
            OUT_LIT(o, "[1,2,3]\n");
        } else {
            msgpack_pack_array(pk, 3);
            msgpack_pack_int(pk, 1);
            msgpack_pack_int(pk, 2);
            msgpack_pack_int(pk, 3);
        }
        return;
    }
    field_t f[MAX_FIELDS];
    int n = bad_fields(kind, e, t, f);
    if (fmt == FMT_JSON)
        write_fields_json(o, f, n);
    else
        write_fields_msgpack(pk, f, n);
}

static double now_s(void);

/* ---- pacing (--rate) ----------------------------------------------------
 * A token bucket: tokens accrue at `rate` per second up to `burst`, and
 * each record takes one. The burst is 10 ms worth of records (at least
 * one), so a stall (a full producer queue, a slow disk) is not followed
 * by a catch-up flood: a paced stream is for latency measurements and
 * live demos, where "N per second, evenly" is the point. An empty bucket
 * is waited out for at least 1 ms (at 50k/s, 50 records' worth): sleeping
 * for every 20 us token would cost a context switch per record. Waits
 * are cut into sleeps of at most 100 ms so delivery reports and signals
 * are served while waiting. */

typedef struct {
    double rate;        /* records per second; 0 = unpaced */
    double burst;
    double tokens;
    double last;        /* monotonic seconds of the last refill */
} pacer_t;

static void pacer_init(pacer_t *p, double rate, double now)
{
    p->rate = rate;
    p->burst = rate * 0.010 < 1.0 ? 1.0 : rate * 0.010;
    p->tokens = 1.0;    /* the first record goes at once */
    p->last = now;
}

/* Seconds to wait before the next record may go (0: go now, token
 * taken). */
static double pacer_take(pacer_t *p, double now)
{
    if (p->rate <= 0.0)
        return 0.0;
    p->tokens += (now - p->last) * p->rate;
    p->last = now;
    if (p->tokens > p->burst)
        p->tokens = p->burst;
    if (p->tokens >= 1.0) {
        p->tokens -= 1.0;
        return 0.0;
    }
    double wait = (1.0 - p->tokens) / p->rate;
    return wait < 0.001 ? 0.001 : wait;
}

static void sleep_s(double s)
{
    if (s <= 0.0)
        return;
    struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&ts, NULL);   /* EINTR (a signal) just ends the wait early */
}

/* Signals seen (SIGINT/SIGTERM, handled only when producing to Kafka or
 * paced): the first stops generating, a second stops waiting for
 * deliveries. */
static volatile sig_atomic_t g_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    if (g_stop < 2)
        g_stop = g_stop + 1;
}

/* ---- Kafka output (--brokers/--topic) -----------------------------------
 * Each record becomes one message, keyed by customer_id so that all of a
 * customer's events land on one partition in order: segd keeps a
 * customer's state with the partition its events arrive on. The default
 * partitioner is murmur2_random, the one Java clients and kafka-python
 * use, so a customer lands where a Java producer would put it. NDJSON
 * values lose their newline (a message is one record); MessagePack values
 * carry `content-type: application/msgpack`, which segd reads before
 * falling back to sniffing the first byte. Delivery is checked: every
 * failed delivery report is counted, and any makes the exit status 1. */

typedef struct {
    rd_kafka_t *rk;
    const char *topic;
    fmt_t       fmt;
    uint64_t    produced, delivered, failed;
    char        first_error[256];
} ksink_t;

static void ksink_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    ksink_t *k = opaque;
    if (m->err) {
        if (!k->failed)
            snprintf(k->first_error, sizeof k->first_error, "%s", rd_kafka_err2str(m->err));
        k->failed++;
    } else {
        k->delivered++;
    }
}

static void ksink_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 4)     /* warnings and worse; the rest is chatter */
        fprintf(stderr, "seg_gen: librdkafka %s: %s\n", fac, buf);
}

/* Creates the producer and checks that the topic is reachable (10 s), so
 * a wrong address fails fast instead of after message.timeout.ms.
 * props are "key=value" librdkafka properties applied over our defaults.
 * Returns 0, or -1 with a sentence in errstr. */
static int ksink_open(ksink_t *k, const char *brokers, const char *topic, fmt_t fmt,
                      char **props, int nprops, char *errstr, size_t errstr_size)
{
    static const char *const defaults[][2] = {
        { "client.id", "seg_gen" },
        { "linger.ms", "5" },
        { "compression.type", "lz4" },
        { "partitioner", "murmur2_random" },
        { "message.timeout.ms", "30000" },
        { "queue.buffering.max.messages", "1000000" },
    };
    char kerr[256];
    memset(k, 0, sizeof *k);
    k->topic = topic;
    k->fmt = fmt;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_dr_msg_cb(conf, ksink_dr);
    rd_kafka_conf_set_log_cb(conf, ksink_log);
    rd_kafka_conf_set_opaque(conf, k);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, kerr, sizeof kerr)) {
        snprintf(errstr, errstr_size, "--brokers: %s", kerr);
        goto fail;
    }
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], kerr, sizeof kerr)) {
            snprintf(errstr, errstr_size, "%s=%s: %s", defaults[i][0], defaults[i][1], kerr);
            goto fail;
        }
    for (int i = 0; i < nprops; i++) {
        char *eq = strchr(props[i], '=');
        if (!eq || eq == props[i]) {
            snprintf(errstr, errstr_size, "-X %s: not key=value", props[i]);
            goto fail;
        }
        *eq = '\0';
        rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, props[i], eq + 1, kerr, sizeof kerr);
        *eq = '=';
        if (r != RD_KAFKA_CONF_OK) {
            snprintf(errstr, errstr_size, "-X %s: %s", props[i], kerr);
            goto fail;
        }
    }
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof kerr);
    if (!k->rk) {
        snprintf(errstr, errstr_size, "cannot create the producer: %s", kerr);
        goto fail;
    }
    conf = NULL;    /* owned by k->rk now */

    rd_kafka_topic_t *rkt = rd_kafka_topic_new(k->rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rkt ? rd_kafka_metadata(k->rk, 0, rkt, &md, 10000)
                                  : RD_KAFKA_RESP_ERR__INVALID_ARG;
    if (!err && (md->topic_cnt != 1 || md->topics[0].err))
        err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (err) {
        snprintf(errstr, errstr_size, "topic '%s' at %s: %s", topic, brokers,
                 rd_kafka_err2str(err));
        goto fail;
    }
    return 0;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (k->rk)
        rd_kafka_destroy(k->rk);
    k->rk = NULL;
    return -1;
}

/* Produces one record (copied). A full local queue is waited out by
 * serving delivery reports, as librdkafka's examples do. Returns 0, or -1
 * with errstr on an error that retrying cannot fix. */
static int ksink_produce(ksink_t *k, const char *key, size_t klen, const char *val,
                         size_t vlen, char *errstr, size_t errstr_size)
{
    for (;;) {
        rd_kafka_resp_err_t err;
        if (k->fmt == FMT_MSGPACK)
            err = rd_kafka_producev(k->rk, RD_KAFKA_V_TOPIC(k->topic),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_KEY(key, klen),
                                    RD_KAFKA_V_VALUE((void *)val, vlen),
                                    RD_KAFKA_V_HEADER("content-type", "application/msgpack", 19),
                                    RD_KAFKA_V_END);
        else
            err = rd_kafka_producev(k->rk, RD_KAFKA_V_TOPIC(k->topic),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_KEY(key, klen),
                                    RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            k->produced++;
            rd_kafka_poll(k->rk, 0);
            return 0;
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            snprintf(errstr, errstr_size, "produce to '%s': %s", k->topic, rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(k->rk, 10);
    }
}

/* Waits for every outstanding delivery report: at most message.timeout.ms
 * (then librdkafka fails them) plus a margin, and a second signal gives
 * up at once. Returns the number of messages left undelivered. */
static uint64_t ksink_flush(ksink_t *k)
{
    double until = now_s() + 120.0;
    int stops = g_stop;
    while (rd_kafka_outq_len(k->rk) > 0 && now_s() < until && g_stop == stops)
        rd_kafka_flush(k->rk, 200);
    int left = rd_kafka_outq_len(k->rk);
    return left > 0 ? (uint64_t)left : 0;
}

static void ksink_close(ksink_t *k)
{
    if (k->rk)
        rd_kafka_destroy(k->rk);
    k->rk = NULL;
}

/* ---- the record writer: file or Kafka, paced or not --------------------
 * Records are formatted into the out_t buffer either way. For a file the
 * buffer fills and is written in 4 MB blocks, as before; for Kafka each
 * record is taken out of the buffer as one message as soon as it is
 * complete. */

typedef struct {
    out_t   *o;
    ksink_t *k;             /* NULL: file output */
    fmt_t    fmt;
    pacer_t  pacer;
    int      realtime;
    int64_t  rt_sec;        /* second rt_ts was formatted for */
    char     rt_ts[SEG_TS_BUFSZ];
    int64_t  last_rt;       /* ts of the last record written (--realtime) */
    uint64_t records;       /* records written or produced */
    char     errstr[512];
} writer_t;

static int64_t wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

/* Before a record: waits for the pacer, and with --realtime sets the
 * record's ts to the wall clock. Returns 1 when a signal asked to stop. */
static int record_begin(writer_t *w, text_t *t)
{
    for (;;) {
        if (g_stop)
            return 1;
        double wait = pacer_take(&w->pacer, now_s());
        if (wait <= 0.0)
            break;
        if (wait > 0.1)
            wait = 0.1;
        if (w->k) {
            if (wait >= 0.001)
                rd_kafka_poll(w->k->rk, (int)(wait * 1000.0));
            else
                sleep_s(wait);
        } else {
            /* A paced file or pipe is being watched live: hand over what
             * is buffered before idling. */
            if (w->o->len) {
                out_flush(w->o);
                if (!w->o->err && fflush(w->o->f))
                    w->o->err = errno ? errno : EIO;
            }
            sleep_s(wait);
        }
    }
    if (w->realtime) {
        int64_t now = wall_s();
        if (now != w->rt_sec) {
            seg_ts_format(now, w->rt_ts);
            w->rt_sec = now;
        }
        memcpy(t->ts, w->rt_ts, SEG_TS_BUFSZ);
        w->last_rt = now;
    }
    return 0;
}

/* After a record: with Kafka output, produces it. Returns 0, or -1 with
 * w->errstr. */
static int record_end(writer_t *w, const char *cust)
{
    w->records++;
    if (!w->k)
        return 0;
    out_t *o = w->o;
    size_t len = o->len;
    if (w->fmt == FMT_JSON && len && o->buf[len - 1] == '\n')
        len--;
    int r = ksink_produce(w->k, cust, strlen(cust), o->buf, len, w->errstr, sizeof w->errstr);
    o->bytes += len;
    o->len = 0;
    return r;
}

/* ---- main -------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: seg_gen --customers N [--days D] [--start RFC3339] [--seed S]\n"
        "               [--format json|msgpack] [--output FILE|-]\n"
        "               [--sorted | --by-customer] [--bad-rate F]\n"
        "               [--summary-json FILE]\n"
        "               [--brokers HOST:PORT[,...] --topic T [-X key=value]...]\n"
        "               [--rate N] [--realtime]\n"
        "Generates BG/NBD customer events (purchase, refund, contact).\n"
        "  --customers N    number of customers (required, >= 1)\n"
        "  --days D         length of the period (default 365)\n"
        "  --start T        start of the period (default 2024-01-01T00:00:00Z)\n"
        "  --seed S         PRNG seed (default 1); same seed, same bytes\n"
        "  --format F       json (NDJSON, default) or msgpack (stream of maps)\n"
        "  --output FILE    output file, '-' for stdout (default)\n"
        "  --sorted         global time order (default)\n"
        "  --by-customer    grouped by customer, time order within each\n"
        "  --bad-rate F     before each valid event, emit an invalid record\n"
        "                   with probability F (default 0)\n"
        "  --summary-json FILE  also write the summary as JSON\n"
        "Kafka (instead of --output):\n"
        "  --brokers B      bootstrap servers; each record is one message to\n"
        "  --topic T        topic T, keyed by customer_id (murmur2 partitioner, as\n"
        "                   Java clients); msgpack values get the header\n"
        "                   content-type: application/msgpack\n"
        "  -X key=value     librdkafka producer property (repeatable); defaults:\n"
        "                   linger.ms=5 compression.type=lz4 message.timeout.ms=30000\n"
        "Pacing (any output):\n"
        "  --rate N         at most N records per second, evenly (token bucket)\n"
        "  --realtime       rewrite each event's ts to the wall clock when it is\n"
        "                   written (UTC seconds): a live stream whose event time\n"
        "                   starts now and follows the clock; with --rate, the\n"
        "                   generated period is compressed into events/N seconds\n"
        "SIGINT/SIGTERM while producing to Kafka or paced: stop generating, wait\n"
        "for outstanding deliveries (a second signal stops waiting), report.\n"
        "Exit codes: 0 ok, 1 I/O, memory or Kafka error (any failed delivery),\n"
        "2 usage error.\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t customers = 0, days = 365, seed = 1;
    const char *start_s = "2024-01-01T00:00:00Z", *output = "-", *summary = NULL;
    const char *brokers = NULL, *topic = NULL;
    fmt_t fmt = FMT_JSON;
    int by_customer = 0, output_set = 0, realtime = 0;
    double bad_rate = 0.0, rate = 0.0;
    char *props[64];
    int nprops = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--sorted")) {
            by_customer = 0;
            continue;
        } else if (!strcmp(a, "--by-customer")) {
            by_customer = 1;
            continue;
        } else if (!strcmp(a, "--realtime")) {
            realtime = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "seg_gen: %s needs a value (or is unknown)\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--customers")) {
            if (parse_u64(v, &customers) || customers < 1 || customers > 4000000000ULL) {
                fprintf(stderr, "seg_gen: --customers must be 1..4000000000\n");
                return 2;
            }
        } else if (!strcmp(a, "--days")) {
            if (parse_u64(v, &days) || days < 1 || days > 36500) {
                fprintf(stderr, "seg_gen: --days must be 1..36500\n");
                return 2;
            }
        } else if (!strcmp(a, "--seed")) {
            if (parse_u64(v, &seed)) {
                fprintf(stderr, "seg_gen: --seed must be an unsigned integer\n");
                return 2;
            }
        } else if (!strcmp(a, "--start")) {
            start_s = v;
        } else if (!strcmp(a, "--format")) {
            if (!strcmp(v, "json")) fmt = FMT_JSON;
            else if (!strcmp(v, "msgpack")) fmt = FMT_MSGPACK;
            else {
                fprintf(stderr, "seg_gen: --format must be json or msgpack\n");
                return 2;
            }
        } else if (!strcmp(a, "--output")) {
            output = v;
            output_set = 1;
        } else if (!strcmp(a, "--brokers")) {
            brokers = v;
        } else if (!strcmp(a, "--topic")) {
            topic = v;
        } else if (!strcmp(a, "-X")) {
            if (nprops == (int)(sizeof props / sizeof props[0])) {
                fprintf(stderr, "seg_gen: too many -X properties\n");
                return 2;
            }
            props[nprops++] = argv[i];
        } else if (!strcmp(a, "--rate")) {
            char *end;
            rate = strtod(v, &end);
            if (*end || !(rate > 0.0 && rate <= 1e8)) {
                fprintf(stderr, "seg_gen: --rate must be a number of records/s in (0, 1e8]\n");
                return 2;
            }
        } else if (!strcmp(a, "--summary-json")) {
            summary = v;
        } else if (!strcmp(a, "--bad-rate")) {
            char *end;
            bad_rate = strtod(v, &end);
            if (*end || !(bad_rate >= 0.0 && bad_rate <= 1.0)) {
                fprintf(stderr, "seg_gen: --bad-rate must be in [0, 1]\n");
                return 2;
            }
        } else {
            fprintf(stderr, "seg_gen: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!customers) {
        fprintf(stderr, "seg_gen: --customers is required\n");
        usage(stderr);
        return 2;
    }
    if (!brokers != !topic) {
        fprintf(stderr, "seg_gen: --brokers and --topic go together\n");
        return 2;
    }
    if (brokers && output_set) {
        fprintf(stderr, "seg_gen: --output and --brokers/--topic are alternatives\n");
        return 2;
    }
    if (nprops && !brokers) {
        fprintf(stderr, "seg_gen: -X needs --brokers/--topic\n");
        return 2;
    }
    int64_t start;
    if (seg_ts_parse_rfc3339(start_s, strlen(start_s), &start)) {
        fprintf(stderr, "seg_gen: --start '%s' is not an RFC 3339 date-time\n", start_s);
        return 2;
    }
    double period = (double)days * DAY;
    if (start + (int64_t)period + 2 * 86400 > SEG_TS_MAX) {
        fprintf(stderr, "seg_gen: --start plus --days goes past year 9999\n");
        return 2;
    }

    int rc = 1;
    recs_t recs = { 0 };
    tscache_t tc = { 0 };
    out_t o = { 0 };
    ksink_t ks = { 0 };
    counts_t cnt = { 0 };
    uint64_t bad_by_kind[B__COUNT] = { 0 }, bad_total = 0;
    double t0 = now_s(), t_gen, t_sort, t_write;

    /* ---- generate ---- */
    rng_t rng;
    rng_seed(&rng, seed);
    recs.cap = (size_t)customers * 4 + 1024;
    recs.v = malloc(recs.cap * sizeof *recs.v);
    if (!recs.v) {
        fprintf(stderr, "seg_gen: out of memory\n");
        goto done;
    }
    for (uint64_t c = 0; c < customers; c++) {
        if (gen_customer(&recs, &cnt, &rng, (uint32_t)c, period)) {
            fprintf(stderr, "seg_gen: out of memory after %zu events\n", recs.n);
            goto done;
        }
    }
    cnt.customers = customers;
    t_gen = now_s();

    /* ---- order ---- */
    if (!by_customer && radix_sort(&recs)) {
        fprintf(stderr, "seg_gen: out of memory sorting %zu events\n", recs.n);
        goto done;
    }
    t_sort = now_s();

    /* ---- write ---- */
    if (tscache_init(&tc, start, (uint32_t)period)) {
        fprintf(stderr, "seg_gen: out of memory\n");
        goto done;
    }
    o.buf = malloc(OUT_CAP);
    if (!o.buf) {
        fprintf(stderr, "seg_gen: out of memory\n");
        goto done;
    }
    writer_t w = { .o = &o, .fmt = fmt, .realtime = realtime, .rt_sec = INT64_MIN };
    if (brokers) {
        char err[512];
        if (ksink_open(&ks, brokers, topic, fmt, props, nprops, err, sizeof err)) {
            fprintf(stderr, "seg_gen: %s\n", err);
            goto done;
        }
        w.k = &ks;
    } else if (!strcmp(output, "-")) {
        o.f = stdout;
    } else if (!(o.f = fopen(output, "wb"))) {
        fprintf(stderr, "seg_gen: cannot open %s: %s\n", output, strerror(errno));
        goto done;
    }
    if (brokers || rate > 0.0) {
        /* Let a live stream be stopped cleanly: finish the record,
         * deliver what is queued, report. */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    double t_stream = now_s();
    pacer_init(&w.pacer, rate, t_stream);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &o, msgpack_write_cb);
    rng_t bad_rng;
    rng_seed(&bad_rng, seed ^ 0x5eedbadbadULL);
    text_t t;
    field_t f[MAX_FIELDS];
    int kafka_err = 0;
    for (size_t i = 0; i < recs.n && !o.err && !kafka_err; i++) {
        const rec_t *e = &recs.v[i];
        format_cust(e->cust, t.cust);
        format_ts(&tc, e->ts, t.ts);
        if (bad_rate > 0.0 && rng_unif(&bad_rng) < bad_rate) {
            bad_t k = (bad_t)rng_below(&bad_rng, B__COUNT);
            if (record_begin(&w, &t))
                break;
            write_bad(&o, &pk, fmt, k, e, &t);
            bad_by_kind[k]++;
            bad_total++;
            if (record_end(&w, t.cust)) {
                kafka_err = 1;
                break;
            }
        }
        t.event_id_len = format_event_id(i + 1, t.event_id);
        if (record_begin(&w, &t))
            break;
        int n = valid_fields(e, &t, f);
        if (fmt == FMT_JSON)
            write_fields_json(&o, f, n);
        else
            write_fields_msgpack(&pk, f, n);
        if (record_end(&w, t.cust))
            kafka_err = 1;
    }
    uint64_t undelivered = 0;
    if (w.k) {
        undelivered = ksink_flush(&ks);
        double secs = now_s() - t_stream;
        fprintf(stderr, "seg_gen: produced %" PRIu64 " records (%" PRIu64 " bytes) to '%s' at %s"
                " in %.2fs (%.0f records/s): %" PRIu64 " delivered, %" PRIu64 " failed",
                ks.produced, o.bytes, topic, brokers, secs,
                secs > 0 ? (double)ks.produced / secs : 0.0, ks.delivered, ks.failed);
        if (undelivered)
            fprintf(stderr, ", %" PRIu64 " still undelivered", undelivered);
        if (ks.failed)
            fprintf(stderr, " (first error: %s)", ks.first_error);
        fputc('\n', stderr);
        if (kafka_err)
            fprintf(stderr, "seg_gen: %s\n", w.errstr);
    } else {
        out_flush(&o);
        if (!o.err && fflush(o.f))
            o.err = errno ? errno : EIO;
        if (o.err) {
            fprintf(stderr, "seg_gen: write to %s failed: %s\n", output, strerror(o.err));
            goto done;
        }
        if (rate > 0.0) {
            double secs = now_s() - t_stream;
            fprintf(stderr, "seg_gen: wrote %" PRIu64 " records in %.2fs (%.0f records/s)\n",
                    w.records, secs, secs > 0 ? (double)w.records / secs : 0.0);
        }
    }
    int interrupted = g_stop && w.records < (uint64_t)recs.n + bad_total;
    if (interrupted)
        fprintf(stderr, "seg_gen: stopped by a signal after %" PRIu64 " records\n", w.records);
    t_write = now_s();

    /* ---- summary ---- */
    fprintf(stderr,
            "seg_gen: %" PRIu64 " customers (%" PRIu64 " prospects only), %zu events "
            "(purchase %" PRIu64 ", refund %" PRIu64 ", contact %" PRIu64 ": ",
            cnt.customers, cnt.prospects, recs.n, cnt.by_type[T_PURCHASE],
            cnt.by_type[T_REFUND], cnt.by_type[T_CONTACT]);
    for (int k = 0; k < K__COUNT; k++)
        fprintf(stderr, "%s%s %" PRIu64, k ? ", " : "", kind_names[k], cnt.by_kind[k]);
    fprintf(stderr, "), %" PRIu64 " bad records, %" PRIu64 " bytes %s\n",
            bad_total, o.bytes, fmt == FMT_JSON ? "NDJSON" : "msgpack");
    fprintf(stderr, "seg_gen: generate %.2fs, sort %.2fs, write %.2fs, total %.2fs "
            "(%.2fM events/s)\n", t_gen - t0, t_sort - t_gen, t_write - t_sort,
            t_write - t0, (double)recs.n / (t_write - t0) / 1e6);

    if (summary) {
        FILE *sf = fopen(summary, "w");
        if (!sf) {
            fprintf(stderr, "seg_gen: cannot open %s: %s\n", summary, strerror(errno));
            goto done;
        }
        fprintf(sf, "{\"customers\":%" PRIu64 ",\"prospects\":%" PRIu64
                ",\"days\":%" PRIu64 ",\"seed\":%" PRIu64 ",\"format\":\"%s\""
                ",\"events\":%zu,\"records\":%" PRIu64
                ",\"events_by_type\":{\"purchase\":%" PRIu64 ",\"refund\":%" PRIu64
                ",\"contact\":%" PRIu64 "},\"contacts_by_kind\":{",
                cnt.customers, cnt.prospects, days, seed,
                fmt == FMT_JSON ? "json" : "msgpack", recs.n,
                (uint64_t)recs.n + bad_total, cnt.by_type[T_PURCHASE],
                cnt.by_type[T_REFUND], cnt.by_type[T_CONTACT]);
        for (int k = 0; k < K__COUNT; k++)
            fprintf(sf, "%s\"%s\":%" PRIu64, k ? "," : "", kind_names[k], cnt.by_kind[k]);
        fprintf(sf, "},\"bad_records\":%" PRIu64 ",\"bad_by_kind\":{", bad_total);
        for (int k = 0; k < B__COUNT; k++)
            fprintf(sf, "%s\"%s\":%" PRIu64, k ? "," : "", bad_names[k], bad_by_kind[k]);
        char last[SEG_TS_BUFSZ] = "";
        if (realtime) {
            if (w.records)
                seg_ts_format(w.last_rt, last);
        } else if (recs.n) {
            uint32_t mx = 0;
            for (size_t i = 0; i < recs.n; i++)
                if (recs.v[i].ts > mx)
                    mx = recs.v[i].ts;
            seg_ts_format(start + mx, last);
        }
        fprintf(sf, "},\"bytes\":%" PRIu64 ",\"last_ts\":\"%s\",\"seconds\":%.3f",
                o.bytes, last, t_write - t0);
        if (brokers || rate > 0.0 || realtime)
            fprintf(sf, ",\"written\":%" PRIu64 ",\"interrupted\":%s,\"rate\":%.17g"
                    ",\"realtime\":%s", w.records, interrupted ? "true" : "false", rate,
                    realtime ? "true" : "false");
        if (brokers)
            fprintf(sf, ",\"kafka\":{\"topic\":\"%s\",\"produced\":%" PRIu64
                    ",\"delivered\":%" PRIu64 ",\"failed\":%" PRIu64
                    ",\"undelivered\":%" PRIu64 "}",
                    topic, ks.produced, ks.delivered, ks.failed, undelivered);
        fputs("}\n", sf);
        if (fclose(sf)) {
            fprintf(stderr, "seg_gen: write to %s failed\n", summary);
            goto done;
        }
    }
    /* Every record handed to Kafka must have a successful delivery
     * report; anything else is a failed run. */
    rc = (kafka_err || ks.failed || undelivered) ? 1 : 0;

done:
    ksink_close(&ks);
    if (o.f && o.f != stdout && fclose(o.f) && rc == 0) {
        fprintf(stderr, "seg_gen: closing %s failed: %s\n", output, strerror(errno));
        rc = 1;
    }
    free(o.buf);
    free(tc.day);
    free(recs.v);
    return rc;
}
