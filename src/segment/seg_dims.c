/*
 * seg_dims: the segment rules of docs/segments.md, one function each.
 *
 * Each rule is written the way the docs state it, first match wins, so a
 * reader can check the code against the spec line by line. Thresholds come
 * from config; comparisons are exactly those of the spec (>= for "after",
 * < for "while younger than").
 */
#include "segment/seg_dims.h"

#include <stddef.h>

const char *const seg_dim_names_[SEG_DIM__COUNT] = {
    "lifecycle", "value", "rfm", "dissatisfied"
};

/* "R1F0M0".."R4F4M4", indexed by code; built at compile time so names are
 * static strings the transitions can point at. */
#define RFM_M(r, f) "R" #r "F" #f "M0", "R" #r "F" #f "M1", "R" #r "F" #f "M2", \
                    "R" #r "F" #f "M3", "R" #r "F" #f "M4"
#define RFM_F(r) RFM_M(r, 0), RFM_M(r, 1), RFM_M(r, 2), RFM_M(r, 3), RFM_M(r, 4)
/* Value names by dimension and code, NULL past a dimension's codes: one
 * table, so the lookup (inline in seg_dims.h: four calls per transition
 * on replay's fold thread) is one load. */
const char *const seg_dim_value_names_[SEG_DIM__COUNT][SEG_RFM__COUNT] = {
    [SEG_DIM_LIFECYCLE] = {
        NULL, "prospect", "new", "active", "loyal", "at_risk", "silent", "churned"
    },
    [SEG_DIM_VALUE] = { NULL, "A", "B", "C", "D" },
    [SEG_DIM_RFM] = { NULL, RFM_F(1), RFM_F(2), RFM_F(3), RFM_F(4) },
    [SEG_DIM_DISSATISFIED] = { "out", "in" },
};
_Static_assert(SEG_LC__COUNT == 8 && SEG_VAL__COUNT == 5 && SEG_DIS__COUNT == 2,
               "seg_dim_value_names_ lists every value code");


unsigned seg_dim_value_count(seg_dim_t d)
{
    switch (d) {
    case SEG_DIM_LIFECYCLE:    return SEG_LC__COUNT;
    case SEG_DIM_VALUE:        return SEG_VAL__COUNT;
    case SEG_DIM_RFM:          return SEG_RFM__COUNT;
    case SEG_DIM_DISSATISFIED: return SEG_DIS__COUNT;
    default:                   return 0;
    }
}


static uint8_t eval_lifecycle(const seg_segcfg_t *c, const seg_features_t *f)
{
    if (!f->has_purchase) return f->has_contact ? SEG_LC_PROSPECT : SEG_LC_NONE;
    if (f->recency >= c->lifecycle.churned_after) return SEG_LC_CHURNED;
    if (f->recency >= c->lifecycle.silent_after)  return SEG_LC_SILENT;
    if (f->recency >= c->lifecycle.at_risk_after) return SEG_LC_AT_RISK;
    if (f->age < c->lifecycle.new_for)            return SEG_LC_NEW;
    if (f->frequency >= c->lifecycle.loyal_min_purchases) return SEG_LC_LOYAL;
    return SEG_LC_ACTIVE;
}

static uint8_t eval_value(const seg_segcfg_t *c, const seg_features_t *f)
{
    if (!f->has_purchase) return SEG_VAL_NONE;
    if (f->monetary >= c->value.a_min) return SEG_VAL_A;
    if (f->monetary >= c->value.b_min) return SEG_VAL_B;
    if (f->monetary > 0)               return SEG_VAL_C;
    return SEG_VAL_D;
}

/* Tier of x against ascending bounds: 0 below bounds[0], ..., n at or
 * above bounds[n-1]. */
static int tier(int64_t x, const int64_t *bounds, int n)
{
    int t = 0;
    while (t < n && x >= bounds[t]) t++;
    return t;
}

static uint8_t eval_rfm(const seg_segcfg_t *c, const seg_features_t *f)
{
    if (!f->has_purchase) return 0;
    int r = 1 + tier(f->recency, c->rfm.recency, SEG_RFM_TIERS);
    int fr = f->frequency == 0 ? 0 : 1 + tier(f->frequency, c->rfm.frequency, SEG_RFM_TIERS);
    int m = f->monetary <= 0 ? 0 : 1 + tier(f->monetary, c->rfm.monetary, SEG_RFM_TIERS);
    return (uint8_t)(1 + (r - 1) * 25 + fr * 5 + m);
}

void seg_dims_eval(const seg_segcfg_t *cfg, const seg_features_t *f,
                   uint8_t out[SEG_DIM__COUNT])
{
    out[SEG_DIM_LIFECYCLE] = cfg->lifecycle.enabled ? eval_lifecycle(cfg, f) : 0;
    out[SEG_DIM_VALUE] = cfg->value.enabled ? eval_value(cfg, f) : 0;
    out[SEG_DIM_RFM] = cfg->rfm.enabled ? eval_rfm(cfg, f) : 0;
    out[SEG_DIM_DISSATISFIED] = cfg->dissatisfied.enabled &&
        f->complaints >= cfg->dissatisfied.min_complaints ? SEG_DIS_IN : SEG_DIS_OUT;
}
