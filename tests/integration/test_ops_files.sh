#!/bin/bash
# test_ops_files: the files operators load into their own tools.
#
# Checks:
#   - docs/prometheus/segd-rules.yaml passes `promtool check rules`, and its
#     unit tests (segd-rules.test.yaml: each alert fires on a series that
#     should trip it, and not on a healthy one) pass `promtool test rules`;
#   - docs/grafana/segd.json is valid JSON, every panel has a query, every
#     query is valid PromQL (promtool checks it as a recording rule, with
#     Grafana's $variables filled in);
#   - every segd_* metric named in the rules and the dashboard is one segd
#     registers (the names in src/), and docs/operations.md lists it;
#   - (docker/compose.yaml is parsed by test_systemd.sh, the packaging
#     test.)
# Grafana itself is not installable here: the dashboard is untested in it.
#
# Env: SEG_SRC.
set -u
SEG_SRC=${SEG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
RULES="$SEG_SRC/docs/prometheus/segd-rules.yaml"
DASH="$SEG_SRC/docs/grafana/segd.json"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/segd-ops.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
skip=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; for l in "$@"; do echo "     $l"; done; }

if ! command -v promtool >/dev/null; then
    bad "promtool is not installed (Debian prometheus; scripts/install-deps.sh installs it)"
else
    if out=$(promtool check rules "$RULES" 2>&1); then ok "promtool check rules: $(echo "$out" | grep -o '[0-9]* rules found')"
    else bad "promtool check rules" "$out"; fi
    if out=$(cd "$(dirname "$RULES")" && promtool test rules segd-rules.test.yaml 2>&1); then
        ok "promtool test rules: every alert fires where it should and not elsewhere"
    else bad "promtool test rules" "$out"; fi
    # Dashboard queries as recording rules, so promtool parses each one.
    if "$PY" - "$DASH" "$TMP/dash-rules.yaml" >/dev/null <<'EOF2'
import json, sys
d = json.load(open(sys.argv[1]))
exprs = []
def walk(ps):
    for p in ps:
        if p.get("type") == "row":
            walk(p.get("panels", []))
            continue
        ts = p.get("targets") or []
        assert ts, f"panel {p.get('title')!r} has no query"
        for t in ts:
            assert t.get("expr"), f"panel {p.get('title')!r}: a target without expr"
            exprs.append(t["expr"])
walk(d["panels"])
assert d.get("title") and d.get("uid") and d.get("schemaVersion")
with open(sys.argv[2], "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        e = (e.replace("$__rate_interval", "5m").replace('"$instance"', '".*"')
               .replace('"$dimension"', '".*"'))
        f.write(f"      - record: dashboard:q{i}\n        expr: {json.dumps(e)}\n")
print(len(exprs))
EOF2
    then
        if out=$(promtool check rules "$TMP/dash-rules.yaml" 2>&1); then
            ok "docs/grafana/segd.json: valid JSON, every panel queries, every query is valid PromQL ($(echo "$out" | grep -o '[0-9]* rules found'))"
        else bad "dashboard queries are not valid PromQL" "$out"; fi
    else
        bad "docs/grafana/segd.json is not a valid dashboard"
    fi
fi

# Metric names: those the files use, against those segd registers.
grep -rhoE '"segd_[a-z0-9_]+"' "$SEG_SRC/src" | tr -d '"' | sort -u >"$TMP/registered"
cat "$RULES" "$DASH" | grep -oE 'segd_[a-z0-9_]+' | sort -u >"$TMP/used"
unknown=$(comm -23 "$TMP/used" "$TMP/registered" | tr '\n' ' ')
if [ -s "$TMP/used" ] && [ -z "$unknown" ]; then
    ok "every metric the rules and the dashboard name exists in segd ($(wc -l <"$TMP/used") names)"
else bad "unknown metric names: $unknown"; fi
undoc=""
while read -r m; do
    grep -q "$m" "$SEG_SRC/docs/operations.md" || undoc="$undoc $m"
done <"$TMP/registered"
if [ -z "$undoc" ]; then ok "docs/operations.md lists every metric segd registers"
else bad "docs/operations.md does not list:$undoc"; fi

# docker/compose.yaml: checked by test_systemd.sh (the packaging test),
# with docker-compose installed by scripts/install-deps.sh.

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
