/*
 * seg_inflight: a growable ring of (offset, outstanding) per partition.
 * Tokens are sequence numbers; the ring index of token t is
 * (t - head_token) from the head slot.
 */
#include "publish/seg_inflight.h"

#include <stdlib.h>

typedef struct rec {
    int64_t  offset;
    uint32_t outstanding;
} rec_t;

struct seg_inflight {
    rec_t   *ring;
    size_t   cap, head, n;     /* ring[head .. head+n) mod cap */
    uint64_t head_token;       /* token of ring[head] */
};

seg_inflight_t *seg_inflight_new(void)
{
    return calloc(1, sizeof(seg_inflight_t));
}

void seg_inflight_destroy(seg_inflight_t *f)
{
    if (!f) return;
    free(f->ring);
    free(f);
}

static int grow(seg_inflight_t *f)
{
    size_t ncap = f->cap ? f->cap * 2 : 1024;
    rec_t *nr = malloc(ncap * sizeof *nr);
    if (!nr) return -1;
    for (size_t i = 0; i < f->n; i++) nr[i] = f->ring[(f->head + i) % f->cap];
    free(f->ring);
    f->ring = nr;
    f->cap = ncap;
    f->head = 0;
    return 0;
}

uint64_t seg_inflight_begin(seg_inflight_t *f, int64_t offset)
{
    if (f->n == f->cap && grow(f) != 0) return UINT64_MAX;
    rec_t *r = &f->ring[(f->head + f->n) % f->cap];
    r->offset = offset;
    r->outstanding = 1;
    return f->head_token + f->n++;
}

static rec_t *find(seg_inflight_t *f, uint64_t token)
{
    uint64_t i = token - f->head_token;
    if (token < f->head_token || i >= f->n) return NULL;
    return &f->ring[(f->head + i) % f->cap];
}

void seg_inflight_hold(seg_inflight_t *f, uint64_t token)
{
    rec_t *r = find(f, token);
    if (r) r->outstanding++;
}

void seg_inflight_release(seg_inflight_t *f, uint64_t token)
{
    rec_t *r = find(f, token);
    if (r && r->outstanding > 0) r->outstanding--;
}

int64_t seg_inflight_advance(seg_inflight_t *f)
{
    int64_t next = -1;
    while (f->n > 0 && f->ring[f->head].outstanding == 0) {
        next = f->ring[f->head].offset + 1;
        f->head = (f->head + 1) % f->cap;
        f->n--;
        f->head_token++;
    }
    return next;
}

size_t seg_inflight_pending(const seg_inflight_t *f) { return f->n; }
