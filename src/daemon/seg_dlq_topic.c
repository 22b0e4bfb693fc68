/*
 * seg_dlq_topic: rejected records to kafka.dlq_topic.
 *
 * A rejected record must never vanish and never stop segd. Its original
 * bytes go to the DLQ topic with headers saying why and where from
 * (docs/events.md), and its offset is stored only once that copy is
 * delivered, like any other message a record causes. A copy larger than
 * the producer or the topic accepts is cut to its first 64 KiB with a
 * segd.truncated header, so one huge record cannot become a poison pill.
 * (`segd replay` writes its rejects to a file instead: src/io/seg_dlq.c.)
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>

#include "daemon/seg_daemon_int.h"
#include "util/seg_log.h"

#define DLQ_TRUNCATED_BYTES 65536    /* head kept of a DLQ copy too large to send */

/* Sends the rejected record m (reason rej, explanation why) to the DLQ
 * topic with its source headers, charged to the current record. A copy
 * the producer refuses as too large is cut; any other failure is fatal and
 * leaves the charge, so the record's offset is never stored. */
void seg_daemon_to_dlq(daemon_t *d, const rd_kafka_message_t *m, seg_reject_t rej,
                       const char *why)
{
    char part[16], off[24], orig[24];
    snprintf(part, sizeof part, "%d", m->partition);
    snprintf(off, sizeof off, "%lld", (long long)m->offset);
    snprintf(orig, sizeof orig, "%zu", m->len);
    size_t vlen = m->len;
    for (int attempt = 0; attempt < 2; attempt++) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(6);
        rd_kafka_header_add(h, "segd.reason", -1, seg_reject_name(rej), -1);
        rd_kafka_header_add(h, "segd.error", -1, why, -1);
        rd_kafka_header_add(h, "segd.source.topic", -1, rd_kafka_topic_name(m->rkt), -1);
        rd_kafka_header_add(h, "segd.source.partition", -1, part, -1);
        rd_kafka_header_add(h, "segd.source.offset", -1, off, -1);
        if (vlen < m->len) rd_kafka_header_add(h, "segd.truncated", -1, orig, -1);
        void *op = seg_daemon_charge(d);
        rd_kafka_resp_err_t err = seg_daemon_produce_try(d, d->dlq_rkt, m->key, m->key_len,
                                                         m->payload, vlen, h, op);
        if (!err) {
            count(d->dlq_total, 1);
            return;
        }
        rd_kafka_headers_destroy(h);
        if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && vlen > DLQ_TRUNCATED_BYTES) {
            /* Larger than kafka.producer message.max.bytes: keep the head.
             * The charge just taken stays with the record; a second one
             * comes with the next attempt, so release this one. */
            seg_log(SEG_LOG_WARN, "kafka", "the %zu-byte DLQ copy of %s[%d]@%s is larger than "
                    "the producer allows; sending its first %d bytes with header "
                    "segd.truncated", m->len, rd_kafka_topic_name(m->rkt), m->partition, off,
                    DLQ_TRUNCATED_BYTES);
            seg_daemon_uncharge(d, op);
            vlen = DLQ_TRUNCATED_BYTES;
            continue;
        }
        /* The charge stays: the record is not handled. */
        seg_daemon_fatal(d, "cannot produce to '%s': %s", rd_kafka_topic_name(d->dlq_rkt),
                         rd_kafka_err2str(err));
        return;
    }
}

/* A DLQ copy the DLQ topic refused as too large (a delivery report): its
 * head is kept to be produced again with a segd.truncated header. Returns
 * true when m was such a report and is taken care of. */
bool seg_daemon_dlq_refused(daemon_t *d, const rd_kafka_message_t *m)
{
    if (m->err != RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || m->rkt != d->dlq_rkt ||
        m->len <= DLQ_TRUNCATED_BYTES)
        return false;
    /* The DLQ topic refuses a copy this large: keep its head, so the
     * record is still accounted for instead of stopping segd on it
     * at every start. */
    seg_log(SEG_LOG_WARN, "kafka", "'%s' refuses a %zu-byte DLQ copy (%s); sending its "
            "first %d bytes with header segd.truncated", rd_kafka_topic_name(m->rkt),
            m->len, rd_kafka_err2str(m->err), DLQ_TRUNCATED_BYTES);
    seg_daemon_keep_retry(d, m, DLQ_TRUNCATED_BYTES);
    return true;
}
