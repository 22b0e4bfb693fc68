/*
 * seg_health: what the daemon tells operators: Prometheus metrics,
 * /readyz and the systemd watchdog.
 *
 * Counters are bumped where things happen; gauges, readiness and the
 * watchdog are refreshed once a second by seg_daemon_tick from the main
 * loop (the HTTP thread only reads atomics). Ready means partitions are
 * assigned, restored, and each within READY_LAG records of its end,
 * counted from the last record consumed or, before any, from the offset
 * its state was restored at. docs/operations.md lists every metric.
 */
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "daemon/seg_daemon_int.h"
#include "io/seg_http.h"
#include "util/seg_log.h"

#define READY_LAG     1000           /* "caught up": at most this many behind */

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

static void collect_rss(seg_metrics_t *m, void *opaque)
{
    (void)m;
    seg_gauge_t *rss = opaque;
    if (rss) seg_gauge_set(rss, seg_metrics_process_rss());
}

/* Creates the registry and the daemon-wide series (a series that cannot be
 * registered is logged and left NULL: count() and the gauges skip it).
 * Returns 0, or -1 when out of memory. */
int seg_daemon_metrics_init(daemon_t *d)
{
    d->metrics = seg_metrics_new();
    if (!d->metrics) return -1;
    for (int t = 1; t < SEG_EV__COUNT; t++)
        d->ev_by_type[t] = counter1(d, "segd_events_total", "Events folded, by type.",
                                    "type", seg_event_type_name((seg_event_type_t)t));
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
    d->ready = gauge0(d, "segd_ready",
                      "1 while /readyz answers 200 (partitions assigned, restored, caught up).");
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
    d->reload_ok = counter1(d, "segd_config_reloads_total",
                            "Configuration reloads (SIGHUP, POST /-/reload), by result.",
                            "result", "ok");
    d->reload_error = counter1(d, "segd_config_reloads_total",
                               "Configuration reloads (SIGHUP, POST /-/reload), by result.",
                               "result", "error");
    seg_gauge_t *rss = gauge0(d, "segd_process_rss_bytes", "Resident set size of segd.");
    seg_metrics_set_collect(d->metrics, collect_rss, rss);
    return 0;
}

/* segd_events_rejected_total{reason}, created on first use. */
seg_counter_t *seg_daemon_rej_counter(daemon_t *d, seg_reject_t r)
{
    if (!d->rej_by_reason[r])
        d->rej_by_reason[r] = counter1(d, "segd_events_rejected_total",
                                       "Records rejected, by reason (see docs/events.md).",
                                       "reason", seg_reject_name(r));
    return d->rej_by_reason[r];
}

/* A user rule's counter for value v (NULL: to null). A computed rule can
 * take any text: past TR_VALUES_MAX distinct values they share "_other",
 * so a rule cannot grow the registry without bound. */
static seg_counter_t *rule_counter(daemon_t *d, const seg_transition_t *t)
{
    tr_rule_t *r = NULL;
    for (unsigned i = 0; i < d->n_tr_rules && !r; i++)
        if (strcmp(d->tr_rules[i].name, t->dim_name) == 0) r = &d->tr_rules[i];
    if (!r) {
        tr_rule_t *nr = realloc(d->tr_rules, (d->n_tr_rules + 1) * sizeof *nr);
        if (!nr) return NULL;
        d->tr_rules = nr;
        r = &nr[d->n_tr_rules++];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", t->dim_name);
    }
    unsigned k;
    const char *label = t->to;
    if (!t->to) {
        k = TR_VALUES_MAX + 1;
        label = "null";
    } else {
        for (k = 0; k < r->n && strcmp(r->value[k], t->to) != 0; k++) {}
        if (k == r->n && r->n < TR_VALUES_MAX && (r->value[k] = strdup(t->to)) != NULL) r->n++;
        if (k == r->n) {
            k = TR_VALUES_MAX;
            label = "_other";
        }
    }
    if (!r->counter[k]) {
        char err[256];
        seg_label_t l[2] = { { "dimension", t->dim_name }, { "to", label } };
        r->counter[k] = seg_metrics_counter(d->metrics, "segd_transitions_total",
                                            "Transitions published, by dimension and new value.",
                                            l, 2, err, sizeof err);
    }
    return r->counter[k];
}

/* segd_transitions_total{dimension,to}, created on first use. */
seg_counter_t *seg_daemon_tr_counter(daemon_t *d, const seg_transition_t *t)
{
    if ((unsigned)t->dim >= SEG_DIM__COUNT || !t->to) return rule_counter(d, t);
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

/* Once a second: gauges, readiness, watchdog. */
void seg_daemon_tick(daemon_t *d)
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
    if (d->sizes) {
        /* "now" for the flows' hour and day: event time fired up to */
        if (wm != INT64_MIN) seg_sizes_advance(d->sizes, wm);
        seg_sizes_publish(d->sizes, d->metrics);
    }
    if (d->http) {
        if (assigned == 0) seg_http_set_ready(d->http, false, "no partitions assigned");
        else if (!caught_up) seg_http_set_ready(d->http, false, "catching up");
        else seg_http_set_ready(d->http, true, NULL);
    }
    if (d->ready) seg_gauge_set(d->ready, assigned > 0 && caught_up);
    sd_notifyf(0, "WATCHDOG=1\nSTATUS=%d partitions, %llu customers", assigned,
               (unsigned long long)customers);
}
