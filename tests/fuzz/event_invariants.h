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
        ev->type == SEG_EV_CONTACT);
    if (ev->type == SEG_EV_CONTACT)
        INV(ev->kind >= SEG_CONTACT_VISIT && ev->kind <= SEG_CONTACT_FEEDBACK);
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
