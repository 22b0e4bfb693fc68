#!/usr/bin/python3
"""gen_rules: seeded random rule sets and small histories for the property
test that holds segd's rules against segrules.py --brute-force.

Why: hand-written cases only cover what their author thought of. A random
rule drawn from the whole grammar of docs/rules.md (memberships, graded and
computed rules, where, count/sum over every selector, recency/age/since
against constants, in [...] and tier(), attr() of strings, numbers and
booleans, if(), has(), arithmetic, concatenation, references to rules above
and to the built-in dimensions) over a random history (every event type,
profile events with null and non-scalar attributes, contacts of every
kind, refunds, late events, several events in one second) finds the
corners nobody listed. Everything is drawn from one random.Random(seed),
so a failing seed is reproduced exactly.

Durations are seconds and minutes, so a history spans a few thousand
seconds and evaluating every second of it stays cheap.

The generator stays inside what docs/rules.md states unambiguously: no
computed rule of type any, no string + duration, no duration scaled by a
double, has() only of a feature, an attribute, a rule or a count, no
ordering comparison of a dimension (see the ambiguity notes of the
reference's report).

Usage: gen_rules.py SEED [--builtins on|off] [--out DIR]
  writes DIR/config.yaml, DIR/history.ndjson and prints the --until value.
"""
import argparse
import datetime
import json
import os
import random

T0 = 1704067200                      # 2024-01-01T00:00:00Z
KINDS = ("visit", "inquiry", "call", "complaint", "support", "feedback")
SELECTORS = ("purchase", "refund", "contact") + tuple("contact." + k for k in KINDS)
BUILTIN_LABELS = {
    "lifecycle": ["prospect", "new", "active", "loyal", "at_risk", "silent", "churned"],
    "value": ["A", "B", "C", "D"],
    "dissatisfied": ["in", "out"],
    "rfm": ["R1F1M1", "R1F1M2", "R2F1M1", "R1F2M2", "R4F0M0", "R3F0M0", "R1F1M0"],
}
LABEL_POOL = ["A", "B", "C", "D", "E", "high_end", "at-risk", "v1.2", "gold+", "low", "x_9"]
WINDOWS = ["30s", "45s", "1m", "90s", "2m", "5m", "10m", "15m", "20m", "30m", "(2 * 5m)",
           "(1h / 4)", "(90s + 30s)"]
DUR_CONSTS = ["0s", "10s", "30s", "1m", "90s", "2m", "3m", "5m", "7m", "10m", "15m",
              "20m", "30m", "(2 * 1m)", "(5m - 30s)", "(1h / 6)"]
NUM_CONSTS = ["0", "1", "2", "3", "5", "10", "0.5", "25.5", "50", "99.9999", "100",
              "250", "0.0001", "1000", "0.1", "3.14159", "1.00001"]
ATTR_KEYS = {
    "plan": ["free", "pro", "business", "Pro", "", "b\u00e9ta \"q\"", "tab\there"],
    "seats": [0, 1, 2, 2.5, 10, 0.1, 3.14159, 1e12, 12.0001, 7],
    "vip": [True, False],
    "score": ["high", 3, True, 0.30000000000000004, -1],
}
AMOUNTS = [0, 1, 9.99, 10, 25.5, 50, 100, 120.5, 250, 0.0001, 499.9999, 30]


class Gen:
    def __init__(self, rnd, builtins):
        self.r = rnd
        self.builtins = builtins
        self.rules = []              # (name, kind, labels) above the current one

    def choice(self, xs):
        return self.r.choice(xs)

    def chance(self, p):
        return self.r.random() < p

    # -- leaves
    def sel(self):
        return self.choice(SELECTORS)

    def G(self):
        c = self.r.random()
        if c < 0.3:
            return "recency"
        if c < 0.45:
            return "age"
        return "since(%s)" % self.choice(SELECTORS)

    def dur(self):
        return self.choice(DUR_CONSTS)

    def num_const(self):
        return self.choice(NUM_CONSTS)

    def refs(self, kinds):
        return [r for r in self.rules if r[1] in kinds]

    # -- typed expressions
    def boolean(self, d):
        r = self.r.random()
        if d <= 0:
            r = r * 0.55
        if r < 0.12:
            return "count(%s, %s) %s %s" % (self.sel(), self.choice(WINDOWS),
                                            self.choice(["<", "<=", ">", ">=", "==", "!="]),
                                            self.choice(["0", "1", "2", "3"]))
        if r < 0.2:
            return "sum(%s, %s) %s %s" % (self.sel(), self.choice(WINDOWS),
                                          self.choice([">=", ">", "<", "=="]),
                                          self.choice(["0", "10", "50", "100", "250.5", "0.0001"]))
        if r < 0.32:
            op = self.choice(["<", "<=", ">", ">=", "==", "!="])
            if self.chance(0.25):
                return "%s %s %s" % (self.dur(), op, self.G())
            return "%s %s %s" % (self.G(), op, self.dur())
        if r < 0.36:
            return "%s in [%s]" % (self.G(), ", ".join(self.dur() for _ in range(self.r.randint(1, 3))))
        if r < 0.42:
            return "has(%s)" % self.choice([self.G(), 'attr("%s")' % self.choice(list(ATTR_KEYS)),
                                            "count(%s, %s)" % (self.sel(), self.choice(WINDOWS))]
                                           + ([self.choice(self.rules)[0]] if self.rules else []))
        if r < 0.5:
            return self.attr_cond()
        if r < 0.55:
            dims = self.dims()
            refs = self.refs(("membership", "graded"))
            if dims or refs:
                if dims and (not refs or self.chance(0.5)):
                    name = self.choice(dims)
                    labels = BUILTIN_LABELS[name]
                else:
                    name, _, labels = self.choice(refs)
                if self.chance(0.3):
                    return "%s in [%s]" % (name, ", ".join(
                        '"%s"' % self.choice(labels) for _ in range(self.r.randint(1, 3))))
                return '%s %s "%s"' % (name, self.choice(["==", "!="]), self.choice(labels))
            return "true"
        if r < 0.6:
            return "%s %s %s" % (self.num(d - 1), self.choice(["<", "<=", ">", ">=", "==", "!="]),
                                 self.num(d - 1))
        if r < 0.63:
            # A bare dimension or graded rule compares only with its own
            # labels: make both sides plain strings.
            return '%s %s %s' % (unlabelled(self.string(d - 1)),
                                 self.choice(["==", "!=", "<", ">="]),
                                 unlabelled(self.string(d - 1)))
        if r < 0.72:
            return "not %s" % self.paren_bool(d - 1)
        if r < 0.84:
            return "%s and %s" % (self.paren_bool(d - 1), self.paren_bool(d - 1))
        if r < 0.95:
            return "%s or %s" % (self.paren_bool(d - 1), self.paren_bool(d - 1))
        if r < 0.97:
            return self.choice(["true", "false"])
        return "if(%s, %s, %s)" % (self.boolean(d - 1), self.boolean(d - 1), self.boolean(d - 1))

    def paren_bool(self, d):
        e = self.boolean(d)
        return "(%s)" % e if " " in e else e

    def dims(self):
        return [d for d in ("lifecycle", "value", "rfm", "dissatisfied") if self.builtins]

    def attr_cond(self):
        key = self.choice(list(ATTR_KEYS))
        c = self.r.random()
        if c < 0.2:
            return 'attr("vip")'
        if c < 0.45:
            v = self.choice(ATTR_KEYS[key])
            return 'attr("%s") %s %s' % (key, self.choice(["==", "!="]), lit(v))
        if c < 0.7:
            return 'attr("%s") %s %s' % (key, self.choice(["<", ">=", ">"]),
                                         self.choice(["2", "0.1", "3.14159", "1000000000000", '"m"']))
        if c < 0.85:
            return 'attr("%s") in [%s]' % (key, ", ".join(
                lit(self.choice(ATTR_KEYS[key])) for _ in range(self.r.randint(1, 3))))
        return 'attr("seats") * 2 >= %s' % self.choice(["4", "5", "0.2", "6.28318"])

    def num(self, d):
        r = self.r.random()
        if d <= 0:
            r = r * 0.5
        if r < 0.18:
            return "count(%s, %s)" % (self.sel(), self.choice(WINDOWS))
        if r < 0.3:
            return "sum(%s, %s)" % (self.sel(), self.choice(WINDOWS))
        if r < 0.42:
            return self.num_const()
        if r < 0.5:
            return "tier(%s, [%s])" % (self.G(), ", ".join(
                self.dur() for _ in range(self.r.randint(1, 3))))
        if r < 0.55:
            refs = self.refs(("num",))
            if refs:
                return self.choice(refs)[0]
            return "count(%s, %s)" % (self.sel(), self.choice(WINDOWS))
        if r < 0.6:
            return "(%s / %s)" % (self.choice(["1m", "5m", "1h", "90s"]),
                                  self.choice(["1m", "7s", "30s", "1h"]))
        if r < 0.65:
            return "tier(%s, [%s])" % (self.num(d - 1), ", ".join(
                self.num_const() for _ in range(self.r.randint(1, 3))))
        if r < 0.88:
            return "(%s %s %s)" % (self.num(d - 1), self.choice(["+", "-", "*", "/"]),
                                   self.num(d - 1))
        if r < 0.93:
            return "-%s" % self.num(d - 1)
        return "if(%s, %s, %s)" % (self.boolean(d - 1), self.num(d - 1), self.num(d - 1))

    def string(self, d):
        r = self.r.random()
        if d <= 0:
            r = r * 0.3
        if r < 0.2:
            return self.choice(['"a"', '"R"', '""', '"x-"', '"\\"q\\""', '"\u00e9t\u00e9"',
                                '"tab\\t"'])
        if r < 0.3:
            refs = self.refs(("membership", "graded", "str"))
            if refs:
                return self.choice(refs)[0]
            return '"r"'
        if r < 0.4 and self.builtins:
            return self.choice(["lifecycle", "value", "rfm", "dissatisfied"])
        if r < 0.55:
            return '("%s" + attr("%s"))' % (self.choice(["p:", "", "k="]),
                                            self.choice(list(ATTR_KEYS)))
        if r < 0.8:
            return '(%s + %s)' % (self.string(d - 1), self.num(d - 1))
        if r < 0.9:
            return '(%s + %s)' % (self.string(d - 1), self.string(d - 1))
        if r < 0.95:
            return '(%s + %s)' % (self.string(d - 1), self.paren_bool(d - 1))
        return "if(%s, %s, %s)" % (self.boolean(d - 1), self.string(d - 1), self.string(d - 1))

    # -- rules
    def rule(self, i):
        name = "r%d_%s" % (i, self.choice(["a", "intent", "vip", "x", "grade", "val"]))
        lines = ["    %s:" % name]
        if self.chance(0.1):
            lines.append("      description: generated rule %d" % i)
        if self.chance(0.3):
            lines.append("      where: %s" % yaml_expr(self.boolean(2)))
        c = self.r.random()
        if c < 0.35:
            lines.append("      when: %s" % yaml_expr(self.boolean(3)))
            self.rules.append((name, "membership", ["in", "out"]))
        elif c < 0.7:
            lines.append("      cases:")
            labels = []
            for _ in range(self.r.randint(1, 4)):
                lab = self.choice(LABEL_POOL)
                labels.append(lab)
                lines.append("        - %s: %s" % (lab, yaml_expr(self.boolean(3))))
            if self.chance(0.7):
                lab = self.choice(LABEL_POOL)
                labels.append(lab)
                lines.append("      else: %s" % lab)
            self.rules.append((name, "graded", sorted(set(labels))))
        elif c < 0.85:
            lines.append("      value: %s" % yaml_expr(self.num(3)))
            self.rules.append((name, "num", None))
        else:
            lines.append("      value: %s" % yaml_expr(self.string(3)))
            self.rules.append((name, "str", None))
        return lines


def unlabelled(e):
    return '(%s + "")' % e if e.replace("_", "").isalnum() else e


def lit(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    if isinstance(v, float) and (v != int(v) or abs(v) >= 1e10):
        r = repr(v)
        if "e" in r:
            return "%d" % v
        return r
    return str(int(v)) if isinstance(v, float) else str(v)


def yaml_expr(e):
    """A YAML scalar for expression e: plain when that is safe, else
    single-quoted (docs/rules.md, "YAML and quotes")."""
    if e[0].isalpha() and ": " not in e and " #" not in e and "\t" not in e \
            and not e.endswith(":") and "'" not in e and '"' not in e[:1]:
        return e
    return "'%s'" % e.replace("'", "''")


def builtin_settings(rnd, on):
    if not on:
        return ["  lifecycle:", "    enabled: false", "  value:", "    enabled: false",
                "  rfm:", "    enabled: false", "  dissatisfied:", "    enabled: false"]
    w = rnd.choice([300, 600, 900])
    return [
        "  window: %ds" % w,
        "  lifecycle:",
        "    new_for: %ds" % rnd.choice([60, 120, 300]),
        "    at_risk_after: 300s",
        "    silent_after: %ds" % rnd.choice([600, 900]),
        "    churned_after: 1200s",
        "    loyal_min_purchases: %d" % rnd.choice([2, 3]),
        "  value:",
        "    a_min: 500",
        "    b_min: 100",
        "  rfm:",
        "    recency: [%ds, 600s, 1200s]" % rnd.choice([120, 300]),
        "    frequency: [2, 3, 5]",
        "    monetary: [50, 200, 500]",
        "  dissatisfied:",
        "    window: %ds" % rnd.choice([300, 600]),
        "    min_complaints: 2",
    ]


def ts_text(rnd, ts):
    if rnd.random() < 0.15:
        return ts * 1000 + rnd.choice([0, 999])
    return (datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=ts)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def history(rnd, n_customers, n_events):
    """NDJSON lines and the largest ts."""
    cids = ["c%d" % i for i in range(1, n_customers + 1)]
    t = T0
    out = []
    top = T0
    for _ in range(n_events):
        t += rnd.choice([0, 0, 1, 5, 30, 60, 90, 120, 200, 300, 450])
        ts = t
        if rnd.random() < 0.15:
            ts = t - rnd.randint(1, 700)             # late for its customer, often
        top = max(top, ts)
        cid = rnd.choice(cids)
        r = rnd.random()
        if r < 0.3:
            e = {"type": "purchase", "customer_id": cid, "ts": ts_text(rnd, ts),
                 "amount": rnd.choice(AMOUNTS)}
        elif r < 0.4:
            e = {"type": "refund", "customer_id": cid, "ts": ts_text(rnd, ts),
                 "amount": rnd.choice(AMOUNTS)}
        elif r < 0.8:
            e = {"type": "contact", "customer_id": cid, "ts": ts_text(rnd, ts),
                 "kind": rnd.choice(KINDS)}
            if rnd.random() < 0.2:
                e["amount"] = rnd.choice(AMOUNTS)
        else:
            e = {"type": "profile", "customer_id": cid, "ts": ts_text(rnd, ts)}
        if e["type"] == "profile" or rnd.random() < 0.1:
            attrs = {}
            for key in rnd.sample(sorted(ATTR_KEYS), rnd.randint(1, 3)):
                c = rnd.random()
                if c < 0.12:
                    attrs[key] = None
                elif c < 0.18:
                    attrs[key] = rnd.choice([{}, {"a": 1}, [1, 2], []])
                elif c < 0.21:
                    attrs[key] = rnd.choice(["y" * 1024, "z" * 1025])
                else:
                    attrs[key] = rnd.choice(ATTR_KEYS[key])
            if rnd.random() < 0.1:
                attrs["Plan"] = "free"                # keys are case-sensitive
            e["attrs"] = attrs
        out.append(json.dumps(e, ensure_ascii=False, separators=(",", ":")))
        if rnd.random() < 0.03:
            out.append(json.dumps({"type": "purchase", "customer_id": cid,
                                   "ts": ts_text(rnd, ts)}))      # rejected: no amount
    return out, top


def case(seed, builtins=None):
    """(config_text, history_lines, until_rfc3339, builtins_on)."""
    rnd = random.Random(seed)
    if builtins is None:
        builtins = rnd.random() < 0.5
    g = Gen(rnd, builtins)
    lines = ["segments:"] + builtin_settings(rnd, builtins) + ["  rules:"]
    for i in range(rnd.randint(3, 7)):
        lines += g.rule(i)
    hist, top = history(rnd, rnd.randint(1, 3), rnd.randint(6, 22))
    until = top + rnd.choice([0, 300, 900, 1500])
    until_text = (datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=until)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    return "\n".join(lines) + "\n", hist, until_text, builtins


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("seed", type=int)
    ap.add_argument("--builtins", choices=("on", "off"))
    ap.add_argument("--out", default=".")
    a = ap.parse_args()
    b = None if a.builtins is None else a.builtins == "on"
    cfg, hist, until, _ = case(a.seed, b)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "config.yaml"), "w", encoding="utf-8") as f:
        f.write(cfg)
    with open(os.path.join(a.out, "history.ndjson"), "w", encoding="utf-8") as f:
        f.write("\n".join(hist) + "\n")
    print(until)


if __name__ == "__main__":
    main()
