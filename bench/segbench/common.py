"""common: what every case shares: runs, medians, ceilings, the table and the results file.

Why it looks like this: an absolute events/s figure moves with the CPU, the
load from other processes and the library builds, so every rate is reported
next to a ceiling measured in the same run on the same input (simdjson
parse-only, msgpack-c unpack-only, librdkafka consume-only), and ceiling and
measured runs alternate so that drifting load hits both. Each case runs
several times and the median is the result; min and max show the noise.

A case module records runs with Bench.record() while it measures (one dict
per run, "ok": False and an "error" when the run failed, so a broken run is
visible in the table, not averaged in), and turns them into table rows with
Bench.add() when the report is made. report() prints the table and merges
the rows into the results file (BENCH_JSON, build/bench.json by default).
"""

import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import time


def label(n):
    """1000000 -> "1M", 20000 -> "20k", 1234 -> "1234"."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def median(vals):
    """The median of a list, None for an empty one."""
    return statistics.median(vals) if vals else None


def stats(vals):
    """median, min and max of a list (all None when it is empty)."""
    if not vals:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}


def tail(path, n=300):
    """The last n characters of a text file, stripped ("" if unreadable)."""
    try:
        with open(path, errors="replace") as f:
            return f.read().strip()[-n:]
    except OSError:
        return ""


def head(path, n=300):
    try:
        with open(path, errors="replace") as f:
            return f.read().strip()[:n]
    except OSError:
        return ""


def load_json(path):
    with open(path) as f:
        return json.load(f)


def status_of(proc):
    """A finished Popen's status as a shell's `wait` gives it (128 + signal)."""
    rc = proc.returncode
    return 128 - rc if rc < 0 else rc


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (for metrics.listen)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def warm(path):
    """Reads a file once, so the runs read it from the page cache and
    measure CPU, not the disk."""
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass


def proc_cpu_ticks(pid):
    """utime + stime of a process in clock ticks, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid):
    t = proc_cpu_ticks(pid)
    return None if t is None else t / CLK_TCK


class Bench:
    """One run of the suite: its settings, the runs recorded so far, the
    data sets used and the table rows made from them.

    Settings (read by bench/run.py from the environment): repo, build,
    sizes (customer counts; base = sizes[0], large = sizes[1] or None),
    seed, days, repeat, repeat_large, out_json, strict, cases_env (the raw
    BENCH_CASES), segd, seg_gen, seg_ceiling, have_segd, config_args,
    config_note, data (the dataset cache directory), tmp (this run's
    scratch directory, removed at exit)."""

    def __init__(self, **settings):
        self.__dict__.update(settings)
        self.runs = []        # one dict per measured run, key "case"
        self.datasets = []    # seg_gen summaries of the data sets used, key "path"
        self.rows = []        # table rows of the groups run
        self.groups_run = []  # names of the groups that ran
        self.group_info = {}  # extra runs_by_group fields per group
        self.clusters = []    # mock clusters (kafka.start_cluster), stopped at exit
        self._procs = []      # background processes, killed at exit

    @property
    def base(self):
        return self.sizes[0]

    @property
    def large(self):
        return self.sizes[1] if len(self.sizes) > 1 else None

    def env(self, name, default):
        """An environment variable ("" counts as unset, as ${X:-d} does)."""
        return os.environ.get(name) or default

    def env_int(self, name, default):
        return int(self.env(name, default))

    def path(self, name):
        """A file in this run's scratch directory."""
        return os.path.join(self.tmp, name)

    # ---- processes ---------------------------------------------------------
    def spawn(self, args, **kw):
        """Starts a background process; it is killed at exit if still running."""
        p = subprocess.Popen(args, **kw)
        self._procs.append(p)
        return p

    def stop(self, p, timeout=30.0):
        """SIGTERM, up to `timeout` seconds to exit, then SIGKILL. Returns
        its status as the shell reports it (128 + signal when killed)."""
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return status_of(p)

    def kill_all(self):
        for p in self._procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def call(self, args, stdout=None, stderr=None, stdin=None, timeout=None):
        """Runs a command to its end; stdout/stderr are file paths (or
        None: inherited). Returns its exit status (124 on timeout)."""
        outs = [open(x, "wb") if isinstance(x, str) else x for x in (stdout, stderr)]
        try:
            p = self.spawn(args, stdout=outs[0], stderr=outs[1], stdin=stdin)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                return 124
            return status_of(p)
        finally:
            for f, x in zip(outs, (stdout, stderr)):
                if isinstance(x, str):
                    f.close()

    # ---- runs --------------------------------------------------------------
    def record(self, run):
        """Adds one run (a dict with "case" and "ok")."""
        self.runs.append(run)
        return run

    def fail(self, case, error):
        """Records a failed run of `case`."""
        return self.record({"case": case, "ok": False, "error": error})

    def sel(self, case):
        return [r for r in self.runs if r["case"] == case]

    def metric(self, case, key):
        """(values of `key` in the ok runs of `case`, errors of its failed runs)."""
        rs = self.sel(case)
        bad = [r.get("error", "failed") for r in rs if not r["ok"]]
        return [r[key] for r in rs if r["ok"] and key in r], bad

    def progress(self, case):
        """Prints the last run of `case`: its rate, or its error."""
        rs = self.sel(case)
        r = rs[-1]
        if not r["ok"]:
            print(f"  {case} run {len(rs)}: ERROR {r.get('error')}", flush=True)
            return
        extra = f", max RSS {r['max_rss_bytes'] / 2**20:.0f} MiB" if "max_rss_bytes" in r else ""
        extra += f", cpu {r['cpu_seconds']:.2f}s" if "cpu_seconds" in r else ""
        unit = "msgs" if case == "kafka_produce" else "events"
        print(f"  {case} run {len(rs)}: {r['events_per_second'] / 1e6:.3f}M {unit}/s{extra}",
              flush=True)

    # ---- table rows --------------------------------------------------------
    def add(self, cid, desc, unit, vals, errors, ceiling=None, ceiling_desc=None,
            target=None, check=None, note=None, status=None):
        """Adds a table row (a case of the results file) and returns it.

        vals: the measured values (one per run); errors: the errors of the
        failed runs. ceiling: the value the median is divided by for
        "ratio". check(row) -> bool judges the target (PASS/FAIL); without
        one a measured row is "info". No values: "not measured" when nothing
        failed or only a binary was not built, else ERROR. Any failed run
        makes a measured row an ERROR too: its median would be biased."""
        c = {"id": cid, "case": desc, "unit": unit, "runs": vals, **stats(vals),
             "ceiling": ceiling, "ceiling_desc": ceiling_desc, "ratio": None,
             "target": target, "status": status, "note": note}
        if errors:
            c["errors"] = errors
        if status is None:
            if not vals:
                c["status"] = ("ERROR" if errors and not all("not built" in x for x in errors)
                               else "not measured")
            else:
                if ceiling:
                    c["ratio"] = c["median"] / ceiling
                c["status"] = ("ERROR" if errors else
                               ("PASS" if check(c) else "FAIL") if check else "info")
        self.rows.append(c)
        return c


# ---- the runs every replay-based case makes ------------------------------------
def ceiling(b, case, fmt, path):
    """One run of seg_bench_ceiling (parse-only rate of the file) as `case`."""
    out, err = b.path("ceil.json"), b.path("ceil.err")
    rc = b.call([b.seg_ceiling, "--format", fmt, path], stdout=out, stderr=err)
    r = {"case": case, "ok": False}
    try:
        d = load_json(out)
        r.update(d)
        r["ok"] = rc == 0 and d["errors"] == 0
        if d.get("cpu_seconds"):
            r["events_per_cpu_second"] = d["records"] / d["cpu_seconds"]
        if not r["ok"]:
            r["error"] = f"exit {rc}, {d['errors']} parse errors"
    except Exception as e:
        r["error"] = f"exit {rc}: {head(err) or e}"
    b.record(r)
    b.progress(case)


def replay(b, case, fmt, path, customers, events, extra=(), config_args=None):
    """One `segd replay` of a data set under /usr/bin/time, as `case`.

    Output goes to /dev/null. events/s is segd's own figure (events read /
    its wall time); CPU, wall and max RSS come from /usr/bin/time (the whole
    process, start-up and tear-down included), segd's own figures are kept
    next to them as segd_*. A run counts only if it read all `events` of
    the data set and rejected none: one that did not fold the whole data
    set measured something else. extra: more segd arguments; config_args:
    instead of the bench's --config (e.g. a case's own config file)."""
    if not b.have_segd:
        b.fail(case, "segd not built")
        return
    sumf, timef, errf = b.path("sum.json"), b.path("time.txt"), b.path("replay.err")
    if os.path.exists(sumf):
        os.unlink(sumf)
    cfg = b.config_args if config_args is None else list(config_args)
    rc = b.call(["/usr/bin/time", "-f", "%e %U %S %M", "-o", timef, b.segd, "replay", *cfg,
                 "--input", path, "--format", fmt, "--summary-json", sumf, *extra],
                stdout=subprocess.DEVNULL, stderr=errf)
    r = {"case": case, "ok": False, "customers_generated": customers}
    try:
        # /usr/bin/time's last line: elapsed user sys maxrss(KB)
        with open(timef) as f:
            el, us, sy, rss = f.read().split("\n")[-2].split()
        r.update(wall_seconds=float(el), cpu_seconds=float(us) + float(sy),
                 max_rss_bytes=int(rss) * 1024)
    except Exception:
        pass
    try:
        s = load_json(sumf)
    except Exception:
        s = None
    if rc != 0:
        r["error"] = f"segd exit {rc}: " + tail(errf)
    elif s is None:
        r["error"] = "no --summary-json output"
    else:
        for k in ("events_read", "events_folded", "rejected", "customers", "transitions",
                  "deadlines_fired", "state_bytes", "events_per_second",
                  "decode_cpu_seconds", "fold_cpu_seconds", "write_cpu_seconds"):
            if s.get(k) is not None:
                r[k] = s[k]
        # Replay runs three threads on two cores: the fold on one, the
        # decoder and the writer sharing the other. The pace on two idle
        # cores is set by the busiest thread, or by half the CPU of all
        # three if the cores cannot be shared out evenly: events per
        # CPU-second of that is the rate two idle cores would give, and it
        # moves less with the load.
        d, f, w = (s.get(k) or 0 for k in ("decode_cpu_seconds", "fold_cpu_seconds",
                                           "write_cpu_seconds"))
        busiest = max(d, f, w, (d + f + w) / 2)
        if busiest > 0:
            r["events_per_busiest_thread_cpu_second"] = s.get("events_read", events) / busiest
        for k in ("cpu_seconds", "wall_seconds", "max_rss_bytes"):
            if s.get(k) is not None:
                r["segd_" + k] = s[k]
                r.setdefault(k, s[k])
        if "events_per_second" not in r and r.get("wall_seconds"):
            r["events_per_second"] = s.get("events_read", events) / r["wall_seconds"]
        if s.get("events_read") != events or s.get("rejected", 0) != 0:
            r["error"] = (f"read {s.get('events_read')} events (want {events}), "
                          f"rejected {s.get('rejected')}")
        else:
            r["ok"] = True
        if r.get("cpu_seconds"):
            r["events_per_cpu_second"] = events / r["cpu_seconds"]
    b.record(r)
    b.progress(case)


# ---- the report --------------------------------------------------------------
def replay_pair(b, what, off_case, on_case, config):
    """The base-size JSON set replayed b.repeat times, alternately with the
    bench's config (off_case) and with `config` (on_case): the same file in
    the same minutes, so load on the shared machine hits both."""
    B = label(b.base)
    d = b.files[b.base, "json"]
    print(f"== {B} customers: JSON, {what}", flush=True)
    warm(d.path)
    for _ in range(b.repeat):
        replay(b, off_case, "json", d.path, b.base, d.events)
        replay(b, on_case, "json", d.path, b.base, d.events, config_args=["--config", config])


def _fmt(unit, x):
    if x is None:
        return "-"
    if unit in ("events/s", "msgs/s"):
        return f"{x / 1e6:.3f}M/s"
    if unit == "bytes":
        return f"{x:.1f} B"
    if unit == "ms":
        return f"{x:.1f} ms"
    if unit.startswith("s"):
        return f"{x:.3f} s"
    return f"{x:g}"


def table_lines(rows):
    """The printed table: one line per row, then its notes and errors."""
    t = [("case", "median", "min", "max", "ceiling", "ratio", "target", "result")]
    for c in rows:
        u = c["unit"]
        t.append((c["case"], _fmt(u, c["median"]), _fmt(u, c["min"]), _fmt(u, c["max"]),
                  _fmt(u, c["ceiling"]),
                  f"{c['ratio']:.2f}x" if c["ratio"] is not None else "-",
                  c["target"] or "-", c["status"]))
    w = [max(len(r[i]) for r in t) for i in range(len(t[0]))]
    out = []
    for i, r in enumerate(t):
        out.append("  ".join(s.ljust(w[j]) for j, s in enumerate(r)).rstrip())
        if i == 0:
            out.append("  ".join("-" * x for x in w))
    for c in rows:
        if c.get("note") and c["status"] not in ("pending",):
            out.append(f"  * {c['case']}: {c['note']}")
        for err in c.get("errors", [])[:2]:
            out.append(f"  ! {c['case']}: {err}")
    return out


def merge(old, rows, datasets, groups_run, group_info, now):
    """The new results file from the old one and this run.

    A row measured now replaces the one with the same id; rows of groups
    not run this time stay as they were; a "pending" placeholder never
    replaces a measured row. runs_by_group says when each group last ran.
    Returns the dict to write, without "machine" and "build_dir"."""
    new = {c["id"]: c for c in rows}
    merged, seen = [], set()
    for c in old.get("cases", []):
        n = new.get(c["id"])
        if n and not (str(n["status"]).startswith("pending")
                      and not str(c["status"]).startswith("pending")):
            c = n
        merged.append(c)
        seen.add(c["id"])
    merged += [c for c in rows if c["id"] not in seen]
    ds_new = {d["path"] for d in datasets}
    dsets_all = [d for d in old.get("datasets", []) if d.get("path") not in ds_new] + datasets
    runs_by = dict(old.get("runs_by_group", {}))
    for g in groups_run:
        runs_by[g] = {"generated_at": now, **group_info.get(g, {})}
    return {"runs_by_group": runs_by, "datasets": dsets_all, "cases": merged}


def _sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return ""


def machine():
    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    with open("/proc/meminfo") as f:
        mem = next((int(l.split()[1]) * 1024 for l in f if l.startswith("MemTotal")), 0)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return {"cpu": cpu, "nproc": os.cpu_count(), "mem_bytes": mem,
            "kernel": platform.release(), "cc": _sh("cc --version | head -1"),
            "cjson": _sh("pkg-config --modversion libcjson"),
            "msgpack_c": _sh("pkg-config --modversion msgpack"), "loadavg": load}


def librdkafka_version():
    return _sh("pkg-config --modversion rdkafka")


def report(b):
    """Prints the table and the data sets, writes the results file.
    Returns the exit status: 1 if a row is an ERROR, or a target FAILed
    with BENCH_STRICT=1; else 0."""
    rows = b.rows
    print()
    for line in table_lines(rows):
        print(line)
    print()
    for d in b.datasets:
        print(f"  data: {d['customers']} customers, {d['events']} events, {d['bytes']} bytes "
              f"{d['format']}, generated in {d['seconds']:.1f}s: {os.path.basename(d['path'])}")
    try:
        old = load_json(b.out_json)
    except Exception:
        old = {}
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    m = merge(old, rows, b.datasets, b.groups_run, b.group_info, now)
    replay_ran = "replay" in b.groups_run
    out = {
        "generated_at": now,
        "machine": machine(),
        "build_dir": b.build,
        "repeat": b.repeat if replay_ran else old.get("repeat", b.repeat),
        "repeat_large": b.repeat_large if replay_ran else old.get("repeat_large", b.repeat_large),
        **m,
    }
    with open(b.out_json + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
    os.replace(b.out_json + ".tmp", b.out_json)
    print(f"  results: {b.out_json}")
    if any(c["status"] == "ERROR" for c in rows):
        return 1
    if b.strict and any(c["status"] == "FAIL" for c in rows):
        return 1
    return 0
