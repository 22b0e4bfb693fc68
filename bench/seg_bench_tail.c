/*
 * seg_bench_tail: the receiving end of the Kafka latency benchmark.
 *
 * The latency that matters to a user of segd is from the moment an
 * application hands an event to its Kafka producer to the moment a
 * downstream consumer can read the transition it caused. The first end is
 * the input message's CreateTime (librdkafka stamps it with the wall clock
 * when the producer's producev() is called). The second end can only be
 * seen by a consumer: this tool reads the output topic as it is written
 * and stamps every message with the wall clock when rd_kafka_consumer_poll
 * hands it over. Both clocks are CLOCK_REALTIME on this one machine, so
 * the difference needs no clock sync. A consumer sees a message only after
 * the broker acknowledged it to segd's producer, so what is measured is an
 * upper bound of "produce -> transition delivered".
 *
 * It also records each message's own timestamp (CreateTime set by segd's
 * producer when segd produced the transition), which gives the lower
 * bound: produce -> segd handed the transition to its producer.
 *
 * Why C and librdkafka, not kcat or kafka-python: kcat has no receive-time
 * field, and a Python consumer falls behind ~150k messages/s, which would
 * measure the consumer. Parsing waits until after the run: during it the
 * tool only copies values to a buffered file.
 *
 * Why fetch.wait.max.ms is small here: librdkafka's mock cluster answers a
 * fetch that finds no data only after the full fetch.wait.max.ms, even if
 * data arrives meanwhile (a real broker answers as soon as
 * fetch.min.bytes are there). With the default 500 ms that artefact would
 * dominate the measurement; at 5 ms it is small and bounded.
 *
 * Output (--out FILE, one line per message, tab-separated):
 *   receive time (µs since the epoch), message timestamp (ms), timestamp
 *   type (C create, L log-append, - none), partition, offset, value
 * Values must not contain newlines (segd's transition JSON does not).
 *
 * Stops on SIGTERM/SIGINT, after --max-seconds, or --idle-exit seconds
 * after the last message once one was seen. Prints one JSON line with the
 * counts on stdout. Exit codes: 0 ok, 1 Kafka or I/O error, 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 4)
        fprintf(stderr, "seg_bench_tail: %s: %s\n", fac, buf);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: seg_bench_tail --bootstrap B --topic T --out FILE\n"
            "                      [--max-seconds S] [--idle-exit S] [-X key=value]...\n"
            "Reads every partition of T from the beginning and writes, per message,\n"
            "receive time (us), message timestamp (ms), its type, partition, offset\n"
            "and value, tab-separated. Stops on SIGTERM/SIGINT, after --max-seconds\n"
            "(default 300) or --idle-exit seconds without a message once one came\n"
            "(default 0: never). -X sets a librdkafka consumer property.\n");
}

/* Assigns every partition of topic from the beginning. Returns 0, or -1
 * with errstr. */
static int assign_all(rd_kafka_t *rk, const char *topic, int *parts, char *errstr,
                      size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rkt ? rd_kafka_metadata(rk, 0, rkt, &md, 10000)
                                  : RD_KAFKA_RESP_ERR__INVALID_ARG;
    int rc = -1;
    if (err || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1) {
        snprintf(errstr, errstr_size, "metadata for '%s': %s", topic,
                 rd_kafka_err2str(err ? err : md->topics[0].err));
        goto out;
    }
    *parts = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(*parts);
    for (int p = 0; p < *parts; p++)
        rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[p].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    err = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        snprintf(errstr, errstr_size, "assign: %s", rd_kafka_err2str(err));
        goto out;
    }
    rc = 0;
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    return rc;
}

int main(int argc, char **argv)
{
    const char *bootstrap = NULL, *topic = NULL, *out = NULL;
    double max_seconds = 300, idle_exit = 0;
    const char *props[64];
    int nprops = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        i++;
        char *end;
        if (!strcmp(a, "--bootstrap")) {
            bootstrap = v;
        } else if (!strcmp(a, "--topic")) {
            topic = v;
        } else if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--max-seconds")) {
            max_seconds = strtod(v, &end);
            if (*end || !(max_seconds > 0)) {
                usage(stderr);
                return 2;
            }
        } else if (!strcmp(a, "--idle-exit")) {
            idle_exit = strtod(v, &end);
            if (*end || !(idle_exit >= 0)) {
                usage(stderr);
                return 2;
            }
        } else if (!strcmp(a, "-X") && nprops < 64) {
            props[nprops++] = v;
        } else {
            fprintf(stderr, "seg_bench_tail: bad option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!bootstrap || !topic || !out) {
        usage(stderr);
        return 2;
    }

    char errstr[512];
    int rc = 1, parts = 0;
    uint64_t n = 0, bytes = 0, errors = 0;
    rd_kafka_t *rk = NULL;
    FILE *f = fopen(out, "w");
    if (!f) {
        fprintf(stderr, "seg_bench_tail: cannot open %s: %s\n", out, strerror(errno));
        return 1;
    }
    static char fbuf[4 << 20];
    setvbuf(f, fbuf, _IOFBF, sizeof fbuf);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    static const char *const defaults[][2] = {
        { "group.id", "seg_bench_tail" },   /* required; nothing is committed */
        { "enable.auto.commit", "false" },
        { "enable.partition.eof", "false" },
        { "fetch.wait.max.ms", "5" },
        { "queued.min.messages", "10000000" },
        { "queued.max.messages.kbytes", "2097151" },
    };
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr)) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "seg_bench_tail: %s\n", errstr);
        goto done;
    }
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], NULL, 0);
    for (int i = 0; i < nprops; i++) {
        char kv[512];
        snprintf(kv, sizeof kv, "%s", props[i]);
        char *eq = strchr(kv, '=');
        if (!eq || rd_kafka_conf_set(conf, (*eq = '\0', kv), eq + 1, errstr, sizeof errstr)) {
            rd_kafka_conf_destroy(conf);
            fprintf(stderr, "seg_bench_tail: -X %s: %s\n", props[i], eq ? errstr : "not key=value");
            goto done;
        }
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "seg_bench_tail: %s\n", errstr);
        goto done;
    }
    rd_kafka_poll_set_consumer(rk);
    if (assign_all(rk, topic, &parts, errstr, sizeof errstr)) {
        fprintf(stderr, "seg_bench_tail: %s\n", errstr);
        goto done;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* Ready: the run script starts producing only after this line. */
    fprintf(stderr, "seg_bench_tail: reading %d partitions of '%s'\n", parts, topic);

    double t0 = mono_s(), last = 0;
    while (!g_stop) {
        double now = mono_s();
        if (now - t0 > max_seconds || (idle_exit > 0 && n && now - last > idle_exit))
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        int64_t recv = wall_us();
        if (m->err) {
            if (errors++ < 5)
                fprintf(stderr, "seg_bench_tail: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(m, &tt);
        fprintf(f, "%" PRId64 "\t%" PRId64 "\t%c\t%" PRId32 "\t%" PRId64 "\t", recv, ts,
                tt == RD_KAFKA_TIMESTAMP_CREATE_TIME ? 'C'
                : tt == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? 'L' : '-',
                m->partition, m->offset);
        fwrite(m->payload, 1, m->len, f);
        fputc('\n', f);
        bytes += m->len;
        n++;
        last = mono_s();
        rd_kafka_message_destroy(m);
    }
    if (fflush(f) || ferror(f)) {
        fprintf(stderr, "seg_bench_tail: write to %s failed\n", out);
        goto done;
    }
    printf("{\"topic\":\"%s\",\"partitions\":%d,\"messages\":%" PRIu64 ",\"bytes\":%" PRIu64
           ",\"consumer_errors\":%" PRIu64 ",\"seconds\":%.3f}\n",
           topic, parts, n, bytes, errors, mono_s() - t0);
    rc = 0;
done:
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    if (fclose(f) && rc == 0)
        rc = 1;
    return rc;
}
