"""rules: the cost of user rules, `segd replay` with 20 of them.

What: events/s of `segd replay` on the base-size JSON data set with the
default built-ins plus the 20 rules of bench/config/rules-20.yaml
(memberships, grades, computed values, windows over purchases, refunds
and every contact kind, time thresholds, rules on the built-ins), against
the same replay with the built-ins only.

Why that way: the promise (issue 10, docs/rules.md) is that rules cost in
proportion to what they read, so the ratio to the built-ins-only rate is
the figure; the two run alternately on the same file in the same minutes,
so load on the shared machine hits both. Bytes per customer (segd's own
state_bytes / customers) show what rule state adds.
"""

import os

from . import common

GROUP = "replay"
RULES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "config", "rules-20.yaml")


def run(b):
    B = common.label(b.base)
    common.replay_pair(b, "built-ins vs built-ins + 20 user rules",
                       f"rules_off_json_{B}", f"rules_20_json_{B}", RULES)


def _bytes_per_customer(b, case):
    runs = [r for r in b.sel(case) if r.get("ok") and r.get("customers")]
    vals = [r["state_bytes"] / r["customers"] for r in runs if r.get("state_bytes")]
    return vals


def report(b):
    B = common.label(b.base)
    off, off_err = b.metric(f"rules_off_json_{B}", "events_per_second")
    b.add(f"rules_off_json_{B}", f"replay JSON, {B}, built-ins only", "events/s", off, off_err,
          note="ceiling for the 20-rule row, alternated with it")
    v, e = b.metric(f"rules_20_json_{B}", "events_per_second")
    b.add(f"rules_20_json_{B}", f"replay JSON, {B}, + 20 user rules", "events/s", v, e,
          ceiling=common.median(off), ceiling_desc="built-ins only, same file, same run",
          target=">= 0.70x built-ins only",
          check=lambda c: c["ratio"] is not None and c["ratio"] >= 0.70)
    bo = _bytes_per_customer(b, f"rules_off_json_{B}")
    br = _bytes_per_customer(b, f"rules_20_json_{B}")
    b.add(f"rules_20_state_{B}", f"state per customer, {B}, + 20 user rules", "bytes", br, [],
          ceiling=common.median(bo), ceiling_desc="built-ins only",
          note="segd's state_bytes / customers; no target")
