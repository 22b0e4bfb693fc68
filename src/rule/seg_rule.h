/*
 * seg_rule: segments users write themselves (docs/rules.md).
 *
 * Three layers, each with its own lifetime:
 *   - seg_rules_def_t: what the configuration says (rule names, the text
 *     of each expression and where it stands in the file, retain,
 *     predict). Plain data: loaded from YAML, packed into snapshots and
 *     changelog markers so a restart can rebuild exactly the rule set its
 *     state was written under.
 *   - seg_ruleset_t: a definition checked and compiled once: flat programs,
 *     the per-customer row layout, the candidate instants. Immutable;
 *     engines share one.
 *   - seg_rulerun_t: what one engine needs to run a rule set: its interned
 *     values and scratch memory. Owned by the engine, touched by its thread
 *     only.
 * The engine keeps one row of seg_ruleset_row_bytes() per customer (zero
 * is a customer that has seen nothing) and calls fold, eval and next.
 */
#ifndef SEG_RULE_H
#define SEG_RULE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segment/seg_dims.h"

#include "config/seg_cfg.h"
#include "event/seg_event.h"
#include "state/seg_window.h"

/* ---- the definition ---------------------------------------------------------- */

#define SEG_RULES_MAX     256
#define SEG_RULE_NAME_MAX 64
#define SEG_RULE_LABEL_MAX 64
#define SEG_RULE_EXPR_MAX 8192   /* bytes of one expression */
#define SEG_RULE_VALUE_MAX 4096  /* bytes of a rule's text value; longer has no value */

/* How an expression's offsets map back to the file (seg_rule_int.h). */
typedef struct seg_rule_text {
    char    *text;          /* NULL: absent */
    uint32_t len;
    uint32_t line, col;     /* 1-based, of text[0] */
    uint32_t indent;
    uint8_t  mode;
} seg_rule_text_t;

typedef struct seg_rule_case {
    char           *label;
    uint32_t        line, col;
    seg_rule_text_t cond;
} seg_rule_case_t;

typedef enum { SEG_RULE_WHEN = 1, SEG_RULE_CASES, SEG_RULE_VALUE } seg_rule_form_t;

typedef struct seg_rule_spec {
    char            *name;
    uint32_t         line, col;       /* of the name */
    uint8_t          form;            /* seg_rule_form_t */
    seg_rule_text_t  where;
    seg_rule_text_t  body;            /* when: or value: */
    seg_rule_case_t *cases;
    uint32_t         n_cases;
    char            *else_label;      /* NULL: no else */
    char            *description;
} seg_rule_spec_t;

/* segments.predict (docs/predict.md). unit, horizon in seconds. */
typedef struct seg_rule_predict {
    bool    has_bgnbd, has_gg;
    double  r, alpha, a, b;          /* BG/NBD */
    double  p, q, gamma;             /* Gamma-Gamma */
    int64_t unit;                    /* default 7d */
    int64_t horizon;                 /* default 365d */
    double  discount_rate;           /* per year; 0 = undiscounted */
} seg_rule_predict_t;

/* Selectors, in the order of docs/rules.md; retain is indexed by them. */
#define SEG_RULE_SELECTORS 9

typedef struct seg_rules_def {
    char                *file;        /* for messages */
    seg_rule_spec_t     *rules;
    uint32_t             n_rules;
    int64_t              retain[SEG_RULE_SELECTORS];   /* seconds, 0 = none */
    bool                 retain_since[SEG_RULE_SELECTORS];
    char               **retain_attrs;
    uint32_t             n_retain_attrs;
    seg_rule_predict_t predict;
    /* output.features when the file gives a list: each a built-in feature
     * name or an expression (docs/rules.md, "Features in the output").
     * Not packed: it changes what is printed, never the state. */
    seg_rule_text_t     *outf;
    uint32_t             n_outf;
} seg_rules_def_t;

/* Reads segments.rules, segments.retain and segments.predict from a
 * configuration file (the rest of the file is seg_cfg's; this ignores it).
 * A file without them gives an empty definition. NULL with errstr
 * "FILE:LINE:COL: ..." on a malformed section. */
seg_rules_def_t *seg_rules_def_load_file(const char *path, char *errstr, size_t errstr_size);
seg_rules_def_t *seg_rules_def_load_buffer(const char *name, const char *buf, size_t len,
                                           char *errstr, size_t errstr_size);
/* An empty definition (no rules). NULL on allocation failure. */
seg_rules_def_t *seg_rules_def_empty(void);
void seg_rules_def_destroy(seg_rules_def_t *d);

/* The definition as one MessagePack value (snapshot headers, changelog
 * markers), and back. Unpack returns NULL with errstr on a malformed one. */
void seg_rules_def_pack(const seg_rules_def_t *d, msgpack_packer *pk);
seg_rules_def_t *seg_rules_def_unpack(const msgpack_object *o, char *errstr, size_t errstr_size);

/* ---- the compiled rule set ------------------------------------------------------- */

typedef struct seg_ruleset seg_ruleset_t;

/* Checks and compiles def against the built-in settings seg (which
 * dimensions are enabled, for names and references). Takes ownership of
 * def in every case. Returns NULL with errstr
 * "FILE:LINE:COL: rule 'x': reason" on the first error. */
seg_ruleset_t *seg_ruleset_build(seg_rules_def_t *def, const seg_segcfg_t *seg,
                                 char *errstr, size_t errstr_size);
/* NULL is a no-op. */
void seg_ruleset_destroy(seg_ruleset_t *rs);

/* Identifies the definition and the built-in settings together: equal
 * hashes, same transitions. */
uint64_t seg_ruleset_hash(const seg_ruleset_t *rs);
const seg_rules_def_t *seg_ruleset_def(const seg_ruleset_t *rs);
const seg_segcfg_t *seg_ruleset_segcfg(const seg_ruleset_t *rs);

uint32_t seg_ruleset_count(const seg_ruleset_t *rs);
const char *seg_ruleset_name(const seg_ruleset_t *rs, uint32_t i);
/* Index of the rule named name, or -1. */
int seg_ruleset_find(const seg_ruleset_t *rs, const char *name, size_t len);
/* The values rule i can take, for route filters and metrics: a
 * membership's "out", "in"; a graded rule's labels. Returns the count, or
 * -1 for a computed rule (any text). */
int seg_ruleset_values(const seg_ruleset_t *rs, uint32_t i, const char *const **values);
/* The value a customer holds before its first evaluation: "out" for a
 * membership without where, else NULL (no value). */
const char *seg_ruleset_initial(const seg_ruleset_t *rs, uint32_t i);

/* Bytes of rule state per customer (0: the rule set keeps nothing). */
size_t seg_ruleset_row_bytes(const seg_ruleset_t *rs);
/* Whether an attribute key is kept (for readers that capture attrs). */
bool seg_ruleset_wants_attr(const seg_ruleset_t *rs, const char *key, size_t len);
uint32_t seg_ruleset_attr_count(const seg_ruleset_t *rs);

/* ---- running it ------------------------------------------------------------------- */

typedef struct seg_rulerun seg_rulerun_t;

/* Runtime for one engine. pool is the engine's window pool (rows' windows
 * live there). NULL on allocation failure. */
seg_rulerun_t *seg_rulerun_new(const seg_ruleset_t *rs, seg_winpool_t *pool);
/* NULL is a no-op. Rows must have been freed with seg_rulerun_row_free
 * (or the pool and value storage are dropped with it, which is fine at
 * engine teardown). */
void seg_rulerun_destroy(seg_rulerun_t *rr);
const seg_ruleset_t *seg_rulerun_ruleset(const seg_rulerun_t *rr);

/* What an evaluation reads besides the row. */
typedef struct seg_rule_cust {
    int64_t        t;                /* evaluation instant */
    bool           has_purchase;
    int64_t        first_purchase, last_purchase;
    const uint8_t *dims;             /* built-in value codes at t (SEG_DIM__COUNT) */
    unsigned char *row;
} seg_rule_cust_t;

/* Reasons to re-evaluate (seg_rulerun_eval's dirty mask). */
#define SEG_RULE_DIRTY_TIME   ((uint64_t)1 << 0)
#define SEG_RULE_DIRTY_DIM(d) ((uint64_t)1 << (10 + (d)))
#define SEG_RULE_DIRTY_ALL    (~(uint64_t)0)
/* What folding this event can change. */
uint64_t seg_rule_dirty_of(const seg_event_t *ev);

/* Folds ev into the row (windows, latest timestamps, attributes) at
 * evaluation instant t. Returns 0, or -1 on allocation failure (the row
 * stays consistent; the event's state is partly kept). */
int seg_rulerun_fold(seg_rulerun_t *rr, unsigned char *row, const seg_event_t *ev, int64_t t);

/* Receives one changed rule value: from/to NUL-terminated, NULL for no
 * value; valid only during the call. */
typedef void (*seg_rule_change_fn)(void *opaque, uint32_t rule, const char *from,
                                   const char *to);

/* Evaluates the rules that dirty says may have changed (SEG_RULE_DIRTY_ALL:
 * every rule), stores their values in the row and reports each change, in
 * rule order. Returns 0, or -1 on allocation failure. */
int seg_rulerun_eval(seg_rulerun_t *rr, const seg_rule_cust_t *c, uint64_t dirty,
                     seg_rule_change_fn fn, void *opaque);

/* The earliest candidate instant after c->t (docs/rules.md), INT64_MAX if
 * none. Expires nothing; c->row as left by the last eval at c->t. */
int64_t seg_rulerun_next(seg_rulerun_t *rr, const seg_rule_cust_t *c);

/* What the models say of a customer at c->t (docs/predict.md): x, t_x
 * and T in the fit unit, P(alive), and the expected purchases and CLV
 * over segments.predict.horizon (NaN without Gamma-Gamma parameters).
 * Returns 0, or -1 when segments.predict holds no parameters or the
 * customer has no purchase. */
typedef struct seg_rule_pview {
    double x, t_x, T, p_alive, expected, clv;
} seg_rule_pview_t;
int seg_rulerun_predict(seg_rulerun_t *rr, const seg_rule_cust_t *c, seg_rule_pview_t *out);

/* output.features as a list: the number of entries (0: none, the
 * boolean form applies). */
uint32_t seg_ruleset_outf_count(const seg_ruleset_t *rs);
/* Renders the features object of a transition at c->t, "{...}" with
 * one member per output.features entry in order (built-in ones from f),
 * into buf (cap bytes; SEG_RULE_OUTF_MAX is always enough: at most 16
 * entries, names of at most 128 bytes, string values of at most 256,
 * longer ones print as null). fresh: c is
 * not the customer seg_rulerun_eval is evaluating right now (a built-in
 * transition, before the rules run); false inside eval's callback, where
 * what eval computed is reused. Returns the length. */
#define SEG_RULE_OUTF_MAX (16 * (6 * 128 + 6 * 256 + 64) + 64)
size_t seg_rulerun_features_json(seg_rulerun_t *rr, const seg_rule_cust_t *c,
                                 const seg_features_t *f, bool fresh, char *buf, size_t cap);

/* Releases what the row holds (windows, interned values) and zeroes it. */
void seg_rulerun_row_free(seg_rulerun_t *rr, unsigned char *row);

/* Starts loading the blocks of the row's windows into the cache: a hint
 * for the engine's read-ahead, once the row itself is cached (it reads
 * the window handles). Changes nothing. */
void seg_rulerun_prefetch(const seg_rulerun_t *rr, const unsigned char *row);

/* Bytes of interned values and scratch (for the memory metric). */
size_t seg_rulerun_bytes(const seg_rulerun_t *rr);

/* Value of rule i in the row as text (NULL: none); valid until the value
 * leaves every row (for lookups and reloads). */
const char *seg_rulerun_value(seg_rulerun_t *rr, const unsigned char *row, uint32_t i);

/* ---- persistence and change ---------------------------------------------------------- */

/* Appends the row as one MessagePack value, positional in the rule set's
 * layout (so only a runtime of the same rule set reads it back). */
void seg_rulerun_pack_row(seg_rulerun_t *rr, const unsigned char *row, msgpack_packer *pk);
/* Fills a zero row from what pack_row wrote. Returns 0, or -1 with errstr
 * (malformed, or out of memory; the row is then freed back to zero). */
int seg_rulerun_unpack_row(seg_rulerun_t *rr, unsigned char *row, const msgpack_object *o,
                           char *errstr, size_t errstr_size);

/* Moves what old_row holds into the zero row new_row of another rule set,
 * by name: kept windows and latest timestamps of the same selector,
 * attributes of the same key, values of rules of the same name (a graded
 * rule's value only if the new rule has that label). Leaves old_row zero
 * (nothing to free). Returns 0, or -1 on allocation failure. */
int seg_rulerun_migrate_row(seg_rulerun_t *from, unsigned char *old_row, seg_rulerun_t *to,
                            unsigned char *new_row);

/* Evaluates every rule (after a rule change) and reports each whose value
 * differs from prev[i] (NULL: none), storing the new values: prev holds
 * what the customer was last told, which the row may not be able to hold
 * (a label the new rule does not have). */
int seg_rulerun_eval_all(seg_rulerun_t *rr, const seg_rule_cust_t *c, const char *const *prev,
                         seg_rule_change_fn fn, void *opaque);

/* What a rule set keeps, for the history check of a change: windows per
 * selector stream ("w:contact.visit"), latest timestamps ("s:refund"),
 * attributes ("a:plan"), purchase days ("days"). keep: seconds kept
 * (SEG_RULE_FOREVER: the whole history); need: how far back some rule
 * reads (0: no rule reads it, only retain keeps it); rule, what: the first
 * rule that needs it and how, for messages. */
#define SEG_RULE_FOREVER INT64_MAX
typedef struct seg_rule_item {
    char    name[160];
    int64_t keep, need;
    char    rule[SEG_RULE_NAME_MAX + 1];
    char    what[96];
} seg_rule_item_t;
/* Writes up to max items; returns how many there are. */
uint32_t seg_ruleset_items(const seg_ruleset_t *rs, seg_rule_item_t *out, uint32_t max);

#endif
