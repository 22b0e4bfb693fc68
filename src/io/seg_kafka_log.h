/*
 * seg_kafka_log: librdkafka's log lines, routed into seg_log.
 *
 * librdkafka prints to stderr in its own format unless given a log_cb;
 * routing it through seg_log gives its lines the same timestamp, level
 * and format (plain or json) as the rest of segd, under component
 * "kafka". Kept apart from util/seg_log.c so the logger itself does not
 * depend on librdkafka.
 */
#ifndef SEG_KAFKA_LOG_H
#define SEG_KAFKA_LOG_H

#include <librdkafka/rdkafka.h>

/* Maps a syslog severity, as librdkafka reports it, to a seg_log level:
 * 0..3 (emerg, alert, crit, err) -> error, 4 (warning) -> warn,
 * 5..6 (notice, info) -> info, 7 (debug) and above -> debug. */
int seg_kafka_log_level(int syslog_level);

/* A log_cb for rd_kafka_conf_set_log_cb(). Writes
 *   "<client name> <facility>: <message>"
 * at the mapped level under component "kafka". Safe to call from any of
 * librdkafka's threads; rk may be NULL. */
void seg_log_rdkafka_cb(const rd_kafka_t *rk, int level, const char *fac,
                        const char *buf);

#endif
