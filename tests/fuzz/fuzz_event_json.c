/*
 * libFuzzer target for seg_decode_json: any bytes, as one record and as
 * NDJSON lines, must give a reason or an event that satisfies the schema
 * invariants (event_invariants.h), never a crash, leak or over-read. The
 * input is not NUL-terminated, which is how the reader hands lines over.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event_invariants.h"

static seg_decoder_t *dec;

static void one(const char *buf, size_t len)
{
    seg_event_t ev, ev2;
    char err[512], err2[512];
    err[0] = err2[0] = '\0';
    seg_reject_t r = seg_decode_json(dec, buf, len, &ev, err, sizeof err);
    check_result(r, &ev, err);
    /* copy what we compare: the next call invalidates ev's strings */
    char id[SEG_CUSTOMER_ID_MAX];
    if (r == SEG_REJ_NONE) memcpy(id, ev.customer_id, ev.customer_id_len);
    seg_reject_t r2 = seg_decode_json(dec, buf, len, &ev2, err2, sizeof err2);
    check_same(r, &ev, r2, &ev2);
    if (r == SEG_REJ_NONE)
        INV(memcmp(id, ev2.customer_id, ev2.customer_id_len) == 0);
    else
        INV(strcmp(err, err2) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dec) dec = seg_decoder_new();
    if (!dec) abort();
    /* exact-size heap copy, so ASan catches any read past len */
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    one(buf, size);
    const char *p = buf, *end = buf + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;          /* whole input already covered above */
        one(p, (size_t)(nl - p));
        p = nl + 1;
    }
    free(buf);
    return 0;
}
