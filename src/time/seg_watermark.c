/*
 * seg_watermark: min over non-idle partitions, wall-clock pace when all
 * are idle. A linear pass over the assigned partitions per update: a
 * daemon holds tens of partitions, and updates happen per poll batch, not
 * per event.
 *
 * Idle means read to the end and quiet: a partition the caller has not
 * reported at its end (seg_watermark_at_end) is never idle, however long
 * it has gone without a record. Time without records alone would also
 * count a partition whose records are waiting behind a slow consumer
 * (the daemon blocked on a full producer queue, a long checkpoint, a
 * starved CPU): the watermark would then run past records not yet read
 * and fire their customers' deadlines early, so the output would depend
 * on how fast the machine was.
 */
#include "time/seg_watermark.h"

#include <stdlib.h>
#include <string.h>

typedef struct slot {
    bool    used;
    bool    has_ts;
    bool    idle;
    bool    at_end;          /* read to the end since its last record */
    int64_t max_ts;          /* s */
    int64_t last_wall_ms;    /* arrival of the last record, or assignment */
} slot_t;

struct seg_watermark {
    seg_time_mode_t mode;
    int64_t         lateness;
    int64_t         idle_ms;
    slot_t         *slots;
    unsigned        nslots;
    int64_t         wm;
    /* Survive revocation: the largest ts and its arrival ever seen, so an
     * instance left with no partitions keeps a sane clock. */
    bool            any_ts;
    int64_t         max_ts_all;
    int64_t         last_wall_all_ms;
};

seg_watermark_t *seg_watermark_new(seg_time_mode_t mode, int64_t lateness_s,
                                   int64_t idle_timeout_ms)
{
    seg_watermark_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->mode = mode;
    w->lateness = lateness_s;
    w->idle_ms = idle_timeout_ms;
    w->wm = INT64_MIN;
    return w;
}

void seg_watermark_destroy(seg_watermark_t *w)
{
    if (!w) return;
    free(w->slots);
    free(w);
}

int seg_watermark_add(seg_watermark_t *w, unsigned slot, int64_t now_ms)
{
    if (slot >= w->nslots) {
        unsigned n = w->nslots ? w->nslots : 8;
        while (n <= slot) n *= 2;
        slot_t *ns = realloc(w->slots, n * sizeof *ns);
        if (!ns) return -1;
        memset(ns + w->nslots, 0, (n - w->nslots) * sizeof *ns);
        w->slots = ns;
        w->nslots = n;
    }
    w->slots[slot] = (slot_t){ .used = true, .last_wall_ms = now_ms };
    return 0;
}

void seg_watermark_remove(seg_watermark_t *w, unsigned slot)
{
    if (slot < w->nslots) w->slots[slot].used = false;
}

void seg_watermark_observe(seg_watermark_t *w, unsigned slot, int64_t ts, int64_t now_ms)
{
    if (slot >= w->nslots || !w->slots[slot].used) return;
    slot_t *s = &w->slots[slot];
    if (!s->has_ts || ts > s->max_ts) s->max_ts = ts;
    s->has_ts = true;
    s->idle = false;
    s->at_end = false;
    s->last_wall_ms = now_ms;
    if (!w->any_ts || ts >= w->max_ts_all) {
        w->max_ts_all = ts;
        w->any_ts = true;
    }
    if (now_ms > w->last_wall_all_ms) w->last_wall_all_ms = now_ms;
}

void seg_watermark_more(seg_watermark_t *w, unsigned slot)
{
    if (slot >= w->nslots || !w->slots[slot].used) return;
    w->slots[slot].at_end = false;
    w->slots[slot].idle = false;
}

void seg_watermark_at_end(seg_watermark_t *w, unsigned slot)
{
    if (slot >= w->nslots || !w->slots[slot].used) return;
    w->slots[slot].at_end = true;
}

int64_t seg_watermark_update(seg_watermark_t *w, int64_t now_ms)
{
    int64_t cand = INT64_MIN;
    if (w->mode == SEG_TIME_WALL) {
        cand = now_ms >= 0 ? now_ms / 1000 : -((-now_ms + 999) / 1000);
    } else {
        bool any_active = false, blocked = false;
        int64_t min_ts = INT64_MAX;
        for (unsigned i = 0; i < w->nslots; i++) {
            slot_t *s = &w->slots[i];
            if (!s->used) continue;
            s->idle = s->at_end && now_ms - s->last_wall_ms >= w->idle_ms;
            if (s->idle) continue;
            any_active = true;
            if (!s->has_ts) blocked = true;   /* new partition: wait for it */
            else if (s->max_ts < min_ts) min_ts = s->max_ts;
        }
        if (any_active) {
            if (!blocked) cand = min_ts - w->lateness;
        } else if (w->any_ts) {
            /* All idle: continue at wall-clock pace from the last record. */
            int64_t elapsed_s = (now_ms - w->last_wall_all_ms) / 1000;
            if (elapsed_s < 0) elapsed_s = 0;
            cand = w->max_ts_all - w->lateness + elapsed_s;
        }
    }
    if (cand > w->wm) w->wm = cand;
    return w->wm;
}

int64_t seg_watermark_get(const seg_watermark_t *w) { return w->wm; }

int64_t seg_watermark_slot_limit(const seg_watermark_t *w, unsigned slot)
{
    if (w->mode == SEG_TIME_WALL || slot >= w->nslots || !w->slots[slot].used)
        return w->wm;
    const slot_t *s = &w->slots[slot];
    if (s->idle) return w->wm;
    if (!s->has_ts) return INT64_MIN;
    int64_t own = s->max_ts - w->lateness;
    return own < w->wm ? own : w->wm;
}

bool seg_watermark_idle(const seg_watermark_t *w, unsigned slot)
{
    return slot < w->nslots && w->slots[slot].used && w->slots[slot].idle;
}
