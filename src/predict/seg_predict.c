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

static bool flipped(const probe_t *p, int64_t s)
{
    return truth(seg_predict_eval(p->m, p->h, p->f, p->horizon, s), p->cmp, p->c) != p->t0;
}

/* The first s in (after, SEG_PREDICT_TMAX] with flipped(s), given that
 * flipped is false up to some second and true from it on (the feature is
 * non-increasing in s): gallop from the estimate est towards the change,
 * doubling the step, then bisect. Every answer is checked by flipped()
 * at s and s-1, so it is exact whatever est is. */
static int64_t search(const probe_t *p, int64_t after, int64_t est)
{
    int64_t lo, hi;
    if (est <= after) est = after + 1;
    if (est > SEG_PREDICT_TMAX) est = SEG_PREDICT_TMAX;
    if (flipped(p, est)) {
        hi = est;
        int64_t step = 1;
        for (;;) {
            if (hi - after <= step) {
                lo = after;     /* not flipped, by definition */
                break;
            }
            int64_t cand = hi - step;
            if (!flipped(p, cand)) {
                lo = cand;
                break;
            }
            hi = cand;
            step *= 2;
        }
    } else {
        lo = est;
        int64_t step = 1;
        for (;;) {
            if (lo >= SEG_PREDICT_TMAX) return INT64_MAX;
            int64_t cand = SEG_PREDICT_TMAX - lo <= step ? SEG_PREDICT_TMAX : lo + step;
            if (flipped(p, cand)) {
                hi = cand;
                break;
            }
            lo = cand;
            step *= 2;
        }
    }
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (flipped(p, mid)) hi = mid;
        else lo = mid;
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
    int64_t est = f == SEG_PF_P_ALIVE ? p_alive_estimate(m, h, c, after) : after + 1;
    return search(&p, after, est);
}
