/*
 * seg_predict: one customer's predictions from the command line, through
 * the same seg_predict_eval/seg_predict_cross segd's rules call.
 *
 * Why: the integration test checks the paper's worked example (the
 * customer with x = 2, t_x = 30.43, T = 38.86 weeks expects 1.226
 * purchases in the next 39 weeks) with the parameters `segd fit` printed,
 * and people checking a fit want the same numbers for a customer they
 * know. --bench times the evaluations (docs/predict.md lists the costs).
 *
 * Usage:
 *   seg_predict --bgnbd R,ALPHA,A,B [--gg P,Q,GAMMA] [--unit 7d] [--discount D]
 *               --x N --first TIME [--last TIME] [--mbar M] --at TIME
 *               FEATURE [HORIZON] [--cross lt|le|gt|ge C] [--bench N]
 * FEATURE: p_alive, expected_purchases, expected_spend, clv; HORIZON and
 * --unit as durations (39w, 273d, 3600s); TIME as RFC 3339 or epoch
 * seconds. Prints the value (%.17g), or with --cross the first second
 * after --at at which the comparison changes truth (RFC 3339, or "never").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "predict/seg_predict.h"
#include "util/seg_ts.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: seg_predict --bgnbd R,ALPHA,A,B [--gg P,Q,GAMMA] [--unit 7d] [--discount D]\n"
            "                   --x N --first TIME [--last TIME] [--mbar M] --at TIME\n"
            "                   FEATURE [HORIZON] [--cross lt|le|gt|ge C] [--bench N]\n");
    return 2;
}

static int duration(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0) return -1;
    int64_t mul = 1;
    if (*end == 's') mul = 1;
    else if (*end == 'm') mul = 60;
    else if (*end == 'h') mul = 3600;
    else if (*end == 'd') mul = 86400;
    else if (*end == 'w') mul = 604800;
    else if (*end) return -1;
    if (*end && end[1]) return -1;
    *out = v * mul;
    return 0;
}

static int instant(const char *s, int64_t *out)
{
    if (seg_ts_parse_rfc3339(s, strlen(s), out) == 0) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *out = v;
    return 0;
}

static int doubles(const char *s, double *out, int n)
{
    char *end;
    for (int i = 0; i < n; i++) {
        errno = 0;
        out[i] = strtod(s, &end);
        if (errno || end == s) return -1;
        if (i + 1 < n && *end != ',') return -1;
        s = end + (i + 1 < n);
    }
    return *end ? -1 : 0;
}

int main(int argc, char **argv)
{
    seg_predict_params_t p = { .unit_seconds = 604800 };
    seg_predict_hist_t h = { 0 };
    int64_t at = 0, horizon = 0;
    long bench = 0;
    int have_bg = 0, have_first = 0, have_last = 0, have_at = 0, cross = 0;
    seg_predict_cmp_t cmp = SEG_PCMP_LT;
    double c = 0;
    const char *feature = NULL, *hz = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "--bgnbd") == 0 && v) {
            double t[4];
            bad = doubles(v, t, 4);
            p.r = t[0], p.alpha = t[1], p.a = t[2], p.b = t[3];
            have_bg = 1, i++;
        } else if (strcmp(a, "--gg") == 0 && v) {
            double t[3];
            bad = doubles(v, t, 3);
            p.p = t[0], p.q = t[1], p.gamma = t[2];
            i++;
        } else if (strcmp(a, "--unit") == 0 && v) {
            bad = duration(v, &p.unit_seconds), i++;
        } else if (strcmp(a, "--discount") == 0 && v) {
            bad = doubles(v, &p.discount_rate, 1), i++;
        } else if (strcmp(a, "--x") == 0 && v) {
            h.x = (uint32_t)strtoul(v, NULL, 10), i++;
        } else if (strcmp(a, "--first") == 0 && v) {
            bad = instant(v, &h.first), have_first = 1, i++;
        } else if (strcmp(a, "--last") == 0 && v) {
            bad = instant(v, &h.last), have_last = 1, i++;
        } else if (strcmp(a, "--mbar") == 0 && v) {
            bad = doubles(v, &h.mbar, 1), i++;
        } else if (strcmp(a, "--at") == 0 && v) {
            bad = instant(v, &at), have_at = 1, i++;
        } else if (strcmp(a, "--bench") == 0 && v) {
            bench = strtol(v, NULL, 10), i++;
        } else if (strcmp(a, "--cross") == 0 && v && i + 2 < argc) {
            if (strcmp(v, "lt") == 0) cmp = SEG_PCMP_LT;
            else if (strcmp(v, "le") == 0) cmp = SEG_PCMP_LE;
            else if (strcmp(v, "gt") == 0) cmp = SEG_PCMP_GT;
            else if (strcmp(v, "ge") == 0) cmp = SEG_PCMP_GE;
            else bad = 1;
            bad |= doubles(argv[i + 2], &c, 1);
            cross = 1, i += 2;
        } else if (a[0] != '-' && !feature) {
            feature = a;
        } else if (a[0] != '-' && !hz) {
            hz = a;
        } else {
            return usage();
        }
        if (bad) {
            fprintf(stderr, "seg_predict: bad value for %s\n", a);
            return 2;
        }
    }
    if (!have_bg || !have_first || !have_at || !feature) return usage();
    if (!have_last) h.last = h.first;
    seg_predict_feature_t f;
    if (strcmp(feature, "p_alive") == 0) f = SEG_PF_P_ALIVE;
    else if (strcmp(feature, "expected_purchases") == 0) f = SEG_PF_EXPECTED_PURCHASES;
    else if (strcmp(feature, "expected_spend") == 0) f = SEG_PF_EXPECTED_SPEND;
    else if (strcmp(feature, "clv") == 0) f = SEG_PF_CLV;
    else return usage();
    if ((f == SEG_PF_EXPECTED_PURCHASES || f == SEG_PF_CLV) && (!hz || duration(hz, &horizon))) {
        fprintf(stderr, "seg_predict: %s needs a horizon such as 39w\n", feature);
        return 2;
    }
    char err[256];
    seg_predict_t *m = seg_predict_new(&p, err, sizeof err);
    if (!m) {
        fprintf(stderr, "seg_predict: %s\n", err);
        return 2;
    }
    if (bench > 0) {
        struct timespec t0, t1;
        volatile double sink = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long i = 0; i < bench; i++) {
            if (cross) sink += (double)seg_predict_cross(m, &h, f, horizon, cmp, c, at + i);
            else sink += seg_predict_eval(m, &h, f, horizon, at + i * 3600);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
                    (double)bench;
        printf("%s %s: %.0f ns per call (%ld calls)\n", cross ? "cross" : "eval", feature, ns,
               bench);
        (void)sink;
    } else if (cross) {
        int64_t s = seg_predict_cross(m, &h, f, horizon, cmp, c, at);
        char buf[SEG_TS_BUFSZ];
        if (s == INT64_MAX) printf("never\n");
        else {
            seg_ts_format(s, buf);
            printf("%s\n", buf);
        }
    } else {
        printf("%.17g\n", seg_predict_eval(m, &h, f, horizon, at));
    }
    seg_predict_destroy(m);
    return 0;
}
