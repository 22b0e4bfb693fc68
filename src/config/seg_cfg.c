/*
 * seg_cfg: the configuration schema and its two front ends, the YAML
 * loader and --set.
 *
 * One table. Every key is a row {key, type, field, range, default, doc};
 * the loader, --set, the defaults, validation and the tests all walk that
 * table, so a key cannot be accepted by one path and unknown to another,
 * and its default cannot drift from its documentation check.
 *
 * Why a libyaml *event* parser with an explicit state stack (the shape of
 * Fluent Bit's YAML loader) rather than yaml_document_t:
 *   - every event carries its own mark, so each error points at the exact
 *     token that caused it;
 *   - duplicate keys, which the document API silently keeps, are caught as
 *     they stream by;
 *   - we stop at the first unknown key, so nesting depth and the work done
 *     are bounded by the schema, not by whatever the input contains.
 * The stack mirrors the schema: one frame per open section mapping, one
 * per list value, one per string map. The dotted path of the key being
 * read is kept in a buffer that grows and shrinks with the stack.
 *
 * A string map (kafka.consumer, routes, ...) is the one place where keys
 * are not the schema's: its sub-keys are free-form and may contain dots
 * ("fetch.min.bytes"), because they are librdkafka's names or topic
 * names. Dots in a YAML key are refused everywhere else, so a dotted key
 * still cannot bypass a section's nesting and duplicate detection. A map
 * written in the file replaces the default map as a whole (that is how a
 * file removes the default route); --set adds or replaces one entry.
 *
 * Both front ends write into a scratch copy of the target struct and
 * commit it only when the whole file (or the whole --set) is accepted, so
 * a failed load leaves the configuration exactly as it was.
 */
#include "config/seg_cfg.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "util/seg_money.h"

#define MINUTE 60LL
#define HOUR   3600LL
#define DAY    86400LL
#define WEEK   (7 * DAY)
/* 100 years: far beyond any useful threshold, and small enough that
 * timestamp (years 1..9999) + duration can never overflow int64. */
#define DUR_MAX   (36500 * DAY)
#define COUNT_MAX 1000000000LL

#define KEY_LEN   128   /* longest schema key, incl. NUL */
/* Longest dotted path held: a schema key, '.', a string-map sub-key.
 * Longer ones are unknown or too long. */
#define PATH_LEN  (KEY_LEN + SEG_CFG_MAPKEY_MAX)
#define MAX_DEPTH 16    /* sections nest 3 deep today */
#define TOPIC_MAX 249   /* Kafka's limit on a topic name */
#define SHOW_MAX  48    /* bytes of user text echoed in a message */
#define WHY_LEN   384

_Static_assert(sizeof(seg_format_t) == sizeof(int),
               "ENUM keys are stored as int");

/* Value checks of the Kafka, metrics keys (below, with host:port). */
static int check_brokers(const char *s, size_t len, char *why, size_t wsz);
static int check_listen(const char *s, size_t len, char *why, size_t wsz);
static int check_topic_or_empty(const char *s, size_t len, char *why, size_t wsz);

/* ---- The schema of seg_cfg_t ------------------------------------------ */

static const char *const format_names[] = { "json", "msgpack", NULL };
static const char *const timemode_names[] = { "event", "wall", NULL };
static const char *const loglevel_names[] = { "debug", "info", "warn", "error", NULL };
static const char *const logformat_names[] = { "plain", "json", NULL };
static const char *const huge_names[] = { "auto", "on", "off", NULL };   /* seg_cfg_huge_t */

/* A topic-name key: the field holds 255 bytes, but Kafka allows 249, and
 * "too long (at most 249 bytes)" should say the real limit. */
#define KEY_TOPIC(k, f, minlen, chk, d, doc_) \
    { .key = (k), .type = SEG_CFG_STRING, SEG_CFG_FIELD_(T, f), \
      .min = (minlen), .max = TOPIC_MAX, .check = (chk), .def = (d), \
      .doc = (doc_) }

#define T seg_cfg_t
static const seg_cfg_key_t cfg_keys[] = {
    SEG_CFG_KEY_DURATION(T, "segments.window", seg.window, 1, DUR_MAX, "365d",
        "Trailing window of F (purchases) and M (net spend): an entry counts "
        "while t - window < ts <= t."),

    SEG_CFG_KEY_BOOL(T, "segments.lifecycle.enabled", seg.lifecycle.enabled,
        "true", "Evaluate and emit the lifecycle dimension."),
    SEG_CFG_KEY_DURATION(T, "segments.lifecycle.new_for", seg.lifecycle.new_for,
        1, DUR_MAX, "30d", "new while A (time since first purchase) < new_for."),
    SEG_CFG_KEY_DURATION(T, "segments.lifecycle.at_risk_after",
        seg.lifecycle.at_risk_after, 1, DUR_MAX, "45d",
        "at_risk when R (time since last purchase) >= at_risk_after."),
    SEG_CFG_KEY_DURATION(T, "segments.lifecycle.silent_after",
        seg.lifecycle.silent_after, 1, DUR_MAX, "90d",
        "silent when R >= silent_after."),
    SEG_CFG_KEY_DURATION(T, "segments.lifecycle.churned_after",
        seg.lifecycle.churned_after, 1, DUR_MAX, "365d",
        "churned when R >= churned_after."),
    SEG_CFG_KEY_INT(T, "segments.lifecycle.loyal_min_purchases",
        seg.lifecycle.loyal_min_purchases, 1, COUNT_MAX, "4",
        "loyal when F (purchases in segments.window) >= this."),

    SEG_CFG_KEY_BOOL(T, "segments.value.enabled", seg.value.enabled, "true",
        "Evaluate and emit the value (ABCD) dimension."),
    SEG_CFG_KEY_MONEY(T, "segments.value.a_min", seg.value.a_min,
        0, SEG_MONEY_MAX, "1000", "class A when M >= a_min."),
    SEG_CFG_KEY_MONEY(T, "segments.value.b_min", seg.value.b_min,
        0, SEG_MONEY_MAX, "250", "class B when M >= b_min; C when M > 0; else D."),

    SEG_CFG_KEY_BOOL(T, "segments.rfm.enabled", seg.rfm.enabled, "true",
        "Evaluate and emit the rfm dimension."),
    SEG_CFG_KEY_LIST(T, SEG_CFG_DURATION, "segments.rfm.recency", seg.rfm.recency,
        1, DUR_MAX, "90d,180d,365d",
        "r = 1 if R < [0], 2 if R < [1], 3 if R < [2], else 4."),
    SEG_CFG_KEY_LIST(T, SEG_CFG_INT, "segments.rfm.frequency", seg.rfm.frequency,
        1, COUNT_MAX, "3,6,11",
        "f = 0 if F = 0, 1 if F < [0], 2 if F < [1], 3 if F < [2], else 4."),
    SEG_CFG_KEY_LIST(T, SEG_CFG_MONEY, "segments.rfm.monetary", seg.rfm.monetary,
        1, SEG_MONEY_MAX, "100,500,1000",
        "m = 0 if M <= 0, 1 if M < [0], 2 if M < [1], 3 if M < [2], else 4."),

    SEG_CFG_KEY_BOOL(T, "segments.dissatisfied.enabled", seg.dissatisfied.enabled,
        "true", "Evaluate and emit the dissatisfied membership."),
    SEG_CFG_KEY_DURATION(T, "segments.dissatisfied.window",
        seg.dissatisfied.window, 1, DUR_MAX, "90d",
        "Trailing window in which complaints are counted."),
    SEG_CFG_KEY_INT(T, "segments.dissatisfied.min_complaints",
        seg.dissatisfied.min_complaints, 1, COUNT_MAX, "2",
        "in while complaints in the window >= min_complaints."),

    SEG_CFG_KEY_ENUM(T, "input.format", input.format, format_names, "json",
        "Input encoding: NDJSON or a stream of MessagePack maps."),
    SEG_CFG_KEY_INT(T, "input.max_record_bytes", input.max_record_bytes,
        64, 64LL << 20, "1048576",
        "Longest accepted input record; longer ones are rejected."),

    SEG_CFG_KEY_BOOL(T, "output.features", output.features, "false",
        "Add a features object (R, F, M, ...) to each transition; in the file also a list of "
        "features (docs/rules.md)."),

    SEG_CFG_KEY_STRING(T, "kafka.brokers", kafka.brokers, 1, check_brokers,
        "embedded", "Bootstrap servers host:port[,host:port...], or embedded "
        "for an in-process demo cluster."),
    SEG_CFG_KEY_STRING(T, "kafka.group_id", kafka.group_id, 1, NULL, "segd",
        "Consumer group; instances with the same group share the partitions."),
    /* By hand, as KEY_TOPIC: SEG_CFG_KEY_STRLIST allows 255-byte items. */
    { .key = "kafka.input_topics", .type = SEG_CFG_STRLIST,
      SEG_CFG_FIELD_(T, kafka.input_topics), .list_min = 1, .list_max = 16,
      .min = 1, .max = TOPIC_MAX, .check = seg_cfg_check_topic,
      .def = "events", .doc = "Topics of customer events to consume." },
    KEY_TOPIC("kafka.output_topic", kafka.output_topic, 1, seg_cfg_check_topic,
        "transitions", "Topic every transition is produced to."),
    KEY_TOPIC("kafka.dlq_topic", kafka.dlq_topic, 1, seg_cfg_check_topic,
        "events-dlq", "Topic rejected input records are copied to."),
    KEY_TOPIC("kafka.changelog_topic", kafka.changelog_topic, 0,
        check_topic_or_empty, "",
        "State changelog topic; empty means <group_id>-changelog."),
    SEG_CFG_KEY_INT(T, "kafka.embedded.partitions", kafka.embedded_partitions,
        1, 256, "6", "Partitions per topic created by kafka.brokers: embedded."),
    SEG_CFG_KEY_STRMAP(T, "kafka.consumer", kafka.consumer, "",
        "Raw librdkafka consumer properties, passed through."),
    SEG_CFG_KEY_STRMAP(T, "kafka.producer", kafka.producer, "",
        "Raw librdkafka producer properties, passed through."),

    SEG_CFG_KEY_ENUM(T, "time.mode", time.mode, timemode_names, "event",
        "Watermark from event timestamps, or the wall clock."),
    SEG_CFG_KEY_DURATION(T, "time.lateness", time.lateness, 0, 30 * DAY, "0",
        "Event mode: the watermark trails the partitions' event time by this."),
    SEG_CFG_KEY_DURATION(T, "time.idle_timeout", time.idle_timeout, 1, DUR_MAX,
        "30s", "A partition silent this long stops holding the watermark back."),

    SEG_CFG_KEY_STRING(T, "metrics.listen", metrics.listen, 1, check_listen,
        "127.0.0.1:9464", "HTTP address of /metrics, /healthz, /readyz; off "
        "disables it."),
    SEG_CFG_KEY_BOOL(T, "metrics.lifecycle", metrics.lifecycle, "false",
        "POST /-/reload on the metrics address re-reads the configuration."),
    SEG_CFG_KEY_BOOL(T, "metrics.api", metrics.api, "true",
        "Serve the customer lookup and segment API (/v1/...) and the live "
        "page (/) on the metrics address."),
    SEG_CFG_KEY_STRING(T, "metrics.token_file", metrics.token_file, 0, NULL, "",
        "File holding the bearer token the API and the page require; needed "
        "when metrics.listen is not a loopback address."),

    SEG_CFG_KEY_ENUM(T, "log.level", log.level, loglevel_names, "info",
        "Least severe level logged."),
    SEG_CFG_KEY_ENUM(T, "log.format", log.format, logformat_names, "plain",
        "plain text lines or one JSON object per line."),
    SEG_CFG_KEY_STRING(T, "log.file", log.file, 0, NULL, "",
        "Log file, reopened on SIGHUP; empty means stderr."),

    SEG_CFG_KEY_STRING(T, "state.dir", state.dir, 0, NULL, "",
        "Snapshot directory; empty means $STATE_DIRECTORY, else ./state."),
    SEG_CFG_KEY_DURATION(T, "state.evict_after", state.evict_after, 0, DUR_MAX,
        "0", "Drop a customer churned this long from memory; 0 = never."),
    SEG_CFG_KEY_ENUM(T, "state.huge_pages", state.huge_pages, huge_names, "auto",
        "Advise the state's large arrays for transparent huge pages; auto = "
        "replay only."),
    SEG_CFG_KEY_DURATION(T, "checkpoint.interval", checkpoint.interval, 1,
        DUR_MAX, "30s", "Time between local snapshots of each partition."),
    SEG_CFG_KEY_BOOL(T, "checkpoint.background", checkpoint.background, "true",
        "Write interval snapshots from a forked child (copy-on-write), so "
        "consumption pauses only for the changelog append, not the whole "
        "snapshot."),
    SEG_CFG_KEY_DURATION(T, "shutdown_timeout", shutdown_timeout, 1, HOUR,
        "30s", "Longest drain-and-commit on SIGTERM before exiting anyway."),
    SEG_CFG_KEY_STRMAP(T, "routes", routes,
        "churn-alerts=lifecycle -> at_risk,churned",
        "Extra output topics, each with a transition filter."),
};
#undef T
#undef KEY_TOPIC

_Static_assert(sizeof cfg_keys / sizeof cfg_keys[0] <= SEG_CFG_MAX_KEYS,
               "raise SEG_CFG_MAX_KEYS");

/* Read by src/rule from the same file (docs/rules.md). */
static const char *const cfg_foreign[] = {
    "segments.rules", "segments.retain", "segments.predict", NULL,
};

static const seg_cfg_schema_t cfg_schema = {
    .keys = cfg_keys,
    .n = sizeof cfg_keys / sizeof cfg_keys[0],
    .struct_size = sizeof(seg_cfg_t),
    .origin_offset = offsetof(seg_cfg_t, origin),
    .foreign = cfg_foreign,
};

const seg_cfg_schema_t *seg_cfg_schema(void)
{
    return &cfg_schema;
}

/* ---- Small helpers ------------------------------------------------------ */

static void errf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *buf, size_t size, const char *fmt, ...)
{
    if (!buf || size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Echoes user text into a message, optionally in single quotes. Control
 * bytes, quotes and backslashes are escaped and text longer than max is
 * cut, so a hostile value can neither flood nor corrupt a terminal or a
 * log line. */
static void show_max(char *dst, size_t dsz, const char *s, size_t len,
                     int quotes, size_t max)
{
    size_t o = 0, i;
    if (dsz < 16) {
        if (dsz) dst[0] = '\0';
        return;
    }
    if (quotes) dst[o++] = '\'';
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= max || o + 4 + 6 > dsz) break;
        if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\')
            o += (size_t)snprintf(dst + o, dsz - o, "\\x%02x", c);
        else
            dst[o++] = (char)c;
    }
    if (i < len) {
        /* Do not leave half a UTF-8 sequence before the ellipsis. */
        size_t start = quotes ? 1 : 0;
        while (o > start && ((unsigned char)dst[o - 1] & 0xC0) == 0x80) o--;
        if (o > start && ((unsigned char)dst[o - 1] & 0xC0) == 0xC0) o--;
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    if (quotes) dst[o++] = '\'';
    dst[o] = '\0';
}

/* User text of unknown length: cut at SHOW_MAX. */
static void show(char *dst, size_t dsz, const char *s, size_t len, int quotes)
{
    show_max(dst, dsz, s, len, quotes, SHOW_MAX);
}

static unsigned char *field_of(const seg_cfg_key_t *r, const void *base)
{
    return (unsigned char *)base + r->offset;
}

static seg_cfg_origins_t *origins_of(const seg_cfg_schema_t *s, const void *base)
{
    return (seg_cfg_origins_t *)((unsigned char *)base + s->origin_offset);
}

static int is_string_type(seg_cfg_type_t t)
{
    return t == SEG_CFG_STRING || t == SEG_CFG_STRLIST;
}

static seg_cfg_strmap_t *map_of(const seg_cfg_key_t *r, const void *base)
{
    return (seg_cfg_strmap_t *)field_of(r, base);
}

/* Stores go through memcpy: no alignment or aliasing assumptions about
 * the target struct. item is the list index, 0 for a scalar. */
static void store_num(const seg_cfg_key_t *r, void *base, unsigned item, int64_t v)
{
    unsigned char *p = field_of(r, base);
    if (r->type == SEG_CFG_BOOL) {
        bool b = v != 0;
        memcpy(p, &b, sizeof b);
    } else if (r->type == SEG_CFG_ENUM) {
        int e = (int)v;
        memcpy(p, &e, sizeof e);
    } else {
        memcpy(p + item * sizeof(int64_t), &v, sizeof v);
    }
}

static int64_t load_num(const seg_cfg_key_t *r, const void *base, unsigned item)
{
    const unsigned char *p = field_of(r, base);
    if (r->type == SEG_CFG_BOOL) {
        bool b;
        memcpy(&b, p, sizeof b);
        return b;
    }
    if (r->type == SEG_CFG_ENUM) {
        int e;
        memcpy(&e, p, sizeof e);
        return e;
    }
    int64_t v;
    memcpy(&v, p + item * sizeof(int64_t), sizeof v);
    return v;
}

static char *str_slot(const seg_cfg_key_t *r, void *base, unsigned item)
{
    unsigned char *p = field_of(r, base);
    if (r->type == SEG_CFG_STRING) return (char *)p;
    return ((seg_cfg_strlist_t *)p)->item[item];
}

static void store_str(const seg_cfg_key_t *r, void *base, unsigned item,
                      const char *s, size_t len)
{
    char *dst = str_slot(r, base, item);
    memcpy(dst, s, len);
    dst[len] = '\0';
}

static void store_count(const seg_cfg_key_t *r, void *base, unsigned n)
{
    memcpy(field_of(r, base) + offsetof(seg_cfg_strlist_t, n), &n, sizeof n);
}

static unsigned load_count(const seg_cfg_key_t *r, const void *base)
{
    unsigned n;
    memcpy(&n, field_of(r, base) + offsetof(seg_cfg_strlist_t, n), sizeof n);
    return n;
}

static size_t fmt_duration(int64_t v, char *buf, size_t size)
{
    /* Weeks are not used: "7d" reads better than "1w" next to 90d. */
    if (v == 0) return (size_t)snprintf(buf, size, "0");
    if (v % DAY == 0) return (size_t)snprintf(buf, size, "%" PRId64 "d", (int64_t)(v / DAY));
    if (v % HOUR == 0) return (size_t)snprintf(buf, size, "%" PRId64 "h", (int64_t)(v / HOUR));
    if (v % MINUTE == 0) return (size_t)snprintf(buf, size, "%" PRId64 "m", (int64_t)(v / MINUTE));
    return (size_t)snprintf(buf, size, "%" PRId64 "s", v);
}

static size_t enum_count(const seg_cfg_key_t *r)
{
    size_t n = 0;
    while (r->names && r->names[n]) n++;
    return n;
}

/* A number-like value of row r as the user would write it. */
static size_t fmt_num(const seg_cfg_key_t *r, int64_t v, char *buf, size_t size)
{
    switch (r->type) {
    case SEG_CFG_BOOL:
        return (size_t)snprintf(buf, size, "%s", v ? "true" : "false");
    case SEG_CFG_ENUM:
        if (v >= 0 && (size_t)v < enum_count(r))
            return (size_t)snprintf(buf, size, "%s", r->names[v]);
        return (size_t)snprintf(buf, size, "#%" PRId64, v);
    case SEG_CFG_DURATION:
        return fmt_duration(v, buf, size);
    case SEG_CFG_MONEY: {
        char tmp[32];
        seg_money_format(v, tmp);
        return (size_t)snprintf(buf, size, "%s", tmp);
    }
    default:
        return (size_t)snprintf(buf, size, "%" PRId64, v);
    }
}

/* "an integer", "a list of 3 durations", ... for "expected X" messages.
 * element: describe one item of a list key. */
static void describe(const seg_cfg_key_t *r, int element, char *buf, size_t size)
{
    static const char *const one[] = {
        [SEG_CFG_BOOL] = "true or false",
        [SEG_CFG_INT] = "an integer",
        [SEG_CFG_DURATION] = "a duration (e.g. 30s, 5m, 12h, 45d, 2w)",
        [SEG_CFG_MONEY] = "a decimal amount (e.g. 250 or 99.95)",
        [SEG_CFG_ENUM] = "one of",
        [SEG_CFG_STRING] = "a string",
        [SEG_CFG_STRLIST] = "a string",
        [SEG_CFG_STRMAP] = "a string",
    };
    static const char *const many[] = {
        [SEG_CFG_BOOL] = "booleans", [SEG_CFG_INT] = "integers",
        [SEG_CFG_DURATION] = "durations", [SEG_CFG_MONEY] = "decimal amounts",
        [SEG_CFG_ENUM] = "names", [SEG_CFG_STRING] = "strings",
        [SEG_CFG_STRLIST] = "strings",
        [SEG_CFG_STRMAP] = "strings",
    };
    if (r->list_max && !element) {
        if (r->list_min == r->list_max)
            snprintf(buf, size, "a list of %u %s", r->list_max, many[r->type]);
        else
            snprintf(buf, size, "a list of %u to %u %s", r->list_min,
                     r->list_max, many[r->type]);
        return;
    }
    if (r->type == SEG_CFG_STRMAP && !element) {
        snprintf(buf, size, "a mapping of sub-keys to strings");
        return;
    }
    if (r->type == SEG_CFG_ENUM) {
        size_t o = (size_t)snprintf(buf, size, "one of");
        for (size_t i = 0; r->names && r->names[i] && o < size; i++)
            o += (size_t)snprintf(buf + o, size - o, "%s %s", i ? "," : "",
                                  r->names[i]);
        return;
    }
    snprintf(buf, size, "%s", one[r->type]);
}

/* ---- Value parsers --------------------------------------------------------
 * Each parses one element of row r's type from text. quoted says the YAML
 * scalar was quoted: YAML reads a quoted "2" as a string, so int and bool
 * keys refuse it rather than guess; duration, money and enum values are
 * text anyway and accept either form. */

static int range_error(const seg_cfg_key_t *r, const char *got, char *why, size_t wsz)
{
    char lo[40], hi[40];
    fmt_num(r, r->min, lo, sizeof lo);
    fmt_num(r, r->max, hi, sizeof hi);
    errf(why, wsz, "out of range: %s is not in [%s, %s]", got, lo, hi);
    return -1;
}

/* Decimal digits into v; *overflow set past INT64_MAX. Returns the number
 * of digits consumed. */
static size_t scan_digits(const char *s, size_t len, uint64_t *v, int *overflow)
{
    size_t i = 0;
    *v = 0;
    while (i < len && is_digit(s[i])) {
        unsigned d = (unsigned)(s[i] - '0');
        if (*v > ((uint64_t)INT64_MAX - d) / 10) *overflow = 1;
        else *v = *v * 10 + d;
        i++;
    }
    return i;
}

static int parse_int(const seg_cfg_key_t *r, const char *s, size_t len,
                     int64_t *out, char *why, size_t wsz)
{
    char shown[256], exp[160];
    show(shown, sizeof shown, s, len, 1);
    describe(r, 1, exp, sizeof exp);
    size_t i = 0;
    int neg = 0, overflow = 0;
    if (len > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    uint64_t u;
    size_t nd = scan_digits(s + i, len - i, &u, &overflow);
    if (nd == 0 || i + nd != len) {
        errf(why, wsz, "expected %s, got %s", exp, shown);
        return -1;
    }
    if (nd > 1 && s[i] == '0') {
        /* YAML 1.1 reads 010 as octal 8; refuse rather than pick one. */
        errf(why, wsz, "leading zeros are not allowed in %s", shown);
        return -1;
    }
    int64_t v = neg ? -(int64_t)u : (int64_t)u;
    if (overflow || v < r->min || v > r->max) {
        show(shown, sizeof shown, s, len, 0);
        return range_error(r, shown, why, wsz);
    }
    *out = v;
    return 0;
}

static int parse_duration(const seg_cfg_key_t *r, const char *s, size_t len,
                          int64_t *out, char *why, size_t wsz)
{
    char shown[256], exp[160];
    show(shown, sizeof shown, s, len, 1);
    describe(r, 1, exp, sizeof exp);
    if (len > 0 && s[0] == '-') {
        errf(why, wsz, "negative durations are not allowed, got %s", shown);
        return -1;
    }
    int overflow = 0;
    uint64_t u;
    size_t nd = scan_digits(s, len, &u, &overflow);
    if (nd == 0) {
        errf(why, wsz, "expected %s, got %s", exp, shown);
        return -1;
    }
    int64_t mult;
    if (nd == len) {
        /* A bare number is ambiguous (seconds? days?) except zero. */
        if (u != 0 || overflow) {
            errf(why, wsz, "missing unit in %s (s, m, h, d or w)", shown);
            return -1;
        }
        mult = 1;
    } else if (nd + 1 == len) {
        switch (s[nd]) {
        case 's': mult = 1; break;
        case 'm': mult = MINUTE; break;
        case 'h': mult = HOUR; break;
        case 'd': mult = DAY; break;
        case 'w': mult = WEEK; break;
        default:
            if (is_alpha(s[nd])) {
                errf(why, wsz, "unknown unit '%c' in %s (s, m, h, d or w)",
                     s[nd], shown);
            } else {
                errf(why, wsz, "expected %s, got %s", exp, shown);
            }
            return -1;
        }
    } else {
        errf(why, wsz, "expected %s, got %s", exp, shown);
        return -1;
    }
    if (!overflow && u > (uint64_t)INT64_MAX / (uint64_t)mult) overflow = 1;
    int64_t v = (int64_t)u * (overflow ? 1 : mult);
    if (overflow || v < r->min || v > r->max) {
        show(shown, sizeof shown, s, len, 0);
        return range_error(r, shown, why, wsz);
    }
    *out = v;
    return 0;
}

static int parse_money(const seg_cfg_key_t *r, const char *s, size_t len,
                       int64_t *out, char *why, size_t wsz)
{
    char shown[256], exp[160];
    int64_t v;
    show(shown, sizeof shown, s, len, 1);
    if (seg_money_parse(s, len, &v) != 0) {
        /* seg_money_parse only says no; tell the user which rule. */
        size_t i = 0, whole = 0, frac = 0;
        int dot = 0;
        if (i < len && (s[i] == '+' || s[i] == '-')) i++;
        while (i < len && is_digit(s[i])) { i++; whole++; }
        if (i < len && s[i] == '.') {
            dot = 1;
            i++;
            while (i < len && is_digit(s[i])) { i++; frac++; }
        }
        int shaped = i == len && (whole || frac) && !(dot && frac == 0);
        if (shaped && frac > 4) {
            errf(why, wsz, "%s has more than 4 decimal places (amounts are "
                 "exact to 0.0001)", shown);
            return -1;
        }
        if (shaped) {   /* well formed, so it failed for its size */
            show(shown, sizeof shown, s, len, 0);
            return range_error(r, shown, why, wsz);
        }
        describe(r, 1, exp, sizeof exp);
        errf(why, wsz, "expected %s, got %s", exp, shown);
        return -1;
    }
    if (v < r->min || v > r->max) {
        show(shown, sizeof shown, s, len, 0);
        return range_error(r, shown, why, wsz);
    }
    *out = v;
    return 0;
}

static int parse_number(const seg_cfg_key_t *r, const char *s, size_t len,
                        int quoted, int64_t *out, char *why, size_t wsz)
{
    char shown[256], exp[160];
    describe(r, 1, exp, sizeof exp);
    show(shown, sizeof shown, s, len, 1);
    if (quoted && (r->type == SEG_CFG_BOOL || r->type == SEG_CFG_INT)) {
        errf(why, wsz, "expected %s, got the quoted string %s", exp, shown);
        return -1;
    }
    switch (r->type) {
    case SEG_CFG_BOOL:
        if (len == 4 && memcmp(s, "true", 4) == 0) { *out = 1; return 0; }
        if (len == 5 && memcmp(s, "false", 5) == 0) { *out = 0; return 0; }
        errf(why, wsz, "expected %s, got %s", exp, shown);
        return -1;
    case SEG_CFG_ENUM:
        for (size_t i = 0; r->names && r->names[i]; i++) {
            if (strlen(r->names[i]) == len && memcmp(r->names[i], s, len) == 0) {
                *out = (int64_t)i;
                return 0;
            }
        }
        errf(why, wsz, "expected %s, got %s", exp, shown);
        return -1;
    case SEG_CFG_INT:
        return parse_int(r, s, len, out, why, wsz);
    case SEG_CFG_DURATION:
        return parse_duration(r, s, len, out, why, wsz);
    case SEG_CFG_MONEY:
        return parse_money(r, s, len, out, why, wsz);
    default:
        errf(why, wsz, "internal error: not a number type");
        return -1;
    }
}

static int check_string(const seg_cfg_key_t *r, const char *s, size_t len,
                        char *why, size_t wsz)
{
    char shown[256];
    size_t cap = r->type == SEG_CFG_STRING ? r->size - 1 : SEG_CFG_STR_MAX - 1;
    if (r->max >= 0 && (uint64_t)r->max < cap) cap = (size_t)r->max;
    if (memchr(s, '\0', len)) {
        errf(why, wsz, "strings must not contain NUL bytes");
        return -1;
    }
    if (r->min > 0 && len < (uint64_t)r->min) {
        show(shown, sizeof shown, s, len, 1);
        if (len == 0) errf(why, wsz, "must not be empty");
        else errf(why, wsz, "%s is too short (at least %" PRId64 " bytes)",
                  shown, r->min);
        return -1;
    }
    if (len > cap) {
        show(shown, sizeof shown, s, len, 1);
        errf(why, wsz, "%s is too long (at most %zu bytes)", shown, cap);
        return -1;
    }
    if (r->check && r->check(s, len, why, wsz) != 0) return -1;
    return 0;
}

/* ---- String maps ----------------------------------------------------------
 * Sub-keys may hold dots but no space, '=' or ';': '=' ends the key in
 * --set, and "sub=value;sub=value" is the text form of a whole map (the
 * default and --set map.key=...). Printable ASCII keeps them safe to echo
 * and is all that librdkafka property names and Kafka topic names use. */

static int check_subkey(const char *s, size_t len, char *why, size_t wsz)
{
    char shown[256];
    if (len == 0) {
        errf(why, wsz, "empty sub-key");
        return -1;
    }
    show(shown, sizeof shown, s, len, 1);
    if (memchr(s, '\0', len)) {
        errf(why, wsz, "keys must not contain NUL bytes");
        return -1;
    }
    if (len > SEG_CFG_MAPKEY_MAX - 1) {
        errf(why, wsz, "sub-key %s is too long (at most %d bytes)", shown,
             SEG_CFG_MAPKEY_MAX - 1);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '=' || c == ';') {
            errf(why, wsz, "sub-key %s: only printable ASCII other than space, "
                 "'=' and ';' is allowed", shown);
            return -1;
        }
    }
    return 0;
}

static int check_mapval(const char *s, size_t len, char *why, size_t wsz)
{
    char shown[256];
    if (memchr(s, '\0', len)) {
        errf(why, wsz, "strings must not contain NUL bytes");
        return -1;
    }
    if (len > SEG_CFG_STR_MAX - 1) {
        show(shown, sizeof shown, s, len, 1);
        errf(why, wsz, "%s is too long (at most %d bytes)", shown,
             SEG_CFG_STR_MAX - 1);
        return -1;
    }
    return 0;
}

static int map_find_n(const seg_cfg_strmap_t *m, const char *key, size_t len)
{
    unsigned n = m->n < SEG_CFG_MAP_MAX ? m->n : SEG_CFG_MAP_MAX;
    for (unsigned i = 0; i < n; i++) {
        if (strnlen(m->e[i].key, sizeof m->e[i].key) == len &&
            memcmp(m->e[i].key, key, len) == 0)
            return (int)i;
    }
    return -1;
}

const seg_cfg_mapentry_t *seg_cfg_map_find(const seg_cfg_strmap_t *map,
                                           const char *key)
{
    if (!map || !key) return NULL;
    int i = map_find_n(map, key, strlen(key));
    return i < 0 ? NULL : &map->e[i];
}

/* Stores key=val (both checked) as a new entry, or over the entry with
 * that key when replace. The entry is zeroed first, so maps stay
 * comparable with memcmp. Returns the entry, or NULL with why set. */
static seg_cfg_mapentry_t *map_put(seg_cfg_strmap_t *m, const char *key,
                                   size_t klen, const char *val, size_t vlen,
                                   int replace, char *why, size_t wsz)
{
    char shown[256];
    int i = map_find_n(m, key, klen);
    if (i >= 0 && !replace) {
        show(shown, sizeof shown, key, klen, 1);
        errf(why, wsz, "duplicate sub-key %s", shown);
        return NULL;
    }
    if (i < 0) {
        if (m->n >= SEG_CFG_MAP_MAX) {
            errf(why, wsz, "more than %d entries", SEG_CFG_MAP_MAX);
            return NULL;
        }
        i = (int)m->n++;
    }
    seg_cfg_mapentry_t *e = &m->e[i];
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, klen);
    memcpy(e->val, val, vlen);
    return e;
}

/* Parses "sub=value;sub=value" into the map of r, replacing it. In a
 * value, "\;" is ';' and "\\" is '\'; any other backslash is itself, so
 * a Windows path needs no escaping. Entries come out as defaults (src 0). */
static int apply_map_text(const seg_cfg_key_t *r, void *base, const char *v,
                          size_t len, char *why, size_t wsz)
{
    seg_cfg_strmap_t *m = map_of(r, base);
    char val[SEG_CFG_STR_MAX], shown[256], iwhy[WHY_LEN];
    size_t i = 0;
    unsigned entry = 0;

    memset(m, 0, sizeof *m);
    if (len == 0) return 0;
    for (;;) {
        size_t ks = i, vs, vl = 0;
        entry++;
        while (i < len && v[i] != '=' && v[i] != ';') i++;
        if (i == len || v[i] == ';') {
            show(shown, sizeof shown, v + ks, i - ks, 1);
            errf(why, wsz, "entry %u: expected sub-key=value, got %s", entry, shown);
            return -1;
        }
        size_t klen = i - ks;
        if (check_subkey(v + ks, klen, iwhy, sizeof iwhy) != 0) {
            errf(why, wsz, "entry %u: %s", entry, iwhy);
            return -1;
        }
        vs = ++i;
        for (; i < len && v[i] != ';'; i++) {
            char c = v[i];
            if (c == '\\' && i + 1 < len && (v[i + 1] == ';' || v[i + 1] == '\\'))
                c = v[++i];
            if (vl < sizeof val) val[vl] = c;
            vl++;
        }
        if (vl > SEG_CFG_STR_MAX - 1) {
            show(shown, sizeof shown, v + vs, i - vs, 1);
            errf(why, wsz, "entry %u: %s is too long (at most %d bytes)", entry,
                 shown, SEG_CFG_STR_MAX - 1);
            return -1;
        }
        if (check_mapval(val, vl, iwhy, sizeof iwhy) != 0 ||
            !map_put(m, v + ks, klen, val, vl, 0, iwhy, sizeof iwhy)) {
            errf(why, wsz, "entry %u: %s", entry, iwhy);
            return -1;
        }
        if (i == len) break;
        i++;   /* ';': another entry must follow */
    }
    return 0;
}

/* The text form of a map, as apply_map_text reads it. snprintf-style. */
static size_t fmt_map(const seg_cfg_strmap_t *m, char *buf, size_t size)
{
    size_t o = 0;
#define PUT(c) do { if (o + 1 < size) buf[o] = (c); o++; } while (0)
    unsigned n = m->n < SEG_CFG_MAP_MAX ? m->n : SEG_CFG_MAP_MAX;
    for (unsigned k = 0; k < n; k++) {
        const seg_cfg_mapentry_t *e = &m->e[k];
        if (k) PUT(';');
        for (size_t i = 0; i < sizeof e->key && e->key[i]; i++) PUT(e->key[i]);
        PUT('=');
        for (size_t i = 0; i < sizeof e->val && e->val[i]; i++) {
            if (e->val[i] == ';' || e->val[i] == '\\') PUT('\\');
            PUT(e->val[i]);
        }
    }
#undef PUT
    if (size) buf[o < size ? o : size - 1] = '\0';
    return o;
}

/* Parses one element (item of a list, or the scalar when item == 0 and
 * the key is no list) and stores it into base. */
static int apply_element(const seg_cfg_key_t *r, void *base, unsigned item,
                         const char *s, size_t len, int quoted,
                         char *why, size_t wsz)
{
    if (is_string_type(r->type)) {
        if (check_string(r, s, len, why, wsz) != 0) return -1;
        store_str(r, base, item, s, len);
        return 0;
    }
    int64_t v;
    if (parse_number(r, s, len, quoted, &v, why, wsz) != 0) return -1;
    store_num(r, base, item, v);
    return 0;
}

/* Applies a whole value in --set syntax: lists are comma-separated; spaces
 * around numeric items are forgiven, string items are taken verbatim. */
static int apply_text(const seg_cfg_key_t *r, void *base, const char *v,
                      size_t len, char *why, size_t wsz)
{
    char exp[160];
    if (r->type == SEG_CFG_STRMAP) return apply_map_text(r, base, v, len, why, wsz);
    if (!r->list_max) return apply_element(r, base, 0, v, len, 0, why, wsz);
    describe(r, 0, exp, sizeof exp);
    unsigned n = 0;
    const char *p = v, *end = v + len;
    if (len > 0 || r->type != SEG_CFG_STRLIST) {
        for (;;) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e = comma ? comma : end;
            const char *b = p;
            if (!is_string_type(r->type)) {
                while (b < e && *b == ' ') b++;
                while (e > b && e[-1] == ' ') e--;
            }
            if (n >= r->list_max) {
                errf(why, wsz, "expected %s, got more than %u items", exp,
                     r->list_max);
                return -1;
            }
            char iwhy[WHY_LEN];
            if (apply_element(r, base, n, b, (size_t)(e - b), 0, iwhy,
                              sizeof iwhy) != 0) {
                errf(why, wsz, "item %u: %s", n + 1, iwhy);
                return -1;
            }
            n++;
            if (!comma) break;
            p = comma + 1;
        }
    }
    if (n < r->list_min) {
        errf(why, wsz, "expected %s, got %u item%s", exp, n, n == 1 ? "" : "s");
        return -1;
    }
    if (r->type == SEG_CFG_STRLIST) store_count(r, base, n);
    return 0;
}

/* ---- Key lookup -------------------------------------------------------- */

static int find_leaf(const seg_cfg_schema_t *s, const char *key, size_t len)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strlen(s->keys[i].key) == len && memcmp(s->keys[i].key, key, len) == 0)
            return (int)i;
    }
    return -1;
}

/* Index of the first key inside section key ("segments" for
 * "segments.window"), or -1 if key is no section. */
static int find_section(const seg_cfg_schema_t *s, const char *key, size_t len)
{
    for (size_t i = 0; i < s->n; i++) {
        const char *k = s->keys[i].key;
        if (strlen(k) > len && memcmp(k, key, len) == 0 && k[len] == '.')
            return (int)i;
    }
    return -1;
}

/* The string-map row that key[0..len) is an entry path of ("routes" for
 * "routes.churn-alerts"), or -1. The sub-key starts after the row key and
 * its '.'; it may be empty or invalid, which the caller checks. */
static int find_map_prefix(const seg_cfg_schema_t *s, const char *key, size_t len)
{
    for (size_t i = 0; i < s->n; i++) {
        const seg_cfg_key_t *r = &s->keys[i];
        size_t rl = strlen(r->key);
        if (r->type == SEG_CFG_STRMAP && len > rl && key[rl] == '.' &&
            memcmp(key, r->key, rl) == 0)
            return (int)i;
    }
    return -1;
}

int seg_cfg_schema_find(const seg_cfg_schema_t *schema, const char *key)
{
    return find_leaf(schema, key, strlen(key));
}

static void mark_origin(const seg_cfg_schema_t *s, void *base, int idx,
                        seg_cfg_src_t src, size_t line, size_t col)
{
    seg_cfg_origins_t *o = origins_of(s, base);
    if (idx < 0 || idx >= SEG_CFG_MAX_KEYS) return;
    o->key[idx].src = (uint8_t)src;
    o->key[idx].line = (uint32_t)line;
    o->key[idx].col = (uint32_t)col;
    o->key[idx].seq = ++o->next_seq;
}

/* ---- Defaults, --set ---------------------------------------------------- */

void seg_cfg_schema_defaults(const seg_cfg_schema_t *schema, void *base)
{
    /* Zeroing first makes padding deterministic, so two default configs
     * compare equal with memcmp, and leaves every origin at "default". */
    memset(base, 0, schema->struct_size);
    for (size_t i = 0; i < schema->n; i++) {
        const seg_cfg_key_t *r = &schema->keys[i];
        char why[WHY_LEN];
        int rc = apply_text(r, base, r->def, strlen(r->def), why, sizeof why);
        /* seg_cfg_schema_check (run by the unit tests) proves every
         * default parses; this can only fire on a broken table. */
        assert(rc == 0);
        (void)rc;
    }
}

void seg_cfg_defaults(seg_cfg_t *cfg)
{
    seg_cfg_schema_defaults(&cfg_schema, cfg);
}

/* Marks every entry of a string map as set by src. */
static void mark_entries(const seg_cfg_key_t *r, void *base, seg_cfg_src_t src)
{
    seg_cfg_strmap_t *m = map_of(r, base);
    for (unsigned k = 0; k < m->n && k < SEG_CFG_MAP_MAX; k++)
        m->e[k].src = (uint8_t)src;
}

int seg_cfg_schema_set(const seg_cfg_schema_t *schema, void *base,
                       const char *assignment, char *errstr, size_t errstr_size)
{
    char shown[PATH_LEN + 256], why[WHY_LEN];
    size_t alen = strlen(assignment);
    show(shown, sizeof shown, assignment, alen, 0);
    const char *eq = strchr(assignment, '=');
    if (!eq) {
        errf(errstr, errstr_size, "--set %s: expected key=value", shown);
        return -1;
    }
    size_t klen = (size_t)(eq - assignment);
    size_t vlen = alen - klen - 1;
    int idx = find_leaf(schema, assignment, klen);
    int map = idx < 0 ? find_map_prefix(schema, assignment, klen) : -1;
    for (int i = 0; idx < 0 && map < 0 && schema->foreign && schema->foreign[i]; i++) {
        size_t fl = strlen(schema->foreign[i]);
        if (klen >= fl && memcmp(assignment, schema->foreign[i], fl) == 0 &&
            (klen == fl || assignment[fl] == '.')) {
            errf(errstr, errstr_size, "--set %s: %s is read from the configuration file only",
                 shown, schema->foreign[i]);
            return -1;
        }
    }
    if (idx < 0 && map < 0) {
        int sub = find_section(schema, assignment, klen);
        if (sub >= 0)
            errf(errstr, errstr_size, "--set %s: is a section, not a key "
                 "(e.g. %s)", shown, schema->keys[sub].key);
        else
            errf(errstr, errstr_size, "--set %s: unknown key", shown);
        return -1;
    }
    size_t sub_off = map >= 0 ? strlen(schema->keys[map].key) + 1 : 0;
    if (map >= 0 && check_subkey(assignment + sub_off, klen - sub_off, why,
                                 sizeof why) != 0) {
        errf(errstr, errstr_size, "--set %s: %s", shown, why);
        return -1;
    }
    /* The key is now a known one: echo it whole (a long librdkafka name
     * must stay recognisable) and cut only the value. */
    if (klen < PATH_LEN) {
        char v[256];
        show(v, sizeof v, eq + 1, vlen, 0);
        snprintf(shown, sizeof shown, "%.*s=%s", (int)klen, assignment, v);
    }
    unsigned char *scratch = malloc(schema->struct_size);
    if (!scratch) {
        errf(errstr, errstr_size, "--set %s: out of memory", shown);
        return -1;
    }
    memcpy(scratch, base, schema->struct_size);
    if (map >= 0) {
        /* One entry: added, or replacing the file's (or default) value. */
        const seg_cfg_key_t *r = &schema->keys[map];
        seg_cfg_mapentry_t *e = NULL;
        if (check_mapval(eq + 1, vlen, why, sizeof why) == 0)
            e = map_put(map_of(r, scratch), assignment + sub_off, klen - sub_off,
                        eq + 1, vlen, 1, why, sizeof why);
        if (!e) {
            errf(errstr, errstr_size, "--set %s: %s", shown, why);
            free(scratch);
            return -1;
        }
        e->src = SEG_CFG_SRC_SET;
        idx = map;
    } else {
        const seg_cfg_key_t *r = &schema->keys[idx];
        if (apply_text(r, scratch, eq + 1, vlen, why, sizeof why) != 0) {
            errf(errstr, errstr_size, "--set %s: %s", shown, why);
            free(scratch);
            return -1;
        }
        if (r->type == SEG_CFG_STRMAP) mark_entries(r, scratch, SEG_CFG_SRC_SET);
    }
    mark_origin(schema, scratch, idx, SEG_CFG_SRC_SET, 0, 0);
    memcpy(base, scratch, schema->struct_size);
    free(scratch);
    return 0;
}

int seg_cfg_set(seg_cfg_t *cfg, const char *assignment,
                char *errstr, size_t errstr_size)
{
    return seg_cfg_schema_set(&cfg_schema, cfg, assignment, errstr, errstr_size);
}

/* ---- The YAML loader ------------------------------------------------------ */

typedef enum {
    ST_STREAM,      /* before a document, or after it */
    ST_DOC,         /* expecting the root node */
    ST_DOC_END,     /* root done, expecting the document end */
    ST_MAP_KEY,     /* in a section mapping, expecting a key or its end */
    ST_MAP_VAL,     /* key read, expecting its value */
    ST_SEQ,         /* in a list value, expecting an item or its end */
    ST_SMAP_KEY,    /* in a string map, expecting a sub-key or its end */
    ST_SMAP_VAL,    /* sub-key read, expecting its string */
    ST_SKIP,        /* inside a foreign section: skipped, items = depth */
} state_t;

#define ROW_FOREIGN (-2)   /* frame row of a key another module reads */

typedef struct {
    state_t     st;
    size_t      plen;       /* ST_MAP_*, ST_SMAP_*: length of this mapping's path */
    int         row;        /* ST_MAP_VAL/ST_SEQ/ST_SMAP_*: leaf row, -1 = a section */
    unsigned    items;      /* ST_SEQ: items read */
    yaml_mark_t mark;       /* ST_SEQ, ST_SMAP_*: start of the list or map */
} frame_t;

typedef struct {
    char   path[PATH_LEN];
    size_t line;
} seen_t;

typedef struct {
    const seg_cfg_schema_t *schema;
    unsigned char *base;            /* the scratch copy */
    const char    *name;
    const char    *buf;
    size_t         len;
    char           path[PATH_LEN];  /* dotted path of the current key */
    size_t         plen;
    frame_t        stack[MAX_DEPTH];
    int            top;
    int            documents;
    seen_t        *seen;            /* every key accepted so far */
    size_t         nseen, capseen;
    int            key_checked;     /* path ends in a valid sub-key: show it
                                     * whole in messages, not cut */
    char          *errstr;
    size_t         errstr_size;
} loader_t;

/* Reports "NAME:LINE:COL: key 'PATH': reason" (key part only if key). */
static int fail_at(loader_t *L, size_t line0, size_t col0, const char *key,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail_at(loader_t *L, size_t line0, size_t col0, const char *key,
                   const char *fmt, ...)
{
    char why[WHY_LEN * 2], k[PATH_LEN + 16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (key) {
        show_max(k, sizeof k, key, strlen(key), 1,
                 L->key_checked ? PATH_LEN : SHOW_MAX);
        errf(L->errstr, L->errstr_size, "%s:%zu:%zu: key %s: %s", L->name,
             line0 + 1, col0 + 1, k, why);
    } else {
        errf(L->errstr, L->errstr_size, "%s:%zu:%zu: %s", L->name, line0 + 1,
             col0 + 1, why);
    }
    return -1;
}

static int fail_ev(loader_t *L, const yaml_event_t *ev, const char *key,
                   const char *why)
{
    return fail_at(L, ev->start_mark.line, ev->start_mark.column, key, "%s", why);
}

static const char *node_name(yaml_event_type_t t)
{
    switch (t) {
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_SEQUENCE_START_EVENT: return "a list";
    case YAML_ALIAS_EVENT: return "an alias";
    default: return "a scalar";
    }
}

/* Anchors, aliases and tags add indirection a flat config never needs,
 * and aliases are the door to "billion laughs" expansion: refuse them. */
static int reject_extras(loader_t *L, const yaml_event_t *ev, const char *key)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return fail_ev(L, ev, key, "YAML aliases (*name) are not supported");
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        break;
    default:
        return 0;
    }
    if (anchor) return fail_ev(L, ev, key, "YAML anchors (&name) are not supported");
    if (tag) return fail_ev(L, ev, key, "YAML tags (!tag) are not supported");
    return 0;
}

static int is_null_scalar(const yaml_event_t *ev)
{
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    return n == 0 || (n == 1 && v[0] == '~') ||
           (n == 4 && (!memcmp(v, "null", 4) || !memcmp(v, "Null", 4) ||
                       !memcmp(v, "NULL", 4)));
}

static int push(loader_t *L, const yaml_event_t *ev, state_t st, int row)
{
    if (L->top + 1 >= MAX_DEPTH)    /* unreachable with a sane schema */
        return fail_ev(L, ev, L->plen ? L->path : NULL, "nested too deeply");
    frame_t *f = &L->stack[++L->top];
    f->st = st;
    f->plen = L->plen;
    f->row = row;
    f->items = 0;
    f->mark = ev->start_mark;
    return 0;
}

/* A value is complete: the enclosing mapping expects its next key. */
static void value_done(loader_t *L)
{
    frame_t *f = &L->stack[L->top];
    if (f->st == ST_MAP_VAL) {
        f->st = ST_MAP_KEY;
        L->plen = f->plen;
        L->path[L->plen] = '\0';
    }
}

/* Index in schema->foreign of the section at path, or -1. */
static int foreign_of(const seg_cfg_schema_t *s, const char *path, size_t len)
{
    for (int i = 0; s->foreign && s->foreign[i]; i++)
        if (strlen(s->foreign[i]) == len && memcmp(s->foreign[i], path, len) == 0) return i;
    return -1;
}

static int on_key(loader_t *L, const yaml_event_t *ev)
{
    frame_t *f = &L->stack[L->top];
    const char *key = (const char *)ev->data.scalar.value;
    size_t klen = ev->data.scalar.length;
    char full[PATH_LEN];
    size_t flen = f->plen + (f->plen ? 1 : 0) + klen;
    int fits = flen < sizeof full;

    if (fits) {
        memcpy(full, L->path, f->plen);
        if (f->plen) full[f->plen] = '.';
        memcpy(full + flen - klen, key, klen);
        full[flen] = '\0';
    } else {
        /* Too long to be any key: name it as far as it fits. */
        size_t o = f->plen < sizeof full - 1 ? f->plen : sizeof full - 1;
        memcpy(full, L->path, o);
        if (f->plen && o < sizeof full - 1) full[o++] = '.';
        size_t k = klen < sizeof full - 1 - o ? klen : sizeof full - 1 - o;
        memcpy(full + o, key, k);
        full[o + k] = '\0';
    }
    if (reject_extras(L, ev, full) != 0) return -1;
    int row = -1;
    if (memchr(key, '\0', klen))   /* the message shows it up to the NUL */
        return fail_ev(L, ev, full, "keys must not contain NUL bytes");
    if (!fits || klen == 0)
        return fail_ev(L, ev, full, "unknown key");
    row = find_leaf(L->schema, full, flen);
    if (row < 0 && !memchr(key, '.', klen) && foreign_of(L->schema, full, flen) >= 0)
        row = ROW_FOREIGN;
    int section = row < 0 && row != ROW_FOREIGN && find_section(L->schema, full, flen) >= 0;
    if (memchr(key, '.', klen)) {
        /* "segments.window: 30d" would bypass the nesting and its
         * duplicate detection; say what to write instead. The same for
         * "kafka.consumer.fetch.min.bytes: 1": only the sub-key, inside
         * the map, may have dots. */
        if (row >= 0 || section || find_map_prefix(L->schema, full, flen) >= 0)
            return fail_ev(L, ev, full, "dotted keys are not allowed in YAML; "
                           "nest one mapping per section (dots are for --set)");
        return fail_ev(L, ev, full, "unknown key");
    }
    if (row < 0 && row != ROW_FOREIGN && !section) return fail_ev(L, ev, full, "unknown key");

    /* Known paths are unique per position, so one flat list of full paths
     * catches a repeat at any level, at the shallowest repeated key. */
    for (size_t i = 0; i < L->nseen; i++) {
        if (strcmp(L->seen[i].path, full) == 0)
            return fail_at(L, ev->start_mark.line, ev->start_mark.column, full,
                           "duplicate key (first set at line %zu)",
                           L->seen[i].line);
    }
    if (L->nseen == L->capseen) {
        size_t cap = L->capseen ? L->capseen * 2 : 16;
        seen_t *n = realloc(L->seen, cap * sizeof *n);
        if (!n) return fail_ev(L, ev, full, "out of memory");
        L->seen = n;
        L->capseen = cap;
    }
    memcpy(L->seen[L->nseen].path, full, flen + 1);
    L->seen[L->nseen].line = ev->start_mark.line + 1;
    L->nseen++;

    memcpy(L->path, full, flen + 1);
    L->plen = flen;
    f->st = ST_MAP_VAL;
    f->row = row;
    return 0;
}

static int on_value(loader_t *L, const yaml_event_t *ev)
{
    frame_t *f = &L->stack[L->top];
    const seg_cfg_key_t *r = f->row >= 0 ? &L->schema->keys[f->row] : NULL;
    char exp[160], why[WHY_LEN * 2], got[256];

    if (f->row == ROW_FOREIGN) {
        /* Another module's section: taken whole, read by that module. */
        if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) {
            if (push(L, ev, ST_SKIP, ROW_FOREIGN)) return -1;
            L->stack[L->top].items = 1;
            return 0;
        }
        value_done(L);
        return 0;
    }

    if (reject_extras(L, ev, L->path) != 0) return -1;
    if (r && r->type == SEG_CFG_STRMAP) {
        /* The file's map replaces the default one as a whole. No value is
         * an error like for any key: "{}" is the empty map, and deleting
         * the line keeps the default. */
        describe(r, 0, exp, sizeof exp);
        if (ev->type == YAML_MAPPING_START_EVENT) {
            memset(map_of(r, L->base), 0, sizeof(seg_cfg_strmap_t));
            return push(L, ev, ST_SMAP_KEY, f->row);
        }
        if (ev->type == YAML_SCALAR_EVENT && is_null_scalar(ev)) {
            snprintf(why, sizeof why, "expected %s, got no value (write {} "
                     "for none)", exp);
        } else if (ev->type == YAML_SCALAR_EVENT) {
            show(got, sizeof got, (const char *)ev->data.scalar.value,
                 ev->data.scalar.length, 1);
            snprintf(why, sizeof why, "expected %s, got %s", exp, got);
        } else {
            snprintf(why, sizeof why, "expected %s, got %s", exp,
                     node_name(ev->type));
        }
        return fail_ev(L, ev, L->path, why);
    }
    if (!r) {
        /* A section. An empty one ("output:" with its keys commented
         * out) is fine: it sets nothing. */
        if (ev->type == YAML_MAPPING_START_EVENT)
            return push(L, ev, ST_MAP_KEY, -1);
        if (ev->type == YAML_SCALAR_EVENT && is_null_scalar(ev)) {
            value_done(L);
            return 0;
        }
        if (ev->type == YAML_SCALAR_EVENT) {
            show(got, sizeof got, (const char *)ev->data.scalar.value,
                 ev->data.scalar.length, 1);
            snprintf(why, sizeof why, "is a section: expected a mapping, got %s", got);
        } else {
            snprintf(why, sizeof why, "is a section: expected a mapping, got %s",
                     node_name(ev->type));
        }
        return fail_ev(L, ev, L->path, why);
    }

    describe(r, 0, exp, sizeof exp);
    if (r->list_max) {
        if (ev->type == YAML_SEQUENCE_START_EVENT)
            return push(L, ev, ST_SEQ, f->row);
        if (ev->type == YAML_SCALAR_EVENT && !is_null_scalar(ev)) {
            show(got, sizeof got, (const char *)ev->data.scalar.value,
                 ev->data.scalar.length, 1);
            snprintf(why, sizeof why, "expected %s, got %s", exp, got);
        } else if (ev->type == YAML_SCALAR_EVENT) {
            snprintf(why, sizeof why, "expected %s, got no value", exp);
        } else {
            snprintf(why, sizeof why, "expected %s, got %s", exp,
                     node_name(ev->type));
        }
        return fail_ev(L, ev, L->path, why);
    }
    if (ev->type == YAML_SEQUENCE_START_EVENT && strcmp(r->key, "output.features") == 0) {
        /* A list of features to add (docs/rules.md, "Features in the
         * output"): on, and the list is the rule module's to read. */
        if (apply_element(r, L->base, 0, "true", 4, false, why, sizeof why) != 0)
            return fail_ev(L, ev, L->path, why);
        mark_origin(L->schema, L->base, f->row, SEG_CFG_SRC_FILE,
                    ev->start_mark.line + 1, ev->start_mark.column + 1);
        if (push(L, ev, ST_SKIP, ROW_FOREIGN)) return -1;
        L->stack[L->top].items = 1;
        return 0;
    }
    if (ev->type != YAML_SCALAR_EVENT) {
        snprintf(why, sizeof why, "expected %s, got %s", exp, node_name(ev->type));
        return fail_ev(L, ev, L->path, why);
    }
    if (is_null_scalar(ev)) {
        snprintf(why, sizeof why, "expected %s, got no value", exp);
        return fail_ev(L, ev, L->path, why);
    }
    if (apply_element(r, L->base, 0, (const char *)ev->data.scalar.value,
                      ev->data.scalar.length,
                      ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE,
                      why, sizeof why) != 0)
        return fail_ev(L, ev, L->path, why);
    mark_origin(L->schema, L->base, f->row, SEG_CFG_SRC_FILE,
                ev->start_mark.line + 1, ev->start_mark.column + 1);
    value_done(L);
    return 0;
}

static int on_item(loader_t *L, const yaml_event_t *ev)
{
    frame_t *f = &L->stack[L->top];
    const seg_cfg_key_t *r = &L->schema->keys[f->row];
    char exp[160], why[WHY_LEN];

    if (ev->type == YAML_SEQUENCE_END_EVENT) {
        if (f->items < r->list_min) {
            describe(r, 0, exp, sizeof exp);
            return fail_at(L, f->mark.line, f->mark.column, L->path,
                           "expected %s, got %u item%s", exp, f->items,
                           f->items == 1 ? "" : "s");
        }
        if (r->type == SEG_CFG_STRLIST) store_count(r, L->base, f->items);
        mark_origin(L->schema, L->base, f->row, SEG_CFG_SRC_FILE,
                    f->mark.line + 1, f->mark.column + 1);
        L->top--;
        value_done(L);
        return 0;
    }
    if (reject_extras(L, ev, L->path) != 0) return -1;
    describe(r, 1, exp, sizeof exp);
    if (ev->type != YAML_SCALAR_EVENT)
        return fail_at(L, ev->start_mark.line, ev->start_mark.column, L->path,
                       "item %u: expected %s, got %s", f->items + 1, exp,
                       node_name(ev->type));
    if (f->items >= r->list_max) {
        describe(r, 0, exp, sizeof exp);
        return fail_at(L, ev->start_mark.line, ev->start_mark.column, L->path,
                       "expected %s, got more than %u items", exp, r->list_max);
    }
    if (is_null_scalar(ev))
        return fail_at(L, ev->start_mark.line, ev->start_mark.column, L->path,
                       "item %u: expected %s, got no value", f->items + 1, exp);
    if (apply_element(r, L->base, f->items, (const char *)ev->data.scalar.value,
                      ev->data.scalar.length,
                      ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE,
                      why, sizeof why) != 0)
        return fail_at(L, ev->start_mark.line, ev->start_mark.column, L->path,
                       "item %u: %s", f->items + 1, why);
    f->items++;
    return 0;
}

/* A sub-key of a string map, or the map's end. */
static int on_subkey(loader_t *L, const yaml_event_t *ev)
{
    frame_t *f = &L->stack[L->top];
    const seg_cfg_key_t *r = &L->schema->keys[f->row];
    seg_cfg_strmap_t *m = map_of(r, L->base);
    char full[PATH_LEN], why[WHY_LEN];

    if (ev->type == YAML_MAPPING_END_EVENT) {
        mark_origin(L->schema, L->base, f->row, SEG_CFG_SRC_FILE,
                    f->mark.line + 1, f->mark.column + 1);
        L->top--;
        value_done(L);
        return 0;
    }
    if (ev->type != YAML_SCALAR_EVENT) {
        if (reject_extras(L, ev, L->path) != 0) return -1;
        snprintf(why, sizeof why, "keys must be plain names, got %s",
                 node_name(ev->type));
        return fail_ev(L, ev, L->path, why);
    }
    const char *key = (const char *)ev->data.scalar.value;
    size_t klen = ev->data.scalar.length;
    /* path '.' key, cut to fit (an over-long sub-key fails its check) */
    size_t k = klen < sizeof full - 2 - f->plen ? klen : sizeof full - 2 - f->plen;
    memcpy(full, L->path, f->plen);
    full[f->plen] = '.';
    memcpy(full + f->plen + 1, key, k);
    full[f->plen + 1 + k] = '\0';
    if (reject_extras(L, ev, full) != 0) return -1;
    if (check_subkey(key, klen, why, sizeof why) != 0)
        return fail_ev(L, ev, full, why);
    L->key_checked = 1;
    int dup = map_find_n(m, key, klen);
    if (dup >= 0)
        return fail_at(L, ev->start_mark.line, ev->start_mark.column, full,
                       "duplicate key (first set at line %u)", m->e[dup].line);
    if (m->n >= SEG_CFG_MAP_MAX)
        return fail_at(L, ev->start_mark.line, ev->start_mark.column, full,
                       "more than %d entries in %s", SEG_CFG_MAP_MAX, r->key);
    /* The entry is counted once its value is read. */
    seg_cfg_mapentry_t *e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, klen);
    e->line = (uint32_t)ev->start_mark.line + 1;
    e->col = (uint32_t)ev->start_mark.column + 1;
    e->src = SEG_CFG_SRC_FILE;
    L->plen = f->plen + 1 + klen;
    memcpy(L->path, full, L->plen + 1);
    f->st = ST_SMAP_VAL;
    return 0;
}

/* The string of the sub-key just read. */
static int on_subval(loader_t *L, const yaml_event_t *ev)
{
    frame_t *f = &L->stack[L->top];
    seg_cfg_strmap_t *m = map_of(&L->schema->keys[f->row], L->base);
    char why[WHY_LEN];

    if (reject_extras(L, ev, L->path) != 0) return -1;
    if (ev->type == YAML_MAPPING_START_EVENT)
        /* Most likely "fetch:\n  min.bytes: 1", a property split into
         * nested mappings. */
        return fail_ev(L, ev, L->path, "expected a string, got a mapping (a "
                       "dotted sub-key is written whole, as 'a.b: value')");
    if (ev->type != YAML_SCALAR_EVENT) {
        snprintf(why, sizeof why, "expected a string, got %s", node_name(ev->type));
        return fail_ev(L, ev, L->path, why);
    }
    if (is_null_scalar(ev))
        return fail_ev(L, ev, L->path, "expected a string, got no value");
    const char *v = (const char *)ev->data.scalar.value;
    size_t vlen = ev->data.scalar.length;
    if (check_mapval(v, vlen, why, sizeof why) != 0)
        return fail_ev(L, ev, L->path, why);
    memcpy(m->e[m->n].val, v, vlen);
    m->n++;
    f->st = ST_SMAP_KEY;
    L->key_checked = 0;
    L->plen = f->plen;
    L->path[L->plen] = '\0';
    return 0;
}

static int on_event(loader_t *L, const yaml_event_t *ev)
{
    frame_t *f = &L->stack[L->top];
    char why[WHY_LEN];

    switch (f->st) {
    case ST_STREAM:
        if (ev->type == YAML_DOCUMENT_START_EVENT) {
            if (L->documents++ > 0)
                return fail_ev(L, ev, NULL, "only one YAML document is allowed");
            f->st = ST_DOC;
        }
        return 0;   /* stream start/end */
    case ST_DOC:
        if (ev->type == YAML_MAPPING_START_EVENT) {
            if (reject_extras(L, ev, NULL) != 0) return -1;
            f->st = ST_DOC_END;
            return push(L, ev, ST_MAP_KEY, -1);
        }
        if (ev->type == YAML_SCALAR_EVENT && is_null_scalar(ev) &&
            !ev->data.scalar.tag && !ev->data.scalar.anchor) {
            f->st = ST_DOC_END;   /* "---" alone: an empty document */
            return 0;
        }
        if (reject_extras(L, ev, NULL) != 0) return -1;
        snprintf(why, sizeof why, "expected a mapping of sections at the top "
                 "level, got %s", node_name(ev->type));
        return fail_ev(L, ev, NULL, why);
    case ST_DOC_END:
        f->st = ST_STREAM;  /* only a document end can follow the root */
        return 0;
    case ST_MAP_KEY:
        if (ev->type == YAML_MAPPING_END_EVENT) {
            L->top--;
            value_done(L);
            return 0;
        }
        if (ev->type == YAML_SCALAR_EVENT) return on_key(L, ev);
        if (reject_extras(L, ev, L->plen ? L->path : NULL) != 0) return -1;
        snprintf(why, sizeof why, "keys must be plain names, got %s",
                 node_name(ev->type));
        return fail_ev(L, ev, L->plen ? L->path : NULL, why);
    case ST_MAP_VAL:
        return on_value(L, ev);
    case ST_SEQ:
        return on_item(L, ev);
    case ST_SMAP_KEY:
        return on_subkey(L, ev);
    case ST_SMAP_VAL:
        return on_subval(L, ev);
    case ST_SKIP:
        if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT)
            f->items++;
        else if ((ev->type == YAML_MAPPING_END_EVENT || ev->type == YAML_SEQUENCE_END_EVENT) &&
                 --f->items == 0) {
            L->top--;
            value_done(L);
        }
        return 0;
    }
    return 0;
}

/* libyaml counts lines and columns in characters; find the byte of a
 * mark to look at what is there. Returns len if out of range. */
static size_t mark_offset(const char *buf, size_t len, size_t line, size_t col)
{
    size_t i = 0;
    for (size_t l = 0; l < line && i < len; i++)
        if (buf[i] == '\n') l++;
    for (size_t c = 0; i < len; i++) {
        if (((unsigned char)buf[i] & 0xC0) == 0x80) continue;
        if (c++ == col) return i;
    }
    return len;
}

static int syntax_error(loader_t *L, const yaml_parser_t *p)
{
    char why[WHY_LEN * 2];
    size_t line = 0, col = 0;
    const char *problem = p->problem ? p->problem : "unknown error";

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return fail_at(L, 0, 0, NULL, "out of memory while parsing YAML");
    case YAML_READER_ERROR: {
        /* The reader reports a byte offset, not a mark. */
        size_t off = p->problem_offset < L->len ? p->problem_offset : L->len;
        for (size_t i = 0; i < off; i++) {
            if (L->buf[i] == '\n') {
                line++;
                col = 0;
            } else if (((unsigned char)L->buf[i] & 0xC0) != 0x80) {
                col++;
            }
        }
        if (p->problem_value >= 0)
            snprintf(why, sizeof why, "YAML syntax error: %s (byte 0x%02x)",
                     problem, (unsigned)p->problem_value & 0xff);
        else
            snprintf(why, sizeof why, "YAML syntax error: %s", problem);
        return fail_at(L, line, col, NULL, "%s", why);
    }
    default:
        break;
    }
    line = p->problem_mark.line;
    col = p->problem_mark.column;
    size_t off = mark_offset(L->buf, L->len, line, col);
    if (off < L->len && L->buf[off] == '\t') {
        /* libyaml's "cannot start any token" does not say why. */
        snprintf(why, sizeof why, "YAML syntax error: tab character; YAML "
                 "indentation must use spaces");
    } else if (p->context) {
        /* "value: "R" + x": YAML reads a quoted string, then finds text
         * where the next key should be. Rule expressions (docs/rules.md)
         * run into this; say what to write. */
        size_t b = off;
        while (b > 0 && b <= L->len && (L->buf[b - 1] == ' ' || L->buf[b - 1] == '\t')) b--;
        const char *hint = b > 0 && b <= L->len && (L->buf[b - 1] == '"' || L->buf[b - 1] == '\'')
            ? "; a value that starts with a quote ends at its closing quote: wrap an "
              "expression that starts with a string in parentheses, e.g. (\"R\" + x)" : "";
        snprintf(why, sizeof why, "YAML syntax error: %s (%s at line %zu, "
                 "column %zu)%s", problem, p->context,
                 (size_t)p->context_mark.line + 1,
                 (size_t)p->context_mark.column + 1, hint);
    } else {
        snprintf(why, sizeof why, "YAML syntax error: %s", problem);
    }
    return fail_at(L, line, col, NULL, "%s", why);
}

int seg_cfg_schema_load_buffer(const seg_cfg_schema_t *schema, void *base,
                               const char *name, const char *buf, size_t len,
                               char *errstr, size_t errstr_size)
{
    loader_t L;
    yaml_parser_t parser;
    yaml_event_t ev;
    int rc = -1;

    memset(&L, 0, sizeof L);
    L.schema = schema;
    L.name = name;
    L.buf = buf;
    L.len = len;
    L.errstr = errstr;
    L.errstr_size = errstr_size;
    L.stack[0].st = ST_STREAM;
    L.base = malloc(schema->struct_size);
    if (!L.base) {
        errf(errstr, errstr_size, "%s: out of memory", name);
        return -1;
    }
    memcpy(L.base, base, schema->struct_size);

    /* Positions recorded by an earlier file point into that file, which
     * this file's name would misattribute. */
    seg_cfg_origins_t *o = origins_of(schema, L.base);
    for (size_t i = 0; i < schema->n && i < SEG_CFG_MAX_KEYS; i++) {
        if (o->key[i].src == SEG_CFG_SRC_FILE)
            o->key[i].src = SEG_CFG_SRC_EARLIER_FILE;
        if (schema->keys[i].type != SEG_CFG_STRMAP) continue;
        seg_cfg_strmap_t *m = map_of(&schema->keys[i], L.base);
        for (unsigned k = 0; k < m->n && k < SEG_CFG_MAP_MAX; k++) {
            if (m->e[k].src == SEG_CFG_SRC_FILE)
                m->e[k].src = SEG_CFG_SRC_EARLIER_FILE;
        }
    }
    snprintf(o->file, sizeof o->file, "%s", name);

    if (!yaml_parser_initialize(&parser)) {
        errf(errstr, errstr_size, "%s: out of memory", name);
        goto fail;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    for (;;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            syntax_error(&L, &parser);
            break;
        }
        int end = ev.type == YAML_STREAM_END_EVENT;
        int erc = on_event(&L, &ev);
        yaml_event_delete(&ev);
        if (erc != 0) break;
        if (end) {
            rc = 0;
            break;
        }
    }
    yaml_parser_delete(&parser);
    if (rc == 0) memcpy(base, L.base, schema->struct_size);
fail:
    free(L.seen);
    free(L.base);
    return rc;
}

int seg_cfg_load_buffer(seg_cfg_t *cfg, const char *name, const char *buf,
                        size_t len, char *errstr, size_t errstr_size)
{
    return seg_cfg_schema_load_buffer(&cfg_schema, cfg, name, buf, len, errstr,
                                      errstr_size);
}

int seg_cfg_load_file(seg_cfg_t *cfg, const char *path, char *errstr,
                      size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;

    if (!f) {
        errf(errstr, errstr_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            /* A config is a few KB; 16 MB means the wrong file. */
            if (cap >= (16u << 20)) {
                errf(errstr, errstr_size, "%s: file too large for a config", path);
                goto fail;
            }
            cap = cap ? cap * 2 : 4096;
            char *n = realloc(buf, cap);
            if (!n) {
                errf(errstr, errstr_size, "%s: out of memory", path);
                goto fail;
            }
            buf = n;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        errf(errstr, errstr_size, "%s: read error: %s", path, strerror(errno));
        goto fail;
    }
    rc = seg_cfg_load_buffer(cfg, path, buf, len, errstr, errstr_size);
fail:
    free(buf);
    fclose(f);
    return rc;
}

/* ---- Validation ------------------------------------------------------------ */

/* Prefix for a validation message about row idx: where it was set. */
static void where(const seg_cfg_schema_t *s, const void *base, size_t idx,
                  char *buf, size_t size)
{
    const seg_cfg_origins_t *o = origins_of(s, base);
    const seg_cfg_origin_t *og = idx < SEG_CFG_MAX_KEYS ? &o->key[idx] : NULL;
    const char *key = s->keys[idx].key;
    if (og && og->src == SEG_CFG_SRC_FILE)
        snprintf(buf, size, "%.*s:%u:%u: key '%s'", SEG_CFG_FILE_MAX, o->file,
                 og->line, og->col, key);
    else if (og && og->src == SEG_CFG_SRC_SET)
        snprintf(buf, size, "--set %s", key);
    else
        snprintf(buf, size, "key '%s'", key);
}

static uint32_t seq_of(const seg_cfg_schema_t *s, const void *base, size_t idx)
{
    return idx < SEG_CFG_MAX_KEYS ? origins_of(s, base)->key[idx].seq : 0;
}

static int vfail(const seg_cfg_schema_t *s, const void *base, size_t idx,
                 char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int vfail(const seg_cfg_schema_t *s, const void *base, size_t idx,
                 char *errstr, size_t errstr_size, const char *fmt, ...)
{
    char pre[SEG_CFG_FILE_MAX + 160], why[WHY_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    where(s, base, idx, pre, sizeof pre);
    errf(errstr, errstr_size, "%s: %s", pre, why);
    return -1;
}

static int validate_row(const seg_cfg_schema_t *s, const void *base, size_t i,
                        char *errstr, size_t errstr_size)
{
    const seg_cfg_key_t *r = &s->keys[i];
    char why[WHY_LEN], got[40];

    if (r->type == SEG_CFG_STRMAP) {
        const seg_cfg_strmap_t *m = map_of(r, base);
        if (m->n > SEG_CFG_MAP_MAX)
            return vfail(s, base, i, errstr, errstr_size,
                         "more than %d entries (%u)", SEG_CFG_MAP_MAX, m->n);
        for (unsigned k = 0; k < m->n; k++) {
            const seg_cfg_mapentry_t *e = &m->e[k];
            const char *kn = memchr(e->key, '\0', sizeof e->key);
            const char *vn = memchr(e->val, '\0', sizeof e->val);
            if (!kn || !vn)
                return vfail(s, base, i, errstr, errstr_size,
                             "entry %u: string is not terminated", k + 1);
            size_t kl = (size_t)(kn - e->key);
            if (check_subkey(e->key, kl, why, sizeof why) != 0)
                return vfail(s, base, i, errstr, errstr_size, "entry %u: %s",
                             k + 1, why);
            int first = map_find_n(m, e->key, kl);
            if (first >= 0 && (unsigned)first < k) {
                show(why, sizeof why, e->key, kl, 1);
                return vfail(s, base, i, errstr, errstr_size,
                             "entry %u: duplicate sub-key %s", k + 1, why);
            }
        }
        return 0;
    }
    if (is_string_type(r->type)) {
        unsigned n = r->type == SEG_CFG_STRLIST ? load_count(r, base) : 1;
        if (r->type == SEG_CFG_STRLIST && (n < r->list_min || n > r->list_max)) {
            char exp[160];
            describe(r, 0, exp, sizeof exp);
            return vfail(s, base, i, errstr, errstr_size,
                         "expected %s, got %u items", exp, n);
        }
        for (unsigned k = 0; k < n; k++) {
            const char *str = str_slot(r, (void *)base, k);
            size_t cap = r->type == SEG_CFG_STRING ? r->size : SEG_CFG_STR_MAX;
            const char *nul = memchr(str, '\0', cap);
            if (!nul)
                return vfail(s, base, i, errstr, errstr_size,
                             "string is not terminated");
            if (check_string(r, str, (size_t)(nul - str), why, sizeof why) != 0) {
                if (r->type == SEG_CFG_STRLIST)
                    return vfail(s, base, i, errstr, errstr_size, "item %u: %s",
                                 k + 1, why);
                return vfail(s, base, i, errstr, errstr_size, "%s", why);
            }
        }
        return 0;
    }
    if (r->type == SEG_CFG_BOOL) return 0;
    unsigned n = r->list_max ? r->list_max : 1;
    for (unsigned k = 0; k < n; k++) {
        int64_t v = load_num(r, base, k);
        if (r->type == SEG_CFG_ENUM) {
            if (v < 0 || (size_t)v >= enum_count(r))
                return vfail(s, base, i, errstr, errstr_size,
                             "invalid value #%" PRId64, v);
            continue;
        }
        if (v < r->min || v > r->max) {
            fmt_num(r, v, got, sizeof got);
            range_error(r, got, why, sizeof why);
            if (r->list_max)
                return vfail(s, base, i, errstr, errstr_size, "item %u: %s",
                             k + 1, why);
            return vfail(s, base, i, errstr, errstr_size, "%s", why);
        }
    }
    return 0;
}

int seg_cfg_schema_validate(const seg_cfg_schema_t *schema, const void *base,
                            char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < schema->n; i++) {
        if (validate_row(schema, base, i, errstr, errstr_size) != 0) return -1;
    }
    return 0;
}

/* lo < hi (strict) or lo <= hi. The key assigned last is blamed: it is
 * the one the user just touched, and it has a position to point at. */
static int check_order(const seg_cfg_t *cfg, const char *lo_key,
                       const char *hi_key, int strict, char *errstr,
                       size_t errstr_size)
{
    const seg_cfg_schema_t *s = &cfg_schema;
    int lo = seg_cfg_schema_find(s, lo_key), hi = seg_cfg_schema_find(s, hi_key);
    assert(lo >= 0 && hi >= 0);
    const seg_cfg_key_t *rl = &s->keys[lo], *rh = &s->keys[hi];
    int64_t vl = load_num(rl, cfg, 0), vh = load_num(rh, cfg, 0);
    if (strict ? vl < vh : vl <= vh) return 0;
    char sl[40], sh[40];
    fmt_num(rl, vl, sl, sizeof sl);
    fmt_num(rh, vh, sh, sizeof sh);
    if (seq_of(s, cfg, (size_t)lo) > seq_of(s, cfg, (size_t)hi))
        return vfail(s, cfg, (size_t)lo, errstr, errstr_size,
                     "must be %s %s (%s), got %s", strict ? "<" : "<=", hi_key,
                     sh, sl);
    return vfail(s, cfg, (size_t)hi, errstr, errstr_size,
                 "must be %s %s (%s), got %s", strict ? ">" : ">=", lo_key, sl, sh);
}

static int check_ascending(const seg_cfg_t *cfg, const char *key,
                           char *errstr, size_t errstr_size)
{
    const seg_cfg_schema_t *s = &cfg_schema;
    int idx = seg_cfg_schema_find(s, key);
    assert(idx >= 0);
    const seg_cfg_key_t *r = &s->keys[idx];
    for (unsigned k = 1; k < r->list_max; k++) {
        int64_t a = load_num(r, cfg, k - 1), b = load_num(r, cfg, k);
        if (b > a) continue;
        char sa[40], sb[40];
        fmt_num(r, a, sa, sizeof sa);
        fmt_num(r, b, sb, sizeof sb);
        return vfail(s, cfg, (size_t)idx, errstr, errstr_size,
                     "items must be strictly ascending, but item %u (%s) is not "
                     "greater than item %u (%s)", k + 1, sb, k, sa);
    }
    return 0;
}

/* ---- Topics: one role each -----------------------------------------------
 * The daemon reads the input topics, writes transitions, rejected records,
 * state changes and routed subsets. A topic in two of those roles would
 * feed the daemon its own output (an input that is also the output loops
 * forever) or mix record kinds a reader cannot tell apart (a changelog
 * that also holds transitions cannot be restored). */

typedef struct {
    int                       row;     /* blamed key */
    const seg_cfg_mapentry_t *e;       /* a route entry, else NULL */
    unsigned                  item;    /* 1-based input topic, else 0 */
    int                       derived; /* changelog named after group_id */
    const char               *name;
} topic_t;

static int row_of(const char *key)
{
    int i = seg_cfg_schema_find(&cfg_schema, key);
    assert(i >= 0);
    return i;
}

/* Message prefix for a string-map entry: where the entry was set. */
static void where_entry(const seg_cfg_schema_t *s, const void *base, size_t idx,
                        const seg_cfg_mapentry_t *e, char *buf, size_t size)
{
    const seg_cfg_origins_t *o = origins_of(s, base);
    const char *key = s->keys[idx].key;
    if (e->src == SEG_CFG_SRC_FILE)
        snprintf(buf, size, "%.*s:%u:%u: key '%s.%s'", SEG_CFG_FILE_MAX, o->file,
                 e->line, e->col, key, e->key);
    else if (e->src == SEG_CFG_SRC_SET)
        snprintf(buf, size, "--set %s.%s", key, e->key);
    else
        snprintf(buf, size, "key '%s.%s'", key, e->key);
}

static int topic_fail(const seg_cfg_t *cfg, const topic_t *t, char *errstr,
                      size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int topic_fail(const seg_cfg_t *cfg, const topic_t *t, char *errstr,
                      size_t errstr_size, const char *fmt, ...)
{
    char pre[SEG_CFG_FILE_MAX + PATH_LEN + 64], why[WHY_LEN * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (t->e) where_entry(&cfg_schema, cfg, (size_t)t->row, t->e, pre, sizeof pre);
    else where(&cfg_schema, cfg, (size_t)t->row, pre, sizeof pre);
    errf(errstr, errstr_size, "%s: %s", pre, why);
    return -1;
}

/* How a topic is named as the subject of a message, and as the other
 * party. Names are valid topics here: at most 249 plain bytes. */
static void topic_subject(const topic_t *t, char *buf, size_t size)
{
    if (t->item)
        snprintf(buf, size, "item %u ('%s')", t->item, t->name);
    else if (t->derived)
        snprintf(buf, size, "the changelog topic '%s' (kafka.group_id + "
                 "\"-changelog\", as kafka.changelog_topic is empty)", t->name);
    else
        snprintf(buf, size, "topic '%s'", t->name);
}

static void topic_other(const topic_t *t, char *buf, size_t size)
{
    if (t->item)
        snprintf(buf, size, "kafka.input_topics item %u", t->item);
    else if (t->derived)
        snprintf(buf, size, "the changelog topic (kafka.group_id + \"-changelog\")");
    else if (t->e)
        snprintf(buf, size, "the route topic routes.%s", t->e->key);
    else
        snprintf(buf, size, "%s", cfg_schema.keys[t->row].key);
}

static int check_topics(const seg_cfg_t *cfg, char *errstr, size_t errstr_size)
{
    const seg_cfg_schema_t *s = &cfg_schema;
    topic_t t[SEG_CFG_STRLIST_MAX + 3 + SEG_CFG_MAP_MAX];
    char changelog[sizeof cfg->kafka.group_id + 16], why[WHY_LEN];
    size_t n = 0;
    int routes = row_of("routes");

    for (unsigned k = 0; k < cfg->kafka.input_topics.n; k++)
        t[n++] = (topic_t){ .row = row_of("kafka.input_topics"), .item = k + 1,
                            .name = cfg->kafka.input_topics.item[k] };
    t[n++] = (topic_t){ .row = row_of("kafka.output_topic"),
                        .name = cfg->kafka.output_topic };
    t[n++] = (topic_t){ .row = row_of("kafka.dlq_topic"),
                        .name = cfg->kafka.dlq_topic };
    if (cfg->kafka.changelog_topic[0]) {
        t[n++] = (topic_t){ .row = row_of("kafka.changelog_topic"),
                            .name = cfg->kafka.changelog_topic };
    } else {
        topic_t d = { .row = row_of("kafka.group_id"), .derived = 1,
                      .name = changelog };
        snprintf(changelog, sizeof changelog, "%s-changelog", cfg->kafka.group_id);
        if (seg_cfg_check_topic(changelog, strlen(changelog), why, sizeof why) != 0)
            return topic_fail(cfg, &d, errstr, errstr_size,
                              "with kafka.changelog_topic empty the changelog "
                              "topic is kafka.group_id + \"-changelog\", but %s; "
                              "set kafka.changelog_topic", why);
        t[n++] = d;
    }
    for (unsigned k = 0; k < cfg->routes.n; k++) {
        const seg_cfg_mapentry_t *e = &cfg->routes.e[k];
        topic_t r = { .row = routes, .e = e, .name = e->key };
        if (seg_cfg_check_topic(e->key, strlen(e->key), why, sizeof why) != 0)
            return topic_fail(cfg, &r, errstr, errstr_size, "%s", why);
        t[n++] = r;
    }
    for (size_t j = 1; j < n; j++) {
        for (size_t i = 0; i < j; i++) {
            if (strcmp(t[i].name, t[j].name) != 0) continue;
            /* Blame the key assigned last; on a tie, the later role. */
            const topic_t *b = &t[j], *o = &t[i];
            if (seq_of(s, cfg, (size_t)t[i].row) > seq_of(s, cfg, (size_t)t[j].row)) {
                b = &t[i];
                o = &t[j];
            }
            char subj[TOPIC_MAX + 128], other[PATH_LEN + 64];
            topic_subject(b, subj, sizeof subj);
            topic_other(o, other, sizeof other);
            return topic_fail(cfg, b, errstr, errstr_size,
                              "%s is also %s; the input, output, DLQ, changelog "
                              "and route topics must all differ", subj, other);
        }
    }
    return 0;
}

int seg_cfg_where(const seg_cfg_t *cfg, const char *key,
                  const seg_cfg_mapentry_t *e, char *buf, size_t size)
{
    const seg_cfg_schema_t *s = &cfg_schema;
    if (size) buf[0] = '\0';
    if (!cfg || !key) return -1;
    size_t klen = strlen(key);
    int idx = find_leaf(s, key, klen);
    if (idx < 0) {
        int m = find_map_prefix(s, key, klen);
        if (m < 0) return -1;
        if (!e) {
            size_t off = strlen(s->keys[m].key) + 1;
            e = seg_cfg_map_find(map_of(&s->keys[m], cfg), key + off);
            if (!e) return -1;
        }
        idx = m;
    }
    const seg_cfg_origin_t *og = &cfg->origin.key[idx];
    uint8_t src = e ? e->src : og->src;
    uint32_t line = e ? e->line : og->line, col = e ? e->col : og->col;
    switch (src) {
    case SEG_CFG_SRC_FILE:
        snprintf(buf, size, "%.*s:%u:%u", SEG_CFG_FILE_MAX, cfg->origin.file,
                 line, col);
        break;
    case SEG_CFG_SRC_SET:
        snprintf(buf, size, "--set");
        break;
    case SEG_CFG_SRC_EARLIER_FILE:
        snprintf(buf, size, "earlier file");
        break;
    default:
        snprintf(buf, size, "default");
        break;
    }
    return 0;
}

int seg_cfg_validate(const seg_cfg_t *cfg, char *errstr, size_t errstr_size)
{
    /* Per-key ranges first (windows > 0, counts >= 1, record size bounds):
     * the cross-key rules assume each value is sane on its own. */
    if (seg_cfg_schema_validate(&cfg_schema, cfg, errstr, errstr_size) != 0)
        return -1;
    /* Lifecycle rules are tried in the order churned, silent, at_risk: with
     * the thresholds out of order a stage could never be reached. */
    if (check_order(cfg, "segments.lifecycle.at_risk_after",
                    "segments.lifecycle.silent_after", 0, errstr, errstr_size) ||
        check_order(cfg, "segments.lifecycle.silent_after",
                    "segments.lifecycle.churned_after", 0, errstr, errstr_size) ||
        check_order(cfg, "segments.value.b_min", "segments.value.a_min", 1,
                    errstr, errstr_size) ||
        check_ascending(cfg, "segments.rfm.recency", errstr, errstr_size) ||
        check_ascending(cfg, "segments.rfm.frequency", errstr, errstr_size) ||
        check_ascending(cfg, "segments.rfm.monetary", errstr, errstr_size) ||
        check_topics(cfg, errstr, errstr_size))
        return -1;
    return 0;
}

/* ---- Formatting and the table check ------------------------------------- */

size_t seg_cfg_format_value(const seg_cfg_schema_t *schema, const void *base,
                            size_t i, char *buf, size_t size)
{
    const seg_cfg_key_t *r = &schema->keys[i];
    char tmp[64];
    size_t o = 0;
    if (size) buf[0] = '\0';
    if (r->type == SEG_CFG_STRING)
        return (size_t)snprintf(buf, size, "%s", str_slot(r, (void *)base, 0));
    if (r->type == SEG_CFG_STRMAP)
        return fmt_map(map_of(r, base), buf, size);
    unsigned n = r->type == SEG_CFG_STRLIST ? load_count(r, base)
               : r->list_max ? r->list_max : 1;
    for (unsigned k = 0; k < n; k++) {
        const char *item = tmp;
        if (r->type == SEG_CFG_STRLIST) item = str_slot(r, (void *)base, k);
        else fmt_num(r, load_num(r, base, k), tmp, sizeof tmp);
        int w = snprintf(buf + (o < size ? o : size), o < size ? size - o : 0,
                         "%s%s", k ? "," : "", item);
        o += (size_t)w;
    }
    return o;
}

int seg_cfg_schema_check(const seg_cfg_schema_t *s, char *errstr,
                         size_t errstr_size)
{
    if (s->n > SEG_CFG_MAX_KEYS) {
        errf(errstr, errstr_size, "%zu keys, more than SEG_CFG_MAX_KEYS", s->n);
        return -1;
    }
    if (s->origin_offset + sizeof(seg_cfg_origins_t) > s->struct_size) {
        errf(errstr, errstr_size, "origins lie outside the struct");
        return -1;
    }
    for (size_t i = 0; i < s->n; i++) {
        const seg_cfg_key_t *r = &s->keys[i];
        const char *k = r->key;
        size_t klen = k ? strlen(k) : 0;
#define BAD(...) do { errf(errstr, errstr_size, __VA_ARGS__); return -1; } while (0)
        if (!k || klen == 0 || klen >= KEY_LEN) BAD("row %zu: bad key", i);
        for (size_t c = 0; c < klen; c++) {
            char ch = k[c];
            int ok = (ch >= 'a' && ch <= 'z') || is_digit(ch) || ch == '_' ||
                     (ch == '.' && c > 0 && c + 1 < klen && k[c + 1] != '.');
            if (!ok) BAD("key '%s': only [a-z0-9_] between dots", k);
        }
        if (find_leaf(s, k, klen) != (int)i) BAD("key '%s': listed twice", k);
        if (find_section(s, k, klen) >= 0)
            BAD("key '%s': is both a key and a section", k);
        if (!r->doc || !*r->doc) BAD("key '%s': no doc", k);
        if (!r->def) BAD("key '%s': no default", k);
        if (r->offset + r->size > s->struct_size)
            BAD("key '%s': field outside the struct", k);
        if (r->offset < s->origin_offset + sizeof(seg_cfg_origins_t) &&
            s->origin_offset < r->offset + r->size)
            BAD("key '%s': field overlaps the origins", k);
        for (size_t j = 0; j < i; j++) {
            const seg_cfg_key_t *q = &s->keys[j];
            if (r->offset < q->offset + q->size && q->offset < r->offset + r->size)
                BAD("key '%s': field overlaps that of '%s'", k, q->key);
        }
        if (r->min > r->max) BAD("key '%s': min > max", k);
        if (r->list_min > r->list_max) BAD("key '%s': list_min > list_max", k);
        size_t want = 0;
        switch (r->type) {
        case SEG_CFG_BOOL: want = sizeof(bool); break;
        case SEG_CFG_ENUM:
            want = sizeof(int);
            if (enum_count(r) == 0) BAD("key '%s': enum without names", k);
            break;
        case SEG_CFG_INT:
        case SEG_CFG_DURATION:
        case SEG_CFG_MONEY:
            want = sizeof(int64_t) * (r->list_max ? r->list_max : 1);
            if (r->list_min != r->list_max)
                BAD("key '%s': number lists have a fixed length", k);
            break;
        case SEG_CFG_STRING:
            want = r->size;
            if (r->size < 2) BAD("key '%s': string field too small", k);
            if (r->list_max) BAD("key '%s': use SEG_CFG_STRLIST for lists", k);
            break;
        case SEG_CFG_STRLIST:
            want = sizeof(seg_cfg_strlist_t);
            if (r->list_max == 0 || r->list_max > SEG_CFG_STRLIST_MAX)
                BAD("key '%s': list_max must be 1..%d", k, SEG_CFG_STRLIST_MAX);
            break;
        case SEG_CFG_STRMAP:
            want = sizeof(seg_cfg_strmap_t);
            if (r->list_max) BAD("key '%s': a string map is no list", k);
            break;
        default:
            BAD("key '%s': unknown type", k);
        }
        if (r->size != want) BAD("key '%s': field size %zu, type needs %zu", k,
                                 r->size, want);
        if ((r->list_max && r->type == SEG_CFG_BOOL) ||
            (r->list_max && r->type == SEG_CFG_ENUM))
            BAD("key '%s': lists of this type are not supported", k);
    }
    /* Every default must parse and pass the per-key checks. */
    unsigned char *tmp = calloc(1, s->struct_size);
    if (!tmp) BAD("out of memory");
    for (size_t i = 0; i < s->n; i++) {
        const seg_cfg_key_t *r = &s->keys[i];
        char why[WHY_LEN];
        if (apply_text(r, tmp, r->def, strlen(r->def), why, sizeof why) != 0) {
            free(tmp);
            BAD("key '%s': default '%s' is invalid: %s", r->key, r->def, why);
        }
    }
    int rc = seg_cfg_schema_validate(s, tmp, errstr, errstr_size);
    free(tmp);
#undef BAD
    return rc;
}

/* ---- host:port, topics -------------------------------------------------------- */

/* host:port; with any_host also ":port" (every interface). expected names
 * the accepted forms in the message. */
static int hostport(const char *s, size_t len, int any_host, const char *expected,
                    char *why, size_t why_size)
{
    char shown[256];
    const char *colon = NULL;
    show(shown, sizeof shown, s, len, 1);
    if (any_host && len > 0 && s[0] == ':') {
        colon = s;
    } else if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close || close == s + 1 || close + 1 >= s + len || close[1] != ':')
            goto bad;
        for (const char *p = s + 1; p < close; p++) {
            char c = *p;
            if (!(is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                  c == ':' || c == '.'))
                goto bad;
        }
        colon = close + 1;
    } else {
        for (size_t i = 0; i < len; i++)
            if (s[i] == ':') colon = s + i;   /* the last one */
        if (!colon || colon == s) goto bad;
        for (const char *p = s; p < colon; p++) {
            char c = *p;
            if (!(is_digit(c) || is_alpha(c) || c == '-' || c == '.' || c == '_'))
                goto bad;
        }
    }
    {
        const char *p = colon + 1, *end = s + len;
        if (p == end || end - p > 5) goto badport;
        unsigned port = 0;
        for (; p < end; p++) {
            if (!is_digit(*p)) goto badport;
            port = port * 10 + (unsigned)(*p - '0');
        }
        /* A listen address may ask for port 0: any free port (logged). */
        if ((port < 1 && !any_host) || port > 65535) goto badport;
    }
    return 0;
bad:
    errf(why, why_size, "expected %s, got %s", expected, shown);
    return -1;
badport:
    errf(why, why_size, "port must be %s..65535 in %s", any_host ? "0" : "1", shown);
    return -1;
}

int seg_cfg_check_hostport(const char *s, size_t len, char *why, size_t why_size)
{
    return hostport(s, len, 0, "host:port", why, why_size);
}

static int check_listen(const char *s, size_t len, char *why, size_t wsz)
{
    if (len == 3 && memcmp(s, "off", 3) == 0) return 0;
    return hostport(s, len, 1, "host:port, :port or off", why, wsz);
}

/* librdkafka's bootstrap.servers, or "embedded" for the in-process
 * cluster. */
static int check_brokers(const char *s, size_t len, char *why, size_t wsz)
{
    if (len == 8 && memcmp(s, "embedded", 8) == 0) return 0;
    if (!memchr(s, ',', len))
        return hostport(s, len, 0, "embedded or host:port[,host:port...]", why, wsz);
    const char *p = s, *end = s + len;
    for (unsigned item = 1;; item++) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        char iwhy[WHY_LEN];
        if (hostport(p, (size_t)(e - p), 0, "host:port", iwhy, sizeof iwhy) != 0) {
            errf(why, wsz, "broker %u: %s", item, iwhy);
            return -1;
        }
        if (!comma) return 0;
        p = comma + 1;
    }
}

int seg_cfg_check_topic(const char *s, size_t len, char *why, size_t why_size)
{
    char shown[256];
    if (len == 0) {
        errf(why, why_size, "must not be empty");
        return -1;
    }
    show(shown, sizeof shown, s, len, 1);
    if (len > TOPIC_MAX) {
        errf(why, why_size, "%s is too long for a Kafka topic name (at most %d "
             "bytes)", shown, TOPIC_MAX);
        return -1;
    }
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) {
        errf(why, why_size, "%s is not allowed as a Kafka topic name", shown);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!(is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '-')) {
            errf(why, why_size, "%s is not a valid Kafka topic name (only A-Z a-z "
                 "0-9 . _ - are allowed)", shown);
            return -1;
        }
    }
    return 0;
}

static int check_topic_or_empty(const char *s, size_t len, char *why, size_t wsz)
{
    return len == 0 ? 0 : seg_cfg_check_topic(s, len, why, wsz);
}
