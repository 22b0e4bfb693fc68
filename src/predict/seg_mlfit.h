/*
 * seg_mlfit: maximum likelihood for a handful of positive parameters,
 * with GSL's Nelder-Mead simplex (gsl_multimin_fminimizer_nmsimplex2).
 *
 * Both models' parameters are positive and their likelihoods are smooth
 * but have no cheap gradient (BG/NBD's involves digammas of four
 * parameters), so the simplex runs on the logs of the parameters: no
 * constraint to handle, steps proportional to each parameter's scale.
 * Each parameter also has a box [lo, hi]; a simplex that ends within a
 * factor of 10 of an edge means the likelihood keeps improving towards 0
 * or infinity, i.e. the data cannot identify the model, and is reported
 * as an error rather than printed as a fit. A converged simplex
 * is restarted from its best point with a fresh, smaller simplex until a
 * restart no longer improves the optimum, because Nelder-Mead can collapse
 * before the optimum (McKinnon 1998).
 */
#ifndef SEG_MLFIT_H
#define SEG_MLFIT_H

#include <stdbool.h>
#include <stddef.h>

#define SEG_MLFIT_MAXP 4

/* The negative log-likelihood at theta (natural scale, n values). A
 * non-finite return marks an invalid point, which the simplex avoids. */
typedef double (*seg_mlfit_nll_fn)(const double *theta, void *opaque);

typedef struct seg_mlfit_opts {
    int          n;                          /* 1..SEG_MLFIT_MAXP */
    const char  *names[SEG_MLFIT_MAXP];      /* for messages */
    double       start[SEG_MLFIT_MAXP];      /* lo < start < hi */
    double       lo[SEG_MLFIT_MAXP], hi[SEG_MLFIT_MAXP];   /* > 0 */
    int          max_iter;                   /* in all; 0: 20000 */
    double       tol;                        /* simplex size in ln units; 0: 1e-8 */
} seg_mlfit_opts_t;

typedef struct seg_mlfit_result {
    double theta[SEG_MLFIT_MAXP];            /* the best point found */
    double nll;                              /* its negative log-likelihood */
    int    iterations;                       /* simplex steps, restarts included */
    int    restarts;
    bool   converged;
    int    at_bound;                         /* a parameter within 10x of its box edge, or -1 */
} seg_mlfit_result_t;

enum {
    SEG_MLFIT_OK = 0,
    SEG_MLFIT_ENOCONV = 1,     /* max_iter reached, or the simplex stopped progressing */
    SEG_MLFIT_EBOUND = 2,      /* converged with a parameter at an edge of its box */
    SEG_MLFIT_EFAIL = -1,      /* invalid options, non-finite start, out of memory */
};

/* Minimises nll from opts->start. Fills *res in every case but EFAIL, and
 * errstr with a sentence for every case but OK ("the simplex did not
 * converge in 20000 iterations", "parameter 'b' ran to 9.9e+05, near its
 * upper bound 1e+06: ..."). */
int seg_mlfit_run(seg_mlfit_nll_fn nll, void *opaque, const seg_mlfit_opts_t *opts,
                  seg_mlfit_result_t *res, char *errstr, size_t errstr_size);

#endif
