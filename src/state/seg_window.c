/*
 * seg_window: sorted trailing-window entries in pooled, size-classed blocks.
 *
 * Block sizes (entries): every size from 1 to 8, then 10, 12, 14, 16, 20,
 * 24, 28, 32, then 3 * 2^m and 4 * 2^m up to 2^25. Most customers hold a
 * handful of entries, and windows of 3, 5 or 6 entries in power-of-two
 * blocks wasted 13% of all window memory (1M generated customers); larger
 * windows still grow geometrically (by 1.33x-1.5x), so an insert stays
 * amortised O(1).
 *
 * Entries take 8, 12 or 16 bytes, the narrowest that holds every entry of
 * the window (seg_window.h); each width (tier) has its own classes.
 *
 * Blocks of one class are carved out of chunks of at most 64 KiB that
 * never move, so a block stays where it is until its window changes, and
 * growing the pool copies nothing. (With seg_hugemem's policy on, those
 * chunks are in turn carved out of 2 MiB regions advised for huge pages,
 * since a 64 KiB chunk cannot fill a huge page of its own.) Freed blocks
 * go on a per-class free list threaded through the blocks themselves. A
 * window grows by moving to the next class (copying at most its own
 * entries) and moves to the smallest class that holds it once it is half
 * empty, so a customer whose burst of activity has left the window gives
 * memory back.
 */
#include "state/seg_window.h"
#include "util/seg_hugemem.h"

#include <stdlib.h>
#include <string.h>

#define CLASSES     56               /* the last holds 2^25 entries; fits in cls:6 */
#define MAX_ENTRIES (1u << 25)
#define CHUNK_BYTES 65536            /* blocks per chunk: as many as fit, a power of two */
#define FREE_END    UINT32_MAX
#define TIERS       3                /* entries of 8, 12 or 16 bytes */
#define TIER_SHIFT  30               /* in ref: tier << 30 | (slot + 1) */
#define SLOT_LIMIT  ((1u << TIER_SHIFT) - 1)   /* slot + 1 stays below the tier bits */
#define TS8_BITS    36               /* 8 bytes: 0 <= ts < 2^36, val in 28 bits */
#define VAL8_BITS   28
#define TS12_BITS   40               /* 12 bytes: ts in 40 bits, val in 56 */
#define VAL12_BITS  56

typedef struct winclass {
    unsigned char **chunks;
    uint32_t        nchunks, chunks_cap;
    uint32_t        cap;          /* entries per block */
    uint32_t        size;         /* bytes per block */
    uint32_t        shift;        /* blocks per chunk = 1 << shift */
    uint32_t        next;         /* next never-used slot */
    uint32_t        free_head;    /* first free slot, FREE_END if none */
} winclass_t;

struct seg_winpool {
    winclass_t cls[TIERS][CLASSES];   /* [tier][class] */
    size_t     bytes;
    /* With `huge` (seg_hugemem's policy when the pool was made), chunks
     * of at most CHUNK_BYTES come from these regions and are freed with
     * them; larger chunks are allocated, and freed, one by one. */
    int             huge;
    unsigned char **regions;
    uint32_t        nregions, regions_cap;
    size_t          region_left;     /* bytes left in the last region */
};

/* Entries per block of class k (see the top of the file). */
static uint32_t class_cap(uint32_t k)
{
    if (k < 8) return k + 1;                         /* 1 .. 8 */
    if (k < 16) {                                    /* 10 .. 16, 20 .. 32 */
        uint32_t base = 8u << ((k - 8) / 4);
        return base + ((k - 8) % 4 + 1) * (base / 4);
    }
    return (k % 2 ? 4u : 3u) << ((k - 16) / 2 + 4);  /* 48, 64, 96, 128, ... */
}

static size_t entry_size(unsigned tier) { return 8 + 4 * (size_t)tier; }

/* ---- entry encoding ----------------------------------------------------------
 * Words in host byte order (memory only, never persisted); fields two's
 * complement, sign-extended on the way out (ts of tier 0 is unsigned).
 *   tier 0,  8 bytes: a = ts (36 bits) | val (28 bits) << 36
 *   tier 1, 12 bytes: a = ts (40 bits) | val bits 0..23 << 40, b = val bits 24..55
 *   tier 2, 16 bytes: the seg_winentry_t itself. */

static int64_t lim(int bits) { return (int64_t)1 << (bits - 1); }
static uint64_t low(uint64_t v, int bits) { return v & (((uint64_t)1 << bits) - 1); }

/* The smallest tier that holds (ts, val) exactly. */
static unsigned tier_of(int64_t ts, int64_t val)
{
    if (ts >= 0 && ts < 2 * lim(TS8_BITS) && val >= -lim(VAL8_BITS) && val < lim(VAL8_BITS))
        return 0;
    if (ts >= -lim(TS12_BITS) && ts < lim(TS12_BITS) &&
        val >= -lim(VAL12_BITS) && val < lim(VAL12_BITS))
        return 1;
    return 2;
}

/* The low `bits` bits of v as a signed number. */
static inline int64_t sign_extend(uint64_t v, int bits)
{
    uint64_t m = (uint64_t)1 << (bits - 1);
    return (int64_t)(v ^ m) - (int64_t)m;
}

/* Stores (ts, val), which tier_of() says fits `tier`. */
static void put_entry(unsigned char *d, unsigned tier, int64_t ts, int64_t val)
{
    if (tier == 0) {
        uint64_t a = (uint64_t)ts | ((uint64_t)val << TS8_BITS);
        memcpy(d, &a, 8);
    } else if (tier == 1) {
        uint64_t a = low((uint64_t)ts, TS12_BITS) | ((uint64_t)val << TS12_BITS);
        uint32_t b = (uint32_t)((uint64_t)val >> (64 - TS12_BITS));
        memcpy(d, &a, 8);
        memcpy(d + 8, &b, 4);
    } else {
        seg_winentry_t e = { ts, val };
        memcpy(d, &e, sizeof e);
    }
}

static inline int64_t get_ts(const unsigned char *s, unsigned tier)
{
    uint64_t a;
    memcpy(&a, s, 8);
    if (tier == 0) return (int64_t)low(a, TS8_BITS);
    if (tier == 1) return sign_extend(low(a, TS12_BITS), TS12_BITS);
    return (int64_t)a;
}

static inline seg_winentry_t get_entry(const unsigned char *s, unsigned tier)
{
    seg_winentry_t e;
    uint64_t a;
    uint32_t b;
    memcpy(&a, s, 8);
    if (tier == 0) {
        e.ts = (int64_t)low(a, TS8_BITS);
        e.val = sign_extend(a >> TS8_BITS, VAL8_BITS);
    } else if (tier == 1) {
        memcpy(&b, s + 8, 4);
        e.ts = sign_extend(low(a, TS12_BITS), TS12_BITS);
        e.val = sign_extend((a >> TS12_BITS) | ((uint64_t)b << (64 - TS12_BITS)), VAL12_BITS);
    } else {
        memcpy(&e, s, sizeof e);
    }
    return e;
}

/* ---- blocks ------------------------------------------------------------------ */

seg_winpool_t *seg_winpool_new(void)
{
    seg_winpool_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->huge = seg_hugemem_on();
    for (unsigned t = 0; t < TIERS; t++) {
        for (uint32_t k = 0; k < CLASSES; k++) {
            winclass_t *c = &p->cls[t][k];
            c->cap = class_cap(k);
            c->size = c->cap * (uint32_t)entry_size(t);
            while (((uint64_t)2 << c->shift) * c->size <= CHUNK_BYTES) c->shift++;
            c->free_head = FREE_END;
        }
    }
    return p;
}

/* Doubles a full array of chunk or region pointers (16 to start).
 * Returns 0, or -1 with the array unchanged. */
static int grow(unsigned char ***arr, uint32_t *cap)
{
    uint32_t ncap = *cap ? *cap * 2 : 16;
    unsigned char **n = realloc(*arr, ncap * sizeof *n);
    if (!n) return -1;
    *arr = n;
    *cap = ncap;
    return 0;
}

static size_t chunk_bytes(const winclass_t *c)
{
    return ((size_t)1 << c->shift) * c->size;
}

/* A new chunk of n bytes for the pool: see `huge` in struct seg_winpool. */
static unsigned char *chunk_alloc(seg_winpool_t *p, size_t n)
{
    if (!p->huge) return malloc(n);
    if (n > CHUNK_BYTES) return seg_hugemem_alloc(n, 64);
    n = (n + 63) & ~(size_t)63;          /* each chunk on its own lines */
    if (p->region_left < n) {
        if (p->nregions == p->regions_cap && grow(&p->regions, &p->regions_cap) != 0)
            return NULL;
        unsigned char *r = seg_hugemem_alloc(SEG_HUGEMEM_PAGE, 64);
        if (!r) return NULL;
        p->regions[p->nregions++] = r;
        p->region_left = SEG_HUGEMEM_PAGE;
    }
    unsigned char *c = p->regions[p->nregions - 1] + (SEG_HUGEMEM_PAGE - p->region_left);
    p->region_left -= n;
    return c;
}

void seg_winpool_destroy(seg_winpool_t *p)
{
    if (!p) return;
    for (unsigned t = 0; t < TIERS; t++) {
        for (uint32_t k = 0; k < CLASSES; k++) {
            winclass_t *c = &p->cls[t][k];
            if (!(p->huge && chunk_bytes(c) <= CHUNK_BYTES))
                for (uint32_t i = 0; i < c->nchunks; i++) free(c->chunks[i]);
            free(c->chunks);
        }
    }
    for (uint32_t i = 0; i < p->nregions; i++) free(p->regions[i]);
    free(p->regions);
    free(p);
}

static inline unsigned char *block(const seg_winpool_t *p, unsigned tier, uint32_t k,
                                   uint32_t slot)
{
    const winclass_t *c = &p->cls[tier][k];
    return c->chunks[slot >> c->shift] + (size_t)(slot & ((1u << c->shift) - 1)) * c->size;
}

static unsigned w_tier(const seg_window_t *w) { return w->ref >> TIER_SHIFT; }
static uint32_t w_slot(const seg_window_t *w) { return (w->ref & SLOT_LIMIT) - 1; }

static inline unsigned char *w_block(const seg_winpool_t *p, const seg_window_t *w)
{
    return block(p, w_tier(w), w->cls, w_slot(w));
}

void seg_window_prefetch(const seg_winpool_t *p, const seg_window_t *w)
{
    if (!w->ref) return;
    /* The block's first and last line: blocks of a few entries (the
     * common case) span one to three lines, and an insert writes at the
     * end. */
    const unsigned char *b = w_block(p, w);
    __builtin_prefetch(b, 1);
    __builtin_prefetch(b + p->cls[w_tier(w)][w->cls].size - 1, 1);
}

/* Returns a free slot of class k, or FREE_END on allocation failure. */
static uint32_t block_alloc(seg_winpool_t *p, unsigned tier, uint32_t k)
{
    winclass_t *c = &p->cls[tier][k];
    if (c->free_head != FREE_END) {
        uint32_t slot = c->free_head;
        memcpy(&c->free_head, block(p, tier, k, slot), sizeof c->free_head);
        return slot;
    }
    if (c->next >= SLOT_LIMIT - 1) return FREE_END;
    if ((c->next >> c->shift) == c->nchunks) {
        if (c->nchunks == c->chunks_cap && grow(&c->chunks, &c->chunks_cap) != 0)
            return FREE_END;
        size_t sz = chunk_bytes(c);
        unsigned char *chunk = chunk_alloc(p, sz);
        if (!chunk) return FREE_END;
        c->chunks[c->nchunks++] = chunk;
        p->bytes += sz;
    }
    return c->next++;
}

static void block_free(seg_winpool_t *p, unsigned tier, uint32_t k, uint32_t slot)
{
    winclass_t *c = &p->cls[tier][k];
    memcpy(block(p, tier, k, slot), &c->free_head, sizeof c->free_head);
    c->free_head = slot;
}

/* The smallest class whose blocks hold n entries (n <= MAX_ENTRIES). */
static uint32_t class_for(const seg_winpool_t *p, uint32_t n)
{
    uint32_t k = 0;
    while (p->cls[0][k].cap < n) k++;
    return k;
}

/* Moves w's entries into a block of class k and the given tier (never
 * below w's: a window's entries only ever widen). Returns 0 or -1 (w
 * unchanged). */
static int resize(seg_winpool_t *p, seg_window_t *w, unsigned tier, uint32_t k)
{
    uint32_t slot = block_alloc(p, tier, k);
    if (slot == FREE_END) return -1;
    unsigned char *dst = block(p, tier, k, slot);
    if (w->ref) {
        unsigned ot = w_tier(w);
        const unsigned char *src = w_block(p, w);
        if (ot == tier) {
            memcpy(dst, src, w->len * entry_size(tier));
        } else {
            for (uint32_t i = 0; i < w->len; i++) {
                seg_winentry_t e = get_entry(src + i * entry_size(ot), ot);
                put_entry(dst + i * entry_size(tier), tier, e.ts, e.val);
            }
        }
        block_free(p, ot, w->cls, w_slot(w));
    }
    w->ref = (uint32_t)tier << TIER_SHIFT | (slot + 1);
    w->cls = k;
    return 0;
}

/* ---- windows ----------------------------------------------------------------- */

seg_winentry_t seg_window_at(const seg_winpool_t *p, const seg_window_t *w, uint32_t i)
{
    unsigned t = w_tier(w);
    return get_entry(w_block(p, w) + i * entry_size(t), t);
}

uint32_t seg_window_first_after(const seg_winpool_t *p, const seg_window_t *w, int64_t cut)
{
    uint32_t n = w->len;
    if (n == 0) return 0;
    unsigned t = w_tier(w);
    size_t es = entry_size(t);
    const unsigned char *b = w_block(p, w);
    if (get_ts(b, t) > cut) return 0;
    if (get_ts(b + (n - 1) * es, t) <= cut) return n;
    uint32_t lo = 1, hi = n - 1;        /* entry 0 <= cut < entry n-1 */
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (get_ts(b + mid * es, t) > cut) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

uint32_t seg_window_vals(const seg_winpool_t *p, const seg_window_t *w, uint32_t from,
                         int64_t *out, uint32_t max)
{
    if (from >= w->len) return 0;
    uint32_t n = w->len - from < max ? w->len - from : max;
    unsigned t = w_tier(w);
    size_t es = entry_size(t);
    const unsigned char *b = w_block(p, w) + from * es;
    if (t == 0) {
        for (uint32_t i = 0; i < n; i++) {
            uint64_t a;
            memcpy(&a, b + i * es, 8);
            out[i] = sign_extend(a >> TS8_BITS, VAL8_BITS);
        }
    } else {
        for (uint32_t i = 0; i < n; i++) out[i] = get_entry(b + i * es, t).val;
    }
    return n;
}

void seg_window_read(const seg_winpool_t *p, const seg_window_t *w, seg_winentry_t *out)
{
    if (w->len == 0) return;
    unsigned t = w_tier(w);
    const unsigned char *b = w_block(p, w);
    if (t == TIERS - 1) {
        memcpy(out, b, w->len * sizeof *out);
        return;
    }
    for (uint32_t i = 0; i < w->len; i++) out[i] = get_entry(b + i * entry_size(t), t);
}

uint32_t seg_window_cap(const seg_winpool_t *p, const seg_window_t *w)
{
    return w->ref ? p->cls[w_tier(w)][w->cls].cap : 0;
}

unsigned seg_window_entry_bytes(const seg_window_t *w)
{
    return w->ref ? (unsigned)entry_size(w_tier(w)) : 0;
}

int seg_window_insert(seg_winpool_t *p, seg_window_t *w, int64_t ts, int64_t val)
{
    unsigned t = w->ref ? w_tier(w) : 0, need = tier_of(ts, val);
    if (need < t) need = t;
    uint32_t cap = seg_window_cap(p, w);
    if (w->len == cap || need != t) {
        uint32_t k = !w->ref ? 0 : w->len == cap ? w->cls + 1u : w->cls;
        if (k >= CLASSES || resize(p, w, need, k) != 0) return -1;
        t = need;
    }
    size_t es = entry_size(t);
    unsigned char *b = w_block(p, w);
    /* Events mostly arrive in order, so search from the back. */
    uint32_t i = w->len;
    while (i > 0 && get_ts(b + (i - 1) * es, t) > ts) i--;
    memmove(b + (i + 1) * es, b + i * es, (w->len - i) * es);
    put_entry(b + i * es, t, ts, val);
    w->len++;
    return 0;
}

int seg_window_add(seg_winpool_t *p, seg_window_t *w, int64_t ts, int64_t val)
{
    uint32_t i = seg_window_first_after(p, w, ts - 1);
    if (i == w->len || seg_window_at(p, w, i).ts != ts) return seg_window_insert(p, w, ts, val);
    unsigned t = w_tier(w);
    size_t es = entry_size(t);
    unsigned char *b = w_block(p, w);
    seg_winentry_t e = get_entry(b + i * es, t);
    if (__builtin_add_overflow(e.val, val, &e.val)) return -1;
    unsigned need = tier_of(ts, e.val);
    if (need > t) {
        if (resize(p, w, need, w->cls) != 0) return -1;
        t = need;
        es = entry_size(t);
        b = w_block(p, w);
    }
    put_entry(b + i * es, t, ts, e.val);
    return 0;
}

int seg_window_assign(seg_winpool_t *p, seg_window_t *w, const seg_winentry_t *src,
                      uint32_t n)
{
    seg_window_free(p, w);
    if (n == 0) return 0;
    if (n > MAX_ENTRIES) return -1;
    /* What n inserts would build: the smallest class that holds n, in the
     * narrowest tier that holds every entry. */
    unsigned t = 0;
    for (uint32_t i = 0; i < n && t < TIERS - 1; i++) {
        unsigned et = tier_of(src[i].ts, src[i].val);
        if (et > t) t = et;
    }
    if (resize(p, w, t, class_for(p, n)) != 0) return -1;
    unsigned char *b = w_block(p, w);
    if (t == TIERS - 1) {
        memcpy(b, src, (size_t)n * sizeof *src);
    } else {
        for (uint32_t i = 0; i < n; i++) put_entry(b + i * entry_size(t), t, src[i].ts, src[i].val);
    }
    w->len = n;
    return 0;
}

void seg_window_expire(seg_winpool_t *p, seg_window_t *w, int64_t cutoff)
{
    if (w->len == 0) return;
    unsigned t = w_tier(w);
    size_t es = entry_size(t);
    unsigned char *b = w_block(p, w);
    uint32_t n = 0;
    while (n < w->len && get_ts(b + n * es, t) <= cutoff) n++;
    if (n == 0) return;
    w->len -= n;
    if (w->len == 0) {
        seg_window_free(p, w);
        return;
    }
    memmove(b, b + n * es, w->len * es);
    /* Half empty: move to the smallest class that holds the rest. Growing
     * back takes at least one insert per resize, shrinking again half the
     * entries leaving, so resizes stay amortised O(1) per entry. */
    if (w->len <= seg_window_cap(p, w) / 2)
        (void)resize(p, w, t, class_for(p, w->len)); /* on failure keep the larger block */
}

void seg_window_expire_sum(seg_winpool_t *p, seg_window_t *w, int64_t cutoff,
                           int64_t *n_odd, int64_t *sum_half)
{
    int64_t odd = 0, half = 0;
    uint32_t gone = 0;
    if (w->len) {
        /* One pass: the entries that leave are a prefix (sorted by ts);
         * the rest are summed. Most calls drop nothing, and then the
         * block is found once and each entry read once. */
        unsigned t = w_tier(w);
        size_t es = entry_size(t);
        const unsigned char *b = w_block(p, w);
        for (uint32_t i = 0; i < w->len; i++) {
            seg_winentry_t e = get_entry(b + i * es, t);
            if (e.ts <= cutoff) {
                gone++;
                continue;
            }
            odd += e.val & 1;
            half += (e.val - (e.val & 1)) / 2;
        }
        if (gone) seg_window_expire(p, w, cutoff);
    }
    *n_odd = odd;
    *sum_half = half;
}

int64_t seg_window_first_ts(const seg_winpool_t *p, const seg_window_t *w)
{
    return get_ts(w_block(p, w), w_tier(w));
}

void seg_window_free(seg_winpool_t *p, seg_window_t *w)
{
    if (w->ref) block_free(p, w_tier(w), w->cls, w_slot(w));
    w->ref = 0;
    w->len = 0;
    w->cls = 0;
}

size_t seg_winpool_bytes(const seg_winpool_t *p)
{
    return p->bytes;
}
