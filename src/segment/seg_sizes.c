/*
 * seg_sizes: per-value counts fed by transitions, flows in time rings.
 *
 * Per dimension, values are slots: slot 0 stands for null (no value),
 * then one slot per value. A customer's move is counted twice: the
 * values' counts (-1 from, +1 to) and the (from, to) pair's rings, from
 * which entries (column sums) and exits (row sums) are read. Pairs are
 * allocated when first seen: a dimension has far fewer actual moves than
 * value pairs (rfm's 100 values allow 10,000).
 *
 * A dimension's starting value (dissatisfied "out") is never counted
 * directly, since customers get there by being created; its size is
 * derived when read: held - the other values - those without a value.
 *
 * Hot path: a built-in transition finds its slots by value code through
 * an array; a rule's by hashing the text (at most 64 values plus _other).
 */
#include "segment/seg_sizes.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "util/seg_ts.h"

/* Rings: bucket k (a minute, a quarter hour since the epoch) lives at
 * k mod N with k as its tag, so a stale bucket is recognised and reset
 * when written, and skipped when read: no per-ring clock to move, no
 * clearing loops. N is a power of two above the window's buckets. */
#define FINE_N     64      /* one-minute buckets; the window reads 60: the last hour */
#define FINE_W     60
#define FINE_S     60
#define COARSE_N   128     /* fifteen-minute buckets; the window reads 96: the last 24 h */
#define COARSE_W   96
#define COARSE_S   900
#define HASH_N     256     /* > every dimension's slots, power of two */
#define OTHER      "_other"

typedef struct bucket {
    int64_t  k;                        /* bucket number; INT64_MIN: empty */
    uint64_t n;
} bucket_t;

typedef struct flow {
    bucket_t fine[FINE_N];
    bucket_t coarse[COARSE_N];
} flow_t;

typedef struct slot {
    char          *name;               /* NULL for slot 0 */
    int64_t        count;              /* customers, unless the starting value */
    uint64_t       entries, exits;     /* since start */
    uint64_t       pub_entries, pub_exits;
    seg_gauge_t   *g_customers;
    seg_counter_t *c_entries, *c_exits;
} slot_t;

typedef struct sdim {
    char     name[SEG_RULE_NAME_MAX + 1];
    int      builtin;                  /* seg_dim_t, or -1 for a rule */
    bool     active;
    int      initial;                  /* slot of the starting value, -1: none */
    bool     other;                    /* a rule's _other slot exists */
    unsigned width;                    /* slots a dimension can have */
    slot_t  *slot;                     /* width entries, n used */
    unsigned n;
    uint8_t  code_slot[128];           /* built-ins: value code -> slot */
    uint16_t hash[HASH_N];             /* value name -> slot + 1 */
    flow_t **flow;                     /* width * width, from * width + to */
} sdim_t;

struct seg_sizes {
    sdim_t  *dim;                      /* built-ins first (by seg_dim_t), then rules */
    unsigned n, cap;
    sdim_t **rule_cache;               /* rule index in force -> dim */
    unsigned n_rule_cache;
    int64_t  now;
    int64_t  known;                    /* customers held that had a transition */
    bool     inexact;
};

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int slot_find(const sdim_t *d, const char *v)
{
    for (uint32_t h = hash_str(v);; h++) {
        uint16_t e = d->hash[h & (HASH_N - 1)];
        if (!e) return -1;
        if (strcmp(d->slot[e - 1].name, v) == 0) return e - 1;
    }
}

/* Appends a slot named v. -1 on allocation failure or when full. */
static int slot_new(sdim_t *d, const char *v)
{
    if (d->n == d->width) return -1;
    char *copy = strdup(v);
    if (!copy) return -1;
    int k = (int)d->n++;
    memset(&d->slot[k], 0, sizeof d->slot[k]);
    d->slot[k].name = copy;
    uint32_t h = hash_str(v);
    while (d->hash[h & (HASH_N - 1)]) h++;
    d->hash[h & (HASH_N - 1)] = (uint16_t)(k + 1);
    return k;
}

/* The slot of value v (NULL: slot 0), created when first seen; a rule
 * past its bound gets _other. -1 only on allocation failure. */
static int slot_of(sdim_t *d, const char *v)
{
    if (!v) return 0;
    int k = slot_find(d, v);
    if (k >= 0) return k;
    if (d->builtin < 0 && d->n >= (unsigned)SEG_SIZES_RULE_VALUES + 1) {
        if (!d->other) {
            k = slot_new(d, OTHER);
            if (k < 0) return -1;
            d->other = true;
            return k;
        }
        return slot_find(d, OTHER);
    }
    /* A rule value spelled "_other" must not merge with the overflow
     * row: it cannot be told apart in the output either, so it is
     * simply that row. */
    k = slot_new(d, v);
    if (k >= 0 && strcmp(v, OTHER) == 0) d->other = true;
    return k;
}

static void dim_free(sdim_t *d)
{
    for (unsigned i = 0; i < d->n; i++) free(d->slot[i].name);
    free(d->slot);
    if (d->flow)
        for (unsigned i = 0; i < d->width * d->width; i++) free(d->flow[i]);
    free(d->flow);
}

seg_sizes_t *seg_sizes_new(void)
{
    seg_sizes_t *s = calloc(1, sizeof *s);
    if (s) s->now = INT64_MIN;
    return s;
}

void seg_sizes_destroy(seg_sizes_t *s)
{
    if (!s) return;
    for (unsigned i = 0; i < s->n; i++) dim_free(&s->dim[i]);
    free(s->dim);
    free(s->rule_cache);
    free(s);
}

static sdim_t *dim_find(seg_sizes_t *s, const char *name)
{
    for (unsigned i = 0; i < s->n; i++)
        if (strcmp(s->dim[i].name, name) == 0) return &s->dim[i];
    return NULL;
}

/* A new dimension (inactive until set_dims says otherwise). */
static sdim_t *dim_add(seg_sizes_t *s, const char *name, int builtin)
{
    if (s->n == s->cap) {
        unsigned ncap = s->cap ? s->cap * 2 : 8;
        sdim_t *nd = realloc(s->dim, ncap * sizeof *nd);
        if (!nd) return NULL;
        s->dim = nd;
        s->cap = ncap;
    }
    sdim_t *d = &s->dim[s->n];
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    d->builtin = builtin;
    d->initial = -1;
    d->width = builtin >= 0 ? seg_dim_value_count((seg_dim_t)builtin) + 1
                            : SEG_SIZES_RULE_VALUES + 2;
    d->slot = calloc(d->width, sizeof *d->slot);
    d->flow = calloc((size_t)d->width * d->width, sizeof *d->flow);
    if (!d->slot || !d->flow) {
        dim_free(d);
        return NULL;
    }
    d->n = 1;   /* slot 0: null */
    if (builtin >= 0) {
        for (unsigned c = 0; c < seg_dim_value_count((seg_dim_t)builtin); c++) {
            const char *v = seg_dim_value_name((seg_dim_t)builtin, (uint8_t)c);
            if (!v) continue;
            int k = slot_new(d, v);
            if (k < 0) {
                dim_free(d);
                return NULL;
            }
            d->code_slot[c] = (uint8_t)k;
        }
    }
    s->n++;
    return d;
}

int seg_sizes_set_dims(seg_sizes_t *s, const seg_segcfg_t *seg, const seg_ruleset_t *rs)
{
    const bool on[SEG_DIM__COUNT] = { seg->lifecycle.enabled, seg->value.enabled,
                                      seg->rfm.enabled, seg->dissatisfied.enabled };
    /* Built-ins always sit at indices 0..3, so a transition finds them
     * by number; rules follow. Pointers into s->dim move when it grows,
     * so the rule cache is rebuilt after every addition. */
    if (s->n == 0) {
        for (int d = 0; d < SEG_DIM__COUNT; d++)
            if (!dim_add(s, seg_dim_name((seg_dim_t)d), d)) return -1;
        s->dim[SEG_DIM_DISSATISFIED].initial = slot_find(&s->dim[SEG_DIM_DISSATISFIED], "out");
    }
    for (unsigned i = 0; i < s->n; i++) s->dim[i].active = false;
    for (int d = 0; d < SEG_DIM__COUNT; d++) s->dim[d].active = on[d];
    uint32_t nr = rs ? seg_ruleset_count(rs) : 0;
    for (uint32_t i = 0; i < nr; i++) {
        const char *name = seg_ruleset_name(rs, i);
        sdim_t *d = dim_find(s, name);
        if (d && d->builtin >= 0) continue;   /* cannot happen: rule names are not built-ins' */
        if (!d && !(d = dim_add(s, name, -1))) return -1;
        d->active = true;
        const char *init = seg_ruleset_initial(rs, i);
        d->initial = init ? slot_of(d, init) : -1;
        if (init && d->initial < 0) return -1;
        /* A graded rule's labels get their rows in label order. */
        const char *const *vals;
        int nv = seg_ruleset_values(rs, i, &vals);
        for (int k = 0; k < nv; k++)
            if (slot_of(d, vals[k]) < 0) return -1;
    }
    sdim_t **rc = realloc(s->rule_cache, (nr ? nr : 1) * sizeof *rc);
    if (!rc) return -1;
    s->rule_cache = rc;
    s->n_rule_cache = nr;
    for (uint32_t i = 0; i < nr; i++) rc[i] = dim_find(s, seg_ruleset_name(rs, i));
    return 0;
}

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void ring_add(bucket_t *b, unsigned n, int64_t k)
{
    bucket_t *x = &b[(uint64_t)k & (n - 1)];
    if (x->k == k) {
        x->n++;
    } else if (x->k < k) {          /* stale (or empty): this bucket now holds k */
        x->k = k;
        x->n = 1;
    }
    /* else it holds a newer bucket: k is older than the ring reaches,
     * outside every window */
}

/* Buckets numbered (T - w, T]. */
static uint64_t ring_sum(const bucket_t *b, unsigned n, unsigned w, int64_t T)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < n; i++)
        if (b[i].k <= T && b[i].k > T - (int64_t)w) sum += b[i].n;
    return sum;
}

static sdim_t *dim_of(seg_sizes_t *s, const seg_transition_t *t)
{
    if ((unsigned)t->dim < SEG_DIM__COUNT) return s->n ? &s->dim[t->dim] : NULL;
    uint32_t i = (uint32_t)t->dim - SEG_DIM__COUNT;
    if (i < s->n_rule_cache && s->rule_cache[i] && strcmp(s->rule_cache[i]->name, t->dim_name) == 0)
        return s->rule_cache[i];
    /* A removed rule's "to: null" (it is no longer in the cache). */
    return dim_find(s, t->dim_name);
}

/* Applies sign to customer counts of slot k (the starting value is
 * derived, and slot 0 is counted only where there is a starting value:
 * elsewhere every customer starts at null). */
static void count(sdim_t *d, int k, int sign)
{
    if (k == d->initial || (k == 0 && d->initial < 0)) return;
    d->slot[k].count += sign;
}

static int transition(seg_sizes_t *s, const seg_transition_t *t, bool counts)
{
    sdim_t *d = dim_of(s, t);
    if (!d && !counts) return 0;   /* a dimension this instance never counted */
    if (!d) {
        s->inexact = true;
        return -1;
    }
    int from, to;
    if (d->builtin >= 0) {
        from = t->from ? d->code_slot[t->from_code & 127] : 0;
        to = t->to ? d->code_slot[t->to_code & 127] : 0;
    } else {
        from = slot_of(d, t->from);
        to = slot_of(d, t->to);
    }
    if (from < 0 || to < 0) {
        s->inexact = true;
        return -1;
    }
    if (counts) {
        if (t->seq == 1) s->known++;   /* a customer's first transition ever */
        count(d, from, -1);
        count(d, to, 1);
    }
    if (from) d->slot[from].exits++;
    if (to) d->slot[to].entries++;
    flow_t **fp = &d->flow[(size_t)from * d->width + (size_t)to];
    if (!*fp) {
        *fp = malloc(sizeof **fp);
        if (!*fp) {
            s->inexact = true;
            return -1;
        }
        for (unsigned i = 0; i < FINE_N; i++) (*fp)->fine[i] = (bucket_t){ INT64_MIN, 0 };
        for (unsigned i = 0; i < COARSE_N; i++) (*fp)->coarse[i] = (bucket_t){ INT64_MIN, 0 };
    }
    ring_add((*fp)->fine, FINE_N, floordiv(t->at, FINE_S));
    ring_add((*fp)->coarse, COARSE_N, floordiv(t->at, COARSE_S));
    if (t->at > s->now) s->now = t->at;
    return 0;
}

int seg_sizes_transition(seg_sizes_t *s, const seg_transition_t *t)
{
    return transition(s, t, true);
}

int seg_sizes_flow(seg_sizes_t *s, const seg_transition_t *t)
{
    return transition(s, t, false);
}

int seg_sizes_add_customer(seg_sizes_t *s, seg_engine_t *e, uint32_t idx, int sign)
{
    size_t id_len;
    uint32_t seq;
    if (!seg_engine_customer_id(e, idx, &id_len, &seq)) return 0;   /* a free index */
    if (seq == 0) return 0;   /* never published: no consumer knows it */
    s->known += sign;
    int rc = 0;
    const seg_ruleset_t *rs = seg_engine_rules(e);
    uint32_t nr = rs ? seg_ruleset_count(rs) : 0;
    for (unsigned i = 0; i < s->n && i < SEG_DIM__COUNT; i++) {
        sdim_t *d = &s->dim[i];
        if (!d->active) continue;
        int k = slot_of(d, seg_engine_customer_value(e, idx, (seg_dim_t)i));
        if (k < 0) rc = -1;
        else count(d, k, sign);
    }
    for (uint32_t r = 0; r < nr; r++) {
        sdim_t *d = r < s->n_rule_cache ? s->rule_cache[r] : NULL;
        if (!d || strcmp(d->name, seg_ruleset_name(rs, r)) != 0)
            d = dim_find(s, seg_ruleset_name(rs, r));
        if (!d) {
            rc = -1;
            continue;
        }
        int k = slot_of(d, seg_engine_customer_value(e, idx, SEG_DIM_RULE(r)));
        if (k < 0) rc = -1;
        else count(d, k, sign);
    }
    if (rc) s->inexact = true;
    return rc;
}

int seg_sizes_add_engine(seg_sizes_t *s, seg_engine_t *e, int sign)
{
    int rc = 0;
    uint32_t high = seg_engine_customer_high(e);
    for (uint32_t idx = 0; idx < high; idx++)
        if (seg_sizes_add_customer(s, e, idx, sign) != 0) rc = -1;
    return rc;
}

void seg_sizes_advance(seg_sizes_t *s, int64_t t)
{
    if (t > s->now) s->now = t;
}

int64_t seg_sizes_time(const seg_sizes_t *s) { return s->now; }

/* Flows of one (from, to) pair over the last hour and 24 h. */
static void flow_sums(const seg_sizes_t *s, const flow_t *f, uint64_t *h1, uint64_t *h24)
{
    *h1 = *h24 = 0;
    if (!f || s->now == INT64_MIN) return;
    *h1 = ring_sum(f->fine, FINE_N, FINE_W, floordiv(s->now, FINE_S));
    *h24 = ring_sum(f->coarse, COARSE_N, COARSE_W, floordiv(s->now, COARSE_S));
}

void seg_sizes_on_customer(void *opaque, seg_engine_t *e, uint32_t idx, seg_cust_change_t what)
{
    (void)seg_sizes_add_customer(opaque, e, idx, what == SEG_CUST_EVICTED ? -1 : 1);
}

int64_t seg_sizes_customers(const seg_sizes_t *s) { return s->known; }

/* Customers at slot k of d. */
static int64_t customers(const sdim_t *d, int k, int64_t held)
{
    if (k != d->initial) return d->slot[k].count;
    int64_t n = held;
    for (unsigned j = 0; j < d->n; j++)
        if ((int)j != d->initial && (j != 0 || d->initial >= 0)) n -= d->slot[j].count;
    return n;
}

static void row_of(const seg_sizes_t *s, const sdim_t *d, unsigned k, seg_size_row_t *r)
{
    memset(r, 0, sizeof *r);
    r->dimension = d->name;
    r->value = d->slot[k].name;
    r->initial = (int)k == d->initial;
    r->customers = customers(d, (int)k, s->known);
    r->entries_total = d->slot[k].entries;
    r->exits_total = d->slot[k].exits;
    for (unsigned j = 0; j < d->n; j++) {
        uint64_t h1, h24;
        flow_sums(s, d->flow[(size_t)j * d->width + k], &h1, &h24);
        r->entries_1h += h1;
        r->entries_24h += h24;
        flow_sums(s, d->flow[(size_t)k * d->width + j], &h1, &h24);
        r->exits_1h += h1;
        r->exits_24h += h24;
    }
}

void seg_sizes_rows(seg_sizes_t *s, seg_size_row_fn fn, void *opaque)
{
    for (unsigned i = 0; i < s->n; i++) {
        const sdim_t *d = &s->dim[i];
        if (!d->active) continue;
        for (unsigned k = 1; k < d->n; k++) {
            seg_size_row_t r;
            row_of(s, d, k, &r);
            fn(opaque, &r);
        }
    }
}

char *seg_sizes_json(seg_sizes_t *s, size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char ts[SEG_TS_BUFSZ];
    if (s->now != INT64_MIN) {
        seg_ts_format(s->now, ts);
        cJSON_AddStringToObject(o, "time", ts);
    } else {
        cJSON_AddNullToObject(o, "time");
    }
    cJSON_AddNumberToObject(o, "customers", (double)s->known);
    cJSON_AddBoolToObject(o, "exact", !s->inexact);
    cJSON *dims = cJSON_AddArrayToObject(o, "dimensions");
    for (unsigned i = 0; dims && i < s->n; i++) {
        const sdim_t *d = &s->dim[i];
        if (!d->active) continue;
        cJSON *jd = cJSON_CreateObject();
        if (!jd) break;
        cJSON_AddItemToArray(dims, jd);
        cJSON_AddStringToObject(jd, "dimension", d->name);
        cJSON_AddStringToObject(jd, "kind", d->builtin >= 0 ? "built-in" : "rule");
        if (d->initial >= 0) cJSON_AddStringToObject(jd, "initial", d->slot[d->initial].name);
        else cJSON_AddNullToObject(jd, "initial");
        cJSON *vals = cJSON_AddArrayToObject(jd, "values");
        for (unsigned k = 1; vals && k < d->n; k++) {
            seg_size_row_t r;
            row_of(s, d, k, &r);
            cJSON *v = cJSON_CreateObject();
            if (!v) break;
            cJSON_AddItemToArray(vals, v);
            cJSON_AddStringToObject(v, "value", r.value);
            cJSON_AddNumberToObject(v, "customers", (double)r.customers);
            cJSON_AddNumberToObject(v, "entries_1h", (double)r.entries_1h);
            cJSON_AddNumberToObject(v, "exits_1h", (double)r.exits_1h);
            cJSON_AddNumberToObject(v, "entries_24h", (double)r.entries_24h);
            cJSON_AddNumberToObject(v, "exits_24h", (double)r.exits_24h);
            if (r.customers > 0)
                cJSON_AddNumberToObject(v, "volatility_24h",
                                        (double)(r.entries_24h + r.exits_24h) /
                                            (double)r.customers);
            else
                cJSON_AddNullToObject(v, "volatility_24h");
            cJSON_AddNumberToObject(v, "entries_total", (double)r.entries_total);
            cJSON_AddNumberToObject(v, "exits_total", (double)r.exits_total);
        }
        cJSON *flows = cJSON_AddArrayToObject(jd, "flows_24h");
        for (unsigned a = 0; flows && a < d->n; a++) {
            for (unsigned b = 0; b < d->n; b++) {
                uint64_t h1, h24;
                flow_sums(s, d->flow[(size_t)a * d->width + b], &h1, &h24);
                if (!h24) continue;
                cJSON *f = cJSON_CreateObject();
                if (!f) break;
                cJSON_AddItemToArray(flows, f);
                if (a) cJSON_AddStringToObject(f, "from", d->slot[a].name);
                else cJSON_AddNullToObject(f, "from");
                if (b) cJSON_AddStringToObject(f, "to", d->slot[b].name);
                else cJSON_AddNullToObject(f, "to");
                cJSON_AddNumberToObject(f, "count", (double)h24);
                cJSON_AddNumberToObject(f, "count_1h", (double)h1);
            }
        }
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text && len) *len = strlen(text);
    return text;
}

void seg_sizes_publish(seg_sizes_t *s, seg_metrics_t *m)
{
    char err[256];
    for (unsigned i = 0; i < s->n; i++) {
        sdim_t *d = &s->dim[i];
        for (unsigned k = 1; k < d->n; k++) {
            slot_t *sl = &d->slot[k];
            int64_t n = d->active ? customers(d, (int)k, s->known) : 0;
            seg_label_t l[2] = { { "dimension", d->name }, { "value", sl->name } };
            if (!sl->g_customers && (n != 0 || sl->entries || sl->exits))
                sl->g_customers = seg_metrics_gauge(m, "segd_segment_customers",
                                                    "Customers held per segment value.", l, 2,
                                                    err, sizeof err);
            if (sl->g_customers) seg_gauge_set(sl->g_customers, n);
            if (!sl->c_entries && sl->entries)
                sl->c_entries = seg_metrics_counter(m, "segd_segment_entries_total",
                                                    "Transitions into a segment value.", l, 2,
                                                    err, sizeof err);
            if (sl->c_entries && sl->entries > sl->pub_entries) {
                seg_counter_add(sl->c_entries, sl->entries - sl->pub_entries);
                sl->pub_entries = sl->entries;
            }
            if (!sl->c_exits && sl->exits)
                sl->c_exits = seg_metrics_counter(m, "segd_segment_exits_total",
                                                  "Transitions out of a segment value.", l, 2,
                                                  err, sizeof err);
            if (sl->c_exits && sl->exits > sl->pub_exits) {
                seg_counter_add(sl->c_exits, sl->exits - sl->pub_exits);
                sl->pub_exits = sl->exits;
            }
        }
    }
}

/* A value as the summary prints it: bare if it is a plain word. */
static void print_value(FILE *f, const char *v)
{
    bool plain = *v != '\0';
    for (const char *p = v; *p && plain; p++)
        plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.';
    if (plain) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

void seg_sizes_print(seg_sizes_t *s, FILE *f)
{
    char ts[SEG_TS_BUFSZ] = "-";
    if (s->now != INT64_MIN) seg_ts_format(s->now, ts);
    fprintf(f, "  segment sizes      at %s%s\n", ts, s->inexact ? " (inexact: out of memory)" : "");
    for (unsigned i = 0; i < s->n; i++) {
        const sdim_t *d = &s->dim[i];
        if (!d->active) continue;
        fprintf(f, "    %-24s", d->name);
        for (unsigned k = 1; k < d->n; k++) {
            int64_t n = customers(d, (int)k, s->known);
            if (!n) continue;
            fputc(' ', f);
            print_value(f, d->slot[k].name);
            fprintf(f, "=%lld", (long long)n);
        }
        fputc('\n', f);
    }
}
