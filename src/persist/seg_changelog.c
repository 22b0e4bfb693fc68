/*
 * seg_changelog: checkpoint records out, restore in.
 */
#include "persist/seg_changelog.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event/seg_decode.h"
#include "persist/seg_rulestate.h"
#include "persist/seg_snapshot.h"
#include "state/seg_store.h"
#include "util/seg_clock.h"

static double mono(void) { return seg_clock_s(CLOCK_MONOTONIC); }

typedef struct appender {
    seg_engine_t            *e;
    seg_changelog_produce_fn produce;
    void                    *opaque;
    int32_t                  partition;
    msgpack_sbuffer          sb;
    long                     n;
} appender_t;

static int on_change(void *opaque, const char *id, size_t len, const seg_cust_state_t *st,
                     uint32_t removed_seq)
{
    appender_t *a = opaque;
    if (!st) {
        /* A tombstone (compaction drops the customer), and a grave record
         * that keeps its last seq so a return never reuses an id. */
        char key[SEG_CHANGELOG_GRAVE_LEN + 256];
        memcpy(key, SEG_CHANGELOG_GRAVE, SEG_CHANGELOG_GRAVE_LEN);
        memcpy(key + SEG_CHANGELOG_GRAVE_LEN, id, len);
        msgpack_sbuffer_clear(&a->sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &a->sb, msgpack_sbuffer_write);
        msgpack_pack_uint32(&pk, removed_seq);
        if (a->produce(a->opaque, a->partition, id, len, NULL, 0) != 0 ||
            a->produce(a->opaque, a->partition, key, SEG_CHANGELOG_GRAVE_LEN + len, a->sb.data,
                       a->sb.size) != 0)
            return -1;
        a->n += 2;
        return 0;
    }
    msgpack_sbuffer_clear(&a->sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &a->sb, msgpack_sbuffer_write);
    seg_snapshot_pack_customer(a->e, &pk, st);
    if (a->produce(a->opaque, a->partition, id, len, a->sb.data, a->sb.size) != 0) return -1;
    a->n++;
    return 0;
}

long seg_changelog_append(seg_engine_t *e, int32_t partition, int64_t next_offset,
                          seg_changelog_produce_fn produce, void *opaque,
                          char *errstr, size_t errstr_size)
{
    appender_t a = { .e = e, .produce = produce, .opaque = opaque, .partition = partition };
    msgpack_sbuffer_init(&a.sb);
    long rc = -1;
    if (seg_engine_drain_changes(e, on_change, &a) != 0) {
        snprintf(errstr, errstr_size, "changelog: producing a customer record failed");
        goto out;
    }
    msgpack_sbuffer_clear(&a.sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &a.sb, msgpack_sbuffer_write);
    /* The rule set the records of this checkpoint were written under
     * travels with its marker (seg_rulestate.h). */
    msgpack_pack_map(&pk, 2 + SEG_RULESTATE_FIELDS);
    seg_rulestate_pack(e, &pk);
    msgpack_pack_str(&pk, 6);
    msgpack_pack_str_body(&pk, "offset", 6);
    msgpack_pack_int64(&pk, next_offset);
    msgpack_pack_str(&pk, 6);
    msgpack_pack_str_body(&pk, "max_ts", 6);
    msgpack_pack_int64(&pk, seg_engine_max_ts(e));
    if (produce(opaque, partition, SEG_CHANGELOG_MARKER, SEG_CHANGELOG_MARKER_LEN,
                a.sb.data, a.sb.size) != 0) {
        snprintf(errstr, errstr_size, "changelog: producing the marker failed");
        goto out;
    }
    rc = a.n + 1;
out:
    msgpack_sbuffer_destroy(&a.sb);
    return rc;
}

/* A customer record held until its checkpoint's marker arrives. */
typedef struct pending {
    char   *key;
    size_t  klen;
    char   *val;     /* NULL: tombstone */
    size_t  vlen;
} pending_t;

typedef struct restorer {
    pending_t *p;
    size_t     n, cap;
} restorer_t;

static void pending_clear(restorer_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->p[i].key);
        free(r->p[i].val);
    }
    r->n = 0;
}

static int pending_add(restorer_t *r, const rd_kafka_message_t *m)
{
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 1024;
        pending_t *np = realloc(r->p, ncap * sizeof *np);
        if (!np) return -1;
        r->p = np;
        r->cap = ncap;
    }
    pending_t *p = &r->p[r->n];
    p->key = malloc(m->key_len ? m->key_len : 1);
    p->val = m->payload ? malloc(m->len ? m->len : 1) : NULL;
    if (!p->key || (m->payload && !p->val)) {
        free(p->key);
        free(p->val);
        return -1;
    }
    memcpy(p->key, m->key, m->key_len);
    p->klen = m->key_len;
    if (m->payload) memcpy(p->val, m->payload, m->len);
    p->vlen = m->len;
    r->n++;
    return 0;
}

static int get_i64(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 0;
    }
    return -1;
}

/* Applies the held records of a completed checkpoint. */
static int apply_pending(restorer_t *r, seg_engine_t *e, seg_changelog_restore_t *out,
                         char *errstr, size_t errstr_size)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    seg_winentry_t *scratch = NULL;
    size_t scap = 0;
    int rc = -1;
    for (size_t i = 0; i < r->n; i++) {
        pending_t *p = &r->p[i];
        if (p->klen > SEG_CHANGELOG_GRAVE_LEN &&
            memcmp(p->key, SEG_CHANGELOG_GRAVE, SEG_CHANGELOG_GRAVE_LEN) == 0) {
            size_t size, off = 0;
            msgpack_object o;
            msgpack_zone_clear(&zone);
            int64_t seq;
            if (!p->val || seg_msgpack_value_size(p->val, p->vlen, &size) != 1 ||
                msgpack_unpack(p->val, size, &off, &zone, &o) != MSGPACK_UNPACK_SUCCESS ||
                get_i64(&o, &seq) || seq < 0 || seq > UINT32_MAX) {
                snprintf(errstr, errstr_size, "changelog grave record is malformed");
                goto out;
            }
            const char *id = p->key + SEG_CHANGELOG_GRAVE_LEN;
            size_t idlen = p->klen - SEG_CHANGELOG_GRAVE_LEN;
            seg_engine_customer_remove(e, id, idlen);
            if (seg_engine_grave_put(e, seg_store_hash(id, idlen), (uint32_t)seq) != 0) {
                snprintf(errstr, errstr_size, "changelog: out of memory");
                goto out;
            }
            out->applied++;
            continue;
        }
        if (!p->val) {
            seg_engine_customer_remove(e, p->key, p->klen);
            out->applied++;
            continue;
        }
        size_t size, off = 0;
        msgpack_object o;
        char why[160];
        seg_cust_state_t st;
        msgpack_zone_clear(&zone);
        if (seg_msgpack_value_size(p->val, p->vlen, &size) != 1 ||
            msgpack_unpack(p->val, size, &off, &zone, &o) != MSGPACK_UNPACK_SUCCESS ||
            seg_snapshot_unpack_customer(&o, &st, &scratch, &scap, why, sizeof why) != 0) {
            snprintf(errstr, errstr_size, "changelog record for '%.*s' is malformed",
                     (int)(p->klen > 64 ? 64 : p->klen), p->key);
            goto out;
        }
        if (st.id_len != p->klen || memcmp(st.id, p->key, p->klen) != 0) {
            snprintf(errstr, errstr_size, "changelog record key and id differ");
            goto out;
        }
        if (seg_engine_customer_put(e, &st, why, sizeof why) != 0) {
            snprintf(errstr, errstr_size, "changelog: %s", why);
            goto out;
        }
        out->applied++;
    }
    rc = 0;
out:
    free(scratch);
    msgpack_zone_destroy(&zone);
    pending_clear(r);
    return rc;
}

static int parse_marker(const rd_kafka_message_t *m, int64_t *offset, int64_t *max_ts)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 256);
    msgpack_object o;
    size_t size, off = 0;
    int rc = -1, have = 0;
    if (m->payload && seg_msgpack_value_size(m->payload, m->len, &size) == 1 &&
        msgpack_unpack(m->payload, size, &off, &zone, &o) == MSGPACK_UNPACK_SUCCESS &&
        o.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < o.via.map.size; i++) {
            const msgpack_object *k = &o.via.map.ptr[i].key, *v = &o.via.map.ptr[i].val;
            if (k->type != MSGPACK_OBJECT_STR) continue;
            if (k->via.str.size == 6 && !memcmp(k->via.str.ptr, "offset", 6) && !get_i64(v, offset))
                have |= 1;
            if (k->via.str.size == 6 && !memcmp(k->via.str.ptr, "max_ts", 6) && !get_i64(v, max_ts))
                have |= 2;
        }
        if (have == 3) rc = 0;
    }
    msgpack_zone_destroy(&zone);
    return rc;
}

/* Puts e under the rule set a marker carries (seg_rulestate_apply). */
static int marker_rules(const rd_kafka_message_t *m, seg_engine_t *e, char *errstr,
                        size_t errstr_size)
{
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_object o;
    size_t size, off = 0;
    int rc = -1;
    if (m->payload && seg_msgpack_value_size(m->payload, m->len, &size) == 1 &&
        msgpack_unpack(m->payload, size, &off, &zone, &o) == MSGPACK_UNPACK_SUCCESS) {
        char why[400];
        rc = seg_rulestate_apply(e, &o, why, sizeof why);
        if (rc != 0) snprintf(errstr, errstr_size, "changelog marker at offset %lld: %s",
                              (long long)m->offset, why);
    } else {
        snprintf(errstr, errstr_size, "changelog marker at offset %lld is malformed",
                 (long long)m->offset);
    }
    msgpack_zone_destroy(&zone);
    return rc;
}

/* ---- reading a partition ----------------------------------------------------- */

static bool is_marker(const rd_kafka_message_t *m)
{
    return m->key_len == SEG_CHANGELOG_MARKER_LEN &&
           memcmp(m->key, SEG_CHANGELOG_MARKER, SEG_CHANGELOG_MARKER_LEN) == 0;
}

/* parse_marker, saying where a malformed one is. */
static int read_marker(const rd_kafka_message_t *m, const char *topic, int32_t partition,
                       int64_t *offset, int64_t *max_ts, char *errstr, size_t errstr_size)
{
    if (parse_marker(m, offset, max_ts) == 0) return 0;
    snprintf(errstr, errstr_size, "changelog %s[%d]: malformed marker at offset %lld",
             topic, partition, (long long)m->offset);
    return -1;
}

static int end_offsets(rd_kafka_t *consumer, const char *topic, int32_t partition,
                       int timeout_ms, int64_t *lo, int64_t *hi, char *errstr,
                       size_t errstr_size)
{
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(consumer, topic, partition, lo, hi, timeout_ms);
    if (err) {
        snprintf(errstr, errstr_size, "changelog %s[%d]: cannot read its end offset: %s", topic,
                 partition, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

/* One record of a range; returns 0 to go on, or -1 (errstr set) to stop.
 * The message stays the caller's. */
typedef int (*record_fn)(void *opaque, const rd_kafka_message_t *m, char *errstr,
                         size_t errstr_size);

/* Reads records [start, hi) of a changelog partition with consumer (a
 * handle used only for this), calling fn on each, until hi or the
 * deadline (mono() seconds). Leaves the consumer unassigned. Returns 0,
 * or -1 with errstr (assign, consumer error, timeout, or fn's). */
static int read_range(rd_kafka_t *consumer, const char *topic, int32_t partition,
                      int64_t start, int64_t hi, double deadline, record_fn fn, void *opaque,
                      char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = start;
    rd_kafka_resp_err_t err = rd_kafka_assign(consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        snprintf(errstr, errstr_size, "changelog %s[%d]: assign failed: %s", topic, partition,
                 rd_kafka_err2str(err));
        return -1;
    }
    int rc = 0;
    for (int64_t next = start; next < hi && rc == 0;) {
        if (mono() > deadline) {
            snprintf(errstr, errstr_size, "changelog %s[%d]: reading timed out at offset %lld "
                     "of %lld", topic, partition, (long long)next, (long long)hi);
            rc = -1;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 200);
        if (!m) continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                snprintf(errstr, errstr_size, "changelog %s[%d]: %s", topic, partition,
                         rd_kafka_message_errstr(m));
                rc = -1;
            }
        } else {
            next = m->offset + 1;
            rc = fn(opaque, m, errstr, errstr_size);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(consumer, NULL);
    return rc;
}

/* ---- restore ------------------------------------------------------------------ */

typedef struct restore_ctx {
    restorer_t               r;
    seg_engine_t            *e;
    seg_changelog_restore_t *out;
    const char              *topic;
    int32_t                  partition;
    double                   t0, last_progress;
    void (*progress)(void *opaque, const seg_changelog_restore_t *r);
    void                    *opaque;
} restore_ctx_t;

static int restore_record(void *opaque, const rd_kafka_message_t *m, char *errstr,
                          size_t errstr_size)
{
    restore_ctx_t *c = opaque;
    c->out->records++;
    if (is_marker(m)) {
        int64_t off = 0, mts = 0;
        if (read_marker(m, c->topic, c->partition, &off, &mts, errstr, errstr_size) != 0)
            return -1;
        /* This checkpoint's records were written under the marker's rule
         * set: put the engine under it before reading them. */
        if (marker_rules(m, c->e, errstr, errstr_size) != 0) return -1;
        if (apply_pending(&c->r, c->e, c->out, errstr, errstr_size) != 0) return -1;
        c->out->markers++;
        c->out->resume_offset = off;
        c->out->max_ts = mts;
    } else if (m->key_len && pending_add(&c->r, m) != 0) {   /* keyless: not ours, skip */
        snprintf(errstr, errstr_size, "changelog: out of memory");
        return -1;
    }
    if (c->progress && mono() - c->last_progress >= 1.0) {
        c->last_progress = mono();
        c->out->seconds = c->last_progress - c->t0;
        c->progress(c->opaque, c->out);
    }
    return 0;
}

int seg_changelog_restore(rd_kafka_t *consumer, const char *topic, int32_t partition,
                          seg_engine_t *e, int timeout_ms,
                          void (*progress)(void *opaque, const seg_changelog_restore_t *r),
                          void *opaque, seg_changelog_restore_t *out,
                          char *errstr, size_t errstr_size)
{
    restore_ctx_t c = { .e = e, .out = out, .topic = topic, .partition = partition,
                        .t0 = mono(), .progress = progress, .opaque = opaque };
    c.last_progress = c.t0;
    memset(out, 0, sizeof *out);
    out->resume_offset = -1;
    out->max_ts = INT64_MIN;
    int64_t lo = 0, hi = 0;
    if (end_offsets(consumer, topic, partition, timeout_ms, &lo, &hi, errstr, errstr_size))
        return -1;
    int rc = 0;
    if (hi > lo) {
        rc = read_range(consumer, topic, partition, lo, hi, c.t0 + timeout_ms / 1000.0,
                        restore_record, &c, errstr, errstr_size);
        /* Records after the last marker belong to an unfinished checkpoint. */
        if (rc == 0 && out->max_ts != INT64_MIN) seg_engine_set_max_ts(e, out->max_ts);
    }
    pending_clear(&c.r);
    free(c.r.p);
    out->seconds = mono() - c.t0;
    return rc;
}

/* ---- the last marker ------------------------------------------------------------ */

typedef struct marker_ctx {
    const char *topic;
    int32_t     partition;
    bool        found;
    int64_t     offset, max_ts;
} marker_ctx_t;

static int marker_record(void *opaque, const rd_kafka_message_t *m, char *errstr,
                         size_t errstr_size)
{
    marker_ctx_t *c = opaque;
    if (!is_marker(m)) return 0;
    if (read_marker(m, c->topic, c->partition, &c->offset, &c->max_ts, errstr,
                    errstr_size) != 0)
        return -1;
    c->found = true;
    return 0;
}

int seg_changelog_last_marker(rd_kafka_t *consumer, const char *topic, int32_t partition,
                              int timeout_ms, int64_t *offset, int64_t *max_ts,
                              char *errstr, size_t errstr_size)
{
    double deadline = mono() + timeout_ms / 1000.0;
    *offset = -1;
    *max_ts = INT64_MIN;
    int64_t lo = 0, hi = 0;
    if (end_offsets(consumer, topic, partition, timeout_ms, &lo, &hi, errstr, errstr_size))
        return -1;
    marker_ctx_t c = { .topic = topic, .partition = partition };
    for (int64_t window = 1; hi > lo; window *= 64) {
        int64_t start = hi - window > lo ? hi - window : lo;
        if (read_range(consumer, topic, partition, start, hi, deadline, marker_record, &c,
                       errstr, errstr_size) != 0)
            return -1;
        if (c.found) {
            *offset = c.offset;
            *max_ts = c.max_ts;
            return 0;
        }
        if (start == lo) break;
    }
    return 0;
}
