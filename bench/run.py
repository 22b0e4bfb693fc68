#!/usr/bin/python3
"""bench/run.py BUILD_DIR: the `make bench` suite.

Why it looks like this: an absolute events/s figure moves with the CPU, the
load from other processes and the library builds, so every rate is reported
next to a ceiling measured in the same run on the same input (simdjson
parse-only, msgpack-c unpack-only, librdkafka consume-only), and ceiling and
measured runs alternate so that drifting load hits both. Each case runs
several times and the median is the result; min and max show the noise.
The cases are modules of bench/segbench/, one per case, in groups
(segbench/__init__.py); the shared plumbing is segbench/common.py.

Datasets come from tools/seg_gen (BG/NBD customers) and are cached under
BUILD_DIR/benchdata, keyed by the generator's arguments and source hash.
Replay reads them from the page cache (each file is read once before its
runs) and writes its transitions to /dev/null.

Environment:
  REPEAT=3            runs per case at the base size (1M customers)
  REPEAT_10M=2        runs per case at the large size (10M customers)
  BENCH_CUSTOMERS="1000000 10000000"   base and (optional) large size
  BENCH_SEED=20240101 generator seed
  BENCH_JSON=<repo>/build/bench.json   where the results go
  BENCH_CONFIG=<repo>/config/segd.yaml config for segd replay and run
  BENCH_STRICT=1      exit 1 if any target FAILs (default: report only)
  BENCH_CASES="replay kafka"           which groups to run: replay (cases
                      1-4), kafka (case 5), snapshot (case 6); results of
                      the groups not run are kept from the existing BENCH_JSON
  BENCH_SNAPSHOT=1|0  runs or skips the snapshot group (default: run when
                      BENCH_CASES is unset or names it)
  BENCH_KAFKA_CUSTOMERS=500000         case 5 throughput data set (~1.8M events)
  BENCH_KAFKA_PARTITIONS=40            its input topic's partitions
  REPEAT_KAFKA=3      throughput runs (each with a consume-only ceiling
                      and a produce floor)
  BENCH_KAFKA_PRODUCE=1000000          messages per produce-floor run
  BENCH_LATENCY_RATE=50000             case 5 latency: events/s produced
  BENCH_LATENCY_SECONDS=10             ... for this long
  REPEAT_LATENCY=2    latency runs
  BENCH_LATENCY_SEGD_ARGS=""           extra segd arguments for the latency
                      runs, e.g. "--set kafka.consumer.fetch.wait.max.ms=10"
  SEGD, SEG_GEN, SEG_CEILING           override the binaries
  SEG_MOCK_CLUSTER, SEG_CONSUME_RATE, SEG_BENCH_TAIL   case 5's tools
  SEG_BENCH_SNAPSHOT  case 6's tool (compiled from bench/ when not given)
Exit codes: 0 measured (targets may FAIL unless BENCH_STRICT=1),
            1 a run failed or a tool is missing, 2 usage.
"""

import os
import shutil
import signal
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from segbench import DEFAULT_CASES, GROUPS, common  # noqa: E402


def _settings(build, repo):
    env = lambda name, default: os.environ.get(name) or default
    try:
        sizes = [int(x) for x in env("BENCH_CUSTOMERS", "1000000 10000000").split()]
        s = dict(sizes=sizes, seed=int(env("BENCH_SEED", "20240101")),
                 repeat=int(env("REPEAT", "3")), repeat_large=int(env("REPEAT_10M", "2")))
    except ValueError as e:
        raise SystemExit(f"bench: {e} (BENCH_CUSTOMERS, BENCH_SEED, REPEAT, REPEAT_10M are"
                         " numbers)") from None
    if not sizes:
        raise SystemExit("bench: BENCH_CUSTOMERS is empty")
    s.update(
        repo=repo, build=build, days=365,
        segd=env("SEGD", os.path.join(build, "segd")),
        seg_gen=env("SEG_GEN", os.path.join(build, "seg_gen")),
        seg_ceiling=env("SEG_CEILING", os.path.join(build, "bench", "seg_bench_ceiling")),
        config=env("BENCH_CONFIG", os.path.join(repo, "config", "segd.yaml")),
        out_json=env("BENCH_JSON", os.path.join(repo, "build", "bench.json")),
        strict=os.environ.get("BENCH_STRICT") == "1",
        cases_env=env("BENCH_CASES", DEFAULT_CASES),
        data=os.path.join(build, "benchdata"),
    )
    return s


def _run_group(b, g):
    """Runs a group's cases; a crash in one is reported and the others go on."""
    ok = True
    if g.start:
        g.start(b)
    try:
        for case in g.cases:
            try:
                case.run(b)
            except Exception:
                ok = False
                print(f"bench: case {case.__name__} crashed:\n{traceback.format_exc()}",
                      file=sys.stderr, flush=True)
    finally:
        if g.stop:
            g.stop(b)
    return ok


def main(argv):
    # Lines in order with the tools' own output, also through a pipe.
    sys.stdout.reconfigure(line_buffering=True)
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        print("usage: bench/run.py BUILD_DIR   (normally run by 'make bench')", file=sys.stderr)
        return 2
    build = os.path.realpath(argv[0])
    repo = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    s = _settings(build, repo)

    names = {g.name for g in GROUPS}
    for c in s["cases_env"].split():
        if c not in names:
            print(f"bench: BENCH_CASES: unknown group '{c}' ({', '.join(g.name for g in GROUPS)})",
                  file=sys.stderr)
            return 2
    for t in (s["seg_gen"], s["seg_ceiling"]):
        if not os.access(t, os.X_OK):
            print(f"bench: {t} is missing; build first ('make bench' does)", file=sys.stderr)
            return 1
    if not os.access("/usr/bin/time", os.X_OK):
        print("bench: /usr/bin/time is missing (apt-get install time)", file=sys.stderr)
        return 1
    s["have_segd"] = os.access(s["segd"], os.X_OK)
    if not s["have_segd"]:
        print(f"bench: {s['segd']} not built; replay cases will be 'not measured'",
              file=sys.stderr)

    os.makedirs(s["data"], exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(s["out_json"])), exist_ok=True)
    s["tmp"] = tempfile.mkdtemp(prefix="segbench.", dir=os.environ.get("TMPDIR") or "/tmp")
    b = common.Bench(**s)

    # SIGTERM unwinds like Ctrl-C, so the finally below stops what runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        # The bench uses config/segd.yaml when it exists, so it measures what
        # users run (segd's built-in defaults otherwise). The file is copied
        # once, so every run sees the same config even if the tree changes.
        b.config_args, b.config_note = [], "built-in defaults"
        if os.path.isfile(b.config):
            shutil.copy(b.config, b.path("segd.yaml"))
            b.config_args, b.config_note = ["--config", b.path("segd.yaml")], b.config
        print(f"segd bench: groups: {b.cases_env} | seed {b.seed}, config {b.config_note}",
              flush=True)

        crashed = False
        chosen = []
        for g in GROUPS:
            on = g.selected(b) if g.selected else g.name in b.cases_env.split()
            if on:
                chosen.append(g)
                crashed |= not _run_group(b, g)
            elif g.skipped:
                g.skipped(b)

        for g in GROUPS:
            if g in chosen:
                b.groups_run.append(g.name)
                b.group_info[g.name] = g.info(b) if g.info else {}
                for case in g.cases:
                    try:
                        case.report(b)
                    except Exception:
                        crashed = True
                        print(f"bench: report of {case.__name__} crashed:\n"
                              f"{traceback.format_exc()}", file=sys.stderr, flush=True)
            elif g.pending:
                g.pending(b)
        status = common.report(b)
        return 1 if crashed else status
    finally:
        b.kill_all()
        for mc in b.clusters:
            mc.stop()
        shutil.rmtree(b.tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
