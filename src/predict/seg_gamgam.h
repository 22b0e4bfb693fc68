/*
 * seg_gamgam: the Gamma-Gamma model of monetary value (Fader, Hardie &
 * Lee, "RFM and CLV: using iso-value curves for customer base analysis",
 * JMR 2005; Hardie's note "The Gamma-Gamma model of monetary value").
 *
 * A customer's spend per repeat purchase day is Gamma(p, nu) around their
 * own mean, and nu ~ Gamma(q, gamma) across customers. From a repeat
 * customer's x and mean spend mbar this gives the likelihood `segd fit`
 * maximises and the conditional expected spend per purchase day, which
 * clv() multiplies with BG/NBD's expected purchases. Pure functions: no
 * state, no allocation, thread-safe.
 */
#ifndef SEG_GAMGAM_H
#define SEG_GAMGAM_H

typedef struct seg_gamgam {
    double p, q, gamma;    /* all > 0; q > 1 for a finite expected spend */
} seg_gamgam_t;

/* The part of the log-likelihood that depends on x only:
 * ln Gamma(px+q) - ln Gamma(px) - ln Gamma(q) + q ln gamma + px ln x. */
double seg_gamgam_xterm(const seg_gamgam_t *m, double x);

/* ln f(mbar | p, q, gamma, x) for x > 0 and mbar > 0:
 *   ln Gamma(px+q) - ln Gamma(px) - ln Gamma(q) + q ln gamma
 *   + (px-1) ln mbar + px ln x - (px+q) ln(gamma + x mbar).
 * xterm from seg_gamgam_xterm(m, x), ln_mbar = ln(mbar). */
double seg_gamgam_ll_x(const seg_gamgam_t *m, double xterm, double x, double mbar,
                       double ln_mbar);
/* The same, computing the x term itself. */
double seg_gamgam_ll(const seg_gamgam_t *m, double x, double mbar);

/* E[M | x, mbar] = p (gamma + x mbar) / (p x + q - 1): a weighted mean of
 * the population mean p gamma/(q-1) and the customer's own mbar, the
 * customer's weight growing with x. For x = 0 it is the population mean.
 * NaN unless q > 1. */
double seg_gamgam_expected(const seg_gamgam_t *m, double x, double mbar);

#endif
