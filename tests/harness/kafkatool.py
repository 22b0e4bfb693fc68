#!/usr/bin/python3
"""kafkatool: produce and consume test traffic for segd with kafka-python.

Why kafka-python: segd talks to Kafka through librdkafka, and so does the
mock cluster (tests/harness/seg_mock_cluster). A test that also produced and
consumed with librdkafka (kcat) could not tell a protocol bug on one side from
the same bug on the other. kafka-python (Debian python3-kafka, 2.0.2) is an
independent implementation of the protocol, so the integration tests use it
for one side of every exchange.

CLI (run with /usr/bin/python3; every command takes --bootstrap HOST:PORT,...):
  produce  --topic T [--key-field customer_id] [--format json|msgpack-bytes]
           [--rate N] [--headers k=v[,k=v]] [--input FILE] [--acks all|1|0]
           [--compression none|gzip] [--partition P]       < ndjson
      One record per NDJSON line, keyed by the line's key field, so all of a
      customer's events land on one partition, in input order. With
      --format json the value is the line's own bytes (newline dropped),
      byte for byte; msgpack-bytes re-encodes the parsed object as
      MessagePack (needs python3-msgpack). A line that is not a JSON object
      or lacks the key field is still sent, with no key, and counted as
      "unkeyed": that is how tests feed bad input to the DLQ path. --rate
      paces to N records/s. Prints one JSON summary line on stdout:
      {"produced": n, "unkeyed": u, "failed": 0, "seconds": s, "retries": r,
       "retry_errors": {"NotLeaderForPartitionError": r}, "partitions":
       {"0": n0, ...}}. Exit 1 if any record failed (not delivered within
      --timeout, default 60 s; retriable errors are retried until then).
  consume  --topic T[,T2] (--group G | --no-group) [--until-idle SECONDS]
           [--max N] [--from-beginning] [--with-headers] [--with-meta]
           [--timeout SECONDS] [--session-timeout-ms MS] [--until-end]
      Prints values one per line. With --with-headers and/or --with-meta it
      prints one JSON object per record instead: {"value": ...} plus
      "headers" {name: value} and/or topic, partition, offset, key,
      timestamp. Values and keys that are not UTF-8 appear as
      {"base64": "..."} in JSON mode. Stops after --max records, or after
      --until-idle seconds (default 5) without a record once partitions are
      assigned (with --until-end: once every assigned partition is read to
      its end offset as of the assignment), or at --timeout (default 120;
      exit 1). With --group the
      offsets are committed before exit, so the next run of the same group
      continues where this one stopped.
  wait-topic  --topic T [--partitions N] [--timeout S]
      Waits until the topic exists with >= N partitions, each with a leader.
  offsets  --topic T [--group G]
      One JSON line: {"end": {p: end_offset}, "begin": {...},
      "committed": {p: offset|null}} (committed only with --group).
  create-topics  --topic NAME:PARTITIONS[:RF] ...
      Uses KafkaAdminClient. librdkafka 2.0.2's mock cluster does NOT
      implement CreateTopics: against it this exits 3 and says so. Create
      topics with seg_mock_cluster --topic or its `create_topic` command.

As a module (sys.path.insert(0, "<repo>/tests/harness")): produce(),
produce_lines(), consume(), wait_topic(), offsets(), create_topics().

What works against librdkafka 2.0.2's mock cluster (measured, see
tests/integration/test_mock_cluster.sh):
  * api_version: kafka-python's probe infers (2, 3, 0) from the mock's
    ApiVersions answer (also with the first bootstrap broker down). We pin
    API_VERSION = (2, 3, 0) anyway: it skips the probe's round trip and
    makes the request versions used independent of probing. kafka-python
    2.0.2 never uses more than Produce v7 / Fetch v4 / Metadata v1, all
    within the mock's ranges, so pins of (2, 5), (2, 8) and (3, 0) were
    measured to work too. Override with env KAFKATOOL_API_VERSION="2.3.0"
    or "auto".
  * Producing with headers, keys, gzip; acks=all; retries through injected
    NOT_LEADER_FOR_PARTITION / REQUEST_TIMED_OUT errors.
  * Consumer groups (JoinGroup/SyncGroup/Heartbeat/OffsetCommit/OffsetFetch)
    with the range assignor; manual assignment without a group. The mock
    makes the first member of an empty group wait 3 s (a fixed initial
    rebalance delay), and a rebalance of a group with members wait for
    session.timeout.ms - 1 s per round: measured 20 s for a second member
    to get partitions at 10 s sessions, 12 s at 6 s, 6 s at 3 s. Tests that
    add members (kafka-python or segd) should use short sessions.
  * Topic auto-creation by Metadata: an unknown topic is created with 4
    partitions on first produce. Tests should create topics explicitly.
  * Not supported by the mock (KafkaAdminClient raises
    IncompatibleBrokerVersion): CreateTopics, DeleteTopics, ListGroups,
    DescribeGroups, DescribeConfigs. Check a group's progress with
    `offsets --group G` (OffsetFetch) instead.
Partitioning: kafka-python's default partitioner is murmur2 over the key
bytes (Java's); librdkafka's default is consistent_random (CRC32). A
librdkafka producer that must put a key on the same partition as this tool
does needs partitioner=murmur2_random.
"""

import argparse
import base64
import json
import logging
import os
import signal
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka import errors as kerrors

API_VERSION = (2, 3, 0)


def api_version():
    """The api_version to hand kafka-python: API_VERSION unless
    KAFKATOOL_API_VERSION says otherwise ("auto" lets it probe)."""
    v = os.environ.get("KAFKATOOL_API_VERSION")
    if not v:
        return API_VERSION
    if v == "auto":
        return None
    return tuple(int(x) for x in v.split("."))


def _common(bootstrap):
    return {"bootstrap_servers": bootstrap.split(","), "api_version": api_version(),
            "client_id": "kafkatool"}


def _headers(spec):
    """'a=1,b=2', a list of such strings, or a list of (name, bytes) tuples
    -> [("a", b"1"), ("b", b"2")]."""
    if isinstance(spec, str):
        spec = [spec]
    out = []
    for part in spec or []:
        if isinstance(part, tuple):
            out.append((part[0], part[1] if isinstance(part[1], bytes) else str(part[1]).encode()))
            continue
        for kv in part.split(","):
            if not kv:
                continue
            if "=" not in kv:
                raise ValueError(f"header {kv!r} is not name=value")
            k, v = kv.split("=", 1)
            out.append((k, v.encode()))
    return out


def _key_of(obj, key_field):
    if not isinstance(obj, dict) or key_field not in obj or obj[key_field] is None:
        return None
    k = obj[key_field]
    return (k if isinstance(k, str) else json.dumps(k)).encode()


class _RetryCounter(logging.Handler):
    """Counts the produce batches kafka-python retried, by error. Its sender
    reports a retry only as a log line, and tests need to see that injected
    errors were hit and ridden through, not merely that data arrived."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.count, self.errors = 0, {}

    def emit(self, record):
        if not str(record.msg).startswith("Got error produce response"):
            return
        self.count += 1
        e = record.args[-1] if record.args else None
        # kafka-python passes the error class, or an instance of it.
        err = e.__name__ if isinstance(e, type) else type(e).__name__ if e is not None else "?"
        self.errors[err] = self.errors.get(err, 0) + 1


def produce(bootstrap, topic, records, key_field="customer_id", fmt="json", rate=None,
            headers=None, acks="all", compression=None, partition=None, timeout=60,
            linger_ms=5):
    """Produces records and waits for every delivery report.

    records: an iterable of bytes/str NDJSON lines (sent as they are, with
    fmt json) or of dicts (serialised with json.dumps, compact). Returns the
    summary dict the CLI prints. Raises nothing for per-record failures:
    they are counted in "failed" and the first error is in "error";
    "retries" counts batches retried after an error response, by error
    class in "retry_errors". linger_ms: how long the producer waits to fill
    a batch; a larger value gives fewer, fuller ones.
    """
    packb = None
    if fmt == "msgpack-bytes":
        import msgpack  # Debian python3-msgpack; only this format needs it
        packb = msgpack.packb
    elif fmt != "json":
        raise ValueError(f"unknown format {fmt!r}")
    hdrs = _headers(headers)
    retries = _RetryCounter()
    sender_log = logging.getLogger("kafka.producer.sender")
    sender_log.addHandler(retries)
    old_level = sender_log.level
    if sender_log.getEffectiveLevel() > logging.WARNING:
        sender_log.setLevel(logging.WARNING)
    p = KafkaProducer(acks=(acks if acks == "all" else int(acks)),
                      compression_type=(None if compression in (None, "none") else compression),
                      # Retry until `timeout`: a leader move in a test takes
                      # a metadata round or two, never a fixed count.
                      retries=2147483647, max_in_flight_requests_per_connection=1,
                      # Large batches: with one request in flight per broker
                      # (order across retries), 16 KB batches made a loaded
                      # machine's cluster the bottleneck (69k records: 14 s
                      # against 8 s idle, 65 s against 33 s loaded).
                      batch_size=512 * 1024, linger_ms=linger_ms,
                      # A request timed out is sent again, and one the
                      # broker did append is then in the topic twice: only
                      # a broker that is really gone should time out.
                      request_timeout_ms=30000, retry_backoff_ms=50,
                      **_common(bootstrap))
    futures, unkeyed, n = [], 0, 0
    t0 = time.monotonic()
    try:
        for rec in records:
            if isinstance(rec, dict):
                obj, raw = rec, json.dumps(rec, separators=(",", ":")).encode()
            else:
                raw = rec.encode() if isinstance(rec, str) else rec
                raw = raw.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw)
                except ValueError:
                    obj = None
            key = _key_of(obj, key_field) if key_field else None
            if key is None:
                unkeyed += 1
            value = raw
            if packb is not None and obj is not None:
                value = packb(obj, use_bin_type=True)  # not JSON: sent as is, bad on purpose
            futures.append(p.send(topic, value=value, key=key, headers=hdrs or None,
                                  partition=partition))
            n += 1
            if rate:
                # Pace against the start, not per record, so jitter evens out.
                ahead = t0 + n / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        try:
            p.flush(timeout=timeout)
        except kerrors.KafkaTimeoutError:
            pass  # the undelivered records are counted as failed below
    finally:
        p.close(timeout=5)
        sender_log.removeHandler(retries)
        sender_log.setLevel(old_level)
    parts, failed, first_err = {}, 0, None
    for f in futures:
        try:
            if not f.is_done:
                raise kerrors.KafkaTimeoutError(f"not delivered within {timeout}s")
            md = f.get(timeout=0)
        except Exception as e:  # KafkaError, or a future never completed
            failed += 1
            first_err = first_err or f"{type(e).__name__}: {e}"
            continue
        parts[str(md.partition)] = parts.get(str(md.partition), 0) + 1
    out = {"produced": n - failed, "unkeyed": unkeyed, "failed": failed,
           "seconds": round(time.monotonic() - t0, 3),
           "retries": retries.count, "retry_errors": retries.errors,
           "partitions": dict(sorted(parts.items(), key=lambda kv: int(kv[0])))}
    if first_err:
        out["error"] = first_err
    return out


def produce_lines(bootstrap, topic, path_or_file, **kw):
    """produce() over the lines of an NDJSON file (path or binary file)."""
    if hasattr(path_or_file, "read"):
        return produce(bootstrap, topic, path_or_file, **kw)
    with open(path_or_file, "rb") as f:
        return produce(bootstrap, topic, f, **kw)


def _text_or_b64(b):
    if b is None:
        return None
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(b).decode()}


def consume(bootstrap, topics, group=None, until_idle=5.0, max_records=None,
            from_beginning=False, timeout=120.0, on_record=None, session_timeout_ms=10000,
            until_end=False):
    """Consumes until max_records, until_idle seconds without a record (the
    clock starts once partitions are assigned, so a slow group join does not
    end the run early), or timeout.

    until_end: instead of the idle clock, stop once every assigned
    partition has been read up to its end offset as of the assignment.
    A topic that is known to be complete (say, its producer's offsets are
    committed) is then read whole however slowly the records come; an idle
    gap is a guess that a loaded machine can break.

    group None: all partitions assigned by hand, no offsets committed.
    With a group: subscribe, and commit the consumed offsets before closing.
    from_beginning: start at the earliest offset when there is no committed
    one (with a group) or always (without one); otherwise at the end.
    Returns (records, timed_out): ConsumerRecords in consumption order.
    on_record(rec), if given, is called for each as it arrives.
    Joining a group on the mock takes ~3 s (its fixed initial rebalance
    delay); joining a group that has members takes about twice
    session_timeout_ms - 1 s, so tests with several members lower it.
    """
    if isinstance(topics, str):
        topics = [t for t in topics.split(",") if t]
    c = KafkaConsumer(group_id=group, enable_auto_commit=False,
                      auto_offset_reset="earliest" if from_beginning else "latest",
                      consumer_timeout_ms=200, fetch_max_wait_ms=100,
                      session_timeout_ms=session_timeout_ms,
                      heartbeat_interval_ms=max(100, session_timeout_ms // 10),
                      **_common(bootstrap))
    out, timed_out = [], False
    deadline = time.monotonic() + timeout
    try:
        if group:
            c.subscribe(topics)
        else:
            tps = []
            while time.monotonic() < deadline:
                tps = [TopicPartition(t, p) for t in topics
                       for p in sorted(c.partitions_for_topic(t) or [])]
                if len(tps) and all(c.partitions_for_topic(t) for t in topics):
                    break
                time.sleep(0.1)
            if not tps:
                raise RuntimeError(f"topics {topics} not found within {timeout}s")
            c.assign(tps)
            if from_beginning:
                c.seek_to_beginning()
            else:
                c.seek_to_end()
        last = None  # monotonic time of the last record, or of the assignment
        end = None   # until_end: {TopicPartition: end offset at the assignment}
        while True:
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            if until_end and end is not None and \
                    all(c.position(tp) >= o for tp, o in end.items()):
                break
            batch = c.poll(timeout_ms=200, max_records=(
                None if max_records is None else max(1, max_records - len(out))))
            if last is None and c.assignment():
                last = time.monotonic()
                if until_end:
                    end = c.end_offsets(list(c.assignment()))
            for recs in batch.values():
                for r in recs:
                    out.append(r)
                    if on_record:
                        on_record(r)
            if batch:
                last = time.monotonic()
            if max_records is not None and len(out) >= max_records:
                break
            if not until_end and last is not None and time.monotonic() - last >= until_idle:
                break
        if group and out:
            c.commit()
    finally:
        c.close(autocommit=False)
    return out, timed_out


def wait_topic(bootstrap, topic, partitions=None, timeout=30.0):
    """Waits until topic exists with >= partitions partitions (any if None)
    and every partition has a leader. Returns the partition count; raises
    TimeoutError. Never creates the topic."""
    c = KafkaConsumer(**_common(bootstrap))  # consumers do not auto-create
    deadline = time.monotonic() + timeout
    try:
        while True:
            c._client.cluster.request_update()
            c._client.poll(timeout_ms=200)
            md = c._client.cluster
            ps = md.partitions_for_topic(topic)
            if ps and (partitions is None or len(ps) >= partitions) and \
                    all(md.leader_for_partition(TopicPartition(topic, p)) not in (None, -1)
                        for p in ps):
                return len(ps)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"topic {topic} not ready within {timeout}s "
                                   f"(partitions seen: {sorted(ps) if ps else None})")
            time.sleep(0.1)
    finally:
        c.close()


def offsets(bootstrap, topic, group=None, timeout=30.0):
    """{"begin": {p: off}, "end": {p: off}} and, with group, "committed":
    {p: off or None}. Partition keys are ints."""
    c = KafkaConsumer(group_id=group, enable_auto_commit=False, **_common(bootstrap))
    try:
        deadline = time.monotonic() + timeout
        ps = None
        while not ps:
            ps = c.partitions_for_topic(topic)
            if not ps:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"topic {topic} not found")
                time.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(ps)]
        out = {"begin": {tp.partition: o for tp, o in c.beginning_offsets(tps).items()},
               "end": {tp.partition: o for tp, o in c.end_offsets(tps).items()}}
        if group:
            out["committed"] = {tp.partition: c.committed(tp) for tp in tps}
        return out
    finally:
        c.close(autocommit=False)


class Unsupported(Exception):
    """The cluster does not implement the request (e.g. the mock and
    CreateTopics)."""


def create_topics(bootstrap, specs, timeout=30.0):
    """specs: ["name:partitions[:rf]", ...]. Raises Unsupported when the
    cluster lacks CreateTopics (librdkafka's mock cluster)."""
    from kafka.admin import NewTopic
    new = []
    for s in specs:
        parts = s.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"topic spec {s!r} is not NAME:PARTITIONS[:RF]")
        new.append(NewTopic(parts[0], int(parts[1]), int(parts[2]) if len(parts) == 3 else 1))
    a = KafkaAdminClient(request_timeout_ms=int(timeout * 1000), **_common(bootstrap))
    try:
        a.create_topics(new, timeout_ms=int(timeout * 1000))
    except kerrors.IncompatibleBrokerVersion as e:
        raise Unsupported(f"the cluster does not implement CreateTopics ({e}); "
                          "with seg_mock_cluster use --topic or 'create_topic'") from e
    finally:
        a.close()


def _json_record(r, with_headers, with_meta):
    d = {}
    if with_meta:
        d.update(topic=r.topic, partition=r.partition, offset=r.offset,
                 key=_text_or_b64(r.key), timestamp=r.timestamp)
    d["value"] = _text_or_b64(r.value)
    if with_headers:
        d["headers"] = {k: _text_or_b64(v) for k, v in (r.headers or [])}
    return d


def main(argv=None):
    ap = argparse.ArgumentParser(prog="kafkatool.py", description=__doc__.split("\n")[0])
    ap.add_argument("--verbose", action="store_true", help="kafka-python's log at INFO")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def cmd(name):
        s = sub.add_parser(name)
        s.add_argument("--bootstrap", required=True)
        return s

    s = cmd("produce")
    s.add_argument("--topic", required=True)
    s.add_argument("--key-field", default="customer_id")
    s.add_argument("--format", choices=["json", "msgpack-bytes"], default="json")
    s.add_argument("--rate", type=float, help="records per second")
    s.add_argument("--headers", action="append", help="name=value[,name=value]")
    s.add_argument("--input", help="NDJSON file (default stdin)")
    s.add_argument("--acks", default="all", choices=["all", "1", "0"])
    s.add_argument("--compression", default="none", choices=["none", "gzip"])
    s.add_argument("--partition", type=int)
    s.add_argument("--timeout", type=float, default=60)

    s = cmd("consume")
    s.add_argument("--topic", required=True, action="append")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--group")
    g.add_argument("--no-group", action="store_true")
    s.add_argument("--until-idle", type=float, default=5.0)
    s.add_argument("--until-end", action="store_true",
                   help="stop at the end offsets as of the assignment, not after an idle gap")
    s.add_argument("--max", type=int)
    s.add_argument("--from-beginning", action="store_true")
    s.add_argument("--with-headers", action="store_true")
    s.add_argument("--with-meta", action="store_true")
    s.add_argument("--timeout", type=float, default=120.0)
    s.add_argument("--session-timeout-ms", type=int, default=10000)

    s = cmd("wait-topic")
    s.add_argument("--topic", required=True)
    s.add_argument("--partitions", type=int)
    s.add_argument("--timeout", type=float, default=30.0)

    s = cmd("offsets")
    s.add_argument("--topic", required=True)
    s.add_argument("--group")

    s = cmd("create-topics")
    s.add_argument("--topic", required=True, action="append")

    a = ap.parse_args(argv)
    # kafka-python logs expected noise (e.g. cancelled fetches on close) at
    # ERROR; tests read our stdout, and real failures surface as exceptions.
    logging.basicConfig(level=logging.INFO if a.verbose else logging.CRITICAL,
                        format="kafkatool: %(levelname)s %(name)s: %(message)s")
    # produce() turns the sender's warnings on for its retry counter; they
    # are counted in the summary, not printed, unless --verbose.
    logging.getLogger("kafka.producer.sender").propagate = a.verbose
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends us quietly

    if a.cmd == "produce":
        src = open(a.input, "rb") if a.input else sys.stdin.buffer
        try:
            res = produce(a.bootstrap, a.topic, src, key_field=a.key_field or None,
                          fmt=a.format, rate=a.rate, headers=a.headers, acks=a.acks,
                          compression=a.compression, partition=a.partition, timeout=a.timeout)
        finally:
            if a.input:
                src.close()
        print(json.dumps(res), flush=True)
        return 1 if res["failed"] else 0

    if a.cmd == "consume":
        topics = [t for spec in a.topic for t in spec.split(",") if t]
        out = sys.stdout.buffer
        as_json = a.with_headers or a.with_meta

        def emit(r):
            if as_json:
                out.write(json.dumps(_json_record(r, a.with_headers, a.with_meta)).encode() + b"\n")
            else:
                out.write((r.value or b"") + b"\n")
        recs, timed_out = consume(a.bootstrap, topics, group=a.group, until_idle=a.until_idle,
                                  max_records=a.max, from_beginning=a.from_beginning,
                                  timeout=a.timeout, on_record=emit,
                                  session_timeout_ms=a.session_timeout_ms,
                                  until_end=a.until_end)
        out.flush()
        print(f"kafkatool: consumed {len(recs)} records"
              + (" (timed out)" if timed_out else ""), file=sys.stderr)
        return 1 if timed_out else 0

    if a.cmd == "wait-topic":
        try:
            n = wait_topic(a.bootstrap, a.topic, a.partitions, a.timeout)
        except TimeoutError as e:
            print(f"kafkatool: {e}", file=sys.stderr)
            return 1
        print(json.dumps({"topic": a.topic, "partitions": n}))
        return 0

    if a.cmd == "offsets":
        res = offsets(a.bootstrap, a.topic, a.group)
        print(json.dumps({k: {str(p): o for p, o in v.items()} for k, v in res.items()}))
        return 0

    if a.cmd == "create-topics":
        try:
            create_topics(a.bootstrap, a.topic)
        except Unsupported as e:
            print(f"kafkatool: {e}", file=sys.stderr)
            return 3
        print(json.dumps({"created": a.topic}))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
