"""kafka: the Kafka group's shared part: tools, the mock cluster, /metrics.

The Kafka cases (kafka_e2e.py, latency.py) run one segd instance at a time
against the test harness's mock cluster (librdkafka's rdkafka_mock, 3
brokers on 127.0.0.1, in a separate process: tests/harness/seg_mock_cluster
driven through tests/harness/cluster.py, as the integration tests drive
it), with the default config except addresses, group, state dir and
changelog topic. The cluster is started once for the group with every
topic the cases need, and stopped when the group ends.

If a tool is missing or the cluster does not start, every Kafka row is an
ERROR (or "not measured" when a binary is just not built) with the reason,
and the rest of the suite goes on.
"""

import os
import shutil
import sys
import time
import urllib.request

from . import common

LATENCY_PARTITIONS = 6


class KafkaGroup:
    """What the Kafka cases share: tool paths, the cluster, and `error`
    (why the group cannot run; None when it can)."""

    def __init__(self, b):
        build = b.build
        self.customers = b.env_int("BENCH_KAFKA_CUSTOMERS", 500000)
        self.partitions = b.env_int("BENCH_KAFKA_PARTITIONS", 40)
        self.latency_rate = b.env_int("BENCH_LATENCY_RATE", 50000)
        self.latency_seconds = b.env_int("BENCH_LATENCY_SECONDS", 10)
        self.mock = mock_binary(b)
        self.consume_rate = b.env("SEG_CONSUME_RATE", _pick(
            os.path.join(build, "tests/harness/seg_consume_rate"),
            os.path.join(build, "bench/seg_consume_rate")))
        self.tail = b.env("SEG_BENCH_TAIL", os.path.join(build, "bench/seg_bench_tail"))
        self.cluster = None
        self.bootstrap = None
        self.error = None


def _pick(*paths):
    """The first executable of paths, else the first (so a message names it)."""
    return next((p for p in paths if os.access(p, os.X_OK)), paths[0])


def mock_binary(b):
    return b.env("SEG_MOCK_CLUSTER", _pick(os.path.join(b.build, "tests/harness/seg_mock_cluster"),
                                           os.path.join(b.build, "bench/seg_mock_cluster")))


def start_cluster(b, name, topics, brokers=3, timeout=30.0, max_lifetime=None):
    """Starts seg_mock_cluster (its librdkafka log in the scratch dir as
    NAME.err) and returns a tests/harness/cluster.py MockCluster:
    .bootstrap, .proc, .command("create_topic T 8"), .stop()."""
    harness = os.path.join(b.repo, "tests", "harness")
    if harness not in sys.path:
        sys.path.insert(0, harness)
    import cluster  # tests/harness/cluster.py
    with open(b.path(name + ".err"), "wb") as err:
        mc = cluster.start_cluster(topics, brokers=brokers, timeout=timeout,
                                   max_lifetime=max_lifetime, binary=mock_binary(b), stderr=err)
    b.clusters.append(mc)
    return mc


def metrics(port, timeout=2):
    """segd's /metrics text, None if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
            return r.read().decode()
    except Exception:
        return None


def metric_sum(text, name):
    """The sum of a metric's samples over all its label sets."""
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith(name + " ") or l.startswith(name + "{"))


def segd_run(b, log, sets, extra=()):
    """Starts `segd run` with the bench's config and --set K=V of `sets`,
    stderr to `log`. Returns the Popen."""
    args = [b.segd, "run", *b.config_args]
    for k, v in sets:
        args += ["--set", f"{k}={v}"]
    with open(log, "wb") as f:
        return b.spawn(args + list(extra), stderr=f)


def start(b):
    """Start of the Kafka group: checks its tools and starts the cluster."""
    print("== Kafka end to end (case 5)", flush=True)
    k = b.kafka = KafkaGroup(b)
    for t in (b.segd, k.mock, k.consume_rate, k.tail):
        if not os.access(t, os.X_OK):
            return _error(k, f"{t} is not built")
    if not shutil.which("kcat"):
        return _error(k, "kcat is missing (scripts/install-deps.sh)")
    kp, lp = k.partitions, LATENCY_PARTITIONS
    topics = [f"events:{kp}", f"transitions:{kp}", f"churn-alerts:{kp}", f"events-dlq:{kp}",
              f"lat-events:{lp}", f"lat-transitions:{lp}"]
    try:
        k.cluster = start_cluster(b, "mc", topics)
    except Exception as e:
        return _error(k, f"the mock cluster did not start ({e})")
    k.bootstrap = k.cluster.bootstrap
    print(f"  cluster: 3 brokers at {k.bootstrap} (tests/harness/seg_mock_cluster)", flush=True)


def _error(k, msg):
    error(msg)
    k.error = msg


def error(msg):
    """A Kafka case cannot go on: says why (the case records it in its rows)."""
    print(f"  case 5: ERROR {msg}", file=sys.stderr, flush=True)


def stop(b):
    if b.kafka.cluster:
        b.kafka.cluster.stop()


def info(b):
    """The group's settings, kept in the results file's runs_by_group."""
    k = b.kafka
    return {"customers": k.customers, "partitions": k.partitions,
            "latency_rate": k.latency_rate, "latency_seconds": k.latency_seconds,
            "librdkafka": common.librdkafka_version()}


def wait_until(pred, timeout, step):
    """Polls pred() every `step` seconds until it is true (True) or
    `timeout` seconds passed (False)."""
    t0 = time.monotonic()
    while True:
        if pred():
            return True
        if time.monotonic() - t0 >= timeout:
            return False
        time.sleep(step)
