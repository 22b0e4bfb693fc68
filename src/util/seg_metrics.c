/*
 * seg_metrics: registry structure, atomics and the text renderer.
 *
 * Each series is allocated as its handle type, which embeds the common
 * struct series first, so the renderer walks one list type and the update
 * functions touch nothing but their atomic. Families and series are sorted
 * linked lists: registration is rare (startup, rebalance) and the series
 * count is small (hundreds), so an O(n) insert keeps the render order
 * fixed at no measurable cost.
 *
 * Families are never freed before the registry, so a series' family
 * pointer (and a histogram's bounds) stays valid without the lock.
 */
#include "util/seg_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM };

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

struct family;

struct series {
    struct series *next;
    struct family *fam;
    char **values;       /* fam->nlabels raw label values */
    char *labels_txt;    /* `a="x",b="y"` escaped, no braces; "" if none */
};

struct seg_counter {
    struct series s;
    atomic_uint_least64_t v;
};

struct seg_gauge {
    struct series s;
    atomic_int_least64_t v;
};

struct seg_histogram {
    struct series s;
    /* The sum is a double kept as its bit pattern: C11 has no atomic
     * floating-point add, so observe() updates it with a CAS loop. */
    atomic_uint_least64_t sum_bits;
    atomic_uint_least64_t counts[];   /* fam->nbounds + 1, last is +Inf */
};

struct family {
    struct family *next;
    char *name;
    char *help;
    enum kind kind;
    size_t nlabels;
    char **label_names;
    double *bounds;       /* histograms only */
    size_t nbounds;
    struct series *series;
};

struct seg_metrics {
    pthread_mutex_t mu;
    struct family *families;
    seg_metrics_collect_fn collect;
    void *collect_opaque;
};

seg_metrics_t *seg_metrics_new(void)
{
    seg_metrics_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void free_strv(char **v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static void series_free(struct series *s)
{
    free_strv(s->values, s->fam->nlabels);
    free(s->labels_txt);
    free(s);
}

static void family_free(struct family *f)
{
    struct series *s = f->series;
    while (s) {
        struct series *next = s->next;
        series_free(s);
        s = next;
    }
    free(f->name);
    free(f->help);
    free_strv(f->label_names, f->nlabels);
    free(f->bounds);
    free(f);
}

void seg_metrics_destroy(seg_metrics_t *m)
{
    if (!m) return;
    struct family *f = m->families;
    while (f) {
        struct family *next = f->next;
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* ---- names, escaping, ordering ---------------------------------------- */

static bool valid_metric_name(const char *s)
{
    if (!s || !*s) return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '_' || c == ':' || (p != s && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

static bool valid_label_name(const char *s)
{
    if (!s || !*s || (s[0] == '_' && s[1] == '_')) return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '_' || (p != s && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

/* The text format's two escapings: label values escape \, " and newline;
 * HELP text escapes \ and newline only. */
static void put_escaped(FILE *f, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\') fputs("\\\\", f);
        else if (*s == '\n') fputs("\\n", f);
        else if (quote && *s == '"') fputs("\\\"", f);
        else fputc(*s, f);
    }
}

static bool all_digits(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

/* A total order in which decimal integers compare by value and precede
 * everything else, so partitions 0..N render in numeric order. Returns 0
 * only for identical strings. */
static int value_cmp(const char *a, const char *b)
{
    bool da = all_digits(a), db = all_digits(b);
    if (da != db) return da ? -1 : 1;
    if (da) {
        size_t la = strlen(a), lb = strlen(b);
        if (la != lb) return la < lb ? -1 : 1;
    }
    return strcmp(a, b);
}

static int series_cmp(char *const *a, char *const *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int c = value_cmp(a[i], b[i]);
        if (c) return c;
    }
    return 0;
}

/* Shortest decimal that reads back as v, so bucket bounds print as the
 * user wrote them ("0.005", not "0.0050000000000000001"); whole numbers
 * below 2^53 print without an exponent ("450000", not "4.5e+05"). Assumes
 * the C locale's decimal point, which segd never changes. */
static void fmt_double(char *buf, size_t size, double v)
{
    if (isnan(v)) { snprintf(buf, size, "NaN"); return; }
    if (isinf(v)) { snprintf(buf, size, v > 0 ? "+Inf" : "-Inf"); return; }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(buf, size, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* ---- registration ----------------------------------------------------- */

static double bits_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t double_to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static struct family *find_family(seg_metrics_t *m, const char *name,
                                  struct family ***link)
{
    struct family **pp = &m->families;
    while (*pp && strcmp((*pp)->name, name) < 0) pp = &(*pp)->next;
    *link = pp;
    return *pp && strcmp((*pp)->name, name) == 0 ? *pp : NULL;
}

static char **copy_label_part(const seg_label_t *labels, size_t n, bool names)
{
    char **v = calloc(n ? n : 1, sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < n; i++) {
        v[i] = strdup(names ? labels[i].name : labels[i].value);
        if (!v[i]) {
            free_strv(v, i);
            return NULL;
        }
    }
    return v;
}

static char *render_labels(const seg_label_t *labels, size_t n)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) return NULL;
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s%s=\"", i ? "," : "", labels[i].name);
        put_escaped(f, labels[i].value, true);
        fputc('"', f);
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static struct family *family_new(const char *name, const char *help,
                                 enum kind kind, const seg_label_t *labels,
                                 size_t nlabels, const double *bounds,
                                 size_t nbounds)
{
    struct family *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->kind = kind;
    f->nlabels = nlabels;
    f->name = strdup(name);
    f->help = strdup(help);
    f->label_names = copy_label_part(labels, nlabels, true);
    if (!f->name || !f->help || !f->label_names) goto fail;
    if (kind == K_HISTOGRAM) {
        f->nbounds = nbounds;
        f->bounds = malloc((nbounds ? nbounds : 1) * sizeof *bounds);
        if (!f->bounds) goto fail;
        if (nbounds) memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
    }
    return f;
fail:
    family_free(f);
    return NULL;
}

/* Checks a new series against its (existing) family. */
static int family_matches(const struct family *f, enum kind kind,
                          const char *help, const seg_label_t *labels,
                          size_t nlabels, const double *bounds, size_t nbounds,
                          char *errstr, size_t errstr_size)
{
    if (f->kind != kind) {
        snprintf(errstr, errstr_size, "metric %s is already registered as a %s",
                 f->name, kind_names[f->kind]);
        return -1;
    }
    if (strcmp(f->help, help) != 0) {
        snprintf(errstr, errstr_size,
                 "metric %s is already registered with other help text", f->name);
        return -1;
    }
    bool same = f->nlabels == nlabels;
    for (size_t i = 0; same && i < nlabels; i++)
        same = strcmp(f->label_names[i], labels[i].name) == 0;
    if (!same) {
        snprintf(errstr, errstr_size,
                 "metric %s: label names differ from its other series", f->name);
        return -1;
    }
    if (kind == K_HISTOGRAM &&
        (f->nbounds != nbounds ||
         (nbounds && memcmp(f->bounds, bounds, nbounds * sizeof *bounds) != 0))) {
        snprintf(errstr, errstr_size,
                 "metric %s: bucket bounds differ from its other series", f->name);
        return -1;
    }
    return 0;
}

static int validate(const char *name, const char *help, enum kind kind,
                    const seg_label_t *labels, size_t nlabels,
                    const double *bounds, size_t nbounds,
                    char *errstr, size_t errstr_size)
{
    if (!valid_metric_name(name)) {
        snprintf(errstr, errstr_size, "invalid metric name '%s'", name ? name : "(null)");
        return -1;
    }
    if (!help) {
        snprintf(errstr, errstr_size, "metric %s: help text is missing", name);
        return -1;
    }
    if (nlabels && !labels) {
        snprintf(errstr, errstr_size, "metric %s: labels missing", name);
        return -1;
    }
    for (size_t i = 0; i < nlabels; i++) {
        if (!valid_label_name(labels[i].name) ||
            (kind == K_HISTOGRAM && strcmp(labels[i].name, "le") == 0)) {
            snprintf(errstr, errstr_size, "metric %s: invalid label name '%s'",
                     name, labels[i].name ? labels[i].name : "(null)");
            return -1;
        }
        if (!labels[i].value) {
            snprintf(errstr, errstr_size, "metric %s: label %s has no value",
                     name, labels[i].name);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(labels[i].name, labels[j].name) == 0) {
                snprintf(errstr, errstr_size, "metric %s: label %s given twice",
                         name, labels[i].name);
                return -1;
            }
        }
    }
    if (kind == K_HISTOGRAM) {
        if (nbounds && !bounds) {
            snprintf(errstr, errstr_size, "metric %s: bucket bounds missing", name);
            return -1;
        }
        for (size_t i = 0; i < nbounds; i++) {
            if (!isfinite(bounds[i]) || (i && !(bounds[i] > bounds[i - 1]))) {
                snprintf(errstr, errstr_size,
                         "metric %s: bucket bounds must be finite and strictly increasing",
                         name);
                return -1;
            }
        }
    }
    return 0;
}

/* Registers one series, allocating size bytes for its handle type (which
 * starts with struct series). Its atomics are initialised before the
 * insert, because a render may read them as soon as the lock is dropped. */
static struct series *add_series(seg_metrics_t *m, enum kind kind,
                                 const char *name, const char *help,
                                 const seg_label_t *labels, size_t nlabels,
                                 const double *bounds, size_t nbounds,
                                 size_t size, char *errstr, size_t errstr_size)
{
    if (validate(name, help, kind, labels, nlabels, bounds, nbounds,
                 errstr, errstr_size) != 0)
        return NULL;

    struct series *s = calloc(1, size);
    if (!s) goto oom;
    s->values = copy_label_part(labels, nlabels, false);
    s->labels_txt = render_labels(labels, nlabels);
    if (!s->values || !s->labels_txt) goto oom;
    if (kind == K_COUNTER) {
        atomic_init(&((struct seg_counter *)s)->v, 0);
    } else if (kind == K_GAUGE) {
        atomic_init(&((struct seg_gauge *)s)->v, 0);
    } else {
        struct seg_histogram *h = (struct seg_histogram *)s;
        atomic_init(&h->sum_bits, double_to_bits(0.0));
        for (size_t i = 0; i <= nbounds; i++) atomic_init(&h->counts[i], 0);
    }

    pthread_mutex_lock(&m->mu);
    struct family **flink;
    struct family *f = find_family(m, name, &flink);
    if (f) {
        if (family_matches(f, kind, help, labels, nlabels, bounds, nbounds,
                           errstr, errstr_size) != 0)
            goto fail_locked;
    } else {
        f = family_new(name, help, kind, labels, nlabels, bounds, nbounds);
        if (!f) {
            snprintf(errstr, errstr_size, "out of memory");
            goto fail_locked;
        }
        f->next = *flink;
        *flink = f;
    }
    s->fam = f;

    struct series **pp = &f->series;
    int c = 1;
    while (*pp && (c = series_cmp((*pp)->values, s->values, nlabels)) < 0)
        pp = &(*pp)->next;
    if (*pp && c == 0) {
        snprintf(errstr, errstr_size, "metric %s{%s} is already registered",
                 name, s->labels_txt);
        goto fail_locked;
    }
    s->next = *pp;
    *pp = s;
    pthread_mutex_unlock(&m->mu);
    return s;

fail_locked:
    pthread_mutex_unlock(&m->mu);
    goto fail;
oom:
    snprintf(errstr, errstr_size, "out of memory");
fail:
    if (s) {
        free_strv(s->values, nlabels);
        free(s->labels_txt);
        free(s);
    }
    return NULL;
}

seg_counter_t *seg_metrics_counter(seg_metrics_t *m, const char *name,
                                   const char *help, const seg_label_t *labels,
                                   size_t nlabels, char *errstr, size_t errstr_size)
{
    struct series *s = add_series(m, K_COUNTER, name, help, labels, nlabels,
                                  NULL, 0, sizeof(struct seg_counter),
                                  errstr, errstr_size);
    return s ? (seg_counter_t *)s : NULL;
}

seg_gauge_t *seg_metrics_gauge(seg_metrics_t *m, const char *name,
                               const char *help, const seg_label_t *labels,
                               size_t nlabels, char *errstr, size_t errstr_size)
{
    struct series *s = add_series(m, K_GAUGE, name, help, labels, nlabels,
                                  NULL, 0, sizeof(struct seg_gauge),
                                  errstr, errstr_size);
    return s ? (seg_gauge_t *)s : NULL;
}

seg_histogram_t *seg_metrics_histogram(seg_metrics_t *m, const char *name,
                                       const char *help,
                                       const seg_label_t *labels, size_t nlabels,
                                       const double *bounds, size_t nbounds,
                                       char *errstr, size_t errstr_size)
{
    size_t size = sizeof(struct seg_histogram) +
                  (nbounds + 1) * sizeof(atomic_uint_least64_t);
    struct series *s = add_series(m, K_HISTOGRAM, name, help, labels, nlabels,
                                  bounds, nbounds, size, errstr, errstr_size);
    return s ? (seg_histogram_t *)s : NULL;
}

static void remove_series(seg_metrics_t *m, struct series *s)
{
    pthread_mutex_lock(&m->mu);
    for (struct series **pp = &s->fam->series; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
    series_free(s);
}

void seg_counter_remove(seg_metrics_t *m, seg_counter_t *c)
{
    if (c) remove_series(m, &c->s);
}

void seg_gauge_remove(seg_metrics_t *m, seg_gauge_t *g)
{
    if (g) remove_series(m, &g->s);
}

void seg_histogram_remove(seg_metrics_t *m, seg_histogram_t *h)
{
    if (h) remove_series(m, &h->s);
}

/* ---- updates ---------------------------------------------------------- */

void seg_counter_add(seg_counter_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

uint64_t seg_counter_get(const seg_counter_t *c)
{
    return atomic_load_explicit(&((seg_counter_t *)c)->v, memory_order_relaxed);
}

void seg_gauge_set(seg_gauge_t *g, int64_t v)
{
    atomic_store_explicit(&g->v, v, memory_order_relaxed);
}

void seg_gauge_add(seg_gauge_t *g, int64_t delta)
{
    atomic_fetch_add_explicit(&g->v, delta, memory_order_relaxed);
}

int64_t seg_gauge_get(const seg_gauge_t *g)
{
    return atomic_load_explicit(&((seg_gauge_t *)g)->v, memory_order_relaxed);
}

void seg_histogram_observe(seg_histogram_t *h, double v)
{
    if (isnan(v)) return;
    const struct family *f = h->s.fam;
    /* Few buckets (a dozen), so a linear scan beats a binary search. */
    size_t i = 0;
    while (i < f->nbounds && v > f->bounds[i]) i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(
        &h->sum_bits, &old, double_to_bits(bits_to_double(old) + v),
        memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* ---- rendering -------------------------------------------------------- */

void seg_metrics_set_collect(seg_metrics_t *m, seg_metrics_collect_fn fn,
                             void *opaque)
{
    pthread_mutex_lock(&m->mu);
    m->collect = fn;
    m->collect_opaque = opaque;
    pthread_mutex_unlock(&m->mu);
}

static void put_sample(FILE *f, const char *name, const char *suffix,
                       const char *labels, const char *extra, const char *value)
{
    fputs(name, f);
    fputs(suffix, f);
    if (*labels || *extra) {
        fputc('{', f);
        fputs(labels, f);
        if (*labels && *extra) fputc(',', f);
        fputs(extra, f);
        fputc('}', f);
    }
    fputc(' ', f);
    fputs(value, f);
    fputc('\n', f);
}

static void render_histogram(FILE *out, const struct family *f,
                             struct seg_histogram *h)
{
    char val[32], le[48], num[32];
    uint64_t cum = 0;
    for (size_t i = 0; i <= f->nbounds; i++) {
        /* Each bucket is loaded once and the running total is what gets
         * printed, so buckets are cumulative and _count matches +Inf even
         * while observe() runs concurrently. */
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < f->nbounds) fmt_double(num, sizeof num, f->bounds[i]);
        else snprintf(num, sizeof num, "+Inf");
        snprintf(le, sizeof le, "le=\"%s\"", num);
        snprintf(val, sizeof val, "%llu", (unsigned long long)cum);
        put_sample(out, f->name, "_bucket", h->s.labels_txt, le, val);
    }
    fmt_double(val, sizeof val,
               bits_to_double(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
    put_sample(out, f->name, "_sum", h->s.labels_txt, "", val);
    snprintf(val, sizeof val, "%llu", (unsigned long long)cum);
    put_sample(out, f->name, "_count", h->s.labels_txt, "", val);
}

char *seg_metrics_render(seg_metrics_t *m, size_t *len)
{
    pthread_mutex_lock(&m->mu);
    seg_metrics_collect_fn collect = m->collect;
    void *opaque = m->collect_opaque;
    pthread_mutex_unlock(&m->mu);
    if (collect) collect(m, opaque);

    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);
    if (!out) return NULL;

    pthread_mutex_lock(&m->mu);
    for (const struct family *f = m->families; f; f = f->next) {
        if (!f->series) continue;
        fprintf(out, "# HELP %s ", f->name);
        put_escaped(out, f->help, false);
        fprintf(out, "\n# TYPE %s %s\n", f->name, kind_names[f->kind]);
        for (struct series *s = f->series; s; s = s->next) {
            char val[32];
            switch (f->kind) {
            case K_COUNTER:
                snprintf(val, sizeof val, "%llu", (unsigned long long)
                         atomic_load_explicit(&((struct seg_counter *)s)->v,
                                              memory_order_relaxed));
                put_sample(out, f->name, "", s->labels_txt, "", val);
                break;
            case K_GAUGE:
                snprintf(val, sizeof val, "%lld", (long long)
                         atomic_load_explicit(&((struct seg_gauge *)s)->v,
                                              memory_order_relaxed));
                put_sample(out, f->name, "", s->labels_txt, "", val);
                break;
            case K_HISTOGRAM:
                render_histogram(out, f, (struct seg_histogram *)s);
                break;
            }
        }
    }
    pthread_mutex_unlock(&m->mu);

    if (ferror(out)) {
        fclose(out);
        free(buf);
        return NULL;
    }
    if (fclose(out) != 0) {
        free(buf);
        return NULL;
    }
    if (len) *len = size;
    return buf;
}

int64_t seg_metrics_process_rss(void)
{
    /* statm is one short line of page counts; the second is resident. */
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f) return -1;
    unsigned long long size_pages, rss_pages;
    int n = fscanf(f, "%llu %llu", &size_pages, &rss_pages);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (n != 2 || page <= 0) return -1;
    return (int64_t)(rss_pages * (unsigned long long)page);
}
