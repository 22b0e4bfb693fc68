#!/usr/bin/python3
"""predict_table_ref: segd's customer table against scipy, customer by customer.

Why: issue 11's reference check. segd computes P(alive), the expected
purchases (BG/NBD eq. 10, with GSL's 2F1) and the Gamma-Gamma spend in C;
this recomputes them for every customer from the raw CDNOW rows with
Debian's scipy (scipy.special.hyp2f1, gammaln) and nothing of segd's, and
compares at 1e-6 relative. x, t_x and T are recomputed from the raw rows
too, so the fold of purchase days is checked along the way.

Usage: predict_table_ref.py CDNOW_sample.txt TABLE.csv FIT.json UNTIL_EPOCH HORIZON_S
Exit 0 when every customer agrees; prints the worst differences.
"""

import collections
import csv
import datetime
import json
import math
import sys

from scipy.special import gammaln, hyp2f1


def bgnbd(r, alpha, a, b, x, tx, T, t):
    if x == 0:
        p_alive = 1.0
    else:
        p_alive = 1.0 / (1.0 + a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x))
    # eq. 10 of Fader, Hardie & Lee (2005)
    z = t / (alpha + T + t)
    head = (a + b + x - 1) / (a - 1)
    h = hyp2f1(r + x, b + x, a + b + x - 1, z)
    core = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * h
    denom = 1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x)
    return p_alive, head * core / denom


def gg_spend(p, q, g, x, mbar):
    return (g + x * mbar) * p / (p * x + q - 1)


def main(argv):
    raw, table, fitf, until, horizon = argv[0], argv[1], argv[2], int(argv[3]), int(argv[4])
    fit = json.load(open(fitf))
    unit = fit["unit_seconds"]
    r, alpha, a, b = (fit["bgnbd"][k] for k in ("r", "alpha", "a", "b"))
    p, q, g = (fit["gamma_gamma"][k] for k in ("p", "q", "gamma"))
    buys = collections.defaultdict(lambda: collections.defaultdict(float))
    for line in open(raw):
        f = line.split()
        if not f:
            continue
        cid = f[0]
        d = datetime.datetime.strptime(f[2], "%Y%m%d").replace(tzinfo=datetime.timezone.utc)
        ts = int(d.timestamp())
        if ts <= until:
            buys[cid][ts] += float(f[4])
    rows = {row["customer_id"]: row for row in csv.DictReader(open(table, newline=""))}
    worst = []
    bad = checked = 0
    for cid, days in buys.items():
        row = rows.get(cid)
        if row is None:
            print(f"customer {cid} missing from the table")
            bad += 1
            continue
        ts = sorted(days)
        first, last = ts[0], ts[-1]
        x = len(ts) - 1
        tx, T = (last - first) / unit, (until - first) / unit
        t = horizon / unit
        pa, ep = bgnbd(r, alpha, a, b, x, tx, T, t)
        want = {"x": x, "t_x": tx, "T": T, "p_alive": pa, "expected_purchases": ep}
        if x > 0:
            mbar = sum(days[d] for d in ts[1:]) / x
            want["clv"] = ep * gg_spend(p, q, g, x, mbar)
        for k, v in want.items():
            got = float(row[k])
            rel = abs(got - v) / max(abs(v), 1e-300)
            checked += 1
            if not (rel <= 1e-6 or abs(got - v) <= 1e-12):
                bad += 1
            worst.append((rel, cid, k, got, v))
    worst.sort(reverse=True)
    print(f"{len(buys)} customers, {checked} values compared; worst relative differences:")
    for rel, cid, k, got, v in worst[:5]:
        print(f"  {cid} {k}: segd {got!r}, scipy {v!r} (rel {rel:.2e})")
    return 1 if bad or len(buys) < 2000 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
