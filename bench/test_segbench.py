#!/usr/bin/python3
"""test_segbench: the bench harness's own plumbing, in every `make test`.

Why: docs/benchmarks.md and whoever reads build/bench.json rely on its
keys, statuses and merge rules, and a case module is easy to break without
noticing until the next long `make bench`. This checks, with no timing
assumption (no rate is judged):
  - common.py: labels, medians, row statuses (PASS/FAIL/info/ERROR/not
    measured), ratios to ceilings, the merge with an earlier results file
    and the printed table;
  - bench/run.py end to end on tiny data sets (3k and 5k customers, one run
    each, replay group only: the Kafka and snapshot groups need minutes and
    a mock cluster): exit status, every replay-group row and the results
    file's keys. Its BUILD_DIR is a temporary directory (the binaries come
    from SEGD, SEG_GEN and SEG_CEILING, which ctest sets), so the data sets
    are generated there and nothing is left in the build tree.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from segbench import GROUPS, common  # noqa: E402


def bench(**kw):
    b = common.Bench(sizes=[1000], repeat=1, repeat_large=1, strict=False)
    b.__dict__.update(kw)
    return b


class Plumbing(unittest.TestCase):
    def test_label(self):
        self.assertEqual([common.label(n) for n in (1000000, 10000000, 20000, 1234)],
                         ["1M", "10M", "20k", "1234"])

    def test_stats(self):
        self.assertEqual(common.stats([3.0, 1.0, 2.0]), {"median": 2.0, "min": 1.0, "max": 3.0})
        self.assertEqual(common.stats([]), {"median": None, "min": None, "max": None})

    def test_metric_keeps_failed_runs_apart(self):
        b = bench()
        b.record({"case": "x", "ok": True, "events_per_second": 5.0})
        b.fail("x", "boom")
        b.record({"case": "y", "ok": True, "events_per_second": 7.0})
        self.assertEqual(b.metric("x", "events_per_second"), ([5.0], ["boom"]))

    def test_row_status(self):
        b = bench()
        check = lambda c: c["ratio"] >= 0.5
        self.assertEqual(b.add("a", "a", "events/s", [4.0, 6.0], [], ceiling=10.0,
                               check=check)["status"], "PASS")
        self.assertEqual(b.add("a", "a", "events/s", [2.0], [], ceiling=10.0,
                               check=check)["status"], "FAIL")
        self.assertEqual(b.add("a", "a", "events/s", [2.0], [])["status"], "info")
        self.assertEqual(b.add("a", "a", "events/s", [9.0], ["exit 1"], ceiling=10.0,
                               check=check)["status"], "ERROR")
        self.assertEqual(b.add("a", "a", "events/s", [], ["segd not built"])["status"],
                         "not measured")
        self.assertEqual(b.add("a", "a", "events/s", [], [])["status"], "not measured")
        self.assertEqual(b.add("a", "a", "events/s", [], ["exit 1"])["status"], "ERROR")
        r = b.add("a", "a", "events/s", [4.0, 6.0], [], ceiling=10.0)
        self.assertEqual((r["median"], r["ratio"]), (5.0, 0.5))
        self.assertEqual(b.add("p", "p", "s", [], [], status="pending")["status"], "pending")

    def test_merge(self):
        old = {"cases": [{"id": "a", "status": "PASS", "v": 1},
                         {"id": "snapshots", "status": "PASS", "v": 2},
                         {"id": "other", "status": "FAIL", "v": 3}],
               "datasets": [{"path": "/d/1", "v": "old"}, {"path": "/d/2", "v": "old"}],
               "runs_by_group": {"kafka": {"generated_at": "then", "customers": 5}}}
        rows = [{"id": "a", "status": "FAIL", "v": 10},
                {"id": "snapshots", "status": "pending (BENCH_SNAPSHOT=0)", "v": 20},
                {"id": "new", "status": "info", "v": 30}]
        m = common.merge(old, rows, [{"path": "/d/2", "v": "new"}], ["replay"],
                         {"replay": {"repeat": 3}}, "now")
        self.assertEqual([(c["id"], c["v"]) for c in m["cases"]],
                         [("a", 10), ("snapshots", 2), ("other", 3), ("new", 30)])
        self.assertEqual(m["datasets"], [{"path": "/d/1", "v": "old"},
                                         {"path": "/d/2", "v": "new"}])
        self.assertEqual(m["runs_by_group"],
                         {"kafka": {"generated_at": "then", "customers": 5},
                          "replay": {"generated_at": "now", "repeat": 3}})

    def test_table(self):
        b = bench()
        b.add("r", "replay JSON, 1k customers", "events/s", [1.5e6], [], ceiling=3e6,
              target=">= 0.70x", check=lambda c: c["ratio"] >= 0.7, note="a note")
        b.add("m", "max RSS / customer, 1k", "bytes", [], ["e1", "e2", "e3"])
        lines = common.table_lines(b.rows)
        self.assertEqual(lines[0].split(), ["case", "median", "min", "max", "ceiling", "ratio",
                                            "target", "result"])
        self.assertTrue(set(lines[1]) <= {"-", " "})
        self.assertEqual(lines[2].split("  ")[0], "replay JSON, 1k customers")
        self.assertIn("1.500M/s", lines[2])
        self.assertIn("3.000M/s  0.50x  >= 0.70x", lines[2])
        self.assertTrue(lines[2].endswith("FAIL"))
        self.assertTrue(lines[3].endswith("ERROR"))
        self.assertEqual(lines[4:], ["  * replay JSON, 1k customers: a note",
                                     "  ! max RSS / customer, 1k: e1",
                                     "  ! max RSS / customer, 1k: e2"])

    def test_registry(self):
        names = [g.name for g in GROUPS]
        self.assertEqual(names, ["replay", "kafka", "snapshot"])
        for g in GROUPS:
            for case in g.cases:
                self.assertEqual(case.GROUP, g.name, case.__name__)
                self.assertTrue(callable(case.run) and callable(case.report))
                self.assertTrue(case.__doc__ and len(case.__doc__) > 100, case.__name__)


@unittest.skipUnless(all(os.environ.get(v) for v in ("SEGD", "SEG_GEN", "SEG_CEILING")),
                     "SEGD, SEG_GEN and SEG_CEILING name the binaries (ctest sets them)")
class EndToEnd(unittest.TestCase):
    def test_replay_group(self):
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("BENCH_", "REPEAT"))}
            out_json = os.path.join(tmp, "bench.json")
            env.update(BENCH_CUSTOMERS="3000 5000", REPEAT="1", REPEAT_10M="1",
                       BENCH_CASES="replay", BENCH_JSON=out_json, TMPDIR=tmp)
            p = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "run.py"), tmp], env=env,
                               capture_output=True, text=True, timeout=240)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            ids = ["ceiling_json_3k", "replay_json_3k", "replay_json_5k", "ceiling_msgpack_3k",
                   "replay_msgpack_3k", "replay_msgpack_5k", "rules_off_json_3k",
                   "rules_20_json_3k", "rules_20_state_3k", "predict_off_json_3k",
                   "predict_on_json_3k", "bytes_per_customer_3k",
                   "bytes_per_customer_5k", "deadlines_all_5k", "deadlines_1d_5k", "snapshots"]
            with open(out_json) as f:
                res = json.load(f)
            self.assertEqual(list(res), ["generated_at", "machine", "build_dir", "repeat",
                                         "repeat_large", "runs_by_group", "datasets", "cases"])
            self.assertEqual(sorted(res["runs_by_group"]), ["replay"])
            self.assertEqual([c["id"] for c in res["cases"]], ids)
            self.assertEqual(len(res["datasets"]), 4)
            for c in res["cases"]:
                want = "pending (BENCH_SNAPSHOT=0)" if c["id"] == "snapshots" else \
                    ("PASS", "FAIL", "info")
                if isinstance(want, str):
                    self.assertEqual(c["status"], want)
                else:
                    self.assertIn(c["status"], want, c)
                    self.assertEqual(len(c["runs"]), 1, c)
            rows = {c["id"]: c for c in res["cases"]}
            self.assertIsNotNone(rows["replay_json_3k"]["ratio"])
            self.assertGreater(rows["deadlines_all_5k"]["deadlines"], 0)
            for c in res["cases"]:  # every row is in the printed table
                self.assertIn(c["case"], p.stdout)
            self.assertIn(f"results: {out_json}", p.stdout)
            self.assertNotIn("segbench.", " ".join(os.listdir(tmp)))  # scratch dir removed

    @unittest.skipUnless(os.environ.get("SEG_BENCH_SNAPSHOT"),
                         "SEG_BENCH_SNAPSHOT names the snapshot tool (ctest sets it)")
    def test_snapshot_case(self):
        """The snapshot group's tool is built and its write/load case gives
        both rows at a tiny size (the group failed to build unnoticed for
        days, since the suite ran it only in a full `make bench`)."""
        from segbench import durability, snapshot
        with tempfile.TemporaryDirectory() as tmp:
            b = bench(sizes=[2000], build=tmp, tmp=tmp)
            durability.start(b)
            self.assertIsNone(b.snap_tool_error)
            snapshot.run(b)
            snapshot.report(b)
            rows = {c["id"]: c for c in b.rows}
            for rid in ("snapshot_write_2k", "snapshot_load_2k"):
                self.assertIn(rows[rid]["status"], ("PASS", "FAIL", "info"), rows[rid])
                self.assertEqual(len(rows[rid]["runs"]), 1, rows[rid])
                self.assertGreater(rows[rid]["runs"][0], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
