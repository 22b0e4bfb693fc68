/*
 * seg_kafka: librdkafka clients configured from segd's config, and the
 * embedded Kafka-protocol cluster for a first run.
 *
 * segd's delivery guarantee depends on a few client settings that a user
 * must not be able to turn off by accident (offsets stored by segd only
 * after delivery; an idempotent, acks=all producer). Those are applied
 * last and a passthrough property that contradicts one is a startup error,
 * as is any property librdkafka rejects: the message names the config key
 * and where it was set.
 */
#ifndef SEG_KAFKA_H
#define SEG_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "config/seg_cfg.h"

typedef struct seg_kafka_embedded seg_kafka_embedded_t;

/* Starts librdkafka's in-process mock cluster (rdkafka_mock.h) on
 * 127.0.0.1 with `brokers` brokers and creates every topic the config
 * names (input topics with kafka.embedded.partitions partitions; output,
 * DLQ, changelog and route topics likewise). For demos and first runs
 * only: it keeps at most a few MB per partition and forgets everything on
 * exit. Returns NULL with errstr on failure. */
seg_kafka_embedded_t *seg_kafka_embedded_start(const seg_cfg_t *cfg, int brokers,
                                               char *errstr, size_t errstr_size);
/* The cluster's bootstrap address list ("127.0.0.1:port,..."). */
const char *seg_kafka_embedded_bootstrap(const seg_kafka_embedded_t *e);
/* Stops the cluster. NULL is a no-op. */
void seg_kafka_embedded_stop(seg_kafka_embedded_t *e);

/* The changelog topic name: kafka.changelog_topic, or "<group>-changelog". */
void seg_kafka_changelog_topic(const seg_cfg_t *cfg, char *buf, size_t size);

/* Builds a consumer configuration: bootstrap, group, the passthrough
 * kafka.consumer.* properties, then segd's required settings. The caller
 * sets callbacks and owns the result. NULL with errstr on error. */
rd_kafka_conf_t *seg_kafka_consumer_conf(const seg_cfg_t *cfg, const char *bootstrap,
                                         char *errstr, size_t errstr_size);

/* A consumer for reading the changelog on restore: same passthrough
 * properties, no group membership, no offset commits. */
rd_kafka_conf_t *seg_kafka_restore_conf(const seg_cfg_t *cfg, const char *bootstrap,
                                        char *errstr, size_t errstr_size);

/* The state directory: state.dir, else the first entry of
 * $STATE_DIRECTORY (systemd's StateDirectory=), else "./state". */
void seg_kafka_state_dir(const seg_cfg_t *cfg, char *buf, size_t size);

/* Same for the producer (kafka.producer.*; idempotent, acks=all). */
rd_kafka_conf_t *seg_kafka_producer_conf(const seg_cfg_t *cfg, const char *bootstrap,
                                         char *errstr, size_t errstr_size);

#endif
