#!/usr/bin/env bash
# `make demo`: replays the bundled CDNOW 1/10 sample (real purchases of
# 2,357 customers, 1997-98) through segd and shows what comes out: one
# customer's story, the churn alerts marketing would receive, and the
# segment sizes operations would watch.
set -euo pipefail
BUILD=${1:-build}
SEGD=$BUILD/segd
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== segd replay: CDNOW 1/10 sample (6,919 purchases), until 1998-12-31"
zcat tests/data/demo/cdnow-sample.ndjson.gz |
  "$SEGD" replay --config config/segd.yaml --input - --until 1998-12-31T00:00:00Z \
    --dlq "$out/dlq.ndjson" >"$out/transitions.ndjson" 2>"$out/summary.txt"
cat "$out/summary.txt"

echo
echo "== one customer's story (s0001):"
grep '"customer_id":"s0001"' "$out/transitions.ndjson" | head -20

/usr/bin/python3 - "$out/transitions.ndjson" <<'PY'
import json, sys, collections
last = collections.defaultdict(dict)
alerts = collections.Counter()
for line in open(sys.argv[1]):
    t = json.loads(line)
    last[t["dimension"]][t["customer_id"]] = t["to"]
    if t["dimension"] == "lifecycle" and t["to"] in ("at_risk", "churned"):
        alerts[t["to"]] += 1
print("\n== churn-alert stream (lifecycle -> at_risk | churned):")
for k, v in sorted(alerts.items()):
    print(f"  {k:10s} {v}")
for dim in ("lifecycle", "value"):
    sizes = collections.Counter(last[dim].values())
    print(f"\n== {dim} segment sizes at the end:")
    for k, v in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"  {k:10s} {v:6d}  " + "#" * max(1, v * 50 // max(sizes.values())))
PY
echo
echo "Transitions are NDJSON on stdout; see docs/events.md. Try:"
echo "  zcat tests/data/demo/cdnow-sample.ndjson.gz | $SEGD replay --input - | head"
