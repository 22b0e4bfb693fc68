"""durability_lib: plumbing for durability_tests.py (issue 4: checkpoints,
changelog restore, crash equivalence).

Why a module of its own: every durability case does the same things (run
`segd run` as a separate process, kill it, read its log and /metrics, dump
a topic, run `segd replay` on the same events, compare) and none of that
should hide inside a case, where a bug in the plumbing would look like a
bug in segd. It is independent of daemon_lib.py (the daemon issue's tests,
written at the same time) so neither can break the other.

Independence of the checks: events are produced and every output topic is
read back with kafka-python (Debian python3-kafka), a pure-Python Kafka
client that shares no code with segd's librdkafka. Debian's kafka-python
cannot decompress lz4 (python3-lz4 is not installed), so the cases run segd
with kafka.producer.compression.type=none; compression is the producer's
business and plays no part in the guarantees under test. The expected
output always comes from `segd replay` on the same events (held against the
independent reference model by test_replay_datasets.sh), never from a
daemon run.

Hygiene: every segd started here gets SIGKILL when this Python process
dies (PR_SET_PDEATHSIG) and is killed at exit (atexit); the cases also
kill theirs in `finally`. The harness cluster watches its parent the same
way. Every wait has a deadline. Everything listens on 127.0.0.1.
"""

import atexit
import calendar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

SEG_SRC = os.environ.get("SEG_SRC") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
SEG_BUILD = os.environ.get("SEG_BUILD") or os.path.join(SEG_SRC, "build")
SEGD = os.environ.get("SEGD") or os.path.join(SEG_BUILD, "segd")
SEG_SHARED = os.environ.get("SEG_SHARED") or os.path.join(SEG_SRC, "..", "shared")
PY = "/usr/bin/python3"

sys.path.insert(0, os.path.join(SEG_SRC, "tests", "harness"))
import kafkatool  # noqa: E402  (path set above)
from cluster import start_cluster  # noqa: E402,F401
from kafka import KafkaConsumer, TopicPartition  # noqa: E402

# The generic plumbing (waits, ports, process hygiene, CDNOW events,
# sentinels, replay, produce, committed offsets) is daemon_lib's, shared
# with daemon_tests.py; what is here is what durability needs on top.
os.environ.setdefault("SEGD", SEGD)   # daemon_lib reads it at import
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import (TestFailure as Failure, _die_with_parent,  # noqa: E402,F401
                        cdnow_events, free_port, listening_port, partition_of, produce,
                        restore_lines, snapshot_files, snapshot_header,
                        replay, sentinels, tail, ts_of, wait_committed, wait_for)


def check(cond, msg):
    if not cond:
        raise Failure(msg)


# ---- segd as a process ---------------------------------------------------------

_LIVE = set()


class Segd:
    """One `segd run` process. Its stderr (the log) goes to its own file,
    WORK/NAME.log, so a case can tell what each incarnation logged."""

    def __init__(self, name, work, args, env=None):
        self.name = name
        self._port = None   # port 0: the kernel picks it (daemon_lib.listening_port)
        self.log_path = os.path.join(work, f"{name}.log")
        self.args = [SEGD, "run", "--set", "metrics.listen=127.0.0.1:0"] + args
        e = dict(os.environ)
        e.pop("SEGD_FAULT", None)
        e.update(env or {})
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=e,
                                     preexec_fn=_die_with_parent)
        _LIVE.add(self)

    @property
    def port(self):
        """The metrics port, read back once segd listens."""
        if self._port is None:
            self._port = listening_port(self.proc, self.name)
        return self._port

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=30.0, count=1):
        """Waits until regex `pattern` matches `count` times in the log;
        returns the matches. Fails at once if segd exits first."""
        rx = re.compile(pattern, re.M)

        def seen():
            m = rx.findall(self.log())
            if len(m) >= count:
                return m
            if not self.alive():
                raise Failure(f"{self.name} exited ({self.proc.returncode}) before its log "
                              f"showed /{pattern}/ x{count}; log tail:\n{tail(self.log())}")
            return None
        return wait_for(f"{self.name}: log /{pattern}/ x{count}", seen, timeout, 0.05)

    def metrics(self):
        """{(name, frozenset(labels)): value} of one /metrics scrape, or
        None if it does not answer."""
        try:
            port = self.port
        except Failure:   # it exited before it listened
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as r:
                text = r.read().decode()
        except (OSError, urllib.error.URLError):
            return None
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$', line)
            if m:
                labels = frozenset(re.findall(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"',
                                              m.group(2) or ""))
                out[(m.group(1), labels)] = float(m.group(3))
        return out

    def metric(self, name):
        """Sum of every series of `name`, or None."""
        m = self.metrics()
        if m is None:
            return None
        vals = [v for (n, _), v in m.items() if n == name]
        return sum(vals) if vals else None

    def kill9(self):
        """SIGKILL; returns the exit status (-9)."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.reap(10)

    def term(self, timeout=40.0):
        """SIGTERM and wait; returns the exit status (None: it did not exit
        within timeout and was killed)."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.reap(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None

    def reap(self, timeout):
        rc = self.proc.wait(timeout)
        self._log.close()
        _LIVE.discard(self)
        return rc

    def stop(self):
        """Kills it if it still runs (for `finally`)."""
        if self.alive():
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.reap(10)
        except (subprocess.TimeoutExpired, ValueError):
            pass


@atexit.register
def _kill_all():
    for s in list(_LIVE):
        s.stop()


# ---- a case's topics and segd settings ------------------------------------------

class Topics:
    """The topics of one case, all prefixed with its name, so cases share
    one cluster without sharing data, and the group and changelog names
    that go with them."""

    def __init__(self, prefix, partitions=6, out_partitions=32):
        self.prefix = prefix
        self.events = f"{prefix}-events"
        self.transitions = f"{prefix}-transitions"
        self.dlq = f"{prefix}-dlq"
        self.alerts = f"{prefix}-alerts"
        self.group = prefix
        self.changelog = f"{prefix}-changelog"   # segd's default: <group>-changelog
        self.partitions = partitions
        self.out_partitions = out_partitions

    def create(self, mc):
        # The changelog is co-partitioned with the input: same count.
        for name, n in ((self.events, self.partitions), (self.transitions, self.out_partitions),
                        (self.dlq, self.partitions), (self.alerts, self.partitions),
                        (self.changelog, self.partitions)):
            mc.command(f"create_topic {name} {n} 1")
        for name in (self.events, self.transitions, self.changelog):
            kafkatool.wait_topic(mc.bootstrap, name, timeout=20)

    def segd_args(self, bootstrap, state_dir, interval="2s", extra=()):
        sets = [f"kafka.brokers={bootstrap}", f"kafka.group_id={self.group}",
                f"kafka.input_topics={self.events}", f"kafka.output_topic={self.transitions}",
                f"kafka.dlq_topic={self.dlq}", f"routes={self.alerts}=lifecycle -> at_risk,churned",
                f"state.dir={state_dir}", f"checkpoint.interval={interval}",
                # Short sessions: a SIGKILLed member holds the group's next
                # rebalance for up to a session (the mock waits for it).
                # 3000 ms is the shortest the mock handles reliably; at
                # 2000 ms its JoinGroup was seen to hang.
                "kafka.consumer.session.timeout.ms=3000",
                "kafka.consumer.heartbeat.interval.ms=500",
                "kafka.consumer.auto.commit.interval.ms=500",
                "kafka.producer.compression.type=none",
                "shutdown_timeout=30s", "log.level=info"]
        sets += list(extra)
        # DURABILITY_CONFIG: the same cases under a config file with user
        # rules (test_durability_rules.sh); replay reads it too.
        args = ["--config", CONFIG] if CONFIG else []
        for s in sets:
            args += ["--set", s]
        return args


CONFIG = os.environ.get("DURABILITY_CONFIG") or None


# ---- reading topics back -----------------------------------------------------------

def dump(bootstrap, topic, timeout=90.0):
    """Every record of every partition of `topic`, from offset 0 to the end
    offsets read when the call starts, as (partition, offset, key, value)
    with kafka-python. Fails if a partition no longer starts at 0: the
    mock drops the oldest data past ~5 MB a partition, and a check over a
    topic with a hole proves nothing."""
    c = KafkaConsumer(bootstrap_servers=bootstrap.split(","), api_version=kafkatool.api_version(),
                      enable_auto_commit=False, fetch_max_bytes=64 << 20,
                      max_partition_fetch_bytes=8 << 20, consumer_timeout_ms=200)
    try:
        deadline = time.monotonic() + timeout
        parts = wait_for(f"metadata of {topic}", lambda: c.partitions_for_topic(topic), 20)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        c.assign(tps)
        begin, end = c.beginning_offsets(tps), c.end_offsets(tps)
        holes = {tp.partition: o for tp, o in begin.items() if o != 0}
        check(not holes, f"{topic}: partitions no longer start at offset 0 (the mock dropped "
                         f"data past its size limit): {holes}; size the case down")
        c.seek_to_beginning()
        out = []
        while any(c.position(tp) < end[tp] for tp in tps):
            check(time.monotonic() < deadline, f"reading {topic} timed out")
            for tp, recs in c.poll(timeout_ms=300, max_records=200000).items():
                for r in recs:
                    if r.offset < end[tp]:
                        out.append((r.partition, r.offset, r.key, r.value))
        return out
    finally:
        c.close(autocommit=False)


def wait_caught_up(bootstrap, topics, segds, timeout=90.0):
    """Waits until the group has committed the end of the input topic,
    failing early if one of `segds` exits."""
    return wait_committed(bootstrap, topics.events, topics.group, timeout, watch=segds)


# ---- the equivalence check ------------------------------------------------------------

def epoch(rfc3339):
    return calendar.timegm(time.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ"))


class Equivalence:
    """Compares published transitions with `segd replay`'s.

    records: (partition, offset, key, value) of the output topic.
    Contract (docs/guarantees.md): deduplicated by id, the published set
    equals replay's; no id ever carries two different contents; each record
    is keyed by its customer id. Published transitions with `at` later than
    the data's largest ts are left out of the comparison: when every input
    partition has been idle for time.idle_timeout the daemon lets event
    time run on at wall-clock pace (so silence still turns customers
    at_risk on time), which replay, stopping at the largest ts, never does.
    Their count is reported; they are still checked for conflicts.
    """

    def __init__(self, records, expected, max_ts):
        self.max_ts = epoch(max_ts) if isinstance(max_ts, str) else max_ts
        self.records = len(records)
        self.by_id, self.conflicts, self.badkeys = {}, [], []
        for _, _, key, val in records:
            t = json.loads(val)
            if key is None or key.decode() != t["customer_id"]:
                self.badkeys.append((key, t["customer_id"]))
            old = self.by_id.get(t["id"])
            if old is None:
                self.by_id[t["id"]] = val
            elif old != val:
                self.conflicts.append((t["id"], old, val))
        self.duplicates = self.records - len(self.by_id)
        got = set(self.by_id.values())
        self.beyond = {v for v in got if epoch(json.loads(v)["at"]) > self.max_ts}
        self.got = got - self.beyond
        self.want = set(expected)
        self.missing = self.want - self.got
        self.extra = self.got - self.want

    def ok(self):
        return not (self.conflicts or self.badkeys or self.missing or self.extra)

    def summary(self):
        return (f"{self.records} records, {len(self.by_id)} distinct ids, {self.duplicates} "
                f"duplicates, {len(self.beyond)} past the data's end; want {len(self.want)}: "
                f"{len(self.missing)} missing, {len(self.extra)} unexpected, "
                f"{len(self.conflicts)} ids with two contents, {len(self.badkeys)} bad keys")

    def assert_ok(self, what):
        if self.ok():
            return
        lines = [f"{what}: not equivalent to segd replay: {self.summary()}"]
        for cid, a, b in self.conflicts[:3]:
            lines.append(f"  id {cid}: {a.decode()}  vs  {b.decode()}")
        for v in sorted(self.missing)[:3]:
            lines.append(f"  missing:    {v.decode()}")
        for v in sorted(self.extra)[:3]:
            lines.append(f"  unexpected: {v.decode()}")
        for k, c in self.badkeys[:3]:
            lines.append(f"  key {k!r} for customer {c!r}")
        raise Failure("\n".join(lines))
