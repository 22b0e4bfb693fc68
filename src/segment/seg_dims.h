/*
 * seg_dims: the segment dimensions and the pure rules that map a
 * customer's features at an instant to one value per dimension.
 *
 * Kept free of state and time so the rules read like docs/segments.md and
 * can be tested exhaustively at their thresholds. Values are small codes
 * (0 = undefined) so a customer stores its last emitted value per
 * dimension in one byte.
 */
#ifndef SEG_DIMS_H
#define SEG_DIMS_H

#include <stdint.h>
#include "config/seg_cfg.h"

typedef enum {
    SEG_DIM_LIFECYCLE = 0,
    SEG_DIM_VALUE,
    SEG_DIM_RFM,
    SEG_DIM_DISSATISFIED,
    SEG_DIM__COUNT
} seg_dim_t;

enum { /* lifecycle codes */
    SEG_LC_NONE = 0, SEG_LC_PROSPECT, SEG_LC_NEW, SEG_LC_ACTIVE, SEG_LC_LOYAL,
    SEG_LC_AT_RISK, SEG_LC_SILENT, SEG_LC_CHURNED, SEG_LC__COUNT
};
enum { /* value class codes */
    SEG_VAL_NONE = 0, SEG_VAL_A, SEG_VAL_B, SEG_VAL_C, SEG_VAL_D, SEG_VAL__COUNT
};
/* rfm codes: 0 = none, else 1 + (r-1)*25 + f*5 + m with r 1..4, f,m 0..4 */
#define SEG_RFM__COUNT 101
enum { /* dissatisfied membership; 0 is "out", the initial value */
    SEG_DIS_OUT = 0, SEG_DIS_IN = 1, SEG_DIS__COUNT
};

/* A customer's features at instant t. */
typedef struct seg_features {
    int     has_purchase;
    int     has_contact;
    int64_t recency;     /* R = t - last purchase, seconds */
    int64_t age;         /* A = t - first purchase, seconds */
    int64_t frequency;   /* F = purchases in (t - window, t] */
    int64_t monetary;    /* M = purchases - refunds in the window, 1/10000 units */
    int64_t complaints;  /* complaints in (t - complaint window, t] */
} seg_features_t;

/* The tables behind the two lookups below (seg_dims.c). */
extern const char *const seg_dim_names_[SEG_DIM__COUNT];
extern const char *const seg_dim_value_names_[SEG_DIM__COUNT][SEG_RFM__COUNT];

/* Dimension name as published ("lifecycle"); "unknown" past the built-ins. */
static inline const char *seg_dim_name(seg_dim_t d)
{
    return (unsigned)d < SEG_DIM__COUNT ? seg_dim_names_[d] : "unknown";
}

/* Published name of a value code of dimension d ("at_risk", "B",
 * "R1F2M3", "in"): a static string, the same pointer every time. NULL for
 * code 0 of lifecycle/value/rfm (undefined), a code past the dimension's
 * codes, or a dimension that is not built in. */
static inline const char *seg_dim_value_name(seg_dim_t d, uint8_t code)
{
    return (unsigned)d < SEG_DIM__COUNT && code < SEG_RFM__COUNT ? seg_dim_value_names_[d][code]
                                                                 : NULL;
}

/* Number of codes of dimension d, including 0. */
unsigned seg_dim_value_count(seg_dim_t d);

/* Evaluates every dimension; out[d] gets the code (0 = undefined). Disabled
 * dimensions get 0 and must be skipped by the caller. */
void seg_dims_eval(const seg_segcfg_t *cfg, const seg_features_t *f,
                   uint8_t out[SEG_DIM__COUNT]);

#endif
