/*
 * seg_hyp2f1: the Gauss hypergeometric function 2F1(a,b;c;z) for every
 * real z < 1, on top of GSL's gsl_sf_hyperg_2F1_e.
 *
 * BG/NBD's conditional expectation (Fader, Hardie & Lee 2005, eq. 10)
 * needs 2F1 at z = t/(alpha+T+t), which tends to 1 for long horizons and
 * young customers, with parameters that grow with the customer's purchase
 * count. GSL alone covers only |z| < 1, and inside it some of its branches
 * lose digits (its 1-z reflection cancels catastrophically when c-a-b is
 * close to, but not at, an integer; its series overflow or stop at 30,000
 * terms for large a, b near z = 1). The same value has several
 * representations that GSL evaluates on different branches:
 *
 *   direct  F(a, b; c; z)
 *   Euler   (1-z)^(c-a-b)  F(c-a, c-b; c; z)
 *   Pfaff   (1-z)^(-a)     F(a, c-b; c; z/(z-1))       (and with a, b swapped)
 *
 * For z in [0, 1) this uses direct or Euler; for z < 0 the two Pfaff
 * forms (Euler mates of each other), which map z onto [0, 1), so z < -1,
 * outside GSL's domain, works too. Of the two, it first tries the one GSL
 * evaluates on its most reliable branch (seg_hyp2f1.c ranks them from
 * GSL's branch structure), and the other if GSL reports a failure or a
 * non-finite value; near 1, where GSL has no branch for large parameters,
 * it falls back on the 1-z connection formula with two GSL series at 1-z.
 * Two GSL branches that return wrong values with a success status (the
 * integer c-a-b reflection, the "large b" asymptotic) are never reached.
 * docs/predict.md lists the cases and the accuracy measured.
 */
#ifndef SEG_HYP2F1_H
#define SEG_HYP2F1_H

/* 2F1(a,b;c;z) for finite a, b, c and z < 1; c must not be 0 or a negative
 * integer. Returns 0 and sets *out, or -1 (out untouched) when neither
 * representation evaluates to a finite value on a branch of GSL that is
 * trusted. Thread-safe; no allocation. */
int seg_hyp2f1(double a, double b, double c, double z, double *out);

#endif
