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
 * Small windows get blocks of exactly their size (most customers hold 1-8
 * entries, and rounding 3 up to 4 or 5 up to 8 cost 13% of all window
 * memory). Window entries were also a third of segd's memory in 16 bytes
 * each, so an entry is stored in the narrowest of three forms that holds every entry of its window
 * exactly: 8 bytes (ts from 1970 to 4147 and |val| < 2^27: purchases up
 * to 6,710.8863 with the engine's val = amount * 2 + flag, and every
 * complaint), 12 bytes (ts in 40 bits, covering years 0001-9999, and val
 * in 56, covering every amount segd accepts), else 16. A window widens
 * when an entry needs it and narrows again only once emptied, so every
 * int64 round-trips exactly. Entries are therefore read through
 * seg_window_at/seg_window_first_ts/seg_window_vals/seg_window_read (or
 * summed by seg_window_expire_sum), not through a pointer.
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

/* A window handle; all-zero is a valid empty window. The block's size
 * class sits next to the length so that `ref` can address 2^30 - 2 blocks
 * of every class and entry width. */
typedef struct seg_window {
    uint32_t ref;       /* 0 = no block; else entry tier << 30 | (slot + 1) */
    uint32_t len : 26;  /* entries; a window holds at most 2^25 */
    uint32_t cls : 6;   /* size class of the block (seg_window.c) */
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

/* seg_window_expire, then a sum over what is left, for windows whose
 * values carry a flag in bit 0 (the engine's purchases and refunds):
 * *n_odd gets the number of odd values, *sum_half the sum of
 * (val - (val & 1)) / 2. One pass, where expire plus seg_window_vals
 * would find the block twice and copy the values out. */
void seg_window_expire_sum(seg_winpool_t *p, seg_window_t *w, int64_t cutoff,
                           int64_t *n_odd, int64_t *sum_half);

/* The ts of entry 0; w->len must be > 0. */
int64_t seg_window_first_ts(const seg_winpool_t *p, const seg_window_t *w);

/* Entry i (< w->len) of the window, entries sorted by ts. */
seg_winentry_t seg_window_at(const seg_winpool_t *p, const seg_window_t *w, uint32_t i);

/* Adds val to the entry at ts, inserting one if there is none (per-day
 * sums). Returns 0, or -1 on allocation failure or overflow (unchanged). */
int seg_window_add(seg_winpool_t *p, seg_window_t *w, int64_t ts, int64_t val);

/* Index of the first entry with ts > cut (w->len if none): where a
 * trailing window (cut, t] starts. Binary search, with the two common
 * answers (every entry inside, none inside) checked first. */
uint32_t seg_window_first_after(const seg_winpool_t *p, const seg_window_t *w, int64_t cut);

/* Copies the values of entries from .. from+max-1 (fewer at the end of
 * the window) to out, in ts order, and returns how many it copied: a
 * caller summing values reads them in batches without a call per entry. */
uint32_t seg_window_vals(const seg_winpool_t *p, const seg_window_t *w, uint32_t from,
                         int64_t *out, uint32_t max);

/* Copies the window's w->len entries, sorted by ts, to out. */
void seg_window_read(const seg_winpool_t *p, const seg_window_t *w, seg_winentry_t *out);

/* Entries w's block holds (0 without a block): len <= cap, and for a
 * window of 1..8 entries that only grew, cap == len. */
uint32_t seg_window_cap(const seg_winpool_t *p, const seg_window_t *w);

/* Bytes each of w's entries takes in its block: 8, 12 or 16 (0 without a
 * block). */
unsigned seg_window_entry_bytes(const seg_window_t *w);

/* Prefetches the start of w's block (a hint for callers that read ahead;
 * no effect on the window). */
void seg_window_prefetch(const seg_winpool_t *p, const seg_window_t *w);

/* Returns the window's block to the pool and empties it. */
void seg_window_free(seg_winpool_t *p, seg_window_t *w);

/* Bytes of entry blocks allocated by the pool (in use or free). */
size_t seg_winpool_bytes(const seg_winpool_t *p);

#endif
