/*
 * seg_bgnbd: the BG/NBD model of Fader, Hardie & Lee, "Counting your
 * customers the easy way" (Marketing Science, 2005).
 *
 * A customer buys at a Poisson rate lambda ~ Gamma(r, alpha) while alive,
 * and after each purchase drops out for good with probability
 * p ~ Beta(a, b). From a customer's x (repeat purchases), t_x (time of
 * the last purchase since the first) and T (time observed since the
 * first), all times in one unit (docs/predict.md), this gives the
 * likelihood that `segd fit` maximises, P(alive), and the expected number
 * of purchases over a horizon, which segd's rules read. Pure functions of
 * their arguments: no state, no allocation, thread-safe.
 */
#ifndef SEG_BGNBD_H
#define SEG_BGNBD_H

typedef struct seg_bgnbd {
    double r, alpha, a, b;    /* all > 0 */
} seg_bgnbd_t;

/* The parts of the log-likelihood that depend on x only (eq. 6 of the
 * paper, in logs): the fit computes them once per distinct x. */
typedef struct seg_bgnbd_xterms {
    double lg;       /* ln Gamma(r+x) - ln Gamma(r) + r ln alpha */
    double l1;       /* ln B(a, b+x) - ln B(a, b) */
    double l2;       /* ln B(a+1, b+x-1) - ln B(a, b); unused when x = 0 */
} seg_bgnbd_xterms_t;

void seg_bgnbd_xterms(const seg_bgnbd_t *m, double x, seg_bgnbd_xterms_t *out);

/* ln L(r, alpha, a, b | x, t_x, T), eq. 6:
 *   L = B(a,b+x)/B(a,b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x))
 *     + [x > 0] B(a+1,b+x-1)/B(a,b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+t_x)^(r+x))
 * summed as a log-sum-exp, so it neither underflows for large x nor
 * cancels. xt from seg_bgnbd_xterms(m, x). */
double seg_bgnbd_ll_x(const seg_bgnbd_t *m, const seg_bgnbd_xterms_t *xt, double x, double tx,
                      double T);
/* The same, computing the x terms itself. */
double seg_bgnbd_ll(const seg_bgnbd_t *m, double x, double tx, double T);

/* P(alive | x, t_x, T) = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).
 * 1 for x = 0: the model lets a customer drop out only right after a
 * purchase, so one who never bought again is alive for sure
 * (docs/predict.md). T below t_x is taken as t_x. */
double seg_bgnbd_p_alive(const seg_bgnbd_t *m, double x, double tx, double T);

/* E[purchases in (T, T+t] | alive, x, T] =
 *   (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))],
 * the numerator of eq. 10. It does not depend on t_x. Evaluated in the
 * Euler form (docs/predict.md) through seg_hyp2f1; at a = 1 and at
 * a+b+x-1 = 0, where the formula is 0/0 but its limit finite, it is
 * interpolated in a between points 2e-4 away. NaN when 2F1 cannot be
 * evaluated. t <= 0 gives 0. */
double seg_bgnbd_expected_alive(const seg_bgnbd_t *m, double x, double T, double t);

/* E[Y(t) | x, t_x, T], eq. 10: P(alive) times seg_bgnbd_expected_alive.
 * Non-increasing in T for fixed x, t_x, t (docs/predict.md proves it). */
double seg_bgnbd_expected(const seg_bgnbd_t *m, double x, double tx, double T, double t);

#endif
