#!/usr/bin/python3
"""predict_ref: reference values for segd's predictions, computed apart.

Why: src/predict evaluates BG/NBD and Gamma-Gamma in double precision,
through GSL and through transformations chosen for speed and range
(docs/predict.md). This script evaluates the same formulas straight from
the papers with mpmath at 40 significant digits (no transformation, no
shortcut), summarises CDNOW_sample.txt by itself, and fits both models with
scipy, and writes what it finds into a fixture that tests/unit/
test_predict.c compares segd's code against. Nothing here imports or runs
segd's code.

Formulas (Fader, Hardie & Lee 2005, "Counting your customers the easy
way", eqs. 6 and 10; Hardie's note on P(alive); Fader, Hardie & Lee 2005,
"RFM and CLV", and Hardie's "The Gamma-Gamma model of monetary value"):
  LL    = ln[ B(a,b+x)/B(a,b) G(r+x) a^r / (G(r) (al+T)^(r+x))
               + [x>0] B(a+1,b+x-1)/B(a,b) G(r+x) al^r / (G(r) (al+tx)^(r+x)) ]
  Palive = 1 / (1 + [x>0] a/(b+x-1) ((al+T)/(al+tx))^(r+x))
  Ealive = (a+b+x-1)/(a-1) [1 - ((al+T)/(al+T+t))^(r+x) 2F1(r+x,b+x;a+b+x-1;t/(al+T+t))]
  E      = Palive * Ealive
  GG LL = ln[ G(px+q)/(G(px)G(q)) gamma^q m^(px-1) x^(px) / (gamma+x m)^(px+q) ]
  spend = p (gamma + x m) / (p x + q - 1)
  clv with discount d per 365-day year, horizon H, unit u (docs/predict.md):
        n = min(ceil(H/u), 520) periods ending at t_k = k H / n,
        spend * sum_k (1+d)^(-t_k/365d) (E(t_k) - E(t_(k-1)))
At a = 1 and at a+b+x-1 = 0 the Ealive formula is 0/0; there mpmath takes
the limit (mpmath.limit is slow, so the cases there are few).

Usage: predict_ref.py [--check] [OUTPUT]
  OUTPUT defaults to tests/data/predict/reference.txt next to this script.
  --check regenerates into memory and exits 1 if OUTPUT differs: mpmath's
  lines exactly, scipy's fit lines beyond FIT_REL (see there).
  CDNOW_sample.txt is read from $SEG_SHARED/data/cdnow (default /work/shared).
"""
import collections
import datetime
import math
import os
import random
import sys

import mpmath as mp
import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln

mp.mp.dps = 40
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "data", "predict", "reference.txt")
WEEK = 7 * 86400
UNTIL = int(datetime.datetime(1997, 9, 30, tzinfo=datetime.timezone.utc).timestamp())


def f(v):
    """A float written so that C's strtod reads back the same double."""
    return repr(float(v))


# ---- the formulas, in mpmath ----------------------------------------------------------

def ll_bgnbd(r, al, a, b, x, tx, T):
    r, al, a, b, x, tx, T = map(mp.mpf, (r, al, a, b, x, tx, T))
    B = mp.beta
    common = mp.gamma(r + x) * al ** r / mp.gamma(r)
    L = B(a, b + x) / B(a, b) * common / (al + T) ** (r + x)
    if x > 0:
        L += B(a + 1, b + x - 1) / B(a, b) * common / (al + tx) ** (r + x)
    return mp.log(L)


def p_alive(r, al, a, b, x, tx, T):
    if x == 0:
        return mp.mpf(1)
    r, al, a, b, x, tx, T = map(mp.mpf, (r, al, a, b, x, tx, T))
    return 1 / (1 + a / (b + x - 1) * ((al + T) / (al + tx)) ** (r + x))


def e_alive(r, al, a, b, x, T, t):
    r, al, a, b, x, T, t = map(mp.mpf, (r, al, a, b, x, T, t))
    if t <= 0:
        return mp.mpf(0)

    def g(aa):
        c = aa + b + x - 1
        return c / (aa - 1) * (1 - ((al + T) / (al + T + t)) ** (r + x)
                               * mp.hyp2f1(r + x, b + x, c, t / (al + T + t)))
    if abs(a - 1) < mp.mpf("1e-3") or abs(a + b + x - 1) < mp.mpf("1e-3"):
        # Near the removable singularities the formula cancels: twice the
        # digits keep 40 of them; exactly at one, the mean of the two
        # sides 1e-30 away is the limit to 30 digits.
        with mp.workdps(80):
            if a == 1 or a + b + x - 1 == 0:
                return (g(a + mp.mpf("1e-30")) + g(a - mp.mpf("1e-30"))) / 2
            return g(a)
    return g(a)


def expected(r, al, a, b, x, tx, T, t):
    return p_alive(r, al, a, b, x, tx, T) * e_alive(r, al, a, b, x, T, t)


def ll_gg(p, q, g, x, m):
    p, q, g, x, m = map(mp.mpf, (p, q, g, x, m))
    return (mp.loggamma(p * x + q) - mp.loggamma(p * x) - mp.loggamma(q) + q * mp.log(g)
            + (p * x - 1) * mp.log(m) + p * x * mp.log(x) - (p * x + q) * mp.log(g + x * m))


def spend(p, q, g, x, m):
    p, q, g, x, m = map(mp.mpf, (p, q, g, x, m))
    return p * (g + x * m) / (p * x + q - 1)


def clv(par, x, first, last, mbar, at, horizon, d):
    r, al, a, b, p, q, g, unit = par
    tx = mp.mpf(last - first) / unit
    T = mp.mpf(max(at, last) - first) / unit
    s = spend(p, q, g, x, mbar)
    if d == 0:
        return s * expected(r, al, a, b, x, tx, T, mp.mpf(horizon) / unit)
    n = min(-(-horizon // unit), 520)
    total, prev = mp.mpf(0), mp.mpf(0)
    for k in range(1, n + 1):
        tk = mp.mpf(horizon) * k / n
        e = expected(r, al, a, b, x, tx, T, tk / unit)
        total += (1 + mp.mpf(d)) ** (-tk / (365 * 86400)) * (e - prev)
        prev = e
    return s * total


# ---- the CDNOW sample, summarised here -------------------------------------------------

def cdnow_rows(path):
    """(id, ts, units) per row: the 5-digit id, the date at 00:00Z, cents*100."""
    out = []
    with open(path, encoding="ascii") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) != 5:
                continue
            cid, _sid, date, _cds, dollars = parts
            day = datetime.datetime(int(date[:4]), int(date[4:6]), int(date[6:]),
                                    tzinfo=datetime.timezone.utc)
            whole, _, frac = dollars.partition(".")
            units = int(whole) * 10000 + int((frac + "0000")[:4])
            out.append((cid, int(day.timestamp()), units))
    return out


def summarise(rows, until):
    """Per customer, in order of first appearance: x (distinct days after the
    first day), first, last, mbar (mean spend of those days)."""
    by = collections.OrderedDict()
    for cid, ts, units in rows:
        if ts <= until:
            by.setdefault(cid, []).append((ts, units))
    out = []
    for cid, ps in by.items():
        ps.sort()
        first, last = ps[0][0], ps[-1][0]
        d0 = first // 86400
        days = collections.defaultdict(int)
        for ts, units in ps:
            if ts // 86400 != d0:
                days[ts // 86400] += units
        x = len(days)
        mbar = (sum(days.values()) / 10000.0 / x) if x else 0.0
        out.append((cid, x, first, last, mbar))
    return out


def fit_scipy(summ, unit):
    x = np.array([s[1] for s in summ], float)
    tx = np.array([(s[3] - s[2]) / unit for s in summ])
    T = np.array([(UNTIL - s[2]) / unit for s in summ])

    def nll(th):
        r, al, a, b = np.exp(th)
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(al)
        t1 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(al + T)
        t2 = np.where(x > 0, betaln(a + 1, np.maximum(b + x - 1, 1e-300)) - betaln(a, b)
                      - (r + x) * np.log(al + tx), -np.inf)
        return -np.sum(a1 + np.logaddexp(t1, t2))
    best = None
    for start in ([0, 0, 0, 0], [-1, 1, -0.5, 0.5]):
        res = minimize(nll, start, method="Nelder-Mead",
                       options=dict(xatol=1e-11, fatol=1e-11, maxiter=40000, maxfev=80000))
        res = minimize(nll, res.x, method="BFGS", options=dict(gtol=1e-9))
        if best is None or res.fun < best.fun:
            best = res
    bg = list(np.exp(best.x)) + [-best.fun]
    rep = [(s[1], s[4]) for s in summ if s[1] > 0 and s[4] > 0]
    gx = np.array([v[0] for v in rep], float)
    gm = np.array([v[1] for v in rep])

    def gnll(th):
        p, q, g = np.exp(th)
        return -np.sum(gammaln(p * gx + q) - gammaln(p * gx) - gammaln(q) + q * np.log(g)
                       + (p * gx - 1) * np.log(gm) + p * gx * np.log(gx)
                       - (p * gx + q) * np.log(g + gx * gm))
    res = minimize(gnll, [0, 0.7, math.log(gm.mean())], method="Nelder-Mead",
                   options=dict(xatol=1e-11, fatol=1e-11, maxiter=40000, maxfev=80000))
    res = minimize(gnll, res.x, method="BFGS", options=dict(gtol=1e-9))
    gg = list(np.exp(res.x)) + [-res.fun]
    return bg, gg, len(summ), len(rep)


# ---- the fixture ----------------------------------------------------------------------

def hyp_cases(rng):
    """(a, b, c, z): the regimes docs/predict.md lists."""
    cases = [
        (1.5, 2.5, 3.5, 0.3), (0.243 + 2, 2.426 + 2, 0.793 + 2.426 + 1, 0.47),
        (1.98, -0.21, 3.2, 0.9), (1.98, -0.21, 3.2, 0.99), (1.98, -0.21, 30.2, 0.999),
        (0.5, 0.5, 1.5, 0.9999),           # close to 1
        (1.2, 0.7, 3.9, -0.4), (1.2, 0.7, 3.9, -3.0), (2.5, 1.5, 1.2, -50.0),  # z < -1: Pfaff
        (0.3, -0.4, 2.0, 0.8),             # c-a-b = 2.1
        (0.3, 0.7, 2.0 + 1e-7, 0.8),       # c-a-b = 1 + 1e-7: GSL's reflection cancels
        (0.3, 0.7, 3.0, 0.8),              # c-a-b = 2 exactly
        (12.5, 13.5, 30.0, 0.6),           # large a, b
        (0.2, 0.4, -0.5, 0.3),             # c < 0, not an integer
        (12.3, -0.2, 40.5, 0.9995),        # near 1, large: the connection formula
        (25.0, 30.2, 14.0, 0.999),
        (2.5, -0.3, 1.2, 0.98),            # c-a-b = -1: GSL's integer branch is wrong here
    ]
    for _ in range(120):
        r = 10 ** rng.uniform(-1.5, 1)
        a = 10 ** rng.uniform(-1.5, 1)
        b = 10 ** rng.uniform(-1.5, 1)
        x = rng.choice([0, 1, 2, 3, 5, 10, 30, 100, 1000])
        z = rng.choice([rng.uniform(0, 0.5), rng.uniform(0.5, 0.99), 1 - 10 ** rng.uniform(-2.3, -1)])
        c = a + b + x - 1
        if abs(c) < 1e-3:
            continue
        cases.append((a + b - 1 - r, a - 1, c, z))       # the Euler form seg_bgnbd uses
    for _ in range(40):
        cases.append((rng.uniform(0.1, 5), rng.uniform(0.1, 5), rng.uniform(0.5, 8),
                      -(10 ** rng.uniform(-1, 2))))
    return cases


def bgnbd_cases(rng):
    out = [
        # the paper's worked example: x=2, t_x=30.43, T=38.86 weeks, 39 weeks ahead
        (0.243, 4.414, 0.793, 2.426, 2, 30.43, 38.86, 39.0),
        (0.243, 4.414, 0.793, 2.426, 0, 0.0, 38.86, 39.0),
        (0.243, 4.414, 0.793, 2.426, 1000, 50.0, 52.0, 52.0),  # a very frequent buyer
        (0.243, 4.414, 1 + 3e-5, 2.426, 3, 10.0, 20.0, 52.0),  # a = 1: limit
        (0.243, 4.414, 1 - 7e-5, 2.426, 3, 10.0, 20.0, 52.0),
        (0.5, 2.0, 0.4, 0.6 + 2e-5, 0, 0.0, 5.0, 52.0),        # a+b+x-1 = 0: limit
        (0.5, 2.0, 0.3, 0.4, 0, 0.0, 5.0, 52.0),               # a+b+x-1 < 0
        (0.8, 0.1, 0.5, 1.5, 2, 0.05, 0.1, 52.0),              # z = 0.998
    ]
    for _ in range(150):
        r = 10 ** rng.uniform(-1.5, 1)
        al = 10 ** rng.uniform(-1, 2)
        a = 10 ** rng.uniform(-1.5, 1)
        b = 10 ** rng.uniform(-1.5, 1.2)
        x = rng.choice([0, 0, 1, 2, 3, 5, 8, 13, 30, 100])
        tx = 0.0 if x == 0 else rng.uniform(0.1, 100)
        T = tx + rng.uniform(0, 100)
        t = 10 ** rng.uniform(-1, 2.3)
        if abs(a - 1) < 1e-3 or abs(a + b + x - 1) < 1e-3:
            continue
        out.append((r, al, a, b, x, tx, T, t))
    for _ in range(20):    # long horizons for young customers: z up to 1 - 1e-5
        r, al = 10 ** rng.uniform(-1.5, 1), 10 ** rng.uniform(-1, 1)
        a, b = 10 ** rng.uniform(-1.5, 1), 10 ** rng.uniform(-1.5, 1.5)
        x = rng.choice([0, 1, 3, 20, 300])
        if abs(a - 1) < 1e-3 or abs(a + b + x - 1) < 1e-3:
            continue
        tx = 0.0 if x == 0 else rng.uniform(0.01, 0.5)
        out.append((r, al, a, b, x, tx, tx + rng.uniform(0, 0.5), 10 ** rng.uniform(3, 5)))
    return out


def gg_cases(rng):
    out = [(6.25, 3.74, 15.44, 2, 30.0), (6.25, 3.74, 15.44, 1, 0.01)]
    for _ in range(60):
        out.append((10 ** rng.uniform(-1, 1.5), 1 + 10 ** rng.uniform(-1, 1.5),
                    10 ** rng.uniform(-1, 3), rng.choice([1, 2, 3, 5, 10, 50, 300]),
                    10 ** rng.uniform(-1, 3)))
    return out


def generate():
    rng = random.Random(11)
    lines = ["# Generated by tests/reference/predict_ref.py (mpmath, 40 digits; scipy for the",
             "# fits). Do not edit: rerun the script. Formats: see test_predict.c."]
    for a, b, c, z in hyp_cases(rng):
        v = mp.hyp2f1(a, b, c, z)
        lines.append("hyp2f1 %s %s %s %s %s" % (f(a), f(b), f(c), f(z), f(v)))
    for r, al, a, b, x, tx, T, t in bgnbd_cases(rng):
        lines.append("bgnbd %s %s %s %s %d %s %s %s %s %s %s %s" % (
            f(r), f(al), f(a), f(b), x, f(tx), f(T), f(t),
            f(ll_bgnbd(r, al, a, b, x, tx, T)), f(p_alive(r, al, a, b, x, tx, T)),
            f(e_alive(r, al, a, b, x, T, t)), f(expected(r, al, a, b, x, tx, T, t))))
    for p, q, g, x, m in gg_cases(rng):
        lines.append("gg %s %s %s %d %s %s %s" % (f(p), f(q), f(g), x, f(m),
                                                 f(ll_gg(p, q, g, x, m)), f(spend(p, q, g, x, m))))
    # clv, discounted and not, through the whole seg_predict_eval path
    par = (0.243, 4.414, 0.793, 2.426, 6.25, 3.74, 15.44, WEEK)
    for _ in range(24):
        x = rng.choice([0, 1, 2, 4, 9])
        first = UNTIL - rng.randint(1, 300) * 86400
        last = first if x == 0 else first + rng.randint(x, 250) * 3600 * 24 // 2
        last = min(last, UNTIL)
        mbar = 0.0 if x == 0 else round(rng.uniform(5, 80), 2)
        at = UNTIL + rng.randint(0, 90) * 86400
        horizon = rng.choice([30, 90, 365, 730]) * 86400
        d = rng.choice([0.0, 0.1, 0.25])
        unit = rng.choice([WEEK, 86400])
        p2 = par[:7] + (unit,)
        if unit == 86400:
            p2 = (par[0], par[1] * 7) + par[2:7] + (unit,)   # alpha in days
        lines.append("clv %s %d %d %d %d %s %d %d %s %s" % (
            " ".join(f(v) for v in p2[:7]), unit, x, first, last, f(mbar), at, horizon, f(d),
            f(clv(p2, x, first, last, mbar, at, horizon, d))))
    # CDNOW: purchases, the summary, fits and per-customer predictions
    shared = os.environ.get("SEG_SHARED", "/work/shared")
    rows = cdnow_rows(os.path.join(shared, "data", "cdnow", "CDNOW_sample.txt"))
    summ = summarise(rows, UNTIL)
    bg, gg, n, nrep = fit_scipy(summ, WEEK)
    lines.append("fit_bgnbd %s %s %s %s %s %d" % (f(bg[0]), f(bg[1]), f(bg[2]), f(bg[3]),
                                                f(bg[4]), n))
    lines.append("fit_gg %s %s %s %s %d" % (f(gg[0]), f(gg[1]), f(gg[2]), f(gg[3]), nrep))
    lines.append("until %d" % UNTIL)
    for cid, ts, units in rows:
        lines.append("buy %s %d %d" % (cid, ts, units))
    r, al, a, b, p, q, g = 0.243, 4.414, 0.793, 2.426, 6.25, 3.74, 15.44
    for cid, x, first, last, mbar in summ:
        tx = mp.mpf(last - first) / WEEK
        T = mp.mpf(UNTIL - first) / WEEK
        lines.append("cust %s %d %d %d %s %s %s %s" % (
            cid, x, first, last, f(mbar), f(p_alive(r, al, a, b, x, tx, T)),
            f(expected(r, al, a, b, x, tx, T, 39)), f(spend(p, q, g, x, mbar))))
    return "\n".join(lines) + "\n"


# How far a fit line may move between machines. mpmath's lines are exact
# everywhere, but scipy's optimum is only found to its tolerances, and
# numpy's SIMD paths (AVX-512 on one host, AVX2 on another) change the last
# bits of every sum: parameters moved by 4e-9 relative between two hosts,
# the log-likelihood by 1e-15. test_predict.c allows 1e-5 and 1e-10; these
# are a hundred times tighter, so an edited digit still shows.
FIT_REL = {"fit_bgnbd": (1e-7, 1e-7, 1e-7, 1e-7, 1e-12),
           "fit_gg": (1e-7, 1e-7, 1e-7, 1e-12)}


def differs(old, new):
    """Why fixture text old is not what new says, or None if it is."""
    a, b = old.split("\n"), new.split("\n")
    if len(a) != len(b):
        return "%d lines, want %d" % (len(a), len(b))
    for no, (x, y) in enumerate(zip(a, b), 1):
        if x == y:
            continue
        xs, ys = x.split(), y.split()
        rel = FIT_REL.get(ys[0] if ys else "")
        if rel is None or len(xs) != len(ys) or xs[0] != ys[0] or xs[-1] != ys[-1]:
            return "line %d: %r, want %r" % (no, x, y)
        for tol, u, v in zip(rel, xs[1:-1], ys[1:-1]):
            if abs(float(u) - float(v)) > tol * abs(float(v)):
                return "line %d: %s, want %s (within %g)" % (no, u, v, tol)
    return None


def main():
    args = sys.argv[1:]
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    out = args[0] if args else DEFAULT_OUT
    text = generate()
    if check:
        with open(out, encoding="ascii") as fh:
            why = differs(fh.read(), text)
        if why:
            print("predict_ref: %s is out of date (%s); rerun tests/reference/predict_ref.py"
                  % (out, why), file=sys.stderr)
            return 1
        return 0
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="ascii") as fh:
        fh.write(text)
    print("predict_ref: wrote %s (%d lines)" % (out, text.count("\n")), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
