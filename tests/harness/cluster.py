"""cluster: start and drive seg_mock_cluster from Python tests.

Why: every integration test needs one Kafka-protocol cluster that segd,
kcat and kafka-python share, plus a way to break it on cue (take a broker
down, move a leader, fail the next N requests of a kind). seg_mock_cluster
does the Kafka side; this module does the process side: start it, wait for
its BOOTSTRAP line with a timeout, send commands and read the answers, and
make sure the process is gone afterwards, whatever happens to the test.

    import sys; sys.path.insert(0, SEG_SRC + "/tests/harness")
    from cluster import start_cluster
    with start_cluster(["events:6", "transitions:3"]) as mc:
        run_segd(mc.bootstrap)
        leader = mc.leaders("events")[0]
        mc.command(f"broker_down {leader}")
        mc.command(f"leader events 0 {1 + leader % 3}")
        mc.command("push_errors Produce 3 NOT_LEADER_FOR_PARTITION")
    # or, as a tuple:  proc, bootstrap = start_cluster(...)  (then .stop()!)

The binary is found in this order: env SEG_MOCK_CLUSTER; SEG_BUILD's
tests/harness/seg_mock_cluster (what ctest passes); build/ under the repo;
else it is compiled with cc into a cache directory (librdkafka-dev is
needed either way).

The harness exits by itself when the Python process dies (it watches its
parent), so a test killed hard leaves no cluster behind.
"""

import atexit
import os
import select
import shutil
import subprocess
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))


class ClusterError(Exception):
    """The harness answered ERR, did not answer in time, or died."""


def find_binary():
    """Path to seg_mock_cluster, compiling it if no build has it."""
    env = os.environ.get("SEG_MOCK_CLUSTER")
    if env:
        return env
    for build in (os.environ.get("SEG_BUILD"), os.path.join(_REPO, "build")):
        if build:
            p = os.path.join(build, "tests", "harness", "seg_mock_cluster")
            if os.access(p, os.X_OK):
                return p
    src = os.path.join(_HERE, "seg_mock_cluster.c")
    cache = os.path.join(tempfile.gettempdir(), f"seg_mock_cluster.{os.getuid()}")
    os.makedirs(cache, exist_ok=True)
    out = os.path.join(cache, "seg_mock_cluster")
    if not os.access(out, os.X_OK) or os.path.getmtime(out) < os.path.getmtime(src):
        cc = shutil.which("cc") or "cc"
        tmp = f"{out}.{os.getpid()}"
        subprocess.run([cc, "-O2", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-D_DEFAULT_SOURCE",
                        "-o", tmp, src, "-lrdkafka"], check=True)
        os.replace(tmp, out)
    return out


def _topic_args(topics):
    if isinstance(topics, dict):
        topics = [f"{k}:{v}" for k, v in topics.items()]
    args = []
    for t in topics or []:
        if isinstance(t, (tuple, list)):
            t = ":".join(str(x) for x in t)
        args += ["--topic", t]
    return args


class MockCluster:
    """A running seg_mock_cluster. Attributes: proc (Popen), bootstrap
    ("127.0.0.1:p1,..."), brokers (int). Iterating gives (proc, bootstrap)."""

    def __init__(self, proc, bootstrap, brokers):
        self.proc, self.bootstrap, self.brokers = proc, bootstrap, brokers
        self._buf = b""

    def __iter__(self):
        return iter((self.proc, self.bootstrap))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _readline(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ClusterError(f"no answer from seg_mock_cluster within {timeout}s")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise ClusterError(f"seg_mock_cluster exited (status {self.proc.poll()})")
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def command(self, line, timeout=10.0):
        """Sends one command; returns the text after "OK" (may be "").
        Raises ClusterError on "ERR ..." or when no answer comes."""
        if self.proc.poll() is not None:
            raise ClusterError(f"seg_mock_cluster is not running (status {self.proc.returncode})")
        try:
            self.proc.stdin.write(line.strip().encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError as e:
            raise ClusterError("seg_mock_cluster closed its input") from e
        ans = self._readline(timeout)
        if ans == "OK" or ans.startswith("OK "):
            return ans[3:]
        raise ClusterError(f"{line.strip()!r}: {ans}")

    def leaders(self, topic):
        """{partition: leader broker id} as clients see it (Metadata)."""
        # up to four 5 s tries in the harness (a broker just taken down)
        words = self.command(f"metadata {topic}", timeout=30.0).split()
        return {int(p): int(b) for p, b in (w.split(":") for w in words[1:])}

    def stop(self, timeout=10.0):
        """Asks the harness to quit, then TERMs and KILLs it if needed.
        Returns its exit status. Safe to call twice."""
        p = self.proc
        if p.poll() is None:
            try:
                p.stdin.write(b"quit\n")
                p.stdin.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass
            try:
                p.stdin.close()
            except OSError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        return p.returncode


def start_cluster(topics, brokers=3, timeout=15.0, max_lifetime=None, binary=None,
                  extra_args=(), stderr=None):
    """Starts seg_mock_cluster with `brokers` brokers and `topics`
    (["name:partitions[:rf]", ...], [(name, parts, rf)], or {name: parts})
    and waits for its BOOTSTRAP line. Returns a MockCluster; stop() it, or
    use it as a context manager. stderr: where librdkafka's log goes
    (default: inherited). Raises ClusterError if it does not come up."""
    args = [binary or find_binary(), "--brokers", str(brokers)] + _topic_args(topics)
    if max_lifetime:
        args += ["--max-lifetime", str(int(max_lifetime))]
    args += list(extra_args)
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=stderr, bufsize=0)
    mc = MockCluster(proc, None, brokers)
    atexit.register(mc.stop)
    try:
        line = mc._readline(timeout)
    except ClusterError:
        mc.stop()
        raise
    if not line.startswith("BOOTSTRAP "):
        mc.stop()
        raise ClusterError(f"unexpected first line from seg_mock_cluster: {line!r}")
    mc.bootstrap = line.split(" ", 1)[1]
    return mc
