/*
 * seg_custtable: the columns, in this order: customer_id; each enabled
 * built-in dimension; each user rule; recency_s, age_s (seconds; empty
 * without a purchase), frequency, monetary, complaints (docs/segments.md);
 * x, t_x, T (in segments.predict.unit), p_alive, expected_purchases and
 * clv over segments.predict.horizon (empty without parameters or without a
 * purchase). Numbers print as JSON numbers; the predictions with 17
 * significant digits, so a reader gets the double segd computed.
 */
#include "cmd/seg_custtable.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "segment/seg_dims.h"
#include "util/seg_money.h"

typedef struct {
    FILE           *f;
    seg_table_fmt_t fmt;
    int             col;      /* columns written in this row */
} tw_t;

static void put_name(tw_t *w, const char *name)
{
    if (w->fmt == SEG_TABLE_CSV) {
        if (w->col++) fputc(',', w->f);
    } else {
        fputs(w->col++ ? ",\"" : "{\"", w->f);
        fputs(name, w->f);
        fputs("\":", w->f);
    }
}

/* A text cell: CSV quotes it when it holds a comma, a quote or a line
 * break (RFC 4180 2.6, 2.7); JSON escapes it. NULL: empty / null. */
static void cell_text(tw_t *w, const char *name, const char *s, size_t n)
{
    put_name(w, name);
    if (!s) {
        if (w->fmt == SEG_TABLE_NDJSON) fputs("null", w->f);
        return;
    }
    if (w->fmt == SEG_TABLE_CSV) {
        if (!memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\n', n) &&
            !memchr(s, '\r', n)) {
            fwrite(s, 1, n, w->f);
            return;
        }
        fputc('"', w->f);
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '"') fputc('"', w->f);
            fputc(s[i], w->f);
        }
        fputc('"', w->f);
        return;
    }
    fputc('"', w->f);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            fputc('\\', w->f);
            fputc(ch, w->f);
        } else if (ch < 0x20) {
            fprintf(w->f, "\\u%04x", ch);
        } else {
            fputc(ch, w->f);
        }
    }
    fputc('"', w->f);
}

static void cell_raw(tw_t *w, const char *name, const char *num)
{
    put_name(w, name);
    if (num) fputs(num, w->f);
    else if (w->fmt == SEG_TABLE_NDJSON) fputs("null", w->f);
}

static void cell_i64(tw_t *w, const char *name, bool has, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%" PRId64, v);
    cell_raw(w, name, has ? b : NULL);
}

static void cell_real(tw_t *w, const char *name, bool has, double v)
{
    char b[40];
    snprintf(b, sizeof b, "%.17g", v);
    cell_raw(w, name, has && isfinite(v) ? b : NULL);
}

static void end_row(tw_t *w)
{
    fputs(w->fmt == SEG_TABLE_CSV ? "\r\n" : "}\n", w->f);
    w->col = 0;
}

static bool dim_on(const seg_cfg_t *cfg, int d)
{
    switch (d) {
    case SEG_DIM_LIFECYCLE: return cfg->seg.lifecycle.enabled;
    case SEG_DIM_VALUE: return cfg->seg.value.enabled;
    case SEG_DIM_RFM: return cfg->seg.rfm.enabled;
    default: return cfg->seg.dissatisfied.enabled;
    }
}

static const char *const tail_cols[] = { "recency_s", "age_s", "frequency", "monetary",
                                         "complaints", "x", "t_x", "T", "p_alive",
                                         "expected_purchases", "clv" };

long seg_custtable_write(seg_engine_t *e, const seg_cfg_t *cfg, const seg_ruleset_t *rules,
                         int64_t at, seg_table_fmt_t fmt, FILE *f, char *errstr,
                         size_t errstr_size)
{
    tw_t w = { .f = f, .fmt = fmt };
    uint32_t nr = rules ? seg_ruleset_count(rules) : 0;
    if (fmt == SEG_TABLE_CSV) {
        /* A header cell's name is its text (CSV writes no names; passing
         * NULL made GCC warn about the JSON branch it cannot rule out). */
        cell_text(&w, "customer_id", "customer_id", 11);
        for (int d = 0; d < SEG_DIM__COUNT; d++) {
            const char *n = seg_dim_name((seg_dim_t)d);
            if (dim_on(cfg, d)) cell_text(&w, n, n, strlen(n));
        }
        for (uint32_t r = 0; r < nr; r++) {
            const char *n = seg_ruleset_name(rules, r);
            cell_text(&w, n, n, strlen(n));
        }
        for (size_t k = 0; k < sizeof tail_cols / sizeof tail_cols[0]; k++)
            cell_text(&w, tail_cols[k], tail_cols[k], strlen(tail_cols[k]));
        end_row(&w);
    }
    long rows = 0;
    for (uint32_t idx = 0; idx < seg_engine_customer_high(e); idx++) {
        seg_cust_view_t v;
        if (seg_engine_customer_view(e, idx, at, &v) != 0) continue;
        cell_text(&w, "customer_id", v.id, v.id_len);
        for (int d = 0; d < SEG_DIM__COUNT; d++) {
            if (!dim_on(cfg, d)) continue;
            const char *s = seg_dim_value_name((seg_dim_t)d, v.dims[d]);
            cell_text(&w, seg_dim_name((seg_dim_t)d), s, s ? strlen(s) : 0);
        }
        for (uint32_t r = 0; r < nr; r++) {
            const char *s = seg_engine_customer_value(e, idx, (seg_dim_t)(SEG_DIM__COUNT + r));
            cell_text(&w, seg_ruleset_name(rules, r), s, s ? strlen(s) : 0);
        }
        const seg_features_t *ft = &v.features;
        char m[32];
        seg_money_format(ft->monetary, m);
        cell_i64(&w, "recency_s", ft->has_purchase, ft->recency);
        cell_i64(&w, "age_s", ft->has_purchase, ft->age);
        cell_i64(&w, "frequency", true, ft->frequency);
        cell_raw(&w, "monetary", m);
        cell_i64(&w, "complaints", true, ft->complaints);
        const seg_rule_pview_t *p = &v.predict;
        cell_real(&w, "x", v.has_predict, p->x);
        cell_real(&w, "t_x", v.has_predict, p->t_x);
        cell_real(&w, "T", v.has_predict, p->T);
        cell_real(&w, "p_alive", v.has_predict, p->p_alive);
        cell_real(&w, "expected_purchases", v.has_predict, p->expected);
        cell_real(&w, "clv", v.has_predict, p->clv);
        end_row(&w);
        rows++;
    }
    if (fflush(f) != 0 || ferror(f)) {
        snprintf(errstr, errstr_size, "cannot write the customer table: %s", strerror(errno));
        return -1;
    }
    return rows;
}
