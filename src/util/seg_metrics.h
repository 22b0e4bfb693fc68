/*
 * seg_metrics: a small Prometheus registry (text exposition format 0.0.4).
 *
 * segd's hot path counts events, rejections and transitions millions of
 * times a second while an HTTP thread renders the registry a few times a
 * minute. So the two sides share nothing but atomics: updating a counter
 * or gauge through its handle is one relaxed atomic operation, never a
 * lock. The registry's structure (which families and series exist) is
 * guarded by a mutex that only registration, removal and rendering take;
 * series come and go at runtime (per-partition lag on assign and revoke),
 * and a removal waits for a render in progress, so the renderer never
 * reads a freed series.
 *
 * A family is a metric name with its help text and type; a series is one
 * label set within it:
 *
 *   # HELP segd_events_rejected_total Input records rejected, by reason.
 *   # TYPE segd_events_rejected_total counter
 *   segd_events_rejected_total{reason="missing_field"} 3
 *
 * Output order is deterministic: families by name; series by label values
 * in the order the labels were given, where decimal-integer values compare
 * as numbers (so partition "2" precedes "10") and sort before other values.
 */
#ifndef SEG_METRICS_H
#define SEG_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct seg_metrics seg_metrics_t;
typedef struct seg_counter seg_counter_t;
typedef struct seg_gauge seg_gauge_t;
typedef struct seg_histogram seg_histogram_t;

/* One label of a series. Both strings are copied at registration. */
typedef struct {
    const char *name;
    const char *value;
} seg_label_t;

seg_metrics_t *seg_metrics_new(void);

/* Frees the registry and every series in it; all handles become invalid.
 * No render may be running (stop the HTTP server first). NULL is a no-op. */
void seg_metrics_destroy(seg_metrics_t *m);

/*
 * Registration. Each returns a handle owned by the registry, valid until
 * the series is removed or the registry destroyed; NULL with errstr on:
 *  - an invalid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or label name
 *    ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"; "le" is reserved for
 *    histograms);
 *  - a name already registered with another type or help text;
 *  - label names that differ from the family's first series (same names in
 *    the same order), or a label set that already exists;
 *  - for histograms, bounds not strictly increasing and finite, or not
 *    the family's bounds.
 * labels may be NULL when nlabels is 0. Label values may be any string
 * (escaped on output).
 */
seg_counter_t *seg_metrics_counter(seg_metrics_t *m, const char *name,
                                   const char *help, const seg_label_t *labels,
                                   size_t nlabels, char *errstr, size_t errstr_size);

seg_gauge_t *seg_metrics_gauge(seg_metrics_t *m, const char *name,
                               const char *help, const seg_label_t *labels,
                               size_t nlabels, char *errstr, size_t errstr_size);

/* bounds are the buckets' inclusive upper bounds, without +Inf (implied). */
seg_histogram_t *seg_metrics_histogram(seg_metrics_t *m, const char *name,
                                       const char *help,
                                       const seg_label_t *labels, size_t nlabels,
                                       const double *bounds, size_t nbounds,
                                       char *errstr, size_t errstr_size);

/* Removes one series and frees it; the handle is invalid afterwards, so
 * every update through it must happen before (in practice: remove it from
 * the thread that updates it). Waits for a render in progress. A family
 * left without series stays registered (and keeps its type and help) but
 * is not rendered. NULL handle is a no-op. */
void seg_counter_remove(seg_metrics_t *m, seg_counter_t *c);
void seg_gauge_remove(seg_metrics_t *m, seg_gauge_t *g);
void seg_histogram_remove(seg_metrics_t *m, seg_histogram_t *h);

/* Hot-path updates: lock-free, relaxed atomics, any thread. */
void seg_counter_add(seg_counter_t *c, uint64_t n);
uint64_t seg_counter_get(const seg_counter_t *c);
void seg_gauge_set(seg_gauge_t *g, int64_t v);
void seg_gauge_add(seg_gauge_t *g, int64_t delta);
int64_t seg_gauge_get(const seg_gauge_t *g);
/* Counts v into the first bucket whose bound is >= v and adds it to the
 * sum. NaN is ignored. */
void seg_histogram_observe(seg_histogram_t *h, double v);

/* A callback run at the start of every render, on the rendering thread and
 * outside the registry lock, to refresh gauges whose value is cheaper to
 * read on demand than to keep current (process RSS). It may update values
 * through handles; it must not register or remove series. One per
 * registry; NULL clears it. */
typedef void (*seg_metrics_collect_fn)(seg_metrics_t *m, void *opaque);
void seg_metrics_set_collect(seg_metrics_t *m, seg_metrics_collect_fn fn,
                             void *opaque);

/* Renders the registry in the Prometheus text format. Returns a malloc'd
 * NUL-terminated string the caller frees, with its length in *len (may be
 * NULL), or NULL on out-of-memory. Each value is read once, atomically,
 * so a counter never goes backwards between renders; a histogram's
 * buckets are cumulative and its _count equals its +Inf bucket. */
char *seg_metrics_render(seg_metrics_t *m, size_t *len);

/* This process's resident set size in bytes (/proc/self/statm), or -1 if
 * it cannot be read. */
int64_t seg_metrics_process_rss(void);

#endif
