"""observe_tests: what `segd run` tells about the segments themselves
(docs/operations.md, "Segment sizes, customer lookups and the live page").

Cases (run all, or name some: test_observe.sh sizes auth):
  sizes  - CDNOW customers (one in five) with the dataset rule set through
           segd: GET /v1/segments and the segd_segment_* series equal what a
           consumer of the output topic counts (tests/integration/
           sizes_check.py: each customer's latest value per dimension, read
           back with kcat); after a restart that restores the state from a
           snapshot, the sizes are the same again. GET /v1/customers/{id}
           for customers (one with an id that needs URL encoding) agrees with
           their transitions; an unknown id is a 404 with a JSON error.
           Headless Chromium loads GET / and the DOM shows the sizes
           /v1/segments reports; a screenshot is left in the build folder.
  reload - a reload that removes a rule and adds one: sizes follow (the
           removed rule's "to: null", the new rule's starting value).
  auth   - metrics.listen beyond loopback: check-config refuses the API
           without metrics.token_file and warns on a world-readable one;
           a missing or wrong token gets 401 and no customer data, the
           token (Bearer, or Basic for browsers) gets the data, and
           /metrics, /healthz, /readyz stay open; metrics.api: false turns
           the API and the page off.

Independence: as daemon_tests.py: events in with kafka-python, output read
with kcat, expectations from the consumer model, never from segd's numbers.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import base64
from html.parser import HTMLParser

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon_lib as L  # noqa: E402
import sizes_check  # noqa: E402
from daemon_lib import Segd, TestFailure, start_cluster, wait_for  # noqa: E402

RULES = os.path.join(L.SEG_SRC, "tests", "data", "rules", "datasets.yaml")


C = L.Checks()
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def base_sets(group, **over):
    s = {"kafka.group_id": group, "shutdown_timeout": "20s",
         "kafka.consumer.session.timeout.ms": "3000",
         "kafka.consumer.heartbeat.interval.ms": "500",
         "time.idle_timeout": "1h"}
    s.update(over)
    return [f"{k}={v}" for k, v in s.items()]


def cluster(work, group, nparts=6):
    topics = [f"events:{nparts}", "transitions:24", "events-dlq:3", "churn-alerts:6",
              f"{group}-changelog:{nparts}"]
    with open(os.path.join(work, "mc.err"), "ab") as err:
        return start_cluster(topics, stderr=err)


def get(port, path, headers=None, timeout=10.0):
    """(status, body text, headers) of GET http://127.0.0.1:port/path."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def get_json(port, path, headers=None):
    st, body, _ = get(port, path, headers)
    if st != 200:
        raise TestFailure(f"GET {path} answered {st}: {body[:300]}")
    return json.loads(body)


def output_lines(bootstrap):
    recs = L.kcat_dump(bootstrap, "transitions")
    by_id, conflicts, _ = L.transitions(recs)
    if conflicts:
        raise TestFailure(f"conflicting transitions: {conflicts[:2]}")
    return list(by_id.values())


def segment_metrics(m):
    """{dimension: {value: {customers, entries_total, exits_total}}} from
    the segd_segment_* series."""
    out = {}
    for name, field in (("segd_segment_customers", "customers"),
                        ("segd_segment_entries_total", "entries_total"),
                        ("segd_segment_exits_total", "exits_total")):
        for ls, v in m.series(name):
            out.setdefault(ls["dimension"], {}).setdefault(ls["value"], {})[field] = int(v)
    return {"dimensions": [{"dimension": d, "values": [dict(value=v, **x) for v, x in vals.items()]}
                           for d, vals in out.items()]}


def compare_with_consumer(c, what, segs, lines, customers, fields, metrics=None):
    want = sizes_check.expected(lines, RULES, customers, segs["time"])
    problems = sizes_check.compare(want, segs, fields)
    nvals = sum(len(d["values"]) for d in segs["dimensions"])
    c.check(f"{what}: /v1/segments = the consumer's count of the output topic "
            f"({len(customers)} customers, {len(segs['dimensions'])} dimensions, {nvals} values; "
            f"{', '.join(fields)})", not problems, "\n".join(problems[:15]))
    c.check(f"{what}: /v1/segments customers = customers in the output ({len(customers)})",
            segs["customers"] == len(customers), segs["customers"])
    if metrics is not None:
        pm = segment_metrics(metrics)
        mf = [f for f in ("customers", "entries_total", "exits_total") if f in fields]
        # A series exists once a value had customers or flows; absent = 0.
        for d in pm["dimensions"]:
            for v in d["values"]:
                for f in mf:
                    v.setdefault(f, 0)
        problems = sizes_check.compare(
            {d: {v: x for v, x in vals.items()} for d, vals in want.items()}, pm, mf)
        problems = [p for p in problems if "volatility" not in p and "not reported" not in p
                    and "dimension missing" not in p]
        missing = [f"{d}={v}" for d, vals in want.items() for v, x in vals.items()
                   if x["customers"] and not any(
                       dd["dimension"] == d and any(vv["value"] in (v, "_other")
                                                    for vv in dd["values"])
                       for dd in pm["dimensions"])]
        c.check(f"{what}: segd_segment_customers / _entries_total / _exits_total = the "
                f"consumer's count", not problems and not missing,
                "\n".join((problems + missing)[:15]))


class DomValues(HTMLParser):
    """Rows of the page's sizes tables: {(dimension, value): customers}."""

    def __init__(self):
        super().__init__()
        self.rows, self.stats = {}, {}
        self._row = self._field = self._stat = None
        self._stat_depth = 0
        self.loaded = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body" and a.get("data-loaded") == "1":
            self.loaded = True
        if tag == "tr" and "data-dim" in a and "data-value" in a:
            self._row = (a["data-dim"], a["data-value"])
        if tag == "td" and self._row and a.get("data-field") == "customers":
            self._field = ""
        if self._stat is not None:
            self._stat_depth += 1
        elif "data-stat" in a:
            self._stat = a["data-stat"]
            self._stat_depth = 1
            self.stats[self._stat] = ""

    def handle_data(self, data):
        if self._field is not None:
            self._field += data
        if self._stat is not None:
            self.stats[self._stat] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._field is not None:
            self.rows[self._row] = self._field.strip()
            self._field = None
        if tag == "tr":
            self._row = None
        if self._stat is not None:
            self._stat_depth -= 1
            if self._stat_depth == 0:
                self.stats[self._stat] = self.stats[self._stat].strip()
                self._stat = None


def chromium(args, timeout=120):
    exe = shutil.which("chromium")
    if not exe:
        raise TestFailure("chromium is not installed (scripts/install-deps.sh installs it)")
    prof = tempfile.mkdtemp(prefix="segd-chromium.")
    try:
        return subprocess.run([exe, "--headless=new", "--no-sandbox", "--disable-gpu",
                               "--disable-dev-shm-usage", "--no-first-run",
                               "--disable-extensions", "--disable-background-networking",
                               f"--user-data-dir={prof}"] + args,
                              capture_output=True, timeout=timeout)
    finally:
        shutil.rmtree(prof, ignore_errors=True)


def check_page(c, segd, segs):
    st, body, hdr = get(segd.port, "/")
    c.check("GET / is an HTML page with no external scripts, styles or fonts",
            st == 200 and hdr.get("Content-Type", "").startswith("text/html") and
            "<script src" not in body and "http://" not in body.replace("http://127", "") and
            "https://" not in body and "@import" not in body, (st, hdr.get("Content-Type")))
    url = f"http://127.0.0.1:{segd.port}/"
    # --virtual-time-budget lets the page's fetches and first render finish
    # before the DOM is dumped (the refresh timer keeps firing in virtual
    # time, which is harmless).
    r = chromium(["--virtual-time-budget=15000", "--dump-dom", url])
    dom = DomValues()
    dom.feed(r.stdout.decode("utf-8", "replace"))
    want = {(d["dimension"], v["value"]): str(v["customers"])
            for d in segs["dimensions"] for v in d["values"]
            if v["customers"] or v["entries_24h"] or v["exits_24h"] or len(d["values"]) <= 12}
    wrong = {k: (dom.rows.get(k), w) for k, w in want.items() if dom.rows.get(k) != w}
    c.check(f"headless Chromium: after the scripts ran, the DOM shows the {len(want)} sizes "
            f"/v1/segments reports", r.returncode == 0 and dom.loaded and want and not wrong,
            f"exit {r.returncode}, loaded {dom.loaded}, {len(dom.rows)} rows; wrong: "
            f"{list(wrong.items())[:5]}; stderr {r.stderr.decode(errors='replace')[-300:]}")
    c.check("the page shows readiness, customers and event time",
            dom.stats.get("ready") == "ready" and dom.stats.get("customers") == str(segs["customers"])
            and dom.stats.get("time") == segs["time"], dom.stats)
    shot = os.path.join(L.SEG_BUILD or tempfile.gettempdir(), "segd-page.png")
    if os.path.exists(shot):
        os.unlink(shot)
    r = chromium(["--virtual-time-budget=15000", "--window-size=1400,1800",
                  f"--screenshot={shot}", url])
    ok = r.returncode == 0 and os.path.exists(shot) and os.path.getsize(shot) > 10000
    c.check(f"a screenshot of the page is left in {shot}", ok,
            f"exit {r.returncode}: {r.stderr.decode(errors='replace')[-300:]}")


def check_lookups(c, segd, lines, ev, nparts, weird):
    latest, trs = sizes_check.consumer_view(lines)
    init = sizes_check.initial_values(RULES)
    by_cust = {}
    for t in trs:
        by_cust.setdefault(t["customer_id"], []).append(t)
    purchases = {}
    for l in ev:
        e = json.loads(l)
        if e["type"] == "purchase":
            purchases.setdefault(e["customer_id"], []).append(e["ts"])
    picks = sorted(by_cust)[:: max(1, len(by_cust) // 25)][:25] + [weird]
    bad = []
    for cid in picks:
        path = "/v1/customers/" + urllib.parse.quote(cid, safe="")
        st, body, hdr = get(segd.port, path)
        if st != 200:
            bad.append(f"{cid}: {st} {body[:200]}")
            continue
        j = json.loads(body)
        mine = by_cust.get(cid, [])
        want_segs = {}
        for t in mine:
            want_segs[t["dimension"]] = t["to"]
        for d, v in init.items():
            want_segs.setdefault(d, v)
        got_segs = {k: v for k, v in j["segments"].items() if v is not None}
        want_segs = {k: v for k, v in want_segs.items() if v is not None}
        errs = []
        if j.get("customer_id") != cid:
            errs.append(f"customer_id {j.get('customer_id')!r}")
        if j.get("seq") != len(mine):
            errs.append(f"seq {j.get('seq')} != {len(mine)} transitions")
        if got_segs != want_segs:
            errs.append(f"segments {got_segs} != {want_segs}")
        if j.get("partition") != L.partition_of(cid, nparts):
            errs.append(f"partition {j.get('partition')} != {L.partition_of(cid, nparts)}")
        last_p = max(purchases.get(cid, []), default=None)
        f = j.get("features", {})
        if last_p is not None:
            clock = sizes_check._ts(j["clock"])
            if f.get("recency_s") != clock - sizes_check._ts(last_p):
                errs.append(f"recency_s {f.get('recency_s')} != clock - last purchase")
        nc = j.get("next_change") or {}
        if nc.get("at") is not None and (sizes_check._ts(nc["at"]) <= sizes_check._ts(j["clock"])
                                         or not nc.get("what")):
            errs.append(f"next_change {nc}")
        if errs:
            bad.append(f"{cid}: " + "; ".join(errs))
    c.check(f"GET /v1/customers/{{id}} for {len(picks)} customers (one id needing URL "
            f"encoding) agrees with their transitions: segments incl. rules, seq, partition, "
            f"recency, next change", not bad, "\n".join(bad[:8]))
    st, body, hdr = get(segd.port, "/v1/customers/no-such-customer")
    ok = st == 404 and hdr.get("Content-Type", "").startswith("application/json")
    try:
        ok = ok and json.loads(body).get("error") == "not found"
    except ValueError:
        ok = False
    c.check("an id this instance does not hold: 404 with a JSON error", ok, (st, body[:200]))


@case
def sizes(c, work):
    nparts = 6
    ev = L.subset(L.cdnow_events(work), 5, 1)
    weird = "weird/id ü%20?#"
    # A customer whose id needs URL encoding, buying once in the data's range.
    ev = ev + [json.dumps({"type": "purchase", "customer_id": weird, "ts": "1997-03-01T10:00:00Z",
                           "amount": 42.5}, separators=(",", ":")).encode()]
    ev.sort(key=L.ts_of)
    max_ts = max(L.ts_of(l) for l in ev)
    ev = ev + L.sentinels(nparts, max_ts)
    group = "sizes"
    state = os.path.join(work, "state")
    with cluster(work, group, nparts) as mc:
        L.produce(mc.bootstrap, "events", ev)
        sets = base_sets(group, **{"state.dir": state, "checkpoint.interval": "2s"})
        segd = Segd("segd", work, mc.bootstrap, sets, config=RULES)
        try:
            L.wait_committed(mc.bootstrap, "events", group, 120, [segd])
            state_ = {}

            def stable():
                a = output_lines(mc.bootstrap)
                segs = get_json(segd.port, "/v1/segments")
                m = segd.metrics()
                b = output_lines(mc.bootstrap)
                ok = len(a) == len(b) and m.get("segd_inflight_records") == 0
                state_.update(lines=b, segs=segs, m=m)
                return ok and len(b) > 1000
            wait_for("output and sizes to settle", stable, 60, 1.0)
            lines, segs = state_["lines"], state_["segs"]
            customers = {json.loads(l)["customer_id"] for l in lines}
            # The Prometheus series are refreshed once a second: one more.
            time.sleep(1.5)
            m = segd.metrics()
            compare_with_consumer(c, "after consuming", segs, lines, customers,
                                  sizes_check.FIELDS, m)
            c.check("/v1/segments says its counts are exact", segs.get("exact") is True)
            check_lookups(c, segd, lines, ev, nparts, weird)
            check_page(c, segd, segs)
            # Restart: the state comes back from the snapshot, no new input;
            # the sizes are counted from it and equal the consumer's again.
            rc, _ = segd.term()
            c.check("segd exits 0 on SIGTERM", rc == 0, L.tail(segd.log()))
            segd2 = Segd("segd2", work, mc.bootstrap, sets, config=RULES)
            try:
                segd2.wait_http()
                wait_for("segd2 ready", lambda: segd2.http("/readyz")[0] == 200, 60, 0.5)
                segs2 = get_json(segd2.port, "/v1/segments")
                c.check("restart: the state was restored from snapshots",
                        "loaded snapshot" in segd2.log(), L.tail(segd2.log()))
                compare_with_consumer(c, "after a restart from snapshots", segs2, lines,
                                      customers, ("customers",))
            finally:
                segd2.kill()
        finally:
            segd.kill()


@case
def reload(c, work):
    nparts = 3
    ev = L.subset(L.cdnow_events(work), 20, 2)
    max_ts = max(L.ts_of(l) for l in ev)
    ev = ev + L.sentinels(nparts, max_ts)
    group = "reload"
    cfg1 = os.path.join(work, "rules1.yaml")
    cfg2 = os.path.join(work, "rules2.yaml")
    with open(cfg1, "w") as f:
        f.write("segments:\n  rules:\n"
                "    spend_band:\n      where: has(recency)\n"
                "      value: tier(sum(purchase, 365d), [50, 100, 200])\n"
                "    buyer:\n      when: count(purchase, 90d) >= 1\n")
    with open(cfg2, "w") as f:
        f.write("segments:\n  rules:\n"
                "    buyer:\n      when: count(purchase, 90d) >= 1\n"
                "    frequent:\n      when: count(purchase, 365d) >= 3\n")
    global RULES
    saved = RULES
    with cluster(work, group, nparts) as mc:
        L.produce(mc.bootstrap, "events", ev)
        sets = base_sets(group, **{"metrics.lifecycle": "true"})
        cfg = os.path.join(work, "segd.yaml")
        shutil.copy(cfg1, cfg)
        segd = Segd("segd", work, mc.bootstrap, sets, config=cfg)
        try:
            L.wait_committed(mc.bootstrap, "events", group, 120, [segd])
            wait_for("inflight 0", lambda: segd.metrics().get("segd_inflight_records") == 0, 30)
            segs = get_json(segd.port, "/v1/segments")
            c.check("before: spend_band and buyer are listed",
                    {"spend_band", "buyer"} <= {d["dimension"] for d in segs["dimensions"]})
            shutil.copy(cfg2, cfg)
            req = urllib.request.Request(f"http://127.0.0.1:{segd.port}/-/reload", method="POST")
            with urllib.request.urlopen(req, timeout=60) as r:
                c.check("POST /-/reload: 200", r.status == 200)
            state_ = {}

            def settled():
                a = output_lines(mc.bootstrap)
                s = get_json(segd.port, "/v1/segments")
                b = output_lines(mc.bootstrap)
                state_.update(lines=b, segs=s)
                return len(a) == len(b) and segd.metrics().get("segd_inflight_records") == 0
            wait_for("output after the reload", settled, 60, 1.0)
            lines, segs = state_["lines"], state_["segs"]
            dims = {d["dimension"] for d in segs["dimensions"]}
            c.check("after: spend_band is gone, frequent is listed",
                    "spend_band" not in dims and "frequent" in dims, sorted(dims))
            nulls = sum(1 for l in lines if json.loads(l)["dimension"] == "spend_band"
                        and json.loads(l)["to"] is None)
            c.check(f"the reload published spend_band -> null ({nulls} transitions)", nulls > 0)
            RULES = cfg2
            customers = {json.loads(l)["customer_id"] for l in lines}
            compare_with_consumer(c, "after the reload", segs, lines, customers,
                                  ("customers", "entries_total", "exits_total"))
        finally:
            RULES = saved
            segd.kill()


def token_file(work, name, token, mode):
    p = os.path.join(work, name)
    with open(p, "w") as f:
        f.write(token + "\n")
    os.chmod(p, mode)
    return p


@case
def auth(c, work):
    token = "s3cr3t-token-0123456789abcdef"
    good = token_file(work, "token", token, 0o600)
    loose = token_file(work, "token-loose", token, 0o644)
    cfgp = os.path.join(L.SEG_SRC, "config", "segd.yaml")

    def check_config(*sets):
        args = [L.SEGD, "check-config", cfgp]
        for s in sets:
            args += ["--set", s]
        r = subprocess.run(args, capture_output=True, timeout=30)
        return r.returncode, r.stderr.decode() + r.stdout.decode()

    rc, out = check_config("metrics.listen=:9464")
    c.check("check-config refuses metrics.listen beyond loopback without metrics.token_file "
            "(exit 3, names the keys)", rc == 3 and "metrics.token_file" in out, (rc, out))
    rc, out = check_config("metrics.listen=:9464", "metrics.api=false")
    c.check("... and accepts it with metrics.api: false", rc == 0, (rc, out))
    rc, out = check_config("metrics.listen=:9464", f"metrics.token_file={good}")
    c.check("... and with a token file (no warning when it is 0600)",
            rc == 0 and "warning" not in out, (rc, out))
    rc, out = check_config("metrics.listen=:9464", f"metrics.token_file={loose}")
    c.check("a world-readable token file draws a warning", rc == 0 and "warning" in out
            and "readable by every user" in out, (rc, out))
    short = token_file(work, "token-short", "abc", 0o600)
    rc, out = check_config("metrics.listen=:9464", f"metrics.token_file={short}")
    c.check("a token shorter than 16 characters is refused", rc == 3, (rc, out))

    nparts = 3
    ev = L.subset(L.cdnow_events(work), 50, 4)
    group = "auth"
    with cluster(work, group, nparts) as mc:
        L.produce(mc.bootstrap, "events", ev)
        # No token beyond loopback: segd refuses to start (exit 3).
        port = L.free_port()
        bad = Segd("bad", work, mc.bootstrap, base_sets(group) + [f"metrics.listen=:{port}"],
                   metrics=False)
        rc = bad.exit_code(30)
        bad.kill()
        c.check("segd run refuses metrics.listen beyond loopback without a token (exit 3)",
                rc == 3, (rc, L.tail(bad.log(), 3)))
        # The real one: all interfaces (":port"), a token; reached on loopback.
        port = L.free_port()
        args = base_sets(group) + [f"metrics.token_file={loose}"]
        segd = SegdAt("segd", work, mc.bootstrap, args, f":{port}")
        try:
            segd.wait_http()
            L.wait_committed(mc.bootstrap, "events", group, 120, [segd])
            c.check("the world-readable token file is warned about in the log",
                    "readable by every user" in segd.log(), L.tail(segd.log(), 5))
            cid = L.cid_of(ev[0])
            path = "/v1/customers/" + urllib.parse.quote(cid)
            bearer = {"Authorization": f"Bearer {token}"}
            wait_for("the customer to be held",
                     lambda: get(port, path, bearer)[0] == 200, 30, 0.5)
            for desc, hdr in (("no token", {}),
                              ("a wrong token", {"Authorization": "Bearer " + token[:-1] + "X"}),
                              ("a token prefix", {"Authorization": "Bearer " + token[:10]}),
                              ("the token with a suffix", {"Authorization": f"Bearer {token}x"}),
                              ("Basic with a wrong password", {"Authorization": "Basic " +
                               base64.b64encode(b"u:nope").decode()})):
                for p in (path, "/v1/segments", "/"):
                    st, body, h = get(port, p, hdr)
                    c.check(f"{desc}: GET {p} is 401 with no data", st == 401 and cid not in body
                            and "customers" not in body and "<html" not in body.lower()
                            and h.get("WWW-Authenticate"), (st, body[:200]))
            st, body, _ = get(port, path, bearer)
            c.check("the bearer token gets the customer", st == 200 and
                    json.loads(body)["customer_id"] == cid, (st, body[:200]))
            basic = {"Authorization": "Basic " + base64.b64encode(f"ops:{token}".encode()).decode()}
            st, body, _ = get(port, "/", basic)
            c.check("HTTP Basic with the token as password gets the page (browsers)",
                    st == 200 and "<html" in body, st)
            st, _, h = get(port, "/")
            c.check("the page asks a browser for Basic credentials",
                    st == 401 and h.get("WWW-Authenticate", "").startswith("Basic"),
                    (st, h.get("WWW-Authenticate")))
            for p in ("/metrics", "/healthz", "/readyz"):
                st, _, _ = get(port, p)
                c.check(f"GET {p} needs no token", st in (200, 503) and st != 401, st)
        finally:
            segd.kill()
        # metrics.api: false
        segd = Segd("noapi", work, mc.bootstrap, base_sets(group, **{"metrics.api": "false"}))
        try:
            segd.wait_http()
            for p in ("/v1/segments", "/v1/customers/x", "/"):
                st, _, _ = get(segd.port, p)
                c.check(f"metrics.api: false: GET {p} is 404", st == 404, st)
            st, _, _ = get(segd.port, "/metrics")
            c.check("metrics.api: false: /metrics still answers", st == 200, st)
        finally:
            segd.kill()


class SegdAt(Segd):
    """Segd with metrics.listen set to `listen` (e.g. ":PORT", all
    interfaces), reached on 127.0.0.1:PORT."""

    def __init__(self, name, work, bootstrap, sets, listen):
        super().__init__(name, work, bootstrap, list(sets) + [f"metrics.listen={listen}"],
                         metrics=False)
        self.port = int(listen.rsplit(":", 1)[1])


def main(argv):
    return L.run_suite(C, CASES, argv, "segd-observe.")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
