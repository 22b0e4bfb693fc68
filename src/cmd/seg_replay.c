/*
 * seg_replay: the replay pipeline and its summary.
 *
 * Output: transitions are small and numerous (~2.8 per event), so each is
 * encoded straight into a 256 KiB buffer owned by the sink and handed to
 * stdio in large blocks. One write(2) per line would cost more than the
 * engine, and even one fwrite per line cost ~150 instructions of locking
 * and bookkeeping per transition (callgrind).
 */
#include "cmd/seg_replay.h"
#include "cmd/seg_custtable.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "event/seg_decode.h"
#include "io/seg_dlq.h"
#include "io/seg_reader.h"
#include "publish/seg_tjson.h"
#include "segment/seg_engine.h"
#include "segment/seg_sizes.h"
#include "util/seg_clock.h"
#include "util/seg_ts.h"

#define SINK_BUF (256 * 1024)

/* Read-ahead: events decoded ahead of the one being folded, and how far
 * ahead of it the second and third prefetch stages run (the first runs
 * when an event is decoded, AHEAD - 1 events ahead at most). Tuned with
 * bench/run.sh at 1M customers. */
#define AHEAD  16
#define STAGE1 8
#define STAGE2 4

/* Room per ring slot for the attrs the rules read: one member per key a
 * rule reads (keys are at most 128 bytes; longer strings than rules keep
 * are captured without their bytes), so nothing a rule needs is dropped. */
#define ATTR_KEY_MAX 128
#define ATTR_STR_MAX 1024   /* what rules keep of an attribute string (docs/rules.md) */

typedef struct ahead {
    seg_event_t    ev;
    seg_prefetch_t pf;
    char           id[SEG_CUSTOMER_ID_MAX];
    seg_attr_t    *attrs;        /* n_attrs of the rule set */
    char          *attr_bytes;   /* n_attrs * (ATTR_KEY_MAX + ATTR_STR_MAX) */
} ahead_t;

typedef struct sink {
    FILE     *out;
    bool      features;
    int       failed;
    int       err;
    char     *buf;        /* SINK_BUF bytes of encoded lines not yet written */
    size_t    used;
    uint64_t *by_rule;    /* transitions per user rule */
    seg_sizes_t *sizes;   /* segment sizes, counted from the same transitions */
} sink_t;

static int sink_fail(sink_t *s)
{
    if (!s->failed) s->err = errno;
    s->failed = 1;
    return -1;
}

/* Writes the buffered lines. With a file descriptor behind the stream
 * they go straight to write(2) (after whatever stdio still holds), which
 * saves copying every byte through stdio's own buffer; otherwise (a memory
 * stream) through fwrite. Returns 0, or -1 (failed/err set). */
static int sink_flush(sink_t *s)
{
    if (s->used == 0) return 0;
    size_t n = s->used;
    s->used = 0;
    int fd = fileno(s->out);
    if (fd < 0) return fwrite(s->buf, 1, n, s->out) == n ? 0 : sink_fail(s);
    if (fflush(s->out) != 0) return sink_fail(s);
    for (size_t done = 0; done < n;) {
        ssize_t w = write(fd, s->buf + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return sink_fail(s);
        }
        done += (size_t)w;
    }
    return 0;
}

static int want_attr(void *opaque, const char *key, size_t len)
{
    return seg_ruleset_wants_attr(opaque, key, len);
}

static int emit_line(void *opaque, const seg_transition_t *t)
{
    sink_t *s = opaque;
    if (SINK_BUF - s->used < SEG_TJSON_MAX + 1 && sink_flush(s) != 0) return -1;
    char *line = s->buf + s->used;
    if ((unsigned)t->dim >= SEG_DIM__COUNT) s->by_rule[t->dim - SEG_DIM__COUNT]++;
    (void)seg_sizes_transition(s->sizes, t);   /* on failure the summary says inexact */
    size_t n = seg_tjson_encode(t, s->features, line);
    line[n++] = '\n';
    s->used += n;
    return 0;
}

typedef struct counts {
    uint64_t read, rejected, blank;
    uint64_t attrs_dropped;   /* attrs a rule reads that did not fit a ring slot */
    uint64_t by_reason[SEG_REJ__COUNT];
} counts_t;

static void summary(const seg_replay_opts_t *o, const seg_cfg_t *cfg,
                    const counts_t *c, const seg_engine_stats_t *st, const uint64_t *by_rule,
                    double wall, double cpu, long rss_kb, int64_t end_time, seg_sizes_t *sizes)
{
    FILE *e = o->err;
    char endbuf[SEG_TS_BUFSZ] = "-";
    if (end_time != INT64_MIN) seg_ts_format(end_time, endbuf);
    fprintf(e, "segd replay summary (%s, %s)\n",
            strcmp(o->input, "-") == 0 ? "stdin" : o->input,
            cfg->input.format == SEG_FMT_MSGPACK ? "msgpack" : "json");
    fprintf(e, "  events read        %llu\n", (unsigned long long)c->read);
    fprintf(e, "  events folded      %llu\n", (unsigned long long)st->events_folded);
    fprintf(e, "  events rejected    %llu\n", (unsigned long long)c->rejected);
    for (int r = 1; r < SEG_REJ__COUNT; r++)
        if (c->by_reason[r])
            fprintf(e, "    %-24s %llu\n", seg_reject_name((seg_reject_t)r),
                    (unsigned long long)c->by_reason[r]);
    if (c->blank) fprintf(e, "  blank lines        %llu (skipped)\n", (unsigned long long)c->blank);
    fprintf(e, "  late events        %llu\n", (unsigned long long)st->late_events);
    fprintf(e, "  customers          %u\n", st->customers);
    fprintf(e, "  transitions        %llu\n", (unsigned long long)st->transitions);
    for (int d = 0; d < SEG_DIM__COUNT; d++)
        fprintf(e, "    %-24s %llu\n", seg_dim_name((seg_dim_t)d),
                (unsigned long long)st->transitions_by_dim[d]);
    for (uint32_t r = 0; o->rules && r < seg_ruleset_count(o->rules); r++)
        fprintf(e, "    %-24s %llu\n", seg_ruleset_name(o->rules, r),
                (unsigned long long)by_rule[r]);
    fprintf(e, "  deadlines fired    %llu\n", (unsigned long long)st->deadlines_fired);
    fprintf(e, "  time reached       %s\n", endbuf);
    fprintf(e, "  wall time          %.3f s\n", wall);
    fprintf(e, "  events/s           %.0f\n", wall > 0 ? c->read / wall : 0.0);
    fprintf(e, "  state bytes        %zu (%.1f per customer)\n", st->state_bytes,
            st->customers ? (double)st->state_bytes / st->customers : 0.0);
    fprintf(e, "  max RSS            %ld KiB\n", rss_kb);
    fprintf(e, "  cpu time           %.3f s\n", cpu);
    /* Last, as operators read it: where the customers ended up. */
    seg_sizes_print(sizes, e);
}

static int write_summary_json(const char *path, const seg_cfg_t *cfg,
                              const seg_ruleset_t *rules, const uint64_t *by_rule,
                              const counts_t *c, const seg_engine_stats_t *st,
                              double wall, double cpu, long rss_kb, seg_sizes_t *sizes,
                              char *errstr, size_t errstr_size)
{
    cJSON *o = cJSON_CreateObject(), *rej = NULL, *dims = NULL;
    if (!o) goto oom;
    cJSON_AddStringToObject(o, "format", cfg->input.format == SEG_FMT_MSGPACK ? "msgpack" : "json");
    cJSON_AddNumberToObject(o, "events_read", (double)c->read);
    cJSON_AddNumberToObject(o, "events_folded", (double)st->events_folded);
    cJSON_AddNumberToObject(o, "rejected", (double)c->rejected);
    rej = cJSON_AddObjectToObject(o, "rejected_by_reason");
    for (int r = 1; rej && r < SEG_REJ__COUNT; r++)
        if (c->by_reason[r])
            cJSON_AddNumberToObject(rej, seg_reject_name((seg_reject_t)r), (double)c->by_reason[r]);
    cJSON_AddNumberToObject(o, "blank_lines", (double)c->blank);
    cJSON_AddNumberToObject(o, "late_events", (double)st->late_events);
    cJSON_AddNumberToObject(o, "customers", (double)st->customers);
    cJSON_AddNumberToObject(o, "transitions", (double)st->transitions);
    dims = cJSON_AddObjectToObject(o, "transitions_by_dimension");
    for (int d = 0; dims && d < SEG_DIM__COUNT; d++)
        cJSON_AddNumberToObject(dims, seg_dim_name((seg_dim_t)d), (double)st->transitions_by_dim[d]);
    for (uint32_t r = 0; dims && rules && r < seg_ruleset_count(rules); r++)
        cJSON_AddNumberToObject(dims, seg_ruleset_name(rules, r), (double)by_rule[r]);
    cJSON_AddNumberToObject(o, "deadlines_fired", (double)st->deadlines_fired);
    cJSON_AddNumberToObject(o, "wall_seconds", wall);
    cJSON_AddNumberToObject(o, "cpu_seconds", cpu);
    cJSON_AddNumberToObject(o, "events_per_second", wall > 0 ? c->read / wall : 0.0);
    cJSON_AddNumberToObject(o, "state_bytes", (double)st->state_bytes);
    cJSON_AddNumberToObject(o, "max_rss_bytes", (double)rss_kb * 1024.0);
    char *seg_text = seg_sizes_json(sizes, NULL);
    cJSON *segs = seg_text ? cJSON_Parse(seg_text) : NULL;
    free(seg_text);
    if (!segs) goto oom;
    cJSON_AddItemToObject(o, "segments", segs);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) goto oom;
    FILE *f = fopen(path, "w");
    int ok = f && fputs(text, f) != EOF && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0) ok = 0;
    free(text);
    if (!ok) {
        snprintf(errstr, errstr_size, "cannot write summary '%s': %s", path, strerror(errno));
        return -1;
    }
    return 0;
oom:
    cJSON_Delete(o);
    snprintf(errstr, errstr_size, "out of memory writing the summary");
    return -1;
}

int seg_replay_run(const seg_cfg_t *cfg, const seg_replay_opts_t *o,
                   char *errstr, size_t errstr_size)
{
    int rc = -1;
    double wall0 = seg_clock_s(CLOCK_MONOTONIC), cpu0 = seg_clock_s(CLOCK_PROCESS_CPUTIME_ID);
    sink_t sink = { .out = o->out, .features = cfg->output.features };
    counts_t c;
    memset(&c, 0, sizeof c);
    size_t n_attrs = o->rules ? seg_ruleset_attr_count(o->rules) : 0;
    bool want_attrs = n_attrs > 0;
    seg_reader_t *rd = NULL;
    seg_decoder_t *dec = NULL;
    seg_engine_t *eng = NULL;
    seg_dlq_t *dlq = NULL;
    char why[256];
    ahead_t *ring = NULL;
    unsigned ring_head = 0, ring_n = 0;

    sink.buf = malloc(SINK_BUF);
    ring = malloc(AHEAD * sizeof *ring);
    sink.by_rule = calloc(o->rules ? seg_ruleset_count(o->rules) + 1 : 1, sizeof *sink.by_rule);
    sink.sizes = seg_sizes_new();
    if (ring) memset(ring, 0, AHEAD * sizeof *ring);
    for (unsigned i = 0; ring && want_attrs && i < AHEAD; i++) {
        ring[i].attrs = malloc(n_attrs * sizeof *ring[i].attrs);
        ring[i].attr_bytes = malloc(n_attrs * (ATTR_KEY_MAX + ATTR_STR_MAX));
        if (!ring[i].attrs || !ring[i].attr_bytes) want_attrs = false, n_attrs = SIZE_MAX;
    }
    if (!sink.buf || !ring || !sink.by_rule || !sink.sizes || n_attrs == SIZE_MAX ||
        seg_sizes_set_dims(sink.sizes, &cfg->seg, o->rules) != 0) {
        snprintf(errstr, errstr_size, "out of memory creating the output buffer");
        goto out;
    }
    rd = seg_reader_open(o->input, cfg->input.format, (size_t)cfg->input.max_record_bytes,
                         errstr, errstr_size);
    if (!rd) goto out;
    dec = seg_decoder_new();
    if (!dec) {
        snprintf(errstr, errstr_size, "out of memory creating the decoder");
        goto out;
    }
    eng = seg_engine_new(&cfg->seg, emit_line, &sink, errstr, errstr_size);
    if (!eng || seg_engine_set_rules(eng, o->rules, errstr, errstr_size) != 0) goto out;
    if (o->dlq) {
        dlq = seg_dlq_open(o->dlq, errstr, errstr_size);
        if (!dlq) goto out;
    }

    /* Decode ahead into a ring of AHEAD events and prefetch each one's
     * state in three stages (see seg_engine_prefetch) before folding it.
     * Events are folded in input order, exactly as one by one; a rejected
     * record goes to the DLQ when it is read, up to AHEAD events before
     * the good records around it are folded. */
    for (bool eof = false;;) {
        while (!eof && ring_n < AHEAD) {
            seg_record_t rec;
            int got = seg_reader_next(rd, &rec, errstr, errstr_size);
            if (got < 0) goto out;
            if (got == 0) {
                eof = true;
                break;
            }
            c.read++;
            ahead_t *a = &ring[(ring_head + ring_n) & (AHEAD - 1)];
            seg_reject_t rej = rec.reject;
            const char *reason_text = rec.why;
            if (rej == SEG_REJ_NONE) {
                why[0] = '\0';
                if (cfg->input.format == SEG_FMT_MSGPACK)   /* the reader delimited it */
                    rej = seg_decode_msgpack_delimited(dec, rec.data, rec.len, &a->ev,
                                                       why, sizeof why);
                else
                    rej = seg_decode_json(dec, rec.data, rec.len, &a->ev, why, sizeof why);
                reason_text = why;
            }
            if (rej != SEG_REJ_NONE) {
                c.rejected++;
                c.by_reason[rej < SEG_REJ__COUNT ? rej : 0]++;
                if (dlq && seg_dlq_write(dlq, rej, reason_text, seg_reader_name(rd), rec.line,
                                         rec.offset, rec.data, rec.len, errstr, errstr_size) != 0)
                    goto out;
                continue;
            }
            /* The decoder's strings live until its next call: keep the id. */
            memcpy(a->id, a->ev.customer_id, a->ev.customer_id_len);
            a->ev.customer_id = a->id;
            a->ev.event_id = NULL;
            a->ev.event_id_len = 0;
            /* attrs too, as far as the rules read them */
            if (a->ev.attrs.fmt != SEG_ATTRS_NONE) {
                if (want_attrs)
                    c.attrs_dropped += seg_attrs_capture(&a->ev.attrs, want_attr, (void *)o->rules,
                                                         ATTR_STR_MAX, a->attrs, n_attrs,
                                                         a->attr_bytes,
                                                         n_attrs * (ATTR_KEY_MAX + ATTR_STR_MAX));
                else
                    a->ev.attrs.fmt = SEG_ATTRS_NONE;
            }
            seg_engine_prefetch(eng, a->ev.customer_id, a->ev.customer_id_len, &a->pf, 0);
            ring_n++;
        }
        if (ring_n == 0) break;
        if (ring_n > STAGE1) {
            ahead_t *a = &ring[(ring_head + STAGE1) & (AHEAD - 1)];
            seg_engine_prefetch(eng, a->ev.customer_id, a->ev.customer_id_len, &a->pf, 1);
        }
        if (ring_n > STAGE2) {
            ahead_t *a = &ring[(ring_head + STAGE2) & (AHEAD - 1)];
            seg_engine_prefetch(eng, a->ev.customer_id, a->ev.customer_id_len, &a->pf, 2);
        }
        ahead_t *a = &ring[ring_head];
        ring_head = (ring_head + 1) & (AHEAD - 1);
        ring_n--;
        if (seg_engine_fold(eng, &a->ev, errstr, errstr_size) != 0) goto out;
    }

    /* Time stops at the largest ts seen, or at --until if that is later
     * (see docs/segments.md for why never earlier). */
    int64_t end = seg_engine_max_ts(eng);
    if (o->has_until && o->until > end) end = o->until;
    if (end != INT64_MIN && seg_engine_advance(eng, end, errstr, errstr_size) != 0) goto out;
    if (end != INT64_MIN) seg_sizes_advance(sink.sizes, end);
    if (sink_flush(&sink) != 0) goto out;
    if (fflush(o->out) != 0) {
        snprintf(errstr, errstr_size, "cannot write transitions: %s", strerror(errno));
        goto out;
    }
    if (dlq) {
        int drc = seg_dlq_close(dlq, errstr, errstr_size);
        dlq = NULL;
        if (drc != 0) goto out;
    }

    c.blank = seg_reader_blank_lines(rd);
    seg_engine_stats_t st;
    seg_engine_stats(eng, &st);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double wall = seg_clock_s(CLOCK_MONOTONIC) - wall0;
    double cpu = seg_clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    if (c.attrs_dropped) {
        /* Cannot happen with keys of at most 128 bytes (the rules' own
         * limit); said loudly rather than replaying without them. */
        snprintf(errstr, errstr_size, "%llu attributes that rules read could not be kept",
                 (unsigned long long)c.attrs_dropped);
        goto out;
    }
    if (o->customers_out) {
        FILE *tf = fopen(o->customers_out, "w");
        if (!tf) {
            snprintf(errstr, errstr_size, "cannot open %s: %s", o->customers_out, strerror(errno));
            goto out;
        }
        long n = seg_custtable_write(eng, cfg, o->rules, end, (seg_table_fmt_t)o->customers_fmt, tf,
                                     errstr, errstr_size);
        if (fclose(tf) != 0 && n >= 0) {
            snprintf(errstr, errstr_size, "cannot write %s: %s", o->customers_out, strerror(errno));
            n = -1;
        }
        if (n < 0) goto out;
    }
    summary(o, cfg, &c, &st, sink.by_rule, wall, cpu, ru.ru_maxrss, end, sink.sizes);
    if (o->summary_json &&
        write_summary_json(o->summary_json, cfg, o->rules, sink.by_rule, &c, &st, wall, cpu,
                           ru.ru_maxrss, sink.sizes, errstr, errstr_size) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0 && sink.failed)
        snprintf(errstr, errstr_size, "cannot write transitions: %s", strerror(sink.err));
    else if (rc != 0 && sink.buf)
        (void)sink_flush(&sink);   /* what was emitted before the error, as stdio would */
    if (dlq) {
        char ignored[64];
        seg_dlq_close(dlq, ignored, sizeof ignored);
    }
    seg_engine_destroy(eng);
    free(sink.buf);
    free(sink.by_rule);
    seg_sizes_destroy(sink.sizes);
    for (unsigned i = 0; ring && i < AHEAD; i++) {
        free(ring[i].attrs);
        free(ring[i].attr_bytes);
    }
    free(ring);
    seg_decoder_destroy(dec);
    seg_reader_close(rd);
    return rc;
}
