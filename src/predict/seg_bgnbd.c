/*
 * seg_bgnbd: see seg_bgnbd.h. The formulas are docs/predict.md's; this
 * file is about evaluating them without losing digits.
 */
#include "predict/seg_bgnbd.h"

#include <gsl/gsl_sf_gamma.h>
#include <math.h>

#include "predict/seg_gsl.h"
#include "predict/seg_hyp2f1.h"

/* Half-width of the interpolation around the removable singularities of
 * eq. 10 (a = 1, a+b+x-1 = 0). Within SING of one the formula cancels
 * (relative error about 1e-16/|a-1|); the two points used are at least
 * SING away, so they lose at most 4 digits of 16, and the linear
 * interpolation between them errs by about h^2 |E''|/2, 2e-8 relative
 * for E'' of the order of E. */
#define SING 1e-4
#define H_INTERP 2e-4

static double lnbeta(double a, double b)
{
    return gsl_sf_lngamma(a) + gsl_sf_lngamma(b) - gsl_sf_lngamma(a + b);
}

void seg_bgnbd_xterms(const seg_bgnbd_t *m, double x, seg_bgnbd_xterms_t *out)
{
    seg_gsl_init();
    double lb = lnbeta(m->a, m->b);
    out->lg = gsl_sf_lngamma(m->r + x) - gsl_sf_lngamma(m->r) + m->r * log(m->alpha);
    out->l1 = lnbeta(m->a, m->b + x) - lb;
    out->l2 = x > 0 ? lnbeta(m->a + 1, m->b + x - 1) - lb : 0;
}

double seg_bgnbd_ll_x(const seg_bgnbd_t *m, const seg_bgnbd_xterms_t *xt, double x, double tx,
                      double T)
{
    double e = m->r + x;
    double t1 = xt->l1 - e * log(m->alpha + T);
    if (x <= 0) return xt->lg + t1;
    double t2 = xt->l2 - e * log(m->alpha + tx);
    /* log(e^t1 + e^t2) around the larger one */
    double hi = t1 > t2 ? t1 : t2, lo = t1 > t2 ? t2 : t1;
    return xt->lg + hi + log1p(exp(lo - hi));
}

double seg_bgnbd_ll(const seg_bgnbd_t *m, double x, double tx, double T)
{
    seg_bgnbd_xterms_t xt;
    seg_bgnbd_xterms(m, x, &xt);
    return seg_bgnbd_ll_x(m, &xt, x, tx, T);
}

double seg_bgnbd_p_alive(const seg_bgnbd_t *m, double x, double tx, double T)
{
    if (x <= 0) return 1;
    if (T < tx) T = tx;
    /* ln(a/(b+x-1)) + (r+x) ln((alpha+T)/(alpha+t_x)): each step is
     * monotone in T, so the computed P(alive) never rises as T grows
     * (seg_predict's crossing search relies on it). */
    double lk = log(m->a / (m->b + x - 1)) + (m->r + x) * log((m->alpha + T) / (m->alpha + tx));
    return 1 / (1 + exp(lk));
}

/* The Euler form of eq. 10's numerator. With z = t/(alpha+T+t),
 *   (1-z)^(r+x) 2F1(r+x, b+x; C; z) = (1-z)^(a-1) 2F1(C-r-x, a-1; C; z),
 * C = a+b+x-1 (Euler's transformation), so
 *   E = C/(a-1) [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; C; z)].
 * The 2F1 on the right has parameters that do not grow with x, and its
 * value stays near 1, where the left one grows like (1-z)^-(x+...) and
 * overflows for frequent buyers; seg_hyp2f1 still switches back to the
 * left form where GSL evaluates that one better. */
static double alive_raw(double r, double alpha, double a, double b, double x, double T, double t)
{
    double C = a + b + x - 1, eps = a - 1;
    double z = t / (alpha + T + t);
    double F;
    if (seg_hyp2f1(a + b - 1 - r, eps, C, z, &F) != 0) return NAN;
    /* (1-z) = (alpha+T)/(alpha+T+t), computed without forming 1 - z */
    double l1mz = -log1p(t / (alpha + T));
    double G = exp(eps * l1mz) * F;
    return C / eps * (1 - G);
}

double seg_bgnbd_expected_alive(const seg_bgnbd_t *m, double x, double T, double t)
{
    if (!(t > 0)) return 0;
    double C = m->a + m->b + x - 1, eps = m->a - 1;
    if (fabs(eps) < SING || fabs(C) < SING) {
        /* A removable singularity: the average of the two neighbours is
         * the linear interpolation at a. Both are monotone in T, so the
         * average is too. */
        double lo = alive_raw(m->r, m->alpha, m->a - H_INTERP, m->b, x, T, t);
        double hi = alive_raw(m->r, m->alpha, m->a + H_INTERP, m->b, x, T, t);
        return 0.5 * lo + 0.5 * hi;
    }
    return alive_raw(m->r, m->alpha, m->a, m->b, x, T, t);
}

double seg_bgnbd_expected(const seg_bgnbd_t *m, double x, double tx, double T, double t)
{
    if (T < tx) T = tx;
    return seg_bgnbd_p_alive(m, x, tx, T) * seg_bgnbd_expected_alive(m, x, T, t);
}
