#!/usr/bin/python3
"""Pins the rule reference (segrules.py) to docs/rules.md.

Why: segrules.py is the yardstick the property and dataset tests hold segd
against, so it must itself be right. Every expected transition below was
worked out by hand from the doc (instants counted from T0 in seconds, not
produced by running anything). Each scenario runs in both modes, candidate
and brute force, and both must give the expected lines.

Run: /usr/bin/python3 tests/reference/test_segrules.py
"""
import io
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import segref  # noqa: E402
import segrules  # noqa: E402

T0 = 1704067200                       # 2024-01-01T00:00:00Z
OFF = """segments:
  lifecycle: {enabled: false}
  value: {enabled: false}
  rfm: {enabled: false}
  dissatisfied: {enabled: false}
"""
ON = """segments:
  window: 600s
  lifecycle: {new_for: 120s, at_risk_after: 300s, silent_after: 600s, churned_after: 1200s}
  dissatisfied: {window: 600s}
"""


def iso(t):
    return segref.format_ts(t)


def E(typ, cid, dt, **kw):
    d = {"type": typ, "customer_id": cid, "ts": iso(T0 + dt)}
    d.update(kw)
    return d


def P(cid, dt, amount=10, **kw):
    return E("purchase", cid, dt, amount=amount, **kw)


def C(cid, dt, kind="visit", **kw):
    return E("contact", cid, dt, kind=kind, **kw)


def PROF(cid, dt, attrs):
    return E("profile", cid, dt, attrs=attrs)


def load_text(text):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        return segrules.load(path)
    finally:
        os.unlink(path)


def rules_yaml(rules, base=OFF):
    return base + "  rules:\n" + "".join("    " + l + "\n" for l in rules.strip("\n").split("\n"))


def replay(rules, events, until=None, base=OFF, raw_lines=None):
    """Lines of both modes (asserted equal), and the brute-force summary."""
    cfg, rs = load_text(rules_yaml(rules, base))
    if raw_lines is None:
        raw_lines = [json.dumps(e) for e in events]
    data = ("\n".join(raw_lines) + "\n").encode("utf-8")
    u = None if until is None else T0 + until
    outs = []
    for brute in (False, True):
        out = io.StringIO()
        summary = segrules.run(io.BytesIO(data), cfg, rs, u, out, brute)
        outs.append(out.getvalue().splitlines())
    assert outs[0] == outs[1], "candidate and brute force differ:\n%s\n%s" % tuple(
        "\n".join(o) for o in outs)
    return outs[1], summary


def T(cid, rows):
    """Expected lines from (dimension, from, to, dt, cause) rows."""
    out = []
    for seq, (dim, frm, to, dt, cause) in enumerate(rows, 1):
        out.append('{"id":%s,"customer_id":%s,"seq":%d,"dimension":"%s","from":%s,'
                   '"to":%s,"at":"%s","cause":"%s"}'
                   % (json.dumps("%s:%d" % (cid, seq)), json.dumps(cid), seq, dim,
                      "null" if frm is None else json.dumps(frm, ensure_ascii=False),
                      "null" if to is None else json.dumps(to, ensure_ascii=False),
                      iso(T0 + dt), cause))
    return out


class Windows(unittest.TestCase):
    RULE = "m:\n  when: count(purchase, 10m) >= 1"

    def test_event_leaves_exactly_at_ts_plus_window(self):
        lines, _ = replay(self.RULE, [P("a", 0)], until=600)
        self.assertEqual(lines, T("a", [("m", "out", "in", 0, "event"),
                                        ("m", "in", "out", 600, "time")]))

    def test_one_second_before_the_exit(self):
        lines, _ = replay(self.RULE, [P("a", 0)], until=599)
        self.assertEqual(lines, T("a", [("m", "out", "in", 0, "event")]))

    def test_deadline_fires_before_an_event_at_the_same_second(self):
        # The old purchase leaves at 600 (time) before the new one, dated
        # exactly 600, is folded (event).
        lines, _ = replay(self.RULE, [P("a", 0), P("a", 600)])
        self.assertEqual(lines, T("a", [("m", "out", "in", 0, "event"),
                                        ("m", "in", "out", 600, "time"),
                                        ("m", "out", "in", 600, "event")]))

    def test_sum_counts_amounts_of_contacts_and_refunds(self):
        rules = ('s:\n  value: sum(contact, 1m) + sum(refund, 1m) * 100\n'
                 'k:\n  value: count(contact.call, 1m)')
        lines, _ = replay(rules, [C("a", 0, "call", amount=2.5), C("a", 10, "visit"),
                                  E("refund", "a", 20, amount=0.01)], until=100)
        self.assertEqual(lines, T("a", [
            ("s", None, "2.5", 0, "event"), ("k", None, "1", 0, "event"),
            ("s", "2.5", "3.5", 20, "event"),          # 2.5 + 0 + 0.01 * 100
            ("s", "3.5", "1", 60, "time"), ("k", "1", "0", 60, "time"),
            ("s", "1", "0", 80, "time"),
        ]))


class GrowingFeatures(unittest.TestCase):
    def one(self, cond, until=400):
        lines, _ = replay("m:\n  when: " + cond, [P("a", 0)], until=until)
        return [(json.loads(l)["to"], json.loads(l)["at"]) for l in lines]

    def test_lt_and_le(self):
        self.assertEqual(self.one("recency < 5m"), [("in", iso(T0)), ("out", iso(T0 + 300))])
        self.assertEqual(self.one("recency <= 5m"), [("in", iso(T0)), ("out", iso(T0 + 301))])

    def test_gt_and_ge(self):
        self.assertEqual(self.one("recency > 5m"), [("in", iso(T0 + 301))])
        self.assertEqual(self.one("recency >= 5m"), [("in", iso(T0 + 300))])

    def test_eq_and_ne(self):
        self.assertEqual(self.one("recency == 5m"),
                         [("in", iso(T0 + 300)), ("out", iso(T0 + 301))])
        self.assertEqual(self.one("recency != 5m"),
                         [("in", iso(T0)), ("out", iso(T0 + 300)), ("in", iso(T0 + 301))])

    def test_constant_on_the_left(self):
        self.assertEqual(self.one("5m > recency"), [("in", iso(T0)), ("out", iso(T0 + 300))])
        self.assertEqual(self.one("5m >= recency"), [("in", iso(T0)), ("out", iso(T0 + 301))])

    def test_in_list(self):
        self.assertEqual(self.one("recency in [1m, (2 * 1m)]"), [
            ("in", iso(T0 + 60)), ("out", iso(T0 + 61)),
            ("in", iso(T0 + 120)), ("out", iso(T0 + 121))])

    def test_tier(self):
        lines, _ = replay('v:\n  where: has(recency)\n  value: ("R" + (tier(recency, [1m, 3m]) + 1))',
                          [P("a", 0)], until=500)
        self.assertEqual(lines, T("a", [("v", None, "R1", 0, "event"),
                                        ("v", "R1", "R2", 60, "time"),
                                        ("v", "R2", "R3", 180, "time")]))

    def test_age_and_since(self):
        rules = ("n:\n  when: age < 2m\n"
                 "s:\n  when: since(contact.complaint) < 1m")
        lines, _ = replay(rules, [P("a", 0), P("a", 100), C("a", 110, "complaint")], until=300)
        self.assertEqual(lines, T("a", [("n", "out", "in", 0, "event"),
                                        ("s", "out", "in", 110, "event"),
                                        ("n", "in", "out", 120, "time"),
                                        ("s", "in", "out", 170, "time")]))


class Absent(unittest.TestCase):
    RULES = ("notlt:\n  when: not (recency < 30d)\n"
             "notlt2:\n  when: not recency < 30d\n"
             "ge:\n  when: recency >= 30d\n"
             "ne:\n  when: recency != 30d\n"
             "hasr:\n  when: has(recency) or has(attr(\"k\"))\n"
             "inl:\n  when: attr(\"k\") in [\"x\"] or not (attr(\"k\") != \"x\")\n"
             "arith:\n  where: true\n  value: attr(\"k\") * 2")

    def test_never_bought(self):
        lines, _ = replay(self.RULES, [C("a", 0)], until=100)
        self.assertEqual(lines, T("a", [("notlt", "out", "in", 0, "event"),
                                        ("notlt2", "out", "in", 0, "event"),
                                        ("inl", "out", "in", 0, "event")]))

    def test_attr_of_another_type(self):
        # A string attribute times 2 has no value; compared with a number
        # it is false; used as a condition it is false.
        rules = ('m:\n  value: attr("k") * 2\n'
                 'c:\n  when: attr("k") > 1 or attr("k")\n'
                 'b:\n  when: attr("b")')
        lines, _ = replay(rules, [PROF("a", 0, {"k": "s", "b": 1}), PROF("a", 5, {"k": 1.5, "b": True})])
        self.assertEqual(lines, T("a", [("m", None, "3", 5, "event"),
                                        ("c", "out", "in", 5, "event"),
                                        ("b", "out", "in", 5, "event")]))

    def test_where_and_no_else(self):
        rules = ("g:\n  where: count(contact, 1m) >= 1\n  cases:\n    - hi: count(contact, 1m) >= 2\n"
                 "h:\n  cases:\n    - one: count(contact, 1m) == 1\n"
                 "w:\n  where: count(contact, 1m) >= 1\n  when: false")
        lines, _ = replay(rules, [C("a", 0), C("a", 10)], until=100)
        self.assertEqual(lines, T("a", [
            ("h", None, "one", 0, "event"), ("w", None, "out", 0, "event"),
            ("g", None, "hi", 10, "event"), ("h", "one", None, 10, "event"),
            # 60: the first contact leaves, one is left: g has no case
            # that holds (and no else), h holds again
            ("g", "hi", None, 60, "time"), ("h", None, "one", 60, "time"),
            ("h", "one", None, 70, "time"), ("w", "out", None, 70, "time")]))

    def test_division_by_zero(self):
        lines, _ = replay('d:\n  value: 1 / count(purchase, 1m)', [C("a", 0), P("a", 10)], until=100)
        self.assertEqual(lines, T("a", [("d", None, "1", 10, "event"),
                                        ("d", "1", None, 70, "time")]))


class Printing(unittest.TestCase):
    CASES = [
        ("1 / 3", "0.3333333333333333"), ("10 / 4", "2.5"), ("2 * 12.5", "25"),
        ("0.1 + 0.2", "0.3"), ("1 / 3 * 3", "1"), ("0.001 * 0.01", "1e-05"),
        ("-0.0001", "-0.0001"), ("1000", "1000"), ("99.90", "99.9"),
        ("100000000000000 * 10000000", "1e+21"), ("2 / 3", "0.6666666666666666"),
        ("0.12345", "0.12345"), ("1h / 1m", "60"), ("1m / 7s", "8.571428571428571"),
        ('"b" + true', "btrue"), ('"n" + (0 - 2.5)', "n-2.5"), ('"x" + 1 + 2', "x12"),
        ('1 + 2 + "x"', "3x"), ('"q\\"\\\\\\n\\t"', 'q"\\\n\t'),
    ]

    def test_computed_values(self):
        rules = "".join("v%d:\n  value: '%s'\n" % (i, e.replace("'", "''"))
                        for i, (e, _) in enumerate(self.CASES))
        lines, _ = replay(rules, [C("a", 0)])
        got = [json.loads(l)["to"] for l in lines]
        self.assertEqual(got, [want for _, want in self.CASES])

    def test_doc_examples(self):
        rules = ('a:\n  where: has(recency)\n  value: ("R" + (tier(recency, [90d, 180d, 365d]) + 1))\n'
                 'b:\n  where: has(recency)\n  value: \'"R" + tier(recency, [90d]) + 1\'')
        lines, _ = replay(rules, [P("a", 0)])
        self.assertEqual([json.loads(l)["to"] for l in lines], ["R1", "R01"])

    def test_durations(self):
        f = segrules.fmt_duration
        self.assertEqual([f(90 * 86400), f(36 * 3600), f(90), f(0), f(14 * 86400), f(-3600)],
                         ["90d", "36h", "90s", "0s", "2w", "-1h"])

    def test_doubles(self):
        f = segrules.fmt_double
        self.assertEqual([f(0.1), f(1 / 3), f(1e21), f(3.0), f(1e-5), f(123456789012.5)],
                         ["0.1", "0.3333333333333333", "1e+21", "3", "1e-05", "123456789012.5"])

    def test_exact_and_double_comparisons(self):
        rules = ('a:\n  when: 0.1 + 0.2 == 0.3\n'
                 'b:\n  when: 1 / 3 * 3 == 1\n'
                 'c:\n  when: attr("x") == 0.1 and attr("y") == 3.14159\n'
                 'd:\n  when: attr("z") == 0.3\n'
                 'e:\n  when: attr("z") > 0.3 and attr("big") == 20000000000\n'
                 'f:\n  when: 1.00001 > 1 and 1.00001 < 1.0001')
        lines, _ = replay(rules, [PROF("a", 0, {"x": 0.1, "y": 3.14159, "z": 0.30000000000000004,
                                                "big": 2e10})])
        self.assertEqual([json.loads(l)["dimension"] for l in lines], ["a", "b", "c", "e", "f"])

    def test_attr_numbers(self):
        n = segrules.attr_number
        self.assertEqual([n(0.1), n(12.5), n(3.14159), n(1e10), n(1e10 + 1), n(-0.0)],
                         [("N", 1000), ("N", 125000), ("F", 3.14159), ("N", 10 ** 14),
                          ("F", 1e10 + 1), ("N", 0)])


class Attributes(unittest.TestCase):
    RULE = 'p:\n  value: ("" + attr("plan"))'

    def test_latest_ts_wins_with_a_late_event(self):
        lines, _ = replay(self.RULE, [PROF("a", 100, {"plan": "pro"}),
                                      PROF("a", 50, {"plan": "free"}),      # late, older
                                      PROF("a", 100, {"plan": "biz"}),      # tie: later wins
                                      PROF("a", 90, {"plan": None})])       # late null: older
        self.assertEqual(lines, T("a", [("p", None, "pro", 100, "event"),
                                        ("p", "pro", "biz", 100, "event")]))

    def test_null_unsets_and_non_scalars_are_ignored(self):
        lines, _ = replay(self.RULE, [
            PROF("a", 0, {"plan": "pro"}),
            PROF("a", 1, {"plan": {"x": 1}}),
            PROF("a", 2, {"plan": [1]}),
            PROF("a", 3, {"plan": "z" * 1025}),
            PROF("a", 4, {"plan": None}),
            PROF("a", 5, {"plan": "y" * 1024}),
            P("a", 6, attrs={"Plan": "lower", "plan": "from-purchase"}),
            C("a", 7, "call", attrs={"plan": {"nested": "x"}, "other": 1}),
        ])
        self.assertEqual(lines, T("a", [("p", None, "pro", 0, "event"),
                                        ("p", "pro", None, 4, "event"),
                                        ("p", None, "y" * 1024, 5, "event"),
                                        ("p", "y" * 1024, "from-purchase", 6, "event")]))

    def test_profile_events(self):
        # A profile carries only attrs: an amount on it is ignored, not
        # validated; it is no purchase and no contact.
        lines, summary = replay('m:\n  when: has(recency) or has(since(contact))\n'
                                'q:\n  cases:\n    - x: attr("v")\n  else: E',
                                [E("profile", "a", 0, amount=-5, attrs={"v": True}),
                                 E("profile", "b", 0)])
        self.assertEqual(summary["rejected"], 0)
        self.assertEqual(lines, T("a", [("q", None, "x", 0, "event")]) +
                         T("b", [("q", None, "E", 0, "event")]))


class LateEvents(unittest.TestCase):
    def test_late_event_is_evaluated_at_the_clock(self):
        # a's contact leaves at 600 (time); b's event at 700 moves global
        # time; a's late contact (ts 50) is folded at a's clock 600, where it
        # is inside the window (0, 600], and leaves at 650.
        lines, _ = replay("m:\n  when: count(contact, 10m) >= 1",
                          [C("a", 0), C("b", 700), C("a", 50)])
        self.assertEqual(lines[:4], T("a", [("m", "out", "in", 0, "event"),
                                            ("m", "in", "out", 600, "time"),
                                            ("m", "out", "in", 600, "event"),
                                            ("m", "in", "out", 650, "time")]))

    def test_a_silent_candidate_instant_moves_the_clock(self):
        # Rule c never holds, but its instant 300 (recency < 5m) fires and
        # moves a's clock there; the late contact is evaluated at 300.
        rules = ("c:\n  when: recency < 5m and count(contact, 1d) > 5\n"
                 "b:\n  value: count(contact, 1d)")
        lines, _ = replay(rules, [P("a", 0), P("b", 400), C("a", 100)])
        self.assertEqual([l for l in lines if '"a"' in l],
                         T("a", [("b", None, "0", 0, "event"), ("b", "0", "1", 300, "event")]))

    def test_without_candidates_the_late_event_is_at_its_clock(self):
        rules = "b:\n  value: count(contact, 1d)"
        lines, _ = replay(rules, [P("a", 0), P("b", 400), C("a", 100), C("a", 50)])
        self.assertEqual([l for l in lines if '"a"' in l],
                         T("a", [("b", None, "0", 0, "event"), ("b", "0", "1", 100, "event"),
                                 ("b", "1", "2", 100, "event")]))

    def test_late_purchase_moves_first_purchase(self):
        lines, _ = replay("n:\n  when: age >= 2m", [P("a", 100), P("b", 110), P("a", 0)],
                          until=300)
        self.assertEqual([l for l in lines if '"a"' in l],
                         T("a", [("n", "out", "in", 120, "time")]))
        # a's clock is 100 when the late purchase (ts 0) arrives: age 100,
        # the instant 0 + 2m = 120 comes next.


class Builtins(unittest.TestCase):
    def test_rules_after_builtins_and_reading_them(self):
        rules = ('vip_at_risk:\n  when: value == "A" and lifecycle in ["at_risk", "silent"]\n'
                 'lc:\n  value: ("L:" + lifecycle)')
        lines, _ = replay(rules, [P("a", 0, 2000)], until=700, base=ON)
        got = [(json.loads(l)["dimension"], json.loads(l)["to"], json.loads(l)["at"])
               for l in lines]
        self.assertEqual(got, [
            ("lifecycle", "new", iso(T0)), ("value", "A", iso(T0)), ("rfm", "R1F1M4", iso(T0)),
            ("lc", "L:new", iso(T0)),
            ("lifecycle", "active", iso(T0 + 120)), ("lc", "L:active", iso(T0 + 120)),
            ("lifecycle", "at_risk", iso(T0 + 300)), ("vip_at_risk", "in", iso(T0 + 300)),
            ("lc", "L:at_risk", iso(T0 + 300)),
            # 600: R = 600 >= silent_after, and the purchase leaves the
            # 600 s window: value D, so vip_at_risk is out.
            ("lifecycle", "silent", iso(T0 + 600)), ("value", "D", iso(T0 + 600)),
            ("rfm", "R1F0M0", iso(T0 + 600)), ("vip_at_risk", "out", iso(T0 + 600)),
            ("lc", "L:silent", iso(T0 + 600)),
        ])


class SameAsSegref(unittest.TestCase):
    def test_builtins_only_equal_segref_with_late_events(self):
        # With no rules, the time machinery here (horizons, clocks, the
        # built-ins' candidate instants) must give segref.py's output.
        # (Only kinds segref knows: it predates contact.call.)
        import random
        rnd = random.Random(7)
        lines, t = [], T0
        for _ in range(1500):
            t += rnd.choice([0, 60, 3600, 86400, 20 * 86400]) if rnd.random() < 0.2 else 0
            ts = t - rnd.randint(0, 60 * 86400) if rnd.random() < 0.15 else t
            cid = "m%d" % rnd.randrange(12)
            r = rnd.random()
            if r < 0.5:
                e = {"type": "purchase", "amount": rnd.choice([5, 120, 300, 1000.5])}
            elif r < 0.6:
                e = {"type": "refund", "amount": rnd.choice([5, 300])}
            else:
                e = {"type": "contact", "kind": rnd.choice(["complaint", "visit", "inquiry"])}
            e.update({"customer_id": cid, "ts": iso(ts)})
            lines.append(json.dumps(e))
        data = ("\n".join(lines) + "\n").encode()
        cfg = segref.load_config(segref.argparse.Namespace(config=None, config_json=None, set=[]))
        want = io.StringIO()
        segref.run(io.BytesIO(data), cfg, T0 + 800 * 86400, want)
        got = io.StringIO()
        segrules.run(io.BytesIO(data), cfg, segrules.RuleSet(cfg, []), T0 + 800 * 86400, got)
        self.assertGreater(len(want.getvalue().splitlines()), 500)
        self.assertEqual(sorted(got.getvalue().splitlines()), sorted(want.getvalue().splitlines()))


class BruteForceFindsHoles(unittest.TestCase):
    def test_time_dependence_hidden_in_has(self):
        # recency / 1d is 0 only at the purchase's second: 1 / 0 has no
        # value there and has a value one second later. The doc lets a
        # growing feature appear anywhere inside has(), so no candidate
        # instant covers this; brute force sees the change at ts + 1.
        cfg, rs = load_text(rules_yaml("h:\n  when: has(1 / (recency / 1d))"))
        data = (json.dumps(P("a", 0)) + "\n").encode()
        out = io.StringIO()
        s = segrules.run(io.BytesIO(data), cfg, rs, T0 + 10, out, True)
        self.assertEqual(s["non_candidate_changes"], 1)
        self.assertEqual(json.loads(out.getvalue())["at"], iso(T0 + 1))


INVALID_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "rules",
                           "invalid")


class Invalid(unittest.TestCase):
    def test_each_error_class_is_rejected(self):
        # tests/data/rules/invalid: one file per error class of the doc's
        # "Errors" list; test_rules_reference.sh runs segd check-config on
        # the same files.
        names = sorted(f for f in os.listdir(INVALID_DIR) if f.endswith(".yaml"))
        self.assertGreaterEqual(len(names), 40)
        for name in names:
            with self.subTest(name):
                with self.assertRaises(segrules.ConfigError) as cm:
                    segrules.load(os.path.join(INVALID_DIR, name))
                self.assertRegex(str(cm.exception), r"\.yaml:\d+:\d+: ")

    def test_named_like_a_switched_off_builtin(self):
        load_text(rules_yaml("value:\n  when: true", OFF))

    def test_256_rules(self):
        load_text(rules_yaml("".join("r%d:\n  when: true\n" % i for i in range(256))))

    def test_position_points_at_the_token(self):
        with self.assertRaises(segrules.ConfigError) as cm:
            load_text(rules_yaml("r:\n  when: count(purchase, 1d) > 3 and recency > age"))
        # "    r:" is line 7 of the file; the expression starts at column 13
        # of line 8, `age` is 38 characters into it.
        self.assertIn(":8:51: ", str(cm.exception))

    def test_valid_corner_cases(self):
        for rules in ["r:\n  when: not recency < 30d",
                      "r:\n  when: has(recency + 1d)",
                      "r:\n  when: 90d > since(contact)",
                      "r:\n  when: count(contact, (4 * 1w)) > 0",
                      "r:\n  when: 1 in []",
                      "r:\n  value: tier(recency, [1d, 2d])",
                      "r:\n  value: attr(\"seats\") * 2",
                      "r:\n  when: attr(\"a\") < attr(\"b\")",
                      "r:\n  value: '\"R\" + (tier(recency, [90d]) + 1)'",
                      "r:\n  value: >-\n    \"R\" + 1",
                      "r:\n  when: recency < 1w / 2",
                      "r:\n  cases:\n    - A: true\n    - A: false\n  else: at-risk.v1+"]:
            with self.subTest(rules):
                load_text(rules_yaml(rules))


if __name__ == "__main__":
    unittest.main()
