/*
 * seg_summary: from purchase events to the per-customer inputs of the
 * models: x, the first and last purchase, and the mean spend of the
 * repeat purchase days.
 *
 * The papers count a repeat purchase per day, so several orders on one
 * day are one purchase (their amounts summed) and x counts the distinct
 * UTC calendar days after the first purchase day. Input need not be in
 * time or customer order (a replay file may be either), so purchases are
 * collected first and summarised once the end of the observation, the
 * fit's --until, is known. Refunds are not purchases: callers add
 * purchases only.
 */
#ifndef SEG_SUMMARY_H
#define SEG_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

typedef struct seg_summary_cust {
    const char *id;          /* the customer id, not NUL-terminated */
    size_t      id_len;
    uint32_t    x;           /* distinct purchase days after the first purchase day */
    int64_t     first, last; /* first and last purchase, epoch seconds */
    double      mbar;        /* mean spend of the x repeat days, currency units; 0 if x = 0 */
} seg_summary_cust_t;

typedef struct seg_summary seg_summary_t;

/* NULL on allocation failure. */
seg_summary_t *seg_summary_new(void);
/* NULL is a no-op. */
void seg_summary_destroy(seg_summary_t *s);

/* Records a purchase (amount in 1/10000 units, >= 0). id is copied.
 * Returns 0, or -1 when out of memory. */
int seg_summary_add(seg_summary_t *s, const char *id, size_t id_len, int64_t ts, int64_t amount);

/* Purchases recorded so far. */
size_t seg_summary_purchases(const seg_summary_t *s);

/* Summarises the purchases with ts <= until: one entry per customer with
 * at least one of them, in the order customers were first seen. *out
 * points into s (ids too) and stays valid until the next call or
 * seg_summary_destroy. Returns the number of customers, or -1 when out of
 * memory. */
long seg_summary_build(seg_summary_t *s, int64_t until, const seg_summary_cust_t **out);

#endif
