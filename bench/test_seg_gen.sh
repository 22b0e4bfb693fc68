#!/usr/bin/env bash
# Checks tools/seg_gen, the data behind `make bench`: a benchmark on data
# that silently changed shape (unsorted, rejected records, other event mix)
# would measure something else. The checks re-read the output with Python's
# json module, independently of the C code that wrote it. The Kafka output
# (--brokers/--topic, used by `make demo` and bench case 5) is read back
# from the test harness's mock cluster with kcat and kafka-python, and its
# pacing (--rate), live timestamps (--realtime), delivery-failure exit
# status and SIGTERM handling are checked too.
# Env: SEG_GEN, SEG_CEILING, optionally SEG_MOCK_CLUSTER (set by
# bench/CMakeLists.txt; without it tests/harness/mock_cluster.sh builds the
# harness with cc).
set -euo pipefail
: "${SEG_GEN:?}" "${SEG_CEILING:?}"
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

N=20000
"$SEG_GEN" --customers $N --seed 42 --output "$tmp/a.json" --summary-json "$tmp/a.sum" 2>"$tmp/a.err"
"$SEG_GEN" --customers $N --seed 42 --output "$tmp/b.json" 2>/dev/null
"$SEG_GEN" --customers $N --seed 43 --output "$tmp/c.json" 2>/dev/null
cmp -s "$tmp/a.json" "$tmp/b.json" || fail "same seed gave different output"
cmp -s "$tmp/a.json" "$tmp/c.json" && fail "different seeds gave the same output"
grep -q "^seg_gen: $N customers" "$tmp/a.err" || fail "no stderr summary: $(cat "$tmp/a.err")"

# Stdout output is the same bytes as file output.
"$SEG_GEN" --customers 500 --seed 42 --output - 2>/dev/null >"$tmp/s1.json"
"$SEG_GEN" --customers 500 --seed 42 --output "$tmp/s2.json" 2>/dev/null
cmp -s "$tmp/s1.json" "$tmp/s2.json" || fail "stdout and file output differ"

"$SEG_GEN" --customers $N --seed 42 --by-customer --output "$tmp/g.json" 2>/dev/null
"$SEG_GEN" --customers 3000 --seed 5 --days 90 --start 2023-06-15T12:00:00Z \
  --output "$tmp/d.json" --summary-json "$tmp/d.sum" 2>/dev/null

$PY - "$tmp" $N <<'EOF'
import json, re, sys, datetime as dt
from collections import Counter
tmp, N = sys.argv[1], int(sys.argv[2])

def ts(s):
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s), s
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)

KINDS = {"visit", "inquiry", "support", "feedback", "complaint"}
def check_event(e, ncust):
    assert e["type"] in ("purchase", "refund", "contact"), e
    assert re.fullmatch(r"c\d{10}", e["customer_id"]) and int(e["customer_id"][1:]) < ncust, e
    t = ts(e["ts"])
    if e["type"] == "contact":
        assert e["kind"] in KINDS and "amount" not in e, e
        if "rating" in e:
            assert e["kind"] == "feedback" and isinstance(e["rating"], int) and 1 <= e["rating"] <= 5, e
    else:
        a = e["amount"]
        assert isinstance(a, (int, float)) and a > 0 and abs(round(a * 100) - a * 100) < 1e-6, e
    assert re.fullmatch(r"e\d+", e["event_id"]), e
    assert e.get("channel", "web") in ("web", "app", "store"), e
    assert e.get("currency", "EUR") == "EUR", e
    return t

def load(path):
    with open(path) as f:
        return [json.loads(l) for l in f]

# --- default (time-sorted) output ---
ev = load(f"{tmp}/a.json")
summ = json.load(open(f"{tmp}/a.sum"))
start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
times = [check_event(e, N) for e in ev]
assert times == sorted(times), "not in time order"
assert times[0] >= start and times[-1] < start + dt.timedelta(days=365), (times[0], times[-1])
assert summ["events"] == len(ev) and summ["records"] == len(ev) and summ["bad_records"] == 0
types = Counter(e["type"] for e in ev)
assert summ["events_by_type"] == {k: types[k] for k in ("purchase", "refund", "contact")}, (summ, types)
kinds = Counter(e["kind"] for e in ev if e["type"] == "contact")
assert summ["contacts_by_kind"] == {k: kinds[k] for k in summ["contacts_by_kind"]}
assert [int(e["event_id"][1:]) for e in ev] == list(range(1, len(ev) + 1)), "event ids"
assert summ["last_ts"] == ev[-1]["ts"]

# The model's shape, with generous bounds (20k customers).
custs = {e["customer_id"] for e in ev}
assert len(custs) >= 0.99 * N, len(custs)
purch = [e for e in ev if e["type"] == "purchase"]
refunds = [e for e in ev if e["type"] == "refund"]
assert 1.5 * N < len(purch) < 4 * N, len(purch)
assert 0.03 < len(refunds) / len(purch) < 0.07, len(refunds) / len(purch)
mean_amount = sum(e["amount"] for e in purch) / len(purch)
assert 50 < mean_amount < 70, mean_amount
assert 0 < kinds["complaint"] < kinds["visit"] / 3, kinds
buyers = {e["customer_id"] for e in purch}
assert 0.03 * N < len(custs - buyers) < 0.08 * N, "prospect share"
# Every refund follows a purchase of that customer 1..10 days earlier, and
# returns at most what that purchase cost.
last = {}
for e in ev:
    if e["type"] == "purchase":
        last.setdefault(e["customer_id"], []).append((ts(e["ts"]), e["amount"]))
    elif e["type"] == "refund":
        t = ts(e["ts"])
        ok = [a for (pt, a) in last.get(e["customer_id"], [])
              if dt.timedelta(days=1) <= t - pt <= dt.timedelta(days=10) and e["amount"] <= a + 1e-9]
        assert ok, e
# First purchases (arrivals) fall in the first half of the period.
first = {}
for e in purch:
    first.setdefault(e["customer_id"], ts(e["ts"]))
assert max(first.values()) < start + dt.timedelta(days=183), max(first.values())

# --- --by-customer: the same events, grouped, time-ordered per customer ---
g = load(f"{tmp}/g.json")
strip = lambda e: tuple(sorted((k, v) for k, v in e.items() if k != "event_id"))
assert Counter(map(strip, g)) == Counter(map(strip, ev)), "by-customer has other events"
seen, prev = set(), None
for e in g:
    c = e["customer_id"]
    if c != (prev and prev["customer_id"]):
        assert c not in seen, f"{c} not contiguous"
        seen.add(c)
    else:
        assert ts(prev["ts"]) <= ts(e["ts"]), "not time-ordered within customer"
    prev = e

# --- --days/--start ---
d = load(f"{tmp}/d.json")
s2 = dt.datetime(2023, 6, 15, 12, tzinfo=dt.timezone.utc)
dt_ = [check_event(e, 3000) for e in d]
assert dt_[0] >= s2 and dt_[-1] < s2 + dt.timedelta(days=90) and dt_ == sorted(dt_)
assert json.load(open(f"{tmp}/d.sum"))["events"] == len(d)
EOF

# --- --bad-rate: each bad record breaks exactly the rule its name says ---
"$SEG_GEN" --customers $N --seed 9 --bad-rate 0.1 --output "$tmp/bad.json" --summary-json "$tmp/bad.sum" 2>/dev/null
"$SEG_GEN" --customers $N --seed 9 --output "$tmp/good.json" 2>/dev/null
$PY - "$tmp" <<'EOF'
import json, re, sys
from collections import Counter
tmp = sys.argv[1]
summ = json.load(open(f"{tmp}/bad.sum"))
good = [json.loads(l) for l in open(f"{tmp}/good.json")]
valid, found = [], Counter()
RFC = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ")
for line in open(f"{tmp}/bad.json"):
    try:
        e = json.loads(line)
    except ValueError:
        found["garbage"] += 1
        continue
    if not isinstance(e, dict):
        found["not_object"] += 1
        continue
    if "event_id" in e:
        valid.append(e)
        continue
    # A bad record: name the one broken rule, and check nothing else is.
    problems = []
    if e.get("type") not in ("purchase", "refund", "contact"): problems.append("unknown_type")
    cid = e.get("customer_id")
    if cid is None: problems.append("missing_customer_id")
    elif not isinstance(cid, str): problems.append("numeric_customer_id")
    elif cid == "": problems.append("empty_customer_id")
    if "ts" not in e: problems.append("missing_ts")
    elif not RFC.fullmatch(e["ts"]) or e["ts"].startswith("2024-02-30"): problems.append("bad_ts")
    if e.get("type") == "contact" and e.get("kind") not in ("visit", "inquiry", "support", "feedback", "complaint"):
        problems.append("unknown_kind")
    if e.get("type") in ("purchase", "gift"):
        a = e.get("amount")
        if a is None: problems.append("missing_amount")
        elif isinstance(a, str): problems.append("amount_string")
        elif a < 0: problems.append("negative_amount")
    assert len(problems) == 1, (problems, e)
    found[problems[0]] += 1
assert valid == good, "bad records changed the valid ones"
expected = {k: v for k, v in summ["bad_by_kind"].items() if v}
assert dict(found) == expected, (found, expected)
total = sum(found.values())
assert total == summ["bad_records"] and summ["records"] == len(valid) + total
assert 0.08 < total / len(valid) < 0.12, total / len(valid)
assert len(expected) == 12, "every kind of bad record appears"
print(json.dumps({"bad_records": total, "valid": len(valid)}))
EOF

# --- msgpack: the same records; read back with msgpack-c via the ceiling ---
"$SEG_GEN" --customers $N --seed 9 --bad-rate 0.1 --format msgpack --output "$tmp/bad.mp" --summary-json "$tmp/badmp.sum" 2>/dev/null
"$SEG_GEN" --customers $N --seed 9 --bad-rate 0.1 --format msgpack --output "$tmp/bad2.mp" 2>/dev/null
cmp -s "$tmp/bad.mp" "$tmp/bad2.mp" || fail "msgpack output not deterministic"
"$SEG_CEILING" --format msgpack "$tmp/bad.mp" >"$tmp/mp.out"
"$SEG_CEILING" --format json --parser cjson "$tmp/bad.json" >"$tmp/js.out"
$PY - "$tmp" <<'EOF'
import json, sys
tmp = sys.argv[1]
s, sm = json.load(open(f"{tmp}/bad.sum")), json.load(open(f"{tmp}/badmp.sum"))
mp, js = json.load(open(f"{tmp}/mp.out")), json.load(open(f"{tmp}/js.out"))
for k in ("events", "records", "events_by_type", "contacts_by_kind", "bad_by_kind", "last_ts"):
    assert s[k] == sm[k], (k, s[k], sm[k])
b = s["bad_by_kind"]
# msgpack has no unparseable records (garbage is a non-map string there).
assert mp["errors"] == 0 and mp["records"] == s["records"], mp
assert mp["objects"] == s["records"] - b["garbage"] - b["not_object"], mp
assert mp["bytes"] == sm["bytes"]
# cJSON agrees with Python on which lines parse.
assert js["errors"] == b["garbage"] and js["records"] == s["records"] - b["garbage"], js
assert js["objects"] == s["records"] - b["garbage"] - b["not_object"], js
EOF

# --- pacing and --realtime, file output -----------------------------------
# Pacing changes when records are written, never what; --realtime changes
# only ts, to the wall clock at the moment each record is written.
"$SEG_GEN" --customers 60 --seed 2 --output "$tmp/p0.json" 2>/dev/null
t0=$(date +%s.%N)
"$SEG_GEN" --customers 60 --seed 2 --rate 100 --output "$tmp/p1.json" 2>/dev/null
t1=$(date +%s.%N)
cmp -s "$tmp/p0.json" "$tmp/p1.json" || fail "--rate changed the records"
"$SEG_GEN" --customers 60 --seed 2 --rate 400 --realtime --output "$tmp/rt.json" \
  --summary-json "$tmp/rt.sum" 2>/dev/null
t2=$(date +%s.%N)
$PY - "$tmp" "$t0" "$t1" "$t2" <<'PYEOF'
import calendar, json, sys
tmp, t0, t1, t2 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
p0 = [json.loads(l) for l in open(f"{tmp}/p0.json")]
n = len(p0)
# 100 records/s, the bucket holding at most one: the n-th record cannot
# go before (n - 1) / 100 s. (No upper bound: the machine may be busy.)
assert t1 - t0 >= (n - 1) / 100 * 0.95, (n, t1 - t0)
rt = [json.loads(l) for l in open(f"{tmp}/rt.json")]
assert len(rt) == n
def sec(s):
    return calendar.timegm((int(s[0:4]), int(s[5:7]), int(s[8:10]),
                            int(s[11:13]), int(s[14:16]), int(s[17:19])))
ts = [sec(e["ts"]) for e in rt]
assert ts == sorted(ts), "realtime ts not in order"
assert int(t1) <= ts[0] and ts[-1] <= t2, (t1, ts[0], ts[-1], t2)
assert ts[-1] - ts[0] >= int((n - 1) / 400) - 1, "ts does not follow the clock"
strip = lambda e: {k: v for k, v in e.items() if k != "ts"}
assert [strip(e) for e in rt] == [strip(e) for e in p0], "--realtime changed more than ts"
summ = json.load(open(f"{tmp}/rt.sum"))
assert summ["last_ts"] == rt[-1]["ts"] and summ["written"] == n and summ["realtime"] is True
assert summ["interrupted"] is False and summ["rate"] == 400 and "kafka" not in summ
PYEOF

# --- Kafka output (--brokers/--topic) ----------------------------------------
# Through the harness's mock cluster (a real Kafka-protocol server on
# 127.0.0.1). Read back with kcat (librdkafka, decodes the default lz4)
# and with kafka-python (an independent protocol implementation, which
# also computes the partition a Java producer would choose).
SRC=$(cd "$(dirname "$0")/.." && pwd)
command -v kcat >/dev/null || fail "kcat is missing (scripts/install-deps.sh)"
$PY -c 'import kafka' 2>/dev/null || fail "python3-kafka is missing (scripts/install-deps.sh)"
export MC_TIMEOUT=30
# shellcheck source=../tests/harness/mock_cluster.sh
. "$SRC/tests/harness/mock_cluster.sh"
trap 'mc_stop >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
mc_start "$tmp/mc" --topic ev:6 --topic one:1 --topic onemp:1 --topic stop:3 --topic bad:3 \
  || fail "mock cluster did not start"
B=$MC_BOOTSTRAP
KT="$SRC/tests/harness/kafkatool.py"

# JSON with invalid records, 6 partitions, default settings (lz4).
"$SEG_GEN" --customers 3000 --seed 11 --bad-rate 0.02 --output "$tmp/k.json" 2>/dev/null
"$SEG_GEN" --customers 3000 --seed 11 --bad-rate 0.02 --brokers "$B" --topic ev \
  --summary-json "$tmp/k.sum" 2>"$tmp/k.err" || fail "seg_gen --brokers: $(cat "$tmp/k.err")"
grep -q "delivered, 0 failed" "$tmp/k.err" || fail "no delivery summary: $(cat "$tmp/k.err")"
timeout 60 kcat -C -b "$B" -t ev -o beginning -e -q -f '%p\t%o\t%k\t%s\n' >"$tmp/k.tsv" \
  || fail "kcat could not read topic ev"
$PY - "$tmp" <<'PYEOF'
import json, sys
from collections import Counter, defaultdict
from kafka.partitioner.default import murmur2
tmp = sys.argv[1]
lines = open(f"{tmp}/k.json").read().split("\n")[:-1]
msgs = [l.split("\t", 3) for l in open(f"{tmp}/k.tsv").read().split("\n")[:-1]]
summ = json.load(open(f"{tmp}/k.sum"))
assert summ["kafka"] == {"topic": "ev", "produced": len(lines), "delivered": len(lines),
                         "failed": 0, "undelivered": 0}, summ["kafka"]
assert summ["records"] == len(lines) and summ["bad_records"] > 0
assert len(msgs) == len(lines), (len(msgs), len(lines))
# Byte for byte the file's records, one per message, newline dropped.
assert Counter(m[3] for m in msgs) == Counter(lines), "message values differ from the file"
part_of = {}
for p, _o, key, val in msgs:
    try:
        e = json.loads(val)
    except ValueError:
        e = None
    if isinstance(e, dict) and "event_id" in e:
        assert key == e["customer_id"], (key, val)
    # All of a customer's records on one partition: the one murmur2, the
    # Java client's partitioner, picks.
    assert part_of.setdefault(key, p) == p, key
    assert int(p) == (murmur2(key.encode()) & 0x7FFFFFFF) % 6, (key, p)
# Each partition holds its records in the file's order (valid records
# are unique lines; invalid ones may repeat).
order = {v: i for i, v in enumerate(lines) if '"event_id"' in v}
by_part = defaultdict(list)
for p, o, _key, val in msgs:
    by_part[p].append((int(o), val))
assert len(by_part) == 6, "not every partition was used"
for p, recs in by_part.items():
    pos = [order[v] for _o, v in sorted(recs) if v in order]
    assert pos == sorted(pos), f"partition {p} out of order"
PYEOF

# kafka-python reads what seg_gen wrote (gzip: kafka-python has no lz4 here).
"$SEG_GEN" --customers 300 --seed 5 --output "$tmp/one.json" 2>/dev/null
tk0=$(date +%s%3N)
"$SEG_GEN" --customers 300 --seed 5 --brokers "$B" --topic one -X compression.type=gzip \
  2>"$tmp/one.err" || fail "seg_gen -X compression.type=gzip: $(cat "$tmp/one.err")"
tk1=$(date +%s%3N)
timeout 120 "$PY" "$KT" consume --bootstrap "$B" --topic one --no-group --from-beginning \
  --with-headers --with-meta --until-idle 3 --timeout 60 \
  --max "$(wc -l <"$tmp/one.json")" >"$tmp/one.out" 2>"$tmp/one.kerr" \
  || fail "kafka-python could not read topic one: $(tail -3 "$tmp/one.kerr")"
$PY - "$tmp" "$tk0" "$tk1" <<'PYEOF'
import json, sys
tmp, t0, t1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lines = open(f"{tmp}/one.json").read().split("\n")[:-1]
recs = [json.loads(l) for l in open(f"{tmp}/one.out")]
assert [r["value"] for r in recs] == lines, "kafka-python read other values, or in another order"
for r in recs:
    assert r["key"] == json.loads(r["value"])["customer_id"], r
    assert not r.get("headers"), r            # JSON records carry no header
    assert t0 - 1000 <= r["timestamp"] <= t1 + 1000, (t0, r["timestamp"], t1)   # CreateTime
PYEOF

# MessagePack: one partition, so the values in offset order are the file.
"$SEG_GEN" --customers 300 --seed 5 --bad-rate 0.05 --format msgpack --output "$tmp/mp.bin" 2>/dev/null
"$SEG_GEN" --customers 300 --seed 5 --bad-rate 0.05 --format msgpack --brokers "$B" --topic onemp \
  2>"$tmp/mp.err" || fail "seg_gen --format msgpack --brokers: $(cat "$tmp/mp.err")"
timeout 60 kcat -C -b "$B" -t onemp -o beginning -e -q -f '%s' >"$tmp/mp.got" || fail "kcat onemp"
cmp -s "$tmp/mp.bin" "$tmp/mp.got" || fail "msgpack values differ from the file"
timeout 60 kcat -C -b "$B" -t onemp -o beginning -e -q -f '%h\n' | sort | uniq -c >"$tmp/mp.h"
[ "$(wc -l <"$tmp/mp.h")" = 1 ] && grep -q " content-type=application/msgpack$" "$tmp/mp.h" \
  || fail "not every msgpack message has content-type: application/msgpack: $(cat "$tmp/mp.h")"

# Delivery failures are counted and make the exit status 1.
mc_cmd "push_errors Produce 64 MSG_SIZE_TOO_LARGE" >/dev/null || fail "push_errors"
set +e
timeout 60 "$SEG_GEN" --customers 50 --seed 5 --brokers "$B" --topic bad --summary-json "$tmp/bad.sum" \
  2>"$tmp/bad.err"
rc=$?
set -e
mc_cmd "clear_errors Produce" >/dev/null || true
[ $rc -eq 1 ] || fail "failed deliveries: exit $rc, want 1: $(cat "$tmp/bad.err")"
grep -q "Message size too large" "$tmp/bad.err" || fail "no delivery error reported: $(cat "$tmp/bad.err")"
$PY - "$tmp/bad.sum" <<'PYEOF'
import json, sys
k = json.load(open(sys.argv[1]))["kafka"]
assert k["failed"] == k["produced"] > 0 and k["delivered"] == 0, k
PYEOF

# A cluster that is not there fails fast, and so does a bad property.
set +e
timeout 60 "$SEG_GEN" --customers 5 --brokers 127.0.0.1:1 --topic ev 2>"$tmp/nob.err"
rc1=$?
timeout 60 "$SEG_GEN" --customers 5 --brokers "$B" --topic ev -X no.such.property=1 2>"$tmp/prop.err"
rc2=$?
set -e
[ $rc1 -eq 1 ] && grep -q "topic 'ev' at 127.0.0.1:1" "$tmp/nob.err" \
  || fail "unreachable cluster: exit $rc1: $(cat "$tmp/nob.err")"
[ $rc2 -eq 1 ] && grep -q "no.such.property" "$tmp/prop.err" \
  || fail "bad -X: exit $rc2: $(cat "$tmp/prop.err")"

# SIGTERM mid-stream: stop, deliver what was produced, report, exit 0.
"$SEG_GEN" --customers 3000 --seed 8 --output "$tmp/stop.json" 2>/dev/null
"$SEG_GEN" --customers 3000 --seed 8 --rate 1000 --brokers "$B" --topic stop \
  --summary-json "$tmp/stop.sum" 2>"$tmp/stop.err" &
gp=$!
sleep 2
kill -TERM "$gp"
set +e
wait "$gp"
rc=$?
set -e
[ $rc -eq 0 ] || fail "SIGTERM: exit $rc: $(cat "$tmp/stop.err")"
grep -q "stopped by a signal after" "$tmp/stop.err" || fail "no stop report: $(cat "$tmp/stop.err")"
timeout 60 kcat -C -b "$B" -t stop -o beginning -e -q -f '%s\n' >"$tmp/stop.got" || fail "kcat stop"
$PY - "$tmp" <<'PYEOF'
import json, sys
from collections import Counter
tmp = sys.argv[1]
s = json.load(open(f"{tmp}/stop.sum"))
lines = open(f"{tmp}/stop.json").read().split("\n")[:-1]
got = open(f"{tmp}/stop.got").read().split("\n")[:-1]
assert s["interrupted"] is True and 0 < s["written"] < len(lines), s
assert s["kafka"]["delivered"] == s["written"] == len(got) and s["kafka"]["failed"] == 0, s
# What was sent is exactly the stream's first `written` records.
assert Counter(got) == Counter(lines[:s["written"]]), "the topic holds other records"
PYEOF
mc_stop >/dev/null 2>&1 || true

# --- usage errors exit 2 ---
for args in "" "--customers 0" "--customers 10 --days 0" "--customers 10 --format xml" \
            "--customers 10 --bad-rate 2" "--customers 10 --start yesterday" "--customers 10 --bogus 1" \
            "--customers 10 --brokers 127.0.0.1:9" "--customers 10 --topic t" "--customers 10 -X a=b" \
            "--customers 10 --rate 0" "--customers 10 --rate fast" \
            "--customers 10 --brokers 127.0.0.1:9 --topic t --output-twice"; do
  set +e
  "$SEG_GEN" $args --output "$tmp/x" >/dev/null 2>&1
  rc=$?
  set -e
  [ $rc -eq 2 ] || fail "seg_gen $args exited $rc, want 2"
done
echo "test_seg_gen: ok"
