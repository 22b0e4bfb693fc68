/*
 * seg_restore: a partition's state when it is assigned.
 *
 * The state of a partition is a function of all its input, so it must
 * come back whole before consumption resumes. The newest valid state
 * wins: the local snapshot when the changelog's last marker says it is
 * current (a restart then reads only the changelog's tail), else the
 * changelog, read from its start; with no state anywhere, the input from
 * its beginning. When the changelog cannot be read and no snapshot loads,
 * segd refuses the partition rather than guess. docs/guarantees.md
 * describes the order and the messages.
 */
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "daemon/seg_daemon_int.h"
#include "io/seg_http.h"
#include "persist/seg_changelog.h"
#include "persist/seg_rulestate.h"
#include "persist/seg_snapshot.h"
#include "util/seg_log.h"

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
seg_engine_t *seg_daemon_restore(daemon_t *d, const char *topic, int32_t partition,
                                 int64_t *resume)
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
    seg_engine_t *fromsnap = seg_engine_new(&cfg->seg, seg_daemon_emit, d, err, sizeof err);
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
        fromlog = seg_engine_new(&cfg->seg, seg_daemon_emit, d, err, sizeof err);
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
            e = seg_engine_new(&cfg->seg, seg_daemon_emit, d, err, sizeof err);
            /* From the beginning of the input: everything it keeps will
             * be complete. */
            if (e && seg_engine_set_rules(e, d->rules, err, sizeof err) != 0) {
                seg_log(SEG_LOG_ERROR, "restore", "%s[%d]: %s", topic, partition, err);
                seg_engine_destroy(e);
                e = NULL;
            }
            seg_log(SEG_LOG_INFO, "restore", "%s[%d]: no saved state; starting from the "
                    "beginning of the partition", topic, partition);
        }
    }
    /* The state comes back under the rules it was saved under; if the
     * configuration now says otherwise, switch as a live reload would
     * (docs/rules.md), or refuse when the state lacks the history the
     * new rules read. */
    if (e && src != 0) {
        int changed = 0;
        d->cur_slot = NO_SLOT;
        seg_engine_stats_t before;
        seg_engine_stats(e, &before);
        if (seg_rulestate_adopt(e, &cfg->seg, d->rules, &changed, err, sizeof err) != 0) {
            d->fatal_config = 1;
            seg_daemon_fatal(d, "%s[%d]: the state was saved under other rules, and %s", topic,
                             partition, err);
            seg_engine_destroy(e);
            e = NULL;
        } else if (changed) {
            seg_engine_stats_t after;
            seg_engine_stats(e, &after);
            seg_log(SEG_LOG_INFO, "restore", "%s[%d]: saved under other rules or settings: %u "
                    "customers re-evaluated under the configured ones, %llu transitions "
                    "(cause \"rule\")", topic, partition, after.customers,
                    (unsigned long long)(after.transitions - before.transitions));
        }
    }
    if (d->restoring) seg_gauge_set(d->restoring, 0);
    if (e) {
        seg_engine_track_changes(e, true);
        seg_engine_set_evict_after(e, cfg->state.evict_after);
    }
    return e;
}
