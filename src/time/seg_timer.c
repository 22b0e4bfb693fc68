/*
 * seg_timer: a 4-ary min-heap keyed by deadline, with each customer's heap
 * position kept in a side array so that moving a deadline (every event
 * moves its customer's) is a sift, not a search.
 */
#include "time/seg_timer.h"

#include <stdlib.h>
#include <string.h>

#define NOPOS UINT32_MAX
#define ARITY 4

/* Packed: 12 bytes instead of 16, and a heap entry per customer with a
 * deadline (nearly all of them) is a large part of the state at 10M
 * customers. x86 reads the unaligned 8-byte field at full speed. */
typedef struct __attribute__((packed)) entry {
    int64_t  when;
    uint32_t idx;
} entry_t;

struct seg_timer {
    entry_t  *heap;
    size_t    n, cap;
    uint32_t *pos;        /* pos[customer] = heap slot or NOPOS */
    size_t    pos_cap;
    size_t    pos_init;   /* pos[0 .. pos_init) are set; the rest is unused
                           * capacity, never written, so it costs no RSS */
};

seg_timer_t *seg_timer_new(void)
{
    return calloc(1, sizeof(seg_timer_t));
}

void seg_timer_destroy(seg_timer_t *t)
{
    if (!t) return;
    free(t->heap);
    free(t->pos);
    free(t);
}

static void place(seg_timer_t *t, size_t i, entry_t e)
{
    t->heap[i] = e;
    t->pos[e.idx] = (uint32_t)i;
}

static void sift_up(seg_timer_t *t, size_t i)
{
    entry_t e = t->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / ARITY;
        if (t->heap[parent].when <= e.when) break;
        place(t, i, t->heap[parent]);
        i = parent;
    }
    place(t, i, e);
}

static void sift_down(seg_timer_t *t, size_t i)
{
    entry_t e = t->heap[i];
    for (;;) {
        size_t first = i * ARITY + 1;
        if (first >= t->n) break;
        size_t last = first + ARITY < t->n ? first + ARITY : t->n;
        size_t best = first;
        for (size_t c = first + 1; c < last; c++)
            if (t->heap[c].when < t->heap[best].when) best = c;
        if (t->heap[best].when >= e.when) break;
        place(t, i, t->heap[best]);
        i = best;
    }
    place(t, i, e);
}

static int ensure_pos(seg_timer_t *t, uint32_t idx)
{
    if (idx < t->pos_init) return 0;
    if (idx >= t->pos_cap) {
        size_t ncap = t->pos_cap ? t->pos_cap : 1024;
        while (ncap <= idx) ncap *= 2;
        uint32_t *np = realloc(t->pos, ncap * sizeof *np);
        if (!np) return -1;
        t->pos = np;
        t->pos_cap = ncap;
    }
    /* Customer indexes are dense and grow one by one: initialise up to
     * this one only. */
    memset(t->pos + t->pos_init, 0xff, (idx + 1 - t->pos_init) * sizeof *t->pos);
    t->pos_init = (size_t)idx + 1;
    return 0;
}

int seg_timer_set(seg_timer_t *t, uint32_t idx, int64_t when)
{
    if (ensure_pos(t, idx) != 0) return -1;
    uint32_t p = t->pos[idx];
    if (p != NOPOS) {
        int64_t old = t->heap[p].when;
        t->heap[p].when = when;
        if (when < old) sift_up(t, p);
        else if (when > old) sift_down(t, p);
        return 0;
    }
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 1024;
        entry_t *nh = realloc(t->heap, ncap * sizeof *nh);
        if (!nh) return -1;
        t->heap = nh;
        t->cap = ncap;
    }
    t->heap[t->n] = (entry_t){ when, idx };
    t->pos[idx] = (uint32_t)t->n;
    t->n++;
    sift_up(t, t->n - 1);
    return 0;
}

static void remove_at(seg_timer_t *t, size_t p)
{
    t->pos[t->heap[p].idx] = NOPOS;
    t->n--;
    if (p == t->n) return;
    entry_t last = t->heap[t->n];
    int64_t old = t->heap[p].when;
    place(t, p, last);
    if (last.when < old) sift_up(t, p);
    else sift_down(t, p);
}

void seg_timer_clear(seg_timer_t *t, uint32_t idx)
{
    if (idx >= t->pos_init || t->pos[idx] == NOPOS) return;
    remove_at(t, t->pos[idx]);
}

int seg_timer_pop_due(seg_timer_t *t, int64_t limit, uint32_t *idx, int64_t *when)
{
    if (t->n == 0 || t->heap[0].when > limit) return 0;
    *idx = t->heap[0].idx;
    *when = t->heap[0].when;
    remove_at(t, 0);
    return 1;
}

int64_t seg_timer_when(const seg_timer_t *t, uint32_t idx)
{
    if (idx >= t->pos_init || t->pos[idx] == NOPOS) return INT64_MAX;
    return t->heap[t->pos[idx]].when;
}

void seg_timer_prefetch_pos(const seg_timer_t *t, uint32_t idx)
{
    if (idx < t->pos_init) __builtin_prefetch(&t->pos[idx]);
}

void seg_timer_prefetch_entry(const seg_timer_t *t, uint32_t idx)
{
    if (idx < t->pos_init && t->pos[idx] != NOPOS) __builtin_prefetch(&t->heap[t->pos[idx]]);
}

size_t seg_timer_count(const seg_timer_t *t) { return t->n; }

int64_t seg_timer_next(const seg_timer_t *t)
{
    return t->n ? t->heap[0].when : INT64_MAX;
}

size_t seg_timer_bytes(const seg_timer_t *t)
{
    return t->cap * sizeof(entry_t) + t->pos_cap * sizeof(uint32_t);
}
