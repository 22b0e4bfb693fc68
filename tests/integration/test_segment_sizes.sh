#!/bin/bash
# test_segment_sizes: the segment sizes segd reports equal what a consumer
# of its transitions counts (docs/operations.md, "Segment sizes").
#
# Why: sizes and flows are kept incrementally from the transitions (and
# derived for starting values such as dissatisfied "out"); a consumer
# that keeps each customer's latest value is the independent yardstick
# (tests/integration/sizes_check.py, written from the docs). The daemon's
# side (/v1/segments and the Prometheus series against the output topic)
# is in observe_tests.py.
#
# Checks, on CDNOW and Online Retail with the built-ins, and on Online
# Retail and a synthetic mix also with the dataset rule set (memberships
# starting at "out", graded rules, computed rules with far more than 64
# values, which share "_other"; CDNOW with the rules is left out only for
# time: a million transitions to parse in Python):
#   - per dimension and value: customers, entries and exits in total,
#     over the last hour and the last 24 h, and volatility, from
#     --summary-json;
#   - the stderr summary ends with the segment sizes, and its numbers are
#     those of the JSON.
#
# Env: SEGD, SEG_SRC, SEG_BUILD, SEG_SHARED (as test_replay_datasets.sh).
set -u
: "${SEGD:?SEGD must point at the segd binary}"
: "${SEG_SRC:?SEG_SRC must point at the source tree}"
: "${SEG_BUILD:?SEG_BUILD must point at the build tree}"
SEG_SHARED=${SEG_SHARED:-$SEG_SRC/../shared}
PY=/usr/bin/python3
CHECK="$SEG_SRC/tests/integration/sizes_check.py"
CDNOW_SRC="$SEG_SHARED/data/cdnow/CDNOW_master.txt"
RETAIL_SRC="$SEG_SHARED/data/online-retail/online-retail.csv.gz"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/segd-sizes.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; for l in "$@"; do echo "     $l"; done; }

for f in "$SEGD" "$CDNOW_SRC" "$RETAIL_SRC"; do
    [ -e "$f" ] || { echo "missing $f"; echo "0 passed, 1 failed"; exit 1; }
done

# The converted datasets: test_replay_datasets.sh's cache when it is
# current, else converted here.
dataset() {   # NAME SRC CONVERTER
    local cache="$SEG_BUILD/testdata/$1.ndjson"
    local stamp
    stamp="$(stat -c %Y "$2") $(stat -c %Y "$SEG_SRC/tools/$3")"
    if [ -s "$cache" ] && [ "$(cat "$cache.stamp" 2>/dev/null)" = "$stamp" ]; then
        echo "$cache"
    else
        "$PY" "$SEG_SRC/tools/$3" "$2" >"$TMP/$1.ndjson" 2>/dev/null && echo "$TMP/$1.ndjson"
    fi
}
CD=$(dataset cdnow "$CDNOW_SRC" cdnow2events.py) || bad "convert CDNOW"
OR=$(dataset online-retail "$RETAIL_SRC" retail2events.py) || bad "convert Online Retail"

# stderr_matches ERR SUMMARY_JSON: the summary's last section lists the
# JSON's non-zero sizes, one line per dimension, and nothing follows it.
stderr_matches() {
    "$PY" - "$1" "$2" <<'EOF'
import json, re, sys
lines = open(sys.argv[1], encoding="utf-8").read().rstrip("\n").split("\n")
segs = json.load(open(sys.argv[2]))["segments"]
start = max(i for i, l in enumerate(lines) if l.strip().startswith("segment sizes"))
body = lines[start + 1:]
dims = segs["dimensions"]
assert len(body) == len(dims), f"{len(body)} lines after 'segment sizes', {len(dims)} dimensions"
tok = re.compile(r'\s("(?:[^"\\]|\\.)*"|[A-Za-z0-9_.-]+)=(-?\d+)')
for line, d in zip(body, dims):
    name = line.split()[0]
    assert name == d["dimension"], (name, d["dimension"])
    got = {}
    for v, n in tok.findall(line[len(line) - len(line.lstrip()) + len(name):]):
        got[json.loads(v) if v.startswith('"') else v] = int(n)
    want = {v["value"]: v["customers"] for v in d["values"] if v["customers"]}
    assert got == want, f"{name}: stderr {got} != json {want}"
print(f"{len(dims)} dimension lines")
EOF
}

run() {   # NAME INPUT CONFIG
    local name=$1 in=$2 cfg=$3
    if ! "$SEGD" replay --config "$cfg" --input "$in" --summary-json "$TMP/s.json" \
            >"$TMP/t.out" 2>"$TMP/t.err"; then
        bad "$name: replay failed" "$(tail -3 "$TMP/t.err")"
        return
    fi
    local out
    if out=$("$PY" "$CHECK" "$TMP/t.out" "$TMP/s.json" "$cfg" 2>&1); then
        ok "$name: sizes, flows (total, 1 h, 24 h) and volatility = the consumer's count ($out)"
    else
        bad "$name: segd's sizes differ from the consumer's count" "$out"
    fi
    if out=$(stderr_matches "$TMP/t.err" "$TMP/s.json" 2>&1); then
        ok "$name: the stderr summary ends with the same sizes ($out)"
    else
        bad "$name: stderr summary sizes" "$out" "$(tail -8 "$TMP/t.err")"
    fi
}

BUILTIN="$SEG_SRC/config/segd.yaml"
RULES="$SEG_SRC/tests/data/rules/datasets.yaml"
[ -n "$CD" ] && run "CDNOW, built-ins" "$CD" "$BUILTIN"
[ -n "$OR" ] && run "Online Retail, built-ins" "$OR" "$BUILTIN"
[ -n "$OR" ] && run "Online Retail, dataset rules" "$OR" "$RULES"

# A mix with complaints (dissatisfied in/out) and refunds, past its end.
"$PY" - "$TMP/mix.ndjson" <<'EOF'
import json, random, sys
rnd = random.Random(7)
t = 1609459200
with open(sys.argv[1], "w") as f:
    for i in range(4000):
        t += rnd.choice([0, 60, 600, 3600, 86400])
        c = "m%03d" % rnd.randrange(200)
        r = rnd.random()
        if r < 0.5:
            e = {"type": "purchase", "customer_id": c, "ts": t, "amount": rnd.randint(1, 1500)}
        elif r < 0.6:
            e = {"type": "refund", "customer_id": c, "ts": t, "amount": rnd.randint(1, 300)}
        else:
            e = {"type": "contact", "customer_id": c, "ts": t,
                 "kind": rnd.choice(["complaint", "complaint", "visit", "inquiry"])}
        f.write(json.dumps(e) + "\n")
EOF
run "synthetic mix with complaints, built-ins" "$TMP/mix.ndjson" "$BUILTIN"
run "synthetic mix with complaints, dataset rules" "$TMP/mix.ndjson" "$RULES"
if grep -q '"dimension":"dissatisfied"' "$TMP/t.out"; then
    ok "the mix moves customers in and out of dissatisfied"
else
    bad "the mix has no dissatisfied transitions; it proves less than it should"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
