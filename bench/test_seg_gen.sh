#!/usr/bin/env bash
# Checks tools/seg_gen, the data behind `make bench`: a benchmark on data
# that silently changed shape (unsorted, rejected records, other event mix)
# would measure something else. The checks re-read the output with Python's
# json module, independently of the C code that wrote it.
# Env: SEG_GEN, SEG_CEILING (set by bench/CMakeLists.txt).
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
"$SEG_CEILING" --format json "$tmp/bad.json" >"$tmp/js.out"
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

# --- usage errors exit 2 ---
for args in "" "--customers 0" "--customers 10 --days 0" "--customers 10 --format xml" \
            "--customers 10 --bad-rate 2" "--customers 10 --start yesterday" "--customers 10 --bogus 1"; do
  set +e
  "$SEG_GEN" $args --output "$tmp/x" >/dev/null 2>&1
  rc=$?
  set -e
  [ $rc -eq 2 ] || fail "seg_gen $args exited $rc, want 2"
done
echo "test_seg_gen: ok"
