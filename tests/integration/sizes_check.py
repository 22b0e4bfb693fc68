"""sizes_check: segment sizes as a consumer of the transitions counts them,
compared with what segd reports (GET /v1/segments, the replay summary's
"segments", or the Prometheus series).

The consumer model, written from docs/operations.md and not from segd's
code: keep each customer's latest value per dimension (the `to` of its
last transition there, in seq order); a customer that never moved in a
dimension with a starting value (dissatisfied "out", a `when:` rule
without `where:`) is there; `to: null` is no value. A value's size is the
number of customers whose latest value it is. Flows: a transition counts
as an exit of `from` and an entry of `to`; over the last hour / 24 h when
its `at` falls in the last 60 one-minute / 96 fifteen-minute buckets up
to the reported "time".

A rule's rows are bounded (64 values, the rest in "_other"): values segd
names are compared one by one and "_other" with the sum of the rest.

Usage as a module: expected(lines, config, customers) and compare(...);
as a script:
  sizes_check.py TRANSITIONS.ndjson SUMMARY.json CONFIG.yaml
which reads the replay --summary-json file and exits 1 on a difference.
"""

import calendar
import json
import sys
import time

import yaml

BUILTINS = ("lifecycle", "value", "rfm", "dissatisfied")


def _ts(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def initial_values(config_path):
    """{dimension: starting value} from the configuration file: built-in
    dissatisfied "out" (when enabled), and "out" for each `when:` rule
    without `where:` (docs/rules.md, "Rule forms")."""
    cfg = {}
    if config_path:
        with open(config_path, encoding="utf-8") as f:
            cfg = yaml.safe_load(f) or {}
    seg = cfg.get("segments") or {}
    out = {}
    if (seg.get("dissatisfied") or {}).get("enabled", True):
        out["dissatisfied"] = "out"
    for name, r in (seg.get("rules") or {}).items():
        if "when" in r and "where" not in r:
            out[name] = "out"
    return out


def consumer_view(lines):
    """{(customer, dimension): latest to} and the transitions as dicts,
    from transition lines (bytes or str), deduplicated by id."""
    seen, trs = set(), []
    for l in lines:
        t = json.loads(l)
        if t["id"] in seen:
            continue
        seen.add(t["id"])
        trs.append(t)
    trs.sort(key=lambda t: (t["customer_id"], t["seq"]))
    latest = {}
    for t in trs:
        latest[(t["customer_id"], t["dimension"])] = t["to"]
    return latest, trs


def expected(lines, config_path, customers, now_text):
    """{dimension: {value: {customers, entries_total, exits_total,
    entries_1h, exits_1h, entries_24h, exits_24h}}} as the consumer counts.
    customers: the ids held (every customer that ever had a transition,
    when nothing was evicted)."""
    latest, trs = consumer_view(lines)
    init = initial_values(config_path)
    dims = {}

    def cell(d, v):
        return dims.setdefault(d, {}).setdefault(v, dict.fromkeys(
            ("customers", "entries_total", "exits_total", "entries_1h", "exits_1h",
             "entries_24h", "exits_24h"), 0))
    for (c, d), v in latest.items():
        if v is not None:
            cell(d, v)["customers"] += 1
    for d, v in init.items():
        moved = {c for (c, dd) in latest if dd == d}
        cell(d, v)["customers"] += len(set(customers) - moved)
    now = _ts(now_text) if now_text else None
    for t in trs:
        at = _ts(t["at"])
        h1 = now is not None and now // 60 - 60 < at // 60 <= now // 60
        h24 = now is not None and now // 900 - 96 < at // 900 <= now // 900
        for v, kind in ((t["from"], "exits"), (t["to"], "entries")):
            if v is None:
                continue
            e = cell(t["dimension"], v)
            e[kind + "_total"] += 1
            e[kind + "_1h"] += h1
            e[kind + "_24h"] += h24
    return dims


FIELDS = ("customers", "entries_total", "exits_total", "entries_1h", "exits_1h",
          "entries_24h", "exits_24h")


def compare(want, segments, fields=FIELDS):
    """Differences (list of text) between the consumer's counts `want` and
    segd's /v1/segments JSON `segments`."""
    problems = []
    got = {d["dimension"]: {v["value"]: v for v in d["values"]} for d in segments["dimensions"]}
    for d in sorted(set(want) | set(got)):
        w, g = want.get(d, {}), got.get(d, {})
        if d not in got:
            if any(x["customers"] for x in w.values()):
                problems.append(f"{d}: dimension missing from segd's report")
            continue
        named = {v for v in g if v != "_other"}
        rest = [v for v in w if v not in named]
        # A value with nothing to show in the compared fields may be absent
        # (after a restart, values that only had flows before it are).
        if any(w[v][f] for v in rest for f in fields) and "_other" not in g:
            problems.append(f"{d}: values {sorted(map(str, rest))[:5]} not reported and no _other")
        for f in fields:
            for v in named:
                wv = w.get(v, {}).get(f, 0)
                if g[v].get(f) != wv:
                    problems.append(f"{d}={v}: {f} segd {g[v].get(f)}, consumer {wv}")
            if "_other" in g:
                wv = sum(w[v][f] for v in rest)
                if g["_other"].get(f) != wv:
                    problems.append(f"{d}=_other: {f} segd {g['_other'].get(f)}, consumer {wv}")
        if "_other" in g and len(named) > 64:
            problems.append(f"{d}: {len(named)} named values, more than the bound of 64")
        for v, x in g.items():
            if "entries_24h" not in x:
                continue   # Prometheus series: no windows
            c = x.get("customers", 0)
            vol = x.get("volatility_24h")
            want_vol = (x["entries_24h"] + x["exits_24h"]) / c if c > 0 else None
            if (vol is None) != (want_vol is None) or (vol is not None and
                                                       abs(vol - want_vol) > 1e-9 * max(1, vol)):
                problems.append(f"{d}={v}: volatility_24h {vol}, want {want_vol}")
    return problems


def main(argv):
    tr_path, summary_path, config = argv[1], argv[2], argv[3] if len(argv) > 3 else None
    with open(tr_path, "rb") as f:
        lines = [l for l in f.read().split(b"\n") if l]
    with open(summary_path, encoding="utf-8") as f:
        summary = json.load(f)
    segs = summary["segments"]
    _, trs = consumer_view(lines)
    customers = {t["customer_id"] for t in trs}
    problems = []
    if summary["customers"] < len(customers) or segs["customers"] != len(customers):
        problems.append(f"customers held: summary {summary['customers']}, segments "
                        f"{segs['customers']}, ids in the transitions {len(customers)}")
    if not segs.get("exact"):
        problems.append("segd says its sizes are inexact")
    want = expected(lines, config, customers, segs["time"])
    problems += compare(want, segs)
    nvals = sum(len(d["values"]) for d in segs["dimensions"])
    moved = sum(x["entries_total"] for d in want.values() for x in d.values())
    if problems:
        print("\n".join(problems[:30]))
        return 1
    print(f"{len(customers)} customers, {len(segs['dimensions'])} dimensions, {nvals} values, "
          f"{moved} entries agree")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
