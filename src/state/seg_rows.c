/*
 * seg_rows: chunked rows, 65536 per chunk like the store's records, so a
 * customer's row and record share an index and neither ever moves.
 */
#include "state/seg_rows.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_BITS 16
#define CHUNK      (1u << CHUNK_BITS)

struct seg_rows {
    size_t          width;
    unsigned char **chunks;
    uint32_t        n, cap;
};

seg_rows_t *seg_rows_new(size_t width)
{
    if (width == 0 || width % 8) return NULL;
    seg_rows_t *r = calloc(1, sizeof *r);
    if (r) r->width = width;
    return r;
}

void seg_rows_destroy(seg_rows_t *r)
{
    if (!r) return;
    for (uint32_t i = 0; i < r->n; i++) free(r->chunks[i]);
    free(r->chunks);
    free(r);
}

size_t seg_rows_width(const seg_rows_t *r) { return r->width; }

unsigned char *seg_rows_peek(const seg_rows_t *r, uint32_t idx)
{
    uint32_t c = idx >> CHUNK_BITS;
    if (c >= r->n || !r->chunks[c]) return NULL;
    return r->chunks[c] + (size_t)(idx & (CHUNK - 1)) * r->width;
}

void seg_rows_prefetch(const seg_rows_t *r, uint32_t idx)
{
    const unsigned char *row = seg_rows_peek(r, idx);
    if (!row) return;
    const unsigned char *end = row + r->width - 1;
    for (const unsigned char *p = row; p <= end; p += 64) __builtin_prefetch(p);
    __builtin_prefetch(end);   /* a row that starts mid-line ends on one more */
}

unsigned char *seg_rows_get(seg_rows_t *r, uint32_t idx)
{
    uint32_t c = idx >> CHUNK_BITS;
    if (c >= r->cap) {
        uint32_t cap = r->cap ? r->cap : 16;
        while (cap <= c) cap *= 2;
        unsigned char **nc = realloc(r->chunks, cap * sizeof *nc);
        if (!nc) return NULL;
        memset(nc + r->cap, 0, (cap - r->cap) * sizeof *nc);
        r->chunks = nc;
        r->cap = cap;
    }
    if (!r->chunks[c]) {
        /* calloc: pages a new chunk does not use yet cost no memory */
        r->chunks[c] = calloc(CHUNK, r->width);
        if (!r->chunks[c]) return NULL;
    }
    if (c >= r->n) r->n = c + 1;
    return r->chunks[c] + (size_t)(idx & (CHUNK - 1)) * r->width;
}

size_t seg_rows_bytes(const seg_rows_t *r)
{
    size_t n = 0;
    for (uint32_t i = 0; i < r->n; i++) n += r->chunks[i] ? (size_t)CHUNK * r->width : 0;
    return n;
}
