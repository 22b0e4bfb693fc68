#!/bin/bash
# test_output_features: output.features as a list of features.
#
# Why: downstream messages say "it has been 45 days" or "your 3rd visit
# this month" from the transition alone (issue 12). A listed expression
# is evaluated at the transition's instant by the same machinery as the
# rules, so the check is a consistency one that could not hold by chance:
# a rule `visits: value: count(contact.visit, 30d)` moves to N exactly
# when the listed feature "count(contact.visit, 30d)" says N, on every
# transition of that rule; the built-in names give the numbers that
# `output.features: true` gives for the same transition; the keys come in
# the listed order; --set output.features=false prints none; a segment in
# the list is a config error with its position.
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

$PY "$SEG_SRC/tools/cdnow2events.py" --sort-by-time "$SEG_SHARED/data/cdnow/CDNOW_sample.txt" \
    "$TMP/p.ndjson" 2>/dev/null || { echo "FAIL cdnow2events"; exit 1; }
$PY "$SEG_SRC/tests/reference/augment_events.py" <"$TMP/p.ndjson" >"$TMP/a.ndjson" ||
    { echo "FAIL augment_events"; exit 1; }
$PY -c '
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
lines.sort(key=lambda l: json.loads(l)["ts"])
sys.stdout.write("".join(lines))' "$TMP/a.ndjson" >"$TMP/ev.ndjson"
LIST='[recency_s, frequency, "count(contact.visit, 30d)", since(contact), attr("account_type"), monetary]'
cat >"$TMP/list.yaml" <<YAML
output:
  features: $LIST
segments:
  retain:
    attrs: [account_type]
  rules:
    visits:
      value: count(contact.visit, 30d)
YAML
sed 's/  features: .*/  features: true/' "$TMP/list.yaml" >"$TMP/true.yaml"
"$SEGD" replay --config "$TMP/list.yaml" --input "$TMP/ev.ndjson" >"$TMP/list.out" 2>"$TMP/e1" &&
"$SEGD" replay --config "$TMP/true.yaml" --input "$TMP/ev.ndjson" >"$TMP/true.out" 2>"$TMP/e2"
[ $? -eq 0 ] && ok "replay with a features list and with true" || bad "replay failed" "$(tail -2 "$TMP/e1" "$TMP/e2")"
out=$($PY - "$TMP/list.out" "$TMP/true.out" <<'PY'
import json, sys
want_keys = ["recency_s", "frequency", "count(contact.visit, 30d)", "since(contact)",
             'attr("account_type")', "monetary"]
lst = [json.loads(l, parse_float=str) for l in open(sys.argv[1])]
tru = {t["id"]: t for t in (json.loads(l, parse_float=str) for l in open(sys.argv[2]))}
errs, visits, attrs = [], 0, 0
for t in lst:
    f = t["features"]
    if list(f) != want_keys:
        errs.append(f"keys {list(f)}")
    if t["dimension"] == "visits":
        visits += 1
        if t["to"] is not None and str(f["count(contact.visit, 30d)"]) != t["to"]:
            errs.append(f"{t['id']}: rule to {t['to']}, feature {f['count(contact.visit, 30d)']}")
    d = tru[t["id"]]["features"]
    for k in ("recency_s", "frequency", "monetary"):
        if f[k] != d.get(k):
            errs.append(f"{t['id']}: {k} {f[k]} vs {d.get(k)} with output.features: true")
    attrs += f['attr("account_type")'] is not None
    if len(errs) > 5:
        break
print(f"{len(lst)} transitions, {visits} of the rule, {attrs} with the attribute")
for e in errs[:5]:
    print("ERR " + e)
sys.exit(1 if errs or visits < 100 or attrs < 100 else 0)
PY
)
[ $? -eq 0 ] && ok "listed features: in order, the rule's value equals its feature, built-ins equal true's ($out)" ||
    bad "listed features are inconsistent" "$out"
"$SEGD" replay --config "$TMP/list.yaml" --set output.features=false --input "$TMP/ev.ndjson" \
    2>/dev/null | grep -c '"features"' >"$TMP/n"
[ "$(cat "$TMP/n")" = 0 ] && ok "--set output.features=false prints no features" ||
    bad "--set output.features=false still prints features ($(cat "$TMP/n") lines)"
printf 'output:\n  features: [frequency, lifecycle]\n' >"$TMP/bad.yaml"
"$SEGD" check-config --config "$TMP/bad.yaml" 2>"$TMP/err"
rc=$?
[ $rc -eq 3 ] && grep -q "bad.yaml:2:25: rule 'output.features item 2': 'lifecycle' is a segment" "$TMP/err" &&
    ok "a segment in output.features is a config error with its position" ||
    bad "a segment in output.features: exit $rc" "$(cat "$TMP/err")"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
