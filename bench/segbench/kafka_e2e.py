"""kafka_e2e: `segd run` throughput through Kafka, next to its two bounds.

What, per repetition (REPEAT_KAFKA, default 3), alternating:
  - kafka_ceiling: the raw librdkafka consume rate of the input topic
    (tests/harness/seg_consume_rate: one consumer, one
    rd_kafka_consumer_poll per message, unlimited prefetch);
  - kafka_e2e: one segd run from the beginning of the same topic, with a
    fresh consumer group, state dir and changelog topic;
  - kafka_produce: the produce floor (below).

Input: the topic is pre-filled once by seg_gen (BENCH_KAFKA_CUSTOMERS,
default 500k customers, ~1.8M events; lz4, keyed by customer_id). The mock
keeps ~5 MB per partition, so the data set is spread over
BENCH_KAFKA_PARTITIONS (40) partitions, and seg_consume_rate checks that
nothing was dropped (the topic must hold every event produced).

segd's rate is read from its /metrics every 50 ms:
(segd_events_total + segd_events_rejected_total) from the first sample
above zero to the first sample with every record counted, so start-up and
the consumer group join (3 s on the mock) are left out, as they are for
the ceiling. segd's transitions go to the same cluster, so the rate
includes producing them (their deliveries may finish a little later; that
time is recorded as drain_seconds).

Produce floor: segd publishes every transition as its own message to the
output topic, plus a copy of each one a route selects to that route's
topic (churn-alerts), ~3.2 messages per input event. Each repetition also
measures how fast librdkafka alone produces transition lines (from segd
replay of a small seg_gen set, cycled, keyed by customer) with segd's
producer settings (acks=all, idempotence, lz4, linger.ms=5, the default
consistent_random partitioner), counting until every delivery report is
in (seg_consume_rate --produce, BENCH_KAFKA_PRODUCE messages), in segd's
message mix: to a fresh 40-partition topic, and to a second one the same
number of copies per transition as segd's routes made in the segd run just
before ((delivered - transitions - DLQ copies) / transitions, from its
/metrics). The second topic matters: each partition with data is a batch
of its own every linger.ms, compressed and acknowledged on its own, so the
same messages cost librdkafka ~20% more CPU spread over two topics than
over one (measured 2026-12-03). Divided by segd's messages per event,
that is the most events/s any daemon publishing the same messages could
reach here, before it consumes or folds anything.

The row's target is against the library-only bound: the lower of the
consume-only rate and the produce floor / messages per event, both medians
of the same run (the performance issue's definition). The note also gives
the ratio per repetition (each segd run against the ceiling and floor runs
next to it) and what librdkafka's two costs added up on the same cores
would allow, 1 / (1/floor + 1/consume-only), for reading, not judging.
"""

import os
import subprocess
import time

from . import common, kafka

GROUP = "kafka"
ROWS = ("kafka_ceiling", "kafka_e2e", "kafka_produce")


def _fail(b, msg):
    kafka.error(msg)
    for c in ROWS:
        b.fail(c, msg)


def run(b):
    k = b.kafka
    if k.error:
        for c in ROWS:
            b.fail(c, k.error)
        return
    repeat = b.env_int("REPEAT_KAFKA", 3)
    nprod = b.env_int("BENCH_KAFKA_PRODUCE", 1000000)

    # Pre-fill: one data set, read by every run.
    kgen, kgen_err = b.path("kgen.json"), b.path("kgen.err")
    rc = b.call([b.seg_gen, "--customers", str(k.customers), "--days", str(b.days),
                 "--seed", str(b.seed), "--brokers", k.bootstrap, "--topic", "events",
                 "-X", "linger.ms=20", "-X", "batch.size=1000000", "--summary-json", kgen],
                stderr=kgen_err)
    if rc != 0:
        return _fail(b, f"pre-fill failed: {common.tail(kgen_err)}")
    summary = common.load_json(kgen)
    events = summary["records"]
    print(f"  input: {common.label(k.customers)} customers, {events} events in 'events'"
          f" ({k.partitions} partitions, lz4)", flush=True)
    b.datasets.append({**summary, "path": "kafka topic events"})

    # Transition lines for the produce floor.
    lines, lines_err = b.path("ktrans.ndjson"), b.path("ktrans.err")
    with open(lines, "wb") as out, open(lines_err, "wb") as err:
        gen = b.spawn([b.seg_gen, "--customers", "20000", "--days", str(b.days),
                       "--seed", str(b.seed), "--output", "-"],
                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        rep = b.spawn([b.segd, "replay", *b.config_args, "--input", "-", "--format", "json"],
                      stdin=gen.stdout, stdout=out, stderr=err)
        gen.stdout.close()
        rc_rep, rc_gen = rep.wait(), gen.wait()
        rc = rc_rep or rc_gen  # as the shell's pipefail: any failure counts
    if rc != 0 or os.path.getsize(lines) == 0:
        return _fail(b, f"cannot make transition lines: {common.tail(lines_err)}")

    for i in range(1, repeat + 1):
        # Ceiling: the same topic, consume only.
        rc = b.call([k.consume_rate, "--bootstrap", k.bootstrap, "--topic", "events",
                     "--produce", "0", "--repeat", "1"],
                    stdout=b.path("kceil.json"), stderr=b.path("kceil.err"))
        _rate_result(b, "kafka_ceiling", rc, events, "kceil")
        b.progress("kafka_ceiling")

        # segd end to end, from the beginning of the same topic.
        try:
            k.cluster.command(f"create_topic bench-e2e-{i}-changelog {k.partitions}", timeout=30)
        except Exception:
            return _fail(b, "cannot create a changelog topic")
        _e2e(b, i, events)
        b.progress("kafka_e2e")

        # Produce floor: librdkafka alone publishing transition lines, in
        # segd's mix of output topic and route copies.
        share = _copy_share(b)
        try:
            k.cluster.command(f"create_topic bench-produce-{i} {k.partitions}", timeout=30)
            k.cluster.command(f"create_topic bench-produce-{i}-copies {k.partitions}",
                              timeout=30)
        except Exception:
            return _fail(b, "cannot create a produce-floor topic")
        rc = b.call([k.consume_rate, "--bootstrap", k.bootstrap, "--topic", f"bench-produce-{i}",
                     "--produce", str(nprod), "--input", lines, "--compression", "lz4",
                     "--copy-topic", f"bench-produce-{i}-copies", "--copy-share", f"{share:.6f}",
                     "--producer-prop", "acks=all", "--producer-prop", "enable.idempotence=true",
                     "--producer-prop", "linger.ms=5",
                     "--producer-prop", "partitioner=consistent_random",
                     "--producer-prop", "queue.buffering.max.messages=100000", "--repeat", "1"],
                    stdout=b.path("kprod.json"), stderr=b.path("kprod.err"))
        _rate_result(b, "kafka_produce", rc, nprod, "kprod")
        b.runs[-1]["copy_share"] = share
        b.progress("kafka_produce")


def _rate_result(b, case, rc, want, name):
    """One run from seg_consume_rate's NAME.json. kafka_ceiling: its
    consume rate; kafka_produce: its pre-fill rate (produce until every
    delivery report). Either way the topic must hold `want` messages."""
    r = {"case": case, "ok": False}
    try:
        d = common.load_json(b.path(name + ".json"))
        r["messages"] = d["messages"]
        if case == "kafka_produce":
            r.update(seconds=d["prefill_seconds"], bytes=d["prefill_bytes"],
                     copies=d["prefill_copies"], events_per_second=want / d["prefill_seconds"])
            r["messages"] += d["prefill_copies"]   # in the copies topic
        else:
            run = d["runs"][0]
            r.update(events_per_second=d["msgs_per_sec"], seconds=run["seconds"],
                     cpu_seconds=run["cpu_seconds"],
                     events_per_cpu_second=d["messages"] / run["cpu_seconds"])
        if r["messages"] != want:
            r["error"] = f"topic holds {d['messages']} messages, {want} were produced"
        else:
            r["ok"] = rc == 0
    except Exception as e:
        r["error"] = f"exit {rc}: {common.tail(b.path(name + '.err')) or e}"
    b.record(r)


def _e2e(b, i, want):
    k = b.kafka
    port = common.free_port()
    state = b.path(f"state-e2e-{i}")
    os.makedirs(state, exist_ok=True)
    log = b.path(f"segd-e2e-{i}.log")
    p = kafka.segd_run(b, log, [("kafka.brokers", k.bootstrap),
                                ("kafka.group_id", f"bench-e2e-{i}"),
                                ("kafka.changelog_topic", f"bench-e2e-{i}-changelog"),
                                ("state.dir", state),
                                ("metrics.listen", f"127.0.0.1:{port}")])
    try:
        res = _poll(port, p, want)
    except Exception as e:
        res = {"ok": False, "error": f"poller: {e}"}
    src = b.stop(p)
    r = {"case": "kafka_e2e", "ok": False, "events_in_topic": want, **res}
    r["segd_exit"] = src
    if r.get("ok") and src != 0:
        r["ok"] = False
        r["error"] = f"segd exited {src} on SIGTERM"
    if not r.get("ok") and "error" in r:
        with open(log, errors="replace") as f:
            bad = [l for l in f.read().splitlines() if " error " in l or " warn " in l]
        r["error"] += ("; log: " + bad[-1][-200:]) if bad else ""
    b.record(r)


def _poll(port, proc, want):
    """Samples segd's /metrics every 50 ms until every record is counted
    and its deliveries stopped; returns the run's figures."""
    def sample():
        t = kafka.metrics(port)
        if t is None:
            return None
        g = lambda n: kafka.metric_sum(t, n)
        return (g("segd_events_total") + g("segd_events_rejected_total"),
                g("segd_messages_delivered_total"), g("segd_inflight_records"),
                g("segd_events_rejected_total"), g("segd_transitions_total"),
                g("segd_dlq_total"))

    r = {"ok": False}
    t0 = time.time()
    first = done = last_change = prev = None
    while True:
        now = time.time()
        if now - t0 > 180:
            r["error"] = f"not done after 180 s: {prev}"
            break
        s = sample()
        if s is None:
            if proc.poll() is not None:
                r["error"] = "segd exited"
                break
        elif done is None:
            if first is None and s[0] > 0:
                first = (now, s[0], common.proc_cpu_seconds(proc.pid))
            if s[0] >= want:
                done = (now, s[0], common.proc_cpu_seconds(proc.pid))
        else:
            # After every record is counted: until the deliveries stop.
            if prev and s[1] != prev[1]:
                last_change = now
            if s[2] == 0 and now - (last_change or done[0]) > 0.5:
                r.update(ok=True, drain_seconds=(last_change or done[0]) - done[0],
                         messages_delivered=s[1], rejected=s[3], transitions=s[4],
                         dlq_delivered=s[5])
                break
            if now - done[0] > 60:
                r["error"] = "deliveries not finished 60 s after the last record"
                break
        prev = s
        time.sleep(0.05)
    if first and done:
        secs = done[0] - first[0]
        r.update(events=int(done[1]), seconds=secs,
                 events_per_second=(done[1] - first[1]) / secs if secs > 0 else None)
        if first[2] is not None and done[2] is not None and done[2] > first[2]:
            r["cpu_seconds"] = done[2] - first[2]
            r["events_per_cpu_second"] = (done[1] - first[1]) / r["cpu_seconds"]
    return r


def report(b):
    k = b.kafka
    med = common.median
    kc, kc_err = b.metric("kafka_ceiling", "events_per_second")
    b.add("kafka_ceiling", f"librdkafka consume-only, Kafka, {common.label(k.customers)}",
          "events/s", kc, kc_err,
          note=f"ceiling for segd run: seg_consume_rate on the same topic ({k.partitions}"
               " partitions, lz4, mock cluster of 3 brokers), one consumer, unlimited prefetch")
    kce = med(kc)
    v, e = b.metric("kafka_e2e", "events_per_second")
    e2e = [r for r in b.sel("kafka_e2e") if r["ok"]]
    cpu_rate = med([r["events_per_cpu_second"] for r in e2e if "events_per_cpu_second" in r])
    per_ev = med([r["messages_delivered"] / r["events"] for r in e2e if r.get("events")])
    drain = med([r["drain_seconds"] for r in e2e if "drain_seconds" in r])
    note = "segd_events_total + segd_events_rejected_total from /metrics, first count to last"
    if cpu_rate:
        note += f"; {cpu_rate:,.0f} events per segd CPU-second (all its threads)"
    if per_ev:
        note += f"; {per_ev:.2f} messages produced per event (transitions, churn-alerts)"
    if drain is not None:
        note += f"; last delivery {drain:.2f} s after the last event"
    kp, kp_err = b.metric("kafka_produce", "events_per_second")
    bound = None
    if kp and per_ev and kce:
        floor = med(kp) / per_ev
        bound = min(kce, floor)
        both = 1 / (1 / floor + 1 / kce)
        note += (f"; producing its {per_ev:.2f} messages per event alone caps it at"
                 f" {floor:,.0f} events/s (produce floor below), consume-only at {kce:,.0f}:"
                 f" the library-only bound is the lower, {bound:,.0f} events/s"
                 f" ({'produce' if floor < kce else 'consume'}); both costs on the same cores"
                 f" would allow {both:,.0f} events/s (1 / (1/produce + 1/consume)),"
                 f" {(med(v) / both) if v else 0:.2f}x of which segd reached")
        pairs = [_pair(b, i) for i in range(len(b.sel("kafka_e2e")))]
        pairs = [x for x in pairs if x is not None]
        if pairs:
            note += (f"; per repetition (each run against its own neighbours):"
                     f" {', '.join(f'{x:.2f}x' for x in pairs)}")
    b.add("kafka_e2e", f"segd run end to end, Kafka, {common.label(k.customers)} customers",
          "events/s", v, e,
          ceiling=bound, ceiling_desc="library-only bound, same run: min(consume-only,"
          " produce floor / messages per event)",
          target=">= 0.85x library-only bound",
          check=lambda c: c["ratio"] is not None and c["ratio"] >= 0.85, note=note)
    shares = [r["copy_share"] for r in b.sel("kafka_produce") if "copy_share" in r]
    b.add("kafka_produce", "librdkafka produce-only, transition lines", "msgs/s", kp, kp_err,
          note="seg_consume_rate --produce: transition lines from segd replay, keyed by customer,"
               " acks=all, idempotent, lz4, linger.ms=5, consistent_random, same cluster, until"
               " every delivery report; in segd's mix: to one topic, and to a second"
               f" {', '.join(f'{x:.3f}' for x in shares) or '0'} copies per line as segd's"
               " routes made in the run before; the floor under segd's end-to-end cost")


def _copy_share(b):
    """Route copies per transition in the latest segd run that finished
    (0 when none did: the floor is then one topic, as the note says)."""
    for r in reversed(b.sel("kafka_e2e")):
        if r["ok"] and r.get("transitions"):
            copies = r["messages_delivered"] - r["transitions"] - r.get("dlq_delivered", 0)
            return min(1.0, max(0.0, copies / r["transitions"]))
    return 0.0


def _pair(b, i):
    """Repetition i's ratio: its segd rate over the bound from the ceiling
    and produce-floor runs of the same repetition (None if one failed)."""
    try:
        c, e, p = (b.sel(n)[i] for n in ROWS)
    except IndexError:
        return None
    if not (c["ok"] and e["ok"] and p["ok"] and e.get("events")):
        return None
    per_ev = e["messages_delivered"] / e["events"]
    return e["events_per_second"] / min(c["events_per_second"], p["events_per_second"] / per_ev)
