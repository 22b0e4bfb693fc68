"""segbench: the `make bench` suite (bench/run.py runs it).

A case is one module with GROUP, run(b) and report(b) (see
docs/benchmarks.md, "Adding a case"); a group is a list of cases that are
chosen together (BENCH_CASES) and share a set-up: the replay cases share
the generated data sets, the Kafka cases one mock cluster, the snapshot
cases the seg_bench_snapshot tool. GROUPS below is the one list a new case
is registered in. Groups and cases run, and their rows are reported, in
this order.
"""

from . import (changelog, ckpt_pause, data, deadlines, durability, kafka, kafka_e2e, latency,
               memory, predict, replay, rules, snapshot)


class Group:
    """Cases chosen and set up together.

    start(b) runs before the first case, stop(b) after the last (also when
    one failed); info(b) -> dict is kept in the results file's
    runs_by_group.<name>; selected(b) -> bool overrides "named in
    BENCH_CASES"; skipped(b) runs when the group is not selected, pending(b)
    then adds its placeholder rows to the table."""

    def __init__(self, name, cases, start=None, stop=None, info=None, selected=None,
                 skipped=None, pending=None):
        self.name, self.cases = name, cases
        self.start, self.stop, self.info = start, stop, info
        self.selected, self.skipped, self.pending = selected, skipped, pending


GROUPS = [
    Group("replay", [replay, rules, predict, memory, deadlines], start=data.prepare_replay,
          info=lambda b: {"repeat": b.repeat, "repeat_large": b.repeat_large}),
    Group("kafka", [kafka_e2e, latency], start=kafka.start, stop=kafka.stop, info=kafka.info),
    Group("snapshot", [snapshot, changelog, ckpt_pause], start=durability.start,
          selected=durability.selected, skipped=durability.skipped,
          pending=durability.pending),
]

DEFAULT_CASES = "replay kafka"  # BENCH_CASES when unset (snapshot: see durability.py)
