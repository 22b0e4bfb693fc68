"""ckpt_pause: `segd run`'s longest checkpoint pause with N customers in memory.

What: segd run (built-in defaults, checkpoint.interval=3s) against a
1-broker mock cluster, with N customers loaded at start from a snapshot
that `seg_bench_snapshot make-state` wrote. After three interval
checkpoints, the pauses segd logs for them and the gauge it keeps for the
longest one (segd_checkpoint_pause_max_milliseconds) are read.

Why that way: a checkpoint only "does not stall consumption" if it is
quick with real state sizes, and pushing N customers' events through the
mock is not possible (it keeps ~5 MB per partition), so the state is
loaded from a snapshot instead. While segd runs, a trickle of events
(100/s) for random loaded customers is produced, stamped 2024-01-01:
earlier than every customer's clock, so they fold as late events and fire
no deadline (the watermark stays behind all of them), but each changes its
customer, so every interval checkpoint has work: a changelog of the changed
customers and a rewrite of the whole snapshot (segd skips a partition with
no change). The producer is kafka-python (tests/harness/kafkatool.py), an
independent client, as in the integration tests.
"""

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.request

from . import common, durability, kafka

GROUP = "snapshot"

LOG_CHECKPOINT = re.compile(
    r"checkpoint: interval: 1 partition\(s\), (\d+) customers, ([\d.]+) MB snapshot, "
    r"(\d+) changelog records, paused (\d+) ms")
LOG_LOADED = re.compile(r"loaded snapshot: (\d+) customers, ([\d.]+) MB in ([\d.]+) s")


def run(b):
    mock = kafka.mock_binary(b)
    if not b.have_segd or not os.access(mock, os.X_OK):
        durability.fail(b, f"ckpt_pause_{common.label(b.base)}", "needs segd and the mock cluster")
        return
    for n in b.sizes:
        case = f"ckpt_pause_{common.label(n)}"
        if not b.snap_tool:
            durability.fail(b, case, b.snap_tool_error)
            continue
        _one(b, case, n)


def _one(b, case, n):
    sd = os.path.join(b.snapdir, "pause")
    shutil.rmtree(sd, ignore_errors=True)
    os.makedirs(sd)
    mk, mk_err = b.path("mkstate.json"), b.path("mkstate.err")
    if b.call([b.snap_tool, "make-state", "--customers", str(n), "--dir", sd, "--topic", "events"],
              stdout=mk, stderr=mk_err) != 0:
        durability.fail(b, case, f"make-state: {common.tail(mk_err)}")
        return
    try:
        mc = kafka.start_cluster(b, "pause", ["events:1", "transitions:4", "events-dlq:1",
                                              "churn-alerts:1", "segd-changelog:1"],
                                 brokers=1, timeout=10, max_lifetime=900)
    except Exception:
        durability.fail(b, case, "mock cluster did not start")
        return
    port = common.free_port()
    log = b.path("pause.log")
    with open(log, "wb") as f:
        segd = b.spawn([b.segd, "run", "--set", f"kafka.brokers={mc.bootstrap}",
                        "--set", f"state.dir={sd}", "--set", "checkpoint.interval=3s",
                        "--set", f"metrics.listen=127.0.0.1:{port}"],
                       stdout=f, stderr=subprocess.STDOUT)
    res = error = None
    try:
        res = _drive(b, n, port, log, mk, mc.bootstrap)
    except Exception as e:
        error = str(e)[:400]
    finally:
        b.stop(segd)
        mc.stop()
        shutil.rmtree(sd, ignore_errors=True)
    if res is None:
        b.record({"case": case, "ok": False, "error": error})
        print(f"  {case}: ERROR {error}", flush=True)
    else:
        summary = res.pop("_summary")
        b.record({"case": case, "ok": True, **res})
        print(f"  {case}: {summary}", flush=True)


def _drive(b, n, port, logf, mk, boot):
    """Produces the trickle until segd logged three interval checkpoints;
    returns the run's figures (and a "_summary" line to print)."""
    harness = os.path.join(b.repo, "tests", "harness")
    if harness not in sys.path:
        sys.path.insert(0, harness)
    import kafkatool
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=boot.split(","), api_version=kafkatool.api_version(),
                      linger_ms=5)
    rng = random.Random(1)
    deadline = time.monotonic() + 300
    try:
        while True:
            with open(logf, errors="replace") as f:
                log = f.read()
            hits = LOG_CHECKPOINT.findall(log)
            if len(hits) >= 3 or time.monotonic() > deadline:
                break
            if "loaded snapshot" in log:
                for _ in range(50):
                    cid = "c%010d" % rng.randrange(n)
                    p.send("events", key=cid.encode(), value=json.dumps(
                        {"type": "purchase", "customer_id": cid, "ts": "2024-01-01T00:00:00Z",
                         "amount": 10}).encode())
                p.flush(10)
            time.sleep(0.5)
    finally:
        p.close(5)
    if len(hits) < 3:
        raise RuntimeError(f"fewer than 3 checkpoints within 300 s; log tail: {log[-300:]}")
    load = LOG_LOADED.search(log)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        m = r.read().decode()
    mx = re.search(r"^segd_checkpoint_pause_max_milliseconds (\S+)$", m, re.M)
    pauses = [int(h[3]) for h in hits]
    records = [int(h[2]) for h in hits]
    return {"customers": n, "checkpoints": len(hits), "pause_ms_runs": pauses,
            "changelog_records": records,
            "pause_max_ms_metric": float(mx.group(1)) if mx else None,
            "snapshot_mb": float(hits[-1][1]), "customers_in_checkpoint": int(hits[-1][0]),
            "restore_load_seconds": float(load.group(3)) if load else None,
            "make_state": common.load_json(mk),
            "_summary": f"{n} customers (snapshot loaded in {load.group(3) if load else '?'} s):"
                        f" checkpoint pauses {pauses} ms with {records} changelog records,"
                        f" segd_checkpoint_pause_max_milliseconds {mx.group(1) if mx else '?'}"}


def report(b):
    for n in (b.base, b.large):
        if not n:
            continue
        lab = common.label(n)
        r0 = next((r for r in b.sel(f"ckpt_pause_{lab}") if r["ok"]), {})
        durability.add(
            b, f"ckpt_pause_{lab}", f"checkpoint pause, {lab} customers", f"ckpt_pause_{lab}",
            "pause_ms_runs", "ms", 1,
            note=(f"segd run, 1 partition of {r0['customers_in_checkpoint']} customers (snapshot "
                  f"loaded at start in {r0['restore_load_seconds']} s), 100 events/s, at most "
                  f"{max(r0['changelog_records'])} changelog records a checkpoint; "
                  f"segd_checkpoint_pause_max_milliseconds {r0['pause_max_ms_metric']:.0f}"
                  if r0 else None))
