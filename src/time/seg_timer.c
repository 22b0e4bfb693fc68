/*
 * seg_timer: a timing wheel of 68-minute buckets in front of a sorted run.
 *
 * Why not a heap (what this was until 2026-11-29): with a million
 * customers every deadline that fired sifted through ~10 levels of a 12 MB
 * heap, one cache miss per level, and the heap was a fifth of replay time
 * once the event path was prefetched. Here:
 *
 *   - key[idx] holds each customer's deadline. It is the only per-customer
 *     field, and the truth: an entry anywhere else is live only while it
 *     agrees with key[] (clearing or moving a deadline just rewrites key[],
 *     and the entries it leaves behind are dropped when they are reached).
 *   - Deadlines in the future go to the wheel: bucket b = when >> BUCKET_BITS
 *     (68 min), slot b % NSLOTS (8192 slots, 388 days a turn; later rounds
 *     wait in their slot). A wheel entry is just the customer index, 4
 *     bytes, appended to its slot's array: O(1), no search.
 *   - When time reaches a bucket, its live entries are sorted by deadline
 *     (radix sort on the offset within the bucket) into the run, which
 *     then pops in order from the front: a sequential read, so the
 *     customers due next are known and can be prefetched
 *     (seg_timer_upcoming).
 *   - A deadline set into a bucket already loaded (a customer whose clock
 *     runs behind, or a deadline minutes away) goes to a small side heap;
 *     pops take the smaller of the run's head and the heap's top.
 *
 * Memory: 8 bytes per customer (key[]), ~4-8 per pending deadline in the
 * wheel, and a fixed 128 KiB of slot headers once the first deadline is
 * set (segd runs one engine, so one timer, per assigned partition).
 *
 * Invariant: every live key in a bucket > cur has an entry in its slot
 * (or, during a bulk load, in the pending list);
 * every live key in a bucket <= cur has an entry (when, idx) in the run or
 * the side heap. Duplicates are harmless: popping a customer clears its
 * key, which kills any other copy.
 */
#include "time/seg_timer.h"

#include <stdlib.h>
#include <string.h>

#define NONE        INT64_MAX
#define BUCKET_BITS 12                  /* 4096 s per bucket */
#define NSLOTS      8192                /* 388 days per turn of the wheel */
#define SIDE_ARITY  4

typedef struct __attribute__((packed)) entry {
    int64_t  when;
    uint32_t idx;
} entry_t;

typedef struct wslot {
    uint32_t *v;
    uint32_t  n, cap;
} wslot_t;

struct seg_timer {
    int64_t  *key;         /* key[idx]: deadline, NONE if none */
    size_t    key_cap;
    size_t    key_init;    /* key[0 .. key_init) are set; the rest is
                            * capacity never written, so it costs no RSS */
    size_t    live;        /* customers with a deadline */

    wslot_t  *wheel;       /* NSLOTS slots, allocated on first use */
    size_t    wheel_n;     /* entries in the wheel, live or not */
    size_t    wheel_bytes;
    uint32_t  slot_start;  /* first capacity of a slot's array */
    uint32_t *pending;     /* bulk load (after seg_timer_reserve): customers
                            * whose wheel entry is still to be placed */
    size_t    pending_n, pending_cap;
    int64_t   cur;         /* buckets <= cur are loaded (run/side heap) */
    int       started;     /* cur is meaningful */

    entry_t  *run;         /* sorted entries of loaded buckets */
    size_t    run_pos, run_n, run_cap;
    entry_t  *tmp;         /* radix sort scratch, run_cap entries */

    entry_t  *side;        /* min-heap of late-set entries */
    size_t    side_n, side_cap;
};

static int64_t bucket_of(int64_t when) { return when >> BUCKET_BITS; }

seg_timer_t *seg_timer_new(void)
{
    return calloc(1, sizeof(seg_timer_t));
}

void seg_timer_destroy(seg_timer_t *t)
{
    if (!t) return;
    if (t->wheel)
        for (size_t i = 0; i < NSLOTS; i++) free(t->wheel[i].v);
    free(t->wheel);
    free(t->key);
    free(t->run);
    free(t->tmp);
    free(t->side);
    free(t->pending);
    free(t);
}

static int ensure_key(seg_timer_t *t, uint32_t idx)
{
    if (idx < t->key_init) return 0;
    if (idx >= t->key_cap) {
        size_t ncap = t->key_cap ? t->key_cap : 1024;
        while (ncap <= idx) ncap *= 2;
        int64_t *nk = realloc(t->key, ncap * sizeof *nk);
        if (!nk) return -1;
        t->key = nk;
        t->key_cap = ncap;
    }
    /* Customer indexes are dense and grow one by one. */
    for (size_t i = t->key_init; i <= idx; i++) t->key[i] = NONE;
    t->key_init = (size_t)idx + 1;
    return 0;
}

static int64_t key_of(const seg_timer_t *t, uint32_t idx)
{
    return idx < t->key_init ? t->key[idx] : NONE;
}

int seg_timer_reserve(seg_timer_t *t, uint32_t n)
{
    /* A loaded snapshot's deadlines spread over the months ahead: about
     * n / NSLOTS per bucket, plus a quarter for the uneven ones. */
    uint64_t share = (uint64_t)n / NSLOTS;
    t->slot_start = (uint32_t)(share + share / 4 > 8 ? share + share / 4 : 8);
    if (t->live == 0 && !t->pending) {
        t->pending = malloc((size_t)n * sizeof *t->pending);
        t->pending_cap = t->pending ? n : 0;
    }
    if (n <= t->key_cap) return 0;
    int64_t *nk = realloc(t->key, (size_t)n * sizeof *nk);
    if (!nk) return -1;
    t->key = nk;
    t->key_cap = n;
    return 0;
}

/* ---- side heap ------------------------------------------------------------- */

/* Deadlines are ordered by instant, then by customer index: customers due
 * in the same second fire in a fixed order (the order they first
 * appeared), whatever order their timers were set in, so a restart from a
 * snapshot or a different set of rules with the same instants publishes
 * the same bytes. */
static int before(const entry_t *a, const entry_t *b)
{
    return a->when < b->when || (a->when == b->when && a->idx < b->idx);
}

static void side_up(entry_t *h, size_t i)
{
    entry_t e = h[i];
    while (i > 0) {
        size_t parent = (i - 1) / SIDE_ARITY;
        if (!before(&e, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = e;
}

static void side_down(entry_t *h, size_t n, size_t i)
{
    entry_t e = h[i];
    for (;;) {
        size_t first = i * SIDE_ARITY + 1;
        if (first >= n) break;
        size_t last = first + SIDE_ARITY < n ? first + SIDE_ARITY : n;
        size_t best = first;
        for (size_t c = first + 1; c < last; c++)
            if (before(&h[c], &h[best])) best = c;
        if (!before(&h[best], &e)) break;
        h[i] = h[best];
        i = best;
    }
    h[i] = e;
}

static int side_push(seg_timer_t *t, int64_t when, uint32_t idx)
{
    if (t->side_n == t->side_cap) {
        size_t ncap = t->side_cap ? t->side_cap * 2 : 64;
        entry_t *ns = realloc(t->side, ncap * sizeof *ns);
        if (!ns) return -1;
        t->side = ns;
        t->side_cap = ncap;
    }
    t->side[t->side_n] = (entry_t){ when, idx };
    side_up(t->side, t->side_n++);
    return 0;
}

static void side_pop(seg_timer_t *t)
{
    if (--t->side_n > 0) {
        t->side[0] = t->side[t->side_n];
        side_down(t->side, t->side_n, 0);
    }
}

/* ---- wheel ----------------------------------------------------------------- */

static int wheel_push(seg_timer_t *t, int64_t b, uint32_t idx)
{
    if (!t->wheel) {
        t->wheel = calloc(NSLOTS, sizeof *t->wheel);
        if (!t->wheel) return -1;
        t->wheel_bytes = NSLOTS * sizeof *t->wheel;
    }
    wslot_t *s = &t->wheel[(uint64_t)b & (NSLOTS - 1)];
    if (s->n == s->cap) {
        uint32_t ncap = s->cap ? s->cap * 2 : t->slot_start ? t->slot_start : 8;
        uint32_t *nv = realloc(s->v, ncap * sizeof *nv);
        if (!nv) return -1;
        t->wheel_bytes += (ncap - s->cap) * sizeof *nv;
        s->v = nv;
        s->cap = ncap;
    }
    s->v[s->n++] = idx;
    t->wheel_n++;
    return 0;
}

static int run_reserve(seg_timer_t *t, size_t n)
{
    if (n <= t->run_cap) return 0;
    size_t ncap = t->run_cap ? t->run_cap : 256;
    while (ncap < n) ncap *= 2;
    entry_t *nr = malloc(ncap * sizeof *nr);
    entry_t *nt = malloc(ncap * sizeof *nt);
    if (!nr || !nt) {
        free(nr);
        free(nt);
        return -1;
    }
    free(t->run);
    free(t->tmp);
    t->run = nr;
    t->tmp = nt;
    t->run_cap = ncap;
    return 0;
}

static int by_idx(const void *x, const void *y)
{
    uint32_t a = ((const entry_t *)x)->idx, b = ((const entry_t *)y)->idx;
    return (a > b) - (a < b);
}

/* Orders each run of equal instants by customer index (see before()). */
static void ties_by_idx(entry_t *a, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && a[j].when == a[i].when) j++;
        if (j - i > 16) {
            qsort(a + i, j - i, sizeof *a, by_idx);
        } else {
            for (size_t k = i + 1; k < j; k++) {
                entry_t e = a[k];
                size_t m = k;
                while (m > i && a[m - 1].idx > e.idx) {
                    a[m] = a[m - 1];
                    m--;
                }
                a[m] = e;
            }
        }
        i = j;
    }
}

/* Sorts run[0..n) by (when, idx); all whens share one bucket, so the
 * offset in the bucket (BUCKET_BITS bits) is the whole instant: two
 * counting passes of 6 bits, or insertion sort for a handful; then each
 * run of equal instants by index. */
static void run_sort(seg_timer_t *t, size_t n)
{
    entry_t *a = t->run, *b = t->tmp;
    if (n <= 24) {
        for (size_t i = 1; i < n; i++) {
            entry_t e = a[i];
            size_t j = i;
            while (j > 0 && before(&e, &a[j - 1])) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = e;
        }
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        unsigned shift = (unsigned)pass * (BUCKET_BITS / 2);
        size_t count[1u << (BUCKET_BITS / 2)] = { 0 };
        for (size_t i = 0; i < n; i++)
            count[((uint64_t)a[i].when >> shift) & ((1u << (BUCKET_BITS / 2)) - 1)]++;
        size_t sum = 0;
        for (size_t d = 0; d < (1u << (BUCKET_BITS / 2)); d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            b[count[((uint64_t)a[i].when >> shift) & ((1u << (BUCKET_BITS / 2)) - 1)]++] = a[i];
        entry_t *x = a;
        a = b;
        b = x;
    }
    /* two passes: the sorted entries are back in t->run */
    ties_by_idx(t->run, n);
}

/* Smallest bucket holding a live key in the wheel (a full scan; only used
 * to skip a long empty stretch), or INT64_MAX. */
static int64_t wheel_min_bucket(const seg_timer_t *t)
{
    int64_t best = INT64_MAX;
    if (!t->wheel) return best;
    for (size_t s = 0; s < NSLOTS; s++)
        for (uint32_t i = 0; i < t->wheel[s].n; i++) {
            int64_t k = key_of(t, t->wheel[s].v[i]);
            if (k != NONE && bucket_of(k) > t->cur && bucket_of(k) < best) best = bucket_of(k);
        }
    return best;
}

/* Loads bucket cur + 1 into the (empty) run, if it starts at or before
 * limit. Returns 1 if it moved on (the run may still be empty), 0 if not,
 * -1 on allocation failure (nothing changed). */
static int load_next(seg_timer_t *t, int64_t limit)
{
    int64_t b = t->cur + 1;
    if (b > bucket_of(limit)) return 0;
    t->run_pos = t->run_n = 0;
    if (!t->wheel || t->wheel_n == 0) {
        /* Nothing in the wheel: every bucket up to limit's is empty. */
        t->cur = bucket_of(limit);
        return 1;
    }
    wslot_t *s = &t->wheel[(uint64_t)b & (NSLOTS - 1)];
    if (run_reserve(t, s->n) != 0) return -1;
    uint32_t kept = 0;
    size_t n = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (i + 8 < s->n && s->v[i + 8] < t->key_init) __builtin_prefetch(&t->key[s->v[i + 8]]);
        uint32_t idx = s->v[i];
        int64_t k = key_of(t, idx);
        if (k == NONE) continue;
        int64_t kb = bucket_of(k);
        if (kb == b) t->run[n++] = (entry_t){ k, idx };
        else if (kb > b && ((uint64_t)kb & (NSLOTS - 1)) == ((uint64_t)b & (NSLOTS - 1)))
            s->v[kept++] = idx;          /* a later turn of the wheel */
        /* else: the key moved or was loaded already; this copy is dead */
    }
    t->wheel_n -= s->n - kept;
    s->n = kept;
    if (kept == 0) {
        t->wheel_bytes -= s->cap * sizeof *s->v;
        free(s->v);
        s->v = NULL;
        s->cap = 0;
    }
    t->cur = b;
    run_sort(t, n);
    t->run_n = n;
    return 1;
}

uint32_t seg_timer_upcoming(const seg_timer_t *t, size_t k)
{
    return t->run_pos + k < t->run_n ? t->run[t->run_pos + k].idx : UINT32_MAX;
}

void seg_timer_prefetch(const seg_timer_t *t, uint32_t idx)
{
    if (idx < t->key_init) __builtin_prefetch(&t->key[idx]);
}

/* ---- API ------------------------------------------------------------------- */

int seg_timer_set(seg_timer_t *t, uint32_t idx, int64_t when)
{
    if (when == NONE) {
        seg_timer_clear(t, idx);
        return 0;
    }
    if (ensure_key(t, idx) != 0) return -1;
    int64_t old = t->key[idx];
    int64_t nb = bucket_of(when);
    int empty_front = t->run_pos == t->run_n && t->side_n == 0;
    if (!t->started || (nb <= t->cur && empty_front)) {
        /* Nothing loaded is pending: the front can move back to here. */
        t->cur = nb - 1;
        t->started = 1;
    }
    int rc = 0;
    if (nb <= t->cur) rc = side_push(t, when, idx);
    else if (old != NONE && bucket_of(old) == nb) rc = 0;   /* its entry is there */
    else if (t->pending_n < t->pending_cap) t->pending[t->pending_n++] = idx;
    else rc = wheel_push(t, nb, idx);
    if (rc != 0) return -1;
    if (old == NONE) t->live++;
    t->key[idx] = when;
    return 0;
}

void seg_timer_clear(seg_timer_t *t, uint32_t idx)
{
    if (idx >= t->key_init || t->key[idx] == NONE) return;
    t->key[idx] = NONE;
    t->live--;
}

/* Drops dead entries from the front of the run and the top of the side
 * heap; returns the earliest live one (NULL if both are empty). */
static const entry_t *front(seg_timer_t *t, int *from_side)
{
    while (t->run_pos < t->run_n &&
           key_of(t, t->run[t->run_pos].idx) != t->run[t->run_pos].when)
        t->run_pos++;
    while (t->side_n > 0 && key_of(t, t->side[0].idx) != t->side[0].when) side_pop(t);
    const entry_t *r = t->run_pos < t->run_n ? &t->run[t->run_pos] : NULL;
    const entry_t *h = t->side_n > 0 ? &t->side[0] : NULL;
    if (h && (!r || before(h, r))) {
        *from_side = 1;
        return h;
    }
    *from_side = 0;
    return r;
}

/* Loads buckets, up to limit's, until the run or the side heap holds an
 * entry. Returns 1 if one does, 0 if no bucket up to limit has any (or on
 * allocation failure: the deadlines then stay pending, and a later call
 * tries again). */
static int fill_front(seg_timer_t *t, int64_t limit)
{
    size_t empty = 0;
    while (t->run_pos == t->run_n && t->side_n == 0) {
        if (t->live == 0) return 0;
        if (empty == NSLOTS) {
            /* A whole turn of the wheel held nothing due: jump to the
             * first live bucket instead of walking to it an hour at a
             * time (deadlines years away). */
            int64_t mb = wheel_min_bucket(t);
            if (mb == INT64_MAX) return 0;
            int64_t to = mb - 1 < bucket_of(limit) ? mb - 1 : bucket_of(limit);
            if (to > t->cur) t->cur = to;
            empty = 0;
        }
        if (load_next(t, limit) <= 0) return 0;
        if (t->run_n == 0) empty++;
    }
    return 1;
}

/* Ends a bulk load: places the entries set since seg_timer_reserve. A
 * snapshot's customers come in index order with deadlines spread over
 * months, so placing each as it came meant a cache miss on one of 8192
 * bucket tails between every two customers, ~6% of a 10M-customer load;
 * here the same appends run back to back. An entry that cannot be placed
 * (no memory) stays pending and is retried by the next call. */
static int flush_pending(seg_timer_t *t)
{
    size_t i = 0;
    for (; i < t->pending_n; i++) {
        uint32_t idx = t->pending[i];
        int64_t k = key_of(t, idx);
        if (k == NONE || bucket_of(k) <= t->cur) continue;   /* moved since */
        if (wheel_push(t, bucket_of(k), idx) != 0) break;
    }
    if (i < t->pending_n) {
        memmove(t->pending, t->pending + i, (t->pending_n - i) * sizeof *t->pending);
        t->pending_n -= i;
        return -1;
    }
    free(t->pending);
    t->pending = NULL;
    t->pending_n = t->pending_cap = 0;
    return 0;
}

int seg_timer_settle(seg_timer_t *t)
{
    return t->pending ? flush_pending(t) : 0;
}

int seg_timer_pop_due(seg_timer_t *t, int64_t limit, uint32_t *idx, int64_t *when)
{
    if (t->pending && flush_pending(t) != 0) return 0;
    for (;;) {
        int from_side;
        const entry_t *e = front(t, &from_side);
        if (!e) {
            if (!fill_front(t, limit)) return 0;
            continue;
        }
        if (e->when > limit) return 0;
        *idx = e->idx;
        *when = e->when;
        if (from_side) {
            side_pop(t);
        } else {
            t->run_pos++;
            /* The run is read in order: warm the key the pop after next
             * few will check. */
            if (t->run_pos + 8 < t->run_n) seg_timer_prefetch(t, t->run[t->run_pos + 8].idx);
        }
        t->key[*idx] = NONE;
        t->live--;
        return 1;
    }
}

int64_t seg_timer_when(const seg_timer_t *t, uint32_t idx)
{
    return key_of(t, idx);
}

size_t seg_timer_count(const seg_timer_t *t) { return t->live; }

/* What next() answers when it cannot load the front (no memory): the
 * start of the first bucket not loaded, a lower bound of every deadline
 * still in the wheel. */
static int64_t unloaded_bound(const seg_timer_t *t)
{
    return t->live ? (t->cur + 1) * (1 << BUCKET_BITS) : NONE;
}

int64_t seg_timer_next(seg_timer_t *t)
{
    if (t->pending && flush_pending(t) != 0) return unloaded_bound(t);
    for (;;) {
        int from_side;
        const entry_t *e = front(t, &from_side);
        if (e) return e->when;
        /* Loading buckets early changes no answer: it only moves work
         * forward. */
        if (!fill_front(t, INT64_MAX - 1)) return unloaded_bound(t);
    }
}

size_t seg_timer_bytes(const seg_timer_t *t)
{
    return t->key_cap * sizeof *t->key + t->wheel_bytes + t->pending_cap * sizeof *t->pending +
           t->run_cap * 2 * sizeof(entry_t) + t->side_cap * sizeof(entry_t);
}
