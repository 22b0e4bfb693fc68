#!/usr/bin/python3
"""segref: a deliberately naive reference implementation of segd replay.

Why it exists: segd folds events incrementally (hash table, rolling
windows, a timer heap). Bugs in such code hide in the bookkeeping: a window
entry not expired, a timer not rescheduled, a counter off by one at a
boundary. This program computes the same transitions with none of that
bookkeeping, so the integration tests can compare the two on whole public
datasets. It is slow on purpose and small enough to read in one sitting:

  * every valid event is kept; nothing is ever aggregated in place;
  * each customer is simulated on its own, from its full event list;
  * at every instant where the customer is evaluated, R, A, F, M and the
    complaint count are recomputed from all events folded so far;
  * the next deadline is recomputed from scratch, from the current state,
    every time (no heap, no stale timers);
  * money is integer 1/10000 units, time integer seconds, parsing goes
    through decimal.Decimal, so no binary float is involved anywhere.

Semantics: issue 2 ("State and dimensions") and the team's decisions on
event decoding and engine time: per-customer clock now_c, a late event
is evaluated at max(now_c, ts), every deadline <= ts fires before an
event is folded, deadlines tie before events, the end of time is
E = max(largest valid ts, --until). Deadlines come from every dimension,
enabled or not (the decision lists them unconditionally).

The global deadline firing is reproduced per customer exactly: while
customer X has no event, its state is frozen, so the deadlines that fire
between two of its events are precisely those <= the largest ts among the
input events processed in between (its own next event included). That
"horizon" is a range maximum over the input, answered by a sparse table.

Output: one transition per line, in segd's exact format, grouped by
customer (segd interleaves customers in time order; compare sorted).
stderr: a JSON summary with rejection counts by reason.

Usage:
  segref.py [--config-json FILE] [--config YAML] [--set key=value]...
            [--until RFC3339] [INPUT|-]
"""
import argparse
import datetime
import json
import re
import sys
from decimal import Decimal, InvalidOperation, ROUND_HALF_UP

DAY = 86400
UNIT = 10000                      # money units per currency unit
MONEY_MAX = 10 ** 14              # largest |amount| in units
TS_MIN = -62135596800             # 0001-01-01T00:00:00Z
TS_MAX = 253402300799             # 9999-12-31T23:59:59Z
CUSTOMER_ID_MAX = 128             # bytes
EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()

TYPES = ("purchase", "refund", "contact", "profile")
KINDS = ("visit", "inquiry", "call", "complaint", "support", "feedback")
DIMENSIONS = ("lifecycle", "value", "rfm", "dissatisfied")


# ---------------------------------------------------------------- config

def default_config():
    return {
        "segments.window": 365 * DAY,
        "segments.lifecycle.enabled": True,
        "segments.lifecycle.new_for": 30 * DAY,
        "segments.lifecycle.at_risk_after": 45 * DAY,
        "segments.lifecycle.silent_after": 90 * DAY,
        "segments.lifecycle.churned_after": 365 * DAY,
        "segments.lifecycle.loyal_min_purchases": 4,
        "segments.value.enabled": True,
        "segments.value.a_min": 1000 * UNIT,
        "segments.value.b_min": 250 * UNIT,
        "segments.rfm.enabled": True,
        "segments.rfm.recency": [90 * DAY, 180 * DAY, 365 * DAY],
        "segments.rfm.frequency": [3, 6, 11],
        "segments.rfm.monetary": [100 * UNIT, 500 * UNIT, 1000 * UNIT],
        "segments.dissatisfied.enabled": True,
        "segments.dissatisfied.window": 90 * DAY,
        "segments.dissatisfied.min_complaints": 2,
        "input.max_record_bytes": 1048576,
    }


def key_kind(key):
    """The value type of a config key: bool, duration, money, int, or a
    list of one of those."""
    leaf = key.rsplit(".", 1)[1]
    if leaf == "enabled":
        return "bool"
    if key == "segments.rfm.recency":
        return ["duration"]
    if key == "segments.rfm.frequency":
        return ["int"]
    if key == "segments.rfm.monetary":
        return ["money"]
    if key in ("segments.value.a_min", "segments.value.b_min"):
        return "money"
    if leaf in ("loyal_min_purchases", "min_complaints", "max_record_bytes"):
        return "int"
    return "duration"


DURATION = re.compile(r"([0-9]+)([smhdw]?)")
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": DAY, "w": 7 * DAY}


def parse_value(kind, v, key):
    if isinstance(kind, list):
        if isinstance(v, str):
            v = [x.strip() for x in v.strip("[]").split(",")]
        if not isinstance(v, list) or len(v) != 3:
            raise ValueError("%s: expected a list of 3 values" % key)
        return [parse_value(kind[0], x, key) for x in v]
    if kind == "bool":
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v in ("true", "false"):
            return v == "true"
        raise ValueError("%s: expected true or false" % key)
    if kind == "int":
        if isinstance(v, bool):
            raise ValueError("%s: expected an integer" % key)
        if isinstance(v, int):
            return v
        if isinstance(v, str) and re.fullmatch(r"[0-9]+", v):
            return int(v)
        raise ValueError("%s: expected an integer" % key)
    if kind == "duration":
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        m = DURATION.fullmatch(str(v).strip())
        if not m:
            raise ValueError("%s: bad duration %r" % (key, v))
        return int(m.group(1)) * DURATION_UNITS[m.group(2)]
    if kind == "money":
        if isinstance(v, bool):
            raise ValueError("%s: expected an amount" % key)
        try:
            d = Decimal(str(v))
        except InvalidOperation:
            raise ValueError("%s: bad amount %r" % (key, v))
        units = d * UNIT
        if units != units.to_integral_value():
            raise ValueError("%s: more than 4 decimals" % key)
        return int(units)
    raise AssertionError(kind)


def apply_tree(cfg, tree, prefix=""):
    """Applies a nested mapping (from JSON or YAML). Keys this reference
    does not model (kafka, output, ...) are ignored, except under
    segments, where an unknown key is a mistake."""
    for k, v in tree.items():
        key = prefix + str(k)
        if isinstance(v, dict):
            apply_tree(cfg, v, key + ".")
        elif key in cfg:
            cfg[key] = parse_value(key_kind(key), v, key)
        elif key.startswith("segments."):
            raise ValueError("unknown config key %s" % key)


def load_config(args):
    cfg = default_config()
    if args.config:
        import yaml  # Debian's python3-yaml; only needed for --config
        with open(args.config, encoding="utf-8") as f:
            tree = yaml.safe_load(f) or {}
        apply_tree(cfg, tree)
    if args.config_json:
        with open(args.config_json, encoding="utf-8") as f:
            apply_tree(cfg, json.load(f))
    for assignment in args.set or []:
        key, sep, value = assignment.partition("=")
        if not sep or key not in cfg:
            raise ValueError("--set %s: unknown key" % assignment)
        cfg[key] = parse_value(key_kind(key), value, key)
    return cfg


# ------------------------------------------------------------ timestamps

RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})")


def parse_rfc3339(s):
    """Epoch seconds (floor) of an RFC 3339 date-time, or None."""
    m = RFC3339.fullmatch(s)
    if not m:
        return None
    y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
    if h > 23 or mi > 59 or sec > 59:
        return None
    try:
        days = datetime.date(y, mo, d).toordinal() - EPOCH_ORDINAL
    except ValueError:          # year 0, month 13, Feb 30, ...
        return None
    t = days * DAY + h * 3600 + mi * 60 + sec
    off = m.group(8)
    if off not in ("Z", "z"):
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            return None
        delta = oh * 3600 + om * 60
        t = t - delta if off[0] == "+" else t + delta
    # The fraction only ever adds to a whole second, and offsets are whole
    # minutes, so dropping it is exactly the floor.
    if t < TS_MIN or t > TS_MAX:
        return None
    return t


def format_ts(t):
    dt = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=t)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second)


# ------------------------------------------------------------ validation

class Reject(Exception):
    def __init__(self, reason):
        Exception.__init__(self, reason)
        self.reason = reason


def _no_constants(name):
    raise ValueError("non-standard JSON constant " + name)


def _first_wins(pairs):
    # A duplicated key keeps its first value (cJSON's lookup order).
    obj = {}
    for k, v in pairs:
        if k not in obj:
            obj[k] = v
    return obj


def is_number(v):
    return isinstance(v, Decimal)


def decode(line, max_record_bytes):
    """One NDJSON record (bytes, without its newline) -> (type, kind,
    customer_id, ts, amount_units). Raises Reject(reason)."""
    if len(line) > max_record_bytes:
        raise Reject("oversized_record")
    try:
        text = line.decode("utf-8")
        obj = json.loads(text, parse_float=Decimal, parse_int=Decimal,
                         parse_constant=_no_constants,
                         object_pairs_hook=_first_wins)
    except (ValueError, RecursionError):
        raise Reject("invalid_json")
    if not isinstance(obj, dict):
        raise Reject("not_object")

    # JSON null on a field is the same as the field being absent.
    def get(name):
        return obj.get(name)

    typ = get("type")
    if typ is None:
        raise Reject("missing_field")
    if not isinstance(typ, str):
        raise Reject("wrong_field_type")
    if typ not in TYPES:
        raise Reject("unknown_type")

    cid = get("customer_id")
    if cid is None:
        raise Reject("missing_field")
    if not isinstance(cid, str):
        raise Reject("wrong_field_type")
    if cid == "":
        raise Reject("empty_customer_id")
    if len(cid.encode("utf-8", "surrogatepass")) > CUSTOMER_ID_MAX:
        raise Reject("oversized_customer_id")
    if "\0" in cid:
        raise Reject("bad_field")

    raw_ts = get("ts")
    if raw_ts is None:
        raise Reject("missing_field")
    if isinstance(raw_ts, str):
        ts = parse_rfc3339(raw_ts)
    elif is_number(raw_ts) and raw_ts == raw_ts.to_integral_value() \
            and abs(raw_ts) < Decimal(10) ** 18:
        ts = int(raw_ts) // 1000           # epoch ms, floor
        if ts < TS_MIN or ts > TS_MAX:
            ts = None
    else:
        ts = None                          # bool, object, fraction of a ms
    if ts is None:
        raise Reject("bad_timestamp")

    kind = None
    if typ == "contact":
        kind = get("kind")
        if kind is None:
            raise Reject("missing_field")
        if not isinstance(kind, str):
            raise Reject("wrong_field_type")
        if kind not in KINDS:
            raise Reject("unknown_kind")

    amount = get("amount")
    units = 0
    if typ == "profile":
        amount = None                          # a profile's amount is ignored
    elif amount is None:
        if typ != "contact":
            raise Reject("missing_field")
    if amount is not None:
        if not is_number(amount):
            raise Reject("wrong_field_type")
        if abs(amount) > Decimal(MONEY_MAX):   # cheap guard before scaling
            raise Reject("bad_amount")
        scaled = amount * UNIT
        units = int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        if abs(scaled) > MONEY_MAX:
            raise Reject("bad_amount")
        # "number >= 0": -0.0 equals 0 and is fine; -0.00001 is negative
        # even though it would round to 0 units.
        if amount < 0:
            raise Reject("negative_amount")
        if typ == "contact":
            units = 0                          # validated, then ignored

    rating = get("rating")
    if rating is not None:
        if not is_number(rating):
            raise Reject("wrong_field_type")
        if rating != rating.to_integral_value() or not 1 <= rating <= 5:
            raise Reject("bad_rating")

    for name in ("event_id", "currency", "channel"):
        v = get(name)
        if v is not None and not isinstance(v, str):
            raise Reject("wrong_field_type")
    attrs = get("attrs")
    if attrs is not None and not isinstance(attrs, dict):
        raise Reject("wrong_field_type")

    return (typ, kind, cid, ts, units)


def read_records(stream):
    """Yields each record's bytes. Blank lines are not records."""
    data = stream.read()
    for line in data.split(b"\n"):
        if line.strip(b" \t\r") == b"":
            continue
        yield line


# ------------------------------------------------------------- semantics

class Rules:
    """The dimension definitions of issue 2, evaluated from scratch."""

    def __init__(self, cfg):
        self.c = cfg
        self.window = cfg["segments.window"]

    def recency_deadline_offsets(self):
        c = self.c
        return sorted(set([c["segments.lifecycle.at_risk_after"],
                           c["segments.lifecycle.silent_after"],
                           c["segments.lifecycle.churned_after"]]
                          + list(c["segments.rfm.recency"])))

    def features(self, events, t):
        """R, A, F, M, complaints, has_purchase, has_contact at instant t,
        from the full list of folded events. An entry is in a trailing
        window W at t iff t - W < ts <= t."""
        W = self.window
        WC = self.c["segments.dissatisfied.window"]
        purchases = [ts for (typ, _, ts, _) in events if typ == "purchase"]
        has_contact = any(typ == "contact" for (typ, _, _, _) in events)
        f = {"has_purchase": bool(purchases), "has_contact": has_contact}
        if purchases:
            f["R"] = t - max(purchases)
            f["A"] = t - min(purchases)
        f["F"] = sum(1 for ts in purchases if t - W < ts <= t)
        f["M"] = (sum(a for (typ, _, ts, a) in events
                      if typ == "purchase" and t - W < ts <= t)
                  - sum(a for (typ, _, ts, a) in events
                        if typ == "refund" and t - W < ts <= t))
        f["complaints"] = sum(1 for (typ, kind, ts, _) in events
                              if typ == "contact" and kind == "complaint"
                              and t - WC < ts <= t)
        return f

    def values(self, f):
        """dimension -> value (None while undefined), in evaluation order."""
        c = self.c
        out = []
        if c["segments.lifecycle.enabled"]:
            if not f["has_purchase"]:
                v = "prospect" if f["has_contact"] else None
            elif f["R"] >= c["segments.lifecycle.churned_after"]:
                v = "churned"
            elif f["R"] >= c["segments.lifecycle.silent_after"]:
                v = "silent"
            elif f["R"] >= c["segments.lifecycle.at_risk_after"]:
                v = "at_risk"
            elif f["A"] < c["segments.lifecycle.new_for"]:
                v = "new"
            elif f["F"] >= c["segments.lifecycle.loyal_min_purchases"]:
                v = "loyal"
            else:
                v = "active"
            out.append(("lifecycle", v))
        if c["segments.value.enabled"]:
            v = None
            if f["has_purchase"]:
                M = f["M"]
                if M >= c["segments.value.a_min"]:
                    v = "A"
                elif M >= c["segments.value.b_min"]:
                    v = "B"
                elif M > 0:
                    v = "C"
                else:
                    v = "D"
            out.append(("value", v))
        if c["segments.rfm.enabled"]:
            v = None
            if f["has_purchase"]:
                rec = c["segments.rfm.recency"]
                frq = c["segments.rfm.frequency"]
                mon = c["segments.rfm.monetary"]
                R, F, M = f["R"], f["F"], f["M"]
                r = 1 if R < rec[0] else 2 if R < rec[1] else 3 if R < rec[2] else 4
                fr = 0 if F == 0 else 1 if F < frq[0] else 2 if F < frq[1] \
                    else 3 if F < frq[2] else 4
                m = 0 if M <= 0 else 1 if M < mon[0] else 2 if M < mon[1] \
                    else 3 if M < mon[2] else 4
                v = "R%dF%dM%d" % (r, fr, m)
            out.append(("rfm", v))
        if c["segments.dissatisfied.enabled"]:
            v = "in" if f["complaints"] >= c["segments.dissatisfied.min_complaints"] else "out"
            out.append(("dissatisfied", v))
        return out

    def deadlines(self, events):
        """Every instant at which some value of this state can change:
        last purchase + each recency threshold, first purchase + new_for,
        each purchase/refund + window, each complaint + complaint window.
        Only the current first/last purchase count (an older purchase's
        +45d is not a deadline once a later purchase exists)."""
        W = self.window
        WC = self.c["segments.dissatisfied.window"]
        out = set()
        purchases = [ts for (typ, _, ts, _) in events if typ == "purchase"]
        if purchases:
            last, first = max(purchases), min(purchases)
            for d in self.recency_deadline_offsets():
                out.add(last + d)
            out.add(first + self.c["segments.lifecycle.new_for"])
        for (typ, kind, ts, _) in events:
            if typ in ("purchase", "refund"):
                out.add(ts + W)
            elif typ == "contact" and kind == "complaint":
                out.add(ts + WC)
        return out


class Customer:
    def __init__(self, cid):
        self.cid = cid
        self.events = []
        self.now = None
        self.last = {"lifecycle": None, "value": None, "rfm": None,
                     "dissatisfied": "out"}
        self.seq = 0


def simulate(cust, timeline, end, rules, emit):
    """timeline: [(horizon, event)] in input order. Before folding each
    event, the customer's deadlines <= horizon fire; after the last, those
    <= end."""

    def evaluate(t, cause):
        f = rules.features(cust.events, t)
        for dim, v in rules.values(f):
            if v is not None and v != cust.last[dim]:
                cust.seq += 1
                emit(cust, dim, cust.last[dim], v, t, cause)
                cust.last[dim] = v
        cust.now = t

    def fire_until(limit):
        while True:
            later = [d for d in rules.deadlines(cust.events) if d > cust.now]
            if not later or min(later) > limit:
                return
            evaluate(min(later), "time")

    for horizon, ev in timeline:
        if cust.now is not None:
            fire_until(horizon)
        cust.events.append(ev)
        ts = ev[2]
        evaluate(ts if cust.now is None else max(cust.now, ts), "event")
    fire_until(end)


class SparseMax:
    """Range maximum over a fixed list in O(1) per query."""

    def __init__(self, xs):
        self.levels = [list(xs)]
        k = 1
        while 2 * k <= len(xs):
            prev = self.levels[-1]
            self.levels.append([max(prev[i], prev[i + k])
                                for i in range(len(xs) - 2 * k + 1)])
            k *= 2

    def query(self, lo, hi):
        """max(xs[lo..hi]) inclusive, lo <= hi."""
        n = hi - lo + 1
        j = n.bit_length() - 1
        lv = self.levels[j]
        return max(lv[lo], lv[hi - (1 << j) + 1])


def json_str(s):
    return json.dumps(s, ensure_ascii=False)


def run(stream, cfg, until, out):
    reasons = {}
    valid = []
    records = 0
    for line in read_records(stream):
        records += 1
        try:
            valid.append(decode(line, cfg["input.max_record_bytes"]))
        except Reject as r:
            reasons[r.reason] = reasons.get(r.reason, 0) + 1

    counts = {d: 0 for d in DIMENSIONS}
    summary = {"records": records, "valid": len(valid),
               "rejected": sum(reasons.values()), "rejected_by_reason": reasons,
               "customers": 0, "transitions": counts}
    if not valid:
        return summary

    end = max(ev[3] for ev in valid)
    if until is not None:
        end = max(end, until)
    summary["end"] = format_ts(end)

    # Group per customer, remembering for each event the horizon: the
    # largest ts among valid input events since the customer's previous
    # event, this one included.
    tsmax = SparseMax([ev[3] for ev in valid])
    timelines = {}
    previous = {}
    for i, (typ, kind, cid, ts, units) in enumerate(valid):
        p = previous.get(cid)
        horizon = ts if p is None else tsmax.query(p + 1, i)
        previous[cid] = i
        timelines.setdefault(cid, []).append((horizon, (typ, kind, ts, units)))
    summary["customers"] = len(timelines)

    rules = Rules(cfg)
    write = out.write

    def emit(cust, dim, frm, to, t, cause):
        counts[dim] += 1
        cid = json_str(cust.cid)
        write('{"id":%s,"customer_id":%s,"seq":%d,"dimension":"%s","from":%s,'
              '"to":"%s","at":"%s","cause":"%s"}\n'
              % (json_str("%s:%d" % (cust.cid, cust.seq)), cid, cust.seq, dim,
                 "null" if frm is None else '"%s"' % frm, to, format_ts(t), cause))

    for cid, timeline in timelines.items():
        simulate(Customer(cid), timeline, end, rules, emit)
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description="segd reference implementation")
    ap.add_argument("input", nargs="?", default="-")
    ap.add_argument("--config-json", help="nested JSON config (segd.yaml's shape)")
    ap.add_argument("--config", help="segd YAML config (needs python3-yaml)")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override one key, e.g. segments.lifecycle.new_for=60d")
    ap.add_argument("--until", help="RFC 3339 end of time")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args)
    except (ValueError, OSError) as e:
        print("segref: %s" % e, file=sys.stderr)
        return 3
    until = None
    if args.until is not None:
        until = parse_rfc3339(args.until)
        if until is None:
            print("segref: bad --until %r" % args.until, file=sys.stderr)
            return 2
    try:
        stream = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")
    except OSError as e:
        print("segref: %s" % e, file=sys.stderr)
        return 1
    with stream:
        summary = run(stream, cfg, until, sys.stdout)
    sys.stdout.flush()
    print(json.dumps(summary, sort_keys=True), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
