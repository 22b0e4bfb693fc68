/*
 * seg_window: a customer's time-ordered entries inside a trailing window
 * (purchases and refunds for F and M, complaints for dissatisfied).
 *
 * Only entries still inside the window are kept: customer time never goes
 * back, so an entry that has left the window can never count again and is
 * dropped for good. That bounds memory by activity per window, not by
 * history. Entries are kept sorted by ts (stable for equal ts) so the next
 * entry to leave is always the first one, which is what the timer needs.
 *
 * Entry blocks come from a shared size-class pool rather than malloc: with
 * millions of customers holding a handful of entries each, malloc's
 * per-chunk overhead and fragmentation would cost more than the entries.
 * A window is 8 bytes in the customer record.
 */
#ifndef SEG_WINDOW_H
#define SEG_WINDOW_H

#include <stddef.h>
#include <stdint.h>

typedef struct seg_winentry {
    int64_t ts;
    int64_t val;        /* meaning is the caller's (amount and kind bits) */
} seg_winentry_t;

/* A window handle; all-zero is a valid empty window. */
typedef struct seg_window {
    uint32_t ref;       /* 0 = no block; else (class+1) << 27 | slot */
    uint32_t len;
} seg_window_t;

typedef struct seg_winpool seg_winpool_t;

/* Returns a new pool or NULL. */
seg_winpool_t *seg_winpool_new(void);
/* Frees every block of every window. NULL is a no-op. */
void seg_winpool_destroy(seg_winpool_t *p);

/* Inserts (ts, val) keeping ts order; an equal ts goes after the existing
 * ones. Returns 0, or -1 on allocation failure (window unchanged). */
int seg_window_insert(seg_winpool_t *p, seg_window_t *w, int64_t ts, int64_t val);

/* Replaces w's entries with the n entries of src (sorted by ts, as
 * persistence saved them), in one block of the right size: the same window
 * n inserts would build, without growing it n times. Returns 0, or -1 on
 * allocation failure (w is then empty). */
int seg_window_assign(seg_winpool_t *p, seg_window_t *w, const seg_winentry_t *src,
                      uint32_t n);

/* Drops every entry with ts <= cutoff. */
void seg_window_expire(seg_winpool_t *p, seg_window_t *w, int64_t cutoff);

/* The entries, sorted by ts; w->len of them. NULL when empty. Valid until
 * the next insert/expire/free on this window. */
const seg_winentry_t *seg_window_entries(const seg_winpool_t *p, const seg_window_t *w);

/* Returns the window's block to the pool and empties it. */
void seg_window_free(seg_winpool_t *p, seg_window_t *w);

/* Bytes of entry blocks allocated by the pool (in use or free). */
size_t seg_winpool_bytes(const seg_winpool_t *p);

#endif
