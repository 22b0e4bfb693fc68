/*
 * seg_snapshot: write and load partition snapshots.
 *
 * Writing streams customers through a msgpack packer into a 1 MiB stdio
 * buffer while a CRC-32 (zlib) runs over the bytes, then patches the
 * header. Loading reads the file whole, checks length and CRC, then walks
 * the values: each customer is first delimited with
 * seg_msgpack_value_size (no allocation), so a corrupt element count can
 * never make msgpack-c reserve gigabytes, then unpacked into a zone that
 * is reused for every customer. The engine is sized from the header's
 * customer count first (trusted only as far as the bytes go).
 */
#include "persist/seg_snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "event/seg_decode.h"
#include "persist/seg_rulestate.h"
#include "util/seg_clock.h"

#define MAGIC      "SEGDSNP1"
#define HEADER_LEN 24

static double mono(void) { return seg_clock_s(CLOCK_MONOTONIC); }

void seg_snapshot_path(const char *dir, const char *topic, int32_t partition,
                       char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s.%d.snap", dir, topic, partition);
}

/* ---- customer records ---------------------------------------------------- */

static void pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void seg_snapshot_pack_customer(seg_engine_t *e, msgpack_packer *pk, const seg_cust_state_t *st)
{
    msgpack_pack_array(pk, 10);
    pack_str(pk, st->id, st->id_len);
    msgpack_pack_int64(pk, st->now);
    msgpack_pack_int64(pk, st->first_purchase);
    msgpack_pack_int64(pk, st->last_purchase);
    msgpack_pack_uint32(pk, st->seq);
    msgpack_pack_uint8(pk, st->flags);
    msgpack_pack_bin(pk, SEG_DIM__COUNT);
    msgpack_pack_bin_body(pk, st->last, SEG_DIM__COUNT);
    msgpack_pack_array(pk, st->n_money * 2);
    for (uint32_t i = 0; i < st->n_money; i++) {
        msgpack_pack_int64(pk, st->money[i].ts);
        msgpack_pack_int64(pk, st->money[i].val);
    }
    msgpack_pack_array(pk, st->n_complaints);
    for (uint32_t i = 0; i < st->n_complaints; i++)
        msgpack_pack_int64(pk, st->complaints[i].ts);
    seg_engine_pack_rule_state(e, st, pk);
}

static int get_i64(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > INT64_MAX) return -1;
        *v = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 0;
    }
    return -1;
}

int seg_snapshot_unpack_customer(const msgpack_object *o, seg_cust_state_t *st,
                                 seg_winentry_t **scratch, size_t *scratch_cap,
                                 char *errstr, size_t errstr_size)
{
    memset(st, 0, sizeof *st);
    const char *why = NULL;
    int64_t v;
    /* 9 elements up to version 1, 10 with the rule state */
    if (o->type != MSGPACK_OBJECT_ARRAY || (o->via.array.size != 9 && o->via.array.size != 10)) {
        why = "a customer is not a 9- or 10-element array";
        goto bad;
    }
    const msgpack_object *a = o->via.array.ptr;
    if (a[0].type != MSGPACK_OBJECT_STR || a[0].via.str.size == 0 ||
        a[0].via.str.size > SEG_CUSTOMER_ID_MAX) {
        why = "bad customer id";
        goto bad;
    }
    st->id = a[0].via.str.ptr;
    st->id_len = a[0].via.str.size;
    if (get_i64(&a[1], &st->now) || get_i64(&a[2], &st->first_purchase) ||
        get_i64(&a[3], &st->last_purchase) || get_i64(&a[4], &v) || v < 0 || v > UINT32_MAX) {
        why = "bad customer clock or seq";
        goto bad;
    }
    st->seq = (uint32_t)v;
    if (get_i64(&a[5], &v) || v < 0 || v > 3) {
        why = "bad customer flags";
        goto bad;
    }
    st->flags = (uint8_t)v;
    if (a[6].type != MSGPACK_OBJECT_BIN || a[6].via.bin.size != SEG_DIM__COUNT) {
        why = "bad last-values field";
        goto bad;
    }
    memcpy(st->last, a[6].via.bin.ptr, SEG_DIM__COUNT);
    for (int d = 0; d < SEG_DIM__COUNT; d++) {
        if (st->last[d] >= seg_dim_value_count((seg_dim_t)d)) {
            why = "a last value is out of range";
            goto bad;
        }
    }
    if (a[7].type != MSGPACK_OBJECT_ARRAY || a[7].via.array.size % 2 ||
        a[8].type != MSGPACK_OBJECT_ARRAY) {
        why = "bad window arrays";
        goto bad;
    }
    size_t nm = a[7].via.array.size / 2, nc = a[8].via.array.size;
    if (nm + nc > *scratch_cap) {
        size_t cap = nm + nc + 64;
        seg_winentry_t *ns = realloc(*scratch, cap * sizeof *ns);
        if (!ns) {
            why = "out of memory";
            goto bad;
        }
        *scratch = ns;
        *scratch_cap = cap;
    }
    seg_winentry_t *m = *scratch, *c = *scratch + nm;
    for (size_t i = 0; i < nm; i++) {
        if (get_i64(&a[7].via.array.ptr[2 * i], &m[i].ts) ||
            get_i64(&a[7].via.array.ptr[2 * i + 1], &m[i].val) ||
            (i > 0 && m[i].ts < m[i - 1].ts)) {
            why = "bad or unsorted purchase window";
            goto bad;
        }
    }
    for (size_t i = 0; i < nc; i++) {
        c[i].val = 0;
        if (get_i64(&a[8].via.array.ptr[i], &c[i].ts) || (i > 0 && c[i].ts < c[i - 1].ts)) {
            why = "bad or unsorted complaint window";
            goto bad;
        }
    }
    st->money = m;
    st->n_money = (uint32_t)nm;
    st->complaints = c;
    st->n_complaints = (uint32_t)nc;
    st->rules = o->via.array.size == 10 ? &a[9] : NULL;
    return 0;
bad:
    snprintf(errstr, errstr_size, "%s", why);
    return -1;
}

/* ---- writing ----------------------------------------------------------------- */

typedef struct writer {
    FILE    *f;
    uLong    crc;
    uint64_t len;
    int      failed;
} writer_t;

static int write_cb(void *data, const char *buf, size_t len)
{
    writer_t *w = data;
    if (w->failed) return -1;
    if (fwrite(buf, 1, len, w->f) != len) {
        w->failed = errno ? errno : EIO;
        return -1;
    }
    w->crc = crc32(w->crc, (const Bytef *)buf, (uInt)len);
    w->len += len;
    return 0;
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int seg_snapshot_write(const char *dir, const char *topic, int32_t partition,
                       seg_engine_t *e, int64_t next_offset,
                       seg_snapshot_info_t *info, char *errstr, size_t errstr_size)
{
    double t0 = mono();
    char path[1024], tmp[1100];
    seg_snapshot_path(dir, topic, partition, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    static char iobuf[1 << 20];
    writer_t w = { .crc = crc32(0L, Z_NULL, 0) };
    w.f = fopen(tmp, "wb");
    if (!w.f) {
        snprintf(errstr, errstr_size, "cannot create snapshot '%s': %s", tmp, strerror(errno));
        return -1;
    }
    setvbuf(w.f, iobuf, _IOFBF, sizeof iobuf);
    unsigned char hdr[HEADER_LEN] = { 0 };
    memcpy(hdr, MAGIC, 8);
    if (fwrite(hdr, 1, HEADER_LEN, w.f) != HEADER_LEN) w.failed = errno ? errno : EIO;

    msgpack_packer pk;
    msgpack_packer_init(&pk, &w, write_cb);
    seg_engine_stats_t st;
    seg_engine_stats(e, &st);
    msgpack_pack_map(&pk, 7 + SEG_RULESTATE_FIELDS);
    pack_str(&pk, "v", 1);
    msgpack_pack_int(&pk, 2);
    seg_rulestate_pack(e, &pk);
    pack_str(&pk, "topic", 5);
    pack_str(&pk, topic, strlen(topic));
    pack_str(&pk, "partition", 9);
    msgpack_pack_int32(&pk, partition);
    pack_str(&pk, "next_offset", 11);
    msgpack_pack_int64(&pk, next_offset);
    pack_str(&pk, "max_ts", 6);
    msgpack_pack_int64(&pk, seg_engine_max_ts(e));
    pack_str(&pk, "customers", 9);
    msgpack_pack_uint64(&pk, st.customers);
    pack_str(&pk, "graves", 6);
    msgpack_pack_uint64(&pk, seg_engine_grave_count(e));
    uint64_t n = 0;
    uint32_t high = seg_engine_customer_high(e);
    for (uint32_t i = 0; i < high && !w.failed; i++) {
        seg_cust_state_t cs;
        if (seg_engine_customer_get(e, i, &cs) != 0) continue;
        seg_snapshot_pack_customer(e, &pk, &cs);
        n++;
    }
    /* Evicted customers' last seqs, so a returning one never reuses an id. */
    for (size_t i = 0; i < seg_engine_grave_slots(e) && !w.failed; i++) {
        uint64_t h;
        uint32_t seq;
        if (seg_engine_grave_get(e, i, &h, &seq) != 0) continue;
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint64(&pk, h);
        msgpack_pack_uint32(&pk, seq);
    }
    put_le(hdr + 8, w.len, 8);
    put_le(hdr + 16, w.crc, 4);
    if (!w.failed && (fseek(w.f, 0, SEEK_SET) != 0 || fwrite(hdr, 1, HEADER_LEN, w.f) != HEADER_LEN))
        w.failed = errno ? errno : EIO;
    if (!w.failed && (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0)) w.failed = errno ? errno : EIO;
    if (fclose(w.f) != 0 && !w.failed) w.failed = errno ? errno : EIO;
    if (w.failed) {
        snprintf(errstr, errstr_size, "cannot write snapshot '%s': %s", tmp, strerror(w.failed));
        unlink(tmp);
        return -1;
    }
    const char *fault = getenv("SEGD_FAULT");
    if (fault && strcmp(fault, "snapshot-before-rename") == 0) raise(SIGKILL);
    if (rename(tmp, path) != 0) {
        snprintf(errstr, errstr_size, "cannot rename snapshot to '%s': %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (fsync_dir(dir) != 0) {
        snprintf(errstr, errstr_size, "cannot fsync directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    if (info) {
        memset(info, 0, sizeof *info);
        snprintf(info->topic, sizeof info->topic, "%s", topic);
        info->partition = partition;
        info->next_offset = next_offset;
        info->max_ts = seg_engine_max_ts(e);
        info->customers = n;
        info->bytes = HEADER_LEN + w.len;
        info->seconds = mono() - t0;
    }
    return 0;
}

/* ---- loading ------------------------------------------------------------------ */

static int header_field(const msgpack_object *m, const char *key, const msgpack_object **out)
{
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, k->via.str.size) == 0) {
            *out = &m->via.map.ptr[i].val;
            return 0;
        }
    }
    return -1;
}

int seg_snapshot_parse(const char *buf, size_t len, seg_engine_t *e,
                       seg_snapshot_info_t *info, char *errstr, size_t errstr_size)
{
    int rc = -1;
    msgpack_zone zones[2];
    msgpack_zone_init(&zones[0], 4096);
    msgpack_zone_init(&zones[1], 4096);
    seg_winentry_t *scratch = NULL;
    size_t scratch_cap = 0, off = 0, size;
    msgpack_object o;
    char why[200];
    memset(info, 0, sizeof *info);

    if (seg_msgpack_value_size(buf, len, &size) != 1 ||
        msgpack_unpack(buf, size, &off, &zones[0], &o) != MSGPACK_UNPACK_SUCCESS ||
        o.type != MSGPACK_OBJECT_MAP) {
        snprintf(errstr, errstr_size, "malformed header");
        goto out;
    }
    const msgpack_object *v;
    int64_t x;
    if (header_field(&o, "v", &v) || get_i64(v, &x) || (x != 1 && x != 2)) {
        snprintf(errstr, errstr_size, "unsupported snapshot version");
        goto out;
    }
    /* The rule set the customers were written under, before any of them
     * is read (their rule state is in its layout). */
    if (seg_rulestate_apply(e, &o, errstr, errstr_size) != 0) goto out;
    if (header_field(&o, "topic", &v) || v->type != MSGPACK_OBJECT_STR ||
        v->via.str.size >= sizeof info->topic) {
        snprintf(errstr, errstr_size, "malformed header: topic");
        goto out;
    }
    memcpy(info->topic, v->via.str.ptr, v->via.str.size);
    int64_t customers, graves = 0;
    if (header_field(&o, "graves", &v) == 0 && (get_i64(v, &graves) || graves < 0)) {
        snprintf(errstr, errstr_size, "malformed header: graves");
        goto out;
    }
    if (header_field(&o, "partition", &v) || get_i64(v, &x) || x < 0 || x > INT32_MAX ||
        (info->partition = (int32_t)x, 0) ||
        header_field(&o, "next_offset", &v) || get_i64(v, &info->next_offset) ||
        header_field(&o, "max_ts", &v) || get_i64(v, &info->max_ts) ||
        header_field(&o, "customers", &v) || get_i64(v, &customers) || customers < 0) {
        snprintf(errstr, errstr_size, "malformed header fields");
        goto out;
    }
    off = size;
    /* Size the engine for the customers that follow. The count is only
     * trusted as far as the bytes go: a customer takes at least 16. */
    {
        uint64_t fit = (len - off) / 16;
        uint64_t want = (uint64_t)customers < fit ? (uint64_t)customers : fit;
        (void)seg_engine_reserve(e, want > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)want);
    }
    /* Read-ahead, as replay does: customers are unpacked up to AHEAD
     * ahead of the one being put, and each one's id index slot is
     * prefetched as it is unpacked, so inserting it does not wait on a
     * cache miss (one per customer otherwise: the index of 10M customers
     * is 134 MB). Unpacked objects live in two zones used in turn, ZONE_SPAN
     * customers each; a zone is cleared only when it comes round again,
     * long after its customers were put. A customer that does not decode
     * is reported when it is unpacked, up to AHEAD customers before the
     * ones ahead of it are put (the load fails either way). */
    enum { AHEAD = 8, ZONE_SPAN = 512 };
    struct { msgpack_object o; seg_prefetch_t pf; } ring[AHEAD];
    unsigned head = 0, ahead = 0;
    uint64_t n = 0, g = 0, unpacked = 0;
    while ((int64_t)n < customers) {
        while (ahead < AHEAD && (int64_t)unpacked < customers && off < len) {
            if (seg_msgpack_value_size(buf + off, len - off, &size) != 1) {
                snprintf(errstr, errstr_size, "customer %llu is cut off",
                         (unsigned long long)unpacked);
                goto out;
            }
            msgpack_zone *z = &zones[(unpacked / ZONE_SPAN) & 1];
            if (unpacked % ZONE_SPAN == 0) msgpack_zone_clear(z);
            size_t o2 = 0;
            msgpack_object *ro = &ring[(head + ahead) % AHEAD].o;
            if (msgpack_unpack(buf + off, size, &o2, z, ro) != MSGPACK_UNPACK_SUCCESS) {
                snprintf(errstr, errstr_size, "customer %llu does not decode",
                         (unsigned long long)unpacked);
                goto out;
            }
            if (ro->type == MSGPACK_OBJECT_ARRAY && ro->via.array.size > 0 &&
                ro->via.array.ptr[0].type == MSGPACK_OBJECT_STR)
                seg_engine_prefetch(e, ro->via.array.ptr[0].via.str.ptr,
                                    ro->via.array.ptr[0].via.str.size,
                                    &ring[(head + ahead) % AHEAD].pf, 0);
            off += size;
            unpacked++;
            ahead++;
        }
        if (ahead == 0) break;   /* out of bytes: the count check reports it */
        seg_cust_state_t cs;
        if (seg_snapshot_unpack_customer(&ring[head].o, &cs, &scratch, &scratch_cap, why,
                                         sizeof why) != 0) {
            snprintf(errstr, errstr_size, "customer %llu: %s", (unsigned long long)n, why);
            goto out;
        }
        if (seg_engine_customer_put(e, &cs, why, sizeof why) != 0) {
            snprintf(errstr, errstr_size, "customer %llu: %s", (unsigned long long)n, why);
            goto out;
        }
        head = (head + 1) % AHEAD;
        ahead--;
        n++;
    }
    while (off < len) {
        if (seg_msgpack_value_size(buf + off, len - off, &size) != 1) {
            snprintf(errstr, errstr_size, "grave %llu is cut off", (unsigned long long)g);
            goto out;
        }
        size_t o2 = 0;
        msgpack_zone_clear(&zones[0]);
        int64_t h, seq;
        if (msgpack_unpack(buf + off, size, &o2, &zones[0], &o) != MSGPACK_UNPACK_SUCCESS ||
            o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != 2 ||
            o.via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            get_i64(&o.via.array.ptr[1], &seq) || seq <= 0 || seq > UINT32_MAX) {
            snprintf(errstr, errstr_size, "grave %llu is malformed", (unsigned long long)g);
            goto out;
        }
        h = (int64_t)o.via.array.ptr[0].via.u64;
        if (seg_engine_grave_put(e, (uint64_t)h, (uint32_t)seq) != 0) {
            snprintf(errstr, errstr_size, "out of memory");
            goto out;
        }
        g++;
        off += size;
    }
    if ((int64_t)g != graves) {
        snprintf(errstr, errstr_size, "header says %lld graves, file holds %llu",
                 (long long)graves, (unsigned long long)g);
        goto out;
    }
    if ((int64_t)n != customers) {
        snprintf(errstr, errstr_size, "header says %lld customers, file holds %llu",
                 (long long)customers, (unsigned long long)n);
        goto out;
    }
    seg_engine_stats_t st;
    seg_engine_stats(e, &st);
    if (st.customers != n) {
        snprintf(errstr, errstr_size, "duplicate customer ids");
        goto out;
    }
    seg_engine_set_max_ts(e, info->max_ts);
    info->customers = n;
    rc = 0;
out:
    /* The deadlines of the customers put since seg_engine_reserve are
     * placed now, inside the load and its timing, not at the first pop. */
    (void)seg_engine_reserve_end(e);
    free(scratch);
    msgpack_zone_destroy(&zones[0]);
    msgpack_zone_destroy(&zones[1]);
    return rc;
}

int seg_snapshot_load(const char *path, const char *topic, int32_t partition,
                      seg_engine_t *e, seg_snapshot_info_t *info,
                      char *errstr, size_t errstr_size)
{
    double t0 = mono();
    char why[256];
    int rc = -1;
    char *buf = NULL;
    void *mapped = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(errstr, errstr_size, "snapshot '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size < HEADER_LEN) {
        snprintf(errstr, errstr_size, "snapshot '%s' is truncated (%lld bytes)", path,
                 (long long)sb.st_size);
        goto out;
    }
    /* Mapped, not read: the bytes stay in the page cache instead of being
     * copied into as much fresh anonymous memory (at 10M customers,
     * 750 MB of page faults and copying). A snapshot is never rewritten
     * in place (a new one is renamed over it), so the mapping cannot
     * change under us. Read into memory if mapping fails. */
    mapped = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapped != MAP_FAILED) {
        madvise(mapped, (size_t)sb.st_size, MADV_SEQUENTIAL);
        buf = mapped;
        goto loaded;
    }
    mapped = NULL;
    buf = malloc((size_t)sb.st_size);
    if (!buf) {
        snprintf(errstr, errstr_size, "snapshot '%s': out of memory", path);
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            snprintf(errstr, errstr_size, "snapshot '%s': read error", path);
            goto out;
        }
        got += (size_t)r;
    }
loaded:;
    const unsigned char *h = (const unsigned char *)buf;
    if (memcmp(h, MAGIC, 8) != 0) {
        snprintf(errstr, errstr_size, "snapshot '%s' is not a segd snapshot (bad magic)", path);
        goto out;
    }
    uint64_t blen = get_le(h + 8, 8);
    if (blen != (uint64_t)sb.st_size - HEADER_LEN) {
        snprintf(errstr, errstr_size, "snapshot '%s' is truncated or padded: body %llu bytes, "
                 "header says %llu", path, (unsigned long long)(sb.st_size - HEADER_LEN),
                 (unsigned long long)blen);
        goto out;
    }
    /* crc32_z takes a size_t: crc32's uInt length would checksum only the
     * low 32 bits' worth of a body over 4 GiB (~57M customers). */
    uLong crc = crc32_z(crc32(0L, Z_NULL, 0), (const Bytef *)buf + HEADER_LEN, (z_size_t)blen);
    if (crc != (uLong)get_le(h + 16, 4)) {
        snprintf(errstr, errstr_size, "snapshot '%s' fails its checksum (corrupt)", path);
        goto out;
    }
    if (seg_snapshot_parse(buf + HEADER_LEN, blen, e, info, why, sizeof why) != 0) {
        snprintf(errstr, errstr_size, "snapshot '%s': %s", path, why);
        goto out;
    }
    if (topic && (strcmp(info->topic, topic) != 0 || info->partition != partition)) {
        snprintf(errstr, errstr_size, "snapshot '%s' belongs to %s[%d]", path, info->topic,
                 info->partition);
        goto out;
    }
    info->bytes = (uint64_t)sb.st_size;
    info->seconds = mono() - t0;
    rc = 0;
out:
    if (mapped) munmap(mapped, (size_t)sb.st_size);
    else free(buf);
    close(fd);
    return rc;
}
