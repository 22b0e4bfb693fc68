"""latency: Kafka produce -> transition latency at a fixed event rate.

What, per run (REPEAT_LATENCY, default 2): seg_gen --realtime --rate
BENCH_LATENCY_RATE (50k/s) produces live events (ts = now) for
BENCH_LATENCY_SECONDS (10 s) into a 6-partition topic that one segd
consumes, while bench/seg_bench_tail reads segd's output topic and stamps
each transition with its receive time. Extra segd arguments for these runs:
BENCH_LATENCY_SEGD_ARGS (e.g. "--set kafka.consumer.fetch.wait.max.ms=10").

How a transition is matched: each transition caused by an event
("cause":"event") is matched to its input record by (customer_id, ts = the
transition's `at`); the input's produce time is its Kafka CreateTime, read
back afterwards with kcat. Keys that several input records share (same
customer, same second) are left out, and counted.

Reported: receive time - produce time (produce -> transition readable by a
consumer, an upper bound of "delivered"), and segd's own CreateTime of the
transition - produce time (produce -> segd produced it, a lower bound);
with the CPU segd and the mock cluster used, and the load average at the
start of each run, because on a loaded 2-core machine the tail of the
distribution is mostly other processes.

One-hop runs (kafka_latency_hop), alternated with the segd runs: the same
generated stream into a topic nobody processes, read straight back by the
same tail. A transition takes two such hops plus segd, so this is the part
of the figure that the cluster, the clients and the machine set on their
own, measured in the same run.

Why produce only once segd owns its partitions and the tail reads: the
consumer group join takes seconds on the mock; events produced before it
would wait in the topic and measure the join, not segd.
"""

import calendar
import json
import os
import time

from . import common, kafka

GROUP = "kafka"
CASE = "kafka_latency"
HOP = "kafka_latency_hop"


def run(b):
    k = b.kafka
    if k.error:
        b.fail(CASE, k.error)
        return
    repeat = b.env_int("REPEAT_LATENCY", 2)
    extra = b.env("BENCH_LATENCY_SEGD_ARGS", "").split()
    lat = b.path("lat")
    os.makedirs(lat, exist_ok=True)
    parts = kafka.LATENCY_PARTITIONS
    for i in range(1, repeat + 1):
        in_topic, out_topic = "lat-events", "lat-transitions"
        try:
            k.cluster.command(f"create_topic bench-lat-{i}-changelog {parts}", timeout=30)
        except Exception:
            return _fail(b, "cannot create a changelog topic")
        if i > 1:  # fresh topics: the join reads them whole
            in_topic, out_topic = f"lat-events-{i}", f"lat-transitions-{i}"
            try:
                k.cluster.command(f"create_topic {in_topic} {parts}", timeout=30)
                k.cluster.command(f"create_topic {out_topic} {parts}", timeout=30)
            except Exception:
                return _fail(b, "cannot create latency topics")
        hop_topic = f"lat-hop-{i}"
        try:
            k.cluster.command(f"create_topic {hop_topic} {parts}", timeout=30)
        except Exception:
            return _fail(b, "cannot create the one-hop topic")
        _hop(b, i, hop_topic, lat)
        r = b.sel(HOP)[-1]
        print(f"  kafka_latency one hop (no segd): produce -> received p50"
              f" {r.get('receive_p50_ms', 0):.1f} ms, p99 {r.get('receive_p99_ms', 0):.1f} ms"
              if r["ok"] else f"  kafka_latency one hop: ERROR {r.get('error')}", flush=True)
        if not _one(b, i, in_topic, out_topic, extra, lat):
            return
        r = b.sel(CASE)[-1]
        if r["ok"]:
            print(f"  kafka_latency run: {r['produced']} events at {r.get('achieved_rate', 0):,.0f}/s,"
                  f" {r['matched']} transitions matched: produce -> received p50"
                  f" {r['receive_p50_ms']:.1f} ms, p99 {r['receive_p99_ms']:.1f} ms (produce ->"
                  f" segd produced p99 {r['produced_p99_ms']:.0f} ms); CPU s: segd"
                  f" {r['segd_cpu_seconds']:.1f}, cluster {r['cluster_cpu_seconds']:.1f};"
                  f" load {r['loadavg_at_start']}", flush=True)
        else:
            print(f"  kafka_latency run: ERROR {r.get('error')}", flush=True)
        for f in (f"in-{i}.tsv", f"tail-{i}.tsv"):
            if os.path.exists(os.path.join(lat, f)):
                os.unlink(os.path.join(lat, f))


def _fail(b, msg):
    kafka.error(msg)
    b.fail(CASE, msg)


def _one(b, i, in_topic, out_topic, extra, lat):
    """One latency run; records it. False if the case cannot go on."""
    k = b.kafka
    rate, secs = k.latency_rate, k.latency_seconds
    port = common.free_port()
    state = b.path(f"state-lat-{i}")
    os.makedirs(state, exist_ok=True)
    segd = kafka.segd_run(b, b.path(f"segd-lat-{i}.log"),
                          [("kafka.brokers", k.bootstrap), ("kafka.group_id", f"bench-lat-{i}"),
                           ("kafka.input_topics", in_topic), ("kafka.output_topic", out_topic),
                           ("kafka.changelog_topic", f"bench-lat-{i}-changelog"),
                           ("state.dir", state), ("metrics.listen", f"127.0.0.1:{port}")], extra)
    tail_err = os.path.join(lat, f"tail-{i}.err")
    with open(os.path.join(lat, f"tail-{i}.json"), "wb") as out, open(tail_err, "wb") as err:
        tail = b.spawn([k.tail, "--bootstrap", k.bootstrap, "--topic", out_topic,
                        "--out", os.path.join(lat, f"tail-{i}.tsv"),
                        "--max-seconds", str(secs + 90)], stdout=out, stderr=err)

    def ready():
        with open(tail_err, errors="replace") as f:
            if "reading" not in f.read():
                return False
        t = kafka.metrics(port, timeout=1)
        return t is not None and any(l.startswith("segd_assigned_partitions ")
                                     and float(l.split()[1]) > 0 for l in t.splitlines())

    if not kafka.wait_until(ready, 30, 0.1):
        for p in (segd, tail):
            p.kill()
            p.wait()
        _fail(b, f"segd or seg_bench_tail not ready in 30 s (latency run {i})")
        return False
    # Generating a million customers takes about a second before the first
    # record; the stream is stopped `secs` seconds after that.
    with open(os.path.join(lat, f"gen-{i}.err"), "wb") as err:
        gen = b.spawn([b.seg_gen, "--customers", "1000000", "--seed", str(b.seed + i),
                       "--realtime", "--rate", str(rate), "--brokers", k.bootstrap,
                       "--topic", in_topic, "--summary-json", os.path.join(lat, f"gen-{i}.json")],
                      stderr=err)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    cpu0 = common.proc_cpu_ticks(segd.pid) or 0
    mcpu0 = common.proc_cpu_ticks(k.cluster.proc.pid) or 0
    time.sleep(secs + 1)
    rc = b.stop(gen)
    produced = 0
    if rc == 0:
        try:
            produced = common.load_json(os.path.join(lat, f"gen-{i}.json"))["written"]
        except (OSError, ValueError, KeyError):
            pass  # _analyse reports it

    # Wait (at most 60 s) for segd to fold every record, then 2 s for the
    # tail to read the last transitions.
    def folded():
        t = kafka.metrics(port)
        return t is not None and sum(
            float(l.rsplit(" ", 1)[1]) for l in t.splitlines()
            if l.startswith("segd_events_total")
            or l.startswith("segd_events_rejected_total")) >= produced

    kafka.wait_until(folded, 60, 0.1)
    cpu1 = common.proc_cpu_ticks(segd.pid) or 0
    mcpu1 = common.proc_cpu_ticks(k.cluster.proc.pid) or 0
    time.sleep(2)
    b.stop(tail)
    src = b.stop(segd)
    drc = b.call(["kcat", "-C", "-b", k.bootstrap, "-t", in_topic, "-o", "beginning", "-e", "-q",
                  "-f", r"%T\t%k\t%s\n"],
                 stdout=os.path.join(lat, f"in-{i}.tsv"),
                 stderr=os.path.join(lat, f"kcat-{i}.err"), timeout=120)
    b.record(_analyse(lat, i, rc, src, drc, rate, float(load),
                      (cpu1 - cpu0) / common.CLK_TCK, (mcpu1 - mcpu0) / common.CLK_TCK))
    return True


def _hop(b, i, topic, lat):
    """The same stream read straight back, with no segd: one hop."""
    k = b.kafka
    rate, secs = k.latency_rate, k.latency_seconds
    tsv, tail_err = os.path.join(lat, f"hop-{i}.tsv"), os.path.join(lat, f"hop-{i}.err")
    with open(os.path.join(lat, f"hop-{i}.json"), "wb") as out, open(tail_err, "wb") as err:
        tail = b.spawn([k.tail, "--bootstrap", k.bootstrap, "--topic", topic, "--out", tsv,
                        "--max-seconds", str(secs + 60)], stdout=out, stderr=err)

    def ready():
        with open(tail_err, errors="replace") as f:
            return "reading" in f.read()

    if not kafka.wait_until(ready, 30, 0.1):
        tail.kill()
        tail.wait()
        b.fail(HOP, "seg_bench_tail not ready in 30 s")
        return
    with open(os.path.join(lat, f"hop-gen-{i}.err"), "wb") as err:
        gen = b.spawn([b.seg_gen, "--customers", "1000000", "--seed", str(b.seed + i),
                       "--realtime", "--rate", str(rate), "--brokers", k.bootstrap,
                       "--topic", topic], stderr=err)
    time.sleep(secs + 1)
    rc = b.stop(gen)
    time.sleep(2)
    b.stop(tail)
    r = {"case": HOP, "ok": False}
    try:
        if rc != 0:
            raise RuntimeError(f"seg_gen exit {rc}")
        d = []
        with open(tsv, encoding="utf-8", errors="replace") as f:
            for line in f:
                recv_us, ts_ms, tt, _rest = line.split("\t", 3)
                if tt == "C":
                    d.append(int(recv_us) / 1000.0 - int(ts_ms))
        if not d:
            raise RuntimeError("no message read back")
        d.sort()
        r.update(ok=True, messages=len(d), receive_p50_ms=_pct(d, 0.5),
                 receive_p99_ms=_pct(d, 0.99))
    except (OSError, ValueError, RuntimeError) as e:
        r["error"] = str(e)[:400]
    b.record(r)
    if os.path.exists(tsv):
        os.unlink(tsv)


def _sec(s):
    """"YYYY-MM-DDTHH:MM:SSZ" -> Unix seconds."""
    return calendar.timegm((int(s[0:4]), int(s[5:7]), int(s[8:10]),
                            int(s[11:13]), int(s[14:16]), int(s[17:19])))


def _pct(v, q):
    return v[min(len(v) - 1, int(q * len(v)))]


def _analyse(d, i, rc, src, drc, rate, load, segd_cpu, cluster_cpu):
    """The run's record: matches transitions to inputs, percentiles."""
    r = {"case": CASE, "ok": False, "target_rate": float(rate), "loadavg_at_start": load,
         "segd_cpu_seconds": segd_cpu, "cluster_cpu_seconds": cluster_cpu}
    try:
        if rc != 0:
            raise RuntimeError(f"seg_gen exit {rc}: " + _read(f"{d}/gen-{i}.err")[-300:])
        if drc != 0:
            raise RuntimeError(f"kcat exit {drc}: " + _read(f"{d}/kcat-{i}.err")[-300:])
        g = common.load_json(f"{d}/gen-{i}.json")
        r["produced"] = g["kafka"]["produced"]
        # seg_gen's own rate line: records over the whole stream incl. the final flush
        for line in _read(f"{d}/gen-{i}.err").splitlines():
            if line.startswith("seg_gen: produced "):
                r["produce_seconds"] = float(line.split(" in ")[1].split("s ")[0])
        if r.get("produce_seconds"):
            r["achieved_rate"] = r["produced"] / r["produce_seconds"]
        if r["segd_cpu_seconds"] > 0:
            r["events_per_segd_cpu_second"] = r["produced"] / r["segd_cpu_seconds"]
        produced_at, dup = {}, set()
        with open(f"{d}/in-{i}.tsv", encoding="utf-8", errors="replace") as f:
            for line in f:
                ts_ms, _key, val = line.rstrip("\n").split("\t", 2)
                e = json.loads(val)
                key = (e["customer_id"], _sec(e["ts"]))
                if key in produced_at:
                    dup.add(key)
                produced_at[key] = int(ts_ms)
        if not produced_at:
            raise RuntimeError("no input records read back")
        recv, made = [], []
        n_event = n_time = n_dup = n_none = 0
        with open(f"{d}/tail-{i}.tsv", encoding="utf-8") as f:
            for line in f:
                recv_us, ts_ms, _tt, _p, _o, val = line.rstrip("\n").split("\t", 5)
                t = json.loads(val)
                if t["cause"] != "event":
                    n_time += 1
                    continue
                n_event += 1
                key = (t["customer_id"], _sec(t["at"]))
                if key in dup:
                    n_dup += 1
                    continue
                p = produced_at.get(key)
                if p is None:
                    n_none += 1
                    continue
                recv.append(int(recv_us) / 1000.0 - p)
                made.append(int(ts_ms) - p)
        recv.sort()
        made.sort()
        r.update(transitions_event=n_event, transitions_time=n_time, matched=len(recv),
                 left_out_shared_key=n_dup, unmatched=n_none, segd_exit=src)
        if not recv:
            raise RuntimeError("no transition matched an input record")
        for q, name in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
            r[f"receive_{name}_ms"] = _pct(recv, q)
            r[f"produced_{name}_ms"] = _pct(made, q)
        r["receive_max_ms"] = recv[-1]
        if n_none:
            r["error"] = f"{n_none} event-caused transitions match no input record"
        elif src != 0:
            r["error"] = f"segd exited {src} on SIGTERM"
        else:
            r["ok"] = True
    except Exception as e:
        r["error"] = str(e)[:400]
    return r


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def report(b):
    k = b.kafka
    med = common.median
    lat = [r for r in b.sel(CASE) if r["ok"]]
    _, lat_err = b.metric(CASE, "receive_p99_ms")
    note = None
    if lat:
        per_s = lambda key: med([r[key] / r["produce_seconds"] for r in lat
                                 if r.get("produce_seconds")]) or 0
        note = (f"{med([r.get('achieved_rate', 0) for r in lat]):,.0f} events/s achieved;"
                f" {sum(r['matched'] for r in lat):,} event-caused transitions matched to their"
                f" input ({sum(r['left_out_shared_key'] for r in lat):,} left out: customer and"
                f" second shared by several inputs); produce -> segd produced the transition"
                f" (its CreateTime): p50 {med([r['produced_p50_ms'] for r in lat]):.0f} ms,"
                f" p99 {med([r['produced_p99_ms'] for r in lat]):.0f} ms;"
                f" segd used {per_s('segd_cpu_seconds'):.2f} CPU-seconds per second, the mock"
                f" cluster {per_s('cluster_cpu_seconds'):.2f}; load average at start"
                f" {', '.join(str(r['loadavg_at_start']) for r in lat)}")
    rate = k.latency_rate
    b.add("kafka_latency_p99", f"latency produce -> transition received, p99, {rate / 1000:g}k"
          " events/s", "ms", [r["receive_p99_ms"] for r in lat], lat_err, target="<= 40 ms",
          check=lambda c: c["median"] <= 40, note=note)
    hop, hop_err = b.metric(HOP, "receive_p99_ms")
    hop50, _ = b.metric(HOP, "receive_p50_ms")
    b.add("kafka_latency_hop_p99", f"latency one hop (produce -> read back, no segd), p99,"
          f" {rate / 1000:g}k ev/s", "ms", hop, hop_err,
          note=(f"the same generated stream read straight back by the same tail, alternated"
                f" with the segd runs; a transition takes two such hops plus segd; p50"
                f" {med(hop50):.1f} ms" if hop50 else None))
    b.add("kafka_latency_p50", f"latency produce -> transition received, p50, {rate / 1000:g}k"
          " events/s", "ms", [r["receive_p50_ms"] for r in lat], lat_err)
