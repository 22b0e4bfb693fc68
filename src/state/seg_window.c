/*
 * seg_window: sorted trailing-window entries in pooled power-of-two blocks.
 *
 * A block of class k holds 2^k entries. Blocks of one class are carved out
 * of chunks of about 64 KiB that never move, so an entry pointer is stable
 * until its window changes, and growing the pool copies nothing. Freed
 * blocks go on a per-class free list threaded through the blocks
 * themselves. A window grows by moving to the next class (copying at most
 * its own entries) and shrinks back when it is a quarter full, so a
 * customer whose burst of activity has left the window gives memory back.
 */
#include "state/seg_window.h"

#include <stdlib.h>
#include <string.h>

#define CLASSES       26           /* up to 2^25 entries in one window */
#define SLOT_BITS     27
#define SLOT_MASK     ((1u << SLOT_BITS) - 1)
#define CHUNK_ENTRIES 4096         /* 64 KiB of entries per chunk */
#define FREE_END      UINT32_MAX

typedef struct winclass {
    seg_winentry_t **chunks;
    uint32_t         nchunks, chunks_cap;
    uint32_t         per_chunk;    /* blocks per chunk */
    uint32_t         next;         /* next never-used slot */
    uint32_t         free_head;    /* first free slot, FREE_END if none */
} winclass_t;

struct seg_winpool {
    winclass_t cls[CLASSES];
    size_t     bytes;
};

seg_winpool_t *seg_winpool_new(void)
{
    seg_winpool_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    for (int k = 0; k < CLASSES; k++) {
        uint32_t cap = 1u << k;
        p->cls[k].per_chunk = cap >= CHUNK_ENTRIES ? 1 : CHUNK_ENTRIES / cap;
        p->cls[k].free_head = FREE_END;
    }
    return p;
}

void seg_winpool_destroy(seg_winpool_t *p)
{
    if (!p) return;
    for (int k = 0; k < CLASSES; k++) {
        for (uint32_t i = 0; i < p->cls[k].nchunks; i++) free(p->cls[k].chunks[i]);
        free(p->cls[k].chunks);
    }
    free(p);
}

static seg_winentry_t *block(const seg_winpool_t *p, uint32_t k, uint32_t slot)
{
    const winclass_t *c = &p->cls[k];
    return c->chunks[slot / c->per_chunk] + (size_t)(slot % c->per_chunk) * (1u << k);
}

/* Returns a free slot of class k, or FREE_END on allocation failure. */
static uint32_t block_alloc(seg_winpool_t *p, uint32_t k)
{
    winclass_t *c = &p->cls[k];
    if (c->free_head != FREE_END) {
        uint32_t slot = c->free_head;
        memcpy(&c->free_head, block(p, k, slot), sizeof c->free_head);
        return slot;
    }
    if (c->next > SLOT_MASK) return FREE_END;
    if (c->next == c->nchunks * c->per_chunk) {
        if (c->nchunks == c->chunks_cap) {
            uint32_t ncap = c->chunks_cap ? c->chunks_cap * 2 : 16;
            seg_winentry_t **nc = realloc(c->chunks, ncap * sizeof *nc);
            if (!nc) return FREE_END;
            c->chunks = nc;
            c->chunks_cap = ncap;
        }
        size_t sz = (size_t)c->per_chunk * (1u << k) * sizeof(seg_winentry_t);
        seg_winentry_t *chunk = malloc(sz);
        if (!chunk) return FREE_END;
        c->chunks[c->nchunks++] = chunk;
        p->bytes += sz;
    }
    return c->next++;
}

static void block_free(seg_winpool_t *p, uint32_t k, uint32_t slot)
{
    winclass_t *c = &p->cls[k];
    memcpy(block(p, k, slot), &c->free_head, sizeof c->free_head);
    c->free_head = slot;
}

static uint32_t ref_class(uint32_t ref) { return (ref >> SLOT_BITS) - 1; }
static uint32_t ref_slot(uint32_t ref)  { return ref & SLOT_MASK; }

const seg_winentry_t *seg_window_entries(const seg_winpool_t *p, const seg_window_t *w)
{
    if (w->ref == 0) return NULL;
    return block(p, ref_class(w->ref), ref_slot(w->ref));
}

/* Moves w's entries into a block of class k. Returns 0 or -1. */
static int resize(seg_winpool_t *p, seg_window_t *w, uint32_t k)
{
    uint32_t slot = block_alloc(p, k);
    if (slot == FREE_END) return -1;
    seg_winentry_t *dst = block(p, k, slot);
    if (w->ref) {
        uint32_t ok = ref_class(w->ref), os = ref_slot(w->ref);
        memcpy(dst, block(p, ok, os), w->len * sizeof *dst);
        block_free(p, ok, os);
    }
    w->ref = ((k + 1) << SLOT_BITS) | slot;
    return 0;
}

int seg_window_insert(seg_winpool_t *p, seg_window_t *w, int64_t ts, int64_t val)
{
    uint32_t cap = w->ref ? 1u << ref_class(w->ref) : 0;
    if (w->len == cap) {
        uint32_t k = w->ref ? ref_class(w->ref) + 1 : 0;
        if (k >= CLASSES || resize(p, w, k) != 0) return -1;
    }
    seg_winentry_t *e = block(p, ref_class(w->ref), ref_slot(w->ref));
    /* Events mostly arrive in order, so search from the back. */
    uint32_t i = w->len;
    while (i > 0 && e[i - 1].ts > ts) i--;
    memmove(e + i + 1, e + i, (w->len - i) * sizeof *e);
    e[i].ts = ts;
    e[i].val = val;
    w->len++;
    return 0;
}

int seg_window_assign(seg_winpool_t *p, seg_window_t *w, const seg_winentry_t *src,
                      uint32_t n)
{
    seg_window_free(p, w);
    if (n == 0) return 0;
    /* Inserting one at a time grows the block by doubling from 1: the
     * smallest class that holds n. */
    uint32_t k = 0;
    while ((1u << k) < n) k++;
    if (k >= CLASSES || resize(p, w, k) != 0) return -1;
    memcpy(block(p, k, ref_slot(w->ref)), src, (size_t)n * sizeof *src);
    w->len = n;
    return 0;
}

void seg_window_expire(seg_winpool_t *p, seg_window_t *w, int64_t cutoff)
{
    if (w->len == 0) return;
    seg_winentry_t *e = block(p, ref_class(w->ref), ref_slot(w->ref));
    uint32_t n = 0;
    while (n < w->len && e[n].ts <= cutoff) n++;
    if (n == 0) return;
    w->len -= n;
    if (w->len == 0) {
        seg_window_free(p, w);
        return;
    }
    memmove(e, e + n, w->len * sizeof *e);
    uint32_t k = ref_class(w->ref);
    if (k > 0 && w->len <= (1u << k) / 4) {
        uint32_t nk = k;
        while (nk > 0 && (1u << (nk - 1)) >= w->len) nk--;
        (void)resize(p, w, nk); /* on failure keep the larger block */
    }
}

void seg_window_free(seg_winpool_t *p, seg_window_t *w)
{
    if (w->ref) block_free(p, ref_class(w->ref), ref_slot(w->ref));
    w->ref = 0;
    w->len = 0;
}

size_t seg_winpool_bytes(const seg_winpool_t *p)
{
    return p->bytes;
}
