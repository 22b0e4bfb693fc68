/*
 * seg_rebalance: partitions coming and going.
 *
 * Partitions are the unit of state: a customer's state lives with the
 * partition its events arrive on. Each assigned input partition gets a
 * slot with its own engine and in-flight tracker, restored before it is
 * consumed and resumed at the restored state's offset, never at the
 * group's committed offset (state and position must match). A revoked
 * partition is drained, checkpointed, committed and dropped. Both the
 * cooperative and the eager protocol are handled, and every assignment
 * first checks that the changelog is co-partitioned with the input.
 */
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "daemon/seg_daemon_int.h"
#include "util/seg_log.h"

/* The slot index of topic[partition], or -1 when it is not assigned. */
int seg_daemon_find_slot(daemon_t *d, const char *topic, int32_t partition)
{
    slot_t *s = &d->slots[d->last_slot];
    if (s->used && s->partition == partition && strcmp(s->topic, topic) == 0)
        return (int)d->last_slot;
    for (unsigned i = 0; i < MAX_SLOTS; i++) {
        s = &d->slots[i];
        if (s->used && s->partition == partition && strcmp(s->topic, topic) == 0) {
            d->last_slot = i;
            return (int)i;
        }
    }
    return -1;
}

/* Takes topic[partition]: a slot with its restored engine. Sets *resume to
 * the offset to consume from. Returns 0 (also when already held) or -1. */
static int slot_add(daemon_t *d, const char *topic, int32_t partition, int64_t *resume)
{
    *resume = RD_KAFKA_OFFSET_INVALID;
    if (seg_daemon_find_slot(d, topic, partition) >= 0) return 0;
    for (unsigned i = 0; i < MAX_SLOTS; i++) {
        slot_t *s = &d->slots[i];
        if (s->used) continue;
        char err[256];
        memset(s, 0, sizeof *s);
        snprintf(s->topic, sizeof s->topic, "%s", topic);
        s->partition = partition;
        s->next_offset = -1;
        s->gen = ++d->next_gen;
        d->restored_from_snapshot = false;
        d->sizes_restoring = true;
        s->engine = seg_daemon_restore(d, topic, partition, resume);
        d->sizes_restoring = false;
        s->resume_offset = *resume >= 0 ? *resume : -1;
        /* A snapshot just loaded is already on disk; a changelog restore
         * gets a local snapshot at the next checkpoint. */
        s->ckpt_offset = d->restored_from_snapshot ? s->resume_offset : -1;
        s->inflight = seg_inflight_new();
        if (!s->engine || !s->inflight ||
            seg_watermark_add(d->wm, i, mono_ms()) != 0) {
            seg_engine_destroy(s->engine);
            seg_inflight_destroy(s->inflight);
            return -1;
        }
        char pbuf[16];
        snprintf(pbuf, sizeof pbuf, "%d", partition);
        seg_label_t l[2] = { { "topic", topic }, { "partition", pbuf } };
        s->lag = seg_metrics_gauge(d->metrics, "segd_consumer_lag",
                                   "Records behind the partition's high watermark.",
                                   l, 2, err, sizeof err);
        s->used = true;
        seg_daemon_sizes_slot(d, i, 1);
        return 0;
    }
    return -1;
}

/* Drops slot i and its customers from memory (no-op for an unused slot). */
void seg_daemon_slot_remove(daemon_t *d, unsigned i)
{
    slot_t *s = &d->slots[i];
    if (!s->used) return;
    seg_engine_stats_t st;
    seg_engine_stats(s->engine, &st);
    seg_log(SEG_LOG_INFO, "kafka", "dropping %s[%d]: %u customers leave memory",
            s->topic, s->partition, st.customers);
    if (s->lag) seg_gauge_remove(d->metrics, s->lag);
    seg_daemon_sizes_slot(d, i, -1);
    seg_watermark_remove(d->wm, i);
    seg_engine_destroy(s->engine);
    seg_inflight_destroy(s->inflight);
    memset(s, 0, sizeof *s);
}

/* Partition count of topic from the cluster's metadata: >= 0, -1 when the
 * topic does not exist, -2 when the metadata cannot be read (why set). */
static int partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, char *why,
                           size_t why_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) {
        snprintf(why, why_size, "%s", rd_kafka_err2str(rd_kafka_last_error()));
        return -2;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err) {
        snprintf(why, why_size, "%s", rd_kafka_err2str(err));
        return -2;
    }
    int n = -2;
    snprintf(why, why_size, "no metadata for it");
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) != 0) continue;
        if (md->topics[i].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) n = -1;
        else if (md->topics[i].err) snprintf(why, why_size, "%s",
                                              rd_kafka_err2str(md->topics[i].err));
        else n = md->topics[i].partition_cnt;
    }
    rd_kafka_metadata_destroy(md);
    return n;
}

/* The changelog must exist, co-partitioned with every input topic (state
 * of input partition p goes to changelog partition p): producing to a
 * missing one would lose the state migration needs, or have a broker
 * auto-create it with the wrong partition count and no compaction. Checked
 * at each assignment, before any state is restored. */
static int check_changelog(daemon_t *d, const rd_kafka_topic_partition_list_t *parts)
{
    int timeout = (int)(d->cfg->shutdown_timeout * 1000);
    char why[256];
    int cl = partition_count(d->restorer, d->changelog, timeout, why, sizeof why);
    if (cl == -1) {
        seg_daemon_fatal(d, "changelog topic '%s' does not exist; create it co-partitioned with "
                         "the input (same partition count, cleanup.policy=compact)", d->changelog);
        return -1;
    }
    if (cl < 0) {
        seg_daemon_fatal(d, "cannot read the metadata of changelog topic '%s': %s",
                         d->changelog, why);
        return -1;
    }
    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].partition < cl) continue;
        int in = partition_count(d->restorer, parts->elems[i].topic, timeout, why, sizeof why);
        seg_daemon_fatal(d, "changelog topic '%s' has %d partition(s) but input topic '%s' has %d: "
                         "they must be co-partitioned (same count)", d->changelog, cl,
                         parts->elems[i].topic, in);
        return -1;
    }
    return 0;
}

/* The rebalance callback, served from the consumer's poll: restores
 * assigned partitions before consuming them, and drains, checkpoints and
 * commits revoked ones before dropping them. Any failure is fatal. */
void seg_daemon_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    daemon_t *d = opaque;
    /* Records polled before this callback are folded against the
     * partitions as they were, exactly as if each had been folded when it
     * was polled (a revoked partition's last records are in its
     * checkpoint; none is folded into a slot restored after it). */
    seg_daemon_fold_ahead(d);
    (void)seg_daemon_out_flush(d);   /* what they emitted goes out first, as it would have */
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (check_changelog(d, parts) != 0) return;   /* fatal: segd stops */
        for (int i = 0; i < parts->cnt; i++) {
            int64_t resume;
            if (slot_add(d, parts->elems[i].topic, parts->elems[i].partition, &resume) != 0)
                seg_daemon_fatal(d, "cannot take partition %s[%d]: its state could not be "
                                 "restored, or out of memory", parts->elems[i].topic,
                                 parts->elems[i].partition);
            /* Resume where the restored state ends, never at the group's
             * committed offset: state and position must match. */
            parts->elems[i].offset = resume;
        }
        seg_log(SEG_LOG_INFO, "kafka", "assigned %d partition(s) (%s)", parts->cnt,
                coop ? "incremental" : "eager");
        if (coop) error = rd_kafka_incremental_assign(rk, parts);
        else aerr = rd_kafka_assign(rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        bool lost = rd_kafka_assignment_lost(rk);
        seg_log(SEG_LOG_INFO, "kafka", "%s %d partition(s)", lost ? "lost" : "revoking",
                parts->cnt);
        if (!lost) {
            /* Finish in-flight work, then commit what it covers. */
            if (seg_daemon_drain(d, mono_ms() + d->cfg->shutdown_timeout * 1000) != 0)
                seg_log(SEG_LOG_ERROR, "kafka", "revoke: deliveries still outstanding; "
                        "their records are not committed and will be processed again");
            seg_daemon_store_offsets(d, parts);
            seg_daemon_checkpoint(d, parts, "revoke");
            seg_daemon_commit_sync(d, "revoke");
        }
        for (int i = 0; i < parts->cnt; i++) {
            int s = seg_daemon_find_slot(d, parts->elems[i].topic, parts->elems[i].partition);
            if (s >= 0) seg_daemon_slot_remove(d, (unsigned)s);
        }
        if (coop) error = rd_kafka_incremental_unassign(rk, parts);
        else aerr = rd_kafka_assign(rk, NULL);
    } else {
        seg_log(SEG_LOG_ERROR, "kafka", "rebalance error: %s", rd_kafka_err2str(err));
        aerr = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        seg_daemon_fatal(d, "partition assignment failed: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (aerr) {
        seg_daemon_fatal(d, "partition assignment failed: %s", rd_kafka_err2str(aerr));
    }
}
