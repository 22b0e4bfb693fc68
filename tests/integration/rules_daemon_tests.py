#!/usr/bin/python3
"""rules_daemon_tests: user rules in `segd run`, and changing them live.

Why: a rule set is configuration a marketing team edits while segd runs.
The promises (docs/rules.md, "Changing rules on a running segd"): the
daemon publishes exactly what `segd replay` prints for the same rules; a
valid change takes effect at one point of each partition's input, with
every customer re-evaluated (cause "rule"); an invalid file, a key that
cannot change live, or rules that need history segd did not keep change
nothing and say why; and a crash at any moment around a change leaves no
id with two different contents. Each case runs segd as its own process
against tests/harness/seg_mock_cluster, produces with kafka-python and
reads back with kcat.

Data: the first CDNOW customers (by customer id), with contacts and
profile attributes added by tests/reference/augment_events.py, in time
order, plus one sentinel per input partition at the last instant (so
every partition's time reaches the end, as replay's does).

Cases (run all, or name some):
  equal_replay   the rule set through the daemon equals `segd replay`
  reload         SIGHUP to a changed rule set mid-stream: the re-evaluation
                 is published with cause "rule", the final values equal
                 `segd replay` with the new rules, no id with two contents
  refused        an invalid file, a fixed key, and rules needing history
                 segd did not keep: refused with their reason, counted,
                 segd goes on; POST /-/reload only with metrics.lifecycle
  crash          SIGKILL right before and right after the switch
                 (SEGD_FAULT) and at random moments around a reload;
                 restarts under the new file: no id with two contents,
                 final values equal replay's
  restart        a restart under a different file re-evaluates as a reload

Env: SEGD, SEG_SRC, SEG_BUILD, SEG_SHARED (as ctest sets them);
RULES_DAEMON_SEED repeats the random kill points.
"""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon_lib as L  # noqa: E402
from daemon_lib import Segd, TestFailure, start_cluster, wait_for  # noqa: E402

SRC = os.environ.get("SEG_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
CUSTOMERS = 1500                 # of CDNOW: ~4,500 purchases, with contacts ~7,000 events
NPARTS = 4

RULES_A = """
segments:
  retain:
    contact.visit: 400d
    attrs: [account_type]
  rules:
    big_spender_30d:
      when: sum(purchase, 30d) >= 100
    intent:
      cases:
        - A: count(contact.inquiry, 30d) >= 1 and count(contact.visit, 30d) >= 1
        - B: count(contact.inquiry, 90d) >= 1 or count(contact.call, 30d) >= 1
        - C: count(contact, 90d) >= 1
      else: E
    spend_band:
      where: has(recency)
      value: ("S" + tier(sum(purchase, 365d), [50, 200]))
    gone_quiet:
      when: recency >= 120d
"""

# big_spender's threshold changes; intent gains a label; spend_band goes;
# visits counted over 90d (kept 400d); a type from an attribute kept by
# retain; a rule on the built-ins.
RULES_B = """
segments:
  retain:
    contact.visit: 400d
    attrs: [account_type]
  rules:
    big_spender_30d:
      when: sum(purchase, 30d) >= 60
    intent:
      cases:
        - A: count(contact.inquiry, 30d) >= 1 and count(contact.visit, 30d) >= 1
        - A+: count(contact.visit, 90d) >= 3
        - B: count(contact.inquiry, 90d) >= 1 or count(contact.call, 30d) >= 1
        - C: count(contact, 90d) >= 1
      else: E
    gone_quiet:
      when: recency >= 120d
    frequent_visitor:
      when: count(contact.visit, 90d) >= 2
    business:
      when: attr("account_type") == "business"
    vip_slipping:
      when: value == "A" and lifecycle in ["at_risk", "silent"]
"""

# reads since(refund), which A did not keep
RULES_NEEDS_HISTORY = RULES_A + """    refund_lately:
      when: since(refund) < 30d
"""


C = L.Checks()
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


# ---- data --------------------------------------------------------------------------

_DATA = {}


def events(work):
    """The case's input (bytes lines, time order) and its last instant."""
    if "lines" in _DATA:
        return _DATA["lines"], _DATA["end"]
    raw = L.cdnow_events(work)
    keep = sorted({L.cid_of(l) for l in raw})[:CUSTOMERS]
    keep = set(keep)
    sub = [l for l in raw if L.cid_of(l) in keep]
    r = subprocess.run([sys.executable, os.path.join(SRC, "tests/reference/augment_events.py")],
                       input=b"\n".join(sub) + b"\n", capture_output=True, timeout=120)
    if r.returncode != 0:
        raise TestFailure(f"augment_events failed: {r.stderr.decode()[-400:]}")
    lines = [l for l in r.stdout.split(b"\n") if l]
    lines.sort(key=L.ts_of)            # stable: same-second events keep their order
    end = max(L.ts_of(l) for l in lines)
    lines += L.sentinels(NPARTS, end, "zz-rules-sentinel")
    _DATA.update(lines=lines, end=end)
    return lines, end


def write(work, name, text):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def replace(path, text):
    """Replaces a config file the way an editor or a deploy tool does."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def base_sets(group, **over):
    s = {"kafka.group_id": group, "shutdown_timeout": "20s",
         "kafka.consumer.session.timeout.ms": "3000",
         "kafka.consumer.heartbeat.interval.ms": "500",
         "kafka.consumer.auto.commit.interval.ms": "500",
         "time.idle_timeout": "3s", "checkpoint.interval": "2s",
         "kafka.producer.compression.type": "none"}
    s.update(over)
    return [f"{k}={v}" for k, v in s.items()]


def cluster(work, *groups):
    topics = [f"events:{NPARTS}", "transitions:16", "events-dlq:2", "churn-alerts:2"] + [
              f"{g}-changelog:{NPARTS}" for g in groups]
    with open(os.path.join(work, "mc.err"), "ab") as err:
        return start_cluster(topics, stderr=err)


# ---- checks on the output ------------------------------------------------------------

def published(bootstrap):
    """(by id, conflicts, bad keys) of the output topic."""
    return L.transitions(L.kcat_dump(bootstrap, "transitions"))


def final_values(lines, end):
    """The last value per (customer, dimension) at <= end, from transition
    lines (bytes), ordered by (customer, seq)."""
    last = {}
    for v in sorted((json.loads(l) for l in lines), key=lambda t: (t["customer_id"], t["seq"])):
        if v["at"] <= end:
            last[(v["customer_id"], v["dimension"])] = v["to"]
    return last


def memberships(rules_text):
    """Names of the `when:` rules: a membership starts at "out" without a
    transition, so no transition and a last one to "out" are the same state."""
    return set(re.findall(r"^    ([a-z][a-z0-9_]*):\s*\n\s+when:", rules_text, re.M)) | {
        "dissatisfied"}


def same_final(c, desc, got_lines, want_lines, end, dims, outs=()):
    got, want = final_values(got_lines, end), final_values(want_lines, end)
    got = {k: v for k, v in got.items() if k[1] in dims and v is not None and
           not (k[1] in outs and v == "out")}
    want = {k: v for k, v in want.items() if k[1] in dims and v is not None and
            not (k[1] in outs and v == "out")}
    bad = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
    c.check(desc, not bad, f"{len(bad)} of {len(want)} differ, e.g. " +
            "; ".join(f"{k}: daemon {got.get(k)!r}, replay {want.get(k)!r}" for k in bad[:4]))


def wait_complete(c, bootstrap, segd, group, timeout=120):
    L.wait_committed(bootstrap, "events", group, timeout, watch=[segd])


def metric(segd, name, **labels):
    return segd.metrics().get(name, **labels) or 0


def dims_of(rules_text):
    names = re.findall(r"^    ([a-z][a-z0-9_]*):\s*$", rules_text, re.M)
    return set(names) | {"lifecycle", "value", "rfm", "dissatisfied"}


# ---- cases -------------------------------------------------------------------------------

@case
def equal_replay(c, work):
    lines, end = events(work)
    cfg = write(work, "a.yaml", RULES_A)
    want = set(L.replay(work, "replay-a", lines, config=cfg))
    with cluster(work, "eq") as mc:
        L.produce(mc.bootstrap, "events", lines)
        segd = Segd("segd", work, mc.bootstrap, base_sets("eq"), config=cfg)
        try:
            wait_complete(c, mc.bootstrap, segd, "eq")
            state = {}

            def complete():
                by_id, conflicts, badkeys = published(mc.bootstrap)
                got = {v for v in by_id.values() if L.at_of(v) <= end}
                state.update(got=got, conflicts=conflicts)
                return len(got) >= len(want)
            try:
                wait_for("every transition published", complete, 60, 1.0)
            except TestFailure:
                pass
            got = state.get("got", set())
            n_rules = sum(1 for v in want if json.loads(v)["dimension"] in dims_of(RULES_A) -
                          {"lifecycle", "value", "rfm", "dissatisfied"})
            c.check(f"output equals segd replay with the rules ({len(want)} lines, {n_rules} "
                    "of user rules)", got == want and n_rules > 500, L.diff_summary(want, got))
            c.check("no id with two contents", not state.get("conflicts"),
                    str(state.get("conflicts", [])[:2]))
            m = segd.metrics()
            c.check("segd_transitions_total counts rule dimensions",
                    (m.get("segd_transitions_total", dimension="intent", to="C") or 0) > 0)
        finally:
            segd.kill()


def run_with_reload(c, work, group, new_text, *, fault=None, kills=0, rng=None):
    """Starts segd on A, feeds half the input, switches the file to
    new_text and reloads (SIGHUP), optionally with a SEGD_FAULT or random
    SIGKILLs around it (each followed by a restart under the new file),
    feeds the rest, and returns (output records, segd's logs)."""
    lines, end = events(work)
    half = len(lines) // 2
    cfg = write(work, f"{group}.yaml", RULES_A)
    sets = base_sets(group, **{"state.dir": os.path.join(work, "state")})
    env_fault = {"SEGD_FAULT": fault} if fault else {}
    logs = []
    with cluster(work, group) as mc:
        L.produce(mc.bootstrap, "events", lines[:half])
        old_env = dict(os.environ)
        os.environ.update(env_fault)
        try:
            segd = Segd("segd-1", work, mc.bootstrap, sets, config=cfg)
        finally:
            os.environ.clear()
            os.environ.update(old_env)
        try:
            wait_complete(c, mc.bootstrap, segd, group)
            # Let a checkpoint cover the first half, then change the file.
            time.sleep(2.5)
            replace(cfg, new_text)
            segd.signal(signal.SIGHUP)
            if fault:
                rc = segd.exit_code(60)
                c.check(f"SEGD_FAULT={fault}: segd killed itself at that point",
                        rc == -signal.SIGKILL, f"exit {rc}; log:\n{L.tail(segd.log())}")
            else:
                segd.wait_log(r"configuration reloaded", 60)
                for k in range(kills):
                    time.sleep(rng.uniform(0.0, 3.0))
                    segd.signal(signal.SIGKILL)
                    segd.exit_code(20)
                    logs.append(segd.log())
                    segd = Segd(f"segd-k{k}", work, mc.bootstrap, sets, config=cfg)
                    segd.wait_log(r"assigned \d+ partition", 60)
            if not segd.alive():
                logs.append(segd.log())
                segd = Segd("segd-2", work, mc.bootstrap, sets, config=cfg)
            L.produce(mc.bootstrap, "events", lines[half:])
            wait_complete(c, mc.bootstrap, segd, group)
            # The watermark's last deadlines, then a clean stop.
            time.sleep(5)
            rc, _ = segd.term(40)
            c.check("segd exits 0 on SIGTERM at the end", rc == 0, L.tail(segd.log()))
            logs.append(segd.log())
            recs = L.kcat_dump(mc.bootstrap, "transitions")
            L.write_lines(os.path.join(work, f"{group}-published.ndjson"), [r[-1] for r in recs])
            return recs, logs, segd
        finally:
            segd.kill()


@case
def reload(c, work):
    lines, end = events(work)
    want_b = L.replay(work, "replay-b", lines, config=write(work, "b-replay.yaml", RULES_B))
    recs, logs, segd = run_with_reload(c, work, "rl", RULES_B)
    by_id, conflicts, _ = L.transitions(recs)
    vals = list(by_id.values())
    rule_caused = [json.loads(v) for v in vals if json.loads(v)["cause"] == "rule"]
    c.check("the reload published the re-evaluation with cause \"rule\"", len(rule_caused) > 50,
            len(rule_caused))
    dims = {t["dimension"] for t in rule_caused}
    c.check("... for changed, added and removed rules",
            {"big_spender_30d", "frequent_visitor", "spend_band"} <= dims, sorted(dims))
    removed = [t for t in rule_caused if t["dimension"] == "spend_band"]
    c.check("a removed rule publishes to: null", removed and all(t["to"] is None for t in removed),
            removed[:2])
    added = [t for t in rule_caused if t["dimension"] == "frequent_visitor"]
    c.check("a new membership starts at out", added and all(t["from"] == "out" for t in added),
            added[:2])
    c.check("no id carries two contents", not conflicts, conflicts[:2])
    same_final(c, "final values equal segd replay with the new rules", vals, want_b, end,
               dims_of(RULES_B), memberships(RULES_B))
    c.check("the log says how many customers were re-evaluated",
            any(re.search(r"SIGHUP: configuration reloaded: 6 user rule\(s\), \d+ customers "
                          r"re-evaluated", l) for l in logs), L.tail(logs[-1]))


@case
def refused(c, work):
    lines, end = events(work)
    cfg = write(work, "r.yaml", RULES_A)
    with cluster(work, "rf", "rl") as mc:
        L.produce(mc.bootstrap, "events", lines)
        segd = Segd("segd", work, mc.bootstrap, base_sets("rf"), config=cfg)
        try:
            wait_complete(c, mc.bootstrap, segd, "rf")
            before = len(published(mc.bootstrap)[0])

            def reload_with(text, pattern, n):
                replace(cfg, text)
                segd.signal(signal.SIGHUP)
                m = segd.wait_log(pattern, 30)
                L.wait_for("the error counted",
                           lambda: metric(segd, "segd_config_reloads_total", result="error") >= n,
                           10)
                return m

            broken = RULES_A.replace("sum(purchase, 30d) >= 100", "sum(purchase 30d) >= 100")
            m = reload_with(broken, r"configuration not reloaded: .*r\.yaml:8:\d+: rule "
                                    r"'big_spender_30d': .*", 1)
            c.check("an invalid file is refused with file:line:col", m is not None,
                    m.group(0) if m else "")
            # (not a key the test sets with --set, which override the file)
            m = reload_with(RULES_A + "kafka:\n  output_topic: other\n",
                            r"configuration not reloaded: kafka\.output_topic cannot change "
                            r"in a reload.*restart segd", 2)
            c.check("a key that cannot change live is refused, naming it", m is not None)
            m = reload_with(RULES_NEEDS_HISTORY,
                            r"configuration not reloaded: events\[\d+\]: rule 'refund_lately' "
                            r"reads since\(refund\), but segd has not kept refund.*rules\.md", 3)
            c.check("rules that need history segd did not keep are refused, naming the rule, "
                    "the selector and how far back segd holds it", m is not None)
            c.check("segd goes on after refused reloads", segd.alive() and
                    segd.http("/readyz")[0] == 200, L.tail(segd.log()))
            c.check("nothing was published by the refused reloads",
                    len(published(mc.bootstrap)[0]) == before)
            st, body, _ = L.http_post(segd.port, "/-/reload")
            c.check("POST /-/reload is refused without metrics.lifecycle (405)", st == 405,
                    (st, body))
        finally:
            segd.kill()
        replace(cfg, RULES_A)
        # A group of its own, so that it reads the input again.
        segd = Segd("segd-l", work, mc.bootstrap, base_sets("rl", **{"metrics.lifecycle": "true"}),
                    config=cfg)
        try:
            segd.wait_log(r"POST /-/reload enabled", 30)
            wait_complete(c, mc.bootstrap, segd, "rl")
            replace(cfg, RULES_B)
            st, body, _ = L.http_post(segd.port, "/-/reload", timeout=60)
            c.check("with metrics.lifecycle: POST /-/reload reloads (200)", st == 200 and
                    "reloaded" in body, (st, body))
            # (B keeps purchases for 30 days only, so A's spend_band would be
            # refused first: add the refund rule to B)
            replace(cfg, RULES_B + RULES_NEEDS_HISTORY[len(RULES_A):])
            st, body, _ = L.http_post(segd.port, "/-/reload", timeout=60)
            c.check("... and a refused reload answers 400 with the reason",
                    st == 400 and "since(refund)" in body, (st, body))
            c.check("segd_config_reloads_total{result=ok} counts the reload",
                    metric(segd, "segd_config_reloads_total", result="ok") == 1)
        finally:
            segd.kill()


def crash_run(c, work, name, **kw):
    lines, end = events(work)
    want_b = L.replay(work, f"replay-{name}", lines, config=write(work, f"{name}-b.yaml", RULES_B))
    recs, logs, _ = run_with_reload(c, work, name, RULES_B, **kw)
    by_id, conflicts, _ = L.transitions(recs)
    c.check("no id carries two different contents", not conflicts, conflicts[:2])
    same_final(c, "final values equal segd replay with the new rules", list(by_id.values()),
               want_b, end, dims_of(RULES_B), memberships(RULES_B))
    return logs


@case
def crash(c, work):
    seed = int(os.environ.get("RULES_DAEMON_SEED") or random.randrange(1 << 20))
    print(f"       seed {seed} (RULES_DAEMON_SEED)", flush=True)
    rng = random.Random(seed)
    for fault in ("reload-before-switch", "reload-after-switch"):
        C.case = f"crash {fault}"
        os.makedirs(os.path.join(work, fault))
        logs = crash_run(c, os.path.join(work, fault), fault, fault=fault)
        c.check("the restart under the new file re-evaluated as the reload would",
                any("re-evaluated under the configured ones" in l for l in logs),
                L.tail(logs[-1]))
    C.case = "crash random"
    os.makedirs(os.path.join(work, "random"))
    crash_run(c, os.path.join(work, "random"), "random", kills=3, rng=rng)


@case
def restart(c, work):
    lines, end = events(work)
    half = len(lines) // 2
    cfg = write(work, "s.yaml", RULES_A)
    want_b = L.replay(work, "replay-s", lines, config=write(work, "s-b.yaml", RULES_B))
    sets = base_sets("rs", **{"state.dir": os.path.join(work, "state")})
    with cluster(work, "rs") as mc:
        L.produce(mc.bootstrap, "events", lines[:half])
        segd = Segd("segd-1", work, mc.bootstrap, sets, config=cfg)
        try:
            wait_complete(c, mc.bootstrap, segd, "rs")
            rc, _ = segd.term(40)
            c.check("segd exits 0 on SIGTERM", rc == 0)
            replace(cfg, RULES_B)
            segd = Segd("segd-2", work, mc.bootstrap, sets, config=cfg)
            m = segd.wait_log(r"saved under other rules or settings: \d+ customers re-evaluated",
                              60)
            c.check("a restart under a different file re-evaluates every customer", m is not None)
            L.produce(mc.bootstrap, "events", lines[half:])
            wait_complete(c, mc.bootstrap, segd, "rs")
            time.sleep(5)
            rc, _ = segd.term(40)
            recs = L.kcat_dump(mc.bootstrap, "transitions")
        finally:
            segd.kill()
    by_id, conflicts, _ = L.transitions(recs)
    c.check("no id carries two contents", not conflicts, conflicts[:2])
    same_final(c, "final values equal segd replay with the new rules", list(by_id.values()),
               want_b, end, dims_of(RULES_B), memberships(RULES_B))
    rule_caused = [v for v in by_id.values() if json.loads(v)["cause"] == "rule"]
    c.check("the re-evaluation is published with cause \"rule\"", len(rule_caused) > 50)


def main(argv):
    return L.run_suite(C, CASES, argv, "segd-rules-daemon.")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
