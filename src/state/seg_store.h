/*
 * seg_store: the in-memory table of customers.
 *
 * Customers are addressed two ways: by id (a hash lookup, once per event)
 * and by a dense uint32_t index (everywhere else: timers, the engine). The
 * index is stable for the customer's lifetime, so timers can refer to a
 * customer with 4 bytes instead of a pointer or a copy of its id.
 *
 * Growth never pauses the caller for long:
 *   - the id index rehashes incrementally, a bounded number of slots per
 *     operation, as Redis' dict.c does, so a table of millions of customers
 *     grows without a stop-the-world copy;
 *   - records and ids live in fixed-size chunks that never move, so growing
 *     the table copies nothing and record pointers stay valid.
 *
 * The record layout is the store's business; the engine reaches fields
 * through the struct below, which is deliberately small.
 */
#ifndef SEG_STORE_H
#define SEG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "state/seg_window.h"

#define SEG_CUST_NONE UINT32_MAX

enum {
    SEG_CUST_HAS_PURCHASE = 1u << 0,
    SEG_CUST_HAS_CONTACT  = 1u << 1,
    SEG_CUST_DIRTY        = 1u << 2,   /* changed since the last changelog drain */
    SEG_CUST_TIMER_EXACT  = 1u << 3,   /* the engine's: its timer is its true deadline */
};

/* Bits of each slot of seg_cust_t.last: the engine keeps one value code
 * per dimension there (lifecycle < 8, value < 8, rfm < 128, dissatisfied
 * < 2 codes; seg_engine.c checks its codes fit at compile time). */
#define SEG_CUST_LAST_SLOTS 4
#define SEG_CUST_LAST_BITS(d)  ((0x01070303u >> (8 * (d))) & 0xffu)   /* 3, 3, 7, 1 */
#define SEG_CUST_LAST_SHIFT(d) ((0x0d060300u >> (8 * (d))) & 0xffu)   /* 0, 3, 6, 13 */

/* Ids of up to this many bytes are kept inside the record; longer ones
 * (up to 255) in the store's id arena, the record pointing at them. */
#define SEG_CUST_ID_INLINE 16

/* One customer's rolling state. Owned by the store.
 *
 * 64 bytes, the largest single part of the state per customer, laid out
 * in one cache line (records are 64-byte aligned): folding an event
 * misses on the index slot, the record and the windows, and no more. A
 * short id lives in the record, so comparing it costs no further miss,
 * and it takes no arena bytes (16 inline bytes against a pointer plus the
 * id elsewhere: the ids of 8+ bytes most shops use cost less memory this
 * way than in the 56-byte record that pointed at them). seq's neighbours
 * are bit-packed into one 32-bit word. Read the id through seg_cust_id(),
 * and `last` through seg_cust_lasts() and seg_cust_set_lasts(). */
typedef struct seg_cust {
    int64_t        now;            /* customer clock: last evaluation instant */
    int64_t        first_purchase; /* valid with SEG_CUST_HAS_PURCHASE */
    int64_t        last_purchase;
    seg_window_t   money;          /* purchases and refunds within the window */
    seg_window_t   complaints;     /* complaints within the complaint window */
    uint32_t       seq;            /* transitions emitted so far */
    uint32_t       id_len : 8;     /* 1..255; 0 = a deleted record */
    uint32_t       flags  : 4;     /* SEG_CUST_HAS_*, SEG_CUST_DIRTY, SEG_CUST_TIMER_EXACT */
    uint32_t       last   : 14;    /* last emitted value per dimension, 0 = none */
    union {                        /* the id, not NUL-terminated; owned by the store */
        char        in[SEG_CUST_ID_INLINE];   /* id_len <= SEG_CUST_ID_INLINE */
        const char *out;                      /* else: in the id arena */
    } id_;
} seg_cust_t;

/* The customer's id (c->id_len bytes). Points into the record or the
 * store's arena: valid while the customer is not deleted. */
static inline const char *seg_cust_id(const seg_cust_t *c)
{
    return c->id_len <= SEG_CUST_ID_INLINE ? c->id_.in : c->id_.out;
}

/* The last emitted values, one per slot (0..SEG_CUST_LAST_SLOTS-1).
 * Written out slot by slot: this runs on every evaluation. */
static inline void seg_cust_lasts(const seg_cust_t *c, uint8_t out[SEG_CUST_LAST_SLOTS])
{
    unsigned w = c->last;
#define SEG_CUST_LAST_GET_(d) \
    (uint8_t)((w >> SEG_CUST_LAST_SHIFT(d)) & ((1u << SEG_CUST_LAST_BITS(d)) - 1))
    out[0] = SEG_CUST_LAST_GET_(0);
    out[1] = SEG_CUST_LAST_GET_(1);
    out[2] = SEG_CUST_LAST_GET_(2);
    out[3] = SEG_CUST_LAST_GET_(3);
#undef SEG_CUST_LAST_GET_
}

/* Stores them back; in[d] must be < 2^SEG_CUST_LAST_BITS(d). */
static inline void seg_cust_set_lasts(seg_cust_t *c, const uint8_t in[SEG_CUST_LAST_SLOTS])
{
#define SEG_CUST_LAST_PUT_(d) \
    (((unsigned)in[d] & ((1u << SEG_CUST_LAST_BITS(d)) - 1)) << SEG_CUST_LAST_SHIFT(d))
    c->last = SEG_CUST_LAST_PUT_(0) | SEG_CUST_LAST_PUT_(1) | SEG_CUST_LAST_PUT_(2) |
              SEG_CUST_LAST_PUT_(3);
#undef SEG_CUST_LAST_PUT_
}

typedef struct seg_store seg_store_t;

/* Returns an empty store, or NULL with errstr set. */
seg_store_t *seg_store_new(char *errstr, size_t errstr_size);
/* Frees every customer and id. NULL is a no-op. */
void seg_store_destroy(seg_store_t *st);

/* Sizes an EMPTY store for n customers up front (a snapshot load knows
 * how many follow): the id index is allocated at its final size, so no
 * rehash runs during the load. Returns 0, or -1 on allocation failure
 * (the store is unchanged and still works). A store that already holds
 * customers is left alone (returns 0). */
int seg_store_reserve(seg_store_t *st, uint32_t n);

/* Finds the customer with this id. Returns its index, or SEG_CUST_NONE. */
uint32_t seg_store_find(seg_store_t *st, const char *id, size_t len);

/* Finds or creates the customer with this id (len 1..255). Sets *created
 * to 1 when the customer is new (its record zeroed, id copied). Returns the
 * index, or SEG_CUST_NONE on allocation failure. */
uint32_t seg_store_upsert(seg_store_t *st, const char *id, size_t len,
                          int *created);
/* The same, for a caller that has the id's hash already: hash must be
 * seg_store_hash(id, len) (replay hashes on its decoder thread). */
uint32_t seg_store_upsert_hashed(seg_store_t *st, const char *id, size_t len, uint64_t hash,
                                 int *created);

/* The record of a customer index returned above. Valid while the store
 * lives; the pointer never moves. */
seg_cust_t *seg_store_get(seg_store_t *st, uint32_t idx);

/* Removes customer idx (its windows are freed, its index may be reused
 * by a later upsert). Returns 0, or -1 if idx holds no customer. */
int seg_store_delete(seg_store_t *st, uint32_t idx);

/* One past the highest index ever handed out: iterate 0..high-1 and skip
 * records whose id_len is 0 (deleted). */
uint32_t seg_store_high(const seg_store_t *st);

/* The 64-bit hash the store uses for ids (stable across runs). */
uint64_t seg_store_hash(const char *id, size_t len);

/* Prefetch hints. Folding an event reads the id's index slot, then the
 * customer record, then a long id's bytes: dependent cache misses that a
 * caller reading ahead (replay) can start early, a few events apart:
 *   seg_store_prefetch_slot(hash)    - the index slot;
 *   seg_store_prefetch_record(hash)  - once the slot is cached: returns the
 *       index of the first live slot with the hash's tag (a guess: the id
 *       is not compared) and prefetches that record, or SEG_CUST_NONE;
 *   seg_store_prefetch_id(idx)       - once the record is cached: its id.
 * A caller that knows the index already (deadlines due next) starts with
 * seg_store_prefetch_cust(idx). They never change the store or any result. */
void seg_store_prefetch_slot(const seg_store_t *st, uint64_t hash);
uint32_t seg_store_prefetch_record(const seg_store_t *st, uint64_t hash);
void seg_store_prefetch_id(const seg_store_t *st, uint32_t idx);
void seg_store_prefetch_cust(const seg_store_t *st, uint32_t idx);

/* Number of customers held. */
uint32_t seg_store_count(const seg_store_t *st);

/* Bytes held by the store's own structures (records, ids, index, window
 * entries), for the memory metric. */
size_t seg_store_bytes(const seg_store_t *st);

/* The shared pool window entries are allocated from. */
seg_winpool_t *seg_store_winpool(seg_store_t *st);

#endif
