/*
 * Invariants every decoder result must satisfy, shared by the event fuzz
 * targets. A fuzz target that only checks "did not crash" would miss a
 * decoder that accepts a 0-byte id or a negative amount; these checks turn
 * the schema of docs/events.md into properties. Violations abort(), which
 * libFuzzer reports as a crash and the corpus replay as a failed test.
 */
#ifndef SEG_FUZZ_EVENT_INVARIANTS_H
#define SEG_FUZZ_EVENT_INVARIANTS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/seg_decode.h"
#include "util/seg_money.h"
#include "util/seg_ts.h"

#define INV(cond)                                                        \
    do {                                                                 \
        if (!(cond)) {                                                   \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond,     \
                    __FILE__, __LINE__);                                 \
            abort();                                                     \
        }                                                                \
    } while (0)

static int inv_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2
                 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (k == 0 || n - i < k) return 0;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xc0) != 0x80) return 0;
        if (k == 3 && c == 0xe0 && s[i + 1] < 0xa0) return 0;
        if (k == 3 && c == 0xed && s[i + 1] > 0x9f) return 0;
        if (k == 4 && c == 0xf0 && s[i + 1] < 0x90) return 0;
        if (k == 4 && c == 0xf4 && s[i + 1] > 0x8f) return 0;
        i += k;
    }
    return 1;
}

/* What rules may keep of an attribute: a string is valid UTF-8 without a
 * NUL, a key has no NUL; and a capture (what replay makes of every event
 * it reads ahead) keeps each key once, with the value of its last
 * occurrence, and drops nothing when given room for every member. */
static void check_attrs(const seg_attrs_t *attrs)
{
    seg_attrs_iter_t it;
    seg_attr_t a, last;
    size_t n = 0;
    seg_attrs_iter_init(&it, attrs);
    while (seg_attrs_iter_next(&it, &a)) {
        n++;
        INV(a.type >= SEG_ATTR_NULL && a.type <= SEG_ATTR_OTHER);
        INV(a.key_len == 0 || memchr(a.key, '\0', a.key_len) == NULL);
        if (a.type == SEG_ATTR_STRING) {
            INV(a.str_len == 0 || memchr(a.str, '\0', a.str_len) == NULL);
            INV(inv_utf8((const unsigned char *)a.str, a.str_len));
        }
    }
    if (attrs->fmt == SEG_ATTRS_NONE) INV(n == 0);
    if (n == 0 || n > 4096) return;
    seg_attr_t *slots = malloc(n * sizeof *slots);
    size_t room = 0;
    seg_attrs_iter_init(&it, attrs);
    while (seg_attrs_iter_next(&it, &a))
        room += a.key_len + (a.type == SEG_ATTR_STRING ? a.str_len : 0);
    char *bytes = malloc(room ? room : 1);
    INV(slots && bytes);
    seg_attrs_t cap = *attrs;
    INV(seg_attrs_capture(&cap, NULL, NULL, SIZE_MAX, slots, n, bytes, room) == 0);
    INV(cap.fmt == SEG_ATTRS_CAPTURED && cap.n <= n);
    /* every captured key holds the last value the event gave it */
    for (uint32_t k = 0; k < cap.n; k++) {
        int found = 0;
        seg_attrs_iter_init(&it, attrs);
        while (seg_attrs_iter_next(&it, &a))
            if (a.key_len == slots[k].key_len &&
                (a.key_len == 0 || memcmp(a.key, slots[k].key, a.key_len) == 0)) {
                last = a;
                found = 1;
            }
        INV(found && last.type == slots[k].type);
        if (last.type == SEG_ATTR_STRING)
            INV(last.str_len == slots[k].str_len &&
                (last.str_len == 0 || memcmp(last.str, slots[k].str, last.str_len) == 0));
        if (last.type == SEG_ATTR_NUMBER)
            INV(memcmp(&last.num, &slots[k].num, sizeof last.num) == 0);
        if (last.type == SEG_ATTR_BOOL) INV(last.b == slots[k].b);
    }
    free(slots);
    free(bytes);
}

static void check_result(seg_reject_t r, const seg_event_t *ev,
                         const char *err)
{
    INV((int)r >= 0 && r < SEG_REJ__COUNT);
    INV(strcmp(seg_reject_name(r), "unknown") != 0);
    if (r != SEG_REJ_NONE) {
        size_t n = strlen(err);
        INV(n > 0);
        INV(inv_utf8((const unsigned char *)err, n));
        for (size_t i = 0; i < n; i++) INV((unsigned char)err[i] >= 0x20);
        INV(ev->customer_id == NULL && ev->type == 0 && ev->ts == 0);
        return;
    }
    INV(ev->type == SEG_EV_PURCHASE || ev->type == SEG_EV_REFUND ||
        ev->type == SEG_EV_CONTACT || ev->type == SEG_EV_PROFILE);
    if (ev->type == SEG_EV_CONTACT)
        INV(ev->kind >= SEG_CONTACT_VISIT && ev->kind < SEG_CONTACT__COUNT);
    else if (ev->type == SEG_EV_PROFILE)
        INV(ev->kind == SEG_CONTACT_NONE && !ev->has_amount);
    else
        INV(ev->kind == SEG_CONTACT_NONE && ev->has_amount);
    INV(ev->customer_id != NULL);
    INV(ev->customer_id_len >= 1 && ev->customer_id_len <= SEG_CUSTOMER_ID_MAX);
    INV(memchr(ev->customer_id, '\0', ev->customer_id_len) == NULL);
    INV(inv_utf8((const unsigned char *)ev->customer_id, ev->customer_id_len));
    INV(ev->amount >= 0 && ev->amount <= SEG_MONEY_MAX);
    INV(ev->has_amount || ev->amount == 0);
    INV(ev->rating >= 0 && ev->rating <= 5);
    INV(ev->event_id != NULL || ev->event_id_len == 0);
    if (ev->event_id)
        INV(memchr(ev->event_id, '\0', ev->event_id_len) == NULL);
    INV(ev->ts >= SEG_TS_MIN && ev->ts <= SEG_TS_MAX);
    char buf[SEG_TS_BUFSZ];
    int64_t back;
    INV(seg_ts_format(ev->ts, buf) == 20);
    INV(seg_ts_parse_rfc3339(buf, 20, &back) == 0 && back == ev->ts);
    check_attrs(&ev->attrs);
}

/* The same input decoded twice gives the same answer: no state leaks from
 * one record into the next through the reused scratch memory. */
static void check_same(seg_reject_t r1, const seg_event_t *a, seg_reject_t r2,
                       const seg_event_t *b)
{
    INV(r1 == r2);
    if (r1 != SEG_REJ_NONE) return;
    INV(a->type == b->type && a->kind == b->kind && a->ts == b->ts);
    INV(a->amount == b->amount && a->has_amount == b->has_amount);
    INV(a->rating == b->rating && a->customer_id_len == b->customer_id_len);
    INV(a->event_id_len == b->event_id_len);
}

#endif
