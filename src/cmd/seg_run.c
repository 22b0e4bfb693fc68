/*
 * seg_run: the daemon loop, in the shape of librdkafka's examples/consumer.c.
 *
 *   poll a batch of records -> decode -> fold (the customer's own deadlines
 *   first) -> produce transitions -> serve delivery reports -> advance the
 *   watermark (everyone else's deadlines) -> store completed offsets
 *
 * Everything runs on the main thread: the rebalance, delivery-report and
 * error callbacks are served from inside rd_kafka_consumer_poll() and
 * rd_kafka_poll(), so engines are never touched concurrently. The only
 * other thread is libmicrohttpd's, which reads atomic metrics.
 *
 * Delivery bookkeeping: each input record gets a token in its partition's
 * seg_inflight; every message produced for it (transitions, routed copies,
 * the DLQ copy) holds the token, and its delivery report releases it. A
 * failed delivery with a retriable error is produced again from the main
 * loop (librdkafka has already retried it until message.timeout.ms); a
 * non-retriable or fatal one stops the daemon loudly without storing the
 * offset, so the record is processed again after a restart.
 */
#include "cmd/seg_run.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "event/seg_decode.h"
#include "io/seg_http.h"
#include "io/seg_kafka.h"
#include "persist/seg_changelog.h"
#include "persist/seg_snapshot.h"
#include "publish/seg_inflight.h"
#include "publish/seg_route.h"
#include "publish/seg_tjson.h"
#include "segment/seg_engine.h"
#include "time/seg_watermark.h"
#include "util/seg_clock.h"
#include "util/seg_log.h"
#include "util/seg_metrics.h"

#define MAX_SLOTS     1024
#define NO_SLOT       0xffffu        /* opaque slot of time-fired messages */
#define BATCH_MAX     10000          /* records per loop turn */
#define READY_LAG     1000           /* "caught up": at most this many behind */
#define DLQ_TRUNCATED_BYTES 65536    /* head kept of a DLQ copy too large to send */

static volatile sig_atomic_t g_stop, g_reopen;

static void on_signal(int sig)
{
    if (sig == SIGHUP) g_reopen = 1;
    else g_stop = 1;
}

typedef struct slot {
    bool             used;
    char             topic[256];
    int32_t          partition;
    seg_engine_t    *engine;
    seg_inflight_t  *inflight;
    int64_t          next_offset;     /* one past the last record consumed */
    int64_t          resume_offset;   /* where the restored state resumes, -1: none */
    int64_t          ckpt_offset;     /* offset of the last checkpoint, -1: none */
    uint64_t         gen;             /* tells a reused slot from its predecessor */
    seg_gauge_t     *lag;
} slot_t;

typedef struct retry {               /* a delivery to produce again */
    struct retry      *next;
    rd_kafka_topic_t  *rkt;
    void              *key, *val;
    size_t             klen, vlen;
    rd_kafka_headers_t *hdrs;
    void              *opaque;
} retry_t;

/* One partition's result from a background snapshot writer, in memory
 * shared with the forked child. */
typedef struct bg_result {
    int                 done;         /* 1 written, -1 failed, 0 not reached */
    unsigned            slot;
    uint64_t            gen;
    int64_t             offset;
    seg_snapshot_info_t info;
    char                err[256];
} bg_result_t;

typedef struct bgsave {
    pid_t        pid;                 /* 0: no writer running */
    int64_t      started_ms, pause_ms;
    long         changelog_records;
    unsigned     n;
    bg_result_t *res;                 /* MAP_SHARED, MAX_SLOTS entries */
} bgsave_t;

typedef struct daemon {
    const seg_cfg_t      *cfg;
    seg_kafka_embedded_t *embedded;
    rd_kafka_t           *consumer, *producer, *restorer;
    rd_kafka_topic_t     *out_rkt, *dlq_rkt, *changelog_rkt, **route_rkt;
    char                  state_dir[512];
    char                  changelog[300];
    int64_t               last_checkpoint_ms;
    bool                  restored_from_snapshot; /* set by restore() for slot_add */
    seg_routes_t         *routes;
    seg_decoder_t        *dec;
    seg_watermark_t      *wm;
    slot_t                slots[MAX_SLOTS];
    unsigned              last_slot;
    /* The record being processed: what emitted messages are charged to. */
    unsigned              cur_slot;
    uint64_t              cur_token;
    retry_t              *retries, **retries_tail;
    uint64_t              failed_deliveries;
    int64_t               last_fail_log_ms;
    int                   fatal;
    char                  fatal_msg[512];
    /* metrics */
    seg_metrics_t        *metrics;
    seg_http_t           *http;
    seg_counter_t        *ev_by_type[4];
    seg_counter_t        *rej_by_reason[SEG_REJ__COUNT];
    seg_counter_t        *tr_by_value[SEG_DIM__COUNT][128];
    seg_counter_t        *produce_errors, *commit_errors, *dlq_total, *delivered;
    seg_gauge_t          *customers, *watermark, *assigned, *inflight_g;
    seg_gauge_t          *ckpt_pause_ms, *ckpt_pause_max_ms, *restoring;
    seg_counter_t        *checkpoints, *ckpt_errors, *restore_records, *snapshot_loads;
    seg_counter_t        *redelivered;
    int64_t               last_tick_ms;
    uint64_t              next_gen;
    bgsave_t              bg;
} daemon_t;

static int64_t now_ms(void) { return seg_clock_ms(CLOCK_REALTIME); }
static int64_t mono_ms(void) { return seg_clock_ms(CLOCK_MONOTONIC); }

static void set_fatal(daemon_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_fatal(daemon_t *d, const char *fmt, ...)
{
    if (d->fatal) return;
    d->fatal = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->fatal_msg, sizeof d->fatal_msg, fmt, ap);
    va_end(ap);
    seg_log(SEG_LOG_ERROR, "kafka", "%s", d->fatal_msg);
}

/* ---- metrics ------------------------------------------------------------ */

static seg_counter_t *counter1(daemon_t *d, const char *name, const char *help,
                               const char *lname, const char *lval)
{
    char err[256];
    seg_label_t l = { lname, lval };
    seg_counter_t *c = seg_metrics_counter(d->metrics, name, help, lname ? &l : NULL,
                                           lname ? 1 : 0, err, sizeof err);
    if (!c) seg_log(SEG_LOG_WARN, "metrics", "%s", err);
    return c;
}

static seg_gauge_t *gauge0(daemon_t *d, const char *name, const char *help)
{
    char err[256];
    seg_gauge_t *g = seg_metrics_gauge(d->metrics, name, help, NULL, 0, err, sizeof err);
    if (!g) seg_log(SEG_LOG_WARN, "metrics", "%s", err);
    return g;
}

static void count(seg_counter_t *c, uint64_t n)
{
    if (c) seg_counter_add(c, n);
}

static void collect_rss(seg_metrics_t *m, void *opaque)
{
    (void)m;
    seg_gauge_t *rss = opaque;
    if (rss) seg_gauge_set(rss, seg_metrics_process_rss());
}

static int metrics_init(daemon_t *d)
{
    d->metrics = seg_metrics_new();
    if (!d->metrics) return -1;
    static const char *const types[] = { NULL, "purchase", "refund", "contact" };
    for (int t = 1; t <= 3; t++)
        d->ev_by_type[t] = counter1(d, "segd_events_total", "Events folded, by type.",
                                    "type", types[t]);
    d->produce_errors = counter1(d, "segd_produce_errors_total",
                                 "Failed deliveries (each retried or fatal).", NULL, NULL);
    d->commit_errors = counter1(d, "segd_commit_errors_total",
                                "Failed offset commits.", NULL, NULL);
    d->dlq_total = counter1(d, "segd_dlq_total", "Records delivered to the DLQ topic.", NULL, NULL);
    d->delivered = counter1(d, "segd_messages_delivered_total",
                            "Messages (transitions, routed copies, DLQ) acknowledged by Kafka.",
                            NULL, NULL);
    d->customers = gauge0(d, "segd_customers", "Customers held in memory.");
    d->watermark = gauge0(d, "segd_watermark_seconds",
                          "Event-time watermark (Unix seconds) deadlines have fired up to.");
    d->assigned = gauge0(d, "segd_assigned_partitions", "Input partitions assigned.");
    d->inflight_g = gauge0(d, "segd_inflight_records",
                           "Input records waiting for their deliveries.");
    d->ckpt_pause_ms = gauge0(d, "segd_checkpoint_pause_milliseconds",
                              "Consumption pause of the last checkpoint.");
    d->ckpt_pause_max_ms = gauge0(d, "segd_checkpoint_pause_max_milliseconds",
                                  "Longest consumption pause caused by a checkpoint.");
    d->restoring = gauge0(d, "segd_restore_in_progress",
                          "1 while a partition's state is being restored.");
    d->checkpoints = counter1(d, "segd_checkpoints_total", "Checkpoints completed.", NULL, NULL);
    d->ckpt_errors = counter1(d, "segd_checkpoint_errors_total", "Checkpoints that failed.",
                              NULL, NULL);
    d->restore_records = counter1(d, "segd_restore_records_total",
                                  "Changelog records read while restoring.", NULL, NULL);
    d->redelivered = counter1(d, "segd_redelivered_records_total",
                              "Records the consumer delivered again at an offset this "
                              "partition's state already holds (skipped).", NULL, NULL);
    d->snapshot_loads = counter1(d, "segd_snapshot_loads_total",
                                 "Partitions restored from a local snapshot.", NULL, NULL);
    seg_gauge_t *rss = gauge0(d, "segd_process_rss_bytes", "Resident set size of segd.");
    seg_metrics_set_collect(d->metrics, collect_rss, rss);
    return 0;
}

static seg_counter_t *rej_counter(daemon_t *d, seg_reject_t r)
{
    if (!d->rej_by_reason[r])
        d->rej_by_reason[r] = counter1(d, "segd_events_rejected_total",
                                       "Records rejected, by reason (see docs/events.md).",
                                       "reason", seg_reject_name(r));
    return d->rej_by_reason[r];
}

static seg_counter_t *tr_counter(daemon_t *d, const seg_transition_t *t)
{
    seg_counter_t **c = &d->tr_by_value[t->dim][t->to_code & 127];
    if (!*c) {
        char err[256];
        seg_label_t l[2] = { { "dimension", seg_dim_name(t->dim) }, { "to", t->to } };
        *c = seg_metrics_counter(d->metrics, "segd_transitions_total",
                                 "Transitions published, by dimension and new value.",
                                 l, 2, err, sizeof err);
    }
    return *c;
}

/* ---- producing ---------------------------------------------------------- */

/* Produces one message; on a full queue serves delivery reports and
 * retries, as librdkafka's examples do. Takes ownership of hdrs on
 * success only. Returns 0 or the librdkafka error. */
static rd_kafka_resp_err_t produce_try(daemon_t *d, rd_kafka_topic_t *rkt, const void *key,
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
static int produce(daemon_t *d, rd_kafka_topic_t *rkt, const void *key, size_t klen,
                   const void *val, size_t vlen, rd_kafka_headers_t *hdrs, void *opaque)
{
    rd_kafka_resp_err_t err = produce_try(d, rkt, key, klen, val, vlen, hdrs, opaque);
    if (!err) return 0;
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    set_fatal(d, "cannot produce to '%s': %s", rd_kafka_topic_name(rkt), rd_kafka_err2str(err));
    return -1;
}

/* Charges one more outstanding message to the current record. */
static void *charge(daemon_t *d)
{
    if (d->cur_slot == NO_SLOT) return seg_inflight_pack(NO_SLOT, 0);
    seg_inflight_hold(d->slots[d->cur_slot].inflight, d->cur_token);
    return seg_inflight_pack(d->cur_slot, d->cur_token);
}

/* Releases a charge: on a successful delivery only (or when a send attempt
 * that never left is replaced by another). */
static void uncharge(daemon_t *d, void *opaque)
{
    unsigned s = seg_inflight_slot(opaque);
    if (s != NO_SLOT && s < MAX_SLOTS && d->slots[s].used)
        seg_inflight_release(d->slots[s].inflight, seg_inflight_token(opaque));
}

static int emit(void *opaque, const seg_transition_t *t)
{
    daemon_t *d = opaque;
    char buf[SEG_TJSON_MAX];
    size_t n = seg_tjson_encode(t, d->cfg->output.features, buf);
    count(tr_counter(d, t), 1);
    if (produce(d, d->out_rkt, t->customer_id, t->customer_id_len, buf, n, NULL, charge(d)))
        return -1;
    for (size_t i = 0; i < seg_routes_count(d->routes); i++) {
        if (!seg_routes_match(d->routes, i, t)) continue;
        if (produce(d, d->route_rkt[i], t->customer_id, t->customer_id_len, buf, n, NULL,
                    charge(d)))
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
static int keep_retry(daemon_t *d, const rd_kafka_message_t *m, size_t vmax)
{
    size_t vlen = m->len < vmax ? m->len : vmax;
    retry_t *r = calloc(1, sizeof *r);
    if (r) {
        r->key = m->key_len ? malloc(m->key_len) : NULL;
        r->val = vlen ? malloc(vlen) : NULL;
    }
    if (!r || (m->key_len && !r->key) || (vlen && !r->val)) {
        if (r) { free(r->key); free(r->val); free(r); }
        set_fatal(d, "out of memory keeping a failed delivery to '%s'",
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
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    daemon_t *d = opaque;
    if (!m->err) {
        count(d->delivered, 1);
        uncharge(d, m->_private);
        return;
    }
    count(d->produce_errors, 1);
    if (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && m->rkt == d->dlq_rkt &&
        m->len > DLQ_TRUNCATED_BYTES) {
        /* The DLQ topic refuses a copy this large: keep its head, so the
         * record is still accounted for instead of stopping segd on it
         * at every start. */
        seg_log(SEG_LOG_WARN, "kafka", "'%s' refuses a %zu-byte DLQ copy (%s); sending its "
                "first %d bytes with header segd.truncated", rd_kafka_topic_name(m->rkt),
                m->len, rd_kafka_err2str(m->err), DLQ_TRUNCATED_BYTES);
        keep_retry(d, m, DLQ_TRUNCATED_BYTES);
        return;
    }
    if (!retriable(m->err) || rd_kafka_fatal_error(d->producer, NULL, 0)) {
        set_fatal(d, "delivery to '%s' failed: %s", rd_kafka_topic_name(m->rkt),
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
    keep_retry(d, m, SIZE_MAX);
}

static void produce_retries(daemon_t *d)
{
    retry_t *r = d->retries;
    d->retries = NULL;
    d->retries_tail = &d->retries;
    while (r) {
        retry_t *next = r->next;
        /* On failure produce() stops the daemon; the charge stays. */
        if (!d->fatal)
            produce(d, r->rkt, r->key, r->klen, r->val, r->vlen, r->hdrs, r->opaque);
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
static int drain(daemon_t *d, int64_t deadline_ms)
{
    for (;;) {
        produce_retries(d);
        rd_kafka_poll(d->producer, 0);
        if (d->fatal) return -1;
        if (rd_kafka_outq_len(d->producer) == 0 && !d->retries) return 0;
        int64_t left = deadline_ms - mono_ms();
        if (left <= 0) return -1;
        rd_kafka_flush(d->producer, (int)(left < 100 ? left : 100));
    }
}

/* ---- partitions ------------------------------------------------------------- */

static int find_slot(daemon_t *d, const char *topic, int32_t partition)
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

static void restore_progress(void *opaque, const seg_changelog_restore_t *r)
{
    daemon_t *d = opaque;
    seg_log(SEG_LOG_INFO, "restore", "changelog: %llu records read, %llu applied (%.1f s)",
            (unsigned long long)r->records, (unsigned long long)r->applied, r->seconds);
    sd_notifyf(0, "WATCHDOG=1\nSTATUS=restoring: %llu changelog records",
               (unsigned long long)r->records);
    (void)d;
}

/* Builds a partition's engine from the newest valid state: the local
 * snapshot if it is at least as recent as the changelog's last complete
 * checkpoint, else the changelog. Sets *resume to the input offset to
 * start at (RD_KAFKA_OFFSET_BEGINNING when no state exists anywhere: the
 * state of a partition is a function of all its input, so it must then be
 * rebuilt from the start). Returns the engine or NULL. */
static seg_engine_t *restore(daemon_t *d, const char *topic, int32_t partition, int64_t *resume)
{
    const seg_cfg_t *cfg = d->cfg;
    char err[512], path[1024];
    *resume = RD_KAFKA_OFFSET_BEGINNING;
    if (d->http) seg_http_set_ready(d->http, false, "restoring state");
    if (d->restoring) seg_gauge_set(d->restoring, 1);

    int timeout = (int)(cfg->shutdown_timeout * 1000 * 10);
    seg_changelog_restore_t cr;
    memset(&cr, 0, sizeof cr);
    cr.resume_offset = -1;
    int crc = 0;
    int src = 0;   /* 0 none, 1 snapshot, 2 changelog */

    /* The local snapshot first, if it loads. The changelog is the shared
     * truth and says whether the snapshot is stale (another instance may
     * have moved the partition on): its last marker, read from its tail,
     * decides. A current snapshot then needs no full changelog read. */
    seg_engine_t *fromsnap = seg_engine_new(&cfg->seg, emit, d, err, sizeof err);
    if (!fromsnap) return NULL;
    seg_snapshot_info_t si;
    memset(&si, 0, sizeof si);
    seg_snapshot_path(d->state_dir, topic, partition, path, sizeof path);
    bool snap_ok = false;
    struct stat sst;
    if (stat(path, &sst) == 0) {
        /* Loading takes ~0.5 s per million customers: say so first. */
        seg_log(SEG_LOG_INFO, "restore", "%s[%d]: loading snapshot '%s' (%.1f MB)", topic,
                partition, path, sst.st_size / 1e6);
        sd_notifyf(0, "WATCHDOG=1\nSTATUS=restoring: loading %s", path);
        if (seg_snapshot_load(path, topic, partition, fromsnap, &si, err, sizeof err) != 0)
            seg_log(SEG_LOG_ERROR, "restore", "%s; skipping it", err);
        else
            snap_ok = true;
    }
    seg_engine_t *fromlog = NULL;
    if (snap_ok) {
        int64_t moff, mts;
        double t0 = mono_ms() / 1000.0;
        if (seg_changelog_last_marker(d->restorer, d->changelog, partition, timeout, &moff, &mts,
                                      err, sizeof err) != 0) {
            seg_log(SEG_LOG_WARN, "restore", "%s[%d]: %s; reading the whole changelog", topic,
                    partition, err);
        } else if (moff <= si.next_offset) {
            src = 1;
            seg_log(SEG_LOG_INFO, "restore", "%s[%d]: the changelog's last checkpoint (offset "
                    "%lld) is not newer than the local snapshot (checked in %.3f s)", topic,
                    partition, (long long)moff, mono_ms() / 1000.0 - t0);
        }
    }
    if (src != 1) {
        fromlog = seg_engine_new(&cfg->seg, emit, d, err, sizeof err);
        if (!fromlog) {
            seg_engine_destroy(fromsnap);
            return NULL;
        }
        crc = seg_changelog_restore(d->restorer, d->changelog, partition, fromlog, timeout,
                                    restore_progress, d, &cr, err, sizeof err);
        count(d->restore_records, cr.records);
        if (crc != 0) {
            seg_log(SEG_LOG_ERROR, "restore", "%s[%d]: %s", topic, partition, err);
            cr.resume_offset = -1;
        }
        if (snap_ok) {
            if (crc == 0 && cr.resume_offset > si.next_offset)
                seg_log(SEG_LOG_WARN, "restore", "%s[%d]: local snapshot (offset %lld) is "
                        "older than the changelog (offset %lld); using the changelog", topic,
                        partition, (long long)si.next_offset, (long long)cr.resume_offset);
            else
                src = 1;
        }
    }
    if (src != 1 && crc == 0 && cr.resume_offset >= 0) src = 2;
    if (src == 1 && crc != 0)
        seg_log(SEG_LOG_WARN, "restore", "%s[%d]: the changelog could not be read; using the "
                "local snapshot (offset %lld): the input from there on is processed again",
                topic, partition, (long long)si.next_offset);
    if (src == 0 && crc != 0) {
        /* No state we can trust, and the changelog may hold some: starting
         * from the beginning of the input would silently rebuild partial
         * state once retention has dropped its head. Refuse. */
        seg_log(SEG_LOG_ERROR, "restore", "%s[%d]: no local snapshot and the changelog "
                "cannot be read; not guessing the state", topic, partition);
        seg_engine_destroy(fromsnap);
        seg_engine_destroy(fromlog);
        if (d->restoring) seg_gauge_set(d->restoring, 0);
        return NULL;
    }

    seg_engine_t *e;
    if (src == 1) {
        seg_engine_destroy(fromlog);
        e = fromsnap;
        *resume = si.next_offset;
        d->restored_from_snapshot = true;
        count(d->snapshot_loads, 1);
        seg_log(SEG_LOG_INFO, "restore", "%s[%d]: loaded snapshot: %llu customers, %.1f MB in "
                "%.3f s, resuming at offset %lld", topic, partition,
                (unsigned long long)si.customers, si.bytes / 1e6, si.seconds,
                (long long)si.next_offset);
    } else {
        seg_engine_destroy(fromsnap);
        if (src == 2) {
            e = fromlog;
            *resume = cr.resume_offset;
            seg_engine_stats_t st;
            seg_engine_stats(e, &st);
            seg_log(SEG_LOG_INFO, "restore", "%s[%d]: rebuilt from changelog '%s': %llu records, "
                    "%u customers in %.3f s (%.0f records/s), resuming at offset %lld", topic,
                    partition, d->changelog, (unsigned long long)cr.records, st.customers,
                    cr.seconds, cr.seconds > 0 ? cr.records / cr.seconds : 0.0,
                    (long long)cr.resume_offset);
        } else {
            seg_engine_destroy(fromlog);
            e = seg_engine_new(&cfg->seg, emit, d, err, sizeof err);
            seg_log(SEG_LOG_INFO, "restore", "%s[%d]: no saved state; starting from the "
                    "beginning of the partition", topic, partition);
        }
    }
    if (d->restoring) seg_gauge_set(d->restoring, 0);
    if (e) {
        seg_engine_track_changes(e, true);
        seg_engine_set_evict_after(e, cfg->state.evict_after);
    }
    return e;
}

static int slot_add(daemon_t *d, const char *topic, int32_t partition, int64_t *resume)
{
    *resume = RD_KAFKA_OFFSET_INVALID;
    if (find_slot(d, topic, partition) >= 0) return 0;
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
        s->engine = restore(d, topic, partition, resume);
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
        return 0;
    }
    return -1;
}

static void slot_remove(daemon_t *d, unsigned i)
{
    slot_t *s = &d->slots[i];
    if (!s->used) return;
    seg_engine_stats_t st;
    seg_engine_stats(s->engine, &st);
    seg_log(SEG_LOG_INFO, "kafka", "dropping %s[%d]: %u customers leave memory",
            s->topic, s->partition, st.customers);
    if (s->lag) seg_gauge_remove(d->metrics, s->lag);
    seg_watermark_remove(d->wm, i);
    seg_engine_destroy(s->engine);
    seg_inflight_destroy(s->inflight);
    memset(s, 0, sizeof *s);
}

/* Stores every slot's completed offsets (all slots, or only those in
 * `only`). */
static void store_offsets(daemon_t *d, const rd_kafka_topic_partition_list_t *only)
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

static void commit_sync(daemon_t *d, const char *why)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(d->consumer, NULL, 0);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        count(d->commit_errors, 1);
        seg_log(SEG_LOG_WARN, "kafka", "commit (%s) failed: %s; the records will be "
                "processed again after a restart", why, rd_kafka_err2str(err));
    }
}

/* Changelog records go to the input partition's number. */
static int produce_changelog(void *opaque, int32_t partition, const void *key, size_t klen,
                             const void *value, size_t vlen)
{
    daemon_t *d = opaque;
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            d->producer, RD_KAFKA_V_RKT(d->changelog_rkt), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)value, vlen),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(seg_inflight_pack(NO_SLOT, 0)), RD_KAFKA_V_END);
        if (!err) return 0;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !d->fatal) {
            rd_kafka_poll(d->producer, 10);
            continue;
        }
        set_fatal(d, "cannot produce to changelog '%s': %s", d->changelog, rd_kafka_err2str(err));
        return -1;
    }
}

/* The input offset a slot's state covers. */
static int64_t slot_offset(const slot_t *s)
{
    return s->next_offset >= 0 ? s->next_offset : s->resume_offset;
}

static void checkpoint_logged(daemon_t *d, const char *why, int parts, uint64_t customers,
                              uint64_t bytes, long records, int64_t pause, const char *how)
{
    count(d->checkpoints, 1);
    if (d->ckpt_pause_ms) seg_gauge_set(d->ckpt_pause_ms, pause);
    if (d->ckpt_pause_max_ms && pause > seg_gauge_get(d->ckpt_pause_max_ms))
        seg_gauge_set(d->ckpt_pause_max_ms, pause);
    seg_log(parts ? SEG_LOG_INFO : SEG_LOG_DEBUG, "checkpoint",
            "%s: %d partition(s), %llu customers, %.1f MB snapshot, %ld changelog records, "
            "paused %lld ms%s", why, parts, (unsigned long long)customers, bytes / 1e6, records,
            (long long)pause, how);
}

/* Collects a background snapshot writer: waits for it when `block`, else
 * only if it has finished. Marks the partitions it wrote as checkpointed
 * (unless they were revoked, or revoked and assigned again, meanwhile). */
static void bg_reap(daemon_t *d, bool block)
{
    bgsave_t *bg = &d->bg;
    if (!bg->pid) return;
    int st = 0;
    pid_t r;
    do {
        r = waitpid(bg->pid, &st, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return;             /* still writing */
    bg->pid = 0;
    if (r < 0) {
        seg_log(SEG_LOG_ERROR, "checkpoint", "lost the snapshot writer: %s", strerror(errno));
        count(d->ckpt_errors, 1);
        return;
    }
    if (WIFSIGNALED(st)) {
        seg_log(SEG_LOG_ERROR, "checkpoint", "the snapshot writer was killed by signal %d; "
                "the changelog still holds this checkpoint", WTERMSIG(st));
        count(d->ckpt_errors, 1);
        /* The test hook stands for the whole process crashing there. */
        const char *fault = getenv("SEGD_FAULT");
        if (fault && strcmp(fault, "snapshot-before-rename") == 0) raise(SIGKILL);
        return;
    }
    uint64_t customers = 0, bytes = 0;
    int parts = 0;
    for (unsigned k = 0; k < bg->n; k++) {
        bg_result_t *res = &bg->res[k];
        if (res->done != 1) {
            seg_log(SEG_LOG_ERROR, "checkpoint", "%s (the changelog still holds this state)",
                    res->done ? res->err : "snapshot writer stopped before this partition");
            count(d->ckpt_errors, 1);
            continue;
        }
        slot_t *s = &d->slots[res->slot];
        if (s->used && s->gen == res->gen) s->ckpt_offset = res->offset;
        customers += res->info.customers;
        bytes += res->info.bytes;
        parts++;
    }
    char how[96];
    snprintf(how, sizeof how, " (snapshot written in the background in %.2f s)",
             (mono_ms() - bg->started_ms) / 1000.0);
    checkpoint_logged(d, "interval", parts, customers, bytes, bg->changelog_records,
                      bg->pause_ms, how);
}

/* Forks a child that writes the snapshots of the slots in todo from its
 * copy-on-write image of the state and exits; results come back through
 * d->bg.res. Returns 0 when the child runs, -1 to write in the foreground
 * instead. The child touches no librdkafka handle and does not log (a
 * lock held by another thread at fork time would never be released in
 * it); it dies with the parent. */
static int bg_start(daemon_t *d, const bool *todo, long records, int64_t t0)
{
    bgsave_t *bg = &d->bg;
    if (!bg->res) {
        void *m = mmap(NULL, MAX_SLOTS * sizeof *bg->res, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return -1;
        bg->res = m;
    }
    unsigned n = 0;
    for (unsigned i = 0; i < MAX_SLOTS; i++) {
        if (!todo[i]) continue;
        bg->res[n] = (bg_result_t){ .slot = i, .gen = d->slots[i].gen,
                                    .offset = slot_offset(&d->slots[i]) };
        n++;
    }
    bg->n = n;
    pid_t parent = getpid();
    fflush(NULL);   /* nothing buffered twice */
    pid_t pid = fork();
    if (pid < 0) {
        seg_log(SEG_LOG_WARN, "checkpoint", "cannot fork the snapshot writer (%s); writing "
                "in the foreground", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(2);
        /* Signals are for the parent, which waits for this write on its
         * way out (systemd sends SIGTERM to the whole unit). */
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        int rc = 0;
        for (unsigned k = 0; k < n; k++) {
            bg_result_t *res = &bg->res[k];
            slot_t *s = &d->slots[res->slot];
            if (seg_snapshot_write(d->state_dir, s->topic, s->partition, s->engine,
                                   res->offset, &res->info, res->err, sizeof res->err) == 0) {
                res->done = 1;
            } else {
                res->done = -1;
                rc = 1;
            }
        }
        _exit(rc);
    }
    bg->pid = pid;
    bg->started_ms = t0;
    bg->pause_ms = mono_ms() - t0;
    bg->changelog_records = records;
    return 0;
}

/* Checkpoints slots (all, or those in `only`): every transition so far is
 * delivered first, then changed customers and a marker go to the
 * changelog and are delivered, then the local snapshot is written (by a
 * forked child for interval checkpoints, see checkpoint.background). Only
 * then does the checkpoint stand for "state as of offset N". */
static void checkpoint(daemon_t *d, const rd_kafka_topic_partition_list_t *only,
                       const char *why)
{
    /* One writer at a time: two would share a snapshot's temp file. */
    bg_reap(d, true);
    int64_t t0 = mono_ms(), deadline = t0 + d->cfg->shutdown_timeout * 1000;
    char err[512];
    if (drain(d, deadline) != 0) goto fail_drain;
    long records = 0;
    bool todo[MAX_SLOTS];
    int ntodo = 0;
    for (unsigned i = 0; i < MAX_SLOTS; i++) {
        slot_t *s = &d->slots[i];
        /* Nothing new since the last checkpoint: no changelog marker, no
         * rewrite of a possibly large snapshot. */
        todo[i] = s->used && slot_offset(s) >= 0 &&
                  (!only || rd_kafka_topic_partition_list_find(only, s->topic, s->partition)) &&
                  (seg_engine_pending_changes(s->engine) > 0 || slot_offset(s) != s->ckpt_offset);
        if (!todo[i]) continue;
        ntodo++;
        long n = seg_changelog_append(s->engine, s->partition, slot_offset(s), produce_changelog,
                                      d, err, sizeof err);
        if (n < 0) {
            seg_log(SEG_LOG_ERROR, "checkpoint", "%s", err);
            count(d->ckpt_errors, 1);
            return;
        }
        records += n;
    }
    if (drain(d, deadline) != 0) goto fail_drain;
    if (ntodo > 0 && !only && strcmp(why, "interval") == 0 && d->cfg->checkpoint.background &&
        bg_start(d, todo, records, t0) == 0)
        return;   /* logged by bg_reap when the child is done */
    uint64_t customers = 0, bytes = 0;
    int parts = 0;
    for (unsigned i = 0; i < MAX_SLOTS; i++) {
        slot_t *s = &d->slots[i];
        if (!todo[i]) continue;
        seg_snapshot_info_t si;
        if (seg_snapshot_write(d->state_dir, s->topic, s->partition, s->engine, slot_offset(s),
                               &si, err, sizeof err) != 0) {
            seg_log(SEG_LOG_ERROR, "checkpoint", "%s (the changelog still holds this state)", err);
            count(d->ckpt_errors, 1);
            continue;
        }
        s->ckpt_offset = slot_offset(s);
        customers += si.customers;
        bytes += si.bytes;
        parts++;
    }
    checkpoint_logged(d, why, parts, customers, bytes, records, mono_ms() - t0, "");
    return;
fail_drain:
    count(d->ckpt_errors, 1);
    seg_log(SEG_LOG_ERROR, "checkpoint", "%s: deliveries still outstanding; checkpoint skipped",
            why);
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
        set_fatal(d, "changelog topic '%s' does not exist; create it co-partitioned with "
                  "the input (same partition count, cleanup.policy=compact)", d->changelog);
        return -1;
    }
    if (cl < 0) {
        set_fatal(d, "cannot read the metadata of changelog topic '%s': %s", d->changelog, why);
        return -1;
    }
    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].partition < cl) continue;
        int in = partition_count(d->restorer, parts->elems[i].topic, timeout, why, sizeof why);
        set_fatal(d, "changelog topic '%s' has %d partition(s) but input topic '%s' has %d: "
                  "they must be co-partitioned (same count)", d->changelog, cl,
                  parts->elems[i].topic, in);
        return -1;
    }
    return 0;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    daemon_t *d = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (check_changelog(d, parts) != 0) return;   /* fatal: segd stops */
        for (int i = 0; i < parts->cnt; i++) {
            int64_t resume;
            if (slot_add(d, parts->elems[i].topic, parts->elems[i].partition, &resume) != 0)
                set_fatal(d, "cannot take partition %s[%d]: its state could not be "
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
            if (drain(d, mono_ms() + d->cfg->shutdown_timeout * 1000) != 0)
                seg_log(SEG_LOG_ERROR, "kafka", "revoke: deliveries still outstanding; "
                        "their records are not committed and will be processed again");
            store_offsets(d, parts);
            checkpoint(d, parts, "revoke");
            commit_sync(d, "revoke");
        }
        for (int i = 0; i < parts->cnt; i++) {
            int s = find_slot(d, parts->elems[i].topic, parts->elems[i].partition);
            if (s >= 0) slot_remove(d, (unsigned)s);
        }
        if (coop) error = rd_kafka_incremental_unassign(rk, parts);
        else aerr = rd_kafka_assign(rk, NULL);
    } else {
        seg_log(SEG_LOG_ERROR, "kafka", "rebalance error: %s", rd_kafka_err2str(err));
        aerr = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        set_fatal(d, "partition assignment failed: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (aerr) {
        set_fatal(d, "partition assignment failed: %s", rd_kafka_err2str(aerr));
    }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    daemon_t *d = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[256];
        rd_kafka_fatal_error(rk, why, sizeof why);
        set_fatal(d, "fatal Kafka error: %s", why);
        return;
    }
    /* A connection failure reaches the log callback too (facility FAIL,
     * with the broker's name): say it once. */
    bool logged = err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__RESOLVE;
    seg_log(logged ? SEG_LOG_DEBUG : SEG_LOG_WARN, "kafka", "%s: %s",
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
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

/* ---- records ---------------------------------------------------------------- */

/* MessagePack or JSON? A content-type header decides when present;
 * otherwise the first byte: a MessagePack map starts with 0x80-0x8f, 0xde
 * or 0xdf, none of which can start a JSON text. */
static bool is_msgpack(const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t n = 0;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, "content-type", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR && v) {
        return (n == 19 && memcmp(v, "application/msgpack", 19) == 0) ||
               (n == 21 && memcmp(v, "application/x-msgpack", 21) == 0) ||
               (n == 22 && memcmp(v, "application/vnd.msgpack", 22) == 0);
    }
    if (m->len == 0) return false;
    unsigned char b = ((const unsigned char *)m->payload)[0];
    return (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf;
}

static void to_dlq(daemon_t *d, const rd_kafka_message_t *m, seg_reject_t rej, const char *why)
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
        void *op = charge(d);
        rd_kafka_resp_err_t err = produce_try(d, d->dlq_rkt, m->key, m->key_len, m->payload,
                                              vlen, h, op);
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
            uncharge(d, op);
            vlen = DLQ_TRUNCATED_BYTES;
            continue;
        }
        /* The charge stays: the record is not handled. */
        set_fatal(d, "cannot produce to '%s': %s", rd_kafka_topic_name(d->dlq_rkt),
                  rd_kafka_err2str(err));
        return;
    }
}

static void handle(daemon_t *d, rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            seg_log(SEG_LOG_WARN, "kafka", "consumer: %s", rd_kafka_message_errstr(m));
        return;
    }
    const char *topic = rd_kafka_topic_name(m->rkt);
    int s = find_slot(d, topic, m->partition);
    if (s < 0) {
        seg_log(SEG_LOG_WARN, "kafka", "record from unassigned %s[%d] ignored", topic,
                m->partition);
        return;
    }
    slot_t *sl = &d->slots[s];
    if (sl->next_offset >= 0 && m->offset < sl->next_offset) {
        /* Already folded into this state (the consumer went back, e.g. an
         * offset reset after a leader change): folding it again would
         * count the event twice. */
        count(d->redelivered, 1);
        seg_log(SEG_LOG_DEBUG, "kafka", "%s[%d]@%lld delivered again; skipped", topic,
                m->partition, (long long)m->offset);
        return;
    }
    uint64_t token = seg_inflight_begin(sl->inflight, m->offset);
    if (token == UINT64_MAX) {
        set_fatal(d, "out of memory tracking %s", topic);
        return;
    }
    d->cur_slot = (unsigned)s;
    d->cur_token = token;

    seg_event_t ev;
    char why[256] = "";
    seg_reject_t rej;
    if ((int64_t)m->len > d->cfg->input.max_record_bytes) {
        rej = SEG_REJ_OVERSIZED_RECORD;
        snprintf(why, sizeof why, "record is %zu bytes, longer than input.max_record_bytes",
                 m->len);
    } else if (is_msgpack(m)) {
        rej = seg_decode_msgpack(d->dec, m->payload, m->len, &ev, why, sizeof why);
    } else {
        rej = seg_decode_json(d->dec, m->payload, m->len, &ev, why, sizeof why);
    }
    if (rej != SEG_REJ_NONE) {
        count(rej_counter(d, rej), 1);
        to_dlq(d, m, rej, why);
    } else {
        char err[256];
        seg_watermark_observe(d->wm, (unsigned)s, ev.ts, mono_ms());
        if (seg_engine_fold_local(sl->engine, &ev, err, sizeof err) != 0)
            set_fatal(d, "engine: %s", err);
        count(d->ev_by_type[ev.type], 1);
    }
    seg_inflight_release(sl->inflight, token);
    sl->next_offset = m->offset + 1;
    d->cur_slot = NO_SLOT;
}

/* Fires every engine's deadlines up to the watermark, each partition no
 * further than its own input (seg_watermark_slot_limit). */
static void advance_time(daemon_t *d)
{
    int64_t wm = seg_watermark_update(d->wm, d->cfg->time.mode == SEG_TIMEMODE_WALL
                                                 ? now_ms() : mono_ms());
    if (wm == INT64_MIN) return;
    d->cur_slot = NO_SLOT;
    for (unsigned i = 0; i < MAX_SLOTS; i++) {
        slot_t *s = &d->slots[i];
        if (!s->used) continue;
        int64_t lim = seg_watermark_slot_limit(d->wm, i);
        if (lim == INT64_MIN || seg_engine_next_deadline(s->engine) > lim) continue;
        char err[256];
        if (seg_engine_advance(s->engine, lim, err, sizeof err) != 0)
            set_fatal(d, "engine: %s", err);
    }
}

/* Once a second: gauges, readiness, watchdog. */
static void tick(daemon_t *d)
{
    int64_t t = mono_ms();
    if (t - d->last_tick_ms < 1000) return;
    d->last_tick_ms = t;
    uint64_t customers = 0;
    size_t inflight = 0;
    int assigned = 0;
    bool caught_up = true;
    for (unsigned i = 0; i < MAX_SLOTS; i++) {
        slot_t *s = &d->slots[i];
        if (!s->used) continue;
        assigned++;
        seg_engine_stats_t st;
        seg_engine_stats(s->engine, &st);
        customers += st.customers;
        inflight += seg_inflight_pending(s->inflight);
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(d->consumer, s->topic, s->partition, &lo, &hi) ||
            hi < 0) {
            caught_up = false;
            continue;
        }
        /* Where this partition's state stands: the last record consumed,
         * else the restored position (a partition restored at its end
         * with no new input is caught up), else, with no state anywhere,
         * the partition's start. */
        int64_t pos = slot_offset(s) >= 0 ? slot_offset(s) : lo;
        int64_t lag = hi > pos ? hi - pos : 0;
        if (s->lag) seg_gauge_set(s->lag, lag);
        if (lag > READY_LAG) caught_up = false;
    }
    if (d->customers) seg_gauge_set(d->customers, (int64_t)customers);
    if (d->assigned) seg_gauge_set(d->assigned, assigned);
    if (d->inflight_g) seg_gauge_set(d->inflight_g, (int64_t)inflight);
    int64_t wm = seg_watermark_get(d->wm);
    if (d->watermark && wm != INT64_MIN) seg_gauge_set(d->watermark, wm);
    if (d->http) {
        if (assigned == 0) seg_http_set_ready(d->http, false, "no partitions assigned");
        else if (!caught_up) seg_http_set_ready(d->http, false, "catching up");
        else seg_http_set_ready(d->http, true, NULL);
    }
    sd_notifyf(0, "WATCHDOG=1\nSTATUS=%d partitions, %llu customers", assigned,
               (unsigned long long)customers);
}

/* ---- setup and teardown ------------------------------------------------------- */

static int setup(daemon_t *d, char *errstr, size_t errstr_size)
{
    const seg_cfg_t *cfg = d->cfg;
    char err[512];
    const char *bootstrap = cfg->kafka.brokers;
    if (strcmp(bootstrap, "embedded") == 0) {
        d->embedded = seg_kafka_embedded_start(cfg, 1, errstr, errstr_size);
        if (!d->embedded) return -1;
        bootstrap = seg_kafka_embedded_bootstrap(d->embedded);
        printf("segd: embedded Kafka-protocol cluster at %s (a demo convenience; "
               "production points kafka.brokers at a real Kafka cluster)\n", bootstrap);
        fflush(stdout);
        seg_log(SEG_LOG_INFO, "kafka", "embedded cluster listening at %s", bootstrap);
    }
    d->routes = seg_routes_new(cfg, errstr, errstr_size);
    if (!d->routes) return -1;
    seg_kafka_changelog_topic(cfg, d->changelog, sizeof d->changelog);
    seg_kafka_state_dir(cfg, d->state_dir, sizeof d->state_dir);
    if (mkdir(d->state_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(errstr, errstr_size, "cannot create state directory '%s': %s", d->state_dir,
                 strerror(errno));
        return -1;
    }
    seg_log(SEG_LOG_INFO, "main", "state in '%s', changelog '%s', checkpoint every %llds",
            d->state_dir, d->changelog, (long long)cfg->checkpoint.interval);
    d->dec = seg_decoder_new();
    d->wm = seg_watermark_new(cfg->time.mode == SEG_TIMEMODE_WALL ? SEG_TIME_WALL : SEG_TIME_EVENT,
                              cfg->time.lateness, cfg->time.idle_timeout * 1000);
    if (!d->dec || !d->wm || metrics_init(d) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }

    rd_kafka_conf_t *pconf = seg_kafka_producer_conf(cfg, bootstrap, errstr, errstr_size);
    if (!pconf) return -1;
    rd_kafka_conf_set_opaque(pconf, d);
    rd_kafka_conf_set_dr_msg_cb(pconf, on_delivery);
    rd_kafka_conf_set_error_cb(pconf, on_error);
    d->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof err);
    if (!d->producer) {
        rd_kafka_conf_destroy(pconf);
        snprintf(errstr, errstr_size, "cannot create the producer: %s", err);
        return -1;
    }
    d->out_rkt = rd_kafka_topic_new(d->producer, cfg->kafka.output_topic, NULL);
    d->dlq_rkt = rd_kafka_topic_new(d->producer, cfg->kafka.dlq_topic, NULL);
    d->changelog_rkt = rd_kafka_topic_new(d->producer, d->changelog, NULL);
    if (!d->changelog_rkt) {
        snprintf(errstr, errstr_size, "cannot create changelog topic handle");
        return -1;
    }
    size_t nr = seg_routes_count(d->routes);
    d->route_rkt = calloc(nr ? nr : 1, sizeof *d->route_rkt);
    if (!d->out_rkt || !d->dlq_rkt || !d->route_rkt) {
        snprintf(errstr, errstr_size, "cannot create producer topics");
        return -1;
    }
    for (size_t i = 0; i < nr; i++) {
        d->route_rkt[i] = rd_kafka_topic_new(d->producer, seg_routes_topic(d->routes, i), NULL);
        if (!d->route_rkt[i]) {
            snprintf(errstr, errstr_size, "cannot create topic handle '%s'",
                     seg_routes_topic(d->routes, i));
            return -1;
        }
    }

    rd_kafka_conf_t *rconf = seg_kafka_restore_conf(cfg, bootstrap, errstr, errstr_size);
    if (!rconf) return -1;
    rd_kafka_conf_set_opaque(rconf, d);
    rd_kafka_conf_set_error_cb(rconf, on_error);
    d->restorer = rd_kafka_new(RD_KAFKA_CONSUMER, rconf, err, sizeof err);
    if (!d->restorer) {
        rd_kafka_conf_destroy(rconf);
        snprintf(errstr, errstr_size, "cannot create the restore consumer: %s", err);
        return -1;
    }

    rd_kafka_conf_t *cconf = seg_kafka_consumer_conf(cfg, bootstrap, errstr, errstr_size);
    if (!cconf) return -1;
    rd_kafka_conf_set_opaque(cconf, d);
    rd_kafka_conf_set_rebalance_cb(cconf, on_rebalance);
    rd_kafka_conf_set_error_cb(cconf, on_error);
    rd_kafka_conf_set_offset_commit_cb(cconf, on_commit);
    d->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, err, sizeof err);
    if (!d->consumer) {
        rd_kafka_conf_destroy(cconf);
        snprintf(errstr, errstr_size, "cannot create the consumer: %s", err);
        return -1;
    }
    rd_kafka_poll_set_consumer(d->consumer);
    rd_kafka_topic_partition_list_t *subs =
        rd_kafka_topic_partition_list_new((int)cfg->kafka.input_topics.n);
    for (unsigned i = 0; i < cfg->kafka.input_topics.n; i++)
        rd_kafka_topic_partition_list_add(subs, cfg->kafka.input_topics.item[i],
                                          RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(d->consumer, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (serr) {
        snprintf(errstr, errstr_size, "cannot subscribe: %s", rd_kafka_err2str(serr));
        return -1;
    }
    if (strcmp(cfg->metrics.listen, "off") != 0) {
        d->http = seg_http_new(cfg->metrics.listen, d->metrics, errstr, errstr_size);
        if (!d->http) return -1;
        seg_http_set_ready(d->http, false, "starting");
        seg_log(SEG_LOG_INFO, "http", "metrics on %s (port %u)", cfg->metrics.listen,
                (unsigned)seg_http_port(d->http));
    }
    return 0;
}

static void teardown(daemon_t *d)
{
    bg_reap(d, true);   /* a snapshot being written is finished, not cut */
    if (d->bg.res) munmap(d->bg.res, MAX_SLOTS * sizeof *d->bg.res);
    if (d->consumer) rd_kafka_destroy(d->consumer);
    if (d->restorer) {
        rd_kafka_consumer_close(d->restorer);
        rd_kafka_destroy(d->restorer);
    }
    for (unsigned i = 0; i < MAX_SLOTS; i++) slot_remove(d, i);
    if (d->route_rkt) {
        for (size_t i = 0; d->routes && i < seg_routes_count(d->routes); i++)
            if (d->route_rkt[i]) rd_kafka_topic_destroy(d->route_rkt[i]);
        free(d->route_rkt);
    }
    if (d->out_rkt) rd_kafka_topic_destroy(d->out_rkt);
    if (d->dlq_rkt) rd_kafka_topic_destroy(d->dlq_rkt);
    if (d->changelog_rkt) rd_kafka_topic_destroy(d->changelog_rkt);
    while (d->retries) {
        retry_t *r = d->retries;
        d->retries = r->next;
        if (r->hdrs) rd_kafka_headers_destroy(r->hdrs);
        free(r->key);
        free(r->val);
        free(r);
    }
    if (d->producer) rd_kafka_destroy(d->producer);
    seg_http_destroy(d->http);
    seg_metrics_destroy(d->metrics);
    seg_routes_destroy(d->routes);
    seg_decoder_destroy(d->dec);
    seg_watermark_destroy(d->wm);
    seg_kafka_embedded_stop(d->embedded);
}

int seg_run_check(const seg_cfg_t *cfg, char *errstr, size_t errstr_size)
{
    /* "embedded" is resolved at start; any syntactically valid list will
     * do for checking the other properties. */
    const char *bootstrap = strcmp(cfg->kafka.brokers, "embedded") == 0 ? "127.0.0.1:9092"
                                                                        : cfg->kafka.brokers;
    seg_routes_t *r = seg_routes_new(cfg, errstr, errstr_size);
    if (!r) return SEG_RUN_ECONFIG;
    seg_routes_destroy(r);
    rd_kafka_conf_t *(*const build[])(const seg_cfg_t *, const char *, char *, size_t) = {
        seg_kafka_consumer_conf, seg_kafka_producer_conf, seg_kafka_restore_conf,
    };
    for (size_t i = 0; i < sizeof build / sizeof build[0]; i++) {
        rd_kafka_conf_t *c = build[i](cfg, bootstrap, errstr, errstr_size);
        if (!c) return SEG_RUN_ECONFIG;
        rd_kafka_conf_destroy(c);
    }
    if (strcmp(cfg->metrics.listen, "off") != 0) {
        char host[256];
        uint16_t port;
        if (seg_http_parse_listen(cfg->metrics.listen, host, sizeof host, &port, errstr,
                                  errstr_size) != 0)
            return SEG_RUN_ECONFIG;
    }
    return 0;
}

int seg_run(const seg_cfg_t *cfg, char *errstr, size_t errstr_size)
{
    int crc = seg_run_check(cfg, errstr, errstr_size);
    if (crc != 0) return crc;

    daemon_t *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    d->cfg = cfg;
    d->cur_slot = NO_SLOT;
    d->retries_tail = &d->retries;
    int rc = -1;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (setup(d, errstr, errstr_size) != 0) goto out;
    d->last_checkpoint_ms = mono_ms();
    sd_notify(0, "READY=1\nSTATUS=consuming");
    seg_log(SEG_LOG_INFO, "main", "segd %s running: group '%s', output '%s'", SEGD_VERSION,
            cfg->kafka.group_id, cfg->kafka.output_topic);

    while (!g_stop && !d->fatal) {
        if (g_reopen) {
            g_reopen = 0;
            char err[256];
            if (seg_log_reopen(err, sizeof err) != 0)
                seg_log(SEG_LOG_ERROR, "main", "reopening the log: %s", err);
            else
                seg_log(SEG_LOG_INFO, "main", "log reopened");
        }
        int64_t batch_end = mono_ms() + 50;
        for (int n = 0; n < BATCH_MAX && !d->fatal; n++) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(d->consumer, n == 0 ? 100 : 0);
            if (!m) break;
            handle(d, m);
            rd_kafka_message_destroy(m);
            if ((n & 255) == 255) {
                rd_kafka_poll(d->producer, 0);
                if (mono_ms() > batch_end) break;
            }
        }
        produce_retries(d);
        rd_kafka_poll(d->producer, 0);
        advance_time(d);
        store_offsets(d, NULL);
        tick(d);
        bg_reap(d, false);
        if (mono_ms() - d->last_checkpoint_ms >= d->cfg->checkpoint.interval * 1000) {
            checkpoint(d, NULL, "interval");
            d->last_checkpoint_ms = mono_ms();
        }
    }

    /* Shutdown: stop fetching, drain the producer, commit, close. */
    sd_notify(0, "STOPPING=1");
    int64_t deadline = mono_ms() + cfg->shutdown_timeout * 1000;
    if (d->fatal) {
        snprintf(errstr, errstr_size, "%s", d->fatal_msg);
        seg_log(SEG_LOG_ERROR, "main", "stopping on a fatal error; offsets of records "
                "not fully delivered are not committed");
        rd_kafka_consumer_close(d->consumer);
        goto out;
    }
    seg_log(SEG_LOG_INFO, "main", "shutting down: draining %d message(s)",
            rd_kafka_outq_len(d->producer));
    int drained = drain(d, deadline);
    store_offsets(d, NULL);
    if (drained == 0) checkpoint(d, NULL, "shutdown");
    commit_sync(d, "shutdown");
    rd_kafka_consumer_close(d->consumer);
    if (drained != 0) {
        snprintf(errstr, errstr_size, "shutdown_timeout passed with deliveries outstanding; "
                 "their records were not committed and will be processed again");
        goto out;
    }
    seg_log(SEG_LOG_INFO, "main", "stopped cleanly");
    rc = 0;
out:
    teardown(d);
    free(d);
    return rc;
}
