/*
 * seg_rule_parse: the lexer and the recursive-descent parser of rule
 * expressions (the grammar of docs/rules.md).
 *
 * Hand-written, one token of lookahead, in the manner of Lua's lparser.c:
 * the grammar is small, and a hand-written parser can say exactly what it
 * expected at exactly which character, which is what a user editing YAML
 * at 2 a.m. needs from `segd check-config`. Every node keeps the offset of
 * its first token so later passes (names, types, time) point at it too.
 * The parser only builds the tree; what a name means is the checker's
 * business.
 */
#include "rule/seg_rule_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 200          /* nesting; deeper is an error, not a stack overflow */
#define DUR_MAX   (10000LL * 366 * 86400)   /* 10,000 years */

typedef struct parser {
    const rsrc_t *src;
    arena_t      *ar;
    char         *err;
    size_t        errsz;
    uint32_t      pos;        /* next byte to lex */
    tok_t         tok;        /* current token */
    int           depth;
    int           failed;
} parser_t;

static void fail(parser_t *p, uint32_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(parser_t *p, uint32_t off, const char *fmt, ...)
{
    if (p->failed) return;
    p->failed = 1;
    char why[RULE_ERR];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    rsrc_fail(p->src, off, p->err, p->errsz, "%s", why);
}

/* ---- lexer -------------------------------------------------------------------- */

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

/* How a token reads in a message. */
static void tok_text(const parser_t *p, const tok_t *t, char *buf, size_t size)
{
    if (t->kind == TK_EOF) {
        snprintf(buf, size, "the end of the expression");
        return;
    }
    uint32_t n = t->len > 40 ? 40 : t->len;
    snprintf(buf, size, "'%.*s%s'", (int)n, p->src->text + t->off, t->len > n ? "..." : "");
}

static int lex_number(parser_t *p, uint32_t start)
{
    const char *s = p->src->text;
    uint32_t i = start, len = p->src->len;
    while (i < len && is_digit(s[i])) i++;
    uint32_t int_end = i, frac = 0;
    if (i + 1 < len && s[i] == '.' && is_digit(s[i + 1])) {
        i++;
        while (i < len && is_digit(s[i])) {
            i++;
            frac++;
        }
    }
    if (i < len && is_alpha(s[i])) {
        uint32_t u = i;
        while (u < len && (is_alpha(s[u]) || is_digit(s[u]))) u++;
        static const struct { char c; int64_t secs; } units[] = {
            { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 604800 },
        };
        int64_t mul = 0;
        if (u == i + 1 && frac == 0)
            for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
                if (s[i] == units[k].c) mul = units[k].secs;
        if (!mul) {
            fail(p, start, "'%.*s' is not a number or a duration (a whole number and one "
                 "of the units s, m, h, d, w, as in 30d)", (int)(u - start > 40 ? 40 : u - start),
                 s + start);
            return -1;
        }
        __int128 v = 0;
        for (uint32_t k = start; k < int_end; k++) {
            v = v * 10 + (s[k] - '0');
            if (v * mul > DUR_MAX) {
                fail(p, start, "duration '%.*s' is too long (at most 10000 years)",
                     (int)(u - start > 40 ? 40 : u - start), s + start);
                return -1;
            }
        }
        p->tok.kind = TK_DURATION;
        p->tok.v = (rval_t){ .t = RV_DUR, .u.i = (int64_t)(v * mul) };
        p->pos = u;
        p->tok.len = u - start;
        return 0;
    }
    p->tok.kind = TK_NUMBER;
    p->tok.len = i - start;
    p->pos = i;
    /* Exact when it has at most 4 decimals and fits; else a double. */
    if (frac <= 4) {
        __int128 v = 0;
        int ok = 1;
        for (uint32_t k = start; k < i && ok; k++) {
            if (s[k] == '.') continue;
            v = v * 10 + (s[k] - '0');
            if (v > DEC_LIMIT) ok = 0;
        }
        for (uint32_t k = frac; k < 4 && ok; k++) {
            v *= 10;
            if (v > DEC_LIMIT) ok = 0;
        }
        if (ok) {
            p->tok.v = (rval_t){ .t = RV_DEC, .u.i = (int64_t)v };
            return 0;
        }
    }
    char buf[400];
    uint32_t n = i - start < sizeof buf - 1 ? i - start : (uint32_t)sizeof buf - 1;
    memcpy(buf, s + start, n);
    buf[n] = '\0';
    double d = strtod(buf, NULL);
    if (i - start >= sizeof buf - 1 || d > 1e300) {
        fail(p, start, "number '%.*s' is too large", (int)(n > 40 ? 40 : n), buf);
        return -1;
    }
    p->tok.v = (rval_t){ .t = RV_REAL, .u.d = d };
    return 0;
}

static int lex_string(parser_t *p, uint32_t start)
{
    const char *s = p->src->text;
    uint32_t i = start + 1, len = p->src->len;
    char *out = arena_alloc(p->ar, len - start);
    if (!out) {
        fail(p, start, "out of memory");
        return -1;
    }
    uint32_t o = 0;
    for (;;) {
        if (i >= len || s[i] == '\n' || s[i] == '\r') {
            fail(p, start, "unterminated string (a string ends on its line with \")");
            return -1;
        }
        char c = s[i];
        if (c == '"') break;
        if (c == '\\') {
            char e = i + 1 < len ? s[i + 1] : '\0';
            switch (e) {
            case '"':  out[o++] = '"'; break;
            case '\\': out[o++] = '\\'; break;
            case 'n':  out[o++] = '\n'; break;
            case 't':  out[o++] = '\t'; break;
            default:
                fail(p, i, "unknown escape '\\%c' in a string (use \\\", \\\\, \\n or \\t)",
                     e >= 0x20 && e < 0x7f ? e : '?');
                return -1;
            }
            i += 2;
            continue;
        }
        out[o++] = c;
        i++;
    }
    out[o] = '\0';
    if (o > SEG_RULE_EXPR_MAX) {
        fail(p, start, "string is too long");
        return -1;
    }
    p->tok.kind = TK_STRING;
    p->tok.v = (rval_t){ .t = RV_STR, .len = o, .u.s = out };
    p->pos = i + 1;
    p->tok.len = p->pos - start;
    return 0;
}

static int lex(parser_t *p)
{
    const char *s = p->src->text;
    uint32_t len = p->src->len;
    while (p->pos < len && (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' ||
                            s[p->pos] == '\r'))
        p->pos++;
    uint32_t i = p->pos;
    memset(&p->tok, 0, sizeof p->tok);
    p->tok.off = i;
    if (i >= len) {
        p->tok.kind = TK_EOF;
        return 0;
    }
    char c = s[i];
    if (is_digit(c)) return lex_number(p, i);
    if (c == '"') return lex_string(p, i);
    if (is_alpha(c)) {
        uint32_t j = i;
        while (j < len && (is_alpha(s[j]) || is_digit(s[j]))) j++;
        static const struct { const char *w; tok_kind_t k; } kw[] = {
            { "and", TK_AND }, { "or", TK_OR }, { "not", TK_NOT }, { "in", TK_IN },
            { "true", TK_TRUE }, { "false", TK_FALSE },
        };
        p->tok.kind = TK_NAME;
        for (size_t k = 0; k < sizeof kw / sizeof kw[0]; k++)
            if (strlen(kw[k].w) == j - i && memcmp(kw[k].w, s + i, j - i) == 0)
                p->tok.kind = kw[k].k;
        if (p->tok.kind == TK_TRUE || p->tok.kind == TK_FALSE)
            p->tok.v = (rval_t){ .t = RV_BOOL, .u.i = p->tok.kind == TK_TRUE };
        p->tok.len = j - i;
        p->pos = j;
        return 0;
    }
    char n = i + 1 < len ? s[i + 1] : '\0';
    tok_kind_t k;
    uint32_t w = 1;
    switch (c) {
    case '(': k = TK_LPAREN; break;
    case ')': k = TK_RPAREN; break;
    case '[': k = TK_LBRACK; break;
    case ']': k = TK_RBRACK; break;
    case ',': k = TK_COMMA; break;
    case '.': k = TK_DOT; break;
    case '+': k = TK_PLUS; break;
    case '-': k = TK_MINUS; break;
    case '*': k = TK_STAR; break;
    case '/': k = TK_SLASH; break;
    case '<': k = n == '=' ? (w = 2, TK_LE) : TK_LT; break;
    case '>': k = n == '=' ? (w = 2, TK_GE) : TK_GT; break;
    case '=':
        if (n != '=') {
            fail(p, i, "'=' alone is not an operator: compare with ==");
            return -1;
        }
        k = TK_EQ;
        w = 2;
        break;
    case '!':
        if (n != '=') {
            fail(p, i, "'!' alone is not an operator: use not, or != to compare");
            return -1;
        }
        k = TK_NE;
        w = 2;
        break;
    case '\'':
        fail(p, i, "strings are written with double quotes (\"...\"); to keep a YAML value "
             "that starts with a quote, wrap the expression in parentheses");
        return -1;
    default:
        if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
            fail(p, i, "unexpected character (byte 0x%02x)", (unsigned char)c);
        else
            fail(p, i, "unexpected character '%c'", c);
        return -1;
    }
    p->tok.kind = k;
    p->tok.len = w;
    p->pos = i + w;
    return 0;
}

static int next(parser_t *p) { return lex(p); }

static int expect(parser_t *p, tok_kind_t k, const char *what)
{
    if (p->tok.kind == k) return next(p);
    char got[64];
    tok_text(p, &p->tok, got, sizeof got);
    fail(p, p->tok.off, "expected %s, got %s", what, got);
    return -1;
}

/* ---- parser ------------------------------------------------------------------- */

static node_t *node(parser_t *p, nkind_t kind, uint32_t off)
{
    node_t *n = arena_alloc(p->ar, sizeof *n);
    if (!n) {
        fail(p, off, "out of memory");
        return NULL;
    }
    n->kind = (uint8_t)kind;
    n->off = off;
    n->idx = -1;
    return n;
}

static node_t *expr(parser_t *p);

/* Grows a node list in the arena (the old block is simply left behind). */
static int push_arg(parser_t *p, node_t *n, node_t *arg, uint32_t *cap)
{
    if (n->nargs == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 4;
        node_t **a = arena_alloc(p->ar, nc * sizeof *a);
        if (!a) {
            fail(p, arg->off, "out of memory");
            return -1;
        }
        if (n->nargs) memcpy(a, n->args, n->nargs * sizeof *a);
        n->args = a;
        *cap = nc;
    }
    n->args[n->nargs++] = arg;
    return 0;
}

/* "[" [ expr { "," expr } ] "]", the current token being "[". */
static node_t *list(parser_t *p)
{
    node_t *n = node(p, N_LIST, p->tok.off);
    uint32_t cap = 0;
    if (!n || next(p)) return NULL;
    if (p->tok.kind != TK_RBRACK) {
        for (;;) {
            node_t *e = expr(p);
            if (!e || push_arg(p, n, e, &cap)) return NULL;
            if (p->tok.kind != TK_COMMA) break;
            if (next(p)) return NULL;
        }
    }
    if (expect(p, TK_RBRACK, "',' or ']'")) return NULL;
    return n;
}

static node_t *primary(parser_t *p)
{
    tok_t t = p->tok;
    node_t *n;
    switch (t.kind) {
    case TK_NUMBER:
    case TK_DURATION:
    case TK_STRING:
    case TK_TRUE:
    case TK_FALSE:
        n = node(p, N_LIT, t.off);
        if (!n) return NULL;
        n->v = t.v;
        return next(p) ? NULL : n;
    case TK_LPAREN:
        if (next(p)) return NULL;
        n = expr(p);
        if (!n || expect(p, TK_RPAREN, "')'")) return NULL;
        return n;
    case TK_LBRACK:
        return list(p);
    case TK_NAME:
        if (next(p)) return NULL;
        if (p->tok.kind == TK_DOT) {
            /* A selector: contact.visit, one token (no spaces around the
             * dot) */
            if (p->tok.off != t.off + t.len) {
                fail(p, t.off, "a selector is written without spaces, as in contact.visit");
                return NULL;
            }
            uint32_t dot_end = p->tok.off + 1;
            if (next(p)) return NULL;
            if (p->tok.kind == TK_NAME && p->tok.off != dot_end) {
                fail(p, t.off, "a selector is written without spaces, as in contact.visit");
                return NULL;
            }
            if (p->tok.kind != TK_NAME) {
                char got[64];
                tok_text(p, &p->tok, got, sizeof got);
                fail(p, p->tok.off, "expected a contact kind after '.', got %s", got);
                return NULL;
            }
            n = node(p, N_SEL, t.off);
            if (!n) return NULL;
            n->name = p->src->text + t.off;
            n->name_len = p->tok.off + p->tok.len - t.off;
            return next(p) ? NULL : n;
        }
        if (p->tok.kind != TK_LPAREN) {
            n = node(p, N_NAME, t.off);
            if (!n) return NULL;
            n->name = p->src->text + t.off;
            n->name_len = t.len;
            return n;
        }
        n = node(p, N_CALL, t.off);
        if (!n) return NULL;
        n->name = p->src->text + t.off;
        n->name_len = t.len;
        if (next(p)) return NULL;
        {
            uint32_t cap = 0;
            if (p->tok.kind != TK_RPAREN) {
                for (;;) {
                    node_t *a = expr(p);
                    if (!a || push_arg(p, n, a, &cap)) return NULL;
                    if (p->tok.kind != TK_COMMA) break;
                    if (next(p)) return NULL;
                }
            }
            if (expect(p, TK_RPAREN, "',' or ')'")) return NULL;
        }
        return n;
    default: {
        char got[64];
        tok_text(p, &t, got, sizeof got);
        fail(p, t.off, "expected a value, a name or '(', got %s", got);
        return NULL;
    }
    }
}

static node_t *unary(parser_t *p)
{
    if (p->tok.kind != TK_MINUS) return primary(p);
    uint32_t off = p->tok.off;
    if (++p->depth > MAX_DEPTH) {
        fail(p, off, "expression nested too deeply");
        return NULL;
    }
    if (next(p)) return NULL;
    node_t *a = unary(p);
    p->depth--;
    if (!a) return NULL;
    node_t *n = node(p, N_NEG, off);
    if (!n) return NULL;
    n->a = a;
    return n;
}

static node_t *binary(parser_t *p, nkind_t kind, int op, node_t *a, node_t *(*rhs)(parser_t *))
{
    uint32_t off = p->tok.off;
    if (next(p)) return NULL;
    node_t *b = rhs(p);
    if (!b) return NULL;
    node_t *n = node(p, kind, off);
    if (!n) return NULL;
    n->op = (uint8_t)op;
    n->a = a;
    n->b = b;
    n->off = a->off;   /* messages about the whole operation point at its start */
    return n;
}

static node_t *product(parser_t *p)
{
    node_t *n = unary(p);
    while (n && (p->tok.kind == TK_STAR || p->tok.kind == TK_SLASH))
        n = binary(p, N_ARITH, p->tok.kind == TK_STAR ? '*' : '/', n, unary);
    return n;
}

static node_t *sum(parser_t *p)
{
    node_t *n = product(p);
    while (n && (p->tok.kind == TK_PLUS || p->tok.kind == TK_MINUS))
        n = binary(p, N_ARITH, p->tok.kind == TK_PLUS ? '+' : '-', n, product);
    return n;
}

static int cmp_op(tok_kind_t k)
{
    switch (k) {
    case TK_EQ: return CMP_EQ;
    case TK_NE: return CMP_NE;
    case TK_LT: return CMP_LT;
    case TK_LE: return CMP_LE;
    case TK_GT: return CMP_GT;
    case TK_GE: return CMP_GE;
    default:    return 0;
    }
}

static node_t *compare(parser_t *p)
{
    node_t *n = sum(p);
    if (!n) return NULL;
    int op = cmp_op(p->tok.kind);
    if (op) {
        n = binary(p, N_CMP, op, n, sum);
    } else if (p->tok.kind == TK_IN) {
        uint32_t off = p->tok.off;
        if (next(p)) return NULL;
        if (p->tok.kind != TK_LBRACK) {
            char got[64];
            tok_text(p, &p->tok, got, sizeof got);
            fail(p, p->tok.off, "expected '[' after 'in', got %s", got);
            return NULL;
        }
        node_t *l = list(p);
        if (!l) return NULL;
        node_t *in = node(p, N_IN, off);
        if (!in) return NULL;
        in->a = n;
        in->b = l;
        in->off = n->off;
        n = in;
    } else {
        return n;
    }
    if (n && (cmp_op(p->tok.kind) || p->tok.kind == TK_IN)) {
        fail(p, p->tok.off, "comparisons do not chain: write (a < b) and (b < c)");
        return NULL;
    }
    return n;
}

static node_t *not_expr(parser_t *p)
{
    if (p->tok.kind != TK_NOT) return compare(p);
    uint32_t off = p->tok.off;
    if (++p->depth > MAX_DEPTH) {
        fail(p, off, "expression nested too deeply");
        return NULL;
    }
    if (next(p)) return NULL;
    node_t *a = not_expr(p);
    p->depth--;
    if (!a) return NULL;
    node_t *n = node(p, N_NOT, off);
    if (!n) return NULL;
    n->a = a;
    return n;
}

static node_t *and_expr(parser_t *p)
{
    node_t *n = not_expr(p);
    while (n && p->tok.kind == TK_AND) n = binary(p, N_AND, 0, n, not_expr);
    return n;
}

static node_t *or_expr(parser_t *p)
{
    node_t *n = and_expr(p);
    while (n && p->tok.kind == TK_OR) n = binary(p, N_OR, 0, n, and_expr);
    return n;
}

static node_t *expr(parser_t *p)
{
    if (++p->depth > MAX_DEPTH) {
        fail(p, p->tok.off, "expression nested too deeply");
        return NULL;
    }
    node_t *n = or_expr(p);
    p->depth--;
    return n;
}

node_t *rule_parse(const rsrc_t *src, arena_t *ar, char *err, size_t errsz)
{
    parser_t p = { .src = src, .ar = ar, .err = err, .errsz = errsz };
    if (src->len > SEG_RULE_EXPR_MAX) {
        fail(&p, 0, "expression is longer than %d bytes", SEG_RULE_EXPR_MAX);
        return NULL;
    }
    if (lex(&p)) return NULL;
    if (p.tok.kind == TK_EOF) {
        fail(&p, 0, "the expression is empty");
        return NULL;
    }
    node_t *n = expr(&p);
    if (!n || p.failed) return NULL;
    if (p.tok.kind != TK_EOF) {
        char got[64];
        tok_text(&p, &p.tok, got, sizeof got);
        fail(&p, p.tok.off, "unexpected %s after the expression", got);
        return NULL;
    }
    return n;
}
