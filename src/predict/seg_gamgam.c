/*
 * seg_gamgam: see seg_gamgam.h.
 */
#include "predict/seg_gamgam.h"

#include <gsl/gsl_sf_gamma.h>
#include <math.h>

#include "predict/seg_gsl.h"

double seg_gamgam_xterm(const seg_gamgam_t *m, double x)
{
    seg_gsl_init();
    double px = m->p * x;
    return gsl_sf_lngamma(px + m->q) - gsl_sf_lngamma(px) - gsl_sf_lngamma(m->q) +
           m->q * log(m->gamma) + px * log(x);
}

double seg_gamgam_ll_x(const seg_gamgam_t *m, double xterm, double x, double mbar,
                       double ln_mbar)
{
    double px = m->p * x;
    return xterm + (px - 1) * ln_mbar - (px + m->q) * log(m->gamma + x * mbar);
}

double seg_gamgam_ll(const seg_gamgam_t *m, double x, double mbar)
{
    return seg_gamgam_ll_x(m, seg_gamgam_xterm(m, x), x, mbar, log(mbar));
}

double seg_gamgam_expected(const seg_gamgam_t *m, double x, double mbar)
{
    if (!(m->q > 1)) return NAN;
    if (x <= 0) return m->p * m->gamma / (m->q - 1);
    return m->p * (m->gamma + x * mbar) / (m->p * x + m->q - 1);
}
