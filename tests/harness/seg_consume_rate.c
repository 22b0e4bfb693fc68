/*
 * seg_consume_rate: how fast a plain librdkafka consumer reads a pre-filled
 * topic from the loopback mock cluster. This is the ceiling for segd's
 * end-to-end Kafka benchmark: segd cannot fold events faster than the
 * library hands them over on the same machine, so its e2e events/s is
 * reported as a fraction of this number, measured in the same run.
 *
 * What it does:
 *   1. Uses the cluster at --bootstrap, or (default) starts an in-process
 *      librdkafka mock cluster (--brokers, default 3) and creates --topic
 *      with --partitions partitions.
 *   2. With --produce N, pre-fills the topic with a librdkafka producer:
 *      values are the lines of --input (NDJSON, e.g. from tools/seg_gen,
 *      cycled if N is larger) or synthetic events shaped like seg_gen's
 *      (~125 bytes); keys are the customer ids (murmur2 partitioner, as
 *      Java and kafka-python use). It then checks that no partition's log
 *      start moved: the mock keeps only ~5 MB per partition and drops the
 *      oldest, which would silently shrink the data set. With
 *      --copy-topic T --copy-share F, F copies per line (0..1, evenly
 *      spread) are also produced to T, the line's value and key right after
 *      it, and count towards N: the message mix of a segd whose routes copy
 *      that share of its transitions to a second topic (the produce floor
 *      of segd's Kafka bench, case 5).
 *   3. Consumes the whole topic --repeat times, each with a new consumer
 *      (assign all partitions from the beginning, or --group to subscribe),
 *      one rd_kafka_consumer_poll() per message as a daemon loop does, and
 *      touches every payload byte so the copy is not optimised away.
 *
 * Prefetch limits: librdkafka 2.0.2 stops fetching a partition while the
 * consumer queue holds queued.min.messages (default 100000; with the
 * high-level consumer that is the one shared queue, all partitions
 * together) or queued.max.messages.kbytes, and then re-checks only after a
 * hard-coded 1000 ms (librdkafka issue #2879; fetch.queue.backoff.ms came
 * later). Whenever one fetch round brings more than that, the consumer
 * idles most of each second: ~0.25M msgs/s here, at 20% CPU. The ceiling
 * is what the library can deliver, so by default both limits are raised
 * (queued.min.messages=10000000, queued.max.messages.kbytes=2097151);
 * --librdkafka-defaults measures the stock settings, and --consumer-prop
 * overrides either to match what segd is configured with.
 * Output: one JSON object on stdout with each run and the median msgs/s.
 * Each run also reports this process's CPU seconds (user+sys; with the
 * in-process cluster that includes the mock's broker threads): on a busy
 * machine msgs per CPU second moves less than msgs per wall second.
 * Exit codes: 0 ok, 1 Kafka or I/O error (or data dropped), 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_PROPS 64
#define MAX_RUNS 32

typedef struct {
    const char *bootstrap, *topic, *input, *compression, *group, *copy_topic;
    long brokers, partitions, produce, repeat;
    double copy_share;
    const char *cprops[MAX_PROPS], *pprops[MAX_PROPS];
    int ncprops, npprops;
    int lib_defaults;  /* keep librdkafka's prefetch limits */
} opts_t;

typedef struct {
    double seconds;            /* first message to last */
    double seconds_startup;    /* consumer creation to last message */
    double cpu_seconds;        /* user+sys of this process over the run */
    uint64_t msgs, bytes, checksum;
} run_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (strstr(buf, "No `bootstrap.servers` configured"))
        return;  /* the mock's book-keeping handle has none, by design */
    fprintf(stderr, "seg_consume_rate: %.6f %s: %s\n", now_s(), fac, buf);
}

/* Applies "key=value" properties to conf. Returns 0 or -1 with errstr. */
static int set_props(rd_kafka_conf_t *conf, const char *const *props, int n, char *errstr,
                     size_t errstr_size)
{
    for (int i = 0; i < n; i++) {
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", props[i]);
        char *eq = strchr(buf, '=');
        if (!eq) {
            snprintf(errstr, errstr_size, "property %s is not key=value", props[i]);
            return -1;
        }
        *eq = '\0';
        if (rd_kafka_conf_set(conf, buf, eq + 1, errstr, errstr_size) != RD_KAFKA_CONF_OK)
            return -1;
    }
    return 0;
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *errstr,
                    size_t errstr_size)
{
    return rd_kafka_conf_set(conf, k, v, errstr, errstr_size) == RD_KAFKA_CONF_OK ? 0 : -1;
}

/* The values to produce: lines of the input file, or synthetic. */
typedef struct {
    char *data;       /* whole file, lines NUL-terminated in place */
    char **lines;
    char **keys;      /* customer_id of each line, or NULL */
    size_t n;
} values_t;

static void values_free(values_t *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n && v->keys; i++)
        free(v->keys[i]);
    free(v->keys);
    free(v->lines);
    free(v->data);
}

static int values_load(const char *path, values_t *v, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errstr, errstr_size, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 20, len = 0;
    v->data = malloc(cap + 1);
    size_t got;
    while (v->data && (got = fread(v->data + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *p = realloc(v->data, cap * 2 + 1);
            if (!p) {
                free(v->data);
                v->data = NULL;
                break;
            }
            v->data = p;
            cap *= 2;
        }
    }
    fclose(f);
    if (!v->data) {
        snprintf(errstr, errstr_size, "out of memory reading %s", path);
        return -1;
    }
    v->data[len] = '\0';
    size_t nl = 0;
    for (size_t i = 0; i < len; i++)
        nl += v->data[i] == '\n';
    v->lines = calloc(nl + 1, sizeof(*v->lines));
    v->keys = calloc(nl + 1, sizeof(*v->keys));
    if (!v->lines || !v->keys) {
        snprintf(errstr, errstr_size, "out of memory indexing %s", path);
        return -1;
    }
    for (char *p = v->data, *e; p < v->data + len; p = e + 1) {
        e = strchr(p, '\n');
        if (!e)
            e = v->data + len;
        *e = '\0';
        if (e > p && e[-1] == '\r')
            e[-1] = '\0';
        if (!*p)
            continue;
        cJSON *j = cJSON_Parse(p);
        const cJSON *id = j ? cJSON_GetObjectItemCaseSensitive(j, "customer_id") : NULL;
        if (cJSON_IsString(id))
            v->keys[v->n] = strdup(id->valuestring);
        cJSON_Delete(j);
        v->lines[v->n++] = p;
    }
    if (!v->n) {
        snprintf(errstr, errstr_size, "%s has no lines", path);
        return -1;
    }
    return 0;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    uint64_t *failed = opaque;
    if (m->err) {
        if (*failed == 0)
            fprintf(stderr, "seg_consume_rate: delivery failed: %s\n", rd_kafka_err2str(m->err));
        (*failed)++;
    }
}

/* One message to topic; on a full queue serves delivery reports and
 * tries again. */
static rd_kafka_resp_err_t produce1(rd_kafka_t *rk, const char *topic, const char *v,
                                    size_t vlen, const char *k)
{
    rd_kafka_resp_err_t err;
    for (;;) {
        err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_VALUE((void *)v, vlen),
                                RD_KAFKA_V_KEY((void *)k, k ? strlen(k) : 0), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return err;
        rd_kafka_poll(rk, 10);  /* let deliveries drain the queue */
    }
}

/* Produces o->produce messages (copies included). Returns 0, or -1 with
 * errstr. */
static int prefill(const opts_t *o, const values_t *vals, double *seconds, uint64_t *bytes,
                   uint64_t *copies, char *errstr, size_t errstr_size)
{
    uint64_t failed = 0;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, &failed);
    if (conf_set(conf, "bootstrap.servers", o->bootstrap, errstr, errstr_size) ||
        conf_set(conf, "linger.ms", "20", errstr, errstr_size) ||
        conf_set(conf, "batch.size", "1000000", errstr, errstr_size) ||
        conf_set(conf, "queue.buffering.max.messages", "1000000", errstr, errstr_size) ||
        conf_set(conf, "compression.codec", o->compression, errstr, errstr_size) ||
        conf_set(conf, "partitioner", "murmur2_random", errstr, errstr_size) ||
        set_props(conf, o->pprops, o->npprops, errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    double t0 = now_s();
    static const char *types[] = {"purchase", "purchase", "purchase", "contact", "refund"};
    char value[512], key[32];
    *bytes = 0;
    *copies = 0;
    for (long i = 0; i < o->produce; i++) {
        const char *v, *k;
        long n = i - (long)*copies;   /* lines produced so far */
        if (vals->n) {
            v = vals->lines[(size_t)n % vals->n];
            k = vals->keys[(size_t)n % vals->n];
        } else {
            /* Shaped like tools/seg_gen output: ~125 bytes of NDJSON. */
            unsigned long cust = (unsigned long)((i * 2654435761u) % 100000u);
            snprintf(key, sizeof(key), "c%010lu", cust);
            snprintf(value, sizeof(value),
                     "{\"type\":\"%s\",\"customer_id\":\"%s\",\"ts\":\"2024-%02ld-%02ldT%02ld:%02ld:00Z\","
                     "\"amount\":%ld.%02ld,\"event_id\":\"e%ld\",\"currency\":\"EUR\"}",
                     types[i % 5], key, 1 + i % 12, 1 + i % 28, i % 24, i % 60, 5 + i % 95,
                     i % 100, i + 1);
            v = value;
            k = key;
        }
        size_t vlen = strlen(v);
        rd_kafka_resp_err_t err = produce1(rk, o->topic, v, vlen, k);
        /* A copy after line n when floor(n * F) steps up: F copies per
         * line, evenly spread. */
        if (!err && o->copy_topic && i + 1 < o->produce &&
            (long)((n + 1) * o->copy_share) > (long)(n * o->copy_share)) {
            *bytes += vlen;
            rd_kafka_poll(rk, 0);
            err = produce1(rk, o->copy_topic, v, vlen, k);
            (*copies)++;
            i++;
        }
        if (err) {
            snprintf(errstr, errstr_size, "produce: %s", rd_kafka_err2str(err));
            rd_kafka_destroy(rk);
            return -1;
        }
        *bytes += vlen;
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, 120000);
    *seconds = now_s() - t0;
    rd_kafka_destroy(rk);
    if (err || failed) {
        snprintf(errstr, errstr_size, "pre-fill: %s, %" PRIu64 " messages failed",
                 err ? rd_kafka_err2str(err) : "flushed", failed);
        return -1;
    }
    return 0;
}

/* Low and high watermarks summed over partitions, and the partition count.
 * A nonzero low watermark means the mock dropped the oldest messages. */
static int watermarks(const opts_t *o, int64_t *lo_sum, int64_t *hi_sum, int *parts,
                      char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    if (conf_set(conf, "bootstrap.servers", o->bootstrap, errstr, errstr_size) ||
        conf_set(conf, "group.id", "seg_consume_rate.wm", errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    int rc = -1;
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        snprintf(errstr, errstr_size, "metadata for %s: %s", o->topic,
                 rd_kafka_err2str(err ? err : md->topics[0].err));
        goto out;
    }
    *parts = md->topics[0].partition_cnt;
    *lo_sum = *hi_sum = 0;
    for (int p = 0; p < *parts; p++) {
        int64_t lo, hi;
        err = rd_kafka_query_watermark_offsets(rk, o->topic, md->topics[0].partitions[p].id, &lo,
                                               &hi, 10000);
        if (err) {
            snprintf(errstr, errstr_size, "watermarks: %s", rd_kafka_err2str(err));
            goto out;
        }
        *lo_sum += lo;
        *hi_sum += hi;
    }
    rc = 0;
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}

/* One consume pass over `want` messages. Returns 0 or -1 with errstr. */
static int consume_run(const opts_t *o, int parts, int64_t want, int run, run_t *r,
                       char *errstr, size_t errstr_size)
{
    char group[128];
    snprintf(group, sizeof(group), "%s", o->group ? o->group : "seg_consume_rate");
    if (o->group)  /* a fresh group per run, so each run starts at offset 0 */
        snprintf(group, sizeof(group), "%s.%d.%ld", o->group, run, (long)time(NULL));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    if (conf_set(conf, "bootstrap.servers", o->bootstrap, errstr, errstr_size) ||
        conf_set(conf, "group.id", group, errstr, errstr_size) ||
        conf_set(conf, "auto.offset.reset", "earliest", errstr, errstr_size) ||
        conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
        conf_set(conf, "enable.partition.eof", "false", errstr, errstr_size) ||
        (!o->lib_defaults &&
         (conf_set(conf, "queued.min.messages", "10000000", errstr, errstr_size) ||
          conf_set(conf, "queued.max.messages.kbytes", "2097151", errstr, errstr_size))) ||
        set_props(conf, o->cprops, o->ncprops, errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    double t0 = now_s(), c0 = cpu_s();
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(parts);
    if (o->group) {  /* a subscription names topics, not partitions */
        rd_kafka_topic_partition_list_add(tpl, o->topic, RD_KAFKA_PARTITION_UA);
    } else {
        for (int p = 0; p < parts; p++)
            rd_kafka_topic_partition_list_add(tpl, o->topic, p)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_resp_err_t err = o->group ? rd_kafka_subscribe(rk, tpl) : rd_kafka_assign(rk, tpl);
    rd_kafka_topic_partition_list_destroy(tpl);
    int rc = -1;
    if (err) {
        snprintf(errstr, errstr_size, "%s: %s", o->group ? "subscribe" : "assign",
                 rd_kafka_err2str(err));
        goto out;
    }
    memset(r, 0, sizeof(*r));
    double first = 0, last = 0, idle_since = now_s();
    while ((int64_t)r->msgs < want) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            if (now_s() - idle_since > 30) {
                snprintf(errstr, errstr_size, "stalled after %" PRIu64 " of %" PRId64 " messages",
                         r->msgs, want);
                goto out;
            }
            continue;
        }
        if (m->err) {
            snprintf(errstr, errstr_size, "consume: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            goto out;
        }
        last = now_s();
        if (!r->msgs)
            first = last;
        idle_since = last;
        const unsigned char *p = m->payload;
        uint64_t sum = 0;
        for (size_t i = 0; i < m->len; i++)
            sum += p[i];
        r->checksum += sum;
        r->bytes += m->len;
        r->msgs++;
        rd_kafka_message_destroy(m);
    }
    r->seconds = last - first;
    r->seconds_startup = last - t0;
    r->cpu_seconds = cpu_s() - c0;
    rc = 0;
out:
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: seg_consume_rate [--bootstrap B | --brokers N] [--topic T] [--partitions P]\n"
            "                        [--produce N [--input NDJSON] [--compression C]\n"
            "                         [--copy-topic T --copy-share F]]\n"
            "                        [--repeat K] [--group G] [--consumer-prop k=v]...\n"
            "                        [--producer-prop k=v]... [--librdkafka-defaults]\n"
            "Without --bootstrap an in-process mock cluster of N brokers (default 3) is\n"
            "started and T (default seg.bench, P partitions, default 40) created; then\n"
            "--produce defaults to 1000000. Prints JSON with msgs/s per run and the median.\n"
            "The consumer prefetches without limit (queued.min.messages=10000000,\n"
            "queued.max.messages.kbytes=2097151) unless --librdkafka-defaults.\n");
}

int main(int argc, char **argv)
{
    opts_t o = {.topic = "seg.bench", .compression = "none", .brokers = 3, .partitions = 40,
                .produce = -1, .repeat = 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--librdkafka-defaults")) {
            o.lib_defaults = 1;
            continue;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        i++;
        char *end = NULL;
        long n = strtol(v, &end, 10);
        int num_ok = end && *end == '\0' && end != v;
        if (!strcmp(a, "--bootstrap"))
            o.bootstrap = v;
        else if (!strcmp(a, "--topic"))
            o.topic = v;
        else if (!strcmp(a, "--input"))
            o.input = v;
        else if (!strcmp(a, "--copy-topic"))
            o.copy_topic = v;
        else if (!strcmp(a, "--copy-share") && atof(v) >= 0 && atof(v) <= 1)
            o.copy_share = atof(v);
        else if (!strcmp(a, "--compression"))
            o.compression = v;
        else if (!strcmp(a, "--group"))
            o.group = v;
        else if (!strcmp(a, "--brokers") && num_ok && n >= 1 && n <= 64)
            o.brokers = n;
        else if (!strcmp(a, "--partitions") && num_ok && n >= 1 && n <= 10000)
            o.partitions = n;
        else if (!strcmp(a, "--produce") && num_ok && n >= 0)
            o.produce = n;
        else if (!strcmp(a, "--repeat") && num_ok && n >= 1 && n <= MAX_RUNS)
            o.repeat = n;
        else if (!strcmp(a, "--consumer-prop") && o.ncprops < MAX_PROPS)
            o.cprops[o.ncprops++] = v;
        else if (!strcmp(a, "--producer-prop") && o.npprops < MAX_PROPS)
            o.pprops[o.npprops++] = v;
        else {
            fprintf(stderr, "seg_consume_rate: bad option %s %s\n", a, v);
            usage(stderr);
            return 2;
        }
    }
    char errstr[512];
    int rc = 1;
    rd_kafka_t *mrk = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;
    values_t vals = {0};
    double prefill_s = 0;
    uint64_t prefill_bytes = 0, prefill_copies = 0;
    run_t runs[MAX_RUNS];
    char bootstrap[1024];

    if (!o.bootstrap) {
        /* The mock needs a handle for its book-keeping that outlives it. */
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set_log_cb(conf, quiet_log);
        mrk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!mrk) {
            rd_kafka_conf_destroy(conf);
            fprintf(stderr, "seg_consume_rate: %s\n", errstr);
            goto out;
        }
        mc = rd_kafka_mock_cluster_new(mrk, (int)o.brokers);
        if (!mc) {
            fprintf(stderr, "seg_consume_rate: cannot start the mock cluster\n");
            goto out;
        }
        snprintf(bootstrap, sizeof(bootstrap), "%s", rd_kafka_mock_cluster_bootstraps(mc));
        o.bootstrap = bootstrap;
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, o.topic, (int)o.partitions,
                                                             o.brokers < 3 ? (int)o.brokers : 3);
        if (err) {
            fprintf(stderr, "seg_consume_rate: create topic: %s\n", rd_kafka_err2str(err));
            goto out;
        }
        if (o.produce < 0)
            o.produce = 1000000;
    }
    if (o.input && values_load(o.input, &vals, errstr, sizeof(errstr)) < 0) {
        fprintf(stderr, "seg_consume_rate: %s\n", errstr);
        goto out;
    }
    if (o.produce > 0 &&
        prefill(&o, &vals, &prefill_s, &prefill_bytes, &prefill_copies, errstr,
                sizeof(errstr)) < 0) {
        fprintf(stderr, "seg_consume_rate: %s\n", errstr);
        goto out;
    }
    int64_t lo, hi;
    int parts;
    if (watermarks(&o, &lo, &hi, &parts, errstr, sizeof(errstr)) < 0) {
        fprintf(stderr, "seg_consume_rate: %s\n", errstr);
        goto out;
    }
    if (lo != 0) {
        fprintf(stderr,
                "seg_consume_rate: the cluster dropped %" PRId64 " old messages (the mock keeps"
                " ~5 MB per partition); use more --partitions, --compression lz4 or fewer"
                " messages\n", lo);
        goto out;
    }
    if (hi == 0) {
        fprintf(stderr, "seg_consume_rate: topic %s is empty\n", o.topic);
        goto out;
    }
    double rates[MAX_RUNS];
    for (int r = 0; r < o.repeat; r++) {
        if (consume_run(&o, parts, hi, r, &runs[r], errstr, sizeof(errstr)) < 0) {
            fprintf(stderr, "seg_consume_rate: run %d: %s\n", r + 1, errstr);
            goto out;
        }
        rates[r] = runs[r].seconds > 0 ? runs[r].msgs / runs[r].seconds : 0;
        fprintf(stderr, "seg_consume_rate: run %d: %" PRIu64 " msgs in %.3fs: %.0f msgs/s\n",
                r + 1, runs[r].msgs, runs[r].seconds, rates[r]);
    }
    double sorted[MAX_RUNS];
    memcpy(sorted, rates, sizeof(double) * (size_t)o.repeat);
    qsort(sorted, (size_t)o.repeat, sizeof(double), cmp_double);
    double median = o.repeat % 2 ? sorted[o.repeat / 2]
                                 : (sorted[o.repeat / 2 - 1] + sorted[o.repeat / 2]) / 2;

    printf("{\"tool\":\"seg_consume_rate\",\"librdkafka\":\"%s\",\"cluster\":\"%s\","
           "\"brokers\":%ld,\"topic\":\"%s\",\"partitions\":%d,\"messages\":%" PRId64 ","
           "\"compression\":\"%s\",\"values\":\"%s\",\"mode\":\"%s\",\"prefetch\":\"%s\",",
           rd_kafka_version_str(), mc ? "in-process mock" : "external", o.brokers, o.topic,
           parts, hi, o.compression, o.input ? "input file" : (o.produce > 0 ? "synthetic" : "existing"),
           o.group ? "subscribe" : "assign",
           o.lib_defaults ? "librdkafka defaults" : "unlimited");
    if (o.produce > 0)
        printf("\"prefill_seconds\":%.3f,\"prefill_bytes\":%" PRIu64 ","
               "\"prefill_copies\":%" PRIu64 ",", prefill_s, prefill_bytes, prefill_copies);
    printf("\"runs\":[");
    for (int r = 0; r < o.repeat; r++)
        printf("%s{\"msgs\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"seconds\":%.4f,"
               "\"seconds_with_startup\":%.4f,\"cpu_seconds\":%.4f,\"msgs_per_sec\":%.0f}",
               r ? "," : "", runs[r].msgs, runs[r].bytes, runs[r].seconds,
               runs[r].seconds_startup, runs[r].cpu_seconds, rates[r]);
    printf("],\"msgs_per_sec\":%.0f,\"mb_per_sec\":%.1f}\n", median,
           median * (runs[0].msgs ? (double)runs[0].bytes / runs[0].msgs : 0) / 1e6);
    rc = 0;
out:
    values_free(&vals);
    if (mc)
        rd_kafka_mock_cluster_destroy(mc);
    if (mrk)
        rd_kafka_destroy(mrk);
    return rc;
}
