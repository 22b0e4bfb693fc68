#!/bin/bash
# test_rules_builtins: the four built-in dimensions written as user rules
# (tests/data/config/builtins-as-rules.yaml) give byte-identical output to
# the built-ins.
#
# Why: it is the proof that the rule language can say everything the
# built-ins say, and that its evaluation is exact in time: the rules
# version reaches the same values at the same seconds through a different
# mechanism (rule programs, their own candidate instants, their own
# windows), so any instant missed or any window edge off by one second
# shows up as a differing byte.
#
# Checks, each as a byte comparison of the whole output (cmp), so the order
# of transitions and the seq/id numbering count too:
#   - CDNOW (69,659 purchases), in file order and in time order;
#   - Online Retail (25,900 invoices with refunds; rejects included);
#   - a seeded seg_gen mix with contacts, complaints and refunds, in time
#     order and grouped by customer;
#   - with --until beyond the data, so every deadline fires.
#
# Env: SEGD, SEG_SRC, SEG_BUILD, SEG_SHARED (as test_replay_datasets.sh).
set -u
: "${SEGD:?SEGD must point at the segd binary}"
: "${SEG_SRC:?SEG_SRC must point at the source tree}"
: "${SEG_BUILD:?SEG_BUILD must point at the build tree}"
SEG_SHARED=${SEG_SHARED:-$SEG_SRC/../shared}
PY=/usr/bin/python3
BUILTIN="$SEG_SRC/config/segd.yaml"
RULES="$SEG_SRC/tests/data/config/builtins-as-rules.yaml"
CDNOW_SRC="$SEG_SHARED/data/cdnow/CDNOW_master.txt"
RETAIL_SRC="$SEG_SHARED/data/online-retail/online-retail.csv.gz"
GEN="$SEG_BUILD/seg_gen"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/segd-rules-builtins.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; for l in "$@"; do echo "     $l"; done; }

for f in "$SEGD" "$RULES" "$CDNOW_SRC" "$RETAIL_SRC" "$GEN"; do
    [ -e "$f" ] || { echo "missing $f"; exit 1; }
done

# same NAME INPUT [replay args...]: both configurations, outputs byte-equal.
same() {
    local name=$1 input=$2
    shift 2
    if ! "$SEGD" replay --config "$BUILTIN" --input "$input" "$@" >"$TMP/b.out" 2>"$TMP/b.err"; then
        bad "$name: replay with the built-ins failed" "$(tail -3 "$TMP/b.err")"
        return
    fi
    if ! "$SEGD" replay --config "$RULES" --input "$input" "$@" >"$TMP/r.out" 2>"$TMP/r.err"; then
        bad "$name: replay with the rules failed" "$(tail -3 "$TMP/r.err")"
        return
    fi
    local n
    n=$(wc -l <"$TMP/b.out")
    if [ "$n" -lt 100 ]; then
        bad "$name: only $n transitions; the comparison would prove little"
    elif cmp -s "$TMP/b.out" "$TMP/r.out"; then
        ok "$name: $n transitions, byte-identical"
    else
        bad "$name: outputs differ ($(wc -l <"$TMP/r.out") lines from the rules)" \
            "$(cmp "$TMP/b.out" "$TMP/r.out")"
        diff "$TMP/b.out" "$TMP/r.out" | head -10 | sed 's/^/     /'
    fi
}

"$PY" "$SEG_SRC/tools/cdnow2events.py" "$CDNOW_SRC" >"$TMP/cdnow.ndjson" 2>/dev/null
"$PY" "$SEG_SRC/tools/cdnow2events.py" --sort-by-time "$CDNOW_SRC" >"$TMP/cdnow-time.ndjson" 2>/dev/null
"$PY" "$SEG_SRC/tools/retail2events.py" "$RETAIL_SRC" >"$TMP/retail.ndjson" 2>/dev/null
"$GEN" --customers 20000 --seed 4242 --days 730 --output "$TMP/gen.ndjson" 2>/dev/null
"$GEN" --customers 4000 --seed 4243 --by-customer --output "$TMP/gen-cust.ndjson" 2>/dev/null

same "CDNOW" "$TMP/cdnow.ndjson"
same "CDNOW in time order" "$TMP/cdnow-time.ndjson"
same "CDNOW until 2000" "$TMP/cdnow.ndjson" --until 2000-01-01T00:00:00Z
same "Online Retail" "$TMP/retail.ndjson"
same "seg_gen, time order (contacts, complaints, refunds)" "$TMP/gen.ndjson"
same "seg_gen, by customer" "$TMP/gen-cust.ndjson" --until 2026-01-01T00:00:00Z

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
