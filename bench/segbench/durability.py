"""durability: the snapshot group's shared part (case 6 of the durability issue).

The group (snapshot.py, changelog.py, ckpt_pause.py) measures how fast a
partition's state goes to disk and comes back (from the local snapshot, or
from the changelog topic), and how long a checkpoint stops consumption.
Its tool is bench/seg_bench_snapshot.c, which bench/CMakeLists.txt
builds against segcore (SEG_BENCH_SNAPSHOT names another binary). Until
2026-12-04 it was compiled here with a hand-written link line, which
missed simdjson and GSL once segcore needed them, so the group failed.

It runs in a plain `make bench` (BENCH_CASES unset), or when BENCH_CASES
names "snapshot"; BENCH_SNAPSHOT=1|0 forces it on or off. About 3 minutes
at 1M + 10M. A failure is recorded in its row, never fatal to the suite.
"""

import os

from . import common

TITLE = "== snapshots, changelog restore, checkpoint pause"


def selected(b):
    forced = b.env("BENCH_SNAPSHOT", "")
    if forced:
        return forced == "1"
    raw = os.environ.get("BENCH_CASES", "")
    return raw == "" or "snapshot" in raw.split()


def skipped(b):
    print("== snapshots: skipped (BENCH_SNAPSHOT=1 or BENCH_CASES=snapshot runs them;"
          " by default they")
    print("   run only when BENCH_CASES is unset)", flush=True)


def pending(b):
    """The row of a run without the group (it never replaces measured rows
    in the results file)."""
    b.add("snapshots", "snapshots", "s", [], [], status="pending (BENCH_SNAPSHOT=0)")


def start(b):
    """Start of the group: finds seg_bench_snapshot (b.snap_tool; None
    with b.snap_tool_error when the build has none)."""
    print(TITLE, flush=True)
    b.snapdir = os.path.join(b.build, "benchstate")
    os.makedirs(b.snapdir, exist_ok=True)
    b.snap_tool_error = None
    tool = b.env("SEG_BENCH_SNAPSHOT", os.path.join(b.build, "bench/seg_bench_snapshot"))
    if not os.access(tool, os.X_OK):
        b.snap_tool_error = (f"{tool} is not built (bench/CMakeLists.txt builds it with "
                             "-DSEG_BENCH=ON, as `make bench` does)")
        tool = None
    b.snap_tool = tool


def record(b, case, rc, out, err):
    """One run from a seg_bench_snapshot JSON output (or the driver's)."""
    r = {"case": case, "ok": False}
    try:
        r.update(common.load_json(out))
        r["ok"] = rc == 0
        if rc:
            r["error"] = f"exit {rc}: " + common.tail(err)
    except Exception as e:
        r["error"] = f"exit {rc}: {common.tail(err) or e}"
    b.record(r)


def fail(b, case, msg):
    b.fail(case, msg)
    print(f"  {case}: ERROR {msg}", flush=True)


def add(b, cid, desc, run_case, key, unit, scale, target=None, check=None, note=None):
    """A row from the runs of `run_case`: the values of `key` (a number, a
    list, or seg_bench_snapshot's {"median", "runs": [...]}) / scale."""
    rs = b.sel(run_case)
    bad = [r.get("error", "failed") for r in rs if not r["ok"]]
    vals = [x / scale for r in rs if r["ok"] and key in r
            for x in (r[key]["runs"] if isinstance(r[key], dict) else
                      r[key] if isinstance(r[key], list) else [r[key]])]
    return b.add(cid, desc, unit, vals, bad, target=target, check=check, note=note)
