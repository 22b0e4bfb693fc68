#!/usr/bin/env bash
# test_mock_cluster.sh: proves the Kafka test harness before segd's daemon
# tests rely on it.
#
# Why: every daemon integration test trusts that tests/harness gives it a
# real Kafka-protocol cluster that independent clients agree on, and that
# its fault injection does what it says. If the harness lied (a broker_down
# that changes nothing, a push_errors nobody hits), a daemon test could pass
# for the wrong reason. So here two clients that share no code, kafka-python
# (pure Python) and kcat (librdkafka), write and read the same data through
# seg_mock_cluster, and each fault is shown to have an effect a client sees:
#   - 10,000 NDJSON events keyed by customer: byte-exact round trip through
#     both clients; a customer's events on one partition (the one Java's
#     murmur2 picks), in order; a consumer group commits what it read;
#   - MessagePack values round trip;
#   - a partition leader's broker goes down (its port refuses connections),
#     its partitions move, producing and consuming go on; it comes back and
#     takes a partition again;
#   - injected Produce errors (cluster-wide and per broker) are hit and
#     retried through with no loss and no duplicate; an injected
#     OffsetCommit error is retried through;
#   - the harness exits on quit, SIGTERM and its parent's death, leaving no
#     process and no listening port.
# Runs in well under 60 s, on 127.0.0.1 only; every wait is bounded.
set -uo pipefail

SRC=${SEG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
KT=$SRC/tests/harness/kafkatool.py
WORK=$(mktemp -d "${TMPDIR:-/tmp}/seg_mock_cluster_test.XXXXXX")
export MC_TIMEOUT=15
# shellcheck source=../harness/mock_cluster.sh
. "$SRC/tests/harness/mock_cluster.sh"

BG_PIDS=()
cleanup() {
  local p
  for p in "${BG_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  mc_stop >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
not_ok() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && echo "       $2"; }
check() {  # check NAME SHELL-EXPR: passes when the expression (eval'd here) is true
  if eval "$2" >"$WORK/check.out" 2>&1; then ok "$1"; else not_ok "$1" "$(tail -5 "$WORK/check.out")"; fi
}
kt() { timeout 60 "$PY" "$KT" "$@"; }
jget() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }
# A process that exited but was not reaped (init here may not reap) is gone.
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [[ $st != Z* ]]; }
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

for tool in kcat "$PY"; do
  command -v "$tool" >/dev/null || { echo "FAIL - $tool not installed (scripts/install-deps.sh)"; echo "0 passed, 1 failed"; exit 1; }
done
HAVE_MSGPACK=1
"$PY" -c 'import msgpack' 2>/dev/null || HAVE_MSGPACK=0

# ---- checker: verifies a dump of records against the events sent --------
# Input lines: partition<TAB>offset<TAB>key<TAB>headers<TAB>value, from
# kcat's -f or from kafkatool --with-meta --with-headers (converted).
cat >"$WORK/verify.py" <<'EOF'
import json, sys
from kafka.partitioner.default import DefaultPartitioner

def load_dump(path):
    recs = []
    for line in open(path, "rb"):
        p, o, k, h, v = line.rstrip(b"\n").split(b"\t", 4)
        recs.append((int(p), int(o), k.decode(), h.decode(), v))
    return recs

def main():
    cmd = sys.argv[1]
    if cmd == "kt2dump":  # kafkatool --with-meta --with-headers JSON -> dump lines
        for line in open(sys.argv[2]):
            d = json.loads(line)
            h = ",".join(f"{k}={v}" for k, v in d["headers"].items())
            sys.stdout.write(f"{d['partition']}\t{d['offset']}\t{d['key'] or ''}\t{h}\t{d['value']}\n")
        return 0
    if cmd == "events":  # verify DUMP EVENTS PARTITIONS [HEADER=VALUE]
        dump, events, nparts = sys.argv[2], sys.argv[3], int(sys.argv[4])
        want_header = sys.argv[5] if len(sys.argv) > 5 else None
        recs = load_dump(dump)
        sent = [l.rstrip(b"\n") for l in open(events, "rb")]
        errs = []
        if len(recs) != len(sent):
            errs.append(f"{len(recs)} records, {len(sent)} sent")
        if sorted(r[4] for r in recs) != sorted(sent):
            errs.append("values differ from the lines sent (byte for byte)")
        if len({(r[0], r[1]) for r in recs}) != len(recs):
            errs.append("duplicate (partition, offset)")
        part_of, last_seq = {}, {}
        parts = list(range(nparts))
        for p, o, k, h, v in sorted(recs, key=lambda r: (r[0], r[1])):
            ev = json.loads(v)
            if k != ev["customer_id"]:
                errs.append(f"key {k!r} != customer_id {ev['customer_id']!r}")
            part_of.setdefault(k, set()).add(p)
            # Java's and kafka-python's partitioner: murmur2(key) % partitions
            exp = DefaultPartitioner()(k.encode(), parts, parts)
            if p != exp:
                errs.append(f"key {k} on partition {p}, murmur2 says {exp}")
            if ev["seq"] <= last_seq.get(k, -1):
                errs.append(f"key {k}: seq {ev['seq']} after {last_seq[k]} (out of order)")
            last_seq[k] = ev["seq"]
            if want_header and want_header not in h.split(","):
                errs.append(f"header {want_header} missing: {h!r}")
        split = [k for k, ps in part_of.items() if len(ps) > 1]
        if split:
            errs.append(f"{len(split)} keys on several partitions, e.g. {split[0]}")
        used = {p for ps in part_of.values() for p in ps}
        if len(used) != nparts:
            errs.append(f"only partitions {sorted(used)} used")
        for e in errs[:10]:
            print(e)
        return 1 if errs else 0
    if cmd == "same":  # two dumps hold the same (partition, offset, value) set
        a = {(r[0], r[1], r[4]) for r in load_dump(sys.argv[2])}
        b = {(r[0], r[1], r[4]) for r in load_dump(sys.argv[3])}
        if a != b:
            print(f"{len(a - b)} only in the first, {len(b - a)} only in the second")
            return 1
        return 0
    if cmd == "msgpack":  # kcat '%S:%s' dump of msgpack values vs the JSON lines sent
        import msgpack
        data, values, i = open(sys.argv[2], "rb").read(), [], 0
        while i < len(data):  # binary values: framed by their size, not by newlines
            colon = data.index(b":", i)
            size = int(data[i:colon])
            values.append(data[colon + 1:colon + 1 + size])
            i = colon + 1 + size
        sent = sorted(json.dumps(json.loads(l), sort_keys=True) for l in open(sys.argv[3]))
        got = []
        for v in values:
            if v[:1] == b"{":
                print("a value is JSON, not MessagePack")
                return 1
            got.append(json.dumps(msgpack.unpackb(v, raw=False), sort_keys=True))
        if sorted(got) != sent:
            print(f"decoded {len(got)} values, {len(sent)} sent; contents differ")
            return 1
        return 0
    if cmd == "committed":  # offsets JSON: committed == end on every partition
        d = json.load(open(sys.argv[2]))
        bad = {p: (d["committed"].get(p), e) for p, e in d["end"].items() if d["committed"].get(p) != e}
        if bad:
            print(f"committed != end: {bad}")
            return 1
        return 0
    return 2

sys.exit(main())
EOF
verify() { "$PY" "$WORK/verify.py" "$@"; }
kcat_dump() {  # kcat_dump TOPIC OUT: every record of TOPIC via kcat (librdkafka)
  timeout 30 kcat -b "$MC_BOOTSTRAP" -C -t "$1" -o beginning -e -q \
    -f '%p\t%o\t%k\t%h\t%s\n' >"$2" 2>>"$WORK/kcat.err"
}
gen_events() {  # gen_events N FIRST_SEQ OUT: NDJSON events of 400 customers
  "$PY" - "$@" <<'EOF'
import json, random, sys
n, first, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(20240101 + first)
with open(out, "w") as f:
    for i in range(first, first + n):
        c = rng.randrange(400)
        ev = {"type": rng.choice(["purchase", "purchase", "refund", "contact"]),
              "customer_id": f"c{c:05d}", "ts": f"2024-01-01T00:00:{i % 60:02d}Z",
              "amount": round(rng.uniform(1, 200), 2), "event_id": f"e{i}", "seq": i}
        f.write(json.dumps(ev, separators=(",", ":")) + "\n")
EOF
}
end_total() { kt offsets --bootstrap "$MC_BOOTSTRAP" --topic "$1" | jget 'sum(d["end"].values())'; }

START=$(date +%s)

# ---- 1. the harness comes up and answers -----------------------------------
if ! mc_start "$WORK/mc" --brokers 3 --topic events:6 --max-lifetime 300; then
  echo "FAIL - seg_mock_cluster did not start"; echo "0 passed, 1 failed"; exit 1
fi
check "BOOTSTRAP lists 3 brokers on 127.0.0.1" \
  '[[ "$MC_BOOTSTRAP" =~ ^127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+$ ]]'
check "unknown command, bad broker id, unknown error name answer ERR" \
  '! mc_cmd "frobnicate" && ! mc_cmd "broker_down 7" && ! mc_cmd "push_errors Produce 2 NO_SUCH_ERROR"'
MD=$(mc_cmd "metadata events")
check "metadata: events has 6 partitions, each led by broker 1..3" \
  '[ "$(echo "$MD" | tr " " "\n" | grep -cE "^[0-5]:[1-3]$")" = 6 ]'


# ---- 2. 10,000 events: kafka-python in, kcat and a kafka-python group out --
gen_events 10000 0 "$WORK/ev1.ndjson"
kt produce --bootstrap "$MC_BOOTSTRAP" --topic events --headers content-type=application/json \
  --input "$WORK/ev1.ndjson" >"$WORK/p1.json" 2>"$WORK/p1.err"
check "kafka-python produced 10000 keyed events, none failed" \
  '[ "$(jget "(d[\"produced\"], d[\"failed\"], d[\"unkeyed\"])" <"$WORK/p1.json")" = "(10000, 0, 0)" ]'

kcat_dump events "$WORK/kcat1.tsv"
check "kcat reads all 10000 back: byte-exact values, murmur2 partition per customer, in order, headers" \
  'verify events "$WORK/kcat1.tsv" "$WORK/ev1.ndjson" 6 content-type=application/json'

kt consume --bootstrap "$MC_BOOTSTRAP" --topic events --group g1 --from-beginning \
  --until-end --with-meta --with-headers >"$WORK/g1.json" 2>"$WORK/g1.err"
verify kt2dump "$WORK/g1.json" >"$WORK/g1.tsv"
check "kafka-python group g1 reads the same 10000 records" \
  'verify events "$WORK/g1.tsv" "$WORK/ev1.ndjson" 6 content-type=application/json'
check "kcat and kafka-python agree on every (partition, offset, value)" \
  'verify same "$WORK/kcat1.tsv" "$WORK/g1.tsv"'
kt offsets --bootstrap "$MC_BOOTSTRAP" --topic events --group g1 >"$WORK/off1.json"
check "group g1 committed the end offset of every partition" 'verify committed "$WORK/off1.json"'

# ---- 3. MessagePack values, topic made by the harness's create_topic -------
if [ "$HAVE_MSGPACK" = 1 ]; then
  mc_cmd "create_topic events_mp 3 3" >/dev/null
  head -200 "$WORK/ev1.ndjson" >"$WORK/mp.ndjson"
  kt produce --bootstrap "$MC_BOOTSTRAP" --topic events_mp --format msgpack-bytes \
    --input "$WORK/mp.ndjson" >"$WORK/pmp.json" 2>&1
  timeout 30 kcat -b "$MC_BOOTSTRAP" -C -t events_mp -o beginning -e -q -f '%S:%s' >"$WORK/mp.bin" 2>>"$WORK/kcat.err"
  check "msgpack-bytes: 200 MessagePack values decode to the events sent" \
    'verify msgpack "$WORK/mp.bin" "$WORK/mp.ndjson"'
else
  echo "skip - msgpack-bytes round trip: python3-msgpack not installed"
fi
# Bad input (what the DLQ tests feed segd) is sent as it is, without a key.
mc_cmd "create_topic bad 1" >/dev/null
printf '%s\n' 'not json' '{"no_customer":1}' >"$WORK/bad.ndjson"
kt produce --bootstrap "$MC_BOOTSTRAP" --topic bad --input "$WORK/bad.ndjson" >"$WORK/pbad.json" 2>&1
timeout 30 kcat -b "$MC_BOOTSTRAP" -C -t bad -o beginning -e -q -f '%k|%s\n' >"$WORK/bad.out" 2>>"$WORK/kcat.err"
check "bad lines are sent byte for byte with no key and counted as unkeyed" \
  '[ "$(jget "(d[\"produced\"], d[\"unkeyed\"])" <"$WORK/pbad.json")" = "(2, 2)" ] &&
   diff <(sed "s/^/|/" "$WORK/bad.ndjson") "$WORK/bad.out"'
head -100 "$WORK/ev1.ndjson" | kt produce --bootstrap "$MC_BOOTSTRAP" --topic bad --rate 200 >"$WORK/prate.json" 2>&1
check "--rate 200 paces 100 records over about half a second" \
  '[ "$(jget "(d[\"produced\"], 0.45 <= d[\"seconds\"] < 5)" <"$WORK/prate.json")" = "(100, True)" ]'
kt create-topics --bootstrap "$MC_BOOTSTRAP" --topic x:1 >/dev/null 2>"$WORK/ct.err"
RC=$?
check "create-topics says the mock lacks CreateTopics (exit 3)" '[ "$RC" = 3 ] && grep -q CreateTopics "$WORK/ct.err"'

# ---- 4. leader's broker down, leadership moved, traffic goes on -----------
# Broker 1 is the first bootstrap address, the hardest one for clients to
# lose; make it partition 0's leader, then take it down.
mc_cmd "leader events 0 1" >/dev/null
L=$(mc_leader events 0)
PORT_L=$(echo "$MC_BOOTSTRAP" | cut -d, -f"$L" | cut -d: -f2)
NEW=$((L % 3 + 1))
mc_cmd "broker_down $L" >/dev/null
check "broker_down $L: its port refuses connections" '! port_open "$PORT_L"'
# A real cluster would elect new leaders; the mock needs telling.
for p in 0 1 2 3 4 5; do
  [ "$(mc_leader events "$p")" = "$L" ] && mc_cmd "leader events $p $NEW" >/dev/null
done
mc_cmd "coordinator g1 $NEW" >/dev/null
check "no partition is led by the down broker $L" \
  '! mc_cmd "metadata events" | tr " " "\n" | grep -q ":$L\$"'
gen_events 1000 10000 "$WORK/ev2.ndjson"
kt produce --bootstrap "$MC_BOOTSTRAP" --topic events --input "$WORK/ev2.ndjson" \
  --timeout 30 >"$WORK/p2.json" 2>&1
check "with broker $L down, kafka-python produces 1000 more, none failed" \
  '[ "$(jget "(d[\"produced\"], d[\"failed\"])" <"$WORK/p2.json")" = "(1000, 0)" ]'
kcat_dump events "$WORK/kcat2.tsv"
cat "$WORK/ev1.ndjson" "$WORK/ev2.ndjson" >"$WORK/ev12.ndjson"
check "kcat reads all 11000 with broker $L down" \
  'verify events "$WORK/kcat2.tsv" "$WORK/ev12.ndjson" 6'
kt consume --bootstrap "$MC_BOOTSTRAP" --topic events --group g1 --until-end \
  >"$WORK/g1b.txt" 2>"$WORK/g1b.err"
check "group g1 (coordinator moved to $NEW) resumes and reads exactly the 1000 new" \
  'diff <(sort "$WORK/g1b.txt") <(sort "$WORK/ev2.ndjson")'

mc_cmd "broker_up $L" >/dev/null
mc_cmd "leader events 0 $L" >/dev/null
check "broker_up $L: port accepts again and leads partition 0" \
  'port_open "$PORT_L" && [ "$(mc_leader events 0)" = "$L" ]'
gen_events 500 11000 "$WORK/ev3.ndjson"
kt produce --bootstrap "$MC_BOOTSTRAP" --topic events --input "$WORK/ev3.ndjson" \
  --timeout 30 >"$WORK/p3.json" 2>&1
kcat_dump events "$WORK/kcat3.tsv"
cat "$WORK/ev12.ndjson" "$WORK/ev3.ndjson" >"$WORK/ev123.ndjson"
check "after broker_up, 500 more produced and all 11500 read by kcat" \
  'verify events "$WORK/kcat3.tsv" "$WORK/ev123.ndjson" 6'
check "partition 0 got new records on its old leader $L" \
  'awk -F"\t" '"'"'$1 == 0 && $5 ~ /"seq":11[0-9][0-9][,}]/'"'"' "$WORK/kcat3.tsv" | grep -q .'

# ---- 5. injected errors are hit and retried through -----------------------
BEFORE=$(end_total events)
mc_cmd "push_errors Produce 3 NOT_LEADER_FOR_PARTITION" >/dev/null
gen_events 100 20000 "$WORK/ev4.ndjson"
kt produce --bootstrap "$MC_BOOTSTRAP" --topic events --input "$WORK/ev4.ndjson" \
  --timeout 30 >"$WORK/p4.json" 2>&1
check "push_errors Produce 3 NOT_LEADER_FOR_PARTITION: retried (>= 3), all 100 delivered" \
  '[ "$(jget "(d[\"produced\"], d[\"failed\"], d[\"retry_errors\"].get(\"NotLeaderForPartitionError\", 0) >= 3)" <"$WORK/p4.json")" = "(100, 0, True)" ]'
AFTER=$(end_total events)
check "the retries added exactly 100 records (no loss, no duplicate): $BEFORE -> $AFTER" \
  '[ $((AFTER - BEFORE)) = 100 ]'

B=$(mc_leader events 1)
mc_cmd "broker_push_errors $B Produce REQUEST_TIMED_OUT:50 REQUEST_TIMED_OUT" >/dev/null
check "error_count shows 2 errors waiting on broker $B" '[ "$(mc_cmd "error_count $B Produce")" = 2 ]'
gen_events 50 30000 "$WORK/ev5.ndjson"
kt produce --bootstrap "$MC_BOOTSTRAP" --topic events --partition 1 --input "$WORK/ev5.ndjson" \
  --timeout 30 >"$WORK/p5.json" 2>&1
check "broker $B's 2 REQUEST_TIMED_OUT were hit and retried; 50 delivered" \
  '[ "$(mc_cmd "error_count $B Produce")" = 0 ] && [ "$(jget "(d[\"produced\"], d[\"failed\"], d[\"retry_errors\"].get(\"RequestTimedOutError\", 0))" <"$WORK/p5.json")" = "(50, 0, 2)" ]'

# On g1's coordinator ($NEW, set above), so error_count can show they were hit.
mc_cmd "broker_push_errors $NEW OffsetCommit COORDINATOR_NOT_AVAILABLE REQUEST_TIMED_OUT" >/dev/null
kt consume --bootstrap "$MC_BOOTSTRAP" --topic events --group g1 --until-end \
  >"$WORK/g1c.txt" 2>"$WORK/g1c.err"
kt offsets --bootstrap "$MC_BOOTSTRAP" --topic events --group g1 >"$WORK/off2.json"
check "2 OffsetCommit errors hit and retried: g1 read the 650 new records, committed the end" \
  '[ "$(mc_cmd "error_count $NEW OffsetCommit")" = 0 ] && [ "$(wc -l <"$WORK/g1c.txt")" = 650 ] &&
   verify committed "$WORK/off2.json"'

# ---- 6. lifetime: quit, SIGTERM, parent death; nothing left behind --------
PORTS=$(echo "$MC_BOOTSTRAP" | tr ',' '\n' | cut -d: -f2)
PID=$MC_PID
mc_stop
RC=$?
ports_closed() { local p; for p in $PORTS; do ! port_open "$p" || return 1; done; }
check "quit: exit 0, process gone, no port listening" \
  '[ "$RC" = 0 ] && ! alive "$PID" && ports_closed'

BIN=$(MC_DIR=$WORK mc_binary)
# Commands through --control FIFO; stdin at EOF from the start must not stop it.
"$BIN" --brokers 1 --control "$WORK/term.ctl" </dev/null >"$WORK/term.out" 2>"$WORK/term.err" &
TPID=$!
BG_PIDS+=("$TPID")
for i in $(seq 600); do [ -p "$WORK/term.ctl" ] && grep -q BOOTSTRAP "$WORK/term.out" && break; sleep 0.05; done
echo ping >"$WORK/term.ctl"
for i in $(seq 600); do [ "$(wc -l <"$WORK/term.out")" -ge 2 ] && break; sleep 0.05; done
check "--control FIFO: commands answered on stdout after stdin EOF" \
  '[ "$(sed -n 2p "$WORK/term.out")" = "OK $(sed -n "s/^BOOTSTRAP //p" "$WORK/term.out")" ]'
kill -TERM "$TPID"
for i in $(seq 600); do alive "$TPID" || break; sleep 0.05; done
wait "$TPID"
RC=$?
check "SIGTERM: exit 0, FIFO removed" '[ "$RC" = 0 ] && [ ! -e "$WORK/term.ctl" ]'

# The harness's parent is a shell that gets SIGKILLed: no trap runs there.
bash -c '"$1" --brokers 1 --control "$2/orphan.ctl" </dev/null >"$2/orphan.out" 2>/dev/null &
         echo $! >"$2/orphan.pid"; wait' _ "$BIN" "$WORK" &
SH=$!
BG_PIDS+=("$SH")
for i in $(seq 600); do grep -q BOOTSTRAP "$WORK/orphan.out" 2>/dev/null && break; sleep 0.05; done
OPID=$(cat "$WORK/orphan.pid")
BG_PIDS+=("$OPID")
check "orphan test: the harness is up before its parent dies" 'alive "$OPID"'
{ kill -KILL "$SH"; wait "$SH"; } 2>/dev/null  # reaped here, quietly
for i in $(seq 600); do alive "$OPID" || break; sleep 0.05; done
check "parent SIGKILLed: the harness exits by itself (it polls its parent every 200 ms)" '! alive "$OPID"'

# ---- 7. the Python API: cluster.py + kafkatool as a module ---------------
"$PY" - "$SRC/tests/harness" >"$WORK/py.out" 2>&1 <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1])
from cluster import ClusterError, start_cluster
import kafkatool

mc = start_cluster({"py": 4}, brokers=2, max_lifetime=120)
proc, bootstrap = mc
assert bootstrap.count("127.0.0.1:") == 2, bootstrap
assert mc.leaders("py").keys() == {0, 1, 2, 3}, mc.leaders("py")
try:
    mc.command("broker_down 9")
    raise AssertionError("broker_down 9 was accepted")
except ClusterError:
    pass
recs = [{"customer_id": f"c{i % 7}", "seq": i} for i in range(300)]
res = kafkatool.produce(bootstrap, "py", recs, headers=[("src", b"py")])
assert (res["produced"], res["failed"]) == (300, 0), res
got, timed_out = kafkatool.consume(bootstrap, "py", from_beginning=True, until_end=True,
                                   timeout=60)
assert not timed_out and len(got) == 300, (len(got), timed_out)
assert all(r.headers == [("src", b"py")] for r in got)
# Every partition led by broker 1 moves to 2, then broker 1 goes down.
for p, b in mc.leaders("py").items():
    if b == 1:
        mc.command(f"leader py {p} 2")
mc.command("broker_down 1")
res = kafkatool.produce(bootstrap, "py", recs[:50], timeout=30)
assert (res["produced"], res["failed"]) == (50, 0), res
assert sum(kafkatool.offsets(bootstrap, "py")["end"].values()) == 350
rc = mc.stop()
assert rc == 0 and proc.poll() == 0, rc
print("python api ok")
PYEOF
check "cluster.py + kafkatool module: start, leaders, ERR raised, produce/consume, failover, stop" \
  'grep -q "^python api ok$" "$WORK/py.out" || { cat "$WORK/py.out"; false; }'

echo "elapsed $(( $(date +%s) - START ))s"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
