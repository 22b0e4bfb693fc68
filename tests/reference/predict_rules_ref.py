#!/usr/bin/python3
"""predict_rules_ref: when a `p_alive < c` rule moves, computed independently.

Why: segd fires a threshold on P(alive) at the exact second it is crossed
(docs/predict.md). This evaluator knows nothing of segd's code: it takes
the BG/NBD parameters from the config, folds each customer's purchases
(x = distinct UTC purchase days after the first one's, t_x, T in the fit
unit), and solves P(alive) = c in closed form with mpmath at 50 digits,
so its crossing seconds are exact, not a float search.

Usage: predict_rules_ref.py EVENTS.ndjson R ALPHA A B UNIT_S C RULE UNTIL_TS
prints one transition per line, "customer\tat\tfrom\tto\tcause", in
(customer, at) order, for a membership rule named RULE: `when: p_alive < C`.
Same-second order: segd's clock stops at a due deadline before it folds an
event of the same second (docs/segments.md), so a crossing at an event's
second is published with cause "time", then the event re-evaluates.
"""

import collections
import datetime
import json
import sys

import mpmath

mpmath.mp.dps = 50


def ts_of(s):
    return int(datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")
               .replace(tzinfo=datetime.timezone.utc).timestamp())


def fmt(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def main(argv):
    path = argv[0]
    r, alpha, a, b = (mpmath.mpf(v) for v in argv[1:5])
    unit = int(argv[5])
    c = mpmath.mpf(argv[6])
    rule = argv[7]
    until = ts_of(argv[8])
    by_cust = collections.defaultdict(list)
    for line in open(path):
        e = json.loads(line)
        if e.get("type") == "purchase":
            by_cust[e["customer_id"]].append(ts_of(e["ts"]))
    out = []

    def p_alive(days, first, last, t):
        x = len(days) - 1
        if x == 0:
            return mpmath.mpf(1)
        T = mpmath.mpf(max(t, last) - first) / unit
        tx = mpmath.mpf(last - first) / unit
        return 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x))

    def crossing(days, first, last, after):
        """First second s > after with p_alive(s) < c, or None."""
        x = len(days) - 1
        if x == 0:
            return None
        tx = mpmath.mpf(last - first) / unit
        k = (1 / c - 1) * (b + x - 1) / a
        T = (alpha + tx) * k ** (1 / (r + x)) - alpha     # p_alive == c here
        s_star = first + T * unit
        s = int(mpmath.floor(s_star)) + 1
        if s <= after:
            s = after + 1
        if s <= last:                    # T grows only past the last purchase
            s = last + 1
        assert p_alive(days, first, last, s) < c, "closed form"
        return s

    for cid in sorted(by_cust):
        times = sorted(by_cust[cid])
        days, first, last = set(), None, None
        state = "out"
        i = 0
        while i < len(times):
            t = times[i]
            # every purchase of this second
            while i < len(times) and times[i] == t:
                days.add(t // 86400)
                first = t if first is None else min(first, t)
                last = t if last is None else max(last, t)
                i += 1
            now = "in" if p_alive(days, first, last, t) < c else "out"
            if now != state:
                out.append((cid, t, state, now, "event"))
                state = now
            nxt = times[i] if i < len(times) else until + 1
            if state == "out":
                s = crossing(days, first, last, t)
                if s is not None and s < nxt and s <= until:
                    out.append((cid, s, "out", "in", "time"))
                    state = "in"
                elif s is not None and s == nxt and s <= until:
                    # the deadline is due before the event of that second
                    out.append((cid, s, "out", "in", "time"))
                    state = "in"
    for cid, t, f, to, cause in out:
        print(f"{cid}\t{fmt(t)}\t{f}\t{to}\t{cause}")


if __name__ == "__main__":
    main(sys.argv[1:])
