/*
 * seg_kafka: configuration assembly and the embedded mock cluster.
 */
#include "io/seg_kafka.h"

#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/seg_kafka_log.h"

struct seg_kafka_embedded {
    rd_kafka_t              *host;      /* a client handle the cluster lives in */
    rd_kafka_mock_cluster_t *cluster;
    char                     bootstrap[512];
};

void seg_kafka_changelog_topic(const seg_cfg_t *cfg, char *buf, size_t size)
{
    if (cfg->kafka.changelog_topic[0])
        snprintf(buf, size, "%s", cfg->kafka.changelog_topic);
    else
        snprintf(buf, size, "%s-changelog", cfg->kafka.group_id);
}

static int create_topic(seg_kafka_embedded_t *e, const char *topic, int partitions,
                        char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(e->cluster, topic, partitions, 1);
    if (err) {
        snprintf(errstr, errstr_size, "embedded cluster: cannot create topic '%s': %s",
                 topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

seg_kafka_embedded_t *seg_kafka_embedded_start(const seg_cfg_t *cfg, int brokers,
                                               char *errstr, size_t errstr_size)
{
    seg_kafka_embedded_t *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    char kerr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, seg_log_rdkafka_cb);
    rd_kafka_conf_set(conf, "client.id", "segd-embedded-cluster", NULL, 0);
    e->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof kerr);
    if (!e->host) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "embedded cluster: %s", kerr);
        goto fail;
    }
    e->cluster = rd_kafka_mock_cluster_new(e->host, brokers);
    if (!e->cluster) {
        snprintf(errstr, errstr_size, "embedded cluster: could not start %d broker(s) on 127.0.0.1",
                 brokers);
        goto fail;
    }
    snprintf(e->bootstrap, sizeof e->bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(e->cluster));
    int parts = (int)cfg->kafka.embedded_partitions;
    for (unsigned i = 0; i < cfg->kafka.input_topics.n; i++)
        if (create_topic(e, cfg->kafka.input_topics.item[i], parts, errstr, errstr_size)) goto fail;
    char changelog[300];
    seg_kafka_changelog_topic(cfg, changelog, sizeof changelog);
    if (create_topic(e, cfg->kafka.output_topic, parts, errstr, errstr_size) ||
        create_topic(e, cfg->kafka.dlq_topic, parts, errstr, errstr_size) ||
        create_topic(e, changelog, parts, errstr, errstr_size))
        goto fail;
    for (unsigned i = 0; i < cfg->routes.n; i++)
        if (create_topic(e, cfg->routes.e[i].key, parts, errstr, errstr_size)) goto fail;
    return e;
fail:
    seg_kafka_embedded_stop(e);
    return NULL;
}

const char *seg_kafka_embedded_bootstrap(const seg_kafka_embedded_t *e)
{
    return e->bootstrap;
}

void seg_kafka_embedded_stop(seg_kafka_embedded_t *e)
{
    if (!e) return;
    if (e->cluster) rd_kafka_mock_cluster_destroy(e->cluster);
    if (e->host) rd_kafka_destroy(e->host);
    free(e);
}

/* Sets one property; on failure names the config key and its origin. */
static int set_prop(rd_kafka_conf_t *conf, const seg_cfg_t *cfg, const char *section,
                    const seg_cfg_mapentry_t *ent, const char *name, const char *value,
                    char *errstr, size_t errstr_size)
{
    char kerr[512];
    if (rd_kafka_conf_set(conf, name, value, kerr, sizeof kerr) == RD_KAFKA_CONF_OK)
        return 0;
    if (ent) {
        char where[600], key[300];
        snprintf(key, sizeof key, "%s.%s", section, ent->key);
        seg_cfg_where(cfg, section, ent, where, sizeof where);
        snprintf(errstr, errstr_size, "%s: key '%s': librdkafka rejects it: %s",
                 where, key, kerr);
    } else {
        snprintf(errstr, errstr_size, "librdkafka rejects %s=%s: %s", name, value, kerr);
    }
    return -1;
}

/* Properties segd's guarantees rest on: set after the passthrough ones,
 * and a passthrough value for one of them is refused. */
typedef struct forced { const char *name, *value, *why; } forced_t;

static const forced_t consumer_forced[] = {
    { "enable.auto.offset.store", "false",
      "segd stores an offset only after every transition it caused is delivered" },
    { "enable.partition.eof", "true",
      "only a partition read to its end may go idle and stop holding event time back" },
};
static const forced_t producer_forced[] = {
    { "enable.idempotence", "true", "transitions must not be duplicated or reordered by retries" },
    { "acks", "all", "a transition counts as delivered only when fully replicated" },
};

static rd_kafka_conf_t *build(const seg_cfg_t *cfg, const char *bootstrap, const char *section,
                              const seg_cfg_strmap_t *pass, const forced_t *forced,
                              size_t nforced, const char *const (*defaults)[2], size_t ndefaults,
                              char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, seg_log_rdkafka_cb);
    if (set_prop(conf, cfg, section, NULL, "bootstrap.servers", bootstrap, errstr, errstr_size))
        goto fail;
    for (size_t i = 0; i < ndefaults; i++)
        if (set_prop(conf, cfg, section, NULL, defaults[i][0], defaults[i][1], errstr, errstr_size))
            goto fail;
    for (unsigned i = 0; i < pass->n; i++) {
        const seg_cfg_mapentry_t *ent = &pass->e[i];
        for (size_t f = 0; f < nforced; f++) {
            if (strcmp(ent->key, forced[f].name) == 0 && strcmp(ent->val, forced[f].value) != 0) {
                char where[600];
                seg_cfg_where(cfg, section, ent, where, sizeof where);
                snprintf(errstr, errstr_size, "%s: key '%s.%s': segd requires %s=%s (%s)",
                         where, section, ent->key, forced[f].name, forced[f].value,
                         forced[f].why);
                goto fail;
            }
        }
        if (strcmp(ent->key, "bootstrap.servers") == 0 || strcmp(ent->key, "group.id") == 0) {
            char where[600];
            seg_cfg_where(cfg, section, ent, where, sizeof where);
            snprintf(errstr, errstr_size, "%s: key '%s.%s': set it with kafka.%s instead",
                     where, section, ent->key,
                     strcmp(ent->key, "group.id") == 0 ? "group_id" : "brokers");
            goto fail;
        }
        if (set_prop(conf, cfg, section, ent, ent->key, ent->val, errstr, errstr_size))
            goto fail;
    }
    for (size_t f = 0; f < nforced; f++)
        if (set_prop(conf, cfg, section, NULL, forced[f].name, forced[f].value, errstr, errstr_size))
            goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

rd_kafka_conf_t *seg_kafka_consumer_conf(const seg_cfg_t *cfg, const char *bootstrap,
                                         char *errstr, size_t errstr_size)
{
    /* Defaults a user may override. */
    static const char *const defaults[][2] = {
        { "client.id", "segd" },
        { "auto.offset.reset", "earliest" },
        { "enable.auto.commit", "true" },
        { "auto.commit.interval.ms", "1000" },
        { "partition.assignment.strategy", "cooperative-sticky" },
        { "session.timeout.ms", "10000" },
        { "heartbeat.interval.ms", "1000" },
        /* Longest a broker may hold a fetch that finds no data. A real
         * broker answers as soon as data arrives, so this only bounds idle
         * polling (<= 50 empty fetches/s per broker); librdkafka's mock
         * cluster (kafka.brokers: embedded, the tests) always waits it out,
         * so it adds directly to latency there. */
        { "fetch.wait.max.ms", "20" },
        /* librdkafka 2.0.2 pauses fetching for a fixed second when its
         * queue reaches queued.min.messages (issue #2879): at the default
         * 100000 that caps a fast consumer near 0.3M records/s. */
        { "queued.min.messages", "1000000" },
        { "queued.max.messages.kbytes", "262144" },
    };
    rd_kafka_conf_t *conf = build(cfg, bootstrap, "kafka.consumer", &cfg->kafka.consumer,
                                  consumer_forced, sizeof consumer_forced / sizeof consumer_forced[0],
                                  defaults, sizeof defaults / sizeof defaults[0],
                                  errstr, errstr_size);
    if (conf && set_prop(conf, cfg, "kafka.consumer", NULL, "group.id", cfg->kafka.group_id,
                         errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

rd_kafka_conf_t *seg_kafka_producer_conf(const seg_cfg_t *cfg, const char *bootstrap,
                                         char *errstr, size_t errstr_size)
{
    /* A rejected record goes to the DLQ whole, and it may be longer than
     * input.max_record_bytes (that is one reason to reject it): allow
     * four times that, so the DLQ copy is not refused by our own
     * producer. (Longer ones are cut; see src/daemon/seg_dlq_topic.c.) */
    char maxbytes[24];
    long long mb = (long long)cfg->input.max_record_bytes * 4;
    if (mb < 1000000) mb = 1000000;
    if (mb > 1000000000) mb = 1000000000;
    snprintf(maxbytes, sizeof maxbytes, "%lld", mb);
    const char *const defaults[][2] = {
        { "client.id", "segd" },
        { "linger.ms", "5" },
        { "compression.type", "lz4" },
        { "message.timeout.ms", "300000" },
        { "message.max.bytes", maxbytes },
    };
    return build(cfg, bootstrap, "kafka.producer", &cfg->kafka.producer,
                 producer_forced, sizeof producer_forced / sizeof producer_forced[0],
                 defaults, sizeof defaults / sizeof defaults[0], errstr, errstr_size);
}

rd_kafka_conf_t *seg_kafka_restore_conf(const seg_cfg_t *cfg, const char *bootstrap,
                                        char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = seg_kafka_consumer_conf(cfg, bootstrap, errstr, errstr_size);
    if (!conf) return NULL;
    char gid[300];
    snprintf(gid, sizeof gid, "%s-restore", cfg->kafka.group_id);
    if (set_prop(conf, cfg, "kafka.consumer", NULL, "group.id", gid, errstr, errstr_size) ||
        set_prop(conf, cfg, "kafka.consumer", NULL, "enable.auto.commit", "false", errstr,
                 errstr_size) ||
        set_prop(conf, cfg, "kafka.consumer", NULL, "client.id", "segd-restore", errstr,
                 errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

void seg_kafka_state_dir(const seg_cfg_t *cfg, char *buf, size_t size)
{
    const char *env = getenv("STATE_DIRECTORY");
    if (cfg->state.dir[0]) {
        snprintf(buf, size, "%s", cfg->state.dir);
    } else if (env && *env) {
        size_t n = strcspn(env, ":");
        snprintf(buf, size, "%.*s", (int)n, env);
    } else {
        snprintf(buf, size, "./state");
    }
}
