/*
 * seg_rule_int: types shared by the files of the rule language (lexer,
 * parser, checker, compiler, evaluator). Nothing outside src/rule includes
 * this; the engine sees only seg_rule.h.
 *
 * The pipeline is the one of Lua's parser and SQLite's VDBE: text is lexed
 * and parsed into a tree once, when the configuration is loaded; the tree
 * is checked (names, types, time exactness) and folded; then it is
 * compiled into a flat array of small instructions per rule, which the
 * evaluator runs for a customer with a fixed stack and no allocation.
 */
#ifndef SEG_RULE_INT_H
#define SEG_RULE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "predict/seg_predict.h"
#include "rule/seg_rule.h"

#define RULE_ERR 512

/* ---- values ----------------------------------------------------------------- */

typedef enum {
    RV_ABSENT = 0,
    RV_BOOL,
    RV_DEC,      /* exact: i = value * 10000 */
    RV_REAL,     /* d */
    RV_DUR,      /* i = seconds */
    RV_STR,      /* s, len (not NUL-terminated in general) */
} rv_type_t;

typedef struct rval {
    uint8_t  t;
    uint32_t len;
    union {
        int64_t     i;
        double      d;
        const char *s;
    } u;
} rval_t;

#define STR_MAX     SEG_RULE_VALUE_MAX       /* longest string from +; longer has no value */
#define ATTR_MAX    1024                     /* longest attribute string kept */
#define DEC_ONE     10000LL
#define DEC_LIMIT   1000000000000000000LL   /* |units| <= 10^18: |value| <= 10^14 */

/* Static types, known at load time. */
typedef enum { TY_BOOL = 1, TY_NUM, TY_DUR, TY_STR, TY_ANY } ty_t;

/* A scratch string arena for concatenation, reset per rule evaluation.
 * Grows (never shrinks), so a warmed-up evaluator does not allocate. */
typedef struct strbuf {
    char  *p;
    size_t used, cap;
} strbuf_t;

/* Value operations (seg_rule_value.c); shared by constant folding and the
 * evaluator so that a folded constant and a run-time value can never
 * differ. Results that are strings are written to sb (may be NULL when
 * the caller knows no string results). */
rval_t rv_neg(rval_t a);
rval_t rv_arith(int op, rval_t a, rval_t b, strbuf_t *sb);   /* op: '+', '-', '*', '/' */
int    rv_compare(int op, rval_t a, rval_t b);               /* 0/1; absent/mismatch: 0 */
int    rv_truthy(rval_t a);                                   /* only a true bool */
/* Writes the printed form of v (not absent) to buf (>= 64 bytes unless a
 * string), returns its length; strings are not copied: *out points at
 * them. */
size_t rv_print(rval_t v, char *buf, const char **out);
bool   rv_equal_exact(rval_t a, rval_t b);                    /* same type and value */
/* A number from a double, exact when it is one at 1/10000 steps. */
rval_t rv_from_double(double d);

enum { CMP_EQ = 1, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };

/* ---- source positions ------------------------------------------------------- */

/* Where an expression's text came from, to turn an offset into FILE:LINE:COL. */
typedef enum {
    SRC_RAW = 0,   /* text is the file's own bytes from (line, col) on */
    SRC_BLOCK,     /* a block scalar's value: line i is file line (line + i), at column indent + 1 */
    SRC_FLAT,      /* anything else: offsets count on from (line, col) */
} src_mode_t;

typedef struct rsrc {
    const char *text;
    uint32_t    len;
    const char *file;
    const char *rule;        /* named in messages */
    uint32_t    line, col;   /* 1-based, of text[0] */
    uint32_t    indent;      /* SRC_BLOCK */
    uint8_t     mode;
} rsrc_t;

void rsrc_pos(const rsrc_t *s, uint32_t off, uint32_t *line, uint32_t *col);
/* Writes "FILE:LINE:COL: rule 'NAME': " + the message. */
void rsrc_fail(const rsrc_t *s, uint32_t off, char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- tokens ----------------------------------------------------------------- */

typedef enum {
    TK_EOF = 0, TK_NUMBER, TK_DURATION, TK_STRING, TK_NAME,
    TK_LPAREN, TK_RPAREN, TK_LBRACK, TK_RBRACK, TK_COMMA, TK_DOT,
    TK_PLUS, TK_MINUS, TK_STAR, TK_SLASH,
    TK_EQ, TK_NE, TK_LT, TK_LE, TK_GT, TK_GE,
    TK_AND, TK_OR, TK_NOT, TK_IN, TK_TRUE, TK_FALSE,
} tok_kind_t;

typedef struct tok {
    tok_kind_t kind;
    uint32_t   off, len;     /* in the source text */
    rval_t     v;            /* NUMBER (DEC/REAL), DURATION, STRING (into the arena) */
} tok_t;

/* ---- the tree --------------------------------------------------------------- */

typedef enum {
    N_LIT = 1, N_NAME, N_SEL, N_CALL, N_LIST,
    N_NEG, N_NOT, N_ARITH, N_CMP, N_IN, N_AND, N_OR,
    N_IF, N_TIER, N_HAS,
    N_WIN,       /* count/sum: idx = window slot */
    N_FEAT,      /* a feature: idx = feature slot */
    N_ATTR,      /* idx = attribute slot */
    N_DIM,       /* idx = built-in dimension */
    N_RULE,      /* idx = rule */
} nkind_t;

typedef struct node node_t;
struct node {
    uint8_t     kind;
    uint8_t     op;          /* N_ARITH: '+' ...; N_CMP: CMP_*; N_WIN: 'c'/'s' */
    uint8_t     type;        /* ty_t, after checking */
    bool        is_const;    /* foldable: no customer data */
    bool        is_time;     /* a time-dependent feature itself */
    uint32_t    off;         /* of its first token, for messages */
    node_t     *a, *b;
    node_t    **args;        /* N_CALL, N_LIST, N_IF (3), N_IN/N_TIER (b is the N_LIST) */
    uint32_t    nargs;
    rval_t      v;           /* N_LIT */
    const char *name;        /* N_NAME, N_CALL, N_SEL (points into the source) */
    uint32_t    name_len;
    int32_t     idx;
};

/* A bump allocator for everything built while loading (nodes, strings),
 * freed at once. */
typedef struct arena arena_t;
arena_t *arena_new(void);
void     arena_destroy(arena_t *a);
void    *arena_alloc(arena_t *a, size_t n);    /* zeroed; NULL on failure */
char    *arena_strdup(arena_t *a, const char *s, size_t n);

/* ---- parsing ---------------------------------------------------------------- */

/* Parses one expression. Returns the tree, or NULL with err set to
 * "FILE:LINE:COL: rule 'NAME': reason". */
node_t *rule_parse(const rsrc_t *src, arena_t *ar, char *err, size_t errsz);

/* ---- the compiled form ------------------------------------------------------ */

typedef enum {
    OP_K = 1,     /* push consts[a] */
    OP_WIN,       /* push window feature a */
    OP_FEAT,      /* push feature a */
    OP_ATTR,      /* push attribute a */
    OP_DIM,       /* push built-in dimension a's value */
    OP_RULE,      /* push rule a's value */
    OP_CODE_IN,   /* pop nothing; push (dim or rule code in set a) ^ b; absent: false.
                   * c: 0 = dim, 1 = rule; d: the dim/rule */
    OP_NEG, OP_NOT, OP_BOOL,
    OP_ARITH,     /* a: '+', '-', '*', '/' */
    OP_CMP,       /* a: CMP_* */
    OP_IN,        /* list a: pop x, push x == any element */
    OP_TIER,      /* list a: pop x, push #bounds <= x */
    OP_HAS,
    OP_JF,        /* pop; jump to a if not true */
    OP_JMP,       /* jump to a */
    OP_ANDJ,      /* top to bool; if false jump to a (keeping it), else pop */
    OP_ORJ,       /* top to bool; if true jump to a (keeping it), else pop */
    OP_END,
} opcode_t;

typedef struct rop {
    uint8_t  op;
    uint8_t  c;
    uint16_t d;
    uint32_t a;
    uint32_t b;
} rop_t;

/* A range of code: one expression's program, ending with OP_END. */
typedef struct prog {
    uint32_t start;
    bool     present;
} prog_t;

/* Streams of events a rule state can keep (selectors map onto them). */
enum {
    ST_PURCHASE = 0, ST_REFUND,
    ST_VISIT, ST_INQUIRY, ST_COMPLAINT, ST_SUPPORT, ST_FEEDBACK, ST_CALL,
    ST__COUNT
};
/* Selectors: a stream, or SEL_CONTACT (every contact stream). */
enum {
    SEL_PURCHASE = 0, SEL_REFUND,
    SEL_VISIT, SEL_INQUIRY, SEL_COMPLAINT, SEL_SUPPORT, SEL_FEEDBACK, SEL_CALL,
    SEL_CONTACT,
    SEL__COUNT
};

/* Features that are not windows. */
typedef enum {
    FT_RECENCY = 1, FT_AGE, FT_SINCE,
    FT_P_ALIVE, FT_EXPECTED, FT_SPEND, FT_CLV,
} feat_kind_t;

typedef struct feat {
    uint8_t kind;       /* feat_kind_t */
    uint8_t sel;        /* FT_SINCE */
    int64_t h;          /* FT_EXPECTED, FT_CLV: horizon, seconds */
    int32_t rule;       /* the first rule that reads it (messages) */
} feat_t;

typedef struct win {
    uint8_t sel;
    bool    sum;        /* else count */
    int64_t w;          /* seconds */
    int32_t rule;       /* the first rule that reads it (messages) */
} win_t;

/* A time comparison's candidate offsets on one base (recency: last
 * purchase, age: first purchase, since(SEL)): base + off for each off,
 * sorted, unique. */
typedef struct tbase {
    uint8_t  kind;      /* FT_RECENCY, FT_AGE, FT_SINCE */
    uint8_t  sel;
    int64_t *off;
    uint32_t n;
} tbase_t;

/* A prediction compared with a constant: the crossing instants matter. */
typedef struct tpred {
    int32_t feat;       /* feature slot */
    uint8_t op;         /* CMP_* with the feature on the left */
    double  c;
} tpred_t;

typedef enum { FORM_WHEN = 1, FORM_CASES, FORM_VALUE } form_t;

/* One entry of output.features: a built-in feature, or a program. */
enum { OUTF_EXPR = 0, OUTF_RECENCY, OUTF_AGE, OUTF_FREQUENCY, OUTF_MONETARY, OUTF_COMPLAINTS };
typedef struct outf {
    char    *name;          /* the key in the features object, as written */
    uint8_t  builtin;       /* OUTF_* */
    prog_t   prog;
} outf_t;

typedef struct crule {
    char     *name;
    uint32_t  line;         /* of the name, for "defined further down" */
    uint8_t   form;
    bool      plain_when;   /* FORM_WHEN without where: starts at "out", never none */
    prog_t    where, when, value;
    prog_t   *cases;        /* n_cases */
    uint16_t *case_code;    /* label code of each case */
    uint32_t  n_cases;
    uint16_t  else_code;    /* 0: no else */
    char    **labels;       /* code 1..n_labels -> label; [0] unused */
    uint32_t  n_labels;
    uint8_t   value_type;   /* FORM_VALUE: static type of the expression */
    uint32_t  slot_off;     /* in the customer's rule row: 1 byte (label code;
                             * a plain when stores code - 1), or 4 (interned value) */
    uint8_t   slot_size;
    uint32_t  n_concat;     /* string + operations: scratch it may need */
    uint64_t  deps;         /* what can change it (DEP_* bits, rule bits) */
} crule_t;

/* Dependency bits: which changes make a rule worth re-evaluating. */
enum {
    DEP_TIME     = 1u << 0,   /* reads a time feature or a window */
    DEP_PURCHASE = 1u << 1,
    DEP_REFUND   = 1u << 2,
    DEP_CONTACT0 = 1u << 3,   /* + stream - ST_VISIT: one bit per contact kind (6) */
    DEP_ATTR     = 1u << 9,
    DEP_DIM0     = 1u << 10,  /* + dim: one bit per built-in (4) */
    DEP_RULE0    = 14,        /* bit index of rule 0; rules >= 50 share bit 63 */
};
#define DEP_RULE(i) ((uint64_t)1 << ((i) + DEP_RULE0 < 63 ? (i) + DEP_RULE0 : 63))

/* The compiled rule set. Immutable once built; engines share it. */
struct seg_ruleset {
    seg_rules_def_t *def;        /* what it was built from (owned) */
    seg_segcfg_t     seg;        /* the built-in settings it was checked against */
    uint64_t         hash;
    crule_t         *rules;
    uint32_t         n_rules;
    rop_t           *code;
    uint32_t         n_code;
    rval_t          *consts;     /* strings point into strpool */
    uint32_t         n_consts;
    uint32_t        *lists;      /* list k: lists[list_at[k]] = n, then n const indexes */
    uint32_t        *list_at;
    uint32_t         n_lists, n_list_words;
    uint64_t        *codesets;   /* OP_CODE_IN sets: 4 words (256 codes) each */
    uint32_t         n_codesets;
    feat_t          *feats;
    uint32_t         n_feats;
    win_t           *wins;
    uint32_t         n_wins;
    tbase_t         *tbases;
    uint32_t         n_tbases;
    tpred_t         *tpreds;
    uint32_t         n_tpreds;
    bool             tpreds_mbar;  /* some tpred reads the mean spend (spend, CLV) */
    outf_t          *outf;
    uint32_t         n_outf;
    char           **attr_keys;  /* kept attributes, slot order */
    uint32_t        *attr_key_len;
    int32_t         *attr_rule;  /* the first rule that reads each, -1: only retained */
    uint32_t         n_attrs;
    /* Row layout. */
    int64_t          retain[ST__COUNT];    /* 0: stream not kept */
    uint32_t         win_off[ST__COUNT];   /* offset of each kept stream's window */
    bool             since_kept[SEL__COUNT];
    uint32_t         since_off[SEL__COUNT];
    uint32_t         attr_off;             /* 16 bytes per attribute */
    bool             predict_state;        /* keeps purchase days */
    uint32_t         days_off;
    uint32_t         pnext_off;   /* n_tpreds: the predictions' next crossing (cache; 0 unknown) */
    uint32_t         row_bytes;
    uint32_t         max_stack;
    bool             uses_dims;            /* reads a built-in dimension */
    seg_rule_predict_t predict;
    bool             has_predict;
    arena_t         *arena;                /* constant strings, labels, names */
    uint32_t         n_concat;             /* string + in all rules */
};

/* ---- the runtime (seg_rule_eval.c, seg_rule_state.c) ------------------------- */

#include "rule/seg_rule_vpool.h"
#include <string.h>

enum { AT_NEVER = 0, AT_NULL, AT_BOOL, AT_DEC, AT_REAL, AT_STR };

struct seg_rulerun {
    const seg_ruleset_t   *rs;
    seg_winpool_t         *pool;
    seg_vpool_t           *vp;
    rval_t                *stack;        /* (n_rules + 1) * max_stack: a rule read by
                                          * another runs above it */
    rval_t                *feat_val, *win_val, *rule_val;
    uint32_t              *feat_gen, *win_gen, *rule_gen;
    uint16_t              *rule_code;    /* this evaluation's code (labels), if computed */
    uint32_t               gen;
    strbuf_t               sb;
    const seg_rule_cust_t *c;
    char                   pbuf[64];
    char                   vbuf[STR_MAX + 64];
    /* Every distinct (stream, width) a window reads, for the next instant
     * (count and sum, and `contact` with its kinds, share entries). */
    struct { uint8_t s; int64_t w; } *ends;
    uint32_t               n_ends;
    /* Per rule, the time sources it reads (TSRC_* bits): at a deadline
     * only the rules reading a source due then are evaluated. */
    uint64_t              *tdeps;
    seg_predict_t         *model;        /* segments.predict, when rules read it */
};

/* Time-source bits: window k (< TSRC_WINS), tbase i (< TSRC_TBASES), and
 * one bit for everything else (more sources, predictions): always due. */
#define TSRC_WINS   32
#define TSRC_TBASES 31
#define TSRC_OTHER  ((uint64_t)1 << 63)

/* ---- row access ------------------------------------------------------------------- */

static inline seg_window_t *row_win(const seg_ruleset_t *rs, unsigned char *row, unsigned s)
{
    return (seg_window_t *)(row + rs->win_off[s]);
}

static inline int64_t since_get(const seg_ruleset_t *rs, const unsigned char *row, unsigned sel, bool *has)
{
    int64_t v;
    memcpy(&v, row + rs->since_off[sel], 8);
    *has = v != 0;
    return v ^ INT64_MIN;
}

static inline void since_put(const seg_ruleset_t *rs, unsigned char *row, unsigned sel, int64_t ts)
{
    int64_t v = ts ^ INT64_MIN;
    memcpy(row + rs->since_off[sel], &v, 8);
}

typedef struct attr_slot {
    int64_t tt;          /* ts << 3 | type */
    int64_t payload;     /* dec units, double bits, bool, or a value id */
} attr_slot_t;

static inline attr_slot_t *attr_at(const seg_ruleset_t *rs, unsigned char *row, uint32_t k)
{
    return (attr_slot_t *)(row + rs->attr_off + 16 * k);
}

static inline uint32_t value_id(const crule_t *r, const unsigned char *row)
{
    uint32_t id;
    memcpy(&id, row + r->slot_off, 4);
    return id;
}

/* The stored label code (0: none). */
static inline uint16_t stored_code(const crule_t *r, const unsigned char *row)
{
    uint8_t v = row[r->slot_off];
    return r->plain_when ? (uint16_t)(v + 1) : v;
}


/* ---- steps of seg_ruleset_build (seg_rule_check.c, seg_rule_compile.c) ---- */

typedef struct build build_t;

/* Everything known while one rule set is built. */
struct build {
    seg_ruleset_t      *rs;
    const seg_rules_def_t *def;
    arena_t            *ar;
    char               *err;
    size_t              errsz;
    uint32_t            cur_rule;   /* being checked */
    const rsrc_t       *cur_src;
    node_t            **trees;      /* per rule: where, then body nodes */
    /* growing tables */
    uint32_t            cap_code, cap_consts, cap_feats, cap_wins, cap_tbases,
                        cap_tpreds, cap_attrs, cap_list_words, cap_lists, cap_codesets;
    int                 depth, max_depth;   /* stack depth while compiling */
    strbuf_t            fold;               /* scratch of constant folding */
    bool                outf;               /* compiling output.features: features
                                             * only, time features read bare */
};

int  rule_check(build_t *b, node_t **np, uint32_t rule);   /* resolves, types, folds, exactness */
int  rule_compile_expr(build_t *b, node_t *n, prog_t *out);
int  rule_intern_feat(build_t *b, feat_t f);
int  rule_intern_win(build_t *b, win_t w);
int  rule_intern_attr(build_t *b, const char *key, uint32_t len);
int  rule_add_tbase(build_t *b, uint8_t kind, uint8_t sel, int64_t off);
int  rule_add_tpred(build_t *b, int32_t feat, uint8_t op, double c);
int  rule_fail(build_t *b, uint32_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Name of a selector ("contact.visit"). */
const char *rule_sel_name(unsigned sel);
/* Stream of an event (ST_*), or -1 (profile). */
int rule_stream_of(int type, int kind);

#endif
