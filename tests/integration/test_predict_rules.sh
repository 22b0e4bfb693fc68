#!/bin/bash
# test_predict_rules: a threshold on P(alive) fires at the exact second.
#
# Why: issue 11's promise, segd's edge over daily-batch churn scores. The
# check is end to end on real data: `segd fit` on the CDNOW sample (the
# 2005 paper's calibration period), its parameters pasted under
# segments.predict, a rule `likely_churned: when: p_alive < 0.3`, and
# `segd replay` to mid-1998. tests/reference/predict_rules_ref.py solves
# P(alive) = 0.3 in closed form at 50 digits for every customer between
# purchases; segd's transitions of that rule must equal its list exactly
# (customer, second, from, to, cause). (Restore of the purchase days is
# tested in tests/unit/test_snapshot.c.)
set -u
: "${SEGD:?SEGD must point at the segd binary}"
SEG_SRC=${SEG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
SEG_SHARED=${SEG_SHARED:-$SEG_SRC/../shared}
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; for l in "$@"; do echo "     $l"; done; }

SAMPLE=$SEG_SHARED/data/cdnow/CDNOW_sample.txt
[ -r "$SAMPLE" ] || { echo "FAIL $SAMPLE is missing"; exit 1; }
$PY "$SEG_SRC/tools/cdnow2events.py" --sort-by-time "$SAMPLE" "$TMP/ev.ndjson" 2>/dev/null ||
    { echo "FAIL cdnow2events"; exit 1; }
"$SEGD" fit --input "$TMP/ev.ndjson" --until 1997-09-30T00:00:00Z --output json \
    >"$TMP/fit.json" 2>"$TMP/fit.err" || { echo "FAIL segd fit: $(cat "$TMP/fit.err")"; exit 1; }
read -r R ALPHA A B UNIT < <($PY -c '
import json, sys
f = json.load(open(sys.argv[1]))
g = f["bgnbd"]
print(repr(g["r"]), repr(g["alpha"]), repr(g["a"]), repr(g["b"]), f["unit_seconds"])' "$TMP/fit.json")
cat >"$TMP/segd.yaml" <<YAML
segments:
  predict:
    unit: 7d
    bgnbd: {r: $R, alpha: $ALPHA, a: $A, b: $B}
  rules:
    likely_churned:
      when: p_alive < 0.3
YAML
UNTIL=1998-06-30T00:00:00Z
"$SEGD" replay --config "$TMP/segd.yaml" --input "$TMP/ev.ndjson" --until $UNTIL \
    >"$TMP/out.ndjson" 2>"$TMP/err" || { echo "FAIL segd replay: $(tail -3 "$TMP/err")"; exit 1; }
pick() {
  $PY -c '
import json, sys
rows = []
for line in open(sys.argv[1]):
    t = json.loads(line)
    if t["dimension"] == "likely_churned":
        rows.append((t["customer_id"], t["at"], t["from"], t["to"], t["cause"]))
for r in sorted(rows):
    print("\t".join(r))' "$1"
}
pick "$TMP/out.ndjson" >"$TMP/got.tsv"
$PY "$SEG_SRC/tests/reference/predict_rules_ref.py" "$TMP/ev.ndjson" "$R" "$ALPHA" "$A" "$B" \
    "$UNIT" 0.3 likely_churned $UNTIL >"$TMP/want.tsv" || { echo "FAIL the reference failed"; exit 1; }
n=$(wc -l <"$TMP/want.tsv")
ntime=$(grep -c $'\ttime$' "$TMP/want.tsv")
if [ "$n" -gt 500 ] && [ "$ntime" -gt 300 ] && cmp -s "$TMP/got.tsv" "$TMP/want.tsv"; then
  ok "p_alive < 0.3 on CDNOW: $n transitions ($ntime at a crossing second) equal the closed form's"
else
  bad "p_alive < 0.3 on CDNOW differs from the closed form ($n reference transitions, $ntime by time)" \
      "$(diff "$TMP/want.tsv" "$TMP/got.tsv" | head -8)"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
