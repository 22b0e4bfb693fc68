/*
 * seg_checkpoint: checkpoints, changelog first, snapshots forked.
 *
 * Every checkpoint.interval (and on revoke and shutdown) each partition
 * that changed gets its changed customers and a marker "state as of input
 * offset N" on the changelog, delivered, and then a local snapshot. The
 * changelog is the shared truth another instance restores from; the
 * snapshot makes a restart on the same host read only the changelog's
 * tail. Interval snapshots are written by a forked child from its
 * copy-on-write image of the engines, so a checkpoint pauses consumption
 * for milliseconds instead of for the file write (7 ms at 1M customers);
 * revoke and shutdown snapshots are written in the foreground, since the
 * state leaves with them.
 */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/seg_daemon_int.h"
#include "persist/seg_changelog.h"
#include "persist/seg_snapshot.h"
#include "util/seg_log.h"

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
        seg_daemon_fatal(d, "cannot produce to changelog '%s': %s", d->changelog,
                         rd_kafka_err2str(err));
        return -1;
    }
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
void seg_daemon_bg_reap(daemon_t *d, bool block)
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
int seg_daemon_checkpoint(daemon_t *d, const rd_kafka_topic_partition_list_t *only,
                          const char *why)
{
    /* One writer at a time: two would share a snapshot's temp file. */
    seg_daemon_bg_reap(d, true);
    int64_t t0 = mono_ms(), deadline = t0 + d->cfg->shutdown_timeout * 1000;
    char err[512];
    if (seg_daemon_drain(d, deadline) != 0) goto fail_drain;
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
            return -1;
        }
        records += n;
    }
    if (seg_daemon_drain(d, deadline) != 0) goto fail_drain;
    if (ntodo > 0 && !only && strcmp(why, "interval") == 0 && d->cfg->checkpoint.background &&
        bg_start(d, todo, records, t0) == 0)
        return 0;   /* logged by bg_reap when the child is done */
    uint64_t customers = 0, bytes = 0;
    int parts = 0;
    for (unsigned i = 0; i < MAX_SLOTS; i++) {
        slot_t *s = &d->slots[i];
        if (!todo[i]) continue;
        seg_snapshot_info_t si;
        /* A failed snapshot is not a failed checkpoint: the changelog,
         * delivered above, holds this state. */
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
    return 0;
fail_drain:
    count(d->ckpt_errors, 1);
    seg_log(SEG_LOG_ERROR, "checkpoint", "%s: deliveries still outstanding; checkpoint skipped",
            why);
    return -1;
}
