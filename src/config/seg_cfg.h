/*
 * seg_cfg: segd's configuration, loaded from YAML and overridable with
 * --set dotted.key=value.
 *
 * The loader is strict on purpose: a typo in a threshold silently falling
 * back to a default would publish wrong segments for months. Unknown keys,
 * wrong types and out-of-range values are errors that name file:line:column
 * and the key. Every key, its type, default and range live in one schema
 * table in seg_cfg.c, which drives the YAML loader, --set and the
 * documentation check alike.
 *
 * seg_cfg_t is a plain struct of values: the engine reads it, nothing
 * writes it after loading. Durations are seconds, money is 1/10000 units.
 *
 * Two kinds of key are not fixed by the schema's key names: the raw
 * librdkafka properties (kafka.consumer.*, kafka.producer.*) and the route
 * topics (routes.*). Their meaning belongs to librdkafka and to the route
 * module, so each is one "string map" key (SEG_CFG_STRMAP) holding free-form
 * sub-keys, and every entry keeps where it was set, so the code that gives
 * an entry meaning can report an error in the same FILE:LINE:COL form.
 */
#ifndef SEG_CFG_H
#define SEG_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEG_RFM_TIERS 3   /* thresholds between the 4 non-zero tiers */

/* Capacities of the fixed storage behind the schema (see "Schema" below).
 * Fixed arrays keep seg_cfg_t a plain value: copied with memcpy, compared
 * with memcmp, nothing to free. */
#define SEG_CFG_MAX_KEYS    64    /* rows in one schema */
#define SEG_CFG_STR_MAX     256   /* bytes per string-list item, incl. NUL */
#define SEG_CFG_STRLIST_MAX 16    /* items per string list */
#define SEG_CFG_FILE_MAX    512   /* config file name kept for messages */
#define SEG_CFG_MAP_MAX     32    /* entries per string map */
#define SEG_CFG_MAPKEY_MAX  128   /* bytes per string-map sub-key, incl. NUL */

/* state.huge_pages: whether the state's large arrays are advised for
 * transparent huge pages (util/seg_hugemem.h). auto = on for replay, off
 * for the daemon: its forked checkpoint shares pages copy-on-write, and a
 * write then splits a huge page (Linux >= 5.8) or copies all 2 MiB of it
 * (older kernels). */
typedef enum { SEG_CFG_HUGE_AUTO = 0, SEG_CFG_HUGE_ON, SEG_CFG_HUGE_OFF } seg_cfg_huge_t;

/* Storage of a string-list key (e.g. kafka.input_topics). */
typedef struct seg_cfg_strlist {
    unsigned n;
    char     item[SEG_CFG_STRLIST_MAX][SEG_CFG_STR_MAX];
} seg_cfg_strlist_t;

/* One entry of a string map. line, col and src are bookkeeping like
 * seg_cfg_origin_t: pass the entry to seg_cfg_where to place a message. */
typedef struct seg_cfg_mapentry {
    char     key[SEG_CFG_MAPKEY_MAX];   /* sub-key, e.g. "fetch.min.bytes" */
    char     val[SEG_CFG_STR_MAX];
    uint32_t line, col;                 /* of the sub-key in origin.file
                                         * (src SEG_CFG_SRC_FILE only) */
    uint8_t  src;                       /* seg_cfg_src_t */
} seg_cfg_mapentry_t;

/* Storage of a string-map key: entries e[0..n-1] in the order written,
 * sub-keys unique. Sub-keys are 1..127 bytes of printable ASCII other than
 * space, '=' and ';' (dots allowed); values are 0..255 bytes, no NUL. */
typedef struct seg_cfg_strmap {
    unsigned           n;
    seg_cfg_mapentry_t e[SEG_CFG_MAP_MAX];
} seg_cfg_strmap_t;

/* Where a key's current value came from. seg_cfg_validate needs it: a
 * cross-key error is reported at the file:line:column (or --set) that
 * last touched one of the keys involved, not somewhere the user never
 * wrote. This is bookkeeping, not configuration; the engine ignores it. */
typedef enum seg_cfg_src {
    SEG_CFG_SRC_DEFAULT = 0,    /* built-in default */
    SEG_CFG_SRC_FILE,           /* origins.file at line:col */
    SEG_CFG_SRC_SET,            /* a --set override */
    SEG_CFG_SRC_EARLIER_FILE,   /* a file loaded before the current one */
} seg_cfg_src_t;

typedef struct seg_cfg_origin {
    uint32_t line, col;         /* 1-based, SEG_CFG_SRC_FILE only */
    uint32_t seq;               /* order of assignment; 0 = default */
    uint8_t  src;               /* seg_cfg_src_t */
} seg_cfg_origin_t;

typedef struct seg_cfg_origins {
    char             file[SEG_CFG_FILE_MAX]; /* last file loaded */
    uint32_t         next_seq;
    seg_cfg_origin_t key[SEG_CFG_MAX_KEYS];  /* indexed like the schema */
} seg_cfg_origins_t;

typedef enum { SEG_FMT_JSON = 0, SEG_FMT_MSGPACK = 1 } seg_format_t;
typedef enum { SEG_TIMEMODE_EVENT = 0, SEG_TIMEMODE_WALL = 1 } seg_timemode_t;
typedef enum {
    SEG_LOGLVL_DEBUG = 0, SEG_LOGLVL_INFO, SEG_LOGLVL_WARN, SEG_LOGLVL_ERROR
} seg_loglevel_t;
typedef enum { SEG_LOGFMT_PLAIN = 0, SEG_LOGFMT_JSON = 1 } seg_logformat_t;

typedef struct seg_segcfg {
    int64_t window;                 /* segments.window: F/M window, s */
    struct {
        bool    enabled;
        int64_t new_for;            /* new while A < new_for */
        int64_t at_risk_after;      /* at_risk when R >= */
        int64_t silent_after;       /* silent when R >= */
        int64_t churned_after;      /* churned when R >= */
        int64_t loyal_min_purchases;/* loyal when F >= */
    } lifecycle;
    struct {
        bool    enabled;
        int64_t a_min;              /* A when M >= a_min (units) */
        int64_t b_min;              /* B when M >= b_min; C when M > 0 */
    } value;
    struct {
        bool    enabled;
        int64_t recency[SEG_RFM_TIERS];   /* r=1 if R < [0], 2 if < [1], 3 if < [2], else 4 */
        int64_t frequency[SEG_RFM_TIERS]; /* f=0 if F=0, 1 below [0], 2 below [1], 3 below [2], else 4 */
        int64_t monetary[SEG_RFM_TIERS];  /* m=0 if M<=0, 1 below [0], 2 below [1], 3 below [2], else 4 */
    } rfm;
    struct {
        bool    enabled;
        int64_t window;             /* trailing complaint window, s */
        int64_t min_complaints;     /* in when complaints in window >= */
    } dissatisfied;
} seg_segcfg_t;

typedef struct seg_cfg {
    seg_segcfg_t seg;               /* segments.* */
    struct {
        seg_format_t format;        /* input.format */
        int64_t      max_record_bytes; /* input.max_record_bytes */
    } input;
    struct {
        bool features;              /* output.features: add R/F/M... */
    } output;
    /* Enums below are stored as int (seg_timemode_t, seg_loglevel_t,
     * seg_logformat_t). Checked topic names are 1..249 bytes of
     * [A-Za-z0-9._-], not "." or "..". */
    struct {
        char              brokers[512];      /* "host:port,host:port" or "embedded" */
        char              group_id[256];     /* non-empty */
        seg_cfg_strlist_t input_topics;      /* 1..16 distinct topics */
        char              output_topic[256];
        char              dlq_topic[256];
        char              changelog_topic[256]; /* "" = "<group_id>-changelog" */
        int64_t           embedded_partitions;  /* kafka.embedded.partitions, 1..256 */
        seg_cfg_strmap_t  consumer;          /* kafka.consumer.<librdkafka property> */
        seg_cfg_strmap_t  producer;          /* kafka.producer.<librdkafka property> */
    } kafka;
    struct {
        int     mode;               /* time.mode: seg_timemode_t */
        int64_t lateness;           /* time.lateness, s, 0..30d */
        int64_t idle_timeout;       /* time.idle_timeout, s, >= 1s */
    } time;
    struct {
        char listen[256];           /* host:port, :port, [v6]:port or "off" */
        bool lifecycle;             /* POST /-/reload (off by default) */
        bool api;                   /* /v1/... and / (on by default) */
        char token_file[512];       /* bearer token for the API; "" = none */
    } metrics;
    struct {
        int  level;                 /* log.level: seg_loglevel_t */
        int  format;                /* log.format: seg_logformat_t */
        char file[512];             /* "" = stderr */
    } log;
    struct {
        char    dir[512];           /* "" = $STATE_DIRECTORY under systemd,
                                     * else ./state (the daemon decides) */
        int64_t evict_after;        /* s, 0 = never evict */
        int     huge_pages;         /* state.huge_pages: seg_cfg_huge_t */
    } state;
    struct {
        int64_t interval;           /* checkpoint.interval, s, >= 1s */
        bool    background;         /* interval snapshots from a forked child */
    } checkpoint;
    int64_t          shutdown_timeout;  /* s, 1s..1h */
    seg_cfg_strmap_t routes;        /* routes.<topic>: filter text, checked by
                                     * the route module, not here */
    seg_cfg_origins_t origin;       /* bookkeeping for messages, see above */
} seg_cfg_t;

/* Fills cfg with the built-in defaults (the same values as
 * config/segd.yaml). */
void seg_cfg_defaults(seg_cfg_t *cfg);

/* Loads path over the current contents of cfg (call seg_cfg_defaults
 * first). Returns 0, or -1 with errstr set to
 * "FILE:LINE:COL: key 'a.b': reason" (an error tied to no key, such as a
 * YAML syntax error, is "FILE:LINE:COL: reason"). Every key of the file is
 * checked; the first error is reported, and on error cfg is unchanged.
 * An empty file (or one with only comments) changes nothing. A string
 * map written in the file replaces that map as a whole, defaults included
 * ("routes: {}" removes the default route).
 * Entries of string maps record the position of their sub-key. */
int seg_cfg_load_file(seg_cfg_t *cfg, const char *path,
                      char *errstr, size_t errstr_size);

/* Same, from a memory buffer; name is used in messages. */
int seg_cfg_load_buffer(seg_cfg_t *cfg, const char *name,
                        const char *buf, size_t len,
                        char *errstr, size_t errstr_size);

/* Applies one "dotted.key=value" override, parsing value with the key's
 * type; list values are comma-separated ("90d,180d,365d"). For a string
 * map, "map.key.SUB=value" adds or replaces the one entry SUB (everything
 * after "map.key." is SUB, dots included, up to the first '='), and
 * "map.key=a=1;b=2" replaces the whole map ("map.key=" empties it).
 * Returns 0 or -1 with errstr ("--set a.b=x: reason"); on error cfg is
 * unchanged. */
int seg_cfg_set(seg_cfg_t *cfg, const char *assignment,
                char *errstr, size_t errstr_size);

/* Cross-key checks that a single key cannot express (at_risk_after <=
 * silent_after <= churned_after, rfm tiers ascending; the input, output,
 * DLQ, changelog and route topics all different, route topics and the
 * changelog name derived from kafka.group_id valid topics). Run after
 * the file and all overrides. Returns 0 or -1 with errstr naming keys.
 * Every key's own range is checked again too, so a seg_cfg_t built by
 * hand is held to the same rules. The message is placed where the
 * offending key was last set:
 *   "FILE:LINE:COL: key 'a.b': reason"   (set in the file)
 *   "--set a.b: reason"                  (set by --set)
 *   "key 'a.b': reason"                  (a default)
 * For a pair of keys, the one assigned last is blamed. */
int seg_cfg_validate(const seg_cfg_t *cfg, char *errstr, size_t errstr_size);

/* Writes where a value was set, the prefix of a message about it:
 *   "FILE:LINE:COL"  set in the file last loaded (origin.file)
 *   "--set"          set by a --set override
 *   "default"        the built-in default
 *   "earlier file"   set in a file loaded before the last one
 * key is a schema key ("kafka.brokers"). For a string-map key, e is the
 * entry concerned (one of that map's e[]) and its own position is used;
 * e NULL gives where the map as a whole was last set. key may also be the
 * full path of an entry ("kafka.consumer.fetch.min.bytes") with e NULL.
 * So daemon code writes, for example,
 *   "config/segd.yaml:40:5: key 'kafka.consumer.fetch.min.bytes': ..."
 * Returns 0, or -1 (buf "") if key names no key or entry. buf is always
 * terminated when size > 0. */
int seg_cfg_where(const seg_cfg_t *cfg, const char *key,
                  const seg_cfg_mapentry_t *e, char *buf, size_t size);

/* The entry of map with sub-key key, or NULL. Points into map. */
const seg_cfg_mapentry_t *seg_cfg_map_find(const seg_cfg_strmap_t *map,
                                           const char *key);

/* ---- Schema -------------------------------------------------------------
 * One row per key. The rows drive the YAML loader, --set, defaults and
 * the checks in tests (every key documented, present in config/segd.yaml).
 * The machinery is generic over the target struct, so tests can run it on
 * a table of their own (limits no shipped key reaches), and a new key is
 * one SEG_CFG_KEY_* row plus its struct field. */

typedef enum seg_cfg_type {
    SEG_CFG_BOOL,       /* bool; true | false only */
    SEG_CFG_INT,        /* int64_t; decimal integer */
    SEG_CFG_DURATION,   /* int64_t seconds; <int><s|m|h|d|w>, or 0 */
    SEG_CFG_MONEY,      /* int64_t 1/10000 units; exact decimal text */
    SEG_CFG_ENUM,       /* int index into names[] */
    SEG_CFG_STRING,     /* char[size], NUL-terminated */
    SEG_CFG_STRLIST,    /* seg_cfg_strlist_t */
    SEG_CFG_STRMAP,     /* seg_cfg_strmap_t: free-form sub-key -> string */
} seg_cfg_type_t;

/* Extra check for string values (e.g. host:port). Returns 0, or -1 with
 * a reason in why. s is not NUL-terminated. */
typedef int (*seg_cfg_check_fn)(const char *s, size_t len,
                                char *why, size_t why_size);

typedef struct seg_cfg_key {
    const char      *key;       /* dotted path, e.g. "segments.window" */
    seg_cfg_type_t   type;
    size_t           offset;    /* of the field in the target struct */
    size_t           size;      /* of the field */
    unsigned         list_min;  /* 0,0: a scalar. INT/DURATION/MONEY lists */
    unsigned         list_max;  /*   are int64_t[list_max], exactly that many
                                 *   items; STRLIST holds list_min..list_max */
    int64_t          min, max;  /* numbers: value range (field units);
                                 * strings: length range in bytes */
    const char *const *names;   /* ENUM: NULL-terminated value names */
    seg_cfg_check_fn check;     /* STRING/STRLIST: optional, else NULL */
    const char      *def;       /* default, in --set syntax; for a STRMAP
                                 * "sub=value;sub=value" ("" = empty; in a
                                 * value, \; is ';' and \\ is '\') */
    const char      *doc;       /* one line for humans */
} seg_cfg_key_t;

typedef struct seg_cfg_schema {
    const seg_cfg_key_t *keys;
    size_t               n;             /* <= SEG_CFG_MAX_KEYS */
    size_t               struct_size;   /* sizeof the target struct */
    size_t               origin_offset; /* of its seg_cfg_origins_t */
    /* Sections another module reads from the same file (segments.rules:
     * src/rule). The loader accepts them as a whole, whatever they hold,
     * and leaves them to that module; --set refuses them. NULL-terminated;
     * NULL for none. */
    const char *const   *foreign;
} seg_cfg_schema_t;

/* Row constructors: T is the target struct type, f the field. */
#define SEG_CFG_FIELD_(T, f) \
    .offset = offsetof(T, f), .size = sizeof(((T *)0)->f)
#define SEG_CFG_KEY_BOOL(T, k, f, d, doc_) \
    { .key = (k), .type = SEG_CFG_BOOL, SEG_CFG_FIELD_(T, f), \
      .min = 0, .max = 1, .def = (d), .doc = (doc_) }
#define SEG_CFG_KEY_INT(T, k, f, lo, hi, d, doc_) \
    { .key = (k), .type = SEG_CFG_INT, SEG_CFG_FIELD_(T, f), \
      .min = (lo), .max = (hi), .def = (d), .doc = (doc_) }
#define SEG_CFG_KEY_DURATION(T, k, f, lo, hi, d, doc_) \
    { .key = (k), .type = SEG_CFG_DURATION, SEG_CFG_FIELD_(T, f), \
      .min = (lo), .max = (hi), .def = (d), .doc = (doc_) }
#define SEG_CFG_KEY_MONEY(T, k, f, lo, hi, d, doc_) \
    { .key = (k), .type = SEG_CFG_MONEY, SEG_CFG_FIELD_(T, f), \
      .min = (lo), .max = (hi), .def = (d), .doc = (doc_) }
#define SEG_CFG_KEY_ENUM(T, k, f, names_, d, doc_) \
    { .key = (k), .type = SEG_CFG_ENUM, SEG_CFG_FIELD_(T, f), \
      .names = (names_), .def = (d), .doc = (doc_) }
/* A fixed list of int64_t f[N] of INT, DURATION or MONEY (type t). */
#define SEG_CFG_KEY_LIST(T, t, k, f, lo, hi, d, doc_) \
    { .key = (k), .type = (t), SEG_CFG_FIELD_(T, f), \
      .list_min = sizeof(((T *)0)->f) / sizeof(int64_t), \
      .list_max = sizeof(((T *)0)->f) / sizeof(int64_t), \
      .min = (lo), .max = (hi), .def = (d), .doc = (doc_) }
#define SEG_CFG_KEY_STRING(T, k, f, minlen, chk, d, doc_) \
    { .key = (k), .type = SEG_CFG_STRING, SEG_CFG_FIELD_(T, f), \
      .min = (minlen), .max = (int64_t)sizeof(((T *)0)->f) - 1, \
      .check = (chk), .def = (d), .doc = (doc_) }
#define SEG_CFG_KEY_STRLIST(T, k, f, nmin, nmax, minlen, chk, d, doc_) \
    { .key = (k), .type = SEG_CFG_STRLIST, SEG_CFG_FIELD_(T, f), \
      .list_min = (nmin), .list_max = (nmax), \
      .min = (minlen), .max = SEG_CFG_STR_MAX - 1, \
      .check = (chk), .def = (d), .doc = (doc_) }
/* A string map: in YAML a mapping of free-form sub-keys to scalars; the
 * key k must not also be a section. */
#define SEG_CFG_KEY_STRMAP(T, k, f, d, doc_) \
    { .key = (k), .type = SEG_CFG_STRMAP, SEG_CFG_FIELD_(T, f), \
      .def = (d), .doc = (doc_) }

/* The schema of seg_cfg_t. Static; never NULL. */
const seg_cfg_schema_t *seg_cfg_schema(void);

/* Row index of a dotted key in schema, or -1. */
int seg_cfg_schema_find(const seg_cfg_schema_t *schema, const char *key);

/* Checks the table itself (unique well-formed keys, sizes matching types,
 * defaults that parse and lie in range). Returns 0 or -1 with errstr.
 * Tests run it; a bad new row fails there, not in production. */
int seg_cfg_schema_check(const seg_cfg_schema_t *schema,
                         char *errstr, size_t errstr_size);

/* The generic forms of seg_cfg_defaults / _load_buffer / _set and of the
 * per-key part of seg_cfg_validate, for a struct described by schema.
 * base points to that struct; same contracts as above. */
void seg_cfg_schema_defaults(const seg_cfg_schema_t *schema, void *base);
int  seg_cfg_schema_load_buffer(const seg_cfg_schema_t *schema, void *base,
                                const char *name, const char *buf, size_t len,
                                char *errstr, size_t errstr_size);
int  seg_cfg_schema_set(const seg_cfg_schema_t *schema, void *base,
                        const char *assignment,
                        char *errstr, size_t errstr_size);
int  seg_cfg_schema_validate(const seg_cfg_schema_t *schema, const void *base,
                             char *errstr, size_t errstr_size);

/* Formats the current value of row i as --set syntax ("365d", "json",
 * "90d,180d,365d", "a=1;b=x y"). Returns the length it needed
 * (snprintf-style). */
size_t seg_cfg_format_value(const seg_cfg_schema_t *schema, const void *base,
                            size_t i, char *buf, size_t size);

/* seg_cfg_check_fn for "host:port" values (kafka brokers, listen
 * addresses): host is a DNS name, IPv4 or [IPv6], port 1..65535. */
int seg_cfg_check_hostport(const char *s, size_t len,
                           char *why, size_t why_size);

/* seg_cfg_check_fn for Kafka topic names: 1..249 bytes of [A-Za-z0-9._-],
 * and not "." or ".." (the broker's own rule). */
int seg_cfg_check_topic(const char *s, size_t len, char *why, size_t why_size);

#endif
