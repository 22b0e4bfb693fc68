/*
 * seg_fit: see seg_fit.h. Reads the events with the replay's reader and
 * decoder, summarises purchases per customer (seg_summary), maximises each
 * model's likelihood (seg_mlfit over seg_bgnbd / seg_gamgam) and prints
 * the result.
 */
#include "cmd/seg_fit.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config/seg_cfg.h"
#include "event/seg_decode.h"
#include "io/seg_reader.h"
#include "predict/seg_bgnbd.h"
#include "predict/seg_gamgam.h"
#include "predict/seg_mlfit.h"
#include "predict/seg_summary.h"
#include "rule/seg_rule.h"
#include "util/seg_ts.h"

/* Fewer repeat customers than this leave a, b (and Gamma-Gamma) to noise. */
#define MIN_REPEAT 20

/* ---- BG/NBD data: customers with equal (x, t_x, T) folded into one row ---- */

typedef struct bg_row {
    double x, tx, T, w;
} bg_row_t;

typedef struct bg_data {
    bg_row_t *rows;
    size_t    n;
} bg_data_t;

static int by_x_tx_T(const void *a, const void *b)
{
    const bg_row_t *p = a, *q = b;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    if (p->tx != q->tx) return p->tx < q->tx ? -1 : 1;
    return (p->T > q->T) - (p->T < q->T);
}

/* Sorted by x, so the x terms are computed once per distinct x. */
static double bg_nll(const double *th, void *opaque)
{
    const bg_data_t *d = opaque;
    seg_bgnbd_t m = { th[0], th[1], th[2], th[3] };
    seg_bgnbd_xterms_t xt;
    double sum = 0, cur = -1;
    for (size_t i = 0; i < d->n; i++) {
        const bg_row_t *r = &d->rows[i];
        if (r->x != cur) {
            seg_bgnbd_xterms(&m, r->x, &xt);
            cur = r->x;
        }
        sum += r->w * seg_bgnbd_ll_x(&m, &xt, r->x, r->tx, r->T);
    }
    return -sum;
}

/* ---- Gamma-Gamma data: repeat customers, sorted by x ---- */

typedef struct gg_row {
    double x, mbar, ln_mbar;
} gg_row_t;

typedef struct gg_data {
    gg_row_t *rows;
    size_t    n;
} gg_data_t;

static int by_x(const void *a, const void *b)
{
    const gg_row_t *p = a, *q = b;
    return (p->x > q->x) - (p->x < q->x);
}

static double gg_nll(const double *th, void *opaque)
{
    const gg_data_t *d = opaque;
    seg_gamgam_t m = { th[0], th[1], th[2] };
    double sum = 0, cur = -1, xterm = 0;
    for (size_t i = 0; i < d->n; i++) {
        const gg_row_t *r = &d->rows[i];
        if (r->x != cur) {
            xterm = seg_gamgam_xterm(&m, r->x);
            cur = r->x;
        }
        sum += seg_gamgam_ll_x(&m, xterm, r->x, r->mbar, r->ln_mbar);
    }
    return -sum;
}

/* ---- output ---- */

/* A duration the config reads back ("7d", "36h", "90s"). */
static void format_duration(int64_t s, char *buf, size_t n)
{
    if (s % 86400 == 0) snprintf(buf, n, "%lldd", (long long)(s / 86400));
    else if (s % 3600 == 0) snprintf(buf, n, "%lldh", (long long)(s / 3600));
    else if (s % 60 == 0) snprintf(buf, n, "%lldm", (long long)(s / 60));
    else snprintf(buf, n, "%llds", (long long)s);
}

typedef struct result {
    seg_mlfit_result_t bg, gg;
    size_t customers, repeat, gg_customers, gg_zero;
    int64_t until, unit;
    double mean_T, mean_mbar;
} result_t;

static void print_yaml(FILE *f, const result_t *r, const char *input)
{
    char unit[32], until[SEG_TS_BUFSZ];
    format_duration(r->unit, unit, sizeof unit);
    seg_ts_format(r->until, until);
    fprintf(f,
            "# segd fit: BG/NBD and Gamma-Gamma by maximum likelihood (docs/predict.md)\n"
            "# on the purchases in %s up to %s.\n"
            "# Paste under segments.predict (times in units of %s).\n",
            strcmp(input, "-") == 0 ? "stdin" : input, until, unit);
    fprintf(f, "unit: %s\n", unit);
    fprintf(f, "bgnbd:\n  r: %.6g\n  alpha: %.6g\n  a: %.6g\n  b: %.6g\n", r->bg.theta[0],
            r->bg.theta[1], r->bg.theta[2], r->bg.theta[3]);
    fprintf(f, "gamma_gamma:\n  p: %.6g\n  q: %.6g\n  gamma: %.6g\n", r->gg.theta[0],
            r->gg.theta[1], r->gg.theta[2]);
    fprintf(f, "fit:   # what the fit saw; segd does not read it\n");
    fprintf(f, "  until: \"%s\"\n", until);
    fprintf(f,
            "  bgnbd:\n    log_likelihood: %.2f\n    customers: %zu\n"
            "    repeat_customers: %zu\n    iterations: %d\n    converged: %s\n",
            -r->bg.nll, r->customers, r->repeat, r->bg.iterations,
            r->bg.converged ? "true" : "false");
    fprintf(f,
            "  gamma_gamma:\n    log_likelihood: %.2f\n    customers: %zu\n"
            "    left_out_zero_spend: %zu\n    iterations: %d\n    converged: %s\n",
            -r->gg.nll, r->gg_customers, r->gg_zero, r->gg.iterations,
            r->gg.converged ? "true" : "false");
}

static int print_json(FILE *f, const result_t *r)
{
    char unit[32], until[SEG_TS_BUFSZ];
    format_duration(r->unit, unit, sizeof unit);
    seg_ts_format(r->until, until);
    cJSON *o = cJSON_CreateObject(), *bg = cJSON_CreateObject(), *gg = cJSON_CreateObject(),
          *fit = cJSON_CreateObject(), *fbg = cJSON_CreateObject(), *fgg = cJSON_CreateObject();
    int rc = -1;
    if (!o || !bg || !gg || !fit || !fbg || !fgg) goto out;
    cJSON_AddStringToObject(o, "unit", unit);
    cJSON_AddNumberToObject(o, "unit_seconds", (double)r->unit);
    static const char *const bgn[] = { "r", "alpha", "a", "b" };
    static const char *const ggn[] = { "p", "q", "gamma" };
    for (int i = 0; i < 4; i++) cJSON_AddNumberToObject(bg, bgn[i], r->bg.theta[i]);
    for (int i = 0; i < 3; i++) cJSON_AddNumberToObject(gg, ggn[i], r->gg.theta[i]);
    cJSON_AddItemToObject(o, "bgnbd", bg);
    bg = NULL;
    cJSON_AddItemToObject(o, "gamma_gamma", gg);
    gg = NULL;
    cJSON_AddStringToObject(fit, "until", until);
    cJSON_AddNumberToObject(fbg, "log_likelihood", -r->bg.nll);
    cJSON_AddNumberToObject(fbg, "customers", (double)r->customers);
    cJSON_AddNumberToObject(fbg, "repeat_customers", (double)r->repeat);
    cJSON_AddNumberToObject(fbg, "iterations", r->bg.iterations);
    cJSON_AddBoolToObject(fbg, "converged", r->bg.converged);
    cJSON_AddNumberToObject(fgg, "log_likelihood", -r->gg.nll);
    cJSON_AddNumberToObject(fgg, "customers", (double)r->gg_customers);
    cJSON_AddNumberToObject(fgg, "left_out_zero_spend", (double)r->gg_zero);
    cJSON_AddNumberToObject(fgg, "iterations", r->gg.iterations);
    cJSON_AddBoolToObject(fgg, "converged", r->gg.converged);
    cJSON_AddItemToObject(fit, "bgnbd", fbg);
    fbg = NULL;
    cJSON_AddItemToObject(fit, "gamma_gamma", fgg);
    fgg = NULL;
    cJSON_AddItemToObject(o, "fit", fit);
    fit = NULL;
    char *s = cJSON_PrintUnformatted(o);
    if (!s) goto out;
    fprintf(f, "%s\n", s);
    free(s);
    rc = 0;
out:
    cJSON_Delete(o);
    cJSON_Delete(bg);
    cJSON_Delete(gg);
    cJSON_Delete(fit);
    cJSON_Delete(fbg);
    cJSON_Delete(fgg);
    return rc;
}

/* ---- the command ---- */

/* The settings (input format, record limit) and segments.predict.unit,
 * read without compiling the rules: a rule that reads p_alive cannot
 * compile before the parameters this command prints exist. */
static int load_config(const seg_fit_opts_t *o, seg_cfg_t *cfg, int64_t *unit, char *errstr,
                       size_t errstr_size)
{
    seg_cfg_defaults(cfg);
    *unit = 7 * 86400;
    if (o->config && seg_cfg_load_file(cfg, o->config, errstr, errstr_size) != 0) return -1;
    for (int i = 0; i < o->nsets; i++)
        if (seg_cfg_set(cfg, o->sets[i], errstr, errstr_size) != 0) return -1;
    if (seg_cfg_validate(cfg, errstr, errstr_size) != 0) return -1;
    if (o->config) {
        seg_rules_def_t *def = seg_rules_def_load_file(o->config, errstr, errstr_size);
        if (!def) return -1;
        *unit = def->predict.unit;
        seg_rules_def_destroy(def);
    }
    return 0;
}

/* Reads every record; purchases go into s. *max_ts is the largest ts of
 * any valid event (INT64_MIN if none). */
static int read_events(const seg_fit_opts_t *o, const seg_cfg_t *cfg, seg_summary_t *s,
                       int64_t *max_ts, uint64_t *nread, uint64_t *nrej, char *errstr,
                       size_t errstr_size)
{
    int rc = -1;
    seg_decoder_t *dec = NULL;
    seg_reader_t *rd = seg_reader_open(o->input, cfg->input.format,
                                       (size_t)cfg->input.max_record_bytes, errstr, errstr_size);
    if (!rd) return -1;
    dec = seg_decoder_new();
    if (!dec) {
        snprintf(errstr, errstr_size, "out of memory creating the decoder");
        goto out;
    }
    *max_ts = INT64_MIN;
    for (;;) {
        seg_record_t rec;
        int got = seg_reader_next(rd, &rec, errstr, errstr_size);
        if (got < 0) goto out;
        if (got == 0) break;
        (*nread)++;
        if (rec.reject != SEG_REJ_NONE) {
            (*nrej)++;
            continue;
        }
        seg_event_t ev;
        seg_reject_t rej = cfg->input.format == SEG_FMT_MSGPACK
                               ? seg_decode_msgpack_delimited(dec, rec.data, rec.len, &ev, NULL, 0)
                               : seg_decode_json(dec, rec.data, rec.len, &ev, NULL, 0);
        if (rej != SEG_REJ_NONE) {
            (*nrej)++;
            continue;
        }
        if (ev.ts > *max_ts) *max_ts = ev.ts;
        if (ev.type == SEG_EV_PURCHASE &&
            seg_summary_add(s, ev.customer_id, ev.customer_id_len, ev.ts, ev.amount) != 0) {
            snprintf(errstr, errstr_size, "out of memory after %zu purchases",
                     seg_summary_purchases(s));
            goto out;
        }
    }
    rc = 0;
out:
    seg_decoder_destroy(dec);
    seg_reader_close(rd);
    return rc;
}

int seg_fit_run(const seg_fit_opts_t *o, char *errstr, size_t errstr_size)
{
    int rc = SEG_FIT_ERUNTIME;
    seg_cfg_t *cfg = malloc(sizeof *cfg);   /* large: string maps */
    seg_summary_t *s = seg_summary_new();
    bg_data_t bg = { 0 };
    gg_data_t gg = { 0 };
    result_t r;
    memset(&r, 0, sizeof r);
    char until_s[SEG_TS_BUFSZ], msg[512];
    if (!cfg || !s) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    if (load_config(o, cfg, &r.unit, errstr, errstr_size) != 0) {
        rc = SEG_FIT_ECONFIG;
        goto out;
    }
    if (o->format >= 0) cfg->input.format = (seg_format_t)o->format;
    int64_t max_ts;
    uint64_t nread = 0, nrej = 0;
    if (read_events(o, cfg, s, &max_ts, &nread, &nrej, errstr, errstr_size) != 0) goto out;
    r.until = o->has_until ? o->until : max_ts;
    rc = SEG_FIT_ECANNOT;
    if (r.until == INT64_MIN) {
        snprintf(errstr, errstr_size, "no valid event in %s (%llu records, %llu rejected): "
                 "nothing to fit", o->input, (unsigned long long)nread,
                 (unsigned long long)nrej);
        goto out;
    }
    seg_ts_format(r.until, until_s);
    const seg_summary_cust_t *cu;
    long nc = seg_summary_build(s, r.until, &cu);
    if (nc < 0) {
        rc = SEG_FIT_ERUNTIME;
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    if (nc == 0) {
        snprintf(errstr, errstr_size, "no purchase up to %s (%llu records, %llu rejected): "
                 "nothing to fit", until_s, (unsigned long long)nread, (unsigned long long)nrej);
        goto out;
    }
    r.customers = (size_t)nc;
    bg.rows = malloc(r.customers * sizeof *bg.rows);
    gg.rows = malloc(r.customers * sizeof *gg.rows);
    if (!bg.rows || !gg.rows) {
        rc = SEG_FIT_ERUNTIME;
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    double u = (double)r.unit;
    for (size_t i = 0; i < r.customers; i++) {
        const seg_summary_cust_t *c = &cu[i];
        bg_row_t *b = &bg.rows[i];
        b->x = c->x;
        b->tx = (double)(c->last - c->first) / u;
        b->T = (double)(r.until - c->first) / u;
        b->w = 1;
        r.mean_T += b->T;
        if (c->x > 0) {
            r.repeat++;
            if (c->mbar > 0) {
                gg.rows[gg.n++] = (gg_row_t){ c->x, c->mbar, log(c->mbar) };
                r.mean_mbar += c->mbar;
            } else {
                r.gg_zero++;
            }
        }
    }
    r.mean_T /= (double)r.customers;
    r.gg_customers = gg.n;
    fprintf(o->err, "segd fit: %llu records (%llu rejected), %zu purchases; %zu customers up to "
            "%s, %zu of them repeat customers\n", (unsigned long long)nread,
            (unsigned long long)nrej, seg_summary_purchases(s), r.customers, until_s, r.repeat);
    if (r.repeat < MIN_REPEAT) {
        snprintf(errstr, errstr_size, "only %zu of %zu customers bought again (on a later day) "
                 "up to %s; the fit needs at least %d repeat customers", r.repeat, r.customers,
                 until_s, MIN_REPEAT);
        goto out;
    }
    if (gg.n < MIN_REPEAT) {
        snprintf(errstr, errstr_size, "only %zu repeat customers spent more than 0 on their "
                 "repeat days up to %s; Gamma-Gamma needs at least %d", gg.n, until_s,
                 MIN_REPEAT);
        goto out;
    }
    r.mean_mbar /= (double)gg.n;

    /* BG/NBD on the distinct (x, t_x, T), weighted by how many share it. */
    qsort(bg.rows, r.customers, sizeof *bg.rows, by_x_tx_T);
    size_t k = 0;
    for (size_t i = 0; i < r.customers; i++) {
        if (k && by_x_tx_T(&bg.rows[k - 1], &bg.rows[i]) == 0) bg.rows[k - 1].w++;
        else bg.rows[k++] = bg.rows[i];
    }
    bg.n = k;
    /* alpha is a time in the unit: start it and bound it on the data's own
     * scale, so the fit does not depend on the unit chosen. */
    double scale = r.mean_T > 0 ? r.mean_T : 1;
    seg_mlfit_opts_t bo = {
        .n = 4, .names = { "r", "alpha", "a", "b" },
        .start = { 1, scale, 1, 1 },
        .lo = { 1e-6, 1e-6 * scale, 1e-6, 1e-6 },
        .hi = { 1e6, 1e6 * scale, 1e6, 1e6 },
    };
    int frc = seg_mlfit_run(bg_nll, &bg, &bo, &r.bg, msg, sizeof msg);
    if (frc != SEG_MLFIT_OK) {
        snprintf(errstr, errstr_size, "the BG/NBD fit failed: %s", msg);
        if (frc == SEG_MLFIT_EFAIL) rc = SEG_FIT_ERUNTIME;
        goto out;
    }
    qsort(gg.rows, gg.n, sizeof *gg.rows, by_x);
    seg_mlfit_opts_t go = {
        .n = 3, .names = { "p", "q", "gamma" },
        .start = { 1, 2, r.mean_mbar },
        .lo = { 1e-6, 1e-6, 1e-6 * r.mean_mbar },
        .hi = { 1e6, 1e6, 1e6 * r.mean_mbar },
    };
    frc = seg_mlfit_run(gg_nll, &gg, &go, &r.gg, msg, sizeof msg);
    if (frc != SEG_MLFIT_OK) {
        snprintf(errstr, errstr_size, "the Gamma-Gamma fit failed: %s", msg);
        if (frc == SEG_MLFIT_EFAIL) rc = SEG_FIT_ERUNTIME;
        goto out;
    }
    if (!(r.gg.theta[1] > 1)) {
        snprintf(errstr, errstr_size, "the Gamma-Gamma fit gave q = %.4g; with q <= 1 the "
                 "expected spend is infinite, so the model does not describe this data",
                 r.gg.theta[1]);
        goto out;
    }
    if (o->output == SEG_FIT_OUT_JSON) {
        if (print_json(o->out, &r) != 0) {
            rc = SEG_FIT_ERUNTIME;
            snprintf(errstr, errstr_size, "out of memory printing the result");
            goto out;
        }
    } else {
        print_yaml(o->out, &r, o->input);
    }
    if (fflush(o->out) != 0 || ferror(o->out)) {
        rc = SEG_FIT_ERUNTIME;
        snprintf(errstr, errstr_size, "cannot write the result");
        goto out;
    }
    rc = SEG_FIT_OK;
out:
    free(bg.rows);
    free(gg.rows);
    seg_summary_destroy(s);
    free(cfg);
    return rc;
}
