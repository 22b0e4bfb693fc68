/*
 * seg_mlfit: see seg_mlfit.h.
 */
#include "predict/seg_mlfit.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_multimin.h>
#include <math.h>
#include <stdio.h>

#include "predict/seg_gsl.h"

/* Where the simplex must not go: outside the box, or where the
 * likelihood is not finite. Large but finite, because GSL refuses a
 * non-finite value at the start and compares values only. */
#define PENALTY 1e300
/* A parameter within a factor of 10 of a box edge is at the bound. The
 * boxes span 12 decades around any plausible value, so nothing real ends
 * there; but where the likelihood only flattens towards the edge (a and b
 * of BG/NBD both growing when dropout does not vary across customers) the
 * simplex stops short of it, anywhere on the flat ridge. */
#define AT_BOUND 2.302585092994046   /* ln 10 */
#define MAX_RESTARTS 20
#define STALL_ITERS 200
#define STALL_SIZE 1e-6

typedef struct ctx {
    seg_mlfit_nll_fn fn;
    void            *opaque;
    const seg_mlfit_opts_t *o;
} ctx_t;

static double objective(const gsl_vector *v, void *params)
{
    const ctx_t *c = params;
    double theta[SEG_MLFIT_MAXP];
    for (int i = 0; i < c->o->n; i++) {
        double l = gsl_vector_get(v, (size_t)i);
        if (!(l >= log(c->o->lo[i]) && l <= log(c->o->hi[i]))) return PENALTY;
        theta[i] = exp(l);
    }
    double f = c->fn(theta, c->opaque);
    return isfinite(f) && f < PENALTY ? f : PENALTY;
}

/* One simplex run from x with initial steps `step`. Returns 1 converged,
 * 0 out of iterations or stuck, -1 on GSL failure (no memory). */
static int run_simplex(ctx_t *c, gsl_vector *x, double step, int max_iter, double tol,
                       int *iters, double *fmin)
{
    const int n = c->o->n;
    gsl_multimin_function f = { .f = objective, .n = (size_t)n, .params = c };
    gsl_vector *ss = gsl_vector_alloc((size_t)n);
    gsl_multimin_fminimizer *s =
        gsl_multimin_fminimizer_alloc(gsl_multimin_fminimizer_nmsimplex2, (size_t)n);
    int rc = -1;
    if (!ss || !s) goto out;
    gsl_vector_set_all(ss, step);
    if (gsl_multimin_fminimizer_set(s, &f, x, ss) != GSL_SUCCESS) goto out;
    rc = 0;
    /* Converged when the simplex is smaller than tol, or when it has
     * stalled below STALL_SIZE: no improvement of the minimum by a
     * relative 1e-13 in STALL_ITERS steps. Near the optimum the
     * likelihood is flat to double precision over about 1e-7 in ln units
     * (its curvature times the step squared is below its rounding), and
     * there Nelder-Mead can shuffle for ever without shrinking. */
    double best = gsl_multimin_fminimizer_minimum(s);
    int since_best = 0;
    while (*iters < max_iter) {
        (*iters)++;
        if (gsl_multimin_fminimizer_iterate(s) != GSL_SUCCESS) break;   /* cannot improve */
        double size = gsl_multimin_fminimizer_size(s);
        if (gsl_multimin_test_size(size, tol) == GSL_SUCCESS) {
            rc = 1;
            break;
        }
        double now = gsl_multimin_fminimizer_minimum(s);
        if (now < best - 1e-13 * fabs(best)) {
            best = now;
            since_best = 0;
        } else if (++since_best >= STALL_ITERS && size < STALL_SIZE) {
            rc = 1;
            break;
        }
    }
    gsl_vector_memcpy(x, gsl_multimin_fminimizer_x(s));
    *fmin = gsl_multimin_fminimizer_minimum(s);
out:
    gsl_multimin_fminimizer_free(s);
    gsl_vector_free(ss);
    return rc;
}

int seg_mlfit_run(seg_mlfit_nll_fn nll, void *opaque, const seg_mlfit_opts_t *o,
                  seg_mlfit_result_t *res, char *errstr, size_t errstr_size)
{
    seg_gsl_init();
    if (o->n < 1 || o->n > SEG_MLFIT_MAXP) {
        snprintf(errstr, errstr_size, "%d parameters; the fit takes 1 to %d", o->n,
                 SEG_MLFIT_MAXP);
        return SEG_MLFIT_EFAIL;
    }
    for (int i = 0; i < o->n; i++)
        if (!(o->lo[i] > 0 && o->lo[i] < o->start[i] && o->start[i] < o->hi[i] &&
              isfinite(o->hi[i]))) {
            snprintf(errstr, errstr_size, "parameter '%s' starts at %g, outside (%g, %g)",
                     o->names[i], o->start[i], o->lo[i], o->hi[i]);
            return SEG_MLFIT_EFAIL;
        }
    ctx_t c = { .fn = nll, .opaque = opaque, .o = o };
    int max_iter = o->max_iter > 0 ? o->max_iter : 20000;
    double tol = o->tol > 0 ? o->tol : 1e-8;
    gsl_vector *x = gsl_vector_alloc((size_t)o->n);
    if (!x) {
        snprintf(errstr, errstr_size, "out of memory");
        return SEG_MLFIT_EFAIL;
    }
    for (int i = 0; i < o->n; i++) gsl_vector_set(x, (size_t)i, log(o->start[i]));
    if (!(objective(x, &c) < PENALTY)) {
        snprintf(errstr, errstr_size, "the likelihood is not finite at the starting point");
        gsl_vector_free(x);
        return SEG_MLFIT_EFAIL;
    }
    int iters = 0, restarts = 0;
    double fmin = 0;
    int conv = run_simplex(&c, x, 0.5, max_iter, tol, &iters, &fmin);
    /* Restart from the optimum with a small simplex until a restart finds
     * nothing better (to a relative 1e-12 of the log-likelihood). */
    while (conv == 1 && restarts < MAX_RESTARTS) {
        double prev = fmin;
        restarts++;
        conv = run_simplex(&c, x, 0.05, max_iter, tol, &iters, &fmin);
        if (conv == 1 && prev - fmin <= 1e-12 * (1 + fabs(prev))) break;
    }
    if (conv < 0) {
        snprintf(errstr, errstr_size, "out of memory");
        gsl_vector_free(x);
        return SEG_MLFIT_EFAIL;
    }
    res->nll = fmin;
    res->iterations = iters;
    res->restarts = restarts;
    res->converged = conv == 1 && restarts < MAX_RESTARTS && fmin < PENALTY;
    res->at_bound = -1;
    for (int i = 0; i < o->n; i++) {
        double l = gsl_vector_get(x, (size_t)i);
        res->theta[i] = exp(l);
        if (res->at_bound < 0 && (l - log(o->lo[i]) < AT_BOUND || log(o->hi[i]) - l < AT_BOUND))
            res->at_bound = i;
    }
    gsl_vector_free(x);
    if (res->at_bound >= 0) {
        int i = res->at_bound;
        bool up = log(o->hi[i]) - log(res->theta[i]) < AT_BOUND;
        snprintf(errstr, errstr_size,
                 "parameter '%s' ran to %.3g, near its %s bound %g: the likelihood keeps rising "
                 "towards %s, so the data cannot identify the model",
                 o->names[i], res->theta[i], up ? "upper" : "lower", up ? o->hi[i] : o->lo[i],
                 up ? "infinity" : "0");
        return SEG_MLFIT_EBOUND;
    }
    if (!res->converged) {
        snprintf(errstr, errstr_size, "the simplex did not converge in %d iterations", iters);
        return SEG_MLFIT_ENOCONV;
    }
    return SEG_MLFIT_OK;
}
