/*
 * seg_daemon_int: the daemon's state and the functions its files share.
 * Private to src/daemon/; main.c and everything else see only seg_run.h.
 *
 * Why one private header: `segd run` is one object, daemon_t, that the
 * loop, delivery, the DLQ, restore, checkpoints, rebalance and health all
 * read and write. The folder splits the code by concern; this header is
 * the one place that says what the daemon holds. Everything in it is
 * touched from the main thread only: librdkafka serves the rebalance,
 * delivery-report, commit and error callbacks from inside the loop's
 * polls, and libmicrohttpd's thread reads only atomic metrics.
 *
 * Ownership: daemon_t owns every handle and engine in it; seg_run()
 * creates it and frees it on the way out (setup/teardown in seg_run.c).
 * A slot owns its partition's engine and in-flight tracker from
 * slot_add (seg_rebalance.c) to seg_daemon_slot_remove.
 */
#ifndef SEG_DAEMON_INT_H
#define SEG_DAEMON_INT_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "config/seg_cfg.h"
#include "event/seg_decode.h"
#include "event/seg_reject.h"
#include "io/seg_http.h"
#include "io/seg_kafka.h"
#include "persist/seg_snapshot.h"
#include "publish/seg_inflight.h"
#include "publish/seg_route.h"
#include "rule/seg_rule.h"
#include "segment/seg_engine.h"
#include "segment/seg_sizes.h"
#include "time/seg_watermark.h"
#include "util/seg_clock.h"
#include "util/seg_metrics.h"

#define MAX_SLOTS     1024
#define NO_SLOT       0xffffu        /* opaque slot of time-fired messages */
#define AHEAD         16             /* records polled ahead of the one being folded */

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

/* A record polled but not yet folded (the read-ahead, seg_run.c). */
typedef struct ahead {
    rd_kafka_message_t *m;
    int                 slot;         /* its slot when polled, -1: not assigned */
    seg_prefetch_t      pf;
} ahead_t;

/* Transition messages emitted and not yet handed to librdkafka: during a
 * loop turn they are queued here and produced with one
 * rd_kafka_produce_batch() per topic every few dozen records
 * (seg_delivery.c). Until the flush, a message's payload and key fields
 * hold offsets into buf, which may move as it grows. */
typedef struct outq {
    bool                on;           /* emit queues (else produces at once) */
    char               *buf;          /* keys and values */
    size_t              used, cap;
    rd_kafka_message_t *msg;          /* in emit order */
    uint16_t           *topic;        /* per message: 0 the output topic, 1 + i route i */
    size_t              n, ncap;
    rd_kafka_message_t *tmp;          /* one topic's messages at the flush */
} outq_t;

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

/* A rule's segd_transitions_total counters, by value (bounded). */
#define TR_VALUES_MAX 64
typedef struct tr_rule {
    char           name[SEG_RULE_NAME_MAX + 1];
    unsigned       n;
    char          *value[TR_VALUES_MAX];
    seg_counter_t *counter[TR_VALUES_MAX + 2];  /* + "_other", + null (to: null) */
} tr_rule_t;

typedef struct daemon {
    const seg_cfg_t      *cfg;               /* == cfg_own: the settings in force */
    seg_cfg_t            *cfg_own;
    seg_ruleset_t        *rules;             /* user rules in force (owned) */
    const char           *config_path;       /* re-read by a reload */
    const char *const    *sets;
    int                   nsets;
    int                   fatal_config;      /* the fatal error is a configuration one (exit 3) */
    seg_kafka_embedded_t *embedded;
    rd_kafka_t           *consumer, *producer, *restorer;
    rd_kafka_topic_t     *out_rkt, *dlq_rkt, *changelog_rkt, **route_rkt;
    rd_kafka_topic_t    **retired_rkt;       /* routes' handles before a reload, closed at exit */
    size_t                n_retired;
    char                  state_dir[512];
    char                  changelog[300];
    int64_t               last_checkpoint_ms;
    bool                  restored_from_snapshot; /* set by seg_daemon_restore for slot_add */
    seg_routes_t         *routes;
    seg_decoder_t        *dec;
    seg_watermark_t      *wm;
    slot_t                slots[MAX_SLOTS];
    unsigned              last_slot;
    /* The record being processed: what emitted messages are charged to. */
    unsigned              cur_slot;
    uint64_t              cur_token;
    /* Records polled ahead (ring[head .. head+n) mod AHEAD): folded in
     * order before anything else happens to the partitions, including a
     * rebalance (seg_daemon_fold_ahead). */
    ahead_t               ring[AHEAD];
    unsigned              ring_head, ring_n;
    outq_t                out;
    retry_t              *retries, **retries_tail;
    uint64_t              failed_deliveries;
    int64_t               last_fail_log_ms;
    int                   fatal;
    char                  fatal_msg[512];
    /* metrics */
    seg_metrics_t        *metrics;
    seg_http_t           *http;
    seg_counter_t        *ev_by_type[SEG_EV__COUNT];
    seg_counter_t        *rej_by_reason[SEG_REJ__COUNT];
    seg_counter_t        *tr_by_value[SEG_DIM__COUNT][128];
    tr_rule_t            *tr_rules;          /* by rule name */
    unsigned              n_tr_rules;
    seg_counter_t        *reload_ok, *reload_error;
    seg_counter_t        *produce_errors, *commit_errors, *dlq_total, *delivered;
    seg_gauge_t          *customers, *watermark, *assigned, *inflight_g;
    seg_gauge_t          *ckpt_pause_ms, *ckpt_pause_max_ms, *restoring;
    seg_gauge_t          *ready;             /* segd_ready: what /readyz says, for alerts */
    seg_counter_t        *checkpoints, *ckpt_errors, *restore_records, *snapshot_loads;
    seg_counter_t        *redelivered;
    seg_sizes_t          *sizes;             /* segment sizes, fed by seg_daemon_emit */
    bool                  sizes_restoring;   /* a slot is being restored: flows only */
    rd_kafka_queue_t     *wake_q;            /* the consumer's queue, yielded by the API */
    atomic_bool           polling;           /* the loop waits in its blocking poll: an API
                                              * request wakes it (else it is answered within
                                              * the batch, seg_http_serve_reads) */
    int64_t               last_tick_ms;
    uint64_t              next_gen;
    bgsave_t              bg;
} daemon_t;

static inline int64_t now_ms(void) { return seg_clock_ms(CLOCK_REALTIME); }
static inline int64_t mono_ms(void) { return seg_clock_ms(CLOCK_MONOTONIC); }

static inline void count(seg_counter_t *c, uint64_t n)
{
    if (c) seg_counter_add(c, n);
}

/* The input offset a slot's state covers. */
static inline int64_t slot_offset(const slot_t *s)
{
    return s->next_offset >= 0 ? s->next_offset : s->resume_offset;
}

/* seg_run.c: the loop. Stops the loop with an error (the first one
 * wins), logged; offsets not yet stored stay uncommitted. */
void seg_daemon_fatal(daemon_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Folds every record polled ahead and not yet folded, in order (the loop
 * at the end of a turn; the rebalance callback before the assignment
 * changes, so each record meets the partitions as they were when it was
 * polled, as if folded at once). After a fatal error they are dropped. */
void seg_daemon_fold_ahead(daemon_t *d);

/* seg_delivery.c: producing, delivery reports, retries, offsets. */
rd_kafka_resp_err_t seg_daemon_produce_try(daemon_t *d, rd_kafka_topic_t *rkt, const void *key,
                                           size_t klen, const void *val, size_t vlen,
                                           rd_kafka_headers_t *hdrs, void *opaque);
int seg_daemon_produce(daemon_t *d, rd_kafka_topic_t *rkt, const void *key, size_t klen,
                       const void *val, size_t vlen, rd_kafka_headers_t *hdrs, void *opaque);
void *seg_daemon_charge(daemon_t *d);
/* Queue transitions from here on (the loop's folds). */
void seg_daemon_out_begin(daemon_t *d);
/* Produces the queued transitions, in order, with one produce_batch per
 * topic. Returns 0, or -1 when a produce failed (fatal; the charges of
 * what was not produced stay, so those records are never committed). */
int seg_daemon_out_flush(daemon_t *d);
/* Flushes and produces at once again. */
void seg_daemon_out_end(daemon_t *d);
void seg_daemon_out_free(daemon_t *d);
void seg_daemon_uncharge(daemon_t *d, void *opaque);
int seg_daemon_emit(void *opaque, const seg_transition_t *t);
int seg_daemon_keep_retry(daemon_t *d, const rd_kafka_message_t *m, size_t vmax);
void seg_daemon_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
void seg_daemon_produce_retries(daemon_t *d);
int seg_daemon_drain(daemon_t *d, int64_t deadline_ms);
void seg_daemon_store_offsets(daemon_t *d, const rd_kafka_topic_partition_list_t *only);
void seg_daemon_commit_sync(daemon_t *d, const char *why);
void seg_daemon_on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t *offsets, void *opaque);

/* seg_dlq_topic.c: rejected records to kafka.dlq_topic. */
void seg_daemon_to_dlq(daemon_t *d, const rd_kafka_message_t *m, seg_reject_t rej,
                       const char *why);
bool seg_daemon_dlq_refused(daemon_t *d, const rd_kafka_message_t *m);

/* seg_restore.c: a partition's state from its snapshot or the changelog. */
seg_engine_t *seg_daemon_restore(daemon_t *d, const char *topic, int32_t partition,
                                 int64_t *resume);

/* seg_checkpoint.c: changelog markers and (forked) snapshots. Returns 0
 * when the changelog holds the state of every slot checkpointed (a
 * snapshot that failed to write is logged, not a failure), -1 if not. */
void seg_daemon_bg_reap(daemon_t *d, bool block);
int seg_daemon_checkpoint(daemon_t *d, const rd_kafka_topic_partition_list_t *only,
                          const char *why);

/* seg_rebalance.c: partitions coming and going, one slot each. */
int seg_daemon_find_slot(daemon_t *d, const char *topic, int32_t partition);
void seg_daemon_slot_remove(daemon_t *d, unsigned i);
void seg_daemon_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *parts, void *opaque);

/* seg_reload.c: a new configuration while running (docs/rules.md). Returns
 * 0, or -1 with errstr saying why nothing changed. */
int seg_daemon_reload(daemon_t *d, const char *how, char *errstr, size_t errstr_size);
/* Handler of POST /-/reload (metrics.lifecycle: true). */
void seg_daemon_http_reload(void *opaque, seg_http_call_t *call);

/* seg_api.c: GET /v1/segments, GET /v1/customers/{id} and the page (GET /),
 * on the metrics address (metrics.api). Returns 0, or -1 with errstr
 * (a token file that cannot be used, out of memory). */
int seg_daemon_api_init(daemon_t *d, char *errstr, size_t errstr_size);
/* Takes a slot's customers into the sizes (sign 1, after its restore) or
 * out of them (-1, before it is dropped). */
void seg_daemon_sizes_slot(daemon_t *d, unsigned i, int sign);

/* seg_health.c: metrics, readiness, the watchdog. */
int seg_daemon_metrics_init(daemon_t *d);
seg_counter_t *seg_daemon_rej_counter(daemon_t *d, seg_reject_t r);
seg_counter_t *seg_daemon_tr_counter(daemon_t *d, const seg_transition_t *t);
void seg_daemon_tick(daemon_t *d);

#endif
