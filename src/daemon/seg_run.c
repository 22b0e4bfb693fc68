/*
 * seg_run: `segd run`'s entry points and its loop, in the shape of
 * librdkafka's examples/consumer.c.
 *
 *   poll a batch of records -> decode -> fold (the customer's own deadlines
 *   first) -> produce transitions -> serve delivery reports -> advance the
 *   watermark (everyone else's deadlines) -> store completed offsets
 *
 * Records are polled up to AHEAD ahead of the one being folded, so each
 * one's customer state can be prefetched before it is needed (as replay
 * reads ahead), and the transitions of a few dozen records are produced
 * together (seg_daemon_out_flush): neither changes what is folded, in what
 * order, or what is published (docs/guarantees.md).
 *
 * Everything runs on the main thread: the rebalance, delivery-report and
 * error callbacks are served from inside rd_kafka_consumer_poll() and
 * rd_kafka_poll(), so engines are never touched concurrently. The only
 * other thread is libmicrohttpd's, which reads atomic metrics.
 *
 * This file holds the loop, with setup, teardown and the shutdown drain;
 * each step's work is in a file of its own in this folder:
 * seg_delivery.c (producing, delivery reports, offsets), seg_dlq_topic.c
 * (rejected records), seg_restore.c (a partition's state on assignment),
 * seg_checkpoint.c (changelog and forked snapshots), seg_rebalance.c
 * (partitions coming and going), seg_health.c (metrics, readiness,
 * watchdog). What they share is in seg_daemon_int.h.
 */
#include "daemon/seg_run.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon/seg_daemon_int.h"
#include "event/seg_decode.h"
#include "io/seg_auth.h"
#include "io/seg_http.h"
#include "io/seg_kafka.h"
#include "util/seg_log.h"

#define BATCH_MAX     10000          /* records per loop turn */

static volatile sig_atomic_t g_stop, g_reopen;

static void on_signal(int sig)
{
    if (sig == SIGHUP) g_reopen = 1;
    else g_stop = 1;
}

/* Stops the loop on an error it cannot ride out: the first message wins and
 * is logged; seg_run returns it. */
void seg_daemon_fatal(daemon_t *d, const char *fmt, ...)
{
    if (d->fatal) return;
    d->fatal = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->fatal_msg, sizeof d->fatal_msg, fmt, ap);
    va_end(ap);
    seg_log(SEG_LOG_ERROR, "kafka", "%s", d->fatal_msg);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    daemon_t *d = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[256];
        rd_kafka_fatal_error(rk, why, sizeof why);
        seg_daemon_fatal(d, "fatal Kafka error: %s", why);
        return;
    }
    /* A connection failure reaches the log callback too (facility FAIL,
     * with the broker's name): say it once. */
    bool logged = err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__RESOLVE;
    seg_log(logged ? SEG_LOG_DEBUG : SEG_LOG_WARN, "kafka", "%s: %s",
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

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

/* One consumed record: decoded and folded, or rejected to the DLQ, charged
 * to its own in-flight token so its offset waits for what it caused. s is
 * its partition's slot (found when it was polled; no rebalance came
 * between, see seg_daemon_fold_ahead), -1 when not assigned. */
static void handle(daemon_t *d, rd_kafka_message_t *m, int s)
{
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        /* Read to the end: every record fetched before is handled (the
         * event comes after them), so the partition may now go idle. */
        if (s >= 0) seg_watermark_at_end(d->wm, (unsigned)s);
        return;
    }
    if (m->err) {
        seg_log(SEG_LOG_WARN, "kafka", "consumer: %s", rd_kafka_message_errstr(m));
        return;
    }
    const char *topic = rd_kafka_topic_name(m->rkt);
    if (s < 0) {
        seg_log(SEG_LOG_WARN, "kafka", "record from unassigned %s[%d] ignored", topic,
                m->partition);
        return;
    }
    slot_t *sl = &d->slots[s];
    /* Not at its end any more, whatever this record turns out to be. */
    seg_watermark_more(d->wm, (unsigned)s);
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
        seg_daemon_fatal(d, "out of memory tracking %s", topic);
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
        count(seg_daemon_rej_counter(d, rej), 1);
        seg_daemon_to_dlq(d, m, rej, why);
    } else {
        char err[256];
        seg_watermark_observe(d->wm, (unsigned)s, ev.ts, mono_ms());
        if (seg_engine_fold_local(sl->engine, &ev, err, sizeof err) != 0)
            seg_daemon_fatal(d, "engine: %s", err);
        count(d->ev_by_type[ev.type], 1);
    }
    seg_inflight_release(sl->inflight, token);
    sl->next_offset = m->offset + 1;
    d->cur_slot = NO_SLOT;
}

/* Reading ahead, as replay does (src/cmd/seg_replay.c): records are polled
 * up to AHEAD ahead of the one being folded, and each one's customer state
 * is prefetched in four stages (seg_engine_prefetch) by its Kafka key,
 * which producers set to the customer id (docs/events.md). The key is only
 * a hint: a record keyed otherwise is folded the same, just without the
 * head start. Stage 0 runs as the record is polled, stage 1 when it is 8
 * records from being folded, stage 2 at 4, stage 3 (rule windows) at 2. */
#define STAGE1 8
#define STAGE2 4
#define STAGE3 2

static void prefetch(daemon_t *d, ahead_t *a, int stage)
{
    const rd_kafka_message_t *m = a->m;
    if (a->slot < 0 || m->err || !m->key || m->key_len == 0 ||
        m->key_len > SEG_CUSTOMER_ID_MAX)
        return;
    seg_engine_prefetch(d->slots[a->slot].engine, m->key, m->key_len, &a->pf, stage);
}

/* Takes m into the ring (which has room): its slot, and prefetch stage 0. */
static void push_ahead(daemon_t *d, rd_kafka_message_t *m)
{
    ahead_t *a = &d->ring[(d->ring_head + d->ring_n) % AHEAD];
    a->m = m;
    a->slot = m->rkt && (!m->err || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                  ? seg_daemon_find_slot(d, rd_kafka_topic_name(m->rkt), m->partition) : -1;
    prefetch(d, a, 0);
    d->ring_n++;
}

/* Folds the oldest record of the ring (dropped after a fatal error). */
static void fold_oldest(daemon_t *d)
{
    if (d->ring_n > STAGE1) prefetch(d, &d->ring[(d->ring_head + STAGE1) % AHEAD], 1);
    if (d->ring_n > STAGE2) prefetch(d, &d->ring[(d->ring_head + STAGE2) % AHEAD], 2);
    if (d->ring_n > STAGE3) prefetch(d, &d->ring[(d->ring_head + STAGE3) % AHEAD], 3);
    ahead_t *a = &d->ring[d->ring_head];
    d->ring_head = (d->ring_head + 1) % AHEAD;
    d->ring_n--;
    if (!d->fatal) handle(d, a->m, a->slot);
    rd_kafka_message_destroy(a->m);
    a->m = NULL;
}

void seg_daemon_fold_ahead(daemon_t *d)
{
    while (d->ring_n > 0) fold_oldest(d);
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
            seg_daemon_fatal(d, "engine: %s", err);
    }
}

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
    d->routes = seg_routes_new(cfg, d->rules, errstr, errstr_size);
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
    d->sizes = seg_sizes_new();
    if (!d->dec || !d->wm || !d->sizes || seg_daemon_metrics_init(d) != 0 ||
        seg_sizes_set_dims(d->sizes, &cfg->seg, d->rules) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }

    rd_kafka_conf_t *pconf = seg_kafka_producer_conf(cfg, bootstrap, errstr, errstr_size);
    if (!pconf) return -1;
    rd_kafka_conf_set_opaque(pconf, d);
    rd_kafka_conf_set_dr_msg_cb(pconf, seg_daemon_on_delivery);
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
    rd_kafka_conf_set_rebalance_cb(cconf, seg_daemon_on_rebalance);
    rd_kafka_conf_set_error_cb(cconf, on_error);
    rd_kafka_conf_set_offset_commit_cb(cconf, seg_daemon_on_commit);
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
        /* Changing segd over the metrics port is opt-in, as Prometheus's
         * --web.enable-lifecycle: the port is often open for scraping. */
        if (cfg->metrics.lifecycle &&
            seg_http_route(d->http, "POST", "/-/reload", seg_daemon_http_reload, d) != 0) {
            snprintf(errstr, errstr_size, "cannot add the /-/reload route");
            return -1;
        }
        seg_log(SEG_LOG_INFO, "http", "metrics on %s (port %u)%s", cfg->metrics.listen,
                (unsigned)seg_http_port(d->http),
                cfg->metrics.lifecycle ? ", POST /-/reload enabled" : "");
        if (seg_daemon_api_init(d, errstr, errstr_size) != 0) return -1;
    }
    return 0;
}

static void teardown(daemon_t *d)
{
    seg_daemon_bg_reap(d, true);   /* a snapshot being written is finished, not cut */
    if (d->bg.res) munmap(d->bg.res, MAX_SLOTS * sizeof *d->bg.res);
    seg_http_set_wake(d->http, NULL, NULL);   /* before the queue it yields goes */
    if (d->wake_q) rd_kafka_queue_destroy(d->wake_q);
    seg_sizes_destroy(d->sizes);              /* nobody counts the slots dropped below */
    d->sizes = NULL;
    while (d->ring_n > 0) {   /* polled ahead, never folded (a fatal error) */
        rd_kafka_message_destroy(d->ring[d->ring_head].m);
        d->ring_head = (d->ring_head + 1) % AHEAD;
        d->ring_n--;
    }
    if (d->consumer) rd_kafka_destroy(d->consumer);
    if (d->restorer) {
        rd_kafka_consumer_close(d->restorer);
        rd_kafka_destroy(d->restorer);
    }
    for (unsigned i = 0; i < MAX_SLOTS; i++) seg_daemon_slot_remove(d, i);
    if (d->route_rkt) {
        for (size_t i = 0; d->routes && i < seg_routes_count(d->routes); i++)
            if (d->route_rkt[i]) rd_kafka_topic_destroy(d->route_rkt[i]);
        free(d->route_rkt);
    }
    for (size_t i = 0; i < d->n_retired; i++) rd_kafka_topic_destroy(d->retired_rkt[i]);
    free(d->retired_rkt);
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
    seg_daemon_out_free(d);
    seg_http_destroy(d->http);
    seg_metrics_destroy(d->metrics);
    seg_routes_destroy(d->routes);
    seg_decoder_destroy(d->dec);
    seg_watermark_destroy(d->wm);
    seg_kafka_embedded_stop(d->embedded);
}

int seg_run_check(const seg_cfg_t *cfg, const seg_ruleset_t *rules, char *errstr,
                  size_t errstr_size)
{
    /* "embedded" is resolved at start; any syntactically valid list will
     * do for checking the other properties. */
    const char *bootstrap = strcmp(cfg->kafka.brokers, "embedded") == 0 ? "127.0.0.1:9092"
                                                                        : cfg->kafka.brokers;
    seg_routes_t *r = seg_routes_new(cfg, rules, errstr, errstr_size);
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
        /* The customer API beyond loopback needs its token (seg_auth.h). */
        char token[SEG_AUTH_TOKEN_MAX + 1], warn[8];
        int arc = seg_auth_from_config(cfg, token, sizeof token, warn, sizeof warn, errstr,
                                       errstr_size);
        memset(token, 0, sizeof token);
        if (arc != 0) return SEG_RUN_ECONFIG;
    }
    return 0;
}

int seg_run(const seg_run_opts_t *opts, char *errstr, size_t errstr_size)
{
    int crc = seg_run_check(opts->cfg, opts->rules, errstr, errstr_size);
    if (crc != 0) {
        seg_ruleset_destroy(opts->rules);
        return crc;
    }

    daemon_t *d = calloc(1, sizeof *d);
    seg_cfg_t *own = malloc(sizeof *own);
    if (!d || !own) {
        free(d);
        free(own);
        seg_ruleset_destroy(opts->rules);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    /* The daemon's own copy: a reload replaces it. */
    memcpy(own, opts->cfg, sizeof *own);
    d->cfg_own = own;
    d->cfg = own;
    d->rules = opts->rules;
    d->config_path = opts->config_path;
    d->sets = opts->sets;
    d->nsets = opts->nsets;
    const seg_cfg_t *cfg = d->cfg;
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
    seg_log(SEG_LOG_INFO, "main", "segd %s running: group '%s', output '%s', %u user rule(s)",
            SEGD_VERSION, cfg->kafka.group_id, cfg->kafka.output_topic,
            seg_ruleset_count(d->rules));

    while (!g_stop && !d->fatal) {
        if (g_reopen) {
            /* SIGHUP: a new log file (logrotate) and a new configuration. */
            g_reopen = 0;
            char err[1024];
            if (seg_log_reopen(err, sizeof err) != 0)
                seg_log(SEG_LOG_ERROR, "main", "reopening the log: %s", err);
            else
                seg_log(SEG_LOG_INFO, "main", "log reopened");
            (void)seg_daemon_reload(d, "SIGHUP", err, sizeof err);
        }
        seg_http_serve(d->http);
        int64_t batch_end = mono_ms() + 50;
        seg_daemon_out_begin(d);   /* transitions queued, produced in batches */
        for (int n = 0; n < BATCH_MAX && !d->fatal; n++) {
            /* Keep the ring full: a record is folded AHEAD polls after it
             * was polled (the rebalance callback, served inside a poll,
             * folds the ring first: seg_daemon_fold_ahead). */
            while (d->ring_n < AHEAD && !d->fatal) {
                bool wait = n == 0 && d->ring_n == 0;
                if (wait) atomic_store(&d->polling, true);
                rd_kafka_message_t *m = rd_kafka_consumer_poll(d->consumer, wait ? 100 : 0);
                if (wait) atomic_store(&d->polling, false);
                if (!m) break;
                push_ahead(d, m);
            }
            if (d->ring_n == 0) break;
            fold_oldest(d);
            if ((n & 63) == 63) seg_daemon_out_flush(d);
            if ((n & 255) == 255) {
                rd_kafka_poll(d->producer, 0);
                /* A lookup waits for a few hundred records, not a batch
                 * (a reload waits for the batch's end). */
                seg_http_serve_reads(d->http);
                if (mono_ms() > batch_end) break;
            }
        }
        seg_daemon_fold_ahead(d);   /* the turn ends with every polled record folded */
        seg_daemon_out_flush(d);
        seg_daemon_produce_retries(d);
        rd_kafka_poll(d->producer, 0);
        advance_time(d);
        seg_daemon_out_end(d);
        seg_daemon_store_offsets(d, NULL);
        seg_daemon_tick(d);
        seg_daemon_bg_reap(d, false);
        if (mono_ms() - d->last_checkpoint_ms >= d->cfg->checkpoint.interval * 1000) {
            seg_daemon_checkpoint(d, NULL, "interval");
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
    int drained = seg_daemon_drain(d, deadline);
    seg_daemon_store_offsets(d, NULL);
    if (drained == 0) seg_daemon_checkpoint(d, NULL, "shutdown");
    seg_daemon_commit_sync(d, "shutdown");
    rd_kafka_consumer_close(d->consumer);
    if (drained != 0) {
        snprintf(errstr, errstr_size, "shutdown_timeout passed with deliveries outstanding; "
                 "their records were not committed and will be processed again");
        goto out;
    }
    seg_log(SEG_LOG_INFO, "main", "stopped cleanly");
    rc = 0;
out:
    if (rc != 0 && d->fatal_config) rc = SEG_RUN_ECONFIG;
    teardown(d);
    seg_ruleset_destroy(d->rules);
    for (unsigned i = 0; i < d->n_tr_rules; i++)
        for (unsigned k = 0; k < d->tr_rules[i].n; k++) free(d->tr_rules[i].value[k]);
    free(d->tr_rules);
    free(d->cfg_own);
    free(d);
    return rc;
}
