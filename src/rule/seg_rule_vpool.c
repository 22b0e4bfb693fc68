/*
 * seg_rule_vpool: interned strings with reference counts.
 *
 * A computed rule's value and a string attribute are kept per customer as
 * a 4-byte id into this pool rather than as a copy: a million customers
 * with plan "pro" hold one "pro". Ids are counted, so a value no customer
 * holds any more is freed and its id reused; the pool is bounded by the
 * distinct values alive, not by history. One pool per engine, touched by
 * the engine's thread only. Open addressing on the string's hash; removed
 * entries leave tombstones that the next resize drops.
 */
#include "rule/seg_rule_vpool.h"

#include <stdlib.h>
#include <string.h>

#include "state/seg_store.h"

#define EMPTY 0u
#define TOMB  UINT32_MAX

typedef struct ventry {
    uint64_t hash;
    char    *s;          /* NUL-terminated copy; NULL: a free id */
    uint32_t len;
    uint32_t refs;
} ventry_t;

struct seg_vpool {
    ventry_t *e;         /* by id; e[0] unused */
    uint32_t  n, cap;    /* ids handed out (high water), capacity */
    uint32_t *free_ids;
    uint32_t  n_free, free_cap;
    uint32_t *table;     /* ids, EMPTY or TOMB */
    uint32_t  mask, used; /* used: live + tombstones */
    size_t    bytes;
};

seg_vpool_t *seg_vpool_new(void)
{
    seg_vpool_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = 1;
    return p;
}

void seg_vpool_destroy(seg_vpool_t *p)
{
    if (!p) return;
    for (uint32_t i = 1; i < p->n; i++) free(p->e[i].s);
    free(p->e);
    free(p->free_ids);
    free(p->table);
    free(p);
}

static int rehash(seg_vpool_t *p, uint32_t size)
{
    uint32_t *t = calloc(size, sizeof *t);
    if (!t) return -1;
    for (uint32_t id = 1; id < p->n; id++) {
        if (!p->e[id].s) continue;
        uint32_t i = (uint32_t)p->e[id].hash & (size - 1);
        while (t[i] != EMPTY) i = (i + 1) & (size - 1);
        t[i] = id;
    }
    p->bytes += (size_t)size * sizeof *t;
    if (p->table) p->bytes -= (size_t)(p->mask + 1) * sizeof *t;
    free(p->table);
    p->table = t;
    p->mask = size - 1;
    p->used = 0;
    for (uint32_t id = 1; id < p->n; id++) p->used += p->e[id].s != NULL;
    return 0;
}

uint32_t seg_vpool_intern(seg_vpool_t *p, const char *s, uint32_t len)
{
    uint64_t h = seg_store_hash(s, len);
    if (p->table) {
        uint32_t i = (uint32_t)h & p->mask;
        for (uint32_t id; (id = p->table[i]) != EMPTY; i = (i + 1) & p->mask) {
            if (id == TOMB) continue;
            ventry_t *e = &p->e[id];
            if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0) {
                e->refs++;
                return id;
            }
        }
    }
    if (!p->table || (p->used + 1) * 2 > p->mask + 1) {
        uint32_t live = 0;
        for (uint32_t id = 1; id < p->n; id++) live += p->e[id].s != NULL;
        uint32_t size = 64;
        while ((live + 1) * 4 > size) size *= 2;
        if (rehash(p, size)) return 0;
    }
    uint32_t id;
    if (p->n_free) {
        id = p->free_ids[--p->n_free];
    } else {
        if (p->n >= p->cap) {
            uint32_t cap = p->cap ? p->cap * 2 : 64;
            ventry_t *ne = realloc(p->e, cap * sizeof *ne);
            if (!ne) return 0;
            p->bytes += (size_t)(cap - p->cap) * sizeof *ne;
            p->e = ne;
            p->cap = cap;
        }
        id = p->n++;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        if (id == p->n - 1 && !p->n_free) p->n--;
        else p->free_ids[p->n_free++] = id;
        return 0;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    p->e[id] = (ventry_t){ .hash = h, .s = copy, .len = len, .refs = 1 };
    p->bytes += len + 1;
    uint32_t i = (uint32_t)h & p->mask;
    while (p->table[i] != EMPTY && p->table[i] != TOMB) i = (i + 1) & p->mask;
    if (p->table[i] == EMPTY) p->used++;
    p->table[i] = id;
    return id;
}

void seg_vpool_retain(seg_vpool_t *p, uint32_t id)
{
    if (id && id < p->n && p->e[id].s) p->e[id].refs++;
}

void seg_vpool_release(seg_vpool_t *p, uint32_t id)
{
    if (!id || id >= p->n || !p->e[id].s) return;
    ventry_t *e = &p->e[id];
    if (--e->refs > 0) return;
    uint32_t i = (uint32_t)e->hash & p->mask;
    while (p->table[i] != id) i = (i + 1) & p->mask;
    p->table[i] = TOMB;
    p->bytes -= e->len + 1;
    free(e->s);
    e->s = NULL;
    if (p->n_free == p->free_cap) {
        uint32_t cap = p->free_cap ? p->free_cap * 2 : 64;
        uint32_t *nf = realloc(p->free_ids, cap * sizeof *nf);
        if (!nf) return;   /* the id is lost, not reused: harmless */
        p->free_ids = nf;
        p->free_cap = cap;
    }
    p->free_ids[p->n_free++] = id;
}

const char *seg_vpool_get(const seg_vpool_t *p, uint32_t id, uint32_t *len)
{
    if (!id || id >= p->n || !p->e[id].s) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = p->e[id].len;
    return p->e[id].s;
}

uint32_t seg_vpool_count(const seg_vpool_t *p)
{
    uint32_t live = 0;
    for (uint32_t id = 1; id < p->n; id++) live += p->e[id].s != NULL;
    return live;
}

size_t seg_vpool_bytes(const seg_vpool_t *p) { return p->bytes; }
