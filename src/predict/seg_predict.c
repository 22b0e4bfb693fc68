/*
 * seg_predict: see seg_predict.h; the formulas and the monotonicity proofs
 * are in docs/predict.md.
 */
#include "predict/seg_predict.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "predict/seg_bgnbd.h"
#include "predict/seg_gamgam.h"

/* clv(H) with a discount: H cut into at most this many equal periods. */
#define MAX_PERIODS 520
#define YEAR_SECONDS (365.0 * 86400.0)

struct seg_predict {
    seg_predict_params_t p;
    seg_bgnbd_t  bg;
    seg_gamgam_t gg;
    bool         has_gg;
    /* Discount scratch for horizon w_h: E is summed as
     * sum_k coef[k] * E_alive(tk[k]) (docs/predict.md). */
    int64_t      w_h;
    int          w_n;
    double       tk[MAX_PERIODS];     /* period ends, in units */
    double       coef[MAX_PERIODS];   /* w_k - w_(k+1) >= 0 */
};

static int positive(const char *model, const char *name, double v, char *errstr, size_t errsz)
{
    if (isfinite(v) && v > 0) return 0;
    snprintf(errstr, errsz, "%s parameter '%s' must be a finite number > 0, got %g", model, name,
             v);
    return -1;
}

seg_predict_t *seg_predict_new(const seg_predict_params_t *p, char *errstr, size_t errstr_size)
{
    if (positive("bgnbd", "r", p->r, errstr, errstr_size) ||
        positive("bgnbd", "alpha", p->alpha, errstr, errstr_size) ||
        positive("bgnbd", "a", p->a, errstr, errstr_size) ||
        positive("bgnbd", "b", p->b, errstr, errstr_size))
        return NULL;
    bool has_gg = !(p->p == 0 && p->q == 0 && p->gamma == 0);
    if (has_gg) {
        if (positive("gamma_gamma", "p", p->p, errstr, errstr_size) ||
            positive("gamma_gamma", "q", p->q, errstr, errstr_size) ||
            positive("gamma_gamma", "gamma", p->gamma, errstr, errstr_size))
            return NULL;
        if (!(p->q > 1)) {
            snprintf(errstr, errstr_size, "gamma_gamma parameter 'q' must be greater than 1 "
                     "(the expected spend is finite only then), got %g", p->q);
            return NULL;
        }
    }
    if (p->unit_seconds <= 0) {
        snprintf(errstr, errstr_size, "the time unit must be at least 1 second, got %lld",
                 (long long)p->unit_seconds);
        return NULL;
    }
    if (!(isfinite(p->discount_rate) && p->discount_rate >= 0)) {
        snprintf(errstr, errstr_size, "discount_rate must be a finite number >= 0, got %g",
                 p->discount_rate);
        return NULL;
    }
    seg_predict_t *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    m->p = *p;
    m->bg = (seg_bgnbd_t){ p->r, p->alpha, p->a, p->b };
    m->gg = (seg_gamgam_t){ p->p, p->q, p->gamma };
    m->has_gg = has_gg;
    return m;
}

void seg_predict_destroy(seg_predict_t *m)
{
    free(m);
}

/* Period ends and coefficients for horizon h (> 0): n = min(ceil(h/unit),
 * MAX_PERIODS) equal periods ending at t_k = k h/n; w_k = (1+d)^(-t_k/year)
 * discounts what period k brings; by summation by parts
 *   sum_k w_k (E(t_k) - E(t_(k-1))) = sum_k (w_k - w_(k+1)) E(t_k), w_(n+1) = 0,
 * a sum of non-negative multiples of functions non-increasing in T. */
static void weights(seg_predict_t *m, int64_t h)
{
    if (m->w_h == h) return;
    int64_t u = m->p.unit_seconds;
    int64_t n = h / u + (h % u != 0);
    if (n > MAX_PERIODS) n = MAX_PERIODS;
    if (n < 1) n = 1;
    double ld = log1p(m->p.discount_rate);
    double w[MAX_PERIODS + 1];
    for (int64_t k = 1; k <= n; k++) {
        double tsec = (double)h * (double)k / (double)n;
        m->tk[k - 1] = tsec / (double)u;
        w[k - 1] = exp(-ld * tsec / YEAR_SECONDS);
    }
    w[n] = 0;
    for (int64_t k = 0; k < n; k++) m->coef[k] = w[k] - w[k + 1];
    m->w_n = (int)n;
    m->w_h = h;
}

double seg_predict_eval(seg_predict_t *m, const seg_predict_hist_t *h, seg_predict_feature_t f,
                        int64_t horizon_s, int64_t at)
{
    double u = (double)m->p.unit_seconds;
    double x = (double)h->x;
    double tx = (double)(h->last - h->first) / u;
    double T = (double)((at > h->last ? at : h->last) - h->first) / u;
    switch (f) {
    case SEG_PF_P_ALIVE:
        return seg_bgnbd_p_alive(&m->bg, x, tx, T);
    case SEG_PF_EXPECTED_PURCHASES:
        if (horizon_s <= 0) return 0;
        return seg_bgnbd_expected(&m->bg, x, tx, T, (double)horizon_s / u);
    case SEG_PF_EXPECTED_SPEND:
        if (!m->has_gg) return NAN;
        return seg_gamgam_expected(&m->gg, x, h->mbar);
    case SEG_PF_CLV: {
        if (!m->has_gg) return NAN;
        if (horizon_s <= 0) return 0;
        double spend = seg_gamgam_expected(&m->gg, x, h->mbar);
        if (m->p.discount_rate == 0)
            return spend * seg_bgnbd_expected(&m->bg, x, tx, T, (double)horizon_s / u);
        weights(m, horizon_s);
        double sum = 0;
        for (int k = 0; k < m->w_n; k++)
            sum += m->coef[k] * seg_bgnbd_expected_alive(&m->bg, x, T, m->tk[k]);
        return spend * (seg_bgnbd_p_alive(&m->bg, x, tx, T) * sum);
    }
    }
    return NAN;
}

static bool truth(double v, seg_predict_cmp_t cmp, double c)
{
    switch (cmp) {
    case SEG_PCMP_LT: return v < c;
    case SEG_PCMP_LE: return v <= c;
    case SEG_PCMP_GT: return v > c;
    case SEG_PCMP_GE: return v >= c;
    }
    return false;
}

typedef struct probe {
    seg_predict_t            *m;
    const seg_predict_hist_t *h;
    seg_predict_feature_t     f;
    int64_t                   horizon;
    seg_predict_cmp_t         cmp;
    double                    c;
    bool                      t0;
} probe_t;

/* Evaluates the feature at s: whether its comparison differs from the
 * truth at `after`, and the value minus c for the interpolation. */
static bool probe(const probe_t *p, int64_t s, double *g)
{
    double v = seg_predict_eval(p->m, p->h, p->f, p->horizon, s);
    *g = v - p->c;
    return truth(v, p->cmp, p->c) != p->t0;
}

/* The first s in (after, SEG_PREDICT_TMAX] at which probe() reports a
 * change, given that it reports none up to some second and a change from
 * it on (the feature is non-increasing in s):
 *   1. gallop from est with steps step0, 2 step0, 4 step0, ... towards
 *      the change until a second on each side of it is known;
 *   2. narrow that bracket [lo, hi] (no change at lo, a change at hi)
 *      to hi - lo = 1, probing where the straight line through the two
 *      ends' values meets c (false position with the Illinois
 *      modification), or at the middle when three probes in a row have
 *      not halved the bracket.
 * Every probe is seg_predict_eval itself and the bracket's invariant holds
 * at whole seconds, so the answer is exact whatever est, step0 and the
 * interpolation guess: they only decide how many probes it takes. */
static int64_t search(const probe_t *p, int64_t after, int64_t est, int64_t step0)
{
    int64_t lo, hi;
    double glo = NAN, ghi = NAN, g;
    if (est <= after) est = after + 1;
    if (est > SEG_PREDICT_TMAX) est = SEG_PREDICT_TMAX;
    if (probe(p, est, &g)) {
        hi = est;
        ghi = g;
        for (int64_t step = step0;; step *= 2) {
            if (hi - after <= step) {
                lo = after;     /* no change there, by definition */
                probe(p, lo, &glo);
                break;
            }
            int64_t cand = hi - step;
            if (!probe(p, cand, &g)) {
                lo = cand;
                glo = g;
                break;
            }
            hi = cand;
            ghi = g;
        }
    } else {
        lo = est;
        glo = g;
        for (int64_t step = step0;; step *= 2) {
            if (lo >= SEG_PREDICT_TMAX) return INT64_MAX;
            int64_t cand = SEG_PREDICT_TMAX - lo <= step ? SEG_PREDICT_TMAX : lo + step;
            if (probe(p, cand, &g)) {
                hi = cand;
                ghi = g;
                break;
            }
            lo = cand;
            glo = g;
        }
    }
    int side = 0;           /* which end moved last: -1 lo, +1 hi */
    int64_t w3[3] = { INT64_MAX, INT64_MAX, INT64_MAX };  /* widths 1..3 probes ago */
    while (hi - lo > 1) {
        int64_t width = hi - lo, mid = lo + width / 2;
        /* Bisect when three probes did not halve the bracket (false
         * position can creep at whole seconds); else interpolate. */
        bool bisect = width > w3[2] / 2;
        if (!bisect && isfinite(glo) && isfinite(ghi) && glo != ghi) {
            double x = (double)lo + (double)width * (glo / (glo - ghi));
            if (x > (double)lo && x < (double)hi) {
                mid = (int64_t)llround(x);
                if (mid <= lo) mid = lo + 1;
                if (mid >= hi) mid = hi - 1;
            }
        }
        if (bisect) w3[0] = w3[1] = w3[2] = INT64_MAX;
        else {
            w3[2] = w3[1];
            w3[1] = w3[0];
            w3[0] = width;
        }
        if (probe(p, mid, &g)) {
            hi = mid;
            ghi = g;
            if (side == 1) glo /= 2;     /* Illinois: the stale end counts half */
            side = 1;
        } else {
            lo = mid;
            glo = g;
            if (side == -1) ghi /= 2;
            side = -1;
        }
    }
    return hi;
}

/* Where P(alive) reaches c, in closed form: with K = a/(b+x-1),
 * P < c  <=>  K ((alpha+T)/(alpha+t_x))^(r+x) > 1/c - 1
 *        <=>  T > (alpha+t_x) ((1/c - 1)/K)^(1/(r+x)) - alpha.
 * Only an estimate for search(), which settles the last second with the
 * evaluation itself. */
static int64_t p_alive_estimate(const seg_predict_t *m, const seg_predict_hist_t *h, double c,
                                int64_t after)
{
    if (!(c > 0 && c < 1)) return after + 1;
    double x = (double)h->x, u = (double)m->p.unit_seconds;
    double tx = (double)(h->last - h->first) / u;
    double K = m->p.a / (m->p.b + x - 1);
    double Tstar = (m->p.alpha + tx) * exp((log(1 / c - 1) - log(K)) / (m->p.r + x)) - m->p.alpha;
    double s = (double)h->first + Tstar * u;
    if (!(s < (double)SEG_PREDICT_TMAX)) return SEG_PREDICT_TMAX;
    if (!(s > (double)after)) return after + 1;
    return (int64_t)ceil(s);
}

int64_t seg_predict_cross(seg_predict_t *m, const seg_predict_hist_t *h, seg_predict_feature_t f,
                          int64_t horizon_s, seg_predict_cmp_t cmp, double c, int64_t after)
{
    if (f == SEG_PF_EXPECTED_SPEND || isnan(c) || after >= SEG_PREDICT_TMAX) return INT64_MAX;
    if (f == SEG_PF_P_ALIVE && h->x == 0) return INT64_MAX;     /* 1 for ever */
    if (f == SEG_PF_CLV && !m->has_gg) return INT64_MAX;        /* NaN for ever */
    if (horizon_s <= 0 && f != SEG_PF_P_ALIVE) return INT64_MAX; /* 0 for ever */
    probe_t p = { .m = m, .h = h, .f = f, .horizon = horizon_s, .cmp = cmp, .c = c };
    p.t0 = truth(seg_predict_eval(m, h, f, horizon_s, after), cmp, c);
    /* The feature only falls: v < c and v <= c, once true, stay true;
     * v > c and v >= c, once false, stay false. */
    bool falls_into = cmp == SEG_PCMP_LT || cmp == SEG_PCMP_LE;
    if (falls_into ? p.t0 : !p.t0) return INT64_MAX;
    /* P(alive): from its closed form, settled second by second. The
     * others: galloping out from `after` in steps of one unit. */
    if (f == SEG_PF_P_ALIVE) return search(&p, after, p_alive_estimate(m, h, c, after), 1);
    return search(&p, after, after + 1, m->p.unit_seconds);
}
