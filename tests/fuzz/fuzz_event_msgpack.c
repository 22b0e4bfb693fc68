/*
 * libFuzzer target for the MessagePack decoder. Three views of the same
 * bytes must agree with the schema invariants (event_invariants.h):
 *  - the whole input as one record (seg_decode_msgpack, and
 *    seg_decode_msgpack_delimited when the splitter says it is one value);
 *  - the input as a stream split with seg_msgpack_value_size, each value
 *    unpacked by msgpack-c and checked with seg_decode_msgpack_object, the
 *    way a reader can process a file;
 *  - consistency: a record the splitter calls one complete value is never
 *    rejected as truncated, and one it calls incomplete is never accepted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event_invariants.h"

static seg_decoder_t *dec;
static msgpack_zone zone;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dec) {
        dec = seg_decoder_new();
        if (!dec || !msgpack_zone_init(&zone, MSGPACK_ZONE_CHUNK_SIZE)) abort();
    }
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);

    seg_event_t ev, ev2;
    char err[512], err2[512];
    err[0] = err2[0] = '\0';
    seg_reject_t r = seg_decode_msgpack(dec, buf, size, &ev, err, sizeof err);
    check_result(r, &ev, err);
    char id[SEG_CUSTOMER_ID_MAX];
    if (r == SEG_REJ_NONE) memcpy(id, ev.customer_id, ev.customer_id_len);
    /* strings were copied: scribbling over the input must not change them */
    memset(buf, 0xA5, size);
    if (r == SEG_REJ_NONE)
        INV(memcmp(id, ev.customer_id, ev.customer_id_len) == 0);
    if (size) memcpy(buf, data, size);
    seg_reject_t r2 = seg_decode_msgpack(dec, buf, size, &ev2, err2, sizeof err2);
    check_same(r, &ev, r2, &ev2);

    size_t vs = 0;
    int whole = seg_msgpack_value_size(buf, size, &vs);
    if (whole == 1 && vs == size) {
        INV(r != SEG_REJ_INVALID_MSGPACK || strstr(err, "nested") != NULL);
        /* what the file reader does with a delimited record: same answer */
        seg_reject_t r3 = seg_decode_msgpack_delimited(dec, buf, size, &ev2, err2, sizeof err2);
        check_same(r, &ev, r3, &ev2);
    } else
        INV(r == SEG_REJ_INVALID_MSGPACK);

    /* stream view */
    size_t off = 0;
    while (off < size) {
        size_t n = 0;
        if (seg_msgpack_value_size(buf + off, size - off, &n) != 1) break;
        INV(n >= 1 && n <= size - off);
        msgpack_zone_clear(&zone);
        msgpack_object obj;
        size_t o = 0;
        if (msgpack_unpack(buf + off, n, &o, &zone, &obj) ==
            MSGPACK_UNPACK_SUCCESS) {
            INV(o == n);
            r = seg_decode_msgpack_object(dec, &obj, &ev, err, sizeof err);
            check_result(r, &ev, err);
            /* both entry points apply the same rules to the same value */
            r2 = seg_decode_msgpack(dec, buf + off, n, &ev2, err2, sizeof err2);
            INV(r == r2);
        }
        off += n;
    }
    free(buf);
    return 0;
}
