"""predict: the cost of the predictions, `segd replay` with a p_alive rule.

What: events/s of `segd replay` on the base-size JSON data set with the
default config plus segments.predict and `likely_churned: when: p_alive <
0.3` (bench/config/predict.yaml), against the default config alone,
alternated on the same file in the same run. The cost per evaluation is
the difference in CPU seconds over the predictions' evaluations
(deadlines fired and events folded), reported as a note.

Why: issue 11's target, >= 0.7x the rate without predictions. P(alive) is
a closed form and its crossing second too; what costs is keeping the
purchase days and evaluating at each event and deadline.
"""

import os

from . import common

GROUP = "replay"
CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "config", "predict.yaml")


def run(b):
    B = common.label(b.base)
    common.replay_pair(b, "default config vs + predictions (p_alive < 0.3)",
                       f"predict_off_json_{B}", f"predict_on_json_{B}", CONFIG)


def report(b):
    B = common.label(b.base)
    off, off_err = b.metric(f"predict_off_json_{B}", "events_per_second")
    b.add(f"predict_off_json_{B}", f"replay JSON, {B}, no predictions", "events/s", off,
          off_err, note="ceiling for the predictions row, alternated with it")
    v, e = b.metric(f"predict_on_json_{B}", "events_per_second")
    note = None
    on_runs = [r for r in b.sel(f"predict_on_json_{B}") if r.get("ok")]
    off_runs = [r for r in b.sel(f"predict_off_json_{B}") if r.get("ok")]
    if on_runs and off_runs:
        cpu_on = common.median([r["cpu_seconds"] for r in on_runs])
        cpu_off = common.median([r["cpu_seconds"] for r in off_runs])
        evals = on_runs[0].get("events_folded", 0) + on_runs[0].get("deadlines_fired", 0)
        if evals:
            note = (f"{(cpu_on - cpu_off) / evals * 1e9:.0f} ns of CPU per evaluation "
                    f"({evals:,} events and deadlines)")
    b.add(f"predict_on_json_{B}", f"replay JSON, {B}, + p_alive rule", "events/s", v, e,
          ceiling=common.median(off), ceiling_desc="no predictions, same file, same run",
          target=">= 0.70x without predictions",
          check=lambda c: c["ratio"] is not None and c["ratio"] >= 0.70, note=note)
