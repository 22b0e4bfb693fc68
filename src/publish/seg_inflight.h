/*
 * seg_inflight: which input offsets are safe to commit.
 *
 * At-least-once means an input offset may be stored only when everything
 * that record caused (its transitions, routed copies, or its DLQ copy) has
 * a successful delivery report. Records of one partition complete out of
 * order (deliveries race), but offsets must be stored in order, so each
 * partition keeps a FIFO of its records with a count of outstanding
 * messages; the committable offset is one past the longest fully-delivered
 * prefix.
 *
 * A record starts with one hold of its own, released when its processing
 * is finished, so deliveries that complete while it is still being
 * processed cannot make it look done.
 *
 * Tokens identify a record within its partition; the producer carries
 * them as message opaques (see seg_inflight_pack).
 */
#ifndef SEG_INFLIGHT_H
#define SEG_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>

typedef struct seg_inflight seg_inflight_t;

/* Returns an empty tracker or NULL. */
seg_inflight_t *seg_inflight_new(void);
/* NULL is a no-op. */
void seg_inflight_destroy(seg_inflight_t *f);

/* Registers input record `offset` (offsets must increase) with one hold.
 * Returns its token, or UINT64_MAX on allocation failure. */
uint64_t seg_inflight_begin(seg_inflight_t *f, int64_t offset);

/* One more message outstanding for the record. */
void seg_inflight_hold(seg_inflight_t *f, uint64_t token);

/* One message delivered (or processing finished). */
void seg_inflight_release(seg_inflight_t *f, uint64_t token);

/* If the oldest records are complete, drops them and returns one past the
 * last complete offset (what to store); otherwise returns -1. */
int64_t seg_inflight_advance(seg_inflight_t *f);

/* Records not yet complete and dropped. */
size_t seg_inflight_pending(const seg_inflight_t *f);

/* A message opaque carrying (slot, token): 16 bits of slot, 48 of token. */
static inline void *seg_inflight_pack(unsigned slot, uint64_t token)
{
    return (void *)(uintptr_t)(((uint64_t)slot << 48) | (token & 0xffffffffffffULL));
}
static inline unsigned seg_inflight_slot(void *opaque)
{
    return (unsigned)((uint64_t)(uintptr_t)opaque >> 48);
}
static inline uint64_t seg_inflight_token(void *opaque)
{
    return (uint64_t)(uintptr_t)opaque & 0xffffffffffffULL;
}

#endif
