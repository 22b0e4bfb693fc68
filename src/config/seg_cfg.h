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

/* Storage of a string-list key (e.g. kafka bootstrap servers). */
typedef struct seg_cfg_strlist {
    unsigned n;
    char     item[SEG_CFG_STRLIST_MAX][SEG_CFG_STR_MAX];
} seg_cfg_strlist_t;

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
 * An empty file (or one with only comments) changes nothing. */
int seg_cfg_load_file(seg_cfg_t *cfg, const char *path,
                      char *errstr, size_t errstr_size);

/* Same, from a memory buffer; name is used in messages. */
int seg_cfg_load_buffer(seg_cfg_t *cfg, const char *name,
                        const char *buf, size_t len,
                        char *errstr, size_t errstr_size);

/* Applies one "dotted.key=value" override, parsing value with the key's
 * type; list values are comma-separated ("90d,180d,365d"). Returns 0 or
 * -1 with errstr ("--set a.b=x: reason"); on error cfg is unchanged. */
int seg_cfg_set(seg_cfg_t *cfg, const char *assignment,
                char *errstr, size_t errstr_size);

/* Cross-key checks that a single key cannot express (at_risk_after <=
 * silent_after <= churned_after, rfm tiers ascending, ...). Run after
 * the file and all overrides. Returns 0 or -1 with errstr naming keys.
 * Every key's own range is checked again too, so a seg_cfg_t built by
 * hand is held to the same rules. The message is placed where the
 * offending key was last set:
 *   "FILE:LINE:COL: key 'a.b': reason"   (set in the file)
 *   "--set a.b: reason"                  (set by --set)
 *   "key 'a.b': reason"                  (a default)
 * For a pair of keys, the one assigned last is blamed. */
int seg_cfg_validate(const seg_cfg_t *cfg, char *errstr, size_t errstr_size);

/* ---- Schema -------------------------------------------------------------
 * One row per key. The rows drive the YAML loader, --set, defaults and
 * the checks in tests (every key documented, present in config/segd.yaml).
 * The machinery is generic over the target struct, so tests can run it on
 * a table of their own (string types have no shipped key yet), and a new
 * key is one SEG_CFG_KEY_* row plus its struct field. */

typedef enum seg_cfg_type {
    SEG_CFG_BOOL,       /* bool; true | false only */
    SEG_CFG_INT,        /* int64_t; decimal integer */
    SEG_CFG_DURATION,   /* int64_t seconds; <int><s|m|h|d|w>, or 0 */
    SEG_CFG_MONEY,      /* int64_t 1/10000 units; exact decimal text */
    SEG_CFG_ENUM,       /* int index into names[] */
    SEG_CFG_STRING,     /* char[size], NUL-terminated */
    SEG_CFG_STRLIST,    /* seg_cfg_strlist_t */
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
    const char      *def;       /* default, in --set syntax */
    const char      *doc;       /* one line for humans */
} seg_cfg_key_t;

typedef struct seg_cfg_schema {
    const seg_cfg_key_t *keys;
    size_t               n;             /* <= SEG_CFG_MAX_KEYS */
    size_t               struct_size;   /* sizeof the target struct */
    size_t               origin_offset; /* of its seg_cfg_origins_t */
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
 * "90d,180d,365d"). Returns the length it needed (snprintf-style). */
size_t seg_cfg_format_value(const seg_cfg_schema_t *schema, const void *base,
                            size_t i, char *buf, size_t size);

/* seg_cfg_check_fn for "host:port" values (kafka brokers, listen
 * addresses): host is a DNS name, IPv4 or [IPv6], port 1..65535. */
int seg_cfg_check_hostport(const char *s, size_t len,
                           char *why, size_t why_size);

#endif
