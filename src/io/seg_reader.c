/*
 * seg_reader: a sliding buffer over read(2), so inputs of any size stream
 * through a buffer of about max_record_bytes + 1 MiB, and a record never
 * costs a copy unless it straddles a refill.
 */
#include "io/seg_reader.h"

#include "event/seg_decode.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (1u << 20)

struct seg_reader {
    int              fd;
    int              own_fd;
    int              eof;
    seg_format_t     format;
    size_t           max_record;
    char            *buf;
    size_t           cap, start, end;  /* unread bytes: buf[start..end) */
    uint64_t         base;             /* input offset of buf[0] */
    uint64_t         line;
    uint64_t         blank;
    int              skipping;         /* discarding the rest of an oversized line */
    char             name[256];
};

seg_reader_t *seg_reader_open(const char *path, seg_format_t format,
                              size_t max_record_bytes,
                              char *errstr, size_t errstr_size)
{
    seg_reader_t *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    r->fd = -1;
    r->format = format;
    r->max_record = max_record_bytes;
    r->cap = max_record_bytes + READ_CHUNK;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        snprintf(errstr, errstr_size, "out of memory for a %zu-byte input buffer", r->cap);
        goto fail;
    }
    if (strcmp(path, "-") == 0) {
        r->fd = STDIN_FILENO;
        snprintf(r->name, sizeof r->name, "stdin");
    } else {
        r->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0) {
            snprintf(errstr, errstr_size, "cannot open input '%s': %s", path, strerror(errno));
            goto fail;
        }
        r->own_fd = 1;
        snprintf(r->name, sizeof r->name, "%s", path);
#ifdef POSIX_FADV_SEQUENTIAL
        (void)posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    }
    return r;
fail:
    seg_reader_close(r);
    return NULL;
}

void seg_reader_close(seg_reader_t *r)
{
    if (!r) return;
    if (r->own_fd && r->fd >= 0) close(r->fd);
    free(r->buf);
    free(r);
}

uint64_t seg_reader_blank_lines(const seg_reader_t *r) { return r->blank; }
uint64_t seg_reader_bytes(const seg_reader_t *r) { return r->base + r->start; }
const char *seg_reader_name(const seg_reader_t *r) { return r->name; }

/* Moves unread bytes to the front and reads more. Returns bytes read,
 * 0 at EOF, -1 on error. */
static ssize_t refill(seg_reader_t *r, char *errstr, size_t errstr_size)
{
    if (r->eof) return 0;
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->base += r->start;
        r->end -= r->start;
        r->start = 0;
    }
    size_t room = r->cap - r->end;
    if (room == 0) return 0;
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->end, room);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(errstr, errstr_size, "read error on '%s': %s", r->name, strerror(errno));
            return -1;
        }
        if (n == 0) r->eof = 1;
        r->end += (size_t)n;
        return n;
    }
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

static void set_reject(seg_record_t *rec, seg_reject_t why, const char *fmt, size_t n)
{
    rec->reject = why;
    snprintf(rec->why, sizeof rec->why, fmt, n);
}

static int next_json(seg_reader_t *r, seg_record_t *rec, char *errstr, size_t errstr_size)
{
    size_t scanned = 0;    /* bytes after start already known to hold no '\n' */
    for (;;) {
        char *s = r->buf + r->start;
        size_t avail = r->end - r->start;
        char *nl = memchr(s + scanned, '\n', avail - scanned);
        if (r->skipping) {
            /* Discard the tail of an oversized line already reported. */
            if (!nl) {
                r->start = r->end;
                scanned = 0;
                ssize_t n = refill(r, errstr, errstr_size);
                if (n < 0) return -1;
                if (n == 0) return 0;
                continue;
            }
            r->start += (size_t)(nl - s) + 1;
            r->skipping = 0;
            scanned = 0;
            continue;
        }
        if (nl || (r->eof && avail > 0)) {
            size_t len = nl ? (size_t)(nl - s) : avail;
            r->line++;
            memset(rec, 0, sizeof *rec);
            rec->line = r->line;
            rec->offset = r->base + r->start;
            r->start += len + (nl ? 1 : 0);
            if (len > 0 && s[len - 1] == '\r') len--;
            if (len > r->max_record) {
                rec->data = s;
                rec->len = r->max_record;
                set_reject(rec, SEG_REJ_OVERSIZED_RECORD,
                           "line is longer than input.max_record_bytes (%zu)", r->max_record);
                return 1;
            }
            if (is_blank(s, len)) {
                r->blank++;
                scanned = 0;
                continue;
            }
            rec->data = s;
            rec->len = len;
            return 1;
        }
        if (r->eof) return 0;
        if (avail > r->max_record + 1) {
            /* No newline within the limit: report the head, skip the rest. */
            r->line++;
            memset(rec, 0, sizeof *rec);
            rec->line = r->line;
            rec->offset = r->base + r->start;
            rec->data = s;
            rec->len = r->max_record;
            set_reject(rec, SEG_REJ_OVERSIZED_RECORD,
                       "line is longer than input.max_record_bytes (%zu)", r->max_record);
            r->start = r->end;
            r->skipping = 1;
            return 1;
        }
        scanned = avail;
        ssize_t n = refill(r, errstr, errstr_size);
        if (n < 0) return -1;
    }
}

static int is_map_header(unsigned char b)
{
    return (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf;
}

/* Splits the stream with seg_msgpack_value_size, which never allocates:
 * letting msgpack-c unpack raw input here would reserve memory for every
 * element a header claims (2^32 of them in 5 bytes) before reading any. */
static int next_msgpack(seg_reader_t *r, seg_record_t *rec, char *errstr, size_t errstr_size)
{
    size_t garbage = 0;   /* undecodable bytes at buf[start..start+garbage) */
    for (;;) {
        size_t pos = r->start + garbage;
        size_t avail = r->end - pos;
        if (avail == 0 && !r->eof) {
            /* refill keeps buf[start..end), so skipped bytes stay reportable */
            ssize_t n = refill(r, errstr, errstr_size);
            if (n < 0) return -1;
            if (n > 0 || r->eof) continue;
        }
        if (avail == 0) {
            if (garbage) goto report_garbage;
            return 0;
        }
        if (garbage && !is_map_header((unsigned char)r->buf[pos])) {
            if (++garbage >= r->max_record) goto report_garbage;
            continue;
        }
        size_t size = 0;
        int got = seg_msgpack_value_size(r->buf + pos, avail, &size);
        if (got == 0 && !r->eof && avail <= r->max_record) {
            ssize_t n = refill(r, errstr, errstr_size);
            if (n < 0) return -1;
            if (n > 0 || r->eof) continue;
        }
        if (got == 1 && size <= r->max_record) {
            if (garbage) goto report_garbage;   /* the value comes out next call */
            memset(rec, 0, sizeof *rec);
            rec->offset = r->base + r->start;
            rec->data = r->buf + r->start;
            rec->len = size;
            r->start += size;
            return 1;
        }
        if (got == 1 || (got == 0 && avail > r->max_record && !garbage)) {
            /* A value longer than the limit: report its head, then resync. */
            if (!garbage) {
                memset(rec, 0, sizeof *rec);
                rec->offset = r->base + r->start;
                rec->data = r->buf + r->start;
                rec->len = r->max_record;
                set_reject(rec, SEG_REJ_OVERSIZED_RECORD,
                           "value is longer than input.max_record_bytes (%zu)", r->max_record);
                if (got == 1 && size <= avail) r->start += size;
                else r->start += r->max_record;
                return 1;
            }
        }
        if (got == 0 && r->eof && !garbage) {
            memset(rec, 0, sizeof *rec);
            rec->offset = r->base + r->start;
            rec->data = r->buf + r->start;
            rec->len = avail;
            set_reject(rec, SEG_REJ_INVALID_MSGPACK,
                       "input ends inside a MessagePack value (%zu bytes left)", avail);
            r->start = r->end;
            return 1;
        }
        /* Undecodable from here: skip a byte and look for the next map. */
        if (++garbage >= r->max_record) goto report_garbage;
    }
report_garbage:
    memset(rec, 0, sizeof *rec);
    rec->offset = r->base + r->start;
    rec->data = r->buf + r->start;
    rec->len = garbage;
    r->start += garbage;
    set_reject(rec, SEG_REJ_INVALID_MSGPACK,
               "%zu bytes do not decode as MessagePack; skipped to the next map", garbage);
    return 1;
}

int seg_reader_next(seg_reader_t *r, seg_record_t *rec, char *errstr, size_t errstr_size)
{
    if (r->end == 0 && !r->eof) {
        if (refill(r, errstr, errstr_size) < 0) return -1;
    }
    return r->format == SEG_FMT_MSGPACK ? next_msgpack(r, rec, errstr, errstr_size)
                                        : next_json(r, rec, errstr, errstr_size);
}
