/*
 * seg_hyp2f1: see seg_hyp2f1.h for why several representations are tried.
 */
#include "predict/seg_hyp2f1.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_sf_gamma.h>
#include <gsl/gsl_sf_hyperg.h>
#include <math.h>

#include "predict/seg_gsl.h"

#define LOC_EPS (1000 * 2.220446049250313e-16)   /* GSL's integer tolerance */

/* Within this of an integer, c-a-b takes the interpolation of rank 3. */
#define NEAR_INT 1e-3

/* out = exp(logpre) * F(a, b; c; w), for 0 <= w < 1 */
typedef struct form {
    double a, b, c, w, logpre;
    int    rank;    /* lower is tried first */
} form_t;

static int near_int(double v, double tol)
{
    return fabs(v - floor(v + 0.5)) < tol;
}

/* How well GSL 2.7's gsl_sf_hyperg_2F1_e evaluates F(a,b;c;w), 0 <= w < 1,
 * read off its branch structure (specfunc/hyperg_2F1.c) and checked
 * against mpmath on random parameters:
 *   0  a, b, c >= 0 and w < 0.995: a series of positive terms, no
 *      cancellation (GSL reports failure past 30,000 terms);
 *   1  |a|, |b| < 10 and (w < 0.5 or |c| > 10), or a large a or b with
 *      max(|a'|,1) |b'| w < 2|c|: the plain series (worst 7e-11 seen);
 *   2  |a|, |b| < 10, w >= 0.5, |c| <= 10: the 1-w reflection, a sum of
 *      two Gamma-weighted series, when c-a-b is at least NEAR_INT from an
 *      integer (it cancels as c-a-b nears one: 1e-16/|c-a-b-n|);
 *   3  the same with c-a-b within NEAR_INT of an integer. GSL's own branch
 *      for an integer c-a-b returns wrong values, sign included, for most
 *      parameters (of 467 random cases, 395 wrong), so it is never used:
 *      F is interpolated in c through four points where c-a-b is
 *      n +- NEAR_INT and n +- 2 NEAR_INT (interp_c);
 *   4  (not a GSL branch) the connection formula, tried last: connection();
 *   5  anything else: GSL's "large b" asymptotic (0.1% error, returned as
 *      a success) or nothing.
 * Within a rank, the form with c-a-b >= 0 comes first: its F is bounded
 * at w = 1, so its series needs the fewest terms and cannot overflow. */
static int gsl_rank(double a, double b, double c, double w)
{
    if (a >= 0 && b >= 0 && c >= 0 && w < 0.995) return 0;
    if (fabs(a) < 10 && fabs(b) < 10) {
        if (w < 0.5 || fabs(c) > 10) return 1;
        return near_int(c - a - b, NEAR_INT * fmin(1.0, fabs(c))) ? 3 : 2;
    }
    double ap = fabs(a) > fabs(b) ? b : a, bp = fabs(a) > fabs(b) ? a : b;
    if (fmax(fabs(ap), 1.0) * fabs(bp) * w < 2 * fabs(c)) return 1;
    return 5;
}

static void add_form(form_t *f, double a, double b, double c, double w, double logpre)
{
    f->a = a;
    f->b = b;
    f->c = c;
    f->w = w;
    f->logpre = logpre;
    f->rank = 2 * gsl_rank(a, b, c, w) + (c - a - b >= 0 ? 0 : 1);
}

/* GSL's F(a,b;c;w): 0 with the value, -1 on failure or a non-finite one.
 * GSL's error estimate is not used: its series reports the last positive
 * term as the error even when every later term is negative, so it claims
 * 100% error on values correct to the last digit. */
static int gsl_f(double a, double b, double c, double w, double *val)
{
    /* Never the branches that return wrong values with success: the
     * "large b" asymptotic (rank 5) and the integer c-a-b reflection. */
    int rank = gsl_rank(a, b, c, w);
    if (rank == 5 || (rank == 3 && near_int(c - a - b, 10 * LOC_EPS))) return -1;
    gsl_sf_result r;
    int st = gsl_sf_hyperg_2F1_e(a, b, c, w, &r);
    if (st != GSL_SUCCESS || !isfinite(r.val)) return -1;
    *val = r.val;
    return 0;
}

/* Rank 3: with t = c-a-b-n, F as a function of t is analytic through
 * t = 0; the cubic through t = -2h, -h, h, 2h (h = NEAR_INT, where GSL's
 * reflection is accurate to about 1e-13 / h) errs by about h^4 times the
 * fourth derivative. */
static int interp_c(const form_t *f, double *val)
{
    /* F changes on the scale of c itself when c is small (it has a pole at
     * 0), so the nodes come closer there. */
    double h = NEAR_INT * fmin(1.0, fabs(f->c));
    double d = f->c - f->a - f->b, t = d - floor(d + 0.5);
    static const double k[4] = { -2, -1, 1, 2 };
    double sum = 0;
    for (int i = 0; i < 4; i++) {
        double fi;
        if (gsl_f(f->a, f->b, f->c + (k[i] * h - t), f->w, &fi) != 0) return -1;
        double l = 1;
        for (int j = 0; j < 4; j++)
            if (j != i) l *= (t - k[j] * h) / ((k[i] - k[j]) * h);
        sum += l * fi;
    }
    *val = sum;
    return 0;
}

/* Rank 4, the last resort near w = 1: the connection formula (Abramowitz
 * & Stegun 15.3.6) computed here, so that it also serves parameters GSL's
 * own reflection refuses (|a| or |b| >= 10, |c| > 10):
 *   F(a,b;c;w) = G(c)G(d)/(G(c-a)G(c-b)) F(a,b;1-d;1-w)
 *              + (1-w)^d G(c)G(-d)/(G(a)G(b)) F(c-a,c-b;1+d;1-w),  d = c-a-b,
 * both F at 1-w, where GSL's series converge at once. A 1/G at a pole is 0.
 * It is its own error estimate: the sum is accepted only if the two terms
 * cancel by less than 4 digits. omw is 1-w, computed by the caller
 * without cancellation. */
static int connection(double a, double b, double c, double omw, double *val)
{
    double d = c - a - b;
    if (near_int(d, NEAR_INT)) return -1;
    gsl_sf_result lg;
    double sg, t[2] = { 0, 0 };
    const double num[2][2] = { { c, d }, { c, -d } };
    const double den[2][2] = { { c - a, c - b }, { a, b } };
    const double fa[2] = { a, c - a }, fb[2] = { b, c - b }, fc[2] = { 1 - d, 1 + d };
    for (int k = 0; k < 2; k++) {
        double l = 0, s = 1;
        int zero = 0;
        for (int j = 0; j < 2; j++) {
            if (gsl_sf_lngamma_sgn_e(num[k][j], &lg, &sg) != GSL_SUCCESS) return -1;
            l += lg.val;
            s *= sg;
            if (gsl_sf_lngamma_sgn_e(den[k][j], &lg, &sg) != GSL_SUCCESS) zero = 1;
            l -= lg.val;
            s *= sg;
        }
        if (zero) continue;
        if (k == 1) l += d * log(omw);
        double F;
        if (gsl_f(fa[k], fb[k], fc[k], omw, &F) != 0 || l > 700) return -1;
        t[k] = s * exp(l) * F;
    }
    double v = t[0] + t[1];
    if (!isfinite(v) || !(fabs(t[0]) + fabs(t[1]) <= 1e4 * fabs(v))) return -1;
    *val = v;
    return 0;
}

/* Evaluates one form: 0 with the value, -1 if GSL fails or the result is
 * not finite. */
static int eval_form(const form_t *f, double *val)
{
    double F;
    int rc = f->rank / 2 == 3 ? interp_c(f, &F) : gsl_f(f->a, f->b, f->c, f->w, &F);
    if (rc != 0) return -1;
    double v = f->logpre == 0 ? F : F * exp(f->logpre);
    if (!isfinite(v)) return -1;
    *val = v;
    return 0;
}

/* Whether c is 0 or a negative integer, where 2F1 has a pole. */
static int c_pole(double c)
{
    return c < 0.5 && near_int(c, LOC_EPS);
}

int seg_hyp2f1(double a, double b, double c, double z, double *out)
{
    if (!isfinite(a) || !isfinite(b) || !isfinite(c) || !isfinite(z) || !(z < 1) || c_pole(c))
        return -1;
    seg_gsl_init();
    if (z == 0) {
        *out = 1;
        return 0;
    }
    /* Two representations at w in [0, 1), Euler mates of each other. */
    form_t f[2];
    double l1mz = log1p(-z);    /* log(1-z), exact near z = 0 */
    double omw;                 /* 1-w */
    if (z > 0) {
        add_form(&f[0], a, b, c, z, 0);
        add_form(&f[1], c - a, c - b, c, z, (c - a - b) * l1mz);
        omw = 1 - z;
    } else {
        double w = z / (z - 1);   /* Pfaff: (0, 1) for every z < 0 */
        add_form(&f[0], a, c - b, c, w, -a * l1mz);
        add_form(&f[1], c - a, b, c, w, -b * l1mz);
        omw = 1 / (1 - z);
    }
    int first = f[1].rank < f[0].rank ? 1 : 0;
    for (int i = 0; i < 2; i++) {
        const form_t *fi = &f[i == 0 ? first : 1 - first];
        if (fi->rank >= 10) break;    /* rank 5: not trusted */
        if (eval_form(fi, out) == 0) return 0;
    }
    /* Rank 4, near w = 1 only (elsewhere the series have done better). */
    const form_t *fi = &f[first];
    double F;
    if (fi->w >= 0.9 && connection(fi->a, fi->b, fi->c, omw, &F) == 0) {
        double v = fi->logpre == 0 ? F : F * exp(fi->logpre);
        if (isfinite(v)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}
