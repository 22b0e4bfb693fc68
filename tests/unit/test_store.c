/* seg_store and seg_window: lookups across incremental rehash, stable
 * records, sorted windows with exact expiry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "state/seg_store.h"
#include "state/seg_window.h"

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
        assert_memory_equal(c->id, id, (size_t)len);
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
        assert_memory_equal(c->id, id, (size_t)len);
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
    seg_window_t w = { 0, 0 };
    assert_null(seg_window_entries(p, &w));
    int64_t in[] = { 50, 10, 30, 30, 70, 20 };
    for (int i = 0; i < 6; i++) assert_int_equal(seg_window_insert(p, &w, in[i], i), 0);
    assert_int_equal(w.len, 6);
    const seg_winentry_t *e = seg_window_entries(p, &w);
    int64_t want_ts[] = { 10, 20, 30, 30, 50, 70 };
    int64_t want_val[] = { 1, 5, 2, 3, 0, 4 };   /* equal ts keep insertion order */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(e[i].ts, want_ts[i]);
        assert_int_equal(e[i].val, want_val[i]);
    }
    seg_window_expire(p, &w, 29);           /* drops ts <= 29 */
    e = seg_window_entries(p, &w);
    assert_int_equal(w.len, 4);
    assert_int_equal(e[0].ts, 30);
    seg_window_expire(p, &w, 30);           /* the edge itself leaves */
    assert_int_equal(w.len, 2);
    assert_int_equal(seg_window_entries(p, &w)[0].ts, 50);
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
            const seg_winentry_t *x = seg_window_entries(p, &ws[i]);
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
        seg_window_t a = { 0, 0 }, b = { 0, 0 };
        for (uint32_t i = 0; i < n; i++) src[i] = (seg_winentry_t){ 100 + i / 2, (int64_t)i };
        assert_int_equal(seg_window_insert(p, &a, 1, 1), 0);   /* replaced */
        assert_int_equal(seg_window_assign(p, &a, src, n), 0);
        for (uint32_t i = 0; i < n; i++)
            assert_int_equal(seg_window_insert(p, &b, src[i].ts, src[i].val), 0);
        assert_int_equal(a.len, n);
        if (n) assert_memory_equal(seg_window_entries(p, &a), seg_window_entries(p, &b),
                                   n * sizeof(seg_winentry_t));
        else assert_int_equal(a.ref, 0);
        /* and it keeps working as a window */
        assert_int_equal(seg_window_insert(p, &a, 99, -1), 0);
        assert_int_equal(seg_window_entries(p, &a)[0].ts, 99);
        seg_window_expire(p, &a, 1000);
        assert_int_equal(a.len, 0);
        seg_window_free(p, &b);
    }
    seg_winpool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(upsert_find_many),
        cmocka_unit_test(delete_and_reuse),
        cmocka_unit_test(window_sorted_and_expiring),
        cmocka_unit_test(reserve_up_front),
        cmocka_unit_test(window_assign_equals_inserts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
