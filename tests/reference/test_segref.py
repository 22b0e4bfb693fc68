#!/usr/bin/python3
"""Pins the reference implementation (segref.py) to the written rules.

Why: segref is the yardstick the integration tests hold segd against on
the public datasets, so it must itself be right. Every expected transition
below was worked out by hand from issue 2 and the team's time semantics
(dates counted on a calendar, not produced by running anything).

Run: /usr/bin/python3 tests/reference/test_segref.py
"""
import io
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import segref  # noqa: E402


def ev(typ, cid, ts, amount=None, **extra):
    d = {"type": typ, "customer_id": cid, "ts": ts}
    if amount is not None:
        d["amount"] = amount
    d.update(extra)
    return d


def P(cid, ts, amount):
    return ev("purchase", cid, ts, amount)


def REF(cid, ts, amount):
    return ev("refund", cid, ts, amount)


def C(cid, ts, kind):
    return ev("contact", cid, ts, kind=kind)


def replay(events, until=None, sets=(), raw_lines=None):
    """Runs segref on events (dicts, or raw str lines); returns (lines,
    summary)."""
    if raw_lines is None:
        raw_lines = [json.dumps(e) for e in events]
    data = ("\n".join(raw_lines) + "\n").encode("utf-8")
    args = segref.argparse.Namespace(config=None, config_json=None,
                                     set=list(sets))
    cfg = segref.load_config(args)
    u = segref.parse_rfc3339(until) if until else None
    out = io.StringIO()
    summary = segref.run(io.BytesIO(data), cfg, u, out)
    return out.getvalue().splitlines(), summary


def T(cid, rows):
    """Expected lines for one customer from (dimension, from, to, at,
    cause) rows; seq counts from 1 in row order."""
    lines = []
    for seq, (dim, frm, to, at, cause) in enumerate(rows, 1):
        lines.append(
            '{"id":"%s:%d","customer_id":"%s","seq":%d,"dimension":"%s",'
            '"from":%s,"to":"%s","at":"%sT00:00:00Z","cause":"%s"}'
            % (cid, seq, cid, seq, dim,
               "null" if frm is None else '"%s"' % frm, to, at, cause))
    return lines


def of(lines, cid):
    return [l for l in lines if json.loads(l)["customer_id"] == cid]


class SinglePurchase(unittest.TestCase):
    def test_whole_lifecycle_of_one_purchase(self):
        # 1997-01-01 + 30d = 01-31, +45d = 02-15, +90d = 04-01,
        # +180d = 06-30, +365d = 1998-01-01 (1997 is not a leap year).
        lines, _ = replay([P("00001", "1997-01-01T00:00:00Z", 11.77)],
                          until="1998-06-30T00:00:00Z")
        self.assertEqual(lines, T("00001", [
            ("lifecycle", None, "new", "1997-01-01", "event"),
            ("value", None, "C", "1997-01-01", "event"),
            ("rfm", None, "R1F1M1", "1997-01-01", "event"),
            ("lifecycle", "new", "active", "1997-01-31", "time"),
            ("lifecycle", "active", "at_risk", "1997-02-15", "time"),
            ("lifecycle", "at_risk", "silent", "1997-04-01", "time"),
            ("rfm", "R1F1M1", "R2F1M1", "1997-04-01", "time"),
            ("rfm", "R2F1M1", "R3F1M1", "1997-06-30", "time"),
            ("lifecycle", "silent", "churned", "1998-01-01", "time"),
            ("value", "C", "D", "1998-01-01", "time"),
            ("rfm", "R3F1M1", "R4F0M0", "1998-01-01", "time"),
        ]))

    def test_exact_output_line(self):
        lines, _ = replay([P("00001", "1997-01-01T00:00:00Z", 11.77)],
                          until="1997-01-31T00:00:00Z")
        self.assertEqual(lines[3], '{"id":"00001:4","customer_id":"00001",'
                         '"seq":4,"dimension":"lifecycle","from":"new",'
                         '"to":"active","at":"1997-01-31T00:00:00Z",'
                         '"cause":"time"}')

    def test_time_stops_at_largest_ts_without_until(self):
        # Only the customer's own ts: nothing after the event fires.
        lines, _ = replay([P("a", "1997-01-01T00:00:00Z", 10)])
        self.assertEqual(len(lines), 3)
        # Another customer's later event moves the end of time.
        lines, _ = replay([P("a", "1997-01-01T00:00:00Z", 10),
                           P("b", "1997-01-31T00:00:00Z", 10)])
        self.assertEqual(of(lines, "a"), T("a", [
            ("lifecycle", None, "new", "1997-01-01", "event"),
            ("value", None, "C", "1997-01-01", "event"),
            ("rfm", None, "R1F1M1", "1997-01-01", "event"),
            ("lifecycle", "new", "active", "1997-01-31", "time"),
        ]))

    def test_until_before_last_ts_changes_nothing(self):
        evs = [P("a", "1997-01-01T00:00:00Z", 10),
               P("b", "1997-03-01T00:00:00Z", 10)]
        self.assertEqual(replay(evs, until="1997-01-02T00:00:00Z")[0],
                         replay(evs)[0])

    def test_zero_amount(self):
        lines, _ = replay([P("z", "2021-01-01T00:00:00Z", 0)])
        self.assertEqual(lines, T("z", [
            ("lifecycle", None, "new", "2021-01-01", "event"),
            ("value", None, "D", "2021-01-01", "event"),
            ("rfm", None, "R1F1M0", "2021-01-01", "event"),
        ]))


class Windows(unittest.TestCase):
    EVENTS = [P("w", "2021-01-01T00:00:00Z", 300),
              P("w", "2021-07-20T00:00:00Z", 10)]      # day 200
    EXPECTED = [
        ("lifecycle", None, "new", "2021-01-01", "event"),
        ("value", None, "B", "2021-01-01", "event"),
        ("rfm", None, "R1F1M2", "2021-01-01", "event"),
        ("lifecycle", "new", "active", "2021-01-31", "time"),
        ("lifecycle", "active", "at_risk", "2021-02-15", "time"),
        ("lifecycle", "at_risk", "silent", "2021-04-01", "time"),
        ("rfm", "R1F1M2", "R2F1M2", "2021-04-01", "time"),
        ("rfm", "R2F1M2", "R3F1M2", "2021-06-30", "time"),
        # second purchase: R=0, A=200d, F=2, M=310
        ("lifecycle", "silent", "active", "2021-07-20", "event"),
        ("rfm", "R3F1M2", "R1F1M2", "2021-07-20", "event"),
        ("lifecycle", "active", "at_risk", "2021-09-03", "time"),
        ("lifecycle", "at_risk", "silent", "2021-10-18", "time"),
        ("rfm", "R1F1M2", "R2F1M2", "2021-10-18", "time"),
        # the first purchase leaves the window exactly at ts + 365d:
        # M=10, F=1, R=165d
        ("value", "B", "C", "2022-01-01", "time"),
        ("rfm", "R2F1M2", "R2F1M1", "2022-01-01", "time"),
    ]

    def test_purchase_leaves_window_exactly_at_365d(self):
        lines, _ = replay(self.EVENTS, until="2022-01-01T00:00:00Z")
        self.assertEqual(lines, T("w", self.EXPECTED))

    def test_one_second_before_the_window_exit(self):
        lines, _ = replay(self.EVENTS, until="2021-12-31T23:59:59Z")
        self.assertEqual(lines, T("w", self.EXPECTED[:-2]))

    def test_refunds_lower_m_and_value(self):
        lines, _ = replay([P("r", "2021-01-01T00:00:00Z", 300),
                           REF("r", "2021-01-02T00:00:00Z", 100),
                           REF("r", "2021-01-03T00:00:00Z", 250)])
        self.assertEqual(lines, T("r", [
            ("lifecycle", None, "new", "2021-01-01", "event"),
            ("value", None, "B", "2021-01-01", "event"),
            ("rfm", None, "R1F1M2", "2021-01-01", "event"),
            ("value", "B", "C", "2021-01-02", "event"),        # M=200
            ("value", "C", "D", "2021-01-03", "event"),        # M=-50
            ("rfm", "R1F1M2", "R1F1M0", "2021-01-03", "event"),
        ]))

    def test_refund_leaving_window_raises_m(self):
        # refund at 2021-01-02 leaves at 2022-01-02; the purchase at
        # 2021-06-01 is still in the window then.
        lines, _ = replay([P("r", "2021-01-01T00:00:00Z", 100),
                           REF("r", "2021-01-02T00:00:00Z", 100),
                           P("r", "2021-06-01T00:00:00Z", 300)],
                          until="2022-01-02T00:00:00Z")
        got = [json.loads(l) for l in lines]
        values = [(g["from"], g["to"], g["at"][:10], g["cause"])
                  for g in got if g["dimension"] == "value"]
        self.assertEqual(values, [
            (None, "C", "2021-01-01", "event"),
            ("C", "D", "2021-01-02", "event"),        # M=0
            ("D", "B", "2021-06-01", "event"),        # M=300
            ("B", "C", "2022-01-01", "time"),         # first purchase out: M=200
            ("C", "B", "2022-01-02", "time"),         # refund out: M=300
        ])

    def test_refund_only_customer_emits_nothing(self):
        lines, summary = replay([REF("x", "2021-01-01T00:00:00Z", 5)],
                                until="2023-01-01T00:00:00Z")
        self.assertEqual(lines, [])
        self.assertEqual(summary["customers"], 1)

    def test_refunds_do_not_touch_recency(self):
        lines, _ = replay([P("q", "2021-01-01T00:00:00Z", 50),
                           REF("q", "2021-02-10T00:00:00Z", 10)],
                          until="2021-02-15T00:00:00Z")
        self.assertEqual(lines, T("q", [
            ("lifecycle", None, "new", "2021-01-01", "event"),
            ("value", None, "C", "2021-01-01", "event"),
            ("rfm", None, "R1F1M1", "2021-01-01", "event"),
            ("lifecycle", "new", "active", "2021-01-31", "time"),
            # the refund at 02-10 did not reset R: at_risk at 01-01 + 45d
            ("lifecycle", "active", "at_risk", "2021-02-15", "time"),
        ]))


class Lifecycle(unittest.TestCase):
    def test_fourth_purchase_makes_loyal(self):
        lines, _ = replay([P("l", "2021-01-01T00:00:00Z", 10),
                           P("l", "2021-02-01T00:00:00Z", 10),
                           P("l", "2021-02-02T00:00:00Z", 10),
                           P("l", "2021-02-10T00:00:00Z", 10)],
                          until="2021-03-27T00:00:00Z")
        self.assertEqual(lines, T("l", [
            ("lifecycle", None, "new", "2021-01-01", "event"),
            ("value", None, "C", "2021-01-01", "event"),
            ("rfm", None, "R1F1M1", "2021-01-01", "event"),
            ("lifecycle", "new", "active", "2021-01-31", "time"),
            ("rfm", "R1F1M1", "R1F2M1", "2021-02-02", "event"),   # F=3
            ("lifecycle", "active", "loyal", "2021-02-10", "event"),
            ("lifecycle", "loyal", "at_risk", "2021-03-27", "time"),
        ]))

    def test_new_beats_loyal_until_30_days(self):
        lines, _ = replay([P("n", "2021-01-0%dT00:00:00Z" % d, 10)
                           for d in (1, 2, 3, 4)],
                          until="2021-01-31T00:00:00Z")
        self.assertEqual(lines, T("n", [
            ("lifecycle", None, "new", "2021-01-01", "event"),
            ("value", None, "C", "2021-01-01", "event"),
            ("rfm", None, "R1F1M1", "2021-01-01", "event"),
            ("rfm", "R1F1M1", "R1F2M1", "2021-01-03", "event"),
            ("lifecycle", "new", "loyal", "2021-01-31", "time"),
        ]))

    def test_prospect_then_new(self):
        lines, _ = replay([C("p", "2021-01-01T00:00:00Z", "visit"),
                           P("p", "2021-01-06T00:00:00Z", 1000)])
        self.assertEqual(lines, T("p", [
            ("lifecycle", None, "prospect", "2021-01-01", "event"),
            ("lifecycle", "prospect", "new", "2021-01-06", "event"),
            ("value", None, "A", "2021-01-06", "event"),
            ("rfm", None, "R1F1M4", "2021-01-06", "event"),
        ]))

    def test_config_override_moves_new_for(self):
        lines, _ = replay([P("o", "2021-01-01T00:00:00Z", 10)],
                          until="2021-03-02T00:00:00Z",
                          sets=["segments.lifecycle.new_for=60d",
                                "segments.lifecycle.at_risk_after=70d",
                                "segments.value.enabled=false",
                                "segments.rfm.enabled=false"])
        self.assertEqual(lines, T("o", [
            ("lifecycle", None, "new", "2021-01-01", "event"),
            ("lifecycle", "new", "active", "2021-03-02", "time"),
        ]))


class Dissatisfied(unittest.TestCase):
    def test_in_and_out_with_the_90_day_window(self):
        lines, _ = replay([C("d", "2021-01-01T00:00:00Z", "complaint"),
                           C("d", "2021-01-05T00:00:00Z", "visit"),
                           C("d", "2021-01-11T00:00:00Z", "complaint"),
                           C("d", "2021-04-06T00:00:00Z", "complaint")],
                          until="2021-07-01T00:00:00Z")
        self.assertEqual(lines, T("d", [
            ("lifecycle", None, "prospect", "2021-01-01", "event"),
            ("dissatisfied", "out", "in", "2021-01-11", "event"),
            ("dissatisfied", "in", "out", "2021-04-01", "time"),   # 01-01 + 90d
            ("dissatisfied", "out", "in", "2021-04-06", "event"),
            ("dissatisfied", "in", "out", "2021-04-11", "time"),   # 01-11 + 90d
        ]))


class Ordering(unittest.TestCase):
    def test_same_ts_events_each_evaluated(self):
        lines, _ = replay([P("s", "2021-01-01T00:00:00Z", 200),
                           P("s", "2021-01-01T00:00:00Z", 100),
                           P("s", "2021-01-01T00:00:00Z", 700)])
        self.assertEqual(lines, T("s", [
            ("lifecycle", None, "new", "2021-01-01", "event"),
            ("value", None, "C", "2021-01-01", "event"),
            ("rfm", None, "R1F1M2", "2021-01-01", "event"),
            ("value", "C", "B", "2021-01-01", "event"),          # M=300
            ("value", "B", "A", "2021-01-01", "event"),          # M=1000
            ("rfm", "R1F1M2", "R1F2M4", "2021-01-01", "event"),  # F=3
        ]))

    def test_deadline_at_event_ts_fires_first(self):
        lines, _ = replay([P("e", "2021-01-01T00:00:00Z", 10),
                           P("e", "2021-01-31T00:00:00Z", 10)])
        self.assertEqual(lines, T("e", [
            ("lifecycle", None, "new", "2021-01-01", "event"),
            ("value", None, "C", "2021-01-01", "event"),
            ("rfm", None, "R1F1M1", "2021-01-01", "event"),
            ("lifecycle", "new", "active", "2021-01-31", "time"),
        ]))

    def test_late_event_is_evaluated_at_the_customer_clock(self):
        # y's event at 03-01 fires x's deadlines <= 03-01 (x: 01-31 active,
        # 02-15 at_risk, now_c = 02-15). x's purchase at 02-01 is then late:
        # folded, evaluated at 02-15 (R=14d, A=45d, F=2 -> active), and its
        # own +45d deadline (03-18) fires at the end.
        lines, _ = replay([P("x", "2021-01-01T00:00:00Z", 10),
                           P("y", "2021-03-01T00:00:00Z", 10),
                           P("x", "2021-02-01T00:00:00Z", 10)],
                          until="2021-03-18T00:00:00Z")
        self.assertEqual(of(lines, "x"), T("x", [
            ("lifecycle", None, "new", "2021-01-01", "event"),
            ("value", None, "C", "2021-01-01", "event"),
            ("rfm", None, "R1F1M1", "2021-01-01", "event"),
            ("lifecycle", "new", "active", "2021-01-31", "time"),
            ("lifecycle", "active", "at_risk", "2021-02-15", "time"),
            ("lifecycle", "at_risk", "active", "2021-02-15", "event"),
            ("lifecycle", "active", "at_risk", "2021-03-18", "time"),
        ]))
        self.assertEqual(of(lines, "y"), T("y", [
            ("lifecycle", None, "new", "2021-03-01", "event"),
            ("value", None, "C", "2021-03-01", "event"),
            ("rfm", None, "R1F1M1", "2021-03-01", "event"),
        ]))

    def test_late_purchase_becomes_the_last_purchase(self):
        # y's 03-01 event fires x's 01-31 and 02-15 deadlines (now_c =
        # 02-15). The late 01-10 purchase is later than x's only purchase,
        # so last = 01-10: evaluated at 02-15, R = 36d -> active again, and
        # the recency deadlines move to 01-10 + 45d = 02-24 and
        # 01-10 + 90d = 04-10.
        lines, _ = replay([P("x", "2021-01-01T00:00:00Z", 10),
                           P("y", "2021-03-01T00:00:00Z", 10),
                           P("x", "2021-01-10T00:00:00Z", 10)],
                          until="2021-04-15T00:00:00Z")
        self.assertEqual(of(lines, "x"), T("x", [
            ("lifecycle", None, "new", "2021-01-01", "event"),
            ("value", None, "C", "2021-01-01", "event"),
            ("rfm", None, "R1F1M1", "2021-01-01", "event"),
            ("lifecycle", "new", "active", "2021-01-31", "time"),
            ("lifecycle", "active", "at_risk", "2021-02-15", "time"),
            ("lifecycle", "at_risk", "active", "2021-02-15", "event"),
            ("lifecycle", "active", "at_risk", "2021-02-24", "time"),
            ("lifecycle", "at_risk", "silent", "2021-04-10", "time"),
            ("rfm", "R1F1M1", "R2F1M1", "2021-04-10", "time"),
        ]))

    def test_late_purchase_older_than_last_changes_first_only(self):
        # x bought 01-01 and 02-01 (01-31 fired before the 02-01 event);
        # y's 03-01 event fires nothing of x's (next is 02-01 + 45d =
        # 03-18), so x's clock stays at 02-01. The late purchase at 01-20
        # is evaluated at 02-01 (F=3), is neither first nor last, and
        # at_risk / silent still follow 02-01 (+45d = 03-18, +90d = 05-02).
        lines, _ = replay([P("x", "2021-01-01T00:00:00Z", 10),
                           P("x", "2021-02-01T00:00:00Z", 10),
                           P("y", "2021-03-01T00:00:00Z", 10),
                           P("x", "2021-01-20T00:00:00Z", 10)],
                          until="2021-05-02T00:00:00Z")
        self.assertEqual(of(lines, "x"), T("x", [
            ("lifecycle", None, "new", "2021-01-01", "event"),
            ("value", None, "C", "2021-01-01", "event"),
            ("rfm", None, "R1F1M1", "2021-01-01", "event"),
            ("lifecycle", "new", "active", "2021-01-31", "time"),
            ("rfm", "R1F1M1", "R1F2M1", "2021-02-01", "event"),   # F=3
            ("lifecycle", "active", "at_risk", "2021-03-18", "time"),
            ("lifecycle", "at_risk", "silent", "2021-05-02", "time"),
            ("rfm", "R1F2M1", "R2F2M1", "2021-05-02", "time"),
        ]))

    def test_same_events_without_the_interleaving(self):
        # x's events contiguous and in ts order: no late event at all.
        lines, _ = replay([P("x", "2021-01-01T00:00:00Z", 10),
                           P("x", "2021-02-01T00:00:00Z", 10),
                           P("y", "2021-03-01T00:00:00Z", 10)],
                          until="2021-03-18T00:00:00Z")
        self.assertEqual(of(lines, "x"), T("x", [
            ("lifecycle", None, "new", "2021-01-01", "event"),
            ("value", None, "C", "2021-01-01", "event"),
            ("rfm", None, "R1F1M1", "2021-01-01", "event"),
            ("lifecycle", "new", "active", "2021-01-31", "time"),
            ("lifecycle", "active", "at_risk", "2021-03-18", "time"),
        ]))

    def test_late_purchase_outside_window_still_sets_first_purchase(self):
        lines, _ = replay([P("z", "2022-01-01T00:00:00Z", 10),
                           P("z", "2020-06-01T00:00:00Z", 500)])
        self.assertEqual(lines, T("z", [
            ("lifecycle", None, "new", "2022-01-01", "event"),
            ("value", None, "C", "2022-01-01", "event"),
            ("rfm", None, "R1F1M1", "2022-01-01", "event"),
            # A is now > 30d; the late purchase is outside the window so
            # F and M do not change.
            ("lifecycle", "new", "active", "2022-01-01", "event"),
        ]))

    def test_customer_order_vs_time_order(self):
        a = [P("a", "2021-01-01T00:00:00Z", 10), P("a", "2021-05-01T00:00:00Z", 400)]
        b = [P("b", "2021-02-01T00:00:00Z", 90), P("b", "2021-03-01T00:00:00Z", 5)]
        by_customer, _ = replay(a + b, until="2022-06-01T00:00:00Z")
        by_time, _ = replay([a[0], b[0], b[1], a[1]], until="2022-06-01T00:00:00Z")
        self.assertEqual(sorted(by_customer), sorted(by_time))
        self.assertGreater(len(by_customer), 10)


class Validation(unittest.TestCase):
    def reason(self, raw):
        _, summary = replay(None, raw_lines=[raw])
        self.assertEqual(summary["records"], 1)
        if summary["valid"] == 1:
            return None
        (r, n), = summary["rejected_by_reason"].items()
        return r

    def test_reasons(self):
        ok = '"type":"purchase","customer_id":"c","ts":"2021-01-01T00:00:00Z"'
        cases = [
            ('{%s,"amount":1}' % ok, None),
            ('{%s,"amount":-0.0}' % ok, None),
            ('{%s,"amount":-0.01}' % ok, "negative_amount"),
            ('{%s,"amount":-0.00001}' % ok, "negative_amount"),
            ('{%s,"amount":0.00004}' % ok, None),
            ('{%s,"amount":"1"}' % ok, "wrong_field_type"),
            ('{%s,"amount":true}' % ok, "wrong_field_type"),
            ('{%s,"amount":1e300}' % ok, "bad_amount"),
            ('{%s,"amount":NaN}' % ok, "invalid_json"),
            ('{%s}' % ok, "missing_field"),
            ('{%s,"amount":null}' % ok, "missing_field"),
            ('{"customer_id":"c","ts":"2021-01-01T00:00:00Z","amount":1}', "missing_field"),
            ('{"type":7,"customer_id":"c","ts":"2021-01-01T00:00:00Z","amount":1}', "wrong_field_type"),
            ('{"type":"buy","customer_id":"c","ts":"2021-01-01T00:00:00Z","amount":1}', "unknown_type"),
            ('{"type":"purchase","ts":"2021-01-01T00:00:00Z","amount":1}', "missing_field"),
            ('{"type":"purchase","customer_id":17850,"ts":"2021-01-01T00:00:00Z","amount":1}', "wrong_field_type"),
            ('{"type":"purchase","customer_id":"","ts":"2021-01-01T00:00:00Z","amount":1}', "empty_customer_id"),
            ('{"type":"purchase","customer_id":"%s","ts":"2021-01-01T00:00:00Z","amount":1}' % ("x" * 128), None),
            ('{"type":"purchase","customer_id":"%s","ts":"2021-01-01T00:00:00Z","amount":1}' % ("x" * 129), "oversized_customer_id"),
            ('{"type":"purchase","customer_id":"a\\u0000b","ts":"2021-01-01T00:00:00Z","amount":1}', "bad_field"),
            ('{"type":"purchase","customer_id":"c","amount":1}', "missing_field"),
            ('{"type":"purchase","customer_id":"c","ts":"2021-02-30T00:00:00Z","amount":1}', "bad_timestamp"),
            ('{"type":"purchase","customer_id":"c","ts":"2021-01-01","amount":1}', "bad_timestamp"),
            ('{"type":"purchase","customer_id":"c","ts":1609459200000.5,"amount":1}', "bad_timestamp"),
            ('{"type":"purchase","customer_id":"c","ts":true,"amount":1}', "bad_timestamp"),
            ('{"type":"purchase","customer_id":"c","ts":1609459200000,"amount":1}', None),
            ('{"type":"purchase","customer_id":"c","ts":"2021-01-01 01:00:00.5+01:00","amount":1}', None),
            ('{"type":"contact","customer_id":"c","ts":"2021-01-01T00:00:00Z"}', "missing_field"),
            ('{"type":"contact","customer_id":"c","ts":"2021-01-01T00:00:00Z","kind":"rant"}', "unknown_kind"),
            ('{"type":"contact","customer_id":"c","ts":"2021-01-01T00:00:00Z","kind":"visit"}', None),
            ('{"type":"contact","customer_id":"c","ts":"2021-01-01T00:00:00Z","kind":"visit","amount":-1}', "negative_amount"),
            ('{"type":"refund","customer_id":"c","ts":"2021-01-01T00:00:00Z","kind":"nonsense","amount":1}', None),
            ('{%s,"amount":1,"rating":6}' % ok, "bad_rating"),
            ('{%s,"amount":1,"rating":"5"}' % ok, "wrong_field_type"),
            ('{%s,"amount":1,"rating":null,"event_id":null}' % ok, None),
            ('{%s,"amount":1,"event_id":5}' % ok, "wrong_field_type"),
            ('{%s,"amount":1,"attrs":[1]}' % ok, "wrong_field_type"),
            ('{%s,"amount":1,"whatever":[1]}' % ok, None),
            ('[1,2]', "not_object"),
            ('{"type":"purchase"', "invalid_json"),
            ('{%s,"amount":1} x' % ok, "invalid_json"),
        ]
        for raw, want in cases:
            with self.subTest(raw=raw):
                self.assertEqual(self.reason(raw), want)

    def test_timestamps(self):
        self.assertEqual(segref.parse_rfc3339("2021-01-01T01:00:00+01:00"), 1609459200)
        self.assertEqual(segref.parse_rfc3339("2020-12-31t23:00:00.999-01:00"), 1609459200)
        self.assertEqual(segref.parse_rfc3339("1969-12-31T23:59:59Z"), -1)
        self.assertIsNone(segref.parse_rfc3339("0000-12-31T00:00:00Z"))
        self.assertIsNone(segref.parse_rfc3339("2021-01-01T24:00:00Z"))
        self.assertEqual(segref.format_ts(0), "1970-01-01T00:00:00Z")
        self.assertEqual(segref.format_ts(segref.TS_MIN), "0001-01-01T00:00:00Z")
        # epoch ms floors: -1 ms is -1 s
        _, s = replay(None, raw_lines=[
            '{"type":"contact","customer_id":"c","ts":-1,"kind":"visit"}'])
        self.assertEqual(s["end"], "1969-12-31T23:59:59Z")

    def test_rejected_records_touch_no_state(self):
        lines, summary = replay(None, raw_lines=[
            json.dumps(P("v", "2021-01-01T00:00:00Z", 10)),
            '{"type":"purchase","customer_id":"v","ts":"2021-03-01T00:00:00Z","amount":-5}',
            'not json',
            json.dumps(P("v", "2021-01-02T00:00:00Z", 10)),
        ])
        self.assertEqual(summary["rejected_by_reason"],
                         {"negative_amount": 1, "invalid_json": 1})
        # the rejected 03-01 event neither moved time nor added a purchase
        self.assertEqual(len(lines), 3)
        self.assertEqual(summary["end"], "2021-01-02T00:00:00Z")

    def test_blank_lines_are_not_records(self):
        _, s = replay(None, raw_lines=["", json.dumps(P("v", "2021-01-01T00:00:00Z", 1)), "  "])
        self.assertEqual(s["records"], 1)


if __name__ == "__main__":
    unittest.main()
