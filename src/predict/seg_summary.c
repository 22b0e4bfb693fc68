/*
 * seg_summary: see seg_summary.h. Ids are interned in an open-addressing
 * table over one growing byte arena; purchases are kept as (customer, ts,
 * amount) and sorted once by customer and time at build.
 */
#include "predict/seg_summary.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/seg_money.h"

typedef struct purchase {
    uint32_t cust;
    int64_t  ts;
    int64_t  amount;
} purchase_t;

struct seg_summary {
    char       *arena;           /* ids, back to back */
    size_t      arena_len, arena_cap;
    size_t     *id_off;          /* per customer */
    uint32_t   *id_len;
    uint32_t    ncust, cust_cap;
    uint32_t   *table;           /* customer index + 1; 0 empty */
    uint32_t    table_cap;       /* power of two */
    purchase_t *p;
    size_t      np, p_cap;
    seg_summary_cust_t *out;
};

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static bool grow(void **ptr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *n = realloc(*ptr, nc * elem);
    if (!n) return false;
    *ptr = n;
    *cap = nc;
    return true;
}

seg_summary_t *seg_summary_new(void)
{
    seg_summary_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->table_cap = 1024;
    s->table = calloc(s->table_cap, sizeof *s->table);
    if (!s->table) {
        free(s);
        return NULL;
    }
    return s;
}

void seg_summary_destroy(seg_summary_t *s)
{
    if (!s) return;
    free(s->arena);
    free(s->id_off);
    free(s->id_len);
    free(s->table);
    free(s->p);
    free(s->out);
    free(s);
}

static bool rehash(seg_summary_t *s)
{
    uint32_t cap = s->table_cap * 2;
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t) return false;
    for (uint32_t c = 0; c < s->ncust; c++) {
        uint64_t i = hash(s->arena + s->id_off[c], s->id_len[c]) & (cap - 1);
        while (t[i]) i = (i + 1) & (cap - 1);
        t[i] = c + 1;
    }
    free(s->table);
    s->table = t;
    s->table_cap = cap;
    return true;
}

/* The index of id, interning it if new; -1 when out of memory. */
static long intern(seg_summary_t *s, const char *id, size_t len)
{
    uint64_t i = hash(id, len) & (s->table_cap - 1);
    for (; s->table[i]; i = (i + 1) & (s->table_cap - 1)) {
        uint32_t c = s->table[i] - 1;
        if (s->id_len[c] == len && memcmp(s->arena + s->id_off[c], id, len) == 0) return c;
    }
    if (s->ncust == UINT32_MAX - 1) return -1;
    size_t cc = s->cust_cap;
    if (!grow((void **)&s->id_off, &cc, s->ncust + 1, sizeof *s->id_off)) return -1;
    cc = s->cust_cap;
    if (!grow((void **)&s->id_len, &cc, s->ncust + 1, sizeof *s->id_len)) return -1;
    s->cust_cap = (uint32_t)cc;
    if (!grow((void **)&s->arena, &s->arena_cap, s->arena_len + len + 1, 1)) return -1;
    memcpy(s->arena + s->arena_len, id, len);
    uint32_t c = s->ncust++;
    s->id_off[c] = s->arena_len;
    s->id_len[c] = (uint32_t)len;
    s->arena_len += len;
    s->table[i] = c + 1;
    /* load factor at most 1/2 */
    if ((uint64_t)s->ncust * 2 > s->table_cap && !rehash(s)) {
        s->table[i] = 0;
        s->ncust--;
        return -1;
    }
    return c;
}

int seg_summary_add(seg_summary_t *s, const char *id, size_t id_len, int64_t ts, int64_t amount)
{
    long c = intern(s, id, id_len);
    if (c < 0) return -1;
    if (!grow((void **)&s->p, &s->p_cap, s->np + 1, sizeof *s->p)) return -1;
    s->p[s->np++] = (purchase_t){ .cust = (uint32_t)c, .ts = ts, .amount = amount };
    return 0;
}

size_t seg_summary_purchases(const seg_summary_t *s)
{
    return s->np;
}

static int by_cust_ts(const void *a, const void *b)
{
    const purchase_t *x = a, *y = b;
    if (x->cust != y->cust) return x->cust < y->cust ? -1 : 1;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

/* floor(ts / 86400): the UTC day, also before 1970 */
static int64_t day_of(int64_t ts)
{
    int64_t d = ts / 86400;
    return ts % 86400 < 0 ? d - 1 : d;
}

long seg_summary_build(seg_summary_t *s, int64_t until, const seg_summary_cust_t **out)
{
    free(s->out);
    s->out = NULL;
    if (s->np) qsort(s->p, s->np, sizeof *s->p, by_cust_ts);
    if (s->ncust) {
        s->out = malloc((size_t)s->ncust * sizeof *s->out);
        if (!s->out) return -1;
    }
    long n = 0;
    for (size_t i = 0; i < s->np;) {
        uint32_t c = s->p[i].cust;
        size_t j = i;
        while (j < s->np && s->p[j].cust == c) j++;
        /* purchases i..j-1 of customer c, in time order */
        if (s->p[i].ts <= until) {
            seg_summary_cust_t *o = &s->out[n++];
            o->id = s->arena + s->id_off[c];
            o->id_len = s->id_len[c];
            o->first = o->last = s->p[i].ts;
            int64_t d0 = day_of(o->first), prev = d0;
            double repeat = 0;   /* units; a double cannot overflow */
            uint32_t x = 0;
            for (size_t k = i; k < j && s->p[k].ts <= until; k++) {
                int64_t d = day_of(s->p[k].ts);
                o->last = s->p[k].ts;
                if (d == d0) continue;
                if (d != prev) x++;
                prev = d;
                repeat += (double)s->p[k].amount;
            }
            o->x = x;
            o->mbar = x ? repeat / (double)SEG_MONEY_SCALE / x : 0;
        }
        i = j;
    }
    /* Customers come out in index order, which is the order first seen. */
    *out = s->out;
    return n;
}
