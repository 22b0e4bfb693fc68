/* seg_store and seg_window: lookups across incremental rehash, stable
 * records, sorted windows with exact expiry, exact-size blocks and packed
 * entries that round-trip every int64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/seg_store.h"
#include "seg_test_rng.h"
#include "state/seg_window.h"
#include "util/seg_hugemem.h"

/* The window's entries as an array (NULL when empty), read through the
 * public accessors into one of a few rotating buffers, so two windows can
 * be compared. */
static const seg_winentry_t *entries(const seg_winpool_t *p, const seg_window_t *w)
{
    static seg_winentry_t buf[4][4096];
    static int next;
    if (w->len == 0) return NULL;
    assert_true(w->len <= 4096);
    seg_winentry_t *out = buf[next++ % 4];
    seg_window_read(p, w, out);
    for (uint32_t i = 0; i < w->len; i += 1 + w->len / 8) {
        seg_winentry_t e = seg_window_at(p, w, i);
        assert_memory_equal(&e, &out[i], sizeof e);
    }
    return out;
}

/* seg_window_vals hands out the same values as the entries, in batches of
 * any size, from any start. */
static void check_vals(const seg_winpool_t *p, const seg_window_t *w, const seg_winentry_t *ref)
{
    static const uint32_t batch[] = { 1, 7, 64 };
    int64_t vals[64];
    for (int b = 0; b < 3; b++) {
        uint32_t i = 0, n;
        while ((n = seg_window_vals(p, w, i, vals, batch[b])) > 0) {
            assert_true(n <= batch[b]);
            for (uint32_t k = 0; k < n; k++) assert_true(vals[k] == ref[i + k].val);
            i += n;
        }
        assert_int_equal(i, w->len);
    }
}

static void upsert_find_many(void **state)
{
    (void)state;
    char err[128];
    seg_store_t *st = seg_store_new(err, sizeof err);
    assert_non_null(st);
    enum { N = 300000 };
    char id[32];
    seg_cust_t *first = NULL;
    for (int i = 0; i < N; i++) {
        int created;
        int len = snprintf(id, sizeof id, "cust-%d", i);
        uint32_t idx = seg_store_upsert(st, id, (size_t)len, &created);
        assert_int_equal(idx, (uint32_t)i);
        assert_true(created);
        if (i == 0) first = seg_store_get(st, 0);
        /* every earlier customer stays findable while tables migrate */
        if (i % 997 == 0) {
            for (int j = 0; j <= i; j += 331) {
                len = snprintf(id, sizeof id, "cust-%d", j);
                assert_int_equal(seg_store_find(st, id, (size_t)len), (uint32_t)j);
            }
        }
    }
    assert_int_equal(seg_store_count(st), N);
    assert_ptr_equal(seg_store_get(st, 0), first);   /* records never move */
    for (int i = 0; i < N; i++) {
        int created;
        int len = snprintf(id, sizeof id, "cust-%d", i);
        assert_int_equal(seg_store_upsert(st, id, (size_t)len, &created), (uint32_t)i);
        assert_false(created);
        seg_cust_t *c = seg_store_get(st, (uint32_t)i);
        assert_int_equal(c->id_len, len);
        assert_memory_equal(seg_cust_id(c), id, (size_t)len);
    }
    assert_int_equal(seg_store_find(st, "cust-", 5), SEG_CUST_NONE);
    assert_int_equal(seg_store_find(st, "cust-3000000", 12), SEG_CUST_NONE);
    /* ids that differ only past 8 bytes, and binary-safe ids */
    int created;
    uint32_t a = seg_store_upsert(st, "abcdefgh-1", 10, &created);
    uint32_t b = seg_store_upsert(st, "abcdefgh-2", 10, &created);
    assert_int_not_equal(a, b);
    uint32_t z = seg_store_upsert(st, "x\0y", 3, &created);
    assert_int_equal(seg_store_find(st, "x\0y", 3), z);
    assert_int_equal(seg_store_find(st, "x", 1), SEG_CUST_NONE);
    assert_true(seg_store_bytes(st) > (size_t)N * sizeof(seg_cust_t));
    seg_store_destroy(st);
    seg_store_destroy(NULL);
}

/* Ids of every length 1..255 round-trip, inside the record up to
 * SEG_CUST_ID_INLINE bytes and in the arena past it: ids that share the
 * inline bytes and differ after them stay apart, a deleted record's
 * reuse keeps no byte of the old id, and only long ids take arena bytes.
 * Records are whole cache lines. */
static void id_lengths_inline_and_arena(void **state)
{
    (void)state;
    char err[128], id[256];
    seg_store_t *st = seg_store_new(err, sizeof err);
    assert_non_null(st);
    int created;
    size_t before = seg_store_bytes(st);
    for (int len = 1; len <= SEG_CUST_ID_INLINE; len++) {
        memset(id, 'a' + len % 26, (size_t)len);
        assert_int_equal(seg_store_upsert(st, id, (size_t)len, &created), (uint32_t)(len - 1));
        assert_true(created);
    }
    size_t after_short = seg_store_bytes(st);
    for (int len = SEG_CUST_ID_INLINE + 1; len <= 255; len++) {
        memset(id, 'a' + len % 26, (size_t)len);
        id[len - 1] = 'z';              /* same first 16 bytes as others, last differs */
        assert_int_equal(seg_store_upsert(st, id, (size_t)len, &created), (uint32_t)(len - 1));
        assert_true(created);
    }
    assert_int_equal(seg_store_upsert(st, id, 256, &created), SEG_CUST_NONE);
    /* 17 ids of 16 bytes and more that agree on their first 16 */
    for (int k = 0; k < 17; k++) {
        memset(id, '#', 16);
        id[16] = (char)('A' + k);
        assert_int_equal(seg_store_upsert(st, id, 17 + (k > 0), &created), (uint32_t)(255 + k));
        assert_true(created);
        assert_int_equal(seg_store_find(st, id, 16), SEG_CUST_NONE);
    }
    for (int len = 1; len <= 255; len++) {
        memset(id, 'a' + len % 26, (size_t)len);
        if (len > SEG_CUST_ID_INLINE) id[len - 1] = 'z';
        uint32_t idx = seg_store_find(st, id, (size_t)len);
        assert_int_equal(idx, (uint32_t)(len - 1));
        const seg_cust_t *c = seg_store_get(st, idx);
        assert_int_equal(c->id_len, len);
        assert_memory_equal(seg_cust_id(c), id, (size_t)len);
        assert_int_equal((uintptr_t)c % 64, 0);
        if (len <= SEG_CUST_ID_INLINE)   /* the id is inside its record */
            assert_true(seg_cust_id(c) >= (const char *)c &&
                        seg_cust_id(c) + len <= (const char *)(c + 1));
        else
            assert_true(seg_cust_id(c) + len <= (const char *)c ||
                        seg_cust_id(c) >= (const char *)(c + 1));
    }
    /* the first 16 customers' ids took no arena: only the record chunk */
    assert_int_equal(after_short - before, (size_t)(1u << 16) * sizeof(seg_cust_t));
    assert_true(seg_store_bytes(st) > after_short);   /* the long ones did */
    /* a long id's record reused for a short one, and the other way */
    memset(id, 'a' + 200 % 26, 200);
    id[199] = 'z';
    assert_int_equal(seg_store_delete(st, 199), 0);
    assert_int_equal(seg_store_upsert(st, "tiny", 4, &created), 199u);
    assert_memory_equal(seg_cust_id(seg_store_get(st, 199)), "tiny", 4);
    assert_int_equal(seg_store_find(st, id, 200), SEG_CUST_NONE);
    assert_int_equal(seg_store_delete(st, 3), 0);
    memset(id, 'L', 100);
    assert_int_equal(seg_store_upsert(st, id, 100, &created), 3u);
    assert_int_equal(seg_store_find(st, id, 100), 3u);
    assert_memory_equal(seg_cust_id(seg_store_get(st, 3)), id, 100);
    memset(id, 'a' + 4 % 26, 4);
    assert_int_equal(seg_store_find(st, id, 4), SEG_CUST_NONE);
    seg_store_destroy(st);
}

/* Deleting leaves other customers findable (across a rehash), frees the
 * index for reuse, and the deleted id is gone. */
static void delete_and_reuse(void **state)
{
    (void)state;
    char err[128], id[32];
    seg_store_t *st = seg_store_new(err, sizeof err);
    enum { N = 5000 };
    static uint32_t idx[N];
    static int gone[N];
    int created;
    for (int i = 0; i < N; i++) {
        int len = snprintf(id, sizeof id, "d%d", i);
        idx[i] = seg_store_upsert(st, id, (size_t)len, &created);
        if (i == 1000) {                 /* delete while tables may migrate */
            assert_int_equal(seg_store_delete(st, idx[500]), 0);
            assert_int_equal(seg_store_delete(st, idx[500]), -1);
            gone[500] = 1;
        }
    }
    assert_int_equal(idx[1001], idx[500]);   /* the freed index was reused */
    for (int i = 0; i < N; i += 2) {
        if (gone[i]) continue;
        assert_int_equal(seg_store_delete(st, idx[i]), 0);
        gone[i] = 1;
    }
    assert_int_equal(seg_store_count(st), N - N / 2);
    for (int i = 0; i < N; i++) {
        int len = snprintf(id, sizeof id, "d%d", i);
        assert_int_equal(seg_store_find(st, id, (size_t)len), gone[i] ? SEG_CUST_NONE : idx[i]);
        if (gone[i]) continue;
        seg_cust_t *c = seg_store_get(st, idx[i]);
        assert_memory_equal(seg_cust_id(c), id, (size_t)len);
    }
    assert_int_equal(seg_store_get(st, idx[2])->id_len, 0);
    uint32_t n = seg_store_upsert(st, "fresh", 5, &created);
    assert_true(created);
    assert_true(n < N);
    assert_int_equal(seg_store_find(st, "fresh", 5), n);
    assert_int_equal(seg_store_high(st), N - 1);
    assert_int_equal(seg_store_delete(st, N + 7), -1);
    seg_store_destroy(st);
}

static void window_sorted_and_expiring(void **state)
{
    (void)state;
    seg_winpool_t *p = seg_winpool_new();
    seg_window_t w = { 0 };
    assert_null(entries(p, &w));
    int64_t in[] = { 50, 10, 30, 30, 70, 20 };
    for (int i = 0; i < 6; i++) assert_int_equal(seg_window_insert(p, &w, in[i], i), 0);
    assert_int_equal(w.len, 6);
    const seg_winentry_t *e = entries(p, &w);
    int64_t want_ts[] = { 10, 20, 30, 30, 50, 70 };
    int64_t want_val[] = { 1, 5, 2, 3, 0, 4 };   /* equal ts keep insertion order */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(e[i].ts, want_ts[i]);
        assert_int_equal(e[i].val, want_val[i]);
    }
    seg_window_expire(p, &w, 29);           /* drops ts <= 29 */
    e = entries(p, &w);
    assert_int_equal(w.len, 4);
    assert_int_equal(e[0].ts, 30);
    seg_window_expire(p, &w, 30);           /* the edge itself leaves */
    assert_int_equal(w.len, 2);
    assert_int_equal(entries(p, &w)[0].ts, 50);
    seg_window_expire(p, &w, 1000);
    assert_int_equal(w.len, 0);
    assert_int_equal(w.ref, 0);              /* block returned */

    /* many windows grow and shrink through the classes; freed blocks are
     * reused, so the pool does not keep growing */
    enum { W = 2000 };
    static seg_window_t ws[W];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < W; i++)
            for (int k = 0; k < (i % 37) + 1; k++)
                assert_int_equal(seg_window_insert(p, &ws[i], k, k), 0);
        size_t bytes = seg_winpool_bytes(p);
        for (int i = 0; i < W; i++) {
            assert_int_equal(ws[i].len, (uint32_t)(i % 37) + 1);
            seg_window_expire(p, &ws[i], (i % 37) / 2);
            const seg_winentry_t *x = entries(p, &ws[i]);
            for (uint32_t k = 0; k < ws[i].len; k++)
                assert_int_equal(x[k].ts, (i % 37) / 2 + 1 + (int64_t)k);
            seg_window_free(p, &ws[i]);
        }
        if (round > 0) assert_int_equal(seg_winpool_bytes(p), bytes);
    }
    seg_winpool_destroy(p);
    seg_winpool_destroy(NULL);
}

/* A reserved store finds everything it is given, without a rehash, and a
 * store that already holds customers ignores the hint. */
static void reserve_up_front(void **state)
{
    (void)state;
    char err[128], id[32];
    seg_store_t *st = seg_store_new(err, sizeof err);
    assert_int_equal(seg_store_reserve(st, 50000), 0);
    size_t reserved = seg_store_bytes(st);
    for (int i = 0; i < 50000; i++) {
        int created, len = snprintf(id, sizeof id, "r-%d", i);
        assert_int_equal(seg_store_upsert(st, id, (size_t)len, &created), (uint32_t)i);
    }
    for (int i = 0; i < 50000; i += 7) {
        int len = snprintf(id, sizeof id, "r-%d", i);
        assert_int_equal(seg_store_find(st, id, (size_t)len), (uint32_t)i);
    }
    assert_true(seg_store_bytes(st) >= reserved);
    assert_int_equal(seg_store_reserve(st, 10000000), 0);   /* not empty: no-op */
    assert_int_equal(seg_store_find(st, "r-49999", 7), 49999u);
    seg_store_destroy(st);
}

/* seg_window_assign builds the same window as inserting the entries one
 * by one, replaces what was there, and empties on n = 0. */
static void window_assign_equals_inserts(void **state)
{
    (void)state;
    seg_winpool_t *p = seg_winpool_new();
    for (uint32_t n = 0; n <= 70; n++) {
        seg_winentry_t src[70];
        seg_window_t a = { 0 }, b = { 0 };
        for (uint32_t i = 0; i < n; i++) src[i] = (seg_winentry_t){ 100 + i / 2, (int64_t)i };
        assert_int_equal(seg_window_insert(p, &a, 1, 1), 0);   /* replaced */
        assert_int_equal(seg_window_assign(p, &a, src, n), 0);
        for (uint32_t i = 0; i < n; i++)
            assert_int_equal(seg_window_insert(p, &b, src[i].ts, src[i].val), 0);
        assert_int_equal(a.len, n);
        if (n) assert_memory_equal(entries(p, &a), entries(p, &b),
                                   n * sizeof(seg_winentry_t));
        else assert_int_equal(a.ref, 0);
        /* and it keeps working as a window */
        assert_int_equal(seg_window_insert(p, &a, 99, -1), 0);
        assert_int_equal(entries(p, &a)[0].ts, 99);
        seg_window_expire(p, &a, 1000);
        assert_int_equal(a.len, 0);
        seg_window_free(p, &b);
    }
    seg_winpool_destroy(p);
}

/* The window against a plain sorted array, through every size class up to
 * 3000 entries and back down: same entries in the same order (equal ts in
 * insertion order), blocks of exactly 1..8 entries for small windows, never
 * more than 1.5x (+2) the entries when growing, and at most twice them
 * after entries leave. */
static void window_classes_match_reference(void **state)
{
    (void)state;
    enum { N = 3000 };
    static seg_winentry_t ref[N];
    uint32_t n = 0;
    seg_winpool_t *p = seg_winpool_new();
    seg_window_t w = { 0 };
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < N; i++) {
        seg_test_rng(&x);
        int64_t ts = (int64_t)(x % 5000) - 2500, val = i;
        assert_int_equal(seg_window_insert(p, &w, ts, val), 0);
        uint32_t at = n;
        while (at > 0 && ref[at - 1].ts > ts) at--;
        memmove(ref + at + 1, ref + at, (n - at) * sizeof *ref);
        ref[at] = (seg_winentry_t){ ts, val };
        n++;
        assert_int_equal(w.len, n);
        uint32_t cap = seg_window_cap(p, &w);
        if (n <= 8) assert_int_equal(cap, n);
        assert_true(cap >= n && cap <= n + n / 2 + 2);
        if (i % 97 == 0 || n <= 40)
            assert_memory_equal(entries(p, &w), ref, n * sizeof *ref);
    }
    assert_memory_equal(entries(p, &w), ref, n * sizeof *ref);
    check_vals(p, &w, ref);
    for (int64_t cut = -2600; n > 0; cut += 7) {
        seg_window_expire(p, &w, cut);
        uint32_t gone = 0;
        while (gone < n && ref[gone].ts <= cut) gone++;
        memmove(ref, ref + gone, (n - gone) * sizeof *ref);
        n -= gone;
        assert_int_equal(w.len, n);
        if (n == 0) {
            assert_int_equal(w.ref, 0);
            break;
        }
        assert_true(seg_window_cap(p, &w) <= 2 * n + 1);
        assert_memory_equal(entries(p, &w), ref, n * sizeof *ref);
    }
    seg_winpool_destroy(p);
}

/* Windows of 3 small entries cost 3 8-byte entries each (plus partly used
 * chunks), not 4 of 16 bytes, and blocks given back are reused by other
 * windows of that size. */
static void window_blocks_exact_and_reused(void **state)
{
    (void)state;
    enum { W = 10000 };
    static seg_window_t ws[W];
    memset(ws, 0, sizeof ws);   /* huge_pages_same_contents runs this again */
    seg_winpool_t *p = seg_winpool_new();
    for (int i = 0; i < W; i++)
        for (int k = 0; k < 3; k++) assert_int_equal(seg_window_insert(p, &ws[i], k, k), 0);
    size_t bytes = seg_winpool_bytes(p);
    /* the 1- and 2-entry blocks each window went through are free again */
    assert_true(bytes <= (size_t)W * 3 * 8 + 3 * 65536);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < W; i += 2) seg_window_free(p, &ws[i]);
        for (int i = 0; i < W; i += 2) {
            seg_winentry_t src[3] = { { 1, 10 }, { 2, 20 }, { 2, 30 } };
            assert_int_equal(seg_window_assign(p, &ws[i], src, 3), 0);
            assert_int_equal(seg_window_cap(p, &ws[i]), 3);
            assert_memory_equal(entries(p, &ws[i]), src, sizeof src);
        }
        assert_int_equal(seg_winpool_bytes(p), bytes);
    }
    for (int i = 1; i < W; i += 2) {
        const seg_winentry_t *e = entries(p, &ws[i]);
        for (int k = 0; k < 3; k++) assert_int_equal(e[k].val, k);
    }
    seg_winpool_destroy(p);
}

/* Inserts e into the sorted array ref of *n entries, after equal ts. */
static void ref_insert(seg_winentry_t *ref, uint32_t *n, seg_winentry_t e)
{
    uint32_t at = *n;
    while (at > 0 && ref[at - 1].ts > e.ts) at--;
    memmove(ref + at + 1, ref + at, (*n - at) * sizeof *ref);
    ref[at] = e;
    (*n)++;
}

/* Entries are kept in 8, 12 or 16 bytes, the narrowest form that holds
 * every entry of the window, and a window widens when an entry needs it:
 * every int64 comes back exactly, in order, whatever the mix. Values sit
 * on both sides of each form's limits. */
static void window_entry_widths_exact(void **state)
{
    (void)state;
    const int64_t T36 = (int64_t)1 << 36, T39 = (int64_t)1 << 39;
    const int64_t V27 = (int64_t)1 << 27, V55 = (int64_t)1 << 55;
    const seg_winentry_t w8[] = {      /* 0 <= ts < 2^36, -2^27 <= val < 2^27 */
        { 0, -V27 }, { 0, 0 }, { 1, -1 }, { 1704067200, 1200001 }, { T36 - 1, V27 - 1 },
    };
    const seg_winentry_t w12[] = {     /* ts in 40 bits, val in 56 */
        { -1, 0 }, { T36, 0 }, { 5, V27 }, { 6, -V27 - 1 }, { -T39, -V55 },
        { T39 - 1, V55 - 1 }, { -62135596800, -200000000000001 }, { 253402300799, 200000000000001 },
    };
    const seg_winentry_t w16[] = {
        { INT64_MIN, 0 }, { -T39 - 1, 5 }, { T39, 9 }, { 7, -V55 - 1 }, { 8, V55 },
        { 9, INT64_MIN }, { 10, INT64_MAX }, { INT64_MAX, INT64_MIN },
    };
    const struct { const seg_winentry_t *e; uint32_t n; unsigned bytes; } set[] = {
        { w8, sizeof w8 / sizeof w8[0], 8 },
        { w12, sizeof w12 / sizeof w12[0], 12 },
        { w16, sizeof w16 / sizeof w16[0], 16 },
    };
    seg_winpool_t *p = seg_winpool_new();
    /* each value alone takes exactly its own form */
    for (int s = 0; s < 3; s++) {
        for (uint32_t i = 0; i < set[s].n; i++) {
            seg_window_t w = { 0 };
            assert_int_equal(seg_window_insert(p, &w, set[s].e[i].ts, set[s].e[i].val), 0);
            assert_int_equal(seg_window_entry_bytes(&w), set[s].bytes);
            seg_winentry_t got = seg_window_at(p, &w, 0);
            assert_memory_equal(&got, &set[s].e[i], sizeof got);
            seg_window_free(p, &w);
            assert_int_equal(seg_window_entry_bytes(&w), 0);
        }
    }
    /* 8-byte window + a 12-byte entry + a 16-byte one */
    for (uint32_t i = 0; i < set[1].n; i++) {
        for (uint32_t j = 0; j < set[2].n; j++) {
            seg_winentry_t ref[32];
            uint32_t n = 0;
            seg_window_t w = { 0 };
            for (int k = (int)set[0].n - 1; k >= 0; k--) {   /* reverse: every insert sorts */
                assert_int_equal(seg_window_insert(p, &w, w8[k].ts, w8[k].val), 0);
                ref_insert(ref, &n, w8[k]);
            }
            assert_int_equal(seg_window_entry_bytes(&w), 8);
            assert_memory_equal(entries(p, &w), ref, n * sizeof *ref);
            check_vals(p, &w, ref);
            assert_int_equal(seg_window_insert(p, &w, w12[i].ts, w12[i].val), 0);
            ref_insert(ref, &n, w12[i]);
            assert_int_equal(seg_window_entry_bytes(&w), 12);
            assert_memory_equal(entries(p, &w), ref, n * sizeof *ref);
            check_vals(p, &w, ref);
            assert_int_equal(seg_window_insert(p, &w, w16[j].ts, w16[j].val), 0);
            ref_insert(ref, &n, w16[j]);
            assert_int_equal(seg_window_entry_bytes(&w), 16);
            assert_int_equal(w.len, n);
            assert_memory_equal(entries(p, &w), ref, n * sizeof *ref);
            check_vals(p, &w, ref);
            /* assign picks the form the inserts ended in, for every prefix */
            for (uint32_t m = 1; m <= n; m++) {
                seg_window_t y = { 0 };
                unsigned want = 8;
                for (uint32_t k = 0; k < m; k++) {
                    seg_window_t one = { 0 };
                    assert_int_equal(seg_window_insert(p, &one, ref[k].ts, ref[k].val), 0);
                    if (seg_window_entry_bytes(&one) > want) want = seg_window_entry_bytes(&one);
                    seg_window_free(p, &one);
                }
                assert_int_equal(seg_window_assign(p, &y, ref, m), 0);
                assert_int_equal(seg_window_entry_bytes(&y), want);
                assert_memory_equal(entries(p, &y), ref, m * sizeof *ref);
                seg_window_free(p, &y);
            }
            /* expiry keeps the form; emptied, the window starts narrow again */
            seg_window_expire(p, &w, 0);
            uint32_t gone = 0;
            while (gone < n && ref[gone].ts <= 0) gone++;
            assert_int_equal(w.len, n - gone);
            if (w.len) {
                assert_int_equal(seg_window_entry_bytes(&w), 16);
                assert_memory_equal(entries(p, &w), ref + gone, w.len * sizeof *ref);
            }
            seg_window_expire(p, &w, INT64_MAX);
            assert_int_equal(w.ref, 0);
            assert_int_equal(seg_window_insert(p, &w, 1, 1), 0);
            assert_int_equal(seg_window_entry_bytes(&w), 8);
            seg_window_free(p, &w);
        }
    }
    /* a window that widens keeps growing through the classes like any other */
    seg_window_t g = { 0 };
    for (int i = 0; i < 100; i++) {
        int64_t ts = i == 3 ? -1 : i == 50 ? INT64_MIN : i;
        assert_int_equal(seg_window_insert(p, &g, ts, -i), 0);
        assert_true(seg_window_cap(p, &g) >= g.len);
        assert_int_equal(seg_window_entry_bytes(&g), i < 3 ? 8 : i < 50 ? 12 : 16);
    }
    assert_int_equal(seg_window_at(p, &g, 0).val, -50);
    assert_int_equal(seg_window_at(p, &g, 1).val, -3);
    assert_int_equal(seg_window_at(p, &g, 99).val, -99);
    seg_window_free(p, &g);
    seg_winpool_destroy(p);
}

/* Ids that share a hash are told apart by their bytes, whichever byte
 * differs, for ids inside the record and in the arena: the collision is
 * forced by passing every id the same hash (seg_store_upsert_hashed
 * trusts the caller's). */
static void ids_apart_under_one_hash(void **state)
{
    (void)state;
    char err[128], base[40], id[40];
    const uint64_t h = 0x1234567890abcdefULL;
    for (size_t len = 1; len <= sizeof base; len++) {
        seg_store_t *st = seg_store_new(err, sizeof err);
        assert_non_null(st);
        int created;
        for (size_t i = 0; i < len; i++) base[i] = (char)('a' + i % 26);
        uint32_t b = seg_store_upsert_hashed(st, base, len, h, &created);
        assert_true(created);
        for (size_t pos = 0; pos < len; pos++) {
            memcpy(id, base, len);
            id[pos] = '#';
            uint32_t v = seg_store_upsert_hashed(st, id, len, h, &created);
            assert_true(created);
            assert_int_not_equal(v, b);
            assert_int_equal(seg_store_upsert_hashed(st, id, len, h, &created), v);
            assert_false(created);
        }
        assert_int_equal(seg_store_upsert_hashed(st, base, len, h, &created), b);
        assert_false(created);
        assert_int_equal(seg_store_count(st), len + 1);
        seg_store_destroy(st);
    }
}

/* seg_window_expire_sum leaves what seg_window_expire leaves and sums
 * it as the engine reads money (odd values counted, values halved and
 * summed), in all three entry widths and across the widths' limits; and
 * seg_window_first_ts is the first entry's ts. */
static void window_expire_sum_matches_reference(void **state)
{
    (void)state;
    enum { N = 40 };
    /* values that take 8, 12 and 16-byte entries, odd and even, signed */
    const int64_t mags[] = { 1, 7, ((int64_t)1 << 27) - 1, (int64_t)1 << 27,
                             ((int64_t)1 << 55) - 1, (int64_t)1 << 55, (int64_t)1 << 57 };
    const int64_t tss[] = { 0, 1704067200, ((int64_t)1 << 36) - 1, (int64_t)1 << 36,
                            -((int64_t)1 << 39), (int64_t)1 << 41 };
    seg_winpool_t *p = seg_winpool_new();
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int round = 0; round < 2000; round++) {
        seg_winentry_t ref[N];
        uint32_t n = 0, want = 1 + (uint32_t)(seg_test_rng(&x) % N);
        seg_window_t w = { 0 }, v = { 0 };
        int64_t base = tss[seg_test_rng(&x) % (sizeof tss / sizeof tss[0])];
        while (n < want) {
            int64_t ts = base + (int64_t)(seg_test_rng(&x) % 100);
            int64_t val = (int64_t)(seg_test_rng(&x) % 1000);
            if (seg_test_rng(&x) % 8 == 0) val = mags[seg_test_rng(&x) % (sizeof mags / sizeof mags[0])];
            if (seg_test_rng(&x) % 2) val = -val;
            assert_int_equal(seg_window_insert(p, &w, ts, val), 0);
            assert_int_equal(seg_window_insert(p, &v, ts, val), 0);
            ref_insert(ref, &n, (seg_winentry_t){ ts, val });
        }
        assert_int_equal(seg_window_first_ts(p, &w), ref[0].ts);
        int64_t cut = base - 1 + (int64_t)(seg_test_rng(&x) % 102);
        int64_t odd = 0, half = 0, want_odd = 0, want_half = 0;
        uint32_t first = 0;
        while (first < n && ref[first].ts <= cut) first++;
        for (uint32_t i = first; i < n; i++) {
            want_odd += ref[i].val & 1;
            want_half += (ref[i].val - (ref[i].val & 1)) / 2;
        }
        seg_window_expire_sum(p, &w, cut, &odd, &half);
        seg_window_expire(p, &v, cut);
        assert_int_equal(odd, want_odd);
        assert_int_equal(half, want_half);
        assert_int_equal(w.len, n - first);
        assert_int_equal(v.len, n - first);
        if (w.len) {
            assert_memory_equal(entries(p, &w), ref + first, w.len * sizeof *ref);
            assert_int_equal(seg_window_first_ts(p, &w), ref[first].ts);
        }
        seg_window_free(p, &w);
        seg_window_free(p, &v);
    }
    /* an empty window sums to nothing */
    seg_window_t e = { 0 };
    int64_t odd = 5, half = 5;
    seg_window_expire_sum(p, &e, 0, &odd, &half);
    assert_int_equal(odd, 0);
    assert_int_equal(half, 0);
    seg_winpool_destroy(p);
}

/* With seg_hugemem's policy on (replay), the store's record chunks and
 * big index tables sit on 2 MiB boundaries and window chunks come from
 * 2 MiB regions, and everything reads back as with the policy off: the
 * store and window tests above, rerun, and 40k windows of 1..12 entries
 * of every width spread over many regions, each checked against its own
 * reference. (Whether the kernel then uses huge pages is its choice; ASan
 * checks the regions are freed once and chunks in them never.) */
static void huge_pages_same_contents(void **state)
{
    seg_hugemem_set(1);
    upsert_find_many(state);
    window_classes_match_reference(state);
    window_blocks_exact_and_reused(state);
    window_expire_sum_matches_reference(state);

    char err[128];
    seg_store_t *st = seg_store_new(err, sizeof err);
    assert_non_null(st);
    int created;
    seg_store_upsert(st, "a", 1, &created);
    assert_int_equal((uintptr_t)seg_store_get(st, 0) % SEG_HUGEMEM_PAGE, 0);
    seg_store_destroy(st);
    void *big = seg_hugemem_alloc(SEG_HUGEMEM_PAGE + 1, 64);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % SEG_HUGEMEM_PAGE, 0);
    memset(big, 1, SEG_HUGEMEM_PAGE + 1);
    free(big);

    enum { W = 40000, MAXE = 12 };
    static seg_window_t ws[W];
    static seg_winentry_t ref[W][MAXE];
    static uint32_t n[W];
    memset(ws, 0, sizeof ws);
    memset(n, 0, sizeof n);
    seg_winpool_t *p = seg_winpool_new();
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int round = 0; round < MAXE; round++) {
        for (int i = 0; i < W; i++) {
            seg_test_rng(&x);
            if (n[i] >= 1 + (uint32_t)(i % MAXE)) continue;
            /* the widths: 8 bytes mostly, 12 for a negative ts, 16 for a
             * value beyond 56 bits */
            int64_t ts = (int64_t)(x % 100000) - (i % 7 == 0 ? 50000 : 0);
            int64_t val = i % 11 == 0 ? (int64_t)(x | (1ULL << 62)) : (int64_t)(x % 1000);
            assert_int_equal(seg_window_insert(p, &ws[i], ts, val), 0);
            ref_insert(ref[i], &n[i], (seg_winentry_t){ ts, val });
        }
    }
    for (int i = 0; i < W; i++) {
        assert_int_equal(ws[i].len, n[i]);
        seg_winentry_t got[MAXE];
        seg_window_read(p, &ws[i], got);
        assert_memory_equal(got, ref[i], n[i] * sizeof *got);
    }
    assert_true(seg_winpool_bytes(p) > 2 * SEG_HUGEMEM_PAGE);   /* several regions */
    seg_winpool_destroy(p);
    seg_hugemem_set(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(upsert_find_many),
        cmocka_unit_test(delete_and_reuse),
        cmocka_unit_test(id_lengths_inline_and_arena),
        cmocka_unit_test(ids_apart_under_one_hash),
        cmocka_unit_test(window_sorted_and_expiring),
        cmocka_unit_test(reserve_up_front),
        cmocka_unit_test(window_assign_equals_inserts),
        cmocka_unit_test(window_classes_match_reference),
        cmocka_unit_test(window_blocks_exact_and_reused),
        cmocka_unit_test(window_entry_widths_exact),
        cmocka_unit_test(window_expire_sum_matches_reference),
        cmocka_unit_test(huge_pages_same_contents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
