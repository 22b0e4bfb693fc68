/*
 * seg_delivery: producing, delivery reports and the offsets they free.
 *
 * segd is at-least-once with nothing lost: an input offset is stored only
 * when every message that record caused is delivered. Each input record
 * gets a token in its partition's seg_inflight; every message produced
 * for it (transitions, routed copies, the DLQ copy) holds the token, and
 * its delivery report releases it. A failed delivery with a retriable
 * error is produced again from the main loop (librdkafka has already
 * retried it until message.timeout.ms); a non-retriable or fatal one
 * stops the daemon loudly without storing the offset, so the record is
 * processed again after a restart. Offsets are stored as their records
 * complete and committed by librdkafka's auto-commit, or synchronously on
 * revoke and shutdown.
 */
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/seg_daemon_int.h"
#include "publish/seg_tjson.h"
#include "util/seg_log.h"

/* Produces one message; on a full queue serves delivery reports and
 * retries, as librdkafka's examples do. Takes ownership of hdrs on
 * success only. Returns 0 or the librdkafka error. */
rd_kafka_resp_err_t seg_daemon_produce_try(daemon_t *d, rd_kafka_topic_t *rkt, const void *key,
                                           size_t klen, const void *val, size_t vlen,
                                           rd_kafka_headers_t *hdrs, void *opaque)
{
    for (;;) {
        rd_kafka_resp_err_t err;
        if (hdrs)
            err = rd_kafka_producev(d->producer, RD_KAFKA_V_RKT(rkt),
                                    RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)val, vlen),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(opaque),
                                    RD_KAFKA_V_END);
        else
            err = rd_kafka_producev(d->producer, RD_KAFKA_V_RKT(rkt),
                                    RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)val, vlen),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !d->fatal) {
            rd_kafka_poll(d->producer, 10);
            continue;
        }
        return err;
    }
}

/* produce_try, and a failure is fatal. The caller's charge (opaque) is
 * deliberately kept on failure: the record it belongs to is not done, so
 * its offset must never be stored. Takes ownership of hdrs. */
int seg_daemon_produce(daemon_t *d, rd_kafka_topic_t *rkt, const void *key, size_t klen,
                       const void *val, size_t vlen, rd_kafka_headers_t *hdrs, void *opaque)
{
    rd_kafka_resp_err_t err = seg_daemon_produce_try(d, rkt, key, klen, val, vlen, hdrs, opaque);
    if (!err) return 0;
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    seg_daemon_fatal(d, "cannot produce to '%s': %s", rd_kafka_topic_name(rkt),
                     rd_kafka_err2str(err));
    return -1;
}

/* Charges one more outstanding message to the current record. */
void *seg_daemon_charge(daemon_t *d)
{
    if (d->cur_slot == NO_SLOT) return seg_inflight_pack(NO_SLOT, 0);
    seg_inflight_hold(d->slots[d->cur_slot].inflight, d->cur_token);
    return seg_inflight_pack(d->cur_slot, d->cur_token);
}

/* Releases a charge: on a successful delivery only (or when a send attempt
 * that never left is replaced by another). */
void seg_daemon_uncharge(daemon_t *d, void *opaque)
{
    unsigned s = seg_inflight_slot(opaque);
    if (s != NO_SLOT && s < MAX_SLOTS && d->slots[s].used)
        seg_inflight_release(d->slots[s].inflight, seg_inflight_token(opaque));
}

/* ---- the output queue (outq_t in seg_daemon_int.h) ---------------------------
 *
 * Why queue: a loop turn emits ~3 messages per record, and one
 * rd_kafka_producev() per message pays its argument walk, producibility
 * check, topic reference and topic lock each time; rd_kafka_produce_batch()
 * pays them once per call. The order of a topic's messages is the order
 * they were emitted (a customer's transitions stay in order), a failed
 * batch stops at its first failure and resumes from it, and every queued
 * message already holds its record's charge, so a record whose messages
 * are still queued is not complete and its offset is not stored. */
#define OUT_FLUSH_BYTES (1u << 20)   /* flush when this much is queued */
#define OUT_FLUSH_MSGS  1024

void seg_daemon_out_begin(daemon_t *d) { d->out.on = true; }

void seg_daemon_out_end(daemon_t *d)
{
    (void)seg_daemon_out_flush(d);
    d->out.on = false;
}

void seg_daemon_out_free(daemon_t *d)
{
    free(d->out.buf);
    free(d->out.msg);
    free(d->out.topic);
    free(d->out.tmp);
    memset(&d->out, 0, sizeof d->out);
}

/* Room for one more message of up to `bytes` bytes. Returns 0 or -1. */
static int out_reserve(outq_t *q, size_t bytes)
{
    if (q->used + bytes > q->cap) {
        size_t cap = q->cap ? q->cap : OUT_FLUSH_BYTES + 2 * SEG_TJSON_MAX;
        while (q->used + bytes > cap) cap *= 2;
        char *b = realloc(q->buf, cap);
        if (!b) return -1;
        q->buf = b;
        q->cap = cap;
    }
    if (q->n == q->ncap) {
        size_t nc = q->ncap ? q->ncap * 2 : OUT_FLUSH_MSGS + 64;
        rd_kafka_message_t *m = realloc(q->msg, nc * sizeof *m);
        if (m) q->msg = m;
        uint16_t *t = realloc(q->topic, nc * sizeof *t);
        if (t) q->topic = t;
        rd_kafka_message_t *tmp = realloc(q->tmp, nc * sizeof *tmp);
        if (tmp) q->tmp = tmp;
        if (!m || !t || !tmp) return -1;
        q->ncap = nc;
    }
    return 0;
}

/* Queues one message whose value is at buf + voff, key at buf + koff. */
static void out_add(outq_t *q, unsigned topic, size_t koff, size_t klen, size_t voff,
                    size_t vlen, void *opaque)
{
    rd_kafka_message_t *m = &q->msg[q->n];
    memset(m, 0, sizeof *m);
    m->key = (void *)(uintptr_t)koff;
    m->key_len = klen;
    m->payload = (void *)(uintptr_t)voff;
    m->len = vlen;
    m->_private = opaque;
    q->topic[q->n++] = (uint16_t)topic;
}

/* Produces msgs[0..n) to rkt in order; on a full queue serves delivery
 * reports and goes on from the first message refused. */
static int produce_batch(daemon_t *d, rd_kafka_topic_t *rkt, rd_kafka_message_t *msgs, int n)
{
    int i = 0;
    while (i < n) {
        (void)rd_kafka_produce_batch(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, msgs + i,
                                     n - i);
        while (i < n && !msgs[i].err) i++;
        if (i == n) break;
        if (msgs[i].err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !d->fatal) {
            /* Every message from i on was refused (librdkafka stops at a
             * full queue), so going on from i keeps the order. */
            rd_kafka_poll(d->producer, 10);
            continue;
        }
        seg_daemon_fatal(d, "cannot produce to '%s': %s", rd_kafka_topic_name(rkt),
                         rd_kafka_err2str(msgs[i].err));
        return -1;
    }
    return 0;
}

int seg_daemon_out_flush(daemon_t *d)
{
    outq_t *q = &d->out;
    int rc = 0;
    size_t ntopics = 1 + seg_routes_count(d->routes);
    size_t left = q->n;
    for (size_t t = 0; t < ntopics && left > 0 && rc == 0; t++) {
        int k = 0;
        for (size_t i = 0; i < q->n; i++) {
            if (q->topic[i] != t) continue;
            rd_kafka_message_t *m = &q->tmp[k++];
            *m = q->msg[i];
            m->payload = q->buf + (uintptr_t)m->payload;
            m->key = q->buf + (uintptr_t)m->key;
        }
        if (k == 0) continue;
        left -= (size_t)k;
        rc = produce_batch(d, t == 0 ? d->out_rkt : d->route_rkt[t - 1], q->tmp, k);
    }
    q->n = 0;
    q->used = 0;
    return rc;
}

/* The engines' transition callback: the transition JSON to the output topic
 * and to every route that selects it, each charged to the current record.
 * Returns 0, or -1 when a produce failed (fatal). */
int seg_daemon_emit(void *opaque, const seg_transition_t *t)
{
    daemon_t *d = opaque;
    outq_t *q = &d->out;
    count(seg_daemon_tr_counter(d, t), 1);
    /* Sizes count what is published; during a restore the state is
     * counted when it is complete (seg_daemon_sizes_slot), so only flows.
     * Out of memory leaves them inexact, which /v1/segments says. */
    if (d->sizes) (void)(d->sizes_restoring ? seg_sizes_flow(d->sizes, t)
                                            : seg_sizes_transition(d->sizes, t));
    if (q->on && out_reserve(q, SEG_TJSON_MAX + t->customer_id_len) == 0) {
        size_t voff = q->used;
        size_t n = seg_tjson_encode(t, d->cfg->output.features, q->buf + voff);
        size_t koff = voff + n;
        memcpy(q->buf + koff, t->customer_id, t->customer_id_len);
        q->used = koff + t->customer_id_len;
        out_add(q, 0, koff, t->customer_id_len, voff, n, seg_daemon_charge(d));
        for (size_t i = 0; i < seg_routes_count(d->routes); i++) {
            if (!seg_routes_match(d->routes, i, t)) continue;
            if (out_reserve(q, 0) != 0) {
                seg_daemon_fatal(d, "out of memory queueing transitions");
                return -1;
            }
            out_add(q, 1 + (unsigned)i, koff, t->customer_id_len, voff, n, seg_daemon_charge(d));
        }
        if (q->used >= OUT_FLUSH_BYTES || q->n >= OUT_FLUSH_MSGS) return seg_daemon_out_flush(d);
        return 0;
    }
    /* Not queueing (restores, reloads, shutdown), or no memory to queue:
     * produce at once, as librdkafka's examples do. */
    if (q->on && seg_daemon_out_flush(d) != 0) return -1;   /* keeps the order */
    char buf[SEG_TJSON_MAX];
    size_t n = seg_tjson_encode(t, d->cfg->output.features, buf);
    if (seg_daemon_produce(d, d->out_rkt, t->customer_id, t->customer_id_len, buf, n, NULL,
                           seg_daemon_charge(d)))
        return -1;
    for (size_t i = 0; i < seg_routes_count(d->routes); i++) {
        if (!seg_routes_match(d->routes, i, t)) continue;
        if (seg_daemon_produce(d, d->route_rkt[i], t->customer_id, t->customer_id_len, buf, n, NULL,
                               seg_daemon_charge(d)))
            return -1;
    }
    return 0;
}

static bool retriable(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
        return true;
    default:
        return false;
    }
}

/* Keeps a failed delivery to produce again from the main loop, its value
 * cut to at most vmax bytes (a cut one gets a segd.truncated header with
 * the original length). Returns 0 or -1 (out of memory: fatal). */
int seg_daemon_keep_retry(daemon_t *d, const rd_kafka_message_t *m, size_t vmax)
{
    size_t vlen = m->len < vmax ? m->len : vmax;
    retry_t *r = calloc(1, sizeof *r);
    if (r) {
        r->key = m->key_len ? malloc(m->key_len) : NULL;
        r->val = vlen ? malloc(vlen) : NULL;
    }
    if (!r || (m->key_len && !r->key) || (vlen && !r->val)) {
        if (r) { free(r->key); free(r->val); free(r); }
        seg_daemon_fatal(d, "out of memory keeping a failed delivery to '%s'",
                         rd_kafka_topic_name(m->rkt));
        return -1;
    }
    if (m->key_len) memcpy(r->key, m->key, m->key_len);
    if (vlen) memcpy(r->val, m->payload, vlen);
    r->klen = m->key_len;
    r->vlen = vlen;
    r->rkt = m->rkt;
    r->opaque = m->_private;
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h)
        r->hdrs = rd_kafka_headers_copy(h);
    if (vlen < m->len) {
        char orig[24];
        snprintf(orig, sizeof orig, "%zu", m->len);
        if (!r->hdrs) r->hdrs = rd_kafka_headers_new(1);
        rd_kafka_header_add(r->hdrs, "segd.truncated", -1, orig, -1);
    }
    *d->retries_tail = r;
    d->retries_tail = &r->next;
    return 0;
}

/* Delivery reports, served from rd_kafka_poll(producer) on the main thread. */
void seg_daemon_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    daemon_t *d = opaque;
    if (!m->err) {
        /* segd_messages_delivered_total counts what segd publishes
         * (docs/operations.md), not its own changelog records. */
        if (m->rkt != d->changelog_rkt) count(d->delivered, 1);
        seg_daemon_uncharge(d, m->_private);
        return;
    }
    count(d->produce_errors, 1);
    if (seg_daemon_dlq_refused(d, m)) return;
    if (!retriable(m->err) || rd_kafka_fatal_error(d->producer, NULL, 0)) {
        seg_daemon_fatal(d, "delivery to '%s' failed: %s", rd_kafka_topic_name(m->rkt),
                         rd_kafka_err2str(m->err));
        return;
    }
    d->failed_deliveries++;
    if (d->failed_deliveries == 1 || mono_ms() - d->last_fail_log_ms >= 5000) {
        seg_log(SEG_LOG_WARN, "kafka", "delivery to '%s' failed (%s); producing it again "
                "(%llu failed deliveries so far)", rd_kafka_topic_name(m->rkt),
                rd_kafka_err2str(m->err), (unsigned long long)d->failed_deliveries);
        d->last_fail_log_ms = mono_ms();
    }
    seg_daemon_keep_retry(d, m, SIZE_MAX);
}

/* Produces the failed deliveries kept by seg_daemon_keep_retry again (from
 * the main loop, never from inside a delivery report). */
void seg_daemon_produce_retries(daemon_t *d)
{
    retry_t *r = d->retries;
    d->retries = NULL;
    d->retries_tail = &d->retries;
    while (r) {
        retry_t *next = r->next;
        /* On failure seg_daemon_produce() stops the daemon; the charge stays. */
        if (!d->fatal)
            seg_daemon_produce(d, r->rkt, r->key, r->klen, r->val, r->vlen, r->hdrs, r->opaque);
        else if (r->hdrs)
            rd_kafka_headers_destroy(r->hdrs);
        free(r->key);
        free(r->val);
        free(r);
        r = next;
    }
}

/* Serves delivery reports and re-produces failed ones until nothing is
 * outstanding or the deadline passes. Returns 0 when drained. */
int seg_daemon_drain(daemon_t *d, int64_t deadline_ms)
{
    if (seg_daemon_out_flush(d) != 0) return -1;
    for (;;) {
        seg_daemon_produce_retries(d);
        rd_kafka_poll(d->producer, 0);
        if (d->fatal) return -1;
        if (rd_kafka_outq_len(d->producer) == 0 && !d->retries) return 0;
        int64_t left = deadline_ms - mono_ms();
        if (left <= 0) return -1;
        rd_kafka_flush(d->producer, (int)(left < 100 ? left : 100));
    }
}

/* Stores every slot's completed offsets (all slots, or only those in
 * `only`). */
void seg_daemon_store_offsets(daemon_t *d, const rd_kafka_topic_partition_list_t *only)
{
    if (d->fatal) return;   /* stopping on an error: claim nothing more */
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (unsigned i = 0; i < MAX_SLOTS; i++) {
        slot_t *s = &d->slots[i];
        if (!s->used) continue;
        if (only && !rd_kafka_topic_partition_list_find(only, s->topic, s->partition)) continue;
        int64_t off = seg_inflight_advance(s->inflight);
        if (off >= 0) rd_kafka_topic_partition_list_add(l, s->topic, s->partition)->offset = off;
    }
    if (l->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_offsets_store(d->consumer, l);
        if (err) seg_log(SEG_LOG_WARN, "kafka", "storing offsets: %s", rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Commits the stored offsets now (revoke, shutdown); a failure is counted
 * and logged, and those records are processed again after a restart. */
void seg_daemon_commit_sync(daemon_t *d, const char *why)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(d->consumer, NULL, 0);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        count(d->commit_errors, 1);
        seg_log(SEG_LOG_WARN, "kafka", "commit (%s) failed: %s; the records will be "
                "processed again after a restart", why, rd_kafka_err2str(err));
    }
}

/* Offset commit results (librdkafka's auto-commit), served from the
 * consumer's poll: a failure is counted and retried at the next interval. */
void seg_daemon_on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    (void)offsets;
    daemon_t *d = opaque;
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        count(d->commit_errors, 1);
        seg_log(SEG_LOG_WARN, "kafka", "offset commit failed: %s (retried at the next "
                "interval)", rd_kafka_err2str(err));
    }
}
