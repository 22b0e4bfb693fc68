/*
 * seg_store: customer records plus an id -> index hash table.
 *
 * The index is open addressing with linear probing over 8-byte slots
 * (customer index + 32 bits of the hash), so most probes touch one cache
 * line and only a tag match reads the id itself.
 *
 * Incremental rehash: when the load passes 3/4, a table twice the size is
 * allocated and every later operation migrates a bounded number of old
 * slots into it (and insertions go only to the new table). Lookups check
 * the new table, then the not-yet-migrated old one. A migrated slot is left
 * in place in the old table: the old table is only read and scanned, so
 * leaving copies there cannot create two different answers for one id.
 * Deleting a customer leaves a tombstone in its slot(s), so probe chains
 * stay intact; tombstones count toward the load and vanish at the next
 * rehash, which does not migrate them. A deleted record's index goes on a
 * free list and is reused by the next new customer. (Its id bytes stay in
 * the id arena: eviction is rare next to insertion, and arena chunks
 * never move.)
 *
 * Records and ids are carved out of chunks that never move. Record chunks
 * are 64-byte aligned, so each record is one cache line; ids of up to
 * SEG_CUST_ID_INLINE bytes live in their record and only longer ones take
 * arena bytes. Index tables and record chunks come from seg_hugemem, so
 * with its policy on (replay) they may sit on 2 MiB pages.
 */
#include "state/seg_store.h"
#include "util/seg_hugemem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REC_CHUNK_BITS 16                      /* 65536 records per chunk */
#define REC_CHUNK      (1u << REC_CHUNK_BITS)
#define ID_CHUNK       (1u << 20)              /* 1 MiB of id bytes per chunk */
#define MIGRATE_STEP   64                      /* old slots moved per operation */
#define EMPTY          UINT32_MAX
#define TOMB           (UINT32_MAX - 1)   /* deleted: probing continues past it */

_Static_assert(sizeof(seg_cust_t) == 64, "the customer record is meant to fill one cache line");
_Static_assert(SEG_CUST_LAST_SHIFT(1) == SEG_CUST_LAST_BITS(0) &&
               SEG_CUST_LAST_SHIFT(2) == SEG_CUST_LAST_SHIFT(1) + SEG_CUST_LAST_BITS(1) &&
               SEG_CUST_LAST_SHIFT(3) == SEG_CUST_LAST_SHIFT(2) + SEG_CUST_LAST_BITS(2) &&
               SEG_CUST_LAST_SHIFT(3) + SEG_CUST_LAST_BITS(3) <= 14,
               "last-value slots are adjacent and fit seg_cust_t.last");

typedef struct slot {
    uint32_t idx;      /* customer index, EMPTY if free */
    uint32_t tag;      /* low 32 bits of the id's hash */
} slot_t;

typedef struct table {
    slot_t  *slots;
    uint64_t mask;     /* size - 1; size is a power of two */
    uint64_t used;
} table_t;

struct seg_store {
    table_t      cur, old;         /* old.slots != NULL while rehashing */
    uint64_t     migrate_pos;      /* next old slot to migrate */
    seg_cust_t **chunks;
    uint32_t     nchunks, chunks_cap;
    uint32_t     count;
    char        *id_chunk;         /* current id chunk, bump-allocated */
    size_t       id_left;
    char       **id_chunks;
    size_t       n_id_chunks, id_chunks_cap;
    size_t       bytes;
    seg_winpool_t *winpool;
    uint32_t    *free_idx;         /* indices of deleted records */
    uint32_t     n_free, free_cap;
    uint32_t     high;             /* records ever allocated (iteration bound) */
};

/* 64-bit hash of a short string: 8 bytes at a time with a strong mixer.
 * Ids are short (<= 128 bytes), so a simple word loop beats table-driven
 * hashes; the final mix spreads sequential ids like "c0000001".."c0000002"
 * over the whole table. */
uint64_t seg_store_hash(const char *s, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (len * 0xff51afd7ed558ccdULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
        s += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, len);
    h = (h ^ w) * 0x94d049bb133111ebULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h;
}

static int table_init(table_t *t, uint64_t size)
{
    t->slots = seg_hugemem_alloc(size * sizeof *t->slots, 64);
    if (!t->slots) return -1;
    memset(t->slots, 0xff, size * sizeof *t->slots);
    t->mask = size - 1;
    t->used = 0;
    return 0;
}

seg_store_t *seg_store_new(char *errstr, size_t errstr_size)
{
    seg_store_t *st = calloc(1, sizeof *st);
    if (!st) goto fail;
    if (table_init(&st->cur, 1024) != 0) goto fail;
    st->winpool = seg_winpool_new();
    if (!st->winpool) goto fail;
    return st;
fail:
    snprintf(errstr, errstr_size, "out of memory creating the customer store");
    seg_store_destroy(st);
    return NULL;
}

void seg_store_destroy(seg_store_t *st)
{
    if (!st) return;
    free(st->cur.slots);
    free(st->old.slots);
    for (uint32_t i = 0; i < st->nchunks; i++) free(st->chunks[i]);
    free(st->chunks);
    for (size_t i = 0; i < st->n_id_chunks; i++) free(st->id_chunks[i]);
    free(st->id_chunks);
    free(st->free_idx);
    seg_winpool_destroy(st->winpool);
    free(st);
}

/* Record idx's address (idx < high). */
static seg_cust_t *rec_at(const seg_store_t *st, uint32_t idx)
{
    return &st->chunks[idx >> REC_CHUNK_BITS][idx & (REC_CHUNK - 1)];
}

seg_cust_t *seg_store_get(seg_store_t *st, uint32_t idx)
{
    return rec_at(st, idx);
}

uint32_t seg_store_count(const seg_store_t *st) { return st->count; }

seg_winpool_t *seg_store_winpool(seg_store_t *st) { return st->winpool; }

size_t seg_store_bytes(const seg_store_t *st)
{
    return st->bytes + seg_winpool_bytes(st->winpool) +
           (st->cur.mask + 1) * sizeof(slot_t) +
           (st->old.slots ? (st->old.mask + 1) * sizeof(slot_t) : 0);
}

static int id_equal(seg_store_t *st, uint32_t idx, const char *id, size_t len)
{
    const seg_cust_t *c = seg_store_get(st, idx);
    if (c->id_len != len) return 0;
    if (len >= 8 && len <= SEG_CUST_ID_INLINE) {
        /* The usual id, 8..16 bytes in the record: two words each side,
         * the second overlapping the first, instead of a call. */
        uint64_t a0, a1, b0, b1;
        memcpy(&a0, c->id_.in, 8);
        memcpy(&a1, c->id_.in + len - 8, 8);
        memcpy(&b0, id, 8);
        memcpy(&b1, id + len - 8, 8);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    return memcmp(seg_cust_id(c), id, len) == 0;
}

/* Inlined into its callers: with the id's inline-or-arena choice in
 * id_equal, GCC stopped inlining it on its own, and the call cost the
 * fold thread 7.8M more instructions on 300k events than it saved. */
static inline __attribute__((always_inline)) uint32_t
table_find(seg_store_t *st, const table_t *t, uint64_t h, const char *id, size_t len)
{
    uint64_t i = h & t->mask;
    uint32_t tag = (uint32_t)h;
    for (;;) {
        const slot_t *s = &t->slots[i];
        if (s->idx == EMPTY) return SEG_CUST_NONE;
        if (s->idx != TOMB && s->tag == tag && id_equal(st, s->idx, id, len)) return s->idx;
        i = (i + 1) & t->mask;
    }
}

static void table_put(table_t *t, uint32_t tag, uint32_t idx)
{
    uint64_t i = tag & t->mask;
    while (t->slots[i].idx != EMPTY) i = (i + 1) & t->mask;
    t->slots[i].idx = idx;
    t->slots[i].tag = tag;
    t->used++;
}

/* Moves up to MIGRATE_STEP old slots into cur. The tag holds only 32 bits
 * of the hash, so slots are placed by the tag; tables never exceed 2^32
 * slots, which keeps tag & mask equal to the full hash & mask. */
static void migrate_step(seg_store_t *st)
{
    if (!st->old.slots) return;
    uint64_t size = st->old.mask + 1;
    for (int n = 0; n < MIGRATE_STEP && st->migrate_pos < size; n++, st->migrate_pos++) {
        const slot_t *s = &st->old.slots[st->migrate_pos];
        if (s->idx != EMPTY && s->idx != TOMB) table_put(&st->cur, s->tag, s->idx);
    }
    if (st->migrate_pos == size) {
        free(st->old.slots);
        st->old.slots = NULL;
    }
}

int seg_store_reserve(seg_store_t *st, uint32_t n)
{
    if (st->count != 0 || st->high != 0 || st->old.slots) return 0;
    uint64_t size = st->cur.mask + 1;
    while (((uint64_t)n + 1) * 4 > size * 3) size *= 2;
    if (size == st->cur.mask + 1) return 0;
    table_t bigger;
    if (table_init(&bigger, size) != 0) return -1;
    free(st->cur.slots);
    st->cur = bigger;
    uint32_t chunks = (uint32_t)(((uint64_t)n + REC_CHUNK - 1) >> REC_CHUNK_BITS);
    if (chunks > st->chunks_cap) {
        seg_cust_t **nc = realloc(st->chunks, chunks * sizeof *nc);
        if (!nc) return -1;
        st->chunks = nc;
        st->chunks_cap = chunks;
    }
    return 0;
}

uint32_t seg_store_find(seg_store_t *st, const char *id, size_t len)
{
    uint64_t h = seg_store_hash(id, len);
    uint32_t idx = table_find(st, &st->cur, h, id, len);
    if (idx == SEG_CUST_NONE && st->old.slots)
        idx = table_find(st, &st->old, h, id, len);
    return idx;
}

void seg_store_prefetch_slot(const seg_store_t *st, uint64_t h)
{
    __builtin_prefetch(&st->cur.slots[h & st->cur.mask]);
}

/* A record is one aligned cache line: one prefetch fetches all of it. */
static void prefetch_rec(const seg_store_t *st, uint32_t idx)
{
    __builtin_prefetch(rec_at(st, idx), 1);
}

uint32_t seg_store_prefetch_record(const seg_store_t *st, uint64_t h)
{
    uint64_t i = h & st->cur.mask;
    uint32_t tag = (uint32_t)h;
    /* A few probes at most: a hint that gives up costs nothing but a miss. */
    for (int n = 0; n < 8; n++) {
        const slot_t *s = &st->cur.slots[i];
        if (s->idx == EMPTY) return SEG_CUST_NONE;
        if (s->idx != TOMB && s->tag == tag && s->idx < st->high) {
            prefetch_rec(st, s->idx);
            return s->idx;
        }
        i = (i + 1) & st->cur.mask;
    }
    return SEG_CUST_NONE;
}

void seg_store_prefetch_cust(const seg_store_t *st, uint32_t idx)
{
    if (idx < st->high) prefetch_rec(st, idx);
}

void seg_store_prefetch_id(const seg_store_t *st, uint32_t idx)
{
    if (idx >= st->high) return;
    const seg_cust_t *c = rec_at(st, idx);
    if (c->id_len <= SEG_CUST_ID_INLINE) return;   /* in the record, cached by now */
    __builtin_prefetch(c->id_.out);
    __builtin_prefetch(c->id_.out + c->id_len - 1);   /* ids lie at any offset in the arena */
}

static const char *id_copy(seg_store_t *st, const char *id, size_t len)
{
    if (st->id_left < len) {
        if (st->n_id_chunks == st->id_chunks_cap) {
            size_t ncap = st->id_chunks_cap ? st->id_chunks_cap * 2 : 64;
            char **nc = realloc(st->id_chunks, ncap * sizeof *nc);
            if (!nc) return NULL;
            st->id_chunks = nc;
            st->id_chunks_cap = ncap;
        }
        char *chunk = malloc(ID_CHUNK);
        if (!chunk) return NULL;
        st->id_chunks[st->n_id_chunks++] = chunk;
        st->id_chunk = chunk;
        st->id_left = ID_CHUNK;
        st->bytes += ID_CHUNK;
    }
    char *dst = st->id_chunk;
    memcpy(dst, id, len);
    st->id_chunk += len;
    st->id_left -= len;
    return dst;
}

static seg_cust_t *record_alloc(seg_store_t *st, uint32_t idx)
{
    if ((idx >> REC_CHUNK_BITS) == st->nchunks) {
        if (st->nchunks == st->chunks_cap) {
            uint32_t ncap = st->chunks_cap ? st->chunks_cap * 2 : 64;
            seg_cust_t **nc = realloc(st->chunks, ncap * sizeof *nc);
            if (!nc) return NULL;
            st->chunks = nc;
            st->chunks_cap = ncap;
        }
        seg_cust_t *chunk = seg_hugemem_alloc(REC_CHUNK * sizeof *chunk, 64);
        if (!chunk) return NULL;
        st->chunks[st->nchunks++] = chunk;
        st->bytes += REC_CHUNK * sizeof *chunk;
    }
    return seg_store_get(st, idx);
}

uint32_t seg_store_upsert(seg_store_t *st, const char *id, size_t len, int *created)
{
    return seg_store_upsert_hashed(st, id, len, seg_store_hash(id, len), created);
}

uint32_t seg_store_upsert_hashed(seg_store_t *st, const char *id, size_t len, uint64_t h,
                                 int *created)
{
    *created = 0;
    migrate_step(st);
    uint32_t idx = table_find(st, &st->cur, h, id, len);
    if (idx == SEG_CUST_NONE && st->old.slots)
        idx = table_find(st, &st->old, h, id, len);
    if (idx != SEG_CUST_NONE) return idx;
    if (len == 0 || len > UINT8_MAX || st->high == SEG_CUST_NONE - 1)
        return SEG_CUST_NONE;

    /* Start a rehash at 3/4 load, unless one is still running: then the
     * new table (twice the old) still has room, since migration finishes
     * long before it fills. */
    if (!st->old.slots && (st->cur.used + 1) * 4 > (st->cur.mask + 1) * 3) {
        table_t bigger;
        if (table_init(&bigger, (st->cur.mask + 1) * 2) != 0) return SEG_CUST_NONE;
        st->old = st->cur;
        st->cur = bigger;
        st->migrate_pos = 0;
        migrate_step(st);
    }

    seg_cust_t *c;
    if (st->n_free) {
        idx = st->free_idx[st->n_free - 1];
        c = seg_store_get(st, idx);
    } else {
        idx = st->high;
        c = record_alloc(st, idx);
        if (!c) return SEG_CUST_NONE;
    }
    const char *copy = NULL;
    if (len > SEG_CUST_ID_INLINE && !(copy = id_copy(st, id, len))) return SEG_CUST_NONE;
    memset(c, 0, sizeof *c);
    if (copy) c->id_.out = copy;
    else memcpy(c->id_.in, id, len);
    c->id_len = (uint8_t)len;
    table_put(&st->cur, (uint32_t)h, idx);
    if (st->n_free && st->free_idx[st->n_free - 1] == idx) st->n_free--;
    else st->high++;
    st->count++;
    *created = 1;
    return idx;
}

/* Turns the slot holding idx into a tombstone, if t has one. */
static void table_bury(table_t *t, uint64_t h, uint32_t idx)
{
    uint64_t i = h & t->mask;
    for (;;) {
        slot_t *s = &t->slots[i];
        if (s->idx == EMPTY) return;
        if (s->idx == idx) {
            s->idx = TOMB;
            return;
        }
        i = (i + 1) & t->mask;
    }
}

int seg_store_delete(seg_store_t *st, uint32_t idx)
{
    if (idx >= st->high) return -1;
    seg_cust_t *c = seg_store_get(st, idx);
    if (c->id_len == 0) return -1;
    if (st->n_free == st->free_cap) {
        uint32_t ncap = st->free_cap ? st->free_cap * 2 : 64;
        uint32_t *nf = realloc(st->free_idx, ncap * sizeof *nf);
        if (!nf) return -1;
        st->free_idx = nf;
        st->free_cap = ncap;
    }
    uint64_t h = seg_store_hash(seg_cust_id(c), c->id_len);
    table_bury(&st->cur, h, idx);
    if (st->old.slots) table_bury(&st->old, h, idx);
    seg_window_free(st->winpool, &c->money);
    seg_window_free(st->winpool, &c->complaints);
    memset(c, 0, sizeof *c);
    st->free_idx[st->n_free++] = idx;
    st->count--;
    return 0;
}

uint32_t seg_store_high(const seg_store_t *st) { return st->high; }
