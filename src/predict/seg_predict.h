/*
 * seg_predict: the predictions rules read (p_alive, expected_purchases(H),
 * expected_spend, clv(H)), evaluated for one customer at one instant, and
 * the next instant at which a comparison of one with a constant changes
 * truth.
 *
 * Why the second: segd fires time-driven transitions at their exact second
 * without polling. Between two purchases a customer's x, first and last
 * purchase are fixed and only T (the time since the first purchase) grows;
 * every prediction but expected_spend is then non-increasing in T
 * (docs/predict.md proves it), so a comparison with a constant changes
 * truth at most once, and seg_predict_cross finds that second by a search
 * over the same floating-point evaluation seg_predict_eval performs:
 * eval and cross can never disagree about which side of the constant a
 * second is on.
 *
 * Threading: a seg_predict_t holds scratch (the discount weights of the
 * last horizon), so each thread uses its own. The parameters are copied.
 */
#ifndef SEG_PREDICT_H
#define SEG_PREDICT_H

#include <stddef.h>
#include <stdint.h>

/* The model: BG/NBD (r, alpha, a, b > 0) and Gamma-Gamma (p, q, gamma;
 * all 0 when absent, else > 0 with q > 1). unit_seconds is the fit's time
 * unit (alpha is in it); discount_rate is per 365-day year, 0 for none. */
typedef struct { double r, alpha, a, b; double p, q, gamma; int64_t unit_seconds; double discount_rate; /* per year, 0 = none */ } seg_predict_params_t;
typedef struct seg_predict seg_predict_t;   /* opaque; one per thread (scratch) */

/* Validates and copies p. NULL with errstr ("bgnbd parameter 'a' must be
 * a finite number > 0, got -1") on invalid parameters or no memory. */
seg_predict_t *seg_predict_new(const seg_predict_params_t *p, char *errstr, size_t errstr_size);
/* NULL is a no-op. */
void seg_predict_destroy(seg_predict_t *m);

/* A customer's purchase history as the models see it. x counts the
 * distinct UTC days with a purchase after the first purchase's day; mbar
 * is the mean spend of those days (a day's purchases summed, refunds
 * left out). */
typedef struct { uint32_t x; int64_t first, last; /* unix seconds of first/last purchase */ double mbar; /* mean repeat-day spend, 0 if x==0 */ } seg_predict_hist_t;

typedef enum { SEG_PF_P_ALIVE, SEG_PF_EXPECTED_PURCHASES, SEG_PF_EXPECTED_SPEND, SEG_PF_CLV } seg_predict_feature_t;

/* value of a feature at instant `at` (T = at - first in units), horizon in seconds for EXPECTED_PURCHASES/CLV */
/* With t_x = (last - first) / unit and T = (max(at, last) - first) / unit:
 *   P_ALIVE             BG/NBD P(alive | x, t_x, T); 1 when x = 0
 *   EXPECTED_PURCHASES  E[purchases in the next horizon_s | x, t_x, T] (eq. 10)
 *   EXPECTED_SPEND      Gamma-Gamma E[spend per purchase day | x, mbar]
 *   CLV                 EXPECTED_SPEND times EXPECTED_PURCHASES, discounted
 *                       per period when discount_rate > 0 (docs/predict.md)
 * NaN when the value cannot be computed (Gamma-Gamma absent; a 2F1 that
 * GSL cannot evaluate); a horizon <= 0 gives 0. */
double seg_predict_eval(seg_predict_t *m, const seg_predict_hist_t *h, seg_predict_feature_t f, int64_t horizon_s, int64_t at);

typedef enum { SEG_PCMP_LT, SEG_PCMP_LE, SEG_PCMP_GT, SEG_PCMP_GE } seg_predict_cmp_t;

/* The last instant searched: 9999-12-31T23:59:59Z, the last one segd can
 * print. A change later than this is reported as never. */
#define SEG_PREDICT_TMAX INT64_C(253402300799)

/* first whole second s > after at which the truth of (feature(s) CMP c) differs from its truth at `after`, assuming no new event; INT64_MAX if never */
/* "feature(s)" is seg_predict_eval(m, h, f, horizon_s, s), and a NaN value
 * compares false. Never for EXPECTED_SPEND (it does not depend on time),
 * for P_ALIVE with x = 0, for a comparison already on the side the
 * non-increasing feature moves to, and past SEG_PREDICT_TMAX. Cost: a few
 * evaluations for P_ALIVE (closed form, then checked); about 2 log2(s -
 * after) for the others (galloping, then bisection). */
int64_t seg_predict_cross(seg_predict_t *m, const seg_predict_hist_t *h, seg_predict_feature_t f, int64_t horizon_s, seg_predict_cmp_t cmp, double c, int64_t after);

#endif
