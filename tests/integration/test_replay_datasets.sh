#!/bin/bash
# test_replay_datasets: segd replay on the two public datasets, held against
# the independent reference implementation (tests/reference/segref.py).
#
# Why: the engine folds state incrementally (hash table, rolling windows,
# timer heap); the reference recomputes every value from each customer's
# full history at every instant. Agreement on every transition of real
# purchase histories (CDNOW: 69,659 purchases; Online Retail: 25,900
# invoices with refunds and 3,710 rejects) is strong evidence that the
# bookkeeping is right. A seeded synthetic mix adds what the datasets lack:
# contacts, complaints, late events and same-instant events.
#
# Checks:
#   - CDNOW and Online Retail: the multiset of transition lines of segd
#     equals the reference's (sorted comparison; on a mismatch the first
#     differing customers and a diff excerpt are printed);
#   - transitions by dimension and rejection counts agree;
#   - Online Retail rejects exactly the invoices without a customer id,
#     counted here straight from the CSV; every DLQ line is JSON with
#     reason missing_field that mentions customer_id;
#   - CDNOW in file order and in time order give the same transitions;
#   - CDNOW as MessagePack gives output identical to the JSON run, and
#     so does CDNOW with state.huge_pages=off;
#   - the stderr summary carries the event and rejection counts.
#
# Env: SEGD, SEG_SRC, SEG_BUILD (converted datasets are cached in
# $SEG_BUILD/testdata, keyed on the source file's and converter's mtime),
# SEG_SHARED (datasets; default $SEG_SRC/../shared).
set -u
: "${SEGD:?SEGD must point at the segd binary}"
: "${SEG_SRC:?SEG_SRC must point at the source tree}"
: "${SEG_BUILD:?SEG_BUILD must point at the build tree}"
SEG_SHARED=${SEG_SHARED:-$SEG_SRC/../shared}
PY=/usr/bin/python3
REF="$SEG_SRC/tests/reference/segref.py"
CFG="$SEG_SRC/config/segd.yaml"
TOMSGPACK="$SEG_BUILD/seg_ndjson2msgpack"
CDNOW_SRC="$SEG_SHARED/data/cdnow/CDNOW_master.txt"
RETAIL_SRC="$SEG_SHARED/data/online-retail/online-retail.csv.gz"

CACHE="$SEG_BUILD/testdata"
mkdir -p "$CACHE"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/segd-datasets.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
T0=$(date +%s)

ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; for l in "$@"; do echo "     $l"; done; }
finish() {
    echo "($(($(date +%s) - T0)) s)"
    echo "$pass passed, $fail failed"
    [ "$fail" = 0 ]
    exit $?
}

# cached OUT SRC CONVERTER CMD...: runs CMD > OUT unless OUT was built from
# the same SRC and CONVERTER mtimes. Written to a temporary name first, so
# a concurrent or interrupted run never leaves half a file behind.
cached() {
    local out=$1 src=$2 conv=$3
    shift 3
    local stamp
    stamp="$(stat -c %Y "$src") $(stat -c %Y "$conv")"
    if [ -s "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    if "$@" >"$out.tmp.$$" 2>"$TMP/conv.err"; then
        mv -f "$out.tmp.$$" "$out"
        echo "$stamp" >"$out.stamp"
    else
        rm -f "$out.tmp.$$"
        cat "$TMP/conv.err"
        return 1
    fi
}

# same_transitions NAME A B: sorted multisets of lines must be equal.
same_transitions() {
    local name=$1 a=$2 b=$3
    sort "$a" >"$TMP/a.sorted"
    sort "$b" >"$TMP/b.sorted"
    if cmp -s "$TMP/a.sorted" "$TMP/b.sorted"; then
        ok "$name ($(wc -l <"$a") transitions)"
        return 0
    fi
    local custs
    custs=$(diff "$TMP/a.sorted" "$TMP/b.sorted" | grep -o '"customer_id":"[^"]*"' |
            cut -d'"' -f4 | awk '!seen[$0]++' | head -5 | tr '\n' ' ')
    bad "$name: transitions differ ($(wc -l <"$a") vs $(wc -l <"$b") lines)" \
        "first differing customers: $custs"
    diff "$TMP/a.sorted" "$TMP/b.sorted" | head -20 | sed 's/^/     /'
    local c
    for c in $(echo "$custs" | cut -d' ' -f1); do
        echo "     customer $c, $a vs $b:"
        diff <(grep -F "\"customer_id\":\"$c\"" "$a") <(grep -F "\"customer_id\":\"$c\"" "$b") |
            head -20 | sed 's/^/       /'
    done
    return 1
}

# summary_field FILE KEY: a number from segref's JSON summary.
summary_field() {
    "$PY" -c 'import json,sys
d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
for k in sys.argv[2].split("."): d=d.get(k, 0) if isinstance(d, dict) else 0
print(d)' "$1" "$2"
}

# stderr_has FILE WORD NUMBER: a line of segd's summary mentions both.
stderr_has() {
    grep -i -- "$2" "$1" | grep -Eq "(^|[^0-9])$3([^0-9]|$)"
}

# dims_agree NAME SEGD_STDERR REF_SUMMARY: per-dimension counts.
dims_agree() {
    local d want miss=""
    for d in lifecycle value rfm dissatisfied; do
        want=$(summary_field "$3" "transitions.$d")
        stderr_has "$2" "$d" "$want" || miss="$miss $d=$want"
    done
    if [ -z "$miss" ]; then ok "$1: transitions by dimension in the summary match the reference"
    else bad "$1: summary lacks/contradicts counts:$miss" "$(cat "$2")"; fi
}

for f in "$SEGD" "$REF" "$CDNOW_SRC" "$RETAIL_SRC"; do
    [ -e "$f" ] || { bad "missing $f"; finish; }
done

# The yardstick first: the reference's own hand-computed scenarios (they
# are not registered with ctest on their own, so they run here).
if "$PY" "$SEG_SRC/tests/reference/test_segref.py" >"$TMP/selftest" 2>&1; then
    ok "reference self-test ($(grep -o 'Ran [0-9]* tests' "$TMP/selftest"))"
else
    bad "reference self-test failed; its results below are not trustworthy"
    tail -30 "$TMP/selftest" | sed 's/^/     /'
fi

# --- convert (cached) -------------------------------------------------------
CD="$CACHE/cdnow.ndjson"
CDT="$CACHE/cdnow-by-time.ndjson"
CDM="$CACHE/cdnow.msgpack"
OR="$CACHE/online-retail.ndjson"
cached "$CD" "$CDNOW_SRC" "$SEG_SRC/tools/cdnow2events.py" \
    "$PY" "$SEG_SRC/tools/cdnow2events.py" "$CDNOW_SRC" || bad "convert CDNOW"
cached "$CDT" "$CDNOW_SRC" "$SEG_SRC/tools/cdnow2events.py" \
    "$PY" "$SEG_SRC/tools/cdnow2events.py" --sort-by-time "$CDNOW_SRC" || bad "convert CDNOW by time"
cached "$OR" "$RETAIL_SRC" "$SEG_SRC/tools/retail2events.py" \
    "$PY" "$SEG_SRC/tools/retail2events.py" "$RETAIL_SRC" || bad "convert Online Retail"
if [ -x "$TOMSGPACK" ]; then
    cached "$CDM" "$CD" "$TOMSGPACK" "$TOMSGPACK" "$CD" || bad "convert CDNOW to msgpack"
else
    bad "missing $TOMSGPACK (build the seg_ndjson2msgpack tool)"
fi
[ "$fail" = 0 ] || finish

# --- CDNOW ------------------------------------------------------------------
run_segd() {   # TAG INPUT [ARGS...]: stdout, stderr, rc in $TMP/TAG.*
    local tag=$1 in=$2
    shift 2
    local t
    t=$(date +%s%N)
    "$SEGD" replay --config "$CFG" --input "$in" "$@" >"$TMP/$tag.out" 2>"$TMP/$tag.err"
    echo $? >"$TMP/$tag.rc"
    echo "     segd $tag: $((($(date +%s%N) - t) / 1000000)) ms"
}
run_ref() {    # TAG INPUT
    local t
    t=$(date +%s%N)
    "$PY" "$REF" --config "$CFG" "$2" >"$TMP/$1.out" 2>"$TMP/$1.err"
    echo $? >"$TMP/$1.rc"
    echo "     reference $1: $((($(date +%s%N) - t) / 1000000)) ms"
}
rc_ok() {   # TAG
    if [ "$(cat "$TMP/$1.rc")" = 0 ]; then return 0; fi
    bad "$1: exit $(cat "$TMP/$1.rc")" "$(head -c 500 "$TMP/$1.err")"
    return 1
}

run_segd cd "$CD" --dlq "$TMP/cd.dlq"
run_ref cd.ref "$CD"
if rc_ok cd && rc_ok cd.ref; then
    same_transitions "CDNOW: segd == reference" "$TMP/cd.out" "$TMP/cd.ref.out"
    n=$(wc -l <"$CD")
    if stderr_has "$TMP/cd.err" read "$n" && stderr_has "$TMP/cd.err" rejected 0; then
        ok "CDNOW: summary reports $n events read, 0 rejected"
    else bad "CDNOW: summary lacks 'read $n' / 'rejected 0'" "$(cat "$TMP/cd.err")"; fi
    if [ "$(summary_field "$TMP/cd.ref.err" rejected)" = 0 ] && [ ! -s "$TMP/cd.dlq" ]; then
        ok "CDNOW: no rejections (segd DLQ empty, reference 0)"
    else bad "CDNOW: unexpected rejections" "$(head -3 "$TMP/cd.dlq")"; fi
    dims_agree "CDNOW" "$TMP/cd.err" "$TMP/cd.ref.err"
fi

run_segd cdt "$CDT"
if rc_ok cdt; then
    same_transitions "CDNOW: file order == time order" "$TMP/cd.out" "$TMP/cdt.out"
fi

if [ -s "$CDM" ]; then
    run_segd cdm "$CDM" --format msgpack
    if rc_ok cdm; then
        if cmp -s "$TMP/cd.out" "$TMP/cdm.out"; then
            ok "CDNOW: --format msgpack output identical to JSON ($(wc -l <"$TMP/cdm.out") lines)"
        else
            bad "CDNOW: msgpack output differs from JSON"
            diff "$TMP/cd.out" "$TMP/cdm.out" | head -10 | sed 's/^/     /'
        fi
    fi
fi

# Replay advises the state for huge pages (state.huge_pages auto); with
# it off, the state sits in plain malloc'd memory: the bytes must not
# depend on where it lives.
run_segd cdh "$CD" --set state.huge_pages=off
if rc_ok cdh; then
    if cmp -s "$TMP/cd.out" "$TMP/cdh.out"; then
        ok "CDNOW: state.huge_pages=off output identical to the default (on)"
    else
        bad "CDNOW: output with state.huge_pages=off differs"
        diff "$TMP/cd.out" "$TMP/cdh.out" | head -10 | sed 's/^/     /'
    fi
fi

# --- Online Retail ----------------------------------------------------------
# Invoices without a customer id, counted from the CSV itself (not from the
# converter's output), so a converter bug cannot hide a decoder bug.
nocust=$("$PY" - "$RETAIL_SRC" <<'EOF'
import csv, gzip, sys
with gzip.open(sys.argv[1], "rt", newline="") as f:
    r = csv.reader(f)
    h = next(r)
    inv, cust = h.index("InvoiceNo"), h.index("CustomerID")
    seen = {}
    for row in r:
        seen.setdefault(row[inv], row[cust].strip() != "")
print(sum(1 for has in seen.values() if not has))
EOF
)
run_segd or "$OR" --dlq "$TMP/or.dlq"
run_ref or.ref "$OR"
if rc_ok or && rc_ok or.ref; then
    same_transitions "Online Retail: segd == reference" "$TMP/or.out" "$TMP/or.ref.out"
    dlqn=$(wc -l <"$TMP/or.dlq")
    refn=$(summary_field "$TMP/or.ref.err" rejected)
    if [ "$nocust" -gt 0 ] && [ "$dlqn" = "$nocust" ] && [ "$refn" = "$nocust" ]; then
        ok "Online Retail: $nocust rejected = invoices without customer in the CSV"
    else bad "Online Retail: rejections: CSV $nocust, segd DLQ $dlqn, reference $refn"; fi
    if stderr_has "$TMP/or.err" rejected "$nocust" && stderr_has "$TMP/or.err" missing_field "$nocust" &&
       stderr_has "$TMP/or.err" read "$(wc -l <"$OR")"; then
        ok "Online Retail: summary reports events read and $nocust missing_field rejections"
    else bad "Online Retail: summary counts" "$(cat "$TMP/or.err")"; fi
    if "$PY" - "$TMP/or.dlq" <<'EOF'
import json, sys
n = 0
for i, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    d = json.loads(line)
    assert isinstance(d, dict), "line %d: not an object" % i
    assert d.get("reason") == "missing_field", "line %d: reason %r" % (i, d.get("reason"))
    assert "customer_id" in line, "line %d does not mention customer_id" % i
    n += 1
assert n > 0
EOF
    then ok "Online Retail: every DLQ line is JSON, reason missing_field, mentions customer_id"
    else bad "Online Retail: DLQ lines"; fi
    dims_agree "Online Retail" "$TMP/or.err" "$TMP/or.ref.err"
fi

# --- synthetic mix ----------------------------------------------------------
# What the datasets lack: contacts and complaints (dissatisfied, prospect),
# refunds, events late for their customer, several events per instant,
# offsets and epoch-ms timestamps, and a sprinkle of invalid records.
mixlate=$("$PY" - "$TMP/mix.ndjson" <<'EOF'
import datetime, json, random, sys
rnd = random.Random(20240517)
DAY = 86400
t = 1609459200                       # 2021-01-01
out = []
seen = {}
late = 0
def ts_text(ts):
    c = rnd.random()
    utc = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=ts)
    if c < 0.6:
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    if c < 0.8:
        return ts * 1000 + rnd.choice([0, 999])
    local = utc + datetime.timedelta(hours=2)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + ".5+02:00"
for i in range(6000):
    t += rnd.choice([0, 0, 1, 3600, DAY, 3 * DAY, 30 * DAY, 45 * DAY, 90 * DAY]) if rnd.random() < 0.03 else 0
    ts = t - rnd.randint(0, 100 * DAY) if rnd.random() < 0.1 else t
    cid = "m%03d" % rnd.randrange(30)
    r = rnd.random()
    if r < 0.45:
        e = {"type": "purchase", "customer_id": cid, "ts": ts_text(ts),
             "amount": rnd.choice([0, 10, 99.99, 100, 250, 999.9999, 1000, rnd.randint(0, 1500) + rnd.randint(0, 99) / 100])}
    elif r < 0.6:
        e = {"type": "refund", "customer_id": cid, "ts": ts_text(ts), "amount": rnd.choice([5, 50, 300, 1000.5])}
    else:
        e = {"type": "contact", "customer_id": cid, "ts": ts_text(ts),
             "kind": rnd.choice(["complaint", "complaint", "complaint", "visit", "inquiry", "support"])}
    line = json.dumps(e, separators=(",", ":"))
    b = rnd.random()
    if b < 0.01:
        line = line.replace('"customer_id":"%s"' % cid, '"customer_id":7')
    elif b < 0.02:
        line = line[:-2]
    else:
        late += ts < seen.get(cid, ts)
        seen[cid] = max(ts, seen.get(cid, ts))
    out.append(line)
open(sys.argv[1], "w").write("\n".join(out) + "\n")
print(late)
EOF
)
"$SEGD" replay --config "$CFG" --input "$TMP/mix.ndjson" --until 2040-01-01T00:00:00Z \
    >"$TMP/mix.out" 2>"$TMP/mix.err"
mixrc=$?
"$PY" "$REF" --config "$CFG" --until 2040-01-01T00:00:00Z "$TMP/mix.ndjson" \
    >"$TMP/mix.ref.out" 2>"$TMP/mix.ref.err"
mixdiss=$(grep -c '"dimension":"dissatisfied"' "$TMP/mix.ref.out")
echo "     synthetic mix: $mixlate late events, $mixdiss dissatisfied transitions"
if [ "$mixrc" = 0 ] && [ "$mixdiss" -gt 0 ] && [ "$mixlate" -gt 0 ]; then
    same_transitions "synthetic mix (complaints, refunds, late events): segd == reference" \
        "$TMP/mix.out" "$TMP/mix.ref.out"
    dims_agree "synthetic mix" "$TMP/mix.err" "$TMP/mix.ref.err"
    rej=$(summary_field "$TMP/mix.ref.err" rejected)
    if [ "$rej" -gt 0 ] && stderr_has "$TMP/mix.err" rejected "$rej"; then
        ok "synthetic mix: $rej rejections in both"
    else bad "synthetic mix: reference rejected $rej" "$(cat "$TMP/mix.err")"; fi
else
    bad "synthetic mix: segd exit $mixrc, or the mix lacks late events or dissatisfied transitions" \
        "$(head -c 500 "$TMP/mix.err")"
fi

finish
