#!/usr/bin/python3
"""lookup_cost: what a steady 100 customer lookups/s cost `segd run`'s event rate.

GET /v1/customers/{id} is answered by the daemon's main loop (the engines
are its own; docs/operations.md), so each lookup takes a little of the
loop's time and wakes it from its poll. The question operators ask is
whether an application looking customers up steadily slows the stream
down. This measures it the way bench/segbench/kafka_e2e.py measures the
daemon's rate: a mock Kafka cluster (tests/harness) is filled once by
seg_gen, then `segd run` consumes the whole topic from the beginning with
a fresh consumer group, alternately without lookups and with a client
thread sending GET /v1/customers/{id} at a fixed rate (ids of customers
in the data, so most are found once their first event is folded). The
event rate is read from /metrics every 50 ms: events counted from the
first sample above zero to the first sample with every record counted.

Usage: bench/lookup_cost.py BUILD_DIR [--customers N] [--rate R] [--repeat K]
                           [--client curl|python] [--partitions P] [--interleave S]
The mock cluster keeps about 5 MB per partition: give it about one
partition per 12,500 customers (--customers 1000000 --partitions 80), or
the head of the topic is dropped and a run never sees every record.
Prints one line per run and the medians; exits 1 if a run fails.
Results are in docs/benchmarks.md ("Customer lookups").
"""

import argparse
import json
import os
import socket
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "harness"))
from cluster import start_cluster  # noqa: E402



def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def metric_sum(text, name):
    v = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            v += float(line.rsplit(" ", 1)[1])
    return v


def scrape(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return None


def cpu_seconds(pid):
    """utime + stime of a process, from /proc (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CurlLookups:
    """The same schedule from PROCS curl processes (C, one kept-alive
    connection each, `--rate` spacing its serial requests), so the client
    takes as little as possible of the two cores segd and the brokers
    share: what is measured is then segd's cost, not the client's. Each
    request writes "status seconds" to the process's output file; the lines
    written between two instants are what was sent between them."""

    PROCS = 4

    def __init__(self, port, ids, rate, work, tag):
        self.outs, self.procs = [], []
        per = rate / self.PROCS
        n = int(per * 600) + 1          # ten minutes of requests each; stopped when done
        for k in range(self.PROCS):
            cfg = os.path.join(work, f"curl-{tag}-{k}.cfg")
            with open(cfg, "w") as f:
                for i in range(n):
                    cid = ids[(i * self.PROCS + k) % len(ids)]
                    f.write(f'url = "http://127.0.0.1:{port}/v1/customers/{cid}"\n'
                            'output = "/dev/null"\n')
            out = os.path.join(work, f"curl-{tag}-{k}.out")
            self.outs.append(out)
            self.procs.append(subprocess.Popen(
                ["curl", "-s", "--rate", f"{per * 60:.0f}/m", "-K", cfg,
                 "-w", "%{stderr}%{http_code} %{time_total}\n", "-o", "/dev/null",
                 "--max-time", "5"],          # stderr: unbuffered, each line as it happens
                stdout=subprocess.DEVNULL, stderr=open(out, "w")))
        self.mark_at = [0] * self.PROCS

    def _lines(self):
        res = []
        for out in self.outs:
            with open(out) as f:
                res.append([ln.split() for ln in f.read().splitlines() if ln.count(" ") == 1])
        return res

    def mark(self):
        """From now on, count what is sent."""
        self.mark_at = [len(x) for x in self._lines()]

    def stop(self):
        """Stops the clients; sent/ok/notfound/errors/latency are what was
        sent since mark()."""
        got = self._lines()
        self.cpu = sum(cpu_seconds(p.pid) for p in self.procs)   # the client's own CPU
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(10)
        rows = [r for k, x in enumerate(got) for r in x[self.mark_at[k]:]]
        self.sent = len(rows)
        self.ok = sum(1 for c, _ in rows if c == "200")
        self.notfound = sum(1 for c, _ in rows if c == "404")
        self.errors = self.sent - self.ok - self.notfound
        self.latency = [float(t) for _, t in rows]


class Lookups:
    """(--client python) GET /v1/customers/{id} at `rate` per second on a
    fixed schedule, a new connection each, from a few client threads (a lookup waits for the batch the loop is
    folding, up to ~50 ms, so one sequential client could not keep the
    pace), until stopped. Counts only what is sent while `active`."""

    THREADS = 16

    def __init__(self, port, ids, rate):
        self.port, self.ids, self.rate = port, ids, rate
        self.stop_ = threading.Event()
        self.lock = threading.Lock()
        self.next = 0
        self.t0 = time.monotonic()
        self.sent = self.ok = self.notfound = self.errors = 0
        self.latency = []
        self.threads = [threading.Thread(target=self.work, daemon=True)
                        for _ in range(self.THREADS)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self, timeout):
        for t in self.threads:
            t.join(timeout)

    def mark(self):
        with self.lock:
            self.sent = self.ok = self.notfound = self.errors = 0
            self.latency = []

    def stop(self):
        self.stop_.set()
        self.join(10)

    def work(self):
        while not self.stop_.is_set():
            with self.lock:
                i = self.next
                self.next += 1
            due = self.t0 + i / self.rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            if self.stop_.is_set():
                return
            cid = self.ids[i % len(self.ids)]
            s = time.monotonic()
            res = "ok"
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.port}/v1/customers/{cid}", timeout=5) as r:
                    r.read()
            except urllib.error.HTTPError as e:
                res = "notfound" if e.code == 404 else "errors"
            except OSError:
                res = "errors"
            with self.lock:
                self.sent += 1
                setattr(self, res, getattr(self, res) + 1)
                self.latency.append(time.monotonic() - s)


def idle_cost(p, port, ids, n=2000):
    """segd's CPU per lookup once the input is consumed: n sequential
    lookups, minus what segd spends idle over as long. Returns seconds."""
    c0, t0 = cpu_seconds(p.pid), time.monotonic()
    for i in range(n):
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/v1/customers/{ids[i % len(ids)]}", timeout=5) as r:
                r.read()
        except urllib.error.HTTPError:
            pass
    busy, dt = cpu_seconds(p.pid) - c0, time.monotonic() - t0
    c1 = cpu_seconds(p.pid)
    time.sleep(dt)
    idle = cpu_seconds(p.pid) - c1
    return max(0.0, busy - idle) / n


def start_segd(segd, bootstrap, work, tag):
    """`segd run` over the whole topic with a fresh group and state.
    Returns (process, metrics port, its open log file)."""
    port = free_port()
    state = os.path.join(work, f"state-{tag}")
    os.makedirs(state)
    group = f"lk-{tag}"
    log = open(os.path.join(work, f"segd-{tag}.log"), "wb")
    p = subprocess.Popen([segd, "run", "--set", f"kafka.brokers={bootstrap}",
                          "--set", f"kafka.group_id={group}",
                          "--set", f"kafka.changelog_topic={group}-changelog",
                          "--set", f"state.dir={state}",
                          "--set", "checkpoint.interval=1h",
                          "--set", f"metrics.listen=127.0.0.1:{port}"],
                         stdout=log, stderr=log)
    return p, port, log


def stop_segd(p, log):
    """SIGTERM, then SIGKILL after 60 s; closes its log."""
    p.terminate()
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    log.close()


def one_run(segd, bootstrap, work, tag, want, ids, rate, client):
    p, port, log = start_segd(segd, bootstrap, work, tag)
    lk = None
    try:
        first = None
        t_start = time.monotonic()
        while True:
            if time.monotonic() - t_start > 300:
                raise RuntimeError("not done after 300 s")
            if p.poll() is not None:
                raise RuntimeError(f"segd exited {p.returncode}")
            t = scrape(port)
            now = time.monotonic()
            if t is not None:
                n = metric_sum(t, "segd_events_total") + metric_sum(t, "segd_events_rejected_total")
                if lk is None and rate > 0:
                    if client == "curl":
                        lk = CurlLookups(port, ids, rate, work, tag)
                    else:
                        lk = Lookups(port, ids, rate)
                        lk.start()
                if first is None and n > 0:
                    first = (now, n, cpu_seconds(p.pid))
                    if lk:   # count only what is sent while events are consumed
                        lk.mark()
                if first and n >= want:
                    secs = now - first[0]
                    cpu = cpu_seconds(p.pid) - first[2]
                    if lk:
                        lk.stop()
                        lk.idle_cost = idle_cost(p, port, ids)
                    return (n - first[1]) / secs, (n - first[1]) / cpu, secs, lk
            time.sleep(0.05)
    finally:
        if lk and not hasattr(lk, "idle_cost"):
            lk.stop()
        stop_segd(p, log)


def interleaved_run(segd, bootstrap, work, tag, want, ids, rate, window):
    """One segd run over the whole topic with the lookups switched on and
    off every `window` seconds (SIGSTOP/SIGCONT of the curl clients), so
    that slow drift of the machine's speed hits both arms alike. Returns
    [(on, seconds, events, lookups sent)] per whole window, the first two
    (the group join's transient) left out."""
    p, port, log = start_segd(segd, bootstrap, work, tag)
    lk = None
    on = False

    def switch(to):
        for c in lk.procs:
            c.send_signal(signal.SIGCONT if to else signal.SIGSTOP)

    def events():
        t = scrape(port)
        if t is None:
            return None
        return metric_sum(t, "segd_events_total") + metric_sum(t, "segd_events_rejected_total")

    def sent():
        return sum(len(x) for x in lk._lines())

    try:
        t_start = time.monotonic()
        n = None
        while n is None or n == 0:
            if time.monotonic() - t_start > 120:
                raise RuntimeError("segd did not start consuming in 120 s")
            if p.poll() is not None:
                raise RuntimeError(f"segd exited {p.returncode}")
            n = events()
            if n is not None and lk is None:
                lk = CurlLookups(port, ids, rate, work, tag)
                switch(False)
            time.sleep(0.02)
        windows = []
        t0, n0, s0 = time.monotonic(), n, sent()
        while n < want:
            if time.monotonic() - t_start > 300:
                raise RuntimeError("not done after 300 s")
            time.sleep(max(0.0, t0 + window - time.monotonic()))
            n1 = events()
            if n1 is None:
                raise RuntimeError("segd's /metrics stopped answering")
            t1, s1 = time.monotonic(), sent()
            if n1 < want:            # a window cut short by the end is left out
                windows.append((on, t1 - t0, n1 - n0, s1 - s0))
            on = not on
            switch(on)
            t0, n0, s0, n = t1, n1, s1, n1
        return windows[2:], lk
    finally:
        if lk:
            switch(True)
            lk.stop()
        stop_segd(p, log)


def interleaved_cost(windows):
    """Per on-window: 1 - its rate / the mean rate of the off-windows on
    either side (both present). Returns the list of costs."""
    costs = []
    for i in range(1, len(windows) - 1):
        on, secs, ev, _ = windows[i]
        if not on or windows[i - 1][0] or windows[i + 1][0]:
            continue
        off = (windows[i - 1][2] / windows[i - 1][1] + windows[i + 1][2] / windows[i + 1][1]) / 2
        costs.append(1 - (ev / secs) / off)
    return costs


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--customers", type=int, default=300000)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=24)
    ap.add_argument("--interleave", type=float, default=0,
                    help="switch the lookups on and off every this many seconds within "
                         "each run (drift-proof); 0: whole runs with and without, alternated")
    ap.add_argument("--client", choices=("curl", "python"), default="curl",
                    help="curl: 4 kept-alive curl processes (default); python: 16 "
                         "urllib threads, a connection per lookup")
    a = ap.parse_args(argv)
    segd = os.path.join(a.build, "segd")
    gen = os.path.join(a.build, "seg_gen")
    work = tempfile.mkdtemp(prefix="segd-lookups.")
    parts = a.partitions
    topics = [f"events:{parts}"] + [f"lk-{m}{i}-changelog:{parts}" for m in "abi"
                                      for i in range(a.repeat)]
    topics += ["transitions:48", "events-dlq:3", "churn-alerts:12"]
    with start_cluster(topics, stderr=open(os.path.join(work, "mc.err"), "wb")) as mc:
        summ = os.path.join(work, "gen.json")
        subprocess.run([gen, "--customers", str(a.customers), "--brokers", mc.bootstrap,
                        "--topic", "events", "-X", "linger.ms=20", "-X", "batch.size=1000000",
                        "--summary-json", summ], check=True, stderr=subprocess.DEVNULL)
        want = json.load(open(summ))["records"]
        ids = [f"c{(i * 7919) % a.customers:010d}" for i in range(1000)]
        print(f"input: {a.customers} customers, {want} events, {parts} partitions; "
              f"lookups at {a.rate:.0f}/s ({a.client} client)", flush=True)
        if a.interleave > 0:
            return interleaved(a, segd, mc.bootstrap, work, want, ids)
        base, with_lk, costs = [], [], []
        # ABBA: every run adds to the cluster's topics and the runs slow
        # down over a session; alternating the order keeps that drift out
        # of the pairs' median.
        for i in range(a.repeat):
            for mode in (("a", "b") if i % 2 == 0 else ("b", "a")):
                r = a.rate if mode == "b" else 0
                eps, epc, secs, lk = one_run(segd, mc.bootstrap, work, f"{mode}{i}", want, ids, r,
                                            a.client)
                (with_lk if r else base).append((eps, epc))
                extra = ""
                if lk:
                    lat = sorted(lk.latency) or [0]
                    extra = (f"; {lk.sent} lookups ({lk.sent / secs:.0f}/s while consuming), "
                             f"{lk.ok} found, {lk.notfound} not (yet) held, {lk.errors} errors, "
                             f"latency p50 {1000 * lat[len(lat) // 2]:.1f} ms, "
                             f"p99 {1000 * lat[int(len(lat) * 0.99)]:.1f} ms; "
                             f"idle: {1e6 * lk.idle_cost:.0f} us of segd CPU per lookup")
                    costs.append(lk.idle_cost)
                print(f"  run {i + 1} {'with' if r else 'without'} lookups: {eps:,.0f} events/s, "
                      f"{epc:,.0f} events per CPU second, over {secs:.1f} s{extra}", flush=True)
        pairs = [100 * (b[0] - w[0]) / b[0] for b, w in zip(base, with_lk)]
        print("cost per alternated pair (events/s): "
              + ", ".join(f"{x:+.1f}%" for x in pairs)
              + f"; median {statistics.median(pairs):+.1f}%")
        for k, what in ((0, "events/s"), (1, "events per CPU second")):
            mb = statistics.median(x[k] for x in base)
            ml = statistics.median(x[k] for x in with_lk)
            print(f"median {what}: without lookups {mb:,.0f}, with {ml:,.0f}: "
                  f"{100 * (mb - ml) / mb:+.1f}% cost")
        c = statistics.median(costs)
        print(f"segd CPU per lookup (idle, median): {1e6 * c:.0f} us; at {a.rate:.0f}/s that is "
              f"{100 * c * a.rate:.2f}% of one core")
    return 0


def interleaved(a, segd, bootstrap, work, want, ids):
    allc, on_ev, on_s, off_ev, off_s, looked = [], 0, 0.0, 0, 0.0, 0
    client_cpu = client_n = 0
    for i in range(a.repeat):
        w, lk = interleaved_run(segd, bootstrap, work, f"i{i}", want, ids, a.rate, a.interleave)
        client_cpu, client_n = client_cpu + lk.cpu, client_n + len(lk.latency)
        c = interleaved_cost(w)
        allc += c
        for on, secs, ev, n in w:
            if on:
                on_ev, on_s, looked = on_ev + ev, on_s + secs, looked + n
            else:
                off_ev, off_s = off_ev + ev, off_s + secs
        print(f"  run {i + 1}: {len(w)} windows of {a.interleave:g} s; cost per on-window "
              f"against its neighbours: " + ", ".join(f"{100 * x:+.0f}%" for x in c)
              + (f"; median {100 * statistics.median(c):+.1f}%" if c else ""), flush=True)
    if not allc or not on_s or not off_s:
        print("no whole windows measured")
        return 1
    q = statistics.quantiles(allc, n=4) if len(allc) >= 2 else [allc[0]] * 3
    print(f"{len(allc)} on-windows: cost median {100 * statistics.median(allc):+.1f}% "
          f"(quartiles {100 * q[0]:+.1f}% .. {100 * q[2]:+.1f}%), mean {100 * statistics.mean(allc):+.1f}%")
    print(f"pooled: {off_ev / off_s:,.0f} events/s with lookups off, {on_ev / on_s:,.0f} on "
          f"({looked / on_s:.0f} lookups/s): {100 * (1 - (on_ev / on_s) / (off_ev / off_s)):+.1f}% cost")
    if client_n:
        print(f"the curl client's own CPU on the same cores: {1e6 * client_cpu / client_n:.0f} us "
              f"per lookup, {100 * client_cpu / client_n * a.rate:.1f}% of a core at {a.rate:.0f}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
