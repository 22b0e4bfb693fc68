/*
 * seg_rows: one fixed-size row of extra state per customer, next to the
 * store's records and addressed by the same customer index.
 *
 * The customer record is 64 bytes packed for the four built-in dimensions;
 * user rules need room that depends on the rules (their windows, latest
 * timestamps, attributes, values), so it lives here, sized by the rule set
 * and absent when there are no rules. Rows come in chunks that never move
 * (a row pointer stays valid), zeroed when allocated: an all-zero row is
 * the state of a customer that has seen nothing.
 */
#ifndef SEG_ROWS_H
#define SEG_ROWS_H

#include <stddef.h>
#include <stdint.h>

typedef struct seg_rows seg_rows_t;

/* Rows of `width` bytes (> 0, a multiple of 8). NULL on failure. */
seg_rows_t *seg_rows_new(size_t width);
/* NULL is a no-op. The caller releases what rows point to first. */
void seg_rows_destroy(seg_rows_t *r);

size_t seg_rows_width(const seg_rows_t *r);

/* Row idx, allocating (zeroed) chunks up to it. NULL on allocation failure. */
unsigned char *seg_rows_get(seg_rows_t *r, uint32_t idx);
/* Row idx if its chunk exists, else NULL (never allocates). */
unsigned char *seg_rows_peek(const seg_rows_t *r, uint32_t idx);

/* Starts loading row idx into the cache (every line of it), if its chunk
 * exists: a hint for the engine's read-ahead, changes nothing. */
void seg_rows_prefetch(const seg_rows_t *r, uint32_t idx);

/* Bytes allocated. */
size_t seg_rows_bytes(const seg_rows_t *r);

#endif
