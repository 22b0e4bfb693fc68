/*
 * seg_replay: the replay pipeline and its summary.
 *
 * Three threads on two cores: a decoder thread reads and decodes records
 * (and sends the rejected ones to the DLQ), the calling thread folds the
 * events into the engine, and a writer thread encodes the transitions,
 * counts them into the segment sizes and writes them. Decoding a JSON
 * record costs about as much as folding it, and encoding, counting and
 * writing its ~2.8 transitions about a quarter of the fold, so the fold
 * thread gets a core of its own while the decoder and the writer share
 * the other (docs/benchmarks.md); the engine stays owned by one thread
 * (docs/STYLE: one thread owns the state).
 *
 * Order: events travel to the fold in batches of BATCH through a ring of
 * BATCHES (seg_batchq), in input order, and transitions to the writer,
 * copied whole (seg_tcopy), in batches through a second ring, in emit
 * order. So the output is byte for byte what one thread produces: the
 * fold sees the same events in the same order, and one thread writes the
 * transitions in the order the engine emitted them.
 *
 * Output: transitions are small and numerous, so each is encoded straight
 * into a 256 KiB buffer owned by the sink and handed to stdio in large
 * blocks. One write(2) per line would cost more than the engine, and even
 * one fwrite per line cost ~150 instructions of locking and bookkeeping
 * per transition (callgrind).
 */
#include "cmd/seg_replay.h"
#include "cmd/seg_custtable.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "event/seg_decode.h"
#include "io/seg_dlq.h"
#include "io/seg_reader.h"
#include "publish/seg_tcopy.h"
#include "publish/seg_tjson.h"
#include "segment/seg_engine.h"
#include "segment/seg_sizes.h"
#include "util/seg_batchq.h"
#include "util/seg_clock.h"
#include "util/seg_ts.h"

#define SINK_BUF (256 * 1024)

/* Fold thread -> writer thread: transition copies in batches of at least
 * OUT_BYTES (~600 built-in transitions, ~200 events), OUTS in flight, so
 * a hand-over per batch costs nothing per transition. A batch has room
 * for one more copy of any size past OUT_BYTES. */
#define OUT_BYTES (64 * 1024)
#define OUT_CAP   (OUT_BYTES + SEG_TCOPY_MAX)
#define OUTS      16

/* Decoder thread -> fold thread: events in batches of BATCH, BATCHES in
 * flight (the fold holds at most two, the one it folds and the next for
 * read-ahead). A batch hand-over costs two mutex operations per side, so
 * per event it is nothing; 16 x 256 events (~1.2 MB) keep either side
 * busy while the other waits for a core on a shared machine. */
#define BATCH   256
#define BATCHES 16

/* Read-ahead in the fold: each event's state is prefetched in four
 * stages (see seg_engine_prefetch) before it is folded: AHEAD - 1 events
 * ahead (stage 0), STAGE1 ahead, STAGE2 ahead, STAGE3 ahead (the rule
 * windows, with user rules). Tuned with the bench at 1M customers. */
#define AHEAD  16
#define STAGE1 8
#define STAGE2 4
#define STAGE3 2

/* Room for the attrs the rules read: one member per key a rule reads
 * (keys are at most 128 bytes; longer strings than rules keep are
 * captured without their bytes), so nothing a rule needs is dropped. A
 * batch's attr storage holds at least one event's worth; when an event
 * does not fit what is left, the batch is handed over early. */
#define ATTR_KEY_MAX 128
#define ATTR_STR_MAX 1024   /* what rules keep of an attribute string (docs/rules.md) */
#define BATCH_ATTR_BYTES (64 * 1024)

typedef struct slot {
    seg_event_t    ev;
    seg_prefetch_t pf;
    char           id[SEG_CUSTOMER_ID_MAX];
} slot_t;

typedef struct batch {
    slot_t      ev[BATCH];
    unsigned    n;
    seg_attr_t *attrs;           /* attrs_cap members for the batch's events */
    size_t      attrs_cap, attrs_used;
    char       *attr_bytes;      /* their keys and strings */
    size_t      bytes_cap, bytes_used;
} batch_t;

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

/* Fold thread -> writer thread. The fold thread fills `cur` and hands it
 * over; the writer thread owns the sink until it is joined. */
typedef struct outbatch {
    char    *buf;             /* OUT_CAP bytes of seg_tcopy copies */
    size_t   used;
    unsigned n;
} outbatch_t;

typedef struct out {
    seg_batchq_t *q;
    outbatch_t   *b;          /* OUTS batches */
    outbatch_t   *cur;        /* the batch the fold thread fills, or NULL */
    unsigned      max_n;      /* copies per batch: unbounded but in tests */
    bool          features;
    bool          too_big;    /* a copy did not fit an empty batch */
    sink_t       *sink;
    double        write_cpu;  /* the writer thread's CPU seconds */
    bool          running;
    pthread_t     thread;
} out_t;

static void out_hand(out_t *o)
{
    seg_batchq_put_full(o->q, (int)(o->cur - o->b));
    o->cur = NULL;
}

/* The engine's emitter, on the fold thread: copies t into the batch being
 * filled and hands it to the writer once full. -1 once the writer thread
 * failed (the sink says why) or, never for what the engine makes, when a
 * copy does not fit an empty batch (too_big). */
static int emit_copy(void *opaque, const seg_transition_t *t)
{
    out_t *o = opaque;
    for (int tries = 0; tries < 2; tries++) {
        if (!o->cur) {
            int i = seg_batchq_get_free(o->q);
            if (i < 0) return -1;
            o->cur = &o->b[i];
            o->cur->used = 0;
            o->cur->n = 0;
        }
        outbatch_t *b = o->cur;
        size_t n = seg_tcopy_put(t, o->features, b->buf + b->used, OUT_CAP - b->used);
        if (n) {
            b->used += n;
            if (++b->n >= o->max_n || b->used >= OUT_BYTES) out_hand(o);
            return 0;
        }
        if (b->n == 0) break;
        out_hand(o);
    }
    o->too_big = true;
    return -1;
}

/* The writer thread: encodes, counts and writes every transition handed
 * over, in order, then flushes. On a write error it cancels the ring, so
 * the fold thread's next hand-over fails and replay stops. */
static void *write_main(void *arg)
{
    out_t *o = arg;
    int i;
    while ((i = seg_batchq_get_full(o->q)) >= 0) {
        const outbatch_t *b = &o->b[i];
        for (size_t off = 0; off < b->used;) {
            seg_transition_t t;
            off += seg_tcopy_get(b->buf + off, &t);
            if (emit_line(o->sink, &t) != 0) goto fail;
        }
        seg_batchq_put_free(o->q, i);
    }
    if (sink_flush(o->sink) != 0) goto fail;
    o->write_cpu = seg_clock_s(CLOCK_THREAD_CPUTIME_ID);
    return NULL;
fail:
    seg_batchq_cancel(o->q);
    o->write_cpu = seg_clock_s(CLOCK_THREAD_CPUTIME_ID);
    return NULL;
}

/* Hands over what the fold thread still holds and waits until the writer
 * thread wrote everything (or failed). Safe to call twice. */
static void out_close(out_t *o)
{
    if (!o->running) return;
    if (o->cur) out_hand(o);
    seg_batchq_finish(o->q);
    pthread_join(o->thread, NULL);
    o->running = false;
}

typedef struct counts {
    uint64_t read, rejected, blank;
    double   decode_cpu, fold_cpu, write_cpu;   /* CPU seconds of each thread */
    uint64_t attrs_dropped;   /* attrs a rule reads that did not fit a batch */
    uint64_t by_reason[SEG_REJ__COUNT];
} counts_t;

/* What the two threads share. The decoder thread owns rd, dec, dlq and c
 * until it ends (the fold thread reads c after joining it); batches
 * belong to whichever side seg_batchq gave them to. */
typedef struct pipe {
    const seg_cfg_t         *cfg;
    const seg_replay_opts_t *o;
    seg_reader_t            *rd;
    seg_decoder_t           *dec;
    seg_dlq_t               *dlq;
    seg_batchq_t            *q;
    batch_t                 *batches;
    size_t                   n_attrs;      /* keys the rules read; 0: attrs unused */
    unsigned                 batch;        /* events per batch, BATCH but in tests */
    counts_t                 c;
    int                      failed;       /* the decoder thread stopped on an error */
    char                     err[512];
} pipe_t;

/* The next free batch, emptied, or NULL when the fold thread stopped. */
static batch_t *next_free(pipe_t *p)
{
    int i = seg_batchq_get_free(p->q);
    if (i < 0) return NULL;
    batch_t *b = &p->batches[i];
    b->n = 0;
    b->attrs_used = b->bytes_used = 0;
    return b;
}

/* Keeps what the rules read of ev's attrs in b (the decoder's memory is
 * reused by the next record). Returns 0, or -1 if b has too little room
 * left: then ev->attrs is as it was, and the caller retries in an empty
 * batch, which always has room for one event. */
static int keep_attrs(pipe_t *p, batch_t *b, seg_event_t *ev)
{
    if (ev->attrs.fmt == SEG_ATTRS_NONE) return 0;
    if (p->n_attrs == 0) {
        ev->attrs.fmt = SEG_ATTRS_NONE;
        return 0;
    }
    seg_attrs_t saved = ev->attrs;
    size_t max = p->n_attrs < b->attrs_cap - b->attrs_used ? p->n_attrs
                                                           : b->attrs_cap - b->attrs_used;
    size_t dropped = seg_attrs_capture(&ev->attrs, want_attr, (void *)p->o->rules, ATTR_STR_MAX,
                                       b->attrs + b->attrs_used, max,
                                       b->attr_bytes + b->bytes_used,
                                       b->bytes_cap - b->bytes_used);
    if (dropped && b->n > 0) {
        ev->attrs = saved;
        return -1;
    }
    p->c.attrs_dropped += dropped;
    /* The capture appends to the bytes it was given, and a repeated key
     * leaves its earlier value's bytes behind, dead: what it used ends
     * where its last key or string ends. */
    const seg_attr_t *kept = ev->attrs.obj;
    const char *base = b->attr_bytes + b->bytes_used, *end = base;
    for (uint32_t i = 0; i < ev->attrs.n; i++) {
        if (kept[i].key + kept[i].key_len > end) end = kept[i].key + kept[i].key_len;
        if (kept[i].type == SEG_ATTR_STRING && kept[i].str + kept[i].str_len > end)
            end = kept[i].str + kept[i].str_len;
    }
    b->bytes_used += (size_t)(end - base);
    b->attrs_used += ev->attrs.n;
    return 0;
}

/* Puts a decoded event into the batch (a new one when b is full or its
 * attr room is used up). Returns the batch to go on with, or NULL when
 * the fold thread stopped. */
static batch_t *add_event(pipe_t *p, batch_t *b, seg_event_t *ev)
{
    if (keep_attrs(p, b, ev) != 0) {
        seg_batchq_put_full(p->q, (int)(b - p->batches));
        if (!(b = next_free(p))) return NULL;
        (void)keep_attrs(p, b, ev);
    }
    slot_t *s = &b->ev[b->n++];
    s->ev = *ev;
    /* The decoder's strings live until its next call: keep the id. */
    memcpy(s->id, ev->customer_id, ev->customer_id_len);
    s->ev.customer_id = s->id;
    /* Hashed here, on the thread with time to spare: the fold thread's
     * read-ahead and its store lookup both use it. */
    s->pf.hash = seg_engine_hash(s->id, ev->customer_id_len);
    s->ev.event_id = NULL;
    s->ev.event_id_len = 0;
    if (b->n == p->batch) {
        seg_batchq_put_full(p->q, (int)(b - p->batches));
        b = next_free(p);
    }
    return b;
}

/* The decoder thread: reads and decodes every record, sends the rejected
 * ones to the DLQ as they are read (in input order, before the good
 * records around them are folded), and hands the events on in order. */
static void *decode_main(void *arg)
{
    pipe_t *p = arg;
    const seg_cfg_t *cfg = p->cfg;
    char why[256];
    batch_t *b = next_free(p);
    while (b) {
        seg_record_t rec;
        int got = seg_reader_next(p->rd, &rec, p->err, sizeof p->err);
        if (got < 0) goto fail;
        if (got == 0) break;
        p->c.read++;
        seg_event_t ev;
        seg_reject_t rej = rec.reject;
        const char *reason_text = rec.why;
        if (rej == SEG_REJ_NONE) {
            why[0] = '\0';
            if (cfg->input.format == SEG_FMT_MSGPACK)   /* the reader delimited it */
                rej = seg_decode_msgpack_delimited(p->dec, rec.data, rec.len, &ev, why, sizeof why);
            else
                rej = seg_decode_json(p->dec, rec.data, rec.len, &ev, why, sizeof why);
            reason_text = why;
        }
        if (rej != SEG_REJ_NONE) {
            p->c.rejected++;
            p->c.by_reason[rej < SEG_REJ__COUNT ? rej : 0]++;
            if (p->dlq && seg_dlq_write(p->dlq, rej, reason_text, seg_reader_name(p->rd), rec.line,
                                        rec.offset, rec.data, rec.len, p->err, sizeof p->err) != 0)
                goto fail;
            continue;
        }
        b = add_event(p, b, &ev);
    }
    if (b && b->n) seg_batchq_put_full(p->q, (int)(b - p->batches));
    p->c.decode_cpu = seg_clock_s(CLOCK_THREAD_CPUTIME_ID);
    seg_batchq_finish(p->q);
    return NULL;
fail:
    p->failed = 1;
    seg_batchq_cancel(p->q);
    return NULL;
}

/* The fold thread's view of the events in hand: the batch being folded
 * and, for read-ahead across its end, the next one if it is ready. */
typedef struct window {
    pipe_t  *p;
    batch_t *cur, *next;
    unsigned i;           /* position in cur */
    uint64_t pos;         /* events folded so far */
    uint64_t staged;      /* events that had prefetch stage 0 */
} window_t;

/* The slot k events after the one to fold, or NULL if it is not in hand. */
static slot_t *ahead(window_t *w, unsigned k)
{
    unsigned j = w->i + k;
    if (j < w->cur->n) return &w->cur->ev[j];
    if (!w->next) {
        int n = seg_batchq_try_full(w->p->q);
        if (n < 0) return NULL;
        w->next = &w->p->batches[n];
    }
    j -= w->cur->n;
    return j < w->next->n ? &w->next->ev[j] : NULL;
}

/* Folds every event the decoder thread hands over, in order, prefetching
 * each one's state in four stages first. Returns 0, or -1 (errstr set)
 * when folding failed; a decoder thread failure ends it early with 0 (the
 * caller reports that one). */
static int fold_all(pipe_t *p, seg_engine_t *eng, char *errstr, size_t errstr_size)
{
    window_t w = { .p = p };
    for (;;) {
        if (!w.cur || w.i == w.cur->n) {
            if (w.cur) seg_batchq_put_free(p->q, (int)(w.cur - p->batches));
            w.cur = w.next;
            w.next = NULL;
            w.i = 0;
            if (!w.cur) {
                int n = seg_batchq_get_full(p->q);
                if (n < 0) return 0;         /* the end, or the decoder failed */
                w.cur = &p->batches[n];
            }
            if (w.cur->n == 0) continue;
        }
        /* Stage 0 for every event up to AHEAD - 1 ahead that has not had
         * it, so stages 1 and 2 always find its hash. */
        for (slot_t *s; w.staged < w.pos + AHEAD && (s = ahead(&w, (unsigned)(w.staged - w.pos)));
             w.staged++)
            seg_engine_prefetch_hashed(eng, &s->pf);
        slot_t *s;
        if (w.staged > w.pos + STAGE1 && (s = ahead(&w, STAGE1)))
            seg_engine_prefetch(eng, s->ev.customer_id, s->ev.customer_id_len, &s->pf, 1);
        if (w.staged > w.pos + STAGE2 && (s = ahead(&w, STAGE2)))
            seg_engine_prefetch(eng, s->ev.customer_id, s->ev.customer_id_len, &s->pf, 2);
        if (w.staged > w.pos + STAGE3 && (s = ahead(&w, STAGE3)))
            seg_engine_prefetch(eng, s->ev.customer_id, s->ev.customer_id_len, &s->pf, 3);
        s = &w.cur->ev[w.i++];
        w.pos++;
        if (w.staged < w.pos) w.staged = w.pos;
        if (seg_engine_fold_hashed(eng, &s->ev, s->pf.hash, errstr, errstr_size) != 0) return -1;
    }
}

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
    /* Per thread: the fold has a core to itself and the decoder and the
     * writer share the other, so the busiest thread (or the two sharing
     * a core) sets the pace. */
    cJSON_AddNumberToObject(o, "decode_cpu_seconds", c->decode_cpu);
    cJSON_AddNumberToObject(o, "fold_cpu_seconds", c->fold_cpu);
    cJSON_AddNumberToObject(o, "write_cpu_seconds", c->write_cpu);
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
    double fold_cpu0 = seg_clock_s(CLOCK_THREAD_CPUTIME_ID);
    sink_t sink = { .out = o->out, .features = cfg->output.features };
    counts_t c;
    memset(&c, 0, sizeof c);
    size_t n_attrs = o->rules ? seg_ruleset_attr_count(o->rules) : 0;
    seg_reader_t *rd = NULL;
    seg_decoder_t *dec = NULL;
    seg_engine_t *eng = NULL;
    seg_dlq_t *dlq = NULL;
    pipe_t p = { .cfg = cfg, .o = o, .n_attrs = n_attrs, .batch = BATCH };
    out_t out = { .max_n = UINT32_MAX, .features = cfg->output.features, .sink = &sink };
    pthread_t decoder;

    /* Test hook: the output must not depend on where batches end, and
     * tests/integration/test_replay_pipeline.sh checks that with
     * SEGD_REPLAY_BATCH=1..256 events per batch (and as many transitions
     * per batch to the writer). */
    const char *eb = getenv("SEGD_REPLAY_BATCH");
    if (eb && *eb) {
        char *end;
        unsigned long v = strtoul(eb, &end, 10);
        if (*end || v < 1 || v > BATCH) {
            snprintf(errstr, errstr_size, "SEGD_REPLAY_BATCH must be 1..%d", BATCH);
            return -1;
        }
        p.batch = (unsigned)v;
        out.max_n = (unsigned)v;
    }

    sink.buf = malloc(SINK_BUF);
    sink.by_rule = calloc(o->rules ? seg_ruleset_count(o->rules) + 1 : 1, sizeof *sink.by_rule);
    sink.sizes = seg_sizes_new();
    p.q = seg_batchq_new(BATCHES);
    p.batches = calloc(BATCHES, sizeof *p.batches);
    out.q = seg_batchq_new(OUTS);
    if (out.q) seg_batchq_set_wake(out.q, OUTS / 2);
    out.b = calloc(OUTS, sizeof *out.b);
    bool oom = !sink.buf || !sink.by_rule || !p.q || !p.batches || !sink.sizes || !out.q ||
               !out.b || seg_sizes_set_dims(sink.sizes, &cfg->seg, o->rules) != 0;
    for (unsigned i = 0; !oom && i < OUTS; i++)
        oom = !(out.b[i].buf = malloc(OUT_CAP));
    for (unsigned i = 0; !oom && n_attrs && i < BATCHES; i++) {
        batch_t *b = &p.batches[i];
        b->attrs_cap = n_attrs > BATCH ? n_attrs : BATCH;
        b->bytes_cap = n_attrs * (ATTR_KEY_MAX + ATTR_STR_MAX);
        if (b->bytes_cap < BATCH_ATTR_BYTES) b->bytes_cap = BATCH_ATTR_BYTES;
        b->attrs = malloc(b->attrs_cap * sizeof *b->attrs);
        b->attr_bytes = malloc(b->bytes_cap);
        oom = !b->attrs || !b->attr_bytes;
    }
    if (oom) {
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
    eng = seg_engine_new(&cfg->seg, emit_copy, &out, errstr, errstr_size);
    if (!eng || seg_engine_set_rules(eng, o->rules, errstr, errstr_size) != 0) goto out;
    if (o->dlq) {
        dlq = seg_dlq_open(o->dlq, errstr, errstr_size);
        if (!dlq) goto out;
    }

    /* The writer thread writes the transitions in the order this thread
     * emits them. The decoder thread reads, decodes and hands events over
     * in input order; this thread folds them in that order, exactly as one
     * thread would. */
    int perr = pthread_create(&out.thread, NULL, write_main, &out);
    if (perr != 0) {
        snprintf(errstr, errstr_size, "cannot start the writer thread: %s", strerror(perr));
        goto out;
    }
    out.running = true;
    p.rd = rd;
    p.dec = dec;
    p.dlq = dlq;
    perr = pthread_create(&decoder, NULL, decode_main, &p);
    if (perr != 0) {
        snprintf(errstr, errstr_size, "cannot start the decoder thread: %s", strerror(perr));
        goto out;
    }
    int frc = fold_all(&p, eng, errstr, errstr_size);
    /* A failed fold stops the decoder thread at its next record (an input
     * that blocks, stdin from an idle pipe, delays that until it reads
     * again or ends). */
    if (frc != 0) seg_batchq_cancel(p.q);
    pthread_join(decoder, NULL);
    c = p.c;
    if (frc != 0) goto out;
    if (p.failed) {
        snprintf(errstr, errstr_size, "%s", p.err);
        goto out;
    }

    /* Time stops at the largest ts seen, or at --until if that is later
     * (see docs/segments.md for why never earlier). */
    int64_t end = seg_engine_max_ts(eng);
    if (o->has_until && o->until > end) end = o->until;
    if (end != INT64_MIN && seg_engine_advance(eng, end, errstr, errstr_size) != 0) goto out;
    /* Every transition is written (or the writer failed) once it is
     * joined; the sink and the sizes are this thread's again. */
    out_close(&out);
    if (sink.failed) goto out;
    if (end != INT64_MIN) seg_sizes_advance(sink.sizes, end);
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
    c.fold_cpu = seg_clock_s(CLOCK_THREAD_CPUTIME_ID) - fold_cpu0;
    c.write_cpu = out.write_cpu;
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
    /* On an error, the writer thread still writes what was emitted before
     * it, as stdio would. */
    out_close(&out);
    if (rc != 0 && sink.failed)
        snprintf(errstr, errstr_size, "cannot write transitions: %s", strerror(sink.err));
    else if (rc != 0 && out.too_big)
        snprintf(errstr, errstr_size, "a transition did not fit the writer's buffer "
                 "(a rule value of more than %d bytes)", SEG_TCOPY_VALUE_MAX);
    if (dlq) {
        char ignored[64];
        seg_dlq_close(dlq, ignored, sizeof ignored);
    }
    seg_engine_destroy(eng);
    free(sink.buf);
    free(sink.by_rule);
    seg_sizes_destroy(sink.sizes);
    for (unsigned i = 0; p.batches && i < BATCHES; i++) {
        free(p.batches[i].attrs);
        free(p.batches[i].attr_bytes);
    }
    free(p.batches);
    seg_batchq_destroy(p.q);
    for (unsigned i = 0; out.b && i < OUTS; i++) free(out.b[i].buf);
    free(out.b);
    seg_batchq_destroy(out.q);
    seg_decoder_destroy(dec);
    seg_reader_close(rd);
    return rc;
}
