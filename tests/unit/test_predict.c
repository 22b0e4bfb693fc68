/*
 * test_predict: the prediction models (src/predict) against values
 * computed apart, and the crossing search against brute force.
 *
 * Why: the rules fire at the second a prediction crosses a threshold, so
 * two things must hold. The values must be the models' (checked against
 * tests/reference/predict_ref.py, which evaluates the papers' formulas in
 * mpmath at 40 digits, summarises CDNOW itself and fits it with scipy;
 * its output is the fixture tests/data/predict/reference.txt). And
 * seg_predict_cross must return exactly the first second at which
 * seg_predict_eval's comparison changes truth, which is checked by
 * scanning the seconds (or minutes, then the seconds before the answer)
 * on random histories and parameters.
 *
 * Fixture lines (all numbers as C's strtod reads them back exactly):
 *   hyp2f1 a b c z value
 *   bgnbd r alpha a b x t_x T t ll p_alive e_alive expected
 *   gg p q gamma x mbar ll spend
 *   clv r alpha a b p q gamma unit x first last mbar at horizon discount value
 *   fit_bgnbd r alpha a b ll customers     (scipy's maximum on CDNOW)
 *   fit_gg p q gamma ll customers
 *   until T
 *   buy id ts amount_units                 (CDNOW_sample.txt, every row)
 *   cust id x first last mbar p_alive e39 spend   (the paper's parameters)
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "predict/seg_bgnbd.h"
#include "predict/seg_gamgam.h"
#include "predict/seg_hyp2f1.h"
#include "predict/seg_mlfit.h"
#include "predict/seg_predict.h"
#include "seg_test_rng.h"
#include "predict/seg_summary.h"

#define FIXTURE SEG_TEST_DATA "/predict/reference.txt"
#define WEEK 604800

/* ---- the fixture ---------------------------------------------------------------- */

#define MAXTOK 20

typedef struct line {
    char  *tok[MAXTOK];
    int    n;
} line_t;

static line_t *lines;
static size_t  nlines;

static int load_fixture(void **state)
{
    (void)state;
    FILE *f = fopen(FIXTURE, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", FIXTURE);
        return -1;
    }
    char buf[1024];
    size_t cap = 0;
    while (fgets(buf, sizeof buf, f)) {
        if (buf[0] == '#' || buf[0] == '\n') continue;
        if (nlines == cap) {
            cap = cap ? cap * 2 : 1024;
            lines = realloc(lines, cap * sizeof *lines);
            assert_non_null(lines);
        }
        line_t *l = &lines[nlines++];
        l->n = 0;
        for (char *save = NULL, *t = strtok_r(buf, " \n", &save); t && l->n < MAXTOK;
             t = strtok_r(NULL, " \n", &save))
            l->tok[l->n++] = strdup(t);
    }
    fclose(f);
    return nlines ? 0 : -1;
}

static int free_fixture(void **state)
{
    (void)state;
    for (size_t i = 0; i < nlines; i++)
        for (int j = 0; j < lines[i].n; j++) free(lines[i].tok[j]);
    free(lines);
    return 0;
}

static double D(const line_t *l, int i)
{
    assert_true(i < l->n);
    return strtod(l->tok[i], NULL);
}

static long long I(const line_t *l, int i)
{
    assert_true(i < l->n);
    return strtoll(l->tok[i], NULL, 10);
}

static int is(const line_t *l, const char *kind)
{
    return l->n > 0 && strcmp(l->tok[0], kind) == 0;
}

/* |got - want| <= rel |want| + abs_floor */
static void near(const char *what, size_t lineno, double got, double want, double rel,
                 double abs_floor)
{
    if (!(fabs(got - want) <= rel * fabs(want) + abs_floor))
        fail_msg("%s (fixture line %zu): got %.17g, want %.17g (rel %.3g)", what, lineno, got,
                 want, fabs(got - want) / fabs(want));
}

/* ---- values against mpmath --------------------------------------------------------- */

static void test_hyp2f1_reference(void **state)
{
    (void)state;
    size_t n = 0;
    for (size_t i = 0; i < nlines; i++) {
        const line_t *l = &lines[i];
        if (!is(l, "hyp2f1")) continue;
        double v;
        if (seg_hyp2f1(D(l, 1), D(l, 2), D(l, 3), D(l, 4), &v) != 0)
            fail_msg("2F1(%s, %s; %s; %s) failed", l->tok[1], l->tok[2], l->tok[3], l->tok[4]);
        near("2F1", i, v, D(l, 5), 1e-9, 1e-300);
        n++;
    }
    assert_true(n > 100);
}

static void test_hyp2f1_domain(void **state)
{
    (void)state;
    double v = 0;
    assert_int_equal(seg_hyp2f1(1, 2, 3, 1.0, &v), -1);      /* z = 1 */
    assert_int_equal(seg_hyp2f1(1, 2, 3, 1.5, &v), -1);
    assert_int_equal(seg_hyp2f1(1, 2, 0, 0.5, &v), -1);      /* pole in c */
    assert_int_equal(seg_hyp2f1(1, 2, -3, 0.5, &v), -1);
    assert_int_equal(seg_hyp2f1(NAN, 2, 3, 0.5, &v), -1);
    assert_int_equal(seg_hyp2f1(1, 2, 3, 0, &v), 0);
    assert_true(v == 1);
    /* 2F1(1,1;2;z) = -ln(1-z)/z, on both sides of 0 and beyond -1 */
    static const double zs[] = { 0.3, 0.9, 0.99, -0.5, -1, -7.5, -1e3 };
    for (size_t i = 0; i < sizeof zs / sizeof zs[0]; i++) {
        double z = zs[i];
        assert_int_equal(seg_hyp2f1(1, 1, 2, z, &v), 0);
        near("2F1(1,1;2;z)", i, v, -log1p(-z) / z, 1e-9, 0);
    }
}

static void test_bgnbd_reference(void **state)
{
    (void)state;
    size_t n = 0;
    for (size_t i = 0; i < nlines; i++) {
        const line_t *l = &lines[i];
        if (!is(l, "bgnbd")) continue;
        seg_bgnbd_t m = { D(l, 1), D(l, 2), D(l, 3), D(l, 4) };
        double x = D(l, 5), tx = D(l, 6), T = D(l, 7), t = D(l, 8);
        /* near a = 1 or a+b+x-1 = 0 the interpolation errs by ~1e-8 */
        bool sing = fabs(m.a - 1) < 1e-4 || fabs(m.a + m.b + x - 1) < 1e-4;
        near("ll", i, seg_bgnbd_ll(&m, x, tx, T), D(l, 9), 1e-12, 1e-12);
        near("p_alive", i, seg_bgnbd_p_alive(&m, x, tx, T), D(l, 10), 1e-12, 0);
        near("e_alive", i, seg_bgnbd_expected_alive(&m, x, T, t), D(l, 11), sing ? 1e-7 : 1e-9,
             0);
        near("expected", i, seg_bgnbd_expected(&m, x, tx, T, t), D(l, 12), sing ? 1e-7 : 1e-9,
             0);
        n++;
    }
    assert_true(n > 100);
}

static void test_gamgam_reference(void **state)
{
    (void)state;
    size_t n = 0;
    for (size_t i = 0; i < nlines; i++) {
        const line_t *l = &lines[i];
        if (!is(l, "gg")) continue;
        seg_gamgam_t m = { D(l, 1), D(l, 2), D(l, 3) };
        near("gg ll", i, seg_gamgam_ll(&m, D(l, 4), D(l, 5)), D(l, 6), 1e-12, 1e-11);
        near("gg spend", i, seg_gamgam_expected(&m, D(l, 4), D(l, 5)), D(l, 7), 1e-14, 0);
        n++;
    }
    assert_true(n > 50);
}

static void test_clv_reference(void **state)
{
    (void)state;
    size_t n = 0;
    char err[256];
    for (size_t i = 0; i < nlines; i++) {
        const line_t *l = &lines[i];
        if (!is(l, "clv")) continue;
        seg_predict_params_t p = { D(l, 1), D(l, 2), D(l, 3), D(l, 4), D(l, 5), D(l, 6), D(l, 7),
                                   I(l, 8), D(l, 15) };
        seg_predict_t *m = seg_predict_new(&p, err, sizeof err);
        assert_non_null(m);
        seg_predict_hist_t h = { (uint32_t)I(l, 9), I(l, 10), I(l, 11), D(l, 12) };
        near("clv", i, seg_predict_eval(m, &h, SEG_PF_CLV, I(l, 14), I(l, 13)), D(l, 16), 1e-9,
             0);
        seg_predict_destroy(m);
        n++;
    }
    assert_true(n >= 20);
}

/* The paper's worked example, to its precision: x = 2, t_x = 30.43 and
 * T = 38.86 weeks expects 1.226 purchases in the next 39 weeks. 30.43 and
 * 38.86 weeks are whole seconds, so seg_predict_eval sees the same T. */
static void test_paper_example(void **state)
{
    (void)state;
    seg_bgnbd_t bg = { 0.243, 4.414, 0.793, 2.426 };
    double e = seg_bgnbd_expected(&bg, 2, 30.43, 38.86, 39);
    assert_true(fabs(e - 1.226) < 0.0005);
    seg_predict_params_t p = { 0.243, 4.414, 0.793, 2.426, 6.25, 3.74, 15.44, WEEK, 0 };
    char err[128];
    seg_predict_t *m = seg_predict_new(&p, err, sizeof err);
    assert_non_null(m);
    seg_predict_hist_t h = { 2, 0, 18404064, 30 };   /* 30.43 weeks */
    double v = seg_predict_eval(m, &h, SEG_PF_EXPECTED_PURCHASES, 39 * WEEK, 23502528);
    assert_true(v == e);
    seg_predict_destroy(m);
}

/* ---- CDNOW: the summary and every customer's predictions ------------------------------ */

static void test_cdnow_summary_and_predictions(void **state)
{
    (void)state;
    seg_summary_t *s = seg_summary_new();
    assert_non_null(s);
    int64_t until = 0;
    size_t first_cust = 0, ncust = 0;
    for (size_t i = 0; i < nlines; i++) {
        const line_t *l = &lines[i];
        if (is(l, "until")) until = I(l, 1);
        if (is(l, "buy"))
            assert_int_equal(seg_summary_add(s, l->tok[1], strlen(l->tok[1]), I(l, 2), I(l, 3)),
                             0);
        if (is(l, "cust") && !ncust++) first_cust = i;
    }
    assert_int_equal(seg_summary_purchases(s), 6919);
    const seg_summary_cust_t *c;
    long n = seg_summary_build(s, until, &c);
    assert_int_equal(n, 2357);
    assert_int_equal(ncust, 2357);
    seg_predict_params_t p = { 0.243, 4.414, 0.793, 2.426, 6.25, 3.74, 15.44, WEEK, 0 };
    char err[128];
    seg_predict_t *m = seg_predict_new(&p, err, sizeof err);
    assert_non_null(m);
    size_t repeat = 0;
    for (long k = 0; k < n; k++) {
        const line_t *l = &lines[first_cust + (size_t)k];
        assert_true(is(l, "cust"));
        if (c[k].id_len != strlen(l->tok[1]) || memcmp(c[k].id, l->tok[1], c[k].id_len) != 0)
            fail_msg("customer %ld: %.*s, want %s", k, (int)c[k].id_len, c[k].id, l->tok[1]);
        assert_int_equal(c[k].x, I(l, 2));
        assert_int_equal(c[k].first, I(l, 3));
        assert_int_equal(c[k].last, I(l, 4));
        near("mbar", first_cust + (size_t)k, c[k].mbar, D(l, 5), 1e-14, 0);
        repeat += c[k].x > 0;
        seg_predict_hist_t h = { c[k].x, c[k].first, c[k].last, c[k].mbar };
        size_t li = first_cust + (size_t)k;
        near("cdnow p_alive", li, seg_predict_eval(m, &h, SEG_PF_P_ALIVE, 0, until), D(l, 6),
             1e-12, 0);
        near("cdnow expected 39w", li,
             seg_predict_eval(m, &h, SEG_PF_EXPECTED_PURCHASES, 39 * WEEK, until), D(l, 7), 1e-9,
             0);
        near("cdnow spend", li, seg_predict_eval(m, &h, SEG_PF_EXPECTED_SPEND, 0, until),
             D(l, 8), 1e-13, 0);
    }
    assert_int_equal(repeat, 946);
    seg_predict_destroy(m);
    seg_summary_destroy(s);
}

/* The likelihoods, maximised by seg_mlfit on the fixture's summary, give
 * scipy's optimum (Nelder-Mead then BFGS) to 1e-5, and the paper's
 * published values to their 3 or 4 digits. */
typedef struct cd {
    double *x, *tx, *T, *m;
    size_t  n;
} cd_t;

static double nll_bg(const double *th, void *o)
{
    const cd_t *d = o;
    seg_bgnbd_t m = { th[0], th[1], th[2], th[3] };
    double s = 0;
    for (size_t i = 0; i < d->n; i++) s += seg_bgnbd_ll(&m, d->x[i], d->tx[i], d->T[i]);
    return -s;
}

static double nll_gg(const double *th, void *o)
{
    const cd_t *d = o;
    seg_gamgam_t m = { th[0], th[1], th[2] };
    double s = 0;
    for (size_t i = 0; i < d->n; i++)
        if (d->x[i] > 0) s += seg_gamgam_ll(&m, d->x[i], d->m[i]);
    return -s;
}

static void test_cdnow_fit(void **state)
{
    (void)state;
    cd_t d = { 0 };
    const line_t *fb = NULL, *fg = NULL;
    int64_t until = 0;
    for (size_t i = 0; i < nlines; i++) {
        if (is(&lines[i], "cust")) d.n++;
        if (is(&lines[i], "fit_bgnbd")) fb = &lines[i];
        if (is(&lines[i], "fit_gg")) fg = &lines[i];
        if (is(&lines[i], "until")) until = I(&lines[i], 1);
    }
    assert_non_null(fb);
    assert_non_null(fg);
    d.x = calloc(d.n, sizeof *d.x);
    d.tx = calloc(d.n, sizeof *d.tx);
    d.T = calloc(d.n, sizeof *d.T);
    d.m = calloc(d.n, sizeof *d.m);
    size_t k = 0;
    for (size_t i = 0; i < nlines; i++) {
        const line_t *l = &lines[i];
        if (!is(l, "cust")) continue;
        d.x[k] = (double)I(l, 2);
        d.tx[k] = (double)(I(l, 4) - I(l, 3)) / WEEK;
        d.T[k] = (double)(until - I(l, 3)) / WEEK;
        d.m[k] = D(l, 5);
        k++;
    }
    char err[256];
    seg_mlfit_opts_t o = { .n = 4, .names = { "r", "alpha", "a", "b" },
                           .start = { 1, 30, 1, 1 },
                           .lo = { 1e-6, 1e-6, 1e-6, 1e-6 },
                           .hi = { 1e6, 1e6, 1e6, 1e6 } };
    seg_mlfit_result_t r;
    assert_int_equal(seg_mlfit_run(nll_bg, &d, &o, &r, err, sizeof err), SEG_MLFIT_OK);
    assert_true(r.converged);
    for (int i = 0; i < 4; i++) near("bgnbd fit", 0, r.theta[i], D(fb, 1 + i), 1e-5, 0);
    near("bgnbd ll", 0, -r.nll, D(fb, 5), 1e-10, 0);
    /* the paper: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4 */
    assert_true(fabs(r.theta[0] - 0.243) < 0.0005 && fabs(r.theta[1] - 4.414) < 0.0005);
    assert_true(fabs(r.theta[2] - 0.793) < 0.0005 && fabs(r.theta[3] - 2.426) < 0.0005);
    assert_true(fabs(-r.nll - -9582.4) < 0.05);
    seg_mlfit_opts_t g = { .n = 3, .names = { "p", "q", "gamma" }, .start = { 1, 2, 30 },
                           .lo = { 1e-6, 1e-6, 1e-6 }, .hi = { 1e6, 1e6, 1e6 } };
    assert_int_equal(seg_mlfit_run(nll_gg, &d, &g, &r, err, sizeof err), SEG_MLFIT_OK);
    for (int i = 0; i < 3; i++) near("gg fit", 0, r.theta[i], D(fg, 1 + i), 1e-5, 0);
    near("gg ll", 0, -r.nll, D(fg, 4), 1e-10, 0);
    /* Hardie's note: p = 6.25, q = 3.74, gamma = 15.44 */
    assert_true(fabs(r.theta[0] - 6.25) < 0.005 && fabs(r.theta[1] - 3.74) < 0.005);
    assert_true(fabs(r.theta[2] - 15.44) < 0.005);
    free(d.x);
    free(d.tx);
    free(d.T);
    free(d.m);
}

/* ---- seg_mlfit on known functions ------------------------------------------------------ */

static double bowl(const double *th, void *o)
{
    const double *want = o;
    double s = 0;
    for (int i = 0; i < 3; i++) {
        double d = log(th[i] / want[i]);
        s += d * d * (i + 1);
    }
    return s;
}

static void test_mlfit(void **state)
{
    (void)state;
    char err[256];
    double want[3] = { 0.01, 3, 250 };
    seg_mlfit_opts_t o = { .n = 3, .names = { "u", "v", "w" }, .start = { 1, 1, 1 },
                           .lo = { 1e-6, 1e-6, 1e-6 }, .hi = { 1e6, 1e6, 1e6 } };
    seg_mlfit_result_t r;
    assert_int_equal(seg_mlfit_run(bowl, want, &o, &r, err, sizeof err), SEG_MLFIT_OK);
    for (int i = 0; i < 3; i++) near("bowl", 0, r.theta[i], want[i], 1e-6, 0);
    assert_true(r.converged && r.at_bound < 0 && r.iterations > 0);
    /* the minimum beyond the box: the parameter ends at its bound */
    double far[3] = { 1e-9, 3, 250 };
    assert_int_equal(seg_mlfit_run(bowl, far, &o, &r, err, sizeof err), SEG_MLFIT_EBOUND);
    assert_int_equal(r.at_bound, 0);
    assert_non_null(strstr(err, "'u' ran to "));
    assert_non_null(strstr(err, "near its lower bound 1e-06"));
    /* too few iterations */
    o.max_iter = 5;
    assert_int_equal(seg_mlfit_run(bowl, want, &o, &r, err, sizeof err), SEG_MLFIT_ENOCONV);
    assert_non_null(strstr(err, "did not converge in 5 iterations"));
    /* a start outside the box */
    o.max_iter = 0;
    o.start[1] = 1e7;
    assert_int_equal(seg_mlfit_run(bowl, want, &o, &r, err, sizeof err), SEG_MLFIT_EFAIL);
}

/* ---- seg_summary edge cases ---------------------------------------------------------- */

static void test_summary(void **state)
{
    (void)state;
    seg_summary_t *s = seg_summary_new();
    assert_non_null(s);
    const int64_t d = 86400;
    /* out of order; b buys twice on day 10 and once on day 12; c only on
     * its first day (twice); e before 1970 across midnight */
    assert_int_equal(seg_summary_add(s, "b", 1, 12 * d + 5, 70000), 0);
    assert_int_equal(seg_summary_add(s, "a", 1, 3 * d, 10000), 0);
    assert_int_equal(seg_summary_add(s, "b", 1, 10 * d + 100, 50000), 0);
    assert_int_equal(seg_summary_add(s, "b", 1, 2 * d + 7, 990000), 0);
    assert_int_equal(seg_summary_add(s, "b", 1, 10 * d + 50, 30000), 0);
    assert_int_equal(seg_summary_add(s, "c", 1, 4 * d + 10, 10000), 0);
    assert_int_equal(seg_summary_add(s, "c", 1, 4 * d + 20, 0), 0);
    assert_int_equal(seg_summary_add(s, "b", 1, 40 * d, 10000), 0);   /* after until */
    assert_int_equal(seg_summary_add(s, "e", 1, -1, 10000), 0);       /* 1969-12-31 */
    assert_int_equal(seg_summary_add(s, "e", 1, 0, 20000), 0);        /* 1970-01-01 */
    assert_int_equal(seg_summary_add(s, "f", 1, 50 * d, 10000), 0);   /* only after until */
    const seg_summary_cust_t *c;
    long n = seg_summary_build(s, 20 * d, &c);
    assert_int_equal(n, 4);   /* b, a, c, e in the order first seen; f bought after until */
    assert_memory_equal(c[0].id, "b", 1);
    assert_int_equal(c[0].x, 2);
    assert_int_equal(c[0].first, 2 * d + 7);
    assert_int_equal(c[0].last, 12 * d + 5);
    near("mbar b", 0, c[0].mbar, (5 + 3 + 7) / 2.0, 1e-15, 0);
    assert_memory_equal(c[1].id, "a", 1);
    assert_int_equal(c[1].x, 0);
    assert_true(c[1].mbar == 0);
    assert_memory_equal(c[2].id, "c", 1);
    assert_int_equal(c[2].x, 0);
    assert_int_equal(c[2].last, 4 * d + 20);
    assert_memory_equal(c[3].id, "e", 1);
    assert_int_equal(c[3].x, 1);
    near("mbar e", 0, c[3].mbar, 2, 1e-15, 0);
    /* the same summary with until at the very second of a purchase includes it */
    n = seg_summary_build(s, 10 * d + 50, &c);
    assert_int_equal(n, 4);
    assert_int_equal(c[0].x, 1);
    near("mbar b", 0, c[0].mbar, 3, 1e-15, 0);
    seg_summary_destroy(s);
    seg_summary_destroy(NULL);
}

/* ---- seg_predict: parameters, edge values --------------------------------------------- */

static void test_predict_params(void **state)
{
    (void)state;
    char err[256];
    seg_predict_params_t ok = { 0.243, 4.414, 0.793, 2.426, 6.25, 3.74, 15.44, WEEK, 0 };
    seg_predict_params_t p = ok;
    p.a = -1;
    assert_null(seg_predict_new(&p, err, sizeof err));
    assert_string_equal(err, "bgnbd parameter 'a' must be a finite number > 0, got -1");
    p = ok;
    p.alpha = INFINITY;
    assert_null(seg_predict_new(&p, err, sizeof err));
    p = ok;
    p.q = 1;
    assert_null(seg_predict_new(&p, err, sizeof err));
    assert_non_null(strstr(err, "'q' must be greater than 1"));
    p = ok;
    p.unit_seconds = 0;
    assert_null(seg_predict_new(&p, err, sizeof err));
    p = ok;
    p.discount_rate = -0.1;
    assert_null(seg_predict_new(&p, err, sizeof err));
    /* Gamma-Gamma absent: spend and clv have no value, never cross */
    p = ok;
    p.p = p.q = p.gamma = 0;
    seg_predict_t *m = seg_predict_new(&p, err, sizeof err);
    assert_non_null(m);
    seg_predict_hist_t h = { 2, 0, 10 * 86400, 30 };
    assert_true(isnan(seg_predict_eval(m, &h, SEG_PF_EXPECTED_SPEND, 0, 100 * 86400)));
    assert_true(isnan(seg_predict_eval(m, &h, SEG_PF_CLV, 365 * 86400, 100 * 86400)));
    assert_true(seg_predict_cross(m, &h, SEG_PF_CLV, 365 * 86400, SEG_PCMP_GT, 1, 0) ==
                INT64_MAX);
    seg_predict_destroy(m);
    seg_predict_destroy(NULL);
}

static void test_predict_edges(void **state)
{
    (void)state;
    char err[256];
    seg_predict_params_t p = { 0.243, 4.414, 0.793, 2.426, 6.25, 3.74, 15.44, WEEK, 0 };
    seg_predict_t *m = seg_predict_new(&p, err, sizeof err);
    assert_non_null(m);
    /* x = 0: alive for sure, for ever */
    seg_predict_hist_t h0 = { 0, 1000, 1000, 0 };
    assert_true(seg_predict_eval(m, &h0, SEG_PF_P_ALIVE, 0, 1000 + 1000 * 86400LL) == 1);
    assert_true(seg_predict_cross(m, &h0, SEG_PF_P_ALIVE, 0, SEG_PCMP_LT, 0.5, 1000) ==
                INT64_MAX);
    /* ... but its expected purchases fall */
    double e1 = seg_predict_eval(m, &h0, SEG_PF_EXPECTED_PURCHASES, 365 * 86400, 1000 + 86400);
    double e2 = seg_predict_eval(m, &h0, SEG_PF_EXPECTED_PURCHASES, 365 * 86400, 1000 + 86400 * 400);
    assert_true(e1 > e2 && e2 > 0);
    /* the population mean spend */
    near("spend x=0", 0, seg_predict_eval(m, &h0, SEG_PF_EXPECTED_SPEND, 0, 5000),
         6.25 * 15.44 / 2.74, 1e-15, 0);
    /* a horizon of 0 expects nothing */
    seg_predict_hist_t h = { 3, 0, 20 * 86400, 40 };
    assert_true(seg_predict_eval(m, &h, SEG_PF_EXPECTED_PURCHASES, 0, 30 * 86400) == 0);
    assert_true(seg_predict_eval(m, &h, SEG_PF_CLV, 0, 30 * 86400) == 0);
    /* an instant before the last purchase counts as the last purchase */
    assert_true(seg_predict_eval(m, &h, SEG_PF_P_ALIVE, 0, 5) ==
                seg_predict_eval(m, &h, SEG_PF_P_ALIVE, 0, 20 * 86400));
    /* right after a purchase P(alive) = 1/(1 + a/(b+x-1)) */
    near("p_alive at last", 0, seg_predict_eval(m, &h, SEG_PF_P_ALIVE, 0, 20 * 86400),
         1 / (1 + 0.793 / (2.426 + 2)), 1e-15, 0);
    /* expected spend never crosses */
    assert_true(seg_predict_cross(m, &h, SEG_PF_EXPECTED_SPEND, 0, SEG_PCMP_LT, 1e9, 0) ==
                INT64_MAX);
    /* already on the side the value falls to: never */
    assert_true(seg_predict_cross(m, &h, SEG_PF_P_ALIVE, 0, SEG_PCMP_LT, 0.99, 20 * 86400) ==
                INT64_MAX);
    assert_true(seg_predict_cross(m, &h, SEG_PF_P_ALIVE, 0, SEG_PCMP_GT, 0.99, 20 * 86400) ==
                INT64_MAX);
    /* a threshold never reached before the end of time */
    assert_true(seg_predict_cross(m, &h, SEG_PF_P_ALIVE, 0, SEG_PCMP_LT, 1e-300, 20 * 86400) ==
                INT64_MAX);
    assert_true(seg_predict_cross(m, &h, SEG_PF_P_ALIVE, 0, SEG_PCMP_LT, NAN, 20 * 86400) ==
                INT64_MAX);
    assert_true(seg_predict_cross(m, &h, SEG_PF_P_ALIVE, 0, SEG_PCMP_GE, 0.5,
                                  SEG_PREDICT_TMAX) == INT64_MAX);
    seg_predict_destroy(m);
}

/* ---- crossing == brute force ----------------------------------------------------------- */

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;

static uint64_t rnd(void) { return seg_test_rng(&rng_state); }

static double uni(double lo, double hi)
{
    return lo + (hi - lo) * (double)(rnd() >> 11) / 9007199254740992.0;
}

static bool holds(double v, seg_predict_cmp_t cmp, double c)
{
    switch (cmp) {
    case SEG_PCMP_LT: return v < c;
    case SEG_PCMP_LE: return v <= c;
    case SEG_PCMP_GT: return v > c;
    case SEG_PCMP_GE: return v >= c;
    }
    return false;
}

static const char *const fname[] = { "p_alive", "expected_purchases", "expected_spend", "clv" };
static const char *const cname[] = { "<", "<=", ">", ">=" };

/* One case: the answer s of cross is exactly the first second after
 * `after` at which eval's truth differs from its truth at `after`. Every
 * second in (after, s) must keep the truth: checked every `stride` seconds
 * up to s (or up to `end` when s is later or never) and every second in
 * the last stride before s; and s itself must change it. */
static void check_cross(seg_predict_t *m, const seg_predict_hist_t *h, seg_predict_feature_t f,
                        int64_t horizon, seg_predict_cmp_t cmp, double c, int64_t after,
                        int64_t end, int64_t stride, int id)
{
    bool t0 = holds(seg_predict_eval(m, h, f, horizon, after), cmp, c);
    int64_t s = seg_predict_cross(m, h, f, horizon, cmp, c, after);
    bool inside = s != INT64_MAX && s <= end;
    int64_t stop = inside ? s - 1 : end;
    if (inside && s <= after)
        fail_msg("case %d: cross returned %lld, not after %lld", id, (long long)s,
                 (long long)after);
    for (int64_t t = after + stride; t <= stop; t += stride)
        if (holds(seg_predict_eval(m, h, f, horizon, t), cmp, c) != t0)
            fail_msg("case %d: %s %s %.17g changes by %lld, cross said %lld "
                     "(x=%u first=%lld last=%lld after=%lld)", id, fname[f], cname[cmp], c,
                     (long long)t, (long long)s, h->x, (long long)h->first, (long long)h->last,
                     (long long)after);
    if (!inside) return;
    for (int64_t t = stop - stride + 1 > after ? stop - stride + 1 : after + 1; t <= stop; t++)
        if (holds(seg_predict_eval(m, h, f, horizon, t), cmp, c) != t0)
            fail_msg("case %d: %s %s %.17g changes at %lld, before cross's %lld", id, fname[f],
                     cname[cmp], c, (long long)t, (long long)s);
    if (holds(seg_predict_eval(m, h, f, horizon, s), cmp, c) == t0)
        fail_msg("case %d: %s %s %.17g: cross said %lld, but nothing changes there", id,
                 fname[f], cname[cmp], c, (long long)s);
}

static seg_predict_t *random_model(double discount)
{
    static const int64_t units[] = { WEEK, 86400, 3600 };
    int64_t unit = units[rnd() % 3];
    double scale = (double)WEEK / (double)unit;   /* alpha drawn in weeks */
    seg_predict_params_t p = {
        .r = pow(10, uni(-1.3, 0.7)), .alpha = pow(10, uni(-0.5, 1.7)) * scale,
        .a = pow(10, uni(-1.3, 0.7)), .b = pow(10, uni(-0.7, 1.2)),
        .p = uni(0.5, 10), .q = uni(1.2, 8), .gamma = uni(1, 50),
        .unit_seconds = unit, .discount_rate = discount,
    };
    char err[256];
    seg_predict_t *m = seg_predict_new(&p, err, sizeof err);
    if (!m) fail_msg("%s", err);
    return m;
}

static void random_hist(seg_predict_hist_t *h)
{
    h->x = (uint32_t)(rnd() % 4 == 0 ? 0 : rnd() % 25);
    h->first = 852076800 + (int64_t)(rnd() % (365 * 86400));
    h->last = h->x ? h->first + (int64_t)(rnd() % (400 * 86400)) : h->first;
    h->mbar = h->x ? uni(1, 200) : 0;
}

/* P(alive): every second over the span. c is the value at a random second
 * of the span (so < and <= both flip inside it), or a random threshold. */
static void test_cross_p_alive(void **state)
{
    (void)state;
    for (int id = 0; id < 160; id++) {
        seg_predict_t *m = random_model(0);
        seg_predict_hist_t h;
        random_hist(&h);
        if (!h.x) h.x = 1 + (uint32_t)(rnd() % 5);
        int64_t after = h.last + (int64_t)(rnd() % (30 * 86400));
        int64_t span = 86400 + (int64_t)(rnd() % (2 * 86400));
        seg_predict_cmp_t cmp = (seg_predict_cmp_t)(rnd() % 4);
        double c = id % 5 == 4
                       ? uni(0, 1)
                       : seg_predict_eval(m, &h, SEG_PF_P_ALIVE, 0,
                                          after + 1 + (int64_t)(rnd() % (uint64_t)span));
        check_cross(m, &h, SEG_PF_P_ALIVE, 0, cmp, c, after, after + span, 1, id);
        seg_predict_destroy(m);
    }
}

/* expected_purchases and clv: every minute over the span, then every second
 * of the minute before the answer. */
static void cross_feature(seg_predict_feature_t f, double discount, int cases)
{
    static const int64_t horizons[] = { 7 * 86400, 30 * 86400, 90 * 86400, 365 * 86400,
                                        730 * 86400 };
    for (int id = 0; id < cases; id++) {
        seg_predict_t *m = random_model(discount);
        seg_predict_hist_t h;
        random_hist(&h);
        int64_t horizon = horizons[rnd() % 5];
        int64_t after = h.last + (int64_t)(rnd() % (60 * 86400));
        int64_t span = 86400 + (int64_t)(rnd() % (4 * 86400));
        seg_predict_cmp_t cmp = (seg_predict_cmp_t)(rnd() % 4);
        double c = id % 5 == 4
                       ? uni(0, 3)
                       : seg_predict_eval(m, &h, f, horizon,
                                          after + 1 + (int64_t)(rnd() % (uint64_t)span));
        check_cross(m, &h, f, horizon, cmp, c, after, after + span, 60, id);
        seg_predict_destroy(m);
    }
}

static void test_cross_expected(void **state)
{
    (void)state;
    cross_feature(SEG_PF_EXPECTED_PURCHASES, 0, 120);
}

static void test_cross_clv(void **state)
{
    (void)state;
    cross_feature(SEG_PF_CLV, 0, 60);
}

static void test_cross_clv_discounted(void **state)
{
    (void)state;
    cross_feature(SEG_PF_CLV, 0.1, 8);
}

/* Monotone in T, as docs/predict.md proves: each feature at six-hour
 * steps over ten years never rises (for the computed values too). */
static void test_monotone(void **state)
{
    (void)state;
    for (int id = 0; id < 40; id++) {
        seg_predict_t *m = random_model(id % 4 == 0 ? 0.15 : 0);
        seg_predict_hist_t h;
        random_hist(&h);
        static const seg_predict_feature_t fs[] = { SEG_PF_P_ALIVE, SEG_PF_EXPECTED_PURCHASES,
                                                    SEG_PF_CLV };
        for (int k = 0; k < 3; k++) {
            double prev = INFINITY;
            int64_t step = id % 4 == 0 ? 7 * 86400 : 6 * 3600;
            for (int64_t t = h.last; t < h.last + 10LL * 365 * 86400; t += step) {
                double v = seg_predict_eval(m, &h, fs[k], 365 * 86400, t);
                if (!(v <= prev))
                    fail_msg("case %d: %s rises at %lld: %.17g after %.17g", id, fname[fs[k]],
                             (long long)t, v, prev);
                prev = v;
            }
        }
        seg_predict_destroy(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hyp2f1_reference),
        cmocka_unit_test(test_hyp2f1_domain),
        cmocka_unit_test(test_bgnbd_reference),
        cmocka_unit_test(test_gamgam_reference),
        cmocka_unit_test(test_clv_reference),
        cmocka_unit_test(test_paper_example),
        cmocka_unit_test(test_cdnow_summary_and_predictions),
        cmocka_unit_test(test_cdnow_fit),
        cmocka_unit_test(test_mlfit),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_predict_params),
        cmocka_unit_test(test_predict_edges),
        cmocka_unit_test(test_cross_p_alive),
        cmocka_unit_test(test_cross_expected),
        cmocka_unit_test(test_cross_clv),
        cmocka_unit_test(test_cross_clv_discounted),
        cmocka_unit_test(test_monotone),
    };
    return cmocka_run_group_tests(tests, load_fixture, free_fixture);
}
