/*
 * seg_kafka_log: the librdkafka log_cb adapter. librdkafka calls it from
 * its broker and main threads, which is why seg_log is thread-safe.
 */
#include "io/seg_kafka_log.h"

#include "util/seg_log.h"

int seg_kafka_log_level(int syslog_level)
{
    if (syslog_level <= 3) return SEG_LOG_ERROR;
    if (syslog_level == 4) return SEG_LOG_WARN;
    if (syslog_level <= 6) return SEG_LOG_INFO;
    return SEG_LOG_DEBUG;
}

void seg_log_rdkafka_cb(const rd_kafka_t *rk, int level, const char *fac,
                        const char *buf)
{
    seg_log_level_t lvl = (seg_log_level_t)seg_kafka_log_level(level);
    if (!seg_log_enabled(lvl)) return;
    /* The client name ("rdkafka#consumer-1") tells the consumer's lines
     * from the producer's; the facility ("FAIL", "REQTMOUT") is what
     * librdkafka's docs and issues refer to. */
    seg_log(lvl, "kafka", "%s %s: %s", rk ? rd_kafka_name(rk) : "rdkafka",
            fac ? fac : "-", buf ? buf : "");
}
