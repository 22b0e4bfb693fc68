/*
 * seg_bench_snapshot: how fast segd's state moves to disk and back, and
 * back out of Kafka, measured on the code the daemon runs.
 *
 * Why a program of its own: a restart is only "seconds" if a partition of
 * millions of customers loads in seconds, and a checkpoint only "does not
 * stall consumption" if writing it is quick. Both are properties of
 * src/persist alone, so they are measured here directly on engines built
 * in memory, with no Kafka and no parsing in the way:
 *
 *   snapshot --customers N [--repeat R] [--dir D]
 *       Folds a generated history into one engine (N customers, ~3 events
 *       each over a year: purchases, some refunds and complaints, so
 *       windows hold what real state holds), then R times writes it with
 *       seg_snapshot_write (temp file, fsync, rename, fsync of the dir)
 *       and loads it into a fresh engine with seg_snapshot_load (read,
 *       CRC, parse, rebuild every customer and its next deadline).
 *   changelog --bootstrap B --topic T --partitions P --customers K
 *       For each of P partitions: an engine of K customers appends its
 *       state with seg_changelog_append through a producer configured as
 *       segd's, then seg_changelog_restore rebuilds it with segd's restore
 *       consumer; checks every customer came back and times both.
 *   make-state --customers N --dir D --topic T [--partition P]
 *       Writes one snapshot (next offset 0) for `segd run` to load, so
 *       bench/run.py can measure the daemon's checkpoint pause at N
 *       customers without pushing N customers' events through the mock
 *       cluster (which keeps ~5 MB per partition).
 *
 * Output: one JSON object on stdout (medians, mins, maxes; rates in
 * customers/s, MB/s, records/s). Exit 0 ok, 1 failure, 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "config/seg_cfg.h"
#include "io/seg_kafka.h"
#include "persist/seg_changelog.h"
#include "persist/seg_snapshot.h"
#include "segment/seg_engine.h"

#define MAX_REPEAT 32
#define T0 1704067200          /* 2024-01-01T00:00:00Z */
#define DAY 86400

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)         /* xorshift64*: fast and deterministic */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static int count_emit(void *opaque, const seg_transition_t *t)
{
    (void)t;
    (*(uint64_t *)opaque)++;
    return 0;
}

/* Folds one customer's history (in ts order, as the daemon would see it)
 * into e. Shape: 1-6 purchases spread over the year, a refund after 5%
 * of them, a complaint for 8% of customers. */
static int fold_customer(seg_engine_t *e, const char *prefix, uint64_t i, uint64_t *events)
{
    char id[48], err[256];
    int n = snprintf(id, sizeof id, "%s%010" PRIu64, prefix, i);
    seg_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.customer_id = id;
    ev.customer_id_len = (size_t)n;
    int64_t ts = T0 + (int64_t)(rnd() % (180 * DAY));
    int purchases = 1 + (int)(rnd() % 6);
    for (int k = 0; k < purchases; k++) {
        ev.type = SEG_EV_PURCHASE;
        ev.kind = SEG_CONTACT_NONE;
        ev.ts = ts;
        ev.amount = (int64_t)(500 + rnd() % 20000) * 100;   /* 1/10000 units */
        ev.has_amount = 1;
        if (seg_engine_fold_local(e, &ev, err, sizeof err) != 0) goto fail;
        (*events)++;
        if (rnd() % 100 < 5) {
            ev.type = SEG_EV_REFUND;
            ev.ts = ts + DAY * (int64_t)(1 + rnd() % 10);
            ev.amount /= 2;
            if (seg_engine_fold_local(e, &ev, err, sizeof err) != 0) goto fail;
            (*events)++;
        }
        ts += DAY * (int64_t)(11 + rnd() % 60);
    }
    if (rnd() % 100 < 8) {
        ev.type = SEG_EV_CONTACT;
        ev.kind = SEG_CONTACT_COMPLAINT;
        ev.has_amount = 0;
        ev.amount = 0;
        ev.ts = ts;
        if (seg_engine_fold_local(e, &ev, err, sizeof err) != 0) goto fail;
        (*events)++;
    }
    return 0;
fail:
    fprintf(stderr, "seg_bench_snapshot: fold: %s\n", err);
    return -1;
}

static seg_engine_t *build(const seg_cfg_t *cfg, const char *prefix, uint64_t n, bool track,
                           uint64_t *emitted, double *seconds, uint64_t *events)
{
    char err[256];
    seg_engine_t *e = seg_engine_new(&cfg->seg, count_emit, emitted, err, sizeof err);
    if (!e) {
        fprintf(stderr, "seg_bench_snapshot: %s\n", err);
        return NULL;
    }
    seg_engine_track_changes(e, track);
    double t = mono();
    for (uint64_t i = 0; i < n; i++) {
        if (fold_customer(e, prefix, i, events) != 0) {
            seg_engine_destroy(e);
            return NULL;
        }
    }
    *seconds = mono() - t;
    return e;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One metric: median, min, max and every run, in run order. */
static void stats(const char *name, double *v, int n, bool last)
{
    double tmp[MAX_REPEAT];
    memcpy(tmp, v, (size_t)n * sizeof *v);
    double med = median(tmp, n);
    printf("  \"%s\": {\"median\": %.6g, \"min\": %.6g, \"max\": %.6g, \"runs\": [", name, med,
           tmp[0], tmp[n - 1]);
    for (int i = 0; i < n; i++) printf("%s%.6g", i ? ", " : "", v[i]);
    printf("]}%s\n", last ? "" : ",");
}

/* ---- snapshot ----------------------------------------------------------------- */

static int bench_snapshot(const seg_cfg_t *cfg, uint64_t n, int repeat, const char *dir)
{
    uint64_t emitted = 0, events = 0;
    double build_s;
    seg_engine_t *e = build(cfg, "c", n, false, &emitted, &build_s, &events);
    if (!e) return 1;
    seg_engine_stats_t st;
    seg_engine_stats(e, &st);
    double w_s[MAX_REPEAT], l_s[MAX_REPEAT], w_cps[MAX_REPEAT], l_cps[MAX_REPEAT];
    double w_mbs[MAX_REPEAT], l_mbs[MAX_REPEAT];
    uint64_t bytes = 0;
    char err[512], path[1024];
    seg_snapshot_path(dir, "bench", 0, path, sizeof path);
    for (int r = 0; r < repeat; r++) {
        seg_snapshot_info_t wi, li;
        if (seg_snapshot_write(dir, "bench", 0, e, 123456, &wi, err, sizeof err) != 0) {
            fprintf(stderr, "seg_bench_snapshot: %s\n", err);
            seg_engine_destroy(e);
            return 1;
        }
        uint64_t em2 = 0;
        seg_engine_t *e2 = seg_engine_new(&cfg->seg, count_emit, &em2, err, sizeof err);
        if (!e2 || seg_snapshot_load(path, "bench", 0, e2, &li, err, sizeof err) != 0) {
            fprintf(stderr, "seg_bench_snapshot: load: %s\n", e2 ? err : "engine");
            seg_engine_destroy(e2);
            seg_engine_destroy(e);
            return 1;
        }
        seg_engine_stats_t st2;
        seg_engine_stats(e2, &st2);
        if (li.customers != n || st2.customers != st.customers ||
            st2.pending_timers != st.pending_timers || li.next_offset != 123456) {
            fprintf(stderr, "seg_bench_snapshot: loaded %llu customers / %zu timers, wrote %u / "
                    "%zu\n", (unsigned long long)li.customers, st2.pending_timers,
                    st.customers, st.pending_timers);
            seg_engine_destroy(e2);
            seg_engine_destroy(e);
            return 1;
        }
        seg_engine_destroy(e2);
        bytes = wi.bytes;
        w_s[r] = wi.seconds;
        l_s[r] = li.seconds;
        w_cps[r] = n / wi.seconds;
        l_cps[r] = n / li.seconds;
        w_mbs[r] = wi.bytes / 1e6 / wi.seconds;
        l_mbs[r] = li.bytes / 1e6 / li.seconds;
        fprintf(stderr, "  run %d: write %.3f s (%.2fM customers/s, %.0f MB/s), "
                "load %.3f s (%.2fM customers/s, %.0f MB/s)\n", r + 1, wi.seconds,
                w_cps[r] / 1e6, w_mbs[r], li.seconds, l_cps[r] / 1e6, l_mbs[r]);
    }
    unlink(path);
    printf("{\n  \"mode\": \"snapshot\", \"customers\": %llu, \"events_folded\": %llu,\n"
           "  \"build_seconds\": %.3f, \"state_bytes\": %zu, \"pending_timers\": %zu,\n"
           "  \"snapshot_bytes\": %llu, \"bytes_per_customer\": %.1f, \"repeat\": %d,\n",
           (unsigned long long)n, (unsigned long long)events, build_s, st.state_bytes,
           st.pending_timers, (unsigned long long)bytes, (double)bytes / n, repeat);
    stats("write_seconds", w_s, repeat, false);
    stats("write_customers_per_second", w_cps, repeat, false);
    stats("write_mb_per_second", w_mbs, repeat, false);
    stats("load_seconds", l_s, repeat, false);
    stats("load_customers_per_second", l_cps, repeat, false);
    stats("load_mb_per_second", l_mbs, repeat, true);
    printf("}\n");
    seg_engine_destroy(e);
    return 0;
}

/* ---- changelog ------------------------------------------------------------------- */

typedef struct prod {
    rd_kafka_t       *rk;
    rd_kafka_topic_t *rkt;
    int               failed;
} prod_t;

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    prod_t *p = opaque;
    if (m->err) {
        if (!p->failed)
            fprintf(stderr, "seg_bench_snapshot: delivery failed: %s\n", rd_kafka_err2str(m->err));
        p->failed = 1;
    }
}

/* The daemon's produce path for changelog records (src/daemon/seg_checkpoint.c). */
static int produce(void *opaque, int32_t partition, const void *key, size_t klen,
                   const void *value, size_t vlen)
{
    prod_t *p = opaque;
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_RKT(p->rkt), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)value, vlen),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (!err) return 0;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(p->rk, 10);
            continue;
        }
        fprintf(stderr, "seg_bench_snapshot: produce: %s\n", rd_kafka_err2str(err));
        return -1;
    }
}

static int bench_changelog(seg_cfg_t *cfg, const char *bootstrap, const char *topic, int parts,
                           uint64_t k)
{
    char err[512];
    int rc = 1;
    prod_t p = { 0 };
    rd_kafka_t *consumer = NULL;
    rd_kafka_conf_t *pc = seg_kafka_producer_conf(cfg, bootstrap, err, sizeof err);
    if (!pc) goto conf_fail;
    rd_kafka_conf_set_opaque(pc, &p);
    rd_kafka_conf_set_dr_msg_cb(pc, on_dr);
    p.rk = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
    if (!p.rk) {
        rd_kafka_conf_destroy(pc);
        goto conf_fail;
    }
    p.rkt = rd_kafka_topic_new(p.rk, topic, NULL);
    rd_kafka_conf_t *cc = seg_kafka_restore_conf(cfg, bootstrap, err, sizeof err);
    if (!cc) goto conf_fail;
    consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
    if (!consumer) {
        rd_kafka_conf_destroy(cc);
        goto conf_fail;
    }
    double append_s = 0, restore_s = 0, restore_max = 0;
    uint64_t records = 0;
    for (int part = 0; part < parts; part++) {
        uint64_t emitted = 0, events = 0;
        double build_s;
        char prefix[16];
        snprintf(prefix, sizeof prefix, "p%d-", part);
        /* Change tracking on from the start: every customer is "changed
         * since the last checkpoint", the largest append there can be. */
        seg_engine_t *e = build(cfg, prefix, k, true, &emitted, &build_s, &events);
        if (!e) goto out;
        double t = mono();
        long n = seg_changelog_append(e, part, 777, produce, &p, err, sizeof err);
        if (n < 0 || rd_kafka_flush(p.rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR || p.failed) {
            fprintf(stderr, "seg_bench_snapshot: append: %s\n", n < 0 ? err : "flush failed");
            seg_engine_destroy(e);
            goto out;
        }
        append_s += mono() - t;
        seg_engine_stats_t st;
        seg_engine_stats(e, &st);
        seg_engine_destroy(e);

        uint64_t em2 = 0;
        seg_engine_t *e2 = seg_engine_new(&cfg->seg, count_emit, &em2, err, sizeof err);
        seg_changelog_restore_t r;
        if (!e2 || seg_changelog_restore(consumer, topic, part, e2, 120000, NULL, NULL, &r,
                                         err, sizeof err) != 0) {
            fprintf(stderr, "seg_bench_snapshot: restore: %s\n", e2 ? err : "engine");
            seg_engine_destroy(e2);
            goto out;
        }
        seg_engine_stats_t st2;
        seg_engine_stats(e2, &st2);
        seg_engine_destroy(e2);
        /* Everything must come back, or the mock dropped data (it keeps
         * ~5 MB per partition) and the rate means nothing. */
        if (r.records != (uint64_t)n || r.resume_offset != 777 || st2.customers != st.customers ||
            st2.pending_timers != st.pending_timers) {
            fprintf(stderr, "seg_bench_snapshot: partition %d: read %llu of %ld records, resume "
                    "%lld, %u of %u customers\n", part, (unsigned long long)r.records, n,
                    (long long)r.resume_offset, st2.customers, st.customers);
            goto out;
        }
        records += r.records;
        restore_s += r.seconds;
        if (r.seconds > restore_max) restore_max = r.seconds;
        fprintf(stderr, "  partition %d: %ld records appended+delivered, restored in %.3f s "
                "(%.0f records/s)\n", part, n, r.seconds, r.records / r.seconds);
    }
    printf("{\"mode\": \"changelog\", \"partitions\": %d, \"customers_per_partition\": %llu, "
           "\"records\": %llu, \"append_seconds\": %.3f, \"append_records_per_second\": %.0f, "
           "\"restore_seconds\": %.3f, \"restore_records_per_second\": %.0f, "
           "\"restore_max_partition_seconds\": %.3f}\n",
           parts, (unsigned long long)k, (unsigned long long)records, append_s,
           records / append_s, restore_s, records / restore_s, restore_max);
    rc = 0;
    goto out;
conf_fail:
    fprintf(stderr, "seg_bench_snapshot: %s\n", err);
out:
    if (consumer) {
        rd_kafka_consumer_close(consumer);
        rd_kafka_destroy(consumer);
    }
    if (p.rkt) rd_kafka_topic_destroy(p.rkt);
    if (p.rk) rd_kafka_destroy(p.rk);
    return rc;
}

/* ---- make-state ------------------------------------------------------------------- */

static int make_state(const seg_cfg_t *cfg, uint64_t n, const char *dir, const char *topic,
                      int partition)
{
    uint64_t emitted = 0, events = 0;
    double build_s;
    char err[512];
    seg_engine_t *e = build(cfg, "c", n, false, &emitted, &build_s, &events);
    if (!e) return 1;
    seg_snapshot_info_t wi;
    int rc = seg_snapshot_write(dir, topic, partition, e, 0, &wi, err, sizeof err);
    seg_engine_destroy(e);
    if (rc != 0) {
        fprintf(stderr, "seg_bench_snapshot: %s\n", err);
        return 1;
    }
    printf("{\"mode\": \"make-state\", \"customers\": %llu, \"snapshot_bytes\": %llu, "
           "\"build_seconds\": %.3f}\n", (unsigned long long)n, (unsigned long long)wi.bytes,
           build_s);
    return 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: seg_bench_snapshot snapshot --customers N [--repeat R] [--dir D]\n"
            "       seg_bench_snapshot changelog --bootstrap B --topic T --partitions P "
            "--customers K\n"
            "       seg_bench_snapshot make-state --customers N --dir D --topic T "
            "[--partition P]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage();
    const char *mode = argv[1], *dir = "/tmp", *bootstrap = NULL, *topic = NULL;
    uint64_t customers = 0;
    int repeat = 3, parts = 1, partition = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage();
        if (!strcmp(a, "--customers")) customers = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--repeat")) repeat = atoi(v);
        else if (!strcmp(a, "--dir")) dir = v;
        else if (!strcmp(a, "--bootstrap")) bootstrap = v;
        else if (!strcmp(a, "--topic")) topic = v;
        else if (!strcmp(a, "--partitions")) parts = atoi(v);
        else if (!strcmp(a, "--partition")) partition = atoi(v);
        else return usage();
        i++;
    }
    if (customers == 0 || repeat < 1 || repeat > MAX_REPEAT) return usage();
    seg_cfg_t *cfg = malloc(sizeof *cfg);   /* large: keep it off the stack */
    if (!cfg) return 1;
    seg_cfg_defaults(cfg);
    int rc;
    if (!strcmp(mode, "snapshot")) {
        rc = bench_snapshot(cfg, customers, repeat, dir);
    } else if (!strcmp(mode, "changelog")) {
        rc = bootstrap && topic && parts > 0 ? bench_changelog(cfg, bootstrap, topic, parts,
                                                                customers) : usage();
    } else if (!strcmp(mode, "make-state")) {
        rc = topic ? make_state(cfg, customers, dir, topic, partition) : usage();
    } else {
        rc = usage();
    }
    free(cfg);
    return rc;
}
