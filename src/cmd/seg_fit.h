/*
 * seg_fit: `segd fit`, which fits BG/NBD and Gamma-Gamma by maximum
 * likelihood on a purchase history and prints the parameters as the
 * `segments.predict` block that segd's prediction features read.
 *
 * Why a command of segd and not a notebook: the customers' x, t_x and T
 * must be counted exactly as the daemon counts them (distinct UTC days,
 * the configured unit, the same decoder and rejections), or the fitted
 * parameters describe different numbers from the ones the rules feed them.
 * docs/predict.md describes the output and every failure.
 */
#ifndef SEG_FIT_H
#define SEG_FIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { SEG_FIT_OUT_YAML = 0, SEG_FIT_OUT_JSON = 1 } seg_fit_output_t;

typedef struct seg_fit_opts {
    const char        *config;     /* NULL: built-in defaults (unit 7d) */
    const char *const *sets;       /* --set key=value, applied as segd replay does */
    int                nsets;
    const char        *input;      /* path or "-" */
    int                format;     /* -1: input.format of the config; else seg_format_t */
    bool               has_until;
    int64_t            until;      /* else the largest ts of the input */
    seg_fit_output_t   output;
    FILE              *out;        /* the fragment */
    FILE              *err;        /* the input summary */
} seg_fit_opts_t;

enum {
    SEG_FIT_OK = 0,
    SEG_FIT_ERUNTIME = 1,   /* unreadable input, no memory */
    SEG_FIT_ECANNOT = 2,    /* the data cannot support a fit; errstr says why */
    SEG_FIT_ECONFIG = 3,    /* the configuration file */
};

/* Runs the fit. Returns SEG_FIT_OK after printing the fragment to
 * opts->out, or one of the codes above with a sentence in errstr. */
int seg_fit_run(const seg_fit_opts_t *opts, char *errstr, size_t errstr_size);

#endif
