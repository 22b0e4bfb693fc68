"""daemon_lib: process, HTTP, data and verification helpers for
daemon_tests.py (the `segd run` integration tests).

Why a module of its own: every daemon case needs the same plumbing (start
segd as a separate process on its own metrics port and log, read its
/metrics, dump a topic with kcat, run `segd replay` on the same events,
wait for a condition with a deadline) and none of it should hide inside a
case, where a bug in the plumbing would look like a bug in segd.

Independence: events are produced, and DLQ records read, with kafka-python
(tests/harness/kafkatool.py), a pure-Python implementation of the Kafka
protocol; bulk output is read with kcat, a separate librdkafka program.
Expected output always comes from `segd replay` on the same events, which
tests/integration/test_replay_datasets.sh holds against the independent
reference model; nothing expected is hard-coded from a daemon run.

Hygiene: every segd started here is killed at exit (atexit) and, through
PR_SET_PDEATHSIG, also when this Python process dies hard; the harness
cluster watches its parent the same way. Every wait has a deadline.
"""

import atexit
import ctypes
import glob
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import zlib

SEGD = os.environ.get("SEGD", "")
SEG_SRC = os.environ.get("SEG_SRC") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
SEG_BUILD = os.environ.get("SEG_BUILD", "")
SEG_SHARED = os.environ.get("SEG_SHARED") or os.path.join(SEG_SRC, "..", "shared")
PY = "/usr/bin/python3"

sys.path.insert(0, os.path.join(SEG_SRC, "tests", "harness"))
import kafkatool  # noqa: E402  (path set above)
from cluster import start_cluster  # noqa: E402,F401  (re-exported)

_LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # Runs in the child between fork and exec: segd gets SIGKILL when the
    # test process dies, so a test killed by ctest's timeout leaves no
    # daemon behind.
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class TestFailure(Exception):
    """A precondition of a case did not hold; the case cannot go on."""


WAITS = []   # (what, seconds taken, deadline, met): every wait_for of this process


def wait_for(what, fn, timeout, interval=0.2):
    """Calls fn() until it returns something truthy; returns that. Raises
    TestFailure naming `what` after `timeout` seconds. Each wait is
    recorded in WAITS, so a run can report how close its waits came to
    their deadlines (slowest_waits)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        v = fn()
        if v:
            WAITS.append((what, time.monotonic() - t0, timeout, True))
            return v
        if time.monotonic() >= deadline:
            WAITS.append((what, time.monotonic() - t0, timeout, False))
            raise TestFailure(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def slowest_waits(n=5, since=0):
    """The n waits (of WAITS[since:]) that used the largest share of their
    deadline, as text: a run that passes with a wait at 90 % of its
    deadline is a flake waiting to happen on a slower machine."""
    worst = sorted(WAITS[since:], key=lambda w: w[1] / w[2] if w[2] else 0, reverse=True)[:n]
    return "; ".join(f"{what[:60]} {took:.1f}/{limit:.0f}s{'' if met else ' (missed)'}"
                     for what, took, limit, met in worst)



class Checks:
    """The assertions of one suite run: each is printed as ok/FAIL/XFAIL
    with the case's name, and counted for the summary."""

    def __init__(self):
        self.passed = self.failed = self.xfailed = 0
        self.case = ""

    def check(self, desc, cond, detail="", xfail=None):
        """Records one assertion. xfail: the reason it is a known bug."""
        name = f"{self.case}: {desc}"
        if xfail and cond:
            self.failed += 1
            print(f"FAIL {name}: passes, but is marked XFAIL ({xfail}); remove the marker",
                  flush=True)
        elif xfail:
            self.xfailed += 1
            print(f"XFAIL {name} (known bug: {xfail})", flush=True)
            if detail:
                print("     " + str(detail).replace("\n", "\n     "), flush=True)
        elif cond:
            self.passed += 1
            print(f"ok   {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}", flush=True)
            if detail:
                print("     " + str(detail).replace("\n", "\n     "), flush=True)
        return bool(cond)


def run_suite(checks, cases, argv, prefix, tools=()):
    """A suite's main: runs the cases named in argv (all when none), each
    as fn(checks, its own work directory), with a case that raises counted
    as a failure, not a crash of the run. A SIGTERM (ctest or timeout(1)
    giving up) unwinds through the cases' finally blocks and atexit, which
    stop segd and the cluster. Work files are kept when something failed.
    Returns the exit status."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not SEGD or not os.access(SEGD, os.X_OK):
        print("FAIL SEGD must point at the segd binary")
        return 1
    for tool in tools:
        if not shutil.which(tool):
            print(f"FAIL {tool} is not installed (scripts/install-deps.sh)")
            return 1
    chosen = [f for f in cases if not argv or f.__name__ in argv]
    unknown = set(argv) - {f.__name__ for f in cases}
    if unknown:
        print(f"unknown case(s): {sorted(unknown)}; known: {[f.__name__ for f in cases]}")
        return 2
    work = tempfile.mkdtemp(prefix=prefix)
    times = []
    t_all = time.monotonic()
    try:
        for fn in chosen:
            checks.case = fn.__name__
            cwork = os.path.join(work, fn.__name__)
            os.makedirs(cwork)
            t0 = time.monotonic()
            nwaits = len(WAITS)
            try:
                fn(checks, cwork)
            except TestFailure as e:
                checks.check("runs to the end", False, e)
            except Exception:
                checks.check("runs to the end", False, traceback.format_exc())
            times.append((fn.__name__, time.monotonic() - t0))
            print(f"-- {fn.__name__}: {times[-1][1]:.1f}s (slowest wait: "
                  f"{slowest_waits(1, nwaits) or 'none'})", flush=True)
    finally:
        _kill_all()
        if checks.failed == 0 and not os.environ.get("SEG_KEEP_WORK"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"(work files kept in {work})")
    print("times: " + ", ".join(f"{n} {t:.1f}s" for n, t in times) +
          f"; total {time.monotonic() - t_all:.1f}s")
    print(f"{checks.passed} passed, {checks.failed} failed" +
          (f", {checks.xfailed} expected failures (known bugs)" if checks.xfailed else ""))
    return 1 if checks.failed else 0


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago. Another process
    may take it before it is used: segd is started on port 0 instead
    (listening_port)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening_ports(pid):
    """TCP ports process `pid` listens on: its socket inodes (/proc/PID/fd)
    matched against the LISTEN rows of /proc/PID/net/tcp and tcp6."""
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return set()
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in (f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            col = row.split()
            if len(col) > 9 and col[3] == "0A" and col[9] in inodes:
                ports.add(int(col[1].rsplit(":", 1)[1], 16))
    return ports


def listening_port(proc, name, timeout=60.0):
    """The one port `proc` (a segd started with metrics.listen on port 0)
    listens on, once it does.

    Why port 0: a port picked by the test and handed to segd is free only
    "a moment ago"; another process (a concurrent suite's cluster, a kcat)
    can take it before segd binds it, and with tens of segd per suite and
    two suites at a time that is a matter of time. The kernel picks a free
    port at the bind itself; it is read back here from the process's
    listening socket, whatever segd's log settings are."""
    def found():
        ports = listening_ports(proc.pid)
        if not ports and proc.poll() is not None:
            raise TestFailure(f"{name} exited ({proc.returncode}) before it listened")
        return ports
    ports = wait_for(f"{name} to listen on its metrics port", found, timeout, 0.05)
    if len(ports) != 1:
        raise TestFailure(f"{name} listens on {sorted(ports)}, expected its metrics port only")
    return ports.pop()


def http_get(port, path, timeout=5.0):
    """(status, body text, content type) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers.get("Content-Type", "")


def http_post(port, path, timeout=5.0, body=b""):
    """(status, body text, content type) of POST http://127.0.0.1:port/path."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers.get("Content-Type", "")


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text -> list of (name, {label: value}, float)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"not a Prometheus sample line: {line!r}")
        labels = dict(_LABEL.findall(m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


class Metrics:
    """One scrape of /metrics."""

    def __init__(self, text):
        self.text = text
        self.samples = parse_metrics(text)

    def get(self, name, **labels):
        """Sum of the samples of `name` whose labels include `labels`;
        None if there is no such sample."""
        vals = [v for n, ls, v in self.samples
                if n == name and all(ls.get(k) == str(x) for k, x in labels.items())]
        return sum(vals) if vals else None

    def series(self, name):
        return [(ls, v) for n, ls, v in self.samples if n == name]

    def lag_partitions(self, topic):
        """Partitions of `topic` this instance holds (it keeps one
        segd_consumer_lag series per assigned partition)."""
        return {int(ls["partition"]) for ls, _ in self.series("segd_consumer_lag")
                if ls.get("topic") == topic}


_LIVE = set()


class Segd:
    """`segd run` as a separate process, with its own metrics port and its
    stderr in WORK/NAME.stderr. `sets` are extra --set overrides. Unless
    they set state.dir, the instance keeps its snapshots in WORK/NAME.state
    (never in the current directory, where another case's snapshots of
    the same partition numbers would be restored)."""

    def __init__(self, name, work, bootstrap, sets=(), metrics=True, config=None):
        sets = list(sets)
        if not any(s.startswith("state.dir=") for s in sets):
            sets.append(f"state.dir={os.path.join(work, name + '.state')}")
        self.name = name
        self._metrics = metrics
        self._port = None
        self.stderr_path = os.path.join(work, f"{name}.stderr")
        self.stdout_path = os.path.join(work, f"{name}.stdout")
        self.args = [SEGD, "run"] + (["--config", config] if config else []) + [
                     "--set", f"kafka.brokers={bootstrap}",
                     "--set", "metrics.listen=127.0.0.1:0" if metrics
                     else "metrics.listen=off"]
        for s in sets:
            self.args += ["--set", s]
        self.t0 = time.monotonic()
        self._err = open(self.stderr_path, "ab")
        self._out = open(self.stdout_path, "ab")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, preexec_fn=_die_with_parent)
        _LIVE.add(self)

    @property
    def port(self):
        """The metrics port (None without metrics): segd listens on port 0
        and the kernel's choice is read back once it listens
        (listening_port), waiting for that if need be."""
        if self._port is None and self._metrics:
            self._port = listening_port(self.proc, self.name)
        return self._port

    @port.setter
    def port(self, value):
        self._port = value

    def exit_code(self, timeout):
        """Waits up to `timeout` s for segd to stop by itself: its exit
        code, or None if it is still running."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        """segd's stderr so far (its log when log.file is unset)."""
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=30.0, text=None):
        """Waits until the log matches regex `pattern`; returns the match.
        Fails early if segd exits."""
        rx = re.compile(pattern, re.M)

        def seen():
            m = rx.search(text() if text else self.log())
            if not m and not self.alive():
                raise TestFailure(f"{self.name} exited ({self.proc.returncode}) before its log "
                                  f"showed /{pattern}/; log tail:\n{tail(self.log())}")
            return m
        return wait_for(f"{self.name} log /{pattern}/", seen, timeout)

    def http(self, path):
        return http_get(self.port, path)

    def metrics(self):
        st, body, _ = self.http("/metrics")
        if st != 200:
            raise TestFailure(f"{self.name} /metrics answered {st}")
        return Metrics(body)

    def wait_http(self, timeout=15.0):
        """Waits until the metrics server answers."""
        def up():
            if not self.alive():
                raise TestFailure(f"{self.name} exited ({self.proc.returncode}) at startup:\n"
                                  f"{tail(self.log())}")
            try:
                return self.http("/healthz")[0] == 200
            except OSError:
                return False
        wait_for(f"{self.name} /healthz", up, timeout, 0.1)

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def term(self, timeout=35.0):
        """SIGTERM, then wait; returns (exit status, seconds taken) or
        (None, timeout) if it did not exit in time (then it is killed)."""
        if not self.alive():
            return self.proc.returncode, 0.0
        t = time.monotonic()
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None, timeout
        return rc, time.monotonic() - t

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        for f in (self._err, self._out):
            try:
                f.close()
            except OSError:
                pass
        _LIVE.discard(self)


@atexit.register
def _kill_all():
    for s in list(_LIVE):
        s.kill()


def tail(text, n=15):
    return "\n".join(text.rstrip("\n").split("\n")[-n:])


# ---- topics --------------------------------------------------------------------

def kcat_dump(bootstrap, topic, fmt="%p\t%o\t%k\t%s\n", timeout=180.0):
    """Every record of `topic` from the beginning, read by kcat: a list of
    tuples split on tabs (partition, offset, key, value by default)."""
    r = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning",
                        "-e", "-q", "-f", fmt], capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise TestFailure(f"kcat -t {topic} failed ({r.returncode}): "
                          f"{r.stderr.decode(errors='replace')[-500:]}")
    nf = fmt.count("\t") + 1
    out = []
    for line in r.stdout.split(b"\n"):
        if line:
            out.append(tuple(line.split(b"\t", nf - 1)))
    return out


def topic_size(bootstrap, topic):
    """How many records `topic` holds (the sum over its partitions of end
    minus begin offset), from one ListOffsets round trip with kafka-python.

    Why: a wait for a large output topic to be complete must not read and
    parse the whole topic every second. On a loaded machine that reading
    took most of a core (kcat decompressing tens of MB, Python parsing
    hundreds of thousands of lines) away from segd and the cluster, and the
    wait itself then ran out of time. Waits poll this instead and read the
    topic only once it holds enough records and has grown since the last
    read (grown())."""
    o = kafkatool.offsets(bootstrap, topic)
    return sum(e - (o["begin"].get(p) or 0) for p, e in o["end"].items())


def grown(bootstrap, topic, least, state):
    """True when `topic` holds at least `least` records and more than when
    this last returned True for the same `state` dict (kept in
    state["size"]): the moment to read the topic again."""
    n = topic_size(bootstrap, topic)
    if n < least or n <= state.get("size", -1):
        return False
    state["size"] = n
    return True


def transitions(records):
    """(partition, offset, key, value) records -> {id: value bytes},
    conflicts [(id, value1, value2)], keys that differ from customer_id."""
    by_id, conflicts, badkeys = {}, [], []
    for rec in records:
        key, val = rec[-2], rec[-1]
        t = json.loads(val)
        if key.decode() != t["customer_id"]:
            badkeys.append((key, t["customer_id"]))
        old = by_id.get(t["id"])
        if old is None:
            by_id[t["id"]] = val
        elif old != val:
            conflicts.append((t["id"], old, val))
    return by_id, conflicts, badkeys


def lost_heads(records):
    """Partitions whose first record is not at offset 0 in a kcat dump:
    the mock keeps about 5 MB per partition and silently drops the oldest
    message sets beyond that, which must show as such, not as a segd bug."""
    first = {}
    for rec in records:
        p, o = int(rec[0]), int(rec[1])
        first[p] = min(o, first.get(p, o))
    return {p: o for p, o in first.items() if o != 0}


def at_of(line):
    return json.loads(line)["at"]


def committed_at_end(bootstrap, topic, group):
    """True when `group` has committed the end offset of every partition
    of `topic` (read with kafka-python's OffsetFetch)."""
    o = kafkatool.offsets(bootstrap, topic, group)
    return all(o["committed"].get(p) == e for p, e in o["end"].items()), o


def wait_committed(bootstrap, topic, group, timeout, watch=()):
    """Waits until group has committed the end of topic; fails early if one
    of the Segd processes in `watch` exits meanwhile."""
    last = {}

    def done():
        for seg in watch:
            if not seg.alive():
                raise TestFailure(f"{seg.name} exited ({seg.proc.returncode}) while catching "
                                  f"up:\n{tail(seg.log())}")
        ok, o = committed_at_end(bootstrap, topic, group)
        last["o"] = o
        return ok
    try:
        wait_for(f"group {group} to commit the end of {topic}", done, timeout, 0.5)
    except TestFailure as e:
        raise TestFailure(f"{e}: {last.get('o')}") from None
    return last["o"]


# ---- state on disk and restores ---------------------------------------------------

SNAP_MAGIC = b"SEGDSNP1"


def snapshot_files(state_dir, topic):
    return sorted(glob.glob(os.path.join(state_dir, f"{topic}.*.snap")))


def snapshot_header(path):
    """Checks a snapshot file independently of segd's loader (magic, body
    length, CRC-32 of the body, as docs/guarantees.md specifies) and returns
    its MessagePack header map. Raises TestFailure when it is not intact."""
    import msgpack  # Debian python3-msgpack
    with open(path, "rb") as f:
        data = f.read()
    problems = []
    if len(data) < 24 or data[:8] != SNAP_MAGIC:
        raise TestFailure(f"{path}: no snapshot magic")
    blen, crc, zero = struct.unpack_from("<QII", data, 8)
    if blen != len(data) - 24:
        problems.append(f"body is {len(data) - 24} bytes, header says {blen}")
    elif zlib.crc32(data[24:]) != crc:
        problems.append("CRC-32 mismatch")
    if zero != 0:
        problems.append(f"reserved header word is {zero}")
    if problems:
        raise TestFailure(f"{path}: " + "; ".join(problems))
    u = msgpack.Unpacker(raw=False, strict_map_key=False)
    u.feed(data[24:])
    return next(u)


def snapshot_offsets(state_dir, topic):
    """{partition: next_offset} of the snapshots of `topic` in state_dir
    (segd renames a snapshot into place whole, so each one read is
    complete)."""
    out = {}
    for path in snapshot_files(state_dir, topic):
        h = snapshot_header(path)
        out[int(h["partition"])] = int(h["next_offset"])
    return out


def restore_lines(log):
    """{partition: (source, offset)} from a segd log's restore lines, the
    last one per partition: source is "loaded" (local snapshot), "rebuilt"
    (changelog) or "no" (no saved state, offset None)."""
    out = {}
    for m in re.finditer(r"restore: [^\[\n]+\[(\d+)\]: (loaded snapshot|rebuilt from changelog"
                         r"|no saved state)[^\n]*?(?:resuming at offset (\d+))?$", log, re.M):
        out[int(m.group(1))] = (m.group(2).split()[0], int(m.group(3)) if m.group(3) else None)
    return out


# ---- data --------------------------------------------------------------------------

_CDNOW = {}


def cdnow_events(work):
    """The whole CDNOW data set as NDJSON events in time order (bytes lines,
    no newline), converted with tools/cdnow2events.py --sort-by-time so that
    every partition of the input topic is in ts order."""
    if "lines" not in _CDNOW:
        src = os.path.join(SEG_SHARED, "data", "cdnow", "CDNOW_master.txt")
        out = os.path.join(work, "cdnow.ndjson")
        subprocess.run([PY, os.path.join(SEG_SRC, "tools", "cdnow2events.py"), "--sort-by-time",
                        src, out], check=True, stderr=subprocess.DEVNULL, timeout=120)
        with open(out, "rb") as f:
            _CDNOW["lines"] = [l.rstrip(b"\n") for l in f if l.strip()]
    return _CDNOW["lines"]


def cid_of(line):
    return json.loads(line)["customer_id"]


def ts_of(line):
    return json.loads(line)["ts"]


def subset(lines, every, rest=0):
    """Events of every `every`-th CDNOW customer (id % every == rest),
    order kept. Ids follow the date of the first purchase, so a stride
    keeps the cohort's spread over Q1 1997, where a range would not."""
    return [l for l in lines if int(cid_of(l)) % every == rest]


def partition_of(key, nparts):
    """The partition kafka-python's default partitioner (murmur2, Java's)
    puts `key` on, which is where kafkatool.produce sends it."""
    from kafka.partitioner.default import DefaultPartitioner
    parts = list(range(nparts))
    return DefaultPartitioner()(key.encode(), parts, parts)


def sentinels(nparts, ts, prefix="zz-sentinel"):
    """One contact event per input partition, all at `ts` (the data's max).

    Why: in event time with a long idle_timeout the watermark is the
    minimum over partitions of each one's largest ts. Ending every
    partition with an event at the global max makes that minimum the max,
    so every deadline up to the end of the data fires from event time
    alone, with no wall-clock idle step, and the whole output must equal
    `segd replay` (which advances time to the largest ts). The sentinel
    customers are in the replay input too."""
    found, i = {}, 0
    while len(found) < nparts:
        cid = f"{prefix}-{i}"
        found.setdefault(partition_of(cid, nparts), cid)
        i += 1
    return [json.dumps({"type": "contact", "kind": "visit", "customer_id": cid, "ts": ts},
                       separators=(",", ":")).encode()
            for _, cid in sorted(found.items())]


def write_lines(path, lines):
    with open(path, "wb") as f:
        for l in lines:
            f.write(l + b"\n")
    return path


def replay(work, name, lines, sets=(), config=None):
    """`segd replay` on `lines` (bytes NDJSON): its transition lines."""
    path = write_lines(os.path.join(work, f"{name}.ndjson"), lines)
    args = [SEGD, "replay", "--input", path] + (["--config", config] if config else [])
    for s in sets:
        args += ["--set", s]
    r = subprocess.run(args, capture_output=True, timeout=120)
    if r.returncode != 0:
        raise TestFailure(f"segd replay failed ({r.returncode}): {r.stderr.decode()[-500:]}")
    return [l for l in r.stdout.split(b"\n") if l]


def produce(bootstrap, topic, lines, **kw):
    """kafkatool.produce, failing the case if any record was not delivered."""
    res = kafkatool.produce(bootstrap, topic, lines, **kw)
    if res["failed"]:
        raise TestFailure(f"producing to {topic}: {res}")
    return res


def diff_summary(want, got, limit=3):
    """Short description of how two sets of lines differ."""
    miss, extra = sorted(want - got), sorted(got - want)
    parts = [f"{len(miss)} missing, {len(extra)} unexpected (of {len(want)} expected)"]
    for l in miss[:limit]:
        parts.append(f"  missing:    {l.decode(errors='replace')}")
    for l in extra[:limit]:
        parts.append(f"  unexpected: {l.decode(errors='replace')}")
    return "\n".join(parts)
