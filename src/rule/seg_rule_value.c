/*
 * seg_rule_value: what the operators of the rule language do to values,
 * and how values print.
 *
 * One implementation for constant folding at load time and for evaluation
 * per customer, so a folded `30d + 12h` and the same sum computed at run
 * time cannot differ. Numbers stay exact decimals (1/10000, as money) as
 * long as the exact result has at most four decimals and fits; anything
 * else becomes a binary double, and a double that is not finite, like a
 * division by zero, has no value (docs/rules.md, "Numbers").
 */
#include "rule/seg_rule_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/seg_money.h"


static rval_t absent(void) { return (rval_t){ .t = RV_ABSENT }; }
static rval_t dec(int64_t i) { return (rval_t){ .t = RV_DEC, .u.i = i }; }
static rval_t dur(int64_t i) { return (rval_t){ .t = RV_DUR, .u.i = i }; }

static rval_t real(double d)
{
    if (!isfinite(d)) return absent();
    return (rval_t){ .t = RV_REAL, .u.d = d };
}

static int is_num(const rval_t *v) { return v->t == RV_DEC || v->t == RV_REAL; }

static double as_double(const rval_t *v)
{
    return v->t == RV_DEC ? (double)v->u.i / (double)DEC_ONE : v->u.d;
}

static int dec_fits(__int128 x) { return x >= -DEC_LIMIT && x <= DEC_LIMIT; }

rval_t rv_from_double(double d)
{
    int64_t units;
    if (!isfinite(d)) return absent();
    if (seg_money_from_double(d, &units) == 0 && (double)units / (double)DEC_ONE == d)
        return dec(units);
    return real(d);
}

rval_t rv_neg(rval_t a)
{
    switch (a.t) {
    case RV_DEC:  return dec(-a.u.i);          /* |i| <= 10^18: no overflow */
    case RV_REAL: return real(-a.u.d);
    case RV_DUR:  return a.u.i == INT64_MIN ? absent() : dur(-a.u.i);
    default:      return absent();
    }
}

static rval_t num_arith(int op, rval_t a, rval_t b)
{
    if (a.t == RV_DEC && b.t == RV_DEC) {
        __int128 x = a.u.i, y = b.u.i, r;
        switch (op) {
        case '+': r = x + y; break;
        case '-': r = x - y; break;
        case '*':
            r = x * y;
            if (r % DEC_ONE != 0) goto inexact;
            r /= DEC_ONE;
            break;
        default: /* '/' */
            if (y == 0) return absent();
            if ((x * DEC_ONE) % y != 0) goto inexact;
            r = x * DEC_ONE / y;
            break;
        }
        if (dec_fits(r)) return dec((int64_t)r);
    }
inexact:
    if (a.t == RV_DEC && b.t == RV_DEC && (op == '*' || op == '/')) {
        /* Correctly rounded: the exact result of the units, divided once
         * (all three exact doubles below 2^53). */
        const __int128 lim = (__int128)1 << 53;
        __int128 x = a.u.i, y = b.u.i, p = x * y;
        if (op == '*' && p > -lim && p < lim)
            return real((double)p / ((double)DEC_ONE * DEC_ONE));
        if (op == '/' && x > -lim && x < lim && y > -lim && y < lim && y != 0)
            return real((double)x / (double)y);
    }
    double x = as_double(&a), y = as_double(&b);
    switch (op) {
    case '+': return real(x + y);
    case '-': return real(x - y);
    case '*': return real(x * y);
    default:  return y == 0 ? absent() : real(x / y);
    }
}

/* A duration scaled by a number: whole seconds, rounded toward zero. */
static rval_t dur_scale(int64_t secs, rval_t n, int divide)
{
    if (n.t == RV_DEC) {
        __int128 r;
        if (divide) {
            if (n.u.i == 0) return absent();
            r = (__int128)secs * DEC_ONE / n.u.i;
        } else {
            r = (__int128)secs * n.u.i / DEC_ONE;
        }
        if (r < INT64_MIN / 2 || r > INT64_MAX / 2) return absent();
        return dur((int64_t)r);
    }
    double d = divide ? (n.u.d == 0 ? NAN : (double)secs / n.u.d) : (double)secs * n.u.d;
    if (!isfinite(d) || d < -4.0e18 || d > 4.0e18) return absent();
    return dur((int64_t)trunc(d));
}

static rval_t concat(rval_t a, rval_t b, strbuf_t *sb)
{
    char ba[64], bb[64];
    const char *pa, *pb;
    size_t la = rv_print(a, ba, &pa), lb = rv_print(b, bb, &pb);
    if (!sb || la + lb > STR_MAX) return absent();
    /* Never grown here: strings handed out earlier in the same
     * evaluation must not move. The owner sizes it for the worst case
     * (STR_MAX + 1 per concatenation in the rule set). */
    if (sb->used + la + lb + 1 > sb->cap) return absent();
    char *o = sb->p + sb->used;
    memcpy(o, pa, la);
    memcpy(o + la, pb, lb);
    o[la + lb] = '\0';
    sb->used += la + lb + 1;
    return (rval_t){ .t = RV_STR, .len = (uint32_t)(la + lb), .u.s = o };
}

rval_t rv_arith(int op, rval_t a, rval_t b, strbuf_t *sb)
{
    if (a.t == RV_ABSENT || b.t == RV_ABSENT) return absent();
    if (op == '+' && (a.t == RV_STR || b.t == RV_STR)) return concat(a, b, sb);
    if (is_num(&a) && is_num(&b)) return num_arith(op, a, b);
    if (a.t == RV_DUR && b.t == RV_DUR) {
        int64_t r;
        switch (op) {
        case '+':
            if (__builtin_add_overflow(a.u.i, b.u.i, &r)) return absent();
            return dur(r);
        case '-':
            if (__builtin_sub_overflow(a.u.i, b.u.i, &r)) return absent();
            return dur(r);
        case '/': {
            if (b.u.i == 0) return absent();
            __int128 n = (__int128)a.u.i * DEC_ONE;
            if (n % b.u.i == 0 && dec_fits(n / b.u.i)) return dec((int64_t)(n / b.u.i));
            return real((double)a.u.i / (double)b.u.i);
        }
        default:
            return absent();
        }
    }
    if (a.t == RV_DUR && is_num(&b) && (op == '*' || op == '/')) return dur_scale(a.u.i, b, op == '/');
    if (is_num(&a) && b.t == RV_DUR && op == '*') return dur_scale(b.u.i, a, 0);
    return absent();
}

int rv_compare(int op, rval_t a, rval_t b)
{
    int c;
    if (a.t == RV_ABSENT || b.t == RV_ABSENT) return 0;
    if (is_num(&a) && is_num(&b)) {
        if (a.t == RV_DEC && b.t == RV_DEC) {
            c = (a.u.i > b.u.i) - (a.u.i < b.u.i);
        } else {
            double x = as_double(&a), y = as_double(&b);
            c = (x > y) - (x < y);
        }
    } else if (a.t != b.t) {
        return 0;
    } else if (a.t == RV_DUR) {
        c = (a.u.i > b.u.i) - (a.u.i < b.u.i);
    } else if (a.t == RV_BOOL) {
        if (op != CMP_EQ && op != CMP_NE) return 0;
        c = (a.u.i != 0) - (b.u.i != 0);
    } else { /* strings: bytes, then length */
        uint32_t n = a.len < b.len ? a.len : b.len;
        c = n ? memcmp(a.u.s, b.u.s, n) : 0;
        if (c == 0) c = (a.len > b.len) - (a.len < b.len);
        else c = c > 0 ? 1 : -1;
    }
    switch (op) {
    case CMP_EQ: return c == 0;
    case CMP_NE: return c != 0;
    case CMP_LT: return c < 0;
    case CMP_LE: return c <= 0;
    case CMP_GT: return c > 0;
    default:     return c >= 0;
    }
}

int rv_truthy(rval_t a) { return a.t == RV_BOOL && a.u.i != 0; }

bool rv_equal_exact(rval_t a, rval_t b)
{
    if (a.t != b.t) return false;
    switch (a.t) {
    case RV_ABSENT: return true;
    case RV_REAL:   return a.u.d == b.u.d;
    case RV_STR:    return a.len == b.len && (a.len == 0 || memcmp(a.u.s, b.u.s, a.len) == 0);
    default:        return a.u.i == b.u.i;
    }
}

static size_t print_real(double d, char *buf)
{
    /* The shortest %.Ng that reads back to the same double. */
    for (int p = 1; p <= 17; p++) {
        int n = snprintf(buf, 64, "%.*g", p, d);
        if (strtod(buf, NULL) == d) return (size_t)n;
    }
    return (size_t)snprintf(buf, 64, "%.17g", d);
}

static size_t print_dur(int64_t s, char *buf)
{
    static const struct { int64_t secs; char unit; } units[] = {
        { 604800, 'w' }, { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' },
    };
    if (s == 0) return (size_t)snprintf(buf, 64, "0s");
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (s % units[i].secs == 0)
            return (size_t)snprintf(buf, 64, "%" PRId64 "%c", s / units[i].secs, units[i].unit);
    return (size_t)snprintf(buf, 64, "%" PRId64 "s", s);
}

size_t rv_print(rval_t v, char *buf, const char **out)
{
    size_t n;
    *out = buf;
    switch (v.t) {
    case RV_BOOL: n = (size_t)snprintf(buf, 64, "%s", v.u.i ? "true" : "false"); break;
    case RV_DEC:  n = seg_money_format(v.u.i, buf); break;
    case RV_REAL: n = print_real(v.u.d, buf); break;
    case RV_DUR:  n = print_dur(v.u.i, buf); break;
    case RV_STR:  *out = v.u.s; return v.len;
    default:      buf[0] = '\0'; n = 0; break;
    }
    return n;
}

/* ---- positions ---------------------------------------------------------------- */

void rsrc_pos(const rsrc_t *s, uint32_t off, uint32_t *line, uint32_t *col)
{
    uint32_t l = 0, c = 0;
    for (uint32_t i = 0; i < off && i < s->len; i++) {
        if (s->text[i] == '\n') {
            l++;
            c = 0;
        } else if (((unsigned char)s->text[i] & 0xC0) != 0x80) {
            c++;   /* columns count characters, as libyaml's do */
        }
    }
    *line = s->line + l;
    if (l == 0) *col = s->col + c;
    else if (s->mode == SRC_BLOCK) *col = s->indent + c + 1;
    else if (s->mode == SRC_RAW) *col = c + 1;
    else *col = s->col + c;
}

void rsrc_fail(const rsrc_t *s, uint32_t off, char *err, size_t errsz, const char *fmt, ...)
{
    char why[RULE_ERR];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    uint32_t line, col;
    rsrc_pos(s, off, &line, &col);
    snprintf(err, errsz, "%s:%u:%u: rule '%s': %s", s->file, line, col, s->rule, why);
}

/* ---- arena --------------------------------------------------------------------- */

struct arena {
    char  *cur;
    size_t left;
    char **blocks;
    size_t n, cap;
};

arena_t *arena_new(void) { return calloc(1, sizeof(arena_t)); }

void arena_destroy(arena_t *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->n; i++) free(a->blocks[i]);
    free(a->blocks);
    free(a);
}

void *arena_alloc(arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n > a->left) {
        size_t sz = n > 32768 ? n : 32768;
        if (a->n == a->cap) {
            size_t cap = a->cap ? a->cap * 2 : 16;
            char **nb = realloc(a->blocks, cap * sizeof *nb);
            if (!nb) return NULL;
            a->blocks = nb;
            a->cap = cap;
        }
        char *b = calloc(1, sz);
        if (!b) return NULL;
        a->blocks[a->n++] = b;
        a->cur = b;
        a->left = sz;
    }
    void *p = a->cur;
    a->cur += n;
    a->left -= n;
    return p;
}

char *arena_strdup(arena_t *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
